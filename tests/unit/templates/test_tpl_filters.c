/*
 * test_tpl_filters.c - every filter: CLDR plurals in Russian and English,
 * dates in two time zones across their 2026 DST changes, relative times by
 * calendar day in the recipient's zone, numbers, currencies, default,
 * truncate by grapheme, case mapping, lists; and what filters do with input
 * they cannot read, strict and not.
 *
 * Expected strings are ICU 72 / CLDR 42 output (Debian 12): English times
 * use U+202F before AM/PM, Russian numbers group with U+00A0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "templates/tpl_internal.h"
#include "tpl_test.h"

#define NNBSP "\u202f" /* narrow no-break space */
#define NBSP  "\u00a0"

static const char RU_TASKS[] =
    "{{#n}}{{. | plural one=\"# задача\" few=\"# задачи\" many=\"# задач\" other=\"# задачи\"}};"
    "{{/n}}";

static void test_plural_russian(void **state)
{
    (void)state;
    assert_text(RU_TASKS, "{\"n\":[0,1,2,3,4,5,11,12,14,21,22,25,101,111,1000000]}", "ru", "UTC",
                "0 задач;1 задача;2 задачи;3 задачи;4 задачи;5 задач;11 задач;12 задач;14 задач;"
                "21 задача;22 задачи;25 задач;101 задача;111 задач;1" NBSP "000" NBSP "000 задач;");
    /* fractions are "other" in Russian, with a decimal comma */
    assert_text(RU_TASKS, "{\"n\":[1.5]}", "ru", "UTC", "1,5 задачи;");
    /* a numeric string counts too; ru-RU uses the ru rules */
    assert_text(RU_TASKS, "{\"n\":[\"21\"]}", "ru-RU", "UTC", "21 задача;");
}

static void test_plural_english(void **state)
{
    (void)state;
    const char *t = "{{#n}}{{. | plural =0=\"no tasks\" one=\"# task\" other=\"# tasks\"}};{{/n}}";
    assert_text(t, "{\"n\":[0,1,2,11,21,1.5,1234]}", "en", "UTC",
                "no tasks;1 task;2 tasks;11 tasks;21 tasks;1.5 tasks;1,234 tasks;");
    /* "##" is a literal '#' */
    assert_text("{{n | plural one=\"## #\" other=\"## #s\"}}", "{\"n\":3}", "en", "UTC", "# 3s");
    /* count feeds plural */
    assert_text("{{t | count | plural one=\"# item\" other=\"# items\"}}", "{\"t\":[1,2,3]}", "en",
                "UTC", "3 items");
    assert_text("{{t | count | plural one=\"# задача\" few=\"# задачи\" many=\"# задач\" "
                "other=\"# задачи\"}}",
                "{\"t\":[1]}", "ru", "UTC", "1 задача");
}

static void test_plural_compile_checks(void **state)
{
    (void)state;
    tt_compile_fails(TPL_TARGET_TEXT, "{{n | plural one=\"x\"}}", VN_EINVAL, 1, 7,
                     "other=\"...\" is required");
    tt_compile_fails(TPL_TARGET_TEXT, "{{n | plural other=\"x\" lots=\"y\"}}", VN_EINVAL, 1, 24,
                     "unknown argument \"lots\"");
    tt_compile_fails(TPL_TARGET_TEXT, "{{n | plural other=\"x\" other=\"y\"}}", VN_EINVAL, 1, 24,
                     "given twice");
    tt_compile_fails(TPL_TARGET_TEXT, "{{n | plural \"x\"}}", VN_EINVAL, 1, 14,
                     "too many arguments");
}

static void test_unreadable_input(void **state)
{
    (void)state;
    /* not strict: the value shows unchanged */
    assert_text("[{{n | plural one=\"#\" other=\"#\"}}] [{{d | datetime}}] [{{x | number}}]",
                "{\"n\":\"many\",\"d\":\"next week\",\"x\":true}", "en", "UTC",
                "[many] [next week] [true]");
    /* missing stays missing */
    assert_text("[{{nope | datetime}}][{{nope | number}}][{{nope | upper}}]", "{}", "en", "UTC",
                "[][][]");
    /* strict: an error at the filter */
    struct tpl_error err;
    struct tpl_compile_opts co = {"s.mustache", TPL_TARGET_TEXT, NULL};
    const char *src = "x\n  {{d | datetime}}";
    struct tpl *t = tpl_compile(src, strlen(src), &co, &err);
    assert_non_null(t);
    struct json_object *j = tt_json("{\"d\":\"2026-02-30T10:00:00Z\"}");
    struct tpl_render_opts o = {"en", "UTC", TT_NOW_MS, 1, NULL, NULL, NULL, NULL};
    struct vn_buf out = VN_BUF_INIT;
    vn_buf_puts(&out, "keep");
    assert_int_equal(tpl_render(t, j, &o, &out, &err), VN_EINVAL);
    assert_string_equal(out.data, "keep"); /* partial output removed */
    assert_string_equal(err.file, "s.mustache");
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 9);
    assert_non_null(strstr(err.msg, "datetime: expected an RFC 3339 time"));
    assert_non_null(strstr(err.msg, "2026-02-30T10:00:00Z"));
    vn_buf_free(&out);
    json_object_put(j);
    tpl_free(t);
}

/* America/New_York springs forward on 2026-03-08 at 02:00 EST. */
static void test_datetime_dst_new_york(void **state)
{
    (void)state;
    const char *t = "{{d | time}} | {{d | datetime skeleton=\"yMMMdjmmz\"}} | {{d | datetime "
                    "\"short\"}}";
    assert_text(t, "{\"d\":\"2026-03-08T06:30:00Z\"}", "en-US", "America/New_York",
                "1:30" NNBSP "AM | Mar 8, 2026, 1:30" NNBSP "AM EST | 3/8/26, 1:30" NNBSP "AM");
    /* one hour later in UTC is two hours later on the wall clock */
    assert_text(t, "{\"d\":\"2026-03-08T07:30:00Z\"}", "en-US", "America/New_York",
                "3:30" NNBSP "AM | Mar 8, 2026, 3:30" NNBSP "AM EDT | 3/8/26, 3:30" NNBSP "AM");
    /* the same instants in Russian */
    assert_text("{{d | datetime \"long\" \"short\"}}", "{\"d\":\"2026-03-08T07:30:00Z\"}", "ru",
                "America/New_York", "8 марта 2026" NNBSP "г. в 03:30");
}

/* Europe/Berlin: CET -> CEST on 2026-03-29 at 02:00, back on 2026-10-25 at 03:00. */
static void test_datetime_dst_berlin(void **state)
{
    (void)state;
    const char *t = "{{d | time}} {{d | datetime skeleton=\"dMMMMHHmmz\"}}";
    assert_text(t, "{\"d\":\"2026-03-29T00:30:00Z\"}", "de", "Europe/Berlin",
                "01:30 29. März um 01:30 MEZ");
    assert_text(t, "{\"d\":\"2026-03-29T01:30:00Z\"}", "de", "Europe/Berlin",
                "03:30 29. März um 03:30 MESZ");
    assert_text(t, "{\"d\":\"2026-03-29T01:30:00Z\"}", "ru", "Europe/Berlin",
                "03:30 29 марта в 03:30 GMT+2");
    /* autumn: 02:30 happens twice, an hour apart */
    assert_text(t, "{\"d\":\"2026-10-25T00:30:00Z\"}", "de", "Europe/Berlin",
                "02:30 25. Oktober um 02:30 MESZ");
    assert_text(t, "{\"d\":\"2026-10-25T01:30:00Z\"}", "de", "Europe/Berlin",
                "02:30 25. Oktober um 02:30 MEZ");
}

static void test_datetime_styles_and_inputs(void **state)
{
    (void)state;
    const char *d = "{\"d\":\"2026-03-08T09:30:00Z\"}";
    assert_text("{{d | datetime}}", d, "ru", "Europe/Moscow", "8 мар. 2026" NNBSP "г., 12:30");
    assert_text("{{d | datetime \"short\"}}", d, "ru", "Europe/Moscow", "08.03.2026, 12:30");
    assert_text("{{d | date \"full\"}}", d, "ru", "Europe/Moscow",
                "воскресенье, 8 марта 2026" NNBSP "г.");
    assert_text("{{d | time}}", d, "ru", "Europe/Moscow", "12:30");
    assert_text("{{d | datetime \"long\" \"short\"}}", d, "en", "America/New_York",
                "March 8, 2026 at 5:30" NNBSP "AM");
    assert_text("{{d | date \"full\"}}", d, "en", "UTC", "Sunday, March 8, 2026");
    /* epoch seconds (number), an offset, a bare date, an explicit tz= */
    assert_text("{{a | datetime \"short\"}}|{{b | datetime \"short\"}}|{{c | date \"long\"}}|"
                "{{c | datetime}}|{{e | datetime \"short\" tz=\"Asia/Tokyo\"}}",
                "{\"a\":1772958600,\"b\":\"2026-03-08T12:30:00+03:00\",\"c\":\"2026-03-08\","
                "\"e\":\"2026-03-08T00:00:00Z\"}",
                "ru", "Europe/Moscow",
                "08.03.2026, 11:30|08.03.2026, 12:30|8 марта 2026" NNBSP "г.|8 мар. 2026" NNBSP
                "г.|08.03.2026, 09:00");
    /* a bare date stays that date in any zone */
    assert_text("{{c | date}}", "{\"c\":\"2026-03-08\"}", "en", "Pacific/Honolulu", "Mar 8, 2026");
    /* fractions, lowercase t/z, a space separator, a leap second */
    assert_text("{{a | time \"medium\"}} {{b | time \"medium\"}} {{c | time \"medium\"}}",
                "{\"a\":\"2026-03-08t09:30:05.999z\",\"b\":\"2026-03-08 09:30:00Z\","
                "\"c\":\"2016-12-31T23:59:60Z\"}",
                "ru", "UTC", "09:30:05 09:30:00 23:59:59");
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t ms;
    bool d;
    assert_int_equal(tpl__parse_time("1970-01-01T00:00:00Z", 20, &ms, &d), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(tpl__parse_time("2026-03-08T09:30:00.5+03:00", 27, &ms, &d), 0);
    assert_int_equal(ms, 1772951400500LL);
    assert_false(d);
    assert_int_equal(tpl__parse_time("2024-02-29", 10, &ms, &d), 0);
    assert_true(d);
    static const char *bad[] = {
        "2026-02-29",
        "2026-13-01",
        "2026-03-08T24:00:00Z",
        "2026-03-08T09:30:00",
        "2026-03-08T09:30:00+3",
        "2026-03-08T09:30Zx",
        "26-03-08",
        "2026-03-08X09:30:00Z",
        "2026-03-08T09:30:00.Z",
        "0000-01-01",
        "",
        "2026-03-08T09:30:00+24:00",
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(bad); i++)
        if (tpl__parse_time(bad[i], strlen(bad[i]), &ms, &d) == 0)
            fail_msg("accepted %s", bad[i]);
}

static void test_datetime_compile_checks(void **state)
{
    (void)state;
    tt_compile_fails(TPL_TARGET_TEXT, "{{d | datetime \"shrt\"}}", VN_EINVAL, 1, 16,
                     "unknown style \"shrt\"");
    tt_compile_fails(TPL_TARGET_TEXT, "{{d | datetime tz=\"Mars/Olympus\"}}", VN_EINVAL, 1, 16,
                     "unknown time zone");
    tt_compile_fails(TPL_TARGET_TEXT, "{{d | datetime \"short\" skeleton=\"yMd\"}}", VN_EINVAL, 1,
                     24, "no style arguments");
    tt_compile_fails(TPL_TARGET_TEXT, "{{d | relative \"tiny\"}}", VN_EINVAL, 1, 16,
                     "unknown style");
    tt_compile_fails(TPL_TARGET_TEXT, "{{d | date 3}}", VN_EINVAL, 1, 12,
                     "must be a quoted string");
}

static void test_unknown_zone_at_render(void **state)
{
    (void)state;
    /* not strict: UTC; strict: an error */
    assert_text("{{d | time}}", "{\"d\":\"2026-03-08T09:30:00Z\"}", "ru", "Nowhere/Land", "09:30");
    struct tpl_error err;
    struct tpl_compile_opts co = {"z", TPL_TARGET_TEXT, NULL};
    struct tpl *t = tpl_compile("{{d | time}}", 12, &co, &err);
    struct json_object *j = tt_json("{\"d\":\"2026-03-08T09:30:00Z\"}");
    struct tpl_render_opts o = {"ru", "Nowhere/Land", TT_NOW_MS, 1, NULL, NULL, NULL, NULL};
    struct vn_buf out = VN_BUF_INIT;
    assert_int_equal(tpl_render(t, j, &o, &out, &err), VN_EINVAL);
    assert_non_null(strstr(err.msg, "unknown time zone \"Nowhere/Land\""));
    vn_buf_free(&out);
    json_object_put(j);
    tpl_free(t);
    assert_true(tpl_tz_valid("Europe/Moscow"));
    assert_true(tpl_tz_valid("UTC"));
    assert_false(tpl_tz_valid("Europe/Atlantis"));
    assert_false(tpl_tz_valid(""));
    assert_false(tpl_tz_valid(NULL));
}

/* now = 2026-03-07T12:00:00Z */
static void test_relative(void **state)
{
    (void)state;
    static const struct {
        const char *when, *ru, *en;
    } cases[] = {
        {"2026-03-07T12:00:30Z", "сейчас", "now"},
        {"2026-03-07T12:10:00Z", "через 10 минут", "in 10 minutes"},
        {"2026-03-07T11:59:00Z", "1 минуту назад", "1 minute ago"},
        {"2026-03-07T14:31:00Z", "через 3 часа", "in 3 hours"},
        {"2026-03-07T10:00:00Z", "2 часа назад", "2 hours ago"},
        {"2026-03-09T09:00:00Z", "послезавтра", "in 2 days"},
        {"2026-03-05T09:00:00Z", "позавчера", "2 days ago"},
        {"2026-03-20T09:00:00Z", "через 2 недели", "in 2 weeks"},
        {"2026-05-01T00:00:00Z", "через 2 месяца", "in 2 months"},
        {"2028-03-01T00:00:00Z", "через 2 года", "in 2 years"},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        char data[80];
        snprintf(data, sizeof(data), "{\"d\":\"%s\"}", cases[i].when);
        assert_text("{{d | relative}}", data, "ru", "UTC", cases[i].ru);
        assert_text("{{d | relative}}", data, "en", "UTC", cases[i].en);
    }
    assert_text("{{d | relative \"short\"}}", "{\"d\":\"2026-03-07T12:10:00Z\"}", "ru", "UTC",
                "через 10 мин.");
    /* a bare date: tomorrow's date, wherever the recipient is */
    assert_text("{{d | relative}}", "{\"d\":\"2026-03-08\"}", "ru", "Europe/Moscow", "завтра");
}

/* "Tomorrow" is the next date on the recipient's calendar, not +24 h. */
static void test_relative_calendar_days_by_zone(void **state)
{
    (void)state;
    /* now 2026-03-07T20:30Z: 23:30 in Moscow, 15:30 in New York */
    struct tpl_render_opts msk = {"ru", "Europe/Moscow", 1772915400000LL, 0, NULL, NULL, NULL,
                                  NULL};
    struct tpl_render_opts ny = {"ru", "America/New_York", 1772915400000LL, 0, NULL, NULL, NULL,
                                 NULL};
    const char *data = "{\"d\":\"2026-03-08T21:30:00Z\"}"; /* 25 h later */
    char *a = tt_render_opts(TPL_TARGET_TEXT, "{{d | relative}}", data, &msk);
    char *b = tt_render_opts(TPL_TARGET_TEXT, "{{d | relative}}", data, &ny);
    assert_string_equal(a, "послезавтра"); /* 00:30 on the 9th in Moscow */
    assert_string_equal(b, "завтра");      /* 17:30 on the 8th in New York */
    free(a);
    free(b);
}

static void test_number_currency_percent(void **state)
{
    (void)state;
    const char *t = "{{a | number}}|{{a | number decimals=2}}|{{a | number decimals=0}}|"
                    "{{a | currency \"RUB\"}}|{{a | currency \"EUR\" decimals=0}}|{{p | percent}}|"
                    "{{a | number skeleton=\"compact-short\"}}";
    const char *d = "{\"a\":1234567.891,\"p\":0.256}";
    assert_text(t, d, "ru", "UTC",
                "1" NBSP "234" NBSP "567,891|1" NBSP "234" NBSP "567,89|1" NBSP "234" NBSP
                "568|1" NBSP "234" NBSP "567,89" NBSP "₽|1" NBSP "234" NBSP "568" NBSP
                "€|25,6" NBSP "%|1,2" NBSP "млн");
    assert_text(t, d, "en-US", "UTC",
                "1,234,567.891|1,234,567.89|1,234,568|RUB" NBSP
                "1,234,567.89|€1,234,568|25.6%|1.2M");
    assert_text("{{s | number}} {{i | number}}", "{\"s\":\"-0.5\",\"i\":12}", "de", "UTC",
                "-0,5 12");
    tt_compile_fails(TPL_TARGET_TEXT, "{{a | currency \"euro\"}}", VN_EINVAL, 1, 16, "ISO 4217");
    tt_compile_fails(TPL_TARGET_TEXT, "{{a | number skeleton=\"bogus/skeleton\"}}", VN_EINVAL, 1,
                     14, "invalid ICU number skeleton");
    tt_compile_fails(TPL_TARGET_TEXT, "{{a | number decimals=1.5}}", VN_EINVAL, 1, 14,
                     "whole number");
    tt_compile_fails(TPL_TARGET_TEXT, "{{a | number decimals=2 skeleton=\"percent\"}}", VN_EINVAL,
                     1, 7, "not both");
}

static void test_default(void **state)
{
    (void)state;
    const char *t = "{{a | default \"друг\"}}|{{b | default \"друг\"}}|{{c | default \"x\"}}|"
                    "{{d | default \"x\"}}|{{e | default \"x\"}}|{{f | default \"x\"}}";
    assert_text(t, "{\"b\":null,\"c\":\"\",\"d\":\"Анна\",\"e\":0,\"f\":false}", "ru", "UTC",
                "друг|друг|x|Анна|0|false");
    /* strict does not complain about a name that has a default */
    struct tpl_render_opts o = {"ru", "UTC", TT_NOW_MS, 1, NULL, NULL, NULL, NULL};
    char *s =
        tt_render_opts(TPL_TARGET_TEXT, "Привет, {{name | upper | default \"друг\"}}!", "{}", &o);
    assert_string_equal(s, "Привет, друг!");
    free(s);
    tt_compile_fails(TPL_TARGET_TEXT, "{{a | default}}", VN_EINVAL, 1, 7, "needs 1 argument");
    tt_compile_fails(TPL_TARGET_TEXT, "{{a | default fallback}}", VN_EINVAL, 1, 15,
                     "expected key=value or a quoted string");
}

static void test_truncate(void **state)
{
    (void)state;
    assert_text("{{s | truncate 10}}", "{\"s\":\"short\"}", "en", "UTC", "short");
    assert_text("{{s | truncate 5}}", "{\"s\":\"exact\"}", "en", "UTC", "exact");
    assert_text("{{s | truncate 8}}", "{\"s\":\"завтра в путь\"}", "ru", "UTC", "завтра…");
    assert_text("{{s | truncate 9 ellipsis=\"...\"}}", "{\"s\":\"abcdefghijkl\"}", "en", "UTC",
                "abcdef...");
    /* a ZWJ family, a skin-toned thumb and a flag are one character each */
    assert_text("{{s | truncate 4}}", "{\"s\":\"👨‍👩‍👧‍👦👍🏽🇷🇺abcdef\"}",
                "en", "UTC", "👨‍👩‍👧‍👦👍🏽🇷🇺…");
    /* combining accents stay with their letter */
    assert_text("{{s | truncate 3}}", "{\"s\":\"e\u0301e\u0301e\u0301e\u0301\"}", "en", "UTC",
                "e\u0301e\u0301…");
    tt_compile_fails(TPL_TARGET_TEXT, "{{s | truncate 0}}", VN_EINVAL, 1, 16, "whole number");
    tt_compile_fails(TPL_TARGET_TEXT, "{{s | truncate}}", VN_EINVAL, 1, 7, "needs 1 argument");
}

static void test_case_mapping(void **state)
{
    (void)state;
    assert_text("{{s | upper}}|{{s | capitalize}}|{{t | lower}}",
                "{\"s\":\"завтра\",\"t\":\"ПРИВЕТ\"}", "ru", "UTC", "ЗАВТРА|Завтра|привет");
    /* the locale decides: a Turkish dotted capital I */
    assert_text("{{s | upper}}", "{\"s\":\"istanbul\"}", "tr", "UTC", "İSTANBUL");
    assert_text("{{s | upper}}", "{\"s\":\"istanbul\"}", "en", "UTC", "ISTANBUL");
    assert_text("{{s | upper}}", "{\"s\":\"straße\"}", "de", "UTC", "STRASSE");
}

static void test_lists(void **state)
{
    (void)state;
    const char *d = "{\"t\":[\"молоко\",\"хлеб\",\"сыр\"],\"one\":[\"x\"],\"none\":[]}";
    assert_text("{{t | list}}|{{t | list \"or\"}}|{{t | join \" / \"}}|{{one | list}}|{{none | "
                "list}}|{{t | count}}",
                d, "ru", "UTC", "молоко, хлеб и сыр|молоко, хлеб или сыр|молоко / хлеб / сыр|x||3");
    assert_text("{{t | list}}", "{\"t\":[\"milk\",\"bread\",\"cheese\"]}", "en", "UTC",
                "milk, bread, and cheese");
    assert_text("{{t | list \"and\" \"short\"}}", "{\"t\":[\"a\",\"b\"]}", "en", "UTC", "a & b");
    tt_compile_fails(TPL_TARGET_TEXT, "{{t | list \"xor\"}}", VN_EINVAL, 1, 12,
                     "unknown list type");
}

static void test_unknown_filter_position(void **state)
{
    (void)state;
    tt_compile_fails(TPL_TARGET_TEXT, "Привет,\n  {{ name | upper | shout }}", VN_EINVAL, 2, 21,
                     "unknown filter \"shout\"");
    tt_compile_fails(TPL_TARGET_TEXT, "{{ name | }}", VN_EINVAL, 1, 10, "expected a filter name");
    tt_compile_fails(TPL_TARGET_TEXT, "{{ name upper }}", VN_EINVAL, 1, 9, "filters follow a '|'");
    tt_compile_fails(TPL_TARGET_TEXT, "{{ n | truncate \"5 }}", VN_EINVAL, 1, 17,
                     "unterminated string");
    tt_compile_fails(TPL_TARGET_TEXT, "{{#list | count}}{{/list}}", VN_EINVAL, 1, 9,
                     "filters are not allowed in section tags");
}

static void test_cache_reuse_across_renders(void **state)
{
    (void)state;
    /* one cache, many locales and zones: more than its slots, results stay right */
    struct tpl_fmt_cache *cache = tpl_fmt_cache_new();
    struct tpl_error err;
    struct tpl_compile_opts co = {"c", TPL_TARGET_TEXT, NULL};
    const char *src = "{{d | datetime \"short\"}} {{n | number}} {{n | plural one=\"1\" "
                      "other=\"n\"}} {{d | relative}}";
    struct tpl *t = tpl_compile(src, strlen(src), &co, &err);
    struct json_object *j = tt_json("{\"d\":\"2026-03-08T09:30:00Z\",\"n\":1}");
    static const char *zones[] = {"UTC",        "Europe/Moscow", "America/New_York",
                                  "Asia/Tokyo", "Europe/Berlin", "Australia/Sydney"};
    static const char *locales[] = {"en", "ru", "de", "fr", "ja", "pt-BR", "uk"};
    for (int round = 0; round < 3; round++)
        for (size_t z = 0; z < VN_ARRAY_LEN(zones); z++)
            for (size_t l = 0; l < VN_ARRAY_LEN(locales); l++) {
                struct tpl_render_opts o = {locales[l], zones[z], TT_NOW_MS, 0,
                                            NULL,       NULL,     NULL,      cache};
                struct tpl_render_opts fresh = o;
                fresh.cache = NULL;
                struct vn_buf a = VN_BUF_INIT, b = VN_BUF_INIT;
                assert_int_equal(tpl_render(t, j, &o, &a, &err), 0);
                assert_int_equal(tpl_render(t, j, &fresh, &b, &err), 0);
                assert_string_equal(a.data, b.data);
                vn_buf_free(&a);
                vn_buf_free(&b);
            }
    json_object_put(j);
    tpl_free(t);
    tpl_fmt_cache_free(cache);
    tpl_fmt_cache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plural_russian),
        cmocka_unit_test(test_plural_english),
        cmocka_unit_test(test_plural_compile_checks),
        cmocka_unit_test(test_unreadable_input),
        cmocka_unit_test(test_datetime_dst_new_york),
        cmocka_unit_test(test_datetime_dst_berlin),
        cmocka_unit_test(test_datetime_styles_and_inputs),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_datetime_compile_checks),
        cmocka_unit_test(test_unknown_zone_at_render),
        cmocka_unit_test(test_relative),
        cmocka_unit_test(test_relative_calendar_days_by_zone),
        cmocka_unit_test(test_number_currency_percent),
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_case_mapping),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_unknown_filter_position),
        cmocka_unit_test(test_cache_reuse_across_renders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
