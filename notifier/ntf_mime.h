/*
 * ntf_mime.h - build an RFC 5322 / MIME e-mail message as bytes (pure, no I/O).
 *
 * The result uses CRLF line endings everywhere, keeps every header line at most
 * 78 characters where the syntax allows a fold (an address longer than a line is
 * kept whole: an addr-spec cannot be folded, the hard limit of 998 still holds)
 * and every body line at most 76 characters, and is 7-bit clean:
 * - Subject and display names with non-ASCII text become RFC 2047 encoded-words
 *   ("=?UTF-8?B?...?=", each at most 75 characters, never splitting a UTF-8
 *   sequence), folded onto continuation lines. ASCII names with specials become
 *   quoted-strings; ASCII subjects are folded at spaces.
 * - Bodies are quoted-printable (see ntf_mime_qp_encode for why not base64).
 * - text only gives a single text/plain part; text + html gives
 *   multipart/alternative (text/plain first, then text/html, as RFC 2046 orders
 *   them: least to most faithful), both charset=utf-8.
 *
 * Every header input is checked: CR or LF anywhere is refused as header
 * injection, other control characters and invalid UTF-8 are refused, addresses
 * get a minimal check (ntf_mime_check_addr). Errors name the field.
 */
#ifndef VN_NTF_MIME_H
#define VN_NTF_MIME_H

#include <stddef.h>
#include <time.h>

#include "core/common.h"

#define NTF_MIME_MAX_ADDR    254     /* RFC 5321 path limit minus the brackets */
#define NTF_MIME_MAX_NAME    256     /* display name, bytes */
#define NTF_MIME_MAX_SUBJECT 2048    /* bytes of UTF-8 before encoding */
#define NTF_MIME_MAX_MSGID   250     /* Message-ID without <> */
#define NTF_MIME_MAX_BODY    4194304 /* per part, bytes before encoding */

struct ntf_mime_msg {
    const char *from_name;  /* display name; NULL or "" = bare address */
    const char *from_addr;  /* required */
    const char *to_name;    /* display name; NULL or "" = bare address */
    const char *to_addr;    /* required */
    const char *subject;    /* required, may be "" */
    const char *text;       /* required, may be "": the text/plain part */
    const char *html;       /* NULL = single text/plain part */
    const char *message_id; /* required, "left@right" without <> */
    time_t date;            /* Date header, written in UTC (+0000) */
    /*
     * Boundary tail: 1..40 characters of [0-9A-Za-z]; the boundary is
     * "=_vn_" + this. NULL = 32 random hex digits (the only non-deterministic
     * part of the output). "=_" never occurs in quoted-printable text, so the
     * boundary cannot collide with a body line whatever the random part is.
     */
    const char *boundary;
};

/*
 * Append the whole message (headers, blank line, body) to out. Returns 0, or
 * VN_EINVAL / VN_ETOOBIG with a message naming the field in err (e.g.
 * "subject: contains CR or LF (header injection)"); out is then left as it was.
 */
int ntf_mime_build(const struct ntf_mime_msg *m, struct vn_buf *out, char *err, size_t errlen);

/*
 * Minimal address check: ASCII, exactly one '@' with something on both sides,
 * no spaces, controls or characters that would break the header syntax
 * (<>()[],;:"\), local part <= 64, whole <= 254 bytes. Returns 0 or VN_EINVAL
 * with the reason in err (without the field name).
 */
int ntf_mime_check_addr(const char *addr, char *err, size_t errlen);

/*
 * Split "Display Name <addr>" or a bare "addr" into fresh heap strings (*name is
 * NULL when absent; quotes around the name are removed). Checks the address
 * and refuses CR/LF. Returns 0 or VN_EINVAL with the reason in err.
 */
int ntf_mime_parse_mailbox(const char *s, char **name, char **addr, char *err, size_t errlen);

/*
 * Append s[0..len) (valid UTF-8) as RFC 2047 B encoded-words to out. *col is
 * the length of the current output line so far and is updated. Each word is at
 * most 75 characters and holds only whole UTF-8 sequences; a word that would
 * take the line past 78 characters starts a new line ("CRLF SP"). Words are
 * separated by folding white space, which decoders drop between two words, so
 * the decoded text is exactly s. Returns 0, or VN_EINVAL (invalid UTF-8, out
 * unchanged).
 */
int ntf_mime_encode_word(struct vn_buf *out, const char *s, size_t len, size_t *col);

/*
 * Append s[0..len) quoted-printable encoded (RFC 2045 6.7) to out. Line breaks
 * in s (CRLF, LF or a lone CR) become hard CRLF breaks; lines are soft-broken
 * ("=" CRLF) to at most 76 characters, never inside an "=XX" escape; '=',
 * bytes outside printable ASCII, and a space or tab before a line break or the
 * end are escaped. A '.' at the start of an output line is written "=2E" and a
 * leading "From " as "=46rom " so the text survives transports that do not
 * dot-stuff or that mangle mbox "From " lines. The output does not end with a
 * line break unless s does.
 *
 * Why quoted-printable rather than base64: line structure and mostly-ASCII text
 * stay readable in the raw message (logs, sinks, debugging), and the result is
 * 7-bit, so no 8BITMIME is needed. The price is size for non-Latin text
 * (Cyrillic takes ~3x in QP vs 1.33x in base64), acceptable for notifications.
 */
void ntf_mime_qp_encode(struct vn_buf *out, const char *s, size_t len);

/* Append the RFC 5322 date of t in UTC, e.g. "Thu, 01 Jan 1970 00:00:00 +0000". */
void ntf_mime_date(struct vn_buf *out, time_t t);

#endif
