/*
 * The Bot API client against the fake Bot API server: every method round
 * trips with the real shapes; 429 with retry_after is waited out; 5xx is
 * retried and then given up; 403 is reported as blocked; a network error is
 * retried and reported; a limited client shares a 429 pause with later sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bot/tg_client.h"
#include "core/common.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/redis.h"
#include "fake_tg.h"

struct got {
    int done;
    enum tg_err_kind kind;
    int error_code;
    char description[256];
    int retry_after;
    int64_t migrate_to;
    int attempts;
    char result[4096];
    uint64_t at_ms;
};

struct fx {
    struct fake_tg fake;
    uv_loop_t loop;
    struct hc_client *hc;
    struct rds_client *redis;
    struct tg_client *tg;
    uv_timer_t guard;
    int pending;
};

static struct got *wait_g;
static int wait_n;

static void on_guard(uv_timer_t *t)
{
    (void)t;
    for (int i = 0; i < wait_n; i++)
        if (!wait_g[i].done)
            fprintf(stderr, "# call %d of %d did not finish\n", i, wait_n);
    fail_msg("timed out waiting for the Bot API client");
}

static uv_loop_t *test_loop;

static void on_result(const struct tg_result *r, void *ud)
{
    struct got *g = ud;
    g->done = 1;
    /* Results can arrive in the loop's timer phase; without this, uv_run
     * (UV_RUN_ONCE) would then block in its poll phase until the next timer. */
    uv_stop(test_loop);
    g->kind = r->kind;
    g->error_code = r->error_code;
    snprintf(g->description, sizeof(g->description), "%s", r->description);
    g->retry_after = r->retry_after;
    g->migrate_to = r->migrate_to_chat_id;
    g->attempts = r->attempts;
    g->at_ms = vn_now_ms();
    snprintf(g->result, sizeof(g->result), "%s",
             r->result ? json_object_to_json_string_ext(r->result, JSON_C_TO_STRING_PLAIN) : "");
}

static void wait_for(struct fx *f, struct got *g, int n, uint64_t max_ms)
{
    wait_g = g;
    wait_n = n;
    uv_timer_start(&f->guard, on_guard, max_ms, 0);
    for (;;) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += g[i].done;
        if (done == n)
            break;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&f->guard);
}

static struct tg_client *client(struct fx *f, const char *api, int limited)
{
    struct tg_client_opts o;
    memset(&o, 0, sizeof(o));
    o.api_url = api;
    o.token = "123456:TEST";
    o.limiter_off = !limited;
    o.redis = limited ? f->redis : NULL;
    o.max_retries = 2;
    o.backoff_base_ms = 50;
    o.backoff_max_ms = 200;
    o.timeout_ms = 3000;
    return tg_client_new(&f->loop, f->hc, &o);
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    if (fake_tg_start(&f->fake, NULL) != 0) {
        fprintf(stderr, "cannot start the fake Bot API (FAKE_TELEGRAM_BIN=%s)\n",
                getenv("FAKE_TELEGRAM_BIN") ? getenv("FAKE_TELEGRAM_BIN") : "unset");
        return -1;
    }
    uv_loop_init(&f->loop);
    test_loop = &f->loop;
    uv_timer_init(&f->loop, &f->guard);
    f->hc = hc_new(&f->loop, NULL);
    f->tg = client(f, f->fake.url, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tg_client_close(f->tg);
    hc_close(f->hc);
    rds_close(f->redis);
    uv_close((uv_handle_t *)&f->guard, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(fake_tg_stop(&f->fake), 0);
    free(f);
    return 0;
}

static void reset(struct fx *f)
{
    assert_int_equal(fake_tg_call(&f->fake, "POST", "/_fake/reset", "{}", NULL), 200);
}

static void fault(struct fx *f, const char *json)
{
    assert_int_equal(fake_tg_call(&f->fake, "POST", "/_fake/faults", json, NULL), 200);
}

/* The last recorded call to method, as JSON text (caller frees). */
static char *last_call(struct fx *f, const char *method)
{
    char path[128];
    struct vn_buf b = VN_BUF_INIT;
    snprintf(path, sizeof(path), "/_fake/calls?method=%s", method);
    assert_int_equal(fake_tg_call(&f->fake, "GET", path, NULL, &b), 200);
    json_object *root = json_tokener_parse(b.data), *calls = NULL;
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "calls", &calls));
    size_t n = json_object_array_length(calls);
    assert_true(n > 0);
    char *s = xstrdup(json_object_to_json_string_ext(json_object_array_get_idx(calls, n - 1),
                                                     JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    vn_buf_free(&b);
    return s;
}

static void assert_has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("expected %s in %s", needle, hay);
}

static void test_methods_round_trip(void **state)
{
    struct fx *f = *state;
    struct got g[12];
    memset(g, 0, sizeof(g));
    reset(f);

    tg_get_me(f->tg, on_result, &g[0]);
    wait_for(f, g, 1, 5000);
    assert_int_equal(g[0].kind, TG_OK);
    assert_has(g[0].result, "\"is_bot\":true");

    json_object *kb = tg_kb_inline();
    tg_kb_inline_button(kb, 0, "Yes", "confirm:yes");
    tg_kb_inline_button(kb, 0, "No", "confirm:no");
    tg_kb_inline_url(kb, 1, "Docs", "https://example.org/");
    struct tg_send m = {.chat_id = 4242,
                        .text = "Remind you <b>tomorrow</b>?",
                        .parse_mode = "HTML",
                        .reply_markup = kb};
    tg_send_message(f->tg, &m, on_result, &g[1]);
    wait_for(f, &g[1], 1, 5000);
    assert_int_equal(g[1].kind, TG_OK);
    assert_has(g[1].result, "\"message_id\":");
    assert_has(g[1].result, "\"id\":4242");
    char *call = last_call(f, "sendMessage");
    assert_has(call, "confirm:yes");
    assert_has(call, "\"parse_mode\":\"HTML\"");
    free(call);
    json_object *res = json_tokener_parse(g[1].result), *mid = NULL;
    assert_true(json_object_object_get_ex(res, "message_id", &mid));
    int64_t message_id = json_object_get_int64(mid);
    json_object_put(res);

    tg_edit_message_text(f->tg, 4242, message_id, "Done", NULL, NULL, on_result, &g[2]);
    json_object *kb2 = tg_kb_inline();
    tg_kb_inline_button(kb2, 0, "Undo", "undo");
    tg_edit_message_reply_markup(f->tg, 4242, message_id, kb2, on_result, &g[3]);
    tg_answer_callback_query(f->tg, "cbq-1", "Saved", 0, on_result, &g[4]);
    tg_send_chat_action(f->tg, 4242, "typing", on_result, &g[5]);
    m.reply_markup = tg_kb_reply(1, 1);
    tg_kb_reply_button(m.reply_markup, 0, "Share contact");
    m.parse_mode = NULL;
    m.text = "keyboard";
    tg_send_message(f->tg, &m, on_result, &g[6]);
    m.reply_markup = tg_kb_remove();
    m.text = "no keyboard";
    tg_send_message(f->tg, &m, on_result, &g[7]);
    wait_for(f, &g[2], 6, 5000);
    for (int i = 2; i < 8; i++)
        if (g[i].kind != TG_OK)
            fail_msg("call %d: %s %d %s", i, tg_err_kind_name(g[i].kind), g[i].error_code,
                     g[i].description);
    assert_has(g[2].result, "\"text\":\"Done\"");

    tg_delete_message(f->tg, 4242, message_id, on_result, &g[8]);
    wait_for(f, &g[8], 1, 5000);
    assert_int_equal(g[8].kind, TG_OK);

    const char *allowed[] = {"message", "callback_query", "my_chat_member", NULL};
    struct tg_webhook w = {"http://127.0.0.1:9/hook", "s3cret", allowed, 40, 1};
    tg_set_webhook(f->tg, &w, on_result, &g[9]);
    wait_for(f, &g[9], 1, 5000);
    assert_int_equal(g[9].kind, TG_OK);
    tg_get_webhook_info(f->tg, on_result, &g[10]);
    wait_for(f, &g[10], 1, 5000);
    assert_has(g[10].result, "\"url\":\"http:\\/\\/127.0.0.1:9\\/hook\"");
    assert_has(g[10].result, "\"max_connections\":40");
    tg_delete_webhook(f->tg, 1, on_result, &g[11]);
    wait_for(f, &g[11], 1, 5000);
    assert_int_equal(g[11].kind, TG_OK);
}

static void test_get_updates(void **state)
{
    struct fx *f = *state;
    struct got g[2];
    memset(g, 0, sizeof(g));
    reset(f);
    assert_int_equal(fake_tg_call(&f->fake, "POST", "/_fake/updates",
                                  "{\"message\":{\"message_id\":1,\"date\":1700000000,"
                                  "\"chat\":{\"id\":77,\"type\":\"private\"},"
                                  "\"from\":{\"id\":77,\"is_bot\":false,\"first_name\":\"A\"},"
                                  "\"text\":\"/start\"}}",
                                  NULL),
                     200);
    tg_get_updates(f->tg, 0, 100, 1, NULL, on_result, &g[0]);
    wait_for(f, g, 1, 5000);
    assert_int_equal(g[0].kind, TG_OK);
    assert_has(g[0].result, "\"text\":\"\\/start\"");
    json_object *arr = json_tokener_parse(g[0].result), *id = NULL;
    assert_int_equal(json_object_array_length(arr), 1);
    json_object_object_get_ex(json_object_array_get_idx(arr, 0), "update_id", &id);
    int64_t next = json_object_get_int64(id) + 1;
    json_object_put(arr);
    /* confirming with offset leaves nothing; the long poll (1 s) ends empty */
    uint64_t t0 = vn_now_ms();
    tg_get_updates(f->tg, next, 100, 1, NULL, on_result, &g[1]);
    wait_for(f, &g[1], 1, 5000);
    assert_int_equal(g[1].kind, TG_OK);
    assert_string_equal(g[1].result, "[]");
    assert_true(vn_now_ms() - t0 >= 900);
}

static void test_429_is_waited_out(void **state)
{
    struct fx *f = *state;
    struct got g;
    memset(&g, 0, sizeof(g));
    reset(f);
    fault(f, "{\"method\":\"sendMessage\",\"kind\":\"429\",\"retry_after\":1,\"count\":1}");
    struct tg_send m = {.chat_id = 5, .text = "hello"};
    uint64_t t0 = vn_now_ms();
    tg_send_message(f->tg, &m, on_result, &g);
    wait_for(f, &g, 1, 5000);
    assert_int_equal(g.kind, TG_OK);
    assert_int_equal(g.attempts, 2);
    assert_int_equal(g.retry_after, 1);
    assert_true(g.at_ms - t0 >= 1000);
}

static void test_5xx_retried_then_given_up(void **state)
{
    struct fx *f = *state;
    struct got g[2];
    memset(g, 0, sizeof(g));
    reset(f);
    /* two 502s then success: retried through */
    fault(f, "{\"method\":\"sendMessage\",\"kind\":\"5xx\",\"status\":502,\"count\":2}");
    struct tg_send m = {.chat_id = 6, .text = "hello"};
    tg_send_message(f->tg, &m, on_result, &g[0]);
    wait_for(f, g, 1, 5000);
    assert_int_equal(g[0].kind, TG_OK);
    assert_int_equal(g[0].attempts, 3);
    /* failing for good: given up after max_retries (2) + 1 attempts */
    fault(f, "{\"method\":\"sendMessage\",\"kind\":\"5xx\",\"status\":500,\"count\":-1}");
    tg_send_message(f->tg, &m, on_result, &g[1]);
    wait_for(f, &g[1], 1, 5000);
    assert_int_equal(g[1].kind, TG_ERR_SERVER);
    assert_int_equal(g[1].error_code, 500);
    assert_int_equal(g[1].attempts, 3);
}

static void test_403_is_blocked(void **state)
{
    struct fx *f = *state;
    struct got g;
    memset(&g, 0, sizeof(g));
    reset(f);
    fault(f, "{\"method\":\"sendMessage\",\"kind\":\"403\",\"count\":1}");
    struct tg_send m = {.chat_id = 7, .text = "hello"};
    tg_send_message(f->tg, &m, on_result, &g);
    wait_for(f, &g, 1, 5000);
    assert_int_equal(g.kind, TG_ERR_BLOCKED);
    assert_int_equal(g.error_code, 403);
    assert_int_equal(g.attempts, 1);
    assert_has(g.description, "blocked by the user");
}

static void test_bad_request(void **state)
{
    struct fx *f = *state;
    struct got g;
    memset(&g, 0, sizeof(g));
    reset(f);
    struct tg_send m = {.chat_id = 8, .text = ""};
    tg_send_message(f->tg, &m, on_result, &g);
    wait_for(f, &g, 1, 5000);
    assert_int_equal(g.kind, TG_ERR_BAD_REQUEST);
    assert_int_equal(g.error_code, 400);
    assert_int_equal(g.attempts, 1);
    assert_has(g.description, "message text is empty");
}

static void test_network_error(void **state)
{
    struct fx *f = *state;
    struct got g;
    memset(&g, 0, sizeof(g));
    struct tg_client *dead = client(f, "http://127.0.0.1:1", 0);
    struct tg_send m = {.chat_id = 9, .text = "hello"};
    tg_send_message(dead, &m, on_result, &g);
    wait_for(f, &g, 1, 5000);
    assert_int_equal(g.kind, TG_ERR_NETWORK);
    assert_int_equal(g.attempts, 3);
    tg_client_close(dead);
}

static void test_limited_429_pauses_chat(void **state)
{
    struct fx *f = *state;
    struct got g[3];
    char err[128];
    memset(g, 0, sizeof(g));
    reset(f);
    const char *url = getenv("REDIS_URL");
    struct rds_opts ro = {url ? url : "redis://127.0.0.1:6380/0", 1000, 1000, 2000};
    f->redis = rds_new(&f->loop, &ro, err, sizeof(err));
    uint64_t until = vn_now_ms() + 5000;
    while (!rds_is_ready(f->redis) && vn_now_ms() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(rds_is_ready(f->redis));
    struct tg_client *lim = client(f, f->fake.url, 1);
    /* A 429 for chat 11 pauses that chat for everyone; chat 12 goes on. */
    fault(f, "{\"method\":\"sendMessage\",\"kind\":\"429\",\"retry_after\":1,\"count\":1,"
             "\"chat_id\":11}");
    struct tg_send a = {.chat_id = 11, .text = "first"};
    struct tg_send b = {.chat_id = 11, .text = "second"};
    struct tg_send c = {.chat_id = 12, .text = "other chat"};
    uint64_t t0 = vn_now_ms();
    tg_send_message(lim, &a, on_result, &g[0]);
    tg_send_message(lim, &b, on_result, &g[1]);
    tg_send_message(lim, &c, on_result, &g[2]);
    wait_for(f, g, 3, 8000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(g[i].kind, TG_OK);
    assert_true(g[2].at_ms - t0 < 500);   /* other chat not held up */
    assert_true(g[0].at_ms - t0 >= 1000); /* retried after retry_after */
    assert_true(g[1].at_ms - t0 >= 1000); /* the chat's next message waited too */
    tg_client_close(lim);
}

int main(void)
{
    vn_log_set_level(VN_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods_round_trip), cmocka_unit_test(test_get_updates),
        cmocka_unit_test(test_429_is_waited_out),  cmocka_unit_test(test_5xx_retried_then_given_up),
        cmocka_unit_test(test_403_is_blocked),     cmocka_unit_test(test_bad_request),
        cmocka_unit_test(test_network_error),      cmocka_unit_test(test_limited_429_pauses_chat),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
