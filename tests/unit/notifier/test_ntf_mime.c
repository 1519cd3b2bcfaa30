/*
 * test_ntf_mime.c - the pure MIME builder (notifier/ntf_mime.c): encoded-words
 * round-trip and never split UTF-8, header folding, quoted-printable edge
 * cases, header injection, address checks, and the exact message layout.
 *
 * Decoding is done here with small independent decoders (base64, RFC 2047 B
 * words, quoted-printable) so the tests check what a mail reader would see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "notifier/ntf_mime.h"

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decode base64 s[0..len) into out; fails the test on bad input. */
static void b64_decode(const char *s, size_t len, struct vn_buf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    assert_int_equal(len % 4, 0);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=')
            break;
        int v = b64_val(s[i]);
        assert_true(v >= 0);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            vn_buf_putc(out, (char)(acc >> bits & 0xff));
        }
    }
}

/* Every physical line of s (split at CRLF) is at most max characters. */
static void assert_lines_max(const char *s, size_t max)
{
    const char *p = s;
    while (*p) {
        const char *e = strstr(p, "\r\n");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > max)
            fail_msg("line of %zu > %zu characters: %.*s", n, max, (int)n, p);
        p = e ? e + 2 : p + n;
    }
}

/* No bare CR or LF anywhere: every LF is preceded by CR and every CR followed by LF. */
static void assert_crlf_only(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n')
            assert_true(i > 0 && s[i - 1] == '\r');
        if (s[i] == '\r')
            assert_true(i + 1 < len && s[i + 1] == '\n');
    }
}

/*
 * Decode an unfolded header value made of encoded-words and/or plain text the
 * way RFC 2047 readers do: white space between two adjacent encoded-words is
 * dropped. Also checks each word (<= 75 chars, UTF-8 B, whole UTF-8 inside).
 */
static char *decode_header_value(const char *v)
{
    struct vn_buf out = VN_BUF_INIT;
    const char *p = v;
    int prev_word = 0;

    while (*p) {
        const char *ws = p;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *tok = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        size_t tl = (size_t)(p - tok);
        if (tl == 0) {
            vn_buf_append(&out, ws, (size_t)(p - ws));
            break;
        }
        if (tl >= 12 && strncmp(tok, "=?UTF-8?B?", 10) == 0 && strncmp(p - 2, "?=", 2) == 0) {
            struct vn_buf w = VN_BUF_INIT;
            assert_true(tl <= 75);
            b64_decode(tok + 10, tl - 12, &w);
            assert_true(w.len > 0);
            assert_true(vn_utf8_valid(w.data, w.len)); /* no sequence split across words */
            if (!prev_word)
                vn_buf_append(&out, ws, (size_t)(tok - ws));
            vn_buf_append(&out, w.data, w.len);
            vn_buf_free(&w);
            prev_word = 1;
        } else {
            vn_buf_append(&out, ws, (size_t)(p - ws));
            prev_word = 0;
        }
    }
    if (out.data == NULL)
        vn_buf_puts(&out, "");
    return vn_buf_steal(&out);
}

/* The raw (folded) header "Name: ..." incl. continuation lines, or NULL. */
static char *raw_header(const char *msg, const char *name)
{
    size_t nl = strlen(name);
    const char *p = msg;
    while (*p && strncmp(p, "\r\n", 2) != 0) {
        const char *e = strstr(p, "\r\n");
        while (e && (e[2] == ' ' || e[2] == '\t'))
            e = strstr(e + 2, "\r\n");
        assert_non_null(e);
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return xstrndup(p, (size_t)(e - p));
        p = e + 2;
    }
    return NULL;
}

/* Unfolded value of a header (CRLF removed, leading space after ':' dropped). */
static char *header_value(const char *msg, const char *name)
{
    char *raw = raw_header(msg, name);
    struct vn_buf b = VN_BUF_INIT;
    if (raw == NULL)
        return NULL;
    const char *p = raw + strlen(name) + 1;
    if (*p == ' ')
        p++;
    for (; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n') {
            p++;
            continue;
        }
        vn_buf_putc(&b, *p);
    }
    free(raw);
    if (b.data == NULL)
        vn_buf_puts(&b, "");
    return vn_buf_steal(&b);
}

/* Quoted-printable decoder (RFC 2045 6.7), for round trips. */
static char *qp_decode(const char *s, size_t len)
{
    struct vn_buf b = VN_BUF_INIT;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=') {
            if (i + 2 < len + 1 && s[i + 1] == '\r' && s[i + 2] == '\n') {
                i += 2;
                continue;
            }
            assert_true(i + 2 < len);
            char hx[3] = {s[i + 1], s[i + 2], 0};
            assert_true(strspn(hx, "0123456789ABCDEF") == 2);
            vn_buf_putc(&b, (char)strtol(hx, NULL, 16));
            i += 2;
        } else {
            vn_buf_putc(&b, s[i]);
        }
    }
    if (b.data == NULL)
        vn_buf_puts(&b, "");
    return vn_buf_steal(&b);
}

static char *qp(const char *s)
{
    struct vn_buf b = VN_BUF_INIT;
    ntf_mime_qp_encode(&b, s, strlen(s));
    if (b.data == NULL)
        vn_buf_puts(&b, "");
    return vn_buf_steal(&b);
}

static struct ntf_mime_msg base_msg(void)
{
    struct ntf_mime_msg m;
    memset(&m, 0, sizeof(m));
    m.from_name = "Vestnik";
    m.from_addr = "noreply@example.org";
    m.to_name = "Ivan Petrov";
    m.to_addr = "ivan@example.com";
    m.subject = "Hello";
    m.text = "Hi there\n";
    m.message_id = "abc123@example.org";
    m.date = 1700000000; /* Tue, 14 Nov 2023 22:13:20 +0000 */
    m.boundary = "B0UNDARY";
    return m;
}

static char *build_ok(const struct ntf_mime_msg *m)
{
    struct vn_buf b = VN_BUF_INIT;
    char err[200] = "";
    int rc = ntf_mime_build(m, &b, err, sizeof(err));
    if (rc != 0)
        fail_msg("ntf_mime_build: %d %s", rc, err);
    assert_crlf_only(b.data, b.len);
    for (size_t i = 0; i < b.len; i++)
        assert_true((unsigned char)b.data[i] < 0x80); /* 7-bit clean */
    return vn_buf_steal(&b);
}

/* Build, expect failure with rc and an error mentioning field. */
static void build_fails(const struct ntf_mime_msg *m, int rc, const char *field)
{
    struct vn_buf b = VN_BUF_INIT;
    char err[200] = "";
    assert_int_equal(ntf_mime_build(m, &b, err, sizeof(err)), rc);
    if (strncmp(err, field, strlen(field)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, field);
    assert_int_equal(b.len, 0); /* out untouched */
    vn_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* tests                                                                    */

static void check_subject_round_trip(const char *subject)
{
    struct ntf_mime_msg m = base_msg();
    m.subject = subject;
    char *msg = build_ok(&m);
    char *raw = raw_header(msg, "Subject");
    assert_non_null(raw);
    assert_lines_max(raw, 78);
    char *v = header_value(msg, "Subject");
    char *dec = decode_header_value(v);
    assert_string_equal(dec, subject);
    free(dec);
    free(v);
    free(raw);
    free(msg);
}

static void test_subject_cyrillic_emoji(void **state)
{
    (void)state;
    check_subject_round_trip("Привет");
    check_subject_round_trip("Заказ №42 готов 🎉");
    check_subject_round_trip("🎉🚀👍🏽🇷🇺");
    /* Long enough to take several words and lines. */
    check_subject_round_trip("Здравствуйте, Иван Петрович! Ваш заказ №123456 собран и передан в "
                             "службу доставки 🚚📦 — ожидайте курьера завтра с 10:00 до 18:00. "
                             "Спасибо, что выбрали нас! 🙏");
    /* Mixed ASCII + non-ASCII, leading/trailing/double spaces kept. */
    check_subject_round_trip("  Re:  Ответ  на  вопрос  ");
}

static void test_subject_ascii_folded(void **state)
{
    (void)state;
    struct vn_buf s = VN_BUF_INIT;
    for (int i = 0; i < 40; i++)
        vn_buf_printf(&s, "%sword%d", i ? " " : "", i);
    check_subject_round_trip(s.data);

    /* Plain ASCII stays plain (not encoded) when it fits. */
    struct ntf_mime_msg m = base_msg();
    m.subject = s.data;
    char *msg = build_ok(&m);
    char *raw = raw_header(msg, "Subject");
    assert_null(strstr(raw, "=?"));
    assert_non_null(strstr(raw, "\r\n "));
    free(raw);
    free(msg);

    /* A word longer than a line cannot be folded: encoded instead. */
    vn_buf_reset(&s);
    for (int i = 0; i < 120; i++)
        vn_buf_putc(&s, (char)('a' + i % 26));
    check_subject_round_trip(s.data);
    /* Text that looks like an encoded-word must not be decoded by readers. */
    check_subject_round_trip("literally =?UTF-8?B?SGk=?= here");
    check_subject_round_trip("");
    vn_buf_free(&s);
}

/* ntf_mime_encode_word from every start column: words <= 75, lines <= 78. */
static void test_encode_word_limits(void **state)
{
    (void)state;
    const char *texts[] = {"a",
                           "Ж",
                           "€",
                           "🎉",
                           "aЖ€🎉aЖ€🎉aЖ€🎉aЖ€🎉aЖ€🎉aЖ€🎉aЖ€🎉aЖ€🎉aЖ€🎉",
                           "ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ"};
    for (size_t t = 0; t < VN_ARRAY_LEN(texts); t++) {
        for (size_t col0 = 0; col0 <= 78; col0++) {
            struct vn_buf b = VN_BUF_INIT;
            size_t col = col0;
            for (size_t i = 0; i < col0; i++)
                vn_buf_putc(&b, 'H');
            assert_int_equal(ntf_mime_encode_word(&b, texts[t], strlen(texts[t]), &col), 0);
            assert_lines_max(b.data, 78);
            /* col is the length of the last line */
            const char *last = b.data;
            for (const char *q = strstr(last, "\r\n"); q; q = strstr(last, "\r\n"))
                last = q + 2;
            assert_int_equal(col, strlen(last));
            /* unfold and decode */
            struct vn_buf u = VN_BUF_INIT;
            for (size_t i = col0; i < b.len; i++) {
                if (b.data[i] == '\r' && b.data[i + 1] == '\n') {
                    i++;
                    continue;
                }
                vn_buf_putc(&u, b.data[i]);
            }
            char *dec = decode_header_value(u.data);
            /* the leading space before the first word is kept as text */
            assert_string_equal(dec + 1, texts[t]);
            free(dec);
            vn_buf_free(&u);
            vn_buf_free(&b);
        }
    }
    /* Invalid UTF-8 is refused and nothing is written. */
    struct vn_buf b = VN_BUF_INIT;
    size_t col = 0;
    assert_int_equal(ntf_mime_encode_word(&b, "a\xd0", 2, &col), VN_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(ntf_mime_encode_word(&b, "\xc0\xaf", 2, &col), VN_EINVAL);
}

static void test_qp(void **state)
{
    (void)state;
    char *s;

    /* trailing white space before a break and at the end */
    s = qp("a  \nb\t\r\nc ");
    assert_string_equal(s, "a =20\r\nb=09\r\nc=20");
    free(s);
    /* '=' and non-ASCII */
    s = qp("1+1=2 ж");
    assert_string_equal(s, "1+1=3D2 =D0=B6");
    free(s);
    /* a line that is just "." and a leading "From " */
    s = qp("x\n.\n..y\nFrom me\nFromage");
    assert_string_equal(s, "x\r\n=2E\r\n=2E.y\r\n=46rom me\r\nFromage");
    free(s);
    /* line endings: lone CR, lone LF, CRLF all become CRLF */
    s = qp("a\rb\nc\r\nd");
    assert_string_equal(s, "a\r\nb\r\nc\r\nd");
    free(s);
    /* controls other than tab are escaped */
    s = qp("a\x01\x7f");
    assert_string_equal(s, "a=01=7F");
    free(s);

    /* long lines: soft breaks, <= 76, never inside =XX, round trip */
    struct vn_buf in = VN_BUF_INIT;
    for (int i = 0; i < 300; i++)
        vn_buf_putc(&in, (char)('a' + i % 26));
    vn_buf_puts(&in, "\n");
    for (int i = 0; i < 100; i++)
        vn_buf_puts(&in, i % 7 == 0 ? "=" : "ж");
    vn_buf_puts(&in, "\n");
    for (int i = 0; i < 80; i++)
        vn_buf_putc(&in, i == 75 ? '.' : ' '); /* a '.' lands at a line start after a soft break */
    vn_buf_puts(&in, "end\n");
    for (int i = 0; i < 76; i++)
        vn_buf_putc(&in, 'x'); /* exactly 76: fits without a soft break */
    s = qp(in.data);
    assert_lines_max(s, 76);
    assert_crlf_only(s, strlen(s));
    char *d = qp_decode(s, strlen(s));
    /* CRLF in the encoding is the canonical form of the input's LF */
    struct vn_buf canon = VN_BUF_INIT;
    for (size_t i = 0; i < in.len; i++) {
        if (in.data[i] == '\n')
            vn_buf_putc(&canon, '\r');
        vn_buf_putc(&canon, in.data[i]);
    }
    assert_string_equal(d, canon.data);
    /* every line start is neither '.' nor "From " */
    for (const char *p = s; p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        assert_true(*p != '.');
        assert_true(strncmp(p, "From ", 5) != 0);
    }
    /* the 76-x line is kept whole */
    assert_non_null(
        strstr(s, "\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "x"));
    free(d);
    free(s);
    vn_buf_free(&canon);
    vn_buf_free(&in);
}

static void test_injection(void **state)
{
    (void)state;
    struct ntf_mime_msg m;

    m = base_msg();
    m.subject = "Hi\r\nBcc: victim@example.com";
    build_fails(&m, VN_EINVAL, "subject: contains CR or LF");
    m = base_msg();
    m.subject = "Hi\nX: y";
    build_fails(&m, VN_EINVAL, "subject: contains CR or LF");
    m = base_msg();
    m.to_name = "Eve\r\nBcc: x@y.z";
    build_fails(&m, VN_EINVAL, "to_name: contains CR or LF");
    m = base_msg();
    m.from_name = "Eve\r";
    build_fails(&m, VN_EINVAL, "from_name: contains CR or LF");
    m = base_msg();
    m.to_addr = "a@b.c\r\nBcc: x@y.z";
    build_fails(&m, VN_EINVAL, "to_addr: contains CR or LF");
    m = base_msg();
    m.from_addr = "a@b.c\n";
    build_fails(&m, VN_EINVAL, "from_addr: contains CR or LF");
    m = base_msg();
    m.message_id = "x@y\r\nBcc: a@b";
    build_fails(&m, VN_EINVAL, "message_id: contains CR or LF");
    /* other controls and bad UTF-8 */
    m = base_msg();
    m.subject = "tab\there";
    build_fails(&m, VN_EINVAL, "subject: contains control");
    m = base_msg();
    m.to_name = "bad \xff utf8";
    build_fails(&m, VN_EINVAL, "to_name: not valid UTF-8");
    m = base_msg();
    m.html = "<p>\xc3</p>";
    build_fails(&m, VN_EINVAL, "html: not valid UTF-8");
    m = base_msg();
    m.message_id = "<abc@def>";
    build_fails(&m, VN_EINVAL, "message_id:");
    m = base_msg();
    m.message_id = "no-at-sign";
    build_fails(&m, VN_EINVAL, "message_id:");
    m = base_msg();
    m.subject = NULL;
    build_fails(&m, VN_EINVAL, "subject: required");
    m = base_msg();
    m.boundary = "has space";
    build_fails(&m, VN_EINVAL, "boundary:");
    /* size bound */
    char *big = xmalloc(NTF_MIME_MAX_SUBJECT + 2);
    memset(big, 'a', NTF_MIME_MAX_SUBJECT + 1);
    big[NTF_MIME_MAX_SUBJECT + 1] = '\0';
    m = base_msg();
    m.subject = big;
    build_fails(&m, VN_ETOOBIG, "subject: longer than");
    free(big);
}

static void test_addresses(void **state)
{
    (void)state;
    char err[128];
    const char *good[] = {"a@b", "first.last+tag@example.co.uk", "x_y-z@sub.example.org",
                          "o'brien@example.ie"};
    const char *bad[] = {"",         "noat",       "two@@ats", "a@b@c",          "@example.org",
                         "user@",    "sp ace@x.y", "a@b c",    "tab\t@x.y",      "<a@b>",
                         "a,b@c.d",  "a;b@c.d",    "a\"b@c.d", "юзер@пример.рф", "a@b\x7f",
                         "a(b)@c.d", "a\\b@c.d",   "a:b@c.d"};
    for (size_t i = 0; i < VN_ARRAY_LEN(good); i++)
        assert_int_equal(ntf_mime_check_addr(good[i], err, sizeof(err)), 0);
    for (size_t i = 0; i < VN_ARRAY_LEN(bad); i++) {
        if (ntf_mime_check_addr(bad[i], err, sizeof(err)) != VN_EINVAL)
            fail_msg("accepted bad address \"%s\"", bad[i]);
    }
    assert_int_equal(ntf_mime_check_addr(NULL, err, sizeof(err)), VN_EINVAL);
    /* lengths: local part 64, whole 254 */
    struct vn_buf a = VN_BUF_INIT;
    for (int i = 0; i < 65; i++)
        vn_buf_putc(&a, 'l');
    vn_buf_puts(&a, "@x.y");
    assert_int_equal(ntf_mime_check_addr(a.data, err, sizeof(err)), VN_EINVAL);
    vn_buf_reset(&a);
    vn_buf_puts(&a, "l@");
    for (int i = 0; i < 252; i++)
        vn_buf_putc(&a, 'd');
    assert_int_equal(a.len, 254);
    assert_int_equal(ntf_mime_check_addr(a.data, err, sizeof(err)), 0);
    vn_buf_putc(&a, 'd');
    assert_int_equal(ntf_mime_check_addr(a.data, err, sizeof(err)), VN_EINVAL);
    vn_buf_free(&a);

    /* the builder names the field */
    struct ntf_mime_msg m = base_msg();
    m.to_addr = "not an address";
    build_fails(&m, VN_EINVAL, "to_addr:");
    m = base_msg();
    m.from_addr = "nobody";
    build_fails(&m, VN_EINVAL, "from_addr:");
}

static void test_parse_mailbox(void **state)
{
    (void)state;
    char *n, *a, err[128];

    assert_int_equal(
        ntf_mime_parse_mailbox("Vestnik <noreply@example.org>", &n, &a, err, sizeof(err)), 0);
    assert_string_equal(n, "Vestnik");
    assert_string_equal(a, "noreply@example.org");
    free(n);
    free(a);
    assert_int_equal(ntf_mime_parse_mailbox("  noreply@example.org ", &n, &a, err, sizeof(err)), 0);
    assert_null(n);
    assert_string_equal(a, "noreply@example.org");
    free(a);
    assert_int_equal(
        ntf_mime_parse_mailbox("\"Shop, Inc. \\\"X\\\"\" <s@x.y>", &n, &a, err, sizeof(err)), 0);
    assert_string_equal(n, "Shop, Inc. \"X\"");
    assert_string_equal(a, "s@x.y");
    free(n);
    free(a);
    assert_int_equal(ntf_mime_parse_mailbox("Вестник <v@x.y>", &n, &a, err, sizeof(err)), 0);
    assert_string_equal(n, "Вестник");
    free(n);
    free(a);
    assert_int_equal(ntf_mime_parse_mailbox("<v@x.y>", &n, &a, err, sizeof(err)), 0);
    assert_null(n);
    free(a);
    assert_int_equal(ntf_mime_parse_mailbox("Name <bad>", &n, &a, err, sizeof(err)), VN_EINVAL);
    assert_int_equal(ntf_mime_parse_mailbox("Name v@x.y>", &n, &a, err, sizeof(err)), VN_EINVAL);
    assert_int_equal(ntf_mime_parse_mailbox("N\r\n <v@x.y>", &n, &a, err, sizeof(err)), VN_EINVAL);
    assert_int_equal(ntf_mime_parse_mailbox(NULL, &n, &a, err, sizeof(err)), VN_EINVAL);
}

static void test_display_names(void **state)
{
    (void)state;
    struct ntf_mime_msg m = base_msg();
    char *msg, *v, *dec;

    msg = build_ok(&m);
    v = header_value(msg, "To");
    assert_string_equal(v, "Ivan Petrov <ivan@example.com>");
    free(v);
    v = header_value(msg, "From");
    assert_string_equal(v, "Vestnik <noreply@example.org>");
    free(v);
    free(msg);

    /* specials -> quoted-string with escapes */
    m.to_name = "Petrov, Ivan \"Vanya\" \\o/";
    msg = build_ok(&m);
    v = header_value(msg, "To");
    assert_string_equal(v, "\"Petrov, Ivan \\\"Vanya\\\" \\\\o/\" <ivan@example.com>");
    free(v);
    free(msg);

    /* non-ASCII -> encoded-words; decodes back */
    m.to_name = "Иван Петров 🙂";
    m.from_name = "Вестник — уведомления";
    msg = build_ok(&m);
    v = header_value(msg, "To");
    dec = decode_header_value(v);
    assert_string_equal(dec, "Иван Петров 🙂 <ivan@example.com>");
    free(dec);
    free(v);
    v = header_value(msg, "From");
    dec = decode_header_value(v);
    assert_string_equal(dec, "Вестник — уведомления <noreply@example.org>");
    free(dec);
    free(v);
    free(msg);

    /* a long non-ASCII name folds; every line <= 78 */
    m.to_name = "Очень длинное имя получателя, которое не помещается в одну строку заголовка "
                "и поэтому должно быть перенесено";
    msg = build_ok(&m);
    char *raw = raw_header(msg, "To");
    assert_lines_max(raw, 78);
    v = header_value(msg, "To");
    dec = decode_header_value(v);
    assert_string_equal(dec, "Очень длинное имя получателя, которое не помещается в одну строку "
                             "заголовка и поэтому должно быть перенесено <ivan@example.com>");
    free(dec);
    free(v);
    free(raw);
    free(msg);

    /* no name: bare address */
    m.to_name = NULL;
    m.from_name = "";
    msg = build_ok(&m);
    v = header_value(msg, "To");
    assert_string_equal(v, "ivan@example.com");
    free(v);
    v = header_value(msg, "From");
    assert_string_equal(v, "noreply@example.org");
    free(v);
    free(msg);
}

static void test_date(void **state)
{
    (void)state;
    struct vn_buf b = VN_BUF_INIT;
    ntf_mime_date(&b, 0);
    assert_string_equal(b.data, "Thu, 01 Jan 1970 00:00:00 +0000");
    vn_buf_reset(&b);
    ntf_mime_date(&b, 1700000000);
    assert_string_equal(b.data, "Tue, 14 Nov 2023 22:13:20 +0000");
    vn_buf_reset(&b);
    ntf_mime_date(&b, 951782400); /* leap day 2000 */
    assert_string_equal(b.data, "Tue, 29 Feb 2000 00:00:00 +0000");
    vn_buf_free(&b);
}

/* Text only: the exact message, header set and order. */
static void test_text_only_exact(void **state)
{
    (void)state;
    struct ntf_mime_msg m = base_msg();
    m.text = "Line one\nsecond = line\n";
    char *msg = build_ok(&m);
    assert_string_equal(msg, "From: Vestnik <noreply@example.org>\r\n"
                             "To: Ivan Petrov <ivan@example.com>\r\n"
                             "Subject: Hello\r\n"
                             "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                             "Message-ID: <abc123@example.org>\r\n"
                             "MIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n"
                             "\r\n"
                             "Line one\r\n"
                             "second =3D line\r\n");
    free(msg);
    /* a text without a final newline still ends the message with CRLF */
    m.text = "no newline";
    msg = build_ok(&m);
    size_t l = strlen(msg);
    assert_true(l > 2 && strcmp(msg + l - 14, "\r\nno newline\r\n") == 0);
    free(msg);
}

/* text + html: multipart/alternative, plain first, the exact layout. */
static void test_multipart_exact(void **state)
{
    (void)state;
    struct ntf_mime_msg m = base_msg();
    m.text = "Привет";
    m.html = "<p>Привет</p>\n";
    char *msg = build_ok(&m);
    assert_string_equal(msg, "From: Vestnik <noreply@example.org>\r\n"
                             "To: Ivan Petrov <ivan@example.com>\r\n"
                             "Subject: Hello\r\n"
                             "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                             "Message-ID: <abc123@example.org>\r\n"
                             "MIME-Version: 1.0\r\n"
                             "Content-Type: multipart/alternative;\r\n"
                             " boundary=\"=_vn_B0UNDARY\"\r\n"
                             "\r\n"
                             "--=_vn_B0UNDARY\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n"
                             "\r\n"
                             "=D0=9F=D1=80=D0=B8=D0=B2=D0=B5=D1=82\r\n"
                             "--=_vn_B0UNDARY\r\n"
                             "Content-Type: text/html; charset=utf-8\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n"
                             "\r\n"
                             "<p>=D0=9F=D1=80=D0=B8=D0=B2=D0=B5=D1=82</p>\r\n"
                             "\r\n"
                             "--=_vn_B0UNDARY--\r\n");
    free(msg);

    /* random boundary: "=_vn_" + 32 hex, differs between builds */
    m.boundary = NULL;
    char *a = build_ok(&m), *b = build_ok(&m);
    char *ca = header_value(a, "Content-Type"), *cb = header_value(b, "Content-Type");
    assert_int_equal(strlen(ca), strlen("multipart/alternative; boundary=\"=_vn_\"") + 32);
    assert_string_not_equal(ca, cb);
    free(ca);
    free(cb);
    free(a);
    free(b);
}

/* Whole messages stay within the line limits with long, hostile content. */
static void test_limits_whole_message(void **state)
{
    (void)state;
    struct vn_buf t = VN_BUF_INIT;
    for (int i = 0; i < 2000; i++)
        vn_buf_puts(&t, i % 50 == 49 ? ".\n" : "ж= \t");
    struct ntf_mime_msg m = base_msg();
    m.text = t.data;
    m.html = t.data;
    m.subject = "Тема 🎉 Тема 🎉 Тема 🎉 Тема 🎉 Тема 🎉 Тема 🎉 Тема 🎉 Тема 🎉 Тема 🎉";
    char *msg = build_ok(&m);
    const char *body = strstr(msg, "\r\n\r\n");
    assert_non_null(body);
    char *hdrs = xstrndup(msg, (size_t)(body - msg));
    assert_lines_max(hdrs, 78);
    assert_lines_max(body + 4, 76);
    free(hdrs);
    free(msg);
    vn_buf_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_cyrillic_emoji),
        cmocka_unit_test(test_subject_ascii_folded),
        cmocka_unit_test(test_encode_word_limits),
        cmocka_unit_test(test_qp),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_parse_mailbox),
        cmocka_unit_test(test_display_names),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_text_only_exact),
        cmocka_unit_test(test_multipart_exact),
        cmocka_unit_test(test_limits_whole_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
