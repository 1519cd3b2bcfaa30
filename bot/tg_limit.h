/*
 * tg_limit.h - outbound rate limiting for the Telegram Bot API.
 *
 * Telegram allows a bot about 30 messages per second overall, about one per
 * second to a private chat (with a small burst) and 20 per minute to a group.
 * The buckets live in Redis so several vestnik processes sharing a bot stay
 * inside those limits together: one Lua script per acquire checks and takes
 * from the global bucket and the chat's bucket atomically, using Redis's clock.
 *
 * The buckets are GCRA (the "generic cell rate algorithm", a token bucket kept
 * as one timestamp): emission interval T = 1/rate, tolerance tau = (burst-1)*T.
 * A send at time now is allowed when tat <= now + tau (+1 ms slack), and moves
 * tat = max(tat, now) + T. The math is in tg_gcra_take() (pure, unit-tested)
 * and mirrored line by line in the Lua script.
 *
 * A 429 answer's retry_after pauses that chat (or every chat when the server
 * says so) through a pause key the script also honours.
 *
 * When Redis is unreachable the limiter falls back to the same buckets kept in
 * process memory, so a process alone still keeps the limits; it logs that once.
 *
 * Requests are served in FIFO order per chat; a chat that must wait does not
 * hold up other chats (no head-of-line blocking), and a global wait pauses all.
 */
#ifndef VN_TG_LIMIT_H
#define VN_TG_LIMIT_H

#include <stdint.h>
#include <uv.h>

struct rds_client;

struct tg_limit_cfg {
    double global_per_s;   /* default 30 */
    unsigned global_burst; /* default 1: spread sends evenly */
    double chat_per_s;     /* private chats, default 1 */
    unsigned chat_burst;   /* default 3 */
    double group_per_min;  /* chats with negative ids, default 20 */
    unsigned group_burst;  /* default 3 */
    double margin;         /* pace this fraction under each limit, default 0.02 */
};

void tg_limit_cfg_default(struct tg_limit_cfg *cfg);

/* ---- pure math ------------------------------------------------------------ */

/* A send may go this many ms before its exact time (see tg_gcra_peek). */
#define TG_GCRA_SLACK_MS 1.0

/*
 * Take one token from a GCRA bucket whose state is *tat (ms). Returns 0 and
 * advances *tat when a send at now_ms is allowed; otherwise returns how many
 * ms to wait and leaves *tat unchanged.
 */
double tg_gcra_take(double *tat, double now_ms, double interval_ms, unsigned burst);

/* Would a send be allowed? Like tg_gcra_take without changing anything. */
double tg_gcra_peek(double tat, double now_ms, double interval_ms, unsigned burst);

/* Emission interval (ms) and burst for a chat: private, group, or global (chat 0). */
void tg_limit_bucket(const struct tg_limit_cfg *cfg, int64_t chat_id, double *interval_ms,
                     unsigned *burst);

/* ---- the limiter ---------------------------------------------------------- */

struct tg_limiter;

/* status 0: go ahead and send now. VN_ESTATE: the limiter closed first. */
typedef void (*tg_limit_cb)(int status, void *ud);

/*
 * bot_id names the buckets (the numeric part of the token, never the secret).
 * redis may be NULL: then buckets are kept in process memory only.
 */
struct tg_limiter *tg_limiter_new(uv_loop_t *loop, struct rds_client *redis, const char *bot_id,
                                  const struct tg_limit_cfg *cfg);

/* Queue a send to chat_id (0 = not chat-specific: only the global bucket). */
void tg_limiter_acquire(struct tg_limiter *l, int64_t chat_id, tg_limit_cb cb, void *ud);

/* A 429 said wait retry_after_s: for that chat, or for everything if chat_id is 0. */
void tg_limiter_penalize(struct tg_limiter *l, int64_t chat_id, int retry_after_s);

/* Requests waiting in this process. */
unsigned tg_limiter_pending(const struct tg_limiter *l);

/* Fail pending requests with VN_ESTATE and free once handles close. */
void tg_limiter_close(struct tg_limiter *l);

#endif
