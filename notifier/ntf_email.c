/*
 * ntf_email.c - SMTP sender threads on libesmtp; see ntf_email.h.
 *
 * Who owns what:
 * - A job (struct ntf_job: the finished MIME message, the recipient, the
 *   callback) sits in exactly one place at a time: the pool's queue (under
 *   lock), one thread's batch (that thread only), or the done list (under
 *   lock) on its way to the loop, which runs its callback and frees it.
 * - The loop owns the uv_async_t and every callback; threads only move jobs
 *   between lists under the lock and call uv_async_send.
 * - Options are copied in ntf_email_pool_new and read-only afterwards, so the
 *   threads read them without the lock.
 * The pool is freed in the async handle's close callback, after every thread
 * has been joined.
 *
 * What libesmtp does with the message text (read from its 1.1.0 sources,
 * protocol.c cmd_data2 and message-source.c msg_gets): it splits what the
 * message callback returns into lines at CRLF only (a bare LF stays inside a
 * line), appends CRLF if the text does not end with one, and dot-stuffs every
 * line that starts with '.' (headers and body), then sends the final ".".
 * So the message must already use CRLF line endings - ntf_mime guarantees that
 * and never emits a bare CR or LF - and must not be dot-stuffed by us. It also
 * rewrites some headers: Date, From, Message-Id are added only when missing,
 * Return-Path is stripped, MIME-* and Content-* pass untouched; all headers we
 * write are present, so it adds nothing (header names match case-insensitively).
 */
#include "notifier/ntf_email.h"
#include "notifier/ntf_mime.h"
#include "core/common.h"
#include "core/log.h"

#include <auth-client.h>
#include <libesmtp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EM_MAX_THREADS     64
#define EM_MAX_BATCH       1000
#define EM_DEFAULT_TIMEOUT 30000
#define EM_DETAIL_MAX      200 /* bytes of server text kept in a detail */

struct ntf_job {
    struct ntf_job *next;
    char *msg; /* whole message, CRLF line endings, NUL-terminated */
    size_t len;
    char *rcpt; /* envelope recipient */
    ntf_email_cb cb;
    void *ud;
    /* outcome, set by the thread (or by close) before the job reaches the loop */
    enum ntf_email_status status;
    int code;
    char *detail;
};

struct ntf_email_pool {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_mutex_t lock;
    pthread_cond_t cond;

    /* under lock */
    struct ntf_job *queue, *queue_tail;
    struct ntf_job *done, *done_tail;
    size_t pending; /* accepted, callback not yet run */
    unsigned exited;
    int closing;

    /* read-only after ntf_email_pool_new */
    char *hostport; /* "host:port" for libesmtp */
    enum starttls_option tls;
    char *user; /* NULL = no AUTH */
    char *password;
    char *from_name; /* NULL when from is a bare address */
    char *from_addr;
    char *domain;
    unsigned batch_max;
    long timeout_ms;
    unsigned nthreads;
    unsigned started;
    pthread_t *tids;

    /* loop only */
    int close_called;
    int async_closing;
    void (*on_done)(void *ud);
    void *done_ud;
};

/* What one thread learns about its current session besides per-message status. */
struct session_ctx {
    const struct ntf_email_pool *p;
    int last_code;                 /* code of the last reply line read, 0 = none */
    char last_text[EM_DETAIL_MAX]; /* that line, sanitised */
    char event[EM_DETAIL_MAX];     /* a session-level problem reported by an event */
};

static void job_free(struct ntf_job *j)
{
    if (j == NULL)
        return;
    free(j->msg);
    free(j->rcpt);
    free(j->detail);
    free(j);
}

/* Copy at most EM_DETAIL_MAX-1 bytes of server text, controls as spaces, trimmed. */
static void copy_text(char *dst, size_t dstlen, const char *src, size_t len)
{
    size_t n = 0;
    while (len > 0 && (src[len - 1] == '\r' || src[len - 1] == '\n' || src[len - 1] == ' '))
        len--;
    for (size_t i = 0; i < len && n + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    dst[n] = '\0';
}

static void job_set(struct ntf_job *j, enum ntf_email_status st, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void job_set(struct ntf_job *j, enum ntf_email_status st, int code, const char *fmt, ...)
{
    va_list ap;
    struct vn_buf b = VN_BUF_INIT;

    va_start(ap, fmt);
    vn_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    free(j->detail);
    j->detail = vn_buf_steal(&b);
    j->status = st;
    j->code = code;
}

/* ------------------------------------------------------------------------ */
/* sender threads                                                           */

/*
 * Protocol monitor: remember the last reply line the server sent, so a
 * session that fails before any message (greeting, EHLO, AUTH) can still say
 * why. Only the reading side is looked at: what we write includes the AUTH
 * exchange (the password, base64) and must never be kept or logged.
 */
static void on_monitor(const char *buf, int buflen, int writing, void *arg)
{
    struct session_ctx *ctx = arg;
    const char *p = buf, *end = buf + (buflen > 0 ? buflen : 0);

    if (writing != SMTP_CB_READING)
        return;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le - p >= 3 && p[0] >= '1' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' &&
            p[2] >= '0' && p[2] <= '9') {
            ctx->last_code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
            copy_text(ctx->last_text, sizeof(ctx->last_text), p, (size_t)(le - p));
        }
        p = nl ? nl + 1 : end;
    }
}

/*
 * libesmtp events. Certificate and cipher questions are left unanswered (ok
 * stays 0), so a bad certificate ends the TLS handshake: we never send mail or
 * credentials over a connection we cannot verify.
 */
static void on_event(smtp_session_t session, int event_no, void *arg, ...)
{
    struct session_ctx *ctx = arg;
    VN_UNUSED(session);

    switch (event_no) {
    case SMTP_EV_EXTNA_STARTTLS:
        snprintf(ctx->event, sizeof(ctx->event), "server does not offer STARTTLS");
        break;
    case SMTP_EV_INVALID_PEER_CERTIFICATE:
    case SMTP_EV_NO_PEER_CERTIFICATE:
    case SMTP_EV_WRONG_PEER_CERTIFICATE:
        snprintf(ctx->event, sizeof(ctx->event), "TLS: server certificate not accepted");
        break;
    case SMTP_EV_WEAK_CIPHER:
        snprintf(ctx->event, sizeof(ctx->event), "TLS: cipher too weak");
        break;
    default:
        break;
    }
}

/* auth-client asks for the user name and password: hand out the pool's copies. */
static int on_auth_interact(auth_client_request_t req, char **result, int fields, void *arg)
{
    const struct ntf_email_pool *p = arg;
    for (int i = 0; i < fields; i++) {
        if (req[i].flags & AUTH_PASS)
            result[i] = p->password;
        else if (req[i].flags & AUTH_USER)
            result[i] = p->user;
        else
            result[i] = NULL; /* realm: none */
    }
    return 1;
}

/*
 * Decide one message's outcome from what libesmtp recorded for it. Returns 1
 * when the outcome comes from the session (no reply for the message itself).
 */
/* 530 authentication required, 534/538 mechanism or encryption needed, 535
 * credentials refused: a 5xx about the sender's login (libesmtp goes on after
 * a failed AUTH), not about the message or the recipient. */
static int auth_refused(int code)
{
    return code == 530 || code == 534 || code == 535 || code == 538;
}

static int classify(struct ntf_job *j, smtp_message_t m, smtp_recipient_t r,
                    const struct session_ctx *ctx, const char *session_err)
{
    static const char *const what[] = {"MAIL FROM", "RCPT TO", "DATA"};
    const smtp_status_t *st[3];
    char text[EM_DETAIL_MAX];

    st[0] = smtp_reverse_path_status(m);
    st[1] = smtp_recipient_status(r);
    st[2] = smtp_message_transfer_status(m);
    for (int i = 0; i < 3; i++) {
        if (st[i] == NULL || st[i]->code == 0)
            continue;
        if (st[i]->code / 100 == 2 && i < 2)
            continue; /* accepted so far; look at the next step */
        copy_text(text, sizeof(text), st[i]->text ? st[i]->text : "",
                  st[i]->text ? strlen(st[i]->text) : 0);
        if (st[i]->code / 100 == 2)
            job_set(j, NTF_EMAIL_SENT, st[i]->code, "%d %s", st[i]->code, text);
        else if (auth_refused(st[i]->code))
            /* our login, not this message: the operator fixes SMTP_USER/SMTP_PASSWORD,
             * the message waits on the retry ladder meanwhile */
            job_set(j, NTF_EMAIL_TEMPFAIL, st[i]->code,
                    "%s: %d %s (the server wants a login: check SMTP_USER and SMTP_PASSWORD)",
                    what[i], st[i]->code, text);
        else
            job_set(j, st[i]->code / 100 == 5 ? NTF_EMAIL_PERMFAIL : NTF_EMAIL_TEMPFAIL,
                    st[i]->code, "%s: %d %s", what[i], st[i]->code, text);
        return 0;
    }
    /* No final reply for this message: it was never refused, try again later. */
    if (ctx->event[0]) /* more telling than libesmtp's error code */
        job_set(j, NTF_EMAIL_TEMPFAIL, ctx->last_code >= 400 ? ctx->last_code : 0, "%s",
                ctx->event);
    else if (session_err)
        job_set(j, NTF_EMAIL_TEMPFAIL, ctx->last_code >= 400 ? ctx->last_code : 0, "%s",
                session_err);
    else if (ctx->last_code >= 400)
        job_set(j, NTF_EMAIL_TEMPFAIL, ctx->last_code, "session: %s", ctx->last_text);
    else
        job_set(j, NTF_EMAIL_TEMPFAIL, 0, "connection ended before the message was sent");
    return 1;
}

/* Set every timeout libesmtp has to ms (its RFC minimums overridden). */
static void set_timeouts(smtp_session_t s, long ms)
{
    static const int which[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA, Timeout_TRANSFER,
                                Timeout_DATA2};
    for (size_t i = 0; i < VN_ARRAY_LEN(which); i++)
        smtp_set_timeout(s, which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, ms);
}

/* Send jobs[0..n) in one SMTP session and set each job's outcome. */
static void send_batch(const struct ntf_email_pool *p, struct ntf_job **jobs, size_t n)
{
    struct session_ctx ctx;
    smtp_session_t s = NULL;
    auth_context_t auth = NULL;
    smtp_message_t *msgs = xcalloc(n, sizeof(*msgs));
    smtp_recipient_t *rcpts = xcalloc(n, sizeof(*rcpts));
    char errbuf[128], session_err[EM_DETAIL_MAX];
    const char *serr = NULL;
    struct ntf_job *failed = NULL; /* first job the session failed before its reply */
    size_t nfailed = 0;

    memset(&ctx, 0, sizeof(ctx));
    ctx.p = p;
    s = smtp_create_session();
    if (s == NULL || !smtp_set_server(s, p->hostport) || !smtp_set_hostname(s, p->domain) ||
        !smtp_set_eventcb(s, on_event, &ctx) || !smtp_set_monitorcb(s, on_monitor, &ctx, 0)) {
        snprintf(session_err, sizeof(session_err), "libesmtp: cannot set up a session: %s",
                 smtp_strerror(smtp_errno(), errbuf, sizeof(errbuf)));
        serr = session_err;
        goto classify;
    }
    set_timeouts(s, p->timeout_ms);
    if (!smtp_starttls_enable(s, p->tls) && p->tls != Starttls_DISABLED) {
        snprintf(session_err, sizeof(session_err), "libesmtp: STARTTLS not available: %s",
                 smtp_strerror(smtp_errno(), errbuf, sizeof(errbuf)));
        serr = session_err;
        goto classify;
    }
    if (p->user) {
        auth = auth_create_context();
        if (auth == NULL) {
            snprintf(session_err, sizeof(session_err), "libesmtp: cannot create AUTH context");
            serr = session_err;
            goto classify;
        }
        /* PLAIN and LOGIN send the password as is: allowed, like any MUA. */
        auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
        auth_set_interact_cb(auth, on_auth_interact, (void *)p);
        smtp_auth_set_context(s, auth);
    }
    for (size_t i = 0; i < n; i++) {
        msgs[i] = smtp_add_message(s);
        if (msgs[i] == NULL || !smtp_set_reverse_path(msgs[i], p->from_addr) ||
            !smtp_set_message_str(msgs[i], jobs[i]->msg) ||
            (rcpts[i] = smtp_add_recipient(msgs[i], jobs[i]->rcpt)) == NULL) {
            snprintf(session_err, sizeof(session_err), "libesmtp: cannot add a message: %s",
                     smtp_strerror(smtp_errno(), errbuf, sizeof(errbuf)));
            serr = session_err;
            goto classify;
        }
        smtp_size_set_estimate(msgs[i], jobs[i]->len);
    }
    if (!smtp_start_session(s)) {
        snprintf(session_err, sizeof(session_err), "SMTP session with %s failed: %s", p->hostport,
                 smtp_strerror(smtp_errno(), errbuf, sizeof(errbuf)));
        /* Replies already recorded (a dropped connection mid-batch) still count. */
        serr = session_err;
    }

classify:
    for (size_t i = 0; i < n; i++) {
        if (msgs[i] && rcpts[i]) {
            if (!classify(jobs[i], msgs[i], rcpts[i], &ctx, serr))
                continue;
        } else {
            job_set(jobs[i], NTF_EMAIL_TEMPFAIL, 0, "%s", serr ? serr : "not sent");
        }
        if (nfailed++ == 0)
            failed = jobs[i];
    }
    if (failed) {
        /* Once per attempt; never the body, never the password. */
        struct vn_buf fields = VN_BUF_INIT;
        vn_buf_puts(&fields, "\"server\":");
        vn_buf_json_str(&fields, p->hostport);
        vn_buf_printf(&fields, ",\"messages\":%zu,\"not_sent\":%zu", n, nfailed);
        vn_log_emit(VN_LOG_WARN, "email", NULL, fields.data, "SMTP session failed: %s",
                    failed->detail);
        vn_buf_free(&fields);
    }
    if (s)
        smtp_destroy_session(s);
    if (auth)
        auth_destroy_context(auth);
    free(msgs);
    free(rcpts);
}

static void *thread_main(void *arg)
{
    struct ntf_email_pool *p = arg;
    struct ntf_job **batch = xcalloc(p->batch_max, sizeof(*batch));

    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&p->lock);
        while (!p->closing && p->queue == NULL)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->closing) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        while (p->queue && n < p->batch_max) {
            batch[n] = p->queue;
            p->queue = p->queue->next;
            batch[n]->next = NULL;
            n++;
        }
        if (p->queue == NULL)
            p->queue_tail = NULL;
        pthread_mutex_unlock(&p->lock);

        send_batch(p, batch, n);

        pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < n; i++) {
            if (p->done_tail)
                p->done_tail->next = batch[i];
            else
                p->done = batch[i];
            p->done_tail = batch[i];
        }
        pthread_mutex_unlock(&p->lock);
        uv_async_send(&p->async);
    }
    free(batch);
    pthread_mutex_lock(&p->lock);
    p->exited++;
    pthread_mutex_unlock(&p->lock);
    uv_async_send(&p->async); /* last touch of p by this thread */
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* loop side                                                                */

static void pool_free(struct ntf_email_pool *p)
{
    struct ntf_job *j, *jn;

    for (j = p->queue; j; j = jn) {
        jn = j->next;
        job_free(j);
    }
    for (j = p->done; j; j = jn) {
        jn = j->next;
        job_free(j);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->hostport);
    free(p->user);
    if (p->password) {
        memset(p->password, 0, strlen(p->password));
        free(p->password);
    }
    free(p->from_name);
    free(p->from_addr);
    free(p->domain);
    free(p->tids);
    free(p);
}

static void on_async_closed(uv_handle_t *h)
{
    struct ntf_email_pool *p = h->data;
    void (*done)(void *) = p->on_done;
    void *ud = p->done_ud;

    pool_free(p);
    if (done)
        done(ud);
}

/* Once closing and every thread said goodbye: join them, close the handle. */
static void maybe_finish(struct ntf_email_pool *p)
{
    unsigned exited;

    if (!p->close_called || p->async_closing)
        return;
    pthread_mutex_lock(&p->lock);
    exited = p->exited;
    pthread_mutex_unlock(&p->lock);
    if (exited < p->started)
        return;
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->tids[i], NULL);
    p->async_closing = 1;
    uv_close((uv_handle_t *)&p->async, on_async_closed);
}

/* Threads (or close) finished jobs: run their callbacks, in order. */
static void on_async(uv_async_t *h)
{
    struct ntf_email_pool *p = h->data;
    struct ntf_job *j, *next;
    size_t n = 0;

    pthread_mutex_lock(&p->lock);
    j = p->done;
    p->done = p->done_tail = NULL;
    for (next = j; next; next = next->next)
        n++;
    p->pending -= n;
    pthread_mutex_unlock(&p->lock);
    for (; j; j = next) {
        struct ntf_email_result r = {j->status, j->code, j->detail ? j->detail : ""};
        next = j->next;
        if (j->cb)
            j->cb(&r, j->ud);
        job_free(j);
    }
    maybe_finish(p);
}

static void on_async_closed_early(uv_handle_t *h)
{
    pool_free(h->data);
}

struct ntf_email_pool *ntf_email_pool_new(uv_loop_t *loop, const struct ntf_email_opts *o,
                                          char *err, size_t errlen)
{
    struct ntf_email_pool *p = NULL;
    char why[160];
    const char *tls;

    if (loop == NULL || o == NULL) {
        snprintf(err, errlen, "loop and options are required");
        return NULL;
    }
    if (o->host == NULL || *o->host == '\0' || strchr(o->host, ':') || strchr(o->host, ' ')) {
        snprintf(err, errlen, "host: a host name or IPv4 address is required");
        return NULL;
    }
    if (o->port < 1 || o->port > 65535) {
        snprintf(err, errlen, "port: %d is not in 1..65535", o->port);
        return NULL;
    }
    tls = o->starttls ? o->starttls : "try";
    if (strcmp(tls, "off") != 0 && strcmp(tls, "try") != 0 && strcmp(tls, "required") != 0) {
        snprintf(err, errlen, "starttls: \"off\", \"try\" or \"required\" expected");
        return NULL;
    }
    if (o->threads < 1 || o->threads > EM_MAX_THREADS) {
        snprintf(err, errlen, "threads: %u is not in 1..%d", o->threads, EM_MAX_THREADS);
        return NULL;
    }
    if (o->batch_max < 1 || o->batch_max > EM_MAX_BATCH) {
        snprintf(err, errlen, "batch_max: %u is not in 1..%d", o->batch_max, EM_MAX_BATCH);
        return NULL;
    }

    p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (ntf_mime_parse_mailbox(o->from, &p->from_name, &p->from_addr, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "from: %s", why);
        goto fail;
    }
    if (o->domain && *o->domain) {
        char probe[300];
        snprintf(probe, sizeof(probe), "x@%s", o->domain);
        if (strlen(o->domain) > 253 || ntf_mime_check_addr(probe, why, sizeof(why)) != 0 ||
            strchr(o->domain, '@')) {
            snprintf(err, errlen, "domain: not a plain domain name");
            goto fail;
        }
        p->domain = xstrdup(o->domain);
    } else {
        p->domain = xstrdup(strchr(p->from_addr, '@') + 1);
    }
    p->hostport = xasprintf("%s:%d", o->host, o->port);
    p->tls = strcmp(tls, "off") == 0   ? Starttls_DISABLED
             : strcmp(tls, "try") == 0 ? Starttls_ENABLED
                                       : Starttls_REQUIRED;
    if (o->user && *o->user) {
        p->user = xstrdup(o->user);
        p->password = xstrdup(o->password ? o->password : "");
    }
    p->batch_max = o->batch_max;
    p->timeout_ms = o->timeout_ms > 0 ? (long)o->timeout_ms : EM_DEFAULT_TIMEOUT;
    p->nthreads = o->threads;
    p->tids = xcalloc(p->nthreads, sizeof(*p->tids));
    p->loop = loop;
    auth_client_init(); /* a no-op in libesmtp 1.1; kept for older versions */

    if (uv_async_init(loop, &p->async, on_async) != 0) {
        snprintf(err, errlen, "uv_async_init failed");
        goto fail;
    }
    p->async.data = p;
    for (unsigned i = 0; i < p->nthreads; i++) {
        sigset_t all, old;
        int rc;
        /* Signals belong to the loop thread; a write to a closed socket then
         * gives EPIPE here instead of killing the process. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = pthread_create(&p->tids[i], NULL, thread_main, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start SMTP thread %u of %u", i + 1, p->nthreads);
            pthread_mutex_lock(&p->lock);
            p->closing = 1;
            pthread_cond_broadcast(&p->cond);
            pthread_mutex_unlock(&p->lock);
            for (unsigned k = 0; k < p->started; k++)
                pthread_join(p->tids[k], NULL);
            uv_close((uv_handle_t *)&p->async, on_async_closed_early);
            return NULL;
        }
        p->started++;
    }
    return p;
fail:
    pool_free(p);
    return NULL;
}

int ntf_email_send(struct ntf_email_pool *p, const struct ntf_email *m, ntf_email_cb cb, void *ud)
{
    struct ntf_mime_msg mm;
    struct vn_buf b = VN_BUF_INIT;
    struct ntf_job *j = NULL;
    char err[200], idbuf[NTF_MIME_MAX_MSGID + 1];
    int rc;

    if (p == NULL || m == NULL)
        return VN_EINVAL;
    if (p->close_called)
        return VN_ESTATE;
    memset(&mm, 0, sizeof(mm));
    mm.from_name = p->from_name;
    mm.from_addr = p->from_addr;
    mm.to_name = m->to_name;
    mm.to_addr = m->to_addr;
    mm.subject = m->subject;
    mm.text = m->text;
    mm.html = m->html;
    mm.date = time(NULL);
    if (m->message_id) {
        mm.message_id = m->message_id;
    } else {
        char hex[33];
        vn_random_hex(hex, 16);
        snprintf(idbuf, sizeof(idbuf), "%s@%s", hex, p->domain);
        mm.message_id = idbuf;
    }
    rc = ntf_mime_build(&mm, &b, err, sizeof(err));
    if (rc != 0) {
        vn_warn("email", "message refused: %s", err);
        return rc;
    }
    j = xcalloc(1, sizeof(*j));
    j->len = b.len;
    j->msg = vn_buf_steal(&b);
    j->rcpt = xstrdup(m->to_addr);
    j->cb = cb;
    j->ud = ud;

    pthread_mutex_lock(&p->lock);
    if (p->queue_tail)
        p->queue_tail->next = j;
    else
        p->queue = j;
    p->queue_tail = j;
    p->pending++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

size_t ntf_email_pending(const struct ntf_email_pool *p)
{
    size_t n;
    if (p == NULL)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&p->lock);
    n = p->pending;
    pthread_mutex_unlock((pthread_mutex_t *)&p->lock);
    return n;
}

void ntf_email_pool_close(struct ntf_email_pool *p, void (*done)(void *ud), void *ud)
{
    struct ntf_job *j;

    if (p == NULL)
        return;
    if (p->close_called) {
        vn_warn("email", "ntf_email_pool_close called twice; ignored");
        return;
    }
    p->close_called = 1;
    p->on_done = done;
    p->done_ud = ud;
    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    /* Unsent work fails now; its callbacks run from on_async like any other. */
    for (j = p->queue; j; j = j->next)
        job_set(j, NTF_EMAIL_TEMPFAIL, 0, "shutting down");
    if (p->queue) {
        if (p->done_tail)
            p->done_tail->next = p->queue;
        else
            p->done = p->queue;
        p->done_tail = p->queue_tail;
    }
    p->queue = p->queue_tail = NULL;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    uv_async_send(&p->async);
}
