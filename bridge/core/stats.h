/* stats.h - the counters behind /metrics. Owned by the loop; plain integers, no locking. */
#ifndef T2M_STATS_H
#define T2M_STATS_H

#include <stdint.h>

enum t2m_drop_reason {
    T2M_DROP_INVALID_JSON = 0, /* not JSON, too deep, bad UTF-8 */
    T2M_DROP_TOO_LARGE,        /* message over upstream.max_message_size */
    T2M_DROP_INVALID_TOKEN,    /* device or instance token empty / too long */
    T2M_DROP_STALE,            /* older than the last position published for the device */
    T2M_DROP_MAX_DEVICES,      /* a new device beyond upstream.max_devices */
    T2M_DROP_OFFLINE_QUEUE,    /* an older queued update pushed out of mqtt.offline_queue */
    T2M_DROP_UNAUTHENTICATED,  /* a device_update before `authenticated` */
    T2M_DROP_BROKER_TOO_LARGE, /* a message over the broker's Maximum Packet Size: never sent */
    T2M_DROP_BROKER_REFUSED,   /* a message the broker refused (PUBACK reason code >= 0x80) */
    T2M_DROP_REMOVED,          /* an update for a device removed moments ago (device/remove or
                                * expiry inside its mqtt.min_interval window, until it closes) */
    T2M_DROP_COUNT
};

struct t2m_stats {
    uint64_t updates_received;   /* device_update messages parsed */
    uint64_t messages_published; /* MQTT messages confirmed written (QoS 0) or acked (QoS 1) */
    uint64_t dropped[T2M_DROP_COUNT];
    uint64_t fields_rejected; /* single fields ignored: NaN, out of range, wrong type */
    uint64_t upstream_reconnects;
    uint64_t mqtt_skipped; /* packets from the broker over T2M_MQTT_IN_MAX, skipped */
};

/* "invalid_json", "too_large", "invalid_token", "stale", "max_devices", "offline_queue",
 * "unauthenticated", "broker_too_large", "broker_refused" */
const char *t2m_drop_reason_name(enum t2m_drop_reason r);

#endif
