/*
 * fsm_graph.c - flows as Mermaid state diagrams or Graphviz DOT.
 *
 * Drawn: how a flow is entered (its commands, entry conditions, states open
 * to the API), and every transition that leaves its state (goto, end, flow).
 * Transitions that stay (re-prompts, answers) and global transitions are not
 * drawn: they would add a loop to every state and hide the shape of the flow.
 * Flow-wide transitions start from a node "(any state)".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "fsm/fsm_int.h"

#define START_ID "__start"
#define END_ID   "__end"
#define ANY_ID   "__any"

struct edge {
    const char *from, *to; /* state names, or START_ID / END_ID / ANY_ID */
    char *label;
};

struct edges {
    struct edge *v;
    size_t n, cap;
};

static void add_edge(struct edges *e, const char *from, const char *to, struct vn_buf *label)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
    }
    e->v[e->n].from = from;
    e->v[e->n].to = to;
    e->v[e->n].label = label->data ? vn_buf_steal(label) : xstrdup("");
    e->n++;
}

static void trig_label(const struct fsm__trans *t, struct vn_buf *b)
{
    switch (t->kind) {
    case FSM_TRIG_COMMAND:
        vn_buf_printf(b, "/%s", t->str);
        break;
    case FSM_TRIG_TEXT:
        vn_buf_printf(b, "text '%s'", t->str);
        break;
    case FSM_TRIG_REGEX:
        vn_buf_printf(b, "regex /%s/", t->str);
        break;
    case FSM_TRIG_ANY_TEXT:
        vn_buf_puts(b, "any text");
        break;
    case FSM_TRIG_CALLBACK:
        vn_buf_printf(b, "callback '%s'", t->str);
        break;
    case FSM_TRIG_CALLBACK_PREFIX:
        vn_buf_printf(b, "callback '%s*'", t->str);
        break;
    case FSM_TRIG_CONTACT:
        vn_buf_puts(b, "contact");
        break;
    case FSM_TRIG_LOCATION:
        vn_buf_puts(b, "location");
        break;
    case FSM_TRIG_INPUT: {
        static const char *const names[] = {"text", "integer", "email", "datetime", "choice"};
        vn_buf_printf(b, "input %s", names[t->input]);
        break;
    }
    case FSM_TRIG_TIMEOUT:
        vn_buf_printf(b, "timeout %s", t->timeout_text);
        break;
    case FSM_TRIG_NONE:
        break;
    }
}

static void guard_label(const struct fsm__trans *t, struct vn_buf *b)
{
    if (t->guard_src != NULL)
        vn_buf_printf(b, "%s[%s]", b->len ? " " : "", t->guard_src);
}

/* Where a control leads; for a flow switch the label says which flow. */
static const char *ctrl_target(const struct fsm__ctrl *c, struct vn_buf *label)
{
    switch (c->kind) {
    case FSM_CTRL_GOTO:
        return c->name;
    case FSM_CTRL_END:
        return END_ID;
    case FSM_CTRL_FLOW:
        vn_buf_printf(label, "%sflow %s", label->len ? " → " : "→ ", c->name);
        return END_ID;
    case FSM_CTRL_NONE:
        break;
    }
    return NULL;
}

static void commands_label(const struct fsm__flow *f, struct vn_buf *b)
{
    for (size_t i = 0; i < f->n_commands; i++)
        vn_buf_printf(b, "%s/%s", i ? ", " : "", f->commands[i]);
}

static void flow_edges(const struct fsm__flow *f, struct edges *e)
{
    struct vn_buf b = VN_BUF_INIT;
    bool unguarded = false;
    for (size_t i = 0; i < f->entry.n; i++) {
        const struct fsm__trans *t = &f->entry.v[i];
        commands_label(f, &b);
        guard_label(t, &b);
        const char *to =
            t->acts.ctrl.kind == FSM_CTRL_NONE ? f->start_name : ctrl_target(&t->acts.ctrl, &b);
        add_edge(e, START_ID, to, &b);
        unguarded = unguarded || t->guard == NULL;
    }
    if (!unguarded && f->start_name != NULL) {
        commands_label(f, &b);
        add_edge(e, START_ID, f->start_name, &b);
    }
    for (size_t s = 0; s < f->n_states; s++)
        if (f->states[s].api) {
            vn_buf_puts(&b, "api");
            add_edge(e, START_ID, f->states[s].name, &b);
        }
    for (size_t s = 0; s < f->n_states; s++) {
        const struct fsm__state *st = &f->states[s];
        if (st->enter.ctrl.kind == FSM_CTRL_END)
            add_edge(e, st->name, END_ID, &b);
        for (size_t i = 0; i < st->on.n; i++) {
            const struct fsm__trans *t = &st->on.v[i];
            if (t->acts.ctrl.kind == FSM_CTRL_NONE)
                continue;
            trig_label(t, &b);
            guard_label(t, &b);
            const char *to = ctrl_target(&t->acts.ctrl, &b);
            add_edge(e, st->name, to, &b);
        }
    }
    for (size_t i = 0; i < f->on.n; i++) {
        const struct fsm__trans *t = &f->on.v[i];
        if (t->acts.ctrl.kind == FSM_CTRL_NONE)
            continue;
        trig_label(t, &b);
        guard_label(t, &b);
        const char *to = ctrl_target(&t->acts.ctrl, &b);
        add_edge(e, ANY_ID, to, &b);
    }
    if (f->fallback.ctrl.kind != FSM_CTRL_NONE) {
        vn_buf_puts(&b, "fallback");
        const char *to = ctrl_target(&f->fallback.ctrl, &b);
        add_edge(e, ANY_ID, to, &b);
    }
    vn_buf_free(&b);
}

static void free_edges(struct edges *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i].label);
    free(e->v);
    memset(e, 0, sizeof(*e));
}

static bool uses(const struct edges *e, const char *id)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->v[i].from, id) == 0 || strcmp(e->v[i].to, id) == 0)
            return true;
    return false;
}

/* ---- Mermaid ---------------------------------------------------------------------- */

static void mermaid_text(struct vn_buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '#':
            vn_buf_puts(out, "#35;");
            break;
        case ';':
            vn_buf_puts(out, "#59;");
            break;
        case '"':
            vn_buf_puts(out, "#quot;");
            break;
        case '<':
            vn_buf_puts(out, "#lt;");
            break;
        case '>':
            vn_buf_puts(out, "#gt;");
            break;
        case '\n':
        case '\r':
            vn_buf_putc(out, ' ');
            break;
        default:
            vn_buf_putc(out, *s);
        }
    }
}

static void mermaid_id(struct vn_buf *out, const struct fsm__flow *f, const char *id, bool prefix)
{
    if (strcmp(id, START_ID) == 0 || strcmp(id, END_ID) == 0) {
        vn_buf_puts(out, "[*]");
        return;
    }
    if (strcmp(id, ANY_ID) == 0) {
        if (prefix)
            vn_buf_printf(out, "%s__any_state", f->name);
        else
            vn_buf_puts(out, "any_state");
        return;
    }
    if (prefix)
        vn_buf_printf(out, "%s__%s", f->name, id);
    else
        vn_buf_puts(out, id);
}

static void mermaid_flow(const struct fsm__flow *f, bool nested, struct vn_buf *out)
{
    struct edges e = {NULL, 0, 0};
    const char *ind = nested ? "        " : "    ";
    flow_edges(f, &e);
    if (nested) {
        vn_buf_printf(out, "    state %s {\n", f->name);
        for (size_t s = 0; s < f->n_states; s++)
            vn_buf_printf(out, "%sstate \"%s\" as %s__%s\n", ind, f->states[s].name, f->name,
                          f->states[s].name);
    }
    if (uses(&e, ANY_ID)) {
        vn_buf_printf(out, "%sstate \"(any state)\" as ", ind);
        mermaid_id(out, f, ANY_ID, nested);
        vn_buf_putc(out, '\n');
    }
    for (size_t i = 0; i < e.n; i++) {
        vn_buf_puts(out, ind);
        mermaid_id(out, f, e.v[i].from, nested);
        vn_buf_puts(out, " --> ");
        mermaid_id(out, f, e.v[i].to, nested);
        if (e.v[i].label[0] != '\0') {
            vn_buf_puts(out, ": ");
            mermaid_text(out, e.v[i].label);
        }
        vn_buf_putc(out, '\n');
    }
    if (nested)
        vn_buf_puts(out, "    }\n");
    free_edges(&e);
}

/* ---- DOT ---------------------------------------------------------------------------- */

static void dot_str(struct vn_buf *out, const char *s)
{
    vn_buf_putc(out, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            vn_buf_putc(out, '\\');
        if (*s == '\n')
            vn_buf_puts(out, "\\n");
        else if (*s != '\r')
            vn_buf_putc(out, *s);
    }
    vn_buf_putc(out, '"');
}

static void dot_id(struct vn_buf *out, const struct fsm__flow *f, const char *id, bool prefix)
{
    if (!prefix) {
        dot_str(out, id);
        return;
    }
    char *full = xasprintf("%s.%s", f->name, id);
    dot_str(out, full);
    free(full);
}

static void dot_flow(const struct fsm__flow *f, bool nested, struct vn_buf *out)
{
    struct edges e = {NULL, 0, 0};
    const char *ind = nested ? "        " : "    ";
    flow_edges(f, &e);
    if (nested) {
        char *cl = xasprintf("cluster_%s", f->name);
        vn_buf_puts(out, "    subgraph ");
        dot_str(out, cl);
        free(cl);
        vn_buf_puts(out, " {\n        label=");
        dot_str(out, f->name);
        vn_buf_puts(out, ";\n");
    }
    vn_buf_puts(out, ind);
    dot_id(out, f, START_ID, nested);
    vn_buf_puts(out, " [shape=point, label=\"\"];\n");
    if (uses(&e, END_ID)) {
        vn_buf_puts(out, ind);
        dot_id(out, f, END_ID, nested);
        vn_buf_puts(out, " [shape=doublecircle, label=\"\", width=0.15];\n");
    }
    if (uses(&e, ANY_ID)) {
        vn_buf_puts(out, ind);
        dot_id(out, f, ANY_ID, nested);
        vn_buf_puts(out, " [label=\"(any state)\", style=dashed];\n");
    }
    for (size_t s = 0; s < f->n_states; s++) {
        vn_buf_puts(out, ind);
        dot_id(out, f, f->states[s].name, nested);
        if (nested) {
            vn_buf_puts(out, " [label=");
            dot_str(out, f->states[s].name);
            vn_buf_putc(out, ']');
        }
        vn_buf_puts(out, ";\n");
    }
    for (size_t i = 0; i < e.n; i++) {
        vn_buf_puts(out, ind);
        dot_id(out, f, e.v[i].from, nested);
        vn_buf_puts(out, " -> ");
        dot_id(out, f, e.v[i].to, nested);
        if (e.v[i].label[0] != '\0') {
            vn_buf_puts(out, " [label=");
            dot_str(out, e.v[i].label);
            vn_buf_putc(out, ']');
        }
        vn_buf_puts(out, ";\n");
    }
    if (nested)
        vn_buf_puts(out, "    }\n");
    free_edges(&e);
}

int fsm_graph(const struct fsm_set *set, const char *flow, enum fsm_graph_format fmt,
              struct vn_buf *out)
{
    const struct fsm__flow *only = NULL;
    if (set == NULL)
        return VN_EINVAL;
    if (flow != NULL) {
        only = fsm__find_flow(set, flow);
        if (only == NULL)
            return VN_ENOENT;
    } else if (set->n_flows == 1) {
        only = set->flows[0];
    }
    if (fmt == FSM_GRAPH_MERMAID) {
        vn_buf_puts(out, "stateDiagram-v2\n");
        if (only != NULL)
            mermaid_flow(only, false, out);
        else
            for (size_t i = 0; i < set->n_flows; i++)
                mermaid_flow(set->flows[i], true, out);
        return 0;
    }
    vn_buf_puts(out, "digraph ");
    dot_str(out, only ? only->name : "flows");
    vn_buf_puts(out, " {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n");
    if (only != NULL)
        dot_flow(only, false, out);
    else
        for (size_t i = 0; i < set->n_flows; i++)
            dot_flow(set->flows[i], true, out);
    vn_buf_puts(out, "}\n");
    return 0;
}
