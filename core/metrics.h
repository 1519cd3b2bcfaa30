/*
 * metrics.h - Prometheus metrics: counters, gauges and histograms with labels.
 *
 * A registry owns metric families; a family owns its series (one per distinct
 * label-value tuple). Everything here is touched only from the loop thread, so
 * there is no locking: threads report through the loop hand-off instead.
 * Formatting follows the Prometheus text exposition format 0.0.4.
 *
 * Ownership: the registry owns families and series; pointers returned by
 * met_*_get() stay valid until met_registry_free(), so hot paths may cache them.
 */
#ifndef VN_METRICS_H
#define VN_METRICS_H

#include "common.h"

#define MET_MAX_LABELS 4

enum met_type { MET_COUNTER, MET_GAUGE, MET_HISTOGRAM };

struct met_registry;
struct met_family;
struct met_series;

struct met_registry *met_registry_new(void);
void met_registry_free(struct met_registry *r);

/*
 * Declare a family. labels is a comma-separated list of label names ("" or
 * NULL for none, at most MET_MAX_LABELS). For histograms, buckets are the
 * ascending upper bounds (the +Inf bucket is implicit); NULL/0 picks default
 * latency buckets in seconds (0.001 .. 10). Declaring the same name twice
 * returns the existing family when type and labels match, NULL otherwise.
 * Invalid metric or label names return NULL.
 */
struct met_family *met_counter(struct met_registry *r, const char *name, const char *help,
                               const char *labels);
struct met_family *met_gauge(struct met_registry *r, const char *name, const char *help,
                             const char *labels);
struct met_family *met_histogram(struct met_registry *r, const char *name, const char *help,
                                 const char *labels, const double *buckets, size_t nbuckets);

/*
 * The series for these label values (as many as the family has labels),
 * created on first use. Values may hold any bytes; they are escaped on output.
 */
struct met_series *met_get(struct met_family *f, ...);
struct met_series *met_getv(struct met_family *f, const char *const *values);

void met_inc(struct met_series *s);               /* counter or gauge += 1 */
void met_add(struct met_series *s, double v);     /* counter: v >= 0 only */
void met_set(struct met_series *s, double v);     /* gauge */
void met_observe(struct met_series *s, double v); /* histogram */
double met_value(const struct met_series *s);     /* counter/gauge value, histogram sum */
uint64_t met_count(const struct met_series *s);   /* histogram observation count */

/* Append the whole registry in text format, families in declaration order. */
void met_format(const struct met_registry *r, struct vn_buf *out);

#endif
