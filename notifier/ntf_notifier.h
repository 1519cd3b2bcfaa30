/*
 * ntf_notifier.h - the notifier role: events from RabbitMQ to Telegram and
 * e-mail, with a delivery log in PostgreSQL, a retry ladder, a dead-letter
 * queue and a reminder scheduler. docs/notifier.md tells the whole story.
 *
 * Work moves in batches (NOTIFY_BATCH events): each step is one SQL
 * statement for the whole batch, so the database costs a few round trips
 * per batch, not per event. A batch: store the events (UNIQUE id: a
 * redelivered message finds its row), resolve recipients, route (ntf_route),
 * insert one delivery row per (event, recipient, channel) and claim the ones
 * due now, send, record the outcome (and fall back or retry), then settle the
 * AMQP messages: ack, or ack after a retry copy / dead letter is confirmed.
 *
 * Everything here runs on the loop thread; e-mail goes through the sender
 * threads of ntf_email.
 */
#ifndef NTF_NOTIFIER_H
#define NTF_NOTIFIER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <amqp.h>

#include "ntf_route.h"

struct pgc_client;
struct mq_client;
struct tg_client;
struct ntf_email_pool;
struct tpl_set;
struct met_registry;

/* Queue names, from NOTIFY_QUEUE_PREFIX. */
struct ntf_topology {
    const char *exchange; /* the topic exchange (AMQP_EXCHANGE) */
    const char *prefix;   /* "vestnik.notifier" */
    const struct ntf_retry *retry;
};

enum ntf_queue { NTF_Q_TASKS, NTF_Q_REMINDERS, NTF_Q_NOTIFICATIONS, NTF_Q_COUNT };

/* "<prefix>.tasks" etc. into buf; "<prefix>.dead" for NTF_Q_COUNT. */
void ntf_queue_name(const char *prefix, int q, char *buf, size_t len);
/* The work queue an event type belongs to. */
enum ntf_queue ntf_queue_of(enum ntf_type t);

/*
 * Declare the exchange, the three quorum work queues with their bindings,
 * their retry queues (TTL, dead-lettering back) and the dead-letter queue.
 * Idempotent; runs on an AMQP thread (mq_topology_fn). Returns 0 or -1.
 */
int ntf_declare_topology(amqp_connection_state_t conn, amqp_channel_t ch,
                         const struct ntf_topology *t);

struct ntf_notifier_opts {
    uv_loop_t *loop;
    struct pgc_client *pg;
    struct pgc_client *pg_fast; /* a second connection for short statements that must not
                                   wait behind batches (sent records, lease renewals);
                                   NULL = pg */
    struct mq_client *mq;
    struct tg_client *tg;         /* NULL: no Telegram channel */
    struct ntf_email_pool *email; /* NULL: no e-mail channel */
    struct tpl_set **templates;   /* the app's current set (swapped on reload) */
    struct met_registry *metrics;
    struct ntf_topology topo;
    const char *default_locale;
    const char *default_time_zone;
    size_t max_event_bytes;
    int64_t claim_lease_ms;
    int64_t poll_interval_ms;
    unsigned batch_max;
    uint16_t prefetch;
};

struct ntf_notifier;

struct ntf_notifier *ntf_notifier_new(const struct ntf_notifier_opts *o);
/* Start consuming and the scheduler. Returns 0 or a VN_E code (logged). */
int ntf_notifier_start(struct ntf_notifier *n);
/* Stop taking work (scheduler off; deliveries not yet in a batch are left to
 * the broker's requeue); batches in flight go on. */
void ntf_notifier_stop(struct ntf_notifier *n);
/* Batches in flight (drain waits for 0). */
unsigned ntf_notifier_busy(const struct ntf_notifier *n);
void ntf_notifier_free(struct ntf_notifier *n);

/* The instance id used for claims and leases ("host:pid:rand"). */
const char *ntf_notifier_instance(const struct ntf_notifier *n);

#endif
