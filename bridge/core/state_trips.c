/* state_trips.c - trips and zones (SPEC 2.2) of the state core (state_impl.h). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_impl.h"

/* ---- trips and zones ---- */

/* Deadlines run on the monotonic clock: a step of the wall clock moves none (SPEC 2.1). */
void t2m_st_arm_scan(struct t2m_state *st)
{
    if (st->next_scan_ms == INT64_MAX) st->next_scan_ms = st->now.mono + SCAN_MS;
}

void t2m_st_trip_end(struct t2m_state *st, struct t2m_device *d, int64_t time_ms)
{
    d->trip = T2M_TRIP_ENDED;
    d->trip_flags |= T2M_TRIPF_DUE;
    struct t2m_trip t;
    char trb[T2M_DEVICE_TEXT];
    t2m_st_trip_of(d, &t, trb);
    char frag[T2M_PAYLOAD_MAX];
    memcpy(frag, ",\"trip\":", 8);
    size_t tn = t2m_payload_trip(frag + 8, sizeof(frag) - 8, &t, st->units);
    if (tn == 0) frag[0] = '\0';
    t2m_st_event(st, d, "trip_ended", time_ms, frag);
}

void t2m_st_trip_start(struct t2m_state *st, struct t2m_device *d, int64_t fix_ms)
{
    d->trip = T2M_TRIP_DRIVING;
    d->trip_start_ms = d->trip_end_ms = fix_ms;
    d->trip_dist_m = 0;
    d->trip_max_speed = 0;
    d->trip_updates = 0;
    d->trip_flags = T2M_TRIPF_DUE;
    t2m_st_arm_scan(st);
}

void t2m_st_trip_started_event(struct t2m_state *st, struct t2m_device *d)
{
    char frag[2 * T2M_TOKEN_MAX * 6 + 128], pos[96];
    struct t2m_out o = {frag, sizeof(frag), 0, false};
    T2M_OUT_LIT(&o, ",\"track_token\":");
    char trb[T2M_DEVICE_TEXT];
    size_t trl;
    const char *tr = t2m_device_track(d, trb, &trl);
    t2m_out_json(&o, tr ? tr : "", trl);
    t2m_st_position_fragment(d, pos, sizeof(pos));
    t2m_out_str(&o, pos);
    if (t2m_out_finish(&o) == 0) frag[0] = '\0';
    t2m_st_event(st, d, "trip_started", d->trip_start_ms, frag);
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
void t2m_st_zones_update(struct t2m_state *st, struct t2m_device *d, const struct t2m_update *u,
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
    const char *alias = t2m_st_alias_of(st, d);
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
    if (n && t2m_st_token_segment(d, dseg) &&
        t2m_topic_join(st->topic, sizeof(st->topic), 4, "owntracks", st->iseg[d->instance], dseg,
                       "event") >= 0)
        t2m_st_act(st, T2M_ACT_PUBLISH, st->topic, st->event, n, 1, false, false);
}

void t2m_st_zone_event(struct t2m_state *st, struct t2m_device *d, const char *name, int zone,
                       int64_t fix_ms)
{
    char frag[512], pos[96];
    t2m_st_position_fragment(d, pos, sizeof(pos));
    struct t2m_out o = {frag, sizeof(frag), 0, false};
    T2M_OUT_LIT(&o, ",\"zone\":");
    const char *zn = st->cfg->zones[zone].name;
    t2m_out_json(&o, zn, strlen(zn));
    t2m_out_str(&o, pos);
    if (t2m_out_finish(&o)) t2m_st_event(st, d, name, fix_ms, frag);
    owntracks_transition(st, d, strcmp(name, "zone_entered") == 0, zone, fix_ms);
}
