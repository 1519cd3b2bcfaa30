/*
 * The conversation store against real Redis: commit, duplicate update_ids,
 * compare-and-set conflicts, the outbox and its lease shared by two owners,
 * and the sweeper's index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/log.h"
#include "core/redis.h"
#include "fsm/fsm_store.h"

struct fx {
    uv_loop_t loop;
    struct rds_client *redis;
    struct fsm_store *a, *b; /* two processes */
    int done;
    struct fsm_commit_result cr;
    char err[128];
    int status;
    int64_t value;
    char *batch;
    struct fsm_stored loaded;
    int keys_seen;
    int64_t last_chat;
};

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    const char *url = getenv("REDIS_URL");
    struct rds_opts o = {url ? url : "redis://127.0.0.1:6380/0", 1000, 1000, 2000};
    uv_loop_init(&f->loop);
    f->redis = rds_new(&f->loop, &o, f->err, sizeof(f->err));
    uint64_t until = vn_now_ms() + 5000;
    while (!rds_is_ready(f->redis) && vn_now_ms() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    if (!rds_is_ready(f->redis))
        return -1;
    struct fsm_store_opts so = {0};
    so.owner = "proc-a";
    f->a = fsm_store_new(f->redis, &so);
    so.owner = "proc-b";
    f->b = fsm_store_new(f->redis, &so);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fsm_store_free(f->a);
    fsm_store_free(f->b);
    rds_close(f->redis);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    free(f);
    return 0;
}

static void wait_done(struct fx *f)
{
    uint64_t until = vn_now_ms() + 5000;
    while (!f->done && vn_now_ms() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(f->done);
    f->done = 0;
}

static void on_commit(const struct fsm_commit_result *r, void *ud)
{
    struct fx *f = ud;
    f->cr = *r;
    f->cr.error = NULL;
    f->done = 1;
}

static void on_load(int status, struct fsm_stored *s, void *ud)
{
    struct fx *f = ud;
    f->status = status;
    fsm_stored_free(&f->loaded);
    if (s) {
        f->loaded = *s;
        f->loaded.flow = s->flow ? xstrdup(s->flow) : NULL;
        f->loaded.state = s->state ? xstrdup(s->state) : NULL;
        f->loaded.data_json = xstrdup(s->data_json);
    }
    f->done = 1;
}

static void on_int(int status, int64_t value, void *ud)
{
    struct fx *f = ud;
    f->status = status;
    f->value = value;
    f->done = 1;
}

static void on_batch(int status, const char *batch, void *ud)
{
    struct fx *f = ud;
    f->status = status;
    free(f->batch);
    f->batch = batch ? xstrdup(batch) : NULL;
    f->done = 1;
}

static struct fsm_conv_key fresh_key(void)
{
    struct fsm_conv_key k = {(int64_t)(vn_random_u32() % 1000000000u) + 1,
                             (int64_t)(vn_random_u32() % 1000000000u) + 1};
    return k;
}

static void commit(struct fx *f, struct fsm_store *st, struct fsm_conv_key k, int64_t expect,
                   int64_t update_id, const char *state, const char *effects)
{
    struct fsm_commit c = {"remind",  state, "{\"what\":\"milk\"}", 1000, 0, effects,
                           update_id, expect};
    assert_int_equal(fsm_store_commit(st, k, &c, on_commit, f), 0);
    wait_done(f);
}

static void test_commit_load_dedup_cas(void **state)
{
    struct fx *f = *state;
    struct fsm_conv_key k = fresh_key();
    assert_int_equal(fsm_store_load(f->a, k, on_load, f), 0);
    wait_done(f);
    assert_int_equal(f->loaded.version, 0);
    assert_null(f->loaded.flow);
    assert_string_equal(f->loaded.data_json, "{}");

    commit(f, f->a, k, 0, 100, "ask_when", NULL);
    assert_int_equal(f->cr.status, FSM_COMMIT_OK);
    assert_int_equal(f->cr.version, 1);
    assert_int_equal(f->cr.got_lease, 0); /* nothing in the outbox */

    assert_int_equal(fsm_store_load(f->a, k, on_load, f), 0);
    wait_done(f);
    assert_string_equal(f->loaded.flow, "remind");
    assert_string_equal(f->loaded.state, "ask_when");
    assert_string_equal(f->loaded.data_json, "{\"what\":\"milk\"}");
    assert_int_equal(f->loaded.version, 1);
    assert_int_equal(f->loaded.entered_at, 1000);

    /* the same update again: refused, nothing changes */
    commit(f, f->a, k, 1, 100, "other", NULL);
    assert_int_equal(f->cr.status, FSM_COMMIT_DUPLICATE);
    /* a stale version: conflict reporting the current one */
    commit(f, f->b, k, 0, 101, "other", NULL);
    assert_int_equal(f->cr.status, FSM_COMMIT_CONFLICT);
    assert_int_equal(f->cr.version, 1);
    /* a conflict does not mark the update as seen: the retry goes through */
    commit(f, f->b, k, 1, 101, "confirm", NULL);
    assert_int_equal(f->cr.status, FSM_COMMIT_OK);
    assert_int_equal(f->cr.version, 2);
    /* inputs that are not updates (timeouts, API) are never deduplicated */
    commit(f, f->a, k, 2, -1, "confirm", NULL);
    assert_int_equal(f->cr.status, FSM_COMMIT_OK);
    commit(f, f->a, k, 3, -1, "confirm", NULL);
    assert_int_equal(f->cr.status, FSM_COMMIT_OK);
    fsm_stored_free(&f->loaded);
}

static void test_outbox_and_lease(void **state)
{
    struct fx *f = *state;
    struct fsm_conv_key k = fresh_key();
    commit(f, f->a, k, 0, 1, "s1", "[{\"type\":\"send\",\"n\":1}]");
    assert_int_equal(f->cr.status, FSM_COMMIT_OK);
    assert_int_equal(f->cr.got_lease, 1);
    assert_int_equal(f->cr.outbox_len, 1);

    /* b commits the next step while a still executes: b gets no lease */
    commit(f, f->b, k, 1, 2, "s2", "[{\"type\":\"send\",\"n\":2}]");
    assert_int_equal(f->cr.status, FSM_COMMIT_OK);
    assert_int_equal(f->cr.got_lease, 0);
    assert_int_equal(f->cr.outbox_len, 2);
    assert_int_equal(fsm_store_outbox_head(f->b, k, on_batch, f), 0);
    wait_done(f);
    assert_null(f->batch); /* not b's to run */

    /* a runs the batches in order */
    assert_int_equal(fsm_store_outbox_head(f->a, k, on_batch, f), 0);
    wait_done(f);
    assert_string_equal(f->batch, "[{\"type\":\"send\",\"n\":1}]");
    assert_int_equal(fsm_store_outbox_pop(f->a, k, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, 1);
    /* releasing with work left is refused, so b's batch is not stranded */
    assert_int_equal(fsm_store_lease_release(f->a, k, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, 0);
    assert_int_equal(fsm_store_outbox_head(f->a, k, on_batch, f), 0);
    wait_done(f);
    assert_string_equal(f->batch, "[{\"type\":\"send\",\"n\":2}]");
    assert_int_equal(fsm_store_outbox_pop(f->a, k, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, 0);
    assert_int_equal(fsm_store_lease_release(f->a, k, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, 1);
    /* b cannot pop or release what it does not hold */
    assert_int_equal(fsm_store_outbox_pop(f->b, k, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, -1);
    free(f->batch);
    f->batch = NULL;
}

static void on_key(int status, struct fsm_conv_key k, void *ud)
{
    struct fx *f = ud;
    if (status == 0) {
        f->keys_seen++;
        f->last_chat = k.chat_id;
        return;
    }
    f->status = status;
    f->done = 1;
}

static struct fsm_conv_key want_key;

/* Like on_key, but remembers only the key the test looks for. */
static void on_key_match(int status, struct fsm_conv_key k, void *ud)
{
    struct fx *f = ud;
    if (status == 0) {
        if (k.chat_id == want_key.chat_id && k.user_id == want_key.user_id)
            f->last_chat = k.chat_id;
        return;
    }
    f->status = status;
    f->done = 1;
}

static void test_sweeper_finds_leftovers(void **state)
{
    struct fx *f = *state;
    struct fsm_conv_key k = fresh_key();
    want_key = k;
    /* a commits with effects and "crashes" before running them */
    commit(f, f->a, k, 0, 7, "s1", "[{\"type\":\"send\"}]");
    assert_int_equal(f->cr.got_lease, 1);
    /* b cannot take the lease while a's is alive */
    assert_int_equal(fsm_store_lease_take(f->b, k, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, 0);
    /* the index lists the conversation */
    f->keys_seen = 0;
    assert_int_equal(fsm_store_sweep(f->b, 0, 100000, on_key, f), 0);
    wait_done(f);
    assert_true(f->keys_seen >= 1);
    /* a's lease expires (simulated by deleting it); b takes over and runs it */
    char name[96], lease[112];
    fsm_conv_key_name(k, name, sizeof(name));
    snprintf(lease, sizeof(lease), "%s:lease", name);
    assert_int_equal(rds_command(f->redis, NULL, NULL, "DEL %s", lease), 0);
    assert_int_equal(fsm_store_lease_take(f->b, k, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, 1);
    /* taking over leaves the index entry while batches wait (a second crash
     * must still be found by a sweeper) */
    f->keys_seen = 0;
    f->last_chat = 0;
    assert_int_equal(fsm_store_sweep(f->a, 0, 100000, on_key_match, f), 0);
    wait_done(f);
    assert_int_equal(f->last_chat, k.chat_id);
    /* a take of a lease this process already holds counts as taken */
    assert_int_equal(fsm_store_lease_take(f->b, k, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, 1);
    assert_int_equal(fsm_store_outbox_head(f->b, k, on_batch, f), 0);
    wait_done(f);
    assert_string_equal(f->batch, "[{\"type\":\"send\"}]");
    free(f->batch);
    f->batch = NULL;
}

static void test_remember(void **state)
{
    struct fx *f = *state;
    struct fsm_conv_key k = fresh_key();
    commit(f, f->a, k, 0, 1, "ask", NULL);
    assert_int_equal(fsm_store_remember(f->a, k, "prompt_id", 4711, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, 1);
    assert_int_equal(fsm_store_load(f->a, k, on_load, f), 0);
    wait_done(f);
    assert_string_equal(f->loaded.data_json, "{\"what\":\"milk\",\"prompt_id\":4711}");
    /* 64-bit values survive exactly */
    assert_int_equal(fsm_store_remember(f->a, k, "big", 4503599627370497LL, on_int, f), 0);
    wait_done(f);
    assert_int_equal(fsm_store_load(f->a, k, on_load, f), 0);
    wait_done(f);
    assert_non_null(strstr(f->loaded.data_json, "\"big\":4503599627370497"));
    assert_int_equal(f->loaded.version, 3); /* a step that read an older version retries */
    fsm_stored_free(&f->loaded);
    /* a conversation that is gone is left alone */
    struct fsm_conv_key none = fresh_key();
    assert_int_equal(fsm_store_remember(f->a, none, "x", 1, on_int, f), 0);
    wait_done(f);
    assert_int_equal(f->value, 0);
}

int main(void)
{
    vn_log_set_level(VN_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_load_dedup_cas),
        cmocka_unit_test(test_outbox_and_lease),
        cmocka_unit_test(test_sweeper_finds_leftovers),
        cmocka_unit_test(test_remember),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
