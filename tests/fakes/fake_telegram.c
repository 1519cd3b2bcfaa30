/*
 * fake_telegram.c - vestnik-fake-telegram, a fake Telegram Bot API server.
 *
 * Speaks the Bot API methods vestnik uses (getMe, sendMessage,
 * editMessageText, editMessageReplyMarkup, answerCallbackQuery,
 * deleteMessage, sendChatAction, setWebhook, deleteWebhook, getWebhookInfo,
 * getUpdates) at /bot<token>/<method> with Telegram's response shapes and
 * error descriptions, and keeps the state a client can observe: message ids
 * per chat, message texts and keyboards (for edits), the webhook, the update
 * queue. A control API under /_fake/ lets tests read every call, post
 * updates (pushed to the webhook or served by getUpdates), inject faults,
 * and switch on strict mode, which answers 429 like Telegram whenever a
 * client goes over the flood limits. docs/testing.md is the user guide.
 *
 * Built on the project's own loop, HTTP server and HTTP client: one libuv
 * loop, nothing blocks. Slow answers (latency, long polls) are held requests
 * answered later from timers. Pure logic (markup parsing, rate arithmetic,
 * form decoding) is in fake_telegram_logic.c.
 *
 * Ownership: struct fake owns all state. A Bot API request becomes a
 * struct call_ctx that lives until its answer is handed to the HTTP server
 * (or, for calls a webhook reply asks for, until it is recorded); a ctx that
 * waits (long poll, latency, "network" hold) sits on f->pending so reset and
 * shutdown can find it.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include <json-c/json.h>

#include "core/common.h"
#include "core/http_client.h"
#include "core/http_route.h"
#include "core/http_server.h"
#include "core/log.h"

#include "fake_telegram.h"

#define MOD        "fake"
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

#define DEFAULT_MAX_CALLS   100000u
#define MAX_PENDING_UPDATES 100000u
#define MAX_FAULTS          10000u
#define MSG_RING_MAX        8192u  /* messages remembered per chat (older: "not found") */
#define TEXT_MAX_UTF16      4096u  /* Telegram's message length limit */
#define TEXT_MAX_BYTES      32768u /* raw text over this: "text is too long" */
#define LONG_POLL_MAX_S     50     /* Telegram caps getUpdates timeout at 50 s */
#define CALLBACK_DATA_MAX   64u
#define SECRET_TOKEN_MAX    256u
#define MAX_BODY            (8u * 1024u * 1024u)
#define FIRST_CHANNEL_ID    (-1001000000001LL)
#define SUPERGROUP_MAX_ID   (-1000000000000LL)
#define DEFAULT_BOT_ID      1000000001LL

#define TG_NOT_FOUND   "{\"ok\":false,\"error_code\":404,\"description\":\"Not Found\"}"
#define TG_BAD_GATEWAY "{\"ok\":false,\"error_code\":502,\"description\":\"Bad Gateway\"}"

/* ---- state ---------------------------------------------------------------- */

struct fk_limits {
    enum fk_rate_model model;
    unsigned global_per_s;
    double chat_per_s;
    unsigned chat_burst;
    unsigned group_per_min;
};

/* Settings POST /_fake/config can change; reset restores the CLI values. */
struct fk_config {
    int strict;
    unsigned latency_ms;
    struct fk_limits limits;
    unsigned webhook_retry_ms;     /* first delay after a repeated failure */
    unsigned webhook_retry_max_ms; /* backoff cap */
    unsigned webhook_timeout_ms;   /* one push */
};

struct fk_msg {
    int64_t id; /* 0: empty slot */
    int64_t date, edit_date;
    int from_bot;
    int deleted;
    char *text;     /* plain text */
    char *entities; /* JSON array text or NULL */
    char *markup;   /* inline keyboard JSON object text or NULL */
    char *raw;      /* user messages (from posted updates): the Message JSON */
};

struct fk_chat {
    int64_t id;
    struct fk_chat *hnext;
    char *username; /* channels addressed as @name */
    char *info;     /* Chat JSON learned from posted updates, or NULL */
    int64_t last_msg_id;
    struct fk_msg *msgs; /* ring indexed by id & (cap - 1) */
    unsigned msg_cap;
    struct fk_rate rate;
    unsigned scan_gen; /* webhook dispatcher's per-pass marker */
};

struct fk_call {
    uint64_t seq;
    char method[40];
    char *json; /* the whole record */
};

enum fault_kind {
    FAULT_429,
    FAULT_5XX,
    FAULT_403,
    FAULT_400,
    FAULT_MIGRATE,
    FAULT_LATENCY,
    FAULT_NETWORK
};
static const char *const fault_names[] = {"429",     "5xx",     "403",    "400",
                                          "migrate", "latency", "network"};

struct fk_fault {
    struct fk_fault *next;
    uint64_t id;
    enum fault_kind kind;
    char method[40]; /* "*" for any */
    char chat[64];   /* "" for any chat */
    long count;      /* remaining; -1 = until cleared */
    unsigned retry_after;
    int status;
    unsigned latency_ms;
    int64_t migrate_to;
    int apply; /* run the method (side effects) but answer with the error */
    char *description;
};

struct fk_update {
    struct fk_update *prev, *next;
    int64_t id;
    int64_t chat_key; /* pushes of one key go one at a time, in order */
    char type[40];
    char *json;
    int inflight;
    int dropped; /* unlinked while a push was in flight; freed by its callback */
    unsigned attempts;
    uint64_t next_try_ms;
};

struct fk_webhook {
    char *url; /* NULL: no webhook */
    char *secret;
    unsigned max_connections;
    int64_t last_error_date;
    char *last_error_message;
    unsigned gen; /* bumped on every set/delete; stale push results are ignored */
};

struct fake;

enum ctx_state { CTX_RUNNING, CTX_POLLING, CTX_DELAYING, CTX_HOLDING };

struct call_ctx {
    struct fake *f;
    struct http_request *req; /* NULL for calls a webhook reply asked for */
    struct call_ctx *prev, *next;
    int linked;
    enum ctx_state state;
    const struct fk_method *m;
    char method[40];
    json_object *params;
    int64_t bot_id;
    uint64_t at_ms, t0;
    unsigned delay_ms;
    char note[96];         /* extra JSON members for the call record */
    json_object *override; /* answer to send instead (fault with "apply") */
    int override_status;
    uv_timer_t timer;
    int timer_used;
    int64_t poll_offset;
    int poll_limit;
    int status;
    struct vn_buf body;
};

struct stat_count {
    char name[40];
    uint64_t n;
};

struct fake {
    uv_loop_t *loop;
    struct http_router *router;
    struct http_server *srv;
    struct hc_client *hc;
    uv_signal_t sig_term, sig_int;
    uv_timer_t wh_timer, sweep;
    int closing;

    /* options */
    char *token;
    char *username;
    size_t max_calls;
    struct fk_config cli; /* the configuration given on the command line */
    struct fk_config cfg; /* the current one */

    /* chats and messages */
    struct fk_chat **chat_tab;
    size_t chat_buckets, nchats;
    int64_t next_channel_id;
    unsigned scan_gen;

    /* recorded calls: a ring */
    struct fk_call *calls;
    size_t calls_head, calls_len;
    uint64_t next_seq, dropped_calls;

    struct fk_fault *faults;
    uint64_t next_fault_id;

    /* updates */
    struct fk_update *uq_head, *uq_tail;
    size_t uq_len;
    int64_t next_update_id;
    int64_t first_update_id; /* --first-update-id: where ids start (and restart on reset) */
    char **allowed;          /* NULL: Telegram's default set */
    size_t nallowed;

    struct fk_webhook wh;
    unsigned wh_inflight;

    struct fk_rate global_rate;
    struct call_ctx *poll;    /* the long poll waiting for updates */
    struct call_ctx *pending; /* ctxs that wait (poll, delay, hold) */
    unsigned holds;

    /* stats */
    struct stat_count *by_method;
    size_t nby_method;
    struct stat_count by_status[16];
    uint64_t calls_total, r429_injected, r429_strict, faults_applied, messages_sent;
    uint64_t wh_delivered, wh_failed;
    uint64_t started_ms;
};

typedef void (*fk_method_fn)(struct call_ctx *c);

struct fk_method {
    const char *name;
    fk_method_fn fn;
};

/* ---- small helpers -------------------------------------------------------- */

static int64_t unix_now(void)
{
    return (int64_t)(vn_wall_ms() / 1000);
}

/* Parse a whole decimal int64 (optional sign, surrounding spaces). */
static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    if (s == NULL)
        return VN_EINVAL;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0')
        return VN_EINVAL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (end && isspace((unsigned char)*end))
        end++;
    if (errno || end == s || *end != '\0')
        return VN_EINVAL;
    *out = (int64_t)v;
    return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    int64_t v;
    if (parse_i64(s, &v) != 0 || v < 0 || (uint64_t)v > max)
        return VN_EINVAL;
    *out = (unsigned long)v;
    return 0;
}

static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? xstrdup(src) : NULL;
}

static const char *reason_phrase(long status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "";
}

static void count_inc(struct stat_count **arr, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*arr)[i].name, name) == 0) {
            (*arr)[i].n++;
            return;
        }
    *arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
    snprintf((*arr)[*n].name, sizeof((*arr)[*n].name), "%s", name);
    (*arr)[*n].n = 1;
    (*n)++;
}

static void status_inc(struct fake *f, int status)
{
    char k[8];
    snprintf(k, sizeof(k), "%d", status);
    for (size_t i = 0; i < VN_ARRAY_LEN(f->by_status); i++) {
        if (f->by_status[i].name[0] == '\0') {
            snprintf(f->by_status[i].name, sizeof(f->by_status[i].name), "%s", k);
            f->by_status[i].n = 1;
            return;
        }
        if (strcmp(f->by_status[i].name, k) == 0) {
            f->by_status[i].n++;
            return;
        }
    }
}

static char *json_text(json_object *o)
{
    return xstrdup(json_object_to_json_string_ext(o, JSON_FLAGS));
}

/* A control API answer; takes o. */
static void ctl_reply(struct http_request *req, int status, json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_puts(&b, s);
    vn_buf_putc(&b, '\n');
    http_respond_json(req, status, &b);
    vn_buf_free(&b);
    json_object_put(o);
}

/* Value of name=... in a decoded query string (first match), copied into buf. */
static const char *query_arg(const char *query, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    const char *p = query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = seg - nl - 1;
            if (vl + 1 > len)
                return NULL;
            memcpy(buf, p + nl + 1, vl);
            buf[vl] = '\0';
            return buf;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* ---- chats and messages --------------------------------------------------- */

static size_t chat_hash(int64_t id, size_t buckets)
{
    uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 17) & (buckets - 1);
}

static void msg_clear(struct fk_msg *m)
{
    free(m->text);
    free(m->entities);
    free(m->markup);
    free(m->raw);
    memset(m, 0, sizeof(*m));
}

static void chat_free(struct fk_chat *ch)
{
    for (unsigned i = 0; i < ch->msg_cap; i++)
        msg_clear(&ch->msgs[i]);
    free(ch->msgs);
    free(ch->username);
    free(ch->info);
    fk_rate_cleanup(&ch->rate);
    free(ch);
}

static struct fk_chat *chat_find(struct fake *f, int64_t id)
{
    for (struct fk_chat *ch = f->chat_tab[chat_hash(id, f->chat_buckets)]; ch; ch = ch->hnext)
        if (ch->id == id)
            return ch;
    return NULL;
}

/* The chat with this id, created on first use (any chat exists). */
static struct fk_chat *chat_get(struct fake *f, int64_t id)
{
    struct fk_chat *ch = chat_find(f, id);
    if (ch)
        return ch;
    if (f->nchats >= f->chat_buckets * 2) {
        size_t nb = f->chat_buckets * 2;
        struct fk_chat **tab = xcalloc(nb, sizeof(*tab));
        for (size_t i = 0; i < f->chat_buckets; i++) {
            struct fk_chat *c = f->chat_tab[i], *next;
            for (; c; c = next) {
                next = c->hnext;
                size_t h = chat_hash(c->id, nb);
                c->hnext = tab[h];
                tab[h] = c;
            }
        }
        free(f->chat_tab);
        f->chat_tab = tab;
        f->chat_buckets = nb;
    }
    ch = xcalloc(1, sizeof(*ch));
    ch->id = id;
    size_t h = chat_hash(id, f->chat_buckets);
    ch->hnext = f->chat_tab[h];
    f->chat_tab[h] = ch;
    f->nchats++;
    return ch;
}

/* The channel called @name; with create, a new one when there is none.
 * O(chats): channels addressed by name are rare in tests. */
static struct fk_chat *chat_by_username(struct fake *f, const char *name, int create)
{
    for (size_t i = 0; i < f->chat_buckets; i++)
        for (struct fk_chat *ch = f->chat_tab[i]; ch; ch = ch->hnext)
            if (ch->username && strcasecmp(ch->username, name) == 0)
                return ch;
    if (!create)
        return NULL;
    struct fk_chat *ch = chat_get(f, f->next_channel_id--);
    ch->username = xstrdup(name);
    return ch;
}

static int chat_is_private(const struct fk_chat *ch)
{
    return ch->id > 0;
}

static json_object *chat_json(const struct fk_chat *ch)
{
    if (ch->info) {
        json_object *o = json_tokener_parse(ch->info);
        if (o)
            return o;
    }
    json_object *o = json_object_new_object();
    char title[64];
    json_object_object_add(o, "id", json_object_new_int64(ch->id));
    if (ch->username) {
        json_object_object_add(o, "title", json_object_new_string(ch->username));
        json_object_object_add(o, "username", json_object_new_string(ch->username));
        json_object_object_add(o, "type", json_object_new_string("channel"));
    } else if (ch->id > 0) {
        snprintf(title, sizeof(title), "User %" PRId64, ch->id);
        json_object_object_add(o, "first_name", json_object_new_string(title));
        json_object_object_add(o, "type", json_object_new_string("private"));
    } else {
        int super = ch->id <= SUPERGROUP_MAX_ID;
        snprintf(title, sizeof(title), "%s %" PRId64, super ? "Supergroup" : "Group", ch->id);
        json_object_object_add(o, "title", json_object_new_string(title));
        json_object_object_add(o, "type", json_object_new_string(super ? "supergroup" : "group"));
    }
    return o;
}

/* Grow the ring when the ids outrun it; keeps every message still in range. */
static void msg_ring_fit(struct fk_chat *ch, int64_t id)
{
    if (ch->msg_cap == 0) {
        ch->msg_cap = 16;
        ch->msgs = xcalloc(ch->msg_cap, sizeof(*ch->msgs));
    }
    while (ch->msg_cap < MSG_RING_MAX && id >= (int64_t)ch->msg_cap) {
        unsigned nc = ch->msg_cap * 2;
        struct fk_msg *nm = xcalloc(nc, sizeof(*nm));
        for (unsigned i = 0; i < ch->msg_cap; i++) {
            struct fk_msg *m = &ch->msgs[i];
            if (m->id && m->id > id - (int64_t)nc)
                nm[(uint64_t)m->id & (nc - 1)] = *m;
            else
                msg_clear(m);
        }
        free(ch->msgs);
        ch->msgs = nm;
        ch->msg_cap = nc;
    }
}

/* The slot for message id (cleared), or NULL when id is too old to keep. */
static struct fk_msg *msg_slot(struct fk_chat *ch, int64_t id)
{
    if (id <= 0)
        return NULL;
    msg_ring_fit(ch, id > ch->last_msg_id ? id : ch->last_msg_id);
    if (id <= ch->last_msg_id - (int64_t)ch->msg_cap)
        return NULL;
    struct fk_msg *m = &ch->msgs[(uint64_t)id & (ch->msg_cap - 1)];
    msg_clear(m);
    m->id = id;
    if (id > ch->last_msg_id)
        ch->last_msg_id = id;
    return m;
}

static struct fk_msg *msg_find(struct fk_chat *ch, int64_t id)
{
    if (id <= 0 || ch->msg_cap == 0 || id > ch->last_msg_id)
        return NULL;
    struct fk_msg *m = &ch->msgs[(uint64_t)id & (ch->msg_cap - 1)];
    return m->id == id && !m->deleted ? m : NULL;
}

static json_object *bot_user_json(const struct fake *f, int64_t bot_id, int full)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(bot_id));
    json_object_object_add(o, "is_bot", json_object_new_boolean(1));
    json_object_object_add(o, "first_name", json_object_new_string("Vestnik Fake Bot"));
    json_object_object_add(o, "username", json_object_new_string(f->username));
    if (full) {
        json_object_object_add(o, "can_join_groups", json_object_new_boolean(1));
        json_object_object_add(o, "can_read_all_group_messages", json_object_new_boolean(0));
        json_object_object_add(o, "supports_inline_queries", json_object_new_boolean(0));
        json_object_object_add(o, "can_connect_to_business", json_object_new_boolean(0));
        json_object_object_add(o, "has_main_web_app", json_object_new_boolean(0));
    }
    return o;
}

/* A Message object for a stored message. */
static json_object *msg_json(const struct fake *f, int64_t bot_id, const struct fk_chat *ch,
                             const struct fk_msg *m, const struct fk_msg *reply_to)
{
    if (!m->from_bot && m->raw) {
        json_object *o = json_tokener_parse(m->raw);
        if (o)
            return o;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message_id", json_object_new_int64(m->id));
    if (ch->username)
        json_object_object_add(o, "sender_chat", chat_json(ch));
    else
        json_object_object_add(o, "from", bot_user_json(f, bot_id, 0));
    json_object_object_add(o, "chat", chat_json(ch));
    json_object_object_add(o, "date", json_object_new_int64(m->date));
    if (m->edit_date)
        json_object_object_add(o, "edit_date", json_object_new_int64(m->edit_date));
    if (reply_to)
        json_object_object_add(o, "reply_to_message", msg_json(f, bot_id, ch, reply_to, NULL));
    json_object_object_add(o, "text", json_object_new_string(m->text ? m->text : ""));
    if (m->entities)
        json_object_object_add(o, "entities", json_tokener_parse(m->entities));
    if (m->markup)
        json_object_object_add(o, "reply_markup", json_tokener_parse(m->markup));
    return o;
}

/* ---- call records --------------------------------------------------------- */

static void calls_clear(struct fake *f)
{
    for (size_t i = 0; i < f->calls_len; i++)
        free(f->calls[(f->calls_head + i) % f->max_calls].json);
    f->calls_head = f->calls_len = 0;
}

static void record_call(struct call_ctx *c)
{
    struct fake *f = c->f;
    struct vn_buf b = VN_BUF_INIT;
    uint64_t seq = ++f->next_seq;
    vn_buf_printf(&b, "{\"seq\":%" PRIu64 ",\"method\":", seq);
    vn_buf_json_str(&b, c->method);
    vn_buf_printf(&b,
                  ",\"params\":%s,\"status\":%d,\"at_ms\":%" PRIu64 ",\"ms\":%" PRIu64
                  ",\"response\":%s%s}",
                  json_object_to_json_string_ext(c->params, JSON_FLAGS), c->status, c->at_ms,
                  vn_now_ms() - c->t0, c->body.len ? c->body.data : "null", c->note);

    if (f->calls_len == f->max_calls) {
        free(f->calls[f->calls_head].json);
        f->calls_head = (f->calls_head + 1) % f->max_calls;
        f->calls_len--;
        f->dropped_calls++;
    }
    struct fk_call *rec = &f->calls[(f->calls_head + f->calls_len) % f->max_calls];
    rec->seq = seq;
    snprintf(rec->method, sizeof(rec->method), "%s", c->method);
    rec->json = vn_buf_steal(&b);
    f->calls_len++;

    f->calls_total++;
    count_inc(&f->by_method, &f->nby_method, c->m ? c->m->name : "(unknown)");
    status_inc(f, c->status);
    vn_log_emit(VN_LOG_DEBUG, MOD, c->req ? c->req->id : NULL, NULL, "%s -> %d", c->method,
                c->status);
}

/* ---- the life of a call --------------------------------------------------- */

static void pending_link(struct call_ctx *c)
{
    struct fake *f = c->f;
    if (c->linked)
        return;
    c->prev = NULL;
    c->next = f->pending;
    if (f->pending)
        f->pending->prev = c;
    f->pending = c;
    c->linked = 1;
}

static void pending_unlink(struct call_ctx *c)
{
    struct fake *f = c->f;
    if (!c->linked)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        f->pending = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->linked = 0;
}

static void ctx_release(struct call_ctx *c)
{
    json_object_put(c->params);
    json_object_put(c->override);
    vn_buf_free(&c->body);
    free(c);
}

static void ctx_closed(uv_handle_t *h)
{
    ctx_release(h->data);
}

/* Forget a ctx whose request (if any) has been answered. */
static void ctx_free(struct call_ctx *c)
{
    pending_unlink(c);
    if (c->f->poll == c)
        c->f->poll = NULL;
    if (c->state == CTX_HOLDING && c->f->holds)
        c->f->holds--;
    if (c->timer_used) {
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, ctx_closed);
    } else {
        ctx_release(c);
    }
}

static void ctx_timer(struct call_ctx *c, uint64_t ms, uv_timer_cb cb)
{
    if (!c->timer_used) {
        uv_timer_init(c->f->loop, &c->timer);
        c->timer.data = c;
        c->timer_used = 1;
    }
    /* libuv measures from the loop's cached time, which may be a little old;
     * an injected latency must never be shorter than asked. */
    uv_update_time(c->f->loop);
    uv_timer_start(&c->timer, cb, ms, 0);
}

static void deliver(struct call_ctx *c)
{
    http_respond(c->req, c->status, "application/json", c->body.data ? c->body.data : "",
                 c->body.len);
    c->req = NULL;
    ctx_free(c);
}

static void on_delay_done(uv_timer_t *t)
{
    deliver(t->data);
}

/*
 * Settle a call: record it, then answer now or after the configured latency.
 * Takes body. The call's effects (state changes) have already happened.
 */
static void api_answer(struct call_ctx *c, int status, json_object *body)
{
    struct fake *f = c->f;
    if (c->override) {
        json_object_put(body);
        body = c->override;
        status = c->override_status;
        c->override = NULL;
    }
    vn_buf_reset(&c->body);
    vn_buf_puts(&c->body, json_object_to_json_string_ext(body, JSON_FLAGS));
    json_object_put(body);
    c->status = status;
    record_call(c);
    if (c->req == NULL) {
        ctx_free(c);
        return;
    }
    unsigned delay = f->closing ? 0 : f->cfg.latency_ms + c->delay_ms;
    if (delay) {
        c->state = CTX_DELAYING;
        pending_link(c);
        ctx_timer(c, delay, on_delay_done);
        return;
    }
    pending_unlink(c);
    deliver(c);
}

static json_object *tg_error(int code, const char *description, json_object *parameters)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error_code", json_object_new_int(code));
    json_object_object_add(o, "description", json_object_new_string(description));
    if (parameters)
        json_object_object_add(o, "parameters", parameters);
    return o;
}

static json_object *tg_retry_after(unsigned s)
{
    char d[64];
    json_object *p = json_object_new_object();
    json_object_object_add(p, "retry_after", json_object_new_int64(s));
    snprintf(d, sizeof(d), "Too Many Requests: retry after %u", s);
    return tg_error(429, d, p);
}

static void api_error(struct call_ctx *c, int code, const char *description)
{
    api_answer(c, code, tg_error(code, description, NULL));
}

static void api_ok(struct call_ctx *c, json_object *result, const char *description)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "result", result);
    if (description)
        json_object_object_add(o, "description", json_object_new_string(description));
    api_answer(c, 200, o);
}

static void note_add(struct call_ctx *c, const char *key, const char *value)
{
    size_t n = strlen(c->note);
    snprintf(c->note + n, sizeof(c->note) - n, ",\"%s\":\"%s\"", key, value);
}

/* ---- parameters ----------------------------------------------------------- */

/* A parameter as Telegram sees it: strings as they are, other JSON values as
 * JSON text. NULL when absent or null. Valid while c->params lives. */
static const char *p_str(struct call_ctx *c, const char *name)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(c->params, name, &v) || v == NULL)
        return NULL;
    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return json_object_to_json_string_ext(v, JSON_FLAGS);
}

/* Telegram reads integers leniently: garbage reads as 0. */
static int64_t p_i64(struct call_ctx *c, const char *name, int64_t dflt)
{
    const char *s = p_str(c, name);
    if (s == NULL || *s == '\0')
        return dflt;
    return (int64_t)strtoll(s, NULL, 10);
}

static int p_bool(struct call_ctx *c, const char *name)
{
    const char *s = p_str(c, name);
    return s && (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0);
}

/* Query string, then body (JSON object, or form), into c->params. */
static int parse_params(struct call_ctx *c, char *err, size_t errlen)
{
    struct http_request *req = c->req;
    c->params = json_object_new_object();
    if (req->query && *req->query &&
        fk_form_parse(req->query, strlen(req->query), 0, c->params) != 0) {
        snprintf(err, errlen, "Bad Request: strings must be encoded in UTF-8");
        return VN_EINVAL;
    }
    if (req->body.len == 0)
        return 0;
    const char *ct = req->headers[HTTP_HDR_CONTENT_TYPE];
    if (ct && strncasecmp(ct, "application/json", 16) == 0) {
        enum json_tokener_error jerr = json_tokener_success;
        json_object *o = json_tokener_parse_verbose(req->body.data, &jerr);
        if (o == NULL || !json_object_is_type(o, json_type_object)) {
            snprintf(err, errlen, "Bad Request: can't parse JSON request body: %s",
                     o ? "an object expected" : json_tokener_error_desc(jerr));
            json_object_put(o);
            return VN_EINVAL;
        }
        json_object_object_foreach(o, key, val)
        {
            json_object_object_add(c->params, key, json_object_get(val));
        }
        json_object_put(o);
        return 0;
    }
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        snprintf(err, errlen,
                 "Bad Request: the fake server does not accept multipart/form-data; "
                 "send application/json or application/x-www-form-urlencoded");
        return VN_EINVAL;
    }
    if (fk_form_parse(req->body.data, req->body.len, 1, c->params) != 0) {
        snprintf(err, errlen, "Bad Request: strings must be encoded in UTF-8");
        return VN_EINVAL;
    }
    return 0;
}

/* The chat named by chat_id (an integer or @username); NULL after answering 400. */
static struct fk_chat *need_chat(struct call_ctx *c)
{
    const char *s = p_str(c, "chat_id");
    int64_t id = 0;
    if (s == NULL || *s == '\0') {
        api_error(c, 400, "Bad Request: chat_id is empty");
        return NULL;
    }
    if (s[0] == '@') {
        if (s[1] == '\0' || strlen(s) > 64) {
            api_error(c, 400, "Bad Request: chat not found");
            return NULL;
        }
        return chat_by_username(c->f, s + 1, 1);
    }
    if (parse_i64(s, &id) != 0 || id == 0) {
        api_error(c, 400, "Bad Request: chat not found");
        return NULL;
    }
    return chat_get(c->f, id);
}

/* ---- message text and keyboards ------------------------------------------- */

struct text_in {
    struct fk_text t;
    char *entities; /* JSON text */
};

/* Validate and parse text + parse_mode (+ entities); answers 400 and returns
 * VN_EINVAL on failure. field is "text" (or "caption" one day). */
static int need_text(struct call_ctx *c, struct text_in *ti)
{
    const char *text = p_str(c, "text");
    const char *mode_name = p_str(c, "parse_mode");
    enum fk_parse_mode mode;
    char perr[256], desc[320];

    fk_text_init(&ti->t);
    ti->entities = NULL;
    if (text == NULL || *text == '\0') {
        api_error(c, 400, "Bad Request: message text is empty");
        return VN_EINVAL;
    }
    if (strlen(text) > TEXT_MAX_BYTES) {
        api_error(c, 400, "Bad Request: text is too long");
        return VN_EINVAL;
    }
    if (!fk_utf8_valid(text, strlen(text))) {
        api_error(c, 400, "Bad Request: strings must be encoded in UTF-8");
        return VN_EINVAL;
    }
    if (fk_parse_mode_from(mode_name, &mode) != 0) {
        api_error(c, 400, "Bad Request: unsupported parse_mode");
        return VN_EINVAL;
    }
    if (fk_markup_parse(mode, text, strlen(text), &ti->t, perr, sizeof(perr)) != 0) {
        snprintf(desc, sizeof(desc), "Bad Request: can't parse entities: %s", perr);
        api_error(c, 400, desc);
        fk_text_cleanup(&ti->t);
        return VN_EINVAL;
    }
    const char *plain = ti->t.plain.data ? ti->t.plain.data : "";
    size_t plen = ti->t.plain.len;
    size_t a = 0;
    while (a < plen && isspace((unsigned char)plain[a]))
        a++;
    if (a == plen) {
        api_error(c, 400, "Bad Request: message text is empty");
        fk_text_cleanup(&ti->t);
        return VN_EINVAL;
    }
    if (fk_utf16_len(plain, plen) > TEXT_MAX_UTF16) {
        api_error(c, 400, "Bad Request: message is too long");
        fk_text_cleanup(&ti->t);
        return VN_EINVAL;
    }
    json_object *ents = NULL;
    const char *given = p_str(c, "entities");
    if (mode == FK_MODE_NONE && given && *given) {
        ents = json_tokener_parse(given);
        if (ents == NULL || !json_object_is_type(ents, json_type_array)) {
            json_object_put(ents);
            api_error(c, 400, "Bad Request: can't parse entities JSON object");
            fk_text_cleanup(&ti->t);
            return VN_EINVAL;
        }
        if (json_object_array_length(ents) == 0) {
            json_object_put(ents);
            ents = NULL;
        }
    } else {
        ents = fk_text_entities_json(&ti->t);
    }
    if (ents) {
        ti->entities = json_text(ents);
        json_object_put(ents);
    }
    return 0;
}

static void text_in_cleanup(struct text_in *ti)
{
    fk_text_cleanup(&ti->t);
    free(ti->entities);
}

enum markup_kind { MARKUP_NONE, MARKUP_INLINE, MARKUP_OTHER };

static int is_str(json_object *o)
{
    return o && json_object_is_type(o, json_type_string);
}

/* Check one inline button; NULL when fine, else Telegram's description. */
static const char *inline_button_error(json_object *b)
{
    static const char *const kinds[] = {"url",
                                        "callback_game",
                                        "pay",
                                        "switch_inline_query",
                                        "switch_inline_query_current_chat",
                                        "switch_inline_query_chosen_chat",
                                        "login_url",
                                        "web_app",
                                        "copy_text"};
    json_object *v = NULL;
    if (!json_object_is_type(b, json_type_object))
        return "Bad Request: can't parse inline keyboard button: InlineKeyboardButton must be an "
               "Object";
    if (!json_object_object_get_ex(b, "text", &v) || !is_str(v))
        return "Bad Request: can't parse inline keyboard button: Field \"text\" must be of type "
               "String";
    if (json_object_object_get_ex(b, "callback_data", &v) && is_str(v) &&
        json_object_get_string_len(v) > 0) {
        if ((size_t)json_object_get_string_len(v) > CALLBACK_DATA_MAX)
            return "Bad Request: BUTTON_DATA_INVALID";
        return NULL;
    }
    for (size_t i = 0; i < VN_ARRAY_LEN(kinds); i++)
        if (json_object_object_get_ex(b, kinds[i], &v) && v != NULL)
            return NULL;
    return "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the "
           "inline keyboard";
}

/*
 * Validate reply_markup. Returns its kind, or -1 after answering 400. For an
 * inline keyboard *inline_json gets {"inline_keyboard":...} as JSON text.
 */
static int need_markup(struct call_ctx *c, char **inline_json)
{
    const char *s = p_str(c, "reply_markup");
    const char *desc = NULL;
    json_object *o = NULL, *kb = NULL, *ikb = NULL, *v = NULL;
    int kind = MARKUP_NONE;

    *inline_json = NULL;
    if (s == NULL || *s == '\0')
        return MARKUP_NONE;
    o = json_tokener_parse(s);
    if (o == NULL) {
        desc = "Bad Request: can't parse reply keyboard markup JSON object";
        goto out;
    }
    if (!json_object_is_type(o, json_type_object)) {
        desc = "Bad Request: object expected as reply markup";
        goto out;
    }
    if (json_object_object_get_ex(o, "keyboard", &kb) && kb) {
        if (!json_object_is_type(kb, json_type_array)) {
            desc = "Bad Request: field \"keyboard\" must be an Array of Arrays";
            goto out;
        }
        for (size_t r = 0; r < json_object_array_length(kb); r++) {
            json_object *row = json_object_array_get_idx(kb, r);
            if (!row || !json_object_is_type(row, json_type_array)) {
                desc = "Bad Request: field \"keyboard\" must be an Array of Arrays";
                goto out;
            }
            for (size_t i = 0; i < json_object_array_length(row); i++) {
                json_object *b = json_object_array_get_idx(row, i);
                if (is_str(b))
                    continue;
                if (!b || !json_object_is_type(b, json_type_object)) {
                    desc = "Bad Request: can't parse keyboard button: KeyboardButton must be a "
                           "String or an Object";
                    goto out;
                }
                if (!json_object_object_get_ex(b, "text", &v) || !is_str(v)) {
                    desc = "Bad Request: can't parse keyboard button: Field \"text\" must be of "
                           "type String";
                    goto out;
                }
            }
            kind = MARKUP_OTHER;
        }
    }
    if (json_object_object_get_ex(o, "inline_keyboard", &ikb) && ikb) {
        if (!json_object_is_type(ikb, json_type_array)) {
            desc = "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup must be "
                   "an Array of Arrays";
            goto out;
        }
        size_t rows = json_object_array_length(ikb);
        for (size_t r = 0; r < rows; r++) {
            json_object *row = json_object_array_get_idx(ikb, r);
            if (!row || !json_object_is_type(row, json_type_array)) {
                desc = "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup must "
                       "be an Array of Arrays";
                goto out;
            }
            for (size_t i = 0; i < json_object_array_length(row); i++) {
                desc = inline_button_error(json_object_array_get_idx(row, i));
                if (desc)
                    goto out;
            }
        }
        if (kind == MARKUP_NONE && rows > 0) {
            json_object *keep = json_object_new_object();
            json_object_object_add(keep, "inline_keyboard", json_object_get(ikb));
            *inline_json = json_text(keep);
            json_object_put(keep);
            kind = MARKUP_INLINE;
        }
    }
    if (kind == MARKUP_NONE &&
        ((json_object_object_get_ex(o, "remove_keyboard", &v) && json_object_get_boolean(v)) ||
         (json_object_object_get_ex(o, "force_reply", &v) && json_object_get_boolean(v))))
        kind = MARKUP_OTHER;
out:
    json_object_put(o);
    if (desc) {
        api_error(c, 400, desc);
        return -1;
    }
    return kind;
}

/* ---- strict mode ---------------------------------------------------------- */

static void limits_for(const struct fake *f, const struct fk_chat *ch, struct fk_limit *global,
                       struct fk_limit *chat)
{
    const struct fk_limits *l = &f->cfg.limits;
    global->n = l->global_per_s;
    global->window_ms = 1000;
    if (chat_is_private(ch)) {
        chat->n = l->chat_burst ? l->chat_burst : 1;
        chat->window_ms =
            l->chat_per_s > 0 ? (uint64_t)((double)chat->n * 1000.0 / l->chat_per_s + 0.5) : 0;
    } else {
        chat->n = l->group_per_min;
        chat->window_ms = 60000;
    }
}

static void rates_reset(struct fake *f)
{
    fk_rate_cleanup(&f->global_rate);
    for (size_t i = 0; i < f->chat_buckets; i++)
        for (struct fk_chat *ch = f->chat_tab[i]; ch; ch = ch->hnext)
            fk_rate_cleanup(&ch->rate);
}

/*
 * In strict mode, account one send to ch or refuse it: returns 0 when the
 * send may go, else answers 429 with retry_after and returns VN_ECONFLICT.
 */
static int strict_admit(struct call_ctx *c, struct fk_chat *ch)
{
    struct fake *f = c->f;
    struct fk_limit lg, lc;
    if (!f->cfg.strict)
        return 0;
    uint64_t now = vn_now_ms();
    limits_for(f, ch, &lg, &lc);
    uint64_t wg = fk_rate_wait(&f->global_rate, f->cfg.limits.model, &lg, now);
    uint64_t wc = fk_rate_wait(&ch->rate, f->cfg.limits.model, &lc, now);
    if (wg == 0 && wc == 0) {
        fk_rate_take(&f->global_rate, f->cfg.limits.model, &lg, now);
        fk_rate_take(&ch->rate, f->cfg.limits.model, &lc, now);
        return 0;
    }
    note_add(c, "limit", wc >= wg ? (chat_is_private(ch) ? "chat" : "group") : "global");
    f->r429_strict++;
    api_answer(c, 429, tg_retry_after(fk_retry_after_s(wc > wg ? wc : wg)));
    return VN_ECONFLICT;
}

/* ---- Bot API methods ------------------------------------------------------ */

static void m_get_me(struct call_ctx *c)
{
    api_ok(c, bot_user_json(c->f, c->bot_id, 1), NULL);
}

/* The message a send replies to: NULL when none asked for or (with
 * allow_sending_without_reply) not found; *bad after answering 400. */
static struct fk_msg *reply_target(struct call_ctx *c, struct fk_chat *ch, int *bad)
{
    int64_t id = p_i64(c, "reply_to_message_id", 0);
    int allow = p_bool(c, "allow_sending_without_reply");
    const char *rp = p_str(c, "reply_parameters");
    *bad = 0;
    if (rp && *rp) {
        json_object *o = json_tokener_parse(rp), *v = NULL;
        if (o == NULL || !json_object_is_type(o, json_type_object)) {
            json_object_put(o);
            api_error(c, 400, "Bad Request: can't parse reply parameters JSON object");
            *bad = 1;
            return NULL;
        }
        if (json_object_object_get_ex(o, "message_id", &v))
            id = json_object_get_int64(v);
        if (json_object_object_get_ex(o, "allow_sending_without_reply", &v))
            allow = json_object_get_boolean(v);
        json_object_put(o);
    }
    if (id == 0)
        return NULL;
    struct fk_msg *m = msg_find(ch, id);
    if (m == NULL && !allow) {
        api_error(c, 400, "Bad Request: message to be replied not found");
        *bad = 1;
    }
    return m;
}

static void m_send_message(struct call_ctx *c)
{
    struct fake *f = c->f;
    struct text_in ti;
    char *markup = NULL;
    int bad = 0;
    struct fk_chat *ch = need_chat(c);
    if (ch == NULL)
        return;
    if (need_text(c, &ti) != 0)
        return;
    if (need_markup(c, &markup) < 0)
        goto out;
    struct fk_msg *reply = reply_target(c, ch, &bad);
    if (bad)
        goto out;
    int64_t reply_id = reply ? reply->id : 0;
    if (strict_admit(c, ch) != 0)
        goto out;
    struct fk_msg *m = msg_slot(ch, ch->last_msg_id + 1);
    m->from_bot = 1;
    m->date = unix_now();
    m->text = vn_buf_steal(&ti.t.plain);
    m->entities = ti.entities;
    ti.entities = NULL;
    m->markup = markup;
    markup = NULL;
    f->messages_sent++;
    api_ok(c, msg_json(f, c->bot_id, ch, m, reply_id ? msg_find(ch, reply_id) : NULL), NULL);
out:
    free(markup);
    text_in_cleanup(&ti);
}

/* The message an edit targets; NULL after answering 400 (or *inline_id set). */
static struct fk_msg *edit_target(struct call_ctx *c, struct fk_chat **chp, const char **inline_id)
{
    const char *chat = p_str(c, "chat_id");
    int64_t id = p_i64(c, "message_id", 0);
    *inline_id = NULL;
    *chp = NULL;
    if ((chat == NULL || *chat == '\0') && id == 0) {
        const char *iid = p_str(c, "inline_message_id");
        if (iid == NULL || *iid == '\0') {
            api_error(c, 400, "Bad Request: message identifier is not specified");
            return NULL;
        }
        *inline_id = iid;
        return NULL;
    }
    struct fk_chat *ch = need_chat(c);
    if (ch == NULL)
        return NULL;
    *chp = ch;
    struct fk_msg *m = msg_find(ch, id);
    if (m == NULL) {
        api_error(c, 400, "Bad Request: message to edit not found");
        return NULL;
    }
    if (!m->from_bot) {
        api_error(c, 400, "Bad Request: message can't be edited");
        return NULL;
    }
    return m;
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static const char *const not_modified =
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message";

static void m_edit_message_text(struct call_ctx *c)
{
    struct fake *f = c->f;
    struct text_in ti;
    struct fk_chat *ch = NULL;
    const char *inline_id = NULL;
    char *markup = NULL;
    int kind;

    fk_text_init(&ti.t);
    ti.entities = NULL;
    struct fk_msg *m = edit_target(c, &ch, &inline_id);
    if (m == NULL && inline_id == NULL)
        goto out;
    if (need_text(c, &ti) != 0)
        goto out;
    kind = need_markup(c, &markup);
    if (kind < 0)
        goto out;
    if (kind == MARKUP_OTHER) {
        api_error(c, 400, "Bad Request: inline keyboard expected");
        goto out;
    }
    if (inline_id) {
        api_ok(c, json_object_new_boolean(1), NULL); /* inline messages are not kept */
        goto out;
    }
    if (same(m->text, ti.t.plain.data ? ti.t.plain.data : "") && same(m->entities, ti.entities) &&
        same(m->markup, markup)) {
        api_error(c, 400, not_modified);
        goto out;
    }
    if (strict_admit(c, ch) != 0)
        goto out;
    free(m->text);
    m->text = vn_buf_steal(&ti.t.plain);
    free(m->entities);
    m->entities = ti.entities;
    ti.entities = NULL;
    free(m->markup);
    m->markup = markup;
    markup = NULL;
    m->edit_date = unix_now();
    api_ok(c, msg_json(f, c->bot_id, ch, m, NULL), NULL);
out:
    free(markup);
    text_in_cleanup(&ti);
}

static void m_edit_message_reply_markup(struct call_ctx *c)
{
    struct fk_chat *ch = NULL;
    const char *inline_id = NULL;
    char *markup = NULL;
    struct fk_msg *m = edit_target(c, &ch, &inline_id);
    if (m == NULL && inline_id == NULL)
        return;
    int kind = need_markup(c, &markup);
    if (kind < 0)
        goto out;
    if (kind == MARKUP_OTHER) {
        api_error(c, 400, "Bad Request: inline keyboard expected");
        goto out;
    }
    if (inline_id) {
        api_ok(c, json_object_new_boolean(1), NULL);
        goto out;
    }
    if (same(m->markup, markup)) {
        api_error(c, 400, not_modified);
        goto out;
    }
    if (strict_admit(c, ch) != 0)
        goto out;
    free(m->markup);
    m->markup = markup;
    markup = NULL;
    m->edit_date = unix_now();
    api_ok(c, msg_json(c->f, c->bot_id, ch, m, NULL), NULL);
out:
    free(markup);
}

static void m_delete_message(struct call_ctx *c)
{
    struct fk_chat *ch = need_chat(c);
    if (ch == NULL)
        return;
    struct fk_msg *m = msg_find(ch, p_i64(c, "message_id", 0));
    if (m == NULL) {
        api_error(c, 400, "Bad Request: message to delete not found");
        return;
    }
    m->deleted = 1;
    api_ok(c, json_object_new_boolean(1), NULL);
}

/* Telegram only accepts the (numeric) id of a recent callback query; the fake
 * accepts any non-empty id, so tests need not post the query first. */
static void m_answer_callback_query(struct call_ctx *c)
{
    const char *id = p_str(c, "callback_query_id");
    const char *text = p_str(c, "text");
    if (id == NULL || *id == '\0') {
        api_error(c, 400,
                  "Bad Request: query is too old and response timeout expired or query "
                  "ID is invalid");
        return;
    }
    if (text && fk_utf16_len(text, strlen(text)) > 200) {
        api_error(c, 400, "Bad Request: MESSAGE_TOO_LONG");
        return;
    }
    api_ok(c, json_object_new_boolean(1), NULL);
}

static void m_send_chat_action(struct call_ctx *c)
{
    static const char *const actions[] = {"cancel",           "typing",
                                          "record_video",     "upload_video",
                                          "record_audio",     "record_voice",
                                          "upload_audio",     "upload_voice",
                                          "upload_photo",     "upload_document",
                                          "choose_sticker",   "pick_up_location",
                                          "find_location",    "record_video_note",
                                          "upload_video_note"};
    struct fk_chat *ch = need_chat(c);
    const char *a = p_str(c, "action");
    if (ch == NULL)
        return;
    for (size_t i = 0; a && i < VN_ARRAY_LEN(actions); i++)
        if (strcasecmp(a, actions[i]) == 0) {
            api_ok(c, json_object_new_boolean(1), NULL);
            return;
        }
    api_error(c, 400, "Bad Request: wrong parameter action in request");
}

/* ---- updates: queue, long polling, webhook -------------------------------- */

static void update_free(struct fk_update *u)
{
    free(u->json);
    free(u);
}

static void uq_unlink(struct fake *f, struct fk_update *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        f->uq_head = u->next;
    if (u->next)
        u->next->prev = u->prev;
    else
        f->uq_tail = u->prev;
    u->prev = u->next = NULL;
    f->uq_len--;
}

/* Remove an update from the queue; one being pushed is freed by its callback. */
static void uq_drop(struct fake *f, struct fk_update *u)
{
    uq_unlink(f, u);
    if (u->inflight)
        u->dropped = 1;
    else
        update_free(u);
}

static void uq_drop_all(struct fake *f)
{
    while (f->uq_head)
        uq_drop(f, f->uq_head);
}

/* Telegram's default: every type but chat_member and the reaction counters. */
static int type_allowed(const struct fake *f, const char *type)
{
    if (f->allowed == NULL)
        return strcmp(type, "chat_member") != 0 && strcmp(type, "message_reaction") != 0 &&
               strcmp(type, "message_reaction_count") != 0;
    for (size_t i = 0; i < f->nallowed; i++)
        if (strcmp(f->allowed[i], type) == 0)
            return 1;
    return 0;
}

static void allowed_clear(struct fake *f)
{
    for (size_t i = 0; i < f->nallowed; i++)
        free(f->allowed[i]);
    free(f->allowed);
    f->allowed = NULL;
    f->nallowed = 0;
}

/* Take allowed_updates (a JSON array of strings) if the call has one. An
 * empty array restores the default. Unparsable values are ignored, as
 * Telegram does. */
static void allowed_update(struct call_ctx *c)
{
    const char *s = p_str(c, "allowed_updates");
    if (s == NULL || *s == '\0')
        return;
    json_object *a = json_tokener_parse(s);
    if (a == NULL || !json_object_is_type(a, json_type_array)) {
        json_object_put(a);
        return;
    }
    allowed_clear(c->f);
    size_t n = json_object_array_length(a);
    if (n > 0) {
        c->f->allowed = xcalloc(n, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            json_object *v = json_object_array_get_idx(a, i);
            if (is_str(v))
                c->f->allowed[c->f->nallowed++] = xstrdup(json_object_get_string(v));
        }
    }
    json_object_put(a);
}

static json_object *allowed_json(const struct fake *f)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < f->nallowed; i++)
        json_object_array_add(a, json_object_new_string(f->allowed[i]));
    return a;
}

/*
 * Apply a getUpdates offset: a positive one confirms (drops) every update
 * below it, a negative one keeps only the last -offset updates. Then return
 * up to limit updates (new reference).
 */
static json_object *updates_take(struct fake *f, int64_t offset, int limit)
{
    if (offset > 0) {
        struct fk_update *u = f->uq_head, *next;
        for (; u; u = next) {
            next = u->next;
            if (u->id < offset)
                uq_drop(f, u);
        }
    } else if (offset < 0) {
        while (f->uq_len > (size_t)(-offset))
            uq_drop(f, f->uq_head);
    }
    json_object *arr = json_object_new_array();
    int n = 0;
    for (struct fk_update *u = f->uq_head; u && n < limit; u = u->next) {
        json_object *o = json_tokener_parse(u->json);
        if (o) {
            json_object_array_add(arr, o);
            n++;
        }
    }
    return arr;
}

static void poll_answer(struct call_ctx *c)
{
    struct fake *f = c->f;
    if (f->poll == c)
        f->poll = NULL;
    if (c->timer_used)
        uv_timer_stop(&c->timer);
    c->state = CTX_RUNNING;
    api_ok(c, updates_take(f, c->poll_offset, c->poll_limit), NULL);
}

static void on_poll_timeout(uv_timer_t *t)
{
    poll_answer(t->data);
}

/* End the waiting long poll with a 409 (another poll, or a webhook, took over). */
static void poll_abort(struct fake *f, const char *description)
{
    struct call_ctx *c = f->poll;
    if (c == NULL)
        return;
    f->poll = NULL;
    if (c->timer_used)
        uv_timer_stop(&c->timer);
    c->state = CTX_RUNNING;
    api_answer(c, 409, tg_error(409, description, NULL));
}

/* New updates arrived: answer the waiting poll if it now has some. */
static void poll_wake(struct fake *f)
{
    struct call_ctx *c = f->poll;
    if (c == NULL || f->wh.url)
        return;
    for (struct fk_update *u = f->uq_head; u; u = u->next)
        if (c->poll_offset <= 0 || u->id >= c->poll_offset) {
            poll_answer(c);
            return;
        }
}

static void m_get_updates(struct call_ctx *c)
{
    struct fake *f = c->f;
    if (f->wh.url) {
        api_error(c, 409,
                  "Conflict: can't use getUpdates method while webhook is active; use "
                  "deleteWebhook to delete the webhook first");
        return;
    }
    int64_t offset = p_i64(c, "offset", 0);
    int64_t limit = p_i64(c, "limit", 100);
    int64_t timeout = p_i64(c, "timeout", 0);
    if (limit < 1)
        limit = 1; /* Telegram clamps limit to 1..100 */
    if (limit > 100)
        limit = 100;
    if (timeout < 0)
        timeout = 0;
    if (timeout > LONG_POLL_MAX_S)
        timeout = LONG_POLL_MAX_S;
    allowed_update(c);

    c->poll_offset = offset;
    c->poll_limit = (int)limit;
    json_object *arr = updates_take(f, offset, (int)limit);
    if (json_object_array_length(arr) > 0 || timeout == 0 || c->req == NULL || f->closing) {
        api_ok(c, arr, NULL);
        return;
    }
    json_object_put(arr);
    /* Telegram ends the older long poll when a newer one arrives. */
    poll_abort(f, "Conflict: terminated by other getUpdates request; make sure that only one "
                  "bot instance is running");
    /* The offset is applied; later polls from the same place use "from the head". */
    c->poll_offset = offset > 0 ? offset : 0;
    c->state = CTX_POLLING;
    f->poll = c;
    pending_link(c);
    ctx_timer(c, (uint64_t)timeout * 1000u, on_poll_timeout);
}

/* -- webhook pushes -- */

struct push {
    struct fake *f;
    struct fk_update *u;
    unsigned gen;
};

static void wh_dispatch(struct fake *f);
static void run_reply_call(struct fake *f, json_object *obj);

static void on_wh_timer(uv_timer_t *t)
{
    wh_dispatch(t->data);
}

static void wh_error(struct fake *f, const char *msg)
{
    f->wh.last_error_date = unix_now();
    set_str(&f->wh.last_error_message, msg);
}

static void on_push_done(const struct hc_response *r, void *ud)
{
    struct push *p = ud;
    struct fake *f = p->f;
    struct fk_update *u = p->u;
    char msg[300];

    if (f->wh_inflight)
        f->wh_inflight--;
    u->inflight = 0;
    if (u->dropped) {
        update_free(u);
        goto out;
    }
    if (r->status >= 200 && r->status <= 299) {
        f->wh_delivered++;
        json_object *reply = r->len ? json_tokener_parse(r->body) : NULL;
        uq_unlink(f, u);
        update_free(u);
        if (reply && json_object_is_type(reply, json_type_object) && !f->closing)
            run_reply_call(f, reply);
        json_object_put(reply);
        goto out;
    }
    f->wh_failed++;
    if (r->status == 0) {
        const char *e = r->error ? r->error : "network error";
        if (r->timed_out)
            e = "Read timeout expired";
        else if (strstr(e, "refused") || strstr(e, "Couldn't connect"))
            e = "Connection refused";
        snprintf(msg, sizeof(msg), "%s", e);
    } else {
        snprintf(msg, sizeof(msg), "Wrong response from the webhook: %ld %s", r->status,
                 reason_phrase(r->status));
    }
    if (p->gen == f->wh.gen)
        wh_error(f, msg);
    /* Like Telegram: the first failure is retried at once, then the delay doubles. */
    u->attempts++;
    uint64_t delay = 0;
    if (u->attempts > 1) {
        delay = f->cfg.webhook_retry_ms;
        for (unsigned i = 2; i < u->attempts && delay < f->cfg.webhook_retry_max_ms; i++)
            delay *= 2;
        if (delay > f->cfg.webhook_retry_max_ms)
            delay = f->cfg.webhook_retry_max_ms;
    }
    u->next_try_ms = vn_now_ms() + delay;
    vn_log_emit(VN_LOG_DEBUG, MOD, NULL, NULL,
                "push of update %" PRId64 " failed (%s); retry in %" PRIu64 " ms", u->id, msg,
                delay);
out:
    free(p);
    if (!f->closing)
        wh_dispatch(f);
}

static void wh_push(struct fake *f, struct fk_update *u)
{
    char secret_hdr[SECRET_TOKEN_MAX + 64];
    const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
    if (f->wh.secret) {
        snprintf(secret_hdr, sizeof(secret_hdr), "X-Telegram-Bot-Api-Secret-Token: %s",
                 f->wh.secret);
        headers[1] = secret_hdr;
    }
    struct hc_request rq = {"POST",     f->wh.url,       headers,
                            u->json,    strlen(u->json), (long)f->cfg.webhook_timeout_ms,
                            1024 * 1024};
    struct push *p = xcalloc(1, sizeof(*p));
    p->f = f;
    p->u = u;
    p->gen = f->wh.gen;
    u->inflight = 1;
    f->wh_inflight++;
    if (hc_request(f->hc, &rq, on_push_done, p) != 0) {
        u->inflight = 0;
        f->wh_inflight--;
        free(p);
    }
}

/*
 * Start pushes for every chat whose oldest pending update is due, up to
 * max_connections at once. One update per chat at a time keeps each chat's
 * order, as Telegram does. O(queue) per pass.
 */
static void wh_dispatch(struct fake *f)
{
    if (f->wh.url == NULL || f->closing)
        return;
    uint64_t now = vn_now_ms(), wake = 0;
    unsigned gen = ++f->scan_gen;
    for (struct fk_update *u = f->uq_head; u; u = u->next) {
        if (f->wh_inflight >= f->wh.max_connections)
            break;
        struct fk_chat *ch = chat_get(f, u->chat_key);
        if (ch->scan_gen == gen)
            continue; /* an earlier update of this chat is still pending */
        ch->scan_gen = gen;
        if (u->inflight)
            continue;
        if (u->next_try_ms > now) {
            if (wake == 0 || u->next_try_ms < wake)
                wake = u->next_try_ms;
            continue;
        }
        wh_push(f, u);
    }
    if (wake)
        uv_timer_start(&f->wh_timer, on_wh_timer, wake - now, 0);
}

/* -- posting updates (control API) -- */

/* The chat an update belongs to: its chat, the chat of its message, its sender. */
static int64_t update_chat_key(json_object *payload)
{
    json_object *v = NULL, *id = NULL;
    if (!json_object_is_type(payload, json_type_object))
        return 0;
    if (json_object_object_get_ex(payload, "chat", &v) && json_object_object_get_ex(v, "id", &id))
        return json_object_get_int64(id);
    if (json_object_object_get_ex(payload, "message", &v) &&
        json_object_object_get_ex(v, "chat", &v) && json_object_object_get_ex(v, "id", &id))
        return json_object_get_int64(id);
    if (json_object_object_get_ex(payload, "from", &v) && json_object_object_get_ex(v, "id", &id))
        return json_object_get_int64(id);
    if (json_object_object_get_ex(payload, "user", &v) && json_object_object_get_ex(v, "id", &id))
        return json_object_get_int64(id);
    return 0;
}

/* Remember what a posted update tells about its chat and message, so replies
 * and edits see the same chat and message ids continue after the user's. */
static void learn_from_update(struct fake *f, const char *type, json_object *payload)
{
    json_object *chat = NULL, *id = NULL, *mid = NULL;
    if (strcmp(type, "message") != 0 && strcmp(type, "edited_message") != 0 &&
        strcmp(type, "channel_post") != 0)
        return;
    if (!json_object_object_get_ex(payload, "chat", &chat) ||
        !json_object_object_get_ex(chat, "id", &id) || json_object_get_int64(id) == 0)
        return;
    struct fk_chat *ch = chat_get(f, json_object_get_int64(id));
    set_str(&ch->info, json_object_to_json_string_ext(chat, JSON_FLAGS));
    if (strcmp(type, "edited_message") == 0 ||
        !json_object_object_get_ex(payload, "message_id", &mid))
        return;
    int64_t m_id = json_object_get_int64(mid);
    if (m_id <= 0 || msg_find(ch, m_id))
        return;
    struct fk_msg *m = msg_slot(ch, m_id);
    if (m == NULL)
        return;
    json_object *text = NULL;
    m->date = unix_now();
    m->text = xstrdup(json_object_object_get_ex(payload, "text", &text) && is_str(text)
                          ? json_object_get_string(text)
                          : "");
    m->raw = json_text(payload);
}

static void h_post_updates(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    enum json_tokener_error jerr = json_tokener_success;
    json_object *in = json_tokener_parse_verbose(req->body.data ? req->body.data : "", &jerr);
    json_object *ids = NULL, *filtered = NULL, *out = NULL;
    size_t n;

    if (in == NULL) {
        http_respond_error(req, 400, "bad_json", "body is not JSON: %s",
                           json_tokener_error_desc(jerr));
        return;
    }
    if (json_object_is_type(in, json_type_object)) {
        json_object *arr = json_object_new_array();
        json_object_array_add(arr, in);
        in = arr;
    }
    if (!json_object_is_type(in, json_type_array)) {
        http_respond_error(req, 400, "bad_update", "expected an Update object or an array of them");
        goto out;
    }
    n = json_object_array_length(in);
    if (f->uq_len + n > MAX_PENDING_UPDATES) {
        http_respond_error(req, 400, "too_many_updates",
                           "%zu updates pending; at most %u may wait (confirm some with "
                           "getUpdates or set a webhook)",
                           f->uq_len, MAX_PENDING_UPDATES);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *u = json_object_array_get_idx(in, i), *v = NULL;
        if (!u || !json_object_is_type(u, json_type_object) || json_object_object_length(u) == 0) {
            http_respond_error(req, 400, "bad_update", "update %zu is not a non-empty object", i);
            goto out;
        }
        if (json_object_object_get_ex(u, "update_id", &v) &&
            (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)) {
            http_respond_error(req, 400, "bad_update",
                               "update %zu: update_id must be a non-negative integer", i);
            goto out;
        }
        int typed = 0;
        json_object_object_foreach(u, key, val)
        {
            (void)val;
            if (strcmp(key, "update_id") != 0)
                typed = 1;
        }
        if (!typed) {
            http_respond_error(req, 400, "bad_update",
                               "update %zu has no payload (e.g. \"message\")", i);
            goto out;
        }
    }

    ids = json_object_new_array();
    filtered = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *u = json_object_array_get_idx(in, i), *v = NULL, *payload = NULL;
        int64_t id;
        const char *type = NULL;
        if (json_object_object_get_ex(u, "update_id", &v)) {
            id = json_object_get_int64(v);
        } else {
            id = f->next_update_id;
        }
        if (id >= f->next_update_id)
            f->next_update_id = id + 1;
        /* Rebuild with update_id first, as Telegram sends it. */
        json_object *o = json_object_new_object();
        json_object_object_add(o, "update_id", json_object_new_int64(id));
        json_object_object_foreach(u, key, val)
        {
            if (strcmp(key, "update_id") == 0)
                continue;
            if (type == NULL) {
                type = key;
                payload = val;
            }
            json_object_object_add(o, key, json_object_get(val));
        }
        if (!type_allowed(f, type)) {
            json_object_array_add(filtered, json_object_new_int64(id));
            json_object_put(o);
            continue;
        }
        learn_from_update(f, type, payload);
        struct fk_update *up = xcalloc(1, sizeof(*up));
        up->id = id;
        up->chat_key = update_chat_key(payload);
        snprintf(up->type, sizeof(up->type), "%s", type);
        up->json = json_text(o);
        json_object_put(o);
        up->prev = f->uq_tail;
        if (f->uq_tail)
            f->uq_tail->next = up;
        else
            f->uq_head = up;
        f->uq_tail = up;
        f->uq_len++;
        json_object_array_add(ids, json_object_new_int64(id));
    }
    out = json_object_new_object();
    json_object_object_add(out, "queued",
                           json_object_new_int64((int64_t)json_object_array_length(ids)));
    json_object_object_add(out, "update_ids", ids);
    if (json_object_array_length(filtered) > 0)
        json_object_object_add(out, "filtered_by_allowed_updates", filtered);
    else
        json_object_put(filtered);
    json_object_object_add(out, "delivery",
                           json_object_new_string(f->wh.url ? "webhook" : "getUpdates"));
    ctl_reply(req, 200, out);
    if (f->wh.url)
        wh_dispatch(f);
    else
        poll_wake(f);
out:
    json_object_put(in);
}

static void h_get_updates_list(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    for (struct fk_update *u = f->uq_head; u; u = u->next) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "update_id", json_object_new_int64(u->id));
        json_object_object_add(e, "type", json_object_new_string(u->type));
        json_object_object_add(e, "chat_key", json_object_new_int64(u->chat_key));
        json_object_object_add(e, "inflight", json_object_new_boolean(u->inflight));
        json_object_object_add(e, "attempts", json_object_new_int64(u->attempts));
        json_object_object_add(e, "update", json_tokener_parse(u->json));
        json_object_array_add(arr, e);
    }
    json_object_object_add(o, "pending", arr);
    ctl_reply(req, 200, o);
}

/* -- webhook methods -- */

static int secret_ok(const char *s)
{
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int url_ok(const char *u)
{
    const char *host;
    if (strncasecmp(u, "https://", 8) == 0)
        host = u + 8;
    else if (strncasecmp(u, "http://", 7) == 0)
        host = u + 7;
    else
        return 0;
    return *host && *host != '/' && *host != ':' && strlen(u) < 2048;
}

static void webhook_clear(struct fake *f)
{
    set_str(&f->wh.url, NULL);
    set_str(&f->wh.secret, NULL);
    set_str(&f->wh.last_error_message, NULL);
    f->wh.last_error_date = 0;
    f->wh.max_connections = 0;
    f->wh.gen++;
    uv_timer_stop(&f->wh_timer);
}

static void m_delete_webhook(struct call_ctx *c)
{
    struct fake *f = c->f;
    int had = f->wh.url != NULL;
    if (p_bool(c, "drop_pending_updates"))
        uq_drop_all(f);
    webhook_clear(f);
    if (had)
        vn_info(MOD, "webhook deleted");
    api_ok(c, json_object_new_boolean(1),
           had ? "Webhook was deleted" : "Webhook is already deleted");
}

static void m_set_webhook(struct call_ctx *c)
{
    struct fake *f = c->f;
    const char *url = p_str(c, "url");
    const char *secret = p_str(c, "secret_token");
    int64_t maxc = p_i64(c, "max_connections", 40);

    if (url == NULL || *url == '\0') {
        m_delete_webhook(c);
        return;
    }
    if (!url_ok(url)) {
        api_error(c, 400, "Bad Request: invalid webhook URL specified");
        return;
    }
    if (secret && strlen(secret) > SECRET_TOKEN_MAX) {
        api_error(c, 400, "Bad Request: secret token is too long");
        return;
    }
    if (secret && !secret_ok(secret)) {
        api_error(c, 400, "Bad Request: secret token contains unallowed characters");
        return;
    }
    if (secret && *secret == '\0')
        secret = NULL;
    if (maxc < 1)
        maxc = 1;
    if (maxc > 100)
        maxc = 100;
    int drop = p_bool(c, "drop_pending_updates");
    allowed_update(c);
    if (f->wh.url && strcmp(f->wh.url, url) == 0 && same(f->wh.secret, secret) &&
        f->wh.max_connections == (unsigned)maxc && !drop) {
        api_ok(c, json_object_new_boolean(1), "Webhook is already set");
        return;
    }
    if (drop)
        uq_drop_all(f);
    poll_abort(f, "Conflict: terminated by setWebhook request");
    webhook_clear(f);
    f->wh.url = xstrdup(url);
    f->wh.secret = secret ? xstrdup(secret) : NULL;
    f->wh.max_connections = (unsigned)maxc;
    vn_info(MOD, "webhook set to %s (secret %s, max_connections %u)", url, secret ? "set" : "none",
            f->wh.max_connections);
    api_ok(c, json_object_new_boolean(1), "Webhook was set");
    wh_dispatch(f);
}

static json_object *webhook_info_json(const struct fake *f)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "url", json_object_new_string(f->wh.url ? f->wh.url : ""));
    json_object_object_add(o, "has_custom_certificate", json_object_new_boolean(0));
    json_object_object_add(o, "pending_update_count", json_object_new_int64((int64_t)f->uq_len));
    if (f->wh.last_error_date) {
        json_object_object_add(o, "last_error_date", json_object_new_int64(f->wh.last_error_date));
        json_object_object_add(
            o, "last_error_message",
            json_object_new_string(f->wh.last_error_message ? f->wh.last_error_message : ""));
    }
    if (f->wh.url) {
        json_object_object_add(o, "max_connections", json_object_new_int64(f->wh.max_connections));
        json_object_object_add(o, "ip_address", json_object_new_string("127.0.0.1"));
    }
    if (f->allowed)
        json_object_object_add(o, "allowed_updates", allowed_json(f));
    return o;
}

static void m_get_webhook_info(struct call_ctx *c)
{
    api_ok(c, webhook_info_json(c->f), NULL);
}

/* ---- dispatch ------------------------------------------------------------- */

static void on_sweep(uv_timer_t *t);

static const struct fk_method methods[] = {
    {"getMe", m_get_me},
    {"sendMessage", m_send_message},
    {"editMessageText", m_edit_message_text},
    {"editMessageReplyMarkup", m_edit_message_reply_markup},
    {"deleteMessage", m_delete_message},
    {"answerCallbackQuery", m_answer_callback_query},
    {"sendChatAction", m_send_chat_action},
    {"setWebhook", m_set_webhook},
    {"deleteWebhook", m_delete_webhook},
    {"getWebhookInfo", m_get_webhook_info},
    {"getUpdates", m_get_updates},
};

static const struct fk_method *method_find(const char *name)
{
    for (size_t i = 0; i < VN_ARRAY_LEN(methods); i++)
        if (strcasecmp(methods[i].name, name) == 0)
            return &methods[i];
    return NULL;
}

/* The first queued fault matching this call, consumed (count decremented). */
static struct fk_fault *fault_take(struct call_ctx *c, struct fk_fault *copy)
{
    struct fake *f = c->f;
    const char *chat = p_str(c, "chat_id");
    struct fk_fault **pp = &f->faults;
    for (struct fk_fault *ft = f->faults; ft; pp = &ft->next, ft = ft->next) {
        if (strcmp(ft->method, "*") != 0 && strcasecmp(ft->method, c->method) != 0)
            continue;
        if (ft->chat[0] && (chat == NULL || strcmp(ft->chat, chat) != 0))
            continue;
        *copy = *ft;
        copy->description = ft->description ? xstrdup(ft->description) : NULL;
        if (ft->count > 0 && --ft->count == 0) {
            *pp = ft->next;
            free(ft->description);
            free(ft);
        }
        f->faults_applied++;
        return copy;
    }
    return NULL;
}

static json_object *fault_answer(const struct fk_fault *ft, int *status)
{
    const char *d = ft->description;
    char buf[128];
    json_object *params = NULL;
    switch (ft->kind) {
    case FAULT_429:
        *status = 429;
        return tg_retry_after(ft->retry_after);
    case FAULT_5XX:
        *status = ft->status;
        if (d == NULL) {
            snprintf(buf, sizeof(buf), "%s",
                     reason_phrase(ft->status)[0] ? reason_phrase(ft->status)
                                                  : "Internal Server Error");
            d = buf;
        }
        break;
    case FAULT_403:
        *status = 403;
        d = d ? d : "Forbidden: bot was blocked by the user";
        break;
    case FAULT_400:
        *status = 400;
        d = d ? d : "Bad Request: chat not found";
        break;
    case FAULT_MIGRATE:
        *status = 400;
        d = d ? d : "Bad Request: group chat was upgraded to a supergroup chat";
        params = json_object_new_object();
        json_object_object_add(params, "migrate_to_chat_id", json_object_new_int64(ft->migrate_to));
        break;
    default:
        *status = 500;
        d = "Internal Server Error";
        break;
    }
    return tg_error(*status, d, params);
}

static void run_method(struct call_ctx *c)
{
    c->m->fn(c);
}

/* A Bot API request: /bot<token>/<method>. */
static void h_api(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    char seg[512] = "", method[40] = "", err[256] = "";
    struct fk_fault ft;

    if (http_req_param(req, "bot", seg, sizeof(seg)) == NULL ||
        http_req_param(req, "method", method, sizeof(method)) == NULL ||
        strncmp(seg, "bot", 3) != 0) {
        if (strcmp(seg, "_fake") == 0) {
            /* A control path with the wrong method lands here too: the Bot
             * API route takes GET and POST on any two segments. */
            static const char *const known[] = {"calls", "updates", "faults",  "config",
                                                "stats", "reset",   "messages"};
            for (size_t i = 0; i < VN_ARRAY_LEN(known); i++)
                if (strcmp(method, known[i]) == 0) {
                    http_respond_error(req, 405, "method_not_allowed", "%s is not supported on %s",
                                       http_method_name(req->method), req->path);
                    return;
                }
            http_respond_error(req, 404, "not_found", "no control endpoint %s", req->path);
            return;
        }
        http_respond(req, 404, "application/json", TG_NOT_FOUND, strlen(TG_NOT_FOUND));
        return;
    }
    struct call_ctx *c = xcalloc(1, sizeof(*c));
    c->f = f;
    c->req = req;
    c->at_ms = vn_wall_ms();
    c->t0 = vn_now_ms();
    c->state = CTX_RUNNING;
    vn_buf_init(&c->body);
    snprintf(c->method, sizeof(c->method), "%s", method);
    const char *token = seg + 3;
    int64_t bot_id = 0;
    if (f->token)
        token = f->token;
    bot_id = (int64_t)strtoll(token, NULL, 10);
    c->bot_id = bot_id > 0 ? bot_id : DEFAULT_BOT_ID;
    c->m = method_find(method);

    int bad_params = parse_params(c, err, sizeof(err));
    if (f->token && strcmp(seg + 3, f->token) != 0) {
        api_error(c, 401, "Unauthorized");
        return;
    }
    if (bad_params) {
        api_error(c, 400, err);
        return;
    }
    if (c->m == NULL) {
        api_error(c, 404, "Not Found");
        return;
    }
    snprintf(c->method, sizeof(c->method), "%s", c->m->name);

    if (fault_take(c, &ft)) {
        note_add(c, "fault", fault_names[ft.kind]);
        switch (ft.kind) {
        case FAULT_LATENCY:
            c->delay_ms += ft.latency_ms;
            break;
        case FAULT_NETWORK:
            /* No answer: the client sees a timeout (or the server's idle
             * timeout closes the connection). Freed once the client left. */
            if (f->closing) {
                free(ft.description);
                api_error(c, 502, "Bad Gateway");
                return;
            }
            c->state = CTX_HOLDING;
            c->status = 0;
            record_call(c);
            f->holds++;
            pending_link(c);
            if (!uv_is_active((uv_handle_t *)&f->sweep))
                uv_timer_start(&f->sweep, on_sweep, 500, 500);
            free(ft.description);
            return;
        default: {
            int status = 0;
            json_object *ans = fault_answer(&ft, &status);
            if (ft.kind == FAULT_429)
                f->r429_injected++;
            if (ft.latency_ms)
                c->delay_ms += ft.latency_ms;
            if (ft.apply) {
                c->override = ans;
                c->override_status = status;
                break;
            }
            free(ft.description);
            api_answer(c, status, ans);
            return;
        }
        }
        free(ft.description);
    }
    run_method(c);
}

/* ---- calls made by webhook replies ---------------------------------------- */

/*
 * Telegram runs a method a webhook names in its 2xx answer (except get*,
 * setWebhook, deleteWebhook, close, logOut) and drops the result; so do we,
 * recording it with "via":"webhook_reply".
 */
static void run_reply_call(struct fake *f, json_object *obj)
{
    json_object *mv = NULL;
    if (!json_object_object_get_ex(obj, "method", &mv) || !is_str(mv))
        return;
    const char *name = json_object_get_string(mv);
    if (strncasecmp(name, "get", 3) == 0 || strcasecmp(name, "setWebhook") == 0 ||
        strcasecmp(name, "deleteWebhook") == 0 || strcasecmp(name, "close") == 0 ||
        strcasecmp(name, "logOut") == 0)
        return;
    struct call_ctx *c = xcalloc(1, sizeof(*c));
    c->f = f;
    c->at_ms = vn_wall_ms();
    c->t0 = vn_now_ms();
    vn_buf_init(&c->body);
    snprintf(c->method, sizeof(c->method), "%s", name);
    c->bot_id =
        f->token && strtoll(f->token, NULL, 10) > 0 ? strtoll(f->token, NULL, 10) : DEFAULT_BOT_ID;
    c->params = json_object_new_object();
    json_object_object_foreach(obj, key, val)
    {
        if (strcmp(key, "method") != 0)
            json_object_object_add(c->params, key, json_object_get(val));
    }
    note_add(c, "via", "webhook_reply");
    c->m = method_find(name);
    if (c->m == NULL) {
        api_error(c, 404, "Not Found");
        return;
    }
    snprintf(c->method, sizeof(c->method), "%s", c->m->name);
    run_method(c);
}

/* ---- control API ---------------------------------------------------------- */

static void h_calls_get(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    char mbuf[64], sbuf[32], lbuf[32];
    const char *method = query_arg(req->query, "method", mbuf, sizeof(mbuf));
    const char *since_s = query_arg(req->query, "since", sbuf, sizeof(sbuf));
    const char *limit_s = query_arg(req->query, "limit", lbuf, sizeof(lbuf));
    unsigned long since = 0, limit = (unsigned long)f->max_calls;
    if (since_s && parse_uint(since_s, ULONG_MAX, &since) != 0) {
        http_respond_error(req, 400, "bad_query", "since must be a call seq number, got \"%s\"",
                           since_s);
        return;
    }
    if (limit_s && parse_uint(limit_s, ULONG_MAX, &limit) != 0) {
        http_respond_error(req, 400, "bad_query", "limit must be a number, got \"%s\"", limit_s);
        return;
    }
    struct vn_buf b = VN_BUF_INIT;
    unsigned long n = 0;
    vn_buf_puts(&b, "{\"calls\":[");
    for (size_t i = 0; i < f->calls_len && n < limit; i++) {
        const struct fk_call *rec = &f->calls[(f->calls_head + i) % f->max_calls];
        if (rec->seq <= since)
            continue;
        if (method && strcasecmp(method, rec->method) != 0)
            continue;
        if (n++)
            vn_buf_putc(&b, ',');
        vn_buf_puts(&b, rec->json);
    }
    vn_buf_printf(&b, "],\"count\":%lu,\"last_seq\":%" PRIu64 ",\"dropped\":%" PRIu64 "}\n", n,
                  f->next_seq, f->dropped_calls);
    http_respond_json(req, 200, &b);
    vn_buf_free(&b);
}

static void h_calls_delete(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    size_t n = f->calls_len;
    calls_clear(f);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "cleared", json_object_new_int64((int64_t)n));
    json_object_object_add(o, "last_seq", json_object_new_int64((int64_t)f->next_seq));
    ctl_reply(req, 200, o);
}

static json_object *fault_json(const struct fk_fault *ft)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64((int64_t)ft->id));
    json_object_object_add(o, "method", json_object_new_string(ft->method));
    json_object_object_add(o, "kind", json_object_new_string(fault_names[ft->kind]));
    json_object_object_add(o, "count", json_object_new_int64(ft->count));
    if (ft->kind == FAULT_429)
        json_object_object_add(o, "retry_after", json_object_new_int64(ft->retry_after));
    if (ft->kind == FAULT_5XX)
        json_object_object_add(o, "status", json_object_new_int(ft->status));
    if (ft->latency_ms)
        json_object_object_add(o, "latency_ms", json_object_new_int64(ft->latency_ms));
    if (ft->kind == FAULT_MIGRATE)
        json_object_object_add(o, "migrate_to_chat_id", json_object_new_int64(ft->migrate_to));
    if (ft->chat[0])
        json_object_object_add(o, "chat_id", json_object_new_string(ft->chat));
    if (ft->description)
        json_object_object_add(o, "description", json_object_new_string(ft->description));
    if (ft->apply)
        json_object_object_add(o, "apply", json_object_new_boolean(1));
    return o;
}

static json_object *faults_json(const struct fake *f)
{
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    for (const struct fk_fault *ft = f->faults; ft; ft = ft->next)
        json_object_array_add(a, fault_json(ft));
    json_object_object_add(o, "faults", a);
    return o;
}

static void faults_clear(struct fake *f)
{
    while (f->faults) {
        struct fk_fault *n = f->faults->next;
        free(f->faults->description);
        free(f->faults);
        f->faults = n;
    }
}

/* An integer member of a control body: 0 absent, 1 found, -1 wrong type/range. */
static int get_int_member(json_object *o, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return -1;
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return -1;
    *out = x;
    return 1;
}

/* Build one fault from its JSON description; NULL with why set when invalid. */
static struct fk_fault *fault_parse(json_object *o, char *why, size_t wlen)
{
    static const char *const known[] = {
        "method",     "kind",    "count",       "retry_after",        "status",
        "latency_ms", "chat_id", "description", "migrate_to_chat_id", "apply"};
    json_object *v = NULL;
    struct fk_fault *ft = NULL;
    int64_t x = 0;

    if (!json_object_is_type(o, json_type_object)) {
        snprintf(why, wlen, "a fault must be an object");
        return NULL;
    }
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        size_t k = 0;
        while (k < VN_ARRAY_LEN(known) && strcmp(known[k], key) != 0)
            k++;
        if (k == VN_ARRAY_LEN(known)) {
            snprintf(why, wlen, "unknown fault field \"%s\"", key);
            return NULL;
        }
    }
    ft = xcalloc(1, sizeof(*ft));
    snprintf(ft->method, sizeof(ft->method), "*");
    ft->count = 1;
    ft->retry_after = 5;
    ft->status = 500;
    if (!json_object_object_get_ex(o, "kind", &v) || !is_str(v)) {
        snprintf(why, wlen,
                 "\"kind\" is required: one of 429, 5xx, 403, 400, migrate, latency, network");
        goto bad;
    }
    const char *kind = json_object_get_string(v);
    size_t k = 0;
    while (k < VN_ARRAY_LEN(fault_names) && strcmp(fault_names[k], kind) != 0)
        k++;
    if (k == VN_ARRAY_LEN(fault_names)) {
        snprintf(why, wlen,
                 "unknown kind \"%s\": use 429, 5xx, 403, 400, migrate, latency or network", kind);
        goto bad;
    }
    ft->kind = (enum fault_kind)k;
    if (json_object_object_get_ex(o, "method", &v) && v) {
        if (!is_str(v) || json_object_get_string_len(v) == 0 ||
            (size_t)json_object_get_string_len(v) >= sizeof(ft->method)) {
            snprintf(why, wlen, "\"method\" must be a method name or \"*\"");
            goto bad;
        }
        snprintf(ft->method, sizeof(ft->method), "%s", json_object_get_string(v));
    }
    switch (get_int_member(o, "count", -1, 1000000000, &x)) {
    case -1:
        snprintf(why, wlen, "\"count\" must be a positive integer or -1 (until cleared)");
        goto bad;
    case 1:
        if (x == 0) {
            snprintf(why, wlen, "\"count\" must be a positive integer or -1 (until cleared)");
            goto bad;
        }
        ft->count = (long)x;
        break;
    }
    switch (get_int_member(o, "retry_after", 1, 86400, &x)) {
    case -1:
        snprintf(why, wlen, "\"retry_after\" must be 1..86400 seconds");
        goto bad;
    case 1:
        ft->retry_after = (unsigned)x;
        break;
    }
    switch (get_int_member(o, "status", 500, 599, &x)) {
    case -1:
        snprintf(why, wlen, "\"status\" must be 500..599");
        goto bad;
    case 1:
        ft->status = (int)x;
        break;
    }
    switch (get_int_member(o, "latency_ms", 0, 600000, &x)) {
    case -1:
        snprintf(why, wlen, "\"latency_ms\" must be 0..600000");
        goto bad;
    case 1:
        ft->latency_ms = (unsigned)x;
        break;
    }
    if (ft->kind == FAULT_LATENCY && ft->latency_ms == 0) {
        snprintf(why, wlen, "a latency fault needs \"latency_ms\" > 0");
        goto bad;
    }
    ft->migrate_to = -1001000000000LL - 1;
    switch (get_int_member(o, "migrate_to_chat_id", INT64_MIN, -1, &x)) {
    case -1:
        snprintf(why, wlen, "\"migrate_to_chat_id\" must be a negative chat id");
        goto bad;
    case 1:
        ft->migrate_to = x;
        break;
    }
    if (json_object_object_get_ex(o, "chat_id", &v) && v) {
        if (json_object_is_type(v, json_type_int))
            snprintf(ft->chat, sizeof(ft->chat), "%" PRId64, json_object_get_int64(v));
        else if (is_str(v) && (size_t)json_object_get_string_len(v) < sizeof(ft->chat))
            snprintf(ft->chat, sizeof(ft->chat), "%s", json_object_get_string(v));
        else {
            snprintf(why, wlen, "\"chat_id\" must be an integer or an @username");
            goto bad;
        }
    }
    if (json_object_object_get_ex(o, "description", &v) && v) {
        if (!is_str(v)) {
            snprintf(why, wlen, "\"description\" must be a string");
            goto bad;
        }
        ft->description = xstrdup(json_object_get_string(v));
    }
    if (json_object_object_get_ex(o, "apply", &v) && v)
        ft->apply = json_object_get_boolean(v);
    return ft;
bad:
    free(ft->description);
    free(ft);
    return NULL;
}

static void h_faults_post(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    enum json_tokener_error jerr = json_tokener_success;
    json_object *in = json_tokener_parse_verbose(req->body.data ? req->body.data : "", &jerr);
    char why[200];
    struct fk_fault *head = NULL, **tail = &head;
    size_t count = 0;

    if (in == NULL) {
        http_respond_error(req, 400, "bad_json", "body is not JSON: %s",
                           json_tokener_error_desc(jerr));
        return;
    }
    if (json_object_is_type(in, json_type_object)) {
        json_object *arr = json_object_new_array();
        json_object_array_add(arr, in);
        in = arr;
    }
    if (!json_object_is_type(in, json_type_array)) {
        http_respond_error(req, 400, "bad_fault", "expected a fault object or an array of them");
        goto out;
    }
    for (struct fk_fault *ft = f->faults; ft; ft = ft->next)
        count++;
    if (count + json_object_array_length(in) > MAX_FAULTS) {
        http_respond_error(req, 400, "too_many_faults", "at most %u faults may be queued",
                           MAX_FAULTS);
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(in); i++) {
        struct fk_fault *ft = fault_parse(json_object_array_get_idx(in, i), why, sizeof(why));
        if (ft == NULL) {
            while (head) {
                struct fk_fault *n = head->next;
                free(head->description);
                free(head);
                head = n;
            }
            http_respond_error(req, 400, "bad_fault", "fault %zu: %s", i, why);
            goto out;
        }
        ft->id = ++f->next_fault_id;
        *tail = ft;
        tail = &ft->next;
    }
    /* Append in order: faults are consumed first-queued first. */
    struct fk_fault **end = &f->faults;
    while (*end)
        end = &(*end)->next;
    *end = head;
    vn_info(MOD, "%zu fault(s) queued", json_object_array_length(in));
    ctl_reply(req, 200, faults_json(f));
out:
    json_object_put(in);
}

static void h_faults_get(struct http_request *req, void *ud)
{
    ctl_reply(req, 200, faults_json(ud));
}

static void h_faults_delete(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    size_t n = 0;
    for (struct fk_fault *ft = f->faults; ft; ft = ft->next)
        n++;
    faults_clear(f);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "cleared", json_object_new_int64((int64_t)n));
    ctl_reply(req, 200, o);
}

static json_object *config_json(const struct fake *f)
{
    const struct fk_config *c = &f->cfg;
    json_object *o = json_object_new_object(), *l = json_object_new_object();
    json_object_object_add(o, "strict", json_object_new_boolean(c->strict));
    json_object_object_add(o, "latency_ms", json_object_new_int64(c->latency_ms));
    json_object_object_add(
        l, "model",
        json_object_new_string(c->limits.model == FK_RATE_BUCKET ? "bucket" : "window"));
    json_object_object_add(l, "global_per_s", json_object_new_int64(c->limits.global_per_s));
    json_object_object_add(l, "chat_per_s", json_object_new_double(c->limits.chat_per_s));
    json_object_object_add(l, "chat_burst", json_object_new_int64(c->limits.chat_burst));
    json_object_object_add(l, "group_per_min", json_object_new_int64(c->limits.group_per_min));
    json_object_object_add(o, "limits", l);
    json_object_object_add(o, "webhook_retry_ms", json_object_new_int64(c->webhook_retry_ms));
    json_object_object_add(o, "webhook_retry_max_ms",
                           json_object_new_int64(c->webhook_retry_max_ms));
    json_object_object_add(o, "webhook_timeout_ms", json_object_new_int64(c->webhook_timeout_ms));
    return o;
}

/* Apply a config body to *c; 0, or VN_EINVAL with why set (c untouched then
 * only if the caller passes a copy, which it does). */
static int config_apply(json_object *in, struct fk_config *c, char *why, size_t wlen)
{
    static const struct {
        const char *name;
        int64_t lo, hi;
    } ints[] = {{"latency_ms", 0, 600000},
                {"webhook_retry_ms", 0, 3600000},
                {"webhook_retry_max_ms", 0, 3600000},
                {"webhook_timeout_ms", 100, 600000}};
    int64_t x = 0;
    json_object *v = NULL;

    json_object_object_foreach(in, key, val)
    {
        (void)val;
        if (strcmp(key, "strict") && strcmp(key, "limits") && strcmp(key, "latency_ms") &&
            strcmp(key, "webhook_retry_ms") && strcmp(key, "webhook_retry_max_ms") &&
            strcmp(key, "webhook_timeout_ms")) {
            snprintf(why, wlen, "unknown config field \"%s\"", key);
            return VN_EINVAL;
        }
    }
    if (json_object_object_get_ex(in, "strict", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            snprintf(why, wlen, "\"strict\" must be true or false");
            return VN_EINVAL;
        }
        c->strict = json_object_get_boolean(v);
    }
    for (size_t i = 0; i < VN_ARRAY_LEN(ints); i++) {
        int r = get_int_member(in, ints[i].name, ints[i].lo, ints[i].hi, &x);
        if (r < 0) {
            snprintf(why, wlen, "\"%s\" must be an integer in %" PRId64 "..%" PRId64, ints[i].name,
                     ints[i].lo, ints[i].hi);
            return VN_EINVAL;
        }
        if (r == 0)
            continue;
        if (i == 0)
            c->latency_ms = (unsigned)x;
        else if (i == 1)
            c->webhook_retry_ms = (unsigned)x;
        else if (i == 2)
            c->webhook_retry_max_ms = (unsigned)x;
        else
            c->webhook_timeout_ms = (unsigned)x;
    }
    if (json_object_object_get_ex(in, "limits", &v)) {
        json_object *l = v;
        if (!json_object_is_type(l, json_type_object)) {
            snprintf(why, wlen, "\"limits\" must be an object");
            return VN_EINVAL;
        }
        json_object_object_foreach(l, lkey, lval)
        {
            (void)lval;
            if (strcmp(lkey, "model") && strcmp(lkey, "global_per_s") &&
                strcmp(lkey, "chat_per_s") && strcmp(lkey, "chat_burst") &&
                strcmp(lkey, "group_per_min")) {
                snprintf(why, wlen, "unknown limits field \"%s\"", lkey);
                return VN_EINVAL;
            }
        }
        if (json_object_object_get_ex(l, "model", &v)) {
            const char *m = is_str(v) ? json_object_get_string(v) : "";
            if (strcmp(m, "window") == 0)
                c->limits.model = FK_RATE_WINDOW;
            else if (strcmp(m, "bucket") == 0)
                c->limits.model = FK_RATE_BUCKET;
            else {
                snprintf(why, wlen, "limits.model must be \"window\" or \"bucket\"");
                return VN_EINVAL;
            }
        }
        static const struct {
            const char *name;
            int64_t lo, hi;
            const char *what;
        } lims[] = {{"global_per_s", 0, 100000, "0..100000 (0 = no limit)"},
                    {"chat_burst", 1, 10000, "1..10000"},
                    {"group_per_min", 0, 100000, "0..100000 (0 = no limit)"}};
        unsigned *dst[] = {&c->limits.global_per_s, &c->limits.chat_burst,
                           &c->limits.group_per_min};
        for (size_t i = 0; i < VN_ARRAY_LEN(lims); i++) {
            int r = get_int_member(l, lims[i].name, lims[i].lo, lims[i].hi, &x);
            if (r < 0) {
                snprintf(why, wlen, "limits.%s must be an integer in %s", lims[i].name,
                         lims[i].what);
                return VN_EINVAL;
            }
            if (r > 0)
                *dst[i] = (unsigned)x;
        }
        if (json_object_object_get_ex(l, "chat_per_s", &v)) {
            if (!(json_object_is_type(v, json_type_int) ||
                  json_object_is_type(v, json_type_double)) ||
                json_object_get_double(v) < 0 || json_object_get_double(v) > 10000) {
                snprintf(why, wlen, "limits.chat_per_s must be a number 0..10000 (0 = no limit)");
                return VN_EINVAL;
            }
            c->limits.chat_per_s = json_object_get_double(v);
        }
    }
    return 0;
}

static void h_config_post(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    enum json_tokener_error jerr = json_tokener_success;
    json_object *in = json_tokener_parse_verbose(req->body.data ? req->body.data : "", &jerr);
    char why[200];
    if (in == NULL || !json_object_is_type(in, json_type_object)) {
        http_respond_error(req, 400, "bad_config", "expected a JSON object%s%s", in ? "" : ": ",
                           in ? "" : json_tokener_error_desc(jerr));
        json_object_put(in);
        return;
    }
    struct fk_config next = f->cfg;
    if (config_apply(in, &next, why, sizeof(why)) != 0) {
        http_respond_error(req, 400, "bad_config", "%s", why);
        json_object_put(in);
        return;
    }
    if (memcmp(&next.limits, &f->cfg.limits, sizeof(next.limits)) != 0 ||
        next.strict != f->cfg.strict)
        rates_reset(f);
    f->cfg = next;
    json_object_put(in);
    vn_info(MOD,
            "config: strict %s, latency %u ms, limits %u/s global, %u per %.3g/s chat, %u/min "
            "group (%s)",
            f->cfg.strict ? "on" : "off", f->cfg.latency_ms, f->cfg.limits.global_per_s,
            f->cfg.limits.chat_burst, f->cfg.limits.chat_per_s, f->cfg.limits.group_per_min,
            f->cfg.limits.model == FK_RATE_BUCKET ? "bucket" : "window");
    ctl_reply(req, 200, config_json(f));
}

static void h_config_get(struct http_request *req, void *ud)
{
    ctl_reply(req, 200, config_json(ud));
}

static json_object *counts_json(const struct stat_count *a, size_t n)
{
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < n && a[i].name[0]; i++)
        json_object_object_add(o, a[i].name, json_object_new_int64((int64_t)a[i].n));
    return o;
}

static void h_stats(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    json_object *o = json_object_new_object(), *e = json_object_new_object(),
                *w = webhook_info_json(f);
    json_object_object_add(o, "uptime_ms",
                           json_object_new_int64((int64_t)(vn_now_ms() - f->started_ms)));
    json_object_object_add(o, "calls_total", json_object_new_int64((int64_t)f->calls_total));
    json_object_object_add(o, "calls", counts_json(f->by_method, f->nby_method));
    json_object_object_add(o, "status", counts_json(f->by_status, VN_ARRAY_LEN(f->by_status)));
    json_object_object_add(o, "sent_429",
                           json_object_new_int64((int64_t)(f->r429_injected + f->r429_strict)));
    json_object_object_add(e, "total",
                           json_object_new_int64((int64_t)(f->r429_injected + f->r429_strict)));
    json_object_object_add(e, "injected", json_object_new_int64((int64_t)f->r429_injected));
    json_object_object_add(e, "strict", json_object_new_int64((int64_t)f->r429_strict));
    json_object_object_add(o, "too_many_requests", e);
    json_object_object_add(o, "faults_applied", json_object_new_int64((int64_t)f->faults_applied));
    json_object_object_add(o, "messages_sent", json_object_new_int64((int64_t)f->messages_sent));
    json_object_object_add(o, "chats", json_object_new_int64((int64_t)f->nchats));
    json_object_object_add(o, "pending_updates", json_object_new_int64((int64_t)f->uq_len));
    json_object_object_add(o, "long_poll_waiting", json_object_new_boolean(f->poll != NULL));
    json_object_object_add(w, "has_secret_token", json_object_new_boolean(f->wh.secret != NULL));
    json_object_object_add(w, "inflight", json_object_new_int64(f->wh_inflight));
    json_object_object_add(w, "delivered", json_object_new_int64((int64_t)f->wh_delivered));
    json_object_object_add(w, "failed_attempts", json_object_new_int64((int64_t)f->wh_failed));
    json_object_object_add(o, "webhook", w);
    json_object_object_add(o, "config", config_json(f));
    ctl_reply(req, 200, o);
}

static void h_messages(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    char buf[64];
    int64_t id = 0;
    const char *s = query_arg(req->query, "chat_id", buf, sizeof(buf));
    struct fk_chat *ch = NULL;
    if (s && s[0] == '@')
        ch = chat_by_username(f, s + 1, 0);
    else if (s && parse_i64(s, &id) == 0 && id != 0)
        ch = chat_find(f, id);
    else {
        http_respond_error(req, 400, "bad_query", "chat_id (an integer or @username) is required");
        return;
    }
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    int64_t bot_id =
        f->token && strtoll(f->token, NULL, 10) > 0 ? strtoll(f->token, NULL, 10) : DEFAULT_BOT_ID;
    if (ch) {
        int64_t from = ch->last_msg_id - (int64_t)ch->msg_cap + 1;
        for (int64_t m_id = from < 1 ? 1 : from; m_id <= ch->last_msg_id; m_id++) {
            struct fk_msg *m = msg_find(ch, m_id);
            if (m)
                json_object_array_add(a, msg_json(f, bot_id, ch, m, NULL));
        }
        json_object_object_add(o, "chat", chat_json(ch));
    }
    json_object_object_add(o, "messages", a);
    ctl_reply(req, 200, o);
}

/* Back to the state at start: no calls, faults, updates, webhook, chats. */
static void fake_reset(struct fake *f)
{
    uq_drop_all(f);
    if (f->poll)
        poll_answer(f->poll); /* with an empty result */
    calls_clear(f);
    f->next_seq = f->dropped_calls = 0;
    faults_clear(f);
    f->next_fault_id = 0;
    uq_drop_all(f);
    f->next_update_id = f->first_update_id;
    allowed_clear(f);
    webhook_clear(f);
    for (size_t i = 0; i < f->chat_buckets; i++) {
        struct fk_chat *ch = f->chat_tab[i], *n;
        for (; ch; ch = n) {
            n = ch->hnext;
            chat_free(ch);
        }
        f->chat_tab[i] = NULL;
    }
    f->nchats = 0;
    f->next_channel_id = FIRST_CHANNEL_ID;
    fk_rate_cleanup(&f->global_rate);
    f->cfg = f->cli;
    free(f->by_method);
    f->by_method = NULL;
    f->nby_method = 0;
    memset(f->by_status, 0, sizeof(f->by_status));
    f->calls_total = f->r429_injected = f->r429_strict = f->faults_applied = 0;
    f->messages_sent = f->wh_delivered = f->wh_failed = 0;
}

static void h_reset(struct http_request *req, void *ud)
{
    struct fake *f = ud;
    fake_reset(f);
    vn_info(MOD, "reset");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "reset", json_object_new_boolean(1));
    ctl_reply(req, 200, o);
}

/* Paths that are neither /bot<token>/<method> nor control endpoints. */
static void h_not_found(struct http_request *req, void *ud)
{
    (void)ud;
    http_respond(req, 404, "application/json", TG_NOT_FOUND, strlen(TG_NOT_FOUND));
}

/* ---- lifecycle ------------------------------------------------------------ */

/* Held ("network") requests: free those whose client has gone. */
static void on_sweep(uv_timer_t *t)
{
    struct fake *f = t->data;
    struct call_ctx *c = f->pending, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == CTX_HOLDING && http_req_gone(c->req)) {
            http_respond(c->req, 502, "application/json", "", 0); /* into the void: frees it */
            c->req = NULL;
            ctx_free(c);
        }
    }
    if (f->holds == 0)
        uv_timer_stop(&f->sweep);
}

static void close_if(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Second half of shutdown: close the server, the client and our handles. */
static void on_flushed(uv_timer_t *t)
{
    struct fake *f = t->data;
    http_server_close(f->srv);
    hc_close(f->hc);
    uv_timer_stop(&f->wh_timer);
    uv_timer_stop(&f->sweep);
    close_if((uv_handle_t *)&f->wh_timer);
    close_if((uv_handle_t *)&f->sweep);
    close_if((uv_handle_t *)&f->sig_term);
    close_if((uv_handle_t *)&f->sig_int);
}

/*
 * Answer everything still waiting (a long poll with what is queued, delayed
 * answers now, held requests with 502), then close. http_server_close()
 * drops answers not yet written, so the closing waits FLUSH_MS for the
 * server to write them; the sweep timer is reused for that.
 */
static void fake_shutdown(struct fake *f)
{
    enum { FLUSH_MS = 100 };
    if (f->closing)
        return;
    f->closing = 1;
    vn_info(MOD, "shutting down");
    if (f->poll)
        poll_answer(f->poll);
    while (f->pending) {
        struct call_ctx *c = f->pending;
        if (c->state == CTX_HOLDING) {
            http_respond(c->req, 502, "application/json", TG_BAD_GATEWAY, strlen(TG_BAD_GATEWAY));
            c->req = NULL;
            ctx_free(c);
        } else {
            pending_unlink(c);
            deliver(c);
        }
    }
    uv_timer_stop(&f->wh_timer);
    uv_timer_start(&f->sweep, on_flushed, FLUSH_MS, 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    fake_shutdown(s->data);
}

static void fake_free(struct fake *f)
{
    calls_clear(f);
    free(f->calls);
    faults_clear(f);
    while (f->uq_head) {
        struct fk_update *u = f->uq_head;
        uq_unlink(f, u);
        update_free(u);
    }
    allowed_clear(f);
    set_str(&f->wh.url, NULL);
    set_str(&f->wh.secret, NULL);
    set_str(&f->wh.last_error_message, NULL);
    for (size_t i = 0; i < f->chat_buckets; i++) {
        struct fk_chat *ch = f->chat_tab[i], *n;
        for (; ch; ch = n) {
            n = ch->hnext;
            chat_free(ch);
        }
    }
    free(f->chat_tab);
    fk_rate_cleanup(&f->global_rate);
    free(f->by_method);
    free(f->token);
    free(f->username);
}

static int add_routes(struct fake *f)
{
    int rc = 0;
    rc |= http_router_add(f->router, HTTP_GET, "/_fake/calls", h_calls_get, f);
    rc |= http_router_add(f->router, HTTP_DELETE, "/_fake/calls", h_calls_delete, f);
    rc |= http_router_add(f->router, HTTP_GET, "/_fake/updates", h_get_updates_list, f);
    rc |= http_router_add(f->router, HTTP_POST, "/_fake/updates", h_post_updates, f);
    rc |= http_router_add(f->router, HTTP_GET, "/_fake/faults", h_faults_get, f);
    rc |= http_router_add(f->router, HTTP_POST, "/_fake/faults", h_faults_post, f);
    rc |= http_router_add(f->router, HTTP_DELETE, "/_fake/faults", h_faults_delete, f);
    rc |= http_router_add(f->router, HTTP_GET, "/_fake/config", h_config_get, f);
    rc |= http_router_add(f->router, HTTP_POST, "/_fake/config", h_config_post, f);
    rc |= http_router_add(f->router, HTTP_GET, "/_fake/stats", h_stats, f);
    rc |= http_router_add(f->router, HTTP_POST, "/_fake/reset", h_reset, f);
    rc |= http_router_add(f->router, HTTP_GET, "/_fake/messages", h_messages, f);
    rc |= http_router_add(f->router, HTTP_GET | HTTP_POST, "/{bot}/{method}", h_api, f);
    rc |= http_router_add(f->router, HTTP_GET | HTTP_POST, "/{any}", h_not_found, f);
    rc |= http_router_add(f->router, HTTP_GET | HTTP_POST, "/", h_not_found, f);
    return rc;
}

/* ---- command line --------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vestnik-fake-telegram [options]\n"
            "\n"
            "A fake Telegram Bot API server for tests and staging runs: /bot<token>/<method>\n"
            "with Telegram's response shapes, plus a control API under /_fake/ (calls,\n"
            "updates, faults, config, stats, messages, reset). See docs/testing.md.\n"
            "\n"
            "  --host ADDR          IPv4 address to listen on (default 127.0.0.1)\n"
            "  --port N             port; 0 picks a free one (default 8081). The port is\n"
            "                       printed on stdout as {\"listening\":N} once listening\n"
            "  --token TOKEN        accept only this bot token (default: any token)\n"
            "  --username NAME      the bot's username in getMe (default vestnik_fake_bot)\n"
            "  --strict             start in strict mode (429 when a client exceeds limits)\n"
            "  --global-per-s N     strict: sends per second for the bot (default 30)\n"
            "  --chat-per-s X       strict: sustained sends per second to a private chat (1)\n"
            "  --chat-burst N       strict: sends a private chat may take at once (3)\n"
            "  --group-per-min N    strict: sends per minute to a group or channel (20)\n"
            "  --rate-model M       strict: window (sliding windows, default) or bucket\n"
            "  --latency-ms N       delay every Bot API answer by N ms (default 0)\n"
            "  --max-calls N        calls kept for /_fake/calls (default %u)\n"
            "  --first-update-id N  the first update_id given out (default 1); scripts/run-dev\n"
            "                       starts from the clock so a bot whose Redis remembers the\n"
            "                       ids of an earlier run does not take them as duplicates\n"
            "  --http-timeout S     idle connection timeout in seconds (default 120)\n"
            "  --log-level LEVEL    debug, info, warn or error (default: LOG_LEVEL or info)\n"
            "  --help               this text\n"
            "\n"
            "Logs are JSON lines on stderr. SIGTERM or SIGINT: answer what waits, exit 0.\n",
            DEFAULT_MAX_CALLS);
}

struct cli {
    const char *host;
    unsigned long port;
    unsigned long http_timeout;
};

static int parse_cli(int argc, char **argv, struct fake *f, struct cli *cl)
{
    enum {
        O_HOST = 1,
        O_PORT,
        O_TOKEN,
        O_USERNAME,
        O_STRICT,
        O_LATENCY,
        O_MAX_CALLS,
        O_FIRST_UPDATE_ID,
        O_TIMEOUT,
        O_LOG,
        O_HELP,
        O_GLOBAL,
        O_CHAT_PER_S,
        O_CHAT_BURST,
        O_GROUP,
        O_MODEL
    };
    static const struct option opts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"token", required_argument, NULL, O_TOKEN},
        {"username", required_argument, NULL, O_USERNAME},
        {"strict", no_argument, NULL, O_STRICT},
        {"latency-ms", required_argument, NULL, O_LATENCY},
        {"max-calls", required_argument, NULL, O_MAX_CALLS},
        {"first-update-id", required_argument, NULL, O_FIRST_UPDATE_ID},
        {"http-timeout", required_argument, NULL, O_TIMEOUT},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, O_HELP},
        {"global-per-s", required_argument, NULL, O_GLOBAL},
        {"chat-per-s", required_argument, NULL, O_CHAT_PER_S},
        {"chat-burst", required_argument, NULL, O_CHAT_BURST},
        {"group-per-min", required_argument, NULL, O_GROUP},
        {"rate-model", required_argument, NULL, O_MODEL},
        {NULL, 0, NULL, 0},
    };
    unsigned long v;
    int o, lvl;
    opterr = 0;
    for (;;) {
        o = getopt_long(argc, argv, "", opts, NULL);
        if (o == -1)
            break;
        switch (o) {
        case O_HOST:
            cl->host = optarg;
            break;
        case O_PORT:
            if (parse_uint(optarg, 65535, &cl->port) != 0) {
                fprintf(stderr, "vestnik-fake-telegram: --port expects 0..65535, got \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        case O_TOKEN:
            if (*optarg == '\0' || strchr(optarg, '/')) {
                fprintf(stderr,
                        "vestnik-fake-telegram: --token must be non-empty and have no '/'\n");
                return 2;
            }
            set_str(&f->token, optarg);
            break;
        case O_USERNAME:
            set_str(&f->username, optarg);
            break;
        case O_STRICT:
            f->cli.strict = 1;
            break;
        case O_LATENCY:
            if (parse_uint(optarg, 600000, &v) != 0) {
                fprintf(stderr,
                        "vestnik-fake-telegram: --latency-ms expects 0..600000, got \"%s\"\n",
                        optarg);
                return 2;
            }
            f->cli.latency_ms = (unsigned)v;
            break;
        case O_FIRST_UPDATE_ID: {
            char *end;
            long long first = strtoll(optarg, &end, 10);
            if (*end || first < 1 || first > 2000000000000LL) {
                fprintf(stderr,
                        "vestnik-fake-telegram: --first-update-id expects 1..2000000000000, got "
                        "\"%s\"\n",
                        optarg);
                return 2;
            }
            f->first_update_id = first;
            break;
        }
        case O_MAX_CALLS:
            if (parse_uint(optarg, 10000000, &v) != 0 || v == 0) {
                fprintf(stderr,
                        "vestnik-fake-telegram: --max-calls expects 1..10000000, got \"%s\"\n",
                        optarg);
                return 2;
            }
            f->max_calls = v;
            break;
        case O_TIMEOUT:
            if (parse_uint(optarg, 86400, &cl->http_timeout) != 0 || cl->http_timeout == 0) {
                fprintf(
                    stderr,
                    "vestnik-fake-telegram: --http-timeout expects 1..86400 seconds, got \"%s\"\n",
                    optarg);
                return 2;
            }
            break;
        case O_LOG:
            lvl = vn_log_level_parse(optarg);
            if (lvl < 0) {
                fprintf(stderr,
                        "vestnik-fake-telegram: --log-level expects debug, info, warn or error, "
                        "got \"%s\"\n",
                        optarg);
                return 2;
            }
            vn_log_set_level(lvl);
            break;
        case O_GLOBAL:
        case O_GROUP:
        case O_CHAT_BURST:
            if (parse_uint(optarg, 100000, &v) != 0 || (o == O_CHAT_BURST && v == 0)) {
                fprintf(stderr, "vestnik-fake-telegram: --%s expects %s..100000, got \"%s\"\n",
                        o == O_GLOBAL  ? "global-per-s"
                        : o == O_GROUP ? "group-per-min"
                                       : "chat-burst",
                        o == O_CHAT_BURST ? "1" : "0", optarg);
                return 2;
            }
            if (o == O_GLOBAL)
                f->cli.limits.global_per_s = (unsigned)v;
            else if (o == O_GROUP)
                f->cli.limits.group_per_min = (unsigned)v;
            else
                f->cli.limits.chat_burst = (unsigned)v;
            break;
        case O_CHAT_PER_S: {
            char *end = NULL;
            double d = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(d >= 0 && d <= 10000)) {
                fprintf(
                    stderr,
                    "vestnik-fake-telegram: --chat-per-s expects a number 0..10000, got \"%s\"\n",
                    optarg);
                return 2;
            }
            f->cli.limits.chat_per_s = d;
            break;
        }
        case O_MODEL:
            if (strcmp(optarg, "window") == 0)
                f->cli.limits.model = FK_RATE_WINDOW;
            else if (strcmp(optarg, "bucket") == 0)
                f->cli.limits.model = FK_RATE_BUCKET;
            else {
                fprintf(
                    stderr,
                    "vestnik-fake-telegram: --rate-model expects window or bucket, got \"%s\"\n",
                    optarg);
                return 2;
            }
            break;
        case O_HELP:
            usage(stdout);
            return 1;
        default:
            fprintf(stderr, "vestnik-fake-telegram: unknown or incomplete option \"%s\"\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vestnik-fake-telegram: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct fake f;
    struct cli cl = {"127.0.0.1", 8081, 120};
    uv_loop_t loop;
    char err[512] = "";
    int rc;

    memset(&f, 0, sizeof(f));
    const char *env_level = getenv("LOG_LEVEL");
    if (env_level && *env_level) {
        int lvl = vn_log_level_parse(env_level);
        if (lvl < 0) {
            fprintf(
                stderr,
                "vestnik-fake-telegram: LOG_LEVEL expects debug, info, warn or error, got \"%s\"\n",
                env_level);
            return 2;
        }
        vn_log_set_level(lvl);
    }
    f.max_calls = DEFAULT_MAX_CALLS;
    f.cli.limits.model = FK_RATE_WINDOW;
    f.cli.limits.global_per_s = 30;
    f.cli.limits.chat_per_s = 1.0;
    f.cli.limits.chat_burst = 3;
    f.cli.limits.group_per_min = 20;
    f.cli.webhook_retry_ms = 1000;
    f.cli.webhook_retry_max_ms = 60000;
    f.cli.webhook_timeout_ms = 15000;
    rc = parse_cli(argc, argv, &f, &cl);
    if (rc != 0) {
        fake_free(&f);
        return rc == 1 ? 0 : 2;
    }
    if (f.username == NULL)
        f.username = xstrdup("vestnik_fake_bot");
    f.cfg = f.cli;
    f.calls = xcalloc(f.max_calls, sizeof(*f.calls));
    f.chat_buckets = 256;
    f.chat_tab = xcalloc(f.chat_buckets, sizeof(*f.chat_tab));
    f.next_channel_id = FIRST_CHANNEL_ID;
    if (f.first_update_id < 1)
        f.first_update_id = 1;
    f.next_update_id = f.first_update_id;
    f.started_ms = vn_now_ms();

    signal(SIGPIPE, SIG_IGN);
    vn_log_route_lws();
    uv_loop_init(&loop);
    f.loop = &loop;
    f.router = http_router_new();
    if (add_routes(&f) != 0) {
        vn_error(MOD, "route table is inconsistent");
        rc = 1;
        goto out_router;
    }
    struct http_server_opts hopt = {cl.host, (int)cl.port, MAX_BODY, (int)cl.http_timeout, NULL};
    f.srv = http_server_new(&loop, &hopt, f.router, err, sizeof(err));
    if (f.srv == NULL) {
        vn_error(MOD, "%s", err);
        rc = 1;
        goto out_router;
    }
    f.hc = hc_new(&loop, NULL);
    uv_timer_init(&loop, &f.wh_timer);
    f.wh_timer.data = &f;
    uv_timer_init(&loop, &f.sweep);
    f.sweep.data = &f;
    uv_signal_init(&loop, &f.sig_term);
    uv_signal_init(&loop, &f.sig_int);
    f.sig_term.data = f.sig_int.data = &f;
    uv_signal_start(&f.sig_term, on_signal, SIGTERM);
    uv_signal_start(&f.sig_int, on_signal, SIGINT);

    printf("{\"listening\":%d}\n", http_server_port(f.srv));
    fflush(stdout);
    vn_info(MOD, "fake Telegram Bot API on http://%s:%d (token %s, strict %s, latency %u ms)",
            cl.host, http_server_port(f.srv), f.token ? "fixed" : "any",
            f.cfg.strict ? "on" : "off", f.cfg.latency_ms);
    uv_run(&loop, UV_RUN_DEFAULT);
    http_server_free(f.srv);
    f.srv = NULL;
    rc = 0;
    vn_info(MOD, "stopped");
out_router:
    if (uv_loop_close(&loop) != 0) {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    http_router_free(f.router);
    fake_free(&f);
    return rc;
}
