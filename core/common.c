#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

const char *vn_strerror(int err)
{
    switch (err) {
    case VN_OK:
        return "ok";
    case VN_EINVAL:
        return "invalid input";
    case VN_ENOENT:
        return "not found";
    case VN_EIO:
        return "I/O error";
    case VN_ETOOBIG:
        return "too big";
    case VN_ECONFLICT:
        return "conflict";
    case VN_EDOWN:
        return "dependency down";
    case VN_ETIMEOUT:
        return "timed out";
    case VN_ESTATE:
        return "wrong state";
    }
    return "unknown error";
}

static void oom(size_t n)
{
    fprintf(stderr,
            "{\"level\":\"fatal\",\"module\":\"core\",\"msg\":\"out of memory allocating %zu "
            "bytes\"}\n",
            n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
    if (p == NULL)
        oom(nmemb * n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    struct vn_buf b = VN_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    vn_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return vn_buf_steal(&b);
}

void vn_buf_init(struct vn_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void vn_buf_free(struct vn_buf *b)
{
    free(b->data);
    vn_buf_init(b);
}

void vn_buf_reset(struct vn_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void vn_buf_reserve(struct vn_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0';
}

void vn_buf_append(struct vn_buf *b, const void *data, size_t len)
{
    vn_buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void vn_buf_puts(struct vn_buf *b, const char *s)
{
    vn_buf_append(b, s, strlen(s));
}

void vn_buf_putc(struct vn_buf *b, char c)
{
    vn_buf_append(b, &c, 1);
}

void vn_buf_vprintf(struct vn_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return;
    vn_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void vn_buf_printf(struct vn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vn_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void vn_buf_json_escape(struct vn_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    vn_buf_reserve(b, len + 2);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            vn_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            vn_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            vn_buf_append(b, "\\n", 2);
            break;
        case '\r':
            vn_buf_append(b, "\\r", 2);
            break;
        case '\t':
            vn_buf_append(b, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                vn_buf_append(b, u, 6);
            } else {
                vn_buf_putc(b, (char)c);
            }
        }
    }
}

void vn_buf_json_str(struct vn_buf *b, const char *s)
{
    vn_buf_putc(b, '"');
    if (s)
        vn_buf_json_escape(b, s, strlen(s));
    vn_buf_putc(b, '"');
}

char *vn_buf_steal(struct vn_buf *b)
{
    char *p = b->data;
    if (p == NULL)
        p = xstrdup("");
    vn_buf_init(b);
    return p;
}

uint64_t vn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t vn_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int vn_consttime_eq(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *x = a, *y = b;
    unsigned char diff = (unsigned char)(alen != blen);
    /* Walk the expected length whatever the input is, so timing does not
     * depend on where the first difference lies. */
    for (size_t i = 0; i < blen; i++)
        diff |= (unsigned char)((i < alen ? x[i] : 0) ^ y[i]);
    return diff == 0;
}

uint64_t vn_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint32_t rnd)
{
    uint64_t cap = base_ms;
    for (unsigned i = 0; i < attempt && cap < max_ms; i++) {
        if (cap > max_ms / 2) {
            cap = max_ms;
            break;
        }
        cap *= 2;
    }
    if (cap > max_ms)
        cap = max_ms;
    uint64_t half = cap / 2;
    return half + (half ? rnd % (half + 1) : 0);
}

uint32_t vn_random_u32(void)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = (uint32_t)vn_now_ms() * 2654435761u;
    return v;
}

void vn_random_hex(char *buf, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < sizeof(raw) ? n - done : sizeof(raw);
        if (getrandom(raw, k, 0) != (ssize_t)k) {
            for (size_t i = 0; i < k; i++)
                raw[i] = (unsigned char)vn_random_u32();
        }
        for (size_t i = 0; i < k; i++) {
            buf[2 * (done + i)] = hex[raw[i] >> 4];
            buf[2 * (done + i) + 1] = hex[raw[i] & 15];
        }
        done += k;
    }
    buf[2 * n] = '\0';
}

size_t vn_utf8_seq(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    unsigned char c = s[i];
    size_t n;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1Fu;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0Fu;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len - i < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        unsigned char d = s[i + k];
        if ((d & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (d & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

int vn_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = vn_utf8_seq(u, len, i, &cp);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}
