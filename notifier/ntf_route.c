#include "ntf_route.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "core/common.h"
#include "core/config.h"
#include "fsm/fsm_date.h"

int64_t ntf_quiet_until(const struct ntf_user *u, int64_t now_ms)
{
    if (u->quiet_start_min < 0 || u->quiet_end_min < 0 || u->quiet_start_min == u->quiet_end_min)
        return 0;
    int64_t now_s = now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000;
    int64_t local = now_s + fsm_tz_offset(u->tz, now_s);
    int64_t day = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    int m = (int)((local - day * 86400) / 60);
    int s = u->quiet_start_min, e = u->quiet_end_min;
    int64_t end_day;
    if (s < e) {
        if (m < s || m >= e)
            return 0;
        end_day = day;
    } else {
        if (m >= s)
            end_day = day + 1; /* 23:00 -> 07:00 tomorrow */
        else if (m < e)
            end_day = day;
        else
            return 0;
    }
    int64_t until = fsm_tz_local_to_utc(u->tz, end_day * 86400 + (int64_t)e * 60) * 1000;
    return until > now_ms ? until : now_ms + 1000;
}

/* Can u be reached on c at all (address, link), and can this process send on it? */
static const char *unreachable(const struct ntf_user *u, enum ntf_channel c, unsigned available)
{
    if (!(available & NTF_CH_BIT(c)))
        return c == NTF_CH_WEBSOCKET ? "the websocket channel is not enabled"
                                     : "the channel is not configured here";
    switch (c) {
    case NTF_CH_TELEGRAM:
        return u->telegram_ok ? NULL : "no active Telegram link";
    case NTF_CH_EMAIL:
        return u->email ? NULL : "no e-mail address";
    case NTF_CH_WEBSOCKET:
    case NTF_CH_COUNT:
        break;
    }
    return NULL;
}

/* Send now, or when: deliver_at, then the end of quiet hours at that time. */
static void timing(const struct ntf_event *ev, const struct ntf_user *u, int64_t now_ms,
                   struct ntf_plan *p)
{
    int64_t at = ev->deliver_at_ms > now_ms ? ev->deliver_at_ms : now_ms;
    const char *why = at > now_ms ? "deliver_at" : NULL;
    if (ev->priority != NTF_PRIO_CRITICAL) {
        int64_t q = ntf_quiet_until(u, at);
        if (q) {
            at = q;
            why = "quiet hours";
        }
    }
    if (at > now_ms) {
        char ts[40];
        p->action = NTF_DEFER;
        p->not_before_ms = at;
        ntf_format_rfc3339(at, ts, sizeof(ts));
        snprintf(p->reason, sizeof(p->reason), "%s: waits until %s", why, ts);
    } else {
        p->action = NTF_SEND;
        p->not_before_ms = 0;
    }
}

static void add(struct ntf_plan *out, size_t *n, unsigned *used, enum ntf_channel c,
                enum ntf_action a, const char *reason)
{
    struct ntf_plan *p = &out[(*n)++];
    memset(p, 0, sizeof(*p));
    p->channel = c;
    p->action = a;
    if (reason)
        snprintf(p->reason, sizeof(p->reason), "%s", reason);
    *used |= NTF_CH_BIT(c);
}

/* The channels the event asks for: the envelope's, else the preference for
 * the type, else "*", else -1 (no preference: the first reachable channel). */
static int wanted(const struct ntf_event *ev, const struct ntf_user *u, unsigned *mask,
                  enum ntf_channel order[NTF_CH_COUNT], size_t *n)
{
    json_object *list = NULL;
    *mask = 0;
    *n = 0;
    if (ev->channels) {
        for (int c = 0; c < NTF_CH_COUNT; c++)
            if (ev->channels & NTF_CH_BIT(c))
                order[(*n)++] = (enum ntf_channel)c;
        *mask = ev->channels;
        return 0;
    }
    if (u->prefs_chan && json_object_is_type(u->prefs_chan, json_type_object) &&
        !json_object_object_get_ex(u->prefs_chan, ntf_type_name(ev->type), &list) &&
        ev->type == NTF_REMINDER)
        json_object_object_get_ex(u->prefs_chan, "reminder.scheduled", &list);
    if (list == NULL && u->prefs_chan && json_object_is_type(u->prefs_chan, json_type_object))
        json_object_object_get_ex(u->prefs_chan, "*", &list);
    if (list == NULL || !json_object_is_type(list, json_type_array))
        return -1;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        int c = ntf_channel_parse(json_object_get_string(json_object_array_get_idx(list, i)));
        if (c >= 0 && !(*mask & NTF_CH_BIT(c))) {
            *mask |= NTF_CH_BIT(c);
            order[(*n)++] = (enum ntf_channel)c;
        }
    }
    return 0;
}

int ntf_route_fallback(const struct ntf_event *ev, const struct ntf_user *u, int64_t now_ms,
                       unsigned available, unsigned used, struct ntf_plan *next)
{
    for (size_t i = 0; i < u->n_fallback; i++) {
        enum ntf_channel c = u->fallback[i];
        if ((used & NTF_CH_BIT(c)) || unreachable(u, c, available))
            continue;
        memset(next, 0, sizeof(*next));
        next->channel = c;
        timing(ev, u, now_ms, next);
        return 1;
    }
    return 0;
}

size_t ntf_route(const struct ntf_event *ev, const struct ntf_user *u, int64_t now_ms,
                 unsigned available, struct ntf_plan out[NTF_CH_COUNT])
{
    enum ntf_channel order[NTF_CH_COUNT];
    unsigned mask, used = 0;
    size_t n = 0, norder;
    char why[120];
    enum ntf_channel first = u->n_fallback ? u->fallback[0] : NTF_CH_TELEGRAM;
    int has_pref = wanted(ev, u, &mask, order, &norder) == 0;

    if (!u->known && u->email == NULL && !u->telegram_ok) {
        add(out, &n, &used, has_pref && norder ? order[0] : first, NTF_SKIP,
            "unknown user: not registered (PUT /v1/users/{id}) and no address given");
        return n;
    }
    if (!u->active) {
        add(out, &n, &used, has_pref && norder ? order[0] : first, NTF_SKIP,
            "the user is inactive");
        return n;
    }
    if (has_pref && norder == 0) {
        snprintf(why, sizeof(why), "muted: the user's preferences name no channel for %s",
                 ntf_type_name(ev->type));
        add(out, &n, &used, first, NTF_SKIP, why);
        return n;
    }
    if (!has_pref) {
        /* No preference: the first channel of the fallback order that reaches
         * the user (telegram, email when the order is empty: no fallback
         * still means one channel). */
        struct ntf_plan p;
        struct ntf_user d = *u;
        if (d.n_fallback == 0) {
            d.fallback[0] = NTF_CH_TELEGRAM;
            d.fallback[1] = NTF_CH_EMAIL;
            d.n_fallback = 2;
        }
        if (ntf_route_fallback(ev, &d, now_ms, available, 0, &p)) {
            out[n++] = p;
            return n;
        }
        add(out, &n, &used, first, NTF_SKIP, "no channel reaches the user");
        return n;
    }

    size_t failed = 0;
    for (size_t i = 0; i < norder; i++) {
        const char *bad = unreachable(u, order[i], available);
        if (bad) {
            add(out, &n, &used, order[i], NTF_SKIP, bad);
            failed++;
            continue;
        }
        add(out, &n, &used, order[i], NTF_SEND, NULL);
        timing(ev, u, now_ms, &out[n - 1]);
    }
    /* Every wanted channel was unreachable: fall back once, like a permanent failure. */
    if (failed == norder) {
        struct ntf_plan p;
        if (ntf_route_fallback(ev, u, now_ms, available, used, &p)) {
            snprintf(why, sizeof(why), "fallback: %s unreachable", ntf_channel_name(order[0]));
            char timed[sizeof(p.reason)];
            snprintf(timed, sizeof(timed), "%s", p.reason);
            if (p.action == NTF_SEND)
                snprintf(p.reason, sizeof(p.reason), "%s", why);
            else /* deferred: say both */
                snprintf(p.reason, sizeof(p.reason), "%.40s; %.72s", why, timed);
            out[n++] = p;
        }
    }
    return n;
}

/* ---- retry ladder -------------------------------------------------------- */

int ntf_retry_parse(const char *ladder, int max_attempts, struct ntf_retry *r, char *err,
                    size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->max_attempts = max_attempts;
    if (max_attempts < 1) {
        snprintf(err, errlen, "max attempts must be at least 1");
        return VN_EINVAL;
    }
    const char *p = ladder ? ladder : "";
    while (*p) {
        char item[32];
        size_t len = strcspn(p, ",");
        while (len && (*p == ' ')) {
            p++;
            len--;
        }
        if (len == 0 || len >= sizeof(item)) {
            snprintf(err, errlen, "expected delays like 10s,1m,10m,1h; got an empty or long item");
            return VN_EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        while (len && item[len - 1] == ' ')
            item[--len] = '\0';
        int64_t ms;
        if (r->n == VN_ARRAY_LEN(r->delay_ms)) {
            snprintf(err, errlen, "at most %zu steps", VN_ARRAY_LEN(r->delay_ms));
            return VN_EINVAL;
        }
        if (cfg_parse_duration(item, &ms) != 0 || ms < 1000 || ms > 86400000 || ms % 1000) {
            snprintf(err, errlen, "\"%s\": expected whole seconds from 1s to 24h (10s, 1m, 1h)",
                     item);
            return VN_EINVAL;
        }
        if (r->n && ms < r->delay_ms[r->n - 1]) {
            snprintf(err, errlen, "\"%s\" is shorter than the step before it; delays must grow",
                     item);
            return VN_EINVAL;
        }
        for (size_t i = 0; i < r->n; i++)
            if (r->delay_ms[i] == ms) {
                snprintf(err, errlen, "\"%s\" is listed twice", item);
                return VN_EINVAL;
            }
        r->delay_ms[r->n] = ms;
        /* Names read back as durations: 90s stays 90s, 600s is 10m, 3600s is 1h. */
        if (ms % 3600000 == 0)
            snprintf(r->name[r->n], sizeof(r->name[0]), "%lldh", (long long)(ms / 3600000));
        else if (ms % 60000 == 0)
            snprintf(r->name[r->n], sizeof(r->name[0]), "%lldm", (long long)(ms / 60000));
        else
            snprintf(r->name[r->n], sizeof(r->name[0]), "%llds", (long long)(ms / 1000));
        r->n++;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    if (r->n == 0) {
        snprintf(err, errlen, "the retry ladder is empty; give delays like 10s,1m,10m,1h");
        return VN_EINVAL;
    }
    return 0;
}

int ntf_retry_next(const struct ntf_retry *r, int attempt, size_t *step)
{
    if (attempt >= r->max_attempts)
        return 1;
    size_t s = attempt < 1 ? 0 : (size_t)(attempt - 1);
    *step = s < r->n ? s : r->n - 1;
    return 0;
}
