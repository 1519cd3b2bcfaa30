/*
 * config.h - process configuration from environment variables.
 *
 * One table (config.c) defines every variable: name, type, default, bounds,
 * whether it is secret, and a one-line description. The same table drives
 * parsing, validation, `vestnik config` output and the README's table, so a
 * new setting is one new row. Defaults go through the same parser as user
 * values, and a unit test proves every default is valid.
 */
#ifndef VN_CONFIG_H
#define VN_CONFIG_H

#include "common.h"

#include <stdint.h>

struct vn_config {
    char *http_host;
    int http_port;
    int64_t http_max_body;   /* bytes */
    int64_t http_timeout_ms; /* idle/slow request limit */
    char *api_key;
    int log_level;
    char *redis_url;
    char *database_url;
    char *amqp_url;
    int amqp_prefetch;
    char *amqp_exchange;
    int64_t health_interval_ms;
    int64_t reconnect_max_ms;
    int64_t shutdown_timeout_ms;
    char *migrations_dir;
    char *telegram_api_url;
    char *telegram_bot_token;
    int telegram_rate_limit;  /* 0 = on, 1 = off (benchmarks, the fake server) */
    int telegram_rate_global; /* messages per second, whole bot */
    int telegram_rate_chat;   /* messages per second, one private chat */
    int telegram_rate_chat_burst;
    int telegram_rate_group; /* messages per minute, one group */
    char *telegram_webhook_path;
    char *telegram_webhook_secret;
    char *flows_dir;
    char *templates_dir;
    char *default_locale;
    char *default_time_zone;
    int64_t conversation_ttl_ms;
    char *notify_queue_prefix;
    char *notify_retry_ladder;
    int notify_max_attempts;
    int64_t notify_max_event_bytes;
    int64_t notify_claim_lease_ms;
    int64_t notify_poll_interval_ms;
    int notify_batch;
    char *smtp_host;
    int smtp_port;
    int smtp_starttls; /* 0 off, 1 try, 2 required */
    char *smtp_user;
    char *smtp_password;
    char *smtp_from;
    int smtp_threads;
    int smtp_batch;
    int64_t smtp_timeout_ms;
};

enum cfg_type { CFG_STRING, CFG_INT, CFG_SIZE, CFG_DURATION, CFG_ENUM, CFG_URL };

struct cfg_var {
    const char *name;
    enum cfg_type type;
    size_t offset;       /* into struct vn_config */
    const char *def;     /* default, as text; parsed like user input */
    int64_t min, max;    /* CFG_INT, CFG_SIZE (bytes), CFG_DURATION (ms) */
    const char *choices; /* CFG_ENUM: "a|b|c"; CFG_URL: allowed schemes "redis|rediss" */
    int secret;          /* redacted when printed (URLs: only the password) */
    const char *help;
};

/* Look-up function so tests can feed a fake environment; NULL = unset. */
typedef const char *(*cfg_lookup_fn)(const char *name, void *ud);

/* Lookup that reads the real environment (ud unused). */
const char *cfg_getenv(const char *name, void *ud);

/*
 * Fill cfg from lookup. Returns the number of invalid variables (0 = all
 * good); each problem is appended to errors as one line naming the variable,
 * what was expected and what was given. cfg is fully populated either way
 * (invalid entries keep their default) and must be released with cfg_free().
 */
int cfg_load(struct vn_config *cfg, cfg_lookup_fn lookup, void *ud, struct vn_buf *errors);
void cfg_free(struct vn_config *cfg);

/* The table, for printing help and docs. */
const struct cfg_var *cfg_vars(size_t *count);

/* Print NAME=value lines with secrets redacted; marks which came from the env. */
void cfg_print(const struct vn_config *cfg, cfg_lookup_fn lookup, void *ud, struct vn_buf *out);

/* Render one variable's current value, redacted if secret. Caller frees. */
char *cfg_value_text(const struct vn_config *cfg, const struct cfg_var *v);

/* Parsers shared with the table, exposed for tests. Return 0 or VN_EINVAL. */
int cfg_parse_int(const char *s, int64_t *out);
int cfg_parse_size(const char *s, int64_t *out);
int cfg_parse_duration(const char *s, int64_t *out_ms);
/* Copy a URL with any password replaced by "***". Caller frees. */
char *cfg_redact_url(const char *url);

#endif
