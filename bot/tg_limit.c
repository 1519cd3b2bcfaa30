#include "tg_limit.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/redis.h"

void tg_limit_cfg_default(struct tg_limit_cfg *cfg)
{
    cfg->global_per_s = 30;
    cfg->global_burst = 1;
    cfg->chat_per_s = 1;
    cfg->chat_burst = 3;
    cfg->group_per_min = 20;
    cfg->group_burst = 3;
    cfg->margin = 0.02;
}

double tg_gcra_peek(double tat, double now_ms, double interval_ms, unsigned burst)
{
    double tau = (double)(burst ? burst - 1 : 0) * interval_ms;
    if (tat < now_ms)
        tat = now_ms;
    double wait = tat - tau - now_ms;
    /* Timers fire in whole milliseconds. Sending up to TG_GCRA_SLACK_MS early
     * costs nothing (tat advances from tat, not from now), while waking late
     * every time would lose a few percent of the rate. */
    return wait > TG_GCRA_SLACK_MS ? wait : 0;
}

double tg_gcra_take(double *tat, double now_ms, double interval_ms, unsigned burst)
{
    double wait = tg_gcra_peek(*tat, now_ms, interval_ms, burst);
    if (wait > 0)
        return wait;
    *tat = (*tat > now_ms ? *tat : now_ms) + interval_ms;
    return 0;
}

void tg_limit_bucket(const struct tg_limit_cfg *cfg, int64_t chat_id, double *interval_ms,
                     unsigned *burst)
{
    double scale = 1.0 / (1.0 - (cfg->margin > 0 && cfg->margin < 0.5 ? cfg->margin : 0));
    if (chat_id == 0) {
        *interval_ms = 1000.0 / cfg->global_per_s * scale;
        *burst = cfg->global_burst ? cfg->global_burst : 1;
    } else if (chat_id < 0) {
        *interval_ms = 60000.0 / cfg->group_per_min * scale;
        *burst = cfg->group_burst ? cfg->group_burst : 1;
    } else {
        *interval_ms = 1000.0 / cfg->chat_per_s * scale;
        *burst = cfg->chat_burst ? cfg->chat_burst : 1;
    }
}

/*
 * The acquire script. Mirrors tg_gcra_take for two buckets at once and honours
 * pause keys. Returns {1} when granted, else {0, wait_ms, reason} with reason
 * 1 = global bucket, 2 = chat bucket, 3 = global pause, 4 = chat pause.
 * KEYS: global tat, chat tat, global pause, chat pause.
 * ARGV: global interval, global tau, chat interval (0 = no chat), chat tau.
 */
static const char acquire_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"
    "local gp = tonumber(redis.call('GET', KEYS[3]) or '0')\n"
    "if gp > now then return {0, math.ceil(gp - now), 3} end\n"
    "local cp = tonumber(redis.call('GET', KEYS[4]) or '0')\n"
    "if cp > now then return {0, math.ceil(cp - now), 4} end\n"
    "local Tg, taug = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local Tc, tauc = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local tg = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)\n"
    "if tg - taug > now + 1 then return {0, math.floor(tg - taug - now), 1} end\n"
    "local tc = now\n"
    "if Tc > 0 then\n"
    "  tc = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now)\n"
    "  if tc - tauc > now + 1 then return {0, math.floor(tc - tauc - now), 2} end\n"
    "end\n"
    "redis.call('SET', KEYS[1], string.format('%.3f', tg + Tg), 'PX',\n"
    "           math.ceil(tg + Tg - now) + 1000)\n"
    "if Tc > 0 then\n"
    "  redis.call('SET', KEYS[2], string.format('%.3f', tc + Tc), 'PX',\n"
    "             math.ceil(tc + Tc - now) + 1000)\n"
    "end\n"
    "return {1}\n";

/* Pause a bucket for ARGV[1] ms from Redis's now (never shortens a pause). */
static const char pause_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"
    "local ms = tonumber(ARGV[1])\n"
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if cur >= now + ms then return 0 end\n"
    "redis.call('SET', KEYS[1], string.format('%.3f', now + ms), 'PX', ms)\n"
    "return 1\n";

enum { R_GLOBAL = 1, R_CHAT = 2, R_GLOBAL_PAUSE = 3, R_CHAT_PAUSE = 4 };

struct req {
    struct req *prev, *next;
    int64_t chat_id;
    tg_limit_cb cb;
    void *ud;
    int inflight;  /* its script is running */
    int cancelled; /* closed while in flight: freed when the reply comes */
    struct tg_limiter *l;
};

/* Scripts in flight at once. One per chat, so each chat's order holds; many
 * chats at once, so one round trip per send does not cap the rate. */
#define MAX_INFLIGHT 64

/* Per-chat state in process memory: when to try again (always), and the
 * bucket itself when Redis is unreachable. */
struct chat_slot {
    int64_t chat_id; /* 0 = empty slot */
    double not_before;
    double tat;
    double pause_until;
    int busy; /* a request of this chat is in flight */
};

struct tg_limiter {
    uv_loop_t *loop;
    struct rds_client *redis;
    struct tg_limit_cfg cfg;
    char *prefix; /* "vn:tg:{<bot>}" — one hash slot for every key */
    struct req *head, *tail;
    unsigned pending;
    unsigned inflight; /* scripts in flight */
    int pumping;       /* pump() is running: a nested call only asks for another pass */
    int pump_again;
    int local_mode; /* Redis unreachable: buckets in memory */
    int closing;
    int timer_closed;
    double global_not_before;
    double local_global_tat;
    double local_global_pause;
    struct chat_slot *slots;
    size_t nslots, used;
    uv_timer_t timer;
};

static uint64_t hash64(int64_t v)
{
    uint64_t x = (uint64_t)v;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static struct chat_slot *slot_find(struct tg_limiter *l, int64_t chat, int create);

/* Drop slots that carry no pending state, and resize. */
static void slots_rehash(struct tg_limiter *l, size_t want)
{
    struct chat_slot *old = l->slots;
    size_t n = l->nslots;
    double now = (double)vn_now_ms();
    l->nslots = want;
    l->slots = xcalloc(want, sizeof(*l->slots));
    l->used = 0;
    for (size_t i = 0; i < n; i++) {
        struct chat_slot *s = &old[i];
        if (s->chat_id == 0)
            continue;
        if (s->not_before <= now && s->tat <= now && s->pause_until <= now && !s->busy)
            continue; /* nothing to remember */
        *slot_find(l, s->chat_id, 1) = *s;
    }
    free(old);
}

static struct chat_slot *slot_find(struct tg_limiter *l, int64_t chat, int create)
{
    if (create && (l->used + 1) * 10 > l->nslots * 7) {
        slots_rehash(l, l->nslots ? l->nslots : 64);
        if ((l->used + 1) * 10 > l->nslots * 7)
            slots_rehash(l, l->nslots * 2);
    }
    if (l->nslots == 0)
        return NULL;
    size_t mask = l->nslots - 1;
    for (size_t i = hash64(chat) & mask;; i = (i + 1) & mask) {
        struct chat_slot *s = &l->slots[i];
        if (s->chat_id == chat)
            return s;
        if (s->chat_id == 0) {
            if (!create)
                return NULL;
            memset(s, 0, sizeof(*s));
            s->chat_id = chat;
            l->used++;
            return s;
        }
    }
}

struct tg_limiter *tg_limiter_new(uv_loop_t *loop, struct rds_client *redis, const char *bot_id,
                                  const struct tg_limit_cfg *cfg)
{
    struct tg_limiter *l = xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->redis = redis;
    if (cfg)
        l->cfg = *cfg;
    else
        tg_limit_cfg_default(&l->cfg);
    l->prefix = xasprintf("vn:tg:{%s}", bot_id && *bot_id ? bot_id : "bot");
    l->local_mode = redis == NULL;
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    return l;
}

static void pump(struct tg_limiter *l);

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

static void unlink_req(struct tg_limiter *l, struct req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    l->pending--;
}

static void grant(struct tg_limiter *l, struct req *r)
{
    unlink_req(l, r);
    r->cb(0, r->ud);
    free(r);
}

/* Apply a denial: remember when to try this chat (or everything) again. */
static void deny(struct tg_limiter *l, struct req *r, double wait_ms, int reason)
{
    double until = (double)vn_now_ms() + wait_ms;
    if (reason == R_GLOBAL || reason == R_GLOBAL_PAUSE) {
        l->global_not_before = until;
    } else {
        struct chat_slot *s = slot_find(l, r->chat_id, 1);
        s->not_before = until;
    }
}

/* Take from the in-memory buckets (Redis unreachable). */
static void take_local(struct tg_limiter *l, struct req *r)
{
    double now = (double)vn_now_ms(), gi, ci;
    unsigned gb, cb;
    tg_limit_bucket(&l->cfg, 0, &gi, &gb);
    tg_limit_bucket(&l->cfg, r->chat_id, &ci, &cb);
    if (l->local_global_pause > now) {
        deny(l, r, l->local_global_pause - now, R_GLOBAL_PAUSE);
        return;
    }
    struct chat_slot *s = r->chat_id ? slot_find(l, r->chat_id, 1) : NULL;
    if (s && s->pause_until > now) {
        deny(l, r, s->pause_until - now, R_CHAT_PAUSE);
        return;
    }
    double w = tg_gcra_peek(l->local_global_tat, now, gi, gb);
    if (w > 0) {
        deny(l, r, w, R_GLOBAL);
        return;
    }
    if (s) {
        w = tg_gcra_peek(s->tat, now, ci, cb);
        if (w > 0) {
            deny(l, r, w, R_CHAT);
            return;
        }
        tg_gcra_take(&s->tat, now, ci, cb);
    }
    tg_gcra_take(&l->local_global_tat, now, gi, gb);
    grant(l, r);
}

static void set_local_mode(struct tg_limiter *l, int on, const char *why)
{
    if (l->local_mode == on)
        return;
    l->local_mode = on;
    if (on)
        vn_warn("tg", "rate limiter: Redis unavailable (%s); limiting in this process only", why);
    else
        vn_info("tg", "rate limiter: Redis back; limits shared across processes again");
}

static void limiter_free(struct tg_limiter *l)
{
    free(l->slots);
    free(l->prefix);
    free(l);
}

static void chat_busy(struct tg_limiter *l, int64_t chat, int busy)
{
    if (chat == 0)
        return;
    struct chat_slot *s = slot_find(l, chat, busy);
    if (s)
        s->busy = busy;
}

static void on_acquire_reply(struct rds_client *c, redisReply *reply, void *ud)
{
    struct req *r = ud;
    struct tg_limiter *l = r->l;
    (void)c;
    l->inflight--;
    r->inflight = 0;
    if (r->cancelled) {
        /* close() already answered r; its memory waited for this reply. */
        free(r);
        if (l->closing && l->timer_closed && l->inflight == 0)
            limiter_free(l);
        return;
    }
    chat_busy(l, r->chat_id, 0);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        set_local_mode(l, 1, reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no answer");
        take_local(l, r);
    } else if (reply->element[0]->integer == 1) {
        set_local_mode(l, 0, NULL);
        grant(l, r);
    } else if (reply->elements >= 3) {
        set_local_mode(l, 0, NULL);
        deny(l, r, (double)reply->element[1]->integer, (int)reply->element[2]->integer);
    }
    pump(l);
}

/* Issue the script for r. Returns 0 when sent. */
static int take_redis(struct tg_limiter *l, struct req *r)
{
    char kg[96], kc[128], kgp[96], kcp[128], a1[32], a2[32], a3[32], a4[32];
    double gi, ci = 0;
    unsigned gb, cb = 1;
    tg_limit_bucket(&l->cfg, 0, &gi, &gb);
    if (r->chat_id)
        tg_limit_bucket(&l->cfg, r->chat_id, &ci, &cb);
    snprintf(kg, sizeof(kg), "%s:g", l->prefix);
    snprintf(kgp, sizeof(kgp), "%s:gp", l->prefix);
    snprintf(kc, sizeof(kc), "%s:c:%lld", l->prefix, (long long)r->chat_id);
    snprintf(kcp, sizeof(kcp), "%s:cp:%lld", l->prefix, (long long)r->chat_id);
    snprintf(a1, sizeof(a1), "%.3f", gi);
    snprintf(a2, sizeof(a2), "%.3f", (double)(gb - 1) * gi);
    snprintf(a3, sizeof(a3), "%.3f", ci);
    snprintf(a4, sizeof(a4), "%.3f", (double)(cb - 1) * ci);
    const char *argv[] = {"EVAL", acquire_lua, "4", kg, kc, kgp, kcp, a1, a2, a3, a4};
    r->l = l;
    if (rds_command_argv(l->redis, on_acquire_reply, r, (int)VN_ARRAY_LEN(argv), argv, NULL) != 0)
        return -1;
    r->inflight = 1;
    l->inflight++;
    chat_busy(l, r->chat_id, 1);
    return 0;
}

/*
 * Serve the queue in FIFO order: every request whose chat may be tried now
 * and has nothing in flight gets an acquire, up to MAX_INFLIGHT at once;
 * requests of chats that must wait stay queued in order (no head-of-line
 * blocking). A global wait stops everything until it passes.
 */
static void pump_once(struct tg_limiter *l);

static void pump(struct tg_limiter *l)
{
    /* A grant's callback may queue or penalize (and so pump) again; run such
     * passes after this one instead of inside it. */
    if (l->pumping) {
        l->pump_again = 1;
        return;
    }
    l->pumping = 1;
    do {
        l->pump_again = 0;
        pump_once(l);
    } while (l->pump_again && !l->closing);
    l->pumping = 0;
}

static void pump_once(struct tg_limiter *l)
{
    if (l->closing)
        return;
    double now = (double)vn_now_ms();
    if (l->global_not_before > now) {
        if (!uv_is_active((uv_handle_t *)&l->timer) || l->inflight == 0)
            uv_timer_start(&l->timer, on_timer, (uint64_t)(l->global_not_before - now), 0);
        return;
    }
    struct req *r = l->head, *next = NULL;
    for (; r && l->inflight < MAX_INFLIGHT && !l->closing; r = next) {
        next = r->next;
        if (r->inflight)
            continue;
        struct chat_slot *s = r->chat_id ? slot_find(l, r->chat_id, 0) : NULL;
        if (s && s->busy)
            continue; /* one at a time per chat keeps the chat's order */
        if (s && s->not_before > now)
            continue;
        if (l->global_not_before > now)
            break;
        if (l->redis && rds_is_ready(l->redis) && take_redis(l, r) == 0)
            continue; /* on_acquire_reply grants or defers it */
        if (l->redis)
            set_local_mode(l, 1, "not connected");
        /* take_local may grant (and free) r; next was saved above. A grant's
         * callback may queue more requests: they land at the tail, still
         * reachable through next. */
        take_local(l, r);
        now = (double)vn_now_ms();
    }
    if (l->inflight > 0 || l->head == NULL || l->closing)
        return; /* a reply pumps again */
    /* Nothing in flight but work waits: wake when the first wait ends. Denials
     * made during this pass count too, so look at the queue again. */
    now = (double)vn_now_ms();
    double wake = l->global_not_before > now ? l->global_not_before : 0;
    if (wake == 0) {
        for (r = l->head; r; r = r->next) {
            struct chat_slot *s = r->chat_id ? slot_find(l, r->chat_id, 0) : NULL;
            double t = s && s->not_before > now ? s->not_before : now;
            if (wake == 0 || t < wake)
                wake = t;
        }
    }
    uv_timer_start(&l->timer, on_timer, wake > now ? (uint64_t)(wake - now) : 0, 0);
}

void tg_limiter_acquire(struct tg_limiter *l, int64_t chat_id, tg_limit_cb cb, void *ud)
{
    if (l->closing) {
        cb(VN_ESTATE, ud);
        return;
    }
    struct req *r = xcalloc(1, sizeof(*r));
    r->chat_id = chat_id;
    r->cb = cb;
    r->ud = ud;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->pending++;
    pump(l);
}

static void on_pause_reply(struct rds_client *c, redisReply *reply, void *ud)
{
    (void)c;
    (void)reply;
    (void)ud;
}

void tg_limiter_penalize(struct tg_limiter *l, int64_t chat_id, int retry_after_s)
{
    if (retry_after_s <= 0)
        retry_after_s = 1;
    double ms = retry_after_s * 1000.0;
    double until = (double)vn_now_ms() + ms;
    /* Locally right away, so this process stops at once ... */
    if (chat_id == 0) {
        l->global_not_before = until;
        if (l->local_global_pause < until)
            l->local_global_pause = until;
    } else {
        struct chat_slot *s = slot_find(l, chat_id, 1);
        s->not_before = until;
        if (s->pause_until < until)
            s->pause_until = until;
    }
    /* ... and in Redis, so the other processes do too. */
    if (l->redis && rds_is_ready(l->redis)) {
        char key[128], arg[32];
        if (chat_id == 0)
            snprintf(key, sizeof(key), "%s:gp", l->prefix);
        else
            snprintf(key, sizeof(key), "%s:cp:%lld", l->prefix, (long long)chat_id);
        snprintf(arg, sizeof(arg), "%d", retry_after_s * 1000);
        const char *argv[] = {"EVAL", pause_lua, "1", key, arg};
        rds_command_argv(l->redis, on_pause_reply, l, 5, argv, NULL);
    }
}

unsigned tg_limiter_pending(const struct tg_limiter *l)
{
    return l->pending;
}

static void limiter_closed(uv_handle_t *h)
{
    struct tg_limiter *l = h->data;
    l->timer_closed = 1;
    if (l->inflight == 0)
        limiter_free(l);
}

void tg_limiter_close(struct tg_limiter *l)
{
    if (l == NULL || l->closing)
        return;
    l->closing = 1;
    while (l->head) {
        struct req *r = l->head;
        unlink_req(l, r);
        r->cb(VN_ESTATE, r->ud);
        if (r->inflight)
            r->cancelled = 1; /* freed when its reply arrives */
        else
            free(r);
    }
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, limiter_closed);
}
