/*
 * test_fsm_step.c - fsm/fsm_step.c, the pure step engine: every trigger kind
 * and action kind, guards, typed input and re-prompts, global and flow-wide
 * transitions, timeouts (scheduled, fired, stale), API starts, unmatched
 * input, callback answers, bounds, and determinism. Inputs are built with
 * tg_update_parse() from small JSON bodies; the flows are
 * tests/fixtures/flows/good/full.yaml and small inline ones.
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

#include "bot/tg_update.h"
#include "core/common.h"
#include "fsm/fsm.h"
#include "fsm/fsm_date.h"

/* Saturday 21 November 2026, 10:17:33.250 UTC (13:17:33 in Moscow) */
#define NOW 1795256253250LL

/* ---- building inputs ------------------------------------------------------------ */

static struct tg_update *parse(const char *json)
{
    struct tg_error err;
    struct tg_update *u = tg_update_parse(json, strlen(json), NULL, &err);
    if (u == NULL)
        fail_msg("bad test update (%s: %s): %s", err.path, err.msg, json);
    return u;
}

static const char *const FROM =
    "{\"id\":7,\"is_bot\":false,\"first_name\":\"Ann\",\"username\":\"ann\",\"language_code\":"
    "\"ru\"}";

/* A private text message; a leading "/word" becomes a bot_command entity. */
static struct tg_update *text_update(const char *text)
{
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_printf(&b,
                  "{\"update_id\":1000,\"message\":{\"message_id\":77,\"date\":1,\"chat\":{"
                  "\"id\":42,\"type\":\"private\"},\"from\":%s,\"text\":",
                  FROM);
    vn_buf_json_str(&b, text);
    if (text[0] == '/')
        vn_buf_printf(&b, ",\"entities\":[{\"type\":\"bot_command\",\"offset\":0,\"length\":%zu}]",
                      strcspn(text, " "));
    vn_buf_puts(&b, "}}");
    struct tg_update *u = parse(b.data);
    vn_buf_free(&b);
    return u;
}

static struct tg_update *callback_update(const char *data)
{
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_printf(&b,
                  "{\"update_id\":1001,\"callback_query\":{\"id\":\"cbq-1\",\"from\":%s,"
                  "\"chat_instance\":\"ci\",\"data\":",
                  FROM);
    vn_buf_json_str(&b, data);
    vn_buf_puts(&b, ",\"message\":{\"message_id\":55,\"date\":1,\"chat\":{\"id\":42,\"type\":"
                    "\"private\"}}}}");
    struct tg_update *u = parse(b.data);
    vn_buf_free(&b);
    return u;
}

static struct tg_update *contact_update(void)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"update_id\":1002,\"message\":{\"message_id\":78,\"date\":1,\"chat\":{\"id\":42,"
             "\"type\":\"private\"},\"from\":%s,\"contact\":{\"phone_number\":\"+79990001122\","
             "\"first_name\":\"Ann\",\"user_id\":7}}}",
             FROM);
    return parse(buf);
}

static struct tg_update *location_update(void)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"update_id\":1003,\"message\":{\"message_id\":79,\"date\":1,\"chat\":{\"id\":42,"
             "\"type\":\"private\"},\"from\":%s,\"location\":{\"latitude\":55.7558,"
             "\"longitude\":37.6173}}}",
             FROM);
    return parse(buf);
}

/* ---- a conversation under test ------------------------------------------------------ */

struct sess {
    struct fsm_set *set;
    struct fsm_tz *tz;
    struct fsm_ctx ctx;
    struct fsm_conv conv;
    enum fsm_outcome outcome;
    bool changed;
    char *fx;   /* effects of the last step, compact JSON */
    char *data; /* data after the last step */
};

static char *source_root(void)
{
    const char *env = getenv("VN_SOURCE_DIR");
    if (env != NULL && *env != '\0')
        return xstrdup(env);
    const char *me = __FILE__;
    const char *tail = strstr(me, "tests/unit/fsm/");
    if (tail == NULL || tail == me)
        return xstrdup(".");
    return xstrndup(me, (size_t)(tail - me));
}

static struct fsm_set *load_text(const char *yaml, const struct fsm_load_opts *opts)
{
    struct fsm_diag d;
    struct fsm_source src = {"test.yaml", yaml, strlen(yaml)};
    fsm_diag_init(&d);
    struct fsm_set *set = fsm_set_load_mem(&src, 1, opts, &d);
    if (set == NULL) {
        struct vn_buf b = VN_BUF_INIT;
        fsm_diag_format(&d, &b);
        fail_msg("test flows refused:\n%s", b.data);
    }
    fsm_diag_cleanup(&d);
    return set;
}

static struct fsm_set *load_full(void)
{
    char *root = source_root();
    char *path = xasprintf("%s/tests/fixtures/flows/good/full.yaml", root);
    const char *paths[] = {path};
    struct fsm_diag d;
    fsm_diag_init(&d);
    struct fsm_set *set = fsm_set_load_files(paths, 1, NULL, &d);
    if (set == NULL)
        fail_msg("full.yaml refused (%zu problems)", d.n);
    fsm_diag_cleanup(&d);
    free(path);
    free(root);
    return set;
}

static void sess_init(struct sess *s, struct fsm_set *set)
{
    char err[64];
    memset(s, 0, sizeof(*s));
    s->set = set;
    s->tz = fsm_tz_parse("MSK-3", err, sizeof(err));
    s->ctx.now_ms = NOW;
    s->ctx.chat_id = 42;
    s->ctx.user_id = 7;
    s->ctx.locale = "ru";
    s->ctx.tz = s->tz;
    s->ctx.bot_username = "VestnikBot";
}

static void sess_free(struct sess *s)
{
    fsm_set_free(s->set);
    fsm_tz_free(s->tz);
    fsm_conv_cleanup(&s->conv);
    free(s->fx);
    free(s->data);
}

static const char *json(struct json_object *j)
{
    return json_object_to_json_string_ext(j,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Run one step; the conversation moves on; returns the effects JSON. */
static const char *run(struct sess *s, const struct fsm_input *in)
{
    struct fsm_result r;
    int rc = fsm_step(s->set, &s->conv, in, &s->ctx, &r);
    if (rc != 0)
        fail_msg("fsm_step: %d (%s)", rc, r.reason);
    assert_non_null(r.effects);
    assert_true(json_object_is_type(r.effects, json_type_array));
    assert_non_null(r.next.data);
    assert_true((r.next.flow == NULL) == (r.next.state == NULL));
    free(s->fx);
    free(s->data);
    s->fx = xstrdup(json(r.effects));
    s->data = xstrdup(json(r.next.data));
    s->outcome = r.outcome;
    s->changed = r.changed;
    fsm_conv_cleanup(&s->conv);
    s->conv = r.next;
    memset(&r.next, 0, sizeof(r.next));
    fsm_result_cleanup(&r);
    return s->fx;
}

static const char *run_update(struct sess *s, struct tg_update *u)
{
    struct fsm_input in = {FSM_IN_UPDATE, u, NULL, NULL, 0, NULL};
    const char *fx = run(s, &in);
    tg_update_free(u);
    return fx;
}

static const char *say(struct sess *s, const char *text)
{
    return run_update(s, text_update(text));
}

static const char *press(struct sess *s, const char *data)
{
    return run_update(s, callback_update(data));
}

static const char *fire_timeout(struct sess *s, const char *flow, const char *state, int64_t at)
{
    struct fsm_input in = {FSM_IN_TIMEOUT, NULL, flow, state, at, NULL};
    return run(s, &in);
}

/* Put the conversation in flow/state with data (JSON text). */
static void place(struct sess *s, const char *flow, const char *state, const char *data)
{
    fsm_conv_cleanup(&s->conv);
    s->conv.flow = flow ? xstrdup(flow) : NULL;
    s->conv.state = state ? xstrdup(state) : NULL;
    s->conv.data = json_tokener_parse(data ? data : "{}");
    s->conv.entered_at = NOW - 1000;
}

#define WHERE(s, f, st)                                                                            \
    do {                                                                                           \
        if ((f) == NULL)                                                                           \
            assert_null((s)->conv.flow);                                                           \
        else                                                                                       \
            assert_string_equal((s)->conv.flow, (f));                                              \
        if ((st) == NULL)                                                                          \
            assert_null((s)->conv.state);                                                          \
        else                                                                                       \
            assert_string_equal((s)->conv.state, (st));                                            \
    } while (0)

/* ---- entering flows ----------------------------------------------------------------------- */

static void test_enter_by_command(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    assert_string_equal(say(&s, "/order"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.ask_count\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    assert_int_equal(s.outcome, FSM_OUT_ENTERED);
    assert_true(s.changed);
    WHERE(&s, "order", "ask_count");
    assert_int_equal(s.conv.entered_at, NOW);
    assert_int_equal(s.conv.timeout_at, 0);

    /* the second command of the flow, addressed to us by name, restarts it */
    assert_string_equal(say(&s, "/o@VestnikBot"),
                        "[{\"kind\":\"end_flow\",\"flow\":\"order\",\"reason\":\"restart\"},"
                        "{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.ask_count\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    assert_int_equal(s.outcome, FSM_OUT_ENTERED);
    /* ... but not when it is addressed to another bot */
    assert_string_equal(say(&s, "/order@OtherBot"), "[]");
    assert_int_equal(s.outcome, FSM_OUT_IGNORED);
    assert_false(s.changed);
    sess_free(&s);
}

static void test_entry_conditions(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    /* entry: arg == "vip" sets data and skips to ask_email */
    assert_string_equal(say(&s, "/order vip"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.ask_email\","
                        "\"locale\":\"ru\",\"vars\":{\"vip\":true,\"source\":\"vip\"}}]");
    WHERE(&s, "order", "ask_email");
    assert_string_equal(s.data, "{\"vip\":true,\"source\":\"vip\"}");
    /* any other argument: the start state, fresh data */
    say(&s, "/order regular");
    WHERE(&s, "order", "ask_count");
    assert_string_equal(s.data, "{}");
    sess_free(&s);
}

/* ---- typed input, re-prompts ------------------------------------------------------------------
 */

static void test_input_integer(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    place(&s, "order", "ask_count", NULL);

    assert_string_equal(say(&s, "0"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.bad_count\","
                        "\"locale\":\"ru\",\"vars\":{\"input\":\"0\",\"error\":\"too_small\"}}]");
    assert_int_equal(s.outcome, FSM_OUT_REPROMPT);
    WHERE(&s, "order", "ask_count");
    assert_false(s.changed);
    assert_non_null(strstr(say(&s, "many"), "\"error\":\"not_integer\""));
    assert_non_null(strstr(say(&s, "11"), "\"error\":\"too_large\""));

    assert_string_equal(say(&s, " 5 "),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.ask_email\","
                        "\"locale\":\"ru\",\"vars\":{\"count\":5}}]");
    assert_int_equal(s.outcome, FSM_OUT_TRANSITION);
    WHERE(&s, "order", "ask_email");
    assert_string_equal(s.data, "{\"count\":5}");
    sess_free(&s);
}

static void test_text_ignore_case(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    place(&s, "order", "ask_count", "{\"x\":1}");
    /* "none" (ignore_case) ends the flow; its data is gone */
    assert_string_equal(say(&s, "NONE"),
                        "[{\"kind\":\"end_flow\",\"flow\":\"order\",\"reason\":\"end\"}]");
    WHERE(&s, NULL, NULL);
    assert_string_equal(s.data, "{}");
    sess_free(&s);
}

static void test_input_email(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    place(&s, "order", "ask_email", "{\"count\":2}");
    /* invalid: as a list of actions, with its own vars */
    assert_string_equal(say(&s, "ann at example"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.bad_email\","
                        "\"locale\":\"ru\",\"vars\":{\"count\":2,\"typed\":\"ann at example\"}}]");
    assert_int_equal(s.outcome, FSM_OUT_REPROMPT);
    say(&s, "Ann@Example.com");
    WHERE(&s, "order", "ask_when");
    assert_string_equal(s.data, "{\"count\":2,\"email\":\"Ann@example.com\"}");
    sess_free(&s);
}

static void test_input_datetime_and_timeout(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    place(&s, "order", "ask_email", "{}");
    /* entering ask_when schedules its 10-minute timeout */
    assert_string_equal(say(&s, "a@b.co"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.ask_when\","
                        "\"locale\":\"ru\",\"vars\":{\"email\":\"a@b.co\"}},"
                        "{\"kind\":\"schedule_timeout\",\"flow\":\"order\",\"state\":\"ask_when\","
                        "\"after_ms\":600000,\"at_ms\":1795256853250}]");
    assert_int_equal(s.conv.timeout_at, NOW + 600000);

    /* a time in the past is refused (future: true); the input restarts the timer */
    s.ctx.now_ms = NOW + 60000;
    assert_string_equal(say(&s, "today 9:00"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.bad_when\","
                        "\"locale\":\"ru\",\"vars\":{\"email\":\"a@b.co\",\"input\":\"today 9:00\","
                        "\"error\":\"in_past\"}},"
                        "{\"kind\":\"schedule_timeout\",\"flow\":\"order\",\"state\":\"ask_when\","
                        "\"after_ms\":600000,\"at_ms\":1795256913250}]");
    int64_t at = s.conv.timeout_at;
    assert_int_equal(at, NOW + 660000);

    /* the old timer firing now is stale: ignored, nothing changes */
    assert_string_equal(fire_timeout(&s, "order", "ask_when", NOW + 600000), "[]");
    assert_int_equal(s.outcome, FSM_OUT_IGNORED);
    assert_false(s.changed);
    /* the current one fires: its transition runs */
    s.ctx.now_ms = at;
    assert_string_equal(fire_timeout(&s, "order", "ask_when", at),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.too_slow\","
                        "\"locale\":\"ru\",\"vars\":{\"email\":\"a@b.co\"}},"
                        "{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.ask_count\","
                        "\"locale\":\"ru\",\"vars\":{\"email\":\"a@b.co\"}}]");
    assert_int_equal(s.outcome, FSM_OUT_TRANSITION);
    WHERE(&s, "order", "ask_count");
    assert_int_equal(s.conv.timeout_at, 0);
    /* and again: the conversation has moved on */
    assert_string_equal(fire_timeout(&s, "order", "ask_when", at), "[]");
    assert_int_equal(s.outcome, FSM_OUT_IGNORED);

    /* a valid date leaves the state: the timer is cancelled */
    place(&s, "order", "ask_when", "{}");
    s.conv.timeout_at = NOW + 5000;
    s.ctx.now_ms = NOW;
    assert_string_equal(say(&s, "завтра в 9"),
                        "[{\"kind\":\"cancel_timeout\"},"
                        "{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.ask_size\","
                        "\"locale\":\"ru\",\"vars\":{\"when\":\"2026-11-22T09:00:00+03:00\"}}]");
    assert_int_equal(s.conv.timeout_at, 0);
    sess_free(&s);
}

static void test_input_choice(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    place(&s, "order", "ask_size", NULL);
    assert_non_null(strstr(say(&s, "medium"), "\"error\":\"not_choice\""));
    say(&s, "Большой");
    WHERE(&s, "order", "ask_contact");
    assert_string_equal(s.data, "{\"size\":\"large\"}");
    /* the state's send had a reply keyboard */
    assert_string_equal(s.fx, "[{\"kind\":\"send\",\"chat_id\":42,\"template\":"
                              "\"order.ask_contact\",\"locale\":\"ru\",\"keyboard\":{\"reply\":"
                              "[[{\"template\":\"btn.share_phone\",\"request_contact\":true}],"
                              "[{\"template\":\"btn.share_location\",\"request_location\":true},"
                              "{\"text\":\"skip\"}]],\"resize\":true,\"one_time\":true},"
                              "\"vars\":{\"size\":\"large\"}}]");
    sess_free(&s);
}

/* ---- contact, location, callbacks, regex, any text ------------------------------------------- */

static void test_contact_and_location(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    place(&s, "order", "ask_contact", "{\"count\":2}");
    run_update(&s, contact_update());
    WHERE(&s, "order", "confirm");
    assert_string_equal(s.data, "{\"count\":2,\"phone\":\"+79990001122\"}");

    place(&s, "order", "ask_contact", "{}");
    run_update(&s, location_update());
    WHERE(&s, "order", "confirm");
    assert_string_equal(s.data, "{\"lat\":55.7558,\"lon\":37.6173}");
    sess_free(&s);
}

static void test_confirm_callbacks(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());

    /* a guard picks the first "yes" (count > 5): literal answer with alert */
    place(&s, "order", "confirm", "{\"count\":7}");
    assert_string_equal(press(&s, "yes"),
                        "[{\"kind\":\"answer_callback\",\"callback_query_id\":\"cbq-1\",\"text\":"
                        "\"Big order!\",\"alert\":true},"
                        "{\"kind\":\"publish\",\"event\":\"order.placed\",\"payload\":{\"count\":7,"
                        "\"big\":true,\"user\":7}},"
                        "{\"kind\":\"edit\",\"chat_id\":42,\"message_id\":55,\"template\":"
                        "\"order.placed\",\"locale\":\"ru\",\"vars\":{\"count\":7}},"
                        "{\"kind\":\"end_flow\",\"flow\":\"order\",\"reason\":\"end\"}]");
    assert_int_equal(s.outcome, FSM_OUT_TRANSITION);
    WHERE(&s, NULL, NULL);

    /* otherwise the second: template answer; edit a message id kept in data */
    place(&s, "order", "confirm",
          "{\"count\":3,\"email\":\"a@b.co\",\"when\":\"2026-11-22T09:00:00+03:00\","
          "\"confirm_msg\":91}");
    assert_string_equal(press(&s, "yes"),
                        "[{\"kind\":\"answer_callback\",\"callback_query_id\":\"cbq-1\","
                        "\"template\":\"order.thanks\",\"alert\":false,\"locale\":\"ru\","
                        "\"vars\":{\"count\":3,\"email\":\"a@b.co\",\"when\":"
                        "\"2026-11-22T09:00:00+03:00\",\"confirm_msg\":91}},"
                        "{\"kind\":\"publish\",\"event\":\"order.placed\",\"payload\":{\"count\":3,"
                        "\"email\":\"a@b.co\",\"when\":\"2026-11-22T09:00:00+03:00\"}},"
                        "{\"kind\":\"edit\",\"chat_id\":42,\"message_id\":91,\"template\":"
                        "\"order.placed\",\"locale\":\"ru\",\"vars\":{\"count\":3,\"email\":"
                        "\"a@b.co\",\"when\":\"2026-11-22T09:00:00+03:00\",\"confirm_msg\":91}},"
                        "{\"kind\":\"end_flow\",\"flow\":\"order\",\"reason\":\"end\"}]");

    /* no message id kept: the edit becomes a send */
    place(&s, "order", "confirm", "{\"count\":1}");
    assert_non_null(strstr(press(&s, "yes"), "{\"kind\":\"send\",\"chat_id\":42,\"template\":"
                                             "\"order.placed\""));

    /* callback_prefix: plain answer, buttons removed, then another flow */
    place(&s, "order", "confirm", "{\"count\":3}");
    assert_string_equal(press(&s, "no:3"),
                        "[{\"kind\":\"answer_callback\",\"callback_query_id\":\"cbq-1\","
                        "\"alert\":false},"
                        "{\"kind\":\"edit_markup\",\"chat_id\":42,\"message_id\":55,\"keyboard\":"
                        "null},"
                        "{\"kind\":\"end_flow\",\"flow\":\"order\",\"reason\":\"switch\"},"
                        "{\"kind\":\"send\",\"chat_id\":42,\"template\":\"feedback.ask\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    WHERE(&s, "feedback", "ask");

    /* regex with a group; edit_markup on a message id from data */
    place(&s, "order", "confirm", "{\"confirm_msg\":91}");
    assert_string_equal(say(&s, "note: ring twice"),
                        "[{\"kind\":\"edit_markup\",\"chat_id\":42,\"message_id\":91,\"keyboard\":"
                        "{\"inline\":[[{\"template\":\"btn.yes\",\"data\":\"yes\"}]]}}]");
    assert_string_equal(s.data, "{\"confirm_msg\":91,\"note\":\"ring twice\"}");
    WHERE(&s, "order", "confirm");

    /* any other text */
    assert_string_equal(
        say(&s, "what?"),
        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.use_buttons\","
        "\"locale\":\"ru\",\"vars\":{\"confirm_msg\":91,\"note\":\"ring twice\"}}]");
    assert_int_equal(s.outcome, FSM_OUT_TRANSITION);
    sess_free(&s);
}

static void test_callbacks_always_answered(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());

    /* inside a flow, a button nothing expects: answered with stale_callback */
    place(&s, "order", "ask_count", "{\"count\":1}");
    assert_string_equal(press(&s, "old-button"),
                        "[{\"kind\":\"answer_callback\",\"callback_query_id\":\"cbq-1\","
                        "\"template\":\"common.button_expired\",\"alert\":false,\"locale\":\"ru\","
                        "\"vars\":{\"count\":1}}]");
    assert_int_equal(s.outcome, FSM_OUT_UNMATCHED);
    WHERE(&s, "order", "ask_count");
    /* no flow at all: the same */
    place(&s, NULL, NULL, NULL);
    assert_non_null(strstr(press(&s, "old-button"), "\"template\":\"common.button_expired\""));
    /* matched, but the transition has no answer: a plain one comes first */
    assert_string_equal(press(&s, "menu:order"),
                        "[{\"kind\":\"answer_callback\",\"callback_query_id\":\"cbq-1\","
                        "\"alert\":false},"
                        "{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.ask_count\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    WHERE(&s, "order", "ask_count");

    /* without stale_callback: still exactly one answer */
    const char *yaml = "flows:\n  f:\n    command: /f\n    start: a\n    states:\n      a:\n"
                       "        on:\n          - callback: x\n            do:\n"
                       "              - answer: {text: one}\n              - answer: {text: two}\n";
    struct sess t;
    sess_init(&t, load_text(yaml, NULL));
    assert_string_equal(press(&t, "zzz"), "[{\"kind\":\"answer_callback\",\"callback_query_id\":"
                                          "\"cbq-1\",\"alert\":false}]");
    place(&t, "f", "a", NULL);
    assert_string_equal(press(&t, "x"), "[{\"kind\":\"answer_callback\",\"callback_query_id\":"
                                        "\"cbq-1\",\"text\":\"one\",\"alert\":false}]");
    /* an answer action without a callback query does nothing */
    sess_free(&t);
    sess_free(&s);
}

/* ---- global, flow-wide, fallback, default -----------------------------------------------------
 */

static void test_global_and_flow_wide(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());

    /* /help works in any state and stays */
    place(&s, "order", "ask_email", "{\"count\":2}");
    assert_string_equal(say(&s, "/help"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"common.help\","
                        "\"locale\":\"ru\",\"vars\":{\"count\":2}}]");
    WHERE(&s, "order", "ask_email");
    /* /restart is the flow's own: clear everything, back to the start */
    assert_string_equal(say(&s, "/restart"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.ask_count\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    WHERE(&s, "order", "ask_count");
    assert_string_equal(s.data, "{}");
    /* /cancel (guarded on flow exists) ends it; the message sees the data */
    place(&s, "order", "ask_email", "{\"count\":2}");
    s.conv.timeout_at = NOW + 1;
    assert_string_equal(say(&s, "/cancel"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"common.cancelled\","
                        "\"locale\":\"ru\",\"keyboard\":{\"remove\":true},\"vars\":{\"count\":2}},"
                        "{\"kind\":\"cancel_timeout\"},"
                        "{\"kind\":\"end_flow\",\"flow\":\"order\",\"reason\":\"end\"}]");
    WHERE(&s, NULL, NULL);
    /* with no flow the guard fails: /cancel is just unknown, so the default */
    assert_string_equal(say(&s, "/cancel"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"common.help\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    assert_int_equal(s.outcome, FSM_OUT_DEFAULT);
    /* /restart means nothing outside the flow */
    say(&s, "/restart");
    assert_int_equal(s.outcome, FSM_OUT_DEFAULT);
    sess_free(&s);
}

static void test_fallbacks(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());

    /* the flow's own fallback */
    place(&s, "order", "ask_contact", NULL);
    assert_string_equal(say(&s, "hello"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.use_buttons\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    assert_int_equal(s.outcome, FSM_OUT_FALLBACK);
    /* a photo without text: the same */
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"update_id\":5,\"message\":{\"message_id\":80,\"date\":1,\"chat\":{\"id\":42,"
             "\"type\":\"private\"},\"from\":%s,\"photo\":[{\"file_id\":\"p\",\"width\":1,"
             "\"height\":1}]}}",
             FROM);
    run_update(&s, parse(buf));
    assert_int_equal(s.outcome, FSM_OUT_FALLBACK);
    /* feedback has none: the set's fallback (its input refused "x", no invalid:) */
    place(&s, "feedback", "ask", NULL);
    assert_string_equal(say(&s, "x"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"common.not_understood\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    assert_int_equal(s.outcome, FSM_OUT_FALLBACK);
    /* an unknown command inside a flow is unmatched input too */
    say(&s, "/whatever");
    assert_int_equal(s.outcome, FSM_OUT_FALLBACK);
    /* no flow: the default */
    place(&s, NULL, NULL, NULL);
    say(&s, "hi");
    assert_int_equal(s.outcome, FSM_OUT_DEFAULT);
    sess_free(&s);

    /* a set with neither: nothing happens, nothing changes */
    const char *yaml = "flows:\n  f:\n    command: /f\n    start: a\n    states:\n      a:\n";
    sess_init(&s, load_text(yaml, NULL));
    assert_string_equal(say(&s, "hi"), "[]");
    assert_int_equal(s.outcome, FSM_OUT_UNMATCHED);
    assert_false(s.changed);
    say(&s, "/f");
    assert_string_equal(say(&s, "hi"), "[]");
    assert_int_equal(s.outcome, FSM_OUT_UNMATCHED);
    sess_free(&s);
}

static void test_ignored_updates(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    place(&s, "order", "ask_count", NULL);
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"update_id\":9,\"edited_message\":{\"message_id\":77,\"date\":1,\"edit_date\":2,"
             "\"chat\":{\"id\":42,\"type\":\"private\"},\"from\":%s,\"text\":\"5\"}}",
             FROM);
    assert_string_equal(run_update(&s, parse(buf)), "[]");
    assert_int_equal(s.outcome, FSM_OUT_IGNORED);
    assert_false(s.changed);
    run_update(&s, parse("{\"update_id\":10,\"poll\":{\"id\":\"1\"}}"));
    assert_int_equal(s.outcome, FSM_OUT_IGNORED);
    snprintf(buf, sizeof(buf),
             "{\"update_id\":11,\"my_chat_member\":{\"chat\":{\"id\":42,\"type\":\"private\"},"
             "\"from\":%s,\"date\":1,\"old_chat_member\":{\"status\":\"member\",\"user\":%s},"
             "\"new_chat_member\":{\"status\":\"kicked\",\"user\":%s}}}",
             FROM, FROM, FROM);
    run_update(&s, parse(buf));
    assert_int_equal(s.outcome, FSM_OUT_IGNORED);
    WHERE(&s, "order", "ask_count");
    sess_free(&s);
}

/* ---- the internal API ------------------------------------------------------------------------ */

static void test_api_start(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    struct json_object *data = json_tokener_parse("{\"count\":3,\"lang\":\"en\"}");

    /* at a state marked api: true, with data; remember and locale from data */
    struct fsm_input in = {FSM_IN_START, NULL, "order", "confirm", 0, data};
    assert_string_equal(run(&s, &in),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"order.confirm\","
                        "\"locale\":\"en\",\"keyboard\":{\"inline\":[[{\"template\":\"btn.yes\","
                        "\"data\":\"yes\"},{\"template\":\"btn.no\",\"data\":\"no:3\"}],"
                        "[{\"text\":\"Help\",\"url\":\"https://example.org/help\"}]]},"
                        "\"remember\":\"confirm_msg\",\"vars\":{\"count\":3,\"lang\":\"en\"}}]");
    assert_int_equal(s.outcome, FSM_OUT_ENTERED);
    WHERE(&s, "order", "confirm");
    assert_string_equal(s.data, "{\"count\":3,\"lang\":\"en\"}");

    /* over a running flow: it ends ("replaced"); no state: the start */
    s.conv.timeout_at = NOW + 10;
    struct fsm_input in2 = {FSM_IN_START, NULL, "feedback", NULL, 0, NULL};
    assert_string_equal(run(&s, &in2),
                        "[{\"kind\":\"cancel_timeout\"},"
                        "{\"kind\":\"end_flow\",\"flow\":\"order\",\"reason\":\"replaced\"},"
                        "{\"kind\":\"send\",\"chat_id\":42,\"template\":\"feedback.ask\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    WHERE(&s, "feedback", "ask");

    /* refused starts leave nothing to release */
    struct fsm_result r;
    struct fsm_input bad1 = {FSM_IN_START, NULL, "nope", NULL, 0, NULL};
    assert_int_equal(fsm_step(s.set, &s.conv, &bad1, &s.ctx, &r), VN_ENOENT);
    assert_string_equal(r.reason, "unknown flow \"nope\"");
    struct fsm_input bad2 = {FSM_IN_START, NULL, "order", "nope", 0, NULL};
    assert_int_equal(fsm_step(s.set, &s.conv, &bad2, &s.ctx, &r), VN_ENOENT);
    assert_string_equal(r.reason, "flow \"order\" has no state \"nope\"");
    struct fsm_input bad3 = {FSM_IN_START, NULL, "order", "ask_email", 0, NULL};
    assert_int_equal(fsm_step(s.set, &s.conv, &bad3, &s.ctx, &r), VN_ECONFLICT);
    assert_string_equal(r.reason, "state \"ask_email\" of flow \"order\" is not marked api: true");
    struct json_object *arr = json_object_new_array();
    struct fsm_input bad4 = {FSM_IN_START, NULL, "order", NULL, 0, arr};
    assert_int_equal(fsm_step(s.set, &s.conv, &bad4, &s.ctx, &r), VN_EINVAL);
    assert_string_equal(r.reason, "data must be a JSON object");
    json_object_put(arr);
    assert_int_equal(fsm_step(s.set, &s.conv, NULL, &s.ctx, &r), VN_EINVAL);
    assert_int_equal(fsm_step(NULL, &s.conv, &in, &s.ctx, &r), VN_EINVAL);
    struct fsm_input bad5 = {FSM_IN_UPDATE, NULL, NULL, NULL, 0, NULL};
    assert_int_equal(fsm_step(s.set, &s.conv, &bad5, &s.ctx, &r), VN_EINVAL);

    json_object_put(data);
    sess_free(&s);
}

/* ---- reloads, bounds, determinism ------------------------------------------------------------ */

static void test_flow_gone(void **state)
{
    (void)state;
    struct sess s;
    sess_init(&s, load_full());
    /* the set was reloaded without this flow (or state): the conversation resets */
    place(&s, "removed", "somewhere", "{\"a\":1}");
    s.conv.timeout_at = NOW + 5;
    assert_string_equal(say(&s, "hi"),
                        "[{\"kind\":\"cancel_timeout\"},"
                        "{\"kind\":\"end_flow\",\"flow\":\"removed\",\"reason\":\"gone\"},"
                        "{\"kind\":\"send\",\"chat_id\":42,\"template\":\"common.help\","
                        "\"locale\":\"ru\",\"vars\":{}}]");
    WHERE(&s, NULL, NULL);
    place(&s, "order", "removed_state", NULL);
    say(&s, "/order");
    WHERE(&s, "order", "ask_count");
    sess_free(&s);
}

static void test_bounds(void **state)
{
    (void)state;
    const char *yaml =
        "flows:\n  f:\n    command: /f\n    start: a\n    states:\n      a:\n        on:\n"
        "          - callback_prefix: b\n            do:\n              - set: {x: $callback}\n"
        "              - set: {y: \"${data.x}${data.x}${data.x}${data.x}${data.x}\"}\n"
        "              - set: {z: \"${data.y}${data.y}${data.y}${data.y}${data.y}\"}\n"
        "          - any_text: true\n            do:\n"
        "              - send: t\n              - send: t\n              - send: t\n";
    struct fsm_load_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.limits.max_data = 1000;
    opts.limits.max_effects = 2;
    struct sess s;
    sess_init(&s, load_text(yaml, &opts));
    place(&s, "f", "a", "{\"keep\":1}");

    /* data over the bound: rejected, unchanged, the callback still answered */
    struct fsm_result r;
    struct tg_update *u = callback_update("b123456789012345678901234567890123456789012345678");
    struct fsm_input in = {FSM_IN_UPDATE, u, NULL, NULL, 0, NULL};
    assert_int_equal(fsm_step(s.set, &s.conv, &in, &s.ctx, &r), 0);
    assert_int_equal(r.outcome, FSM_OUT_REJECTED);
    assert_string_equal(r.reason, "data over 1000 bytes");
    assert_false(r.changed);
    assert_string_equal(json(r.next.data), "{\"keep\":1}");
    assert_string_equal(json(r.effects), "[{\"kind\":\"answer_callback\",\"callback_query_id\":"
                                         "\"cbq-1\",\"alert\":false}]");
    fsm_result_cleanup(&r);
    tg_update_free(u);

    /* too many effects */
    assert_string_equal(say(&s, "hello"), "[]");
    assert_int_equal(s.outcome, FSM_OUT_REJECTED);
    WHERE(&s, "f", "a");
    sess_free(&s);
}

static void test_deterministic(void **state)
{
    (void)state;
    const char *script[] = {"/order", "3", "a@b.co", "через 2 часа", "l", "skip"};
    char *first[VN_ARRAY_LEN(script)];
    for (int round = 0; round < 2; round++) {
        struct sess s;
        sess_init(&s, load_full());
        for (size_t i = 0; i < VN_ARRAY_LEN(script); i++) {
            const char *fx = say(&s, script[i]);
            char *line = xasprintf("%s|%s|%s|%s|%lld|%lld", fx, s.data, s.conv.flow, s.conv.state,
                                   (long long)s.conv.entered_at, (long long)s.conv.timeout_at);
            if (round == 0) {
                first[i] = line;
            } else {
                assert_string_equal(line, first[i]);
                free(line);
                free(first[i]);
            }
        }
        if (round == 1) {
            WHERE(&s, "order", "confirm");
            assert_string_equal(s.data, "{\"count\":3,\"email\":\"a@b.co\",\"when\":"
                                        "\"2026-11-21T15:17:33+03:00\",\"size\":\"large\"}");
        }
        sess_free(&s);
    }
}

/* ---- values, references, guards ---------------------------------------------------------------
 */

static void test_references(void **state)
{
    (void)state;
    const char *yaml =
        "flows:\n"
        "  f:\n"
        "    command: /f\n"
        "    start: a\n"
        "    states:\n"
        "      a:\n"
        "        on:\n"
        "          - regex: '^([a-z]+)-([0-9]+)$'\n"
        "            do:\n"
        "              - set: {m0: $match, m1: $match.1, m2: $match.2, m3: $match.3}\n"
        "          - any_text: true\n"
        "            do:\n"
        "              - send: early\n"
        "              - set:\n"
        "                  input: $input\n"
        "                  arg: $arg\n"
        "                  user: \"${user.first_name} @${user.username} ${user.id} "
        "${user.language}\"\n"
        "                  chat: $chat.id\n"
        "                  msg: $message.id\n"
        "                  now: $now\n"
        "                  locale: $locale\n"
        "                  where: \"${flow}/${state}\"\n"
        "                  lit: [1, 2.5, \"three\", true, null, $$notref]\n"
        "                  nested: {a: {b: $input}}\n"
        "                  gone: $data.nothing\n"
        "                  cost: \"$5 and $${not}\"\n"
        "          - callback_prefix: \"p:\"\n"
        "            do:\n"
        "              - set: {cb: $callback, suffix: $suffix, copy: $data.nested.a.b}\n"
        "              - clear: [input, lit]\n";
    struct sess s;
    sess_init(&s, load_text(yaml, NULL));
    place(&s, "f", "a", "{\"gone\":1}");
    say(&s, "hello");
    assert_string_equal(s.data,
                        "{\"input\":\"hello\",\"user\":\"Ann @ann 7 ru\",\"chat\":42,\"msg\":77,"
                        "\"now\":\"2026-11-21T13:17:33+03:00\",\"locale\":\"ru\",\"where\":"
                        "\"f/a\",\"lit\":[1,2.5,\"three\",true,null,\"$notref\"],\"nested\":{\"a\":"
                        "{\"b\":\"hello\"}},\"cost\":\"$5 and ${not}\"}");
    /* the send before the sets still shows the data after the step */
    assert_non_null(strstr(s.fx, "\"template\":\"early\",\"locale\":\"ru\",\"vars\":{\"input\":"
                                 "\"hello\""));
    press(&s, "p:tail");
    assert_string_equal(s.data, "{\"user\":\"Ann @ann 7 ru\",\"chat\":42,\"msg\":77,\"now\":"
                                "\"2026-11-21T13:17:33+03:00\",\"locale\":\"ru\",\"where\":\"f/a\","
                                "\"nested\":{\"a\":{\"b\":\"hello\"}},\"cost\":\"$5 and ${not}\","
                                "\"cb\":\"p:tail\",\"suffix\":\"tail\",\"copy\":\"hello\"}");
    place(&s, "f", "a", NULL);
    say(&s, "abc-42");
    assert_string_equal(s.data, "{\"m0\":\"abc-42\",\"m1\":\"abc\",\"m2\":\"42\"}");
    sess_free(&s);
}

static void test_guards(void **state)
{
    (void)state;
    const char *yaml =
        "flows:\n"
        "  f:\n"
        "    command: /f\n"
        "    start: a\n"
        "    states:\n"
        "      a:\n"
        "        on:\n"
        "          - text: go\n            when: data.n > 10 and data.s == 'x'\n"
        "            do: [send: big_x]\n"
        "          - text: go\n            when: data.n >= 2.5 or not (data.s exists)\n"
        "            do: [send: mid_or_no_s]\n"
        "          - text: go\n            when: data.s != null and data.n < 0\n"
        "            do: [send: negative]\n"
        "          - text: go\n            when: data.flag\n"
        "            do: [send: flag]\n"
        "          - text: go\n            when: data.s < 'b' and data.n == 1\n"
        "            do: [send: alpha]\n"
        "          - text: go\n            when: data.n == '1'\n"
        "            do: [send: mixed]\n"
        "          - text: go\n            do: [send: otherwise]\n";
    static const struct {
        const char *data;
        const char *tmpl;
    } cases[] = {
        {"{\"n\":11,\"s\":\"x\"}", "big_x"},
        {"{\"n\":11,\"s\":\"y\"}", "mid_or_no_s"},
        {"{\"n\":1}", "mid_or_no_s"},
        {"{\"n\":1,\"s\":\"\"}", "mid_or_no_s"}, /* "" does not exist */
        {"{\"n\":-1,\"s\":\"q\"}", "negative"},
        {"{\"n\":1,\"s\":\"q\",\"flag\":\"yes\"}", "flag"},
        {"{\"n\":1,\"s\":\"q\",\"flag\":0}", "otherwise"},
        {"{\"n\":1,\"s\":\"a\"}", "alpha"},
        {"{\"n\":2,\"s\":\"q\"}", "otherwise"}, /* 2 == '1'? types differ: no */
        {"{\"n\":2.5,\"s\":\"q\"}", "mid_or_no_s"},
        {"{\"n\":true,\"s\":\"q\"}", "otherwise"},
    };
    struct sess s;
    sess_init(&s, load_text(yaml, NULL));
    int bad = 0;
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        place(&s, "f", "a", cases[i].data);
        say(&s, "go");
        char want[64];
        snprintf(want, sizeof(want), "\"template\":\"%s\"", cases[i].tmpl);
        if (strstr(s.fx, want) == NULL) {
            print_error("%s: want %s, got %s\n", cases[i].data, cases[i].tmpl, s.fx);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    sess_free(&s);
}

static void test_enter_then_end(void **state)
{
    (void)state;
    const char *yaml =
        "flows:\n  hi:\n    command: /hi\n    start: greet\n    states:\n      greet:\n"
        "        enter:\n          - set: {greeted: true}\n          - send: hi.there\n"
        "          - end: true\n";
    struct sess s;
    sess_init(&s, load_text(yaml, NULL));
    assert_string_equal(say(&s, "/hi"),
                        "[{\"kind\":\"send\",\"chat_id\":42,\"template\":\"hi.there\",\"locale\":"
                        "\"ru\",\"vars\":{\"greeted\":true}},"
                        "{\"kind\":\"end_flow\",\"flow\":\"hi\",\"reason\":\"end\"}]");
    WHERE(&s, NULL, NULL);
    assert_int_equal(s.outcome, FSM_OUT_ENTERED);
    assert_true(s.changed); /* no flow, no data, as before; but entered_at moved */
    sess_free(&s);
}

/* Flows that switch to each other forever are cut off, not run forever. */
static void test_flow_switch_loop(void **state)
{
    (void)state;
    const char *yaml = "flows:\n"
                       "  a:\n    command: /a\n    start: s\n    entry:\n      - flow: b\n"
                       "    states: {s: }\n"
                       "  b:\n    start: s\n    entry:\n      - flow: a\n    states: {s: }\n";
    struct sess s;
    sess_init(&s, load_text(yaml, NULL));
    assert_string_equal(say(&s, "/a"), "[]");
    assert_int_equal(s.outcome, FSM_OUT_REJECTED);
    WHERE(&s, NULL, NULL);
    sess_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enter_by_command),
        cmocka_unit_test(test_entry_conditions),
        cmocka_unit_test(test_input_integer),
        cmocka_unit_test(test_text_ignore_case),
        cmocka_unit_test(test_input_email),
        cmocka_unit_test(test_input_datetime_and_timeout),
        cmocka_unit_test(test_input_choice),
        cmocka_unit_test(test_contact_and_location),
        cmocka_unit_test(test_confirm_callbacks),
        cmocka_unit_test(test_callbacks_always_answered),
        cmocka_unit_test(test_global_and_flow_wide),
        cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_ignored_updates),
        cmocka_unit_test(test_api_start),
        cmocka_unit_test(test_flow_gone),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_guards),
        cmocka_unit_test(test_enter_then_end),
        cmocka_unit_test(test_flow_switch_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
