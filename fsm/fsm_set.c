/*
 * fsm_set.c - loading a set of flow files (from memory, files or a
 * directory), freeing it, and what the runtime may ask about it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "fsm/fsm_int.h"

struct fsm_limits fsm_limits_default(void)
{
    struct fsm_limits l = {
        .max_file = 1024 * 1024,
        .max_files = 256,
        .max_nodes = 200000,
        .max_data = 16 * 1024,
        .max_effects = 64,
        .max_actions = 256,
        .max_text = 16 * 1024,
    };
    return l;
}

static struct fsm_set *set_new(const struct fsm_load_opts *opts)
{
    struct fsm_set *set = xcalloc(1, sizeof(*set));
    struct fsm_limits def = fsm_limits_default();
    set->limits = def;
    if (opts != NULL) {
        const struct fsm_limits *o = &opts->limits;
        if (o->max_file)
            set->limits.max_file = o->max_file;
        if (o->max_files)
            set->limits.max_files = o->max_files;
        if (o->max_nodes)
            set->limits.max_nodes = o->max_nodes;
        if (o->max_data)
            set->limits.max_data = o->max_data;
        if (o->max_effects)
            set->limits.max_effects = o->max_effects;
        if (o->max_actions)
            set->limits.max_actions = o->max_actions;
        if (o->max_text)
            set->limits.max_text = o->max_text;
    }
    return set;
}

void fsm_set_free(struct fsm_set *set)
{
    if (set == NULL)
        return;
    fsm__arena_release(&set->arena);
    free(set);
}

static size_t diag_count(const struct fsm_diag *d)
{
    return d->n + d->dropped;
}

/* Load sources whose names are already interned in set->files. */
static struct fsm_set *finish(struct fsm_set *set, const struct fsm_source *src, size_t n,
                              const struct fsm_load_opts *opts, struct fsm_diag *diag,
                              size_t before, size_t sort_from)
{
    for (size_t i = 0; i < n; i++) {
        if (src[i].data == NULL)
            continue; /* already reported (unreadable) */
        if (src[i].len > set->limits.max_file) {
            struct fsm__pos p = {set->files[i], 0, 0, ""};
            fsm__diag_add(diag, &p, "file too big (%zu bytes; at most %zu)", src[i].len,
                          set->limits.max_file);
            continue;
        }
        fsm__load_yaml(set, set->files[i], src[i].data, src[i].len, diag);
    }
    fsm__check(set, opts, diag);
    if (set->n_flows == 0 && set->n_files > 0 && diag_count(diag) == before) {
        struct fsm__pos p = {set->files[0], 0, 0, ""};
        fsm__diag_add(diag, &p, "no flows: a set needs at least one flow under flows:");
    }
    fsm__diag_sort(diag, sort_from, set->files, set->n_files);
    if (diag_count(diag) > before) {
        fsm_set_free(set);
        return NULL;
    }
    return set;
}

static bool too_many(struct fsm_set *set, size_t n, struct fsm_diag *diag, const char *first)
{
    if (n == 0) {
        struct fsm__pos p = {"", 0, 0, ""};
        fsm__diag_add(diag, &p, "no flow files given");
        return true;
    }
    if (n > set->limits.max_files) {
        struct fsm__pos p = {first, 0, 0, ""};
        fsm__diag_add(diag, &p, "too many flow files (%zu; at most %zu)", n, set->limits.max_files);
        return true;
    }
    return false;
}

struct fsm_set *fsm_set_load_mem(const struct fsm_source *src, size_t n,
                                 const struct fsm_load_opts *opts, struct fsm_diag *diag)
{
    struct fsm_set *set = set_new(opts);
    size_t before = diag_count(diag), from = diag->n;
    if (too_many(set, n, diag, n ? src[0].name : "")) {
        fsm_set_free(set);
        return NULL;
    }
    set->files = fsm__alloc(&set->arena, n * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        set->files[set->n_files++] = fsm__strdup(&set->arena, src[i].name ? src[i].name : "-");
    return finish(set, src, n, opts, diag, before, from);
}

/* Read a whole file of at most max bytes (+1 to notice a bigger one). */
static char *read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        return NULL;
    }
    struct vn_buf b = VN_BUF_INIT;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        vn_buf_append(&b, chunk, got);
        if (b.len > max)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        snprintf(err, errlen, "cannot read: %s", strerror(EIO));
        vn_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    if (b.data == NULL)
        return xstrdup("");
    return vn_buf_steal(&b);
}

struct fsm_set *fsm_set_load_files(const char *const *paths, size_t n,
                                   const struct fsm_load_opts *opts, struct fsm_diag *diag)
{
    struct fsm_set *set = set_new(opts);
    size_t before = diag_count(diag), from = diag->n;
    if (too_many(set, n, diag, n ? paths[0] : "")) {
        fsm_set_free(set);
        return NULL;
    }
    struct fsm_source *src = xcalloc(n, sizeof(*src));
    char **bufs = xcalloc(n, sizeof(*bufs));
    set->files = fsm__alloc(&set->arena, n * sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        char err[256];
        set->files[set->n_files++] = fsm__strdup(&set->arena, paths[i]);
        src[i].name = set->files[i];
        struct stat sb;
        if (stat(paths[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            struct fsm__pos p = {set->files[i], 0, 0, ""};
            fsm__diag_add(diag, &p, "is a directory (give files, or load the directory itself)");
            continue;
        }
        bufs[i] = read_file(paths[i], set->limits.max_file, &src[i].len, err, sizeof(err));
        if (bufs[i] == NULL) {
            struct fsm__pos p = {set->files[i], 0, 0, ""};
            fsm__diag_add(diag, &p, "%s", err);
        }
        src[i].data = bufs[i];
    }
    set = finish(set, src, n, opts, diag, before, from);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(src);
    return set;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct fsm_set *fsm_set_load_dir(const char *dir, const struct fsm_load_opts *opts,
                                 struct fsm_diag *diag)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        struct fsm__pos p = {dir, 0, 0, ""};
        fsm__diag_add(diag, &p, "cannot open the directory: %s", strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        bool yaml = (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0) ||
                    (len > 4 && strcmp(e->d_name + len - 4, ".yml") == 0);
        if (!yaml)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = xasprintf("%s/%s", dir, e->d_name);
        if (n > 4096)
            break;
    }
    closedir(d);
    struct fsm_set *set = NULL;
    if (n == 0) {
        struct fsm__pos p = {dir, 0, 0, ""};
        fsm__diag_add(diag, &p, "no *.yaml or *.yml files in the directory");
    } else {
        qsort(names, n, sizeof(*names), cmp_names);
        set = fsm_set_load_files((const char *const *)names, n, opts, diag);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return set;
}

size_t fsm_set_flow_count(const struct fsm_set *set)
{
    return set ? set->n_flows : 0;
}

void fsm_set_commands(const struct fsm_set *set,
                      void (*cb)(const char *command, const char *flow, void *ud), void *ud)
{
    for (size_t i = 0; set != NULL && i < set->n_flows; i++)
        for (size_t c = 0; c < set->flows[i]->n_commands; c++)
            cb(set->flows[i]->commands[c], set->flows[i]->name, ud);
}

int fsm_set_api_enterable(const struct fsm_set *set, const char *flow, const char *state)
{
    const struct fsm__flow *f = set ? fsm__find_flow(set, flow) : NULL;
    if (f == NULL)
        return VN_ENOENT;
    if (state == NULL)
        return f->start != NULL ? 0 : VN_ENOENT;
    const struct fsm__state *s = fsm__find_state(f, state);
    if (s == NULL)
        return VN_ENOENT;
    return s->api || s == f->start ? 0 : VN_ECONFLICT;
}
