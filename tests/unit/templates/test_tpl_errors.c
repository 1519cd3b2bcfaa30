/*
 * test_tpl_errors.c - every error says what is wrong and where (file, line,
 * column in code points), and every bound fails cleanly with VN_ETOOBIG:
 * source size, section depth, partial depth, output size, render steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tpl_test.h"

#define E VN_EINVAL
#define T TPL_TARGET_TEXT

static void test_syntax_errors(void **state)
{
    (void)state;
    tt_compile_fails(T, "Hello {{name", E, 1, 7, "unclosed tag: no '}}'");
    tt_compile_fails(T, "{{{name}}", E, 1, 1, "no '}}}'");
    tt_compile_fails(T, "a\n {{#list}}\n x", E, 2, 2, "{{#list}} is never closed");
    tt_compile_fails(T, "{{#a}}{{#b}}{{/a}}", E, 1, 13,
                     "{{/a}} does not close {{#b}} opened at 1:7");
    tt_compile_fails(T, "x{{/a}}", E, 1, 2, "closes nothing");
    tt_compile_fails(T, "{{}}", E, 1, 1, "empty tag");
    tt_compile_fails(T, "ok {{ }}", E, 1, 4, "empty tag");
    tt_compile_fails(T, "{{=<% =}}", E, 1, 1, "bad set-delimiter tag");
    tt_compile_fails(T, "{{=a= b=}}", E, 1, 1, "bad set-delimiter tag");
    tt_compile_fails(T, "{{a..b}}", E, 1, 3, "empty segment");
    tt_compile_fails(T, "{{.a}}", E, 1, 3, "empty segment");
    tt_compile_fails(T, "{{#a b}}{{/a b}}", E, 1, 5, "a section name is one word");
    tt_compile_fails(T, "{{> two words}}", E, 1, 8, "a partial name is one word");
    tt_compile_fails(T, "{{ v | default \"a\\q\" }}", E, 1, 18, "unknown escape \\q");
    /* after new delimiters, messages speak of them */
    tt_compile_fails(T, "{{=<% %>=}}\n<%name", E, 2, 1, "no '%>' after this '<%'");
}

static void test_columns_count_code_points(void **state)
{
    (void)state;
    tt_compile_fails(T, "Привет, {{#x}}", E, 1, 9, "never closed");
    tt_compile_fails(T, "🎉🎉 {{ a | nope }}", E, 1, 11, "unknown filter \"nope\"");
    /* a tag spanning lines reports where its content is */
    tt_compile_fails(T, "{{\n\n   a | shout }}", E, 3, 8, "unknown filter");
}

static void test_bad_bytes(void **state)
{
    (void)state;
    struct tpl_error err;
    struct tpl_compile_opts co = {"b.mustache", T, NULL};
    assert_null(tpl_compile("ok\nab\xff", 6, &co, &err));
    assert_int_equal(err.code, VN_EINVAL);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 3);
    assert_non_null(strstr(err.msg, "invalid UTF-8 (byte 0xff)"));
    assert_null(tpl_compile("a\0b", 3, &co, &err));
    assert_int_equal(err.col, 2);
    assert_non_null(strstr(err.msg, "NUL byte"));
    /* a truncated multi-byte sequence at the very end */
    assert_null(tpl_compile("abc\xd0", 4, &co, &err));
    assert_int_equal(err.col, 4);
}

static void test_error_format(void **state)
{
    (void)state;
    struct tpl_error err;
    struct tpl_compile_opts co = {"ru/x.telegram.mustache", TPL_TARGET_TG_HTML, NULL};
    assert_null(tpl_compile("<b>\n{{#a}}", 10, &co, &err));
    struct vn_buf b = VN_BUF_INIT;
    tpl_error_format(&err, &b);
    assert_string_equal(b.data, "ru/x.telegram.mustache:2:1: {{#a}} is never closed");
    vn_buf_free(&b);
    /* no file, no position: just the message */
    struct tpl_error e2 = {VN_ETOOBIG, "", 0, 0, "too big"};
    tpl_error_format(&e2, &b);
    assert_string_equal(b.data, "too big");
    vn_buf_free(&b);
}

static void test_source_limit(void **state)
{
    (void)state;
    struct tpl_limits lim = *tpl_limits_default();
    lim.max_source = 10;
    struct tpl_error err;
    struct tpl_compile_opts co = {"big", T, &lim};
    assert_null(tpl_compile("01234567890", 11, &co, &err));
    assert_int_equal(err.code, VN_ETOOBIG);
    assert_string_equal(err.msg, "template is 11 bytes, over the limit of 10");
    struct tpl *t = tpl_compile("0123456789", 10, &co, &err);
    assert_non_null(t);
    tpl_free(t);
}

static void test_depth_limit(void **state)
{
    (void)state;
    struct tpl_limits lim = *tpl_limits_default();
    lim.max_depth = 3;
    struct tpl_error err;
    struct tpl_compile_opts co = {"deep", T, &lim};
    const char *src = "{{#a}}{{#b}}{{#c}}{{#d}}{{/d}}{{/c}}{{/b}}{{/a}}";
    assert_null(tpl_compile(src, strlen(src), &co, &err));
    assert_int_equal(err.code, VN_ETOOBIG);
    assert_int_equal(err.col, 19);
    assert_non_null(strstr(err.msg, "nested deeper than 3"));
    /* the default bound holds for hostile nesting without blowing the stack */
    struct vn_buf b = VN_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        vn_buf_puts(&b, "{{#a}}");
    co.limits = NULL;
    assert_null(tpl_compile(b.data, b.len, &co, &err));
    assert_int_equal(err.code, VN_ETOOBIG);
    vn_buf_free(&b);
}

static const struct tpl *self_partial(const char *name, enum tpl_target target, void *ud)
{
    (void)name;
    (void)target;
    return ud;
}

static void test_partial_depth_limit(void **state)
{
    (void)state;
    struct tpl_error err;
    struct tpl_compile_opts co = {"loop", T, NULL};
    struct tpl *t = tpl_compile("x{{>loop}}", 10, &co, &err);
    struct tpl_render_opts o = {"en", "UTC", TT_NOW_MS, 0, NULL, self_partial, t, NULL};
    struct vn_buf out = VN_BUF_INIT;
    assert_int_equal(tpl_render(t, NULL, &o, &out, &err), VN_ETOOBIG);
    assert_string_equal(err.file, "loop");
    assert_int_equal(err.col, 2);
    assert_non_null(strstr(err.msg, "partials nested deeper than 16"));
    assert_int_equal(out.len, 0);
    vn_buf_free(&out);
    tpl_free(t);
}

static void test_output_and_step_limits(void **state)
{
    (void)state;
    struct tpl_limits lim = *tpl_limits_default();
    struct tpl_error err;
    struct tpl_compile_opts co = {"out", T, NULL};
    struct vn_buf data = VN_BUF_INIT, out = VN_BUF_INIT;

    vn_buf_puts(&data, "{\"l\":[");
    for (int i = 0; i < 5000; i++)
        vn_buf_printf(&data, "%s%d", i ? "," : "", i);
    vn_buf_puts(&data, "]}");
    struct json_object *j = tt_json(data.data);

    lim.max_output = 100;
    struct tpl *t = tpl_compile("{{#l}}xxxxx{{/l}}", 17, &co, &err);
    struct tpl_render_opts o = {"en", "UTC", TT_NOW_MS, 0, &lim, NULL, NULL, NULL};
    assert_int_equal(tpl_render(t, j, &o, &out, &err), VN_ETOOBIG);
    assert_non_null(strstr(err.msg, "output exceeds the limit of 100 bytes"));
    assert_int_equal(out.len, 0);
    tpl_free(t);

    /* a section that writes nothing still costs steps */
    lim = *tpl_limits_default();
    lim.max_steps = 1000;
    t = tpl_compile("{{#l}}{{/l}}", 12, &co, &err);
    assert_int_equal(tpl_render(t, j, &o, &out, &err), VN_ETOOBIG);
    assert_non_null(strstr(err.msg, "more than 1000 steps"));
    tpl_free(t);

    json_object_put(j);
    vn_buf_free(&data);
    vn_buf_free(&out);
}

struct two {
    struct tpl *p;
};

static const struct tpl *give(const char *name, enum tpl_target target, void *ud)
{
    (void)target;
    return strcmp(name, "inner") == 0 ? ((struct two *)ud)->p : NULL;
}

static void test_strict_render_errors(void **state)
{
    (void)state;
    struct tpl_error err;
    struct tpl_compile_opts co = {"outer", T, NULL}, ci = {"inner", T, NULL};
    struct tpl *outer = tpl_compile("a\n{{>inner}}", 12, &co, &err);
    struct two two = {tpl_compile("line one\n  {{missing.name}}", 27, &ci, &err)};
    struct tpl_render_opts o = {"en", "UTC", TT_NOW_MS, 1, NULL, give, &two, NULL};
    struct vn_buf out = VN_BUF_INIT;
    struct json_object *j = tt_json("{\"missing\":{}}");

    /* the error points into the partial */
    assert_int_equal(tpl_render(outer, j, &o, &out, &err), VN_ENOENT);
    assert_string_equal(err.file, "inner");
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 3);
    assert_string_equal(err.msg, "no value for {{missing.name}}");

    struct tpl *t = tpl_compile("{{#items}}x{{/items}}", 21, &co, &err);
    assert_int_equal(tpl_render(t, j, &o, &out, &err), VN_ENOENT);
    assert_non_null(strstr(err.msg, "no value for {{#items}} (use null or false"));
    tpl_free(t);

    t = tpl_compile("{{> nowhere}}", 13, &co, &err);
    assert_int_equal(tpl_render(t, j, &o, &out, &err), VN_ENOENT);
    assert_string_equal(err.msg, "no partial named \"nowhere\"");
    tpl_free(t);

    /* not strict: the same render is fine and empty where data is missing */
    o.strict = 0;
    assert_int_equal(tpl_render(outer, j, &o, &out, &err), 0);
    assert_string_equal(out.data, "a\nline one\n  ");
    vn_buf_reset(&out);

    /* a partial compiled for another target is refused */
    struct tpl_compile_opts ch = {"inner", TPL_TARGET_TG_HTML, NULL};
    tpl_free(two.p);
    two.p = tpl_compile("x", 1, &ch, &err);
    assert_int_equal(tpl_render(outer, j, &o, &out, &err), VN_EINVAL);
    assert_non_null(strstr(err.msg, "compiled for telegram_html"));

    json_object_put(j);
    vn_buf_free(&out);
    tpl_free(two.p);
    tpl_free(outer);
}

static void test_api_edges(void **state)
{
    (void)state;
    /* NULL opts and err: text target, default limits */
    const char *src = "{{a}}|{{#b}}{{> p}}{{/b}}\n  {{> q}}\n";
    struct tpl *t = tpl_compile(src, strlen(src), NULL, NULL);
    assert_non_null(t);
    assert_int_equal(tpl_get_target(t), TPL_TARGET_TEXT);
    assert_string_equal(tpl_get_name(t), "");
    assert_int_equal(tpl_partial_count(t), 2);
    unsigned line, col;
    assert_string_equal(tpl_partial_name(t, 0, &line, &col), "p");
    assert_int_equal(line, 1);
    assert_int_equal(col, 13);
    assert_string_equal(tpl_partial_name(t, 1, &line, &col), "q");
    assert_int_equal(line, 2);
    assert_null(tpl_partial_name(t, 2, NULL, NULL));
    struct vn_buf out = VN_BUF_INIT;
    assert_int_equal(tpl_render(t, NULL, NULL, &out, NULL), 0); /* null data, no partials */
    assert_string_equal(out.data, "|\n");                       /* line 2 stood alone: gone */
    vn_buf_free(&out);
    tpl_free(t);
    tpl_free(NULL);

    assert_string_equal(tpl_target_name(TPL_TARGET_TG_MD2), "telegram_md2");
    assert_int_equal(tpl_target_parse("email_html"), TPL_TARGET_EMAIL_HTML);
    assert_int_equal(tpl_target_parse("html"), -1);
    assert_true(tpl_locale_valid("ru-RU"));
    assert_true(tpl_locale_valid("pt_BR"));
    assert_true(tpl_locale_valid("zh-Hant-TW"));
    assert_false(tpl_locale_valid("r"));
    assert_false(tpl_locale_valid("russian"));
    assert_false(tpl_locale_valid("ru-"));
    assert_false(tpl_locale_valid("ru--RU"));
    assert_false(tpl_locale_valid("../etc"));
    assert_false(tpl_locale_valid(""));

    struct tpl_compile_opts bad = {"x", (enum tpl_target)99, NULL};
    struct tpl_error err;
    assert_null(tpl_compile("x", 1, &bad, &err));
    assert_int_equal(err.code, VN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_columns_count_code_points),
        cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_source_limit),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_partial_depth_limit),
        cmocka_unit_test(test_output_and_step_limits),
        cmocka_unit_test(test_strict_render_errors),
        cmocka_unit_test(test_api_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
