/*
 * test_config.c - cfg_load, cfg_print and the parsers of core/config.c,
 * driven by a fake environment (a NULL-terminated name/value table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

struct kv {
    const char *name;
    const char *value;
};

static const char *fake_lookup(const char *name, void *ud)
{
    for (const struct kv *e = ud; e && e->name; e++)
        if (strcmp(e->name, name) == 0)
            return e->value;
    return NULL;
}

/* Load env, return the count; *errors gets the error text ("" when none). */
static int load(struct vn_config *cfg, const struct kv *env, char **errors)
{
    struct vn_buf b = VN_BUF_INIT;
    int n = cfg_load(cfg, fake_lookup, (void *)env, &b);
    *errors = vn_buf_steal(&b);
    return n;
}

/* Load exactly one variable expected to be rejected and compare the message. */
static void assert_rejected(const char *name, const char *value, const char *want)
{
    const struct kv env[] = {{name, value}, {NULL, NULL}};
    struct vn_config cfg;
    char *err = NULL;
    assert_int_equal(load(&cfg, env, &err), 1);
    assert_string_equal(err, want);
    free(err);
    cfg_free(&cfg);
}

static void test_defaults_valid(void **state)
{
    (void)state;
    const struct kv env[] = {{NULL, NULL}};
    struct vn_config cfg;
    char *err = NULL;
    /* Zero errors proves every built-in default passes its own parser. */
    assert_int_equal(load(&cfg, env, &err), 0);
    assert_string_equal(err, "");
    free(err);
    assert_string_equal(cfg.http_host, "127.0.0.1");
    assert_int_equal(cfg.http_port, 8080);
    assert_int_equal(cfg.http_max_body, 1024 * 1024);
    assert_int_equal(cfg.http_timeout_ms, 30000);
    assert_string_equal(cfg.api_key, "");
    assert_int_equal(cfg.log_level, VN_LOG_INFO);
    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg.database_url, "postgresql://vestnik:vestnik@127.0.0.1:5432/vestnik");
    assert_string_equal(cfg.amqp_url, "amqp://guest:guest@127.0.0.1:5672/");
    assert_int_equal(cfg.amqp_prefetch, 256);
    assert_int_equal(cfg.notify_max_attempts, 5);
    assert_int_equal(cfg.notify_claim_lease_ms, 30000);
    assert_int_equal(cfg.notify_max_event_bytes, 256 * 1024);
    assert_string_equal(cfg.notify_retry_ladder, "10s,1m,10m,1h");
    assert_int_equal(cfg.smtp_starttls, 0);
    assert_string_equal(cfg.amqp_exchange, "vestnik");
    assert_int_equal(cfg.health_interval_ms, 1000);
    assert_int_equal(cfg.reconnect_max_ms, 5000);
    assert_int_equal(cfg.shutdown_timeout_ms, 10000);
    assert_string_equal(cfg.migrations_dir, "db/migrations");
    cfg_free(&cfg);
    assert_null(cfg.http_host);
    cfg_free(&cfg); /* second free is harmless: pointers were cleared */

    /* A NULL lookup means "nothing set". */
    struct vn_buf b = VN_BUF_INIT;
    assert_int_equal(cfg_load(&cfg, NULL, NULL, &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(cfg.http_port, 8080);
    cfg_free(&cfg);
    vn_buf_free(&b);
}

static void test_table_is_complete(void **state)
{
    (void)state;
    size_t n = 0;
    const struct cfg_var *v = cfg_vars(&n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(v[i].name);
        assert_non_null(v[i].def);
        assert_non_null(v[i].help);
        assert_true(strlen(v[i].help) > 0);
        if (v[i].type == CFG_ENUM || v[i].type == CFG_URL)
            assert_non_null(v[i].choices);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(v[i].name, v[k].name);
    }
}

static void test_good_values(void **state)
{
    (void)state;
    const struct kv env[] = {
        {"HTTP_HOST", "0.0.0.0"},
        {"HTTP_PORT", "9000"},
        {"HTTP_MAX_BODY", "2m"},
        {"HTTP_TIMEOUT", "45s"},
        {"API_KEY", "k3y"},
        {"LOG_LEVEL", "DEBUG"},
        {"REDIS_URL", "redis://:pw@redis:6380/2"},
        {"DATABASE_URL", "postgres://u@db/app"},
        {"AMQP_URL", "amqp://rabbit"},
        {"AMQP_PREFETCH", "1"},
        {"HEALTH_INTERVAL", "100"},
        {"RECONNECT_MAX", "1m"},
        {"SHUTDOWN_TIMEOUT", "1500ms"},
        {NULL, NULL},
    };
    struct vn_config cfg;
    char *err = NULL;
    assert_int_equal(load(&cfg, env, &err), 0);
    assert_string_equal(err, "");
    free(err);
    assert_string_equal(cfg.http_host, "0.0.0.0");
    assert_int_equal(cfg.http_port, 9000);
    assert_int_equal(cfg.http_max_body, 2097152);
    assert_int_equal(cfg.http_timeout_ms, 45000);
    assert_string_equal(cfg.api_key, "k3y");
    assert_int_equal(cfg.log_level, VN_LOG_DEBUG);
    assert_string_equal(cfg.redis_url, "redis://:pw@redis:6380/2");
    assert_string_equal(cfg.database_url, "postgres://u@db/app");
    assert_string_equal(cfg.amqp_url, "amqp://rabbit");
    assert_int_equal(cfg.amqp_prefetch, 1);
    assert_int_equal(cfg.health_interval_ms, 100); /* bare number = ms */
    assert_int_equal(cfg.reconnect_max_ms, 60000);
    assert_int_equal(cfg.shutdown_timeout_ms, 1500);
    /* Untouched variables keep their defaults. */
    assert_string_equal(cfg.amqp_exchange, "vestnik");
    cfg_free(&cfg);
}

/* One variable, one value, the resulting field: each type's accepted forms. */
static void test_good_values_per_type(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
        int64_t want;
    } cases[] = {
        {"HTTP_PORT", "1", 1},
        {"HTTP_PORT", "65535", 65535},
        {"HTTP_MAX_BODY", "1024", 1024},
        {"HTTP_MAX_BODY", "1k", 1024},
        {"HTTP_MAX_BODY", "512KiB", 512 * 1024},
        {"HTTP_MAX_BODY", "2M", 2097152},
        {"HTTP_MAX_BODY", "2mb", 2097152},
        {"HTTP_MAX_BODY", "64m", 64 * 1024 * 1024},
        {"SHUTDOWN_TIMEOUT", "0", 0},
        {"SHUTDOWN_TIMEOUT", "1500ms", 1500},
        {"SHUTDOWN_TIMEOUT", "2s", 2000},
        {"SHUTDOWN_TIMEOUT", "1m", 60000},
        {"SHUTDOWN_TIMEOUT", "300S", 300000},
        {"LOG_LEVEL", "debug", VN_LOG_DEBUG},
        {"LOG_LEVEL", "Info", VN_LOG_INFO},
        {"LOG_LEVEL", "WARN", VN_LOG_WARN},
        {"LOG_LEVEL", "error", VN_LOG_ERROR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct kv env[] = {{cases[i].name, cases[i].value}, {NULL, NULL}};
        struct vn_config cfg;
        char *err = NULL;
        int n = load(&cfg, env, &err);
        if (n != 0)
            fail_msg("%s=%s rejected: %s", cases[i].name, cases[i].value, err);
        free(err);
        int64_t got = 0;
        if (strcmp(cases[i].name, "HTTP_PORT") == 0)
            got = cfg.http_port;
        else if (strcmp(cases[i].name, "HTTP_MAX_BODY") == 0)
            got = cfg.http_max_body;
        else if (strcmp(cases[i].name, "SHUTDOWN_TIMEOUT") == 0)
            got = cfg.shutdown_timeout_ms;
        else
            got = cfg.log_level;
        if (got != cases[i].want)
            fail_msg("%s=%s gave %lld, want %lld", cases[i].name, cases[i].value, (long long)got,
                     (long long)cases[i].want);
        cfg_free(&cfg);
    }
}

static void test_int_errors(void **state)
{
    (void)state;
    assert_rejected("HTTP_PORT", "abc",
                    "HTTP_PORT: expected an integer from 1 to 65535, got \"abc\"\n");
    assert_rejected("HTTP_PORT", "0",
                    "HTTP_PORT: expected an integer from 1 to 65535, got \"0\"\n");
    assert_rejected("HTTP_PORT", "70000",
                    "HTTP_PORT: expected an integer from 1 to 65535, got \"70000\"\n");
    assert_rejected("HTTP_PORT", "",
                    "HTTP_PORT: expected an integer from 1 to 65535, got an empty value\n");
    assert_rejected("HTTP_PORT", " 80",
                    "HTTP_PORT: expected an integer from 1 to 65535, got \" 80\"\n");
    assert_rejected("HTTP_PORT", "80 ",
                    "HTTP_PORT: expected an integer from 1 to 65535, got \"80 \"\n");
    assert_rejected("HTTP_PORT", "8080.0",
                    "HTTP_PORT: expected an integer from 1 to 65535, got \"8080.0\"\n");
    assert_rejected("HTTP_PORT", "99999999999999999999",
                    "HTTP_PORT: expected an integer from 1 to 65535, got "
                    "\"99999999999999999999\"\n");
    /* Control characters in the echoed value are escaped, not printed raw. */
    assert_rejected("HTTP_PORT", "80\n81",
                    "HTTP_PORT: expected an integer from 1 to 65535, got \"80\\n81\"\n");
}

static void test_size_errors(void **state)
{
    (void)state;
    assert_rejected("HTTP_MAX_BODY", "10x",
                    "HTTP_MAX_BODY: expected a size in bytes from 1024 to 67108864 (suffixes k, "
                    "m, g allowed), got \"10x\"\n");
    assert_rejected("HTTP_MAX_BODY", "1",
                    "HTTP_MAX_BODY: expected a size in bytes from 1024 to 67108864 (suffixes k, "
                    "m, g allowed), got \"1\"\n");
    assert_rejected("HTTP_MAX_BODY", "65m",
                    "HTTP_MAX_BODY: expected a size in bytes from 1024 to 67108864 (suffixes k, "
                    "m, g allowed), got \"65m\"\n");
    assert_rejected("HTTP_MAX_BODY", "1.5m",
                    "HTTP_MAX_BODY: expected a size in bytes from 1024 to 67108864 (suffixes k, "
                    "m, g allowed), got \"1.5m\"\n");
    assert_rejected("HTTP_MAX_BODY", "-1k",
                    "HTTP_MAX_BODY: expected a size in bytes from 1024 to 67108864 (suffixes k, "
                    "m, g allowed), got \"-1k\"\n");
    assert_rejected("HTTP_MAX_BODY", "99999999999999999999g",
                    "HTTP_MAX_BODY: expected a size in bytes from 1024 to 67108864 (suffixes k, "
                    "m, g allowed), got \"99999999999999999999g\"\n");
}

static void test_duration_errors(void **state)
{
    (void)state;
    assert_rejected("SHUTDOWN_TIMEOUT", "-1",
                    "SHUTDOWN_TIMEOUT: expected a duration from 0ms to 300s (e.g. 500ms, 10s, "
                    "2m), got \"-1\"\n");
    assert_rejected("SHUTDOWN_TIMEOUT", "301s",
                    "SHUTDOWN_TIMEOUT: expected a duration from 0ms to 300s (e.g. 500ms, 10s, "
                    "2m), got \"301s\"\n");
    assert_rejected("SHUTDOWN_TIMEOUT", "10 s",
                    "SHUTDOWN_TIMEOUT: expected a duration from 0ms to 300s (e.g. 500ms, 10s, "
                    "2m), got \"10 s\"\n");
    assert_rejected("SHUTDOWN_TIMEOUT", "",
                    "SHUTDOWN_TIMEOUT: expected a duration from 0ms to 300s (e.g. 500ms, 10s, "
                    "2m), got an empty value\n");
    assert_rejected("HEALTH_INTERVAL", "99ms",
                    "HEALTH_INTERVAL: expected a duration from 100ms to 60s (e.g. 500ms, 10s, "
                    "2m), got \"99ms\"\n");
}

static void test_enum_errors(void **state)
{
    (void)state;
    assert_rejected("LOG_LEVEL", "loud",
                    "LOG_LEVEL: expected one of debug, info, warn, error, got \"loud\"\n");
    assert_rejected("LOG_LEVEL", "debug|info",
                    "LOG_LEVEL: expected one of debug, info, warn, error, got \"debug|info\"\n");
    assert_rejected("LOG_LEVEL", "",
                    "LOG_LEVEL: expected one of debug, info, warn, error, got an empty value\n");
}

static void test_url_errors(void **state)
{
    (void)state;
    /* URLs are secret: the value is never echoed, right or wrong. */
    assert_rejected("REDIS_URL", "http://x",
                    "REDIS_URL: expected a URL with scheme redis://, got an invalid value (not "
                    "shown: secret)\n");
    assert_rejected("REDIS_URL", "redis://",
                    "REDIS_URL: expected a URL with scheme redis://, got an invalid value (not "
                    "shown: secret)\n");
    assert_rejected("REDIS_URL", "127.0.0.1:6379",
                    "REDIS_URL: expected a URL with scheme redis://, got an invalid value (not "
                    "shown: secret)\n");
    assert_rejected("REDIS_URL", "",
                    "REDIS_URL: expected a URL with scheme redis://, got an invalid value (not "
                    "shown: secret)\n");
    assert_rejected("DATABASE_URL", "mysql://u:pw@h/db",
                    "DATABASE_URL: expected a URL with scheme postgres or postgresql://, got an "
                    "invalid value (not shown: secret)\n");
}

static void test_secret_never_echoed(void **state)
{
    (void)state;
    const struct kv env[] = {
        {"REDIS_URL", "http://:hunter2@cache:6379/0"},
        {"AMQP_URL", "http://guest:s3cr3t@rabbit/"},
        {NULL, NULL},
    };
    struct vn_config cfg;
    char *err = NULL;
    assert_int_equal(load(&cfg, env, &err), 2);
    assert_null(strstr(err, "hunter2"));
    assert_null(strstr(err, "s3cr3t"));
    assert_null(strstr(err, "cache"));
    assert_non_null(strstr(err, "REDIS_URL: "));
    assert_non_null(strstr(err, "AMQP_URL: "));
    /* The rejected values did not replace the defaults. */
    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg.amqp_url, "amqp://guest:guest@127.0.0.1:5672/");
    free(err);
    cfg_free(&cfg);
}

static void test_many_errors_all_reported(void **state)
{
    (void)state;
    /* Four bad values and one good one (HTTP_HOST). Reports come in table
     * order, not in the order of this list. */
    const struct kv env[] = {
        {"SHUTDOWN_TIMEOUT", "-1"}, {"HTTP_PORT", "abc"},     {"LOG_LEVEL", "loud"},
        {"HTTP_HOST", "::"},        {"HTTP_MAX_BODY", "10x"}, {NULL, NULL},
    };
    struct vn_config cfg;
    char *err = NULL;
    assert_int_equal(load(&cfg, env, &err), 4);
    assert_string_equal(
        err, "HTTP_PORT: expected an integer from 1 to 65535, got \"abc\"\n"
             "HTTP_MAX_BODY: expected a size in bytes from 1024 to 67108864 (suffixes k, m, g "
             "allowed), got \"10x\"\n"
             "LOG_LEVEL: expected one of debug, info, warn, error, got \"loud\"\n"
             "SHUTDOWN_TIMEOUT: expected a duration from 0ms to 300s (e.g. 500ms, 10s, 2m), "
             "got \"-1\"\n");
    /* Bad ones keep defaults; the good one still applies. */
    assert_int_equal(cfg.http_port, 8080);
    assert_int_equal(cfg.http_max_body, 1048576);
    assert_int_equal(cfg.log_level, VN_LOG_INFO);
    assert_int_equal(cfg.shutdown_timeout_ms, 10000);
    assert_string_equal(cfg.http_host, "::");
    free(err);
    cfg_free(&cfg);
}

/* The printed line for name, without its trailing newline; caller frees. */
static char *line_of(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            char *out = malloc(len + 1);
            memcpy(out, p, len);
            out[len] = '\0';
            return out;
        }
        p += len + (nl != NULL);
    }
    fail_msg("no line for %s in:\n%s", name, text);
    return NULL;
}

/* NAME=value, padding to column 48 (at least one space), then "# source". */
static void assert_printed(const char *text, const char *name, const char *value, const char *src)
{
    char *line = line_of(text, name);
    size_t head = strlen(name) + 1 + strlen(value);
    char *want = xasprintf("%s=%s", name, value);
    assert_true(strncmp(line, want, strlen(want)) == 0);
    const char *hash = strstr(line + head, "# ");
    assert_non_null(hash);
    for (const char *p = line + head; p < hash; p++)
        assert_int_equal(*p, ' ');
    assert_true(hash > line + head);
    if (head < 48)
        assert_int_equal(hash - line, 48);
    assert_string_equal(hash + 2, src);
    free(want);
    free(line);
}

static void test_print_redacts_and_marks_source(void **state)
{
    (void)state;
    const struct kv env[] = {
        {"REDIS_URL", "redis://:secret@h:1/0"},
        {"API_KEY", "topkey"},
        {"HTTP_PORT", "9000"},
        {"LOG_LEVEL", "warn"},
        {NULL, NULL},
    };
    struct vn_config cfg;
    char *err = NULL;
    assert_int_equal(load(&cfg, env, &err), 0);
    free(err);
    struct vn_buf out = VN_BUF_INIT;
    cfg_print(&cfg, fake_lookup, (void *)env, &out);

    assert_null(strstr(out.data, "secret"));
    assert_null(strstr(out.data, "topkey"));
    assert_null(strstr(out.data, "vestnik:vestnik@"));
    assert_null(strstr(out.data, "guest:guest@"));
    assert_printed(out.data, "REDIS_URL", "redis://:***@h:1/0", "env");
    assert_printed(out.data, "API_KEY", "***", "env");
    assert_printed(out.data, "HTTP_PORT", "9000", "env");
    assert_printed(out.data, "LOG_LEVEL", "warn", "env");
    assert_printed(out.data, "HTTP_HOST", "127.0.0.1", "default");
    assert_printed(out.data, "HTTP_MAX_BODY", "1048576", "default");
    assert_printed(out.data, "HTTP_TIMEOUT", "30000ms", "default");
    assert_printed(out.data, "DATABASE_URL", "postgresql://vestnik:***@127.0.0.1:5432/vestnik",
                   "default");
    assert_printed(out.data, "AMQP_URL", "amqp://guest:***@127.0.0.1:5672/", "default");
    /* One line per table row, in table order. */
    size_t nvars = 0, lines = 0;
    const struct cfg_var *vars = cfg_vars(&nvars);
    const char *p = out.data;
    for (size_t i = 0; i < nvars; i++) {
        size_t n = strlen(vars[i].name);
        assert_true(strncmp(p, vars[i].name, n) == 0 && p[n] == '=');
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
        lines++;
    }
    assert_string_equal(p, "");
    assert_int_equal(lines, nvars);
    vn_buf_free(&out);
    cfg_free(&cfg);
}

static void test_print_empty_api_key(void **state)
{
    (void)state;
    struct vn_config cfg;
    char *err = NULL;
    const struct kv env[] = {{NULL, NULL}};
    assert_int_equal(load(&cfg, env, &err), 0);
    free(err);
    struct vn_buf out = VN_BUF_INIT;
    cfg_print(&cfg, NULL, NULL, &out);
    /* Empty means "disabled": shown as empty, not as a redacted secret. */
    assert_printed(out.data, "API_KEY", "", "default");
    assert_printed(out.data, "LOG_LEVEL", "info", "default");
    assert_printed(out.data, "AMQP_PREFETCH", "256", "default");
    vn_buf_free(&out);
    cfg_free(&cfg);
}

static void assert_redacted(const char *url, const char *want)
{
    char *got = cfg_redact_url(url);
    assert_string_equal(got, want);
    free(got);
}

static void test_redact_url(void **state)
{
    (void)state;
    assert_redacted("redis://:secret@h:1/0", "redis://:***@h:1/0");
    assert_redacted("amqp://user:pw@rabbit:5672/vh", "amqp://user:***@rabbit:5672/vh");
    assert_redacted("postgresql://u:pw@db", "postgresql://u:***@db"); /* no path */
    assert_redacted("redis://u:@h", "redis://u:***@h");               /* empty password */
    /* Nothing to hide. */
    assert_redacted("redis://h:1/0", "redis://h:1/0");
    assert_redacted("postgres://user@db/app", "postgres://user@db/app");
    assert_redacted("", "");
    assert_redacted("not a url", "not a url");
    /* The last '@' before any query ends userinfo, even past a '/': a raw '/'
     * in a password (base64) must not leak. The price is over-redacting a
     * path that holds '@', which none of our URLs do. */
    assert_redacted("redis://:pa/ss@h:1/0", "redis://:***@h:1/0");
    assert_redacted("redis://h:1/a@b", "redis://h:***@b");
    assert_redacted("redis://h:1?x=a:b@c", "redis://h:1?x=a:b@c");
    assert_redacted("amqp://u:pw@h/vh@x", "amqp://u:***@x");
    /* An unencoded '@' in the password: the last '@' before the path ends
     * userinfo, so the whole password is hidden. */
    assert_redacted("amqp://u:p@ss@h/", "amqp://u:***@h/");
    assert_redacted("redis://:a@b@c@h:6379/0", "redis://:***@h:6379/0");
    /* The first ':' splits user from password, so a password with ':' is
     * hidden whole. */
    assert_redacted("redis://u:a:b@h", "redis://u:***@h");
}

static void test_parsers(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_int_equal(cfg_parse_int("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(cfg_parse_int("-7", &v), 0);
    assert_int_equal(v, -7);
    assert_int_equal(cfg_parse_int("9223372036854775807", &v), 0);
    assert_true(v == INT64_MAX);
    v = 5;
    assert_int_equal(cfg_parse_int("9223372036854775808", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_int("", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_int(NULL, &v), VN_EINVAL);
    assert_int_equal(cfg_parse_int("\t1", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_int("0x10", &v), VN_EINVAL);
    assert_int_equal(v, 5); /* untouched on failure */

    assert_int_equal(cfg_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cfg_parse_size("3b", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(cfg_parse_size("1GiB", &v), 0);
    assert_int_equal(v, 1073741824);
    /* The largest whole number of GiB that fits in int64, then one more. */
    assert_int_equal(cfg_parse_size("8589934591g", &v), 0);
    assert_true(v == 8589934591LL * 1073741824LL);
    assert_int_equal(cfg_parse_size("8589934592g", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_size("99999999999999999999g", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_size("99999999999999999999", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_size("9223372036854775808", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_size("+1k", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_size("1t", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_size("k", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_size(NULL, &v), VN_EINVAL);

    assert_int_equal(cfg_parse_duration("250", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(cfg_parse_duration("2h", &v), 0);
    assert_int_equal(v, 7200000);
    /* LLONG_MAX / 3600000 = 2562047788015 hours fit, one more does not. */
    assert_int_equal(cfg_parse_duration("2562047788015h", &v), 0);
    assert_true(v == 2562047788015LL * 3600000LL);
    assert_int_equal(cfg_parse_duration("2562047788016h", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_duration("99999999999999999999s", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_duration("1d", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_duration("1.5s", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_duration("-1s", &v), VN_EINVAL);
    assert_int_equal(cfg_parse_duration("", &v), VN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_valid),
        cmocka_unit_test(test_table_is_complete),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_good_values_per_type),
        cmocka_unit_test(test_int_errors),
        cmocka_unit_test(test_size_errors),
        cmocka_unit_test(test_duration_errors),
        cmocka_unit_test(test_enum_errors),
        cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_secret_never_echoed),
        cmocka_unit_test(test_many_errors_all_reported),
        cmocka_unit_test(test_print_redacts_and_marks_source),
        cmocka_unit_test(test_print_empty_api_key),
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
