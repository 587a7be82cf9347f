/* publisher.h - everything between "the bridge wants this published" and mqtt.h, written once
 * for every backend: a window of messages in flight, the offline queue, coalescing of retained
 * topics, re-sending what a lost connection did not confirm, back-pressure signals.
 *
 * Queue model (SPEC section 8): for each retained topic the newest queued message is "latest"
 * and is never dropped; older queued messages are "history", kept in order up to offline_queue,
 * the oldest dropped first (counted as offline_queue drops). On drain, history goes first, then
 * the latest messages, so each topic's messages stay in order and the broker ends up with the
 * newest. Non-retained messages count as history. */
#ifndef T2M_PUBLISHER_H
#define T2M_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"
#include "stats.h"

struct t2m_publisher;

struct t2m_publisher_options {
    size_t offline_queue; /* history bound (mqtt.offline_queue) */
    size_t window;        /* messages handed to mqtt.h and not yet delivered, at most */
    size_t high_water;    /* queued messages at which `congested` turns true */
    size_t low_water;     /* ... and back to false (the resume callback fires) */
    /* The clock for t2m_publisher_stalled_ms (monotonic milliseconds); NULL: never stalled. */
    int64_t (*now_ms)(void);
};

/* on_resume(user): called when congestion ends, to resume the upstream (lws_rx_flow_control). */
struct t2m_publisher *t2m_publisher_new(struct t2m_mqtt *mqtt,
                                        const struct t2m_publisher_options *opt,
                                        struct t2m_stats *stats, void (*on_resume)(void *user),
                                        void *user);
void t2m_publisher_free(struct t2m_publisher *p);

/* Publishes or queues. Copies topic and payload. Returns 0, or -1 on allocation failure. */
int t2m_publisher_publish(struct t2m_publisher *p, const char *topic, const void *payload,
                          size_t len, int qos, bool retain);
/* Sends now, ahead of the queue (bridge state, discovery on reconnect). Not coalesced, not
 * counted against the window. Returns a T2M_MQTT_* code. */
int t2m_publisher_publish_urgent(struct t2m_publisher *p, const char *topic, const void *payload,
                                 size_t len, int qos, bool retain);

/* The broker's Receive Maximum (0: none): the window never exceeds it (SPEC section 8). */
void t2m_publisher_set_receive_max(struct t2m_publisher *p, size_t receive_max);

/* Feed from the mqtt.h callbacks (the bridge forwards them). on_connected re-sends what was in
 * flight when the connection was lost, then drains the queue. */
void t2m_publisher_on_connected(struct t2m_publisher *p);
void t2m_publisher_on_disconnected(struct t2m_publisher *p);
void t2m_publisher_on_delivered(struct t2m_publisher *p, int msg_id);

/* Messages queued (not yet handed to mqtt.h) and in flight. */
size_t t2m_publisher_queued(const struct t2m_publisher *p);
size_t t2m_publisher_inflight(const struct t2m_publisher *p);
/* True while connected and the queue is above high water (pause the upstream). */
bool t2m_publisher_congested(const struct t2m_publisher *p);
/* How long messages have been in flight without any acknowledgement (ms): since the last
 * delivery, connect, or the moment the window went from empty to not empty. 0 while nothing is
 * in flight or while disconnected. A connection whose deliveries stall for longer than 1.5 x
 * keepalive is dead (SPEC section 7): the bridge reconnects and /healthz says so. */
int64_t t2m_publisher_stalled_ms(const struct t2m_publisher *p);
/* True when nothing is queued or in flight (shutdown flush is done). */
bool t2m_publisher_idle(const struct t2m_publisher *p);

#endif
