/*
 * fsm_int.h - the flow model shared by the loader, the checks, the graph
 * export and the step engine. Internal to fsm/ (names fsm__...).
 *
 * Ownership: a struct fsm_set owns everything reachable from it. All model
 * memory comes from one arena (freed at once by fsm_set_free()); the few
 * objects with their own destructors (compiled regexes, json-c literals) are
 * registered with the arena and released with it. After loading, a set is
 * never written again, so the runtime may share it between steps freely.
 */
#ifndef VN_FSM_INT_H
#define VN_FSM_INT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsm/fsm.h"

struct json_object;

/* ---- arena -------------------------------------------------------------- */

struct fsm__chunk;
struct fsm__arena {
    struct fsm__chunk *head;
    regex_t **regexes; /* regfree()d on release */
    size_t n_regexes, cap_regexes;
    struct json_object **jsons; /* json_object_put() on release */
    size_t n_jsons, cap_jsons;
};

void *fsm__alloc(struct fsm__arena *a, size_t n); /* zeroed, never NULL */
char *fsm__strdup(struct fsm__arena *a, const char *s);
char *fsm__strndup(struct fsm__arena *a, const char *s, size_t n);
void fsm__arena_keep_regex(struct fsm__arena *a, regex_t *re);
void fsm__arena_keep_json(struct fsm__arena *a, struct json_object *j);
void fsm__arena_release(struct fsm__arena *a);

/* Where something was written: file (interned in the set), 1-based line and
   column, and the dotted path ("flows.remind.states.ask.on[2]"). */
struct fsm__pos {
    const char *file;
    int line, col;
    const char *path;
};

/* ---- values: literals, references, interpolations ---------------------- */

enum fsm__ref_root {
    FSM_REF_DATA,     /* data[.a.b]: collected data (whole object without a path) */
    FSM_REF_INPUT,    /* the message text, trimmed */
    FSM_REF_VALUE,    /* the parsed value of an input trigger */
    FSM_REF_ARG,      /* the command's argument ("/start PAYLOAD") */
    FSM_REF_CALLBACK, /* the callback data */
    FSM_REF_SUFFIX,   /* callback data after the matched callback_prefix */
    FSM_REF_MATCH,    /* regex match: whole (sub 0) or group 1..9 */
    FSM_REF_CONTACT,  /* sub: FSM_SUB_* */
    FSM_REF_LOCATION,
    FSM_REF_USER,
    FSM_REF_CHAT,
    FSM_REF_MESSAGE,
    FSM_REF_NOW,    /* RFC 3339 in the user's time zone */
    FSM_REF_ERROR,  /* why the input was invalid ("not_integer", ...) */
    FSM_REF_LOCALE, /* the context locale */
    FSM_REF_FLOW,   /* the current flow's name */
    FSM_REF_STATE,  /* the current state's name */
};

enum fsm__ref_sub {
    FSM_SUB_NONE = 0,
    FSM_SUB_PHONE,
    FSM_SUB_FIRST_NAME,
    FSM_SUB_LAST_NAME,
    FSM_SUB_USER_ID,
    FSM_SUB_LATITUDE,
    FSM_SUB_LONGITUDE,
    FSM_SUB_ID,
    FSM_SUB_USERNAME,
    FSM_SUB_LANGUAGE,
};

struct fsm__ref {
    enum fsm__ref_root root;
    int sub;           /* enum fsm__ref_sub, or the group number for match */
    const char **path; /* data only: segments after "data" */
    size_t n_path;
};

enum fsm__val_kind {
    FSM_VAL_LIT,    /* lit (NULL = JSON null) */
    FSM_VAL_REF,    /* ref: the referenced value with its type */
    FSM_VAL_INTERP, /* parts: a string with ${ref} inside */
    FSM_VAL_OBJ,    /* keys/items */
    FSM_VAL_ARR,    /* items */
};

struct fsm__val;
struct fsm__part {
    const char *text; /* literal text, or NULL for a reference */
    struct fsm__ref ref;
};

struct fsm__val {
    enum fsm__val_kind kind;
    struct json_object *lit;
    struct fsm__ref ref;
    struct fsm__part *parts;
    size_t n_parts;
    const char **keys;
    struct fsm__val *items;
    size_t n_items;
};

/* ---- guard expressions -------------------------------------------------- */

enum fsm__expr_kind {
    FSM_EX_OR,
    FSM_EX_AND,
    FSM_EX_NOT,
    FSM_EX_CMP,    /* a op b */
    FSM_EX_EXISTS, /* a exists */
    FSM_EX_TRUTHY, /* a used as a condition */
    FSM_EX_LIT,
    FSM_EX_REF,
};

enum fsm__cmp { FSM_CMP_EQ, FSM_CMP_NE, FSM_CMP_LT, FSM_CMP_LE, FSM_CMP_GT, FSM_CMP_GE };

struct fsm__expr {
    enum fsm__expr_kind kind;
    enum fsm__cmp op;
    struct fsm__expr *a, *b;
    struct json_object *lit; /* FSM_EX_LIT; NULL = null */
    struct fsm__ref ref;     /* FSM_EX_REF */
};

/*
 * Compile a guard. On error returns NULL and writes the message and the byte
 * offset in src where it went wrong.
 */
struct fsm__expr *fsm__expr_parse(struct fsm__arena *a, const char *src, char *err, size_t errlen,
                                  size_t *err_off);
/* Parse "data.x", "match.2", "user.id", ... (no '$'); 0 or -1 with err set. */
int fsm__ref_parse(struct fsm__arena *a, const char *s, size_t len, struct fsm__ref *out, char *err,
                   size_t errlen);
/* The reference written back as text ("data.a.b"), for graphs and messages. */
void fsm__ref_format(const struct fsm__ref *r, struct vn_buf *out);

/* ---- keyboards ---------------------------------------------------------- */

enum fsm__kbd_kind { FSM_KBD_INLINE, FSM_KBD_REPLY, FSM_KBD_REMOVE };

struct fsm__button {
    const char *text;  /* literal label */
    const char *label; /* template key of the label */
    struct fsm__pos label_pos;
    struct fsm__val *data;                  /* inline: callback data */
    const char *url;                        /* inline: a link instead of data */
    bool request_contact, request_location; /* reply */
    struct fsm__pos pos;
};

struct fsm__kbd {
    enum fsm__kbd_kind kind;
    struct fsm__button **rows;
    size_t *row_len;
    size_t n_rows;
    bool one_time, resize;
};

/* ---- actions -------------------------------------------------------------- */

enum fsm__act_kind {
    FSM_ACT_SEND,
    FSM_ACT_EDIT,
    FSM_ACT_EDIT_MARKUP,
    FSM_ACT_ANSWER,
    FSM_ACT_SET,
    FSM_ACT_CLEAR,
    FSM_ACT_PUBLISH,
};

struct fsm__action {
    enum fsm__act_kind kind;
    struct fsm__pos pos;
    const char *tmpl; /* send, edit, answer (template key) */
    struct fsm__pos tmpl_pos;
    const char *text;        /* answer: literal text */
    bool alert;              /* answer */
    struct fsm__kbd *kbd;    /* send, edit, edit_markup; NULL = none */
    bool kbd_remove;         /* edit_markup: remove the buttons */
    struct fsm__val *target; /* edit, edit_markup: message id; NULL = the callback's message */
    struct fsm__val *locale; /* send, edit, answer: NULL = the context locale */
    const char *remember;    /* send: data field for the sent message's id */
    struct fsm__val *vars;   /* send, edit, answer: extra template variables (object) */
    const char **fields;     /* set: names; clear: names */
    struct fsm__val *values; /* set: values, parallel to fields */
    size_t n_fields;
    bool clear_all;           /* clear: "*" */
    const char *event;        /* publish */
    struct fsm__val *payload; /* publish (object) */
};

enum fsm__ctrl_kind { FSM_CTRL_NONE, FSM_CTRL_GOTO, FSM_CTRL_END, FSM_CTRL_FLOW };

struct fsm__flow;
struct fsm__state;

/* What happens after a list of actions: stay, go to a state, end, or
   start another flow. Resolved to pointers by the checks. */
struct fsm__ctrl {
    enum fsm__ctrl_kind kind;
    const char *name; /* state or flow name */
    struct fsm__pos pos;
    const struct fsm__state *state;
    const struct fsm__flow *flow;
};

struct fsm__acts {
    struct fsm__action *v;
    size_t n;
    struct fsm__ctrl ctrl;
    bool present;
    struct fsm__pos pos;
};

/* ---- triggers and transitions -------------------------------------------- */

enum fsm__trig_kind {
    FSM_TRIG_NONE = 0, /* entry items have none */
    FSM_TRIG_COMMAND,
    FSM_TRIG_TEXT,
    FSM_TRIG_REGEX,
    FSM_TRIG_ANY_TEXT,
    FSM_TRIG_CALLBACK,
    FSM_TRIG_CALLBACK_PREFIX,
    FSM_TRIG_CONTACT,
    FSM_TRIG_LOCATION,
    FSM_TRIG_INPUT,
    FSM_TRIG_TIMEOUT,
};

enum fsm__input_type {
    FSM_ITYPE_TEXT,
    FSM_ITYPE_INTEGER,
    FSM_ITYPE_EMAIL,
    FSM_ITYPE_DATETIME,
    FSM_ITYPE_CHOICE,
};

struct fsm__choice {
    const char *value;
    const char **match; /* folded spellings that select it, value included */
    size_t n_match;
};

struct fsm__trans {
    enum fsm__trig_kind kind;
    struct fsm__pos pos;      /* the transition */
    struct fsm__pos trig_pos; /* its trigger value */
    const char *str;          /* command name (no '/'), text, regex source, callback data/prefix */
    const char *folded;       /* text with ignore_case: folded */
    bool ignore_case;
    regex_t *re;
    enum fsm__input_type input;
    bool has_min, has_max;
    int64_t min, max; /* integer bounds; text: length bounds in characters */
    bool future;      /* datetime must be after now */
    struct fsm__choice *choices;
    size_t n_choices;
    const char *save; /* data field receiving the parsed value */
    int64_t timeout_ms;
    const char *timeout_text; /* as written ("10m"), for graphs */
    struct fsm__expr *guard;
    const char *guard_src;
    struct fsm__acts acts;
};

struct fsm__trans_list {
    struct fsm__trans *v;
    size_t n;
};

struct fsm__state {
    const char *name;
    struct fsm__pos pos;
    const struct fsm__flow *flow;
    struct fsm__acts enter;
    struct fsm__trans_list on;
    struct fsm__acts invalid;
    bool api;
    const struct fsm__trans *timeout; /* the state's timeout trigger, if any */
};

struct fsm__flow {
    const char *name;
    struct fsm__pos pos;
    const char *description;
    const char **commands; /* without '/' */
    struct fsm__pos *command_pos;
    size_t n_commands;
    const char *start_name;
    struct fsm__pos start_pos;
    const struct fsm__state *start;
    struct fsm__trans_list entry; /* trigger-less: when/do/goto */
    struct fsm__trans_list on;    /* every state of this flow */
    struct fsm__acts fallback;
    struct fsm__state *states;
    size_t n_states;
};

/* Set-wide settings that may be given once across the files of a set. */
struct fsm__setting {
    bool present;
    struct fsm__pos pos;
};

struct fsm_set {
    struct fsm__arena arena;
    struct fsm_limits limits;
    const char **files;
    size_t n_files;
    struct fsm__flow **flows; /* arena; pointers stay put as files are added */
    size_t n_flows, cap_flows;
    struct fsm__trans_list global;
    struct fsm__acts fallback; /* unmatched input inside a flow */
    struct fsm__acts deflt;    /* no flow active and nothing matched */
    const char *stale_callback;
    struct fsm__setting s_fallback, s_default, s_stale;
    struct fsm__pos stale_pos;
};

const struct fsm__flow *fsm__find_flow(const struct fsm_set *set, const char *name);
const struct fsm__state *fsm__find_state(const struct fsm__flow *f, const char *name);

/* ---- diagnostics ---------------------------------------------------------- */

void fsm__diag_add(struct fsm_diag *d, const struct fsm__pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sort problems [from, n) by file (in the order of files), line, column. */
void fsm__diag_sort(struct fsm_diag *d, size_t from, const char *const *files, size_t n_files);

/* Levenshtein distance, capped: for "did you mean" hints. */
size_t fsm__edit_distance(const char *a, const char *b, size_t cap);

/* ---- loader and checks ---------------------------------------------------- */

/* Parse one YAML document into the set (flows appended). Problems go to diag. */
void fsm__load_yaml(struct fsm_set *set, const char *file, const char *buf, size_t len,
                    struct fsm_diag *diag);
/* Cross-checks over the whole set; resolves names to pointers. */
void fsm__check(struct fsm_set *set, const struct fsm_load_opts *opts, struct fsm_diag *diag);

/* ---- text helpers (fsm_text.c) -------------------------------------------- */

/* Lowercase ASCII and Cyrillic, trim, and collapse runs of whitespace to one
   space. Returns a heap string the caller frees. */
char *fsm__fold(const char *s);
/* UTF-8 code points in s (invalid bytes count as one each). */
size_t fsm__utf8_len(const char *s);
/* Trimmed copy (ASCII whitespace), heap. */
char *fsm__trim(const char *s);

/* Input parsers: 0 with *out set (a new json object), or -1 with the error
   code ("not_integer", "too_small", ...) in *err. */
int fsm__parse_input(const struct fsm__trans *t, const char *text, int64_t now_ms,
                     const struct fsm_tz *tz, struct json_object **out, const char **err);

/* Shortest JSON number for d (json-c's own printing can add digits). */
struct json_object *fsm__json_double(double d);

/* Durations: "45s", "10m", "2h", "1h30m", "1d", or an integer count of
   seconds; 0 or -1. */
int fsm__parse_duration(const char *s, int64_t *ms);
void fsm__format_duration(int64_t ms, char *buf, size_t len);

#endif
