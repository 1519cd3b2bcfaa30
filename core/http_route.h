/*
 * http_route.h - the route table: method + path pattern -> handler.
 *
 * Pure (no I/O), so it is unit-tested on its own. Patterns are literal
 * segments and "{name}" segments that capture one path segment, e.g.
 * "/v1/notifications/{id}". Matching walks the table in insertion order;
 * a literal route is preferred over a parameter route that also matches.
 * A path that matches some route but not with this method yields 405 and
 * the set of allowed methods (for the Allow header).
 */
#ifndef VN_HTTP_ROUTE_H
#define VN_HTTP_ROUTE_H

#include <stddef.h>

enum http_method {
    HTTP_GET = 1 << 0,
    HTTP_HEAD = 1 << 1,
    HTTP_POST = 1 << 2,
    HTTP_PUT = 1 << 3,
    HTTP_DELETE = 1 << 4,
    HTTP_PATCH = 1 << 5,
    HTTP_OPTIONS = 1 << 6,
};

#define HTTP_ROUTE_MAX_PARAMS   4
#define HTTP_ROUTE_MAX_SEGMENTS 16

struct http_request;
typedef void (*http_handler_fn)(struct http_request *req, void *ud);

struct http_route {
    unsigned methods; /* bitmask of enum http_method; GET implies HEAD */
    char *pattern;
    http_handler_fn handler;
    void *ud;
    unsigned nparams;
};

struct http_param {
    const char *name; /* points into the route's pattern */
    size_t name_len;
    const char *value; /* points into the matched path */
    size_t len;
};

struct http_match {
    const struct http_route *route;
    unsigned allowed; /* on 405: the methods the path accepts */
    unsigned nparams;
    struct http_param params[HTTP_ROUTE_MAX_PARAMS];
};

struct http_router;

struct http_router *http_router_new(void);
void http_router_free(struct http_router *r);

/*
 * Add a route. Returns 0, or VN_EINVAL when the pattern is malformed (must
 * start with '/', "{name}" only as a whole segment, at most
 * HTTP_ROUTE_MAX_PARAMS parameters), or VN_ECONFLICT when the same pattern
 * already has one of these methods.
 */
int http_router_add(struct http_router *r, unsigned methods, const char *pattern,
                    http_handler_fn handler, void *ud);

/*
 * Match method + path (no query string). Returns 0 and fills m->route and
 * parameters; VN_ENOENT when no route has this path (404); VN_ECONFLICT when
 * routes have the path but not the method (405; m->allowed set).
 */
int http_router_match(const struct http_router *r, unsigned method, const char *path,
                      struct http_match *m);

/* Method name <-> bit. Unknown names give 0. */
unsigned http_method_parse(const char *name, size_t len);
const char *http_method_name(unsigned method);
/* Format an Allow header value ("GET, HEAD, POST") into buf. */
void http_methods_format(unsigned methods, char *buf, size_t len);

#endif
