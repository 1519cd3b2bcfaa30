#include "redis.h"
#include "common.h"
#include "log.h"

#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum rds_state { RDS_IDLE, RDS_CONNECTING, RDS_HANDSHAKE, RDS_READY, RDS_CLOSING };

struct rds_client {
    uv_loop_t *loop;
    struct rds_url url;
    struct rds_opts opt;
    redisAsyncContext *ac;
    enum rds_state state;
    unsigned attempt;
    uint64_t connect_started;
    uint64_t ping_sent; /* 0 = no ping outstanding */
    uv_timer_t retry_timer;
    uv_timer_t health_timer;
    int handles_open;
    char last_error[256];
};

struct rds_call {
    struct rds_client *c;
    rds_reply_fn cb;
    void *ud;
};

/*
 * Our own libuv glue for hiredis. hiredis 0.14's adapter drops poll errors:
 * libuv reports a refused connect as status UV_EBADF and stops the handle,
 * the adapter returns early, and hiredis never learns the connect failed. Here
 * an error is passed on as read+write readiness so hiredis sees the socket error.
 */
struct rds_ev {
    redisAsyncContext *ac;
    uv_poll_t poll;
    int events;
};

static void ev_poll_cb(uv_poll_t *h, int status, int events)
{
    struct rds_ev *e = h->data;
    if (status < 0)
        events = e->events; /* let hiredis read the pending socket error */
    if (e->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
    if (e->ac && (events & UV_READABLE))
        redisAsyncHandleRead(e->ac);
}

static void ev_update(struct rds_ev *e)
{
    if (e->events)
        uv_poll_start(&e->poll, e->events, ev_poll_cb);
    else
        uv_poll_stop(&e->poll);
}

static void ev_add_read(void *p)
{
    struct rds_ev *e = p;
    e->events |= UV_READABLE;
    ev_update(e);
}

static void ev_del_read(void *p)
{
    struct rds_ev *e = p;
    e->events &= ~UV_READABLE;
    ev_update(e);
}

static void ev_add_write(void *p)
{
    struct rds_ev *e = p;
    e->events |= UV_WRITABLE;
    ev_update(e);
}

static void ev_del_write(void *p)
{
    struct rds_ev *e = p;
    e->events &= ~UV_WRITABLE;
    ev_update(e);
}

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *p)
{
    struct rds_ev *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct rds_ev *e = xcalloc(1, sizeof(*e));
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

int rds_parse_url(const char *url, struct rds_url *out, char *err, size_t errlen)
{
    const char *p = NULL, *hostp = NULL, *at = NULL, *end = NULL;
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "URL must start with redis://");
        return VN_EINVAL;
    }
    p = url + 8;
    end = p + strcspn(p, "/?#");
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    hostp = p;
    if (at) {
        /* RFC 3986 userinfo: "user:password" or just "user". Without a ':'
         * there is no password (which is also what redaction assumes). */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t un = (size_t)((colon ? colon : at) - p);
        size_t pn = colon ? (size_t)(at - colon - 1) : 0;
        if (un >= sizeof(out->user) || pn >= sizeof(out->password)) {
            snprintf(err, errlen, "user name or password is too long");
            return VN_EINVAL;
        }
        memcpy(out->user, p, un);
        if (colon)
            memcpy(out->password, colon + 1, pn);
        hostp = at + 1;
    }
    const char *colon = memchr(hostp, ':', (size_t)(end - hostp));
    const char *hend = colon ? colon : end;
    size_t hn = (size_t)(hend - hostp);
    if (hn == 0 || hn >= sizeof(out->host)) {
        snprintf(err, errlen, "missing or too long host");
        return VN_EINVAL;
    }
    memcpy(out->host, hostp, hn);
    if (colon) {
        char *e = NULL;
        long port = strtol(colon + 1, &e, 10);
        if (e != end || port < 1 || port > 65535) {
            snprintf(err, errlen, "port must be a number from 1 to 65535");
            return VN_EINVAL;
        }
        out->port = (int)port;
    }
    if (*end == '/' && end[1] != '\0') {
        char *e = NULL;
        long db = strtol(end + 1, &e, 10);
        if (e == end + 1 || (*e != '\0' && *e != '?') || db < 0 || db > 1000000) {
            snprintf(err, errlen, "database after '/' must be a number");
            return VN_EINVAL;
        }
        out->db = (int)db;
    }
    return 0;
}

static void start_connect(struct rds_client *c);

static void on_retry(uv_timer_t *t)
{
    start_connect(t->data);
}

static void set_error(struct rds_client *c, const char *what, const char *detail)
{
    snprintf(c->last_error, sizeof(c->last_error), "%s: %s", what, detail ? detail : "");
}

static void schedule_retry(struct rds_client *c)
{
    if (c->state == RDS_CLOSING)
        return;
    c->state = RDS_IDLE;
    uint64_t delay =
        vn_backoff_ms(c->attempt, 100, (uint64_t)c->opt.reconnect_max_ms, vn_random_u32());
    if (c->attempt < 30)
        c->attempt++;
    vn_warn("redis", "%s; reconnecting to %s:%d in %llu ms", c->last_error, c->url.host,
            c->url.port, (unsigned long long)delay);
    uv_timer_start(&c->retry_timer, on_retry, delay, 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rds_client *c = ac->data;
    if (c == NULL)
        return;
    c->ac = NULL;
    c->ping_sent = 0;
    if (c->state == RDS_CLOSING)
        return;
    if (status != REDIS_OK)
        set_error(c, "connection lost", ac->errstr);
    else
        set_error(c, "connection closed", "");
    schedule_retry(c);
}

static void on_handshake_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct rds_client *c = ac->data;
    redisReply *reply = r;
    const char *step = priv;
    if (c == NULL || c->state != RDS_HANDSHAKE)
        return;
    if (reply == NULL)
        return; /* disconnect callback follows */
    if (reply->type == REDIS_REPLY_ERROR) {
        set_error(c, step, reply->str);
        vn_error("redis", "%s failed: %s", step, reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (strcmp(step, "PING") == 0) {
        c->state = RDS_READY;
        c->attempt = 0;
        c->last_error[0] = '\0';
        vn_info("redis", "connected to %s:%d db %d", c->url.host, c->url.port, c->url.db);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct rds_client *c = ac->data;
    if (c == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        c->ac = NULL;
        set_error(c, "connect failed", ac->errstr);
        schedule_retry(c);
        return;
    }
    c->state = RDS_HANDSHAKE;
    if (c->url.password[0] && c->url.user[0]) /* Redis 6 ACL user */
        redisAsyncCommand(ac, on_handshake_reply, "AUTH", "AUTH %s %s", c->url.user,
                          c->url.password);
    else if (c->url.password[0])
        redisAsyncCommand(ac, on_handshake_reply, "AUTH", "AUTH %s", c->url.password);
    if (c->url.db)
        redisAsyncCommand(ac, on_handshake_reply, "SELECT", "SELECT %d", c->url.db);
    redisAsyncCommand(ac, on_handshake_reply, "PING", "PING");
}

static void start_connect(struct rds_client *c)
{
    if (c->state == RDS_CLOSING)
        return;
    redisAsyncContext *ac = redisAsyncConnect(c->url.host, c->url.port);
    if (ac == NULL) {
        set_error(c, "connect failed", "out of memory");
        schedule_retry(c);
        return;
    }
    if (ac->err) {
        set_error(c, "connect failed", ac->errstr);
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    ac->data = c;
    if (ev_attach(ac, c->loop) != 0) {
        set_error(c, "connect failed", "cannot watch socket");
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = RDS_CONNECTING;
    c->connect_started = vn_now_ms();
}

static void on_ping(redisAsyncContext *ac, void *r, void *priv)
{
    struct rds_client *c = ac->data;
    (void)priv;
    if (c == NULL || r == NULL)
        return;
    c->ping_sent = 0;
}

static void on_health(uv_timer_t *t)
{
    struct rds_client *c = t->data;
    uint64_t now = vn_now_ms();
    if (c->state == RDS_CONNECTING && c->ac &&
        now - c->connect_started > (uint64_t)c->opt.connect_timeout_ms) {
        /* Never connected, so hiredis calls no disconnect callback: retry here. */
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
        set_error(c, "connect timed out", "");
        schedule_retry(c);
        return;
    }
    if (c->state != RDS_READY || c->ac == NULL)
        return;
    if (c->ping_sent) {
        if (now - c->ping_sent > 3 * (uint64_t)c->opt.health_interval_ms) {
            set_error(c, "server stopped answering", "PING timed out");
            vn_warn("redis", "PING unanswered for %llu ms; dropping the connection",
                    (unsigned long long)(now - c->ping_sent));
            c->state = RDS_HANDSHAKE; /* not ready while it goes down */
            redisAsyncDisconnect(c->ac);
        }
        return;
    }
    c->ping_sent = now;
    redisAsyncCommand(c->ac, on_ping, NULL, "PING");
}

struct rds_client *rds_new(uv_loop_t *loop, const struct rds_opts *opt, char *err, size_t errlen)
{
    struct rds_client *c = xcalloc(1, sizeof(*c));
    char why[200];
    if (rds_parse_url(opt->url, &c->url, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "REDIS_URL: %s", why);
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->opt = *opt;
    c->opt.url = NULL;
    if (c->opt.health_interval_ms <= 0)
        c->opt.health_interval_ms = 1000;
    if (c->opt.reconnect_max_ms <= 0)
        c->opt.reconnect_max_ms = 5000;
    if (c->opt.connect_timeout_ms <= 0)
        c->opt.connect_timeout_ms = 3000;
    uv_timer_init(loop, &c->retry_timer);
    uv_timer_init(loop, &c->health_timer);
    c->retry_timer.data = c;
    c->health_timer.data = c;
    c->handles_open = 2;
    uint64_t tick = (uint64_t)c->opt.health_interval_ms;
    if (tick > 500)
        tick = 500; /* also drives the connect timeout, so keep it short */
    uv_timer_start(&c->health_timer, on_health, tick, tick);
    start_connect(c);
    return c;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct rds_call *call = priv;
    (void)ac;
    if (call->cb)
        call->cb(call->c, r, call->ud);
    free(call);
}

int rds_command(struct rds_client *c, rds_reply_fn cb, void *ud, const char *fmt, ...)
{
    if (c->state == RDS_CLOSING)
        return VN_ESTATE;
    if (c->state != RDS_READY || c->ac == NULL)
        return VN_EDOWN;
    struct rds_call *call = xmalloc(sizeof(*call));
    call->c = c;
    call->cb = cb;
    call->ud = ud;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(c->ac, on_reply, call, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        free(call);
        return VN_EDOWN;
    }
    return 0;
}

int rds_command_argv(struct rds_client *c, rds_reply_fn cb, void *ud, int argc, const char **argv,
                     const size_t *argvlen)
{
    if (c->state == RDS_CLOSING)
        return VN_ESTATE;
    if (c->state != RDS_READY || c->ac == NULL)
        return VN_EDOWN;
    struct rds_call *call = xmalloc(sizeof(*call));
    call->c = c;
    call->cb = cb;
    call->ud = ud;
    if (redisAsyncCommandArgv(c->ac, on_reply, call, argc, argv, argvlen) != REDIS_OK) {
        free(call);
        return VN_EDOWN;
    }
    return 0;
}

int rds_is_ready(const struct rds_client *c)
{
    return c && c->state == RDS_READY;
}

const char *rds_last_error(const struct rds_client *c)
{
    return c->last_error;
}

static void handle_closed(uv_handle_t *h)
{
    struct rds_client *c = h->data;
    if (--c->handles_open == 0)
        free(c);
}

void rds_close(struct rds_client *c)
{
    if (c == NULL || c->state == RDS_CLOSING)
        return;
    c->state = RDS_CLOSING;
    uv_timer_stop(&c->retry_timer);
    uv_timer_stop(&c->health_timer);
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        /* Pending command callbacks run with NULL replies; ours stay valid
         * because c is freed only after the timers close, below. */
        redisAsyncFree(ac);
    }
    uv_close((uv_handle_t *)&c->retry_timer, handle_closed);
    uv_close((uv_handle_t *)&c->health_timer, handle_closed);
}
