/* state_out.c - the state core's output: topics, state payloads, events, discovery, the device
 * list (state_impl.h). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_impl.h"

/* ---- output ---- */

void t2m_st_act(struct t2m_state *st, enum t2m_action_kind k, const char *topic,
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

void t2m_st_view_removed(struct t2m_state *st, const struct t2m_device *d)
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
bool t2m_st_token_segment(const struct t2m_device *d, char *dseg)
{
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    return t2m_topic_segment(dseg, T2M_SEG_MAX, tk, tl) >= 0;
}

/* B/I/D/suffix into st->topic through the checked builder. A device token that makes it too
 * long is a counted drop, never a truncated topic (SPEC section 2). */
bool t2m_st_device_topic(struct t2m_state *st, const struct t2m_device *d, const char *suffix)
{
    char dseg[T2M_SEG_MAX];
    if (!t2m_st_token_segment(d, dseg) ||
        t2m_topic_join(st->topic, sizeof(st->topic), 4, st->cfg->mqtt.base_topic,
                       st->iseg[d->instance], dseg, suffix) < 0) {
        st->stats->dropped[T2M_DROP_INVALID_TOKEN]++;
        if (t2m_repeat_hit(&st->rep_topic, st->now.mono) == 1)
            T2M_WARN("state", "a device token makes its topics longer than %d bytes: dropped",
                     T2M_TOPIC_MAX);
        return false;
    }
    return true;
}

const char *t2m_st_alias_of(const struct t2m_state *st, const struct t2m_device *d)
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
    x->name = t2m_st_alias_of(st, d);
    /* the arrival on the wall clock as it reads now (after a step: as the corrected clock
     * says it was) */
    x->last_seen_ms = d->seen_ms == T2M_SEEN_NEVER ? 0 : t2m_st_wall_of(st, d->seen_ms);
    x->driving = d->trip == T2M_TRIP_DRIVING;
    x->zone =
        d->zone >= 0 && (size_t)d->zone < st->cfg->n_zones ? st->cfg->zones[d->zone].name : NULL;
    x->trip = NULL; /* publish_state renders it */
    x->trip_len = 0;
}

/* buf: T2M_DEVICE_TEXT bytes that t->track may point into. */
void t2m_st_trip_of(const struct t2m_device *d, struct t2m_trip *t, char *buf)
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
        t2m_st_act(e->st, T2M_ACT_CLEAR, topic, "", 0, 1, true, false);
    else
        t2m_st_act(e->st, T2M_ACT_PUBLISH, topic, payload, len, 1, true, true);
    return 0;
}

void t2m_st_discovery(struct t2m_state *st, struct t2m_device *d, bool clear)
{
    if (!st->cfg->homeassistant.enabled || (!clear && st->hold_discovery)) return;
    struct emit_ctx e = {st, clear};
    const char *id = st->cfg->instances[d->instance].id;
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    if (t2m_discovery_device(&st->disc, id, strlen(id), tk, tl, t2m_st_alias_of(st, d), emit_config,
                             &e) == 0 &&
        !clear)
        d->flags |= T2M_DEVF_DISCOVERED;
}

/* The device's state on every topic that carries it: position, attribute topics, trip,
 * OwnTracks. Discovery goes first the first time on a connection (SPEC section 4). */

/* The device's state on B/I/D/position, carrying its live trip (SPEC 2.1: one message per
 * update). B/I/D/trip goes with it only when the trip started or ended since it last went
 * (T2M_TRIPF_DUE), or with `all` (a re-send: reconnect, Home Assistant back, read-back). */
void t2m_st_publish_state_as(struct t2m_state *st, struct t2m_device *d, int64_t now_ms, bool all)
{
    const struct t2m_config *cfg = st->cfg;
    if (cfg->homeassistant.enabled && st->connected && !(d->flags & T2M_DEVF_DISCOVERED))
        t2m_st_discovery(st, d, false);
    struct t2m_update u;
    t2m_device_load(d, &u);
    struct t2m_state_extra x;
    extra_of(st, d, &x);
    const char *id = cfg->instances[d->instance].id;
    int qos = cfg->mqtt.qos;
    if (d->trip != T2M_TRIP_NONE) {
        struct t2m_trip t;
        char trb[T2M_DEVICE_TEXT];
        t2m_st_trip_of(d, &t, trb);
        x.trip_len = t2m_payload_trip(st->tripbuf, sizeof(st->tripbuf), &t, st->units);
        x.trip = x.trip_len ? st->tripbuf : NULL;
    }
    /* A device known only from a trip record has no fix: no position (it would say 1970) */
    size_t n = (u.has & T2M_HAS_TS) ? t2m_payload_state(st->payload, sizeof(st->payload), id,
                                                        strlen(id), &u, &x, st->units)
                                    : 0;
    if (n && t2m_st_device_topic(st, d, "position")) {
        t2m_st_act(st, T2M_ACT_PUBLISH, st->topic, st->payload, n, qos, cfg->mqtt.retain, false);
        view(st, T2M_ACT_VIEW_DEVICE, st->payload, n);
    }
    if (cfg->mqtt.attribute_topics) {
        unsigned mask = all ? ATTR_ALL : st->attr_mask;
        for (int a = 0; a < T2M_ATTR_COUNT; a++) {
            if (!(mask & (1u << a))) continue;
            size_t vn = t2m_payload_state_attribute(st->payload, sizeof(st->payload),
                                                    (enum t2m_attr)a, &u, &x, st->units);
            if (vn && t2m_st_device_topic(st, d, t2m_payload_attr_name((enum t2m_attr)a)))
                t2m_st_act(st, T2M_ACT_PUBLISH, st->topic, st->payload, vn, qos, cfg->mqtt.retain,
                           false);
        }
    }
    if (x.trip && (all || (d->trip_flags & T2M_TRIPF_DUE)) && t2m_st_device_topic(st, d, "trip"))
        t2m_st_act(st, T2M_ACT_PUBLISH, st->topic, x.trip, x.trip_len, qos, true, false);
    d->trip_flags &= (uint8_t)~T2M_TRIPF_DUE;
    if (cfg->owntracks.enabled && (u.has & T2M_HAS_TS)) {
        char tid[3];
        const char *alias = x.name;
        t2m_owntracks_tid(tid, alias ? alias : u.device_token,
                          alias ? strlen(alias) : u.device_token_len);
        size_t on = t2m_owntracks_payload(st->payload, sizeof(st->payload), &u, tid, now_ms / 1000);
        char dseg[T2M_SEG_MAX];
        if (on && t2m_st_token_segment(d, dseg) &&
            t2m_topic_join(st->topic, sizeof(st->topic), 3, "owntracks", st->iseg[d->instance],
                           dseg) >= 0)
            t2m_st_act(st, T2M_ACT_PUBLISH, st->topic, st->payload, on, qos, true, false);
    }
    if (u.has & T2M_HAS_TS) d->last_ts_ms = u.ts_ms;
}

void t2m_st_publish_state(struct t2m_state *st, struct t2m_device *d, int64_t now_ms)
{
    t2m_st_publish_state_as(st, d, now_ms, false);
}

/* One message on B/I/D/event (not retained, QoS 1): {"event":..,"time":..,"instance_id":..,
 * "device_token":..,"name":..<,rest>}. `rest` is a JSON fragment starting with ',' or "". */
void t2m_st_event(struct t2m_state *st, struct t2m_device *d, const char *name, int64_t time_ms,
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
    const char *alias = t2m_st_alias_of(st, d);
    if (alias) {
        T2M_OUT_LIT(&o, ",\"name\":");
        t2m_out_json(&o, alias, strlen(alias));
    }
    t2m_out_str(&o, rest);
    T2M_OUT_LIT(&o, "}");
    size_t n = t2m_out_finish(&o);
    if (n && t2m_st_device_topic(st, d, "event"))
        t2m_st_act(st, T2M_ACT_PUBLISH, st->topic, st->event, n, 1, false, false);
}

/* ,"latitude":..,"longitude":.. of the device, when it has a position. */
void t2m_st_position_fragment(const struct t2m_device *d, char *buf, size_t n)
{
    buf[0] = '\0';
    if (!((d->has & T2M_HAS_LAT) && (d->has & T2M_HAS_LON))) return;
    char la[32], lo[32];
    if (t2m_units_format_shortest(la, sizeof(la), d->lat) &&
        t2m_units_format_shortest(lo, sizeof(lo), d->lon))
        snprintf(buf, n, ",\"latitude\":%s,\"longitude\":%s", la, lo);
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
