/*
 * http_server.h - the HTTP server: libwebsockets on the process's libuv loop.
 *
 * Requests are dispatched through an http_router. A handler gets a request
 * and must answer it exactly once with http_respond*(), either before it
 * returns or later (after a Redis or PostgreSQL reply). If the client goes
 * away first, the request stays valid until the handler answers; the answer
 * is then discarded. http_req_gone() tells a handler it may skip work.
 *
 * Bodies are capped (max_body: 413 before reading when Content-Length says
 * so, or as soon as the bytes pass the cap). Errors are JSON:
 * {"error":{"code":"not_found","message":"no route for GET /x"}}.
 * Every response carries X-Request-Id (taken from the request when sane).
 */
#ifndef VN_HTTP_SERVER_H
#define VN_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common.h"
#include "http_route.h"
#include "metrics.h"

struct http_server;

struct http_server_opts {
    const char *host;             /* bind address; NULL = all */
    int port;                     /* 0 = pick a free port (see http_server_port) */
    size_t max_body;              /* bytes */
    int timeout_s;                /* idle / slow request limit */
    struct met_registry *metrics; /* may be NULL */
};

/* Headers captured from every request (lower-case names). */
enum http_hdr {
    HTTP_HDR_CONTENT_TYPE,
    HTTP_HDR_AUTHORIZATION,
    HTTP_HDR_REQUEST_ID,
    HTTP_HDR_TELEGRAM_SECRET, /* x-telegram-bot-api-secret-token */
    HTTP_HDR_COUNT
};

struct http_request {
    unsigned method;               /* enum http_method */
    char *path;                    /* decoded path, no query */
    char *query;                   /* raw query string without '?', "" if none */
    char *headers[HTTP_HDR_COUNT]; /* NULL when absent */
    struct vn_buf body;
    struct http_match match; /* route and path parameters */
    char id[40];             /* request id for logs */
    uint64_t started_ms;
    /* private */
    struct http_server *srv;
    void *conn; /* connection state; NULL once the client is gone */
    int status;
    const char *content_type;
    struct vn_buf resp_headers; /* "name\0value\0" pairs */
    struct vn_buf resp_body;
    int responded;
    int header_sent;
};

/*
 * Create the server on loop and start listening. Returns NULL and fills err
 * when the port cannot be bound or lws cannot start. The router is borrowed
 * and must outlive the server.
 */
struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_opts *opt,
                                    struct http_router *router, char *err, size_t errlen);

/* The bound port (useful with port 0). */
int http_server_port(const struct http_server *s);

/* Requests dispatched to handlers and not yet answered. */
unsigned http_server_inflight(const struct http_server *s);

/*
 * Stop: close the listener and every connection. lws releases its loop
 * handles asynchronously, so the loop must run on until it empties; then
 * call http_server_free(). Unanswered requests stay valid for their
 * handlers, which still answer them (into the void) to free them, so free
 * the server only after every handler has answered.
 */
void http_server_close(struct http_server *s);
void http_server_free(struct http_server *s);

/* 1 when the client closed the connection before the answer. */
int http_req_gone(const struct http_request *req);

/* Path parameter by name ("id" for "/v1/x/{id}"); copies into buf, NULL if absent. */
const char *http_req_param(const struct http_request *req, const char *name, char *buf, size_t len);

/* Add a response header (before answering). */
void http_resp_header(struct http_request *req, const char *name, const char *value);

/* Answer. body is copied. Frees req once written (or at once if gone). */
void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len);
void http_respond_json(struct http_request *req, int status, const struct vn_buf *json);
/* {"error":{"code":code,"message":<formatted>}} */
void http_respond_error(struct http_request *req, int status, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

#endif
