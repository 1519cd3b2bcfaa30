/*
 * pg.h - async PostgreSQL client on the loop (libpq non-blocking + uv_poll).
 *
 * One connection per client; queries run one at a time in FIFO order. While
 * disconnected, pgc_query() fails at once with VN_EDOWN and the client
 * reconnects in the background with backoff. A "SELECT 1" every health
 * interval (when idle) proves the server answers.
 */
#ifndef VN_PG_H
#define VN_PG_H

#include <stdint.h>
#include <uv.h>

#include <libpq-fe.h>

struct pgc_client;

/*
 * Called once per query on the loop. On success err is NULL and res is the
 * query's (last) result. On failure err says why; res is the error result
 * for SQL errors and NULL when the connection was lost or the client closed.
 * res is cleared after the callback returns: copy what you keep.
 */
typedef void (*pgc_result_fn)(struct pgc_client *c, PGresult *res, const char *err, void *ud);

struct pgc_opts {
    const char *conninfo; /* URI or key=value string */
    int64_t health_interval_ms;
    int64_t reconnect_max_ms;
    int64_t connect_timeout_ms;
};

struct pgc_client *pgc_new(uv_loop_t *loop, const struct pgc_opts *opt);

/*
 * Queue a parameterised query (text parameters, text results). Returns 0
 * (cb fires exactly once; a NULL cb only logs failures), VN_EDOWN when not
 * connected, VN_ESTATE when closing.
 */
int pgc_query(struct pgc_client *c, const char *sql, int nparams, const char *const *values,
              pgc_result_fn cb, void *ud);

/*
 * The same for a statement run often: prepared under name (a string that
 * outlives the client, e.g. a literal) the first time on each connection,
 * then run without being parsed and planned again. Same answers as
 * pgc_query; a statement that does not prepare reports its error there.
 */
int pgc_query_prepared(struct pgc_client *c, const char *name, const char *sql, int nparams,
                       const char *const *values, pgc_result_fn cb, void *ud);

int pgc_is_ready(const struct pgc_client *c);
const char *pgc_last_error(const struct pgc_client *c);

/* Fail pending queries, close the connection, free once handles close. */
void pgc_close(struct pgc_client *c);

#endif
