/*
 * common.h - error codes, allocation helpers and a growable byte buffer.
 *
 * Every module includes this. Out of memory is fatal: xmalloc() and friends
 * abort with a message instead of returning NULL, so callers never check.
 */
#ifndef VN_COMMON_H
#define VN_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes: functions return 0 or one of these (negative). */
enum vn_err {
    VN_OK = 0,
    VN_EINVAL = -1,    /* bad argument or input */
    VN_ENOENT = -2,    /* not found */
    VN_EIO = -3,       /* I/O or network failure */
    VN_ETOOBIG = -4,   /* input over a configured bound */
    VN_ECONFLICT = -5, /* state does not allow the operation */
    VN_EDOWN = -6,     /* a dependency is not connected */
    VN_ETIMEOUT = -7,  /* deadline passed */
    VN_ESTATE = -8,    /* object is closing or not started */
};

/* Human-readable name of a VN_E code, never NULL. */
const char *vn_strerror(int err);

#define VN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define VN_UNUSED(x)    ((void)(x))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A growable byte buffer. data is always NUL-terminated (len excludes the NUL)
 * so text can be used as a C string. The buffer owns data; vn_buf_free() frees
 * it and leaves an empty buffer behind.
 */
struct vn_buf {
    char *data;
    size_t len;
    size_t cap;
};

#define VN_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void vn_buf_init(struct vn_buf *b);
void vn_buf_free(struct vn_buf *b);
void vn_buf_reset(struct vn_buf *b);
void vn_buf_reserve(struct vn_buf *b, size_t extra);
void vn_buf_append(struct vn_buf *b, const void *data, size_t len);
void vn_buf_puts(struct vn_buf *b, const char *s);
void vn_buf_putc(struct vn_buf *b, char c);
void vn_buf_printf(struct vn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vn_buf_vprintf(struct vn_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Append s as the inside of a JSON string (quotes not included). */
void vn_buf_json_escape(struct vn_buf *b, const char *s, size_t len);
/* Append s as a complete JSON string literal, quotes included. */
void vn_buf_json_str(struct vn_buf *b, const char *s);
/* Hand the heap string to the caller; the buffer becomes empty. */
char *vn_buf_steal(struct vn_buf *b);

/* Monotonic clock in milliseconds and wall clock in milliseconds since epoch. */
uint64_t vn_now_ms(void);
uint64_t vn_wall_ms(void);

/* Constant-time comparison of two byte strings (length leaks, content does not). */
int vn_consttime_eq(const void *a, size_t alen, const void *b, size_t blen);

/*
 * Exponential backoff with full jitter: base * 2^attempt capped at max, then a
 * random point in [cap/2, cap]. Pure apart from the random source passed in.
 */
uint64_t vn_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint32_t rnd);

/*
 * Length (1..4) of the valid UTF-8 sequence starting at s[i] (i < len), its
 * code point in *cp; 0 if s[i] starts no valid sequence: a continuation byte,
 * C0/C1/F5..FF, an overlong form, a surrogate, above U+10FFFF, or cut short.
 */
size_t vn_utf8_seq(const unsigned char *s, size_t len, size_t i, uint32_t *cp);

/* 1 when s[0..len) is valid UTF-8 (NUL bytes allowed), per vn_utf8_seq. */
int vn_utf8_valid(const char *s, size_t len);

/* Fill buf with n random bytes as 2n lowercase hex characters + NUL. */
void vn_random_hex(char *buf, size_t n);
uint32_t vn_random_u32(void);

#endif
