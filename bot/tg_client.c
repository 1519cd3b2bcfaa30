#include "tg_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/http_client.h"
#include "core/log.h"

enum req_state { REQ_LIMIT, REQ_HTTP, REQ_RETRY, REQ_DONE };

struct tg_req {
    struct tg_req *prev, *next;
    struct tg_client *c;
    char *method;
    char *body; /* JSON, kept for retries */
    int64_t chat_id;
    int limited;
    long timeout_ms;
    enum req_state state;
    int attempts;
    int retries; /* 5xx / network */
    int retries_429;
    int last_retry_after;
    uv_timer_t timer;
    int timer_used;
    tg_result_fn cb;
    void *ud;
};

struct tg_client {
    uv_loop_t *loop;
    struct hc_client *hc;
    struct tg_limiter *limiter; /* NULL when off */
    char *base;                 /* api_url + "/bot" + token + "/" */
    struct tg_client_opts opt;
    struct tg_req *reqs;
    unsigned pending;
    int closing;
};

const char *tg_err_kind_name(enum tg_err_kind kind)
{
    switch (kind) {
    case TG_OK:
        return "ok";
    case TG_ERR_RATE_LIMITED:
        return "rate_limited";
    case TG_ERR_BLOCKED:
        return "blocked";
    case TG_ERR_CHAT_NOT_FOUND:
        return "chat_not_found";
    case TG_ERR_MIGRATED:
        return "migrated";
    case TG_ERR_BAD_REQUEST:
        return "bad_request";
    case TG_ERR_UNAUTHORIZED:
        return "unauthorized";
    case TG_ERR_SERVER:
        return "server_error";
    case TG_ERR_NETWORK:
        return "network_error";
    case TG_ERR_PROTOCOL:
        return "protocol_error";
    case TG_ERR_CLOSED:
        return "closed";
    }
    return "unknown";
}

/* The bot id is the part of the token before ':' — public, unlike the rest. */
static char *bot_id_of(const char *token)
{
    size_t n = token ? strcspn(token, ":") : 0;
    return n ? xstrndup(token, n) : xstrdup("bot");
}

struct tg_client *tg_client_new(uv_loop_t *loop, struct hc_client *hc,
                                const struct tg_client_opts *opt)
{
    struct tg_client *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->hc = hc;
    c->opt = *opt;
    if (c->opt.max_retries <= 0)
        c->opt.max_retries = 3;
    if (c->opt.max_429_retries <= 0)
        c->opt.max_429_retries = 5;
    if (c->opt.backoff_base_ms <= 0)
        c->opt.backoff_base_ms = 500;
    if (c->opt.backoff_max_ms <= 0)
        c->opt.backoff_max_ms = 10000;
    if (c->opt.timeout_ms <= 0)
        c->opt.timeout_ms = 15000;
    const char *url = opt->api_url && *opt->api_url ? opt->api_url : "https://api.telegram.org";
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    c->base = xasprintf("%.*s/bot%s/", (int)n, url, opt->token ? opt->token : "");
    c->opt.api_url = NULL;
    c->opt.token = NULL;
    if (!opt->limiter_off) {
        struct tg_limit_cfg lim = opt->limits;
        if (lim.global_per_s <= 0)
            tg_limit_cfg_default(&lim);
        char *bot = bot_id_of(opt->token);
        c->limiter = tg_limiter_new(loop, opt->redis, bot, &lim);
        free(bot);
    }
    return c;
}

unsigned tg_client_pending(const struct tg_client *c)
{
    return c->pending;
}

static void maybe_free(struct tg_client *c)
{
    if (c->closing && c->pending == 0) {
        free(c->base);
        free(c);
    }
}

static void req_freed(uv_handle_t *h)
{
    struct tg_req *r = h->data;
    struct tg_client *c = r->c;
    free(r->method);
    free(r->body);
    free(r);
    c->pending--;
    maybe_free(c);
}

/* Report the outcome and release the request. */
static void finish(struct tg_req *r, struct tg_result *res)
{
    struct tg_client *c = r->c;
    r->state = REQ_DONE;
    res->attempts = r->attempts;
    if (res->retry_after == 0)
        res->retry_after = r->last_retry_after;
    if (res->description == NULL)
        res->description = "";
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (res->kind != TG_OK)
        vn_log_emit(res->kind == TG_ERR_BLOCKED ? VN_LOG_INFO : VN_LOG_WARN, "tg", NULL, NULL,
                    "%s chat %lld failed after %d attempt(s): %s (%d %s)", r->method,
                    (long long)r->chat_id, r->attempts, tg_err_kind_name(res->kind),
                    res->error_code, res->description);
    r->cb(res, r->ud);
    if (r->timer_used) {
        uv_close((uv_handle_t *)&r->timer, req_freed);
    } else {
        r->timer.data = r;
        req_freed((uv_handle_t *)&r->timer);
    }
}

static void finish_simple(struct tg_req *r, enum tg_err_kind kind, const char *why)
{
    struct tg_result res;
    memset(&res, 0, sizeof(res));
    res.kind = kind;
    res.description = why;
    res.retry_after = r->last_retry_after;
    finish(r, &res);
}

static void send_http(struct tg_req *r);
static void start(struct tg_req *r);

static void on_retry_timer(uv_timer_t *t)
{
    struct tg_req *r = t->data;
    if (r->c->closing) {
        finish_simple(r, TG_ERR_CLOSED, "client closing");
        return;
    }
    start(r);
}

static void retry_in(struct tg_req *r, uint64_t ms)
{
    if (!r->timer_used) {
        uv_timer_init(r->c->loop, &r->timer);
        r->timer.data = r;
        r->timer_used = 1;
    }
    r->state = REQ_RETRY;
    uv_timer_start(&r->timer, on_retry_timer, ms, 0);
}

static void retry_backoff(struct tg_req *r, enum tg_err_kind kind, int code, const char *why)
{
    struct tg_client *c = r->c;
    if (r->retries >= c->opt.max_retries || c->closing) {
        struct tg_result res;
        memset(&res, 0, sizeof(res));
        res.kind = kind;
        res.error_code = code;
        res.http_status = code;
        res.description = why;
        finish(r, &res);
        return;
    }
    uint64_t ms = vn_backoff_ms((unsigned)r->retries, (uint64_t)c->opt.backoff_base_ms,
                                (uint64_t)c->opt.backoff_max_ms, vn_random_u32());
    r->retries++;
    vn_debug("tg", "%s: %s; retry %d in %llu ms", r->method, why, r->retries,
             (unsigned long long)ms);
    retry_in(r, ms);
}

static enum tg_err_kind classify(int code, const char *desc, int64_t migrate_to)
{
    if (code == 401 || code == 404)
        return TG_ERR_UNAUTHORIZED; /* Telegram answers 404 for a wrong token too */
    if (code == 403)
        return TG_ERR_BLOCKED;
    if (migrate_to)
        return TG_ERR_MIGRATED;
    if (code == 400 && desc && strstr(desc, "chat not found"))
        return TG_ERR_CHAT_NOT_FOUND;
    return TG_ERR_BAD_REQUEST;
}

static void on_http(const struct hc_response *resp, void *ud)
{
    struct tg_req *r = ud;
    struct tg_client *c = r->c;
    json_object *root = NULL, *v = NULL, *params = NULL;
    r->attempts++;

    if (resp->status == 0) {
        retry_backoff(r, TG_ERR_NETWORK, 0, resp->error ? resp->error : "no answer");
        return;
    }
    enum json_tokener_error jerr = json_tokener_success;
    root = json_tokener_parse_verbose(resp->body, &jerr);
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "ok", &v)) {
        char why[96];
        snprintf(why, sizeof(why), "HTTP %ld without a Bot API JSON body", resp->status);
        json_object_put(root);
        if (resp->status >= 500)
            retry_backoff(r, TG_ERR_SERVER, (int)resp->status, why);
        else {
            struct tg_result res;
            memset(&res, 0, sizeof(res));
            res.kind = TG_ERR_PROTOCOL;
            res.error_code = (int)resp->status;
            res.http_status = (int)resp->status;
            res.description = why;
            finish(r, &res);
        }
        return;
    }

    struct tg_result res;
    memset(&res, 0, sizeof(res));
    res.http_status = (int)resp->status;
    if (json_object_get_boolean(v)) {
        json_object_object_get_ex(root, "result", &res.result);
        res.kind = TG_OK;
        finish(r, &res);
        json_object_put(root);
        return;
    }
    res.error_code = (int)resp->status;
    if (json_object_object_get_ex(root, "error_code", &v))
        res.error_code = json_object_get_int(v);
    if (json_object_object_get_ex(root, "description", &v))
        res.description = json_object_get_string(v);
    if (json_object_object_get_ex(root, "parameters", &params)) {
        if (json_object_object_get_ex(params, "retry_after", &v))
            res.retry_after = json_object_get_int(v);
        if (json_object_object_get_ex(params, "migrate_to_chat_id", &v))
            res.migrate_to_chat_id = json_object_get_int64(v);
    }

    if (res.error_code == 429) {
        int after = res.retry_after > 0 ? res.retry_after : 1;
        r->last_retry_after = after;
        if (c->limiter)
            tg_limiter_penalize(c->limiter, r->limited ? r->chat_id : 0, after);
        if (r->retries_429 < c->opt.max_429_retries && !c->closing) {
            r->retries_429++;
            vn_info("tg", "%s chat %lld: 429, waiting %d s (retry %d)", r->method,
                    (long long)r->chat_id, after, r->retries_429);
            if (c->limiter && r->limited)
                start(r); /* the limiter now holds this chat for retry_after */
            else
                retry_in(r, (uint64_t)after * 1000u);
            json_object_put(root);
            return;
        }
        res.kind = TG_ERR_RATE_LIMITED;
        finish(r, &res);
        json_object_put(root);
        return;
    }
    if (res.error_code >= 500) {
        char why[256];
        snprintf(why, sizeof(why), "%d %s", res.error_code, res.description ? res.description : "");
        json_object_put(root);
        retry_backoff(r, TG_ERR_SERVER, res.error_code, why);
        return;
    }
    res.kind = classify(res.error_code, res.description, res.migrate_to_chat_id);
    finish(r, &res);
    json_object_put(root);
}

static void send_http(struct tg_req *r)
{
    struct tg_client *c = r->c;
    char *url = xasprintf("%s%s", c->base, r->method);
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    struct hc_request rq = {"POST", url, hdrs, r->body, strlen(r->body), r->timeout_ms, 0};
    r->state = REQ_HTTP;
    int rc = hc_request(c->hc, &rq, on_http, r);
    free(url);
    if (rc != 0)
        finish_simple(r, TG_ERR_CLOSED, "HTTP client closing");
}

static void on_acquired(int status, void *ud)
{
    struct tg_req *r = ud;
    if (status != 0) {
        finish_simple(r, TG_ERR_CLOSED, "client closing");
        return;
    }
    send_http(r);
}

static void start(struct tg_req *r)
{
    struct tg_client *c = r->c;
    if (r->limited && c->limiter) {
        r->state = REQ_LIMIT;
        tg_limiter_acquire(c->limiter, r->chat_id, on_acquired, r);
    } else {
        send_http(r);
    }
}

int tg_call(struct tg_client *c, const char *method, json_object *params, int64_t chat_id,
            int limited, tg_result_fn cb, void *ud)
{
    if (c->closing) {
        json_object_put(params);
        return VN_ESTATE;
    }
    struct tg_req *r = xcalloc(1, sizeof(*r));
    r->c = c;
    r->method = xstrdup(method);
    r->body =
        xstrdup(params ? json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN) : "{}");
    r->chat_id = chat_id;
    r->limited = limited;
    r->cb = cb;
    r->ud = ud;
    r->timeout_ms = c->opt.timeout_ms;
    json_object *t = NULL;
    if (params && strcmp(method, "getUpdates") == 0 &&
        json_object_object_get_ex(params, "timeout", &t))
        r->timeout_ms = json_object_get_int(t) * 1000L + 15000L;
    json_object_put(params);
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->pending++;
    start(r);
    return 0;
}

/* ---- typed helpers ---------------------------------------------------------- */

static json_object *obj(void)
{
    return json_object_new_object();
}

static void put_str(json_object *o, const char *k, const char *v)
{
    if (v)
        json_object_object_add(o, k, json_object_new_string(v));
}

static void put_i64(json_object *o, const char *k, int64_t v)
{
    json_object_object_add(o, k, json_object_new_int64(v));
}

static void put_bool(json_object *o, const char *k, int v)
{
    json_object_object_add(o, k, json_object_new_boolean(v));
}

static json_object *str_array(const char *const *list)
{
    json_object *a = json_object_new_array();
    for (; list && *list; list++)
        json_object_array_add(a, json_object_new_string(*list));
    return a;
}

int tg_send_message(struct tg_client *c, const struct tg_send *m, tg_result_fn cb, void *ud)
{
    json_object *p = obj();
    put_i64(p, "chat_id", m->chat_id);
    put_str(p, "text", m->text ? m->text : "");
    put_str(p, "parse_mode", m->parse_mode);
    if (m->reply_markup)
        json_object_object_add(p, "reply_markup", m->reply_markup);
    if (m->reply_to_message_id)
        put_i64(p, "reply_to_message_id", m->reply_to_message_id);
    if (m->disable_notification)
        put_bool(p, "disable_notification", 1);
    if (m->disable_web_page_preview)
        put_bool(p, "disable_web_page_preview", 1);
    return tg_call(c, "sendMessage", p, m->chat_id, 1, cb, ud);
}

int tg_edit_message_text(struct tg_client *c, int64_t chat_id, int64_t message_id, const char *text,
                         const char *parse_mode, json_object *reply_markup, tg_result_fn cb,
                         void *ud)
{
    json_object *p = obj();
    put_i64(p, "chat_id", chat_id);
    put_i64(p, "message_id", message_id);
    put_str(p, "text", text ? text : "");
    put_str(p, "parse_mode", parse_mode);
    if (reply_markup)
        json_object_object_add(p, "reply_markup", reply_markup);
    return tg_call(c, "editMessageText", p, chat_id, 1, cb, ud);
}

int tg_edit_message_reply_markup(struct tg_client *c, int64_t chat_id, int64_t message_id,
                                 json_object *reply_markup, tg_result_fn cb, void *ud)
{
    json_object *p = obj();
    put_i64(p, "chat_id", chat_id);
    put_i64(p, "message_id", message_id);
    if (reply_markup)
        json_object_object_add(p, "reply_markup", reply_markup);
    return tg_call(c, "editMessageReplyMarkup", p, chat_id, 1, cb, ud);
}

int tg_answer_callback_query(struct tg_client *c, const char *callback_query_id, const char *text,
                             int show_alert, tg_result_fn cb, void *ud)
{
    json_object *p = obj();
    put_str(p, "callback_query_id", callback_query_id);
    put_str(p, "text", text);
    if (show_alert)
        put_bool(p, "show_alert", 1);
    return tg_call(c, "answerCallbackQuery", p, 0, 0, cb, ud);
}

int tg_delete_message(struct tg_client *c, int64_t chat_id, int64_t message_id, tg_result_fn cb,
                      void *ud)
{
    json_object *p = obj();
    put_i64(p, "chat_id", chat_id);
    put_i64(p, "message_id", message_id);
    return tg_call(c, "deleteMessage", p, chat_id, 1, cb, ud);
}

int tg_send_chat_action(struct tg_client *c, int64_t chat_id, const char *action, tg_result_fn cb,
                        void *ud)
{
    json_object *p = obj();
    put_i64(p, "chat_id", chat_id);
    put_str(p, "action", action ? action : "typing");
    return tg_call(c, "sendChatAction", p, chat_id, 1, cb, ud);
}

int tg_get_me(struct tg_client *c, tg_result_fn cb, void *ud)
{
    return tg_call(c, "getMe", NULL, 0, 0, cb, ud);
}

int tg_set_webhook(struct tg_client *c, const struct tg_webhook *w, tg_result_fn cb, void *ud)
{
    json_object *p = obj();
    put_str(p, "url", w->url);
    put_str(p, "secret_token", w->secret_token);
    if (w->allowed_updates)
        json_object_object_add(p, "allowed_updates", str_array(w->allowed_updates));
    if (w->max_connections > 0)
        put_i64(p, "max_connections", w->max_connections);
    if (w->drop_pending_updates)
        put_bool(p, "drop_pending_updates", 1);
    return tg_call(c, "setWebhook", p, 0, 0, cb, ud);
}

int tg_delete_webhook(struct tg_client *c, int drop_pending_updates, tg_result_fn cb, void *ud)
{
    json_object *p = obj();
    if (drop_pending_updates)
        put_bool(p, "drop_pending_updates", 1);
    return tg_call(c, "deleteWebhook", p, 0, 0, cb, ud);
}

int tg_get_webhook_info(struct tg_client *c, tg_result_fn cb, void *ud)
{
    return tg_call(c, "getWebhookInfo", NULL, 0, 0, cb, ud);
}

int tg_get_updates(struct tg_client *c, int64_t offset, int limit, int timeout_s,
                   const char *const *allowed_updates, tg_result_fn cb, void *ud)
{
    json_object *p = obj();
    if (offset)
        put_i64(p, "offset", offset);
    if (limit > 0)
        put_i64(p, "limit", limit);
    put_i64(p, "timeout", timeout_s);
    if (allowed_updates)
        json_object_object_add(p, "allowed_updates", str_array(allowed_updates));
    return tg_call(c, "getUpdates", p, 0, 0, cb, ud);
}

/* ---- keyboards ---------------------------------------------------------------- */

static json_object *kb_row(json_object *kb, const char *key, int row)
{
    json_object *rows = NULL;
    if (!json_object_object_get_ex(kb, key, &rows)) {
        rows = json_object_new_array();
        json_object_object_add(kb, key, rows);
    }
    if (row < 0)
        row = 0;
    while ((int)json_object_array_length(rows) <= row)
        json_object_array_add(rows, json_object_new_array());
    return json_object_array_get_idx(rows, (size_t)row);
}

json_object *tg_kb_inline(void)
{
    json_object *kb = obj();
    json_object_object_add(kb, "inline_keyboard", json_object_new_array());
    return kb;
}

void tg_kb_inline_button(json_object *kb, int row, const char *text, const char *callback_data)
{
    json_object *b = obj();
    put_str(b, "text", text);
    put_str(b, "callback_data", callback_data);
    json_object_array_add(kb_row(kb, "inline_keyboard", row), b);
}

void tg_kb_inline_url(json_object *kb, int row, const char *text, const char *url)
{
    json_object *b = obj();
    put_str(b, "text", text);
    put_str(b, "url", url);
    json_object_array_add(kb_row(kb, "inline_keyboard", row), b);
}

json_object *tg_kb_reply(int resize, int one_time)
{
    json_object *kb = obj();
    json_object_object_add(kb, "keyboard", json_object_new_array());
    if (resize)
        put_bool(kb, "resize_keyboard", 1);
    if (one_time)
        put_bool(kb, "one_time_keyboard", 1);
    return kb;
}

void tg_kb_reply_button(json_object *kb, int row, const char *text)
{
    json_object *b = obj();
    put_str(b, "text", text);
    json_object_array_add(kb_row(kb, "keyboard", row), b);
}

json_object *tg_kb_remove(void)
{
    json_object *kb = obj();
    put_bool(kb, "remove_keyboard", 1);
    return kb;
}

void tg_client_close(struct tg_client *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    c->pending++; /* hold c while failing requests below */
    for (struct tg_req *r = c->reqs, *next; r; r = next) {
        next = r->next;
        if (r->state == REQ_RETRY) {
            uv_timer_stop(&r->timer);
            finish_simple(r, TG_ERR_CLOSED, "client closing");
        }
    }
    /* Requests waiting for the limiter are failed by its close; requests on
     * the wire end when the HTTP client answers or closes. */
    tg_limiter_close(c->limiter);
    c->limiter = NULL;
    c->pending--;
    maybe_free(c);
}
