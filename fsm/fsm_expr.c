/*
 * fsm_expr.c - references ($data.x, $input, ...) and guard expressions.
 *
 * The guard language is deliberately small (docs/flows.md, "Guards"):
 *
 *   expr    := and ("or" and)*
 *   and     := unary ("and" unary)*
 *   unary   := "not" unary | cmp
 *   cmp     := primary [ "exists" | ("=="|"!="|"<"|"<="|">"|">=") primary ]
 *   primary := "(" expr ")" | reference | number | 'string' | "string"
 *              | true | false | null
 *
 * A reference may be written with or without a leading '$'. Guards are
 * compiled when the file is loaded, so a typo is a load error with a column.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/common.h"
#include "fsm/fsm_int.h"

struct root_def {
    const char *name;
    enum fsm__ref_root root;
    const char *subs; /* allowed sub-fields, space-separated; NULL = none */
};

static const struct root_def roots[] = {
    {"data", FSM_REF_DATA, NULL},
    {"input", FSM_REF_INPUT, NULL},
    {"value", FSM_REF_VALUE, NULL},
    {"arg", FSM_REF_ARG, NULL},
    {"callback", FSM_REF_CALLBACK, NULL},
    {"suffix", FSM_REF_SUFFIX, NULL},
    {"match", FSM_REF_MATCH, NULL},
    {"contact", FSM_REF_CONTACT, "phone first_name last_name user_id"},
    {"location", FSM_REF_LOCATION, "latitude longitude"},
    {"user", FSM_REF_USER, "id first_name last_name username language"},
    {"chat", FSM_REF_CHAT, "id"},
    {"message", FSM_REF_MESSAGE, "id"},
    {"now", FSM_REF_NOW, NULL},
    {"error", FSM_REF_ERROR, NULL},
    {"locale", FSM_REF_LOCALE, NULL},
    {"flow", FSM_REF_FLOW, NULL},
    {"state", FSM_REF_STATE, NULL},
};

static const struct {
    const char *name;
    enum fsm__ref_sub sub;
} subs[] = {
    {"phone", FSM_SUB_PHONE},
    {"first_name", FSM_SUB_FIRST_NAME},
    {"last_name", FSM_SUB_LAST_NAME},
    {"user_id", FSM_SUB_USER_ID},
    {"latitude", FSM_SUB_LATITUDE},
    {"longitude", FSM_SUB_LONGITUDE},
    {"id", FSM_SUB_ID},
    {"username", FSM_SUB_USERNAME},
    {"language", FSM_SUB_LANGUAGE},
};

static int is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

int fsm__ref_parse(struct fsm__arena *a, const char *s, size_t len, struct fsm__ref *out, char *err,
                   size_t errlen)
{
    const char *seg[16];
    size_t seglen[16];
    size_t n = 0;
    size_t i = 0;

    memset(out, 0, sizeof(*out));
    while (i <= len) {
        size_t start = i;
        while (i < len && s[i] != '.')
            i++;
        if (n == 16) {
            snprintf(err, errlen, "reference \"%.*s\" is too deep", (int)(len > 60 ? 60 : len), s);
            return -1;
        }
        seg[n] = s + start;
        seglen[n] = i - start;
        int ok = seglen[n] > 0 && seglen[n] <= 64;
        for (size_t k = 0; ok && k < seglen[n]; k++)
            ok = k == 0 && n == 0 ? is_ident_start(seg[n][k]) : is_ident(seg[n][k]);
        if (!ok) {
            snprintf(err, errlen, "\"%.*s\" is not a reference (names like data.when, input, arg)",
                     (int)(len > 60 ? 60 : len), s);
            return -1;
        }
        n++;
        i++;
    }
    const struct root_def *r = NULL;
    for (size_t k = 0; k < VN_ARRAY_LEN(roots); k++)
        if (strlen(roots[k].name) == seglen[0] && memcmp(roots[k].name, seg[0], seglen[0]) == 0)
            r = &roots[k];
    if (r == NULL) {
        snprintf(err, errlen,
                 "unknown reference \"%.*s\" (one of data, input, value, arg, callback, suffix, "
                 "match, contact, location, user, chat, message, now, error, locale, flow, state)",
                 (int)(seglen[0] > 40 ? 40 : seglen[0]), seg[0]);
        return -1;
    }
    out->root = r->root;
    if (r->root == FSM_REF_DATA) {
        out->n_path = n - 1;
        if (n > 1) {
            out->path = fsm__alloc(a, (n - 1) * sizeof(char *));
            for (size_t k = 1; k < n; k++)
                out->path[k - 1] = fsm__strndup(a, seg[k], seglen[k]);
        }
        return 0;
    }
    if (r->root == FSM_REF_MATCH) {
        if (n == 1)
            return 0;
        if (n == 2 && seglen[1] == 1 && seg[1][0] >= '0' && seg[1][0] <= '9') {
            out->sub = seg[1][0] - '0';
            return 0;
        }
        snprintf(err, errlen, "match takes a group number 0-9 (match.1), not \"%.*s\"",
                 (int)(len > 40 ? 40 : len), s);
        return -1;
    }
    if (r->subs == NULL) {
        if (n == 1)
            return 0;
        snprintf(err, errlen, "%s has no fields (\"%.*s\")", r->name, (int)(len > 40 ? 40 : len),
                 s);
        return -1;
    }
    if (n == 2) {
        for (size_t k = 0; k < VN_ARRAY_LEN(subs); k++) {
            size_t sl = strlen(subs[k].name);
            if (sl != seglen[1] || memcmp(subs[k].name, seg[1], sl) != 0)
                continue;
            /* the sub-field must be one this root has */
            const char *p = strstr(r->subs, subs[k].name);
            while (p != NULL && ((p != r->subs && p[-1] != ' ') || (p[sl] != ' ' && p[sl] != 0)))
                p = strstr(p + 1, subs[k].name);
            if (p != NULL) {
                out->sub = subs[k].sub;
                return 0;
            }
        }
    }
    snprintf(err, errlen, "%s has the fields %s, not \"%.*s\"", r->name, r->subs,
             (int)(len > 40 ? 40 : len), s);
    return -1;
}

void fsm__ref_format(const struct fsm__ref *r, struct vn_buf *out)
{
    const char *name = "?";
    for (size_t k = 0; k < VN_ARRAY_LEN(roots); k++)
        if (roots[k].root == r->root)
            name = roots[k].name;
    vn_buf_puts(out, name);
    for (size_t i = 0; i < r->n_path; i++)
        vn_buf_printf(out, ".%s", r->path[i]);
    if (r->root == FSM_REF_MATCH && r->sub > 0)
        vn_buf_printf(out, ".%d", r->sub);
    else if (r->sub != FSM_SUB_NONE)
        for (size_t k = 0; k < VN_ARRAY_LEN(subs); k++)
            if ((int)subs[k].sub == r->sub)
                vn_buf_printf(out, ".%s", subs[k].name);
}

/* ---- guard parser --------------------------------------------------------------- */

enum tok_kind { TK_END, TK_LP, TK_RP, TK_OP, TK_WORD, TK_NUM, TK_STR, TK_BAD };

struct px {
    struct fsm__arena *a;
    const char *src;
    size_t pos;    /* next unread byte */
    size_t tok_at; /* where the current token starts */
    enum tok_kind tk;
    const char *tok; /* token text (into src) */
    size_t tok_len;
    enum fsm__cmp op;
    char *err;
    size_t errlen;
    size_t err_off;
    int failed;
    int depth;
};

static void px_fail(struct px *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void px_fail(struct px *p, size_t at, const char *fmt, ...)
{
    va_list ap;
    if (p->failed)
        return;
    p->failed = 1;
    p->err_off = at;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
}

static void px_next(struct px *p)
{
    const char *s = p->src;
    while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r')
        p->pos++;
    p->tok_at = p->pos;
    p->tok = s + p->pos;
    p->tok_len = 0;
    char c = s[p->pos];
    if (c == '\0') {
        p->tk = TK_END;
        return;
    }
    if (c == '(' || c == ')') {
        p->tk = c == '(' ? TK_LP : TK_RP;
        p->tok_len = 1;
        p->pos++;
        return;
    }
    if (c == '=' || c == '!' || c == '<' || c == '>') {
        char d = s[p->pos + 1];
        p->tk = TK_OP;
        if (c == '=' && d == '=')
            p->op = FSM_CMP_EQ;
        else if (c == '!' && d == '=')
            p->op = FSM_CMP_NE;
        else if (c == '<' && d == '=')
            p->op = FSM_CMP_LE;
        else if (c == '>' && d == '=')
            p->op = FSM_CMP_GE;
        else if (c == '<')
            p->op = FSM_CMP_LT;
        else if (c == '>')
            p->op = FSM_CMP_GT;
        else {
            p->tk = TK_BAD;
            p->tok_len = 1;
            return;
        }
        p->tok_len = (d == '=') ? 2 : 1;
        p->pos += p->tok_len;
        return;
    }
    if (c == '\'' || c == '"') {
        size_t i = p->pos + 1;
        while (s[i] != '\0' && s[i] != c) {
            if (s[i] == '\\' && s[i + 1] != '\0')
                i++;
            i++;
        }
        if (s[i] != c) {
            p->tk = TK_BAD;
            p->tok_len = 0;
            px_fail(p, p->pos, "%s", "unterminated string");
            return;
        }
        p->tk = TK_STR;
        p->tok = s + p->pos + 1;
        p->tok_len = i - p->pos - 1;
        p->pos = i + 1;
        return;
    }
    if ((c >= '0' && c <= '9') || (c == '-' && s[p->pos + 1] >= '0' && s[p->pos + 1] <= '9')) {
        size_t i = p->pos + 1;
        while ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')
            i++;
        p->tk = TK_NUM;
        p->tok_len = i - p->pos;
        p->pos = i;
        return;
    }
    if (is_ident_start(c) || c == '$') {
        size_t i = p->pos + 1;
        while (is_ident(s[i]) || s[i] == '.')
            i++;
        p->tk = TK_WORD;
        p->tok_len = i - p->pos;
        p->pos = i;
        return;
    }
    p->tk = TK_BAD;
    p->tok_len = 1;
}

static int word_is(const struct px *p, const char *w)
{
    return p->tk == TK_WORD && p->tok_len == strlen(w) && memcmp(p->tok, w, p->tok_len) == 0;
}

static struct fsm__expr *px_node(struct px *p, enum fsm__expr_kind k)
{
    struct fsm__expr *e = fsm__alloc(p->a, sizeof(*e));
    e->kind = k;
    return e;
}

static struct fsm__expr *px_or(struct px *p);

static struct fsm__expr *px_primary(struct px *p)
{
    struct fsm__expr *e = NULL;
    char buf[64];

    if (p->failed)
        return NULL;
    switch (p->tk) {
    case TK_LP: {
        size_t at = p->tok_at;
        px_next(p);
        e = px_or(p);
        if (p->failed)
            return NULL;
        if (p->tk != TK_RP) {
            px_fail(p, at, "%s", "\"(\" without a matching \")\"");
            return NULL;
        }
        px_next(p);
        return e;
    }
    case TK_NUM: {
        snprintf(buf, sizeof(buf), "%.*s", (int)(p->tok_len > 60 ? 60 : p->tok_len), p->tok);
        char *end = NULL;
        e = px_node(p, FSM_EX_LIT);
        if (strchr(buf, '.') != NULL) {
            double d = strtod(buf, &end);
            if (*end != '\0') {
                px_fail(p, p->tok_at, "\"%s\" is not a number", buf);
                return NULL;
            }
            e->lit = fsm__json_double(d);
        } else {
            long long v = strtoll(buf, &end, 10);
            if (*end != '\0' || p->tok_len > 18) {
                px_fail(p, p->tok_at, "\"%s\" is not a number (or too long)", buf);
                return NULL;
            }
            e->lit = json_object_new_int64(v);
        }
        fsm__arena_keep_json(p->a, e->lit);
        px_next(p);
        return e;
    }
    case TK_STR: {
        struct vn_buf b = VN_BUF_INIT;
        for (size_t i = 0; i < p->tok_len; i++) {
            if (p->tok[i] == '\\' && i + 1 < p->tok_len)
                i++;
            vn_buf_putc(&b, p->tok[i]);
        }
        e = px_node(p, FSM_EX_LIT);
        e->lit = json_object_new_string(b.data ? b.data : "");
        vn_buf_free(&b);
        fsm__arena_keep_json(p->a, e->lit);
        px_next(p);
        return e;
    }
    case TK_WORD: {
        if (word_is(p, "true") || word_is(p, "false")) {
            e = px_node(p, FSM_EX_LIT);
            e->lit = json_object_new_boolean(word_is(p, "true"));
            fsm__arena_keep_json(p->a, e->lit);
            px_next(p);
            return e;
        }
        if (word_is(p, "null")) {
            e = px_node(p, FSM_EX_LIT);
            px_next(p);
            return e;
        }
        if (word_is(p, "and") || word_is(p, "or") || word_is(p, "not") || word_is(p, "exists")) {
            snprintf(buf, sizeof(buf), "%.*s", (int)p->tok_len, p->tok);
            px_fail(p, p->tok_at, "expected a value before \"%s\"", buf);
            return NULL;
        }
        const char *w = p->tok;
        size_t wl = p->tok_len;
        if (*w == '$') {
            w++;
            wl--;
        }
        e = px_node(p, FSM_EX_REF);
        char msg[256];
        if (fsm__ref_parse(p->a, w, wl, &e->ref, msg, sizeof(msg)) != 0) {
            px_fail(p, p->tok_at, "%s", msg);
            return NULL;
        }
        px_next(p);
        return e;
    }
    case TK_END:
        px_fail(p, p->tok_at, "%s", "expected a value at the end");
        return NULL;
    case TK_RP:
        px_fail(p, p->tok_at, "%s", "unexpected \")\"");
        return NULL;
    case TK_OP:
        snprintf(buf, sizeof(buf), "%.*s", (int)p->tok_len, p->tok);
        px_fail(p, p->tok_at, "expected a value before \"%s\"", buf);
        return NULL;
    case TK_BAD:
        if (p->tok[0] == '=')
            px_fail(p, p->tok_at, "%s", "use == to compare");
        else {
            snprintf(buf, sizeof(buf), "%.*s", p->tok[0] ? 1 : 0, p->tok);
            px_fail(p, p->tok_at, "unexpected \"%s\"", buf);
        }
        return NULL;
    }
    return NULL;
}

static struct fsm__expr *px_cmp(struct px *p)
{
    struct fsm__expr *a = px_primary(p);
    if (a == NULL)
        return NULL;
    if (word_is(p, "exists")) {
        px_next(p);
        struct fsm__expr *e = px_node(p, FSM_EX_EXISTS);
        e->a = a;
        return e;
    }
    if (p->tk == TK_OP) {
        enum fsm__cmp op = p->op;
        px_next(p);
        struct fsm__expr *b = px_primary(p);
        if (b == NULL)
            return NULL;
        struct fsm__expr *e = px_node(p, FSM_EX_CMP);
        e->op = op;
        e->a = a;
        e->b = b;
        return e;
    }
    if (a->kind == FSM_EX_REF || a->kind == FSM_EX_LIT) {
        struct fsm__expr *e = px_node(p, FSM_EX_TRUTHY);
        e->a = a;
        return e;
    }
    return a;
}

static struct fsm__expr *px_unary(struct px *p)
{
    if (++p->depth > 32) {
        px_fail(p, p->tok_at, "%s", "expression nested too deep");
        return NULL;
    }
    struct fsm__expr *e;
    if (word_is(p, "not")) {
        px_next(p);
        struct fsm__expr *a = px_unary(p);
        if (a == NULL)
            return NULL;
        e = px_node(p, FSM_EX_NOT);
        e->a = a;
    } else {
        e = px_cmp(p);
    }
    p->depth--;
    return e;
}

static struct fsm__expr *px_and(struct px *p)
{
    struct fsm__expr *a = px_unary(p);
    while (a != NULL && word_is(p, "and")) {
        px_next(p);
        struct fsm__expr *b = px_unary(p);
        if (b == NULL)
            return NULL;
        struct fsm__expr *e = px_node(p, FSM_EX_AND);
        e->a = a;
        e->b = b;
        a = e;
    }
    return a;
}

static struct fsm__expr *px_or(struct px *p)
{
    if (++p->depth > 32) {
        px_fail(p, p->tok_at, "%s", "expression nested too deep");
        return NULL;
    }
    struct fsm__expr *a = px_and(p);
    while (a != NULL && word_is(p, "or")) {
        px_next(p);
        struct fsm__expr *b = px_and(p);
        if (b == NULL)
            return NULL;
        struct fsm__expr *e = px_node(p, FSM_EX_OR);
        e->a = a;
        e->b = b;
        a = e;
    }
    p->depth--;
    return a;
}

struct fsm__expr *fsm__expr_parse(struct fsm__arena *a, const char *src, char *err, size_t errlen,
                                  size_t *err_off)
{
    struct px p;
    memset(&p, 0, sizeof(p));
    p.a = a;
    p.src = src;
    p.err = err;
    p.errlen = errlen;
    px_next(&p);
    if (p.tk == TK_END) {
        snprintf(err, errlen, "empty condition");
        *err_off = 0;
        return NULL;
    }
    struct fsm__expr *e = px_or(&p);
    if (!p.failed && p.tk != TK_END) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.*s", (int)(p.tok_len > 40 ? 40 : p.tok_len), p.tok);
        if (p.tk == TK_WORD || p.tk == TK_NUM || p.tk == TK_STR)
            px_fail(&p, p.tok_at, "expected and, or, or the end before \"%s\"", buf);
        else if (p.tk == TK_BAD && p.tok[0] == '=')
            px_fail(&p, p.tok_at, "%s", "use == to compare");
        else
            px_fail(&p, p.tok_at, "unexpected \"%s\"", buf);
    }
    if (p.failed) {
        *err_off = p.err_off;
        return NULL;
    }
    return e;
}
