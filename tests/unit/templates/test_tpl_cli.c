/*
 * test_tpl_cli.c - `vestnik template render|check`: output, diagnostics with
 * positions, and exit codes (0 fine, 1 problems, 2 usage), run in-process
 * through tpl__cli_run() with temporary files for stdout and stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "templates/tpl_cli.h"
#include "tpl_test.h"

struct run {
    int rc;
    char *out, *err;
};

static char *slurp(FILE *f)
{
    struct vn_buf b = VN_BUF_INIT;
    char chunk[4096];
    size_t n;
    rewind(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        vn_buf_append(&b, chunk, n);
    fclose(f);
    if (b.data == NULL)
        vn_buf_append(&b, "", 0);
    return vn_buf_steal(&b);
}

/* Run `vestnik template ARGS...` (NULL-terminated). */
static struct run cli(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    argv[argc++] = "template";
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    FILE *out = tmpfile(), *err = tmpfile();
    struct run r;
    r.rc = tpl__cli_run(NULL, argc, argv, out, err);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

static void done(struct run *r)
{
    free(r->out);
    free(r->err);
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("\"%s\" not in:\n%s", (needle), (hay));                                       \
    } while (0)

static char *basic;

static int setup(void **state)
{
    (void)state;
    basic = tt_path("tests/fixtures/templates/sets/basic");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(basic);
    return 0;
}

static void test_help_and_usage(void **state)
{
    (void)state;
    struct run r = cli(NULL);
    assert_int_equal(r.rc, 2);
    assert_contains(r.err, "Usage: vestnik template <render|check>");
    done(&r);
    r = cli("--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "render NAME");
    done(&r);
    r = cli("render", "--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "--channel C");
    done(&r);
    r = cli("check", "-h", NULL);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "FILE:LINE:COL");
    done(&r);
    r = cli("frob", NULL);
    assert_int_equal(r.rc, 2);
    assert_contains(r.err, "unknown command \"frob\"");
    done(&r);
}

static void test_render_usage_errors(void **state)
{
    (void)state;
    static const struct {
        const char *a[6];
        const char *msg;
    } cases[] = {
        {{"render", NULL}, "which template?"},
        {{"render", "x", "--channel", "sms", NULL}, "unknown channel \"sms\""},
        {{"render", "x", "--locale", "klingon!", NULL}, "not a locale"},
        {{"render", "x", "--tz", "Mars/Base", NULL}, "unknown time zone \"Mars/Base\""},
        {{"render", "x", "--now", "tomorrow", NULL}, "--now wants an RFC 3339 time"},
        {{"render", "x", "--bogus", NULL}, "unknown option --bogus"},
        {{"render", "x", "--locale", NULL}, "missing value for --locale"},
        {{"render", "x", "y", NULL}, "unexpected argument y"},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        const char *const *a = cases[i].a;
        struct run r = cli(a[0], a[1], a[2], a[3], a[4], NULL);
        if (r.rc != 2 || strstr(r.err, cases[i].msg) == NULL)
            fail_msg("case %zu: rc %d, stderr: %s", i, r.rc, r.err);
        done(&r);
    }
}

static void test_render(void **state)
{
    (void)state;
    char data[] = "/tmp/vn-tplcli-XXXXXX";
    int fd = mkstemp(data);
    assert_true(fd >= 0);
    const char *json = "{\"name\": \"Анна & Co\"}";
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);

    struct run r =
        cli("render", "greet", "--dir", basic, "--locale", "ru-RU", "--data", data, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "Привет, Анна &amp; Co! — Вестник (Россия)\n");
    assert_contains(r.err, "note: no ru-RU template for greet; using ru");
    done(&r);

    /* data defaults to the sample; --option=value works too */
    r = cli("render", "when", "--dir", basic, "--channel=email", "--tz", "America/New_York",
            "--now", "2026-03-07T12:00:00Z", NULL);
    assert_int_equal(r.rc, 0);
    assert_contains(r.err, "samples/when.json");
    assert_string_equal(r.out, "===== subject =====\n"
                               "Due Mar 8, 2026, 5:30\u202fAM (in 22 hours)\n"
                               "===== text/plain =====\n"
                               "Due Sunday, March 8, 2026\n"
                               "===== text/html =====\n"
                               "<p>Due <b>Sunday, March 8, 2026</b></p>\n");
    done(&r);

    r = cli("render", "when", "--dir", basic, "--channel", "websocket", "--now",
            "2026-03-07T12:00:00Z", NULL);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "\"title\": \"Due in 22 hours\"");
    done(&r);
    unlink(data);
}

static void test_render_failures(void **state)
{
    (void)state;
    struct run r = cli("render", "nope", "--dir", basic, NULL);
    assert_int_equal(r.rc, 1);
    assert_contains(r.err, "no template nope.telegram for locale en (tried en)");
    done(&r);

    char data[] = "/tmp/vn-tplcli-XXXXXX";
    int fd = mkstemp(data);
    const char *bad = "{\n  \"name\": \"x\",\n  oops\n}";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    r = cli("render", "greet", "--dir", basic, "--data", data, NULL);
    assert_int_equal(r.rc, 1);
    char *want = xasprintf("%s:3:3: not valid JSON", data);
    assert_contains(r.err, want);
    free(want);
    done(&r);

    fd = open(data, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "{}", 2), 2);
    close(fd);
    r = cli("render", "greet", "--dir", basic, "--data", data, "--strict", NULL);
    assert_int_equal(r.rc, 1);
    assert_contains(r.err, "greet.telegram.mustache:1:6: no value for {{#name}}");
    done(&r);
    unlink(data);

    r = cli("render", "greet", "--dir", "/nonexistent/templates", NULL);
    assert_int_equal(r.rc, 1);
    assert_contains(r.err, "/nonexistent/templates: cannot read the template directory");
    done(&r);
}

static void test_check(void **state)
{
    (void)state;
    struct run r = cli("check", basic, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    assert_contains(r.err, "13 files in 3 locales, 10 renders with sample data: no problems");
    done(&r);

    char tmpl[] = "/tmp/vn-tplcli-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char *en = xasprintf("%s/en", dir), *f1 = xasprintf("%s/en/a.telegram.mustache", dir);
    char *f2 = xasprintf("%s/en/b.telegram.mustache", dir);
    mkdir(en, 0755);
    FILE *f = fopen(f1, "w");
    fputs("Hi {{ name | shout }}", f);
    fclose(f);
    f = fopen(f2, "w");
    fputs("<b>{{x}}", f);
    fclose(f);
    r = cli("check", dir, NULL);
    assert_int_equal(r.rc, 1);
    char *want = xasprintf("%s:1:14: unknown filter \"shout\"", f1);
    assert_contains(r.out, want);
    free(want);
    assert_contains(r.err, "1 problem");
    done(&r);
    /* compiles, but renders markup Telegram rejects: found with samples */
    unlink(f1);
    char *samples = xasprintf("%s/samples", dir), *s1 = xasprintf("%s/samples/b.json", dir);
    mkdir(samples, 0755);
    f = fopen(s1, "w");
    fputs("{\"x\": 1}", f);
    fclose(f);
    r = cli("check", dir, NULL);
    assert_int_equal(r.rc, 1);
    assert_contains(r.out, "b.telegram.mustache: renders markup Telegram would reject");
    done(&r);
    r = cli("check", dir, "--samples", "/nonexistent", NULL);
    assert_int_equal(r.rc, 2);
    done(&r);
    r = cli("check", "/nonexistent/templates", NULL);
    assert_int_equal(r.rc, 1);
    done(&r);
    unlink(s1);
    unlink(f2);
    rmdir(samples);
    rmdir(en);
    rmdir(dir);
    free(samples);
    free(s1);
    free(en);
    free(f1);
    free(f2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_usage), cmocka_unit_test(test_render_usage_errors),
        cmocka_unit_test(test_render),         cmocka_unit_test(test_render_failures),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
