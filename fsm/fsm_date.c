/*
 * fsm_date.c - POSIX TZ rules and the date/time phrases of datetime inputs.
 *
 * Calendar arithmetic is Howard Hinnant's days-from-civil algorithm (exact
 * for the proleptic Gregorian calendar, no tables, no libc time functions, so
 * no TZ environment and no locks). Instants are clamped to about +-35000
 * years before any arithmetic, so no input overflows.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"
#include "fsm/fsm_date.h"
#include "fsm/fsm_int.h"

struct fsm_tz_rule {
    char kind; /* 'J' (1..365, no Feb 29), 'N' (0..365), 'M' (month.week.day) */
    int n, m, w, d;
    int32_t time; /* seconds after local midnight; may be negative or > 24 h */
};

struct fsm_tz {
    char name[128];
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct fsm_tz_rule start, end;
};

#define FSM_T_CLAMP ((int64_t)1 << 40) /* seconds: about 35000 years */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int64_t fsm_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void fsm_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int weekday_of(int64_t days) /* 0 = Sunday */
{
    return (int)(((days % 7) + 7 + 4) % 7);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_len(int64_t y, int m)
{
    static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* ---- POSIX TZ ---------------------------------------------------------------- */

static int tz_parse_name(const char **pp)
{
    const char *p = *pp;
    if (*p == '<') {
        const char *q = strchr(p, '>');
        if (q == NULL || q == p + 1)
            return -1;
        *pp = q + 1;
        return 0;
    }
    int n = 0;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
        p++;
        n++;
    }
    if (n < 3)
        return -1;
    *pp = p;
    return 0;
}

/* [+-]h[h[h]][:mm[:ss]] with hours up to max_h, into seconds. */
static int tz_parse_hms(const char **pp, int max_h, int32_t *out)
{
    const char *p = *pp;
    int sign = 1, h = 0, mi = 0, s = 0, digits = 0;
    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    while (*p >= '0' && *p <= '9' && digits < 3) {
        h = h * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || h > max_h)
        return -1;
    if (*p == ':') {
        p++;
        if (!(p[0] >= '0' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9'))
            return -1;
        mi = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':') {
            p++;
            if (!(p[0] >= '0' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9'))
                return -1;
            s = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
        }
    }
    *out = sign * (h * 3600 + mi * 60 + s);
    *pp = p;
    return 0;
}

static int tz_parse_num(const char **pp, int lo, int hi, int *out)
{
    const char *p = *pp;
    int n = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4) {
        n = n * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || n < lo || n > hi)
        return -1;
    *out = n;
    *pp = p;
    return 0;
}

static int tz_parse_rule(const char **pp, struct fsm_tz_rule *r)
{
    const char *p = *pp;
    memset(r, 0, sizeof(*r));
    if (*p == 'J') {
        p++;
        r->kind = 'J';
        if (tz_parse_num(&p, 1, 365, &r->n) != 0)
            return -1;
    } else if (*p == 'M') {
        p++;
        r->kind = 'M';
        if (tz_parse_num(&p, 1, 12, &r->m) != 0 || *p++ != '.' ||
            tz_parse_num(&p, 1, 5, &r->w) != 0 || *p++ != '.' || tz_parse_num(&p, 0, 6, &r->d) != 0)
            return -1;
    } else {
        r->kind = 'N';
        if (tz_parse_num(&p, 0, 365, &r->n) != 0)
            return -1;
    }
    r->time = 2 * 3600;
    if (*p == '/') {
        p++;
        if (tz_parse_hms(&p, 167, &r->time) != 0)
            return -1;
    }
    *pp = p;
    return 0;
}

struct fsm_tz *fsm_tz_parse(const char *posix, char *err, size_t errlen)
{
    struct fsm_tz tz;
    const char *p = posix;
    int32_t off;

    memset(&tz, 0, sizeof(tz));
    if (posix == NULL || strlen(posix) >= sizeof(tz.name)) {
        snprintf(err, errlen, "not a POSIX TZ string");
        return NULL;
    }
    snprintf(tz.name, sizeof(tz.name), "%s", posix);
    if (tz_parse_name(&p) != 0 || tz_parse_hms(&p, 24, &off) != 0)
        goto bad;
    tz.std_off = -off;
    tz.dst_off = tz.std_off;
    if (*p != '\0') {
        if (tz_parse_name(&p) != 0)
            goto bad;
        tz.has_dst = true;
        tz.dst_off = tz.std_off + 3600;
        if (*p != ',' && *p != '\0') {
            if (tz_parse_hms(&p, 24, &off) != 0)
                goto bad;
            tz.dst_off = -off;
        }
        if (*p == '\0') { /* POSIX leaves the default to the system; use the US rule */
            const char *us = "M3.2.0,M11.1.0";
            tz_parse_rule(&us, &tz.start);
            us++;
            tz_parse_rule(&us, &tz.end);
        } else {
            if (*p++ != ',' || tz_parse_rule(&p, &tz.start) != 0 || *p++ != ',' ||
                tz_parse_rule(&p, &tz.end) != 0 || *p != '\0')
                goto bad;
        }
    }
    struct fsm_tz *out = xmalloc(sizeof(*out));
    *out = tz;
    return out;
bad:
    snprintf(err, errlen, "not a POSIX TZ string: \"%s\"", posix);
    return NULL;
}

static struct fsm_tz *tz_fixed(const char *name, int32_t off)
{
    struct fsm_tz *tz = xcalloc(1, sizeof(*tz));
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    tz->std_off = tz->dst_off = off;
    return tz;
}

/* "+03:00", "-5", "UTC+3", "GMT-05:30" (signs as people write them: east is +). */
static int parse_fixed_offset(const char *s, int32_t *off)
{
    if (strncasecmp(s, "UTC", 3) == 0 || strncasecmp(s, "GMT", 3) == 0)
        s += 3;
    if (*s != '+' && *s != '-')
        return -1;
    const char *p = s;
    int32_t v;
    if (tz_parse_hms(&p, 14, &v) != 0 || *p != '\0')
        return -1;
    *off = v;
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The POSIX rule at the end of a TZif v2+ file, or NULL. */
static char *tzif_footer(const unsigned char *b, size_t len)
{
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (len - off < 44 || memcmp(b + off, "TZif", 4) != 0)
            return NULL;
        if (pass == 0 && b[off + 4] < '2')
            return NULL;
        uint64_t isut = be32(b + off + 20), isstd = be32(b + off + 24), leap = be32(b + off + 28),
                 timecnt = be32(b + off + 32), typecnt = be32(b + off + 36),
                 charcnt = be32(b + off + 40);
        if (isut > 65536 || isstd > 65536 || leap > 65536 || timecnt > 65536 || typecnt > 65536 ||
            charcnt > 65536)
            return NULL;
        uint64_t tsize = pass == 0 ? 4 : 8;
        uint64_t size =
            timecnt * (tsize + 1) + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
        if (size > len - off - 44)
            return NULL;
        off += 44 + (size_t)size;
    }
    if (off >= len || b[off] != '\n')
        return NULL;
    const unsigned char *start = b + off + 1;
    const unsigned char *nl = memchr(start, '\n', len - off - 1);
    if (nl == NULL || nl == start)
        return NULL;
    return xstrndup((const char *)start, (size_t)(nl - start));
}

struct fsm_tz *fsm_tz_load(const char *name, const char *zoneinfo_dir, char *err, size_t errlen)
{
    int32_t off = 0;
    if (name == NULL || *name == '\0') {
        snprintf(err, errlen, "empty time zone name");
        return NULL;
    }
    if (strcasecmp(name, "UTC") == 0 || strcasecmp(name, "GMT") == 0 ||
        strcmp(name, "Etc/UTC") == 0 || strcmp(name, "Z") == 0)
        return tz_fixed(name, 0);
    if (parse_fixed_offset(name, &off) == 0)
        return tz_fixed(name, off);
    size_t n = strlen(name);
    bool ok = n < 100 && name[0] != '/' && strstr(name, "..") == NULL;
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '/' || c == '_' || c == '-' || c == '+';
    }
    if (!ok) {
        snprintf(err, errlen, "not a time zone name: \"%.60s\"", name);
        return NULL;
    }
    char *path = xasprintf("%s/%s", zoneinfo_dir ? zoneinfo_dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    free(path);
    if (f == NULL) {
        snprintf(err, errlen, "unknown time zone \"%s\"", name);
        return NULL;
    }
    unsigned char *buf = xmalloc(256 * 1024);
    size_t len = fread(buf, 1, 256 * 1024, f);
    fclose(f);
    char *rule = tzif_footer(buf, len);
    free(buf);
    if (rule == NULL) {
        snprintf(err, errlen, "time zone \"%s\": no rule for the present (not a TZif v2+ file)",
                 name);
        return NULL;
    }
    struct fsm_tz *tz = fsm_tz_parse(rule, err, errlen);
    free(rule);
    if (tz != NULL)
        snprintf(tz->name, sizeof(tz->name), "%s", name);
    return tz;
}

void fsm_tz_free(struct fsm_tz *tz)
{
    free(tz);
}

const char *fsm_tz_name(const struct fsm_tz *tz)
{
    return tz ? tz->name : "UTC";
}

static int64_t rule_day(const struct fsm_tz_rule *r, int64_t y)
{
    int64_t jan1 = fsm_days_from_civil(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60 ? 1 : 0);
    if (r->kind == 'N')
        return jan1 + r->n;
    int64_t first = fsm_days_from_civil(y, r->m, 1);
    int day = (r->d - weekday_of(first) + 7) % 7 + 7 * (r->w - 1);
    while (day >= month_len(y, r->m))
        day -= 7;
    return first + day;
}

int fsm_tz_offset(const struct fsm_tz *tz, int64_t t)
{
    if (tz == NULL)
        return 0;
    if (!tz->has_dst)
        return tz->std_off;
    if (t > FSM_T_CLAMP)
        t = FSM_T_CLAMP;
    if (t < -FSM_T_CLAMP)
        t = -FSM_T_CLAMP;
    int64_t y;
    int m, d;
    fsm_civil_from_days(floor_div(t + tz->std_off, 86400), &y, &m, &d);
    int64_t s = rule_day(&tz->start, y) * 86400 + tz->start.time - tz->std_off;
    int64_t e = rule_day(&tz->end, y) * 86400 + tz->end.time - tz->dst_off;
    bool dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    return dst ? tz->dst_off : tz->std_off;
}

int64_t fsm_tz_local_to_utc(const struct fsm_tz *tz, int64_t local)
{
    if (tz == NULL)
        return local;
    if (!tz->has_dst)
        return local - tz->std_off;
    int32_t lo = tz->std_off < tz->dst_off ? tz->std_off : tz->dst_off;
    int32_t hi = tz->std_off < tz->dst_off ? tz->dst_off : tz->std_off;
    int64_t u_hi = local - hi, u_lo = local - lo;
    if (fsm_tz_offset(tz, u_hi) == hi)
        return u_hi; /* also the first of two in an overlap */
    return u_lo;     /* a standard time, or a time in the gap read with the offset before it */
}

void fsm_format_rfc3339(int64_t utc, const struct fsm_tz *tz, char *buf, size_t len)
{
    if (utc > FSM_T_CLAMP)
        utc = FSM_T_CLAMP;
    if (utc < -FSM_T_CLAMP)
        utc = -FSM_T_CLAMP;
    int off = fsm_tz_offset(tz, utc);
    int64_t local = utc + off;
    int64_t days = floor_div(local, 86400);
    int64_t sod = local - days * 86400;
    int64_t y;
    int m, d;
    fsm_civil_from_days(days, &y, &m, &d);
    int aoff = off < 0 ? -off : off;
    snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (long long)y, m, d,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), off < 0 ? '-' : '+',
             aoff / 3600, aoff / 60 % 60);
}

/* ---- phrases ---------------------------------------------------------------- */

struct word {
    const char *w;
    int v;
};

static int lookup(const struct word *tab, const char *s)
{
    for (size_t i = 0; tab[i].w != NULL; i++)
        if (strcmp(tab[i].w, s) == 0)
            return tab[i].v;
    return -1;
}

static const struct word units[] = {
    {"s", 1},           {"sec", 1},         {"secs", 1},        {"second", 1},
    {"seconds", 1},     {"сек", 1},         {"секунда", 1},     {"секунду", 1},
    {"секунды", 1},     {"секунд", 1},      {"m", 60},          {"min", 60},
    {"mins", 60},       {"minute", 60},     {"minutes", 60},    {"мин", 60},
    {"минута", 60},     {"минуту", 60},     {"минуты", 60},     {"минут", 60},
    {"h", 3600},        {"hr", 3600},       {"hrs", 3600},      {"hour", 3600},
    {"hours", 3600},    {"ч", 3600},        {"час", 3600},      {"часа", 3600},
    {"часов", 3600},    {"d", 86400},       {"day", 86400},     {"days", 86400},
    {"день", 86400},    {"дня", 86400},     {"дней", 86400},    {"сутки", 86400},
    {"суток", 86400},   {"w", 604800},      {"week", 604800},   {"weeks", 604800},
    {"нед", 604800},    {"неделя", 604800}, {"неделю", 604800}, {"недели", 604800},
    {"недель", 604800}, {NULL, 0},
};

/* A unit word that means "one of it" on its own: "через час", "через неделю". */
static const struct word lone_units[] = {
    {"секунду", 1},   {"минуту", 60},     {"час", 3600},     {"день", 86400},
    {"сутки", 86400}, {"неделю", 604800}, {"полчаса", 1800}, {NULL, 0},
};

static const struct word numbers[] = {
    {"a", 1},         {"an", 1},     {"one", 1},      {"two", 2},         {"three", 3},
    {"four", 4},      {"five", 5},   {"six", 6},      {"seven", 7},       {"eight", 8},
    {"nine", 9},      {"ten", 10},   {"fifteen", 15}, {"twenty", 20},     {"thirty", 30},
    {"один", 1},      {"одна", 1},   {"одну", 1},     {"два", 2},         {"две", 2},
    {"три", 3},       {"четыре", 4}, {"пять", 5},     {"шесть", 6},       {"семь", 7},
    {"восемь", 8},    {"девять", 9}, {"десять", 10},  {"пятнадцать", 15}, {"двадцать", 20},
    {"тридцать", 30}, {"сорок", 40}, {NULL, 0},
};

static const struct word weekdays[] = {
    {"sunday", 0},   {"sun", 0},     {"monday", 1},      {"mon", 1},     {"tuesday", 2},
    {"tue", 2},      {"tues", 2},    {"wednesday", 3},   {"wed", 3},     {"thursday", 4},
    {"thu", 4},      {"thur", 4},    {"thurs", 4},       {"friday", 5},  {"fri", 5},
    {"saturday", 6}, {"sat", 6},     {"воскресенье", 0}, {"вс", 0},      {"понедельник", 1},
    {"пн", 1},       {"вторник", 2}, {"вт", 2},          {"среда", 3},   {"среду", 3},
    {"ср", 3},       {"четверг", 4}, {"чт", 4},          {"пятница", 5}, {"пятницу", 5},
    {"пт", 5},       {"суббота", 6}, {"субботу", 6},     {"сб", 6},      {NULL, 0},
};

static const struct word months[] = {
    {"january", 1},   {"jan", 1},      {"february", 2},  {"feb", 2},      {"march", 3},
    {"mar", 3},       {"april", 4},    {"apr", 4},       {"may", 5},      {"june", 6},
    {"jun", 6},       {"july", 7},     {"jul", 7},       {"august", 8},   {"aug", 8},
    {"september", 9}, {"sep", 9},      {"sept", 9},      {"october", 10}, {"oct", 10},
    {"november", 11}, {"nov", 11},     {"december", 12}, {"dec", 12},     {"января", 1},
    {"январь", 1},    {"февраля", 2},  {"февраль", 2},   {"марта", 3},    {"март", 3},
    {"апреля", 4},    {"апрель", 4},   {"мая", 5},       {"май", 5},      {"июня", 6},
    {"июнь", 6},      {"июля", 7},     {"июль", 7},      {"августа", 8},  {"август", 8},
    {"сентября", 9},  {"сентябрь", 9}, {"октября", 10},  {"октябрь", 10}, {"ноября", 11},
    {"ноябрь", 11},   {"декабря", 12}, {"декабрь", 12},  {NULL, 0},
};

/* Words that only join the parts: "at 9", "в 9", "on monday", "во вторник". */
static bool is_filler(const char *s)
{
    return strcmp(s, "at") == 0 || strcmp(s, "on") == 0 || strcmp(s, "в") == 0 ||
           strcmp(s, "во") == 0 || strcmp(s, "the") == 0;
}

#define MAX_TOK 16

struct dt {
    char *tok[MAX_TOK];
    int n;
    /* what was read */
    bool have_date, have_time, weekday_mode, roll_year, bare_hour, filler_before_time;
    int64_t y;
    int m, d, w;
    int day_offset; /* today/tomorrow: days from today */
    bool relative_day;
    int h, mi, s;
};

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num_of(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n && i < 6; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* "YYYY-MM-DD", optionally followed by "tHH:MM[:SS]". */
static bool read_iso(struct dt *x, const char *t)
{
    size_t n = strlen(t);
    if (n < 10 || !all_digits(t, 4) || t[4] != '-' || !all_digits(t + 5, 2) || t[7] != '-' ||
        !all_digits(t + 8, 2))
        return false;
    x->y = num_of(t, 4);
    x->m = num_of(t + 5, 2);
    x->d = num_of(t + 8, 2);
    if (n == 10)
        return true;
    const char *p = t + 10;
    if (*p != 't')
        return false;
    p++;
    size_t r = strlen(p);
    if ((r != 5 && r != 8) || !all_digits(p, 2) || p[2] != ':' || !all_digits(p + 3, 2))
        return false;
    if (r == 8 && (p[5] != ':' || !all_digits(p + 6, 2)))
        return false;
    x->h = num_of(p, 2);
    x->mi = num_of(p + 3, 2);
    x->s = r == 8 ? num_of(p + 6, 2) : 0;
    if (x->h > 23 || x->mi > 59 || x->s > 59)
        return false;
    x->have_time = true;
    return true;
}

/* "DD.MM", "DD.MM.YY", "DD.MM.YYYY" (also with '/'). */
static bool read_dotted(struct dt *x, const char *t, int64_t this_year)
{
    const char *p = t;
    size_t a = strspn(p, "0123456789");
    if (a < 1 || a > 2 || (p[a] != '.' && p[a] != '/'))
        return false;
    char sep = p[a];
    int d = num_of(p, a);
    p += a + 1;
    size_t b = strspn(p, "0123456789");
    if (b < 1 || b > 2)
        return false;
    int m = num_of(p, b);
    p += b;
    int64_t y = this_year;
    bool roll = true;
    if (*p == sep) {
        p++;
        size_t c = strspn(p, "0123456789");
        if (c != 2 && c != 4)
            return false;
        y = num_of(p, c);
        if (c == 2)
            y += 2000;
        p += c;
        roll = false;
    }
    if (*p != '\0')
        return false;
    x->d = d;
    x->m = m;
    x->y = y;
    x->roll_year = roll;
    return true;
}

/* "1st" -> 1, "21" -> 21 */
static int read_day_number(const char *t)
{
    size_t n = strspn(t, "0123456789");
    if (n < 1 || n > 2)
        return -1;
    const char *rest = t + n;
    if (*rest != '\0' && strcmp(rest, "st") != 0 && strcmp(rest, "nd") != 0 &&
        strcmp(rest, "rd") != 0 && strcmp(rest, "th") != 0 && strcmp(rest, "-го") != 0 &&
        strcmp(rest, "-е") != 0)
        return -1;
    return num_of(t, n);
}

static bool read_date(struct dt *x, int *i, int64_t this_year)
{
    const char *t = x->tok[*i];
    const char *t1 = *i + 1 < x->n ? x->tok[*i + 1] : NULL;
    const char *t2 = *i + 2 < x->n ? x->tok[*i + 2] : NULL;
    int v;

    if (strcmp(t, "today") == 0 || strcmp(t, "сегодня") == 0) {
        x->relative_day = true;
        x->day_offset = 0;
    } else if (strcmp(t, "tomorrow") == 0 || strcmp(t, "завтра") == 0) {
        x->relative_day = true;
        x->day_offset = 1;
    } else if (strcmp(t, "послезавтра") == 0) {
        x->relative_day = true;
        x->day_offset = 2;
    } else if (strcmp(t, "day") == 0 && t1 && strcmp(t1, "after") == 0 && t2 &&
               strcmp(t2, "tomorrow") == 0) {
        x->relative_day = true;
        x->day_offset = 2;
        *i += 2;
    } else if ((v = lookup(weekdays, t)) >= 0) {
        x->weekday_mode = true;
        x->w = v;
    } else if (read_iso(x, t) || read_dotted(x, t, this_year)) {
        /* set by the readers */
    } else if ((v = read_day_number(t)) > 0 && t1 && lookup(months, t1) > 0) {
        x->d = v;
        x->m = lookup(months, t1);
        x->y = this_year;
        x->roll_year = true;
        *i += 1;
        if (t2 && strlen(t2) == 4 && all_digits(t2, 4)) {
            x->y = num_of(t2, 4);
            x->roll_year = false;
            *i += 1;
        }
    } else if ((v = lookup(months, t)) > 0 && t1 && read_day_number(t1) > 0) {
        x->m = v;
        x->d = read_day_number(t1);
        x->y = this_year;
        x->roll_year = true;
        *i += 1;
        if (t2 && strlen(t2) == 4 && all_digits(t2, 4)) {
            x->y = num_of(t2, 4);
            x->roll_year = false;
            *i += 1;
        }
    } else {
        return false;
    }
    *i += 1;
    x->have_date = true;
    return true;
}

/* 'a' (am), 'p' (pm), 'm' (утра: morning), 'd' (дня: afternoon), 'e' (вечера),
   'n' (ночи), or 0. */
static char meridiem(const char *s)
{
    if (strcmp(s, "am") == 0 || strcmp(s, "a.m") == 0)
        return 'a';
    if (strcmp(s, "pm") == 0 || strcmp(s, "p.m") == 0)
        return 'p';
    if (strcmp(s, "утра") == 0)
        return 'm';
    if (strcmp(s, "дня") == 0)
        return 'd';
    if (strcmp(s, "вечера") == 0)
        return 'e';
    if (strcmp(s, "ночи") == 0)
        return 'n';
    return 0;
}

static bool apply_meridiem(int *h, char mer)
{
    switch (mer) {
    case 0:
        return *h <= 23;
    case 'a':
    case 'm':
    case 'n':
        if (*h < 1 || *h > 12)
            return false;
        if (*h == 12)
            *h = 0;
        return mer != 'm' || *h >= 4;
    case 'p':
        if (*h < 1 || *h > 12)
            return false;
        if (*h != 12)
            *h += 12;
        return true;
    case 'd':
        if (*h == 12)
            return true;
        if (*h < 1 || *h > 6)
            return false;
        *h += 12;
        return true;
    case 'e':
        if (*h < 4 || *h > 11)
            return false;
        *h += 12;
        return true;
    }
    return false;
}

static bool read_time(struct dt *x, int *i)
{
    const char *t = x->tok[*i];
    if (strcmp(t, "noon") == 0 || strcmp(t, "полдень") == 0) {
        x->h = 12;
        x->mi = 0;
    } else if (strcmp(t, "midnight") == 0 || strcmp(t, "полночь") == 0) {
        x->h = 0;
        x->mi = 0;
    } else {
        size_t a = strspn(t, "0123456789");
        if (a < 1 || a > 2)
            return false;
        int h = num_of(t, a), mi = 0;
        const char *p = t + a;
        bool colon = false;
        if (*p == ':') {
            if (!all_digits(p + 1, 2))
                return false;
            mi = num_of(p + 1, 2);
            p += 3;
            colon = true;
        }
        char mer = 0;
        if (*p == '\0' && !colon && *i + 1 < x->n &&
            (strcmp(x->tok[*i + 1], "час") == 0 || strcmp(x->tok[*i + 1], "часа") == 0 ||
             strcmp(x->tok[*i + 1], "часов") == 0 || strcmp(x->tok[*i + 1], "o'clock") == 0)) {
            *i += 1;      /* "в 9 часов", "9 o'clock" */
            colon = true; /* as definite as "9:00" */
        }
        if (*p != '\0') {
            mer = meridiem(p);
            if (mer == 0)
                return false;
        } else if (*i + 1 < x->n && meridiem(x->tok[*i + 1]) != 0) {
            mer = meridiem(x->tok[*i + 1]);
            *i += 1;
        }
        if (mi > 59 || !apply_meridiem(&h, mer))
            return false;
        x->h = h;
        x->mi = mi;
        x->bare_hour = !colon && mer == 0;
    }
    x->s = 0;
    *i += 1;
    x->have_time = true;
    return true;
}

/* "2h", "30мин": a number glued to a unit. */
static bool split_glued(const char *t, int64_t *n, int64_t *unit)
{
    size_t a = strspn(t, "0123456789");
    if (a == 0 || a > 6 || t[a] == '\0')
        return false;
    int u = lookup(units, t + a);
    if (u < 0)
        return false;
    *n = num_of(t, a);
    *unit = u;
    return true;
}

static bool read_relative(struct dt *x, int i, int64_t *delta)
{
    int64_t total = 0;
    int amounts = 0;
    while (i < x->n) {
        const char *t = x->tok[i];
        const char *t1 = i + 1 < x->n ? x->tok[i + 1] : NULL;
        int64_t n = 0, unit = 0;
        int v;
        if ((strcmp(t, "and") == 0 || strcmp(t, "и") == 0) && amounts > 0) {
            i++;
            continue;
        }
        if ((v = lookup(lone_units, t)) > 0) {
            n = 1;
            unit = v;
            i++;
        } else if (strcmp(t, "half") == 0 && t1 && strcmp(t1, "an") == 0 && i + 2 < x->n &&
                   strcmp(x->tok[i + 2], "hour") == 0) {
            n = 1;
            unit = 1800;
            i += 3;
        } else if (strcmp(t, "полтора") == 0 && t1 && strcmp(t1, "часа") == 0) {
            n = 1;
            unit = 5400;
            i += 2;
        } else if (split_glued(t, &n, &unit)) {
            i++;
        } else {
            if (all_digits(t, strlen(t)) && strlen(t) <= 6)
                n = num_of(t, strlen(t));
            else if ((v = lookup(numbers, t)) > 0)
                n = v;
            else
                return false;
            if (t1 == NULL || (v = lookup(units, t1)) < 0)
                return false;
            unit = v;
            i += 2;
        }
        total += n * unit;
        if (total > 366 * 86400)
            return false;
        amounts++;
    }
    if (amounts == 0 || total <= 0)
        return false;
    *delta = total;
    return true;
}

int fsm_parse_datetime(const char *text, int64_t now_ms, const struct fsm_tz *tz, int64_t *out)
{
    struct dt x;
    int rc = VN_EINVAL;
    char *folded = NULL;

    memset(&x, 0, sizeof(x));
    if (text == NULL || strlen(text) > 200)
        return VN_EINVAL;
    folded = fsm__fold(text);
    for (char *p = folded; *p != '\0';) {
        char *sp = strchr(p, ' ');
        if (sp != NULL)
            *sp = '\0';
        size_t len = strlen(p);
        while (len > 1 && (p[len - 1] == ',' || p[len - 1] == '.'))
            p[--len] = '\0';
        if (x.n == MAX_TOK)
            goto out;
        x.tok[x.n++] = p;
        if (sp == NULL)
            break;
        p = sp + 1;
    }
    if (x.n == 0)
        goto out;

    if (now_ms > FSM_T_CLAMP * 1000)
        now_ms = FSM_T_CLAMP * 1000;
    if (now_ms < -FSM_T_CLAMP * 1000)
        now_ms = -FSM_T_CLAMP * 1000;
    int64_t now_s = floor_div(now_ms, 1000);
    int64_t local_now = now_s + fsm_tz_offset(tz, now_s);
    int64_t today = floor_div(local_now, 86400);
    int64_t now_sod = local_now - today * 86400;
    int64_t this_year;
    int tm_, td_;
    fsm_civil_from_days(today, &this_year, &tm_, &td_);

    if (strcmp(x.tok[0], "in") == 0 || strcmp(x.tok[0], "через") == 0) {
        int64_t delta;
        if (!read_relative(&x, 1, &delta))
            goto out;
        *out = now_s + delta;
        rc = 0;
        goto out;
    }

    bool prev_filler = false;
    for (int i = 0; i < x.n;) {
        if (is_filler(x.tok[i]) && i + 1 < x.n) {
            prev_filler = true;
            i++;
            continue;
        }
        if (!x.have_date && read_date(&x, &i, this_year)) {
            prev_filler = false;
            continue;
        }
        if (!x.have_time && read_time(&x, &i)) {
            x.filler_before_time = prev_filler;
            prev_filler = false;
            continue;
        }
        goto out;
    }
    if (!x.have_date && !x.have_time)
        goto out;
    if (x.bare_hour && !x.have_date && !x.filler_before_time)
        goto out; /* a lone "15" is not a time */

    int64_t tod = x.have_time ? x.h * 3600 + x.mi * 60 + x.s : 9 * 3600;
    int64_t day;
    if (x.weekday_mode) {
        int ahead = (x.w - weekday_of(today) + 7) % 7;
        if (ahead == 0 && tod <= now_sod)
            ahead = 7;
        day = today + ahead;
    } else if (x.relative_day) {
        day = today + x.day_offset;
    } else if (x.have_date) {
        if (x.m < 1 || x.m > 12 || x.d < 1 || x.d > month_len(x.y, x.m) || x.y < 1970 || x.y > 9999)
            goto out;
        day = fsm_days_from_civil(x.y, x.m, x.d);
        if (x.roll_year && day * 86400 + tod <= local_now) {
            if (x.d > month_len(x.y + 1, x.m))
                goto out;
            day = fsm_days_from_civil(x.y + 1, x.m, x.d);
        }
    } else {
        day = today;
        if (tod <= now_sod)
            day++;
    }
    *out = fsm_tz_local_to_utc(tz, day * 86400 + tod);
    rc = 0;
out:
    free(folded);
    return rc;
}
