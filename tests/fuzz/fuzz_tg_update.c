/*
 * fuzz_tg_update.c - libFuzzer target for bot/tg_update.c.
 *
 * Feeds each input to tg_update_parse() with the default limits, and again
 * with tiny limits so small inputs also reach the over-the-limit paths. After
 * each parse it checks the promises the header makes and traps when one is
 * broken, so the fuzzer finds wrong answers as well as crashes:
 *  - failure: code is a negative VN_E value and msg says something;
 *    success: code is 0;
 *  - every entity's byte range lies inside the text, and agrees with what
 *    tg_utf16_to_byte_offset() computes on its own;
 *  - a command's pieces are non-empty where promised and NUL-free C strings;
 *  - the routing helpers answer for every kind.
 * See tests/fuzz/README.md for how to build and run it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bot/tg_update.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static void check_message(const struct tg_message *m)
{
    CHECK(m->text != NULL || m->n_entities == 0);
    if (m->text == NULL)
        return;
    CHECK(strlen(m->text) == m->text_len);
    size_t units = tg_utf16_len(m->text);
    for (size_t i = 0; i < m->n_entities; i++) {
        const struct tg_entity *e = &m->entities[i];
        CHECK(e->type != NULL);
        CHECK(e->offset + e->length <= units);
        CHECK(e->byte_offset + e->byte_length <= m->text_len);
        CHECK(tg_utf16_to_byte_offset(m->text, e->offset) == (ptrdiff_t)e->byte_offset);
        CHECK(tg_utf16_to_byte_offset(m->text, e->offset + e->length) ==
              (ptrdiff_t)(e->byte_offset + e->byte_length));
    }
    if (m->command != NULL) {
        CHECK(!m->text_is_caption);
        CHECK(m->text[0] == '/');
        CHECK(m->command->name != NULL && m->command->name[0] != '\0');
        CHECK(m->command->args != NULL);
        CHECK(strlen(m->command->args) <= m->text_len);
        CHECK(m->command->bot == NULL || m->command->bot[0] != '\0');
    }
    if (m->photo != NULL)
        CHECK(m->photo->file_id != NULL && m->photo->n_sizes > 0);
    if (m->document != NULL)
        CHECK(m->document->file_id != NULL);
}

/* Parse once under lim and check the result. */
static void run(const uint8_t *data, size_t size, const struct tg_limits *lim)
{
    struct tg_error err;
    struct tg_update *u = tg_update_parse((const char *)data, size, lim, &err);
    int64_t chat = 0, user = 0;

    if (u == NULL) {
        CHECK(err.code < 0);
        CHECK(err.msg[0] != '\0');
        CHECK(strlen(err.path) < sizeof(err.path));
        return;
    }
    CHECK(err.code == 0);
    CHECK(tg_update_kind_name(u->kind) != NULL);
    int has_chat = tg_update_chat_id(u, &chat) == 0;
    int has_user = tg_update_user_id(u, &user) == 0;
    switch (u->kind) {
    case TG_UPDATE_MESSAGE:
    case TG_UPDATE_EDITED_MESSAGE:
        CHECK(u->message != NULL);
        check_message(u->message);
        CHECK(has_chat && chat == u->message->chat.id);
        CHECK(has_user == (u->message->from != NULL));
        break;
    case TG_UPDATE_CALLBACK_QUERY:
        CHECK(u->callback_query != NULL && u->callback_query->id != NULL);
        CHECK(has_chat == u->callback_query->has_message);
        CHECK(has_user && user == u->callback_query->from.id);
        break;
    case TG_UPDATE_MY_CHAT_MEMBER:
        CHECK(u->my_chat_member != NULL);
        CHECK(!(u->my_chat_member->blocked && u->my_chat_member->unblocked));
        CHECK(has_chat && has_user);
        break;
    case TG_UPDATE_UNKNOWN:
        CHECK(u->message == NULL && u->callback_query == NULL && u->my_chat_member == NULL);
        CHECK(!has_chat && !has_user);
        break;
    }
    tg_update_free(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct tg_limits tiny = {
        .max_body = 512, .max_string = 8, .max_depth = 5, .max_entities = 2};

    run(data, size, NULL);
    run(data, size, &tiny);
    return 0;
}
