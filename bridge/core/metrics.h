/* metrics.h - pure: the Prometheus text of /metrics (SPEC section 7). */
#ifndef T2M_METRICS_H
#define T2M_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct t2m_metrics_instance {
    const char *id;
    int state; /* 0 connecting, 1 authenticating, 2 subscribed, 3 reconnecting, 4 auth_failed */
    int64_t token_expiry; /* the access token's exp claim, Unix seconds; 0: none (left out) */
};

struct t2m_metrics_snapshot {
    const struct t2m_stats *stats;
    bool mqtt_connected;
    size_t offline_queue_depth;
    size_t devices;
    const struct t2m_metrics_instance *instances;
    size_t n_instances;
    const char *broker_node; /* "host:port" of the MQTT node in use (SPEC 9); NULL: left out */
};

/* Renders t2m_updates_received_total, t2m_messages_published_total,
 * t2m_updates_dropped_total{reason} (every reason, zeros too), t2m_upstream_reconnects_total,
 * t2m_mqtt_connected, t2m_upstream_state{instance} (the state number, with HELP naming them),
 * t2m_token_expiry_timestamp_seconds{instance} (instances whose token has an exp),
 * t2m_offline_queue_depth, t2m_devices, t2m_fields_rejected_total, t2m_mqtt_broker_node{node}
 * (1 for the node in use, when given); HELP and TYPE for each; label
 * values escaped. Returns length or 0 if n is too small. */
size_t t2m_metrics_render(char *buf, size_t n, const struct t2m_metrics_snapshot *s);

#endif
