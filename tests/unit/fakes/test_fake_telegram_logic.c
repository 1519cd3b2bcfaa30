/*
 * The fake Bot API server's pure parts: UTF-16 measures, the markup parsers
 * (expected texts, entities and error descriptions are Telegram's, taken from
 * tdlib's own parser tests), strict-mode rate arithmetic, form decoding.
 *
 * The fake is not part of vncore (it is its own executable), and this file is
 * built by the generic tests/unit loop that links vncore only, so it compiles
 * the fake's logic file into itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/fakes/fake_telegram_logic.c"

struct want_ent {
    const char *type;
    size_t offset, length;
    const char *extra; /* url / language / custom_emoji_id, or NULL */
};

static void check_ok(enum fk_parse_mode mode, const char *in, const char *plain,
                     const struct want_ent *ents, size_t n)
{
    struct fk_text t;
    char err[256];
    fk_text_init(&t);
    int rc = fk_markup_parse(mode, in, strlen(in), &t, err, sizeof(err));
    if (rc != 0)
        fail_msg("parse of \"%s\" failed: %s", in, err);
    assert_string_equal(t.plain.data ? t.plain.data : "", plain);
    if (t.n != n)
        fail_msg("\"%s\": %zu entities, expected %zu", in, t.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(t.ents[i].type, ents[i].type);
        assert_int_equal(t.ents[i].offset, ents[i].offset);
        assert_int_equal(t.ents[i].length, ents[i].length);
        if (ents[i].extra) {
            const char *got = t.ents[i].url        ? t.ents[i].url
                              : t.ents[i].language ? t.ents[i].language
                                                   : t.ents[i].custom_emoji_id;
            assert_non_null(got);
            assert_string_equal(got, ents[i].extra);
        }
    }
    fk_text_cleanup(&t);
}

static void check_err(enum fk_parse_mode mode, const char *in, const char *want)
{
    struct fk_text t;
    char err[256];
    fk_text_init(&t);
    if (fk_markup_parse(mode, in, strlen(in), &t, err, sizeof(err)) != VN_EINVAL)
        fail_msg("\"%s\" parsed, expected the error \"%s\"", in, want);
    assert_string_equal(err, want);
    fk_text_cleanup(&t);
}

static void test_utf16(void **state)
{
    (void)state;
    assert_int_equal(fk_utf16_len("abc", 3), 3);
    assert_int_equal(fk_utf16_len("\xd0\x9f\xd1\x80\xd0\xb8", 6), 3); /* "При" */
    assert_int_equal(fk_utf16_len("\xf0\x9f\x8f\x9f", 4), 2);         /* one emoji, a pair */
    assert_true(fk_utf8_valid("\xf0\x9f\x8f\x9f", 4));
    assert_false(fk_utf8_valid("\xf0\x9f\x8f", 3)); /* truncated */
    assert_false(fk_utf8_valid("\xc0\xaf", 2));     /* overlong */
    assert_false(fk_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
}

#define STADIUM "\xf0\x9f\x8f\x9f" /* U+1F3DF, 4 bytes, 2 UTF-16 units */

static void test_markdown_v2(void **state)
{
    (void)state;
    const char *reserved = "]()#+-=|{}.!"; /* '>' at a line start opens a quote */
    for (const char *c = reserved; *c; c++) {
        char in[2] = {*c, 0}, esc[3] = {'\\', *c, 0}, msg[128];
        snprintf(msg, sizeof(msg),
                 "Character '%c' is reserved and must be escaped with the preceding '\\'", *c);
        check_err(FK_MODE_MARKDOWN_V2, in, msg);
        check_ok(FK_MODE_MARKDOWN_V2, esc, in, NULL, 0);
    }
    check_err(FK_MODE_MARKDOWN_V2, "Version 1.0",
              "Character '.' is reserved and must be escaped with the preceding '\\'");
    check_err(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "_abacaba",
              "Can't find end of Italic entity at byte offset 9");
    check_err(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "_abac * asd ",
              "Can't find end of Bold entity at byte offset 15");
    check_err(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "`",
              "Can't find end of Code entity at byte offset 9");
    check_err(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "```",
              "Can't find end of Pre entity at byte offset 9");
    check_err(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "```a ",
              "Can't find end of PreCode entity at byte offset 9");
    check_err(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "__" STADIUM " " STADIUM "_",
              "Can't find end of Italic entity at byte offset 20");
    check_err(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "_" STADIUM " " STADIUM "__",
              "Can't find end of Underline entity at byte offset 19");
    check_err(FK_MODE_MARKDOWN_V2, "[telegram\\.org](asd\\)",
              "Can't find end of a URL at byte offset 16");
    check_err(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "||test\\|",
              "Can't find end of Spoiler entity at byte offset 9");
    check_err(FK_MODE_MARKDOWN_V2, ">*b\n>ld \n>bo\nld*\nasd\ndef",
              "Can't find end of Bold entity at byte offset 1");
    check_err(FK_MODE_MARKDOWN_V2, ">\n*a*>2",
              "Character '>' is reserved and must be escaped with the preceding '\\'");

    check_ok(FK_MODE_MARKDOWN_V2, "", "", NULL, 0);
    check_ok(FK_MODE_MARKDOWN_V2, "\\\\", "\\", NULL, 0);
    check_ok(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "**", STADIUM " " STADIUM, NULL, 0);
    {
        struct want_ent e[] = {{"italic", 5, 11, NULL}};
        check_ok(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "_abac \\* asd _",
                 STADIUM " " STADIUM "abac * asd ", e, 1);
    }
    {
        struct want_ent e[] = {{"italic", 5, 5, NULL}, {"underline", 8, 2, NULL}};
        check_ok(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "_" STADIUM " __" STADIUM "___",
                 STADIUM " " STADIUM STADIUM " " STADIUM, e, 2);
    }
    {
        struct want_ent e[] = {{"pre", 5, 3, STADIUM}};
        check_ok(FK_MODE_MARKDOWN_V2, STADIUM " " STADIUM "```" STADIUM " " STADIUM "```",
                 STADIUM " " STADIUM " " STADIUM, e, 1);
    }
    {
        struct want_ent e[] = {{"spoiler", 0, 4, NULL}};
        check_ok(FK_MODE_MARKDOWN_V2, "||test||", "test", e, 1);
    }
    {
        struct want_ent e[] = {{"text_link", 0, 12, "telegram.dog"}};
        check_ok(FK_MODE_MARKDOWN_V2, "[telegram\\.org](telegram.dog)", "telegram.org", e, 1);
    }
    {
        struct want_ent e[] = {{"blockquote", 4, 5, NULL}};
        check_ok(FK_MODE_MARKDOWN_V2, "abc\n> \n> \n>\ndef", "abc\n \n \n\ndef", e, 1);
    }
    {
        struct want_ent e[] = {{"blockquote", 0, 12, NULL}, {"bold", 0, 11, NULL}};
        check_ok(FK_MODE_MARKDOWN_V2, ">*b\n>ld \n>bo\n>ld*\nasd\ndef", "b\nld \nbo\nld\nasd\ndef",
                 e, 2);
    }
    {
        struct want_ent e[] = {{"expandable_blockquote", 0, 8, NULL}, {"spoiler", 5, 1, NULL}};
        check_ok(FK_MODE_MARKDOWN_V2, ">asd\n>q||e||w||\nasdad", "asd\nqew\nasdad", e, 2);
    }
    /* A backslash before a non-ASCII character or at the end stays. */
    check_ok(FK_MODE_MARKDOWN_V2, "\\\xd0\xaf\\", "\\\xd0\xaf\\", NULL, 0);
}

static void test_html(void **state)
{
    (void)state;
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<abacaba",
              "Unclosed start tag at byte offset 13");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<abac aba>",
              "Unsupported start tag \"abac\" at byte offset 13");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<i   =aba>",
              "Empty attribute name in the tag \"i\" at byte offset 13");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<i    aba>",
              "Can't find end tag corresponding to start tag \"i\"");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<i    aba  =  ",
              "Unclosed start tag \"i\" at byte offset 13");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<i    aba  =  190azAz-.,",
              "Unexpected end of name token at byte offset 27");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<i    aba  =  \"&lt;&gt;&quot;>",
              "Unclosed start tag at byte offset 13");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;</", "Unexpected end tag at byte offset 13");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<b></b></",
              "Unexpected end tag at byte offset 20");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<i>a</i   ",
              "Unclosed end tag at byte offset 17");
    check_err(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<i>a</em   >",
              "Unmatched end tag at byte offset 17, expected \"</i>\", found \"</em>\"");
    check_err(FK_MODE_HTML, "&#57311;",
              "Text contains invalid Unicode characters after decoding HTML entities, check for "
              "unmatched surrogate code units");

    check_ok(FK_MODE_HTML, "&ge;&lt;&gt;&amp;&quot;&laquo;&raquo;&#12345678;",
             "&ge;<>&\"&laquo;&raquo;&#12345678;", NULL, 0);
    {
        struct want_ent e[] = {{"italic", 5, 7, NULL}, {"bold", 9, 3, NULL}};
        check_ok(FK_MODE_HTML,
                 STADIUM " " STADIUM "<i>" STADIUM " &gt;<b aba   =   caba>&lt" STADIUM "</b></i>",
                 STADIUM " " STADIUM STADIUM " ><" STADIUM, e, 2);
    }
    {
        struct want_ent e[] = {{"italic", 6, 1, NULL}};
        check_ok(FK_MODE_HTML, STADIUM " " STADIUM "&lt;<i    aba  =  '&lt;&gt;&quot;'>a</>",
                 STADIUM " " STADIUM "<a", e, 1);
    }
    {
        struct want_ent e[] = {{"spoiler", 0, 1, NULL},
                               {"text_link", 2, 1, "https://x.org/?a=1&b"}};
        check_ok(FK_MODE_HTML,
                 "<span class=\"tg-spoiler\">s</span> <a href=\"https://x.org/?a=1&amp;b\">l</a>",
                 "s l", e, 2);
    }
    {
        struct want_ent e[] = {{"pre", 0, 3, "c"}};
        check_ok(FK_MODE_HTML, "<pre><code class=\"language-c\">x;y</code></pre>", "x;y", e, 1);
    }
    check_err(FK_MODE_HTML, "<span>x</span>",
              "Tag \"span\" must have class \"tg-spoiler\" at byte offset 0");
}

static void test_markdown_legacy(void **state)
{
    (void)state;
    struct want_ent e[] = {
        {"bold", 0, 1, NULL}, {"italic", 2, 1, NULL}, {"text_link", 4, 4, "http://x.y/"}};
    check_ok(FK_MODE_MARKDOWN, "*a* _b_ [link](http://x.y/)", "a b link", e, 3);
    check_ok(FK_MODE_MARKDOWN, "snake\\_case 1.0", "snake_case 1.0", NULL, 0);
    check_err(FK_MODE_MARKDOWN, "a_b", "Can't find end of the entity starting at byte offset 1");
}

static void test_rate_window(void **state)
{
    (void)state;
    struct fk_rate r;
    struct fk_limit lim = {3, 3000};
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fk_rate_wait(&r, FK_RATE_WINDOW, &lim, 1000), 0);
        fk_rate_take(&r, FK_RATE_WINDOW, &lim, 1000);
    }
    assert_int_equal(fk_rate_wait(&r, FK_RATE_WINDOW, &lim, 1500), 2500);
    assert_int_equal(fk_retry_after_s(2500), 3);
    assert_int_equal(fk_rate_wait(&r, FK_RATE_WINDOW, &lim, 4000), 0);
    fk_rate_take(&r, FK_RATE_WINDOW, &lim, 4000);
    /* the log now holds 1000, 1000, 4000: the next slot frees at 4000 */
    assert_int_equal(fk_rate_wait(&r, FK_RATE_WINDOW, &lim, 3999), 1);
    assert_int_equal(fk_retry_after_s(1), 1);
    fk_rate_cleanup(&r);
}

static void test_rate_bucket(void **state)
{
    (void)state;
    struct fk_rate r;
    struct fk_limit lim = {3, 3000}; /* 3 tokens, 1 per second */
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fk_rate_wait(&r, FK_RATE_BUCKET, &lim, 0), 0);
        fk_rate_take(&r, FK_RATE_BUCKET, &lim, 0);
    }
    assert_int_equal(fk_rate_wait(&r, FK_RATE_BUCKET, &lim, 0), 1000);
    assert_int_equal(fk_rate_wait(&r, FK_RATE_BUCKET, &lim, 400), 600);
    assert_int_equal(fk_rate_wait(&r, FK_RATE_BUCKET, &lim, 1000), 0);
    fk_rate_cleanup(&r);
}

static void test_form(void **state)
{
    (void)state;
    json_object *o = json_object_new_object(), *v = NULL;
    const char *s = "chat_id=42&text=a%26b+c%3D&flag&empty=&text2=%D0%AF";
    assert_int_equal(fk_form_parse(s, strlen(s), 1, o), 0);
    assert_true(json_object_object_get_ex(o, "text", &v));
    assert_string_equal(json_object_get_string(v), "a&b c=");
    assert_true(json_object_object_get_ex(o, "flag", &v));
    assert_string_equal(json_object_get_string(v), "");
    assert_true(json_object_object_get_ex(o, "text2", &v));
    assert_string_equal(json_object_get_string(v), "\xd0\xaf");
    assert_int_equal(fk_form_parse("x=%ff", 5, 1, o), VN_EINVAL);
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf16),       cmocka_unit_test(test_markdown_v2),
        cmocka_unit_test(test_html),        cmocka_unit_test(test_markdown_legacy),
        cmocka_unit_test(test_rate_window), cmocka_unit_test(test_rate_bucket),
        cmocka_unit_test(test_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
