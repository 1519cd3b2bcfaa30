/*
 * bench/tg_send - sends sendMessage calls to a Bot API server (the fake) and
 * prints what it achieved. Three modes:
 *
 *   --mode limits      N messages to C chats through the shared Redis limiter;
 *                      prints the achieved rate against the configured global
 *                      limit and the number of 429 answers received.
 *   --mode throughput  N messages with the limiter off, K in flight at once over
 *                      the project's client (curl multi, keep-alive); prints
 *                      requests/s and p50/p99 latency.
 *   --mode baseline    the same N messages the way simple C clients do it:
 *                      one curl easy handle per request, one at a time.
 *
 * Output is one human line plus one JSON line (for scripts) on stdout.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bot/tg_client.h"
#include "core/common.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/redis.h"

/* Microsecond monotonic clock: latencies on loopback are below a millisecond. */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

struct bench {
    uv_loop_t loop;
    struct hc_client *hc;
    struct rds_client *redis;
    struct tg_client *tg;
    const char *api;
    const char *token;
    int n, chats, inflight_max, chat_offset;
    int started, done, failed, got429;
    double *lat_ms;
    double *start_ms;
    double t0, t_last;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static void start_one(struct bench *b);

static void on_sent(const struct tg_result *r, void *ud)
{
    struct bench *b = ud;
    int i = b->done++;
    double now = now_ms();
    b->lat_ms[i] = now - b->start_ms[i];
    b->t_last = now;
    if (r->kind != TG_OK)
        b->failed++;
    /* every retry after a 429 is one 429 received */
    if (r->retry_after > 0 || r->kind == TG_ERR_RATE_LIMITED)
        b->got429 += r->attempts - 1;
    if (b->started < b->n)
        start_one(b);
}

static void start_one(struct bench *b)
{
    int i = b->started++;
    char text[64];
    snprintf(text, sizeof(text), "bench message %d", i);
    struct tg_send m = {0};
    m.chat_id = 100000 + b->chat_offset + (i % b->chats);
    m.text = text;
    b->start_ms[i] = now_ms();
    tg_send_message(b->tg, &m, on_sent, b);
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

static int run_baseline(struct bench *b)
{
    char url[512], body[128];
    snprintf(url, sizeof(url), "%s/bot%s/sendMessage", b->api, b->token);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    b->t0 = now_ms();
    for (int i = 0; i < b->n; i++) {
        CURL *e = curl_easy_init();
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        snprintf(body, sizeof(body), "{\"chat_id\":%d,\"text\":\"bench message %d\"}",
                 100000 + (i % b->chats), i);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
        double s = now_ms();
        long code = 0;
        if (curl_easy_perform(e) != CURLE_OK)
            b->failed++;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        if (code != 200)
            b->failed++;
        b->lat_ms[i] = now_ms() - s;
        curl_slist_free_all(h);
        curl_easy_cleanup(e);
    }
    b->t_last = now_ms();
    b->done = b->n;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: tg_send --api URL [--mode limits|throughput|baseline] [--messages N]\n"
                    "               [--chats C] [--inflight K] [--token T] [--global-limit R]\n"
                    "               [--chat-offset O]\n"
                    "limits mode reads REDIS_URL for the shared limiter.\n");
}

int main(int argc, char **argv)
{
    struct bench b;
    const char *mode = "throughput";
    double global = 30;
    memset(&b, 0, sizeof(b));
    b.token = "123456:bench";
    b.n = 1000;
    b.chats = 200;
    b.inflight_max = 64;
    static const struct option opts[] = {{"api", 1, 0, 'a'},          {"mode", 1, 0, 'm'},
                                         {"messages", 1, 0, 'n'},     {"chats", 1, 0, 'c'},
                                         {"inflight", 1, 0, 'k'},     {"token", 1, 0, 't'},
                                         {"global-limit", 1, 0, 'g'}, {"chat-offset", 1, 0, 'o'},
                                         {"help", 0, 0, 'h'},         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            b.api = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'n':
            b.n = (int)strtol(optarg, NULL, 10);
            break;
        case 'c':
            b.chats = (int)strtol(optarg, NULL, 10);
            break;
        case 'k':
            b.inflight_max = (int)strtol(optarg, NULL, 10);
            break;
        case 't':
            b.token = optarg;
            break;
        case 'g':
            global = strtod(optarg, NULL);
            break;
        case 'o':
            b.chat_offset = (int)strtol(optarg, NULL, 10);
            break;
        default:
            usage();
            return ch == 'h' ? 0 : 2;
        }
    }
    if (b.api == NULL || b.n <= 0 || b.chats <= 0 || b.inflight_max <= 0) {
        usage();
        return 2;
    }
    vn_log_set_level(VN_LOG_ERROR);
    b.lat_ms = xcalloc((size_t)b.n, sizeof(double));
    b.start_ms = xcalloc((size_t)b.n, sizeof(double));

    if (strcmp(mode, "baseline") == 0) {
        run_baseline(&b);
    } else {
        int limits = strcmp(mode, "limits") == 0;
        uv_loop_init(&b.loop);
        b.hc = hc_new(&b.loop, NULL);
        struct tg_client_opts o;
        memset(&o, 0, sizeof(o));
        o.api_url = b.api;
        o.token = b.token;
        o.limiter_off = !limits;
        o.max_retries = 3;
        o.backoff_base_ms = 100;
        if (limits) {
            char err[128];
            const char *url = getenv("REDIS_URL");
            struct rds_opts ro = {url ? url : "redis://127.0.0.1:6380/0", 1000, 1000, 2000};
            b.redis = rds_new(&b.loop, &ro, err, sizeof(err));
            if (b.redis == NULL) {
                fprintf(stderr, "tg_send: %s\n", err);
                return 1;
            }
            uint64_t until = vn_now_ms() + 5000;
            while (!rds_is_ready(b.redis) && vn_now_ms() < until)
                uv_run(&b.loop, UV_RUN_ONCE);
            if (!rds_is_ready(b.redis)) {
                fprintf(stderr, "tg_send: Redis at %s does not answer\n", ro.url);
                return 1;
            }
            o.redis = b.redis;
            tg_limit_cfg_default(&o.limits);
            o.limits.global_per_s = global;
            /* every message is queued at once; the limiter paces them */
            b.inflight_max = b.n;
        }
        b.tg = tg_client_new(&b.loop, b.hc, &o);
        b.t0 = now_ms();
        for (int i = 0; i < b.inflight_max && b.started < b.n; i++)
            start_one(&b);
        while (b.done < b.n)
            uv_run(&b.loop, UV_RUN_ONCE);
        tg_client_close(b.tg);
        hc_close(b.hc);
        rds_close(b.redis);
        uv_run(&b.loop, UV_RUN_DEFAULT);
        uv_loop_close(&b.loop);
    }

    double secs = (b.t_last - b.t0) / 1000.0;
    double rate = secs > 0 ? b.n / secs : 0;
    double p50 = pct(b.lat_ms, b.n, 0.50), p99 = pct(b.lat_ms, b.n, 0.99);
    if (strcmp(mode, "limits") == 0) {
        printf("limits: %d messages to %d chats in %.2f s = %.2f msg/s, limit %.0f/s (%.1f%%), "
               "429s received %d, failed %d\n",
               b.n, b.chats, secs, rate, global, 100.0 * rate / global, b.got429, b.failed);
    } else {
        printf("%s: %d sendMessage in %.2f s = %.0f req/s, p50 %.2f ms, p99 %.2f ms, failed %d\n",
               mode, b.n, secs, rate, p50, p99, b.failed);
    }
    printf("{\"mode\":\"%s\",\"messages\":%d,\"seconds\":%.3f,\"rate\":%.2f,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"got429\":%d,\"failed\":%d}\n",
           mode, b.n, secs, rate, p50, p99, b.got429, b.failed);
    free(b.lat_ms);
    free(b.start_ms);
    return b.failed ? 1 : 0;
}
