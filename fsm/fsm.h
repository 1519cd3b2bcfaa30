/*
 * fsm.h - conversation flows: definitions, checks, graphs, and the step engine.
 *
 * A bot author writes flows in YAML files (docs/flows.md is the reference).
 * This module loads a set of such files into an immutable struct fsm_set,
 * reporting every problem it finds with file, line, column and path; draws
 * flows as Mermaid or Graphviz DOT; and runs one conversation step:
 *
 *     (set, conversation, input, context) -> (new conversation, effects)
 *
 * The step engine is pure: no I/O, no clock (the context carries now), no
 * randomness, no globals. The same arguments always give the same result,
 * byte for byte. It is bounded (struct fsm_limits) and never crashes on any
 * input; what it cannot do it reports in the result.
 *
 * Effects are a JSON array (json-c) that the runtime stores in its outbox
 * with the commit and carries out afterwards; docs/flows.md ("Effects")
 * documents every effect's shape.
 *
 * Loading reads files (I/O), once, at start and on SIGHUP; a set is never
 * written after loading, so one set may serve every step until it is
 * replaced, and the runtime frees the old one after the last step using it.
 */
#ifndef VN_FSM_H
#define VN_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct tg_update;
struct vn_buf;
struct vn_config;
struct fsm_tz; /* fsm/fsm_date.h */

/* ---- limits --------------------------------------------------------------- */

/* Bounds; fsm_limits_default() gives the values noted here. A zero field in
   struct fsm_load_opts.limits means "the default". */
struct fsm_limits {
    size_t max_file;    /* bytes of one flow file (1 MiB) */
    size_t max_files;   /* files in one set (256) */
    size_t max_nodes;   /* YAML nodes visited per file, aliases expanded (200000) */
    size_t max_data;    /* conversation data as compact JSON, bytes (16 KiB) */
    size_t max_effects; /* effects per step (64) */
    size_t max_actions; /* actions run per step (256) */
    size_t max_text;    /* message text looked at, bytes (16 KiB); longer text
                           matches no text trigger */
};

struct fsm_limits fsm_limits_default(void);

/* ---- problems --------------------------------------------------------------- */

/* One problem in a flow file. line and col are 1-based; 0 when the problem
   concerns the whole file. path is dotted ("flows.remind.states.ask.on[2]"),
   "" for the document as a whole. */
struct fsm_problem {
    char *file;
    int line, col;
    char *path;
    char *msg;
};

/* Every problem found, sorted by file (in the order given), line, column.
   At most 1000 are kept; dropped counts the rest. */
struct fsm_diag {
    struct fsm_problem *v;
    size_t n, cap;
    size_t dropped;
};

void fsm_diag_init(struct fsm_diag *d);
void fsm_diag_cleanup(struct fsm_diag *d);
/* Append "file:line:col: path: message\n" per problem ("file: message" when
   line is 0, no "path: " when path is empty). */
void fsm_diag_format(const struct fsm_diag *d, struct vn_buf *out);

/* ---- loading -------------------------------------------------------------- */

/* Does a template with this name exist? The runtime passes its template set;
   see also fsm_name_list_has(). */
typedef bool (*fsm_template_exists_fn)(const char *name, void *ud);

struct fsm_load_opts {
    fsm_template_exists_fn template_exists; /* NULL: template names are not checked */
    void *template_ud;
    struct fsm_limits limits;
};

/* A NULL-terminated array of names as a template_ud for fsm_name_list_has. */
bool fsm_name_list_has(const char *name, void *names);

/* One flow file held in memory; name is used in problems. */
struct fsm_source {
    const char *name;
    const char *data;
    size_t len;
};

/*
 * Load and check a set. Every problem found goes to diag (which must be
 * initialised; problems are appended). Returns the set, or NULL when there was
 * any problem. opts may be NULL (no template check, default limits).
 * Free with fsm_set_free().
 */
struct fsm_set *fsm_set_load_mem(const struct fsm_source *src, size_t n,
                                 const struct fsm_load_opts *opts, struct fsm_diag *diag);
/* The same from files; a file that cannot be read is a problem. */
struct fsm_set *fsm_set_load_files(const char *const *paths, size_t n,
                                   const struct fsm_load_opts *opts, struct fsm_diag *diag);
/* Every *.yaml and *.yml file directly in dir, in byte order of their names. */
struct fsm_set *fsm_set_load_dir(const char *dir, const struct fsm_load_opts *opts,
                                 struct fsm_diag *diag);
void fsm_set_free(struct fsm_set *set); /* NULL is a no-op */

size_t fsm_set_flow_count(const struct fsm_set *set);
/* Every template name the set refers to, once each, in byte order. */
void fsm_set_templates(const struct fsm_set *set, void (*cb)(const char *name, void *ud), void *ud);
/* Every command that enters a flow ("remind", no '/'), in declaration order. */
void fsm_set_commands(const struct fsm_set *set,
                      void (*cb)(const char *command, const char *flow, void *ud), void *ud);
/* Is (flow, state) a place POST /v1/conversations may start? state NULL = the
   start state. 0, VN_ENOENT (no such flow or state) or VN_ECONFLICT (the state
   is not marked api: true). */
int fsm_set_api_enterable(const struct fsm_set *set, const char *flow, const char *state);

/* ---- conversations and steps ------------------------------------------------ */

/*
 * One user's conversation in one chat, as the runtime stores it.
 * flow is NULL when no flow is active (then state is NULL too). data is a JSON
 * object of collected fields (NULL reads as {}). entered_at is when the
 * current state was entered; timeout_at is the deadline of the pending state
 * timeout (0 = none): the runtime must store it, since a timeout input is
 * honoured only when its at_ms equals it (stale timers are ignored).
 */
struct fsm_conv {
    char *flow;
    char *state;
    struct json_object *data;
    int64_t entered_at; /* ms since the epoch */
    int64_t timeout_at; /* ms since the epoch, 0 = none */
};

void fsm_conv_cleanup(struct fsm_conv *c); /* frees members; NULL-safe */

enum fsm_input_kind {
    FSM_IN_UPDATE,  /* a Telegram update */
    FSM_IN_TIMEOUT, /* a state timeout fired (from a schedule_timeout effect) */
    FSM_IN_START,   /* POST /v1/conversations: start flow at state with data */
};

struct fsm_input {
    enum fsm_input_kind kind;
    const struct tg_update *update; /* UPDATE */
    const char *flow;               /* TIMEOUT, START */
    const char *state;              /* TIMEOUT; START: NULL = the flow's start */
    int64_t at_ms;                  /* TIMEOUT: the at_ms of the schedule_timeout */
    const struct json_object *data; /* START: initial data (an object), or NULL */
};

/* What the step may know about the world. */
struct fsm_ctx {
    int64_t now_ms;
    int64_t chat_id; /* put into send/edit effects */
    int64_t user_id;
    const char *locale;       /* the user's locale ("ru"); NULL = not put into effects */
    const struct fsm_tz *tz;  /* the user's time zone; NULL = UTC */
    const char *bot_username; /* "/cmd@other_bot" is ignored; NULL = accept every command */
};

enum fsm_outcome {
    FSM_OUT_IGNORED,    /* nothing to do: edited message, other update kinds, a
                           command for another bot, a stale timeout */
    FSM_OUT_TRANSITION, /* a transition fired */
    FSM_OUT_ENTERED,    /* a flow was entered (command, API start) */
    FSM_OUT_REPROMPT,   /* input failed validation; stayed, re-prompted */
    FSM_OUT_FALLBACK,   /* nothing matched inside a flow; the fallback ran */
    FSM_OUT_DEFAULT,    /* no flow active, nothing matched; the default ran */
    FSM_OUT_UNMATCHED,  /* nothing matched and nothing was defined for it */
    FSM_OUT_REJECTED,   /* a limit was hit: state unchanged, reason says why */
};

const char *fsm_outcome_name(enum fsm_outcome o);

struct fsm_result {
    struct fsm_conv next;        /* the conversation after the step (owned) */
    struct json_object *effects; /* JSON array (owned) */
    enum fsm_outcome outcome;
    bool changed;     /* next differs from the conversation given */
    char reason[256]; /* REJECTED, or a refused START: why */
};

void fsm_result_cleanup(struct fsm_result *r); /* NULL-safe */

/*
 * Run one step. cur is not modified; NULL (or all zero) is a conversation with no
 * flow and no data. Returns 0 with *out filled (release with
 * fsm_result_cleanup), including when the outcome is REJECTED: commit it as
 * usual (the state is unchanged; a callback query still gets its answer).
 * Returns a negative code, with out->reason set and nothing else to release,
 * only for an input the caller should refuse: a START naming an unknown flow
 * or state (VN_ENOENT), a state not open to the API (VN_ECONFLICT), data that
 * is not an object or over the limit (VN_EINVAL, VN_ETOOBIG); or missing
 * arguments (VN_EINVAL).
 */
int fsm_step(const struct fsm_set *set, const struct fsm_conv *cur, const struct fsm_input *in,
             const struct fsm_ctx *ctx, struct fsm_result *out);

/* ---- graphs ------------------------------------------------------------------- */

enum fsm_graph_format { FSM_GRAPH_MERMAID, FSM_GRAPH_DOT };

/* Append a state diagram of one flow (or every flow when flow is NULL) to
   out. 0, or VN_ENOENT for an unknown flow. */
int fsm_graph(const struct fsm_set *set, const char *flow, enum fsm_graph_format fmt,
              struct vn_buf *out);

/* ---- command line ---------------------------------------------------------- */

/* `vestnik flow check|graph|templates ...` with argv[0] = "flow". cfg is not
   used and may be NULL (so main() can dispatch before loading the config).
   Exit codes: 0 clean, 1 problems found, 2 usage. */
int fsm_cli_main(const struct vn_config *cfg, int argc, char **argv);

#endif
