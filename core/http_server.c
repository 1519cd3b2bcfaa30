#include "http_server.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR_MAX 1024 /* longest captured header value */

struct http_server {
    struct lws_context *ctx;
    struct http_router *router;
    size_t max_body;
    unsigned inflight;
    int port;
    struct met_family *m_requests;
    struct met_family *m_duration;
    int closing;
};

/* Per-connection state, allocated and zeroed by lws. */
struct conn {
    struct lws *wsi;
    struct http_request *req; /* the transaction in progress, if any */
    int dispatched;           /* the handler has the request */
    int close_after;          /* answered before the body was read: close */
};

static const char *const hdr_names[HTTP_HDR_COUNT] = {
    [HTTP_HDR_CONTENT_TYPE] = "content-type",
    [HTTP_HDR_AUTHORIZATION] = "authorization",
    [HTTP_HDR_REQUEST_ID] = "x-request-id:",
    [HTTP_HDR_TELEGRAM_SECRET] = "x-telegram-bot-api-secret-token:",
};

static void req_free(struct http_request *req)
{
    if (req == NULL)
        return;
    free(req->path);
    free(req->query);
    for (int i = 0; i < HTTP_HDR_COUNT; i++)
        free(req->headers[i]);
    vn_buf_free(&req->body);
    vn_buf_free(&req->resp_headers);
    vn_buf_free(&req->resp_body);
    free(req);
}

int http_req_gone(const struct http_request *req)
{
    return req->conn == NULL;
}

const char *http_req_param(const struct http_request *req, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (unsigned i = 0; i < req->match.nparams; i++) {
        const struct http_param *p = &req->match.params[i];
        if (p->name_len == n && memcmp(p->name, name, n) == 0) {
            if (p->len + 1 > len)
                return NULL;
            memcpy(buf, p->value, p->len);
            buf[p->len] = '\0';
            return buf;
        }
    }
    return NULL;
}

void http_resp_header(struct http_request *req, const char *name, const char *value)
{
    vn_buf_append(&req->resp_headers, name, strlen(name) + 1);
    vn_buf_append(&req->resp_headers, value, strlen(value) + 1);
}

/* A request id from the client is reused only if short and plain. */
static int request_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((struct http_request *)0)->id))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static char *copy_token(struct lws *wsi, enum lws_token_indexes tok)
{
    int n = lws_hdr_total_length(wsi, tok);
    if (n <= 0 || n > HDR_MAX)
        return NULL;
    char *s = xmalloc((size_t)n + 1);
    if (lws_hdr_copy(wsi, s, n + 1, tok) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static char *copy_custom(struct lws *wsi, const char *name)
{
    int nlen = (int)strlen(name);
    int n = lws_hdr_custom_length(wsi, name, nlen);
    if (n < 0 || n > HDR_MAX)
        return NULL;
    char *s = xmalloc((size_t)n + 1);
    if (lws_hdr_custom_copy(wsi, s, n + 1, name, nlen) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* The query string, rebuilt from lws's '&'-separated fragments. */
static char *copy_query(struct lws *wsi)
{
    struct vn_buf b = VN_BUF_INIT;
    char frag[HDR_MAX + 1];
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        if (b.len)
            vn_buf_putc(&b, '&');
        vn_buf_append(&b, frag, (size_t)n);
    }
    return vn_buf_steal(&b);
}

static unsigned method_of(int lws_method)
{
    switch (lws_method) {
    case LWSHUMETH_GET:
        return HTTP_GET;
    case LWSHUMETH_POST:
        return HTTP_POST;
    case LWSHUMETH_OPTIONS:
        return HTTP_OPTIONS;
    case LWSHUMETH_PUT:
        return HTTP_PUT;
    case LWSHUMETH_PATCH:
        return HTTP_PATCH;
    case LWSHUMETH_DELETE:
        return HTTP_DELETE;
    case LWSHUMETH_HEAD:
        return HTTP_HEAD;
    }
    return 0;
}

static const char *route_label(const struct http_request *req)
{
    return req->match.route ? req->match.route->pattern : "unmatched";
}

/* Account for a finished transaction: metrics and the access log line. */
static void finish_log(struct http_server *s, struct http_request *req, int gone)
{
    double secs = (double)(vn_now_ms() - req->started_ms) / 1000.0;
    if (s->m_requests) {
        char code[8];
        snprintf(code, sizeof(code), "%d", req->status);
        met_inc(met_get(s->m_requests, route_label(req), http_method_name(req->method), code));
        met_observe(met_get(s->m_duration, route_label(req)), secs);
    }
    int level = req->status >= 500 ? VN_LOG_WARN : VN_LOG_INFO;
    /* Probes and scrapes come every few seconds; keep them out of info logs
     * (a failing /readyz is already logged by the client that went down). */
    if (req->method == HTTP_GET && req->match.route &&
        (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/readyz") == 0 ||
         strcmp(req->path, "/metrics") == 0))
        level = VN_LOG_DEBUG;
    if (level < vn_log_get_level())
        return;
    struct vn_buf f = VN_BUF_INIT;
    vn_buf_printf(&f, "\"method\":\"%s\",\"path\":", http_method_name(req->method));
    vn_buf_json_str(&f, req->path ? req->path : "");
    vn_buf_printf(&f, ",\"status\":%d,\"ms\":%.1f,\"bytes\":%zu%s", req->status, secs * 1000.0,
                  req->resp_body.len, gone ? ",\"client_gone\":true" : "");
    vn_log_emit(level, "http", req->id, f.data, "%s %s %d", http_method_name(req->method),
                req->path ? req->path : "", req->status);
    vn_buf_free(&f);
}

void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len)
{
    if (req->responded) {
        vn_error("http", "BUG: request %s answered twice", req->id);
        return;
    }
    req->responded = 1;
    req->status = status;
    req->content_type = content_type ? content_type : "application/octet-stream";
    vn_buf_reset(&req->resp_body);
    vn_buf_append(&req->resp_body, body, len);

    struct http_server *s = req->srv;
    struct conn *c = req->conn;
    if (c && c->dispatched && s->inflight)
        s->inflight--;
    if (c == NULL) {
        /* The client left while the handler worked: nothing to write. */
        finish_log(s, req, 1);
        req_free(req);
        return;
    }
    lws_callback_on_writable(c->wsi);
}

void http_respond_json(struct http_request *req, int status, const struct vn_buf *json)
{
    http_respond(req, status, "application/json", json->data ? json->data : "", json->len);
}

void http_respond_error(struct http_request *req, int status, const char *code, const char *fmt,
                        ...)
{
    struct vn_buf msg = VN_BUF_INIT, b = VN_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    vn_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    vn_buf_puts(&b, "{\"error\":{\"code\":");
    vn_buf_json_str(&b, code);
    vn_buf_puts(&b, ",\"message\":");
    vn_buf_json_str(&b, msg.data ? msg.data : "");
    vn_buf_puts(&b, ",\"request_id\":");
    vn_buf_json_str(&b, req->id);
    vn_buf_puts(&b, "}}\n");
    http_respond_json(req, status, &b);
    vn_buf_free(&msg);
    vn_buf_free(&b);
}

/* Hand a complete request to its handler (or answer 404/405 here). */
static void dispatch(struct http_server *s, struct conn *c)
{
    struct http_request *req = c->req;
    c->dispatched = 1;
    s->inflight++;
    req->match.route->handler(req, req->match.route->ud);
}

/* Answer early (before the body was read) and close the connection after. */
static void reject(struct conn *c, int status, const char *code, const char *msg)
{
    c->close_after = 1;
    http_respond_error(c->req, status, code, "%s", msg);
}

static int on_http(struct http_server *s, struct conn *c, struct lws *wsi, const char *uri)
{
    struct http_request *req = xcalloc(1, sizeof(*req));
    char *uri_ptr = NULL;
    int uri_len = 0;

    req->srv = s;
    req->conn = c;
    req->started_ms = vn_now_ms();
    req->status = 0;
    c->req = req;
    c->dispatched = 0;
    c->close_after = 0;
    req->method = method_of(lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len));
    req->path = xstrdup(uri ? uri : "/");
    req->query = copy_query(wsi);
    req->headers[HTTP_HDR_CONTENT_TYPE] = copy_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
    req->headers[HTTP_HDR_AUTHORIZATION] = copy_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    req->headers[HTTP_HDR_REQUEST_ID] = copy_custom(wsi, hdr_names[HTTP_HDR_REQUEST_ID]);
    req->headers[HTTP_HDR_TELEGRAM_SECRET] = copy_custom(wsi, hdr_names[HTTP_HDR_TELEGRAM_SECRET]);
    if (req->headers[HTTP_HDR_REQUEST_ID] && request_id_ok(req->headers[HTTP_HDR_REQUEST_ID]))
        snprintf(req->id, sizeof(req->id), "%s", req->headers[HTTP_HDR_REQUEST_ID]);
    else
        vn_random_hex(req->id, 8);

    if (req->method == 0) {
        reject(c, 501, "not_implemented", "this HTTP method is not supported");
        return 0;
    }
    int rc = http_router_match(s->router, req->method, req->path, &req->match);
    if (rc == VN_ENOENT) {
        c->close_after = 1;
        http_respond_error(req, 404, "not_found", "no route for %s %s",
                           http_method_name(req->method), req->path);
        return 0;
    }
    if (rc == VN_ECONFLICT) {
        char allow[128];
        http_methods_format(req->match.allowed, allow, sizeof(allow));
        http_resp_header(req, "allow", allow);
        c->close_after = 1;
        http_respond_error(req, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                           http_method_name(req->method), req->path, allow);
        return 0;
    }

    int has_body = req->method & (HTTP_POST | HTTP_PUT | HTTP_PATCH);
    char *cl = copy_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    char *te = copy_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
    long long length = -1;
    if (cl) {
        char *end = NULL;
        length = strtoll(cl, &end, 10);
        if (end == cl || *end != '\0' || length < 0)
            length = -2;
    }
    free(cl);
    if (length == -2) {
        free(te);
        reject(c, 400, "bad_request", "Content-Length is not a number");
        return 0;
    }
    if (length > (long long)s->max_body) {
        free(te);
        char msg[160];
        snprintf(msg, sizeof(msg), "request body of %lld bytes is over the limit of %zu bytes",
                 length, s->max_body);
        reject(c, 413, "payload_too_large", msg);
        return 0;
    }
    if (has_body && (length > 0 || (length < 0 && te != NULL))) {
        free(te);
        return 0; /* wait for LWS_CALLBACK_HTTP_BODY / _COMPLETION */
    }
    free(te);
    dispatch(s, c);
    return 0;
}

static int on_body(struct http_server *s, struct conn *c, const void *in, size_t len)
{
    struct http_request *req = c->req;
    if (req == NULL || req->responded)
        return 0;
    if (req->body.len + len > s->max_body) {
        char msg[160];
        snprintf(msg, sizeof(msg), "request body is over the limit of %zu bytes", s->max_body);
        reject(c, 413, "payload_too_large", msg);
        return 0;
    }
    vn_buf_append(&req->body, in, len);
    return 0;
}

/* Write the status line and headers, or the body. One lws_write per call. */
static int on_writeable(struct http_server *s, struct conn *c, struct lws *wsi)
{
    struct http_request *req = c->req;
    if (req == NULL || !req->responded)
        return 0;

    if (!req->header_sent) {
        size_t extra = req->resp_headers.len + 512;
        unsigned char *buf = xmalloc(LWS_PRE + extra + 1024);
        unsigned char *start = buf + LWS_PRE, *p = start, *end = start + extra + 1024;
        int head = req->method == HTTP_HEAD;
        int rc = -1;

        if (lws_add_http_common_headers(wsi, (unsigned int)req->status, req->content_type,
                                        (lws_filepos_t)req->resp_body.len, &p, end))
            goto hdr_out;
        if (lws_add_http_header_by_name(
                wsi, (const unsigned char *)"x-request-id:", (const unsigned char *)req->id,
                (int)strlen(req->id), &p, end))
            goto hdr_out;
        for (size_t off = 0; off < req->resp_headers.len;) {
            const char *name = req->resp_headers.data + off;
            const char *value = name + strlen(name) + 1;
            char hname[128];
            snprintf(hname, sizeof(hname), "%s:", name);
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)hname,
                                            (const unsigned char *)value, (int)strlen(value), &p,
                                            end))
                goto hdr_out;
            off = (size_t)(value - req->resp_headers.data) + strlen(value) + 1;
        }
        if (c->close_after &&
            lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                         5, &p, end))
            goto hdr_out;
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            goto hdr_out;
        req->header_sent = 1;
        rc = 0;
    hdr_out:
        free(buf);
        if (rc)
            return -1;
        if (req->resp_body.len && !head) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        unsigned char *buf = xmalloc(LWS_PRE + req->resp_body.len);
        memcpy(buf + LWS_PRE, req->resp_body.data, req->resp_body.len);
        int n = lws_write(wsi, buf + LWS_PRE, req->resp_body.len, LWS_WRITE_HTTP_FINAL);
        free(buf);
        if (n < (int)req->resp_body.len)
            return -1;
    }

    /* Transaction done. */
    finish_log(s, req, 0);
    int close_after = c->close_after;
    c->req = NULL;
    req_free(req);
    if (close_after || s->closing)
        return -1;
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

static void on_closed(struct http_server *s, struct conn *c)
{
    struct http_request *req = c->req;
    c->req = NULL;
    if (req == NULL)
        return;
    req->conn = NULL;
    if (req->responded) {
        /* Answered but not (fully) written: the handler is done with it. */
        finish_log(s, req, 1);
        req_free(req);
    } else if (!c->dispatched) {
        req_free(req); /* closed while the body was arriving */
    }
    /* else: the handler still holds it and frees it by answering. */
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct conn *c = user;
    struct http_server *s = lws_context_user(lws_get_context(wsi));

    /* lws calls without per-connection state for connections it rejected
     * while parsing (oversized headers, garbage request lines). */
    if (c == NULL)
        return lws_callback_http_dummy(wsi, reason, user, in, len);

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        c->wsi = wsi;
        if (c->req) { /* pipelined request while one is pending: refuse */
            return -1;
        }
        return on_http(s, c, wsi, in);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(s, c, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (c->req && !c->req->responded && !c->dispatched)
            dispatch(s, c);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(s, c, wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
        on_closed(s, c);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", callback_http, sizeof(struct conn), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Bind a throwaway socket first so a busy port gets a precise message. */
static int probe_bind(const char *host, int port, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    int fd = -1, one = 1, rc = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (host == NULL || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "HTTP_HOST \"%s\" is not an IPv4 address", host ? host : "");
        return -1;
    }
    if (port == 0)
        return 0;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        goto out;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s (set HTTP_PORT to a free port)", host,
                 port, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_opts *opt,
                                    struct http_router *router, char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    void *foreign[1] = {loop};
    struct http_server *s = NULL;
    const char *host = opt->host && *opt->host ? opt->host : "0.0.0.0";

    if (probe_bind(host, opt->port, err, errlen) != 0)
        return NULL;

    s = xcalloc(1, sizeof(*s));
    s->router = router;
    s->max_body = opt->max_body;
    if (opt->metrics) {
        s->m_requests = met_counter(opt->metrics, "vestnik_http_requests_total",
                                    "HTTP requests answered, by route, method and status code",
                                    "route,method,code");
        s->m_duration =
            met_histogram(opt->metrics, "vestnik_http_request_duration_seconds",
                          "Time from request start to answer written, by route", "route", NULL, 0);
    }

    memset(&info, 0, sizeof(info));
    info.port = opt->port ? opt->port : CONTEXT_PORT_NO_LISTEN_SERVER;
    if (opt->port == 0)
        info.port = 0;
    info.iface = strcmp(host, "0.0.0.0") == 0 ? NULL : host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DISABLE_IPV6 |
                   LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
    info.foreign_loops = foreign;
    info.pcontext = &s->ctx;
    info.user = s;
    info.timeout_secs = (unsigned int)(opt->timeout_s > 0 ? opt->timeout_s : 30);
    info.max_http_header_data = 8192;
    info.vhost_name = "vestnik";
    info.server_string = "vestnik";

    s->ctx = lws_create_context(&info);
    if (s->ctx == NULL) {
        snprintf(err, errlen, "libwebsockets could not start the HTTP server on %s:%d", host,
                 opt->port);
        free(s);
        return NULL;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(s->ctx, "vestnik");
    s->port = vh ? lws_get_vhost_listen_port(vh) : opt->port;
    vn_info("http", "listening on %s:%d", host, s->port);
    return s;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

unsigned http_server_inflight(const struct http_server *s)
{
    return s->inflight;
}

void http_server_close(struct http_server *s)
{
    if (s == NULL || s->closing)
        return;
    s->closing = 1;
    /* With a foreign loop, lws closes connections now and releases its loop
     * handles asynchronously; the loop keeps running until they are gone. */
    lws_context_destroy(s->ctx);
}

void http_server_free(struct http_server *s)
{
    if (s == NULL)
        return;
    if (s->ctx)
        lws_context_destroy(s->ctx); /* no-op once lws finished (pcontext NULLed it) */
    free(s);
}
