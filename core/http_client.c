#include "http_client.h"
#include "common.h"
#include "log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Easy handles kept for reuse: creating one per request (allocating and
 * clearing curl's large per-handle state) was the client's main cost at
 * thousands of requests per second. */
#define HC_SPARE_MAX 256

struct hc_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    unsigned inflight;
    int closing;
    int verbose; /* VN_HTTP_CLIENT_VERBOSE=1: curl traces to stderr (debugging) */
    char *user_agent;
    struct hc_call *calls;     /* in-flight list, for close */
    CURL *spare[HC_SPARE_MAX]; /* finished easy handles, reset for the next request */
    size_t n_spare;
};

struct hc_call {
    struct hc_call *prev, *next;
    struct hc_client *c;
    CURL *easy;
    struct curl_slist *headers;
    void *body;
    struct vn_buf resp;
    size_t max_response;
    int too_big;
    char errbuf[CURL_ERROR_SIZE];
    hc_done_fn cb;
    void *ud;
};

/* One per socket curl asks us to watch. */
struct hc_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct hc_client *c;
};

static void check_done(struct hc_client *c);

static void sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct hc_sock *s = h->data;
    struct hc_client *c = s->c;
    int flags = 0, running = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_done(c);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct hc_client *c = userp;
    struct hc_sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, sock_closed);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct hc_client *c = t->data;
    int running = 0;
    long next = -1;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
    /* A timer that fired before curl's own deadline (see on_timer) finds
     * nothing to do, and curl does not ask again for a deadline it already
     * gave: re-arm from curl's view of the time left. */
    if (c->multi && !uv_is_active((uv_handle_t *)&c->timer) &&
        curl_multi_timeout(c->multi, &next) == CURLM_OK && next >= 0)
        uv_timer_start(&c->timer, on_timeout, (uint64_t)next, 0);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct hc_client *c = userp;
    (void)multi;
    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
        return 0;
    }
    /* libuv measures timers from the loop's cached "now", which is stale
     * after a slow callback (or when called from outside the loop); refresh
     * it so the timer does not fire before curl's deadline. */
    uv_update_time(c->loop);
    uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct hc_call *call = ud;
    size_t n = size * nmemb;
    if (call->resp.len + n > call->max_response) {
        call->too_big = 1;
        return 0; /* curl aborts with CURLE_WRITE_ERROR */
    }
    vn_buf_append(&call->resp, ptr, n);
    return n;
}

static void call_unlink(struct hc_client *c, struct hc_call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    c->inflight--;
}

/* Report and free one finished call. */
static void call_finish(struct hc_client *c, struct hc_call *call, CURLcode code,
                        const char *override_error)
{
    struct hc_response r;
    memset(&r, 0, sizeof(r));
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME, &r.seconds);
    r.body = call->resp.data ? call->resp.data : "";
    r.len = call->resp.len;
    if (override_error) {
        r.error = override_error;
        r.status = 0;
    } else if (call->too_big) {
        r.error = "response body over the size limit";
        r.status = 0;
    } else if (code != CURLE_OK) {
        r.error = call->errbuf[0] ? call->errbuf : curl_easy_strerror(code);
        r.timed_out = code == CURLE_OPERATION_TIMEDOUT;
        r.status = 0;
    }
    call_unlink(c, call);
    curl_multi_remove_handle(c->multi, call->easy);
    call->cb(&r, call->ud);
    if (c->n_spare < HC_SPARE_MAX && !c->closing) {
        curl_easy_reset(call->easy);
        c->spare[c->n_spare++] = call->easy;
    } else {
        curl_easy_cleanup(call->easy);
    }
    curl_slist_free_all(call->headers);
    free(call->body);
    vn_buf_free(&call->resp);
    free(call);
}

static void check_done(struct hc_client *c)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct hc_call *call = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        call_finish(c, call, msg->data.result, NULL);
    }
}

struct hc_client *hc_new(uv_loop_t *loop, const struct hc_opts *opt)
{
    static int curl_ready;
    if (!curl_ready) {
        /* Not thread-safe in old curls; called from the loop thread at start. */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    struct hc_client *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->multi = curl_multi_init();
    c->user_agent = xstrdup(opt && opt->user_agent ? opt->user_agent : "vestnik/" VN_VERSION);
    const char *v = getenv("VN_HTTP_CLIENT_VERBOSE");
    c->verbose = v && *v == '1';
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    if (opt && opt->max_host_connections)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, opt->max_host_connections);
    if (opt && opt->max_total_connections)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, opt->max_total_connections);
    return c;
}

int hc_request(struct hc_client *c, const struct hc_request *req, hc_done_fn cb, void *ud)
{
    if (c->closing)
        return VN_ESTATE;
    if (req->url == NULL || req->method == NULL || cb == NULL)
        return VN_EINVAL;
    struct hc_call *call = xcalloc(1, sizeof(*call));
    call->c = c;
    call->cb = cb;
    call->ud = ud;
    call->max_response = req->max_response ? req->max_response : 8u * 1024u * 1024u;
    call->easy = c->n_spare ? c->spare[--c->n_spare] : curl_easy_init();
    CURL *e = call->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->verbose)
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (req->body || req->len) {
        call->body = xmalloc(req->len + 1);
        if (req->len)
            memcpy(call->body, req->body, req->len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    /* curl adds "Expect: 100-continue" to larger POSTs; it only costs a round trip here. */
    call->headers = curl_slist_append(call->headers, "Expect:");
    for (const char *const *h = req->headers; h && *h; h++)
        call->headers = curl_slist_append(call->headers, *h);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);

    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->inflight++;
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        call_unlink(c, call);
        curl_easy_cleanup(e);
        curl_slist_free_all(call->headers);
        free(call->body);
        free(call);
        return VN_EINVAL;
    }
    return 0;
}

unsigned hc_inflight(const struct hc_client *c)
{
    return c->inflight;
}

static void timer_closed(uv_handle_t *h)
{
    struct hc_client *c = h->data;
    free(c->user_agent);
    free(c);
}

void hc_close(struct hc_client *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    while (c->calls)
        call_finish(c, c->calls, CURLE_ABORTED_BY_CALLBACK, "client closing");
    /* Cleanup closes cached connections, which calls on_socket(REMOVE). */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->n_spare)
        curl_easy_cleanup(c->spare[--c->n_spare]);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}
