/*
 * HTTP server + HTTP client together on one loop, over loopback: routing,
 * JSON errors, body limits, async answers, many requests in flight, and a
 * client that leaves before its answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "core/common.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/metrics.h"

struct fixture {
    uv_loop_t loop;
    struct http_router *router;
    struct http_server *srv;
    struct hc_client *hc;
    struct met_registry *metrics;
    int port;
    int pending;      /* client requests not yet answered */
    uv_timer_t guard; /* fails the test instead of hanging */
};

struct result {
    long status;
    char body[4096];
    char error[256];
    int done;
};

static void h_ping(struct http_request *req, void *ud)
{
    (void)ud;
    http_respond(req, 200, "text/plain", "pong", 4);
}

/* Echo a JSON body back; 400 with the parser's reason when it is not JSON. */
static void h_echo(struct http_request *req, void *ud)
{
    (void)ud;
    enum json_tokener_error jerr = json_tokener_success;
    json_object *obj = json_tokener_parse_verbose(req->body.data ? req->body.data : "", &jerr);
    if (obj == NULL) {
        http_respond_error(req, 400, "bad_json", "body is not JSON: %s",
                           json_tokener_error_desc(jerr));
        return;
    }
    const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
    http_respond(req, 200, "application/json", s, strlen(s));
    json_object_put(obj);
}

static void h_item(struct http_request *req, void *ud)
{
    char id[32];
    (void)ud;
    if (http_req_param(req, "id", id, sizeof(id)) == NULL) {
        http_respond_error(req, 400, "bad_id", "id too long");
        return;
    }
    http_respond(req, 200, "text/plain", id, strlen(id));
}

struct slow {
    uv_timer_t t;
    struct http_request *req;
};

static void slow_closed(uv_handle_t *h)
{
    free(h->data);
}

static void slow_fire(uv_timer_t *t)
{
    struct slow *s = t->data;
    http_respond(s->req, 200, "text/plain", "late", 4);
    uv_close((uv_handle_t *)&s->t, slow_closed);
}

/* Answers 150 ms later from a timer: the async path. */
static void h_slow(struct http_request *req, void *ud)
{
    struct fixture *f = ud;
    struct slow *s = xcalloc(1, sizeof(*s));
    s->req = req;
    uv_timer_init(&f->loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, slow_fire, 150, 0);
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    fail_msg("test timed out waiting for HTTP answers");
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    char err[256];
    uv_loop_init(&f->loop);
    f->router = http_router_new();
    f->metrics = met_registry_new();
    assert_int_equal(http_router_add(f->router, HTTP_GET, "/ping", h_ping, f), 0);
    assert_int_equal(http_router_add(f->router, HTTP_POST, "/echo", h_echo, f), 0);
    assert_int_equal(http_router_add(f->router, HTTP_GET, "/items/{id}", h_item, f), 0);
    assert_int_equal(http_router_add(f->router, HTTP_GET, "/slow", h_slow, f), 0);
    struct http_server_opts o = {"127.0.0.1", 0, 1024, 10, f->metrics};
    f->srv = http_server_new(&f->loop, &o, f->router, err, sizeof(err));
    assert_non_null(f->srv);
    f->port = http_server_port(f->srv);
    assert_true(f->port > 0);
    f->hc = hc_new(&f->loop, NULL);
    uv_timer_init(&f->loop, &f->guard);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    hc_close(f->hc);
    http_server_close(f->srv);
    uv_close((uv_handle_t *)&f->guard, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    http_server_free(f->srv);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    http_router_free(f->router);
    met_registry_free(f->metrics);
    free(f);
    return 0;
}

static struct fixture *cur;

static void on_done(const struct hc_response *r, void *ud)
{
    struct result *res = ud;
    res->status = r->status;
    snprintf(res->body, sizeof(res->body), "%.*s", (int)r->len, r->body);
    snprintf(res->error, sizeof(res->error), "%s", r->error ? r->error : "");
    res->done = 1;
    if (--cur->pending == 0)
        uv_timer_stop(&cur->guard);
}

static void start(struct fixture *f, const char *method, const char *path, const char *body,
                  size_t len, long timeout_ms, struct result *res)
{
    char url[256];
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", f->port, path);
    struct hc_request rq = {method, url, hdrs, body, len, timeout_ms, 0};
    cur = f;
    f->pending++;
    assert_int_equal(hc_request(f->hc, &rq, on_done, res), 0);
}

/* Run the loop until every started request is answered (or the guard fires). */
static void wait_all(struct fixture *f)
{
    uv_timer_start(&f->guard, on_guard, 10000, 0);
    while (f->pending > 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->guard);
}

static void request(struct fixture *f, const char *method, const char *path, const char *body,
                    struct result *res)
{
    memset(res, 0, sizeof(*res));
    start(f, method, path, body, body ? strlen(body) : 0, 5000, res);
    wait_all(f);
}

static void assert_error_code(const struct result *r, const char *code)
{
    json_object *obj = json_tokener_parse(r->body), *err = NULL, *c = NULL;
    assert_non_null(obj);
    assert_true(json_object_object_get_ex(obj, "error", &err));
    assert_true(json_object_object_get_ex(err, "code", &c));
    assert_string_equal(json_object_get_string(c), code);
    json_object_put(obj);
}

static void test_routes(void **state)
{
    struct fixture *f = *state;
    struct result r;
    request(f, "GET", "/ping", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "pong");

    request(f, "GET", "/items/42", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "42");

    request(f, "GET", "/nope", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_error_code(&r, "not_found");
    assert_non_null(strstr(r.body, "/nope"));

    request(f, "DELETE", "/ping", NULL, &r);
    assert_int_equal(r.status, 405);
    assert_error_code(&r, "method_not_allowed");
    assert_non_null(strstr(r.body, "GET, HEAD"));
}

static void test_bodies(void **state)
{
    struct fixture *f = *state;
    struct result r;
    request(f, "POST", "/echo", "{\"a\": [1, 2, \"три\"]}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"a\":[1,2,\"три\"]}");

    request(f, "POST", "/echo", "{\"a\": ", &r);
    assert_int_equal(r.status, 400);
    assert_error_code(&r, "bad_json");

    /* Over the 1 KiB limit: 413 with a JSON body, and the server lives on. */
    char *big = xmalloc(4097);
    memset(big, 'x', 4096);
    big[4096] = '\0';
    request(f, "POST", "/echo", big, &r);
    free(big);
    assert_int_equal(r.status, 413);
    assert_error_code(&r, "payload_too_large");
    request(f, "GET", "/ping", NULL, &r);
    assert_int_equal(r.status, 200);
}

static void test_many_in_flight(void **state)
{
    struct fixture *f = *state;
    enum { N = 200 };
    struct result *r = xcalloc(N, sizeof(*r));
    uint64_t t0 = vn_now_ms();
    for (int i = 0; i < N; i++)
        start(f, "GET", "/slow", NULL, 0, 5000, &r[i]);
    wait_all(f);
    uint64_t took = vn_now_ms() - t0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].status, 200);
        assert_string_equal(r[i].body, "late");
    }
    /* 200 answers that each wait 150 ms were served concurrently, not in series
     * (in series would be 30 s). */
    assert_true(took < 5000);
    assert_int_equal(http_server_inflight(f->srv), 0);
    free(r);
}

static void noop_timer(uv_timer_t *t)
{
    (void)t; /* a one-shot timer goes inactive after firing */
}

static void test_client_leaves_early(void **state)
{
    struct fixture *f = *state;
    struct result r;
    memset(&r, 0, sizeof(r));
    start(f, "GET", "/slow", NULL, 0, 30, &r); /* gives up before the 150 ms answer */
    wait_all(f);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "timed out"));
    /* Let the handler answer into the void; then the server still serves. */
    uv_timer_t wait;
    uv_timer_init(&f->loop, &wait);
    uv_timer_start(&wait, noop_timer, 300, 0);
    while (uv_is_active((uv_handle_t *)&wait))
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wait, NULL);
    assert_int_equal(http_server_inflight(f->srv), 0);
    request(f, "GET", "/ping", NULL, &r);
    assert_int_equal(r.status, 200);
}

static void test_metrics_counted(void **state)
{
    struct fixture *f = *state;
    struct result r;
    request(f, "GET", "/ping", NULL, &r);
    request(f, "GET", "/ping", NULL, &r);
    request(f, "GET", "/nope", NULL, &r);
    struct vn_buf b = VN_BUF_INIT;
    met_format(f->metrics, &b);
    assert_non_null(strstr(
        b.data, "vestnik_http_requests_total{route=\"/ping\",method=\"GET\",code=\"200\"} 2"));
    assert_non_null(strstr(
        b.data, "vestnik_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} 1"));
    assert_non_null(
        strstr(b.data, "vestnik_http_request_duration_seconds_count{route=\"/ping\"} 2"));
    vn_buf_free(&b);
}

int main(void)
{
    vn_log_set_level(VN_LOG_WARN);
    vn_log_route_lws();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_leaves_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_counted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
