/*
 * test_tpl_spec.c - Mustache semantics as table tests.
 *
 * The tables are the .json files in tests/fixtures/templates/spec/, in the format of the
 * official Mustache spec ({"tests":[{"name","data","template","partials",
 * "expected"}]}), written for this project: interpolation, sections,
 * inverted sections, comments, partials and set delimiters. They run with
 * TPL_TARGET_MUSTACHE (classic HTML escaping), the target the spec assumes.
 * Set VN_MUSTACHE_SPEC_DIR to a checkout's specs/ directory to run the
 * official files too (the optional ~lambdas, ~inheritance and
 * ~dynamic-names modules are skipped: not supported).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>

#include "tpl_test.h"

struct partials {
    struct json_object *src; /* name -> template text */
    struct tpl *compiled[64];
    const char *names[64];
    size_t n;
};

static const struct tpl *resolve(const char *name, enum tpl_target target, void *ud)
{
    struct partials *p = ud;
    struct json_object *s;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0)
            return p->compiled[i];
    if (p->src == NULL || !json_object_object_get_ex(p->src, name, &s) || p->n == 64)
        return NULL;
    struct tpl_error err;
    struct tpl_compile_opts co = {name, target, NULL};
    struct tpl *t =
        tpl_compile(json_object_get_string(s), (size_t)json_object_get_string_len(s), &co, &err);
    if (t == NULL)
        fail_msg("partial %s: %u:%u %s", name, err.line, err.col, err.msg);
    p->names[p->n] = name;
    p->compiled[p->n++] = t;
    return t;
}

/* Run every case of one spec file; returns the number of failures. */
static int run_file(const char *path)
{
    struct json_object *root = json_object_from_file(path), *tests;
    int failures = 0;

    if (root == NULL || !json_object_object_get_ex(root, "tests", &tests))
        fail_msg("%s: not a spec file", path);
    size_t n = json_object_array_length(tests);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        struct json_object *tc = json_object_array_get_idx(tests, i), *name, *data, *tmpl,
                           *expected, *parts = NULL;
        json_object_object_get_ex(tc, "name", &name);
        json_object_object_get_ex(tc, "data", &data);
        json_object_object_get_ex(tc, "template", &tmpl);
        json_object_object_get_ex(tc, "expected", &expected);
        json_object_object_get_ex(tc, "partials", &parts);

        struct partials p = {parts, {0}, {0}, 0};
        struct tpl_error err;
        struct tpl_compile_opts co = {json_object_get_string(name), TPL_TARGET_MUSTACHE, NULL};
        struct tpl *t = tpl_compile(json_object_get_string(tmpl),
                                    (size_t)json_object_get_string_len(tmpl), &co, &err);
        struct tpl_render_opts ro = {"en", "UTC", TT_NOW_MS, 0, NULL, resolve, &p, NULL};
        struct vn_buf out = VN_BUF_INIT;
        int rc = t ? tpl_render(t, data, &ro, &out, &err) : err.code;
        const char *got = out.data ? out.data : "";
        if (rc != 0 || strcmp(got, json_object_get_string(expected)) != 0) {
            print_error("%s: \"%s\"\n  template: %s\n  expected: [%s]\n       got: [%s]%s%s\n",
                        path, json_object_get_string(name), json_object_get_string(tmpl),
                        json_object_get_string(expected), got, rc ? " error: " : "",
                        rc ? err.msg : "");
            failures++;
        }
        vn_buf_free(&out);
        tpl_free(t);
        for (size_t k = 0; k < p.n; k++)
            tpl_free(p.compiled[k]);
    }
    json_object_put(root);
    return failures;
}

static int run_dir(const char *dir, int *files)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int failures = 0;
    if (d == NULL)
        fail_msg("cannot open %s", dir);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0 || e->d_name[0] == '~')
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        failures += run_file(path);
        (*files)++;
        free(path);
    }
    closedir(d);
    return failures;
}

static void test_spec_tables(void **state)
{
    (void)state;
    int files = 0;
    char *dir = tt_path("tests/fixtures/templates/spec");
    int failures = run_dir(dir, &files);
    free(dir);
    assert_int_equal(files, 6);
    assert_int_equal(failures, 0);
}

static void test_official_spec_if_given(void **state)
{
    (void)state;
    const char *dir = getenv("VN_MUSTACHE_SPEC_DIR");
    int files = 0;
    if (dir == NULL || *dir == '\0')
        skip();
    assert_int_equal(run_dir(dir, &files), 0);
    assert_true(files >= 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_tables),
        cmocka_unit_test(test_official_spec_if_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
