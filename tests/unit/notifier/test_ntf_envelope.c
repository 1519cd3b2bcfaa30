/*
 * test_ntf_envelope.c - notifier/ntf_envelope.c: the event envelope (v1).
 *
 * Accepted envelopes fill every field of struct ntf_event (lowercased id,
 * times in ms, recipients with the chat_id default, priority and channel
 * mask, reminder ids); every rejection code is produced by at least one
 * input and its message names the offending field path; RFC 3339 parsing
 * and formatting; name-based (v5, known answers) and random (v4) UUIDs; the
 * envelope of a stored reminder firing. No I/O.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/common.h"
#include "notifier/ntf_envelope.h"

/* ---- helpers ------------------------------------------------------------- */

#define UPPER_ID "0B9C3F6E-1D2A-4C5B-8E7F-123456789ABC"
#define LOWER_ID "0b9c3f6e-1d2a-4c5b-8e7f-123456789abc"

/* 2026-11-21T09:00:00+03:00 */
#define OCCURRED_MS INT64_C(1795240800000)

static const char *const TASK =
    "{\"id\":\"" UPPER_ID "\",\"type\":\"task.assigned\",\"version\":1,"
    "\"occurred_at\":\"2026-11-21T09:00:00+03:00\",\"source\":\"tasks-api\","
    "\"recipients\":["
    "{\"user_id\":\"u-1\",\"name\":\"Анна\",\"locale\":\"ru\",\"time_zone\":\"Europe/Moscow\"},"
    "{\"telegram_user_id\":12345},"
    "{\"telegram_user_id\":777,\"chat_id\":-1001234567890},"
    "{\"email\":\"bob@example.com\"}],"
    "\"data\":{\"task\":{\"id\":\"T-1\",\"title\":\"Write tests\","
    "\"due_at\":\"2026-11-22T18:00:00Z\"}}}";

static const char *const SCHEDULED =
    "{\"id\":\"" LOWER_ID "\",\"type\":\"reminder.scheduled\",\"version\":1,"
    "\"occurred_at\":\"2026-11-21T09:00:00Z\",\"source\":\"bot\","
    "\"recipients\":[{\"user_id\":\"u-1\"}],"
    "\"data\":{\"reminder\":{\"text\":\"Call mom\",\"remind_at\":\"2026-11-22T10:00:00+03:00\"},"
    "\"extra\":{\"k\":\"v\"}}}";

static const char *const CANCELLED =
    "{\"id\":\"" LOWER_ID "\",\"type\":\"reminder.cancelled\",\"version\":1,"
    "\"occurred_at\":\"2026-11-21T09:00:00Z\",\"source\":\"bot\","
    "\"data\":{\"reminder_id\":\"rem-42\"}}";

static const char *const NOTIFICATION =
    "{\"id\":\"" LOWER_ID "\",\"type\":\"notification.requested\",\"version\":1,"
    "\"occurred_at\":\"2026-11-21T09:00:00Z\",\"source\":\"billing\","
    "\"recipients\":[{\"email\":\"a@b.c\"}],"
    "\"data\":{\"title\":\"Invoice ready\",\"body\":\"\",\"url\":\"https://x.test/i/1\"}}";

static const char *const PREFS =
    "{\"id\":\"" LOWER_ID "\",\"type\":\"preferences.update_requested\",\"version\":1,"
    "\"occurred_at\":\"2026-11-21T09:00:00Z\",\"source\":\"vestnik-bot\","
    "\"recipients\":[{\"telegram_user_id\":7,\"chat_id\":7}],"
    "\"data\":{\"locale\":\"ru\"}}";

/* ms since the epoch of a UTC civil time (independent of the code under test
   only in that the constants below were checked against Python's datetime). */
static int64_t ms_of(const char *rfc3339)
{
    int64_t ms = -1;
    if (ntf_parse_rfc3339(rfc3339, &ms) != 0)
        fail_msg("\"%s\" does not parse", rfc3339);
    return ms;
}

/* Walk one path segment ("name", "name[3]" or "[3]") of a mutable document. */
static json_object *step_into(json_object *cur, const char *seg, size_t len)
{
    char key[64];
    const char *br = memchr(seg, '[', len);
    size_t klen = br ? (size_t)(br - seg) : len;
    assert_true(klen < sizeof(key));
    if (klen) {
        memcpy(key, seg, klen);
        key[klen] = '\0';
        json_object *next = NULL;
        if (!json_object_object_get_ex(cur, key, &next))
            fail_msg("no key %s", key);
        cur = next;
    }
    if (br)
        cur = json_object_array_get_idx(cur, (size_t)atoi(br + 1));
    assert_non_null(cur);
    return cur;
}

/*
 * base with the value at path replaced by val (JSON text; "null" allowed) or,
 * when val is NULL, removed. path: "recipients[1].email", "data.task.id".
 * The result is compact JSON; caller frees.
 */
static char *mut(const char *base, const char *path, const char *val)
{
    json_object *root = json_tokener_parse(base);
    assert_non_null(root);
    json_object *cur = root;
    const char *p = path;
    for (;;) {
        size_t len = strcspn(p, ".");
        if (p[len] == '\0') {
            /* the last segment: set or delete there */
            json_object *v = val ? json_tokener_parse(val) : NULL;
            if (val && v == NULL && strcmp(val, "null") != 0)
                fail_msg("bad replacement JSON %s", val);
            const char *br = memchr(p, '[', len);
            if (br) {
                /* "name[3]" as the last segment */
                json_object *arr = step_into(cur, p, (size_t)(br - p));
                size_t idx = (size_t)atoi(br + 1);
                if (val == NULL)
                    json_object_array_del_idx(arr, idx, 1);
                else
                    json_object_array_put_idx(arr, idx, v);
            } else if (val == NULL) {
                json_object_object_del(cur, p);
            } else {
                json_object_object_add(cur, p, v);
            }
            break;
        }
        cur = step_into(cur, p, len);
        p += len + 1;
    }
    char *out = xstrdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return out;
}

static void parse_ok(const char *body, const struct ntf_limits *lim, struct ntf_event *ev)
{
    struct ntf_reject_info why;
    int rc = ntf_event_parse(body, strlen(body), lim, ev, &why);
    if (rc != 0)
        fail_msg("rejected (%s: %s): %s", ntf_reject_code(why.code), why.msg, body);
    assert_int_equal(why.code, NTF_ACCEPTED);
    assert_non_null(ev->root);
}

/* body (len bytes) is rejected with code and a message containing needle. */
static void rejects_n(const char *body, size_t len, const struct ntf_limits *lim,
                      enum ntf_reject code, const char *needle)
{
    struct ntf_event ev;
    struct ntf_reject_info why;
    memset(&ev, 0x5a, sizeof(ev));
    int rc = ntf_event_parse(body, len, lim, &ev, &why);
    if (rc == 0) {
        ntf_event_free(&ev);
        fail_msg("accepted, expected %s: %.*s", ntf_reject_code(code), (int)len, body);
    }
    if (why.code != code)
        fail_msg("got %s (%s), expected %s: %.*s", ntf_reject_code(why.code), why.msg,
                 ntf_reject_code(code), (int)len, body);
    assert_int_equal(rc, code == NTF_R_TOO_LARGE ? VN_ETOOBIG : VN_EINVAL);
    if (strstr(why.msg, needle) == NULL)
        fail_msg("message \"%s\" does not mention \"%s\"", why.msg, needle);
    /* a rejected event is left empty (nothing to free, nothing dangling) */
    assert_null(ev.root);
    assert_null(ev.recipients);
    assert_int_equal(ev.n_recipients, 0);
    assert_null(ev.data);
}

static void rejects(const char *body, const struct ntf_limits *lim, enum ntf_reject code,
                    const char *needle)
{
    rejects_n(body, strlen(body), lim, code, needle);
}

/* base with path set to val (or removed) is rejected with code naming needle. */
static void mut_rejects(const char *base, const char *path, const char *val, enum ntf_reject code,
                        const char *needle)
{
    char *body = mut(base, path, val);
    rejects(body, NULL, code, needle);
    free(body);
}

static void mut_accepts(const char *base, const char *path, const char *val,
                        const struct ntf_limits *lim, struct ntf_event *ev)
{
    char *body = mut(base, path, val);
    parse_ok(body, lim, ev);
    free(body);
}

/* ---- accepted envelopes -------------------------------------------------- */

static void test_task_assigned_fields(void **state)
{
    (void)state;
    struct ntf_event ev;
    parse_ok(TASK, NULL, &ev);
    assert_string_equal(ev.id, LOWER_ID);
    assert_int_equal(ev.type, NTF_TASK_ASSIGNED);
    assert_int_equal(ev.version, 1);
    assert_int_equal(ev.occurred_at_ms, OCCURRED_MS);
    assert_string_equal(ev.source, "tasks-api");
    assert_int_equal(ev.deliver_at_ms, 0);
    assert_null(ev.dedup_key);
    assert_int_equal(ev.priority, NTF_PRIO_NORMAL);
    assert_int_equal(ev.channels, 0);
    assert_null(ev.reminder_id);

    assert_int_equal(ev.n_recipients, 4);
    const struct ntf_recipient *r = ev.recipients;
    assert_string_equal(r[0].user_id, "u-1");
    assert_string_equal(r[0].name, "Анна");
    assert_string_equal(r[0].locale, "ru");
    assert_string_equal(r[0].time_zone, "Europe/Moscow");
    assert_false(r[0].has_telegram);
    assert_null(r[0].email);

    assert_null(r[1].user_id);
    assert_true(r[1].has_telegram);
    assert_int_equal(r[1].telegram_user_id, 12345);
    assert_int_equal(r[1].chat_id, 12345); /* defaults to the user's private chat */
    assert_null(r[1].name);
    assert_null(r[1].locale);
    assert_null(r[1].time_zone);

    assert_true(r[2].has_telegram);
    assert_int_equal(r[2].telegram_user_id, 777);
    assert_int_equal(r[2].chat_id, INT64_C(-1001234567890));

    assert_null(r[3].user_id);
    assert_false(r[3].has_telegram);
    assert_string_equal(r[3].email, "bob@example.com");

    /* data is the envelope's data object */
    assert_non_null(ev.data);
    json_object *task = NULL, *title = NULL;
    assert_true(json_object_object_get_ex(ev.data, "task", &task));
    assert_true(json_object_object_get_ex(task, "title", &title));
    assert_string_equal(json_object_get_string(title), "Write tests");

    ntf_event_free(&ev);
    assert_null(ev.root);
    assert_null(ev.recipients);
    assert_int_equal(ev.n_recipients, 0);
    ntf_event_free(&ev); /* twice is harmless */
    ntf_event_free(NULL);
}

static void test_optional_fields(void **state)
{
    (void)state;
    struct ntf_event ev;
    char *a = mut(TASK, "deliver_at", "\"2026-11-21T12:30:00.250+01:00\"");
    char *b = mut(a, "dedup_key", "\"task:T-1:assigned\"");
    char *c = mut(b, "priority", "\"critical\"");
    char *d = mut(c, "channels", "[\"websocket\",\"telegram\"]");
    char *e = mut(d, "type", "\"task.completed\"");
    char *f = mut(e, "data.task.id", "42");
    parse_ok(f, NULL, &ev);
    assert_int_equal(ev.type, NTF_TASK_COMPLETED);
    assert_int_equal(ev.deliver_at_ms, ms_of("2026-11-21T11:30:00.250Z"));
    assert_int_equal(ev.deliver_at_ms, INT64_C(1795260600250));
    assert_string_equal(ev.dedup_key, "task:T-1:assigned");
    assert_int_equal(ev.priority, NTF_PRIO_CRITICAL);
    assert_int_equal(ev.channels, NTF_CH_BIT(NTF_CH_WEBSOCKET) | NTF_CH_BIT(NTF_CH_TELEGRAM));
    ntf_event_free(&ev);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(f);

    static const char *const prios[] = {"\"low\"", "\"normal\"", "\"high\"", "\"critical\""};
    for (size_t i = 0; i < VN_ARRAY_LEN(prios); i++) {
        mut_accepts(TASK, "priority", prios[i], NULL, &ev);
        assert_int_equal(ev.priority, (enum ntf_priority)i);
        ntf_event_free(&ev);
    }
    mut_accepts(TASK, "channels", "[\"email\"]", NULL, &ev);
    assert_int_equal(ev.channels, NTF_CH_BIT(NTF_CH_EMAIL));
    ntf_event_free(&ev);
    mut_accepts(TASK, "channels", "[\"telegram\",\"email\",\"websocket\"]", NULL, &ev);
    assert_int_equal(ev.channels, 7u);
    ntf_event_free(&ev);

    /* null means absent for optional fields */
    mut_accepts(TASK, "dedup_key", "null", NULL, &ev);
    assert_null(ev.dedup_key);
    ntf_event_free(&ev);
    /* task.due with no due_at, and an unknown extra field, are fine */
    char *g = mut(TASK, "type", "\"task.due\"");
    mut_accepts(g, "data.task.due_at", NULL, NULL, &ev);
    assert_int_equal(ev.type, NTF_TASK_DUE);
    ntf_event_free(&ev);
    mut_accepts(g, "x_extension", "{\"a\":1}", NULL, &ev);
    ntf_event_free(&ev);
    free(g);
}

static void test_reminder_types(void **state)
{
    (void)state;
    struct ntf_event ev;
    struct ntf_limits internal = {0, 0, 1};

    /* remind_at becomes deliver_at; the reminder id defaults to the envelope id */
    parse_ok(SCHEDULED, NULL, &ev);
    assert_int_equal(ev.type, NTF_REMINDER_SCHEDULED);
    assert_int_equal(ev.deliver_at_ms, ms_of("2026-11-22T07:00:00Z"));
    assert_non_null(ev.reminder_id);
    assert_string_equal(ev.reminder_id, LOWER_ID);
    ntf_event_free(&ev);

    /* an upper-case envelope id: the default reminder id is the normalised id */
    mut_accepts(SCHEDULED, "id", "\"" UPPER_ID "\"", NULL, &ev);
    assert_string_equal(ev.reminder_id, LOWER_ID);
    ntf_event_free(&ev);

    /* data.reminder.id wins */
    mut_accepts(SCHEDULED, "data.reminder.id", "\"rem-42\"", NULL, &ev);
    assert_string_equal(ev.reminder_id, "rem-42");
    ntf_event_free(&ev);

    /* deliver_at alone is enough; given both, deliver_at is when */
    char *a = mut(SCHEDULED, "data.reminder.remind_at", NULL);
    mut_accepts(a, "deliver_at", "\"2026-12-01T09:00:00Z\"", NULL, &ev);
    assert_int_equal(ev.deliver_at_ms, ms_of("2026-12-01T09:00:00Z"));
    ntf_event_free(&ev);
    free(a);
    mut_accepts(SCHEDULED, "deliver_at", "\"2026-12-01T09:00:00Z\"", NULL, &ev);
    assert_int_equal(ev.deliver_at_ms, ms_of("2026-12-01T09:00:00Z"));
    ntf_event_free(&ev);

    /* reminder.cancelled: recipients may be absent or empty */
    parse_ok(CANCELLED, NULL, &ev);
    assert_int_equal(ev.type, NTF_REMINDER_CANCELLED);
    assert_string_equal(ev.reminder_id, "rem-42");
    assert_int_equal(ev.n_recipients, 0);
    assert_null(ev.recipients);
    ntf_event_free(&ev);
    mut_accepts(CANCELLED, "recipients", "[]", NULL, &ev);
    assert_int_equal(ev.n_recipients, 0);
    ntf_event_free(&ev);
    mut_accepts(CANCELLED, "recipients", "[{\"user_id\":\"u-1\"}]", NULL, &ev);
    assert_int_equal(ev.n_recipients, 1);
    ntf_event_free(&ev);

    /* the internal type only with allow_internal */
    char *r = mut(SCHEDULED, "type", "\"reminder.fired\"");
    parse_ok(r, &internal, &ev);
    assert_int_equal(ev.type, NTF_REMINDER);
    assert_string_equal(ev.reminder_id, LOWER_ID);
    /* a firing has no deliver_at of its own: it is due now */
    assert_int_equal(ev.deliver_at_ms, 0);
    ntf_event_free(&ev);
    rejects(r, NULL, NTF_R_UNKNOWN_TYPE, "\"reminder.fired\"");
    free(r);

    parse_ok(NOTIFICATION, NULL, &ev);
    assert_int_equal(ev.type, NTF_NOTIFICATION_REQUESTED);
    assert_null(ev.reminder_id);
    assert_int_equal(ev.n_recipients, 1);
    assert_string_equal(ev.recipients[0].email, "a@b.c");
    ntf_event_free(&ev);
}

/* preferences.update_requested: the bot's /settings, one change at least */
static void test_preferences_update(void **state)
{
    (void)state;
    struct ntf_event ev;
    parse_ok(PREFS, NULL, &ev);
    assert_int_equal(ev.type, NTF_PREFERENCES_UPDATE);
    assert_string_equal(ntf_type_name(ev.type), "preferences.update_requested");
    assert_int_equal(ev.recipients[0].telegram_user_id, 7);
    ntf_event_free(&ev);
    char *q = mut(PREFS, "data", "{\"quiet_hours\":{\"from\":\"22:00\",\"to\":\"7:30\"}}");
    parse_ok(q, NULL, &ev);
    ntf_event_free(&ev);
    free(q);
    q = mut(PREFS, "data", "{\"quiet_hours\":null}");
    parse_ok(q, NULL, &ev); /* null turns quiet hours off: a change */
    ntf_event_free(&ev);
    free(q);
    q = mut(PREFS, "data", "{\"toggle_channel\":\"email\"}");
    parse_ok(q, NULL, &ev);
    ntf_event_free(&ev);
    free(q);

    mut_rejects(PREFS, "data", "{}", NTF_R_MISSING_FIELD, "locale, time_zone, quiet_hours");
    mut_rejects(PREFS, "data", "{\"toggle_channel\":\"sms\"}", NTF_R_INVALID_FIELD,
                "data.toggle_channel");
    mut_rejects(PREFS, "data", "{\"quiet_hours\":\"22-7\"}", NTF_R_INVALID_FIELD,
                "data.quiet_hours");
    mut_rejects(PREFS, "data", "{\"quiet_hours\":{\"from\":\"25:00\",\"to\":\"07:00\"}}",
                NTF_R_INVALID_FIELD, "data.quiet_hours.from");
    mut_rejects(PREFS, "data", "{\"quiet_hours\":{\"from\":\"22:00\"}}", NTF_R_MISSING_FIELD,
                "data.quiet_hours.to");
    mut_rejects(PREFS, "data", "{\"locale\":7}", NTF_R_INVALID_FIELD, "data.locale");
    mut_rejects(PREFS, "recipients", "[{\"email\":\"a@b.c\"}]", NTF_R_INVALID_FIELD,
                "recipients[0]");
    mut_rejects(PREFS, "recipients", "[{\"user_id\":\"a\"},{\"user_id\":\"b\"}]",
                NTF_R_INVALID_FIELD, "exactly one recipient");
}

static void test_bytes_and_limits(void **state)
{
    (void)state;
    struct ntf_event ev;
    struct ntf_reject_info why;
    size_t len = strlen(TASK);

    /* the body need not be NUL-terminated: bytes after len are not read as JSON */
    char *buf = xasprintf("%s GARBAGE", TASK);
    assert_int_equal(ntf_event_parse(buf, len, NULL, &ev, &why), 0);
    assert_string_equal(ev.id, LOWER_ID);
    ntf_event_free(&ev);
    free(buf);

    /* whitespace around the value is JSON */
    buf = xasprintf("\n\t %s \r\n", TASK);
    parse_ok(buf, NULL, &ev);
    ntf_event_free(&ev);
    free(buf);

    /* exactly max_bytes is fine; one more is too large */
    struct ntf_limits lim = {len, 0, 0};
    parse_ok(TASK, &lim, &ev);
    ntf_event_free(&ev);
    lim.max_bytes = len - 1;
    rejects(TASK, &lim, NTF_R_TOO_LARGE, "over the limit");

    /* exactly max_recipients is fine; one more is not (TASK has four) */
    lim.max_bytes = 0;
    lim.max_recipients = 4;
    parse_ok(TASK, &lim, &ev);
    ntf_event_free(&ev);
    lim.max_recipients = 3;
    rejects(TASK, &lim, NTF_R_INVALID_FIELD, "recipients");
}

/* ---- every rejection ------------------------------------------------------ */

static void test_too_large(void **state)
{
    (void)state;
    struct ntf_limits lim = {16, 0, 0};
    /* checked before parsing: garbage over the limit is too large, not invalid */
    rejects("this is not JSON at all", &lim, NTF_R_TOO_LARGE, "23 bytes");
    rejects("this is not JSON at all", &lim, NTF_R_TOO_LARGE, "16");
    /* the default limit is 256 KiB */
    size_t big = 256 * 1024 + 1;
    char *body = xmalloc(big);
    memset(body, ' ', big);
    rejects_n(body, big, NULL, NTF_R_TOO_LARGE, "262145 bytes");
    free(body);
}

static void test_invalid_json(void **state)
{
    (void)state;
    rejects("", NULL, NTF_R_INVALID_JSON, "empty");
    rejects("{", NULL, NTF_R_INVALID_JSON, "not JSON");
    rejects("{\"id\":", NULL, NTF_R_INVALID_JSON, "not JSON");
    rejects("{\"a\":1,}", NULL, NTF_R_INVALID_JSON, "not JSON"); /* strict: no trailing comma */
    /* data after the value: the message says where */
    rejects("{} x", NULL, NTF_R_INVALID_JSON, "at byte 3");
    rejects("{}{}", NULL, NTF_R_INVALID_JSON, "at byte 2");
    rejects("null x", NULL, NTF_R_INVALID_JSON, "at byte 5");
    rejects("nope", NULL, NTF_R_INVALID_JSON, "not JSON");
    rejects("   ", NULL, NTF_R_INVALID_JSON, "not JSON");
    /* invalid UTF-8 inside a string, and a stray byte */
    rejects("{\"source\":\"\xff\xfe\"}", NULL, NTF_R_INVALID_JSON, "not JSON");
    rejects("{\"source\":\"\xc3\x28\"}", NULL, NTF_R_INVALID_JSON, "not JSON");
    rejects("\xef\xbb", NULL, NTF_R_INVALID_JSON, "not JSON");
    /* trailing garbage after a complete envelope */
    char *body = xasprintf("%s,", TASK);
    char *at = xasprintf("at byte %zu", strlen(TASK));
    rejects(body, NULL, NTF_R_INVALID_JSON, at);
    free(at);
    free(body);
    /* an embedded NUL inside len is not the end of the body */
    char nul[] = "{}\0{}";
    rejects_n(nul, sizeof(nul) - 1, NULL, NTF_R_INVALID_JSON, "not JSON");
}

static void test_not_object(void **state)
{
    (void)state;
    rejects("[]", NULL, NTF_R_NOT_OBJECT, "array");
    rejects("[{\"id\":1}]", NULL, NTF_R_NOT_OBJECT, "array");
    rejects("\"task.assigned\"", NULL, NTF_R_NOT_OBJECT, "string");
    rejects("42 ", NULL, NTF_R_NOT_OBJECT, "int");
    /* top-level scalars are JSON too, not syntax errors (they end at the end of input) */
    rejects("42", NULL, NTF_R_NOT_OBJECT, "int");
    rejects("true", NULL, NTF_R_NOT_OBJECT, "boolean");
    rejects("null", NULL, NTF_R_NOT_OBJECT, "null");
    rejects("null ", NULL, NTF_R_NOT_OBJECT, "null");
}

static void test_missing_field(void **state)
{
    (void)state;
    enum ntf_reject M = NTF_R_MISSING_FIELD;
    rejects("{}", NULL, M, "type");
    static const char *const required[] = {"type",   "version",    "id",  "occurred_at",
                                           "source", "recipients", "data"};
    for (size_t i = 0; i < VN_ARRAY_LEN(required); i++) {
        mut_rejects(TASK, required[i], NULL, M, required[i]);
        mut_rejects(TASK, required[i], "null", M, required[i]);
    }
    mut_rejects(TASK, "data.task", NULL, M, "data.task");
    mut_rejects(TASK, "data.task.id", NULL, M, "data.task.id");
    mut_rejects(TASK, "data.task.title", NULL, M, "data.task.title");
    mut_rejects(SCHEDULED, "data.reminder", NULL, M, "data.reminder");
    mut_rejects(SCHEDULED, "data.reminder.text", NULL, M, "data.reminder.text");
    mut_rejects(SCHEDULED, "data.reminder.remind_at", NULL, M, "deliver_at");
    mut_rejects(SCHEDULED, "data.reminder.remind_at", NULL, M, "data.reminder.remind_at");
    mut_rejects(CANCELLED, "data.reminder_id", NULL, M, "data.reminder_id");
    mut_rejects(NOTIFICATION, "data.title", NULL, M, "data.title");
    /* a recipient needs an address; chat_id needs telegram_user_id */
    mut_rejects(TASK, "recipients[2]", "{\"name\":\"Nobody\"}", M, "recipients[2]");
    mut_rejects(TASK, "recipients[3]", "{\"chat_id\":5}", M, "recipients[3].telegram_user_id");
    /* recipients are required for all types but reminder.cancelled */
    mut_rejects(SCHEDULED, "recipients", NULL, M, "recipients");
    mut_rejects(NOTIFICATION, "recipients", NULL, M, "recipients");
}

static void test_invalid_field(void **state)
{
    (void)state;
    enum ntf_reject I = NTF_R_INVALID_FIELD;
    char *s201 = xmalloc(204);
    s201[0] = '"';
    memset(s201 + 1, 'a', 201);
    s201[202] = '"';
    s201[203] = '\0';

    mut_rejects(TASK, "type", "7", I, "type");
    mut_rejects(TASK, "version", "\"1\"", I, "version");
    mut_rejects(TASK, "version", "1.0", I, "version");
    mut_rejects(TASK, "id", "\"not-a-uuid\"", I, "id");
    mut_rejects(TASK, "id", "\"0b9c3f6e-1d2a-4c5b-8e7f-123456789abg\"", I, "id:");
    mut_rejects(TASK, "id", "\"0b9c3f6e1d2a4c5b8e7f123456789abc\"", I, "id:");
    mut_rejects(TASK, "id", "\"{0b9c3f6e-1d2a-4c5b-8e7f-123456789abc}\"", I, "id:");
    mut_rejects(TASK, "id", "\"0b9c3f6e-1d2a-4c5b-8e7f-123456789abc \"", I, "id:");
    mut_rejects(TASK, "id", "12345", I, "id");
    mut_rejects(TASK, "occurred_at", "\"yesterday\"", I, "occurred_at");
    mut_rejects(TASK, "occurred_at", "\"2026-11-21T09:00:00\"", I, "occurred_at");
    mut_rejects(TASK, "occurred_at", "1795240800", I, "occurred_at");
    mut_rejects(TASK, "source", "\"\"", I, "source");
    mut_rejects(TASK, "source", s201, I, "source");
    mut_rejects(TASK, "source", "\"a\\u0000b\"", I, "source");
    mut_rejects(TASK, "deliver_at", "\"2026-02-30T10:00:00Z\"", I, "deliver_at");
    mut_rejects(TASK, "dedup_key", "\"\"", I, "dedup_key");
    mut_rejects(TASK, "dedup_key", s201, I, "dedup_key");
    mut_rejects(TASK, "priority", "\"urgent\"", I, "priority");
    mut_rejects(TASK, "priority", "\"HIGH\"", I, "priority");
    mut_rejects(TASK, "priority", "2", I, "priority");
    mut_rejects(TASK, "channels", "[]", I, "channels");
    mut_rejects(TASK, "channels", "\"telegram\"", I, "channels");
    mut_rejects(TASK, "channels", "[\"telegram\",\"sms\"]", I, "channels[1]");
    mut_rejects(TASK, "channels", "[\"email\",1]", I, "channels[1]");
    mut_rejects(TASK, "channels", "[\"email\",\"telegram\",\"email\"]", I, "channels[2]");
    mut_rejects(TASK, "recipients", "{\"user_id\":\"u-1\"}", I, "recipients");
    mut_rejects(TASK, "recipients", "[]", I, "recipients");
    mut_rejects(SCHEDULED, "recipients", "[]", I, "recipients");
    mut_rejects(TASK, "recipients[1]", "\"u-1\"", I, "recipients[1]");
    mut_rejects(TASK, "recipients[1].email", "\"nope\"", I, "recipients[1].email");
    mut_rejects(TASK, "recipients[3].email", "\"a@b@c\"", I, "recipients[3].email");
    mut_rejects(TASK, "recipients[3].email", "\"a b@c.d\"", I, "recipients[3].email");
    mut_rejects(TASK, "recipients[3].email", "\"@c.d\"", I, "recipients[3].email");
    mut_rejects(TASK, "recipients[3].email", "42", I, "recipients[3].email");
    mut_rejects(TASK, "recipients[0].user_id", "\"-u\"", I, "recipients[0].user_id");
    mut_rejects(TASK, "recipients[0].user_id", "\"a b\"", I, "recipients[0].user_id");
    mut_rejects(TASK, "recipients[0].user_id", "7", I, "recipients[0].user_id");
    mut_rejects(TASK, "recipients[0].name", "\"\"", I, "recipients[0].name");
    mut_rejects(TASK, "recipients[0].locale", "\"r\"", I, "recipients[0].locale");
    mut_rejects(TASK, "recipients[0].time_zone", "[]", I, "recipients[0].time_zone");
    mut_rejects(TASK, "recipients[1].telegram_user_id", "\"12345\"", I,
                "recipients[1].telegram_user_id");
    mut_rejects(TASK, "recipients[1].telegram_user_id", "1.5", I, "recipients[1].telegram_user_id");
    mut_rejects(TASK, "recipients[1].telegram_user_id", "0", I, "recipients[1].telegram_user_id");
    mut_rejects(TASK, "recipients[1].telegram_user_id", "-5", I, "recipients[1].telegram_user_id");
    mut_rejects(TASK, "recipients[2].chat_id", "\"-100\"", I, "recipients[2].chat_id");
    mut_rejects(TASK, "data", "[]", I, "data");
    mut_rejects(TASK, "data", "\"x\"", I, "data");
    mut_rejects(TASK, "data.task", "\"T-1\"", I, "data.task");
    mut_rejects(TASK, "data.task.id", "1.5", I, "data.task.id");
    mut_rejects(TASK, "data.task.id", "true", I, "data.task.id");
    mut_rejects(TASK, "data.task.id", "{}", I, "data.task.id");
    mut_rejects(TASK, "data.task.title", "\"\"", I, "data.task.title");
    mut_rejects(TASK, "data.task.title", "5", I, "data.task.title");
    mut_rejects(TASK, "data.task.due_at", "\"tomorrow\"", I, "data.task.due_at");
    mut_rejects(SCHEDULED, "data.reminder", "[]", I, "data.reminder");
    mut_rejects(SCHEDULED, "data.reminder.text", "\"\"", I, "data.reminder.text");
    mut_rejects(SCHEDULED, "data.reminder.remind_at", "\"2026-11-22 25:00\"", I,
                "data.reminder.remind_at");
    mut_rejects(SCHEDULED, "data.reminder.id", "17", I, "data.reminder.id");
    mut_rejects(CANCELLED, "data.reminder_id", "\"\"", I, "data.reminder_id");
    mut_rejects(CANCELLED, "data.reminder_id", "42", I, "data.reminder_id");
    mut_rejects(CANCELLED, "recipients", "{}", I, "recipients");
    mut_rejects(NOTIFICATION, "data.title", "\"\"", I, "data.title");
    mut_rejects(NOTIFICATION, "data.url", "\"\"", I, "data.url");
    free(s201);
}

static void test_unknown_type(void **state)
{
    (void)state;
    enum ntf_reject U = NTF_R_UNKNOWN_TYPE;
    mut_rejects(TASK, "type", "\"task.deleted\"", U, "\"task.deleted\"");
    mut_rejects(TASK, "type", "\"Task.Assigned\"", U, "Task.Assigned");
    mut_rejects(TASK, "type", "\"\"", NTF_R_INVALID_FIELD, "type");
    /* "reminder.fired" is internal */
    mut_rejects(TASK, "type", "\"reminder.fired\"", U, "\"reminder.fired\"");
    /* the type is checked first: before the version and everything else */
    char *a = mut(TASK, "type", "\"task.deleted\"");
    char *b = mut(a, "version", "2");
    rejects(b, NULL, U, "task.deleted");
    free(a);
    free(b);
    rejects("{\"type\":\"sms.sent\"}", NULL, U, "sms.sent");
    rejects("{\"type\":\"sms.sent\",\"id\":\"x\",\"version\":\"v\"}", NULL, U, "sms.sent");
}

static void test_unsupported_version(void **state)
{
    (void)state;
    enum ntf_reject V = NTF_R_UNSUPPORTED_VERSION;
    mut_rejects(TASK, "version", "2", V, "version 2");
    mut_rejects(TASK, "version", "0", V, "version 0");
    mut_rejects(TASK, "version", "-1", V, "version -1");
    mut_rejects(CANCELLED, "version", "99", V, "reminder.cancelled version 99");
    /* before the other fields: a v2 envelope may look different */
    rejects("{\"type\":\"task.due\",\"version\":2}", NULL, V, "version 2");
}

/* ---- names ---------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    for (int t = 0; t < NTF_TYPE_COUNT; t++)
        assert_int_equal(ntf_type_parse(ntf_type_name((enum ntf_type)t)), t);
    assert_string_equal(ntf_type_name(NTF_REMINDER), "reminder.fired");
    assert_string_equal(ntf_template_name(NTF_REMINDER), "reminder");
    assert_string_equal(ntf_template_name(NTF_TASK_DUE), "task.due");
    assert_string_equal(ntf_type_name(NTF_NOTIFICATION_REQUESTED), "notification.requested");
    assert_int_equal(ntf_type_parse("task"), -1);
    assert_int_equal(ntf_type_parse(NULL), -1);
    for (int c = 0; c < NTF_CH_COUNT; c++)
        assert_int_equal(ntf_channel_parse(ntf_channel_name((enum ntf_channel)c)), c);
    assert_int_equal(ntf_channel_parse("sms"), -1);
    assert_string_equal(ntf_priority_name(NTF_PRIO_CRITICAL), "critical");
    assert_string_equal(ntf_reject_code(NTF_R_TOO_LARGE), "too_large");
    assert_string_equal(ntf_reject_code(NTF_R_INVALID_JSON), "invalid_json");
    assert_string_equal(ntf_reject_code(NTF_R_NOT_OBJECT), "not_object");
    assert_string_equal(ntf_reject_code(NTF_R_MISSING_FIELD), "missing_field");
    assert_string_equal(ntf_reject_code(NTF_R_INVALID_FIELD), "invalid_field");
    assert_string_equal(ntf_reject_code(NTF_R_UNKNOWN_TYPE), "unknown_type");
    assert_string_equal(ntf_reject_code(NTF_R_UNSUPPORTED_VERSION), "unsupported_version");
    assert_string_equal(ntf_reject_code(NTF_R_DELIVERY_FAILED), "delivery_failed");
}

/* ---- RFC 3339 ------------------------------------------------------------- */

static void test_rfc3339(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01T00:00:01.5Z", 1500},
        {"2026-11-21T09:00:00+03:00", INT64_C(1795240800000)},
        {"2026-11-21T06:00:00Z", INT64_C(1795240800000)},
        {"2026-11-21T06:00:00+00:00", INT64_C(1795240800000)},
        {"2026-11-21T06:00:00-00:00", INT64_C(1795240800000)},
        {"2026-11-21t06:00:00z", INT64_C(1795240800000)},
        {"2026-11-21T01:00:00-05:00", INT64_C(1795240800000)},
        {"2024-02-29T23:59:59.999-05:30", INT64_C(1709270999999)},
        {"2024-02-29T23:59:59.9999999+00:00", INT64_C(1709251199999)}, /* truncated to ms */
        {"2024-02-29T23:59:59.12Z", INT64_C(1709251199120)},
        {"2000-02-29T00:00:00Z", INT64_C(951782400000)}, /* 2000 is a leap year */
        {"2026-12-31T23:59:59Z", INT64_C(1798761599000)},
        {"2026-03-08T11:00:00Z", INT64_C(1772967600000)},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(good); i++) {
        int64_t ms = -7;
        if (ntf_parse_rfc3339(good[i].s, &ms) != 0)
            fail_msg("\"%s\" rejected", good[i].s);
        if (ms != good[i].ms)
            fail_msg("\"%s\": %lld, expected %lld", good[i].s, (long long)ms,
                     (long long)good[i].ms);
    }
    static const char *const bad[] = {
        "",
        "2026-11-21",
        "2026-11-21T09:00:00",        /* no offset */
        "2026-11-21T09:00Z",          /* no seconds */
        "2026-11-21T09:00:00+0300",   /* offset without colon */
        "2026-11-21T09:00:00+03",     /* short offset */
        "2026-11-21T09:00:00+24:00",  /* offset out of range */
        "2026-11-21T09:00:00+03:60",  /* offset minutes */
        "2026-11-21T09:00:00.Z",      /* empty fraction */
        "2026-11-21T09:00:00ZZ",      /* trailing junk */
        "2026-11-21T09:00:00Z ",      /* trailing space */
        "2026-11-21T24:00:00Z",       /* hour 24 */
        "2026-11-21T09:60:00Z",       /* minute 60 */
        "2026-11-21T09:00:61Z",       /* second 61 */
        "2026-02-30T00:00:00Z",       /* Feb 30 */
        "2026-02-29T00:00:00Z",       /* 2026 is not a leap year */
        "1900-02-29T00:00:00Z",       /* nor 1900 */
        "2026-04-31T00:00:00Z",       /* April has 30 */
        "2026-13-01T00:00:00Z",       /* month 13 */
        "2026-00-10T00:00:00Z",       /* month 0 */
        "2026-11-00T00:00:00Z",       /* day 0 */
        "2026/11/21T09:00:00Z",       /* separators */
        "2026-11-21X09:00:00Z",       /* separator */
        "26-11-21T09:00:00Z",         /* two-digit year */
        "2026-1-21T09:00:00Z",        /* one-digit month */
        "yesterday at nine o'clock!", /* words */
        "2026-11-21T09:00:00+03:00x", /* junk after the offset */
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(bad); i++) {
        int64_t ms = 0;
        if (ntf_parse_rfc3339(bad[i], &ms) == 0)
            fail_msg("\"%s\" accepted as %lld", bad[i], (long long)ms);
    }
    int64_t ms;
    assert_int_equal(ntf_parse_rfc3339(NULL, &ms), VN_EINVAL);
    /* a leap second reads as the last second of its minute */
    assert_int_equal(ntf_parse_rfc3339("2016-12-31T23:59:60Z", &ms), 0);
    assert_int_equal(ms, ms_of("2016-12-31T23:59:59Z"));
}

static void test_rfc3339_format(void **state)
{
    (void)state;
    char buf[40];
    ntf_format_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    ntf_format_rfc3339(INT64_C(1795240800000), buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-21T06:00:00.000Z");
    ntf_format_rfc3339(INT64_C(1709270999999), buf, sizeof(buf));
    assert_string_equal(buf, "2024-03-01T05:29:59.999Z");
    ntf_format_rfc3339(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    /* a short buffer is truncated, still terminated */
    ntf_format_rfc3339(0, buf, 5);
    assert_string_equal(buf, "1970");

    /* round trip over a spread of instants, ms precision */
    for (int64_t t = 0; t < INT64_C(4102444800000); t += INT64_C(86399999) * 37 + 123) {
        int64_t back = -1;
        ntf_format_rfc3339(t, buf, sizeof(buf));
        assert_int_equal(strlen(buf), 24);
        assert_int_equal(ntf_parse_rfc3339(buf, &back), 0);
        if (back != t)
            fail_msg("%lld -> %s -> %lld", (long long)t, buf, (long long)back);
    }
    /* and text with an offset comes back in UTC */
    ntf_format_rfc3339(ms_of("2026-03-29T02:30:00.5+02:00"), buf, sizeof(buf));
    assert_string_equal(buf, "2026-03-29T00:30:00.500Z");
}

/* ---- UUIDs ------------------------------------------------------------- */

static void test_uuid_valid(void **state)
{
    (void)state;
    assert_true(ntf_uuid_valid(LOWER_ID));
    assert_true(ntf_uuid_valid(UPPER_ID));
    assert_false(ntf_uuid_valid(NULL));
    assert_false(ntf_uuid_valid(""));
    assert_false(ntf_uuid_valid("0b9c3f6e-1d2a-4c5b-8e7f-123456789ab"));
    assert_false(ntf_uuid_valid("0b9c3f6e-1d2a-4c5b-8e7f-123456789abcd"));
    assert_false(ntf_uuid_valid("0b9c3f6e_1d2a-4c5b-8e7f-123456789abc"));
    assert_false(ntf_uuid_valid("0b9c3f6e-1d2a-4c5b-8e7f1-23456789abc"));
    assert_false(ntf_uuid_valid("0b9c3f6e-1d2a-4c5b-8e7f-12345678 abc"));
}

static void test_uuid_from_name(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    ntf_uuid_from_name("reminder:rem-42", a);
    ntf_uuid_from_name("reminder:rem-42", b);
    ntf_uuid_from_name("reminder:rem-43", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    /* known answers (Python: uuid.uuid5(UUID("6d1c4b3e-8a0f-4f5e-9b2a-5c7d3e1f0a94"), name)) */
    assert_string_equal(a, "4fedcb16-d4b9-5fde-a82e-aff279f61900");
    ntf_uuid_from_name("reminder:" LOWER_ID, a);
    assert_string_equal(a, "3f58d3e4-9b73-5625-a203-7d3073e12bf3");
    ntf_uuid_from_name("", a);
    assert_string_equal(a, "d4207ccf-69cc-5b7b-a59a-fca43ae30e96");
    /* version 5, RFC 4122 variant, lowercase */
    for (int i = 0; i < 50; i++) {
        char name[32];
        snprintf(name, sizeof(name), "n%d", i);
        ntf_uuid_from_name(name, a);
        assert_true(ntf_uuid_valid(a));
        assert_int_equal(a[14], '5');
        assert_non_null(strchr("89ab", a[19]));
        for (int k = 0; k < 36; k++)
            assert_false(isupper((unsigned char)a[k]));
    }
}

static void test_uuid_random(void **state)
{
    (void)state;
    char seen[64][37];
    for (int i = 0; i < 64; i++) {
        ntf_uuid_random(seen[i]);
        assert_int_equal(strlen(seen[i]), 36);
        assert_true(ntf_uuid_valid(seen[i]));
        assert_int_equal(seen[i][14], '4');
        assert_non_null(strchr("89ab", seen[i][19]));
        for (int k = 0; k < 36; k++)
            assert_false(isupper((unsigned char)seen[i][k]));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }
}

/* ---- a stored reminder firing ------------------------------------------ */

static json_object *reminder_obj(const struct ntf_event *ev)
{
    json_object *rem = NULL;
    assert_true(json_object_object_get_ex(ev->data, "reminder", &rem));
    return rem;
}

static const char *str_at(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        fail_msg("no string %s", k);
    return json_object_get_string(v);
}

static void test_reminder_envelope(void **state)
{
    (void)state;
    struct ntf_limits internal = {0, 0, 1};
    struct ntf_event ev;
    char want[37];
    int64_t fire = ms_of("2026-11-22T07:00:00Z");

    /* with data.reminder.id: the id is derived from it */
    char *sched = mut(SCHEDULED, "data.reminder.id", "\"rem-42\"");
    char *withdl = mut(sched, "deliver_at", "\"2026-11-22T07:00:00Z\"");
    char *withdk = mut(withdl, "dedup_key", "\"d-1\"");
    char *out = ntf_reminder_envelope(withdk, fire);
    assert_non_null(out);
    parse_ok(out, &internal, &ev);
    assert_int_equal(ev.type, NTF_REMINDER);
    ntf_uuid_from_name("reminder:rem-42", want);
    assert_string_equal(ev.id, want);
    assert_string_equal(ev.reminder_id, "rem-42");
    assert_int_equal(ev.deliver_at_ms, 0); /* no deliver_at: due now */
    assert_null(ev.dedup_key);
    assert_int_equal(ev.occurred_at_ms, ms_of("2026-11-21T09:00:00Z"));
    assert_string_equal(ev.source, "bot");
    assert_int_equal(ev.n_recipients, 1);
    assert_string_equal(ev.recipients[0].user_id, "u-1");
    json_object *rem = reminder_obj(&ev), *extra = NULL;
    assert_string_equal(str_at(rem, "text"), "Call mom");
    assert_string_equal(str_at(rem, "id"), "rem-42");
    /* remind_at given: kept as given */
    assert_string_equal(str_at(rem, "remind_at"), "2026-11-22T10:00:00+03:00");
    assert_string_equal(str_at(rem, "created_at"), "2026-11-21T09:00:00Z");
    /* the rest of data stays */
    assert_true(json_object_object_get_ex(ev.data, "extra", &extra));
    assert_string_equal(str_at(extra, "k"), "v");
    ntf_event_free(&ev);
    /* not accepted from outside */
    rejects(out, NULL, NTF_R_UNKNOWN_TYPE, "reminder");

    /* a second firing (later, e.g. after a restart) is the same event */
    char *again = ntf_reminder_envelope(withdk, fire + 60000);
    assert_non_null(again);
    parse_ok(again, &internal, &ev);
    assert_string_equal(ev.id, want);
    ntf_event_free(&ev);
    free(again);
    free(out);
    free(withdk);
    free(withdl);
    free(sched);

    /* without data.reminder.id and with deliver_at only: the id comes from the
       envelope id and remind_at is filled with the firing time */
    char *a = mut(SCHEDULED, "data.reminder.remind_at", NULL);
    char *b = mut(a, "deliver_at", "\"2026-11-22T07:00:00Z\"");
    out = ntf_reminder_envelope(b, fire + 1234);
    assert_non_null(out);
    parse_ok(out, &internal, &ev);
    ntf_uuid_from_name("reminder:" LOWER_ID, want);
    assert_string_equal(ev.id, want);
    assert_string_not_equal(ev.id, LOWER_ID);
    assert_string_equal(ev.reminder_id, LOWER_ID);
    rem = reminder_obj(&ev);
    assert_string_equal(str_at(rem, "id"), LOWER_ID);
    assert_string_equal(str_at(rem, "remind_at"), "2026-11-22T07:00:01.234Z");
    assert_string_equal(str_at(rem, "created_at"), "2026-11-21T09:00:00Z");
    ntf_event_free(&ev);
    free(out);
    free(b);

    /* the firing names the same reminder as the scheduled envelope did, even
       when the producer wrote the envelope id in upper case */
    struct ntf_event sev;
    char *up = mut(SCHEDULED, "id", "\"" UPPER_ID "\"");
    parse_ok(up, NULL, &sev);
    out = ntf_reminder_envelope(up, fire);
    assert_non_null(out);
    parse_ok(out, &internal, &ev);
    assert_string_equal(ev.reminder_id, sev.reminder_id);
    ntf_uuid_from_name("reminder:" LOWER_ID, want);
    assert_string_equal(ev.id, want);
    ntf_event_free(&ev);
    ntf_event_free(&sev);
    free(out);
    free(up);
    free(a);

    /* not a reminder.scheduled envelope */
    assert_null(ntf_reminder_envelope("not json", fire));
    assert_null(ntf_reminder_envelope("[]", fire));
    assert_null(ntf_reminder_envelope(TASK, fire));
    assert_null(ntf_reminder_envelope(CANCELLED, fire));
    char *c = mut(SCHEDULED, "data.reminder", "\"text\"");
    assert_null(ntf_reminder_envelope(c, fire));
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_assigned_fields),
        cmocka_unit_test(test_optional_fields),
        cmocka_unit_test(test_reminder_types),
        cmocka_unit_test(test_bytes_and_limits),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_missing_field),
        cmocka_unit_test(test_invalid_field),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_unsupported_version),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_rfc3339_format),
        cmocka_unit_test(test_uuid_valid),
        cmocka_unit_test(test_uuid_from_name),
        cmocka_unit_test(test_uuid_random),
        cmocka_unit_test(test_reminder_envelope),
        cmocka_unit_test(test_preferences_update),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
