#include "log.h"
#include "common.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int log_level = VN_LOG_INFO;
static FILE *log_sink;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int vn_log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < VN_ARRAY_LEN(level_names); i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return (int)i;
    if (strcasecmp(s, "warning") == 0)
        return VN_LOG_WARN;
    return -1;
}

const char *vn_log_level_name(int level)
{
    if (level < 0 || level >= (int)VN_ARRAY_LEN(level_names))
        return "info";
    return level_names[level];
}

void vn_log_set_level(int level)
{
    log_level = level;
}

int vn_log_get_level(void)
{
    return log_level;
}

void vn_log_set_sink(FILE *f)
{
    pthread_mutex_lock(&log_lock);
    log_sink = f;
    pthread_mutex_unlock(&log_lock);
}

static void format_ts(char *out, size_t n)
{
    uint64_t ms = vn_wall_ms();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03uZ", (unsigned)(ms % 1000));
}

static void emit_line(int level, const char *module, const char *id, const char *fields,
                      const char *msg, size_t msglen)
{
    char ts[40];
    struct vn_buf b = VN_BUF_INIT;

    format_ts(ts, sizeof(ts));
    vn_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":", ts, vn_log_level_name(level));
    vn_buf_json_str(&b, module ? module : "main");
    if (id && *id) {
        vn_buf_puts(&b, ",\"id\":");
        vn_buf_json_str(&b, id);
    }
    vn_buf_puts(&b, ",\"msg\":\"");
    vn_buf_json_escape(&b, msg, msglen);
    vn_buf_putc(&b, '"');
    if (fields && *fields) {
        vn_buf_putc(&b, ',');
        vn_buf_puts(&b, fields);
    }
    vn_buf_puts(&b, "}\n");

    pthread_mutex_lock(&log_lock);
    FILE *out = log_sink ? log_sink : stderr;
    fwrite(b.data, 1, b.len, out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
    vn_buf_free(&b);
}

void vn_log_emit(int level, const char *module, const char *id, const char *fields, const char *fmt,
                 ...)
{
    if (level < log_level)
        return;
    struct vn_buf msg = VN_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    vn_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    emit_line(level, module, id, fields, msg.data ? msg.data : "", msg.len);
    vn_buf_free(&msg);
}

static void lws_emit(int lws_level, const char *line)
{
    int level = VN_LOG_DEBUG;
    if (lws_level & LLL_ERR)
        level = VN_LOG_ERROR;
    else if (lws_level & LLL_WARN)
        level = VN_LOG_WARN;
    else if (lws_level & (LLL_NOTICE | LLL_USER))
        level = VN_LOG_INFO;
    if (level < log_level)
        return;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        n--;
    emit_line(level, "lws", NULL, NULL, line, n);
}

void vn_log_route_lws(void)
{
    int mask = LLL_ERR | LLL_WARN;
    if (log_level <= VN_LOG_DEBUG)
        mask |= LLL_NOTICE | LLL_INFO | LLL_USER;
    lws_set_log_level(mask, lws_emit);
}
