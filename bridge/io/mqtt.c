/* mqtt.c - mqtt.h's entry points: option checks, URL parsing, backend selection, and the event
 * queue through which both backends reach the bridge's callbacks on the loop thread. */
#include "mqtt.h"

#include <ctype.h>
#include <limits.h>
#include <libwebsockets.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "backoff.h"
#include "text.h"
#include "jitter.h"
#include "log.h"
#include "mqtt_impl.h"

#define MQTT_MAX_PAYLOAD 268435455u /* the largest MQTT remaining length, less headers */

static const struct t2m_mqtt_ops *backend_find(const char *name)
{
    static const char *const names[] = T2M_MQTT_CLIENT_NAMES;
    static const struct t2m_mqtt_ops *const ops[] = {&t2m_mqtt_mosquitto_ops, &t2m_mqtt_paho_ops,
                                                     &t2m_mqtt_lws_ops}; /* in names' order */
    if (!name || !*name) return ops[0];
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(name, names[i]) == 0) return ops[i];
    return NULL;
}

int t2m_mqtt_backend_known(const char *name)
{
    return (name && backend_find(name)) ? 0 : -1;
}

int t2m_mqtt_url_parse(const char *url, struct t2m_mqtt_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!url || !*url) {
        snprintf(err, errlen, "mqtt.url is empty");
        return -1;
    }
    /* A bare host means tcp://host (the one parser, addr.c, wants a scheme). */
    char full[600];
    if (snprintf(full, sizeof(full), "%s%s", strstr(url, "://") ? "" : "tcp://", url) >=
        (int)sizeof(full)) {
        snprintf(err, errlen, "mqtt.url is too long");
        return -1;
    }
    char msg[200];
    if (t2m_url_check(full, false, out->host, sizeof(out->host), &out->port, &out->tls, msg,
                      sizeof(msg)) != 0) {
        snprintf(err, errlen, "mqtt.url: %s", msg);
        return -1;
    }
    return 0;
}

static char *dup_opt(const char *s, bool *oom)
{
    if (!s || !*s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = true;
    return d;
}

static void free_shared(struct t2m_mqtt *m)
{
    free(m->client_id);
    free(m->username);
    t2m_wipe_free(m->password);
    free(m->ca_file);
    free(m->cert_file);
    free(m->key_file);
    free(m->will_topic);
    free(m->will_payload);
    t2m_mqtt_evq_clear(&m->q);
    pthread_mutex_destroy(&m->q.lock);
    free(m);
}

struct t2m_mqtt *t2m_mqtt_new(struct lws_context *ctx, const struct t2m_mqtt_options *opt,
                              const struct t2m_mqtt_callbacks *cb, void *user, char *err,
                              size_t errlen)
{
    if (!ctx || !opt || !cb) {
        snprintf(err, errlen, "mqtt: missing context, options or callbacks");
        return NULL;
    }
    const struct t2m_mqtt_ops *ops = backend_find(opt->backend);
    if (!ops) {
        snprintf(err, errlen,
                 "mqtt: unknown client backend (use \"mosquitto\", \"paho\" or \"lws\")");
        return NULL;
    }
    struct t2m_mqtt_url nodes[T2M_MQTT_MAX_NODES];
    int n_nodes = 0, r;
    char one[600];
    for (const char *p = opt->url ? opt->url : ""; (r = t2m_list_next(&p, one, sizeof(one)));
         n_nodes++) {
        if (r < 0 || n_nodes == T2M_MQTT_MAX_NODES) {
            snprintf(err, errlen, "mqtt.url: at most %d nodes of at most %zu bytes",
                     T2M_MQTT_MAX_NODES, sizeof(one) - 1);
            return NULL;
        }
        if (t2m_mqtt_url_parse(one, &nodes[n_nodes], err, errlen)) return NULL;
        if (nodes[n_nodes].tls != nodes[0].tls) {
            snprintf(err, errlen, "mqtt.url: the nodes must all use TLS or none");
            return NULL;
        }
    }
    if (opt->protocol != 4 && opt->protocol != 5) {
        snprintf(err, errlen, "mqtt.protocol must be 4 (MQTT 3.1.1) or 5 (MQTT 5)");
        return NULL;
    }
    if (opt->keepalive < 0 || opt->keepalive > 65535) {
        snprintf(err, errlen, "mqtt.keepalive must be 0..65535 seconds");
        return NULL;
    }
    if (opt->will_topic && *opt->will_topic && mosquitto_pub_topic_check(opt->will_topic)) {
        snprintf(err, errlen, "mqtt: the will topic is not a valid topic name");
        return NULL;
    }
    if ((opt->cert_file && *opt->cert_file) != (opt->key_file && *opt->key_file)) {
        snprintf(err, errlen, "mqtt: cert_file and key_file must be given together");
        return NULL;
    }

    struct t2m_mqtt *m = calloc(1, ops->size);
    if (!m) {
        snprintf(err, errlen, "mqtt: out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->q.lock, NULL);
    m->ops = ops;
    m->ctx = ctx;
    m->cb = *cb;
    m->user = user;
    memcpy(m->nodes, nodes, sizeof(nodes[0]) * (size_t)n_nodes);
    m->n_nodes = n_nodes;
    m->url = nodes[0];
    bool oom = false;
    m->client_id = dup_opt(opt->client_id, &oom);
    m->username = dup_opt(opt->username, &oom);
    m->password = dup_opt(opt->password, &oom);
    m->ca_file = dup_opt(opt->ca_file, &oom);
    m->cert_file = dup_opt(opt->cert_file, &oom);
    m->key_file = dup_opt(opt->key_file, &oom);
    m->will_topic = dup_opt(opt->will_topic, &oom);
    m->will_payload =
        opt->will_topic && *opt->will_topic && opt->will_payload ? strdup(opt->will_payload) : NULL;
    if (opt->will_topic && *opt->will_topic && opt->will_payload && !m->will_payload) oom = true;
    m->tls_verify = opt->tls_verify;
    m->protocol = opt->protocol;
    /* 0 would disable keepalive, and with it the only way a silent broker is noticed. */
    m->keepalive = opt->keepalive == 0 ? 30 : (opt->keepalive < 5 ? 5 : opt->keepalive);
    m->max_inflight = opt->max_inflight <= 0
                          ? ops->window
                          : (opt->max_inflight > 65535 ? 65535 : opt->max_inflight);
    m->next_id = 1;
    m->min_valid_id = 1;
    if (oom) {
        snprintf(err, errlen, "mqtt: out of memory");
        free_shared(m);
        return NULL;
    }
    if (ops->init(m, err, errlen)) {
        ops->destroy(m);
        free_shared(m);
        return NULL;
    }
    return m;
}

int t2m_mqtt_start(struct t2m_mqtt *m)
{
    if (!m) return T2M_MQTT_EINVAL;
    if (m->started) return T2M_MQTT_OK;
    m->started = true;
    m->stopping = false;
    return m->ops->start(m);
}

int t2m_mqtt_max_inflight(const struct t2m_mqtt *m)
{
    return m->max_inflight;
}

bool t2m_mqtt_connected(const struct t2m_mqtt *m)
{
    return m && m->connected;
}

static const struct t2m_mqtt_limits no_limits = {0, 0, 2, true, 0};

const struct t2m_mqtt_limits *t2m_mqtt_limits(const struct t2m_mqtt *m)
{
    return m && m->connected ? &m->limits : &no_limits;
}

size_t t2m_mqtt_publish_size(int protocol, size_t topic_len, size_t payload_len, int qos)
{
    /* topic (length-prefixed), packet id at QoS > 0, MQTT 5's empty property length, payload */
    size_t rem = 2 + topic_len + (qos > 0 ? 2 : 0) + (protocol == 5 ? 1 : 0) + payload_len;
    size_t varint = rem < 128 ? 1 : rem < 16384 ? 2 : rem < 2097152 ? 3 : 4;
    return 1 + varint + rem;
}

int t2m_mqtt_publish(struct t2m_mqtt *m, const char *topic, const void *payload, size_t len,
                     int qos, bool retain, int *msg_id)
{
    if (!m || !topic || (len && !payload) || qos < 0 || qos > 2 || len > MQTT_MAX_PAYLOAD)
        return T2M_MQTT_EINVAL;
    if (mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS ||
        mosquitto_validate_utf8(topic, (int)strlen(topic)) != MOSQ_ERR_SUCCESS)
        return T2M_MQTT_EINVAL;
    if (!m->connected) return T2M_MQTT_ENOTCONN;
    /* SPEC 8: what the broker announced is honoured before anything reaches the library. */
    if (qos > m->limits.max_qos) qos = m->limits.max_qos;
    if (!m->limits.retain_available) retain = false;
    if (m->limits.max_packet_size &&
        t2m_mqtt_publish_size(m->protocol, strlen(topic), len, qos) > m->limits.max_packet_size)
        return T2M_MQTT_ETOOBIG;
    int id = m->next_id;
    int rc = m->ops->publish(m, topic, payload, len, qos, retain, id);
    if (rc != T2M_MQTT_OK) return rc;
    m->next_id = m->next_id == INT_MAX ? 1 : m->next_id + 1;
    if (m->next_id == 1) m->min_valid_id = 1;
    if (msg_id) *msg_id = id;
    return T2M_MQTT_OK;
}

int t2m_mqtt_subscribe(struct t2m_mqtt *m, const char *topic, int qos)
{
    if (!m || !topic || qos < 0 || qos > 2) return T2M_MQTT_EINVAL;
    if (mosquitto_sub_topic_check(topic) != MOSQ_ERR_SUCCESS ||
        mosquitto_validate_utf8(topic, (int)strlen(topic)) != MOSQ_ERR_SUCCESS)
        return T2M_MQTT_EINVAL;
    if (!m->connected) return T2M_MQTT_ENOTCONN;
    return m->ops->subscribe(m, topic, qos);
}

int t2m_mqtt_unsubscribe(struct t2m_mqtt *m, const char *topic)
{
    if (!m || !topic || mosquitto_sub_topic_check(topic) != MOSQ_ERR_SUCCESS)
        return T2M_MQTT_EINVAL;
    if (!m->connected) return T2M_MQTT_ENOTCONN;
    return m->ops->unsubscribe(m, topic);
}

void t2m_mqtt_set_password(struct t2m_mqtt *m, const char *password)
{
    if (!m) return;
    const char *old = m->password ? m->password : "";
    const char *neu = password ? password : "";
    if (strcmp(old, neu) == 0) return;
    char *copy = *neu ? strdup(neu) : NULL;
    if (*neu && !copy) {
        T2M_ERROR("mqtt", "out of memory replacing the password");
        return;
    }
    t2m_wipe_free(m->password);
    m->password = copy;
    T2M_INFO("mqtt", "password changed: reconnecting");
    m->ops->reconnect(m, "reconnecting with the new password");
}

void t2m_mqtt_reconnect(struct t2m_mqtt *m, const char *why)
{
    if (m && m->started && !m->stopping) m->ops->reconnect(m, why ? why : "reconnecting");
}

void t2m_mqtt_disconnect(struct t2m_mqtt *m)
{
    if (m) m->ops->disconnect(m);
}

void t2m_mqtt_free(struct t2m_mqtt *m)
{
    if (!m) return;
    m->ops->destroy(m);
    free_shared(m);
}

bool t2m_mqtt_evq_push(struct t2m_mqtt_evq *q, const struct t2m_mqtt_ev *ev)
{
    pthread_mutex_lock(&q->lock);
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct t2m_mqtt_ev *nev = realloc(q->ev, cap * sizeof(*nev));
        if (!nev) {
            pthread_mutex_unlock(&q->lock);
            T2M_ERROR("mqtt", "out of memory queueing an event");
            free(ev->topic); /* the event is dropped, and what it owned with it */
            free(ev->payload);
            return false;
        }
        q->ev = nev;
        q->cap = cap;
    }
    bool was_empty = q->n == 0;
    q->ev[q->n++] = *ev;
    pthread_mutex_unlock(&q->lock);
    return was_empty;
}

void t2m_mqtt_evq_clear(struct t2m_mqtt_evq *q)
{
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < q->n; i++) {
        free(q->ev[i].topic);
        free(q->ev[i].payload);
    }
    free(q->ev);
    q->ev = NULL;
    q->n = q->cap = 0;
    pthread_mutex_unlock(&q->lock);
}

static void dispatch_one(struct t2m_mqtt *m, struct t2m_mqtt_ev *ev)
{
    switch (ev->type) {
    case T2M_MQTT_EV_CONNECTED:
        if (ev->id > 0 && ev->id <= m->n_nodes && ev->id - 1 != m->node) {
            m->node = ev->id - 1; /* the backend picked another node of the cluster */
            m->url = m->nodes[m->node];
        }
        if (!m->up_since_us) t2m_mqtt_came_up(m);
        if (!m->connected) {
            m->limits = ev->has_limits ? ev->limits : no_limits;
            if (ev->has_limits)
                T2M_INFO("mqtt",
                         "broker limits: packet size %lu, receive maximum %u, QoS %d, retain %s",
                         m->limits.max_packet_size, m->limits.receive_max, m->limits.max_qos,
                         m->limits.retain_available ? "yes" : "no");
            m->connected = true;
            if (m->cb.connected) m->cb.connected(m->user);
        }
        break;
    case T2M_MQTT_EV_LOST:
        /* id 1: a backend with its own reconnect (Paho) reports the end here, unaccounted */
        if (ev->id == 1 && m->up_since_us) t2m_mqtt_note_end(m, ev->reason, false);
        if (m->connected) {
            m->connected = false;
            /* Whatever the library still confirms from before is no longer ours to report. */
            m->min_valid_id = m->next_id;
            if (m->cb.disconnected)
                m->cb.disconnected(m->user, ev->topic ? ev->topic : "connection lost");
        }
        break;
    case T2M_MQTT_EV_DELIVERED:
        if (m->connected && ev->id >= m->min_valid_id && m->cb.delivered)
            m->cb.delivered(m->user, ev->id);
        break;
    case T2M_MQTT_EV_REFUSED:
        if (m->connected && ev->id >= m->min_valid_id) {
            if (m->cb.refused)
                m->cb.refused(m->user, ev->id, ev->reason);
            else if (m->cb.delivered)
                m->cb.delivered(m->user, ev->id);
        }
        break;
    case T2M_MQTT_EV_MESSAGE:
        if (m->cb.message)
            m->cb.message(m->user, ev->topic, ev->payload ? ev->payload : "", ev->len,
                          ev->reason == 1);
        break;
    case T2M_MQTT_EV_BACKEND:
        if (m->ops->backend_event) m->ops->backend_event(m, ev);
        break;
    case T2M_MQTT_EV_SKIPPED:
        if (m->cb.skipped) m->cb.skipped(m->user, ev->topic, ev->len);
        break;
    }
    free(ev->topic);
    free(ev->payload);
}

void t2m_mqtt_dispatch(struct t2m_mqtt *m)
{
    if (m->dispatching) return;
    m->dispatching = true;
    for (;;) {
        pthread_mutex_lock(&m->q.lock);
        struct t2m_mqtt_ev *ev = m->q.ev;
        size_t n = m->q.n;
        m->q.ev = NULL;
        m->q.n = m->q.cap = 0;
        pthread_mutex_unlock(&m->q.lock);
        if (n == 0) {
            free(ev);
            break;
        }
        for (size_t i = 0; i < n; i++)
            dispatch_one(m, &ev[i]);
        free(ev);
    }
    m->dispatching = false;
}

bool t2m_mqtt_will_refused(struct t2m_mqtt *m, int reason)
{
    if (m->protocol != 5 || !m->will_topic) return false;
    if (reason == 0x9A && !m->will_no_retain) {
        m->will_no_retain = true;
        T2M_WARN("mqtt", "the broker has no retained messages: the will (%s) is sent unretained",
                 m->will_topic);
        return true;
    }
    if (reason == 0x9B && !m->will_qos0) {
        m->will_qos0 = true;
        T2M_WARN("mqtt", "the broker takes QoS 0 only: the will is sent at QoS 0");
        return true;
    }
    return false;
}

int t2m_mqtt_backoff_ms(int attempt)
{
    /* The one backoff (backoff.c), with full jitter from the kernel's random source: an unseeded
     * rand() gave every process the same sequence, and a fleet of bridges (a sharded
     * deployment) reconnected to a restarted broker in lockstep. Nothing secret rides on it. */
    double rnd = t2m_jitter();
    double s =
        t2m_backoff_delay(attempt < 0 ? 0u : (unsigned)attempt, T2M_MQTT_BACKOFF_MIN_MS / 1000.0,
                          T2M_MQTT_BACKOFF_MAX_MS / 1000.0, rnd);
    return (int)(s * 1000.0);
}

void t2m_mqtt_came_up(struct t2m_mqtt *m)
{
    m->up_since_us = lws_now_usecs();
    if (m->up_since_us == 0) m->up_since_us = 1;
}

bool t2m_mqtt_taken_over(const struct t2m_mqtt *m)
{
    return m && m->taken_over;
}

bool t2m_mqtt_settled(const struct t2m_mqtt *m)
{
    if (!m || m->taken_over || !m->connected) return false;
    return m->short_ends == 0 ||
           (m->up_since_us && lws_now_usecs() - m->up_since_us >= T2M_MQTT_STAYED_UP_US);
}

/* Connections in a row closed by the broker before they stayed up that make a take-over likely. */
#define SHORT_ENDS_SUSPECT 3

bool t2m_mqtt_note_end(struct t2m_mqtt *m, int how, bool requested)
{
    bool stayed = m->up_since_us && lws_now_usecs() - m->up_since_us >= T2M_MQTT_STAYED_UP_US;
    m->up_since_us = 0;
    if (stayed || requested)
        m->short_ends = 0;
    else if (how == T2M_MQTT_END_CLOSED || how == T2M_MQTT_SESSION_TAKEN_OVER)
        m->short_ends++;
    const char *id = m->client_id ? m->client_id : "(generated)";
    if (how == T2M_MQTT_SESSION_TAKEN_OVER) {
        if (!m->taken_over || m->short_ends == 1)
            T2M_ERROR("mqtt",
                      "another client connected with client id \"%s\" and took this session over "
                      "(MQTT 5 reason 0x8E): every bridge needs its own mqtt.client_id; backing "
                      "off, and no Home Assistant config is withdrawn from now on",
                      id);
        m->taken_over = true;
    } else if (m->short_ends == SHORT_ENDS_SUSPECT && !m->taken_over) {
        T2M_ERROR("mqtt",
                  "the broker closed %d connections in a row before they stayed up 30 s: another "
                  "client is probably using client id \"%s\" (every bridge needs its own "
                  "mqtt.client_id); backing off, and no Home Assistant config is withdrawn from "
                  "now on",
                  SHORT_ENDS_SUSPECT, id);
        m->taken_over = true;
    }
    return stayed;
}

int t2m_mqtt_ended(struct t2m_mqtt *m, const char *why, bool was_up, int *attempt, bool now,
                   int how)
{
    if (was_up && t2m_mqtt_note_end(m, how, now)) *attempt = 0;
    int delay_ms = -1;
    if (!m->stopping) delay_ms = now ? 0 : t2m_mqtt_backoff_ms((*attempt)++);
    if (was_up && delay_ms < 0)
        T2M_INFO("mqtt", "connection to %s:%d ended: %s", m->url.host, m->url.port, why);
    else if (was_up)
        T2M_WARN("mqtt", "connection to %s:%d ended: %s; reconnecting in %.1f s (retry %d)",
                 m->url.host, m->url.port, why, delay_ms / 1000.0, *attempt);
    else
        T2M_INFO("mqtt", "connecting to %s:%d failed: %s; retrying in %.3f s", m->url.host,
                 m->url.port, why, delay_ms < 0 ? 0.0 : delay_ms / 1000.0);
    if (was_up) {
        struct t2m_mqtt_ev ev = {.type = T2M_MQTT_EV_LOST, .topic = strdup(why)};
        t2m_mqtt_evq_push(&m->q, &ev);
    }
    /* A clustered broker (SPEC section 9): the next attempt goes to the next node. */
    if (!m->stopping) t2m_mqtt_next_node(m);
    return delay_ms;
}

void t2m_mqtt_next_node(struct t2m_mqtt *m)
{
    if (m->n_nodes < 2) return;
    m->node = (m->node + 1) % m->n_nodes;
    m->url = m->nodes[m->node];
    T2M_INFO("mqtt", "failing over to broker node %d of %d: %s:%d", m->node + 1, m->n_nodes,
             m->url.host, m->url.port);
}

int t2m_mqtt_node(const struct t2m_mqtt *m, char *buf, size_t n)
{
    if (!m) return 0;
    if (buf && n) {
        int w = strchr(m->url.host, ':') ? snprintf(buf, n, "[%s]:%d", m->url.host, m->url.port)
                                         : snprintf(buf, n, "%s:%d", m->url.host, m->url.port);
        if (w < 0 || (size_t)w >= n) buf[0] = '\0';
    }
    return m->n_nodes;
}
