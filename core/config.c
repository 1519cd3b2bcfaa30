#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define OFF(f) offsetof(struct vn_config, f)
#define KIB    1024LL
#define MIB    (1024LL * 1024LL)
#define SEC    1000LL

static const struct cfg_var vars[] = {
    {"HTTP_HOST", CFG_STRING, OFF(http_host), "127.0.0.1", 0, 0, NULL, 0,
     "address the HTTP server binds (0.0.0.0 in containers)"},
    {"HTTP_PORT", CFG_INT, OFF(http_port), "8080", 1, 65535, NULL, 0,
     "TCP port of the HTTP server (webhook, /healthz, /readyz, /metrics, /v1)"},
    {"HTTP_MAX_BODY", CFG_SIZE, OFF(http_max_body), "1m", 1 * KIB, 64 * MIB, NULL, 0,
     "largest request body accepted; larger ones get 413"},
    {"HTTP_TIMEOUT", CFG_DURATION, OFF(http_timeout_ms), "30s", 1 * SEC, 600 * SEC, NULL, 0,
     "a request that sends nothing for this long is closed"},
    {"API_KEY", CFG_STRING, OFF(api_key), "", 0, 0, NULL, 1,
     "Bearer key for /v1 endpoints; empty disables them"},
    {"LOG_LEVEL", CFG_ENUM, OFF(log_level), "info", 0, 0, "debug|info|warn|error", 0,
     "lowest level written to stderr"},
    {"REDIS_URL", CFG_URL, OFF(redis_url), "redis://127.0.0.1:6379/0", 0, 0, "redis", 1,
     "Redis server: redis://[:password@]host:port/db"},
    {"DATABASE_URL", CFG_URL, OFF(database_url),
     "postgresql://vestnik:vestnik@127.0.0.1:5432/vestnik", 0, 0, "postgres|postgresql", 1,
     "PostgreSQL connection URI (libpq syntax)"},
    {"AMQP_URL", CFG_URL, OFF(amqp_url), "amqp://guest:guest@127.0.0.1:5672/", 0, 0, "amqp", 1,
     "RabbitMQ: amqp://user:password@host:port/vhost"},
    {"AMQP_PREFETCH", CFG_INT, OFF(amqp_prefetch), "256", 1, 65535, NULL, 0,
     "unacknowledged deliveries a consumer holds at once"},
    {"AMQP_EXCHANGE", CFG_STRING, OFF(amqp_exchange), "vestnik", 0, 0, NULL, 0,
     "topic exchange events are published to"},
    {"HEALTH_INTERVAL", CFG_DURATION, OFF(health_interval_ms), "1s", 100, 60 * SEC, NULL, 0,
     "how often Redis, PostgreSQL and RabbitMQ are pinged for /readyz"},
    {"RECONNECT_MAX", CFG_DURATION, OFF(reconnect_max_ms), "5s", 100, 300 * SEC, NULL, 0,
     "longest wait between reconnect attempts (backoff doubles up to this)"},
    {"SHUTDOWN_TIMEOUT", CFG_DURATION, OFF(shutdown_timeout_ms), "10s", 0, 300 * SEC, NULL, 0,
     "on SIGTERM, how long in-flight work may take before the process exits"},
    {"MIGRATIONS_DIR", CFG_STRING, OFF(migrations_dir), "db/migrations", 0, 0, NULL, 0,
     "directory holding NNNN_name.sql migrations"},
    {"TELEGRAM_API_URL", CFG_URL, OFF(telegram_api_url), "https://api.telegram.org", 0, 0,
     "http|https", 0, "Bot API base URL: the real API, a staging proxy or the fake server"},
    {"TELEGRAM_BOT_TOKEN", CFG_STRING, OFF(telegram_bot_token), "", 0, 0, NULL, 1,
     "bot token from @BotFather; empty = Telegram off"},
    {"TELEGRAM_RATE_LIMIT", CFG_ENUM, OFF(telegram_rate_limit), "on", 0, 0, "on|off", 0,
     "off sends without Telegram's flood limits (only for the fake server and benchmarks)"},
    {"TELEGRAM_RATE_GLOBAL", CFG_INT, OFF(telegram_rate_global), "30", 1, 1000, NULL, 0,
     "messages per second for the whole bot, shared by every process through Redis"},
    {"TELEGRAM_RATE_CHAT", CFG_INT, OFF(telegram_rate_chat), "1", 1, 100, NULL, 0,
     "messages per second to one private chat"},
    {"TELEGRAM_RATE_CHAT_BURST", CFG_INT, OFF(telegram_rate_chat_burst), "3", 1, 100, NULL, 0,
     "messages a private chat may get at once before the per-chat rate applies"},
    {"TELEGRAM_RATE_GROUP", CFG_INT, OFF(telegram_rate_group), "20", 1, 1000, NULL, 0,
     "messages per minute to one group or supergroup"},
    {"TELEGRAM_WEBHOOK_PATH", CFG_STRING, OFF(telegram_webhook_path), "/telegram/webhook", 0, 0,
     NULL, 0, "path the bot receives webhook updates on"},
    {"TELEGRAM_WEBHOOK_SECRET", CFG_STRING, OFF(telegram_webhook_secret), "", 0, 0, NULL, 1,
     "secret_token for setWebhook, checked on every update; empty = not checked"},
    {"FLOWS_DIR", CFG_STRING, OFF(flows_dir), "examples/reminders/flows", 0, 0, NULL, 0,
     "directory of flow files (*.yaml) the bot runs"},
    {"TEMPLATES_DIR", CFG_STRING, OFF(templates_dir), "templates/default", 0, 0, NULL, 0,
     "template set (templates/<locale>/<name>.<channel>.mustache)"},
    {"DEFAULT_LOCALE", CFG_STRING, OFF(default_locale), "en", 0, 0, NULL, 0,
     "locale for users whose language is unknown"},
    {"DEFAULT_TIME_ZONE", CFG_STRING, OFF(default_time_zone), "UTC", 0, 0, NULL, 0,
     "IANA time zone for users whose zone is unknown (dates they type, dates shown)"},
    {"CONVERSATION_TTL", CFG_DURATION, OFF(conversation_ttl_ms), "720h", 60 * SEC,
     8760LL * 3600 * SEC, NULL, 0, "how long an idle conversation's state is kept in Redis"},
    {"NOTIFY_QUEUE_PREFIX", CFG_STRING, OFF(notify_queue_prefix), "vestnik.notifier", 0, 0, NULL, 0,
     "name prefix of the notifier's queues (<prefix>.tasks, .reminders, .notifications, .dead)"},
    {"NOTIFY_RETRY_LADDER", CFG_STRING, OFF(notify_retry_ladder), "10s,1m,10m,1h", 0, 0, NULL, 0,
     "delays of the retry queues, in order; the last one repeats until NOTIFY_MAX_ATTEMPTS"},
    {"NOTIFY_MAX_ATTEMPTS", CFG_INT, OFF(notify_max_attempts), "5", 1, 100, NULL, 0,
     "attempts of an event before it goes to the dead-letter queue"},
    {"NOTIFY_MAX_EVENT_BYTES", CFG_SIZE, OFF(notify_max_event_bytes), "256k", 1 * KIB, 16 * MIB,
     NULL, 0, "largest event envelope accepted; larger ones are dead-lettered"},
    {"NOTIFY_CLAIM_LEASE", CFG_DURATION, OFF(notify_claim_lease_ms), "30s", 1 * SEC, 3600 * SEC,
     NULL, 0, "how long a delivery or reminder claimed by a notifier that died stays claimed"},
    {"NOTIFY_POLL_INTERVAL", CFG_DURATION, OFF(notify_poll_interval_ms), "250ms", 10, 60 * SEC,
     NULL, 0, "how often the scheduler looks for due reminders and deferred deliveries"},
    {"NOTIFY_BATCH", CFG_INT, OFF(notify_batch), "256", 1, 10000, NULL, 0,
     "events handled together (one database round trip per step)"},
    {"SMTP_HOST", CFG_STRING, OFF(smtp_host), "127.0.0.1", 0, 0, NULL, 0,
     "SMTP server for e-mail; empty = e-mail is off"},
    {"SMTP_PORT", CFG_INT, OFF(smtp_port), "1025", 1, 65535, NULL, 0, "SMTP port"},
    {"SMTP_STARTTLS", CFG_ENUM, OFF(smtp_starttls), "off", 0, 0, "off|try|required", 0,
     "STARTTLS: off, try (when offered) or required"},
    {"SMTP_USER", CFG_STRING, OFF(smtp_user), "", 0, 0, NULL, 0,
     "SMTP AUTH user name; empty = no AUTH"},
    {"SMTP_PASSWORD", CFG_STRING, OFF(smtp_password), "", 0, 0, NULL, 1, "SMTP AUTH password"},
    {"SMTP_FROM", CFG_STRING, OFF(smtp_from), "Vestnik <vestnik@localhost>", 0, 0, NULL, 0,
     "sender of e-mail: \"Name <address>\" or an address"},
    {"SMTP_THREADS", CFG_INT, OFF(smtp_threads), "4", 1, 64, NULL, 0,
     "SMTP sender threads (one connection each)"},
    {"SMTP_BATCH", CFG_INT, OFF(smtp_batch), "50", 1, 1000, NULL, 0,
     "messages sent over one SMTP connection before it is closed"},
    {"SMTP_TIMEOUT", CFG_DURATION, OFF(smtp_timeout_ms), "30s", 1 * SEC, 600 * SEC, NULL, 0,
     "time allowed for one SMTP command"},
};

const struct cfg_var *cfg_vars(size_t *count)
{
    *count = VN_ARRAY_LEN(vars);
    return vars;
}

const char *cfg_getenv(const char *name, void *ud)
{
    VN_UNUSED(ud);
    return getenv(name);
}

int cfg_parse_int(const char *s, int64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return VN_EINVAL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return VN_EINVAL;
    *out = v;
    return 0;
}

/* Parse "<digits><suffix>" with a suffix table; the number must be whole. */
static int parse_scaled(const char *s, const char *const *suffixes, const int64_t *scale, size_t n,
                        int64_t *out)
{
    char *end = NULL;
    if (s == NULL || !isdigit((unsigned char)*s))
        return VN_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || v > (unsigned long long)LLONG_MAX)
        return VN_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(end, suffixes[i]) == 0) {
            if (v != 0 && (unsigned long long)(LLONG_MAX / scale[i]) < v)
                return VN_EINVAL;
            *out = (int64_t)v * scale[i];
            return 0;
        }
    }
    return VN_EINVAL;
}

int cfg_parse_size(const char *s, int64_t *out)
{
    static const char *const suf[] = {"",   "b",   "k", "kb", "kib", "m",
                                      "mb", "mib", "g", "gb", "gib"};
    static const int64_t scale[] = {1,   1,   KIB,        KIB,        KIB,       MIB,
                                    MIB, MIB, 1024 * MIB, 1024 * MIB, 1024 * MIB};
    return parse_scaled(s, suf, scale, VN_ARRAY_LEN(suf), out);
}

int cfg_parse_duration(const char *s, int64_t *out_ms)
{
    /* A bare number is milliseconds: Redis and RabbitMQ settings read the same way. */
    static const char *const suf[] = {"", "ms", "s", "m", "h"};
    static const int64_t scale[] = {1, 1, SEC, 60 * SEC, 3600 * SEC};
    return parse_scaled(s, suf, scale, VN_ARRAY_LEN(suf), out_ms);
}

static int enum_index(const char *choices, const char *s)
{
    int idx = 0;
    size_t n = strlen(s);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncasecmp(p, s, n) == 0)
            return idx;
        idx++;
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    return -1;
}

/* 1 when url has one of the allowed schemes and something after "://". */
static int url_scheme_ok(const char *url, const char *schemes)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL || sep == url)
        return 0;
    char scheme[32];
    size_t n = (size_t)(sep - url);
    if (n >= sizeof(scheme))
        return 0;
    memcpy(scheme, url, n);
    scheme[n] = '\0';
    if (enum_index(schemes, scheme) < 0)
        return 0;
    /* Something must follow the scheme: a host or a socket path. */
    return sep[3] != '\0';
}

static void describe_expected(const struct cfg_var *v, struct vn_buf *out)
{
    switch (v->type) {
    case CFG_STRING:
        vn_buf_puts(out, "a string");
        break;
    case CFG_INT:
        vn_buf_printf(out, "an integer from %lld to %lld", (long long)v->min, (long long)v->max);
        break;
    case CFG_SIZE:
        vn_buf_printf(out, "a size in bytes from %lld to %lld (suffixes k, m, g allowed)",
                      (long long)v->min, (long long)v->max);
        break;
    case CFG_DURATION:
        vn_buf_printf(out, "a duration from %lldms to %llds (e.g. 500ms, 10s, 2m)",
                      (long long)v->min, (long long)(v->max / SEC));
        break;
    case CFG_ENUM: {
        vn_buf_puts(out, "one of ");
        for (const char *p = v->choices; *p; p++)
            vn_buf_puts(out, *p == '|' ? ", " : (char[]){*p, '\0'});
        break;
    }
    case CFG_URL:
        vn_buf_puts(out, "a URL with scheme ");
        for (const char *p = v->choices; *p; p++)
            vn_buf_puts(out, *p == '|' ? " or " : (char[]){*p, '\0'});
        vn_buf_puts(out, "://");
        break;
    }
}

/* Parse text into the field of cfg that v names. Returns 0 or VN_EINVAL. */
static int apply(struct vn_config *cfg, const struct cfg_var *v, const char *text)
{
    char *field = (char *)cfg + v->offset;
    int64_t n = 0;
    int rc = 0;

    switch (v->type) {
    case CFG_STRING:
        free(*(char **)field);
        *(char **)field = xstrdup(text);
        return 0;
    case CFG_URL:
        if (!url_scheme_ok(text, v->choices))
            return VN_EINVAL;
        free(*(char **)field);
        *(char **)field = xstrdup(text);
        return 0;
    case CFG_ENUM:
        rc = enum_index(v->choices, text);
        if (rc < 0)
            return VN_EINVAL;
        *(int *)field = rc;
        return 0;
    case CFG_INT:
        rc = cfg_parse_int(text, &n);
        break;
    case CFG_SIZE:
        rc = cfg_parse_size(text, &n);
        break;
    case CFG_DURATION:
        rc = cfg_parse_duration(text, &n);
        break;
    }
    if (rc != 0 || n < v->min || n > v->max)
        return VN_EINVAL;
    if (v->type == CFG_INT)
        *(int *)field = (int)n;
    else
        *(int64_t *)field = n;
    return 0;
}

int cfg_load(struct vn_config *cfg, cfg_lookup_fn lookup, void *ud, struct vn_buf *errors)
{
    int bad = 0;
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < VN_ARRAY_LEN(vars); i++) {
        const struct cfg_var *v = &vars[i];
        if (apply(cfg, v, v->def) != 0) {
            /* A broken default is a programming error; the unit test catches it. */
            vn_buf_printf(errors, "%s: built-in default \"%s\" is invalid\n", v->name, v->def);
            bad++;
        }
        const char *val = lookup ? lookup(v->name, ud) : NULL;
        if (val == NULL)
            continue;
        if (apply(cfg, v, val) != 0) {
            vn_buf_printf(errors, "%s: expected ", v->name);
            describe_expected(v, errors);
            if (v->secret)
                vn_buf_puts(errors, ", got an invalid value (not shown: secret)\n");
            else if (*val == '\0')
                vn_buf_puts(errors, ", got an empty value\n");
            else {
                vn_buf_puts(errors, ", got \"");
                vn_buf_json_escape(errors, val, strnlen(val, 200));
                vn_buf_puts(errors, "\"\n");
            }
            bad++;
        }
    }
    return bad;
}

void cfg_free(struct vn_config *cfg)
{
    for (size_t i = 0; i < VN_ARRAY_LEN(vars); i++) {
        if (vars[i].type == CFG_STRING || vars[i].type == CFG_URL) {
            char **p = (char **)((char *)cfg + vars[i].offset);
            free(*p);
            *p = NULL;
        }
    }
}

char *cfg_redact_url(const char *url)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return xstrdup(url);
    const char *auth = sep + 3;
    const char *end = auth + strcspn(auth, "?#");
    const char *at = NULL;
    /* The last '@' ends the userinfo. Searching past the first '/' too means a
     * password with a raw '/' (common in base64) is still hidden. */
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    if (at == NULL)
        return xstrdup(url);
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL)
        return xstrdup(url);
    return xasprintf("%.*s***%s", (int)(colon + 1 - url), url, at);
}

char *cfg_value_text(const struct vn_config *cfg, const struct cfg_var *v)
{
    const char *field = (const char *)cfg + v->offset;
    switch (v->type) {
    case CFG_STRING: {
        const char *s = *(char *const *)field;
        if (v->secret && s && *s)
            return xstrdup("***");
        return xstrdup(s ? s : "");
    }
    case CFG_URL: {
        const char *s = *(char *const *)field;
        return v->secret ? cfg_redact_url(s ? s : "") : xstrdup(s ? s : "");
    }
    case CFG_ENUM: {
        int idx = *(const int *)field;
        const char *p = v->choices;
        for (int i = 0; i < idx && p; i++) {
            p = strchr(p, '|');
            if (p)
                p++;
        }
        if (p == NULL)
            return xstrdup("?");
        return xstrndup(p, strcspn(p, "|"));
    }
    case CFG_INT:
        return xasprintf("%d", *(const int *)field);
    case CFG_SIZE:
        return xasprintf("%lld", (long long)*(const int64_t *)field);
    case CFG_DURATION:
        return xasprintf("%lldms", (long long)*(const int64_t *)field);
    }
    return xstrdup("?");
}

void cfg_print(const struct vn_config *cfg, cfg_lookup_fn lookup, void *ud, struct vn_buf *out)
{
    for (size_t i = 0; i < VN_ARRAY_LEN(vars); i++) {
        char *val = cfg_value_text(cfg, &vars[i]);
        const char *src = lookup && lookup(vars[i].name, ud) ? "env" : "default";
        int w = (int)strlen(vars[i].name) + 1 + (int)strlen(val);
        vn_buf_printf(out, "%s=%s%*s# %s\n", vars[i].name, val, w < 48 ? 48 - w : 1, "", src);
        free(val);
    }
}
