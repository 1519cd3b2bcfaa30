/*
 * fsm_date.h - time zones and the date/time phrases flows accept.
 *
 * A struct fsm_tz is a POSIX TZ rule ("MSK-3", "CET-1CEST,M3.5.0,M10.5.0/3"),
 * which is what a tz database file ends with: it gives the correct offset,
 * daylight saving included, for every date from the zone's last rule change
 * on, which is what reminders need (they are about now and the future).
 * fsm_tz_load() reads that rule from /usr/share/zoneinfo (I/O: call it when
 * loading, and cache the result); everything else here is pure.
 *
 * fsm_parse_datetime() reads what people type when asked "when?", in English
 * and Russian ("2026-12-01 09:00", "tomorrow 9:00", "завтра в 9", "in 2 hours",
 * "через 2 часа", "fri 18:30", "1 декабря 10:00"); docs/flows.md lists the
 * accepted forms.
 */
#ifndef VN_FSM_DATE_H
#define VN_FSM_DATE_H

#include <stddef.h>
#include <stdint.h>

struct fsm_tz;

/* Parse a POSIX TZ string. NULL with a message in err on a bad string. */
struct fsm_tz *fsm_tz_parse(const char *posix, char *err, size_t errlen);

/*
 * A zone by name: "UTC", a fixed offset ("+03:00", "UTC+3", "GMT-5"), or an
 * IANA name ("Europe/Moscow") whose rule is read from zoneinfo_dir (NULL =
 * /usr/share/zoneinfo). NULL with a message in err when it cannot be had.
 */
struct fsm_tz *fsm_tz_load(const char *name, const char *zoneinfo_dir, char *err, size_t errlen);
void fsm_tz_free(struct fsm_tz *tz); /* NULL is a no-op */
/* The name given to fsm_tz_load, or the POSIX string; "UTC" for NULL. */
const char *fsm_tz_name(const struct fsm_tz *tz);

/* Offset from UTC (seconds east) in effect at utc_s; tz NULL = UTC. */
int fsm_tz_offset(const struct fsm_tz *tz, int64_t utc_s);

/*
 * The UTC instant of a local wall-clock time (local_s: seconds since
 * 1970-01-01 00:00 local). A time skipped by a spring-forward gap is read
 * with the offset before the gap (02:30 becomes 03:30, as mktime does); a time
 * that occurs twice in the autumn is the first of the two.
 */
int64_t fsm_tz_local_to_utc(const struct fsm_tz *tz, int64_t local_s);

/* Days since 1970-01-01 for a proleptic Gregorian date, and back. */
int64_t fsm_days_from_civil(int64_t y, int m, int d);
void fsm_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/*
 * Read a date/time phrase relative to now (ms) in time zone tz (NULL = UTC).
 * Returns 0 with the UTC instant (seconds) in *out, or VN_EINVAL.
 */
int fsm_parse_datetime(const char *text, int64_t now_ms, const struct fsm_tz *tz, int64_t *out);

/* "2026-12-01T09:00:00+03:00" (RFC 3339, the zone's offset at that instant);
   buf needs 32 bytes. */
void fsm_format_rfc3339(int64_t utc_s, const struct fsm_tz *tz, char *buf, size_t len);

#endif
