/* Route table: matching, parameters, 404 vs 405, pattern validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/http_route.h"

static void h_a(struct http_request *req, void *ud)
{
    (void)req;
    (void)ud;
}

static void h_b(struct http_request *req, void *ud)
{
    (void)req;
    (void)ud;
}

static struct http_router *make(void)
{
    struct http_router *r = http_router_new();
    assert_int_equal(http_router_add(r, HTTP_GET, "/healthz", h_a, "health"), 0);
    assert_int_equal(http_router_add(r, HTTP_POST, "/v1/notifications", h_a, "post"), 0);
    assert_int_equal(http_router_add(r, HTTP_GET, "/v1/notifications/{id}", h_b, "get"), 0);
    assert_int_equal(http_router_add(r, HTTP_GET, "/v1/notifications/stats", h_a, "stats"), 0);
    assert_int_equal(http_router_add(r, HTTP_PUT | HTTP_DELETE, "/v1/users/{id}", h_b, "user"), 0);
    assert_int_equal(http_router_add(r, HTTP_GET, "/v1/users/{user}/links/{link}", h_a, "link"), 0);
    return r;
}

static void test_literal_match(void **state)
{
    (void)state;
    struct http_router *r = make();
    struct http_match m;
    assert_int_equal(http_router_match(r, HTTP_GET, "/healthz", &m), 0);
    assert_string_equal(m.route->ud, "health");
    assert_int_equal(m.nparams, 0);
    /* GET routes answer HEAD too. */
    assert_int_equal(http_router_match(r, HTTP_HEAD, "/healthz", &m), 0);
    /* No prefix or trailing-slash matching. */
    assert_int_equal(http_router_match(r, HTTP_GET, "/healthz/", &m), VN_ENOENT);
    assert_int_equal(http_router_match(r, HTTP_GET, "/health", &m), VN_ENOENT);
    assert_int_equal(http_router_match(r, HTTP_GET, "/healthzz", &m), VN_ENOENT);
    assert_int_equal(http_router_match(r, HTTP_GET, "", &m), VN_ENOENT);
    http_router_free(r);
}

static void test_params(void **state)
{
    (void)state;
    struct http_router *r = make();
    struct http_match m;
    assert_int_equal(http_router_match(r, HTTP_GET, "/v1/notifications/abc-123", &m), 0);
    assert_string_equal(m.route->ud, "get");
    assert_int_equal(m.nparams, 1);
    assert_int_equal(m.params[0].name_len, 2);
    assert_memory_equal(m.params[0].name, "id", 2);
    assert_int_equal(m.params[0].len, 7);
    assert_memory_equal(m.params[0].value, "abc-123", 7);

    assert_int_equal(http_router_match(r, HTTP_GET, "/v1/users/u1/links/77", &m), 0);
    assert_int_equal(m.nparams, 2);
    assert_memory_equal(m.params[0].value, "u1", 2);
    assert_memory_equal(m.params[1].value, "77", 2);

    /* An empty segment never fills a parameter. */
    assert_int_equal(http_router_match(r, HTTP_GET, "/v1/notifications/", &m), VN_ENOENT);
    /* Too many segments. */
    assert_int_equal(http_router_match(r, HTTP_GET, "/v1/notifications/a/b", &m), VN_ENOENT);
    http_router_free(r);
}

static void test_literal_beats_param(void **state)
{
    (void)state;
    struct http_router *r = make();
    struct http_match m;
    assert_int_equal(http_router_match(r, HTTP_GET, "/v1/notifications/stats", &m), 0);
    assert_string_equal(m.route->ud, "stats");
    assert_int_equal(m.nparams, 0);
    http_router_free(r);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    struct http_router *r = make();
    struct http_match m;
    char allow[64];
    assert_int_equal(http_router_match(r, HTTP_DELETE, "/healthz", &m), VN_ECONFLICT);
    http_methods_format(m.allowed, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD");

    assert_int_equal(http_router_match(r, HTTP_GET, "/v1/notifications", &m), VN_ECONFLICT);
    http_methods_format(m.allowed, allow, sizeof(allow));
    assert_string_equal(allow, "POST");

    assert_int_equal(http_router_match(r, HTTP_POST, "/v1/users/9", &m), VN_ECONFLICT);
    http_methods_format(m.allowed, allow, sizeof(allow));
    assert_string_equal(allow, "PUT, DELETE");
    http_router_free(r);
}

static void test_bad_patterns(void **state)
{
    (void)state;
    struct http_router *r = http_router_new();
    assert_int_equal(http_router_add(r, HTTP_GET, "healthz", h_a, NULL), VN_EINVAL);
    assert_int_equal(http_router_add(r, HTTP_GET, "/a{id}", h_a, NULL), VN_EINVAL);
    assert_int_equal(http_router_add(r, HTTP_GET, "/a/{}", h_a, NULL), VN_EINVAL);
    assert_int_equal(http_router_add(r, HTTP_GET, "/a/{i-d}", h_a, NULL), VN_EINVAL);
    assert_int_equal(http_router_add(r, HTTP_GET, "/a/{id", h_a, NULL), VN_EINVAL);
    assert_int_equal(http_router_add(r, HTTP_GET, "/{a}/{b}/{c}/{d}/{e}", h_a, NULL), VN_EINVAL);
    assert_int_equal(http_router_add(r, 0, "/x", h_a, NULL), VN_EINVAL);
    assert_int_equal(http_router_add(r, HTTP_GET, "/x", NULL, NULL), VN_EINVAL);
    /* Same pattern and overlapping method is a conflict; another method is fine. */
    assert_int_equal(http_router_add(r, HTTP_GET, "/x", h_a, NULL), 0);
    assert_int_equal(http_router_add(r, HTTP_GET, "/x", h_b, NULL), VN_ECONFLICT);
    assert_int_equal(http_router_add(r, HTTP_POST, "/x", h_b, NULL), 0);
    http_router_free(r);
}

static void test_method_names(void **state)
{
    (void)state;
    assert_int_equal(http_method_parse("GET", 3), HTTP_GET);
    assert_int_equal(http_method_parse("DELETE", 6), HTTP_DELETE);
    assert_int_equal(http_method_parse("get", 3), 0);
    assert_int_equal(http_method_parse("BREW", 4), 0);
    assert_string_equal(http_method_name(HTTP_PATCH), "PATCH");
    char buf[8];
    http_methods_format(HTTP_GET | HTTP_POST | HTTP_PUT, buf, sizeof(buf));
    assert_string_equal(buf, "GET"); /* truncated at a whole name, never mid-name */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_match),       cmocka_unit_test(test_params),
        cmocka_unit_test(test_literal_beats_param), cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_bad_patterns),        cmocka_unit_test(test_method_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
