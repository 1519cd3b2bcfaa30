/*
 * fuzz_ntf.c - libFuzzer target for the notifier's parsers and encoders.
 *
 * The first byte picks what the rest feeds:
 *  - ntf_event_parse() (the event envelope, as it comes off RabbitMQ) with
 *    default and tiny limits; checks the header's promises: a rejection has a
 *    known reason code and a message and leaves the event empty; an accepted
 *    event has a valid lowercase UUID, a known type, version 1, a data
 *    object, recipients that name someone, and re-serialises to JSON that
 *    parses again (what the notifier stores in PostgreSQL);
 *  - ntf_parse_rfc3339() round trips through ntf_format_rfc3339();
 *  - ntf_mime_build() with the input as subject, names and body: the
 *    message never holds a bare CR or LF, no header line is over 998 bytes,
 *    and no body line either.
 * See tests/fuzz/README.md for how to build and run it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/common.h"
#include "notifier/ntf_envelope.h"
#include "notifier/ntf_mime.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static void envelope(const uint8_t *data, size_t size, const struct ntf_limits *lim)
{
    struct ntf_event ev;
    struct ntf_reject_info why;
    int rc = ntf_event_parse((const char *)data, size, lim, &ev, &why);
    if (rc != 0) {
        CHECK(rc == VN_EINVAL || rc == VN_ETOOBIG);
        CHECK(why.code >= NTF_R_TOO_LARGE && why.code <= NTF_R_UNSUPPORTED_VERSION);
        CHECK(why.msg[0] != '\0');
        CHECK(strcmp(ntf_reject_code(why.code), "?") != 0);
        CHECK(ev.root == NULL && ev.recipients == NULL);
        return;
    }
    CHECK(why.code == NTF_ACCEPTED);
    CHECK(ntf_uuid_valid(ev.id));
    for (int i = 0; i < 36; i++)
        CHECK(!(ev.id[i] >= 'A' && ev.id[i] <= 'F'));
    CHECK(ev.type >= 0 && ev.type < NTF_TYPE_COUNT);
    CHECK(ev.version == 1 && ev.source != NULL);
    CHECK(ev.data != NULL && json_object_is_type(ev.data, json_type_object));
    CHECK(ev.type == NTF_REMINDER_CANCELLED || ev.n_recipients > 0);
    for (size_t i = 0; i < ev.n_recipients; i++) {
        const struct ntf_recipient *r = &ev.recipients[i];
        CHECK(r->user_id || r->has_telegram || r->email);
    }
    if (ev.type == NTF_REMINDER_SCHEDULED || ev.type == NTF_REMINDER_CANCELLED)
        CHECK(ev.reminder_id != NULL);
    const char *again = json_object_to_json_string_ext(ev.root, JSON_C_TO_STRING_PLAIN);
    json_object *back = json_tokener_parse(again);
    CHECK(back != NULL);
    json_object_put(back);
    ntf_event_free(&ev);
}

static void mime(const uint8_t *data, size_t size)
{
    char *s = xmalloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    struct ntf_mime_msg m;
    memset(&m, 0, sizeof(m));
    m.from_name = "Vestnik";
    m.from_addr = "noreply@example.com";
    m.to_name = s;
    m.to_addr = "ann@example.com";
    m.subject = s;
    m.text = s;
    m.html = size % 2 ? s : NULL;
    m.message_id = "x@example.com";
    m.date = 1700000000;
    m.boundary = "fuzz";
    struct vn_buf out = VN_BUF_INIT;
    char err[200];
    if (ntf_mime_build(&m, &out, err, sizeof(err)) == 0) {
        size_t line = 0;
        for (size_t i = 0; i < out.len; i++) {
            if (out.data[i] == '\n')
                CHECK(i > 0 && out.data[i - 1] == '\r');
            if (out.data[i] == '\r')
                CHECK(i + 1 < out.len && out.data[i + 1] == '\n');
            line = out.data[i] == '\n' ? 0 : line + 1;
            CHECK(line <= 999);
        }
    } else {
        CHECK(err[0] != '\0');
    }
    vn_buf_free(&out);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ntf_limits tiny = {64, 2, 1};
    if (size == 0)
        return 0;
    switch (data[0] % 4) {
    case 0:
    case 1:
        envelope(data + 1, size - 1, NULL);
        envelope(data + 1, size - 1, &tiny);
        break;
    case 2: {
        char buf[80], out[48];
        size_t n = size - 1 < sizeof(buf) - 1 ? size - 1 : sizeof(buf) - 1;
        int64_t ms, ms2;
        memcpy(buf, data + 1, n);
        buf[n] = '\0';
        if (ntf_parse_rfc3339(buf, &ms) == 0) {
            ntf_format_rfc3339(ms, out, sizeof(out));
            CHECK(ntf_parse_rfc3339(out, &ms2) == 0 && ms2 == ms);
        }
        break;
    }
    default:
        mime(data + 1, size - 1);
    }
    return 0;
}
