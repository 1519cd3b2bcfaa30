/*
 * fsm_step.c - the step engine: (set, conversation, input, context) ->
 * (conversation, effects). Pure: everything it knows comes in through its
 * arguments; everything it does goes out through the result.
 *
 * Order of matching for a message or a callback (docs/flows.md, "How an
 * input is handled"):
 *   1. the current state's on:, 2. the flow's on:, 3. global:,
 *   4. a command that enters a flow,
 *   5. (messages) invalid: of the state when an input trigger rejected the
 *      text, else the flow's fallback, else the set's fallback (in a flow) or
 *      default (no flow);
 *      (callbacks) nothing more: the query is answered, with stale_callback
 *      when defined.
 * Every callback query gets exactly one answer_callback effect.
 *
 * Bounds: at most max_actions actions and max_effects effects per step, data
 * at most max_data bytes of JSON; going over rejects the step as a whole
 * (state unchanged, the callback still answered).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "bot/tg_update.h"
#include "core/common.h"
#include "fsm/fsm_date.h"
#include "fsm/fsm_int.h"

#define MAX_FLOW_SWITCHES 4

struct pend {
    struct json_object *eff;   /* effect waiting for its vars */
    struct json_object *extra; /* vars: given on the action, merged over data */
};

struct step {
    const struct fsm_set *set;
    const struct fsm_ctx *ctx;
    const struct fsm_input *in;
    struct fsm_conv *next;
    struct json_object *effects;
    const struct fsm__flow *flow;
    const struct fsm__state *state;

    /* what the input carries */
    const struct tg_message *msg;
    const struct tg_callback_query *cb;
    char *text;   /* trimmed text of a plain text message (not a command) */
    char *folded; /* text folded, for ignore_case */
    char *cmd;    /* command name, lowercase */
    const char *arg;
    struct json_object *value; /* parsed input */
    const char *error;         /* why an input trigger refused the text */
    bool input_tried;
    const char *suffix;
    regmatch_t m[10];
    bool has_match;

    bool answered;
    bool entered_state;
    size_t n_actions;
    int flow_switches;
    bool failed;
    char reason[256];
    struct pend *pend;
    size_t n_pend, cap_pend;
};

const char *fsm_outcome_name(enum fsm_outcome o)
{
    switch (o) {
    case FSM_OUT_IGNORED:
        return "ignored";
    case FSM_OUT_TRANSITION:
        return "transition";
    case FSM_OUT_ENTERED:
        return "entered";
    case FSM_OUT_REPROMPT:
        return "reprompt";
    case FSM_OUT_FALLBACK:
        return "fallback";
    case FSM_OUT_DEFAULT:
        return "default";
    case FSM_OUT_UNMATCHED:
        return "unmatched";
    case FSM_OUT_REJECTED:
        return "rejected";
    }
    return "?";
}

void fsm_conv_cleanup(struct fsm_conv *c)
{
    if (c == NULL)
        return;
    free(c->flow);
    free(c->state);
    json_object_put(c->data);
    memset(c, 0, sizeof(*c));
}

void fsm_result_cleanup(struct fsm_result *r)
{
    if (r == NULL)
        return;
    fsm_conv_cleanup(&r->next);
    json_object_put(r->effects);
    r->effects = NULL;
}

/* Give up on the step: a bound was hit. what is "effects", "actions", ... */
static void fail(struct step *st, const char *what, size_t n)
{
    if (st->failed)
        return;
    st->failed = true;
    snprintf(st->reason, sizeof(st->reason), "more than %zu %s in one step", n, what);
}

static struct json_object *copy(struct json_object *j)
{
    struct json_object *out = NULL;
    if (j == NULL)
        return NULL;
    if (json_object_deep_copy(j, &out, NULL) != 0)
        return NULL;
    return out;
}

/* Append an effect (ownership passes to the array), counting the bound.
   false when the step failed and eff was released. */
static bool emit(struct step *st, struct json_object *eff)
{
    if (!st->failed && json_object_array_length(st->effects) >= st->set->limits.max_effects)
        fail(st, "effects", st->set->limits.max_effects);
    if (st->failed) {
        json_object_put(eff);
        return false;
    }
    json_object_array_add(st->effects, eff);
    return true;
}

static struct json_object *effect(const char *kind)
{
    struct json_object *e = json_object_new_object();
    json_object_object_add(e, "kind", json_object_new_string(kind));
    return e;
}

static void pend_vars(struct step *st, struct json_object *eff, struct json_object *extra)
{
    if (st->n_pend == st->cap_pend) {
        st->cap_pend = st->cap_pend ? st->cap_pend * 2 : 8;
        st->pend = xrealloc(st->pend, st->cap_pend * sizeof(*st->pend));
    }
    st->pend[st->n_pend].eff = eff;
    st->pend[st->n_pend].extra = extra;
    st->n_pend++;
}

/* Give every waiting effect its vars: the data as it is now (the end of the
   step, or the end of the flow they belong to) plus the action's own vars. */
static void flush_vars(struct step *st)
{
    for (size_t i = 0; i < st->n_pend; i++) {
        struct json_object *vars = copy(st->next->data);
        if (vars == NULL)
            vars = json_object_new_object();
        if (st->pend[i].extra != NULL) {
            json_object_object_foreach(st->pend[i].extra, k, v)
            {
                json_object_object_add(vars, k, json_object_get(v));
            }
            json_object_put(st->pend[i].extra);
        }
        json_object_object_add(st->pend[i].eff, "vars", vars);
    }
    st->n_pend = 0;
}

/* ---- references and values ---------------------------------------------------- */

static const struct tg_user *sender(const struct step *st)
{
    if (st->msg != NULL)
        return st->msg->from;
    if (st->cb != NULL)
        return &st->cb->from;
    return NULL;
}

static bool opt_str(const char *s, struct json_object **out)
{
    if (s == NULL)
        return false;
    *out = json_object_new_string(s);
    return true;
}

/* The value a reference names: true with a new object in *out (NULL for
   JSON null), or false when it is absent. */
static bool eval_ref(struct step *st, const struct fsm__ref *r, struct json_object **out)
{
    const struct tg_user *from = sender(st);
    *out = NULL;
    switch (r->root) {
    case FSM_REF_DATA: {
        struct json_object *cur = st->next->data;
        for (size_t i = 0; i < r->n_path; i++) {
            struct json_object *nextv = NULL;
            if (!json_object_is_type(cur, json_type_object) ||
                !json_object_object_get_ex(cur, r->path[i], &nextv))
                return false;
            cur = nextv;
        }
        *out = copy(cur);
        return true;
    }
    case FSM_REF_INPUT:
        return opt_str(st->text, out);
    case FSM_REF_VALUE:
        if (st->value == NULL)
            return false;
        *out = copy(st->value);
        return true;
    case FSM_REF_ARG:
        return st->arg != NULL && *st->arg != '\0' && opt_str(st->arg, out);
    case FSM_REF_CALLBACK:
        return st->cb != NULL && opt_str(st->cb->data, out);
    case FSM_REF_SUFFIX:
        return opt_str(st->suffix, out);
    case FSM_REF_MATCH: {
        if (!st->has_match || st->text == NULL || st->m[r->sub].rm_so < 0)
            return false;
        *out = json_object_new_string_len(st->text + st->m[r->sub].rm_so,
                                          (int)(st->m[r->sub].rm_eo - st->m[r->sub].rm_so));
        return true;
    }
    case FSM_REF_CONTACT: {
        const struct tg_contact *c = st->msg ? st->msg->contact : NULL;
        if (c == NULL)
            return false;
        switch (r->sub) {
        case FSM_SUB_PHONE:
            return opt_str(c->phone_number, out);
        case FSM_SUB_FIRST_NAME:
            return opt_str(c->first_name, out);
        case FSM_SUB_LAST_NAME:
            return opt_str(c->last_name, out);
        case FSM_SUB_USER_ID:
            if (!c->has_user_id)
                return false;
            *out = json_object_new_int64(c->user_id);
            return true;
        default:
            return false;
        }
    }
    case FSM_REF_LOCATION: {
        const struct tg_location *l = st->msg ? st->msg->location : NULL;
        if (l == NULL || (r->sub != FSM_SUB_LATITUDE && r->sub != FSM_SUB_LONGITUDE))
            return false;
        *out = fsm__json_double(r->sub == FSM_SUB_LATITUDE ? l->latitude : l->longitude);
        return true;
    }
    case FSM_REF_USER:
        switch (r->sub) {
        case FSM_SUB_ID:
            *out = json_object_new_int64(from ? from->id : st->ctx->user_id);
            return true;
        case FSM_SUB_FIRST_NAME:
            return from && opt_str(from->first_name, out);
        case FSM_SUB_LAST_NAME:
            return from && opt_str(from->last_name, out);
        case FSM_SUB_USERNAME:
            return from && opt_str(from->username, out);
        case FSM_SUB_LANGUAGE:
            return from && opt_str(from->language_code, out);
        default:
            return false;
        }
    case FSM_REF_CHAT:
        *out = json_object_new_int64(st->ctx->chat_id);
        return true;
    case FSM_REF_MESSAGE:
        if (st->msg != NULL) {
            *out = json_object_new_int64(st->msg->message_id);
            return true;
        }
        if (st->cb != NULL && st->cb->has_message) {
            *out = json_object_new_int64(st->cb->message_id);
            return true;
        }
        return false;
    case FSM_REF_NOW: {
        char buf[40];
        int64_t ms = st->ctx->now_ms;
        fsm_format_rfc3339(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000), st->ctx->tz, buf,
                           sizeof(buf));
        *out = json_object_new_string(buf);
        return true;
    }
    case FSM_REF_ERROR:
        return opt_str(st->error, out);
    case FSM_REF_LOCALE:
        return opt_str(st->ctx->locale, out);
    case FSM_REF_FLOW:
        return st->flow != NULL && opt_str(st->flow->name, out);
    case FSM_REF_STATE:
        return st->state != NULL && opt_str(st->state->name, out);
    }
    return false;
}

static void stringify(struct json_object *v, struct vn_buf *b)
{
    if (v == NULL)
        return;
    if (json_object_is_type(v, json_type_string))
        vn_buf_append(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    else
        vn_buf_puts(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
}

static bool eval_val(struct step *st, const struct fsm__val *v, struct json_object **out)
{
    *out = NULL;
    switch (v->kind) {
    case FSM_VAL_LIT:
        *out = copy(v->lit);
        return true;
    case FSM_VAL_REF:
        return eval_ref(st, &v->ref, out);
    case FSM_VAL_INTERP: {
        struct vn_buf b = VN_BUF_INIT;
        for (size_t i = 0; i < v->n_parts; i++) {
            if (v->parts[i].text != NULL) {
                vn_buf_puts(&b, v->parts[i].text);
                continue;
            }
            struct json_object *x = NULL;
            if (eval_ref(st, &v->parts[i].ref, &x))
                stringify(x, &b);
            json_object_put(x);
        }
        *out = json_object_new_string(b.data ? b.data : "");
        vn_buf_free(&b);
        return true;
    }
    case FSM_VAL_OBJ: {
        struct json_object *o = json_object_new_object();
        for (size_t i = 0; i < v->n_items; i++) {
            struct json_object *x = NULL;
            if (eval_val(st, &v->items[i], &x))
                json_object_object_add(o, v->keys[i], x);
        }
        *out = o;
        return true;
    }
    case FSM_VAL_ARR: {
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < v->n_items; i++) {
            struct json_object *x = NULL;
            eval_val(st, &v->items[i], &x);
            json_object_array_add(a, x);
        }
        *out = a;
        return true;
    }
    }
    return false;
}

/* ---- guards ---------------------------------------------------------------------- */

static bool truthy(struct json_object *v)
{
    if (v == NULL)
        return false;
    switch (json_object_get_type(v)) {
    case json_type_null:
        return false;
    case json_type_boolean:
        return json_object_get_boolean(v);
    case json_type_int:
        return json_object_get_int64(v) != 0;
    case json_type_double:
        return json_object_get_double(v) != 0.0;
    case json_type_string:
        return json_object_get_string_len(v) > 0;
    default:
        return true;
    }
}

static bool operand(struct step *st, const struct fsm__expr *e, struct json_object **out)
{
    if (e->kind == FSM_EX_LIT) {
        *out = copy(e->lit);
        return true;
    }
    if (e->kind == FSM_EX_REF)
        return eval_ref(st, &e->ref, out);
    *out = NULL;
    return false;
}

static bool is_num(struct json_object *v)
{
    return v != NULL &&
           (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double));
}

static bool compare(struct json_object *a, struct json_object *b, enum fsm__cmp op)
{
    int c;
    bool ordered = true;
    if (a == NULL || b == NULL || json_object_is_type(a, json_type_null) ||
        json_object_is_type(b, json_type_null)) {
        bool both = (a == NULL || json_object_is_type(a, json_type_null)) &&
                    (b == NULL || json_object_is_type(b, json_type_null));
        return op == FSM_CMP_EQ ? both : op == FSM_CMP_NE ? !both : false;
    }
    if (is_num(a) && is_num(b)) {
        if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int)) {
            int64_t x = json_object_get_int64(a), y = json_object_get_int64(b);
            c = x < y ? -1 : x > y;
        } else {
            double x = json_object_get_double(a), y = json_object_get_double(b);
            c = x < y ? -1 : x > y;
        }
    } else if (json_object_is_type(a, json_type_string) &&
               json_object_is_type(b, json_type_string)) {
        c = strcmp(json_object_get_string(a), json_object_get_string(b));
    } else if (json_object_is_type(a, json_type_boolean) &&
               json_object_is_type(b, json_type_boolean)) {
        c = json_object_get_boolean(a) != json_object_get_boolean(b);
        ordered = false;
    } else {
        return op == FSM_CMP_NE;
    }
    switch (op) {
    case FSM_CMP_EQ:
        return c == 0;
    case FSM_CMP_NE:
        return c != 0;
    case FSM_CMP_LT:
        return ordered && c < 0;
    case FSM_CMP_LE:
        return ordered && c <= 0;
    case FSM_CMP_GT:
        return ordered && c > 0;
    case FSM_CMP_GE:
        return ordered && c >= 0;
    }
    return false;
}

static bool eval_expr(struct step *st, const struct fsm__expr *e)
{
    struct json_object *a = NULL, *b = NULL;
    bool r = false;
    switch (e->kind) {
    case FSM_EX_OR:
        return eval_expr(st, e->a) || eval_expr(st, e->b);
    case FSM_EX_AND:
        return eval_expr(st, e->a) && eval_expr(st, e->b);
    case FSM_EX_NOT:
        return !eval_expr(st, e->a);
    case FSM_EX_EXISTS:
        if (operand(st, e->a, &a))
            r = a != NULL && !json_object_is_type(a, json_type_null) &&
                !(json_object_is_type(a, json_type_string) && json_object_get_string_len(a) == 0);
        break;
    case FSM_EX_TRUTHY:
        if (operand(st, e->a, &a))
            r = truthy(a);
        break;
    case FSM_EX_CMP:
        operand(st, e->a, &a);
        operand(st, e->b, &b);
        r = compare(a, b, e->op);
        break;
    case FSM_EX_LIT:
    case FSM_EX_REF:
        if (operand(st, e, &a))
            r = truthy(a);
        break;
    }
    json_object_put(a);
    json_object_put(b);
    return r;
}

static bool guard_ok(struct step *st, const struct fsm__trans *t)
{
    return t->guard == NULL || eval_expr(st, t->guard);
}

/* ---- actions ------------------------------------------------------------------------ */

static struct json_object *button_json(struct step *st, const struct fsm__button *b, bool inl)
{
    struct json_object *o = json_object_new_object();
    if (b->label != NULL)
        json_object_object_add(o, "template", json_object_new_string(b->label));
    else
        json_object_object_add(o, "text", json_object_new_string(b->text));
    if (inl && b->url != NULL) {
        json_object_object_add(o, "url", json_object_new_string(b->url));
    } else if (inl) {
        struct json_object *d = NULL;
        struct vn_buf s = VN_BUF_INIT;
        if (eval_val(st, b->data, &d))
            stringify(d, &s);
        json_object_put(d);
        /* Telegram refuses the whole message over one bad button: leave it out */
        if (s.len == 0 || s.len > 64) {
            vn_buf_free(&s);
            json_object_put(o);
            return NULL;
        }
        json_object_object_add(o, "data", json_object_new_string(s.data));
        vn_buf_free(&s);
    } else {
        if (b->request_contact)
            json_object_object_add(o, "request_contact", json_object_new_boolean(1));
        if (b->request_location)
            json_object_object_add(o, "request_location", json_object_new_boolean(1));
    }
    return o;
}

static struct json_object *kbd_json(struct step *st, const struct fsm__kbd *k)
{
    struct json_object *o = json_object_new_object();
    if (k->kind == FSM_KBD_REMOVE) {
        json_object_object_add(o, "remove", json_object_new_boolean(1));
        return o;
    }
    bool inl = k->kind == FSM_KBD_INLINE;
    struct json_object *rows = json_object_new_array();
    for (size_t r = 0; r < k->n_rows; r++) {
        struct json_object *row = json_object_new_array();
        for (size_t i = 0; i < k->row_len[r]; i++) {
            struct json_object *b = button_json(st, &k->rows[r][i], inl);
            if (b != NULL)
                json_object_array_add(row, b);
        }
        if (json_object_array_length(row) > 0)
            json_object_array_add(rows, row);
        else
            json_object_put(row);
    }
    json_object_object_add(o, inl ? "inline" : "reply", rows);
    if (!inl) {
        json_object_object_add(o, "resize", json_object_new_boolean(k->resize));
        json_object_object_add(o, "one_time", json_object_new_boolean(k->one_time));
    }
    return o;
}

static void add_locale(struct step *st, struct json_object *eff, const struct fsm__action *a)
{
    struct json_object *loc = NULL;
    if (a->locale != NULL && eval_val(st, a->locale, &loc) && loc != NULL &&
        json_object_is_type(loc, json_type_string) && json_object_get_string_len(loc) > 0) {
        json_object_object_add(eff, "locale", loc);
        return;
    }
    json_object_put(loc);
    if (st->ctx->locale != NULL)
        json_object_object_add(eff, "locale", json_object_new_string(st->ctx->locale));
}

static struct json_object *extra_vars(struct step *st, const struct fsm__action *a)
{
    struct json_object *x = NULL;
    if (a->vars != NULL && eval_val(st, a->vars, &x) && x != NULL &&
        json_object_is_type(x, json_type_object))
        return x;
    json_object_put(x);
    return NULL;
}

/* The message an edit aims at: the callback's (target absent) or an id from
   a value. false when there is none. */
static bool edit_target(struct step *st, const struct fsm__action *a, int64_t *chat, int64_t *mid)
{
    if (a->target == NULL) {
        if (st->cb == NULL || !st->cb->has_message)
            return false;
        *chat = st->cb->message_chat.id;
        *mid = st->cb->message_id;
        return true;
    }
    struct json_object *v = NULL;
    bool ok = false;
    if (eval_val(st, a->target, &v) && v != NULL) {
        if (json_object_is_type(v, json_type_int)) {
            *mid = json_object_get_int64(v);
            ok = *mid > 0;
        } else if (json_object_is_type(v, json_type_string)) {
            char *end = NULL;
            const char *s = json_object_get_string(v);
            long long n = strtoll(s, &end, 10);
            ok = *s != '\0' && *end == '\0' && n > 0;
            *mid = n;
        }
    }
    json_object_put(v);
    *chat = st->ctx->chat_id;
    return ok;
}

static void do_message(struct step *st, const struct fsm__action *a)
{
    int64_t chat = st->ctx->chat_id, mid = 0;
    bool edit = a->kind == FSM_ACT_EDIT && edit_target(st, a, &chat, &mid);
    struct json_object *eff = effect(edit ? "edit" : "send");
    json_object_object_add(eff, "chat_id", json_object_new_int64(chat));
    if (edit)
        json_object_object_add(eff, "message_id", json_object_new_int64(mid));
    json_object_object_add(eff, "template", json_object_new_string(a->tmpl));
    add_locale(st, eff, a);
    if (a->kbd != NULL)
        json_object_object_add(eff, "keyboard", kbd_json(st, a->kbd));
    if (a->remember != NULL && !edit)
        json_object_object_add(eff, "remember", json_object_new_string(a->remember));
    struct json_object *extra = extra_vars(st, a);
    if (emit(st, eff))
        pend_vars(st, eff, extra);
    else
        json_object_put(extra);
}

static void do_answer(struct step *st, const struct fsm__action *a)
{
    if (st->cb == NULL || st->answered)
        return; /* one answer per callback query; none without one */
    struct json_object *eff = effect("answer_callback");
    json_object_object_add(eff, "callback_query_id", json_object_new_string(st->cb->id));
    if (a->tmpl != NULL)
        json_object_object_add(eff, "template", json_object_new_string(a->tmpl));
    if (a->text != NULL)
        json_object_object_add(eff, "text", json_object_new_string(a->text));
    json_object_object_add(eff, "alert", json_object_new_boolean(a->alert));
    struct json_object *extra = NULL;
    if (a->tmpl != NULL) {
        add_locale(st, eff, a);
        extra = extra_vars(st, a);
    }
    st->answered = true;
    if (emit(st, eff) && a->tmpl != NULL)
        pend_vars(st, eff, extra);
    else
        json_object_put(extra);
}

static void run_acts(struct step *st, const struct fsm__acts *acts)
{
    for (size_t i = 0; i < acts->n && !st->failed; i++) {
        const struct fsm__action *a = &acts->v[i];
        if (++st->n_actions > st->set->limits.max_actions) {
            fail(st, "actions", st->set->limits.max_actions);
            return;
        }
        switch (a->kind) {
        case FSM_ACT_SEND:
        case FSM_ACT_EDIT:
            do_message(st, a);
            break;
        case FSM_ACT_ANSWER:
            do_answer(st, a);
            break;
        case FSM_ACT_EDIT_MARKUP: {
            int64_t chat, mid;
            if (!edit_target(st, a, &chat, &mid))
                break; /* nothing to edit */
            struct json_object *eff = effect("edit_markup");
            json_object_object_add(eff, "chat_id", json_object_new_int64(chat));
            json_object_object_add(eff, "message_id", json_object_new_int64(mid));
            json_object_object_add(eff, "keyboard", a->kbd ? kbd_json(st, a->kbd) : NULL);
            emit(st, eff);
            break;
        }
        case FSM_ACT_SET:
            for (size_t f = 0; f < a->n_fields; f++) {
                struct json_object *v = NULL;
                if (eval_val(st, &a->values[f], &v))
                    json_object_object_add(st->next->data, a->fields[f], v);
                else
                    json_object_object_del(st->next->data, a->fields[f]);
            }
            break;
        case FSM_ACT_CLEAR:
            if (a->clear_all) {
                json_object_put(st->next->data);
                st->next->data = json_object_new_object();
            } else {
                for (size_t f = 0; f < a->n_fields; f++)
                    json_object_object_del(st->next->data, a->fields[f]);
            }
            break;
        case FSM_ACT_PUBLISH: {
            struct json_object *eff = effect("publish");
            struct json_object *payload = NULL;
            json_object_object_add(eff, "event", json_object_new_string(a->event));
            if (a->payload == NULL || !eval_val(st, a->payload, &payload) || payload == NULL)
                payload = json_object_new_object();
            json_object_object_add(eff, "payload", payload);
            emit(st, eff);
            break;
        }
        }
    }
}

/* ---- states and flows ------------------------------------------------------------------ */

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? xstrdup(s) : NULL;
}

static void leave_state(struct step *st)
{
    if (st->next->timeout_at != 0) {
        emit(st, effect("cancel_timeout"));
        st->next->timeout_at = 0;
    }
}

static void schedule_timeout(struct step *st)
{
    const struct fsm__trans *t = st->state->timeout;
    int64_t at = st->ctx->now_ms + t->timeout_ms;
    struct json_object *eff = effect("schedule_timeout");
    json_object_object_add(eff, "flow", json_object_new_string(st->flow->name));
    json_object_object_add(eff, "state", json_object_new_string(st->state->name));
    json_object_object_add(eff, "after_ms", json_object_new_int64(t->timeout_ms));
    json_object_object_add(eff, "at_ms", json_object_new_int64(at));
    emit(st, eff);
    st->next->timeout_at = at;
}

static void end_flow(struct step *st, const char *reason);

static void enter_state(struct step *st, const struct fsm__state *s)
{
    st->state = s;
    set_str(&st->next->state, s->name);
    st->next->entered_at = st->ctx->now_ms;
    st->entered_state = true;
    run_acts(st, &s->enter);
    if (s->enter.ctrl.kind == FSM_CTRL_END) {
        end_flow(st, "end"); /* a state that only says something, then ends */
        return;
    }
    if (s->timeout != NULL)
        schedule_timeout(st);
}

static void end_flow(struct step *st, const char *reason)
{
    if (st->flow == NULL)
        return;
    leave_state(st);
    flush_vars(st); /* this flow's messages see its data */
    struct json_object *eff = effect("end_flow");
    json_object_object_add(eff, "flow", json_object_new_string(st->flow->name));
    json_object_object_add(eff, "reason", json_object_new_string(reason));
    emit(st, eff);
    set_str(&st->next->flow, NULL);
    set_str(&st->next->state, NULL);
    json_object_put(st->next->data);
    st->next->data = json_object_new_object();
    st->next->entered_at = st->ctx->now_ms;
    st->flow = NULL;
    st->state = NULL;
}

static void apply_ctrl(struct step *st, const struct fsm__ctrl *c);

/* Enter flow f: end the current one, start with data (copied; NULL = {}),
   run the entry list, then enter the state it picks (default: start). */
static void enter_flow(struct step *st, const struct fsm__flow *f, const char *reason,
                       const struct json_object *data)
{
    if (++st->flow_switches > MAX_FLOW_SWITCHES) {
        fail(st, "flow switches", MAX_FLOW_SWITCHES);
        return;
    }
    if (st->flow != NULL)
        end_flow(st, st->flow == f ? "restart" : reason);
    set_str(&st->next->flow, f->name);
    st->flow = f;
    st->state = NULL;
    json_object_put(st->next->data);
    st->next->data = data ? copy((struct json_object *)data) : NULL;
    if (st->next->data == NULL)
        st->next->data = json_object_new_object();
    for (size_t i = 0; i < f->entry.n && !st->failed; i++) {
        const struct fsm__trans *e = &f->entry.v[i];
        if (!guard_ok(st, e))
            continue;
        run_acts(st, &e->acts);
        if (e->acts.ctrl.kind == FSM_CTRL_NONE)
            enter_state(st, f->start);
        else
            apply_ctrl(st, &e->acts.ctrl);
        return;
    }
    enter_state(st, f->start);
}

static void apply_ctrl(struct step *st, const struct fsm__ctrl *c)
{
    if (st->failed)
        return;
    switch (c->kind) {
    case FSM_CTRL_NONE:
        break;
    case FSM_CTRL_GOTO:
        if (st->flow == NULL || c->state == NULL || c->state->flow != st->flow)
            break; /* the checks make this impossible */
        leave_state(st);
        enter_state(st, c->state);
        break;
    case FSM_CTRL_END:
        end_flow(st, "end");
        break;
    case FSM_CTRL_FLOW:
        if (c->flow != NULL)
            enter_flow(st, c->flow, "switch", NULL);
        break;
    }
}

static void fire(struct step *st, const struct fsm__trans *t)
{
    if (t->kind == FSM_TRIG_INPUT && t->save != NULL && st->value != NULL)
        json_object_object_add(st->next->data, t->save, copy(st->value));
    run_acts(st, &t->acts);
    apply_ctrl(st, &t->acts.ctrl);
}

/* ---- matching ------------------------------------------------------------------------------ */

static bool trig_match(struct step *st, const struct fsm__trans *t)
{
    const char *d = st->cb ? st->cb->data : NULL;
    switch (t->kind) {
    case FSM_TRIG_COMMAND:
        return st->cmd != NULL && strcmp(st->cmd, t->str) == 0;
    case FSM_TRIG_TEXT:
        if (st->text == NULL)
            return false;
        return t->ignore_case ? strcmp(st->folded, t->folded) == 0 : strcmp(st->text, t->str) == 0;
    case FSM_TRIG_REGEX:
        if (st->text == NULL || t->re == NULL)
            return false;
        if (regexec(t->re, st->text, 10, st->m, 0) != 0)
            return false;
        st->has_match = true;
        return true;
    case FSM_TRIG_ANY_TEXT:
        return st->text != NULL;
    case FSM_TRIG_CALLBACK:
        if (d == NULL || strcmp(d, t->str) != 0)
            return false;
        st->suffix = NULL;
        return true;
    case FSM_TRIG_CALLBACK_PREFIX:
        if (d == NULL || strncmp(d, t->str, strlen(t->str)) != 0)
            return false;
        st->suffix = d + strlen(t->str);
        return true;
    case FSM_TRIG_CONTACT:
        return st->msg != NULL && st->msg->contact != NULL;
    case FSM_TRIG_LOCATION:
        return st->msg != NULL && st->msg->location != NULL;
    case FSM_TRIG_INPUT: {
        if (st->text == NULL)
            return false;
        struct json_object *v = NULL;
        const char *err = NULL;
        if (fsm__parse_input(t, st->text, st->ctx->now_ms, st->ctx->tz, &v, &err) != 0) {
            if (!st->input_tried)
                st->error = err;
            st->input_tried = true;
            return false;
        }
        json_object_put(st->value);
        st->value = v;
        return true;
    }
    case FSM_TRIG_TIMEOUT:
    case FSM_TRIG_NONE:
        return false;
    }
    return false;
}

static const struct fsm__trans *match_list(struct step *st, const struct fsm__trans_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct fsm__trans *t = &l->v[i];
        if (trig_match(st, t) && guard_ok(st, t))
            return t;
    }
    return NULL;
}

static const struct fsm__flow *flow_for_command(const struct fsm_set *set, const char *cmd)
{
    for (size_t i = 0; cmd != NULL && i < set->n_flows; i++)
        for (size_t c = 0; c < set->flows[i]->n_commands; c++)
            if (strcmp(set->flows[i]->commands[c], cmd) == 0)
                return set->flows[i];
    return NULL;
}

static enum fsm_outcome run_acts_ctrl(struct step *st, const struct fsm__acts *acts,
                                      enum fsm_outcome o)
{
    run_acts(st, acts);
    apply_ctrl(st, &acts->ctrl);
    return o;
}

static enum fsm_outcome on_input(struct step *st)
{
    const struct fsm__trans *t = NULL;
    if (st->state != NULL)
        t = match_list(st, &st->state->on);
    if (t == NULL && st->flow != NULL)
        t = match_list(st, &st->flow->on);
    if (t == NULL)
        t = match_list(st, &st->set->global);
    if (t != NULL) {
        fire(st, t);
        return FSM_OUT_TRANSITION;
    }
    const struct fsm__flow *g = flow_for_command(st->set, st->cmd);
    if (g != NULL) {
        enter_flow(st, g, "switch", NULL);
        return FSM_OUT_ENTERED;
    }
    if (st->cb != NULL)
        return FSM_OUT_UNMATCHED; /* answered below, with stale_callback if any */
    if (st->flow != NULL) {
        if (st->input_tried && st->state != NULL && st->state->invalid.present)
            return run_acts_ctrl(st, &st->state->invalid, FSM_OUT_REPROMPT);
        if (st->flow->fallback.present)
            return run_acts_ctrl(st, &st->flow->fallback, FSM_OUT_FALLBACK);
        if (st->set->fallback.present)
            return run_acts_ctrl(st, &st->set->fallback, FSM_OUT_FALLBACK);
        return FSM_OUT_UNMATCHED;
    }
    if (st->set->deflt.present)
        return run_acts_ctrl(st, &st->set->deflt, FSM_OUT_DEFAULT);
    return FSM_OUT_UNMATCHED;
}

/* Put the answer every callback query needs first, unless an action gave
   one; stale: nothing matched it, so say so (stale_callback) when defined. */
static void ensure_answer(struct step *st, bool stale)
{
    if (st->cb == NULL || st->answered)
        return;
    struct json_object *eff = effect("answer_callback");
    json_object_object_add(eff, "callback_query_id", json_object_new_string(st->cb->id));
    if (st->set->stale_callback != NULL && stale) {
        json_object_object_add(eff, "template", json_object_new_string(st->set->stale_callback));
    }
    json_object_object_add(eff, "alert", json_object_new_boolean(0));
    if (st->set->stale_callback != NULL && stale) {
        if (st->ctx->locale != NULL)
            json_object_object_add(eff, "locale", json_object_new_string(st->ctx->locale));
        struct json_object *vars = copy(st->next->data);
        json_object_object_add(eff, "vars", vars ? vars : json_object_new_object());
    }
    st->answered = true;
    struct json_object *arr = json_object_new_array();
    json_object_array_add(arr, eff);
    size_t n = json_object_array_length(st->effects);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, json_object_get(json_object_array_get_idx(st->effects, i)));
    json_object_put(st->effects);
    st->effects = arr;
}

static bool conv_equal(const struct fsm_conv *a, const struct fsm_conv *b)
{
    bool same_flow = (a->flow == NULL && b->flow == NULL) ||
                     (a->flow != NULL && b->flow != NULL && strcmp(a->flow, b->flow) == 0);
    bool same_state = (a->state == NULL && b->state == NULL) ||
                      (a->state != NULL && b->state != NULL && strcmp(a->state, b->state) == 0);
    struct json_object *empty = json_object_new_object();
    bool same_data = json_object_equal(a->data ? a->data : empty, b->data ? b->data : empty);
    json_object_put(empty);
    return same_flow && same_state && same_data && a->entered_at == b->entered_at &&
           a->timeout_at == b->timeout_at;
}

static void copy_conv(struct fsm_conv *dst, const struct fsm_conv *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src != NULL && src->flow != NULL && src->state != NULL) {
        dst->flow = xstrdup(src->flow);
        dst->state = xstrdup(src->state);
    }
    if (src != NULL && src->data != NULL && json_object_is_type(src->data, json_type_object))
        dst->data = copy(src->data);
    if (dst->data == NULL)
        dst->data = json_object_new_object();
    if (src != NULL) {
        dst->entered_at = src->entered_at;
        dst->timeout_at = dst->flow ? src->timeout_at : 0;
    }
}

static size_t data_size(struct json_object *d)
{
    return strlen(
        json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Look at an update: which message or callback it is, its text and command. */
static enum fsm_outcome classify_update(struct step *st)
{
    const struct tg_update *u = st->in->update;
    if (u->kind == TG_UPDATE_CALLBACK_QUERY && u->callback_query != NULL) {
        st->cb = u->callback_query;
        return FSM_OUT_TRANSITION; /* "go on" */
    }
    if (u->kind != TG_UPDATE_MESSAGE || u->message == NULL)
        return FSM_OUT_IGNORED;
    st->msg = u->message;
    const struct tg_message *m = st->msg;
    if (m->command != NULL) {
        const char *bot = st->ctx->bot_username;
        if (m->command->bot != NULL && bot != NULL && strcasecmp(m->command->bot, bot) != 0)
            return FSM_OUT_IGNORED; /* "/start@other_bot" in a group */
        st->cmd = xstrdup(m->command->name);
        for (char *p = st->cmd; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        st->arg = m->command->args;
    } else if (m->text != NULL && !m->text_is_caption && m->text_len <= st->set->limits.max_text) {
        st->text = fsm__trim(m->text);
        if (*st->text == '\0') {
            free(st->text);
            st->text = NULL;
        } else {
            st->folded = fsm__fold(st->text);
        }
    }
    return FSM_OUT_TRANSITION;
}

int fsm_step(const struct fsm_set *set, const struct fsm_conv *cur, const struct fsm_input *in,
             const struct fsm_ctx *ctx, struct fsm_result *out)
{
    struct step st;
    enum fsm_outcome outcome = FSM_OUT_IGNORED;

    if (out == NULL)
        return VN_EINVAL;
    memset(out, 0, sizeof(*out));
    if (set == NULL || in == NULL || ctx == NULL) {
        snprintf(out->reason, sizeof(out->reason), "missing set, input or context");
        return VN_EINVAL;
    }
    memset(&st, 0, sizeof(st));
    st.set = set;
    st.ctx = ctx;
    st.in = in;
    st.next = &out->next;

    /* refuse what the caller should answer with an error, before any work */
    const struct fsm__flow *start_flow = NULL;
    const struct fsm__state *start_state = NULL;
    if (in->kind == FSM_IN_START) {
        start_flow = fsm__find_flow(set, in->flow);
        if (start_flow == NULL || start_flow->start == NULL) {
            snprintf(out->reason, sizeof(out->reason), "unknown flow \"%.100s\"",
                     in->flow ? in->flow : "");
            return VN_ENOENT;
        }
        if (in->state != NULL) {
            start_state = fsm__find_state(start_flow, in->state);
            if (start_state == NULL) {
                snprintf(out->reason, sizeof(out->reason), "flow \"%s\" has no state \"%.100s\"",
                         start_flow->name, in->state);
                return VN_ENOENT;
            }
            if (!start_state->api && start_state != start_flow->start) {
                snprintf(out->reason, sizeof(out->reason),
                         "state \"%s\" of flow \"%s\" is not marked api: true", start_state->name,
                         start_flow->name);
                return VN_ECONFLICT;
            }
        }
        if (in->data != NULL &&
            !json_object_is_type((struct json_object *)in->data, json_type_object)) {
            snprintf(out->reason, sizeof(out->reason), "data must be a JSON object");
            return VN_EINVAL;
        }
        if (in->data != NULL && data_size((struct json_object *)in->data) > set->limits.max_data) {
            snprintf(out->reason, sizeof(out->reason), "data over %zu bytes", set->limits.max_data);
            return VN_ETOOBIG;
        }
    } else if (in->kind == FSM_IN_UPDATE && in->update == NULL) {
        snprintf(out->reason, sizeof(out->reason), "missing update");
        return VN_EINVAL;
    }

    copy_conv(&out->next, cur);
    st.effects = json_object_new_array();

    /* the conversation's flow or state may be gone after a reload */
    if (out->next.flow != NULL) {
        st.flow = fsm__find_flow(set, out->next.flow);
        st.state = fsm__find_state(st.flow, out->next.state);
        if (st.state == NULL) {
            st.flow = fsm__find_flow(set, out->next.flow);
            if (out->next.timeout_at != 0)
                emit(&st, effect("cancel_timeout"));
            struct json_object *eff = effect("end_flow");
            json_object_object_add(eff, "flow", json_object_new_string(out->next.flow));
            json_object_object_add(eff, "reason", json_object_new_string("gone"));
            emit(&st, eff);
            set_str(&out->next.flow, NULL);
            set_str(&out->next.state, NULL);
            json_object_put(out->next.data);
            out->next.data = json_object_new_object();
            out->next.timeout_at = 0;
            st.flow = NULL;
        }
    }

    switch (in->kind) {
    case FSM_IN_UPDATE:
        outcome = classify_update(&st);
        if (outcome != FSM_OUT_IGNORED)
            outcome = on_input(&st);
        break;
    case FSM_IN_TIMEOUT:
        if (st.state == NULL || in->flow == NULL || in->state == NULL || in->at_ms == 0 ||
            strcmp(st.flow->name, in->flow) != 0 || strcmp(st.state->name, in->state) != 0 ||
            out->next.timeout_at != in->at_ms || st.state->timeout == NULL) {
            outcome = FSM_OUT_IGNORED; /* stale: the conversation moved on */
            break;
        }
        out->next.timeout_at = 0; /* this timer is spent */
        if (guard_ok(&st, st.state->timeout)) {
            fire(&st, st.state->timeout);
            outcome = FSM_OUT_TRANSITION;
        } else {
            outcome = FSM_OUT_UNMATCHED;
        }
        break;
    case FSM_IN_START:
        if (start_state != NULL) {
            if (st.flow != NULL)
                end_flow(&st, "replaced");
            set_str(&out->next.flow, start_flow->name);
            st.flow = start_flow;
            json_object_put(out->next.data);
            out->next.data = in->data ? copy((struct json_object *)in->data) : NULL;
            if (out->next.data == NULL)
                out->next.data = json_object_new_object();
            enter_state(&st, start_state);
        } else {
            enter_flow(&st, start_flow, "replaced", in->data);
        }
        outcome = FSM_OUT_ENTERED;
        break;
    }

    /* any input while a state's timer runs restarts it ("N seconds of no input") */
    if (!st.failed && outcome != FSM_OUT_IGNORED && !st.entered_state && st.state != NULL &&
        st.flow != NULL && st.state->timeout != NULL)
        schedule_timeout(&st);

    flush_vars(&st);
    if (!st.failed && data_size(out->next.data) > set->limits.max_data) {
        st.failed = true;
        snprintf(st.reason, sizeof(st.reason), "data over %zu bytes", set->limits.max_data);
    }
    if (st.failed) {
        /* reject the step: nothing changes, but a callback is still answered */
        fsm_conv_cleanup(&out->next);
        copy_conv(&out->next, cur);
        json_object_put(st.effects);
        st.effects = json_object_new_array();
        st.answered = false;
        outcome = FSM_OUT_REJECTED;
        snprintf(out->reason, sizeof(out->reason), "%s", st.reason);
    }
    ensure_answer(&st, outcome == FSM_OUT_UNMATCHED);

    out->effects = st.effects;
    out->outcome = outcome;
    out->changed = cur == NULL
                       ? (out->next.flow != NULL || json_object_object_length(out->next.data) > 0)
                       : !conv_equal(&out->next, cur);
    free(st.text);
    free(st.folded);
    free(st.cmd);
    json_object_put(st.value);
    free(st.pend);
    return 0;
}
