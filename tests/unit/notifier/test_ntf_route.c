/*
 * test_ntf_route.c - notifier/ntf_route.c: which channels an event goes out
 * on for one recipient (envelope channels, preferences per type and "*",
 * muting, the fallback order, unreachable / unknown / inactive users,
 * channels this process cannot send on), when (quiet hours in real time
 * zones, across midnight and DST changes; deliver_at; critical priority),
 * the fallback after a permanent failure, and the retry ladder's math.
 * Time zones come from /usr/share/zoneinfo; nothing else is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/common.h"
#include "fsm/fsm_date.h"
#include "notifier/ntf_envelope.h"
#include "notifier/ntf_route.h"

#define TG    NTF_CH_TELEGRAM
#define EM    NTF_CH_EMAIL
#define WS    NTF_CH_WEBSOCKET
#define B(c)  NTF_CH_BIT(c)
#define TG_EM (B(TG) | B(EM))
#define ALL   (B(TG) | B(EM) | B(WS))

#define HM(h, m) ((h)*60 + (m))

/* ms since the epoch of a UTC civil time */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    return (fsm_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000;
}

static struct fsm_tz *zone(const char *name)
{
    char err[256];
    struct fsm_tz *tz = fsm_tz_load(name, NULL, err, sizeof(err));
    if (tz == NULL)
        fail_msg("%s: %s", name, err);
    return tz;
}

/* A registered, active user reachable on Telegram and e-mail, no preferences,
   no quiet hours, fallback order telegram then e-mail. */
static struct ntf_user user(void)
{
    struct ntf_user u;
    memset(&u, 0, sizeof(u));
    u.key = "u-1";
    u.known = 1;
    u.active = 1;
    u.name = "Anna";
    u.email = "anna@example.com";
    u.telegram_ok = 1;
    u.chat_id = 12345;
    u.locale = "en";
    u.quiet_start_min = -1;
    u.quiet_end_min = -1;
    u.fallback[0] = TG;
    u.fallback[1] = EM;
    u.n_fallback = 2;
    return u;
}

static struct ntf_event event(enum ntf_type type)
{
    struct ntf_event ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.id, sizeof(ev.id), "0b9c3f6e-1d2a-4c5b-8e7f-123456789abc");
    ev.type = type;
    ev.version = 1;
    ev.source = "test";
    ev.priority = NTF_PRIO_NORMAL;
    return ev;
}

static json_object *prefs(const char *json)
{
    json_object *o = json_tokener_parse(json);
    assert_non_null(o);
    return o;
}

static void has_reason(const struct ntf_plan *p, const char *needle)
{
    if (strstr(p->reason, needle) == NULL)
        fail_msg("reason \"%s\" does not mention \"%s\"", p->reason, needle);
}

static void is_send(const struct ntf_plan *p, enum ntf_channel c)
{
    if (p->channel != c || p->action != NTF_SEND)
        fail_msg("expected send on %s, got %s action %d (%s)", ntf_channel_name(c),
                 ntf_channel_name(p->channel), (int)p->action, p->reason);
    assert_int_equal(p->not_before_ms, 0);
}

static void is_skip(const struct ntf_plan *p, enum ntf_channel c, const char *needle)
{
    if (p->channel != c || p->action != NTF_SKIP)
        fail_msg("expected skip on %s, got %s action %d (%s)", ntf_channel_name(c),
                 ntf_channel_name(p->channel), (int)p->action, p->reason);
    has_reason(p, needle);
}

static void is_defer(const struct ntf_plan *p, enum ntf_channel c, int64_t when, const char *needle)
{
    if (p->channel != c || p->action != NTF_DEFER)
        fail_msg("expected defer on %s, got %s action %d (%s)", ntf_channel_name(c),
                 ntf_channel_name(p->channel), (int)p->action, p->reason);
    if (p->not_before_ms != when) {
        char a[40], b[40];
        ntf_format_rfc3339(p->not_before_ms, a, sizeof(a));
        ntf_format_rfc3339(when, b, sizeof(b));
        fail_msg("deferred until %s, expected %s", a, b);
    }
    has_reason(p, needle);
}

/* 12:00 UTC on an ordinary Tuesday */
#define NOON utc(2026, 3, 10, 12, 0)

/* ---- which channels ------------------------------------------------------- */

static void test_explicit_channels(void **state)
{
    (void)state;
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_TASK_ASSIGNED);

    ev.channels = B(EM);
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], EM);

    /* the envelope's channels win over the preferences, even a mute */
    u.prefs_chan = prefs("{\"*\":[],\"task.assigned\":[\"telegram\"]}");
    ev.channels = B(TG) | B(EM);
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 2);
    is_send(&out[0], TG);
    is_send(&out[1], EM);
    ev.channels = B(EM);
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], EM);
    json_object_put(u.prefs_chan);
}

static void test_preferences(void **state)
{
    (void)state;
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_TASK_ASSIGNED);

    /* by type, else "*" */
    u.prefs_chan = prefs("{\"task.assigned\":[\"email\"],\"*\":[\"telegram\"],"
                         "\"reminder.scheduled\":[\"email\",\"telegram\"],"
                         "\"notification.requested\":[\"sms\",\"email\",\"email\"]}");
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], EM);
    ev.type = NTF_TASK_DUE;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], TG);
    /* several channels, in the preference's order */
    ev.type = NTF_REMINDER_SCHEDULED;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 2);
    is_send(&out[0], EM);
    is_send(&out[1], TG);
    /* a stored reminder firing follows the reminder.scheduled preference */
    ev.type = NTF_REMINDER;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 2);
    is_send(&out[0], EM);
    is_send(&out[1], TG);
    /* unknown names are ignored and duplicates count once */
    ev.type = NTF_NOTIFICATION_REQUESTED;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], EM);
    json_object_put(u.prefs_chan);

    /* a type without an entry and no "*": no preference, the fallback order */
    u.prefs_chan = prefs("{\"task.due\":[\"email\"]}");
    ev.type = NTF_TASK_COMPLETED;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], TG);
    json_object_put(u.prefs_chan);
    u.prefs_chan = NULL;
}

static void test_muted(void **state)
{
    (void)state;
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_TASK_DUE);

    u.prefs_chan = prefs("{\"task.due\":[],\"*\":[\"telegram\"]}");
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    assert_int_equal(out[0].action, NTF_SKIP);
    has_reason(&out[0], "muted");
    has_reason(&out[0], "task.due");
    /* other types still go out */
    ev.type = NTF_TASK_ASSIGNED;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], TG);
    json_object_put(u.prefs_chan);

    /* "*": [] mutes everything without its own entry */
    u.prefs_chan = prefs("{\"*\":[],\"task.completed\":[\"email\"]}");
    ev.type = NTF_NOTIFICATION_REQUESTED;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    assert_int_equal(out[0].action, NTF_SKIP);
    has_reason(&out[0], "muted");
    ev.type = NTF_TASK_COMPLETED;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], EM);
    json_object_put(u.prefs_chan);
}

static void test_no_preference(void **state)
{
    (void)state;
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_TASK_ASSIGNED);

    /* the first reachable channel of the fallback order, one row */
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], TG);
    u.fallback[0] = EM;
    u.fallback[1] = TG;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], EM);
    u.email = NULL;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], TG);
    /* telegram not configured in this process */
    u = user();
    assert_int_equal(ntf_route(&ev, &u, NOON, B(EM), out), 1);
    is_send(&out[0], EM);
    u.telegram_ok = 0;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], EM);
    /* nothing reaches a registered user: one skipped row says so */
    u.email = NULL;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_skip(&out[0], TG, "no channel reaches the user");
}

static void test_telegram_unlinked_falls_back(void **state)
{
    (void)state;
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_TASK_ASSIGNED);

    u.telegram_ok = 0;
    u.prefs_chan = prefs("{\"*\":[\"telegram\"]}");
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 2);
    is_skip(&out[0], TG, "no active Telegram link");
    is_send(&out[1], EM);
    assert_int_equal(out[1].action, NTF_SEND);
    has_reason(&out[1], "fallback");
    has_reason(&out[1], "telegram");

    /* the same with telegram asked for by the envelope */
    json_object_put(u.prefs_chan);
    u.prefs_chan = NULL;
    ev.channels = B(TG);
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 2);
    is_skip(&out[0], TG, "Telegram");
    assert_int_equal(out[1].channel, EM);
    has_reason(&out[1], "fallback");

    /* nothing to fall back to: just the skipped row */
    u.email = NULL;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_skip(&out[0], TG, "Telegram");

    /* one wanted channel works: no fallback row */
    u = user();
    u.telegram_ok = 0;
    ev.channels = B(TG) | B(EM);
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 2);
    is_skip(&out[0], TG, "Telegram");
    is_send(&out[1], EM);
    assert_null(strstr(out[1].reason, "fallback"));
}

static void test_fallback_in_quiet_hours_says_so(void **state)
{
    (void)state;
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_TASK_ASSIGNED);

    /* the fallback row is deferred by quiet hours and still says what it replaces */
    u.telegram_ok = 0;
    u.quiet_start_min = HM(22, 0);
    u.quiet_end_min = HM(7, 0);
    ev.channels = B(TG);
    assert_int_equal(ntf_route(&ev, &u, utc(2026, 3, 10, 23, 30), TG_EM, out), 2);
    is_skip(&out[0], TG, "Telegram");
    is_defer(&out[1], EM, utc(2026, 3, 11, 7, 0), "quiet hours");
    has_reason(&out[1], "fallback");
}

static void test_unknown_and_inactive(void **state)
{
    (void)state;
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_TASK_ASSIGNED);

    /* not registered and no address: one skipped row */
    u.key = "u-404";
    u.known = 0;
    u.email = NULL;
    u.telegram_ok = 0;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    assert_int_equal(out[0].action, NTF_SKIP);
    has_reason(&out[0], "unknown user");
    ev.channels = B(EM) | B(TG);
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    assert_int_equal(out[0].action, NTF_SKIP);
    has_reason(&out[0], "unknown user");

    /* an ad-hoc e-mail recipient (no account) is reachable */
    ev.channels = 0;
    u.key = "email:bob@example.com";
    u.email = "bob@example.com";
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], EM);
    /* an ad-hoc Telegram chat too */
    u.key = "tg:777";
    u.email = NULL;
    u.telegram_ok = 1;
    u.chat_id = 777;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    is_send(&out[0], TG);

    /* inactive: one skipped row whatever was asked */
    u = user();
    u.active = 0;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    assert_int_equal(out[0].action, NTF_SKIP);
    has_reason(&out[0], "inactive");
    ev.channels = TG_EM;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    assert_int_equal(out[0].action, NTF_SKIP);
    has_reason(&out[0], "inactive");
    /* inactive and critical is still skipped */
    ev.priority = NTF_PRIO_CRITICAL;
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 1);
    assert_int_equal(out[0].action, NTF_SKIP);
}

static void test_websocket_not_available(void **state)
{
    (void)state;
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_NOTIFICATION_REQUESTED);

    ev.channels = B(WS);
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 2);
    is_skip(&out[0], WS, "websocket");
    is_send(&out[1], TG); /* the first of the fallback order */
    has_reason(&out[1], "fallback");
    has_reason(&out[1], "websocket");
    /* where it is enabled it is used */
    assert_int_equal(ntf_route(&ev, &u, NOON, ALL, out), 1);
    is_send(&out[0], WS);

    /* a preference naming websocket and e-mail: the e-mail row carries it */
    ev.channels = 0;
    u.prefs_chan = prefs("{\"*\":[\"websocket\",\"email\"]}");
    assert_int_equal(ntf_route(&ev, &u, NOON, TG_EM, out), 2);
    is_skip(&out[0], WS, "websocket");
    is_send(&out[1], EM);
    json_object_put(u.prefs_chan);
    u.prefs_chan = NULL;

    /* e-mail not configured here (no SMTP) */
    ev.channels = B(EM);
    u.fallback[0] = EM;
    u.fallback[1] = TG;
    assert_int_equal(ntf_route(&ev, &u, NOON, B(TG), out), 2);
    is_skip(&out[0], EM, "not configured");
    is_send(&out[1], TG);
}

/* ---- when: quiet hours ------------------------------------------------------ */

static void test_quiet_until_utc(void **state)
{
    (void)state;
    struct ntf_user u = user();

    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 23, 30)), 0); /* none set */
    u.quiet_start_min = HM(22, 0);
    u.quiet_end_min = HM(7, 0);
    /* spanning midnight: [22:00, 07:00) */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 23, 30)), utc(2026, 3, 11, 7, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 22, 0)), utc(2026, 3, 11, 7, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 0, 0)), utc(2026, 3, 11, 7, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 6, 59)), utc(2026, 3, 11, 7, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 6, 59) + 59999), utc(2026, 3, 11, 7, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 7, 0)), 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 21, 59)), 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 21, 59) + 59999), 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 12, 0)), 0);
    /* across a month and a year end */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 2, 28, 23, 0)), utc(2026, 3, 1, 7, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 12, 31, 22, 30)), utc(2027, 1, 1, 7, 0));

    /* within one day: [13:00, 15:00) */
    u.quiet_start_min = HM(13, 0);
    u.quiet_end_min = HM(15, 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 12, 59)), 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 13, 0)), utc(2026, 3, 10, 15, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 14, 59)), utc(2026, 3, 10, 15, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 15, 0)), 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 23, 0)), 0);

    /* start == end, or one of them unset: no quiet hours */
    u.quiet_end_min = HM(13, 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 13, 0)), 0);
    u.quiet_start_min = -1;
    u.quiet_end_min = HM(7, 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 3, 0)), 0);
}

static void test_quiet_until_moscow(void **state)
{
    (void)state;
    struct fsm_tz *msk = zone("Europe/Moscow"); /* UTC+3 all year */
    struct ntf_user u = user();
    u.tz = msk;
    u.quiet_start_min = HM(22, 0);
    u.quiet_end_min = HM(7, 0);

    /* 23:30 MSK = 20:30 UTC: until 07:00 MSK tomorrow = 04:00 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 10, 20, 30)), utc(2026, 3, 11, 4, 0));
    /* 06:59 MSK = 03:59 UTC: until 04:00 UTC the same day */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 3, 59)), utc(2026, 3, 11, 4, 0));
    /* 07:00 MSK: over */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 4, 0)), 0);
    /* 21:59 MSK = 18:59 UTC: not yet */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 18, 59)), 0);
    /* 22:00 MSK = 19:00 UTC: quiet (a UTC user would not be) */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 19, 0)), utc(2026, 3, 12, 4, 0));
    /* 23:30 UTC is 02:30 MSK the next day: quiet until 04:00 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 11, 23, 30)), utc(2026, 3, 12, 4, 0));
    /* 05:00 UTC = 08:00 MSK: not quiet (a UTC user would be) */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 12, 5, 0)), 0);

    /* through ntf_route: deferred to the exact end, unless critical */
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_event ev = event(NTF_TASK_ASSIGNED);
    assert_int_equal(ntf_route(&ev, &u, utc(2026, 3, 10, 20, 30), TG_EM, out), 1);
    is_defer(&out[0], TG, utc(2026, 3, 11, 4, 0), "quiet hours");
    has_reason(&out[0], "2026-03-11T04:00:00.000Z");
    ev.priority = NTF_PRIO_HIGH;
    assert_int_equal(ntf_route(&ev, &u, utc(2026, 3, 10, 20, 30), TG_EM, out), 1);
    assert_int_equal(out[0].action, NTF_DEFER);
    ev.priority = NTF_PRIO_CRITICAL;
    assert_int_equal(ntf_route(&ev, &u, utc(2026, 3, 10, 20, 30), TG_EM, out), 1);
    is_send(&out[0], TG);
    /* outside quiet hours: now */
    ev.priority = NTF_PRIO_LOW;
    assert_int_equal(ntf_route(&ev, &u, utc(2026, 3, 11, 4, 0), TG_EM, out), 1);
    is_send(&out[0], TG);
    /* every wanted channel is deferred alike */
    ev.channels = TG_EM;
    assert_int_equal(ntf_route(&ev, &u, utc(2026, 3, 11, 3, 59), TG_EM, out), 2);
    is_defer(&out[0], TG, utc(2026, 3, 11, 4, 0), "quiet hours");
    is_defer(&out[1], EM, utc(2026, 3, 11, 4, 0), "quiet hours");
    fsm_tz_free(msk);
}

static void test_quiet_until_new_york_dst(void **state)
{
    (void)state;
    struct fsm_tz *ny = zone("America/New_York");
    struct ntf_user u = user();
    u.tz = ny;
    u.quiet_start_min = HM(22, 0);
    u.quiet_end_min = HM(7, 0);

    /* an ordinary winter night: 23:30 EST = 04:30 UTC, until 07:00 EST = 12:00 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 1, 15, 4, 30)), utc(2026, 1, 15, 12, 0));
    /* summer: 07:00 EDT = 11:00 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 7, 15, 3, 30)), utc(2026, 7, 15, 11, 0));

    /* spring forward, Sun 8 March 2026 02:00 EST -> 03:00 EDT (07:00 UTC):
       Saturday 23:30 EST (04:30 UTC) is quiet until Sunday 07:00 EDT = 11:00 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 8, 4, 30)), utc(2026, 3, 8, 11, 0));
    /* 06:59 EDT = 10:59 UTC: until 11:00 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 8, 10, 59)), utc(2026, 3, 8, 11, 0));
    /* 07:00 EDT = 11:00 UTC: over; 10:00 UTC (06:00 EDT) is not */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 8, 11, 0)), 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 8, 10, 0)), utc(2026, 3, 8, 11, 0));
    /* 21:59 EDT Sunday = 01:59 UTC Monday: not quiet; 22:00 EDT = 02:00 UTC is */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 9, 1, 59)), 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 3, 9, 2, 0)), utc(2026, 3, 9, 11, 0));

    /* fall back, Sun 1 November 2026 02:00 EDT -> 01:00 EST (06:00 UTC):
       Saturday 23:30 EDT (03:30 UTC) is quiet until Sunday 07:00 EST = 12:00 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 11, 1, 3, 30)), utc(2026, 11, 1, 12, 0));
    /* 06:59 EST = 11:59 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 11, 1, 11, 59)), utc(2026, 11, 1, 12, 0));
    /* 11:00 UTC is 06:00 EST now, still quiet (it would be 07:00 EDT the day before) */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 11, 1, 11, 0)), utc(2026, 11, 1, 12, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 11, 1, 12, 0)), 0);

    /* a window ending inside the spring-forward gap (02:30 does not exist on
       8 March): it ends at 03:30 EDT = 07:30 UTC, an instant after now */
    u.quiet_start_min = HM(1, 0);
    u.quiet_end_min = HM(2, 30);
    int64_t now = utc(2026, 3, 8, 6, 30); /* 01:30 EST */
    int64_t q = ntf_quiet_until(&u, now);
    assert_true(q > now);
    assert_int_equal(q, utc(2026, 3, 8, 7, 30));

    /* through ntf_route, the exact UTC instant of the end */
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_event ev = event(NTF_TASK_DUE);
    u.quiet_start_min = HM(22, 0);
    u.quiet_end_min = HM(7, 0);
    assert_int_equal(ntf_route(&ev, &u, utc(2026, 3, 8, 4, 30), TG_EM, out), 1);
    is_defer(&out[0], TG, utc(2026, 3, 8, 11, 0), "2026-03-08T11:00:00.000Z");
    fsm_tz_free(ny);
}

static void test_quiet_until_berlin_daytime(void **state)
{
    (void)state;
    struct fsm_tz *ber = zone("Europe/Berlin");
    struct ntf_user u = user();
    u.tz = ber;
    u.quiet_start_min = HM(13, 0);
    u.quiet_end_min = HM(15, 0);
    /* summer (CEST, UTC+2): 14:00 local = 12:00 UTC, ends 13:00 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 7, 1, 12, 0)), utc(2026, 7, 1, 13, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 7, 1, 13, 0)), 0);
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 7, 1, 10, 59)), 0);
    /* winter (CET, UTC+1): ends 14:00 UTC */
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 1, 5, 12, 0)), utc(2026, 1, 5, 14, 0));
    assert_int_equal(ntf_quiet_until(&u, utc(2026, 1, 5, 11, 59)), 0);
    fsm_tz_free(ber);
}

/* ---- when: deliver_at --------------------------------------------------------- */

static void test_deliver_at(void **state)
{
    (void)state;
    struct ntf_plan out[NTF_CH_COUNT];
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_NOTIFICATION_REQUESTED);
    int64_t now = utc(2026, 3, 10, 12, 0);

    /* in the future: wait for it */
    ev.deliver_at_ms = utc(2026, 3, 10, 15, 0);
    assert_int_equal(ntf_route(&ev, &u, now, TG_EM, out), 1);
    is_defer(&out[0], TG, utc(2026, 3, 10, 15, 0), "deliver_at");
    has_reason(&out[0], "2026-03-10T15:00:00.000Z");
    /* now or in the past: send */
    ev.deliver_at_ms = now;
    assert_int_equal(ntf_route(&ev, &u, now, TG_EM, out), 1);
    is_send(&out[0], TG);
    ev.deliver_at_ms = now - 3600000;
    assert_int_equal(ntf_route(&ev, &u, now, TG_EM, out), 1);
    is_send(&out[0], TG);

    /* deliver_at inside quiet hours: to the end of the quiet hours then */
    u.quiet_start_min = HM(22, 0);
    u.quiet_end_min = HM(7, 0);
    ev.deliver_at_ms = utc(2026, 3, 10, 23, 0);
    assert_int_equal(ntf_route(&ev, &u, now, TG_EM, out), 1);
    is_defer(&out[0], TG, utc(2026, 3, 11, 7, 0), "quiet hours");
    /* now inside quiet hours but deliver_at after them: deliver_at */
    ev.deliver_at_ms = utc(2026, 3, 11, 9, 0);
    assert_int_equal(ntf_route(&ev, &u, utc(2026, 3, 10, 23, 0), TG_EM, out), 1);
    is_defer(&out[0], TG, utc(2026, 3, 11, 9, 0), "deliver_at");
    /* deliver_at just before quiet hours: as asked */
    ev.deliver_at_ms = utc(2026, 3, 10, 21, 59);
    assert_int_equal(ntf_route(&ev, &u, now, TG_EM, out), 1);
    is_defer(&out[0], TG, utc(2026, 3, 10, 21, 59), "deliver_at");
    /* critical: deliver_at is kept, quiet hours are not */
    ev.priority = NTF_PRIO_CRITICAL;
    ev.deliver_at_ms = utc(2026, 3, 10, 23, 0);
    assert_int_equal(ntf_route(&ev, &u, now, TG_EM, out), 1);
    is_defer(&out[0], TG, utc(2026, 3, 10, 23, 0), "deliver_at");

    /* in the user's zone: deliver_at 20:00 UTC is 23:00 MSK, quiet until 04:00 UTC */
    struct fsm_tz *msk = zone("Europe/Moscow");
    u.tz = msk;
    ev.priority = NTF_PRIO_NORMAL;
    ev.deliver_at_ms = utc(2026, 3, 10, 20, 0);
    assert_int_equal(ntf_route(&ev, &u, now, TG_EM, out), 1);
    is_defer(&out[0], TG, utc(2026, 3, 11, 4, 0), "quiet hours");
    fsm_tz_free(msk);
}

/* ---- after a permanent failure -------------------------------------------- */

static void test_route_fallback(void **state)
{
    (void)state;
    struct ntf_plan p;
    struct ntf_user u = user();
    struct ntf_event ev = event(NTF_TASK_ASSIGNED);
    u.fallback[0] = TG;
    u.fallback[1] = EM;
    u.fallback[2] = WS;
    u.n_fallback = 3;

    /* telegram failed for good: e-mail next */
    memset(&p, 0x5a, sizeof(p));
    assert_int_equal(ntf_route_fallback(&ev, &u, NOON, TG_EM, B(TG), &p), 1);
    is_send(&p, EM);
    /* nothing used yet: the first reachable */
    assert_int_equal(ntf_route_fallback(&ev, &u, NOON, TG_EM, 0, &p), 1);
    is_send(&p, TG);
    /* unreachable ones are skipped over */
    u.telegram_ok = 0;
    assert_int_equal(ntf_route_fallback(&ev, &u, NOON, TG_EM, 0, &p), 1);
    is_send(&p, EM);
    u.telegram_ok = 1;
    /* telegram and e-mail used, websocket not available: none */
    assert_int_equal(ntf_route_fallback(&ev, &u, NOON, TG_EM, TG_EM, &p), 0);
    /* where websocket is enabled, it is next */
    assert_int_equal(ntf_route_fallback(&ev, &u, NOON, ALL, TG_EM, &p), 1);
    is_send(&p, WS);
    assert_int_equal(ntf_route_fallback(&ev, &u, NOON, ALL, ALL, &p), 0);
    /* e-mail used and telegram unlinked: none */
    u.telegram_ok = 0;
    assert_int_equal(ntf_route_fallback(&ev, &u, NOON, TG_EM, B(EM), &p), 0);
    /* no e-mail address either */
    u.email = NULL;
    assert_int_equal(ntf_route_fallback(&ev, &u, NOON, TG_EM, 0, &p), 0);
    /* an empty fallback order */
    u = user();
    u.n_fallback = 0;
    assert_int_equal(ntf_route_fallback(&ev, &u, NOON, ALL, 0, &p), 0);

    /* the fallback respects quiet hours (and critical bypasses them) */
    u = user();
    u.quiet_start_min = HM(22, 0);
    u.quiet_end_min = HM(7, 0);
    assert_int_equal(ntf_route_fallback(&ev, &u, utc(2026, 3, 10, 23, 30), TG_EM, B(TG), &p), 1);
    is_defer(&p, EM, utc(2026, 3, 11, 7, 0), "quiet hours");
    ev.priority = NTF_PRIO_CRITICAL;
    assert_int_equal(ntf_route_fallback(&ev, &u, utc(2026, 3, 10, 23, 30), TG_EM, B(TG), &p), 1);
    is_send(&p, EM);
}

/* ---- the retry ladder ------------------------------------------------------- */

static void test_retry_parse(void **state)
{
    (void)state;
    struct ntf_retry r;
    char err[160];

    assert_int_equal(ntf_retry_parse("10s,1m,10m,1h", 5, &r, err, sizeof(err)), 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.max_attempts, 5);
    assert_string_equal(r.name[0], "10s");
    assert_string_equal(r.name[1], "1m");
    assert_string_equal(r.name[2], "10m");
    assert_string_equal(r.name[3], "1h");
    assert_int_equal(r.delay_ms[0], 10000);
    assert_int_equal(r.delay_ms[1], 60000);
    assert_int_equal(r.delay_ms[2], 600000);
    assert_int_equal(r.delay_ms[3], 3600000);

    /* names read back as durations; spaces around items are fine */
    assert_int_equal(ntf_retry_parse(" 30s , 90s,120s,3600s,24h", 3, &r, err, sizeof(err)), 0);
    assert_int_equal(r.n, 5);
    assert_string_equal(r.name[0], "30s");
    assert_string_equal(r.name[1], "90s");
    assert_string_equal(r.name[2], "2m");
    assert_string_equal(r.name[3], "1h");
    assert_string_equal(r.name[4], "24h");
    assert_int_equal(r.delay_ms[4], 86400000);
    assert_int_equal(ntf_retry_parse("1s", 1, &r, err, sizeof(err)), 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.name[0], "1s");

    /* exactly 16 steps */
    assert_int_equal(ntf_retry_parse("1s,2s,3s,4s,5s,6s,7s,8s,9s,10s,11s,12s,13s,14s,15s,16s", 20,
                                     &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.n, 16);
    assert_string_equal(r.name[15], "16s");

    static const struct {
        const char *ladder;
        const char *needle;
    } bad[] = {
        {"", "empty"},
        {NULL, "empty"},
        {"0s", "\"0s\""},
        {"5ms", "\"5ms\""},
        {"1500ms", "\"1500ms\""},
        {"25h", "\"25h\""},
        {"1m,10s", "\"10s\""},     /* decreasing */
        {"10s,1m,30s", "\"30s\""}, /* decreasing later on */
        {"10s,10s", "\"10s\" is listed twice"},
        {"1m,60s", "\"60s\" is listed twice"}, /* the same delay spelled twice */
        {"abc", "\"abc\""},
        {"10s;1m", "\"10s;1m\""},
        {"10 s", "\"10 s\""},
        {"-5s", "\"-5s\""},
        {"10s,,1m", "empty"},
        {",10s", "empty"},
        {"10s, ,1m", "empty"},
        {"1s,2s,3s,4s,5s,6s,7s,8s,9s,10s,11s,12s,13s,14s,15s,16s,17s", "at most 16"},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (ntf_retry_parse(bad[i].ladder, 5, &r, err, sizeof(err)) != VN_EINVAL)
            fail_msg("\"%s\" accepted", bad[i].ladder ? bad[i].ladder : "(null)");
        if (strstr(err, bad[i].needle) == NULL)
            fail_msg("\"%s\": error \"%s\" does not mention %s", bad[i].ladder, err, bad[i].needle);
    }
    assert_int_equal(ntf_retry_parse("10s", 0, &r, err, sizeof(err)), VN_EINVAL);
    assert_non_null(strstr(err, "max attempts"));
}

static void test_retry_next(void **state)
{
    (void)state;
    struct ntf_retry r;
    char err[160];
    size_t step;

    /* 4 steps, 8 attempts: 10s, 1m, 10m, 1h, 1h, 1h, 1h, then give up */
    assert_int_equal(ntf_retry_parse("10s,1m,10m,1h", 8, &r, err, sizeof(err)), 0);
    static const size_t want[] = {0, 1, 2, 3, 3, 3, 3};
    for (int attempt = 1; attempt < 8; attempt++) {
        step = 99;
        assert_int_equal(ntf_retry_next(&r, attempt, &step), 0);
        assert_int_equal(step, want[attempt - 1]);
    }
    assert_int_equal(r.delay_ms[want[6]], 3600000);
    assert_int_equal(ntf_retry_next(&r, 8, &step), 1);
    assert_int_equal(ntf_retry_next(&r, 9, &step), 1);

    /* fewer attempts than steps: the later steps are never reached */
    assert_int_equal(ntf_retry_parse("10s,1m,10m,1h", 3, &r, err, sizeof(err)), 0);
    assert_int_equal(ntf_retry_next(&r, 1, &step), 0);
    assert_int_equal(step, 0);
    assert_int_equal(ntf_retry_next(&r, 2, &step), 0);
    assert_int_equal(step, 1);
    assert_int_equal(ntf_retry_next(&r, 3, &step), 1);

    /* one attempt in all: never retried */
    assert_int_equal(ntf_retry_parse("10s", 1, &r, err, sizeof(err)), 0);
    assert_int_equal(ntf_retry_next(&r, 1, &step), 1);
    /* one step, many attempts: always that step */
    assert_int_equal(ntf_retry_parse("30s", 4, &r, err, sizeof(err)), 0);
    for (int attempt = 1; attempt < 4; attempt++) {
        step = 99;
        assert_int_equal(ntf_retry_next(&r, attempt, &step), 0);
        assert_int_equal(step, 0);
    }
    assert_int_equal(ntf_retry_next(&r, 4, &step), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_explicit_channels),
        cmocka_unit_test(test_preferences),
        cmocka_unit_test(test_muted),
        cmocka_unit_test(test_no_preference),
        cmocka_unit_test(test_telegram_unlinked_falls_back),
        cmocka_unit_test(test_fallback_in_quiet_hours_says_so),
        cmocka_unit_test(test_unknown_and_inactive),
        cmocka_unit_test(test_websocket_not_available),
        cmocka_unit_test(test_quiet_until_utc),
        cmocka_unit_test(test_quiet_until_moscow),
        cmocka_unit_test(test_quiet_until_new_york_dst),
        cmocka_unit_test(test_quiet_until_berlin_daytime),
        cmocka_unit_test(test_deliver_at),
        cmocka_unit_test(test_route_fallback),
        cmocka_unit_test(test_retry_parse),
        cmocka_unit_test(test_retry_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
