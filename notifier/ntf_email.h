/*
 * ntf_email.h - the e-mail channel: a pool of SMTP sender threads (libesmtp).
 *
 * libesmtp blocks, so it runs on threads that each own their SMTP session (a
 * session is never shared). The loop hands messages over through one
 * mutex-protected queue; a thread takes up to batch_max of them and sends them
 * all over one connection (one libesmtp session, MAIL/RCPT/DATA per message),
 * then reports each message's outcome back through uv_async_send. So every
 * callback below runs on the loop thread; threads never touch loop objects.
 *
 * Outcome per message, from the replies libesmtp recorded for it (MAIL FROM,
 * then RCPT TO, then the reply after DATA, the first one that is not 2xx):
 *   2xx                                  NTF_EMAIL_SENT
 *   4xx, no reply (connect failed,
 *   timeout, connection dropped), or the
 *   session failed before the message    NTF_EMAIL_TEMPFAIL
 *   (greeting, EHLO, STARTTLS, AUTH)
 *   5xx for the message itself           NTF_EMAIL_PERMFAIL
 * A session-level 5xx (say 535 on AUTH) is TEMPFAIL with that code: the
 * message was never refused, the configuration was, and retrying after a fix
 * must be possible.
 *
 * Limits of libesmtp worth knowing: its connect() is blocking without a
 * deadline, so an unreachable (black-holed) host stalls a thread for the
 * kernel's SYN retry time (about two minutes on Linux) before the batch fails
 * with TEMPFAIL; timeout_ms covers every command after that.
 */
#ifndef VN_NTF_EMAIL_H
#define VN_NTF_EMAIL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum ntf_email_status { NTF_EMAIL_SENT, NTF_EMAIL_TEMPFAIL, NTF_EMAIL_PERMFAIL };

struct ntf_email_opts {
    const char *host;     /* SMTP server */
    int port;             /* 1..65535 */
    const char *starttls; /* "off", "try" or "required"; NULL = "try" */
    const char *user;     /* AUTH (PLAIN/LOGIN via libesmtp's auth-client) when non-empty */
    const char *password;
    const char *from;   /* "Name <addr>" or "addr" */
    const char *domain; /* for Message-ID and EHLO; NULL = part after @ of from */
    unsigned threads;   /* >= 1 */
    unsigned batch_max; /* messages per SMTP session, >= 1 */
    int64_t timeout_ms; /* per SMTP command; <= 0 = 30000 */
};

struct ntf_email {
    const char *to_addr;
    const char *to_name; /* may be NULL */
    const char *subject;
    const char *text;
    const char *html;       /* may be NULL */
    const char *message_id; /* without <>; NULL = generated (random@domain) */
};

struct ntf_email_result {
    enum ntf_email_status status;
    int smtp_code;      /* last reply code (e.g. 250, 451, 550), 0 if no reply (connect failed) */
    const char *detail; /* short reason, valid only during the callback, never the body */
};

typedef void (*ntf_email_cb)(const struct ntf_email_result *r, void *ud);

struct ntf_email_pool;

/*
 * Create the pool and start its threads. Copies the options. Returns NULL with
 * the reason in err for bad options (nothing started then). No connection is
 * made until there is something to send.
 */
struct ntf_email_pool *ntf_email_pool_new(uv_loop_t *loop, const struct ntf_email_opts *o,
                                          char *err, size_t errlen);

/*
 * Queue one message. Copies everything; builds the MIME message here, on the
 * caller's (the loop's) thread, so a bad address or header injection fails now
 * with VN_EINVAL (VN_ETOOBIG for oversized input), the reason logged. Returns
 * VN_ESTATE once ntf_email_pool_close was called. cb fires exactly once, on
 * the loop and never inside this call, when 0 is returned; never otherwise.
 */
int ntf_email_send(struct ntf_email_pool *p, const struct ntf_email *m, ntf_email_cb cb, void *ud);

/* Messages accepted whose callback has not run yet (queued or being sent). */
size_t ntf_email_pending(const struct ntf_email_pool *p);

/*
 * Stop taking work; queued-but-unsent messages get TEMPFAIL "shutting down";
 * threads finish their current session; done(ud) on the loop when all threads
 * joined and the async handle closed. The pool is freed before done runs.
 * done may be NULL. A second call is ignored.
 */
void ntf_email_pool_close(struct ntf_email_pool *p, void (*done)(void *ud), void *ud);

#endif
