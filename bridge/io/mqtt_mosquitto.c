/* mqtt_mosquitto.c - the libmosquitto backend, driven by the lws loop: no thread of its own.
 *
 * Each connection attempt gets a fresh `struct mosquitto`: destroying it on a lost connection is
 * the only public way to make libmosquitto forget the QoS 1 messages it still holds, which a
 * clean session promises (the publisher above re-sends them). Its socket is watched by lws
 * through a dup()ed descriptor adopted as a raw file: libmosquitto closes its own descriptor,
 * lws closes the duplicate, so neither closes a number the other still uses.
 *
 * libmosquitto's callbacks run inside mosquitto_loop_read/_write/_misc; they only queue events.
 * The events reach the bridge after that call has returned (t2m_mqtt_dispatch), so the bridge
 * may publish from its callbacks without re-entering libmosquitto. */
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mqtt_impl.h"

#define PROTO_NAME "t2m-mqtt-mosquitto"
#define MISC_INTERVAL_US (1000 * LWS_US_PER_MS)
/* libmosquitto's message ids are 16 bits: more outstanding at once would alias in ids[]. */
#define MAX_OUTSTANDING 60000

struct mosq_client {
    struct t2m_mqtt base;
    struct mosquitto *mosq; /* NULL between attempts */
    struct lws_vhost *vh;
    struct lws *wsi; /* the adopted duplicate of mosq's socket */
    lws_sorted_usec_list_t sul_misc, sul_retry, sul_kick;
    int attempt;        /* failed attempts since the last CONNACK: the backoff exponent */
    int outstanding;    /* published on this connection and not yet confirmed */
    bool connacked;     /* the broker accepted this connection */
    bool was_up;        /* this connection had been accepted (for the log line) */
    int end_how;        /* how it ended (t2m_mqtt_ended), set with the first reason */
    bool lost;          /* the connection is gone: tear down after the current library call */
    bool reconnect_now; /* the next attempt without backoff (password change) */
    bool in_writeable;  /* inside LWS_CALLBACK_RAW_WRITEABLE_FILE */
    char reason[160];
    char vhname[48]; /* lws keeps a pointer to the vhost name */
    int ids[65536];  /* libmosquitto mid -> t2m msg id */
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
    mosquitto_lib_init();
}

/* Keeps the first reason: it is the cause, later ones are consequences. */
static void set_reason(struct mosq_client *c, const char *prefix, const char *detail)
{
    if (c->reason[0]) return;
    c->end_how = T2M_MQTT_END_OTHER;
    snprintf(c->reason, sizeof(c->reason), "%s%s", prefix, detail);
    size_t n = strlen(c->reason);
    if (n && c->reason[n - 1] == '.') /* mosquitto_strerror's sentences end in one */
        c->reason[n - 1] = '\0';
}

static const char *mosq_err(int rc)
{
    return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

/* CONNACK's properties: the limits of SPEC section 8 (MQTT 5 only; absent ones mean none). */
static void read_limits(const mosquitto_property *props, struct t2m_mqtt_limits *l)
{
    *l = (struct t2m_mqtt_limits){0, 0, 2, true, 0};
    uint32_t u32;
    uint16_t u16;
    uint8_t u8;
    if (mosquitto_property_read_int32(props, MQTT_PROP_MAXIMUM_PACKET_SIZE, &u32, false))
        l->max_packet_size = u32;
    if (mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM, &u16, false))
        l->receive_max = u16;
    if (mosquitto_property_read_byte(props, MQTT_PROP_MAXIMUM_QOS, &u8, false)) l->max_qos = u8;
    if (mosquitto_property_read_byte(props, MQTT_PROP_RETAIN_AVAILABLE, &u8, false))
        l->retain_available = u8 != 0;
    if (mosquitto_property_read_int16(props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, &u16, false))
        l->topic_alias_max = u16;
}

static void on_connect_v5(struct mosquitto *mosq, void *obj, int rc, int flags,
                          const mosquitto_property *props)
{
    struct mosq_client *c = obj;
    if (rc == 0) {
        c->connacked = true;
        c->was_up = true;
        t2m_mqtt_came_up(&c->base);
        T2M_INFO("mqtt", "connected to %s:%d (mosquitto, MQTT %s)", c->base.url.host,
                 c->base.url.port, c->base.protocol == 5 ? "5" : "3.1.1");
        struct t2m_mqtt_ev ev = {.type = T2M_MQTT_EV_CONNECTED,
                                 .has_limits = c->base.protocol == 5};
        read_limits(props, &ev.limits);
        t2m_mqtt_evq_push(&c->base.q, &ev);
    } else {
        const char *why = c->base.protocol == 5 && rc >= 128 ? mosquitto_reason_string(rc)
                                                             : mosquitto_connack_string(rc);
        set_reason(c, "the broker refused the connection: ", why);
        if (t2m_mqtt_will_refused(&c->base, rc)) c->reconnect_now = true;
        c->lost = true;
    }
}

/* libmosquitto returns only "A TLS error occurred"; the why reaches its log callback, while the
 * SSL object (and its verification result) still exists: keep that as the reason. */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    struct mosq_client *c = obj;
    if (level != MOSQ_LOG_ERR) return;
    /* Its own host name check fails the verification with no X509 error code of its own. */
    if (strstr(str, "host name verification failed")) {
        char why[96];
        snprintf(why, sizeof(why), "its names do not match host %.64s", c->base.url.host);
        set_reason(c, "TLS: server certificate rejected: ", why);
    }
    if (strncmp(str, "OpenSSL Error", 13) != 0) return;
    SSL *ssl = mosquitto_ssl_get(mosq);
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        set_reason(c, "TLS: server certificate rejected: ", X509_verify_cert_error_string(v));
    } else {
        const char *e = strstr(str + 13, "error:");
        set_reason(c, "TLS: ", e ? e : str);
    }
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    struct mosq_client *c = obj;
    bool first = !c->reason[0];
    set_reason(c, "", rc == 0 ? "disconnected" : mosq_err(rc));
    if (first && rc == MOSQ_ERR_CONN_LOST) c->end_how = T2M_MQTT_END_CLOSED;
    c->lost = true;
}

/* A PUBACK with a reason code of 0x80 or more is a refusal (MQTT 5); its slot is free all the
 * same. */
static void on_publish_v5(struct mosquitto *mosq, void *obj, int mid, int reason,
                          const mosquitto_property *props)
{
    struct mosq_client *c = obj;
    if (c->outstanding > 0) c->outstanding--;
    struct t2m_mqtt_ev ev = {.type = reason >= 0x80 ? T2M_MQTT_EV_REFUSED : T2M_MQTT_EV_DELIVERED,
                             .id = c->ids[mid & 0xffff],
                             .reason = reason};
    t2m_mqtt_evq_push(&c->base.q, &ev);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    struct mosq_client *c = obj;
    struct t2m_mqtt_ev ev = {
        .type = T2M_MQTT_EV_MESSAGE, .len = (size_t)msg->payloadlen, .reason = msg->retain ? 1 : 0};
    ev.topic = strdup(msg->topic);
    ev.payload = malloc(ev.len + 1);
    if (!ev.topic || !ev.payload) {
        free(ev.topic);
        free(ev.payload);
        T2M_ERROR("mqtt", "out of memory receiving a message");
        return;
    }
    if (ev.len) memcpy(ev.payload, msg->payload, ev.len);
    ((char *)ev.payload)[ev.len] = '\0';
    t2m_mqtt_evq_push(&c->base.q, &ev);
}

/* A refused subscription (SUBACK 0x80, an ACL) is said, as the other backends do: the
 * read-back, requests or Home Assistant's status would silently never arrive. */
static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
                         const int *granted_qos)
{
    (void)mosq;
    (void)obj;
    (void)mid;
    for (int i = 0; i < qos_count; i++)
        if (granted_qos[i] >= 0x80)
            T2M_WARN("mqtt", "the broker refused a subscription (0x%02x)",
                     (unsigned)granted_qos[i] & 0xffu);
}

static void kick_cb(lws_sorted_usec_list_t *sul)
{
    struct mosq_client *c = lws_container_of(sul, struct mosq_client, sul_kick);
    if (c->wsi && c->mosq && mosquitto_want_write(c->mosq)) lws_callback_on_writable(c->wsi);
}

/* Asks lws for POLLOUT. Inside the writeable callback a request would be lost: lws 4.1's raw
 * file role clears POLLOUT after that callback returns, so it is re-armed from a timer. A TLS
 * handshake is polled every 10 ms: libmosquitto reports want_write throughout it. */
static void request_write(struct mosq_client *c)
{
    if (!c->wsi) return;
    if (c->base.url.tls && !c->connacked)
        lws_sul_schedule(c->base.ctx, 0, &c->sul_kick, kick_cb, 10 * LWS_US_PER_MS);
    else if (c->in_writeable)
        lws_sul_schedule(c->base.ctx, 0, &c->sul_kick, kick_cb, 1);
    else
        lws_callback_on_writable(c->wsi);
}

static void retry_cb(lws_sorted_usec_list_t *sul);

/* The connection (or attempt) is over: drop the library instance and its socket, tell the
 * bridge, and schedule the next attempt. */
static void teardown(struct mosq_client *c, struct lws *self)
{
    struct lws *w = c->wsi;
    c->wsi = NULL;
    if (w) {
        lws_set_opaque_user_data(w, NULL);
        if (w != self) lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    if (c->mosq) {
        mosquitto_destroy(c->mosq);
        c->mosq = NULL;
    }
    lws_sul_cancel(&c->sul_misc);
    lws_sul_cancel(&c->sul_kick);
    c->outstanding = 0;
    c->lost = false;

    const char *why = c->reason[0] ? c->reason : "connection lost";
    int how = c->reason[0] ? c->end_how : T2M_MQTT_END_CLOSED;
    int delay_ms = t2m_mqtt_ended(&c->base, why, c->was_up, &c->attempt, c->reconnect_now, how);
    c->reconnect_now = false;
    if (delay_ms >= 0)
        lws_sul_schedule(c->base.ctx, 0, &c->sul_retry, retry_cb,
                         (lws_usec_t)delay_ms * LWS_US_PER_MS + 1);
    c->was_up = false;
    c->connacked = false;
    c->reason[0] = '\0';
}

/* After every libmosquitto call: tear down a lost connection, hand events to the bridge, ask
 * for POLLOUT when something is queued. Returns -1 when `self` (the wsi whose callback is
 * running) must be closed by lws. */
static int after_io(struct mosq_client *c, struct lws *self)
{
    int ret = 0;
    do {
        if (c->mosq && !c->lost && mosquitto_socket(c->mosq) < 0) {
            bool first = !c->reason[0];
            set_reason(c, "", "connection closed");
            if (first) c->end_how = T2M_MQTT_END_CLOSED;
            c->lost = true;
        }
        if (c->lost) {
            if (self && c->wsi == self) ret = -1;
            teardown(c, self);
        }
        t2m_mqtt_dispatch(&c->base);
    } while (c->lost);
    if (c->mosq && mosquitto_want_write(c->mosq)) request_write(c);
    return ret;
}

static void misc_cb(lws_sorted_usec_list_t *sul)
{
    struct mosq_client *c = lws_container_of(sul, struct mosq_client, sul_misc);
    if (!c->mosq) return;
    int rc = mosquitto_loop_misc(c->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        set_reason(c, "", rc == MOSQ_ERR_NO_CONN ? "connection closed" : mosq_err(rc));
        c->lost = true;
    }
    after_io(c, NULL);
    if (c->mosq) lws_sul_schedule(c->base.ctx, 0, &c->sul_misc, misc_cb, MISC_INTERVAL_US);
}

static int configure(struct mosq_client *c, struct mosquitto *mosq)
{
    struct t2m_mqtt *m = &c->base;
    int rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION,
                                  m->protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    /* "threaded" only stops mosquitto_publish from writing at once: every write happens in
     * loop_write, so on_publish never fires inside mosquitto_publish. */
    if (!rc) rc = mosquitto_threaded_set(mosq, true);
    if (!rc) rc = mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (!rc) rc = mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, m->max_inflight);
    if (!rc) rc = mosquitto_max_inflight_messages_set(mosq, (unsigned)m->max_inflight);
    if (!rc && m->will_topic)
        rc = mosquitto_will_set(mosq, m->will_topic,
                                m->will_payload ? (int)strlen(m->will_payload) : 0, m->will_payload,
                                m->will_qos0 ? 0 : 1, !m->will_no_retain);
    if (!rc && (m->username || m->password))
        rc = mosquitto_username_pw_set(mosq, m->username ? m->username : "", m->password);
    if (!rc && m->url.tls) {
        rc = mosquitto_tls_set(mosq, m->ca_file, m->ca_file ? NULL : "/etc/ssl/certs", m->cert_file,
                               m->key_file, NULL);
        if (!rc) rc = mosquitto_tls_opts_set(mosq, m->tls_verify ? 1 : 0, NULL, NULL);
        if (!rc) rc = mosquitto_tls_insecure_set(mosq, !m->tls_verify);
    }
    if (rc) return rc;
    mosquitto_connect_v5_callback_set(mosq, on_connect_v5);
    /* Only TLS needs it: with a log callback set, libmosquitto formats a debug line (and
     * takes a mutex) for every packet sent and received, ~0.5 µs per message. */
    if (m->url.tls) mosquitto_log_callback_set(mosq, on_log);
    mosquitto_disconnect_callback_set(mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(mosq, on_publish_v5);
    mosquitto_message_callback_set(mosq, on_message);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    return MOSQ_ERR_SUCCESS;
}

static void attempt(struct mosq_client *c)
{
    struct t2m_mqtt *m = &c->base;
    if (c->base.stopping || c->mosq) return;
    c->reason[0] = '\0';
    c->mosq = mosquitto_new(m->client_id, true, c);
    if (!c->mosq) {
        set_reason(c, "", "out of memory");
        teardown(c, NULL);
        return;
    }
    int rc = configure(c, c->mosq);
    if (rc) {
        set_reason(c, "client setup failed: ", mosq_err(rc));
        teardown(c, NULL);
        return;
    }
    /* Name resolution here is blocking (libmosquitto has no asynchronous resolver). */
    rc = mosquitto_connect_async(c->mosq, m->url.host, m->url.port, m->keepalive);
    if (rc) {
        set_reason(c, "", mosq_err(rc));
        teardown(c, NULL);
        t2m_mqtt_dispatch(m);
        return;
    }
    int dfd = fcntl(mosquitto_socket(c->mosq), F_DUPFD_CLOEXEC, 0);
    if (dfd < 0) {
        set_reason(c, "dup: ", strerror(errno));
        teardown(c, NULL);
        return;
    }
    lws_adopt_desc_t ad;
    memset(&ad, 0, sizeof(ad));
    ad.vh = c->vh;
    ad.type = LWS_ADOPT_RAW_FILE_DESC;
    ad.fd.filefd = dfd;
    ad.vh_prot_name = PROTO_NAME;
    ad.opaque = c;
    c->wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    if (!c->wsi) {
        close(dfd); /* lws closes a failed adoption's descriptor only for sockets */
        set_reason(c, "", "cannot add the socket to the event loop");
        teardown(c, NULL);
        return;
    }
    lws_sul_schedule(m->ctx, 0, &c->sul_misc, misc_cb, MISC_INTERVAL_US);
    request_write(c);
}

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct mosq_client *c = lws_container_of(sul, struct mosq_client, sul_retry);
    attempt(c);
}

static int lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct mosq_client *c;
    int rc;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        c = lws_get_opaque_user_data(wsi);
        if (!c || c->wsi != wsi || !c->mosq) return -1;
        /* loop_read stops after one packet when errno still says EAGAIN from an earlier call;
         * cleared, it consumes a whole burst of PUBACKs per wakeup. */
        errno = 0;
        rc = mosquitto_loop_read(c->mosq, c->base.max_inflight + 64);
        if (rc != MOSQ_ERR_SUCCESS) {
            set_reason(c, "", mosq_err(rc));
            c->lost = true;
        }
        return after_io(c, wsi);
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        c = lws_get_opaque_user_data(wsi);
        if (!c || c->wsi != wsi || !c->mosq) return -1;
        c->in_writeable = true;
        rc = MOSQ_ERR_SUCCESS;
        /* libmosquitto advances a TLS handshake only from loop_read. */
        if (c->base.url.tls && !c->connacked) rc = mosquitto_loop_read(c->mosq, 1);
        errno = 0;
        if (rc == MOSQ_ERR_SUCCESS && c->mosq)
            rc = mosquitto_loop_write(c->mosq, c->base.max_inflight + 64);
        if (rc != MOSQ_ERR_SUCCESS) {
            set_reason(c, "", mosq_err(rc));
            c->lost = true;
        }
        rc = after_io(c, wsi);
        c->in_writeable = false;
        return rc;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        c = lws_get_opaque_user_data(wsi);
        if (c && c->wsi == wsi) {
            /* lws hung up on the socket by itself (POLLHUP without data). */
            c->wsi = NULL;
            bool first = !c->reason[0];
            set_reason(c, "", "connection closed");
            if (first) c->end_how = T2M_MQTT_END_CLOSED;
            c->lost = true;
            after_io(c, NULL);
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {PROTO_NAME, lws_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static int mosq_init(struct t2m_mqtt *m, char *err, size_t errlen)
{
    struct mosq_client *c = (struct mosq_client *)m;
    if (m->protocol == 5) {
        /* config.c says why (libmosquitto aborts on an unknown MQTT 5 property); this keeps
         * every other caller of mqtt.h from it too. */
        snprintf(err, errlen, "mqtt: the libmosquitto client is used with MQTT 3.1.1 only");
        return -1;
    }
    pthread_once(&lib_once, lib_init);
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
    return 0;
}

static int mosq_start(struct t2m_mqtt *m)
{
    struct mosq_client *c = (struct mosq_client *)m;
    attempt(c);
    return T2M_MQTT_OK;
}

static int mosq_publish(struct t2m_mqtt *m, const char *topic, const void *payload, size_t len,
                        int qos, bool retain, int id)
{
    struct mosq_client *c = (struct mosq_client *)m;
    if (!c->mosq || !c->connacked) return T2M_MQTT_ENOTCONN;
    if (c->outstanding >= MAX_OUTSTANDING) return T2M_MQTT_EAGAIN;
    int mid = 0;
    int rc = mosquitto_publish(c->mosq, &mid, topic, (int)len, payload, qos, retain);
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
        c->ids[mid & 0xffff] = id;
        c->outstanding++;
        request_write(c);
        return T2M_MQTT_OK;
    case MOSQ_ERR_NO_CONN:
        return T2M_MQTT_ENOTCONN;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
        return T2M_MQTT_EINVAL;
    case MOSQ_ERR_OVERSIZE_PACKET:
        return T2M_MQTT_ETOOBIG;
    default:
        return T2M_MQTT_ERROR;
    }
}

static int mosq_subscribe(struct t2m_mqtt *m, const char *topic, int qos)
{
    struct mosq_client *c = (struct mosq_client *)m;
    if (!c->mosq || !c->connacked) return T2M_MQTT_ENOTCONN;
    int rc = mosquitto_subscribe(c->mosq, NULL, topic, qos);
    if (rc == MOSQ_ERR_SUCCESS) {
        request_write(c);
        return T2M_MQTT_OK;
    }
    return rc == MOSQ_ERR_NO_CONN ? T2M_MQTT_ENOTCONN : T2M_MQTT_EINVAL;
}

/* Sends DISCONNECT and tries to write it at once; the socket closes once it is out. */
static int mosq_unsubscribe(struct t2m_mqtt *m, const char *topic)
{
    struct mosq_client *c = (struct mosq_client *)m;
    if (!c->mosq || !c->connacked) return T2M_MQTT_ENOTCONN;
    int rc = mosquitto_unsubscribe(c->mosq, NULL, topic);
    if (rc == MOSQ_ERR_SUCCESS) {
        request_write(c);
        return T2M_MQTT_OK;
    }
    return rc == MOSQ_ERR_NO_CONN ? T2M_MQTT_ENOTCONN : T2M_MQTT_EINVAL;
}

static void send_disconnect(struct mosq_client *c)
{
    if (!c->mosq) return;
    mosquitto_disconnect(c->mosq);
    if (!c->in_writeable && c->wsi) mosquitto_loop_write(c->mosq, 1);
    if (!c->base.dispatching)
        after_io(c, NULL);
    else if (c->mosq)
        request_write(c);
}

/* A DISCONNECT goes out if the socket takes it, but the connection ends now either way: a broker
 * that stopped acknowledging may well have stopped reading too. */
static void mosq_reconnect(struct t2m_mqtt *m, const char *why)
{
    struct mosq_client *c = (struct mosq_client *)m;
    if (!c->base.started || c->base.stopping) return;
    if (c->mosq) {
        c->reconnect_now = true;
        set_reason(c, "", why);
        mosquitto_disconnect(c->mosq);
        if (!c->in_writeable && c->wsi) mosquitto_loop_write(c->mosq, 1);
        c->lost = true;
        if (!c->base.dispatching) after_io(c, NULL);
    } else {
        c->attempt = 0;
        lws_sul_schedule(m->ctx, 0, &c->sul_retry, retry_cb, 1);
    }
}

static void mosq_disconnect(struct t2m_mqtt *m)
{
    struct mosq_client *c = (struct mosq_client *)m;
    c->base.stopping = true;
    lws_sul_cancel(&c->sul_retry);
    set_reason(c, "", "disconnected on request");
    send_disconnect(c);
}

static void mosq_destroy(struct t2m_mqtt *m)
{
    struct mosq_client *c = (struct mosq_client *)m;
    c->base.stopping = true;
    lws_sul_cancel(&c->sul_retry);
    lws_sul_cancel(&c->sul_misc);
    lws_sul_cancel(&c->sul_kick);
    if (c->wsi) {
        struct lws *w = c->wsi;
        c->wsi = NULL;
        lws_set_opaque_user_data(w, NULL);
        lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    }
    if (c->mosq) {
        mosquitto_destroy(c->mosq);
        c->mosq = NULL;
    }
    if (c->vh) {
        lws_vhost_destroy(c->vh);
        c->vh = NULL;
    }
}

const struct t2m_mqtt_ops t2m_mqtt_mosquitto_ops = {
    .name = "mosquitto",
    .size = sizeof(struct mosq_client),
    .window = 100, /* libmosquitto scans its in-flight list for every PUBACK */
    .init = mosq_init,
    .start = mosq_start,
    .publish = mosq_publish,
    .subscribe = mosq_subscribe,
    .reconnect = mosq_reconnect,
    .unsubscribe = mosq_unsubscribe,
    .disconnect = mosq_disconnect,
    .destroy = mosq_destroy,
    .backend_event = NULL,
};
