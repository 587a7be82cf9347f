/* payload.h - pure: an update -> the bytes of the position payload, attribute values and the
 * instance status payload (SPEC section 2). Renders straight into caller buffers. */
#ifndef T2M_PAYLOAD_H
#define T2M_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"
#include "units.h"

/* Always enough for one position payload: three 256-byte tokens escaped as \u00XX (3 x 1538)
 * plus every number at its longest (about 1300) is about 5.9 KiB. */
#define T2M_PAYLOAD_MAX 16384

/* {"instance_id":..,"device_token":..,"track_token":..,"latitude":..,"longitude":..,"speed":..,
 *  "speed_unit":..,"accuracy":..,"accuracy_unit":..,"gps_accuracy":..,"heading":..,"timestamp":..}
 * in this order; absent fields left out (speed_unit only with speed, accuracy_unit and
 * gps_accuracy only with accuracy). Returns length or 0 if it does not fit. */
size_t t2m_payload_position(char *buf, size_t n, const char *instance_id, size_t instance_len,
                            const struct t2m_update *u, const struct t2m_units *units);

/* What the device state adds to an update (SPEC section 2.1). */
struct t2m_state_extra {
    const char *name;     /* the alias, or NULL */
    int64_t last_seen_ms; /* when the bridge last received an update; 0 = unknown */
    int driving;          /* 1 / 0, -1 = unknown (left out) */
    const char *zone;     /* the zone the device is in, or NULL */
    const char *trip;     /* the device's trip as JSON (t2m_payload_trip), or NULL */
    size_t trip_len;
};

/* The device state: the position payload with "name" after device_token, and "last_seen",
 * "driving", "trip" (the live trip object, SPEC 2.1: one message per update carries it) and
 * "zone" at the end (each left out when unknown). x NULL = t2m_payload_position. */
size_t t2m_payload_state(char *buf, size_t n, const char *instance_id, size_t instance_len,
                         const struct t2m_update *u, const struct t2m_state_extra *x,
                         const struct t2m_units *units);

enum t2m_attr {
    T2M_ATTR_LATITUDE = 0,
    T2M_ATTR_LONGITUDE,
    T2M_ATTR_SPEED,
    T2M_ATTR_ACCURACY,
    T2M_ATTR_HEADING,
    T2M_ATTR_TIMESTAMP,
    T2M_ATTR_TRACK_TOKEN,
    T2M_ATTR_LAST_SEEN, /* from t2m_state_extra */
    T2M_ATTR_DRIVING,   /* from t2m_state_extra: "true" / "false" */
    T2M_ATTR_COUNT
};

/* "latitude", "longitude", "speed", "accuracy", "heading", "timestamp", "track_token",
 * "last_seen", "driving" */
const char *t2m_payload_attr_name(enum t2m_attr a);

/* The plain value of one attribute (same text and units as in the position payload, strings
 * unquoted), the state's extra fields (last_seen, driving) from x (may be NULL). Returns length,
 * or 0 when the field is absent. */
size_t t2m_payload_state_attribute(char *buf, size_t n, enum t2m_attr a, const struct t2m_update *u,
                                   const struct t2m_state_extra *x, const struct t2m_units *units);

/* {"state":"subscribed","since":<ts>,"connection_id":"..","error":{"code":401,"message":".."},
 * "token_expires":<ts>} connection_id omitted when NULL/"", error omitted when code == 0,
 * token_expires (the access token's exp claim, SPEC 7) when token_expires_ms <= 0. Times
 * formatted with units->timestamp. */
size_t t2m_payload_status(char *buf, size_t n, const char *state, int64_t since_ms,
                          const char *connection_id, int error_code, const char *error_message,
                          int64_t token_expires_ms, const struct t2m_units *units);

/* B/bridge/info (SPEC section 2): {"version":..,"started":..,"instances":[{"id":..,"state":..}],
 * "devices":N,"config":<config_json>}. `started` in units->timestamp; config_json NULL = {}.
 * Returns length or 0 if it does not fit. */
size_t t2m_payload_info(char *buf, size_t n, const char *version, int64_t started_ms,
                        const char *const *ids, const char *const *states, size_t n_inst,
                        size_t devices, const char *config_json, const struct t2m_units *units);

/* GET /healthz (SPEC section 7): {"status":"ok"|"error",["reason":R,]"mqtt":"connected"|
 * "disconnected",["broker":NODE,]"devices":N,"instances":{ID:STATE,...}} and a newline. reason
 * NULL = healthy; broker (the node in use, "host:port") NULL or "" = left out. 0 when it does
 * not fit. */
size_t t2m_payload_healthz(char *buf, size_t n, const char *reason, bool mqtt_connected,
                           const char *broker, size_t devices, const char *const *ids,
                           const char *const *states, size_t n_inst);

#endif
