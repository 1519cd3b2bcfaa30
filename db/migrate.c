/*
 * migrate.c - scan, plan and apply schema migrations (`vestnik migrate`).
 *
 * The first half is pure (directory scan, SHA-256, merge with the recorded
 * rows, plan); the second is the blocking libpq CLI around it. See migrate.h
 * for the rules and docs/database.md for the operator's view.
 */
#include "db/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "core/log.h"

#define MOD "migrate"
/* Checksum characters shown in messages: enough to tell two files apart. */
#define SUM_SHORT 12

/* ------------------------------------------------------------------------ */
/* Pure part                                                                */
/* ------------------------------------------------------------------------ */

int db_migration_name_parse(const char *file, int32_t *version, char **name)
{
    const char *p = file;
    const char *start = NULL;
    int64_t v = 0;
    size_t digits = 0;

    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > INT32_MAX)
            return VN_EINVAL; /* version is an int column */
        digits++;
        p++;
    }
    if (digits < 4 || *p != '_')
        return VN_EINVAL;
    start = ++p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
        p++;
    if (p == start || strcmp(p, ".sql") != 0)
        return VN_EINVAL;
    *version = (int32_t)v;
    if (name != NULL)
        *name = xstrndup(start, (size_t)(p - start));
    return 0;
}

void db_sha256_hex(const void *data, size_t len, char out[DB_SHA256_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(len ? data : "", len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        /* EVP_Digest only fails when OpenSSL cannot allocate: fatal like any OOM. */
        fputs("{\"level\":\"fatal\",\"module\":\"migrate\",\"msg\":\"SHA-256 failed\"}\n", stderr);
        abort();
    }
    for (unsigned i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[DB_SHA256_HEX_LEN] = '\0';
}

/* 1 if name ends in ".sql", any case: such files must be well-named migrations. */
static int looks_like_sql(const char *name)
{
    size_t n = strlen(name);
    return n >= 4 && strcasecmp(name + n - 4, ".sql") == 0;
}

/*
 * Read path into m->sql (NUL-terminated) and checksum it. Returns 0 or a
 * negative VN_E code with a line naming file in err.
 */
static int read_migration(const char *path, const char *file, struct db_migration *m,
                          struct vn_buf *err)
{
    struct vn_buf data = VN_BUF_INIT;
    struct stat st;
    int fd = -1;
    int rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vn_buf_printf(err, "cannot open migration %s: %s\n", path, strerror(errno));
        rc = VN_EIO;
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        vn_buf_printf(err, "migration %s is not a regular file\n", path);
        rc = VN_EINVAL;
        goto out;
    }
    /* Read to EOF rather than trusting st_size, bounded all the same. */
    for (;;) {
        vn_buf_reserve(&data, 65536);
        ssize_t got = read(fd, data.data + data.len, data.cap - data.len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            vn_buf_printf(err, "cannot read migration %s: %s\n", path, strerror(errno));
            rc = VN_EIO;
            goto out;
        }
        if (got == 0)
            break;
        data.len += (size_t)got;
        data.data[data.len] = '\0';
        if (data.len > DB_MIGRATION_MAX_BYTES) {
            vn_buf_printf(err, "migration %s is larger than %u bytes; split it\n", file,
                          DB_MIGRATION_MAX_BYTES);
            rc = VN_ETOOBIG;
            goto out;
        }
    }
    if (data.len == 0) {
        vn_buf_printf(err, "migration %s is empty\n", file);
        rc = VN_EINVAL;
        goto out;
    }
    /* libpq takes the SQL as a C string: a NUL would silently cut it short. */
    if (memchr(data.data, '\0', data.len) != NULL) {
        vn_buf_printf(err, "migration %s contains a NUL byte; is it a text file?\n", file);
        rc = VN_EINVAL;
        goto out;
    }
    db_sha256_hex(data.data, data.len, m->checksum);
    m->sql_len = data.len;
    m->sql = vn_buf_steal(&data);
out:
    if (fd >= 0)
        close(fd);
    vn_buf_free(&data);
    return rc;
}

static int cmp_migration(const void *a, const void *b)
{
    const struct db_migration *x = a, *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->file, y->file);
}

int db_migrations_scan(const char *dir, struct db_migration_set *set, struct vn_buf *err)
{
    DIR *d = NULL;
    struct vn_buf path = VN_BUF_INIT;
    size_t cap = 0;
    int rc = 0;

    memset(set, 0, sizeof(*set));
    set->dir = xstrdup(dir);
    d = opendir(dir);
    if (d == NULL) {
        rc = (errno == ENOENT || errno == ENOTDIR) ? VN_ENOENT : VN_EIO;
        vn_buf_printf(err, "cannot open migrations directory %s: %s\n", dir, strerror(errno));
        goto out;
    }
    for (;;) {
        struct db_migration m = {0};
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                vn_buf_printf(err, "cannot list migrations directory %s: %s\n", dir,
                              strerror(errno));
                rc = VN_EIO;
            }
            break;
        }
        if (de->d_name[0] == '.' || !looks_like_sql(de->d_name))
            continue;
        if (db_migration_name_parse(de->d_name, &m.version, &m.name) != 0) {
            vn_buf_puts(err, "bad migration file name \"");
            vn_buf_json_escape(err, de->d_name, strlen(de->d_name));
            vn_buf_printf(err,
                          "\" in %s: expected NNNN_name.sql (4 or more digits, '_', "
                          "then lowercase letters, digits or '_')\n",
                          dir);
            rc = VN_EINVAL;
            continue;
        }
        if (set->count == cap) {
            cap = cap ? cap * 2 : 16;
            set->items = xrealloc(set->items, cap * sizeof(*set->items));
        }
        m.file = xstrdup(de->d_name);
        set->items[set->count++] = m;
    }
    if (rc != 0)
        goto out;
    if (set->count == 0) {
        vn_buf_printf(err, "no migrations in %s (expected files named NNNN_name.sql)\n", dir);
        rc = VN_ENOENT;
        goto out;
    }
    /* Numeric order: 10 comes after 9, and 10000_x after 9999_y. */
    qsort(set->items, set->count, sizeof(*set->items), cmp_migration);
    for (size_t i = 1; i < set->count; i++) {
        if (set->items[i].version == set->items[i - 1].version) {
            vn_buf_printf(err,
                          "duplicate migration version %" PRId32 ": %s and %s in %s; "
                          "give one of them a new number\n",
                          set->items[i].version, set->items[i - 1].file, set->items[i].file, dir);
            rc = VN_EINVAL;
        }
    }
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < set->count; i++) {
        struct db_migration *m = &set->items[i];
        int r = 0;
        vn_buf_reset(&path);
        vn_buf_printf(&path, "%s/%s", dir, m->file);
        r = read_migration(path.data, m->file, m, err);
        if (r != 0 && rc == 0)
            rc = r;
    }
out:
    if (d != NULL)
        closedir(d);
    vn_buf_free(&path);
    if (rc != 0)
        db_migrations_free(set);
    return rc;
}

void db_migrations_free(struct db_migration_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->count; i++) {
        free(set->items[i].name);
        free(set->items[i].file);
        free(set->items[i].sql);
    }
    free(set->items);
    free(set->dir);
    memset(set, 0, sizeof(*set));
}

char *db_applied_label(const struct db_applied *row)
{
    return xasprintf("%04" PRId32 "_%s", row->version, row->name ? row->name : "?");
}

static int cmp_applied_ptr(const void *a, const void *b)
{
    const struct db_applied *x = *(const struct db_applied *const *)a;
    const struct db_applied *y = *(const struct db_applied *const *)b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return 0;
}

static int str_eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

int db_migrate_status(const struct db_migration_set *set, const struct db_applied *applied,
                      size_t napplied, struct db_migration_status **rows, size_t *nrows,
                      struct vn_buf *err)
{
    const struct db_applied **sorted = NULL;
    struct db_migration_status *out = NULL;
    size_t i = 0, j = 0, k = 0;
    int rc = 0;

    *rows = NULL;
    *nrows = 0;
    sorted = xcalloc(napplied, sizeof(*sorted));
    for (j = 0; j < napplied; j++)
        sorted[j] = &applied[j];
    qsort(sorted, napplied, sizeof(*sorted), cmp_applied_ptr);
    for (j = 1; j < napplied; j++) {
        if (sorted[j]->version == sorted[j - 1]->version) {
            vn_buf_printf(err, "schema_migrations lists version %" PRId32 " twice\n",
                          sorted[j]->version);
            rc = VN_EINVAL;
            goto out;
        }
    }

    out = xcalloc(set->count + napplied, sizeof(*out));
    j = 0;
    while (i < set->count || j < napplied) {
        const struct db_migration *f = i < set->count ? &set->items[i] : NULL;
        const struct db_applied *a = j < napplied ? sorted[j] : NULL;
        struct db_migration_status *r = &out[k++];

        if (a == NULL || (f != NULL && f->version < a->version)) {
            r->version = f->version;
            r->state = DB_MIGRATION_PENDING;
            r->file = f;
            i++;
        } else if (f == NULL || a->version < f->version) {
            r->version = a->version;
            r->state = DB_MIGRATION_MISSING;
            r->row = a;
            j++;
        } else {
            /* Same version. Only the bytes matter: renaming an unchanged file is harmless. */
            r->version = f->version;
            r->file = f;
            r->row = a;
            r->state =
                str_eq(a->checksum, f->checksum) ? DB_MIGRATION_APPLIED : DB_MIGRATION_EDITED;
            i++;
            j++;
        }
    }
    *rows = out;
    *nrows = k;
    out = NULL;
out:
    free(sorted);
    free(out);
    return rc;
}

void db_migration_problem(const struct db_migration_status *row, const char *dir,
                          struct vn_buf *out)
{
    char *label = NULL;
    const char *db_sum = NULL;

    if (row->row == NULL)
        return;
    label = db_applied_label(row->row);
    db_sum = row->row->checksum ? row->row->checksum : "?";
    if (row->state == DB_MIGRATION_EDITED && str_eq(row->row->name, row->file->name)) {
        vn_buf_printf(out,
                      "%s was edited after it was applied (checksum %.*s… in database, "
                      "%.*s… on disk); add a new migration instead",
                      row->file->file, SUM_SHORT, db_sum, SUM_SHORT, row->file->checksum);
    } else if (row->state == DB_MIGRATION_EDITED) {
        vn_buf_printf(out,
                      "%s has version %" PRId32 ", which the database already applied as %s "
                      "(checksum %.*s… in database, %.*s… on disk); give %s a new number",
                      row->file->file, row->version, label, SUM_SHORT, db_sum, SUM_SHORT,
                      row->file->checksum, row->file->file);
    } else if (row->state == DB_MIGRATION_MISSING) {
        vn_buf_printf(out,
                      "%s.sql was applied%s%s but is missing from %s; restore it (applied "
                      "migrations are never deleted)",
                      label, row->row->applied_at ? " at " : "",
                      row->row->applied_at ? row->row->applied_at : "", dir);
    }
    free(label);
}

int db_migrate_plan(const struct db_migration_set *set, const struct db_applied *applied,
                    size_t napplied, struct db_plan *plan, struct vn_buf *err)
{
    struct db_migration_status *rows = NULL;
    size_t nrows = 0;
    int32_t newest = -1;
    int rc = 0;

    memset(plan, 0, sizeof(*plan));
    rc = db_migrate_status(set, applied, napplied, &rows, &nrows, err);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < napplied; i++)
        if (applied[i].version > newest)
            newest = applied[i].version;
    plan->pending = xcalloc(nrows, sizeof(*plan->pending));
    for (size_t i = 0; i < nrows; i++) {
        switch (rows[i].state) {
        case DB_MIGRATION_APPLIED:
            plan->applied++;
            break;
        case DB_MIGRATION_PENDING:
            plan->pending[plan->count++] = rows[i].file;
            if (rows[i].version < newest)
                plan->out_of_order++;
            break;
        case DB_MIGRATION_EDITED:
        case DB_MIGRATION_MISSING:
            db_migration_problem(&rows[i], set->dir ? set->dir : "the migrations directory", err);
            vn_buf_putc(err, '\n');
            if (rc == 0)
                rc = rows[i].state == DB_MIGRATION_EDITED ? VN_ECONFLICT : VN_ENOENT;
            break;
        }
    }
out:
    free(rows);
    if (rc != 0)
        db_plan_free(plan);
    return rc;
}

void db_plan_free(struct db_plan *plan)
{
    if (plan == NULL)
        return;
    free(plan->pending);
    memset(plan, 0, sizeof(*plan));
}

/* ------------------------------------------------------------------------ */
/* I/O part: the CLI                                                        */
/* ------------------------------------------------------------------------ */

struct migrate_opts {
    const char *dir;
    int status;
    int help;
};

/* What the notice receiver needs to say which file a notice came from. */
struct notice_ctx {
    const char *file;
};

static const char usage_line[] = "Usage: vestnik migrate [--dir DIR] [--status] [--help]\n";

static void print_help(const struct vn_config *cfg)
{
    printf("%s", usage_line);
    printf("\n"
           "Apply pending database migrations to DATABASE_URL: every NNNN_name.sql file\n"
           "not yet recorded in public.schema_migrations, in version order, each in its\n"
           "own transaction. A recorded migration whose file was edited or removed stops\n"
           "the run; add a new migration instead. Concurrent runs wait for each other.\n"
           "\n"
           "  --dir DIR   migrations directory (default MIGRATIONS_DIR, now \"%s\")\n"
           "  --status    list applied and pending migrations; change nothing\n"
           "  --help      show this help\n"
           "\n"
           "Exit status: 0 done or nothing to do, 1 failure, 2 usage error.\n",
           cfg->migrations_dir ? cfg->migrations_dir : "");
}

/* Parse argv[1..]; returns 0 or 2 (usage error, already reported on stderr). */
static int parse_args(int argc, char **argv, struct migrate_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--status") == 0) {
            o->status = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
        } else if (strcmp(a, "--dir") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vestnik migrate: --dir needs a directory\n%s", usage_line);
                return 2;
            }
            o->dir = argv[++i];
        } else if (strncmp(a, "--dir=", 6) == 0) {
            o->dir = a + 6;
        } else {
            fprintf(stderr, "vestnik migrate: unknown argument \"%s\"\n%s", a, usage_line);
            return 2;
        }
        if (o->dir != NULL && *o->dir == '\0') {
            fprintf(stderr, "vestnik migrate: --dir is empty\n%s", usage_line);
            return 2;
        }
    }
    return 0;
}

/*
 * Append s on one line: runs of whitespace become one space, or "; " where
 * they held a line break after a sentence without punctuation (libpq's
 * "Connection refused\n\tIs the server running..."). Ends are trimmed.
 */
static void append_oneline(struct vn_buf *b, const char *s)
{
    int space = 0, newline = 0;
    char prev = '\0';

    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
            space = 1;
            newline |= *s == '\n';
            continue;
        }
        if (space)
            vn_buf_puts(b, newline && !strchr(".:;,", prev) ? "; " : " ");
        space = newline = 0;
        vn_buf_putc(b, *s);
        prev = *s;
    }
}

/* Replace every occurrence of secret in b->data with "***". */
static void scrub(struct vn_buf *b, const char *secret)
{
    struct vn_buf out = VN_BUF_INIT;
    size_t n = secret ? strlen(secret) : 0;
    const char *p = b->data;

    if (n == 0 || p == NULL || strstr(p, secret) == NULL)
        return;
    for (;;) {
        const char *hit = strstr(p, secret);
        if (hit == NULL)
            break;
        vn_buf_append(&out, p, (size_t)(hit - p));
        vn_buf_puts(&out, "***");
        p = hit + n;
    }
    vn_buf_puts(&out, p);
    vn_buf_free(b);
    *b = out;
}

/*
 * The password of a URL's userinfo as written (maybe percent-encoded), or
 * NULL. libpq's decoded one comes from PQconninfoParse; both get scrubbed.
 */
static char *url_raw_password(const char *url)
{
    const char *sep = strstr(url, "://");
    const char *at = NULL, *colon = NULL, *end = NULL;

    if (sep == NULL)
        return NULL;
    sep += 3;
    end = sep + strcspn(sep, "/?#");
    for (const char *p = sep; p < end; p++)
        if (*p == '@')
            at = p;
    if (at == NULL)
        return NULL;
    colon = memchr(sep, ':', (size_t)(at - sep));
    if (colon == NULL || colon + 1 == at)
        return NULL;
    return xstrndup(colon + 1, (size_t)(at - colon - 1));
}

/* The database we talk to, for messages: host, port, database and user; no password. */
struct pg_target {
    char *text;     /* "127.0.0.1:5433/vestnik as user vestnik" */
    char *password; /* decoded, to scrub from libpq's messages */
    char *raw_password;
};

static void target_free(struct pg_target *t)
{
    free(t->text);
    free(t->password);
    free(t->raw_password);
    memset(t, 0, sizeof(*t));
}

/* Describe url into t. Returns 0, or VN_EINVAL with a safe message in err. */
static int target_parse(const char *url, struct pg_target *t, struct vn_buf *err)
{
    PQconninfoOption *opts = NULL;
    char *perr = NULL;
    const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
    struct vn_buf b = VN_BUF_INIT;
    int rc = 0;

    memset(t, 0, sizeof(*t));
    t->raw_password = url_raw_password(url);
    opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        char *redacted = cfg_redact_url(url);
        append_oneline(&b, perr ? perr : "out of memory");
        scrub(&b, t->raw_password);
        vn_buf_printf(err, "DATABASE_URL \"%s\" is not a valid PostgreSQL connection string: %s\n",
                      redacted, b.data ? b.data : "");
        free(redacted);
        rc = VN_EINVAL;
        goto out;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || *o->val == '\0')
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0 && host == NULL)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "password") == 0)
            t->password = xstrdup(o->val);
    }
    vn_buf_printf(&b, "%s:%s", host ? host : "(local socket)", port ? port : "5432");
    if (db != NULL)
        vn_buf_printf(&b, "/%s", db);
    if (user != NULL)
        vn_buf_printf(&b, " as user %s", user);
    t->text = vn_buf_steal(&b);
out:
    if (opts != NULL)
        PQconninfoFree(opts);
    PQfreemem(perr);
    vn_buf_free(&b);
    if (rc != 0)
        target_free(t);
    return rc;
}

/* Route server notices (NOTICE, WARNING) into the log, naming the file being applied. */
static void on_notice(void *arg, const PGresult *res)
{
    const struct notice_ctx *ctx = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    int level = VN_LOG_INFO;

    if (sev != NULL && strcmp(sev, "WARNING") == 0)
        level = VN_LOG_WARN;
    else if (sev != NULL && (strcmp(sev, "DEBUG") == 0 || strcmp(sev, "LOG") == 0))
        level = VN_LOG_DEBUG;
    vn_log_emit(level, MOD, NULL, NULL, "%s%spostgres %s: %s", ctx->file ? ctx->file : "",
                ctx->file ? ": " : "", sev ? sev : "NOTICE", msg ? msg : "");
}

/* Connect to url. Returns 0 with *out set, or VN_EDOWN with a password-free message in err. */
static int pg_connect(const char *url, const struct pg_target *t, struct notice_ctx *nctx,
                      PGconn **out, struct vn_buf *err)
{
    /* Keywords before dbname are defaults the URL may override; client_encoding
     * after it is forced, because files are UTF-8 and error positions count
     * UTF-8 characters. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", "client_encoding",
                                NULL};
    const char *const vals[] = {"10", "vestnik-migrate", url, "UTF8", NULL};
    struct vn_buf b = VN_BUF_INIT;
    PGconn *conn = NULL;
    int rc = 0;

    *out = NULL;
    conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        /* Scrub libpq's words only: our own text has no password in it. */
        append_oneline(&b, conn ? PQerrorMessage(conn) : "out of memory");
        scrub(&b, t->password);
        scrub(&b, t->raw_password);
        vn_buf_printf(err, "cannot connect to PostgreSQL at %s: %s\n", t->text,
                      b.data ? b.data : "");
        rc = VN_EDOWN;
        goto out;
    }
    PQsetNoticeReceiver(conn, on_notice, nctx);
    *out = conn;
    conn = NULL;
out:
    if (conn != NULL)
        PQfinish(conn);
    vn_buf_free(&b);
    return rc;
}

/* Line and column (1-based) of the pos-th character (1-based, UTF-8) of sql. */
static void sql_position(const char *sql, size_t len, long pos, long *line, long *col)
{
    long ch = 0;
    *line = 1;
    *col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)sql[i];
        if ((c & 0xC0) == 0x80)
            continue; /* UTF-8 continuation byte: same character */
        ch++;
        (*col)++;
        if (ch == pos)
            return;
        if (c == '\n') {
            (*line)++;
            *col = 0;
        }
    }
}

/*
 * Append PostgreSQL's error for res (or the connection's) as one line:
 * "file:line:col: ERROR 42601: message (detail: ...; hint: ...)". m may be
 * NULL for the migrator's own statements.
 */
static void describe_pg_error(PGconn *conn, const PGresult *res, const struct db_migration *m,
                              struct vn_buf *out)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *sev = res ? PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    const char *where = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;

    if (m != NULL) {
        vn_buf_puts(out, m->file);
        char *end = NULL;
        long p = pos ? strtol(pos, &end, 10) : 0;
        if (pos != NULL && end != pos && *end == '\0' && p > 0) {
            long line = 0, col = 0;
            sql_position(m->sql, m->sql_len, p, &line, &col);
            vn_buf_printf(out, ":%ld:%ld", line, col);
        }
        vn_buf_puts(out, ": ");
    }
    if (msg == NULL) {
        const char *cm = PQerrorMessage(conn);
        append_oneline(out, cm && *cm ? cm : "unknown error (connection lost?)");
        return;
    }
    vn_buf_printf(out, "%s", sev ? sev : "ERROR");
    if (state != NULL)
        vn_buf_printf(out, " %s", state);
    vn_buf_puts(out, ": ");
    append_oneline(out, msg);
    if (detail != NULL) {
        vn_buf_puts(out, " (detail: ");
        append_oneline(out, detail);
        vn_buf_putc(out, ')');
    }
    if (hint != NULL) {
        vn_buf_puts(out, " (hint: ");
        append_oneline(out, hint);
        vn_buf_putc(out, ')');
    }
    if (where != NULL) {
        vn_buf_puts(out, " (context: ");
        append_oneline(out, where);
        vn_buf_putc(out, ')');
    }
}

/*
 * Run one statement of the migrator's own (not a migration file), expecting
 * want. Returns 0 with *res_out set when res_out is not NULL (caller clears),
 * or VN_EIO with "what: PostgreSQL's message" in err.
 */
static int run(PGconn *conn, const char *sql, int nparams, const char *const *params,
               ExecStatusType want, PGresult **res_out, const char *what, struct vn_buf *err)
{
    PGresult *res = NULL;
    int rc = 0;

    if (res_out != NULL)
        *res_out = NULL;
    res =
        nparams ? PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(conn, sql);
    if (PQresultStatus(res) != want) {
        vn_buf_printf(err, "%s: ", what);
        describe_pg_error(conn, res, NULL, err);
        vn_buf_putc(err, '\n');
        rc = VN_EIO;
        goto out;
    }
    if (res_out != NULL) {
        *res_out = res;
        res = NULL;
    }
out:
    PQclear(res);
    return rc;
}

/* Take the migration lock, saying so if another run holds it. Returns 0 or VN_EIO. */
static int lock_take(PGconn *conn, struct vn_buf *err)
{
    char key[24];
    const char *params[1] = {key};
    PGresult *res = NULL;
    int rc = 0;

    snprintf(key, sizeof(key), "%" PRId64, DB_MIGRATE_LOCK_KEY);
    rc = run(conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, PGRES_TUPLES_OK, &res,
             "taking the migration lock", err);
    if (rc != 0)
        goto out;
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        goto out;
    vn_info(MOD, "another vestnik migrate holds the migration lock; waiting for it to finish");
    rc = run(conn, "SELECT pg_advisory_lock($1::bigint)", 1, params, PGRES_TUPLES_OK, NULL,
             "waiting for the migration lock", err);
out:
    PQclear(res);
    return rc;
}

static void lock_release(PGconn *conn)
{
    char key[24];
    const char *params[1] = {key};
    struct vn_buf err = VN_BUF_INIT;

    snprintf(key, sizeof(key), "%" PRId64, DB_MIGRATE_LOCK_KEY);
    /* Closing the session releases it too; failing here only delays that. */
    if (run(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, params, PGRES_TUPLES_OK, NULL,
            "releasing the migration lock", &err) != 0)
        vn_warn(MOD, "%s", err.data);
    vn_buf_free(&err);
}

static const char create_table_sql[] =
    "CREATE TABLE IF NOT EXISTS public.schema_migrations (\n"
    "    version    integer PRIMARY KEY,\n"
    "    name       text NOT NULL,\n"
    "    checksum   text NOT NULL,\n"
    "    applied_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "COMMENT ON TABLE public.schema_migrations IS "
    "'Migrations applied by vestnik migrate: one row per db/migrations/NNNN_name.sql file, "
    "with the SHA-256 of its bytes. Written only by the migrator.'";

/*
 * Read public.schema_migrations into *rows (borrowing from *res, which the
 * caller clears). *exists says whether the table is there; if it is not,
 * there are no rows. Returns 0 or VN_EIO.
 */
static int read_applied(PGconn *conn, int *exists, PGresult **res, struct db_applied **rows,
                        size_t *nrows, struct vn_buf *err)
{
    PGresult *probe = NULL;
    struct db_applied *out = NULL;
    int n = 0;
    int rc = 0;

    *exists = 0;
    *res = NULL;
    *rows = NULL;
    *nrows = 0;
    rc = run(conn, "SELECT to_regclass('public.schema_migrations') IS NOT NULL", 0, NULL,
             PGRES_TUPLES_OK, &probe, "looking for public.schema_migrations", err);
    if (rc != 0)
        goto out;
    *exists = strcmp(PQgetvalue(probe, 0, 0), "t") == 0;
    if (!*exists)
        goto out;
    rc = run(conn,
             "SELECT version, name, checksum, "
             "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"') "
             "FROM public.schema_migrations ORDER BY version",
             0, NULL, PGRES_TUPLES_OK, res,
             "reading public.schema_migrations (is it another tool's table?)", err);
    if (rc != 0)
        goto out;
    n = PQntuples(*res);
    out = xcalloc((size_t)n, sizeof(*out));
    for (int i = 0; i < n; i++) {
        const char *v = PQgetvalue(*res, i, 0);
        char *end = NULL;
        errno = 0;
        long version = strtol(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || version < INT32_MIN || version > INT32_MAX) {
            vn_buf_printf(err, "public.schema_migrations has a bad version \"%s\"\n", v);
            rc = VN_EIO;
            goto out;
        }
        out[i].version = (int32_t)version;
        out[i].name = PQgetvalue(*res, i, 1);
        out[i].checksum = PQgetvalue(*res, i, 2);
        out[i].applied_at = PQgetvalue(*res, i, 3);
    }
    *rows = out;
    *nrows = (size_t)n;
    out = NULL;
out:
    PQclear(probe);
    free(out);
    if (rc != 0) {
        PQclear(*res);
        *res = NULL;
    }
    return rc;
}

/* After PQexec left the connection in a COPY state, end it and drain the results. */
static void abandon_copy(PGconn *conn, ExecStatusType st)
{
    PGresult *r = NULL;
    if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) {
        PQputCopyEnd(conn, "COPY FROM STDIN is not supported in migrations");
    } else if (st == PGRES_COPY_OUT) {
        char *buf = NULL;
        while (PQgetCopyData(conn, &buf, 0) > 0) {
            PQfreemem(buf);
            buf = NULL;
        }
    }
    for (;;) {
        r = PQgetResult(conn);
        if (r == NULL)
            break;
        PQclear(r);
    }
}

/*
 * Apply m in its own transaction and record it. Returns 0, or a negative
 * VN_E code with one line in err naming the file and PostgreSQL's error; on
 * error the transaction is rolled back, so nothing of m stays behind.
 */
static int apply_one(PGconn *conn, struct notice_ctx *nctx, const struct db_migration *m,
                     struct vn_buf *err)
{
    char version[16];
    const char *params[3] = {version, m->name, m->checksum};
    PGresult *res = NULL;
    ExecStatusType st;
    int rc = 0;

    snprintf(version, sizeof(version), "%" PRId32, m->version);
    rc = run(conn, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL, "starting a transaction", err);
    if (rc != 0)
        goto out;

    /* The whole file as one simple query: several statements, one transaction. */
    nctx->file = m->file;
    res = PQexec(conn, m->sql);
    nctx->file = NULL;
    st = PQresultStatus(res);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        abandon_copy(conn, st);
        vn_buf_printf(err,
                      "%s: COPY to or from STDIN/STDOUT cannot run in a migration; "
                      "use INSERT or COPY from a server-side file\n",
                      m->file);
        rc = VN_EINVAL;
        goto out;
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        describe_pg_error(conn, res, m, err);
        vn_buf_puts(err, "; rolled back, nothing of this file was applied\n");
        rc = VN_EIO;
        goto out;
    }
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        vn_buf_printf(err,
                      "%s ended the migrator's transaction itself (COMMIT, ROLLBACK or "
                      "END in the file), so its statements ran outside it and some may "
                      "have been committed; it is NOT recorded as applied. Remove those "
                      "statements (each file already runs in its own transaction), "
                      "repair the database by hand, then run again\n",
                      m->file);
        rc = VN_EINVAL;
        goto out;
    }
    rc = run(conn,
             "INSERT INTO public.schema_migrations (version, name, checksum) "
             "VALUES ($1::integer, $2, $3)",
             3, params, PGRES_COMMAND_OK, NULL, "recording the migration", err);
    if (rc != 0)
        goto out;
    /* COMMIT can still fail (deferred constraints); then the file's changes are gone. */
    PQclear(res);
    res = PQexec(conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        describe_pg_error(conn, res, m, err);
        vn_buf_puts(err, " (at COMMIT); rolled back, nothing of this file was applied\n");
        rc = VN_EIO;
        goto out;
    }
out:
    PQclear(res);
    if (rc != 0 && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}

static const char *state_name(enum db_migration_state s)
{
    switch (s) {
    case DB_MIGRATION_APPLIED:
        return "applied";
    case DB_MIGRATION_PENDING:
        return "pending";
    case DB_MIGRATION_EDITED:
        return "EDITED";
    case DB_MIGRATION_MISSING:
        return "MISSING";
    }
    return "?";
}

/*
 * Print the --status table to stdout. Returns the number of problems
 * (edited or missing migrations).
 */
static int print_status(const struct db_migration_set *set, const struct pg_target *t,
                        const struct db_migration_status *rows, size_t nrows)
{
    size_t applied = 0, pending = 0, problems = 0;
    int width = 4;
    struct vn_buf line = VN_BUF_INIT;

    for (size_t i = 0; i < nrows; i++) {
        const char *name = rows[i].file ? rows[i].file->name : rows[i].row->name;
        int n = (int)strlen(name ? name : "?");
        if (n > width)
            width = n;
    }
    printf("database:   %s\nmigrations: %s\n\n", t->text, set->dir);
    printf("%-8s %-*s %-8s %-20s %s\n", "VERSION", width, "NAME", "STATE", "APPLIED AT",
           "CHECKSUM");
    for (size_t i = 0; i < nrows; i++) {
        const struct db_migration_status *r = &rows[i];
        const char *name = r->file ? r->file->name : r->row->name;
        const char *at = r->row && r->row->applied_at ? r->row->applied_at : "-";
        const char *sum = r->file ? r->file->checksum : r->row->checksum;
        printf("%04" PRId32 "     %-*s %-8s %-20s %.*s\n", r->version, width, name ? name : "?",
               state_name(r->state), at, SUM_SHORT, sum ? sum : "?");
        if (r->state == DB_MIGRATION_APPLIED)
            applied++;
        else if (r->state == DB_MIGRATION_PENDING)
            pending++;
        else
            problems++;
    }
    printf("\n%zu applied, %zu pending", applied, pending);
    if (problems)
        printf(", %zu in trouble:", problems);
    printf("\n");
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].state != DB_MIGRATION_EDITED && rows[i].state != DB_MIGRATION_MISSING)
            continue;
        vn_buf_reset(&line);
        db_migration_problem(&rows[i], set->dir, &line);
        printf("  %s\n", line.data);
    }
    vn_buf_free(&line);
    return (int)problems;
}

/* Log each line of text as its own error line. */
static void log_lines(int level, const char *text)
{
    const char *p = text;
    while (p != NULL && *p) {
        size_t n = strcspn(p, "\n");
        if (n > 0)
            vn_log_emit(level, MOD, NULL, NULL, "%.*s", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

/* Log fields naming a migration: "version":1,"file":"0001_init.sql". Caller frees. */
static char *migration_fields(const struct db_migration *m)
{
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_printf(&b, "\"version\":%" PRId32 ",\"file\":", m->version);
    vn_buf_json_str(&b, m->file);
    return vn_buf_steal(&b);
}

int db_migrate_main(const struct vn_config *cfg, int argc, char **argv)
{
    struct migrate_opts opts;
    struct db_migration_set set = {0};
    struct pg_target target = {0};
    struct notice_ctx nctx = {NULL};
    struct vn_buf err = VN_BUF_INIT;
    struct db_applied *applied = NULL;
    struct db_migration_status *rows = NULL;
    struct db_plan plan = {0};
    PGconn *conn = NULL;
    PGresult *applied_res = NULL;
    const char *dir = NULL;
    size_t napplied = 0, nrows = 0, done = 0;
    int32_t newest = -1;
    int exists = 0, locked = 0;
    int code = 1;

    if (parse_args(argc, argv, &opts) != 0)
        return 2;
    if (opts.help) {
        print_help(cfg);
        return 0;
    }
    dir = opts.dir ? opts.dir : cfg->migrations_dir;
    if (dir == NULL || *dir == '\0') {
        fprintf(stderr,
                "vestnik migrate: no migrations directory; set MIGRATIONS_DIR or "
                "pass --dir\n%s",
                usage_line);
        return 2;
    }
    if (cfg->database_url == NULL || *cfg->database_url == '\0') {
        vn_error(MOD, "DATABASE_URL is empty");
        goto out;
    }

    /* Files first: a broken directory fails before touching the database. */
    if (db_migrations_scan(dir, &set, &err) != 0)
        goto out;
    if (target_parse(cfg->database_url, &target, &err) != 0)
        goto out;
    if (pg_connect(cfg->database_url, &target, &nctx, &conn, &err) != 0)
        goto out;
    vn_debug(MOD, "connected to PostgreSQL at %s", target.text);

    if (opts.status) {
        /* Read-only: no lock, no table created. */
        if (read_applied(conn, &exists, &applied_res, &applied, &napplied, &err) != 0)
            goto out;
        if (db_migrate_status(&set, applied, napplied, &rows, &nrows, &err) != 0)
            goto out;
        code = print_status(&set, &target, rows, nrows) ? 1 : 0;
        goto out;
    }

    if (lock_take(conn, &err) != 0)
        goto out;
    locked = 1;
    if (read_applied(conn, &exists, &applied_res, &applied, &napplied, &err) != 0)
        goto out;
    if (!exists && run(conn, create_table_sql, 0, NULL, PGRES_COMMAND_OK, NULL,
                       "creating public.schema_migrations", &err) != 0)
        goto out;
    if (db_migrate_plan(&set, applied, napplied, &plan, &err) != 0)
        goto out;
    for (size_t i = 0; i < napplied; i++)
        if (applied[i].version > newest)
            newest = applied[i].version;
    if (plan.count == 0) {
        vn_info(MOD, "nothing to do: %zu applied", plan.applied);
        code = 0;
        goto out;
    }
    for (size_t i = 0; i < plan.count; i++) {
        const struct db_migration *m = plan.pending[i];
        char *fields = migration_fields(m);
        uint64_t t0 = vn_now_ms();
        if (m->version < newest)
            vn_log_emit(VN_LOG_WARN, MOD, NULL, fields,
                        "%s is older than the newest applied migration (version %" PRId32
                        "); applying it anyway, check that it does not depend on order",
                        m->file, newest);
        /* The file name without ".sql": "0001_init". */
        int stem = (int)strlen(m->file) - 4;
        vn_log_emit(VN_LOG_INFO, MOD, NULL, fields, "applying %.*s", stem, m->file);
        int r = apply_one(conn, &nctx, m, &err);
        if (r == 0)
            vn_log_emit(VN_LOG_INFO, MOD, NULL, fields, "applied %.*s in %llu ms", stem, m->file,
                        (unsigned long long)(vn_now_ms() - t0));
        free(fields);
        if (r != 0)
            goto out;
        done++;
    }
    vn_info(MOD, "applied %zu migration%s (%zu applied in all)", done, done == 1 ? "" : "s",
            plan.applied + done);
    code = 0;
out:
    if (code != 0) {
        log_lines(VN_LOG_ERROR, err.data);
        if (done > 0)
            vn_error(MOD, "applied %zu of %zu pending migrations before the failure", done,
                     plan.count);
    }
    if (locked && conn != NULL && PQstatus(conn) == CONNECTION_OK)
        lock_release(conn);
    if (conn != NULL)
        PQfinish(conn);
    PQclear(applied_res);
    free(applied);
    free(rows);
    db_plan_free(&plan);
    db_migrations_free(&set);
    target_free(&target);
    vn_buf_free(&err);
    return code;
}
