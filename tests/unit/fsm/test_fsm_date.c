/*
 * test_fsm_date.c - fsm/fsm_date.c and fsm/fsm_input.c: POSIX TZ rules
 * (daylight saving in both hemispheres, gaps and overlaps), zone names, the
 * date/time phrases in English and Russian in two time zones (and across a
 * DST change), and the typed input parsers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "core/common.h"
#include "fsm/fsm_date.h"
#include "fsm/fsm_int.h"

#define MOSCOW   "MSK-3"
#define NEW_YORK "EST5EDT,M3.2.0,M11.1.0"
#define BERLIN   "CET-1CEST,M3.5.0,M10.5.0/3"
#define SYDNEY   "AEST-10AEDT,M10.1.0,M4.1.0/3"

static struct fsm_tz *tz(const char *posix)
{
    char err[128];
    struct fsm_tz *t = fsm_tz_parse(posix, err, sizeof(err));
    if (t == NULL)
        fail_msg("%s: %s", posix, err);
    return t;
}

/* Seconds since the epoch of a UTC civil time. */
static int64_t utc(int y, int m, int d, int hh, int mi, int ss)
{
    return fsm_days_from_civil(y, m, d) * 86400 + hh * 3600 + mi * 60 + ss;
}

static void test_civil(void **state)
{
    (void)state;
    assert_int_equal(fsm_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(fsm_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(fsm_days_from_civil(1969, 12, 31), -1);
    for (int64_t d = -800000; d < 800000; d += 997) {
        int64_t y;
        int m, dd;
        fsm_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(fsm_days_from_civil(y, m, dd), d);
    }
}

static void test_tz_rules(void **state)
{
    (void)state;
    struct fsm_tz *msk = tz(MOSCOW), *ny = tz(NEW_YORK), *ber = tz(BERLIN), *syd = tz(SYDNEY);
    struct fsm_tz *q = tz("<+0530>-5:30");

    assert_int_equal(fsm_tz_offset(msk, utc(2026, 7, 1, 0, 0, 0)), 3 * 3600);
    assert_int_equal(fsm_tz_offset(NULL, 12345), 0);
    assert_int_equal(fsm_tz_offset(q, 0), 5 * 3600 + 1800);

    /* Berlin 2026: summer time from Sun 29 March 01:00 UTC to Sun 25 October 01:00 UTC */
    assert_int_equal(fsm_tz_offset(ber, utc(2026, 3, 29, 0, 59, 59)), 3600);
    assert_int_equal(fsm_tz_offset(ber, utc(2026, 3, 29, 1, 0, 0)), 7200);
    assert_int_equal(fsm_tz_offset(ber, utc(2026, 10, 25, 0, 59, 59)), 7200);
    assert_int_equal(fsm_tz_offset(ber, utc(2026, 10, 25, 1, 0, 0)), 3600);
    /* New York 2026: from Sun 8 March 07:00 UTC to Sun 1 November 06:00 UTC */
    assert_int_equal(fsm_tz_offset(ny, utc(2026, 3, 8, 6, 59, 59)), -5 * 3600);
    assert_int_equal(fsm_tz_offset(ny, utc(2026, 3, 8, 7, 0, 0)), -4 * 3600);
    assert_int_equal(fsm_tz_offset(ny, utc(2026, 11, 1, 5, 59, 59)), -4 * 3600);
    assert_int_equal(fsm_tz_offset(ny, utc(2026, 11, 1, 6, 0, 0)), -5 * 3600);
    /* Sydney: summer in January, winter in July */
    assert_int_equal(fsm_tz_offset(syd, utc(2026, 1, 15, 0, 0, 0)), 11 * 3600);
    assert_int_equal(fsm_tz_offset(syd, utc(2026, 7, 15, 0, 0, 0)), 10 * 3600);

    /* the spring gap: 02:30 does not exist in Berlin on 29 March 2026 */
    int64_t l = utc(2026, 3, 29, 2, 30, 0); /* as a local wall time */
    assert_int_equal(fsm_tz_local_to_utc(ber, l), utc(2026, 3, 29, 1, 30, 0));
    /* the autumn overlap: 02:30 happens twice on 25 October; the first */
    l = utc(2026, 10, 25, 2, 30, 0);
    assert_int_equal(fsm_tz_local_to_utc(ber, l), utc(2026, 10, 25, 0, 30, 0));
    assert_int_equal(fsm_tz_local_to_utc(ber, utc(2026, 1, 10, 12, 0, 0)),
                     utc(2026, 1, 10, 11, 0, 0));
    assert_int_equal(fsm_tz_local_to_utc(NULL, 77), 77);

    char buf[40];
    fsm_format_rfc3339(utc(2026, 3, 29, 1, 30, 0), ber, buf, sizeof(buf));
    assert_string_equal(buf, "2026-03-29T03:30:00+02:00");
    fsm_format_rfc3339(utc(2026, 12, 1, 14, 0, 5), ny, buf, sizeof(buf));
    assert_string_equal(buf, "2026-12-01T09:00:05-05:00");
    fsm_format_rfc3339(0, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00+00:00");
    fsm_format_rfc3339(utc(2026, 1, 1, 0, 0, 0), q, buf, sizeof(buf));
    assert_string_equal(buf, "2026-01-01T05:30:00+05:30");
    /* absurd instants are clamped, never overflow */
    fsm_format_rfc3339(INT64_MAX, ber, buf, sizeof(buf));
    fsm_format_rfc3339(INT64_MIN, ny, buf, sizeof(buf));
    (void)fsm_tz_offset(ber, INT64_MIN);
    (void)fsm_tz_local_to_utc(syd, INT64_MAX / 2);

    static const char *const bad[] = {"",
                                      "M",
                                      "MSK",
                                      "MSK+",
                                      "MSK-3X",
                                      "CET-1CEST,M3.5.0",
                                      "CET-1CEST,M13.5.0,M10.5.0",
                                      "CET-1CEST,M3.5.7,M10.5.0",
                                      "<>3",
                                      "CET-1CEST,J0,J10",
                                      "CET-99"};
    for (size_t i = 0; i < VN_ARRAY_LEN(bad); i++) {
        char err[128];
        struct fsm_tz *t = fsm_tz_parse(bad[i], err, sizeof(err));
        if (t != NULL)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_non_null(strstr(err, "POSIX TZ"));
    }
    fsm_tz_free(msk);
    fsm_tz_free(ny);
    fsm_tz_free(ber);
    fsm_tz_free(syd);
    fsm_tz_free(q);
    fsm_tz_free(NULL);
}

static void test_tz_load(void **state)
{
    (void)state;
    char err[160];
    struct fsm_tz *t = fsm_tz_load("UTC", NULL, err, sizeof(err));
    assert_non_null(t);
    assert_string_equal(fsm_tz_name(t), "UTC");
    assert_int_equal(fsm_tz_offset(t, 1000), 0);
    fsm_tz_free(t);
    t = fsm_tz_load("+03:00", NULL, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(fsm_tz_offset(t, 1000), 3 * 3600);
    fsm_tz_free(t);
    t = fsm_tz_load("UTC-5", NULL, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(fsm_tz_offset(t, 1000), -5 * 3600);
    fsm_tz_free(t);
    assert_string_equal(fsm_tz_name(NULL), "UTC");

    assert_null(fsm_tz_load("../../etc/passwd", NULL, err, sizeof(err)));
    assert_string_equal(err, "not a time zone name: \"../../etc/passwd\"");
    assert_null(fsm_tz_load("Mars/Olympus_Mons", NULL, err, sizeof(err)));
    assert_string_equal(err, "unknown time zone \"Mars/Olympus_Mons\"");
    assert_null(fsm_tz_load("", NULL, err, sizeof(err)));

    struct stat sb;
    if (stat("/usr/share/zoneinfo/Europe/Berlin", &sb) != 0) {
        print_message("no tz database here; skipping the zoneinfo part\n");
        return;
    }
    t = fsm_tz_load("Europe/Berlin", NULL, err, sizeof(err));
    if (t == NULL)
        fail_msg("Europe/Berlin: %s", err);
    assert_string_equal(fsm_tz_name(t), "Europe/Berlin");
    assert_int_equal(fsm_tz_offset(t, utc(2026, 7, 1, 0, 0, 0)), 7200);
    assert_int_equal(fsm_tz_offset(t, utc(2026, 12, 1, 0, 0, 0)), 3600);
    fsm_tz_free(t);
    t = fsm_tz_load("Europe/Moscow", NULL, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(fsm_tz_offset(t, utc(2026, 7, 1, 0, 0, 0)), 3 * 3600);
    fsm_tz_free(t);
    /* a file that is not TZif */
    assert_null(fsm_tz_load("zone.tab", NULL, err, sizeof(err)));
}

/* ---- phrases ---------------------------------------------------------------------- */

struct phrase {
    const char *text;
    const char *want; /* NULL: refused */
};

static void check_phrases(const char *zone, int64_t now_ms, const struct phrase *cases, size_t n)
{
    struct fsm_tz *t = tz(zone);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t out = 0;
        char buf[40] = "(refused)";
        if (fsm_parse_datetime(cases[i].text, now_ms, t, &out) == 0)
            fsm_format_rfc3339(out, t, buf, sizeof(buf));
        const char *want = cases[i].want ? cases[i].want : "(refused)";
        if (strcmp(buf, want) != 0) {
            print_error("%s: \"%s\": want %s, got %s\n", zone, cases[i].text, want, buf);
            bad++;
        }
    }
    fsm_tz_free(t);
    assert_int_equal(bad, 0);
}

/* Now: Saturday 21 November 2026, 10:17:33 UTC = 13:17:33 in Moscow. */
#define NOW_MS (utc(2026, 11, 21, 10, 17, 33) * 1000 + 250)

static void test_phrases_moscow(void **state)
{
    (void)state;
    static const struct phrase cases[] = {
        {"2026-12-01 09:00", "2026-12-01T09:00:00+03:00"},
        {"2026-12-01T09:00", "2026-12-01T09:00:00+03:00"},
        {"2026-12-01t09:00:30", "2026-12-01T09:00:30+03:00"},
        {"2026-12-01 9:00", "2026-12-01T09:00:00+03:00"},
        {"2026-12-01", "2026-12-01T09:00:00+03:00"},
        {"01.12.2026 18:30", "2026-12-01T18:30:00+03:00"},
        {"1.12.26 18:30", "2026-12-01T18:30:00+03:00"},
        {"1.12 18:30", "2026-12-01T18:30:00+03:00"},
        {"1/12 18:30", "2026-12-01T18:30:00+03:00"},
        {"завтра в 2 ночи", "2026-11-22T02:00:00+03:00"},
        {"tomorrow 9:30 p.m.", "2026-11-22T21:30:00+03:00"},
        {"20.11 10:00", "2027-11-20T10:00:00+03:00"},
        {"tomorrow 9:00", "2026-11-22T09:00:00+03:00"},
        {"Tomorrow at 9am", "2026-11-22T09:00:00+03:00"},
        {"tomorrow 9 pm", "2026-11-22T21:00:00+03:00"},
        {"tomorrow 12am", "2026-11-22T00:00:00+03:00"},
        {"tomorrow", "2026-11-22T09:00:00+03:00"},
        {"завтра 9:00", "2026-11-22T09:00:00+03:00"},
        {"Завтра в 9", "2026-11-22T09:00:00+03:00"},
        {"завтра в 9 утра", "2026-11-22T09:00:00+03:00"},
        {"завтра в 9 вечера", "2026-11-22T21:00:00+03:00"},
        {"завтра в 3 часа дня", "2026-11-22T15:00:00+03:00"},
        {"ЗАВТРА, 10:30.", "2026-11-22T10:30:00+03:00"},
        {"today 18:00", "2026-11-21T18:00:00+03:00"},
        {"сегодня в 18:00", "2026-11-21T18:00:00+03:00"},
        {"today 9:00", "2026-11-21T09:00:00+03:00"}, /* past: datetime inputs with future: refuse */
        {"18:00", "2026-11-21T18:00:00+03:00"},
        {"9:00", "2026-11-22T09:00:00+03:00"}, /* already past today */
        {"в 15", "2026-11-21T15:00:00+03:00"},
        {"at 8pm", "2026-11-21T20:00:00+03:00"},
        {"noon tomorrow", "2026-11-22T12:00:00+03:00"},
        {"послезавтра 8:15", "2026-11-23T08:15:00+03:00"},
        {"day after tomorrow 8:15", "2026-11-23T08:15:00+03:00"},
        {"in 2 hours", "2026-11-21T15:17:33+03:00"},
        {"через 2 часа", "2026-11-21T15:17:33+03:00"},
        {"через час", "2026-11-21T14:17:33+03:00"},
        {"in an hour", "2026-11-21T14:17:33+03:00"},
        {"через полчаса", "2026-11-21T13:47:33+03:00"},
        {"in half an hour", "2026-11-21T13:47:33+03:00"},
        {"через полтора часа", "2026-11-21T14:47:33+03:00"},
        {"in 1 hour 30 minutes", "2026-11-21T14:47:33+03:00"},
        {"через 1 час и 30 минут", "2026-11-21T14:47:33+03:00"},
        {"in 90 min", "2026-11-21T14:47:33+03:00"},
        {"in 2h", "2026-11-21T15:17:33+03:00"},
        {"через 5 мин", "2026-11-21T13:22:33+03:00"},
        {"через пять минут", "2026-11-21T13:22:33+03:00"},
        {"через 3 дня", "2026-11-24T13:17:33+03:00"},
        {"in a week", "2026-11-28T13:17:33+03:00"},
        {"через неделю", "2026-11-28T13:17:33+03:00"},
        {"monday 10:00", "2026-11-23T10:00:00+03:00"},
        {"в понедельник в 10", "2026-11-23T10:00:00+03:00"},
        {"sat 14:00", "2026-11-21T14:00:00+03:00"},
        {"sat 12:00", "2026-11-28T12:00:00+03:00"},
        {"в пятницу 18:30", "2026-11-27T18:30:00+03:00"},
        {"on friday", "2026-11-27T09:00:00+03:00"},
        {"1 december 10:00", "2026-12-01T10:00:00+03:00"},
        {"1 декабря в 10:00", "2026-12-01T10:00:00+03:00"},
        {"dec 1st 2027 10:00", "2027-12-01T10:00:00+03:00"},
        {"29 февраля 2028", "2028-02-29T09:00:00+03:00"},
        {"", NULL},
        {"   ", NULL},
        {"hello", NULL},
        {"15", NULL},
        {"31.02.2026 10:00", NULL},
        {"29 февраля 2027", NULL},
        {"25:00", NULL},
        {"tomorrow 9:60", NULL},
        {"tomorrow 13 pm", NULL},
        {"in", NULL},
        {"in 0 minutes", NULL},
        {"через много часов", NULL},
        {"2026-13-01", NULL},
        {"tomorrow tomorrow", NULL},
        {"9:00 9:00", NULL},
        {"in 400 days", NULL},
        {"in 2 parsecs", NULL},
        {"a b c d e f g h i j k l m n o p q r", NULL},
    };
    check_phrases(MOSCOW, NOW_MS, cases, VN_ARRAY_LEN(cases));
}

static void test_phrases_new_york(void **state)
{
    (void)state;
    /* the same instant is 05:17:33 on Saturday in New York */
    static const struct phrase cases[] = {
        {"tomorrow 9:00", "2026-11-22T09:00:00-05:00"},
        {"завтра 9:00", "2026-11-22T09:00:00-05:00"},
        {"9:00", "2026-11-21T09:00:00-05:00"},
        {"in 2 hours", "2026-11-21T07:17:33-05:00"},
        {"через 2 часа", "2026-11-21T07:17:33-05:00"},
        {"2026-12-01 09:00", "2026-12-01T09:00:00-05:00"},
        {"2026-07-01 09:00", "2026-07-01T09:00:00-04:00"},
        {"sat 6am", "2026-11-21T06:00:00-05:00"},
    };
    check_phrases(NEW_YORK, NOW_MS, cases, VN_ARRAY_LEN(cases));

    /* across the change to summer time: Saturday 7 March 2026, 07:00 EST */
    static const struct phrase spring[] = {
        {"tomorrow 9:00", "2026-03-08T09:00:00-04:00"},
        {"tomorrow 2:30", "2026-03-08T03:30:00-04:00"}, /* in the gap */
        {"in 1 day", "2026-03-08T08:00:00-04:00"},      /* 24 hours, not the same wall time */
    };
    check_phrases(NEW_YORK, utc(2026, 3, 7, 12, 0, 0) * 1000, spring, VN_ARRAY_LEN(spring));

    /* and in Berlin at the end of summer time: Saturday 24 October 2026 */
    static const struct phrase autumn[] = {
        {"завтра 9:00", "2026-10-25T09:00:00+01:00"},
        {"tomorrow 2:30", "2026-10-25T02:30:00+02:00"}, /* the first of the two */
        {"today 23:00", "2026-10-24T23:00:00+02:00"},
    };
    check_phrases(BERLIN, utc(2026, 10, 24, 10, 0, 0) * 1000, autumn, VN_ARRAY_LEN(autumn));
}

/* ---- typed inputs ---------------------------------------------------------------------- */

static char *input(const struct fsm__trans *t, const char *text, const struct fsm_tz *z,
                   const char **err)
{
    struct json_object *v = NULL;
    *err = NULL;
    if (fsm__parse_input(t, text, NOW_MS, z, &v, err) != 0) {
        assert_null(v);
        assert_non_null(*err);
        return NULL;
    }
    char *s = xstrdup(
        json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(v);
    return s;
}

#define EXPECT(t, text, want)                                                                      \
    do {                                                                                           \
        const char *e_;                                                                            \
        char *g_ = input(&(t), (text), z, &e_);                                                    \
        if (g_ == NULL || strcmp(g_, (want)) != 0)                                                 \
            fail_msg("\"%s\": want %s, got %s (%s)", (text), (want), g_ ? g_ : "error",            \
                     e_ ? e_ : "");                                                                \
        free(g_);                                                                                  \
    } while (0)

#define REFUSE(t, text, code)                                                                      \
    do {                                                                                           \
        const char *e_;                                                                            \
        char *g_ = input(&(t), (text), z, &e_);                                                    \
        if (g_ != NULL || strcmp(e_, (code)) != 0)                                                 \
            fail_msg("\"%s\": want %s, got %s", (text), (code), g_ ? g_ : e_);                     \
    } while (0)

static void test_inputs(void **state)
{
    (void)state;
    struct fsm_tz *z = tz(MOSCOW);
    struct fsm__trans t;

    memset(&t, 0, sizeof(t));
    t.input = FSM_ITYPE_INTEGER;
    EXPECT(t, " 42 ", "42");
    EXPECT(t, "-7", "-7");
    EXPECT(t, "+9223372036854775807", "9223372036854775807");
    REFUSE(t, "9223372036854775808", "not_integer");
    REFUSE(t, "4.5", "not_integer");
    REFUSE(t, "", "not_integer");
    REFUSE(t, "-", "not_integer");
    REFUSE(t, "12abc", "not_integer");
    t.has_min = t.has_max = true;
    t.min = 1;
    t.max = 10;
    EXPECT(t, "10", "10");
    REFUSE(t, "0", "too_small");
    REFUSE(t, "11", "too_large");

    memset(&t, 0, sizeof(t));
    t.input = FSM_ITYPE_EMAIL;
    EXPECT(t, " Ann.Lee+tag@Example.COM ", "\"Ann.Lee+tag@example.com\"");
    EXPECT(t, "a@b.co", "\"a@b.co\"");
    EXPECT(t, "x@xn--d1acufc.xn--p1ai", "\"x@xn--d1acufc.xn--p1ai\"");
    static const char *const bad_mail[] = {"",
                                           "ann",
                                           "ann@",
                                           "@example.com",
                                           "ann@example",
                                           "ann@@example.com",
                                           "ann@example..com",
                                           ".ann@x.com",
                                           "ann.@x.com",
                                           "a..b@x.com",
                                           "ann@-x.com",
                                           "ann@x-.com",
                                           "an n@x.com",
                                           "ann@x.c",
                                           "ann@x.c0m",
                                           "анна@почта.рф"};
    for (size_t i = 0; i < VN_ARRAY_LEN(bad_mail); i++)
        REFUSE(t, bad_mail[i], "not_email");

    memset(&t, 0, sizeof(t));
    t.input = FSM_ITYPE_TEXT;
    EXPECT(t, "  buy milk  ", "\"buy milk\"");
    REFUSE(t, "   ", "empty");
    t.has_min = t.has_max = true;
    t.min = 2;
    t.max = 5;
    EXPECT(t, "пять!", "\"пять!\""); /* five characters, ten bytes */
    REFUSE(t, "шесть!", "too_long");
    REFUSE(t, "я", "too_short");

    memset(&t, 0, sizeof(t));
    t.input = FSM_ITYPE_CHOICE;
    const char *small[] = {"small"};
    const char *large[] = {"large", "l", "big", "большой"};
    struct fsm__choice ch[2] = {{"small", small, 1}, {"Large", large, 4}};
    t.choices = ch;
    t.n_choices = 2;
    EXPECT(t, "SMALL", "\"small\"");
    EXPECT(t, " Большой ", "\"Large\"");
    EXPECT(t, "l", "\"Large\"");
    REFUSE(t, "medium", "not_choice");

    memset(&t, 0, sizeof(t));
    t.input = FSM_ITYPE_DATETIME;
    EXPECT(t, "завтра 9:00", "\"2026-11-22T09:00:00+03:00\"");
    EXPECT(t, "today 9:00", "\"2026-11-21T09:00:00+03:00\"");
    REFUSE(t, "whenever", "not_datetime");
    t.future = true;
    REFUSE(t, "today 9:00", "in_past");
    EXPECT(t, "in 1 min", "\"2026-11-21T13:18:33+03:00\"");
    fsm_tz_free(z);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {{"45", 45000},      {"45s", 45000},   {"10m", 600000},       {"2h", 7200000},
              {"1h30m", 5400000}, {"1d", 86400000}, {"1d2h3m4s", 93784000}};
    for (size_t i = 0; i < VN_ARRAY_LEN(ok); i++) {
        int64_t ms = 0;
        assert_int_equal(fsm__parse_duration(ok[i].s, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
        char buf[32];
        fsm__format_duration(ms, buf, sizeof(buf));
        int64_t again = 0;
        assert_int_equal(fsm__parse_duration(buf, &again), 0);
        assert_int_equal(again, ms);
    }
    static const char *const bad[] = {"", "m", "10x", "1h30", "-5m", "1.5h", "500d", "10 m"};
    for (size_t i = 0; i < VN_ARRAY_LEN(bad); i++) {
        int64_t ms;
        if (fsm__parse_duration(bad[i], &ms) == 0)
            fail_msg("\"%s\" accepted", bad[i]);
    }
}

static void test_fold(void **state)
{
    (void)state;
    char *f = fsm__fold("  Привет,\tЁЖИК  and\xC2\xA0WORLD  ");
    assert_string_equal(f, "привет, ежик and world");
    free(f);
    f = fsm__trim("\xC2\xA0 x y \n");
    assert_string_equal(f, "x y");
    free(f);
    assert_int_equal(fsm__utf8_len("ёж"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil),
        cmocka_unit_test(test_tz_rules),
        cmocka_unit_test(test_tz_load),
        cmocka_unit_test(test_phrases_moscow),
        cmocka_unit_test(test_phrases_new_york),
        cmocka_unit_test(test_inputs),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_fold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
