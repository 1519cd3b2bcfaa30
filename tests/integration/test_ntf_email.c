/*
 * notifier/ntf_email against a real SMTP sink (maildev, scripts/services up
 * mail) and, for replies maildev never gives, through
 * tests/fakes/smtp_fault_proxy.py in front of it:
 * - 20 messages through 2 threads, batch_max 10: all SENT, each arrives once
 *   with its decoded UTF-8 subject, To name, text and html parts, Message-ID;
 * - a 451 on RCPT gives TEMPFAIL 451, a 550 PERMFAIL 550, a 554 on DATA
 *   PERMFAIL 554, while the other messages of the same session are SENT
 *   (the proxy's "hold" makes the batch one session deterministically);
 * - a closed port gives TEMPFAIL with code 0;
 * - closing with queued messages fails them with "shutting down";
 * - a bad address fails in ntf_email_send and the callback never runs.
 *
 * Environment: SMTP_HOST, SMTP_PORT, MAIL_API_URL (defaults 127.0.0.1, 1025,
 * http://127.0.0.1:8025), VN_SOURCE_DIR. Exits 77 (skip) when maildev's HTTP
 * API does not answer. Every wait is bounded, and alarm() is a last resort.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <uv.h>

#include "core/common.h"
#include "core/log.h"
#include "notifier/ntf_email.h"

#define FROM "Вестник Тест <noreply@vestnik.test>"

static char smtp_host[256] = "127.0.0.1";
static int smtp_port = 1025;
static char api_url[512] = "http://127.0.0.1:8025";

/* ------------------------------------------------------------------------ */
/* maildev's HTTP API                                                       */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    vn_buf_append(ud, data, size * n);
    return size * n;
}

/* GET or DELETE api_url + path; returns the HTTP status (0 = no answer). */
static long api_call(const char *method, const char *path, struct vn_buf *body)
{
    CURL *c = curl_easy_init();
    char *url = xasprintf("%s%s", api_url, path);
    long code = 0;
    struct vn_buf sink = VN_BUF_INIT;

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body ? body : &sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    free(url);
    vn_buf_free(&sink);
    return code;
}

/* All messages in maildev as a JSON array (caller puts it). */
static json_object *mail_list(void)
{
    struct vn_buf b = VN_BUF_INIT;
    json_object *arr = NULL;
    if (api_call("GET", "/email", &b) == 200)
        arr = json_tokener_parse(b.data);
    vn_buf_free(&b);
    if (arr && !json_object_is_type(arr, json_type_array)) {
        json_object_put(arr);
        arr = NULL;
    }
    return arr;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Messages in arr whose Message-ID is <id>. *found is the last one (borrowed). */
static int count_msgid(json_object *arr, const char *id, json_object **found)
{
    char *want = xasprintf("<%s>", id);
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *m = json_object_array_get_idx(arr, i);
        const char *mid = jstr(m, "messageId");
        if (mid && (strcmp(mid, want) == 0 || strcmp(mid, id) == 0)) {
            n++;
            if (found)
                *found = m;
        }
    }
    free(want);
    return n;
}

/* Poll maildev until every id is there (or 10 s pass); returns the list. */
static json_object *wait_for_ids(char **ids, size_t n)
{
    uint64_t until = vn_now_ms() + 10000;
    for (;;) {
        json_object *arr = mail_list();
        size_t have = 0;
        for (size_t i = 0; arr && i < n; i++)
            have += count_msgid(arr, ids[i], NULL) > 0;
        if (have == n || vn_now_ms() > until)
            return arr;
        json_object_put(arr);
        usleep(100 * 1000);
    }
}

/* ------------------------------------------------------------------------ */
/* the fault proxy                                                          */

struct proxy {
    FILE *pipe;
    int smtp_port;
    int ctl_port;
};

static const char *source_dir(void)
{
    const char *s = getenv("VN_SOURCE_DIR");
    return s && *s ? s : ".";
}

static int proxy_start(struct proxy *px)
{
    char line[128];
    char *cmd = xasprintf("exec /usr/bin/python3 %s/tests/fakes/smtp_fault_proxy.py "
                          "--upstream %s:%d --parent-pid %ld",
                          source_dir(), smtp_host, smtp_port, (long)getpid());
    px->pipe = popen(cmd, "r");
    free(cmd);
    if (px->pipe == NULL)
        return -1;
    if (fgets(line, sizeof(line), px->pipe) == NULL ||
        sscanf(line, "READY %d %d", &px->smtp_port, &px->ctl_port) != 2) {
        pclose(px->pipe);
        px->pipe = NULL;
        return -1;
    }
    return 0;
}

/* Send one control line, return the answer (static buffer). */
static const char *proxy_ctl(struct proxy *px, const char *fmt, ...)
{
    static char answer[256];
    struct sockaddr_in sa;
    char body[500], cmd[512];
    va_list ap;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t got = 0;

    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "%s\n", body);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)px->ctl_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    answer[0] = '\0';
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
        if (fd >= 0)
            close(fd);
        return "error: control port";
    }
    while (got + 1 < sizeof(answer)) {
        ssize_t r = read(fd, answer + got, sizeof(answer) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        answer[got] = '\0';
        if (strchr(answer, '\n'))
            break;
    }
    close(fd);
    answer[strcspn(answer, "\n")] = '\0';
    return answer;
}

static void proxy_stop(struct proxy *px)
{
    if (px->pipe == NULL)
        return;
    proxy_ctl(px, "quit");
    pclose(px->pipe);
    px->pipe = NULL;
}

/* ------------------------------------------------------------------------ */
/* loop plumbing                                                            */

struct outcome {
    int fired; /* how many times the callback ran (must end at 1) */
    enum ntf_email_status status;
    int code;
    char detail[256];
};

static void on_result(const struct ntf_email_result *r, void *ud)
{
    struct outcome *o = ud;
    o->fired++;
    o->status = r->status;
    o->code = r->smtp_code;
    snprintf(o->detail, sizeof(o->detail), "%s", r->detail ? r->detail : "(null)");
}

static void on_tick(uv_timer_t *t)
{
    VN_UNUSED(t); /* only wakes uv_run so deadlines are checked */
}

struct fx {
    uv_loop_t loop;
    uv_timer_t tick;
    struct ntf_email_pool *pool;
    int closed;
    struct proxy px;
};

static void on_closed(void *ud)
{
    ((struct fx *)ud)->closed = 1;
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 50, 50);
    *state = f;
    return 0;
}

static void close_pool(struct fx *f)
{
    if (f->pool == NULL)
        return;
    ntf_email_pool_close(f->pool, on_closed, f);
    uint64_t until = vn_now_ms() + 30000;
    while (!f->closed && vn_now_ms() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(f->closed);
    f->pool = NULL;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    close_pool(f);
    proxy_stop(&f->px);
    uv_close((uv_handle_t *)&f->tick, NULL);
    while (uv_run(&f->loop, UV_RUN_NOWAIT) != 0)
        ;
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static struct ntf_email_pool *new_pool(struct fx *f, int port, unsigned threads, unsigned batch)
{
    char err[256] = "";
    struct ntf_email_opts o;
    memset(&o, 0, sizeof(o));
    o.host = smtp_host;
    o.port = port;
    o.starttls = "try";
    o.from = FROM;
    o.threads = threads;
    o.batch_max = batch;
    o.timeout_ms = 10000;
    f->pool = ntf_email_pool_new(&f->loop, &o, err, sizeof(err));
    if (f->pool == NULL)
        fail_msg("ntf_email_pool_new: %s", err);
    return f->pool;
}

/* Run the loop until all n outcomes fired (30 s at most). */
static void wait_all(struct fx *f, struct outcome *o, size_t n)
{
    uint64_t until = vn_now_ms() + 30000;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += o[i].fired > 0;
        if (done == n)
            break;
        if (vn_now_ms() > until)
            fail_msg("only %zu of %zu callbacks after 30 s", done, n);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(o[i].fired, 1);
}

static void random_tag(char *tag)
{
    vn_random_hex(tag, 6);
}

/* ------------------------------------------------------------------------ */
/* tests                                                                    */

static void test_batch_to_maildev(void **state)
{
    struct fx *f = *state;
    enum { N = 20 };
    struct outcome o[N];
    char *ids[N], *subjects[N], *names[N], *texts[N], *htmls[N], *addrs[N];
    char tag[13];

    memset(o, 0, sizeof(o));
    random_tag(tag);
    new_pool(f, smtp_port, 2, 10);
    for (int i = 0; i < N; i++) {
        struct ntf_email m;
        ids[i] = xasprintf("%d.%s@vestnik.test", i, tag);
        subjects[i] = xasprintf("Привет, мир! 🎉🚀 Заказ №%d готов [%s]", i, tag);
        names[i] = xasprintf("Иван Петров %d", i);
        addrs[i] = xasprintf("user%d-%s@example.com", i, tag);
        texts[i] = xasprintf("Текст письма %d\n.\nFrom the team = us\n", i);
        htmls[i] = xasprintf("<p>Привет <b>%d</b></p>", i);
        memset(&m, 0, sizeof(m));
        m.to_addr = addrs[i];
        m.to_name = names[i];
        m.subject = subjects[i];
        m.text = texts[i];
        m.html = htmls[i];
        m.message_id = ids[i];
        assert_int_equal(ntf_email_send(f->pool, &m, on_result, &o[i]), 0);
    }
    assert_int_equal(ntf_email_pending(f->pool), N);
    wait_all(f, o, N);
    assert_int_equal(ntf_email_pending(f->pool), 0);
    for (int i = 0; i < N; i++) {
        if (o[i].status != NTF_EMAIL_SENT || o[i].code != 250)
            fail_msg("message %d: status %d code %d: %s", i, o[i].status, o[i].code, o[i].detail);
    }

    json_object *arr = wait_for_ids(ids, N);
    assert_non_null(arr);
    for (int i = 0; i < N; i++) {
        json_object *m = NULL, *to = NULL, *to0;
        if (count_msgid(arr, ids[i], &m) != 1)
            fail_msg("message %s arrived %d times", ids[i], count_msgid(arr, ids[i], NULL));
        assert_string_equal(jstr(m, "subject"), subjects[i]);
        assert_true(json_object_object_get_ex(m, "to", &to));
        assert_int_equal(json_object_array_length(to), 1);
        to0 = json_object_array_get_idx(to, 0);
        assert_string_equal(jstr(to0, "address"), addrs[i]);
        assert_string_equal(jstr(to0, "name"), names[i]);
        const char *text = jstr(m, "text"), *html = jstr(m, "html");
        assert_non_null(text);
        assert_non_null(html);
        char *want = xasprintf("Текст письма %d\n.\nFrom the team = us", i);
        if (strstr(text, want) == NULL)
            fail_msg("text of %d is \"%s\"", i, text);
        free(want);
        assert_non_null(strstr(html, htmls[i]));
        free(ids[i]);
        free(subjects[i]);
        free(names[i]);
        free(addrs[i]);
        free(texts[i]);
        free(htmls[i]);
    }
    json_object_put(arr);
}

/*
 * Faults through the proxy. "hold" keeps the first (warm-up) session waiting
 * for its greeting while the five test messages are queued, so the single
 * thread then takes all five in one session.
 */
static void test_faults_in_one_session(void **state)
{
    struct fx *f = *state;
    enum { N = 6 };
    const char *who[N] = {"warmup", "ok1", "temp", "perm", "ok2", "ok3"};
    struct outcome o[N];
    char *ids[N], *addrs[N];
    char tag[13];
    const char *a;

    memset(o, 0, sizeof(o));
    random_tag(tag);
    if (proxy_start(&f->px) != 0)
        fail_msg("cannot start tests/fakes/smtp_fault_proxy.py with /usr/bin/python3");
    assert_string_equal(proxy_ctl(&f->px, "hold"), "ok");
    a = proxy_ctl(&f->px, "fault RCPT 1 temp-%s@ 451 4.3.0 try again later", tag);
    assert_string_equal(a, "ok");
    a = proxy_ctl(&f->px, "fault RCPT 1 perm-%s@ 550 5.1.1 no such user", tag);
    assert_string_equal(a, "ok");
    /* The first DATA of all is the warm-up's: refused for good. */
    assert_string_equal(proxy_ctl(&f->px, "fault DATA 1 * 554 5.6.0 content rejected"), "ok");

    new_pool(f, f->px.smtp_port, 1, 10);
    for (int i = 0; i < N; i++) {
        struct ntf_email m;
        ids[i] = xasprintf("%s.%s@vestnik.test", who[i], tag);
        addrs[i] = xasprintf("%s-%s@example.com", who[i], tag);
        memset(&m, 0, sizeof(m));
        m.to_addr = addrs[i];
        m.subject = "Fault test";
        m.text = "body";
        m.message_id = ids[i];
        assert_int_equal(ntf_email_send(f->pool, &m, on_result, &o[i]), 0);
        if (i == 0) {
            /* let the thread take the warm-up alone and block on the greeting */
            uint64_t until = vn_now_ms() + 5000;
            while (vn_now_ms() < until &&
                   strcmp(proxy_ctl(&f->px, "stats"), "ok sessions=1 forwarded=0 faulted=0") != 0)
                usleep(10 * 1000);
            assert_string_equal(proxy_ctl(&f->px, "stats"), "ok sessions=1 forwarded=0 faulted=0");
        }
    }
    assert_string_equal(proxy_ctl(&f->px, "release"), "ok");
    wait_all(f, o, N);

    assert_int_equal(o[0].status, NTF_EMAIL_PERMFAIL);
    assert_int_equal(o[0].code, 554);
    assert_non_null(strstr(o[0].detail, "DATA"));
    assert_int_equal(o[1].status, NTF_EMAIL_SENT);
    assert_int_equal(o[1].code, 250);
    assert_int_equal(o[2].status, NTF_EMAIL_TEMPFAIL);
    assert_int_equal(o[2].code, 451);
    assert_non_null(strstr(o[2].detail, "try again later"));
    assert_int_equal(o[3].status, NTF_EMAIL_PERMFAIL);
    assert_int_equal(o[3].code, 550);
    assert_non_null(strstr(o[3].detail, "no such user"));
    assert_int_equal(o[4].status, NTF_EMAIL_SENT);
    assert_int_equal(o[5].status, NTF_EMAIL_SENT);
    /* two connections in all: the warm-up, then one session for five messages */
    a = proxy_ctl(&f->px, "stats");
    assert_non_null(strstr(a, "sessions=2 "));
    assert_non_null(strstr(a, "faulted=3"));

    /* what arrived: the SENT ones once each, the refused ones not at all */
    char *sent_ids[3] = {ids[1], ids[4], ids[5]};
    json_object *arr = wait_for_ids(sent_ids, 3);
    assert_non_null(arr);
    for (int i = 0; i < N; i++) {
        int want = o[i].status == NTF_EMAIL_SENT ? 1 : 0;
        if (count_msgid(arr, ids[i], NULL) != want)
            fail_msg("%s: %d copies in maildev, want %d", who[i], count_msgid(arr, ids[i], NULL),
                     want);
        free(ids[i]);
        free(addrs[i]);
    }
    json_object_put(arr);
}

/* A port nobody listens on: TEMPFAIL, code 0, for every message of the batch. */
static void test_closed_port(void **state)
{
    struct fx *f = *state;
    struct outcome o[3];
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd); /* bound, never listened: the port is closed */

    memset(o, 0, sizeof(o));
    new_pool(f, ntohs(sa.sin_port), 1, 10);
    for (int i = 0; i < 3; i++) {
        struct ntf_email m = {"x@example.com", NULL, "s", "t", NULL, NULL};
        assert_int_equal(ntf_email_send(f->pool, &m, on_result, &o[i]), 0);
    }
    wait_all(f, o, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o[i].status, NTF_EMAIL_TEMPFAIL);
        assert_int_equal(o[i].code, 0);
        if (strstr(o[i].detail, "refused") == NULL)
            fail_msg("detail: %s", o[i].detail);
    }
}

/* STARTTLS required but maildev does not offer it: TEMPFAIL saying so, nothing sent. */
static void test_starttls_required(void **state)
{
    struct fx *f = *state;
    struct outcome o[2];
    char err[256];
    struct ntf_email_opts opt;

    memset(o, 0, sizeof(o));
    memset(&opt, 0, sizeof(opt));
    opt.host = smtp_host;
    opt.port = smtp_port;
    opt.starttls = "required";
    opt.from = FROM;
    opt.threads = 1;
    opt.batch_max = 5;
    opt.timeout_ms = 5000;
    f->pool = ntf_email_pool_new(&f->loop, &opt, err, sizeof(err));
    assert_non_null(f->pool);
    for (int i = 0; i < 2; i++) {
        struct ntf_email m = {"tls@example.com", NULL, "tls", "t", NULL, NULL};
        assert_int_equal(ntf_email_send(f->pool, &m, on_result, &o[i]), 0);
    }
    wait_all(f, o, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(o[i].status, NTF_EMAIL_TEMPFAIL);
        assert_int_equal(o[i].code, 0);
        if (strstr(o[i].detail, "STARTTLS") == NULL)
            fail_msg("detail: %s", o[i].detail);
    }
}

/* Closing with work queued: the unsent fail with "shutting down", the one in flight finishes. */
static void test_close_with_queue(void **state)
{
    struct fx *f = *state;
    struct outcome o[3];

    memset(o, 0, sizeof(o));
    if (proxy_start(&f->px) != 0)
        fail_msg("cannot start the fault proxy");
    assert_string_equal(proxy_ctl(&f->px, "hold"), "ok");
    new_pool(f, f->px.smtp_port, 1, 1);
    for (int i = 0; i < 3; i++) {
        struct ntf_email m = {"close@example.com", "Закрытие", "closing", "t", "<p>h</p>", NULL};
        assert_int_equal(ntf_email_send(f->pool, &m, on_result, &o[i]), 0);
        if (i == 0) {
            uint64_t until = vn_now_ms() + 5000;
            while (vn_now_ms() < until &&
                   strncmp(proxy_ctl(&f->px, "stats"), "ok sessions=1", 13) != 0)
                usleep(10 * 1000);
        }
    }
    ntf_email_pool_close(f->pool, on_closed, f);
    assert_int_equal(ntf_email_send(f->pool,
                                    &(struct ntf_email){"a@b.c", NULL, "s", "t", NULL, NULL},
                                    on_result, &o[0]),
                     VN_ESTATE);
    /* the two queued ones fail now, before the held session ends */
    uint64_t until = vn_now_ms() + 5000;
    while ((o[1].fired == 0 || o[2].fired == 0) && vn_now_ms() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(o[0].fired, 0);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(o[i].fired, 1);
        assert_int_equal(o[i].status, NTF_EMAIL_TEMPFAIL);
        assert_int_equal(o[i].code, 0);
        assert_string_equal(o[i].detail, "shutting down");
    }
    assert_false(f->closed);
    assert_string_equal(proxy_ctl(&f->px, "release"), "ok");
    until = vn_now_ms() + 30000;
    while (!f->closed && vn_now_ms() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(f->closed);
    f->pool = NULL;
    assert_int_equal(o[0].fired, 1);
    assert_int_equal(o[0].status, NTF_EMAIL_SENT);
}

/* Bad input fails in ntf_email_send, before any thread sees it. */
static void test_bad_input(void **state)
{
    struct fx *f = *state;
    struct outcome o;
    char err[256];

    memset(&o, 0, sizeof(o));
    new_pool(f, smtp_port, 1, 1);
    struct ntf_email bad[] = {
        {"not an address", NULL, "s", "t", NULL, NULL},
        {"a@b.c", "Eve\r\nBcc: x@y.z", "s", "t", NULL, NULL},
        {"a@b.c", NULL, "s\nBcc: x@y.z", "t", NULL, NULL},
        {"a@b.c", NULL, "s", "t", NULL, "<bad id>"},
        {NULL, NULL, "s", "t", NULL, NULL},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(bad); i++)
        assert_int_equal(ntf_email_send(f->pool, &bad[i], on_result, &o), VN_EINVAL);
    assert_int_equal(ntf_email_pending(f->pool), 0);
    close_pool(f);
    assert_int_equal(o.fired, 0);

    /* bad options */
    struct ntf_email_opts opt;
    memset(&opt, 0, sizeof(opt));
    opt.host = "127.0.0.1";
    opt.port = 25;
    opt.from = "a@b.c";
    opt.threads = 1;
    opt.batch_max = 1;
    opt.starttls = "maybe";
    assert_null(ntf_email_pool_new(&f->loop, &opt, err, sizeof(err)));
    assert_non_null(strstr(err, "starttls"));
    opt.starttls = "off";
    opt.from = "Name <no-at>";
    assert_null(ntf_email_pool_new(&f->loop, &opt, err, sizeof(err)));
    assert_non_null(strstr(err, "from"));
    opt.from = "a@b.c";
    opt.threads = 0;
    assert_null(ntf_email_pool_new(&f->loop, &opt, err, sizeof(err)));
    assert_non_null(strstr(err, "threads"));
}

/* ------------------------------------------------------------------------ */

static void read_env(void)
{
    const char *h = getenv("SMTP_HOST"), *p = getenv("SMTP_PORT"), *u = getenv("MAIL_API_URL");
    if (h && *h)
        snprintf(smtp_host, sizeof(smtp_host), "%s", h);
    if (p && *p)
        smtp_port = (int)strtol(p, NULL, 10);
    if (u && *u)
        snprintf(api_url, sizeof(api_url), "%s", u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_to_maildev, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_in_one_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_required, setup, teardown),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN); /* as core/app.c does */
    alarm(280);               /* below ctest's 300 s: a hang fails with a signal, not a timeout */
    read_env();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (api_call("GET", "/email", NULL) != 200) {
        fprintf(stderr,
                "SKIP: maildev's HTTP API does not answer at %s/email "
                "(start it with scripts/services up mail)\n",
                api_url);
        curl_global_cleanup();
        return 77;
    }
    if (getenv("VN_TEST_DEBUG") == NULL)
        vn_log_set_level(VN_LOG_ERROR); /* expected SMTP warnings stay quiet */
    if (getenv("VN_TEST_FILTER"))
        cmocka_set_test_filter(getenv("VN_TEST_FILTER"));
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
