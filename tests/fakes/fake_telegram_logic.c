/*
 * fake_telegram_logic.c - pure helpers of the fake Bot API server: text
 * measures, Telegram's message markup parsers, strict-mode rate arithmetic
 * and form decoding. No I/O; see fake_telegram.h for the contracts.
 *
 * The markup parsers follow the behaviour of Telegram's own parser (tdlib's
 * parse_html / parse_markdown_v2, as documented by its tests): the same
 * error descriptions and byte offsets for the mistakes clients really make
 * (unescaped reserved characters, unclosed entities and tags, unknown tags),
 * the same plain text, and entities with UTF-16 offsets. URL validation and
 * entity normalisation are simplified.
 */
#include "fake_telegram.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text measures -------------------------------------------------------- */

int fk_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n) /* truncated sequence */
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

size_t fk_utf16_len(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80)
            n += c >= 0xF0 ? 2 : 1;
    }
    return n;
}

/* ---- parsed text ---------------------------------------------------------- */

void fk_text_init(struct fk_text *t)
{
    memset(t, 0, sizeof(*t));
    vn_buf_init(&t->plain);
}

void fk_text_cleanup(struct fk_text *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->ents[i].url);
        free(t->ents[i].language);
        free(t->ents[i].custom_emoji_id);
    }
    free(t->ents);
    vn_buf_free(&t->plain);
    memset(t, 0, sizeof(*t));
}

int fk_parse_mode_from(const char *name, enum fk_parse_mode *mode)
{
    if (name == NULL || *name == '\0' || strcasecmp(name, "none") == 0)
        *mode = FK_MODE_NONE;
    else if (strcasecmp(name, "html") == 0)
        *mode = FK_MODE_HTML;
    else if (strcasecmp(name, "markdown") == 0)
        *mode = FK_MODE_MARKDOWN;
    else if (strcasecmp(name, "markdownv2") == 0)
        *mode = FK_MODE_MARKDOWN_V2;
    else
        return VN_EINVAL;
    return 0;
}

/* Parser state shared by the three markups. */
struct pstate {
    struct fk_text *out;
    size_t u16; /* UTF-16 length of out->plain so far */
    char *err;
    size_t errlen;
};

static void put(struct pstate *ps, const char *s, size_t n)
{
    vn_buf_append(&ps->out->plain, s, n);
    ps->u16 += fk_utf16_len(s, n);
}

/* Copy the whole UTF-8 character at in[*i] and advance past it. */
static void put_char(struct pstate *ps, const char *in, size_t len, size_t *i)
{
    size_t n = 1;
    while (*i + n < len && ((unsigned char)in[*i + n] & 0xC0) == 0x80)
        n++;
    put(ps, in + *i, n);
    *i += n;
}

static int parse_fail(struct pstate *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int parse_fail(struct pstate *ps, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err, ps->errlen, fmt, ap);
    va_end(ap);
    return VN_EINVAL;
}

/* Add an entity [start, now) unless it is empty. Strings are copied. */
static void add_entity(struct pstate *ps, const char *type, size_t start, const char *url,
                       const char *language, const char *emoji)
{
    struct fk_text *t = ps->out;
    if (ps->u16 <= start)
        return;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->ents = xrealloc(t->ents, t->cap * sizeof(*t->ents));
    }
    struct fk_entity *e = &t->ents[t->n++];
    memset(e, 0, sizeof(*e));
    e->type = type;
    e->offset = start;
    e->length = ps->u16 - start;
    e->url = url && *url ? xstrdup(url) : NULL;
    e->language = language && *language ? xstrdup(language) : NULL;
    e->custom_emoji_id = emoji && *emoji ? xstrdup(emoji) : NULL;
}

/* Entities come out inner-first; Telegram lists them by offset, outer first. */
static int ent_cmp(const void *a, const void *b)
{
    const struct fk_entity *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->length != y->length)
        return x->length > y->length ? -1 : 1;
    return strcmp(x->type, y->type);
}

static void sort_entities(struct fk_text *t)
{
    if (t->n > 1)
        qsort(t->ents, t->n, sizeof(*t->ents), ent_cmp);
}

json_object *fk_text_entities_json(const struct fk_text *t)
{
    if (t->n == 0)
        return NULL;
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < t->n; i++) {
        const struct fk_entity *e = &t->ents[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "offset", json_object_new_int64((int64_t)e->offset));
        json_object_object_add(o, "length", json_object_new_int64((int64_t)e->length));
        json_object_object_add(o, "type", json_object_new_string(e->type));
        if (e->url)
            json_object_object_add(o, "url", json_object_new_string(e->url));
        if (e->language)
            json_object_object_add(o, "language", json_object_new_string(e->language));
        if (e->custom_emoji_id)
            json_object_object_add(o, "custom_emoji_id",
                                   json_object_new_string(e->custom_emoji_id));
        json_object_array_add(arr, o);
    }
    return arr;
}

/* Append code point cp as UTF-8. */
static void put_cp(struct pstate *ps, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    put(ps, b, n);
}

/* ---- HTML ----------------------------------------------------------------- */

#define HTML_MAX_DEPTH 32

struct html_tag {
    char name[16];
    size_t start;   /* UTF-16 offset where the entity starts */
    char *url;      /* a href */
    char *language; /* pre: set by a <code class="language-x"> child */
    char *emoji;    /* tg-emoji emoji-id */
    int expandable; /* blockquote expandable */
    int code_lang;  /* code with a language class directly inside pre */
};

static const char *const html_tags[] = {
    "a", "b",   "strong",     "i",        "em",   "s",   "strike", "del",
    "u", "ins", "tg-spoiler", "tg-emoji", "span", "pre", "code",   "blockquote"};

static int html_supported(const char *name)
{
    for (size_t i = 0; i < VN_ARRAY_LEN(html_tags); i++)
        if (strcmp(html_tags[i], name) == 0)
            return 1;
    return 0;
}

static const char *html_entity_type(const struct html_tag *t)
{
    const char *n = t->name;
    if (!strcmp(n, "b") || !strcmp(n, "strong"))
        return "bold";
    if (!strcmp(n, "i") || !strcmp(n, "em"))
        return "italic";
    if (!strcmp(n, "u") || !strcmp(n, "ins"))
        return "underline";
    if (!strcmp(n, "s") || !strcmp(n, "strike") || !strcmp(n, "del"))
        return "strikethrough";
    if (!strcmp(n, "tg-spoiler") || !strcmp(n, "span"))
        return "spoiler";
    if (!strcmp(n, "a"))
        return t->url ? "text_link" : NULL;
    if (!strcmp(n, "code"))
        return t->code_lang ? NULL : "code";
    if (!strcmp(n, "pre"))
        return "pre";
    if (!strcmp(n, "tg-emoji"))
        return "custom_emoji";
    if (!strcmp(n, "blockquote"))
        return t->expandable ? "expandable_blockquote" : "blockquote";
    return NULL;
}

static void html_tag_free(struct html_tag *t)
{
    free(t->url);
    free(t->language);
    free(t->emoji);
}

/*
 * Decode the character reference at in[*i] == '&'. &lt; &gt; &amp; &quot;
 * (the ';' optional) and numeric references are decoded; anything else is a
 * literal '&'. Returns VN_EINVAL for a reference to a surrogate.
 */
static int html_entity(struct pstate *ps, const char *in, size_t len, size_t *i)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}};
    size_t j = *i + 1;
    if (j < len && in[j] == '#') {
        uint32_t cp = 0;
        int hex = 0, digits = 0, big = 0;
        j++;
        if (j < len && (in[j] == 'x' || in[j] == 'X')) {
            hex = 1;
            j++;
        }
        while (j < len && (hex ? isxdigit((unsigned char)in[j]) : isdigit((unsigned char)in[j]))) {
            unsigned d = isdigit((unsigned char)in[j])
                             ? (unsigned)(in[j] - '0')
                             : (unsigned)(tolower((unsigned char)in[j]) - 'a' + 10);
            if (cp > 0x10FFFF)
                big = 1;
            else
                cp = cp * (hex ? 16u : 10u) + d;
            digits++;
            j++;
        }
        if (digits > 0 && !big && cp != 0 && cp <= 0x10FFFF) {
            if (cp >= 0xD800 && cp <= 0xDFFF)
                return parse_fail(ps,
                                  "Text contains invalid Unicode characters after decoding HTML "
                                  "entities, check for unmatched surrogate code units");
            if (j < len && in[j] == ';')
                j++;
            put_cp(ps, cp);
            *i = j;
            return 0;
        }
    } else {
        size_t k = j;
        while (k < len && isalpha((unsigned char)in[k]))
            k++;
        for (size_t n = 0; n < VN_ARRAY_LEN(named); n++) {
            size_t nl = strlen(named[n].name);
            if (k - j == nl && memcmp(in + j, named[n].name, nl) == 0) {
                if (k < len && in[k] == ';')
                    k++;
                put(ps, &named[n].c, 1);
                *i = k;
                return 0;
            }
        }
    }
    put(ps, "&", 1);
    (*i)++;
    return 0;
}

/* An attribute value with character references decoded, into a fresh string. */
static char *html_attr_value(const char *s, size_t n)
{
    struct fk_text tmp;
    struct pstate ps;
    char err[8];
    fk_text_init(&tmp);
    memset(&ps, 0, sizeof(ps));
    ps.out = &tmp;
    ps.err = err;
    ps.errlen = sizeof(err);
    for (size_t i = 0; i < n;) {
        if (s[i] == '&') {
            if (html_entity(&ps, s, n, &i) != 0)
                i++;
        } else {
            put(&ps, s + i, 1);
            i++;
        }
    }
    char *v = vn_buf_steal(&tmp.plain);
    fk_text_cleanup(&tmp);
    return v ? v : xstrdup("");
}

static int is_html_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* Parse a start tag at in[*i] == '<' and push it. */
static int html_start_tag(struct pstate *ps, const char *in, size_t len, size_t *i,
                          struct html_tag *stack, size_t *depth)
{
    size_t begin = *i, j = *i + 1, k;
    struct html_tag tag;
    memset(&tag, 0, sizeof(tag));

    k = j;
    while (k < len && !is_html_space(in[k]) && in[k] != '>')
        k++;
    if (k >= len)
        return parse_fail(ps, "Unclosed start tag at byte offset %zu", begin);
    size_t nlen = k - j;
    if (nlen >= sizeof(tag.name) || nlen == 0) {
        return parse_fail(ps, "Unsupported start tag \"%.*s\" at byte offset %zu",
                          (int)(nlen > 64 ? 64 : nlen), in + j, begin);
    }
    for (size_t q = 0; q < nlen; q++)
        tag.name[q] = (char)tolower((unsigned char)in[j + q]);
    tag.name[nlen] = '\0';
    if (!html_supported(tag.name))
        return parse_fail(ps, "Unsupported start tag \"%s\" at byte offset %zu", tag.name, begin);

    j = k;
    int rc = 0;
    char *span_class = NULL;
    for (;;) {
        while (j < len && is_html_space(in[j]))
            j++;
        if (j >= len) {
            rc = parse_fail(ps, "Unclosed start tag \"%s\" at byte offset %zu", tag.name, begin);
            goto out;
        }
        if (in[j] == '>')
            break;
        size_t an = j;
        while (j < len && is_name_char(in[j]))
            j++;
        if (j == an) {
            rc = parse_fail(ps, "Empty attribute name in the tag \"%s\" at byte offset %zu",
                            tag.name, begin);
            goto out;
        }
        char aname[32];
        snprintf(aname, sizeof(aname), "%.*s", (int)(j - an), in + an);
        for (char *c = aname; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        while (j < len && is_html_space(in[j]))
            j++;
        char *value = NULL;
        if (j < len && in[j] == '=') {
            j++;
            while (j < len && is_html_space(in[j]))
                j++;
            if (j >= len) {
                rc =
                    parse_fail(ps, "Unclosed start tag \"%s\" at byte offset %zu", tag.name, begin);
                goto out;
            }
            if (in[j] == '"' || in[j] == '\'') {
                const char *end = memchr(in + j + 1, in[j], len - j - 1);
                if (end == NULL) {
                    rc = parse_fail(ps, "Unclosed start tag at byte offset %zu", begin);
                    goto out;
                }
                value = html_attr_value(in + j + 1, (size_t)(end - in) - j - 1);
                j = (size_t)(end - in) + 1;
            } else {
                size_t vs = j;
                while (j < len && (isalnum((unsigned char)in[j]) || in[j] == '.' || in[j] == '-' ||
                                   in[j] == '_'))
                    j++;
                if (j < len && !is_html_space(in[j]) && in[j] != '>') {
                    rc = parse_fail(ps, "Unexpected end of name token at byte offset %zu", vs);
                    goto out;
                }
                value = xstrndup(in + vs, j - vs);
            }
        }
        if (!strcmp(tag.name, "a") && !strcmp(aname, "href") && value) {
            free(tag.url);
            tag.url = value;
            value = NULL;
        } else if (!strcmp(tag.name, "tg-emoji") && !strcmp(aname, "emoji-id") && value) {
            free(tag.emoji);
            tag.emoji = value;
            value = NULL;
        } else if ((!strcmp(tag.name, "span") || !strcmp(tag.name, "code")) &&
                   !strcmp(aname, "class") && value) {
            free(span_class);
            span_class = value;
            value = NULL;
        } else if (!strcmp(tag.name, "blockquote") && !strcmp(aname, "expandable")) {
            tag.expandable = 1;
        }
        free(value);
    }
    j++; /* '>' */

    if (!strcmp(tag.name, "span") &&
        (span_class == NULL || strcmp(span_class, "tg-spoiler") != 0)) {
        rc =
            parse_fail(ps, "Tag \"span\" must have class \"tg-spoiler\" at byte offset %zu", begin);
        goto out;
    }
    if (!strcmp(tag.name, "tg-emoji") && tag.emoji == NULL) {
        rc = parse_fail(ps, "Custom emoji entity must contain a tg://emoji URL");
        goto out;
    }
    if (!strcmp(tag.name, "code") && span_class && strncmp(span_class, "language-", 9) == 0 &&
        span_class[9] && *depth > 0 && !strcmp(stack[*depth - 1].name, "pre") &&
        stack[*depth - 1].start == ps->u16) {
        struct html_tag *pre = &stack[*depth - 1];
        free(pre->language);
        pre->language = xstrdup(span_class + 9);
        tag.code_lang = 1;
    }
    if (*depth >= HTML_MAX_DEPTH) {
        rc = parse_fail(ps, "Too many nested tags at byte offset %zu", begin);
        goto out;
    }
    tag.start = ps->u16;
    stack[(*depth)++] = tag;
    memset(&tag, 0, sizeof(tag));
    *i = j;
out:
    free(span_class);
    html_tag_free(&tag);
    return rc;
}

static int html_end_tag(struct pstate *ps, const char *in, size_t len, size_t *i,
                        struct html_tag *stack, size_t *depth)
{
    size_t begin = *i, j = *i + 2;
    if (*depth == 0)
        return parse_fail(ps, "Unexpected end tag at byte offset %zu", begin);
    size_t ns = j;
    while (j < len && !is_html_space(in[j]) && in[j] != '>')
        j++;
    size_t nlen = j - ns;
    while (j < len && is_html_space(in[j]))
        j++;
    if (j >= len || in[j] != '>')
        return parse_fail(ps, "Unclosed end tag at byte offset %zu", begin);
    struct html_tag *top = &stack[*depth - 1];
    if (nlen > 0 && (nlen != strlen(top->name) || strncasecmp(in + ns, top->name, nlen) != 0))
        return parse_fail(
            ps, "Unmatched end tag at byte offset %zu, expected \"</%s>\", found \"</%.*s>\"",
            begin, top->name, (int)(nlen > 64 ? 64 : nlen), in + ns);
    const char *type = html_entity_type(top);
    if (type)
        add_entity(ps, type, top->start, top->url, top->language, top->emoji);
    html_tag_free(top);
    (*depth)--;
    *i = j + 1;
    return 0;
}

static int parse_html(struct pstate *ps, const char *in, size_t len)
{
    struct html_tag stack[HTML_MAX_DEPTH];
    size_t depth = 0, i = 0;
    int rc = 0;
    while (i < len) {
        char c = in[i];
        if (c == '&') {
            rc = html_entity(ps, in, len, &i);
        } else if (c == '<' && i + 1 < len && in[i + 1] == '/') {
            rc = html_end_tag(ps, in, len, &i, stack, &depth);
        } else if (c == '<') {
            rc = html_start_tag(ps, in, len, &i, stack, &depth);
        } else {
            put_char(ps, in, len, &i);
        }
        if (rc)
            goto out;
    }
    if (depth > 0)
        rc = parse_fail(ps, "Can't find end tag corresponding to start tag \"%s\"",
                        stack[depth - 1].name);
out:
    for (size_t k = 0; k < depth; k++)
        html_tag_free(&stack[k]);
    return rc;
}

/* ---- MarkdownV2 ----------------------------------------------------------- */

enum md_type {
    MD_BOLD,
    MD_ITALIC,
    MD_UNDERLINE,
    MD_STRIKE,
    MD_SPOILER,
    MD_CODE,
    MD_PRE,
    MD_PRECODE,
    MD_TEXTURL,
    MD_EMOJI
};

static const char *const md_names[] = {"Bold",    "Italic",     "Underline", "Strikethrough",
                                       "Spoiler", "Code",       "Pre",       "PreCode",
                                       "TextUrl", "CustomEmoji"};
static const char *const md_types[] = {"bold",      "italic",      "underline", "strikethrough",
                                       "spoiler",   "code",        "pre",       "pre",
                                       "text_link", "custom_emoji"};

struct md_open {
    enum md_type type;
    size_t start; /* UTF-16 */
    size_t byte;  /* offset of the opening mark in the input */
    char *language;
};

#define MD_MAX_DEPTH 32

static int is_line_start(const char *in, size_t i)
{
    return i == 0 || in[i - 1] == '\n' || in[i - 1] == '\r';
}

/* Read "(url)" after a ']' at in[*i]; the URL is copied unescaped into *url. */
static int md_link_url(struct pstate *ps, const char *in, size_t len, size_t *i, char **url,
                       int emoji)
{
    size_t j = *i + 1;
    *url = NULL;
    if (j >= len || in[j] != '(') {
        *i = j;
        return 0; /* "[text]" alone: Telegram uses the text as the URL */
    }
    struct vn_buf u = VN_BUF_INIT;
    size_t start = j + 1;
    for (j = start; j < len && in[j] != ')'; j++) {
        if (in[j] == '\\' && j + 1 < len)
            j++;
        vn_buf_putc(&u, in[j]);
    }
    if (j >= len) {
        vn_buf_free(&u);
        return parse_fail(ps, "Can't find end of a %sURL at byte offset %zu",
                          emoji ? "custom emoji " : "", start);
    }
    *url = vn_buf_steal(&u);
    if (*url == NULL)
        *url = xstrdup("");
    *i = j + 1;
    return 0;
}

static int parse_markdown_v2(struct pstate *ps, const char *in, size_t len)
{
    static const char reserved[] = "_*[]()~`>#+-=|{}.!";
    struct md_open stack[MD_MAX_DEPTH];
    size_t depth = 0, i = 0;
    size_t quote_start = 0, quote_depth = 0;
    int in_quote = 0, quote_expandable = 0, rc = 0;

    while (i < len) {
        char c = in[i];
        int in_code =
            depth > 0 && (stack[depth - 1].type == MD_CODE || stack[depth - 1].type == MD_PRE ||
                          stack[depth - 1].type == MD_PRECODE);

        /* Block quotes: '>' (or "**>" for expandable) at the start of a line. */
        if (!in_code && is_line_start(in, i)) {
            int quoted = c == '>' || (i + 2 < len && !strncmp(in + i, "**>", 3));
            if (in_quote && !quoted) {
                if (depth > quote_depth) {
                    rc = parse_fail(ps, "Can't find end of %s entity at byte offset %zu",
                                    md_names[stack[depth - 1].type], stack[depth - 1].byte);
                    goto out;
                }
                add_entity(ps, quote_expandable ? "expandable_blockquote" : "blockquote",
                           quote_start, NULL, NULL, NULL);
                in_quote = 0;
            }
            if (quoted) {
                if (!in_quote) {
                    in_quote = 1;
                    quote_expandable = c != '>';
                    quote_start = ps->u16;
                    quote_depth = depth;
                }
                i += c == '>' ? 1 : 3;
                continue;
            }
        }

        if (c == '\\' && i + 1 < len && in[i + 1] > 0 && in[i + 1] <= 126) {
            put(ps, in + i + 1, 1);
            i += 2;
            continue;
        }
        if (in_code && c != '`') {
            put_char(ps, in, len, &i);
            continue;
        }
        if (c == '\0' || strchr(reserved, c) == NULL) {
            put_char(ps, in, len, &i);
            continue;
        }

        /* "||" closing the last line of a quote marks it expandable. */
        if (in_quote && c == '|' && i + 1 < len && in[i + 1] == '|' &&
            (i + 2 == len || in[i + 2] == '\n' || in[i + 2] == '\r') &&
            !(depth > 0 && stack[depth - 1].type == MD_SPOILER)) {
            quote_expandable = 1;
            i += 2;
            continue;
        }

        enum md_type type;
        int is_end = 0;
        size_t mark = i;
        if (depth > 0) {
            enum md_type top = stack[depth - 1].type;
            switch (c) {
            case '_':
                if (i + 1 < len && in[i + 1] == '_')
                    is_end = top == MD_UNDERLINE;
                else
                    is_end = top == MD_ITALIC;
                break;
            case '*':
                is_end = top == MD_BOLD;
                break;
            case '~':
                is_end = top == MD_STRIKE;
                break;
            case '|':
                is_end = top == MD_SPOILER;
                break;
            case ']':
                is_end = top == MD_TEXTURL || top == MD_EMOJI;
                break;
            case '`':
                is_end = top == MD_CODE || top == MD_PRE || top == MD_PRECODE;
                break;
            default:
                break;
            }
            if (is_end && top == MD_SPOILER && !(i + 1 < len && in[i + 1] == '|'))
                is_end = 0;
            if (is_end && (top == MD_PRE || top == MD_PRECODE) &&
                !(i + 2 < len && in[i + 1] == '`' && in[i + 2] == '`'))
                is_end = 0;
        }

        if (is_end) {
            struct md_open *o = &stack[depth - 1];
            char *url = NULL;
            if (o->type == MD_UNDERLINE || o->type == MD_SPOILER)
                i += 2;
            else if (o->type == MD_PRE || o->type == MD_PRECODE)
                i += 3;
            else if (o->type == MD_TEXTURL || o->type == MD_EMOJI) {
                rc = md_link_url(ps, in, len, &i, &url, o->type == MD_EMOJI);
                if (rc)
                    goto out;
            } else
                i++;
            if (o->type == MD_TEXTURL) {
                if (url == NULL) {
                    /* "[text]" alone links to its own text. */
                    size_t blen = ps->out->plain.len;
                    size_t from = blen;
                    size_t u = ps->u16;
                    while (from > 0 && u > o->start) {
                        from--;
                        if (((unsigned char)ps->out->plain.data[from] & 0xC0) != 0x80)
                            u -= ((unsigned char)ps->out->plain.data[from] >= 0xF0) ? 2 : 1;
                    }
                    url = xstrndup(ps->out->plain.data ? ps->out->plain.data + from : "",
                                   blen - from);
                }
                add_entity(ps, "text_link", o->start, url, NULL, NULL);
            } else if (o->type == MD_EMOJI) {
                const char *p = url ? strstr(url, "id=") : NULL;
                if (url == NULL || strncasecmp(url, "tg://emoji", 10) != 0 || p == NULL) {
                    free(url);
                    rc = parse_fail(ps, "Custom emoji entity must contain a tg://emoji URL");
                    goto out;
                }
                add_entity(ps, "custom_emoji", o->start, NULL, NULL, p + 3);
            } else {
                add_entity(ps, md_types[o->type], o->start, NULL, o->language, NULL);
            }
            free(url);
            free(o->language);
            depth--;
            continue;
        }

        char *language = NULL;
        switch (c) {
        case '_':
            if (i + 1 < len && in[i + 1] == '_') {
                type = MD_UNDERLINE;
                i += 2;
            } else {
                type = MD_ITALIC;
                i++;
            }
            break;
        case '*':
            type = MD_BOLD;
            i++;
            break;
        case '~':
            type = MD_STRIKE;
            i++;
            break;
        case '|':
            if (!(i + 1 < len && in[i + 1] == '|')) {
                rc = parse_fail(
                    ps, "Character '|' is reserved and must be escaped with the preceding '\\'");
                goto out;
            }
            type = MD_SPOILER;
            i += 2;
            break;
        case '[':
            type = MD_TEXTURL;
            i++;
            break;
        case '!':
            if (!(i + 1 < len && in[i + 1] == '[')) {
                rc = parse_fail(
                    ps, "Character '!' is reserved and must be escaped with the preceding '\\'");
                goto out;
            }
            type = MD_EMOJI;
            i += 2;
            break;
        case '`':
            if (i + 2 < len && in[i + 1] == '`' && in[i + 2] == '`') {
                size_t ls = i + 3, le = ls;
                type = MD_PRE;
                while (le < len && !isspace((unsigned char)in[le]) && in[le] != '`')
                    le++;
                i = ls;
                if (le != ls && le < len && in[le] != '`') {
                    type = MD_PRECODE;
                    language = xstrndup(in + ls, le - ls);
                    i = le;
                }
                if (i < len && (in[i] == '\n' || in[i] == '\r')) {
                    if (i + 1 < len && (in[i + 1] == '\n' || in[i + 1] == '\r') &&
                        in[i] != in[i + 1])
                        i += 2;
                    else
                        i++;
                }
            } else {
                type = MD_CODE;
                i++;
            }
            break;
        default:
            rc = parse_fail(
                ps, "Character '%c' is reserved and must be escaped with the preceding '\\'", c);
            goto out;
        }
        if (depth >= MD_MAX_DEPTH) {
            free(language);
            rc = parse_fail(ps, "Too many nested entities at byte offset %zu", mark);
            goto out;
        }
        stack[depth].type = type;
        stack[depth].start = ps->u16;
        stack[depth].byte = mark;
        stack[depth].language = language;
        depth++;
    }
    if (depth > 0) {
        rc = parse_fail(ps, "Can't find end of %s entity at byte offset %zu",
                        md_names[stack[depth - 1].type], stack[depth - 1].byte);
        goto out;
    }
    if (in_quote)
        add_entity(ps, quote_expandable ? "expandable_blockquote" : "blockquote", quote_start, NULL,
                   NULL, NULL);
out:
    for (size_t k = 0; k < depth; k++)
        free(stack[k].language);
    return rc;
}

/* ---- legacy Markdown ------------------------------------------------------ */

static int parse_markdown_legacy(struct pstate *ps, const char *in, size_t len)
{
    size_t i = 0;
    while (i < len) {
        char c = in[i];
        if (c == '\\' && i + 1 < len && strchr("_*`[", in[i + 1]) && in[i + 1]) {
            put(ps, in + i + 1, 1);
            i += 2;
            continue;
        }
        if (c == '\0' || strchr("_*`[", c) == NULL) {
            put_char(ps, in, len, &i);
            continue;
        }
        size_t begin = i, start = ps->u16;
        if (c == '[') {
            const char *close = memchr(in + i + 1, ']', len - i - 1);
            size_t ce = close ? (size_t)(close - in) : len;
            if (close == NULL || ce + 1 >= len || in[ce + 1] != '(')
                return parse_fail(ps, "Can't find end of the entity starting at byte offset %zu",
                                  begin);
            const char *rp = memchr(in + ce + 2, ')', len - ce - 2);
            if (rp == NULL)
                return parse_fail(ps, "Can't find end of the entity starting at byte offset %zu",
                                  begin);
            put(ps, in + i + 1, ce - i - 1);
            char *url = xstrndup(in + ce + 2, (size_t)(rp - in) - ce - 2);
            add_entity(ps, "text_link", start, url, NULL, NULL);
            free(url);
            i = (size_t)(rp - in) + 1;
            continue;
        }
        if (c == '`' && i + 2 < len && in[i + 1] == '`' && in[i + 2] == '`') {
            size_t s = i + 3;
            const char *end = NULL;
            for (size_t k = s; k + 2 < len; k++)
                if (in[k] == '`' && in[k + 1] == '`' && in[k + 2] == '`') {
                    end = in + k;
                    break;
                }
            if (end == NULL)
                return parse_fail(ps, "Can't find end of the entity starting at byte offset %zu",
                                  begin);
            size_t e = (size_t)(end - in);
            char *language = NULL;
            const char *nl = memchr(in + s, '\n', e - s);
            if (nl && nl > in + s) {
                language = xstrndup(in + s, (size_t)(nl - in) - s);
                s = (size_t)(nl - in) + 1;
            }
            put(ps, in + s, e - s);
            add_entity(ps, "pre", start, NULL, language, NULL);
            free(language);
            i = e + 3;
            continue;
        }
        const char *end = memchr(in + i + 1, c, len - i - 1);
        if (end == NULL)
            return parse_fail(ps, "Can't find end of the entity starting at byte offset %zu",
                              begin);
        put(ps, in + i + 1, (size_t)(end - in) - i - 1);
        add_entity(ps, c == '*' ? "bold" : c == '_' ? "italic" : "code", start, NULL, NULL, NULL);
        i = (size_t)(end - in) + 1;
    }
    return 0;
}

int fk_markup_parse(enum fk_parse_mode mode, const char *in, size_t len, struct fk_text *out,
                    char *err, size_t errlen)
{
    struct pstate ps;
    int rc = 0;
    memset(&ps, 0, sizeof(ps));
    ps.out = out;
    ps.err = err;
    ps.errlen = errlen;
    if (errlen)
        err[0] = '\0';
    switch (mode) {
    case FK_MODE_NONE:
        put(&ps, in, len);
        break;
    case FK_MODE_HTML:
        rc = parse_html(&ps, in, len);
        break;
    case FK_MODE_MARKDOWN:
        rc = parse_markdown_legacy(&ps, in, len);
        break;
    case FK_MODE_MARKDOWN_V2:
        rc = parse_markdown_v2(&ps, in, len);
        break;
    }
    if (rc == 0)
        sort_entities(out);
    return rc;
}

/* ---- rate arithmetic ------------------------------------------------------ */

void fk_rate_cleanup(struct fk_rate *r)
{
    free(r->ts);
    memset(r, 0, sizeof(*r));
}

static double bucket_tokens(const struct fk_rate *r, const struct fk_limit *lim, uint64_t now)
{
    if (!r->primed)
        return (double)lim->n;
    double t = r->tokens;
    if (now > r->last_ms)
        t += (double)(now - r->last_ms) * (double)lim->n / (double)lim->window_ms;
    return t > (double)lim->n ? (double)lim->n : t;
}

uint64_t fk_rate_wait(const struct fk_rate *r, enum fk_rate_model model, const struct fk_limit *lim,
                      uint64_t now_ms)
{
    if (lim->n == 0 || lim->window_ms == 0)
        return 0;
    if (model == FK_RATE_BUCKET) {
        double t = bucket_tokens(r, lim, now_ms);
        if (t >= 1.0)
            return 0;
        double ms = (1.0 - t) * (double)lim->window_ms / (double)lim->n;
        uint64_t w = (uint64_t)ms;
        return (double)w < ms ? w + 1 : (w ? w : 1);
    }
    if (r->cap != lim->n || r->count < lim->n)
        return 0; /* a resized ring starts empty (see fk_rate_take) */
    uint64_t oldest = r->ts[r->head];
    uint64_t frees = oldest + lim->window_ms;
    return frees > now_ms ? frees - now_ms : 0;
}

void fk_rate_take(struct fk_rate *r, enum fk_rate_model model, const struct fk_limit *lim,
                  uint64_t now_ms)
{
    if (lim->n == 0 || lim->window_ms == 0)
        return;
    if (model == FK_RATE_BUCKET) {
        r->tokens = bucket_tokens(r, lim, now_ms) - 1.0;
        r->last_ms = now_ms;
        r->primed = 1;
        return;
    }
    if (r->cap != lim->n) {
        /* The limit changed: start a fresh log of the new size. */
        free(r->ts);
        r->ts = xcalloc(lim->n, sizeof(*r->ts));
        r->cap = lim->n;
        r->head = r->count = 0;
    }
    if (r->count < r->cap) {
        r->ts[(r->head + r->count) % r->cap] = now_ms;
        r->count++;
    } else {
        r->ts[r->head] = now_ms;
        r->head = (r->head + 1) % r->cap;
    }
}

unsigned fk_retry_after_s(uint64_t wait_ms)
{
    uint64_t s = (wait_ms + 999) / 1000;
    return s < 1 ? 1 : (unsigned)s;
}

/* ---- form decoding -------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void form_decode(struct vn_buf *b, const char *s, size_t n, int decode)
{
    vn_buf_reset(b);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (decode && c == '+') {
            c = ' ';
        } else if (decode && c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
                   hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        vn_buf_putc(b, c);
    }
}

int fk_form_parse(const char *s, size_t len, int decode, json_object *obj)
{
    struct vn_buf name = VN_BUF_INIT, value = VN_BUF_INIT;
    int rc = 0;
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - s) : len;
        if (end > i) {
            const char *eq = memchr(s + i, '=', end - i);
            size_t ne = eq ? (size_t)(eq - s) : end;
            form_decode(&name, s + i, ne - i, decode);
            form_decode(&value, eq ? eq + 1 : s + end, eq ? end - ne - 1 : 0, decode);
            if (name.len && memchr(name.data, '\0', name.len) == NULL) {
                if (!fk_utf8_valid(name.data, name.len) ||
                    !fk_utf8_valid(value.data ? value.data : "", value.len)) {
                    rc = VN_EINVAL;
                    goto out;
                }
                json_object_object_add(
                    obj, name.data,
                    json_object_new_string_len(value.data ? value.data : "", (int)value.len));
            }
        }
        i = end + 1;
    }
out:
    vn_buf_free(&name);
    vn_buf_free(&value);
    return rc;
}
