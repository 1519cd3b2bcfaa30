/*
 * fsm_check.c - checks across a whole set, once every file is loaded:
 * names resolved (states, flows), start states, reachability, duplicate
 * triggers, command clashes, and template names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "fsm/fsm_int.h"

const struct fsm__flow *fsm__find_flow(const struct fsm_set *set, const char *name)
{
    for (size_t i = 0; name != NULL && i < set->n_flows; i++)
        if (strcmp(set->flows[i]->name, name) == 0)
            return set->flows[i];
    return NULL;
}

const struct fsm__state *fsm__find_state(const struct fsm__flow *f, const char *name)
{
    for (size_t i = 0; f != NULL && name != NULL && i < f->n_states; i++)
        if (strcmp(f->states[i].name, name) == 0)
            return &f->states[i];
    return NULL;
}

static const char *closest_state(const struct fsm__flow *f, const char *name)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < f->n_states; i++) {
        size_t d = fsm__edit_distance(name, f->states[i].name, 2);
        if (d < bd && d < strlen(name) && d < strlen(f->states[i].name)) {
            bd = d;
            best = f->states[i].name;
        }
    }
    return best;
}

static const char *closest_flow(const struct fsm_set *set, const char *name)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < set->n_flows; i++) {
        size_t d = fsm__edit_distance(name, set->flows[i]->name, 2);
        if (d < bd && d < strlen(name) && d < strlen(set->flows[i]->name)) {
            bd = d;
            best = set->flows[i]->name;
        }
    }
    return best;
}

static void unknown_state(struct fsm_diag *d, const struct fsm__pos *pos, const char *what,
                          const struct fsm__flow *f, const char *name)
{
    const char *hint = closest_state(f, name);
    if (hint != NULL)
        fsm__diag_add(d, pos, "%s: unknown state \"%s\" in flow \"%s\" (did you mean \"%s\"?)",
                      what, name, f->name, hint);
    else
        fsm__diag_add(d, pos, "%s: unknown state \"%s\" in flow \"%s\"", what, name, f->name);
}

/* Resolve goto/flow names. f is the flow the list belongs to (NULL: set level). */
static void resolve_ctrl(struct fsm_set *set, const struct fsm__flow *f, struct fsm__acts *acts,
                         struct fsm_diag *d)
{
    struct fsm__ctrl *c = &acts->ctrl;
    if (c->kind == FSM_CTRL_GOTO && f != NULL) {
        c->state = fsm__find_state(f, c->name);
        if (c->state == NULL)
            unknown_state(d, &c->pos, "goto", f, c->name);
    } else if (c->kind == FSM_CTRL_FLOW) {
        c->flow = fsm__find_flow(set, c->name);
        if (c->flow == NULL) {
            const char *hint = closest_flow(set, c->name);
            if (hint != NULL)
                fsm__diag_add(d, &c->pos, "flow: unknown flow \"%s\" (did you mean \"%s\"?)",
                              c->name, hint);
            else
                fsm__diag_add(d, &c->pos, "flow: unknown flow \"%s\"", c->name);
        }
    }
}

static void resolve_list(struct fsm_set *set, const struct fsm__flow *f,
                         struct fsm__trans_list *list, struct fsm_diag *d)
{
    for (size_t i = 0; i < list->n; i++)
        resolve_ctrl(set, f, &list->v[i].acts, d);
}

static void describe(const struct fsm__trans *t, struct vn_buf *b)
{
    switch (t->kind) {
    case FSM_TRIG_COMMAND:
        vn_buf_printf(b, "/%s", t->str);
        break;
    case FSM_TRIG_TEXT:
        vn_buf_printf(b, "text \"%s\"", t->str);
        break;
    case FSM_TRIG_REGEX:
        vn_buf_printf(b, "regex \"%s\"", t->str);
        break;
    case FSM_TRIG_ANY_TEXT:
        vn_buf_puts(b, "any_text");
        break;
    case FSM_TRIG_CALLBACK:
        vn_buf_printf(b, "callback \"%s\"", t->str);
        break;
    case FSM_TRIG_CALLBACK_PREFIX:
        vn_buf_printf(b, "callback_prefix \"%s\"", t->str);
        break;
    case FSM_TRIG_CONTACT:
        vn_buf_puts(b, "contact");
        break;
    case FSM_TRIG_LOCATION:
        vn_buf_puts(b, "location");
        break;
    case FSM_TRIG_INPUT:
        vn_buf_puts(b, "input");
        break;
    case FSM_TRIG_TIMEOUT:
        vn_buf_puts(b, "timeout");
        break;
    case FSM_TRIG_NONE:
        vn_buf_puts(b, "entry");
        break;
    }
}

/* Does every input that fires b also fire a (so b is dead when a has no guard)? */
static bool covers(const struct fsm__trans *a, const struct fsm__trans *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case FSM_TRIG_COMMAND:
    case FSM_TRIG_CALLBACK:
    case FSM_TRIG_CALLBACK_PREFIX:
        return a->str && b->str && strcmp(a->str, b->str) == 0;
    case FSM_TRIG_TEXT:
        if (a->str == NULL || b->str == NULL)
            return false;
        if (a->ignore_case) {
            char *f = fsm__fold(b->str);
            bool same = a->folded && strcmp(f, a->folded) == 0;
            free(f);
            return same;
        }
        return !b->ignore_case && strcmp(a->str, b->str) == 0;
    case FSM_TRIG_REGEX:
        return a->str && b->str && a->ignore_case == b->ignore_case && strcmp(a->str, b->str) == 0;
    case FSM_TRIG_ANY_TEXT:
    case FSM_TRIG_CONTACT:
    case FSM_TRIG_LOCATION:
        return true;
    default:
        return false;
    }
}

static void check_dups(const struct fsm__trans_list *list, struct fsm_diag *d)
{
    for (size_t j = 1; j < list->n; j++) {
        const struct fsm__trans *b = &list->v[j];
        for (size_t i = 0; i < j; i++) {
            const struct fsm__trans *a = &list->v[i];
            if (a->guard != NULL || !covers(a, b))
                continue;
            struct vn_buf desc = VN_BUF_INIT;
            describe(b, &desc);
            fsm__diag_add(d, &b->trig_pos,
                          "duplicate trigger %s: the one at line %d has no \"when\", so this one "
                          "never fires",
                          desc.data, a->pos.line);
            vn_buf_free(&desc);
            break;
        }
    }
}

static void check_flow(struct fsm_set *set, struct fsm__flow *f, struct fsm_diag *d)
{
    if (f->start_name != NULL) {
        f->start = fsm__find_state(f, f->start_name);
        if (f->start == NULL && f->n_states > 0)
            unknown_state(d, &f->start_pos, "start", f, f->start_name);
    }
    resolve_list(set, f, &f->entry, d);
    resolve_list(set, f, &f->on, d);
    resolve_ctrl(set, f, &f->fallback, d);
    check_dups(&f->on, d);
    for (size_t i = 0; i + 1 < f->entry.n; i++) {
        if (f->entry.v[i].guard == NULL) {
            fsm__diag_add(d, &f->entry.v[i + 1].pos,
                          "never used: the entry at line %d has no \"when\" and always applies",
                          f->entry.v[i].pos.line);
            break;
        }
    }
    for (size_t s = 0; s < f->n_states; s++) {
        struct fsm__state *st = &f->states[s];
        resolve_list(set, f, &st->on, d);
        check_dups(&st->on, d);
        for (size_t i = 0; i < st->on.n; i++) {
            const struct fsm__trans *t = &st->on.v[i];
            if (t->kind != FSM_TRIG_TIMEOUT || t->timeout_ms == 0)
                continue; /* (a bad duration is reported already) */
            if (st->timeout != NULL)
                fsm__diag_add(d, &t->trig_pos,
                              "a state has at most one timeout (the first is at line %d)",
                              st->timeout->pos.line);
            else
                st->timeout = t;
        }
    }

    /* reachability: from the start, the API-enterable states and the entry
       gotos, along every goto; flow-wide gotos apply from any state */
    if (f->start == NULL || f->n_states == 0)
        return;
    bool *seen = xcalloc(f->n_states, sizeof(bool));
    const struct fsm__state **work = xcalloc(f->n_states + 1, sizeof(*work));
    size_t nw = 0;
#define MARK(stp)                                                                                  \
    do {                                                                                           \
        const struct fsm__state *m_ = (stp);                                                       \
        if (m_ != NULL && !seen[m_ - f->states]) {                                                 \
            seen[m_ - f->states] = true;                                                           \
            work[nw++] = m_;                                                                       \
        }                                                                                          \
    } while (0)
    MARK(f->start);
    for (size_t s = 0; s < f->n_states; s++)
        if (f->states[s].api)
            MARK(&f->states[s]);
    for (size_t i = 0; i < f->entry.n; i++)
        MARK(f->entry.v[i].acts.ctrl.state);
    for (size_t i = 0; i < f->on.n; i++)
        MARK(f->on.v[i].acts.ctrl.state);
    MARK(f->fallback.ctrl.state);
    while (nw > 0) {
        const struct fsm__state *st = work[--nw];
        for (size_t i = 0; i < st->on.n; i++)
            MARK(st->on.v[i].acts.ctrl.state);
    }
#undef MARK
    for (size_t s = 0; s < f->n_states; s++)
        if (!seen[s])
            fsm__diag_add(d, &f->states[s].pos,
                          "state \"%s\" is unreachable: it is not the start, not marked api: true, "
                          "and no goto leads to it",
                          f->states[s].name);
    free(seen);
    free(work);
}

static void check_commands(struct fsm_set *set, struct fsm_diag *d)
{
    for (size_t i = 0; i < set->n_flows; i++) {
        const struct fsm__flow *f = set->flows[i];
        for (size_t c = 0; c < f->n_commands; c++) {
            const char *cmd = f->commands[c];
            bool reported = false;
            /* the same command on an earlier flow (or earlier in this one) */
            for (size_t j = 0; j <= i && !reported; j++) {
                const struct fsm__flow *g = set->flows[j];
                size_t upto = j == i ? c : g->n_commands;
                for (size_t k = 0; k < upto && !reported; k++) {
                    if (strcmp(g->commands[k], cmd) != 0)
                        continue;
                    fsm__diag_add(d, &f->command_pos[c],
                                  "command /%s already enters flow \"%s\" (%s:%d)", cmd, g->name,
                                  g->command_pos[k].file, g->command_pos[k].line);
                    reported = true;
                }
            }
            for (size_t g = 0; g < set->global.n && !reported; g++) {
                const struct fsm__trans *t = &set->global.v[g];
                if (t->kind != FSM_TRIG_COMMAND || t->guard != NULL || t->str == NULL ||
                    strcmp(t->str, cmd) != 0)
                    continue;
                fsm__diag_add(d, &f->command_pos[c],
                              "command /%s never enters flow \"%s\": the global transition at "
                              "%s:%d catches it first",
                              cmd, f->name, t->pos.file, t->pos.line);
                reported = true;
            }
        }
    }
}

/* ---- templates ---------------------------------------------------------------- */

typedef void (*tmpl_fn)(const char *name, const struct fsm__pos *pos, void *ud);

static void walk_acts(const struct fsm__acts *acts, tmpl_fn fn, void *ud)
{
    for (size_t i = 0; i < acts->n; i++) {
        const struct fsm__action *a = &acts->v[i];
        if (a->tmpl != NULL)
            fn(a->tmpl, &a->tmpl_pos, ud);
        if (a->kbd != NULL)
            for (size_t r = 0; r < a->kbd->n_rows; r++)
                for (size_t b = 0; b < a->kbd->row_len[r]; b++)
                    if (a->kbd->rows[r][b].label != NULL)
                        fn(a->kbd->rows[r][b].label, &a->kbd->rows[r][b].label_pos, ud);
    }
}

static void walk_list(const struct fsm__trans_list *l, tmpl_fn fn, void *ud)
{
    for (size_t i = 0; i < l->n; i++)
        walk_acts(&l->v[i].acts, fn, ud);
}

static void walk_templates(const struct fsm_set *set, tmpl_fn fn, void *ud)
{
    walk_list(&set->global, fn, ud);
    walk_acts(&set->fallback, fn, ud);
    walk_acts(&set->deflt, fn, ud);
    if (set->stale_callback != NULL)
        fn(set->stale_callback, &set->stale_pos, ud);
    for (size_t i = 0; i < set->n_flows; i++) {
        const struct fsm__flow *f = set->flows[i];
        walk_list(&f->entry, fn, ud);
        walk_list(&f->on, fn, ud);
        walk_acts(&f->fallback, fn, ud);
        for (size_t s = 0; s < f->n_states; s++) {
            walk_acts(&f->states[s].enter, fn, ud);
            walk_list(&f->states[s].on, fn, ud);
            walk_acts(&f->states[s].invalid, fn, ud);
        }
    }
}

struct tcheck {
    const struct fsm_load_opts *opts;
    struct fsm_diag *d;
};

static void check_one_template(const char *name, const struct fsm__pos *pos, void *ud)
{
    struct tcheck *tc = ud;
    if (!tc->opts->template_exists(name, tc->opts->template_ud))
        fsm__diag_add(tc->d, pos, "template \"%s\" not found", name);
}

struct tcollect {
    const char **v;
    size_t n, cap;
};

static void collect_template(const char *name, const struct fsm__pos *pos, void *ud)
{
    struct tcollect *c = ud;
    (void)pos;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 32;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->n++] = name;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void fsm_set_templates(const struct fsm_set *set, void (*cb)(const char *name, void *ud), void *ud)
{
    struct tcollect c = {NULL, 0, 0};
    if (set == NULL)
        return;
    walk_templates(set, collect_template, &c);
    if (c.n > 0)
        qsort(c.v, c.n, sizeof(*c.v), cmp_str);
    for (size_t i = 0; i < c.n; i++)
        if (i == 0 || strcmp(c.v[i], c.v[i - 1]) != 0)
            cb(c.v[i], ud);
    free(c.v);
}

void fsm__check(struct fsm_set *set, const struct fsm_load_opts *opts, struct fsm_diag *d)
{
    for (size_t i = 0; i < set->n_flows; i++)
        check_flow(set, set->flows[i], d);
    resolve_list(set, NULL, &set->global, d);
    check_dups(&set->global, d);
    resolve_ctrl(set, NULL, &set->fallback, d);
    resolve_ctrl(set, NULL, &set->deflt, d);
    check_commands(set, d);
    if (opts != NULL && opts->template_exists != NULL) {
        struct tcheck tc = {opts, d};
        walk_templates(set, check_one_template, &tc);
    }
}
