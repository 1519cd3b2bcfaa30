#include "fsm_store.h"

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/redis.h"

#define INDEX_KEY "vn:outbox:index"

struct fsm_store {
    struct rds_client *redis;
    struct fsm_store_opts opt;
    char *owner;
};

/*
 * KEYS: conv, outbox, dedup, lease.
 * ARGV: expect_version, flow ('' = ended), state, data, now_ms, entered_at,
 *       effects ('' = none), ttl_s, dedup_ttl_s, update_id ('' = none), owner, lease_ms,
 *       timeout_at.
 * Returns {1, new_version, got_lease, outbox_len} | {-1} duplicate | {-2, version} conflict.
 */
static const char commit_lua[] =
    "if ARGV[10] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then return {-1} end\n"
    "local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')\n"
    "if v ~= tonumber(ARGV[1]) then return {-2, v} end\n"
    "local nv = v + 1\n"
    "redis.call('HSET', KEYS[1], 'flow', ARGV[2], 'state', ARGV[3], 'data', ARGV[4],\n"
    "           'version', nv, 'updated_at', ARGV[5], 'entered_at', ARGV[6],\n"
    "           'timeout_at', ARGV[13])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[8])\n"
    "local n = redis.call('LLEN', KEYS[2])\n"
    "if ARGV[7] ~= '' then\n"
    "  n = redis.call('RPUSH', KEYS[2], ARGV[7])\n"
    "  redis.call('EXPIRE', KEYS[2], ARGV[8])\n"
    "end\n"
    "if ARGV[10] ~= '' then redis.call('SET', KEYS[3], '1', 'EX', ARGV[9]) end\n"
    "local lease = 0\n"
    "if n > 0 then\n"
    "  if redis.call('SET', KEYS[4], ARGV[11], 'NX', 'PX', ARGV[12]) then lease = 1\n"
    "  elseif redis.call('GET', KEYS[4]) == ARGV[11] then\n"
    "    redis.call('PEXPIRE', KEYS[4], ARGV[12]); lease = 1\n"
    "  end\n"
    "end\n"
    "return {1, nv, lease, n}\n";

/* KEYS: lease, outbox. ARGV: owner, lease_ms. Renews the lease: a batch may
 * take a while (retries, the per-chat rate). */
static const char head_lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end\n"
                               "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                               "return redis.call('LINDEX', KEYS[2], 0)\n";

/* KEYS: lease, outbox. ARGV: owner, lease_ms. 1 renewed, 0 not ours. */
static const char touch_lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
                                "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                "return 1\n";

/* KEYS: lease, outbox. ARGV: owner, lease_ms. Returns batches left or -1. */
static const char pop_lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n"
                              "redis.call('LPOP', KEYS[2])\n"
                              "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                              "return redis.call('LLEN', KEYS[2])\n";

/* KEYS: lease, outbox. ARGV: owner, lease_ms. 1 released, 0 batches remain, -1 not ours. */
static const char release_lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n"
                                  "if redis.call('LLEN', KEYS[2]) > 0 then\n"
                                  "  redis.call('PEXPIRE', KEYS[1], ARGV[2]); return 0\n"
                                  "end\n"
                                  "redis.call('DEL', KEYS[1])\n"
                                  "return 1\n";

/* KEYS: lease, outbox. ARGV: owner, lease_ms. 1 taken (or already ours) and
 * work waits, 2 nothing to do, 0 held by someone else. */
static const char take_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
    "  if redis.call('LLEN', KEYS[2]) == 0 then redis.call('DEL', KEYS[1]); return 2 end\n"
    "  return 1\n"
    "end\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  if redis.call('LLEN', KEYS[2]) == 0 then return 2 end\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* KEYS: conv. ARGV: expected version, new data. 1 written, 0 moved on, -1 gone. */
static const char setdata_lua[] = "local v = redis.call('HGET', KEYS[1], 'version')\n"
                                  "if not v then return -1 end\n"
                                  "if v ~= ARGV[1] then return 0 end\n"
                                  "redis.call('HSET', KEYS[1], 'data', ARGV[2])\n"
                                  "redis.call('HINCRBY', KEYS[1], 'version', 1)\n"
                                  "return 1\n";

void fsm_conv_key_name(struct fsm_conv_key k, char *buf, size_t len)
{
    snprintf(buf, len, "vn:conv:{%" PRId64 ":%" PRId64 "}", k.chat_id, k.user_id);
}

struct keys {
    char conv[96], outbox[112], lease[112], member[64];
};

static void make_keys(struct fsm_conv_key k, struct keys *ks)
{
    fsm_conv_key_name(k, ks->conv, sizeof(ks->conv));
    snprintf(ks->outbox, sizeof(ks->outbox), "%s:outbox", ks->conv);
    snprintf(ks->lease, sizeof(ks->lease), "%s:lease", ks->conv);
    snprintf(ks->member, sizeof(ks->member), "%" PRId64 ":%" PRId64, k.chat_id, k.user_id);
}

void fsm_stored_free(struct fsm_stored *s)
{
    if (s == NULL)
        return;
    free(s->flow);
    free(s->state);
    free(s->data_json);
    memset(s, 0, sizeof(*s));
}

struct fsm_store *fsm_store_new(struct rds_client *redis, const struct fsm_store_opts *opt)
{
    struct fsm_store *st = xcalloc(1, sizeof(*st));
    st->redis = redis;
    if (opt)
        st->opt = *opt;
    if (st->opt.ttl_s <= 0)
        st->opt.ttl_s = 30 * 24 * 3600;
    if (st->opt.dedup_ttl_s <= 0)
        st->opt.dedup_ttl_s = 24 * 3600;
    if (st->opt.lease_ms <= 0)
        st->opt.lease_ms = 30000;
    if (opt && opt->owner && *opt->owner) {
        st->owner = xstrdup(opt->owner);
    } else {
        char hex[17];
        vn_random_hex(hex, 8);
        st->owner = xstrdup(hex);
    }
    st->opt.owner = st->owner;
    return st;
}

void fsm_store_free(struct fsm_store *st)
{
    if (st == NULL)
        return;
    free(st->owner);
    free(st);
}

const char *fsm_store_owner(const struct fsm_store *st)
{
    return st->owner;
}

/* ---- load --------------------------------------------------------------- */

struct load_call {
    fsm_load_cb cb;
    void *ud;
};

static char *dup_elem(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0)
        return NULL;
    return xstrndup(r->str, r->len);
}

static int64_t int_elem(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        return 0;
    return strtoll(r->str, NULL, 10);
}

static void on_load(struct rds_client *c, redisReply *reply, void *ud)
{
    struct load_call *lc = ud;
    struct fsm_stored s;
    (void)c;
    memset(&s, 0, sizeof(s));
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 7) {
        lc->cb(VN_EDOWN, NULL, lc->ud);
        free(lc);
        return;
    }
    s.flow = dup_elem(reply->element[0]);
    s.state = dup_elem(reply->element[1]);
    s.data_json = dup_elem(reply->element[2]);
    if (s.data_json == NULL)
        s.data_json = xstrdup("{}");
    s.version = int_elem(reply->element[3]);
    s.updated_at = int_elem(reply->element[4]);
    s.entered_at = int_elem(reply->element[5]);
    s.timeout_at = int_elem(reply->element[6]);
    lc->cb(0, &s, lc->ud);
    fsm_stored_free(&s);
    free(lc);
}

int fsm_store_load(struct fsm_store *st, struct fsm_conv_key k, fsm_load_cb cb, void *ud)
{
    struct keys ks;
    make_keys(k, &ks);
    struct load_call *lc = xmalloc(sizeof(*lc));
    lc->cb = cb;
    lc->ud = ud;
    int rc = rds_command(st->redis, on_load, lc,
                         "HMGET %s flow state data version updated_at "
                         "entered_at timeout_at",
                         ks.conv);
    if (rc != 0)
        free(lc);
    return rc;
}

/* ---- commit --------------------------------------------------------------- */

struct commit_call {
    fsm_commit_cb cb;
    void *ud;
};

static void on_commit(struct rds_client *c, redisReply *reply, void *ud)
{
    struct commit_call *cc = ud;
    struct fsm_commit_result r;
    (void)c;
    memset(&r, 0, sizeof(r));
    if (reply == NULL) {
        r.status = FSM_COMMIT_ERROR;
        r.error = "connection to Redis lost";
    } else if (reply->type == REDIS_REPLY_ERROR) {
        r.status = FSM_COMMIT_ERROR;
        r.error = reply->str;
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        r.status = FSM_COMMIT_ERROR;
        r.error = "unexpected reply to the commit script";
    } else if (reply->element[0]->integer == -1) {
        r.status = FSM_COMMIT_DUPLICATE;
    } else if (reply->element[0]->integer == -2) {
        r.status = FSM_COMMIT_CONFLICT;
        r.version = reply->elements > 1 ? reply->element[1]->integer : 0;
    } else if (reply->elements == 4) {
        r.status = FSM_COMMIT_OK;
        r.version = reply->element[1]->integer;
        r.got_lease = reply->element[2]->integer == 1;
        r.outbox_len = reply->element[3]->integer;
    } else {
        r.status = FSM_COMMIT_ERROR;
        r.error = "unexpected reply to the commit script";
    }
    cc->cb(&r, cc->ud);
    free(cc);
}

static void on_ignore(struct rds_client *c, redisReply *reply, void *ud)
{
    (void)c;
    (void)reply;
    (void)ud;
}

int fsm_store_commit(struct fsm_store *st, struct fsm_conv_key k, const struct fsm_commit *cm,
                     fsm_commit_cb cb, void *ud)
{
    struct keys ks;
    char dedup[160], ver[24], now[24], entered[24], ttl[24], dttl[24], upd[24], lease_ms[24];
    char score[24], tmo[24];
    make_keys(k, &ks);
    snprintf(tmo, sizeof(tmo), "%" PRId64, cm->timeout_at);
    snprintf(dedup, sizeof(dedup), "%s:u:%" PRId64, ks.conv, cm->update_id);
    snprintf(ver, sizeof(ver), "%" PRId64, cm->expect_version);
    snprintf(now, sizeof(now), "%" PRIu64, vn_wall_ms());
    snprintf(entered, sizeof(entered), "%" PRId64, cm->entered_at);
    snprintf(ttl, sizeof(ttl), "%" PRId64, st->opt.ttl_s);
    snprintf(dttl, sizeof(dttl), "%" PRId64, st->opt.dedup_ttl_s);
    snprintf(lease_ms, sizeof(lease_ms), "%" PRId64, st->opt.lease_ms);
    if (cm->update_id >= 0)
        snprintf(upd, sizeof(upd), "%" PRId64, cm->update_id);
    else
        upd[0] = '\0';
    int has_effects = cm->effects_json && strcmp(cm->effects_json, "[]") != 0 && *cm->effects_json;

    /* Index first, so the index is always a superset of non-empty outboxes. */
    if (has_effects) {
        snprintf(score, sizeof(score), "%" PRIu64, vn_wall_ms());
        const char *zargv[] = {"ZADD", INDEX_KEY, "NX", score, ks.member};
        if (rds_command_argv(st->redis, on_ignore, NULL, 5, zargv, NULL) != 0)
            return VN_EDOWN;
    }
    const char *argv[] = {"EVAL",
                          commit_lua,
                          "4",
                          ks.conv,
                          ks.outbox,
                          dedup,
                          ks.lease,
                          ver,
                          cm->flow ? cm->flow : "",
                          cm->flow && cm->state ? cm->state : "",
                          cm->data_json ? cm->data_json : "{}",
                          now,
                          entered,
                          has_effects ? cm->effects_json : "",
                          ttl,
                          dttl,
                          upd,
                          st->owner,
                          lease_ms,
                          tmo};
    struct commit_call *cc = xmalloc(sizeof(*cc));
    cc->cb = cb;
    cc->ud = ud;
    int rc = rds_command_argv(st->redis, on_commit, cc, (int)VN_ARRAY_LEN(argv), argv, NULL);
    if (rc != 0)
        free(cc);
    return rc;
}

/* ---- outbox ---------------------------------------------------------------- */

struct batch_call {
    fsm_batch_cb cb;
    void *ud;
};

static void on_head(struct rds_client *c, redisReply *reply, void *ud)
{
    struct batch_call *bc = ud;
    (void)c;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        bc->cb(VN_EDOWN, NULL, bc->ud);
    else if (reply->type == REDIS_REPLY_STRING)
        bc->cb(0, reply->str, bc->ud);
    else
        bc->cb(0, NULL, bc->ud);
    free(bc);
}

int fsm_store_outbox_head(struct fsm_store *st, struct fsm_conv_key k, fsm_batch_cb cb, void *ud)
{
    struct keys ks;
    make_keys(k, &ks);
    char lease_ms[24];
    snprintf(lease_ms, sizeof(lease_ms), "%" PRId64, st->opt.lease_ms);
    const char *argv[] = {"EVAL", head_lua, "2", ks.lease, ks.outbox, st->owner, lease_ms};
    struct batch_call *bc = xmalloc(sizeof(*bc));
    bc->cb = cb;
    bc->ud = ud;
    int rc = rds_command_argv(st->redis, on_head, bc, (int)VN_ARRAY_LEN(argv), argv, NULL);
    if (rc != 0)
        free(bc);
    return rc;
}

struct int_call {
    struct fsm_store *st;
    struct fsm_conv_key k;
    int64_t empty; /* the script's answer for "outbox empty": drop the index entry */
    fsm_done_cb cb;
    void *ud;
};

static void on_int(struct rds_client *c, redisReply *reply, void *ud)
{
    struct int_call *ic = ud;
    (void)c;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (ic->cb)
            ic->cb(VN_EDOWN, 0, ic->ud);
        free(ic);
        return;
    }
    if (ic->empty && reply->integer == ic->empty) {
        struct keys ks;
        make_keys(ic->k, &ks);
        const char *zargv[] = {"ZREM", INDEX_KEY, ks.member};
        rds_command_argv(ic->st->redis, on_ignore, NULL, 3, zargv, NULL);
    }
    if (ic->cb)
        ic->cb(0, reply->integer, ic->ud);
    free(ic);
}

/* Run a lease/outbox script; empty (non-zero) is its answer meaning "the
 * outbox is empty", after which the sweeper's index entry is dropped. */
static int run_int(struct fsm_store *st, struct fsm_conv_key k, const char *script, int64_t empty,
                   fsm_done_cb cb, void *ud)
{
    struct keys ks;
    char lease_ms[24];
    make_keys(k, &ks);
    snprintf(lease_ms, sizeof(lease_ms), "%" PRId64, st->opt.lease_ms);
    const char *argv[] = {"EVAL", script, "2", ks.lease, ks.outbox, st->owner, lease_ms};
    struct int_call *ic = xmalloc(sizeof(*ic));
    ic->st = st;
    ic->k = k;
    ic->empty = empty;
    ic->cb = cb;
    ic->ud = ud;
    int rc = rds_command_argv(st->redis, on_int, ic, (int)VN_ARRAY_LEN(argv), argv, NULL);
    if (rc != 0)
        free(ic);
    return rc;
}

int fsm_store_outbox_pop(struct fsm_store *st, struct fsm_conv_key k, fsm_done_cb cb, void *ud)
{
    return run_int(st, k, pop_lua, 0, cb, ud);
}

int fsm_store_lease_release(struct fsm_store *st, struct fsm_conv_key k, fsm_done_cb cb, void *ud)
{
    return run_int(st, k, release_lua, 1, cb, ud);
}

int fsm_store_lease_touch(struct fsm_store *st, struct fsm_conv_key k)
{
    return run_int(st, k, touch_lua, 0, NULL, NULL);
}

int fsm_store_lease_take(struct fsm_store *st, struct fsm_conv_key k, fsm_done_cb cb, void *ud)
{
    return run_int(st, k, take_lua, 2, cb, ud);
}

/* ---- sweep ----------------------------------------------------------------- */

struct sweep_call {
    fsm_key_cb cb;
    void *ud;
};

static void on_sweep(struct rds_client *c, redisReply *reply, void *ud)
{
    struct sweep_call *sc = ud;
    struct fsm_conv_key k = {0, 0};
    (void)c;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            long long chat = 0, user = 0;
            if (e->type != REDIS_REPLY_STRING || sscanf(e->str, "%lld:%lld", &chat, &user) != 2)
                continue;
            k.chat_id = chat;
            k.user_id = user;
            sc->cb(0, k, sc->ud);
        }
    }
    k.chat_id = k.user_id = 0;
    sc->cb(reply ? VN_ENOENT : VN_EDOWN, k, sc->ud);
    free(sc);
}

int fsm_store_sweep(struct fsm_store *st, int64_t older_than_ms, int max, fsm_key_cb cb, void *ud)
{
    char upto[24], lim[16];
    snprintf(upto, sizeof(upto), "%" PRIu64, vn_wall_ms() - (uint64_t)older_than_ms);
    snprintf(lim, sizeof(lim), "%d", max);
    const char *argv[] = {"ZRANGEBYSCORE", INDEX_KEY, "-inf", upto, "LIMIT", "0", lim};
    struct sweep_call *sc = xmalloc(sizeof(*sc));
    sc->cb = cb;
    sc->ud = ud;
    int rc = rds_command_argv(st->redis, on_sweep, sc, (int)VN_ARRAY_LEN(argv), argv, NULL);
    if (rc != 0)
        free(sc);
    return rc;
}

/*
 * remember = read, change one field with json-c (which keeps 64-bit integers
 * exact, unlike Redis's Lua cjson), write back if the version is unchanged;
 * a concurrent step makes it read again (a few times at most).
 */
struct remember_call {
    struct fsm_store *st;
    struct fsm_conv_key k;
    char *field;
    int64_t value;
    int tries;
    fsm_done_cb cb;
    void *ud;
};

static void remember_done(struct remember_call *rc, int status, int64_t value)
{
    if (rc->cb)
        rc->cb(status, value, rc->ud);
    free(rc->field);
    free(rc);
}

static void remember_load(struct remember_call *rc);

static void on_setdata(struct rds_client *c, redisReply *reply, void *ud)
{
    struct remember_call *rc = ud;
    (void)c;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        remember_done(rc, VN_EDOWN, 0);
        return;
    }
    if (reply->integer == 0 && ++rc->tries < 5) {
        remember_load(rc);
        return;
    }
    remember_done(rc, 0, reply->integer == 1);
}

static void on_remember_loaded(int status, struct fsm_stored *s, void *ud)
{
    struct remember_call *rc = ud;
    if (status != 0 || s == NULL) {
        remember_done(rc, VN_EDOWN, 0);
        return;
    }
    if (s->version == 0) {
        remember_done(rc, 0, 0);
        return;
    }
    json_object *d = json_tokener_parse(s->data_json);
    if (d == NULL || !json_object_is_type(d, json_type_object)) {
        json_object_put(d);
        d = json_object_new_object();
    }
    json_object_object_add(d, rc->field, json_object_new_int64(rc->value));
    struct keys ks;
    char ver[24];
    make_keys(rc->k, &ks);
    snprintf(ver, sizeof(ver), "%" PRId64, s->version);
    const char *argv[] = {"EVAL", setdata_lua,
                          "1",    ks.conv,
                          ver,    json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN)};
    int r = rds_command_argv(rc->st->redis, on_setdata, rc, (int)VN_ARRAY_LEN(argv), argv, NULL);
    json_object_put(d);
    if (r != 0)
        remember_done(rc, VN_EDOWN, 0);
}

static void remember_load(struct remember_call *rc)
{
    if (fsm_store_load(rc->st, rc->k, on_remember_loaded, rc) != 0)
        remember_done(rc, VN_EDOWN, 0);
}

int fsm_store_remember(struct fsm_store *st, struct fsm_conv_key k, const char *field,
                       int64_t value, fsm_done_cb cb, void *ud)
{
    if (!rds_is_ready(st->redis))
        return VN_EDOWN;
    struct remember_call *rc = xcalloc(1, sizeof(*rc));
    rc->st = st;
    rc->k = k;
    rc->field = xstrdup(field);
    rc->value = value;
    rc->cb = cb;
    rc->ud = ud;
    remember_load(rc);
    return 0;
}
