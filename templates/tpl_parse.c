/*
 * tpl_parse.c - template source to ops.
 *
 * Two passes. The tokenizer cuts the source into text runs (split after each
 * '\n') and tags, following set-delimiter tags as it goes, and applies the
 * Mustache standalone rule line by line: a line holding only whitespace and
 * one section, inverted, closing, partial, comment or delimiter tag loses
 * its whitespace and line break (a standalone partial keeps the indentation
 * to apply to each line it renders). The builder then turns the kept tokens
 * into ops, matching sections with a stack and parsing filter chains.
 * Positions are tracked with a cursor that only moves forward, so the whole
 * compile is linear in the source size.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "templates/tpl_internal.h"

enum ptok_type {
    PT_TEXT,
    PT_VAR,
    PT_RAW,
    PT_SECTION,
    PT_INVERTED,
    PT_CLOSE,
    PT_PARTIAL,
    PT_COMMENT,
    PT_DELIM,
};

struct ptok {
    uint8_t type;
    bool drop;
    uint32_t off, len;         /* text: the run; tags: the content, trimmed */
    uint32_t line, col;        /* start of the run, or of the opening delimiter */
    uint32_t cline, ccol;      /* start of the trimmed content (tags) */
    uint32_t ind_off, ind_len; /* standalone partial: its indentation in src */
};

/* A forward-only position: byte offset, 1-based line and column. */
struct cursor {
    size_t off;
    uint32_t line, col;
};

struct parser {
    const char *src;
    size_t len;
    const struct tpl_limits *lim;
    const char *name;
    struct tpl_error *err;
    struct tpl *t;

    struct ptok *toks;
    size_t ntoks, captoks;
    size_t line_first; /* first token of the current line */
    struct cursor cur;

    char otag[16], ctag[16];
    size_t olen, clen;

    struct vn_buf pool;
    size_t capops, capnames, capsegs, capcalls, capargs, cappartials;
};

static const struct tpl_limits default_limits = {
    TPL_MAX_SOURCE, TPL_MAX_DEPTH, TPL_MAX_PARTIAL_DEPTH, TPL_MAX_OUTPUT, TPL_MAX_STEPS,
};

const struct tpl_limits *tpl_limits_default(void)
{
    return &default_limits;
}

static const char *const target_names[TPL_TARGET__COUNT] = {
    "text", "line", "telegram_html", "telegram_md2", "email_html", "json", "mustache",
};

const char *tpl_target_name(enum tpl_target t)
{
    if ((unsigned)t >= TPL_TARGET__COUNT)
        return "?";
    return target_names[t];
}

int tpl_target_parse(const char *s)
{
    for (int i = 0; s != NULL && i < TPL_TARGET__COUNT; i++)
        if (strcmp(s, target_names[i]) == 0)
            return i;
    return -1;
}

void tpl__set_error(struct tpl_error *err, int code, const char *file, unsigned line, unsigned col,
                    const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return;
    err->code = code;
    snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
    err->line = line;
    err->col = col;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

void tpl_error_format(const struct tpl_error *e, struct vn_buf *out)
{
    if (e->file[0])
        vn_buf_printf(out, "%s:", e->file);
    if (e->line) {
        vn_buf_printf(out, "%u:", e->line);
        if (e->col)
            vn_buf_printf(out, "%u:", e->col);
    }
    if (e->file[0] || e->line)
        vn_buf_putc(out, ' ');
    vn_buf_puts(out, e->msg[0] ? e->msg : vn_strerror(e->code));
}

size_t tpl__utf8_seq(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    return vn_utf8_seq(s, len, i, cp);
}

/* ---- positions --------------------------------------------------------- */

static void cur_advance(const char *src, struct cursor *c, size_t to)
{
    for (size_t i = c->off; i < to; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == '\n') {
            c->line++;
            c->col = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c->col++;
        }
    }
    if (to > c->off)
        c->off = to;
}

static int fail_at(struct parser *p, int code, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail_at(struct parser *p, int code, uint32_t line, uint32_t col, const char *fmt, ...)
{
    va_list ap;
    char msg[256];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tpl__set_error(p->err, code, p->name, line, col, "%s", msg);
    return code;
}

/* ---- pool and arrays --------------------------------------------------- */

static uint32_t pool_add(struct parser *p, const char *s, size_t n)
{
    uint32_t off = (uint32_t)p->pool.len;
    vn_buf_append(&p->pool, s, n);
    vn_buf_putc(&p->pool, '\0');
    return off;
}

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 16;                                                          \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                                       \
        }                                                                                          \
    } while (0)

static struct tpl_op *op_new(struct parser *p, enum tpl_opcode code, uint32_t line, uint32_t col)
{
    GROW(p->t->ops, p->t->nops, p->capops);
    struct tpl_op *op = &p->t->ops[p->t->nops++];
    memset(op, 0, sizeof(*op));
    op->code = (uint8_t)code;
    op->line = line;
    op->col = col;
    return op;
}

/* ---- tokenizer --------------------------------------------------------- */

static struct ptok *tok_new(struct parser *p, enum ptok_type type)
{
    GROW(p->toks, p->ntoks, p->captoks);
    struct ptok *tk = &p->toks[p->ntoks++];
    memset(tk, 0, sizeof(*tk));
    tk->type = (uint8_t)type;
    return tk;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool standalone_type(uint8_t t)
{
    return t == PT_SECTION || t == PT_INVERTED || t == PT_CLOSE || t == PT_PARTIAL ||
           t == PT_COMMENT || t == PT_DELIM;
}

/* The line made of tokens [line_first, ntoks) has ended: apply the
 * standalone rule to it. */
static void end_line(struct parser *p)
{
    size_t first = p->line_first, tag = SIZE_MAX, ntags = 0;

    p->line_first = p->ntoks;
    for (size_t i = first; i < p->ntoks; i++) {
        struct ptok *tk = &p->toks[i];
        if (tk->type == PT_TEXT) {
            for (uint32_t k = 0; k < tk->len; k++)
                if (!is_blank(p->src[tk->off + k]))
                    return;
        } else {
            ntags++;
            tag = i;
        }
    }
    if (ntags != 1 || !standalone_type(p->toks[tag].type))
        return;
    for (size_t i = first; i < p->ntoks; i++)
        if (p->toks[i].type == PT_TEXT)
            p->toks[i].drop = true;
    if (p->toks[tag].type == PT_PARTIAL && tag > first) {
        p->toks[tag].ind_off = p->toks[tag - 1].off;
        p->toks[tag].ind_len = p->toks[tag - 1].len;
    }
}

static void emit_text(struct parser *p, size_t from, size_t to)
{
    while (from < to) {
        const char *nl = memchr(p->src + from, '\n', to - from);
        size_t end = nl ? (size_t)(nl - p->src) + 1 : to;
        cur_advance(p->src, &p->cur, from);
        struct ptok *tk = tok_new(p, PT_TEXT);
        tk->off = (uint32_t)from;
        tk->len = (uint32_t)(end - from);
        tk->line = p->cur.line;
        tk->col = p->cur.col;
        from = end;
        if (nl)
            end_line(p);
    }
}

static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0 || hlen < nlen)
        return NULL;
    const char *end = hay + hlen - nlen;
    for (const char *s = hay; s <= end;) {
        const char *c = memchr(s, needle[0], (size_t)(end - s) + 1);
        if (c == NULL)
            return NULL;
        if (memcmp(c, needle, nlen) == 0)
            return c;
        s = c + 1;
    }
    return NULL;
}

/* Parse "{{=<% %>=}}" content (between the '=' signs, trimmed). */
static int set_delims(struct parser *p, const struct ptok *tk)
{
    const char *s = p->src + tk->off;
    size_t n = tk->len, i = 0, a0, a1, b0, b1;

    while (i < n && !is_blank(s[i]))
        i++;
    a0 = 0;
    a1 = i;
    while (i < n && is_blank(s[i]))
        i++;
    b0 = i;
    while (i < n && !is_blank(s[i]))
        i++;
    b1 = i;
    if (a1 == a0 || b1 == b0 || i != n || a1 - a0 >= sizeof(p->otag) ||
        b1 - b0 >= sizeof(p->ctag) || memchr(s, '=', n) != NULL)
        return fail_at(p, VN_EINVAL, tk->line, tk->col,
                       "bad set-delimiter tag: expected {{=<open> <close>=}} with two "
                       "delimiters of 1-15 characters, no spaces or '='");
    memcpy(p->otag, s + a0, a1 - a0);
    p->otag[a1 - a0] = '\0';
    p->olen = a1 - a0;
    memcpy(p->ctag, s + b0, b1 - b0);
    p->ctag[b1 - b0] = '\0';
    p->clen = b1 - b0;
    return 0;
}

/* One tag whose opening delimiter starts at src[at]. Sets *next past it. */
static int parse_tag(struct parser *p, size_t at, size_t *next)
{
    const char *src = p->src;
    size_t cs = at + p->olen, ce, end;
    enum ptok_type type = PT_VAR;
    const char *close = p->ctag;
    size_t closelen = p->clen;
    char tail[17];

    cur_advance(src, &p->cur, at);
    uint32_t line = p->cur.line, col = p->cur.col;

    if (cs < p->len) {
        switch (src[cs]) {
        case '{':
            type = PT_RAW;
            break;
        case '&':
            type = PT_RAW;
            break;
        case '#':
            type = PT_SECTION;
            break;
        case '^':
            type = PT_INVERTED;
            break;
        case '/':
            type = PT_CLOSE;
            break;
        case '>':
            type = PT_PARTIAL;
            break;
        case '!':
            type = PT_COMMENT;
            break;
        case '=':
            type = PT_DELIM;
            break;
        default:
            break;
        }
        if (type != PT_VAR)
            cs++;
    }
    if (type == PT_RAW && src[cs - 1] == '{') {
        tail[0] = '}';
    } else if (type == PT_DELIM) {
        tail[0] = '=';
    } else {
        tail[0] = '\0';
    }
    if (tail[0]) {
        memcpy(tail + 1, p->ctag, p->clen);
        close = tail;
        closelen = p->clen + 1;
    }
    const char *c = find(src + cs, p->len - cs, close, closelen);
    if (c == NULL)
        return fail_at(p, VN_EINVAL, line, col, "unclosed tag: no '%.*s' after this '%s'",
                       (int)closelen, close, p->otag);
    ce = (size_t)(c - src);
    end = ce + closelen;

    size_t ts = cs, te = ce;
    while (ts < te && is_blank(src[ts]))
        ts++;
    while (te > ts && is_blank(src[te - 1]))
        te--;
    struct cursor cc = p->cur;
    cur_advance(src, &cc, ts);

    struct ptok *tk = tok_new(p, type);
    tk->off = (uint32_t)ts;
    tk->len = (uint32_t)(te - ts);
    tk->line = line;
    tk->col = col;
    tk->cline = cc.line;
    tk->ccol = cc.col;
    if (type != PT_COMMENT && tk->len == 0)
        return fail_at(p, VN_EINVAL, line, col, "empty tag");
    if (type == PT_DELIM) {
        int rc = set_delims(p, tk);
        if (rc)
            return rc;
    }
    *next = end;
    return 0;
}

static int tokenize(struct parser *p)
{
    size_t pos = 0;
    while (pos < p->len) {
        const char *open = find(p->src + pos, p->len - pos, p->otag, p->olen);
        size_t text_end = open ? (size_t)(open - p->src) : p->len;
        emit_text(p, pos, text_end);
        if (open == NULL)
            break;
        int rc = parse_tag(p, text_end, &pos);
        if (rc)
            return rc;
    }
    end_line(p);
    return 0;
}

/* ---- names and filters ------------------------------------------------- */

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Parse a dotted name s[0..n) into names[]; returns its index or -1. */
static int add_name(struct parser *p, const char *s, size_t n, uint32_t line, uint32_t col,
                    uint32_t *index)
{
    struct tpl *t = p->t;
    GROW(t->names, t->nnames, p->capnames);
    struct tpl_name *nm = &t->names[t->nnames];
    nm->text = pool_add(p, s, n);
    nm->seg = (uint32_t)t->nsegs;
    nm->nseg = 0;
    if (!(n == 1 && s[0] == '.')) {
        size_t i = 0;
        while (i <= n) {
            const char *dot = memchr(s + i, '.', n - i);
            size_t e = dot ? (size_t)(dot - s) : n;
            if (e == i)
                return fail_at(p, VN_EINVAL, line, col,
                               "bad name \"%.*s\": empty segment (use \".\" alone for the "
                               "current item)",
                               (int)(n > 64 ? 64 : n), s);
            GROW(t->segs, t->nsegs, p->capsegs);
            struct tpl_seg *sg = &t->segs[t->nsegs++];
            sg->off = pool_add(p, s + i, e - i);
            sg->len = (uint32_t)(e - i);
            sg->index = -1;
            if (e - i <= 9) {
                int64_t v = 0;
                size_t k = i;
                while (k < e && s[k] >= '0' && s[k] <= '9')
                    v = v * 10 + (s[k++] - '0');
                if (k == e)
                    sg->index = v;
            }
            nm->nseg++;
            i = e + 1;
            if (dot == NULL)
                break;
        }
    }
    *index = (uint32_t)t->nnames++;
    return 0;
}

/* Lexer over one tag's content with a forward-only cursor for positions. */
struct lex {
    struct parser *p;
    const char *s;
    size_t n, i;
    size_t base; /* offset of s in src */
    struct cursor c;
};

static void lex_pos(struct lex *lx, uint32_t *line, uint32_t *col)
{
    cur_advance(lx->p->src, &lx->c, lx->base + lx->i);
    *line = lx->c.line;
    *col = lx->c.col;
}

static void lex_ws(struct lex *lx)
{
    while (lx->i < lx->n && is_blank(lx->s[lx->i]))
        lx->i++;
}

static int lex_string(struct lex *lx, uint32_t *off, uint32_t *len)
{
    uint32_t line, col;
    struct vn_buf b = VN_BUF_INIT;
    lex_pos(lx, &line, &col);
    lx->i++; /* opening quote */
    while (lx->i < lx->n && lx->s[lx->i] != '"') {
        char ch = lx->s[lx->i];
        if (ch == '\\') {
            if (lx->i + 1 >= lx->n)
                break;
            char e = lx->s[lx->i + 1];
            switch (e) {
            case '"':
                ch = '"';
                break;
            case '\\':
                ch = '\\';
                break;
            case 'n':
                ch = '\n';
                break;
            case 't':
                ch = '\t';
                break;
            default: {
                uint32_t l2, c2;
                lex_pos(lx, &l2, &c2);
                vn_buf_free(&b);
                return fail_at(lx->p, VN_EINVAL, l2, c2,
                               "unknown escape \\%c in a string (use \\\" \\\\ \\n \\t)", e);
            }
            }
            lx->i++;
        }
        vn_buf_putc(&b, ch);
        lx->i++;
    }
    if (lx->i >= lx->n) {
        vn_buf_free(&b);
        return fail_at(lx->p, VN_EINVAL, line, col, "unterminated string");
    }
    lx->i++; /* closing quote */
    *off = pool_add(lx->p, b.data ? b.data : "", b.len);
    *len = (uint32_t)b.len;
    vn_buf_free(&b);
    return 0;
}

static int lex_number(struct lex *lx, struct tpl_farg *a)
{
    size_t st = lx->i;
    char tmp[48];
    uint32_t line, col;
    lex_pos(lx, &line, &col);
    if (lx->i < lx->n && lx->s[lx->i] == '-')
        lx->i++;
    size_t digits = lx->i;
    while (lx->i < lx->n && lx->s[lx->i] >= '0' && lx->s[lx->i] <= '9')
        lx->i++;
    if (lx->i == digits)
        return fail_at(lx->p, VN_EINVAL, line, col, "expected a number");
    if (lx->i < lx->n && lx->s[lx->i] == '.') {
        lx->i++;
        size_t f = lx->i;
        while (lx->i < lx->n && lx->s[lx->i] >= '0' && lx->s[lx->i] <= '9')
            lx->i++;
        if (lx->i == f)
            return fail_at(lx->p, VN_EINVAL, line, col, "expected digits after '.'");
    }
    if (lx->i - st >= sizeof(tmp))
        return fail_at(lx->p, VN_EINVAL, line, col, "number too long");
    memcpy(tmp, lx->s + st, lx->i - st);
    tmp[lx->i - st] = '\0';
    a->is_num = true;
    a->num = strtod(tmp, NULL);
    a->str = pool_add(lx->p, tmp, lx->i - st);
    a->str_len = (uint32_t)(lx->i - st);
    return 0;
}

#define MAX_FILTERS 16
#define MAX_ARGS    16

static int parse_filters(struct parser *p, struct lex *lx, size_t opi)
{
    struct tpl *t = p->t;
    uint32_t first = (uint32_t)t->ncalls, n = 0;

    while (1) {
        lex_ws(lx);
        if (lx->i >= lx->n)
            break;
        uint32_t line, col;
        lex_pos(lx, &line, &col);
        if (lx->s[lx->i] != '|')
            return fail_at(p, VN_EINVAL, line, col,
                           "unexpected '%c': a name is one word; filters follow a '|'",
                           lx->s[lx->i]);
        lx->i++;
        lex_ws(lx);
        lex_pos(lx, &line, &col);
        size_t ns = lx->i;
        while (lx->i < lx->n && is_ident(lx->s[lx->i]))
            lx->i++;
        if (lx->i == ns || !is_ident_start(lx->s[ns]))
            return fail_at(p, VN_EINVAL, line, col, "expected a filter name after '|'");
        int fn = tpl__filter_find(lx->s + ns, lx->i - ns);
        if (fn < 0)
            return fail_at(p, VN_EINVAL, line, col, "unknown filter \"%.*s\" (known: %s)",
                           (int)(lx->i - ns > 40 ? 40 : lx->i - ns), lx->s + ns,
                           tpl__filter_names());
        if (++n > MAX_FILTERS)
            return fail_at(p, VN_ETOOBIG, line, col, "more than %d filters in one tag",
                           MAX_FILTERS);
        GROW(t->calls, t->ncalls, p->capcalls);
        struct tpl_fcall *call = &t->calls[t->ncalls++];
        call->fn = (uint16_t)fn;
        call->nargs = 0;
        call->arg = (uint32_t)t->nargs;
        call->line = line;
        call->col = col;
        if (fn == tpl__filter_default_id())
            t->ops[opi].flags |= TOPF_HAS_DEFAULT;

        while (1) {
            lex_ws(lx);
            if (lx->i >= lx->n || lx->s[lx->i] == '|')
                break;
            uint32_t al, ac;
            lex_pos(lx, &al, &ac);
            if (call->nargs >= MAX_ARGS)
                return fail_at(p, VN_ETOOBIG, al, ac, "more than %d arguments to one filter",
                               MAX_ARGS);
            GROW(t->args, t->nargs, p->capargs);
            struct tpl_farg *a = &t->args[t->nargs];
            memset(a, 0, sizeof(*a));
            a->line = al;
            a->col = ac;
            char ch = lx->s[lx->i];
            int rc = 0;
            if (ch == '=') {
                /* =N="text": an exact-number case (plural) */
                size_t ks = lx->i++;
                struct tpl_farg tmp;
                memset(&tmp, 0, sizeof(tmp));
                rc = lex_number(lx, &tmp);
                if (rc)
                    return rc;
                a->key = pool_add(p, lx->s + ks, lx->i - ks);
                a->key_len = (uint32_t)(lx->i - ks);
                if (lx->i >= lx->n || lx->s[lx->i] != '=')
                    return fail_at(p, VN_EINVAL, al, ac, "expected =N=\"text\"");
                lx->i++;
            } else if (is_ident_start(ch)) {
                size_t ks = lx->i;
                while (lx->i < lx->n && is_ident(lx->s[lx->i]))
                    lx->i++;
                if (lx->i >= lx->n || lx->s[lx->i] != '=')
                    return fail_at(p, VN_EINVAL, al, ac,
                                   "expected key=value or a quoted string, got \"%.*s\"",
                                   (int)(lx->i - ks > 40 ? 40 : lx->i - ks), lx->s + ks);
                a->key = pool_add(p, lx->s + ks, lx->i - ks);
                a->key_len = (uint32_t)(lx->i - ks);
                lx->i++;
            }
            if (lx->i >= lx->n)
                return fail_at(p, VN_EINVAL, al, ac, "missing value after '='");
            ch = lx->s[lx->i];
            if (ch == '"')
                rc = lex_string(lx, &a->str, &a->str_len);
            else if (ch == '-' || (ch >= '0' && ch <= '9'))
                rc = lex_number(lx, a);
            else {
                uint32_t l2, c2;
                lex_pos(lx, &l2, &c2);
                return fail_at(p, VN_EINVAL, l2, c2,
                               "unexpected '%c' in the arguments of filter \"%s\" (strings "
                               "are double-quoted)",
                               ch, tpl__filter_get(fn)->name);
            }
            if (rc)
                return rc;
            if (lx->i < lx->n && !is_blank(lx->s[lx->i]) && lx->s[lx->i] != '|') {
                uint32_t l2, c2;
                lex_pos(lx, &l2, &c2);
                return fail_at(p, VN_EINVAL, l2, c2, "expected a space or '|' after an argument");
            }
            t->nargs++;
            call->nargs++;
        }
        char msg[200] = "";
        int bad = -1;
        const struct tpl_filter_def *def = tpl__filter_get(fn);
        /* the pool may have moved since the last call; check() reads it */
        t->pool = p->pool.data;
        t->pool_len = p->pool.len;
        if (def->check && def->check(t, call, msg, sizeof(msg), &bad) != 0) {
            uint32_t el = call->line, ec = call->col;
            if (bad >= 0 && bad < call->nargs) {
                el = t->args[call->arg + bad].line;
                ec = t->args[call->arg + bad].col;
            }
            return fail_at(p, VN_EINVAL, el, ec, "%s: %s", def->name, msg);
        }
    }
    t->ops[opi].b = first;
    t->ops[opi].c = n;
    return 0;
}

/* {{name}} or {{name | filters}} */
static int build_var(struct parser *p, const struct ptok *tk, bool raw)
{
    struct lex lx = {p, p->src + tk->off, tk->len, 0, tk->off, {tk->off, tk->cline, tk->ccol}};
    size_t ns = 0;
    while (lx.i < lx.n && !is_blank(lx.s[lx.i]) && lx.s[lx.i] != '|')
        lx.i++;
    if (lx.i == ns)
        return fail_at(p, VN_EINVAL, tk->cline, tk->ccol, "missing name before '|'");
    struct tpl_op *op = op_new(p, TOP_VAR, tk->line, tk->col);
    size_t opi = p->t->nops - 1;
    /* provisional: tpl__analyze() decides the escaping from the target */
    op->esc = raw ? TESC_RAW : TESC_MUSTACHE;
    uint32_t idx;
    int rc = add_name(p, lx.s, lx.i, tk->cline, tk->ccol, &idx);
    if (rc)
        return rc;
    p->t->ops[opi].a = idx;
    return parse_filters(p, &lx, opi);
}

/* A section/close/partial name: one word, no filters. */
static int plain_name(struct parser *p, const struct ptok *tk, const char *what)
{
    const char *s = p->src + tk->off;
    const char *bar = memchr(s, '|', tk->len);
    size_t bad = tk->len;

    if (bar != NULL) {
        bad = (size_t)(bar - s);
    } else {
        for (size_t i = 0; i < tk->len && bad == tk->len; i++)
            if (is_blank(s[i]))
                bad = i;
    }
    if (bad == tk->len)
        return 0;
    struct cursor c = {tk->off, tk->cline, tk->ccol};
    cur_advance(p->src, &c, tk->off + bad);
    if (bar != NULL)
        return fail_at(p, VN_EINVAL, c.line, c.col, "filters are not allowed in %s tags", what);
    return fail_at(p, VN_EINVAL, c.line, c.col, "a %s name is one word", what);
}

static int build(struct parser *p)
{
    struct tpl *t = p->t;
    size_t stack[TPL_MAX_DEPTH > 64 ? TPL_MAX_DEPTH : 64];
    size_t maxdepth = p->lim->max_depth;
    size_t depth = 0;
    int rc = 0;

    if (maxdepth > VN_ARRAY_LEN(stack))
        maxdepth = VN_ARRAY_LEN(stack);
    for (size_t i = 0; i < p->ntoks; i++) {
        struct ptok *tk = &p->toks[i];
        if (tk->drop)
            continue;
        switch (tk->type) {
        case PT_TEXT: {
            struct tpl_op *last = t->nops ? &t->ops[t->nops - 1] : NULL;
            if (last && last->code == TOP_TEXT && last->a + last->b + 1 == p->pool.len) {
                /* extend the previous run: drop its NUL, append, re-terminate */
                p->pool.len--;
                vn_buf_append(&p->pool, p->src + tk->off, tk->len);
                vn_buf_putc(&p->pool, '\0');
                last->b += tk->len;
            } else {
                struct tpl_op *op = op_new(p, TOP_TEXT, tk->line, tk->col);
                op->a = pool_add(p, p->src + tk->off, tk->len);
                op->b = tk->len;
            }
            break;
        }
        case PT_VAR:
        case PT_RAW:
            rc = build_var(p, tk, tk->type == PT_RAW);
            break;
        case PT_SECTION:
        case PT_INVERTED: {
            rc = plain_name(p, tk, "section");
            if (rc)
                break;
            if (depth >= maxdepth) {
                rc = fail_at(p, VN_ETOOBIG, tk->line, tk->col, "sections nested deeper than %zu",
                             maxdepth);
                break;
            }
            uint32_t idx;
            rc = add_name(p, p->src + tk->off, tk->len, tk->cline, tk->ccol, &idx);
            if (rc)
                break;
            struct tpl_op *op =
                op_new(p, tk->type == PT_SECTION ? TOP_SECTION : TOP_INVERTED, tk->line, tk->col);
            op->a = idx;
            stack[depth++] = t->nops - 1;
            break;
        }
        case PT_CLOSE: {
            rc = plain_name(p, tk, "closing");
            if (rc)
                break;
            if (depth == 0) {
                rc = fail_at(p, VN_EINVAL, tk->line, tk->col,
                             "{{/%.*s}} closes nothing: no section is open", (int)tk->len,
                             p->src + tk->off);
                break;
            }
            size_t open = stack[--depth];
            const struct tpl_op *o = &t->ops[open];
            const char *oname = p->pool.data + t->names[o->a].text;
            if (strlen(oname) != tk->len || memcmp(oname, p->src + tk->off, tk->len) != 0) {
                rc = fail_at(p, VN_EINVAL, tk->line, tk->col,
                             "{{/%.*s}} does not close {{%c%s}} opened at %u:%u",
                             (int)(tk->len > 64 ? 64 : tk->len), p->src + tk->off,
                             o->code == TOP_SECTION ? '#' : '^', oname, o->line, o->col);
                break;
            }
            struct tpl_op *op = op_new(p, TOP_END, tk->line, tk->col);
            op->a = (uint32_t)open;
            t->ops[open].b = (uint32_t)(t->nops - 1);
            break;
        }
        case PT_PARTIAL: {
            rc = plain_name(p, tk, "partial");
            if (rc)
                break;
            struct tpl_op *op = op_new(p, TOP_PARTIAL, tk->line, tk->col);
            op->a = pool_add(p, p->src + tk->off, tk->len);
            op->b = tk->len;
            if (tk->ind_len) {
                op->flags |= TOPF_STANDALONE;
                op->c = pool_add(p, p->src + tk->ind_off, tk->ind_len);
                op->d = tk->ind_len;
            }
            GROW(t->partials, t->npartials, p->cappartials);
            t->partials[t->npartials++] = (uint32_t)(t->nops - 1);
            break;
        }
        case PT_COMMENT:
        case PT_DELIM:
            break;
        }
        if (rc)
            return rc;
    }
    if (depth > 0) {
        const struct tpl_op *o = &t->ops[stack[depth - 1]];
        return fail_at(p, VN_EINVAL, o->line, o->col, "{{%c%s}} is never closed",
                       o->code == TOP_SECTION ? '#' : '^', p->pool.data + t->names[o->a].text);
    }
    return 0;
}

/* ---- entry points ------------------------------------------------------ */

static int check_source(struct parser *p)
{
    const unsigned char *s = (const unsigned char *)p->src;
    for (size_t i = 0; i < p->len;) {
        uint32_t cp;
        size_t n = tpl__utf8_seq(s, p->len, i, &cp);
        if (n == 0 || cp == 0) {
            cur_advance(p->src, &p->cur, i);
            return fail_at(p, VN_EINVAL, p->cur.line, p->cur.col,
                           n == 0 ? "invalid UTF-8 (byte 0x%02x)" : "NUL byte (0x%02x) in template",
                           s[i]);
        }
        i += n;
    }
    p->cur = (struct cursor){0, 1, 1};
    return 0;
}

struct tpl *tpl_compile(const char *src, size_t len, const struct tpl_compile_opts *opts,
                        struct tpl_error *err)
{
    struct parser p;
    struct tpl *t = NULL;
    struct tpl_error dummy;
    int rc;

    if (err == NULL)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    memset(&p, 0, sizeof(p));
    p.src = src ? src : "";
    p.len = src ? len : 0;
    p.lim = opts && opts->limits ? opts->limits : &default_limits;
    p.name = opts && opts->name ? opts->name : "";
    p.err = err;
    p.cur = (struct cursor){0, 1, 1};
    strcpy(p.otag, "{{");
    strcpy(p.ctag, "}}");
    p.olen = p.clen = 2;

    if (opts && (unsigned)opts->target >= TPL_TARGET__COUNT) {
        tpl__set_error(err, VN_EINVAL, p.name, 0, 0, "unknown target %d", (int)opts->target);
        return NULL;
    }
    if (p.len > p.lim->max_source) {
        tpl__set_error(err, VN_ETOOBIG, p.name, 0, 0,
                       "template is %zu bytes, over the limit of %zu", p.len, p.lim->max_source);
        return NULL;
    }
    t = xcalloc(1, sizeof(*t));
    t->name = xstrdup(p.name);
    t->target = opts ? opts->target : TPL_TARGET_TEXT;
    p.t = t;
    vn_buf_init(&p.pool);
    vn_buf_putc(&p.pool, '\0'); /* offset 0 is the empty string */

    rc = check_source(&p);
    if (rc == 0)
        rc = tokenize(&p);
    if (rc == 0)
        rc = build(&p);
    free(p.toks);
    t->pool = p.pool.data;
    t->pool_len = p.pool.len;
    if (rc == 0)
        rc = tpl__analyze(t, err);
    if (rc != 0) {
        tpl_free(t);
        return NULL;
    }
    return t;
}

void tpl_free(struct tpl *t)
{
    if (t == NULL)
        return;
    free(t->name);
    free(t->ops);
    free(t->names);
    free(t->segs);
    free(t->calls);
    free(t->args);
    free(t->partials);
    free(t->pool);
    free(t);
}

enum tpl_target tpl_get_target(const struct tpl *t)
{
    return t->target;
}

const char *tpl_get_name(const struct tpl *t)
{
    return t->name;
}

size_t tpl_partial_count(const struct tpl *t)
{
    return t->npartials;
}

const char *tpl_partial_name(const struct tpl *t, size_t i, unsigned *line, unsigned *col)
{
    if (i >= t->npartials)
        return NULL;
    const struct tpl_op *op = &t->ops[t->partials[i]];
    if (line)
        *line = op->line;
    if (col)
        *col = op->col;
    return tpl__str(t, op->a);
}

/* ---- argument helpers -------------------------------------------------- */

const struct tpl_farg *tpl__arg_named(const struct tpl *t, const struct tpl_fcall *c,
                                      const char *key)
{
    for (unsigned i = 0; i < c->nargs; i++) {
        const struct tpl_farg *a = &t->args[c->arg + i];
        if (a->key_len && strcmp(tpl__str(t, a->key), key) == 0)
            return a;
    }
    return NULL;
}

const struct tpl_farg *tpl__arg_pos(const struct tpl *t, const struct tpl_fcall *c, unsigned i)
{
    unsigned k = 0;
    for (unsigned j = 0; j < c->nargs; j++) {
        const struct tpl_farg *a = &t->args[c->arg + j];
        if (a->key_len == 0 && k++ == i)
            return a;
    }
    return NULL;
}

unsigned tpl__arg_npos(const struct tpl *t, const struct tpl_fcall *c)
{
    unsigned k = 0;
    for (unsigned j = 0; j < c->nargs; j++)
        if (t->args[c->arg + j].key_len == 0)
            k++;
    return k;
}
