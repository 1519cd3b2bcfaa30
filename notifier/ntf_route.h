/*
 * ntf_route.h - who gets an event through which channel, and when (pure).
 *
 * Given an accepted event, one resolved recipient and the time, ntf_route()
 * decides per channel: send now, defer (quiet hours, deliver_at) or skip
 * (muted, unreachable, inactive), with the reason. ntf_route_fallback()
 * picks the next channel after one failed for good. The retry ladder's math
 * is here too. No I/O: the notifier feeds users it read from PostgreSQL.
 */
#ifndef NTF_ROUTE_H
#define NTF_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "ntf_envelope.h"

struct fsm_tz;

/* A recipient resolved against bot.users / preferences / telegram_links. */
struct ntf_user {
    const char *key;  /* deliveries.user_id: the user's id, "tg:<id>" or "email:<addr>" */
    int known;        /* a bot.users row exists */
    int active;       /* users.active (1 for ad-hoc recipients) */
    const char *name; /* for greetings and the e-mail To name; may be NULL */
    const char *email;
    int telegram_ok; /* an active Telegram link (or an ad-hoc chat) */
    int64_t chat_id;
    const char *locale;
    const struct fsm_tz *tz;        /* NULL = UTC */
    struct json_object *prefs_chan; /* preferences.channels, or NULL */
    int quiet_start_min;            /* minutes after local midnight; -1 = no quiet hours */
    int quiet_end_min;
    enum ntf_channel fallback[NTF_CH_COUNT];
    size_t n_fallback;
};

enum ntf_action { NTF_SEND, NTF_DEFER, NTF_SKIP };

struct ntf_plan {
    enum ntf_channel channel;
    enum ntf_action action;
    int64_t not_before_ms; /* NTF_DEFER: when */
    char reason[120];      /* why deferred or skipped; a fallback says what it replaces */
};

/*
 * Decide for one recipient. available is the NTF_CH_BIT mask of channels this
 * process can send on. Writes at most NTF_CH_COUNT entries, one per channel,
 * and returns how many. Never returns 0 for an event with recipients: a
 * recipient who gets nothing gets a skipped row saying why.
 */
size_t ntf_route(const struct ntf_event *ev, const struct ntf_user *u, int64_t now_ms,
                 unsigned available, struct ntf_plan out[NTF_CH_COUNT]);

/*
 * After channel failed for good: the next channel of u's fallback order that
 * is reachable, available and not in used (NTF_CH_BIT mask of channels that
 * already have a row). Returns 1 and fills *next (action SEND or DEFER per
 * quiet hours) or 0 when there is none.
 */
int ntf_route_fallback(const struct ntf_event *ev, const struct ntf_user *u, int64_t now_ms,
                       unsigned available, unsigned used, struct ntf_plan *next);

/*
 * If now is inside u's quiet hours: the UTC instant (ms) they end. Otherwise 0.
 * Quiet hours run from start (inclusive) to end (exclusive) in u's zone and
 * span midnight when start > end.
 */
int64_t ntf_quiet_until(const struct ntf_user *u, int64_t now_ms);

/* The retry ladder: delays between attempts, and how many attempts in all. */
struct ntf_retry {
    int64_t delay_ms[16];
    char name[16][24]; /* "10s", "1m": queue name suffixes */
    size_t n;
    int max_attempts;
};

/* Parse "10s,1m,10m,1h" (1..16 increasing-or-equal delays of 1 s to 24 h). */
int ntf_retry_parse(const char *ladder, int max_attempts, struct ntf_retry *r, char *err,
                    size_t errlen);

/*
 * After attempt number `attempt` (1 = the first) failed transiently: 0 and
 * the ladder step to wait on (*step, delay r->delay_ms[*step]) if another
 * attempt is allowed, or 1 when attempts are exhausted (dead-letter).
 */
int ntf_retry_next(const struct ntf_retry *r, int attempt, size_t *step);

#endif
