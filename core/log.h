/*
 * log.h - JSON-lines logging to stderr.
 *
 * One object per line: {"ts":..., "level":..., "module":..., "id":..., "msg":...}.
 * The sink (a FILE*, stderr by default) and the level are the process's only
 * mutable globals besides signal flags. Writing a line is one fwrite under a
 * lock, so lines from the AMQP and SMTP threads never interleave.
 */
#ifndef VN_LOG_H
#define VN_LOG_H

#include <stdio.h>

enum vn_log_level { VN_LOG_DEBUG = 0, VN_LOG_INFO, VN_LOG_WARN, VN_LOG_ERROR };

/* Parse "debug", "info", "warn"/"warning" or "error"; returns -1 if unknown. */
int vn_log_level_parse(const char *s);
const char *vn_log_level_name(int level);

void vn_log_set_level(int level);
int vn_log_get_level(void);
/* Redirect output (tests); NULL restores stderr. */
void vn_log_set_sink(FILE *f);

/*
 * Emit one line. id may be NULL (no "id" field). fields may be NULL or a
 * preformatted run of JSON members without braces, e.g. "\"route\":\"/x\",\"code\":200".
 */
void vn_log_emit(int level, const char *module, const char *id, const char *fields, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));

/* Send libwebsockets' own log lines through vn_log with module "lws". */
void vn_log_route_lws(void);

#define vn_debug(mod, ...) vn_log_emit(VN_LOG_DEBUG, mod, NULL, NULL, __VA_ARGS__)
#define vn_info(mod, ...)  vn_log_emit(VN_LOG_INFO, mod, NULL, NULL, __VA_ARGS__)
#define vn_warn(mod, ...)  vn_log_emit(VN_LOG_WARN, mod, NULL, NULL, __VA_ARGS__)
#define vn_error(mod, ...) vn_log_emit(VN_LOG_ERROR, mod, NULL, NULL, __VA_ARGS__)

#endif
