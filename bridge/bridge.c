/* bridge.c - where an update becomes MQTT messages, and where MQTT and upstream events meet. */
#include "bridge.h"

#include <libwebsockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices.h"
#include "discovery.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "owntracks.h"
#include "payload.h"
#include "publisher.h"
#include "stats.h"
#include "topics.h"
#include "upstream.h"

#define SEG_MAX (3 * T2M_TOKEN_MAX + 1)
#define FLUSH_TIMEOUT_US (5 * LWS_US_PER_SEC) /* SPEC section 7: flush at most 5 s */
#define STOP_TICK_US (20 * 1000)
#define HEALTH_TICK_US (LWS_US_PER_SEC / 2)

struct instance {
    struct t2m_upstream *up;
    char seg[SEG_MAX]; /* the id as a topic segment */
    enum t2m_up_state state;
    int64_t since_ms;
    char connection_id[128];
    int err_code;
    char err_msg[256];
};

struct t2m_bridge {
    struct lws_context *ctx;
    struct t2m_config *cfg;
    struct t2m_stats stats;
    struct t2m_mqtt *mqtt;
    struct t2m_publisher *pub;
    struct t2m_devices *devices;
    struct t2m_http *http;
    struct lws_vhost *up_vh;
    struct instance *inst;
    size_t n_inst;
    struct t2m_discovery_ctx disc;
    char state_topic[512];
    bool paused;
    bool stopping, disconnecting, done;
    bool stall_seen;   /* deliveries stalled; cleared by the next acknowledgement */
    bool stall_kicked; /* this connection was already dropped for stalling */
    lws_usec_t stop_deadline;
    lws_sorted_usec_list_t sul_stop, sul_throttle, sul_health;
    struct t2m_device *thr_head, *thr_tail; /* throttle windows in deadline order */
    char topic[1024 + 2 * SEG_MAX];
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

static int qos(const struct t2m_bridge *b)
{
    return b->cfg->mqtt.qos;
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

static void publish_status(struct t2m_bridge *b, size_t i)
{
    struct instance *in = &b->inst[i];
    char topic[1024 + SEG_MAX];
    char payload[1024];
    snprintf(topic, sizeof(topic), "%s/%s/status", b->cfg->mqtt.base_topic, in->seg);
    size_t n = t2m_payload_status(payload, sizeof(payload), t2m_upstream_state_name(in->state),
                                  in->since_ms, in->connection_id, in->err_code, in->err_msg,
                                  &b->cfg->units.resolved);
    if (n) publish(b, topic, payload, n, 1, true);
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

/* ---- discovery ---- */

struct emit_ctx {
    struct t2m_bridge *b;
    bool urgent;
};

static int emit_config(void *user, const char *topic, const char *payload, size_t len)
{
    struct emit_ctx *e = user;
    if (e->urgent)
        return t2m_publisher_publish_urgent(e->b->pub, topic, payload, len, 1, true) == T2M_MQTT_OK
                   ? 0
                   : 1;
    publish(e->b, topic, payload, len, 1, true);
    return 0;
}

static void send_device_discovery(struct t2m_bridge *b, struct t2m_device *d, bool urgent)
{
    if (!b->cfg->homeassistant.enabled) return;
    struct emit_ctx e = {b, urgent};
    const struct t2m_instance_cfg *ic = &b->cfg->instances[d->instance];
    const char *alias = t2m_config_alias(b->cfg, d->token, d->token_len);
    if (t2m_discovery_device(&b->disc, ic->id, strlen(ic->id), d->token, d->token_len, alias,
                             emit_config, &e) == 0)
        d->flags |= T2M_DEVF_DISCOVERED;
}

static void send_bridge_discovery(struct t2m_bridge *b)
{
    if (!b->cfg->homeassistant.enabled) return;
    const char *ids[b->n_inst ? b->n_inst : 1];
    for (size_t i = 0; i < b->n_inst; i++)
        ids[i] = b->cfg->instances[i].id;
    struct emit_ctx e = {b, true};
    t2m_discovery_bridge(&b->disc, ids, b->n_inst, emit_config, &e);
}

/* ---- positions ---- */

/* Renders and queues every message of one position: the position JSON, the attribute topics,
 * OwnTracks. `u` is the update as stored for the device. */
static void publish_position(struct t2m_bridge *b, struct t2m_device *d, const struct t2m_update *u)
{
    const struct t2m_config *cfg = b->cfg;
    const struct instance *in = &b->inst[d->instance];
    const struct t2m_instance_cfg *ic = &cfg->instances[d->instance];
    char dseg[SEG_MAX];
    if (t2m_topic_segment(dseg, sizeof(dseg), d->token, d->token_len) < 0)
        return; /* cannot happen: the parser rejects such tokens */

    if (cfg->homeassistant.enabled && !(d->flags & T2M_DEVF_DISCOVERED) &&
        t2m_mqtt_connected(b->mqtt))
        send_device_discovery(b, d, false);

    int tl = snprintf(b->topic, sizeof(b->topic), "%s/%s/%s/", cfg->mqtt.base_topic, in->seg, dseg);
    size_t n = t2m_payload_position(b->payload, sizeof(b->payload), ic->id, strlen(ic->id), u,
                                    &cfg->units.resolved);
    if (n) {
        memcpy(b->topic + tl, "position", sizeof("position"));
        publish(b, b->topic, b->payload, n, qos(b), cfg->mqtt.retain);
    }
    if (cfg->mqtt.attribute_topics) {
        for (int a = 0; a < T2M_ATTR_COUNT; a++) {
            size_t vn = t2m_payload_attribute(b->payload, sizeof(b->payload), (enum t2m_attr)a, u,
                                              &cfg->units.resolved);
            if (!vn) continue;
            snprintf(b->topic + tl, sizeof(b->topic) - (size_t)tl, "%s",
                     t2m_payload_attr_name((enum t2m_attr)a));
            publish(b, b->topic, b->payload, vn, qos(b), cfg->mqtt.retain);
        }
    }
    if (cfg->owntracks.enabled) {
        const char *alias = t2m_config_alias(cfg, d->token, d->token_len);
        char tid[3];
        t2m_owntracks_tid(tid, alias ? alias : d->token, alias ? strlen(alias) : d->token_len);
        size_t on = t2m_owntracks_payload(b->payload, sizeof(b->payload), u, tid, wall_ms() / 1000);
        if (on) {
            snprintf(b->topic, sizeof(b->topic), "owntracks/%s/%s", in->seg, dseg);
            publish(b, b->topic, b->payload, on, qos(b), true);
        }
    }
    if (u->has & T2M_HAS_TS) d->last_ts_ms = u->ts_ms;
    check_congestion(b);
}

static void throttle_cb(lws_sorted_usec_list_t *sul);

static void throttle_arm(struct t2m_bridge *b)
{
    if (!b->thr_head) return;
    int64_t wait = b->thr_head->window_end_ms - mono_ms();
    lws_sul_schedule(b->ctx, 0, &b->sul_throttle, throttle_cb,
                     wait > 0 ? (lws_usec_t)wait * 1000 : 1);
}

/* Opens a min_interval window for d. Windows all have the same length, so appending keeps the
 * FIFO in deadline order: one timer serves every device. */
static void throttle_open(struct t2m_bridge *b, struct t2m_device *d)
{
    d->flags |= T2M_DEVF_IN_WINDOW;
    d->window_end_ms = mono_ms() + (int64_t)(b->cfg->mqtt.min_interval * 1000.0);
    d->tnext = NULL;
    if (b->thr_tail)
        b->thr_tail->tnext = d;
    else
        b->thr_head = d;
    b->thr_tail = d;
    if (b->thr_head == d) throttle_arm(b);
}

/* A window ended: publish what arrived during it (the trailing edge), else close it. */
static void throttle_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_bridge *b = lws_container_of(sul, struct t2m_bridge, sul_throttle);
    int64_t now = mono_ms();
    while (b->thr_head && b->thr_head->window_end_ms <= now) {
        struct t2m_device *d = b->thr_head;
        b->thr_head = d->tnext;
        if (!b->thr_head) b->thr_tail = NULL;
        d->flags &= (uint8_t)~T2M_DEVF_IN_WINDOW;
        if (d->flags & T2M_DEVF_PENDING) {
            d->flags &= (uint8_t)~T2M_DEVF_PENDING;
            struct t2m_update u;
            t2m_device_load(d, &u);
            publish_position(b, d, &u);
            throttle_open(b, d);
        }
    }
    throttle_arm(b);
}

static void on_update(void *user, unsigned idx, const struct t2m_update *u)
{
    struct t2m_bridge *b = user;
    b->stats.updates_received++;
    if (u->rejected) b->stats.fields_rejected += (uint64_t)__builtin_popcount(u->rejected);

    enum t2m_dev_status st;
    struct t2m_device *d =
        t2m_devices_get(b->devices, idx, u->device_token, u->device_token_len, true, &st);
    if (!d) {
        if (st == T2M_DEV_FULL) {
            if (b->stats.dropped[T2M_DROP_MAX_DEVICES]++ == 0)
                T2M_WARN("bridge",
                         "upstream.max_devices (%d) reached: updates of further new "
                         "devices are dropped",
                         b->cfg->upstream.max_devices);
        } else {
            T2M_ERROR("bridge", "out of memory adding a device");
        }
        return;
    }
    /* The stale guard: never let an older fix replace a newer one (OwnTracks Recorder's
     * lesson); compared with the newest accepted, which is at least the newest published. */
    if ((u->has & T2M_HAS_TS) && (d->flags & T2M_DEVF_HAS_STATE) && (d->has & T2M_HAS_TS) &&
        u->ts_ms < d->ts_ms) {
        b->stats.dropped[T2M_DROP_STALE]++;
        T2M_DEBUG("bridge", "stale update dropped (older than the last one)");
        return;
    }
    if (t2m_device_store(d, u) != 0) {
        T2M_ERROR("bridge", "out of memory storing a position");
        return;
    }
    if (b->cfg->mqtt.min_interval > 0) {
        if (d->flags & T2M_DEVF_IN_WINDOW) {
            d->flags |= T2M_DEVF_PENDING;
            return;
        }
        publish_position(b, d, u);
        throttle_open(b, d);
        return;
    }
    publish_position(b, d, u);
}

/* ---- MQTT events ---- */

static void republish_device(struct t2m_device *d, void *user)
{
    struct t2m_bridge *b = user;
    send_device_discovery(b, d, true);
    if ((d->flags & T2M_DEVF_HAS_STATE) && !(d->flags & T2M_DEVF_PENDING)) {
        struct t2m_update u;
        t2m_device_load(d, &u);
        publish_position(b, d, &u);
    }
}

/* HA restarted or the broker came back: everything HA needs, configs before positions. */
static void republish_all(struct t2m_bridge *b)
{
    send_bridge_discovery(b);
    t2m_devices_foreach(b->devices, republish_device, b);
}

static void on_mqtt_connected(void *user)
{
    struct t2m_bridge *b = user;
    T2M_INFO("mqtt", "connected to %s", b->cfg->mqtt.url);
    b->stall_kicked = false;
    if (b->stopping) { /* back during the shutdown flush: deliver what is queued, then go */
        t2m_publisher_publish_urgent(b->pub, b->state_topic, "offline", 7, 1, true);
        t2m_publisher_on_connected(b->pub);
        return;
    }
    t2m_publisher_publish_urgent(b->pub, b->state_topic, "online", 6, 1, true);
    if (b->cfg->homeassistant.enabled)
        t2m_mqtt_subscribe(b->mqtt, b->cfg->homeassistant.status_topic, 1);
    for (size_t i = 0; i < b->n_inst; i++)
        publish_status(b, i);
    /* SPEC section 8: online, discovery, then what was queued. Discovery goes out urgently
     * while the publisher still counts as offline, so the positions republish_all adds
     * coalesce into the queue and leave after the configs, never before. */
    republish_all(b);
    t2m_publisher_on_connected(b->pub);
}

static void clear_discovered(struct t2m_device *d, void *user)
{
    (void)user;
    d->flags &= (uint8_t)~T2M_DEVF_DISCOVERED;
}

static void on_mqtt_disconnected(void *user, const char *reason)
{
    struct t2m_bridge *b = user;
    T2M_WARN("mqtt", "connection lost: %s", reason ? reason : "unknown");
    b->stall_kicked = false;
    t2m_publisher_on_disconnected(b->pub);
    t2m_devices_foreach(b->devices, clear_discovered, NULL);
    on_resume(b); /* while offline, keep consuming: the queue coalesces */
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
    lws_sul_schedule(b->ctx, 0, &b->sul_health, health_cb, HEALTH_TICK_US);
}

static void on_mqtt_message(void *user, const char *topic, const void *payload, size_t len)
{
    struct t2m_bridge *b = user;
    if (b->cfg->homeassistant.enabled && strcmp(topic, b->cfg->homeassistant.status_topic) == 0 &&
        len == 6 && memcmp(payload, "online", 6) == 0) {
        T2M_INFO("bridge", "Home Assistant is online: re-sending discovery and positions");
        republish_all(b);
    }
}

/* ---- HTTP ---- */

static size_t render_healthz(void *user, char *buf, size_t n, int *status)
{
    struct t2m_bridge *b = user;
    bool mqtt_ok = t2m_mqtt_connected(b->mqtt);
    const char *reason = mqtt_ok ? NULL : "mqtt disconnected";
    if (!reason && (b->stall_seen || t2m_publisher_stalled_ms(b->pub) > stall_limit_ms(b)))
        reason = "mqtt deliveries stalled (no acknowledgement)";
    for (size_t i = 0; !reason && i < b->n_inst; i++)
        if (b->inst[i].state == T2M_UP_AUTH_FAILED) reason = "instance auth_failed";
    *status = reason ? 503 : 200;
    size_t o = (size_t)snprintf(buf, n, "{\"status\":\"%s\",", reason ? "error" : "ok");
    if (reason && o < n) o += (size_t)snprintf(buf + o, n - o, "\"reason\":\"%s\",", reason);
    if (o < n)
        o +=
            (size_t)snprintf(buf + o, n - o, "\"mqtt\":\"%s\",\"devices\":%zu,\"instances\":{",
                             mqtt_ok ? "connected" : "disconnected", t2m_devices_count(b->devices));
    for (size_t i = 0; i < b->n_inst && o + 64 < n; i++) {
        if (i) buf[o++] = ',';
        const char *id = b->cfg->instances[i].id;
        size_t e = t2m_json_escape(buf + o, n - o - 32, id, strlen(id));
        if (!e) break;
        o += e;
        o += (size_t)snprintf(buf + o, n - o, ":\"%s\"", t2m_upstream_state_name(b->inst[i].state));
    }
    if (o + 3 < n) o += (size_t)snprintf(buf + o, n - o, "}}\n");
    return o < n ? o : 0;
}

static size_t render_metrics(void *user, char *buf, size_t n, int *status)
{
    struct t2m_bridge *b = user;
    struct t2m_metrics_instance mi[b->n_inst ? b->n_inst : 1];
    for (size_t i = 0; i < b->n_inst; i++) {
        mi[i].id = b->cfg->instances[i].id;
        mi[i].state = (int)b->inst[i].state;
    }
    struct t2m_metrics_snapshot s = {
        .stats = &b->stats,
        .mqtt_connected = t2m_mqtt_connected(b->mqtt),
        .offline_queue_depth = t2m_publisher_queued(b->pub),
        .devices = t2m_devices_count(b->devices),
        .instances = mi,
        .n_instances = b->n_inst,
    };
    *status = 200;
    return t2m_metrics_render(buf, n, &s);
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
    snprintf(b->state_topic, sizeof(b->state_topic), "%s/bridge/state", cfg->mqtt.base_topic);
    b->disc = (struct t2m_discovery_ctx){
        .prefix = cfg->homeassistant.discovery_prefix,
        .base_topic = cfg->mqtt.base_topic,
        .bridge_id = cfg->mqtt.client_id,
        .version = T2M_VERSION,
        .units = &cfg->units.resolved,
    };

    b->devices = t2m_devices_new((size_t)cfg->upstream.max_devices);
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
        .max_inflight = 100,
    };
    struct t2m_mqtt_callbacks mcb = {on_mqtt_connected, on_mqtt_disconnected, on_mqtt_delivered,
                                     on_mqtt_message};
    b->mqtt = t2m_mqtt_new(ctx, &mo, &mcb, b, err, errlen);
    if (!b->devices || !b->mqtt) goto fail;
    /* While connected, back-pressure must slow the upstream before the queue's history bound
     * would drop anything: pause at half of offline_queue (at least 256, at most 20,000). */
    size_t high = (size_t)cfg->mqtt.offline_queue / 2;
    high = high < 256 ? 256 : high > 20000 ? 20000 : high;
    struct t2m_publisher_options po = {
        .offline_queue = (size_t)cfg->mqtt.offline_queue,
        .window = 100, /* libmosquitto scans its in-flight list per PUBACK: keep it short */
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
        struct t2m_http_handlers h = {render_healthz, render_metrics, b};
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
    lws_sul_cancel(&b->sul_throttle);
    lws_sul_cancel(&b->sul_health);
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
    lws_sul_cancel(&b->sul_throttle);
    lws_sul_cancel(&b->sul_health);
    t2m_http_free(b->http);
    for (size_t i = 0; b->inst && i < b->n_inst; i++)
        t2m_upstream_free(b->inst[i].up);
    free(b->inst);
    t2m_mqtt_free(b->mqtt);
    t2m_publisher_free(b->pub);
    t2m_devices_free(b->devices);
    free(b);
}
