/*
 * test_metrics.c - exact Prometheus text output of core/metrics.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"

/* The registry's whole text, compared in one go so order and spacing count. */
static void assert_format(const struct met_registry *r, const char *want)
{
    struct vn_buf b = VN_BUF_INIT;
    met_format(r, &b);
    assert_non_null(b.data);
    assert_string_equal(b.data, want);
    vn_buf_free(&b);
}

static void test_counter_no_labels(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    struct met_family *f = met_counter(r, "vn_updates_total", "Updates received.", NULL);
    assert_non_null(f);
    /* Exported as 0 before the first event. */
    assert_format(r, "# HELP vn_updates_total Updates received.\n"
                     "# TYPE vn_updates_total counter\n"
                     "vn_updates_total 0\n");
    struct met_series *s = met_get(f);
    met_inc(s);
    met_inc(s);
    met_add(s, 1);
    assert_true(met_get(f) == s);
    assert_true(met_value(s) == 3.0);
    assert_format(r, "# HELP vn_updates_total Updates received.\n"
                     "# TYPE vn_updates_total counter\n"
                     "vn_updates_total 3\n");
    met_registry_free(r);
}

static void test_counter_two_labels(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    struct met_family *f = met_counter(r, "http_requests_total", "HTTP requests.", "route,code");
    assert_non_null(f);
    /* A labelled family has no series until one is asked for. */
    assert_format(r, "# HELP http_requests_total HTTP requests.\n"
                     "# TYPE http_requests_total counter\n");
    struct met_series *a = met_get(f, "/webhook", "200");
    struct met_series *b = met_get(f, "/healthz", "503");
    assert_true(a != b);
    met_inc(a);
    met_add(a, 4);
    met_inc(b);
    assert_true(met_get(f, "/webhook", "200") == a);
    const char *const vals[] = {"/healthz", "503"};
    assert_true(met_getv(f, vals) == b);
    /* Series in creation order, not sorted. */
    assert_format(r, "# HELP http_requests_total HTTP requests.\n"
                     "# TYPE http_requests_total counter\n"
                     "http_requests_total{route=\"/webhook\",code=\"200\"} 5\n"
                     "http_requests_total{route=\"/healthz\",code=\"503\"} 1\n");
    met_registry_free(r);
}

static void test_gauge(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    struct met_family *f = met_gauge(r, "vn_queue_depth", "Items waiting.", "queue");
    assert_non_null(f);
    struct met_series *q = met_get(f, "send");
    struct met_series *t = met_get(f, "temp");
    met_set(q, 7);
    met_inc(q);
    met_add(q, -3);
    met_set(t, -12.5);
    assert_true(met_value(q) == 5.0);
    assert_format(r, "# HELP vn_queue_depth Items waiting.\n"
                     "# TYPE vn_queue_depth gauge\n"
                     "vn_queue_depth{queue=\"send\"} 5\n"
                     "vn_queue_depth{queue=\"temp\"} -12.5\n");
    met_set(q, -2);
    met_add(t, 12.5);
    assert_format(r, "# HELP vn_queue_depth Items waiting.\n"
                     "# TYPE vn_queue_depth gauge\n"
                     "vn_queue_depth{queue=\"send\"} -2\n"
                     "vn_queue_depth{queue=\"temp\"} 0\n");
    met_registry_free(r);
}

static void test_histogram_custom_buckets(void **state)
{
    (void)state;
    static const double bounds[] = {0.005, 1, 2.5};
    struct met_registry *r = met_registry_new();
    struct met_family *f = met_histogram(r, "vn_send_seconds", "Send latency.", "chat", bounds, 3);
    assert_non_null(f);
    struct met_series *s = met_get(f, "42");
    met_observe(s, 0.005); /* on a bound: counts in that bucket (le is inclusive) */
    met_observe(s, 0.5);
    met_observe(s, 1);   /* on a bound */
    met_observe(s, 2.5); /* on a bound */
    met_observe(s, 3);   /* only +Inf */
    assert_int_equal(met_count(s), 5);
    assert_true(met_value(s) == 0.005 + 0.5 + 1 + 2.5 + 3);
    assert_format(r, "# HELP vn_send_seconds Send latency.\n"
                     "# TYPE vn_send_seconds histogram\n"
                     "vn_send_seconds_bucket{chat=\"42\",le=\"0.005\"} 1\n"
                     "vn_send_seconds_bucket{chat=\"42\",le=\"1\"} 3\n"
                     "vn_send_seconds_bucket{chat=\"42\",le=\"2.5\"} 4\n"
                     "vn_send_seconds_bucket{chat=\"42\",le=\"+Inf\"} 5\n"
                     "vn_send_seconds_sum{chat=\"42\"} 7.005\n"
                     "vn_send_seconds_count{chat=\"42\"} 5\n");
    met_registry_free(r);
}

static void test_histogram_default_buckets_no_labels(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    struct met_family *f = met_histogram(r, "lat_seconds", "Latency.", "", NULL, 0);
    assert_non_null(f);
    met_observe(met_get(f), 0.003);
    met_observe(met_get(f), 20);
    assert_format(r, "# HELP lat_seconds Latency.\n"
                     "# TYPE lat_seconds histogram\n"
                     "lat_seconds_bucket{le=\"0.001\"} 0\n"
                     "lat_seconds_bucket{le=\"0.0025\"} 0\n"
                     "lat_seconds_bucket{le=\"0.005\"} 1\n"
                     "lat_seconds_bucket{le=\"0.01\"} 1\n"
                     "lat_seconds_bucket{le=\"0.025\"} 1\n"
                     "lat_seconds_bucket{le=\"0.05\"} 1\n"
                     "lat_seconds_bucket{le=\"0.1\"} 1\n"
                     "lat_seconds_bucket{le=\"0.25\"} 1\n"
                     "lat_seconds_bucket{le=\"0.5\"} 1\n"
                     "lat_seconds_bucket{le=\"1\"} 1\n"
                     "lat_seconds_bucket{le=\"2.5\"} 1\n"
                     "lat_seconds_bucket{le=\"5\"} 1\n"
                     "lat_seconds_bucket{le=\"10\"} 1\n"
                     "lat_seconds_bucket{le=\"+Inf\"} 2\n"
                     "lat_seconds_sum 20.003\n"
                     "lat_seconds_count 2\n");
    met_registry_free(r);
}

static void test_histogram_bad_buckets(void **state)
{
    (void)state;
    static const double unsorted[] = {1, 0.5};
    static const double repeated[] = {1, 1};
    static const double with_inf[] = {1, INFINITY};
    const double with_nan[] = {1, NAN};
    struct met_registry *r = met_registry_new();
    assert_null(met_histogram(r, "h1", "x", NULL, unsorted, 2));
    assert_null(met_histogram(r, "h2", "x", NULL, repeated, 2));
    assert_null(met_histogram(r, "h3", "x", NULL, with_nan, 2));
    /* An explicit trailing +Inf is the implicit one, not a second bucket. */
    struct met_family *f = met_histogram(r, "h4", "x", NULL, with_inf, 2);
    assert_non_null(f);
    met_observe(met_get(f), 1);
    assert_format(r, "# HELP h4 x\n"
                     "# TYPE h4 histogram\n"
                     "h4_bucket{le=\"1\"} 1\n"
                     "h4_bucket{le=\"+Inf\"} 1\n"
                     "h4_sum 1\n"
                     "h4_count 1\n");
    met_registry_free(r);
}

static void test_label_value_escaping(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    struct met_family *f = met_counter(r, "msgs_total", "Messages.", "text");
    met_inc(met_get(f, "say \"hi\""));
    met_inc(met_get(f, "C:\\dir"));
    met_inc(met_get(f, "line1\nline2"));
    met_inc(met_get(f, "Привет"));
    met_inc(met_get(f, ""));
    assert_format(r, "# HELP msgs_total Messages.\n"
                     "# TYPE msgs_total counter\n"
                     "msgs_total{text=\"say \\\"hi\\\"\"} 1\n"
                     "msgs_total{text=\"C:\\\\dir\"} 1\n"
                     "msgs_total{text=\"line1\\nline2\"} 1\n"
                     "msgs_total{text=\"Привет\"} 1\n"
                     "msgs_total{text=\"\"} 1\n");
    met_registry_free(r);
}

static void test_help_escaping(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    /* In HELP only backslash and newline are escaped; quotes stay as they are. */
    assert_non_null(met_gauge(r, "g", "a \\ b\nc \"d\"", NULL));
    /* No help: the HELP line is left out rather than printed empty. */
    assert_non_null(met_gauge(r, "g2", NULL, NULL));
    assert_non_null(met_gauge(r, "g3", "", NULL));
    assert_format(r, "# HELP g a \\\\ b\\nc \"d\"\n"
                     "# TYPE g gauge\n"
                     "g 0\n"
                     "# TYPE g2 gauge\n"
                     "g2 0\n"
                     "# TYPE g3 gauge\n"
                     "g3 0\n");
    met_registry_free(r);
}

static void test_invalid_names(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    /* Metric names. */
    assert_null(met_counter(r, "", "x", NULL));
    assert_null(met_counter(r, NULL, "x", NULL));
    assert_null(met_counter(r, "1abc", "x", NULL));
    assert_null(met_counter(r, "a-b", "x", NULL));
    assert_null(met_counter(r, "a b", "x", NULL));
    assert_null(met_counter(r, "a.b", "x", NULL));
    assert_null(met_counter(r, "счёт", "x", NULL));
    assert_non_null(met_counter(r, "_a:b_c9", "x", NULL));
    assert_non_null(met_counter(r, ":colon", "x", NULL));
    /* Label names. */
    assert_null(met_counter(r, "c1", "x", "1a"));
    assert_null(met_counter(r, "c2", "x", "a:b"));
    assert_null(met_counter(r, "c3", "x", "__reserved"));
    assert_null(met_counter(r, "c4", "x", "a,,b"));
    assert_null(met_counter(r, "c5", "x", "a,"));
    assert_null(met_counter(r, "c6", "x", "a,a"));
    assert_null(met_counter(r, "c7", "x", "a,b,c,d,e")); /* > MET_MAX_LABELS */
    assert_null(met_histogram(r, "h1", "x", "le", NULL, 0));
    assert_null(met_histogram(r, "h2", "x", "route,le", NULL, 0));
    /* le is only reserved on histograms; _x and a single _ are fine. */
    assert_non_null(met_counter(r, "c8", "x", "le"));
    assert_non_null(met_counter(r, "c9", "x", "_x, a_1 ,b,c"));
    /* Rejected declarations leave nothing behind. */
    assert_format(r, "# HELP _a:b_c9 x\n"
                     "# TYPE _a:b_c9 counter\n"
                     "_a:b_c9 0\n"
                     "# HELP :colon x\n"
                     "# TYPE :colon counter\n"
                     ":colon 0\n"
                     "# HELP c8 x\n"
                     "# TYPE c8 counter\n"
                     "# HELP c9 x\n"
                     "# TYPE c9 counter\n");
    met_registry_free(r);
}

static void test_duplicate_declaration(void **state)
{
    (void)state;
    static const double b1[] = {1, 2};
    static const double b2[] = {1, 3};
    struct met_registry *r = met_registry_new();
    struct met_family *f = met_counter(r, "dup_total", "First.", "a,b");
    assert_non_null(f);
    /* Same type and labels: the same family (help of the first wins). */
    assert_true(met_counter(r, "dup_total", "Second.", "a,b") == f);
    assert_true(met_counter(r, "dup_total", "Second.", " a , b ") == f);
    /* Conflicts: other type, other labels, other label order. */
    assert_null(met_gauge(r, "dup_total", "First.", "a,b"));
    assert_null(met_counter(r, "dup_total", "First.", "a"));
    assert_null(met_counter(r, "dup_total", "First.", "b,a"));
    assert_null(met_counter(r, "dup_total", "First.", NULL));
    assert_null(met_histogram(r, "dup_total", "First.", "a,b", NULL, 0));

    struct met_family *h = met_histogram(r, "dup_seconds", "H.", NULL, b1, 2);
    assert_non_null(h);
    assert_true(met_histogram(r, "dup_seconds", "H.", NULL, b1, 2) == h);
    assert_null(met_histogram(r, "dup_seconds", "H.", NULL, b2, 2));
    assert_null(met_histogram(r, "dup_seconds", "H.", NULL, NULL, 0));
    struct met_family *d = met_histogram(r, "dflt_seconds", "D.", NULL, NULL, 0);
    assert_true(met_histogram(r, "dflt_seconds", "D.", NULL, NULL, 0) == d);

    met_inc(met_get(f, "x", "y"));
    met_inc(met_get(met_counter(r, "dup_total", "Again.", "a,b"), "x", "y"));
    struct vn_buf b = VN_BUF_INIT;
    met_format(r, &b);
    assert_non_null(strstr(b.data, "# HELP dup_total First.\n"
                                   "# TYPE dup_total counter\n"
                                   "dup_total{a=\"x\",b=\"y\"} 2\n"
                                   "# HELP dup_seconds H.\n"));
    assert_null(strstr(b.data, "Second."));
    vn_buf_free(&b);
    met_registry_free(r);
}

static void test_counter_cannot_go_down(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    struct met_series *s = met_get(met_counter(r, "up_total", "Up.", NULL));
    met_add(s, 5);
    met_add(s, -1);
    met_add(s, -INFINITY);
    met_add(s, NAN);
    met_set(s, 0);
    met_observe(s, 100);
    assert_true(met_value(s) == 5.0);
    assert_int_equal(met_count(s), 0);
    met_add(s, 0);
    met_add(s, 0.25);
    assert_format(r, "# HELP up_total Up.\n"
                     "# TYPE up_total counter\n"
                     "up_total 5.25\n");
    met_registry_free(r);
}

static void test_value_formatting(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    struct met_family *f = met_gauge(r, "v", NULL, "k");
    met_set(met_get(f, "a"), 0.1);
    met_set(met_get(f, "b"), 0.1 + 0.2); /* needs 17 digits to round-trip */
    met_set(met_get(f, "c"), 1e-7);
    met_set(met_get(f, "d"), 1e20);
    met_set(met_get(f, "e"), 9007199254740992.0); /* 2^53: still an integer */
    met_set(met_get(f, "f"), INFINITY);
    met_set(met_get(f, "g"), -INFINITY);
    met_set(met_get(f, "h"), NAN);
    met_set(met_get(f, "i"), -0.0);
    met_set(met_get(f, "j"), 1234567.5);
    met_set(met_get(f, "k"), -3);
    assert_format(r, "# TYPE v gauge\n"
                     "v{k=\"a\"} 0.1\n"
                     "v{k=\"b\"} 0.30000000000000004\n"
                     "v{k=\"c\"} 1e-07\n"
                     "v{k=\"d\"} 1e+20\n"
                     "v{k=\"e\"} 9007199254740992\n"
                     "v{k=\"f\"} +Inf\n"
                     "v{k=\"g\"} -Inf\n"
                     "v{k=\"h\"} NaN\n"
                     "v{k=\"i\"} 0\n"
                     "v{k=\"j\"} 1234567.5\n"
                     "v{k=\"k\"} -3\n");
    met_registry_free(r);
}

static void test_family_order_and_null_safety(void **state)
{
    (void)state;
    struct met_registry *r = met_registry_new();
    struct met_family *z = met_gauge(r, "zeta", NULL, NULL);
    struct met_family *a = met_counter(r, "alpha_total", NULL, NULL);
    met_set(met_get(z), 1);
    met_inc(met_get(a));
    /* Declaration order, not alphabetical. */
    assert_format(r, "# TYPE zeta gauge\n"
                     "zeta 1\n"
                     "# TYPE alpha_total counter\n"
                     "alpha_total 1\n");
    /* A failed declaration's NULL flows through without crashing. */
    struct met_family *bad = met_counter(r, "bad name", NULL, NULL);
    assert_null(bad);
    assert_null(met_get(bad));
    met_inc(NULL);
    met_add(NULL, 1);
    met_set(NULL, 1);
    met_observe(NULL, 1);
    assert_true(met_value(NULL) == 0.0);
    assert_int_equal(met_count(NULL), 0);
    met_registry_free(r);
    met_registry_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_no_labels),
        cmocka_unit_test(test_counter_two_labels),
        cmocka_unit_test(test_gauge),
        cmocka_unit_test(test_histogram_custom_buckets),
        cmocka_unit_test(test_histogram_default_buckets_no_labels),
        cmocka_unit_test(test_histogram_bad_buckets),
        cmocka_unit_test(test_label_value_escaping),
        cmocka_unit_test(test_help_escaping),
        cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_duplicate_declaration),
        cmocka_unit_test(test_counter_cannot_go_down),
        cmocka_unit_test(test_value_formatting),
        cmocka_unit_test(test_family_order_and_null_safety),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
