/* mqtt_impl.h - internal to the mqtt module: the backend vtable behind mqtt.h, the state every
 * backend shares, and the loop-thread event queue both backends feed. Not for other modules. */
#ifndef T2M_MQTT_IMPL_H
#define T2M_MQTT_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h" /* T2M_MQTT_MAX_NODES */
#include "mqtt.h"

#define T2M_MQTT_BACKOFF_MIN_MS 1000
#define T2M_MQTT_BACKOFF_MAX_MS 30000

/* A parsed mqtt.url. */
struct t2m_mqtt_url {
    char host[256]; /* without IPv6 brackets */
    int port;
    bool tls;
};

/* Parses tcp:// mqtt:// (plain, default port 1883), ssl:// mqtts:// (TLS, 8883), a bare host
 * (plain), IPv6 in brackets. Returns 0, or -1 with a message in err that never repeats the URL
 * (it could carry credentials). */
int t2m_mqtt_url_parse(const char *url, struct t2m_mqtt_url *out, char *err, size_t errlen);

enum t2m_mqtt_ev_type {
    T2M_MQTT_EV_CONNECTED,
    T2M_MQTT_EV_LOST,
    T2M_MQTT_EV_DELIVERED,
    T2M_MQTT_EV_REFUSED, /* id: the msg id, reason: the PUBACK reason code */
    T2M_MQTT_EV_MESSAGE,
    T2M_MQTT_EV_BACKEND, /* backend-private: handled by ops->backend_event */
    T2M_MQTT_EV_SKIPPED, /* len: an oversized packet's size; topic: its topic, or NULL */
};

struct t2m_mqtt_ev {
    int type;
    int id;      /* DELIVERED: the msg id; BACKEND: the backend's code */
    char *topic; /* owned: MESSAGE and SKIPPED the topic; LOST and BACKEND a reason (or NULL) */
    void *payload;
    size_t len;
    int reason;                    /* REFUSED; MESSAGE: 1 when retained */
    bool has_limits;               /* CONNECTED: limits below came with CONNACK */
    struct t2m_mqtt_limits limits; /* CONNECTED */
};

/* Events on their way to the loop thread. Paho's threads push, the loop drains. */
struct t2m_mqtt_evq {
    pthread_mutex_t lock;
    struct t2m_mqtt_ev *ev;
    size_t n, cap;
};

struct t2m_mqtt_ops {
    const char *name;
    size_t size; /* of the backend's struct, whose first member is struct t2m_mqtt */
    int window;  /* max_inflight when the options leave it 0 */
    /* Backend setup after the shared part is filled in; 0 or -1 with err. */
    int (*init)(struct t2m_mqtt *m, char *err, size_t errlen);
    int (*start)(struct t2m_mqtt *m); /* first connect; t2m_mqtt_start calls it once */
    int (*publish)(struct t2m_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                   bool retain, int id);
    int (*subscribe)(struct t2m_mqtt *m, const char *topic, int qos);
    int (*unsubscribe)(struct t2m_mqtt *m, const char *topic);
    /* Drop the connection (or the attempt's wait) and connect again without backoff: a new
     * password, a stalled delivery, a shutdown that wants to flush. `why` is logged. */
    void (*reconnect)(struct t2m_mqtt *m, const char *why);
    void (*disconnect)(struct t2m_mqtt *m);
    /* Releases everything the backend holds; no event is queued after it returns. */
    void (*destroy)(struct t2m_mqtt *m);
    /* A T2M_MQTT_EV_BACKEND event, on the loop thread. */
    void (*backend_event)(struct t2m_mqtt *m, const struct t2m_mqtt_ev *ev);
};

/* The part of every client that mqtt.c owns. Only the loop thread reads or writes it. */
struct t2m_mqtt {
    const struct t2m_mqtt_ops *ops;
    struct lws_context *ctx;
    struct t2m_mqtt_callbacks cb;
    void *user;
    struct t2m_mqtt_url url; /* the node in use: nodes[node] */
    struct t2m_mqtt_url nodes[T2M_MQTT_MAX_NODES];
    int n_nodes, node;
    char *client_id, *username, *password, *ca_file, *cert_file, *key_file;
    char *will_topic, *will_payload;
    bool tls_verify;
    int protocol, keepalive, max_inflight;

    bool connected; /* as the bridge sees it: set and cleared when events are dispatched */
    struct t2m_mqtt_limits limits; /* of the current connection */
    /* An MQTT 5 broker without retained messages or QoS 1 refuses a will that has them (CONNACK
     * 0x9A / 0x9B): the next attempt sends the will without. Loop thread only. */
    bool will_no_retain, will_qos0;
    int next_id;      /* msg ids handed out by t2m_mqtt_publish, 1 .. INT_MAX */
    int min_valid_id; /* deliveries for ids below it belong to a lost connection: dropped */
    bool dispatching;
    bool started;  /* t2m_mqtt_start was called */
    bool stopping; /* t2m_mqtt_disconnect / free: never reconnect */
    /* Loop thread: when the current connection came up (lws_now_usecs, monotonic; 0: down), the
     * connections in a row that the broker ended before they stayed up, and whether another
     * client took this session over (see t2m_mqtt_taken_over). */
    int64_t up_since_us;
    int short_ends;
    bool taken_over;
    struct t2m_mqtt_evq q;
};

/* How a connection ended, for t2m_mqtt_ended's `how`: a DISCONNECT's reason code (0..255), or */
#define T2M_MQTT_END_CLOSED (-1) /* the broker closed or reset the socket and said nothing */
#define T2M_MQTT_END_OTHER (-2)  /* anything else: our request, a protocol error, a time-out */
#define T2M_MQTT_SESSION_TAKEN_OVER 0x8E

/* A connection that stayed up this long resets the backoff (SPEC section 8, as upstream). */
#define T2M_MQTT_STAYED_UP_US (30LL * 1000000LL)

/* The broker accepted the connection (CONNACK 0), loop thread: starts the clock that decides
 * whether it stayed up. */
void t2m_mqtt_came_up(struct t2m_mqtt *m);

/* The end of an accepted connection, loop thread: true when it stayed up. A session taken over
 * (`how` 0x8E), or the third connection in a row that the broker closed before it stayed up,
 * is said once in an error line naming the client id and makes t2m_mqtt_taken_over true.
 * `requested`: the bridge ended it itself (a reconnect it asked for). */
bool t2m_mqtt_note_end(struct t2m_mqtt *m, int how, bool requested);

/* The end of a connection or of an attempt, as the loop-driven backends report it: logs it (a
 * warning when it had been up, else the retry delay), queues LOST for the bridge when it had been
 * up, moves to the next node of mqtt.url. The backoff restarts only after a connection that
 * stayed up (t2m_mqtt_note_end): a broker that accepts and then drops every connection gets the
 * growing backoff, not a reconnect a second. Returns the delay before the next attempt in ms (0
 * with `now`, else the backoff for *attempt, which it counts up), or -1 once stopping. */
int t2m_mqtt_ended(struct t2m_mqtt *m, const char *why, bool was_up, int *attempt, bool now,
                   int how);

/* Fail-over (SPEC section 9): the next node of mqtt.url's list becomes m->url (no-op for one). */
void t2m_mqtt_next_node(struct t2m_mqtt *m);

extern const struct t2m_mqtt_ops t2m_mqtt_mosquitto_ops;
extern const struct t2m_mqtt_ops t2m_mqtt_paho_ops;
extern const struct t2m_mqtt_ops t2m_mqtt_lws_ops;

/* Appends one event; returns true when the queue was empty before (the caller wakes the loop).
 * Thread-safe. On allocation failure the event is dropped (its topic and payload freed) with an
 * error logged. */
bool t2m_mqtt_evq_push(struct t2m_mqtt_evq *q, const struct t2m_mqtt_ev *ev);
/* Loop thread: hands every queued event to the bridge's callbacks, in order. Events pushed while
 * it runs are dispatched too. Not re-entrant: a nested call returns at once. */
void t2m_mqtt_dispatch(struct t2m_mqtt *m);
/* Frees queued events without dispatching them. */
void t2m_mqtt_evq_clear(struct t2m_mqtt_evq *q);

/* A CONNACK refusal the will caused (0x9A retain, 0x9B QoS not supported): adapts the will for
 * the next attempt. True when it did (reconnect at once). */
bool t2m_mqtt_will_refused(struct t2m_mqtt *m, int reason);

/* Backoff for attempt n (0 = first retry): t2m_backoff_delay between 1 s and 30 s, in ms. */
int t2m_mqtt_backoff_ms(int attempt);

#endif
