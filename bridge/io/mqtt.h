/* mqtt.h - what the bridge needs of an MQTT client, and nothing of the library behind it.
 *
 * Two implementations: mqtt_mosquitto.c (libmosquitto, its socket adopted into the lws loop,
 * no extra thread) and mqtt_paho.c (Paho MQTTAsync; its threads post events to the loop).
 * Every callback below runs on the loop thread, never on a library thread.
 *
 * Sessions are clean: on a lost connection the client forgets what it had in flight and reports
 * `disconnected`; the publisher above re-sends what was not confirmed. The client reconnects by
 * itself for ever (backoff 1 s .. 30 s) until t2m_mqtt_free / t2m_mqtt_disconnect. */
#ifndef T2M_MQTT_H
#define T2M_MQTT_H

#include <stdbool.h>
#include <stddef.h>

struct lws_context;
struct t2m_mqtt;

/* The largest packet the bridge takes from the broker (SPEC section 8): its own retained state
 * and configs, and requests (64 KiB), fit many times over. Announced as Maximum Packet Size in
 * an MQTT 5 CONNECT (the broker then never sends more); a larger packet that arrives anyway
 * (MQTT 3.1.1) is skipped and counted where the client library lets the bridge see it. */
#define T2M_MQTT_IN_MAX (256u * 1024u)

enum {
    T2M_MQTT_OK = 0,
    T2M_MQTT_ENOTCONN = -1, /* not connected: nothing was sent */
    T2M_MQTT_EAGAIN = -2,   /* the library's buffer is full: try again after a delivery */
    T2M_MQTT_EINVAL = -3,   /* bad topic / payload */
    T2M_MQTT_ERROR = -4,
    T2M_MQTT_ETOOBIG = -5, /* over the broker's Maximum Packet Size: never sent (SPEC 8) */
};

/* What an MQTT 5 broker announced in CONNACK (SPEC section 8); MQTT 3.1.1 brokers announce
 * nothing, and these then say "no limit". */
struct t2m_mqtt_limits {
    unsigned long max_packet_size; /* bytes of a whole packet; 0 = no limit */
    unsigned receive_max;          /* QoS 1 messages in flight at most; 0 = no limit (65535) */
    int max_qos;                   /* 0, 1 or 2 */
    bool retain_available;
    unsigned topic_alias_max; /* the bridge sends no aliases at all: 0 is always honoured */
};

struct t2m_mqtt_callbacks {
    /* Connected (first time and every reconnect). Subscribe and publish from here. */
    void (*connected)(void *user);
    /* The connection is gone (or a connect attempt failed after having been connected).
     * Everything not yet confirmed by `delivered` is lost. `reason` is printable, secret-free. */
    void (*disconnected)(void *user, const char *reason);
    /* Message `msg_id` (as returned by t2m_mqtt_publish) is done: QoS 1 acked, QoS 0 written. */
    void (*delivered)(void *user, int msg_id);
    /* Message `msg_id` was refused: a PUBACK with an error reason code (0x80 and up). Its slot
     * is free as after `delivered`. NULL: `delivered` is called instead. */
    void (*refused)(void *user, int msg_id, int reason);
    /* A message on a subscribed topic; `retained`: the broker sent it from its retained store
     * (the RETAIN flag of a message delivered on subscribing), not live. */
    void (*message)(void *user, const char *topic, const void *payload, size_t len, bool retained);
    /* A packet from the broker over T2M_MQTT_IN_MAX was skipped (its size in bytes); `topic`:
     * a PUBLISH's topic when it could be read (else NULL), so a request still gets its answer. */
    void (*skipped)(void *user, const char *topic, size_t len);
};

struct t2m_mqtt_options {
    const char *backend; /* "mosquitto" or "paho" */
    const char *url;     /* tcp://host:port, mqtt://, ssl://, mqtts:// (default ports 1883/8883) */
    const char *client_id;
    const char *username;                       /* NULL or "" = none */
    const char *password;                       /* NULL or "" = none */
    const char *ca_file, *cert_file, *key_file; /* NULL or "" = none; ca "" = system store */
    bool tls_verify;                            /* chain + hostname */
    int protocol;                               /* 4 = 3.1.1, 5 = 5 */
    int keepalive;                              /* seconds */
    const char *will_topic;                     /* retained will, QoS 1 */
    const char *will_payload;
    int max_inflight; /* QoS 1 messages outstanding at once; 0: the backend's own window */
};

/* Creates the client; does not connect yet. NULL and err filled on a bad URL or option. */
struct t2m_mqtt *t2m_mqtt_new(struct lws_context *ctx, const struct t2m_mqtt_options *opt,
                              const struct t2m_mqtt_callbacks *cb, void *user, char *err,
                              size_t errlen);
/* Starts connecting (and reconnecting for ever). A broker that is down is not an error. */
int t2m_mqtt_start(struct t2m_mqtt *m);
bool t2m_mqtt_connected(const struct t2m_mqtt *m);
/* The QoS 1 window the client keeps: options.max_inflight, or the backend's own. */
int t2m_mqtt_max_inflight(const struct t2m_mqtt *m);
/* Queues one message with the library. On T2M_MQTT_OK *msg_id identifies it for `delivered`
 * (every publish gets exactly one `delivered` or `refused` unless `disconnected` comes first).
 * The broker's limits apply first: QoS lowered to its maximum, retain dropped when it has none,
 * and a message its Maximum Packet Size cannot take is T2M_MQTT_ETOOBIG, never sent. */
int t2m_mqtt_publish(struct t2m_mqtt *m, const char *topic, const void *payload, size_t len,
                     int qos, bool retain, int *msg_id);
int t2m_mqtt_subscribe(struct t2m_mqtt *m, const char *topic, int qos);
int t2m_mqtt_unsubscribe(struct t2m_mqtt *m, const char *topic);
/* Replaces the password (SIGHUP). Reconnects when it changed. */
void t2m_mqtt_set_password(struct t2m_mqtt *m, const char *password);
/* Drops the connection as dead (a delivery that stalled) and connects again at once; between
 * attempts, makes the next attempt now (a shutdown that wants to flush). No-op once stopping. */
void t2m_mqtt_reconnect(struct t2m_mqtt *m, const char *why);
/* The limits of the current connection (all "none" while disconnected). */
const struct t2m_mqtt_limits *t2m_mqtt_limits(const struct t2m_mqtt *m);
/* SPEC section 9: the broker node in use (or tried next) as "host:port" into buf; the number of
 * configured nodes is returned (mqtt.url may list a cluster's nodes, comma-separated). */
int t2m_mqtt_node(const struct t2m_mqtt *m, char *buf, size_t n);
/* The size of the PUBLISH packet t2m_mqtt_publish would send (fixed header included). */
size_t t2m_mqtt_publish_size(int protocol, size_t topic_len, size_t payload_len, int qos);
/* True once this run saw another client take its session over: an MQTT 5 DISCONNECT with
 * reason 0x8E (session taken over), or three connections in a row that the broker closed before
 * they stayed up 30 s (what MQTT 3.1.1 shows of two clients sharing one mqtt.client_id). Both
 * clients then read back each other's retained configs as their own: the bridge withdraws no
 * Home Assistant config while this holds. */
bool t2m_mqtt_taken_over(const struct t2m_mqtt *m);
/* Connected, not taken over, and either the connections before this one ended as they should
 * (none was closed by the broker before it stayed up) or this one has stayed up 30 s: what the
 * bridge waits for before it withdraws Home Assistant configs (a second client with the same
 * client id is found out within the first broker-closed connections). */
bool t2m_mqtt_settled(const struct t2m_mqtt *m);
/* Clean disconnect (no will), stops reconnecting. */
void t2m_mqtt_disconnect(struct t2m_mqtt *m);
/* Frees; no callback fires after this. Call before lws_context_destroy. */
void t2m_mqtt_free(struct t2m_mqtt *m);
/* The names of the built-in backends, for config validation: 0 if known. */
int t2m_mqtt_backend_known(const char *name);

#endif
