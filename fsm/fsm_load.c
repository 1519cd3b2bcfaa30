/*
 * fsm_load.c - YAML flow files into the model, one problem per mistake.
 *
 * libyaml's document API gives a node graph with the position of every node.
 * The walk below checks each mapping against the keys it may have (so typos
 * are caught, with a "did you mean"), each value against its type, and keeps
 * going after a problem so that one run reports everything. Names that may
 * refer to other files (states, flows, templates) are resolved afterwards by
 * fsm_check.c.
 *
 * Hostile input: a file is size-bounded by the caller; aliases may make a
 * small file expand enormously (or even loop: libyaml lets an alias point at
 * its own ancestor), so every node visit counts against max_nodes and the
 * recursive parts (values, guards) have depth limits.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <yaml.h>

#include "core/common.h"
#include "fsm/fsm_int.h"

#define MAX_SCALAR    8192
#define MAX_VAL_DEPTH 16
#define MAX_ROWS      20
#define MAX_ROW_LEN   8
#define MAX_BUTTONS   100
#define CB_DATA_MAX   64

enum { CTRL_GOTO = 1, CTRL_END = 2, CTRL_FLOW = 4 };
enum trans_ctx { TR_STATE, TR_FLOW, TR_GLOBAL, TR_ENTRY };

struct ld {
    struct fsm_set *set;
    struct fsm__arena *a;
    struct fsm_diag *diag;
    const char *file;
    yaml_document_t *doc;
    char path[512];
    size_t plen;
    size_t visits, max_nodes;
    bool blown;
    char gotbuf[64];
};

/* ---- basics ------------------------------------------------------------------ */

static yaml_node_t *nd(struct ld *l, int idx)
{
    if (l->blown)
        return NULL;
    if (++l->visits > l->max_nodes) {
        struct fsm__pos p = {l->file, 0, 0, ""};
        fsm__diag_add(l->diag, &p, "too many YAML nodes (over %zu, aliases expanded)",
                      l->max_nodes);
        l->blown = true;
        return NULL;
    }
    return yaml_document_get_node(l->doc, idx);
}

static size_t push(struct ld *l, const char *key)
{
    size_t old = l->plen;
    int n = snprintf(l->path + l->plen, sizeof(l->path) - l->plen, "%s%s", l->plen ? "." : "", key);
    if (n > 0)
        l->plen +=
            (size_t)n < sizeof(l->path) - l->plen ? (size_t)n : sizeof(l->path) - l->plen - 1;
    return old;
}

static size_t push_idx(struct ld *l, size_t i)
{
    size_t old = l->plen;
    int n = snprintf(l->path + l->plen, sizeof(l->path) - l->plen, "[%zu]", i);
    if (n > 0)
        l->plen +=
            (size_t)n < sizeof(l->path) - l->plen ? (size_t)n : sizeof(l->path) - l->plen - 1;
    return old;
}

static void pop(struct ld *l, size_t old)
{
    l->plen = old;
    l->path[old] = '\0';
}

static struct fsm__pos pos_of(struct ld *l, const yaml_node_t *n)
{
    struct fsm__pos p;
    p.file = l->file;
    p.line = n ? (int)n->start_mark.line + 1 : 0;
    p.col = n ? (int)n->start_mark.column + 1 : 0;
    p.path = fsm__strdup(l->a, l->path);
    return p;
}

static void err_at(struct ld *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_at(struct ld *l, const yaml_node_t *n, const char *fmt, ...)
{
    struct vn_buf b = VN_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    vn_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    struct fsm__pos p = {l->file, n ? (int)n->start_mark.line + 1 : 0,
                         n ? (int)n->start_mark.column + 1 : 0, l->path};
    fsm__diag_add(l->diag, &p, "%s", b.data ? b.data : "");
    vn_buf_free(&b);
}

static const char *kind_name(const yaml_node_t *n)
{
    if (n == NULL)
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            const char *s = (const char *)n->data.scalar.value;
            if (*s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
                strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0)
                return "nothing (null)";
        }
        return NULL; /* the caller shows the value */
    default:
        return "nothing";
    }
}

/* What a node is, for "expected X, got Y": "a list", "\"yes\"", ... */
static const char *got(struct ld *l, const yaml_node_t *n)
{
    const char *k = kind_name(n);
    if (k != NULL)
        return k;
    snprintf(l->gotbuf, sizeof(l->gotbuf), "\"%.40s%s\"", (const char *)n->data.scalar.value,
             n->data.scalar.length > 40 ? "..." : "");
    return l->gotbuf;
}

static bool is_null(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return n == NULL;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* The text of a scalar, or NULL with a problem reported. */
static const char *scalar_text(struct ld *l, const yaml_node_t *n, const char *what)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE || is_null(n)) {
        err_at(l, n, "expected %s, got %s", what, got(l, n));
        return NULL;
    }
    if (n->data.scalar.length > MAX_SCALAR) {
        err_at(l, n, "too long (%zu bytes; at most %d)", n->data.scalar.length, MAX_SCALAR);
        return NULL;
    }
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        err_at(l, n, "contains a NUL character");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

static const char *get_str(struct ld *l, const yaml_node_t *n, const char *what)
{
    const char *s = scalar_text(l, n, what);
    return s ? fsm__strdup(l->a, s) : NULL;
}

static bool get_bool(struct ld *l, const yaml_node_t *n, bool *out)
{
    if (n != NULL && n->type == YAML_SCALAR_NODE &&
        n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        const char *s = (const char *)n->data.scalar.value;
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
            *out = false;
            return true;
        }
    }
    err_at(l, n, "expected true or false, got %s", got(l, n));
    return false;
}

static bool parse_int_text(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = false;
    uint64_t v = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (*p == '\0')
        return false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (uint64_t)INT64_MAX / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > (uint64_t)INT64_MAX)
            return false;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static bool get_int(struct ld *l, const yaml_node_t *n, int64_t *out)
{
    if (n != NULL && n->type == YAML_SCALAR_NODE &&
        n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        parse_int_text((const char *)n->data.scalar.value, out))
        return true;
    err_at(l, n, "expected an integer, got %s", got(l, n));
    return false;
}

static bool ident_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static const char *get_ident(struct ld *l, const yaml_node_t *n, const char *what)
{
    char with_article[64];
    snprintf(with_article, sizeof(with_article), "a %s", what);
    const char *s = scalar_text(l, n, with_article);
    if (s == NULL)
        return NULL;
    if (!ident_ok(s, 64)) {
        err_at(l, n,
               "\"%.80s\" is not a valid %s (letters, digits and _, not starting with a digit)", s,
               what);
        return NULL;
    }
    return fsm__strdup(l->a, s);
}

static bool template_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || s[0] == '/' || s[0] == '.' || s[n - 1] == '/' || s[n - 1] == '.' ||
        strstr(s, "..") != NULL || strstr(s, "//") != NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '/'))
            return false;
    }
    return true;
}

static const char *get_template(struct ld *l, const yaml_node_t *n)
{
    const char *s = scalar_text(l, n, "a template name");
    if (s == NULL)
        return NULL;
    if (!template_name_ok(s)) {
        err_at(l, n,
               "\"%.80s\" is not a template name (letters, digits, _ - . /, like remind.ask_when)",
               s);
        return NULL;
    }
    return fsm__strdup(l->a, s);
}

/* ---- mappings ------------------------------------------------------------------ */

static bool expect_map(struct ld *l, const yaml_node_t *n, const char *what)
{
    if (n != NULL && n->type == YAML_MAPPING_NODE)
        return true;
    err_at(l, n, "expected %s (a mapping), got %s", what, got(l, n));
    return false;
}

static bool expect_seq(struct ld *l, const yaml_node_t *n, const char *what)
{
    if (n != NULL && n->type == YAML_SEQUENCE_NODE)
        return true;
    err_at(l, n, "expected %s (a list), got %s", what, got(l, n));
    return false;
}

static const char *key_text(const yaml_node_t *k)
{
    if (k == NULL || k->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)k->data.scalar.value;
}

/* Value of key in mapping m (no problem reported when absent); *kn gets the
   key node. The first occurrence wins; duplicates are reported by check_keys. */
static yaml_node_t *map_get(struct ld *l, const yaml_node_t *m, const char *key, yaml_node_t **kn)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        const char *t = key_text(k);
        if (t != NULL && strcmp(t, key) == 0) {
            if (kn)
                *kn = k;
            return nd(l, p->value);
        }
    }
    return NULL;
}

static const char *closest(const char *word, const char *const *allowed)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; allowed[i] != NULL; i++) {
        size_t d = fsm__edit_distance(word, allowed[i], 2);
        if (d < bd && d < strlen(word) && d < strlen(allowed[i])) {
            bd = d;
            best = allowed[i];
        }
    }
    return best;
}

static void list_words(struct vn_buf *b, const char *const *words)
{
    for (size_t i = 0; words[i] != NULL; i++)
        vn_buf_printf(b, "%s%s", i ? ", " : "", words[i]);
}

/* Report keys that are not strings, not allowed, or repeated. */
static void check_keys(struct ld *l, const yaml_node_t *m, const char *const *allowed,
                       const char *where)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = nd(l, p->key);
        if (k == NULL)
            return;
        const char *t = key_text(k);
        if (t == NULL || is_null(k)) {
            err_at(l, k, "keys must be plain names, got %s", got(l, k));
            continue;
        }
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
            const char *u = key_text(yaml_document_get_node(l->doc, q->key));
            if (u != NULL && strcmp(u, t) == 0) {
                size_t old = push(l, t);
                err_at(l, k, "duplicate key \"%.80s\" (first at line %d)", t,
                       (int)yaml_document_get_node(l->doc, q->key)->start_mark.line + 1);
                pop(l, old);
                break;
            }
        }
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(allowed[i], t) == 0;
        if (ok)
            continue;
        size_t old = push(l, t);
        const char *hint = closest(t, allowed);
        if (hint != NULL) {
            err_at(l, k, "unknown key \"%.80s\" in %s (did you mean \"%s\"?)", t, where, hint);
        } else {
            struct vn_buf b = VN_BUF_INIT;
            list_words(&b, allowed);
            err_at(l, k, "unknown key \"%.80s\" in %s (expected one of: %s)", t, where, b.data);
            vn_buf_free(&b);
        }
        pop(l, old);
    }
}

/* ---- values ---------------------------------------------------------------------- */

/* YAML 1.2 core schema for a plain scalar that is not a reference. */
static struct json_object *plain_literal(const char *s)
{
    int64_t iv;
    if (*s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0)
        return NULL;
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return json_object_new_boolean(1);
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return json_object_new_boolean(0);
    if (parse_int_text(s, &iv) && strlen(s) <= 19)
        return json_object_new_int64(iv);
    /* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t ip = strspn(p, "0123456789");
    p += ip;
    size_t fp = 0;
    if (*p == '.') {
        p++;
        fp = strspn(p, "0123456789");
        p += fp;
    }
    bool ok = ip + fp > 0;
    if (ok && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        size_t ep = strspn(p, "0123456789");
        ok = ep > 0;
        p += ep;
    }
    if (ok && *p == '\0' && strlen(s) < 40) {
        double d = strtod(s, NULL);
        if (d == d && d - d == 0) /* finite */
            return fsm__json_double(d);
    }
    return json_object_new_string(s);
}

/* Copy s replacing "$$" with "$". */
static char *unescape_dollars(struct ld *l, const char *s, size_t n)
{
    char *out = fsm__alloc(l->a, n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        out[j++] = s[i];
        if (s[i] == '$' && i + 1 < n && s[i + 1] == '$')
            i++;
    }
    out[j] = '\0';
    return out;
}

static bool looks_like_ref(const char *s)
{
    if (s[0] != '$' ||
        !((s[1] >= 'a' && s[1] <= 'z') || (s[1] >= 'A' && s[1] <= 'Z') || s[1] == '_'))
        return false;
    for (const char *p = s + 2; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.'))
            return false;
    return true;
}

static bool load_scalar_val(struct ld *l, const yaml_node_t *n, struct fsm__val *v)
{
    char msg[256];
    if (is_null(n)) {
        v->kind = FSM_VAL_LIT;
        v->lit = NULL;
        return true;
    }
    const char *s = scalar_text(l, n, "a value");
    if (s == NULL)
        return false;
    if (looks_like_ref(s)) {
        v->kind = FSM_VAL_REF;
        if (fsm__ref_parse(l->a, s + 1, strlen(s) - 1, &v->ref, msg, sizeof(msg)) != 0) {
            err_at(l, n, "%s", msg);
            return false;
        }
        return true;
    }
    if (strstr(s, "${") != NULL) {
        size_t cap = 8, np = 0;
        struct fsm__part *parts = fsm__alloc(l->a, cap * sizeof(*parts));
        const char *p = s;
        while (*p) {
            const char *open = strstr(p, "${");
            /* "$${" is an escaped "$" followed by "{" */
            while (open != NULL && open > p && open[-1] == '$') {
                size_t dollars = 0;
                for (const char *q = open - 1; q >= p && *q == '$'; q--)
                    dollars++;
                if (dollars % 2 == 0)
                    break;
                open = strstr(open + 2, "${");
            }
            size_t lit_len = open ? (size_t)(open - p) : strlen(p);
            if (np + 2 > cap) {
                struct fsm__part *bigger = fsm__alloc(l->a, cap * 2 * sizeof(*parts));
                memcpy(bigger, parts, cap * sizeof(*parts));
                parts = bigger;
                cap *= 2;
            }
            if (lit_len > 0)
                parts[np++].text = unescape_dollars(l, p, lit_len);
            if (open == NULL)
                break;
            const char *close = strchr(open + 2, '}');
            if (close == NULL) {
                err_at(l, n, "\"${\" without a closing \"}\"");
                return false;
            }
            if (fsm__ref_parse(l->a, open + 2, (size_t)(close - open - 2), &parts[np].ref, msg,
                               sizeof(msg)) != 0) {
                err_at(l, n, "%s", msg);
                return false;
            }
            parts[np++].text = NULL;
            p = close + 1;
        }
        v->kind = FSM_VAL_INTERP;
        v->parts = parts;
        v->n_parts = np;
        return true;
    }
    v->kind = FSM_VAL_LIT;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strstr(s, "$$") == NULL)
        v->lit = plain_literal(s);
    else
        v->lit = json_object_new_string(unescape_dollars(l, s, strlen(s)));
    fsm__arena_keep_json(l->a, v->lit);
    return true;
}

static bool load_val(struct ld *l, const yaml_node_t *n, struct fsm__val *v, int depth)
{
    memset(v, 0, sizeof(*v));
    if (n == NULL)
        return false;
    if (depth > MAX_VAL_DEPTH) {
        err_at(l, n, "value nested too deep (at most %d levels)", MAX_VAL_DEPTH);
        return false;
    }
    if (n->type == YAML_SCALAR_NODE)
        return load_scalar_val(l, n, v);
    bool ok = true;
    if (n->type == YAML_SEQUENCE_NODE) {
        size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (cnt > 256) {
            err_at(l, n, "list too long (%zu items; at most 256)", cnt);
            return false;
        }
        v->kind = FSM_VAL_ARR;
        v->items = fsm__alloc(l->a, (cnt ? cnt : 1) * sizeof(*v->items));
        for (size_t i = 0; i < cnt; i++) {
            size_t old = push_idx(l, i);
            ok = load_val(l, nd(l, n->data.sequence.items.start[i]), &v->items[v->n_items],
                          depth + 1) &&
                 ok;
            v->n_items++;
            pop(l, old);
        }
        return ok;
    }
    if (n->type == YAML_MAPPING_NODE) {
        size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (cnt > 256) {
            err_at(l, n, "mapping too big (%zu keys; at most 256)", cnt);
            return false;
        }
        v->kind = FSM_VAL_OBJ;
        v->items = fsm__alloc(l->a, (cnt ? cnt : 1) * sizeof(*v->items));
        v->keys = fsm__alloc(l->a, (cnt ? cnt : 1) * sizeof(char *));
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
            yaml_node_t *k = nd(l, p->key);
            const char *kt = key_text(k);
            if (kt == NULL || is_null(k) || strlen(kt) > 64 ||
                strlen(kt) != k->data.scalar.length) {
                err_at(l, k, "keys must be plain names of at most 64 bytes");
                ok = false;
                continue;
            }
            size_t old = push(l, kt);
            for (size_t j = 0; j < v->n_items; j++)
                if (strcmp(v->keys[j], kt) == 0) {
                    err_at(l, k, "duplicate key \"%.64s\"", kt);
                    ok = false;
                }
            v->keys[v->n_items] = fsm__strdup(l->a, kt);
            ok = load_val(l, nd(l, p->value), &v->items[v->n_items], depth + 1) && ok;
            v->n_items++;
            pop(l, old);
        }
        return ok;
    }
    err_at(l, n, "expected a value");
    return false;
}

/* A value that must be a mapping of names to values (vars, payload). */
static struct fsm__val *load_obj(struct ld *l, const yaml_node_t *n, const char *what)
{
    if (!expect_map(l, n, what))
        return NULL;
    struct fsm__val *v = fsm__alloc(l->a, sizeof(*v));
    return load_val(l, n, v, 0) ? v : NULL;
}

static struct fsm__val *ref_val(struct ld *l, enum fsm__ref_root root)
{
    struct fsm__val *v = fsm__alloc(l->a, sizeof(*v));
    v->kind = FSM_VAL_REF;
    v->ref.root = root;
    return v;
}

/* ---- keyboards -------------------------------------------------------------------- */

static const char *const button_keys_inline[] = {"text", "label", "data", "url", NULL};
static const char *const button_keys_reply[] = {"text", "label", "request_contact",
                                                "request_location", NULL};

static bool load_button(struct ld *l, const yaml_node_t *n, bool inl, struct fsm__button *b)
{
    bool ok = true;
    yaml_node_t *v;
    b->pos = pos_of(l, n);
    if (!expect_map(l, n, "a button"))
        return false;
    check_keys(l, n, inl ? button_keys_inline : button_keys_reply, "a button");
    if ((v = map_get(l, n, "text", NULL)) != NULL) {
        size_t old = push(l, "text");
        b->text = get_str(l, v, "the button's text");
        ok = b->text != NULL;
        pop(l, old);
    }
    if ((v = map_get(l, n, "label", NULL)) != NULL) {
        size_t old = push(l, "label");
        b->label = get_template(l, v);
        b->label_pos = pos_of(l, v);
        ok = b->label != NULL && ok;
        pop(l, old);
    }
    if ((b->text != NULL) == (b->label != NULL) && ok) {
        if (b->text != NULL)
            err_at(l, n, "a button has label: (a template key) or text: (literal), not both");
        else
            err_at(l, n, "a button needs label: (a template key) or text: (literal text)");
        ok = false;
    }
    if (inl) {
        yaml_node_t *d = map_get(l, n, "data", NULL), *u = map_get(l, n, "url", NULL);
        if ((d != NULL) == (u != NULL)) {
            if (d != NULL)
                err_at(l, n, "an inline button has data: or url:, not both");
            else
                err_at(l, n, "an inline button needs data: (callback data) or url:");
            return false;
        }
        if (d != NULL) {
            size_t old = push(l, "data");
            b->data = fsm__alloc(l->a, sizeof(*b->data));
            if (!load_val(l, d, b->data, MAX_VAL_DEPTH) ||
                (b->data->kind != FSM_VAL_LIT && b->data->kind != FSM_VAL_REF &&
                 b->data->kind != FSM_VAL_INTERP)) {
                ok = false;
            } else if (b->data->kind == FSM_VAL_LIT) {
                const char *s = b->data->lit ? json_object_get_string(b->data->lit) : "";
                if (*s == '\0' || strlen(s) > CB_DATA_MAX) {
                    err_at(l, d, "callback data must be 1 to %d bytes (Telegram's limit), got %zu",
                           CB_DATA_MAX, strlen(s));
                    ok = false;
                }
            }
            pop(l, old);
        } else {
            size_t old = push(l, "url");
            b->url = get_str(l, u, "a URL");
            ok = b->url != NULL && ok;
            pop(l, old);
        }
    } else {
        if ((v = map_get(l, n, "request_contact", NULL)) != NULL) {
            size_t old = push(l, "request_contact");
            ok = get_bool(l, v, &b->request_contact) && ok;
            pop(l, old);
        }
        if ((v = map_get(l, n, "request_location", NULL)) != NULL) {
            size_t old = push(l, "request_location");
            ok = get_bool(l, v, &b->request_location) && ok;
            pop(l, old);
        }
    }
    return ok;
}

static const char *const kbd_keys[] = {"inline", "reply", "one_time", "resize", NULL};

/* mode: 0 any, 1 inline or remove only (edits) */
static struct fsm__kbd *load_kbd(struct ld *l, const yaml_node_t *n, int inline_only)
{
    struct fsm__kbd *k = fsm__alloc(l->a, sizeof(*k));
    if (n != NULL && n->type == YAML_SCALAR_NODE && !is_null(n)) {
        if (strcmp((const char *)n->data.scalar.value, "remove") == 0) {
            k->kind = FSM_KBD_REMOVE;
            return k;
        }
        err_at(l, n, "expected a keyboard (inline: or reply:) or \"remove\", got \"%.60s\"",
               (const char *)n->data.scalar.value);
        return NULL;
    }
    if (!expect_map(l, n, "a keyboard (inline: or reply:) or \"remove\""))
        return NULL;
    check_keys(l, n, kbd_keys, "a keyboard");
    yaml_node_t *kn = NULL;
    yaml_node_t *in = map_get(l, n, "inline", NULL), *re = map_get(l, n, "reply", &kn);
    if ((in != NULL) == (re != NULL)) {
        err_at(l, n, "a keyboard has either inline: or reply: rows, not %s",
               in ? "both" : "neither");
        return NULL;
    }
    if (re != NULL && inline_only) {
        size_t old = push(l, "reply");
        err_at(l, kn, "an edited message can only carry an inline keyboard");
        pop(l, old);
        return NULL;
    }
    k->kind = in ? FSM_KBD_INLINE : FSM_KBD_REPLY;
    k->resize = true;
    bool ok = true;
    yaml_node_t *v;
    if ((v = map_get(l, n, "one_time", NULL)) != NULL) {
        size_t old = push(l, "one_time");
        ok = get_bool(l, v, &k->one_time) && ok;
        pop(l, old);
    }
    if ((v = map_get(l, n, "resize", NULL)) != NULL) {
        size_t old = push(l, "resize");
        ok = get_bool(l, v, &k->resize) && ok;
        pop(l, old);
    }
    if (in != NULL && (map_get(l, n, "one_time", NULL) || map_get(l, n, "resize", NULL))) {
        err_at(l, n, "one_time and resize apply to reply keyboards only");
        ok = false;
    }
    const yaml_node_t *rows = in ? in : re;
    size_t old = push(l, in ? "inline" : "reply");
    if (!expect_seq(l, rows, "rows of buttons")) {
        pop(l, old);
        return NULL;
    }
    size_t nrows = (size_t)(rows->data.sequence.items.top - rows->data.sequence.items.start);
    if (nrows == 0 || nrows > MAX_ROWS) {
        err_at(l, rows, "a keyboard has 1 to %d rows, got %zu", MAX_ROWS, nrows);
        pop(l, old);
        return NULL;
    }
    k->rows = fsm__alloc(l->a, nrows * sizeof(*k->rows));
    k->row_len = fsm__alloc(l->a, nrows * sizeof(*k->row_len));
    size_t total = 0;
    for (size_t r = 0; r < nrows; r++) {
        size_t o2 = push_idx(l, r);
        yaml_node_t *row = nd(l, rows->data.sequence.items.start[r]);
        if (row == NULL) {
            pop(l, o2);
            break;
        }
        /* a row is a list of buttons, or one button on its own */
        bool single = row->type == YAML_MAPPING_NODE;
        size_t cnt = single ? 1
                     : row->type == YAML_SEQUENCE_NODE
                         ? (size_t)(row->data.sequence.items.top - row->data.sequence.items.start)
                         : 0;
        if (!single && row->type != YAML_SEQUENCE_NODE) {
            err_at(l, row, "expected a row (a list of buttons) or a button, got %s", got(l, row));
            ok = false;
            pop(l, o2);
            continue;
        }
        if (cnt == 0 || cnt > MAX_ROW_LEN) {
            err_at(l, row, "a row has 1 to %d buttons, got %zu", MAX_ROW_LEN, cnt);
            ok = false;
            pop(l, o2);
            continue;
        }
        total += cnt;
        k->rows[k->n_rows] = fsm__alloc(l->a, cnt * sizeof(struct fsm__button));
        for (size_t i = 0; i < cnt; i++) {
            size_t o3 = single ? l->plen : push_idx(l, i);
            yaml_node_t *b = single ? row : nd(l, row->data.sequence.items.start[i]);
            if (b != NULL)
                ok = load_button(l, b, in != NULL, &k->rows[k->n_rows][k->row_len[k->n_rows]++]) &&
                     ok;
            pop(l, o3);
        }
        k->n_rows++;
        pop(l, o2);
    }
    if (total > MAX_BUTTONS) {
        err_at(l, rows, "at most %d buttons in a keyboard, got %zu", MAX_BUTTONS, total);
        ok = false;
    }
    pop(l, old);
    return ok ? k : NULL;
}

/* ---- actions -------------------------------------------------------------------------- */

static const char *const action_names[] = {"send", "edit",  "edit_markup", "answer",
                                           "set",  "clear", "publish",     "goto",
                                           "end",  "flow",  NULL};
static const char *const send_keys[] = {"template", "keyboard", "vars", "remember", "locale", NULL};
static const char *const edit_keys[] = {"template", "keyboard", "vars", "target", "locale", NULL};
static const char *const markup_keys[] = {"keyboard", "target", NULL};
static const char *const answer_keys[] = {"template", "text", "alert", "vars", "locale", NULL};
static const char *const publish_keys[] = {"event", "payload", NULL};

static struct fsm__val *load_small_val(struct ld *l, const yaml_node_t *n)
{
    struct fsm__val *v = fsm__alloc(l->a, sizeof(*v));
    if (!load_val(l, n, v, MAX_VAL_DEPTH))
        return NULL;
    return v;
}

/* Template-sending actions: send, edit, answer. */
static bool load_message_action(struct ld *l, const yaml_node_t *v, struct fsm__action *act)
{
    const char *const *keys = act->kind == FSM_ACT_SEND   ? send_keys
                              : act->kind == FSM_ACT_EDIT ? edit_keys
                                                          : answer_keys;
    const char *what = act->kind == FSM_ACT_SEND   ? "send"
                       : act->kind == FSM_ACT_EDIT ? "edit"
                                                   : "answer";
    bool ok = true;
    yaml_node_t *x;

    if (v != NULL && v->type == YAML_SCALAR_NODE && !is_null(v)) {
        act->tmpl = get_template(l, v);
        act->tmpl_pos = pos_of(l, v);
        return act->tmpl != NULL;
    }
    if (act->kind == FSM_ACT_ANSWER && is_null(v))
        return true; /* answer: (nothing) just stops the spinner */
    char where[64];
    snprintf(where, sizeof(where), "%s", what);
    if (!expect_map(l, v,
                    act->kind == FSM_ACT_ANSWER ? "a template name or {template|text, alert}"
                                                : "a template name or {template, ...}"))
        return false;
    check_keys(l, v, keys, where);
    if ((x = map_get(l, v, "template", NULL)) != NULL) {
        size_t old = push(l, "template");
        act->tmpl = get_template(l, x);
        act->tmpl_pos = pos_of(l, x);
        ok = act->tmpl != NULL;
        pop(l, old);
    } else if (act->kind != FSM_ACT_ANSWER) {
        err_at(l, v, "%s needs a template", what);
        ok = false;
    }
    if (act->kind == FSM_ACT_ANSWER) {
        if ((x = map_get(l, v, "text", NULL)) != NULL) {
            size_t old = push(l, "text");
            act->text = get_str(l, x, "the answer's text");
            ok = act->text != NULL && ok;
            pop(l, old);
            if (act->tmpl != NULL) {
                err_at(l, v, "answer has either template or text, not both");
                ok = false;
            }
        }
        if ((x = map_get(l, v, "alert", NULL)) != NULL) {
            size_t old = push(l, "alert");
            ok = get_bool(l, x, &act->alert) && ok;
            pop(l, old);
        }
    }
    if ((x = map_get(l, v, "keyboard", NULL)) != NULL) {
        size_t old = push(l, "keyboard");
        act->kbd = load_kbd(l, x, act->kind == FSM_ACT_EDIT);
        ok = act->kbd != NULL && ok;
        if (act->kbd != NULL && act->kind == FSM_ACT_EDIT && act->kbd->kind == FSM_KBD_REMOVE) {
            err_at(l, x, "an edit without keyboard: already removes the buttons");
            ok = false;
        }
        pop(l, old);
    }
    if ((x = map_get(l, v, "vars", NULL)) != NULL) {
        size_t old = push(l, "vars");
        act->vars = load_obj(l, x, "template variables");
        ok = act->vars != NULL && ok;
        pop(l, old);
    }
    if ((x = map_get(l, v, "locale", NULL)) != NULL) {
        size_t old = push(l, "locale");
        act->locale = load_small_val(l, x);
        ok = act->locale != NULL && ok;
        pop(l, old);
    }
    if ((x = map_get(l, v, "remember", NULL)) != NULL) {
        size_t old = push(l, "remember");
        act->remember = get_ident(l, x, "data field name");
        ok = act->remember != NULL && ok;
        pop(l, old);
    }
    if ((x = map_get(l, v, "target", NULL)) != NULL) {
        size_t old = push(l, "target");
        act->target = load_small_val(l, x);
        ok = act->target != NULL && ok;
        pop(l, old);
    }
    return ok;
}

static bool load_action_body(struct ld *l, const char *name, const yaml_node_t *v,
                             struct fsm__action *act)
{
    bool ok = true;
    yaml_node_t *x;
    if (strcmp(name, "send") == 0 || strcmp(name, "edit") == 0 || strcmp(name, "answer") == 0) {
        act->kind = name[0] == 's' ? FSM_ACT_SEND : name[0] == 'e' ? FSM_ACT_EDIT : FSM_ACT_ANSWER;
        return load_message_action(l, v, act);
    }
    if (strcmp(name, "edit_markup") == 0) {
        act->kind = FSM_ACT_EDIT_MARKUP;
        if (!expect_map(l, v, "{keyboard, target}"))
            return false;
        check_keys(l, v, markup_keys, "edit_markup");
        if ((x = map_get(l, v, "keyboard", NULL)) != NULL) {
            size_t old = push(l, "keyboard");
            act->kbd = load_kbd(l, x, 1);
            ok = act->kbd != NULL;
            if (act->kbd != NULL && act->kbd->kind == FSM_KBD_REMOVE) {
                act->kbd_remove = true;
                act->kbd = NULL;
            }
            pop(l, old);
        } else {
            err_at(l, v, "edit_markup needs keyboard: (inline rows, or remove)");
            ok = false;
        }
        if ((x = map_get(l, v, "target", NULL)) != NULL) {
            size_t old = push(l, "target");
            act->target = load_small_val(l, x);
            ok = act->target != NULL && ok;
            pop(l, old);
        }
        return ok;
    }
    if (strcmp(name, "set") == 0) {
        act->kind = FSM_ACT_SET;
        if (!expect_map(l, v, "fields to set (field: value)"))
            return false;
        size_t cnt = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (cnt == 0 || cnt > 64) {
            err_at(l, v, "set takes 1 to 64 fields, got %zu", cnt);
            return false;
        }
        act->fields = fsm__alloc(l->a, cnt * sizeof(char *));
        act->values = fsm__alloc(l->a, cnt * sizeof(*act->values));
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
            yaml_node_t *k = nd(l, p->key);
            if (k == NULL)
                return false;
            const char *kt = key_text(k);
            size_t old = push(l, kt ? kt : "?");
            const char *f = get_ident(l, k, "data field name");
            if (f == NULL) {
                ok = false;
            } else {
                for (size_t j = 0; j < act->n_fields; j++)
                    if (strcmp(act->fields[j], f) == 0) {
                        err_at(l, k, "duplicate key \"%s\"", f);
                        ok = false;
                    }
                act->fields[act->n_fields] = f;
                ok = load_val(l, nd(l, p->value), &act->values[act->n_fields], 0) && ok;
                act->n_fields++;
            }
            pop(l, old);
        }
        return ok;
    }
    if (strcmp(name, "clear") == 0) {
        act->kind = FSM_ACT_CLEAR;
        if (v != NULL && v->type == YAML_SCALAR_NODE && !is_null(v) &&
            strcmp((const char *)v->data.scalar.value, "*") == 0) {
            act->clear_all = true;
            return true;
        }
        if (v != NULL && v->type == YAML_SCALAR_NODE) {
            const char *f = get_ident(l, v, "data field name");
            if (f == NULL)
                return false;
            act->fields = fsm__alloc(l->a, sizeof(char *));
            act->fields[0] = f;
            act->n_fields = 1;
            return true;
        }
        if (!expect_seq(l, v, "a field name, a list of them, or \"*\""))
            return false;
        size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (cnt == 0 || cnt > 64) {
            err_at(l, v, "clear takes 1 to 64 fields, got %zu", cnt);
            return false;
        }
        act->fields = fsm__alloc(l->a, cnt * sizeof(char *));
        for (size_t i = 0; i < cnt; i++) {
            size_t old = push_idx(l, i);
            const char *f = get_ident(l, nd(l, v->data.sequence.items.start[i]), "data field name");
            if (f != NULL)
                act->fields[act->n_fields++] = f;
            else
                ok = false;
            pop(l, old);
        }
        return ok;
    }
    if (strcmp(name, "publish") == 0) {
        act->kind = FSM_ACT_PUBLISH;
        if (!expect_map(l, v, "{event, payload}"))
            return false;
        check_keys(l, v, publish_keys, "publish");
        if ((x = map_get(l, v, "event", NULL)) != NULL) {
            size_t old = push(l, "event");
            const char *e = scalar_text(l, x, "an event type");
            bool eok = e != NULL && *e != '\0' && strlen(e) <= 128;
            for (const char *p = e; eok && *p; p++)
                eok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                      *p == '_' || *p == '-';
            if (e != NULL && !eok)
                err_at(l, x,
                       "\"%.80s\" is not an event type (lowercase words with dots, like "
                       "reminder.scheduled)",
                       e);
            act->event = eok ? fsm__strdup(l->a, e) : NULL;
            ok = eok;
            pop(l, old);
        } else {
            err_at(l, v, "publish needs event: (the event type, like reminder.scheduled)");
            ok = false;
        }
        if ((x = map_get(l, v, "payload", NULL)) != NULL) {
            size_t old = push(l, "payload");
            act->payload = load_obj(l, x, "the payload");
            ok = act->payload != NULL && ok;
            pop(l, old);
        }
        return ok;
    }
    return false;
}

/* Which option keys belong inside which action, for a helpful message when an
   author writes them next to the action instead of under it. */
static const char *owner_of_option(const char *key)
{
    static const char *const opts[] = {"template", "keyboard", "vars", "remember",
                                       "locale",   "target",   "text", "alert",
                                       "event",    "payload",  NULL};
    for (size_t i = 0; opts[i]; i++)
        if (strcmp(opts[i], key) == 0)
            return opts[i];
    return NULL;
}

static void set_ctrl(struct ld *l, struct fsm__ctrl *c, enum fsm__ctrl_kind kind,
                     const yaml_node_t *kn, const yaml_node_t *v, int allowed, const char *where)
{
    const char *word = kind == FSM_CTRL_GOTO ? "goto" : kind == FSM_CTRL_END ? "end" : "flow";
    int bit = kind == FSM_CTRL_GOTO ? CTRL_GOTO : kind == FSM_CTRL_END ? CTRL_END : CTRL_FLOW;
    if (!(allowed & bit)) {
        if (strcmp(where, "enter") == 0)
            err_at(l, kn, "enter can only end the flow; to move on, use a transition");
        else if (strcmp(where, "invalid") == 0)
            err_at(l, kn, "invalid re-prompts and stays in the state; it cannot use %s", word);
        else if (strcmp(where, "default") == 0)
            err_at(l, kn, "default runs when no flow is active; it can only start one (flow:)");
        else
            err_at(l, kn, "%s cannot use goto (it has no flow of its own); use end or flow", where);
        return;
    }
    if (c->kind != FSM_CTRL_NONE) {
        err_at(l, kn, "only one of goto, end and flow per transition (already one at line %d)",
               c->pos.line);
        return;
    }
    if (kind == FSM_CTRL_END) {
        bool b = false;
        if (!get_bool(l, v, &b))
            return;
        if (!b) {
            err_at(l, v, "end: false does nothing; remove it");
            return;
        }
    } else {
        c->name = get_ident(l, v, kind == FSM_CTRL_GOTO ? "state name" : "flow name");
        if (c->name == NULL)
            return;
    }
    c->kind = kind;
    c->pos = pos_of(l, v);
}

/* An action list: a template name (shortcut for one send) or a list of actions.
   invalid_vars: the shortcut's send gets vars {input, error} (for invalid:). */
static void load_acts(struct ld *l, const yaml_node_t *n, struct fsm__acts *out, int allowed,
                      const char *where, bool invalid_vars)
{
    out->present = true;
    out->pos = pos_of(l, n);
    if (n != NULL && n->type == YAML_SCALAR_NODE && !is_null(n)) {
        const char *t = get_template(l, n);
        if (t == NULL)
            return;
        out->v = fsm__alloc(l->a, sizeof(*out->v));
        out->v[0].kind = FSM_ACT_SEND;
        out->v[0].tmpl = t;
        out->v[0].pos = pos_of(l, n);
        out->v[0].tmpl_pos = out->v[0].pos;
        if (invalid_vars) {
            struct fsm__val *vars = fsm__alloc(l->a, sizeof(*vars));
            vars->kind = FSM_VAL_OBJ;
            vars->n_items = 2;
            vars->keys = fsm__alloc(l->a, 2 * sizeof(char *));
            vars->items = fsm__alloc(l->a, 2 * sizeof(*vars->items));
            vars->keys[0] = "input";
            vars->items[0] = *ref_val(l, FSM_REF_INPUT);
            vars->keys[1] = "error";
            vars->items[1] = *ref_val(l, FSM_REF_ERROR);
            out->v[0].vars = vars;
        }
        out->n = 1;
        return;
    }
    if (!expect_seq(l, n, "a template name or a list of actions"))
        return;
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt > 64) {
        err_at(l, n, "at most 64 actions in a list, got %zu", cnt);
        return;
    }
    out->v = fsm__alloc(l->a, (cnt ? cnt : 1) * sizeof(*out->v));
    for (size_t i = 0; i < cnt; i++) {
        size_t old = push_idx(l, i);
        yaml_node_t *an = nd(l, n->data.sequence.items.start[i]);
        if (an == NULL) {
            pop(l, old);
            return;
        }
        if (out->ctrl.kind != FSM_CTRL_NONE) {
            const char *word = out->ctrl.kind == FSM_CTRL_GOTO  ? "goto"
                               : out->ctrl.kind == FSM_CTRL_END ? "end"
                                                                : "flow";
            err_at(l, an, "nothing may follow %s (line %d): it leaves the state", word,
                   out->ctrl.pos.line);
            pop(l, old);
            continue;
        }
        if (an->type != YAML_MAPPING_NODE) {
            if (an->type == YAML_SCALAR_NODE && !is_null(an)) {
                const char *s = (const char *)an->data.scalar.value;
                const char *hint = closest(s, action_names);
                if (hint != NULL)
                    err_at(l, an, "an action is a mapping like \"%s: ...\", got \"%.60s\"", hint,
                           s);
                else
                    err_at(l, an,
                           "an action is a mapping like \"send: template.name\", got "
                           "\"%.60s\"",
                           s);
            } else {
                err_at(l, an, "expected an action (a mapping like \"send: template.name\"), got %s",
                       got(l, an));
            }
            pop(l, old);
            continue;
        }
        /* exactly one action key; option keys belong inside it */
        const char *name = NULL;
        yaml_node_t *name_key = NULL, *val = NULL;
        int n_actions = 0;
        for (yaml_node_pair_t *p = an->data.mapping.pairs.start; p < an->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = nd(l, p->key);
            const char *t = key_text(k);
            if (t == NULL)
                continue;
            for (size_t j = 0; action_names[j]; j++)
                if (strcmp(action_names[j], t) == 0) {
                    if (n_actions++ == 0) {
                        name = t;
                        name_key = k;
                        val = nd(l, p->value);
                    }
                }
        }
        if (n_actions == 0) {
            yaml_node_pair_t *p = an->data.mapping.pairs.start;
            yaml_node_t *k = p < an->data.mapping.pairs.top ? nd(l, p->key) : an;
            const char *t = key_text(k);
            const char *hint = t ? closest(t, action_names) : NULL;
            size_t o2 = t ? push(l, t) : l->plen;
            if (t == NULL)
                err_at(l, an, "empty action");
            else if (hint != NULL)
                err_at(l, k, "unknown action \"%.60s\" (did you mean \"%s\"?)", t, hint);
            else
                err_at(l, k,
                       "unknown action \"%.60s\" (expected one of: send, edit, edit_markup, "
                       "answer, set, clear, publish, goto, end, flow)",
                       t);
            pop(l, o2);
            pop(l, old);
            continue;
        }
        bool extra = false;
        for (yaml_node_pair_t *p = an->data.mapping.pairs.start; p < an->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = nd(l, p->key);
            const char *t = key_text(k);
            if (t == NULL || k == name_key)
                continue;
            size_t o2 = push(l, t);
            bool is_action = false;
            for (size_t j = 0; action_names[j]; j++)
                is_action = is_action || strcmp(action_names[j], t) == 0;
            if (is_action)
                err_at(l, k, "one action per list item: \"%s\" and \"%s\" need an item each", name,
                       t);
            else if (owner_of_option(t) != NULL)
                err_at(l, k, "\"%s\" belongs inside %s: (%s: {template: ..., %s: ...})", t, name,
                       name, t);
            else
                err_at(l, k, "unknown key \"%.60s\" next to %s", t, name);
            extra = true;
            pop(l, o2);
        }
        size_t o2 = push(l, name);
        if (strcmp(name, "goto") == 0 || strcmp(name, "end") == 0 || strcmp(name, "flow") == 0) {
            enum fsm__ctrl_kind ck = name[0] == 'g'   ? FSM_CTRL_GOTO
                                     : name[0] == 'e' ? FSM_CTRL_END
                                                      : FSM_CTRL_FLOW;
            set_ctrl(l, &out->ctrl, ck, name_key, val, allowed, where);
        } else {
            struct fsm__action *act = &out->v[out->n];
            memset(act, 0, sizeof(*act));
            act->pos = pos_of(l, name_key);
            if (load_action_body(l, name, val, act) && !extra)
                out->n++;
        }
        pop(l, o2);
        pop(l, old);
    }
}

/* ---- transitions -------------------------------------------------------------------------- */

static const char *const trigger_names[] = {
    "command", "text",     "regex", "any_text", "callback", "callback_prefix",
    "contact", "location", "input", "timeout",  NULL};
static const char *const trans_keys[] = {
    "command", "text",     "regex",   "any_text", "callback",    "callback_prefix",
    "contact", "location", "input",   "timeout",  "ignore_case", "min",
    "max",     "future",   "choices", "save",     "when",        "do",
    "goto",    "end",      "flow",    NULL};
static const char *const entry_keys[] = {"when", "do", "goto", "end", "flow", NULL};
static const char *const input_types[] = {"text", "integer", "email", "datetime", "choice", NULL};

static bool command_name(struct ld *l, const yaml_node_t *n, const char **out)
{
    const char *s = scalar_text(l, n, "a command like /remind");
    if (s == NULL)
        return false;
    const char *p = s[0] == '/' ? s + 1 : s;
    size_t len = strlen(p);
    bool ok = len >= 1 && len <= 32;
    for (size_t i = 0; ok && i < len; i++)
        ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
             (p[i] >= '0' && p[i] <= '9') || p[i] == '_';
    if (!ok) {
        err_at(l, n, "\"%.60s\" is not a command (a / and 1-32 letters, digits or _)", s);
        return false;
    }
    char *c = fsm__strdup(l->a, p);
    for (char *q = c; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q + 32);
    *out = c;
    return true;
}

static bool load_guard(struct ld *l, const yaml_node_t *n, struct fsm__trans *t)
{
    char msg[256];
    size_t off = 0;
    const char *src = scalar_text(l, n, "a condition like data.count > 0");
    if (src == NULL)
        return false;
    t->guard = fsm__expr_parse(l->a, src, msg, sizeof(msg), &off);
    if (t->guard == NULL) {
        /* point at the spot inside the expression when it is on one line */
        int col_shift = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? 0 : 1;
        bool one_line = strchr(src, '\n') == NULL && n->start_mark.line == n->end_mark.line;
        struct fsm__pos p = pos_of(l, n);
        if (one_line)
            p.col += col_shift + (int)off;
        fsm__diag_add(l->diag, &p, "bad condition: %s", msg);
        return false;
    }
    t->guard_src = fsm__strdup(l->a, src);
    return true;
}

static bool load_choices(struct ld *l, const yaml_node_t *n, struct fsm__trans *t)
{
    if (!expect_seq(l, n, "a list of choices"))
        return false;
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt == 0 || cnt > 100) {
        err_at(l, n, "choices takes 1 to 100 entries, got %zu", cnt);
        return false;
    }
    static const char *const choice_keys[] = {"value", "match", NULL};
    bool ok = true;
    t->choices = fsm__alloc(l->a, cnt * sizeof(*t->choices));
    for (size_t i = 0; i < cnt; i++) {
        size_t old = push_idx(l, i);
        yaml_node_t *c = nd(l, n->data.sequence.items.start[i]);
        struct fsm__choice *ch = &t->choices[t->n_choices];
        const char *value = NULL;
        yaml_node_t *match = NULL;
        if (c != NULL && c->type == YAML_MAPPING_NODE) {
            check_keys(l, c, choice_keys, "a choice");
            yaml_node_t *vn = map_get(l, c, "value", NULL);
            size_t o2 = push(l, "value");
            value = vn ? get_str(l, vn, "the choice's value") : NULL;
            if (vn == NULL)
                err_at(l, c, "a choice needs value:");
            pop(l, o2);
            match = map_get(l, c, "match", NULL);
            if (match != NULL && !expect_seq(l, match, "spellings that select this choice"))
                match = NULL;
        } else if (c != NULL) {
            value = get_str(l, c, "a choice (a string, or {value, match})");
        }
        if (value == NULL) {
            ok = false;
            pop(l, old);
            continue;
        }
        size_t nm =
            match ? (size_t)(match->data.sequence.items.top - match->data.sequence.items.start) : 0;
        if (nm > 32) {
            err_at(l, match, "at most 32 spellings per choice");
            nm = 32;
            ok = false;
        }
        ch->value = value;
        ch->match = fsm__alloc(l->a, (nm + 1) * sizeof(char *));
        char *f = fsm__fold(value);
        ch->match[ch->n_match++] = fsm__strdup(l->a, f);
        free(f);
        for (size_t j = 0; j < nm; j++) {
            size_t o2 = push(l, "match");
            size_t o3 = push_idx(l, j);
            const char *m = get_str(l, nd(l, match->data.sequence.items.start[j]), "a spelling");
            if (m != NULL) {
                f = fsm__fold(m);
                ch->match[ch->n_match++] = fsm__strdup(l->a, f);
                free(f);
            } else {
                ok = false;
            }
            pop(l, o3);
            pop(l, o2);
        }
        t->n_choices++;
        pop(l, old);
    }
    return ok;
}

/*
 * How big glibc's regcomp makes a pattern, roughly: it copies the subtree
 * under a repetition once per allowed count ("x{1,100}" is 100 copies, and
 * "x+" is "xx*"), so nested or stacked repetitions multiply. A hostile
 * ".++++++++" (two to the n) or "(a{1,999}){1,999}" takes gigabytes to
 * compile; such patterns are refused before regcomp sees them. Returns the
 * estimate, saturated at FSM_RE_COST_MAX + 1, or -1 for a back-reference
 * (\1..\9: a glibc extension whose matching can take exponential time).
 */
#define FSM_RE_COST_MAX 5000

static int64_t sat_mul(int64_t a, int64_t b)
{
    if (a > 0 && b > (FSM_RE_COST_MAX + 1) / a)
        return FSM_RE_COST_MAX + 1;
    int64_t r = a * b;
    return r > FSM_RE_COST_MAX ? FSM_RE_COST_MAX + 1 : r;
}

static int64_t regex_cost(const char *re)
{
    int64_t total[64], last[64];
    int depth = 0;
    total[0] = 0;
    last[0] = 0;
    for (const char *p = re; *p; p++) {
        int64_t atom = 1, times = 0;
        switch (*p) {
        case '\\':
            if (p[1] >= '1' && p[1] <= '9')
                return -1;
            if (p[1] != '\0')
                p++;
            break;
        case '[': {
            const char *q = p + 1;
            if (*q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']') {
                if (*q == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
                    const char *end = strstr(q + 2, q[1] == ':' ? ":]" : q[1] == '.' ? ".]" : "=]");
                    q = end ? end + 2 : q + strlen(q);
                    continue;
                }
                q++;
            }
            p = *q ? q : q - 1;
            break;
        }
        case '(':
            if (depth == 63)
                return FSM_RE_COST_MAX + 1;
            depth++;
            total[depth] = 0;
            last[depth] = 0;
            continue;
        case ')':
            if (depth == 0)
                break;
            atom = total[depth] + 1;
            depth--;
            break;
        case '*':
        case '+':
        case '?':
            times = 2;
            break;
        case '{': {
            const char *q = p + 1;
            int64_t lo = 0, hi = -1;
            if ((*q < '0' || *q > '9') && *q != ',')
                break; /* "{" that opens no interval is a plain character */
            while (*q >= '0' && *q <= '9' && lo <= FSM_RE_COST_MAX)
                lo = lo * 10 + (*q++ - '0');
            if (*q == ',') {
                q++;
                if (*q >= '0' && *q <= '9') {
                    hi = 0;
                    while (*q >= '0' && *q <= '9' && hi <= FSM_RE_COST_MAX)
                        hi = hi * 10 + (*q++ - '0');
                }
            } else {
                hi = lo;
            }
            while (*q >= '0' && *q <= '9')
                q++;
            if (*q != '}')
                break;
            times = (hi < 0 ? lo + 1 : hi) + 1;
            p = q;
            break;
        }
        default:
            break;
        }
        if (times > 0) {
            /* a repetition copies the atom before it */
            int64_t grown = sat_mul(last[depth] > 0 ? last[depth] : 1, times);
            total[depth] = total[depth] - last[depth] + grown;
            last[depth] = grown;
        } else {
            last[depth] = atom;
            total[depth] += atom;
        }
        if (total[depth] > FSM_RE_COST_MAX)
            return FSM_RE_COST_MAX + 1;
    }
    int64_t sum = 0;
    for (int d = 0; d <= depth; d++)
        sum += total[d];
    return sum > FSM_RE_COST_MAX ? FSM_RE_COST_MAX + 1 : sum;
}

/* Options that only some triggers take: reported when given to another. */
static void check_option(struct ld *l, const yaml_node_t *n, const char *key, bool applies,
                         const char *only)
{
    yaml_node_t *kn = NULL;
    if (map_get(l, n, key, &kn) == NULL || applies)
        return;
    size_t old = push(l, key);
    err_at(l, kn, "%s applies only to %s", key, only);
    pop(l, old);
}

static bool load_trigger(struct ld *l, const yaml_node_t *n, struct fsm__trans *t,
                         enum trans_ctx ctx)
{
    yaml_node_t *tk = NULL, *tv = NULL;
    const char *tname = NULL;
    int count = 0;
    bool ok = true;

    for (size_t i = 0; trigger_names[i]; i++) {
        yaml_node_t *kn = NULL;
        yaml_node_t *v = map_get(l, n, trigger_names[i], &kn);
        if (kn == NULL)
            continue;
        if (count++ == 0) {
            tk = kn;
            tv = v;
            tname = trigger_names[i];
            t->kind = (enum fsm__trig_kind)(i + 1);
        } else {
            size_t old = push(l, trigger_names[i]);
            err_at(l, kn, "one trigger per transition: %s and %s need a transition each", tname,
                   trigger_names[i]);
            pop(l, old);
            ok = false;
        }
    }
    if (count == 0) {
        /* a misspelt trigger ("txet") is already reported as an unknown key */
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            const char *k = key_text(yaml_document_get_node(l->doc, p->key));
            if (k != NULL && closest(k, trigger_names) != NULL && closest(k, trans_keys) != NULL &&
                strcmp(closest(k, trans_keys), k) != 0)
                return false;
        }
        err_at(l, n,
               "a transition needs a trigger: one of command, text, regex, any_text, callback, "
               "callback_prefix, contact, location, input, timeout");
        return false;
    }
    size_t old = push(l, tname);
    t->trig_pos = pos_of(l, tv ? tv : tk);
    switch (t->kind) {
    case FSM_TRIG_COMMAND:
        ok = command_name(l, tv, &t->str) && ok;
        break;
    case FSM_TRIG_TEXT:
    case FSM_TRIG_CALLBACK:
    case FSM_TRIG_CALLBACK_PREFIX: {
        const char *s =
            scalar_text(l, tv, t->kind == FSM_TRIG_TEXT ? "the exact text" : "callback data");
        if (s == NULL) {
            ok = false;
            break;
        }
        if (*s == '\0') {
            err_at(l, tv, "empty %s never matches",
                   t->kind == FSM_TRIG_TEXT ? "text" : "callback data");
            ok = false;
            break;
        }
        if (t->kind != FSM_TRIG_TEXT && strlen(s) > CB_DATA_MAX) {
            err_at(l, tv, "callback data is at most %d bytes (Telegram's limit), got %zu",
                   CB_DATA_MAX, strlen(s));
            ok = false;
            break;
        }
        if (t->kind == FSM_TRIG_TEXT) {
            char *tr = fsm__trim(s);
            bool same = strcmp(tr, s) == 0;
            free(tr);
            if (!same) {
                err_at(l, tv,
                       "text is compared after trimming spaces; remove the leading or "
                       "trailing ones");
                ok = false;
                break;
            }
        }
        t->str = fsm__strdup(l->a, s);
        break;
    }
    case FSM_TRIG_REGEX: {
        const char *s = scalar_text(l, tv, "a regular expression (POSIX ERE)");
        if (s == NULL) {
            ok = false;
            break;
        }
        if (strlen(s) > 1024) {
            err_at(l, tv, "regex too long (at most 1024 bytes)");
            ok = false;
            break;
        }
        t->str = fsm__strdup(l->a, s);
        break; /* compiled below, once ignore_case is known */
    }
    case FSM_TRIG_ANY_TEXT:
    case FSM_TRIG_CONTACT:
    case FSM_TRIG_LOCATION: {
        bool b = false;
        if (!get_bool(l, tv, &b) || !b) {
            if (tv != NULL && !is_null(tv) && get_bool(l, tv, &b))
                err_at(l, tv, "%s: false never matches; remove the transition", tname);
            ok = false;
        }
        break;
    }
    case FSM_TRIG_INPUT: {
        const char *s = scalar_text(l, tv, "an input type");
        int found = -1;
        for (int i = 0; s && input_types[i]; i++)
            if (strcmp(input_types[i], s) == 0)
                found = i;
        if (s != NULL && found < 0) {
            const char *hint = closest(s, input_types);
            if (hint)
                err_at(l, tv, "unknown input type \"%.40s\" (did you mean \"%s\"?)", s, hint);
            else
                err_at(l, tv,
                       "unknown input type \"%.40s\" (one of text, integer, email, "
                       "datetime, choice)",
                       s);
        }
        if (found < 0) {
            ok = false;
            break;
        }
        t->input = (enum fsm__input_type)found;
        if (ctx != TR_STATE) {
            err_at(l, tk, "input triggers belong to a state (its invalid: re-prompts)");
            ok = false;
        }
        break;
    }
    case FSM_TRIG_TIMEOUT: {
        const char *s = NULL;
        if (tv != NULL && tv->type == YAML_SCALAR_NODE && !is_null(tv))
            s = (const char *)tv->data.scalar.value;
        if (s == NULL || fsm__parse_duration(s, &t->timeout_ms) != 0 || t->timeout_ms < 1000) {
            err_at(l, tv ? tv : tk,
                   "expected a duration from 1s to 400d, like 30s, 10m, 2h, 1h30m or 1d");
            ok = false;
            break;
        }
        t->timeout_text = fsm__strdup(l->a, s);
        if (ctx != TR_STATE) {
            err_at(l, tk, "timeout triggers belong to a state");
            ok = false;
        }
        break;
    }
    case FSM_TRIG_NONE:
        break;
    }
    pop(l, old);

    /* options */
    yaml_node_t *x;
    bool is_text = t->kind == FSM_TRIG_TEXT || t->kind == FSM_TRIG_REGEX;
    check_option(l, n, "ignore_case", is_text, "text and regex");
    check_option(l, n, "min",
                 t->kind == FSM_TRIG_INPUT &&
                     (t->input == FSM_ITYPE_INTEGER || t->input == FSM_ITYPE_TEXT),
                 "input: integer and input: text");
    check_option(l, n, "max",
                 t->kind == FSM_TRIG_INPUT &&
                     (t->input == FSM_ITYPE_INTEGER || t->input == FSM_ITYPE_TEXT),
                 "input: integer and input: text");
    check_option(l, n, "future", t->kind == FSM_TRIG_INPUT && t->input == FSM_ITYPE_DATETIME,
                 "input: datetime");
    check_option(l, n, "choices", t->kind == FSM_TRIG_INPUT && t->input == FSM_ITYPE_CHOICE,
                 "input: choice");
    check_option(l, n, "save", t->kind == FSM_TRIG_INPUT, "input triggers (elsewhere use set:)");
    if (is_text && (x = map_get(l, n, "ignore_case", NULL)) != NULL) {
        size_t o = push(l, "ignore_case");
        ok = get_bool(l, x, &t->ignore_case) && ok;
        pop(l, o);
    }
    if (t->kind == FSM_TRIG_INPUT) {
        if ((x = map_get(l, n, "min", NULL)) != NULL && t->input != FSM_ITYPE_CHOICE) {
            size_t o = push(l, "min");
            t->has_min = get_int(l, x, &t->min);
            ok = t->has_min && ok;
            pop(l, o);
        }
        if ((x = map_get(l, n, "max", NULL)) != NULL && t->input != FSM_ITYPE_CHOICE) {
            size_t o = push(l, "max");
            t->has_max = get_int(l, x, &t->max);
            ok = t->has_max && ok;
            pop(l, o);
        }
        if (t->has_min && t->has_max && t->min > t->max) {
            err_at(l, n, "min (%lld) is greater than max (%lld)", (long long)t->min,
                   (long long)t->max);
            ok = false;
        }
        if ((x = map_get(l, n, "future", NULL)) != NULL && t->input == FSM_ITYPE_DATETIME) {
            size_t o = push(l, "future");
            ok = get_bool(l, x, &t->future) && ok;
            pop(l, o);
        }
        if (t->input == FSM_ITYPE_CHOICE) {
            x = map_get(l, n, "choices", NULL);
            size_t o = push(l, "choices");
            if (x == NULL) {
                err_at(l, n, "input: choice needs choices: (the accepted answers)");
                ok = false;
            } else {
                ok = load_choices(l, x, t) && ok;
            }
            pop(l, o);
        }
        if ((x = map_get(l, n, "save", NULL)) != NULL) {
            size_t o = push(l, "save");
            t->save = get_ident(l, x, "data field name");
            ok = t->save != NULL && ok;
            pop(l, o);
        }
    }
    if (t->kind == FSM_TRIG_TEXT && t->ignore_case && t->str != NULL) {
        char *f = fsm__fold(t->str);
        t->folded = fsm__strdup(l->a, f);
        free(f);
    }
    int64_t cost = t->kind == FSM_TRIG_REGEX && t->str != NULL ? regex_cost(t->str) : 0;
    if (cost < 0 || cost > FSM_RE_COST_MAX) {
        struct fsm__pos p = t->trig_pos;
        if (cost < 0)
            fsm__diag_add(l->diag, &p,
                          "bad regex: back-references (\\1 ... \\9) are not supported");
        else
            fsm__diag_add(l->diag, &p,
                          "bad regex: too complex (its repetitions expand to over %d parts)",
                          FSM_RE_COST_MAX);
        ok = false;
    } else if (t->kind == FSM_TRIG_REGEX && t->str != NULL) {
        regex_t *re = fsm__alloc(l->a, sizeof(*re));
        int rc = regcomp(re, t->str, REG_EXTENDED | (t->ignore_case ? REG_ICASE : 0));
        if (rc != 0) {
            char msg[200];
            regerror(rc, re, msg, sizeof(msg));
            size_t o = push(l, "regex");
            struct fsm__pos p = t->trig_pos;
            fsm__diag_add(l->diag, &p, "bad regex: %s", msg);
            pop(l, o);
            ok = false;
        } else {
            fsm__arena_keep_regex(l->a, re);
            t->re = re;
        }
    }
    return ok;
}

static int ctrl_allowed(enum trans_ctx ctx)
{
    return ctx == TR_GLOBAL ? (CTRL_END | CTRL_FLOW) : (CTRL_GOTO | CTRL_END | CTRL_FLOW);
}

static bool load_trans(struct ld *l, const yaml_node_t *n, struct fsm__trans *t, enum trans_ctx ctx)
{
    bool ok = true;
    yaml_node_t *x, *kn = NULL;
    const char *where = ctx == TR_GLOBAL  ? "a global transition"
                        : ctx == TR_ENTRY ? "an entry"
                                          : "a transition";

    memset(t, 0, sizeof(*t));
    t->pos = pos_of(l, n);
    if (!expect_map(l, n,
                    ctx == TR_ENTRY ? "an entry ({when, do, goto})"
                                    : "a transition (a trigger, then when/do/goto)"))
        return false;
    check_keys(l, n, ctx == TR_ENTRY ? entry_keys : trans_keys, where);
    if (ctx != TR_ENTRY)
        ok = load_trigger(l, n, t, ctx);
    if ((x = map_get(l, n, "when", NULL)) != NULL) {
        size_t old = push(l, "when");
        ok = load_guard(l, x, t) && ok;
        pop(l, old);
    }
    t->acts.present = true;
    t->acts.pos = t->pos;
    if ((x = map_get(l, n, "do", NULL)) != NULL) {
        size_t old = push(l, "do");
        load_acts(l, x, &t->acts, ctrl_allowed(ctx), where, false);
        pop(l, old);
    }
    static const char *const ctrl_words[] = {"goto", "end", "flow"};
    static const enum fsm__ctrl_kind ctrl_kinds[] = {FSM_CTRL_GOTO, FSM_CTRL_END, FSM_CTRL_FLOW};
    for (size_t i = 0; i < 3; i++) {
        kn = NULL;
        x = map_get(l, n, ctrl_words[i], &kn);
        if (kn == NULL)
            continue;
        size_t old = push(l, ctrl_words[i]);
        set_ctrl(l, &t->acts.ctrl, ctrl_kinds[i], kn, x, ctrl_allowed(ctx), where);
        pop(l, old);
    }
    return ok;
}

static void load_trans_list(struct ld *l, const yaml_node_t *n, struct fsm__trans_list *out,
                            enum trans_ctx ctx)
{
    if (!expect_seq(l, n, ctx == TR_ENTRY ? "a list of entries" : "a list of transitions"))
        return;
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt > 200) {
        err_at(l, n, "at most 200 transitions in a list, got %zu", cnt);
        return;
    }
    out->v = fsm__alloc(l->a, (cnt ? cnt : 1) * sizeof(*out->v));
    for (size_t i = 0; i < cnt; i++) {
        size_t old = push_idx(l, i);
        yaml_node_t *tn = nd(l, n->data.sequence.items.start[i]);
        /* kept even when it has problems, so the checks still see its goto */
        if (tn != NULL &&
            (load_trans(l, tn, &out->v[out->n], ctx) || tn->type == YAML_MAPPING_NODE))
            out->n++;
        pop(l, old);
        if (tn == NULL)
            return;
    }
}

/* ---- states and flows ------------------------------------------------------------------------ */

static const char *const state_keys[] = {"enter", "on", "invalid", "api", NULL};
static const char *const flow_keys[] = {"description", "command",  "start",  "entry",
                                        "on",          "fallback", "states", NULL};
static const char *const top_keys[] = {"version", "flows",          "global", "fallback",
                                       "default", "stale_callback", NULL};

static void load_state(struct ld *l, const yaml_node_t *kn, const yaml_node_t *n,
                       struct fsm__flow *f)
{
    const char *name = get_ident(l, kn, "state name");
    if (name == NULL)
        return;
    for (size_t i = 0; i < f->n_states; i++)
        if (strcmp(f->states[i].name, name) == 0) {
            err_at(l, kn, "state \"%s\" is defined twice (first at line %d)", name,
                   f->states[i].pos.line);
            return;
        }
    struct fsm__state *st = &f->states[f->n_states++];
    st->name = name;
    st->pos = pos_of(l, kn);
    st->flow = f;
    if (is_null(n))
        return; /* a state that does nothing on its own, e.g. an end point */
    if (!expect_map(l, n, "a state"))
        return;
    check_keys(l, n, state_keys, "a state");
    yaml_node_t *x;
    if ((x = map_get(l, n, "enter", NULL)) != NULL) {
        size_t old = push(l, "enter");
        load_acts(l, x, &st->enter, CTRL_END, "enter", false);
        pop(l, old);
    }
    if ((x = map_get(l, n, "on", NULL)) != NULL) {
        size_t old = push(l, "on");
        load_trans_list(l, x, &st->on, TR_STATE);
        pop(l, old);
    }
    if ((x = map_get(l, n, "invalid", NULL)) != NULL) {
        size_t old = push(l, "invalid");
        load_acts(l, x, &st->invalid, 0, "invalid", true);
        pop(l, old);
    }
    if ((x = map_get(l, n, "api", NULL)) != NULL) {
        size_t old = push(l, "api");
        get_bool(l, x, &st->api);
        pop(l, old);
    }
}

static void load_flow(struct ld *l, const yaml_node_t *kn, const yaml_node_t *n)
{
    struct fsm_set *set = l->set;
    const char *name = get_ident(l, kn, "flow name");
    if (name == NULL)
        return;
    for (size_t i = 0; i < set->n_flows; i++)
        if (strcmp(set->flows[i]->name, name) == 0) {
            err_at(l, kn, "flow \"%s\" is defined twice (first at %s:%d)", name,
                   set->flows[i]->pos.file, set->flows[i]->pos.line);
            return;
        }
    if (!expect_map(l, n, "a flow"))
        return;
    if (set->n_flows == set->cap_flows) {
        size_t cap = set->cap_flows ? set->cap_flows * 2 : 8;
        struct fsm__flow **v = fsm__alloc(l->a, cap * sizeof(*v));
        if (set->n_flows)
            memcpy(v, set->flows, set->n_flows * sizeof(*v));
        set->flows = v;
        set->cap_flows = cap;
    }
    struct fsm__flow *f = fsm__alloc(l->a, sizeof(*f));
    set->flows[set->n_flows++] = f;
    f->name = name;
    f->pos = pos_of(l, kn);
    check_keys(l, n, flow_keys, "a flow");

    yaml_node_t *x, *k = NULL;
    if ((x = map_get(l, n, "description", NULL)) != NULL) {
        size_t old = push(l, "description");
        f->description = get_str(l, x, "a description");
        pop(l, old);
    }
    if ((x = map_get(l, n, "command", NULL)) != NULL) {
        size_t old = push(l, "command");
        size_t cnt = x->type == YAML_SEQUENCE_NODE
                         ? (size_t)(x->data.sequence.items.top - x->data.sequence.items.start)
                         : 1;
        if (cnt > 16) {
            err_at(l, x, "at most 16 commands per flow");
            cnt = 0;
        }
        f->commands = fsm__alloc(l->a, (cnt ? cnt : 1) * sizeof(char *));
        f->command_pos = fsm__alloc(l->a, (cnt ? cnt : 1) * sizeof(*f->command_pos));
        for (size_t i = 0; i < cnt; i++) {
            size_t o2 = x->type == YAML_SEQUENCE_NODE ? push_idx(l, i) : l->plen;
            yaml_node_t *c =
                x->type == YAML_SEQUENCE_NODE ? nd(l, x->data.sequence.items.start[i]) : x;
            if (c != NULL && command_name(l, c, &f->commands[f->n_commands])) {
                f->command_pos[f->n_commands] = pos_of(l, c);
                f->n_commands++;
            }
            pop(l, o2);
        }
        pop(l, old);
    }
    if ((x = map_get(l, n, "start", &k)) != NULL || k != NULL) {
        size_t old = push(l, "start");
        f->start_name = get_ident(l, x ? x : k, "state name");
        f->start_pos = pos_of(l, x ? x : k);
        pop(l, old);
    } else {
        err_at(l, kn, "flow \"%s\" has no start: (the state it begins in)", name);
    }
    if ((x = map_get(l, n, "entry", NULL)) != NULL) {
        size_t old = push(l, "entry");
        load_trans_list(l, x, &f->entry, TR_ENTRY);
        pop(l, old);
    }
    if ((x = map_get(l, n, "on", NULL)) != NULL) {
        size_t old = push(l, "on");
        load_trans_list(l, x, &f->on, TR_FLOW);
        pop(l, old);
    }
    if ((x = map_get(l, n, "fallback", NULL)) != NULL) {
        size_t old = push(l, "fallback");
        load_acts(l, x, &f->fallback, CTRL_GOTO | CTRL_END | CTRL_FLOW, "fallback", false);
        pop(l, old);
    }
    k = NULL;
    x = map_get(l, n, "states", &k);
    size_t old = push(l, "states");
    if (k == NULL) {
        pop(l, old);
        err_at(l, kn, "flow \"%s\" has no states (add states: with at least one)", name);
        return;
    }
    if (!expect_map(l, x, "the flow's states (name: {enter, on, ...})")) {
        pop(l, old);
        return;
    }
    size_t cnt = (size_t)(x->data.mapping.pairs.top - x->data.mapping.pairs.start);
    if (cnt == 0 || cnt > 500) {
        err_at(l, x, "a flow has 1 to 500 states, got %zu", cnt);
        pop(l, old);
        return;
    }
    f->states = fsm__alloc(l->a, cnt * sizeof(*f->states));
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_pair_t *p = &x->data.mapping.pairs.start[i];
        yaml_node_t *sk = nd(l, p->key), *sv = nd(l, p->value);
        if (sk == NULL)
            break;
        const char *kt = key_text(sk);
        size_t o2 = push(l, kt ? kt : "?");
        load_state(l, sk, sv, f);
        pop(l, o2);
    }
    pop(l, old);
}

static void load_setting_acts(struct ld *l, const yaml_node_t *kn, const yaml_node_t *v,
                              struct fsm__setting *s, struct fsm__acts *acts, int allowed,
                              const char *what)
{
    size_t old = push(l, what);
    if (s->present) {
        err_at(l, kn, "%s is already set at %s:%d (once per set)", what, s->pos.file, s->pos.line);
    } else {
        s->present = true;
        s->pos = pos_of(l, kn);
        load_acts(l, v, acts, allowed, what, false);
    }
    pop(l, old);
}

static void load_root(struct ld *l, const yaml_node_t *root)
{
    struct fsm_set *set = l->set;
    if (!expect_map(l, root, "a flow file (version, flows, global, ...)"))
        return;
    check_keys(l, root, top_keys, "a flow file");
    yaml_node_t *x, *kn = NULL;
    if ((x = map_get(l, root, "version", NULL)) != NULL) {
        size_t old = push(l, "version");
        int64_t v = 0;
        if (get_int(l, x, &v) && v != 1)
            err_at(l, x, "unsupported version %lld (this vestnik reads version 1)", (long long)v);
        pop(l, old);
    }
    if ((x = map_get(l, root, "global", NULL)) != NULL) {
        size_t old = push(l, "global");
        struct fsm__trans_list more = {NULL, 0};
        load_trans_list(l, x, &more, TR_GLOBAL);
        if (more.n > 0) {
            struct fsm__trans *v = fsm__alloc(l->a, (set->global.n + more.n) * sizeof(*v));
            if (set->global.n)
                memcpy(v, set->global.v, set->global.n * sizeof(*v));
            memcpy(v + set->global.n, more.v, more.n * sizeof(*v));
            set->global.v = v;
            set->global.n += more.n;
        }
        pop(l, old);
    }
    if ((x = map_get(l, root, "fallback", &kn)) != NULL || kn != NULL)
        load_setting_acts(l, kn, x, &set->s_fallback, &set->fallback, CTRL_END | CTRL_FLOW,
                          "fallback");
    kn = NULL;
    if ((x = map_get(l, root, "default", &kn)) != NULL || kn != NULL)
        load_setting_acts(l, kn, x, &set->s_default, &set->deflt, CTRL_FLOW, "default");
    kn = NULL;
    if ((x = map_get(l, root, "stale_callback", &kn)) != NULL || kn != NULL) {
        size_t old = push(l, "stale_callback");
        if (set->s_stale.present) {
            err_at(l, kn, "stale_callback is already set at %s:%d (once per set)",
                   set->s_stale.pos.file, set->s_stale.pos.line);
        } else {
            set->s_stale.present = true;
            set->s_stale.pos = pos_of(l, kn);
            set->stale_callback = get_template(l, x);
            set->stale_pos = pos_of(l, x);
        }
        pop(l, old);
    }
    if ((x = map_get(l, root, "flows", NULL)) != NULL) {
        size_t old = push(l, "flows");
        if (expect_map(l, x, "flows (name: {command, start, states})")) {
            for (yaml_node_pair_t *p = x->data.mapping.pairs.start; p < x->data.mapping.pairs.top;
                 p++) {
                yaml_node_t *fk = nd(l, p->key), *fv = nd(l, p->value);
                if (fk == NULL)
                    break;
                const char *kt = key_text(fk);
                size_t o2 = push(l, kt ? kt : "?");
                load_flow(l, fk, fv);
                pop(l, o2);
            }
        }
        pop(l, old);
    }
}

void fsm__load_yaml(struct fsm_set *set, const char *file, const char *buf, size_t len,
                    struct fsm_diag *diag)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct ld l;
    struct fsm__pos fp = {file, 0, 0, ""};

    memset(&l, 0, sizeof(l));
    l.set = set;
    l.a = &set->arena;
    l.diag = diag;
    l.file = file;
    l.doc = &doc;
    l.max_nodes = set->limits.max_nodes;

    if (!yaml_parser_initialize(&parser)) {
        fsm__diag_add(diag, &fp, "cannot start the YAML parser (out of memory)");
        return;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    if (!yaml_parser_load(&parser, &doc)) {
        struct fsm__pos p = {file, (int)parser.problem_mark.line + 1,
                             (int)parser.problem_mark.column + 1, ""};
        if (parser.context != NULL)
            fsm__diag_add(diag, &p, "YAML: %s %s", parser.problem ? parser.problem : "error",
                          parser.context);
        else
            fsm__diag_add(diag, &p, "YAML: %s", parser.problem ? parser.problem : "error");
        yaml_parser_delete(&parser);
        return;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        fsm__diag_add(diag, &fp, "the file is empty");
    } else {
        load_root(&l, root);
        /* a second document is almost certainly a mistake ("---" in the middle) */
        yaml_document_t more;
        if (yaml_parser_load(&parser, &more)) {
            yaml_node_t *r2 = yaml_document_get_root_node(&more);
            if (r2 != NULL) {
                struct fsm__pos p = {file, (int)r2->start_mark.line + 1,
                                     (int)r2->start_mark.column + 1, ""};
                fsm__diag_add(diag, &p, "only one YAML document per file (remove the \"---\")");
            }
            yaml_document_delete(&more);
        } else {
            struct fsm__pos p = {file, (int)parser.problem_mark.line + 1,
                                 (int)parser.problem_mark.column + 1, ""};
            fsm__diag_add(diag, &p, "YAML: %s", parser.problem ? parser.problem : "error");
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
}
