#include "http_route.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_router {
    struct http_route *routes;
    size_t n, cap;
};

struct http_router *http_router_new(void)
{
    return xcalloc(1, sizeof(struct http_router));
}

void http_router_free(struct http_router *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->routes[i].pattern);
    free(r->routes);
    free(r);
}

/* Check pattern syntax; returns the number of parameters or -1. */
static int pattern_check(const char *p)
{
    int params = 0, segs = 0;
    if (p == NULL || p[0] != '/')
        return -1;
    while (*p == '/') {
        const char *seg = p + 1;
        size_t len = strcspn(seg, "/");
        segs++;
        if (segs > HTTP_ROUTE_MAX_SEGMENTS)
            return -1;
        if (len && seg[0] == '{') {
            if (len < 3 || seg[len - 1] != '}')
                return -1;
            for (size_t i = 1; i + 1 < len; i++)
                if (!(seg[i] == '_' || (seg[i] >= 'a' && seg[i] <= 'z') ||
                      (seg[i] >= 'A' && seg[i] <= 'Z') || (seg[i] >= '0' && seg[i] <= '9')))
                    return -1;
            params++;
        } else if (memchr(seg, '{', len) || memchr(seg, '}', len)) {
            return -1;
        }
        p = seg + len;
    }
    if (*p != '\0' || params > HTTP_ROUTE_MAX_PARAMS)
        return -1;
    return params;
}

int http_router_add(struct http_router *r, unsigned methods, const char *pattern,
                    http_handler_fn handler, void *ud)
{
    int nparams = pattern_check(pattern);
    if (nparams < 0 || methods == 0 || handler == NULL)
        return VN_EINVAL;
    if (methods & HTTP_GET)
        methods |= HTTP_HEAD;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->routes[i].pattern, pattern) == 0 && (r->routes[i].methods & methods))
            return VN_ECONFLICT;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->routes = xrealloc(r->routes, r->cap * sizeof(*r->routes));
    }
    struct http_route *rt = &r->routes[r->n++];
    rt->methods = methods;
    rt->pattern = xstrdup(pattern);
    rt->handler = handler;
    rt->ud = ud;
    rt->nparams = (unsigned)nparams;
    return 0;
}

/* Match one pattern against path; fills params. Returns 1 on match. */
static int pattern_match(const struct http_route *rt, const char *path, struct http_match *m)
{
    const char *p = rt->pattern, *s = path;
    unsigned np = 0;
    while (*p == '/' && *s == '/') {
        const char *pseg = p + 1, *sseg = s + 1;
        size_t plen = strcspn(pseg, "/"), slen = strcspn(sseg, "/");
        if (plen && pseg[0] == '{') {
            if (slen == 0)
                return 0; /* a parameter never matches an empty segment */
            m->params[np].name = pseg + 1;
            m->params[np].name_len = plen - 2;
            m->params[np].value = sseg;
            m->params[np].len = slen;
            np++;
        } else if (plen != slen || memcmp(pseg, sseg, plen) != 0) {
            return 0;
        }
        p = pseg + plen;
        s = sseg + slen;
    }
    if (*p != '\0' || *s != '\0')
        return 0;
    m->nparams = np;
    return 1;
}

int http_router_match(const struct http_router *r, unsigned method, const char *path,
                      struct http_match *m)
{
    struct http_match tmp;
    const struct http_route *best = NULL;
    memset(m, 0, sizeof(*m));
    if (path == NULL || path[0] != '/')
        return VN_ENOENT;
    for (size_t i = 0; i < r->n; i++) {
        const struct http_route *rt = &r->routes[i];
        memset(&tmp, 0, sizeof(tmp));
        if (!pattern_match(rt, path, &tmp))
            continue;
        m->allowed |= rt->methods;
        if (!(rt->methods & method))
            continue;
        /* Prefer the route with the fewest parameters (most literal). */
        if (best == NULL || rt->nparams < best->nparams) {
            best = rt;
            unsigned allowed = m->allowed;
            *m = tmp;
            m->allowed = allowed;
            m->route = rt;
        }
    }
    if (best)
        return 0;
    return m->allowed ? VN_ECONFLICT : VN_ENOENT;
}

static const struct {
    unsigned bit;
    const char *name;
} method_names[] = {
    {HTTP_GET, "GET"},       {HTTP_HEAD, "HEAD"},   {HTTP_POST, "POST"},       {HTTP_PUT, "PUT"},
    {HTTP_DELETE, "DELETE"}, {HTTP_PATCH, "PATCH"}, {HTTP_OPTIONS, "OPTIONS"},
};

unsigned http_method_parse(const char *name, size_t len)
{
    for (size_t i = 0; i < VN_ARRAY_LEN(method_names); i++)
        if (strlen(method_names[i].name) == len && memcmp(method_names[i].name, name, len) == 0)
            return method_names[i].bit;
    return 0;
}

const char *http_method_name(unsigned method)
{
    for (size_t i = 0; i < VN_ARRAY_LEN(method_names); i++)
        if (method_names[i].bit == method)
            return method_names[i].name;
    return "UNKNOWN";
}

void http_methods_format(unsigned methods, char *buf, size_t len)
{
    size_t off = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < VN_ARRAY_LEN(method_names); i++) {
        if (!(methods & method_names[i].bit))
            continue;
        const char *sep = off ? ", " : "";
        size_t n = strlen(sep) + strlen(method_names[i].name);
        if (off + n >= len)
            return; /* never end with half a name */
        snprintf(buf + off, len - off, "%s%s", sep, method_names[i].name);
        off += n;
    }
}
