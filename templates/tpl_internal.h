/*
 * tpl_internal.h - the compiled form of a template and what the parser,
 * the renderer, the escapers and the filters share. Module-internal: only
 * the .c files of templates/ and the unit tests include it.
 *
 * A template compiles to a flat array of ops. Sections hold the index of
 * their END op, so rendering a section is a loop over a sub-range and
 * skipping one is a jump. All strings (text runs, name segments, filter
 * arguments, partial names) live in one pool and are referenced by offset;
 * every pool string is NUL-terminated so json-c can look keys up directly.
 */
#ifndef VN_TPL_INTERNAL_H
#define VN_TPL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "templates/tpl.h"

enum tpl_opcode {
    TOP_TEXT,     /* a = pool offset, b = length */
    TOP_VAR,      /* a = name index, b = first filter call, c = number of calls */
    TOP_SECTION,  /* a = name index, b = index of the matching TOP_END */
    TOP_INVERTED, /* as TOP_SECTION */
    TOP_END,      /* a = index of the opening op */
    TOP_PARTIAL,  /* a = pool offset of the name, b = its length, c/d = indentation */
};

/* How a TOP_VAR writes its value: decided at compile time from the target
 * and the place in the template's markup (see tpl_context.c). */
enum tpl_esc {
    TESC_TEXT,       /* as is (UTF-8 repaired, NUL -> U+FFFD) */
    TESC_LINE,       /* as TESC_TEXT; the whole output is folded to one line afterwards */
    TESC_TG_TEXT,    /* Telegram HTML text: tg_escape_html */
    TESC_HTML_TEXT,  /* e-mail HTML text: & < > " ' */
    TESC_HTML_ATTR,  /* quoted attribute value (both HTML targets): & < > " ' */
    TESC_URL_START,  /* URL attribute, at the start of the URL: scheme allow-list */
    TESC_URL_PART,   /* URL attribute, after the start: percent-encode as a component */
    TESC_MD2,        /* Telegram MarkdownV2: tg_escape_md2 (text rules) */
    TESC_JSON_STR,   /* inside a JSON string literal */
    TESC_JSON_VALUE, /* where a JSON value goes: the value serialised as JSON */
    TESC_MUSTACHE,   /* classic Mustache HTML escape: & < > " */
    TESC_RAW,        /* classic Mustache {{{x}}}: nothing */
};

#define TOPF_HAS_DEFAULT 0x01 /* TOP_VAR: a `default` filter follows, missing is fine */
#define TOPF_STANDALONE  0x02 /* TOP_PARTIAL: stood alone on its line; c/d is the indent */
#define TOPF_TG_URL      0x04 /* TOP_VAR TESC_URL_START: Telegram's scheme list */

struct tpl_op {
    uint8_t code;
    uint8_t esc;
    uint8_t flags;
    uint32_t line, col;
    uint32_t a, b, c, d;
};

/* A dotted name: nseg segments from segs[seg]; nseg == 0 is "." */
struct tpl_name {
    uint32_t seg;
    uint32_t nseg;
    uint32_t text; /* pool offset of the whole name as written, for messages */
};

struct tpl_seg {
    uint32_t off, len; /* pool */
    int64_t index;     /* the segment as an array index, or -1 */
};

struct tpl_farg {
    uint32_t key, key_len; /* pool; key_len 0 = positional. "=N" keys keep the '=' */
    bool is_num;
    double num;
    uint32_t str, str_len; /* pool (the literal as written for numbers) */
    uint32_t line, col;
};

struct tpl_fcall {
    uint16_t fn; /* index into the filter table */
    uint16_t nargs;
    uint32_t arg; /* first argument in args[] */
    uint32_t line, col;
};

struct tpl {
    char *name;
    enum tpl_target target;
    struct tpl_op *ops;
    size_t nops;
    struct tpl_name *names;
    size_t nnames;
    struct tpl_seg *segs;
    size_t nsegs;
    struct tpl_fcall *calls;
    size_t ncalls;
    struct tpl_farg *args;
    size_t nargs;
    uint32_t *partials; /* op indices of TOP_PARTIAL, in source order */
    size_t npartials;
    char *pool;
    size_t pool_len;
};

static inline const char *tpl__str(const struct tpl *t, uint32_t off)
{
    return t->pool + off;
}

/* ---- values flowing through filters ---------------------------------- */

enum tval_kind {
    TV_MISSING, /* name not found */
    TV_JSON,    /* j (NULL = JSON null) */
    TV_STR,     /* s[0..len), owned by the render state's scratch buffers */
    TV_NUM,     /* num */
};

struct tval {
    enum tval_kind kind;
    struct json_object *j;
    const char *s;
    size_t len;
    double num;
};

/* Render state, shared with the filters. */
struct tpl_rs {
    const struct tpl_render_opts *o;
    struct tpl_limits lim;
    struct vn_buf *out;
    size_t out_start;
    struct json_object **stack;
    size_t depth, cap;
    unsigned pdepth;
    uint64_t steps;
    struct vn_buf indent; /* current partial indentation */
    bool pending_indent;  /* at the start of a line inside an indented partial */
    struct tpl_error *err;
    struct vn_buf scratch[2]; /* filter outputs alternate between these */
    struct vn_buf tmp;        /* stringified values */
    struct tpl_fmt_cache *cache;
    bool own_cache;
    const char *locale; /* BCP 47 as given */
    char icu_locale[96];
    const char *tz;
    int tz_state; /* 0 unchecked, 1 valid, -1 unknown (UTC used) */
    int64_t now_ms;
    const struct tpl *cur; /* the template whose ops run now (errors point into it) */
};

/* Fill rs->err for the op or call at line:col of the current template. */
int tpl__rs_fail(struct tpl_rs *rs, int code, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Stringify a value as interpolation shows it (strings as they are, numbers
 * shortest round-trip, true/false, null and missing empty, arrays and
 * objects as JSON). The result points into v, a static string or tmp. */
void tpl__stringify(const struct tval *v, struct vn_buf *tmp, const char **s, size_t *len);
/* Number for numeric filters: JSON numbers, TV_NUM, strings that parse fully
 * as a decimal number. Returns 0 or VN_EINVAL. */
int tpl__tval_number(const struct tval *v, double *out);
/* Shortest text that reads back as d ("1.21", "85", "-0.5"); "null" if not finite. */
void tpl__fmt_double(struct vn_buf *b, double d);

/* ---- filters (tpl_filter.c) ------------------------------------------ */

struct tpl_filter_def {
    const char *name;
    /* Compile-time check of the arguments: 0, or VN_EINVAL with msg filled
     * and *bad_arg set to the offending argument (-1 = the filter itself). */
    int (*check)(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t msgcap,
                 int *bad_arg);
    /* Transform *v in place; output text goes into out (a scratch buffer,
     * reset by the caller). 0 or a VN_E code with tpl__rs_fail() called. */
    int (*apply)(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c, struct tval *v,
                 struct vn_buf *out);
};

/* Index of the filter called name[0..len), or -1. */
int tpl__filter_find(const char *name, size_t len);
const struct tpl_filter_def *tpl__filter_get(int id);
/* Names of all filters, space separated (for "unknown filter" messages). */
const char *tpl__filter_names(void);
/* The filter id of `default` (the renderer lets missing values through to it). */
int tpl__filter_default_id(void);

/* Argument helpers shared by parser and filters. */
const struct tpl_farg *tpl__arg_named(const struct tpl *t, const struct tpl_fcall *c,
                                      const char *key);
const struct tpl_farg *tpl__arg_pos(const struct tpl *t, const struct tpl_fcall *c, unsigned i);
unsigned tpl__arg_npos(const struct tpl *t, const struct tpl_fcall *c);

/* RFC 3339 date-time (offset required; 'T', 't' or ' '; seconds and fraction
 * optional) or full-date (then *date_only is set and the instant is its UTC
 * midnight) to epoch milliseconds. 0 or VN_EINVAL. */
int tpl__parse_time(const char *s, size_t len, int64_t *ms, bool *date_only);

/* ---- escaping (tpl_escape.c) ----------------------------------------- */

/* Append s[0..len) to out, escaped the way esc says. flags: TOPF_TG_URL. */
void tpl__escape(struct vn_buf *out, enum tpl_esc esc, unsigned flags, const char *s, size_t len);
/* Serialise a JSON value (NULL = null) as compact JSON with UTF-8 repaired;
 * depth-limited (deeper levels become null). */
void tpl__json_write(struct vn_buf *out, struct json_object *j);
/* Append s as the inside of a JSON string, UTF-8 repaired. */
void tpl__json_escape(struct vn_buf *out, const char *s, size_t len);
/* Fold out[from..] to one line: whitespace and control runs -> one space, trimmed. */
void tpl__fold_line(struct vn_buf *out, size_t from);
/* 1 if the URL's scheme is allowed for the target (or it has none). */
int tpl__url_scheme_ok(const char *s, size_t len, bool telegram);

/* ---- context analysis (tpl_context.c) -------------------------------- */

/* Decide each TOP_VAR's escaping and reject unsafe tag positions. On error
 * fills err (position of the offending tag) and returns VN_EINVAL. */
int tpl__analyze(struct tpl *t, struct tpl_error *err);

/* ---- UTF-8 ----------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[i] (1..4) with its code point in
 * *cp, or 0 for a byte that starts no valid sequence. */
size_t tpl__utf8_seq(const unsigned char *s, size_t len, size_t i, uint32_t *cp);

/* Fill err with code, name, line:col and message. */
void tpl__set_error(struct tpl_error *err, int code, const char *file, unsigned line, unsigned col,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
