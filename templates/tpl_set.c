/*
 * tpl_set.c - loading a template directory, fallback lookup, set renders,
 * sample checks. See tpl_set.h for the layout and the rules.
 *
 * A set is a sorted array of entries, one per (locale, name); an entry
 * holds the compiled template of each part it has, and for a part-less
 * partial its source plus one compiled copy per target that uses it (the
 * escaping is fixed at compile time, so a shared partial is compiled once
 * for each target it is included from). Lookups are binary searches along
 * the fallback chain, at most a handful per render.
 */
#include "templates/tpl_set.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "bot/tg_text.h"
#include "templates/tpl_internal.h"

#define MAX_FILES_DEFAULT 10000
#define MAX_BYTES_DEFAULT ((size_t)64 << 20)
#define MAX_ERROR_LINES   200
#define CHAIN_MAX         8

struct entry {
    char *locale;
    char *name;
    struct tpl *parts[TPL_PART__COUNT];
    char *paths[TPL_PART__COUNT];
    /* part-less partial (_name.mustache) */
    char *npath;
    char *nsrc;
    size_t nlen;
    struct tpl *by_target[TPL_TARGET__COUNT];
};

struct tpl_set {
    atomic_int refs;
    char *dir;
    char *default_locale;
    struct entry *e;
    size_t n, cap;
    char **locales;
    size_t nlocales;
    size_t files;
};

static const char *const part_names[TPL_PART__COUNT] = {
    "telegram", "telegram_md2", "email.subject", "email.text", "email.html", "websocket",
};

static const enum tpl_target part_targets[TPL_PART__COUNT] = {
    TPL_TARGET_TG_HTML, TPL_TARGET_TG_MD2,     TPL_TARGET_LINE,
    TPL_TARGET_TEXT,    TPL_TARGET_EMAIL_HTML, TPL_TARGET_JSON,
};

const char *tpl_part_name(enum tpl_part p)
{
    return (unsigned)p < TPL_PART__COUNT ? part_names[p] : "?";
}

int tpl_part_parse(const char *s)
{
    for (int i = 0; s != NULL && i < TPL_PART__COUNT; i++)
        if (strcmp(s, part_names[i]) == 0)
            return i;
    return -1;
}

enum tpl_target tpl_part_target(enum tpl_part p)
{
    return part_targets[p];
}

/* The part whose templates have this target (one to one). */
static int part_of_target(enum tpl_target t)
{
    for (int i = 0; i < TPL_PART__COUNT; i++)
        if (part_targets[i] == t)
            return i;
    return -1;
}

/* ---- locales ----------------------------------------------------------- */

/* Canonical spelling: "ru-RU", "zh-Hant-TW", "en" (case as BCP 47 writes it). */
static void locale_canon(const char *in, char *out, size_t cap)
{
    size_t i = 0, nseg = 0;
    snprintf(out, cap, "%s", in);
    while (out[i]) {
        size_t start = i;
        while (out[i] && out[i] != '-' && out[i] != '_')
            i++;
        size_t len = i - start;
        for (size_t k = start; k < i; k++) {
            bool up = nseg > 0 && (len == 2 || (len == 4 && k == start));
            char c = out[k];
            if (up && c >= 'a' && c <= 'z')
                out[k] = (char)(c - 32);
            else if (!up && c >= 'A' && c <= 'Z')
                out[k] = (char)(c + 32);
        }
        nseg++;
        if (out[i])
            out[i++] = '-';
    }
}

/* Fallback chain: locale, its prefixes, the default and its prefixes, no
 * duplicates. Strings are written into store (CHAIN_MAX x 40). */
static size_t chain_of(const char *locale, const char *dflt, char store[CHAIN_MAX][40],
                       const char *chain[CHAIN_MAX])
{
    size_t n = 0;
    const char *starts[2] = {locale, dflt};
    for (size_t s = 0; s < 2; s++) {
        if (starts[s] == NULL || !tpl_locale_valid(starts[s]))
            continue;
        char cur[40];
        locale_canon(starts[s], cur, sizeof(cur));
        while (cur[0] && n < CHAIN_MAX) {
            bool dup = false;
            for (size_t k = 0; k < n; k++)
                dup = dup || strcmp(chain[k], cur) == 0;
            if (!dup) {
                snprintf(store[n], 40, "%s", cur);
                chain[n] = store[n];
                n++;
            }
            char *dash = strrchr(cur, '-');
            if (dash == NULL)
                break;
            *dash = '\0';
        }
    }
    return n;
}

/* ---- entries ----------------------------------------------------------- */

static int entry_cmp(const char *la, const char *na, const char *lb, const char *nb)
{
    int c = strcasecmp(la, lb);
    return c ? c : strcmp(na, nb);
}

static int entry_qsort(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return entry_cmp(x->locale, x->name, y->locale, y->name);
}

static struct entry *find_entry(const struct tpl_set *set, const char *locale, const char *name)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = entry_cmp(locale, name, set->e[mid].locale, set->e[mid].name);
        if (c == 0)
            return &set->e[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* While loading, entries are unsorted: linear search. */
static struct entry *get_entry(struct tpl_set *set, const char *locale, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->e[i].locale, locale) == 0 && strcmp(set->e[i].name, name) == 0)
            return &set->e[i];
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 32;
        set->e = xrealloc(set->e, set->cap * sizeof(*set->e));
    }
    struct entry *e = &set->e[set->n++];
    memset(e, 0, sizeof(*e));
    e->locale = xstrdup(locale);
    e->name = xstrdup(name);
    return e;
}

static void entry_free(struct entry *e)
{
    free(e->locale);
    free(e->name);
    for (size_t p = 0; p < TPL_PART__COUNT; p++) {
        tpl_free(e->parts[p]);
        free(e->paths[p]);
    }
    free(e->npath);
    free(e->nsrc);
    for (size_t t = 0; t < TPL_TARGET__COUNT; t++)
        tpl_free(e->by_target[t]);
}

static void set_destroy(struct tpl_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        entry_free(&set->e[i]);
    free(set->e);
    for (size_t i = 0; i < set->nlocales; i++)
        free(set->locales[i]);
    free(set->locales);
    free(set->dir);
    free(set->default_locale);
    free(set);
}

struct tpl_set *tpl_set_ref(struct tpl_set *set)
{
    atomic_fetch_add(&set->refs, 1);
    return set;
}

void tpl_set_free(struct tpl_set *set)
{
    if (set != NULL && atomic_fetch_sub(&set->refs, 1) == 1)
        set_destroy(set);
}

/* ---- loading ----------------------------------------------------------- */

struct loader {
    struct tpl_set *set;
    const struct tpl_set_opts *opts;
    const struct tpl_limits *lim;
    struct vn_buf *errors;
    size_t problems;
    size_t bytes;
    int code; /* worst code seen */
};

static void problem(struct loader *L, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct loader *L, int code, const char *fmt, ...)
{
    va_list ap;
    L->problems++;
    if (L->code == 0 || code == VN_ETOOBIG)
        L->code = code;
    if (L->errors == NULL)
        return;
    if (L->problems > MAX_ERROR_LINES) {
        if (L->problems == MAX_ERROR_LINES + 1)
            vn_buf_printf(L->errors, "... more problems not shown\n");
        return;
    }
    va_start(ap, fmt);
    vn_buf_vprintf(L->errors, fmt, ap);
    va_end(ap);
    vn_buf_putc(L->errors, '\n');
}

static void problem_tpl(struct loader *L, const struct tpl_error *err)
{
    struct vn_buf b = VN_BUF_INIT;
    tpl_error_format(err, &b);
    problem(L, err->code ? err->code : VN_EINVAL, "%s", b.data ? b.data : "");
    vn_buf_free(&b);
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > 100 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return false;
        if (c == '.' && s[i + 1] == '.')
            return false;
    }
    return true;
}

/* Read a whole file of at most max bytes. 0, VN_EIO or VN_ETOOBIG. */
static int read_file(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct vn_buf b = VN_BUF_INIT;
    char chunk[8192];
    size_t n;
    *out = NULL;
    if (f == NULL)
        return VN_EIO;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > max) {
            fclose(f);
            vn_buf_free(&b);
            return VN_ETOOBIG;
        }
        vn_buf_append(&b, chunk, n);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        vn_buf_free(&b);
        return VN_EIO;
    }
    *len = b.len;
    if (b.data == NULL)
        vn_buf_append(&b, "", 0);
    *out = vn_buf_steal(&b);
    return 0;
}

static int name_sort(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void load_file(struct loader *L, const char *locale, const char *dirpath, const char *fname)
{
    char *path = xasprintf("%s/%s", dirpath, fname);
    size_t flen = strlen(fname), blen;
    int part = -1;
    struct stat st;
    char *src = NULL;
    size_t len = 0;
    static const char ext[] = ".mustache";

    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        problem(L, VN_EINVAL, "%s: not a regular file (locale directories hold templates only)",
                path);
        goto out;
    }
    if (flen <= sizeof(ext) - 1 || strcmp(fname + flen - (sizeof(ext) - 1), ext) != 0) {
        problem(L, VN_EINVAL, "%s: not a template (names end in .mustache)", path);
        goto out;
    }
    blen = flen - (sizeof(ext) - 1);
    for (int p = 0; p < TPL_PART__COUNT && part < 0; p++) {
        size_t pl = strlen(part_names[p]);
        if (blen > pl + 1 && fname[blen - pl - 1] == '.' &&
            memcmp(fname + blen - pl, part_names[p], pl) == 0) {
            part = p;
            blen -= pl + 1;
        }
    }
    if (part < 0 && fname[0] != '_') {
        problem(L, VN_EINVAL,
                "%s: no channel part in the name (expected NAME.PART.mustache with PART one of "
                "telegram, telegram_md2, email.subject, email.text, email.html, websocket; or "
                "_NAME.mustache for a partial)",
                path);
        goto out;
    }
    if (!valid_name(fname, blen)) {
        problem(L, VN_EINVAL,
                "%s: bad template name \"%.*s\" (lowercase letters, digits, '_', '-', '.')", path,
                (int)blen, fname);
        goto out;
    }
    if (++L->set->files > (L->opts->max_files ? L->opts->max_files : MAX_FILES_DEFAULT)) {
        problem(L, VN_ETOOBIG, "%s: more than %zu files in the set", path,
                L->opts->max_files ? L->opts->max_files : (size_t)MAX_FILES_DEFAULT);
        goto out;
    }
    int rc = read_file(path, L->lim->max_source, &src, &len);
    if (rc == VN_ETOOBIG) {
        problem(L, rc, "%s: larger than %zu bytes", path, L->lim->max_source);
        goto out;
    }
    if (rc != 0) {
        problem(L, rc, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    L->bytes += len;
    size_t maxb = L->opts->max_bytes ? L->opts->max_bytes : MAX_BYTES_DEFAULT;
    if (L->bytes > maxb) {
        problem(L, VN_ETOOBIG, "%s: the set is larger than %zu bytes", path, maxb);
        goto out;
    }
    /* Editors end files with a newline; a message does not mean it. A
     * partial keeps its own, as in Mustache: it stands for whole lines. */
    if (fname[0] != '_' && len > 0 && src[len - 1] == '\n') {
        len--;
        if (len > 0 && src[len - 1] == '\r')
            len--;
    }

    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)blen, fname);
    struct entry *e = get_entry(L->set, locale, name);
    if (part < 0) {
        e->npath = path;
        e->nsrc = src;
        e->nlen = len;
        path = NULL;
        src = NULL;
        /* compile once as text so syntax errors show even if nothing uses it */
        struct tpl_error err;
        struct tpl_compile_opts co = {e->npath, TPL_TARGET_TEXT, L->lim};
        e->by_target[TPL_TARGET_TEXT] = tpl_compile(e->nsrc, e->nlen, &co, &err);
        if (e->by_target[TPL_TARGET_TEXT] == NULL)
            problem_tpl(L, &err);
        goto out;
    }
    struct tpl_error err;
    struct tpl_compile_opts co = {path, part_targets[part], L->lim};
    e->parts[part] = tpl_compile(src, len, &co, &err);
    if (e->parts[part] == NULL)
        problem_tpl(L, &err);
    e->paths[part] = path;
    path = NULL;
out:
    free(src);
    free(path);
}

static void load_locale(struct loader *L, const char *dir, const char *dname)
{
    char canon[40];
    struct dirent **list = NULL;
    char *path = xasprintf("%s/%s", dir, dname);

    locale_canon(dname, canon, sizeof(canon));
    for (size_t i = 0; i < L->set->nlocales; i++)
        if (strcmp(L->set->locales[i], canon) == 0) {
            problem(L, VN_EINVAL, "%s: locale %s appears twice (spelled differently)", path, canon);
            free(path);
            return;
        }
    L->set->locales = xrealloc(L->set->locales, (L->set->nlocales + 1) * sizeof(char *));
    L->set->locales[L->set->nlocales++] = xstrdup(canon);

    int n = scandir(path, &list, NULL, name_sort);
    if (n < 0) {
        problem(L, VN_EIO, "%s: cannot read: %s", path, strerror(errno));
        free(path);
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *f = list[i]->d_name;
        size_t fl = strlen(f);
        if (f[0] != '.' && f[fl - 1] != '~')
            load_file(L, canon, path, f);
        free(list[i]);
    }
    free(list);
    free(path);
}

/* Resolve a partial for target along chain, as a render will. */
static struct entry *resolve_entry(const struct tpl_set *set, const char *const *chain, size_t n,
                                   const char *name, enum tpl_target target, const struct tpl **out,
                                   bool need_compiled)
{
    int part = part_of_target(target);
    for (size_t i = 0; i < n; i++) {
        struct entry *e = find_entry(set, chain[i], name);
        if (e == NULL)
            continue;
        if (part >= 0 && e->parts[part]) {
            *out = e->parts[part];
            return e;
        }
        if (e->nsrc && (e->by_target[target] || !need_compiled)) {
            *out = e->by_target[target];
            return e;
        }
    }
    *out = NULL;
    return NULL;
}

/* Compile part-less partials for every target that includes them, following
 * includes transitively: a worklist of templates whose references are not
 * yet handled. */
static void compile_partials(struct loader *L)
{
    struct tpl_set *set = L->set;
    const struct tpl **work = NULL;
    size_t nwork = 0, capwork = 0;

#define PUSH(t)                                                                                    \
    do {                                                                                           \
        if (nwork == capwork) {                                                                    \
            capwork = capwork ? capwork * 2 : 64;                                                  \
            work = xrealloc(work, capwork * sizeof(*work));                                        \
        }                                                                                          \
        work[nwork++] = (t);                                                                       \
    } while (0)

    for (size_t i = 0; i < set->n; i++)
        for (size_t p = 0; p < TPL_PART__COUNT; p++)
            if (set->e[i].parts[p])
                PUSH(set->e[i].parts[p]);
    while (nwork > 0) {
        const struct tpl *t = work[--nwork];
        enum tpl_target target = tpl_get_target(t);
        for (size_t k = 0; k < tpl_partial_count(t); k++) {
            const char *pname = tpl_partial_name(t, k, NULL, NULL);
            /* every locale's version of it, since any chain may pick any */
            for (size_t i = 0; i < set->n; i++) {
                struct entry *e = &set->e[i];
                if (e->nsrc == NULL || e->by_target[target] || strcmp(e->name, pname) != 0)
                    continue;
                struct tpl_error err;
                struct tpl_compile_opts co = {e->npath, target, L->lim};
                e->by_target[target] = tpl_compile(e->nsrc, e->nlen, &co, &err);
                if (e->by_target[target] == NULL) {
                    problem(L, err.code, "%s:%u:%u: %s (as a partial for %s, included from %s)",
                            e->npath, err.line, err.col, err.msg, tpl_target_name(target),
                            tpl_get_name(t));
                    /* a placeholder that renders nothing keeps the walk simple */
                    continue;
                }
                PUSH(e->by_target[target]);
            }
        }
    }
    free(work);
#undef PUSH
}

static void check_refs(struct loader *L, const struct entry *e, const struct tpl *t)
{
    char store[CHAIN_MAX][40];
    const char *chain[CHAIN_MAX];
    size_t n = chain_of(e->locale, L->set->default_locale, store, chain);
    for (size_t k = 0; k < tpl_partial_count(t); k++) {
        unsigned line, col;
        const char *pname = tpl_partial_name(t, k, &line, &col);
        const struct tpl *p;
        if (resolve_entry(L->set, chain, n, pname, tpl_get_target(t), &p, false) == NULL) {
            int part = part_of_target(tpl_get_target(t));
            problem(L, VN_ENOENT,
                    "%s:%u:%u: no partial \"%s\" (looked for %s.%s.mustache and %s.mustache in "
                    "%s%s%s%s%s)",
                    tpl_get_name(t), line, col, pname, pname, part_names[part], pname, chain[0],
                    n > 1 ? ", " : "", n > 1 ? chain[1] : "", n > 2 ? ", " : "",
                    n > 2 ? chain[2] : "");
        }
    }
}

static void validate(struct loader *L)
{
    struct tpl_set *set = L->set;
    bool have_default = false;

    for (size_t i = 0; i < set->nlocales; i++)
        have_default = have_default || strcmp(set->locales[i], set->default_locale) == 0;
    if (set->n > 0 && !have_default)
        problem(L, VN_EINVAL,
                "%s: no directory for the default locale %s (every fallback chain ends there)",
                set->dir, set->default_locale);
    for (size_t i = 0; i < set->n; i++) {
        const struct entry *e = &set->e[i];
        for (size_t p = 0; p < TPL_PART__COUNT; p++)
            if (e->parts[p])
                check_refs(L, e, e->parts[p]);
        for (size_t t = 0; t < TPL_TARGET__COUNT; t++)
            if (e->by_target[t])
                check_refs(L, e, e->by_target[t]);
        if (e->name[0] == '_')
            continue; /* a partial: used through other templates, checked there */
        bool mail = e->paths[TPL_PART_EMAIL_SUBJECT] || e->paths[TPL_PART_EMAIL_TEXT] ||
                    e->paths[TPL_PART_EMAIL_HTML];
        if (mail && (!e->paths[TPL_PART_EMAIL_SUBJECT] || !e->paths[TPL_PART_EMAIL_TEXT]))
            problem(L, VN_EINVAL,
                    "%s/%s/%s: e-mail needs both %s.email.subject.mustache and "
                    "%s.email.text.mustache (html is optional)",
                    set->dir, e->locale, e->name, e->name, e->name);
        if (have_default && strcmp(e->locale, set->default_locale) != 0) {
            const struct entry *d = find_entry(set, set->default_locale, e->name);
            for (size_t p = 0; p < TPL_PART__COUNT; p++)
                if (e->paths[p] && (d == NULL || d->paths[p] == NULL))
                    problem(L, VN_EINVAL,
                            "%s: no %s/%s.%s.mustache in the default locale to fall back to",
                            e->paths[p], set->default_locale, e->name, part_names[p]);
        }
    }
}

int tpl_set_load(const char *dir, const struct tpl_set_opts *opts, struct tpl_set **out,
                 struct vn_buf *errors)
{
    static const struct tpl_set_opts defaults;
    struct loader L;
    struct dirent **list = NULL;
    struct tpl_set *set;
    char canon[40];

    *out = NULL;
    memset(&L, 0, sizeof(L));
    L.opts = opts ? opts : &defaults;
    L.lim = L.opts->limits ? L.opts->limits : tpl_limits_default();
    L.errors = errors;
    const char *dflt = L.opts->default_locale ? L.opts->default_locale : "en";
    if (!tpl_locale_valid(dflt)) {
        problem(&L, VN_EINVAL, "default locale \"%s\" is not a locale tag such as en or ru-RU",
                dflt);
        return VN_EINVAL;
    }
    set = xcalloc(1, sizeof(*set));
    atomic_init(&set->refs, 1);
    set->dir = xstrdup(dir);
    locale_canon(dflt, canon, sizeof(canon));
    set->default_locale = xstrdup(canon);
    L.set = set;

    int n = scandir(dir, &list, NULL, name_sort);
    if (n < 0) {
        problem(&L, VN_ENOENT, "%s: cannot read the template directory: %s", dir, strerror(errno));
        set_destroy(set);
        return VN_ENOENT;
    }
    for (int i = 0; i < n; i++) {
        const char *d = list[i]->d_name;
        char *path = xasprintf("%s/%s", dir, d);
        struct stat st;
        if (d[0] != '.' && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (strcmp(d, "samples") == 0)
                ; /* sample data, read by tpl_set_check */
            else if (tpl_locale_valid(d))
                load_locale(&L, dir, d);
            else
                problem(&L, VN_EINVAL,
                        "%s: not a locale directory (expected a tag such as en, ru or pt-BR, "
                        "or samples)",
                        path);
        }
        free(path);
        free(list[i]);
    }
    free(list);

    if (set->n > 0)
        qsort(set->e, set->n, sizeof(*set->e), entry_qsort);
    for (size_t i = 0; i + 1 < set->nlocales; i++)
        for (size_t k = i + 1; k < set->nlocales; k++)
            if (strcmp(set->locales[k], set->locales[i]) < 0) {
                char *tmp = set->locales[i];
                set->locales[i] = set->locales[k];
                set->locales[k] = tmp;
            }
    /* report everything in one go: later checks tolerate earlier failures
     * (a template that did not compile simply has nothing to check) */
    compile_partials(&L);
    validate(&L);
    if (L.problems > 0) {
        set_destroy(set);
        return L.code ? L.code : VN_EINVAL;
    }
    *out = set;
    return 0;
}

int tpl_set_reload(const char *dir, const struct tpl_set_opts *opts, struct tpl_set **current,
                   struct vn_buf *errors)
{
    struct tpl_set *fresh = NULL;
    int rc = tpl_set_load(dir, opts, &fresh, errors);
    if (rc != 0)
        return rc;
    struct tpl_set *old = *current;
    *current = fresh;
    tpl_set_free(old);
    return 0;
}

const char *tpl_set_dir(const struct tpl_set *set)
{
    return set->dir;
}

const char *tpl_set_default_locale(const struct tpl_set *set)
{
    return set->default_locale;
}

size_t tpl_set_file_count(const struct tpl_set *set)
{
    return set->files;
}

size_t tpl_set_locale_count(const struct tpl_set *set)
{
    return set->nlocales;
}

const char *tpl_set_locale(const struct tpl_set *set, size_t i)
{
    return i < set->nlocales ? set->locales[i] : NULL;
}

/* ---- lookup and render ------------------------------------------------- */

const struct tpl *tpl_set_find(const struct tpl_set *set, const char *name, enum tpl_part part,
                               const char *locale, const char **found_locale)
{
    char store[CHAIN_MAX][40];
    const char *chain[CHAIN_MAX];
    size_t n = chain_of(locale, set->default_locale, store, chain);
    if (found_locale)
        *found_locale = NULL;
    if ((unsigned)part >= TPL_PART__COUNT || name == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = find_entry(set, chain[i], name);
        if (e && e->parts[part]) {
            if (found_locale)
                *found_locale = e->locale;
            return e->parts[part];
        }
    }
    return NULL;
}

struct resolver {
    const struct tpl_set *set;
    const char *chain[CHAIN_MAX];
    char store[CHAIN_MAX][40];
    size_t n;
};

static const struct tpl *resolve(const char *name, enum tpl_target target, void *ud)
{
    struct resolver *r = ud;
    const struct tpl *t = NULL;
    resolve_entry(r->set, r->chain, r->n, name, target, &t, true);
    return t;
}

static bool same_language(const char *a, const char *b)
{
    size_t la = strcspn(a, "-_"), lb = strcspn(b, "-_");
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* Telegram drops whitespace around a message; so do we, so that lengths
 * and empty-message checks see what Telegram will. */
static void trim(struct vn_buf *out, size_t start)
{
    size_t a = start, b = out->len;
    while (a < b && strchr(" \t\r\n", out->data[a]) != NULL)
        a++;
    while (b > a && strchr(" \t\r\n", out->data[b - 1]) != NULL)
        b--;
    memmove(out->data + start, out->data + a, b - a);
    out->len = start + (b - a);
    out->data[out->len] = '\0';
}

/* Render t, found in locale found, for the requested opts; Telegram parts
 * are trimmed. */
static int render_found(const struct tpl_set *set, const struct tpl *t, const char *found,
                        struct json_object *data, const struct tpl_render_opts *opts,
                        struct vn_buf *out, struct tpl_error *err)
{
    static const struct tpl_render_opts defaults;
    struct tpl_render_opts o = opts ? *opts : defaults;
    struct resolver r;

    r.set = set;
    r.n = chain_of(o.locale, set->default_locale, r.store, r.chain);
    if (o.locale == NULL || !tpl_locale_valid(o.locale) || !same_language(o.locale, found))
        o.locale = found;
    o.partial = resolve;
    o.partial_ud = &r;
    size_t start = out->len;
    int rc = tpl_render(t, data, &o, out, err);
    if (rc == 0 && (t->target == TPL_TARGET_TG_HTML || t->target == TPL_TARGET_TG_MD2))
        trim(out, start);
    return rc;
}

static int not_found(const struct tpl_set *set, const char *name, enum tpl_part part,
                     const char *locale, struct tpl_error *err)
{
    char store[CHAIN_MAX][40];
    const char *chain[CHAIN_MAX];
    size_t n = chain_of(locale, set->default_locale, store, chain);
    struct vn_buf tried = VN_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        vn_buf_printf(&tried, "%s%s", i ? ", " : "", chain[i]);
    tpl__set_error(err, VN_ENOENT, "", 0, 0, "no template %s.%s for locale %s (tried %s)",
                   name ? name : "(null)", tpl_part_name(part), locale ? locale : "(default)",
                   tried.data ? tried.data : "");
    vn_buf_free(&tried);
    return VN_ENOENT;
}

int tpl_set_render(const struct tpl_set *set, const char *name, enum tpl_part part,
                   struct json_object *data, const struct tpl_render_opts *opts, struct vn_buf *out,
                   struct tpl_error *err)
{
    struct tpl_error dummy;
    const char *found = NULL;
    const char *locale = opts ? opts->locale : NULL;

    if (err == NULL)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    const struct tpl *t = tpl_set_find(set, name, part, locale, &found);
    if (t == NULL)
        return not_found(set, name, part, locale, err);
    return render_found(set, t, found, data, opts, out, err);
}

void tpl_email_free(struct tpl_email *mail)
{
    free(mail->subject);
    free(mail->text);
    free(mail->html);
    mail->subject = mail->text = mail->html = NULL;
}

int tpl_set_render_email(const struct tpl_set *set, const char *name, struct json_object *data,
                         const struct tpl_render_opts *opts, struct tpl_email *mail,
                         struct tpl_error *err)
{
    static const enum tpl_part parts[] = {TPL_PART_EMAIL_SUBJECT, TPL_PART_EMAIL_TEXT,
                                          TPL_PART_EMAIL_HTML};
    char **dst[] = {&mail->subject, &mail->text, &mail->html};
    struct tpl_error dummy;
    const char *found = NULL;
    const char *locale = opts ? opts->locale : NULL;
    int rc = 0;

    if (err == NULL)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    memset(mail, 0, sizeof(*mail));
    if (tpl_set_find(set, name, TPL_PART_EMAIL_SUBJECT, locale, &found) == NULL)
        return not_found(set, name, TPL_PART_EMAIL_SUBJECT, locale, err);
    /* every part from the locale the subject came from: one language per
     * mail (loading made sure that locale has the text part too) */
    const struct entry *e = find_entry(set, found, name);
    for (size_t i = 0; i < 3 && rc == 0; i++) {
        struct vn_buf b = VN_BUF_INIT;
        if (e->parts[parts[i]] == NULL)
            continue;
        rc = render_found(set, e->parts[parts[i]], found, data, opts, &b, err);
        if (rc == 0) {
            if (b.data == NULL)
                vn_buf_append(&b, "", 0);
            *dst[i] = vn_buf_steal(&b);
        }
        vn_buf_free(&b);
    }
    if (rc != 0)
        tpl_email_free(mail);
    return rc;
}

/* ---- checking with sample data ---------------------------------------- */

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            return false;
    return true;
}

size_t tpl_set_check(const struct tpl_set *set, const char *samples_dir, const char *tz,
                     int64_t now_ms, struct vn_buf *errors, size_t *rendered)
{
    size_t problems = 0, renders = 0;
    char *last_name = NULL;
    struct json_object *sample = NULL;
    bool sample_ok = false;
    struct tpl_fmt_cache *cache = tpl_fmt_cache_new();

    for (size_t i = 0; i < set->n; i++) {
        const struct entry *e = &set->e[i];
        bool any = false;
        for (size_t p = 0; p < TPL_PART__COUNT; p++)
            any = any || e->parts[p];
        if (!any || e->name[0] == '_')
            continue; /* partials render as part of the templates using them */
        if (last_name == NULL || strcmp(last_name, e->name) != 0) {
            /* entries are sorted by locale first; samples are per name, so
             * re-read per entry when the name changes (cheap, small files) */
            json_object_put(sample);
            sample = NULL;
            free(last_name);
            last_name = xstrdup(e->name);
            char *path = xasprintf("%s/%s.json", samples_dir, e->name);
            struct stat st;
            sample_ok = false;
            if (stat(path, &st) != 0) {
                vn_buf_printf(errors, "%s/%s/%s: no sample data (%s)\n", set->dir, e->locale,
                              e->name, path);
                problems++;
            } else {
                sample = json_object_from_file(path);
                if (sample == NULL) {
                    vn_buf_printf(errors, "%s: not valid JSON: %s\n", path,
                                  json_util_get_last_err() ? json_util_get_last_err() : "?");
                    problems++;
                } else {
                    sample_ok = true;
                }
            }
            free(path);
        }
        if (!sample_ok)
            continue;
        for (size_t p = 0; p < TPL_PART__COUNT; p++) {
            if (e->parts[p] == NULL)
                continue;
            struct tpl_render_opts o = {e->locale, tz, now_ms, 1, NULL, NULL, NULL, cache};
            struct tpl_error err;
            struct vn_buf out = VN_BUF_INIT;
            int rc = tpl_set_render(set, e->name, (enum tpl_part)p, sample, &o, &out, &err);
            renders++;
            const char *what = NULL;
            if (rc != 0) {
                struct vn_buf b = VN_BUF_INIT;
                tpl_error_format(&err, &b);
                vn_buf_printf(errors, "%s (sample %s.json)\n", b.data, e->name);
                vn_buf_free(&b);
                problems++;
            } else if ((p == TPL_PART_TELEGRAM || p == TPL_PART_TELEGRAM_MD2 ||
                        p == TPL_PART_EMAIL_SUBJECT) &&
                       blank(out.data ? out.data : "", out.len)) {
                what = "renders empty";
            } else if (p == TPL_PART_TELEGRAM &&
                       tg__check_markup(out.data ? out.data : "", out.len, TG_PARSE_HTML) != 0) {
                what = "renders markup Telegram would reject (parse_mode HTML)";
            } else if (p == TPL_PART_TELEGRAM_MD2 &&
                       tg__check_markup(out.data ? out.data : "", out.len, TG_PARSE_MD2) != 0) {
                what = "renders markup Telegram would reject (parse_mode MarkdownV2)";
            }
            if (what) {
                vn_buf_printf(errors, "%s: %s with sample %s.json\n", e->paths[p], what, e->name);
                problems++;
            }
            vn_buf_free(&out);
        }
    }
    json_object_put(sample);
    free(last_name);
    tpl_fmt_cache_free(cache);
    if (rendered)
        *rendered = renders;
    return problems;
}
