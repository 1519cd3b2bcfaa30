/*
 * core/amqp against a real RabbitMQ (scripts/services up rabbitmq): publisher
 * confirms and manual acks round trip, surviving a broker restart, nack and
 * redelivery, unroutable and refused publishes, and closing with work pending.
 *
 * Every test declares its own durable quorum queue bound to a test topic
 * exchange in the topology callback and deletes it at the end. Waits are
 * bounded by a uv_timer deadline (and alarm() as a last resort), so a broken
 * broker fails the test instead of hanging it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <amqp_tcp_socket.h>
#include <json-c/json.h>

#include "core/amqp.h"
#include "core/common.h"
#include "core/log.h"

#define EXCHANGE "vestnik.test"

static char amqp_url[1024];
static char mgmt_url[1024]; /* RabbitMQ management API, http://user:pass@host:port */

/* ------------------------------------------------------------------------ */
/* environment and broker administration (blocking, outside the loop)      */

/* Where the sources are: VN_SOURCE_DIR, else the current directory. */
static const char *source_dir(void)
{
    const char *s = getenv("VN_SOURCE_DIR");
    return s && *s ? s : ".";
}

/* Fill out with $key, or else with the key's line in the services env file.
 * Returns 0 or -1. */
static int find_setting(const char *key, char *out, size_t outlen)
{
    const char *env = getenv(key);
    if (env && *env) {
        snprintf(out, outlen, "%s", env);
        return 0;
    }
    const char *state = getenv("VESTNIK_STATE_DIR");
    char path[1024];
    if (state && *state)
        snprintf(path, sizeof(path), "%s/env", state);
    else
        snprintf(path, sizeof(path), "%s/.services/env", source_dir());
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "no %s and no %s: run scripts/services up rabbitmq\n", key, path);
        return -1;
    }
    char line[1024];
    size_t klen = strlen(key);
    int found = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) != 0 || line[klen] != '=')
            continue;
        line[strcspn(line, "\r\n")] = '\0';
        snprintf(out, outlen, "%s", line + klen + 1);
        found = 0;
    }
    fclose(f);
    if (found)
        fprintf(stderr, "%s has no %s line\n", path, key);
    return found;
}

/* A blocking admin connection with channel 1 open, or NULL. */
static amqp_connection_state_t admin_open(void)
{
    struct amqp_connection_info info;
    char *buf = NULL, err[160];
    amqp_connection_state_t conn = NULL;

    if (mq__parse_url(amqp_url, &buf, &info, err, sizeof(err)) != 0)
        goto fail;
    conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    struct timeval tv = {5, 0};
    if (sock == NULL || amqp_socket_open_noblock(sock, info.host, info.port, &tv) != 0)
        goto fail;
    if (amqp_login(conn, info.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user, info.password)
            .reply_type != AMQP_RESPONSE_NORMAL)
        goto fail;
    amqp_channel_open(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
        goto fail;
    free(buf);
    return conn;
fail:
    if (conn)
        amqp_destroy_connection(conn);
    free(buf);
    return NULL;
}

static void admin_close(amqp_connection_state_t conn)
{
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

/* Wait until the broker accepts a login (it may still be restarting). */
static int broker_ready(int seconds)
{
    for (int i = 0; i < seconds * 4; i++) {
        amqp_connection_state_t conn = admin_open();
        if (conn) {
            admin_close(conn);
            return 0;
        }
        usleep(250 * 1000);
    }
    return -1;
}

/* Delete queue; returns how many messages it still held, or -1. */
static int admin_delete_queue(const char *queue)
{
    amqp_connection_state_t conn = admin_open();
    int n = -1;
    if (conn == NULL)
        return -1;
    amqp_queue_delete_ok_t *ok = amqp_queue_delete(conn, 1, amqp_cstring_bytes(queue), 0, 0);
    if (ok)
        n = (int)ok->message_count;
    admin_close(conn);
    return n;
}

/* ------------------------------------------------------------------------ */
/* shared fixture                                                           */

#define MAX_IDS 256

struct fx {
    uv_loop_t loop;
    struct mq_client *c;
    uv_timer_t deadline;
    uv_timer_t tick;
    int tick_started;
    int timed_out;
    int closing;
    int done_called;
    uint64_t t0;
    char queue[96]; /* also the binding key */

    /* publishes */
    int n; /* messages in this test */
    int published;
    int confirm_calls[MAX_IDS];
    int confirm_ok[MAX_IDS];
    char confirm_why[MAX_IDS][160];
    int confirmed; /* callbacks so far */
    int confirmed_ok;

    /* deliveries */
    int received[MAX_IDS];
    int unique;
    int total;
    int bad_headers;
    int bad_body;
    int redelivered;
    int after_close; /* deliveries seen after mq_client_close */

    /* state callback */
    int connects[2], disconnects[2]; /* [publisher, consumer], before closing */

    int (*finished)(struct fx *);
};

struct pub_ud {
    struct fx *f;
    int id;
};

static struct pub_ud uds[MAX_IDS];

static int role_index(const char *role)
{
    return strcmp(role, "consumer") == 0;
}

/* Topology: test exchange, this test's quorum queue, binding key = queue name. */
static int topology(amqp_connection_state_t conn, amqp_channel_t ch, void *ud)
{
    const struct fx *f = ud;
    amqp_table_entry_t qargs[1];
    amqp_table_t args = {1, qargs};

    amqp_exchange_declare(conn, ch, amqp_cstring_bytes(EXCHANGE), amqp_cstring_bytes("topic"), 0, 1,
                          0, 0, amqp_empty_table);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
        return -1;
    qargs[0].key = amqp_cstring_bytes("x-queue-type");
    qargs[0].value.kind = AMQP_FIELD_KIND_UTF8;
    qargs[0].value.value.bytes = amqp_cstring_bytes("quorum");
    amqp_queue_declare(conn, ch, amqp_cstring_bytes(f->queue), 0, 1, 0, 0, args);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
        return -1;
    amqp_queue_bind(conn, ch, amqp_cstring_bytes(f->queue), amqp_cstring_bytes(EXCHANGE),
                    amqp_cstring_bytes(f->queue), amqp_empty_table);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
        return -1;
    return 0;
}

static void on_state(void *ud, const char *role, int connected)
{
    struct fx *f = ud;
    if (f->closing)
        return;
    if (connected)
        f->connects[role_index(role)]++;
    else
        f->disconnects[role_index(role)]++;
    fprintf(stderr, "# %6.1f s: %s %s\n", (double)(vn_now_ms() - f->t0) / 1000.0, role,
            connected ? "connected" : "disconnected");
}

static void on_timer_closed(uv_handle_t *h)
{
    VN_UNUSED(h);
}

/* The client is gone: stop the timers so uv_run returns (teardown closes them). */
static void on_done(void *ud)
{
    struct fx *f = ud;
    f->done_called++;
    uv_timer_stop(&f->deadline);
    uv_timer_stop(&f->tick);
}

/* End the test: close the client (done closes the timers). */
static void fx_close(struct fx *f, int64_t timeout_ms)
{
    if (f->closing)
        return;
    f->closing = 1;
    if (f->tick_started)
        uv_timer_stop(&f->tick);
    mq_client_close(f->c, timeout_ms, on_done, f);
}

static void check_finished(struct fx *f)
{
    if (!f->closing && f->finished && f->finished(f))
        fx_close(f, 5000);
}

static void on_deadline(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->timed_out = 1;
    fprintf(stderr, "# deadline reached: published %d confirmed %d (ok %d) unique %d total %d\n",
            f->published, f->confirmed, f->confirmed_ok, f->unique, f->total);
    fx_close(f, 1000);
}

static void on_confirm(void *ud, int ok, const char *why)
{
    struct pub_ud *u = ud;
    struct fx *f = u->f;
    f->confirm_calls[u->id]++;
    f->confirm_ok[u->id] = ok;
    snprintf(f->confirm_why[u->id], sizeof(f->confirm_why[u->id]), "%s", why ? why : "");
    f->confirmed++;
    if (ok)
        f->confirmed_ok++;
    else
        fprintf(stderr, "# publish %d rejected: %s\n", u->id, why ? why : "(null)");
    check_finished(f);
}

/* Publish message id (message_id "m-<id>", headers x-seq and x-tag, JSON body). */
static int publish_id(struct fx *f, const char *routing_key, int id)
{
    char mid[32], tag[32], body[64];
    amqp_table_entry_t e[2];
    amqp_table_t headers = {2, e};

    snprintf(mid, sizeof(mid), "m-%d", id);
    snprintf(tag, sizeof(tag), "tag-%d", id);
    int blen = snprintf(body, sizeof(body), "{\"id\":%d,\"q\":\"x\"}", id);
    e[0].key = amqp_cstring_bytes("x-seq");
    e[0].value.kind = AMQP_FIELD_KIND_I64;
    e[0].value.value.i64 = id;
    e[1].key = amqp_cstring_bytes("x-tag");
    e[1].value.kind = AMQP_FIELD_KIND_UTF8;
    e[1].value.value.bytes = amqp_cstring_bytes(tag);
    uds[id].f = f;
    uds[id].id = id;
    int rc = mq_publish(f->c, EXCHANGE, routing_key, mid, &headers, body, (size_t)blen, on_confirm,
                        &uds[id]);
    if (rc == 0)
        f->published++;
    return rc;
}

/* Parse "m-<id>" into id, or -1. */
static int id_of(const struct mq_message *m)
{
    if (m->message_id == NULL || strncmp(m->message_id, "m-", 2) != 0)
        return -1;
    char *end = NULL;
    long id = strtol(m->message_id + 2, &end, 10);
    if (end == m->message_id + 2 || *end != '\0' || id < 0 || id >= MAX_IDS)
        return -1;
    return (int)id;
}

/* Check the headers, body and content type that publish_id sent. */
static void check_message(struct fx *f, const struct mq_message *m, int id)
{
    int seq_ok = 0, tag_ok = 0;
    char tag[32], body[64];

    snprintf(tag, sizeof(tag), "tag-%d", id);
    for (int i = 0; i < m->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &m->headers.entries[i];
        if (e->key.len == 5 && memcmp(e->key.bytes, "x-seq", 5) == 0)
            seq_ok = e->value.kind == AMQP_FIELD_KIND_I64 && e->value.value.i64 == id;
        if (e->key.len == 5 && memcmp(e->key.bytes, "x-tag", 5) == 0)
            tag_ok = e->value.kind == AMQP_FIELD_KIND_UTF8 &&
                     e->value.value.bytes.len == strlen(tag) &&
                     memcmp(e->value.value.bytes.bytes, tag, strlen(tag)) == 0;
    }
    if (!seq_ok || !tag_ok)
        f->bad_headers++;
    int blen = snprintf(body, sizeof(body), "{\"id\":%d,\"q\":\"x\"}", id);
    if (m->len != (size_t)blen || memcmp(m->body, body, m->len) != 0 || m->content_type == NULL ||
        strcmp(m->content_type, "application/json") != 0 || strcmp(m->exchange, EXCHANGE) != 0 ||
        strcmp(m->routing_key, f->queue) != 0)
        f->bad_body++;
}

/* Count a delivery by id and ack it. */
static void on_message_count(struct mq_message *m, void *ud)
{
    struct fx *f = ud;
    int id = id_of(m);
    if (f->closing)
        f->after_close++;
    if (id >= 0) {
        if (f->received[id]++ == 0)
            f->unique++;
        check_message(f, m, id);
    } else {
        f->bad_body++;
    }
    f->total++;
    if (m->redelivered)
        f->redelivered++;
    mq_ack(m);
    check_finished(f);
}

static int setup(void **state)
{
    static struct fx fxs;
    struct fx *f = &fxs;
    char hex[9];

    memset(f, 0, sizeof(*f));
    memset(uds, 0, sizeof(uds));
    if (amqp_url[0] == '\0' && find_setting("AMQP_URL", amqp_url, sizeof(amqp_url)) != 0)
        return -1;
    if (broker_ready(60) != 0) {
        fprintf(stderr, "broker at AMQP_URL does not accept a login\n");
        return -1;
    }
    vn_random_hex(hex, 4);
    snprintf(f->queue, sizeof(f->queue), "vn.test.amqp.%s", hex);
    if (uv_loop_init(&f->loop) != 0)
        return -1;
    uv_timer_init(&f->loop, &f->deadline);
    uv_timer_init(&f->loop, &f->tick);
    f->deadline.data = f->tick.data = f;
    f->t0 = vn_now_ms();
    *state = f;
    alarm(240); /* last resort if the loop itself hangs */
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->c && !f->done_called) {
        /* The test failed before its client finished: close it now. */
        fx_close(f, 1000);
        uv_timer_start(&f->deadline, on_deadline, 10000, 0);
        uv_run(&f->loop, UV_RUN_DEFAULT);
    }
    uv_close((uv_handle_t *)&f->deadline, on_timer_closed);
    uv_close((uv_handle_t *)&f->tick, on_timer_closed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    admin_delete_queue(f->queue);
    alarm(0);
    return rc == 0 ? 0 : -1;
}

static struct mq_client *new_client(struct fx *f, const char *url, const char *name)
{
    struct mq_options opt = {
        .url = url,
        .reconnect_max_ms = 1000,
        .heartbeat_s = 10,
        .name = name,
    };
    return mq_client_new(&f->loop, &opt, topology, on_state, f);
}

/* ------------------------------------------------------------------------ */
/* 1. round trip                                                            */

static int rt_finished(struct fx *f)
{
    return f->confirmed == f->n && f->unique == f->n;
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    f->n = 100;
    f->finished = rt_finished;
    f->c = new_client(f, amqp_url, "vestnik-test-roundtrip");
    assert_non_null(f->c);
    assert_int_equal(mq_consume(f->c, f->queue, 50, on_message_count, f), 0);
    assert_int_equal(mq_consume(f->c, f->queue, 50, on_message_count, f), VN_ECONFLICT);
    for (int i = 0; i < f->n; i++)
        assert_int_equal(publish_id(f, f->queue, i), 0);
    uv_timer_start(&f->deadline, on_deadline, 30000, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    fprintf(stderr, "# round trip: %d confirmed ok, %d received (%d unique) in %llu ms\n",
            f->confirmed_ok, f->total, f->unique, (unsigned long long)(vn_now_ms() - f->t0));
    assert_false(f->timed_out);
    assert_int_equal(f->done_called, 1);
    for (int i = 0; i < f->n; i++) {
        assert_int_equal(f->confirm_calls[i], 1);
        assert_int_equal(f->confirm_ok[i], 1);
        assert_true(f->received[i] >= 1);
    }
    assert_int_equal(f->bad_headers, 0);
    assert_int_equal(f->bad_body, 0);
    assert_true(f->connects[0] >= 1 && f->connects[1] >= 1);
}

/* ------------------------------------------------------------------------ */
/* 2. survives a broker restart                                             */

struct restart_job {
    uv_work_t req;
    struct fx *f;
    int started;
    int finished;
    int status;
    uint64_t start_ms, end_ms;
};

static struct restart_job rj;

static void restart_work(uv_work_t *req)
{
    struct restart_job *j = req->data;
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s/scripts/services' restart rabbitmq >&2", source_dir());
    j->status = system(cmd);
}

static void restart_after(uv_work_t *req, int status)
{
    struct restart_job *j = req->data;
    j->finished = 1;
    j->end_ms = vn_now_ms();
    if (status != 0)
        j->status = -1;
    fprintf(stderr, "# %6.1f s: restart finished (status %d) after %llu ms\n",
            (double)(j->end_ms - j->f->t0) / 1000.0, j->status,
            (unsigned long long)(j->end_ms - j->start_ms));
    check_finished(j->f);
}

static void restart_tick(uv_timer_t *t)
{
    struct fx *f = t->data;
    if (f->published < f->n)
        publish_id(f, f->queue, f->published);
    if (!rj.started && f->confirmed_ok >= 50) {
        rj.started = 1;
        rj.f = f;
        rj.req.data = &rj;
        rj.start_ms = vn_now_ms();
        fprintf(stderr, "# %6.1f s: %d confirmed, restarting rabbitmq\n",
                (double)(rj.start_ms - f->t0) / 1000.0, f->confirmed_ok);
        if (uv_queue_work(&f->loop, &rj.req, restart_work, restart_after) != 0)
            rj.finished = 1, rj.status = -1;
    }
    if (f->published == f->n)
        uv_timer_stop(&f->tick);
}

static int restart_finished(struct fx *f)
{
    return rj.finished && f->published == f->n && f->confirmed == f->n && f->unique == f->n;
}

static void test_survives_restart(void **state)
{
    struct fx *f = *state;
    memset(&rj, 0, sizeof(rj));
    f->n = 200;
    f->finished = restart_finished;
    alarm(300);
    f->c = new_client(f, amqp_url, "vestnik-test-restart");
    assert_non_null(f->c);
    assert_int_equal(mq_consume(f->c, f->queue, 20, on_message_count, f), 0);
    f->tick_started = 1;
    uv_timer_start(&f->tick, restart_tick, 20, 20);
    uv_timer_start(&f->deadline, on_deadline, 90000, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    uint64_t total_ms = vn_now_ms() - f->t0;
    fprintf(stderr,
            "# restart: %d published, %d confirmed ok, %d deliveries for %d ids "
            "(%d duplicates, %d redelivered) in %llu ms; restart took %llu ms; "
            "connects pub %d cons %d, disconnects pub %d cons %d\n",
            f->published, f->confirmed_ok, f->total, f->unique, f->total - f->unique,
            f->redelivered, (unsigned long long)total_ms,
            (unsigned long long)(rj.end_ms - rj.start_ms), f->connects[0], f->connects[1],
            f->disconnects[0], f->disconnects[1]);
    assert_true(rj.started);
    assert_true(rj.finished);
    assert_int_equal(rj.status, 0);
    assert_false(f->timed_out);
    assert_int_equal(f->published, f->n);
    for (int i = 0; i < f->n; i++) {
        assert_int_equal(f->confirm_calls[i], 1);
        if (!f->confirm_ok[i])
            fail_msg("publish %d rejected: %s", i, f->confirm_why[i]);
        if (f->received[i] < 1)
            fail_msg("message %d never consumed", i);
    }
    assert_int_equal(f->bad_headers, 0);
    assert_int_equal(f->bad_body, 0);
    /* Both connections went down with the broker and came back. */
    assert_true(f->disconnects[0] >= 1 && f->disconnects[1] >= 1);
    assert_true(f->connects[0] >= 2 && f->connects[1] >= 2);
}

/* ------------------------------------------------------------------------ */
/* 3. nack + redelivery, unroutable and refused publishes                   */

enum { ID_NACKED = 0, ID_UNROUTABLE = 1, ID_NO_EXCHANGE = 2, ID_AFTER = 3 };

static int nack_deliveries;
static int nack_redelivered_ok;

static void on_message_nack(struct mq_message *m, void *ud)
{
    struct fx *f = ud;
    int id = id_of(m);
    f->total++;
    if (id < 0) {
        f->bad_body++;
        mq_ack(m);
        return;
    }
    if (f->received[id]++ == 0)
        f->unique++;
    check_message(f, m, id);
    if (id == ID_NACKED) {
        /* The first delivery goes back to the queue and must come again with
         * the redelivered flag. (A duplicate publish may also arrive: the
         * missing-exchange publish below makes the publisher resend what
         * was in flight with it.) */
        nack_deliveries++;
        if (nack_deliveries == 1) {
            if (m->redelivered)
                f->bad_body++;
            mq_nack(m, 1);
            return;
        }
        if (m->redelivered)
            nack_redelivered_ok = 1;
    }
    mq_ack(m);
    check_finished(f);
}

static int nack_finished(struct fx *f)
{
    return f->confirmed == 4 && nack_redelivered_ok && f->received[ID_AFTER] >= 1;
}

static void test_nack_unroutable(void **state)
{
    struct fx *f = *state;
    char nowhere[128], missing[128];

    nack_deliveries = 0;
    nack_redelivered_ok = 0;
    f->finished = nack_finished;
    f->c = new_client(f, amqp_url, "vestnik-test-nack");
    assert_non_null(f->c);
    assert_int_equal(mq_consume(f->c, f->queue, 10, on_message_nack, f), 0);
    snprintf(nowhere, sizeof(nowhere), "nowhere.%s", f->queue);
    snprintf(missing, sizeof(missing), "%s.missing", f->queue);

    assert_int_equal(publish_id(f, f->queue, ID_NACKED), 0);
    assert_int_equal(publish_id(f, nowhere, ID_UNROUTABLE), 0);
    /* An exchange that does not exist: the broker closes the channel. */
    uds[ID_NO_EXCHANGE].f = f;
    uds[ID_NO_EXCHANGE].id = ID_NO_EXCHANGE;
    assert_int_equal(
        mq_publish(f->c, missing, f->queue, "m-2", NULL, "{}", 2, on_confirm, &uds[ID_NO_EXCHANGE]),
        0);
    /* A good publish queued behind it must not be blamed for that. */
    assert_int_equal(publish_id(f, f->queue, ID_AFTER), 0);
    uv_timer_start(&f->deadline, on_deadline, 30000, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    fprintf(stderr, "# nack: unroutable -> \"%s\"; missing exchange -> \"%s\"\n",
            f->confirm_why[ID_UNROUTABLE], f->confirm_why[ID_NO_EXCHANGE]);
    assert_false(f->timed_out);
    assert_int_equal(f->confirm_ok[ID_NACKED], 1);
    assert_true(nack_deliveries >= 2);
    assert_true(nack_redelivered_ok);
    assert_int_equal(f->confirm_calls[ID_UNROUTABLE], 1);
    assert_int_equal(f->confirm_ok[ID_UNROUTABLE], 0);
    assert_non_null(strstr(f->confirm_why[ID_UNROUTABLE], "unroutable: NO_ROUTE"));
    assert_int_equal(f->received[ID_UNROUTABLE], 0);
    assert_int_equal(f->confirm_calls[ID_NO_EXCHANGE], 1);
    assert_int_equal(f->confirm_ok[ID_NO_EXCHANGE], 0);
    assert_non_null(strstr(f->confirm_why[ID_NO_EXCHANGE], "NOT_FOUND"));
    assert_int_equal(f->confirm_calls[ID_AFTER], 1);
    assert_int_equal(f->confirm_ok[ID_AFTER], 1);
    assert_int_equal(f->bad_headers, 0);
    assert_int_equal(f->bad_body, 0);
}

/* ------------------------------------------------------------------------ */
/* 4. close with pending work                                               */

static struct mq_message *held_msg;
static uv_timer_t release_timer;
static uint64_t close_started, done_at;
static int publish_after_close_rc;

static void on_done_timed(void *ud)
{
    done_at = vn_now_ms();
    on_done(ud);
}

static void release_held(uv_timer_t *t)
{
    VN_UNUSED(t);
    mq_ack(held_msg); /* lets the consumer finish before the close timeout */
    held_msg = NULL;
    uv_close((uv_handle_t *)&release_timer, on_timer_closed);
}

/* Keep the first delivery, then close with publishes still pending. */
static void on_message_hold(struct mq_message *m, void *ud)
{
    struct fx *f = ud;
    f->total++;
    if (f->closing)
        f->after_close++;
    if (held_msg != NULL || f->closing) {
        mq_ack(m);
        return;
    }
    held_msg = m;
    for (int i = 10; i < 60; i++) /* more work, none of it confirmed yet */
        publish_id(f, f->queue, i);
    f->closing = 1;
    close_started = vn_now_ms();
    mq_client_close(f->c, 3000, on_done_timed, f);
    publish_after_close_rc = publish_id(f, f->queue, 99);
    uv_timer_init(&f->loop, &release_timer);
    uv_timer_start(&release_timer, release_held, 300, 0);
}

static void test_close_pending(void **state)
{
    struct fx *f = *state;
    held_msg = NULL;
    done_at = 0;
    publish_after_close_rc = 0;
    f->c = new_client(f, amqp_url, "vestnik-test-close");
    assert_non_null(f->c);
    assert_int_equal(mq_consume(f->c, f->queue, 5, on_message_hold, f), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(publish_id(f, f->queue, i), 0);
    uv_timer_start(&f->deadline, on_deadline, 30000, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    fprintf(stderr, "# close: done %llu ms after close; %d/%d publishes confirmed ok\n",
            (unsigned long long)(done_at - close_started), f->confirmed_ok, f->published);
    assert_false(f->timed_out);
    assert_int_equal(f->done_called, 1);
    assert_null(held_msg);
    assert_int_equal(f->after_close, 0);
    assert_int_equal(publish_after_close_rc, VN_ESTATE);
    assert_int_equal(f->published, 60);
    for (int i = 0; i < 60; i++)
        assert_int_equal(f->confirm_calls[i], 1);
    /* The broker was up: everything pending got confirmed inside the window,
     * and the held delivery was released early, so done came well before 3 s. */
    assert_int_equal(f->confirmed_ok, 60);
    assert_true(done_at - close_started < 2500);
}

/* Broker unreachable: pending publishes fail with "shutting down" at the deadline. */
static void close_unreachable(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->closing = 1;
    close_started = vn_now_ms();
    mq_client_close(f->c, 300, on_done_timed, f);
}

static void test_close_unreachable(void **state)
{
    struct fx *f = *state;
    FILE *log = tmpfile();
    char buf[16384];
    size_t n;

    assert_non_null(log);
    done_at = 0;
    vn_log_set_sink(log);
    /* Port 1 on loopback: connection refused. */
    f->c = new_client(f, "amqp://guest:secret-password@127.0.0.1:1/", "vestnik-test-down");
    assert_non_null(f->c);
    assert_int_equal(mq_consume(f->c, f->queue, 5, on_message_count, f), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish_id(f, f->queue, i), 0);
    f->tick_started = 1;
    uv_timer_start(&f->tick, close_unreachable, 400, 0);
    uv_timer_start(&f->deadline, on_deadline, 10000, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    vn_log_set_sink(NULL);
    rewind(log);
    n = fread(buf, 1, sizeof(buf) - 1, log);
    buf[n] = '\0';
    fclose(log);

    assert_false(f->timed_out);
    assert_int_equal(f->done_called, 1);
    assert_true(done_at - close_started < 1500);
    /* Each failed attempt is logged with its reason and delay, never the password. */
    assert_non_null(strstr(buf, "Connection refused"));
    assert_non_null(strstr(buf, "\"retry_in_ms\":"));
    assert_null(strstr(buf, "secret-password"));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->confirm_calls[i], 1);
        assert_int_equal(f->confirm_ok[i], 0);
        assert_string_equal(f->confirm_why[i], "shutting down");
    }
    assert_int_equal(f->connects[0] + f->connects[1], 0);
}

/* ------------------------------------------------------------------------ */
/* 5. heartbeats keep an idle connection alive                              */

static void idle_over(uv_timer_t *t)
{
    struct fx *f = t->data;
    publish_id(f, f->queue, 0);
}

static int idle_finished(struct fx *f)
{
    return f->confirmed == 1 && f->unique == 1;
}

/*
 * heartbeat 1 s: the broker drops a connection that sends nothing for about
 * two intervals, so this only passes if the threads keep calling into
 * rabbitmq-c (which sends the heartbeats) while they sleep in poll().
 */
static void test_heartbeat_idle(void **state)
{
    struct fx *f = *state;
    struct mq_options opt = {
        .url = amqp_url, .reconnect_max_ms = 1000, .heartbeat_s = 1, .name = "vestnik-test-hb"};

    f->finished = idle_finished;
    f->c = mq_client_new(&f->loop, &opt, topology, on_state, f);
    assert_non_null(f->c);
    assert_int_equal(mq_consume(f->c, f->queue, 5, on_message_count, f), 0);
    f->tick_started = 1;
    uv_timer_start(&f->tick, idle_over, 6000, 0);
    uv_timer_start(&f->deadline, on_deadline, 20000, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    assert_false(f->timed_out);
    assert_int_equal(f->confirm_ok[0], 1);
    assert_int_equal(f->received[0], 1);
    assert_int_equal(f->disconnects[0] + f->disconnects[1], 0);
    assert_int_equal(f->connects[0], 1);
    assert_int_equal(f->connects[1], 1);
}

/* ------------------------------------------------------------------------ */
/* 6. an ack for a delivery from a dropped connection is not sent           */

/* Run cmd and return its stdout (heap, caller frees), or NULL. */
static char *run_capture(const char *cmd)
{
    struct vn_buf out = VN_BUF_INIT;
    char chunk[4096];
    size_t n;
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        vn_buf_append(&out, chunk, n);
    if (pclose(p) != 0) {
        vn_buf_free(&out);
        return NULL;
    }
    return vn_buf_steal(&out);
}

/* Percent-encode s for a URL path segment. */
static void url_encode(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (; *s && k + 4 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.') {
            out[k++] = (char)ch;
        } else {
            out[k++] = '%';
            out[k++] = hex[ch >> 4];
            out[k++] = hex[ch & 15];
        }
    }
    out[k] = '\0';
}

/*
 * Force-close, through the management API, every broker connection whose
 * connection_name is name, once at least want of them are listed (the API
 * lists new connections only after its stats interval). Returns how many
 * were closed. Blocking: runs on a uv_work thread.
 */
static int kill_connections(const char *name, int want)
{
    char cmd[2048];
    int killed = 0;

    for (int tries = 0; tries < 60 && killed == 0; tries++) {
        snprintf(cmd, sizeof(cmd),
                 "curl -sf '%s/api/connections?columns=name,client_properties.connection_name'",
                 mgmt_url);
        char *body = run_capture(cmd);
        json_object *arr = body ? json_tokener_parse(body) : NULL;
        free(body);
        int found = 0;
        size_t len =
            arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < len; i++) {
                json_object *c = json_object_array_get_idx(arr, i), *props, *cn, *nm;
                if (!json_object_object_get_ex(c, "client_properties", &props) ||
                    !json_object_object_get_ex(props, "connection_name", &cn) ||
                    strcmp(json_object_get_string(cn), name) != 0 ||
                    !json_object_object_get_ex(c, "name", &nm))
                    continue;
                if (pass == 0) {
                    found++;
                    continue;
                }
                char enc[512];
                url_encode(json_object_get_string(nm), enc, sizeof(enc));
                snprintf(cmd, sizeof(cmd),
                         "curl -sf -X DELETE -H 'X-Reason: test_amqp stale ack' "
                         "'%s/api/connections/%s'",
                         mgmt_url, enc);
                if (system(cmd) == 0)
                    killed++;
            }
            if (found < want)
                break;
        }
        json_object_put(arr);
        if (killed == 0)
            usleep(250 * 1000);
    }
    return killed;
}

static struct {
    uv_work_t req;
    uv_timer_t grace;
    char name[96];
    struct mq_message *held;
    int killed;
    int kill_done;
    int deliveries;
    int stale_gen_differs;
    int second_redelivered;
    int finished;
} st;

static void stale_kill_work(uv_work_t *req)
{
    VN_UNUSED(req);
    st.killed = kill_connections(st.name, 2);
}

static void stale_kill_after(uv_work_t *req, int status)
{
    VN_UNUSED(req);
    VN_UNUSED(status);
    st.kill_done = 1;
    fprintf(stderr, "# closed %d broker connections named %s\n", st.killed, st.name);
}

static void stale_grace_over(uv_timer_t *t)
{
    struct fx *f = t->data;
    st.finished = 1;
    check_finished(f);
}

static int stale_finished(struct fx *f)
{
    VN_UNUSED(f);
    return st.finished && st.kill_done;
}

/*
 * First delivery: keep it and have the broker drop our connections. The
 * broker requeues it and we get it again on the new connection, where the
 * delivery tags restart, so the stale copy has the same tag as the new one.
 * Acking the stale copy must send nothing; acking the new one then works.
 * Had the stale ack been sent, it would ack the new copy and the second ack
 * would be an unknown tag: the broker would close the channel (a second
 * consumer disconnect) and the queue would not end up empty.
 */
static void on_message_stale(struct mq_message *m, void *ud)
{
    struct fx *f = ud;
    st.deliveries++;
    if (st.deliveries == 1) {
        st.held = m;
        st.req.data = f;
        if (uv_queue_work(&f->loop, &st.req, stale_kill_work, stale_kill_after) != 0)
            st.kill_done = 1;
        return;
    }
    if (st.deliveries == 2 && st.held) {
        st.stale_gen_differs = st.held->generation != m->generation;
        st.second_redelivered = m->redelivered;
        mq_ack(st.held); /* stale: must be dropped */
        st.held = NULL;
        mq_ack(m);
        uv_timer_start(&st.grace, stale_grace_over, 1500, 0);
        return;
    }
    mq_ack(m);
}

static void test_stale_ack_dropped(void **state)
{
    struct fx *f = *state;
    char hex[9];

    memset(&st, 0, sizeof(st));
    if (mgmt_url[0] == '\0' && find_setting("RABBITMQ_MGMT_URL", mgmt_url, sizeof(mgmt_url)) != 0)
        fail_msg("no RABBITMQ_MGMT_URL");
    vn_random_hex(hex, 4);
    snprintf(st.name, sizeof(st.name), "vestnik-test-stale-%s", hex);
    uv_timer_init(&f->loop, &st.grace);
    st.grace.data = f;
    f->finished = stale_finished;
    f->c = new_client(f, amqp_url, st.name);
    assert_non_null(f->c);
    assert_int_equal(mq_consume(f->c, f->queue, 5, on_message_stale, f), 0);
    assert_int_equal(publish_id(f, f->queue, 0), 0);
    uv_timer_start(&f->deadline, on_deadline, 40000, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&st.grace, on_timer_closed);
    if (st.held) /* the test failed half-way: free it */
        mq_ack(st.held);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    int left = admin_delete_queue(f->queue);
    fprintf(stderr, "# stale: %d deliveries, consumer connects %d disconnects %d, %d left\n",
            st.deliveries, f->connects[1], f->disconnects[1], left);
    assert_false(f->timed_out);
    assert_true(st.killed >= 1);
    assert_int_equal(st.deliveries, 2);
    assert_true(st.stale_gen_differs);
    assert_true(st.second_redelivered);
    assert_int_equal(f->disconnects[1], 1);
    assert_int_equal(f->connects[1], 2);
    assert_int_equal(left, 0);
}

/* A URL that does not parse gives NULL, and no callback ever. */
static void test_bad_url(void **state)
{
    struct fx *f = *state;
    assert_null(new_client(f, "amqp://guest:pw@host:notaport/", "x"));
    assert_null(new_client(f, "amqps://guest:pw@host/", "x"));
    assert_null(new_client(f, NULL, "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nack_unroutable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_ack_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_restart, setup, teardown),
    };
    if (getenv("VN_TEST_DEBUG") == NULL)
        vn_log_set_level(VN_LOG_WARN);
    /* e.g. VN_TEST_SKIP=test_survives_restart while others share the broker */
    if (getenv("VN_TEST_FILTER"))
        cmocka_set_test_filter(getenv("VN_TEST_FILTER"));
    if (getenv("VN_TEST_SKIP"))
        cmocka_set_skip_filter(getenv("VN_TEST_SKIP"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
