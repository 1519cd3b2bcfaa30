/*
 * bot_runtime.h - the bot role: Telegram updates in, conversation steps,
 * effects out.
 *
 * Inputs arrive from the webhook (POST <webhook_path>), from long polling,
 * from state timeouts and from POST /v1/conversations. Each is a job for one
 * conversation (chat, user). Jobs of one conversation run one after another
 * in this process (per-chat order); across processes the store's
 * compare-and-set makes a losing step re-read and re-run.
 *
 * A job: load the conversation from Redis, run the pure step (fsm_step),
 * commit state + effects in one Lua script, then answer (the webhook's 200
 * comes only after the commit; Redis down gives 503 + Retry-After). Whoever
 * holds the conversation's outbox lease then carries the effects out in order:
 * replies through the Bot API client, events to RabbitMQ with confirms, state
 * timeouts into a Redis schedule. A batch is popped only when done, so effects
 * are at least once; a sweeper retries batches a crashed process left behind.
 */
#ifndef VN_BOT_RUNTIME_H
#define VN_BOT_RUNTIME_H

#include <json-c/json.h>
#include <stdint.h>
#include <uv.h>

#include "core/common.h"

struct rds_client;
struct pgc_client;
struct mq_client;
struct tg_client;
struct http_router;
struct fsm_set;
struct met_registry;
struct fsm_tz;

/*
 * Turn an effect's template + vars into message text. Returns 0 and fills
 * out (and *parse_mode, a static string or NULL), or a negative code with a
 * message in out. The template engine plugs in here.
 */
typedef int (*bot_render_fn)(void *ud, const char *name, const char *locale,
                             const json_object *vars, struct vn_buf *out, const char **parse_mode);

struct bot_runtime_opts {
    uv_loop_t *loop;
    struct rds_client *redis;
    struct pgc_client *pg; /* may be NULL: links are not recorded */
    struct mq_client *mq;  /* may be NULL: publish effects fail and retry */
    struct tg_client *tg;
    struct met_registry *metrics;
    const char *flows_dir;
    const char *webhook_path;   /* e.g. "/telegram/webhook" */
    const char *webhook_secret; /* "" = not checked (logged at start) */
    const char *api_key;        /* for /v1/conversations; "" = endpoint off */
    const char *exchange;       /* AMQP exchange for publish effects */
    const char *bot_username;   /* commands for other bots are ignored; NULL = any */
    const char *default_locale; /* "en" */
    bot_render_fn render;
    void *render_ud;
    /* Flow files are checked against the template set: does name exist? */
    int (*template_exists)(const char *name, void *ud);
    void *template_ud;
    const struct fsm_tz *tz; /* users' time zone for dates they type; NULL = UTC */
    int64_t conversation_ttl_s;
};

struct bot_runtime;

/*
 * Load the flows and register the routes. NULL with a message in err when
 * the flows do not load (every problem listed).
 */
struct bot_runtime *bot_runtime_new(const struct bot_runtime_opts *opt, struct http_router *router,
                                    struct vn_buf *err);

/* Reload the flows (SIGHUP). A set with problems keeps the old one; returns
 * 0 or the number of problems (logged). */
int bot_runtime_reload(struct bot_runtime *rt);

/* Long polling instead of the webhook (development). */
void bot_runtime_start_polling(struct bot_runtime *rt);

/* Jobs queued or running, and outboxes being executed. */
unsigned bot_runtime_busy(const struct bot_runtime *rt);

/* Stop taking work; jobs in flight finish. Free with bot_runtime_free()
 * after the loop ends. */
void bot_runtime_close(struct bot_runtime *rt);
void bot_runtime_free(struct bot_runtime *rt);

#endif
