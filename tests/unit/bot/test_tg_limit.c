/* Rate-limit math: the GCRA bucket and the per-chat bucket choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "bot/tg_limit.h"

static void test_burst_then_pace(void **state)
{
    (void)state;
    double tat = 0;
    /* burst 3 at 1000 ms interval: three at once, then one per second */
    assert_true(tg_gcra_take(&tat, 10000, 1000, 3) == 0);
    assert_true(tg_gcra_take(&tat, 10000, 1000, 3) == 0);
    assert_true(tg_gcra_take(&tat, 10000, 1000, 3) == 0);
    double w = tg_gcra_take(&tat, 10000, 1000, 3);
    assert_true(w > 999.9 && w < 1000.1);
    assert_true(tat > 12999.9 && tat < 13000.1); /* a denied take changes nothing */
    assert_true(tg_gcra_take(&tat, 11000, 1000, 3) == 0);
    assert_true(tg_gcra_take(&tat, 11500, 1000, 3) > 0);
    assert_true(tg_gcra_take(&tat, 12000, 1000, 3) == 0);
}

static void test_idle_refills_only_to_burst(void **state)
{
    (void)state;
    double tat = 0;
    assert_true(tg_gcra_take(&tat, 0, 1000, 3) == 0);
    /* a long idle period does not bank more than the burst */
    int granted = 0;
    while (tg_gcra_take(&tat, 100000, 1000, 3) == 0)
        granted++;
    assert_int_equal(granted, 3);
}

static void test_burst_one_spaces_evenly(void **state)
{
    (void)state;
    double tat = 0, now = 0;
    int sent = 0;
    /* Simulate a sender that sends as soon as allowed for 10 s at 30/s. */
    while (now < 10000) {
        double w = tg_gcra_take(&tat, now, 1000.0 / 30, 1);
        if (w == 0) {
            sent++;
            continue;
        }
        now += w;
    }
    assert_int_equal(sent, 300);
    /* In any 1 s window there are at most 30 sends: spacing is 33.3 ms. */
    double t2 = 0;
    assert_true(tg_gcra_take(&t2, 0, 1000.0 / 30, 1) == 0);
    double w = tg_gcra_peek(t2, 0, 1000.0 / 30, 1);
    assert_true(w > 33.3 && w < 33.4);
}

static void test_peek_does_not_take(void **state)
{
    (void)state;
    double tat = 0;
    assert_true(tg_gcra_peek(tat, 5, 100, 1) == 0);
    assert_true(tg_gcra_peek(tat, 5, 100, 1) == 0);
    assert_true(tat == 0);
}

static void test_bucket_choice(void **state)
{
    (void)state;
    struct tg_limit_cfg cfg;
    double iv;
    unsigned burst;
    tg_limit_cfg_default(&cfg);
    cfg.margin = 0;
    tg_limit_bucket(&cfg, 0, &iv, &burst);
    assert_true(iv > 33.33 && iv < 33.34);
    assert_int_equal(burst, 1);
    tg_limit_bucket(&cfg, 12345, &iv, &burst); /* private chat */
    assert_true(iv == 1000);
    assert_int_equal(burst, 3);
    tg_limit_bucket(&cfg, -1001234567890LL, &iv, &burst); /* group */
    assert_true(iv == 3000);
    assert_int_equal(burst, 3);
    /* a margin paces a little under the limit: 2% -> interval / 0.98 */
    cfg.margin = 0.02;
    tg_limit_bucket(&cfg, 12345, &iv, &burst);
    assert_true(iv > 1020.4 && iv < 1020.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_pace),
        cmocka_unit_test(test_idle_refills_only_to_burst),
        cmocka_unit_test(test_burst_one_spaces_evenly),
        cmocka_unit_test(test_peek_does_not_take),
        cmocka_unit_test(test_bucket_choice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
