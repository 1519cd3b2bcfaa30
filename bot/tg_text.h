/*
 * tg_text.h - text helpers for the Telegram Bot API: escaping for the HTML and
 * MarkdownV2 parse modes, UTF-8 repair, UTF-16 length, and splitting a long
 * message into parts Telegram accepts. Pure functions, no I/O.
 *
 * Telegram's rules (Bot API, "Formatting options"):
 *   HTML        '<', '>', '&' outside tags and entities must be entities; the
 *               only named entities are &lt; &gt; &amp; &quot; (numeric ones
 *               are all accepted).
 *   MarkdownV2  outside entities escape _ * [ ] ( ) ~ ` > # + - = | { } . ! and
 *               '\'; inside `code` and ```pre``` only ` and '\'; inside the
 *               (...) of an inline link or custom emoji only ')' and '\'. Any
 *               ASCII character 1..126 may be escaped anywhere.
 *   Length      a message text is 1..4096 characters after entity parsing,
 *               counted in UTF-16 code units (a code point >= U+10000, e.g.
 *               most emoji, counts 2).
 *
 * Invalid UTF-8: every function here treats each byte that does not start a
 * valid UTF-8 sequence (stray continuation bytes, overlong forms, surrogates,
 * code points above U+10FFFF, truncated sequences) as one U+FFFD, so Telegram
 * never rejects a message for its encoding. A truncated 4-byte sequence
 * therefore becomes up to three U+FFFD. NUL is valid UTF-8 and passes through.
 *
 * Splitting trade-offs (tg_split):
 * - The limit is applied to the markup as sent, including every tag, entity
 *   and escape, not to the text after Telegram parses it. That is
 *   conservative: a part can come out shorter than Telegram would allow, but
 *   is never rejected for length, and no parser of Telegram's has to be
 *   reproduced exactly to know a part fits.
 * - Cut preference: a paragraph break (a whitespace run holding two or more
 *   '\n'), then a line break, then a space. A better kind wins only if it
 *   leaves the part at least half full; otherwise the whitespace cut keeping
 *   the most text wins, so a paragraph break near the start does not make a
 *   tiny part. Only when no whitespace cut fits is a word cut, at the last
 *   character boundary that fits, and only as a last resort inside a
 *   sequence that renders as one symbol (before ZWJ U+200D, the code point
 *   after a ZWJ, variation selectors U+FE00..FE0F, skin tones
 *   U+1F3FB..1F3FF, combining marks U+0300..036F, keycap U+20E3, tag
 *   characters U+E0020..E007F, the second of a pair of regional indicators).
 *   That list is a cheap approximation of Unicode grapheme clusters (UAX
 *   #29), not the full algorithm.
 * - Never cut: inside a UTF-8 sequence (hence never between the halves of a
 *   surrogate pair), inside a tag or entity (HTML), inside an escape such as
 *   "\." (MarkdownV2), inside a link URL, inside a custom emoji (<tg-emoji>
 *   or ![..](tg://emoji..)), right after an opening tag or right before a
 *   closing one (that would only leave an empty element behind).
 * - The whitespace run at a cut is dropped: the part before ends without it,
 *   the part after starts without it. Inside <pre>/<code> (HTML) or code and
 *   pre (MarkdownV2) only the line break and the trailing blanks before it
 *   are dropped; the next line's indentation is kept, and spaces are never
 *   dropped. Whitespace at the very start and end of the text is kept unless
 *   a cut falls there (leading whitespace when the text does not fit in one
 *   part; trailing whitespace that does not fit in the last part).
 * - HTML: tags open at a cut are closed at the end of the part (innermost
 *   first) and reopened, with their original attributes, at the start of
 *   the next; <pre><code class="language-x"> therefore continues as the same
 *   code block and <a href="..."> as a second link to the same URL.
 * - MarkdownV2: the entity stack is tracked the way Telegram's parser does
 *   (an entity ends only when it is the innermost one; "__" is underline,
 *   taken greedily). Bold, italic, underline, strikethrough, spoiler, inline
 *   code, pre (reopened with its language: "```lang\n"), and inline links
 *   (closed with their "](url)", reopened with "[") are closed and reopened
 *   at a cut. Where a closing or reopening '_' would meet another '_' an
 *   empty bold "**" is put between them, as the Bot API documentation
 *   advises. Block quotes: after a cut at a line break the next part starts
 *   with that line's own '>' (before any other reopened marker, the order
 *   Telegram needs); after a cut inside a quoted line it starts with '>'. An
 *   expandable quote cut in two loses the expandable mark in the first part
 *   only. A quote inside another entity (a spoiler around it) is ended with
 *   a line break before that entity is closed at a cut, and the line break
 *   that ends such a quote is never itself the cut. A custom emoji is never
 *   cut.
 * - Markup that Telegram would reject (unknown entities, misnested or unclosed
 *   tags, bare '&' or '<', unescaped reserved characters) is split on a best
 *   effort basis: still no crash, still valid UTF-8 and within the limit, but
 *   the parts are only as well formed as the input was.
 * - Cost: O(n) time for ordinary text and about 16 bytes of scratch memory per
 *   code point; inputs over TG_SPLIT_MAX_BYTES are refused.
 */
#ifndef VN_TG_TEXT_H
#define VN_TG_TEXT_H

#include <stddef.h>

#include "core/common.h"

/* Telegram's limits in UTF-16 code units: message text and media caption. */
#define TG_TEXT_LIMIT    4096
#define TG_CAPTION_LIMIT 1024

/* Largest text tg_split accepts (bytes); 1 MiB is some 250 messages. */
#define TG_SPLIT_MAX_BYTES ((size_t)1 << 20)

enum tg_parse_mode {
    TG_PARSE_PLAIN, /* no parse_mode: text is shown as is */
    TG_PARSE_HTML,
    TG_PARSE_MD2, /* MarkdownV2 */
};

/* The parse_mode value for the Bot API ("HTML", "MarkdownV2"); NULL for plain
 * text or an unknown mode (then send no parse_mode at all). */
const char *tg_parse_mode_name(enum tg_parse_mode mode);

/* Where a string is going to be placed inside a MarkdownV2 message. */
enum tg_md2_ctx {
    TG_MD2_TEXT,     /* ordinary text, also inside *bold*, _italic_, [link text] */
    TG_MD2_CODE,     /* inside `code` or ```pre``` */
    TG_MD2_LINK_URL, /* inside the (...) of [text](url) or ![emoji](url) */
};

/*
 * Append s[0..len) to out so that Telegram's HTML parser shows it literally:
 * '&' '<' '>' '"' become &amp; &lt; &gt; &quot; (so the result is also safe
 * inside a double-quoted attribute such as href). Text that is already
 * escaped is escaped again ("&amp;" -> "&amp;amp;"): this function does not
 * guess. Invalid UTF-8 bytes become U+FFFD; out is always valid UTF-8.
 */
void tg_escape_html(struct vn_buf *out, const char *s, size_t len);

/*
 * Append s[0..len) to out, escaped for MarkdownV2 in the given context (see
 * the rules above): each character that context reserves gets a '\' before
 * it. Invalid UTF-8 bytes become U+FFFD. An unknown ctx is treated as
 * TG_MD2_TEXT, which escapes the most.
 */
void tg_escape_md2(struct vn_buf *out, const char *s, size_t len, enum tg_md2_ctx ctx);

/* 1 if s[0..len) is valid UTF-8 (NUL allowed), else 0. */
int tg_utf8_valid(const char *s, size_t len);

/*
 * Append s[0..len) to out with every byte that starts no valid UTF-8 sequence
 * replaced by U+FFFD (EF BF BD). Returns the number of bytes replaced (0 means
 * the text was appended unchanged).
 */
size_t tg_utf8_sanitize(struct vn_buf *out, const char *s, size_t len);

/*
 * Length of s[0..len) in UTF-16 code units, the way Telegram counts: 1 per
 * code point below U+10000, 2 above; each invalid byte counts 1 (the U+FFFD
 * it becomes). The length-bounded sibling of tg_utf16_len() in
 * bot/tg_update.h (NUL-terminated): the two agree on valid UTF-8, but an
 * ill-formed sequence such as an overlong form or a surrogate counts here as
 * one unit per byte, as tg_utf8_sanitize() repairs it.
 */
size_t tg_utf16_len_n(const char *s, size_t len);

/* One message of a split text. */
struct tg_part {
    char *text;       /* NUL-terminated; owned by the struct tg_parts */
    size_t len;       /* bytes, NUL excluded */
    size_t utf16_len; /* UTF-16 code units of text, <= the limit */
    /* The bytes [src_off, src_end) of the (UTF-8 repaired) input this part
     * carries; text is those bytes plus the markup closed or reopened at the
     * cuts (in MarkdownV2 a quoted line's own leading '>' may sit among the
     * reopened markers). Between two parts lies only the whitespace dropped
     * at the cut. */
    size_t src_off;
    size_t src_end;
};

struct tg_parts {
    struct tg_part *v;
    size_t n;
};

/*
 * Split text[0..len), written for parse mode `mode`, into parts of at most
 * limit_utf16 UTF-16 code units each (0 means TG_TEXT_LIMIT), following the
 * rules and preferences described at the top of this file. A text that fits
 * comes back as one part, byte for byte (after UTF-8 repair). Parts never
 * consist of whitespace and markup alone: a text without visible characters
 * gives zero parts, and such a remainder after the last cut is dropped.
 *
 * *out is initialised here; on success the caller owns it and frees it with
 * tg_parts_free(). Returns 0, VN_EINVAL for a bad argument or a limit too
 * small to make progress (a tag, entity, link URL or custom emoji longer than
 * the limit, or open tags that leave no room for text), or VN_ETOOBIG for a
 * text over TG_SPLIT_MAX_BYTES. On error *out is empty and nothing leaks.
 */
int tg_split(const char *text, size_t len, enum tg_parse_mode mode, size_t limit_utf16,
             struct tg_parts *out);

/* Free every part; leaves *parts empty. NULL and an empty struct are fine. */
void tg_parts_free(struct tg_parts *parts);

/*
 * Module-internal, for tests and the fuzz target: 0 if s[0..len) is markup
 * Telegram's parser would accept as far as structure goes (HTML: every tag
 * closed in order, every '<' and '&' part of a tag or a known entity;
 * MarkdownV2: no reserved character unescaped outside an entity, every entity
 * closed; plain: always), else VN_EINVAL. It does not know the list of
 * supported tags nor check URLs.
 */
int tg__check_markup(const char *s, size_t len, enum tg_parse_mode mode);

#endif
