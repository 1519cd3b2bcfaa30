/*
 * tg_update.c - parse one Telegram Update (JSON) into struct tg_update.
 *
 * Shape of the code: json-c tokenises the body under our limits (size,
 * depth, strict mode, UTF-8 checked); then small parse_* functions walk the
 * tree, each reading the members it models through typed getters that check
 * the JSON type, bounds, and presence, and that write the error (path + what)
 * at the first problem. Plain scalar members are described by tables of
 * struct field rows, so adding a field is one row.
 *
 * Memory: everything an update owns lives in one arena (a list of chunks)
 * hanging off a private wrapper around struct tg_update. A failed parse
 * simply drops the arena, so no error path has to free half-built objects,
 * and tg_update_free() is one loop.
 */
#include "bot/tg_update.h"

#include <json-c/json.h>

#include <limits.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 4096
#define PATH_LEN    ((int)sizeof(((struct tg_error *)0)->path))
/* utf16 map entry for the second half of a surrogate pair. */
#define MAP_SPLIT UINT32_MAX

struct tg_limits tg_limits_default(void)
{
    struct tg_limits lim = {
        .max_body = 1024 * 1024,
        .max_string = 64 * 1024,
        .max_depth = 32,
        .max_entities = 1000,
    };
    return lim;
}

/* ---- arena ------------------------------------------------------------- */

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

/* What tg_update_parse() really allocates; the public struct comes first so
   a struct tg_update * is also a struct owner *. */
struct owner {
    struct tg_update u;
    struct arena_chunk *arena;
};

/* Zeroed, max-aligned memory that lives as long as the update. */
static void *arena_alloc(struct owner *o, size_t n)
{
    const size_t align = alignof(max_align_t);
    struct arena_chunk *c = o->arena;

    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = xcalloc(1, sizeof(*c) + cap);
        c->cap = cap;
        c->next = o->arena;
        o->arena = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static char *arena_strndup(struct owner *o, const char *s, size_t n)
{
    char *p = arena_alloc(o, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void tg_update_free(struct tg_update *u)
{
    if (u == NULL)
        return;
    struct owner *o = (struct owner *)u;
    struct arena_chunk *c = o->arena;
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(o);
}

/* ---- UTF-16 accounting ------------------------------------------------- */

/*
 * Length in bytes (1..4) of the UTF-8 sequence at s (avail bytes readable)
 * and, through *units, how many UTF-16 code units it stands for. A byte that
 * does not start a complete sequence counts as one byte and one unit. A
 * continuation byte is only read after the previous one proved to be a
 * continuation byte, so on NUL-terminated text nothing past the NUL is read.
 */
static size_t utf8_step(const unsigned char *s, size_t avail, unsigned *units)
{
    unsigned char b = s[0];
    size_t n;

    *units = 1;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        n = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        n = 3;
    else if (b >= 0xF0 && b <= 0xF4)
        n = 4;
    else
        return 1;
    if (n > avail)
        return 1;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 1;
    }
    if (n == 4)
        *units = 2;
    return n;
}

size_t tg_utf16_len(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t units = 0;

    while (*s != '\0') {
        unsigned u;
        s += utf8_step(s, SIZE_MAX, &u);
        units += u;
    }
    return units;
}

ptrdiff_t tg_utf16_to_byte_offset(const char *text, size_t utf16_off)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t units = 0, bytes = 0;

    while (units < utf16_off) {
        unsigned u;
        if (s[bytes] == '\0')
            return -1;
        size_t n = utf8_step(s + bytes, SIZE_MAX, &u);
        if (units + u > utf16_off)
            return -1; /* between the halves of a surrogate pair */
        units += u;
        bytes += n;
    }
    return (ptrdiff_t)bytes;
}

/*
 * Map from UTF-16 offset to byte offset for text[0..len): map[k] is where
 * unit k starts (MAP_SPLIT inside a surrogate pair), map[units] == len.
 * Entities then convert in O(1) each instead of rescanning the text, which
 * keeps 1000 entities over a 64 KiB text linear. Caller frees.
 */
static uint32_t *utf16_map(const char *text, size_t len, size_t *units_out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t units = 0, i = 0;
    unsigned u;

    while (i < len) {
        i += utf8_step(s + i, len - i, &u);
        units += u;
    }
    uint32_t *map = xmalloc((units + 1) * sizeof(*map));
    size_t k = 0;
    for (i = 0; i < len;) {
        size_t n = utf8_step(s + i, len - i, &u);
        map[k++] = (uint32_t)i;
        if (u == 2)
            map[k++] = MAP_SPLIT;
        i += n;
    }
    map[k] = (uint32_t)len;
    *units_out = units;
    return map;
}

/* ---- errors and typed getters ------------------------------------------ */

struct ctx {
    struct owner *own;
    const struct tg_limits *lim;
    struct tg_error *err;
};

/* Record an error at at.key (or at, when key is NULL) and return code. */
__attribute__((format(printf, 5, 6))) static int fail(struct ctx *c, int code, const char *at,
                                                      const char *key, const char *fmt, ...)
{
    struct tg_error *e = c->err;
    va_list ap;

    e->code = code;
    if (key == NULL)
        snprintf(e->path, sizeof(e->path), "%s", at);
    else if (*at == '\0')
        snprintf(e->path, sizeof(e->path), "%s", key);
    else
        snprintf(e->path, sizeof(e->path), "%s.%s", at, key);
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return code;
}

/*
 * Format a path into buf (PATH_LEN bytes). Our paths are built from our own
 * member names plus array indexes, so they stay far below the limit; were
 * one ever longer it would be cut, never overrun. (Through vsnprintf so the
 * compiler does not flag each call site's theoretical truncation.)
 */
__attribute__((format(printf, 2, 3))) static void path_fmt(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, PATH_LEN, fmt, ap);
    va_end(ap);
}

/* Path of member key under at, for the functions that parse that member. */
static void child_path(char *buf, const char *at, const char *key)
{
    if (*at == '\0')
        path_fmt(buf, "%s", key);
    else
        path_fmt(buf, "%s.%s", at, key);
}

/* The member, or NULL when absent or JSON null (json-c stores null as NULL). */
static struct json_object *member(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

enum req { OPT = 0, REQ = 1 };

/* Is v a JSON integer that fits in int64? Sets *out. json-c saturates
   integers beyond int64 (and parses big positives as uint64), hence the
   checks on both ends. */
static int json_to_int64(struct json_object *v, int64_t *out, const char **why)
{
    if (!json_object_is_type(v, json_type_int)) {
        *why = "expected an integer";
        return VN_EINVAL;
    }
    int64_t x = json_object_get_int64(v);
    if (x == INT64_MIN || (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)) {
        *why = "integer out of range";
        return VN_EINVAL;
    }
    *out = x;
    return 0;
}

static int get_int(struct ctx *c, struct json_object *obj, const char *at, const char *key,
                   enum req req, int64_t *out, bool *present)
{
    struct json_object *v = member(obj, key);
    const char *why = NULL;

    if (v == NULL)
        return req ? fail(c, VN_EINVAL, at, key, "missing") : 0;
    if (json_to_int64(v, out, &why) != 0)
        return fail(c, VN_EINVAL, at, key, "%s", why);
    if (present != NULL)
        *present = true;
    return 0;
}

static int get_bool(struct ctx *c, struct json_object *obj, const char *at, const char *key,
                    enum req req, bool *out)
{
    struct json_object *v = member(obj, key);

    if (v == NULL)
        return req ? fail(c, VN_EINVAL, at, key, "missing") : 0;
    if (!json_object_is_type(v, json_type_boolean))
        return fail(c, VN_EINVAL, at, key, "expected a boolean");
    *out = json_object_get_boolean(v) != 0;
    return 0;
}

static int get_double(struct ctx *c, struct json_object *obj, const char *at, const char *key,
                      enum req req, double *out)
{
    struct json_object *v = member(obj, key);

    if (v == NULL)
        return req ? fail(c, VN_EINVAL, at, key, "missing") : 0;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return fail(c, VN_EINVAL, at, key, "expected a number");
    double d = json_object_get_double(v);
    if (!isfinite(d)) /* json-c accepts NaN and Infinity even in strict mode */
        return fail(c, VN_EINVAL, at, key, "expected a finite number");
    *out = d;
    return 0;
}

/*
 * A string member checked for type, length and NUL bytes, without copying:
 * *out points into the JSON tree (NULL when absent and optional). For values
 * only mapped to enums or compared; get_str() copies.
 */
static int get_str_ref(struct ctx *c, struct json_object *obj, const char *at, const char *key,
                       enum req req, const char **out, size_t *len)
{
    struct json_object *v = member(obj, key);

    *out = NULL;
    if (v == NULL)
        return req ? fail(c, VN_EINVAL, at, key, "missing") : 0;
    if (!json_object_is_type(v, json_type_string))
        return fail(c, VN_EINVAL, at, key, "expected a string");
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n > c->lim->max_string)
        return fail(c, VN_ETOOBIG, at, key, "string longer than %zu bytes", c->lim->max_string);
    if (memchr(s, '\0', n) != NULL)
        return fail(c, VN_EINVAL, at, key, "string contains a NUL character");
    *out = s;
    if (len != NULL)
        *len = n;
    return 0;
}

static int get_str(struct ctx *c, struct json_object *obj, const char *at, const char *key,
                   enum req req, char **out, size_t *len)
{
    const char *s = NULL;
    size_t n = 0;
    int rc = get_str_ref(c, obj, at, key, req, &s, &n);

    if (rc == 0 && s != NULL) {
        *out = arena_strndup(c->own, s, n);
        if (len != NULL)
            *len = n;
    }
    return rc;
}

/* A member that must be a JSON object; *out NULL when absent and optional. */
static int get_obj(struct ctx *c, struct json_object *obj, const char *at, const char *key,
                   enum req req, struct json_object **out)
{
    struct json_object *v = member(obj, key);

    *out = NULL;
    if (v == NULL)
        return req ? fail(c, VN_EINVAL, at, key, "missing") : 0;
    if (!json_object_is_type(v, json_type_object))
        return fail(c, VN_EINVAL, at, key, "expected an object");
    *out = v;
    return 0;
}

static int get_array(struct ctx *c, struct json_object *obj, const char *at, const char *key,
                     struct json_object **out)
{
    struct json_object *v = member(obj, key);

    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_array))
        return fail(c, VN_EINVAL, at, key, "expected an array");
    *out = v;
    return 0;
}

/* ---- field tables ------------------------------------------------------ */

enum field_type { F_INT, F_BOOL, F_STR, F_DOUBLE };

/* One scalar member: where it goes in the destination struct and, for
   optional integers, where its has_ flag is (NO_FLAG: none). */
struct field {
    const char *key;
    enum field_type type;
    enum req req;
    size_t off;
    size_t has_off;
};

#define NO_FLAG SIZE_MAX

static int parse_fields(struct ctx *c, struct json_object *obj, const char *at,
                        const struct field *f, size_t n, void *dst)
{
    char *base = dst;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        void *p = base + f[i].off;
        bool *has = f[i].has_off == NO_FLAG ? NULL : (bool *)(base + f[i].has_off);
        switch (f[i].type) {
        case F_INT:
            rc = get_int(c, obj, at, f[i].key, f[i].req, p, has);
            break;
        case F_BOOL:
            rc = get_bool(c, obj, at, f[i].key, f[i].req, p);
            break;
        case F_STR:
            rc = get_str(c, obj, at, f[i].key, f[i].req, p, NULL);
            break;
        case F_DOUBLE:
            rc = get_double(c, obj, at, f[i].key, f[i].req, p);
            break;
        }
    }
    return rc;
}

/* The field type follows from the member's C type, so a row cannot point a
   getter at a member of the wrong size. */
#define FIELD_TYPE(st, member)                                                                     \
    _Generic(((st *)0)->member, int64_t : F_INT, bool : F_BOOL, char * : F_STR, double : F_DOUBLE)
/* The members of one struct field initializer: {FIELD(...)}. */
#define FIELD(st, key, req, member) key, FIELD_TYPE(st, member), req, offsetof(st, member), NO_FLAG
#define FIELD_HAS(st, key, req, member)                                                            \
    key, FIELD_TYPE(st, member), req, offsetof(st, member), offsetof(st, has_##member)

/* ---- objects ----------------------------------------------------------- */

static int parse_user(struct ctx *c, struct json_object *obj, const char *at, struct tg_user *u)
{
    static const struct field fields[] = {
        {FIELD(struct tg_user, "id", REQ, id)},
        {FIELD(struct tg_user, "is_bot", OPT, is_bot)},
        {FIELD(struct tg_user, "first_name", OPT, first_name)},
        {FIELD(struct tg_user, "last_name", OPT, last_name)},
        {FIELD(struct tg_user, "username", OPT, username)},
        {FIELD(struct tg_user, "language_code", OPT, language_code)},
    };
    return parse_fields(c, obj, at, fields, VN_ARRAY_LEN(fields), u);
}

/* The user object at obj.key: required or optional. */
static int parse_user_member(struct ctx *c, struct json_object *obj, const char *at,
                             const char *key, enum req req, struct tg_user *u, bool *present)
{
    struct json_object *v = NULL;
    char path[PATH_LEN];
    int rc = get_obj(c, obj, at, key, req, &v);

    if (rc != 0 || v == NULL)
        return rc;
    child_path(path, at, key);
    if (present != NULL)
        *present = true;
    return parse_user(c, v, path, u);
}

static const struct {
    const char *name;
    enum tg_chat_type type;
} chat_types[] = {
    {"private", TG_CHAT_PRIVATE},
    {"group", TG_CHAT_GROUP},
    {"supergroup", TG_CHAT_SUPERGROUP},
    {"channel", TG_CHAT_CHANNEL},
};

static int parse_chat(struct ctx *c, struct json_object *obj, const char *at, struct tg_chat *chat)
{
    static const struct field fields[] = {
        {FIELD(struct tg_chat, "id", REQ, id)},
        {FIELD(struct tg_chat, "title", OPT, title)},
        {FIELD(struct tg_chat, "username", OPT, username)},
    };
    const char *type = NULL;
    int rc = parse_fields(c, obj, at, fields, VN_ARRAY_LEN(fields), chat);

    if (rc == 0)
        rc = get_str_ref(c, obj, at, "type", OPT, &type, NULL);
    chat->type = TG_CHAT_OTHER;
    for (size_t i = 0; rc == 0 && type != NULL && i < VN_ARRAY_LEN(chat_types); i++) {
        if (strcmp(type, chat_types[i].name) == 0)
            chat->type = chat_types[i].type;
    }
    return rc;
}

static int parse_chat_member(struct ctx *c, struct json_object *obj, const char *at,
                             const char *key, enum req req, struct tg_chat *chat)
{
    struct json_object *v = NULL;
    char path[PATH_LEN];
    int rc = get_obj(c, obj, at, key, req, &v);

    if (rc != 0 || v == NULL)
        return rc;
    child_path(path, at, key);
    return parse_chat(c, v, path, chat);
}

static const char *const entity_types[] = {
    [TG_ENTITY_MENTION] = "mention",
    [TG_ENTITY_HASHTAG] = "hashtag",
    [TG_ENTITY_CASHTAG] = "cashtag",
    [TG_ENTITY_BOT_COMMAND] = "bot_command",
    [TG_ENTITY_URL] = "url",
    [TG_ENTITY_EMAIL] = "email",
    [TG_ENTITY_PHONE_NUMBER] = "phone_number",
    [TG_ENTITY_BOLD] = "bold",
    [TG_ENTITY_ITALIC] = "italic",
    [TG_ENTITY_UNDERLINE] = "underline",
    [TG_ENTITY_STRIKETHROUGH] = "strikethrough",
    [TG_ENTITY_SPOILER] = "spoiler",
    [TG_ENTITY_BLOCKQUOTE] = "blockquote",
    [TG_ENTITY_EXPANDABLE_BLOCKQUOTE] = "expandable_blockquote",
    [TG_ENTITY_CODE] = "code",
    [TG_ENTITY_PRE] = "pre",
    [TG_ENTITY_TEXT_LINK] = "text_link",
    [TG_ENTITY_TEXT_MENTION] = "text_mention",
    [TG_ENTITY_CUSTOM_EMOJI] = "custom_emoji",
};

static enum tg_entity_type entity_kind(const char *type)
{
    for (size_t i = 1; i < VN_ARRAY_LEN(entity_types); i++) {
        if (strcmp(type, entity_types[i]) == 0)
            return (enum tg_entity_type)i;
    }
    return TG_ENTITY_OTHER;
}

/* One entity at path ep; map/units describe the text it points into. */
static int parse_entity(struct ctx *c, struct json_object *obj, const char *ep, const uint32_t *map,
                        size_t units, struct tg_entity *e)
{
    int64_t off = 0, len = 0;
    int rc;

    if (obj == NULL || !json_object_is_type(obj, json_type_object))
        return fail(c, VN_EINVAL, ep, NULL, "expected an object");
    rc = get_str(c, obj, ep, "type", REQ, &e->type, NULL);
    if (rc == 0)
        rc = get_int(c, obj, ep, "offset", REQ, &off, NULL);
    if (rc == 0)
        rc = get_int(c, obj, ep, "length", REQ, &len, NULL);
    if (rc == 0)
        rc = get_str(c, obj, ep, "url", OPT, &e->url, NULL);
    if (rc != 0)
        return rc;
    if (off < 0)
        return fail(c, VN_EINVAL, ep, "offset", "must not be negative");
    if (len < 0)
        return fail(c, VN_EINVAL, ep, "length", "must not be negative");
    /* Written so that nothing overflows: both are now in [0, INT64_MAX]. */
    if ((uint64_t)off > units || (uint64_t)len > units - (uint64_t)off)
        return fail(c, VN_EINVAL, ep, NULL,
                    "offset %lld + length %lld is past the end of the text (%zu UTF-16 units)",
                    (long long)off, (long long)len, units);
    uint32_t b0 = map[off], b1 = map[off + len];
    if (b0 == MAP_SPLIT || b1 == MAP_SPLIT)
        return fail(c, VN_EINVAL, ep, NULL, "range splits a surrogate pair");
    e->kind = entity_kind(e->type);
    e->offset = (size_t)off;
    e->length = (size_t)len;
    e->byte_offset = b0;
    e->byte_length = (size_t)(b1 - b0);
    return 0;
}

/* m->text's entities from obj.key ("entities" or "caption_entities"). */
static int parse_entities(struct ctx *c, struct json_object *obj, const char *at, const char *key,
                          struct tg_message *m)
{
    struct json_object *arr = NULL;
    uint32_t *map = NULL;
    size_t units = 0;
    int rc = get_array(c, obj, at, key, &arr);

    if (rc != 0 || arr == NULL)
        goto out;
    size_t n = json_object_array_length(arr);
    if (n > c->lim->max_entities) {
        rc = fail(c, VN_ETOOBIG, at, key, "more than %zu entities", c->lim->max_entities);
        goto out;
    }
    if (n == 0)
        goto out;
    map = utf16_map(m->text, m->text_len, &units);
    m->entities = arena_alloc(c->own, n * sizeof(*m->entities));
    for (size_t i = 0; i < n && rc == 0; i++) {
        char ep[PATH_LEN];
        if (*at == '\0')
            path_fmt(ep, "%s[%zu]", key, i);
        else
            path_fmt(ep, "%s.%s[%zu]", at, key, i);
        rc = parse_entity(c, json_object_array_get_idx(arr, i), ep, map, units, &m->entities[i]);
    }
    if (rc == 0)
        m->n_entities = n;
out:
    free(map);
    return rc;
}

static bool is_ascii_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Fill m->command when the text opens with a bot_command entity. */
static void find_command(struct ctx *c, struct tg_message *m)
{
    for (size_t i = 0; i < m->n_entities; i++) {
        const struct tg_entity *e = &m->entities[i];
        if (e->kind != TG_ENTITY_BOT_COMMAND || e->offset != 0 || e->byte_length < 2 ||
            m->text[0] != '/')
            continue;
        const char *cmd = m->text + 1;
        size_t cmd_len = e->byte_length - 1;
        const char *at = memchr(cmd, '@', cmd_len);
        size_t name_len = at != NULL ? (size_t)(at - cmd) : cmd_len;
        if (name_len == 0)
            continue;

        struct tg_command *k = arena_alloc(c->own, sizeof(*k));
        k->name = arena_strndup(c->own, cmd, name_len);
        if (at != NULL && cmd + cmd_len > at + 1)
            k->bot = arena_strndup(c->own, at + 1, (size_t)(cmd + cmd_len - at - 1));
        const char *a = m->text + e->byte_length;
        const char *end = m->text + m->text_len;
        while (a < end && is_ascii_space(*a))
            a++;
        while (end > a && is_ascii_space(end[-1]))
            end--;
        k->args = arena_strndup(c->own, a, (size_t)(end - a));
        m->command = k;
        return;
    }
}

static int parse_contact(struct ctx *c, struct json_object *obj, const char *at,
                         struct tg_contact *k)
{
    static const struct field fields[] = {
        {FIELD(struct tg_contact, "phone_number", OPT, phone_number)},
        {FIELD(struct tg_contact, "first_name", OPT, first_name)},
        {FIELD(struct tg_contact, "last_name", OPT, last_name)},
        {FIELD_HAS(struct tg_contact, "user_id", OPT, user_id)},
    };
    return parse_fields(c, obj, at, fields, VN_ARRAY_LEN(fields), k);
}

static int parse_location(struct ctx *c, struct json_object *obj, const char *at,
                          struct tg_location *l)
{
    static const struct field fields[] = {
        {FIELD(struct tg_location, "latitude", REQ, latitude)},
        {FIELD(struct tg_location, "longitude", REQ, longitude)},
    };
    int rc = parse_fields(c, obj, at, fields, VN_ARRAY_LEN(fields), l);

    if (rc == 0 && (l->latitude < -90.0 || l->latitude > 90.0))
        rc = fail(c, VN_EINVAL, at, "latitude", "out of range [-90, 90]");
    if (rc == 0 && (l->longitude < -180.0 || l->longitude > 180.0))
        rc = fail(c, VN_EINVAL, at, "longitude", "out of range [-180, 180]");
    return rc;
}

static int parse_document(struct ctx *c, struct json_object *obj, const char *at,
                          struct tg_document *d)
{
    static const struct field fields[] = {
        {FIELD(struct tg_document, "file_id", REQ, file_id)},
        {FIELD(struct tg_document, "file_unique_id", OPT, file_unique_id)},
        {FIELD(struct tg_document, "file_name", OPT, file_name)},
        {FIELD(struct tg_document, "mime_type", OPT, mime_type)},
        {FIELD_HAS(struct tg_document, "file_size", OPT, file_size)},
    };
    return parse_fields(c, obj, at, fields, VN_ARRAY_LEN(fields), d);
}

/*
 * message.photo: an array of PhotoSize. Every size is checked; the largest
 * by area (the later one on a tie; Telegram lists them smallest first) is
 * kept. An empty array leaves *out NULL.
 */
static int parse_photo(struct ctx *c, struct json_object *arr, const char *at,
                       struct tg_photo **out)
{
    size_t n = json_object_array_length(arr);
    struct json_object *best = NULL;
    double best_area = -1.0;
    int64_t best_w = 0, best_h = 0;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        struct json_object *ps = json_object_array_get_idx(arr, i);
        const char *file_id = NULL, *unique = NULL;
        int64_t w = 0, h = 0;
        char ep[PATH_LEN];
        path_fmt(ep, "%s[%zu]", at, i);
        if (ps == NULL || !json_object_is_type(ps, json_type_object))
            return fail(c, VN_EINVAL, ep, NULL, "expected an object");
        rc = get_str_ref(c, ps, ep, "file_id", REQ, &file_id, NULL);
        if (rc == 0)
            rc = get_str_ref(c, ps, ep, "file_unique_id", OPT, &unique, NULL);
        if (rc == 0)
            rc = get_int(c, ps, ep, "width", OPT, &w, NULL);
        if (rc == 0)
            rc = get_int(c, ps, ep, "height", OPT, &h, NULL);
        /* double: no overflow for any int64 pair, and order is all we need */
        double area = (double)w * (double)h;
        if (rc == 0 && area >= best_area) {
            best = ps;
            best_area = area;
            best_w = w;
            best_h = h;
        }
    }
    if (rc != 0 || best == NULL)
        return rc;

    struct tg_photo *p = arena_alloc(c->own, sizeof(*p));
    /* Already validated above, so these cannot fail. */
    rc = get_str(c, best, at, "file_id", REQ, &p->file_id, NULL);
    if (rc == 0)
        rc = get_str(c, best, at, "file_unique_id", OPT, &p->file_unique_id, NULL);
    p->width = best_w;
    p->height = best_h;
    p->n_sizes = n;
    *out = p;
    return rc;
}

/* reply_to_message: only its message_id and the sender's id. */
static int parse_reply(struct ctx *c, struct json_object *obj, const char *at, struct tg_reply *r)
{
    struct json_object *from = NULL;
    char path[PATH_LEN];
    int rc = get_int(c, obj, at, "message_id", REQ, &r->message_id, NULL);

    if (rc == 0)
        rc = get_obj(c, obj, at, "from", OPT, &from);
    if (rc != 0 || from == NULL)
        return rc;
    child_path(path, at, "from");
    return get_int(c, from, path, "id", REQ, &r->from_id, &r->has_from);
}

static int parse_message(struct ctx *c, struct json_object *obj, const char *at,
                         struct tg_message *m)
{
    static const struct field fields[] = {
        {FIELD(struct tg_message, "message_id", REQ, message_id)},
        {FIELD(struct tg_message, "date", OPT, date)},
        {FIELD(struct tg_message, "edit_date", OPT, edit_date)},
        {FIELD_HAS(struct tg_message, "migrate_to_chat_id", OPT, migrate_to_chat_id)},
        {FIELD_HAS(struct tg_message, "migrate_from_chat_id", OPT, migrate_from_chat_id)},
    };
    struct json_object *v = NULL;
    char path[PATH_LEN];
    int rc = parse_fields(c, obj, at, fields, VN_ARRAY_LEN(fields), m);

    if (rc == 0)
        rc = parse_chat_member(c, obj, at, "chat", REQ, &m->chat);
    if (rc == 0) {
        struct tg_user from = {0};
        bool has_from = false;
        rc = parse_user_member(c, obj, at, "from", OPT, &from, &has_from);
        if (rc == 0 && has_from) {
            m->from = arena_alloc(c->own, sizeof(*m->from));
            *m->from = from;
        }
    }

    /* Text, or failing that the caption, with the entities that go with it. */
    if (rc == 0)
        rc = get_str(c, obj, at, "text", OPT, &m->text, &m->text_len);
    if (rc == 0 && m->text == NULL) {
        rc = get_str(c, obj, at, "caption", OPT, &m->text, &m->text_len);
        m->text_is_caption = m->text != NULL;
    }
    if (rc == 0 && m->text != NULL)
        rc = parse_entities(c, obj, at, m->text_is_caption ? "caption_entities" : "entities", m);
    if (rc == 0 && m->text != NULL && !m->text_is_caption)
        find_command(c, m);

    if (rc == 0)
        rc = get_obj(c, obj, at, "contact", OPT, &v);
    if (rc == 0 && v != NULL) {
        child_path(path, at, "contact");
        m->contact = arena_alloc(c->own, sizeof(*m->contact));
        rc = parse_contact(c, v, path, m->contact);
    }
    if (rc == 0)
        rc = get_obj(c, obj, at, "location", OPT, &v);
    if (rc == 0 && v != NULL) {
        child_path(path, at, "location");
        m->location = arena_alloc(c->own, sizeof(*m->location));
        rc = parse_location(c, v, path, m->location);
    }
    if (rc == 0)
        rc = get_array(c, obj, at, "photo", &v);
    if (rc == 0 && v != NULL) {
        child_path(path, at, "photo");
        rc = parse_photo(c, v, path, &m->photo);
    }
    if (rc == 0)
        rc = get_obj(c, obj, at, "document", OPT, &v);
    if (rc == 0 && v != NULL) {
        child_path(path, at, "document");
        m->document = arena_alloc(c->own, sizeof(*m->document));
        rc = parse_document(c, v, path, m->document);
    }
    if (rc == 0)
        rc = get_obj(c, obj, at, "reply_to_message", OPT, &v);
    if (rc == 0 && v != NULL) {
        child_path(path, at, "reply_to_message");
        m->reply_to = arena_alloc(c->own, sizeof(*m->reply_to));
        rc = parse_reply(c, v, path, m->reply_to);
    }
    return rc;
}

static int parse_callback_query(struct ctx *c, struct json_object *obj, const char *at,
                                struct tg_callback_query *q)
{
    static const struct field fields[] = {
        {FIELD(struct tg_callback_query, "id", REQ, id)},
        {FIELD(struct tg_callback_query, "data", OPT, data)},
        {FIELD(struct tg_callback_query, "chat_instance", OPT, chat_instance)},
        {FIELD(struct tg_callback_query, "inline_message_id", OPT, inline_message_id)},
    };
    struct json_object *msg = NULL;
    char path[PATH_LEN];
    int rc = parse_fields(c, obj, at, fields, VN_ARRAY_LEN(fields), q);

    if (rc == 0)
        rc = parse_user_member(c, obj, at, "from", REQ, &q->from, NULL);
    if (rc == 0)
        rc = get_obj(c, obj, at, "message", OPT, &msg);
    if (rc != 0 || msg == NULL)
        return rc;
    /* Message or InaccessibleMessage: both have chat and message_id. */
    child_path(path, at, "message");
    rc = get_int(c, msg, path, "message_id", REQ, &q->message_id, NULL);
    if (rc == 0)
        rc = parse_chat_member(c, msg, path, "chat", REQ, &q->message_chat);
    q->has_message = rc == 0;
    return rc;
}

static int member_status(struct ctx *c, struct json_object *obj, const char *at, const char *key,
                         char **status)
{
    struct json_object *v = NULL;
    char path[PATH_LEN];
    int rc = get_obj(c, obj, at, key, OPT, &v);

    if (rc != 0 || v == NULL)
        return rc;
    child_path(path, at, key);
    return get_str(c, v, path, "status", OPT, status, NULL);
}

static bool str_is(const char *s, const char *want)
{
    return s != NULL && strcmp(s, want) == 0;
}

static int parse_my_chat_member(struct ctx *c, struct json_object *obj, const char *at,
                                struct tg_chat_member_updated *mu)
{
    int rc = parse_chat_member(c, obj, at, "chat", REQ, &mu->chat);

    if (rc == 0)
        rc = parse_user_member(c, obj, at, "from", REQ, &mu->from, NULL);
    if (rc == 0)
        rc = get_int(c, obj, at, "date", OPT, &mu->date, NULL);
    if (rc == 0)
        rc = member_status(c, obj, at, "old_chat_member", &mu->old_status);
    if (rc == 0)
        rc = member_status(c, obj, at, "new_chat_member", &mu->new_status);
    if (rc == 0 && mu->chat.type == TG_CHAT_PRIVATE) {
        mu->blocked = str_is(mu->new_status, "kicked");
        mu->unblocked = str_is(mu->old_status, "kicked") && str_is(mu->new_status, "member");
    }
    return rc;
}

/* ---- the update -------------------------------------------------------- */

static const struct {
    const char *key;
    enum tg_update_kind kind;
} update_kinds[] = {
    {"message", TG_UPDATE_MESSAGE},
    {"edited_message", TG_UPDATE_EDITED_MESSAGE},
    {"callback_query", TG_UPDATE_CALLBACK_QUERY},
    {"my_chat_member", TG_UPDATE_MY_CHAT_MEMBER},
};

const char *tg_update_kind_name(enum tg_update_kind kind)
{
    for (size_t i = 0; i < VN_ARRAY_LEN(update_kinds); i++) {
        if (update_kinds[i].kind == kind)
            return update_kinds[i].key;
    }
    return "unknown";
}

static int parse_root(struct ctx *c, struct json_object *root, struct tg_update *u)
{
    struct json_object *v = NULL;
    const char *key = NULL;
    int rc = get_int(c, root, "", "update_id", REQ, &u->update_id, NULL);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < VN_ARRAY_LEN(update_kinds) && v == NULL; i++) {
        v = member(root, update_kinds[i].key);
        key = update_kinds[i].key;
        u->kind = update_kinds[i].kind;
    }
    if (v == NULL) {
        /* Not a type we model: remember its name and stop. */
        u->kind = TG_UPDATE_UNKNOWN;
        json_object_object_foreach(root, name, val)
        {
            if (val != NULL && strcmp(name, "update_id") != 0) {
                u->type_name = arena_strndup(c->own, name, strlen(name));
                break;
            }
        }
        return 0;
    }
    u->type_name = arena_strndup(c->own, key, strlen(key));
    if (!json_object_is_type(v, json_type_object))
        return fail(c, VN_EINVAL, "", key, "expected an object");

    switch (u->kind) {
    case TG_UPDATE_MESSAGE:
    case TG_UPDATE_EDITED_MESSAGE:
        u->message = arena_alloc(c->own, sizeof(*u->message));
        return parse_message(c, v, key, u->message);
    case TG_UPDATE_CALLBACK_QUERY:
        u->callback_query = arena_alloc(c->own, sizeof(*u->callback_query));
        return parse_callback_query(c, v, key, u->callback_query);
    case TG_UPDATE_MY_CHAT_MEMBER:
        u->my_chat_member = arena_alloc(c->own, sizeof(*u->my_chat_member));
        return parse_my_chat_member(c, v, key, u->my_chat_member);
    case TG_UPDATE_UNKNOWN:
        break;
    }
    return 0;
}

static int check_limits(struct ctx *c)
{
    const struct tg_limits *l = c->lim;

    if (l->max_depth < 1 || l->max_depth > TG_MAX_DEPTH_CAP)
        return fail(c, VN_EINVAL, "", NULL, "limits: max_depth %d is not in 1..%d", l->max_depth,
                    TG_MAX_DEPTH_CAP);
    if (l->max_body > INT_MAX) /* json-c takes the length as an int */
        return fail(c, VN_EINVAL, "", NULL, "limits: max_body %zu is over %d", l->max_body,
                    INT_MAX);
    return 0;
}

struct tg_update *tg_update_parse(const char *json, size_t len, const struct tg_limits *lim,
                                  struct tg_error *err)
{
    struct tg_error scratch;
    struct tg_limits defaults = tg_limits_default();
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;
    struct owner *own = NULL;
    enum json_tokener_error jerr;
    size_t end;
    struct ctx c = {NULL, lim != NULL ? lim : &defaults, err != NULL ? err : &scratch};
    int rc;

    memset(c.err, 0, sizeof(*c.err));
    rc = check_limits(&c);
    if (rc != 0)
        goto out;
    if (json == NULL && len > 0) {
        rc = fail(&c, VN_EINVAL, "", NULL, "no body");
        goto out;
    }
    if (len > c.lim->max_body) {
        rc = fail(&c, VN_ETOOBIG, "", NULL, "body of %zu bytes is over the limit of %zu bytes", len,
                  c.lim->max_body);
        goto out;
    }

    tok = json_tokener_new_ex(c.lim->max_depth);
    if (tok == NULL)
        abort(); /* json-c's malloc failed: out of memory is fatal, as in xmalloc */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, json != NULL ? json : "", (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (root == NULL && jerr == json_tokener_continue) {
        /* json-c waits for more input; a NUL byte tells it there is none
           (which also completes a bare top-level number). */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    if (jerr == json_tokener_error_depth) {
        rc = fail(&c, VN_ETOOBIG, "", NULL, "nesting deeper than %d", c.lim->max_depth);
        goto out;
    }
    if (jerr != json_tokener_success) {
        rc = fail(&c, VN_EINVAL, "", NULL, "invalid JSON at byte %zu: %s", end,
                  json_tokener_error_desc(jerr));
        goto out;
    }
    if (end < len) {
        /* json-c stops quietly at a NUL byte; anything after the value is junk */
        rc = fail(&c, VN_EINVAL, "", NULL, "invalid JSON at byte %zu: unexpected character", end);
        goto out;
    }
    /* root is NULL for a body of just "null" */
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        rc = fail(&c, VN_EINVAL, "", NULL, "expected an object");
        goto out;
    }

    own = xcalloc(1, sizeof(*own));
    c.own = own;
    rc = parse_root(&c, root, &own->u);

out:
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    if (rc != 0) {
        tg_update_free(own != NULL ? &own->u : NULL);
        return NULL;
    }
    return &own->u;
}

int tg_update_chat_id(const struct tg_update *u, int64_t *out)
{
    if (u == NULL)
        return VN_ENOENT;
    switch (u->kind) {
    case TG_UPDATE_MESSAGE:
    case TG_UPDATE_EDITED_MESSAGE:
        *out = u->message->chat.id;
        return 0;
    case TG_UPDATE_CALLBACK_QUERY:
        if (!u->callback_query->has_message)
            return VN_ENOENT;
        *out = u->callback_query->message_chat.id;
        return 0;
    case TG_UPDATE_MY_CHAT_MEMBER:
        *out = u->my_chat_member->chat.id;
        return 0;
    case TG_UPDATE_UNKNOWN:
        break;
    }
    return VN_ENOENT;
}

int tg_update_user_id(const struct tg_update *u, int64_t *out)
{
    if (u == NULL)
        return VN_ENOENT;
    switch (u->kind) {
    case TG_UPDATE_MESSAGE:
    case TG_UPDATE_EDITED_MESSAGE:
        if (u->message->from == NULL)
            return VN_ENOENT;
        *out = u->message->from->id;
        return 0;
    case TG_UPDATE_CALLBACK_QUERY:
        *out = u->callback_query->from.id;
        return 0;
    case TG_UPDATE_MY_CHAT_MEMBER:
        *out = u->my_chat_member->from.id;
        return 0;
    case TG_UPDATE_UNKNOWN:
        break;
    }
    return VN_ENOENT;
}
