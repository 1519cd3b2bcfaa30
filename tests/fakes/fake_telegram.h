/*
 * fake_telegram.h - the pure parts of the fake Telegram Bot API server.
 *
 * Everything here is free of I/O so it can be unit-tested on its own
 * (tests/unit/fakes/): UTF-8/UTF-16 text measures, the HTML / MarkdownV2 /
 * Markdown parsers that turn a message text into plain text + entities the
 * way Telegram does (with Telegram's error descriptions), the sliding-window
 * and token-bucket arithmetic behind strict mode, and form/query decoding.
 * The server itself is fake_telegram.c; docs/testing.md describes its use.
 *
 * Prefix fk_. Strings returned inside structs are owned by the struct and
 * released by its _free/_cleanup function.
 */
#ifndef VN_FAKE_TELEGRAM_H
#define VN_FAKE_TELEGRAM_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/common.h"

/* ---- text measures -------------------------------------------------------- */

/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
int fk_utf8_valid(const char *s, size_t len);

/* Length in UTF-16 code units of valid UTF-8 (what Telegram's 4096 limit counts). */
size_t fk_utf16_len(const char *s, size_t len);

/* ---- message markup ------------------------------------------------------- */

enum fk_parse_mode { FK_MODE_NONE, FK_MODE_HTML, FK_MODE_MARKDOWN, FK_MODE_MARKDOWN_V2 };

/* "HTML", "Markdown", "MarkdownV2" in any case, "" or NULL -> NONE.
 * Returns 0, or VN_EINVAL for anything else. */
int fk_parse_mode_from(const char *name, enum fk_parse_mode *mode);

struct fk_entity {
    const char *type; /* Bot API MessageEntity type, a static string */
    size_t offset;    /* UTF-16 code units into the plain text */
    size_t length;
    char *url;      /* text_link */
    char *language; /* pre with a language */
    char *custom_emoji_id;
};

/* A parsed message text: plain text plus entities sorted by offset. */
struct fk_text {
    struct vn_buf plain;
    struct fk_entity *ents;
    size_t n, cap;
};

void fk_text_init(struct fk_text *t);
void fk_text_cleanup(struct fk_text *t);

/*
 * Parse in[0..len) (valid UTF-8) under mode into out (initialised by the
 * caller). Returns 0, or VN_EINVAL with err set to what Telegram says after
 * "Bad Request: can't parse entities: ", e.g. "Character '.' is reserved and
 * must be escaped with the preceding '\'". Byte offsets in errors count from
 * the start of in, like Telegram's. Lenient where Telegram is lenient
 * (unknown HTML entities stay literal); stricter nowhere.
 */
int fk_markup_parse(enum fk_parse_mode mode, const char *in, size_t len, struct fk_text *out,
                    char *err, size_t errlen);

/* Entities as a Bot API JSON array (new reference), NULL when there are none. */
json_object *fk_text_entities_json(const struct fk_text *t);

/* ---- strict-mode rate arithmetic ------------------------------------------ */

/*
 * One limit: at most n sends in any window of window_ms (FK_RATE_WINDOW, a
 * sliding log of the last n send times), or a token bucket holding n tokens
 * refilled at n per window_ms (FK_RATE_BUCKET). n == 0 disables the limit.
 */
enum fk_rate_model { FK_RATE_WINDOW, FK_RATE_BUCKET };

struct fk_limit {
    unsigned n;
    uint64_t window_ms;
};

struct fk_rate {
    uint64_t *ts; /* window: ring of the last accepted send times */
    unsigned cap, head, count;
    double tokens; /* bucket */
    uint64_t last_ms;
    int primed;
};

void fk_rate_cleanup(struct fk_rate *r);

/* Milliseconds until a send at now_ms fits the limit; 0 when it fits now. */
uint64_t fk_rate_wait(const struct fk_rate *r, enum fk_rate_model model, const struct fk_limit *lim,
                      uint64_t now_ms);

/* Account one send at now_ms (call only after fk_rate_wait() gave 0). */
void fk_rate_take(struct fk_rate *r, enum fk_rate_model model, const struct fk_limit *lim,
                  uint64_t now_ms);

/* Telegram's retry_after for a wait: whole seconds, rounded up, at least 1. */
unsigned fk_retry_after_s(uint64_t wait_ms);

/* ---- request parameters --------------------------------------------------- */

/*
 * Add the pairs of an application/x-www-form-urlencoded string to obj as
 * string members (a later duplicate replaces an earlier one). With decode,
 * '+' and %XX are decoded; without, s is taken as already decoded (the HTTP
 * server hands over query strings that way). Pairs without '=' get "".
 * Returns 0, or VN_EINVAL when a decoded name or value is not UTF-8.
 */
int fk_form_parse(const char *s, size_t len, int decode, json_object *obj);

#endif
