/*
 * bench/paced_publish - publish event envelopes at a fixed rate, each stamped
 * with the time it is published, for the notifier's latency benchmark
 * (bench/notifier_e2e.sh). `vestnik send --count N` stamps every copy with
 * one occurred_at (the time the command started), so per-event latency needs
 * this. No vestnik code: rabbitmq-c, one connection, publisher confirms.
 *
 *   paced_publish --exchange X --routing-key K --template FILE
 *                 --rate R --count N [--url URL]
 *
 * FILE holds one envelope (JSON) with the placeholders @ID@ (replaced by a
 * fresh UUID v4) and @TS@ (replaced by the current wall-clock time, RFC 3339
 * with milliseconds, taken right before basic.publish). Message i is due at
 * start + i / R; the time until the next one is spent reading publisher
 * confirms, so the rate is kept without bursts (a late message is sent at once
 * and the schedule is not shifted). Messages are persistent, with message_id
 * = the event id and content type application/json, like `vestnik send`.
 *
 * Output: a last line for scripts:
 *   RESULT published=N confirmed=N seconds=S rate=R late_ms_max=L
 * Exit status: 0 all confirmed, 1 broker error or a nack, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#define CH 1

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "paced_publish: %s\n", what);
    exit(1);
}

static void check_rpc(amqp_connection_state_t c, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "paced_publish: %s failed (reply type %d)\n", what, (int)r.reply_type);
        exit(1);
    }
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return buf;
}

static void uuid4(char out[37], uint64_t *state)
{
    unsigned char b[16];
    for (int i = 0; i < 16; i++) { /* xorshift64*: ids only need to be unique */
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        b[i] = (unsigned char)((*state * 2685821657736338717ULL) >> 56);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void now_rfc3339(char out[64])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* Replace the first @ID@ and @TS@ of tpl into out. */
static size_t fill(const char *tpl, const char *id, const char *ts, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = tpl; *p && n + 64 < cap;) {
        if (strncmp(p, "@ID@", 4) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "%s", id);
            p += 4;
        } else if (strncmp(p, "@TS@", 4) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "%s", ts);
            p += 4;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return n;
}

/* Read frames for up to wait_s seconds (0: only what is already there);
 * counts publisher confirms. */
static void pump(amqp_connection_state_t c, double wait_s, uint64_t *confirmed)
{
    for (;;) {
        amqp_frame_t f;
        struct timeval tv = {.tv_sec = (time_t)wait_s,
                             .tv_usec = (suseconds_t)((wait_s - (double)(time_t)wait_s) * 1e6)};
        amqp_maybe_release_buffers(c);
        int st = amqp_simple_wait_frame_noblock(c, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT)
            return;
        if (st != AMQP_STATUS_OK)
            die("reading from the broker failed");
        if (f.frame_type == AMQP_FRAME_METHOD) {
            if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                amqp_basic_ack_t *a = f.payload.method.decoded;
                if (a->delivery_tag > *confirmed)
                    *confirmed = a->multiple ? a->delivery_tag : *confirmed + 1;
            } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
                die("the broker nacked a publish");
            } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                       f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
                die("the broker closed the channel (does the exchange exist?)");
            }
        }
        wait_s = 0; /* after one frame, take only what is already buffered */
    }
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", required_argument, NULL, 'u'},
        {"exchange", required_argument, NULL, 'x'},
        {"routing-key", required_argument, NULL, 'k'},
        {"template", required_argument, NULL, 't'},
        {"rate", required_argument, NULL, 'r'},
        {"count", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    const char *url = getenv("AMQP_URL"), *exchange = NULL, *rk = NULL, *tplpath = NULL;
    double rate = 0;
    long count = 0;
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'u':
            url = optarg;
            break;
        case 'x':
            exchange = optarg;
            break;
        case 'k':
            rk = optarg;
            break;
        case 't':
            tplpath = optarg;
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 'n':
            count = strtol(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (!url || !exchange || !rk || !tplpath || rate <= 0 || count <= 0) {
        fprintf(stderr, "usage: paced_publish --exchange X --routing-key K --template FILE "
                        "--rate R --count N [--url URL]\n");
        return 2;
    }
    const char *tpl = read_file(tplpath);
    if (tpl == NULL)
        die("cannot read the template");

    struct amqp_connection_info ci;
    char *copy = strdup(url);
    if (copy == NULL || amqp_parse_url(copy, &ci) != AMQP_STATUS_OK)
        die("AMQP_URL is not an amqp:// URL");
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(c);
    if (sock == NULL || amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK)
        die("cannot connect to the broker");
    amqp_rpc_reply_t r = amqp_login(c, (ci.vhost && *ci.vhost) ? ci.vhost : "/", 0, 131072, 0,
                                    AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        die("login failed");
    amqp_channel_open(c, CH);
    check_rpc(c, "channel.open");
    amqp_confirm_select(c, CH);
    check_rpc(c, "confirm.select");

    struct timespec seed;
    clock_gettime(CLOCK_REALTIME, &seed);
    uint64_t rs = (uint64_t)seed.tv_nsec * 6364136223846793005ULL ^ (uint64_t)seed.tv_sec ^
                  ((uint64_t)getpid() << 32);
    if (rs == 0)
        rs = 88172645463325252ULL;
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                  AMQP_BASIC_MESSAGE_ID_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
    };
    static char body[70000];
    uint64_t confirmed = 0;
    double late_max = 0, t0 = mono_s();
    for (long i = 0; i < count; i++) {
        double due = t0 + (double)i / rate, now = mono_s();
        while (now < due) {
            pump(c, due - now, &confirmed);
            now = mono_s();
        }
        if (now - due > late_max)
            late_max = now - due;
        char id[37], ts[64];
        uuid4(id, &rs);
        now_rfc3339(ts);
        size_t len = fill(tpl, id, ts, body, sizeof(body));
        props.message_id = amqp_cstring_bytes(id);
        if (amqp_basic_publish(c, CH, amqp_cstring_bytes(exchange), amqp_cstring_bytes(rk), 0, 0,
                               &props, (amqp_bytes_t){len, body}) != AMQP_STATUS_OK)
            die("basic.publish failed");
        pump(c, 0, &confirmed);
    }
    double secs = mono_s() - t0, deadline = mono_s() + 30;
    while (confirmed < (uint64_t)count && mono_s() < deadline)
        pump(c, 0.5, &confirmed);
    printf("RESULT published=%ld confirmed=%llu seconds=%.3f rate=%.1f late_ms_max=%.1f\n", count,
           (unsigned long long)confirmed, secs, secs > 0 ? (double)count / secs : 0,
           late_max * 1000);
    amqp_channel_close(c, CH, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    free(copy);
    return confirmed == (uint64_t)count ? 0 : 1;
}
