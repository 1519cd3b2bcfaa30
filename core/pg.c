#include "pg.h"
#include "common.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum pgc_state { PGC_IDLE, PGC_CONNECTING, PGC_READY, PGC_CLOSING };

struct pgc_query {
    struct pgc_query *next;
    const char *name; /* prepared statement name (a static string), or NULL */
    int preparing;    /* running: the PREPARE for name, not the query */
    char *sql;
    int nparams;
    char **values;
    pgc_result_fn cb;
    void *ud;
};

/* Poll wrappers are freed asynchronously (uv_close), so a wrapper points at
 * its client only while current; a retired one has c == NULL. */
struct pgc_poll {
    uv_poll_t handle;
    int fd;
    struct pgc_client *c;
};

#define PGC_MAX_PREPARED 32

struct pgc_client {
    uv_loop_t *loop;
    char *conninfo;
    struct pgc_opts opt;
    PGconn *conn;
    enum pgc_state state;
    unsigned attempt;
    uint64_t connect_started;
    uint64_t ping_sent;
    struct pgc_poll *poll;
    struct pgc_query *head, *tail; /* head is running when running != 0 */
    int running;
    int flushing;
    PGresult *last;                         /* latest result of the running query */
    const char *prepared[PGC_MAX_PREPARED]; /* names prepared on this connection */
    size_t n_prepared;
    uv_timer_t retry_timer;
    uv_timer_t health_timer;
    int handles_open;
    char last_error[512];
};

static void start_connect(struct pgc_client *c);
static void on_poll(uv_poll_t *h, int status, int events);

static void query_free(struct pgc_query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->values[i]);
    free(q->values);
    free(q->sql);
    free(q);
}

/* Copy libpq's message without its trailing newline. */
static void set_error(struct pgc_client *c, const char *what, const char *detail)
{
    snprintf(c->last_error, sizeof(c->last_error), "%s%s%s", what, detail && *detail ? ": " : "",
             detail ? detail : "");
    size_t n = strlen(c->last_error);
    while (n && (c->last_error[n - 1] == '\n' || c->last_error[n - 1] == ' '))
        c->last_error[--n] = '\0';
}

static void poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void unwatch(struct pgc_client *c)
{
    if (c->poll) {
        c->poll->c = NULL;
        uv_close((uv_handle_t *)&c->poll->handle, poll_closed);
        c->poll = NULL;
    }
}

/* Watch fd for events, replacing the poll handle when libpq changed sockets. */
static int watch(struct pgc_client *c, int events)
{
    int fd = PQsocket(c->conn);
    if (fd < 0)
        return -1;
    if (c->poll && c->poll->fd != fd)
        unwatch(c);
    if (c->poll == NULL) {
        struct pgc_poll *p = xcalloc(1, sizeof(*p));
        if (uv_poll_init(c->loop, &p->handle, fd) != 0) {
            free(p);
            return -1;
        }
        p->fd = fd;
        p->c = c;
        p->handle.data = p;
        c->poll = p;
    }
    return uv_poll_start(&c->poll->handle, events, on_poll);
}

/* Fail every queued query with msg (running one first). */
static void fail_all(struct pgc_client *c, const char *msg)
{
    struct pgc_query *q = c->head;
    c->head = c->tail = NULL;
    c->running = 0;
    c->flushing = 0;
    if (c->last) {
        PQclear(c->last);
        c->last = NULL;
    }
    while (q) {
        struct pgc_query *next = q->next;
        if (q->cb)
            q->cb(c, NULL, msg, q->ud);
        query_free(q);
        q = next;
    }
}

static void on_retry(uv_timer_t *t)
{
    start_connect(t->data);
}

/* Drop the connection, fail what was queued, and schedule a reconnect. */
static void connection_lost(struct pgc_client *c)
{
    int was_ready = c->state == PGC_READY;
    unwatch(c);
    if (c->conn) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    c->ping_sent = 0;
    c->state = PGC_IDLE;
    c->n_prepared = 0; /* a new connection has none */
    fail_all(c, c->last_error);
    uint64_t delay =
        vn_backoff_ms(c->attempt, 100, (uint64_t)c->opt.reconnect_max_ms, vn_random_u32());
    if (c->attempt < 30)
        c->attempt++;
    vn_warn("pg", "%s%s; reconnecting in %llu ms", was_ready ? "" : "still down: ", c->last_error,
            (unsigned long long)delay);
    uv_timer_start(&c->retry_timer, on_retry, delay, 0);
}

static int is_prepared(const struct pgc_client *c, const char *name)
{
    for (size_t i = 0; i < c->n_prepared; i++)
        if (strcmp(c->prepared[i], name) == 0)
            return 1;
    return 0;
}

static void run_next(struct pgc_client *c)
{
    if (c->state != PGC_READY || c->running || c->head == NULL)
        return;
    struct pgc_query *q = c->head;
    int ok;
    if (q->name && !is_prepared(c, q->name) && c->n_prepared < PGC_MAX_PREPARED) {
        q->preparing = 1; /* finish_running then sends the query itself */
        ok = PQsendPrepare(c->conn, q->name, q->sql, q->nparams, NULL);
    } else if (q->name && is_prepared(c, q->name)) {
        ok = PQsendQueryPrepared(c->conn, q->name, q->nparams, (const char *const *)q->values, NULL,
                                 NULL, 0);
    } else {
        ok = PQsendQueryParams(c->conn, q->sql, q->nparams, NULL, (const char *const *)q->values,
                               NULL, NULL, 0);
    }
    if (!ok) {
        set_error(c, "sending query failed", PQerrorMessage(c->conn));
        if (PQstatus(c->conn) == CONNECTION_BAD) {
            connection_lost(c);
            return;
        }
        c->head = q->next;
        if (c->head == NULL)
            c->tail = NULL;
        if (q->cb)
            q->cb(c, NULL, c->last_error, q->ud);
        query_free(q);
        run_next(c);
        return;
    }
    c->running = 1;
    int f = PQflush(c->conn);
    if (f < 0) {
        set_error(c, "connection lost", PQerrorMessage(c->conn));
        connection_lost(c);
        return;
    }
    c->flushing = f == 1;
    watch(c, UV_READABLE | (c->flushing ? UV_WRITABLE : 0));
}

/* The running query produced all its results: report and start the next. */
static void finish_running(struct pgc_client *c)
{
    struct pgc_query *q = c->head;
    PGresult *res = c->last;
    c->last = NULL;
    if (q->preparing) {
        q->preparing = 0;
        c->running = 0;
        if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
            c->prepared[c->n_prepared++] = q->name;
            PQclear(res);
            run_next(c); /* the query itself, now prepared */
            return;
        }
        /* the statement does not prepare: report as the query's error */
    }
    c->head = q->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->running = 0;
    const char *err = NULL;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (res == NULL)
        err = "no result";
    else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
        err = PQresultErrorMessage(res);
    if (q->cb)
        q->cb(c, res, err, q->ud);
    else if (err)
        vn_warn("pg", "query failed: %s", err);
    if (res)
        PQclear(res);
    query_free(q);
    run_next(c);
}

static void on_connected(struct pgc_client *c)
{
    c->state = PGC_READY;
    c->attempt = 0;
    c->last_error[0] = '\0';
    PQsetnonblocking(c->conn, 1);
    vn_info("pg", "connected to %s:%s database %s", PQhost(c->conn), PQport(c->conn),
            PQdb(c->conn));
    watch(c, UV_READABLE);
    run_next(c);
}

static void advance_connect(struct pgc_client *c)
{
    switch (PQconnectPoll(c->conn)) {
    case PGRES_POLLING_READING:
        watch(c, UV_READABLE);
        return;
    case PGRES_POLLING_WRITING:
        watch(c, UV_WRITABLE);
        return;
    case PGRES_POLLING_OK:
        on_connected(c);
        return;
    default:
        set_error(c, "connect failed", PQerrorMessage(c->conn));
        connection_lost(c);
        return;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pgc_client *c = ((struct pgc_poll *)h->data)->c;
    if (c == NULL)
        return;
    if (c->state == PGC_CONNECTING) {
        advance_connect(c);
        return;
    }
    if (c->state != PGC_READY)
        return;
    if (status < 0)
        events = UV_READABLE; /* let libpq read the socket error */
    if ((events & UV_WRITABLE) && c->flushing) {
        int f = PQflush(c->conn);
        if (f < 0) {
            set_error(c, "connection lost", PQerrorMessage(c->conn));
            connection_lost(c);
            return;
        }
        c->flushing = f == 1;
        if (!c->flushing)
            watch(c, UV_READABLE);
    }
    if (!(events & UV_READABLE))
        return;
    if (!PQconsumeInput(c->conn)) {
        set_error(c, "connection lost", PQerrorMessage(c->conn));
        connection_lost(c);
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->conn)) != NULL)
        PQfreemem(n);
    while (c->running && !PQisBusy(c->conn)) {
        PGresult *r = PQgetResult(c->conn);
        if (r == NULL) {
            finish_running(c);
            if (c->state != PGC_READY)
                return;
            continue;
        }
        if (c->last)
            PQclear(c->last);
        c->last = r;
    }
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        set_error(c, "connection lost", PQerrorMessage(c->conn));
        connection_lost(c);
    }
}

static void start_connect(struct pgc_client *c)
{
    if (c->state == PGC_CLOSING)
        return;
    c->conn = PQconnectStart(c->conninfo);
    if (c->conn == NULL) {
        set_error(c, "connect failed", "out of memory");
        connection_lost(c);
        return;
    }
    if (PQstatus(c->conn) == CONNECTION_BAD) {
        set_error(c, "connect failed", PQerrorMessage(c->conn));
        connection_lost(c);
        return;
    }
    c->state = PGC_CONNECTING;
    c->connect_started = vn_now_ms();
    if (watch(c, UV_WRITABLE) != 0) {
        set_error(c, "connect failed", "cannot watch socket");
        connection_lost(c);
    }
}

static void on_ping(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    (void)res;
    (void)err;
    (void)ud;
    c->ping_sent = 0;
}

static void on_health(uv_timer_t *t)
{
    struct pgc_client *c = t->data;
    uint64_t now = vn_now_ms();
    if (c->state == PGC_CONNECTING &&
        now - c->connect_started > (uint64_t)c->opt.connect_timeout_ms) {
        set_error(c, "connect timed out", "");
        connection_lost(c);
        return;
    }
    if (c->state != PGC_READY)
        return;
    if (c->ping_sent) {
        if (now - c->ping_sent > 3 * (uint64_t)c->opt.health_interval_ms) {
            set_error(c, "server stopped answering", "SELECT 1 timed out");
            connection_lost(c);
        }
        return;
    }
    if (now - c->connect_started < (uint64_t)c->opt.health_interval_ms)
        return;
    if (c->head == NULL && pgc_query(c, "SELECT 1", 0, NULL, on_ping, NULL) == 0)
        c->ping_sent = now;
}

struct pgc_client *pgc_new(uv_loop_t *loop, const struct pgc_opts *opt)
{
    struct pgc_client *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->conninfo = xstrdup(opt->conninfo);
    c->opt = *opt;
    c->opt.conninfo = NULL;
    if (c->opt.health_interval_ms <= 0)
        c->opt.health_interval_ms = 1000;
    if (c->opt.reconnect_max_ms <= 0)
        c->opt.reconnect_max_ms = 5000;
    if (c->opt.connect_timeout_ms <= 0)
        c->opt.connect_timeout_ms = 5000;
    uv_timer_init(loop, &c->retry_timer);
    uv_timer_init(loop, &c->health_timer);
    c->retry_timer.data = c;
    c->health_timer.data = c;
    c->handles_open = 2;
    uint64_t tick = (uint64_t)c->opt.health_interval_ms;
    if (tick > 500)
        tick = 500;
    uv_timer_start(&c->health_timer, on_health, tick, tick);
    start_connect(c);
    return c;
}

int pgc_query(struct pgc_client *c, const char *sql, int nparams, const char *const *values,
              pgc_result_fn cb, void *ud)
{
    return pgc_query_prepared(c, NULL, sql, nparams, values, cb, ud);
}

int pgc_query_prepared(struct pgc_client *c, const char *name, const char *sql, int nparams,
                       const char *const *values, pgc_result_fn cb, void *ud)
{
    if (c->state == PGC_CLOSING)
        return VN_ESTATE;
    if (c->state != PGC_READY)
        return VN_EDOWN;
    struct pgc_query *q = xcalloc(1, sizeof(*q));
    q->name = name;
    q->sql = xstrdup(sql);
    q->nparams = nparams;
    if (nparams > 0) {
        q->values = xcalloc((size_t)nparams, sizeof(char *));
        for (int i = 0; i < nparams; i++)
            q->values[i] = values[i] ? xstrdup(values[i]) : NULL;
    }
    q->cb = cb;
    q->ud = ud;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    run_next(c);
    return 0;
}

int pgc_is_ready(const struct pgc_client *c)
{
    return c && c->state == PGC_READY;
}

const char *pgc_last_error(const struct pgc_client *c)
{
    return c->last_error;
}

static void handle_closed(uv_handle_t *h)
{
    struct pgc_client *c = h->data;
    if (--c->handles_open == 0) {
        free(c->conninfo);
        free(c);
    }
}

void pgc_close(struct pgc_client *c)
{
    if (c == NULL || c->state == PGC_CLOSING)
        return;
    c->state = PGC_CLOSING;
    uv_timer_stop(&c->retry_timer);
    uv_timer_stop(&c->health_timer);
    unwatch(c);
    if (c->conn) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    fail_all(c, "client closing");
    uv_close((uv_handle_t *)&c->retry_timer, handle_closed);
    uv_close((uv_handle_t *)&c->health_timer, handle_closed);
}
