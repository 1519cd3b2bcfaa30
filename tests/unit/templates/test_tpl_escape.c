/*
 * test_tpl_escape.c - a value can never become markup, in any target.
 *
 * For each target: hostile input (<script>, every MarkdownV2 special
 * character, &, quotes, newlines, emoji, invalid UTF-8, NUL) comes out
 * exactly as expected; raw tags are escaped all the same; URL attributes
 * refuse script schemes and keep their structure; JSON values cannot add
 * keys; places where no escaping is safe do not compile, with positions.
 * A seeded property test then throws random hostile strings at every
 * target and decodes the result back to the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bot/tg_text.h"
#include "tpl_test.h"

static const char HOSTILE[] = "<script>alert(1)</script> *_[]()~`>#+-=|{}.!\\ & \"q\" 'a'\n"
                              "🎉 👨\u200d👩\u200d👧";

/* Render src for target with {"v": value (len bytes), ...extra}. */
static char *render_v(enum tpl_target target, const char *src, const char *value, size_t len)
{
    struct tpl_error err;
    struct tpl_compile_opts co = {"esc", target, NULL};
    struct tpl *t = tpl_compile(src, strlen(src), &co, &err);
    if (t == NULL)
        fail_msg("compile %s: %u:%u %s", src, err.line, err.col, err.msg);
    struct json_object *j = json_object_new_object();
    json_object_object_add(j, "v", json_object_new_string_len(value, (int)len));
    struct tpl_render_opts o = {"en", "UTC", TT_NOW_MS, 0, NULL, NULL, NULL, NULL};
    struct vn_buf out = VN_BUF_INIT;
    if (tpl_render(t, j, &o, &out, &err) != 0)
        fail_msg("render %s: %s", src, err.msg);
    json_object_put(j);
    tpl_free(t);
    if (out.data == NULL)
        vn_buf_append(&out, "", 0);
    return vn_buf_steal(&out);
}

#define assert_v(target, src, value, expected)                                                     \
    do {                                                                                           \
        char *g_ = render_v((target), (src), (value), strlen(value));                              \
        if (strcmp(g_, (expected)) != 0) {                                                         \
            print_error("template %s\nexpected [%s]\n     got [%s]\n", (src), (expected), g_);     \
            free(g_);                                                                              \
            fail();                                                                                \
        }                                                                                          \
        free(g_);                                                                                  \
    } while (0)

static void test_telegram_html(void **state)
{
    (void)state;
    const char *want = "<b>&lt;script&gt;alert(1)&lt;/script&gt; *_[]()~`&gt;#+-=|{}.!\\ &amp; "
                       "&quot;q&quot; 'a'\n🎉 👨\u200d👩\u200d👧</b>";
    assert_v(TPL_TARGET_TG_HTML, "<b>{{v}}</b>", HOSTILE, want);
    /* raw tags do not make data markup */
    assert_v(TPL_TARGET_TG_HTML, "<b>{{{v}}}</b>", HOSTILE, want);
    assert_v(TPL_TARGET_TG_HTML, "<b>{{& v}}</b>", HOSTILE, want);
    char *out =
        render_v(TPL_TARGET_TG_HTML, "<b>{{v}}</b> <i>{{{v}}}</i>", HOSTILE, strlen(HOSTILE));
    assert_int_equal(tg__check_markup(out, strlen(out), TG_PARSE_HTML), 0);
    free(out);
    /* values that look escaped are escaped again */
    assert_v(TPL_TARGET_TG_HTML, "{{v}}", "&lt;b&gt;", "&amp;lt;b&amp;gt;");
}

static void test_telegram_md2(void **state)
{
    (void)state;
    const char *want =
        "*<script\\>alert\\(1\\)</script\\> \\*\\_\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|"
        "\\{\\}\\.\\!\\\\ & \"q\" 'a'\n🎉 👨\u200d👩\u200d👧*";
    assert_v(TPL_TARGET_TG_MD2, "*{{v}}*", HOSTILE, want);
    assert_v(TPL_TARGET_TG_MD2, "*{{{v}}}*", HOSTILE, want);
    char *out = render_v(TPL_TARGET_TG_MD2, "*{{v}}* _{{v}}_ `{{v}}`", HOSTILE, strlen(HOSTILE));
    assert_int_equal(tg__check_markup(out, strlen(out), TG_PARSE_MD2), 0);
    free(out);
    /* a link built from data keeps its shape */
    out = render_v(TPL_TARGET_TG_MD2, "[{{v}}](https://example.com)", "x](tg://evil) [y",
                   strlen("x](tg://evil) [y"));
    assert_string_equal(out, "[x\\]\\(tg://evil\\) \\[y](https://example.com)");
    assert_int_equal(tg__check_markup(out, strlen(out), TG_PARSE_MD2), 0);
    free(out);
}

static void test_email_html(void **state)
{
    (void)state;
    assert_v(TPL_TARGET_EMAIL_HTML, "<p>{{v}}</p>", HOSTILE,
             "<p>&lt;script&gt;alert(1)&lt;/script&gt; *_[]()~`&gt;#+-=|{}.!\\ &amp; &quot;q&quot; "
             "&#39;a&#39;\n🎉 👨\u200d👩\u200d👧</p>");
    /* attribute values, double or single quoted */
    assert_v(
        TPL_TARGET_EMAIL_HTML, "<td title=\"{{v}}\" class='{{{v}}}'>", "\" onmouseover=\"x' y",
        "<td title=\"&quot; onmouseover=&quot;x&#39; y\" class='&quot; onmouseover=&quot;x&#39; "
        "y'>");
    /* inside <textarea>-like text and after an attribute, still text */
    assert_v(TPL_TARGET_EMAIL_HTML, "<textarea>{{v}}</textarea>", "</textarea><img src=x>",
             "<textarea>&lt;/textarea&gt;&lt;img src=x&gt;</textarea>");
}

static void test_urls(void **state)
{
    (void)state;
    const char *a = "<a href=\"{{v}}\">x</a>";
    static const char *blocked[] = {
        "javascript:alert(1)",
        "  JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(blocked); i++) {
        assert_v(TPL_TARGET_TG_HTML, a, blocked[i], "<a href=\"about:invalid#blocked\">x</a>");
        assert_v(TPL_TARGET_EMAIL_HTML, a, blocked[i], "<a href=\"about:invalid#blocked\">x</a>");
    }
    assert_v(TPL_TARGET_TG_HTML, a, "https://example.com/a b?x=1&y=\"2\"#f'",
             "<a href=\"https://example.com/a%20b?x=1&amp;y=%222%22#f%27\">x</a>");
    assert_v(TPL_TARGET_TG_HTML, a, "tg://user?id=42", "<a href=\"tg://user?id=42\">x</a>");
    assert_v(TPL_TARGET_EMAIL_HTML, a, "tg://user?id=42",
             "<a href=\"about:invalid#blocked\">x</a>");
    assert_v(TPL_TARGET_EMAIL_HTML, a, "mailto:a@example.com",
             "<a href=\"mailto:a@example.com\">x</a>");
    assert_v(TPL_TARGET_EMAIL_HTML, a, "/tasks/1", "<a href=\"/tasks/1\">x</a>");
    assert_v(TPL_TARGET_EMAIL_HTML, a, "https://пример.рф/",
             "<a href=\"https://%D0%BF%D1%80%D0%B8%D0%BC%D0%B5%D1%80.%D1%80%D1%84/\">x</a>");
    /* a value after the start of the URL is one component: no new path,
     * query or fragment */
    assert_v(TPL_TARGET_TG_HTML, "<a href=\"https://x.example/t/{{v}}?lang=ru\">x</a>",
             "../../admin?x=1#frag&",
             "<a href=\"https://x.example/t/..%2F..%2Fadmin%3Fx%3D1%23frag%26?lang=ru\">x</a>");
    /* src is a URL attribute too; a later value in the same URL is a part */
    assert_v(TPL_TARGET_EMAIL_HTML, "<img src=\"{{v}}{{v}}\">", "javascript:x",
             "<img src=\"about:invalid#blocked"
             "javascript%3Ax\">");
}

static void test_strict_blocks_bad_urls(void **state)
{
    (void)state;
    struct tpl_error err;
    struct tpl_compile_opts co = {"u", TPL_TARGET_TG_HTML, NULL};
    const char *src = "<a href=\"{{v}}\">x</a>";
    struct tpl *t = tpl_compile(src, strlen(src), &co, &err);
    struct json_object *j = tt_json("{\"v\":\"javascript:alert(1)\"}");
    struct tpl_render_opts o = {"en", "UTC", TT_NOW_MS, 1, NULL, NULL, NULL, NULL};
    struct vn_buf out = VN_BUF_INIT;
    assert_int_equal(tpl_render(t, j, &o, &out, &err), VN_EINVAL);
    assert_int_equal(err.col, 10);
    assert_non_null(strstr(err.msg, "URL scheme not allowed"));
    vn_buf_free(&out);
    json_object_put(j);
    tpl_free(t);
}

static void test_text_and_line(void **state)
{
    (void)state;
    assert_v(TPL_TARGET_TEXT, "[{{v}}]", HOSTILE,
             "[<script>alert(1)</script> *_[]()~`>#+-=|{}.!\\ & \"q\" 'a'\n🎉 👨\u200d👩\u200d👧]");
    /* a subject stays one line whatever the data holds */
    assert_v(TPL_TARGET_LINE, "  Re: {{v}}\n", "Hi\r\nBcc: victim@example.com\u2028x\t\x01y ",
             "Re: Hi Bcc: victim@example.com x y");
    assert_v(TPL_TARGET_LINE, "{{v}}", HOSTILE,
             "<script>alert(1)</script> *_[]()~`>#+-=|{}.!\\ & \"q\" 'a' 🎉 👨\u200d👩\u200d👧");
}

static void test_invalid_utf8_and_nul(void **state)
{
    (void)state;
    static const char bad[] = "a\xff"
                              "b\0c\xe2\x82"; /* stray byte, NUL, cut sequence */
    size_t n = sizeof(bad) - 1;
    char *out;
    out = render_v(TPL_TARGET_TEXT, "{{v}}", bad, n);
    assert_string_equal(out, "a\uFFFDb\uFFFDc\uFFFD\uFFFD");
    free(out);
    out = render_v(TPL_TARGET_TG_HTML, "{{v}}", bad, n);
    assert_string_equal(out, "a\uFFFDb\uFFFDc\uFFFD\uFFFD");
    free(out);
    out = render_v(TPL_TARGET_TG_MD2, "{{v}}", bad, n);
    assert_string_equal(out, "a\uFFFDb\uFFFDc\uFFFD\uFFFD");
    free(out);
    out = render_v(TPL_TARGET_JSON, "{\"v\": \"{{v}}\"}", bad, n);
    assert_string_equal(out, "{\"v\": \"a\\ufffdb\\u0000c\\ufffd\\ufffd\"}");
    free(out);
}

static void test_json(void **state)
{
    (void)state;
    const char *src = "{\"text\": \"Hi {{v}}\", \"v\": {{v}}, \"n\": {{n}}, \"inj\": {{inj}}, "
                      "\"o\": {{o}}, \"missing\": {{nope}}, \"f\": {{f}}, \"d\": {{d | "
                      "datetime \"short\"}}}";
    struct tpl_error err;
    struct tpl_compile_opts co = {"ws", TPL_TARGET_JSON, NULL};
    struct tpl *t = tpl_compile(src, strlen(src), &co, &err);
    assert_non_null(t);
    struct json_object *data = json_object_new_object();
    json_object_object_add(data, "v", json_object_new_string(HOSTILE));
    json_object_object_add(data, "n", json_object_new_int(5));
    json_object_object_add(data, "inj", json_object_new_string("1, \"admin\": true"));
    json_object_object_add(data, "o", tt_json("{\"a\":[1,\"x\",null],\"b\":{\"c\":false}}"));
    json_object_object_add(data, "f", json_object_new_double(0.25));
    json_object_object_add(data, "d", json_object_new_string("2026-03-08T09:30:00Z"));
    struct vn_buf out = VN_BUF_INIT;
    assert_int_equal(tpl_render(t, data, NULL, &out, &err), 0);

    struct json_object *r = json_tokener_parse(out.data), *x;
    assert_non_null(r);
    assert_int_equal(json_object_object_length(r), 8); /* nothing added */
    assert_true(json_object_object_get_ex(r, "text", &x));
    char *hi = xasprintf("Hi %s", HOSTILE);
    assert_string_equal(json_object_get_string(x), hi);
    free(hi);
    assert_true(json_object_object_get_ex(r, "v", &x));
    assert_string_equal(json_object_get_string(x), HOSTILE);
    assert_true(json_object_object_get_ex(r, "n", &x));
    assert_int_equal(json_object_get_type(x), json_type_int);
    assert_true(json_object_object_get_ex(r, "inj", &x));
    assert_string_equal(json_object_get_string(x), "1, \"admin\": true");
    assert_false(json_object_object_get_ex(r, "admin", &x));
    assert_true(json_object_object_get_ex(r, "o", &x));
    assert_string_equal(json_object_to_json_string_ext(x, JSON_C_TO_STRING_PLAIN),
                        "{\"a\":[1,\"x\",null],\"b\":{\"c\":false}}");
    assert_true(json_object_object_get_ex(r, "missing", &x));
    assert_null(x);
    assert_true(json_object_object_get_ex(r, "f", &x));
    assert_true(json_object_get_double(x) == 0.25);
    assert_true(json_object_object_get_ex(r, "d", &x));
    assert_string_equal(json_object_get_string(x), "3/8/26, 9:30\u202fAM");
    json_object_put(r);
    vn_buf_free(&out);
    json_object_put(data);
    tpl_free(t);
}

static void test_json_output_is_validated(void **state)
{
    (void)state;
    /* a template whose list leaves a trailing comma: the render fails */
    const char *src = "[{{#l}}{{.}},{{/l}}]";
    struct tpl_error err;
    struct tpl_compile_opts co = {"list.websocket.mustache", TPL_TARGET_JSON, NULL};
    struct tpl *t = tpl_compile(src, strlen(src), &co, &err);
    struct json_object *j = tt_json("{\"l\":[1,2]}");
    struct vn_buf out = VN_BUF_INIT;
    assert_int_equal(tpl_render(t, j, NULL, &out, &err), VN_EINVAL);
    assert_non_null(strstr(err.msg, "not valid JSON"));
    assert_string_equal(err.file, "list.websocket.mustache");
    assert_int_equal(out.len, 0);
    vn_buf_free(&out);
    json_object_put(j);
    tpl_free(t);
    /* the list as a value instead */
    assert_render(TPL_TARGET_JSON, "{\"l\": {{l}}}", "{\"l\":[1,2]}", "{\"l\": [1,2]}");
}

static void test_unsafe_places_do_not_compile(void **state)
{
    (void)state;
    enum tpl_target H = TPL_TARGET_EMAIL_HTML, T = TPL_TARGET_TG_HTML, J = TPL_TARGET_JSON;
    tt_compile_fails(T, "<a href={{u}}>x</a>", VN_EINVAL, 1, 9, "unquoted attribute");
    tt_compile_fails(H, "<{{tag}}>", VN_EINVAL, 1, 2, "right after '<'");
    tt_compile_fails(H, "</{{tag}}>", VN_EINVAL, 1, 3, "right after '<'");
    tt_compile_fails(H, "<b {{attr}}>", VN_EINVAL, 1, 4, "a tag, outside attribute values");
    tt_compile_fails(H, "<b\n  class=\"x\" {{attr}}=\"1\">", VN_EINVAL, 2, 13,
                     "a tag, outside attribute values (started at 1:1)");
    tt_compile_fails(H, "<a onclick=\"go('{{x}}')\">", VN_EINVAL, 1, 17, "event-handler");
    tt_compile_fails(H, "<p style=\"color: {{c}}\">", VN_EINVAL, 1, 18, "style attributes");
    tt_compile_fails(H, "<script>var x = \"{{x}}\";</script>", VN_EINVAL, 1, 18,
                     "<script> content");
    tt_compile_fails(H, "<style>p{}</style><STYLE>a{color:{{c}}}", VN_EINVAL, 1, 34,
                     "<style> content");
    tt_compile_fails(H, "<!-- {{x}} -->", VN_EINVAL, 1, 6, "an HTML comment");
    tt_compile_fails(T, "{{#x}}<a href=\"{{/x}}\">", VN_EINVAL, 1, 16,
                     "section {{#x}} opened at 1:1 in HTML text ends in a quoted attribute value");
    tt_compile_fails(H, "<a title=\"{{> p}}\">", VN_EINVAL, 1, 11,
                     "a partial must be in HTML text");
    tt_compile_fails(H, "ok\n<a href=\"x\"", VN_EINVAL, 2, 1, "template ends in");
    tt_compile_fails(J, "{\"a\": \"\\{{v}}\"}", VN_EINVAL, 1, 9, "after a backslash");
    tt_compile_fails(J, "{\"a\": \"{{v}}", VN_EINVAL, 1, 7, "ends in inside a JSON string");
    tt_compile_fails(J, "{\"a\": \"{{> p}}\"}", VN_EINVAL, 1, 8, "outside JSON strings");
    tt_compile_fails(J, "{{#a}}\"{{/a}}", VN_EINVAL, 1, 8, "must end in the context it starts in");
    /* the same places are fine where they are safe */
    assert_render(H, "<!-- note --><script>1</script><p class=\"{{v}}\">{{v}}</p>", "{\"v\":\"<\"}",
                  "<!-- note --><script>1</script><p class=\"&lt;\">&lt;</p>");
    assert_render(T, "{{#l}}<a href=\"{{u}}\">{{t}}</a>\n{{/l}}",
                  "{\"l\":[{\"u\":\"https://a.example\",\"t\":\"A\"}]}",
                  "<a href=\"https://a.example\">A</a>\n");
}

/* Values with nothing to escape skip tg_escape_html/tg_escape_md2; that
 * shortcut must agree with them for every character, so a change there
 * cannot silently diverge here. */
static void test_same_as_tg_text_escapers(void **state)
{
    (void)state;
    for (int c = 1; c < 128; c++) {
        char v[4] = {'a', (char)c, 'b', 0};
        struct vn_buf want = VN_BUF_INIT;
        char *got = render_v(TPL_TARGET_TG_HTML, "{{v}}", v, 3);
        tg_escape_html(&want, v, 3);
        assert_string_equal(got, want.data);
        free(got);
        vn_buf_reset(&want);
        got = render_v(TPL_TARGET_TG_MD2, "{{v}}", v, 3);
        tg_escape_md2(&want, v, 3, TG_MD2_TEXT);
        assert_string_equal(got, want.data);
        free(got);
        vn_buf_free(&want);
    }
    /* and for text that needs it all: hostile, non-ASCII, invalid */
    const char *vals[] = {HOSTILE, "Привет & <мир>", "\xff\xfe<b>"};
    for (size_t i = 0; i < VN_ARRAY_LEN(vals); i++) {
        struct vn_buf want = VN_BUF_INIT;
        char *got = render_v(TPL_TARGET_TG_HTML, "{{v}}", vals[i], strlen(vals[i]));
        tg_escape_html(&want, vals[i], strlen(vals[i]));
        assert_string_equal(got, want.data);
        free(got);
        vn_buf_free(&want);
    }
}

static void test_classic_mustache_target(void **state)
{
    (void)state;
    assert_v(TPL_TARGET_MUSTACHE, "{{v}}|{{{v}}}", "<&\"'>", "&lt;&amp;&quot;'&gt;|<&\"'>");
}

/* ---- property test ----------------------------------------------------- */

static uint32_t rng = 12345;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static const char *const PIECES[] = {
    "<",
    ">",
    "&",
    "\"",
    "'",
    "`",
    "\\",
    "*",
    "_",
    "[",
    "]",
    "(",
    ")",
    "~",
    "#",
    "+",
    "-",
    "=",
    "|",
    "{",
    "}",
    ".",
    "!",
    "\n",
    "\r\n",
    "\t",
    " ",
    "a",
    "Z",
    "0",
    "я",
    "🎉",
    "\u200d",
    "&amp;",
    "&lt;",
    "</b>",
    "<a href=\"x\">",
    "{{x}}",
    "javascript:",
    "\\u0022",
    "\u2028",
};

static void random_value(struct vn_buf *b)
{
    vn_buf_reset(b);
    size_t n = next_rand() % 24;
    for (size_t i = 0; i < n; i++)
        vn_buf_puts(b, PIECES[next_rand() % VN_ARRAY_LEN(PIECES)]);
    if (b->data == NULL)
        vn_buf_append(b, "", 0);
}

/* Undo our HTML escaping; fails if the text has markup or another entity. */
static char *html_decode(const char *s, size_t len)
{
    static const char *const ents[][2] = {
        {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""}, {"&#39;", "'"},
    };
    struct vn_buf b = VN_BUF_INIT;
    for (size_t i = 0; i < len;) {
        if (s[i] == '<' || s[i] == '>' || s[i] == '"')
            fail_msg("raw markup character in escaped output: %.*s", (int)len, s);
        if (s[i] == '&') {
            size_t k;
            for (k = 0; k < VN_ARRAY_LEN(ents); k++)
                if (strncmp(s + i, ents[k][0], strlen(ents[k][0])) == 0)
                    break;
            if (k == VN_ARRAY_LEN(ents))
                fail_msg("bare '&' in escaped output: %.*s", (int)len, s);
            vn_buf_puts(&b, ents[k][1]);
            i += strlen(ents[k][0]);
            continue;
        }
        vn_buf_putc(&b, s[i++]);
    }
    if (b.data == NULL)
        vn_buf_append(&b, "", 0);
    return vn_buf_steal(&b);
}

static char *md2_decode(const char *s, size_t len)
{
    struct vn_buf b = VN_BUF_INIT;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len) {
            vn_buf_putc(&b, s[++i]);
            continue;
        }
        if (strchr("_*[]()~`>#+-=|{}.!\\", s[i]) != NULL)
            fail_msg("unescaped MarkdownV2 character '%c' in: %.*s", s[i], (int)len, s);
        vn_buf_putc(&b, s[i]);
    }
    if (b.data == NULL)
        vn_buf_append(&b, "", 0);
    return vn_buf_steal(&b);
}

static void test_random_hostile_values(void **state)
{
    (void)state;
    struct vn_buf v = VN_BUF_INIT;
    for (int iter = 0; iter < 3000; iter++) {
        random_value(&v);
        char *out, *dec;

        out = render_v(TPL_TARGET_TG_HTML, "<b>{{v}}</b>", v.data, v.len);
        assert_int_equal(tg__check_markup(out, strlen(out), TG_PARSE_HTML), 0);
        dec = html_decode(out + 3, strlen(out) - 7);
        assert_string_equal(dec, v.data);
        free(dec);
        free(out);

        out = render_v(TPL_TARGET_EMAIL_HTML, "<p title='{{v}}'>{{v}}</p>", v.data, v.len);
        const char *gt = strchr(out + 10, '>');
        assert_non_null(gt);
        dec = html_decode(out + 10, (size_t)(gt - out) - 11);
        assert_string_equal(dec, v.data);
        free(dec);
        dec = html_decode(gt + 1, strlen(gt + 1) - 4);
        assert_string_equal(dec, v.data);
        free(dec);
        free(out);

        out = render_v(TPL_TARGET_TG_MD2, "*{{v}}*", v.data, v.len);
        assert_int_equal(tg__check_markup(out, strlen(out), TG_PARSE_MD2), 0);
        dec = md2_decode(out + 1, strlen(out) - 2);
        assert_string_equal(dec, v.data);
        free(dec);
        free(out);

        out = render_v(TPL_TARGET_JSON, "{\"a\": \"<{{v}}>\", \"b\": {{v}}}", v.data, v.len);
        struct json_object *r = json_tokener_parse(out), *x;
        assert_non_null(r);
        assert_int_equal(json_object_object_length(r), 2);
        char *want = xasprintf("<%s>", v.data);
        assert_true(json_object_object_get_ex(r, "a", &x));
        assert_string_equal(json_object_get_string(x), want);
        assert_true(json_object_object_get_ex(r, "b", &x));
        assert_string_equal(json_object_get_string(x), v.data);
        free(want);
        json_object_put(r);
        free(out);

        out = render_v(TPL_TARGET_LINE, "{{v}}", v.data, v.len);
        assert_null(strpbrk(out, "\r\n\t"));
        assert_null(strstr(out, "\u2028"));
        free(out);

        out = render_v(TPL_TARGET_TG_HTML, "<a href=\"{{v}}\">x</a>", v.data, v.len);
        assert_int_equal(tg__check_markup(out, strlen(out), TG_PARSE_HTML), 0);
        /* the URL ends where the template's quote is, with no space,
         * quote or bracket inside it */
        const char *end = strchr(out + 9, '"');
        assert_non_null(end);
        assert_string_equal(end, "\">x</a>");
        for (const char *p = out + 9; p < end; p++)
            assert_null(strchr("<>'` \n", *p));
        free(out);
    }
    vn_buf_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_telegram_html),
        cmocka_unit_test(test_telegram_md2),
        cmocka_unit_test(test_email_html),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_strict_blocks_bad_urls),
        cmocka_unit_test(test_text_and_line),
        cmocka_unit_test(test_invalid_utf8_and_nul),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_output_is_validated),
        cmocka_unit_test(test_unsafe_places_do_not_compile),
        cmocka_unit_test(test_same_as_tg_text_escapers),
        cmocka_unit_test(test_classic_mustache_target),
        cmocka_unit_test(test_random_hostile_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
