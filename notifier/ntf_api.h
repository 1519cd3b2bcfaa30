/*
 * ntf_api.h - the notifier's HTTP API (docs/openapi.yaml):
 *
 *   POST /v1/notifications        publish an event envelope (202 once RabbitMQ confirmed it)
 *   GET  /v1/notifications/{id}   the event and its delivery rows
 *   PUT  /v1/users/{id}           register or update a recipient: e-mail, locale, time zone,
 *                                 preferences, Telegram link
 *   GET  /v1/users/{id}           the same, as stored
 *
 * Every route needs "Authorization: Bearer <API_KEY>" (404 "disabled" while
 * API_KEY is empty). Errors are JSON: {"error":{"code":..., "message":...}}.
 */
#ifndef NTF_API_H
#define NTF_API_H

#include <stddef.h>
#include <uv.h>

struct http_router;
struct pgc_client;
struct mq_client;

struct ntf_api_opts {
    uv_loop_t *loop;
    struct pgc_client *pg;
    struct mq_client *mq;
    const char *exchange;
    const char *api_key;
    size_t max_event_bytes;
};

struct ntf_api;

/* Add the routes; NULL if the route table refuses them. */
struct ntf_api *ntf_api_new(const struct ntf_api_opts *o, struct http_router *router);
void ntf_api_free(struct ntf_api *a);

/*
 * Fill the envelope fields a caller may leave out (id: a random UUID,
 * version: 1, occurred_at: now, source: default_source) into the JSON object
 * text body; returns a new string (caller frees) or NULL if body is not a
 * JSON object. Used by POST /v1/notifications and `vestnik send`.
 */
char *ntf_envelope_complete(const char *body, size_t len, const char *default_source);

#endif
