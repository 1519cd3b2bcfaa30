/*
 * amqp.c - RabbitMQ client on blocking threads; see amqp.h and docs/amqp.md.
 *
 * Who owns what:
 * - A publish (struct mq_pub) sits in exactly one place at a time: the
 *   client's pending queue (under lock), the publisher thread's in-flight
 *   list (thread only), or a confirm event on its way to the loop, which calls
 *   its callback and frees it.
 * - A delivery (struct mq_msg) is built by the consumer thread, travels in an
 *   event to the loop and belongs to the application until mq_ack/mq_nack.
 * - Acks travel back in the ack queue (under lock) with the generation of the
 *   connection the delivery came on; the consumer thread sends only those of
 *   its current connection.
 * - The loop owns the uv_async_t and every callback; threads only append to
 *   queues, write eventfds and call uv_async_send.
 * The client is freed after the async handle's close callback, or later by
 * the last mq_ack/mq_nack when the application still held deliveries.
 */
#include "core/amqp.h"
#include "core/common.h"
#include "core/log.h"

#include <amqp_tcp_socket.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MQ_CHANNEL            1
#define MQ_MAX_INFLIGHT       1024 /* unconfirmed publishes on one connection */
#define MQ_POLL_MAX_MS        1000 /* longest sleep without calling into rabbitmq-c */
#define MQ_CONNECT_TIMEOUT_MS 10000
#define MQ_RPC_TIMEOUT_S      15 /* login, channel.open, declares */
#define MQ_CLOSE_TIMEOUT_S    2  /* waiting for connection.close-ok */
#define MQ_FRAME_MAX          131072
#define MQ_PUMP_MAX           256 /* frames read before sending queued work again */
#define MQ_BACKOFF_BASE_MS    100
#define MQ_DEFAULT_HEARTBEAT  10
#define MQ_DEFAULT_RECONNECT  5000
#define MQ_SHORTSTR_MAX       255

enum { MQ_ROLE_PUB = 0, MQ_ROLE_CONS = 1 };

static const char *const role_names[] = {"publisher", "consumer"};

struct mq_pub {
    struct mq_pub *next;
    char *exchange;
    char *routing_key;
    char *message_id; /* NULL if none */
    char *content_type;
    amqp_pool_t pool; /* holds the copy of headers */
    amqp_table_t headers;
    void *body;
    size_t len;
    mq_confirm_cb cb;
    void *ud;
    uint64_t tag; /* delivery tag on the current connection */
    int suspect;  /* was in flight when the broker closed the channel */
    int ok;       /* outcome, set when settled */
    char *why;
};

struct mq_msg {
    struct mq_message msg; /* first: mq_ack gets a pointer to it */
    amqp_pool_t pool;      /* holds the copy of headers */
};

struct mq_ack {
    struct mq_ack *next;
    uint64_t tag;
    uint64_t generation;
    int nack;
    int requeue;
};

enum mq_ev_kind { MQ_EV_CONFIRM, MQ_EV_DELIVERY, MQ_EV_STATE, MQ_EV_EXIT };

struct mq_event {
    struct mq_event *next;
    enum mq_ev_kind kind;
    int role;
    int connected;
    struct mq_pub *pub;
    struct mq_msg *msg;
};

struct mq_thread {
    struct mq_client *c;
    int role;
    pthread_t tid;
    int started; /* loop: the thread was created */
    int exited;  /* loop: its exit event arrived */
    int efd;     /* eventfd written by the loop (and the publisher) to wake it */

    /* Everything below belongs to the thread. */
    amqp_connection_state_t conn;
    unsigned attempt;      /* connection failures in a row */
    uint64_t generation;   /* bumped on each successful connect */
    char why[512];         /* why the last connect or session failed */
    char broker_text[320]; /* "404 NOT_FOUND - ..." when the broker closed us */
    int broker_error;      /* the broker refused something we sent */
    int close_polite;      /* the connection is still usable for connection.close */
    /* publisher */
    struct mq_pub *inflight, *inflight_tail;
    size_t n_inflight;
    uint64_t next_tag;
    /* consumer */
    char consumer_tag[MQ_MAX_QUEUES][MQ_SHORTSTR_MAX + 1];
    int cancel_sent;
};

struct mq_client {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_mutex_t lock;

    /* Set by mq_client_new / mq_consume before the threads start; read-only after. */
    char *url_buf;
    struct amqp_connection_info info;
    char *name;
    int heartbeat;
    uint64_t reconnect_max_ms;
    mq_topology_fn topology;
    mq_state_cb on_state;
    void *ud;
    char *queue; /* as given: names separated by commas */
    char *queues[MQ_MAX_QUEUES];
    size_t n_queues;
    uint16_t prefetch;
    mq_message_cb on_message;
    void *msg_ud;

    struct mq_thread pub, cons;

    /* Under lock. */
    struct mq_pub *pending, *pending_tail;
    struct mq_ack *acks, *acks_tail;
    struct mq_event *events, *events_tail;
    int closing;
    int paused;              /* mq_consume_pause: cancel the subscription, keep the connection */
    uint64_t close_deadline; /* vn_now_ms() clock */
    int pub_done;            /* the publisher thread has finished */
    size_t held;             /* deliveries handed to the loop and not settled yet */

    /* Loop only. */
    int pub_connected, cons_connected;
    int close_called, async_closing, async_closed, in_done;
    void (*done)(void *ud);
    void *done_ud;
};

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */

/* The smaller of a and b. */
static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* A NUL-terminated heap copy of b (which may be empty with bytes NULL). */
static char *bytes_dup(amqp_bytes_t b)
{
    if (b.len == 0)
        return xstrdup("");
    return xstrndup(b.bytes, b.len);
}

/* 1 when b holds exactly the C string s. */
static int bytes_eq_str(amqp_bytes_t b, const char *s)
{
    size_t n = strlen(s);
    return b.len == n && (n == 0 || memcmp(b.bytes, s, n) == 0);
}

/* Wake a thread sleeping in poll() on efd. */
static void wake(int efd)
{
    uint64_t one = 1;
    ssize_t n = write(efd, &one, sizeof(one));
    VN_UNUSED(n); /* EAGAIN means the counter is already non-zero: still woken */
}

/* Reset an eventfd after poll() said it is readable. */
static void drain(int efd)
{
    uint64_t v = 0;
    ssize_t n = read(efd, &v, sizeof(v));
    VN_UNUSED(n);
}

/* strerror for threads (the GNU strerror_r may ignore buf and return a static string). */
static const char *err_str(int e, char *buf, size_t n)
{
    return strerror_r(e, buf, n);
}

/* Free a publish and everything it owns; NULL is a no-op. */
static void pub_free(struct mq_pub *p)
{
    if (p == NULL)
        return;
    free(p->exchange);
    free(p->routing_key);
    free(p->message_id);
    free(p->content_type);
    empty_amqp_pool(&p->pool);
    free(p->body);
    free(p->why);
    free(p);
}

/* Free a delivery and everything it owns; NULL is a no-op. */
static void msg_free(struct mq_msg *m)
{
    if (m == NULL)
        return;
    free(m->msg.body);
    free(m->msg.routing_key);
    free(m->msg.exchange);
    free(m->msg.message_id);
    free(m->msg.content_type);
    empty_amqp_pool(&m->pool);
    free(m);
}

/* Append ev to the loop's event queue and wake the loop. Any thread. */
static void post(struct mq_client *c, struct mq_event *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->events_tail)
        c->events_tail->next = ev;
    else
        c->events = ev;
    c->events_tail = ev;
    pthread_mutex_unlock(&c->lock);
    uv_async_send(&c->async);
}

/* Hand a settled publish to the loop (which calls its callback and frees it). */
static void post_confirm(struct mq_client *c, struct mq_pub *p, int ok, const char *why)
{
    struct mq_event *ev = xcalloc(1, sizeof(*ev));
    p->next = NULL;
    p->ok = ok;
    free(p->why);
    p->why = why ? xstrdup(why) : NULL;
    ev->kind = MQ_EV_CONFIRM;
    ev->pub = p;
    post(c, ev);
}

/* Tell the loop about a state change or the thread's exit. */
static void post_simple(struct mq_thread *t, enum mq_ev_kind kind, int connected)
{
    struct mq_event *ev = xcalloc(1, sizeof(*ev));
    ev->kind = kind;
    ev->role = t->role;
    ev->connected = connected;
    post(t->c, ev);
}

static void set_why(struct mq_thread *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record why the connection failed, for the next log line. */
static void set_why(struct mq_thread *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof(t->why), fmt, ap);
    va_end(ap);
}

static void mq_log(struct mq_thread *t, int level, int64_t retry_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * One JSON log line about thread t with its role, broker address (never the
 * password) and, when retry_ms >= 0, the attempt number and the next delay.
 */
static void mq_log(struct mq_thread *t, int level, int64_t retry_ms, const char *fmt, ...)
{
    struct mq_client *c = t->c;
    struct vn_buf f = VN_BUF_INIT;
    struct vn_buf m = VN_BUF_INIT;
    va_list ap;

    if (level < vn_log_get_level())
        return;
    vn_buf_puts(&f, "\"role\":");
    vn_buf_json_str(&f, role_names[t->role]);
    vn_buf_puts(&f, ",\"host\":");
    vn_buf_json_str(&f, c->info.host);
    vn_buf_printf(&f, ",\"port\":%d,\"vhost\":", c->info.port);
    vn_buf_json_str(&f, c->info.vhost);
    if (c->name) {
        vn_buf_puts(&f, ",\"connection_name\":");
        vn_buf_json_str(&f, c->name);
    }
    if (retry_ms >= 0)
        vn_buf_printf(&f, ",\"attempt\":%u,\"retry_in_ms\":%lld", t->attempt, (long long)retry_ms);
    va_start(ap, fmt);
    vn_buf_vprintf(&m, fmt, ap);
    va_end(ap);
    vn_log_emit(level, "amqp", NULL, f.data, "%s", m.data ? m.data : "");
    vn_buf_free(&f);
    vn_buf_free(&m);
}

/* Whether a connection.close code means the broker refused what we sent
 * (as opposed to the broker going away: 320 forced, 541 internal error). */
static int conn_code_is_refusal(unsigned code)
{
    return code >= 501 && code <= 540;
}

/* Describe a failed RPC reply into t->why, prefixed by what was attempted. */
static void reply_why(struct mq_thread *t, const char *what, amqp_rpc_reply_t r)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        set_why(t, "%s", what);
        break;
    case AMQP_RESPONSE_NONE:
        set_why(t, "%s: no reply", what);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        set_why(t, "%s: %s", what, amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            set_why(t, "%s: connection closed by broker: %u %.*s", what, m->reply_code,
                    (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            set_why(t, "%s: channel closed by broker: %u %.*s", what, m->reply_code,
                    (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            set_why(t, "%s: unexpected method 0x%08x", what, (unsigned)r.reply.id);
        }
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* URL and table helpers (pure)                                             */

int mq__parse_url(const char *url, char **buf, struct amqp_connection_info *info, char *err,
                  size_t errlen)
{
    char *copy = NULL;
    int rc = VN_EINVAL;

    *buf = NULL;
    if (url == NULL || *url == '\0') {
        snprintf(err, errlen, "empty AMQP URL");
        goto out;
    }
    if (strncmp(url, "amqps://", 8) == 0) {
        snprintf(err, errlen, "amqps:// (TLS) is not supported yet; use amqp://");
        goto out;
    }
    /* amqp_parse_url writes NULs into its argument and points info into it. */
    copy = xstrdup(url);
    amqp_default_connection_info(info);
    if (amqp_parse_url(copy, info) != AMQP_STATUS_OK) {
        /* Do not echo the URL: it may hold the password. */
        snprintf(err, errlen,
                 "AMQP URL does not parse (expected amqp://user:password@host:port/vhost)");
        goto out;
    }
    if (info->host == NULL || *info->host == '\0') {
        snprintf(err, errlen, "AMQP URL has no host");
        goto out;
    }
    if (info->port <= 0) {
        snprintf(err, errlen, "AMQP URL has port 0");
        goto out;
    }
    if (info->vhost == NULL || *info->vhost == '\0')
        info->vhost = "/"; /* "amqp://h/" means the default vhost, as in most clients */
    *buf = copy;
    copy = NULL;
    rc = 0;
out:
    free(copy);
    return rc;
}

char *mq__table_get_str(const amqp_table_t *t, const char *key)
{
    if (t == NULL)
        return NULL;
    for (int i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        if (!bytes_eq_str(e->key, key))
            continue;
        if (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES)
            return bytes_dup(e->value.value.bytes);
        return NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* thread plumbing: stopping, sleeping, connecting                          */

/*
 * Whether thread t should end now. Only once the client is closing: at the
 * deadline; the publisher when nothing is pending or in flight; the consumer
 * when disconnected, or when the publisher is done and the loop holds no
 * delivery it could still ack.
 */
static int stop_wanted(struct mq_thread *t, int connected)
{
    struct mq_client *c = t->c;
    int stop = 0;

    pthread_mutex_lock(&c->lock);
    if (c->closing) {
        if (vn_now_ms() >= c->close_deadline)
            stop = 1;
        else if (t->role == MQ_ROLE_PUB)
            stop = c->pending == NULL && t->n_inflight == 0;
        else
            stop = !connected || (c->pub_done && c->held == 0);
    }
    pthread_mutex_unlock(&c->lock);
    return stop;
}

/* Sleep in poll() on the eventfd (and sockfd when >= 0) for up to timeout_ms. */
static void thread_poll(struct mq_thread *t, int sockfd, int timeout_ms)
{
    struct pollfd pfd[2] = {{.fd = t->efd, .events = POLLIN}, {.fd = sockfd, .events = POLLIN}};
    int n = poll(pfd, sockfd >= 0 ? 2 : 1, timeout_ms);
    if (n > 0 && (pfd[0].revents & POLLIN))
        drain(t->efd);
}

/* Milliseconds to sleep at most: until the close deadline if closing, else max_ms. */
static int sleep_budget(struct mq_thread *t, uint64_t max_ms)
{
    struct mq_client *c = t->c;
    uint64_t now = vn_now_ms(), ms = max_ms;

    pthread_mutex_lock(&c->lock);
    if (c->closing)
        ms = c->close_deadline > now ? min_u64(ms, c->close_deadline - now) : 0;
    pthread_mutex_unlock(&c->lock);
    return (int)ms;
}

/* Sleep delay_ms between connection attempts; returns 1 if the thread should stop. */
static int backoff_sleep(struct mq_thread *t, uint64_t delay_ms)
{
    uint64_t until = vn_now_ms() + delay_ms;
    for (;;) {
        if (stop_wanted(t, 0))
            return 1;
        uint64_t now = vn_now_ms();
        if (now >= until)
            return 0;
        thread_poll(t, -1, sleep_budget(t, until - now));
    }
}

/* The next reconnect delay; counts the attempt. */
static uint64_t next_delay(struct mq_thread *t)
{
    uint64_t d =
        vn_backoff_ms(t->attempt, MQ_BACKOFF_BASE_MS, t->c->reconnect_max_ms, vn_random_u32());
    t->attempt++;
    return d;
}

/* Wait for a non-blocking connect on fd. Returns 0 or an errno value
 * (ECANCELED when the client is closing and no longer needs the connection). */
static int connect_wait(struct mq_thread *t, int fd)
{
    uint64_t until = vn_now_ms() + MQ_CONNECT_TIMEOUT_MS;
    for (;;) {
        uint64_t now = vn_now_ms();
        if (now >= until)
            return ETIMEDOUT;
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLOUT}, {.fd = t->efd, .events = POLLIN}};
        int n = poll(pfd, 2, (int)min_u64(until - now, MQ_POLL_MAX_MS));
        if (n < 0 && errno != EINTR)
            return errno;
        if (n > 0 && (pfd[1].revents & POLLIN))
            drain(t->efd);
        if (stop_wanted(t, 0))
            return ECANCELED;
        if (n > 0 && pfd[0].revents) {
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
                return errno;
            return soerr;
        }
    }
}

/*
 * Open a non-blocking TCP connection to the broker (our own connect rather
 * than amqp_socket_open: it reports why it failed and can be cancelled).
 * Returns the fd, or -1 with t->why set.
 */
static int tcp_connect(struct mq_thread *t)
{
    struct mq_client *c = t->c;
    struct addrinfo hints, *res = NULL;
    char port[16], ebuf[128];
    int fd = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", c->info.port);
    int rc = getaddrinfo(c->info.host, port, &hints, &res);
    if (rc != 0) {
        set_why(t, "cannot resolve %s: %s", c->info.host, gai_strerror(rc));
        goto out;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int one = 1, e = 0;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            set_why(t, "socket: %s", err_str(errno, ebuf, sizeof(ebuf)));
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            e = errno;
            if (e == EINPROGRESS)
                e = connect_wait(t, fd);
        }
        if (e == 0)
            break;
        if (e == ECANCELED)
            set_why(t, "connect to %s:%d cancelled: client closing", c->info.host, c->info.port);
        else
            set_why(t, "connect to %s:%d failed: %s", c->info.host, c->info.port,
                    err_str(e, ebuf, sizeof(ebuf)));
        close(fd);
        fd = -1;
        if (e == ECANCELED)
            break;
    }
out:
    if (res)
        freeaddrinfo(res);
    return fd;
}

/*
 * Connect, log in, open channel 1 and set it up for the thread's role
 * (confirm.select, or qos + consume), running the topology callback in
 * between. Returns 0 with t->conn set, or VN_EIO with t->why set.
 */
static int conn_open(struct mq_thread *t)
{
    struct mq_client *c = t->c;
    amqp_connection_state_t conn = NULL;
    amqp_socket_t *sock = NULL;
    amqp_rpc_reply_t r;
    struct timeval rpc_tv = {MQ_RPC_TIMEOUT_S, 0};
    amqp_table_entry_t caps[2], props[2];
    amqp_table_t caps_table, props_table;
    int fd = -1, err = VN_EIO, nprops = 0;

    t->why[0] = '\0';
    t->broker_error = 0;
    t->close_polite = 0;

    fd = tcp_connect(t);
    if (fd < 0)
        goto out;
    conn = amqp_new_connection();
    if (conn == NULL) {
        set_why(t, "amqp_new_connection failed");
        close(fd);
        goto out;
    }
    sock = amqp_tcp_socket_new(conn);
    if (sock == NULL) {
        set_why(t, "amqp_tcp_socket_new failed");
        close(fd);
        goto out;
    }
    amqp_tcp_socket_set_sockfd(sock, fd); /* the connection owns fd from here */
    amqp_set_handshake_timeout(conn, &rpc_tv);
    amqp_set_rpc_timeout(conn, &rpc_tv);

    /* Ask for basic.cancel when the queue goes away, and for connection.blocked. */
    caps[0].key = amqp_cstring_bytes("consumer_cancel_notify");
    caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[0].value.value.boolean = 1;
    caps[1].key = amqp_cstring_bytes("connection.blocked");
    caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[1].value.value.boolean = 1;
    caps_table.num_entries = 2;
    caps_table.entries = caps;
    props[nprops].key = amqp_cstring_bytes("capabilities");
    props[nprops].value.kind = AMQP_FIELD_KIND_TABLE;
    props[nprops].value.value.table = caps_table;
    nprops++;
    if (c->name) {
        props[nprops].key = amqp_cstring_bytes("connection_name");
        props[nprops].value.kind = AMQP_FIELD_KIND_UTF8;
        props[nprops].value.value.bytes = amqp_cstring_bytes(c->name);
        nprops++;
    }
    props_table.num_entries = nprops;
    props_table.entries = props;

    r = amqp_login_with_properties(conn, c->info.vhost, 0, MQ_FRAME_MAX, c->heartbeat, &props_table,
                                   AMQP_SASL_METHOD_PLAIN, c->info.user, c->info.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_why(t, "login failed", r);
        goto out;
    }
    amqp_channel_open(conn, MQ_CHANNEL);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_why(t, "channel.open failed", r);
        goto out;
    }
    if (t->role == MQ_ROLE_PUB) {
        amqp_confirm_select(conn, MQ_CHANNEL);
        r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            reply_why(t, "confirm.select failed", r);
            goto out;
        }
    }
    if (c->topology && c->topology(conn, MQ_CHANNEL, c->ud) != 0) {
        r = amqp_get_rpc_reply(conn);
        reply_why(t, "topology callback failed", r);
        goto out;
    }
    pthread_mutex_lock(&c->lock);
    int paused = c->paused;
    pthread_mutex_unlock(&c->lock);
    if (t->role == MQ_ROLE_CONS && paused) {
        t->cancel_sent = 1; /* reconnected while paused: do not subscribe again */
    } else if (t->role == MQ_ROLE_CONS) {
        amqp_basic_qos(conn, MQ_CHANNEL, 0, c->prefetch, 0);
        r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            reply_why(t, "basic.qos failed", r);
            goto out;
        }
        for (size_t q = 0; q < c->n_queues; q++) {
            amqp_basic_consume_ok_t *ok =
                amqp_basic_consume(conn, MQ_CHANNEL, amqp_cstring_bytes(c->queues[q]),
                                   amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
            r = amqp_get_rpc_reply(conn);
            if (ok == NULL || r.reply_type != AMQP_RESPONSE_NORMAL) {
                char what[MQ_SHORTSTR_MAX + 64];
                snprintf(what, sizeof(what), "basic.consume on queue '%s' failed", c->queues[q]);
                reply_why(t, what, r);
                goto out;
            }
            size_t n = min_u64(ok->consumer_tag.len, sizeof(t->consumer_tag[q]) - 1);
            memcpy(t->consumer_tag[q], ok->consumer_tag.bytes, n);
            t->consumer_tag[q][n] = '\0';
        }
        t->cancel_sent = 0;
    }
    amqp_maybe_release_buffers(conn);
    t->generation++;
    t->next_tag = 1;
    t->conn = conn;
    conn = NULL;
    err = 0;
out:
    if (conn)
        amqp_destroy_connection(conn);
    return err;
}

/* Close and free t->conn; politely (connection.close, waiting at most
 * MQ_CLOSE_TIMEOUT_S for close-ok) when the socket is still believed to work. */
static void conn_close(struct mq_thread *t, int polite)
{
    if (t->conn == NULL)
        return;
    if (polite) {
        struct timeval tv = {MQ_CLOSE_TIMEOUT_S, 0};
        amqp_set_rpc_timeout(t->conn, &tv);
        amqp_connection_close(t->conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(t->conn);
    t->conn = NULL;
}

/*
 * Answer a broker-initiated channel.close or connection.close (method m, on
 * channel ch) and record why. Returns VN_EIO: the session is over.
 */
static int on_broker_close(struct mq_thread *t, amqp_channel_t ch, const amqp_method_t *m)
{
    if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *cc = m->decoded;
        amqp_channel_close_ok_t ok;
        memset(&ok, 0, sizeof(ok));
        snprintf(t->broker_text, sizeof(t->broker_text), "%u %.*s", cc->reply_code,
                 (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
        set_why(t, "channel closed by broker: %s", t->broker_text);
        t->broker_error = 1;
        /* The channel is gone but the connection lives: close it properly. */
        t->close_polite =
            amqp_send_method(t->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) == AMQP_STATUS_OK;
    } else {
        amqp_connection_close_t *cc = m->decoded;
        amqp_connection_close_ok_t ok;
        memset(&ok, 0, sizeof(ok));
        snprintf(t->broker_text, sizeof(t->broker_text), "%u %.*s", cc->reply_code,
                 (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
        set_why(t, "connection closed by broker: %s", t->broker_text);
        t->broker_error = conn_code_is_refusal(cc->reply_code);
        amqp_send_method(t->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        t->close_polite = 0;
    }
    return VN_EIO;
}

/* Frame handling common to both roles; returns 1 if handled, or VN_EIO. */
static int on_common_frame(struct mq_thread *t, const amqp_frame_t *f)
{
    switch (f->payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        return on_broker_close(t, f->channel, &f->payload.method);
    case AMQP_CONNECTION_BLOCKED_METHOD: {
        amqp_connection_blocked_t *b = f->payload.method.decoded;
        mq_log(t, VN_LOG_WARN, -1, "broker blocked the connection: %.*s", (int)b->reason.len,
               (const char *)b->reason.bytes);
        return 1;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        mq_log(t, VN_LOG_INFO, -1, "broker unblocked the connection");
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* publisher                                                                */

/* Append p to the in-flight list (kept in delivery-tag order). */
static void inflight_append(struct mq_thread *t, struct mq_pub *p)
{
    p->next = NULL;
    if (t->inflight_tail)
        t->inflight_tail->next = p;
    else
        t->inflight = p;
    t->inflight_tail = p;
    t->n_inflight++;
}

/* Unlink p (whose predecessor is prev, or NULL) from the in-flight list. */
static void inflight_unlink(struct mq_thread *t, struct mq_pub *prev, struct mq_pub *p)
{
    if (prev)
        prev->next = p->next;
    else
        t->inflight = p->next;
    if (t->inflight_tail == p)
        t->inflight_tail = prev;
    p->next = NULL;
    t->n_inflight--;
}

/*
 * Send pending publishes while the window allows. A suspect publish (one in
 * flight when the broker closed the channel before) travels alone, so that if
 * the broker refuses it again we know it is the culprit. Returns 0 or VN_EIO.
 */
static int pub_send(struct mq_thread *t)
{
    struct mq_client *c = t->c;

    while (t->n_inflight < MQ_MAX_INFLIGHT) {
        struct mq_pub *p = NULL;
        if (t->inflight_tail && t->inflight_tail->suspect)
            break;
        pthread_mutex_lock(&c->lock);
        p = c->pending;
        if (p && p->suspect && t->n_inflight > 0)
            p = NULL;
        if (p) {
            c->pending = p->next;
            if (c->pending == NULL)
                c->pending_tail = NULL;
        }
        pthread_mutex_unlock(&c->lock);
        if (p == NULL)
            break;

        amqp_basic_properties_t props;
        memset(&props, 0, sizeof(props));
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.content_type = amqp_cstring_bytes(p->content_type);
        props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
        if (p->message_id) {
            props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
            props.message_id = amqp_cstring_bytes(p->message_id);
        }
        if (p->headers.num_entries > 0) {
            props._flags |= AMQP_BASIC_HEADERS_FLAG;
            props.headers = p->headers;
        }
        amqp_bytes_t body = {p->len, p->body};

        /* In flight before it is sent: if sending fails it goes back in order. */
        p->tag = t->next_tag++;
        inflight_append(t, p);
        int rc = amqp_basic_publish(t->conn, MQ_CHANNEL, amqp_cstring_bytes(p->exchange),
                                    amqp_cstring_bytes(p->routing_key), 1, 0, &props, body);
        if (rc != AMQP_STATUS_OK) {
            set_why(t, "basic.publish failed: %s", amqp_error_string2(rc));
            return VN_EIO;
        }
    }
    return 0;
}

/* Settle in-flight publishes for a basic.ack/nack (tag, multiple). Tags we no
 * longer hold (returned as unroutable) are ignored. */
static void pub_settle(struct mq_thread *t, uint64_t tag, int multiple, int ok, const char *why)
{
    struct mq_pub *prev = NULL, *p = t->inflight;

    while (p) {
        struct mq_pub *next = p->next;
        if (p->tag > tag && !(multiple && tag == 0))
            break; /* the list is in tag order */
        if (multiple || p->tag == tag) {
            inflight_unlink(t, prev, p);
            post_confirm(t->c, p, ok, why);
            if (!multiple)
                break;
        } else {
            prev = p;
        }
        p = next;
    }
}

/*
 * basic.return: read the returned content and settle the matching in-flight
 * publish as rejected. A return carries no delivery tag, so we match on
 * exchange, routing key, message id and body: identical publishes are
 * interchangeable, so settling the oldest one is right. Returns 0 or VN_EIO.
 */
static int pub_on_return(struct mq_thread *t, const amqp_frame_t *f)
{
    amqp_basic_return_t *r = f->payload.method.decoded;
    amqp_message_t m;
    char why[MQ_SHORTSTR_MAX + 32];
    struct mq_pub *prev = NULL, *p;

    snprintf(why, sizeof(why), "unroutable: %.*s", (int)r->reply_text.len,
             (const char *)r->reply_text.bytes);
    amqp_rpc_reply_t rr = amqp_read_message(t->conn, f->channel, &m, 0);
    if (rr.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION)
        return on_broker_close(t, f->channel, &rr.reply);
    if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_why(t, "reading a returned message", rr);
        return VN_EIO;
    }
    amqp_bytes_t mid = amqp_empty_bytes;
    int has_mid = (m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0;
    if (has_mid)
        mid = m.properties.message_id;
    for (p = t->inflight; p; prev = p, p = p->next) {
        if (!bytes_eq_str(r->exchange, p->exchange) ||
            !bytes_eq_str(r->routing_key, p->routing_key))
            continue;
        if ((p->message_id != NULL) != has_mid || (has_mid && !bytes_eq_str(mid, p->message_id)))
            continue;
        if (m.body.len != p->len || (p->len && memcmp(m.body.bytes, p->body, p->len) != 0))
            continue;
        break;
    }
    if (p) {
        inflight_unlink(t, prev, p);
        post_confirm(t->c, p, 0, why);
    } else {
        mq_log(t, VN_LOG_WARN, -1, "returned message matches no unconfirmed publish (%s)", why);
    }
    amqp_destroy_message(&m);
    return 0;
}

/* Handle one frame on the publisher connection. Returns 0 or VN_EIO. */
static int pub_on_frame(struct mq_thread *t, const amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0; /* stray content frame: nothing to do */
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *a = f->payload.method.decoded;
        pub_settle(t, a->delivery_tag, a->multiple, 1, NULL);
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *n = f->payload.method.decoded;
        pub_settle(t, n->delivery_tag, n->multiple, 0, "nacked by broker");
        return 0;
    }
    case AMQP_BASIC_RETURN_METHOD:
        return pub_on_return(t, f);
    }
    int rc = on_common_frame(t, f);
    if (rc == 0)
        vn_debug("amqp", "publisher ignores method 0x%08x", (unsigned)f->payload.method.id);
    return rc < 0 ? rc : 0;
}

/*
 * The publisher connection is gone: put in-flight publishes back at the front
 * of the queue (at least once). If the broker closed the channel while a
 * suspect publish was alone in flight, that publish is the culprit and is
 * rejected instead; otherwise everything that was in flight becomes suspect.
 */
static void pub_after_loss(struct mq_thread *t)
{
    struct mq_client *c = t->c;

    if (t->broker_error && t->n_inflight == 1 && t->inflight->suspect) {
        struct mq_pub *p = t->inflight;
        char why[sizeof(t->broker_text) + 32];
        snprintf(why, sizeof(why), "rejected by broker: %s", t->broker_text);
        inflight_unlink(t, NULL, p);
        post_confirm(c, p, 0, why);
    }
    if (t->inflight == NULL)
        return;
    for (struct mq_pub *p = t->inflight; p; p = p->next) {
        p->tag = 0;
        if (t->broker_error)
            p->suspect = 1;
    }
    pthread_mutex_lock(&c->lock);
    t->inflight_tail->next = c->pending;
    if (c->pending == NULL)
        c->pending_tail = t->inflight_tail;
    c->pending = t->inflight;
    pthread_mutex_unlock(&c->lock);
    t->inflight = t->inflight_tail = NULL;
    t->n_inflight = 0;
}

/* The publisher thread is ending: everything unconfirmed fails. */
static void pub_finish(struct mq_thread *t)
{
    struct mq_client *c = t->c;
    struct mq_pub *p, *next;

    pub_after_loss(t); /* in flight -> pending, in order */
    pthread_mutex_lock(&c->lock);
    p = c->pending;
    c->pending = c->pending_tail = NULL;
    c->pub_done = 1;
    pthread_mutex_unlock(&c->lock);
    for (; p; p = next) {
        next = p->next;
        post_confirm(c, p, 0, "shutting down");
    }
    wake(c->cons.efd); /* a consumer may be waiting for us to finish */
}

/* ------------------------------------------------------------------------ */
/* consumer                                                                 */

/* Send queued acks/nacks of the current connection; when closing, cancel the
 * subscription once. Returns 0 or VN_EIO. */
static int cons_flush(struct mq_thread *t)
{
    struct mq_client *c = t->c;
    struct mq_ack *a, *next;
    int rc = 0, closing;

    pthread_mutex_lock(&c->lock);
    a = c->acks;
    c->acks = c->acks_tail = NULL;
    closing = c->closing || c->paused;
    pthread_mutex_unlock(&c->lock);
    for (; a; a = next) {
        next = a->next;
        /* A stale tag would make the broker close the channel (unknown delivery tag). */
        if (rc == 0 && t->conn && a->generation == t->generation) {
            int s = a->nack ? amqp_basic_nack(t->conn, MQ_CHANNEL, a->tag, 0, a->requeue)
                            : amqp_basic_ack(t->conn, MQ_CHANNEL, a->tag, 0);
            if (s != AMQP_STATUS_OK) {
                set_why(t, "basic.%s failed: %s", a->nack ? "nack" : "ack", amqp_error_string2(s));
                rc = VN_EIO;
            }
        }
        free(a);
    }
    if (rc == 0 && closing && !t->cancel_sent && t->conn) {
        t->cancel_sent = 1;
        for (size_t q = 0; q < t->c->n_queues && rc == 0; q++) {
            amqp_basic_cancel_t m;
            m.consumer_tag = amqp_cstring_bytes(t->consumer_tag[q]);
            m.nowait = 0;
            int s = amqp_send_method(t->conn, MQ_CHANNEL, AMQP_BASIC_CANCEL_METHOD, &m);
            if (s != AMQP_STATUS_OK) {
                set_why(t, "basic.cancel failed: %s", amqp_error_string2(s));
                rc = VN_EIO;
            }
        }
    }
    return rc;
}

/*
 * basic.deliver: read the content, deep-copy everything into a mq_msg and
 * hand it to the loop (or nack it with requeue when closing). Returns 0 or VN_EIO.
 */
static int cons_on_deliver(struct mq_thread *t, const amqp_frame_t *f)
{
    struct mq_client *c = t->c;
    amqp_basic_deliver_t *d = f->payload.method.decoded;
    struct mq_msg *m = xcalloc(1, sizeof(*m));
    amqp_message_t am;
    int closing, rc = 0;

    init_amqp_pool(&m->pool, 1024);
    m->msg.headers = amqp_empty_table;
    m->msg.routing_key = bytes_dup(d->routing_key);
    m->msg.exchange = bytes_dup(d->exchange);
    m->msg.delivery_tag = d->delivery_tag;
    m->msg.redelivered = d->redelivered != 0;
    m->msg.generation = t->generation;
    m->msg.client = c;
    for (size_t q = 0; q < c->n_queues; q++)
        if (d->consumer_tag.len == strlen(t->consumer_tag[q]) &&
            memcmp(d->consumer_tag.bytes, t->consumer_tag[q], d->consumer_tag.len) == 0)
            m->msg.queue = c->queues[q];

    amqp_rpc_reply_t rr = amqp_read_message(t->conn, f->channel, &am, 0);
    if (rr.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        rc = on_broker_close(t, f->channel, &rr.reply);
        goto out;
    }
    if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_why(t, "reading a delivery", rr);
        rc = VN_EIO;
        goto out;
    }
    m->msg.len = am.body.len;
    m->msg.body = xmalloc(am.body.len + 1);
    if (am.body.len)
        memcpy(m->msg.body, am.body.bytes, am.body.len);
    m->msg.body[am.body.len] = '\0';
    if (am.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        m->msg.message_id = bytes_dup(am.properties.message_id);
    if (am.properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
        m->msg.content_type = bytes_dup(am.properties.content_type);
    if (am.properties._flags & AMQP_BASIC_HEADERS_FLAG) {
        int s = amqp_table_clone(&am.properties.headers, &m->msg.headers, &m->pool);
        if (s != AMQP_STATUS_OK) {
            m->msg.headers = amqp_empty_table;
            mq_log(t, VN_LOG_WARN, -1, "cannot copy headers of a delivery: %s",
                   amqp_error_string2(s));
        }
    }
    amqp_destroy_message(&am);

    pthread_mutex_lock(&c->lock);
    closing = c->closing;
    if (!closing)
        c->held++;
    pthread_mutex_unlock(&c->lock);
    if (closing) {
        /* Arrived after we stopped taking work: hand it back right away. */
        if (amqp_basic_nack(t->conn, MQ_CHANNEL, m->msg.delivery_tag, 0, 1) != AMQP_STATUS_OK) {
            set_why(t, "basic.nack failed");
            rc = VN_EIO;
        }
        goto out;
    }
    struct mq_event *ev = xcalloc(1, sizeof(*ev));
    ev->kind = MQ_EV_DELIVERY;
    ev->msg = m;
    m = NULL;
    post(c, ev);
out:
    msg_free(m);
    return rc;
}

/* Handle one frame on the consumer connection. Returns 0 or VN_EIO. */
static int cons_on_frame(struct mq_thread *t, const amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (f->payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD:
        return cons_on_deliver(t, f);
    case AMQP_BASIC_CANCEL_METHOD:
        set_why(t, "broker cancelled a consumer on queues '%s' (deleted or moved?)", t->c->queue);
        t->close_polite = 1;
        return VN_EIO;
    case AMQP_BASIC_CANCEL_OK_METHOD:
        return 0;
    }
    int rc = on_common_frame(t, f);
    if (rc == 0)
        vn_debug("amqp", "consumer ignores method 0x%08x", (unsigned)f->payload.method.id);
    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------------ */
/* the thread                                                               */

/*
 * Read and handle every frame rabbitmq-c can give without blocking (at most
 * MQ_PUMP_MAX). Calling it also lets rabbitmq-c send and check heartbeats.
 * Returns how many frames were handled, or VN_EIO with t->why set when the
 * connection is unusable.
 */
static int pump(struct mq_thread *t)
{
    int i;
    for (i = 0; i < MQ_PUMP_MAX; i++) {
        struct timeval zero = {0, 0};
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(t->conn, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            set_why(t, "connection lost: %s", amqp_error_string2(rc));
            return VN_EIO;
        }
        rc = t->role == MQ_ROLE_PUB ? pub_on_frame(t, &f) : cons_on_frame(t, &f);
        amqp_maybe_release_buffers(t->conn);
        if (rc)
            return rc;
    }
    return i;
}

/* How long the session may sleep in poll(): short enough that rabbitmq-c
 * gets to send heartbeats (every heartbeat seconds) in time. */
static int session_poll_ms(struct mq_thread *t)
{
    uint64_t ms = MQ_POLL_MAX_MS;
    if (t->c->heartbeat > 0)
        ms = min_u64(ms, (uint64_t)t->c->heartbeat * 500);
    return sleep_budget(t, ms);
}

/*
 * Run a connected session: send queued work, handle incoming frames, sleep in
 * poll() on {socket, eventfd}. Returns 1 when the thread should stop (the
 * connection still open), 0 when the connection was lost (t->why set).
 */
static int session(struct mq_thread *t)
{
    for (;;) {
        int rc = t->role == MQ_ROLE_PUB ? pub_send(t) : cons_flush(t);
        if (rc == 0)
            rc = pump(t);
        if (rc < 0)
            return 0;
        if (stop_wanted(t, 1))
            return 1;
        /* Frames handled may have opened the window (acks); frames already
         * read during a send or an RPC must not wait for the socket. */
        if (rc > 0 || amqp_data_in_buffer(t->conn) || amqp_frames_enqueued(t->conn))
            continue;
        thread_poll(t, amqp_get_sockfd(t->conn), session_poll_ms(t));
    }
}

/* Thread body: connect, run the session, reconnect with backoff until told to stop. */
static void *thread_main(void *arg)
{
    struct mq_thread *t = arg;

    for (;;) {
        if (stop_wanted(t, 0))
            break;
        if (conn_open(t) != 0) {
            uint64_t delay = next_delay(t);
            mq_log(t, VN_LOG_WARN, (int64_t)delay, "%s %s; retrying in %llu ms",
                   role_names[t->role], t->why, (unsigned long long)delay);
            if (backoff_sleep(t, delay))
                break;
            continue;
        }
        t->attempt = 0;
        mq_log(t, VN_LOG_INFO, -1, "%s connected", role_names[t->role]);
        post_simple(t, MQ_EV_STATE, 1);

        int stop = session(t);
        post_simple(t, MQ_EV_STATE, 0);
        if (stop) {
            if (t->role == MQ_ROLE_CONS)
                cons_flush(t); /* acks queued since the last round */
            conn_close(t, 1);
            break;
        }
        uint64_t delay = next_delay(t);
        mq_log(t, VN_LOG_WARN, (int64_t)delay, "%s %s; reconnecting in %llu ms",
               role_names[t->role], t->why, (unsigned long long)delay);
        conn_close(t, t->close_polite);
        if (t->role == MQ_ROLE_PUB)
            pub_after_loss(t);
        if (backoff_sleep(t, delay))
            break;
    }
    if (t->role == MQ_ROLE_PUB)
        pub_finish(t);
    mq_log(t, VN_LOG_INFO, -1, "%s thread stopped", role_names[t->role]);
    post_simple(t, MQ_EV_EXIT, 0); /* last touch of c by this thread */
    return NULL;
}

/* Create thread t with every signal blocked (signals belong to the loop). */
static int thread_start(struct mq_thread *t)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&t->tid, NULL, thread_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return VN_EIO;
    t->started = 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* loop side                                                                */

/* Free the client and whatever its queues still hold; threads must be gone. */
static void client_free(struct mq_client *c)
{
    struct mq_pub *p, *pn;
    struct mq_ack *a, *an;
    struct mq_event *e, *en;

    for (p = c->pending; p; p = pn) {
        pn = p->next;
        pub_free(p);
    }
    for (a = c->acks; a; a = an) {
        an = a->next;
        free(a);
    }
    for (e = c->events; e; e = en) { /* empty once the threads are joined */
        en = e->next;
        pub_free(e->pub);
        msg_free(e->msg);
        free(e);
    }
    if (c->pub.efd >= 0)
        close(c->pub.efd);
    if (c->cons.efd >= 0)
        close(c->cons.efd);
    pthread_mutex_destroy(&c->lock);
    free(c->url_buf);
    free(c->name);
    free(c->queue);
    for (size_t q = 0; q < c->n_queues; q++)
        free(c->queues[q]);
    free(c);
}

/* Queue an ack or nack for the consumer thread and free the message. */
static void settle_msg(struct mq_message *msg, int nack, int requeue)
{
    struct mq_client *c = msg->client;
    struct mq_ack *a = xcalloc(1, sizeof(*a));
    size_t held;

    a->tag = msg->delivery_tag;
    a->generation = msg->generation;
    a->nack = nack;
    a->requeue = requeue;
    pthread_mutex_lock(&c->lock);
    if (c->acks_tail)
        c->acks_tail->next = a;
    else
        c->acks = a;
    c->acks_tail = a;
    held = --c->held;
    pthread_mutex_unlock(&c->lock);
    wake(c->cons.efd);
    msg_free((struct mq_msg *)msg);
    if (c->async_closed && held == 0 && !c->in_done)
        client_free(c);
}

void mq_consume_pause(struct mq_client *c)
{
    if (c == NULL || !c->cons.started)
        return;
    pthread_mutex_lock(&c->lock);
    c->paused = 1;
    pthread_mutex_unlock(&c->lock);
    wake(c->cons.efd);
}

void mq_ack(struct mq_message *msg)
{
    if (msg)
        settle_msg(msg, 0, 0);
}

void mq_nack(struct mq_message *msg, int requeue)
{
    if (msg)
        settle_msg(msg, 1, requeue != 0);
}

/* The async handle is closed: call done, then free c unless deliveries are still held. */
static void on_async_closed(uv_handle_t *h)
{
    struct mq_client *c = h->data;
    size_t held;

    c->in_done = 1; /* done may ack held messages: do not free c under it */
    if (c->done)
        c->done(c->done_ud);
    c->in_done = 0;
    c->async_closed = 1;
    pthread_mutex_lock(&c->lock);
    held = c->held;
    pthread_mutex_unlock(&c->lock);
    if (held == 0)
        client_free(c);
}

/* Once closing and every started thread has said goodbye: join, close the handle. */
static void maybe_finish(struct mq_client *c)
{
    if (!c->close_called || c->async_closing)
        return;
    if (!c->pub.exited || (c->cons.started && !c->cons.exited))
        return;
    pthread_join(c->pub.tid, NULL);
    if (c->cons.started)
        pthread_join(c->cons.tid, NULL);
    c->async_closing = 1;
    uv_close((uv_handle_t *)&c->async, on_async_closed);
}

/* Run the callback for one event from a thread; frees what the event carried. */
static void dispatch(struct mq_client *c, struct mq_event *ev)
{
    switch (ev->kind) {
    case MQ_EV_CONFIRM:
        if (ev->pub->cb)
            ev->pub->cb(ev->pub->ud, ev->pub->ok, ev->pub->why);
        pub_free(ev->pub);
        break;
    case MQ_EV_DELIVERY:
        if (c->close_called)
            mq_nack(&ev->msg->msg, 1); /* we stopped taking work */
        else
            c->on_message(&ev->msg->msg, c->msg_ud);
        break;
    case MQ_EV_STATE:
        if (ev->role == MQ_ROLE_PUB)
            c->pub_connected = ev->connected;
        else
            c->cons_connected = ev->connected;
        if (c->on_state)
            c->on_state(c->ud, role_names[ev->role], ev->connected);
        break;
    case MQ_EV_EXIT:
        if (ev->role == MQ_ROLE_PUB)
            c->pub.exited = 1;
        else
            c->cons.exited = 1;
        break;
    }
}

/* The threads posted something: run the callbacks, in order. */
static void on_async(uv_async_t *h)
{
    struct mq_client *c = h->data;
    struct mq_event *ev, *next;

    pthread_mutex_lock(&c->lock);
    ev = c->events;
    c->events = c->events_tail = NULL;
    pthread_mutex_unlock(&c->lock);
    for (; ev; ev = next) {
        next = ev->next;
        dispatch(c, ev);
        free(ev);
    }
    maybe_finish(c);
}

/* Free c before its async handle was initialised or right after (no thread). */
static void on_async_closed_early(uv_handle_t *h)
{
    client_free(h->data);
}

struct mq_client *mq_client_new(uv_loop_t *loop, const struct mq_options *opt,
                                mq_topology_fn topology, mq_state_cb on_state, void *ud)
{
    struct mq_client *c = NULL;
    char err[160];

    if (loop == NULL || opt == NULL) {
        vn_error("amqp", "mq_client_new: loop and options are required");
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->pub.efd = c->cons.efd = -1;
    pthread_mutex_init(&c->lock, NULL);
    if (mq__parse_url(opt->url, &c->url_buf, &c->info, err, sizeof(err)) != 0) {
        vn_error("amqp", "%s", err);
        client_free(c);
        return NULL;
    }
    c->name = opt->name ? xstrdup(opt->name) : NULL;
    if (opt->heartbeat_s == 0)
        c->heartbeat = MQ_DEFAULT_HEARTBEAT;
    else if (opt->heartbeat_s < 0)
        c->heartbeat = 0;
    else
        c->heartbeat = (int)min_u64((uint64_t)opt->heartbeat_s, UINT16_MAX);
    c->reconnect_max_ms =
        opt->reconnect_max_ms > 0 ? (uint64_t)opt->reconnect_max_ms : MQ_DEFAULT_RECONNECT;
    c->topology = topology;
    c->on_state = on_state;
    c->ud = ud;
    c->loop = loop;
    c->pub.c = c->cons.c = c;
    c->pub.role = MQ_ROLE_PUB;
    c->cons.role = MQ_ROLE_CONS;
    c->pub.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->cons.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->pub.efd < 0 || c->cons.efd < 0) {
        vn_error("amqp", "eventfd failed");
        client_free(c);
        return NULL;
    }
    if (uv_async_init(loop, &c->async, on_async) != 0) {
        vn_error("amqp", "uv_async_init failed");
        client_free(c);
        return NULL;
    }
    c->async.data = c;
    if (thread_start(&c->pub) != 0) {
        vn_error("amqp", "cannot start the publisher thread");
        uv_close((uv_handle_t *)&c->async, on_async_closed_early);
        return NULL;
    }
    return c;
}

int mq_consume(struct mq_client *c, const char *queue, uint16_t prefetch, mq_message_cb on_message,
               void *ud)
{
    if (c == NULL || queue == NULL || on_message == NULL || *queue == '\0')
        return VN_EINVAL;
    if (c->close_called)
        return VN_ESTATE;
    if (c->cons.started || c->queue)
        return VN_ECONFLICT;
    for (const char *p = queue; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > MQ_SHORTSTR_MAX || c->n_queues == MQ_MAX_QUEUES) {
            for (size_t q = 0; q < c->n_queues; q++)
                free(c->queues[q]);
            c->n_queues = 0;
            return VN_EINVAL;
        }
        c->queues[c->n_queues++] = xstrndup(p, n);
        p += n + (p[n] == ',');
    }
    c->queue = xstrdup(queue);
    c->prefetch = prefetch;
    c->on_message = on_message;
    c->msg_ud = ud;
    if (thread_start(&c->cons) != 0) {
        vn_error("amqp", "cannot start the consumer thread");
        return VN_EIO;
    }
    return 0;
}

int mq_publish(struct mq_client *c, const char *exchange, const char *routing_key,
               const char *message_id, const amqp_table_t *headers, const void *body, size_t len,
               mq_confirm_cb cb, void *ud)
{
    struct mq_pub *p = NULL;
    int err = VN_EINVAL;

    if (c == NULL || routing_key == NULL || (body == NULL && len > 0))
        goto out;
    if (exchange == NULL)
        exchange = "";
    if (strlen(exchange) > MQ_SHORTSTR_MAX || strlen(routing_key) > MQ_SHORTSTR_MAX ||
        (message_id && strlen(message_id) > MQ_SHORTSTR_MAX))
        goto out;
    p = xcalloc(1, sizeof(*p));
    init_amqp_pool(&p->pool, 512);
    p->headers = amqp_empty_table;
    p->exchange = xstrdup(exchange);
    p->routing_key = xstrdup(routing_key);
    p->message_id = message_id ? xstrdup(message_id) : NULL;
    if (headers && headers->num_entries > 0) {
        if (amqp_table_clone(headers, &p->headers, &p->pool) != AMQP_STATUS_OK)
            goto out;
        p->content_type = mq__table_get_str(headers, "content_type");
        if (p->content_type && strlen(p->content_type) > MQ_SHORTSTR_MAX)
            goto out;
    }
    if (p->content_type == NULL)
        p->content_type = xstrdup("application/json");
    p->body = xmalloc(len);
    if (len)
        memcpy(p->body, body, len);
    p->len = len;
    p->cb = cb;
    p->ud = ud;

    pthread_mutex_lock(&c->lock);
    if (c->closing) {
        err = VN_ESTATE;
    } else {
        if (c->pending_tail)
            c->pending_tail->next = p;
        else
            c->pending = p;
        c->pending_tail = p;
        p = NULL;
        err = 0;
    }
    pthread_mutex_unlock(&c->lock);
    if (err == 0)
        wake(c->pub.efd);
out:
    pub_free(p);
    return err;
}

int mq_is_connected(const struct mq_client *c)
{
    if (c == NULL)
        return 0;
    return c->pub_connected && (!c->cons.started || c->cons_connected);
}

void mq_client_close(struct mq_client *c, int64_t timeout_ms, void (*done)(void *ud), void *ud)
{
    if (c == NULL)
        return;
    if (c->close_called) {
        vn_warn("amqp", "mq_client_close called twice; ignored");
        return;
    }
    c->close_called = 1;
    c->done = done;
    c->done_ud = ud;
    if (timeout_ms < 0)
        timeout_ms = 0;
    pthread_mutex_lock(&c->lock);
    c->closing = 1;
    c->close_deadline = vn_now_ms() + (uint64_t)timeout_ms;
    pthread_mutex_unlock(&c->lock);
    wake(c->pub.efd);
    wake(c->cons.efd);
}
