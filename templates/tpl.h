/*
 * tpl.h - the template engine: Mustache with filters, compiled once and
 * rendered many times against JSON data, escaping chosen by the output target.
 *
 * Pure: no I/O, no globals. A compiled template (struct tpl) is immutable and
 * may be rendered from several threads at once; a struct tpl_fmt_cache (ICU
 * formatters) belongs to one thread. docs/templates.md is the user guide;
 * this header is the contract.
 *
 * Language
 *   Mustache (spec v1.3 core: interpolation, dotted names, sections over
 *   lists, objects and scalars, inverted sections, comments, partials with
 *   standalone indentation, set delimiters; no lambdas), plus filters on
 *   interpolation tags:
 *       {{ due_at | datetime "short" }}
 *       {{ n | plural one="# задача" few="# задачи" many="# задач" other="# задачи" }}
 *   A tag without '|' means exactly what it means in Mustache. The filter list
 *   is in tpl_filter.c and docs/templates.md.
 *   Falsy for sections: missing, null, false, 0, "", [] (as mustache.js).
 *   Numeric name segments index arrays: {{items.0.title}}.
 *
 * Escaping
 *   The target is fixed when a template is compiled and decides how every
 *   value is written; template authors never choose it. {{x}}, {{{x}}} and
 *   {{& x}} are the same in every target but TPL_TARGET_MUSTACHE: data is
 *   never markup. Markup targets are escaped by context, found at compile
 *   time by scanning the template's own text (the idea of Go's html/template):
 *   HTML text, quoted attribute values, URL attributes (scheme allow-list,
 *   percent-encoding) and JSON strings vs JSON values. Tags where no escaping
 *   is safe (inside a tag name, an unquoted attribute, on* or style
 *   attributes, <script>, comments) are compile errors, and so is a section
 *   whose end is in another context than its start.
 *
 * Errors
 *   Every failure fills a struct tpl_error: a VN_E code, the template name,
 *   a 1-based line and column (columns count code points) and a message.
 *
 * Bounds (struct tpl_limits): source size, section nesting, partial nesting,
 *   output size and render steps, each failing with VN_ETOOBIG and a message
 *   naming the bound.
 */
#ifndef VN_TPL_H
#define VN_TPL_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

struct json_object;

enum tpl_target {
    TPL_TARGET_TEXT,       /* plain text; values as they are (UTF-8 repaired, NUL -> U+FFFD) */
    TPL_TARGET_LINE,       /* one line of text (email subject): whitespace and control
                              characters collapse to single spaces, ends trimmed */
    TPL_TARGET_TG_HTML,    /* Telegram parse_mode HTML */
    TPL_TARGET_TG_MD2,     /* Telegram parse_mode MarkdownV2 */
    TPL_TARGET_EMAIL_HTML, /* an HTML e-mail body */
    TPL_TARGET_JSON,       /* a JSON document (WebSocket payloads); output is validated */
    TPL_TARGET_MUSTACHE,   /* classic Mustache: {{x}} escapes & < > ", {{{x}}} is raw.
                              For trusted data only (spec tests, compatibility); no
                              channel uses it */
    TPL_TARGET__COUNT
};

/* "text", "line", "telegram_html", "telegram_md2", "email_html", "json", "mustache". */
const char *tpl_target_name(enum tpl_target t);
/* Inverse of tpl_target_name; -1 if unknown. */
int tpl_target_parse(const char *s);

struct tpl_limits {
    size_t max_source;          /* template bytes */
    unsigned max_depth;         /* sections nested in one template (at most 64) */
    unsigned max_partial_depth; /* partials nested at render time */
    size_t max_output;          /* bytes one render may produce */
    uint64_t max_steps;         /* tags, text runs and list items one render may visit */
};

#define TPL_MAX_SOURCE        (256u * 1024u)
#define TPL_MAX_DEPTH         32u
#define TPL_MAX_PARTIAL_DEPTH 16u
#define TPL_MAX_OUTPUT        (1024u * 1024u)
#define TPL_MAX_STEPS         1000000u

/* The defaults above; used wherever a NULL limits pointer is passed. */
const struct tpl_limits *tpl_limits_default(void);

struct tpl_error {
    int code;           /* 0, or a negative VN_E code */
    char file[256];     /* template name as given to tpl_compile (truncated), or "" */
    unsigned line, col; /* 1-based; 0 when the error has no position */
    char msg[256];
};

/* Append "file:line:col: msg" (parts that are unknown are left out). */
void tpl_error_format(const struct tpl_error *e, struct vn_buf *out);

struct tpl;

struct tpl_compile_opts {
    const char *name;                /* for error messages, e.g. the file path; NULL = "" */
    enum tpl_target target;          /* how values are escaped; see above */
    const struct tpl_limits *limits; /* NULL = tpl_limits_default() */
};

/*
 * Compile src[0..len) (UTF-8; invalid bytes are a compile error). Returns a
 * new template the caller frees with tpl_free(), or NULL with *err filled
 * (VN_EINVAL for syntax, unknown filters and unsafe tag positions, VN_ETOOBIG
 * for a bound). err may be NULL.
 */
struct tpl *tpl_compile(const char *src, size_t len, const struct tpl_compile_opts *opts,
                        struct tpl_error *err);
void tpl_free(struct tpl *t);

enum tpl_target tpl_get_target(const struct tpl *t);
const char *tpl_get_name(const struct tpl *t);

/* The partials the template names ({{> name}}), in source order, duplicates
 * included; for loaders that check every partial exists. */
size_t tpl_partial_count(const struct tpl *t);
const char *tpl_partial_name(const struct tpl *t, size_t i, unsigned *line, unsigned *col);

/*
 * Partial lookup at render time: the template to render for {{> name}}, or
 * NULL when there is none (renders empty, or fails in strict mode). The
 * result must have the same target and stay valid for the whole render.
 */
typedef const struct tpl *(*tpl_partial_fn)(const char *name, enum tpl_target target, void *ud);

/*
 * ICU formatters (dates, numbers, plural rules, ...) are costly to open, so
 * renders reuse them through a cache keyed by locale, time zone and style.
 * One cache per thread; it never needs flushing (entries are immutable).
 */
struct tpl_fmt_cache;
struct tpl_fmt_cache *tpl_fmt_cache_new(void);
void tpl_fmt_cache_free(struct tpl_fmt_cache *c);

struct tpl_render_opts {
    const char *locale;              /* BCP 47 ("ru-RU", "en"); NULL = "en" */
    const char *tz;                  /* IANA zone ("Europe/Moscow"); NULL = "UTC" */
    int64_t now_ms;                  /* "now" for relative times; 0 = the wall clock */
    int strict;                      /* missing names, missing partials, unknown time zones
                                        and values a filter cannot read are errors */
    const struct tpl_limits *limits; /* NULL = tpl_limits_default() */
    tpl_partial_fn partial;          /* NULL = no partials */
    void *partial_ud;
    struct tpl_fmt_cache *cache; /* NULL = a cache for this render only (slower) */
};

/*
 * Render t with data as the root context (any JSON value; NULL is null),
 * appending to out. opts may be NULL (defaults above). Returns 0, or a VN_E
 * code with *err filled (position = the tag that failed, in the template or
 * partial it is in); on error out is restored to its length before the call.
 * Not strict: a missing name renders empty and a value a filter cannot read
 * renders unchanged; an unknown time zone is UTC.
 */
int tpl_render(const struct tpl *t, struct json_object *data, const struct tpl_render_opts *opts,
               struct vn_buf *out, struct tpl_error *err);

/* 1 if tz is a time zone ICU knows ("Europe/Berlin", "UTC"), else 0. */
int tpl_tz_valid(const char *tz);
/* 1 if s looks like a BCP 47 tag we accept (letters, digits, '-' or '_',
 * language of 2-3 letters, at most 35 characters), else 0. */
int tpl_locale_valid(const char *s);

#endif
