/* discovery.h - pure: Home Assistant MQTT discovery configs (SPEC section 4). */
#ifndef T2M_DISCOVERY_H
#define T2M_DISCOVERY_H

#include <stddef.h>

#include "units.h"

struct t2m_discovery_ctx {
    const char *prefix;     /* homeassistant.discovery_prefix */
    const char *base_topic; /* mqtt.base_topic */
    const char *bridge_id;  /* mqtt.client_id: the bridge device's identifier */
    const char *version;    /* T2M_VERSION, for origin.sw_version */
    const struct t2m_units *units;
};

/* emit(user, topic, payload, len): one retained config. Return non-zero to stop. */
typedef int (*t2m_emit_fn)(void *user, const char *topic, const char *payload, size_t len);

/* Emits every config of one device: the device_tracker first, then the speed, heading, accuracy
 * and (ISO timestamps only) timestamp sensors. `name` = alias or NULL (then the token).
 * Returns 0 or the first non-zero emit result / -1 when a buffer is too small. */
int t2m_discovery_device(const struct t2m_discovery_ctx *c, const char *instance, size_t ilen,
                         const char *token, size_t tlen, const char *name, t2m_emit_fn emit,
                         void *user);

/* Emits the bridge device's configs: one connectivity binary_sensor per instance, reading
 * B/I/status. */
int t2m_discovery_bridge(const struct t2m_discovery_ctx *c, const char *const *instances, size_t n,
                         t2m_emit_fn emit, void *user);

#endif
