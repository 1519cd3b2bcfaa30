/*
 * http_client.h - async HTTP client on the loop (curl multi + uv_poll).
 *
 * Many requests in flight on one thread; connections are kept alive and
 * reused per host by curl's connection cache. Each request's callback fires
 * exactly once on the loop: with the HTTP status and body, or with a
 * transport error (status 0, error set).
 */
#ifndef VN_HTTP_CLIENT_H
#define VN_HTTP_CLIENT_H

#include <stddef.h>
#include <uv.h>

struct hc_client;

struct hc_response {
    long status;      /* HTTP status; 0 on transport failure */
    const char *body; /* NUL-terminated; valid during the callback only */
    size_t len;
    const char *error; /* NULL on success, else what went wrong */
    int timed_out;     /* the request's timeout fired */
    double seconds;    /* total time */
};

typedef void (*hc_done_fn)(const struct hc_response *r, void *ud);

struct hc_opts {
    long max_host_connections; /* 0 = curl's default (unlimited) */
    long max_total_connections;
    const char *user_agent; /* NULL = "vestnik/<version>" */
};

struct hc_request {
    const char *method; /* "GET", "POST", ... */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, may be NULL */
    const void *body;           /* copied */
    size_t len;
    long timeout_ms;     /* whole request; 0 = 30 s */
    size_t max_response; /* 0 = 8 MiB */
};

struct hc_client *hc_new(uv_loop_t *loop, const struct hc_opts *opt);

/* Start a request. Returns 0 (cb will fire), or VN_ESTATE when closing / VN_EINVAL. */
int hc_request(struct hc_client *c, const struct hc_request *req, hc_done_fn cb, void *ud);

unsigned hc_inflight(const struct hc_client *c);

/* Abort what is in flight (callbacks get error "client closing"), free later. */
void hc_close(struct hc_client *c);

#endif
