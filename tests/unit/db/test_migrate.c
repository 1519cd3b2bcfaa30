/*
 * test_migrate.c - the pure half of db/migrate.c: file names, directory scan,
 * checksums and the plan, from the fixture directories under
 * tests/fixtures/migrations/<case>/ (and a few files made in a temp dir).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/migrate.h"

/* SHA-256 of the fixture files, from sha256sum. */
#define SUM_CHECKSUM_INIT "22dd0dd48af39ffbc85ba1ac792ceea5760ac7a297b0878da6887953acb36842"
#define SUM_PLAN_1        "49d238fadf44edc034b28f65ee6c092abbef85eaa412a533dd9dd53b112b01b4"
#define SUM_PLAN_2        "6f24b091b07d579a61036d4bbc191cbdec00b7efab7ed2f13677a885c6e83c0f"
#define SUM_PLAN_3        "e8bfe3b93a536c226a41eeb7b00a4573657bc41fddb23f2045f84cdc88a63fad"
#define SUM_OTHER         "0000000000000000000000000000000000000000000000000000000000000000"

/* Path of a fixture case directory (or of the repo's db/migrations). Caller frees. */
static char *source_path(const char *rel)
{
    const char *root = getenv("VN_SOURCE_DIR");
    return xasprintf("%s/%s", root && *root ? root : ".", rel);
}

static char *fixture(const char *name)
{
    char *rel = xasprintf("tests/fixtures/migrations/%s", name);
    char *p = source_path(rel);
    free(rel);
    return p;
}

/* Scan a fixture case; returns the code, leaves messages in err. */
static int scan_case(const char *name, struct db_migration_set *set, struct vn_buf *err)
{
    char *dir = fixture(name);
    int rc = db_migrations_scan(dir, set, err);
    free(dir);
    return rc;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack ? haystack : "(null)");
}

static void assert_lacks(const char *haystack, const char *needle)
{
    if (haystack != NULL && strstr(haystack, needle) != NULL)
        fail_msg("did not expect \"%s\" in \"%s\"", needle, haystack);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

static void test_name_parse(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        int ok;
        int32_t version;
        const char *name;
    } cases[] = {
        {"0001_init.sql", 1, 1, "init"},
        {"0010_add_users_2.sql", 1, 10, "add_users_2"},
        {"10000_five_digits.sql", 1, 10000, "five_digits"},
        {"2147483647_max.sql", 1, INT32_MAX, "max"},
        {"0000_zero.sql", 1, 0, "zero"},
        {"001_short.sql", 0, 0, NULL},          /* fewer than 4 digits */
        {"2147483648_too_big.sql", 0, 0, NULL}, /* does not fit the int column */
        {"99999999999999999999_x.sql", 0, 0, NULL},
        {"0001_Init.sql", 0, 0, NULL}, /* uppercase */
        {"0001-init.sql", 0, 0, NULL}, /* dash instead of underscore */
        {"0001_init-x.sql", 0, 0, NULL},
        {"0001_.sql", 0, 0, NULL},     /* empty name */
        {"0001_init.SQL", 0, 0, NULL}, /* suffix is lowercase .sql */
        {"0001_init.sql.bak", 0, 0, NULL},
        {"0001_init", 0, 0, NULL},
        {"init.sql", 0, 0, NULL},
        {"_0001_init.sql", 0, 0, NULL},
        {"0001_in it.sql", 0, 0, NULL},
        {"", 0, 0, NULL},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        int32_t v = -1;
        char *name = NULL;
        int rc = db_migration_name_parse(cases[i].file, &v, &name);
        if (cases[i].ok) {
            if (rc != 0)
                fail_msg("%s should parse", cases[i].file);
            assert_int_equal(v, cases[i].version);
            assert_string_equal(name, cases[i].name);
        } else {
            if (rc != VN_EINVAL)
                fail_msg("%s should be rejected", cases[i].file);
            assert_null(name);
        }
        free(name);
    }
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[DB_SHA256_HEX_LEN + 1];
    db_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    db_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* 10 after 9 and 10000 after 9999: numeric, not lexical; other files ignored. */
static void test_scan_orders_by_number(void **state)
{
    (void)state;
    static const int32_t want[] = {1, 2, 9, 10, 9999, 10000};
    static const char *const files[] = {
        "0001_first.sql", "0002_second.sql",          "0009_nine.sql",
        "0010_ten.sql",   "9999_last_four_digit.sql", "10000_five_digits.sql"};
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;

    assert_int_equal(scan_case("ordered", &set, &err), 0);
    assert_null(err.data);
    assert_int_equal(set.count, VN_ARRAY_LEN(want)); /* README.md and .#0003_draft.sql skipped */
    for (size_t i = 0; i < set.count; i++) {
        assert_int_equal(set.items[i].version, want[i]);
        assert_string_equal(set.items[i].file, files[i]);
        assert_non_null(set.items[i].sql);
        assert_int_equal(strlen(set.items[i].sql), set.items[i].sql_len);
        assert_int_equal(strlen(set.items[i].checksum), DB_SHA256_HEX_LEN);
    }
    assert_string_equal(set.items[3].name, "ten");
    db_migrations_free(&set);
    assert_int_equal(set.count, 0);
    db_migrations_free(&set); /* twice is harmless */
    db_migrations_free(NULL);
}

static void test_scan_bad_names(void **state)
{
    (void)state;
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;

    assert_int_equal(scan_case("bad_name", &set, &err), VN_EINVAL);
    /* Every bad name is reported at once, each on its own line, the good one not. */
    assert_contains(err.data, "bad migration file name \"002_short.sql\"");
    assert_contains(err.data, "\"0003_CamelCase.sql\"");
    assert_contains(err.data, "\"0004-dash.sql\"");
    assert_contains(err.data, "\"0005_upper.SQL\"");
    assert_contains(err.data, "expected NNNN_name.sql");
    assert_lacks(err.data, "0001_init.sql");
    assert_int_equal(count_lines(err.data), 4);
    assert_int_equal(set.count, 0);
    assert_null(set.items);
    db_migrations_free(&set);
    vn_buf_free(&err);
}

static void test_scan_duplicate_version(void **state)
{
    (void)state;
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;

    assert_int_equal(scan_case("duplicate", &set, &err), VN_EINVAL);
    assert_contains(err.data, "duplicate migration version 2: 00002_again.sql and 0002_users.sql");
    assert_lacks(err.data, "0001_init");
    assert_int_equal(set.count, 0);
    vn_buf_free(&err);
}

static void test_scan_empty_dir(void **state)
{
    (void)state;
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;

    assert_int_equal(scan_case("empty", &set, &err), VN_ENOENT);
    assert_contains(err.data, "no migrations in ");
    assert_contains(err.data, "migrations/empty");
    assert_int_equal(set.count, 0);
    vn_buf_free(&err);
}

static void test_scan_missing_dir(void **state)
{
    (void)state;
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;

    assert_int_equal(scan_case("no_such_case", &set, &err), VN_ENOENT);
    assert_contains(err.data, "cannot open migrations directory ");
    assert_contains(err.data, "no_such_case");
    vn_buf_free(&err);
}

static void test_scan_empty_file(void **state)
{
    (void)state;
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;

    assert_int_equal(scan_case("empty_file", &set, &err), VN_EINVAL);
    assert_contains(err.data, "migration 0001_empty.sql is empty");
    vn_buf_free(&err);
}

/* Make a temp dir holding one file name with len bytes of content (sparse if big). */
static char *temp_migration(const char *name, const void *content, size_t len, off_t size)
{
    char tmpl[] = "/tmp/vn_test_migrate_XXXXXX";
    char *dir = NULL, *path = NULL;
    int fd = -1;

    assert_non_null(mkdtemp(tmpl));
    dir = xstrdup(tmpl);
    path = xasprintf("%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    if (len > 0)
        assert_int_equal(write(fd, content, len), (ssize_t)len);
    if (size > 0)
        assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
    free(path);
    return dir;
}

static void remove_temp(char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
}

static void test_scan_nul_byte(void **state)
{
    (void)state;
    static const char sql[] = "SELECT 1;\0DROP TABLE x;\n";
    char *dir = temp_migration("0001_nul.sql", sql, sizeof(sql) - 1, 0);
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;

    assert_int_equal(db_migrations_scan(dir, &set, &err), VN_EINVAL);
    assert_contains(err.data, "0001_nul.sql contains a NUL byte");
    vn_buf_free(&err);
    remove_temp(dir, "0001_nul.sql");
}

static void test_scan_too_big(void **state)
{
    (void)state;
    char *dir = temp_migration("0001_big.sql", "SELECT 1;\n", 10, DB_MIGRATION_MAX_BYTES + 1);
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;

    assert_int_equal(db_migrations_scan(dir, &set, &err), VN_ETOOBIG);
    assert_contains(err.data, "0001_big.sql is larger than");
    vn_buf_free(&err);
    remove_temp(dir, "0001_big.sql");
}

/* The checksum is SHA-256 of the exact bytes, stable across runs. */
static void test_checksum_of_fixture(void **state)
{
    (void)state;
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;
    char again[DB_SHA256_HEX_LEN + 1];

    assert_int_equal(scan_case("checksum", &set, &err), 0);
    assert_int_equal(set.count, 1);
    assert_string_equal(set.items[0].checksum, SUM_CHECKSUM_INIT);
    assert_true(strncmp(set.items[0].sql, "-- Checksum fixture", 19) == 0);
    db_sha256_hex(set.items[0].sql, set.items[0].sql_len, again);
    assert_string_equal(again, SUM_CHECKSUM_INIT);
    db_migrations_free(&set);

    assert_int_equal(scan_case("checksum", &set, &err), 0);
    assert_string_equal(set.items[0].checksum, SUM_CHECKSUM_INIT);
    db_migrations_free(&set);
}

/* The repository's own migrations must always scan cleanly. */
static void test_repo_migrations_scan(void **state)
{
    (void)state;
    char *dir = source_path("db/migrations");
    struct db_migration_set set;
    struct vn_buf err = VN_BUF_INIT;

    if (db_migrations_scan(dir, &set, &err) != 0)
        fail_msg("%s", err.data);
    assert_true(set.count >= 1);
    assert_string_equal(set.items[0].file, "0001_init.sql");
    db_migrations_free(&set);
    free(dir);
}

static void scan_plan_case(struct db_migration_set *set)
{
    struct vn_buf err = VN_BUF_INIT;
    assert_int_equal(scan_case("plan", set, &err), 0);
    assert_int_equal(set->count, 3);
    assert_string_equal(set->items[0].checksum, SUM_PLAN_1);
    assert_string_equal(set->items[1].checksum, SUM_PLAN_2);
    assert_string_equal(set->items[2].checksum, SUM_PLAN_3);
}

static void assert_pending(const struct db_plan *plan, const int32_t *want, size_t n)
{
    assert_int_equal(plan->count, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(plan->pending[i]->version, want[i]);
}

static void test_plan_nothing_applied(void **state)
{
    (void)state;
    static const int32_t want[] = {1, 2, 3};
    struct db_migration_set set;
    struct db_plan plan;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_plan(&set, NULL, 0, &plan, &err), 0);
    assert_pending(&plan, want, 3);
    assert_string_equal(plan.pending[0]->file, "0001_init.sql");
    assert_int_equal(plan.applied, 0);
    assert_int_equal(plan.out_of_order, 0);
    assert_null(err.data);
    db_plan_free(&plan);
    db_migrations_free(&set);
}

static void test_plan_some_applied(void **state)
{
    (void)state;
    static const int32_t want[] = {2, 3};
    static const int32_t want3[] = {3};
    /* Rows may come in any order. */
    const struct db_applied rows[] = {
        {2, "users", SUM_PLAN_2, "2024-01-02 00:00:00Z"},
        {1, "init", SUM_PLAN_1, "2024-01-01 00:00:00Z"},
    };
    struct db_migration_set set;
    struct db_plan plan;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_plan(&set, &rows[1], 1, &plan, &err), 0);
    assert_pending(&plan, want, 2);
    assert_int_equal(plan.applied, 1);
    db_plan_free(&plan);

    assert_int_equal(db_migrate_plan(&set, rows, 2, &plan, &err), 0);
    assert_pending(&plan, want3, 1);
    assert_string_equal(plan.pending[0]->name, "reminders");
    assert_int_equal(plan.applied, 2);
    assert_int_equal(plan.out_of_order, 0);
    assert_null(err.data);
    db_plan_free(&plan);
    db_migrations_free(&set);
}

static void test_plan_all_applied(void **state)
{
    (void)state;
    const struct db_applied rows[] = {
        {1, "init", SUM_PLAN_1, NULL},
        {2, "users", SUM_PLAN_2, NULL},
        {3, "reminders", SUM_PLAN_3, NULL},
    };
    struct db_migration_set set;
    struct db_plan plan;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_plan(&set, rows, 3, &plan, &err), 0);
    assert_int_equal(plan.count, 0);
    assert_int_equal(plan.applied, 3);
    assert_null(err.data);
    db_plan_free(&plan);
    db_migrations_free(&set);
}

static void test_plan_edited_refused(void **state)
{
    (void)state;
    const struct db_applied rows[] = {{1, "init", SUM_OTHER, NULL}};
    struct db_migration_set set;
    struct db_plan plan;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_plan(&set, rows, 1, &plan, &err), VN_ECONFLICT);
    assert_string_equal(err.data, "0001_init.sql was edited after it was applied (checksum "
                                  "000000000000… in database, 49d238fadf44… on disk); "
                                  "add a new migration instead\n");
    assert_int_equal(plan.count, 0);
    assert_null(plan.pending);
    vn_buf_free(&err);
    db_migrations_free(&set);
}

static void test_plan_missing_file_refused(void **state)
{
    (void)state;
    const struct db_applied rows[] = {
        {1, "init", SUM_PLAN_1, NULL},
        {4, "dropped", SUM_OTHER, "2024-03-04 05:06:07Z"},
    };
    struct db_migration_set set;
    struct db_plan plan;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_plan(&set, rows, 2, &plan, &err), VN_ENOENT);
    assert_contains(err.data, "0004_dropped.sql was applied at 2024-03-04 05:06:07Z but is "
                              "missing from ");
    assert_contains(err.data, "migrations/plan; restore it");
    assert_int_equal(plan.count, 0);
    vn_buf_free(&err);
    db_migrations_free(&set);
}

/* Two branches that both used number 2: say so rather than "edited". */
static void test_plan_version_reused(void **state)
{
    (void)state;
    const struct db_applied rows[] = {
        {1, "init", SUM_PLAN_1, NULL},
        {2, "accounts", SUM_OTHER, NULL},
    };
    struct db_migration_set set;
    struct db_plan plan;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_plan(&set, rows, 2, &plan, &err), VN_ECONFLICT);
    assert_contains(err.data, "0002_users.sql has version 2, which the database already "
                              "applied as 0002_accounts");
    assert_contains(err.data, "give 0002_users.sql a new number");
    vn_buf_free(&err);
    db_migrations_free(&set);
}

/* Renaming an unchanged file is harmless: the bytes are what counts. */
static void test_plan_rename_unchanged_ok(void **state)
{
    (void)state;
    const struct db_applied rows[] = {{1, "initial_schema", SUM_PLAN_1, NULL}};
    struct db_migration_set set;
    struct db_plan plan;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_plan(&set, rows, 1, &plan, &err), 0);
    assert_int_equal(plan.applied, 1);
    assert_int_equal(plan.count, 2);
    db_plan_free(&plan);
    db_migrations_free(&set);
}

/* Every problem is listed, not only the first. */
static void test_plan_reports_all_problems(void **state)
{
    (void)state;
    const struct db_applied rows[] = {
        {1, "init", SUM_OTHER, NULL},
        {3, "reminders", SUM_OTHER, NULL},
        {7, "gone", SUM_OTHER, NULL},
    };
    struct db_migration_set set;
    struct db_plan plan;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_plan(&set, rows, 3, &plan, &err), VN_ECONFLICT);
    assert_int_equal(count_lines(err.data), 3);
    assert_contains(err.data, "0001_init.sql was edited");
    assert_contains(err.data, "0003_reminders.sql was edited");
    assert_contains(err.data, "0007_gone.sql was applied");
    vn_buf_free(&err);
    db_migrations_free(&set);
}

/* A file numbered below the newest applied one is still applied, and counted. */
static void test_plan_out_of_order(void **state)
{
    (void)state;
    static const int32_t want[] = {2};
    const struct db_applied rows[] = {
        {1, "init", SUM_PLAN_1, NULL},
        {3, "reminders", SUM_PLAN_3, NULL},
    };
    struct db_migration_set set;
    struct db_plan plan;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_plan(&set, rows, 2, &plan, &err), 0);
    assert_pending(&plan, want, 1);
    assert_int_equal(plan.out_of_order, 1);
    assert_int_equal(plan.applied, 2);
    db_plan_free(&plan);
    db_migrations_free(&set);
}

static void test_status_merge(void **state)
{
    (void)state;
    const struct db_applied rows[] = {
        {5, "gone", SUM_OTHER, NULL},
        {2, "users", SUM_OTHER, NULL},
        {1, "init", SUM_PLAN_1, NULL},
    };
    const struct db_applied dup[] = {{1, "init", SUM_PLAN_1, NULL}, {1, "init", SUM_PLAN_1, NULL}};
    struct db_migration_set set;
    struct db_migration_status *st = NULL;
    size_t n = 0;
    struct vn_buf err = VN_BUF_INIT;

    scan_plan_case(&set);
    assert_int_equal(db_migrate_status(&set, rows, 3, &st, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(st[0].version, 1);
    assert_int_equal(st[0].state, DB_MIGRATION_APPLIED);
    assert_int_equal(st[1].state, DB_MIGRATION_EDITED);
    assert_int_equal(st[2].version, 3);
    assert_int_equal(st[2].state, DB_MIGRATION_PENDING);
    assert_null(st[2].row);
    assert_int_equal(st[3].version, 5);
    assert_int_equal(st[3].state, DB_MIGRATION_MISSING);
    assert_null(st[3].file);
    free(st);

    assert_int_equal(db_migrate_status(&set, dup, 2, &st, &n, &err), VN_EINVAL);
    assert_contains(err.data, "lists version 1 twice");
    assert_null(st);
    vn_buf_free(&err);
    db_migrations_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_parse),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_scan_orders_by_number),
        cmocka_unit_test(test_scan_bad_names),
        cmocka_unit_test(test_scan_duplicate_version),
        cmocka_unit_test(test_scan_empty_dir),
        cmocka_unit_test(test_scan_missing_dir),
        cmocka_unit_test(test_scan_empty_file),
        cmocka_unit_test(test_scan_nul_byte),
        cmocka_unit_test(test_scan_too_big),
        cmocka_unit_test(test_checksum_of_fixture),
        cmocka_unit_test(test_repo_migrations_scan),
        cmocka_unit_test(test_plan_nothing_applied),
        cmocka_unit_test(test_plan_some_applied),
        cmocka_unit_test(test_plan_all_applied),
        cmocka_unit_test(test_plan_edited_refused),
        cmocka_unit_test(test_plan_missing_file_refused),
        cmocka_unit_test(test_plan_version_reused),
        cmocka_unit_test(test_plan_rename_unchanged_ok),
        cmocka_unit_test(test_plan_reports_all_problems),
        cmocka_unit_test(test_plan_out_of_order),
        cmocka_unit_test(test_status_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
