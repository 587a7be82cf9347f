/* devices.h - the device table: (instance, device token) -> last state, O(1) lookup.
 * Holds what the bridge must remember per device: the stale guard's last timestamp, the latest
 * position (for republish after an HA restart / reconnect, and for throttling), flags. Kept
 * compact: this is the memory per tracked device (fixed-size records in a slab, 4-byte chain
 * links and buckets, UUIDs in binary). */
#ifndef T2M_DEVICES_H
#define T2M_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

enum {
    T2M_DEVF_DISCOVERED = 1u << 0, /* HA discovery sent on this MQTT connection */
    T2M_DEVF_HAS_STATE = 1u << 1,  /* a latest position is stored */
    T2M_DEVF_PENDING = 1u << 2,    /* throttled: the stored position awaits publishing */
    T2M_DEVF_IN_WINDOW = 1u << 3,  /* throttled: inside a min_interval window */
    T2M_DEVF_REMOVED = 1u << 4,    /* removed while in the throttle FIFO: skip, then free */
    T2M_DEVF_RESTORED = 1u << 5,   /* known from the read-back only: re-published after it */
    T2M_DEVF_LIVE = 1u << 6,       /* an update arrived for it in this run */
};

enum { T2M_TRIP_NONE = 0, T2M_TRIP_DRIVING, T2M_TRIP_ENDED };
/* start position, max speed known; DUE: the trip started or ended since B/I/D/trip went out */
enum { T2M_TRIPF_START = 1u << 0, T2M_TRIPF_MAX = 1u << 1, T2M_TRIPF_DUE = 1u << 2 };

/* How a token is stored (struct t2m_device.kind, two bits for the device token, two for the
 * track token): a UUID (8-4-4-4-12 hex, its letters all lower case, or all upper case as the
 * platform's track tokens are) as its 16 bytes, anything else as its own NUL-terminated
 * allocation. Either way the token comes back byte for byte. */
enum { T2M_KEY_NONE = 0, T2M_KEY_UUID = 1, T2M_KEY_TEXT = 2, T2M_KEY_UUID_UPPER = 3 };

#define T2M_SEEN_NEVER INT64_MIN

union t2m_key {
    uint8_t uuid[16];
    char *text;
};

#define T2M_DEVICE_TEXT 37 /* a UUID's text and its NUL: the buffer the accessors below take */

/* One record of the table's slab: this is the memory per tracked device (160 bytes, plus 4 of
 * hash bucket). Fields are grouped by size, no padding. */
struct t2m_device {
    union t2m_key token, track; /* read through t2m_device_token / t2m_device_track */
    int64_t last_ts_ms;         /* newest timestamp published; INT64_MIN if none */
    double lat, lon, speed, accuracy, heading;
    int64_t ts_ms;
    int64_t seen_ms; /* monotonic arrival of the last update (or read back); T2M_SEEN_NEVER */
    /* The current (driving) or last (ended) trip, SPEC section 2.2; its end is the last fix. */
    int64_t trip_start_ms, trip_end_ms;
    double trip_start_lat, trip_start_lon;
    double trip_dist_m;
    float trip_max_speed; /* m/s */
    uint32_t trip_updates;
    uint32_t next; /* hash chain: slot + 1, 0 = end (internal) */
    uint16_t instance;
    int16_t zone;       /* index into the configured zones, -1 = none */
    uint16_t token_len; /* length of the token's text (36 for a UUID) */
    uint8_t trip;       /* T2M_TRIP_* */
    uint8_t trip_flags; /* T2M_TRIPF_* */
    uint8_t flags;      /* T2M_DEVF_* */
    uint8_t has;        /* T2M_HAS_* of the stored position */
    uint8_t kind;       /* T2M_KEY_* of the token (bits 0-1) and of the track token (bits 2-3) */
    uint8_t track_len;  /* track tokens are <= 255 bytes when stored, else dropped */
};

/* The device token as text: a text token's own bytes, or a UUID formatted into buf. */
const char *t2m_device_token(const struct t2m_device *d, char buf[T2M_DEVICE_TEXT], size_t *len);
/* The latest track token as text (as above), or NULL with *len 0 when there is none. */
const char *t2m_device_track(const struct t2m_device *d, char buf[T2M_DEVICE_TEXT], size_t *len);
/* Whether the device's track token is these n bytes (false when it has none). */
bool t2m_device_track_is(const struct t2m_device *d, const char *s, size_t n);

struct t2m_devices;

enum t2m_dev_status { T2M_DEV_FOUND = 0, T2M_DEV_CREATED, T2M_DEV_FULL, T2M_DEV_NOMEM };

/* max: upstream.max_devices (creation beyond it fails with T2M_DEV_FULL); 0 = no limit. */
struct t2m_devices *t2m_devices_new(size_t max);
void t2m_devices_free(struct t2m_devices *t);
/* Finds (instance, token); creates it when `create` and there is room. *status says which
 * (status may be NULL). NULL when absent and not created: T2M_DEV_FULL (also for !create, and
 * for an instance or token length beyond 65535), T2M_DEV_NOMEM on allocation
 * failure. A device's address stays valid until it is removed. */
struct t2m_device *t2m_devices_get(struct t2m_devices *t, unsigned instance, const char *token,
                                   size_t len, bool create, enum t2m_dev_status *status);
size_t t2m_devices_count(const struct t2m_devices *t);
/* Calls fn for every device (order unspecified). fn may remove the device it is given, no
 * other, and must not add any. */
void t2m_devices_foreach(struct t2m_devices *t, void (*fn)(struct t2m_device *d, void *user),
                         void *user);
/* Merges u into the device's state as zigbee2mqtt's cache_state does (SPEC section 2.1): every
 * field u carries replaces the stored one, the others stay; latitude and longitude only as a
 * pair; a track token too long to store is ignored. The fix time is u's Timestamp, else
 * fix_ms. Sets HAS_STATE. 0, or -1 on allocation failure (nothing changed). */
int t2m_device_store(struct t2m_device *d, const struct t2m_update *u, int64_t fix_ms);
/* Removes and frees d. */
void t2m_devices_remove(struct t2m_devices *t, struct t2m_device *d);
/* Rebuilds an update from the stored state (tokens, has bits, values, lat/lon text). */
void t2m_device_load(const struct t2m_device *d, struct t2m_update *out);
/* Approximate heap bytes used by the table, for the benchmark. */
size_t t2m_devices_memory(const struct t2m_devices *t);

#endif
