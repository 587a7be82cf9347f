/* state.h - pure: the device state core (SPEC sections 2.1 and 2.2). Every decision between an
 * update and the MQTT messages it causes: merged state, stale guard, throttle with trailing
 * edge, trips, zones, events, expiry, max_devices, discovery before the first position, and the
 * read-back of the bridge's own retained state after a restart.
 *
 * No lws, no socket, no clock of its own: inputs carry the time (wall-clock Unix ms), outputs
 * are actions handed to a callback in the order they are to be carried out. The caller asks
 * t2m_state_next_deadline() after each input and calls t2m_state_tick() when it is reached. */
#ifndef T2M_STATE_H
#define T2M_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "protocol.h"
#include "stats.h"
#include "topics.h"

struct t2m_discovery_ctx;

enum t2m_action_kind {
    T2M_ACT_PUBLISH, /* topic, payload, qos, retain */
    T2M_ACT_CLEAR,   /* an empty retained message on topic: forget what the broker holds */
    /* For the status page (SPEC 7), nothing to publish (topic NULL): */
    T2M_ACT_VIEW_DEVICE,  /* payload: a device's state as on B/I/D/position, when published */
    T2M_ACT_VIEW_REMOVED, /* payload: {"instance_id":..,"device_token":..} of a device gone */
};

struct t2m_action {
    enum t2m_action_kind kind;
    const char *topic;
    const char *payload; /* not NUL-terminated necessarily: len bytes */
    size_t len;
    int qos;
    bool retain;
    bool urgent; /* ahead of queued messages (discovery before the positions it describes) */
};

/* Valid only during the call: copy what you keep. */
typedef void (*t2m_action_fn)(void *user, const struct t2m_action *a);

struct t2m_state;

/* The two clocks of a call, in milliseconds, never mixed (DESIGN): `wall` for what is published
 * (event times, last_seen, OwnTracks) and for ordering fixes (the skew check), `mono` (any
 * origin, never steps) for every deadline: throttle windows, trip time-outs, expiry and the
 * per-message warnings' summary. A step of the wall clock therefore removes no device, ends no
 * trip and holds no position back (SPEC 2.1). */
struct t2m_now {
    int64_t wall, mono;
};
/* The two clocks this much further apart than at the last reading: the wall clock stepped (two
 * readings jitter by a millisecond; NTP's slewing moves both alike). */
#define T2M_CLOCK_STEP_MS 1000

/* cfg must outlive the state. stats: counters the core bumps (drops by reason). version: for
 * the discovery origin. NULL on allocation failure or an instance id that is no topic segment. */
struct t2m_state *t2m_state_new(const struct t2m_config *cfg, struct t2m_stats *stats,
                                const char *version, t2m_action_fn fn, void *user);
void t2m_state_free(struct t2m_state *st);

/* One device_update of instance `inst`, arrived now. */
void t2m_state_update(struct t2m_state *st, unsigned inst, const struct t2m_update *u,
                      struct t2m_now now);
/* The earliest monotonic time t2m_state_tick has something to do, or INT64_MAX. */
int64_t t2m_state_next_deadline(const struct t2m_state *st);
/* Deadlines reached: throttle windows end (their latest state goes out), trips time out,
 * silent devices expire. */
void t2m_state_tick(struct t2m_state *st, struct t2m_now now);

/* The broker connection came (true) or went (false). On connect, every device's discovery and
 * latest state are re-sent, configs first (SPEC section 8). */
void t2m_state_connected(struct t2m_state *st, bool connected, struct t2m_now now);
/* Home Assistant came back online: discovery and states again. */
void t2m_state_republish(struct t2m_state *st, struct t2m_now now);

/* The topics to subscribe to for the read-back (SPEC sections 2.1 and 4): B/+/+/position,
 * B/+/+/trip, P/+/+/+/config (one config per entity) and P/device/+/config (one per device).
 * Returns their number, T2M_READBACK_TOPICS, or 0 when they do not fit. */
#define T2M_READBACK_TOPICS 4
size_t t2m_state_readback_topics(const struct t2m_state *st, char topics[][T2M_TOPIC_MAX + 1]);
/* With `hold`, discovery configs wait for the read-back's end (t2m_state_readback_done):
 * configs of the other form are migrated first (SPEC 4). */
void t2m_state_hold_discovery(struct t2m_state *st, bool hold);
/* The discovery context (prefix, ids, units, form) the bridge's own configs use too. */
const struct t2m_discovery_ctx *t2m_state_discovery(const struct t2m_state *st);
/* A retained message read back from the broker. Positions and trips of this bridge's instances
 * restore the merged state, the stale guard and an open trip; a message older than what the
 * core already holds only fills fields it lacks. Discovery configs whose unique_id is this
 * bridge's are remembered for the withdrawal. Returns true when the topic was one of those. */
bool t2m_state_retained(struct t2m_state *st, const char *topic, const void *payload, size_t len,
                        struct t2m_now now);
/* The read-back is over: configs of the other form are migrated, held discovery goes out, and
 * devices known from the read-back alone go out again as the present configuration renders
 * them. The discovery configs it found stay remembered for t2m_state_withdraw. */
void t2m_state_readback_done(struct t2m_state *st, struct t2m_now now);
/* With `apply`, every remembered discovery config the present configuration would not publish
 * (a removed device, a sensor turned off, Home Assistant turned off) is cleared (SPEC section
 * 4); either way the remembered set is forgotten. The caller applies it only after a read-back
 * that ended on its marker (nothing was missed) on a connection that then stayed up, with no
 * other client on the same client id (SPEC section 8); otherwise it forgets. Returns how many
 * configs were cleared. */
size_t t2m_state_withdraw(struct t2m_state *st, bool apply);

/* Requests (SPEC section 2.3). The instance by its id: its index, or -1. */
int t2m_state_instance(const struct t2m_state *st, const char *id);
/* device/remove: every retained topic of the device cleared, device_removed (reason request),
 * the device forgotten. -1 when the bridge does not know it. */
int t2m_state_remove(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                     struct t2m_now now);
/* device/rename: the alias for this run (the config file's wins at the next start); discovery
 * and the state are re-published with it. -1 unknown device or out of memory. */
int t2m_state_rename(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                     const char *name, struct t2m_now now);
/* devices: a JSON array of every device's state (inst < 0: all instances) into buf. Returns the
 * length, or 0 when it does not fit. */
size_t t2m_state_render_devices(const struct t2m_state *st, int inst, char *buf, size_t n);

size_t t2m_state_count(const struct t2m_state *st);

#endif
