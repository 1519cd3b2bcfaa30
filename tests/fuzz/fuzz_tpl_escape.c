/*
 * fuzz_tpl_escape.c - libFuzzer target: no value can inject markup.
 *
 * The input is one untrusted value (any bytes). It is rendered into fixed
 * templates for every target, and the result is decoded back and compared:
 *  - Telegram HTML: Telegram's parser accepts the result, the template's
 *    own four tags are the only tags, and the text decodes to the value;
 *  - Telegram MarkdownV2: accepted, and unescaping gives the value back;
 *  - e-mail HTML: no '<', '>' or quote came from the value;
 *  - JSON: it parses, has exactly the template's keys, and the strings
 *    read back as the value;
 *  - a subject line holds no line break.
 * "The value" means the value with invalid UTF-8 (and NUL outside JSON)
 * replaced by U+FFFD, which every target promises.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "bot/tg_text.h"
#include "templates/tpl.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

enum { T_TG, T_MD2, T_MAIL, T_JSON, T_LINE, T_COUNT };

static const struct {
    enum tpl_target target;
    const char *src;
} cases[T_COUNT] = {
    [T_TG] = {TPL_TARGET_TG_HTML, "<b>{{v}}</b><a href=\"{{{v}}}\">{{& v}}</a>"},
    [T_MD2] = {TPL_TARGET_TG_MD2, "*{{v}}*"},
    [T_MAIL] = {TPL_TARGET_EMAIL_HTML, "<p title=\"{{v}}\" class='{{v}}'>{{{v}}}</p>"},
    [T_JSON] = {TPL_TARGET_JSON, "{\"a\": \"{{v}}\", \"b\": {{v}}}"},
    [T_LINE] = {TPL_TARGET_LINE, "Re: {{v}}"},
};

static struct tpl *compiled[T_COUNT];

/* The value as every target promises to see it: UTF-8 repaired; NUL too
 * unless keep_nul. */
static void repaired(struct vn_buf *b, const char *s, size_t len, int keep_nul)
{
    vn_buf_reset(b);
    tg_utf8_sanitize(b, s, len);
    if (!keep_nul) {
        struct vn_buf c = VN_BUF_INIT;
        for (size_t i = 0; i < b->len; i++) {
            if (b->data[i] == '\0')
                vn_buf_puts(&c, "\xEF\xBF\xBD");
            else
                vn_buf_putc(&c, b->data[i]);
        }
        vn_buf_reset(b);
        vn_buf_append(b, c.data ? c.data : "", c.len);
        vn_buf_free(&c);
    }
    if (b->data == NULL)
        vn_buf_append(b, "", 0);
}

static size_t count(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == c;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (compiled[0] == NULL)
        for (int i = 0; i < T_COUNT; i++) {
            struct tpl_compile_opts co = {"escape", cases[i].target, NULL};
            compiled[i] = tpl_compile(cases[i].src, strlen(cases[i].src), &co, NULL);
            CHECK(compiled[i] != NULL);
        }
    if (size > 4096)
        return 0;
    const char *v = (const char *)data;
    struct json_object *d = json_object_new_object();
    json_object_object_add(d, "v", json_object_new_string_len(v, (int)size));
    struct vn_buf out = VN_BUF_INIT, want = VN_BUF_INIT, dec = VN_BUF_INIT;
    struct tpl_error err;

    /* Telegram HTML */
    CHECK(tpl_render(compiled[T_TG], d, NULL, &out, &err) == 0);
    CHECK(tg__check_markup(out.data, out.len, TG_PARSE_HTML) == 0);
    CHECK(count(out.data, out.len, '<') == 4 && count(out.data, out.len, '>') == 4);
    CHECK(count(out.data, out.len, '"') == 2);
    repaired(&want, v, size, 0);
    {
        /* <b>TEXT</b>: decode the entities back */
        const char *s = out.data + 3, *e = strstr(s, "</b>");
        CHECK(e != NULL);
        vn_buf_reset(&dec);
        for (const char *p = s; p < e;) {
            static const char *const ents[][2] = {
                {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""}};
            size_t k = 0;
            if (*p == '&') {
                for (k = 0; k < 4; k++)
                    if (strncmp(p, ents[k][0], strlen(ents[k][0])) == 0)
                        break;
                CHECK(k < 4);
                vn_buf_puts(&dec, ents[k][1]);
                p += strlen(ents[k][0]);
            } else {
                vn_buf_putc(&dec, *p++);
            }
        }
        CHECK(dec.len == want.len && memcmp(dec.data ? dec.data : "", want.data, want.len) == 0);
    }

    /* MarkdownV2 */
    vn_buf_reset(&out);
    CHECK(tpl_render(compiled[T_MD2], d, NULL, &out, &err) == 0);
    CHECK(tg__check_markup(out.data, out.len, TG_PARSE_MD2) == 0);
    vn_buf_reset(&dec);
    for (size_t i = 1; i + 1 < out.len; i++) {
        if (out.data[i] == '\\')
            i++;
        else
            CHECK(strchr("_*[]()~`>#+-=|{}.!", out.data[i]) == NULL || out.data[i] == '\0');
        vn_buf_putc(&dec, out.data[i]);
    }
    CHECK(dec.len == want.len && memcmp(dec.data ? dec.data : "", want.data, want.len) == 0);

    /* e-mail HTML: the template's own quotes and brackets only */
    vn_buf_reset(&out);
    CHECK(tpl_render(compiled[T_MAIL], d, NULL, &out, &err) == 0);
    CHECK(tg_utf8_valid(out.data, out.len));
    CHECK(count(out.data, out.len, '<') == 2 && count(out.data, out.len, '>') == 2);
    CHECK(count(out.data, out.len, '"') == 2 && count(out.data, out.len, '\'') == 2);

    /* JSON */
    vn_buf_reset(&out);
    CHECK(tpl_render(compiled[T_JSON], d, NULL, &out, &err) == 0);
    struct json_object *r = json_tokener_parse(out.data), *x;
    CHECK(r != NULL && json_object_object_length(r) == 2);
    repaired(&want, v, size, 1);
    CHECK(json_object_object_get_ex(r, "a", &x));
    CHECK((size_t)json_object_get_string_len(x) == want.len &&
          memcmp(json_object_get_string(x), want.data, want.len) == 0);
    CHECK(json_object_object_get_ex(r, "b", &x));
    CHECK((size_t)json_object_get_string_len(x) == want.len &&
          memcmp(json_object_get_string(x), want.data, want.len) == 0);
    json_object_put(r);

    /* subject */
    vn_buf_reset(&out);
    CHECK(tpl_render(compiled[T_LINE], d, NULL, &out, &err) == 0);
    CHECK(memchr(out.data, '\n', out.len) == NULL && memchr(out.data, '\r', out.len) == NULL);

    vn_buf_free(&out);
    vn_buf_free(&want);
    vn_buf_free(&dec);
    json_object_put(d);
    return 0;
}
