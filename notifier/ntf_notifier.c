#include "ntf_notifier.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bot/tg_client.h"
#include "core/amqp.h"
#include "core/common.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pg.h"
#include "fsm/fsm_date.h"
#include "ntf_email.h"
#include "templates/tpl.h"
#include "templates/tpl_set.h"

/* ---- topology ------------------------------------------------------------- */

static const char *const queue_suffix[NTF_Q_COUNT + 1] = {"tasks", "reminders", "notifications",
                                                          "dead"};
/* Each queue is bound to the types it handles, by name: other events on the
 * exchange (the bot's task.accepted, tasks.list_requested, ...) are not ours. */
static const char *const queue_binding[NTF_Q_COUNT][4] = {
    {"task.assigned", "task.due", "task.completed", NULL},
    {"reminder.scheduled", "reminder.cancelled", NULL, NULL},
    {"notification.requested", "preferences.update_requested", NULL, NULL},
};

void ntf_queue_name(const char *prefix, int q, char *buf, size_t len)
{
    snprintf(buf, len, "%s.%s", prefix, queue_suffix[q < 0 || q > NTF_Q_COUNT ? NTF_Q_COUNT : q]);
}

enum ntf_queue ntf_queue_of(enum ntf_type t)
{
    switch (t) {
    case NTF_TASK_ASSIGNED:
    case NTF_TASK_DUE:
    case NTF_TASK_COMPLETED:
        return NTF_Q_TASKS;
    case NTF_REMINDER_SCHEDULED:
    case NTF_REMINDER_CANCELLED:
    case NTF_REMINDER:
        return NTF_Q_REMINDERS;
    case NTF_NOTIFICATION_REQUESTED:
    case NTF_PREFERENCES_UPDATE:
    case NTF_TYPE_COUNT:
        break;
    }
    return NTF_Q_NOTIFICATIONS;
}

/* Deliveries of one message without an ack before the broker dead-letters it. */
#define NTF_DELIVERY_LIMIT 20

static amqp_table_entry_t str_entry(const char *k, const char *v)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(k);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(v);
    return e;
}

static amqp_table_entry_t int_entry(const char *k, int64_t v)
{
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(k);
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = v;
    return e;
}

static int rpc_ok(amqp_connection_state_t conn, const char *what, const char *name)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = r.reply.decoded;
        vn_error("notifier", "%s %s refused: %d %.*s", what, name, m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    } else {
        vn_error("notifier", "%s %s failed", what, name);
    }
    return -1;
}

int ntf_declare_topology(amqp_connection_state_t conn, amqp_channel_t ch,
                         const struct ntf_topology *t)
{
    char q[256], dead[256], rq[300];
    amqp_table_entry_t quorum[1] = {str_entry("x-queue-type", "quorum")};
    amqp_table_t qargs = {1, quorum};

    amqp_exchange_declare(conn, ch, amqp_cstring_bytes(t->exchange), amqp_cstring_bytes("topic"), 0,
                          1, 0, 0, amqp_empty_table);
    if (rpc_ok(conn, "declaring exchange", t->exchange))
        return -1;
    ntf_queue_name(t->prefix, NTF_Q_COUNT, dead, sizeof(dead));
    amqp_queue_declare(conn, ch, amqp_cstring_bytes(dead), 0, 1, 0, 0, qargs);
    if (rpc_ok(conn, "declaring queue", dead))
        return -1;
    /* Work queues: a message the broker has delivered NTF_DELIVERY_LIMIT times
     * without an ack (one that crashes every notifier that takes it) goes to
     * the dead-letter queue instead of going round for ever; the broker adds
     * x-death with reason delivery_limit. */
    amqp_table_entry_t wargs[4] = {
        str_entry("x-queue-type", "quorum"), int_entry("x-delivery-limit", NTF_DELIVERY_LIMIT),
        str_entry("x-dead-letter-exchange", ""), str_entry("x-dead-letter-routing-key", dead)};
    amqp_table_t work_args = {4, wargs};
    for (int i = 0; i < NTF_Q_COUNT; i++) {
        ntf_queue_name(t->prefix, i, q, sizeof(q));
        amqp_queue_declare(conn, ch, amqp_cstring_bytes(q), 0, 1, 0, 0, work_args);
        if (rpc_ok(conn, "declaring queue", q))
            return -1;
        for (int k = 0; k < 4 && queue_binding[i][k]; k++) {
            amqp_queue_bind(conn, ch, amqp_cstring_bytes(q), amqp_cstring_bytes(t->exchange),
                            amqp_cstring_bytes(queue_binding[i][k]), amqp_empty_table);
            if (rpc_ok(conn, "binding queue", q))
                return -1;
        }
        /* Retry steps: classic durable queues whose messages expire after the
         * step's delay and are dead-lettered back to the work queue. */
        for (size_t s = 0; t->retry && s < t->retry->n; s++) {
            amqp_table_entry_t a[3] = {int_entry("x-message-ttl", t->retry->delay_ms[s]),
                                       str_entry("x-dead-letter-exchange", ""),
                                       str_entry("x-dead-letter-routing-key", q)};
            amqp_table_t args = {3, a};
            snprintf(rq, sizeof(rq), "%s.retry.%s", q, t->retry->name[s]);
            amqp_queue_declare(conn, ch, amqp_cstring_bytes(rq), 0, 1, 0, 0, args);
            if (rpc_ok(conn, "declaring queue", rq))
                return -1;
        }
    }
    return 0;
}

/* ---- state ----------------------------------------------------------------- */

/* Batches in flight before new events wait to form a bigger batch: enough
 * that one batch sends while the others use the database. */
#define NTF_MAX_BATCHES 3

enum outcome { OUT_NONE, OUT_SENT, OUT_TEMP, OUT_PERM };
enum phase { P_INTAKE, P_USERS, P_ROWS, P_SEND, P_FINAL, P_SETTLE };

struct urec {
    struct ntf_user u;
    char *key, *name, *email, *locale, *tzname;
    json_object *prefs;
    int64_t tg_user; /* the linked Telegram account written to (to mark it blocked) */
    char *alias_of;  /* "=tg:N" entries: the id of the user that account is linked to */
    int blocked;
};

struct batch;

struct item {
    struct batch *b;
    struct ntf_event ev;
    char *body;
    size_t len;
    struct mq_message *msg; /* NULL: from the scheduler */
    int msg_attempt;        /* x-vestnik-attempt of msg */
    char *reminder_fire;    /* the reminder this item fires */
    int done;               /* nothing more to send (stored, cancelled, duplicate) */
    int rejected;           /* did not parse: dead-lettered as it came */
    int preclaimed;         /* rows came claimed from the scheduler */
    int retry;              /* publish a retry copy */
    size_t retry_step;      /* ladder step for it */
    int retry_attempt;      /* attempts so far */
    char retry_err[200];    /* for x-vestnik-last-error */
    int dead;               /* dead-letter with dead_reason */
    char dead_reason[300];
    int settling; /* publishes awaiting confirms */
};

struct row {
    struct item *it;
    struct urec *u;
    char *ukey; /* scheduler rows: deliveries.user_id until u is found */
    int64_t id;
    enum ntf_channel ch;
    enum ntf_action plan;
    int64_t not_before;
    char reason[120];
    int claimed;
    int attempts;
    char state[12];
    enum outcome out;
    int early;    /* sent: recorded by the early flush, not by step_final */
    int recorded; /* ... and that flush is done */
    char err[200];
    char ref[96];
};

struct batch {
    struct ntf_notifier *n;
    struct batch *prev, *next; /* the notifier's started batches (claims to renew) */
    struct item **items;
    size_t n_items, cap_items;
    struct row **rows; /* every row of the batch, all rounds */
    size_t n_rows, cap_rows;
    size_t round_start; /* rows[round_start..] are this round's */
    struct urec **users;
    size_t n_users, cap_users;
    int waiting; /* async operations outstanding in the current step */
    int phase;
    int early_wait;       /* P_FINAL: sent rows whose early flush is still in flight */
    uint64_t phase_ms[8]; /* time spent per phase (debug log) */
    uint64_t phase_at;
    int failed;
    int poison; /* a lone event the database refused: dead-letter it */
    int64_t started_ms;
};

struct tzc {
    char *name;
    struct fsm_tz *tz;
};

struct ntf_notifier {
    struct ntf_notifier_opts o;
    char instance[96];
    char lease[40];
    char grace[40];
    char queues[NTF_Q_COUNT + 1][256];
    uv_check_t flush;
    uv_timer_t sched_timer;
    struct batch *forming;
    struct batch *active; /* started batches */
    unsigned busy;
    uint64_t isolate_until; /* one event per batch until then (after a data error) */
    uint64_t backoff_until; /* no new batch before then (after a failed one) */
    uv_timer_t renew_timer; /* keeps the claims of rows being sent */
    struct row **early;     /* sent rows waiting for the early flush */
    size_t n_early, cap_early;
    int early_busy; /* a flush is in flight */
    int started, stopped, sched_busy, closing, free_pending;
    struct tzc *tzs;
    size_t n_tzs;
    struct tpl_fmt_cache *fmt;
    unsigned available;
    struct met_family *m_events, *m_deliveries, *m_dead, *m_latency;
};

/* ---- small helpers ---------------------------------------------------------- */

static const struct fsm_tz *tz_get(struct ntf_notifier *n, const char *name)
{
    char err[160];
    if (name == NULL || *name == '\0')
        name = n->o.default_time_zone;
    for (size_t i = 0; i < n->n_tzs; i++)
        if (strcmp(n->tzs[i].name, name) == 0)
            return n->tzs[i].tz;
    struct fsm_tz *tz = fsm_tz_load(name, NULL, err, sizeof(err));
    if (tz == NULL) {
        vn_warn("notifier", "time zone \"%s\": %s; using %s", name, err, n->o.default_time_zone);
        if (strcmp(name, n->o.default_time_zone) != 0)
            return tz_get(n, n->o.default_time_zone);
    }
    n->tzs = xrealloc(n->tzs, (n->n_tzs + 1) * sizeof(*n->tzs));
    n->tzs[n->n_tzs].name = xstrdup(name);
    n->tzs[n->n_tzs].tz = tz; /* NULL = UTC */
    return n->tzs[n->n_tzs++].tz;
}

static int hdr_int(const amqp_table_t *t, const char *key, int def)
{
    for (int i = 0; t && i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        if (e->key.len != strlen(key) || memcmp(e->key.bytes, key, e->key.len) != 0)
            continue;
        switch (e->value.kind) {
        case AMQP_FIELD_KIND_I8:
            return e->value.value.i8;
        case AMQP_FIELD_KIND_U8:
            return e->value.value.u8;
        case AMQP_FIELD_KIND_I16:
            return e->value.value.i16;
        case AMQP_FIELD_KIND_U16:
            return e->value.value.u16;
        case AMQP_FIELD_KIND_I32:
            return e->value.value.i32;
        case AMQP_FIELD_KIND_U32:
            return (int)e->value.value.u32;
        case AMQP_FIELD_KIND_I64:
            return (int)e->value.value.i64;
        case AMQP_FIELD_KIND_U64:
            return (int)e->value.value.u64;
        default:
            return def;
        }
    }
    return def;
}

static void sql_text_array(struct vn_buf *b, const char *s)
{
    vn_buf_puts(b, b->len ? ",\"" : "{\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            vn_buf_putc(b, '\\');
        vn_buf_putc(b, *s);
    }
    vn_buf_putc(b, '"');
}

static const char *val(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void json_time(struct vn_buf *b, const char *key, int64_t ms)
{
    char ts[40];
    vn_buf_printf(b, ",\"%s\":", key);
    if (ms == 0) {
        vn_buf_puts(b, "null");
        return;
    }
    ntf_format_rfc3339(ms, ts, sizeof(ts));
    vn_buf_json_str(b, ts);
}

static void json_kv(struct vn_buf *b, const char *key, const char *v)
{
    vn_buf_printf(b, ",\"%s\":", key);
    if (v)
        vn_buf_json_str(b, v);
    else
        vn_buf_puts(b, "null");
}

/* The event columns shared by the events and reminders inserts. */
static void json_event_cols(struct vn_buf *b, const struct item *it)
{
    vn_buf_printf(b, "\"id\":\"%s\",\"type\":\"%s\",\"version\":%d", it->ev.id,
                  ntf_type_name(it->ev.type), it->ev.version);
    json_kv(b, "source", it->ev.source);
    json_time(b, "occurred_at", it->ev.occurred_at_ms);
    json_time(b, "deliver_at", it->ev.deliver_at_ms);
    json_kv(b, "priority", ntf_priority_name(it->ev.priority));
    json_kv(b, "dedup_key", it->ev.dedup_key);
    vn_buf_puts(b, ",\"payload\":");
    vn_buf_puts(b, json_object_to_json_string_ext(it->ev.root, JSON_C_TO_STRING_PLAIN));
}

static void batch_step(struct batch *b);
static void batch_free(struct batch *b);
static void free_now(struct ntf_notifier *n);
static void flush_forming(struct ntf_notifier *n);
static void step_settle(struct batch *b);
static void batch_fail(struct batch *b, const char *what, const char *err);
static void batch_done_one(struct batch *b);

/* A query for the batch; on failure the whole batch gives its messages back. */
/* Every statement of the notifier is prepared once per connection, under its
 * own name: they are long CTEs that would otherwise be planned at each call. */
#define PREPARED(sql) "vn_" #sql, sql

static int batch_query(struct batch *b, const char *name, const char *sql, int nparams,
                       const char *const *params, pgc_result_fn cb)
{
    int rc = pgc_query_prepared(b->n->o.pg, name, sql, nparams, params, cb, b);
    if (rc != 0) {
        batch_fail(b, "database", vn_strerror(rc));
        return rc;
    }
    b->waiting++;
    return 0;
}

/* ---- batches ---------------------------------------------------------------- */

static struct batch *batch_new(struct ntf_notifier *n)
{
    struct batch *b = xcalloc(1, sizeof(*b));
    b->n = n;
    b->started_ms = vn_now_ms();
    return b;
}

static void batch_add_item(struct batch *b, struct item *it)
{
    if (b->n_items == b->cap_items) {
        b->cap_items = b->cap_items ? b->cap_items * 2 : 32;
        b->items = xrealloc(b->items, b->cap_items * sizeof(*b->items));
    }
    it->b = b;
    b->items[b->n_items++] = it;
}

static struct row *batch_add_row(struct batch *b, struct item *it, struct urec *u,
                                 enum ntf_channel ch)
{
    if (b->n_rows == b->cap_rows) {
        b->cap_rows = b->cap_rows ? b->cap_rows * 2 : 64;
        b->rows = xrealloc(b->rows, b->cap_rows * sizeof(*b->rows));
    }
    struct row *r = xcalloc(1, sizeof(*r));
    r->it = it;
    r->u = u;
    r->ch = ch;
    b->rows[b->n_rows++] = r;
    return r;
}

static void item_free(struct item *it)
{
    ntf_event_free(&it->ev);
    free(it->body);
    free(it->reminder_fire);
    free(it);
}

static void urec_free(struct urec *u)
{
    free(u->key);
    free(u->name);
    free(u->email);
    free(u->alias_of);
    free(u->locale);
    free(u->tzname);
    json_object_put(u->prefs);
    free(u);
}

static void batch_free(struct batch *b)
{
    struct ntf_notifier *n = b->n;
    if (b->prev)
        b->prev->next = b->next;
    else if (n->active == b)
        n->active = b->next;
    if (b->next)
        b->next->prev = b->prev;
    for (size_t i = 0; i < b->n_items; i++)
        item_free(b->items[i]);
    for (size_t i = 0; i < b->n_rows; i++) {
        free(b->rows[i]->ukey);
        free(b->rows[i]);
    }
    for (size_t i = 0; i < b->n_users; i++)
        urec_free(b->users[i]);
    free(b->items);
    free(b->rows);
    free(b->users);
    free(b);
    n->busy--;
    if (n->free_pending && n->busy == 0 && !n->sched_busy)
        free_now(n);
    else if (n->forming && n->busy < NTF_MAX_BATCHES && !n->free_pending)
        flush_forming(n); /* what gathered meanwhile */
}

/*
 * An SQL error that is the data's fault (class 22: a value PostgreSQL will
 * not take, 23: a constraint) would fail the batch again and again. Alone in
 * its batch, the event is dead-lettered; in a larger batch, every message is
 * given back and the next batches take one event each until the culprit has
 * been isolated.
 */
static int data_error(PGresult *res)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return st && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0);
}

static void batch_fail_res(struct batch *b, const char *what, const char *err, PGresult *res)
{
    if (data_error(res)) {
        size_t live = 0;
        struct item *one = NULL;
        for (size_t i = 0; i < b->n_items; i++)
            if (b->items[i]->msg && !b->items[i]->dead) {
                live++;
                one = b->items[i];
            }
        if (live == 1 && b->n_items == 1) {
            one->done = 1;
            one->dead = 1;
            snprintf(one->dead_reason, sizeof(one->dead_reason),
                     "invalid_field: PostgreSQL refused the event while %s: %.200s", what,
                     err ? err : "?");
            b->poison = 1;
            return;
        }
        b->n->isolate_until = vn_now_ms() + 10000;
    }
    batch_fail(b, what, err);
}

static void batch_fail(struct batch *b, const char *what, const char *err)
{
    /* Nothing is lost: messages go back to the queue (rows already claimed
     * expire and the scheduler takes them), scheduler work is found again. */
    if (b->failed)
        return;
    b->failed = 1;
    vn_warn("notifier", "batch of %zu events: %s failed (%s); messages go back to the queue",
            b->n_items, what, err ? err : "?");
    /* back off: new batches wait a second (and until the database answers) */
    b->n->backoff_until = vn_now_ms() + 1000;
    for (size_t i = 0; i < b->n_items; i++) {
        struct item *it = b->items[i];
        if (it->msg) {
            mq_nack(it->msg, 1);
            it->msg = NULL;
        }
    }
}

/* The start of a batch's query callback: 0 when the batch failed (now or
 * before) or holds a poison event, and this query's part is over. */
static int batch_result(struct batch *b, const char *what, const char *err, PGresult *res)
{
    if (!b->failed && err)
        batch_fail_res(b, what, err, res);
    if (b->failed || b->poison) {
        batch_done_one(b);
        return 0;
    }
    return 1;
}

/* Called by every async completion; moves on when the step's work is done. */
static void batch_done_one(struct batch *b)
{
    if (--b->waiting > 0)
        return;
    if (b->failed) {
        batch_free(b);
    } else if (b->poison && b->phase != P_SETTLE) {
        b->phase = P_SETTLE;
        step_settle(b);
    } else {
        batch_step(b);
    }
}

/* ---- step 1: intake (events, reminders, cancellations) --------------------- */

static const char SQL_EVENTS[] =
    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, type text, version int, "
    "source text, occurred_at timestamptz, deliver_at timestamptz, priority text, dedup_key text, "
    "payload jsonb)), "
    "ins AS (INSERT INTO notify.events (id, type, version, source, occurred_at, deliver_at, "
    "priority, dedup_key, payload) SELECT id, type, version, source, occurred_at, deliver_at, "
    "priority, dedup_key, payload FROM x ON CONFLICT DO NOTHING RETURNING id) "
    "SELECT x.id::text, (EXISTS (SELECT 1 FROM ins WHERE ins.id = x.id) OR EXISTS (SELECT 1 FROM "
    "notify.events e WHERE e.id = x.id))::int FROM x";

static const char SQL_REMINDERS[] =
    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(rid text, user_id text, id uuid, "
    "type text, version int, source text, occurred_at timestamptz, deliver_at timestamptz, "
    "priority text, dedup_key text, payload jsonb)), "
    "ev AS (INSERT INTO notify.events (id, type, version, source, occurred_at, deliver_at, "
    "priority, dedup_key, payload) SELECT id, type, version, source, occurred_at, deliver_at, "
    "priority, dedup_key, payload FROM x ON CONFLICT DO NOTHING RETURNING id) "
    "INSERT INTO notify.reminders (id, user_id, event_id, deliver_at, payload) "
    "SELECT DISTINCT ON (x.rid) x.rid, x.user_id, ev.id, x.deliver_at, x.payload FROM x "
    "JOIN ev ON ev.id = x.id ORDER BY x.rid ON CONFLICT (id) DO NOTHING";

static const char SQL_CANCEL[] =
    "INSERT INTO notify.reminders AS r (id, user_id, deliver_at, state, cancelled_at) "
    "SELECT DISTINCT id, '', now(), 'cancelled', now() FROM unnest($1::text[]) AS t(id) "
    "ON CONFLICT (id) DO UPDATE SET state = 'cancelled', cancelled_at = now() "
    "WHERE r.state = 'scheduled'";

/*
 * preferences.update_requested (the bot's /settings): the user is the one the
 * Telegram account is linked to, or "tg:<id>", created with a link on first
 * use, so the settings of someone who never linked an account still apply to
 * what is sent to that Telegram account (their reminders, for one).
 * toggle_channel flips a channel in the "*" list (whose default is
 * ["telegram"], what an empty preference means for a Telegram user).
 */
static const char SQL_PREFS[] =
    "WITH j AS (SELECT $1::jsonb AS j), "
    "t AS (SELECT COALESCE($4, (SELECT user_id FROM bot.telegram_links WHERE telegram_user_id = "
    "$2::bigint), 'tg:' || $2) AS id), "
    "u AS (INSERT INTO bot.users AS u (id, locale, time_zone) SELECT t.id, "
    "COALESCE(j->>'locale', 'en'), COALESCE(j->>'time_zone', 'UTC') FROM t, j "
    "ON CONFLICT (id) DO UPDATE SET "
    "locale = CASE WHEN (SELECT j ? 'locale' FROM j) THEN EXCLUDED.locale ELSE u.locale END, "
    "time_zone = CASE WHEN (SELECT j ? 'time_zone' FROM j) THEN EXCLUDED.time_zone "
    "ELSE u.time_zone END RETURNING 1), "
    "l AS (INSERT INTO bot.telegram_links (telegram_user_id, user_id, chat_id) "
    "SELECT $2::bigint, t.id, COALESCE($3::bigint, $2::bigint) FROM t WHERE $2 IS NOT NULL "
    "ON CONFLICT (telegram_user_id) DO NOTHING RETURNING 1), "
    "p AS (INSERT INTO bot.preferences AS p (user_id, channels, quiet_hours_start, "
    "quiet_hours_end) SELECT t.id, CASE WHEN j ? 'toggle_channel' THEN jsonb_build_object('*', "
    "CASE WHEN '[\"telegram\"]'::jsonb ? (j->>'toggle_channel') THEN '[\"telegram\"]'::jsonb - "
    "(j->>'toggle_channel') ELSE '[\"telegram\"]'::jsonb || to_jsonb(j->>'toggle_channel') END) "
    "ELSE '{}'::jsonb END, (j->'quiet_hours'->>'from')::time, (j->'quiet_hours'->>'to')::time "
    "FROM t, j ON CONFLICT (user_id) DO UPDATE SET "
    "quiet_hours_start = CASE WHEN (SELECT j ? 'quiet_hours' FROM j) THEN "
    "EXCLUDED.quiet_hours_start ELSE p.quiet_hours_start END, "
    "quiet_hours_end = CASE WHEN (SELECT j ? 'quiet_hours' FROM j) THEN EXCLUDED.quiet_hours_end "
    "ELSE p.quiet_hours_end END, "
    "channels = CASE WHEN (SELECT j ? 'toggle_channel' FROM j) THEN jsonb_set(p.channels, '{*}', "
    "CASE WHEN COALESCE(p.channels->'*', '[\"telegram\"]') ? (SELECT j->>'toggle_channel' FROM j) "
    "THEN COALESCE(p.channels->'*', '[\"telegram\"]') - (SELECT j->>'toggle_channel' FROM j) "
    "ELSE COALESCE(p.channels->'*', '[\"telegram\"]') || to_jsonb((SELECT j->>'toggle_channel' "
    "FROM j)) END) ELSE p.channels END RETURNING 1) "
    "SELECT t.id, (SELECT count(*) FROM l) FROM t";

static void on_events(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct batch *b = ud;
    VN_UNUSED(c);
    if (!batch_result(b, "storing events", err, res))
        return;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *id = val(res, r, 0), *ok = val(res, r, 1);
        for (size_t i = 0; i < b->n_items; i++) {
            struct item *it = b->items[i];
            if (it->done || it->preclaimed || strcmp(it->ev.id, id) != 0)
                continue;
            if (ok && strcmp(ok, "0") == 0) {
                vn_info("notifier", "event %s: dedup_key \"%s\" was seen before; not delivered",
                        it->ev.id, it->ev.dedup_key ? it->ev.dedup_key : "");
                met_inc(met_get(b->n->m_events, "duplicate"));
                it->done = 1;
            }
        }
    }
    batch_done_one(b);
}

static void on_stored(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct batch *b = ud;
    VN_UNUSED(c);
    if (err && !b->failed)
        batch_fail_res(b, "storing reminders or preferences", err, res);
    batch_done_one(b);
}

static void step_intake(struct batch *b)
{
    struct vn_buf ev = VN_BUF_INIT, rem = VN_BUF_INIT, can = VN_BUF_INIT;
    int prefs_started = 0;
    for (size_t i = 0; i < b->n_items; i++) {
        struct item *it = b->items[i];
        if (it->done || it->preclaimed)
            continue;
        if (it->ev.type == NTF_REMINDER_SCHEDULED) {
            const struct ntf_recipient *r = it->ev.n_recipients ? &it->ev.recipients[0] : NULL;
            char who[64] = "";
            if (r && r->user_id)
                snprintf(who, sizeof(who), "%s", r->user_id);
            else if (r && r->has_telegram)
                snprintf(who, sizeof(who), "tg:%" PRId64, r->telegram_user_id);
            else if (r && r->email)
                snprintf(who, sizeof(who), "email:%.50s", r->email);
            vn_buf_puts(&rem, rem.len ? ",{" : "[{");
            vn_buf_puts(&rem, "\"rid\":");
            vn_buf_json_str(&rem, it->ev.reminder_id);
            json_kv(&rem, "user_id", who);
            vn_buf_putc(&rem, ',');
            json_event_cols(&rem, it);
            vn_buf_putc(&rem, '}');
            it->done = 1;
        } else if (it->ev.type == NTF_REMINDER_CANCELLED) {
            sql_text_array(&can, it->ev.reminder_id);
            it->done = 1;
        } else if (it->ev.type == NTF_PREFERENCES_UPDATE) {
            const struct ntf_recipient *r = &it->ev.recipients[0];
            char tg[24] = "", chat[24] = "";
            if (r->has_telegram) {
                snprintf(tg, sizeof(tg), "%" PRId64, r->telegram_user_id);
                snprintf(chat, sizeof(chat), "%" PRId64, r->chat_id);
            }
            const char *p[] = {json_object_to_json_string_ext(it->ev.data, JSON_C_TO_STRING_PLAIN),
                               r->has_telegram ? tg : NULL, r->has_telegram ? chat : NULL,
                               r->user_id};
            it->done = 1;
            if (prefs_started++ == 0)
                b->waiting = 1; /* held below */
            batch_query(b, PREPARED(SQL_PREFS), 4, p, on_stored);
        } else {
            vn_buf_puts(&ev, ev.len ? ",{" : "[{");
            json_event_cols(&ev, it);
            vn_buf_putc(&ev, '}');
        }
    }
    if (prefs_started == 0)
        b->waiting = 1; /* hold the step until every query is queued */
    if (rem.len) {
        vn_buf_putc(&rem, ']');
        const char *p[] = {rem.data};
        batch_query(b, PREPARED(SQL_REMINDERS), 1, p, on_stored);
    }
    if (can.len && !b->failed) {
        vn_buf_putc(&can, '}');
        const char *p[] = {can.data};
        batch_query(b, PREPARED(SQL_CANCEL), 1, p, on_stored);
    }
    if (ev.len && !b->failed) {
        vn_buf_putc(&ev, ']');
        const char *p[] = {ev.data};
        batch_query(b, PREPARED(SQL_EVENTS), 1, p, on_events);
    }
    vn_buf_free(&ev);
    vn_buf_free(&rem);
    vn_buf_free(&can);
    batch_done_one(b);
}

/* ---- step 2: recipients ------------------------------------------------------ */

static const char SQL_USERS[] =
    "SELECT u.id, u.email, u.display_name, u.locale, u.time_zone, u.active::int, p.channels::text, "
    "to_char(p.quiet_hours_start, 'HH24:MI'), to_char(p.quiet_hours_end, 'HH24:MI'), "
    "array_to_string(p.fallback_order, ','), l.chat_id, l.telegram_user_id, q.tg "
    "FROM (SELECT id AS uid, NULL::bigint AS tg FROM bot.users WHERE id = ANY($1::text[]) "
    "UNION ALL SELECT user_id, telegram_user_id FROM bot.telegram_links "
    "WHERE telegram_user_id = ANY($2::bigint[])) q "
    "JOIN bot.users u ON u.id = q.uid LEFT JOIN bot.preferences p ON p.user_id = u.id "
    "LEFT JOIN LATERAL (SELECT chat_id, telegram_user_id FROM bot.telegram_links k "
    "WHERE k.user_id = u.id AND k.active ORDER BY (k.telegram_user_id = q.tg) DESC NULLS LAST, "
    "k.linked_at DESC LIMIT 1) l ON true";

static struct urec *user_find(struct batch *b, const char *key)
{
    for (size_t i = 0; i < b->n_users; i++)
        if (strcmp(b->users[i]->key, key) == 0)
            return b->users[i];
    return NULL;
}

static struct urec *user_add(struct batch *b, const char *key)
{
    struct urec *u = xcalloc(1, sizeof(*u));
    u->key = xstrdup(key);
    u->u.key = u->key;
    u->u.active = 1;
    u->u.quiet_start_min = u->u.quiet_end_min = -1;
    u->u.fallback[0] = NTF_CH_TELEGRAM;
    u->u.fallback[1] = NTF_CH_EMAIL;
    u->u.n_fallback = 2;
    if (b->n_users == b->cap_users) {
        b->cap_users = b->cap_users ? b->cap_users * 2 : 32;
        b->users = xrealloc(b->users, b->cap_users * sizeof(*b->users));
    }
    b->users[b->n_users++] = u;
    return u;
}

static int hhmm(const char *s)
{
    int h, m;
    if (s == NULL || sscanf(s, "%d:%d", &h, &m) != 2)
        return -1;
    return h * 60 + m;
}

/* Finish a urec: pointers of the pure struct into its own strings. */
static void urec_fix(struct ntf_notifier *n, struct urec *u)
{
    u->u.name = u->name;
    u->u.email = u->email;
    u->u.locale = u->locale ? u->locale : n->o.default_locale;
    u->u.tz = tz_get(n, u->tzname);
    u->u.prefs_chan = u->prefs;
}

/* The user a recipient resolves to: registered (by id or Telegram link) or ad hoc. */
/* deliveries.user_id of a recipient that is not (or not yet) a registered user */
static void adhoc_key(const struct ntf_recipient *r, char *key, size_t len)
{
    if (r->user_id)
        snprintf(key, len, "%s", r->user_id);
    else if (r->has_telegram)
        snprintf(key, len, "tg:%" PRId64, r->telegram_user_id);
    else
        snprintf(key, len, "email:%s", r->email);
}

static struct urec *adhoc(struct batch *b, const struct ntf_recipient *r, const char *key);

static struct urec *resolve(struct batch *b, const struct ntf_recipient *r)
{
    char key[300];
    struct urec *u = NULL;
    if (r->user_id) {
        u = user_find(b, r->user_id);
    } else if (r->has_telegram) {
        /* "=tg:N" is an alias a registered user's link left in on_users */
        snprintf(key, sizeof(key), "=tg:%" PRId64, r->telegram_user_id);
        u = user_find(b, key);
        if (u)
            u = user_find(b, u->alias_of);
    }
    if (u && u->u.known) {
        /* per-event overrides */
        if (r->name && u->name == NULL)
            u->name = xstrdup(r->name);
        return u;
    }
    adhoc_key(r, key, sizeof(key));
    return adhoc(b, r, key);
}

/* The user of a recipient without an account (or an unknown user id). */
static struct urec *adhoc(struct batch *b, const struct ntf_recipient *r, const char *key)
{
    struct ntf_notifier *n = b->n;
    struct urec *u = user_find(b, key);
    if (u != NULL)
        return u;
    u = user_add(b, key);
    u->u.known = 0;
    u->name = r->name ? xstrdup(r->name) : NULL;
    u->email = r->email ? xstrdup(r->email) : NULL;
    u->locale = r->locale ? xstrdup(r->locale) : NULL;
    u->tzname = r->time_zone ? xstrdup(r->time_zone) : NULL;
    if (r->has_telegram) {
        u->u.telegram_ok = 1;
        u->u.chat_id = r->chat_id;
    }
    /* A user_id nobody registered, with no address: ntf_route skips it. */
    urec_fix(n, u);
    return u;
}

static void on_users(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct batch *b = ud;
    struct ntf_notifier *n = b->n;
    VN_UNUSED(c);
    if (!batch_result(b, "reading recipients", err, res))
        return;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = val(res, i, 0), *tg = val(res, i, 12);
        struct urec *u = user_find(b, id);
        if (u == NULL) {
            u = user_add(b, id);
            u->u.known = 1;
            u->email = val(res, i, 1) ? xstrdup(val(res, i, 1)) : NULL;
            u->name = val(res, i, 2) ? xstrdup(val(res, i, 2)) : NULL;
            u->locale = xstrdup(val(res, i, 3) ? val(res, i, 3) : n->o.default_locale);
            u->tzname = val(res, i, 4) ? xstrdup(val(res, i, 4)) : NULL;
            u->u.active = val(res, i, 5) && strcmp(val(res, i, 5), "1") == 0;
            if (val(res, i, 6))
                u->prefs = json_tokener_parse(val(res, i, 6));
            u->u.quiet_start_min = hhmm(val(res, i, 7));
            u->u.quiet_end_min = hhmm(val(res, i, 8));
            if (val(res, i, 9)) {
                const char *p = val(res, i, 9);
                u->u.n_fallback = 0;
                while (*p && u->u.n_fallback < NTF_CH_COUNT) {
                    char name[16];
                    size_t len = strcspn(p, ",");
                    snprintf(name, sizeof(name), "%.*s", (int)len, p);
                    int ch = ntf_channel_parse(name);
                    if (ch >= 0)
                        u->u.fallback[u->u.n_fallback++] = (enum ntf_channel)ch;
                    p += len + (p[len] == ',');
                }
            }
            if (val(res, i, 10)) {
                u->u.telegram_ok = 1;
                u->u.chat_id = strtoll(val(res, i, 10), NULL, 10);
                u->tg_user = strtoll(val(res, i, 11), NULL, 10);
            }
            urec_fix(n, u);
        }
        if (tg) {
            /* an alias so a telegram_user_id recipient finds its user */
            char key[64];
            snprintf(key, sizeof(key), "=tg:%s", tg);
            if (user_find(b, key) == NULL) {
                struct urec *alias = user_add(b, key);
                alias->u.known = 1;
                alias->alias_of = xstrdup(id);
            }
        }
    }
    batch_done_one(b);
}

static void step_users(struct batch *b)
{
    struct vn_buf ids = VN_BUF_INIT, tgs = VN_BUF_INIT;
    for (size_t i = 0; i < b->n_items; i++) {
        struct item *it = b->items[i];
        if (it->done)
            continue;
        for (size_t k = 0; k < it->ev.n_recipients; k++) {
            const struct ntf_recipient *r = &it->ev.recipients[k];
            if (r->user_id)
                sql_text_array(&ids, r->user_id);
            else if (r->has_telegram)
                vn_buf_printf(&tgs, "%s%" PRId64, tgs.len ? "," : "{", r->telegram_user_id);
        }
    }
    if (ids.len == 0 && tgs.len == 0) {
        vn_buf_free(&ids);
        vn_buf_free(&tgs);
        batch_step(b);
        return;
    }
    vn_buf_puts(&ids, ids.len ? "}" : "{}");
    vn_buf_puts(&tgs, tgs.len ? "}" : "{}");
    const char *p[] = {ids.data, tgs.data};
    b->waiting = 1; /* a query that fails at once must still end the step */
    batch_query(b, PREPARED(SQL_USERS), 2, p, on_users);
    vn_buf_free(&ids);
    vn_buf_free(&tgs);
    batch_done_one(b);
}

/* ---- step 3: plan and claim rows --------------------------------------------- */

/*
 * Insert the planned rows and claim the ones due now, in one statement.
 * Every lookup goes through the unique key or the primary key (index scans
 * whatever the table's size): cur = rows that existed before (a redelivery,
 * a retry), upd = those of them this notifier may claim now.
 */
static const char SQL_ROWS[] =
    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(event_id uuid, user_id text, "
    "channel text, state text, next_at timestamptz, reason text, retry boolean)), "
    "cur AS (SELECT d.id, d.event_id, d.user_id, d.channel, d.state, d.attempts, d.claim_until, "
    "d.next_attempt_at, x.retry FROM x CROSS JOIN LATERAL (SELECT * FROM notify.deliveries d "
    "WHERE d.event_id = x.event_id AND d.user_id = x.user_id AND d.channel = x.channel) d), "
    "ins AS (INSERT INTO notify.deliveries AS d (event_id, user_id, channel, state, "
    "next_attempt_at, last_error, attempts, claim_owner, claim_until) "
    "SELECT event_id, user_id, channel, state, "
    "CASE WHEN state = 'pending' THEN COALESCE(next_at, now()) END, reason, "
    "CASE WHEN state = 'pending' AND next_at IS NULL THEN 1 ELSE 0 END, "
    "CASE WHEN state = 'pending' AND next_at IS NULL THEN $2 END, "
    "CASE WHEN state = 'pending' AND next_at IS NULL THEN now() + $3::interval END "
    "FROM x ON CONFLICT DO NOTHING "
    "RETURNING d.id, d.event_id, d.user_id, d.channel, d.state, d.attempts, "
    "(d.claim_owner IS NOT NULL)::int AS claimed), "
    "mine AS (SELECT id FROM cur WHERE state IN ('pending', 'retrying') AND (claim_until IS NULL "
    "OR claim_until < now()) AND (next_attempt_at <= now() OR (state = 'retrying' AND retry))), "
    "upd AS (UPDATE notify.deliveries d SET attempts = d.attempts + 1, claim_owner = $2, "
    "claim_until = now() + $3::interval WHERE d.id = ANY (ARRAY(SELECT id FROM mine)) "
    /* repeated here: a row another notifier claimed meanwhile is re-checked after its lock */
    "AND d.state IN ('pending', 'retrying') AND (d.claim_until IS NULL OR d.claim_until < now()) "
    "RETURNING d.id, d.event_id, d.user_id, d.channel, d.state, d.attempts, 1 AS claimed) "
    "SELECT id, event_id::text, user_id, channel, state, attempts, claimed FROM ins "
    "UNION ALL SELECT id, event_id::text, user_id, channel, state, attempts, claimed FROM upd "
    "UNION ALL SELECT id, event_id::text, user_id, channel, state, attempts, 0 FROM cur "
    "WHERE id NOT IN (SELECT id FROM upd)";

static unsigned used_channels(struct batch *b, struct item *it, struct urec *u)
{
    unsigned m = 0;
    for (size_t i = 0; i < b->n_rows; i++)
        if (b->rows[i]->it == it && b->rows[i]->u == u)
            m |= NTF_CH_BIT(b->rows[i]->ch);
    return m;
}

static void plan_items(struct batch *b)
{
    struct ntf_notifier *n = b->n;
    int64_t now = (int64_t)vn_wall_ms();
    for (size_t i = 0; i < b->n_items; i++) {
        struct item *it = b->items[i];
        if (it->done || it->preclaimed)
            continue;
        struct urec **who = xcalloc(it->ev.n_recipients ? it->ev.n_recipients : 1, sizeof(*who));
        for (size_t k = 0; k < it->ev.n_recipients; k++) {
            struct urec *u = resolve(b, &it->ev.recipients[k]);
            int seen = 0;
            for (size_t j = 0; j < k; j++)
                seen |= who[j] == u;
            who[k] = u;
            if (seen || u == NULL)
                continue; /* one person named twice gets one message per channel */
            struct ntf_plan plan[NTF_CH_COUNT];
            size_t np = ntf_route(&it->ev, &u->u, now, n->available, plan);
            for (size_t p = 0; p < np; p++) {
                struct row *r = batch_add_row(b, it, u, plan[p].channel);
                r->plan = plan[p].action;
                r->not_before = plan[p].not_before_ms;
                memcpy(r->reason, plan[p].reason, sizeof(r->reason));
            }
        }
        free(who);
    }
}

static void on_rows(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct batch *b = ud;
    VN_UNUSED(c);
    if (!batch_result(b, "recording deliveries", err, res))
        return;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *eid = val(res, i, 1), *uid = val(res, i, 2), *ch = val(res, i, 3);
        int chn = ntf_channel_parse(ch);
        for (size_t k = b->round_start; k < b->n_rows; k++) {
            struct row *r = b->rows[k];
            if (r->id || r->ch != (enum ntf_channel)chn || strcmp(r->u->key, uid) != 0 ||
                strcmp(r->it->ev.id, eid) != 0)
                continue;
            r->id = strtoll(val(res, i, 0), NULL, 10);
            snprintf(r->state, sizeof(r->state), "%s", val(res, i, 4));
            r->attempts = atoi(val(res, i, 5));
            r->claimed = strcmp(val(res, i, 6), "1") == 0;
            break;
        }
    }
    batch_done_one(b);
}

static void step_rows(struct batch *b)
{
    struct ntf_notifier *n = b->n;
    struct vn_buf x = VN_BUF_INIT;
    for (size_t k = b->round_start; k < b->n_rows; k++) {
        struct row *r = b->rows[k];
        if (r->claimed)
            continue; /* came claimed from the scheduler */
        vn_buf_puts(&x, x.len ? ",{" : "[{");
        vn_buf_printf(&x, "\"event_id\":\"%s\"", r->it->ev.id);
        json_kv(&x, "user_id", r->u->key);
        json_kv(&x, "channel", ntf_channel_name(r->ch));
        json_kv(&x, "state", r->plan == NTF_SKIP ? "skipped" : "pending");
        json_time(&x, "next_at", r->plan == NTF_DEFER ? r->not_before : 0);
        json_kv(&x, "reason", r->reason[0] ? r->reason : NULL);
        vn_buf_printf(&x, ",\"retry\":%s}",
                      r->it->msg && r->it->msg_attempt > 0 ? "true" : "false");
    }
    if (x.len == 0) {
        batch_step(b);
        return;
    }
    vn_buf_putc(&x, ']');
    const char *p[] = {x.data, n->instance, n->lease};
    b->waiting = 1;
    batch_query(b, PREPARED(SQL_ROWS), 3, p, on_rows);
    vn_buf_free(&x);
    batch_done_one(b);
}

/* ---- step 4: send ---------------------------------------------------------------- */

/*
 * A message the channel accepted is recorded as sent at the end of this loop
 * iteration, not when its whole batch is done: the time in which a crash
 * would leave it claimed but not recorded (and so sent again, see
 * docs/notifier.md) is one statement, not the slowest send of the batch.
 */
static const char SQL_EARLY[] =
    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, ref text)) "
    "UPDATE notify.deliveries d SET state = 'sent', sent_at = now(), last_error = NULL, "
    "provider_ref = COALESCE(x.ref, d.provider_ref), claim_owner = NULL, claim_until = NULL "
    "FROM x WHERE d.id = ANY (ARRAY(SELECT id FROM x)) AND d.id = x.id AND d.claim_owner = $2";

struct early_flush {
    struct ntf_notifier *n;
    struct row **rows;
    size_t n_rows;
};

static void on_early(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct early_flush *f = ud;
    VN_UNUSED(c);
    VN_UNUSED(res);
    if (err)
        vn_warn("notifier",
                "recording %zu sent messages failed (%s); their claims run out and "
                "they may be sent again",
                f->n_rows, err);
    f->n->early_busy = 0;
    for (size_t i = 0; i < f->n_rows; i++) {
        struct row *r = f->rows[i];
        struct batch *b = r->it->b;
        r->recorded = 1;
        if (b->early_wait > 0) { /* its batch waits in P_FINAL */
            b->early_wait--;
            batch_done_one(b);
        }
    }
    free(f->rows);
    free(f);
}

static void early_flush(struct ntf_notifier *n)
{
    if (n->n_early == 0 || n->early_busy)
        return;
    struct early_flush *f = xcalloc(1, sizeof(*f));
    struct vn_buf x = VN_BUF_INIT;
    f->n = n;
    f->rows = n->early;
    f->n_rows = n->n_early;
    n->early = NULL;
    n->n_early = n->cap_early = 0;
    for (size_t i = 0; i < f->n_rows; i++) {
        struct row *r = f->rows[i];
        vn_buf_puts(&x, x.len ? ",{" : "[{");
        vn_buf_printf(&x, "\"id\":%" PRId64, r->id);
        json_kv(&x, "ref", r->ref[0] ? r->ref : NULL);
        vn_buf_putc(&x, '}');
    }
    vn_buf_putc(&x, ']');
    const char *p[] = {x.data, n->instance};
    n->early_busy = 1;
    if (pgc_query_prepared(n->o.pg_fast, PREPARED(SQL_EARLY), 2, p, on_early, f) != 0)
        on_early(n->o.pg, NULL, "PostgreSQL is not connected", f);
    vn_buf_free(&x);
}

static void row_sent(struct row *r, enum outcome out, const char *err, const char *ref)
{
    struct ntf_notifier *n = r->it->b->n;
    r->out = out;
    if (err)
        snprintf(r->err, sizeof(r->err), "%s", err);
    if (ref && ref != r->ref)
        snprintf(r->ref, sizeof(r->ref), "%s", ref);
    if (out == OUT_SENT && r->id) {
        r->early = 1;
        snprintf(r->state, sizeof(r->state), "sent");
        if (n->n_early == n->cap_early) {
            n->cap_early = n->cap_early ? n->cap_early * 2 : 64;
            n->early = xrealloc(n->early, n->cap_early * sizeof(*n->early));
        }
        n->early[n->n_early++] = r;
    }
    met_inc(met_get(n->m_deliveries, ntf_channel_name(r->ch),
                    out == OUT_SENT   ? "sent"
                    : out == OUT_TEMP ? "temporary_failure"
                                      : "permanent_failure"));
    batch_done_one(r->it->b);
}

static void on_tg(const struct tg_result *res, void *ud)
{
    struct row *r = ud;
    char err[200], ref[32] = "";
    json_object *v = NULL;
    if (res->kind == TG_OK) {
        if (res->result && json_object_object_get_ex(res->result, "message_id", &v))
            snprintf(ref, sizeof(ref), "%" PRId64, json_object_get_int64(v));
        row_sent(r, OUT_SENT, NULL, ref);
        return;
    }
    snprintf(err, sizeof(err), "telegram %s: %d %s", tg_err_kind_name(res->kind), res->error_code,
             res->description ? res->description : "");
    switch (res->kind) {
    case TG_ERR_BLOCKED:
        r->u->blocked = 1;
        r->u->u.telegram_ok = 0;
        /* fall through */
    case TG_ERR_CHAT_NOT_FOUND:
    case TG_ERR_MIGRATED:
    case TG_ERR_BAD_REQUEST:
        row_sent(r, OUT_PERM, err, NULL);
        return;
    default: /* 429 after retries, 5xx, network, a wrong token, closing: try later */
        row_sent(r, OUT_TEMP, err, NULL);
    }
}

static void on_email(const struct ntf_email_result *res, void *ud)
{
    struct row *r = ud;
    char err[200];
    if (res->status == NTF_EMAIL_SENT) {
        row_sent(r, OUT_SENT, NULL, r->ref);
        return;
    }
    snprintf(err, sizeof(err), "smtp %d: %s", res->smtp_code, res->detail ? res->detail : "");
    row_sent(r, res->status == NTF_EMAIL_PERMFAIL ? OUT_PERM : OUT_TEMP, err, r->ref);
}

static int render(struct ntf_notifier *n, struct row *r, enum tpl_part part, struct vn_buf *text,
                  struct tpl_email *mail)
{
    struct tpl_render_opts o;
    struct tpl_error e;
    json_object *data = r->it->ev.data, *rcpt = NULL;
    int added = 0, rc;
    memset(&o, 0, sizeof(o));
    o.locale = r->u->u.locale;
    o.tz = r->u->tzname ? r->u->tzname : n->o.default_time_zone;
    o.cache = n->fmt;
    if (!json_object_object_get_ex(data, "recipient", NULL) && r->u->name) {
        rcpt = json_object_new_object();
        json_object_object_add(rcpt, "name", json_object_new_string(r->u->name));
        json_object_object_add(data, "recipient", rcpt);
        added = 1;
    }
    const char *name = ntf_template_name(r->it->ev.type);
    if (mail)
        rc = tpl_set_render_email(*n->o.templates, name, data, &o, mail, &e);
    else
        rc = tpl_set_render(*n->o.templates, name, part, data, &o, text, &e);
    if (added)
        json_object_object_del(data, "recipient");
    if (rc != 0) {
        struct vn_buf m = VN_BUF_INIT;
        tpl_error_format(&e, &m);
        snprintf(r->err, sizeof(r->err), "template: %s", m.data ? m.data : "?");
        vn_buf_free(&m);
    }
    return rc;
}

static void send_row(struct batch *b, struct row *r)
{
    struct ntf_notifier *n = b->n;
    int rc = VN_EINVAL;
    b->waiting++;
    if (r->ch == NTF_CH_TELEGRAM && n->o.tg) {
        struct vn_buf text = VN_BUF_INIT;
        if (render(n, r, TPL_PART_TELEGRAM, &text, NULL) == 0) {
            struct tg_send m;
            memset(&m, 0, sizeof(m));
            m.chat_id = r->u->u.chat_id;
            m.text = text.data ? text.data : "";
            m.parse_mode = "HTML";
            rc = tg_send_message(n->o.tg, &m, on_tg, r);
            if (rc != 0)
                snprintf(r->err, sizeof(r->err), "telegram: %s", vn_strerror(rc));
        }
        vn_buf_free(&text);
        if (rc != 0)
            row_sent(r, rc == VN_EINVAL ? OUT_PERM : OUT_TEMP, r->err, NULL);
        return;
    }
    if (r->ch == NTF_CH_EMAIL && n->o.email) {
        struct tpl_email mail;
        memset(&mail, 0, sizeof(mail));
        if (render(n, r, 0, NULL, &mail) == 0) {
            struct ntf_email m;
            snprintf(r->ref, sizeof(r->ref), "%s.%" PRId64 "@vestnik", r->it->ev.id, r->id);
            memset(&m, 0, sizeof(m));
            m.to_addr = r->u->email;
            m.to_name = r->u->name;
            m.subject = mail.subject;
            m.text = mail.text;
            m.html = mail.html;
            m.message_id = r->ref;
            rc = ntf_email_send(n->o.email, &m, on_email, r);
            if (rc != 0)
                snprintf(r->err, sizeof(r->err), "email: %s", vn_strerror(rc));
        }
        tpl_email_free(&mail);
        if (rc != 0)
            row_sent(r, rc == VN_EINVAL ? OUT_PERM : OUT_TEMP, r->err, NULL);
        return;
    }
    row_sent(r, OUT_PERM, "the channel is not enabled in this notifier", NULL);
}

static void step_send(struct batch *b)
{
    b->waiting = 1;
    for (size_t k = b->round_start; k < b->n_rows; k++) {
        struct row *r = b->rows[k];
        if (r->claimed && r->out == OUT_NONE)
            send_row(b, r);
    }
    batch_done_one(b);
}

/* ---- step 5: record outcomes, fall back, decide retries ---------------------- */

/*
 * Outcomes, and the fallback rows of channels that failed for good, in one
 * statement: a failed row never exists without its fallback (a crash right
 * after would otherwise lose the message). The fallback rows are inserted
 * unclaimed and due; the next round (or the scheduler) claims and sends them.
 */
static const char SQL_FINAL[] =
    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, state text, err text, "
    "ref text, next_at timestamptz)), "
    "fb AS (INSERT INTO notify.deliveries (event_id, user_id, channel, state, next_attempt_at, "
    "last_error) SELECT event_id, user_id, channel, 'pending', COALESCE(next_at, now()), reason "
    "FROM jsonb_to_recordset($3::jsonb) AS f(event_id uuid, user_id text, channel text, "
    "next_at timestamptz, reason text) ON CONFLICT DO NOTHING) "
    "UPDATE notify.deliveries d SET state = x.state, last_error = x.err, "
    "provider_ref = COALESCE(x.ref, d.provider_ref), "
    "sent_at = CASE WHEN x.state = 'sent' THEN now() ELSE d.sent_at END, "
    "next_attempt_at = CASE WHEN x.state = 'retrying' THEN x.next_at ELSE d.next_attempt_at END, "
    "claim_owner = NULL, claim_until = NULL FROM x WHERE d.id = ANY (ARRAY(SELECT id FROM x)) "
    "AND d.id = x.id AND d.claim_owner = $2";

static const char SQL_BLOCK[] = "UPDATE bot.telegram_links SET active = false, blocked_at = now() "
                                "WHERE telegram_user_id = ANY($1::bigint[]) AND active";

static void on_final(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct batch *b = ud;
    VN_UNUSED(c);
    VN_UNUSED(res);
    if (err)
        batch_fail(b, "recording outcomes", err);
    batch_done_one(b);
}

static void on_block(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    VN_UNUSED(c);
    VN_UNUSED(res);
    VN_UNUSED(ud);
    if (err)
        vn_warn("notifier", "marking blocked Telegram links failed: %s", err);
}

static void step_final(struct batch *b)
{
    struct ntf_notifier *n = b->n;
    struct vn_buf x = VN_BUF_INIT, blocked = VN_BUF_INIT, fb = VN_BUF_INIT;
    int64_t now = (int64_t)vn_wall_ms();
    size_t end = b->n_rows;
    for (size_t k = b->round_start; k < end; k++) {
        struct row *r = b->rows[k];
        const char *state = "sent";
        int64_t next = 0;
        char err[300];
        if (!r->claimed || r->out == OUT_NONE)
            continue;
        if (r->early) {
            if (!r->recorded)
                b->early_wait++; /* on_early ends the wait */
            continue;
        }
        snprintf(err, sizeof(err), "%s", r->err);
        if (r->out == OUT_TEMP) {
            size_t step = 0;
            if (ntf_retry_next(&n->o.topo.retry[0], r->attempts, &step) == 0) {
                state = "retrying";
                next = now + n->o.topo.retry->delay_ms[step];
                struct item *it = r->it;
                if (!it->retry || step > it->retry_step)
                    it->retry_step = step;
                if (r->attempts > it->retry_attempt)
                    it->retry_attempt = r->attempts;
                it->retry = 1;
                snprintf(it->retry_err, sizeof(it->retry_err), "%s", r->err);
            } else {
                state = "failed";
                snprintf(err, sizeof(err), "gave up after %d attempts: %s", r->attempts, r->err);
                r->it->dead = 1;
                snprintf(r->it->dead_reason, sizeof(r->it->dead_reason),
                         "delivery_failed: %s to %s after %d attempts: %s", ntf_channel_name(r->ch),
                         r->u->key, r->attempts, r->err);
            }
        } else if (r->out == OUT_PERM) {
            state = "failed";
        }
        if (strcmp(state, "failed") == 0) {
            struct ntf_plan p;
            if (ntf_route_fallback(&r->it->ev, &r->u->u, now, n->available,
                                   used_channels(b, r->it, r->u), &p)) {
                struct row *f = batch_add_row(b, r->it, r->u, p.channel);
                f->plan = p.action;
                f->not_before = p.not_before_ms;
                snprintf(f->reason, sizeof(f->reason), "fallback after %s failed",
                         ntf_channel_name(r->ch));
                if (p.action == NTF_DEFER)
                    snprintf(f->reason, sizeof(f->reason), "%s", p.reason);
                vn_buf_puts(&fb, fb.len ? ",{" : "[{");
                vn_buf_printf(&fb, "\"event_id\":\"%s\"", f->it->ev.id);
                json_kv(&fb, "user_id", f->u->key);
                json_kv(&fb, "channel", ntf_channel_name(f->ch));
                json_time(&fb, "next_at", p.action == NTF_DEFER ? p.not_before_ms : 0);
                json_kv(&fb, "reason", f->reason);
                vn_buf_putc(&fb, '}');
            }
        }
        snprintf(r->state, sizeof(r->state), "%s", state);
        vn_buf_puts(&x, x.len ? ",{" : "[{");
        vn_buf_printf(&x, "\"id\":%" PRId64, r->id);
        json_kv(&x, "state", state);
        json_kv(&x, "err", r->out == OUT_SENT ? NULL : err);
        json_kv(&x, "ref", r->ref[0] ? r->ref : NULL);
        json_time(&x, "next_at", next);
        vn_buf_putc(&x, '}');
        if (r->out == OUT_PERM && r->ch == NTF_CH_TELEGRAM && r->u->blocked && r->u->tg_user) {
            vn_buf_printf(&blocked, "%s%" PRId64, blocked.len ? "," : "{", r->u->tg_user);
            r->u->tg_user = 0;
        }
    }
    b->waiting = 1 + b->early_wait;
    early_flush(n); /* those still waiting to be flushed at all */
    if (blocked.len) {
        vn_buf_putc(&blocked, '}');
        const char *p[] = {blocked.data};
        if (pgc_query(n->o.pg, SQL_BLOCK, 1, p, on_block, NULL) != 0)
            vn_warn("notifier", "could not mark blocked Telegram links (database down)");
    }
    if (x.len) {
        vn_buf_putc(&x, ']');
        vn_buf_puts(&fb, fb.len ? "]" : "[]");
        const char *p[] = {x.data, n->instance, fb.data};
        batch_query(b, PREPARED(SQL_FINAL), 3, p, on_final);
    }
    vn_buf_free(&fb);
    /* rows added above (fallbacks) are the next round */
    b->round_start = end;
    vn_buf_free(&x);
    vn_buf_free(&blocked);
    batch_done_one(b);
}

/* ---- step 6: settle the messages -------------------------------------------- */

static const char SQL_FIRED[] =
    "UPDATE notify.reminders SET state = 'fired', fired_at = now(), lease_owner = NULL, "
    "lease_until = NULL WHERE id = ANY($1::text[]) AND lease_owner = $2";

static void item_settled(struct item *it)
{
    if (--it->settling > 0)
        return;
    if (it->msg) {
        mq_ack(it->msg);
        it->msg = NULL;
    }
    batch_done_one(it->b);
}

static void on_settle_publish(void *ud, int ok, const char *why)
{
    struct item *it = ud;
    if (!ok) {
        vn_warn("notifier", "event %s: publishing its %s copy failed (%s); %s", it->ev.id,
                it->dead ? "dead-letter" : "retry", why ? why : "?",
                it->msg ? "the message goes back to the queue" : "the scheduler will retry");
        if (it->msg) {
            mq_nack(it->msg, 1);
            it->msg = NULL;
        }
    }
    item_settled(it);
}

static void on_fired(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    VN_UNUSED(c);
    VN_UNUSED(res);
    if (err)
        vn_warn("notifier", "marking reminders fired failed (%s); their leases will expire", err);
    batch_done_one(ud);
}

static void publish_copy(struct ntf_notifier *n, struct item *it, const char *rk,
                         const amqp_table_t *h)
{
    const char *body = it->body;
    size_t len = it->len;
    it->settling++;
    if (mq_publish(n->o.mq, "", rk, it->ev.id[0] ? it->ev.id : NULL, h, body, len,
                   on_settle_publish, it) != 0)
        on_settle_publish(it, 0, "client closing");
}

/* Dead-letter a message (invalid, or out of attempts) with the reason in headers. */
static void dead_letter(struct ntf_notifier *n, struct item *it, const char *code,
                        const char *reason)
{
    char ts[40], dq[256];
    ntf_format_rfc3339((int64_t)vn_wall_ms(), ts, sizeof(ts));
    ntf_queue_name(n->o.topo.prefix, NTF_Q_COUNT, dq, sizeof(dq));
    amqp_table_entry_t h[6] = {
        str_entry("x-vestnik-reason", reason),
        str_entry("x-vestnik-reason-code", code),
        int_entry("x-vestnik-attempts",
                  it->retry_attempt ? it->retry_attempt : it->msg_attempt + 1),
        str_entry("x-vestnik-queue", it->msg && it->msg->queue ? it->msg->queue : ""),
        str_entry("x-vestnik-routing-key",
                  it->msg ? it->msg->routing_key : ntf_type_name(it->ev.type)),
        str_entry("x-vestnik-dead-at", ts),
    };
    amqp_table_t t = {6, h};
    met_inc(met_get(n->m_dead, code));
    vn_warn("notifier", "dead-lettered %s: %s", it->ev.id[0] ? it->ev.id : "a message", reason);
    publish_copy(n, it, dq, &t);
}

static void step_settle(struct batch *b)
{
    struct ntf_notifier *n = b->n;
    struct vn_buf fired = VN_BUF_INIT;
    b->waiting = 1;
    for (size_t i = 0; i < b->n_items; i++) {
        struct item *it = b->items[i];
        it->settling = 1;
        b->waiting++;
        if (it->dead) {
            const char *colon = strchr(it->dead_reason, ':');
            char code[32];
            snprintf(code, sizeof(code), "%.*s", colon ? (int)(colon - it->dead_reason) : 0,
                     it->dead_reason);
            dead_letter(n, it, code, it->dead_reason);
        }
        if (it->retry) {
            char q[256], rq[300];
            ntf_queue_name(n->o.topo.prefix, ntf_queue_of(it->ev.type), q, sizeof(q));
            snprintf(rq, sizeof(rq), "%s.retry.%s", q, n->o.topo.retry->name[it->retry_step]);
            amqp_table_entry_t h[2] = {int_entry("x-vestnik-attempt", it->retry_attempt),
                                       str_entry("x-vestnik-last-error", it->retry_err)};
            amqp_table_t t = {2, h};
            publish_copy(n, it, rq, &t);
        }
        if (it->reminder_fire)
            sql_text_array(&fired, it->reminder_fire);
        if (!it->rejected)
            met_inc(met_get(n->m_events, it->dead ? "dead" : it->retry ? "retry" : "done"));
        item_settled(it);
    }
    if (fired.len) {
        vn_buf_putc(&fired, '}');
        const char *p[] = {fired.data, n->instance};
        if (pgc_query_prepared(n->o.pg, PREPARED(SQL_FIRED), 2, p, on_fired, b) == 0)
            b->waiting++;
    }
    vn_buf_free(&fired);
    met_observe(met_get(n->m_latency), (double)(vn_now_ms() - b->started_ms) / 1000.0);
    batch_done_one(b);
}

/* ---- the step machine --------------------------------------------------------- */

static int has_work(const struct batch *b)
{
    for (size_t i = 0; i < b->n_items; i++)
        if (!b->items[i]->done)
            return 1;
    return 0;
}

static int has_new_rows(const struct batch *b)
{
    return b->round_start < b->n_rows;
}

/* Attach the scheduler's claimed rows to the users their events name. */
static void attach_claimed(struct batch *b)
{
    for (size_t i = 0; i < b->n_items; i++) {
        struct item *it = b->items[i];
        if (!it->preclaimed)
            continue;
        for (size_t k = 0; k < it->ev.n_recipients; k++)
            resolve(b, &it->ev.recipients[k]);
    }
    for (size_t k = 0; k < b->n_rows; k++) {
        struct row *r = b->rows[k];
        if (r->u)
            continue;
        r->u = r->ukey ? user_find(b, r->ukey) : NULL;
        for (size_t j = 0; r->u == NULL && r->ukey && j < r->it->ev.n_recipients; j++) {
            /* stored as "tg:N" / "email:x" and the person registered since */
            char key[300];
            adhoc_key(&r->it->ev.recipients[j], key, sizeof(key));
            if (strcmp(key, r->ukey) == 0)
                r->u = adhoc(b, &r->it->ev.recipients[j], key);
        }
        if (r->u == NULL) {
            r->u = user_add(b, r->ukey ? r->ukey : "?");
            urec_fix(b->n, r->u);
            r->out = OUT_PERM;
            snprintf(r->err, sizeof(r->err), "the recipient is no longer in the event");
        }
    }
}

/* Called when the current phase's work is complete (waiting == 0). */
static void batch_step(struct batch *b)
{
    uint64_t now = vn_now_ms();
    b->phase_ms[b->phase & 7] += now - b->phase_at;
    b->phase_at = now;
    switch (b->phase) {
    case P_INTAKE:
        if (!has_work(b)) {
            b->phase = P_SETTLE;
            step_settle(b);
            return;
        }
        b->phase = P_USERS;
        step_users(b);
        return;
    case P_USERS:
        plan_items(b);
        attach_claimed(b);
        b->phase = P_ROWS;
        step_rows(b);
        return;
    case P_ROWS:
        b->phase = P_SEND;
        step_send(b);
        return;
    case P_SEND:
        b->phase = P_FINAL;
        step_final(b);
        return;
    case P_FINAL:
        if (has_new_rows(b)) { /* fallbacks */
            b->phase = P_ROWS;
            step_rows(b);
            return;
        }
        b->phase = P_SETTLE;
        step_settle(b);
        return;
    case P_SETTLE:
    default:
        if (vn_log_get_level() <= VN_LOG_DEBUG)
            vn_debug(
                "notifier",
                "batch of %zu events, %zu rows: %llu ms (intake %llu, recipients %llu, "
                "rows %llu, send %llu, outcomes %llu, settle %llu)",
                b->n_items, b->n_rows, (unsigned long long)(now - b->started_ms),
                (unsigned long long)b->phase_ms[P_INTAKE], (unsigned long long)b->phase_ms[P_USERS],
                (unsigned long long)b->phase_ms[P_ROWS], (unsigned long long)b->phase_ms[P_SEND],
                (unsigned long long)b->phase_ms[P_FINAL],
                (unsigned long long)b->phase_ms[P_SETTLE]);
        batch_free(b);
        return;
    }
}

static void batch_start(struct batch *b)
{
    b->next = b->n->active;
    if (b->next)
        b->next->prev = b;
    b->n->active = b;
    b->n->busy++;
    b->phase = P_INTAKE;
    b->phase_at = vn_now_ms();
    step_intake(b);
}

/* ---- intake from RabbitMQ --------------------------------------------------- */

static void flush_forming(struct ntf_notifier *n)
{
    struct batch *b = n->forming;
    n->forming = NULL;
    if (b && b->n_items)
        batch_start(b);
    else if (b)
        free(b);
}

/* Without the database a batch could only fail: events are held (at most
 * the prefetch) until it answers again, instead of being nacked in a loop. */
static int can_start(const struct ntf_notifier *n)
{
    return pgc_is_ready(n->o.pg) && vn_now_ms() >= n->backoff_until;
}

/*
 * At the end of a loop iteration: start the batch gathered so far, unless
 * NTF_MAX_BATCHES are already in flight. With one PostgreSQL connection more
 * batches would only queue behind them; gathering instead makes the next
 * batch bigger (one statement per step for all of it), which is where
 * throughput comes from. At a low rate every event still starts at once.
 * (bench/notifier_e2e.sh at 2,000 events/s: 2 in flight gave p50 213 ms,
 * 3 gave 78 ms, same throughput.)
 */
static void on_check(uv_check_t *h)
{
    struct ntf_notifier *n = h->data;
    early_flush(n);
    if (n->stopped) {
        flush_forming(n);
        return;
    }
    if (can_start(n) && n->busy < NTF_MAX_BATCHES)
        flush_forming(n);
}

static void on_message(struct mq_message *msg, void *ud)
{
    struct ntf_notifier *n = ud;
    if (n->stopped) { /* draining: the subscription is being cancelled; it goes back */
        mq_nack(msg, 1);
        return;
    }
    struct item *it = xcalloc(1, sizeof(*it));
    struct ntf_reject_info why;
    it->msg = msg;
    it->msg_attempt = hdr_int(&msg->headers, "x-vestnik-attempt", 0);
    it->body = xmalloc(msg->len + 1);
    memcpy(it->body, msg->body, msg->len + 1);
    it->len = msg->len;
    struct ntf_limits lim = {n->o.max_event_bytes, 1000, it->msg_attempt > 0};
    if (ntf_event_parse(msg->body, msg->len, &lim, &it->ev, &why) != 0) {
        it->done = 1;
        it->dead = 1;
        it->rejected = 1;
        snprintf(it->dead_reason, sizeof(it->dead_reason), "%s: %s", ntf_reject_code(why.code),
                 why.msg);
        met_inc(met_get(n->m_events, "rejected"));
    }
    if (n->forming && !it->dead) {
        for (size_t i = 0; i < n->forming->n_items; i++)
            if (strcmp(n->forming->items[i]->ev.id, it->ev.id) == 0) {
                /* the same event twice: one batch each, in order (if the
                 * database is away, the copy is simply dropped back) */
                if (can_start(n)) {
                    flush_forming(n);
                } else {
                    mq_nack(msg, 1);
                    it->msg = NULL;
                    ntf_event_free(&it->ev);
                    item_free(it);
                    return;
                }
                break;
            }
    }
    if (n->forming == NULL)
        n->forming = batch_new(n);
    batch_add_item(n->forming, it);
    if ((n->forming->n_items >= n->o.batch_max || vn_now_ms() < n->isolate_until) && can_start(n))
        flush_forming(n);
}

/* ---- the scheduler: due reminders and waiting deliveries --------------------- */

static const char SQL_CLAIM_REMINDERS[] =
    "WITH due AS (SELECT id FROM notify.reminders WHERE (state = 'scheduled' AND deliver_at <= "
    "now()) OR (state = 'firing' AND lease_until < now()) ORDER BY deliver_at LIMIT $3 "
    "FOR UPDATE SKIP LOCKED) "
    "UPDATE notify.reminders r SET state = 'firing', lease_owner = $1, lease_until = now() + "
    "$2::interval FROM due WHERE r.id = due.id "
    "RETURNING r.id, r.payload::text, (extract(epoch FROM r.deliver_at) * 1000)::bigint";

static const char SQL_CLAIM_ROWS[] =
    "WITH due AS (SELECT id FROM notify.deliveries WHERE state IN ('pending', 'retrying') AND "
    "next_attempt_at <= now() - CASE WHEN state = 'retrying' THEN $3::interval ELSE interval '0' "
    "END AND (claim_until IS NULL OR claim_until < now()) ORDER BY next_attempt_at LIMIT $4 "
    "FOR UPDATE SKIP LOCKED) "
    "UPDATE notify.deliveries d SET attempts = d.attempts + 1, claim_owner = $1, claim_until = "
    "now() + $2::interval FROM due WHERE d.id = due.id "
    "RETURNING d.id, d.event_id::text, d.user_id, d.channel, d.state, d.attempts, "
    "(SELECT e.payload::text FROM notify.events e WHERE e.id = d.event_id)";

static void on_sched_timer(uv_timer_t *t);

struct sched_run {
    struct ntf_notifier *n;
    struct batch *b;
    int full; /* a page came back full: look again at once */
};

static void sched_finish(struct sched_run *s)
{
    struct ntf_notifier *n = s->n;
    struct batch *b = s->b;
    int again = s->full && !n->stopped; /* more is due: look again at once */
    free(s);
    if (again)
        uv_timer_start(&n->sched_timer, on_sched_timer, 0, (uint64_t)n->o.poll_interval_ms);
    n->sched_busy = 0;
    if (b->n_items && !n->stopped) {
        batch_start(b);
    } else {
        /* never started: claims expire and another notifier takes them (this may free n) */
        n->busy++;
        batch_free(b);
    }
}

static void on_claim_rows(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct sched_run *s = ud;
    struct ntf_notifier *n = s->n;
    VN_UNUSED(c);
    if (err) {
        vn_warn("notifier", "scheduler: claiming due deliveries failed: %s", err);
        sched_finish(s);
        return;
    }
    int nt = PQntuples(res);
    s->full |= nt >= (int)n->o.batch_max;
    for (int i = 0; i < nt; i++) {
        const char *eid = val(res, i, 1), *payload = val(res, i, 6);
        struct item *it = NULL;
        for (size_t k = 0; k < s->b->n_items; k++)
            if (s->b->items[k]->preclaimed && strcmp(s->b->items[k]->ev.id, eid) == 0)
                it = s->b->items[k];
        if (it == NULL) {
            struct ntf_reject_info why;
            struct ntf_limits lim = {0, 0, 1};
            it = xcalloc(1, sizeof(*it));
            it->preclaimed = 1;
            it->body = xstrdup(payload ? payload : "");
            it->len = strlen(it->body);
            lim.max_bytes = it->len + 1;
            if (ntf_event_parse(it->body, it->len, &lim, &it->ev, &why) != 0) {
                /* cannot happen for rows we wrote; keep the id so the row can be failed */
                snprintf(it->ev.id, sizeof(it->ev.id), "%s", eid);
                vn_error("notifier", "stored event %s does not parse: %s", eid, why.msg);
            }
            batch_add_item(s->b, it);
        }
        int ch = ntf_channel_parse(val(res, i, 3));
        struct row *r = batch_add_row(s->b, it, NULL, ch < 0 ? NTF_CH_TELEGRAM : ch);
        r->ukey = xstrdup(val(res, i, 2));
        r->id = strtoll(val(res, i, 0), NULL, 10);
        snprintf(r->state, sizeof(r->state), "%s", val(res, i, 4));
        r->attempts = atoi(val(res, i, 5));
        r->claimed = 1;
        if (it->ev.root == NULL) {
            r->out = OUT_PERM;
            snprintf(r->err, sizeof(r->err), "the stored event does not parse");
        }
    }
    sched_finish(s);
}

static void on_claim_reminders(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct sched_run *s = ud;
    struct ntf_notifier *n = s->n;
    VN_UNUSED(c);
    if (err) {
        vn_warn("notifier", "scheduler: claiming due reminders failed: %s", err);
    } else {
        int nt = PQntuples(res);
        s->full |= nt >= (int)n->o.batch_max;
        for (int i = 0; i < nt; i++) {
            const char *id = val(res, i, 0);
            int64_t at = strtoll(val(res, i, 2), NULL, 10);
            char *env = ntf_reminder_envelope(val(res, i, 1), at);
            struct item *it = xcalloc(1, sizeof(*it));
            struct ntf_reject_info why;
            it->reminder_fire = xstrdup(id);
            if (env == NULL ||
                ntf_event_parse(env, strlen(env), &(struct ntf_limits){strlen(env) + 1, 0, 1},
                                &it->ev, &why) != 0) {
                vn_error("notifier", "reminder %s: stored payload is not a reminder; marked fired",
                         id);
                it->done = 1;
            }
            it->body = env ? env : xstrdup("{}");
            it->len = strlen(it->body);
            batch_add_item(s->b, it);
        }
    }
    const char *p[] = {n->instance, n->lease, n->grace, NULL};
    char limit[16];
    snprintf(limit, sizeof(limit), "%u", n->o.batch_max);
    p[3] = limit;
    if (pgc_query_prepared(n->o.pg, PREPARED(SQL_CLAIM_ROWS), 4, p, on_claim_rows, s) != 0)
        sched_finish(s);
}

static void on_sched_timer(uv_timer_t *t)
{
    struct ntf_notifier *n = t->data;
    if (n->stopped || n->sched_busy || !pgc_is_ready(n->o.pg))
        return;
    struct sched_run *s = xcalloc(1, sizeof(*s));
    char limit[16];
    s->n = n;
    s->b = batch_new(n);
    n->sched_busy = 1;
    snprintf(limit, sizeof(limit), "%u", n->o.batch_max);
    const char *p[] = {n->instance, n->lease, limit};
    if (pgc_query_prepared(n->o.pg, PREPARED(SQL_CLAIM_REMINDERS), 3, p, on_claim_reminders, s) !=
        0) {
        n->sched_busy = 0;
        free(s->b);
        free(s);
    }
}

/* ---- claims and leases outlive slow sends ------------------------------------ */

/*
 * A send may take longer than a claim lasts (a chat paced at 1/s by the
 * limiter, 429 waits, SMTP timeouts). Every third of NOTIFY_CLAIM_LEASE the
 * claims of rows still being sent, and the leases of reminders being fired,
 * are extended, so no other notifier (nor this one's scheduler) takes them.
 * A notifier that dies stops renewing, and its claims run out.
 */
static const char SQL_RENEW[] =
    "WITH a AS (UPDATE notify.deliveries SET claim_until = now() + $2::interval "
    "WHERE id = ANY ($3::bigint[]) AND claim_owner = $1 RETURNING 1), "
    "r AS (UPDATE notify.reminders SET lease_until = now() + $2::interval "
    "WHERE id = ANY ($4::text[]) AND lease_owner = $1 AND state = 'firing' RETURNING 1) "
    "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM r)";

static void on_renewed(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    VN_UNUSED(c);
    VN_UNUSED(res);
    VN_UNUSED(ud);
    if (err)
        vn_warn("notifier", "renewing claims failed (%s); they may run out during slow sends", err);
}

static void on_renew_timer(uv_timer_t *t)
{
    struct ntf_notifier *n = t->data;
    struct vn_buf rows = VN_BUF_INIT, rems = VN_BUF_INIT;
    for (struct batch *b = n->active; b; b = b->next) {
        for (size_t k = 0; k < b->n_rows; k++) {
            struct row *r = b->rows[k];
            if (r->claimed && r->id && r->state[0] && strcmp(r->state, "sent") != 0 &&
                strcmp(r->state, "failed") != 0 && r->out == OUT_NONE)
                vn_buf_printf(&rows, "%s%" PRId64, rows.len ? "," : "{", r->id);
        }
        for (size_t i = 0; i < b->n_items; i++)
            if (b->items[i]->reminder_fire)
                sql_text_array(&rems, b->items[i]->reminder_fire);
    }
    if (rows.len || rems.len) {
        vn_buf_puts(&rows, rows.len ? "}" : "{}");
        vn_buf_puts(&rems, rems.len ? "}" : "{}");
        const char *p[] = {n->instance, n->lease, rows.data, rems.data};
        pgc_query_prepared(n->o.pg_fast, PREPARED(SQL_RENEW), 4, p, on_renewed, NULL);
    }
    vn_buf_free(&rows);
    vn_buf_free(&rems);
}

/* ---- lifecycle ---------------------------------------------------------------- */

struct ntf_notifier *ntf_notifier_new(const struct ntf_notifier_opts *o)
{
    struct ntf_notifier *n = xcalloc(1, sizeof(*n));
    char host[64] = "host", rnd[9];
    n->o = *o;
    if (n->o.batch_max == 0)
        n->o.batch_max = 256;
    if (n->o.pg_fast == NULL)
        n->o.pg_fast = n->o.pg;
    if (n->o.claim_lease_ms <= 0)
        n->o.claim_lease_ms = 30000;
    if (n->o.poll_interval_ms <= 0)
        n->o.poll_interval_ms = 250;
    gethostname(host, sizeof(host) - 1);
    vn_random_hex(rnd, 4);
    snprintf(n->instance, sizeof(n->instance), "%s:%d:%s", host, (int)getpid(), rnd);
    snprintf(n->lease, sizeof(n->lease), "%lld milliseconds", (long long)n->o.claim_lease_ms);
    snprintf(n->grace, sizeof(n->grace), "%lld milliseconds", (long long)n->o.claim_lease_ms);
    for (int q = 0; q <= NTF_Q_COUNT; q++)
        ntf_queue_name(n->o.topo.prefix, q, n->queues[q], sizeof(n->queues[q]));
    n->available =
        (o->tg ? NTF_CH_BIT(NTF_CH_TELEGRAM) : 0) | (o->email ? NTF_CH_BIT(NTF_CH_EMAIL) : 0);
    n->fmt = tpl_fmt_cache_new();
    n->m_events =
        met_counter(o->metrics, "vestnik_notifier_events_total",
                    "Events by outcome: done, retry, dead, rejected, duplicate", "result");
    n->m_deliveries = met_counter(o->metrics, "vestnik_notifier_deliveries_total",
                                  "Send attempts by channel and result", "channel,result");
    n->m_dead = met_counter(o->metrics, "vestnik_notifier_dead_letters_total",
                            "Messages sent to the dead-letter queue, by reason", "reason");
    n->m_latency = met_histogram(o->metrics, "vestnik_notifier_batch_seconds",
                                 "Time from a batch's start to its settlement", NULL, NULL, 0);
    uv_check_init(o->loop, &n->flush);
    n->flush.data = n;
    uv_timer_init(o->loop, &n->sched_timer);
    n->sched_timer.data = n;
    uv_timer_init(o->loop, &n->renew_timer);
    n->renew_timer.data = n;
    return n;
}

const char *ntf_notifier_instance(const struct ntf_notifier *n)
{
    return n->instance;
}

int ntf_notifier_start(struct ntf_notifier *n)
{
    char list[3 * 260];
    snprintf(list, sizeof(list), "%s,%s,%s", n->queues[0], n->queues[1], n->queues[2]);
    int rc = mq_consume(n->o.mq, list, n->o.prefetch, on_message, n);
    if (rc != 0) {
        vn_error("notifier", "cannot consume %s: %s", list, vn_strerror(rc));
        return rc;
    }
    uv_check_start(&n->flush, on_check);
    uv_timer_start(&n->sched_timer, on_sched_timer, 0, (uint64_t)n->o.poll_interval_ms);
    uint64_t every = (uint64_t)n->o.claim_lease_ms / 3;
    uv_timer_start(&n->renew_timer, on_renew_timer, every, every);
    n->started = 1;
    vn_info("notifier", "consuming %s as %s (channels:%s%s)", list, n->instance,
            n->o.tg ? " telegram" : "", n->o.email ? " email" : "");
    return 0;
}

void ntf_notifier_stop(struct ntf_notifier *n)
{
    if (n == NULL || n->stopped)
        return;
    n->stopped = 1;
    uv_timer_stop(&n->sched_timer);
    uv_timer_stop(&n->renew_timer);
    if (n->started)
        mq_consume_pause(n->o.mq);
    flush_forming(n);
}

unsigned ntf_notifier_busy(const struct ntf_notifier *n)
{
    return n ? n->busy + (unsigned)n->sched_busy : 0;
}

static void free_now(struct ntf_notifier *n)
{
    for (size_t i = 0; i < n->n_tzs; i++) {
        free(n->tzs[i].name);
        fsm_tz_free(n->tzs[i].tz);
    }
    free(n->tzs);
    free(n->early);
    tpl_fmt_cache_free(n->fmt);
    free(n);
}

/* The handles are closed; the memory goes once no batch holds it. */
static void free_self(uv_handle_t *h)
{
    struct ntf_notifier *n = h->data;
    if (--n->closing > 0)
        return;
    if (n->busy == 0 && !n->sched_busy)
        free_now(n);
    else
        n->free_pending = 1;
}

void ntf_notifier_free(struct ntf_notifier *n)
{
    if (n == NULL)
        return;
    ntf_notifier_stop(n);
    n->closing = 3;
    uv_close((uv_handle_t *)&n->flush, free_self);
    uv_close((uv_handle_t *)&n->sched_timer, free_self);
    uv_close((uv_handle_t *)&n->renew_timer, free_self);
}
