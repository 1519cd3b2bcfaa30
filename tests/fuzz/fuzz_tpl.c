/*
 * fuzz_tpl.c - libFuzzer target for the template parser and renderer
 * (templates/tpl_*.c).
 *
 * Input: byte 0 picks the target, byte 1 the options (strict, tiny limits,
 * which data), the rest is the template; if it holds a NUL, what follows is
 * JSON data (a fixed data set with every JSON type is used otherwise, or
 * when the JSON does not parse). Partials: "self" is the template itself
 * (recursion hits the partial limit), "p" a fixed partial, anything else
 * is missing. After each step it checks the header's promises and traps:
 *  - a failed compile or render fills err (code, message) and a render
 *    leaves the output buffer as it was;
 *  - a render is deterministic and within max_output;
 *  - output is valid UTF-8 in every target that escapes, valid JSON for
 *    TPL_TARGET_JSON, a single line for TPL_TARGET_LINE.
 * See tests/fuzz/README.md for how to run it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "bot/tg_text.h"
#include "templates/tpl.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static const char DATA[] =
    "{\"name\":\"Анна <b>&\\\"'\",\"n\":3,\"neg\":-1.5,\"zero\":0,\"t\":true,\"f\":false,"
    "\"null\":null,\"empty\":\"\",\"url\":\"javascript:alert(1)\",\"d\":\"2026-03-08T09:30:00Z\","
    "\"day\":\"2026-03-29\",\"epoch\":1772958600,\"list\":[1,\"two\",{\"x\":\"*_[]\"},[3],null],"
    "\"tasks\":[{\"title\":\"a\",\"due_at\":\"2026-03-10T15:00:00Z\"},{\"title\":\"b\"}],"
    "\"obj\":{\"a\":{\"b\":{\"c\":\"deep\"}}},\"big\":1e300,\"emoji\":\"👨\u200d👩\u200d👧\"}";

struct ctx {
    const struct tpl *self, *p;
};

static const struct tpl *resolve(const char *name, enum tpl_target target, void *ud)
{
    struct ctx *c = ud;
    (void)target;
    if (strcmp(name, "self") == 0)
        return c->self;
    if (strcmp(name, "p") == 0)
        return c->p;
    return NULL;
}

static void check_output(enum tpl_target target, const char *s, size_t len)
{
    if (target != TPL_TARGET_MUSTACHE)
        CHECK(tg_utf8_valid(s, len));
    if (target == TPL_TARGET_LINE)
        CHECK(memchr(s, '\n', len) == NULL && memchr(s, '\r', len) == NULL);
    if (target == TPL_TARGET_JSON) {
        struct json_tokener *tok = json_tokener_new_ex(256);
        struct json_object *j = json_tokener_parse_ex(tok, s, (int)len);
        CHECK(j != NULL || len == 0 || json_tokener_get_error(tok) == json_tokener_success);
        json_object_put(j);
        json_tokener_free(tok);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct json_object *fixed;
    static struct tpl_fmt_cache *cache;
    if (fixed == NULL) {
        fixed = json_tokener_parse(DATA);
        cache = tpl_fmt_cache_new();
    }
    if (size < 2)
        return 0;
    enum tpl_target target = (enum tpl_target)(data[0] % TPL_TARGET__COUNT);
    uint8_t flags = data[1];
    const char *src = (const char *)data + 2;
    size_t len = size - 2;
    const char *nul = memchr(src, '\0', len);
    struct json_object *own = NULL;
    if (nul != NULL) {
        struct json_tokener *tok = json_tokener_new();
        own = json_tokener_parse_ex(tok, nul + 1, (int)(size - 2 - (size_t)(nul + 1 - src)));
        json_tokener_free(tok);
        len = (size_t)(nul - src);
    }

    struct tpl_limits lim = *tpl_limits_default();
    if (flags & 2) {
        lim.max_depth = 3;
        lim.max_partial_depth = 2;
        lim.max_output = 64;
        lim.max_steps = 200;
    }
    struct tpl_error err;
    struct tpl_compile_opts co = {"fuzz", target, &lim};
    struct tpl *t = tpl_compile(src, len, &co, &err);
    if (t == NULL) {
        CHECK(err.code < 0);
        CHECK(err.msg[0] != '\0');
        CHECK(strcmp(err.file, "fuzz") == 0);
        json_object_put(own);
        return 0;
    }
    CHECK(err.code == 0);
    struct tpl_compile_opts po = {"p", target, &lim};
    struct tpl *p = tpl_compile("[{{name}}]", 10, &po, NULL);
    struct ctx c = {t, p};
    struct tpl_render_opts ro = {(flags & 4) ? "ru-RU" : "en",
                                 (flags & 8) ? "America/New_York" : "Nowhere/Zone",
                                 1772884800000LL,
                                 flags & 1,
                                 &lim,
                                 resolve,
                                 &c,
                                 (flags & 16) ? cache : NULL};
    struct json_object *d = own && !(flags & 32) ? own : fixed;

    struct vn_buf a = VN_BUF_INIT, b = VN_BUF_INIT;
    vn_buf_puts(&a, "pre");
    int rc = tpl_render(t, d, &ro, &a, &err);
    if (rc != 0) {
        CHECK(rc == err.code && rc < 0);
        CHECK(err.msg[0] != '\0');
        CHECK(a.len == 3 && strcmp(a.data, "pre") == 0);
    } else {
        CHECK(a.len - 3 <= lim.max_output);
        check_output(target, a.data + 3, a.len - 3);
        int rc2 = tpl_render(t, d, &ro, &b, &err);
        CHECK(rc2 == 0);
        CHECK(b.len == a.len - 3 && memcmp(b.data ? b.data : "", a.data + 3, b.len) == 0);
    }
    vn_buf_free(&a);
    vn_buf_free(&b);
    tpl_free(p);
    tpl_free(t);
    json_object_put(own);
    return 0;
}
