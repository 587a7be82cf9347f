/* discovery.h - pure: Home Assistant MQTT discovery configs (SPEC section 4). */
#ifndef T2M_DISCOVERY_H
#define T2M_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "units.h"

struct t2m_discovery_ctx {
    const char *prefix;     /* homeassistant.discovery_prefix */
    const char *base_topic; /* mqtt.base_topic */
    /* mqtt.bridge_topic (B/bridge, B/bridge/K when sharded); NULL means B/bridge */
    const char *bridge_topic;
    const char *bridge_id; /* mqtt.client_id: the bridge device's identifier */
    const char *version;   /* T2M_VERSION, for origin.sw_version */
    const struct t2m_units *units;
    const char *const *zones; /* configured zone names: a zone sensor when n_zones > 0 */
    size_t n_zones;
    /* homeassistant.discovery = "device": one config per device (P/device/<node>/config);
     * false: one per entity, the form of 0.x */
    bool device_based;
};

/* emit(user, topic, payload, len): one retained config. Return non-zero to stop. */
typedef int (*t2m_emit_fn)(void *user, const char *topic, const char *payload, size_t len);

/* Emits every config of one device (SPEC section 4), the device_tracker first, then sensors for
 * speed, heading, accuracy, fix time, last seen, zone (with zones), trip distance, the driving
 * binary_sensor and the event entity. Unique ids start with this bridge's prefix
 * (t2m_<client id>__), entity ids are suggested with default_entity_id from `name` (the alias,
 * or NULL: the token). Returns 0 or the first non-zero emit result / -1 when a buffer is too
 * small. */
int t2m_discovery_device(const struct t2m_discovery_ctx *c, const char *instance, size_t ilen,
                         const char *token, size_t tlen, const char *name, t2m_emit_fn emit,
                         void *user);

/* Emits the bridge device's configs: per instance a connectivity binary_sensor and a state enum
 * sensor reading B/I/status, then the device-count sensor reading B/bridge/info. */
int t2m_discovery_bridge(const struct t2m_discovery_ctx *c, const char *const *instances, size_t n,
                         t2m_emit_fn emit, void *user);

/* Whether a discovery topic (without the prefix and its '/': <component>/<node>/...) has a
 * node this bridge names: every one is "t2m_..." (a config elsewhere with one of our
 * unique_ids is another integration's, never withdrawn). */
bool t2m_discovery_topic_ours(const char *topic);
/* True when a config's unique_id belongs to this bridge (its prefix t2m_<client id>__): what
 * withdrawal may clear. Another bridge's configs on the same broker never match. */
bool t2m_discovery_ours(const struct t2m_discovery_ctx *c, const char *unique_id, size_t len);

#endif
