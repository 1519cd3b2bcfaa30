/*
 * fuzz_fsm_load.c - libFuzzer target for the flow loader (fsm/fsm_load.c,
 * fsm_check.c) and, when an input loads, the step engine and graphs.
 *
 * Each input is one flow file held in memory. Whatever it holds, loading
 * must return a set or a non-empty list of problems, each with a message,
 * a line and column that are 0 (whole file) or inside the input. A set that
 * loads is driven through a fixed script (every flow's commands, texts that
 * reach the typed inputs, callbacks, contact, location, its timeouts, API
 * starts at every state) with the engine's promises checked after each step,
 * then drawn in both formats. Traps when a promise breaks. See
 * tests/fuzz/README.md for building and running.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "bot/tg_update.h"
#include "core/common.h"
#include "fsm/fsm.h"
#include "fsm/fsm_int.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* Lines as YAML counts them: LF, CR, CR LF, and NEL/LS/PS all break a line;
   so at most one line per byte, plus the last. */
static size_t max_lines(size_t size)
{
    return size + 1;
}

static struct tg_update *text_update(const char *text)
{
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_puts(&b,
                "{\"update_id\":1,\"message\":{\"message_id\":5,\"date\":1,\"chat\":{\"id\":42,"
                "\"type\":\"private\"},\"from\":{\"id\":7,\"is_bot\":false,\"first_name\":\"A\"},"
                "\"text\":");
    vn_buf_json_str(&b, text);
    if (text[0] == '/')
        vn_buf_printf(&b, ",\"entities\":[{\"type\":\"bot_command\",\"offset\":0,\"length\":%zu}]",
                      strcspn(text, " "));
    vn_buf_puts(&b, "}}");
    struct tg_update *u = tg_update_parse(b.data, b.len, NULL, NULL);
    vn_buf_free(&b);
    return u;
}

static struct tg_update *callback_update(const char *data)
{
    char buf[512];
    struct vn_buf d = VN_BUF_INIT;
    vn_buf_json_str(&d, data);
    snprintf(buf, sizeof(buf),
             "{\"update_id\":2,\"callback_query\":{\"id\":\"q\",\"from\":{\"id\":7,\"is_bot\":"
             "false,\"first_name\":\"A\"},\"chat_instance\":\"c\",\"data\":%s,\"message\":{"
             "\"message_id\":9,\"date\":1,\"chat\":{\"id\":42,\"type\":\"private\"}}}}",
             d.data);
    vn_buf_free(&d);
    return tg_update_parse(buf, strlen(buf), NULL, NULL);
}

/* One step with the engine's promises checked; the conversation moves on. */
static void step(const struct fsm_set *set, struct fsm_conv *conv, const struct fsm_input *in,
                 int64_t now)
{
    struct fsm_ctx ctx = {now, 42, 7, "ru", NULL, "bot"};
    struct fsm_result r;
    int rc = fsm_step(set, conv, in, &ctx, &r);
    if (rc != 0) {
        CHECK(in->kind == FSM_IN_START);
        CHECK(r.reason[0] != '\0');
        return;
    }
    CHECK(r.effects != NULL && json_object_is_type(r.effects, json_type_array));
    CHECK(r.next.data != NULL && json_object_is_type(r.next.data, json_type_object));
    CHECK((r.next.flow == NULL) == (r.next.state == NULL));
    CHECK(r.next.flow != NULL || r.next.timeout_at == 0);
    size_t n = json_object_array_length(r.effects);
    CHECK(n <= set->limits.max_effects + 1);
    const struct tg_update *u = in->kind == FSM_IN_UPDATE ? in->update : NULL;
    size_t answers = 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(r.effects, i), *k = NULL;
        CHECK(json_object_object_get_ex(e, "kind", &k));
        const char *kind = json_object_get_string(k);
        if (strcmp(kind, "answer_callback") == 0)
            answers++;
        if (strcmp(kind, "send") == 0 || strcmp(kind, "edit") == 0)
            CHECK(json_object_object_get_ex(e, "vars", NULL));
    }
    /* every callback query gets exactly one answer; nothing else gets one */
    CHECK(answers == (u != NULL && u->kind == TG_UPDATE_CALLBACK_QUERY ? 1u : 0u));
    if (r.outcome == FSM_OUT_REJECTED)
        CHECK(r.reason[0] != '\0');
    /* the whole result serializes (the runtime stores it) */
    CHECK(json_object_to_json_string(r.effects) != NULL);
    fsm_conv_cleanup(conv);
    *conv = r.next;
    memset(&r.next, 0, sizeof(r.next));
    fsm_result_cleanup(&r);
}

static void say(const struct fsm_set *set, struct fsm_conv *conv, const char *text, int64_t now)
{
    struct tg_update *u = text_update(text);
    if (u == NULL)
        return;
    struct fsm_input in = {FSM_IN_UPDATE, u, NULL, NULL, 0, NULL};
    step(set, conv, &in, now);
    tg_update_free(u);
}

static void press(const struct fsm_set *set, struct fsm_conv *conv, const char *data, int64_t now)
{
    struct tg_update *u = callback_update(data);
    if (u == NULL)
        return;
    struct fsm_input in = {FSM_IN_UPDATE, u, NULL, NULL, 0, NULL};
    step(set, conv, &in, now);
    tg_update_free(u);
}

static void drive(const struct fsm_set *set)
{
    static const char *const texts[] = {"5",          "0",     "a@b.co",  "завтра 9:00",
                                        "in 2 hours", "yes",   "no",      "none",
                                        "skip",       "hello", "/cancel", "/help"};
    static const char *const cbs[] = {"yes", "no:1", "menu:x", "zzz", "lang:ru"};
    struct fsm_conv conv;
    int64_t now = 1795256253250LL;
    memset(&conv, 0, sizeof(conv));

    for (size_t f = 0; f < set->n_flows && f < 8; f++) {
        const struct fsm__flow *fl = set->flows[f];
        for (size_t c = 0; c < fl->n_commands && c < 2; c++) {
            char cmd[64];
            snprintf(cmd, sizeof(cmd), "/%s arg", fl->commands[c]);
            say(set, &conv, cmd, now);
        }
        for (size_t i = 0; i < VN_ARRAY_LEN(texts); i++)
            say(set, &conv, texts[i], now += 1000);
        for (size_t i = 0; i < VN_ARRAY_LEN(cbs); i++)
            press(set, &conv, cbs[i], now += 1000);
        /* the state's own callbacks and texts */
        for (size_t s = 0; s < fl->n_states && s < 8; s++) {
            const struct fsm__state *st = &fl->states[s];
            struct fsm_input api = {FSM_IN_START, NULL, fl->name, st->name, 0, NULL};
            step(set, &conv, &api, now += 1000);
            for (size_t t = 0; t < st->on.n && t < 8; t++) {
                const struct fsm__trans *tr = &st->on.v[t];
                if (tr->str != NULL &&
                    (tr->kind == FSM_TRIG_CALLBACK || tr->kind == FSM_TRIG_CALLBACK_PREFIX))
                    press(set, &conv, tr->str, now += 1000);
                else if (tr->str != NULL && tr->kind == FSM_TRIG_TEXT)
                    say(set, &conv, tr->str, now += 1000);
            }
            if (conv.timeout_at != 0 && conv.flow != NULL) {
                struct fsm_input to = {FSM_IN_TIMEOUT,  NULL, conv.flow, conv.state,
                                       conv.timeout_at, NULL};
                char *flow = xstrdup(conv.flow), *state = xstrdup(conv.state);
                to.flow = flow;
                to.state = state;
                step(set, &conv, &to, conv.timeout_at);
                free(flow);
                free(state);
            }
        }
    }
    fsm_conv_cleanup(&conv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fsm_source src = {"fuzz.yaml", (const char *)data, size};
    struct fsm_diag diag;
    struct fsm_load_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.limits.max_nodes = 20000; /* keep each run quick */
    fsm_diag_init(&diag);
    struct fsm_set *set = fsm_set_load_mem(&src, 1, &opts, &diag);
    size_t lines = max_lines(size);
    if (set == NULL) {
        CHECK(diag.n > 0);
    } else {
        CHECK(diag.n == 0);
    }
    for (size_t i = 0; i < diag.n; i++) {
        const struct fsm_problem *p = &diag.v[i];
        CHECK(p->msg != NULL && p->msg[0] != '\0');
        CHECK(p->line >= 0 && (size_t)p->line <= lines);
        CHECK(p->line == 0 || p->col >= 1);
        CHECK(strcmp(p->file, "fuzz.yaml") == 0);
    }
    if (set != NULL) {
        struct vn_buf g = VN_BUF_INIT;
        CHECK(fsm_graph(set, NULL, FSM_GRAPH_MERMAID, &g) == 0);
        CHECK(fsm_graph(set, NULL, FSM_GRAPH_DOT, &g) == 0);
        vn_buf_free(&g);
        drive(set);
    }
    fsm_set_free(set);
    fsm_diag_cleanup(&diag);
    return 0;
}
