/*
 * test_tg_text.c - bot/tg_text.c: HTML and MarkdownV2 escaping with hostile
 * input, UTF-8 repair, UTF-16 length (ASCII, Cyrillic, CJK, emoji, ZWJ
 * sequences), and splitting long texts (plain, HTML, MarkdownV2) at the
 * preferred boundaries without breaking characters, tags, entities, escapes
 * or open formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot/tg_text.h"
#include "core/common.h"

/* Test text as UTF-8 bytes, so the byte and unit counts below are plain. */
#define PRIVET      "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82" /* привет: 6 letters */
#define ZH          "\xE4\xB8\xAD\xE6\x96\x87"                         /* 中文: 2 characters */
#define GRIN        "\xF0\x9F\x98\x80"                                 /* 😀 U+1F600 */
#define ZWJ         "\xE2\x80\x8D"
#define VS16        "\xEF\xB8\x8F"
#define MAN         "\xF0\x9F\x91\xA8"
#define WOMAN       "\xF0\x9F\x91\xA9"
#define GIRL        "\xF0\x9F\x91\xA7"
#define BOY         "\xF0\x9F\x91\xA6"
#define FAMILY      MAN ZWJ WOMAN ZWJ GIRL ZWJ BOY     /* 4*2 + 3 = 11 units */
#define THUMBS_TONE "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD" /* 👍🏽 4 units */
#define FLAG_UA     "\xF0\x9F\x87\xBA\xF0\x9F\x87\xA6" /* 🇺🇦 4 units */
#define HEART       "\xE2\x9D\xA4" VS16                /* ❤️ 2 units */
#define KEYCAP_1    "1" VS16 "\xE2\x83\xA3"            /* 1️⃣ 3 units */
#define FFFD        "\xEF\xBF\xBD"                     /* U+FFFD, what an invalid byte becomes */

/* A string literal and its length, NULs inside included. */
#define LIT(s) s, sizeof(s) - 1

/* --------------------------------------------------------------- helpers -- */

static char *html(const char *s)
{
    struct vn_buf b = VN_BUF_INIT;
    tg_escape_html(&b, s, strlen(s));
    return vn_buf_steal(&b);
}

static char *md2(const char *s, enum tg_md2_ctx ctx)
{
    struct vn_buf b = VN_BUF_INIT;
    tg_escape_md2(&b, s, strlen(s), ctx);
    return vn_buf_steal(&b);
}

#define assert_escape(call, expected)                                                              \
    do {                                                                                           \
        char *got_ = (call);                                                                       \
        assert_string_equal(got_, (expected));                                                     \
        free(got_);                                                                                \
    } while (0)

/* Split and check what every split must satisfy, whatever the input. */
static int split(const char *s, enum tg_parse_mode mode, size_t limit, struct tg_parts *p)
{
    int rc = tg_split(s, strlen(s), mode, limit, p);
    if (rc != 0) {
        assert_int_equal(p->n, 0);
        assert_null(p->v);
        return rc;
    }
    size_t prev_end = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct tg_part *pt = &p->v[i];
        assert_int_equal(pt->len, strlen(pt->text));
        assert_true(tg_utf8_valid(pt->text, pt->len));
        assert_int_equal(pt->utf16_len, tg_utf16_len_n(pt->text, pt->len));
        assert_true(pt->utf16_len <= (limit ? limit : TG_TEXT_LIMIT));
        assert_true(pt->src_off >= prev_end && pt->src_end > pt->src_off);
        /* Only whitespace is dropped between parts. */
        for (size_t k = prev_end; k < pt->src_off; k++)
            assert_non_null(strchr(" \t\r\n", s[k]));
        prev_end = pt->src_end;
        assert_int_equal(tg__check_markup(pt->text, pt->len, mode), 0);
    }
    return 0;
}

/* Join the source slices with the separators dropped between them. */
static char *rejoin(const char *s, const struct tg_parts *p)
{
    struct vn_buf b = VN_BUF_INIT;
    for (size_t i = 0; i < p->n; i++) {
        if (i)
            vn_buf_append(&b, s + p->v[i - 1].src_end, p->v[i].src_off - p->v[i - 1].src_end);
        vn_buf_append(&b, s + p->v[i].src_off, p->v[i].src_end - p->v[i].src_off);
    }
    return vn_buf_steal(&b);
}

static void assert_parts(const struct tg_parts *p, const char *const *want, size_t n)
{
    if (p->n != n) {
        for (size_t i = 0; i < p->n; i++)
            print_message("part %zu: [%s]\n", i, p->v[i].text);
    }
    assert_int_equal(p->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(p->v[i].text, want[i]);
}

#define ASSERT_PARTS(p, ...)                                                                       \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__};                                                 \
        assert_parts((p), want_, VN_ARRAY_LEN(want_));                                             \
    } while (0)

/* -------------------------------------------------------------- escaping -- */

static void test_escape_html_hostile(void **state)
{
    (void)state;
    assert_escape(html("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
    assert_escape(html("a & b < c > d \"q\" 'single'"),
                  "a &amp; b &lt; c &gt; d &quot;q&quot; 'single'");
    /* Already escaped text is escaped again: the escaper does not guess. */
    assert_escape(html("&amp; &lt;b&gt;"), "&amp;amp; &amp;lt;b&amp;gt;");
    assert_escape(html("<b>bold</b>"), "&lt;b&gt;bold&lt;/b&gt;");
    /* Attribute breakout attempt stays inside the quotes. */
    assert_escape(html("\" onclick=\"x"), "&quot; onclick=&quot;x");
    /* Markdown characters, backslashes, newlines, emoji, Cyrillic: untouched. */
    assert_escape(html("*_[]()~`>#+-=|{}.!\\"), "*_[]()~`&gt;#+-=|{}.!\\");
    assert_escape(html("line1\nline2\r\n\t" PRIVET " " GRIN FAMILY),
                  "line1\nline2\r\n\t" PRIVET " " GRIN FAMILY);
    assert_escape(html(""), "");
}

static void test_escape_html_appends(void **state)
{
    (void)state;
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_puts(&b, "<b>");
    tg_escape_html(&b, "x<y", 3);
    vn_buf_puts(&b, "</b>");
    assert_string_equal(b.data, "<b>x&lt;y</b>");
    /* Length-bounded: bytes after len are not read, NUL inside is kept. */
    vn_buf_reset(&b);
    tg_escape_html(&b, "a\0<zzz", 3);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "a\0&lt;", 6);
    vn_buf_free(&b);
}

static void test_escape_md2_text(void **state)
{
    (void)state;
    assert_escape(md2("*_[]()~`>#+-=|{}.!", TG_MD2_TEXT),
                  "\\*\\_\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\!");
    assert_escape(md2("C:\\dir\\file.txt", TG_MD2_TEXT), "C:\\\\dir\\\\file\\.txt");
    assert_escape(md2("<script>alert(1)</script>", TG_MD2_TEXT),
                  "<script\\>alert\\(1\\)</script\\>");
    /* Already escaped text is escaped again. */
    assert_escape(md2("\\.", TG_MD2_TEXT), "\\\\\\.");
    assert_escape(md2("&amp; \"quotes\" 'single'", TG_MD2_TEXT), "&amp; \"quotes\" 'single'");
    assert_escape(md2("Price: 1.5 + 2 = 3.5!", TG_MD2_TEXT), "Price: 1\\.5 \\+ 2 \\= 3\\.5\\!");
    assert_escape(md2("snake_case_name", TG_MD2_TEXT), "snake\\_case\\_name");
    assert_escape(md2("a\nb\r\n" PRIVET "." GRIN "!", TG_MD2_TEXT),
                  "a\nb\r\n" PRIVET "\\." GRIN "\\!");
    /* Characters Telegram does not reserve stay as they are. */
    assert_escape(md2("@user /cmd $ % ^ & , ; : ? ' \" <", TG_MD2_TEXT),
                  "@user /cmd $ % ^ & , ; : ? ' \" <");
    /* An unknown context escapes the most. */
    assert_escape(md2("a.b", (enum tg_md2_ctx)42), "a\\.b");
}

static void test_escape_md2_code(void **state)
{
    (void)state;
    /* Inside code and pre only ` and \ are escaped. */
    assert_escape(md2("*_[]()~`>#+-=|{}.!\\", TG_MD2_CODE), "*_[]()~\\`>#+-=|{}.!\\\\");
    assert_escape(md2("printf(\"%d\\n\", x); // `tick`", TG_MD2_CODE),
                  "printf(\"%d\\\\n\", x); // \\`tick\\`");
    assert_escape(md2("<script>&amp;</script>\n" PRIVET, TG_MD2_CODE),
                  "<script>&amp;</script>\n" PRIVET);
    assert_escape(md2("```", TG_MD2_CODE), "\\`\\`\\`");
}

static void test_escape_md2_link_url(void **state)
{
    (void)state;
    /* Inside the (...) of a link only ) and \ are escaped. */
    assert_escape(md2("https://example.com/a_(b)?q=1.2&x=*y*", TG_MD2_LINK_URL),
                  "https://example.com/a_(b\\)?q=1.2&x=*y*");
    assert_escape(md2("tg://user?id=123\\)", TG_MD2_LINK_URL), "tg://user?id=123\\\\\\)");
    assert_escape(md2("*_[]()~`>#+-=|{}.!", TG_MD2_LINK_URL), "*_[](\\)~`>#+-=|{}.!");
}

static void test_escape_invalid_utf8(void **state)
{
    (void)state;
    /* Each invalid byte becomes one U+FFFD, escaping goes on around it. */
    assert_escape(html("a\xFF<b\xC0\xAF"), "a" FFFD "&lt;b" FFFD FFFD);
    assert_escape(md2("x\x80.", TG_MD2_TEXT), "x" FFFD "\\.");
    /* A truncated emoji at the end: three bytes, three replacements. */
    assert_escape(md2("ok\xF0\x9F\x98", TG_MD2_CODE), "ok" FFFD FFFD FFFD);
}

/* ------------------------------------------------------------ UTF-8/16 -- */

static void test_utf8_valid_and_sanitize(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        int replaced; /* bytes replaced */
        const char *out;
        size_t out_len;
    } cases[] = {
        {LIT("plain ascii"), 0, LIT("plain ascii")},
        {LIT(PRIVET ZH GRIN FAMILY), 0, LIT(PRIVET ZH GRIN FAMILY)},
        {LIT("nul\0inside"), 0, LIT("nul\0inside")},
        {LIT("\x80"), 1, LIT(FFFD)},                            /* lone continuation */
        {LIT("\xC0\x80"), 2, LIT(FFFD FFFD)},                   /* overlong NUL */
        {LIT("\xE0\x80\xAF"), 3, LIT(FFFD FFFD FFFD)},          /* overlong '/' */
        {LIT("\xED\xA0\x80"), 3, LIT(FFFD FFFD FFFD)},          /* surrogate D800 */
        {LIT("\xF4\x90\x80\x80"), 4, LIT(FFFD FFFD FFFD FFFD)}, /* above U+10FFFF */
        {LIT("a\xF0\x9F\x98"
             "b"),
         3, LIT("a" FFFD FFFD FFFD "b")}, /* cut short */
        {LIT("\xFE\xFF"), 2, LIT(FFFD FFFD)},
        {LIT("\xF4\x8F\xBF\xBF"), 0, LIT("\xF4\x8F\xBF\xBF")}, /* U+10FFFF is fine */
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        struct vn_buf b = VN_BUF_INIT;
        assert_int_equal(tg_utf8_valid(cases[i].in, cases[i].len), cases[i].replaced == 0);
        assert_int_equal(tg_utf8_sanitize(&b, cases[i].in, cases[i].len), cases[i].replaced);
        assert_int_equal(b.len, cases[i].out_len);
        assert_memory_equal(b.data, cases[i].out, b.len);
        assert_true(tg_utf8_valid(b.data, b.len));
        vn_buf_free(&b);
    }
}

static void test_utf16_len(void **state)
{
    (void)state;
    assert_int_equal(tg_utf16_len_n("", 0), 0);
    assert_int_equal(tg_utf16_len_n("hello", 5), 5);
    /* Cyrillic: 2 bytes, 1 unit. CJK: 3 bytes, 1 unit. */
    assert_int_equal(tg_utf16_len_n(PRIVET, strlen(PRIVET)), 6);
    assert_int_equal(tg_utf16_len_n(ZH, strlen(ZH)), 2);
    /* Emoji above U+FFFF: 4 bytes, 2 units (a surrogate pair). */
    assert_int_equal(tg_utf16_len_n(GRIN, strlen(GRIN)), 2);
    assert_int_equal(tg_utf16_len_n(FAMILY, strlen(FAMILY)), 11);
    assert_int_equal(tg_utf16_len_n(THUMBS_TONE, strlen(THUMBS_TONE)), 4);
    assert_int_equal(tg_utf16_len_n(FLAG_UA, strlen(FLAG_UA)), 4);
    assert_int_equal(tg_utf16_len_n(HEART, strlen(HEART)), 2);
    assert_int_equal(tg_utf16_len_n(KEYCAP_1, strlen(KEYCAP_1)), 3);
    assert_int_equal(tg_utf16_len_n("a" PRIVET ZH GRIN, strlen("a" PRIVET ZH GRIN)), 1 + 6 + 2 + 2);
    /* An invalid byte counts as the one U+FFFD it will become. */
    assert_int_equal(tg_utf16_len_n("\xF0\x9F\x98", 3), 3);
    assert_int_equal(tg_utf16_len_n("x\xFFy", 3), 3);
}

static void test_parse_mode_name(void **state)
{
    (void)state;
    assert_string_equal(tg_parse_mode_name(TG_PARSE_HTML), "HTML");
    assert_string_equal(tg_parse_mode_name(TG_PARSE_MD2), "MarkdownV2");
    assert_null(tg_parse_mode_name(TG_PARSE_PLAIN));
    assert_null(tg_parse_mode_name((enum tg_parse_mode)9));
}

/* ------------------------------------------------------ splitting: plain -- */

static void test_split_fits_unchanged(void **state)
{
    (void)state;
    struct tg_parts p;
    const char *s = "  Hello,\n\n" PRIVET " " GRIN "  ";
    assert_int_equal(split(s, TG_PARSE_PLAIN, 0, &p), 0);
    ASSERT_PARTS(&p, s); /* whitespace at the ends is kept when nothing is cut */
    assert_int_equal(p.v[0].src_off, 0);
    assert_int_equal(p.v[0].src_end, strlen(s));
    tg_parts_free(&p);
    tg_parts_free(&p); /* twice is fine */

    /* Exactly at the limit still fits. */
    assert_int_equal(split("0123456789", TG_PARSE_PLAIN, 10, &p), 0);
    ASSERT_PARTS(&p, "0123456789");
    tg_parts_free(&p);
}

static void test_split_empty_and_blank(void **state)
{
    (void)state;
    struct tg_parts p;
    /* Telegram rejects empty messages: nothing visible, no parts. */
    assert_int_equal(split("", TG_PARSE_PLAIN, 0, &p), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(split(" \n\t\r\n ", TG_PARSE_PLAIN, 3, &p), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(split("<b> </b>", TG_PARSE_HTML, 0, &p), 0);
    assert_int_equal(p.n, 0);
    tg_parts_free(&p);
}

static void test_split_prefers_paragraph_line_space(void **state)
{
    (void)state;
    struct tg_parts p;
    /* A paragraph break wins over a later line break and space. */
    assert_int_equal(split("aaaaa bbbbb\n\ncc dd\nee ff", TG_PARSE_PLAIN, 20, &p), 0);
    ASSERT_PARTS(&p, "aaaaa bbbbb", "cc dd\nee ff");
    tg_parts_free(&p);

    /* No paragraph break: the last line break that fits. */
    assert_int_equal(split("aaaa bbbb\ncccc dd\nee ff gg", TG_PARSE_PLAIN, 20, &p), 0);
    ASSERT_PARTS(&p, "aaaa bbbb\ncccc dd", "ee ff gg");
    tg_parts_free(&p);

    /* No line break: the last space that fits; runs of blanks are dropped. */
    assert_int_equal(split("one two three   four five", TG_PARSE_PLAIN, 15, &p), 0);
    ASSERT_PARTS(&p, "one two three", "four five");
    tg_parts_free(&p);

    /* A paragraph break that would leave the part under half full loses to a
     * line break further on. */
    assert_int_equal(split("ab\n\ncdefgh ijkl\nmnopqrstu", TG_PARSE_PLAIN, 20, &p), 0);
    ASSERT_PARTS(&p, "ab\n\ncdefgh ijkl", "mnopqrstu");
    tg_parts_free(&p);
}

static void test_split_cyrillic_lines_4096(void **state)
{
    (void)state;
    /* 10,000+ Cyrillic letters in lines of 60 (+ '\n'): 2 bytes, 1 unit each. */
    struct vn_buf b = VN_BUF_INIT;
    size_t letters = 0;
    for (int line = 0; letters < 10000; line++) {
        for (int i = 0; i < 10; i++, letters += 6)
            vn_buf_puts(&b, PRIVET);
        vn_buf_putc(&b, '\n');
    }
    struct tg_parts p;
    assert_int_equal(split(b.data, TG_PARSE_PLAIN, TG_TEXT_LIMIT, &p), 0);
    assert_int_equal(p.n, 3);
    for (size_t i = 0; i < p.n; i++) {
        assert_true(p.v[i].utf16_len <= TG_TEXT_LIMIT);
        /* Cut at line ends: every part is whole lines, the '\n' dropped
         * (the last part keeps the text's final '\n': nothing is cut there). */
        assert_int_equal(p.v[i].utf16_len % 61, i + 1 < p.n ? 60 : 0);
        assert_memory_equal(p.v[i].text, PRIVET, strlen(PRIVET));
        if (i + 1 < p.n) {
            assert_true(p.v[i].utf16_len > TG_TEXT_LIMIT - 61);
            assert_int_equal(p.v[i + 1].src_off - p.v[i].src_end, 1);
            assert_int_equal(b.data[p.v[i].src_end], '\n');
        }
    }
    /* Parts joined with the dropped '\n' give the original (minus the final
     * '\n', which the last part keeps since nothing is cut there). */
    char *joined = rejoin(b.data, &p);
    assert_string_equal(joined, b.data);
    free(joined);
    tg_parts_free(&p);
    vn_buf_free(&b);
}

static void test_split_emoji_only(void **state)
{
    (void)state;
    /* No spaces at all: cuts fall between emoji, never inside one. */
    static const char *const emoji[] = {GRIN, FAMILY, THUMBS_TONE, FLAG_UA, HEART, KEYCAP_1};
    struct vn_buf b = VN_BUF_INIT;
    for (int i = 0; i < 300; i++)
        vn_buf_puts(&b, emoji[(i * 7) % VN_ARRAY_LEN(emoji)]);

    static const size_t limits[] = {11, 12, 20, 50, 4096};
    for (size_t li = 0; li < VN_ARRAY_LEN(limits); li++) {
        struct tg_parts p;
        assert_int_equal(split(b.data, TG_PARSE_PLAIN, limits[li], &p), 0);
        assert_true(p.n >= 2 || limits[li] == 4096);
        for (size_t i = 0; i < p.n; i++) {
            /* Every part is a run of whole emoji from the list. */
            const char *q = p.v[i].text;
            while (*q) {
                size_t k;
                for (k = 0; k < VN_ARRAY_LEN(emoji); k++) {
                    if (strncmp(q, emoji[k], strlen(emoji[k])) == 0)
                        break;
                }
                if (k == VN_ARRAY_LEN(emoji))
                    fail_msg("limit %zu part %zu is cut inside an emoji at byte %zu", limits[li], i,
                             (size_t)(q - p.v[i].text));
                q += strlen(emoji[k]);
            }
        }
        char *joined = rejoin(b.data, &p);
        assert_string_equal(joined, b.data);
        free(joined);
        tg_parts_free(&p);
    }
    vn_buf_free(&b);
}

static void test_split_emoji_last_resort(void **state)
{
    (void)state;
    struct tg_parts p;
    /* A family (11 units) cannot fit in 10: cut inside the sequence, but at
     * code points, never inside a surrogate pair. */
    assert_int_equal(split(FAMILY, TG_PARSE_PLAIN, 10, &p), 0);
    ASSERT_PARTS(&p, MAN ZWJ WOMAN ZWJ GIRL ZWJ, BOY); /* never right before a ZWJ */
    tg_parts_free(&p);
    /* Limit 1 and a 2-unit emoji: no progress possible. */
    assert_int_equal(split(GRIN, TG_PARSE_PLAIN, 1, &p), VN_EINVAL);
    assert_int_equal(split("a" GRIN, TG_PARSE_PLAIN, 1, &p), VN_EINVAL);
    /* Limit 2: one emoji per part. */
    assert_int_equal(split(GRIN GRIN GRIN, TG_PARSE_PLAIN, 2, &p), 0);
    ASSERT_PARTS(&p, GRIN, GRIN, GRIN);
    tg_parts_free(&p);
}

static void test_split_long_word(void **state)
{
    (void)state;
    struct tg_parts p;
    /* A Cyrillic word of 48 letters at limit 20: code point cuts 20/20/8. */
    struct vn_buf b = VN_BUF_INIT;
    for (int i = 0; i < 8; i++)
        vn_buf_puts(&b, PRIVET);
    vn_buf_puts(&b, " end");
    assert_int_equal(split(b.data, TG_PARSE_PLAIN, 20, &p), 0);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.v[0].utf16_len, 20);
    assert_int_equal(p.v[1].utf16_len, 20);
    assert_string_equal(p.v[2].text, "\xD0\xB5\xD1\x82" PRIVET " end"); /* letters 40.. */
    for (size_t i = 0; i < p.n; i++)
        assert_int_equal(p.v[i].len % 2 == 0 || i == 2, 1);
    char *joined = rejoin(b.data, &p);
    assert_string_equal(joined, b.data); /* nothing dropped: no whitespace at the cuts */
    free(joined);
    tg_parts_free(&p);
    vn_buf_free(&b);

    /* A word is cut only when no space fits: it goes to the next part whole. */
    assert_int_equal(split("tiny abcdefghijklmnopqrst", TG_PARSE_PLAIN, 20, &p), 0);
    ASSERT_PARTS(&p, "tiny", "abcdefghijklmnopqrst");
    tg_parts_free(&p);
}

static void test_split_invalid_utf8(void **state)
{
    (void)state;
    struct tg_parts p;
    /* Repaired first; parts are valid UTF-8 and the replacement counts 1. */
    assert_int_equal(tg_split("ab\xFF"
                              "cd ef",
                              8, TG_PARSE_PLAIN, 5, &p),
                     0);
    ASSERT_PARTS(&p, "ab" FFFD "cd", "ef");
    assert_int_equal(p.v[0].utf16_len, 5);
    tg_parts_free(&p);
}

static void test_split_bad_arguments(void **state)
{
    (void)state;
    struct tg_parts p = {(struct tg_part *)&p, 99};
    assert_int_equal(tg_split(NULL, 3, TG_PARSE_PLAIN, 0, &p), VN_EINVAL);
    assert_int_equal(p.n, 0); /* initialised even on error */
    assert_int_equal(tg_split("x", 1, (enum tg_parse_mode)7, 0, &p), VN_EINVAL);
    assert_int_equal(tg_split("x", 1, TG_PARSE_PLAIN, 0, NULL), VN_EINVAL);
    assert_int_equal(tg_split("x", TG_SPLIT_MAX_BYTES + 1, TG_PARSE_PLAIN, 0, &p), VN_ETOOBIG);
    assert_int_equal(tg_split(NULL, 0, TG_PARSE_PLAIN, 0, &p), 0);
    assert_int_equal(p.n, 0);
    tg_parts_free(NULL);
}

static void test_split_huge_whitespace(void **state)
{
    (void)state;
    /* Whitespace runs longer than the limit are dropped at a cut, even at the
     * very start. */
    struct vn_buf b = VN_BUF_INIT;
    for (int i = 0; i < 50; i++)
        vn_buf_putc(&b, ' ');
    vn_buf_puts(&b, "word");
    for (int i = 0; i < 50; i++)
        vn_buf_puts(&b, "\n");
    vn_buf_puts(&b, "next");
    for (int i = 0; i < 50; i++)
        vn_buf_putc(&b, '\t');
    struct tg_parts p;
    assert_int_equal(split(b.data, TG_PARSE_PLAIN, 20, &p), 0);
    ASSERT_PARTS(&p, "word", "next");
    tg_parts_free(&p);
    vn_buf_free(&b);
}

/* ------------------------------------------------------- splitting: HTML -- */

static void test_split_html_reopens_tags(void **state)
{
    (void)state;
    struct tg_parts p;
    assert_int_equal(split("<b>bold text that is long</b> and more", TG_PARSE_HTML, 20, &p), 0);
    ASSERT_PARTS(&p, "<b>bold text</b>", "<b>that is long</b>", "and more");
    tg_parts_free(&p);

    /* Nested tags close innermost first and reopen outermost first. */
    assert_int_equal(split("<b>one <i>two three four</i> five</b>", TG_PARSE_HTML, 30, &p), 0);
    ASSERT_PARTS(&p, "<b>one <i>two three</i></b>", "<b><i>four</i> five</b>");
    tg_parts_free(&p);

    /* Every supported kind, attributes kept on reopening. */
    assert_int_equal(split("<tg-spoiler>aaa bbb</tg-spoiler> <blockquote expandable>ccc "
                           "ddd</blockquote> <span class=\"tg-spoiler\">eee fff</span>",
                           TG_PARSE_HTML, 40, &p),
                     0);
    ASSERT_PARTS(&p, "<tg-spoiler>aaa bbb</tg-spoiler>", "<blockquote expandable>ccc</blockquote>",
                 "<blockquote expandable>ddd</blockquote>",
                 "<span class=\"tg-spoiler\">eee fff</span>");
    tg_parts_free(&p);
    assert_int_equal(split("<span class=\"tg-spoiler\">eee fff</span>", TG_PARSE_HTML, 36, &p), 0);
    ASSERT_PARTS(&p, "<span class=\"tg-spoiler\">eee</span>",
                 "<span class=\"tg-spoiler\">fff</span>");
    tg_parts_free(&p);
}

static void test_split_html_bold_4096(void **state)
{
    (void)state;
    /* 12,000 units of Cyrillic lines, all bold, with escaped text inside. */
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_puts(&b, "<b>");
    for (int line = 0; line < 200; line++) {
        vn_buf_printf(&b, "%03d ", line);
        for (int i = 0; i < 9; i++)
            vn_buf_puts(&b, PRIVET);
        vn_buf_puts(&b, " &lt;&amp;&gt;\n");
    }
    vn_buf_puts(&b, "</b>");
    struct tg_parts p;
    assert_int_equal(split(b.data, TG_PARSE_HTML, TG_TEXT_LIMIT, &p), 0);
    assert_int_equal(p.n, 4);
    for (size_t i = 0; i < p.n; i++) {
        assert_true(p.v[i].utf16_len <= TG_TEXT_LIMIT);
        assert_memory_equal(p.v[i].text, "<b>", 3);
        assert_string_equal(p.v[i].text + p.v[i].len - 4, "</b>");
        /* Cut at line ends, never inside an entity. */
        if (i + 1 < p.n) {
            assert_string_equal(p.v[i].text + p.v[i].len - 17, "&lt;&amp;&gt;</b>");
            assert_int_equal(p.v[i + 1].src_off - p.v[i].src_end, 1);
        }
    }
    char *joined = rejoin(b.data, &p);
    assert_string_equal(joined, b.data);
    free(joined);
    tg_parts_free(&p);
    vn_buf_free(&b);
}

static void test_split_html_never_inside_entity(void **state)
{
    (void)state;
    struct tg_parts p;
    /* 18 units of "x" then "&amp;": a cut at 20 would fall inside it. */
    assert_int_equal(split("xxxxxxxxxxxxxxxxxx&amp;yyyy", TG_PARSE_HTML, 20, &p), 0);
    ASSERT_PARTS(&p, "xxxxxxxxxxxxxxxxxx", "&amp;yyyy");
    tg_parts_free(&p);

    assert_int_equal(split("a &amp; b &lt; c &#128512; d &#x1F600; e", TG_PARSE_HTML, 11, &p), 0);
    ASSERT_PARTS(&p, "a &amp; b", "&lt; c", "&#128512; d", "&#x1F600; e");
    tg_parts_free(&p);
}

static void test_split_html_never_inside_tag(void **state)
{
    (void)state;
    struct tg_parts p;
    /* The tag is 22 units; the text before it can't share a part with it. */
    assert_int_equal(split("abcdef <a href=\"https://x.io/\">link</a>", TG_PARSE_HTML, 32, &p), 0);
    ASSERT_PARTS(&p, "abcdef", "<a href=\"https://x.io/\">link</a>");
    tg_parts_free(&p);
    /* Two units less: the 24-unit tag and its closing leave room for 2. */
    assert_int_equal(split("abcdef <a href=\"https://x.io/\">link</a>", TG_PARSE_HTML, 30, &p), 0);
    ASSERT_PARTS(&p, "abcdef", "<a href=\"https://x.io/\">li</a>",
                 "<a href=\"https://x.io/\">nk</a>");
    tg_parts_free(&p);
    /* '>' inside a quoted attribute does not end the tag. */
    assert_int_equal(split("<a href=\"https://x.io/?a>b\">go there</a>", TG_PARSE_HTML, 39, &p), 0);
    ASSERT_PARTS(&p, "<a href=\"https://x.io/?a>b\">go</a>",
                 "<a href=\"https://x.io/?a>b\">there</a>");
    tg_parts_free(&p);
}

static void test_split_html_long_link(void **state)
{
    (void)state;
    /* A long link text is cut into several links to the same URL. */
    struct vn_buf b = VN_BUF_INIT;
    const char *open = "<a href=\"https://example.com/path?q=1&amp;r=2\">";
    vn_buf_puts(&b, "See ");
    vn_buf_puts(&b, open);
    for (int i = 0; i < 30; i++)
        vn_buf_puts(&b, "word ");
    vn_buf_puts(&b, "end</a> after.");
    struct tg_parts p;
    assert_int_equal(split(b.data, TG_PARSE_HTML, 100, &p), 0);
    assert_true(p.n >= 3);
    for (size_t i = 0; i < p.n; i++) {
        assert_true(p.v[i].utf16_len <= 100);
        if (i > 0)
            assert_memory_equal(p.v[i].text, open, strlen(open));
        if (i + 1 < p.n)
            assert_string_equal(p.v[i].text + p.v[i].len - 4, "</a>");
    }
    assert_string_equal(p.v[p.n - 1].text + p.v[p.n - 1].len - 14, "end</a> after.");
    tg_parts_free(&p);
    vn_buf_free(&b);
}

static void test_split_html_pre_code(void **state)
{
    (void)state;
    struct tg_parts p;
    /* A code block goes on in the next part with its language; indentation
     * after the cut is kept. */
    const char *s =
        "<pre><code class=\"language-c\">int main(void)\n{\n    return 0;\n}</code></pre>";
    assert_int_equal(split(s, TG_PARSE_HTML, 60, &p), 0);
    ASSERT_PARTS(&p, "<pre><code class=\"language-c\">int main(void)\n{</code></pre>",
                 "<pre><code class=\"language-c\">    return 0;\n}</code></pre>");
    tg_parts_free(&p);
}

static void test_split_html_emoji_tag_atomic(void **state)
{
    (void)state;
    struct tg_parts p;
    /* A custom emoji is never cut, not even at its inner boundaries. */
    const char *s = "hi <tg-emoji emoji-id=\"5368324170671202286\">" THUMBS_TONE "</tg-emoji> ok";
    const char *emoji = "<tg-emoji emoji-id=\"5368324170671202286\">" THUMBS_TONE "</tg-emoji>";
    assert_int_equal(tg_utf16_len_n(emoji, strlen(emoji)), 56);
    assert_int_equal(split(s, TG_PARSE_HTML, 56, &p), 0);
    ASSERT_PARTS(&p, "hi", emoji, "ok");
    tg_parts_free(&p);
    assert_int_equal(split(s, TG_PARSE_HTML, 55, &p), VN_EINVAL);
}

static void test_split_html_limit_too_small(void **state)
{
    (void)state;
    struct tg_parts p;
    /* A single tag longer than the limit. */
    assert_int_equal(
        split("<a href=\"https://example.com/very/long\">x</a>", TG_PARSE_HTML, 20, &p), VN_EINVAL);
    /* Open tags leave no room: "<b><i>" + "</i></b>" is 14 already. */
    assert_int_equal(split("<b><i>xx yy</i></b>", TG_PARSE_HTML, 14, &p), VN_EINVAL);
    /* An entity longer than the limit. */
    assert_int_equal(split("ab &quot; cd", TG_PARSE_HTML, 5, &p), VN_EINVAL);
    assert_int_equal(split("<b><i>xx yy</i></b>", TG_PARSE_HTML, 16, &p), 0);
    ASSERT_PARTS(&p, "<b><i>xx</i></b>", "<b><i>yy</i></b>");
    tg_parts_free(&p);
    assert_int_equal(split("<b><i>xx yy</i></b>", TG_PARSE_HTML, 15, &p), 0);
    ASSERT_PARTS(&p, "<b><i>x</i></b>", "<b><i>x</i></b>", "<b><i>y</i></b>", "<b><i>y</i></b>");
    tg_parts_free(&p);
}

/* -------------------------------------------------- splitting: MarkdownV2 -- */

static void test_split_md2_never_inside_escape(void **state)
{
    (void)state;
    struct tg_parts p;
    /* 19 units then "\.": a cut at 20 would separate '\' from '.'. */
    assert_int_equal(split("abcdefghijklmnopqrs\\.tuv", TG_PARSE_MD2, 20, &p), 0);
    ASSERT_PARTS(&p, "abcdefghijklmnopqrs", "\\.tuv");
    tg_parts_free(&p);

    struct vn_buf b = VN_BUF_INIT;
    for (int i = 0; i < 40; i++)
        vn_buf_puts(&b, "\\.");
    assert_int_equal(split(b.data, TG_PARSE_MD2, 7, &p), 0);
    assert_int_equal(p.n, 14); /* 13 x 3 escapes, then 1 */
    for (size_t i = 0; i + 1 < p.n; i++)
        assert_string_equal(p.v[i].text, "\\.\\.\\.");
    assert_string_equal(p.v[13].text, "\\.");
    tg_parts_free(&p);
    vn_buf_free(&b);
}

static void test_split_md2_reopens_entities(void **state)
{
    (void)state;
    struct tg_parts p;
    assert_int_equal(split("*bold text that is long* and more", TG_PARSE_MD2, 16, &p), 0);
    ASSERT_PARTS(&p, "*bold text that*", "*is long* and", "more");
    tg_parts_free(&p);

    assert_int_equal(
        split("~strike out~ ||hidden spoiler|| `inline code here`", TG_PARSE_MD2, 15, &p), 0);
    /* Inside code a space is content: the cut keeps it. */
    ASSERT_PARTS(&p, "~strike out~", "||hidden||", "||spoiler||", "`inline code`", "` here`");
    tg_parts_free(&p);

    /* Links: the text is cut, each half links to the URL. */
    assert_int_equal(split("x [link text here](http://e.com/a) y", TG_PARSE_MD2, 24, &p), 0);
    ASSERT_PARTS(&p, "x [link](http://e.com/a)", "[text](http://e.com/a)",
                 "[here](http://e.com/a) y");
    tg_parts_free(&p);
}

static void test_split_md2_underscore_seams(void **state)
{
    (void)state;
    struct tg_parts p;
    /* Italic around underline: "_" + "__" would read as "__" + "_", so an
     * empty bold "**" goes between, as the Bot API advises. */
    assert_int_equal(split("_it __under line__ end_", TG_PARSE_MD2, 20, &p), 0);
    ASSERT_PARTS(&p, "_it __under__**_", "_**__line__ end_");
    tg_parts_free(&p);

    /* Underline around italic; and a closing '_' in the text itself meeting
     * the "__" that closes the part. */
    assert_int_equal(split("__un _it al_ done__", TG_PARSE_MD2, 14, &p), 0);
    ASSERT_PARTS(&p, "__un _it_**__", "__**_al_**__", "__done__");
    tg_parts_free(&p);
}

static void test_split_md2_pre_language(void **state)
{
    (void)state;
    struct tg_parts p;
    const char *s = "Code:\n```python\ndef f():\n    return 1\n```\nDone\\.";
    assert_int_equal(split(s, TG_PARSE_MD2, 30, &p), 0);
    ASSERT_PARTS(&p, "Code:\n```python\ndef f():```", "```python\n    return 1\n```", "Done\\.");
    tg_parts_free(&p);

    /* Without a language the block reopens bare. */
    assert_int_equal(split("```\naaaa bbbb\ncccc\n```", TG_PARSE_MD2, 16, &p), 0);
    ASSERT_PARTS(&p, "```\naaaa bbbb```", "```\ncccc\n```");
    tg_parts_free(&p);
}

static void test_split_md2_quote(void **state)
{
    (void)state;
    struct tg_parts p;
    /* At a line break every quoted line carries its own '>'. */
    assert_int_equal(split(">first line\n>second line\nafter", TG_PARSE_MD2, 16, &p), 0);
    ASSERT_PARTS(&p, ">first line", ">second line", "after");
    tg_parts_free(&p);
    /* Bold running over quoted lines: the line's own '>' comes first, then
     * the bold is reopened, the order Telegram needs. */
    assert_int_equal(split(">*first line\n>second* line\nafter", TG_PARSE_MD2, 16, &p), 0);
    ASSERT_PARTS(&p, ">*first line*", ">*second* line", "after");
    tg_parts_free(&p);
    /* Inside a quoted line the next part starts with '>'. */
    assert_int_equal(split(">quoted words go on", TG_PARSE_MD2, 13, &p), 0);
    ASSERT_PARTS(&p, ">quoted words", ">go on");
    tg_parts_free(&p);
}

static void test_split_md2_quote_inside_spoiler(void **state)
{
    (void)state;
    struct tg_parts p;
    /* Regression (fuzz): a quote inside a spoiler. The spoiler can only be
     * closed once a line break has ended the quote, so a part cut inside the
     * quote closes with "\n||", and the line break that ends the quote in the
     * text is never the cut (without it "||" would read as the expandable
     * mark and leave the spoiler open). */
    assert_int_equal(split("||>aaa bbb ccc\nafter||", TG_PARSE_MD2, 12, &p), 0);
    ASSERT_PARTS(&p, "||>aaa\n||", "||>bbb\n||", "||>ccc\naft||", "||er||");
    tg_parts_free(&p);
}

static void test_split_md2_emoji_and_backslash(void **state)
{
    (void)state;
    struct tg_parts p;
    /* A custom emoji is atomic. */
    const char *s = "abc ![" THUMBS_TONE "](tg://emoji?id=5368324170671202286) d";
    assert_int_equal(split(s, TG_PARSE_MD2, 44, &p), 0);
    ASSERT_PARTS(&p, "abc", "![" THUMBS_TONE "](tg://emoji?id=5368324170671202286) d");
    tg_parts_free(&p);
    assert_int_equal(split(s, TG_PARSE_MD2, 41, &p), VN_EINVAL);

    /* A literal '\' before a non-ASCII letter is never left at a part's end,
     * where the closing '*' would turn into "\*". */
    assert_int_equal(split("*ab\\" PRIVET "*", TG_PARSE_MD2, 6, &p), 0);
    ASSERT_PARTS(&p, "*ab\\\xD0\xBF*", "*\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5*", "*\xD1\x82*");
    tg_parts_free(&p);
    assert_int_equal(split("*abc\\" PRIVET "*", TG_PARSE_MD2, 6, &p), 0);
    ASSERT_PARTS(&p, "*abc*", "*\\\xD0\xBF\xD1\x80\xD0\xB8*", "*\xD0\xB2\xD0\xB5\xD1\x82*");
    tg_parts_free(&p);
}

static void test_split_md2_no_cut_next_to_markers(void **state)
{
    (void)state;
    struct tg_parts p;
    /* Regression (fuzz): a line break right before a closing '`' used to be
     * a cut; the next part then began "`" (reopened) + "``bbbb`", which
     * Telegram reads as a pre block. */
    assert_int_equal(split("`aaaa \n``bbbb`", TG_PARSE_MD2, 10, &p), 0);
    ASSERT_PARTS(&p, "`aaaa \n`", "`bbbb`");
    tg_parts_free(&p);
    /* Same rule in HTML: no empty <b></b> left behind by a cut. */
    assert_int_equal(split("xx <b> yy zz</b>", TG_PARSE_HTML, 12, &p), 0);
    ASSERT_PARTS(&p, "xx", "<b> yy</b>", "<b>zz</b>");
    tg_parts_free(&p);
}

static void test_split_md2_limit_too_small(void **state)
{
    (void)state;
    struct tg_parts p;
    /* The link's "](url)" is 25 units: no part can hold it. */
    assert_int_equal(split("[a](https://example.com/long)", TG_PARSE_MD2, 20, &p), VN_EINVAL);
    /* "*_" + "__" with the seam is 6 to open and 6 to close. */
    assert_int_equal(split("*b _i __u and more words__ i_ b*", TG_PARSE_MD2, 12, &p), VN_EINVAL);
}

/* Fill 1 MiB with a pattern, split at 4096: must finish (quickly). */
static void split_pattern(const char *head, const char *pat, const char *tail,
                          enum tg_parse_mode mode)
{
    struct vn_buf b = VN_BUF_INIT;
    size_t plen = strlen(pat);
    vn_buf_puts(&b, head);
    while (b.len + plen + strlen(tail) <= TG_SPLIT_MAX_BYTES)
        vn_buf_puts(&b, pat);
    vn_buf_puts(&b, tail);
    struct tg_parts p;
    int rc = tg_split(b.data, b.len, mode, TG_TEXT_LIMIT, &p);
    assert_true(rc == 0 || rc == VN_EINVAL);
    tg_parts_free(&p);
    vn_buf_free(&b);
}

static void test_split_pathological_linear(void **state)
{
    (void)state;
    /* Regressions: each of these used to rescan to the end of the text for
     * every '<', every link URL or every stray closing tag (quadratic: the
     * unit test timeout catches a return of that). */
    split_pattern("", "<a", "", TG_PARSE_HTML);
    split_pattern("<a \"", "<a '", "", TG_PARSE_HTML);
    split_pattern("", "[a](", "", TG_PARSE_MD2);
    split_pattern("", "[a](", "\\)", TG_PARSE_MD2);
    struct vn_buf b = VN_BUF_INIT;
    for (int i = 0; i < 100000; i++)
        vn_buf_puts(&b, "<b>");
    split_pattern(b.data, "</i>", "", TG_PARSE_HTML);
    vn_buf_free(&b);
}

/* ------------------------------------------------------------ markup check -- */

static void test_check_markup(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        enum tg_parse_mode mode;
        int ok;
    } cases[] = {
        {"<b>x</b> &amp; &lt; &#65; &#x41; &quot;", TG_PARSE_HTML, 1},
        {"<b>x", TG_PARSE_HTML, 0},
        {"<b><i>x</b></i>", TG_PARSE_HTML, 0},
        {"a & b", TG_PARSE_HTML, 0},
        {"a < b", TG_PARSE_HTML, 0},
        {"&nbsp;", TG_PARSE_HTML, 0},
        {"*b _i_ __u__ ~s~ ||sp||* `c` [l](u) ```py\nx```", TG_PARSE_MD2, 1},
        {"a.b", TG_PARSE_MD2, 0},
        {"*open", TG_PARSE_MD2, 0},
        {">quote\n>more||", TG_PARSE_MD2, 1},
        {"x>y", TG_PARSE_MD2, 0},
        {"anything <goes> & *here", TG_PARSE_PLAIN, 1},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        int rc = tg__check_markup(cases[i].s, strlen(cases[i].s), cases[i].mode);
        if ((rc == 0) != cases[i].ok)
            fail_msg("case %zu: %s", i, cases[i].s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_html_hostile),
        cmocka_unit_test(test_escape_html_appends),
        cmocka_unit_test(test_escape_md2_text),
        cmocka_unit_test(test_escape_md2_code),
        cmocka_unit_test(test_escape_md2_link_url),
        cmocka_unit_test(test_escape_invalid_utf8),
        cmocka_unit_test(test_utf8_valid_and_sanitize),
        cmocka_unit_test(test_utf16_len),
        cmocka_unit_test(test_parse_mode_name),
        cmocka_unit_test(test_split_fits_unchanged),
        cmocka_unit_test(test_split_empty_and_blank),
        cmocka_unit_test(test_split_prefers_paragraph_line_space),
        cmocka_unit_test(test_split_cyrillic_lines_4096),
        cmocka_unit_test(test_split_emoji_only),
        cmocka_unit_test(test_split_emoji_last_resort),
        cmocka_unit_test(test_split_long_word),
        cmocka_unit_test(test_split_invalid_utf8),
        cmocka_unit_test(test_split_bad_arguments),
        cmocka_unit_test(test_split_huge_whitespace),
        cmocka_unit_test(test_split_html_reopens_tags),
        cmocka_unit_test(test_split_html_bold_4096),
        cmocka_unit_test(test_split_html_never_inside_entity),
        cmocka_unit_test(test_split_html_never_inside_tag),
        cmocka_unit_test(test_split_html_long_link),
        cmocka_unit_test(test_split_html_pre_code),
        cmocka_unit_test(test_split_html_emoji_tag_atomic),
        cmocka_unit_test(test_split_html_limit_too_small),
        cmocka_unit_test(test_split_md2_never_inside_escape),
        cmocka_unit_test(test_split_md2_reopens_entities),
        cmocka_unit_test(test_split_md2_underscore_seams),
        cmocka_unit_test(test_split_md2_pre_language),
        cmocka_unit_test(test_split_md2_quote),
        cmocka_unit_test(test_split_md2_quote_inside_spoiler),
        cmocka_unit_test(test_split_md2_emoji_and_backslash),
        cmocka_unit_test(test_split_md2_no_cut_next_to_markers),
        cmocka_unit_test(test_split_md2_limit_too_small),
        cmocka_unit_test(test_split_pathological_linear),
        cmocka_unit_test(test_check_markup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
