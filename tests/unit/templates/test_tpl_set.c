/*
 * test_tpl_set.c - template sets on disk: the fallback chain, partial
 * resolution along the render's chain, the formatting locale after a
 * fallback, e-mail in one language, sample checks, every load-time problem
 * with its file and position, and reload keeping the old set when the new
 * one is broken.
 *
 * Uses the committed set in tests/fixtures/templates/sets/basic/ and builds
 * broken sets in temporary directories.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "templates/tpl_set.h"
#include "tpl_test.h"

static struct tpl_set *load_basic(void)
{
    char *dir = tt_path("tests/fixtures/templates/sets/basic");
    struct tpl_set *set = NULL;
    struct vn_buf errors = VN_BUF_INIT;
    int rc = tpl_set_load(dir, NULL, &set, &errors);
    if (rc != 0)
        fail_msg("basic set: %s", errors.data);
    vn_buf_free(&errors);
    free(dir);
    return set;
}

static char *render(const struct tpl_set *set, const char *name, enum tpl_part part,
                    const char *data, const char *locale, const char *tz)
{
    struct json_object *j = tt_json(data);
    struct tpl_render_opts o = {locale, tz, TT_NOW_MS, 0, NULL, NULL, NULL, NULL};
    struct vn_buf out = VN_BUF_INIT;
    struct tpl_error err;
    if (tpl_set_render(set, name, part, j, &o, &out, &err) != 0)
        fail_msg("render %s.%s (%s): %s", name, tpl_part_name(part), locale, err.msg);
    json_object_put(j);
    if (out.data == NULL)
        vn_buf_append(&out, "", 0);
    return vn_buf_steal(&out);
}

#define assert_set_render(set, name, part, data, locale, expected)                                 \
    do {                                                                                           \
        char *g_ = render((set), (name), (part), (data), (locale), "UTC");                         \
        if (strcmp(g_, (expected)) != 0) {                                                         \
            print_error("%s.%s %s\nexpected [%s]\n     got [%s]\n", (name), tpl_part_name(part),   \
                        (locale) ? (const char *)(locale) : "(null)", (expected), g_);             \
            free(g_);                                                                              \
            fail();                                                                                \
        }                                                                                          \
        free(g_);                                                                                  \
    } while (0)

/* ---- temporary sets ---------------------------------------------------- */

static char *mktemp_dir(void)
{
    char tmpl[] = "/tmp/vn-tplset-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return xstrdup(d);
}

static void put(const char *dir, const char *rel, const char *content)
{
    char *path = xasprintf("%s/%s", dir, rel);
    for (char *p = strchr(path + strlen(dir) + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    free(path);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Load must fail; every needle must appear in the errors. */
static void load_fails(const char *dir, const struct tpl_set_opts *opts, int code,
                       const char *const *needles, size_t n)
{
    struct tpl_set *set = (struct tpl_set *)1;
    struct vn_buf errors = VN_BUF_INIT;
    assert_int_equal(tpl_set_load(dir, opts, &set, &errors), code);
    assert_null(set);
    for (size_t i = 0; i < n; i++)
        if (errors.data == NULL || strstr(errors.data, needles[i]) == NULL)
            fail_msg("missing \"%s\" in:\n%s", needles[i], errors.data ? errors.data : "");
    vn_buf_free(&errors);
}

/* ---- tests ------------------------------------------------------------- */

static void test_load_basic(void **state)
{
    (void)state;
    struct tpl_set *set = load_basic();
    assert_int_equal(tpl_set_file_count(set), 13); /* README and samples are not templates */
    assert_int_equal(tpl_set_locale_count(set), 3);
    assert_string_equal(tpl_set_locale(set, 0), "en");
    assert_string_equal(tpl_set_locale(set, 1), "ru");
    assert_string_equal(tpl_set_locale(set, 2), "ru-RU");
    assert_null(tpl_set_locale(set, 3));
    assert_string_equal(tpl_set_default_locale(set), "en");
    assert_non_null(strstr(tpl_set_dir(set), "sets/basic"));
    tpl_set_free(set);
}

static void test_fallback_chain(void **state)
{
    (void)state;
    struct tpl_set *set = load_basic();
    static const struct {
        const char *asked, *found;
    } cases[] = {
        {"ru-RU", "ru"}, {"ru_ru", "ru"}, {"RU", "ru"}, {"ru", "ru"},         {"de-AT", "en"},
        {"en-GB", "en"}, {NULL, "en"},    {"x!", "en"}, {"zh-Hant-TW", "en"},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        const char *found = NULL;
        const struct tpl *t = tpl_set_find(set, "greet", TPL_PART_TELEGRAM, cases[i].asked, &found);
        assert_non_null(t);
        if (strcmp(found, cases[i].found) != 0)
            fail_msg("asked %s: found %s, expected %s", cases[i].asked, found, cases[i].found);
    }
    assert_null(tpl_set_find(set, "greet", TPL_PART_WEBSOCKET, "ru", NULL));
    assert_null(tpl_set_find(set, "nope", TPL_PART_TELEGRAM, "ru", NULL));
    assert_null(tpl_set_find(set, NULL, TPL_PART_TELEGRAM, "ru", NULL));

    struct vn_buf out = VN_BUF_INIT;
    struct tpl_error err;
    struct tpl_render_opts o = {"ru-RU", "UTC", TT_NOW_MS, 0, NULL, NULL, NULL, NULL};
    assert_int_equal(tpl_set_render(set, "nope", TPL_PART_TELEGRAM, NULL, &o, &out, &err),
                     VN_ENOENT);
    assert_string_equal(err.msg,
                        "no template nope.telegram for locale ru-RU (tried ru-RU, ru, en)");
    vn_buf_free(&out);
    tpl_set_free(set);
}

static void test_partials_follow_the_render_chain(void **state)
{
    (void)state;
    struct tpl_set *set = load_basic();
    const char *d = "{\"name\":\"Anna <3\"}";
    /* en: the telegram-specific partial beats the part-less one */
    assert_set_render(set, "greet", TPL_PART_TELEGRAM, d, "en",
                      "Hello, Anna &lt;3! — <i>Vestnik</i>");
    /* ru: no partial in ru, so en's */
    assert_set_render(set, "greet", TPL_PART_TELEGRAM, d, "ru",
                      "Привет, Anna &lt;3! — <i>Vestnik</i>");
    /* ru-RU: ru's template, and ru-RU's own part-less partial (a nearer
     * locale wins over a more specific part) */
    assert_set_render(set, "greet", TPL_PART_TELEGRAM, d, "ru-RU",
                      "Привет, Anna &lt;3! — Вестник (Россия)");
    /* the same part-less partial in e-mail text */
    assert_set_render(set, "greet", TPL_PART_EMAIL_TEXT, d, "en", "Hello Anna <3\n— Vestnik");
    tpl_set_free(set);
}

static void test_formatting_locale_after_fallback(void **state)
{
    (void)state;
    struct tpl_set *set = load_basic();
    const char *d = "{\"d\":\"2026-03-08T09:30:00Z\"}";
    /* German falls back to the English template: English dates, not German */
    assert_set_render(set, "when", TPL_PART_EMAIL_SUBJECT, d, "de",
                      "Due Mar 8, 2026, 9:30\u202fAM (in 22 hours)");
    /* en-GB uses the en template with British formats */
    assert_set_render(set, "when", TPL_PART_EMAIL_SUBJECT, d, "en-GB",
                      "Due 8 Mar 2026, 09:30 (in 22 hours)");
    assert_set_render(set, "when", TPL_PART_EMAIL_SUBJECT, d, "ru-RU", "Срок через 22 часа");
    /* JSON part: the date as a value, a localized title */
    assert_set_render(set, "when", TPL_PART_WEBSOCKET, d, "en",
                      "{\"type\": \"when\", \"title\": \"Due in 22 hours\", \"d\": "
                      "\"2026-03-08T09:30:00Z\"}");
    tpl_set_free(set);
}

static void test_email_in_one_language(void **state)
{
    (void)state;
    struct tpl_set *set = load_basic();
    struct json_object *j = tt_json("{\"d\":\"2026-03-08T09:30:00Z\",\"name\":\"A\"}");
    struct tpl_render_opts o = {"ru", "UTC", TT_NOW_MS, 0, NULL, NULL, NULL, NULL};
    struct tpl_email mail;
    struct tpl_error err;

    /* ru has subject and text but no html: no English html slips in */
    assert_int_equal(tpl_set_render_email(set, "when", j, &o, &mail, &err), 0);
    assert_string_equal(mail.subject, "Срок через 22 часа");
    assert_string_equal(mail.text, "Срок: воскресенье, 8 марта 2026\u202fг.");
    assert_null(mail.html);
    tpl_email_free(&mail);

    o.locale = "fr";
    assert_int_equal(tpl_set_render_email(set, "when", j, &o, &mail, &err), 0);
    assert_string_equal(mail.subject, "Due Mar 8, 2026, 9:30\u202fAM (in 22 hours)");
    assert_string_equal(mail.html, "<p>Due <b>Sunday, March 8, 2026</b></p>");
    tpl_email_free(&mail);

    assert_int_equal(tpl_set_render_email(set, "nope", j, &o, &mail, &err), VN_ENOENT);
    assert_null(mail.subject);
    json_object_put(j);
    tpl_set_free(set);
}

static void test_check_with_samples(void **state)
{
    (void)state;
    struct tpl_set *set = load_basic();
    char *samples = tt_path("tests/fixtures/templates/sets/basic/samples");
    struct vn_buf errors = VN_BUF_INIT;
    size_t renders = 0;
    assert_int_equal(tpl_set_check(set, samples, "UTC", TT_NOW_MS, &errors, &renders), 0);
    assert_int_equal(renders, 10);
    assert_int_equal(errors.len, 0);
    free(samples);

    /* samples missing a field, one missing file, one bad JSON */
    char *dir = mktemp_dir();
    put(dir, "greet.json", "{\"app\":\"x\"}");
    put(dir, "when.json", "{\"d\": ");
    assert_true(tpl_set_check(set, dir, "UTC", TT_NOW_MS, &errors, NULL) >= 3);
    assert_non_null(strstr(errors.data, "en/greet.telegram.mustache:1:6: no value for {{#name}}"));
    assert_non_null(strstr(errors.data, "when.json: not valid JSON"));
    vn_buf_reset(&errors);
    char *when = xasprintf("%s/when.json", dir);
    remove(when);
    free(when);
    tpl_set_check(set, dir, "UTC", TT_NOW_MS, &errors, NULL);
    assert_non_null(strstr(errors.data, "/en/when: no sample data"));
    vn_buf_free(&errors);
    rm_rf(dir);
    tpl_set_free(set);
}

static void test_check_rejects_bad_telegram_output(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    /* compiles (static markup is the author's), but Telegram would refuse it */
    put(dir, "en/bad.telegram.mustache", "<b>unclosed {{x}}");
    put(dir, "en/empty.telegram.mustache", "{{#x}}never{{/x}}");
    put(dir, "en/md.telegram_md2.mustache", "Done. {{x}}");
    put(dir, "samples/bad.json", "{\"x\":\"1\"}");
    put(dir, "samples/empty.json", "{\"x\":false}");
    put(dir, "samples/md.json", "{\"x\":\"1\"}");
    struct tpl_set *set = NULL;
    struct vn_buf errors = VN_BUF_INIT;
    assert_int_equal(tpl_set_load(dir, NULL, &set, &errors), 0);
    char *samples = xasprintf("%s/samples", dir);
    assert_int_equal(tpl_set_check(set, samples, "UTC", 0, &errors, NULL), 3);
    assert_non_null(strstr(errors.data, "bad.telegram.mustache: renders markup Telegram would "
                                        "reject (parse_mode HTML)"));
    assert_non_null(strstr(errors.data, "empty.telegram.mustache: renders empty"));
    assert_non_null(strstr(errors.data, "md.telegram_md2.mustache: renders markup Telegram would "
                                        "reject (parse_mode MarkdownV2)"));
    free(samples);
    vn_buf_free(&errors);
    tpl_set_free(set);
    rm_rf(dir);
}

static void test_load_problems(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    put(dir, "README", "ignored");
    put(dir, "en/a.telegram.mustache", "ok\n  {{#x}}\n");
    put(dir, "en/b.telgram.mustache", "typo in the part");
    put(dir, "en/c.txt", "not a template");
    put(dir, "en/Dee.telegram.mustache", "upper case");
    put(dir, "en/sub/x.telegram.mustache", "nested");
    put(dir, "en/mail.email.subject.mustache", "subject only");
    put(dir, "en/.hidden.telegram.mustache", "{{#ignored");
    put(dir, "en/backup.telegram.mustache~", "{{#ignored");
    put(dir, "ru/only_ru.telegram.mustache", "no en twin");
    put(dir, "ru/a.telegram.mustache", "<a href={{u}}>x</a>");
    put(dir, "notalocale/x.telegram.mustache", "x");
    put(dir, "samples/a.json", "{}");
    static const char *const needles[] = {
        "/en/a.telegram.mustache:2:3: {{#x}} is never closed",
        "/en/b.telgram.mustache: no channel part in the name",
        "/en/c.txt: not a template (names end in .mustache)",
        "/en/Dee.telegram.mustache: bad template name \"Dee\"",
        "/en/sub: not a regular file",
        "/en/mail: e-mail needs both mail.email.subject.mustache and mail.email.text.mustache",
        "/ru/only_ru.telegram.mustache: no en/only_ru.telegram.mustache in the default locale",
        "/ru/a.telegram.mustache:1:9: a value in an unquoted attribute",
        "/notalocale: not a locale directory",
    };
    load_fails(dir, NULL, VN_EINVAL, needles, VN_ARRAY_LEN(needles));
    rm_rf(dir);
}

static void test_partial_problems(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    put(dir, "en/a.telegram.mustache", "x\n{{> _missing}}\n");
    put(dir, "en/b.email.html.mustache", "<p>{{> _unsafe}}</p>");
    put(dir, "en/b.email.subject.mustache", "s");
    put(dir, "en/b.email.text.mustache", "{{> _unsafe}}");
    put(dir, "en/_unsafe.mustache", "<a href={{u}}>x</a>"); /* fine as text, not as HTML */
    static const char *const needles[] = {
        "/en/a.telegram.mustache:2:1: no partial \"_missing\" (looked for "
        "_missing.telegram.mustache and _missing.mustache in en)",
        "/en/_unsafe.mustache:1:9: a value in an unquoted attribute cannot be escaped safely; put "
        "the attribute value in double quotes (as a partial for email_html, included from ",
    };
    load_fails(dir, NULL, VN_EINVAL, needles, VN_ARRAY_LEN(needles));
    rm_rf(dir);
}

static void test_bounds_and_missing_dirs(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    put(dir, "en/a.telegram.mustache", "0123456789abcdef");
    put(dir, "en/b.telegram.mustache", "x");
    struct tpl_limits lim = *tpl_limits_default();
    lim.max_source = 8;
    struct tpl_set_opts o = {"en", &lim, 0, 0};
    static const char *const big[] = {"/en/a.telegram.mustache: larger than 8 bytes"};
    load_fails(dir, &o, VN_ETOOBIG, big, 1);
    struct tpl_set_opts o2 = {"en", NULL, 1, 0};
    static const char *const many[] = {"more than 1 files in the set"};
    load_fails(dir, &o2, VN_ETOOBIG, many, 1);
    struct tpl_set_opts o3 = {"ru", NULL, 0, 0};
    static const char *const nodef[] = {"no directory for the default locale ru"};
    load_fails(dir, &o3, VN_EINVAL, nodef, 1);
    struct tpl_set_opts o4 = {"not a locale", NULL, 0, 0};
    static const char *const badloc[] = {"default locale \"not a locale\""};
    load_fails(dir, &o4, VN_EINVAL, badloc, 1);
    static const char *const gone[] = {"/does-not-exist: cannot read the template directory"};
    char *missing = xasprintf("%s/does-not-exist", dir);
    load_fails(missing, NULL, VN_ENOENT, gone, 1);
    free(missing);
    rm_rf(dir);

    /* an empty directory is an empty set */
    dir = mktemp_dir();
    struct tpl_set *set = NULL;
    assert_int_equal(tpl_set_load(dir, NULL, &set, NULL), 0);
    assert_int_equal(tpl_set_file_count(set), 0);
    tpl_set_free(set);
    rm_rf(dir);
}

static void test_reload_keeps_the_old_set_when_broken(void **state)
{
    (void)state;
    char *dir = mktemp_dir();
    put(dir, "en/hi.telegram.mustache", "v1 {{name}}");
    struct tpl_set *cur = NULL;
    struct vn_buf errors = VN_BUF_INIT;
    assert_int_equal(tpl_set_load(dir, NULL, &cur, &errors), 0);
    struct tpl_set *first = cur;
    assert_set_render(cur, "hi", TPL_PART_TELEGRAM, "{\"name\":\"a\"}", "en", "v1 a");

    /* an operator breaks the file and sends SIGHUP: the old set keeps serving */
    put(dir, "en/hi.telegram.mustache", "v2 {{#name}}");
    assert_int_equal(tpl_set_reload(dir, NULL, &cur, &errors), VN_EINVAL);
    assert_ptr_equal(cur, first);
    assert_non_null(strstr(errors.data, "hi.telegram.mustache:1:4: {{#name}} is never closed"));
    assert_set_render(cur, "hi", TPL_PART_TELEGRAM, "{\"name\":\"a\"}", "en", "v1 a");

    /* a renderer elsewhere still holds the old set across the swap */
    struct tpl_set *held = tpl_set_ref(cur);
    put(dir, "en/hi.telegram.mustache", "v3 {{name}}");
    vn_buf_reset(&errors);
    assert_int_equal(tpl_set_reload(dir, NULL, &cur, &errors), 0);
    assert_ptr_not_equal(cur, first);
    assert_set_render(cur, "hi", TPL_PART_TELEGRAM, "{\"name\":\"a\"}", "en", "v3 a");
    assert_set_render(held, "hi", TPL_PART_TELEGRAM, "{\"name\":\"a\"}", "en", "v1 a");
    tpl_set_free(held);
    tpl_set_free(cur);
    tpl_set_free(NULL);
    vn_buf_free(&errors);
    rm_rf(dir);
}

static void test_parts(void **state)
{
    (void)state;
    assert_string_equal(tpl_part_name(TPL_PART_EMAIL_SUBJECT), "email.subject");
    assert_int_equal(tpl_part_parse("websocket"), TPL_PART_WEBSOCKET);
    assert_int_equal(tpl_part_parse("email"), -1);
    assert_int_equal(tpl_part_target(TPL_PART_TELEGRAM), TPL_TARGET_TG_HTML);
    assert_int_equal(tpl_part_target(TPL_PART_TELEGRAM_MD2), TPL_TARGET_TG_MD2);
    assert_int_equal(tpl_part_target(TPL_PART_EMAIL_SUBJECT), TPL_TARGET_LINE);
    assert_int_equal(tpl_part_target(TPL_PART_EMAIL_TEXT), TPL_TARGET_TEXT);
    assert_int_equal(tpl_part_target(TPL_PART_EMAIL_HTML), TPL_TARGET_EMAIL_HTML);
    assert_int_equal(tpl_part_target(TPL_PART_WEBSOCKET), TPL_TARGET_JSON);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_basic),
        cmocka_unit_test(test_fallback_chain),
        cmocka_unit_test(test_partials_follow_the_render_chain),
        cmocka_unit_test(test_formatting_locale_after_fallback),
        cmocka_unit_test(test_email_in_one_language),
        cmocka_unit_test(test_check_with_samples),
        cmocka_unit_test(test_check_rejects_bad_telegram_output),
        cmocka_unit_test(test_load_problems),
        cmocka_unit_test(test_partial_problems),
        cmocka_unit_test(test_bounds_and_missing_dirs),
        cmocka_unit_test(test_reload_keeps_the_old_set_when_broken),
        cmocka_unit_test(test_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
