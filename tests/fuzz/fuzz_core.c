/*
 * libFuzzer target for the small parsers at the edges of core: config values
 * (every variable of the table), URL redaction, redis:// URLs and the route
 * table. The first byte picks the variable; the rest is the value or path.
 * Invariants are asserted with abort(): a redacted URL never contains the
 * password that rds_parse_url found in it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/config.h"
#include "core/http_route.h"
#include "core/redis.h"

struct one_var {
    const char *name;
    const char *value;
};

static const char *lookup(const char *name, void *ud)
{
    const struct one_var *v = ud;
    return strcmp(name, v->name) == 0 ? v->value : NULL;
}

static void handler(struct http_request *req, void *ud)
{
    (void)req;
    (void)ud;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    size_t nvars = 0;
    const struct cfg_var *vars = cfg_vars(&nvars);
    char *s = xstrndup((const char *)data + 1, size - 1); /* stops at an inner NUL */

    /* config: one variable set to the input */
    struct one_var v = {vars[data[0] % nvars].name, s};
    struct vn_config cfg;
    struct vn_buf errors = VN_BUF_INIT, out = VN_BUF_INIT;
    cfg_load(&cfg, lookup, &v, &errors);
    cfg_print(&cfg, lookup, &v, &out);
    cfg_free(&cfg);
    vn_buf_free(&errors);
    vn_buf_free(&out);

    /* URL redaction vs the redis URL parser */
    char *red = cfg_redact_url(s);
    struct rds_url u;
    char err[128];
    if (rds_parse_url(s, &u, err, sizeof(err)) == 0 && u.password[0]) {
        /* The userinfo left after redaction (up to the last '@') must not
         * hold the password the parser found. */
        char *auth = strstr(red, "://");
        if (auth == NULL)
            abort();
        auth += 3;
        auth[strcspn(auth, "?#")] = '\0';
        char *at = strrchr(auth, '@');
        if (at == NULL)
            abort(); /* a password but no userinfo left: it was printed as host */
        *at = '\0';
        /* The user name is not secret (and may even contain the password's
         * bytes): look only after the ':' that ends it. */
        char *pw = strchr(auth, ':');
        if (pw == NULL)
            abort(); /* the parser saw a password, redaction no separator */
        if (strlen(u.password) >= 4 && strstr(pw, u.password) != NULL)
            abort(); /* a password survived redaction */
    }
    free(red);

    /* route table */
    struct http_router *r = http_router_new();
    http_router_add(r, HTTP_GET, "/healthz", handler, NULL);
    http_router_add(r, HTTP_GET | HTTP_POST, "/v1/notifications/{id}", handler, NULL);
    http_router_add(r, HTTP_PUT, "/v1/users/{id}/links/{link}", handler, NULL);
    http_router_add(r, HTTP_POST, s, handler, NULL); /* the input as a pattern */
    struct http_match m;
    int rc = http_router_match(r, HTTP_GET, s, &m);
    if (rc == 0) {
        for (unsigned i = 0; i < m.nparams; i++)
            if (m.params[i].value < s || m.params[i].value + m.params[i].len > s + strlen(s))
                abort(); /* parameters must point into the path */
    }
    http_router_free(r);
    free(s);
    return 0;
}
