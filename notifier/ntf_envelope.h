/*
 * ntf_envelope.h - the event envelope the notifier consumes (pure, no I/O).
 *
 * docs/asyncapi.yaml is the contract. ntf_event_parse() takes the raw bytes
 * of one AMQP message (or an HTTP body) and either fills a struct ntf_event
 * or says precisely why not, with a stable reason code that goes into the
 * dead-letter headers (x-vestnik-reason-code) and the HTTP 400 body.
 */
#ifndef NTF_ENVELOPE_H
#define NTF_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

enum ntf_type {
    NTF_TASK_ASSIGNED,
    NTF_TASK_DUE,
    NTF_TASK_COMPLETED,
    NTF_REMINDER_SCHEDULED,
    NTF_REMINDER_CANCELLED,
    NTF_NOTIFICATION_REQUESTED,
    NTF_PREFERENCES_UPDATE, /* "preferences.update_requested": the bot's /settings */
    NTF_REMINDER, /* internal "reminder.fired": a stored reminder firing; only from the notifier */
    NTF_TYPE_COUNT
};

/* Delivery channels. A third one (websocket) has its place but no sender yet. */
enum ntf_channel { NTF_CH_TELEGRAM, NTF_CH_EMAIL, NTF_CH_WEBSOCKET, NTF_CH_COUNT };
#define NTF_CH_BIT(c) (1u << (unsigned)(c))

enum ntf_priority { NTF_PRIO_LOW, NTF_PRIO_NORMAL, NTF_PRIO_HIGH, NTF_PRIO_CRITICAL };

enum ntf_reject {
    NTF_ACCEPTED = 0,
    NTF_R_TOO_LARGE,
    NTF_R_INVALID_JSON,
    NTF_R_NOT_OBJECT,
    NTF_R_MISSING_FIELD,
    NTF_R_INVALID_FIELD,
    NTF_R_UNKNOWN_TYPE,
    NTF_R_UNSUPPORTED_VERSION,
    NTF_R_DELIVERY_FAILED, /* not a parse result: dead-lettered after the last attempt */
};

struct ntf_reject_info {
    enum ntf_reject code;
    char msg[256]; /* "occurred_at: not an RFC 3339 date-time (\"yesterday\")" */
};

/* One recipient as given; strings point into the event's JSON. */
struct ntf_recipient {
    const char *user_id; /* a registered user, or NULL */
    int has_telegram;
    int64_t telegram_user_id;
    int64_t chat_id;
    const char *email; /* an address without an account, or NULL */
    const char *name;  /* optional overrides */
    const char *locale;
    const char *time_zone;
};

struct ntf_event {
    struct json_object *root; /* the envelope (owned) */
    char id[37];              /* lowercase UUID */
    enum ntf_type type;
    int version;
    int64_t occurred_at_ms;
    const char *source;
    struct ntf_recipient *recipients;
    size_t n_recipients;
    struct json_object *data; /* borrowed from root */
    int64_t deliver_at_ms;    /* 0 = now */
    const char *dedup_key;    /* or NULL */
    enum ntf_priority priority;
    unsigned channels;       /* NTF_CH_BIT mask; 0 = use the recipients' preferences */
    const char *reminder_id; /* reminder.scheduled (defaults to id), reminder.cancelled, reminder */
};

struct ntf_limits {
    size_t max_bytes;      /* 0 = 256 KiB */
    size_t max_recipients; /* 0 = 1000 */
    int allow_internal;    /* accept type "reminder.fired" (stored reminders firing) */
};

/*
 * Parse and validate. Returns 0 and fills *ev (free with ntf_event_free), or
 * VN_EINVAL / VN_ETOOBIG with *why filled and *ev empty. body need not be
 * NUL-terminated. Every check of docs/asyncapi.yaml is made here, so an
 * accepted event never fails validation later.
 */
int ntf_event_parse(const char *body, size_t len, const struct ntf_limits *lim,
                    struct ntf_event *ev, struct ntf_reject_info *why);
void ntf_event_free(struct ntf_event *ev);

/* "task.assigned", ..., "reminder.fired". */
const char *ntf_type_name(enum ntf_type t);
/* The template to render: the type's name, "reminder" for a reminder firing. */
const char *ntf_template_name(enum ntf_type t);
/* -1 if unknown. */
int ntf_type_parse(const char *s);
const char *ntf_channel_name(enum ntf_channel c);
int ntf_channel_parse(const char *s);
const char *ntf_priority_name(enum ntf_priority p);
/* "invalid_json", ... (stable; used in headers and HTTP errors). */
const char *ntf_reject_code(enum ntf_reject r);

/*
 * RFC 3339 date-time ("2026-11-21T09:00:00+03:00", fraction optional, 'Z' or
 * an offset required) to milliseconds since the epoch. Returns 0 or VN_EINVAL.
 */
int ntf_parse_rfc3339(const char *s, int64_t *out_ms);
/* UTC, millisecond precision: "2026-11-21T06:00:00.000Z". */
void ntf_format_rfc3339(int64_t ms, char *buf, size_t len);

/* 1 if s is a UUID in 8-4-4-4-12 hex form. */
int ntf_uuid_valid(const char *s);
/* A name-based UUID (version 5, SHA-1) of name in a fixed vestnik namespace. */
void ntf_uuid_from_name(const char *name, char out[37]);
/* A random UUID (version 4). */
void ntf_uuid_random(char out[37]);

/*
 * The envelope of a stored reminder firing: type "reminder.fired", id derived from
 * the reminder id (so a second firing is the same event), no deliver_at,
 * data {"reminder": {id, text, remind_at, created_at}, ...rest of data}.
 * scheduled is the reminder.scheduled envelope as stored. Returns a new JSON
 * string the caller frees, or NULL if scheduled is not such an envelope.
 */
char *ntf_reminder_envelope(const char *scheduled, int64_t fire_ms);

#endif
