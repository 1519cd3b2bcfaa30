/*
 * app.h - the long-running process: one loop, the HTTP server, the clients
 * of Redis, PostgreSQL and RabbitMQ, and the role's work on top.
 *
 * Lifecycle: vn_app_run() builds everything on a fresh loop, runs it, and
 * returns the exit code once the loop is empty. SIGTERM/SIGINT start a drain
 * (readyz turns 503, in-flight requests finish up to SHUTDOWN_TIMEOUT, then
 * every client closes); a second signal exits at once. SIGHUP only sets a
 * flag; reloadable parts are reloaded at a safe point of the loop.
 */
#ifndef VN_APP_H
#define VN_APP_H

#include "config.h"

enum vn_role { VN_ROLE_BOT = 1, VN_ROLE_NOTIFIER = 2, VN_ROLE_ALL = 3 };

const char *vn_role_name(enum vn_role role);

struct vn_app_opts {
    int polling; /* bot: long polling instead of the webhook (development) */
};

/* Run until drained. Returns the process exit code (0 on a clean drain). */
int vn_app_run(const struct vn_config *cfg, enum vn_role role, const struct vn_app_opts *opts);

/* `vestnik bot --set-webhook URL`: register the webhook and exit (0 or 1). */
int vn_app_set_webhook(const struct vn_config *cfg, const char *url);

#endif
