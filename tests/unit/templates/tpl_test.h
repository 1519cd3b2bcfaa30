/*
 * tpl_test.h - helpers shared by the template unit tests (header-only; each
 * test_*.c is its own executable). Include after <cmocka.h>.
 */
#ifndef VN_TPL_TEST_H
#define VN_TPL_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/common.h"
#include "templates/tpl.h"

/* Repo root: $VN_SOURCE_DIR (set by ctest), else derived from __FILE__. */
static inline char *tt_source_root(void)
{
    const char *env = getenv("VN_SOURCE_DIR");
    if (env != NULL && *env != '\0')
        return xstrdup(env);
    const char *me = __FILE__;
    const char *tail = strstr(me, "tests/unit/templates/");
    if (tail == NULL || tail == me)
        return xstrdup(".");
    return xstrndup(me, (size_t)(tail - me));
}

/* Path under the repo root; caller frees. */
static inline char *tt_path(const char *rel)
{
    char *root = tt_source_root();
    char *p = xasprintf("%s/%s", root, rel);
    free(root);
    return p;
}

/* Whole file or NULL. Caller frees. */
static inline char *tt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct vn_buf b = VN_BUF_INIT;
    char chunk[4096];
    size_t n;
    if (f == NULL)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        vn_buf_append(&b, chunk, n);
    fclose(f);
    if (len)
        *len = b.len;
    if (b.data == NULL)
        vn_buf_append(&b, "", 0);
    return vn_buf_steal(&b);
}

static inline struct json_object *tt_json(const char *s)
{
    struct json_object *j = json_tokener_parse(s);
    if (j == NULL && strcmp(s, "null") != 0)
        fail_msg("bad test JSON: %s", s);
    return j;
}

/* Fixed "now" for relative times: 2026-03-07T12:00:00Z. */
#define TT_NOW_MS 1772884800000LL

/*
 * Compile src for target and render it with data (JSON text) and opts
 * (NULL: locale "en", tz "UTC", now TT_NOW_MS). Fails the test on a compile
 * or render error. Caller frees the result.
 */
static inline char *tt_render_opts(enum tpl_target target, const char *src, const char *data,
                                   const struct tpl_render_opts *opts)
{
    struct tpl_error err;
    struct tpl_compile_opts co = {"test", target, NULL};
    struct tpl *t = tpl_compile(src, strlen(src), &co, &err);
    if (t == NULL)
        fail_msg("compile %s: %d:%d %s", src, err.line, err.col, err.msg);
    struct json_object *j = tt_json(data ? data : "{}");
    struct tpl_render_opts def = {"en", "UTC", TT_NOW_MS, 0, NULL, NULL, NULL, NULL};
    struct vn_buf out = VN_BUF_INIT;
    int rc = tpl_render(t, j, opts ? opts : &def, &out, &err);
    json_object_put(j);
    tpl_free(t);
    if (rc != 0)
        fail_msg("render %s: %d:%d %s", src, err.line, err.col, err.msg);
    if (out.data == NULL)
        vn_buf_append(&out, "", 0);
    return vn_buf_steal(&out);
}

static inline char *tt_render(enum tpl_target target, const char *src, const char *data)
{
    return tt_render_opts(target, src, data, NULL);
}

/* Render with a locale and zone. */
static inline char *tt_render_lz(const char *src, const char *data, const char *locale,
                                 const char *tz)
{
    struct tpl_render_opts o = {locale, tz, TT_NOW_MS, 0, NULL, NULL, NULL, NULL};
    return tt_render_opts(TPL_TARGET_TEXT, src, data, &o);
}

#define assert_render(target, src, data, expected)                                                 \
    do {                                                                                           \
        char *got_ = tt_render((target), (src), (data));                                           \
        if (strcmp(got_, (expected)) != 0) {                                                       \
            print_error("template: %s\ndata: %s\nexpected: [%s]\n     got: [%s]\n", (src),         \
                        (data) ? (const char *)(data) : "{}", (expected), got_);                   \
            free(got_);                                                                            \
            fail();                                                                                \
        }                                                                                          \
        free(got_);                                                                                \
    } while (0)

#define assert_text(src, data, locale, tz, expected)                                               \
    do {                                                                                           \
        char *got_ = tt_render_lz((src), (data), (locale), (tz));                                  \
        if (strcmp(got_, (expected)) != 0) {                                                       \
            print_error(                                                                           \
                "template: %s\ndata: %s\nlocale %s tz %s\nexpected: [%s]\n     got: [%s]\n",       \
                (src), (data), (locale), (tz), (expected), got_);                                  \
            free(got_);                                                                            \
            fail();                                                                                \
        }                                                                                          \
        free(got_);                                                                                \
    } while (0)

/* Compile must fail with code at line:col and a message containing needle. */
static inline void tt_compile_fails(enum tpl_target target, const char *src, int code,
                                    unsigned line, unsigned col, const char *needle)
{
    struct tpl_error err;
    struct tpl_compile_opts co = {"t.mustache", target, NULL};
    struct tpl *t = tpl_compile(src, strlen(src), &co, &err);
    if (t != NULL) {
        tpl_free(t);
        fail_msg("expected a compile error for: %s", src);
    }
    if (err.code != code || err.line != line || err.col != col || strstr(err.msg, needle) == NULL)
        fail_msg("template %s\nexpected code %d at %u:%u containing \"%s\"\n"
                 "got code %d at %u:%u: %s",
                 src, code, line, col, needle, err.code, err.line, err.col, err.msg);
    assert_string_equal(err.file, "t.mustache");
}

#endif
