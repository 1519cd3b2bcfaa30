/*
 * fsm_util.c - the model's arena, problem lists, and small text helpers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/common.h"
#include "fsm/fsm_int.h"

/* ---- arena ---------------------------------------------------------------- */

/* Chunks of at least 16 KiB; a large request gets a chunk of its own. */
struct fsm__chunk {
    struct fsm__chunk *next;
    size_t used, cap;
    max_align_t data[];
};

#define FSM_CHUNK_MIN (16 * 1024)

void *fsm__alloc(struct fsm__arena *a, size_t n)
{
    size_t align = sizeof(max_align_t);
    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    struct fsm__chunk *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > FSM_CHUNK_MIN ? n : FSM_CHUNK_MIN;
        c = xmalloc(sizeof(*c) + cap);
        c->used = 0;
        c->cap = cap;
        if (a->head != NULL && n > FSM_CHUNK_MIN) {
            /* keep filling the current chunk; the big one goes behind it */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *fsm__strndup(struct fsm__arena *a, const char *s, size_t n)
{
    char *p = fsm__alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *fsm__strdup(struct fsm__arena *a, const char *s)
{
    return fsm__strndup(a, s, strlen(s));
}

void fsm__arena_keep_regex(struct fsm__arena *a, regex_t *re)
{
    if (a->n_regexes == a->cap_regexes) {
        a->cap_regexes = a->cap_regexes ? a->cap_regexes * 2 : 16;
        a->regexes = xrealloc(a->regexes, a->cap_regexes * sizeof(*a->regexes));
    }
    a->regexes[a->n_regexes++] = re;
}

void fsm__arena_keep_json(struct fsm__arena *a, struct json_object *j)
{
    if (j == NULL)
        return;
    if (a->n_jsons == a->cap_jsons) {
        a->cap_jsons = a->cap_jsons ? a->cap_jsons * 2 : 32;
        a->jsons = xrealloc(a->jsons, a->cap_jsons * sizeof(*a->jsons));
    }
    a->jsons[a->n_jsons++] = j;
}

void fsm__arena_release(struct fsm__arena *a)
{
    for (size_t i = 0; i < a->n_regexes; i++)
        regfree(a->regexes[i]);
    free(a->regexes);
    for (size_t i = 0; i < a->n_jsons; i++)
        json_object_put(a->jsons[i]);
    free(a->jsons);
    struct fsm__chunk *c = a->head;
    while (c != NULL) {
        struct fsm__chunk *next = c->next;
        free(c);
        c = next;
    }
    memset(a, 0, sizeof(*a));
}

/* ---- problems ------------------------------------------------------------- */

#define FSM_DIAG_MAX 1000

void fsm_diag_init(struct fsm_diag *d)
{
    memset(d, 0, sizeof(*d));
}

void fsm_diag_cleanup(struct fsm_diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].path);
        free(d->v[i].msg);
    }
    free(d->v);
    memset(d, 0, sizeof(*d));
}

void fsm__diag_add(struct fsm_diag *d, const struct fsm__pos *pos, const char *fmt, ...)
{
    if (d->n >= FSM_DIAG_MAX) {
        d->dropped++;
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
    }
    struct vn_buf b = VN_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    vn_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    struct fsm_problem *p = &d->v[d->n++];
    p->file = xstrdup(pos->file ? pos->file : "");
    p->line = pos->line;
    p->col = pos->col;
    p->path = xstrdup(pos->path ? pos->path : "");
    p->msg = b.data ? vn_buf_steal(&b) : xstrdup("");
}

static size_t file_rank(const char *file, const char *const *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(files[i], file) == 0)
            return i;
    return n;
}

/* Insertion sort: stable, and n is at most FSM_DIAG_MAX. */
void fsm__diag_sort(struct fsm_diag *d, size_t from, const char *const *files, size_t n_files)
{
    for (size_t i = from + 1; i < d->n; i++) {
        struct fsm_problem p = d->v[i];
        size_t rp = file_rank(p.file, files, n_files);
        size_t j = i;
        while (j > from) {
            const struct fsm_problem *q = &d->v[j - 1];
            size_t rq = file_rank(q->file, files, n_files);
            if (rq < rp ||
                (rq == rp && (q->line < p.line || (q->line == p.line && q->col <= p.col))))
                break;
            d->v[j] = d->v[j - 1];
            j--;
        }
        d->v[j] = p;
    }
}

void fsm_diag_format(const struct fsm_diag *d, struct vn_buf *out)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct fsm_problem *p = &d->v[i];
        if (p->line <= 0)
            vn_buf_printf(out, "%s: ", p->file);
        else
            vn_buf_printf(out, "%s:%d:%d: ", p->file, p->line, p->col);
        if (p->path[0] != '\0')
            vn_buf_printf(out, "%s: ", p->path);
        vn_buf_printf(out, "%s\n", p->msg);
    }
    if (d->dropped > 0)
        vn_buf_printf(out, "... and %zu more problems\n", d->dropped);
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps, so
   "ask_whne" is one step from "ask_when"), or cap + 1 when over cap. */
size_t fsm__edit_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > cap)
        return cap + 1;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb] > cap ? cap + 1 : d[la][lb];
}

bool fsm_name_list_has(const char *name, void *names)
{
    const char *const *v = names;
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        if (strcmp(v[i], name) == 0)
            return true;
    return false;
}

/* ---- text ----------------------------------------------------------------- */

static int is_space_at(const unsigned char *s, size_t *len)
{
    if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f') {
        *len = 1;
        return 1;
    }
    if (s[0] == 0xC2 && s[1] == 0xA0) { /* no-break space */
        *len = 2;
        return 1;
    }
    return 0;
}

char *fsm__fold(const char *src)
{
    const unsigned char *s = (const unsigned char *)src;
    struct vn_buf b = VN_BUF_INIT;
    int pending_space = 0;
    size_t sl;

    vn_buf_reserve(&b, strlen(src) + 1);
    while (*s) {
        if (is_space_at(s, &sl)) {
            pending_space = b.len > 0;
            s += sl;
            continue;
        }
        if (pending_space) {
            vn_buf_putc(&b, ' ');
            pending_space = 0;
        }
        if (*s >= 'A' && *s <= 'Z') {
            vn_buf_putc(&b, (char)(*s + 32));
            s++;
        } else if (s[0] == 0xD0 && s[1] >= 0x90 && s[1] <= 0x9F) { /* А-П -> а-п */
            char c[2] = {(char)0xD0, (char)(s[1] + 0x20)};
            vn_buf_append(&b, c, 2);
            s += 2;
        } else if (s[0] == 0xD0 && s[1] >= 0xA0 && s[1] <= 0xAF) { /* Р-Я -> р-я */
            char c[2] = {(char)0xD1, (char)(s[1] - 0x20)};
            vn_buf_append(&b, c, 2);
            s += 2;
        } else if ((s[0] == 0xD0 && s[1] == 0x81) || (s[0] == 0xD1 && s[1] == 0x91)) {
            vn_buf_append(&b, "\xD0\xB5", 2); /* Ё, ё -> е */
            s += 2;
        } else {
            vn_buf_putc(&b, (char)*s);
            s++;
        }
    }
    if (b.data == NULL)
        return xstrdup("");
    return vn_buf_steal(&b);
}

char *fsm__trim(const char *s)
{
    size_t n = strlen(s), sl;
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0 && is_space_at(p, &sl) && sl <= n) {
        p += sl;
        n -= sl;
    }
    while (n > 0) {
        unsigned char c = p[n - 1];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
            n--;
        else if (n >= 2 && p[n - 2] == 0xC2 && c == 0xA0)
            n -= 2;
        else
            break;
    }
    return xstrndup((const char *)p, n);
}

size_t fsm__utf8_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

struct json_object *fsm__json_double(double d)
{
    char buf[40];
    snprintf(buf, sizeof(buf), "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, sizeof(buf), "%.17g", d);
    /* JSON has no inf/nan; callers never pass them, but stay valid anyway */
    if (strchr(buf, 'n') != NULL || strchr(buf, 'i') != NULL)
        snprintf(buf, sizeof(buf), "0");
    return json_object_new_double_s(d, buf);
}

int fsm__parse_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;
    const char *p = s;
    int parts = 0;

    if (*p == '\0')
        return -1;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -1;
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p - '0');
            if (n > 100000000)
                return -1;
            p++;
        }
        int64_t unit;
        switch (*p) {
        case '\0':
            unit = parts == 0 ? 1000 : -1;
            break;
        case 's':
            unit = 1000;
            break;
        case 'm':
            unit = 60 * 1000;
            break;
        case 'h':
            unit = 3600 * 1000;
            break;
        case 'd':
            unit = 86400 * 1000;
            break;
        default:
            unit = -1;
        }
        if (unit < 0)
            return -1;
        if (*p)
            p++;
        total += n * unit;
        if (total > (int64_t)400 * 86400 * 1000)
            return -1;
        parts++;
    }
    *ms = total;
    return 0;
}

void fsm__format_duration(int64_t ms, char *buf, size_t len)
{
    int64_t s = ms / 1000;
    struct vn_buf b = VN_BUF_INIT;
    if (s >= 86400) {
        vn_buf_printf(&b, "%lldd", (long long)(s / 86400));
        s %= 86400;
    }
    if (s >= 3600) {
        vn_buf_printf(&b, "%lldh", (long long)(s / 3600));
        s %= 3600;
    }
    if (s >= 60) {
        vn_buf_printf(&b, "%lldm", (long long)(s / 60));
        s %= 60;
    }
    if (s > 0 || b.len == 0)
        vn_buf_printf(&b, "%llds", (long long)s);
    snprintf(buf, len, "%s", b.data);
    vn_buf_free(&b);
}
