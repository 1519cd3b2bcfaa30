/*
 * fsm_cli.c - `vestnik flow check|graph|templates`.
 *
 * check prints every problem as "file:line:col: path: message" on stdout and
 * a count on stderr; exit 0 when clean, 1 with problems, 2 on usage errors.
 * A directory argument stands for the .yaml and .yml files in it.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/config.h"
#include "fsm/fsm.h"
#include "fsm/fsm_int.h"

static const char usage_flow[] =
    "Usage: vestnik flow <command> [options] FILE...\n"
    "\n"
    "Commands:\n"
    "  check       validate flow files and print every problem\n"
    "  graph       print a state diagram of the flows (Mermaid or Graphviz DOT)\n"
    "  templates   list the template names the flows refer to\n"
    "\n"
    "FILE may be a directory: its *.yaml and *.yml files are read. The files given\n"
    "together form one set (flows may refer to each other across files).\n"
    "`vestnik flow <command> --help` tells more. docs/flows.md describes the format.\n";

static const char usage_check[] =
    "Usage: vestnik flow check [--templates DIR] FILE...\n"
    "\n"
    "Loads the files as one set and prints every problem, one per line:\n"
    "  file:line:col: path: message\n"
    "Unknown states, unreachable states, duplicate triggers, bad regexes, missing\n"
    "start states, unknown keys and actions, wrong types, clashing commands, and\n"
    "(with --templates) template names that do not exist.\n"
    "\n"
    "  --templates DIR   check template names against the template files in DIR.\n"
    "                    A file DIR/[<locale>/]<name>[.<channel>][.<ext>] provides <name>\n"
    "                    (e.g. templates/ru/remind.ask_when.telegram.mustache gives\n"
    "                    remind.ask_when). Without it, template names are not checked.\n"
    "\n"
    "Exit status: 0 no problems, 1 problems found, 2 usage error.\n";

static const char usage_graph[] =
    "Usage: vestnik flow graph [--format mermaid|dot] [--flow NAME] FILE...\n"
    "\n"
    "Prints a state diagram: Mermaid (the default; GitHub renders it in ```mermaid\n"
    "blocks) or Graphviz DOT (dot -Tsvg). Every flow, or only --flow NAME. Shows how\n"
    "each flow is entered and every transition that leaves a state; global\n"
    "transitions and those that stay in their state are left out.\n"
    "\n"
    "Exit status: 0 printed, 1 the files have problems (printed as by check), 2 usage.\n";

static const char usage_templates[] =
    "Usage: vestnik flow templates FILE...\n"
    "\n"
    "Prints every template name the flows use, once each, sorted: the list of\n"
    "templates a bot needs in each locale.\n";

static int has_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* ---- file arguments ---------------------------------------------------------- */

struct strv {
    char **v;
    size_t n, cap;
};

static void strv_add(struct strv *s, char *str)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = str;
}

static void strv_free(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files as given; a directory becomes its YAML files (.yaml, .yml) in name order. */
static int expand_args(char **args, size_t n, struct strv *out)
{
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(args[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            strv_add(out, xstrdup(args[i]));
            continue;
        }
        DIR *d = opendir(args[i]);
        if (d == NULL) {
            strv_add(out, xstrdup(args[i]));
            continue;
        }
        size_t first = out->n;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t len = strlen(e->d_name);
            if (e->d_name[0] == '.')
                continue;
            if ((len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0) ||
                (len > 4 && strcmp(e->d_name + len - 4, ".yml") == 0))
                strv_add(out, xasprintf("%s/%s", args[i], e->d_name));
        }
        closedir(d);
        if (out->n == first) {
            fprintf(stderr, "vestnik flow: %s: no *.yaml or *.yml files\n", args[i]);
            return -1;
        }
        qsort(out->v + first, out->n - first, sizeof(char *), cmp_str);
    }
    return 0;
}

/* ---- template names from a directory ------------------------------------------- */

/* Every name a file provides: its relative path with and without the first
   directory (the locale), each with 0, 1 or 2 trailing ".ext" parts removed. */
static void add_candidates(struct strv *names, const char *rel)
{
    const char *variants[2] = {rel, strchr(rel, '/') ? strchr(rel, '/') + 1 : NULL};
    for (int v = 0; v < 2; v++) {
        if (variants[v] == NULL || *variants[v] == '\0')
            continue;
        char *s = xstrdup(variants[v]);
        for (int strip = 0; strip <= 2; strip++) {
            strv_add(names, xstrdup(s));
            char *slash = strrchr(s, '/');
            char *dot = strrchr(slash ? slash : s, '.');
            if (dot == NULL || dot == s || (slash && dot == slash + 1))
                break;
            *dot = '\0';
        }
        free(s);
    }
}

static void scan_templates(const char *root, const char *rel, int depth, struct strv *names,
                           size_t *files)
{
    if (depth > 8 || *files > 20000)
        return;
    char *path = rel[0] ? xasprintf("%s/%s", root, rel) : xstrdup(root);
    DIR *d = opendir(path);
    if (d == NULL) {
        free(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *sub = rel[0] ? xasprintf("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
        char *full = xasprintf("%s/%s", root, sub);
        struct stat sb;
        if (stat(full, &sb) == 0) {
            if (S_ISDIR(sb.st_mode))
                scan_templates(root, sub, depth + 1, names, files);
            else if (S_ISREG(sb.st_mode)) {
                (*files)++;
                add_candidates(names, sub);
            }
        }
        free(full);
        free(sub);
    }
    closedir(d);
    free(path);
}

static bool in_sorted(const char *name, void *ud)
{
    const struct strv *names = ud;
    const char *key = name;
    return bsearch(&key, names->v, names->n, sizeof(char *), cmp_str) != NULL;
}

/* ---- commands ---------------------------------------------------------------- */

static struct fsm_set *load(struct strv *files, const struct fsm_load_opts *opts, int *rc)
{
    struct fsm_diag diag;
    struct vn_buf out = VN_BUF_INIT;
    fsm_diag_init(&diag);
    struct fsm_set *set = fsm_set_load_files((const char *const *)files->v, files->n, opts, &diag);
    if (set == NULL) {
        fsm_diag_format(&diag, &out);
        fputs(out.data ? out.data : "", stdout);
        size_t n = diag.n + diag.dropped;
        fprintf(stderr, "%zu problem%s in %zu file%s\n", n, n == 1 ? "" : "s", files->n,
                files->n == 1 ? "" : "s");
        *rc = 1;
    }
    vn_buf_free(&out);
    fsm_diag_cleanup(&diag);
    return set;
}

static int cmd_check(int argc, char **argv)
{
    const char *tdir = NULL;
    struct strv args = {NULL, 0, 0}, files = {NULL, 0, 0}, names = {NULL, 0, 0};
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--templates") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vestnik flow check: --templates needs a directory\n");
                rc = 2;
                goto out;
            }
            tdir = argv[++i];
        } else if (strncmp(argv[i], "--templates=", 12) == 0) {
            tdir = argv[i] + 12;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "vestnik flow check: unknown option %s (try --help)\n", argv[i]);
            rc = 2;
            goto out;
        } else {
            strv_add(&args, xstrdup(argv[i]));
        }
    }
    if (args.n == 0) {
        fprintf(stderr, "vestnik flow check: no files given\n\n%s", usage_check);
        rc = 2;
        goto out;
    }
    struct fsm_load_opts opts;
    memset(&opts, 0, sizeof(opts));
    if (tdir != NULL) {
        struct stat sb;
        if (stat(tdir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "vestnik flow check: --templates %s: not a directory\n", tdir);
            rc = 2;
            goto out;
        }
        size_t nfiles = 0;
        scan_templates(tdir, "", 0, &names, &nfiles);
        if (names.n > 0)
            qsort(names.v, names.n, sizeof(char *), cmp_str);
        opts.template_exists = in_sorted;
        opts.template_ud = &names;
    } else {
        fprintf(stderr, "note: template names not checked (give --templates DIR)\n");
    }
    if (expand_args(args.v, args.n, &files) != 0) {
        rc = 2;
        goto out;
    }
    struct fsm_set *set = load(&files, &opts, &rc);
    if (set != NULL) {
        size_t states = 0;
        for (size_t i = 0; i < set->n_flows; i++)
            states += set->flows[i]->n_states;
        printf("ok: %zu file%s, %zu flow%s, %zu state%s\n", files.n, files.n == 1 ? "" : "s",
               set->n_flows, set->n_flows == 1 ? "" : "s", states, states == 1 ? "" : "s");
        fsm_set_free(set);
    }
out:
    strv_free(&args);
    strv_free(&files);
    strv_free(&names);
    return rc;
}

static int cmd_graph(int argc, char **argv)
{
    enum fsm_graph_format fmt = FSM_GRAPH_MERMAID;
    const char *flow = NULL;
    struct strv args = {NULL, 0, 0}, files = {NULL, 0, 0};
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        if (strcmp(argv[i], "--format") == 0 || strcmp(argv[i], "--flow") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vestnik flow graph: %s needs a value\n", argv[i]);
                rc = 2;
                goto out;
            }
            val = argv[i + 1];
        } else if (strncmp(argv[i], "--format=", 9) == 0 || strncmp(argv[i], "--flow=", 7) == 0) {
            val = strchr(argv[i], '=') + 1;
        }
        if (val != NULL) {
            if (strncmp(argv[i], "--format", 8) == 0) {
                if (strcmp(val, "mermaid") == 0)
                    fmt = FSM_GRAPH_MERMAID;
                else if (strcmp(val, "dot") == 0)
                    fmt = FSM_GRAPH_DOT;
                else {
                    fprintf(stderr, "vestnik flow graph: --format is mermaid or dot, not %s\n",
                            val);
                    rc = 2;
                    goto out;
                }
            } else {
                flow = val;
            }
            if (strchr(argv[i], '=') == NULL)
                i++;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "vestnik flow graph: unknown option %s (try --help)\n", argv[i]);
            rc = 2;
            goto out;
        } else {
            strv_add(&args, xstrdup(argv[i]));
        }
    }
    if (args.n == 0) {
        fprintf(stderr, "vestnik flow graph: no files given\n\n%s", usage_graph);
        rc = 2;
        goto out;
    }
    if (expand_args(args.v, args.n, &files) != 0) {
        rc = 2;
        goto out;
    }
    struct fsm_set *set = load(&files, NULL, &rc);
    if (set != NULL) {
        struct vn_buf g = VN_BUF_INIT;
        if (fsm_graph(set, flow, fmt, &g) != 0) {
            fprintf(stderr, "vestnik flow graph: no flow \"%s\" in the files given\n", flow);
            rc = 2;
        } else {
            fputs(g.data, stdout);
        }
        vn_buf_free(&g);
        fsm_set_free(set);
    }
out:
    strv_free(&args);
    strv_free(&files);
    return rc;
}

static void print_name(const char *name, void *ud)
{
    (void)ud;
    puts(name);
}

static int cmd_templates(int argc, char **argv)
{
    struct strv args = {NULL, 0, 0}, files = {NULL, 0, 0};
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "vestnik flow templates: unknown option %s (try --help)\n", argv[i]);
            rc = 2;
            goto out;
        }
        strv_add(&args, xstrdup(argv[i]));
    }
    if (args.n == 0) {
        fprintf(stderr, "vestnik flow templates: no files given\n\n%s", usage_templates);
        rc = 2;
        goto out;
    }
    if (expand_args(args.v, args.n, &files) != 0) {
        rc = 2;
        goto out;
    }
    struct fsm_set *set = load(&files, NULL, &rc);
    if (set != NULL) {
        fsm_set_templates(set, print_name, NULL);
        fsm_set_free(set);
    }
out:
    strv_free(&args);
    strv_free(&files);
    return rc;
}

int fsm_cli_main(const struct vn_config *cfg, int argc, char **argv)
{
    (void)cfg;
    if (argc < 2) {
        fputs(usage_flow, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage_flow, stdout);
        return 0;
    }
    if (strcmp(sub, "check") == 0) {
        if (has_help(argc - 1, argv + 1)) {
            fputs(usage_check, stdout);
            return 0;
        }
        return cmd_check(argc - 1, argv + 1);
    }
    if (strcmp(sub, "graph") == 0) {
        if (has_help(argc - 1, argv + 1)) {
            fputs(usage_graph, stdout);
            return 0;
        }
        return cmd_graph(argc - 1, argv + 1);
    }
    if (strcmp(sub, "templates") == 0) {
        if (has_help(argc - 1, argv + 1)) {
            fputs(usage_templates, stdout);
            return 0;
        }
        return cmd_templates(argc - 1, argv + 1);
    }
    fprintf(stderr, "vestnik flow: unknown command \"%s\"\n\n%s", sub, usage_flow);
    return 2;
}
