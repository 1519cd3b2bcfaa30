/*
 * fsm_store.h - conversation state in Redis: load, commit, outbox, leases.
 *
 * One conversation per (chat, user). Its keys share the hash tag
 * {<chat>:<user>}, so they live in one Redis Cluster slot:
 *
 *   vn:conv:{c:u}            hash: flow, state, data (JSON), version,
 *                            updated_at, entered_at, timeout_at (ms)
 *   vn:conv:{c:u}:outbox     list of effect batches (JSON arrays), oldest first
 *   vn:conv:{c:u}:lease      who executes the outbox now (SET NX PX)
 *   vn:conv:{c:u}:u:<id>     update_id seen (SET EX: the dedup window)
 *
 * A step commits with one Lua script: it refuses an update_id already seen
 * (duplicate), compares the version it read (compare-and-set: a concurrent
 * step for the same user makes this one retry from a fresh read), writes the
 * new state and data, appends the step's effects to the outbox, marks the
 * update_id, and tries to take the outbox lease. State changes exactly once.
 *
 * Effects run after the commit, by whoever holds the lease, head batch
 * first; a batch is popped only when done, so a crash leaves it for the next
 * lease holder (effects at least once). Releasing the lease is refused while
 * batches remain, so a batch pushed just before the release is not stranded.
 * Conversations that may have an outbox are indexed in the zset
 * vn:outbox:index (written before the commit, so it is a superset); a sweeper
 * retries old entries.
 */
#ifndef VN_FSM_STORE_H
#define VN_FSM_STORE_H

#include <stddef.h>
#include <stdint.h>

struct rds_client;

struct fsm_conv_key {
    int64_t chat_id;
    int64_t user_id;
};

struct fsm_stored {
    char *flow; /* NULL when no flow is active */
    char *state;
    char *data_json; /* "{}" when empty */
    int64_t version; /* 0 = never stored */
    int64_t updated_at;
    int64_t entered_at;
    int64_t timeout_at; /* pending state timeout deadline, 0 = none */
};

void fsm_stored_free(struct fsm_stored *s);

enum fsm_commit_status {
    FSM_COMMIT_OK = 0,
    FSM_COMMIT_DUPLICATE, /* update_id already applied: do nothing, answer 200 */
    FSM_COMMIT_CONFLICT,  /* version moved: read again and re-run the step */
    FSM_COMMIT_ERROR,     /* Redis down or an error reply: answer 503 */
};

struct fsm_commit {
    const char *flow; /* NULL = flow ended */
    const char *state;
    const char *data_json;
    int64_t entered_at;
    int64_t timeout_at;
    const char *effects_json; /* JSON array, NULL or "[]" for none */
    int64_t update_id;        /* < 0 for inputs that are not Telegram updates */
    int64_t expect_version;
};

struct fsm_commit_result {
    enum fsm_commit_status status;
    int64_t version; /* the new version (OK) or the current one (CONFLICT) */
    int got_lease;   /* OK: this process now owns the outbox */
    int64_t outbox_len;
    const char *error; /* ERROR: why */
};

struct fsm_store_opts {
    int64_t ttl_s;       /* conversation lifetime after the last step (default 30 days) */
    int64_t dedup_ttl_s; /* how long an update_id is remembered (default 1 day) */
    int64_t lease_ms;    /* outbox lease (default 30 s) */
    const char *owner;   /* this process's id for leases */
};

struct fsm_store;

struct fsm_store *fsm_store_new(struct rds_client *redis, const struct fsm_store_opts *opt);
void fsm_store_free(struct fsm_store *st);
const char *fsm_store_owner(const struct fsm_store *st);

typedef void (*fsm_load_cb)(int status, struct fsm_stored *s, void *ud);
typedef void (*fsm_commit_cb)(const struct fsm_commit_result *r, void *ud);
typedef void (*fsm_batch_cb)(int status, const char *batch_json, void *ud); /* NULL: empty */
typedef void (*fsm_done_cb)(int status, int64_t value, void *ud);

/*
 * Read the conversation. status 0 with s (owned by the callee, freed after
 * the callback), or VN_EDOWN. Returns 0 or VN_EDOWN (cb not called).
 */
int fsm_store_load(struct fsm_store *st, struct fsm_conv_key k, fsm_load_cb cb, void *ud);

/* Commit a step (see above). Returns 0 or VN_EDOWN (cb not called). */
int fsm_store_commit(struct fsm_store *st, struct fsm_conv_key k, const struct fsm_commit *c,
                     fsm_commit_cb cb, void *ud);

/* The oldest outbox batch, if this process holds the lease (else NULL). */
int fsm_store_outbox_head(struct fsm_store *st, struct fsm_conv_key k, fsm_batch_cb cb, void *ud);

/* Pop the head batch once done (only while holding the lease). value = batches left. */
int fsm_store_outbox_pop(struct fsm_store *st, struct fsm_conv_key k, fsm_done_cb cb, void *ud);

/* Give the lease back; value 1 = released, 0 = batches remain (keep going),
 * -1 = not ours any more. */
int fsm_store_lease_release(struct fsm_store *st, struct fsm_conv_key k, fsm_done_cb cb, void *ud);

/* Keep the lease while a long batch runs (fire and forget). */
int fsm_store_lease_touch(struct fsm_store *st, struct fsm_conv_key k);

/* Try to take the lease (sweeper). value 1 = taken (or already ours) and
 * batches wait, 2 = nothing to do, 0 = another process holds it. */
int fsm_store_lease_take(struct fsm_store *st, struct fsm_conv_key k, fsm_done_cb cb, void *ud);

/*
 * Conversations indexed as possibly having an outbox for longer than
 * older_than_ms, at most max of them; cb is called once per key, then once with
 * status VN_ENOENT to mark the end. Stale index entries (empty outbox, no
 * lease) are removed as they are found.
 */
typedef void (*fsm_key_cb)(int status, struct fsm_conv_key k, void *ud);
int fsm_store_sweep(struct fsm_store *st, int64_t older_than_ms, int max, fsm_key_cb cb, void *ud);

/*
 * Set data[field] = value in the stored conversation (a "remember" effect:
 * the id of a message just sent, for later edits). Bumps the version, so a
 * step that read the old data retries. Nothing happens when the conversation
 * is gone. cb may be NULL; value is 1 when written.
 */
int fsm_store_remember(struct fsm_store *st, struct fsm_conv_key k, const char *field,
                       int64_t value, fsm_done_cb cb, void *ud);

/* Key of a conversation, for logs and tests: "vn:conv:{chat:user}". */
void fsm_conv_key_name(struct fsm_conv_key k, char *buf, size_t len);

#endif
