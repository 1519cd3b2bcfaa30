/*
 * amqp.h - RabbitMQ client: publisher confirms, manual-ack consumers, reconnect.
 *
 * rabbitmq-c blocks, so it runs on threads that own their connections (a
 * connection is never shared between threads): one publisher thread and one
 * consumer thread per client. The loop talks to them through mutex-protected
 * queues; they talk back through uv_async_send, so every callback below runs
 * on the loop thread. Threads never touch loop objects.
 *
 * Both threads reconnect with exponential backoff and jitter (100 ms doubling
 * up to reconnect_max_ms) and re-run the topology callback after each connect.
 * A publish is retried across reconnects until the broker confirms it (basic.ack)
 * or rejects it (basic.nack / returned as unroutable when mandatory), so its
 * callback fires exactly once with the outcome. Deliveries are at least once.
 * See docs/amqp.md for the threading model and the failure cases.
 */
#ifndef VN_AMQP_H
#define VN_AMQP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <amqp.h>

struct mq_client;

struct mq_options {
    const char *url;          /* amqp://user:pass@host:port/vhost ("/" or none = vhost "/") */
    int64_t reconnect_max_ms; /* cap of the reconnect backoff; <= 0 = 5000 */
    int64_t heartbeat_s;      /* AMQP heartbeat; 0 = default (10), negative = off */
    const char *name;         /* connection name shown in the management UI; may be NULL */
};

/*
 * Topology callback, run on the AMQP thread right after every (re)connect on
 * both connections: declare exchanges, queues and bindings idempotently with
 * rabbitmq-c calls on (conn, channel). Return 0, or -1 to drop the connection
 * and retry later (log why). It must only use conn and ud (read-only). It may
 * run on both threads at the same time. Blocking RPCs time out after 15 s.
 */
typedef int (*mq_topology_fn)(amqp_connection_state_t conn, amqp_channel_t channel, void *ud);

/*
 * Called on the loop when a publish is settled: ok = 1 confirmed, 0 rejected.
 * why (NULL when ok) is only valid during the call: "nacked by broker",
 * "unroutable: NO_ROUTE", "rejected by broker: 404 NOT_FOUND - ..." or
 * "shutting down".
 */
typedef void (*mq_confirm_cb)(void *ud, int ok, const char *why);

/*
 * One delivery, handed to the loop. The loop owns it until it calls
 * mq_ack or mq_nack exactly once (which free it). Everything in it is a deep
 * copy owned by the message; body is also NUL-terminated (not counted in len).
 */
struct mq_message {
    char *body;
    size_t len;
    char *routing_key;
    char *exchange;
    char *message_id;     /* NULL if absent */
    char *content_type;   /* NULL if absent */
    amqp_table_t headers; /* deep copy; empty if none */
    int redelivered;
    uint64_t delivery_tag;
    uint64_t generation; /* which connection it arrived on; stale acks are dropped */
    const char *queue;   /* the queue it came from (owned by the client) */
    struct mq_client *client;
};

typedef void (*mq_message_cb)(struct mq_message *msg, void *ud);

/* Called on the loop when a connection's state changes (role "publisher"/"consumer"). */
typedef void (*mq_state_cb)(void *ud, const char *role, int connected);

/*
 * Create the client and start its publisher thread. Returns NULL and logs
 * if the URL does not parse (amqps:// is not supported yet). Callbacks never
 * fire before this returns. on_state may be NULL.
 */
struct mq_client *mq_client_new(uv_loop_t *loop, const struct mq_options *opt,
                                mq_topology_fn topology, mq_state_cb on_state, void *ud);

#define MQ_MAX_QUEUES 8

/*
 * Start consuming with manual acks and basic.qos prefetch (per queue) from
 * queue, which may name up to MQ_MAX_QUEUES queues separated by commas; they
 * share the consumer thread, its connection and channel. Starts the consumer
 * thread (one mq_consume per client). on_message
 * runs on the loop for each delivery. Returns 0, VN_EINVAL (bad arguments),
 * VN_ECONFLICT (second call), VN_ESTATE (closing) or VN_EIO (no thread).
 */
int mq_consume(struct mq_client *c, const char *queue, uint16_t prefetch, mq_message_cb on_message,
               void *ud);

/*
 * Stop receiving: the consumer cancels its subscriptions (basic.cancel) but
 * keeps its connection, so deliveries the loop still holds can be acked.
 * Deliveries already on their way may still arrive (settle them, e.g. nack
 * with requeue). For a draining process. No effect before mq_consume.
 */
void mq_consume_pause(struct mq_client *c);

/*
 * Queue a persistent publish (delivery_mode 2, mandatory). content_type is
 * application/json unless headers hold a string "content_type", which is then
 * used. message_id may be NULL. headers may be NULL; it is deep-copied, as is
 * body. cb may be NULL. Returns 0; VN_ESTATE when the client is closing,
 * VN_EINVAL for a name over 255 bytes or headers rabbitmq-c cannot copy (then
 * cb never fires).
 */
int mq_publish(struct mq_client *c, const char *exchange, const char *routing_key,
               const char *message_id, const amqp_table_t *headers, const void *body, size_t len,
               mq_confirm_cb cb, void *ud);

/*
 * Settle a delivery. These free msg. If msg came on a connection that has since
 * dropped, the broker already requeued it: nothing is sent. They may also be
 * called after mq_client_close's done callback (they then only free msg; the
 * broker requeued it); the client's memory is released with the last message.
 */
void mq_ack(struct mq_message *msg);
void mq_nack(struct mq_message *msg, int requeue);

/* 1 when both started threads are connected (for /readyz). */
int mq_is_connected(const struct mq_client *c);

/*
 * Stop: the consumer cancels its subscription and stops handing out
 * deliveries (ones not yet handed to the loop are nacked with requeue), pending
 * publishes and deliveries the loop still holds get up to timeout_ms to be
 * confirmed / acked, then threads exit, unconfirmed publishes get cb(ok=0,
 * "shutting down") and unacked deliveries are requeued by the broker when the
 * connection closes. Calls done(ud) on the loop when the threads are gone and
 * the async handle is closed; after that c must not be used except through
 * messages still held (see mq_ack). Safe to call once; done may be NULL.
 */
void mq_client_close(struct mq_client *c, int64_t timeout_ms, void (*done)(void *ud), void *ud);

/* ---- module-internal, exposed for unit tests (tests/unit/core/test_amqp_url.c) ---- */

/*
 * Parse an AMQP URL into *info whose strings point into *buf (a copy the
 * caller frees). An empty vhost ("amqp://h/") means "/". Returns 0, or
 * VN_EINVAL with a reason in err that never contains the password.
 */
int mq__parse_url(const char *url, char **buf, struct amqp_connection_info *info, char *err,
                  size_t errlen);

/* A heap copy of the string (utf8 or bytes) entry key of t, or NULL. */
char *mq__table_get_str(const amqp_table_t *t, const char *key);

#endif
