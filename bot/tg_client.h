/*
 * tg_client.h - the Telegram Bot API client, shared by the bot and the notifier.
 *
 * Async on the loop over the project's HTTP client (curl multi: keep-alive,
 * connection reuse, many requests in flight). Every call ends in exactly one
 * callback with a typed result:
 *
 *   - 429 Too Many Requests: the chat (or, for calls without a chat, every
 *     chat) is paused for retry_after in the shared rate limiter, and the call
 *     is retried after it — up to max_429_retries times.
 *   - 5xx and network errors: retried with exponential backoff and jitter,
 *     at most max_retries times, then reported (TG_ERR_SERVER / TG_ERR_NETWORK).
 *   - 403 (bot blocked, user deactivated, kicked): reported at once as
 *     TG_ERR_BLOCKED so the caller can deactivate the link. Never retried.
 *   - 400 with migrate_to_chat_id (a group became a supergroup): reported as
 *     TG_ERR_MIGRATED with the new id; resend to it.
 *   - other 4xx: TG_ERR_BAD_REQUEST / TG_ERR_CHAT_NOT_FOUND / TG_ERR_UNAUTHORIZED.
 *
 * Sending methods (sendMessage, edit*, deleteMessage, sendChatAction) go through
 * the rate limiter when one is configured; getUpdates, getMe, webhooks and
 * answerCallbackQuery do not (they are not limited per chat by Telegram).
 */
#ifndef VN_TG_CLIENT_H
#define VN_TG_CLIENT_H

#include <json-c/json.h>
#include <stdint.h>
#include <uv.h>

#include "bot/tg_limit.h"

struct hc_client;
struct rds_client;
struct tg_client;

enum tg_err_kind {
    TG_OK = 0,
    TG_ERR_RATE_LIMITED,   /* 429 and retries used up */
    TG_ERR_BLOCKED,        /* 403: blocked by the user, user deactivated, kicked */
    TG_ERR_CHAT_NOT_FOUND, /* 400 "chat not found" */
    TG_ERR_MIGRATED,       /* 400 with migrate_to_chat_id */
    TG_ERR_BAD_REQUEST,    /* other 4xx */
    TG_ERR_UNAUTHORIZED,   /* 401: wrong token */
    TG_ERR_SERVER,         /* 5xx after retries */
    TG_ERR_NETWORK,        /* no HTTP answer after retries */
    TG_ERR_PROTOCOL,       /* an answer that is not the Bot API's JSON */
    TG_ERR_CLOSED,         /* the client closed first */
};

const char *tg_err_kind_name(enum tg_err_kind kind);

struct tg_result {
    enum tg_err_kind kind;
    int error_code;          /* HTTP / Bot API error_code; 0 on success or network error */
    const char *description; /* Bot API description or transport error; "" when ok */
    int retry_after;         /* seconds, from parameters.retry_after (last one seen) */
    int64_t migrate_to_chat_id;
    json_object *result; /* the "result" on success; borrowed for the callback */
    int attempts;        /* HTTP requests made */
    int http_status;
};

typedef void (*tg_result_fn)(const struct tg_result *r, void *ud);

struct tg_client_opts {
    const char *api_url;        /* "https://api.telegram.org" (TELEGRAM_API_URL) */
    const char *token;          /* bot token; never logged */
    struct rds_client *redis;   /* shared limiter state; NULL = in-process only */
    int limiter_off;            /* 1: no rate limiting at all (benchmarks, the fake) */
    struct tg_limit_cfg limits; /* zeroed = defaults */
    int max_retries;            /* 5xx/network retries, default 3 */
    int max_429_retries;        /* default 5 */
    int64_t backoff_base_ms;    /* default 500 */
    int64_t backoff_max_ms;     /* default 10000 */
    long timeout_ms; /* per HTTP request, default 15000 (getUpdates: its timeout + 15 s) */
};

struct tg_client *tg_client_new(uv_loop_t *loop, struct hc_client *hc,
                                const struct tg_client_opts *opt);

/*
 * Call any method. params is taken (json_object_put by the client), may be
 * NULL. chat_id names the chat for rate limiting and 429 pauses (0 = none);
 * limited selects whether the call goes through the limiter.
 * Returns 0 (cb will fire) or VN_ESTATE when closing (cb never fires).
 */
int tg_call(struct tg_client *c, const char *method, json_object *params, int64_t chat_id,
            int limited, tg_result_fn cb, void *ud);

/* ---- typed helpers (each builds params and calls tg_call) ---------------- */

struct tg_send {
    int64_t chat_id;
    const char *text;
    const char *parse_mode;      /* "HTML", "MarkdownV2" or NULL */
    json_object *reply_markup;   /* taken; tg_kb_* build one; NULL for none */
    int64_t reply_to_message_id; /* 0 = none */
    int disable_notification;
    int disable_web_page_preview;
};

int tg_send_message(struct tg_client *c, const struct tg_send *m, tg_result_fn cb, void *ud);
int tg_edit_message_text(struct tg_client *c, int64_t chat_id, int64_t message_id, const char *text,
                         const char *parse_mode, json_object *reply_markup, tg_result_fn cb,
                         void *ud);
int tg_edit_message_reply_markup(struct tg_client *c, int64_t chat_id, int64_t message_id,
                                 json_object *reply_markup, tg_result_fn cb, void *ud);
int tg_answer_callback_query(struct tg_client *c, const char *callback_query_id, const char *text,
                             int show_alert, tg_result_fn cb, void *ud);
int tg_delete_message(struct tg_client *c, int64_t chat_id, int64_t message_id, tg_result_fn cb,
                      void *ud);
int tg_send_chat_action(struct tg_client *c, int64_t chat_id, const char *action, tg_result_fn cb,
                        void *ud);
int tg_get_me(struct tg_client *c, tg_result_fn cb, void *ud);

struct tg_webhook {
    const char *url;
    const char *secret_token;           /* NULL = none */
    const char *const *allowed_updates; /* NULL-terminated, NULL = Telegram's default */
    int max_connections;                /* 0 = default */
    int drop_pending_updates;
};

int tg_set_webhook(struct tg_client *c, const struct tg_webhook *w, tg_result_fn cb, void *ud);
int tg_delete_webhook(struct tg_client *c, int drop_pending_updates, tg_result_fn cb, void *ud);
int tg_get_webhook_info(struct tg_client *c, tg_result_fn cb, void *ud);
/* Long poll: offset (0 = none), timeout seconds, allowed_updates may be NULL. */
int tg_get_updates(struct tg_client *c, int64_t offset, int limit, int timeout_s,
                   const char *const *allowed_updates, tg_result_fn cb, void *ud);

/* ---- reply markup builders (return new json objects) ---------------------- */

json_object *tg_kb_inline(void);
/* Add a callback button to row (rows are created as needed). */
void tg_kb_inline_button(json_object *kb, int row, const char *text, const char *callback_data);
void tg_kb_inline_url(json_object *kb, int row, const char *text, const char *url);
json_object *tg_kb_reply(int resize, int one_time);
void tg_kb_reply_button(json_object *kb, int row, const char *text);
json_object *tg_kb_remove(void);

/* Requests in flight or waiting for the limiter or a retry. */
unsigned tg_client_pending(const struct tg_client *c);

/* Fail everything pending with TG_ERR_CLOSED; free once handles close. */
void tg_client_close(struct tg_client *c);

#endif
