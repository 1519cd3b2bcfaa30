/*
 * fsm_input.c - typed input triggers: text, integer, email, datetime, choice.
 *
 * Each parser takes the message text and either produces the JSON value that
 * goes into the collected data or names what was wrong with a short code the
 * re-prompt template can switch on (docs/flows.md, "Input").
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/common.h"
#include "fsm/fsm_date.h"
#include "fsm/fsm_int.h"

static int parse_integer(const struct fsm__trans *t, const char *s, struct json_object **out,
                         const char **err)
{
    const char *p = s;
    int neg = 0;
    uint64_t v = 0;

    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (*p == '\0') {
        *err = "not_integer";
        return -1;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (uint64_t)INT64_MAX / 10) {
            *err = "not_integer";
            return -1;
        }
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > (uint64_t)INT64_MAX) {
            *err = "not_integer";
            return -1;
        }
    }
    int64_t n = neg ? -(int64_t)v : (int64_t)v;
    if (t->has_min && n < t->min) {
        *err = "too_small";
        return -1;
    }
    if (t->has_max && n > t->max) {
        *err = "too_large";
        return -1;
    }
    *out = json_object_new_int64(n);
    return 0;
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A practical address check (what people mistype), not RFC 5322: one '@',
   a dot-atom local part, a domain of at least two LDH labels. */
static int parse_email(const char *s, struct json_object **out, const char **err)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    *err = "not_email";
    if (n > 254 || at == NULL || strchr(at + 1, '@') != NULL)
        return -1;
    size_t local = (size_t)(at - s);
    if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.')
        return -1;
    for (size_t i = 0; i < local; i++) {
        char c = s[i];
        if (!is_alnum(c) && strchr(".!#$%&'*+/=?^_`{|}~-", c) == NULL)
            return -1;
        if (c == '.' && s[i + 1] == '.')
            return -1;
    }
    const char *d = at + 1;
    int labels = 0;
    const char *label = d;
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_append(&b, s, local + 1);
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t len = (size_t)(p - label);
            if (len == 0 || len > 63 || label[0] == '-' || p[-1] == '-') {
                vn_buf_free(&b);
                return -1;
            }
            labels++;
            if (*p == '\0')
                break;
            label = p + 1;
        } else if (!is_alnum(*p) && *p != '-') {
            vn_buf_free(&b);
            return -1;
        }
        vn_buf_putc(&b, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
    }
    /* the top-level label is letters (or an IDN "xn--" label) */
    int tld_ok = strlen(label) >= 2;
    for (const char *p = label; tld_ok && *p; p++)
        tld_ok =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || strncmp(label, "xn--", 4) == 0;
    if (labels < 2 || !tld_ok) {
        vn_buf_free(&b);
        return -1;
    }
    *out = json_object_new_string(b.data);
    vn_buf_free(&b);
    *err = NULL;
    return 0;
}

static int parse_choice(const struct fsm__trans *t, const char *s, struct json_object **out,
                        const char **err)
{
    char *f = fsm__fold(s);
    for (size_t i = 0; i < t->n_choices; i++) {
        for (size_t j = 0; j < t->choices[i].n_match; j++) {
            if (strcmp(f, t->choices[i].match[j]) == 0) {
                free(f);
                *out = json_object_new_string(t->choices[i].value);
                return 0;
            }
        }
    }
    free(f);
    *err = "not_choice";
    return -1;
}

int fsm__parse_input(const struct fsm__trans *t, const char *text, int64_t now_ms,
                     const struct fsm_tz *tz, struct json_object **out, const char **err)
{
    char *s = fsm__trim(text);
    int rc = -1;
    *out = NULL;
    *err = NULL;

    switch (t->input) {
    case FSM_ITYPE_TEXT: {
        size_t n = fsm__utf8_len(s);
        if (n == 0)
            *err = "empty";
        else if (t->has_min && (int64_t)n < t->min)
            *err = "too_short";
        else if (t->has_max && (int64_t)n > t->max)
            *err = "too_long";
        else {
            *out = json_object_new_string(s);
            rc = 0;
        }
        break;
    }
    case FSM_ITYPE_INTEGER:
        rc = parse_integer(t, s, out, err);
        break;
    case FSM_ITYPE_EMAIL:
        rc = parse_email(s, out, err);
        break;
    case FSM_ITYPE_CHOICE:
        rc = parse_choice(t, s, out, err);
        break;
    case FSM_ITYPE_DATETIME: {
        int64_t when;
        if (fsm_parse_datetime(s, now_ms, tz, &when) != 0) {
            *err = "not_datetime";
        } else if (t->future && when * 1000 <= now_ms) {
            *err = "in_past";
        } else {
            char buf[40];
            fsm_format_rfc3339(when, tz, buf, sizeof(buf));
            *out = json_object_new_string(buf);
            rc = 0;
        }
        break;
    }
    }
    free(s);
    return rc;
}
