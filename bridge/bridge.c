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
#include "owntracks.h"
#include "payload.h"
#include "publisher.h"
#include "request.h"
#include "state.h"
#include "stats.h"
#include "token.h"
#include "topics.h"
#include "upstream.h"

#define FLUSH_TIMEOUT_US (5 * LWS_US_PER_SEC) /* SPEC section 7: flush at most 5 s */
#define STOP_TICK_US (20 * 1000)
#define HEALTH_TICK_US (LWS_US_PER_SEC / 2)
#define READBACK_QUIET_MS 5000
#define INFO_MAX (16u << 20) /* B/bridge/info larger than this is refused with an error line */
#define WITHDRAW_SETTLE_MS 5000
#define CLOCK_STEP_MS                                                                              \
    2000 /* a wall clock this far off the monotonic one has stepped */ /* connected this long      \
                                                                          after the read-back:     \
                                                                          configs withdrawn */

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
    char state_topic[T2M_TOPIC_MAX + 1];
    bool paused;
    bool stopping, disconnecting, done;
    bool stall_seen;   /* deliveries stalled; cleared by the next acknowledgement */
    bool stall_kicked; /* this connection was already dropped for stalling */
    lws_usec_t stop_deadline;
    lws_sorted_usec_list_t sul_stop, sul_state, sul_health;
    bool readback; /* reading the retained state back (until the marker returns) */
    /* the first read-back of the run is not over: Home Assistant configs and the queue wait
     * for it (the configs of the other form are migrated first, SPEC 4) */
    bool held, settled;
    char info_topic[T2M_TOPIC_MAX + 1], request_filter[T2M_TOPIC_MAX + 1];
    char *info; /* B/bridge/info as last published (malloc'd; it grows with the instances) */
    size_t info_len;
    int64_t info_ms, started_ms;
    char *config_json; /* the effective configuration, secrets left out, for bridge/info */
    struct t2m_repeat rep_request, rep_refused, rep_skipped, rep_info;
    size_t readback_n;       /* retained messages of ours read back on this connection */
    int64_t readback_act_ms; /* monotonic: the read-back's start, or its latest message */
    int64_t withdraw_due_ms; /* monotonic: when the read-back's withdrawal applies; 0: none */
    int64_t clock_wall, clock_mono; /* the last reading of both clocks (state_now) */
    char marker_topic[1100];
    char payload[T2M_PAYLOAD_MAX];
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

/* The wall clock for the state core, with a step of it (NTP on a board without a battery clock,
 * a resumed VM) told to the core at once: the core's deadlines (throttle windows, trip time-outs,
 * expiry) move with the step, so a step neither removes devices, ends trips nor holds positions
 * back (SPEC 2.1). A step: the wall clock more than CLOCK_STEP_MS away from where the monotonic
 * clock says it should be since the last reading (slewing NTP moves it far less). */
static int64_t state_now(struct t2m_bridge *b)
{
    int64_t wall = wall_ms(), mono = mono_ms();
    if (b->clock_mono) {
        int64_t step = wall - (b->clock_wall + (mono - b->clock_mono));
        if (step > CLOCK_STEP_MS || step < -CLOCK_STEP_MS) {
            T2M_WARN("bridge",
                     "the wall clock stepped by %+.1f s: device time-outs and throttle windows "
                     "move with it",
                     (double)step / 1000.0);
            t2m_state_clock_step(b->state, step);
        }
    }
    b->clock_wall = wall;
    b->clock_mono = mono;
    return wall;
}

/* Pauses every upstream while the publisher is congested (connected but behind). */
static void check_congestion(struct t2m_bridge *b)
{
    if (!b->paused && t2m_publisher_congested(b->pub)) {
        b->paused = true;
        for (size_t i = 0; i < b->n_inst; i++)
            t2m_upstream_pause(b->inst[i].up, true);
    }
}

static void on_resume(void *user)
{
    struct t2m_bridge *b = user;
    if (!b->paused) return;
    b->paused = false;
    for (size_t i = 0; i < b->n_inst; i++)
        t2m_upstream_pause(b->inst[i].up, false);
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
    int64_t wait = t - state_now(b);
    lws_sul_schedule(b->ctx, 0, &b->sul_state, state_cb, wait > 0 ? (lws_usec_t)wait * 1000 : 1);
}

static void state_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_bridge *b = lws_container_of(sul, struct t2m_bridge, sul_state);
    t2m_state_tick(b->state, state_now(b));
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
    t2m_state_update(b->state, idx, u, state_now(b));
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
 * has delivered them all, and the subscriptions end (the bridge's own publishes would echo). */
static void readback_start(struct t2m_bridge *b)
{
    char topics[T2M_READBACK_TOPICS][T2M_TOPIC_MAX + 1];
    size_t n = t2m_state_readback_topics(b->state, topics);
    b->withdraw_due_ms = 0;
    t2m_state_withdraw(b->state, false); /* what an interrupted read-back found */
    b->readback = n > 0;
    for (size_t i = 0; i < n && b->readback; i++)
        b->readback = t2m_mqtt_subscribe(b->mqtt, topics[i], SUB_QOS) == T2M_MQTT_OK;
    if (b->readback)
        b->readback = t2m_mqtt_subscribe(b->mqtt, b->marker_topic, SUB_QOS) == T2M_MQTT_OK;
    if (!b->readback) {
        T2M_WARN("bridge", "cannot read the retained state back from the broker");
        return;
    }
    b->readback_n = 0;
    b->readback_act_ms = mono_ms();
    t2m_publisher_publish_urgent(b->pub, b->marker_topic, "readback", 8, 1, false);
}

/* What waited for the first read-back (SPEC 4 and 8): Home Assistant configs (after the
 * migration of the other form's), then the queue. */
static void release_held(struct t2m_bridge *b)
{
    if (!b->held) return;
    b->held = false;
    send_bridge_discovery(b);
    t2m_publisher_on_connected(b->pub);
}

/* on_marker: the marker came back, so everything retained before it was read (SPEC 8). */
static void readback_done(struct t2m_bridge *b, bool on_marker)
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
    b->readback = false;
    T2M_INFO("bridge", "read back %zu retained messages; %zu devices known", b->readback_n,
             t2m_state_count(b->state));
    t2m_state_readback_done(b->state, state_now(b));
    t2m_http_broadcast_state(b->http); /* the page sees what it brought */
    b->settled = true;
    release_held(b);
    /* SPEC 8: configs that no longer apply are withdrawn only after a read-back that saw
     * everything (it ended on its marker), and only once the connection has stayed up a while:
     * a second bridge with the same client id (whose configs look like ours) takes the
     * connection over within its first backoff delays (1, 2, 4 s), well before. */
    if (on_marker)
        b->withdraw_due_ms = mono_ms() + WITHDRAW_SETTLE_MS;
    else
        t2m_state_withdraw(b->state, false);
}

/* ---- bridge/info and requests (SPEC section 2.3) ---- */

static int64_t stall_limit_ms(const struct t2m_bridge *b);

/* Renders B/bridge/info; publishes it when it changed, at most once a second (force: now). */
static void info_publish(struct t2m_bridge *b, bool force)
{
    if (!t2m_mqtt_connected(b->mqtt)) return;
    int64_t now = mono_ms();
    if (!force && now - b->info_ms < 1000) return;
    const char *ids[b->n_inst ? b->n_inst : 1], *states[b->n_inst ? b->n_inst : 1];
    for (size_t i = 0; i < b->n_inst; i++) {
        ids[i] = b->cfg->instances[i].id;
        states[i] = t2m_upstream_state_name(b->inst[i].state);
    }
    /* Hundreds of instances make it large: the buffer grows until it fits (no silent loss). */
    char *buf = NULL;
    size_t n = 0;
    for (size_t cap = 16384; cap <= INFO_MAX && !n; cap *= 4) {
        free(buf);
        if (!(buf = malloc(cap))) break;
        n = t2m_payload_info(buf, cap, T2M_VERSION, b->started_ms, ids, states, b->n_inst,
                             t2m_state_count(b->state), b->config_json, &b->cfg->units.resolved);
    }
    if (!n) {
        free(buf);
        if (t2m_repeat_hit(&b->rep_info, now) == 1)
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
    b->info_ms = now;
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
    if (!t2m_mqtt_connected(b->mqtt)) return "mqtt disconnected";
    if (b->stall_seen || t2m_publisher_stalled_ms(b->pub) > stall_limit_ms(b))
        return "mqtt deliveries stalled (no acknowledgement)";
    for (size_t i = 0; i < b->n_inst; i++)
        if (b->inst[i].state == T2M_UP_AUTH_FAILED) return "instance auth_failed";
    return NULL;
}

#define DEVICES_REPLY_MAX (8u << 20) /* a devices reply larger than this asks for a filter */

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
    char err[256];
    if (t2m_request_parse(cmd, payload, len, &r, err, sizeof(err)) != 0) {
        if (t2m_repeat_hit(&b->rep_request, mono_ms()) == 1)
            T2M_WARN("bridge", "request %s refused: %s", cmd, err);
        respond(b, cmd, &r, NULL, err);
        return;
    }
    int inst = r.has_instance ? t2m_state_instance(b->state, r.instance) : -1;
    if (r.has_instance && inst < 0) {
        respond(b, cmd, &r, NULL, "unknown instance");
        return;
    }
    char data[512];
    switch (r.cmd) {
    case T2M_REQ_DEVICE_REMOVE:
        if (t2m_state_remove(b->state, (unsigned)inst, r.device, r.device_len, state_now(b)) != 0) {
            respond(b, cmd, &r, NULL, "unknown device");
            return;
        }
        T2M_INFO("bridge", "request: device %s of %s removed", r.device, r.instance);
        respond(b, cmd, &r, NULL, NULL);
        break;
    case T2M_REQ_DEVICE_RENAME:
        if (t2m_state_rename(b->state, (unsigned)inst, r.device, r.device_len, r.name,
                             state_now(b)) != 0) {
            respond(b, cmd, &r, NULL, "unknown device");
            return;
        }
        respond(b, cmd, &r, NULL, NULL);
        break;
    case T2M_REQ_HEALTH_CHECK: {
        const char *why = unhealthy_reason(b);
        struct t2m_out o = {data, sizeof(data), 0, false};
        t2m_out_str(&o, why ? "{\"healthy\":false,\"reason\":" : "{\"healthy\":true");
        if (why) t2m_out_json(&o, why, strlen(why));
        t2m_out_str(&o, "}");
        respond(b, cmd, &r, t2m_out_finish(&o) ? data : "{}", NULL);
        break;
    }
    case T2M_REQ_OPTIONS: {
        enum t2m_log_level lvl;
        if (t2m_log_parse_level(r.log_level, &lvl) != 0) {
            respond(b, cmd, &r, NULL, "log_level must be debug, info, warn or error");
            return;
        }
        t2m_log_set_level(lvl);
        T2M_WARN("bridge", "request: log level now %s", t2m_log_level_name(lvl));
        snprintf(data, sizeof(data), "{\"log_level\":\"%s\"}", t2m_log_level_name(lvl));
        respond(b, cmd, &r, data, NULL);
        break;
    }
    case T2M_REQ_DEVICES: {
        size_t cap = 65536;
        for (;;) {
            char *buf = malloc(cap);
            if (!buf) break;
            size_t n = t2m_state_render_devices(b->state, inst, buf, cap);
            if (n) {
                respond(b, cmd, &r, buf, NULL);
                free(buf);
                return;
            }
            free(buf);
            if (cap >= DEVICES_REPLY_MAX) break;
            cap *= 4;
        }
        respond(b, cmd, &r, NULL, "too many devices for one reply: filter by \"instance\"");
        break;
    }
    default:
        break;
    }
    check_congestion(b);
}

static void on_mqtt_connected(void *user)
{
    struct t2m_bridge *b = user;
    char node[300];
    t2m_mqtt_node(b->mqtt, node, sizeof(node));
    T2M_INFO("mqtt", "connected to broker node %s", node);
    b->stall_kicked = false;
    /* Back during the shutdown flush: the broker (perhaps another node, or one that lost its
     * retained messages) still gets every device's latest state, then the bridge goes. */
    /* Availability first; should the library not take it now, it is queued, never lost. */
    const char *avail = b->stopping ? "offline" : "online";
    if (t2m_publisher_publish_urgent(b->pub, b->state_topic, avail, strlen(avail), 1, true) !=
        T2M_MQTT_OK)
        publish(b, b->state_topic, avail, strlen(avail), 1, true);
    if (b->cfg->homeassistant.enabled && !b->stopping)
        t2m_mqtt_subscribe(b->mqtt, b->cfg->homeassistant.status_topic, SUB_QOS);
    if (!b->stopping) readback_start(b);
    if (b->cfg->mqtt.requests && !b->stopping)
        t2m_mqtt_subscribe(b->mqtt, b->request_filter, SUB_QOS);
    for (size_t i = 0; i < b->n_inst; i++)
        publish_status(b, i);
    /* SPEC section 8: online, discovery, then what was queued. Discovery goes out urgently
     * while the publisher still counts as offline, so the positions the state core re-sends
     * coalesce into the queue and leave after the configs, never before. Until the first
     * read-back of the run is over both wait for it: it tells which configs of the other form
     * (0.x's per-entity ones) must be migrated before the new ones go (SPEC 4). */
    b->held = !b->settled && b->readback && b->cfg->homeassistant.enabled;
    t2m_state_hold_discovery(b->state, b->held);
    if (!b->held) send_bridge_discovery(b);
    t2m_state_connected(b->state, true, state_now(b));
    t2m_publisher_set_receive_max(b->pub, t2m_mqtt_limits(b->mqtt)->receive_max);
    if (!b->held) t2m_publisher_on_connected(b->pub);
    if (!b->stopping) info_publish(b, true);
}

static void on_mqtt_disconnected(void *user, const char *reason)
{
    struct t2m_bridge *b = user;
    if (b->stopping) /* the clean stop's own disconnect: nothing went wrong */
        T2M_INFO("mqtt", "disconnected: %s", reason ? reason : "unknown");
    else
        T2M_WARN("mqtt", "connection lost: %s", reason ? reason : "unknown");
    b->stall_kicked = false;
    b->readback = false;
    b->held = false;
    if (b->withdraw_due_ms) { /* the connection did not stay up: withdraw nothing */
        b->withdraw_due_ms = 0;
        t2m_state_withdraw(b->state, false);
    }
    t2m_publisher_on_disconnected(b->pub);
    t2m_state_connected(b->state, false, state_now(b));
    on_resume(b); /* while offline, keep consuming: the queue coalesces */
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
    if (b->stall_seen) {
        b->stall_seen = false;
        T2M_INFO("mqtt", "deliveries acknowledged again");
    }
    t2m_publisher_on_delivered(b->pub, msg_id);
}

/* SPEC section 7: in-flight messages unacknowledged for 1.5 x keepalive mean a dead connection,
 * even while the socket and the broker's PINGRESPs look fine. */
static int64_t stall_limit_ms(const struct t2m_bridge *b)
{
    return (int64_t)b->cfg->mqtt.keepalive * 1500;
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
    int64_t stalled = t2m_publisher_stalled_ms(b->pub);
    if (stalled > stall_limit_ms(b) && !b->stopping && !b->stall_kicked) {
        b->stall_kicked = true;
        b->stall_seen = true;
        T2M_WARN("mqtt",
                 "no acknowledgement for %.1f s with %zu messages in flight: the broker "
                 "connection is stalled; reconnecting",
                 (double)stalled / 1000.0, t2m_publisher_inflight(b->pub));
        t2m_mqtt_reconnect(b->mqtt, "deliveries stalled");
    }
    /* A broker that drops what it owes a subscriber when too much is queued (mosquitto's
     * max_queued_messages, 1,000 by default, also drops the marker's echo) would leave the
     * read-back waiting for ever: after READBACK_QUIET_MS without a message it ends with what came.
     */
    if (b->readback && mono_ms() - b->readback_act_ms > READBACK_QUIET_MS) {
        T2M_WARN("bridge",
                 "read-back incomplete: no retained message for %d s and the marker did not come "
                 "back (the broker dropped messages? mosquitto: raise max_queued_messages)",
                 READBACK_QUIET_MS / 1000);
        readback_done(b, false);
    }
    /* Due, and the connection settled (t2m_mqtt_settled; else checked again next tick). */
    bool taken = t2m_mqtt_taken_over(b->mqtt);
    if (b->withdraw_due_ms && mono_ms() >= b->withdraw_due_ms &&
        (taken || t2m_mqtt_settled(b->mqtt))) {
        b->withdraw_due_ms = 0;
        if (taken)
            T2M_WARN("bridge",
                     "no Home Assistant config withdrawn: another client uses client id \"%s\" "
                     "and its configs look like ours",
                     b->cfg->mqtt.client_id);
        t2m_state_withdraw(b->state, !taken);
    }
    check_tokens(b);
    info_publish(b, false);
    lws_sul_schedule(b->ctx, 0, &b->sul_health, health_cb, HEALTH_TICK_US);
}

static void on_mqtt_message(void *user, const char *topic, const void *payload, size_t len,
                            bool retained)
{
    struct t2m_bridge *b = user;
    /* SPEC 8: only what the broker kept is memory; a live echo of the bridge's own publish (or
     * anyone's) under the read-back's filters is not. */
    if (b->readback) {
        if (strcmp(topic, b->marker_topic) == 0) {
            readback_done(b, true);
            return;
        }
        if (retained && t2m_state_retained(b->state, topic, payload, len, state_now(b))) {
            b->readback_n++;
            b->readback_act_ms = mono_ms();
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
        len == 6 && memcmp(payload, "online", 6) == 0 && !b->held) {
        T2M_INFO("bridge", "Home Assistant is online: re-sending discovery and positions");
        send_bridge_discovery(b);
        t2m_state_republish(b->state, state_now(b));
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
            if (b->cfg->mqtt.password) {
                explicit_bzero(b->cfg->mqtt.password, strlen(b->cfg->mqtt.password));
                free(b->cfg->mqtt.password);
            }
            b->cfg->mqtt.password = pw;
        } else {
            explicit_bzero(pw, strlen(pw));
            free(pw);
        }
    }
}

/* Shutdown ticks: wait for the queue to drain (or the 5 s deadline), then disconnect and give
 * the DISCONNECT a moment to leave. */
static void stop_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_bridge *b = lws_container_of(sul, struct t2m_bridge, sul_stop);
    lws_usec_t now = lws_now_usecs();
    if (!b->disconnecting) {
        bool connected = t2m_mqtt_connected(b->mqtt);
        /* Connected or not, the queue gets until the deadline: a broker that comes back within
         * it (the bridge tries at once, see t2m_bridge_stop) still receives everything. */
        if (!t2m_publisher_idle(b->pub) && now < b->stop_deadline) {
            lws_sul_schedule(b->ctx, 0, &b->sul_stop, stop_cb, STOP_TICK_US);
            return;
        }
        if (!t2m_publisher_idle(b->pub)) {
            T2M_WARN("bridge",
                     "stopping with %zu messages undelivered (%zu queued, %zu in flight): %s "
                     "within %d s; they are discarded",
                     t2m_publisher_queued(b->pub) + t2m_publisher_inflight(b->pub),
                     t2m_publisher_queued(b->pub), t2m_publisher_inflight(b->pub),
                     connected ? "the broker did not acknowledge them"
                               : "the broker was unreachable",
                     (int)(FLUSH_TIMEOUT_US / LWS_US_PER_SEC));
            if (connected)
                t2m_publisher_publish_urgent(b->pub, b->state_topic, "offline", 7, 1, true);
        }
        b->disconnecting = true;
        t2m_mqtt_disconnect(b->mqtt);
        b->stop_deadline = now + LWS_US_PER_SEC / 2;
    }
    if (t2m_mqtt_connected(b->mqtt) && now < b->stop_deadline) {
        lws_sul_schedule(b->ctx, 0, &b->sul_stop, stop_cb, STOP_TICK_US);
        return;
    }
    b->done = true;
    lws_cancel_service(b->ctx);
}

void t2m_bridge_stop(struct t2m_bridge *b)
{
    if (b->stopping) return;
    b->stopping = true;
    T2M_INFO("bridge", "stopping: publishing offline and flushing");
    for (size_t i = 0; i < b->n_inst; i++)
        t2m_upstream_stop(b->inst[i].up);
    lws_sul_cancel(&b->sul_state);
    lws_sul_cancel(&b->sul_health);
    release_held(b); /* the queue goes now, read-back or not */
    if (t2m_mqtt_connected(b->mqtt))
        publish(b, b->state_topic, "offline", 7, 1, true);
    else if (!t2m_publisher_idle(b->pub))
        t2m_mqtt_reconnect(b->mqtt, "stopping: one more attempt to deliver what is queued");
    b->stop_deadline = lws_now_usecs() + FLUSH_TIMEOUT_US;
    lws_sul_schedule(b->ctx, 0, &b->sul_stop, stop_cb, 1);
}

bool t2m_bridge_done(const struct t2m_bridge *b)
{
    return b->done;
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
