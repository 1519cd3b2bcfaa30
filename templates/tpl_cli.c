/*
 * tpl_cli.c - `vestnik template render` and `vestnik template check`.
 *
 * Both load the whole set first, so a render also proves the set would load
 * in the running service (a broken file elsewhere in the directory is
 * reported, not skipped). Problems go to stdout for `check` (they are its
 * output) and to stderr for `render` (whose output is the message).
 */
#include "templates/tpl_cli.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "templates/tpl_internal.h"
#include "templates/tpl_set.h"

#define DATA_MAX ((size_t)16 << 20)

static const char usage_top[] =
    "Usage: vestnik template <render|check> [options]\n"
    "\n"
    "  render NAME   render one template with JSON data and print the result\n"
    "  check [DIR]   load and validate a template set, render it with its sample data\n"
    "\n"
    "Layout, filters and escaping: docs/templates.md. `vestnik template render --help`\n"
    "and `vestnik template check --help` list the options.\n";

static const char usage_render[] =
    "Usage: vestnik template render NAME [options]\n"
    "\n"
    "Renders NAME (e.g. task.due) for one channel and prints it. E-mail prints the\n"
    "subject, the text part and the html part under headings.\n"
    "\n"
    "  --channel C     telegram (HTML, default), telegram_md2, email, websocket, or one\n"
    "                  part: email.subject, email.text, email.html\n"
    "  --locale L      recipient's locale, e.g. ru-RU (default DEFAULT_LOCALE);\n"
    "                  falls back ru-RU -> ru -> the default locale\n"
    "  --data FILE     JSON data (\"-\" reads stdin); default DIR/samples/NAME.json if it\n"
    "                  exists, else {}\n"
    "  --dir DIR       template set (default TEMPLATES_DIR)\n"
    "  --tz ZONE       recipient's time zone, e.g. Europe/Moscow (default UTC)\n"
    "  --now TIME      RFC 3339 time to use as now for relative times (default: now)\n"
    "  --strict        missing values, unknown partials and unreadable filter input fail\n"
    "\n"
    "Exit: 0 rendered, 1 the set or the render failed, 2 usage.\n";

static const char usage_check[] =
    "Usage: vestnik template check [DIR] [options]\n"
    "\n"
    "Loads every file of the set in DIR (default TEMPLATES_DIR) as the service would:\n"
    "syntax, unknown filters and arguments, unsafe places for values, missing partials,\n"
    "fallback to the default locale, e-mail completeness. Then, when DIR/samples/ exists,\n"
    "renders every template of every locale with samples/NAME.json in strict mode\n"
    "(every name must have a value, null if optional) and checks the results (Telegram\n"
    "markup, non-empty messages, valid JSON). Prints one line per problem:\n"
    "FILE:LINE:COL: message.\n"
    "\n"
    "  --samples DIR   sample data directory (default DIR/samples)\n"
    "  --tz ZONE       time zone for the sample renders (default UTC)\n"
    "\n"
    "Exit: 0 no problems, 1 problems found, 2 usage.\n";

struct cli {
    FILE *out, *err;
    const char *dir;
    const char *default_locale;
};

static bool is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

/* Option with a value: "--x V" or "--x=V". Returns the value or NULL. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0' || *i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static bool opt_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static void print_errors(const struct vn_buf *errors, FILE *to)
{
    if (errors->data && errors->len)
        fputs(errors->data, to);
}

/* JSON from a file or stdin, with the position of a syntax error. */
static struct json_object *read_data(struct cli *c, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    struct vn_buf b = VN_BUF_INIT;
    char chunk[8192];
    size_t n;
    struct json_object *j = NULL;

    if (f == NULL) {
        fprintf(c->err, "vestnik template: cannot open %s\n", path);
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= DATA_MAX)
        vn_buf_append(&b, chunk, n);
    if (f != stdin)
        fclose(f);
    if (b.len > DATA_MAX) {
        fprintf(c->err, "vestnik template: %s is larger than %zu bytes\n", path, DATA_MAX);
        vn_buf_free(&b);
        return NULL;
    }
    struct json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    j = json_tokener_parse_ex(tok, b.data ? b.data : "", (int)b.len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (j == NULL || e != json_tokener_success) {
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < end && i < b.len; i++) {
            if (b.data[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)b.data[i] & 0xC0) != 0x80) {
                col++;
            }
        }
        fprintf(c->err, "%s:%u:%u: not valid JSON: %s\n", path, line, col,
                e == json_tokener_continue ? "unexpected end of input"
                                           : json_tokener_error_desc(e));
        json_object_put(j);
        j = NULL;
    }
    json_tokener_free(tok);
    vn_buf_free(&b);
    return j;
}

static void print_part(struct cli *c, const char *heading, const char *text)
{
    if (heading)
        fprintf(c->out, "===== %s =====\n", heading);
    fputs(text, c->out);
    if (*text == '\0' || text[strlen(text) - 1] != '\n')
        fputc('\n', c->out);
}

static int cmd_render(struct cli *c, int argc, char **argv)
{
    const char *name = NULL, *locale = c->default_locale, *channel = "telegram", *data = NULL;
    const char *tz = "UTC", *now = NULL, *v;
    int strict = 0, rc = 1;
    int64_t now_ms = 0;
    struct tpl_set *set = NULL;
    struct json_object *j = NULL;
    struct vn_buf errors = VN_BUF_INIT;
    char *sample = NULL;

    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage_render, c->out);
            return 0;
        }
        if ((v = opt_value(argc, argv, &i, "--locale")))
            locale = v;
        else if ((v = opt_value(argc, argv, &i, "--channel")))
            channel = v;
        else if ((v = opt_value(argc, argv, &i, "--data")))
            data = v;
        else if ((v = opt_value(argc, argv, &i, "--dir")))
            c->dir = v;
        else if ((v = opt_value(argc, argv, &i, "--tz")))
            tz = v;
        else if ((v = opt_value(argc, argv, &i, "--now")))
            now = v;
        else if (strcmp(argv[i], "--strict") == 0)
            strict = 1;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            bool known = opt_is(argv[i], "--locale") || opt_is(argv[i], "--channel") ||
                         opt_is(argv[i], "--data") || opt_is(argv[i], "--dir") ||
                         opt_is(argv[i], "--tz") || opt_is(argv[i], "--now");
            fprintf(c->err, "vestnik template render: %s %s (try --help)\n",
                    known ? "missing value for" : "unknown option", argv[i]);
            return 2;
        } else if (name == NULL)
            name = argv[i];
        else {
            fprintf(c->err, "vestnik template render: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (name == NULL) {
        fprintf(c->err, "vestnik template render: which template? (try --help)\n");
        return 2;
    }
    int part = -1;
    bool email = strcmp(channel, "email") == 0;
    if (!email && (part = tpl_part_parse(channel)) < 0) {
        fprintf(c->err,
                "vestnik template render: unknown channel \"%s\" (telegram, telegram_md2, "
                "email, email.subject, email.text, email.html, websocket)\n",
                channel);
        return 2;
    }
    if (!tpl_locale_valid(locale)) {
        fprintf(c->err, "vestnik template render: \"%s\" is not a locale such as en or ru-RU\n",
                locale);
        return 2;
    }
    if (!tpl_tz_valid(tz)) {
        fprintf(c->err, "vestnik template render: unknown time zone \"%s\"\n", tz);
        return 2;
    }
    if (now) {
        bool date_only;
        if (tpl__parse_time(now, strlen(now), &now_ms, &date_only) != 0 || date_only) {
            fprintf(c->err, "vestnik template render: --now wants an RFC 3339 time such as "
                            "2026-03-08T09:30:00Z\n");
            return 2;
        }
        if (now_ms == 0)
            now_ms = 1; /* 0 means "the wall clock" */
    }

    struct tpl_set_opts so = {c->default_locale, NULL, 0, 0};
    if (tpl_set_load(c->dir, &so, &set, &errors) != 0) {
        fprintf(c->err, "vestnik template render: the set in %s does not load:\n", c->dir);
        print_errors(&errors, c->err);
        goto out;
    }
    if (data == NULL) {
        struct stat st;
        sample = xasprintf("%s/samples/%s.json", c->dir, name);
        if (stat(sample, &st) == 0) {
            data = sample;
            fprintf(c->err, "note: data from %s\n", sample);
        }
    }
    j = data ? read_data(c, data) : json_object_new_object();
    if (data && j == NULL)
        goto out;

    struct tpl_render_opts o = {locale, tz, now_ms, strict, NULL, NULL, NULL, NULL};
    struct tpl_error err;
    const char *found = NULL;
    enum tpl_part probe = email ? TPL_PART_EMAIL_SUBJECT : (enum tpl_part)part;
    if (tpl_set_find(set, name, probe, locale, &found) != NULL && strcasecmp(found, locale) != 0)
        fprintf(c->err, "note: no %s template for %s; using %s\n", locale, name, found);
    if (email) {
        struct tpl_email mail;
        if (tpl_set_render_email(set, name, j, &o, &mail, &err) != 0)
            goto render_failed;
        print_part(c, "subject", mail.subject);
        print_part(c, "text/plain", mail.text);
        if (mail.html)
            print_part(c, "text/html", mail.html);
        tpl_email_free(&mail);
    } else {
        struct vn_buf b = VN_BUF_INIT;
        if (tpl_set_render(set, name, (enum tpl_part)part, j, &o, &b, &err) != 0) {
            vn_buf_free(&b);
            goto render_failed;
        }
        print_part(c, NULL, b.data ? b.data : "");
        vn_buf_free(&b);
    }
    rc = 0;
    goto out;

render_failed : {
    struct vn_buf b = VN_BUF_INIT;
    tpl_error_format(&err, &b);
    fprintf(c->err, "vestnik template render: %s\n", b.data);
    vn_buf_free(&b);
}
out:
    free(sample);
    json_object_put(j);
    tpl_set_free(set);
    vn_buf_free(&errors);
    return rc;
}

static int cmd_check(struct cli *c, int argc, char **argv)
{
    const char *samples = NULL, *tz = "UTC", *v;
    bool dir_given = false;
    struct tpl_set *set = NULL;
    struct vn_buf errors = VN_BUF_INIT;
    char *samples_default = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage_check, c->out);
            return 0;
        }
        if ((v = opt_value(argc, argv, &i, "--samples")))
            samples = v;
        else if ((v = opt_value(argc, argv, &i, "--tz")))
            tz = v;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(c->err, "vestnik template check: %s %s (try --help)\n",
                    opt_is(argv[i], "--samples") || opt_is(argv[i], "--tz") ? "missing value for"
                                                                            : "unknown option",
                    argv[i]);
            return 2;
        } else if (!dir_given) {
            c->dir = argv[i];
            dir_given = true;
        } else {
            fprintf(c->err, "vestnik template check: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!tpl_tz_valid(tz)) {
        fprintf(c->err, "vestnik template check: unknown time zone \"%s\"\n", tz);
        return 2;
    }
    struct tpl_set_opts so = {c->default_locale, NULL, 0, 0};
    if (tpl_set_load(c->dir, &so, &set, &errors) != 0) {
        print_errors(&errors, c->out);
        size_t lines = 0;
        for (size_t i = 0; i < errors.len; i++)
            lines += errors.data[i] == '\n';
        fprintf(c->err, "template check: %s: %zu problem%s\n", c->dir, lines,
                lines == 1 ? "" : "s");
        goto out;
    }
    size_t problems = 0, renders = 0;
    struct stat st;
    if (samples == NULL) {
        samples_default = xasprintf("%s/samples", c->dir);
        if (stat(samples_default, &st) == 0 && S_ISDIR(st.st_mode))
            samples = samples_default;
    } else if (stat(samples, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(c->err, "vestnik template check: %s is not a directory\n", samples);
        rc = 2;
        goto out;
    }
    if (samples)
        problems = tpl_set_check(set, samples, tz, 0, &errors, &renders);
    if (errors.len)
        fputs(errors.data, c->out);
    fprintf(c->err,
            "template check: %s: %zu files in %zu locale%s, %zu renders with sample data%s: ",
            c->dir, tpl_set_file_count(set), tpl_set_locale_count(set),
            tpl_set_locale_count(set) == 1 ? "" : "s", renders,
            samples ? "" : " (no samples directory)");
    if (problems)
        fprintf(c->err, "%zu problem%s\n", problems, problems == 1 ? "" : "s");
    else
        fprintf(c->err, "no problems\n");
    rc = problems ? 1 : 0;
out:
    free(samples_default);
    tpl_set_free(set);
    vn_buf_free(&errors);
    return rc;
}

int tpl__cli_run(const struct vn_config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    struct cli c = {out, err, "templates/default", "en"};
    if (cfg && cfg->templates_dir && *cfg->templates_dir)
        c.dir = cfg->templates_dir;
    if (cfg && cfg->default_locale && *cfg->default_locale)
        c.default_locale = cfg->default_locale;

    if (argc < 2) {
        fputs(usage_top, err);
        return 2;
    }
    if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        fputs(usage_top, out);
        return 0;
    }
    if (!tpl_locale_valid(c.default_locale)) {
        fprintf(err,
                "vestnik template: DEFAULT_LOCALE=\"%s\" is not a locale such as "
                "en or ru\n",
                c.default_locale);
        return 2;
    }
    if (strcmp(argv[1], "render") == 0)
        return cmd_render(&c, argc - 1, argv + 1);
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(&c, argc - 1, argv + 1);
    fprintf(err, "vestnik template: unknown command \"%s\"\n\n%s", argv[1], usage_top);
    return 2;
}

int tpl_cli_main(const struct vn_config *cfg, int argc, char **argv)
{
    return tpl__cli_run(cfg, argc, argv, stdout, stderr);
}
