/*
 * tpl_context.c - decide how each value is escaped from where it sits in the
 * template's own markup, and refuse places where no escaping is safe.
 *
 * The template text is trusted (operators write it); values are not. For
 * the HTML targets a small HTML tokenizer runs over the text ops in order
 * and tracks whether the next value lands in text, in a quoted attribute
 * value (plain, or a URL attribute such as href), or somewhere escaping
 * cannot help: a tag or attribute name, an unquoted attribute value, an on*
 * handler, a style attribute, <script>/<style> content, a comment, or right
 * after a '<'. For JSON it tracks whether a value is inside a string literal
 * (escape as string content) or where a JSON value goes (write the value as
 * JSON). Everything else gets one escaping for the whole target.
 *
 * Sections may render zero or many times, so the context at a section's end
 * must equal the one at its start; otherwise what follows would be escaped
 * for a context it is not in. (Whether a URL has started is merged to
 * "started", the stricter escaping.) Partials are analysed on their own from
 * the initial context, so a partial tag must sit where that holds: in HTML
 * text, or outside any JSON string. The template must also end there.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "templates/tpl_internal.h"

enum hstate {
    H_TEXT,
    H_LT,           /* after '<' */
    H_LT_SLASH,     /* after "</" */
    H_LT_BANG,      /* after "<!" */
    H_LT_BANG_DASH, /* after "<!-" */
    H_TAG_NAME,
    H_BEFORE_ATTR,
    H_ATTR_NAME,
    H_AFTER_ATTR_NAME,
    H_BEFORE_VALUE,
    H_VAL_DQ,
    H_VAL_SQ,
    H_VAL_UQ,
    H_COMMENT,
    H_BOGUS, /* <!doctype ...>, <?...>, </ followed by a non-letter: up to '>' */
    H_RAW,   /* <script> or <style> content */
};

enum attr_kind { A_PLAIN, A_URL, A_JS, A_CSS };

enum jstate { J_OUT, J_STR, J_ESC };

struct ctx {
    uint8_t st;
    uint8_t attr;
    uint8_t url_started;
    uint8_t prog;    /* comment: dashes seen; raw: characters of "</script" matched */
    uint8_t raw;     /* 1 script, 2 style */
    uint8_t end_tag; /* the tag being read is an end tag */
};

struct an {
    struct tpl *t;
    struct tpl_error *err;
    bool html, json, tg;
    struct ctx c;
    /* transient, never compared */
    char name[16];
    size_t nlen;
    uint32_t line, col;           /* position of the character being scanned */
    uint32_t mark_line, mark_col; /* where the current tag, comment or string began */
};

static int fail(struct an *a, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct an *a, uint32_t line, uint32_t col, const char *fmt, ...)
{
    va_list ap;
    char msg[256];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tpl__set_error(a->err, VN_EINVAL, a->t->name, line, col, "%s", msg);
    return VN_EINVAL;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static void name_start(struct an *a)
{
    a->nlen = 0;
}

static void name_add(struct an *a, unsigned char c)
{
    if (a->nlen < sizeof(a->name) - 1)
        a->name[a->nlen] = (char)lower(c);
    a->nlen++;
}

static bool name_is(const struct an *a, const char *s)
{
    size_t n = strlen(s);
    return a->nlen == n && memcmp(a->name, s, n) == 0;
}

/* Attributes whose value is a URL (the list html/template and DOMPurify use). */
static enum attr_kind attr_classify(const struct an *a)
{
    static const char *const url_attrs[] = {
        "href",   "src",      "action",     "formaction", "cite",     "poster",  "background",
        "srcset", "longdesc", "usemap",     "manifest",   "codebase", "data",    "icon",
        "lowsrc", "dynsrc",   "xlink:href", "ping",       "profile",  "classid", "archive",
    };
    if (a->nlen >= 2 && a->name[0] == 'o' && a->name[1] == 'n')
        return A_JS;
    if (name_is(a, "style"))
        return A_CSS;
    for (size_t i = 0; i < VN_ARRAY_LEN(url_attrs); i++)
        if (name_is(a, url_attrs[i]))
            return A_URL;
    return A_PLAIN;
}

static void tag_end(struct an *a)
{
    a->c.attr = A_PLAIN;
    a->c.st = H_TEXT;
}

/* One character of template text. */
static void h_char(struct an *a, unsigned char ch, char *tagname, size_t *tagnlen)
{
    struct ctx *c = &a->c;
again:
    switch (c->st) {
    case H_TEXT:
        if (ch == '<') {
            c->st = H_LT;
            a->mark_line = a->line;
            a->mark_col = a->col;
        }
        break;
    case H_LT:
        if (is_alpha(ch)) {
            c->st = H_TAG_NAME;
            c->end_tag = 0;
            name_start(a);
            name_add(a, ch);
        } else if (ch == '/') {
            c->st = H_LT_SLASH;
        } else if (ch == '!') {
            c->st = H_LT_BANG;
        } else if (ch == '?') {
            c->st = H_BOGUS;
        } else {
            c->st = H_TEXT;
            goto again;
        }
        break;
    case H_LT_SLASH:
        if (is_alpha(ch)) {
            c->st = H_TAG_NAME;
            c->end_tag = 1;
            name_start(a);
            name_add(a, ch);
        } else if (ch == '>') {
            c->st = H_TEXT;
        } else {
            c->st = H_BOGUS;
        }
        break;
    case H_LT_BANG:
        if (ch == '-') {
            c->st = H_LT_BANG_DASH;
        } else {
            c->st = H_BOGUS;
            goto again;
        }
        break;
    case H_LT_BANG_DASH:
        if (ch == '-') {
            c->st = H_COMMENT;
            c->prog = 0;
        } else {
            c->st = H_BOGUS;
            goto again;
        }
        break;
    case H_COMMENT:
        if (ch == '-') {
            if (c->prog < 2)
                c->prog++;
        } else if (ch == '>' && c->prog == 2) {
            c->st = H_TEXT;
            c->prog = 0;
        } else {
            c->prog = 0;
        }
        break;
    case H_BOGUS:
        if (ch == '>')
            c->st = H_TEXT;
        break;
    case H_TAG_NAME:
        if (is_ws(ch) || ch == '/' || ch == '>') {
            memcpy(tagname, a->name, sizeof(a->name));
            *tagnlen = a->nlen;
            c->st = H_BEFORE_ATTR;
            if (ch == '>')
                goto again;
        } else {
            name_add(a, ch);
        }
        break;
    case H_BEFORE_ATTR:
        if (ch == '>') {
            bool script = *tagnlen == 6 && memcmp(tagname, "script", 6) == 0;
            bool style = *tagnlen == 5 && memcmp(tagname, "style", 5) == 0;
            tag_end(a);
            if (!c->end_tag && (script || style)) {
                c->st = H_RAW;
                c->raw = script ? 1 : 2;
                c->prog = 0;
            }
        } else if (!is_ws(ch) && ch != '/') {
            c->st = H_ATTR_NAME;
            name_start(a);
            name_add(a, ch);
        }
        break;
    case H_ATTR_NAME:
        if (is_ws(ch) || ch == '=' || ch == '>' || ch == '/') {
            c->attr = (uint8_t)attr_classify(a);
            c->st = ch == '=' ? H_BEFORE_VALUE : is_ws(ch) ? H_AFTER_ATTR_NAME : H_BEFORE_ATTR;
            if (ch == '>')
                goto again;
        } else {
            name_add(a, ch);
        }
        break;
    case H_AFTER_ATTR_NAME:
        if (ch == '=') {
            c->st = H_BEFORE_VALUE;
        } else if (ch == '>' || ch == '/') {
            c->st = H_BEFORE_ATTR;
            goto again;
        } else if (!is_ws(ch)) {
            c->st = H_ATTR_NAME;
            name_start(a);
            name_add(a, ch);
        }
        break;
    case H_BEFORE_VALUE:
        if (ch == '"' || ch == '\'') {
            c->st = ch == '"' ? H_VAL_DQ : H_VAL_SQ;
            c->url_started = 0;
        } else if (ch == '>') {
            c->st = H_BEFORE_ATTR;
            goto again;
        } else if (!is_ws(ch)) {
            c->st = H_VAL_UQ;
            c->url_started = 1;
        }
        break;
    case H_VAL_DQ:
    case H_VAL_SQ:
        if (ch == (c->st == H_VAL_DQ ? '"' : '\'')) {
            c->st = H_BEFORE_ATTR;
            c->attr = A_PLAIN;
            c->url_started = 0;
        } else if (!is_ws(ch)) {
            c->url_started = 1;
        }
        break;
    case H_VAL_UQ:
        if (is_ws(ch) || ch == '>') {
            c->st = H_BEFORE_ATTR;
            c->attr = A_PLAIN;
            c->url_started = 0;
            if (ch == '>')
                goto again;
        }
        break;
    case H_RAW: {
        const char *end = c->raw == 1 ? "</script" : "</style";
        size_t n = strlen(end);
        if (lower(ch) == (unsigned char)end[c->prog]) {
            if (++c->prog == n) {
                c->st = H_BOGUS; /* the rest of the end tag, up to '>' */
                c->raw = 0;
                c->prog = 0;
            }
        } else {
            c->prog = ch == '<' ? 1 : 0;
        }
        break;
    }
    }
}

static void j_char(struct an *a, unsigned char ch)
{
    struct ctx *c = &a->c;
    switch (c->st) {
    case J_OUT:
        if (ch == '"') {
            c->st = J_STR;
            a->mark_line = a->line;
            a->mark_col = a->col;
        }
        break;
    case J_STR:
        if (ch == '\\')
            c->st = J_ESC;
        else if (ch == '"')
            c->st = J_OUT;
        break;
    case J_ESC:
        c->st = J_STR;
        break;
    }
}

static const char *describe(const struct an *a, const struct ctx *c)
{
    if (a->json)
        return c->st == J_OUT ? "outside any JSON string" : "inside a JSON string";
    switch (c->st) {
    case H_TEXT:
        return "HTML text";
    case H_LT:
    case H_LT_SLASH:
    case H_LT_BANG:
    case H_LT_BANG_DASH:
        return "right after '<'";
    case H_TAG_NAME:
        return "a tag name";
    case H_BEFORE_ATTR:
    case H_ATTR_NAME:
    case H_AFTER_ATTR_NAME:
    case H_BEFORE_VALUE:
        return "a tag, outside attribute values";
    case H_VAL_DQ:
    case H_VAL_SQ:
        return "a quoted attribute value";
    case H_VAL_UQ:
        return "an unquoted attribute value";
    case H_COMMENT:
        return "an HTML comment";
    case H_BOGUS:
        return "a <!...> or <?...> declaration";
    case H_RAW:
        return c->raw == 1 ? "<script> content" : "<style> content";
    }
    return "?";
}

/* Where a value may go, and how it is escaped there. */
static int var_esc(struct an *a, struct tpl_op *op)
{
    const struct ctx *c = &a->c;
    if (a->json) {
        if (c->st == J_ESC)
            return fail(a, op->line, op->col,
                        "a value right after a backslash in a JSON string cannot be escaped");
        op->esc = c->st == J_OUT ? TESC_JSON_VALUE : TESC_JSON_STR;
        return 0;
    }
    switch (c->st) {
    case H_TEXT:
        op->esc = a->tg ? TESC_TG_TEXT : TESC_HTML_TEXT;
        return 0;
    case H_VAL_DQ:
    case H_VAL_SQ:
        switch (c->attr) {
        case A_JS:
            return fail(a, op->line, op->col,
                        "values are not allowed in event-handler (on...) attributes");
        case A_CSS:
            return fail(a, op->line, op->col, "values are not allowed in style attributes");
        case A_URL:
            op->esc = c->url_started ? TESC_URL_PART : TESC_URL_START;
            if (a->tg)
                op->flags |= TOPF_TG_URL;
            a->c.url_started = 1;
            return 0;
        default:
            op->esc = TESC_HTML_ATTR;
            return 0;
        }
    case H_VAL_UQ:
    case H_BEFORE_VALUE:
        return fail(a, op->line, op->col,
                    "a value in an unquoted attribute cannot be escaped safely; put the "
                    "attribute value in double quotes");
    case H_LT:
    case H_LT_SLASH:
    case H_LT_BANG:
    case H_LT_BANG_DASH:
        return fail(a, op->line, op->col,
                    "a value right after '<' could open a tag; write &lt; or put markup in "
                    "the template");
    default:
        return fail(a, op->line, op->col, "values are not allowed in %s (started at %u:%u)",
                    describe(a, c), a->mark_line, a->mark_col);
    }
}

/* The fields that matter in a context's state; the rest are left-overs of
 * earlier tags and must not make two equal contexts differ. */
static struct ctx canon(const struct an *a, const struct ctx *c)
{
    struct ctx k = {c->st, 0, 0, 0, 0, 0};
    if (a->json)
        return k;
    switch (c->st) {
    case H_ATTR_NAME:
    case H_AFTER_ATTR_NAME:
    case H_BEFORE_VALUE:
    case H_VAL_DQ:
    case H_VAL_SQ:
    case H_VAL_UQ:
        k.attr = c->attr;
        break;
    case H_COMMENT:
        k.prog = c->prog;
        break;
    case H_RAW:
        k.prog = c->prog;
        k.raw = c->raw;
        break;
    default:
        break;
    }
    return k;
}

static bool ctx_equal(const struct an *a, const struct ctx *x, const struct ctx *y)
{
    struct ctx p = canon(a, x), q = canon(a, y);
    return p.st == q.st && p.attr == q.attr && p.prog == q.prog && p.raw == q.raw;
}

/* States where a section or partial tag would split a name. */
static bool splits_name(const struct an *a)
{
    if (a->json)
        return false;
    switch (a->c.st) {
    case H_LT:
    case H_LT_SLASH:
    case H_LT_BANG:
    case H_LT_BANG_DASH:
    case H_TAG_NAME:
    case H_ATTR_NAME:
        return true;
    default:
        return false;
    }
}

static bool at_start(const struct an *a)
{
    return a->c.st == (a->json ? J_OUT : H_TEXT) || (!a->json && a->c.st == H_LT);
}

int tpl__analyze(struct tpl *t, struct tpl_error *err)
{
    struct an a;
    struct ctx stack[64];
    size_t depth = 0;
    char tagname[16] = "";
    size_t tagnlen = 0;

    memset(&a, 0, sizeof(a));
    a.t = t;
    a.err = err;
    switch (t->target) {
    case TPL_TARGET_TG_HTML:
        a.html = a.tg = true;
        break;
    case TPL_TARGET_EMAIL_HTML:
        a.html = true;
        break;
    case TPL_TARGET_JSON:
        a.json = true;
        break;
    default:
        break;
    }
    for (size_t i = 0; i < t->nops; i++) {
        struct tpl_op *op = &t->ops[i];
        if (op->code == TOP_VAR) {
            switch (t->target) {
            case TPL_TARGET_TEXT:
                op->esc = TESC_TEXT;
                break;
            case TPL_TARGET_LINE:
                op->esc = TESC_LINE;
                break;
            case TPL_TARGET_TG_MD2:
                op->esc = TESC_MD2;
                break;
            case TPL_TARGET_MUSTACHE:
                break; /* TESC_MUSTACHE or TESC_RAW from the parser */
            default: {
                int rc = var_esc(&a, op);
                if (rc)
                    return rc;
            }
            }
            continue;
        }
        if (!a.html && !a.json)
            continue;
        switch (op->code) {
        case TOP_TEXT: {
            const unsigned char *s = (const unsigned char *)tpl__str(t, op->a);
            a.line = op->line;
            a.col = op->col;
            for (uint32_t k = 0; k < op->b; k++) {
                if (a.json)
                    j_char(&a, s[k]);
                else
                    h_char(&a, s[k], tagname, &tagnlen);
                if (s[k] == '\n') {
                    a.line++;
                    a.col = 1;
                } else if ((s[k] & 0xC0) != 0x80) {
                    a.col++;
                }
            }
            break;
        }
        case TOP_SECTION:
        case TOP_INVERTED:
            if (splits_name(&a))
                return fail(&a, op->line, op->col,
                            "a section cannot start in %s (started at %u:%u)", describe(&a, &a.c),
                            a.mark_line, a.mark_col);
            if (depth >= VN_ARRAY_LEN(stack))
                return fail(&a, op->line, op->col, "sections nested too deeply");
            stack[depth++] = a.c;
            break;
        case TOP_END: {
            const struct ctx *open = &stack[--depth];
            const struct tpl_op *o = &t->ops[op->a];
            if (!ctx_equal(&a, open, &a.c)) {
                char was[64];
                snprintf(was, sizeof(was), "%s", describe(&a, open));
                return fail(&a, op->line, op->col,
                            "section {{%c%s}} opened at %u:%u in %s ends in %s; a section "
                            "must end in the context it starts in",
                            o->code == TOP_SECTION ? '#' : '^', tpl__str(t, t->names[o->a].text),
                            o->line, o->col, was, describe(&a, &a.c));
            }
            a.c.url_started |= open->url_started;
            break;
        }
        case TOP_PARTIAL:
            if (!at_start(&a))
                return fail(&a, op->line, op->col, "a partial must be %s, not in %s",
                            a.json ? "outside JSON strings" : "in HTML text", describe(&a, &a.c));
            break;
        }
    }
    if ((a.html || a.json) && !at_start(&a)) {
        return fail(&a, a.mark_line, a.mark_col, "template ends in %s that starts here",
                    describe(&a, &a.c));
    }
    return 0;
}
