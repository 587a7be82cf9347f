/* units.h - pure unit conversion and timestamp formatting (SPEC section 3). */
#ifndef T2M_UNITS_H
#define T2M_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum t2m_speed_unit { T2M_SPEED_MS = 0, T2M_SPEED_KMH, T2M_SPEED_MPH, T2M_SPEED_KN };
enum t2m_dist_unit { T2M_DIST_M = 0, T2M_DIST_FT };
enum t2m_ts_format { T2M_TS_ISO = 0, T2M_TS_UNIX, T2M_TS_UNIX_MS };

/* A validated IANA time zone. Opaque; `name` is kept for messages. */
struct t2m_tz;

/* The effective output units, resolved from units.system plus the overrides. */
struct t2m_units {
    enum t2m_speed_unit speed;
    enum t2m_dist_unit distance;
    enum t2m_ts_format timestamp;
    int precision; /* decimals for speed and accuracy, 0..9 */
    const struct t2m_tz *tz;
};

/* m/s -> unit. km/h = x3.6, mph = x2.236936, kn = x1.943844. */
double t2m_units_speed(double mps, enum t2m_speed_unit unit);
/* m -> unit. ft = x3.28084. */
double t2m_units_distance(double m, enum t2m_dist_unit unit);
/* "m/s", "km/h", "mph", "kn" / "m", "ft" / "iso", "unix", "unix_ms". */
const char *t2m_units_speed_name(enum t2m_speed_unit unit);
const char *t2m_units_distance_name(enum t2m_dist_unit unit);
const char *t2m_units_ts_name(enum t2m_ts_format f);
/* Parse those names back; return 0 or -1 for an unknown name. */
int t2m_units_parse_speed(const char *s, enum t2m_speed_unit *out);
/* The names the parsers take, in enum order, NULL-terminated (units.system: metric, imperial). */
extern const char *const t2m_units_speed_names[];
extern const char *const t2m_units_dist_names[];
extern const char *const t2m_units_ts_names[];
extern const char *const t2m_units_system_names[];
int t2m_units_parse_distance(const char *s, enum t2m_dist_unit *out);
int t2m_units_parse_ts(const char *s, enum t2m_ts_format *out);
/* "metric" -> km/h + m, "imperial" -> mph + ft. 0 or -1. */
int t2m_units_parse_system(const char *s, enum t2m_speed_unit *speed, enum t2m_dist_unit *dist);

/* A zone from its TZif file's bytes (io/files.c's t2m_tz_load reads them from the system tz
 * database); "UTC" needs none. NULL when the name is unsafe (absolute, "..", odd bytes) or the
 * bytes are not TZif. Free with t2m_tz_free. */
struct t2m_tz *t2m_tz_parse(const char *name, const unsigned char *tzif, size_t len);
/* A zone name that is safe as a path under the tz database. */
bool t2m_tz_name_ok(const char *name);
void t2m_tz_free(struct t2m_tz *tz);
const char *t2m_tz_name(const struct t2m_tz *tz);
/* The zone's UTC offset (seconds east) at Unix time sec, from its TZif data alone: no TZ
 * variable, no process state (NULL: UTC). */
long t2m_tz_offset(const struct t2m_tz *tz, int64_t sec);

/* Formats Unix milliseconds. ISO: "2021-12-31T19:00:00-05:00", "Z" for a zero offset, no
 * fraction unless ts_ms has one (then ".123"); unix: integer seconds (floor); unix_ms: integer.
 * tz NULL means UTC. Returns the length written (NUL-terminated), or 0 if it does not fit. */
size_t t2m_units_format_ts(char *buf, size_t n, int64_t ts_ms, enum t2m_ts_format f,
                           const struct t2m_tz *tz);

/* 10^0 .. 10^22: every one an exact double. */
extern const double t2m_pow10[23];

/* Rounds to `precision` decimals and prints the shortest form ("28.26", "5", "-0" never: "0").
 * Returns the length, 0 if it does not fit. */
size_t t2m_units_format_fixed(char *buf, size_t n, double v, int precision);

/* Shortest decimal text that parses back to exactly v ("40.7128", "-74.006", "1e-07").
 * Returns the length, 0 if it does not fit. */
size_t t2m_units_format_shortest(char *buf, size_t n, double v);

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (H. Hinnant's algorithm; m 1..12,
 * d 1..31, any y), and whether y is a leap year: the one calendar of the bridge. */
int64_t t2m_days_from_civil(int64_t y, unsigned m, unsigned d);
bool t2m_leap_year(int64_t y);

#endif
