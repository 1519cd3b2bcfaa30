/*
 * tpl_render.c - run a compiled template against a JSON context.
 *
 * The context stack holds the root value and one entry per section being
 * rendered; a name's first segment is looked up from the top down, the rest
 * inside what that found (Mustache's rule, so {{a.b}} never falls back to an
 * outer b). Sections recurse over a sub-range of the ops; partials recurse
 * into another template. Depth is bounded by the compile-time section limit
 * times the partial limit, and work by max_steps, so a hostile template or
 * data set cannot run away. Output goes straight into the caller's buffer;
 * on error the buffer is cut back to where it was.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "templates/tpl_internal.h"

int tpl__rs_fail(struct tpl_rs *rs, int code, uint32_t line, uint32_t col, const char *fmt, ...)
{
    va_list ap;
    char msg[256];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tpl__set_error(rs->err, code, rs->cur ? rs->cur->name : "", line, col, "%s", msg);
    return code;
}

void tpl__fmt_double(struct vn_buf *b, double d)
{
    char tmp[40];
    if (!isfinite(d)) {
        vn_buf_puts(b, "null");
        return;
    }
    if (d == floor(d) && fabs(d) < 1e15) {
        vn_buf_printf(b, "%.0f", d == 0 ? 0.0 : d);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    vn_buf_puts(b, tmp);
}

void tpl__stringify(const struct tval *v, struct vn_buf *tmp, const char **s, size_t *len)
{
    *s = "";
    *len = 0;
    switch (v->kind) {
    case TV_MISSING:
        return;
    case TV_STR:
        *s = v->s;
        *len = v->len;
        return;
    case TV_NUM:
        vn_buf_reset(tmp);
        tpl__fmt_double(tmp, v->num);
        break;
    case TV_JSON:
        if (v->j == NULL)
            return;
        switch (json_object_get_type(v->j)) {
        case json_type_null:
            return;
        case json_type_string:
            *s = json_object_get_string(v->j);
            *len = (size_t)json_object_get_string_len(v->j);
            return;
        case json_type_boolean:
            *s = json_object_get_boolean(v->j) ? "true" : "false";
            *len = strlen(*s);
            return;
        default:
            vn_buf_reset(tmp);
            tpl__json_write(tmp, v->j);
            break;
        }
        break;
    }
    *s = tmp->data ? tmp->data : "";
    *len = tmp->len;
}

int tpl__tval_number(const struct tval *v, double *out)
{
    const char *s = NULL;
    size_t len = 0;
    switch (v->kind) {
    case TV_NUM:
        *out = v->num;
        return 0;
    case TV_MISSING:
        return VN_EINVAL;
    case TV_JSON:
        if (v->j == NULL)
            return VN_EINVAL;
        switch (json_object_get_type(v->j)) {
        case json_type_int:
        case json_type_double:
            *out = json_object_get_double(v->j);
            return 0;
        case json_type_string:
            s = json_object_get_string(v->j);
            len = (size_t)json_object_get_string_len(v->j);
            break;
        default:
            return VN_EINVAL;
        }
        break;
    case TV_STR:
        s = v->s;
        len = v->len;
        break;
    }
    /* a plain decimal number, nothing around it */
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp))
        return VN_EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    size_t i = tmp[0] == '-' ? 1 : 0;
    if (!(tmp[i] >= '0' && tmp[i] <= '9'))
        return VN_EINVAL;
    for (; i < len; i++)
        if (!((tmp[i] >= '0' && tmp[i] <= '9') || tmp[i] == '.' || tmp[i] == 'e' || tmp[i] == 'E' ||
              tmp[i] == '-' || tmp[i] == '+'))
            return VN_EINVAL;
    char *end = NULL;
    double d = strtod(tmp, &end);
    if (end != tmp + len || !isfinite(d))
        return VN_EINVAL;
    *out = d;
    return 0;
}

/* ---- output ------------------------------------------------------------ */

static int check_size(struct tpl_rs *rs, uint32_t line, uint32_t col)
{
    if (rs->out->len - rs->out_start > rs->lim.max_output)
        return tpl__rs_fail(rs, VN_ETOOBIG, line, col, "output exceeds the limit of %zu bytes",
                            rs->lim.max_output);
    return 0;
}

static void flush_indent(struct tpl_rs *rs)
{
    if (rs->pending_indent) {
        vn_buf_append(rs->out, rs->indent.data, rs->indent.len);
        rs->pending_indent = false;
    }
}

/* Template text: inside an indented partial every line gets the indent. */
static void emit_static(struct tpl_rs *rs, const char *s, size_t len)
{
    if (rs->indent.len == 0) {
        vn_buf_append(rs->out, s, len);
        return;
    }
    while (len > 0) {
        flush_indent(rs);
        const char *nl = memchr(s, '\n', len);
        size_t n = nl ? (size_t)(nl - s) + 1 : len;
        vn_buf_append(rs->out, s, n);
        s += n;
        len -= n;
        if (nl)
            rs->pending_indent = true;
    }
}

/* ---- context ----------------------------------------------------------- */

static bool child(struct json_object *j, const struct tpl *t, const struct tpl_seg *sg,
                  struct json_object **out)
{
    if (j == NULL)
        return false;
    enum json_type ty = json_object_get_type(j);
    if (ty == json_type_object)
        return json_object_object_get_ex(j, tpl__str(t, sg->off), out) != 0;
    if (ty == json_type_array && sg->index >= 0 &&
        (size_t)sg->index < json_object_array_length(j)) {
        *out = json_object_array_get_idx(j, (size_t)sg->index);
        return true;
    }
    return false;
}

static struct tval lookup(struct tpl_rs *rs, const struct tpl *t, uint32_t name)
{
    const struct tpl_name *nm = &t->names[name];
    struct tval v = {TV_MISSING, NULL, NULL, 0, 0};
    struct json_object *j = NULL;
    size_t d;

    if (nm->nseg == 0) {
        v.kind = TV_JSON;
        v.j = rs->stack[rs->depth - 1];
        return v;
    }
    const struct tpl_seg *sg = &t->segs[nm->seg];
    for (d = rs->depth; d > 0; d--)
        if (child(rs->stack[d - 1], t, sg, &j))
            break;
    if (d == 0)
        return v;
    for (uint32_t k = 1; k < nm->nseg; k++)
        if (!child(j, t, &sg[k], &j))
            return v;
    v.kind = TV_JSON;
    v.j = j;
    return v;
}

static bool truthy(const struct tval *v)
{
    if (v->kind != TV_JSON || v->j == NULL)
        return false;
    switch (json_object_get_type(v->j)) {
    case json_type_null:
        return false;
    case json_type_boolean:
        return json_object_get_boolean(v->j) != 0;
    case json_type_int:
        return json_object_get_int64(v->j) != 0;
    case json_type_double:
        return json_object_get_double(v->j) != 0.0;
    case json_type_string:
        return json_object_get_string_len(v->j) > 0;
    case json_type_array:
        return json_object_array_length(v->j) > 0;
    case json_type_object:
        return true;
    }
    return false;
}

static int push(struct tpl_rs *rs, struct json_object *j, const struct tpl_op *op)
{
    size_t max = (size_t)rs->lim.max_depth * (rs->lim.max_partial_depth + 1) + 1;
    if (rs->depth >= max)
        return tpl__rs_fail(rs, VN_ETOOBIG, op->line, op->col,
                            "sections nested deeper than %zu across partials", max);
    if (rs->depth == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 16;
        rs->stack = xrealloc(rs->stack, rs->cap * sizeof(*rs->stack));
    }
    rs->stack[rs->depth++] = j;
    return 0;
}

/* ---- ops --------------------------------------------------------------- */

static int render_range(struct tpl_rs *rs, const struct tpl *t, size_t from, size_t to);

static int do_var(struct tpl_rs *rs, const struct tpl *t, const struct tpl_op *op)
{
    struct tval v = lookup(rs, t, op->a);
    const char *s;
    size_t len;

    if (v.kind == TV_MISSING && rs->o->strict && !(op->flags & TOPF_HAS_DEFAULT))
        return tpl__rs_fail(rs, VN_ENOENT, op->line, op->col, "no value for {{%s}}",
                            tpl__str(t, t->names[op->a].text));
    for (uint32_t k = 0; k < op->c; k++) {
        const struct tpl_fcall *call = &t->calls[op->b + k];
        struct vn_buf *buf = &rs->scratch[k & 1];
        vn_buf_reset(buf);
        int rc = tpl__filter_get(call->fn)->apply(rs, t, call, &v, buf);
        if (rc)
            return rc;
    }
    flush_indent(rs);
    if (op->esc == TESC_JSON_VALUE) {
        switch (v.kind) {
        case TV_MISSING:
            vn_buf_puts(rs->out, "null");
            break;
        case TV_JSON:
            tpl__json_write(rs->out, v.j);
            break;
        case TV_NUM:
            tpl__fmt_double(rs->out, v.num);
            break;
        case TV_STR:
            vn_buf_putc(rs->out, '"');
            tpl__json_escape(rs->out, v.s, v.len);
            vn_buf_putc(rs->out, '"');
            break;
        }
        return check_size(rs, op->line, op->col);
    }
    tpl__stringify(&v, &rs->tmp, &s, &len);
    if (op->esc == TESC_URL_START && rs->o->strict &&
        !tpl__url_scheme_ok(s, len, (op->flags & TOPF_TG_URL) != 0))
        return tpl__rs_fail(rs, VN_EINVAL, op->line, op->col,
                            "{{%s}}: URL scheme not allowed (http, https, mailto, tel%s only)",
                            tpl__str(t, t->names[op->a].text),
                            (op->flags & TOPF_TG_URL) ? ", tg" : "");
    tpl__escape(rs->out, (enum tpl_esc)op->esc, op->flags, s, len);
    return check_size(rs, op->line, op->col);
}

static int do_section(struct tpl_rs *rs, const struct tpl *t, size_t i)
{
    const struct tpl_op *op = &t->ops[i];
    struct tval v = lookup(rs, t, op->a);
    int rc = 0;

    if (v.kind == TV_MISSING && rs->o->strict)
        return tpl__rs_fail(rs, VN_ENOENT, op->line, op->col,
                            "no value for {{%c%s}} (use null or false in the data to skip it)",
                            op->code == TOP_SECTION ? '#' : '^', tpl__str(t, t->names[op->a].text));
    bool on = truthy(&v);
    if (op->code == TOP_INVERTED)
        return on ? 0 : render_range(rs, t, i + 1, op->b);
    if (!on)
        return 0;
    if (json_object_get_type(v.j) == json_type_array) {
        size_t n = json_object_array_length(v.j);
        for (size_t k = 0; k < n && rc == 0; k++) {
            if (++rs->steps > rs->lim.max_steps)
                return tpl__rs_fail(rs, VN_ETOOBIG, op->line, op->col,
                                    "render takes more than %llu steps",
                                    (unsigned long long)rs->lim.max_steps);
            rc = push(rs, json_object_array_get_idx(v.j, k), op);
            if (rc)
                return rc;
            rc = render_range(rs, t, i + 1, op->b);
            rs->depth--;
        }
        return rc;
    }
    rc = push(rs, v.j, op);
    if (rc)
        return rc;
    rc = render_range(rs, t, i + 1, op->b);
    rs->depth--;
    return rc;
}

static int do_partial(struct tpl_rs *rs, const struct tpl *t, const struct tpl_op *op)
{
    const char *name = tpl__str(t, op->a);
    const struct tpl *p =
        rs->o->partial ? rs->o->partial(name, t->target, rs->o->partial_ud) : NULL;
    if (p == NULL) {
        if (rs->o->strict)
            return tpl__rs_fail(rs, VN_ENOENT, op->line, op->col, "no partial named \"%s\"", name);
        return 0;
    }
    if (p->target != t->target)
        return tpl__rs_fail(rs, VN_EINVAL, op->line, op->col,
                            "partial \"%s\" is compiled for %s, this template for %s", name,
                            tpl_target_name(p->target), tpl_target_name(t->target));
    if (rs->pdepth >= rs->lim.max_partial_depth)
        return tpl__rs_fail(rs, VN_ETOOBIG, op->line, op->col,
                            "partials nested deeper than %u (does \"%s\" include itself?)",
                            rs->lim.max_partial_depth, name);
    size_t saved = rs->indent.len;
    if (op->flags & TOPF_STANDALONE) {
        vn_buf_append(&rs->indent, tpl__str(t, op->c), op->d);
        rs->pending_indent = true;
    }
    const struct tpl *prev = rs->cur;
    rs->cur = p;
    rs->pdepth++;
    int rc = render_range(rs, p, 0, p->nops);
    rs->pdepth--;
    rs->cur = prev;
    rs->indent.len = saved;
    if (rs->indent.data)
        rs->indent.data[saved] = '\0';
    return rc;
}

static int render_range(struct tpl_rs *rs, const struct tpl *t, size_t from, size_t to)
{
    size_t i = from;
    int rc = 0;

    while (i < to && rc == 0) {
        const struct tpl_op *op = &t->ops[i];
        if (++rs->steps > rs->lim.max_steps)
            return tpl__rs_fail(rs, VN_ETOOBIG, op->line, op->col,
                                "render takes more than %llu steps",
                                (unsigned long long)rs->lim.max_steps);
        switch (op->code) {
        case TOP_TEXT:
            emit_static(rs, tpl__str(t, op->a), op->b);
            rc = check_size(rs, op->line, op->col);
            i++;
            break;
        case TOP_VAR:
            rc = do_var(rs, t, op);
            i++;
            break;
        case TOP_SECTION:
        case TOP_INVERTED:
            rc = do_section(rs, t, i);
            i = op->b + 1;
            break;
        case TOP_PARTIAL:
            rc = do_partial(rs, t, op);
            i++;
            break;
        default:
            i++;
            break;
        }
    }
    return rc;
}

/* The whole output of a JSON template must parse, as one value. */
static int check_json(struct tpl_rs *rs)
{
    const char *s = rs->out->data + rs->out_start;
    size_t len = rs->out->len - rs->out_start;
    struct json_tokener *tok = json_tokener_new_ex(128);
    int rc = 0;

    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    struct json_object *j = json_tokener_parse_ex(tok, s, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (j == NULL || e != json_tokener_success) {
        if (e == json_tokener_continue)
            rc = tpl__rs_fail(rs, VN_EINVAL, 0, 0,
                              "rendered output is not valid JSON: it ends "
                              "too early");
        else
            rc = tpl__rs_fail(rs, VN_EINVAL, 0, 0,
                              "rendered output is not valid JSON: %s at byte %zu",
                              json_tokener_error_desc(e), end);
    } else {
        while (end < len && (s[end] == ' ' || s[end] == '\n' || s[end] == '\r' || s[end] == '\t'))
            end++;
        if (end < len)
            rc = tpl__rs_fail(rs, VN_EINVAL, 0, 0,
                              "rendered output is not valid JSON: extra text at byte %zu", end);
    }
    json_object_put(j);
    json_tokener_free(tok);
    return rc;
}

int tpl_render(const struct tpl *t, struct json_object *data, const struct tpl_render_opts *opts,
               struct vn_buf *out, struct tpl_error *err)
{
    static const struct tpl_render_opts defaults;
    struct tpl_rs rs;
    struct tpl_error dummy;
    int rc;

    if (err == NULL)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    memset(&rs, 0, sizeof(rs));
    rs.o = opts ? opts : &defaults;
    rs.lim = rs.o->limits ? *rs.o->limits : *tpl_limits_default();
    rs.out = out;
    rs.out_start = out->len;
    rs.err = err;
    rs.cur = t;
    rs.locale = rs.o->locale && *rs.o->locale ? rs.o->locale : "en";
    rs.tz = rs.o->tz && *rs.o->tz ? rs.o->tz : "UTC";
    rs.now_ms = rs.o->now_ms;
    rs.cache = rs.o->cache;
    vn_buf_reserve(out, 256);

    rc = push(&rs, data, &(struct tpl_op){0});
    if (rc == 0)
        rc = render_range(&rs, t, 0, t->nops);
    if (rc == 0 && t->target == TPL_TARGET_LINE)
        tpl__fold_line(out, rs.out_start);
    if (rc == 0 && t->target == TPL_TARGET_JSON)
        rc = check_json(&rs);
    if (rc != 0) {
        out->len = rs.out_start;
        out->data[out->len] = '\0';
    }
    free(rs.stack);
    vn_buf_free(&rs.indent);
    vn_buf_free(&rs.scratch[0]);
    vn_buf_free(&rs.scratch[1]);
    vn_buf_free(&rs.tmp);
    if (rs.own_cache)
        tpl_fmt_cache_free(rs.cache);
    return rc;
}
