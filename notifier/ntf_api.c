#include "ntf_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/amqp.h"
#include "core/common.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/pg.h"
#include "fsm/fsm_date.h"
#include "ntf_envelope.h"

struct ntf_api {
    struct ntf_api_opts o;
};

char *ntf_envelope_complete(const char *body, size_t len, const char *default_source)
{
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tok, body, (int)len), *v;
    int ok = root && json_tokener_get_error(tok) == json_tokener_success &&
             json_tokener_get_parse_end(tok) == len && json_object_is_type(root, json_type_object);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(root);
        return NULL;
    }
    if (!json_object_object_get_ex(root, "id", &v)) {
        char id[37];
        ntf_uuid_random(id);
        json_object_object_add(root, "id", json_object_new_string(id));
    }
    if (!json_object_object_get_ex(root, "version", &v))
        json_object_object_add(root, "version", json_object_new_int(1));
    if (!json_object_object_get_ex(root, "occurred_at", &v)) {
        char ts[40];
        ntf_format_rfc3339((int64_t)vn_wall_ms(), ts, sizeof(ts));
        json_object_object_add(root, "occurred_at", json_object_new_string(ts));
    }
    if (!json_object_object_get_ex(root, "source", &v))
        json_object_object_add(root, "source", json_object_new_string(default_source));
    char *out = xstrdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return out;
}

static int authorized(struct ntf_api *a, struct http_request *req)
{
    const char *h = req->headers[HTTP_HDR_AUTHORIZATION];
    if (a->o.api_key == NULL || *a->o.api_key == '\0') {
        http_respond_error(req, 404, "disabled", "set API_KEY to enable /v1 endpoints");
        return 0;
    }
    if (h == NULL || strncmp(h, "Bearer ", 7) != 0 ||
        !vn_consttime_eq(h + 7, strlen(h + 7), a->o.api_key, strlen(a->o.api_key))) {
        http_respond_error(req, 401, "unauthorized", "Authorization: Bearer <API_KEY> required");
        return 0;
    }
    return 1;
}

/* ---- POST /v1/notifications ---------------------------------------------------- */

/* How long POST /v1/notifications waits for RabbitMQ's confirm. */
#define PUBLISH_WAIT_MS 5000

struct pub {
    struct http_request *req; /* NULL once answered */
    uv_timer_t timer;
    int pending; /* the confirm and the timer's close */
    char id[37];
};

static void pub_unref(uv_handle_t *h)
{
    struct pub *p = h->data;
    if (--p->pending == 0)
        free(p);
}

static void on_publish_timeout(uv_timer_t *t)
{
    struct pub *p = t->data;
    if (p->req == NULL)
        return;
    http_resp_header(p->req, "retry-after", "1");
    http_respond_error(p->req, 503, "unavailable",
                       "RabbitMQ did not confirm event %s within %d s; it may still be "
                       "delivered: retry with the same id (an id is delivered once)",
                       p->id, PUBLISH_WAIT_MS / 1000);
    p->req = NULL;
}

static void on_published(void *ud, int ok, const char *why)
{
    struct pub *p = ud;
    uv_timer_stop(&p->timer);
    if (!uv_is_closing((uv_handle_t *)&p->timer))
        uv_close((uv_handle_t *)&p->timer, pub_unref);
    if (p->req == NULL) {
        /* answered 503 already */
    } else if (ok) {
        struct vn_buf b = VN_BUF_INIT;
        char loc[64];
        snprintf(loc, sizeof(loc), "/v1/notifications/%s", p->id);
        http_resp_header(p->req, "location", loc);
        vn_buf_printf(&b, "{\"id\":\"%s\",\"status\":\"accepted\",\"status_url\":\"%s\"}\n", p->id,
                      loc);
        http_respond_json(p->req, 202, &b);
        vn_buf_free(&b);
    } else {
        http_resp_header(p->req, "retry-after", "1");
        http_respond_error(p->req, 503, "unavailable", "RabbitMQ did not take the event: %s",
                           why ? why : "?");
    }
    p->req = NULL;
    if (--p->pending == 0)
        free(p);
}

static void h_post_notification(struct http_request *req, void *ud)
{
    struct ntf_api *a = ud;
    struct ntf_event ev;
    struct ntf_reject_info why;
    if (!authorized(a, req))
        return;
    if (a->o.max_event_bytes && req->body.len > a->o.max_event_bytes) {
        http_respond_error(req, 413, "too_large", "body is %zu bytes, over the limit of %zu",
                           req->body.len, a->o.max_event_bytes);
        return;
    }
    if (a->o.mq == NULL || !mq_is_connected(a->o.mq)) {
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "RabbitMQ is not connected; try again");
        return;
    }
    char *body =
        ntf_envelope_complete(req->body.data ? req->body.data : "", req->body.len, "http-api");
    if (body == NULL) {
        /* let the parser say exactly what is wrong */
        struct ntf_limits lim = {a->o.max_event_bytes, 0, 0};
        ntf_event_parse(req->body.data ? req->body.data : "", req->body.len, &lim, &ev, &why);
        http_respond_error(req, 400, ntf_reject_code(why.code), "%s", why.msg);
        return;
    }
    struct ntf_limits lim = {a->o.max_event_bytes, 0, 0};
    if (ntf_event_parse(body, strlen(body), &lim, &ev, &why) != 0) {
        http_respond_error(req, why.code == NTF_R_TOO_LARGE ? 413 : 400, ntf_reject_code(why.code),
                           "%s", why.msg);
        free(body);
        return;
    }
    struct pub *p = xcalloc(1, sizeof(*p));
    p->req = req;
    memcpy(p->id, ev.id, sizeof(p->id));
    p->pending = 2;
    uv_timer_init(a->o.loop, &p->timer);
    p->timer.data = p;
    int rc = mq_publish(a->o.mq, a->o.exchange, ntf_type_name(ev.type), ev.id, NULL, body,
                        strlen(body), on_published, p);
    ntf_event_free(&ev);
    free(body);
    if (rc == 0) {
        uv_update_time(a->o.loop);
        uv_timer_start(&p->timer, on_publish_timeout, PUBLISH_WAIT_MS, 0);
    } else {
        p->pending = 1;
        uv_close((uv_handle_t *)&p->timer, pub_unref);
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "cannot publish: %s", vn_strerror(rc));
    }
}

/* ---- GET /v1/notifications/{id} -------------------------------------------------- */

static const char SQL_GET_EVENT[] =
    "SELECT json_build_object('id', e.id, 'type', e.type, 'source', e.source, 'priority', "
    "e.priority, 'occurred_at', e.occurred_at, 'received_at', e.received_at, 'deliver_at', "
    "e.deliver_at, 'dedup_key', e.dedup_key, "
    "'deliveries', COALESCE((SELECT json_agg(json_build_object('user_id', d.user_id, 'channel', "
    "d.channel, 'state', d.state, 'attempts', d.attempts, 'last_error', d.last_error, "
    "'provider_ref', d.provider_ref, 'created_at', d.created_at, 'updated_at', d.updated_at, "
    "'sent_at', d.sent_at, 'next_attempt_at', CASE WHEN d.state IN ('pending', 'retrying') THEN "
    "d.next_attempt_at END) ORDER BY d.id) FROM notify.deliveries d WHERE d.event_id = e.id), "
    "'[]'), "
    "'reminder', (SELECT json_build_object('id', r.id, 'state', r.state, 'deliver_at', "
    "r.deliver_at, 'fired_at', r.fired_at, 'cancelled_at', r.cancelled_at) FROM notify.reminders "
    "r WHERE r.event_id = e.id LIMIT 1))::text FROM notify.events e WHERE e.id = $1::uuid";

static void on_event_row(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct http_request *req = ud;
    VN_UNUSED(c);
    if (err) {
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "database: %s", err);
        return;
    }
    if (PQntuples(res) == 0) {
        char id[64];
        http_respond_error(req, 404, "not_found",
                           "no event %s: not received yet, or never published",
                           http_req_param(req, "id", id, sizeof(id)));
        return;
    }
    json_object *o = json_tokener_parse(PQgetvalue(res, 0, 0)), *rem = NULL, *rid = NULL;
    /* a reminder's deliveries belong to the event of its firing */
    if (o && json_object_object_get_ex(o, "reminder", &rem) && rem &&
        json_object_object_get_ex(rem, "id", &rid)) {
        char fired[37];
        char *name = xasprintf("reminder:%s", json_object_get_string(rid));
        ntf_uuid_from_name(name, fired);
        free(name);
        json_object_object_add(rem, "fired_event_id", json_object_new_string(fired));
    }
    struct vn_buf b = VN_BUF_INIT;
    vn_buf_puts(&b, o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)
                      : PQgetvalue(res, 0, 0));
    vn_buf_putc(&b, '\n');
    http_respond_json(req, 200, &b);
    vn_buf_free(&b);
    json_object_put(o);
}

static void h_get_notification(struct http_request *req, void *ud)
{
    struct ntf_api *a = ud;
    char id[64];
    if (!authorized(a, req))
        return;
    if (!ntf_uuid_valid(http_req_param(req, "id", id, sizeof(id)))) {
        http_respond_error(req, 400, "invalid_id", "expected a UUID, got \"%.40s\"", id);
        return;
    }
    const char *p[] = {id};
    if (pgc_query(a->o.pg, SQL_GET_EVENT, 1, p, on_event_row, req) != 0) {
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "PostgreSQL is not connected");
    }
}

/* ---- users ------------------------------------------------------------------------- */

static const char SQL_GET_USER[] =
    "SELECT json_build_object('id', u.id, 'email', u.email, 'display_name', u.display_name, "
    "'locale', u.locale, 'time_zone', u.time_zone, 'active', u.active, 'created_at', "
    "u.created_at, 'updated_at', u.updated_at, 'preferences', json_build_object('channels', "
    "COALESCE(p.channels, '{}'), 'quiet_hours', CASE WHEN p.quiet_hours_start IS NULL THEN NULL "
    "ELSE json_build_object('start', to_char(p.quiet_hours_start, 'HH24:MI'), 'end', "
    "to_char(p.quiet_hours_end, 'HH24:MI')) END, 'fallback_order', COALESCE(p.fallback_order, "
    "'{telegram,email}')), 'telegram', COALESCE((SELECT json_agg(json_build_object("
    "'telegram_user_id', l.telegram_user_id, 'chat_id', l.chat_id, 'username', l.username, "
    "'active', l.active, 'linked_at', l.linked_at, 'blocked_at', l.blocked_at) ORDER BY "
    "l.linked_at) FROM bot.telegram_links l WHERE l.user_id = u.id), '[]'))::text "
    "FROM bot.users u LEFT JOIN bot.preferences p ON p.user_id = u.id WHERE u.id = $1";

/* One statement: the user, then preferences and the Telegram link when given.
 * Fields left out keep their stored value (or the default for a new user). */
static const char SQL_PUT_USER[] =
    "WITH j AS (SELECT $2::jsonb AS j), "
    "u AS (INSERT INTO bot.users AS u (id, email, display_name, locale, time_zone, active) "
    "SELECT $1, j->>'email', j->>'display_name', COALESCE(j->>'locale', 'en'), "
    "COALESCE(j->>'time_zone', 'UTC'), COALESCE((j->>'active')::boolean, true) FROM j "
    "ON CONFLICT (id) DO UPDATE SET "
    "email = CASE WHEN (SELECT j ? 'email' FROM j) THEN EXCLUDED.email ELSE u.email END, "
    "display_name = CASE WHEN (SELECT j ? 'display_name' FROM j) THEN EXCLUDED.display_name "
    "ELSE u.display_name END, "
    "locale = CASE WHEN (SELECT j ? 'locale' FROM j) THEN EXCLUDED.locale ELSE u.locale END, "
    "time_zone = CASE WHEN (SELECT j ? 'time_zone' FROM j) THEN EXCLUDED.time_zone ELSE "
    "u.time_zone END, "
    "active = CASE WHEN (SELECT j ? 'active' FROM j) THEN EXCLUDED.active ELSE u.active END "
    "RETURNING (xmax = 0) AS created), "
    "p AS (INSERT INTO bot.preferences AS p (user_id, channels, quiet_hours_start, "
    "quiet_hours_end, fallback_order) "
    "SELECT $1, COALESCE(j->'preferences'->'channels', '{}'), "
    "(j->'preferences'->'quiet_hours'->>'start')::time, "
    "(j->'preferences'->'quiet_hours'->>'end')::time, "
    "CASE WHEN j->'preferences' ? 'fallback_order' THEN ARRAY(SELECT "
    "jsonb_array_elements_text(j->'preferences'->'fallback_order')) ELSE '{telegram,email}' END "
    "FROM j WHERE j ? 'preferences' "
    "ON CONFLICT (user_id) DO UPDATE SET "
    "channels = CASE WHEN (SELECT j->'preferences' ? 'channels' FROM j) THEN EXCLUDED.channels "
    "ELSE p.channels END, "
    "quiet_hours_start = CASE WHEN (SELECT j->'preferences' ? 'quiet_hours' FROM j) THEN "
    "EXCLUDED.quiet_hours_start ELSE p.quiet_hours_start END, "
    "quiet_hours_end = CASE WHEN (SELECT j->'preferences' ? 'quiet_hours' FROM j) THEN "
    "EXCLUDED.quiet_hours_end ELSE p.quiet_hours_end END, "
    "fallback_order = CASE WHEN (SELECT j->'preferences' ? 'fallback_order' FROM j) THEN "
    "EXCLUDED.fallback_order ELSE p.fallback_order END RETURNING 1), "
    "t AS (INSERT INTO bot.telegram_links AS t (telegram_user_id, user_id, chat_id, username) "
    "SELECT (j->'telegram'->>'telegram_user_id')::bigint, $1, "
    "COALESCE((j->'telegram'->>'chat_id')::bigint, (j->'telegram'->>'telegram_user_id')::bigint), "
    "j->'telegram'->>'username' FROM j WHERE jsonb_typeof(j->'telegram') = 'object' "
    "ON CONFLICT (telegram_user_id) DO UPDATE SET user_id = EXCLUDED.user_id, "
    "chat_id = COALESCE((SELECT (j->'telegram'->>'chat_id')::bigint FROM j), t.chat_id), "
    "username = COALESCE(EXCLUDED.username, t.username), "
    "active = COALESCE((SELECT (j->'telegram'->>'active')::boolean FROM j), t.active), "
    "blocked_at = CASE WHEN (SELECT (j->'telegram'->>'active')::boolean FROM j) THEN NULL "
    "ELSE t.blocked_at END, "
    "linked_at = CASE WHEN t.user_id = EXCLUDED.user_id THEN t.linked_at ELSE now() END "
    "RETURNING 1) "
    "SELECT created::int, (SELECT count(*) FROM p), (SELECT count(*) FROM t) FROM u";

struct put {
    struct ntf_api *a;
    struct http_request *req;
    int created;
    char id[160];
};

static void on_user_row(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct put *p = ud;
    VN_UNUSED(c);
    if (err) {
        http_resp_header(p->req, "retry-after", "1");
        http_respond_error(p->req, 503, "unavailable", "database: %s", err);
    } else if (PQntuples(res) == 0) {
        http_respond_error(p->req, 404, "not_found", "no user \"%s\" (register with PUT)", p->id);
    } else {
        struct vn_buf b = VN_BUF_INIT;
        vn_buf_puts(&b, PQgetvalue(res, 0, 0));
        vn_buf_putc(&b, '\n');
        http_respond_json(p->req, p->created ? 201 : 200, &b);
        vn_buf_free(&b);
    }
    free(p);
}

static void on_put(struct pgc_client *c, PGresult *res, const char *err, void *ud)
{
    struct put *p = ud;
    VN_UNUSED(c);
    if (err) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        /* 22xxx data exceptions and 23xxx constraint violations are the caller's */
        if (state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)) {
            const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
            http_respond_error(p->req, 400, "invalid_user", "%s%s%s",
                               cons ? cons : PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                               cons ? ": " : "",
                               cons ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "");
        } else {
            http_resp_header(p->req, "retry-after", "1");
            http_respond_error(p->req, 503, "unavailable", "database: %s", err);
        }
        free(p);
        return;
    }
    p->created = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "1") == 0;
    const char *params[] = {p->id};
    if (pgc_query(p->a->o.pg, SQL_GET_USER, 1, params, on_user_row, p) != 0) {
        http_respond_error(p->req, 503, "unavailable", "PostgreSQL is not connected");
        free(p);
    }
}

static int id_ok(const char *s)
{
    if (s == NULL || !isalnum((unsigned char)s[0]) || strlen(s) > 128)
        return 0;
    for (const char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("._:@+-", *c))
            return 0;
    return 1;
}

static int time_ok(json_object *v)
{
    int h, m;
    char tail;
    return v && json_object_is_type(v, json_type_string) &&
           sscanf(json_object_get_string(v), "%2d:%2d%c", &h, &m, &tail) == 2 && h >= 0 && h < 24 &&
           m >= 0 && m < 60;
}

/* Check the body before the database sees it, so errors name the field. */
static int check_user(json_object *o, char *err, size_t len)
{
    json_object *v, *p;
    static const char *const strs[] = {"email", "display_name", "locale", "time_zone"};
    json_object_object_foreach(o, key, val)
    {
        VN_UNUSED(val);
        if (strcmp(key, "email") && strcmp(key, "display_name") && strcmp(key, "locale") &&
            strcmp(key, "time_zone") && strcmp(key, "active") && strcmp(key, "preferences") &&
            strcmp(key, "telegram") && strcmp(key, "id")) {
            snprintf(err, len,
                     "%s: unknown field (known: email, display_name, locale, time_zone, "
                     "active, preferences, telegram)",
                     key);
            return -1;
        }
    }
    for (size_t i = 0; i < VN_ARRAY_LEN(strs); i++)
        if (json_object_object_get_ex(o, strs[i], &v) && v &&
            !json_object_is_type(v, json_type_string) &&
            !(i < 2 && json_object_is_type(v, json_type_null))) {
            snprintf(err, len, "%s: expected a string", strs[i]);
            return -1;
        }
    if (json_object_object_get_ex(o, "time_zone", &v) && v) {
        char tzerr[160];
        struct fsm_tz *tz = fsm_tz_load(json_object_get_string(v), NULL, tzerr, sizeof(tzerr));
        if (tz == NULL) {
            snprintf(err, len, "time_zone: %s", tzerr);
            return -1;
        }
        fsm_tz_free(tz);
    }
    if (json_object_object_get_ex(o, "active", &v) && !json_object_is_type(v, json_type_boolean)) {
        snprintf(err, len, "active: expected true or false");
        return -1;
    }
    if (json_object_object_get_ex(o, "preferences", &p)) {
        if (!json_object_is_type(p, json_type_object)) {
            snprintf(err, len, "preferences: expected an object");
            return -1;
        }
        if (json_object_object_get_ex(p, "channels", &v)) {
            if (!json_object_is_type(v, json_type_object)) {
                snprintf(err, len,
                         "preferences.channels: expected an object of event type -> "
                         "[channels], e.g. {\"task.due\": [\"telegram\"], \"*\": "
                         "[\"email\"]}");
                return -1;
            }
            json_object_object_foreach(v, type, list)
            {
                if (strcmp(type, "*") != 0 && ntf_type_parse(type) < 0) {
                    snprintf(err, len, "preferences.channels: unknown event type \"%.60s\"", type);
                    return -1;
                }
                if (!json_object_is_type(list, json_type_array)) {
                    snprintf(err, len, "preferences.channels.%s: expected an array", type);
                    return -1;
                }
                for (size_t i = 0; i < json_object_array_length(list); i++)
                    if (ntf_channel_parse(
                            json_object_get_string(json_object_array_get_idx(list, i))) < 0) {
                        snprintf(err, len,
                                 "preferences.channels.%s[%zu]: expected telegram, email or "
                                 "websocket",
                                 type, i);
                        return -1;
                    }
            }
        }
        if (json_object_object_get_ex(p, "quiet_hours", &v) && v) {
            json_object *s = NULL, *e = NULL;
            json_object_object_get_ex(v, "start", &s);
            json_object_object_get_ex(v, "end", &e);
            if (!json_object_is_type(v, json_type_object) || !time_ok(s) || !time_ok(e) ||
                strcmp(json_object_get_string(s), json_object_get_string(e)) == 0) {
                snprintf(err, len,
                         "preferences.quiet_hours: expected {\"start\": \"22:00\", "
                         "\"end\": \"07:00\"} (different times) or null");
                return -1;
            }
        }
        if (json_object_object_get_ex(p, "fallback_order", &v)) {
            if (!json_object_is_type(v, json_type_array)) {
                snprintf(err, len, "preferences.fallback_order: expected an array of channels");
                return -1;
            }
            for (size_t i = 0; i < json_object_array_length(v); i++)
                if (ntf_channel_parse(json_object_get_string(json_object_array_get_idx(v, i))) <
                    0) {
                    snprintf(err, len,
                             "preferences.fallback_order[%zu]: expected telegram, email or "
                             "websocket",
                             i);
                    return -1;
                }
        }
    }
    if (json_object_object_get_ex(o, "telegram", &v) && v) {
        json_object *t = NULL;
        if (!json_object_is_type(v, json_type_object) ||
            !json_object_object_get_ex(v, "telegram_user_id", &t) ||
            !json_object_is_type(t, json_type_int) || json_object_get_int64(t) <= 0) {
            snprintf(err, len, "telegram: expected {\"telegram_user_id\": 123, \"chat_id\": 123}");
            return -1;
        }
        if (json_object_object_get_ex(v, "chat_id", &t) && !json_object_is_type(t, json_type_int)) {
            snprintf(err, len, "telegram.chat_id: expected an integer");
            return -1;
        }
        if (json_object_object_get_ex(v, "active", &t) &&
            !json_object_is_type(t, json_type_boolean)) {
            snprintf(err, len, "telegram.active: expected true or false");
            return -1;
        }
    }
    return 0;
}

static void h_put_user(struct http_request *req, void *ud)
{
    struct ntf_api *a = ud;
    char id[160], err[300];
    if (!authorized(a, req))
        return;
    if (!id_ok(http_req_param(req, "id", id, sizeof(id)))) {
        http_respond_error(req, 400, "invalid_id",
                           "user id: 1-128 of letters, digits and ._:@+- starting with a letter "
                           "or digit");
        return;
    }
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o =
        json_tokener_parse_ex(tok, req->body.data ? req->body.data : "", (int)req->body.len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    int trailing = o && json_tokener_get_parse_end(tok) != req->body.len;
    json_tokener_free(tok);
    if (o == NULL || trailing || !json_object_is_type(o, json_type_object)) {
        http_respond_error(req, 400, "invalid_json", "body must be one JSON object%s%s",
                           o ? "" : ": ",
                           o                               ? ""
                           : jerr == json_tokener_continue ? "unexpected end of input"
                                                           : json_tokener_error_desc(jerr));
        json_object_put(o);
        return;
    }
    if (check_user(o, err, sizeof(err)) != 0) {
        http_respond_error(req, 400, "invalid_user", "%s", err);
        json_object_put(o);
        return;
    }
    struct put *p = xcalloc(1, sizeof(*p));
    p->a = a;
    p->req = req;
    snprintf(p->id, sizeof(p->id), "%s", id);
    const char *params[] = {id, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)};
    if (pgc_query(a->o.pg, SQL_PUT_USER, 2, params, on_put, p) != 0) {
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "PostgreSQL is not connected");
        free(p);
    }
    json_object_put(o);
}

static void h_get_user(struct http_request *req, void *ud)
{
    struct ntf_api *a = ud;
    char id[160];
    if (!authorized(a, req))
        return;
    if (!id_ok(http_req_param(req, "id", id, sizeof(id)))) {
        http_respond_error(req, 400, "invalid_id", "not a user id");
        return;
    }
    struct put *p = xcalloc(1, sizeof(*p));
    p->a = a;
    p->req = req;
    snprintf(p->id, sizeof(p->id), "%s", id);
    const char *params[] = {id};
    if (pgc_query(a->o.pg, SQL_GET_USER, 1, params, on_user_row, p) != 0) {
        http_resp_header(req, "retry-after", "1");
        http_respond_error(req, 503, "unavailable", "PostgreSQL is not connected");
        free(p);
    }
}

struct ntf_api *ntf_api_new(const struct ntf_api_opts *o, struct http_router *router)
{
    struct ntf_api *a = xcalloc(1, sizeof(*a));
    int rc = 0;
    a->o = *o;
    rc |= http_router_add(router, HTTP_POST, "/v1/notifications", h_post_notification, a);
    rc |= http_router_add(router, HTTP_GET, "/v1/notifications/{id}", h_get_notification, a);
    rc |= http_router_add(router, HTTP_PUT, "/v1/users/{id}", h_put_user, a);
    rc |= http_router_add(router, HTTP_GET, "/v1/users/{id}", h_get_user, a);
    if (rc != 0) {
        free(a);
        return NULL;
    }
    return a;
}

void ntf_api_free(struct ntf_api *a)
{
    free(a);
}
