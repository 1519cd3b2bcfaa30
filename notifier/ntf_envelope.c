#include "ntf_envelope.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "core/common.h"
#include "fsm/fsm_date.h"

static const char *const type_names[NTF_TYPE_COUNT] = {
    "task.assigned",
    "task.due",
    "task.completed",
    "reminder.scheduled",
    "reminder.cancelled",
    "notification.requested",
    "preferences.update_requested",
    "reminder.fired",
};
static const char *const channel_names[NTF_CH_COUNT] = {"telegram", "email", "websocket"};
static const char *const priority_names[] = {"low", "normal", "high", "critical"};

const char *ntf_type_name(enum ntf_type t)
{
    return (unsigned)t < NTF_TYPE_COUNT ? type_names[t] : "?";
}

const char *ntf_template_name(enum ntf_type t)
{
    return t == NTF_REMINDER ? "reminder" : ntf_type_name(t);
}

int ntf_type_parse(const char *s)
{
    for (int i = 0; s && i < NTF_TYPE_COUNT; i++)
        if (strcmp(s, type_names[i]) == 0)
            return i;
    return -1;
}

const char *ntf_channel_name(enum ntf_channel c)
{
    return (unsigned)c < NTF_CH_COUNT ? channel_names[c] : "?";
}

int ntf_channel_parse(const char *s)
{
    for (int i = 0; s && i < NTF_CH_COUNT; i++)
        if (strcmp(s, channel_names[i]) == 0)
            return i;
    return -1;
}

const char *ntf_priority_name(enum ntf_priority p)
{
    return (unsigned)p < VN_ARRAY_LEN(priority_names) ? priority_names[p] : "?";
}

const char *ntf_reject_code(enum ntf_reject r)
{
    switch (r) {
    case NTF_ACCEPTED:
        return "accepted";
    case NTF_R_TOO_LARGE:
        return "too_large";
    case NTF_R_INVALID_JSON:
        return "invalid_json";
    case NTF_R_NOT_OBJECT:
        return "not_object";
    case NTF_R_MISSING_FIELD:
        return "missing_field";
    case NTF_R_INVALID_FIELD:
        return "invalid_field";
    case NTF_R_UNKNOWN_TYPE:
        return "unknown_type";
    case NTF_R_UNSUPPORTED_VERSION:
        return "unsupported_version";
    case NTF_R_DELIVERY_FAILED:
        return "delivery_failed";
    }
    return "?";
}

/* ---- small parsers -------------------------------------------------------- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int ntf_parse_rfc3339(const char *s, int64_t *out_ms)
{
    int y, mo, d, h, mi, sec, ms = 0, off = 0;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (s == NULL || strlen(s) < 20)
        return VN_EINVAL;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return VN_EINVAL;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0 || n > 9)
            return VN_EINVAL;
        for (; n < 3; n++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return VN_EINVAL;
        off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return VN_EINVAL;
    }
    if (*p != '\0' || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 ||
        sec > 60)
        return VN_EINVAL;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return VN_EINVAL;
    if (sec == 60)
        sec = 59; /* a leap second is the last second of its minute */
    int64_t days = fsm_days_from_civil(y, mo, d);
    int64_t t = ((days * 24 + h) * 60 + mi) * 60 + sec - (int64_t)off * 60;
    *out_ms = t * 1000 + ms;
    return 0;
}

void ntf_format_rfc3339(int64_t ms, char *buf, size_t len)
{
    int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int64_t days = s >= 0 ? s / 86400 : (s - 86399) / 86400;
    int64_t rem = s - days * 86400, y;
    int mo, d;
    fsm_civil_from_days(days, &y, &mo, &d);
    snprintf(buf, len, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), (int)(ms - s * 1000));
}

int ntf_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static void uuid_format(const unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void ntf_uuid_from_name(const char *name, char out[37])
{
    /* The vestnik namespace: a fixed random UUID, 6d1c4b3e-8a0f-4f5e-9b2a-5c7d3e1f0a94. */
    static const unsigned char ns[16] = {0x6d, 0x1c, 0x4b, 0x3e, 0x8a, 0x0f, 0x4f, 0x5e,
                                         0x9b, 0x2a, 0x5c, 0x7d, 0x3e, 0x1f, 0x0a, 0x94};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, ns, sizeof(ns));
    EVP_DigestUpdate(ctx, name, strlen(name));
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    uuid_format(md, out);
}

void ntf_uuid_random(char out[37])
{
    unsigned char b[16];
    for (int i = 0; i < 16; i += 4) {
        uint32_t r = vn_random_u32();
        memcpy(b + i, &r, 4);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

/* ---- validation ------------------------------------------------------------ */

#define REJECT(code_, ...)                                                                         \
    do {                                                                                           \
        why->code = (code_);                                                                       \
        snprintf(why->msg, sizeof(why->msg), __VA_ARGS__);                                         \
        return -1;                                                                                 \
    } while (0)

static json_object *field(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, k, &v))
        return NULL;
    return json_object_is_type(v, json_type_null) ? NULL : v;
}

/* Valid UTF-8 without NUL (text PostgreSQL can store). */
static int utf8_ok(const char *s, size_t len)
{
    return memchr(s, '\0', len) == NULL && vn_utf8_valid(s, len);
}

/* A string field of bounded length; path names it in errors. */
static int want_str(json_object *o, const char *k, const char *path, int required, size_t min,
                    size_t max, const char **out, struct ntf_reject_info *why)
{
    json_object *v = field(o, k);
    *out = NULL;
    if (v == NULL) {
        if (required)
            REJECT(NTF_R_MISSING_FIELD, "missing field: %s", path);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        REJECT(NTF_R_INVALID_FIELD, "%s: expected a string, got %s", path,
               json_type_to_name(json_object_get_type(v)));
    size_t n = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (n < min || n > max)
        REJECT(NTF_R_INVALID_FIELD, "%s: expected %zu to %zu bytes, got %zu", path, min, max, n);
    if (!utf8_ok(s, n))
        REJECT(NTF_R_INVALID_FIELD, "%s: not valid UTF-8 (or contains NUL)", path);
    *out = s;
    return 0;
}

static int want_time(json_object *o, const char *k, const char *path, int required, int64_t *out,
                     struct ntf_reject_info *why)
{
    const char *s;
    if (want_str(o, k, path, required, 1, 64, &s, why) != 0)
        return -1;
    *out = 0;
    if (s && ntf_parse_rfc3339(s, out) != 0)
        REJECT(NTF_R_INVALID_FIELD, "%s: not an RFC 3339 date-time with offset (\"%.40s\")", path,
               s);
    return 0;
}

static int want_int64(json_object *v, const char *path, int64_t *out, struct ntf_reject_info *why)
{
    if (!json_object_is_type(v, json_type_int))
        REJECT(NTF_R_INVALID_FIELD, "%s: expected an integer, got %s", path,
               json_type_to_name(json_object_get_type(v)));
    errno = 0;
    *out = json_object_get_int64(v);
    if (errno != 0)
        REJECT(NTF_R_INVALID_FIELD, "%s: integer out of range", path);
    return 0;
}

static int email_ok(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') || strlen(s) > 254)
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' || *p == '"' ||
            *p == 0x7f)
            return 0;
    return 1;
}

static int user_id_ok(const char *s)
{
    if (!isalnum((unsigned char)s[0]))
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._:@+-", *p))
            return 0;
    return 1;
}

static int parse_recipient(json_object *r, size_t i, struct ntf_recipient *out,
                           struct ntf_reject_info *why)
{
    char path[64];
    memset(out, 0, sizeof(*out));
    if (!json_object_is_type(r, json_type_object))
        REJECT(NTF_R_INVALID_FIELD, "recipients[%zu]: expected an object, got %s", i,
               json_type_to_name(json_object_get_type(r)));
#define P(k) (snprintf(path, sizeof(path), "recipients[%zu].%s", i, k), path)
    if (want_str(r, "user_id", P("user_id"), 0, 1, 128, &out->user_id, why) ||
        want_str(r, "email", P("email"), 0, 3, 254, &out->email, why) ||
        want_str(r, "name", P("name"), 0, 1, 200, &out->name, why) ||
        want_str(r, "locale", P("locale"), 0, 2, 35, &out->locale, why) ||
        want_str(r, "time_zone", P("time_zone"), 0, 1, 64, &out->time_zone, why))
        return -1;
    if (out->user_id && !user_id_ok(out->user_id))
        REJECT(NTF_R_INVALID_FIELD,
               "%s: use letters, digits and ._:@+- (starting with a letter or digit)",
               P("user_id"));
    if (out->email && !email_ok(out->email))
        REJECT(NTF_R_INVALID_FIELD, "%s: not an e-mail address", P("email"));
    json_object *tu = field(r, "telegram_user_id"), *ch = field(r, "chat_id");
    if (tu || ch) {
        if (tu == NULL)
            REJECT(NTF_R_MISSING_FIELD, "missing field: %s (chat_id needs it)",
                   P("telegram_user_id"));
        if (want_int64(tu, P("telegram_user_id"), &out->telegram_user_id, why))
            return -1;
        if (ch == NULL)
            out->chat_id = out->telegram_user_id; /* a private chat's id is the user's */
        else if (want_int64(ch, P("chat_id"), &out->chat_id, why))
            return -1;
        if (out->telegram_user_id <= 0)
            REJECT(NTF_R_INVALID_FIELD, "%s: expected a positive Telegram user id",
                   P("telegram_user_id"));
        out->has_telegram = 1;
    }
    if (out->user_id == NULL && !out->has_telegram && out->email == NULL)
        REJECT(NTF_R_MISSING_FIELD,
               "missing field: recipients[%zu] needs user_id, "
               "telegram_user_id or email",
               i);
#undef P
    return 0;
}

static int want_object(json_object *o, const char *k, const char *path, json_object **out,
                       struct ntf_reject_info *why)
{
    *out = field(o, k);
    if (*out == NULL)
        REJECT(NTF_R_MISSING_FIELD, "missing field: %s", path);
    if (!json_object_is_type(*out, json_type_object))
        REJECT(NTF_R_INVALID_FIELD, "%s: expected an object, got %s", path,
               json_type_to_name(json_object_get_type(*out)));
    return 0;
}

/* The per-type requirements on data. */
static int check_data(struct ntf_event *ev, struct ntf_reject_info *why)
{
    json_object *obj;
    const char *s;
    int64_t t;
    switch (ev->type) {
    case NTF_TASK_ASSIGNED:
    case NTF_TASK_DUE:
    case NTF_TASK_COMPLETED: {
        if (want_object(ev->data, "task", "data.task", &obj, why))
            return -1;
        json_object *id = field(obj, "id");
        if (id == NULL)
            REJECT(NTF_R_MISSING_FIELD, "missing field: data.task.id");
        if (!json_object_is_type(id, json_type_string) && !json_object_is_type(id, json_type_int))
            REJECT(NTF_R_INVALID_FIELD, "data.task.id: expected a string or an integer");
        if (want_str(obj, "title", "data.task.title", 1, 1, 1000, &s, why) ||
            want_time(obj, "due_at", "data.task.due_at", 0, &t, why))
            return -1;
        return 0;
    }
    case NTF_REMINDER_SCHEDULED:
    case NTF_REMINDER: {
        if (want_object(ev->data, "reminder", "data.reminder", &obj, why) ||
            want_str(obj, "text", "data.reminder.text", 1, 1, 4000, &s, why) ||
            want_str(obj, "id", "data.reminder.id", 0, 1, 200, &ev->reminder_id, why) ||
            want_time(obj, "remind_at", "data.reminder.remind_at", 0, &t, why))
            return -1;
        if (ev->reminder_id == NULL)
            ev->reminder_id = ev->id;
        if (ev->type == NTF_REMINDER_SCHEDULED && ev->deliver_at_ms == 0) {
            if (t == 0)
                REJECT(NTF_R_MISSING_FIELD,
                       "missing field: deliver_at (or data.reminder.remind_at): when to remind");
            ev->deliver_at_ms = t;
        }
        return 0;
    }
    case NTF_REMINDER_CANCELLED:
        return want_str(ev->data, "reminder_id", "data.reminder_id", 1, 1, 200, &ev->reminder_id,
                        why);
    case NTF_PREFERENCES_UPDATE: {
        /* one recipient (who changed their settings) and at least one change */
        json_object *q;
        int changes = 0;
        if (ev->n_recipients != 1)
            REJECT(NTF_R_INVALID_FIELD, "recipients: preferences.update_requested names exactly "
                                        "one recipient (whose preferences change)");
        if (ev->recipients[0].user_id == NULL && !ev->recipients[0].has_telegram)
            REJECT(NTF_R_INVALID_FIELD, "recipients[0]: preferences belong to a user_id or a "
                                        "telegram_user_id, not an e-mail address");
        if (want_str(ev->data, "locale", "data.locale", 0, 2, 35, &s, why))
            return -1;
        changes += s != NULL;
        if (want_str(ev->data, "time_zone", "data.time_zone", 0, 1, 64, &s, why))
            return -1;
        changes += s != NULL;
        if (want_str(ev->data, "toggle_channel", "data.toggle_channel", 0, 1, 20, &s, why))
            return -1;
        if (s && ntf_channel_parse(s) < 0)
            REJECT(NTF_R_INVALID_FIELD,
                   "data.toggle_channel: expected telegram, email or websocket");
        changes += s != NULL;
        if (json_object_object_get_ex(ev->data, "quiet_hours", &q)) {
            changes++;
            if (q != NULL) {
                const char *from, *to;
                int h, m;
                char tail;
                if (!json_object_is_type(q, json_type_object))
                    REJECT(NTF_R_INVALID_FIELD, "data.quiet_hours: expected {\"from\": \"22:00\", "
                                                "\"to\": \"07:00\"} or null");
                if (want_str(q, "from", "data.quiet_hours.from", 1, 3, 5, &from, why) ||
                    want_str(q, "to", "data.quiet_hours.to", 1, 3, 5, &to, why))
                    return -1;
                if (sscanf(from, "%d:%d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 ||
                    m > 59)
                    REJECT(NTF_R_INVALID_FIELD, "data.quiet_hours.from: expected HH:MM");
                if (sscanf(to, "%d:%d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 || m > 59)
                    REJECT(NTF_R_INVALID_FIELD, "data.quiet_hours.to: expected HH:MM");
            }
        }
        if (changes == 0)
            REJECT(NTF_R_MISSING_FIELD, "missing field: data needs locale, time_zone, "
                                        "quiet_hours or toggle_channel");
        return 0;
    }
    case NTF_NOTIFICATION_REQUESTED:
        if (want_str(ev->data, "title", "data.title", 1, 1, 1000, &s, why) ||
            want_str(ev->data, "body", "data.body", 0, 0, 16000, &s, why) ||
            want_str(ev->data, "url", "data.url", 0, 1, 2000, &s, why) ||
            want_str(ev->data, "action", "data.action", 0, 1, 100, &s, why))
            return -1;
        return 0;
    case NTF_TYPE_COUNT:
        break;
    }
    REJECT(NTF_R_UNKNOWN_TYPE, "unknown event type");
}

/* json-c takes NaN, Infinity and lone surrogates, which are not JSON (and
 * PostgreSQL's jsonb refuses them): reject them here, naming the path. */
static int strict_json(json_object *o, char *path, size_t plen, size_t used,
                       struct ntf_reject_info *why)
{
    switch (json_object_get_type(o)) {
    case json_type_double: {
        double d = json_object_get_double(o);
        if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308)
            REJECT(NTF_R_INVALID_JSON, "not JSON: %s is NaN or Infinity", used ? path : "value");
        return 0;
    }
    case json_type_string: {
        const char *s = json_object_get_string(o);
        size_t n = (size_t)json_object_get_string_len(o);
        if (memchr(s, '\0', n))
            REJECT(NTF_R_INVALID_FIELD, "%s: contains \\u0000, which text cannot hold",
                   used ? path : "value");
        if (!utf8_ok(s, n))
            REJECT(NTF_R_INVALID_JSON, "not JSON: %s holds invalid UTF-8", used ? path : "value");
        return 0;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            int n = snprintf(path + used, plen - used, "[%zu]", i);
            size_t u = used + (n > 0 && (size_t)n < plen - used ? (size_t)n : 0);
            if (strict_json(json_object_array_get_idx(o, i), path, plen, u, why))
                return -1;
            path[used] = '\0';
        }
        return 0;
    case json_type_object: {
        json_object_object_foreach(o, k, v)
        {
            if (!utf8_ok(k, strlen(k)))
                REJECT(NTF_R_INVALID_JSON, "not JSON: a key in %s is not valid UTF-8",
                       used ? path : "the envelope");
            int n = snprintf(path + used, plen - used, "%s%s", used ? "." : "", k);
            size_t u = used + (n > 0 && (size_t)n < plen - used ? (size_t)n : 0);
            if (strict_json(v, path, plen, u, why))
                return -1;
            path[used] = '\0';
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int validate(struct ntf_event *ev, const struct ntf_limits *lim, struct ntf_reject_info *why)
{
    char path[160] = "";
    if (strict_json(ev->root, path, sizeof(path), 0, why))
        return -1;
    json_object *root = ev->root, *v;
    const char *s;

    /* type and version first: an unknown type is reported as such, whatever else is wrong */
    if (want_str(root, "type", "type", 1, 1, 200, &s, why))
        return -1;
    int t = ntf_type_parse(s);
    if (t < 0 || (t == NTF_REMINDER && !lim->allow_internal))
        REJECT(NTF_R_UNKNOWN_TYPE,
               "unknown event type \"%.60s\" (known: task.assigned, task.due, task.completed, "
               "reminder.scheduled, reminder.cancelled, notification.requested, "
               "preferences.update_requested)",
               s);
    ev->type = (enum ntf_type)t;
    v = field(root, "version");
    if (v == NULL)
        REJECT(NTF_R_MISSING_FIELD, "missing field: version");
    if (!json_object_is_type(v, json_type_int))
        REJECT(NTF_R_INVALID_FIELD, "version: expected an integer, got %s",
               json_type_to_name(json_object_get_type(v)));
    int64_t ver = json_object_get_int64(v);
    if (ver != 1)
        REJECT(NTF_R_UNSUPPORTED_VERSION,
               "%s version %" PRId64 " is not supported (this notifier knows version 1)", s, ver);
    ev->version = 1;

    if (want_str(root, "id", "id", 1, 1, 64, &s, why))
        return -1;
    if (!ntf_uuid_valid(s))
        REJECT(NTF_R_INVALID_FIELD,
               "id: expected a UUID like 0b9c3f6e-1d2a-4c5b-8e7f-123456789abc");
    for (int i = 0; i < 36; i++)
        ev->id[i] = (char)tolower((unsigned char)s[i]);
    ev->id[36] = '\0';

    if (want_time(root, "occurred_at", "occurred_at", 1, &ev->occurred_at_ms, why) ||
        want_str(root, "source", "source", 1, 1, 200, &ev->source, why) ||
        want_time(root, "deliver_at", "deliver_at", 0, &ev->deliver_at_ms, why) ||
        want_str(root, "dedup_key", "dedup_key", 0, 1, 200, &ev->dedup_key, why))
        return -1;

    ev->priority = NTF_PRIO_NORMAL;
    if (want_str(root, "priority", "priority", 0, 1, 20, &s, why))
        return -1;
    if (s) {
        int p = -1;
        for (size_t i = 0; i < VN_ARRAY_LEN(priority_names); i++)
            if (strcmp(s, priority_names[i]) == 0)
                p = (int)i;
        if (p < 0)
            REJECT(NTF_R_INVALID_FIELD,
                   "priority: expected low, normal, high or critical, got \"%.30s\"", s);
        ev->priority = (enum ntf_priority)p;
    }

    v = field(root, "channels");
    if (v) {
        size_t n;
        if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) == 0)
            REJECT(NTF_R_INVALID_FIELD,
                   "channels: expected a non-empty array of telegram, email, websocket");
        for (size_t i = 0; i < n; i++) {
            json_object *c = json_object_array_get_idx(v, i);
            int ch = json_object_is_type(c, json_type_string)
                         ? ntf_channel_parse(json_object_get_string(c))
                         : -1;
            if (ch < 0)
                REJECT(NTF_R_INVALID_FIELD, "channels[%zu]: expected telegram, email or websocket",
                       i);
            if (ev->channels & NTF_CH_BIT(ch))
                REJECT(NTF_R_INVALID_FIELD, "channels[%zu]: %s is listed twice", i,
                       ntf_channel_name((enum ntf_channel)ch));
            ev->channels |= NTF_CH_BIT(ch);
        }
    }

    v = field(root, "recipients");
    if (v == NULL) {
        if (ev->type != NTF_REMINDER_CANCELLED)
            REJECT(NTF_R_MISSING_FIELD, "missing field: recipients");
    } else {
        size_t n, max = lim->max_recipients ? lim->max_recipients : 1000;
        if (!json_object_is_type(v, json_type_array))
            REJECT(NTF_R_INVALID_FIELD, "recipients: expected an array, got %s",
                   json_type_to_name(json_object_get_type(v)));
        n = json_object_array_length(v);
        if (n == 0 && ev->type != NTF_REMINDER_CANCELLED)
            REJECT(NTF_R_INVALID_FIELD, "recipients: empty; name at least one");
        if (n > max)
            REJECT(NTF_R_INVALID_FIELD, "recipients: %zu of them, over the limit of %zu", n, max);
        ev->recipients = n ? xcalloc(n, sizeof(*ev->recipients)) : NULL;
        for (size_t i = 0; i < n; i++) {
            if (parse_recipient(json_object_array_get_idx(v, i), i, &ev->recipients[i], why))
                return -1;
            ev->n_recipients++;
        }
    }

    if (want_object(root, "data", "data", &ev->data, why))
        return -1;
    return check_data(ev, why);
}

int ntf_event_parse(const char *body, size_t len, const struct ntf_limits *lim,
                    struct ntf_event *ev, struct ntf_reject_info *why)
{
    static const struct ntf_limits defaults = {0, 0, 0};
    size_t max;
    memset(ev, 0, sizeof(*ev));
    memset(why, 0, sizeof(*why));
    if (lim == NULL)
        lim = &defaults;
    max = lim->max_bytes ? lim->max_bytes : 256 * 1024;
    if (len > max) {
        why->code = NTF_R_TOO_LARGE;
        snprintf(why->msg, sizeof(why->msg), "body is %zu bytes, over the limit of %zu", len, max);
        return VN_ETOOBIG;
    }
    json_tokener *tok = json_tokener_new_ex(32);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    ev->root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t off = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue && len > 0) {
        /* A top-level scalar (42, true, null) ends only with the input: say it has. */
        ev->root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        off = len;
    }
    json_tokener_free(tok);
    /* NULL with success is the JSON value null: not an object, handled below */
    if (jerr != json_tokener_success || off != len) {
        json_object_put(ev->root);
        ev->root = NULL;
        why->code = NTF_R_INVALID_JSON;
        if (len == 0)
            snprintf(why->msg, sizeof(why->msg), "not JSON: the body is empty");
        else
            snprintf(why->msg, sizeof(why->msg), "not JSON: %s at byte %zu",
                     jerr == json_tokener_success    ? "data after the value"
                     : jerr == json_tokener_continue ? "unexpected end of input"
                                                     : json_tokener_error_desc(jerr),
                     off);
        return VN_EINVAL;
    }
    if (!json_object_is_type(ev->root, json_type_object)) {
        why->code = NTF_R_NOT_OBJECT;
        snprintf(why->msg, sizeof(why->msg), "the envelope must be a JSON object, got %s",
                 json_type_to_name(json_object_get_type(ev->root)));
        ntf_event_free(ev);
        return VN_EINVAL;
    }
    if (validate(ev, lim, why) != 0) {
        ntf_event_free(ev);
        return VN_EINVAL;
    }
    return 0;
}

void ntf_event_free(struct ntf_event *ev)
{
    if (ev == NULL)
        return;
    json_object_put(ev->root);
    free(ev->recipients);
    memset(ev, 0, sizeof(*ev));
}

char *ntf_reminder_envelope(const char *scheduled, int64_t fire_ms)
{
    json_object *root = json_tokener_parse(scheduled), *data, *rem, *v;
    char id[37], ts[40], *out;
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        (data = field(root, "data")) == NULL || (rem = field(data, "reminder")) == NULL ||
        !json_object_is_type(rem, json_type_object)) {
        json_object_put(root);
        return NULL;
    }
    const char *rid;
    char lower[37];
    if ((v = field(rem, "id")) && json_object_is_type(v, json_type_string)) {
        rid = json_object_get_string(v);
    } else {
        rid = (v = field(root, "id")) ? json_object_get_string(v) : "";
        if (ntf_uuid_valid(rid)) {
            /* as ntf_event_parse normalised it: reminder_id defaults to the envelope id */
            for (int i = 0; i < 36; i++)
                lower[i] = (char)tolower((unsigned char)rid[i]);
            lower[36] = '\0';
            rid = lower;
        }
    }
    char *name = xasprintf("reminder:%s", rid);
    ntf_uuid_from_name(name, id);
    free(name);
    json_object *copy = NULL;
    json_object_deep_copy(rem, &copy, NULL);
    if (!field(copy, "id"))
        json_object_object_add(copy, "id", json_object_new_string(rid));
    ntf_format_rfc3339(fire_ms, ts, sizeof(ts));
    if (!field(copy, "remind_at"))
        json_object_object_add(copy, "remind_at", json_object_new_string(ts));
    if (!field(copy, "created_at") && (v = field(root, "occurred_at")))
        json_object_object_add(copy, "created_at", json_object_get(v));
    json_object_object_add(data, "reminder", copy);
    json_object_object_add(root, "id", json_object_new_string(id));
    json_object_object_add(root, "type", json_object_new_string("reminder.fired"));
    json_object_object_del(root, "deliver_at");
    json_object_object_del(root, "dedup_key");
    out = xstrdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return out;
}
