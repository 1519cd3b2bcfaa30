/*
 * migrate.h - schema migrations: `vestnik migrate`.
 *
 * Migrations are files NNNN_name.sql (4 or more digits, then [a-z0-9_]+) in one
 * directory. Each is applied once, in version order, in its own transaction,
 * and recorded in public.schema_migrations with the SHA-256 of its bytes. A
 * recorded migration whose file changed or disappeared stops the run: history
 * is never rewritten, a new migration is added instead.
 *
 * Two halves:
 *  - pure: scan a directory, checksum, merge with the recorded rows, plan.
 *    No I/O beyond reading the directory; tests/unit/db/test_migrate.c drives
 *    it from fixture directories.
 *  - db_migrate_main(): the CLI. It uses blocking libpq, which is fine for a
 *    one-shot tool that never runs on the event loop. Concurrent runs
 *    serialize on a PostgreSQL advisory lock (DB_MIGRATE_LOCK_KEY).
 *
 * Ownership: a db_migration_set owns its items and their strings. Status rows
 * and plans only point into the set and into the db_applied array they were
 * built from; both must outlive them.
 */
#ifndef VN_DB_MIGRATE_H
#define VN_DB_MIGRATE_H

#include "core/common.h"
#include "core/config.h"

#include <stddef.h>
#include <stdint.h>

/*
 * pg_advisory_lock key held while migrating: the bytes of "vestnik\0" read
 * as a big-endian int64 (8531352013029075712). Other code must not use it.
 */
#define DB_MIGRATE_LOCK_KEY INT64_C(0x766573746e696b00)
/* A migration file larger than this is refused (VN_ETOOBIG). */
#define DB_MIGRATION_MAX_BYTES (16u * 1024u * 1024u)
#define DB_SHA256_HEX_LEN      64

struct db_migration {
    int32_t version;                      /* 1 for 0001_init.sql */
    char *name;                           /* "init" */
    char *file;                           /* "0001_init.sql" */
    char *sql;                            /* the file's bytes, NUL-terminated */
    size_t sql_len;                       /* without the NUL */
    char checksum[DB_SHA256_HEX_LEN + 1]; /* lowercase hex SHA-256 of the bytes */
};

struct db_migration_set {
    char *dir;                  /* the directory as given */
    struct db_migration *items; /* sorted by version; versions are unique */
    size_t count;
};

/* A row of public.schema_migrations. The strings are borrowed (PGresult, literals). */
struct db_applied {
    int32_t version;
    const char *name;       /* "init" */
    const char *checksum;   /* hex SHA-256 recorded when it was applied */
    const char *applied_at; /* for --status; may be NULL */
};

enum db_migration_state {
    DB_MIGRATION_APPLIED, /* recorded, file unchanged */
    DB_MIGRATION_PENDING, /* file not yet recorded */
    DB_MIGRATION_EDITED,  /* recorded, but the file's bytes (checksum) differ */
    DB_MIGRATION_MISSING, /* recorded, but no file has its version */
};

/* One version in the merged view of files and recorded rows. */
struct db_migration_status {
    int32_t version;
    enum db_migration_state state;
    const struct db_migration *file; /* NULL when MISSING */
    const struct db_applied *row;    /* NULL when PENDING */
};

struct db_plan {
    const struct db_migration **pending; /* into the set, in version order; caller frees array */
    size_t count;
    size_t applied;      /* recorded migrations, all matching their files */
    size_t out_of_order; /* pending ones older than the newest recorded one */
};

/*
 * Parse a migration file name "NNNN_name.sql". On success returns 0, stores
 * the version and, if name is not NULL, a heap copy of the name part ("init")
 * the caller frees. Returns VN_EINVAL for anything else (fewer than 4 digits,
 * a version above INT32_MAX, characters outside [a-z0-9_], another suffix).
 */
int db_migration_name_parse(const char *file, int32_t *version, char **name);

/* Lowercase hex SHA-256 of len bytes at data into out (65 bytes with the NUL). */
void db_sha256_hex(const void *data, size_t len, char out[DB_SHA256_HEX_LEN + 1]);

/*
 * Read every migration in dir into set, sorted by version. Files not ending
 * in ".sql" and dot-files are ignored (README, .gitkeep); any other *.sql
 * name is an error. Returns 0, or a negative VN_E code with one line per
 * problem appended to err, each naming the file: VN_EINVAL (bad name,
 * duplicate version, empty file, NUL byte), VN_ENOENT (no directory, no
 * migrations), VN_ETOOBIG (file over DB_MIGRATION_MAX_BYTES), VN_EIO. On
 * error set is left empty. Release with db_migrations_free().
 */
int db_migrations_scan(const char *dir, struct db_migration_set *set, struct vn_buf *err);
void db_migrations_free(struct db_migration_set *set);

/* "0001_init" for a recorded row, the way its file would be named (heap, caller frees). */
char *db_applied_label(const struct db_applied *row);

/*
 * Merge set and the recorded rows (any order) into *rows, one entry per
 * version, sorted by version; the caller frees *rows. Returns 0, or VN_EINVAL
 * with a message in err if applied holds a version twice.
 */
int db_migrate_status(const struct db_migration_set *set, const struct db_applied *applied,
                      size_t napplied, struct db_migration_status **rows, size_t *nrows,
                      struct vn_buf *err);

/*
 * Append one line (no newline) explaining an EDITED or MISSING row and what
 * to do about it; nothing for other states.
 */
void db_migration_problem(const struct db_migration_status *row, const char *dir,
                          struct vn_buf *out);

/*
 * Decide what to apply: the files with no recorded row, in version order.
 * Returns 0 with *plan filled (an empty plan when all are applied), or, when
 * a recorded migration was edited (VN_ECONFLICT) or has no file (VN_ENOENT),
 * a negative code with one line per such migration in err and *plan empty.
 * Release with db_plan_free().
 */
int db_migrate_plan(const struct db_migration_set *set, const struct db_applied *applied,
                    size_t napplied, struct db_plan *plan, struct vn_buf *err);
void db_plan_free(struct db_plan *plan);

/*
 * Entry point of `vestnik migrate [--dir DIR] [--status] [--help]`. argv[0]
 * is the command name ("migrate"); options follow. Returns the process exit
 * code: 0 done (or nothing to do), 1 failure (database unreachable, SQL
 * error, edited/missing migration), 2 usage error. Progress goes to the log
 * (JSON lines on stderr); --status and --help print to stdout.
 */
int db_migrate_main(const struct vn_config *cfg, int argc, char **argv);

#endif
