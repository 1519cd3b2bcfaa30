#include "app.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "amqp.h"
#include "bot/bot_runtime.h"
#include "bot/tg_client.h"
#include "fsm/fsm_date.h"
#include "notifier/ntf_api.h"
#include "notifier/ntf_email.h"
#include "notifier/ntf_notifier.h"
#include "templates/tpl.h"
#include "templates/tpl_set.h"
#include "common.h"
#include "http_client.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "redis.h"

struct vn_app {
    const struct vn_config *cfg;
    enum vn_role role;
    uv_loop_t loop;
    struct met_registry *metrics;
    struct http_router *router;
    struct http_server *http;
    struct rds_client *redis;
    struct pgc_client *pg;
    struct pgc_client *pg_fast; /* the notifier's second connection */
    struct mq_client *mq;
    struct hc_client *hc;
    struct tg_client *tg;      /* NULL when TELEGRAM_BOT_TOKEN is empty */
    struct bot_runtime *bot;   /* the bot role, when Telegram is on */
    struct tpl_set *templates; /* TEMPLATES_DIR, swapped on SIGHUP */
    struct fsm_tz *tz;         /* DEFAULT_TIME_ZONE */
    struct ntf_notifier *ntf;  /* the notifier role */
    struct ntf_email_pool *email;
    struct ntf_api *api;
    struct ntf_retry retry;
    struct ntf_topology topo;
    struct vn_app_opts opts;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uv_check_t safe_point;
    struct met_family *m_up;
    uint64_t started_ms;
    uint64_t drain_deadline;
    int draining;
    int closed;
    int reload_requested;
    int mq_up;
    int exit_code;
};

const char *vn_role_name(enum vn_role role)
{
    switch (role) {
    case VN_ROLE_BOT:
        return "bot";
    case VN_ROLE_NOTIFIER:
        return "notifier";
    case VN_ROLE_ALL:
        return "all";
    }
    return "?";
}

/* ---- HTTP handlers -------------------------------------------------------- */

static void h_healthz(struct http_request *req, void *ud)
{
    struct vn_app *app = ud;
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_printf(&b, "{\"status\":\"ok\",\"version\":\"%s\",\"role\":\"%s\",\"uptime_s\":%llu}\n",
                  VN_VERSION, vn_role_name(app->role),
                  (unsigned long long)((vn_now_ms() - app->started_ms) / 1000));
    http_respond_json(req, 200, &b);
    vn_buf_free(&b);
}

struct dep_check {
    const char *name;
    int ok;
    const char *error;
};

static int collect_checks(struct vn_app *app, struct dep_check *out)
{
    out[0] = (struct dep_check){"redis", rds_is_ready(app->redis), rds_last_error(app->redis)};
    out[1] = (struct dep_check){"postgres", pgc_is_ready(app->pg), pgc_last_error(app->pg)};
    out[2] = (struct dep_check){"rabbitmq", app->mq && mq_is_connected(app->mq),
                                app->mq ? "not connected" : "AMQP_URL is invalid"};
    for (int i = 0; i < 3; i++)
        met_set(met_get(app->m_up, out[i].name), out[i].ok ? 1 : 0);
    return 3;
}

static void h_readyz(struct http_request *req, void *ud)
{
    struct vn_app *app = ud;
    struct dep_check checks[3];
    int n = collect_checks(app, checks), ready = !app->draining;
    struct vn_buf b = VN_BUF_INIT;

    for (int i = 0; i < n; i++)
        ready &= checks[i].ok;
    vn_buf_printf(&b, "{\"status\":\"%s\",",
                  ready           ? "ready"
                  : app->draining ? "draining"
                                  : "not_ready");
    vn_buf_puts(&b, "\"checks\":{");
    for (int i = 0; i < n; i++) {
        vn_buf_printf(&b, "%s\"%s\":{\"ok\":%s", i ? "," : "", checks[i].name,
                      checks[i].ok ? "true" : "false");
        if (!checks[i].ok && checks[i].error && *checks[i].error) {
            vn_buf_puts(&b, ",\"error\":");
            vn_buf_json_str(&b, checks[i].error);
        }
        vn_buf_putc(&b, '}');
    }
    vn_buf_puts(&b, "}}\n");
    if (!ready)
        http_resp_header(req, "retry-after", "1");
    http_respond_json(req, ready ? 200 : 503, &b);
    vn_buf_free(&b);
}

static void h_metrics(struct http_request *req, void *ud)
{
    struct vn_app *app = ud;
    struct dep_check checks[3];
    struct vn_buf b = VN_BUF_INIT;
    collect_checks(app, checks);
    met_format(app->metrics, &b);
    http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len);
    vn_buf_free(&b);
}

/* ---- lifecycle ------------------------------------------------------------ */

static int topology(amqp_connection_state_t conn, amqp_channel_t ch, void *ud)
{
    const struct vn_app *app = ud;
    if (app->role & VN_ROLE_NOTIFIER)
        return ntf_declare_topology(conn, ch, &app->topo);
    amqp_exchange_declare(conn, ch, amqp_cstring_bytes(app->cfg->amqp_exchange),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        vn_error("amqp", "declaring exchange %s failed", app->cfg->amqp_exchange);
        return -1;
    }
    return 0;
}

static void on_mq_state(void *ud, const char *role, int connected)
{
    struct vn_app *app = ud;
    app->mq_up = connected;
    vn_debug("amqp", "%s %s", role, connected ? "connected" : "disconnected");
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Close everything; the loop then runs until the last handle is gone. */
static void shutdown_all(struct vn_app *app)
{
    if (app->closed)
        return;
    app->closed = 1;
    vn_info("main", "closing connections");
    bot_runtime_close(app->bot);
    ntf_notifier_free(app->ntf); /* closes its handles; memory goes with its last batch */
    app->ntf = NULL;
    if (app->email)
        ntf_email_pool_close(app->email, NULL, NULL);
    app->email = NULL;
    http_server_close(app->http);
    rds_close(app->redis);
    pgc_close(app->pg);
    if (app->pg_fast)
        pgc_close(app->pg_fast);
    tg_client_close(app->tg);
    hc_close(app->hc);
    if (app->mq)
        mq_client_close(app->mq, 2000, NULL, NULL);
    uv_timer_stop(&app->drain_timer);
    close_handle((uv_handle_t *)&app->drain_timer);
    close_handle((uv_handle_t *)&app->sig_term);
    close_handle((uv_handle_t *)&app->sig_int);
    close_handle((uv_handle_t *)&app->sig_hup);
    close_handle((uv_handle_t *)&app->safe_point);
}

static void on_drain_tick(uv_timer_t *t)
{
    struct vn_app *app = t->data;
    unsigned inflight = http_server_inflight(app->http) +
                        (app->bot ? bot_runtime_busy(app->bot) : 0) + ntf_notifier_busy(app->ntf);
    if (inflight == 0 || vn_now_ms() >= app->drain_deadline) {
        if (inflight)
            vn_warn("main", "drain timeout: %u requests still in flight", inflight);
        shutdown_all(app);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct vn_app *app = s->data;
    if (signum == SIGHUP) {
        app->reload_requested = 1; /* acted on at the next safe point */
        return;
    }
    if (app->draining) {
        vn_warn("main", "second %s: exiting now", strsignal(signum));
        app->exit_code = 1;
        shutdown_all(app);
        return;
    }
    app->draining = 1;
    ntf_notifier_stop(app->ntf); /* stop taking events; batches in flight finish */
    app->drain_deadline = vn_now_ms() + (uint64_t)app->cfg->shutdown_timeout_ms;
    vn_info("main", "%s: draining (up to %lld ms)", strsignal(signum),
            (long long)app->cfg->shutdown_timeout_ms);
    uv_timer_start(&app->drain_timer, on_drain_tick, 0, 50);
}

/* Runs after each loop iteration's I/O: a safe point for reloads. */
static void on_safe_point(uv_check_t *h)
{
    struct vn_app *app = h->data;
    if (!app->reload_requested)
        return;
    app->reload_requested = 0;
    if (app->templates) {
        struct vn_buf err = VN_BUF_INIT;
        struct tpl_set_opts to = {app->cfg->default_locale, NULL, 0, 0};
        if (tpl_set_reload(app->cfg->templates_dir, &to, &app->templates, &err) == 0)
            vn_info("main", "reload: templates from %s", app->cfg->templates_dir);
        else
            vn_error("main", "reload: templates in %s have problems; keeping the running set:\n%s",
                     app->cfg->templates_dir, err.data ? err.data : "");
        vn_buf_free(&err);
    }
    if (app->bot)
        bot_runtime_reload(app->bot); /* after templates: flows are checked against them */
    else if (app->templates == NULL)
        vn_info("main", "SIGHUP: nothing to reload (the bot role is off)");
}

/* getMe at start: proves the token and the API URL, and names the bot in the log. */
static void on_get_me(const struct tg_result *r, void *ud)
{
    struct vn_app *app = ud;
    json_object *v = NULL;
    if (r->kind == TG_OK) {
        const char *user =
            json_object_object_get_ex(r->result, "username", &v) ? json_object_get_string(v) : "?";
        vn_info("tg", "Bot API at %s answers: bot @%s", app->cfg->telegram_api_url, user);
    } else if (r->kind == TG_ERR_UNAUTHORIZED) {
        vn_error("tg", "TELEGRAM_BOT_TOKEN was rejected by %s (%d %s); check the token",
                 app->cfg->telegram_api_url, r->error_code, r->description);
    } else if (r->kind != TG_ERR_CLOSED) {
        vn_warn("tg", "Bot API at %s not reachable yet: %s (%s)", app->cfg->telegram_api_url,
                tg_err_kind_name(r->kind), r->description);
    }
}

static void start_telegram(struct vn_app *app)
{
    const struct vn_config *cfg = app->cfg;
    struct tg_client_opts o;
    if (cfg->telegram_bot_token == NULL || *cfg->telegram_bot_token == '\0') {
        vn_info("tg", "TELEGRAM_BOT_TOKEN is empty: Telegram is off");
        return;
    }
    memset(&o, 0, sizeof(o));
    o.api_url = cfg->telegram_api_url;
    o.token = cfg->telegram_bot_token;
    o.redis = app->redis;
    o.limiter_off = cfg->telegram_rate_limit == 1;
    if (o.limiter_off)
        vn_warn("tg", "TELEGRAM_RATE_LIMIT=off: sending without Telegram's flood limits");
    tg_limit_cfg_default(&o.limits);
    o.limits.global_per_s = cfg->telegram_rate_global;
    o.limits.chat_per_s = cfg->telegram_rate_chat;
    o.limits.chat_burst = (unsigned)cfg->telegram_rate_chat_burst;
    o.limits.group_per_min = cfg->telegram_rate_group;
    app->tg = tg_client_new(&app->loop, app->hc, &o);
    tg_get_me(app->tg, on_get_me, app);
}

/* Flow actions name templates; they render as Telegram HTML. */
static int render_template(void *ud, const char *name, const char *locale, const json_object *vars,
                           struct vn_buf *out, const char **parse_mode)
{
    struct vn_app *app = ud;
    struct tpl_render_opts o;
    struct tpl_error err;
    memset(&o, 0, sizeof(o));
    o.locale = locale;
    o.tz = app->cfg->default_time_zone;
    int rc =
        tpl_set_render(app->templates, name, TPL_PART_TELEGRAM, (json_object *)vars, &o, out, &err);
    if (rc != 0) {
        tpl_error_format(&err, out);
        return rc;
    }
    *parse_mode = "HTML";
    return 0;
}

static int template_exists(const char *name, void *ud)
{
    struct vn_app *app = ud;
    return tpl_set_find(app->templates, name, TPL_PART_TELEGRAM, NULL, NULL) != NULL;
}

static int load_templates(struct vn_app *app)
{
    const struct vn_config *cfg = app->cfg;
    struct vn_buf err = VN_BUF_INIT;
    struct tpl_set_opts to = {cfg->default_locale, NULL, 0, 0};
    if (app->templates)
        return 0;
    if (tpl_set_load(cfg->templates_dir, &to, &app->templates, &err) != 0) {
        vn_error("main",
                 "templates in %s do not load (set TEMPLATES_DIR, or run `vestnik template "
                 "check`):\n%s",
                 cfg->templates_dir, err.data ? err.data : "");
        vn_buf_free(&err);
        return -1;
    }
    vn_buf_free(&err);
    return 0;
}

/* The domain part of SMTP_FROM, for Message-IDs. */
static void from_domain(const char *from, char *buf, size_t len)
{
    const char *at = strrchr(from, '@');
    size_t n = at ? strcspn(at + 1, "> ") : 0;
    snprintf(buf, len, "%.*s", (int)n, at ? at + 1 : "");
    if (*buf == '\0')
        snprintf(buf, len, "vestnik.local");
}

/* The notifier role: e-mail senders, the consumer and scheduler, /v1 API. */
static int start_notifier(struct vn_app *app)
{
    const struct vn_config *cfg = app->cfg;
    char err[256], domain[128];
    static const char *const tls[] = {"off", "try", "required"};
    if (!(app->role & VN_ROLE_NOTIFIER))
        return 0;
    if (load_templates(app) != 0)
        return -1;
    if (cfg->smtp_host && *cfg->smtp_host) {
        struct ntf_email_opts eo;
        memset(&eo, 0, sizeof(eo));
        from_domain(cfg->smtp_from, domain, sizeof(domain));
        eo.host = cfg->smtp_host;
        eo.port = cfg->smtp_port;
        eo.starttls = tls[cfg->smtp_starttls];
        eo.user = cfg->smtp_user;
        eo.password = cfg->smtp_password;
        eo.from = cfg->smtp_from;
        eo.domain = domain;
        eo.threads = (unsigned)cfg->smtp_threads;
        eo.batch_max = (unsigned)cfg->smtp_batch;
        eo.timeout_ms = cfg->smtp_timeout_ms;
        app->email = ntf_email_pool_new(&app->loop, &eo, err, sizeof(err));
        if (app->email == NULL) {
            vn_error("notifier", "e-mail: %s (check SMTP_*)", err);
            return -1;
        }
    } else {
        vn_info("notifier", "SMTP_HOST is empty: e-mail is off");
    }
    struct ntf_notifier_opts o;
    memset(&o, 0, sizeof(o));
    o.loop = &app->loop;
    o.pg = app->pg;
    struct pgc_opts popt = {cfg->database_url, cfg->health_interval_ms, cfg->reconnect_max_ms,
                            5000};
    app->pg_fast = pgc_new(&app->loop, &popt);
    o.pg_fast = app->pg_fast;
    o.mq = app->mq;
    o.tg = app->tg;
    o.email = app->email;
    o.templates = &app->templates;
    o.metrics = app->metrics;
    o.topo = app->topo;
    o.default_locale = cfg->default_locale;
    o.default_time_zone = cfg->default_time_zone;
    o.max_event_bytes = (size_t)cfg->notify_max_event_bytes;
    o.claim_lease_ms = cfg->notify_claim_lease_ms;
    o.poll_interval_ms = cfg->notify_poll_interval_ms;
    o.batch_max = (unsigned)cfg->notify_batch;
    o.prefetch = (uint16_t)cfg->amqp_prefetch;
    app->ntf = ntf_notifier_new(&o);
    if (app->mq == NULL || ntf_notifier_start(app->ntf) != 0)
        return -1;
    return 0;
}

/* The bot role: flows, webhook, polling. Returns 0, or -1 when the flows or
 * templates do not load (every problem is logged). */
static int start_bot(struct vn_app *app)
{
    const struct vn_config *cfg = app->cfg;
    struct vn_buf err = VN_BUF_INIT;
    if (!(app->role & VN_ROLE_BOT) || app->tg == NULL)
        return 0;
    if (load_templates(app) != 0)
        return -1;
    char tzerr[160];
    app->tz = fsm_tz_load(cfg->default_time_zone, NULL, tzerr, sizeof(tzerr));
    if (app->tz == NULL) {
        vn_error("bot", "DEFAULT_TIME_ZONE \"%s\": %s", cfg->default_time_zone, tzerr);
        return -1;
    }
    struct bot_runtime_opts o;
    memset(&o, 0, sizeof(o));
    o.loop = &app->loop;
    o.redis = app->redis;
    o.pg = app->pg;
    o.mq = app->mq;
    o.tg = app->tg;
    o.metrics = app->metrics;
    o.flows_dir = cfg->flows_dir;
    o.webhook_path = cfg->telegram_webhook_path;
    o.webhook_secret = cfg->telegram_webhook_secret;
    o.api_key = cfg->api_key;
    o.exchange = cfg->amqp_exchange;
    o.default_locale = cfg->default_locale;
    o.conversation_ttl_s = cfg->conversation_ttl_ms / 1000;
    o.render = render_template;
    o.render_ud = app;
    o.template_exists = template_exists;
    o.template_ud = app;
    o.tz = app->tz;
    app->bot = bot_runtime_new(&o, app->router, &err);
    if (app->bot == NULL) {
        vn_error("bot", "flows in %s do not load (set FLOWS_DIR, or run `vestnik flow check`):\n%s",
                 cfg->flows_dir, err.data ? err.data : "");
        vn_buf_free(&err);
        return -1;
    }
    vn_buf_free(&err);
    if (app->opts.polling)
        bot_runtime_start_polling(app->bot);
    return 0;
}

static int add_routes(struct vn_app *app)
{
    int rc = 0;
    rc |= http_router_add(app->router, HTTP_GET, "/healthz", h_healthz, app);
    rc |= http_router_add(app->router, HTTP_GET, "/readyz", h_readyz, app);
    rc |= http_router_add(app->router, HTTP_GET, "/metrics", h_metrics, app);
    if (app->role & VN_ROLE_NOTIFIER) {
        struct ntf_api_opts ao = {&app->loop,        app->pg,
                                  app->mq,           app->cfg->amqp_exchange,
                                  app->cfg->api_key, (size_t)app->cfg->notify_max_event_bytes};
        app->api = ntf_api_new(&ao, app->router);
        rc |= app->api == NULL;
    }
    return rc;
}

int vn_app_run(const struct vn_config *cfg, enum vn_role role, const struct vn_app_opts *opts)
{
    struct vn_app app;
    char err[512] = "";
    int rc = 1;

    memset(&app, 0, sizeof(app));
    if (opts)
        app.opts = *opts;
    app.cfg = cfg;
    app.role = role;
    app.started_ms = vn_now_ms();
    uv_loop_init(&app.loop);
    signal(SIGPIPE, SIG_IGN);

    app.metrics = met_registry_new();
    met_set(met_get(met_gauge(app.metrics, "vestnik_build_info", "Version of this binary",
                              "version,role"),
                    VN_VERSION, vn_role_name(role)),
            1);
    app.m_up = met_gauge(app.metrics, "vestnik_dependency_up",
                         "1 when the dependency answers health checks", "dependency");
    app.router = http_router_new();
    if (role & VN_ROLE_NOTIFIER) {
        if (ntf_retry_parse(cfg->notify_retry_ladder, cfg->notify_max_attempts, &app.retry, err,
                            sizeof(err)) != 0) {
            vn_error("main", "NOTIFY_RETRY_LADDER: %s", err);
            goto out;
        }
        app.topo.exchange = cfg->amqp_exchange;
        app.topo.prefix = cfg->notify_queue_prefix;
        app.topo.retry = &app.retry;
    }

    struct http_server_opts hopt = {
        .host = cfg->http_host,
        .port = cfg->http_port,
        .max_body = (size_t)cfg->http_max_body,
        .timeout_s = (int)(cfg->http_timeout_ms / 1000),
        .metrics = app.metrics,
    };
    app.http = http_server_new(&app.loop, &hopt, app.router, err, sizeof(err));
    if (app.http == NULL) {
        vn_error("main", "%s", err);
        goto out;
    }

    struct rds_opts ropt = {cfg->redis_url, cfg->health_interval_ms, cfg->reconnect_max_ms, 3000};
    app.redis = rds_new(&app.loop, &ropt, err, sizeof(err));
    if (app.redis == NULL) {
        vn_error("main", "%s", err);
        goto out_http;
    }
    struct pgc_opts popt = {cfg->database_url, cfg->health_interval_ms, cfg->reconnect_max_ms,
                            5000};
    app.pg = pgc_new(&app.loop, &popt);
    struct mq_options mopt = {cfg->amqp_url, cfg->reconnect_max_ms, 10, "vestnik"};
    app.mq = mq_client_new(&app.loop, &mopt, topology, on_mq_state, &app);
    /* Up to 64 connections to one host (the Bot API), reused; more requests
     * wait in curl's queue instead of opening a connection each. */
    struct hc_opts hco = {64, 256, NULL};
    app.hc = hc_new(&app.loop, &hco);
    start_telegram(&app);

    uv_signal_init(&app.loop, &app.sig_term);
    uv_signal_init(&app.loop, &app.sig_int);
    uv_signal_init(&app.loop, &app.sig_hup);
    app.sig_term.data = app.sig_int.data = app.sig_hup.data = &app;
    uv_signal_start(&app.sig_term, on_signal, SIGTERM);
    uv_signal_start(&app.sig_int, on_signal, SIGINT);
    uv_signal_start(&app.sig_hup, on_signal, SIGHUP);
    uv_timer_init(&app.loop, &app.drain_timer);
    app.drain_timer.data = &app;
    uv_check_init(&app.loop, &app.safe_point);
    app.safe_point.data = &app;
    uv_check_start(&app.safe_point, on_safe_point);
    if (add_routes(&app) != 0) {
        vn_error("main", "route table is inconsistent");
        app.exit_code = 1;
        shutdown_all(&app);
    } else if (start_bot(&app) != 0 || start_notifier(&app) != 0) {
        app.exit_code = 1;
        shutdown_all(&app); /* the loop below then just closes everything */
    }

    vn_info("main", "vestnik %s started as %s on %s:%d", VN_VERSION, vn_role_name(role),
            cfg->http_host, http_server_port(app.http));
    uv_run(&app.loop, UV_RUN_DEFAULT);
    rc = app.exit_code;
    vn_info("main", "stopped");
    bot_runtime_free(app.bot);
    ntf_api_free(app.api);
    tpl_set_free(app.templates);
    fsm_tz_free(app.tz);
    goto out_loop;

out_http:
    http_server_close(app.http);
    uv_run(&app.loop, UV_RUN_DEFAULT);
out_loop:
    http_server_free(app.http);
    app.http = NULL;
out:
    if (uv_loop_close(&app.loop) != 0) {
        uv_run(&app.loop, UV_RUN_DEFAULT);
        uv_loop_close(&app.loop);
    }
    http_router_free(app.router);
    met_registry_free(app.metrics);
    return rc;
}

static void on_webhook_set(const struct tg_result *r, void *ud)
{
    int *rc = ud;
    if (r->kind == TG_OK) {
        printf("webhook set\n");
        *rc = 0;
    } else {
        fprintf(stderr, "vestnik: setWebhook failed: %s (%d %s)\n", tg_err_kind_name(r->kind),
                r->error_code, r->description);
        *rc = 1;
    }
}

int vn_app_set_webhook(const struct vn_config *cfg, const char *url)
{
    static const char *const allowed[] = {"message", "edited_message", "callback_query",
                                          "my_chat_member", NULL};
    uv_loop_t loop;
    int rc = 1;
    if (cfg->telegram_bot_token == NULL || *cfg->telegram_bot_token == '\0') {
        fprintf(stderr, "vestnik: TELEGRAM_BOT_TOKEN is empty; set it to register a webhook\n");
        return 2;
    }
    uv_loop_init(&loop);
    struct hc_client *hc = hc_new(&loop, NULL);
    struct tg_client_opts o;
    memset(&o, 0, sizeof(o));
    o.api_url = cfg->telegram_api_url;
    o.token = cfg->telegram_bot_token;
    o.limiter_off = 1;
    struct tg_client *tg = tg_client_new(&loop, hc, &o);
    struct tg_webhook w = {url, cfg->telegram_webhook_secret, allowed, 0, 0};
    if (w.secret_token && *w.secret_token == '\0')
        w.secret_token = NULL;
    tg_set_webhook(tg, &w, on_webhook_set, &rc);
    while (tg_client_pending(tg) > 0)
        uv_run(&loop, UV_RUN_ONCE);
    tg_client_close(tg);
    hc_close(hc);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}
