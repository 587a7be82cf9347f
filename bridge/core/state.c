/* state.c - the device state core (state.h): merging updates, time-outs and expiry, removal,
 * requests, life cycle. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_impl.h"

/* ---- removal ---- */

/* Every device is freed here: the eviction candidates may point at it. */
void t2m_st_free_device(struct t2m_state *st, struct t2m_device *d)
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
static bool evict_unheard(struct t2m_state *st)
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
        uint64_t n = t2m_repeat_hit(&st->rep_evict, st->now.mono);
        if (n)
            T2M_WARN("state",
                     "upstream.max_devices (%d) reached: %llu t2m_st_device(s) known only from the "
                     "read-back forgotten to make room for live ones",
                     st->cfg->upstream.max_devices, (unsigned long long)n);
        t2m_st_view_removed(st, d);
        t2m_st_free_device(st, d);
        return true;
    }
}

static void remove_device(struct t2m_state *st, struct t2m_device *d, const char *reason,
                          int64_t now_ms)
{
    char frag[64];
    snprintf(frag, sizeof(frag), ",\"reason\":\"%s\"", reason);
    t2m_st_event(st, d, "device_removed", now_ms, frag);
    static const char *const suffixes[] = {"position", "trip"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        if (t2m_st_device_topic(st, d, suffixes[i]))
            t2m_st_act(st, T2M_ACT_CLEAR, st->topic, "", 0, 1, true, false);
    if (st->cfg->mqtt.attribute_topics)
        for (int a = 0; a < T2M_ATTR_COUNT; a++)
            if (t2m_st_device_topic(st, d, t2m_payload_attr_name((enum t2m_attr)a)))
                t2m_st_act(st, T2M_ACT_CLEAR, st->topic, "", 0, 1, true, false);
    char dseg[T2M_SEG_MAX];
    if (st->cfg->owntracks.enabled && t2m_st_token_segment(d, dseg) &&
        t2m_topic_join(st->topic, sizeof(st->topic), 3, "owntracks", st->iseg[d->instance], dseg) >=
            0)
        t2m_st_act(st, T2M_ACT_CLEAR, st->topic, "", 0, 1, true, false);
    t2m_st_discovery(st, d, true);
    t2m_st_view_removed(st, d);
    char tb[T2M_DEVICE_TEXT];
    size_t tl;
    const char *tk = t2m_device_token(d, tb, &tl);
    T2M_INFO("state", "device %.*s of %s removed (%s)", (int)tl, tk,
             st->cfg->instances[d->instance].id, reason);
    if (d->flags & T2M_DEVF_IN_WINDOW) {
        d->flags |= T2M_DEVF_REMOVED; /* the throttle FIFO frees it when its window ends */
        return;
    }
    t2m_st_free_device(st, d);
}

/* ---- inputs ---- */

void t2m_st_set_now(struct t2m_state *st, struct t2m_now now)
{
    st->now = now;
    int64_t off = now.wall - now.mono;
    /* the first reading, or a step of the wall clock */
    if (!st->have_off || off - st->wall_off > T2M_CLOCK_STEP_MS ||
        st->wall_off - off > T2M_CLOCK_STEP_MS) {
        st->wall_off = off;
        st->have_off = true;
    }
    /* One coherent pair for the whole call: the wall time of this moment is the one its
     * last_seen renders as, so a fix as of its arrival carries exactly its last_seen. */
    st->now.wall = now.mono + st->wall_off;
}

int64_t t2m_st_wall_of(const struct t2m_state *st, int64_t mono_ms)
{
    return mono_ms + st->wall_off;
}

int64_t t2m_st_mono_of(const struct t2m_state *st, int64_t wall_ms)
{
    return wall_ms - st->wall_off;
}

bool t2m_st_ahead(const struct t2m_state *st, int64_t t_ms)
{
    return t_ms > st->now.wall + (int64_t)(st->cfg->state.max_clock_skew * 1000.0);
}

void t2m_st_untrusted(struct t2m_state *st, const char *what, const char *outcome)
{
    st->stats->fields_rejected++;
    uint64_t n = t2m_repeat_hit(&st->rep_skew, st->now.mono);
    if (n)
        T2M_WARN("state", "%llu %s more than state.max_clock_skew (%g s) ahead of this clock: %s",
                 (unsigned long long)n, what, st->cfg->state.max_clock_skew, outcome);
}

/* The device, created when new. `live`: for an update from the upstream (then a full table
 * makes room by forgetting a device known only from the read-back), else for the read-back. */
struct t2m_device *t2m_st_device(struct t2m_state *st, unsigned inst, const char *token, size_t len,
                                 bool live)
{
    enum t2m_dev_status s;
    struct t2m_device *d = t2m_devices_get(st->devices, inst, token, len, true, &s);
    if (!d && s == T2M_DEV_FULL && live && evict_unheard(st))
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
        uint64_t n = t2m_repeat_hit(&st->rep_full, st->now.mono);
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
                      struct t2m_now now)
{
    t2m_st_set_now(st, now);
    int64_t now_ms = st->now.wall; /* what is published and ordered */
    if (!st->started_s) st->started_s = now_ms / 1000;
    if (inst >= st->cfg->n_instances) return;
    /* SPEC 2.1: a fix time too far ahead of this clock is not trusted (a device with a wrong
     * clock, a forged message): merged as of its arrival, the time counted as rejected. It
     * would otherwise make every real update of the device look stale. */
    struct t2m_update untrusted;
    if ((u->has & T2M_HAS_TS) && t2m_st_ahead(st, u->ts_ms)) {
        untrusted = *u;
        untrusted.has &= ~(unsigned)T2M_HAS_TS;
        untrusted.rejected |= T2M_HAS_TS;
        u = &untrusted;
        t2m_st_untrusted(st, "fix time(s)", "merged as of their arrival");
    }
    struct t2m_device *d = t2m_st_device(st, inst, u->device_token, u->device_token_len, true);
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
    if (new_track && was_driving) t2m_st_trip_end(st, d, d->trip_end_ms);
    bool had_pos = (d->has & T2M_HAS_LAT) && (d->has & T2M_HAS_LON);
    double plat = d->lat, plon = d->lon;
    /* SPEC 2: attribute topics go only when their value changed */
    unsigned changed = changed_attrs(d, u, fix_ms, new_track);
    if (t2m_device_store(d, u, fix_ms) != 0) {
        T2M_ERROR("state", "out of memory storing a position");
        return;
    }
    d->seen_ms = st->now.mono;
    bool pos = (u->has & T2M_HAS_LAT) && (u->has & T2M_HAS_LON);
    if (new_track) t2m_st_trip_start(st, d, fix_ms);
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
    if (st->cfg->state.expire_after > 0) t2m_st_arm_scan(st);
    int left, entered;
    t2m_st_zones_update(st, d, u, &left, &entered);
    if (was_driving != (d->trip == T2M_TRIP_DRIVING)) changed |= 1u << T2M_ATTR_DRIVING;
    /* held by the throttle, the window's end sends them all: it cannot know what changed */
    st->attr_mask = changed;
    t2m_st_publish_or_hold(st, d, now_ms);
    st->attr_mask = ATTR_ALL;
    if (new_track) t2m_st_trip_started_event(st, d);
    if (left >= 0) t2m_st_zone_event(st, d, "zone_left", left, fix_ms);
    if (entered >= 0) t2m_st_zone_event(st, d, "zone_entered", entered, fix_ms);
}

struct scan_ctx {
    struct t2m_state *st;
    int64_t now_ms; /* wall */
    bool again;
};

static void scan_one(struct t2m_device *d, void *user)
{
    struct scan_ctx *c = user;
    struct t2m_state *st = c->st;
    if (d->flags & T2M_DEVF_REMOVED) return;
    double expire = st->cfg->state.expire_after;
    int64_t silent_ms = st->now.mono - d->seen_ms;
    if (expire > 0 && d->seen_ms != T2M_SEEN_NEVER && silent_ms >= (int64_t)(expire * 1000)) {
        remove_device(st, d, "expired", c->now_ms);
        return;
    }
    if (expire > 0) c->again = true;
    if (d->trip != T2M_TRIP_DRIVING) return;
    if (d->seen_ms == T2M_SEEN_NEVER ||
        silent_ms >= (int64_t)(st->cfg->state.trip_timeout * 1000)) {
        t2m_st_trip_end(st, d, d->trip_end_ms);
        d->flags &= (uint8_t)~T2M_DEVF_PENDING; /* the state below is the latest */
        t2m_st_publish_state(st, d, c->now_ms);
        return;
    }
    c->again = true;
}

void t2m_state_tick(struct t2m_state *st, struct t2m_now now)
{
    t2m_st_set_now(st, now);
    int64_t now_ms = st->now.wall; /* what is published and ordered */
    t2m_st_throttle_due(st);
    if (now.mono >= st->next_scan_ms) {
        struct scan_ctx c = {st, now_ms, false};
        st->next_scan_ms = INT64_MAX;
        t2m_devices_foreach(st->devices, scan_one, &c);
        if (c.again) st->next_scan_ms = now.mono + SCAN_MS;
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
        t2m_st_publish_state_as(c->st, d, c->now_ms, true);
    } else {
        t2m_st_discovery(c->st, d, false);
    }
}

void t2m_state_republish(struct t2m_state *st, struct t2m_now now)
{
    t2m_st_set_now(st, now);
    int64_t now_ms = st->now.wall; /* what is published and ordered */
    struct repub_ctx c = {st, now_ms};
    t2m_devices_foreach(st->devices, republish_one, &c);
}

static void forget_discovered(struct t2m_device *d, void *user)
{
    (void)user;
    d->flags &= (uint8_t)~T2M_DEVF_DISCOVERED;
}

void t2m_state_connected(struct t2m_state *st, bool connected, struct t2m_now now)
{
    t2m_st_set_now(st, now);
    int64_t now_ms = st->now.wall; /* what is published and ordered */
    if (!st->started_s) st->started_s = now_ms / 1000;
    st->connected = connected;
    if (connected)
        t2m_state_republish(st, now);
    else
        t2m_devices_foreach(st->devices, forget_discovered, NULL);
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
                     struct t2m_now now)
{
    t2m_st_set_now(st, now);
    int64_t now_ms = st->now.wall; /* what is published and ordered */
    struct t2m_device *d = known(st, inst, token, len);
    if (!d) return -1;
    remove_device(st, d, "request", now_ms);
    return 0;
}

/* The device's name from a rename (a request, or the read-back of one): 0, or -1 without
 * memory. */
int t2m_st_set_rename(struct t2m_state *st, unsigned inst, const char *token, size_t len,
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
                     const char *name, struct t2m_now now)
{
    t2m_st_set_now(st, now);
    int64_t now_ms = st->now.wall; /* what is published and ordered */
    struct t2m_device *d = known(st, inst, token, len);
    if (!d || !name || t2m_st_set_rename(st, inst, token, len, name) != 0) return -1;
    d->flags &= (uint8_t)~T2M_DEVF_DISCOVERED; /* the configs carry the name: again */
    if (d->flags & T2M_DEVF_HAS_STATE) {
        d->flags &= (uint8_t)~T2M_DEVF_PENDING;
        t2m_st_publish_state(st, d, now_ms);
    } else if (st->connected) {
        t2m_st_discovery(st, d, false);
    }
    return 0;
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
