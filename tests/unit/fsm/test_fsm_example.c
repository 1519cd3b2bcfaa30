/*
 * test_fsm_example.c - the example bot (examples/reminders/flows/bot.yaml)
 * through the step engine: /start with a deep-link token, a whole /remind
 * conversation down to reminder.scheduled, /settings, /tasks answered through
 * the API, and /cancel. What the webhook integration test will see, minus
 * Redis and Telegram.
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

#define NOW 1795256253250LL /* 2026-11-21T10:17:33.250Z, a Saturday */

struct bot {
    struct fsm_set *set;
    struct fsm_tz *tz;
    struct fsm_ctx ctx;
    struct fsm_conv conv;
    char *fx;
};

static void bot_init(struct bot *b)
{
    const char *env = getenv("VN_SOURCE_DIR");
    char *root = NULL;
    if (env != NULL && *env != '\0') {
        root = xstrdup(env);
    } else {
        const char *me = __FILE__;
        const char *tail = strstr(me, "tests/unit/fsm/");
        root = tail != NULL && tail != me ? xstrndup(me, (size_t)(tail - me)) : xstrdup(".");
    }
    char *dir = xasprintf("%s/examples/reminders/flows", root);
    struct fsm_diag d;
    char err[64];
    memset(b, 0, sizeof(*b));
    fsm_diag_init(&d);
    b->set = fsm_set_load_dir(dir, NULL, &d);
    if (b->set == NULL)
        fail_msg("the example bot does not load (%zu problems)", d.n);
    fsm_diag_cleanup(&d);
    free(dir);
    free(root);
    b->tz = fsm_tz_parse("MSK-3", err, sizeof(err));
    b->ctx.now_ms = NOW;
    b->ctx.chat_id = 42;
    b->ctx.user_id = 7;
    b->ctx.locale = "ru";
    b->ctx.tz = b->tz;
}

static void bot_free(struct bot *b)
{
    fsm_set_free(b->set);
    fsm_tz_free(b->tz);
    fsm_conv_cleanup(&b->conv);
    free(b->fx);
}

static const char *step(struct bot *b, const struct fsm_input *in)
{
    struct fsm_result r;
    assert_int_equal(fsm_step(b->set, &b->conv, in, &b->ctx, &r), 0);
    free(b->fx);
    b->fx = xstrdup(json_object_to_json_string_ext(r.effects, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    fsm_conv_cleanup(&b->conv);
    b->conv = r.next;
    memset(&r.next, 0, sizeof(r.next));
    fsm_result_cleanup(&r);
    return b->fx;
}

static const char *update(struct bot *b, const char *json)
{
    struct tg_error err;
    struct tg_update *u = tg_update_parse(json, strlen(json), NULL, &err);
    if (u == NULL)
        fail_msg("%s: %s", err.path, err.msg);
    struct fsm_input in = {FSM_IN_UPDATE, u, NULL, NULL, 0, NULL};
    step(b, &in);
    tg_update_free(u);
    return b->fx;
}

static const char *say(struct bot *b, const char *text)
{
    struct vn_buf j = VN_BUF_INIT;
    vn_buf_puts(&j,
                "{\"update_id\":1,\"message\":{\"message_id\":100,\"date\":1,\"chat\":{\"id\":42,"
                "\"type\":\"private\"},\"from\":{\"id\":7,\"is_bot\":false,\"first_name\":"
                "\"Ann\",\"username\":\"ann\",\"language_code\":\"ru\"},\"text\":");
    vn_buf_json_str(&j, text);
    if (text[0] == '/')
        vn_buf_printf(&j, ",\"entities\":[{\"type\":\"bot_command\",\"offset\":0,\"length\":%zu}]",
                      strcspn(text, " "));
    vn_buf_puts(&j, "}}");
    update(b, j.data);
    vn_buf_free(&j);
    return b->fx;
}

static const char *press(struct bot *b, const char *data)
{
    struct vn_buf j = VN_BUF_INIT;
    vn_buf_puts(&j, "{\"update_id\":2,\"callback_query\":{\"id\":\"q1\",\"from\":{\"id\":7,"
                    "\"is_bot\":false,\"first_name\":\"Ann\"},\"chat_instance\":\"c\",\"data\":");
    vn_buf_json_str(&j, data);
    vn_buf_puts(&j, ",\"message\":{\"message_id\":200,\"date\":1,\"chat\":{\"id\":42,\"type\":"
                    "\"private\"}}}}");
    update(b, j.data);
    vn_buf_free(&j);
    return b->fx;
}

static void test_start_deep_link(void **state)
{
    (void)state;
    struct bot b;
    bot_init(&b);
    assert_string_equal(say(&b, "/start tok_abc123"),
                        "[{\"kind\":\"publish\",\"event\":\"account.link_requested\",\"payload\":{"
                        "\"token\":\"tok_abc123\",\"telegram_user_id\":7,\"chat_id\":42,"
                        "\"username\":\"ann\",\"language\":\"ru\"}},"
                        "{\"kind\":\"send\",\"chat_id\":42,\"template\":\"bot.start.linking\","
                        "\"locale\":\"ru\",\"vars\":{}},"
                        "{\"kind\":\"end_flow\",\"flow\":\"start\",\"reason\":\"end\"}]");
    assert_null(b.conv.flow);

    /* the account service reports back */
    struct json_object *data = json_tokener_parse("{\"account_name\":\"Ann Lee\"}");
    struct fsm_input in = {FSM_IN_START, NULL, "start", "linked", 0, data};
    assert_non_null(strstr(step(&b, &in), "\"template\":\"bot.start.linked\""));
    assert_non_null(strstr(b.fx, "\"vars\":{\"account_name\":\"Ann Lee\"}"));
    json_object_put(data);

    /* plain /start: the welcome with the main menu */
    say(&b, "/start");
    assert_non_null(strstr(b.fx, "\"template\":\"bot.welcome\""));
    assert_non_null(
        strstr(b.fx, "{\"template\":\"bot.btn.new_reminder\",\"data\":\"menu:remind\"}"));
    /* a menu button starts /remind from anywhere */
    press(&b, "menu:remind");
    assert_string_equal(b.conv.flow, "remind");
    assert_non_null(strstr(b.fx, "{\"kind\":\"answer_callback\",\"callback_query_id\":\"q1\","
                                 "\"alert\":false}"));
    bot_free(&b);
}

static void test_remind_conversation(void **state)
{
    (void)state;
    struct bot b;
    bot_init(&b);
    assert_non_null(strstr(say(&b, "/remind"), "\"template\":\"bot.remind.ask_text\""));
    assert_non_null(strstr(b.fx, "\"kind\":\"schedule_timeout\""));
    say(&b, "позвонить маме");
    assert_string_equal(b.conv.state, "ask_when");
    assert_non_null(strstr(b.fx, "\"reply\":[[{\"template\":\"bot.btn.in_one_hour\"}"));
    /* a time already gone: re-prompt with the reason */
    assert_non_null(strstr(say(&b, "сегодня в 9:00"), "\"error\":\"in_past\""));
    assert_string_equal(b.conv.state, "ask_when");
    say(&b, "завтра в 9");
    assert_string_equal(b.conv.state, "confirm");
    assert_non_null(strstr(b.fx, "\"vars\":{\"what\":\"позвонить маме\",\"when\":"
                                 "\"2026-11-22T09:00:00+03:00\"}"));
    assert_string_equal(press(&b, "remind:yes"),
                        "[{\"kind\":\"answer_callback\",\"callback_query_id\":\"q1\",\"template\":"
                        "\"bot.remind.done_toast\",\"alert\":false,\"locale\":\"ru\",\"vars\":{"
                        "\"what\":\"позвонить маме\",\"when\":\"2026-11-22T09:00:00+03:00\"}},"
                        "{\"kind\":\"publish\",\"event\":\"reminder.scheduled\",\"payload\":{"
                        "\"reminder\":{\"text\":\"позвонить маме\",\"remind_at\":"
                        "\"2026-11-22T09:00:00+03:00\"}}},"
                        "{\"kind\":\"edit\",\"chat_id\":42,\"message_id\":200,\"template\":"
                        "\"bot.remind.done\",\"locale\":\"ru\",\"vars\":{\"what\":"
                        "\"позвонить маме\",\"when\":\"2026-11-22T09:00:00+03:00\"}},"
                        "{\"kind\":\"cancel_timeout\"},"
                        "{\"kind\":\"end_flow\",\"flow\":\"remind\",\"reason\":\"end\"}]");
    assert_null(b.conv.flow);

    /* "/remind buy milk" skips the first question */
    say(&b, "/remind buy milk");
    assert_string_equal(b.conv.state, "ask_when");
    /* /cancel ends it and removes the reply keyboard */
    assert_non_null(strstr(say(&b, "/cancel"), "\"keyboard\":{\"remove\":true}"));
    assert_null(b.conv.flow);
    assert_non_null(strstr(say(&b, "/cancel"), "\"template\":\"bot.nothing_to_cancel\""));
    bot_free(&b);
}

static void test_settings(void **state)
{
    (void)state;
    struct bot b;
    bot_init(&b);
    say(&b, "/settings");
    press(&b, "set:language");
    assert_string_equal(b.conv.state, "language");
    press(&b, "lang:en");
    assert_non_null(strstr(b.fx, "{\"kind\":\"publish\",\"event\":\"preferences.update_requested\","
                                 "\"payload\":{\"telegram_user_id\":7,\"locale\":\"en\"}}"));
    /* the confirmation is rendered in the language just chosen */
    assert_non_null(strstr(b.fx, "\"template\":\"bot.settings.language_saved\",\"locale\":\"en\""));
    assert_string_equal(b.conv.state, "menu");
    press(&b, "set:quiet");
    say(&b, "22:30 - 7:00");
    assert_non_null(strstr(b.fx, "\"quiet_hours\":{\"from\":\"22:30\",\"to\":\"7:00\"}"));
    press(&b, "set:timezone");
    say(&b, "UTC+5");
    assert_non_null(strstr(b.fx, "\"time_zone\":\"UTC+5\""));
    press(&b, "set:channels");
    press(&b, "ch:email");
    assert_non_null(strstr(b.fx, "\"toggle_channel\":\"email\""));
    assert_string_equal(b.conv.state, "channels");
    say(&b, "what?");
    assert_non_null(strstr(b.fx, "\"template\":\"bot.settings.use_buttons\""));
    press(&b, "channels:done");
    press(&b, "set:done");
    assert_null(b.conv.flow);
    bot_free(&b);
}

static void test_tasks_through_the_api(void **state)
{
    (void)state;
    struct bot b;
    bot_init(&b);
    assert_non_null(strstr(say(&b, "/tasks"), "\"event\":\"tasks.list_requested\""));
    struct json_object *data =
        json_tokener_parse("{\"tasks\":[{\"id\":\"t1\",\"title\":\"Report\"}]}");
    struct fsm_input in = {FSM_IN_START, NULL, "tasks", "list", 0, data};
    step(&b, &in);
    /* the task service's answer replaces the waiting state: its timer goes */
    assert_non_null(strstr(b.fx, "{\"kind\":\"cancel_timeout\"}"));
    assert_non_null(strstr(b.fx, "\"template\":\"bot.tasks\""));
    say(&b, "1");
    assert_non_null(strstr(b.fx, "\"payload\":{\"telegram_user_id\":7,\"number\":1,\"tasks\":[{"
                                 "\"id\":\"t1\",\"title\":\"Report\"}]}"));
    assert_null(b.conv.flow);

    /* a task to confirm, started by a service */
    json_object_put(data);
    data = json_tokener_parse("{\"task_id\":\"t-9\",\"title\":\"Review\"}");
    struct fsm_input in2 = {FSM_IN_START, NULL, "task_confirm", NULL, 0, data};
    assert_non_null(
        strstr(step(&b, &in2), "{\"template\":\"bot.btn.accept\",\"data\":\"task:yes:t-9\"}"));
    assert_non_null(strstr(press(&b, "task:yes:t-9"),
                           "{\"kind\":\"publish\",\"event\":\"task.accepted\",\"payload\":{"
                           "\"task_id\":\"t-9\",\"telegram_user_id\":7}}"));
    json_object_put(data);
    bot_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_deep_link),
        cmocka_unit_test(test_remind_conversation),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_tasks_through_the_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
