/*
 * tpl_set.h - a template set: one directory of templates for every channel
 * and locale, loaded and validated as a whole, immutable once loaded.
 *
 * Layout (docs/templates.md):
 *   DIR/<locale>/<name>.<part>.mustache   a template, part as in enum tpl_part
 *   DIR/<locale>/_<name>.mustache         a partial for any part
 *   DIR/<locale>/_<name>.<part>.mustache  a partial for one part
 *   DIR/samples/<name>.json               sample data for `vestnik template check`
 * <locale> is a BCP 47 tag (en, ru, pt-BR). Other top-level files (README)
 * are ignored; anything else unexpected is an error.
 *
 * Lookup falls back along a chain: the requested locale, then each shorter
 * prefix (ru-RU -> ru), then the default locale. Partials resolve along the
 * chain of the render, part-specific file before the part-less one in each
 * locale. Loading checks that every partial a template names resolves, that
 * every template of another locale also exists in the default locale (so
 * the chain always ends somewhere), and that e-mail has a subject and text.
 *
 * Reload: tpl_set_load() builds a new set and never touches the old one, so
 * the caller swaps pointers only when the new set loaded cleanly; a broken
 * directory keeps the running set (tpl_set_reload() does exactly that).
 * Sets are reference counted so a swap is safe while another thread still
 * renders from the old set; renders keep no pointer into a set afterwards.
 *
 * Loading reads files (blocking I/O, a few ms for a few hundred files); the
 * rest is pure.
 */
#ifndef VN_TPL_SET_H
#define VN_TPL_SET_H

#include "templates/tpl.h"

struct json_object;

enum tpl_part {
    TPL_PART_TELEGRAM,      /* NAME.telegram.mustache       Telegram HTML */
    TPL_PART_TELEGRAM_MD2,  /* NAME.telegram_md2.mustache   Telegram MarkdownV2 */
    TPL_PART_EMAIL_SUBJECT, /* NAME.email.subject.mustache  one line of text */
    TPL_PART_EMAIL_TEXT,    /* NAME.email.text.mustache     text/plain body */
    TPL_PART_EMAIL_HTML,    /* NAME.email.html.mustache     text/html body (optional) */
    TPL_PART_WEBSOCKET,     /* NAME.websocket.mustache      a JSON document */
    TPL_PART__COUNT
};

/* "telegram", "telegram_md2", "email.subject", "email.text", "email.html", "websocket" */
const char *tpl_part_name(enum tpl_part p);
/* Inverse of tpl_part_name; -1 if unknown. */
int tpl_part_parse(const char *s);
/* How a part escapes: telegram -> TPL_TARGET_TG_HTML, email.subject -> TPL_TARGET_LINE, ... */
enum tpl_target tpl_part_target(enum tpl_part p);

struct tpl_set_opts {
    const char *default_locale;      /* end of every fallback chain; NULL = "en" */
    const struct tpl_limits *limits; /* per template; NULL = tpl_limits_default() */
    size_t max_files;                /* 0 = 10000 */
    size_t max_bytes;                /* all files together; 0 = 64 MiB */
};

struct tpl_set;

/*
 * Load and validate every file under dir. On success returns 0 and *out is a
 * new set (one reference). Otherwise returns VN_ENOENT (dir unreadable) or
 * VN_EINVAL / VN_ETOOBIG (problems found), *out is NULL, and errors has one
 * line per problem: "path:line:col: message" (position when known).
 */
int tpl_set_load(const char *dir, const struct tpl_set_opts *opts, struct tpl_set **out,
                 struct vn_buf *errors);

/* Take another reference; returns set. */
struct tpl_set *tpl_set_ref(struct tpl_set *set);
/* Drop a reference; the last one frees the set. NULL is a no-op. */
void tpl_set_free(struct tpl_set *set);

/*
 * Load dir into a new set and, only if that succeeds, replace *current with
 * it (dropping the caller's reference to the old one). On failure *current
 * is untouched and errors says why. Call at a safe point (the loop thread).
 */
int tpl_set_reload(const char *dir, const struct tpl_set_opts *opts, struct tpl_set **current,
                   struct vn_buf *errors);

const char *tpl_set_dir(const struct tpl_set *set);
const char *tpl_set_default_locale(const struct tpl_set *set);
/* Number of files loaded, and the locales (sorted). */
size_t tpl_set_file_count(const struct tpl_set *set);
size_t tpl_set_locale_count(const struct tpl_set *set);
const char *tpl_set_locale(const struct tpl_set *set, size_t i);

/*
 * The template for name and part along the fallback chain of locale (NULL =
 * the default locale), or NULL. *found_locale (may be NULL) gets the locale
 * whose file was used. The pointer lives as long as the set.
 */
const struct tpl *tpl_set_find(const struct tpl_set *set, const char *name, enum tpl_part part,
                               const char *locale, const char **found_locale);

/*
 * Render name/part for opts->locale with partials from the set (opts->partial
 * is ignored). Formatting (dates, numbers, plurals) uses the requested locale
 * when the template found shares its language, else the template's own
 * locale, so a fallback to English never prints German dates. Errors as
 * tpl_render(); no template at all is VN_ENOENT naming the chain tried.
 */
int tpl_set_render(const struct tpl_set *set, const char *name, enum tpl_part part,
                   struct json_object *data, const struct tpl_render_opts *opts, struct vn_buf *out,
                   struct tpl_error *err);

/* An e-mail's three parts; html is NULL when the set has no html part. */
struct tpl_email {
    char *subject;
    char *text;
    char *html;
};

/* Render subject, text and (if present) html. On error *mail is empty. */
int tpl_set_render_email(const struct tpl_set *set, const char *name, struct json_object *data,
                         const struct tpl_render_opts *opts, struct tpl_email *mail,
                         struct tpl_error *err);
void tpl_email_free(struct tpl_email *mail);

/*
 * Render every template of every locale with samples_dir/<name>.json in
 * strict mode, and check what comes out: Telegram markup that Telegram's
 * parser accepts and is not empty, a non-empty subject, valid JSON. A
 * template without a sample file is a problem too. Appends one line per
 * problem to errors and returns their number; *rendered (may be NULL) gets
 * the number of renders done. tz and now_ms as in tpl_render_opts.
 */
size_t tpl_set_check(const struct tpl_set *set, const char *samples_dir, const char *tz,
                     int64_t now_ms, struct vn_buf *errors, size_t *rendered);

#endif
