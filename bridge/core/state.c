/* state.c - the device state core (state.h). */
#include "state.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "discovery.h"
#include "log.h"
#include "out.h"
#include "owntracks.h"
#include "payload.h"
#include "topics.h"
#include "trip.h"

#define SCAN_MS 1000 /* trip timeouts and expiry are checked this often */
#define EVENT_MAX (2 * T2M_PAYLOAD_MAX)
#define EVICT_BATCH 256         /* read-back-only devices found per scan of a full table */
#define TRIP_DISTANCE_MAX 1.0e9 /* m: a read-back trip longer than a million km is not one */
#define TRIP_DURATION_MAX 3.2e7 /* s: nor one longer than a year */

/* A device/rename alias (rare: a list is enough). */
struct rename {
    unsigned inst;
    char *token;
    size_t len;
    char *name;
};

/* An open throttle window (min_interval): only devices inside one have an entry. */
struct window {
    struct t2m_device *d;
    int64_t end_ms;
};

struct t2m_state {
    int64_t now_ms; /* the wall clock of the call being served (per-message warnings' summary) */
    const struct t2m_config *cfg;
    const struct t2m_units *units;
    struct t2m_stats *stats;
    t2m_action_fn fn;
    void *user;
    struct t2m_devices *devices;
    char (*iseg)[T2M_SEG_MAX]; /* instance ids as topic segments */
    const char **zone_names;   /* the configured zones' names, for the zone sensor */
    struct t2m_discovery_ctx disc;
    bool connected;
    struct window *thr; /* throttle windows in deadline order: a ring, thr_n from thr_head */
    size_t thr_head, thr_n, thr_cap; /* thr_cap: 0 or a power of two */
    int64_t next_scan_ms;            /* INT64_MAX: nothing to scan for */
    struct t2m_repeat rep_topic, rep_full, rep_skew, rep_evict;
    /* A full table gives way to live devices: devices known only from the read-back are
     * forgotten, found EVICT_BATCH at a time (cleared whenever a device is freed, so the
     * pointers stay valid); evict_scan: a scan may find some (a read-back added devices). */
    struct t2m_device *evict[EVICT_BATCH];
    size_t n_evict;
    bool evict_scan;
    struct rename *renames;
    size_t n_renames;
    char **seen_configs; /* read back: discovery configs of this bridge, for the withdrawal */
    size_t n_seen, cap_seen;
    int64_t started_s; /* OwnTracks transitions' wtst */
    char topic[T2M_TOPIC_MAX + 1];
    char payload[T2M_PAYLOAD_MAX];
    char tripbuf[T2M_PAYLOAD_MAX]; /* the trip object, rendered once for state and trip topic */
    char event[EVENT_MAX];
    bool hold_discovery; /* until the read-back is done: configs of the other form migrate first */
    /* attribute topics the next publish_state sends (bit per enum t2m_attr): those whose value
     * changed with the update being merged, else all */
    unsigned attr_mask;
};

/* ---- output ---- */

static void act(struct t2m_state *st, enum t2m_action_kind k, const char *topic,
                const char *payload, size_t len, int qos, bool retain, bool urgent)
{
    struct t2m_action a = {k, topic, payload, len, qos, retain, urgent};
    st->fn(st->user, &a);
}

/* The status page's view of a device (SPEC 7): its state, or that it is gone. */
static void view(struct t2m_state *st, enum t2m_action_kind k, const char *payload, size_t len)
{
    struct t2m_action a = {k, NULL, payload, len, 0, false, false};
    st->fn(st->user, &a);
}

static void view_removed(struct t2m_state *st, const struct t2m_device *d)
{
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    const char *id = st->cfg->instances[d->instance].id;
    struct t2m_out o = {st->event, sizeof(st->event), 0, false};
    t2m_out_str(&o, "{\"instance_id\":");
    t2m_out_json(&o, id, strlen(id));
    t2m_out_str(&o, ",\"device_token\":");
    t2m_out_json(&o, tk, tl);
    t2m_out_str(&o, "}");
    size_t n = t2m_out_finish(&o);
    if (n) view(st, T2M_ACT_VIEW_REMOVED, st->event, n);
}

/* The device token as a topic segment (dseg: T2M_SEG_MAX bytes); false if it cannot be one. */
static bool token_segment(const struct t2m_device *d, char *dseg)
{
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    return t2m_topic_segment(dseg, T2M_SEG_MAX, tk, tl) >= 0;
}

/* B/I/D/suffix into st->topic through the checked builder. A device token that makes it too
 * long is a counted drop, never a truncated topic (SPEC section 2). */
static bool device_topic(struct t2m_state *st, const struct t2m_device *d, const char *suffix)
{
    char dseg[T2M_SEG_MAX];
    if (!token_segment(d, dseg) ||
        t2m_topic_join(st->topic, sizeof(st->topic), 4, st->cfg->mqtt.base_topic,
                       st->iseg[d->instance], dseg, suffix) < 0) {
        st->stats->dropped[T2M_DROP_INVALID_TOKEN]++;
        if (t2m_repeat_hit(&st->rep_topic, st->now_ms) == 1)
            T2M_WARN("state", "a device token makes its topics longer than %d bytes: dropped",
                     T2M_TOPIC_MAX);
        return false;
    }
    return true;
}

static const char *alias_of(const struct t2m_state *st, const struct t2m_device *d)
{
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    for (size_t i = 0; i < st->n_renames; i++) {
        const struct rename *r = &st->renames[i];
        if (r->inst == d->instance && r->len == tl && memcmp(r->token, tk, r->len) == 0)
            return r->name;
    }
    return t2m_config_alias(st->cfg, tk, tl);
}

static void extra_of(const struct t2m_state *st, const struct t2m_device *d,
                     struct t2m_state_extra *x)
{
    x->name = alias_of(st, d);
    x->last_seen_ms = d->last_seen_ms;
    x->driving = d->trip == T2M_TRIP_DRIVING;
    x->zone =
        d->zone >= 0 && (size_t)d->zone < st->cfg->n_zones ? st->cfg->zones[d->zone].name : NULL;
    x->trip = NULL; /* publish_state renders it */
    x->trip_len = 0;
}

/* buf: T2M_DEVICE_TEXT bytes that t->track may point into. */
static void trip_of(const struct t2m_device *d, struct t2m_trip *t, char *buf)
{
    memset(t, 0, sizeof(*t));
    t->track = t2m_device_track(d, buf, &t->track_len);
    t->driving = d->trip == T2M_TRIP_DRIVING;
    t->start_ms = d->trip_start_ms;
    t->end_ms = d->trip_end_ms;
    t->distance_m = d->trip_dist_m;
    t->has_max = d->trip_flags & T2M_TRIPF_MAX;
    t->max_speed = d->trip_max_speed;
    t->has_start = d->trip_flags & T2M_TRIPF_START;
    t->start_lat = d->trip_start_lat;
    t->start_lon = d->trip_start_lon;
    t->has_end = (d->has & T2M_HAS_LAT) && (d->has & T2M_HAS_LON);
    t->end_lat = d->lat;
    t->end_lon = d->lon;
    t->updates = d->trip_updates;
}

struct emit_ctx {
    struct t2m_state *st;
    bool clear;
};

static int emit_config(void *user, const char *topic, const char *payload, size_t len)
{
    struct emit_ctx *e = user;
    if (e->clear)
        act(e->st, T2M_ACT_CLEAR, topic, "", 0, 1, true, false);
    else
        act(e->st, T2M_ACT_PUBLISH, topic, payload, len, 1, true, true);
    return 0;
}

static void discovery(struct t2m_state *st, struct t2m_device *d, bool clear)
{
    if (!st->cfg->homeassistant.enabled || (!clear && st->hold_discovery)) return;
    struct emit_ctx e = {st, clear};
    const char *id = st->cfg->instances[d->instance].id;
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    if (t2m_discovery_device(&st->disc, id, strlen(id), tk, tl, alias_of(st, d), emit_config, &e) ==
            0 &&
        !clear)
        d->flags |= T2M_DEVF_DISCOVERED;
}

/* The device's state on every topic that carries it: position, attribute topics, trip,
 * OwnTracks. Discovery goes first the first time on a connection (SPEC section 4). */
#define ATTR_ALL ((1u << T2M_ATTR_COUNT) - 1u)

/* The device's state on B/I/D/position, carrying its live trip (SPEC 2.1: one message per
 * update). B/I/D/trip goes with it only when the trip started or ended since it last went
 * (T2M_TRIPF_DUE), or with `all` (a re-send: reconnect, Home Assistant back, read-back). */
static void publish_state_as(struct t2m_state *st, struct t2m_device *d, int64_t now_ms, bool all)
{
    const struct t2m_config *cfg = st->cfg;
    if (cfg->homeassistant.enabled && st->connected && !(d->flags & T2M_DEVF_DISCOVERED))
        discovery(st, d, false);
    struct t2m_update u;
    t2m_device_load(d, &u);
    struct t2m_state_extra x;
    extra_of(st, d, &x);
    const char *id = cfg->instances[d->instance].id;
    int qos = cfg->mqtt.qos;
    if (d->trip != T2M_TRIP_NONE) {
        struct t2m_trip t;
        char trb[T2M_DEVICE_TEXT];
        trip_of(d, &t, trb);
        x.trip_len = t2m_payload_trip(st->tripbuf, sizeof(st->tripbuf), &t, st->units);
        x.trip = x.trip_len ? st->tripbuf : NULL;
    }
    /* A device known only from a trip record has no fix: no position (it would say 1970) */
    size_t n = (u.has & T2M_HAS_TS) ? t2m_payload_state(st->payload, sizeof(st->payload), id,
                                                        strlen(id), &u, &x, st->units)
                                    : 0;
    if (n && device_topic(st, d, "position")) {
        act(st, T2M_ACT_PUBLISH, st->topic, st->payload, n, qos, cfg->mqtt.retain, false);
        view(st, T2M_ACT_VIEW_DEVICE, st->payload, n);
    }
    if (cfg->mqtt.attribute_topics) {
        unsigned mask = all ? ATTR_ALL : st->attr_mask;
        for (int a = 0; a < T2M_ATTR_COUNT; a++) {
            if (!(mask & (1u << a))) continue;
            size_t vn = t2m_payload_state_attribute(st->payload, sizeof(st->payload),
                                                    (enum t2m_attr)a, &u, &x, st->units);
            if (vn && device_topic(st, d, t2m_payload_attr_name((enum t2m_attr)a)))
                act(st, T2M_ACT_PUBLISH, st->topic, st->payload, vn, qos, cfg->mqtt.retain, false);
        }
    }
    if (x.trip && (all || (d->trip_flags & T2M_TRIPF_DUE)) && device_topic(st, d, "trip"))
        act(st, T2M_ACT_PUBLISH, st->topic, x.trip, x.trip_len, qos, true, false);
    d->trip_flags &= (uint8_t)~T2M_TRIPF_DUE;
    if (cfg->owntracks.enabled && (u.has & T2M_HAS_TS)) {
        char tid[3];
        const char *alias = x.name;
        t2m_owntracks_tid(tid, alias ? alias : u.device_token,
                          alias ? strlen(alias) : u.device_token_len);
        size_t on = t2m_owntracks_payload(st->payload, sizeof(st->payload), &u, tid, now_ms / 1000);
        char dseg[T2M_SEG_MAX];
        if (on && token_segment(d, dseg) &&
            t2m_topic_join(st->topic, sizeof(st->topic), 3, "owntracks", st->iseg[d->instance],
                           dseg) >= 0)
            act(st, T2M_ACT_PUBLISH, st->topic, st->payload, on, qos, true, false);
    }
    if (u.has & T2M_HAS_TS) d->last_ts_ms = u.ts_ms;
}

static void publish_state(struct t2m_state *st, struct t2m_device *d, int64_t now_ms)
{
    publish_state_as(st, d, now_ms, false);
}

/* One message on B/I/D/event (not retained, QoS 1): {"event":..,"time":..,"instance_id":..,
 * "device_token":..,"name":..<,rest>}. `rest` is a JSON fragment starting with ',' or "". */
static void event(struct t2m_state *st, struct t2m_device *d, const char *name, int64_t time_ms,
                  const char *rest)
{
    struct t2m_out o = {st->event, sizeof(st->event), 0, false};
    T2M_OUT_LIT(&o, "{\"event\":\"");
    t2m_out_str(&o, name);
    T2M_OUT_LIT(&o, "\",\"time\":");
    char ts[48];
    size_t l = t2m_units_format_ts(ts, sizeof(ts), time_ms, st->units->timestamp, st->units->tz);
    if (st->units->timestamp == T2M_TS_ISO) T2M_OUT_LIT(&o, "\"");
    t2m_out_put(&o, ts, l);
    if (st->units->timestamp == T2M_TS_ISO) T2M_OUT_LIT(&o, "\"");
    const char *id = st->cfg->instances[d->instance].id;
    T2M_OUT_LIT(&o, ",\"instance_id\":");
    t2m_out_json(&o, id, strlen(id));
    T2M_OUT_LIT(&o, ",\"device_token\":");
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    t2m_out_json(&o, tk, tl);
    const char *alias = alias_of(st, d);
    if (alias) {
        T2M_OUT_LIT(&o, ",\"name\":");
        t2m_out_json(&o, alias, strlen(alias));
    }
    t2m_out_str(&o, rest);
    T2M_OUT_LIT(&o, "}");
    size_t n = t2m_out_finish(&o);
    if (n && device_topic(st, d, "event"))
        act(st, T2M_ACT_PUBLISH, st->topic, st->event, n, 1, false, false);
}

/* ,"latitude":..,"longitude":.. of the device, when it has a position. */
static void position_fragment(const struct t2m_device *d, char *buf, size_t n)
{
    buf[0] = '\0';
    if (!((d->has & T2M_HAS_LAT) && (d->has & T2M_HAS_LON))) return;
    char la[32], lo[32];
    if (t2m_units_format_shortest(la, sizeof(la), d->lat) &&
        t2m_units_format_shortest(lo, sizeof(lo), d->lon))
        snprintf(buf, n, ",\"latitude\":%s,\"longitude\":%s", la, lo);
}

/* ---- trips and zones ---- */

static void arm_scan(struct t2m_state *st, int64_t now_ms)
{
    if (st->next_scan_ms == INT64_MAX) st->next_scan_ms = now_ms + SCAN_MS;
}

static void trip_end(struct t2m_state *st, struct t2m_device *d, int64_t time_ms)
{
    d->trip = T2M_TRIP_ENDED;
    d->trip_flags |= T2M_TRIPF_DUE;
    struct t2m_trip t;
    char trb[T2M_DEVICE_TEXT];
    trip_of(d, &t, trb);
    char frag[T2M_PAYLOAD_MAX];
    memcpy(frag, ",\"trip\":", 8);
    size_t tn = t2m_payload_trip(frag + 8, sizeof(frag) - 8, &t, st->units);
    if (tn == 0) frag[0] = '\0';
    event(st, d, "trip_ended", time_ms, frag);
}

static void trip_start(struct t2m_state *st, struct t2m_device *d, int64_t fix_ms, int64_t now_ms)
{
    d->trip = T2M_TRIP_DRIVING;
    d->trip_start_ms = d->trip_end_ms = fix_ms;
    d->trip_dist_m = 0;
    d->trip_max_speed = 0;
    d->trip_updates = 0;
    d->trip_flags = T2M_TRIPF_DUE;
    arm_scan(st, now_ms);
}

static void trip_started_event(struct t2m_state *st, struct t2m_device *d)
{
    char frag[2 * T2M_TOKEN_MAX * 6 + 128], pos[96];
    struct t2m_out o = {frag, sizeof(frag), 0, false};
    T2M_OUT_LIT(&o, ",\"track_token\":");
    char trb[T2M_DEVICE_TEXT];
    size_t trl;
    const char *tr = t2m_device_track(d, trb, &trl);
    t2m_out_json(&o, tr ? tr : "", trl);
    position_fragment(d, pos, sizeof(pos));
    t2m_out_str(&o, pos);
    if (t2m_out_finish(&o) == 0) frag[0] = '\0';
    event(st, d, "trip_started", d->trip_start_ms, frag);
}

/* The zone a fix is in: the nearest whose radius holds it, or -1. */
static int zone_of(const struct t2m_state *st, double lat, double lon)
{
    int best = -1;
    double best_d = 0;
    for (size_t i = 0; i < st->cfg->n_zones; i++) {
        const struct t2m_zone *z = &st->cfg->zones[i];
        double dist = t2m_haversine_m(lat, lon, z->latitude, z->longitude);
        if (dist <= z->radius && (best < 0 || dist < best_d)) {
            best = (int)i;
            best_d = dist;
        }
    }
    return best;
}

/* Zone change of a merged fix (SPEC section 2.2): sets d->zone and says what was left and
 * entered (-1: none). An accuracy worse than a radius involved changes nothing. */
static void zones_update(struct t2m_state *st, struct t2m_device *d, const struct t2m_update *u,
                         int *left, int *entered)
{
    *left = *entered = -1;
    if (st->cfg->n_zones == 0 || !(u->has & T2M_HAS_LAT) || !(u->has & T2M_HAS_LON)) return;
    int now = zone_of(st, d->lat, d->lon);
    if (now == d->zone) return;
    if (u->has & T2M_HAS_ACCURACY) {
        if (d->zone >= 0 && u->accuracy > st->cfg->zones[d->zone].radius) return;
        if (now >= 0 && u->accuracy > st->cfg->zones[now].radius) return;
    }
    *left = d->zone;
    *entered = now;
    d->zone = (int16_t)now;
}

/* SPEC section 5: the same zone change as an OwnTracks transition, which Home Assistant's
 * OwnTracks integration and the Recorder take (lat, lon, desc and event are what they read). */
static void owntracks_transition(struct t2m_state *st, struct t2m_device *d, bool enter, int zone,
                                 int64_t fix_ms)
{
    char la[32], lo[32], tid[3], dseg[T2M_SEG_MAX];
    if (!st->cfg->owntracks.enabled || !((d->has & T2M_HAS_LAT) && (d->has & T2M_HAS_LON)) ||
        !t2m_units_format_shortest(la, sizeof(la), d->lat) ||
        !t2m_units_format_shortest(lo, sizeof(lo), d->lon))
        return;
    const char *alias = alias_of(st, d);
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    t2m_owntracks_tid(tid, alias ? alias : tk, alias ? strlen(alias) : tl);
    struct t2m_out o = {st->event, sizeof(st->event), 0, false};
    T2M_OUT_LIT(&o, "{\"_type\":\"transition\",\"event\":\"");
    t2m_out_str(&o, enter ? "enter" : "leave");
    T2M_OUT_LIT(&o, "\",\"desc\":");
    const char *zn = st->cfg->zones[zone].name;
    t2m_out_json(&o, zn, strlen(zn));
    char tail[256];
    int w = snprintf(tail, sizeof(tail),
                     ",\"t\":\"c\",\"tst\":%lld,\"wtst\":%lld,\"lat\":%s,\"lon\":%s",
                     (long long)(fix_ms / 1000), (long long)st->started_s, la, lo);
    if (w < 0 || (size_t)w >= sizeof(tail)) return;
    t2m_out_str(&o, tail);
    if (d->has & T2M_HAS_ACCURACY) {
        long long acc = llround(d->accuracy);
        w = snprintf(tail, sizeof(tail), ",\"acc\":%lld", acc < 1 ? 1 : acc);
        if (w > 0 && (size_t)w < sizeof(tail)) t2m_out_str(&o, tail);
    }
    T2M_OUT_LIT(&o, ",\"tid\":\"");
    t2m_out_str(&o, tid);
    T2M_OUT_LIT(&o, "\"}");
    size_t n = t2m_out_finish(&o);
    if (n && token_segment(d, dseg) &&
        t2m_topic_join(st->topic, sizeof(st->topic), 4, "owntracks", st->iseg[d->instance], dseg,
                       "event") >= 0)
        act(st, T2M_ACT_PUBLISH, st->topic, st->event, n, 1, false, false);
}

static void zone_event(struct t2m_state *st, struct t2m_device *d, const char *name, int zone,
                       int64_t fix_ms)
{
    char frag[512], pos[96];
    position_fragment(d, pos, sizeof(pos));
    struct t2m_out o = {frag, sizeof(frag), 0, false};
    T2M_OUT_LIT(&o, ",\"zone\":");
    const char *zn = st->cfg->zones[zone].name;
    t2m_out_json(&o, zn, strlen(zn));
    t2m_out_str(&o, pos);
    if (t2m_out_finish(&o)) event(st, d, name, fix_ms, frag);
    owntracks_transition(st, d, strcmp(name, "zone_entered") == 0, zone, fix_ms);
}

/* ---- throttle ---- */

static int64_t interval_ms(const struct t2m_state *st)
{
    return (int64_t)(st->cfg->mqtt.min_interval * 1000.0);
}

/* Windows all have the same length, so appending keeps the FIFO in deadline order. Without
 * memory for the entry the device simply gets no window (its next update is not held). */
static void throttle_open(struct t2m_state *st, struct t2m_device *d, int64_t now_ms)
{
    if (st->thr_n == st->thr_cap) {
        size_t cap = st->thr_cap ? st->thr_cap * 2 : 64;
        struct window *w = malloc(cap * sizeof(*w));
        if (!w) return;
        for (size_t i = 0; i < st->thr_n; i++) /* unrolled in order */
            w[i] = st->thr[(st->thr_head + i) & (st->thr_cap - 1)];
        free(st->thr);
        st->thr = w;
        st->thr_cap = cap;
        st->thr_head = 0;
    }
    struct window *w = &st->thr[(st->thr_head + st->thr_n++) & (st->thr_cap - 1)];
    w->d = d;
    w->end_ms = now_ms + interval_ms(st);
    d->flags |= T2M_DEVF_IN_WINDOW;
}

/* Publishes now, or marks the state pending until the device's window ends. */
static void publish_or_hold(struct t2m_state *st, struct t2m_device *d, int64_t now_ms)
{
    if (interval_ms(st) <= 0) {
        publish_state(st, d, now_ms);
        return;
    }
    if (d->flags & T2M_DEVF_IN_WINDOW) {
        d->flags |= T2M_DEVF_PENDING;
        return;
    }
    publish_state(st, d, now_ms);
    throttle_open(st, d, now_ms);
}

/* ---- removal ---- */

/* Every device is freed here: the eviction candidates may point at it. */
static void free_device(struct t2m_state *st, struct t2m_device *d)
{
    st->n_evict = 0;
    t2m_devices_remove(st->devices, d);
}

static void collect_unheard(struct t2m_device *d, void *user)
{
    struct t2m_state *st = user;
    if (st->n_evict < EVICT_BATCH &&
        !(d->flags & (T2M_DEVF_LIVE | T2M_DEVF_REMOVED | T2M_DEVF_IN_WINDOW)))
        st->evict[st->n_evict++] = d;
}

/* SPEC 2.1: the table is full and a live device wants in. A device known only from the
 * read-back (never heard in this run: possibly junk under the bridge's retained topics) is
 * forgotten to make room; its retained messages stay. True when one was. */
static bool evict_unheard(struct t2m_state *st, int64_t now_ms)
{
    for (;;) {
        if (st->n_evict == 0) {
            if (!st->evict_scan) return false;
            t2m_devices_foreach(st->devices, collect_unheard, st);
            if (st->n_evict == 0) {
                st->evict_scan = false;
                return false;
            }
        }
        struct t2m_device *d = st->evict[--st->n_evict];
        if (d->flags & (T2M_DEVF_LIVE | T2M_DEVF_REMOVED | T2M_DEVF_IN_WINDOW)) continue;
        uint64_t n = t2m_repeat_hit(&st->rep_evict, now_ms);
        if (n)
            T2M_WARN("state",
                     "upstream.max_devices (%d) reached: %llu device(s) known only from the "
                     "read-back forgotten to make room for live ones",
                     st->cfg->upstream.max_devices, (unsigned long long)n);
        view_removed(st, d);
        free_device(st, d);
        return true;
    }
}

static void remove_device(struct t2m_state *st, struct t2m_device *d, const char *reason,
                          int64_t now_ms)
{
    char frag[64];
    snprintf(frag, sizeof(frag), ",\"reason\":\"%s\"", reason);
    event(st, d, "device_removed", now_ms, frag);
    static const char *const suffixes[] = {"position", "trip"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        if (device_topic(st, d, suffixes[i]))
            act(st, T2M_ACT_CLEAR, st->topic, "", 0, 1, true, false);
    if (st->cfg->mqtt.attribute_topics)
        for (int a = 0; a < T2M_ATTR_COUNT; a++)
            if (device_topic(st, d, t2m_payload_attr_name((enum t2m_attr)a)))
                act(st, T2M_ACT_CLEAR, st->topic, "", 0, 1, true, false);
    char dseg[T2M_SEG_MAX];
    if (st->cfg->owntracks.enabled && token_segment(d, dseg) &&
        t2m_topic_join(st->topic, sizeof(st->topic), 3, "owntracks", st->iseg[d->instance], dseg) >=
            0)
        act(st, T2M_ACT_CLEAR, st->topic, "", 0, 1, true, false);
    discovery(st, d, true);
    view_removed(st, d);
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    T2M_INFO("state", "device %.*s of %s removed (%s)", (int)tl, tk,
             st->cfg->instances[d->instance].id, reason);
    if (d->flags & T2M_DEVF_IN_WINDOW) {
        d->flags |= T2M_DEVF_REMOVED; /* the throttle FIFO frees it when its window ends */
        return;
    }
    free_device(st, d);
}

/* ---- inputs ---- */

static int64_t skew_ms(const struct t2m_state *st)
{
    return (int64_t)(st->cfg->state.max_clock_skew * 1000.0);
}

/* The device, created when new. `live`: for an update from the upstream (then a full table
 * makes room by forgetting a device known only from the read-back), else for the read-back. */
static struct t2m_device *device(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                                 int64_t now_ms, bool live)
{
    enum t2m_dev_status s;
    struct t2m_device *d = t2m_devices_get(st->devices, inst, token, len, true, &s);
    if (!d && s == T2M_DEV_FULL && live && evict_unheard(st, now_ms))
        d = t2m_devices_get(st->devices, inst, token, len, true, &s);
    if (d) {
        if (d->flags & T2M_DEVF_REMOVED) { /* removed; freed at its window's end */
            if (live) st->stats->dropped[T2M_DROP_REMOVED]++;
            return NULL;
        }
        if (live) d->flags |= T2M_DEVF_LIVE;
        if (!live && s == T2M_DEV_CREATED) st->evict_scan = true;
        return d;
    }
    if (s == T2M_DEV_FULL) {
        st->stats->dropped[T2M_DROP_MAX_DEVICES]++;
        uint64_t n = t2m_repeat_hit(&st->rep_full, now_ms);
        if (n)
            T2M_WARN("state",
                     "upstream.max_devices (%d) reached: updates of further new devices are "
                     "dropped (%llu since the last report)",
                     st->cfg->upstream.max_devices, (unsigned long long)n);
    } else {
        T2M_ERROR("state", "out of memory adding a device");
    }
    return NULL;
}

/* The attribute topics (bit per enum t2m_attr) whose value u changes, before it is stored. */
static unsigned changed_attrs(const struct t2m_device *d, const struct t2m_update *u,
                              int64_t fix_ms, bool new_track)
{
    unsigned c = 1u << T2M_ATTR_LAST_SEEN; /* the arrival: new with every update */
    bool had = d->flags & T2M_DEVF_HAS_STATE;
    if ((u->has & T2M_HAS_LAT) && (u->has & T2M_HAS_LON)) {
        if (!had || !(d->has & T2M_HAS_LAT) || u->lat != d->lat) c |= 1u << T2M_ATTR_LATITUDE;
        if (!had || !(d->has & T2M_HAS_LON) || u->lon != d->lon) c |= 1u << T2M_ATTR_LONGITUDE;
    }
    if ((u->has & T2M_HAS_SPEED) && (!had || !(d->has & T2M_HAS_SPEED) || u->speed != d->speed))
        c |= 1u << T2M_ATTR_SPEED;
    if ((u->has & T2M_HAS_ACCURACY) &&
        (!had || !(d->has & T2M_HAS_ACCURACY) || u->accuracy != d->accuracy))
        c |= 1u << T2M_ATTR_ACCURACY;
    if ((u->has & T2M_HAS_HEADING) &&
        (!had || !(d->has & T2M_HAS_HEADING) || u->heading != d->heading))
        c |= 1u << T2M_ATTR_HEADING;
    if (!had || !(d->has & T2M_HAS_TS) || fix_ms != d->ts_ms) c |= 1u << T2M_ATTR_TIMESTAMP;
    if (new_track) c |= 1u << T2M_ATTR_TRACK_TOKEN;
    return c;
}

void t2m_state_update(struct t2m_state *st, unsigned inst, const struct t2m_update *u,
                      int64_t now_ms)
{
    st->now_ms = now_ms;
    if (!st->started_s) st->started_s = now_ms / 1000;
    if (inst >= st->cfg->n_instances) return;
    /* SPEC 2.1: a fix time too far ahead of this clock is not trusted (a device with a wrong
     * clock, a forged message): merged as of its arrival, the time counted as rejected. It
     * would otherwise make every real update of the device look stale. */
    struct t2m_update untrusted;
    if ((u->has & T2M_HAS_TS) && u->ts_ms > now_ms + skew_ms(st)) {
        untrusted = *u;
        untrusted.has &= ~(unsigned)T2M_HAS_TS;
        untrusted.rejected |= T2M_HAS_TS;
        u = &untrusted;
        st->stats->fields_rejected++;
        uint64_t n = t2m_repeat_hit(&st->rep_skew, now_ms);
        if (n)
            T2M_WARN("state",
                     "%llu fix time(s) more than state.max_clock_skew (%g s) ahead of this "
                     "clock: merged as of their arrival",
                     (unsigned long long)n, st->cfg->state.max_clock_skew);
    }
    struct t2m_device *d = device(st, inst, u->device_token, u->device_token_len, now_ms, true);
    if (!d) return;
    bool had_ts = (d->flags & T2M_DEVF_HAS_STATE) && (d->has & T2M_HAS_TS);
    /* The stale guard: the state only moves forward (OwnTracks Recorder's lesson). */
    if ((u->has & T2M_HAS_TS) && had_ts && u->ts_ms < d->ts_ms) {
        st->stats->dropped[T2M_DROP_STALE]++;
        T2M_DEBUG("state", "stale update dropped (older than the device's newest fix)");
        return;
    }
    /* Without a Timestamp the fix is as of its arrival, but never before the newest fix. */
    int64_t fix_ms =
        (u->has & T2M_HAS_TS) ? u->ts_ms : (had_ts && d->ts_ms > now_ms ? d->ts_ms : now_ms);
    bool new_track = (u->has & T2M_HAS_TRACK) && u->track_token_len <= 255 &&
                     !t2m_device_track_is(d, u->track_token, u->track_token_len);
    bool was_driving = d->trip == T2M_TRIP_DRIVING;
    if (new_track && was_driving) trip_end(st, d, d->trip_end_ms);
    bool had_pos = (d->has & T2M_HAS_LAT) && (d->has & T2M_HAS_LON);
    double plat = d->lat, plon = d->lon;
    /* SPEC 2: attribute topics go only when their value changed */
    unsigned changed = changed_attrs(d, u, fix_ms, new_track);
    if (t2m_device_store(d, u, fix_ms) != 0) {
        T2M_ERROR("state", "out of memory storing a position");
        return;
    }
    d->last_seen_ms = now_ms;
    bool pos = (u->has & T2M_HAS_LAT) && (u->has & T2M_HAS_LON);
    if (new_track) trip_start(st, d, fix_ms, now_ms);
    if (d->trip == T2M_TRIP_DRIVING) {
        d->trip_updates++;
        d->trip_end_ms = fix_ms;
        if (pos && had_pos && !new_track && (d->trip_flags & T2M_TRIPF_START))
            d->trip_dist_m += t2m_haversine_m(plat, plon, d->lat, d->lon);
        if (pos && !(d->trip_flags & T2M_TRIPF_START)) {
            d->trip_start_lat = d->lat;
            d->trip_start_lon = d->lon;
            d->trip_flags |= T2M_TRIPF_START;
        }
        if ((u->has & T2M_HAS_SPEED) &&
            (!(d->trip_flags & T2M_TRIPF_MAX) || u->speed > d->trip_max_speed)) {
            d->trip_max_speed = (float)u->speed;
            d->trip_flags |= T2M_TRIPF_MAX;
        }
    }
    if (st->cfg->state.expire_after > 0) arm_scan(st, now_ms);
    int left, entered;
    zones_update(st, d, u, &left, &entered);
    if (was_driving != (d->trip == T2M_TRIP_DRIVING)) changed |= 1u << T2M_ATTR_DRIVING;
    /* held by the throttle, the window's end sends them all: it cannot know what changed */
    st->attr_mask = changed;
    publish_or_hold(st, d, now_ms);
    st->attr_mask = ATTR_ALL;
    if (new_track) trip_started_event(st, d);
    if (left >= 0) zone_event(st, d, "zone_left", left, fix_ms);
    if (entered >= 0) zone_event(st, d, "zone_entered", entered, fix_ms);
}

static void shift_seen(struct t2m_device *d, void *user)
{
    if (d->last_seen_ms) d->last_seen_ms += *(const int64_t *)user;
}

void t2m_state_clock_step(struct t2m_state *st, int64_t step_ms)
{
    t2m_devices_foreach(st->devices, shift_seen, &step_ms);
    for (size_t i = 0; i < st->thr_n; i++)
        st->thr[(st->thr_head + i) & (st->thr_cap - 1)].end_ms += step_ms;
    if (st->next_scan_ms != INT64_MAX) st->next_scan_ms += step_ms;
}

int64_t t2m_state_next_deadline(const struct t2m_state *st)
{
    int64_t t = st->next_scan_ms;
    if (st->thr_n && st->thr[st->thr_head].end_ms < t) t = st->thr[st->thr_head].end_ms;
    return t;
}

struct scan_ctx {
    struct t2m_state *st;
    int64_t now_ms;
    bool again;
};

static void scan_one(struct t2m_device *d, void *user)
{
    struct scan_ctx *c = user;
    struct t2m_state *st = c->st;
    if (d->flags & T2M_DEVF_REMOVED) return;
    double expire = st->cfg->state.expire_after;
    if (expire > 0 && d->last_seen_ms && c->now_ms - d->last_seen_ms >= (int64_t)(expire * 1000)) {
        remove_device(st, d, "expired", c->now_ms);
        return;
    }
    if (expire > 0) c->again = true;
    if (d->trip != T2M_TRIP_DRIVING) return;
    if (c->now_ms - d->last_seen_ms >= (int64_t)(st->cfg->state.trip_timeout * 1000)) {
        trip_end(st, d, d->trip_end_ms);
        d->flags &= (uint8_t)~T2M_DEVF_PENDING; /* the state below is the latest */
        publish_state(st, d, c->now_ms);
        return;
    }
    c->again = true;
}

void t2m_state_tick(struct t2m_state *st, int64_t now_ms)
{
    st->now_ms = now_ms;
    while (st->thr_n && st->thr[st->thr_head].end_ms <= now_ms) {
        struct t2m_device *d = st->thr[st->thr_head].d;
        st->thr_head = (st->thr_head + 1) & (st->thr_cap - 1);
        st->thr_n--;
        d->flags &= (uint8_t)~T2M_DEVF_IN_WINDOW;
        if (d->flags & T2M_DEVF_REMOVED) {
            free_device(st, d);
            continue;
        }
        if (d->flags & T2M_DEVF_PENDING) { /* the trailing edge: the window's latest state */
            d->flags &= (uint8_t)~T2M_DEVF_PENDING;
            publish_state(st, d, now_ms);
            throttle_open(st, d, now_ms);
        }
    }
    if (now_ms >= st->next_scan_ms) {
        struct scan_ctx c = {st, now_ms, false};
        st->next_scan_ms = INT64_MAX;
        t2m_devices_foreach(st->devices, scan_one, &c);
        if (c.again) st->next_scan_ms = now_ms + SCAN_MS;
    }
}

struct repub_ctx {
    struct t2m_state *st;
    int64_t now_ms;
};

static void republish_one(struct t2m_device *d, void *user)
{
    struct repub_ctx *c = user;
    if (d->flags & T2M_DEVF_REMOVED) return;
    d->flags &= (uint8_t)~T2M_DEVF_DISCOVERED; /* configs go again, before the state */
    if (d->flags & T2M_DEVF_HAS_STATE) {
        d->flags &= (uint8_t)~T2M_DEVF_PENDING;
        publish_state_as(c->st, d, c->now_ms, true);
    } else {
        discovery(c->st, d, false);
    }
}

void t2m_state_republish(struct t2m_state *st, int64_t now_ms)
{
    st->now_ms = now_ms;
    struct repub_ctx c = {st, now_ms};
    t2m_devices_foreach(st->devices, republish_one, &c);
}

static void forget_discovered(struct t2m_device *d, void *user)
{
    (void)user;
    d->flags &= (uint8_t)~T2M_DEVF_DISCOVERED;
}

void t2m_state_connected(struct t2m_state *st, bool connected, int64_t now_ms)
{
    st->now_ms = now_ms;
    if (!st->started_s) st->started_s = now_ms / 1000;
    st->connected = connected;
    if (connected)
        t2m_state_republish(st, now_ms);
    else
        t2m_devices_foreach(st->devices, forget_discovered, NULL);
}

/* ---- read-back ---- */

size_t t2m_state_readback_topics(const struct t2m_state *st, char topics[][T2M_TOPIC_MAX + 1])
{
    const char *b = st->cfg->mqtt.base_topic, *p = st->cfg->homeassistant.discovery_prefix;
    /* positions and trips; configs per entity (P/c/n/o/config) and per device (P/device/n/config,
     * and everything else of the 4-segment form that is not ours and is ignored) */
    if (t2m_topic_join(topics[0], T2M_TOPIC_MAX + 1, 4, b, "+", "+", "position") < 0 ||
        t2m_topic_join(topics[1], T2M_TOPIC_MAX + 1, 4, b, "+", "+", "trip") < 0 ||
        t2m_topic_join(topics[2], T2M_TOPIC_MAX + 1, 5, p, "+", "+", "+", "config") < 0 ||
        t2m_topic_join(topics[3], T2M_TOPIC_MAX + 1, 4, p, "device", "+", "config") < 0)
        return 0;
    return T2M_READBACK_TOPICS;
}

static bool get_number(json_object *o, const char *key, double *v)
{
    json_object *x;
    if (!json_object_object_get_ex(o, key, &x)) return false;
    if (!json_object_is_type(x, json_type_double) && !json_object_is_type(x, json_type_int))
        return false;
    *v = json_object_get_double(x);
    return isfinite(*v);
}

static const char *get_string(json_object *o, const char *key, size_t *len)
{
    json_object *x;
    if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_string))
        return NULL;
    if (len) *len = (size_t)json_object_get_string_len(x);
    return json_object_get_string(x);
}

/* A time as the bridge printed it in any units.timestamp: ISO text, seconds or milliseconds. */
static bool get_time(json_object *o, const char *key, int64_t *ms)
{
    size_t l;
    const char *s = get_string(o, key, &l);
    if (s) return t2m_protocol_parse_ts_text(s, l, ms) == 0;
    double v;
    return get_number(o, key, &v) && t2m_protocol_ts_from_number(v, ms) == 0;
}

/* Speeds in whatever unit the payload names (units may have changed between runs). */
static double to_mps(json_object *o, double v)
{
    const char *u = get_string(o, "speed_unit", NULL);
    enum t2m_speed_unit su;
    if (!u || t2m_units_parse_speed(u, &su) != 0) return NAN;
    return v / t2m_units_speed(1.0, su);
}

/* Splits B/I/D/kind into the instance index and the decoded token. */
static bool parse_topic(const struct t2m_state *st, const char *topic, const char *kind,
                        unsigned *inst, char *token, size_t *len)
{
    size_t bl = strlen(st->cfg->mqtt.base_topic);
    if (strncmp(topic, st->cfg->mqtt.base_topic, bl) != 0 || topic[bl] != '/') return false;
    const char *i = topic + bl + 1, *slash = strchr(i, '/');
    if (!slash) return false;
    const char *dev = slash + 1, *slash2 = strchr(dev, '/');
    if (!slash2 || strcmp(slash2 + 1, kind) != 0) return false;
    size_t il = (size_t)(slash - i);
    for (size_t k = 0; k < st->cfg->n_instances; k++) {
        if (strlen(st->iseg[k]) == il && memcmp(st->iseg[k], i, il) == 0) {
            int n = t2m_topic_segment_decode(token, T2M_TOKEN_MAX + 1, dev, (size_t)(slash2 - dev));
            if (n <= 0) return false;
            *inst = (unsigned)k;
            *len = (size_t)n;
            return true;
        }
    }
    return false;
}

static void restore_trip(struct t2m_state *st, struct t2m_device *d, json_object *o,
                         int64_t now_ms);
static int set_rename(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                      const char *name);

/* SPEC 2.3: a name read back is a rename that survives the restart, unless the configuration
 * gives the device an alias (that wins) or a rename came first. A name a request could not have
 * set (empty, over 256 bytes, control characters) is not taken. */
static void restore_name(struct t2m_state *st, struct t2m_device *d, json_object *o)
{
    size_t nl = 0;
    const char *name = get_string(o, "name", &nl);
    if (!name || nl == 0 || nl > T2M_TOKEN_MAX || strlen(name) != nl) return;
    for (size_t i = 0; i < nl; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return;
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    if (t2m_config_alias(st->cfg, tk, tl)) return;
    for (size_t i = 0; i < st->n_renames; i++)
        if (st->renames[i].inst == d->instance && st->renames[i].len == tl &&
            memcmp(st->renames[i].token, tk, tl) == 0)
            return;
    set_rename(st, d->instance, tk, tl, name);
}

/* A retained position: restores what the device lacks, or all of it when it is newer. */
static void restore_position(struct t2m_state *st, struct t2m_device *d, json_object *o,
                             int64_t now_ms)
{
    struct t2m_update u;
    memset(&u, 0, sizeof(u));
    double v;
    int64_t ts;
    if (!get_time(o, "timestamp", &ts)) return;
    bool newer = !(d->flags & T2M_DEVF_HAS_STATE) || !(d->has & T2M_HAS_TS) || ts > d->ts_ms;
    unsigned lack = newer ? ~0u : ~(unsigned)d->has;
    /* SPEC 2.1 / issue 19: what comes back is checked by the rules of a live update (a
     * retained message may be anyone's: -50 km/h, gps_accuracy 1e300 ...). */
    double lat, lon;
    if ((lack & T2M_HAS_LAT) && get_number(o, "latitude", &lat) &&
        get_number(o, "longitude", &lon) && t2m_protocol_field_ok(T2M_HAS_LAT, lat) &&
        t2m_protocol_field_ok(T2M_HAS_LON, lon)) {
        u.lat = lat;
        u.lon = lon;
        u.has |= T2M_HAS_LAT | T2M_HAS_LON;
    }
    if ((lack & T2M_HAS_SPEED) && get_number(o, "speed", &v) &&
        t2m_protocol_field_ok(T2M_HAS_SPEED, to_mps(o, v))) {
        u.speed = to_mps(o, v);
        u.has |= T2M_HAS_SPEED;
    }
    if ((lack & T2M_HAS_ACCURACY) && get_number(o, "gps_accuracy", &v) &&
        t2m_protocol_field_ok(T2M_HAS_ACCURACY, v)) {
        u.accuracy = v;
        u.has |= T2M_HAS_ACCURACY;
    }
    if ((lack & T2M_HAS_HEADING) && get_number(o, "heading", &v) &&
        t2m_protocol_field_ok(T2M_HAS_HEADING, v)) {
        u.heading = v;
        u.has |= T2M_HAS_HEADING;
    }
    size_t tl = 0;
    const char *track = get_string(o, "track_token", &tl);
    if ((lack & T2M_HAS_TRACK) && track && tl > 0 && tl <= 255) {
        memcpy(u.track_token, track, tl);
        u.track_token_len = tl;
        u.has |= T2M_HAS_TRACK;
    }
    if (newer) {
        u.ts_ms = ts;
        u.has |= T2M_HAS_TS;
    }
    char tb[T2M_DEVICE_TEXT];
    const char *tk = t2m_device_token(d, tb, &u.device_token_len);
    memcpy(u.device_token, tk, u.device_token_len);
    bool had_state = d->flags & T2M_DEVF_HAS_STATE;
    if (!had_state) d->flags |= T2M_DEVF_RESTORED;
    int64_t keep_ts = d->ts_ms;
    if (t2m_device_store(d, &u, had_state ? keep_ts : ts) != 0) return;
    int64_t seen;
    if (get_time(o, "last_seen", &seen) && seen > d->last_seen_ms) d->last_seen_ms = seen;
    if (!d->last_seen_ms) d->last_seen_ms = now_ms;
    json_object *drv;
    if (json_object_object_get_ex(o, "driving", &drv) && json_object_get_boolean(drv) &&
        d->trip == T2M_TRIP_NONE && (d->has & T2M_HAS_TRACK)) {
        /* The trip object may come later: until then, a trip that started at this fix. */
        d->trip = T2M_TRIP_DRIVING;
        d->trip_start_ms = d->trip_end_ms = d->ts_ms;
        arm_scan(st, now_ms);
    }
    restore_name(st, d, o);
    const char *zone = get_string(o, "zone", NULL);
    json_object *tr; /* SPEC v3 2.1: the state carries the live trip, newer than B/I/D/trip's */
    if (json_object_object_get_ex(o, "trip", &tr) && json_object_is_type(tr, json_type_object))
        restore_trip(st, d, tr, now_ms);
    for (size_t i = 0; zone && d->zone < 0 && i < st->cfg->n_zones; i++)
        if (strcmp(st->cfg->zones[i].name, zone) == 0) d->zone = (int16_t)i;
    /* Live updates came first and lacked what the broker remembered: the merge goes out. */
    if (had_state) publish_or_hold(st, d, now_ms);
}

/* The figures of a retained trip record, in the bridge's units (metres, m/s). */
struct trip_record {
    double dist_m, start_lat, start_lon;
    uint32_t updates;
    float max_speed;
    uint8_t flags;   /* T2M_TRIPF_MAX, T2M_TRIPF_START: which of them the record had */
    int64_t last_ms; /* the time of its last fix, 0 when the record does not tell */
};

static void read_trip_record(json_object *o, struct trip_record *r)
{
    memset(r, 0, sizeof(*r));
    double v;
    const char *du = get_string(o, "distance_unit", NULL);
    enum t2m_dist_unit unit = du && strcmp(du, "mi") == 0 ? T2M_DIST_FT : T2M_DIST_M;
    if (get_number(o, "distance", &v) && v >= 0) {
        double m = t2m_trip_distance_m(v, unit);
        if (m <= TRIP_DISTANCE_MAX) r->dist_m = m;
    }
    if (get_number(o, "updates", &v) && v >= 0 && v < 4e9) r->updates = (uint32_t)v;
    if (get_number(o, "max_speed", &v) && t2m_protocol_field_ok(T2M_HAS_SPEED, to_mps(o, v))) {
        r->max_speed = (float)to_mps(o, v);
        r->flags |= T2M_TRIPF_MAX;
    }
    if (get_number(o, "start_latitude", &r->start_lat) &&
        get_number(o, "start_longitude", &r->start_lon) &&
        t2m_protocol_field_ok(T2M_HAS_LAT, r->start_lat) &&
        t2m_protocol_field_ok(T2M_HAS_LON, r->start_lon))
        r->flags |= T2M_TRIPF_START;
    /* the last fix of the trip: its end, or (while driving) start + duration */
    int64_t start;
    r->last_ms = 0;
    if (get_time(o, "end", &r->last_ms)) return;
    if (get_time(o, "start", &start) && get_number(o, "duration", &v) && v >= 0 &&
        v <= TRIP_DURATION_MAX)
        r->last_ms = start + (int64_t)(v * 1000.0);
}

static void restore_trip(struct t2m_state *st, struct t2m_device *d, json_object *o, int64_t now_ms)
{
    size_t tl = 0;
    const char *track = get_string(o, "track_token", &tl);
    const char *state = get_string(o, "state", NULL);
    int64_t start;
    if (!track || tl == 0 || tl > 255 || !state || !get_time(o, "start", &start)) return;
    char trb[T2M_DEVICE_TEXT];
    size_t cur_len;
    bool has_track = t2m_device_track(d, trb, &cur_len) != NULL;
    bool same = t2m_device_track_is(d, track, tl);
    if (has_track && !same) return; /* another trip is the device's now */
    bool driving = strcmp(state, "driving") == 0;
    struct trip_record r;
    read_trip_record(o, &r);
    if (start > now_ms + skew_ms(st)) return; /* SPEC 2.1: a time too far ahead is no memory */
    if (same && d->trip_updates > 0 && !(d->flags & T2M_DEVF_LIVE)) {
        /* Two records of one trip: the state's live copy and B/I/D/trip's (written at its start
         * and end). The one with more updates is the newer. */
        if (r.updates <= d->trip_updates) return;
    } else if (same && d->trip_updates > 0) {
        /* Live updates of this very trip arrived before its retained record (a restart while
         * driving): they continue the trip the record describes. Once: then the starts match. */
        if (!driving || d->trip != T2M_TRIP_DRIVING || start >= d->trip_start_ms) return;
        d->trip_dist_m += r.dist_m;
        d->trip_updates += r.updates;
        if ((r.flags & T2M_TRIPF_MAX) &&
            (!(d->trip_flags & T2M_TRIPF_MAX) || r.max_speed > d->trip_max_speed))
            d->trip_max_speed = r.max_speed;
        if (r.flags & T2M_TRIPF_START) {
            d->trip_start_lat = r.start_lat;
            d->trip_start_lon = r.start_lon;
        }
        d->trip_flags |= r.flags;
        d->trip_start_ms = start;
        publish_or_hold(st, d, now_ms);
        return;
    }
    if (!driving && strcmp(state, "ended") != 0) return;
    /* A trip record without a position (the position came later, or never): the device has
     * no fix of its own, and its last fix is the trip's. */
    bool had_fix = (d->flags & T2M_DEVF_HAS_STATE) && (d->has & T2M_HAS_TS);
    if (!has_track) {
        struct t2m_update u;
        memset(&u, 0, sizeof(u));
        memcpy(u.track_token, track, tl);
        u.track_token_len = tl;
        u.has = T2M_HAS_TRACK;
        if (t2m_device_store(d, &u, d->ts_ms) != 0) return;
        if (!had_fix) d->has &= (uint8_t)~T2M_HAS_TS; /* the store stamps one: not a fix */
    }
    d->trip = driving ? T2M_TRIP_DRIVING : T2M_TRIP_ENDED;
    d->trip_start_ms = start;
    d->trip_end_ms = r.last_ms ? r.last_ms : had_fix ? d->ts_ms : start;
    if (had_fix && driving && d->ts_ms > d->trip_end_ms) d->trip_end_ms = d->ts_ms;
    if (d->trip_end_ms < start) d->trip_end_ms = start;
    d->trip_dist_m = r.dist_m;
    d->trip_updates = r.updates;
    d->trip_max_speed = r.max_speed;
    d->trip_start_lat = r.start_lat;
    d->trip_start_lon = r.start_lon;
    d->trip_flags = r.flags;
    /* last seen: as the position said, else the trip's last fix (a drive record 100 s old has
     * trip_timeout - 100 s to go, not none), never later than now */
    if (!had_fix || !d->last_seen_ms) {
        int64_t seen = d->trip_end_ms < now_ms ? d->trip_end_ms : now_ms;
        if (seen > d->last_seen_ms) d->last_seen_ms = seen;
    }
    if (driving) arm_scan(st, now_ms);
}

/* Whether a config read back is this bridge's: its unique_id has the bridge's prefix, or (one
 * config per device) a component's has; a migration marker under the bridge's own node (the
 * caller checked the topic) is too, so a handover left half done is finished. */
static bool config_ours(const struct t2m_state *st, json_object *o)
{
    size_t ul = 0;
    const char *uid = get_string(o, "unique_id", &ul);
    if (uid) return t2m_discovery_ours(&st->disc, uid, ul);
    json_object *m, *cmps;
    if (json_object_object_get_ex(o, "migrate_discovery", &m) && json_object_get_boolean(m))
        return true;
    if (!json_object_object_get_ex(o, "components", &cmps) &&
        !json_object_object_get_ex(o, "cmps", &cmps))
        return false;
    if (!json_object_is_type(cmps, json_type_object)) return false;
    json_object_object_foreach(cmps, id, c)
    {
        (void)id;
        uid = json_object_is_type(c, json_type_object) ? get_string(c, "unique_id", &ul) : NULL;
        if (uid && t2m_discovery_ours(&st->disc, uid, ul)) return true;
    }
    return false;
}

/* A retained discovery config: remembered when it is this bridge's. */
static bool readback_config(struct t2m_state *st, const char *topic, const void *payload,
                            size_t len)
{
    size_t pl = strlen(st->cfg->homeassistant.discovery_prefix);
    size_t tl = strlen(topic);
    if (strncmp(topic, st->cfg->homeassistant.discovery_prefix, pl) != 0 || topic[pl] != '/' ||
        tl < 7 || strcmp(topic + tl - 7, "/config") != 0)
        return false;
    if (len == 0 || len > 65536 || !t2m_discovery_topic_ours(topic + pl + 1)) return true;
    json_tokener *tok = json_tokener_new_ex(8);
    json_object *o = tok ? json_tokener_parse_ex(tok, payload, (int)len) : NULL;
    if (tok) json_tokener_free(tok);
    bool ours = o && json_object_is_type(o, json_type_object) && config_ours(st, o);
    json_object_put(o);
    if (!ours) return true;
    if (st->n_seen == st->cap_seen) {
        size_t cap = st->cap_seen ? st->cap_seen * 2 : 64;
        char **n = realloc(st->seen_configs, cap * sizeof(*n));
        if (!n) return true;
        st->seen_configs = n;
        st->cap_seen = cap;
    }
    char *copy = strdup(topic);
    if (copy) st->seen_configs[st->n_seen++] = copy;
    return true;
}

struct topic_set {
    char **t;
    size_t n, cap;
    bool oom;
};

static int collect_topic(void *user, const char *topic, const char *payload, size_t len)
{
    (void)payload;
    (void)len;
    struct topic_set *set = user;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        char **n = realloc(set->t, cap * sizeof(*n));
        if (!n) {
            set->oom = true;
            return 1;
        }
        set->t = n;
        set->cap = cap;
    }
    if (!(set->t[set->n] = strdup(topic))) {
        set->oom = true;
        return 1;
    }
    set->n++;
    return 0;
}

struct collect_ctx {
    struct t2m_state *st;
    const struct t2m_discovery_ctx *disc; /* the form to collect */
    struct topic_set *set;
};

static void collect_device(struct t2m_device *d, void *user)
{
    struct collect_ctx *c = user;
    if (d->flags & T2M_DEVF_REMOVED) return;
    const char *id = c->st->cfg->instances[d->instance].id;
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    t2m_discovery_device(c->disc, id, strlen(id), tk, tl, alias_of(c->st, d), collect_topic,
                         c->set);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct restored_ctx {
    struct t2m_state *st;
    int64_t now_ms;
};

/* A device known from the read-back alone goes out again in the present configuration (units,
 * alias, discovery), so the broker never keeps a state rendered the old way. */
static void republish_restored(struct t2m_device *d, void *user)
{
    struct restored_ctx *c = user;
    if (!(d->flags & T2M_DEVF_RESTORED) || (d->flags & T2M_DEVF_REMOVED)) return;
    d->flags &= (uint8_t) ~(T2M_DEVF_RESTORED | T2M_DEVF_DISCOVERED | T2M_DEVF_PENDING);
    if (d->flags & T2M_DEVF_HAS_STATE) publish_state_as(c->st, d, c->now_ms, true);
}

/* Every config topic this bridge would publish in the form of `disc`, sorted. */
static void collect_all(struct t2m_state *st, const struct t2m_discovery_ctx *disc,
                        struct topic_set *set)
{
    struct collect_ctx c = {st, disc, set};
    t2m_devices_foreach(st->devices, collect_device, &c);
    const char *ids[st->cfg->n_instances ? st->cfg->n_instances : 1];
    for (size_t i = 0; i < st->cfg->n_instances; i++)
        ids[i] = st->cfg->instances[i].id;
    t2m_discovery_bridge(disc, ids, st->cfg->n_instances, collect_topic, set);
    if (set->n) qsort(set->t, set->n, sizeof(*set->t), cmp_str);
}

static void free_set(struct topic_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->t[i]);
    free(set->t);
}

static void discover_pending(struct t2m_device *d, void *user)
{
    if (!(d->flags & (T2M_DEVF_DISCOVERED | T2M_DEVF_REMOVED))) discovery(user, d, false);
}

/* SPEC 4: configs read back in the other form (0.x's one per entity when device-based discovery
 * is on, or the reverse) of entities the bridge still has are handed over as Home Assistant
 * documents it: {"migrate_discovery": true} on each old topic first (HA unloads the entity and
 * keeps its registry entry: id, name, area, history), then the new configs, then (the
 * withdrawal) the old topics cleared. */
static void migrate(struct t2m_state *st)
{
    if (!st->cfg->homeassistant.enabled || st->n_seen == 0) return;
    struct t2m_discovery_ctx other = st->disc;
    other.device_based = !other.device_based;
    struct topic_set set = {NULL, 0, 0, false};
    collect_all(st, &other, &set);
    static const char marker[] = "{\"migrate_discovery\":true}";
    size_t n = 0;
    for (size_t i = 0; i < st->n_seen && !set.oom; i++) {
        const char *t = st->seen_configs[i];
        if (!set.n || !bsearch(&t, set.t, set.n, sizeof(*set.t), cmp_str)) continue;
        act(st, T2M_ACT_PUBLISH, t, marker, sizeof(marker) - 1, 1, true, true);
        n++;
    }
    if (n)
        T2M_INFO("state", "migrating %zu Home Assistant configs to %s discovery", n,
                 st->disc.device_based ? "device-based" : "per-entity");
    free_set(&set);
}

void t2m_state_hold_discovery(struct t2m_state *st, bool hold)
{
    st->hold_discovery = hold;
}

void t2m_state_readback_done(struct t2m_state *st, int64_t now_ms)
{
    st->now_ms = now_ms;
    migrate(st);
    st->hold_discovery = false;
    struct restored_ctx rc = {st, now_ms};
    t2m_devices_foreach(st->devices, republish_restored, &rc);
    if (st->connected) t2m_devices_foreach(st->devices, discover_pending, st);
}

const struct t2m_discovery_ctx *t2m_state_discovery(const struct t2m_state *st)
{
    return &st->disc;
}

size_t t2m_state_withdraw(struct t2m_state *st, bool apply)
{
    struct topic_set want = {NULL, 0, 0, false};
    if (apply && st->cfg->homeassistant.enabled) collect_all(st, &st->disc, &want);
    size_t cleared = 0;
    if (apply && !want.oom) { /* without the whole set, withdrawing anything could be wrong */
        for (size_t i = 0; i < st->n_seen; i++) {
            const char *t = st->seen_configs[i];
            if (want.n && bsearch(&t, want.t, want.n, sizeof(*want.t), cmp_str)) continue;
            act(st, T2M_ACT_CLEAR, t, "", 0, 1, true, false);
            cleared++;
        }
    }
    if (cleared)
        T2M_INFO("state", "withdrew %zu Home Assistant configs that no longer apply", cleared);
    free_set(&want);
    for (size_t i = 0; i < st->n_seen; i++)
        free(st->seen_configs[i]);
    st->n_seen = 0;
    return cleared;
}

bool t2m_state_retained(struct t2m_state *st, const char *topic, const void *payload, size_t len,
                        int64_t now_ms)
{
    st->now_ms = now_ms;
    unsigned inst;
    char token[T2M_TOKEN_MAX + 1];
    size_t tl = 0;
    bool is_trip = false;
    if (!parse_topic(st, topic, "position", &inst, token, &tl)) {
        if (!parse_topic(st, topic, "trip", &inst, token, &tl))
            return readback_config(st, topic, payload, len);
        is_trip = true;
    }
    if (len == 0 || len > T2M_PAYLOAD_MAX) return true; /* cleared, or not ours to parse */
    json_tokener *tok = json_tokener_new_ex(8);
    if (!tok) return true;
    json_object *o = json_tokener_parse_ex(tok, payload, (int)len);
    json_tokener_free(tok);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return true;
    }
    /* Memory needs a time: a position its fix time, a trip its start. One too far ahead of this
     * clock (forged, or from a device with a wrong clock) is ignored, so it can never make the
     * device's real updates look stale (SPEC 2.1). */
    int64_t t;
    if (!get_time(o, is_trip ? "start" : "timestamp", &t)) {
        json_object_put(o);
        return true;
    }
    if (t > now_ms + skew_ms(st)) {
        st->stats->fields_rejected++;
        uint64_t n = t2m_repeat_hit(&st->rep_skew, now_ms);
        if (n)
            T2M_WARN("state",
                     "%llu retained message(s) read back with a time more than "
                     "state.max_clock_skew (%g s) ahead of this clock: ignored (the last on %s)",
                     (unsigned long long)n, st->cfg->state.max_clock_skew, topic);
        json_object_put(o);
        return true;
    }
    struct t2m_device *d = device(st, inst, token, tl, now_ms, false);
    if (d) {
        if (is_trip)
            restore_trip(st, d, o, now_ms);
        else
            restore_position(st, d, o, now_ms);
    }
    json_object_put(o);
    return true;
}

/* ---- requests ---- */

int t2m_state_instance(const struct t2m_state *st, const char *id)
{
    for (size_t i = 0; i < st->cfg->n_instances; i++)
        if (id && strcmp(st->cfg->instances[i].id, id) == 0) return (int)i;
    return -1;
}

static struct t2m_device *known(struct t2m_state *st, unsigned inst, const char *token, size_t len)
{
    struct t2m_device *d = t2m_devices_get(st->devices, inst, token, len, false, NULL);
    return d && !(d->flags & T2M_DEVF_REMOVED) ? d : NULL;
}

int t2m_state_remove(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                     int64_t now_ms)
{
    st->now_ms = now_ms;
    struct t2m_device *d = known(st, inst, token, len);
    if (!d) return -1;
    remove_device(st, d, "request", now_ms);
    return 0;
}

/* The device's name from a rename (a request, or the read-back of one): 0, or -1 without
 * memory. */
static int set_rename(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                      const char *name)
{
    struct rename *r = NULL;
    for (size_t i = 0; i < st->n_renames && !r; i++)
        if (st->renames[i].inst == inst && st->renames[i].len == len &&
            memcmp(st->renames[i].token, token, len) == 0)
            r = &st->renames[i];
    char *copy = strdup(name);
    if (!copy) return -1;
    if (!r) {
        struct rename *n = realloc(st->renames, (st->n_renames + 1) * sizeof(*n));
        char *tok = malloc(len + 1);
        if (n) st->renames = n;
        if (!n || !tok) {
            free(tok);
            free(copy);
            return -1;
        }
        r = &st->renames[st->n_renames++];
        memcpy(tok, token, len);
        tok[len] = '\0';
        *r = (struct rename){inst, tok, len, NULL};
    }
    free(r->name);
    r->name = copy;
    return 0;
}

int t2m_state_rename(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                     const char *name, int64_t now_ms)
{
    st->now_ms = now_ms;
    struct t2m_device *d = known(st, inst, token, len);
    if (!d || !name || set_rename(st, inst, token, len, name) != 0) return -1;
    d->flags &= (uint8_t)~T2M_DEVF_DISCOVERED; /* the configs carry the name: again */
    if (d->flags & T2M_DEVF_HAS_STATE) {
        d->flags &= (uint8_t)~T2M_DEVF_PENDING;
        publish_state(st, d, now_ms);
    } else if (st->connected) {
        discovery(st, d, false);
    }
    return 0;
}

struct render_ctx {
    const struct t2m_state *st;
    int inst;
    struct t2m_out *o;
    bool first;
};

static void render_one(struct t2m_device *d, void *user)
{
    struct render_ctx *c = user;
    if ((c->inst >= 0 && d->instance != (unsigned)c->inst) || (d->flags & T2M_DEVF_REMOVED) ||
        c->o->full)
        return;
    struct t2m_update u;
    t2m_device_load(d, &u);
    struct t2m_state_extra x;
    extra_of(c->st, d, &x);
    const char *id = c->st->cfg->instances[d->instance].id;
    if (!c->first) t2m_out_str(c->o, ",");
    c->first = false;
    if (c->o->full) return;
    size_t room = c->o->n - c->o->len;
    size_t n = t2m_payload_state(c->o->buf + c->o->len, room, id, strlen(id), &u, &x, c->st->units);
    if (n == 0 || n >= room)
        c->o->full = true;
    else
        c->o->len += n;
}

size_t t2m_state_render_devices(const struct t2m_state *st, int inst, char *buf, size_t n)
{
    struct t2m_out o = {buf, n, 0, !buf || n < 3};
    if (o.full) return 0;
    t2m_out_str(&o, "[");
    struct render_ctx c = {st, inst, &o, true};
    t2m_devices_foreach(st->devices, render_one, &c);
    t2m_out_str(&o, "]");
    return t2m_out_finish(&o);
}

/* ---- life cycle ---- */

struct t2m_state *t2m_state_new(const struct t2m_config *cfg, struct t2m_stats *stats,
                                const char *version, t2m_action_fn fn, void *user)
{
    struct t2m_state *st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    st->cfg = cfg;
    st->units = &cfg->units.resolved;
    st->stats = stats;
    st->fn = fn;
    st->user = user;
    st->next_scan_ms = INT64_MAX;
    st->attr_mask = ATTR_ALL;
    st->disc = (struct t2m_discovery_ctx){
        .prefix = cfg->homeassistant.discovery_prefix,
        .base_topic = cfg->mqtt.base_topic,
        .bridge_topic = cfg->mqtt.bridge_topic,
        .bridge_id = cfg->mqtt.client_id,
        .version = version,
        .units = &cfg->units.resolved,
        .device_based = strcmp(cfg->homeassistant.discovery, "device") == 0,
    };
    st->devices = t2m_devices_new((size_t)cfg->upstream.max_devices);
    st->iseg = calloc(cfg->n_instances ? cfg->n_instances : 1, sizeof(*st->iseg));
    st->zone_names = calloc(cfg->n_zones ? cfg->n_zones : 1, sizeof(*st->zone_names));
    if (!st->devices || !st->iseg || !st->zone_names) goto fail;
    for (size_t i = 0; i < cfg->n_zones; i++)
        st->zone_names[i] = cfg->zones[i].name;
    st->disc.zones = st->zone_names;
    st->disc.n_zones = cfg->n_zones;
    for (size_t i = 0; i < cfg->n_instances; i++) {
        const char *id = cfg->instances[i].id;
        if (t2m_topic_segment(st->iseg[i], T2M_SEG_MAX, id, strlen(id)) < 0) goto fail;
    }
    return st;
fail:
    t2m_state_free(st);
    return NULL;
}

void t2m_state_free(struct t2m_state *st)
{
    if (!st) return;
    t2m_devices_free(st->devices);
    free(st->thr);
    free(st->iseg);
    free(st->zone_names);
    for (size_t i = 0; i < st->n_renames; i++) {
        free(st->renames[i].token);
        free(st->renames[i].name);
    }
    free(st->renames);
    for (size_t i = 0; i < st->n_seen; i++)
        free(st->seen_configs[i]);
    free(st->seen_configs);
    free(st);
}

size_t t2m_state_count(const struct t2m_state *st)
{
    return t2m_devices_count(st->devices);
}
