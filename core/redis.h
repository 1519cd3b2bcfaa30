/*
 * redis.h - async Redis client on the loop (hiredis), reconnecting with backoff.
 *
 * One connection per client. Commands are pipelined on it; replies arrive in
 * order on the loop. While disconnected, rds_command() fails at once with
 * VN_EDOWN (callers answer 503 rather than queue without bound), and the
 * client reconnects in the background with exponential backoff and jitter.
 * A PING every health interval proves the server still answers; a ping left
 * unanswered for three intervals drops the connection.
 */
#ifndef VN_REDIS_H
#define VN_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <hiredis/hiredis.h>

struct rds_client;

/* reply is NULL when the connection was lost or the client closed before
 * an answer arrived. The reply belongs to hiredis: copy what you keep. */
typedef void (*rds_reply_fn)(struct rds_client *c, redisReply *reply, void *ud);

struct rds_opts {
    const char *url;            /* redis://[[user]:password@]host[:port][/db] */
    int64_t health_interval_ms; /* PING period */
    int64_t reconnect_max_ms;   /* backoff cap */
    int64_t connect_timeout_ms; /* give up a connect attempt after this */
};

struct rds_url {
    char host[256];
    int port;
    char user[128]; /* Redis 6 ACL user; "" = default user */
    char password[256];
    int db;
};

/* Parse a redis:// URL. Returns 0, or VN_EINVAL with a message in err. */
int rds_parse_url(const char *url, struct rds_url *out, char *err, size_t errlen);

/* Create and start connecting. NULL (message in err) only when the URL is bad. */
struct rds_client *rds_new(uv_loop_t *loop, const struct rds_opts *opt, char *err, size_t errlen);

/*
 * Send a command (hiredis format string). Returns 0 (cb will be called
 * exactly once; cb may be NULL to ignore the reply), or VN_EDOWN when not
 * connected / VN_ESTATE when closing (cb never called).
 */
int rds_command(struct rds_client *c, rds_reply_fn cb, void *ud, const char *fmt, ...);
int rds_command_argv(struct rds_client *c, rds_reply_fn cb, void *ud, int argc, const char **argv,
                     const size_t *argvlen);

/* 1 when connected and the last PING was answered in time. */
int rds_is_ready(const struct rds_client *c);
/* The last connection error, "" if none. */
const char *rds_last_error(const struct rds_client *c);

/* Disconnect (pending callbacks get NULL) and free once loop handles close. */
void rds_close(struct rds_client *c);

#endif
