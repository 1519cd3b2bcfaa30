/*
 * main.c - the vestnik command: parse the subcommand, load config, dispatch.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifier/ntf_send.h"
#include "core/app.h"
#include "core/common.h"
#include "core/config.h"
#include "core/log.h"
#include "db/migrate.h"
#include "fsm/fsm.h"
#include "templates/tpl_cli.h"

static const char usage_main[] =
    "vestnik - Telegram and notification bot engine\n"
    "\n"
    "Usage: vestnik <command> [options]\n"
    "\n"
    "Commands:\n"
    "  all        run the bot and the notifier in one process (development, small installs)\n"
    "  bot        run the bot: Telegram webhook or long polling, conversation flows\n"
    "  notifier   run the notifier: RabbitMQ events to Telegram, email and WebSocket\n"
    "  migrate    apply pending database migrations\n"
    "  config     print the effective configuration (secrets redacted)\n"
    "  flow       check flow files, draw them as graphs (vestnik flow --help)\n"
    "  template   render a template with JSON data, or check a template set\n"
    "  send       publish a test event for the notifier (vestnik send --help)\n"
    "  version    print the version\n"
    "  help       print this help, or `vestnik help <command>`\n"
    "\n"
    "Configuration comes from environment variables; `vestnik config --help` lists them.\n"
    "Every command takes --help.\n";

static const char usage_run[] =
    "Usage: vestnik %s [--polling]%s\n"
    "\n"
    "Runs the %s role until SIGTERM or SIGINT. Serves on HTTP_HOST:HTTP_PORT:\n"
    "  GET /healthz   200 while the process runs\n"
    "  GET /readyz    200 when Redis, PostgreSQL and RabbitMQ answer, else 503 naming each\n"
    "  GET /metrics   Prometheus text format\n"
    "  POST TELEGRAM_WEBHOOK_PATH   Telegram updates (bot role, when TELEGRAM_BOT_TOKEN is set)\n"
    "  POST /v1/conversations       start a flow for a linked user (Bearer API_KEY)\n"
    "SIGTERM drains (readyz turns 503, in-flight requests finish, up to SHUTDOWN_TIMEOUT)\n"
    "and exits 0; SIGHUP reloads flows and templates.\n"
    "Logs are JSON lines on stderr (LOG_LEVEL).\n"
    "\n"
    "  --polling            take updates with getUpdates instead of the webhook (development)\n"
    "  --set-webhook URL    (bot) register URL with setWebhook, the secret and allowed updates, "
    "then exit\n";

static const char usage_config[] =
    "Usage: vestnik config [--markdown]\n"
    "\n"
    "Prints every setting as NAME=value with where it came from (env or default);\n"
    "passwords in URLs and secrets are shown as ***. Exits 2 when a value is invalid.\n"
    "--markdown prints the table of variables (as in the README).\n"
    "\n"
    "Variables:\n";

static const char usage_migrate[] =
    "Usage: vestnik migrate [--dir DIR] [--status]\n"
    "\n"
    "Applies pending migrations from DIR (default MIGRATIONS_DIR) to DATABASE_URL in\n"
    "order, each in its own transaction, under an advisory lock. Refuses to run when an\n"
    "applied migration was edited. --status lists applied and pending ones only.\n";

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

static const char *type_name(enum cfg_type t)
{
    switch (t) {
    case CFG_STRING:
        return "string";
    case CFG_INT:
        return "integer";
    case CFG_SIZE:
        return "size";
    case CFG_DURATION:
        return "duration";
    case CFG_ENUM:
        return "enum";
    case CFG_URL:
        return "url";
    }
    return "?";
}

static void print_vars(int markdown)
{
    size_t n = 0;
    const struct cfg_var *vars = cfg_vars(&n);
    if (markdown)
        printf("| Variable | Type | Default | Description |\n| --- | --- | --- | --- |\n");
    for (size_t i = 0; i < n; i++) {
        const struct cfg_var *v = &vars[i];
        if (markdown)
            printf("| `%s` | %s%s | %s%s%s | %s |\n", v->name, type_name(v->type),
                   v->secret ? ", secret" : "", *v->def ? "`" : "", *v->def ? v->def : "(empty)",
                   *v->def ? "`" : "", v->help);
        else
            printf("  %-18s %-9s default %-22s %s%s\n", v->name, type_name(v->type),
                   *v->def ? v->def : "(empty)", v->help, v->secret ? " [secret]" : "");
    }
}

static int cmd_config(const struct vn_config *cfg, int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--markdown") == 0) {
        print_vars(1);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "vestnik config: unknown option %s (try --help)\n", argv[1]);
        return 2;
    }
    struct vn_buf out = VN_BUF_INIT;
    cfg_print(cfg, cfg_getenv, NULL, &out);
    fputs(out.data ? out.data : "", stdout);
    vn_buf_free(&out);
    return 0;
}

int main(int argc, char **argv)
{
    struct vn_config cfg;
    struct vn_buf errors = VN_BUF_INIT;
    int rc = 0;

    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            char *args[] = {argv[0], argv[2], "--help", NULL};
            return main(3, args);
        }
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("vestnik %s\n", VN_VERSION);
        return 0;
    }

    /* Tools that read only files work whatever the environment says. */
    if (strcmp(cmd, "flow") == 0)
        return fsm_cli_main(NULL, argc - 1, argv + 1);
    if (strcmp(cmd, "template") == 0 && wants_help(argc - 1, argv + 1))
        return tpl_cli_main(NULL, argc - 1, argv + 1);

    enum vn_role role = 0;
    if (strcmp(cmd, "all") == 0)
        role = VN_ROLE_ALL;
    else if (strcmp(cmd, "bot") == 0)
        role = VN_ROLE_BOT;
    else if (strcmp(cmd, "notifier") == 0)
        role = VN_ROLE_NOTIFIER;
    else if (strcmp(cmd, "migrate") != 0 && strcmp(cmd, "config") != 0 &&
             strcmp(cmd, "template") != 0 && strcmp(cmd, "send") != 0) {
        fprintf(stderr, "vestnik: unknown command \"%s\"\n\n%s", cmd, usage_main);
        return 2;
    }

    if (wants_help(argc - 1, argv + 1)) {
        if (role)
            printf(usage_run, cmd, role == VN_ROLE_BOT ? " [--set-webhook URL]" : "",
                   vn_role_name(role));
        else if (strcmp(cmd, "send") == 0)
            fputs(ntf_send_usage, stdout);
        else if (strcmp(cmd, "config") == 0) {
            fputs(usage_config, stdout);
            print_vars(0);
        } else
            fputs(usage_migrate, stdout);
        return 0;
    }

    if (cfg_load(&cfg, cfg_getenv, NULL, &errors) != 0) {
        fprintf(stderr, "vestnik: invalid configuration:\n");
        for (char *line = errors.data; line && *line;) {
            char *nl = strchr(line, '\n');
            fprintf(stderr, "  %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
            line = nl ? nl + 1 : line + strlen(line);
        }
        fprintf(stderr, "See `vestnik config --help` for every variable.\n");
        vn_buf_free(&errors);
        cfg_free(&cfg);
        return 2;
    }
    vn_buf_free(&errors);
    vn_log_set_level(cfg.log_level);
    vn_log_route_lws();

    if (role) {
        struct vn_app_opts opts = {0};
        const char *webhook = NULL;
        rc = -1;
        for (int i = 2; i < argc && rc == -1; i++) {
            if (strcmp(argv[i], "--polling") == 0 && (role & VN_ROLE_BOT)) {
                opts.polling = 1;
            } else if (strcmp(argv[i], "--set-webhook") == 0 && role == VN_ROLE_BOT &&
                       i + 1 < argc) {
                webhook = argv[++i];
            } else {
                fprintf(stderr, "vestnik %s: unexpected argument %s (try --help)\n", cmd, argv[i]);
                rc = 2;
            }
        }
        if (rc == -1)
            rc = webhook ? vn_app_set_webhook(&cfg, webhook) : vn_app_run(&cfg, role, &opts);
    } else if (strcmp(cmd, "config") == 0) {
        rc = cmd_config(&cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "template") == 0) {
        rc = tpl_cli_main(&cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "send") == 0) {
        rc = ntf_send_main(&cfg, argc - 1, argv + 1);
    } else {
        rc = db_migrate_main(&cfg, argc - 1, argv + 1);
    }
    cfg_free(&cfg);
    return rc;
}
