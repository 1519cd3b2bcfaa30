/*
 * bench/amqp_ceiling - the rate of a bare rabbitmq-c consumer, as the ceiling
 * for the notifier's benchmark. No vestnik code: one connection, blocking
 * calls, nothing done per message but reading it and acking it.
 *
 *   amqp_ceiling [--url URL] [--count N] [--size BYTES] [--prefetch P]
 *                [--window W] [--quorum]
 *
 * 1. Declares a fresh queue: by default a server-named exclusive auto-delete
 *    classic queue (transient); with --quorum the durable quorum queue
 *    vestnik.bench.ceiling (deleted first if a crashed run left it, and
 *    deleted again at the end).
 * 2. Publishes N persistent messages of BYTES bytes through the default
 *    exchange with publisher confirms, W at a time (each window is confirmed
 *    before the next is sent), and reports the publish rate.
 * 3. Consumes them with manual acks: basic.qos prefetch P, basic.consume,
 *    amqp_consume_message, basic.ack for each delivery; reports consumed/s,
 *    timed from basic.consume to the answer to the basic.cancel sent after
 *    the last ack.
 *
 * The URL comes from --url or AMQP_URL (.services/env). Output: plain lines
 * starting with "ceiling:", then a last line for scripts:
 *   RESULT consume_per_s=... publish_per_s=... count=... size=... prefetch=... window=...
 *   queue=classic|quorum (one line)
 * Exit status: 0 done, 1 broker or protocol error (with a message), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#define CEIL_QUORUM_QUEUE "vestnik.bench.ceiling"
#define CH_PUB            1  /* confirm mode */
#define CH_CON            2  /* qos + consume */
#define WAIT_S            15 /* longest wait for any one frame */

struct opts {
    const char *url;
    long count, size, prefetch, window;
    int quorum;
};

static amqp_connection_state_t g_conn;
static char g_queue[256];
static int g_delete_queue; /* delete g_queue before exiting */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: amqp_ceiling [--url amqp://user:pass@host:port/vhost] [--count N]\n"
               "                    [--size BYTES] [--prefetch P] [--window W] [--quorum]\n"
               "  --url       broker (default: $AMQP_URL)\n"
               "  --count     messages to publish and consume (20000)\n"
               "  --size      body size in bytes (600)\n"
               "  --prefetch  basic.qos prefetch count of the consumer (200)\n"
               "  --window    publishes per confirm window (500)\n"
               "  --quorum    use the durable quorum queue " CEIL_QUORUM_QUEUE "\n"
               "              instead of an exclusive auto-delete classic queue\n");
}

/* Close the connection politely (deleting the quorum queue first) and exit 1. */
static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("amqp_ceiling: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (g_conn != NULL) {
        /* best effort on a fresh channel: the failing one may be closed */
        if (g_delete_queue && amqp_channel_open(g_conn, 3) != NULL) {
            amqp_queue_delete(g_conn, 3, amqp_cstring_bytes(g_queue), 0, 0);
            amqp_channel_close(g_conn, 3, AMQP_REPLY_SUCCESS);
        }
        amqp_connection_close(g_conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(g_conn);
    }
    exit(1);
}

/* A readable text for a failed RPC reply: the broker's reply code and text, or
 * rabbitmq-c's own error. */
static const char *reply_text(amqp_rpc_reply_t r, char *buf, size_t n)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(buf, n, "ok");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(buf, n, "no reply");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buf, n, "%s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, n, "connection closed by broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, n, "channel closed by broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(buf, n, "broker error (method 0x%08x)", (unsigned)r.reply.id);
        }
        break;
    }
    return buf;
}

static void check_rpc(const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(g_conn);
    char buf[512];
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        die("%s failed: %s", what, reply_text(r, buf, sizeof(buf)));
}

static long parse_long(const char *opt, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "amqp_ceiling: %s wants a number from %ld to %ld, not \"%s\"\n", opt, min,
                max, s);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},    {"count", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},   {"prefetch", required_argument, NULL, 'p'},
        {"window", required_argument, NULL, 'w'}, {"quorum", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.count = 20000, .size = 600, .prefetch = 200, .window = 500};
    int c;
    while ((c = getopt_long(argc, argv, "u:n:s:p:w:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->url = optarg;
            break;
        case 'n':
            o->count = parse_long("--count", optarg, 1, 100000000);
            break;
        case 's':
            o->size = parse_long("--size", optarg, 0, 64L * 1024 * 1024);
            break;
        case 'p':
            o->prefetch = parse_long("--prefetch", optarg, 0, 65535);
            break;
        case 'w':
            o->window = parse_long("--window", optarg, 1, 1000000);
            break;
        case 'q':
            o->quorum = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "amqp_ceiling: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
    if (o->url == NULL || *o->url == '\0')
        o->url = getenv("AMQP_URL");
    if (o->url == NULL || *o->url == '\0') {
        fprintf(stderr, "amqp_ceiling: no broker: pass --url or set AMQP_URL "
                        "(the services env file .services/env has it)\n");
        exit(2);
    }
}

/* rabbitmq-c says only "a socket error occurred": connect once more by hand
 * to learn why (refused, unreachable, timed out). NULL if that connects. */
static const char *tcp_probe(const char *host, int port)
{
    static char why[128];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(why, sizeof(why), "%s", gai_strerror(rc));
        return why;
    }
    snprintf(why, sizeof(why), "no address");
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect() */
        int ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        snprintf(why, sizeof(why), "%s", ok ? "" : strerror(errno));
        close(fd);
        if (ok) {
            freeaddrinfo(res);
            return NULL;
        }
    }
    freeaddrinfo(res);
    return why;
}

static void connect_broker(const char *url)
{
    struct amqp_connection_info ci;
    char *copy = strdup(url);
    if (copy == NULL)
        die("out of memory");
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
        fprintf(stderr,
                "amqp_ceiling: not an AMQP URL: \"%s\" (want amqp://user:pass@host:port/)\n", url);
        exit(2);
    }
    if (ci.ssl) {
        fprintf(stderr, "amqp_ceiling: amqps:// is not supported\n");
        exit(2);
    }
    /* "amqp://host/" leaves the vhost empty: that means "/" here */
    const char *vhost = (ci.vhost == NULL || *ci.vhost == '\0') ? "/" : ci.vhost;

    g_conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(g_conn);
    if (sock == NULL)
        die("cannot create a socket");
    struct timeval tv = {.tv_sec = 5};
    int st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
    if (st != AMQP_STATUS_OK) {
        const char *why = st == AMQP_STATUS_SOCKET_ERROR ? tcp_probe(ci.host, ci.port) : NULL;
        die("cannot connect to the broker at %s:%d: %s (is RabbitMQ running? "
            "scripts/services up)",
            ci.host, ci.port, why != NULL ? why : amqp_error_string2(st));
    }
    struct timeval hs = {.tv_sec = WAIT_S};
    amqp_set_handshake_timeout(g_conn, &hs);
    amqp_set_rpc_timeout(g_conn, &hs);
    char buf[512];
    amqp_rpc_reply_t r =
        amqp_login(g_conn, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        die("login to %s:%d vhost \"%s\" as \"%s\" failed: %s (wrong user, password or vhost?)",
            ci.host, ci.port, vhost, ci.user, reply_text(r, buf, sizeof(buf)));
    free(copy);

    amqp_channel_open(g_conn, CH_PUB);
    check_rpc("channel.open (publisher)");
    amqp_confirm_select(g_conn, CH_PUB);
    check_rpc("confirm.select");
    amqp_channel_open(g_conn, CH_CON);
    check_rpc("channel.open (consumer)");
}

static void declare_queue(int quorum)
{
    if (quorum) {
        /* a crashed earlier run may have left it with messages: start empty */
        amqp_queue_delete(g_conn, CH_PUB, amqp_cstring_bytes(CEIL_QUORUM_QUEUE), 0, 0);
        check_rpc("queue.delete " CEIL_QUORUM_QUEUE);
        amqp_table_entry_t arg = {
            .key = amqp_cstring_bytes("x-queue-type"),
            .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}};
        amqp_table_t args = {.num_entries = 1, .entries = &arg};
        amqp_queue_declare(g_conn, CH_PUB, amqp_cstring_bytes(CEIL_QUORUM_QUEUE), 0, 1, 0, 0, args);
        check_rpc("queue.declare " CEIL_QUORUM_QUEUE " (quorum)");
        snprintf(g_queue, sizeof(g_queue), "%s", CEIL_QUORUM_QUEUE);
    } else {
        amqp_queue_declare_ok_t *ok =
            amqp_queue_declare(g_conn, CH_PUB, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
        check_rpc("queue.declare (classic, exclusive, auto-delete)");
        snprintf(g_queue, sizeof(g_queue), "%.*s", (int)ok->queue.len,
                 (const char *)ok->queue.bytes);
    }
    g_delete_queue = 1;
}

/* Wait until the broker has confirmed every publish up to delivery tag `last`.
 * A nack or a channel/connection close is fatal. */
static void wait_confirms(uint64_t last, uint64_t *confirmed)
{
    while (*confirmed < last) {
        amqp_frame_t f;
        struct timeval tv = {.tv_sec = WAIT_S};
        amqp_maybe_release_buffers(g_conn);
        int st = amqp_simple_wait_frame_noblock(g_conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT)
            die("no publisher confirm within %d s (%llu of %llu confirmed)", WAIT_S,
                (unsigned long long)*confirmed, (unsigned long long)last);
        if (st != AMQP_STATUS_OK)
            die("waiting for publisher confirms: %s", amqp_error_string2(st));
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            if (a->delivery_tag > *confirmed)
                *confirmed = a->multiple ? a->delivery_tag : *confirmed + 1;
            break;
        }
        case AMQP_BASIC_NACK_METHOD:
            die("the broker nacked publish %llu",
                (unsigned long long)((amqp_basic_nack_t *)f.payload.method.decoded)->delivery_tag);
            break;
        case AMQP_CHANNEL_CLOSE_METHOD: {
            amqp_channel_close_t *m = f.payload.method.decoded;
            die("channel closed by broker while publishing: %u %.*s", m->reply_code,
                (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            break;
        }
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_connection_close_t *m = f.payload.method.decoded;
            die("connection closed by broker while publishing: %u %.*s", m->reply_code,
                (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            break;
        }
        default:
            break; /* basic.return cannot happen: no mandatory flag */
        }
    }
}

/* Publish o->count messages, o->window per confirm window; returns seconds. */
static double publish_all(const struct opts *o, const char *body)
{
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                  AMQP_BASIC_MESSAGE_ID_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
    };
    amqp_bytes_t payload = {.len = (size_t)o->size, .bytes = (void *)body};
    amqp_bytes_t rk = amqp_cstring_bytes(g_queue);
    uint64_t sent = 0, confirmed = 0;
    char mid[32];
    double t0 = now_s();
    while (sent < (uint64_t)o->count) {
        uint64_t end = sent + (uint64_t)o->window;
        if (end > (uint64_t)o->count)
            end = (uint64_t)o->count;
        for (; sent < end; sent++) {
            snprintf(mid, sizeof(mid), "ceiling-%llu", (unsigned long long)sent + 1);
            props.message_id = amqp_cstring_bytes(mid);
            int st =
                amqp_basic_publish(g_conn, CH_PUB, amqp_empty_bytes, rk, 0, 0, &props, payload);
            if (st != AMQP_STATUS_OK)
                die("basic.publish %llu: %s", (unsigned long long)sent + 1, amqp_error_string2(st));
        }
        wait_confirms(sent, &confirmed);
    }
    return now_s() - t0;
}

/* Consume o->count messages with manual acks; returns seconds from
 * basic.consume to the broker's answer to basic.cancel after the last ack. */
static double consume_all(const struct opts *o)
{
    amqp_basic_qos(g_conn, CH_CON, 0, (uint16_t)o->prefetch, 0);
    check_rpc("basic.qos");
    double t0 = now_s();
    amqp_basic_consume_ok_t *ok = amqp_basic_consume(g_conn, CH_CON, amqp_cstring_bytes(g_queue),
                                                     amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    check_rpc("basic.consume");
    char tag_text[256];
    snprintf(tag_text, sizeof(tag_text), "%.*s", (int)ok->consumer_tag.len,
             (const char *)ok->consumer_tag.bytes);
    long got = 0, short_bodies = 0;
    char buf[512];
    while (got < o->count) {
        amqp_envelope_t env;
        struct timeval tv = {.tv_sec = WAIT_S};
        amqp_maybe_release_buffers(g_conn);
        amqp_rpc_reply_t r = amqp_consume_message(g_conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            /* a frame other than basic.deliver: read it; a close is fatal */
            amqp_frame_t f;
            if (amqp_simple_wait_frame(g_conn, &f) != AMQP_STATUS_OK)
                die("reading a frame while consuming failed");
            if (f.frame_type == AMQP_FRAME_METHOD &&
                (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                 f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
                 f.payload.method.id == AMQP_BASIC_CANCEL_METHOD))
                die("the broker stopped the consumer (method 0x%08x) after %ld messages",
                    (unsigned)f.payload.method.id, got);
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            die("no delivery within %d s: consumed %ld of %ld", WAIT_S, got, o->count);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            die("consuming failed after %ld messages: %s", got, reply_text(r, buf, sizeof(buf)));
        if (env.message.body.len != (size_t)o->size)
            short_bodies++;
        int st = amqp_basic_ack(g_conn, CH_CON, env.delivery_tag, 0);
        amqp_destroy_envelope(&env);
        if (st != AMQP_STATUS_OK)
            die("basic.ack: %s", amqp_error_string2(st));
        got++;
    }
    /* basic.cancel is answered after the acks sent before it on this channel */
    amqp_basic_cancel(g_conn, CH_CON, amqp_cstring_bytes(tag_text));
    check_rpc("basic.cancel");
    double dt = now_s() - t0;
    if (short_bodies > 0)
        die("%ld deliveries had a body of the wrong size", short_bodies);
    return dt;
}

/* A JSON object of exactly n bytes ({"pad":"xxx..."}), or n 'x's when n is
 * too small for one. */
static char *make_body(long n)
{
    char *b = malloc((size_t)n + 1);
    if (b == NULL)
        die("out of memory");
    memset(b, 'x', (size_t)n);
    b[n] = '\0';
    if (n >= 10) {
        memcpy(b, "{\"pad\":\"", 8);
        memcpy(b + n - 2, "\"}", 2);
    }
    return b;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_args(argc, argv, &o);
    char *body = make_body(o.size);
    const char *kind = o.quorum ? "quorum" : "classic";

    connect_broker(o.url);
    declare_queue(o.quorum);

    double pub_s = publish_all(&o, body);
    double pub_rate = pub_s > 0 ? (double)o.count / pub_s : 0;
    printf("ceiling: published %ld x %ld B in %.2f s = %.0f msg/s (confirm window %ld, %s queue)\n",
           o.count, o.size, pub_s, pub_rate, o.window, kind);
    fflush(stdout);

    double con_s = consume_all(&o);
    double con_rate = con_s > 0 ? (double)o.count / con_s : 0;
    printf("ceiling: consumed %ld in %.2f s = %.0f msg/s (prefetch %ld, %s queue)\n", o.count,
           con_s, con_rate, o.prefetch, kind);

    amqp_queue_delete(g_conn, CH_PUB, amqp_cstring_bytes(g_queue), 0, 0);
    check_rpc("queue.delete");
    g_delete_queue = 0;
    printf("RESULT consume_per_s=%.0f publish_per_s=%.0f count=%ld size=%ld prefetch=%ld "
           "window=%ld queue=%s\n",
           con_rate, pub_rate, o.count, o.size, o.prefetch, o.window, kind);

    amqp_channel_close(g_conn, CH_CON, AMQP_REPLY_SUCCESS);
    amqp_channel_close(g_conn, CH_PUB, AMQP_REPLY_SUCCESS);
    amqp_connection_close(g_conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(g_conn);
    free(body);
    return 0;
}
