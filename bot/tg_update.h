/*
 * tg_update.h - the Telegram Update model and its parser.
 *
 * tg_update_parse() turns one Update JSON body (a webhook request, or one
 * element of a getUpdates result) into typed structs holding what the bot
 * engine needs: messages and edited messages (text, entities, the leading
 * bot command, contact, location, photo, document, reply, chat migration),
 * callback queries and my_chat_member changes (blocked/unblocked). Every
 * other update type (channel_post, inline_query, poll, ...) comes back as
 * TG_UPDATE_UNKNOWN with its type name, never as an error.
 *
 * The parser is pure (no I/O, no globals) and bounded: body size, string
 * length, JSON nesting depth and entity count are capped by struct tg_limits.
 * Malformed input is refused with a struct tg_error naming where
 * ("message.entities[3].offset") and what ("expected an integer"); it never
 * crashes and never reads outside the buffer it was given.
 *
 * Ownership: the returned struct tg_update owns every string and sub-object
 * reachable from it; one tg_update_free() releases them all. Nothing points
 * into the caller's JSON buffer, which may be freed right after parsing.
 *
 * Conventions for fields:
 *  - ids are int64_t (chat ids and migrate_to_chat_id need up to 52 bits);
 *    a JSON number with a fraction or exponent is refused where an integer
 *    is expected, as is any integer outside int64 (json-c saturates those,
 *    so -2^63 itself is refused too; Telegram never gets near either end).
 *  - optional strings are NULL when absent; optional sub-objects are NULL
 *    pointers; optional integers have a has_ flag.
 *  - a member whose value is JSON null counts as absent.
 *  - strings are UTF-8 without NUL bytes (a "\u0000" escape is refused), so
 *    they are safe as C strings.
 *  - entity offsets and lengths are in UTF-16 code units, as Telegram sends
 *    them; each entity also carries the matching byte range in the UTF-8 text.
 */
#ifndef VN_TG_UPDATE_H
#define VN_TG_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* Bounds on one update. tg_limits_default() gives the values noted here. */
struct tg_limits {
    size_t max_body;     /* whole JSON body, bytes (1 MiB); at most INT_MAX */
    size_t max_string;   /* any string field we read, bytes (64 KiB) */
    int max_depth;       /* JSON nesting (32), counted the way json-c does:
                            every value inside a container is one level deeper,
                            so {"a":1} has depth 2; 1..TG_MAX_DEPTH_CAP */
    size_t max_entities; /* per entities / caption_entities array (1000) */
};

#define TG_MAX_DEPTH_CAP 10000

struct tg_limits tg_limits_default(void);

/*
 * Why an update was refused. code is a VN_E... value: VN_ETOOBIG for input
 * over a limit, VN_EINVAL for everything else. path is where, in dotted form
 * ("message.chat.id", "message.entities[3].offset"; "" for the body as a
 * whole); msg is what, e.g. "missing", "expected an integer",
 * "invalid JSON at byte 17: unexpected character".
 */
struct tg_error {
    int code;
    char path[128];
    char msg[256];
};

enum tg_update_kind {
    TG_UPDATE_UNKNOWN = 0, /* any type this parser does not model */
    TG_UPDATE_MESSAGE,
    TG_UPDATE_EDITED_MESSAGE,
    TG_UPDATE_CALLBACK_QUERY,
    TG_UPDATE_MY_CHAT_MEMBER,
};

enum tg_chat_type {
    TG_CHAT_OTHER = 0, /* absent, or a type newer than this code */
    TG_CHAT_PRIVATE,
    TG_CHAT_GROUP,
    TG_CHAT_SUPERGROUP,
    TG_CHAT_CHANNEL,
};

enum tg_entity_type {
    TG_ENTITY_OTHER = 0, /* a type newer than this code; see tg_entity.type */
    TG_ENTITY_MENTION,
    TG_ENTITY_HASHTAG,
    TG_ENTITY_CASHTAG,
    TG_ENTITY_BOT_COMMAND,
    TG_ENTITY_URL,
    TG_ENTITY_EMAIL,
    TG_ENTITY_PHONE_NUMBER,
    TG_ENTITY_BOLD,
    TG_ENTITY_ITALIC,
    TG_ENTITY_UNDERLINE,
    TG_ENTITY_STRIKETHROUGH,
    TG_ENTITY_SPOILER,
    TG_ENTITY_BLOCKQUOTE,
    TG_ENTITY_EXPANDABLE_BLOCKQUOTE,
    TG_ENTITY_CODE,
    TG_ENTITY_PRE,
    TG_ENTITY_TEXT_LINK,
    TG_ENTITY_TEXT_MENTION,
    TG_ENTITY_CUSTOM_EMOJI,
};

struct tg_user {
    int64_t id; /* required */
    bool is_bot;
    char *first_name;
    char *last_name;
    char *username;
    char *language_code; /* IETF tag from the user's client, e.g. "ru" */
};

struct tg_chat {
    int64_t id; /* required; negative for groups, -100... for supergroups */
    enum tg_chat_type type;
    char *title;    /* groups, supergroups, channels */
    char *username; /* private chats, public supergroups and channels */
};

struct tg_entity {
    enum tg_entity_type kind;
    char *type;         /* the type string as sent, e.g. "bot_command" */
    size_t offset;      /* UTF-16 code units, as sent */
    size_t length;      /* UTF-16 code units, as sent */
    size_t byte_offset; /* the same range in the UTF-8 text */
    size_t byte_length;
    char *url; /* text_link only, else NULL */
};

/*
 * The bot command a text message starts with: "/remind@VestnikBot tomorrow"
 * gives name "remind", bot "VestnikBot", args "tomorrow". Only a bot_command
 * entity at offset 0 of message text counts (not one later in the text, and
 * not in a media caption, as the usual bot frameworks do).
 */
struct tg_command {
    char *name; /* without the '/'; never empty */
    char *bot;  /* the @botname suffix without '@', or NULL */
    char *args; /* rest of the text after the command, ASCII whitespace
                   trimmed; "" when none. For deep links "/start PAYLOAD"
                   this is PAYLOAD. */
};

struct tg_contact {
    char *phone_number;
    char *first_name;
    char *last_name;
    bool has_user_id;
    int64_t user_id; /* when the contact is a Telegram user */
};

struct tg_location {
    double latitude;  /* checked to be within [-90, 90] */
    double longitude; /* checked to be within [-180, 180] */
};

/* The largest of the sizes Telegram sends (by width x height). */
struct tg_photo {
    char *file_id; /* required */
    char *file_unique_id;
    int64_t width, height;
    size_t n_sizes; /* how many sizes were offered */
};

struct tg_document {
    char *file_id; /* required */
    char *file_unique_id;
    char *file_name;
    char *mime_type;
    bool has_file_size;
    int64_t file_size;
};

/* The message this one replies to: just enough to find it again. */
struct tg_reply {
    int64_t message_id;
    bool has_from;
    int64_t from_id;
};

struct tg_message {
    int64_t message_id;   /* required */
    int64_t date;         /* Unix time, 0 if absent */
    int64_t edit_date;    /* edited messages; 0 if absent */
    struct tg_chat chat;  /* required */
    struct tg_user *from; /* NULL for channel posts and anonymous admins */

    /* Message text, or the caption of a media message (then text_is_caption
       is set and entities are the caption's). NULL if neither. */
    char *text;
    size_t text_len; /* bytes */
    bool text_is_caption;
    struct tg_entity *entities;
    size_t n_entities;
    struct tg_command *command; /* NULL unless text starts with a command */

    struct tg_contact *contact;
    struct tg_location *location;
    struct tg_photo *photo;
    struct tg_document *document;
    struct tg_reply *reply_to;

    /* A group became a supergroup: the old chat's last message carries
       migrate_to_chat_id, the new chat's first migrate_from_chat_id. */
    bool has_migrate_to_chat_id;
    int64_t migrate_to_chat_id;
    bool has_migrate_from_chat_id;
    int64_t migrate_from_chat_id;
};

struct tg_callback_query {
    char *id;            /* required; answer it with answerCallbackQuery */
    struct tg_user from; /* required */
    char *data;          /* callback_data of the button; NULL for games */
    char *chat_instance;
    char *inline_message_id; /* button on a message sent in inline mode */
    /* The message carrying the button, when the bot sent it (possibly an
       "inaccessible" one with date 0: chat and message_id are still there). */
    bool has_message;
    struct tg_chat message_chat;
    int64_t message_id;
};

/*
 * The bot's own membership changed. In a private chat, "kicked" means the
 * user blocked the bot (blocked); "kicked" -> "member" means they unblocked
 * it (unblocked, typically followed by /start).
 */
struct tg_chat_member_updated {
    struct tg_chat chat; /* required */
    struct tg_user from; /* required: who made the change */
    int64_t date;
    char *old_status; /* "creator", "administrator", "member", "restricted",
                         "left", "kicked"; NULL if absent */
    char *new_status;
    bool blocked;
    bool unblocked;
};

struct tg_update {
    int64_t update_id; /* required */
    enum tg_update_kind kind;
    /* The update's type as sent ("message", "channel_post", "poll", ...):
       the first member besides update_id; NULL if there is none. */
    char *type_name;
    /* Exactly one of these is set for a known kind, none for unknown.
       message is used for both MESSAGE and EDITED_MESSAGE. */
    struct tg_message *message;
    struct tg_callback_query *callback_query;
    struct tg_chat_member_updated *my_chat_member;
};

/*
 * Parse one Update from json[0..len) (need not be NUL-terminated). lim may be
 * NULL for tg_limits_default(). Returns a new update the caller releases with
 * tg_update_free(), or NULL with the reason in *err (err may be NULL). On
 * success err->code is 0 and path and msg are empty.
 */
struct tg_update *tg_update_parse(const char *json, size_t len, const struct tg_limits *lim,
                                  struct tg_error *err);

/* Release an update and everything it owns. NULL is a no-op. */
void tg_update_free(struct tg_update *u);

/*
 * Routing keys. Chat: the message's chat, the callback's message chat, the
 * my_chat_member chat. User: the sender, the callback's from, the
 * my_chat_member from. Return 0 and set *out, or VN_ENOENT when the update
 * has none (unknown kinds, inline callbacks, messages without from).
 */
int tg_update_chat_id(const struct tg_update *u, int64_t *out);
int tg_update_user_id(const struct tg_update *u, int64_t *out);

/* "message", "edited_message", ... for a kind; "unknown" for TG_UPDATE_UNKNOWN. */
const char *tg_update_kind_name(enum tg_update_kind kind);

/*
 * UTF-16 helpers over NUL-terminated UTF-8. A code point above U+FFFF counts
 * as two units (a surrogate pair), everything else as one; a byte that does
 * not start a well-formed sequence counts as one unit, so any input gives an
 * answer and nothing past the NUL is read.
 *
 * tg_utf16_len: the text's length in UTF-16 code units.
 * tg_utf16_to_byte_offset: the byte offset where code unit utf16_off starts
 * (utf16_off == the UTF-16 length gives strlen(text)); -1 when utf16_off is
 * past the end or falls between the two halves of a surrogate pair.
 */
size_t tg_utf16_len(const char *text);
ptrdiff_t tg_utf16_to_byte_offset(const char *text, size_t utf16_off);

#endif
