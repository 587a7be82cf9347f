/* sim_track.h - telematics-sim's pure part: seeded PRNG, uuid-like tokens, device driving model,
 * and the JSON text of the messages it sends. No I/O, no clock: callers pass the time in. */
#ifndef SIM_TRACK_H
#define SIM_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64: tiny, fast, and a bijection of its state, so seed ^ counter gives distinct values. */
struct sim_rng {
    uint64_t s;
};

void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, 1). */
double sim_rng_unit(struct sim_rng *r);
/* Uniform in [lo, hi). */
double sim_rng_range(struct sim_rng *r, double lo, double hi);

/* Writes a uuid-like 36-char token ("8-4-4-4-12" hex) plus NUL into out; upper or lower case. */
void sim_uuid(struct sim_rng *r, bool upper, char out[37]);

/* One simulated vehicle. It drives a street-like path around its city: straight segments of
 * 80-600 m joined by smooth turns, stops at lights, smooth acceleration, and a geofence that
 * turns it back toward the centre. A trip ends after 10-40 minutes; the next one gets a new
 * track_token and starts from where the last one ended. */
struct sim_device {
    char token[37];       /* device token, lower case, fixed by seed and index */
    char track_token[37]; /* upper case, new per trip */
    struct sim_rng rng;
    double center_lat, center_lon;
    double lat, lon;       /* degrees */
    double speed;          /* m/s, 0..35 */
    double heading;        /* degrees, [0, 360) */
    double accuracy;       /* m, 3..20 */
    double target_speed;   /* m/s the driver aims for */
    double target_heading; /* degrees */
    double stop_left;      /* s still to wait at a light once stopped */
    double seg_left;       /* m to the next intersection */
    double trip_left;      /* s until this trip ends */
    double trip_s;         /* trip length: trip_s..2*trip_s s; 0 = the default 600..2400 s */
    double park_s;         /* parked park_s..2*park_s s between trips (no updates); 0 = never */
    double park_left;      /* s still parked; > 0: parked, nothing to report */
    int64_t last_us;       /* monotonic time of the last advance; 0 = never */
    uint64_t trips;
};

/* Initialises device `index` deterministically from `seed`. */
void sim_device_init(struct sim_device *d, uint64_t seed, unsigned index);

/* Moves the device forward by dt seconds (any size; integrated in steps of at most 1 s). */
void sim_device_advance(struct sim_device *d, double dt);

/* True while the device is parked between two trips: it sends nothing then. */
bool sim_device_parked(const struct sim_device *d);

/* Advances the device to monotonic time now_us (the first call only records the time). */
void sim_device_advance_to(struct sim_device *d, int64_t now_us);

/* Formats v with at most `decimals` decimals, trailing zeros dropped but one kept ("5.0"),
 * never "-0.0". Returns the length written (out must hold 32 bytes). */
int sim_fmt_num(char *out, double v, int decimals);

/* Escapes s (len bytes) as JSON string content (without quotes) into out (cap bytes, NUL
 * terminated). Bytes >= 0x80 pass through untouched. Returns the length, or -1 if too small. */
int sim_json_escape(char *out, size_t cap, const char *s, size_t len);

/* Renders the SPEC section 1 device_update for d with the given device token (NULL = d->token)
 * and Timestamp value. Returns the length, or -1 if cap is too small. */
int sim_render_update(char *out, size_t cap, const struct sim_device *d, const char *token,
                      long long timestamp);

/* Number of partial update kinds sim_render_partial rotates through. */
#define SIM_PARTIAL_KINDS 4

/* A device_update that lacks fields, as real feeds do now and then: kind 0 no Speed and
 * Heading, 1 no Accuracy, 2 only Speed and Timestamp (no coordinates), 3 no Timestamp. */
int sim_render_partial(char *out, size_t cap, const struct sim_device *d, const char *token,
                       long long timestamp, unsigned kind);

/* Number of junk kinds sim_render_junk rotates through. */
#define SIM_JUNK_KINDS 10

/* Renders junk kind `kind` (0..SIM_JUNK_KINDS-1) into a malloc'd buffer with `pre` spare bytes
 * in front (for LWS_PRE). Sets *len and *binary (frame type to send it as). Returns NULL on OOM.
 * `sample` is a valid update used for the truncated kind. */
unsigned char *sim_render_junk(unsigned kind, size_t pre, const char *sample, size_t *len,
                               bool *binary, struct sim_rng *r);

/* Name of a junk kind, for logs and the README. */
const char *sim_junk_name(unsigned kind);

/* Number of hostile device tokens sim_bad_token rotates through. */
#define SIM_BAD_TOKENS 11

/* Hostile device token number i (0..SIM_BAD_TOKENS-1): "a/b", "+", "#", "$SYS", "../x", spaces,
 * non-ASCII, 300 chars, "" ... */
const char *sim_bad_token(unsigned i);

#endif
