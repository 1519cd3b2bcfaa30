/*
 * ntf_mime.c - RFC 5322 / MIME message builder; see ntf_mime.h.
 *
 * Header lines are written by one small writer (struct hdr) that tracks the
 * current column: a header starts as "Name:" and every token is appended as
 * " token", or as "CRLF SP token" when it would pass column 78. Unfolding
 * (removing the CRLF) therefore gives back exactly the single-line header.
 */
#include "notifier/ntf_mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_HDR   78 /* RFC 5322 2.1.1 "SHOULD" limit, CRLF excluded */
#define LINE_MAX_QP    76 /* RFC 2045 6.7 (5), soft break "=" included */
#define EW_MAX         75 /* RFC 2047 2: an encoded-word is at most 75 chars */
#define EW_PREFIX      "=?UTF-8?B?"
#define EW_OVERHEAD    12 /* "=?UTF-8?B?" + "?=" */
#define BOUNDARY_PRE   "=_vn_"
#define BOUNDARY_MAX   40
#define LOCAL_PART_MAX 64

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append the base64 of s[0..len) (with padding). */
static void b64_append(struct vn_buf *b, const unsigned char *s, size_t len)
{
    size_t i;
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        vn_buf_putc(b, b64_alphabet[v >> 18 & 63]);
        vn_buf_putc(b, b64_alphabet[v >> 12 & 63]);
        vn_buf_putc(b, b64_alphabet[v >> 6 & 63]);
        vn_buf_putc(b, b64_alphabet[v & 63]);
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        vn_buf_putc(b, b64_alphabet[v >> 18 & 63]);
        vn_buf_putc(b, b64_alphabet[v >> 12 & 63]);
        vn_buf_puts(b, "==");
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        vn_buf_putc(b, b64_alphabet[v >> 18 & 63]);
        vn_buf_putc(b, b64_alphabet[v >> 12 & 63]);
        vn_buf_putc(b, b64_alphabet[v >> 6 & 63]);
        vn_buf_putc(b, '=');
    }
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* RFC 5322 atext. */
static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Check one header input: CR/LF (injection), other controls, UTF-8, length.
 * Returns 0 or VN_EINVAL / VN_ETOOBIG with "field: why" in err.
 */
static int check_header_text(const char *field, const char *s, size_t max, char *err, size_t errlen)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n') {
            snprintf(err, errlen, "%s: contains CR or LF (header injection)", field);
            return VN_EINVAL;
        }
        if (c < 0x20 || c == 0x7f) {
            snprintf(err, errlen, "%s: contains control character 0x%02x", field, c);
            return VN_EINVAL;
        }
    }
    if (len > max) {
        snprintf(err, errlen, "%s: longer than %zu bytes", field, max);
        return VN_ETOOBIG;
    }
    if (!vn_utf8_valid(s, len)) {
        snprintf(err, errlen, "%s: not valid UTF-8", field);
        return VN_EINVAL;
    }
    return 0;
}

int ntf_mime_check_addr(const char *addr, char *err, size_t errlen)
{
    const char *at = NULL;
    size_t len;

    if (addr == NULL || *addr == '\0') {
        snprintf(err, errlen, "empty address");
        return VN_EINVAL;
    }
    len = strlen(addr);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c == '\r' || c == '\n') {
            snprintf(err, errlen, "contains CR or LF (header injection)");
            return VN_EINVAL;
        }
        if (c <= 0x20 || c >= 0x7f) {
            snprintf(err, errlen, "contains a space, control or non-ASCII byte at offset %zu", i);
            return VN_EINVAL;
        }
        if (strchr("<>()[],;:\"\\", c) != NULL) {
            snprintf(err, errlen, "contains '%c'", c);
            return VN_EINVAL;
        }
        if (c == '@') {
            if (at != NULL) {
                snprintf(err, errlen, "more than one '@'");
                return VN_EINVAL;
            }
            at = addr + i;
        }
    }
    if (at == NULL) {
        snprintf(err, errlen, "no '@'");
        return VN_EINVAL;
    }
    if (at == addr || at[1] == '\0') {
        snprintf(err, errlen, "empty local part or domain");
        return VN_EINVAL;
    }
    if ((size_t)(at - addr) > LOCAL_PART_MAX) {
        snprintf(err, errlen, "local part longer than %d bytes", LOCAL_PART_MAX);
        return VN_EINVAL;
    }
    if (len > NTF_MIME_MAX_ADDR) {
        snprintf(err, errlen, "longer than %d bytes", NTF_MIME_MAX_ADDR);
        return VN_EINVAL;
    }
    return 0;
}

/* Check an address and prefix the reason with the field name. */
static int check_addr_field(const char *field, const char *addr, char *err, size_t errlen)
{
    char why[128];
    if (ntf_mime_check_addr(addr, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", field, why);
        return VN_EINVAL;
    }
    return 0;
}

/* Message-ID without <>: dot-atom-text "@" dot-atom-text, roughly. */
static int check_msgid(const char *id, char *err, size_t errlen)
{
    const char *at = NULL;
    size_t len = strlen(id);

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == '\r' || c == '\n') {
            snprintf(err, errlen, "message_id: contains CR or LF (header injection)");
            return VN_EINVAL;
        }
        if (c == '@' && at == NULL) {
            at = id + i;
            continue;
        }
        if (!is_atext(c) && c != '.') {
            snprintf(err, errlen, "message_id: character 0x%02x at offset %zu not allowed", c, i);
            return VN_EINVAL;
        }
    }
    if (at == NULL || at == id || at[1] == '\0') {
        snprintf(err, errlen, "message_id: must be \"left@right\" without <>");
        return VN_EINVAL;
    }
    if (len > NTF_MIME_MAX_MSGID) {
        snprintf(err, errlen, "message_id: longer than %d bytes", NTF_MIME_MAX_MSGID);
        return VN_ETOOBIG;
    }
    return 0;
}

int ntf_mime_parse_mailbox(const char *s, char **name, char **addr, char *err, size_t errlen)
{
    const char *start, *end, *lt;
    char *n = NULL, *a = NULL;
    int rc = VN_EINVAL;

    *name = *addr = NULL;
    if (s == NULL) {
        snprintf(err, errlen, "empty mailbox");
        goto out;
    }
    if (strchr(s, '\r') || strchr(s, '\n')) {
        snprintf(err, errlen, "contains CR or LF (header injection)");
        goto out;
    }
    start = s;
    end = s + strlen(s);
    while (start < end && *start == ' ')
        start++;
    while (end > start && end[-1] == ' ')
        end--;
    if (end > start && end[-1] == '>') {
        lt = end - 1;
        while (lt > start && *lt != '<')
            lt--;
        if (*lt != '<') {
            snprintf(err, errlen, "'>' without '<'");
            goto out;
        }
        a = xstrndup(lt + 1, (size_t)(end - 1 - (lt + 1)));
        end = lt;
        while (end > start && end[-1] == ' ')
            end--;
        if (end - start >= 2 && *start == '"' && end[-1] == '"') {
            /* quoted-string: drop the quotes and undo backslash escapes */
            struct vn_buf nb = VN_BUF_INIT;
            for (const char *p = start + 1; p < end - 1; p++) {
                if (*p == '\\' && p + 1 < end - 1)
                    p++;
                vn_buf_putc(&nb, *p);
            }
            n = vn_buf_steal(&nb);
        } else if (end > start) {
            n = xstrndup(start, (size_t)(end - start));
        }
    } else {
        a = xstrndup(start, (size_t)(end - start));
    }
    if (ntf_mime_check_addr(a, err, errlen) != 0)
        goto out;
    if (n && *n == '\0') {
        free(n);
        n = NULL;
    }
    *name = n;
    *addr = a;
    n = a = NULL;
    rc = 0;
out:
    free(n);
    free(a);
    return rc;
}

void ntf_mime_date(struct vn_buf *out, time_t t)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    /* Built by hand: strftime's %a/%b follow the locale, RFC 5322 wants English. */
    if (gmtime_r(&t, &tm) == NULL) {
        t = 0;
        gmtime_r(&t, &tm);
    }
    vn_buf_printf(out, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ------------------------------------------------------------------------ */
/* header writer                                                            */

struct hdr {
    struct vn_buf *b;
    size_t col; /* characters on the current line */
};

static void hdr_start(struct hdr *h, const char *name)
{
    vn_buf_puts(h->b, name);
    vn_buf_putc(h->b, ':');
    h->col = strlen(name) + 1;
}

static void hdr_end(struct hdr *h)
{
    vn_buf_puts(h->b, "\r\n");
    h->col = 0;
}

/*
 * Append " token", folding first when the line would pass 78 columns and the
 * fold would help (something besides the header name is on this line).
 */
static void hdr_token(struct hdr *h, const char *tok, size_t len, size_t name_col)
{
    if (h->col + 1 + len > LINE_MAX_HDR && h->col > name_col) {
        vn_buf_puts(h->b, "\r\n");
        h->col = 0;
    }
    vn_buf_putc(h->b, ' ');
    vn_buf_append(h->b, tok, len);
    h->col += 1 + len;
}

int ntf_mime_encode_word(struct vn_buf *out, const char *s, size_t len, size_t *col)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    if (!vn_utf8_valid(s, len))
        return VN_EINVAL;
    while (i < len) {
        size_t room, max_bytes, take = 0;
        size_t n = vn_utf8_seq(u, len, i, &cp);

        /* Longest word that fits after " " on this line, capped at 75. */
        room = *col + 1 < LINE_MAX_HDR ? LINE_MAX_HDR - *col - 1 : 0;
        if (room > EW_MAX)
            room = EW_MAX;
        max_bytes = room > EW_OVERHEAD ? (room - EW_OVERHEAD) / 4 * 3 : 0;
        if (max_bytes < n) {
            vn_buf_puts(out, "\r\n");
            *col = 0;
            max_bytes = (EW_MAX - EW_OVERHEAD) / 4 * 3; /* 45 bytes */
        }
        /* Take whole UTF-8 sequences while they fit. */
        while (i + take < len) {
            n = vn_utf8_seq(u, len, i + take, &cp);
            if (take + n > max_bytes)
                break;
            take += n;
        }
        size_t before = out->len;
        vn_buf_putc(out, ' ');
        vn_buf_puts(out, EW_PREFIX);
        b64_append(out, u + i, take);
        vn_buf_puts(out, "?=");
        *col += out->len - before;
        i += take;
    }
    return 0;
}

/*
 * Display name as a phrase: atoms as they are, other ASCII as a quoted-string,
 * non-ASCII (or text that would not fit a line, or that looks like an
 * encoded-word already) as encoded-words.
 */
static void hdr_phrase(struct hdr *h, const char *name, size_t name_col)
{
    size_t len = strlen(name);
    int atoms = len > 0 && name[0] != ' ' && name[len - 1] != ' ';
    struct vn_buf q = VN_BUF_INIT;

    if (!is_ascii(name) || strstr(name, "=?") != NULL)
        goto encode;
    for (size_t i = 0; i < len && atoms; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == ' ' ? name[i + 1] == ' ' : !is_atext(c))
            atoms = 0;
    }
    if (atoms) {
        vn_buf_append(&q, name, len);
    } else {
        vn_buf_putc(&q, '"');
        for (size_t i = 0; i < len; i++) {
            if (name[i] == '"' || name[i] == '\\')
                vn_buf_putc(&q, '\\');
            vn_buf_putc(&q, name[i]);
        }
        vn_buf_putc(&q, '"');
    }
    if (q.len + 1 > LINE_MAX_HDR)
        goto encode;
    hdr_token(h, q.data, q.len, name_col);
    vn_buf_free(&q);
    return;
encode:
    vn_buf_free(&q);
    ntf_mime_encode_word(h->b, name, len, &h->col); /* UTF-8 checked by the caller */
}

/* "Field: [name] <addr>" or "Field: addr". */
static void hdr_mailbox(struct hdr *h, const char *field, const char *name, const char *addr)
{
    size_t name_col;

    hdr_start(h, field);
    name_col = h->col;
    if (name && *name) {
        char *tok = xasprintf("<%s>", addr);
        hdr_phrase(h, name, name_col);
        hdr_token(h, tok, strlen(tok), name_col);
        free(tok);
    } else {
        hdr_token(h, addr, strlen(addr), name_col);
    }
    hdr_end(h);
}

/* Subject: ASCII folded at spaces; anything else as encoded-words. */
static void hdr_subject(struct hdr *h, const char *subject)
{
    size_t len = strlen(subject), name_col;
    int plain = is_ascii(subject) && strstr(subject, "=?") == NULL;

    hdr_start(h, "Subject");
    name_col = h->col;
    /* A word too long for any line cannot be folded: encode instead. */
    for (size_t i = 0, w = 0; plain && i <= len; i++) {
        if (i == len || subject[i] == ' ') {
            if (w + 1 > LINE_MAX_HDR)
                plain = 0;
            w = 0;
        } else {
            w++;
        }
    }
    if (plain) {
        /* Each space-separated word as a token; a fold goes before its space. */
        const char *p = subject, *sp;
        do {
            sp = strchr(p, ' ');
            size_t wl = sp ? (size_t)(sp - p) : strlen(p);
            hdr_token(h, p, wl, name_col);
            p = sp ? sp + 1 : NULL;
        } while (p);
    } else {
        ntf_mime_encode_word(h->b, subject, len, &h->col);
    }
    hdr_end(h);
}

/* ------------------------------------------------------------------------ */
/* bodies                                                                   */

static int starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

void ntf_mime_qp_encode(struct vn_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && s[i + 1] == '\n')
                i++;
            vn_buf_puts(out, "\r\n");
            col = 0;
            continue;
        }
        int last = i + 1 == len || s[i + 1] == '\r' || s[i + 1] == '\n';
        for (;;) {
            int enc = c == '=' || (c < 0x20 && c != '\t') || c >= 0x7f;
            if ((c == ' ' || c == '\t') && last)
                enc = 1; /* trailing white space would be stripped in transit */
            if (col == 0 && (c == '.' || (c == 'F' && starts_with(s + i, len - i, "From "))))
                enc = 1;
            size_t w = enc ? 3 : 1;
            /* A soft break costs one column; the last piece of a line needs none. */
            if (col + w > LINE_MAX_QP - 1 && !(last && col + w <= LINE_MAX_QP)) {
                vn_buf_puts(out, "=\r\n");
                col = 0;
                continue; /* re-decide: column 0 changes the '.'/"From " rule */
            }
            if (enc) {
                vn_buf_putc(out, '=');
                vn_buf_putc(out, hex[c >> 4]);
                vn_buf_putc(out, hex[c & 15]);
            } else {
                vn_buf_putc(out, (char)c);
            }
            col += w;
            break;
        }
    }
}

/* Check a body part: valid UTF-8 and bounded. */
static int check_body(const char *field, const char *s, char *err, size_t errlen)
{
    size_t len = strlen(s);
    if (len > NTF_MIME_MAX_BODY) {
        snprintf(err, errlen, "%s: longer than %d bytes", field, NTF_MIME_MAX_BODY);
        return VN_ETOOBIG;
    }
    if (!vn_utf8_valid(s, len)) {
        snprintf(err, errlen, "%s: not valid UTF-8", field);
        return VN_EINVAL;
    }
    return 0;
}

static void part_headers(struct vn_buf *b, const char *type)
{
    vn_buf_printf(b,
                  "Content-Type: %s; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n",
                  type);
}

/* A single-part QP body, ending with a line break as a message must. */
static void part_body(struct vn_buf *b, const char *s)
{
    size_t start = b->len;
    ntf_mime_qp_encode(b, s, strlen(s));
    if (b->len - start < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
        vn_buf_puts(b, "\r\n");
}

int ntf_mime_build(const struct ntf_mime_msg *m, struct vn_buf *out, char *err, size_t errlen)
{
    struct vn_buf b = VN_BUF_INIT;
    struct hdr h = {&b, 0};
    char bnd[sizeof(BOUNDARY_PRE) + BOUNDARY_MAX];
    int rc;

    if (m == NULL || out == NULL) {
        snprintf(err, errlen, "missing message");
        return VN_EINVAL;
    }
    if (m->from_addr == NULL || m->to_addr == NULL || m->subject == NULL || m->text == NULL ||
        m->message_id == NULL) {
        snprintf(err, errlen, "%s: required",
                 m->from_addr == NULL ? "from_addr"
                 : m->to_addr == NULL ? "to_addr"
                 : m->subject == NULL ? "subject"
                 : m->text == NULL    ? "text"
                                      : "message_id");
        return VN_EINVAL;
    }
    if ((rc = check_addr_field("from_addr", m->from_addr, err, errlen)) != 0 ||
        (rc = check_addr_field("to_addr", m->to_addr, err, errlen)) != 0 ||
        (rc = check_header_text("subject", m->subject, NTF_MIME_MAX_SUBJECT, err, errlen)) != 0 ||
        (rc = check_msgid(m->message_id, err, errlen)) != 0 ||
        (rc = check_body("text", m->text, err, errlen)) != 0)
        return rc;
    if (m->from_name &&
        (rc = check_header_text("from_name", m->from_name, NTF_MIME_MAX_NAME, err, errlen)) != 0)
        return rc;
    if (m->to_name &&
        (rc = check_header_text("to_name", m->to_name, NTF_MIME_MAX_NAME, err, errlen)) != 0)
        return rc;
    if (m->html && (rc = check_body("html", m->html, err, errlen)) != 0)
        return rc;
    if (m->boundary) {
        size_t bl = strlen(m->boundary);
        int ok = bl >= 1 && bl <= BOUNDARY_MAX;
        for (size_t i = 0; ok && i < bl; i++) {
            unsigned char c = (unsigned char)m->boundary[i];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        }
        if (!ok) {
            snprintf(err, errlen, "boundary: 1..%d characters of [0-9A-Za-z] expected",
                     BOUNDARY_MAX);
            return VN_EINVAL;
        }
        snprintf(bnd, sizeof(bnd), BOUNDARY_PRE "%s", m->boundary);
    } else {
        char rnd[33];
        vn_random_hex(rnd, 16);
        snprintf(bnd, sizeof(bnd), BOUNDARY_PRE "%s", rnd);
    }

    hdr_mailbox(&h, "From", m->from_name, m->from_addr);
    hdr_mailbox(&h, "To", m->to_name, m->to_addr);
    hdr_subject(&h, m->subject);
    vn_buf_puts(&b, "Date: ");
    ntf_mime_date(&b, m->date);
    vn_buf_puts(&b, "\r\n");
    vn_buf_printf(&b, "Message-ID: <%s>\r\n", m->message_id);
    vn_buf_puts(&b, "MIME-Version: 1.0\r\n");
    if (m->html == NULL) {
        part_headers(&b, "text/plain");
        vn_buf_puts(&b, "\r\n");
        part_body(&b, m->text);
    } else {
        /* The CRLF before each "--boundary" belongs to the delimiter (RFC 2046 5.1.1). */
        vn_buf_printf(&b, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n", bnd);
        vn_buf_printf(&b, "--%s\r\n", bnd);
        part_headers(&b, "text/plain");
        vn_buf_puts(&b, "\r\n");
        ntf_mime_qp_encode(&b, m->text, strlen(m->text));
        vn_buf_printf(&b, "\r\n--%s\r\n", bnd);
        part_headers(&b, "text/html");
        vn_buf_puts(&b, "\r\n");
        ntf_mime_qp_encode(&b, m->html, strlen(m->html));
        vn_buf_printf(&b, "\r\n--%s--\r\n", bnd);
    }
    vn_buf_append(out, b.data, b.len);
    vn_buf_free(&b);
    return 0;
}
