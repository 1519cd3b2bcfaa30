/*
 * The rate limiter against real Redis: global pacing, per-chat bursts, two
 * limiters sharing Redis (two processes) staying inside one limit together,
 * 429 pauses seen by the other limiter, and the in-process fallback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bot/tg_limit.h"
#include "core/common.h"
#include "core/log.h"
#include "core/redis.h"

#define MAXG 256

struct run {
    uv_loop_t loop;
    struct rds_client *r1, *r2;
    struct tg_limiter *l1, *l2;
    uint64_t t0;
    uint64_t granted_at[MAXG];
    int granted;
    int want;
    uv_timer_t guard;
    char bot[40];
};

static const char *redis_url(void)
{
    const char *u = getenv("REDIS_URL");
    return u && *u ? u : "redis://127.0.0.1:6380/0";
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    fail_msg("limiter test timed out");
}

static void wait_ready(struct run *r, struct rds_client *c)
{
    uint64_t until = vn_now_ms() + 5000;
    while (!rds_is_ready(c) && vn_now_ms() < until)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_true(rds_is_ready(c));
}

static struct run *run_new(int two, const struct tg_limit_cfg *cfg)
{
    struct run *r = xcalloc(1, sizeof(*r));
    char err[128];
    struct rds_opts o = {redis_url(), 1000, 1000, 2000};
    uv_loop_init(&r->loop);
    uv_timer_init(&r->loop, &r->guard);
    char hex[17];
    vn_random_hex(hex, 8);
    snprintf(r->bot, sizeof(r->bot), "test%s", hex);
    r->r1 = rds_new(&r->loop, &o, err, sizeof(err));
    assert_non_null(r->r1);
    wait_ready(r, r->r1);
    r->l1 = tg_limiter_new(&r->loop, r->r1, r->bot, cfg);
    if (two) {
        r->r2 = rds_new(&r->loop, &o, err, sizeof(err));
        wait_ready(r, r->r2);
        r->l2 = tg_limiter_new(&r->loop, r->r2, r->bot, cfg);
    }
    return r;
}

static void run_free(struct run *r)
{
    tg_limiter_close(r->l1);
    tg_limiter_close(r->l2);
    rds_close(r->r1);
    rds_close(r->r2);
    uv_close((uv_handle_t *)&r->guard, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    free(r);
}

static void on_grant(int status, void *ud)
{
    struct run *r = ud;
    assert_int_equal(status, 0);
    if (r->granted < MAXG)
        r->granted_at[r->granted] = vn_now_ms() - r->t0;
    r->granted++;
}

static void run_until(struct run *r, int want, uint64_t max_ms)
{
    r->want = want;
    uv_timer_start(&r->guard, on_guard, max_ms, 0);
    while (r->granted < want)
        uv_run(&r->loop, UV_RUN_ONCE);
    uv_timer_stop(&r->guard);
}

/* Most grants within any window_ms (sliding over the grant times). */
static int max_in_window(const struct run *r, uint64_t window_ms)
{
    int best = 0;
    for (int i = 0; i < r->granted && i < MAXG; i++) {
        int n = 0;
        for (int j = i; j < r->granted && j < MAXG; j++)
            if (r->granted_at[j] - r->granted_at[i] < window_ms)
                n++;
        if (n > best)
            best = n;
    }
    return best;
}

static void cfg_plain(struct tg_limit_cfg *c)
{
    tg_limit_cfg_default(c);
    c->margin = 0;
}

static void test_global_pacing(void **state)
{
    (void)state;
    struct tg_limit_cfg cfg;
    cfg_plain(&cfg);
    struct run *r = run_new(0, &cfg);
    r->t0 = vn_now_ms();
    for (int i = 0; i < 61; i++)
        tg_limiter_acquire(r->l1, 0, on_grant, r);
    run_until(r, 61, 10000);
    uint64_t took = r->granted_at[60];
    printf("# 61 global grants in %llu ms (ideal 2000)\n", (unsigned long long)took);
    assert_true(took >= 1950 && took < 2600);
    assert_true(max_in_window(r, 1000) <= 31);
    run_free(r);
}

static void test_chat_burst(void **state)
{
    (void)state;
    struct tg_limit_cfg cfg;
    cfg_plain(&cfg);
    struct run *r = run_new(0, &cfg);
    r->t0 = vn_now_ms();
    for (int i = 0; i < 5; i++)
        tg_limiter_acquire(r->l1, 4242, on_grant, r);
    run_until(r, 5, 6000);
    /* burst of 3 at once, then one per second */
    assert_true(r->granted_at[2] < 300);
    assert_true(r->granted_at[3] >= 950 && r->granted_at[3] < 1500);
    assert_true(r->granted_at[4] >= 1950 && r->granted_at[4] < 2500);
    run_free(r);
}

static void test_no_head_of_line_blocking(void **state)
{
    (void)state;
    struct tg_limit_cfg cfg;
    cfg_plain(&cfg);
    struct run *r = run_new(0, &cfg);
    r->t0 = vn_now_ms();
    /* chat 1 gets 5 (2 of them must wait), then chat 2 gets 1: it must not
     * wait behind chat 1's queue. */
    for (int i = 0; i < 5; i++)
        tg_limiter_acquire(r->l1, 1, on_grant, r);
    tg_limiter_acquire(r->l1, 2, on_grant, r);
    run_until(r, 4, 3000);
    /* The 4th grant is chat 2's, right after chat 1's burst. */
    assert_true(r->granted_at[3] < 400);
    run_until(r, 6, 5000);
    run_free(r);
}

static void test_two_processes_share_limit(void **state)
{
    (void)state;
    struct tg_limit_cfg cfg;
    cfg_plain(&cfg);
    struct run *r = run_new(1, &cfg);
    r->t0 = vn_now_ms();
    for (int i = 0; i < 60; i++)
        tg_limiter_acquire(i % 2 ? r->l1 : r->l2, 0, on_grant, r);
    run_until(r, 60, 10000);
    uint64_t took = r->granted_at[59];
    printf("# 60 grants over two limiters in %llu ms (one shared 30/s limit: ~1967)\n",
           (unsigned long long)took);
    /* Alone each would do 30 in 1 s; together they share 30/s. */
    assert_true(took >= 1900);
    assert_true(max_in_window(r, 1000) <= 31);
    run_free(r);
}

static void test_penalty_is_shared(void **state)
{
    (void)state;
    struct tg_limit_cfg cfg;
    cfg_plain(&cfg);
    struct run *r = run_new(1, &cfg);
    /* limiter 1 got a 429 for chat 77 with retry_after 1 s ... */
    tg_limiter_penalize(r->l1, 77, 1);
    uv_run(&r->loop, UV_RUN_NOWAIT);
    /* give the pause script time to land */
    uint64_t until = vn_now_ms() + 50;
    while (vn_now_ms() < until)
        uv_run(&r->loop, UV_RUN_NOWAIT);
    r->t0 = vn_now_ms();
    /* ... so limiter 2 waits too for that chat, but not for another. */
    tg_limiter_acquire(r->l2, 78, on_grant, r);
    tg_limiter_acquire(r->l2, 77, on_grant, r);
    run_until(r, 2, 4000);
    assert_true(r->granted_at[0] < 200);
    assert_true(r->granted_at[1] >= 850);
    run_free(r);
}

static void test_local_fallback(void **state)
{
    (void)state;
    struct tg_limit_cfg cfg;
    cfg_plain(&cfg);
    struct run *r = xcalloc(1, sizeof(*r));
    uv_loop_init(&r->loop);
    uv_timer_init(&r->loop, &r->guard);
    /* Redis is configured but unreachable: limits still hold, in process. */
    char err[128];
    struct rds_opts o = {"redis://127.0.0.1:1/0", 1000, 1000, 500};
    r->r1 = rds_new(&r->loop, &o, err, sizeof(err));
    r->l1 = tg_limiter_new(&r->loop, r->r1, "fallback", &cfg);
    r->t0 = vn_now_ms();
    for (int i = 0; i < 5; i++)
        tg_limiter_acquire(r->l1, 9, on_grant, r);
    run_until(r, 5, 6000);
    assert_true(r->granted_at[2] < 300);
    assert_true(r->granted_at[3] >= 950);
    assert_true(r->granted_at[4] >= 1950);
    run_free(r);
}

int main(void)
{
    vn_log_set_level(VN_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_pacing),
        cmocka_unit_test(test_chat_burst),
        cmocka_unit_test(test_no_head_of_line_blocking),
        cmocka_unit_test(test_two_processes_share_limit),
        cmocka_unit_test(test_penalty_is_shared),
        cmocka_unit_test(test_local_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
