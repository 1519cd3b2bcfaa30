/*
 * test_tg_update.c - bot/tg_update.c: Telegram Update parsing from the
 * fixture bodies in tests/fixtures/telegram/ (written from the Bot API
 * reference), plus malformed, oversized and hostile bodies built here, and
 * the UTF-16 offset helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot/tg_update.h"
#include "core/common.h"

/* ---- helpers ----------------------------------------------------------- */

/* Repo root: $VN_SOURCE_DIR (set by ctest), else derived from __FILE__. */
static char *source_root(void)
{
    const char *env = getenv("VN_SOURCE_DIR");
    if (env != NULL && *env != '\0')
        return xstrdup(env);
    const char *me = __FILE__;
    const char *tail = strstr(me, "tests/unit/bot/");
    if (tail == NULL || tail == me)
        return xstrdup(".");
    return xstrndup(me, (size_t)(tail - me));
}

/* Whole fixture file; fails the test if it cannot be read. Caller frees. */
static char *read_fixture(const char *name, size_t *len)
{
    char *root = source_root();
    char *path = xasprintf("%s/tests/fixtures/telegram/%s", root, name);
    FILE *f = fopen(path, "rb");
    struct vn_buf b = VN_BUF_INIT;
    char chunk[4096];
    size_t n;

    free(root);
    if (f == NULL) {
        char shown[512];
        snprintf(shown, sizeof(shown), "%s", path);
        free(path);
        fail_msg("cannot open fixture %s (set VN_SOURCE_DIR to the repo root)", shown);
    }
    free(path);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        vn_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    if (b.data == NULL)
        vn_buf_append(&b, "", 0);
    return vn_buf_steal(&b);
}

/* Parse a fixture that must be valid. */
static struct tg_update *parse_ok(const char *name)
{
    size_t len = 0;
    char *json = read_fixture(name, &len);
    struct tg_error err;
    struct tg_update *u = tg_update_parse(json, len, NULL, &err);

    free(json);
    if (u == NULL)
        fail_msg("%s: code %d at \"%s\": %s", name, err.code, err.path, err.msg);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.path, "");
    assert_string_equal(err.msg, "");
    return u;
}

static struct tg_update *parse_str_ok(const char *json)
{
    struct tg_error err;
    struct tg_update *u = tg_update_parse(json, strlen(json), NULL, &err);
    if (u == NULL)
        fail_msg("%s: code %d at \"%s\": %s", json, err.code, err.path, err.msg);
    return u;
}

/* Parse json[0..len) under lim, expecting exactly this error. */
static void expect_err_n(const char *json, size_t len, const struct tg_limits *lim, int code,
                         const char *path, const char *msg)
{
    struct tg_error err;
    struct tg_update *u = tg_update_parse(json, len, lim, &err);

    if (u != NULL) {
        tg_update_free(u);
        fail_msg("parsed, expected \"%s\": %s", path, msg);
    }
    if (err.code != code || strcmp(err.path, path) != 0 || strcmp(err.msg, msg) != 0)
        fail_msg("got code %d \"%s\": \"%s\"; expected code %d \"%s\": \"%s\"", err.code, err.path,
                 err.msg, code, path, msg);
}

static void expect_err(const char *json, int code, const char *path, const char *msg)
{
    expect_err_n(json, strlen(json), NULL, code, path, msg);
}

/* The UTF-8 text an entity covers, checked against what the test expects. */
static void assert_entity_text(const struct tg_message *m, size_t i, const char *want)
{
    assert_true(i < m->n_entities);
    const struct tg_entity *e = &m->entities[i];
    assert_true(e->byte_offset + e->byte_length <= m->text_len);
    char *got = xstrndup(m->text + e->byte_offset, e->byte_length);
    assert_string_equal(got, want);
    free(got);
}

/* Assert that m has nothing but what the test looks at. */
static void assert_no_media(const struct tg_message *m)
{
    assert_null(m->contact);
    assert_null(m->location);
    assert_null(m->photo);
    assert_null(m->document);
    assert_null(m->reply_to);
    assert_false(m->has_migrate_to_chat_id);
    assert_false(m->has_migrate_from_chat_id);
}

/* ---- messages ---------------------------------------------------------- */

static void test_private_text(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_private_text.json");
    int64_t id = 0;

    assert_int_equal(u->kind, TG_UPDATE_MESSAGE);
    assert_string_equal(u->type_name, "message");
    assert_string_equal(tg_update_kind_name(u->kind), "message");
    assert_int_equal(u->update_id, 731546812);
    assert_null(u->callback_query);
    assert_null(u->my_chat_member);

    const struct tg_message *m = u->message;
    assert_non_null(m);
    assert_int_equal(m->message_id, 4412);
    assert_int_equal(m->date, 1700000000);
    assert_int_equal(m->edit_date, 0);
    assert_int_equal(m->chat.id, 123456789);
    assert_int_equal(m->chat.type, TG_CHAT_PRIVATE);
    assert_string_equal(m->chat.username, "ivan_petrov");
    assert_null(m->chat.title);
    assert_non_null(m->from);
    assert_int_equal(m->from->id, 123456789);
    assert_false(m->from->is_bot);
    assert_string_equal(m->from->first_name, "Иван");
    assert_string_equal(m->from->last_name, "Петров");
    assert_string_equal(m->from->username, "ivan_petrov");
    assert_string_equal(m->from->language_code, "ru");
    /* The fixture has the text as \u escapes, as Telegram sends it. */
    assert_string_equal(m->text, "Привет! Как дела?");
    assert_int_equal(m->text_len, strlen("Привет! Как дела?"));
    assert_false(m->text_is_caption);
    assert_int_equal(m->n_entities, 0);
    assert_null(m->entities);
    assert_null(m->command);
    assert_no_media(m);

    assert_int_equal(tg_update_chat_id(u, &id), 0);
    assert_int_equal(id, 123456789);
    assert_int_equal(tg_update_user_id(u, &id), 0);
    assert_int_equal(id, 123456789);
    tg_update_free(u);
}

static void test_group_message(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_group.json");
    int64_t id = 0;

    assert_int_equal(u->kind, TG_UPDATE_MESSAGE);
    assert_int_equal(u->message->chat.type, TG_CHAT_GROUP);
    assert_int_equal(u->message->chat.id, -987654321);
    assert_string_equal(u->message->chat.title, "Семья");
    assert_int_equal(u->message->from->id, 5123456789LL); /* over 32 bits */
    assert_string_equal(u->message->text, "Купить хлеб");
    assert_null(u->message->command);
    assert_int_equal(tg_update_chat_id(u, &id), 0);
    assert_int_equal(id, -987654321);
    assert_int_equal(tg_update_user_id(u, &id), 0);
    assert_int_equal(id, 5123456789LL);
    tg_update_free(u);
}

static void test_supergroup_command_with_botname(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_supergroup_command.json");
    const struct tg_message *m = u->message;

    assert_int_equal(m->chat.type, TG_CHAT_SUPERGROUP);
    assert_int_equal(m->chat.id, -1001234567890LL);
    assert_string_equal(m->chat.username, "vestnik_beta");
    assert_int_equal(m->n_entities, 1);
    assert_int_equal(m->entities[0].kind, TG_ENTITY_BOT_COMMAND);
    assert_string_equal(m->entities[0].type, "bot_command");
    assert_int_equal(m->entities[0].offset, 0);
    assert_int_equal(m->entities[0].length, 18);
    assert_entity_text(m, 0, "/remind@VestnikBot");
    assert_non_null(m->command);
    assert_string_equal(m->command->name, "remind");
    assert_string_equal(m->command->bot, "VestnikBot");
    assert_string_equal(m->command->args, "tomorrow 9:00");
    tg_update_free(u);
}

static void test_start_deep_link(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_start_deeplink.json");
    const struct tg_command *k = u->message->command;

    assert_non_null(k);
    assert_string_equal(k->name, "start");
    assert_null(k->bot);
    assert_string_equal(k->args, "abc123");
    tg_update_free(u);
}

static void test_command_not_at_offset_zero(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_command_not_first.json");
    const struct tg_message *m = u->message;

    assert_int_equal(m->n_entities, 1);
    assert_int_equal(m->entities[0].kind, TG_ENTITY_BOT_COMMAND);
    assert_int_equal(m->entities[0].offset, 7);
    assert_entity_text(m, 0, "/help");
    assert_null(m->command);
    tg_update_free(u);
}

static void test_command_args_cyrillic_emoji(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_cyrillic_emoji_command.json");
    const struct tg_message *m = u->message;

    assert_non_null(m->command);
    assert_string_equal(m->command->name, "remind");
    assert_null(m->command->bot);
    assert_string_equal(m->command->args, "🎉 завтра в 9:00 — купить молоко");
    /* "молоко" starts after an emoji (2 UTF-16 units, 4 bytes), Cyrillic
       (1 unit, 2 bytes each) and an em dash (1 unit, 3 bytes). */
    assert_int_equal(m->n_entities, 2);
    assert_int_equal(m->entities[1].kind, TG_ENTITY_BOLD);
    assert_int_equal(m->entities[1].offset, 34);
    assert_int_equal(m->entities[1].length, 6);
    assert_int_equal(m->entities[1].byte_offset, 51);
    assert_int_equal(m->entities[1].byte_length, 12);
    assert_entity_text(m, 1, "молоко");
    tg_update_free(u);
}

static void test_entities_after_emoji(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_emoji_entities.json");
    const struct tg_message *m = u->message;

    /* Two emoji (4 units) before the mention, then a ZWJ family (8 units)
       and a flag (4 units) before the command and the link. */
    assert_int_equal(m->n_entities, 3);
    assert_int_equal(m->entities[0].kind, TG_ENTITY_MENTION);
    assert_int_equal(m->entities[0].offset, 13);
    assert_int_equal(m->entities[0].length, 12);
    assert_int_equal(m->entities[0].byte_offset, 23);
    assert_entity_text(m, 0, "@ivan_petrov");
    assert_int_equal(m->entities[1].kind, TG_ENTITY_BOT_COMMAND);
    assert_int_equal(m->entities[1].offset, 45);
    assert_entity_text(m, 1, "/help");
    assert_null(m->entities[1].url);
    assert_int_equal(m->entities[2].kind, TG_ENTITY_TEXT_LINK);
    assert_string_equal(m->entities[2].url, "https://example.org/rules");
    assert_entity_text(m, 2, "правила");
    /* The command is not at offset 0. */
    assert_null(m->command);
    tg_update_free(u);
}

static void test_contact(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_contact.json");
    const struct tg_contact *k = u->message->contact;

    assert_non_null(k);
    assert_string_equal(k->phone_number, "+79161234567");
    assert_string_equal(k->first_name, "Иван");
    assert_string_equal(k->last_name, "Петров");
    assert_true(k->has_user_id);
    assert_int_equal(k->user_id, 123456789);
    assert_null(u->message->text);
    assert_null(u->message->command);
    tg_update_free(u);
}

static void test_location(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_location.json");
    const struct tg_location *l = u->message->location;

    assert_non_null(l);
    assert_float_equal(l->latitude, 55.751244, 1e-9);
    assert_float_equal(l->longitude, 37.618423, 1e-9);
    tg_update_free(u);
}

static void test_photo_takes_largest(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_photo.json");
    const struct tg_message *m = u->message;

    assert_non_null(m->photo);
    /* The largest is third of four, not last: chosen by area. */
    assert_string_equal(m->photo->file_id, "AgACAgIAAxkBAAIBQ2VkAAFz-large");
    assert_string_equal(m->photo->file_unique_id, "AQADlarge");
    assert_int_equal(m->photo->width, 1280);
    assert_int_equal(m->photo->height, 960);
    assert_int_equal(m->photo->n_sizes, 4);
    /* The caption stands in for text, with caption_entities. */
    assert_string_equal(m->text, "Чек за #обед");
    assert_true(m->text_is_caption);
    assert_int_equal(m->n_entities, 1);
    assert_int_equal(m->entities[0].kind, TG_ENTITY_HASHTAG);
    assert_entity_text(m, 0, "#обед");
    tg_update_free(u);
}

static void test_document(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_document.json");
    const struct tg_document *d = u->message->document;

    assert_non_null(d);
    assert_string_equal(d->file_id, "BQACAgIAAxkBAAIBRGVkdoc");
    assert_string_equal(d->file_unique_id, "AgADdoc");
    assert_string_equal(d->file_name, "отчёт-2023.pdf");
    assert_string_equal(d->mime_type, "application/pdf");
    assert_true(d->has_file_size);
    assert_int_equal(d->file_size, 348112);
    assert_null(u->message->photo);
    tg_update_free(u);
}

static void test_reply_to(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_reply.json");
    const struct tg_reply *r = u->message->reply_to;

    assert_non_null(r);
    assert_int_equal(r->message_id, 1501);
    assert_true(r->has_from);
    assert_int_equal(r->from_id, 5123456789LL);
    assert_string_equal(u->message->text, "+1");
    /* The replied-to message's command is not this message's command. */
    assert_null(u->message->command);
    tg_update_free(u);
}

static void test_edited_message(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("edited_message.json");
    int64_t id = 0;

    assert_int_equal(u->kind, TG_UPDATE_EDITED_MESSAGE);
    assert_string_equal(u->type_name, "edited_message");
    assert_string_equal(tg_update_kind_name(u->kind), "edited_message");
    assert_int_equal(u->message->message_id, 4412);
    assert_int_equal(u->message->edit_date, 1700000042);
    assert_string_equal(u->message->text, "Привет! Как твои дела?");
    assert_int_equal(tg_update_chat_id(u, &id), 0);
    assert_int_equal(id, 123456789);
    tg_update_free(u);
}

static void test_migrate_to_and_from(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("message_migrate_to.json");

    assert_int_equal(u->message->chat.id, -987654321);
    assert_true(u->message->has_migrate_to_chat_id);
    assert_int_equal(u->message->migrate_to_chat_id, -1001234567890LL);
    assert_false(u->message->has_migrate_from_chat_id);
    assert_null(u->message->text);
    tg_update_free(u);

    u = parse_ok("message_migrate_from.json");
    assert_int_equal(u->message->chat.id, -1001234567890LL);
    assert_true(u->message->has_migrate_from_chat_id);
    assert_int_equal(u->message->migrate_from_chat_id, -987654321);
    assert_false(u->message->has_migrate_to_chat_id);
    tg_update_free(u);
}

static void test_big_ids(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("big_ids.json");

    assert_int_equal(u->update_id, 4503599627370495LL); /* 2^52 - 1 */
    assert_int_equal(u->message->message_id, 2147483648LL);
    /* 2^53 + 1 is not representable as a double: kept exact as int64. */
    assert_int_equal(u->message->from->id, 9007199254740993LL);
    assert_int_equal(u->message->chat.id, -4503599627370496LL);
    assert_int_equal(u->message->migrate_from_chat_id, -9007199254740993LL);
    tg_update_free(u);

    u = parse_str_ok("{\"update_id\":9223372036854775807,\"message\":{\"message_id\":-1,"
                     "\"chat\":{\"id\":-9223372036854775807}}}");
    assert_int_equal(u->update_id, INT64_MAX);
    assert_int_equal(u->message->message_id, -1);
    assert_int_equal(u->message->chat.id, -INT64_MAX);
    assert_int_equal(u->message->chat.type, TG_CHAT_OTHER);
    assert_null(u->message->from);
    /* No sender: a chat to route by, but no user. */
    int64_t id = 0;
    assert_int_equal(tg_update_chat_id(u, &id), 0);
    assert_int_equal(id, -INT64_MAX);
    assert_int_equal(tg_update_user_id(u, &id), VN_ENOENT);
    tg_update_free(u);
}

/* ---- callback queries -------------------------------------------------- */

static void test_callback_query(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("callback_query.json");
    const struct tg_callback_query *q = u->callback_query;
    int64_t id = 0;

    assert_int_equal(u->kind, TG_UPDATE_CALLBACK_QUERY);
    assert_string_equal(u->type_name, "callback_query");
    assert_null(u->message);
    assert_non_null(q);
    assert_string_equal(q->id, "4382bfdwdsb323b2d9");
    assert_int_equal(q->from.id, 123456789);
    assert_string_equal(q->from.first_name, "Иван");
    assert_string_equal(q->data, "remind:snooze:15");
    assert_string_equal(q->chat_instance, "-3429716823476347812");
    assert_null(q->inline_message_id);
    assert_true(q->has_message);
    assert_int_equal(q->message_id, 4420);
    assert_int_equal(q->message_chat.id, 123456789);
    assert_int_equal(q->message_chat.type, TG_CHAT_PRIVATE);
    assert_int_equal(tg_update_chat_id(u, &id), 0);
    assert_int_equal(id, 123456789);
    assert_int_equal(tg_update_user_id(u, &id), 0);
    assert_int_equal(id, 123456789);
    tg_update_free(u);
}

static void test_callback_query_inline(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("callback_query_inline.json");
    const struct tg_callback_query *q = u->callback_query;
    int64_t id = 42;

    assert_false(q->has_message);
    assert_string_equal(q->inline_message_id, "AgAAAPq3AQBbfdn7Njcr3A");
    assert_string_equal(q->data, "vote:yes");
    assert_int_equal(tg_update_chat_id(u, &id), VN_ENOENT);
    assert_int_equal(id, 42);
    assert_int_equal(tg_update_user_id(u, &id), 0);
    assert_int_equal(id, 5123456789LL);
    tg_update_free(u);
}

static void test_callback_query_inaccessible_message(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("callback_query_inaccessible.json");
    const struct tg_callback_query *q = u->callback_query;

    assert_true(q->has_message);
    assert_int_equal(q->message_id, 12);
    assert_int_equal(q->message_chat.id, 123456789);
    tg_update_free(u);
}

/* ---- my_chat_member ---------------------------------------------------- */

static void test_my_chat_member_blocked(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("my_chat_member_blocked.json");
    const struct tg_chat_member_updated *mu = u->my_chat_member;
    int64_t id = 0;

    assert_int_equal(u->kind, TG_UPDATE_MY_CHAT_MEMBER);
    assert_string_equal(u->type_name, "my_chat_member");
    assert_int_equal(mu->chat.id, 123456789);
    assert_int_equal(mu->from.id, 123456789);
    assert_int_equal(mu->date, 1700001300);
    assert_string_equal(mu->old_status, "member");
    assert_string_equal(mu->new_status, "kicked");
    assert_true(mu->blocked);
    assert_false(mu->unblocked);
    assert_int_equal(tg_update_chat_id(u, &id), 0);
    assert_int_equal(id, 123456789);
    assert_int_equal(tg_update_user_id(u, &id), 0);
    assert_int_equal(id, 123456789);
    tg_update_free(u);
}

static void test_my_chat_member_unblocked(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("my_chat_member_unblocked.json");

    assert_string_equal(u->my_chat_member->old_status, "kicked");
    assert_string_equal(u->my_chat_member->new_status, "member");
    assert_false(u->my_chat_member->blocked);
    assert_true(u->my_chat_member->unblocked);
    tg_update_free(u);
}

static void test_my_chat_member_group_is_not_blocking(void **state)
{
    (void)state;
    struct tg_update *u = parse_ok("my_chat_member_group_removed.json");

    assert_int_equal(u->my_chat_member->chat.type, TG_CHAT_GROUP);
    assert_string_equal(u->my_chat_member->new_status, "left");
    assert_false(u->my_chat_member->blocked);
    assert_false(u->my_chat_member->unblocked);
    tg_update_free(u);

    /* Kicked from a group is not "the user blocked the bot" either. */
    u = parse_str_ok("{\"update_id\":1,\"my_chat_member\":{\"chat\":{\"id\":-5,\"type\":\"group\"},"
                     "\"from\":{\"id\":7},\"new_chat_member\":{\"status\":\"kicked\"}}}");
    assert_false(u->my_chat_member->blocked);
    assert_null(u->my_chat_member->old_status);
    tg_update_free(u);
}

/* ---- unknown types ----------------------------------------------------- */

static void test_unknown_types(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *type;
    } cases[] = {
        {"channel_post.json", "channel_post"},
        {"inline_query.json", "inline_query"},
        {"poll.json", "poll"},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        struct tg_update *u = parse_ok(cases[i].file);
        int64_t id = 0;
        assert_int_equal(u->kind, TG_UPDATE_UNKNOWN);
        assert_string_equal(u->type_name, cases[i].type);
        assert_string_equal(tg_update_kind_name(u->kind), "unknown");
        assert_null(u->message);
        assert_null(u->callback_query);
        assert_null(u->my_chat_member);
        assert_int_equal(tg_update_chat_id(u, &id), VN_ENOENT);
        assert_int_equal(tg_update_user_id(u, &id), VN_ENOENT);
        tg_update_free(u);
    }

    /* Nothing but update_id, and unknown payloads of any JSON type. */
    struct tg_update *u = parse_str_ok("{\"update_id\":5}");
    assert_int_equal(u->kind, TG_UPDATE_UNKNOWN);
    assert_null(u->type_name);
    tg_update_free(u);
    u = parse_str_ok("{\"future_thing\":[1,\"x\",null],\"update_id\":6}");
    assert_int_equal(u->kind, TG_UPDATE_UNKNOWN);
    assert_string_equal(u->type_name, "future_thing");
    tg_update_free(u);
}

/* ---- odd but valid ----------------------------------------------------- */

static void test_null_members_are_absent(void **state)
{
    (void)state;
    struct tg_update *u =
        parse_str_ok("{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3,"
                     "\"title\":null},\"from\":null,\"text\":null,\"caption\":\"c\","
                     "\"reply_to_message\":null}}");
    assert_null(u->message->from);
    assert_null(u->message->chat.title);
    assert_string_equal(u->message->text, "c");
    assert_true(u->message->text_is_caption);
    assert_null(u->message->reply_to);
    tg_update_free(u);

    expect_err("{\"update_id\":null}", VN_EINVAL, "update_id", "missing");
    expect_err("{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":null}}", VN_EINVAL,
               "message.chat", "missing");
}

static void test_command_edge_cases(void **state)
{
    (void)state;
    struct tg_update *u;

    /* A command in a caption is not a command (as in the common frameworks). */
    u = parse_str_ok(
        "{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},"
        "\"photo\":[{\"file_id\":\"f\"}],\"caption\":\"/start x\","
        "\"caption_entities\":[{\"type\":\"bot_command\",\"offset\":0,\"length\":6}]}}");
    assert_null(u->message->command);
    assert_int_equal(u->message->n_entities, 1);
    assert_string_equal(u->message->photo->file_id, "f");
    assert_null(u->message->photo->file_unique_id);
    tg_update_free(u);

    /* Whitespace around the argument is trimmed; none leaves "". */
    u = parse_str_ok("{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},"
                     "\"text\":\"/help@VestnikBot\",\"entities\":[{\"type\":\"bot_command\","
                     "\"offset\":0,\"length\":16}]}}");
    assert_string_equal(u->message->command->name, "help");
    assert_string_equal(u->message->command->bot, "VestnikBot");
    assert_string_equal(u->message->command->args, "");
    tg_update_free(u);
    u = parse_str_ok("{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},"
                     "\"text\":\"/start \\n  a b \\t\\n\",\"entities\":[{\"type\":\"bot_command\","
                     "\"offset\":0,\"length\":6}]}}");
    assert_string_equal(u->message->command->args, "a b");
    tg_update_free(u);

    /* An entity that does not cover a '/'-word is not taken as a command. */
    u = parse_str_ok("{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},"
                     "\"text\":\"/ x\",\"entities\":[{\"type\":\"bot_command\","
                     "\"offset\":0,\"length\":1}]}}");
    assert_null(u->message->command);
    tg_update_free(u);
    u = parse_str_ok("{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},"
                     "\"text\":\"/@bot\",\"entities\":[{\"type\":\"bot_command\","
                     "\"offset\":0,\"length\":5}]}}");
    assert_null(u->message->command);
    tg_update_free(u);

    /* An empty entities array is no entities. */
    u = parse_str_ok("{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},"
                     "\"text\":\"/start\",\"entities\":[]}}");
    assert_int_equal(u->message->n_entities, 0);
    assert_null(u->message->entities);
    assert_null(u->message->command);
    tg_update_free(u);

    /* Unknown entity types are kept, by name. */
    u = parse_str_ok("{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},"
                     "\"text\":\"ab\",\"entities\":[{\"type\":\"date_time\",\"offset\":0,"
                     "\"length\":2},{\"type\":\"bold\",\"offset\":2,\"length\":0}]}}");
    assert_int_equal(u->message->entities[0].kind, TG_ENTITY_OTHER);
    assert_string_equal(u->message->entities[0].type, "date_time");
    assert_int_equal(u->message->entities[1].byte_offset, 2);
    assert_int_equal(u->message->entities[1].byte_length, 0);
    tg_update_free(u);
}

/* ---- malformed --------------------------------------------------------- */

static void test_malformed_fixtures(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *path;
        const char *msg;
    } cases[] = {
        {"malformed_truncated.json", "", "invalid JSON at byte 87: unexpected end of data"},
        {"malformed_trailing_garbage.json", "", "invalid JSON at byte 107: unexpected character"},
        {"malformed_not_object.json", "", "expected an object"},
        {"missing_update_id.json", "update_id", "missing"},
    };
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++) {
        size_t len = 0;
        char *json = read_fixture(cases[i].file, &len);
        expect_err_n(json, len, NULL, VN_EINVAL, cases[i].path, cases[i].msg);
        free(json);
    }
}

static void test_malformed_json(void **state)
{
    (void)state;
    expect_err("{\"update_id\":123}x", VN_EINVAL, "",
               "invalid JSON at byte 17: unexpected character");
    expect_err("{\"update_id\":123,x}", VN_EINVAL, "",
               "invalid JSON at byte 17: quoted object property name expected");
    expect_err("", VN_EINVAL, "", "invalid JSON at byte 0: unexpected end of data");
    expect_err("   ", VN_EINVAL, "", "invalid JSON at byte 3: unexpected end of data");
    expect_err("{\"update_id\":1,}", VN_EINVAL, "",
               "invalid JSON at byte 15: unexpected character");
    expect_err("{\"update_id\":01}", VN_EINVAL, "", "invalid JSON at byte 15: number expected");
    expect_err("{\"update_id\":1} x", VN_EINVAL, "",
               "invalid JSON at byte 16: unexpected character");
    expect_err("{\"update_id\":1,\"poll\":\"\xff\"}", VN_EINVAL, "",
               "invalid JSON at byte 23: invalid utf-8 string");
    expect_err("null", VN_EINVAL, "", "expected an object");
    expect_err("42", VN_EINVAL, "", "expected an object");
    expect_err("\"update_id\"", VN_EINVAL, "", "expected an object");
    /* json-c stops at a NUL byte; what follows must not be ignored. */
    expect_err_n("{\"update_id\":1}\0{}", 17, NULL, VN_EINVAL, "",
                 "invalid JSON at byte 15: unexpected character");
    expect_err_n("{\"update_id\":\0", 14, NULL, VN_EINVAL, "",
                 "invalid JSON at byte 13: unexpected end of data");
    expect_err_n(NULL, 3, NULL, VN_EINVAL, "", "no body");
    expect_err_n(NULL, 0, NULL, VN_EINVAL, "", "invalid JSON at byte 0: unexpected end of data");
}

static void test_wrong_types_name_the_path(void **state)
{
    (void)state;
/* A message update around a message body fragment. */
#define MSG(body) "{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3}," body "}}"
    static const struct {
        const char *json;
        const char *path;
        const char *msg;
    } cases[] = {
        {"{\"update_id\":\"731546812\"}", "update_id", "expected an integer"},
        {"{\"update_id\":1.5}", "update_id", "expected an integer"},
        {"{\"update_id\":7e8}", "update_id", "expected an integer"},
        {"{\"update_id\":true}", "update_id", "expected an integer"},
        {"{\"update_id\":99999999999999999999}", "update_id", "integer out of range"},
        {"{\"update_id\":9223372036854775808}", "update_id", "integer out of range"},
        {"{\"update_id\":-99999999999999999999}", "update_id", "integer out of range"},
        {"{\"update_id\":1,\"message\":\"hi\"}", "message", "expected an object"},
        {"{\"update_id\":1,\"message\":[]}", "message", "expected an object"},
        {"{\"update_id\":1,\"message\":{\"chat\":{\"id\":3}}}", "message.message_id", "missing"},
        {"{\"update_id\":1,\"message\":{\"message_id\":2}}", "message.chat", "missing"},
        {"{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{}}}", "message.chat.id",
         "missing"},
        {"{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":\"-100\"}}}",
         "message.chat.id", "expected an integer"},
        {"{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":-1.0012345e12}}}",
         "message.chat.id", "expected an integer"},
        {"{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3,\"type\":1}}}",
         "message.chat.type", "expected a string"},
        {"{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":5}}", "message.chat",
         "expected an object"},
        {MSG("\"from\":{\"first_name\":\"x\"}"), "message.from.id", "missing"},
        {MSG("\"from\":{\"id\":1,\"is_bot\":\"no\"}"), "message.from.is_bot", "expected a boolean"},
        {MSG("\"from\":{\"id\":1,\"username\":[\"a\"]}"), "message.from.username",
         "expected a string"},
        {MSG("\"date\":\"today\""), "message.date", "expected an integer"},
        {MSG("\"text\":5"), "message.text", "expected a string"},
        {MSG("\"text\":\"a\\u0000b\""), "message.text", "string contains a NUL character"},
        {MSG("\"text\":\"hi\",\"entities\":{}"), "message.entities", "expected an array"},
        {MSG("\"text\":\"hi\",\"entities\":[1]"), "message.entities[0]", "expected an object"},
        {MSG("\"text\":\"hi\",\"entities\":[null]"), "message.entities[0]", "expected an object"},
        {MSG("\"text\":\"abcd\",\"entities\":[{\"type\":\"bold\",\"offset\":0,\"length\":1},"
             "{\"type\":\"bold\",\"offset\":1,\"length\":1},{\"type\":\"bold\",\"offset\":2,"
             "\"length\":1},{\"type\":\"bold\",\"offset\":\"3\",\"length\":1}]"),
         "message.entities[3].offset", "expected an integer"},
        {MSG("\"text\":\"hi\",\"entities\":[{\"offset\":0,\"length\":1}]"),
         "message.entities[0].type", "missing"},
        {MSG("\"text\":\"hi\",\"entities\":[{\"type\":\"bold\",\"offset\":0}]"),
         "message.entities[0].length", "missing"},
        {MSG("\"text\":\"hi\",\"entities\":[{\"type\":\"bold\",\"offset\":-1,\"length\":1}]"),
         "message.entities[0].offset", "must not be negative"},
        {MSG("\"text\":\"hi\",\"entities\":[{\"type\":\"bold\",\"offset\":0,\"length\":-1}]"),
         "message.entities[0].length", "must not be negative"},
        {MSG("\"text\":\"d\\u00e9j\\u00e0\",\"entities\":[{\"type\":\"bold\",\"offset\":3,"
             "\"length\":5}]"),
         "message.entities[0]", "offset 3 + length 5 is past the end of the text (4 UTF-16 units)"},
        {MSG("\"text\":\"hi\",\"entities\":[{\"type\":\"bold\",\"offset\":9223372036854775807,"
             "\"length\":9223372036854775807}]"),
         "message.entities[0]",
         "offset 9223372036854775807 + length 9223372036854775807 is past the end of the text "
         "(2 UTF-16 units)"},
        {MSG("\"text\":\"\\ud83c\\udf89!\",\"entities\":[{\"type\":\"bold\",\"offset\":1,"
             "\"length\":2}]"),
         "message.entities[0]", "range splits a surrogate pair"},
        {MSG("\"text\":\"\\ud83c\\udf89!\",\"entities\":[{\"type\":\"bold\",\"offset\":0,"
             "\"length\":1}]"),
         "message.entities[0]", "range splits a surrogate pair"},
        {MSG("\"text\":\"hi\",\"entities\":[{\"type\":\"text_link\",\"offset\":0,\"length\":1,"
             "\"url\":{}}]"),
         "message.entities[0].url", "expected a string"},
        {MSG("\"caption\":\"hi\",\"caption_entities\":[7]"), "message.caption_entities[0]",
         "expected an object"},
        {MSG("\"contact\":[]"), "message.contact", "expected an object"},
        {MSG("\"contact\":{\"phone_number\":79161234567}"), "message.contact.phone_number",
         "expected a string"},
        {MSG("\"contact\":{\"user_id\":\"1\"}"), "message.contact.user_id", "expected an integer"},
        {MSG("\"location\":{\"latitude\":\"55.7\",\"longitude\":37.6}"),
         "message.location.latitude", "expected a number"},
        {MSG("\"location\":{\"latitude\":55.7}"), "message.location.longitude", "missing"},
        {MSG("\"location\":{\"latitude\":91,\"longitude\":37.6}"), "message.location.latitude",
         "out of range [-90, 90]"},
        {MSG("\"location\":{\"latitude\":55.7,\"longitude\":-180.5}"), "message.location.longitude",
         "out of range [-180, 180]"},
        {MSG("\"location\":{\"latitude\":NaN,\"longitude\":37.6}"), "message.location.latitude",
         "expected a finite number"},
        {MSG("\"photo\":{}"), "message.photo", "expected an array"},
        {MSG("\"photo\":[{\"file_id\":\"a\"},{\"width\":90}]"), "message.photo[1].file_id",
         "missing"},
        {MSG("\"photo\":[{\"file_id\":\"a\",\"width\":\"90\"}]"), "message.photo[0].width",
         "expected an integer"},
        {MSG("\"photo\":[\"a\"]"), "message.photo[0]", "expected an object"},
        {MSG("\"document\":{\"file_name\":\"a.pdf\"}"), "message.document.file_id", "missing"},
        {MSG("\"document\":{\"file_id\":\"a\",\"file_size\":1.5}"), "message.document.file_size",
         "expected an integer"},
        {MSG("\"reply_to_message\":{}"), "message.reply_to_message.message_id", "missing"},
        {MSG("\"reply_to_message\":{\"message_id\":1,\"from\":{\"id\":\"x\"}}"),
         "message.reply_to_message.from.id", "expected an integer"},
        {MSG("\"migrate_to_chat_id\":-1.00123456789e12"), "message.migrate_to_chat_id",
         "expected an integer"},
        {"{\"update_id\":1,\"edited_message\":{\"message_id\":2,\"chat\":{\"id\":\"x\"}}}",
         "edited_message.chat.id", "expected an integer"},
        {"{\"update_id\":1,\"callback_query\":{\"from\":{\"id\":1}}}", "callback_query.id",
         "missing"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":5,\"from\":{\"id\":1}}}", "callback_query.id",
         "expected a string"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"q\"}}", "callback_query.from", "missing"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"q\",\"from\":{\"id\":1},\"data\":5}}",
         "callback_query.data", "expected a string"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"q\",\"from\":{\"id\":1},"
         "\"message\":{\"message_id\":3}}}",
         "callback_query.message.chat", "missing"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"q\",\"from\":{\"id\":1},"
         "\"message\":{\"chat\":{\"id\":3}}}}",
         "callback_query.message.message_id", "missing"},
        {"{\"update_id\":1,\"my_chat_member\":{\"from\":{\"id\":1}}}", "my_chat_member.chat",
         "missing"},
        {"{\"update_id\":1,\"my_chat_member\":{\"chat\":{\"id\":1}}}", "my_chat_member.from",
         "missing"},
        {"{\"update_id\":1,\"my_chat_member\":{\"chat\":{\"id\":1},\"from\":{\"id\":1},"
         "\"new_chat_member\":{\"status\":1}}}",
         "my_chat_member.new_chat_member.status", "expected a string"},
        {"{\"update_id\":1,\"my_chat_member\":{\"chat\":{\"id\":1},\"from\":{\"id\":1},"
         "\"old_chat_member\":\"member\"}}",
         "my_chat_member.old_chat_member", "expected an object"},
    };
#undef MSG
    for (size_t i = 0; i < VN_ARRAY_LEN(cases); i++)
        expect_err(cases[i].json, VN_EINVAL, cases[i].path, cases[i].msg);
}

/* ---- limits ------------------------------------------------------------ */

/* A valid update padded with spaces to exactly len bytes. Caller frees. */
static char *padded_update(size_t len)
{
    const char *core = "{\"update_id\":1}";
    size_t n = strlen(core);
    char *s = xmalloc(len + 1);
    assert_true(len >= n);
    memcpy(s, core, n);
    memset(s + n, ' ', len - n);
    s[len] = '\0';
    return s;
}

static void test_body_limit(void **state)
{
    (void)state;
    struct tg_limits lim = tg_limits_default();
    struct tg_error err;

    assert_int_equal(lim.max_body, 1048576);
    char *s = padded_update(lim.max_body);
    struct tg_update *u = tg_update_parse(s, lim.max_body, NULL, &err);
    assert_non_null(u);
    tg_update_free(u);
    free(s);

    s = padded_update(lim.max_body + 1);
    expect_err_n(s, lim.max_body + 1, NULL, VN_ETOOBIG, "",
                 "body of 1048577 bytes is over the limit of 1048576 bytes");
    free(s);

    lim.max_body = 100;
    s = padded_update(101);
    expect_err_n(s, 101, &lim, VN_ETOOBIG, "", "body of 101 bytes is over the limit of 100 bytes");
    free(s);
}

/* An update whose message text is n bytes of 'a'. Caller frees. */
static char *text_update(size_t n, const char *extra)
{
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_puts(&b, "{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},");
    vn_buf_puts(&b, extra);
    vn_buf_puts(&b, "\"text\":\"");
    for (size_t i = 0; i < n; i++)
        vn_buf_putc(&b, 'a');
    vn_buf_puts(&b, "\"}}");
    return vn_buf_steal(&b);
}

static void test_string_limit(void **state)
{
    (void)state;
    struct tg_limits lim = tg_limits_default();

    assert_int_equal(lim.max_string, 65536);
    char *s = text_update(65536, "");
    struct tg_update *u = parse_str_ok(s);
    assert_int_equal(u->message->text_len, 65536);
    tg_update_free(u);
    free(s);

    s = text_update(65537, "");
    expect_err(s, VN_ETOOBIG, "message.text", "string longer than 65536 bytes");
    free(s);

    /* The limit applies to every string read, and is in bytes: "Ива" is 6. */
    lim.max_string = 5;
    s = text_update(1, "\"from\":{\"id\":1,\"first_name\":\"\\u0418\\u0432\\u0430\"},");
    expect_err_n(s, strlen(s), &lim, VN_ETOOBIG, "message.from.first_name",
                 "string longer than 5 bytes");
    free(s);
    expect_err_n("{\"update_id\":1,\"callback_query\":{\"id\":\"q\",\"from\":{\"id\":1},"
                 "\"data\":\"123456\"}}",
                 strlen("{\"update_id\":1,\"callback_query\":{\"id\":\"q\",\"from\":{\"id\":1},"
                        "\"data\":\"123456\"}}"),
                 &lim, VN_ETOOBIG, "callback_query.data", "string longer than 5 bytes");
}

/* {"update_id":1,"deep":[[...[]...]]} with k arrays: json-c depth k + 1. */
static char *nested_update(size_t k)
{
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_puts(&b, "{\"update_id\":1,\"deep\":");
    for (size_t i = 0; i < k; i++)
        vn_buf_putc(&b, '[');
    for (size_t i = 0; i < k; i++)
        vn_buf_putc(&b, ']');
    vn_buf_putc(&b, '}');
    return vn_buf_steal(&b);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char *s = nested_update(31);
    struct tg_update *u = parse_str_ok(s);
    assert_string_equal(u->type_name, "deep");
    tg_update_free(u);
    free(s);

    s = nested_update(32);
    expect_err(s, VN_ETOOBIG, "", "nesting deeper than 32");
    free(s);

    /* Far deeper input fails the same way, without recursion trouble. */
    s = nested_update(100000);
    expect_err(s, VN_ETOOBIG, "", "nesting deeper than 32");
    free(s);

    struct tg_limits lim = tg_limits_default();
    lim.max_depth = 3;
    const char *msg = "{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3}}}";
    expect_err_n(msg, strlen(msg), &lim, VN_ETOOBIG, "", "nesting deeper than 3");
    lim.max_depth = 4;
    u = tg_update_parse(msg, strlen(msg), &lim, NULL);
    assert_non_null(u);
    tg_update_free(u);
}

/* An update with n bold entities of one character each over n 'a's. */
static char *entities_update(size_t n)
{
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_puts(&b,
                "{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},\"text\":\"");
    for (size_t i = 0; i < n; i++)
        vn_buf_putc(&b, 'a');
    vn_buf_puts(&b, "\",\"entities\":[");
    for (size_t i = 0; i < n; i++)
        vn_buf_printf(&b, "%s{\"type\":\"bold\",\"offset\":%zu,\"length\":1}", i ? "," : "", i);
    vn_buf_puts(&b, "]}}");
    return vn_buf_steal(&b);
}

static void test_entity_limit(void **state)
{
    (void)state;
    char *s = entities_update(1000);
    struct tg_update *u = parse_str_ok(s);
    assert_int_equal(u->message->n_entities, 1000);
    assert_int_equal(u->message->entities[999].byte_offset, 999);
    tg_update_free(u);
    free(s);

    s = entities_update(1001);
    expect_err(s, VN_ETOOBIG, "message.entities", "more than 1000 entities");
    free(s);
}

static void test_bad_limits_and_null_args(void **state)
{
    (void)state;
    struct tg_limits lim = tg_limits_default();
    struct tg_error err;

    lim.max_depth = 0;
    expect_err_n("{}", 2, &lim, VN_EINVAL, "", "limits: max_depth 0 is not in 1..10000");
    lim = tg_limits_default();
    lim.max_body = (size_t)1 << 40;
    expect_err_n("{}", 2, &lim, VN_EINVAL, "", "limits: max_body 1099511627776 is over 2147483647");

    /* err may be NULL; free(NULL) is a no-op; err is cleared on success. */
    assert_null(tg_update_parse("[", 1, NULL, NULL));
    tg_update_free(NULL);
    memset(&err, 'x', sizeof(err));
    struct tg_update *u = tg_update_parse("{\"update_id\":1}", 15, NULL, &err);
    assert_non_null(u);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.path, "");
    assert_string_equal(err.msg, "");
    tg_update_free(u);

    int64_t id = 7;
    assert_int_equal(tg_update_chat_id(NULL, &id), VN_ENOENT);
    assert_int_equal(tg_update_user_id(NULL, &id), VN_ENOENT);
    assert_int_equal(id, 7);
}

static void test_long_path_is_truncated_safely(void **state)
{
    (void)state;
    /* An unmodelled member name cannot reach the path, but a long path
       still fits: message.reply_to_message.from.id is the longest we build;
       check the error struct stays NUL-terminated with a long message. */
    struct tg_error err;
    const char *s = "{\"update_id\":1,\"message\":{\"message_id\":2,\"chat\":{\"id\":3},"
                    "\"reply_to_message\":{\"message_id\":1,\"from\":{\"id\":[]}}}}";
    assert_null(tg_update_parse(s, strlen(s), NULL, &err));
    assert_string_equal(err.path, "message.reply_to_message.from.id");
    assert_true(strlen(err.path) < sizeof(err.path));
    assert_true(strlen(err.msg) < sizeof(err.msg));
}

/* ---- UTF-16 helpers ---------------------------------------------------- */

static void test_utf16_helpers(void **state)
{
    (void)state;
    assert_int_equal(tg_utf16_len(""), 0);
    assert_int_equal(tg_utf16_len("abc"), 3);
    assert_int_equal(tg_utf16_len("Привет"), 6);
    assert_int_equal(tg_utf16_len("🎉"), 2);
    assert_int_equal(tg_utf16_len("€"), 1);
    assert_int_equal(tg_utf16_len("👨‍👩‍👧"), 8);
    assert_int_equal(tg_utf16_len("🇷🇺"), 4);

    const char *t = "a🎉Бc";
    assert_int_equal(tg_utf16_to_byte_offset(t, 0), 0);
    assert_int_equal(tg_utf16_to_byte_offset(t, 1), 1);
    assert_int_equal(tg_utf16_to_byte_offset(t, 2), -1); /* inside the pair */
    assert_int_equal(tg_utf16_to_byte_offset(t, 3), 5);
    assert_int_equal(tg_utf16_to_byte_offset(t, 4), 7);
    assert_int_equal(tg_utf16_to_byte_offset(t, 5), 8); /* the end */
    assert_int_equal(tg_utf16_to_byte_offset(t, 6), -1);
    assert_int_equal(tg_utf16_to_byte_offset("", 0), 0);
    assert_int_equal(tg_utf16_to_byte_offset("", 1), -1);

    /* Broken UTF-8: one unit per stray byte; truncated sequences stop at
       the NUL (ASan would catch an over-read of these exact-size arrays). */
    static const char stray[] = "\xff\x80z";
    static const char cut4[] = "\xf0\x9f\x8e";
    static const char cut2[] = "a\xd0";
    assert_int_equal(tg_utf16_len(stray), 3);
    assert_int_equal(tg_utf16_to_byte_offset(stray, 2), 2);
    assert_int_equal(tg_utf16_len(cut4), 3);
    assert_int_equal(tg_utf16_to_byte_offset(cut4, 3), 3);
    assert_int_equal(tg_utf16_len(cut2), 2);
    assert_int_equal(tg_utf16_to_byte_offset(cut2, 3), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_private_text),
        cmocka_unit_test(test_group_message),
        cmocka_unit_test(test_supergroup_command_with_botname),
        cmocka_unit_test(test_start_deep_link),
        cmocka_unit_test(test_command_not_at_offset_zero),
        cmocka_unit_test(test_command_args_cyrillic_emoji),
        cmocka_unit_test(test_entities_after_emoji),
        cmocka_unit_test(test_contact),
        cmocka_unit_test(test_location),
        cmocka_unit_test(test_photo_takes_largest),
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_reply_to),
        cmocka_unit_test(test_edited_message),
        cmocka_unit_test(test_migrate_to_and_from),
        cmocka_unit_test(test_big_ids),
        cmocka_unit_test(test_callback_query),
        cmocka_unit_test(test_callback_query_inline),
        cmocka_unit_test(test_callback_query_inaccessible_message),
        cmocka_unit_test(test_my_chat_member_blocked),
        cmocka_unit_test(test_my_chat_member_unblocked),
        cmocka_unit_test(test_my_chat_member_group_is_not_blocking),
        cmocka_unit_test(test_unknown_types),
        cmocka_unit_test(test_null_members_are_absent),
        cmocka_unit_test(test_command_edge_cases),
        cmocka_unit_test(test_malformed_fixtures),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_wrong_types_name_the_path),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_string_limit),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_entity_limit),
        cmocka_unit_test(test_bad_limits_and_null_args),
        cmocka_unit_test(test_long_path_is_truncated_safely),
        cmocka_unit_test(test_utf16_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
