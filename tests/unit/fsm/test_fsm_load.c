/*
 * test_fsm_load.c - fsm/fsm_load.c, fsm_check.c, fsm_set.c, fsm_cli.c:
 * the good flow files load; every broken file in tests/fixtures/flows/broken/
 * gives exactly the problems (file:line:col: path: message) written here;
 * hostile YAML (alias bombs and loops, oversize files) is refused; and
 * `vestnik flow check|graph|templates` exits as documented.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "fsm/fsm.h"
#include "fsm/fsm_int.h"

/* ---- helpers ------------------------------------------------------------------ */

static char *source_root(void)
{
    const char *env = getenv("VN_SOURCE_DIR");
    if (env != NULL && *env != '\0')
        return xstrdup(env);
    const char *me = __FILE__;
    const char *tail = strstr(me, "tests/unit/fsm/");
    if (tail == NULL || tail == me)
        return xstrdup(".");
    return xstrndup(me, (size_t)(tail - me));
}

static char *fixture_path(const char *rel)
{
    char *root = source_root();
    char *p = xasprintf("%s/tests/fixtures/flows/%s", root, rel);
    free(root);
    return p;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct vn_buf b = VN_BUF_INIT;
    char chunk[4096];
    size_t n;
    if (f == NULL)
        fail_msg("cannot open %s (set VN_SOURCE_DIR to the repo root)", path);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        vn_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    if (b.data == NULL)
        vn_buf_append(&b, "", 0);
    return vn_buf_steal(&b);
}

/* Load one in-memory file named name; return the formatted problems ("" when
   it loaded). The set, if any, is freed. */
static char *problems_mem(const char *name, const char *text, const struct fsm_load_opts *opts)
{
    struct fsm_diag d;
    struct fsm_source src = {name, text, strlen(text)};
    struct vn_buf out = VN_BUF_INIT;
    fsm_diag_init(&d);
    struct fsm_set *set = fsm_set_load_mem(&src, 1, opts, &d);
    fsm_diag_format(&d, &out);
    if (set != NULL)
        assert_int_equal(d.n, 0);
    else
        assert_true(d.n > 0);
    fsm_set_free(set);
    fsm_diag_cleanup(&d);
    vn_buf_puts(&out, "");
    return vn_buf_steal(&out);
}

/* Problems of a fixture under broken/, named by its file name only. */
static char *problems_fixture(const char *file, const struct fsm_load_opts *opts)
{
    char *rel = xasprintf("broken/%s", file);
    char *path = fixture_path(rel);
    size_t len;
    char *text = read_all(path, &len);
    char *out = problems_mem(file, text, opts);
    free(rel);
    free(path);
    free(text);
    return out;
}

static const char *const known_templates[] = {"remind.ask", "btn.yes", NULL};

/* ---- good files ------------------------------------------------------------------ */

struct names {
    char buf[4096];
};

static void collect(const char *name, void *ud)
{
    struct names *n = ud;
    size_t len = strlen(n->buf);
    snprintf(n->buf + len, sizeof(n->buf) - len, "%s%s", len ? " " : "", name);
}

static void collect_cmd(const char *cmd, const char *flow, void *ud)
{
    struct names *n = ud;
    size_t len = strlen(n->buf);
    snprintf(n->buf + len, sizeof(n->buf) - len, "%s/%s->%s", len ? " " : "", cmd, flow);
}

static void test_good_files(void **state)
{
    (void)state;
    char *a = fixture_path("good/minimal.yaml"), *b = fixture_path("good/full.yaml");
    const char *paths[] = {a, b};
    struct fsm_diag d;
    struct vn_buf out = VN_BUF_INIT;
    fsm_diag_init(&d);
    struct fsm_set *set = fsm_set_load_files(paths, 2, NULL, &d);
    fsm_diag_format(&d, &out);
    if (set == NULL)
        fail_msg("good files refused:\n%s", out.data);
    assert_int_equal(fsm_set_flow_count(set), 3);

    struct names n = {{0}};
    fsm_set_commands(set, collect_cmd, &n);
    assert_string_equal(n.buf, "/hello->hello /order->order /o->order");

    memset(&n, 0, sizeof(n));
    fsm_set_templates(set, collect, &n);
    assert_string_equal(n.buf,
                        "btn.no btn.share_location btn.share_phone btn.yes common.button_expired "
                        "common.cancelled common.help common.not_understood feedback.ask "
                        "hello.greet order.ask_contact order.ask_count order.ask_email "
                        "order.ask_size order.ask_when order.bad_count order.bad_email "
                        "order.bad_size order.bad_when order.confirm order.placed order.thanks "
                        "order.too_slow order.use_buttons");

    assert_int_equal(fsm_set_api_enterable(set, "order", NULL), 0);
    assert_int_equal(fsm_set_api_enterable(set, "order", "confirm"), 0);
    assert_int_equal(fsm_set_api_enterable(set, "order", "ask_count"), 0); /* the start */
    assert_int_equal(fsm_set_api_enterable(set, "order", "ask_email"), VN_ECONFLICT);
    assert_int_equal(fsm_set_api_enterable(set, "order", "nope"), VN_ENOENT);
    assert_int_equal(fsm_set_api_enterable(set, "nope", NULL), VN_ENOENT);
    fsm_set_free(set);

    /* the same with the template check on, every name known */
    const char *all[64];
    size_t k = 0;
    char *copy = xstrdup(n.buf);
    for (char *p = strtok(copy, " "); p != NULL && k < 63; p = strtok(NULL, " "))
        all[k++] = p;
    all[k] = NULL;
    struct fsm_load_opts opts = {fsm_name_list_has, (void *)all, {0}};
    set = fsm_set_load_files(paths, 2, &opts, &d);
    assert_non_null(set);
    fsm_set_free(set);

    /* and the directory holding them loads the same */
    char *dir = fixture_path("good");
    set = fsm_set_load_dir(dir, &opts, &d);
    assert_non_null(set);
    assert_int_equal(fsm_set_flow_count(set), 3);
    fsm_set_free(set);
    assert_int_equal(d.n, 0);

    free(copy);
    free(dir);
    free(a);
    free(b);
    vn_buf_free(&out);
    fsm_diag_cleanup(&d);
}

static void test_example_bot(void **state)
{
    (void)state;
    char *root = source_root();
    char *path = xasprintf("%s/examples/reminders/flows/bot.yaml", root);
    const char *paths[] = {path};
    struct fsm_diag d;
    struct vn_buf out = VN_BUF_INIT;
    fsm_diag_init(&d);
    struct fsm_set *set = fsm_set_load_files(paths, 1, NULL, &d);
    fsm_diag_format(&d, &out);
    if (set == NULL)
        fail_msg("the example bot does not load:\n%s", out.data);
    assert_int_equal(fsm_set_flow_count(set), 5);
    assert_int_equal(fsm_set_api_enterable(set, "start", "linked"), 0);
    assert_int_equal(fsm_set_api_enterable(set, "tasks", "list"), 0);
    assert_int_equal(fsm_set_api_enterable(set, "task_confirm", NULL), 0);
    fsm_set_free(set);
    vn_buf_free(&out);
    fsm_diag_cleanup(&d);
    free(path);
    free(root);
}

/* ---- one broken file per kind of problem --------------------------------------------- */

struct broken {
    const char *file;
    const char *want;
};

static const struct broken broken_files[] = {
    {"unknown_state.yaml",
     "unknown_state.yaml:9:19: flows.remind.states.ask_what.on[0].goto: goto: unknown state "
     "\"ask_whne\" in flow \"remind\" (did you mean \"ask_when\"?)\n"},
    {"unreachable_state.yaml",
     "unreachable_state.yaml:10:7: flows.remind.states.orphan: state \"orphan\" is unreachable: "
     "it is not the start, not marked api: true, and no goto leads to it\n"},
    {"missing_template.yaml",
     "missing_template.yaml:12:59: flows.remind.states.ask.enter[0].send.keyboard.inline[0][1]."
     "label: template \"btn.maybe\" not found\n"
     "missing_template.yaml:16:23: flows.remind.states.ask.on[0].do[0].send: template "
     "\"remind.gone\" not found\n"},
    {"duplicate_trigger.yaml",
     "duplicate_trigger.yaml:13:23: flows.remind.states.confirm.on[2].callback: duplicate trigger "
     "callback \"yes\": the one at line 11 has no \"when\", so this one never fires\n"},
    {"bad_regex.yaml",
     "bad_regex.yaml:8:20: flows.remind.states.ask.on[0].regex: bad regex: Unmatched ( or \\(\n"},
    {"missing_start.yaml",
     "missing_start.yaml:2:3: flows.remind: flow \"remind\" has no start: (the state it begins "
     "in)\n"},
    {"unknown_start.yaml",
     "unknown_start.yaml:4:12: flows.remind.start: start: unknown state \"begin\" in flow "
     "\"remind\"\n"},
    {"unknown_action.yaml",
     "unknown_action.yaml:8:13: flows.remind.states.ask.enter[0].sned: unknown action \"sned\" "
     "(did you mean \"send\"?)\n"
     "unknown_action.yaml:10:13: flows.remind.states.ask.enter[1].keyboard: \"keyboard\" belongs "
     "inside send: (send: {template: ..., keyboard: ...})\n"},
    {"no_trigger.yaml",
     "no_trigger.yaml:8:13: flows.remind.states.ask.on[0]: a transition needs a trigger: one of "
     "command, text, regex, any_text, callback, callback_prefix, contact, location, input, "
     "timeout\n"
     "no_trigger.yaml:10:13: flows.remind.states.ask.on[1].txet: unknown key \"txet\" in a "
     "transition (did you mean \"text\"?)\n"},
    {"wrong_type.yaml",
     "wrong_type.yaml:4:12: flows.remind.start: expected a state name, got a list\n"
     "wrong_type.yaml:7:14: flows.remind.states.ask.api: expected true or false, got \"yes\"\n"
     "wrong_type.yaml:10:18: flows.remind.states.ask.on[0].min: expected an integer, got "
     "\"one\"\n"},
    {"unknown_key.yaml",
     "unknown_key.yaml:3:5: flows.remind.comand: unknown key \"comand\" in a flow (did you mean "
     "\"command\"?)\n"
     "unknown_key.yaml:10:13: flows.remind.states.ask.on[0].gotoo: unknown key \"gotoo\" in a "
     "transition (did you mean \"goto\"?)\n"},
    {"duplicate_command.yaml",
     "duplicate_command.yaml:13:15: flows.again.command[0]: command /remind already enters flow "
     "\"remind\" (duplicate_command.yaml:7)\n"
     "duplicate_command.yaml:13:24: flows.again.command[1]: command /help never enters flow "
     "\"again\": the global transition at duplicate_command.yaml:2 catches it first\n"},
    {"yaml_syntax.yaml",
     "yaml_syntax.yaml:8:1: YAML: did not find expected ',' or ']' while parsing a flow "
     "sequence\n"},
    {"bad_guard.yaml",
     "bad_guard.yaml:9:30: flows.remind.states.ask.on[0].when: bad condition: use == to "
     "compare\n"
     "bad_guard.yaml:12:19: flows.remind.states.ask.on[1].when: bad condition: unknown reference "
     "\"dat\" (one of data, input, value, arg, callback, suffix, match, contact, location, user, "
     "chat, message, now, error, locale, flow, state)\n"},
    {"control_not_last.yaml",
     "control_not_last.yaml:11:17: flows.remind.states.ask.on[0].do[1]: nothing may follow end "
     "(line 10): it leaves the state\n"
     "control_not_last.yaml:15:13: flows.remind.states.ask.on[1].end: only one of goto, end and "
     "flow per transition (already one at line 14)\n"},
    {"goto_in_global.yaml",
     "goto_in_global.yaml:3:5: global[0].goto: a global transition cannot use goto (it has no "
     "flow of its own); use end or flow\n"
     "goto_in_global.yaml:12:13: flows.remind.states.main.invalid[0].end: invalid re-prompts and "
     "stays in the state; it cannot use end\n"},
    {"duplicate_key.yaml",
     "duplicate_key.yaml:5:5: flows.remind.start: duplicate key \"start\" (first at line 4)\n"},
    {"two_timeouts.yaml",
     "two_timeouts.yaml:10:22: flows.remind.states.ask.on[1].timeout: a state has at most one "
     "timeout (the first is at line 8)\n"
     "two_timeouts.yaml:12:22: flows.remind.states.ask.on[2].timeout: expected a duration from "
     "1s to 400d, like 30s, 10m, 2h, 1h30m or 1d\n"},
    {"empty.yaml", "empty.yaml: the file is empty\n"},
    {"many.yaml",
     "many.yaml:2:10: version: unsupported version 2 (this vestnik reads version 1)\n"
     "many.yaml:10:63: flows.remind.states.ask.enter[0].send.keyboard.inline[0][0]: an inline "
     "button needs data: (callback data) or url:\n"
     "many.yaml:12:20: flows.remind.states.ask.on[0].input: unknown input type \"dateime\" (did "
     "you mean \"datetime\"?)\n"
     "many.yaml:14:20: flows.remind.states.ask.on[1].regex: bad regex: Invalid regular "
     "expression\n"
     "many.yaml:15:19: flows.remind.states.ask.on[1].goto: goto: unknown state \"nowhere\" in "
     "flow \"remind\"\n"
     "many.yaml:16:23: flows.remind.states.ask.on[2].callback: callback data is at most 64 bytes "
     "(Telegram's limit), got 73\n"
     "many.yaml:18:7: flows.remind.states.lonely: state \"lonely\" is unreachable: it is not the "
     "start, not marked api: true, and no goto leads to it\n"},
};

static void test_broken_files(void **state)
{
    (void)state;
    struct fsm_load_opts opts = {fsm_name_list_has, (void *)known_templates, {0}};
    for (size_t i = 0; i < VN_ARRAY_LEN(broken_files); i++) {
        /* only missing_template.yaml is about templates; check them everywhere
           anyway with a list that has what the others use */
        static const char *const all[] = {"remind.ask",  "btn.yes",     "remind.orphan",
                                          "remind.main", "common.help", "remind.bye",
                                          NULL};
        bool tmpl = strcmp(broken_files[i].file, "missing_template.yaml") == 0;
        struct fsm_load_opts o2 = {fsm_name_list_has, (void *)all, {0}};
        char *got = problems_fixture(broken_files[i].file, tmpl ? &opts : &o2);
        if (strcmp(got, broken_files[i].want) != 0)
            fail_msg("%s:\n--- want\n%s--- got\n%s", broken_files[i].file, broken_files[i].want,
                     got);
        free(got);
    }
}

/* Without a template list, template names are not checked at all. */
static void test_templates_unchecked(void **state)
{
    (void)state;
    char *got = problems_fixture("missing_template.yaml", NULL);
    assert_string_equal(got, "");
    free(got);
}

/* ---- problems found inline ---------------------------------------------------------------- */

struct inline_case {
    const char *yaml;
    const char *want;
};

static const struct inline_case inline_cases[] = {
    /* tabs are not YAML indentation */
    {"flows:\n\tx: 1\n",
     "t.yaml:2:1: YAML: found character that cannot start any token while scanning for the next "
     "token\n"},
    {"- a\n- b\n", "t.yaml:1:1: expected a flow file (version, flows, global, ...) (a mapping), "
                   "got a list\n"},
    {"flows: {}\n", "t.yaml: no flows: a set needs at least one flow under flows:\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        enter: [{send: x}]\n---\nflows: "
     "{}\n",
     "t.yaml:8:1: only one YAML document per file (remove the \"---\")\n"},
    {"flows:\n  f:\n    start: a\n    states: {}\n",
     "t.yaml:4:13: flows.f.states: a flow has 1 to 500 states, got 0\n"},
    {"flows:\n  f:\n    start: a\n",
     "t.yaml:2:3: flows.f: flow \"f\" has no states (add states: with at least one)\n"},
    {"flows:\n  9f:\n    start: a\n    states: {a: }\n",
     "t.yaml:2:3: flows.9f: \"9f\" is not a valid flow name (letters, digits and _, not starting "
     "with a digit)\n"},
    {"flows:\n  f:\n    command: remind me\n    start: a\n    states: {a: }\n",
     "t.yaml:3:14: flows.f.command: \"remind me\" is not a command (a / and 1-32 letters, digits "
     "or _)\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n          - text: \" x\"\n"
     "            end: true\n",
     "t.yaml:7:19: flows.f.states.a.on[0].text: text is compared after trimming spaces; remove "
     "the leading or trailing ones\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n          - text: x\n"
     "            min: 3\n            end: true\n",
     "t.yaml:8:13: flows.f.states.a.on[0].min: min applies only to input: integer and input: "
     "text\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n          - input: integer\n"
     "            min: 5\n            max: 1\n            end: true\n",
     "t.yaml:7:13: flows.f.states.a.on[0]: min (5) is greater than max (1)\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n          - input: choice\n"
     "            end: true\n",
     "t.yaml:7:13: flows.f.states.a.on[0].choices: input: choice needs choices: (the accepted "
     "answers)\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n          - text: x\n"
     "            callback: y\n",
     "t.yaml:8:13: flows.f.states.a.on[0].callback: one trigger per transition: text and callback "
     "need a transition each\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        enter:\n          - goto: a\n",
     "t.yaml:7:13: flows.f.states.a.enter[0].goto: enter can only end the flow; to move on, use "
     "a transition\n"},
    {"default:\n  - end: true\nflows:\n  f:\n    start: a\n    states: {a: }\n",
     "t.yaml:2:5: default[0].end: default runs when no flow is active; it can only start one "
     "(flow:)\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n          - any_text: true\n"
     "            flow: g\n",
     "t.yaml:8:19: flows.f.states.a.on[0].flow: flow: unknown flow \"g\"\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        enter:\n"
     "          - set: {x: $dat.y}\n",
     "t.yaml:7:22: flows.f.states.a.enter[0].set.x: unknown reference \"dat\" (one of data, "
     "input, value, arg, callback, suffix, match, contact, location, user, chat, message, now, "
     "error, locale, flow, state)\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        enter:\n"
     "          - set: {x: \"a${user.idd}\"}\n",
     "t.yaml:7:22: flows.f.states.a.enter[0].set.x: user has the fields id first_name last_name "
     "username language, not \"user.idd\"\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        enter:\n"
     "          - publish: {event: Reminder Scheduled}\n",
     "t.yaml:7:30: flows.f.states.a.enter[0].publish.event: \"Reminder Scheduled\" is not an "
     "event type (lowercase words with dots, like reminder.scheduled)\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        enter:\n"
     "          - edit: {template: t, keyboard: {reply: [[{text: x}]]}}\n",
     "t.yaml:7:44: flows.f.states.a.enter[0].edit.keyboard.reply: an edited message can only "
     "carry an inline keyboard\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        enter:\n"
     "          - send: {template: t, keyboard: {inline: [[{text: x, data: \"\"}]]}}\n",
     "t.yaml:7:70: flows.f.states.a.enter[0].send.keyboard.inline[0][0].data: callback data must "
     "be 1 to 64 bytes (Telegram's limit), got 0\n"},
    {"global:\n  - input: text\n    end: true\nflows:\n  f:\n    start: a\n    states: {a: }\n",
     "t.yaml:2:5: global[0].input: input triggers belong to a state (its invalid: re-prompts)\n"},
    {"flows:\n  f:\n    start: a\n    entry:\n      - goto: a\n      - goto: a\n"
     "    states: {a: }\n",
     "t.yaml:6:9: flows.f.entry[1]: never used: the entry at line 5 has no \"when\" and always "
     "applies\n"},
    {"fallback: x\nfallback: y\nflows:\n  f:\n    start: a\n    states: {a: }\n",
     "t.yaml:2:1: fallback: duplicate key \"fallback\" (first at line 1)\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        enter:\n"
     "          - set: {x: \"\\0\"}\n",
     "t.yaml:7:22: flows.f.states.a.enter[0].set.x: contains a NUL character\n"},
    /* patterns that would take gigabytes (or exponential time) in glibc */
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n"
     "          - regex: '^(.+++++++++++++++++++++++++++++++++++++)$'\n            end: true\n",
     "t.yaml:7:20: flows.f.states.a.on[0].regex: bad regex: too complex (its repetitions expand "
     "to over 5000 parts)\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n"
     "          - regex: '(a{,999}){1,999}'\n            end: true\n",
     "t.yaml:7:20: flows.f.states.a.on[0].regex: bad regex: too complex (its repetitions expand "
     "to over 5000 parts)\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n"
     "          - regex: '^(a+)-\\1$'\n            end: true\n",
     "t.yaml:7:20: flows.f.states.a.on[0].regex: bad regex: back-references (\\1 ... \\9) are not "
     "supported\n"},
    {"flows:\n  f:\n    start: a\n    states:\n      a:\n        on:\n"
     "          - regex: '^[a-z]{1,64}@[a-z]{1,64}\\.[a-z]{2,8} [[:digit:]]+ (x|y){0,9}$'\n"
     "            end: true\n",
     ""},
};

static void test_inline_problems(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < VN_ARRAY_LEN(inline_cases); i++) {
        char *got = problems_mem("t.yaml", inline_cases[i].yaml, NULL);
        if (strcmp(got, inline_cases[i].want) != 0) {
            print_error("case %zu:\n%s--- want\n%s--- got\n%s", i, inline_cases[i].yaml,
                        inline_cases[i].want, got);
            bad++;
        }
        free(got);
    }
    assert_int_equal(bad, 0);
}

/* ---- several files ------------------------------------------------------------------------- */

static void test_cross_file(void **state)
{
    (void)state;
    const char *a = "fallback: common.huh\nflows:\n  main:\n    command: /main\n    start: s\n"
                    "    states:\n      s:\n        on:\n          - any_text: true\n"
                    "            flow: other\n";
    const char *b = "flows:\n  other:\n    start: t\n    states:\n      t:\n"
                    "        enter: other.hello\n";
    const char *c = "fallback: common.what\nflows:\n  main:\n    start: x\n    states: {x: }\n";
    struct fsm_source ok[] = {{"a.yaml", a, strlen(a)}, {"b.yaml", b, strlen(b)}};
    struct fsm_source bad[] = {
        {"a.yaml", a, strlen(a)}, {"b.yaml", b, strlen(b)}, {"c.yaml", c, strlen(c)}};
    struct fsm_diag d;
    struct vn_buf out = VN_BUF_INIT;

    fsm_diag_init(&d);
    struct fsm_set *set = fsm_set_load_mem(ok, 2, NULL, &d);
    assert_non_null(set); /* flow: other resolves across files */
    fsm_set_free(set);

    set = fsm_set_load_mem(bad, 3, NULL, &d);
    assert_null(set);
    fsm_diag_format(&d, &out);
    assert_string_equal(out.data,
                        "c.yaml:1:1: fallback: fallback is already set at a.yaml:1 (once per set)\n"
                        "c.yaml:3:3: flows.main: flow \"main\" is defined twice (first at "
                        "a.yaml:3)\n");
    fsm_diag_cleanup(&d);
    vn_buf_free(&out);
}

/* ---- hostile input ------------------------------------------------------------------------- */

static void test_alias_bomb(void **state)
{
    (void)state;
    /* nine levels of ten aliases each: 10^9 nodes once expanded */
    struct vn_buf y = VN_BUF_INIT;
    vn_buf_puts(&y, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++) {
        vn_buf_printf(&y, "a%d: &a%d [", i, i);
        for (int j = 0; j < 10; j++)
            vn_buf_printf(&y, "%s*a%d", j ? ", " : "", i - 1);
        vn_buf_puts(&y, "]\n");
    }
    vn_buf_puts(&y, "flows:\n  f:\n    start: s\n    states:\n      s:\n        enter:\n"
                    "          - set: {x: *a8}\n");
    char *got = problems_mem("bomb.yaml", y.data, NULL);
    assert_non_null(strstr(got, "bomb.yaml: too many YAML nodes (over 200000, aliases "
                                "expanded)\n"));
    free(got);
    vn_buf_free(&y);
}

static void test_alias_loop(void **state)
{
    (void)state;
    /* an alias inside its own anchor: libyaml builds a cycle */
    const char *y = "flows:\n  f:\n    start: s\n    states:\n      s:\n        enter:\n"
                    "          - set: {x: &loop [1, *loop]}\n";
    char *got = problems_mem("loop.yaml", y, NULL);
    assert_non_null(strstr(got, "value nested too deep (at most 16 levels)"));
    free(got);

    /* and in a place the schema walks */
    const char *y2 = "flows: &top\n  f: *top\n";
    got = problems_mem("loop2.yaml", y2, NULL);
    assert_true(strlen(got) > 0);
    free(got);
}

static void test_limits(void **state)
{
    (void)state;
    const char *y = "flows:\n  f:\n    start: s\n    states: {s: }\n";
    struct fsm_load_opts opts = {NULL, NULL, {0}};
    opts.limits.max_file = 10;
    char *got = problems_mem("big.yaml", y, &opts);
    assert_string_equal(got, "big.yaml: file too big (43 bytes; at most 10)\n");
    free(got);

    struct fsm_source src[3] = {{"a", y, strlen(y)}, {"b", y, strlen(y)}, {"c", y, strlen(y)}};
    struct fsm_diag d;
    struct vn_buf out = VN_BUF_INIT;
    fsm_diag_init(&d);
    memset(&opts, 0, sizeof(opts));
    opts.limits.max_files = 2;
    assert_null(fsm_set_load_mem(src, 3, &opts, &d));
    assert_null(fsm_set_load_mem(src, 0, NULL, &d));
    fsm_diag_format(&d, &out);
    assert_string_equal(out.data, "a: too many flow files (3; at most 2)\n"
                                  ": no flow files given\n");
    fsm_diag_cleanup(&d);
    vn_buf_free(&out);
}

static void test_unreadable(void **state)
{
    (void)state;
    const char *paths[] = {"/nonexistent/flows.yaml"};
    struct fsm_diag d;
    struct vn_buf out = VN_BUF_INIT;
    fsm_diag_init(&d);
    assert_null(fsm_set_load_files(paths, 1, NULL, &d));
    assert_null(fsm_set_load_dir("/nonexistent", NULL, &d));
    fsm_diag_format(&d, &out);
    assert_string_equal(out.data,
                        "/nonexistent/flows.yaml: cannot read: No such file or directory\n"
                        "/nonexistent: cannot open the directory: No such file or directory\n");
    fsm_diag_cleanup(&d);
    vn_buf_free(&out);
}

/* More than 1000 problems: the first 1000 are kept and the rest counted. */
static void test_many_problems(void **state)
{
    (void)state;
    struct vn_buf y = VN_BUF_INIT;
    vn_buf_puts(&y, "flows:\n  f:\n    start: s\n    states:\n      s:\n        on:\n");
    for (int i = 0; i < 1200; i++)
        vn_buf_printf(&y, "          - text: t%d\n            goto: nowhere\n", i);
    struct fsm_source src = {"many.yaml", y.data, y.len};
    struct fsm_diag d;
    fsm_diag_init(&d);
    /* 200 transitions per list at most: one problem; use two states of 200 */
    assert_null(fsm_set_load_mem(&src, 1, NULL, &d));
    assert_true(d.n >= 1);
    fsm_diag_cleanup(&d);
    vn_buf_free(&y);

    vn_buf_puts(&y, "flows:\n");
    for (int f = 0; f < 8; f++) {
        vn_buf_printf(&y, "  f%d:\n    start: s\n    states:\n      s:\n        on:\n", f);
        for (int i = 0; i < 150; i++)
            vn_buf_printf(&y, "          - text: t%d\n            goto: nowhere\n", i);
    }
    src.data = y.data;
    src.len = y.len;
    fsm_diag_init(&d);
    assert_null(fsm_set_load_mem(&src, 1, NULL, &d));
    assert_int_equal(d.n, 1000);
    assert_int_equal(d.dropped, 200);
    struct vn_buf out = VN_BUF_INIT;
    fsm_diag_format(&d, &out);
    assert_non_null(strstr(out.data, "... and 200 more problems\n"));
    vn_buf_free(&out);
    fsm_diag_cleanup(&d);
    vn_buf_free(&y);
}

/* ---- guard expressions -------------------------------------------------------------------- */

static void test_guard_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        const char *err; /* NULL: parses */
        size_t off;
    } cases[] = {
        {"data.count > 0", NULL, 0},
        {"data.email exists", NULL, 0},
        {"$data.email exists and not (arg == 'x' or input != \"y\")", NULL, 0},
        {"data.n >= -1.5 and data.ok == true and data.x == null", NULL, 0},
        {"data.flag", NULL, 0},
        {"", "empty condition", 0},
        {"data.count = 1", "use == to compare", 11},
        {"data.count >", "expected a value at the end", 12},
        {"(data.a", "\"(\" without a matching \")\"", 0},
        {"data.a data.b", "expected and, or, or the end before \"data.b\"", 7},
        {"data.a == 'x", "unterminated string", 10},
        {"and", "expected a value before \"and\"", 0},
        {"match.12", "match takes a group number 0-9 (match.1), not \"match.12\"", 0},
        {"input.x", "input has no fields (\"input.x\")", 0},
        {"data.a ~ 1", "unexpected \"~\"", 7},
    };
    struct fsm__arena a;
    memset(&a, 0, sizeof(a));
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        char err[256] = "";
        size_t off = 99;
        struct fsm__expr *e = fsm__expr_parse(&a, cases[i].src, err, sizeof(err), &off);
        if (cases[i].err == NULL) {
            if (e == NULL)
                fail_msg("\"%s\" refused: %s", cases[i].src, err);
            continue;
        }
        if (e != NULL)
            fail_msg("\"%s\" accepted", cases[i].src);
        if (strcmp(err, cases[i].err) != 0 || off != cases[i].off)
            fail_msg("\"%s\": want \"%s\" at %zu, got \"%s\" at %zu", cases[i].src, cases[i].err,
                     cases[i].off, err, off);
    }
    /* deep nesting is refused, not a stack overflow */
    struct vn_buf deep = VN_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        vn_buf_putc(&deep, '(');
    char err[256];
    size_t off;
    assert_null(fsm__expr_parse(&a, deep.data, err, sizeof(err), &off));
    assert_string_equal(err, "expression nested too deep");
    vn_buf_free(&deep);
    fsm__arena_release(&a);
}

/* ---- the command line ----------------------------------------------------------------------- */

/* Run fsm_cli_main with stdout and stderr captured. */
static int run_cli(char **argv, int argc, char **out, char **err)
{
    FILE *fo = tmpfile(), *fe = tmpfile();
    assert_non_null(fo);
    assert_non_null(fe);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    int rc = fsm_cli_main(NULL, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    FILE *fs[2] = {fo, fe};
    char **dst[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        struct vn_buf b = VN_BUF_INIT;
        char chunk[4096];
        size_t n;
        rewind(fs[i]);
        while ((n = fread(chunk, 1, sizeof(chunk), fs[i])) > 0)
            vn_buf_append(&b, chunk, n);
        vn_buf_puts(&b, "");
        *dst[i] = vn_buf_steal(&b);
        fclose(fs[i]);
    }
    return rc;
}

static void test_cli(void **state)
{
    (void)state;
    char *good = fixture_path("good"), *bad = fixture_path("broken/missing_template.yaml");
    char *tdir = fixture_path("templates"), *minimal = fixture_path("good/minimal.yaml");
    char *out, *err;

    char *a1[] = {"flow", "check", good};
    assert_int_equal(run_cli(a1, 3, &out, &err), 0);
    assert_string_equal(out, "ok: 2 files, 3 flows, 8 states\n");
    assert_string_equal(err, "note: template names not checked (give --templates DIR)\n");
    free(out);
    free(err);

    char *a2[] = {"flow", "check", "--templates", tdir, bad};
    assert_int_equal(run_cli(a2, 5, &out, &err), 1);
    assert_non_null(strstr(out, "missing_template.yaml:12:59: "));
    assert_non_null(strstr(out, "template \"btn.maybe\" not found\n"));
    assert_non_null(strstr(out, "template \"remind.gone\" not found\n"));
    assert_null(strstr(out, "\"btn.yes\""));
    assert_null(strstr(out, "\"remind.ask\""));
    assert_string_equal(err, "2 problems in 1 file\n");
    free(out);
    free(err);

    char *a3[] = {"flow", "check"};
    assert_int_equal(run_cli(a3, 2, &out, &err), 2);
    free(out);
    free(err);
    char *a4[] = {"flow", "check", "--bogus", good};
    assert_int_equal(run_cli(a4, 4, &out, &err), 2);
    assert_string_equal(err, "vestnik flow check: unknown option --bogus (try --help)\n");
    free(out);
    free(err);
    char *a5[] = {"flow", "check", "--help"};
    assert_int_equal(run_cli(a5, 3, &out, &err), 0);
    assert_non_null(strstr(out, "Usage: vestnik flow check"));
    free(out);
    free(err);
    char *a6[] = {"flow", "frobnicate"};
    assert_int_equal(run_cli(a6, 2, &out, &err), 2);
    free(out);
    free(err);
    char *a7[] = {"flow"};
    assert_int_equal(run_cli(a7, 1, &out, &err), 2);
    free(out);
    free(err);
    char *a8[] = {"flow", "--help"};
    assert_int_equal(run_cli(a8, 2, &out, &err), 0);
    free(out);
    free(err);

    char *g1[] = {"flow", "graph", minimal};
    assert_int_equal(run_cli(g1, 3, &out, &err), 0);
    assert_string_equal(out, "stateDiagram-v2\n    [*] --> greet: /hello\n    greet --> [*]\n");
    free(out);
    free(err);
    char *g2[] = {"flow", "graph", "--format", "dot", minimal};
    assert_int_equal(run_cli(g2, 5, &out, &err), 0);
    assert_non_null(strstr(out, "digraph \"hello\" {\n"));
    free(out);
    free(err);
    char *g3[] = {"flow", "graph", "--format=svg", minimal};
    assert_int_equal(run_cli(g3, 4, &out, &err), 2);
    free(out);
    free(err);
    char *g4[] = {"flow", "graph", "--flow", "nope", minimal};
    assert_int_equal(run_cli(g4, 5, &out, &err), 2);
    assert_string_equal(err, "vestnik flow graph: no flow \"nope\" in the files given\n");
    free(out);
    free(err);
    char *g5[] = {"flow", "graph", bad};
    assert_int_equal(run_cli(g5, 3, &out, &err), 0); /* graph does not check templates */
    free(out);
    free(err);

    char *t1[] = {"flow", "templates", minimal};
    assert_int_equal(run_cli(t1, 3, &out, &err), 0);
    assert_string_equal(out, "hello.greet\n");
    free(out);
    free(err);

    free(good);
    free(bad);
    free(tdir);
    free(minimal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_files),
        cmocka_unit_test(test_example_bot),
        cmocka_unit_test(test_broken_files),
        cmocka_unit_test(test_templates_unchecked),
        cmocka_unit_test(test_inline_problems),
        cmocka_unit_test(test_cross_file),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_alias_loop),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_many_problems),
        cmocka_unit_test(test_guard_syntax),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
