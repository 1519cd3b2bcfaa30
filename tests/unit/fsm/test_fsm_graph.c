/*
 * test_fsm_graph.c - fsm/fsm_graph.c: the exact Mermaid and Graphviz DOT text
 * for a small flow (every kind of edge: commands, an entry condition, an API
 * state, a flow-wide transition, a timeout, end, a flow switch, a state that
 * ends on entry) and for a set of two flows. The same texts were checked with
 * `dot -Tsvg` and mermaid.parse() when they were written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "fsm/fsm.h"

static const char small_yaml[] = "flows:\n"
                                 "  remind:\n"
                                 "    command: [/remind, /r]\n"
                                 "    start: ask_what\n"
                                 "    entry:\n"
                                 "      - when: arg exists\n"
                                 "        do:\n"
                                 "          - set: {what: $arg}\n"
                                 "        goto: ask_when\n"
                                 "    on:\n"
                                 "      - command: /back\n"
                                 "        goto: ask_what\n"
                                 "    states:\n"
                                 "      ask_what:\n"
                                 "        on:\n"
                                 "          - input: text\n"
                                 "            save: what\n"
                                 "            goto: ask_when\n"
                                 "      ask_when:\n"
                                 "        on:\n"
                                 "          - input: datetime\n"
                                 "            goto: confirm\n"
                                 "          - timeout: 10m\n"
                                 "            end: true\n"
                                 "      confirm:\n"
                                 "        api: true\n"
                                 "        on:\n"
                                 "          - callback: \"yes\"\n"
                                 "            when: data.what != \"\" and data.n > 1\n"
                                 "            end: true\n"
                                 "          - callback_prefix: \"edit;\"\n"
                                 "            goto: ask_what\n"
                                 "          - text: \"#help\"\n"
                                 "            flow: help\n"
                                 "          - regex: '^no$'\n"
                                 "            goto: done\n"
                                 "      done:\n"
                                 "        enter:\n"
                                 "          - send: bye\n"
                                 "          - end: true\n"
                                 "  help:\n"
                                 "    command: /help\n"
                                 "    start: show\n"
                                 "    states:\n"
                                 "      show:\n"
                                 "        enter:\n"
                                 "          - send: help\n"
                                 "          - end: true\n";

static const char want_mermaid_one[] =
    "stateDiagram-v2\n"
    "    state \"(any state)\" as any_state\n"
    "    [*] --> ask_when: /remind, /r [arg exists]\n"
    "    [*] --> ask_what: /remind, /r\n"
    "    [*] --> confirm: api\n"
    "    ask_what --> ask_when: input text\n"
    "    ask_when --> confirm: input datetime\n"
    "    ask_when --> [*]: timeout 10m\n"
    "    confirm --> [*]: callback 'yes' [data.what != #quot;#quot; and data.n #gt; 1]\n"
    "    confirm --> ask_what: callback 'edit#59;*'\n"
    "    confirm --> [*]: text '#35;help' → flow help\n"
    "    confirm --> done: regex /^no$/\n"
    "    done --> [*]\n"
    "    any_state --> ask_what: /back\n";

static const char want_dot_one[] =
    "digraph \"remind\" {\n"
    "    rankdir=LR;\n"
    "    node [shape=box, style=rounded];\n"
    "    \"__start\" [shape=point, label=\"\"];\n"
    "    \"__end\" [shape=doublecircle, label=\"\", width=0.15];\n"
    "    \"__any\" [label=\"(any state)\", style=dashed];\n"
    "    \"ask_what\";\n"
    "    \"ask_when\";\n"
    "    \"confirm\";\n"
    "    \"done\";\n"
    "    \"__start\" -> \"ask_when\" [label=\"/remind, /r [arg exists]\"];\n"
    "    \"__start\" -> \"ask_what\" [label=\"/remind, /r\"];\n"
    "    \"__start\" -> \"confirm\" [label=\"api\"];\n"
    "    \"ask_what\" -> \"ask_when\" [label=\"input text\"];\n"
    "    \"ask_when\" -> \"confirm\" [label=\"input datetime\"];\n"
    "    \"ask_when\" -> \"__end\" [label=\"timeout 10m\"];\n"
    "    \"confirm\" -> \"__end\" [label=\"callback 'yes' [data.what != \\\"\\\" and data.n > "
    "1]\"];\n"
    "    \"confirm\" -> \"ask_what\" [label=\"callback 'edit;*'\"];\n"
    "    \"confirm\" -> \"__end\" [label=\"text '#help' → flow help\"];\n"
    "    \"confirm\" -> \"done\" [label=\"regex /^no$/\"];\n"
    "    \"done\" -> \"__end\";\n"
    "    \"__any\" -> \"ask_what\" [label=\"/back\"];\n"
    "}\n";

static const char want_mermaid_all[] =
    "stateDiagram-v2\n"
    "    state remind {\n"
    "        state \"ask_what\" as remind__ask_what\n"
    "        state \"ask_when\" as remind__ask_when\n"
    "        state \"confirm\" as remind__confirm\n"
    "        state \"done\" as remind__done\n"
    "        state \"(any state)\" as remind__any_state\n"
    "        [*] --> remind__ask_when: /remind, /r [arg exists]\n"
    "        [*] --> remind__ask_what: /remind, /r\n"
    "        [*] --> remind__confirm: api\n"
    "        remind__ask_what --> remind__ask_when: input text\n"
    "        remind__ask_when --> remind__confirm: input datetime\n"
    "        remind__ask_when --> [*]: timeout 10m\n"
    "        remind__confirm --> [*]: callback 'yes' [data.what != #quot;#quot; and data.n #gt; "
    "1]\n"
    "        remind__confirm --> remind__ask_what: callback 'edit#59;*'\n"
    "        remind__confirm --> [*]: text '#35;help' → flow help\n"
    "        remind__confirm --> remind__done: regex /^no$/\n"
    "        remind__done --> [*]\n"
    "        remind__any_state --> remind__ask_what: /back\n"
    "    }\n"
    "    state help {\n"
    "        state \"show\" as help__show\n"
    "        [*] --> help__show: /help\n"
    "        help__show --> [*]\n"
    "    }\n";

static const char want_dot_all[] =
    "digraph \"flows\" {\n"
    "    rankdir=LR;\n"
    "    node [shape=box, style=rounded];\n"
    "    subgraph \"cluster_remind\" {\n"
    "        label=\"remind\";\n"
    "        \"remind.__start\" [shape=point, label=\"\"];\n"
    "        \"remind.__end\" [shape=doublecircle, label=\"\", width=0.15];\n"
    "        \"remind.__any\" [label=\"(any state)\", style=dashed];\n"
    "        \"remind.ask_what\" [label=\"ask_what\"];\n"
    "        \"remind.ask_when\" [label=\"ask_when\"];\n"
    "        \"remind.confirm\" [label=\"confirm\"];\n"
    "        \"remind.done\" [label=\"done\"];\n"
    "        \"remind.__start\" -> \"remind.ask_when\" [label=\"/remind, /r [arg exists]\"];\n"
    "        \"remind.__start\" -> \"remind.ask_what\" [label=\"/remind, /r\"];\n"
    "        \"remind.__start\" -> \"remind.confirm\" [label=\"api\"];\n"
    "        \"remind.ask_what\" -> \"remind.ask_when\" [label=\"input text\"];\n"
    "        \"remind.ask_when\" -> \"remind.confirm\" [label=\"input datetime\"];\n"
    "        \"remind.ask_when\" -> \"remind.__end\" [label=\"timeout 10m\"];\n"
    "        \"remind.confirm\" -> \"remind.__end\" [label=\"callback 'yes' [data.what != \\\"\\\" "
    "and data.n > 1]\"];\n"
    "        \"remind.confirm\" -> \"remind.ask_what\" [label=\"callback 'edit;*'\"];\n"
    "        \"remind.confirm\" -> \"remind.__end\" [label=\"text '#help' → flow help\"];\n"
    "        \"remind.confirm\" -> \"remind.done\" [label=\"regex /^no$/\"];\n"
    "        \"remind.done\" -> \"remind.__end\";\n"
    "        \"remind.__any\" -> \"remind.ask_what\" [label=\"/back\"];\n"
    "    }\n"
    "    subgraph \"cluster_help\" {\n"
    "        label=\"help\";\n"
    "        \"help.__start\" [shape=point, label=\"\"];\n"
    "        \"help.__end\" [shape=doublecircle, label=\"\", width=0.15];\n"
    "        \"help.show\" [label=\"show\"];\n"
    "        \"help.__start\" -> \"help.show\" [label=\"/help\"];\n"
    "        \"help.show\" -> \"help.__end\";\n"
    "    }\n"
    "}\n";

static struct fsm_set *load(const char *yaml)
{
    struct fsm_diag d;
    struct fsm_source src = {"small.yaml", yaml, strlen(yaml)};
    fsm_diag_init(&d);
    struct fsm_set *set = fsm_set_load_mem(&src, 1, NULL, &d);
    if (set == NULL) {
        struct vn_buf b = VN_BUF_INIT;
        fsm_diag_format(&d, &b);
        fail_msg("refused:\n%s", b.data);
    }
    fsm_diag_cleanup(&d);
    return set;
}

static void check(const struct fsm_set *set, const char *flow, enum fsm_graph_format fmt,
                  const char *want)
{
    struct vn_buf out = VN_BUF_INIT;
    assert_int_equal(fsm_graph(set, flow, fmt, &out), 0);
    if (strcmp(out.data, want) != 0)
        fail_msg("--- want\n%s--- got\n%s", want, out.data);
    vn_buf_free(&out);
}

static void test_one_flow(void **state)
{
    (void)state;
    struct fsm_set *set = load(small_yaml);
    check(set, "remind", FSM_GRAPH_MERMAID, want_mermaid_one);
    check(set, "remind", FSM_GRAPH_DOT, want_dot_one);
    fsm_set_free(set);
}

static void test_all_flows(void **state)
{
    (void)state;
    struct fsm_set *set = load(small_yaml);
    check(set, NULL, FSM_GRAPH_MERMAID, want_mermaid_all);
    check(set, NULL, FSM_GRAPH_DOT, want_dot_all);
    struct vn_buf out = VN_BUF_INIT;
    assert_int_equal(fsm_graph(set, "nope", FSM_GRAPH_MERMAID, &out), VN_ENOENT);
    assert_int_equal(fsm_graph(NULL, NULL, FSM_GRAPH_MERMAID, &out), VN_EINVAL);
    vn_buf_free(&out);
    fsm_set_free(set);
}

/* A set of one flow is drawn without the composite wrapper. */
static void test_single_flow_set(void **state)
{
    (void)state;
    const char *yaml = "flows:\n  hi:\n    command: /hi\n    start: a\n    states:\n"
                       "      a:\n        on:\n          - text: \"x;y\"\n            goto: b\n"
                       "      b:\n        enter:\n          - end: true\n";
    struct fsm_set *set = load(yaml);
    check(set, NULL, FSM_GRAPH_MERMAID,
          "stateDiagram-v2\n    [*] --> a: /hi\n    a --> b: text 'x#59;y'\n    b --> [*]\n");
    check(set, NULL, FSM_GRAPH_DOT,
          "digraph \"hi\" {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n"
          "    \"__start\" [shape=point, label=\"\"];\n"
          "    \"__end\" [shape=doublecircle, label=\"\", width=0.15];\n"
          "    \"a\";\n    \"b\";\n"
          "    \"__start\" -> \"a\" [label=\"/hi\"];\n"
          "    \"a\" -> \"b\" [label=\"text 'x;y'\"];\n"
          "    \"b\" -> \"__end\";\n}\n");
    fsm_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_flow),
        cmocka_unit_test(test_all_flows),
        cmocka_unit_test(test_single_flow_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
