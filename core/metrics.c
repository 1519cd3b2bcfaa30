/*
 * metrics.c - Prometheus registry and text exposition (format 0.0.4).
 *
 * Families live in an array in declaration order and series in an array per
 * family in creation order, so the output is stable from scrape to scrape.
 * Series are looked up by a linear scan over label values: O(series) per
 * met_get(), which is fine because cardinality is small and hot paths cache
 * the series pointer (each series is its own allocation, so pointers stay
 * valid while the array grows).
 *
 * Histogram series keep per-bucket (non-cumulative) counts; met_format() sums
 * them into the cumulative le="..." lines Prometheus expects.
 */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct met_series {
    struct met_family *fam;
    char *values[MET_MAX_LABELS];
    double value;     /* counter/gauge value, histogram sum */
    uint64_t count;   /* histogram: observations */
    uint64_t *bucket; /* histogram: observations per bound, not cumulative */
};

struct met_family {
    char *name;
    char *help; /* NULL when none was given: no HELP line */
    enum met_type type;
    size_t nlabels;
    char *labels[MET_MAX_LABELS];
    double *bounds; /* histogram upper bounds, ascending, +Inf implicit */
    size_t nbounds;
    struct met_series **series;
    size_t nseries, cap;
};

struct met_registry {
    struct met_family **fams;
    size_t nfams, cap;
};

static const double default_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10};

struct met_registry *met_registry_new(void)
{
    return xcalloc(1, sizeof(struct met_registry));
}

static void series_free(struct met_series *s)
{
    for (size_t i = 0; i < MET_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->bucket);
    free(s);
}

static void family_free(struct met_family *f)
{
    for (size_t i = 0; i < f->nseries; i++)
        series_free(f->series[i]);
    free(f->series);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

void met_registry_free(struct met_registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nfams; i++)
        family_free(r->fams[i]);
    free(r->fams);
    free(r);
}

static int is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static int valid_metric_name(const char *s)
{
    if (s == NULL || !(is_alpha_(*s) || *s == ':'))
        return 0;
    for (s++; *s; s++)
        if (!(is_alpha_(*s) || is_digit(*s) || *s == ':'))
            return 0;
    return 1;
}

/* [a-zA-Z_][a-zA-Z0-9_]* of length n, not reserved ("__" prefix). */
static int valid_label_name(const char *s, size_t n)
{
    if (n == 0 || !is_alpha_(s[0]))
        return 0;
    if (n >= 2 && s[0] == '_' && s[1] == '_')
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(is_alpha_(s[i]) || is_digit(s[i])))
            return 0;
    return 1;
}

/*
 * Split "a, b,c" into names (spaces around names are ignored). Returns the
 * count, or -1 for an empty element, a bad or duplicate name, "le" on a
 * histogram, or more than MET_MAX_LABELS names. names is filled on success
 * only.
 */
static int parse_labels(const char *spec, int histogram, char **names)
{
    char *tmp[MET_MAX_LABELS] = {NULL};
    size_t n = 0;

    if (spec == NULL || spec[strspn(spec, " \t")] == '\0')
        return 0;
    const char *p = spec;
    for (;;) {
        const char *end = p + strcspn(p, ",");
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        size_t len = (size_t)(b - a);
        if (n == MET_MAX_LABELS || !valid_label_name(a, len))
            goto out;
        if (histogram && len == 2 && memcmp(a, "le", 2) == 0)
            goto out;
        for (size_t i = 0; i < n; i++)
            if (strlen(tmp[i]) == len && memcmp(tmp[i], a, len) == 0)
                goto out;
        tmp[n++] = xstrndup(a, len);
        if (*end == '\0')
            break;
        p = end + 1;
    }
    memcpy(names, tmp, sizeof(tmp));
    return (int)n;
out:
    for (size_t i = 0; i < n; i++)
        free(tmp[i]);
    return -1;
}

/* Bounds must be strictly ascending and not NaN; a trailing +Inf is dropped
 * because the +Inf bucket is always there. Returns the usable count or -1. */
static long check_bounds(const double *b, size_t n)
{
    if (n > 0 && isinf(b[n - 1]) && b[n - 1] > 0)
        n--;
    for (size_t i = 0; i < n; i++) {
        if (isnan(b[i]) || (isinf(b[i]) && b[i] > 0))
            return -1;
        if (i > 0 && !(b[i] > b[i - 1]))
            return -1;
    }
    return (long)n;
}

static struct met_series *series_new(struct met_family *f, const char *const *values)
{
    struct met_series *s = xcalloc(1, sizeof(*s));
    s->fam = f;
    for (size_t i = 0; i < f->nlabels; i++)
        s->values[i] = xstrdup(values && values[i] ? values[i] : "");
    if (f->type == MET_HISTOGRAM)
        s->bucket = xcalloc(f->nbounds ? f->nbounds : 1, sizeof(uint64_t));
    if (f->nseries == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->series = xrealloc(f->series, f->cap * sizeof(*f->series));
    }
    f->series[f->nseries++] = s;
    return s;
}

/* Shared body of met_counter/gauge/histogram; see metrics.h for the contract. */
static struct met_family *declare(struct met_registry *r, enum met_type type, const char *name,
                                  const char *help, const char *labels, const double *buckets,
                                  size_t nbuckets)
{
    char *names[MET_MAX_LABELS] = {NULL};
    struct met_family *f = NULL;

    if (r == NULL || !valid_metric_name(name))
        return NULL;
    if (type == MET_HISTOGRAM && (buckets == NULL || nbuckets == 0)) {
        buckets = default_buckets;
        nbuckets = VN_ARRAY_LEN(default_buckets);
    }
    long nb = type == MET_HISTOGRAM ? check_bounds(buckets, nbuckets) : 0;
    if (nb < 0)
        return NULL;
    int nl = parse_labels(labels, type == MET_HISTOGRAM, names);
    if (nl < 0)
        return NULL;

    for (size_t i = 0; i < r->nfams; i++) {
        struct met_family *e = r->fams[i];
        if (strcmp(e->name, name) != 0)
            continue;
        /* Same name: the existing family only if it is the same metric, so
         * two modules sharing a name cannot silently mix different shapes. */
        int same = e->type == type && e->nlabels == (size_t)nl;
        for (size_t k = 0; same && k < e->nlabels; k++)
            same = strcmp(e->labels[k], names[k]) == 0;
        if (same && type == MET_HISTOGRAM)
            same = e->nbounds == (size_t)nb &&
                   (nb == 0 || memcmp(e->bounds, buckets, (size_t)nb * sizeof(double)) == 0);
        f = same ? e : NULL;
        goto out;
    }

    f = xcalloc(1, sizeof(*f));
    f->name = xstrdup(name);
    f->help = help && *help ? xstrdup(help) : NULL;
    f->type = type;
    f->nlabels = (size_t)nl;
    memcpy(f->labels, names, sizeof(names));
    memset(names, 0, sizeof(names)); /* now owned by f */
    if (nb > 0) {
        f->nbounds = (size_t)nb;
        f->bounds = xmalloc((size_t)nb * sizeof(double));
        memcpy(f->bounds, buckets, (size_t)nb * sizeof(double));
    }
    if (r->nfams == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->fams = xrealloc(r->fams, r->cap * sizeof(*r->fams));
    }
    r->fams[r->nfams++] = f;
    /* A metric without labels exists from the start, so it is exported as 0
     * before its first event rather than appearing out of nowhere. */
    if (f->nlabels == 0)
        series_new(f, NULL);
out:
    for (size_t i = 0; i < MET_MAX_LABELS; i++)
        free(names[i]);
    return f;
}

struct met_family *met_counter(struct met_registry *r, const char *name, const char *help,
                               const char *labels)
{
    return declare(r, MET_COUNTER, name, help, labels, NULL, 0);
}

struct met_family *met_gauge(struct met_registry *r, const char *name, const char *help,
                             const char *labels)
{
    return declare(r, MET_GAUGE, name, help, labels, NULL, 0);
}

struct met_family *met_histogram(struct met_registry *r, const char *name, const char *help,
                                 const char *labels, const double *buckets, size_t nbuckets)
{
    return declare(r, MET_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

struct met_series *met_getv(struct met_family *f, const char *const *values)
{
    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < f->nseries; i++) {
        struct met_series *s = f->series[i];
        size_t k = 0;
        while (k < f->nlabels && strcmp(s->values[k], values[k] ? values[k] : "") == 0)
            k++;
        if (k == f->nlabels)
            return s;
    }
    return series_new(f, values);
}

struct met_series *met_get(struct met_family *f, ...)
{
    const char *values[MET_MAX_LABELS] = {NULL};
    va_list ap;

    if (f == NULL)
        return NULL;
    va_start(ap, f);
    for (size_t i = 0; i < f->nlabels; i++)
        values[i] = va_arg(ap, const char *);
    va_end(ap);
    return met_getv(f, values);
}

void met_inc(struct met_series *s)
{
    met_add(s, 1);
}

void met_add(struct met_series *s, double v)
{
    if (s == NULL || s->fam->type == MET_HISTOGRAM)
        return;
    /* Counters only go up; !(v >= 0) also refuses NaN. */
    if (s->fam->type == MET_COUNTER && !(v >= 0))
        return;
    s->value += v;
}

void met_set(struct met_series *s, double v)
{
    if (s == NULL || s->fam->type != MET_GAUGE)
        return;
    s->value = v;
}

void met_observe(struct met_series *s, double v)
{
    if (s == NULL || s->fam->type != MET_HISTOGRAM)
        return;
    const struct met_family *f = s->fam;
    /* le is inclusive: v lands in the first bucket whose bound is >= v.
     * NaN compares false everywhere and so counts only towards +Inf. */
    for (size_t i = 0; i < f->nbounds; i++) {
        if (v <= f->bounds[i]) {
            s->bucket[i]++;
            break;
        }
    }
    s->count++;
    s->value += v;
}

double met_value(const struct met_series *s)
{
    return s ? s->value : 0;
}

uint64_t met_count(const struct met_series *s)
{
    return s && s->fam->type == MET_HISTOGRAM ? s->count : 0;
}

/*
 * Integral values within 2^53 print as integers ("3"), others as the shortest
 * %g form that reads back to the same double; specials as Prometheus spells
 * them. Assumes the "C" numeric locale (the process never calls setlocale).
 */
static void put_double(struct vn_buf *out, double v)
{
    char tmp[40];

    if (isnan(v)) {
        vn_buf_puts(out, "NaN");
        return;
    }
    if (isinf(v)) {
        vn_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        vn_buf_printf(out, "%lld", (long long)v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    vn_buf_puts(out, tmp);
}

static void put_u64(struct vn_buf *out, uint64_t v)
{
    vn_buf_printf(out, "%llu", (unsigned long long)v);
}

/* HELP text: backslash and newline escaped. */
static void put_help(struct vn_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            vn_buf_puts(out, "\\\\");
        else if (*s == '\n')
            vn_buf_puts(out, "\\n");
        else
            vn_buf_putc(out, *s);
    }
}

/* Label value: backslash, double quote and newline escaped; other bytes
 * (UTF-8 included) pass through. */
static void put_label_value(struct vn_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            vn_buf_puts(out, "\\\\");
        else if (*s == '"')
            vn_buf_puts(out, "\\\"");
        else if (*s == '\n')
            vn_buf_puts(out, "\\n");
        else
            vn_buf_putc(out, *s);
    }
}

/* name{labels[,le="bound"]} with no braces when there is nothing inside. */
static void put_series_name(struct vn_buf *out, const struct met_series *s, const char *suffix,
                            const char *le)
{
    const struct met_family *f = s->fam;
    vn_buf_puts(out, f->name);
    vn_buf_puts(out, suffix);
    if (f->nlabels == 0 && le == NULL)
        return;
    vn_buf_putc(out, '{');
    for (size_t i = 0; i < f->nlabels; i++) {
        vn_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
        put_label_value(out, s->values[i]);
        vn_buf_putc(out, '"');
    }
    if (le)
        vn_buf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    vn_buf_putc(out, '}');
}

static void format_histogram(struct vn_buf *out, const struct met_series *s)
{
    const struct met_family *f = s->fam;
    struct vn_buf le = VN_BUF_INIT;
    uint64_t cum = 0;

    for (size_t i = 0; i < f->nbounds; i++) {
        cum += s->bucket[i];
        vn_buf_reset(&le);
        put_double(&le, f->bounds[i]);
        put_series_name(out, s, "_bucket", le.data);
        vn_buf_putc(out, ' ');
        put_u64(out, cum);
        vn_buf_putc(out, '\n');
    }
    put_series_name(out, s, "_bucket", "+Inf");
    vn_buf_putc(out, ' ');
    put_u64(out, s->count);
    vn_buf_putc(out, '\n');
    put_series_name(out, s, "_sum", NULL);
    vn_buf_putc(out, ' ');
    put_double(out, s->value);
    vn_buf_putc(out, '\n');
    put_series_name(out, s, "_count", NULL);
    vn_buf_putc(out, ' ');
    put_u64(out, s->count);
    vn_buf_putc(out, '\n');
    vn_buf_free(&le);
}

void met_format(const struct met_registry *r, struct vn_buf *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};

    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nfams; i++) {
        const struct met_family *f = r->fams[i];
        if (f->help) {
            vn_buf_printf(out, "# HELP %s ", f->name);
            put_help(out, f->help);
            vn_buf_putc(out, '\n');
        }
        vn_buf_printf(out, "# TYPE %s %s\n", f->name, type_names[f->type]);
        for (size_t k = 0; k < f->nseries; k++) {
            const struct met_series *s = f->series[k];
            if (f->type == MET_HISTOGRAM) {
                format_histogram(out, s);
                continue;
            }
            put_series_name(out, s, "", NULL);
            vn_buf_putc(out, ' ');
            put_double(out, s->value);
            vn_buf_putc(out, '\n');
        }
    }
}
