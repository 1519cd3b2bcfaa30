/*
 * tg_text.c - escaping, UTF-8 repair, UTF-16 length and message splitting for
 * the Telegram Bot API. See tg_text.h for the rules and the trade-offs.
 *
 * Splitting works in two passes. The tokenizer cuts the text into atoms, the
 * smallest pieces a cut may not enter: one code point, one whitespace run
 * (the separator a cut drops), one tag, one entity, one MarkdownV2 escape or
 * marker. While it goes it keeps the stack of open formatting entities the
 * way Telegram's parser would, as nodes of a persistent tree (each node
 * points to its parent), so "the stack after atom i" is just one node index
 * per atom and a cut never copies a stack. The splitter then walks the atoms
 * once per part, remembers the latest cut of each kind that still fits
 * (content + tags to close + tags reopened at the start), and takes the best.
 */
#include "bot/tg_text.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

const char *tg_parse_mode_name(enum tg_parse_mode mode)
{
    switch (mode) {
    case TG_PARSE_HTML:
        return "HTML";
    case TG_PARSE_MD2:
        return "MarkdownV2";
    case TG_PARSE_PLAIN:
        break;
    }
    return NULL;
}

/* ---------------------------------------------------------------- UTF-8 -- */

/*
 * Length (1..4) of the valid UTF-8 sequence starting at s[i], storing its
 * code point in *cp; 0 if s[i] starts no valid sequence: a continuation byte,
 * C0/C1/F5..FF, an overlong form, a surrogate, above U+10FFFF, or cut short.
 */
static size_t utf8_seq(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    return vn_utf8_seq(s, len, i, cp);
}

int tg_utf8_valid(const char *s, size_t len)
{
    return vn_utf8_valid(s, len);
}

size_t tg_utf8_sanitize(struct vn_buf *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t bad = 0, run = 0, i = 0;
    uint32_t cp;

    vn_buf_reserve(out, len);
    while (i < len) {
        size_t n = u[i] < 0x80 ? 1 : utf8_seq(u, len, i, &cp);
        if (n) {
            i += n;
            continue;
        }
        vn_buf_append(out, s + run, i - run);
        vn_buf_append(out, REPLACEMENT, 3);
        bad++;
        run = ++i;
    }
    vn_buf_append(out, s + run, len - run);
    return bad;
}

size_t tg_utf16_len_n(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t units = 0;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            units++;
            i++;
            continue;
        }
        size_t n = utf8_seq(u, len, i, &cp);
        if (n == 0) {
            units++; /* shown as one U+FFFD */
            i++;
            continue;
        }
        units += cp >= 0x10000 ? 2 : 1;
        i += n;
    }
    return units;
}

/* ------------------------------------------------------------- escaping -- */

/*
 * The one escaping loop: copy runs of bytes that need nothing, replace an
 * ASCII byte by what repl() writes into buf (returning 0: keep it), and an
 * invalid byte by U+FFFD.
 */
typedef size_t (*escape_fn)(unsigned char c, const void *arg, char buf[8]);

static void escape_with(struct vn_buf *out, const char *s, size_t len, escape_fn repl,
                        const void *arg)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    uint32_t cp;
    char buf[8];

    vn_buf_reserve(out, len + len / 8);
    while (i < len) {
        const char *r = buf;
        size_t rlen = 0, adv = 1;
        if (u[i] < 0x80) {
            rlen = repl(u[i], arg, buf);
        } else {
            adv = utf8_seq(u, len, i, &cp);
            if (adv == 0) {
                r = REPLACEMENT;
                rlen = 3;
                adv = 1;
            }
        }
        if (rlen == 0) {
            i += adv;
            continue;
        }
        vn_buf_append(out, s + run, i - run);
        vn_buf_append(out, r, rlen);
        i += adv;
        run = i;
    }
    vn_buf_append(out, s + run, len - run);
}

static size_t html_repl(unsigned char c, const void *arg, char buf[8])
{
    const char *r;
    (void)arg;
    switch (c) {
    case '&':
        r = "&amp;";
        break;
    case '<':
        r = "&lt;";
        break;
    case '>':
        r = "&gt;";
        break;
    case '"':
        r = "&quot;";
        break;
    default:
        return 0;
    }
    size_t n = strlen(r);
    memcpy(buf, r, n);
    return n;
}

void tg_escape_html(struct vn_buf *out, const char *s, size_t len)
{
    escape_with(out, s, len, html_repl, NULL);
}

/* arg is the set of characters to escape; the result is "\c". */
static size_t md2_repl(unsigned char c, const void *arg, char buf[8])
{
    if (c == 0 || strchr(arg, c) == NULL)
        return 0;
    buf[0] = '\\';
    buf[1] = (char)c;
    return 2;
}

void tg_escape_md2(struct vn_buf *out, const char *s, size_t len, enum tg_md2_ctx ctx)
{
    const char *set;
    switch (ctx) {
    case TG_MD2_CODE:
        set = "`\\";
        break;
    case TG_MD2_LINK_URL:
        set = ")\\";
        break;
    case TG_MD2_TEXT:
    default:
        set = "_*[]()~`>#+-=|{}.!\\";
        break;
    }
    escape_with(out, s, len, md2_repl, set);
}

/* ------------------------------------------------------------ tokenizer -- */

enum atom_kind {
    A_TEXT,  /* one code point (or a lone MarkdownV2 backslash) */
    A_WS,    /* a whitespace run: what a cut drops */
    A_OPEN,  /* opens an entity: a tag, a marker */
    A_CLOSE, /* closes one */
    A_MARK,  /* other markup: self-closing tag, '>' continuing a quote */
    A_ENT,   /* HTML entity or MarkdownV2 escape: one visible character */
};

/* Kinds of cut, best first. */
enum cut_class { C_PARA, C_LINE, C_SPACE, C_CHAR, C_WEAK, C_NCLASS, C_NONE = C_NCLASS };

enum {
    AF_VISIBLE = 1,      /* shows as text (whitespace and markup do not) */
    AF_EXT = 2,          /* continues the previous symbol: ZWJ, VS, modifier... */
    AF_NOCUT_AFTER = 4,  /* lone MarkdownV2 '\': a cut after it would escape the suffix */
    AF_PRESPACE = 8,     /* a blank inside code/pre: a cut before it keeps it */
    AF_US_FIRST = 16,    /* MarkdownV2 marker starting with '_' */
    AF_US_LAST = 32,     /* ... ending with '_' */
    AF_ZWJ = 64,         /* U+200D: the next code point continues the symbol */
    AF_RI_OPEN = 128,    /* a regional indicator waiting for its pair */
    AF_QUOTE_CONT = 256, /* MarkdownV2 '>' continuing the open quote on a new line */
    AF_NOCUT = 512,      /* whitespace that must stay: it ends a quote inside an entity */
};

struct atom {
    uint32_t off;   /* byte offset; the atom ends where the next one starts */
    uint32_t w;     /* UTF-16 code units */
    int32_t node;   /* entity stack after this atom: a node index, -1 empty */
    uint16_t flags; /* AF_* */
    uint8_t kind;   /* enum atom_kind */
    uint8_t cls;    /* A_WS: enum cut_class of a cut here */
};

enum node_type {
    N_HTML, /* any HTML tag */
    N_BOLD,
    N_ITALIC,
    N_UNDER,
    N_STRIKE,
    N_SPOILER,
    N_CODE,
    N_PRE,
    N_LINK,
    N_EMOJI,
    N_QUOTE,
};

struct node {
    int32_t parent;
    uint8_t type;   /* enum node_type */
    uint8_t pre;    /* this or an outer entity is code/pre */
    uint8_t atomic; /* this or an outer entity must not be cut (custom emoji) */
    uint8_t quote;  /* this or an outer entity is a MarkdownV2 block quote */
    /* HTML: a = the opening tag, b = the tag name. N_PRE: a = the language.
     * N_LINK: a = its closing "](url)", once seen. N_SPOILER: a.off = where it
     * opened (an expandable quote's "||" right before the quote ends). */
    uint32_t a_off, a_len, b_off, b_len;
    size_t open_cost;  /* UTF-16 units to reopen this and every outer entity */
    size_t close_cost; /* ... to close them */
};

struct tok {
    const char *s;
    size_t len;
    enum tg_parse_mode mode;
    struct atom *a;
    size_t na, acap;
    struct node *n;
    size_t nn, ncap;
    int32_t top;
    int errors;          /* markup Telegram would reject (for tg__check_markup) */
    bool can_quote;      /* MarkdownV2: a '>' here starts a block quote */
    size_t url_unclosed; /* MarkdownV2: a link URL from here on has no ')' */
};

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_xdigit(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_extender(uint32_t cp)
{
    return cp == 0x200D || (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0x1F3FB && cp <= 0x1F3FF) ||
           (cp >= 0x0300 && cp <= 0x036F) || cp == 0x20E3 || (cp >= 0xE0020 && cp <= 0xE007F);
}

static bool is_regional(uint32_t cp)
{
    return cp >= 0x1F1E6 && cp <= 0x1F1FF;
}

static int32_t top_type(const struct tok *t)
{
    return t->top < 0 ? -1 : t->n[t->top].type;
}

static bool in_pre(const struct tok *t)
{
    return t->top >= 0 && t->n[t->top].pre;
}

static struct atom *add_atom(struct tok *t, size_t off, size_t w, enum atom_kind kind, int flags)
{
    if (t->na == t->acap) {
        t->acap = t->acap ? t->acap * 2 : 256;
        t->a = xrealloc(t->a, t->acap * sizeof(*t->a));
    }
    struct atom *at = &t->a[t->na++];
    at->off = (uint32_t)off;
    at->w = (uint32_t)w;
    at->node = t->top;
    at->kind = (uint8_t)kind;
    at->flags = (uint16_t)flags;
    at->cls = C_NONE;
    return at;
}

/* Markup atom covering s[off, off+n): weight is its UTF-16 length. */
static struct atom *add_markup(struct tok *t, size_t off, size_t n, enum atom_kind kind, int flags)
{
    return add_atom(t, off, tg_utf16_len_n(t->s + off, n), kind, flags);
}

static int32_t push_node(struct tok *t, enum node_type type)
{
    if (t->nn == t->ncap) {
        t->ncap = t->ncap ? t->ncap * 2 : 32;
        t->n = xrealloc(t->n, t->ncap * sizeof(*t->n));
    }
    int32_t id = (int32_t)t->nn++;
    struct node *nd = &t->n[id];
    const struct node *up = t->top >= 0 ? &t->n[t->top] : NULL;
    memset(nd, 0, sizeof(*nd));
    nd->parent = t->top;
    nd->type = (uint8_t)type;
    nd->pre = (uint8_t)((up && up->pre) || type == N_CODE || type == N_PRE);
    nd->atomic = (uint8_t)((up && up->atomic) || type == N_EMOJI);
    nd->quote = (uint8_t)((up && up->quote) || type == N_QUOTE);
    t->top = id;
    return id;
}

static void pop_node(struct tok *t)
{
    t->top = t->n[t->top].parent;
}

/*
 * One code point at s[i] as a text atom, with the flags that keep emoji
 * sequences together. The text is valid UTF-8 by now.
 */
static size_t tok_char(struct tok *t, size_t i)
{
    uint32_t cp = 0;
    size_t n = utf8_seq((const unsigned char *)t->s, t->len, i, &cp);
    const struct atom *prev = t->na ? &t->a[t->na - 1] : NULL;
    int flags = AF_VISIBLE;

    if (prev && prev->kind == A_TEXT && (is_extender(cp) || (prev->flags & AF_ZWJ)))
        flags |= AF_EXT;
    if (cp == 0x200D)
        flags |= AF_ZWJ;
    if (is_regional(cp)) {
        if (prev && prev->kind == A_TEXT && (prev->flags & AF_RI_OPEN))
            flags |= AF_EXT;
        else
            flags |= AF_RI_OPEN;
    }
    add_atom(t, i, cp >= 0x10000 ? 2 : 1, A_TEXT, flags);
    return i + n;
}

/*
 * A whitespace run at s[i]. Outside code it is one separator atom. Inside
 * code/pre only the part up to its last '\n' is; the blanks after it (the
 * next line's indentation) and blanks in a line are kept as text atoms.
 */
static size_t tok_space(struct tok *t, size_t i)
{
    const char *s = t->s;
    size_t end = i, nl = 0, last_nl = 0;
    bool ends_quote = false;
    while (end < t->len && is_ws((unsigned char)s[end])) {
        if (s[end] == '\n') {
            nl++;
            last_nl = end;
        }
        end++;
    }

    if (in_pre(t)) {
        size_t p = i;
        if (nl) {
            struct atom *at = add_atom(t, i, last_nl + 1 - i, A_WS, 0);
            at->cls = nl >= 2 ? C_PARA : C_LINE;
            p = last_nl + 1;
        }
        for (; p < end; p++)
            add_atom(t, p, 1, A_TEXT, AF_PRESPACE);
        t->can_quote = false; /* inside code nothing is reserved */
        return end;
    }

    if (t->mode == TG_PARSE_MD2 && nl && t->top >= 0 && t->n[t->top].quote) {
        /* Telegram ends a quote at a '\n' not followed by '>'. */
        bool goes_on = nl == 1 && s[end - 1] == '\n' && end < t->len && s[end] == '>';
        if (!goes_on) {
            ends_quote = true;
            while (t->top >= 0) {
                const struct node *nd = &t->n[t->top];
                enum node_type ty = nd->type;
                /* Only an expandable mark "||" may still be open here. */
                if (ty != N_QUOTE && !(ty == N_SPOILER && nd->a_off + 2 == i))
                    t->errors++;
                pop_node(t);
                if (ty == N_QUOTE)
                    break;
            }
        }
    }
    /* Where the quote sits inside another entity, this line break is what
     * ends the quote before that entity closes: a cut must not drop it. */
    struct atom *at = add_atom(t, i, end - i, A_WS, ends_quote && t->top >= 0 ? AF_NOCUT : 0);
    at->cls = nl >= 2 ? C_PARA : nl == 1 ? C_LINE : C_SPACE;
    if (nl) {
        size_t k = end;
        while (k > i && s[k - 1] == '\r')
            k--;
        t->can_quote = s[k - 1] == '\n';
    } else {
        t->can_quote = false;
    }
    return end;
}

/* Case-insensitive equality of two byte strings. */
static bool name_eq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if ((x | 0x20) != (y | 0x20) || is_alpha(x) != is_alpha(y))
            return false;
    }
    return true;
}

/* HTML: a tag at s[i] == '<'. Returns the next offset, or 0 if no tag here. */
static size_t tok_html_tag(struct tok *t, size_t i)
{
    const char *s = t->s;
    size_t len = t->len, p = i + 1;
    bool closing = false;
    if (p < len && s[p] == '/') {
        closing = true;
        p++;
    }
    if (p >= len || !is_alpha((unsigned char)s[p]))
        return 0;
    size_t name = p;
    while (p < len &&
           (is_alpha((unsigned char)s[p]) || is_digit((unsigned char)s[p]) || s[p] == '-'))
        p++;
    size_t name_len = p - name;
    /* Up to '>' outside quotes. A '<' outside quotes means this was no
     * tag; stopping there also keeps "<a<a<a..." linear. */
    char quote = 0;
    while (p < len) {
        char c = s[p];
        if (quote) {
            if (c == quote)
                quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '>' || c == '<') {
            break;
        }
        p++;
    }
    if (p >= len || s[p] == '<')
        return 0;
    size_t end = p + 1;

    if (closing) {
        /* Matching is against the innermost tag; a few levels further out
         * are searched to recover from misnesting, not the whole stack:
         * thousands of stray closing tags must not each walk it. */
        int32_t k = t->top;
        for (int depth = 0; k >= 0; depth++) {
            const struct node *nd = &t->n[k];
            if (depth == 64) {
                k = -1;
                break;
            }
            if (nd->type == N_HTML && name_eq(s + nd->b_off, nd->b_len, s + name, name_len))
                break;
            k = nd->parent;
        }
        if (k < 0 || k != t->top)
            t->errors++; /* unmatched or misnested: best effort */
        if (k >= 0)
            t->top = t->n[k].parent;
        add_markup(t, i, end - i, A_CLOSE, 0);
        return end;
    }
    if (s[end - 2] == '/') {
        add_markup(t, i, end - i, A_MARK, 0);
        return end;
    }
    int32_t id = push_node(t, N_HTML);
    struct node *nd = &t->n[id];
    nd->a_off = (uint32_t)i;
    nd->a_len = (uint32_t)(end - i);
    nd->b_off = (uint32_t)name;
    nd->b_len = (uint32_t)name_len;
    if (name_eq(s + name, name_len, "pre", 3) || name_eq(s + name, name_len, "code", 4))
        nd->pre = 1;
    if (name_eq(s + name, name_len, "tg-emoji", 8))
        nd->atomic = 1;
    add_markup(t, i, end - i, A_OPEN, 0);
    return end;
}

/* HTML: an entity at s[i] == '&'. Returns the next offset, or 0 if none. */
static size_t tok_html_entity(struct tok *t, size_t i)
{
    const char *s = t->s;
    size_t len = t->len, p = i + 1, max = i + 32;
    bool named = false;
    if (p < len && s[p] == '#') {
        p++;
        size_t digits = p;
        if (p < len && (s[p] == 'x' || s[p] == 'X')) {
            digits = ++p;
            while (p < len && p < max && is_xdigit((unsigned char)s[p]))
                p++;
        } else {
            while (p < len && p < max && is_digit((unsigned char)s[p]))
                p++;
        }
        if (p == digits)
            return 0;
    } else {
        named = true;
        while (p < len && p < max &&
               (is_alpha((unsigned char)s[p]) || is_digit((unsigned char)s[p])))
            p++;
        if (p == i + 1)
            return 0;
    }
    if (p >= len || s[p] != ';')
        return 0;
    if (named) {
        size_t n = p - i - 1;
        const char *nm = s + i + 1;
        if (!((n == 2 && (!memcmp(nm, "lt", 2) || !memcmp(nm, "gt", 2))) ||
              (n == 3 && !memcmp(nm, "amp", 3)) || (n == 4 && !memcmp(nm, "quot", 4))))
            t->errors++; /* Telegram knows only these four by name */
    }
    add_markup(t, i, p + 1 - i, A_ENT, AF_VISIBLE);
    return p + 1;
}

static size_t tok_html(struct tok *t, size_t i)
{
    unsigned char c = (unsigned char)t->s[i];
    size_t next;
    if (c == '<') {
        next = tok_html_tag(t, i);
        if (next)
            return next;
        t->errors++;
    } else if (c == '&') {
        next = tok_html_entity(t, i);
        if (next)
            return next;
        t->errors++;
    } else if (c == '>') {
        t->errors++;
    }
    return tok_char(t, i);
}

/*
 * MarkdownV2: the end of "](url)" at s[i] == ']', or i + 1 without a URL.
 * Once a URL ran to the end of the text unclosed, every later one does too
 * (a later scan starts at a '(' the failed one also passed, so it reads the
 * same escapes from there on): remembering that keeps "[a](" * n linear.
 */
static size_t md2_link_end(struct tok *t, size_t i)
{
    const char *s = t->s;
    size_t len = t->len, p = i + 1;
    if (p >= len || s[p] != '(')
        return i + 1;
    if (p > t->url_unclosed) {
        t->errors++;
        return i + 1;
    }
    for (p++; p < len && s[p] != ')'; p++) {
        if (s[p] == '\\' && p + 1 < len && s[p + 1] > 0 && s[p + 1] <= 126)
            p++;
    }
    if (p >= len) {
        t->errors++; /* "Can't find end of a URL" */
        t->url_unclosed = i + 1;
        return i + 1;
    }
    return p + 1;
}

static int us_flags(const char *m, size_t n)
{
    return (m[0] == '_' ? AF_US_FIRST : 0) | (m[n - 1] == '_' ? AF_US_LAST : 0);
}

/*
 * MarkdownV2 at s[i], following Telegram's parser: an escape; a character
 * that ends the innermost entity; a character that begins one; else text.
 */
static size_t tok_md2(struct tok *t, size_t i)
{
    const char *s = t->s;
    size_t len = t->len;
    unsigned char c = (unsigned char)s[i];
    unsigned char c1 = i + 1 < len ? (unsigned char)s[i + 1] : 0;
    unsigned char c2 = i + 2 < len ? (unsigned char)s[i + 2] : 0;
    /* Inside code and pre only '`' is reserved; NUL never is. */
    bool reserved = c != 0 && (in_pre(t) ? c == '`' : strchr("_*[]()~`>#+-=|{}.!", c) != NULL);

    if (c == '\\') {
        if (c1 > 0 && c1 <= 126) {
            add_atom(t, i, 2, A_ENT, AF_VISIBLE);
            t->can_quote = c1 == '\n';
            return i + 2;
        }
        /* A '\' before a non-ASCII character is literal; a cut after it
         * would turn the reopened markup into an escape. */
        add_atom(t, i, 1, A_TEXT, AF_VISIBLE | AF_NOCUT_AFTER);
        t->can_quote = false;
        return i + 1;
    }
    if (!reserved) {
        if (c != '\r')
            t->can_quote = false;
        return tok_char(t, i);
    }

    size_t n = 0;
    switch (top_type(t)) {
    case N_BOLD:
        n = c == '*';
        break;
    case N_ITALIC:
        n = c == '_' && c1 != '_';
        break;
    case N_CODE:
        n = c == '`';
        break;
    case N_PRE:
        n = (c == '`' && c1 == '`' && c2 == '`') ? 3 : 0;
        break;
    case N_UNDER:
        n = (c == '_' && c1 == '_') ? 2 : 0;
        break;
    case N_STRIKE:
        n = c == '~';
        break;
    case N_SPOILER:
        n = (c == '|' && c1 == '|') ? 2 : 0;
        break;
    case N_LINK:
    case N_EMOJI:
        n = c == ']' ? md2_link_end(t, i) - i : 0;
        break;
    default:
        break;
    }
    if (n) {
        struct node *nd = &t->n[t->top];
        if (nd->type == N_LINK || nd->type == N_EMOJI) {
            nd->a_off = (uint32_t)i;
            nd->a_len = (uint32_t)n;
        }
        pop_node(t);
        add_markup(t, i, n, A_CLOSE, us_flags(s + i, n));
        return i + n;
    }

    enum node_type type;
    n = 1;
    switch (c) {
    case '_':
        type = c1 == '_' ? N_UNDER : N_ITALIC;
        n = c1 == '_' ? 2 : 1;
        break;
    case '*':
        type = N_BOLD;
        break;
    case '~':
        type = N_STRIKE;
        break;
    case '[':
        type = N_LINK;
        break;
    case '|':
        if (c1 != '|')
            goto invalid;
        type = N_SPOILER;
        n = 2;
        break;
    case '!':
        if (c1 != '[')
            goto invalid;
        type = N_EMOJI;
        n = 2;
        break;
    case '`':
        if (c1 == '`' && c2 == '`') {
            /* ```lang then one line break, as Telegram reads it. */
            size_t p = i + 3, lang = p;
            while (p < len && !is_ws((unsigned char)s[p]) && s[p] != '`')
                p++;
            bool has_lang = p != lang && p < len && s[p] != '`';
            if (!has_lang)
                p = lang;
            if (p < len && (s[p] == '\n' || s[p] == '\r')) {
                if (p + 1 < len && (s[p + 1] == '\n' || s[p + 1] == '\r') && s[p] != s[p + 1])
                    p += 2;
                else
                    p++;
            }
            int32_t id = push_node(t, N_PRE);
            if (has_lang) {
                t->n[id].a_off = (uint32_t)lang;
                t->n[id].a_len = (uint32_t)(p - lang);
                while (t->n[id].a_len && is_ws((unsigned char)s[lang + t->n[id].a_len - 1]))
                    t->n[id].a_len--;
            }
            add_markup(t, i, p - i, A_OPEN, 0);
            return p;
        }
        type = N_CODE;
        break;
    case '>':
        if (!t->can_quote)
            goto invalid;
        if (t->top >= 0 && t->n[t->top].quote) {
            add_atom(t, i, 1, A_MARK, AF_QUOTE_CONT); /* next line of the same quote */
            return i + 1;
        }
        type = N_QUOTE;
        break;
    default:
        goto invalid;
    }
    int32_t id = push_node(t, type);
    t->n[id].a_off = (uint32_t)i;
    add_markup(t, i, n, A_OPEN, us_flags(s + i, n));
    return i + n;

invalid:
    /* Telegram answers "Character 'c' is reserved and must be escaped". */
    t->errors++;
    t->can_quote = false;
    return tok_char(t, i);
}

/* Tokenize t->s[0..t->len) in t->mode. The text must be valid UTF-8. */
static void tokenize(struct tok *t)
{
    size_t i = 0;
    t->top = -1;
    t->can_quote = true;
    t->url_unclosed = SIZE_MAX;
    while (i < t->len) {
        unsigned char c = (unsigned char)t->s[i];
        if (is_ws(c))
            i = tok_space(t, i);
        else if (t->mode == TG_PARSE_HTML)
            i = tok_html(t, i);
        else if (t->mode == TG_PARSE_MD2)
            i = tok_md2(t, i);
        else
            i = tok_char(t, i);
    }
    if (t->mode == TG_PARSE_MD2 && t->top >= 0 && t->n[t->top].quote) {
        /* A quote may run to the end, after an optional expandable "||". */
        if (t->n[t->top].type == N_SPOILER && t->n[t->top].a_off + 2 == t->len)
            pop_node(t);
        if (t->top >= 0 && t->n[t->top].type == N_QUOTE)
            pop_node(t);
    }
    if (t->top >= 0)
        t->errors++; /* something left open */
}

static void tok_free(struct tok *t)
{
    free(t->a);
    free(t->n);
    t->a = NULL;
    t->n = NULL;
}

/* ------------------------------------------------------ reopen and close -- */

struct slice {
    const char *p;
    size_t n;
};

#define LIT(s) ((struct slice){(s), sizeof(s) - 1})

/* The markup that reopens node nd at the start of a part: up to 3 slices. */
static size_t node_open(const struct tok *t, const struct node *nd, struct slice sl[3])
{
    switch ((enum node_type)nd->type) {
    case N_HTML:
        sl[0] = (struct slice){t->s + nd->a_off, nd->a_len};
        return 1;
    case N_BOLD:
        sl[0] = LIT("*");
        return 1;
    case N_ITALIC:
        sl[0] = LIT("_");
        return 1;
    case N_UNDER:
        sl[0] = LIT("__");
        return 1;
    case N_STRIKE:
        sl[0] = LIT("~");
        return 1;
    case N_SPOILER:
        sl[0] = LIT("||");
        return 1;
    case N_CODE:
        sl[0] = LIT("`");
        return 1;
    case N_PRE:
        sl[0] = LIT("```");
        sl[1] = (struct slice){t->s + nd->a_off, nd->a_len};
        sl[2] = LIT("\n");
        return 3;
    case N_LINK:
        sl[0] = LIT("[");
        return 1;
    case N_EMOJI:
        sl[0] = LIT("![");
        return 1; /* never cut inside, see atomic */
    case N_QUOTE:
        sl[0] = LIT(">");
        return 1;
    }
    return 0;
}

/* The markup that closes node nd at the end of a part. */
static size_t node_close(const struct tok *t, const struct node *nd, struct slice sl[3])
{
    switch ((enum node_type)nd->type) {
    case N_HTML:
        sl[0] = LIT("</");
        sl[1] = (struct slice){t->s + nd->b_off, nd->b_len};
        sl[2] = LIT(">");
        return 3;
    case N_BOLD:
        sl[0] = LIT("*");
        return 1;
    case N_ITALIC:
        sl[0] = LIT("_");
        return 1;
    case N_UNDER:
        sl[0] = LIT("__");
        return 1;
    case N_STRIKE:
        sl[0] = LIT("~");
        return 1;
    case N_SPOILER:
        sl[0] = LIT("||");
        return 1;
    case N_CODE:
        sl[0] = LIT("`");
        return 1;
    case N_PRE:
        sl[0] = LIT("```");
        return 1;
    case N_LINK:
    case N_EMOJI:
        if (nd->a_len) {
            sl[0] = (struct slice){t->s + nd->a_off, nd->a_len};
            return 1;
        }
        sl[0] = LIT("]"); /* never closed in the input */
        return 1;
    case N_QUOTE:
        /* A quote ends with its line; where it is inside another entity
         * (a spoiler around a quote), that one can only be closed after a
         * line break has ended the quote. */
        if (nd->parent < 0)
            return 0;
        sl[0] = LIT("\n");
        return 1;
    }
    return 0;
}

static size_t slices_units(const struct slice *sl, size_t n)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        u += tg_utf16_len_n(sl[i].p, sl[i].n);
    return u;
}

/* Italic and underline markers are all '_': two of them must not touch, or
 * Telegram reads "___" greedily as something else; "**" goes between. */
static bool is_us(const struct tok *t, int32_t id)
{
    return id >= 0 && (t->n[id].type == N_ITALIC || t->n[id].type == N_UNDER);
}

#define US_SEP "**"

/* Fill in open_cost/close_cost; parents come before children in t->n. */
static void node_costs(struct tok *t)
{
    struct slice sl[3];
    for (size_t i = 0; i < t->nn; i++) {
        struct node *nd = &t->n[i];
        size_t open = slices_units(sl, node_open(t, nd, sl));
        size_t close = slices_units(sl, node_close(t, nd, sl));
        size_t sep = is_us(t, (int32_t)i) && is_us(t, nd->parent) ? 2 : 0;
        nd->open_cost = open;
        nd->close_cost = close;
        if (nd->parent >= 0) {
            nd->open_cost += t->n[nd->parent].open_cost + sep;
            nd->close_cost += t->n[nd->parent].close_cost + sep;
        }
    }
}

static size_t open_cost(const struct tok *t, int32_t id)
{
    return id < 0 ? 0 : t->n[id].open_cost;
}

static size_t close_cost(const struct tok *t, int32_t id)
{
    return id < 0 ? 0 : t->n[id].close_cost;
}

/* ------------------------------------------------------------- splitting -- */

struct cand {
    size_t end;  /* content is atoms [start, end) */
    size_t next; /* the next part starts at this atom */
    int32_t node;
    size_t cost;
};

/* How good a cut right before atom j (j-1 and j not whitespace) would be. */
static enum cut_class boundary_class(const struct tok *t, size_t j)
{
    const struct atom *a = &t->a[j], *prev = &t->a[j - 1];
    if (a->kind == A_CLOSE || prev->kind == A_OPEN || (prev->flags & AF_NOCUT_AFTER))
        return C_NONE;
    if (a->flags & AF_EXT)
        return C_WEAK;
    if (a->flags & AF_PRESPACE)
        return C_SPACE;
    return C_CHAR;
}

/*
 * Where a part's copied bytes begin. A part cut at a line break inside a
 * MarkdownV2 quote starts with that line's own '>': reopening the quote
 * writes the same '>' (in the right order among other reopened entities),
 * so the copy starts after it instead of doubling it.
 */
static size_t content_start(const struct tok *t, int32_t open, size_t start)
{
    if (open >= 0 && t->n[open].quote && (t->a[start].flags & AF_QUOTE_CONT))
        return start + 1;
    return start;
}

/*
 * How good a cut dropping the whitespace atom j would be. Not right after an
 * opening or right before a closing: that only leaves an empty entity, and in
 * MarkdownV2 the reopened marker would run into the closing one ("`" + "`"
 * followed by another "`" reads as a pre block).
 */
static enum cut_class ws_class(const struct tok *t, size_t j)
{
    if (t->a[j - 1].kind == A_OPEN || (j + 1 < t->na && t->a[j + 1].kind == A_CLOSE) ||
        (t->a[j].flags & AF_NOCUT))
        return C_NONE;
    return (enum cut_class)t->a[j].cls;
}

/* Extra units between markup and content that both have '_' at the seam. */
static size_t seam_prefix(const struct tok *t, int32_t node, size_t first)
{
    return first < t->na && is_us(t, node) && (t->a[first].flags & AF_US_FIRST) ? 2 : 0;
}

static size_t seam_suffix(const struct tok *t, int32_t node, size_t last)
{
    return is_us(t, node) && (t->a[last].flags & AF_US_LAST) ? 2 : 0;
}

static size_t atom_end(const struct tok *t, size_t j)
{
    return j < t->na ? t->a[j].off : t->len;
}

/*
 * Append a part carrying atoms [start, end): reopen the stack `open`
 * (outermost first), copy the bytes of atoms [from, end), then close the
 * stack `close` (innermost first) unless close is -2 (the last part, which
 * ends where the text ends).
 */
static void emit_part(const struct tok *t, struct tg_parts *out, size_t *cap, size_t start,
                      size_t from, size_t end, int32_t open, int32_t close)
{
    struct vn_buf b = VN_BUF_INIT;
    struct slice sl[3];
    size_t depth = 0, k;

    for (int32_t id = open; id >= 0; id = t->n[id].parent)
        depth++;
    if (depth) {
        int32_t *chain = xmalloc(depth * sizeof(*chain));
        k = depth;
        for (int32_t id = open; id >= 0; id = t->n[id].parent)
            chain[--k] = id;
        for (k = 0; k < depth; k++) {
            if (k && is_us(t, chain[k]) && is_us(t, chain[k - 1]))
                vn_buf_puts(&b, US_SEP);
            size_t ns = node_open(t, &t->n[chain[k]], sl);
            for (size_t i = 0; i < ns; i++)
                vn_buf_append(&b, sl[i].p, sl[i].n);
        }
        free(chain);
        if (seam_prefix(t, open, from))
            vn_buf_puts(&b, US_SEP);
    }

    size_t src_off = t->a[start].off, src_end = atom_end(t, end);
    vn_buf_append(&b, t->s + t->a[from].off, src_end - t->a[from].off);

    if (close != -2 && close >= 0) {
        if (seam_suffix(t, close, end - 1))
            vn_buf_puts(&b, US_SEP);
        for (int32_t id = close; id >= 0; id = t->n[id].parent) {
            size_t ns = node_close(t, &t->n[id], sl);
            for (size_t i = 0; i < ns; i++)
                vn_buf_append(&b, sl[i].p, sl[i].n);
            if (is_us(t, id) && is_us(t, t->n[id].parent))
                vn_buf_puts(&b, US_SEP);
        }
    }

    if (out->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        out->v = xrealloc(out->v, *cap * sizeof(*out->v));
    }
    struct tg_part *p = &out->v[out->n++];
    p->len = b.len;
    p->utf16_len = tg_utf16_len_n(b.data, b.len);
    p->text = vn_buf_steal(&b);
    p->src_off = src_off;
    p->src_end = src_end;
}

/*
 * The splitter proper over tokenized text. Each round starts a part at atom
 * `start` with the stack `open` reopened, walks forward while the content
 * still fits, remembering the latest fitting cut of each class, then emits
 * the best one. Returns 0 or VN_EINVAL when no cut fits.
 */
static int split_atoms(const struct tok *t, size_t limit, struct tg_parts *out)
{
    size_t cap = 0, start = 0, last_visible = SIZE_MAX;

    for (size_t j = t->na; j-- > 0;) {
        if (t->a[j].flags & AF_VISIBLE) {
            last_visible = j;
            break;
        }
    }
    if (last_visible == SIZE_MAX)
        return 0; /* nothing to show: no parts */

    /* Leading whitespace is kept when the text fits in one part, dropped like
     * any other cut's when it does not (it might not even fit itself). */
    if (t->a[0].kind == A_WS && tg_utf16_len_n(t->s, t->len) > limit)
        start = 1;

    while (start <= last_visible) {
        int32_t open = start ? t->a[start - 1].node : -1;
        size_t from = content_start(t, open, start);
        size_t prefix = open_cost(t, open) + seam_prefix(t, open, from);
        size_t used = 0, j;
        bool visible = false;
        struct cand best[C_NCLASS];
        bool have[C_NCLASS] = {false};

        for (j = from; j < t->na; j++) {
            const struct atom *a = &t->a[j];
            if (j > from && visible) {
                struct cand c = {j, j, -1, 0};
                enum cut_class cls = C_NONE;
                if (a->kind == A_WS) {
                    cls = ws_class(t, j);
                    c.node = a->node;
                    c.next = j + 1;
                } else if (t->a[j - 1].kind != A_WS) {
                    cls = boundary_class(t, j);
                    c.node = t->a[j - 1].node;
                }
                c.cost = prefix + used + close_cost(t, c.node) + seam_suffix(t, c.node, j - 1);
                if (cls != C_NONE && c.cost <= limit && !(c.node >= 0 && t->n[c.node].atomic) &&
                    (c.next >= t->na || open_cost(t, c.node) + close_cost(t, c.node) < limit)) {
                    best[cls] = c;
                    have[cls] = true;
                }
            }
            if (prefix + used + a->w > limit)
                break;
            used += a->w;
            if (a->flags & AF_VISIBLE)
                visible = true;
        }
        if (j == t->na) {
            emit_part(t, out, &cap, start, from, t->na, open, -2);
            return 0;
        }

        /* A whitespace cut of the best kind that fills half the part; else
         * the whitespace cut that keeps the most text; only then a cut in a
         * word, and last inside a symbol. */
        int pick = -1;
        for (int c = C_PARA; pick < 0 && c <= C_SPACE; c++) {
            if (have[c] && best[c].cost >= limit / 2)
                pick = c;
        }
        if (pick < 0) {
            for (int c = C_PARA; c <= C_SPACE; c++) {
                if (have[c] && (pick < 0 || best[c].end > best[pick].end))
                    pick = c;
            }
        }
        if (pick < 0 && have[C_CHAR])
            pick = C_CHAR;
        if (pick < 0 && have[C_WEAK])
            pick = C_WEAK;
        if (pick < 0)
            return VN_EINVAL;
        emit_part(t, out, &cap, start, from, best[pick].end, open, best[pick].node);
        start = best[pick].next;
    }
    return 0;
}

int tg_split(const char *text, size_t len, enum tg_parse_mode mode, size_t limit_utf16,
             struct tg_parts *out)
{
    struct vn_buf clean = VN_BUF_INIT;
    struct tok t;
    int rc = 0;

    if (out == NULL)
        return VN_EINVAL;
    out->v = NULL;
    out->n = 0;
    if ((text == NULL && len) ||
        (mode != TG_PARSE_PLAIN && mode != TG_PARSE_HTML && mode != TG_PARSE_MD2))
        return VN_EINVAL;
    if (len > TG_SPLIT_MAX_BYTES)
        return VN_ETOOBIG;
    if (limit_utf16 == 0)
        limit_utf16 = TG_TEXT_LIMIT;
    if (len && !tg_utf8_valid(text, len)) {
        tg_utf8_sanitize(&clean, text, len);
        text = clean.data;
        len = clean.len;
    }

    memset(&t, 0, sizeof(t));
    t.s = text;
    t.len = len;
    t.mode = mode;
    tokenize(&t);
    node_costs(&t);
    rc = split_atoms(&t, limit_utf16, out);

    tok_free(&t);
    vn_buf_free(&clean);
    if (rc)
        tg_parts_free(out);
    return rc;
}

void tg_parts_free(struct tg_parts *parts)
{
    if (parts == NULL)
        return;
    for (size_t i = 0; i < parts->n; i++)
        free(parts->v[i].text);
    free(parts->v);
    parts->v = NULL;
    parts->n = 0;
}

int tg__check_markup(const char *s, size_t len, enum tg_parse_mode mode)
{
    struct tok t;
    int errors;

    if (mode == TG_PARSE_PLAIN)
        return 0;
    if ((s == NULL && len) || !tg_utf8_valid(s, len))
        return VN_EINVAL;
    memset(&t, 0, sizeof(t));
    t.s = s;
    t.len = len;
    t.mode = mode;
    tokenize(&t);
    errors = t.errors;
    tok_free(&t);
    return errors ? VN_EINVAL : 0;
}
