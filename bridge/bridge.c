/* bridge.c - where an update becomes MQTT messages, and where MQTT and upstream events meet. */
#include "bridge.h"

#include <libwebsockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "discovery.h"
#include "files.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "out.h"
#include "mqtt.h"
#include "payload.h"
#include "publisher.h"
#include "request.h"
#include "session.h"
#include "state.h"
#include "stats.h"
#include "text.h"
#include "token.h"
#include "topics.h"
#include "upstream.h"

#define STOP_TICK_US (20 * 1000)
#define HEALTH_TICK_US (LWS_US_PER_SEC / 2)
#define INFO_MAX (16u << 20) /* B/bridge/info larger than this is refused with an error line */

struct instance {
    struct t2m_upstream *up;
    char seg[T2M_SEG_MAX]; /* the id as a topic segment */
    enum t2m_up_state state;
    int64_t since_ms;
    char connection_id[128];
    int err_code;
    char err_msg[256];
    int64_t token_exp;     /* the access token's exp claim as last published in B/I/status */
    int64_t token_warn_ms; /* monotonic: the last "token expires" warning, 0: none */
};

struct t2m_bridge {
    struct lws_context *ctx;
    struct t2m_config *cfg;
    struct t2m_stats stats;
    struct t2m_mqtt *mqtt;
    struct t2m_publisher *pub;
    struct t2m_state *state;
    struct t2m_http *http;
    struct lws_vhost *up_vh;
    struct instance *inst;
    size_t n_inst;
    struct t2m_session sess; /* what the session decides (core/session.c) */
    char state_topic[T2M_TOPIC_MAX + 1];
    lws_sorted_usec_list_t sul_stop, sul_state, sul_health;
    char info_topic[T2M_TOPIC_MAX + 1], request_filter[T2M_TOPIC_MAX + 1];
    char *info; /* B/bridge/info as last published (malloc'd; it grows with the instances) */
    size_t info_len;
    int64_t started_ms;
    char *config_json; /* the effective configuration, secrets left out, for bridge/info */
    struct t2m_repeat rep_request, rep_refused, rep_skipped, rep_info;
    char marker_topic[T2M_TOPIC_MAX + 1];
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    return lws_now_usecs() / 1000;
}

/* Both clocks for the cores: the wall for what they publish, the monotonic for deadlines. A step
 * of the wall clock moves no deadline; it is said in the log when noticed. */
static struct t2m_now clocks(struct t2m_bridge *b)
{
    struct t2m_now n = {wall_ms(), mono_ms()};
    int64_t step = t2m_session_clocks(&b->sess, n);
    if (step)
        T2M_WARN("bridge",
                 "the wall clock stepped by %+.1f s: payload times follow it, no deadline moves "
                 "(they run on the monotonic clock)",
                 (double)step / 1000.0);
    return n;
}

static void run(struct t2m_bridge *b, struct t2m_sess_out *o);

/* What the session core decides on: the shells' state right now. */
static struct t2m_sess_view view(const struct t2m_bridge *b)
{
    struct t2m_sess_view v = {
        .connected = t2m_mqtt_connected(b->mqtt),
        .settled = t2m_mqtt_settled(b->mqtt),
        .taken_over = t2m_mqtt_taken_over(b->mqtt),
        .idle = t2m_publisher_idle(b->pub),
        .stalled_ms = t2m_publisher_stalled_ms(b->pub),
    };
    for (size_t i = 0; i < b->n_inst; i++)
        v.auth_failed |= b->inst[i].state == T2M_UP_AUTH_FAILED;
    return v;
}

/* Pauses every upstream while the publisher is congested (connected but behind). */
static void check_congestion(struct t2m_bridge *b)
{
    struct t2m_sess_out o = {.n = 0};
    t2m_session_congested(&b->sess, t2m_publisher_congested(b->pub), &o);
    run(b, &o);
}

static void on_resume(void *user)
{
    struct t2m_bridge *b = user;
    struct t2m_sess_out o = {.n = 0};
    t2m_session_resume(&b->sess, &o);
    run(b, &o);
}

static void publish(struct t2m_bridge *b, const char *topic, const char *payload, size_t len, int q,
                    bool retain)
{
    if (t2m_publisher_publish(b->pub, topic, payload, len, q, retain) != 0)
        T2M_ERROR("bridge", "out of memory queueing %s", topic);
}

/* ---- instance status ---- */

/* B/I/status, or (with_id) the same object with "id" first, as the status page shows it. */
static size_t render_status(struct t2m_bridge *b, size_t i, char *buf, size_t n, bool with_id)
{
    struct instance *in = &b->inst[i];
    char payload[1024];
    size_t len = t2m_payload_status(payload, sizeof(payload), t2m_upstream_state_name(in->state),
                                    in->since_ms, in->connection_id, in->err_code, in->err_msg,
                                    t2m_upstream_token_exp(in->up) * 1000, &b->cfg->units.resolved);
    if (!len) return 0;
    struct t2m_out o = {buf, n, 0, false};
    if (with_id) {
        const char *id = b->cfg->instances[i].id;
        t2m_out_str(&o, "{\"id\":");
        t2m_out_json(&o, id, strlen(id));
        t2m_out_str(&o, ",");
        t2m_out_put(&o, payload + 1, len - 1); /* the status without its '{' */
    } else {
        t2m_out_put(&o, payload, len);
    }
    return t2m_out_finish(&o);
}

static void publish_status(struct t2m_bridge *b, size_t i)
{
    struct instance *in = &b->inst[i];
    char topic[T2M_TOPIC_MAX + 1];
    char payload[1024];
    if (t2m_topic_join(topic, sizeof(topic), 3, b->cfg->mqtt.base_topic, in->seg, "status") < 0)
        return; /* cannot happen: the configuration checked the room */
    in->token_exp = t2m_upstream_token_exp(in->up);
    size_t n = render_status(b, i, payload, sizeof(payload), false);
    if (n) publish(b, topic, payload, n, 1, true);
    if (t2m_http_live_clients(b->http) && (n = render_status(b, i, payload, sizeof(payload), true)))
        t2m_http_broadcast(b->http, "instance", payload, n);
}

static void on_up_state(void *user, unsigned idx, enum t2m_up_state s, const char *connection_id,
                        int code, const char *message)
{
    struct t2m_bridge *b = user;
    struct instance *in = &b->inst[idx];
    in->state = s;
    in->since_ms = wall_ms();
    snprintf(in->connection_id, sizeof(in->connection_id), "%s",
             connection_id ? connection_id : "");
    in->err_code = code;
    snprintf(in->err_msg, sizeof(in->err_msg), "%s", message ? message : "");
    publish_status(b, idx);
}

/* ---- the state core's actions ---- */

static void on_action(void *user, const struct t2m_action *a)
{
    struct t2m_bridge *b = user;
    if (a->kind == T2M_ACT_VIEW_DEVICE || a->kind == T2M_ACT_VIEW_REMOVED) {
        t2m_http_broadcast(b->http, a->kind == T2M_ACT_VIEW_DEVICE ? "device" : "removed",
                           a->payload, a->len);
        return;
    }
    if (a->urgent && t2m_publisher_publish_urgent(b->pub, a->topic, a->payload, a->len, a->qos,
                                                  a->retain) == T2M_MQTT_OK)
        return;
    publish(b, a->topic, a->payload, a->len, a->qos, a->retain);
}

static void state_cb(lws_sorted_usec_list_t *sul);

/* One timer serves every deadline of the core: its earliest. */
static void state_arm(struct t2m_bridge *b)
{
    int64_t t = t2m_state_next_deadline(b->state);
    if (t == INT64_MAX) {
        lws_sul_cancel(&b->sul_state);
        return;
    }
    int64_t wait = t - mono_ms();
    lws_sul_schedule(b->ctx, 0, &b->sul_state, state_cb, wait > 0 ? (lws_usec_t)wait * 1000 : 1);
}

static void state_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_bridge *b = lws_container_of(sul, struct t2m_bridge, sul_state);
    t2m_state_tick(b->state, clocks(b));
    state_arm(b);
    check_congestion(b);
}

static int emit_bridge_config(void *user, const char *topic, const char *payload, size_t len)
{
    struct t2m_bridge *b = user;
    return t2m_publisher_publish_urgent(b->pub, topic, payload, len, 1, true) == T2M_MQTT_OK ? 0
                                                                                             : 1;
}

static void send_bridge_discovery(struct t2m_bridge *b)
{
    if (!b->cfg->homeassistant.enabled) return;
    const char *ids[b->n_inst ? b->n_inst : 1];
    for (size_t i = 0; i < b->n_inst; i++)
        ids[i] = b->cfg->instances[i].id;
    t2m_discovery_bridge(t2m_state_discovery(b->state), ids, b->n_inst, emit_bridge_config, b);
}

static void on_update(void *user, unsigned idx, const struct t2m_update *u)
{
    struct t2m_bridge *b = user;
    b->stats.updates_received++;
    if (u->rejected) b->stats.fields_rejected += (uint64_t)__builtin_popcount(u->rejected);
    t2m_state_update(b->state, idx, u, clocks(b));
    state_arm(b);
    check_congestion(b);
}

/* ---- MQTT events ---- */

/* Every subscription of the bridge is at QoS 0. Its session is clean, so nothing is queued for
 * it between connections and QoS 1 would buy nothing; and QoS 0 keeps the broker's side of a
 * subscription transient: RabbitMQ 3.10 backs a QoS 1 subscription with a durable queue on the
 * node the client is connected to, and while that node is down no other node of the cluster
 * lets the same client id subscribe ("home node ... of durable queue ... is down"): the
 * fail-over of SPEC section 9 would end in a reconnect loop (tests/integration/test_scale.py,
 * RabbitMQCluster). */
enum { SUB_QOS = 0 };

/* SPEC section 2.1: the broker is the bridge's memory. Its own retained positions and trips are
 * read back on every connect; a marker published after the SUBSCRIBE comes back once the broker
 * has delivered them all, and the subscriptions end (the bridge's own publishes would echo).
 * True when every subscription and the marker went. */
static bool readback_subscribe(struct t2m_bridge *b)
{
    char topics[T2M_READBACK_TOPICS][T2M_TOPIC_MAX + 1];
    size_t n = t2m_state_readback_topics(b->state, topics);
    bool ok = n > 0;
    for (size_t i = 0; i <= n && ok; i++)
        ok = t2m_mqtt_subscribe(b->mqtt, i < n ? topics[i] : b->marker_topic, SUB_QOS) ==
             T2M_MQTT_OK;
    if (!ok) {
        T2M_WARN("bridge", "cannot read the retained state back from the broker");
        return false;
    }
    t2m_publisher_publish_urgent(b->pub, b->marker_topic, "readback", 8, 1, false);
    return true;
}

/* on_marker: the marker came back, so everything retained before it was read (SPEC 8); else
 * the read-back went quiet. */
static void readback_end(struct t2m_bridge *b, bool on_marker, size_t n_read)
{
    char topics[T2M_READBACK_TOPICS][T2M_TOPIC_MAX + 1];
    size_t n = t2m_state_readback_topics(b->state, topics);
    /* Left subscribed, the bridge would read its own publishes back for the rest of the
     * connection: a failure other than a lost connection (which ends them anyway) is said. */
    int rc = T2M_MQTT_OK;
    for (size_t i = 0; i <= n; i++) {
        int r = t2m_mqtt_unsubscribe(b->mqtt, i < n ? topics[i] : b->marker_topic);
        if (r != T2M_MQTT_OK && r != T2M_MQTT_ENOTCONN) rc = r;
    }
    if (rc != T2M_MQTT_OK)
        T2M_WARN("bridge",
                 "cannot end the read-back's subscriptions (error %d): its own "
                 "messages come back until the next connection",
                 rc);
    if (!on_marker)
        T2M_WARN("bridge",
                 "read-back incomplete: no retained message for %d s and the marker did not come "
                 "back (the broker dropped messages? mosquitto: raise max_queued_messages)",
                 T2M_SESS_READBACK_QUIET_MS / 1000);
    T2M_INFO("bridge", "read back %zu retained messages; %zu devices known", n_read,
             t2m_state_count(b->state));
    t2m_state_readback_done(b->state, clocks(b));
    t2m_http_broadcast_state(b->http); /* the page sees what it brought */
}

/* ---- bridge/info and requests (SPEC section 2.3) ---- */

struct info_ctx {
    struct t2m_bridge *b;
    const char **ids, **states;
};

static size_t render_info(void *ctx, char *buf, size_t n)
{
    const struct info_ctx *c = ctx;
    struct t2m_bridge *b = c->b;
    return t2m_payload_info(buf, n, T2M_VERSION, b->started_ms, c->ids, c->states, b->n_inst,
                            t2m_state_count(b->state), b->config_json, &b->cfg->units.resolved);
}

/* Renders B/bridge/info and publishes it when it changed (force: even if not); the session
 * decides when (at most once a second). */
static void info_publish(struct t2m_bridge *b, bool force)
{
    if (!t2m_mqtt_connected(b->mqtt)) return;
    const char *ids[b->n_inst ? b->n_inst : 1], *states[b->n_inst ? b->n_inst : 1];
    for (size_t i = 0; i < b->n_inst; i++) {
        ids[i] = b->cfg->instances[i].id;
        states[i] = t2m_upstream_state_name(b->inst[i].state);
    }
    /* Hundreds of instances make it large: the buffer grows until it fits (no silent loss). */
    struct info_ctx c = {b, ids, states};
    size_t n;
    char *buf = t2m_render_grow(render_info, &c, 0, 16384, INFO_MAX, &n);
    if (!buf) {
        if (t2m_repeat_hit(&b->rep_info, mono_ms()) == 1)
            T2M_ERROR("bridge", "B/bridge/info does not fit in %u MiB: not published",
                      INFO_MAX >> 20);
        return;
    }
    if (b->info_len == n && memcmp(b->info, buf, n) == 0 && !force) {
        free(buf);
        return;
    }
    free(b->info);
    b->info = buf;
    b->info_len = n;
    t2m_session_info_published(&b->sess, mono_ms());
    publish(b, b->info_topic, buf, n, 1, true);
}

static void respond(struct t2m_bridge *b, const char *cmd, const struct t2m_request *r,
                    const char *data, const char *error)
{
    char topic[T2M_TOPIC_MAX + 1], small[1024];
    if (t2m_topic_join(topic, sizeof(topic), 3, b->cfg->mqtt.bridge_topic, "response", cmd) < 0)
        return;
    size_t need = (data ? strlen(data) : 0) + sizeof(r->transaction) + 512;
    char *buf = need <= sizeof(small) ? small : malloc(need);
    if (!buf) return;
    size_t n = t2m_request_response(buf, need, r, data, error);
    if (n) publish(b, topic, buf, n, 1, false);
    if (buf != small) free(buf);
}

/* healthy / reason as /healthz says them */
static const char *unhealthy_reason(const struct t2m_bridge *b)
{
    struct t2m_sess_view v = view(b);
    return t2m_session_unhealthy(&b->sess, &v);
}

/* The command of a topic under B/bridge/request/ (requests on), else NULL. */
static const char *request_cmd(const struct t2m_bridge *b, const char *topic)
{
    size_t pl = strlen(b->request_filter) - 1; /* B/bridge/request/ */
    if (!topic || !b->cfg->mqtt.requests || strncmp(topic, b->request_filter, pl) != 0 ||
        !topic[pl])
        return NULL;
    return topic + pl;
}

static void on_request(struct t2m_bridge *b, const char *cmd, const void *payload, size_t len)
{
    struct t2m_request r;
    struct t2m_reply reply;
    struct t2m_sess_view v = view(b);
    if (t2m_session_request(&b->sess, b->state, cmd, payload, len, &v, clocks(b), &r, &reply) !=
            0 &&
        t2m_repeat_hit(&b->rep_request, mono_ms()) == 1)
        T2M_WARN("bridge", "request %s refused: %s", cmd, reply.error);
    respond(b, cmd, &r, reply.data, reply.error[0] ? reply.error : NULL);
    free(reply.data);
    state_arm(b);
    check_congestion(b);
}

static void on_mqtt_connected(void *user)
{
    struct t2m_bridge *b = user;
    char node[300];
    t2m_mqtt_node(b->mqtt, node, sizeof(node));
    T2M_INFO("mqtt", "connected to broker node %s", node);
    t2m_publisher_set_receive_max(b->pub, t2m_mqtt_limits(b->mqtt)->receive_max);
    struct t2m_sess_out o = {.n = 0};
    t2m_session_connected(&b->sess, mono_ms(), &o);
    run(b, &o);
}

static void on_mqtt_disconnected(void *user, const char *reason)
{
    struct t2m_bridge *b = user;
    if (b->sess.stopping) /* the clean stop's own disconnect: nothing went wrong */
        T2M_INFO("mqtt", "disconnected: %s", reason ? reason : "unknown");
    else
        T2M_WARN("mqtt", "connection lost: %s", reason ? reason : "unknown");
    struct t2m_sess_out o = {.n = 0};
    t2m_session_disconnected(&b->sess, &o);
    run(b, &o);
}

/* SPEC 8: a refused publish (PUBACK reason >= 0x80, e.g. 0x87 not authorized) is counted,
 * logged once a minute, and frees its slot like a delivery. */
static void on_mqtt_refused(void *user, int msg_id, int reason)
{
    struct t2m_bridge *b = user;
    b->stats.dropped[T2M_DROP_BROKER_REFUSED]++;
    uint64_t n = t2m_repeat_hit(&b->rep_refused, mono_ms());
    if (n)
        T2M_WARN("mqtt", "the broker refused %llu message(s) (reason code 0x%02x)",
                 (unsigned long long)n, (unsigned)reason & 0xffu);
    t2m_publisher_on_delivered(b->pub, msg_id);
}

/* SPEC 8: a packet from the broker too large for the bridge is skipped and counted (another
 * integration's huge retained config under a subscribed filter), never a reconnect. */
static void on_mqtt_skipped(void *user, const char *topic, size_t len)
{
    struct t2m_bridge *b = user;
    b->stats.mqtt_skipped++;
    uint64_t n = t2m_repeat_hit(&b->rep_skipped, mono_ms());
    if (n)
        T2M_WARN("mqtt",
                 "skipped %llu message(s) from the broker over %u KiB (the latest %zu bytes)",
                 (unsigned long long)n, T2M_MQTT_IN_MAX / 1024u, len);
    /* SPEC 2.3: every request gets exactly one response, a skipped one its error */
    const char *cmd = request_cmd(b, topic);
    if (cmd) on_request(b, cmd, NULL, len);
}

static void on_mqtt_delivered(void *user, int msg_id)
{
    struct t2m_bridge *b = user;
    if (t2m_session_delivered(&b->sess)) T2M_INFO("mqtt", "deliveries acknowledged again");
    t2m_publisher_on_delivered(b->pub, msg_id);
}

/* SPEC 7: a new access token (refreshed, or re-read on SIGHUP) shows its expiry in B/I/status
 * at once; one that ends within the hour with nothing to refresh it is warned about, at
 * start-up and then hourly. */
static void check_tokens(struct t2m_bridge *b)
{
    int64_t wall_s = wall_ms() / 1000;
    for (size_t i = 0; i < b->n_inst; i++) {
        struct instance *in = &b->inst[i];
        int64_t exp = t2m_upstream_token_exp(in->up);
        if (exp != in->token_exp) publish_status(b, i);
        const char *rf = b->cfg->instances[i].refresh_token_file;
        if (t2m_token_warn_due(exp, rf && *rf, wall_s, in->token_warn_ms, mono_ms())) {
            in->token_warn_ms = mono_ms();
            if (exp <= wall_s)
                T2M_WARN("bridge",
                         "instance %s: the access token expired %lld min ago and no "
                         "refresh_token_file is set: the platform will refuse it (401); "
                         "renew it or configure a refresh token",
                         b->cfg->instances[i].id, (long long)((wall_s - exp) / 60));
            else
                T2M_WARN("bridge",
                         "instance %s: the access token expires in %lld min and no "
                         "refresh_token_file is set: the bridge stops receiving then; renew it "
                         "or configure a refresh token",
                         b->cfg->instances[i].id, (long long)((exp - wall_s + 59) / 60));
        }
    }
}

static void health_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_bridge *b = lws_container_of(sul, struct t2m_bridge, sul_health);
    struct t2m_sess_view v = view(b);
    struct t2m_sess_out o = {.n = 0};
    t2m_session_tick(&b->sess, mono_ms(), &v, &o);
    run(b, &o);
    check_tokens(b);
    lws_sul_schedule(b->ctx, 0, &b->sul_health, health_cb, HEALTH_TICK_US);
}

static void on_mqtt_message(void *user, const char *topic, const void *payload, size_t len,
                            bool retained)
{
    struct t2m_bridge *b = user;
    struct t2m_sess_out o = {.n = 0};
    if (b->sess.reading_back) {
        if (strcmp(topic, b->marker_topic) == 0) {
            t2m_session_marker(&b->sess, mono_ms(), &o);
            run(b, &o);
            return;
        }
        if (t2m_session_is_memory(&b->sess, retained) &&
            t2m_state_retained(b->state, topic, payload, len, clocks(b))) {
            t2m_session_readback_progress(&b->sess, mono_ms());
            state_arm(b);
            return;
        }
    }
    const char *cmd = request_cmd(b, topic);
    if (cmd) {
        on_request(b, cmd, payload, len);
        return;
    }
    if (b->cfg->homeassistant.enabled && strcmp(topic, b->cfg->homeassistant.status_topic) == 0 &&
        len == 6 && memcmp(payload, "online", 6) == 0) {
        t2m_session_ha_online(&b->sess, &o);
        if (o.n) T2M_INFO("bridge", "Home Assistant is online: re-sending discovery and positions");
        run(b, &o);
    }
}

/* ---- HTTP ---- */

static size_t render_healthz(void *user, char *buf, size_t n, int *status)
{
    struct t2m_bridge *b = user;
    const char *reason = unhealthy_reason(b);
    const char *ids[b->n_inst ? b->n_inst : 1], *states[b->n_inst ? b->n_inst : 1];
    for (size_t i = 0; i < b->n_inst; i++) {
        ids[i] = b->cfg->instances[i].id;
        states[i] = t2m_upstream_state_name(b->inst[i].state);
    }
    *status = reason ? 503 : 200;
    char node[300];
    t2m_mqtt_node(b->mqtt, node, sizeof(node));
    return t2m_payload_healthz(buf, n, reason, t2m_mqtt_connected(b->mqtt), node,
                               t2m_state_count(b->state), ids, states, b->n_inst);
}

static size_t render_metrics(void *user, char *buf, size_t n, int *status)
{
    struct t2m_bridge *b = user;
    struct t2m_metrics_instance mi[b->n_inst ? b->n_inst : 1];
    for (size_t i = 0; i < b->n_inst; i++) {
        mi[i].id = b->cfg->instances[i].id;
        mi[i].state = (int)b->inst[i].state;
        mi[i].token_expiry = t2m_upstream_token_exp(b->inst[i].up);
    }
    char node[300];
    t2m_mqtt_node(b->mqtt, node, sizeof(node));
    struct t2m_metrics_snapshot s = {
        .stats = &b->stats,
        .mqtt_connected = t2m_mqtt_connected(b->mqtt),
        .offline_queue_depth = t2m_publisher_queued(b->pub),
        .devices = t2m_state_count(b->state),
        .instances = mi,
        .n_instances = b->n_inst,
        .broker_node = node,
    };
    *status = 200;
    return t2m_metrics_render(buf, n, &s);
}

/* GET /api/state, and the first event of GET /api/events (SPEC 7): what the status page shows.
 * No secret: the instances' states and the devices' states as published. */
static size_t render_state(void *user, char *buf, size_t n, int *status)
{
    struct t2m_bridge *b = user;
    if (!buf || n == 0) return 0;
    struct t2m_out o = {buf, n, 0, false};
    t2m_out_str(&o, "{\"version\":\"" T2M_VERSION "\",\"mqtt\":");
    t2m_out_str(&o, t2m_mqtt_connected(b->mqtt) ? "\"connected\"" : "\"disconnected\"");
    t2m_out_str(&o, ",\"instances\":[");
    for (size_t i = 0; i < b->n_inst && !o.full; i++) {
        if (i) t2m_out_str(&o, ",");
        size_t len = o.full ? 0 : render_status(b, i, o.buf + o.len, o.n - o.len, true);
        if (!len)
            o.full = true;
        else
            o.len += len;
    }
    t2m_out_str(&o, "],\"devices\":");
    size_t len = o.full ? 0 : t2m_state_render_devices(b->state, -1, o.buf + o.len, o.n - o.len);
    if (!len)
        o.full = true;
    else
        o.len += len;
    t2m_out_str(&o, "}");
    *status = 200;
    return t2m_out_finish(&o);
}

/* ---- life cycle ---- */

struct t2m_bridge *t2m_bridge_new(struct lws_context *ctx, struct t2m_config *cfg, char *err,
                                  size_t errlen)
{
    struct t2m_bridge *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->ctx = ctx;
    b->cfg = cfg;
    if (t2m_topic_join(b->state_topic, sizeof(b->state_topic), 2, cfg->mqtt.bridge_topic, "state") <
        0) {
        snprintf(err, errlen, "mqtt.base_topic too long");
        free(b);
        return NULL;
    }

    struct t2m_session_options so = {.homeassistant = cfg->homeassistant.enabled,
                                     .requests = cfg->mqtt.requests,
                                     .keepalive_s = cfg->mqtt.keepalive};
    t2m_session_init(&b->sess, &so);
    b->state = t2m_state_new(cfg, &b->stats, T2M_VERSION, on_action, b);
    b->started_ms = wall_ms();
    b->config_json = t2m_config_json(cfg);
    if (t2m_topic_join(b->info_topic, sizeof(b->info_topic), 2, cfg->mqtt.bridge_topic, "info") <
            0 ||
        t2m_topic_join(b->request_filter, sizeof(b->request_filter), 3, cfg->mqtt.bridge_topic,
                       "request", "#") < 0) {
        snprintf(err, errlen, "mqtt.base_topic too long");
        goto fail;
    }
    /* Not retained, inside the bridge's own topics, unique per process. */
    char pid[24];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    if (t2m_topic_join(b->marker_topic, sizeof(b->marker_topic), 3, cfg->mqtt.bridge_topic,
                       "readback", pid) < 0) {
        snprintf(err, errlen, "mqtt.base_topic too long");
        goto fail;
    }
    struct t2m_mqtt_options mo = {
        .backend = cfg->mqtt.client,
        .url = cfg->mqtt.url,
        .client_id = cfg->mqtt.client_id,
        .username = cfg->mqtt.username,
        .password = cfg->mqtt.password,
        .ca_file = cfg->mqtt.ca_file,
        .cert_file = cfg->mqtt.cert_file,
        .key_file = cfg->mqtt.key_file,
        .tls_verify = cfg->mqtt.tls_verify,
        .protocol = cfg->mqtt.protocol,
        .keepalive = cfg->mqtt.keepalive,
        .will_topic = b->state_topic,
        .will_payload = "offline",
        /* max_inflight 0: the backend's window (mqtt_*.c); the broker's Receive Maximum lowers
         * it after CONNACK */
    };
    struct t2m_mqtt_callbacks mcb = {on_mqtt_connected, on_mqtt_disconnected, on_mqtt_delivered,
                                     on_mqtt_refused,   on_mqtt_message,      on_mqtt_skipped};
    b->mqtt = t2m_mqtt_new(ctx, &mo, &mcb, b, err, errlen);
    if (!b->state || !b->mqtt) goto fail;
    /* While connected, back-pressure must slow the upstream before the queue's history bound
     * would drop anything: pause at half of offline_queue (at least 256, at most 20,000). */
    size_t high = (size_t)cfg->mqtt.offline_queue / 2;
    high = high < 256 ? 256 : high > 20000 ? 20000 : high;
    struct t2m_publisher_options po = {
        .offline_queue = (size_t)cfg->mqtt.offline_queue,
        .window = (size_t)t2m_mqtt_max_inflight(b->mqtt),
        .high_water = high,
        .low_water = high / 4,
        .now_ms = mono_ms,
    };
    b->pub = t2m_publisher_new(b->mqtt, &po, &b->stats, on_resume, b);
    if (!b->pub) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    b->up_vh = t2m_upstream_vhost(ctx, cfg, err, errlen);
    if (!b->up_vh) goto fail;
    b->n_inst = cfg->n_instances;
    b->inst = calloc(b->n_inst ? b->n_inst : 1, sizeof(*b->inst));
    if (!b->inst) goto fail;
    struct t2m_upstream_callbacks ucb = {on_update, on_up_state};
    for (size_t i = 0; i < b->n_inst; i++) {
        const char *id = cfg->instances[i].id;
        if (t2m_topic_segment(b->inst[i].seg, sizeof(b->inst[i].seg), id, strlen(id)) < 0) {
            snprintf(err, errlen, "instance id \"%s\" cannot be a topic segment", id);
            goto fail;
        }
        b->inst[i].up = t2m_upstream_new(ctx, b->up_vh, cfg, (unsigned)i, &ucb, b, &b->stats);
        if (!b->inst[i].up) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }

    if (cfg->http.listen && cfg->http.listen[0]) {
        struct t2m_http_handlers h = {.healthz = render_healthz,
                                      .metrics = render_metrics,
                                      .state = render_state,
                                      .ui = cfg->http.ui,
                                      .ui_password = cfg->http.ui_password,
                                      .user = b};
        b->http = t2m_http_new(ctx, cfg->http.listen, &h, err, errlen);
        if (!b->http) goto fail;
    }
    return b;
fail:
    t2m_bridge_free(b);
    return NULL;
}

int t2m_bridge_start(struct t2m_bridge *b)
{
    lws_sul_schedule(b->ctx, 0, &b->sul_health, health_cb, HEALTH_TICK_US);
    t2m_mqtt_start(b->mqtt);
    for (size_t i = 0; i < b->n_inst; i++)
        t2m_upstream_start(b->inst[i].up);
    return 0;
}

void t2m_bridge_reload(struct t2m_bridge *b)
{
    T2M_INFO("bridge", "SIGHUP: re-reading token and password files");
    for (size_t i = 0; i < b->n_inst; i++)
        t2m_upstream_reload(b->inst[i].up);
    const char *pf = b->cfg->mqtt.password_file;
    if (pf && pf[0]) {
        char err[512];
        char *pw = t2m_config_read_secret(pf, err, sizeof(err));
        if (!pw) {
            T2M_WARN("bridge", "%s", err);
            return;
        }
        if (!b->cfg->mqtt.password || strcmp(pw, b->cfg->mqtt.password) != 0) {
            T2M_INFO("bridge", "MQTT password changed, reconnecting");
            t2m_mqtt_set_password(b->mqtt, pw);
            t2m_wipe_free(b->cfg->mqtt.password);
            b->cfg->mqtt.password = pw;
        } else {
            t2m_wipe_free(pw);
        }
    }
}

static void stop_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_bridge *b = lws_container_of(sul, struct t2m_bridge, sul_stop);
    struct t2m_sess_view v = view(b);
    struct t2m_sess_out o = {.n = 0};
    t2m_session_stop_tick(&b->sess, mono_ms(), &v, &o);
    run(b, &o);
}

void t2m_bridge_stop(struct t2m_bridge *b)
{
    if (b->sess.stopping) return;
    T2M_INFO("bridge", "stopping: publishing offline and flushing");
    struct t2m_sess_view v = view(b);
    struct t2m_sess_out o = {.n = 0};
    t2m_session_stop(&b->sess, mono_ms(), &v, &o);
    run(b, &o);
}

bool t2m_bridge_done(const struct t2m_bridge *b)
{
    return b->sess.done;
}

/* ---- the session core's actions ---- */

static void run(struct t2m_bridge *b, struct t2m_sess_out *o)
{
    /* o may grow while it runs: READBACK_START appends what follows the read-back's start */
    for (size_t i = 0; i < o->n; i++) {
        const struct t2m_sess_action a = o->a[i];
        switch (a.kind) {
        case T2M_SA_AVAILABILITY: {
            const char *v = a.flag ? "online" : "offline";
            if (a.n == 0 && t2m_publisher_publish_urgent(b->pub, b->state_topic, v, strlen(v), 1,
                                                         true) == T2M_MQTT_OK)
                break;
            publish(b, b->state_topic, v, strlen(v), 1, true);
            break;
        }
        case T2M_SA_SUB_HA_STATUS:
            t2m_mqtt_subscribe(b->mqtt, b->cfg->homeassistant.status_topic, SUB_QOS);
            break;
        case T2M_SA_SUB_REQUESTS:
            t2m_mqtt_subscribe(b->mqtt, b->request_filter, SUB_QOS);
            break;
        case T2M_SA_FORGET_WITHDRAW:
            t2m_state_withdraw(b->state, false);
            break;
        case T2M_SA_READBACK_START:
            t2m_session_readback_begun(&b->sess, readback_subscribe(b), mono_ms(), o);
            break;
        case T2M_SA_STATUSES:
            for (size_t k = 0; k < b->n_inst; k++)
                publish_status(b, k);
            break;
        case T2M_SA_HOLD_DISCOVERY:
            t2m_state_hold_discovery(b->state, a.flag);
            break;
        case T2M_SA_DISCOVERY:
            send_bridge_discovery(b);
            break;
        case T2M_SA_STATE_CONNECTED:
            t2m_state_connected(b->state, a.flag, clocks(b));
            break;
        case T2M_SA_QUEUE_GO:
            t2m_publisher_on_connected(b->pub);
            break;
        case T2M_SA_QUEUE_OFFLINE:
            t2m_publisher_on_disconnected(b->pub);
            break;
        case T2M_SA_INFO:
            info_publish(b, a.flag);
            break;
        case T2M_SA_READBACK_END:
            readback_end(b, a.flag, (size_t)a.n);
            break;
        case T2M_SA_WITHDRAW:
            t2m_state_withdraw(b->state, true);
            break;
        case T2M_SA_TAKEN_OVER:
            T2M_WARN("bridge",
                     "no Home Assistant config withdrawn: another client uses client id \"%s\" "
                     "and its configs look like ours",
                     b->cfg->mqtt.client_id);
            break;
        case T2M_SA_RECONNECT:
            T2M_WARN("mqtt",
                     "no acknowledgement for %.1f s with %zu messages in flight: the broker "
                     "connection is stalled; reconnecting",
                     (double)a.n / 1000.0, t2m_publisher_inflight(b->pub));
            t2m_mqtt_reconnect(b->mqtt, "deliveries stalled");
            break;
        case T2M_SA_REPUBLISH:
            t2m_state_republish(b->state, clocks(b));
            break;
        case T2M_SA_PAUSE:
        case T2M_SA_RESUME:
            for (size_t k = 0; k < b->n_inst; k++)
                t2m_upstream_pause(b->inst[k].up, a.kind == T2M_SA_PAUSE);
            break;
        case T2M_SA_STOP_UPSTREAMS:
            for (size_t k = 0; k < b->n_inst; k++)
                t2m_upstream_stop(b->inst[k].up);
            lws_sul_cancel(&b->sul_state);
            lws_sul_cancel(&b->sul_health);
            break;
        case T2M_SA_FLUSH_RECONNECT:
            t2m_mqtt_reconnect(b->mqtt, "stopping: one more attempt to deliver what is queued");
            break;
        case T2M_SA_STOP_WAIT:
            lws_sul_schedule(b->ctx, 0, &b->sul_stop, stop_cb, STOP_TICK_US);
            break;
        case T2M_SA_UNDELIVERED:
            T2M_WARN("bridge",
                     "stopping with %zu messages undelivered (%zu queued, %zu in flight): %s "
                     "within %d s; they are discarded",
                     t2m_publisher_queued(b->pub) + t2m_publisher_inflight(b->pub),
                     t2m_publisher_queued(b->pub), t2m_publisher_inflight(b->pub),
                     a.flag ? "the broker did not acknowledge them" : "the broker was unreachable",
                     T2M_SESS_FLUSH_MS / 1000);
            if (a.flag) t2m_publisher_publish_urgent(b->pub, b->state_topic, "offline", 7, 1, true);
            break;
        case T2M_SA_DISCONNECT:
            t2m_mqtt_disconnect(b->mqtt);
            break;
        case T2M_SA_DONE:
            lws_cancel_service(b->ctx);
            break;
        }
    }
}

void t2m_bridge_free(struct t2m_bridge *b)
{
    if (!b) return;
    lws_sul_cancel(&b->sul_stop);
    lws_sul_cancel(&b->sul_state);
    lws_sul_cancel(&b->sul_health);
    t2m_http_free(b->http);
    for (size_t i = 0; b->inst && i < b->n_inst; i++)
        t2m_upstream_free(b->inst[i].up);
    free(b->inst);
    t2m_mqtt_free(b->mqtt);
    t2m_publisher_free(b->pub);
    t2m_state_free(b->state);
    free(b->config_json);
    free(b->info);
    free(b);
}
