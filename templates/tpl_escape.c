/*
 * tpl_escape.c - writing values for each output context.
 *
 * Every function here takes untrusted bytes and appends text that the
 * target shows literally: never markup, never a break out of an attribute,
 * a URL or a JSON string. All output is valid UTF-8: a byte that starts no
 * valid sequence becomes U+FFFD, and so does NUL outside JSON (JSON writes
 * \u0000). Telegram HTML text and MarkdownV2 go through bot/tg_text.h, the
 * escapers the Bot API client uses, so there is one definition of each;
 * a value with nothing those escapers would change (checked in the same
 * pass that validates UTF-8) is copied without calling them, which is most
 * values and most of the render time saved.
 */
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "bot/tg_text.h"
#include "templates/tpl_internal.h"

static const char REPL[] = "\xEF\xBF\xBD"; /* U+FFFD */
static const char HEX[] = "0123456789ABCDEF";
static const char hexl[] = "0123456789abcdef";

/* Characters each escaper changes (ASCII only; the rest pass through). */
static const bool TG_HTML_SPECIAL[128] = {['&'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1};
static const bool MD2_SPECIAL[128] = {
    ['_'] = 1, ['*'] = 1, ['['] = 1, [']'] = 1, ['('] = 1,  [')'] = 1, ['~'] = 1,
    ['`'] = 1, ['>'] = 1, ['#'] = 1, ['+'] = 1, ['-'] = 1,  ['='] = 1, ['|'] = 1,
    ['{'] = 1, ['}'] = 1, ['.'] = 1, ['!'] = 1, ['\\'] = 1,
};

enum { SCAN_PLAIN = 0, SCAN_SPECIAL = 1, SCAN_DIRTY = 2 };

/*
 * One pass over a value: SCAN_DIRTY if it is not valid UTF-8 or holds NUL,
 * else SCAN_SPECIAL if it holds a character of special[] (may be NULL),
 * else SCAN_PLAIN: nothing to change, the value can be copied as is. Most
 * values are plain (names, titles), so this is what makes escaping cheap;
 * ASCII and two-byte sequences (Cyrillic) are checked inline.
 */
static int scan(const char *s, size_t len, const bool *special)
{
    const unsigned char *u = (const unsigned char *)s;
    int st = SCAN_PLAIN;
    size_t i = 0;
    while (i < len) {
        unsigned char c = u[i];
        if (c >= 0x01 && c < 0x80) {
            if (special && special[c])
                st = SCAN_SPECIAL;
            i++;
        } else if (c >= 0xC2 && c <= 0xDF && i + 1 < len && (u[i + 1] & 0xC0) == 0x80) {
            i += 2;
        } else {
            uint32_t cp;
            size_t n = c ? tpl__utf8_seq(u, len, i, &cp) : 0;
            if (n == 0)
                return SCAN_DIRTY;
            i += n;
        }
    }
    return st;
}

/* Copy s with invalid UTF-8 and NUL replaced by U+FFFD into tmp and point
 * *s and *len at it. */
static void repair(struct vn_buf *tmp, const char **s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)*s;
    for (size_t i = 0; i < *len;) {
        uint32_t cp;
        size_t n = tpl__utf8_seq(u, *len, i, &cp);
        if (n == 0 || cp == 0) {
            vn_buf_append(tmp, REPL, 3);
            i++;
        } else {
            vn_buf_append(tmp, *s + i, n);
            i += n;
        }
    }
    if (tmp->data == NULL)
        vn_buf_append(tmp, "", 0);
    *s = tmp->data;
    *len = tmp->len;
}

static void html_escape(struct vn_buf *out, const char *s, size_t len, bool quote_only_dq)
{
    size_t run = 0;
    vn_buf_reserve(out, len + 16);
    for (size_t i = 0; i < len; i++) {
        const char *r;
        switch (s[i]) {
        case '&':
            r = "&amp;";
            break;
        case '<':
            r = "&lt;";
            break;
        case '>':
            r = "&gt;";
            break;
        case '"':
            r = "&quot;";
            break;
        case '\'':
            if (quote_only_dq)
                continue;
            r = "&#39;";
            break;
        default:
            continue;
        }
        vn_buf_append(out, s + run, i - run);
        vn_buf_puts(out, r);
        run = i + 1;
    }
    vn_buf_append(out, s + run, len - run);
}

void tpl__json_escape(struct vn_buf *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    vn_buf_reserve(out, len + 8);
    while (i < len) {
        unsigned char c = u[i];
        char esc[8];
        size_t elen = 0, adv = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c < 0x20 || c == 0x7F) {
            esc[0] = '\\';
            switch (c) {
            case '\n':
                esc[1] = 'n';
                elen = 2;
                break;
            case '\r':
                esc[1] = 'r';
                elen = 2;
                break;
            case '\t':
                esc[1] = 't';
                elen = 2;
                break;
            case '\b':
                esc[1] = 'b';
                elen = 2;
                break;
            case '\f':
                esc[1] = 'f';
                elen = 2;
                break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hexl[c >> 4];
                esc[5] = hexl[c & 15];
                elen = 6;
            }
        } else if (c >= 0x80) {
            uint32_t cp;
            adv = tpl__utf8_seq(u, len, i, &cp);
            if (adv == 0) {
                memcpy(esc, "\\ufffd", 6);
                elen = 6;
                adv = 1;
            } else if (cp == 0x2028 || cp == 0x2029) {
                /* valid JSON, but not valid JavaScript inside a <script> */
                memcpy(esc, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
                elen = 6;
            }
        }
        if (elen) {
            vn_buf_append(out, s + run, i - run);
            vn_buf_append(out, esc, elen);
            run = i + adv;
        }
        i += adv;
    }
    vn_buf_append(out, s + run, len - run);
}

static void json_write_depth(struct vn_buf *out, struct json_object *j, int depth)
{
    if (j == NULL || depth > 64) {
        vn_buf_puts(out, "null");
        return;
    }
    switch (json_object_get_type(j)) {
    case json_type_null:
        vn_buf_puts(out, "null");
        break;
    case json_type_boolean:
        vn_buf_puts(out, json_object_get_boolean(j) ? "true" : "false");
        break;
    case json_type_int: {
        int64_t v = json_object_get_int64(j);
        if (v == INT64_MAX)
            vn_buf_printf(out, "%llu", (unsigned long long)json_object_get_uint64(j));
        else
            vn_buf_printf(out, "%lld", (long long)v);
        break;
    }
    case json_type_double:
        tpl__fmt_double(out, json_object_get_double(j));
        break;
    case json_type_string:
        vn_buf_putc(out, '"');
        tpl__json_escape(out, json_object_get_string(j), (size_t)json_object_get_string_len(j));
        vn_buf_putc(out, '"');
        break;
    case json_type_array: {
        size_t n = json_object_array_length(j);
        vn_buf_putc(out, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                vn_buf_putc(out, ',');
            json_write_depth(out, json_object_array_get_idx(j, i), depth + 1);
        }
        vn_buf_putc(out, ']');
        break;
    }
    case json_type_object: {
        bool first = true;
        vn_buf_putc(out, '{');
        json_object_object_foreach(j, key, val)
        {
            if (!first)
                vn_buf_putc(out, ',');
            first = false;
            vn_buf_putc(out, '"');
            tpl__json_escape(out, key, strlen(key));
            vn_buf_puts(out, "\":");
            json_write_depth(out, val, depth + 1);
        }
        vn_buf_putc(out, '}');
        break;
    }
    }
}

void tpl__json_write(struct vn_buf *out, struct json_object *j)
{
    json_write_depth(out, j, 0);
}

/* Browsers drop ASCII tab and newlines anywhere in a URL and leading and
 * trailing C0 controls and spaces; do the same before looking at it, so
 * "java\tscript:" is seen as the "javascript:" it becomes. */
static void url_clean(struct vn_buf *tmp, const char *s, size_t len)
{
    size_t a = 0, b = len;
    while (a < b && (unsigned char)s[a] <= 0x20)
        a++;
    while (b > a && (unsigned char)s[b - 1] <= 0x20)
        b--;
    for (size_t i = a; i < b; i++)
        if (s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            vn_buf_putc(tmp, s[i]);
    if (tmp->data == NULL)
        vn_buf_append(tmp, "", 0);
}

static bool scheme_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return !first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.');
}

static int scheme_check(const char *s, size_t len, bool telegram)
{
    static const char *const ok[] = {"http", "https", "mailto", "tel", "tg"};
    size_t n = VN_ARRAY_LEN(ok) - (telegram ? 0 : 1);
    size_t i = 0;
    while (i < len && s[i] != ':' && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    if (i == len || s[i] != ':')
        return 1; /* no scheme: a relative reference */
    for (size_t k = 0; k < i; k++)
        if (!scheme_char(s[k], k == 0))
            return 1; /* not a scheme, so a relative path with a ':' in it */
    for (size_t k = 0; k < n; k++)
        if (strlen(ok[k]) == i && strncasecmp(s, ok[k], i) == 0)
            return 1;
    return 0;
}

int tpl__url_scheme_ok(const char *s, size_t len, bool telegram)
{
    struct vn_buf tmp = VN_BUF_INIT;
    url_clean(&tmp, s, len);
    int ok = scheme_check(tmp.data, tmp.len, telegram);
    vn_buf_free(&tmp);
    return ok;
}

/* Percent-encode every byte but unreserved ones (and, for a whole URL, the
 * reserved characters that give it its structure), then nothing in the
 * result needs HTML escaping but '&', which becomes &amp;. */
static void url_encode(struct vn_buf *out, const char *s, size_t len, bool whole)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~';
        if (!keep && whole)
            keep = c != 0 && strchr(":/?#[]@!$&()*+,;=%", c) != NULL;
        if (keep) {
            if (c == '&')
                vn_buf_puts(out, "&amp;");
            else
                vn_buf_putc(out, (char)c);
        } else {
            char e[3] = {'%', HEX[c >> 4], HEX[c & 15]};
            vn_buf_append(out, e, 3);
        }
    }
}

void tpl__escape(struct vn_buf *out, enum tpl_esc esc, unsigned flags, const char *s, size_t len)
{
    struct vn_buf tmp = VN_BUF_INIT;

    if (esc == TESC_RAW) {
        vn_buf_append(out, s, len);
        return;
    }
    if (esc == TESC_JSON_STR || esc == TESC_JSON_VALUE) {
        tpl__json_escape(out, s, len); /* repairs itself; NUL is \u0000 */
        return;
    }
    const bool *special = esc == TESC_TG_TEXT ? TG_HTML_SPECIAL
                          : esc == TESC_MD2   ? MD2_SPECIAL
                                              : NULL;
    int st = scan(s, len, special);
    if (st == SCAN_DIRTY) {
        repair(&tmp, &s, &len);
        st = SCAN_SPECIAL;
    }
    switch (esc) {
    case TESC_TEXT:
    case TESC_LINE:
        vn_buf_append(out, s, len);
        break;
    case TESC_TG_TEXT:
        /* tg_escape_html is the definition; a plain value it would copy */
        if (st == SCAN_PLAIN)
            vn_buf_append(out, s, len);
        else
            tg_escape_html(out, s, len);
        break;
    case TESC_HTML_TEXT:
    case TESC_HTML_ATTR:
        html_escape(out, s, len, false);
        break;
    case TESC_MUSTACHE:
        html_escape(out, s, len, true);
        break;
    case TESC_MD2:
        if (st == SCAN_PLAIN)
            vn_buf_append(out, s, len);
        else
            tg_escape_md2(out, s, len, TG_MD2_TEXT);
        break;
    case TESC_JSON_STR:
    case TESC_JSON_VALUE:
        tpl__json_escape(out, s, len);
        break;
    case TESC_URL_START: {
        struct vn_buf u = VN_BUF_INIT;
        url_clean(&u, s, len);
        if (scheme_check(u.data, u.len, (flags & TOPF_TG_URL) != 0))
            url_encode(out, u.data, u.len, true);
        else
            vn_buf_puts(out, "about:invalid#blocked");
        vn_buf_free(&u);
        break;
    }
    case TESC_URL_PART:
        url_encode(out, s, len, false);
        break;
    case TESC_RAW:
        break;
    }
    vn_buf_free(&tmp);
}

/* U+0085, U+2028 and U+2029 are line breaks too. */
static size_t line_break_len(const unsigned char *s, size_t len, size_t i)
{
    if (i + 1 < len && s[i] == 0xC2 && s[i + 1] == 0x85)
        return 2;
    if (i + 2 < len && s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9))
        return 3;
    return 0;
}

void tpl__fold_line(struct vn_buf *out, size_t from)
{
    unsigned char *s = (unsigned char *)out->data;
    size_t w = from, len = out->len;
    bool space = true; /* drop leading whitespace */

    if (s == NULL)
        return;
    for (size_t i = from; i < len;) {
        size_t lb = line_break_len(s, len, i);
        if (s[i] <= 0x20 || s[i] == 0x7F || lb) {
            if (!space)
                s[w++] = ' ';
            space = true;
            i += lb ? lb : 1;
            continue;
        }
        s[w++] = s[i++];
        space = false;
    }
    if (w > from && s[w - 1] == ' ')
        w--;
    out->len = w;
    s[w] = '\0';
}
