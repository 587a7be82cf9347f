/* mqtt_paho.c - the Paho MQTTAsync backend.
 *
 * Paho runs its own threads and calls back on them with its global lock held. Those callbacks
 * never touch bridge state: they queue a small event (mqtt_impl.h) and wake the loop with
 * lws_cancel_service(); the module's vhost protocol receives LWS_CALLBACK_EVENT_WAIT_CANCELLED
 * on the loop thread and dispatches the queue to the bridge's callbacks.
 *
 * Paho's automaticReconnect handles reconnects after a first successful connection; until then
 * a failed connect is retried from the loop with our own backoff (Paho does not retry it). */
#include <MQTTAsync.h>
#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mqtt_impl.h"

#define PROTO_NAME "t2m-mqtt-paho"
#define N_SLOTS 65536
/* Paho's message ids are 16 bits; more outstanding would also alias our slots. */
#define MAX_OUTSTANDING 60000
#define DISCONNECT_TIMEOUT_MS 2000

/* BE_LOST_NODES: a connection to one of several nodes was lost (Paho's automatic reconnect is
 * off then: it would not say which node it reached, and /healthz names it). */
/* BE_BAD_CONNACK: an MQTT 5 CONNACK that breaks the protocol (Receive Maximum 0): Paho takes it
 * as connected, and with a window of 0 nothing would ever be published. */
enum { BE_CONNECT_FAILED = 1, BE_DISCONNECT_DONE, BE_LOST_NODES, BE_BAD_CONNACK };

struct paho_client;

/* The context of one sendMessage: Paho's callback gets a single pointer and needs both. */
struct paho_slot {
    struct paho_client *c;
    int id;
};

struct paho_client {
    struct t2m_mqtt base;
    MQTTAsync cli;
    struct lws_vhost *vh;
    char vhname[48]; /* lws keeps a pointer to the vhost name */
    /* every node of mqtt.url (SPEC section 9); each attempt hands Paho one of them (m->node) */
    char node_uri[T2M_MQTT_MAX_NODES][300];
    char *node_uris[T2M_MQTT_MAX_NODES];
    lws_sorted_usec_list_t sul_retry;
    int attempt;
    bool connecting, reconnect_pending;
    bool have_limits;   /* limits below came with an MQTT 5 CONNACK (under done_lock) */
    bool bad_connack;   /* that CONNACK broke the protocol (under done_lock) */
    int connected_node; /* index into node_uri of the node Paho connected to (under done_lock) */
    struct t2m_mqtt_limits limits;
    char reconnect_why[128];    /* for the `disconnected` of a reconnect we asked for */
    atomic_bool ever_connected; /* written by Paho's threads */
    atomic_bool ssl_error_seen; /* on_ssl_error ran during the current attempt */
    atomic_int outstanding;
    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;
    bool disconnect_done;
    struct paho_client *next; /* the registry of live clients, loop thread only */
    struct paho_slot slots[N_SLOTS];
};

static struct paho_client *registry;

/* --- Paho's threads: queue and wake, nothing else. --- */

static void post(struct paho_client *c, struct t2m_mqtt_ev *ev)
{
    if (t2m_mqtt_evq_push(&c->base.q, ev)) lws_cancel_service(c->base.ctx);
}

static void post_simple(struct paho_client *c, int type, int id, const char *reason)
{
    struct t2m_mqtt_ev ev = {.type = type, .id = id, .topic = reason ? strdup(reason) : NULL};
    post(c, &ev);
}

/* Which of mqtt.url's nodes Paho connected to (its serverURI), from a Paho thread: node_uri is
 * written once before Paho starts. */
static void note_node(struct paho_client *c, const char *uri)
{
    for (int i = 0; uri && i < c->base.n_nodes; i++) {
        if (strcmp(uri, c->node_uri[i]) == 0) {
            pthread_mutex_lock(&c->done_lock);
            c->connected_node = i;
            pthread_mutex_unlock(&c->done_lock);
            return;
        }
    }
}

static void on_connect_success(void *context, MQTTAsync_successData *resp)
{
    note_node(context, resp ? resp->alt.connect.serverURI : NULL);
}

static void on_connected(void *context, char *cause)
{
    struct paho_client *c = context;
    atomic_store(&c->ever_connected, true);
    struct t2m_mqtt_ev ev = {.type = T2M_MQTT_EV_CONNECTED};
    pthread_mutex_lock(&c->done_lock);
    if (c->have_limits) {
        ev.has_limits = true;
        ev.limits = c->limits;
    }
    int node = c->connected_node;
    bool bad = c->bad_connack;
    c->bad_connack = false;
    pthread_mutex_unlock(&c->done_lock);
    if (bad) {
        post_simple(c, T2M_MQTT_EV_BACKEND, BE_BAD_CONNACK, NULL);
        return;
    }
    ev.id = node + 1; /* the loop thread makes it m->url */
    /* nodes[] is written once before Paho starts: safe to read here */
    T2M_INFO("mqtt", "connected to %s:%d (paho, MQTT %s)", c->base.nodes[node].host,
             c->base.nodes[node].port, c->base.protocol == 5 ? "5" : "3.1.1");
    post(c, &ev);
}

/* MQTT 5 CONNACK: the broker's limits (SPEC section 8), before on_connected posts them. */
static void on_connect_success5(void *context, MQTTAsync_successData5 *resp)
{
    struct paho_client *c = context;
    note_node(c, resp ? resp->alt.connect.serverURI : NULL);
    struct t2m_mqtt_limits l = {0, 0, 2, true, 0};
    MQTTProperties *p = resp ? &resp->properties : NULL;
    if (p && MQTTProperties_hasProperty(p, MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE))
        l.max_packet_size =
            (unsigned long)MQTTProperties_getNumericValue(p, MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE);
    bool bad = false;
    if (p && MQTTProperties_hasProperty(p, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM)) {
        l.receive_max =
            (unsigned)MQTTProperties_getNumericValue(p, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
        bad = l.receive_max == 0; /* a protocol error (MQTT 5, 3.2.2.3.3) */
    }
    if (p && MQTTProperties_hasProperty(p, MQTTPROPERTY_CODE_MAXIMUM_QOS))
        l.max_qos = MQTTProperties_getNumericValue(p, MQTTPROPERTY_CODE_MAXIMUM_QOS);
    if (p && MQTTProperties_hasProperty(p, MQTTPROPERTY_CODE_RETAIN_AVAILABLE))
        l.retain_available = MQTTProperties_getNumericValue(p, MQTTPROPERTY_CODE_RETAIN_AVAILABLE);
    pthread_mutex_lock(&c->done_lock);
    c->limits = l;
    c->have_limits = true;
    c->bad_connack = bad;
    pthread_mutex_unlock(&c->done_lock);
}

static void on_connection_lost(void *context, char *cause)
{
    struct paho_client *c = context;
    /* Paho's cause is usually NULL and never more specific than this. */
    pthread_mutex_lock(&c->done_lock);
    int node = c->connected_node;
    pthread_mutex_unlock(&c->done_lock);
    T2M_WARN("mqtt", "connection to %s:%d lost; reconnecting", c->base.nodes[node].host,
             c->base.nodes[node].port);
    /* id 1: mqtt.c accounts for the end (take-over detection), as Paho reconnects itself */
    struct t2m_mqtt_ev ev = {.type = T2M_MQTT_EV_LOST,
                             .id = 1,
                             .reason = T2M_MQTT_END_CLOSED,
                             .topic = strdup("connection lost")};
    post(c, &ev);
    if (c->base.n_nodes > 1) post_simple(c, T2M_MQTT_EV_BACKEND, BE_LOST_NODES, NULL);
}

/* MQTT 5: the broker sent DISCONNECT (an administrator kicked the bridge, a session taken over,
 * 0x8B shutting down). Paho 1.3.12 calls neither connectionLost nor anything else for it and
 * reconnects by itself: without this the bridge never learnt that its connection, and what
 * was in flight on it, was gone, and re-sent nothing (issue 19). */
static void on_disconnected5(void *context, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    struct paho_client *c = context;
    char why[160];
    snprintf(why, sizeof(why), "the broker disconnected: %s (0x%02x)", MQTTReasonCode_toString(rc),
             (unsigned)rc & 0xffu);
    pthread_mutex_lock(&c->done_lock);
    int node = c->connected_node;
    pthread_mutex_unlock(&c->done_lock);
    T2M_WARN("mqtt", "connection to %s:%d ended: %s; reconnecting", c->base.nodes[node].host,
             c->base.nodes[node].port, why);
    struct t2m_mqtt_ev ev = {
        .type = T2M_MQTT_EV_LOST, .id = 1, .reason = (int)rc, .topic = strdup(why)};
    post(c, &ev);
    if (c->base.n_nodes > 1) post_simple(c, T2M_MQTT_EV_BACKEND, BE_LOST_NODES, NULL);
}

static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct paho_client *c = context;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    struct t2m_mqtt_ev ev = {.type = T2M_MQTT_EV_MESSAGE,
                             .len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
                             .reason = msg->retained ? 1 : 0};
    ev.topic = malloc(tlen + 1);
    ev.payload = malloc(ev.len + 1);
    if (ev.topic && ev.payload) {
        memcpy(ev.topic, topic, tlen);
        ev.topic[tlen] = '\0';
        if (ev.len) memcpy(ev.payload, msg->payload, ev.len);
        ((char *)ev.payload)[ev.len] = '\0';
        post(c, &ev);
    } else {
        free(ev.topic);
        free(ev.payload);
        T2M_ERROR("mqtt", "out of memory receiving a message");
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

/* What a CONNACK return code (3.1.1) or reason code (5) means: the log says why. */
static const char *connack_text(int code)
{
    static const char *const v311[] = {"",
                                       "unacceptable protocol version",
                                       "identifier rejected",
                                       "server unavailable",
                                       "bad user name or password",
                                       "not authorised"};
    if (code >= 128) return MQTTReasonCode_toString((enum MQTTReasonCodes)code);
    return code < 6 ? v311[code] : "unknown";
}

static void connect_failed(struct paho_client *c, int code, const char *msg)
{
    char why[320];
    if (code == MQTTASYNC_FAILURE || code == 0)
        snprintf(why, sizeof(why), "%s", msg && *msg ? msg : "connection failed");
    else if (code > 0)
        snprintf(why, sizeof(why), "the broker refused the connection (code %d: %s)", code,
                 connack_text(code));
    else
        snprintf(why, sizeof(why), "%s", MQTTAsync_strerror(code));
    /* Paho checks the host name itself after the handshake and reports no OpenSSL error for a
     * mismatch: with no error seen, that (or the server closing the handshake) is the cause. */
    if (c->base.nodes[0].tls && c->base.tls_verify && code < 0 &&
        !atomic_exchange(&c->ssl_error_seen, false)) {
        size_t n = strlen(why);
        snprintf(why + n, sizeof(why) - n,
                 " (TLS: no OpenSSL error: the server certificate does not match host %.64s, or "
                 "the server ended the handshake)",
                 c->base.n_nodes > 1 ? "(one of the broker nodes)" : c->base.nodes[0].host);
    }
    struct t2m_mqtt_ev ev = {
        .type = T2M_MQTT_EV_BACKEND, .id = BE_CONNECT_FAILED, .topic = strdup(why), .reason = code};
    post(c, &ev);
}

static void on_connect_failure(void *context, MQTTAsync_failureData *resp)
{
    connect_failed(context, resp ? resp->code : 0, resp ? resp->message : NULL);
}

static void on_connect_failure5(void *context, MQTTAsync_failureData5 *resp)
{
    int code = resp ? (resp->reasonCode ? (int)resp->reasonCode : resp->code) : 0;
    connect_failed(context, code, resp ? resp->message : NULL);
}

static void on_pub_success(void *context, MQTTAsync_successData *resp)
{
    struct paho_slot *s = context;
    atomic_fetch_sub(&s->c->outstanding, 1);
    post_simple(s->c, T2M_MQTT_EV_DELIVERED, s->id, NULL);
}

static void on_pub_success5(void *context, MQTTAsync_successData5 *resp)
{
    on_pub_success(context, NULL);
}

/* A failed publish: refused by the broker (an MQTT 5 PUBACK with a reason code of 0x80 or
 * more) frees its slot like a delivery and is counted as refused. Anything else is Paho giving
 * up on a message of a connection that is gone (its codes are Paho's own, negative, or reason
 * 0): not a refusal. The message stays unconfirmed and the publisher re-sends it after the
 * `disconnected` that comes with it. */
static void pub_failed(struct paho_slot *s, int reason)
{
    atomic_fetch_sub(&s->c->outstanding, 1);
    if (reason < 0x80 || reason > 0xff) return;
    struct t2m_mqtt_ev ev = {.type = T2M_MQTT_EV_REFUSED, .id = s->id, .reason = reason};
    post(s->c, &ev);
}

static void on_pub_failure(void *context, MQTTAsync_failureData *resp)
{
    (void)resp; /* MQTT 3.1.1 has no refusals: only a lost connection fails a publish */
    pub_failed(context, -1);
}

static void on_pub_failure5(void *context, MQTTAsync_failureData5 *resp)
{
    /* A refusal comes with the PUBACK it was read from (packet type 4) and library code 0;
     * a message lost with its connection has a negative code and reason 0 */
    pub_failed(context,
               resp && resp->packet_type == 4 && resp->code >= 0 ? (int)resp->reasonCode : -1);
}

/* A refused subscription (SUBACK 0x80 or more; an ACL) is said, as the other backends do: the
 * read-back, requests or Home Assistant's status would silently never arrive. */
static void on_sub_failure(void *context, MQTTAsync_failureData *resp)
{
    (void)context;
    T2M_WARN("mqtt", "the broker refused a subscription (%d)", resp ? resp->code : -1);
}

static void on_sub_failure5(void *context, MQTTAsync_failureData5 *resp)
{
    (void)context;
    T2M_WARN("mqtt", "the broker refused a subscription (0x%02x)",
             resp ? (unsigned)resp->reasonCode & 0xffu : 0u);
}

static void on_sub_success5(void *context, MQTTAsync_successData5 *resp)
{
    (void)context;
    if (resp && resp->reasonCode >= 0x80)
        T2M_WARN("mqtt", "the broker refused a subscription (0x%02x)",
                 (unsigned)resp->reasonCode & 0xffu);
}

static void signal_disconnect_done(struct paho_client *c)
{
    pthread_mutex_lock(&c->done_lock);
    c->disconnect_done = true;
    pthread_cond_signal(&c->done_cond);
    pthread_mutex_unlock(&c->done_lock);
    post_simple(c, T2M_MQTT_EV_BACKEND, BE_DISCONNECT_DONE, NULL);
}

static void on_disc_success(void *context, MQTTAsync_successData *resp)
{
    signal_disconnect_done(context);
}

static void on_disc_failure(void *context, MQTTAsync_failureData *resp)
{
    signal_disconnect_done(context);
}

static void on_disc_success5(void *context, MQTTAsync_successData5 *resp)
{
    signal_disconnect_done(context);
}

static void on_disc_failure5(void *context, MQTTAsync_failureData5 *resp)
{
    signal_disconnect_done(context);
}

static int on_ssl_error(const char *str, size_t len, void *u)
{
    struct paho_client *c = u;
    int n = len > 400 ? 400 : (int)len;
    while (n > 0 && (str[n - 1] == '\n' || str[n - 1] == '\r'))
        n--;
    atomic_store(&c->ssl_error_seen, true);
    T2M_WARN("mqtt", "TLS with %s:%d: %.*s", c->base.nodes[0].host, c->base.nodes[0].port, n, str);
    return 1;
}

/* --- The loop thread. --- */

static void retry_cb(lws_sorted_usec_list_t *sul);
static int start_disconnect(struct paho_client *c, int timeout_ms);

static void do_connect(struct paho_client *c)
{
    struct t2m_mqtt *m = &c->base;
    bool v5 = m->protocol == 5;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
    if (v5) co = co5;
    MQTTAsync_willOptions wo = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;

    co.keepAliveInterval = m->keepalive;
    if (m->n_nodes > 1) {
        /* one node per attempt, rotated by the loop thread: Paho 1.3.12 names the first of a
         * list as the node it reached even when it reached another */
        co.serverURIs = &c->node_uris[m->node];
        co.serverURIcount = 1;
    }
    if (v5)
        co.cleanstart = 1;
    else
        co.cleansession = 1;
    /* The publisher's window bounds what is in flight. Paho's own bound would hold commands
     * back in its queue, and everything behind them with it: a DISCONNECT meant to drop a
     * stalled connection (issue 10) would never leave. */
    co.maxInflight = MAX_OUTSTANDING;
    co.connectTimeout = 10;
    co.automaticReconnect = m->n_nodes > 1 ? 0 : 1;
    co.minRetryInterval = T2M_MQTT_BACKOFF_MIN_MS / 1000;
    co.maxRetryInterval = T2M_MQTT_BACKOFF_MAX_MS / 1000;
    co.MQTTVersion = v5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    co.username = m->username;
    co.password = m->password;
    if (m->will_topic) {
        wo.topicName = m->will_topic;
        wo.message = m->will_payload ? m->will_payload : "";
        wo.retained = !m->will_no_retain;
        wo.qos = m->will_qos0 ? 0 : 1;
        co.will = &wo;
    }
    if (m->url.tls) {
        so.trustStore = m->ca_file;
        so.CApath = m->ca_file ? NULL : "/etc/ssl/certs";
        so.keyStore = m->cert_file;
        so.privateKey = m->key_file;
        /* The initializer has verify = 0: a wrong hostname would pass (LIBRARY-NOTES.md). */
        so.enableServerCertAuth = m->tls_verify;
        so.verify = m->tls_verify;
        so.ssl_error_cb = on_ssl_error;
        so.ssl_error_context = c;
        co.ssl = &so;
    }
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty mps = {.identifier = MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE};
    mps.value.integer4 = T2M_MQTT_IN_MAX;
    if (v5) {
        /* SPEC 8 (issue 19): the broker sends nothing larger (a 100 MB request took ~320 MB of
         * memory before the bridge's 64 KiB check). Paho copies the properties. */
        MQTTProperties_add(&props, &mps);
        co.connectProperties = &props;
        co.onFailure5 = on_connect_failure5;
        co.onSuccess5 = on_connect_success5;
    } else {
        co.onFailure = on_connect_failure;
        co.onSuccess = on_connect_success;
    }
    co.context = c;

    c->connecting = true;
    int rc = MQTTAsync_connect(c->cli, &co);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS) {
        c->connecting = false;
        int delay = t2m_mqtt_backoff_ms(c->attempt++);
        T2M_WARN("mqtt", "connecting to %s:%d failed: %s; retrying in %.1f s", m->url.host,
                 m->url.port, MQTTAsync_strerror(rc), delay / 1000.0);
        lws_sul_schedule(m->ctx, 0, &c->sul_retry, retry_cb, (lws_usec_t)delay * LWS_US_PER_MS);
    }
}

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct paho_client *c = lws_container_of(sul, struct paho_client, sul_retry);
    if (!c->base.stopping) do_connect(c);
}

static void paho_backend_event(struct t2m_mqtt *m, const struct t2m_mqtt_ev *ev)
{
    struct paho_client *c = (struct paho_client *)m;
    if (ev->id == BE_CONNECT_FAILED) {
        c->connecting = false;
        if (c->base.stopping) return;
        if (t2m_mqtt_will_refused(m, ev->reason)) {
            c->attempt = 0;
            lws_sul_schedule(m->ctx, 0, &c->sul_retry, retry_cb, 1);
            return;
        }
        const char *why = ev->topic ? ev->topic : "connection failed";
        if (atomic_load(&c->ever_connected)) {
            T2M_DEBUG("mqtt", "reconnect attempt failed: %s", why);
            return;
        }
        int delay = t2m_mqtt_backoff_ms(c->attempt++);
        T2M_INFO("mqtt", "connecting to %s:%d failed: %s; retrying in %.1f s", m->url.host,
                 m->url.port, why, delay / 1000.0);
        t2m_mqtt_next_node(m);
        lws_sul_schedule(m->ctx, 0, &c->sul_retry, retry_cb, (lws_usec_t)delay * LWS_US_PER_MS);
    } else if (ev->id == BE_LOST_NODES) {
        if (c->base.stopping) return;
        c->connecting = false; /* the connection it stood for is gone */
        atomic_store(&c->ever_connected, false);
        t2m_mqtt_next_node(m);
        c->attempt = 0;
        lws_sul_schedule(m->ctx, 0, &c->sul_retry, retry_cb,
                         (lws_usec_t)t2m_mqtt_backoff_ms(c->attempt++) * LWS_US_PER_MS);
    } else if (ev->id == BE_BAD_CONNACK) {
        if (c->base.stopping) return;
        /* Down as after a failed connect, with the backoff: never "connected" to a broker
         * that would let nothing through. */
        c->connecting = false;
        atomic_store(&c->ever_connected, false);
        int delay = t2m_mqtt_backoff_ms(c->attempt++);
        T2M_WARN("mqtt",
                 "%s:%d broke the protocol (CONNACK with Receive Maximum 0); retrying in %.1f s",
                 m->url.host, m->url.port, delay / 1000.0);
        start_disconnect(c, 0);
        t2m_mqtt_next_node(m);
        lws_sul_schedule(m->ctx, 0, &c->sul_retry, retry_cb, (lws_usec_t)delay * LWS_US_PER_MS);
    } else if (ev->id == BE_DISCONNECT_DONE) {
        struct t2m_mqtt_ev lost = {.type = T2M_MQTT_EV_LOST};
        if (c->reconnect_pending && !c->base.stopping) {
            c->reconnect_pending = false;
            lost.topic = strdup(c->reconnect_why);
            t2m_mqtt_evq_push(&m->q, &lost);
            atomic_store(&c->ever_connected, false);
            c->attempt = 0;
            do_connect(c);
        } else {
            lost.topic = strdup("disconnected on request");
            t2m_mqtt_evq_push(&m->q, &lost);
        }
    }
}

static int lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    if (reason != LWS_CALLBACK_EVENT_WAIT_CANCELLED) return 0;
    struct lws_vhost *vh = lws_get_vhost(wsi);
    for (struct paho_client *c = registry; c; c = c->next) {
        if (c->vh == vh) {
            /* The dispatch may free c (the bridge's callbacks may): do not touch it after. */
            t2m_mqtt_dispatch(&c->base);
            break;
        }
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {PROTO_NAME, lws_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Paho trace lines -> t2m_log (errors and worse only, see t2m_mqtt_new). */
static void paho_trace(enum MQTTASYNC_TRACE_LEVELS level, char *message)
{
    /* Paho's heap scan prints leftover memory ("Content ...") at error level: that memory may
     * hold a password, so those lines never reach the log. */
    if (strstr(message, "Content") || strstr(message, "Heap")) return;
    /* Paho prints its banner ("Trace Output", product, version, ...) below error level at
     * every start: information, not a warning. */
    if (level < MQTTASYNC_TRACE_ERROR)
        T2M_DEBUG("paho", "%s", message);
    else
        T2M_WARN("paho", "%s (trace level %d)", message, (int)level);
}

static int paho_init(struct t2m_mqtt *m, char *err, size_t errlen)
{
    struct paho_client *c = (struct paho_client *)m;
    pthread_mutex_init(&c->done_lock, NULL);
    pthread_cond_init(&c->done_cond, NULL);
    for (size_t i = 0; i < N_SLOTS; i++)
        c->slots[i].c = c;

    snprintf(c->vhname, sizeof(c->vhname), "t2m-mqtt-%p", (void *)c);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.vhost_name = c->vhname;
    c->vh = lws_create_vhost(m->ctx, &info);
    if (!c->vh) {
        snprintf(err, errlen, "mqtt: cannot create the lws vhost");
        return -1;
    }

    for (int i = 0; i < m->n_nodes; i++) {
        const struct t2m_mqtt_url *u = &m->nodes[i];
        /* host <= 255 bytes: always fits 300 */
        if (u->host[0] && strchr(u->host, ':'))
            snprintf(c->node_uri[i], sizeof(c->node_uri[i]), "%s://[%s]:%d", u->tls ? "ssl" : "tcp",
                     u->host, u->port);
        else
            snprintf(c->node_uri[i], sizeof(c->node_uri[i]), "%s://%s:%d", u->tls ? "ssl" : "tcp",
                     u->host, u->port);
        c->node_uris[i] = c->node_uri[i];
    }
    char gen_id[64];
    const char *cid = m->client_id;
    if (!cid) {
        /* Paho needs an id; MQTT 3.1.1 lets the broker assign one, Paho does not. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(gen_id, sizeof(gen_id), "t2m-%lx%lx", (long)ts.tv_sec, ts.tv_nsec);
        cid = gen_id;
    }
    /* Paho's own error lines go through our logger (it calls from its threads: t2m_log is
     * thread-safe). Error level only: its protocol traces are per packet and not vetted for
     * secrets. */
    MQTTAsync_setTraceCallback(paho_trace);
    MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
    MQTTAsync_createOptions cro = MQTTAsync_createOptions_initializer;
    cro.struct_version = 2; /* 1.3.12 rejects anything newer (LIBRARY-NOTES.md) */
    cro.MQTTVersion = m->protocol == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    cro.sendWhileDisconnected = 0;
    cro.maxBufferedMessages = MAX_OUTSTANDING;
    int rc = MQTTAsync_createWithOptions(&c->cli, c->node_uri[0], cid, MQTTCLIENT_PERSISTENCE_NONE,
                                         NULL, &cro);
    if (rc != MQTTASYNC_SUCCESS) {
        c->cli = NULL;
        snprintf(err, errlen, "mqtt: cannot create the Paho client: %s", MQTTAsync_strerror(rc));
        return -1;
    }
    if (MQTTAsync_setCallbacks(c->cli, c, on_connection_lost, on_message, NULL) !=
            MQTTASYNC_SUCCESS ||
        MQTTAsync_setConnected(c->cli, c, on_connected) != MQTTASYNC_SUCCESS ||
        MQTTAsync_setDisconnected(c->cli, c, on_disconnected5) != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "mqtt: cannot set the Paho callbacks");
        return -1;
    }
    c->next = registry;
    registry = c;
    return 0;
}

static int paho_start(struct t2m_mqtt *m)
{
    struct paho_client *c = (struct paho_client *)m;
    do_connect(c);
    return T2M_MQTT_OK;
}

static int map_rc(int rc)
{
    switch (rc) {
    case MQTTASYNC_SUCCESS:
        return T2M_MQTT_OK;
    case MQTTASYNC_MAX_BUFFERED_MESSAGES:
    case MQTTASYNC_MAX_BUFFERED:
    case MQTTASYNC_NO_MORE_MSGIDS:
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
        return T2M_MQTT_EAGAIN;
    case MQTTASYNC_DISCONNECTED:
        return T2M_MQTT_ENOTCONN;
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_TOPICNAME_TRUNCATED:
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_NULL_PARAMETER:
        return T2M_MQTT_EINVAL;
    default:
        return T2M_MQTT_ERROR;
    }
}

static int paho_publish(struct t2m_mqtt *m, const char *topic, const void *payload, size_t len,
                        int qos, bool retain, int id)
{
    struct paho_client *c = (struct paho_client *)m;
    if (atomic_load(&c->outstanding) >= MAX_OUTSTANDING) return T2M_MQTT_EAGAIN;
    /* Written before sendMessage takes Paho's lock, read by its thread after: ordered. */
    struct paho_slot *s = &c->slots[(unsigned)id % N_SLOTS];
    s->id = id;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retain;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.context = s;
    if (m->protocol == 5) {
        ro.onSuccess5 = on_pub_success5;
        ro.onFailure5 = on_pub_failure5;
    } else {
        ro.onSuccess = on_pub_success;
        ro.onFailure = on_pub_failure;
    }
    atomic_fetch_add(&c->outstanding, 1);
    int rc = MQTTAsync_sendMessage(c->cli, topic, &msg, &ro);
    if (rc != MQTTASYNC_SUCCESS) atomic_fetch_sub(&c->outstanding, 1);
    return map_rc(rc);
}

static int paho_unsubscribe(struct t2m_mqtt *m, const char *topic)
{
    struct paho_client *c = (struct paho_client *)m;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    return map_rc(MQTTAsync_unsubscribe(c->cli, topic, &ro));
}

static int paho_subscribe(struct t2m_mqtt *m, const char *topic, int qos)
{
    struct paho_client *c = (struct paho_client *)m;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    if (m->protocol == 5) {
        ro.onSuccess5 = on_sub_success5;
        ro.onFailure5 = on_sub_failure5;
    } else {
        ro.onFailure = on_sub_failure;
    }
    ro.context = c;
    return map_rc(MQTTAsync_subscribe(c->cli, topic, qos, &ro));
}

static int start_disconnect(struct paho_client *c, int timeout_ms)
{
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
    if (c->base.protocol == 5) {
        d = d5;
        d.onSuccess5 = on_disc_success5;
        d.onFailure5 = on_disc_failure5;
    } else {
        d.onSuccess = on_disc_success;
        d.onFailure = on_disc_failure;
    }
    d.timeout = timeout_ms;
    d.context = c;
    pthread_mutex_lock(&c->done_lock);
    c->disconnect_done = false;
    pthread_mutex_unlock(&c->done_lock);
    return MQTTAsync_disconnect(c->cli, &d);
}

static void paho_reconnect(struct t2m_mqtt *m, const char *why)
{
    struct paho_client *c = (struct paho_client *)m;
    if (!c->base.started || c->base.stopping) return;
    if (MQTTAsync_isConnected(c->cli) || atomic_load(&c->ever_connected)) {
        c->reconnect_pending = true;
        snprintf(c->reconnect_why, sizeof(c->reconnect_why), "%s", why);
        T2M_INFO("mqtt", "%s", why);
        /* No grace period: what is in flight is re-sent after the reconnect anyway. */
        if (start_disconnect(c, 0) != MQTTASYNC_SUCCESS) {
            c->reconnect_pending = false;
            T2M_WARN("mqtt", "cannot reconnect now (%s); Paho reconnects by itself", why);
        }
    } else if (!c->connecting) {
        lws_sul_schedule(m->ctx, 0, &c->sul_retry, retry_cb, 1);
    }
}

static void paho_disconnect(struct t2m_mqtt *m)
{
    struct paho_client *c = (struct paho_client *)m;
    c->base.stopping = true;
    lws_sul_cancel(&c->sul_retry);
    if (c->cli && start_disconnect(c, DISCONNECT_TIMEOUT_MS) != MQTTASYNC_SUCCESS) {
        struct t2m_mqtt_ev lost = {.type = T2M_MQTT_EV_LOST,
                                   .topic = strdup("disconnected on request")};
        t2m_mqtt_evq_push(&m->q, &lost);
        t2m_mqtt_dispatch(m);
    }
}

static void paho_destroy(struct t2m_mqtt *m)
{
    struct paho_client *c = (struct paho_client *)m;
    c->base.stopping = true;
    lws_sul_cancel(&c->sul_retry);
    for (struct paho_client **pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    if (c->cli) {
        /* Wait (bounded) for the disconnect so Paho's threads are quiet before destroy. */
        if (MQTTAsync_isConnected(c->cli) &&
            start_disconnect(c, DISCONNECT_TIMEOUT_MS) == MQTTASYNC_SUCCESS) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += DISCONNECT_TIMEOUT_MS / 1000 + 1;
            pthread_mutex_lock(&c->done_lock);
            while (!c->disconnect_done &&
                   pthread_cond_timedwait(&c->done_cond, &c->done_lock, &dl) == 0)
                ;
            pthread_mutex_unlock(&c->done_lock);
        }
        MQTTAsync_destroy(&c->cli);
        c->cli = NULL;
    }
    if (c->vh) {
        lws_vhost_destroy(c->vh);
        c->vh = NULL;
    }
    pthread_cond_destroy(&c->done_cond);
    pthread_mutex_destroy(&c->done_lock);
}

const struct t2m_mqtt_ops t2m_mqtt_paho_ops = {
    .name = "paho",
    .size = sizeof(struct paho_client),
    .window = 100, /* Paho keeps a record (and a thread hand-off) per message in flight */
    .init = paho_init,
    .start = paho_start,
    .publish = paho_publish,
    .subscribe = paho_subscribe,
    .unsubscribe = paho_unsubscribe,
    .reconnect = paho_reconnect,
    .disconnect = paho_disconnect,
    .destroy = paho_destroy,
    .backend_event = paho_backend_event,
};
