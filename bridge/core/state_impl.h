/* state_impl.h - what the state core's files share, and nothing outside them includes: the
 * state itself and the helpers each concern offers the others.
 *   state.c          merging updates, the tick's time-outs and expiry, removal, requests, life
 * cycle state_out.c      rendering: topics, the state payloads, events, discovery, the device list
 *   state_trips.c    trips (start, end, time-out) and zones (enter, leave, OwnTracks transitions)
 *   state_throttle.c min_interval's windows: the leading edge now, the latest state at the end
 *   state_readback.c the retained state read back, the migration and the withdrawal (SPEC 2.1, 4)
 * Deadlines are monotonic (st->now.mono), what is published is wall time (st->now.wall). */
#ifndef T2M_STATE_IMPL_H
#define T2M_STATE_IMPL_H

#include "state.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "discovery.h"
#include "log.h"
#include "out.h"
#include "owntracks.h"
#include "payload.h"
#include "topics.h"
#include "trip.h"

#define SCAN_MS 1000 /* trip timeouts and expiry are checked this often */
#define EVENT_MAX (2 * T2M_PAYLOAD_MAX)
#define EVICT_BATCH 256         /* read-back-only devices found per scan of a full table */
#define TRIP_DISTANCE_MAX 1.0e9 /* m: a read-back trip longer than a million km is not one */
#define TRIP_DURATION_MAX 3.2e7 /* s: nor one longer than a year */
/* attribute topics a re-send covers: all */
#define ATTR_ALL ((1u << T2M_ATTR_COUNT) - 1u)

/* A device/rename alias (rare: a list is enough). */
struct rename {
    unsigned inst;
    char *token;
    size_t len;
    char *name;
};

/* An open throttle window (min_interval): only devices inside one have an entry. */
struct window {
    struct t2m_device *d;
    int64_t end_ms;
};

struct t2m_state {
    struct t2m_now now; /* both clocks of the call being served */
    /* wall - mono as first read, and again after a step (t2m_st_set_now): the one offset that
     * turns a monotonic arrival into the last_seen published, so that a re-send renders the
     * same text (the two clocks read apart jitter by a millisecond). */
    int64_t wall_off;
    bool have_off;
    const struct t2m_config *cfg;
    const struct t2m_units *units;
    struct t2m_stats *stats;
    t2m_action_fn fn;
    void *user;
    struct t2m_devices *devices;
    char (*iseg)[T2M_SEG_MAX]; /* instance ids as topic segments */
    const char **zone_names;   /* the configured zones' names, for the zone sensor */
    struct t2m_discovery_ctx disc;
    bool connected;
    struct window *thr; /* throttle windows in deadline order: a ring, thr_n from thr_head */
    size_t thr_head, thr_n, thr_cap; /* thr_cap: 0 or a power of two */
    int64_t next_scan_ms;            /* INT64_MAX: nothing to scan for */
    struct t2m_repeat rep_topic, rep_full, rep_skew, rep_evict;
    /* A full table gives way to live devices: devices known only from the read-back are
     * forgotten, found EVICT_BATCH at a time (cleared whenever a device is freed, so the
     * pointers stay valid); evict_scan: a scan may find some (a read-back added devices). */
    struct t2m_device *evict[EVICT_BATCH];
    size_t n_evict;
    bool evict_scan;
    struct rename *renames;
    size_t n_renames;
    char **seen_configs; /* read back: discovery configs of this bridge, for the withdrawal */
    size_t n_seen, cap_seen;
    int64_t started_s; /* OwnTracks transitions' wtst */
    char topic[T2M_TOPIC_MAX + 1];
    char payload[T2M_PAYLOAD_MAX];
    char tripbuf[T2M_PAYLOAD_MAX]; /* the trip object, rendered once for state and trip topic */
    char event[EVENT_MAX];
    bool hold_discovery; /* until the read-back is done: configs of the other form migrate first */
    /* attribute topics the next publish_state sends (bit per enum t2m_attr): those whose value
     * changed with the update being merged, else all */
    unsigned attr_mask;
};

/* ---- what the files offer each other (t2m_st_: internal to the state core) ---- */

void t2m_st_act(struct t2m_state *st, enum t2m_action_kind k, const char *topic,
                const char *payload, size_t len, int qos, bool retain, bool urgent);
void t2m_st_view_removed(struct t2m_state *st, const struct t2m_device *d);
bool t2m_st_token_segment(const struct t2m_device *d, char *dseg);
bool t2m_st_device_topic(struct t2m_state *st, const struct t2m_device *d, const char *suffix);
const char *t2m_st_alias_of(const struct t2m_state *st, const struct t2m_device *d);
void t2m_st_trip_of(const struct t2m_device *d, struct t2m_trip *t, char *buf);
void t2m_st_discovery(struct t2m_state *st, struct t2m_device *d, bool clear);
void t2m_st_publish_state_as(struct t2m_state *st, struct t2m_device *d, int64_t now_ms, bool all);
void t2m_st_publish_state(struct t2m_state *st, struct t2m_device *d, int64_t now_ms);
void t2m_st_event(struct t2m_state *st, struct t2m_device *d, const char *name, int64_t time_ms,
                  const char *rest);
void t2m_st_position_fragment(const struct t2m_device *d, char *buf, size_t n);
void t2m_st_arm_scan(struct t2m_state *st);
void t2m_st_trip_end(struct t2m_state *st, struct t2m_device *d, int64_t time_ms);
void t2m_st_trip_start(struct t2m_state *st, struct t2m_device *d, int64_t fix_ms);
void t2m_st_trip_started_event(struct t2m_state *st, struct t2m_device *d);
void t2m_st_zones_update(struct t2m_state *st, struct t2m_device *d, const struct t2m_update *u,
                         int *left, int *entered);
void t2m_st_zone_event(struct t2m_state *st, struct t2m_device *d, const char *name, int zone,
                       int64_t fix_ms);
void t2m_st_publish_or_hold(struct t2m_state *st, struct t2m_device *d, int64_t now_ms);
void t2m_st_throttle_due(struct t2m_state *st);
void t2m_st_free_device(struct t2m_state *st, struct t2m_device *d);
/* Every entry point starts here: the clocks of the call. */
void t2m_st_set_now(struct t2m_state *st, struct t2m_now now);
/* A monotonic time as the wall clock reads it (last_seen), and back. */
int64_t t2m_st_wall_of(const struct t2m_state *st, int64_t mono_ms);
int64_t t2m_st_mono_of(const struct t2m_state *st, int64_t wall_ms);
/* A time more than state.max_clock_skew ahead of the wall clock (SPEC 2.1): not trusted. */
bool t2m_st_ahead(const struct t2m_state *st, int64_t t_ms);
/* Counts and (once a minute) says one: "N <what> more than ... ahead of this clock: <outcome>". */
void t2m_st_untrusted(struct t2m_state *st, const char *what, const char *outcome);
struct t2m_device *t2m_st_device(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                                 bool live);
int t2m_st_set_rename(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                      const char *name);

#endif
