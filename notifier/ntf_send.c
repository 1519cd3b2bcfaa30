/*
 * ntf_send.c - `vestnik send`: publish an event envelope from the command
 * line, checked by the same parser the notifier uses, and wait for
 * RabbitMQ's confirm.
 */
#include "ntf_send.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/amqp.h"
#include "core/common.h"
#include "core/log.h"
#include "ntf_api.h"
#include "ntf_envelope.h"

const char ntf_send_usage[] =
    "usage: vestnik send TYPE --to RECIPIENT [--to ...] [--data JSON|@FILE] [options]\n"
    "       vestnik send --file ENVELOPE.json [--count N]\n"
    "\n"
    "Publish an event to RabbitMQ (AMQP_URL, exchange AMQP_EXCHANGE) for the notifier,\n"
    "after checking it exactly as the notifier will (docs/asyncapi.yaml). Prints the\n"
    "event id once RabbitMQ confirmed it; GET /v1/notifications/{id} then shows its\n"
    "deliveries.\n"
    "\n"
    "  TYPE                task.assigned, task.due, task.completed, reminder.scheduled,\n"
    "                      reminder.cancelled or notification.requested\n"
    "  --to RECIPIENT      user:ID (or just ID), tg:TELEGRAM_USER_ID[:CHAT_ID], email:ADDRESS\n"
    "  --data JSON|@FILE   the event's data object (default {})\n"
    "  --priority P        low, normal, high or critical\n"
    "  --channels LIST     e.g. telegram,email: overrides the recipients' preferences\n"
    "  --deliver-at TIME   RFC 3339; not before then (reminders fire then)\n"
    "  --dedup-key KEY     a second event with the same key is dropped\n"
    "  --id UUID           the event id (default: a random UUID)\n"
    "  --file FILE         send this envelope, or one envelope per line (NDJSON); \"-\" =\n"
    "                      stdin; missing id, version, occurred_at and source are filled in\n"
    "  --count N           publish N copies, each with its own id and occurred_at (load\n"
    "                      tests); prints the rate\n"
    "\n"
    "Example:\n"
    "  vestnik send notification.requested --to user:42 --data '{\"title\":\"Hello\"}'\n"
    "Exit codes: 0 confirmed, 1 RabbitMQ refused or is unreachable, 2 bad arguments or event.\n";

static char *read_all(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    struct vn_buf b = VN_BUF_INIT;
    char chunk[8192];
    size_t n;
    if (f == NULL)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        vn_buf_append(&b, chunk, n);
    if (f != stdin)
        fclose(f);
    if (b.data == NULL)
        vn_buf_puts(&b, "");
    return vn_buf_steal(&b);
}

static json_object *recipient(const char *spec, char *err, size_t len)
{
    json_object *r = json_object_new_object();
    if (strncmp(spec, "tg:", 3) == 0) {
        char *end;
        long long uid = strtoll(spec + 3, &end, 10), chat = uid;
        if (*end == ':')
            chat = strtoll(end + 1, &end, 10);
        if (*end != '\0' || uid <= 0) {
            snprintf(err, len, "--to %s: expected tg:TELEGRAM_USER_ID[:CHAT_ID]", spec);
            json_object_put(r);
            return NULL;
        }
        json_object_object_add(r, "telegram_user_id", json_object_new_int64(uid));
        json_object_object_add(r, "chat_id", json_object_new_int64(chat));
    } else if (strncmp(spec, "email:", 6) == 0) {
        json_object_object_add(r, "email", json_object_new_string(spec + 6));
    } else {
        json_object_object_add(
            r, "user_id", json_object_new_string(strncmp(spec, "user:", 5) == 0 ? spec + 5 : spec));
    }
    return r;
}

struct send_state {
    uv_loop_t *loop;
    size_t sent, confirmed, failed;
    char first_why[256];
};

static void on_confirm(void *ud, int ok, const char *why)
{
    struct send_state *s = ud;
    if (ok)
        s->confirmed++;
    else if (s->failed++ == 0)
        snprintf(s->first_why, sizeof(s->first_why), "%s", why ? why : "?");
}

static int topology(amqp_connection_state_t conn, amqp_channel_t ch, void *ud)
{
    const char *exchange = ud;
    amqp_exchange_declare(conn, ch, amqp_cstring_bytes(exchange), amqp_cstring_bytes("topic"), 0, 1,
                          0, 0, amqp_empty_table);
    return amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL ? 0 : -1;
}

static void on_closed(void *ud)
{
    VN_UNUSED(ud);
}

int ntf_send_main(const struct vn_config *cfg, int argc, char **argv)
{
    json_object *env = NULL, *rcpts = json_object_new_array(), *data = NULL;
    const char *type = NULL, *file = NULL;
    char err[300];
    long count = 1;
    int rc = 2;

    if (cfg->log_level > VN_LOG_DEBUG && cfg->log_level < VN_LOG_WARN)
        vn_log_set_level(VN_LOG_WARN); /* connection chatter would drown the answer */
    env = json_object_new_object();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' && type == NULL) {
            type = a;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "vestnik send: %s needs a value (try --help)\n", a);
            goto out;
        }
        i++;
        if (strcmp(a, "--to") == 0) {
            json_object *r = recipient(v, err, sizeof(err));
            if (r == NULL) {
                fprintf(stderr, "vestnik send: %s\n", err);
                goto out;
            }
            json_object_array_add(rcpts, r);
        } else if (strcmp(a, "--data") == 0) {
            char *text = v[0] == '@' ? read_all(v + 1) : xstrdup(v);
            if (text == NULL) {
                fprintf(stderr, "vestnik send: --data %s: cannot read the file\n", v);
                goto out;
            }
            enum json_tokener_error jerr;
            json_object_put(data);
            data = json_tokener_parse_verbose(text, &jerr);
            free(text);
            if (data == NULL || !json_object_is_type(data, json_type_object)) {
                fprintf(stderr, "vestnik send: --data must be a JSON object%s%s\n",
                        data ? "" : ": ", data ? "" : json_tokener_error_desc(jerr));
                goto out;
            }
        } else if (strcmp(a, "--priority") == 0 || strcmp(a, "--deliver-at") == 0 ||
                   strcmp(a, "--dedup-key") == 0 || strcmp(a, "--id") == 0) {
            const char *key = strcmp(a, "--priority") == 0     ? "priority"
                              : strcmp(a, "--deliver-at") == 0 ? "deliver_at"
                              : strcmp(a, "--dedup-key") == 0  ? "dedup_key"
                                                               : "id";
            json_object_object_add(env, key, json_object_new_string(v));
        } else if (strcmp(a, "--channels") == 0) {
            json_object *list = json_object_new_array();
            char *copy = xstrdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                json_object_array_add(list, json_object_new_string(t));
            free(copy);
            json_object_object_add(env, "channels", list);
        } else if (strcmp(a, "--file") == 0) {
            file = v;
        } else if (strcmp(a, "--count") == 0) {
            char *end;
            count = strtol(v, &end, 10);
            if (*end || count < 1 || count > 10000000) {
                fprintf(stderr, "vestnik send: --count expects 1 to 10000000\n");
                goto out;
            }
        } else {
            fprintf(stderr, "vestnik send: unknown option %s (try --help)\n", a);
            goto out;
        }
    }

    /* The events to publish: one, or one per line of an NDJSON file. */
    struct ntf_event *evs = NULL;
    size_t nev = 0, cap = 0;
    struct ntf_limits lim = {(size_t)cfg->notify_max_event_bytes, 0, 0};
    char *text = NULL;
    if (file) {
        text = read_all(file);
        if (text == NULL) {
            fprintf(stderr, "vestnik send: --file %s: cannot read it\n", file);
            goto out;
        }
    } else {
        if (type == NULL) {
            fprintf(stderr, "vestnik send: name the event type (try --help)\n");
            goto out;
        }
        json_object_object_add(env, "type", json_object_new_string(type));
        if (json_object_array_length(rcpts))
            json_object_object_add(env, "recipients", json_object_get(rcpts));
        json_object_object_add(env, "data",
                               data ? json_object_get(data) : json_object_new_object());
        text = xstrdup(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN));
    }
    char *whole = ntf_envelope_complete(text, strlen(text), "vestnik-cli");
    size_t line = 0;
    for (char *p = text; whole || *p;) {
        char *body = whole;
        size_t len = strcspn(p, "\n");
        line++;
        if (body == NULL) {
            char save = p[len];
            p[len] = '\0';
            size_t skip = strspn(p, " \t\r");
            if (p[skip] == '\0') { /* blank line */
                p[len] = save;
                p += len + (save != '\0');
                continue;
            }
            body = ntf_envelope_complete(p, len, "vestnik-cli");
            p[len] = save;
            p += len + (save != '\0');
            if (body == NULL) {
                fprintf(stderr, "vestnik send: %s line %zu is not a JSON object\n", file, line);
                goto fail;
            }
        }
        struct ntf_reject_info why;
        if (nev == cap) {
            cap = cap ? cap * 2 : 16;
            evs = xrealloc(evs, cap * sizeof(*evs));
        }
        if (ntf_event_parse(body, strlen(body), &lim, &evs[nev], &why) != 0) {
            fprintf(stderr, "vestnik send: %s%.0zu%sthe event would be dead-lettered: %s: %s\n",
                    whole || !file ? "" : "line ", whole || !file ? 0 : line,
                    whole || !file ? "" : ": ", ntf_reject_code(why.code), why.msg);
            if (body == whole)
                whole = NULL;
            free(body);
            goto fail;
        }
        nev++;
        if (body == whole)
            whole = NULL;
        free(body);
        if (p == text) /* a whole-file envelope */
            break;
    }
    if (nev == 0) {
        fprintf(stderr, "vestnik send: %s holds no event\n", file ? file : "the command line");
        goto fail;
    }
    if (count > 1 && nev > 1) {
        fprintf(stderr, "vestnik send: --count works with one event, not a file of %zu\n", nev);
        goto fail;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct send_state st = {&loop, 0, 0, 0, ""};
    struct mq_options mo = {cfg->amqp_url, 2000, 10, "vestnik send"};
    struct mq_client *mq = mq_client_new(&loop, &mo, topology, NULL, cfg->amqp_exchange);
    if (mq == NULL) {
        fprintf(stderr, "vestnik send: AMQP_URL is not usable\n");
        uv_loop_close(&loop);
        rc = 1;
        goto fail;
    }
    uint64_t t0 = vn_now_ms();
    size_t total = nev > 1 ? nev : (size_t)count;
    for (size_t k = 0; k < total; k++) {
        struct ntf_event *ev = &evs[nev > 1 ? k : 0];
        json_object *root = ev->root;
        char id[37];
        memcpy(id, ev->id, sizeof(id));
        if (count > 1) {
            char ts[40];
            ntf_uuid_random(id);
            ntf_format_rfc3339((int64_t)vn_wall_ms(), ts, sizeof(ts));
            json_object_object_add(root, "id", json_object_new_string(id));
            json_object_object_add(root, "occurred_at", json_object_new_string(ts));
            json_object_object_del(root, "dedup_key");
        }
        const char *out = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
        if (mq_publish(mq, cfg->amqp_exchange, ntf_type_name(ev->type), id, NULL, out, strlen(out),
                       on_confirm, &st) == 0)
            st.sent++;
        /* keep memory bounded: let confirms catch up every 5000 */
        while (st.sent - st.confirmed - st.failed >= 5000)
            uv_run(&loop, UV_RUN_ONCE);
        if (count == 1)
            printf("%s\n", id);
    }
    uint64_t deadline = vn_now_ms() + 30000;
    while (st.confirmed + st.failed < st.sent && vn_now_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    double secs = (double)(vn_now_ms() - t0) / 1000.0;
    if (st.failed || st.confirmed < st.sent)
        fprintf(stderr, "vestnik send: %zu of %zu not confirmed by RabbitMQ at %s: %s\n",
                st.sent - st.confirmed, st.sent, cfg->amqp_exchange,
                st.failed ? st.first_why : "timed out after 30 s (is RabbitMQ running?)");
    if (st.failed && strncmp(st.first_why, "unroutable", 10) == 0)
        fprintf(stderr,
                "no queue is bound to %s for that type: start `vestnik notifier` once "
                "(it declares its queues), or check AMQP_EXCHANGE\n",
                cfg->amqp_exchange);
    else if (total > 1)
        fprintf(stderr, "published %zu events in %.2f s (%.0f/s), all confirmed\n", st.sent, secs,
                secs > 0 ? (double)st.sent / secs : 0.0);
    rc = st.failed || st.confirmed < st.sent ? 1 : 0;
    mq_client_close(mq, 1000, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
fail:
    for (size_t k = 0; k < nev; k++)
        ntf_event_free(&evs[k]);
    free(evs);
    free(whole);
    free(text);
out:
    json_object_put(env);
    json_object_put(rcpts);
    json_object_put(data);
    return rc;
}
