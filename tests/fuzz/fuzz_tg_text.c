/*
 * fuzz_tg_text.c - libFuzzer target for bot/tg_text.c.
 *
 * Input: byte 0 picks the parse mode and whether the rest is used raw or as a
 * program that builds well-formed markup; bytes 1-2 pick the limit; the rest
 * is the text (or the program). Invariants, each checked with abort():
 *
 * Escapers: the output is valid UTF-8; in it every character the context
 * reserves is escaped and nothing else is; unescaping gives the input (with
 * invalid UTF-8 repaired); and the escaped text, placed where the context
 * says, is markup Telegram's parser accepts.
 *
 * tg_split: returns 0, VN_EINVAL or VN_ETOOBIG, and in plain mode never
 * VN_EINVAL once the limit holds any one character (2 units); every part is
 * valid UTF-8, within the limit, with utf16_len right, and has visible text;
 * the source ranges are in order and only whitespace lies between them; a
 * plain part is exactly its source range, a markup part contains it; a text
 * with no part had nothing visible. For generated well-formed markup every
 * part is well formed too, and (HTML) shows exactly the text of its range.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot/tg_text.h"
#include "core/common.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Byte equality that is fine with empty buffers (whose data may be NULL). */
static bool same(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* ------------------------------------------------------------- escapers -- */

static void check_html_escape(const char *in, size_t len, const struct vn_buf *clean)
{
    struct vn_buf out = VN_BUF_INIT, back = VN_BUF_INIT;
    static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;"};
    static const char dec[] = {'&', '<', '>', '"'};

    tg_escape_html(&out, in, len);
    CHECK(tg_utf8_valid(out.data, out.len));
    for (size_t i = 0; i < out.len;) {
        char c = out.data[i];
        CHECK(c != '<' && c != '>' && c != '"');
        if (c != '&') {
            vn_buf_putc(&back, c);
            i++;
            continue;
        }
        size_t k;
        for (k = 0; k < 4; k++) {
            if (strncmp(out.data + i, ent[k], strlen(ent[k])) == 0)
                break;
        }
        CHECK(k < 4);
        vn_buf_putc(&back, dec[k]);
        i += strlen(ent[k]);
    }
    CHECK(same(back.data, back.len, clean->data, clean->len));
    CHECK(tg__check_markup(out.data, out.len, TG_PARSE_HTML) == 0);
    vn_buf_free(&out);
    vn_buf_free(&back);
}

static void check_md2_escape(const char *in, size_t len, const struct vn_buf *clean,
                             enum tg_md2_ctx ctx)
{
    static const char *const sets[] = {"_*[]()~`>#+-=|{}.!\\", "`\\", ")\\"};
    const char *set = sets[ctx];
    struct vn_buf out = VN_BUF_INIT, back = VN_BUF_INIT, wrapped = VN_BUF_INIT;

    tg_escape_md2(&out, in, len, ctx);
    CHECK(tg_utf8_valid(out.data, out.len));
    for (size_t i = 0; i < out.len; i++) {
        char c = out.data[i];
        if (c == '\\') {
            CHECK(i + 1 < out.len && out.data[i + 1] != '\0' && strchr(set, out.data[i + 1]));
            vn_buf_putc(&back, out.data[++i]);
            continue;
        }
        CHECK(c == '\0' || strchr(set, c) == NULL);
        vn_buf_putc(&back, c);
    }
    CHECK(same(back.data, back.len, clean->data, clean->len));

    switch (ctx) {
    case TG_MD2_TEXT:
        vn_buf_append(&wrapped, out.data, out.len);
        break;
    case TG_MD2_CODE:
        vn_buf_puts(&wrapped, "x`");
        vn_buf_append(&wrapped, out.data, out.len);
        vn_buf_puts(&wrapped, "`");
        break;
    case TG_MD2_LINK_URL:
        vn_buf_puts(&wrapped, "[x](");
        vn_buf_append(&wrapped, out.data, out.len);
        vn_buf_puts(&wrapped, ")");
        break;
    }
    CHECK(tg__check_markup(wrapped.data, wrapped.len, TG_PARSE_MD2) == 0);
    vn_buf_free(&out);
    vn_buf_free(&back);
    vn_buf_free(&wrapped);
}

static void check_escapers(const char *in, size_t len)
{
    struct vn_buf clean = VN_BUF_INIT;
    size_t bad = tg_utf8_sanitize(&clean, in, len);
    CHECK((bad == 0) == (tg_utf8_valid(in, len) != 0));
    CHECK(tg_utf8_valid(clean.data, clean.len));
    CHECK(bad != 0 || same(clean.data, clean.len, in, len));
    CHECK(tg_utf16_len_n(in, len) == tg_utf16_len_n(clean.data, clean.len));
    check_html_escape(in, len, &clean);
    check_md2_escape(in, len, &clean, TG_MD2_TEXT);
    check_md2_escape(in, len, &clean, TG_MD2_CODE);
    check_md2_escape(in, len, &clean, TG_MD2_LINK_URL);
    vn_buf_free(&clean);
}

/* ------------------------------------------------------------- splitting -- */

/* HTML text with the tags taken out (entities left as they are). */
static void strip_tags(struct vn_buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '<') {
            vn_buf_putc(out, s[i]);
            continue;
        }
        char quote = 0;
        for (i++; i < len; i++) {
            if (quote) {
                if (s[i] == quote)
                    quote = 0;
            } else if (s[i] == '"' || s[i] == '\'') {
                quote = s[i];
            } else if (s[i] == '>') {
                break;
            }
        }
    }
}

static bool has_visible(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_ws(s[i]))
            return true;
    }
    return false;
}

static void check_split(const char *in, size_t len, enum tg_parse_mode mode, size_t limit,
                        bool wellformed)
{
    struct tg_parts p;
    struct vn_buf clean = VN_BUF_INIT;
    size_t eff = limit ? limit : TG_TEXT_LIMIT;
    int rc = tg_split(in, len, mode, limit, &p);

    CHECK(rc == 0 || rc == VN_EINVAL || rc == VN_ETOOBIG);
    CHECK((rc == VN_ETOOBIG) == (len > TG_SPLIT_MAX_BYTES));
    if (mode == TG_PARSE_PLAIN && eff >= 2)
        CHECK(rc != VN_EINVAL);
    if (rc != 0) {
        CHECK(p.n == 0 && p.v == NULL);
        return;
    }

    tg_utf8_sanitize(&clean, in, len);
    const char *s = clean.data ? clean.data : "";
    size_t prev = 0;
    for (size_t i = 0; i < p.n; i++) {
        const struct tg_part *pt = &p.v[i];
        CHECK(pt->text != NULL && pt->text[pt->len] == '\0');
        CHECK(tg_utf8_valid(pt->text, pt->len));
        CHECK(pt->utf16_len == tg_utf16_len_n(pt->text, pt->len));
        CHECK(pt->utf16_len <= eff);
        CHECK(pt->src_off >= prev && pt->src_end > pt->src_off && pt->src_end <= clean.len);
        for (size_t k = prev; k < pt->src_off; k++)
            CHECK(is_ws(s[k]));
        const char *src = s + pt->src_off;
        size_t src_len = pt->src_end - pt->src_off;
        if (mode == TG_PARSE_PLAIN) {
            CHECK(same(pt->text, pt->len, src, src_len));
            CHECK(has_visible(pt->text, pt->len));
        } else {
            /* A MarkdownV2 part may start with its quote's '>' among the
             * reopened markup rather than before it. */
            CHECK(memmem(pt->text, pt->len, src, src_len) != NULL ||
                  (src[0] == '>' && memmem(pt->text, pt->len, src + 1, src_len - 1) != NULL));
        }
        if (wellformed) {
            CHECK(tg__check_markup(pt->text, pt->len, mode) == 0);
            if (mode == TG_PARSE_HTML) {
                struct vn_buf a = VN_BUF_INIT, b = VN_BUF_INIT;
                strip_tags(&a, pt->text, pt->len);
                strip_tags(&b, src, src_len);
                CHECK(same(a.data, a.len, b.data, b.len));
                CHECK(has_visible(a.data, a.len));
                vn_buf_free(&a);
                vn_buf_free(&b);
            }
        }
        prev = pt->src_end;
    }
    if (mode == TG_PARSE_PLAIN) {
        for (size_t k = prev; k < clean.len; k++)
            CHECK(is_ws(s[k])); /* only whitespace is ever dropped */
        CHECK(p.n > 0 || !has_visible(s, clean.len));
    }
    tg_parts_free(&p);
    CHECK(p.n == 0 && p.v == NULL);
    vn_buf_free(&clean);
}

/* ------------------------------------------------- well-formed generators -- */

static const char *const WORDS[] = {
    "hello",
    "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
    "\xE4\xB8\xAD\xE6\x96\x87",
    "\xF0\x9F\x98\x80",
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",
    "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "\xF0\x9F\x87\xBA\xF0\x9F\x87\xA6",
    "a_b",
    "x*y",
    "1.5!",
    "[link]",
    "(paren)",
    "back\\slash",
    "`tick`",
    "<tag>",
    "&amp;",
    "q\"uote",
    "~|#+-={}",
    "\xE2\x9D\xA4\xEF\xB8\x8F",
    "\\",
    "_",
    "__",
    "||",
    ">",
    "```",
};

#define MAX_DEPTH 8

static void gen_html(const uint8_t *d, size_t n, struct vn_buf *b)
{
    static const char *const open[] = {
        "<b>",
        "<i>",
        "<u>",
        "<s>",
        "<code>",
        "<pre>",
        "<a href=\"https://e.com/?a=1&amp;b=2\">",
        "<tg-spoiler>",
        "<blockquote>",
        "<blockquote expandable>",
        "<span class=\"tg-spoiler\">",
        "<strong>",
        "<em>",
        "<pre><code class=\"language-c\">",
    };
    static const char *const close[] = {
        "</b>",    "</i>",      "</u>",          "</s>",          "</code>",
        "</pre>",  "</a>",      "</tg-spoiler>", "</blockquote>", "</blockquote>",
        "</span>", "</strong>", "</em>",         "</code></pre>",
    };
    size_t stack[MAX_DEPTH], depth = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned op = d[i] % 8, arg = d[i] / 8;
        switch (op) {
        case 0:
            if (depth < MAX_DEPTH) {
                stack[depth++] = arg % VN_ARRAY_LEN(open);
                vn_buf_puts(b, open[stack[depth - 1]]);
            }
            break;
        case 1:
            if (depth)
                vn_buf_puts(b, close[stack[--depth]]);
            break;
        case 2:
        case 3: {
            const char *w = WORDS[arg % VN_ARRAY_LEN(WORDS)];
            tg_escape_html(b, w, strlen(w));
            break;
        }
        case 4:
            vn_buf_putc(b, ' ');
            break;
        case 5:
            vn_buf_putc(b, '\n');
            break;
        case 6:
            vn_buf_puts(b, arg % 2 ? "\n\n" : "  \n    ");
            break;
        case 7:
            vn_buf_puts(
                b, arg % 2
                       ? "<tg-emoji emoji-id=\"5368324170671202286\">\xF0\x9F\x91\x8D</tg-emoji>"
                       : "&#128512;&#x41;&quot;");
            break;
        }
    }
    while (depth)
        vn_buf_puts(b, close[stack[--depth]]);
}

enum md2_ent { M_BOLD, M_ITALIC, M_UNDER, M_STRIKE, M_SPOILER, M_CODE, M_PRE, M_LINK, M_N };

struct md2_gen {
    struct vn_buf *b;
    enum md2_ent stack[MAX_DEPTH];
    size_t depth;
    bool quote;
    bool last_us; /* the last thing written is an unescaped '_' marker */
};

static void md2_marker(struct md2_gen *g, const char *m)
{
    if (g->last_us && m[0] == '_')
        vn_buf_puts(g->b, "**"); /* keep "_" and "__" apart */
    vn_buf_puts(g->b, m);
    g->last_us = m[strlen(m) - 1] == '_';
}

static void md2_text(struct md2_gen *g, const char *s)
{
    vn_buf_puts(g->b, s);
    g->last_us = false;
}

static bool md2_in_code(const struct md2_gen *g)
{
    return g->depth && (g->stack[g->depth - 1] == M_CODE || g->stack[g->depth - 1] == M_PRE);
}

static void md2_close(struct md2_gen *g)
{
    static const char *const close[] = {"*",  "_", "__",  "~",
                                        "||", "`", "```", "](https://e.com/a_(b\\)c)"};
    enum md2_ent e = g->stack[--g->depth];
    if (e == M_PRE)
        md2_text(g, "\n"); /* keep ``` off the content's last character */
    md2_marker(g, close[e]);
}

static void gen_md2(const uint8_t *d, size_t n, struct vn_buf *b)
{
    static const char *const open[] = {"*", "_", "__", "~", "||", "`", "```", "["};
    struct md2_gen g = {.b = b};

    for (size_t i = 0; i < n; i++) {
        unsigned op = d[i] % 8, arg = d[i] / 8;
        bool at_line_start = b->len == 0 || b->data[b->len - 1] == '\n';
        switch (op) {
        case 0:
            if (g.depth < MAX_DEPTH && !md2_in_code(&g)) {
                enum md2_ent e = (enum md2_ent)(arg % M_N);
                g.stack[g.depth++] = e;
                md2_marker(&g, open[e]);
                if (e == M_PRE)
                    md2_text(&g, arg & 8 ? "python\n" : "\n");
            }
            break;
        case 1:
            if (g.depth)
                md2_close(&g);
            break;
        case 2:
        case 3: {
            const char *w = WORDS[arg % VN_ARRAY_LEN(WORDS)];
            tg_escape_md2(b, w, strlen(w), md2_in_code(&g) ? TG_MD2_CODE : TG_MD2_TEXT);
            g.last_us = false;
            break;
        }
        case 4:
            md2_text(&g, arg % 2 ? " " : "\t ");
            break;
        case 5:
        case 6:
            if (md2_in_code(&g)) {
                md2_text(&g, op == 5 ? "\n" : "\n\n   ");
            } else if (g.quote && op == 5 && arg % 2) {
                md2_text(&g, "\n>"); /* the quote goes on */
            } else {
                if (g.quote) {
                    while (g.depth)
                        md2_close(&g);
                    g.quote = false;
                }
                md2_text(&g, op == 5 ? "\n" : "\n\n");
            }
            break;
        case 7:
            if (arg % 2 && !g.quote && g.depth == 0 && at_line_start) {
                md2_text(&g, ">");
                g.quote = true;
            } else if (!md2_in_code(&g)) {
                md2_text(&g, "![\xF0\x9F\x91\x8D](tg://emoji?id=5368324170671202286)");
            }
            break;
        }
    }
    while (g.depth)
        md2_close(&g);
}

/* ------------------------------------------------------------------ entry -- */

static size_t pick_limit(uint8_t a, uint8_t b)
{
    unsigned v = (unsigned)a | ((unsigned)b << 8);
    switch (v % 16) {
    case 0:
        return 0; /* the default, 4096 */
    case 1:
        return 1 + v % 4;
    default:
        return 1 + (v >> 4) % 160;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    enum tg_parse_mode mode = (enum tg_parse_mode)(data[0] % 3);
    bool generate = (data[0] / 3) % 2 && mode != TG_PARSE_PLAIN;
    size_t limit = pick_limit(data[1], data[2]);
    const char *text = (const char *)data + 3;
    size_t len = size - 3;

    if (!generate) {
        check_escapers(text, len);
        check_split(text, len, mode, limit, false);
        return 0;
    }

    struct vn_buf src = VN_BUF_INIT;
    if (mode == TG_PARSE_HTML)
        gen_html(data + 3, len, &src);
    else
        gen_md2(data + 3, len, &src);
    /* The generator aims at well-formed markup; the checker has the last
     * word (e.g. on ambiguous "___" it could not avoid). */
    bool ok = src.len && tg__check_markup(src.data, src.len, mode) == 0;
    check_split(src.data ? src.data : "", src.len, mode, limit, ok);
    vn_buf_free(&src);
    return 0;
}
