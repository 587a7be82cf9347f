/* devices.h - the device table: (instance, device token) -> last state, O(1) lookup.
 * Holds what the bridge must remember per device: the stale guard's last timestamp, the latest
 * position (for republish after an HA restart / reconnect, and for throttling), flags. Kept
 * compact: this is the memory per tracked device. */
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
};

enum { T2M_TRIP_NONE = 0, T2M_TRIP_DRIVING, T2M_TRIP_ENDED };
enum { T2M_TRIPF_START = 1u << 0, T2M_TRIPF_MAX = 1u << 1 }; /* start position, max speed known */

struct t2m_device {
    struct t2m_device *next;  /* hash chain (internal) */
    struct t2m_device *tnext; /* throttle FIFO (owned by the bridge) */
    int64_t last_ts_ms;       /* newest timestamp published; INT64_MIN if none */
    int64_t window_end_ms;    /* throttle window end (monotonic ms) */
    double lat, lon, speed, accuracy, heading;
    int64_t ts_ms;
    int64_t last_seen_ms; /* wall-clock arrival of the last update (or read back); 0 = never */
    /* The current (driving) or last (ended) trip, SPEC section 2.2; its end is the last fix. */
    int64_t trip_start_ms, trip_end_ms;
    double trip_start_lat, trip_start_lon;
    double trip_dist_m;
    float trip_max_speed; /* m/s */
    uint32_t trip_updates;
    uint8_t trip;       /* T2M_TRIP_* */
    uint8_t trip_flags; /* T2M_TRIPF_* */
    int16_t zone;       /* index into the configured zones, -1 = none */
    char *track;        /* latest track token (own allocation), NULL if none */
    uint32_t hash;
    uint16_t instance;
    uint8_t flags; /* T2M_DEVF_* */
    uint8_t has;   /* T2M_HAS_* of the stored position */
    uint16_t token_len;
    uint8_t track_len; /* track tokens are <= 255 bytes when stored, else dropped */
    char token[];      /* device token bytes, NUL-terminated */
};

struct t2m_devices;

enum t2m_dev_status { T2M_DEV_FOUND = 0, T2M_DEV_CREATED, T2M_DEV_FULL, T2M_DEV_NOMEM };

/* max: upstream.max_devices (creation beyond it fails with T2M_DEV_FULL); 0 = no limit. */
struct t2m_devices *t2m_devices_new(size_t max);
void t2m_devices_free(struct t2m_devices *t);
/* Finds (instance, token); creates it when `create` and there is room. *status says which
 * (status may be NULL). NULL when absent and not created: T2M_DEV_FULL (also for !create, and
 * for an instance or token length beyond 65535), T2M_DEV_NOMEM on allocation failure. */
struct t2m_device *t2m_devices_get(struct t2m_devices *t, unsigned instance, const char *token,
                                   size_t len, bool create, enum t2m_dev_status *status);
size_t t2m_devices_count(const struct t2m_devices *t);
/* Calls fn for every device (order unspecified). fn must not add or remove devices. */
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
