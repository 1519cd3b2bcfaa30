#include "notifier/ntf_envelope.h"
#include "bot_runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "bot/tg_client.h"
#include "bot/tg_update.h"
#include "core/amqp.h"
#include "core/http_route.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pg.h"
#include "core/redis.h"
#include "fsm/fsm.h"
#include "fsm/fsm_store.h"

#define TIMEOUTS_KEY    "vn:fsm:timeouts"
#define NBUCKETS        4096
#define MAX_CAS_RETRIES 20

/* A loaded flow set shared by the jobs that started with it (reload swaps). */
struct set_ref {
    struct fsm_set *set;
    int refs;
};

struct conv_q;

enum job_src { JOB_WEBHOOK, JOB_POLL, JOB_TIMEOUT, JOB_API };

struct job {
    struct job *next;
    struct bot_runtime *rt;
    struct conv_q *q;
    enum job_src src;
    struct fsm_input in;
    struct tg_update *update; /* owned */
    char *flow, *state;       /* TIMEOUT / START */
    json_object *data;        /* START */
    int64_t update_id;        /* -1 when not an update */
    struct http_request *req; /* WEBHOOK / API: answered when the job ends */
    char *timeout_member;     /* TIMEOUT: the schedule entry, put back if the job fails */
    struct set_ref *set;
    int attempts;
    void (*done)(struct job *j, int ok);
    void *done_ud;
};

/* Per-conversation queue and executor state in this process. */
struct conv_q {
    struct conv_q *hnext;
    struct bot_runtime *rt;
    struct fsm_conv_key key;
    struct job *head, *tail;
    int running;       /* head job is running */
    int exec_running;  /* this process is carrying out the outbox */
    int exec_again;    /* another commit gave us the lease meanwhile */
    uv_timer_t *retry; /* executor retry after a transient failure */
};

struct bot_runtime {
    struct bot_runtime_opts opt;
    struct fsm_store *store;
    struct set_ref *cur;
    struct conv_q *buckets[NBUCKETS];
    unsigned jobs, execs;
    uv_timer_t timeouts_timer;
    uv_timer_t sweep_timer;
    uv_timer_t poll_timer;
    int polling;
    int64_t poll_offset;
    int poll_inflight; /* jobs of the current getUpdates batch */
    int poll_failed;
    int64_t poll_max_id;
    int closing;
    int handles;
    struct met_family *m_updates, *m_effects;
    char *webhook_path;
};

/* ---- small helpers ---------------------------------------------------------- */

static struct set_ref *set_get(struct bot_runtime *rt)
{
    rt->cur->refs++;
    return rt->cur;
}

static void set_put(struct set_ref *s)
{
    if (s && --s->refs == 0) {
        fsm_set_free(s->set);
        free(s);
    }
}

static unsigned key_hash(struct fsm_conv_key k)
{
    uint64_t x = (uint64_t)k.chat_id * 0x9E3779B97F4A7C15ULL ^ (uint64_t)k.user_id;
    x ^= x >> 31;
    return (unsigned)(x % NBUCKETS);
}

static struct conv_q *q_get(struct bot_runtime *rt, struct fsm_conv_key k, int create)
{
    unsigned h = key_hash(k);
    for (struct conv_q *q = rt->buckets[h]; q; q = q->hnext)
        if (q->key.chat_id == k.chat_id && q->key.user_id == k.user_id)
            return q;
    if (!create)
        return NULL;
    struct conv_q *q = xcalloc(1, sizeof(*q));
    q->key = k;
    q->rt = rt;
    q->hnext = rt->buckets[h];
    rt->buckets[h] = q;
    return q;
}

static void retry_closed(uv_handle_t *h)
{
    free(h);
}

/* Drop a queue that has nothing queued, running or executing. */
static void q_maybe_free(struct bot_runtime *rt, struct conv_q *q)
{
    if (q->head || q->running || q->exec_running)
        return;
    unsigned h = key_hash(q->key);
    for (struct conv_q **pp = &rt->buckets[h]; *pp; pp = &(*pp)->hnext) {
        if (*pp == q) {
            *pp = q->hnext;
            break;
        }
    }
    if (q->retry)
        uv_close((uv_handle_t *)q->retry, retry_closed);
    free(q);
}

static void count_update(struct bot_runtime *rt, const char *kind, const char *outcome)
{
    if (rt->m_updates)
        met_inc(met_get(rt->m_updates, kind, outcome));
}

static void count_effect(struct bot_runtime *rt, const char *type, const char *result)
{
    if (rt->m_effects)
        met_inc(met_get(rt->m_effects, type, result));
}

/* ---- jobs ---------------------------------------------------------------------- */

static void run_head(struct bot_runtime *rt, struct conv_q *q);
static void exec_start(struct bot_runtime *rt, struct conv_q *q);

static void job_free(struct job *j)
{
    tg_update_free(j->update);
    free(j->flow);
    free(j->state);
    json_object_put(j->data);
    set_put(j->set);
    free(j->timeout_member);
    free(j);
}

/*
 * End the head job of its queue: answer (webhook/API) or report (poll), free
 * it, and start the next job of the conversation.
 */
static void job_end(struct job *j, int status, const char *code, const char *msg,
                    const struct vn_buf *body)
{
    struct bot_runtime *rt = j->rt;
    struct conv_q *q = j->q;
    if (j->req) {
        if (status == 200 && body)
            http_respond_json(j->req, 200, body);
        else if (status == 200)
            http_respond(j->req, 200, "application/json", "{\"ok\":true}\n", 12);
        else {
            if (status == 503)
                http_resp_header(j->req, "retry-after", "1");
            http_respond_error(j->req, status, code, "%s", msg);
        }
    }
    if (j->done)
        j->done(j, status == 200);
    if (j->src == JOB_TIMEOUT && status != 200 && j->timeout_member) {
        /* The claim removed the entry; the step did not land: schedule it
         * again a second from now, so the timeout is late, never lost. */
        char score[24];
        snprintf(score, sizeof(score), "%" PRIu64, vn_wall_ms() + 1000);
        const char *argv[] = {"ZADD", TIMEOUTS_KEY, score, j->timeout_member};
        if (rds_command_argv(rt->opt.redis, NULL, NULL, 4, argv, NULL) != 0)
            vn_error("bot",
                     "a state timeout for %" PRId64 ":%" PRId64 " could not be put back "
                     "(Redis down): %s",
                     q->key.chat_id, q->key.user_id, j->timeout_member);
    }
    q->head = j->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->running = 0;
    rt->jobs--;
    job_free(j);
    if (q->head)
        run_head(rt, q);
    else
        q_maybe_free(rt, q);
}

static void on_committed(const struct fsm_commit_result *r, void *ud)
{
    struct job *j = ud;
    struct bot_runtime *rt = j->rt;
    switch (r->status) {
    case FSM_COMMIT_OK:
    case FSM_COMMIT_DUPLICATE: {
        struct conv_q *q = j->q;
        struct vn_buf body = VN_BUF_INIT;
        /* Start the executor before ending the job: a busy executor keeps
         * the queue alive. */
        if (r->status == FSM_COMMIT_OK && r->got_lease && !rt->closing)
            exec_start(rt, q);
        if (r->status == FSM_COMMIT_DUPLICATE)
            count_update(rt, "duplicate", "ignored");
        if (j->src == JOB_API)
            vn_buf_printf(&body, "{\"ok\":true,\"chat_id\":%" PRId64 ",\"version\":%" PRId64 "}\n",
                          q->key.chat_id, r->version);
        job_end(j, 200, NULL, NULL, j->src == JOB_API ? &body : NULL);
        vn_buf_free(&body);
        return;
    }
    case FSM_COMMIT_CONFLICT:
        if (++j->attempts < MAX_CAS_RETRIES) {
            vn_debug("bot",
                     "conversation %" PRId64 ":%" PRId64 " moved to version %" PRId64
                     "; stepping again",
                     j->q->key.chat_id, j->q->key.user_id, r->version);
            j->q->running = 0;
            run_head(rt, j->q);
            return;
        }
        job_end(j, 503, "busy", "the conversation kept changing; try again", NULL);
        return;
    case FSM_COMMIT_ERROR:
        job_end(j, 503, "unavailable", r->error ? r->error : "Redis error", NULL);
        return;
    }
}

static const char *update_kind(const struct job *j)
{
    switch (j->src) {
    case JOB_TIMEOUT:
        return "timeout";
    case JOB_API:
        return "api_start";
    default:
        return j->update ? tg_update_kind_name(j->update->kind) : "update";
    }
}

/* The sender's Telegram language ("ru"), used until the user picks one. */
static const char *update_language(const struct tg_update *u)
{
    const struct tg_user *from = NULL;
    if (u == NULL)
        return NULL;
    if (u->message)
        from = u->message->from;
    else if (u->callback_query)
        from = &u->callback_query->from;
    if (from && from->language_code && *from->language_code)
        return from->language_code;
    return NULL;
}

/* The conversation was read: run the step and commit it. */
static const char *jstr(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void on_loaded(int status, struct fsm_stored *s, void *ud)
{
    struct job *j = ud;
    struct bot_runtime *rt = j->rt;
    struct fsm_conv conv;
    struct fsm_ctx ctx;
    struct fsm_result res;

    if (status != 0 || s == NULL) {
        job_end(j, 503, "unavailable", "Redis is not answering", NULL);
        return;
    }
    memset(&conv, 0, sizeof(conv));
    memset(&res, 0, sizeof(res));
    conv.flow = s->flow ? xstrdup(s->flow) : NULL;
    conv.state = s->flow && s->state ? xstrdup(s->state) : NULL;
    conv.data = json_tokener_parse(s->data_json ? s->data_json : "{}");
    if (conv.data == NULL || !json_object_is_type(conv.data, json_type_object)) {
        json_object_put(conv.data);
        conv.data = json_object_new_object();
    }
    conv.entered_at = s->entered_at;
    conv.timeout_at = s->timeout_at;

    memset(&ctx, 0, sizeof(ctx));
    ctx.now_ms = (int64_t)vn_wall_ms();
    ctx.chat_id = j->q->key.chat_id;
    ctx.user_id = j->q->key.user_id;
    ctx.locale = rt->opt.default_locale;
    ctx.tz = rt->opt.tz;
    ctx.bot_username = rt->opt.bot_username;
    const char *lang = update_language(j->update);
    if (lang)
        ctx.locale = lang;

    int rc = fsm_step(j->set->set, &conv, &j->in, &ctx, &res);
    if (rc < 0) {
        fsm_conv_cleanup(&conv);
        count_update(rt, update_kind(j), "refused");
        int http = rc == VN_ENOENT ? 404 : rc == VN_ECONFLICT ? 409 : 400;
        job_end(j, http,
                rc == VN_ENOENT      ? "not_found"
                : rc == VN_ECONFLICT ? "not_enterable"
                                     : "bad_request",
                res.reason[0] ? res.reason : vn_strerror(rc), NULL);
        return;
    }
    count_update(rt, update_kind(j), fsm_outcome_name(res.outcome));
    size_t neffects = res.effects ? json_object_array_length(res.effects) : 0;
    if (!res.changed && neffects == 0) {
        /* Nothing to store or do (an ignored update): answer at once. */
        fsm_conv_cleanup(&conv);
        fsm_result_cleanup(&res);
        job_end(j, 200, NULL, NULL, NULL);
        return;
    }
    struct fsm_commit c;
    memset(&c, 0, sizeof(c));
    c.flow = res.next.flow;
    c.state = res.next.state;
    c.data_json = res.next.data
                      ? json_object_to_json_string_ext(res.next.data, JSON_C_TO_STRING_PLAIN)
                      : "{}";
    c.entered_at = res.next.entered_at;
    c.timeout_at = res.next.timeout_at;
    /* Publishes get their envelope's id, time and locale now, so running the
     * outbox again after a crash publishes the same event (the notifier
     * delivers an id once). */
    for (size_t i = 0; i < neffects; i++) {
        json_object *e = json_object_array_get_idx(res.effects, i);
        const char *kind = jstr(e, "kind");
        if (kind && strcmp(kind, "publish") == 0 && jstr(e, "id") == NULL) {
            char id[37];
            ntf_uuid_random(id);
            json_object_object_add(e, "id", json_object_new_string(id));
            json_object_object_add(e, "at_ms", json_object_new_int64(ctx.now_ms));
            json_object_object_add(e, "locale", json_object_new_string(ctx.locale));
        }
    }
    c.effects_json =
        neffects ? json_object_to_json_string_ext(res.effects, JSON_C_TO_STRING_PLAIN) : NULL;
    c.update_id = j->update_id;
    c.expect_version = s->version;
    rc = fsm_store_commit(rt->store, j->q->key, &c, on_committed, j);
    fsm_conv_cleanup(&conv);
    fsm_result_cleanup(&res);
    if (rc != 0)
        job_end(j, 503, "unavailable", "Redis is not connected", NULL);
}

static void run_head(struct bot_runtime *rt, struct conv_q *q)
{
    struct job *j = q->head;
    if (j == NULL || q->running)
        return;
    q->running = 1;
    if (fsm_store_load(rt->store, q->key, on_loaded, j) != 0)
        job_end(j, 503, "unavailable", "Redis is not connected", NULL);
}

static void enqueue(struct bot_runtime *rt, struct job *j, struct fsm_conv_key k)
{
    struct conv_q *q = q_get(rt, k, 1);
    j->rt = rt;
    j->q = q;
    j->set = set_get(rt);
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    rt->jobs++;
    run_head(rt, q);
}

/* Key of an update's conversation: its chat and sender (an inline callback
 * without a chat uses the user's private chat id, equal to the user id). */
static int update_key(const struct tg_update *u, struct fsm_conv_key *k)
{
    int64_t chat = 0, user = 0;
    int rc_c = tg_update_chat_id(u, &chat);
    int rc_u = tg_update_user_id(u, &user);
    if (rc_c != 0 && rc_u != 0)
        return -1;
    k->chat_id = rc_c == 0 ? chat : user;
    k->user_id = rc_u == 0 ? user : chat;
    return 0;
}

static struct job *job_for_update(struct tg_update *u, enum job_src src)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->src = src;
    j->update = u;
    j->update_id = u->update_id;
    j->in.kind = FSM_IN_UPDATE;
    j->in.update = u;
    return j;
}

/* ---- my_chat_member: blocked / unblocked ------------------------------------- */

struct member_call {
    struct bot_runtime *rt;
    struct http_request *req;
};

static void on_member_saved(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct member_call *mc = ud;
    (void)c;
    (void)res;
    if (err) {
        http_resp_header(mc->req, "retry-after", "1");
        http_respond_error(mc->req, 503, "unavailable", "could not record the block: %s", err);
    } else {
        http_respond(mc->req, 200, "application/json", "{\"ok\":true}\n", 12);
    }
    free(mc);
}

/*
 * Record a block or unblock in PostgreSQL (cb may be NULL: fire and forget,
 * as in polling mode). Returns 0 when the query was queued (or there is
 * nothing to record).
 */
static int record_member(struct bot_runtime *rt, const struct tg_update *u, pgc_result_fn cb,
                         void *ud)
{
    const struct tg_chat_member_updated *m = u->my_chat_member;
    if (!m->blocked && !m->unblocked)
        return 0;
    count_update(rt, "my_chat_member", m->blocked ? "blocked" : "unblocked");
    vn_info("bot", "user %" PRId64 " %s the bot", m->from.id, m->blocked ? "blocked" : "unblocked");
    if (rt->opt.pg == NULL)
        return 0;
    char uid[24];
    snprintf(uid, sizeof(uid), "%" PRId64, m->from.id);
    const char *params[] = {uid, m->blocked ? "false" : "true"};
    return pgc_query(rt->opt.pg,
                     "UPDATE bot.telegram_links SET active = $2::boolean, "
                     "blocked_at = CASE WHEN $2::boolean THEN blocked_at ELSE now() END "
                     "WHERE telegram_user_id = $1::bigint",
                     2, params, cb, ud);
}

/*
 * A private chat's member status changed: blocked -> the link goes inactive
 * (delivery falls back to the next channel), unblocked -> active again.
 * Answered 200 only once PostgreSQL has it, so Telegram retries otherwise.
 */
static void handle_member(struct bot_runtime *rt, struct http_request *req,
                          const struct tg_update *u)
{
    const struct tg_chat_member_updated *m = u->my_chat_member;
    if (!m->blocked && !m->unblocked) {
        count_update(rt, "my_chat_member", "ignored");
        http_respond(req, 200, "application/json", "{\"ok\":true}\n", 12);
        return;
    }
    if (rt->opt.pg == NULL) {
        record_member(rt, u, NULL, NULL);
        http_respond(req, 200, "application/json", "{\"ok\":true}\n", 12);
        return;
    }
    struct member_call *mc = xmalloc(sizeof(*mc));
    mc->rt = rt;
    mc->req = req;
    if (record_member(rt, u, on_member_saved, mc) != 0) {
        free(mc);
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "PostgreSQL is not connected");
    }
}

/* ---- the webhook ------------------------------------------------------------- */

static void h_webhook(struct http_request *req, void *ud)
{
    struct bot_runtime *rt = ud;
    struct tg_error err;
    const char *secret = rt->opt.webhook_secret;

    if (secret && *secret) {
        const char *got = req->headers[HTTP_HDR_TELEGRAM_SECRET];
        if (got == NULL || !vn_consttime_eq(got, strlen(got), secret, strlen(secret))) {
            count_update(rt, "webhook", "unauthorized");
            http_respond_error(req, 401, "unauthorized",
                               "X-Telegram-Bot-Api-Secret-Token is missing or wrong");
            return;
        }
    }
    if (rt->closing) {
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "draining", "this instance is shutting down");
        return;
    }
    if (!rds_is_ready(rt->opt.redis)) {
        count_update(rt, "webhook", "redis_down");
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "conversation state (Redis) is unavailable");
        return;
    }
    struct tg_update *u =
        tg_update_parse(req->body.data ? req->body.data : "", req->body.len, NULL, &err);
    if (u == NULL) {
        count_update(rt, "webhook", "malformed");
        http_respond_error(req, err.code == VN_ETOOBIG ? 413 : 400, "bad_update", "%s%s%s",
                           err.path, err.path[0] ? ": " : "", err.msg);
        return;
    }
    if (u->kind == TG_UPDATE_MY_CHAT_MEMBER) {
        handle_member(rt, req, u);
        tg_update_free(u);
        return;
    }
    struct fsm_conv_key k;
    if (u->kind == TG_UPDATE_UNKNOWN || update_key(u, &k) != 0) {
        count_update(rt, u->type_name ? u->type_name : "unknown", "ignored");
        http_respond(req, 200, "application/json", "{\"ok\":true}\n", 12);
        tg_update_free(u);
        return;
    }
    struct job *j = job_for_update(u, JOB_WEBHOOK);
    j->req = req;
    enqueue(rt, j, k);
}

/* ---- POST /v1/conversations ---------------------------------------------------- */

static int api_authorized(struct bot_runtime *rt, struct http_request *req)
{
    const char *h = req->headers[HTTP_HDR_AUTHORIZATION];
    const char *key = rt->opt.api_key;
    if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    return vn_consttime_eq(h, strlen(h), key, strlen(key));
}

struct api_start {
    struct bot_runtime *rt;
    struct http_request *req;
    char *flow, *state;
    json_object *data;
};

static void api_start_free(struct api_start *a)
{
    free(a->flow);
    free(a->state);
    json_object_put(a->data);
    free(a);
}

static void api_enqueue(struct api_start *a, struct fsm_conv_key k)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->src = JOB_API;
    j->req = a->req;
    j->update_id = -1;
    j->flow = a->flow;
    j->state = a->state;
    j->data = a->data;
    a->flow = a->state = NULL;
    a->data = NULL;
    j->in.kind = FSM_IN_START;
    j->in.flow = j->flow;
    j->in.state = j->state;
    j->in.data = j->data;
    enqueue(a->rt, j, k);
    api_start_free(a);
}

static void on_link_found(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct api_start *a = ud;
    (void)c;
    if (err) {
        http_resp_header(a->req, "retry-after", "1");
        http_respond_error(a->req, 503, "unavailable", "looking up the user failed: %s", err);
        api_start_free(a);
        return;
    }
    if (PQntuples(res) == 0) {
        http_respond_error(a->req, 404, "not_linked",
                           "the user has no active Telegram link (they must /start the bot)");
        api_start_free(a);
        return;
    }
    struct fsm_conv_key k = {strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                             strtoll(PQgetvalue(res, 0, 1), NULL, 10)};
    api_enqueue(a, k);
}

/*
 * Start a flow for a linked user: {"user_id": "...", "flow": "confirm_task",
 * "state": "ask" (optional), "data": {...} (optional)}. Instead of user_id a
 * caller may give "telegram_user_id" and "chat_id" directly.
 */
static void h_conversations(struct http_request *req, void *ud)
{
    struct bot_runtime *rt = ud;
    json_object *body = NULL, *v = NULL;
    if (rt->opt.api_key == NULL || *rt->opt.api_key == '\0') {
        http_respond_error(req, 404, "disabled", "set API_KEY to enable /v1 endpoints");
        return;
    }
    if (!api_authorized(rt, req)) {
        http_respond_error(req, 401, "unauthorized", "Authorization: Bearer <API_KEY> required");
        return;
    }
    enum json_tokener_error jerr = json_tokener_success;
    body = json_tokener_parse_verbose(req->body.data ? req->body.data : "", &jerr);
    if (body == NULL || !json_object_is_type(body, json_type_object)) {
        http_respond_error(req, 400, "bad_json", "body must be a JSON object%s%s", body ? "" : ": ",
                           body ? "" : json_tokener_error_desc(jerr));
        json_object_put(body);
        return;
    }
    const char *flow = jstr(body, "flow");
    if (flow == NULL || *flow == '\0') {
        http_respond_error(req, 400, "bad_request", "\"flow\" (a string) is required");
        json_object_put(body);
        return;
    }
    struct api_start *a = xcalloc(1, sizeof(*a));
    a->rt = rt;
    a->req = req;
    a->flow = xstrdup(flow);
    a->state = jstr(body, "state") ? xstrdup(jstr(body, "state")) : NULL;
    if (json_object_object_get_ex(body, "data", &v)) {
        if (!json_object_is_type(v, json_type_object)) {
            http_respond_error(req, 400, "bad_request", "\"data\" must be an object");
            api_start_free(a);
            json_object_put(body);
            return;
        }
        a->data = json_object_get(v);
    }
    int rc = fsm_set_api_enterable(rt->cur->set, a->flow, a->state);
    if (rc != 0) {
        http_respond_error(req, rc == VN_ENOENT ? 404 : 409,
                           rc == VN_ENOENT ? "not_found" : "not_enterable",
                           rc == VN_ENOENT ? "no flow \"%s\" with that state"
                                           : "flow \"%s\": that state cannot be entered by API",
                           a->flow);
        api_start_free(a);
        json_object_put(body);
        return;
    }
    json_object *tu = NULL, *ch = NULL;
    if (json_object_object_get_ex(body, "telegram_user_id", &tu) &&
        json_object_object_get_ex(body, "chat_id", &ch) && json_object_is_type(tu, json_type_int) &&
        json_object_is_type(ch, json_type_int)) {
        struct fsm_conv_key k = {json_object_get_int64(ch), json_object_get_int64(tu)};
        json_object_put(body);
        api_enqueue(a, k);
        return;
    }
    const char *user = jstr(body, "user_id");
    if (user == NULL) {
        http_respond_error(req, 400, "bad_request",
                           "\"user_id\" (or \"telegram_user_id\" and \"chat_id\") is required");
        api_start_free(a);
        json_object_put(body);
        return;
    }
    if (rt->opt.pg == NULL || !pgc_is_ready(rt->opt.pg)) {
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "PostgreSQL is not connected");
        api_start_free(a);
        json_object_put(body);
        return;
    }
    const char *params[] = {user};
    if (pgc_query(rt->opt.pg,
                  "SELECT chat_id, telegram_user_id FROM bot.telegram_links "
                  "WHERE user_id = $1 AND active ORDER BY linked_at DESC LIMIT 1",
                  1, params, on_link_found, a) != 0) {
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "PostgreSQL is not connected");
        api_start_free(a);
    }
    json_object_put(body);
}

/* ---- long polling ---------------------------------------------------------------- */

static void poll_next(struct bot_runtime *rt);

static void on_poll_timer(uv_timer_t *t)
{
    poll_next(t->data);
}

static void poll_job_done(struct job *j, int ok)
{
    struct bot_runtime *rt = j->done_ud;
    if (!ok)
        rt->poll_failed = 1;
    if (--rt->poll_inflight > 0)
        return;
    /* The whole batch is processed: only now move the offset past it. */
    if (rt->poll_failed) {
        vn_warn("bot", "polling: some updates could not be processed; fetching them again");
        uv_timer_start(&rt->poll_timer, on_poll_timer, 1000, 0);
        return;
    }
    rt->poll_offset = rt->poll_max_id + 1;
    uv_timer_start(&rt->poll_timer, on_poll_timer, 0, 0);
}

static void on_updates(const struct tg_result *r, void *ud)
{
    struct bot_runtime *rt = ud;
    if (rt->closing)
        return;
    if (r->kind != TG_OK || !json_object_is_type(r->result, json_type_array)) {
        if (r->kind != TG_ERR_CLOSED) {
            vn_warn("bot", "getUpdates failed: %s (%d %s); retrying", tg_err_kind_name(r->kind),
                    r->error_code, r->description);
            uv_timer_start(&rt->poll_timer, on_poll_timer, 2000, 0);
        }
        return;
    }
    size_t n = json_object_array_length(r->result);
    rt->poll_inflight = 1; /* held while queueing */
    rt->poll_failed = 0;
    rt->poll_max_id = rt->poll_offset - 1;
    for (size_t i = 0; i < n; i++) {
        json_object *raw = json_object_array_get_idx(r->result, i), *idv = NULL;
        /* Move past every update, even one that does not parse, or the next
         * getUpdates would return it again at once. */
        if (json_object_object_get_ex(raw, "update_id", &idv) &&
            json_object_get_int64(idv) > rt->poll_max_id)
            rt->poll_max_id = json_object_get_int64(idv);
        const char *s = json_object_to_json_string_ext(raw, JSON_C_TO_STRING_PLAIN);
        struct tg_error err;
        struct tg_update *u = tg_update_parse(s, strlen(s), NULL, &err);
        if (u == NULL) {
            vn_warn("bot", "polling: skipping a malformed update: %s: %s", err.path, err.msg);
            continue;
        }
        if (u->kind == TG_UPDATE_MY_CHAT_MEMBER) {
            record_member(rt, u, NULL, NULL);
            tg_update_free(u);
            continue;
        }
        struct fsm_conv_key k;
        if (u->kind == TG_UPDATE_UNKNOWN || update_key(u, &k) != 0) {
            tg_update_free(u);
            continue;
        }
        struct job *j = job_for_update(u, JOB_POLL);
        j->done = poll_job_done;
        j->done_ud = rt;
        rt->poll_inflight++;
        enqueue(rt, j, k);
    }
    /* release the hold: if every job already finished, move on */
    struct job fake;
    memset(&fake, 0, sizeof(fake));
    fake.done_ud = rt;
    poll_job_done(&fake, 1);
}

static void on_webhook_deleted(const struct tg_result *r, void *ud)
{
    struct bot_runtime *rt = ud;
    if (r->kind != TG_OK && r->kind != TG_ERR_CLOSED)
        vn_warn("bot", "deleteWebhook failed (%s); getUpdates may answer 409", r->description);
    poll_next(rt);
}

static void poll_next(struct bot_runtime *rt)
{
    static const char *const allowed[] = {"message", "edited_message", "callback_query",
                                          "my_chat_member", NULL};
    if (rt->closing)
        return;
    if (tg_get_updates(rt->opt.tg, rt->poll_offset, 100, 25, allowed, on_updates, rt) != 0)
        uv_timer_start(&rt->poll_timer, on_poll_timer, 1000, 0);
}

void bot_runtime_start_polling(struct bot_runtime *rt)
{
    if (rt->polling || rt->opt.tg == NULL)
        return;
    rt->polling = 1;
    vn_info("bot", "long polling for updates (development mode)");
    tg_delete_webhook(rt->opt.tg, 0, on_webhook_deleted, rt);
}

/* ---- state timeouts ----------------------------------------------------------- */

struct claim {
    struct bot_runtime *rt;
    char *member;
};

static void on_zrem(struct rds_client *c, redisReply *reply, void *ud)
{
    struct claim *cl = ud;
    (void)c;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1 && !cl->rt->closing) {
        /* ours: {"chat":..,"user":..,"flow":"..","state":"..","at":..} */
        json_object *o = json_tokener_parse(cl->member), *v = NULL;
        if (o) {
            struct job *j = xcalloc(1, sizeof(*j));
            struct fsm_conv_key k = {0, 0};
            if (json_object_object_get_ex(o, "chat", &v))
                k.chat_id = json_object_get_int64(v);
            if (json_object_object_get_ex(o, "user", &v))
                k.user_id = json_object_get_int64(v);
            j->src = JOB_TIMEOUT;
            j->update_id = -1;
            j->flow = jstr(o, "flow") ? xstrdup(jstr(o, "flow")) : NULL;
            j->state = jstr(o, "state") ? xstrdup(jstr(o, "state")) : NULL;
            if (json_object_object_get_ex(o, "at", &v))
                j->in.at_ms = json_object_get_int64(v);
            j->in.kind = FSM_IN_TIMEOUT;
            j->in.flow = j->flow;
            j->in.state = j->state;
            j->timeout_member = xstrdup(cl->member);
            json_object_put(o);
            enqueue(cl->rt, j, k);
        }
    }
    free(cl->member);
    free(cl);
}

static void on_due(struct rds_client *c, redisReply *reply, void *ud)
{
    struct bot_runtime *rt = ud;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || rt->closing)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING)
            continue;
        /* ZREM claims it: with several instances exactly one gets 1. */
        struct claim *cl = xmalloc(sizeof(*cl));
        cl->rt = rt;
        cl->member = xstrdup(reply->element[i]->str);
        const char *argv[] = {"ZREM", TIMEOUTS_KEY, cl->member};
        if (rds_command_argv(c, on_zrem, cl, 3, argv, NULL) != 0) {
            free(cl->member);
            free(cl);
        }
    }
}

static void on_timeouts_tick(uv_timer_t *t)
{
    struct bot_runtime *rt = t->data;
    char now[24];
    if (!rds_is_ready(rt->opt.redis))
        return;
    snprintf(now, sizeof(now), "%" PRIu64, vn_wall_ms());
    const char *argv[] = {"ZRANGEBYSCORE", TIMEOUTS_KEY, "-inf", now, "LIMIT", "0", "100"};
    rds_command_argv(rt->opt.redis, on_due, rt, 7, argv, NULL);
}

/* ---- the effect executor -------------------------------------------------------- */

/* One outbox batch being carried out. */
struct batch {
    struct conv_q *q;
    json_object *effects; /* array */
    size_t idx;
    int blocked; /* a 403: no more sends to this chat in this batch */
};

static void exec_next(struct conv_q *q);
static void run_effect(struct batch *b);

static void exec_finish(struct conv_q *q)
{
    struct bot_runtime *rt = q->rt;
    q->exec_running = 0;
    rt->execs--;
    if (q->exec_again && !rt->closing) {
        q->exec_again = 0;
        exec_start(rt, q);
        return;
    }
    q_maybe_free(rt, q);
}

static void on_retry_exec(uv_timer_t *t)
{
    exec_next(t->data);
}

/* A transient failure (network, 5xx, Redis): keep the lease and the batch and
 * try again shortly. While closing, give up: the lease expires and another
 * instance (or the next start) picks the batch up through the sweeper. */
static void exec_retry_later(struct conv_q *q, uint64_t ms)
{
    struct bot_runtime *rt = q->rt;
    if (rt->closing) {
        exec_finish(q);
        return;
    }
    if (q->retry == NULL) {
        q->retry = xcalloc(1, sizeof(*q->retry));
        uv_timer_init(rt->opt.loop, q->retry);
    }
    q->retry->data = q;
    uv_timer_start(q->retry, on_retry_exec, ms, 0);
}

static void on_released(int status, int64_t value, void *ud)
{
    struct conv_q *q = ud;
    if (status != 0) {
        exec_retry_later(q, 1000);
        return;
    }
    if (value == 0) { /* a batch arrived meanwhile: keep going */
        exec_next(q);
        return;
    }
    exec_finish(q);
}

static void on_popped(int status, int64_t value, void *ud)
{
    struct conv_q *q = ud;
    (void)value;
    if (status != 0) {
        exec_retry_later(q, 1000);
        return;
    }
    exec_next(q);
}

static void batch_done(struct batch *b)
{
    struct conv_q *q = b->q;
    json_object_put(b->effects);
    free(b);
    if (fsm_store_outbox_pop(q->rt->store, q->key, on_popped, q) != 0)
        exec_retry_later(q, 1000);
}

static void batch_abort(struct batch *b, uint64_t retry_ms)
{
    struct conv_q *q = b->q;
    json_object_put(b->effects);
    free(b);
    exec_retry_later(q, retry_ms);
}

static void effect_next(struct batch *b)
{
    b->idx++;
    run_effect(b);
}

static void on_head(int status, const char *batch_json, void *ud)
{
    struct conv_q *q = ud;
    if (status != 0) {
        exec_retry_later(q, 1000);
        return;
    }
    if (batch_json == NULL) {
        if (fsm_store_lease_release(q->rt->store, q->key, on_released, q) != 0)
            exec_retry_later(q, 1000);
        return;
    }
    json_object *arr = json_tokener_parse(batch_json);
    if (arr == NULL || !json_object_is_type(arr, json_type_array)) {
        vn_error("bot",
                 "outbox of %" PRId64 ":%" PRId64 " holds a batch that is not a JSON "
                 "array; dropping it",
                 q->key.chat_id, q->key.user_id);
        json_object_put(arr);
        if (fsm_store_outbox_pop(q->rt->store, q->key, on_popped, q) != 0)
            exec_retry_later(q, 1000);
        return;
    }
    struct batch *b = xcalloc(1, sizeof(*b));
    b->q = q;
    b->effects = arr;
    run_effect(b);
}

static void exec_next(struct conv_q *q)
{
    if (fsm_store_outbox_head(q->rt->store, q->key, on_head, q) != 0)
        exec_retry_later(q, 1000);
}

static void exec_start(struct bot_runtime *rt, struct conv_q *q)
{
    if (q->exec_running) {
        q->exec_again = 1;
        return;
    }
    q->exec_running = 1;
    rt->execs++;
    exec_next(q);
}

/* -- effect kinds -- */

static int64_t jint(json_object *o, const char *key, int64_t def)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return def;
    return json_object_get_int64(v);
}

/* What a Bot API answer means for the batch: go on, or retry later. */
static void on_tg_effect(const struct tg_result *r, void *ud)
{
    struct batch *b = ud;
    struct bot_runtime *rt = b->q->rt;
    json_object *e = json_object_array_get_idx(b->effects, b->idx);
    const char *type = jstr(e, "kind");
    switch (r->kind) {
    case TG_OK: {
        count_effect(rt, type, "ok");
        /* "remember": keep the sent message's id in the conversation data, so
         * a later step can edit it. */
        const char *field = jstr(e, "remember");
        json_object *mid = NULL;
        if (field && r->result && json_object_object_get_ex(r->result, "message_id", &mid))
            fsm_store_remember(rt->store, b->q->key, field, json_object_get_int64(mid), NULL, NULL);
        effect_next(b);
        return;
    }
    case TG_ERR_BLOCKED:
        /* The user blocked the bot: nothing more reaches this chat. */
        count_effect(rt, type, "blocked");
        b->blocked = 1;
        if (rt->opt.pg) {
            char uid[24];
            snprintf(uid, sizeof(uid), "%" PRId64, b->q->key.user_id);
            const char *p[] = {uid};
            pgc_query(rt->opt.pg,
                      "UPDATE bot.telegram_links SET active = false, blocked_at = now() "
                      "WHERE telegram_user_id = $1::bigint",
                      1, p, NULL, NULL);
        }
        effect_next(b);
        return;
    case TG_ERR_RATE_LIMITED:
    case TG_ERR_SERVER:
    case TG_ERR_NETWORK:
    case TG_ERR_CLOSED:
        count_effect(rt, type, "retry");
        batch_abort(b, 5000);
        return;
    default:
        /* Permanent (bad request, chat not found, migrated, protocol): retrying
         * cannot help; skip it so the conversation's outbox moves on. */
        count_effect(rt, type, "failed");
        vn_error("bot", "%s to chat %" PRId64 " failed for good: %s (%d %s)", type,
                 b->q->key.chat_id, tg_err_kind_name(r->kind), r->error_code, r->description);
        effect_next(b);
        return;
    }
}

/* Render the effect's text: a template through the engine, or literal text. */
static int render_text(struct bot_runtime *rt, json_object *e, struct vn_buf *out,
                       const char **parse_mode)
{
    const char *tpl = jstr(e, "template");
    const char *text = jstr(e, "text");
    json_object *vars = NULL;
    json_object_object_get_ex(e, "vars", &vars);
    *parse_mode = NULL;
    if (tpl && rt->opt.render) {
        const char *locale = jstr(e, "locale");
        return rt->opt.render(rt->opt.render_ud, tpl, locale ? locale : rt->opt.default_locale,
                              vars, out, parse_mode);
    }
    vn_buf_puts(out, text ? text : (tpl ? tpl : ""));
    return 0;
}

/* A button label: a template (rendered in the effect's locale) or literal text. */
static json_object *button_label(struct bot_runtime *rt, json_object *e, json_object *btn)
{
    const char *tpl = jstr(btn, "template");
    if (tpl && rt->opt.render) {
        struct vn_buf label = VN_BUF_INIT;
        const char *pm = NULL;
        json_object *vars = NULL;
        json_object_object_get_ex(e, "vars", &vars);
        const char *locale = jstr(e, "locale");
        json_object *out = NULL;
        if (rt->opt.render(rt->opt.render_ud, tpl, locale ? locale : rt->opt.default_locale, vars,
                           &label, &pm) == 0)
            out = json_object_new_string(label.data ? label.data : "");
        vn_buf_free(&label);
        if (out)
            return out;
    }
    const char *text = jstr(btn, "text");
    return json_object_new_string(text ? text : (tpl ? tpl : "?"));
}

/*
 * The effect's "keyboard" (docs/flows.md) as a Bot API reply_markup:
 * {"inline":[[{template|text, data|url}]]} -> inline_keyboard,
 * {"reply":[[...]], resize, one_time} -> keyboard, {"remove":true} -> remove_keyboard.
 */
static json_object *render_markup(struct bot_runtime *rt, json_object *e)
{
    json_object *k = NULL, *rows = NULL, *v = NULL;
    if (!json_object_object_get_ex(e, "keyboard", &k) || k == NULL)
        return NULL;
    if (json_object_object_get_ex(k, "remove", &v) && json_object_get_boolean(v))
        return tg_kb_remove();
    int inl = json_object_object_get_ex(k, "inline", &rows);
    if (!inl && !json_object_object_get_ex(k, "reply", &rows))
        return NULL;
    json_object *out = json_object_new_object();
    json_object *orows = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(rows); i++) {
        json_object *row = json_object_array_get_idx(rows, i), *orow = json_object_new_array();
        for (size_t j = 0; j < json_object_array_length(row); j++) {
            json_object *btn = json_object_array_get_idx(row, j), *ob = json_object_new_object();
            json_object_object_add(ob, "text", button_label(rt, e, btn));
            const char *keys[] = {"url", "request_contact", "request_location"};
            for (size_t n = 0; n < VN_ARRAY_LEN(keys); n++)
                if (json_object_object_get_ex(btn, keys[n], &v))
                    json_object_object_add(ob, keys[n], json_object_get(v));
            if (json_object_object_get_ex(btn, "data", &v))
                json_object_object_add(ob, "callback_data", json_object_get(v));
            json_object_array_add(orow, ob);
        }
        json_object_array_add(orows, orow);
    }
    json_object_object_add(out, inl ? "inline_keyboard" : "keyboard", orows);
    if (!inl) {
        if (json_object_object_get_ex(k, "resize", &v) && json_object_get_boolean(v))
            json_object_object_add(out, "resize_keyboard", json_object_new_boolean(1));
        if (json_object_object_get_ex(k, "one_time", &v) && json_object_get_boolean(v))
            json_object_object_add(out, "one_time_keyboard", json_object_new_boolean(1));
    }
    return out;
}

static void on_published(void *ud, int ok, const char *why)
{
    struct batch *b = ud;
    struct bot_runtime *rt = b->q->rt;
    if (ok) {
        count_effect(rt, "publish", "ok");
        effect_next(b);
        return;
    }
    if (why && strstr(why, "closing")) {
        batch_abort(b, 5000);
        return;
    }
    /* Unroutable or refused by the broker: a topology problem, not transient. */
    count_effect(rt, "publish", "failed");
    vn_error("bot", "publish refused by RabbitMQ: %s", why ? why : "?");
    effect_next(b);
}

/* The timeout is in the schedule only once Redis said so. */
static void on_scheduled(struct rds_client *c, redisReply *reply, void *ud)
{
    struct batch *b = ud;
    (void)c;
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        count_effect(b->q->rt, "schedule_timeout", "ok");
        effect_next(b);
    } else {
        batch_abort(b, 2000);
    }
}

/*
 * The event envelope of a publish effect (docs/asyncapi.yaml): the flow's
 * payload is the data; the recipient is the conversation's Telegram user,
 * whom the notifier resolves to a registered user if the account is linked.
 */
static void envelope(struct conv_q *q, json_object *e, struct vn_buf *out)
{
    json_object *env = json_object_new_object(), *payload = NULL, *r = json_object_new_object();
    char id[37], ts[40];
    const char *given = jstr(e, "id");
    if (given) {
        snprintf(id, sizeof(id), "%s", given);
    } else {
        /* committed before ids existed: derived from the effect, so a re-run
         * of the outbox publishes the same id */
        char *name = xasprintf("bot:%" PRId64 ":%" PRId64 ":%s", q->key.chat_id, q->key.user_id,
                               json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
        ntf_uuid_from_name(name, id);
        free(name);
    }
    ntf_format_rfc3339(jint(e, "at_ms", (int64_t)vn_wall_ms()), ts, sizeof(ts));
    json_object_object_add(env, "id", json_object_new_string(id));
    json_object_object_add(env, "type", json_object_new_string(jstr(e, "event")));
    json_object_object_add(env, "version", json_object_new_int(1));
    json_object_object_add(env, "occurred_at", json_object_new_string(ts));
    json_object_object_add(env, "source", json_object_new_string("vestnik-bot"));
    json_object_object_add(r, "telegram_user_id", json_object_new_int64(q->key.user_id));
    json_object_object_add(r, "chat_id", json_object_new_int64(q->key.chat_id));
    if (jstr(e, "locale"))
        json_object_object_add(r, "locale", json_object_new_string(jstr(e, "locale")));
    json_object *list = json_object_new_array();
    json_object_array_add(list, r);
    json_object_object_add(env, "recipients", list);
    if (json_object_object_get_ex(e, "payload", &payload) &&
        json_object_is_type(payload, json_type_object))
        json_object_object_add(env, "data", json_object_get(payload));
    else
        json_object_object_add(env, "data", json_object_new_object());
    vn_buf_puts(out, json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN));
    json_object_put(env);
}

static void run_effect(struct batch *b)
{
    struct conv_q *q = b->q;
    struct bot_runtime *rt = q->rt;
    if (b->idx >= json_object_array_length(b->effects)) {
        batch_done(b);
        return;
    }
    json_object *e = json_object_array_get_idx(b->effects, b->idx);
    const char *type = jstr(e, "kind");
    int64_t chat = jint(e, "chat_id", q->key.chat_id);
    if (b->idx > 0)
        fsm_store_lease_touch(rt->store, q->key); /* long batches keep their lease */
    struct vn_buf text = VN_BUF_INIT;
    const char *pm = NULL;
    int rc = 0;

    if (type == NULL) {
        vn_error("bot", "effect without a kind; skipped");
        effect_next(b);
        return;
    }
    if (strcmp(type, "send") == 0 || strcmp(type, "edit") == 0) {
        if (b->blocked) {
            effect_next(b);
            return;
        }
        if (render_text(rt, e, &text, &pm) != 0) {
            vn_error("bot", "%s: template %s did not render: %s; skipped", type,
                     jstr(e, "template") ? jstr(e, "template") : "?", text.data ? text.data : "");
            vn_buf_free(&text);
            count_effect(rt, type, "failed");
            effect_next(b);
            return;
        }
        json_object *markup = render_markup(rt, e);
        if (strcmp(type, "send") == 0) {
            struct tg_send m;
            memset(&m, 0, sizeof(m));
            m.chat_id = chat;
            m.text = text.data ? text.data : "";
            m.parse_mode = pm;
            m.reply_markup = markup;
            rc = tg_send_message(rt->opt.tg, &m, on_tg_effect, b);
        } else {
            rc = tg_edit_message_text(rt->opt.tg, chat, jint(e, "message_id", 0),
                                      text.data ? text.data : "", pm, markup, on_tg_effect, b);
        }
        vn_buf_free(&text);
    } else if (strcmp(type, "edit_markup") == 0) {
        rc = tg_edit_message_reply_markup(rt->opt.tg, chat, jint(e, "message_id", 0),
                                          render_markup(rt, e), on_tg_effect, b);
    } else if (strcmp(type, "answer_callback") == 0) {
        const char *cbtext = NULL;
        if (jstr(e, "template") || jstr(e, "text")) {
            render_text(rt, e, &text, &pm);
            cbtext = text.data;
        }
        json_object *alert = NULL;
        json_object_object_get_ex(e, "alert", &alert);
        rc = tg_answer_callback_query(rt->opt.tg, jstr(e, "callback_query_id"), cbtext,
                                      alert && json_object_get_boolean(alert), on_tg_effect, b);
        vn_buf_free(&text);
    } else if (strcmp(type, "publish") == 0) {
        const char *event = jstr(e, "event");
        if (rt->opt.mq == NULL || event == NULL) {
            vn_error("bot", "publish effect without %s; skipped",
                     event ? "a RabbitMQ connection" : "an event type");
            effect_next(b);
            return;
        }
        struct vn_buf env = VN_BUF_INIT;
        envelope(q, e, &env);
        rc = mq_publish(rt->opt.mq, rt->opt.exchange, event, jstr(e, "id"), NULL, env.data, env.len,
                        on_published, b);
        vn_buf_free(&env);
    } else if (strcmp(type, "schedule_timeout") == 0) {
        json_object *m = json_object_new_object();
        int64_t at = jint(e, "at_ms", 0);
        char score[24];
        json_object_object_add(m, "chat", json_object_new_int64(q->key.chat_id));
        json_object_object_add(m, "user", json_object_new_int64(q->key.user_id));
        if (jstr(e, "flow"))
            json_object_object_add(m, "flow", json_object_new_string(jstr(e, "flow")));
        if (jstr(e, "state"))
            json_object_object_add(m, "state", json_object_new_string(jstr(e, "state")));
        json_object_object_add(m, "at", json_object_new_int64(at));
        snprintf(score, sizeof(score), "%" PRId64, at);
        const char *argv[] = {"ZADD", TIMEOUTS_KEY, score,
                              json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN)};
        rc = rds_command_argv(rt->opt.redis, on_scheduled, b, 4, argv, NULL);
        json_object_put(m);
        if (rc == 0)
            return; /* on_scheduled goes on */
    } else {
        /* cancel_timeout (stale timers are ignored by the engine), end_flow
         * (informational) and kinds this version does not know. */
        effect_next(b);
        return;
    }
    if (rc != 0)
        batch_abort(b, 2000);
}

/* ---- the sweeper: batches a crashed process left behind ------------------------- */

static void on_swept_take(int status, int64_t value, void *ud)
{
    struct conv_q *q = ud;
    struct bot_runtime *rt = q->rt;
    q->exec_running = 0; /* held while the take was in flight */
    rt->execs--;
    if (q->exec_again && !rt->closing) {
        /* a commit here got the lease meanwhile and asked for the executor */
        q->exec_again = 0;
        exec_start(rt, q);
        return;
    }
    if (status == 0 && value == 1 && !rt->closing) {
        vn_info("bot", "sweeper: taking over the outbox of %" PRId64 ":%" PRId64, q->key.chat_id,
                q->key.user_id);
        exec_start(rt, q);
        return;
    }
    q_maybe_free(rt, q);
}

static void on_swept_key(int status, struct fsm_conv_key k, void *ud)
{
    struct bot_runtime *rt = ud;
    if (status != 0 || rt->closing)
        return;
    struct conv_q *q = q_get(rt, k, 1);
    if (q->exec_running)
        return;          /* ours already */
    q->exec_running = 1; /* keep q alive until the answer */
    rt->execs++;
    if (fsm_store_lease_take(rt->store, k, on_swept_take, q) != 0) {
        q->exec_running = 0;
        rt->execs--;
        q_maybe_free(rt, q);
    }
}

static void on_sweep_tick(uv_timer_t *t)
{
    struct bot_runtime *rt = t->data;
    if (rds_is_ready(rt->opt.redis))
        fsm_store_sweep(rt->store, 60000, 100, on_swept_key, rt);
}

/* ---- life cycle ------------------------------------------------------------------- */

static bool template_exists(const char *name, void *ud)
{
    struct bot_runtime *rt = ud;
    return rt->opt.template_exists(name, rt->opt.template_ud) != 0;
}

static struct set_ref *load_set(struct bot_runtime *rt, struct vn_buf *err)
{
    struct fsm_diag diag;
    struct fsm_load_opts lo;
    memset(&lo, 0, sizeof(lo));
    if (rt->opt.template_exists) {
        lo.template_exists = template_exists;
        lo.template_ud = rt;
    }
    fsm_diag_init(&diag);
    struct fsm_set *set = fsm_set_load_dir(rt->opt.flows_dir, &lo, &diag);
    if (set == NULL) {
        fsm_diag_format(&diag, err);
        if (err->len == 0)
            vn_buf_printf(err, "%s: no flows loaded\n", rt->opt.flows_dir);
        fsm_diag_cleanup(&diag);
        return NULL;
    }
    fsm_diag_cleanup(&diag);
    struct set_ref *ref = xcalloc(1, sizeof(*ref));
    ref->set = set;
    ref->refs = 1;
    return ref;
}

struct bot_runtime *bot_runtime_new(const struct bot_runtime_opts *opt, struct http_router *router,
                                    struct vn_buf *err)
{
    struct bot_runtime *rt = xcalloc(1, sizeof(*rt));
    rt->opt = *opt;
    if (rt->opt.default_locale == NULL)
        rt->opt.default_locale = "en";
    rt->cur = load_set(rt, err);
    if (rt->cur == NULL) {
        free(rt);
        return NULL;
    }
    struct fsm_store_opts so;
    memset(&so, 0, sizeof(so));
    so.ttl_s = opt->conversation_ttl_s;
    rt->store = fsm_store_new(opt->redis, &so);
    rt->webhook_path = xstrdup(opt->webhook_path ? opt->webhook_path : "/telegram/webhook");
    if (opt->metrics) {
        rt->m_updates =
            met_counter(opt->metrics, "vestnik_bot_updates_total",
                        "Inputs handled by the bot, by kind and outcome", "kind,outcome");
        rt->m_effects = met_counter(opt->metrics, "vestnik_bot_effects_total",
                                    "Effects carried out, by type and result", "type,result");
    }
    if (http_router_add(router, HTTP_POST, rt->webhook_path, h_webhook, rt) != 0 ||
        http_router_add(router, HTTP_POST, "/v1/conversations", h_conversations, rt) != 0) {
        vn_buf_printf(err, "cannot route %s (TELEGRAM_WEBHOOK_PATH must be a plain path)\n",
                      rt->webhook_path);
        set_put(rt->cur);
        fsm_store_free(rt->store);
        free(rt->webhook_path);
        free(rt);
        return NULL;
    }
    if (opt->webhook_secret == NULL || *opt->webhook_secret == '\0')
        vn_warn("bot", "TELEGRAM_WEBHOOK_SECRET is empty: webhook requests are not "
                       "authenticated");
    uv_timer_init(opt->loop, &rt->timeouts_timer);
    uv_timer_init(opt->loop, &rt->sweep_timer);
    uv_timer_init(opt->loop, &rt->poll_timer);
    rt->timeouts_timer.data = rt->sweep_timer.data = rt->poll_timer.data = rt;
    rt->handles = 3;
    uv_timer_start(&rt->timeouts_timer, on_timeouts_tick, 500, 500);
    uv_timer_start(&rt->sweep_timer, on_sweep_tick, 5000, 10000);
    vn_info("bot", "flows loaded from %s (%zu flows); webhook at POST %s", opt->flows_dir,
            fsm_set_flow_count(rt->cur->set), rt->webhook_path);
    return rt;
}

int bot_runtime_reload(struct bot_runtime *rt)
{
    struct vn_buf err = VN_BUF_INIT;
    struct set_ref *ref = load_set(rt, &err);
    if (ref == NULL) {
        int n = 0;
        for (size_t i = 0; i < err.len; i++)
            n += err.data[i] == '\n';
        vn_error("bot", "reload: flows in %s have %d problem(s); keeping the running version:\n%s",
                 rt->opt.flows_dir, n, err.data ? err.data : "");
        vn_buf_free(&err);
        return n ? n : 1;
    }
    vn_buf_free(&err);
    set_put(rt->cur); /* jobs that hold the old set keep it until they end */
    rt->cur = ref;
    vn_info("bot", "reload: %zu flows from %s", fsm_set_flow_count(ref->set), rt->opt.flows_dir);
    return 0;
}

unsigned bot_runtime_busy(const struct bot_runtime *rt)
{
    return rt->jobs + rt->execs;
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

void bot_runtime_close(struct bot_runtime *rt)
{
    if (rt == NULL || rt->closing)
        return;
    rt->closing = 1;
    uv_close((uv_handle_t *)&rt->timeouts_timer, timer_closed);
    uv_close((uv_handle_t *)&rt->sweep_timer, timer_closed);
    uv_close((uv_handle_t *)&rt->poll_timer, timer_closed);
    for (unsigned i = 0; i < NBUCKETS; i++) {
        for (struct conv_q *q = rt->buckets[i]; q; q = q->hnext) {
            if (q->retry == NULL)
                continue;
            if (uv_is_active((uv_handle_t *)q->retry)) {
                /* a batch waiting to be retried: leave it to the lease expiry */
                q->exec_running = 0;
                rt->execs--;
            }
            uv_close((uv_handle_t *)q->retry, retry_closed);
            q->retry = NULL;
        }
    }
}

void bot_runtime_free(struct bot_runtime *rt)
{
    if (rt == NULL)
        return;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        struct conv_q *q = rt->buckets[i];
        while (q) {
            struct conv_q *next = q->hnext;
            free(q); /* retry timers were closed by bot_runtime_close */
            q = next;
        }
    }
    set_put(rt->cur);
    fsm_store_free(rt->store);
    free(rt->webhook_path);
    free(rt);
}
