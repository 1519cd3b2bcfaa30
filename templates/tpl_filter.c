/*
 * tpl_filter.c - the filters: {{ value | name args | name args }}.
 *
 * Locale-dependent work is ICU's: plural rules (uplrules), numbers and
 * currencies (unumf skeletons), dates and times in the recipient's zone
 * (udat, udatpg for skeletons), relative times (ureldatefmt), lists
 * (ulistfmt), case mapping and grapheme boundaries (ustring, ubrk). Opening
 * an ICU formatter costs tens of microseconds, far more than using one, so
 * they live in struct tpl_fmt_cache: a small LRU keyed by kind, locale,
 * zone and style. Each filter's arguments are checked when the template
 * compiles, so a render only meets problems in the data.
 *
 * A filter that cannot read its input (a date that is not RFC 3339 nor
 * epoch seconds, a count that is not a number) leaves it unchanged, or
 * fails the render in strict mode. A missing value passes through every
 * filter but `default`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/ucal.h>
#include <unicode/udat.h>
#include <unicode/udatpg.h>
#include <unicode/ulistformatter.h>
#include <unicode/uloc.h>
#include <unicode/unumberformatter.h>
#include <unicode/upluralrules.h>
#include <unicode/ureldatefmt.h>
#include <unicode/ustring.h>

#include "templates/tpl_internal.h"

/* ---- the formatter cache ----------------------------------------------- */

enum fkind { FK_UDAT, FK_PLURAL, FK_NUMBER, FK_RELDATE, FK_LIST, FK_CAL, FK_BRK };

#define CACHE_SLOTS 32
#define KEY_MAX     192

struct fentry {
    int kind; /* -1 = empty */
    char key[KEY_MAX];
    void *obj;
    uint64_t used;
};

struct tpl_fmt_cache {
    struct fentry e[CACHE_SLOTS];
    uint64_t clock;
};

static void fobj_close(int kind, void *obj)
{
    if (obj == NULL)
        return;
    switch (kind) {
    case FK_UDAT:
        udat_close(obj);
        break;
    case FK_PLURAL:
        uplrules_close(obj);
        break;
    case FK_NUMBER:
        unumf_close(obj);
        break;
    case FK_RELDATE:
        ureldatefmt_close(obj);
        break;
    case FK_LIST:
        ulistfmt_close(obj);
        break;
    case FK_CAL:
        ucal_close(obj);
        break;
    case FK_BRK:
        ubrk_close(obj);
        break;
    }
}

struct tpl_fmt_cache *tpl_fmt_cache_new(void)
{
    struct tpl_fmt_cache *c = xcalloc(1, sizeof(*c));
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        c->e[i].kind = -1;
    return c;
}

void tpl_fmt_cache_free(struct tpl_fmt_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        if (c->e[i].kind >= 0)
            fobj_close(c->e[i].kind, c->e[i].obj);
    free(c);
}

static struct tpl_fmt_cache *rs_cache(struct tpl_rs *rs)
{
    if (rs->cache == NULL) {
        rs->cache = tpl_fmt_cache_new();
        rs->own_cache = true;
    }
    return rs->cache;
}

static void *cache_get(struct tpl_rs *rs, int kind, const char *key)
{
    struct tpl_fmt_cache *c = rs_cache(rs);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        if (c->e[i].kind == kind && strcmp(c->e[i].key, key) == 0) {
            c->e[i].used = ++c->clock;
            return c->e[i].obj;
        }
    return NULL;
}

/* Store obj (the cache owns it from now on), evicting the least recently used. */
static void cache_put(struct tpl_rs *rs, int kind, const char *key, void *obj)
{
    struct tpl_fmt_cache *c = rs_cache(rs);
    size_t victim = 0;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (c->e[i].kind < 0) {
            victim = i;
            break;
        }
        if (c->e[i].used < c->e[victim].used)
            victim = i;
    }
    struct fentry *e = &c->e[victim];
    if (e->kind >= 0)
        fobj_close(e->kind, e->obj);
    e->kind = kind;
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->obj = obj;
    e->used = ++c->clock;
}

/* ---- locale, zone, UTF-16 ---------------------------------------------- */

int tpl_locale_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0, lang = 0;
    if (n == 0 || n > 35)
        return 0;
    while (lang < n && ((s[lang] >= 'a' && s[lang] <= 'z') || (s[lang] >= 'A' && s[lang] <= 'Z')))
        lang++;
    if (lang < 2 || lang > 3 || (lang < n && s[lang] != '-' && s[lang] != '_'))
        return 0;
    size_t sub = 0;
    for (size_t i = lang; i < n; i++) {
        char c = s[i];
        if (c == '-' || c == '_') {
            if (i > lang && sub == 0)
                return 0;
            sub = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
        if (++sub > 8)
            return 0;
    }
    return sub > 0 || lang == n;
}

static UChar *u16(const char *s, size_t len, int32_t *ulen)
{
    UErrorCode st = U_ZERO_ERROR;
    int32_t need = 0;
    if (len > INT32_MAX / 2)
        len = INT32_MAX / 2;
    u_strFromUTF8WithSub(NULL, 0, &need, s, (int32_t)len, 0xFFFD, NULL, &st);
    UChar *u = xmalloc(((size_t)need + 1) * sizeof(UChar));
    st = U_ZERO_ERROR;
    u_strFromUTF8WithSub(u, need + 1, ulen, s, (int32_t)len, 0xFFFD, NULL, &st);
    if (U_FAILURE(st))
        *ulen = 0;
    return u;
}

static void put_u16(struct vn_buf *out, const UChar *u, int32_t ulen)
{
    UErrorCode st = U_ZERO_ERROR;
    int32_t need = 0;
    u_strToUTF8WithSub(NULL, 0, &need, u, ulen, 0xFFFD, NULL, &st);
    vn_buf_reserve(out, (size_t)need + 1);
    st = U_ZERO_ERROR;
    u_strToUTF8WithSub(out->data + out->len, (int32_t)(out->cap - out->len), &need, u, ulen, 0xFFFD,
                       NULL, &st);
    if (U_SUCCESS(st)) {
        out->len += (size_t)need;
        out->data[out->len] = '\0';
    }
}

/* The render's locale as an ICU id ("ru_RU"); "en" when it is not valid. */
static const char *icu_locale(struct tpl_rs *rs)
{
    if (rs->icu_locale[0])
        return rs->icu_locale;
    char tag[40];
    const char *in = tpl_locale_valid(rs->locale) ? rs->locale : "en";
    snprintf(tag, sizeof(tag), "%s", in);
    for (char *p = tag; *p; p++)
        if (*p == '_')
            *p = '-';
    UErrorCode st = U_ZERO_ERROR;
    int32_t parsed = 0;
    uloc_forLanguageTag(tag, rs->icu_locale, (int32_t)sizeof(rs->icu_locale) - 1, &parsed, &st);
    if (U_FAILURE(st) || rs->icu_locale[0] == '\0')
        snprintf(rs->icu_locale, sizeof(rs->icu_locale), "en");
    return rs->icu_locale;
}

int tpl_tz_valid(const char *tz)
{
    UChar canon[128];
    UBool system = 0;
    UErrorCode st = U_ZERO_ERROR;
    int32_t ulen = 0;
    if (tz == NULL || *tz == '\0' || strlen(tz) > 64 || strcmp(tz, "Etc/Unknown") == 0)
        return 0;
    UChar *u = u16(tz, strlen(tz), &ulen);
    ucal_getCanonicalTimeZoneID(u, ulen, canon, (int32_t)VN_ARRAY_LEN(canon), &system, &st);
    free(u);
    return U_SUCCESS(st) && st != U_STRING_NOT_TERMINATED_WARNING;
}

/* The zone to format in: the argument, else the render's; unknown -> UTC
 * (strict: an error). */
static int zone(struct tpl_rs *rs, const struct tpl_fcall *c, const char *arg, const char **out)
{
    if (arg != NULL) {
        *out = arg; /* checked at compile time */
        return 0;
    }
    if (rs->tz_state == 0)
        rs->tz_state = tpl_tz_valid(rs->tz) ? 1 : -1;
    if (rs->tz_state < 0) {
        if (rs->o->strict)
            return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "unknown time zone \"%.64s\"",
                                rs->tz);
        *out = "UTC";
        return 0;
    }
    *out = rs->tz;
    return 0;
}

static int64_t now_ms(struct tpl_rs *rs)
{
    if (rs->now_ms == 0)
        rs->now_ms = (int64_t)vn_wall_ms();
    return rs->now_ms;
}

/* ---- argument checking ------------------------------------------------- */

static const char *arg_str(const struct tpl *t, const struct tpl_farg *a)
{
    return a ? tpl__str(t, a->str) : NULL;
}

static bool one_of(const char *s, const char *list)
{
    size_t n = strlen(s);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, '|');
        size_t m = e ? (size_t)(e - p) : strlen(p);
        if (m == n && memcmp(p, s, n) == 0)
            return true;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return false;
}

/*
 * Check positional and named arguments. pos: one character per allowed
 * positional argument ('s' string, 'n' number), the first pmin required.
 * named: "key:s|key:n|..." ('=' as a key allows =N="..." cases).
 */
static int check_args(const struct tpl *t, const struct tpl_fcall *c, unsigned pmin,
                      const char *pos, const char *named, char *msg, size_t cap, int *bad)
{
    unsigned np = 0;
    for (unsigned i = 0; i < c->nargs; i++) {
        const struct tpl_farg *a = &t->args[c->arg + i];
        *bad = (int)i;
        if (a->key_len == 0) {
            if (np >= strlen(pos)) {
                snprintf(msg, cap, "too many arguments (takes %zu)", strlen(pos));
                return VN_EINVAL;
            }
            char want = pos[np++];
            if ((want == 'n') != a->is_num) {
                snprintf(msg, cap, "argument %u must be a %s", np,
                         want == 'n' ? "number" : "quoted string");
                return VN_EINVAL;
            }
            continue;
        }
        const char *key = tpl__str(t, a->key);
        char want = 0;
        if (key[0] == '=') {
            if (strstr(named, "=:") != NULL)
                want = 's';
        } else {
            size_t kl = strlen(key);
            for (const char *p = named; *p;) {
                const char *e = strchr(p, '|');
                size_t m = e ? (size_t)(e - p) : strlen(p);
                if (m == kl + 2 && memcmp(p, key, kl) == 0 && p[kl] == ':') {
                    want = p[kl + 1];
                    break;
                }
                if (e == NULL)
                    break;
                p = e + 1;
            }
        }
        if (want == 0) {
            snprintf(msg, cap, "unknown argument \"%.40s\"%s%s", key, *named ? " (takes: " : "",
                     *named ? named : "");
            if (*named)
                strncat(msg, ")", cap - strlen(msg) - 1);
            return VN_EINVAL;
        }
        if ((want == 'n') != a->is_num) {
            snprintf(msg, cap, "%.40s= must be a %s", key,
                     want == 'n' ? "number" : "quoted string");
            return VN_EINVAL;
        }
        for (unsigned j = 0; j < i; j++) {
            const struct tpl_farg *b = &t->args[c->arg + j];
            if (b->key_len && strcmp(tpl__str(t, b->key), key) == 0) {
                snprintf(msg, cap, "%.40s= given twice", key);
                return VN_EINVAL;
            }
        }
    }
    *bad = -1;
    if (np < pmin) {
        snprintf(msg, cap, "needs %u argument%s", pmin, pmin == 1 ? "" : "s");
        return VN_EINVAL;
    }
    return 0;
}

/* A positional or named argument must be one of list. */
static int check_choice(const struct tpl *t, const struct tpl_fcall *c, const struct tpl_farg *a,
                        const char *what, const char *list, char *msg, size_t cap, int *bad)
{
    if (a == NULL || one_of(arg_str(t, a), list))
        return 0;
    *bad = (int)(a - &t->args[c->arg]);
    snprintf(msg, cap, "unknown %s \"%.40s\" (one of %s)", what, arg_str(t, a), list);
    return VN_EINVAL;
}

static int check_int(const struct tpl *t, const struct tpl_fcall *c, const struct tpl_farg *a,
                     double lo, double hi, char *msg, size_t cap, int *bad)
{
    if (a == NULL || (a->num == floor(a->num) && a->num >= lo && a->num <= hi))
        return 0;
    *bad = (int)(a - &t->args[c->arg]);
    snprintf(msg, cap, "expected a whole number from %.0f to %.0f, got %s", lo, hi,
             tpl__str(t, a->str));
    return VN_EINVAL;
}

static int check_tz_arg(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                        int *bad)
{
    const struct tpl_farg *a = tpl__arg_named(t, c, "tz");
    if (a == NULL || tpl_tz_valid(arg_str(t, a)))
        return 0;
    *bad = (int)(a - &t->args[c->arg]);
    snprintf(msg, cap, "unknown time zone \"%.64s\"", arg_str(t, a));
    return VN_EINVAL;
}

/* ---- helpers for apply ------------------------------------------------- */

static void set_str(struct tval *v, struct vn_buf *out)
{
    if (out->data == NULL)
        vn_buf_append(out, "", 0);
    v->kind = TV_STR;
    v->s = out->data;
    v->len = out->len;
    v->j = NULL;
}

/* Input the filter cannot use: unchanged, or an error when strict. */
static int unreadable(struct tpl_rs *rs, const struct tpl_fcall *c, const char *fname,
                      const char *want, const struct tval *v)
{
    if (!rs->o->strict)
        return 0;
    const char *s;
    size_t len;
    tpl__stringify(v, &rs->tmp, &s, &len);
    return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "%s: expected %s, got \"%.*s\"", fname,
                        want, (int)(len > 60 ? 60 : len), s);
}

/* The input as text (for string filters): 0, or 1 when there is none. */
static int input_text(struct tpl_rs *rs, const struct tval *v, const char **s, size_t *len)
{
    if (v->kind == TV_MISSING || (v->kind == TV_JSON && v->j == NULL))
        return 1;
    tpl__stringify(v, &rs->tmp, s, len);
    return 0;
}

/* Format d with an unumf skeleton into out. */
static int format_number(struct tpl_rs *rs, const struct tpl_fcall *c, const char *skel, double d,
                         struct vn_buf *out)
{
    char key[KEY_MAX];
    const char *loc = icu_locale(rs);
    snprintf(key, sizeof(key), "%s|%s", loc, skel);
    UNumberFormatter *nf = cache_get(rs, FK_NUMBER, key);
    UErrorCode st = U_ZERO_ERROR;
    if (nf == NULL) {
        int32_t ulen = 0;
        UChar *u = u16(skel, strlen(skel), &ulen);
        nf = unumf_openForSkeletonAndLocale(u, ulen, loc, &st);
        free(u);
        if (U_FAILURE(st)) {
            unumf_close(nf);
            return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "number skeleton \"%s\": %s", skel,
                                u_errorName(st));
        }
        cache_put(rs, FK_NUMBER, key, nf);
    }
    UFormattedNumber *res = unumf_openResult(&st);
    UChar buf[256];
    unumf_formatDouble(nf, d, res, &st);
    int32_t n = unumf_resultToString(res, buf, (int32_t)VN_ARRAY_LEN(buf), &st);
    unumf_closeResult(res);
    if (U_FAILURE(st))
        return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "cannot format %g: %s", d,
                            u_errorName(st));
    put_u16(out, buf, n);
    return 0;
}

/* ---- default ----------------------------------------------------------- */

static int default_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                         int *bad)
{
    return check_args(t, c, 1, "s", "", msg, cap, bad);
}

static int default_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                         struct tval *v, struct vn_buf *out)
{
    VN_UNUSED(rs);
    VN_UNUSED(out);
    bool empty = v->kind == TV_MISSING || (v->kind == TV_STR && v->len == 0);
    if (v->kind == TV_JSON)
        empty = v->j == NULL || json_object_get_type(v->j) == json_type_null ||
                (json_object_get_type(v->j) == json_type_string &&
                 json_object_get_string_len(v->j) == 0);
    if (empty) {
        const struct tpl_farg *a = tpl__arg_pos(t, c, 0);
        v->kind = TV_STR;
        v->s = tpl__str(t, a->str);
        v->len = a->str_len;
    }
    return 0;
}

/* ---- truncate ---------------------------------------------------------- */

static int truncate_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                          int *bad)
{
    int rc = check_args(t, c, 1, "n", "ellipsis:s", msg, cap, bad);
    if (rc == 0)
        rc = check_int(t, c, tpl__arg_pos(t, c, 0), 1, 100000, msg, cap, bad);
    return rc;
}

static UBreakIterator *char_breaks(struct tpl_rs *rs)
{
    const char *loc = icu_locale(rs);
    UBreakIterator *bi = cache_get(rs, FK_BRK, loc);
    if (bi == NULL) {
        UErrorCode st = U_ZERO_ERROR;
        bi = ubrk_open(UBRK_CHARACTER, loc, NULL, 0, &st);
        if (U_FAILURE(st))
            return NULL;
        cache_put(rs, FK_BRK, loc, bi);
    }
    return bi;
}

/* Count the grapheme clusters of u into *count; return the UTF-16 offset
 * after the first n of them (ulen when there are fewer, 0 when n <= 0). */
static int32_t graphemes(UBreakIterator *bi, const UChar *u, int32_t ulen, int32_t n,
                         int32_t *count)
{
    UErrorCode st = U_ZERO_ERROR;
    int32_t k = 0, cut = n <= 0 ? 0 : ulen;

    ubrk_setText(bi, u, ulen, &st);
    if (U_FAILURE(st)) {
        *count = ulen;
        return n <= 0 ? 0 : (n < ulen ? n : ulen);
    }
    for (int32_t b = ubrk_next(bi); b != UBRK_DONE; b = ubrk_next(bi))
        if (++k == n)
            cut = b;
    *count = k;
    return cut;
}

static int truncate_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                          struct tval *v, struct vn_buf *out)
{
    const char *s;
    size_t len;
    int32_t n = (int32_t)tpl__arg_pos(t, c, 0)->num;
    const struct tpl_farg *ea = tpl__arg_named(t, c, "ellipsis");
    const char *ell = ea ? tpl__str(t, ea->str) : "\xE2\x80\xA6"; /* … */

    if (input_text(rs, v, &s, &len) || len <= (size_t)n)
        return 0; /* every grapheme is at least one byte */
    UBreakIterator *bi = char_breaks(rs);
    if (bi == NULL)
        return 0;
    int32_t ulen = 0, total = 0, elen = 0, ecount = 0;
    UChar *u = u16(s, len, &ulen);
    UChar *eu = u16(ell, strlen(ell), &elen);
    graphemes(bi, eu, elen, 0, &ecount);
    int32_t keep = n - ecount;
    if (keep < 0)
        keep = 0;
    int32_t cut = graphemes(bi, u, ulen, keep, &total);
    if (total > n) {
        while (cut > 0 && u_isspace(u[cut - 1]))
            cut--;
        put_u16(out, u, cut);
        vn_buf_puts(out, ell);
        set_str(v, out);
    }
    free(u);
    free(eu);
    return 0;
}

/* ---- upper, lower, capitalize ------------------------------------------ */

static int noargs_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                        int *bad)
{
    return check_args(t, c, 0, "", "", msg, cap, bad);
}

typedef int32_t (*casefn)(UChar *, int32_t, const UChar *, int32_t, const char *, UErrorCode *);

static int case_apply(struct tpl_rs *rs, struct tval *v, struct vn_buf *out, casefn fn,
                      bool first_only)
{
    const char *s;
    size_t len;
    if (input_text(rs, v, &s, &len) || len == 0)
        return 0;
    int32_t ulen = 0, head = 0, dummy = 0;
    UChar *u = u16(s, len, &ulen);
    head = ulen;
    if (first_only) {
        UBreakIterator *bi = char_breaks(rs);
        head = bi ? graphemes(bi, u, ulen, 1, &dummy) : (ulen > 0 ? 1 : 0);
    }
    UErrorCode st = U_ZERO_ERROR;
    int32_t need = fn(NULL, 0, u, head, icu_locale(rs), &st);
    UChar *r = xmalloc(((size_t)need + 1) * sizeof(UChar));
    st = U_ZERO_ERROR;
    need = fn(r, need + 1, u, head, icu_locale(rs), &st);
    if (U_SUCCESS(st)) {
        put_u16(out, r, need);
        put_u16(out, u + head, ulen - head);
        set_str(v, out);
    }
    free(r);
    free(u);
    return 0;
}

static int upper_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                       struct tval *v, struct vn_buf *out)
{
    VN_UNUSED(t);
    VN_UNUSED(c);
    return case_apply(rs, v, out, u_strToUpper, false);
}

static int lower_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                       struct tval *v, struct vn_buf *out)
{
    VN_UNUSED(t);
    VN_UNUSED(c);
    return case_apply(rs, v, out, u_strToLower, false);
}

static int capitalize_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                            struct tval *v, struct vn_buf *out)
{
    VN_UNUSED(t);
    VN_UNUSED(c);
    return case_apply(rs, v, out, u_strToUpper, true);
}

/* ---- number, currency, percent ----------------------------------------- */

static int skeleton_valid(const char *skel)
{
    UErrorCode st = U_ZERO_ERROR;
    int32_t ulen = 0;
    UChar *u = u16(skel, strlen(skel), &ulen);
    UNumberFormatter *nf = unumf_openForSkeletonAndLocale(u, ulen, "en", &st);
    free(u);
    unumf_close(nf);
    return U_SUCCESS(st);
}

static int number_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                        int *bad)
{
    int rc = check_args(t, c, 0, "", "decimals:n|skeleton:s", msg, cap, bad);
    const struct tpl_farg *sk = tpl__arg_named(t, c, "skeleton");
    if (rc == 0)
        rc = check_int(t, c, tpl__arg_named(t, c, "decimals"), 0, 15, msg, cap, bad);
    if (rc == 0 && sk && tpl__arg_named(t, c, "decimals")) {
        snprintf(msg, cap, "give decimals= or skeleton=, not both");
        return VN_EINVAL;
    }
    if (rc == 0 && sk && (sk->str_len > 100 || !skeleton_valid(arg_str(t, sk)))) {
        *bad = (int)(sk - &t->args[c->arg]);
        snprintf(msg, cap, "invalid ICU number skeleton \"%.60s\"", arg_str(t, sk));
        return VN_EINVAL;
    }
    return rc;
}

static void decimals_skeleton(char *buf, size_t cap, const char *prefix, const struct tpl_farg *dec)
{
    if (dec == NULL) {
        snprintf(buf, cap, "%s", prefix);
    } else if (dec->num == 0) {
        snprintf(buf, cap, "%s%sprecision-integer", prefix, *prefix ? " " : "");
    } else {
        char zeros[20];
        int n = (int)dec->num;
        memset(zeros, '0', (size_t)n);
        zeros[n] = '\0';
        snprintf(buf, cap, "%s%s.%s", prefix, *prefix ? " " : "", zeros);
    }
}

static int number_like(struct tpl_rs *rs, const struct tpl_fcall *c, const char *fname,
                       const char *skel, struct tval *v, struct vn_buf *out)
{
    double d;
    if (v->kind == TV_MISSING)
        return 0;
    if (tpl__tval_number(v, &d) != 0)
        return unreadable(rs, c, fname, "a number", v);
    int rc = format_number(rs, c, skel, d, out);
    if (rc == 0)
        set_str(v, out);
    return rc;
}

static int number_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                        struct tval *v, struct vn_buf *out)
{
    char skel[128];
    const struct tpl_farg *sk = tpl__arg_named(t, c, "skeleton");
    if (sk)
        snprintf(skel, sizeof(skel), "%s", arg_str(t, sk));
    else
        decimals_skeleton(skel, sizeof(skel), "", tpl__arg_named(t, c, "decimals"));
    return number_like(rs, c, "number", skel, v, out);
}

static int currency_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                          int *bad)
{
    int rc = check_args(t, c, 1, "s", "decimals:n", msg, cap, bad);
    if (rc == 0)
        rc = check_int(t, c, tpl__arg_named(t, c, "decimals"), 0, 15, msg, cap, bad);
    const struct tpl_farg *a = tpl__arg_pos(t, c, 0);
    if (rc == 0) {
        const char *s = arg_str(t, a);
        bool ok = a->str_len == 3;
        for (size_t i = 0; ok && i < 3; i++)
            ok = s[i] >= 'A' && s[i] <= 'Z';
        if (!ok) {
            *bad = (int)(a - &t->args[c->arg]);
            snprintf(msg, cap, "expected an ISO 4217 code such as \"EUR\", got \"%.20s\"", s);
            return VN_EINVAL;
        }
    }
    return rc;
}

static int currency_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                          struct tval *v, struct vn_buf *out)
{
    char pre[32], skel[128];
    snprintf(pre, sizeof(pre), "currency/%s", arg_str(t, tpl__arg_pos(t, c, 0)));
    decimals_skeleton(skel, sizeof(skel), pre, tpl__arg_named(t, c, "decimals"));
    return number_like(rs, c, "currency", skel, v, out);
}

static int percent_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                         int *bad)
{
    int rc = check_args(t, c, 0, "", "decimals:n", msg, cap, bad);
    if (rc == 0)
        rc = check_int(t, c, tpl__arg_named(t, c, "decimals"), 0, 15, msg, cap, bad);
    return rc;
}

static int percent_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                         struct tval *v, struct vn_buf *out)
{
    char skel[128];
    decimals_skeleton(skel, sizeof(skel), "percent scale/100", tpl__arg_named(t, c, "decimals"));
    return number_like(rs, c, "percent", skel, v, out);
}

/* ---- plural ------------------------------------------------------------ */

static int plural_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                        int *bad)
{
    int rc = check_args(t, c, 0, "", "zero:s|one:s|two:s|few:s|many:s|other:s|=:s", msg, cap, bad);
    if (rc == 0 && tpl__arg_named(t, c, "other") == NULL) {
        snprintf(msg, cap, "other=\"...\" is required (the form every language has)");
        return VN_EINVAL;
    }
    return rc;
}

static int plural_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                        struct tval *v, struct vn_buf *out)
{
    double d;
    const struct tpl_farg *form = NULL;
    char key[KEY_MAX];

    if (v->kind == TV_MISSING)
        return 0;
    if (tpl__tval_number(v, &d) != 0)
        return unreadable(rs, c, "plural", "a number", v);
    for (unsigned i = 0; i < c->nargs && form == NULL; i++) {
        const struct tpl_farg *a = &t->args[c->arg + i];
        if (a->key_len && tpl__str(t, a->key)[0] == '=' &&
            strtod(tpl__str(t, a->key) + 1, NULL) == d)
            form = a;
    }
    if (form == NULL) {
        const char *loc = icu_locale(rs);
        snprintf(key, sizeof(key), "%s", loc);
        UPluralRules *pr = cache_get(rs, FK_PLURAL, key);
        UErrorCode st = U_ZERO_ERROR;
        if (pr == NULL) {
            pr = uplrules_open(loc, &st);
            if (U_FAILURE(st))
                return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "plural rules for %s: %s", loc,
                                    u_errorName(st));
            cache_put(rs, FK_PLURAL, key, pr);
        }
        UChar kw[16];
        char akw[16];
        int32_t n = uplrules_select(pr, d, kw, (int32_t)VN_ARRAY_LEN(kw), &st);
        if (U_SUCCESS(st) && n > 0 && n < (int32_t)sizeof(akw)) {
            u_UCharsToChars(kw, akw, n);
            akw[n] = '\0';
            form = tpl__arg_named(t, c, akw);
        }
        if (form == NULL)
            form = tpl__arg_named(t, c, "other");
    }
    /* "#" is the number, formatted for the locale; "##" a literal '#' */
    const char *s = tpl__str(t, form->str);
    struct vn_buf num = VN_BUF_INIT;
    for (size_t i = 0; i < form->str_len; i++) {
        if (s[i] != '#') {
            vn_buf_putc(out, s[i]);
        } else if (i + 1 < form->str_len && s[i + 1] == '#') {
            vn_buf_putc(out, '#');
            i++;
        } else {
            if (num.len == 0) {
                int rc = format_number(rs, c, "", d, &num);
                if (rc) {
                    vn_buf_free(&num);
                    return rc;
                }
            }
            vn_buf_append(out, num.data, num.len);
        }
    }
    vn_buf_free(&num);
    set_str(v, out);
    return 0;
}

/* ---- dates ------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/*
 * RFC 3339 date-time ("2026-03-08T09:30:00+03:00", 'T' or ' ', fraction and
 * seconds optional, offset required) or full-date ("2026-03-08": *date_only
 * set, the instant is its UTC midnight). 0 or VN_EINVAL.
 */
int tpl__parse_time(const char *s, size_t len, int64_t *ms, bool *date_only)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    size_t i = 10;
    int64_t frac_ms = 0;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return VN_EINVAL;
    if (y < 1 || mo < 1 || mo > 12 || d < 1)
        return VN_EINVAL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return VN_EINVAL;
    *date_only = len == 10;
    if (len > 10) {
        if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
            return VN_EINVAL;
        if (len < 16 || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi))
            return VN_EINVAL;
        i = 16;
        if (i < len && s[i] == ':') {
            if (len < i + 3 || !digits(s + i + 1, 2, &sec))
                return VN_EINVAL;
            i += 3;
            if (i < len && s[i] == '.') {
                size_t f = ++i;
                int scale = 100;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                    frac_ms += (s[i] - '0') * scale;
                    scale /= 10;
                    i++;
                }
                if (i == f)
                    return VN_EINVAL;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return VN_EINVAL;
        if (sec == 60)
            sec = 59; /* a leap second: ICU has none */
        if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < len && (s[i] == '+' || s[i] == '-')) {
            if (len < i + 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
                !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
                return VN_EINVAL;
            if (s[i] == '-') {
                oh = -oh;
                om = -om;
            }
            i += 6;
        } else {
            return VN_EINVAL; /* no offset: which zone would it be? */
        }
        if (i != len)
            return VN_EINVAL;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (oh * 3600 + om * 60);
    *ms = secs * 1000 + frac_ms;
    return 0;
}

#define MAX_EPOCH_S 253402300799.0 /* 9999-12-31T23:59:59Z */

/* The instant a value names: RFC 3339 text or epoch seconds. */
static int value_time(const struct tval *v, int64_t *ms, bool *date_only)
{
    *date_only = false;
    if (v->kind == TV_JSON && v->j != NULL) {
        enum json_type ty = json_object_get_type(v->j);
        if (ty == json_type_int || ty == json_type_double) {
            double s = json_object_get_double(v->j);
            if (!(fabs(s) <= MAX_EPOCH_S))
                return VN_EINVAL;
            *ms = (int64_t)llround(s * 1000.0);
            return 0;
        }
        if (ty == json_type_string)
            return tpl__parse_time(json_object_get_string(v->j),
                                   (size_t)json_object_get_string_len(v->j), ms, date_only);
        return VN_EINVAL;
    }
    if (v->kind == TV_NUM) {
        if (!(fabs(v->num) <= MAX_EPOCH_S))
            return VN_EINVAL;
        *ms = (int64_t)llround(v->num * 1000.0);
        return 0;
    }
    if (v->kind == TV_STR)
        return tpl__parse_time(v->s, v->len, ms, date_only);
    return VN_EINVAL;
}

static const char STYLES[] = "short|medium|long|full|none";

static UDateFormatStyle style_of(const char *s, UDateFormatStyle dflt)
{
    if (s == NULL)
        return dflt;
    if (strcmp(s, "short") == 0)
        return UDAT_SHORT;
    if (strcmp(s, "medium") == 0)
        return UDAT_MEDIUM;
    if (strcmp(s, "long") == 0)
        return UDAT_LONG;
    if (strcmp(s, "full") == 0)
        return UDAT_FULL;
    return UDAT_NONE;
}

static int datetime_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                          int *bad)
{
    int rc = check_args(t, c, 0, "ss", "tz:s|skeleton:s", msg, cap, bad);
    const struct tpl_farg *sk = tpl__arg_named(t, c, "skeleton");
    for (unsigned i = 0; rc == 0 && i < 2; i++)
        rc = check_choice(t, c, tpl__arg_pos(t, c, i), "style", STYLES, msg, cap, bad);
    if (rc == 0)
        rc = check_tz_arg(t, c, msg, cap, bad);
    if (rc == 0 && sk) {
        const char *s = arg_str(t, sk);
        bool ok = sk->str_len > 0 && sk->str_len <= 40 && tpl__arg_npos(t, c) == 0;
        for (size_t i = 0; ok && s[i]; i++)
            ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z');
        if (!ok) {
            *bad = (int)(sk - &t->args[c->arg]);
            snprintf(msg, cap,
                     "skeleton= takes 1-40 ICU pattern letters (e.g. \"MMMMdHHmm\") "
                     "and no style arguments");
            return VN_EINVAL;
        }
    }
    return rc;
}

static int date_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                      int *bad)
{
    int rc = check_args(t, c, 0, "s", "tz:s", msg, cap, bad);
    if (rc == 0)
        rc = check_choice(t, c, tpl__arg_pos(t, c, 0), "style", "short|medium|long|full", msg, cap,
                          bad);
    if (rc == 0)
        rc = check_tz_arg(t, c, msg, cap, bad);
    return rc;
}

/* Format ms with date/time styles (or a skeleton) in zone tz. */
static int format_time(struct tpl_rs *rs, const struct tpl_fcall *c, int64_t ms,
                       UDateFormatStyle ds, UDateFormatStyle ts, const char *skel, const char *tz,
                       struct vn_buf *out)
{
    char key[KEY_MAX];
    const char *loc = icu_locale(rs);
    snprintf(key, sizeof(key), "%s|%s|%d|%d|%s", loc, tz, (int)ds, (int)ts, skel ? skel : "");
    UDateFormat *df = cache_get(rs, FK_UDAT, key);
    UErrorCode st = U_ZERO_ERROR;
    if (df == NULL) {
        int32_t tzlen = 0;
        UChar *utz = u16(tz, strlen(tz), &tzlen);
        if (skel) {
            UChar pat[128];
            int32_t sklen = 0;
            UChar *usk = u16(skel, strlen(skel), &sklen);
            UDateTimePatternGenerator *pg = udatpg_open(loc, &st);
            int32_t plen =
                udatpg_getBestPattern(pg, usk, sklen, pat, (int32_t)VN_ARRAY_LEN(pat), &st);
            udatpg_close(pg);
            free(usk);
            if (U_SUCCESS(st))
                df = udat_open(UDAT_PATTERN, UDAT_PATTERN, loc, utz, tzlen, pat, plen, &st);
        } else {
            df = udat_open(ts, ds, loc, utz, tzlen, NULL, 0, &st);
        }
        free(utz);
        if (U_FAILURE(st) || df == NULL) {
            if (df)
                udat_close(df);
            return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "date format for %s, %s: %s", loc,
                                tz, u_errorName(st));
        }
        cache_put(rs, FK_UDAT, key, df);
    }
    UChar buf[256];
    int32_t n = udat_format(df, (UDate)ms, buf, (int32_t)VN_ARRAY_LEN(buf), NULL, &st);
    if (U_FAILURE(st))
        return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "cannot format the date: %s",
                            u_errorName(st));
    put_u16(out, buf, n);
    return 0;
}

/* kind: 0 datetime, 1 date, 2 time */
static int time_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                      struct tval *v, struct vn_buf *out, int kind)
{
    static const char *const names[] = {"datetime", "date", "time"};
    int64_t ms;
    bool date_only;
    const char *tz = NULL;
    UDateFormatStyle ds, ts;
    const struct tpl_farg *p0 = tpl__arg_pos(t, c, 0), *p1 = tpl__arg_pos(t, c, 1);
    const struct tpl_farg *sk = tpl__arg_named(t, c, "skeleton");

    if (v->kind == TV_MISSING)
        return 0;
    if (value_time(v, &ms, &date_only) != 0)
        return unreadable(rs, c, names[kind], "an RFC 3339 time or epoch seconds", v);
    switch (kind) {
    case 0:
        ds = style_of(arg_str(t, p0), UDAT_MEDIUM);
        ts = style_of(arg_str(t, p1 ? p1 : p0), UDAT_SHORT);
        break;
    case 1:
        ds = style_of(arg_str(t, p0), UDAT_MEDIUM);
        ts = UDAT_NONE;
        break;
    default:
        ds = UDAT_NONE;
        ts = style_of(arg_str(t, p0), UDAT_SHORT);
        break;
    }
    if (date_only) {
        /* a calendar date names no instant: show it as written, date only */
        if (kind == 2)
            return unreadable(rs, c, names[kind], "a time of day, got a date", v);
        tz = "UTC";
        ts = UDAT_NONE;
        if (ds == UDAT_NONE)
            ds = UDAT_MEDIUM;
    } else {
        int rc = zone(rs, c, arg_str(t, tpl__arg_named(t, c, "tz")), &tz);
        if (rc)
            return rc;
    }
    if (ds == UDAT_NONE && ts == UDAT_NONE && sk == NULL)
        ds = UDAT_MEDIUM;
    int rc = format_time(rs, c, ms, ds, ts, sk && !date_only ? arg_str(t, sk) : NULL, tz, out);
    if (rc == 0)
        set_str(v, out);
    return rc;
}

static int datetime_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                          struct tval *v, struct vn_buf *out)
{
    return time_apply(rs, t, c, v, out, 0);
}

static int date_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                      struct tval *v, struct vn_buf *out)
{
    return time_apply(rs, t, c, v, out, 1);
}

static int time_only_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                           struct tval *v, struct vn_buf *out)
{
    return time_apply(rs, t, c, v, out, 2);
}

static int relative_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                          int *bad)
{
    int rc = check_args(t, c, 0, "s", "", msg, cap, bad);
    if (rc == 0)
        rc = check_choice(t, c, tpl__arg_pos(t, c, 0), "style", "long|short|narrow", msg, cap, bad);
    return rc;
}

/* Julian day number of ms in zone tz (calendar days, not 24-hour spans). */
static int julian_day(struct tpl_rs *rs, const char *tz, int64_t ms, int32_t *jd)
{
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "%s", tz);
    UCalendar *cal = cache_get(rs, FK_CAL, key);
    UErrorCode st = U_ZERO_ERROR;
    if (cal == NULL) {
        int32_t tzlen = 0;
        UChar *utz = u16(tz, strlen(tz), &tzlen);
        cal = ucal_open(utz, tzlen, "en_US_POSIX", UCAL_GREGORIAN, &st);
        free(utz);
        if (U_FAILURE(st))
            return VN_EINVAL;
        cache_put(rs, FK_CAL, key, cal);
    }
    ucal_setMillis(cal, (UDate)ms, &st);
    *jd = ucal_get(cal, UCAL_JULIAN_DAY, &st);
    return U_SUCCESS(st) ? 0 : VN_EINVAL;
}

static int relative_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                          struct tval *v, struct vn_buf *out)
{
    int64_t ms;
    bool date_only;
    const char *tz;
    const char *style = arg_str(t, tpl__arg_pos(t, c, 0));
    UDateRelativeDateTimeFormatterStyle us = UDAT_STYLE_LONG;
    char key[KEY_MAX];

    if (v->kind == TV_MISSING)
        return 0;
    if (value_time(v, &ms, &date_only) != 0)
        return unreadable(rs, c, "relative", "an RFC 3339 time or epoch seconds", v);
    if (style && strcmp(style, "short") == 0)
        us = UDAT_STYLE_SHORT;
    else if (style && strcmp(style, "narrow") == 0)
        us = UDAT_STYLE_NARROW;
    int rc = zone(rs, c, NULL, &tz);
    if (rc)
        return rc;
    int64_t now = now_ms(rs), delta = ms - now;
    double amount;
    URelativeDateTimeUnit unit;
    int64_t ad = delta < 0 ? -delta : delta;
    if (!date_only && ad < 45 * 1000LL) {
        amount = 0;
        unit = UDAT_REL_UNIT_SECOND; /* "now" */
    } else if (!date_only && ad < 45 * 60 * 1000LL) {
        amount = (double)llround((double)delta / 60000.0);
        unit = UDAT_REL_UNIT_MINUTE;
    } else if (!date_only && ad < 22 * 3600 * 1000LL) {
        amount = (double)llround((double)delta / 3600000.0);
        unit = UDAT_REL_UNIT_HOUR;
    } else {
        /* Calendar days where the recipient is: "tomorrow" is the next date,
         * not 24 hours later. A bare date is compared as written. */
        int32_t a, b;
        if (julian_day(rs, date_only ? "UTC" : tz, ms, &a) != 0 || julian_day(rs, tz, now, &b) != 0)
            return unreadable(rs, c, "relative", "a time ICU can place", v);
        int32_t dd = a - b;
        int32_t add = dd < 0 ? -dd : dd;
        if (add < 7) {
            amount = dd;
            unit = UDAT_REL_UNIT_DAY;
        } else if (add < 28) {
            amount = (double)lround(dd / 7.0);
            unit = UDAT_REL_UNIT_WEEK;
        } else if (add < 335) {
            amount = (double)lround(dd / 30.44);
            unit = UDAT_REL_UNIT_MONTH;
        } else {
            amount = (double)lround(dd / 365.25);
            unit = UDAT_REL_UNIT_YEAR;
        }
    }
    const char *loc = icu_locale(rs);
    snprintf(key, sizeof(key), "%s|%d", loc, (int)us);
    URelativeDateTimeFormatter *rf = cache_get(rs, FK_RELDATE, key);
    UErrorCode st = U_ZERO_ERROR;
    if (rf == NULL) {
        rf = ureldatefmt_open(loc, NULL, us, UDISPCTX_CAPITALIZATION_NONE, &st);
        if (U_FAILURE(st))
            return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "relative format for %s: %s", loc,
                                u_errorName(st));
        cache_put(rs, FK_RELDATE, key, rf);
    }
    UChar buf[128];
    int32_t n = ureldatefmt_format(rf, amount, unit, buf, (int32_t)VN_ARRAY_LEN(buf), &st);
    if (U_FAILURE(st))
        return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "relative format: %s", u_errorName(st));
    put_u16(out, buf, n);
    set_str(v, out);
    return 0;
}

/* ---- lists and counts -------------------------------------------------- */

static int list_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                      int *bad)
{
    int rc = check_args(t, c, 0, "ss", "", msg, cap, bad);
    if (rc == 0)
        rc = check_choice(t, c, tpl__arg_pos(t, c, 0), "list type", "and|or|unit", msg, cap, bad);
    if (rc == 0)
        rc = check_choice(t, c, tpl__arg_pos(t, c, 1), "width", "wide|short|narrow", msg, cap, bad);
    return rc;
}

#define LIST_MAX 1000

static int list_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                      struct tval *v, struct vn_buf *out)
{
    const char *type = arg_str(t, tpl__arg_pos(t, c, 0));
    const char *width = arg_str(t, tpl__arg_pos(t, c, 1));
    UListFormatterType ut = ULISTFMT_TYPE_AND;
    UListFormatterWidth uw = ULISTFMT_WIDTH_WIDE;
    char key[KEY_MAX];

    if (v->kind == TV_MISSING)
        return 0;
    if (v->kind != TV_JSON || v->j == NULL || json_object_get_type(v->j) != json_type_array)
        return unreadable(rs, c, "list", "an array", v);
    if (type && strcmp(type, "or") == 0)
        ut = ULISTFMT_TYPE_OR;
    else if (type && strcmp(type, "unit") == 0)
        ut = ULISTFMT_TYPE_UNITS;
    if (width && strcmp(width, "short") == 0)
        uw = ULISTFMT_WIDTH_SHORT;
    else if (width && strcmp(width, "narrow") == 0)
        uw = ULISTFMT_WIDTH_NARROW;
    const char *loc = icu_locale(rs);
    snprintf(key, sizeof(key), "%s|%d|%d", loc, (int)ut, (int)uw);
    UListFormatter *lf = cache_get(rs, FK_LIST, key);
    UErrorCode st = U_ZERO_ERROR;
    if (lf == NULL) {
        lf = ulistfmt_openForType(loc, ut, uw, &st);
        if (U_FAILURE(st))
            return tpl__rs_fail(rs, VN_EINVAL, c->line, c->col, "list format for %s: %s", loc,
                                u_errorName(st));
        cache_put(rs, FK_LIST, key, lf);
    }
    size_t n = json_object_array_length(v->j);
    if (n > LIST_MAX)
        n = LIST_MAX;
    UChar **items = xcalloc(n + 1, sizeof(*items));
    int32_t *lens = xcalloc(n + 1, sizeof(*lens));
    for (size_t i = 0; i < n; i++) {
        struct tval e = {TV_JSON, json_object_array_get_idx(v->j, i), NULL, 0, 0};
        const char *s;
        size_t len;
        tpl__stringify(&e, &rs->tmp, &s, &len);
        items[i] = u16(s, len, &lens[i]);
    }
    int32_t need = ulistfmt_format(lf, (const UChar *const *)items, lens, (int32_t)n, NULL, 0, &st);
    if (st == U_BUFFER_OVERFLOW_ERROR)
        st = U_ZERO_ERROR;
    UChar *r = xmalloc(((size_t)need + 1) * sizeof(UChar));
    need = ulistfmt_format(lf, (const UChar *const *)items, lens, (int32_t)n, r, need + 1, &st);
    if (U_SUCCESS(st)) {
        put_u16(out, r, need);
        set_str(v, out);
    }
    free(r);
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
    free(lens);
    return 0;
}

static int join_check(const struct tpl *t, const struct tpl_fcall *c, char *msg, size_t cap,
                      int *bad)
{
    return check_args(t, c, 1, "s", "", msg, cap, bad);
}

static int join_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                      struct tval *v, struct vn_buf *out)
{
    const struct tpl_farg *sep = tpl__arg_pos(t, c, 0);
    if (v->kind == TV_MISSING)
        return 0;
    if (v->kind != TV_JSON || v->j == NULL || json_object_get_type(v->j) != json_type_array)
        return unreadable(rs, c, "join", "an array", v);
    size_t n = json_object_array_length(v->j);
    for (size_t i = 0; i < n; i++) {
        struct tval e = {TV_JSON, json_object_array_get_idx(v->j, i), NULL, 0, 0};
        const char *s;
        size_t len;
        if (i)
            vn_buf_append(out, tpl__str(t, sep->str), sep->str_len);
        tpl__stringify(&e, &rs->tmp, &s, &len);
        vn_buf_append(out, s, len);
        if (out->len > rs->lim.max_output)
            return tpl__rs_fail(rs, VN_ETOOBIG, c->line, c->col,
                                "join: output exceeds the limit of %zu bytes", rs->lim.max_output);
    }
    set_str(v, out);
    return 0;
}

static int count_apply(struct tpl_rs *rs, const struct tpl *t, const struct tpl_fcall *c,
                       struct tval *v, struct vn_buf *out)
{
    VN_UNUSED(t);
    VN_UNUSED(out);
    if (v->kind == TV_MISSING || (v->kind == TV_JSON && v->j == NULL)) {
        v->kind = TV_NUM;
        v->num = 0;
        return 0;
    }
    if (v->kind == TV_JSON && json_object_get_type(v->j) == json_type_array) {
        v->kind = TV_NUM;
        v->num = (double)json_object_array_length(v->j);
        return 0;
    }
    if (v->kind == TV_JSON && json_object_get_type(v->j) == json_type_object) {
        v->kind = TV_NUM;
        v->num = (double)json_object_object_length(v->j);
        return 0;
    }
    return unreadable(rs, c, "count", "an array or object", v);
}

/* ---- the table --------------------------------------------------------- */

static const struct tpl_filter_def filters[] = {
    {"default", default_check, default_apply},
    {"truncate", truncate_check, truncate_apply},
    {"upper", noargs_check, upper_apply},
    {"lower", noargs_check, lower_apply},
    {"capitalize", noargs_check, capitalize_apply},
    {"number", number_check, number_apply},
    {"currency", currency_check, currency_apply},
    {"percent", percent_check, percent_apply},
    {"plural", plural_check, plural_apply},
    {"datetime", datetime_check, datetime_apply},
    {"date", date_check, date_apply},
    {"time", date_check, time_only_apply},
    {"relative", relative_check, relative_apply},
    {"list", list_check, list_apply},
    {"join", join_check, join_apply},
    {"count", noargs_check, count_apply},
};

int tpl__filter_find(const char *name, size_t len)
{
    for (size_t i = 0; i < VN_ARRAY_LEN(filters); i++)
        if (strlen(filters[i].name) == len && memcmp(filters[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

const struct tpl_filter_def *tpl__filter_get(int id)
{
    return &filters[id];
}

int tpl__filter_default_id(void)
{
    return 0;
}

const char *tpl__filter_names(void)
{
    return "default truncate upper lower capitalize number currency percent plural datetime "
           "date time relative list join count";
}
