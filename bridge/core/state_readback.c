/* state_readback.c - the retained state read back (SPEC 2.1), the migration of the other
 * discovery form and the withdrawal (SPEC 4, 8) (state_impl.h). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_impl.h"

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

/* A time as the bridge printed it in any units.timestamp: ISO text, seconds or milliseconds. */
static bool get_time(json_object *o, const char *key, int64_t *ms)
{
    size_t l;
    const char *s = t2m_json_string(o, key, &l);
    if (s) return t2m_protocol_parse_ts_text(s, l, ms) == 0;
    double v;
    return (t2m_json_number(o, key, &v) == 0) && t2m_protocol_ts_from_number(v, ms) == 0;
}

/* Speeds in whatever unit the payload names (units may have changed between runs). */
static double to_mps(json_object *o, double v)
{
    const char *u = t2m_json_string(o, "speed_unit", NULL);
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

/* SPEC 2.3: a name read back is a rename that survives the restart, unless the configuration
 * gives the device an alias (that wins) or a rename came first. A name a request could not have
 * set (empty, over 256 bytes, control characters) is not taken. */
static void restore_name(struct t2m_state *st, struct t2m_device *d, json_object *o)
{
    size_t nl = 0;
    const char *name = t2m_json_string(o, "name", &nl);
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
    t2m_st_set_rename(st, d->instance, tk, tl, name);
}

/* A time read back (wall clock) as the device's last arrival on the monotonic clock: never
 * later than now, so that a forged or skewed one cannot hold its expiry off. */
static void saw(struct t2m_state *st, struct t2m_device *d, int64_t wall_ms)
{
    int64_t mono = t2m_st_mono_of(st, wall_ms);
    if (mono > st->now.mono || wall_ms > st->now.wall) mono = st->now.mono;
    if (d->seen_ms == T2M_SEEN_NEVER || mono > d->seen_ms) d->seen_ms = mono;
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
    if ((lack & T2M_HAS_LAT) && (t2m_json_number(o, "latitude", &lat) == 0) &&
        (t2m_json_number(o, "longitude", &lon) == 0) && t2m_protocol_field_ok(T2M_HAS_LAT, lat) &&
        t2m_protocol_field_ok(T2M_HAS_LON, lon)) {
        u.lat = lat;
        u.lon = lon;
        u.has |= T2M_HAS_LAT | T2M_HAS_LON;
    }
    if ((lack & T2M_HAS_SPEED) && (t2m_json_number(o, "speed", &v) == 0) &&
        t2m_protocol_field_ok(T2M_HAS_SPEED, to_mps(o, v))) {
        u.speed = to_mps(o, v);
        u.has |= T2M_HAS_SPEED;
    }
    if ((lack & T2M_HAS_ACCURACY) && (t2m_json_number(o, "gps_accuracy", &v) == 0) &&
        t2m_protocol_field_ok(T2M_HAS_ACCURACY, v)) {
        u.accuracy = v;
        u.has |= T2M_HAS_ACCURACY;
    }
    if ((lack & T2M_HAS_HEADING) && (t2m_json_number(o, "heading", &v) == 0) &&
        t2m_protocol_field_ok(T2M_HAS_HEADING, v)) {
        u.heading = v;
        u.has |= T2M_HAS_HEADING;
    }
    size_t tl = 0;
    const char *track = t2m_json_string(o, "track_token", &tl);
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
    if (get_time(o, "last_seen", &seen)) saw(st, d, seen);
    if (d->seen_ms == T2M_SEEN_NEVER) d->seen_ms = st->now.mono;
    /* it expires like a live one: never heard again after a restart, it is still removed */
    if (st->cfg->state.expire_after > 0) t2m_st_arm_scan(st);
    json_object *drv;
    if (json_object_object_get_ex(o, "driving", &drv) && json_object_get_boolean(drv) &&
        d->trip == T2M_TRIP_NONE && (d->has & T2M_HAS_TRACK)) {
        /* The trip object may come later: until then, a trip that started at this fix. */
        d->trip = T2M_TRIP_DRIVING;
        d->trip_start_ms = d->trip_end_ms = d->ts_ms;
        t2m_st_arm_scan(st);
    }
    restore_name(st, d, o);
    const char *zone = t2m_json_string(o, "zone", NULL);
    json_object *tr; /* SPEC v3 2.1: the state carries the live trip, newer than B/I/D/trip's */
    if (json_object_object_get_ex(o, "trip", &tr) && json_object_is_type(tr, json_type_object))
        restore_trip(st, d, tr, now_ms);
    for (size_t i = 0; zone && d->zone < 0 && i < st->cfg->n_zones; i++)
        if (strcmp(st->cfg->zones[i].name, zone) == 0) d->zone = (int16_t)i;
    /* Live updates came first and lacked what the broker remembered: the merge goes out. */
    if (had_state) t2m_st_publish_or_hold(st, d, now_ms);
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
    const char *du = t2m_json_string(o, "distance_unit", NULL);
    enum t2m_dist_unit unit = du && strcmp(du, "mi") == 0 ? T2M_DIST_FT : T2M_DIST_M;
    if ((t2m_json_number(o, "distance", &v) == 0) && v >= 0) {
        double m = t2m_trip_distance_m(v, unit);
        if (m <= TRIP_DISTANCE_MAX) r->dist_m = m;
    }
    if ((t2m_json_number(o, "updates", &v) == 0) && v >= 0 && v < 4e9) r->updates = (uint32_t)v;
    if ((t2m_json_number(o, "max_speed", &v) == 0) &&
        t2m_protocol_field_ok(T2M_HAS_SPEED, to_mps(o, v))) {
        r->max_speed = (float)to_mps(o, v);
        r->flags |= T2M_TRIPF_MAX;
    }
    if ((t2m_json_number(o, "start_latitude", &r->start_lat) == 0) &&
        (t2m_json_number(o, "start_longitude", &r->start_lon) == 0) &&
        t2m_protocol_field_ok(T2M_HAS_LAT, r->start_lat) &&
        t2m_protocol_field_ok(T2M_HAS_LON, r->start_lon))
        r->flags |= T2M_TRIPF_START;
    /* the last fix of the trip: its end, or (while driving) start + duration */
    int64_t start;
    r->last_ms = 0;
    if (get_time(o, "end", &r->last_ms)) return;
    if (get_time(o, "start", &start) && (t2m_json_number(o, "duration", &v) == 0) && v >= 0 &&
        v <= TRIP_DURATION_MAX)
        r->last_ms = start + (int64_t)(v * 1000.0);
}

static void restore_trip(struct t2m_state *st, struct t2m_device *d, json_object *o, int64_t now_ms)
{
    size_t tl = 0;
    const char *track = t2m_json_string(o, "track_token", &tl);
    const char *state = t2m_json_string(o, "state", NULL);
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
    if (t2m_st_ahead(st, start)) return; /* SPEC 2.1: a time too far ahead is no memory */
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
        t2m_st_publish_or_hold(st, d, now_ms);
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
    if (!had_fix || d->seen_ms == T2M_SEEN_NEVER) saw(st, d, d->trip_end_ms);
    if (driving) t2m_st_arm_scan(st);
}

/* Whether a config read back is this bridge's: its unique_id has the bridge's prefix, or (one
 * config per device) a component's has; a migration marker under the bridge's own node (the
 * caller checked the topic) is too, so a handover left half done is finished. */
static bool config_ours(const struct t2m_state *st, json_object *o)
{
    size_t ul = 0;
    const char *uid = t2m_json_string(o, "unique_id", &ul);
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
        uid =
            json_object_is_type(c, json_type_object) ? t2m_json_string(c, "unique_id", &ul) : NULL;
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
    t2m_discovery_device(c->disc, id, strlen(id), tk, tl, t2m_st_alias_of(c->st, d), collect_topic,
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
    if (d->flags & T2M_DEVF_HAS_STATE) t2m_st_publish_state_as(c->st, d, c->now_ms, true);
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
    if (!(d->flags & (T2M_DEVF_DISCOVERED | T2M_DEVF_REMOVED))) t2m_st_discovery(user, d, false);
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
        t2m_st_act(st, T2M_ACT_PUBLISH, t, marker, sizeof(marker) - 1, 1, true, true);
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

void t2m_state_readback_done(struct t2m_state *st, struct t2m_now now)
{
    t2m_st_set_now(st, now);
    int64_t now_ms = st->now.wall; /* what is published and ordered */
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
            t2m_st_act(st, T2M_ACT_CLEAR, t, "", 0, 1, true, false);
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
                        struct t2m_now now)
{
    t2m_st_set_now(st, now);
    int64_t now_ms = st->now.wall; /* what is published and ordered */
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
    if (t2m_st_ahead(st, t)) {
        char outcome[T2M_TOPIC_MAX + 32];
        snprintf(outcome, sizeof(outcome), "ignored (the last on %s)", topic);
        t2m_st_untrusted(st, "retained message(s) read back with a time", outcome);
        json_object_put(o);
        return true;
    }
    struct t2m_device *d = t2m_st_device(st, inst, token, tl, false);
    if (d) {
        if (is_trip)
            restore_trip(st, d, o, now_ms);
        else
            restore_position(st, d, o, now_ms);
    }
    json_object_put(o);
    return true;
}
