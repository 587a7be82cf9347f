/* test_state.c - the device state core, a case per rule of SPEC sections 2.1 and 2.2: inputs in,
 * actions out, time passed in by hand. */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "files.h"
#include "state.h"
#include "t2m_test.h"
#include "trip.h"

#define T0 1700000000000LL /* a wall-clock time, ms */

struct rec {
    enum t2m_action_kind kind;
    char topic[256];
    char *payload;
    bool retain, urgent;
    int qos;
};

static struct rec recs[4096];
static size_t nrec;
static struct t2m_stats stats;
/* the status page's actions (no topic), kept apart from what is published */
static struct rec views[1024];
static size_t nview;

static void sink(void *user, const struct t2m_action *a)
{
    (void)user;
    if (a->kind == T2M_ACT_VIEW_DEVICE || a->kind == T2M_ACT_VIEW_REMOVED) {
        CU_ASSERT_PTR_NULL(a->topic);
        if (nview < sizeof(views) / sizeof(views[0])) {
            struct rec *v = &views[nview++];
            v->kind = a->kind;
            v->topic[0] = '\0';
            v->payload = strndup(a->payload, a->len);
        }
        return;
    }
    CU_ASSERT_FATAL(nrec < sizeof(recs) / sizeof(recs[0]));
    struct rec *r = &recs[nrec++];
    r->kind = a->kind;
    snprintf(r->topic, sizeof(r->topic), "%s", a->topic);
    r->payload = strndup(a->payload, a->len);
    r->retain = a->retain;
    r->urgent = a->urgent;
    r->qos = a->qos;
}

static void clear(void)
{
    for (size_t i = 0; i < nrec; i++)
        free(recs[i].payload);
    nrec = 0;
    for (size_t i = 0; i < nview; i++)
        free(views[i].payload);
    nview = 0;
}

/* The last action on topic (NULL if none) and how many there were. */
static struct rec *last(const char *topic, int *count)
{
    struct rec *r = NULL;
    int c = 0;
    for (size_t i = 0; i < nrec; i++)
        if (strcmp(recs[i].topic, topic) == 0) {
            r = &recs[i];
            c++;
        }
    if (count) *count = c;
    return r;
}

static json_object *json_of(const char *topic)
{
    struct rec *r = last(topic, NULL);
    return r && r->payload[0] ? json_tokener_parse(r->payload) : NULL;
}

/* Events on the topic, in order, as their "event" names joined by ','. */
static const char *events(const char *topic)
{
    static char out[1024];
    out[0] = '\0';
    for (size_t i = 0; i < nrec; i++) {
        if (strcmp(recs[i].topic, topic) != 0) continue;
        json_object *o = json_tokener_parse(recs[i].payload), *e;
        if (o && json_object_object_get_ex(o, "event", &e)) {
            if (out[0]) strcat(out, ",");
            strncat(out, json_object_get_string(e), sizeof(out) - strlen(out) - 1);
        }
        json_object_put(o);
    }
    return out;
}

/* The live trip inside the latest state on POS (SPEC v3 2.1), or NULL. */
static json_object *state_trip(void)
{
    json_object *p = json_of("telematics/i/d/position"), *t = NULL;
    if (p && json_object_object_get_ex(p, "trip", &t)) json_object_get(t);
    json_object_put(p);
    return t;
}

static double num(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : NAN;
}

static const char *str(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "(absent)";
}

static bool has(json_object *o, const char *key)
{
    return json_object_object_get_ex(o, key, NULL);
}

static struct t2m_config *cfg;
static char conf_path[] = "/tmp/t2m_test_state_XXXXXX";

static struct t2m_state *mk_conn(const char *extra, bool connected)
{
    clear();
    memset(&stats, 0, sizeof(stats));
    t2m_config_free(cfg);
    int fd = mkstemp(conf_path);
    CU_ASSERT_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "instances = ( { id = \"i\"; access_token = \"t\"; } );\n%s%s\n",
            strstr(extra, "homeassistant") ? "" : "homeassistant = { enabled = false; };\n",
            strstr(extra, "units") ? "" : "units = { timestamp = \"unix_ms\"; };\n");
    fprintf(f, "%s\n", extra);
    fclose(f);
    char err[512];
    cfg = t2m_config_load(conf_path, true, err, sizeof(err));
    unlink(conf_path);
    strcpy(conf_path, "/tmp/t2m_test_state_XXXXXX");
    if (!cfg) fprintf(stderr, "\n  config: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    struct t2m_state *st = t2m_state_new(cfg, &stats, "test", sink, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    if (connected) t2m_state_connected(st, true, T0);
    return st;
}

static struct t2m_state *mk(const char *extra)
{
    return mk_conn(extra, true);
}

static struct t2m_update upd(const char *dev, const char *track, int64_t ts_ms)
{
    struct t2m_update u;
    memset(&u, 0, sizeof(u));
    u.device_token_len = strlen(dev);
    memcpy(u.device_token, dev, u.device_token_len);
    if (track) {
        u.track_token_len = strlen(track);
        memcpy(u.track_token, track, u.track_token_len);
        u.has |= T2M_HAS_TRACK;
    }
    if (ts_ms) {
        u.ts_ms = ts_ms;
        u.has |= T2M_HAS_TS;
    }
    return u;
}

static void at(struct t2m_update *u, double lat, double lon)
{
    u->lat = lat;
    u->lon = lon;
    u->has |= T2M_HAS_LAT | T2M_HAS_LON;
}

static void speed(struct t2m_update *u, double mps)
{
    u->speed = mps;
    u->has |= T2M_HAS_SPEED;
}

#define POS "telematics/i/d/position"
#define TRIP "telematics/i/d/trip"
#define EVENT "telematics/i/d/event"

static void done(struct t2m_state *st)
{
    t2m_state_free(st);
    clear();
}

/* ---- 2.1 merged state ---- */

static void test_partial_updates_keep_coordinates(void)
{
    struct t2m_state *st = mk("");
    struct t2m_update u = upd("d", NULL, T0);
    at(&u, 52.1, 4.3);
    u.accuracy = 5;
    u.has |= T2M_HAS_ACCURACY;
    t2m_state_update(st, 0, &u, T0);
    u = upd("d", NULL, T0 + 1000);
    speed(&u, 6.71);
    t2m_state_update(st, 0, &u, T0 + 1000);
    json_object *p = json_of(POS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(num(p, "latitude"), 52.1);
    CU_ASSERT_EQUAL(num(p, "longitude"), 4.3);
    CU_ASSERT_DOUBLE_EQUAL(num(p, "speed"), 24.16, 1e-9);
    CU_ASSERT_EQUAL(num(p, "gps_accuracy"), 5);
    CU_ASSERT_EQUAL(num(p, "timestamp"), (double)(T0 + 1000));
    CU_ASSERT_EQUAL(num(p, "last_seen"), (double)(T0 + 1000));
    json_object_put(p);
    done(st);
}

static void test_lone_latitude_ignored(void)
{
    struct t2m_state *st = mk("");
    struct t2m_update u = upd("d", NULL, T0);
    at(&u, 52.1, 4.3);
    t2m_state_update(st, 0, &u, T0);
    u = upd("d", NULL, T0 + 1000);
    u.lat = 10;
    u.has |= T2M_HAS_LAT;
    t2m_state_update(st, 0, &u, T0 + 1000);
    json_object *p = json_of(POS);
    CU_ASSERT_EQUAL(num(p, "latitude"), 52.1);
    json_object_put(p);
    done(st);
}

static void test_timestamp_vs_last_seen_and_name(void)
{
    struct t2m_state *st = mk("devices = ( { token = \"d\"; name = \"Van 12\"; } );");
    struct t2m_update u = upd("d", NULL, T0 - 5000); /* the fix is 5 s old on arrival */
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, T0);
    json_object *p = json_of(POS);
    CU_ASSERT_EQUAL(num(p, "timestamp"), (double)(T0 - 5000));
    CU_ASSERT_EQUAL(num(p, "last_seen"), (double)T0);
    T2M_ASSERT_STR(str(p, "name"), "Van 12");
    CU_ASSERT_FALSE(json_object_get_boolean(json_object_object_get(p, "driving")));
    CU_ASSERT_FALSE(has(p, "zone"));
    json_object_put(p);
    /* no Timestamp: the arrival is the fix time */
    u = upd("d", NULL, 0);
    t2m_state_update(st, 0, &u, T0 + 7000);
    p = json_of(POS);
    CU_ASSERT_EQUAL(num(p, "timestamp"), (double)(T0 + 7000));
    json_object_put(p);
    done(st);
}

static void test_stale_dropped_without_effect(void)
{
    struct t2m_state *st = mk("");
    struct t2m_update u = upd("d", "T1", T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, T0);
    clear();
    u = upd("d", "T2", T0 - 1); /* older, and with a new track: still no trip, no event */
    at(&u, 3, 4);
    t2m_state_update(st, 0, &u, T0 + 10);
    CU_ASSERT_EQUAL(nrec, 0);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_STALE], 1);
    done(st);
}

/* An update for a device removed inside its throttle window is counted as dropped (reason
 * "removed"), and the device comes back once the window has closed. */
static void test_removed_in_window_counted(void)
{
    struct t2m_state *st = mk("mqtt = { min_interval = 1.0; };");
    struct t2m_update u = upd("d", NULL, T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, T0);
    CU_ASSERT_EQUAL(t2m_state_remove(st, 0, "d", 1, T0 + 10), 0);
    u = upd("d", NULL, T0 + 20);
    at(&u, 3, 4);
    t2m_state_update(st, 0, &u, T0 + 20);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_REMOVED], 1);
    t2m_state_tick(st, T0 + 1000); /* the window closes: the device is gone for good */
    u = upd("d", NULL, T0 + 1100);
    at(&u, 5, 6);
    t2m_state_update(st, 0, &u, T0 + 1100);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_REMOVED], 1);
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    done(st);
}

static void test_throttle_trailing_edge(void)
{
    struct t2m_state *st = mk("mqtt = { min_interval = 1.0; };");
    for (int i = 0; i < 5; i++) {
        struct t2m_update u = upd("d", NULL, T0 + i * 100);
        at(&u, 1 + i, 2);
        t2m_state_update(st, 0, &u, T0 + i * 100);
    }
    int n;
    json_object *p = json_of(POS);
    last(POS, &n);
    CU_ASSERT_EQUAL(n, 1); /* the first, then the window */
    CU_ASSERT_EQUAL(num(p, "latitude"), 1);
    json_object_put(p);
    CU_ASSERT_EQUAL(t2m_state_next_deadline(st), T0 + 1000);
    t2m_state_tick(st, T0 + 999);
    last(POS, &n);
    CU_ASSERT_EQUAL(n, 1);
    t2m_state_tick(st, T0 + 1000); /* the window's latest state goes out at its end */
    p = json_of(POS);
    last(POS, &n);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(num(p, "latitude"), 5);
    json_object_put(p);
    t2m_state_tick(st, T0 + 2000); /* nothing new: the next window closes silently */
    last(POS, &n);
    CU_ASSERT_EQUAL(n, 2);
    done(st);
}

static void test_max_devices(void)
{
    struct t2m_state *st = mk("upstream = { max_devices = 2; };");
    const char *devs[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        struct t2m_update u = upd(devs[i], NULL, T0);
        at(&u, 1, 2);
        t2m_state_update(st, 0, &u, T0);
    }
    CU_ASSERT_EQUAL(t2m_state_count(st), 2);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_MAX_DEVICES], 1);
    CU_ASSERT_PTR_NULL(last("telematics/i/c/position", NULL));
    done(st);
}

/* ---- 2.2 trips ---- */

static void test_haversine(void)
{
    /* Amsterdam -> Paris: about 430 km (429,860.4 m by the formula by hand, R = 6371008.8 m) */
    double d = t2m_haversine_m(52.3702, 4.8952, 48.8566, 2.3522);
    CU_ASSERT_DOUBLE_EQUAL(d, 429860.4, 0.1);
    CU_ASSERT_DOUBLE_EQUAL(t2m_haversine_m(0, 0, 0, 1), 111195.08, 0.01); /* R * pi / 180 */
    CU_ASSERT_EQUAL(t2m_haversine_m(10, 20, 10, 20), 0);
    CU_ASSERT_DOUBLE_EQUAL(t2m_haversine_m(0, 0, 0, 180), M_PI * T2M_EARTH_RADIUS_M, 1e-3);
}

static void test_trip_start_stats_and_end_by_new_token(void)
{
    struct t2m_state *st = mk("");
    struct t2m_update u = upd("d", "T1", T0);
    at(&u, 0, 0);
    speed(&u, 10);
    t2m_state_update(st, 0, &u, T0);
    T2M_ASSERT_STR(events(EVENT), "trip_started");
    json_object *t = json_of(TRIP);
    T2M_ASSERT_STR(str(t, "state"), "driving");
    CU_ASSERT_FALSE(has(t, "end"));
    CU_ASSERT(last(TRIP, NULL)->retain);
    json_object_put(t);
    u = upd("d", "T1", T0 + 100000);
    at(&u, 0, 1); /* 111.195 km east */
    speed(&u, 30);
    t2m_state_update(st, 0, &u, T0 + 100000);
    u = upd("d", NULL, T0 + 200000); /* a partial update belongs to the trip */
    speed(&u, 20);
    t2m_state_update(st, 0, &u, T0 + 200000);
    /* SPEC v3: one message per update. B/I/D/trip went once, at the start; the state carries
     * the live trip */
    int trips = 0;
    last(TRIP, &trips);
    CU_ASSERT_EQUAL(trips, 1);
    t = state_trip();
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_DOUBLE_EQUAL(num(t, "distance"), 111.2, 1e-9);
    T2M_ASSERT_STR(str(t, "distance_unit"), "km");
    CU_ASSERT_DOUBLE_EQUAL(num(t, "max_speed"), 108, 1e-9); /* 30 m/s in km/h */
    CU_ASSERT_EQUAL(num(t, "duration"), 200);
    CU_ASSERT_DOUBLE_EQUAL(num(t, "avg_speed"), 111195.08 / 200 * 3.6, 0.01);
    CU_ASSERT_EQUAL(num(t, "updates"), 3);
    CU_ASSERT_EQUAL(num(t, "start_latitude"), 0);
    CU_ASSERT_EQUAL(num(t, "end_longitude"), 1);
    json_object_put(t);
    json_object *p = json_of(POS);
    CU_ASSERT(json_object_get_boolean(json_object_object_get(p, "driving")));
    json_object_put(p);
    /* another token ends the trip and starts the next */
    clear();
    u = upd("d", "T2", T0 + 300000);
    at(&u, 0, 2);
    t2m_state_update(st, 0, &u, T0 + 300000);
    T2M_ASSERT_STR(events(EVENT), "trip_ended,trip_started");
    json_object *e = json_tokener_parse(recs[0].payload), *trip;
    CU_ASSERT_FATAL(json_object_object_get_ex(e, "trip", &trip));
    T2M_ASSERT_STR(str(trip, "state"), "ended");
    T2M_ASSERT_STR(str(trip, "track_token"), "T1");
    CU_ASSERT_EQUAL(num(trip, "end"), (double)(T0 + 200000));
    CU_ASSERT_EQUAL(num(e, "time"), (double)(T0 + 200000));
    CU_ASSERT_FALSE(recs[0].retain);
    CU_ASSERT_EQUAL(recs[0].qos, 1);
    json_object_put(e);
    t = json_of(TRIP);
    T2M_ASSERT_STR(str(t, "track_token"), "T2");
    CU_ASSERT_EQUAL(num(t, "distance"), 0); /* the leg between trips is no trip's */
    json_object_put(t);
    done(st);
}

static void test_trip_end_by_timeout(void)
{
    struct t2m_state *st = mk("state = { trip_timeout = 60; };");
    struct t2m_update u = upd("d", "T1", T0);
    at(&u, 0, 0);
    t2m_state_update(st, 0, &u, T0);
    CU_ASSERT(t2m_state_next_deadline(st) <= T0 + 1000);
    clear();
    t2m_state_tick(st, T0 + 59000);
    CU_ASSERT_STRING_EQUAL(events(EVENT), "");
    t2m_state_tick(st, T0 + 60000);
    T2M_ASSERT_STR(events(EVENT), "trip_ended");
    json_object *t = json_of(TRIP);
    T2M_ASSERT_STR(str(t, "state"), "ended");
    json_object_put(t);
    json_object *p = json_of(POS);
    CU_ASSERT_FALSE(json_object_get_boolean(json_object_object_get(p, "driving")));
    json_object_put(p);
    CU_ASSERT_EQUAL(t2m_state_next_deadline(st), INT64_MAX); /* nothing left to time */
    done(st);
}

/* ---- zones ---- */

static void test_zones(void)
{
    /* two overlapping zones 1 km apart, and a small one */
    struct t2m_state *st = mk("zones = ( { name = \"A\"; latitude = 0.0; longitude = 0.0; "
                              "radius = 1000.0; }, { name = \"B\"; latitude = 0.0; longitude = "
                              "0.009; radius = 1000.0; } );");
    struct t2m_update u = upd("d", NULL, T0);
    at(&u, 0, 0.003); /* 334 m from A, 667 m from B: nearest wins */
    t2m_state_update(st, 0, &u, T0);
    T2M_ASSERT_STR(events(EVENT), "zone_entered");
    json_object *p = json_of(POS);
    T2M_ASSERT_STR(str(p, "zone"), "A");
    json_object_put(p);
    clear();
    u = upd("d", NULL, T0 + 1000);
    at(&u, 0, 0.006);
    t2m_state_update(st, 0, &u, T0 + 1000);
    T2M_ASSERT_STR(events(EVENT), "zone_left,zone_entered");
    clear();
    /* an accuracy worse than the radius does not move the zone */
    u = upd("d", NULL, T0 + 2000);
    at(&u, 0, 1);
    u.accuracy = 5000;
    u.has |= T2M_HAS_ACCURACY;
    t2m_state_update(st, 0, &u, T0 + 2000);
    T2M_ASSERT_STR(events(EVENT), "");
    p = json_of(POS);
    T2M_ASSERT_STR(str(p, "zone"), "B");
    json_object_put(p);
    u = upd("d", NULL, T0 + 3000);
    at(&u, 0, 1);
    u.accuracy = 10;
    u.has |= T2M_HAS_ACCURACY;
    t2m_state_update(st, 0, &u, T0 + 3000);
    T2M_ASSERT_STR(events(EVENT), "zone_left");
    p = json_of(POS);
    CU_ASSERT_FALSE(has(p, "zone"));
    json_object_put(p);
    done(st);
}

/* ---- expiry ---- */

/* SPEC 2.1: a step of the wall clock (told by the caller) neither removes devices nor holds
 * positions back: the core's deadlines move with it. */
static void test_clock_step(void)
{
    const int64_t H = 3600000;
    struct t2m_state *st = mk("state = { expire_after = 600; };");
    struct t2m_update u = upd("d", "T1", T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, T0);
    t2m_state_clock_step(st, H); /* +1 h, one second later */
    t2m_state_tick(st, T0 + H + 1000);
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    t2m_state_tick(st, T0 + H + 599000);
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    t2m_state_tick(st, T0 + H + 600000); /* 600 s of silence, as the monotonic clock says */
    CU_ASSERT_EQUAL(t2m_state_count(st), 0);
    done(st);

    /* -1 h with min_interval: the window still ends a second after it opened */
    st = mk("mqtt = { min_interval = 1.0; };");
    for (int i = 0; i < 2; i++) {
        u = upd("d", NULL, T0 + i * 100);
        at(&u, 1 + i, 2);
        t2m_state_update(st, 0, &u, T0 + i * 100);
    }
    t2m_state_clock_step(st, -H);
    clear();
    t2m_state_tick(st, T0 - H + 1000);
    json_object *p = json_of(POS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p); /* the held state went out */
    CU_ASSERT_EQUAL(num(p, "latitude"), 2);
    json_object_put(p);
    CU_ASSERT(t2m_state_next_deadline(st) <= T0 - H + 2000);
    done(st);
}

static void test_expiry(void)
{
    struct t2m_state *st = mk("state = { expire_after = 30; };\nmqtt = { attribute_topics = "
                              "true; };");
    struct t2m_update u = upd("d", "T1", T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, T0);
    clear();
    t2m_state_tick(st, T0 + 29000);
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    t2m_state_tick(st, T0 + 30000);
    CU_ASSERT_EQUAL(t2m_state_count(st), 0);
    T2M_ASSERT_STR(events(EVENT), "device_removed");
    json_object *e = json_of(EVENT);
    T2M_ASSERT_STR(str(e, "reason"), "expired");
    json_object_put(e);
    const char *cleared[] = {POS, TRIP, "telematics/i/d/latitude", "telematics/i/d/driving"};
    for (size_t i = 0; i < 4; i++) {
        struct rec *r = last(cleared[i], NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL(r->kind, T2M_ACT_CLEAR);
        CU_ASSERT(r->retain);
    }
    done(st);
}

/* ---- restarts ---- */

static void test_readback_restores(void)
{
    struct t2m_state *st = mk("");
    CU_ASSERT(t2m_state_retained(
        st, POS,
        "{\"instance_id\":\"i\",\"device_token\":\"d\",\"track_token\":\"T1\",\"latitude\":0,"
        "\"longitude\":1,\"speed\":36,\"speed_unit\":\"km/h\",\"timestamp\":1700000000000,"
        "\"last_seen\":1700000000500,\"driving\":true}",
        200, T0 + 1000));
    const char *trip = "{\"track_token\":\"T1\",\"state\":\"driving\",\"start\":1699999000000,"
                       "\"duration\":1000,\"distance\":5.5,\"distance_unit\":\"km\","
                       "\"max_speed\":72,\"avg_speed\":19.8,\"speed_unit\":\"km/h\","
                       "\"start_latitude\":0,\"start_longitude\":0.95,\"updates\":40}";
    CU_ASSERT(t2m_state_retained(st, TRIP, trip, strlen(trip), T0 + 1000));
    CU_ASSERT_FALSE(t2m_state_retained(st, "telematics/other/d/position", "{}", 2, T0));
    CU_ASSERT_FALSE(t2m_state_retained(st, "elsewhere/i/d/position", "{}", 2, T0));
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    CU_ASSERT_EQUAL(nrec, 0); /* restoring publishes nothing */
    /* an older update is still stale */
    struct t2m_update u = upd("d", "T1", T0 - 1);
    at(&u, 5, 5);
    t2m_state_update(st, 0, &u, T0 + 2000);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_STALE], 1);
    /* a newer one continues the trip: no trip_started, the distance adds */
    u = upd("d", "T1", T0 + 10000);
    at(&u, 0, 1.01); /* 1.112 km further */
    t2m_state_update(st, 0, &u, T0 + 10000);
    T2M_ASSERT_STR(events(EVENT), "");
    CU_ASSERT_PTR_NULL(last(TRIP, NULL)); /* not at every update */
    json_object *t = state_trip();
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_DOUBLE_EQUAL(num(t, "distance"), 6.61, 1e-9);
    CU_ASSERT_EQUAL(num(t, "updates"), 41);
    CU_ASSERT_EQUAL(num(t, "start"), 1699999000000.0);
    CU_ASSERT_DOUBLE_EQUAL(num(t, "max_speed"), 72, 1e-4);
    json_object_put(t);
    json_object *p = json_of(POS);
    CU_ASSERT_DOUBLE_EQUAL(num(p, "speed"), 36, 1e-9); /* kept from the read-back */
    json_object_put(p);
    done(st);
}

/* SPEC v3 2.1: the retained state carries the live trip; B/I/D/trip holds it as of its start.
 * Whatever order they come back in, the newer (more updates) wins. */
static void test_readback_trip_in_state(void)
{
    const char *pos = "{\"device_token\":\"d\",\"track_token\":\"T1\",\"latitude\":0,"
                      "\"longitude\":1,\"timestamp\":1700000000000,\"driving\":true,"
                      "\"trip\":{\"track_token\":\"T1\",\"state\":\"driving\","
                      "\"start\":1699999000000,\"duration\":1000,\"distance\":5.5,"
                      "\"distance_unit\":\"km\",\"start_latitude\":0,\"start_longitude\":0.95,"
                      "\"updates\":40}}";
    const char *old = "{\"track_token\":\"T1\",\"state\":\"driving\",\"start\":1699999000000,"
                      "\"duration\":0,\"distance\":0,\"distance_unit\":\"km\",\"updates\":1}";
    for (int order = 0; order < 2; order++) {
        struct t2m_state *st = mk("");
        if (order == 0) t2m_state_retained(st, POS, pos, strlen(pos), T0 + 1000);
        t2m_state_retained(st, TRIP, old, strlen(old), T0 + 1000);
        if (order == 1) t2m_state_retained(st, POS, pos, strlen(pos), T0 + 1000);
        t2m_state_readback_done(st, T0 + 1000);
        struct t2m_update u = upd("d", "T1", T0 + 10000);
        at(&u, 0, 1.01); /* 1.112 km further */
        clear();
        t2m_state_update(st, 0, &u, T0 + 10000);
        T2M_ASSERT_STR(events(EVENT), "");
        json_object *t = state_trip();
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_DOUBLE_EQUAL(num(t, "distance"), 6.61, 1e-9);
        CU_ASSERT_EQUAL(num(t, "updates"), 41);
        json_object_put(t);
        done(st);
    }
}

static void test_readback_older_does_not_overwrite_live(void)
{
    struct t2m_state *st = mk("");
    struct t2m_update u = upd("d", NULL, T0 + 5000);
    at(&u, 7, 8);
    t2m_state_update(st, 0, &u, T0 + 5000);
    clear();
    const char *old = "{\"device_token\":\"d\",\"latitude\":1,\"longitude\":2,\"heading\":90,"
                      "\"timestamp\":1700000000000}";
    t2m_state_retained(st, POS, old, strlen(old), T0 + 5100);
    json_object *p = json_of(POS); /* re-published: the live state plus what it lacked */
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(num(p, "latitude"), 7);
    CU_ASSERT_EQUAL(num(p, "heading"), 90);
    CU_ASSERT_EQUAL(num(p, "timestamp"), (double)(T0 + 5000));
    json_object_put(p);
    done(st);
}

static void test_discovery_before_first_position(void)
{
    struct t2m_state *st =
        mk_conn("homeassistant = { enabled = true; discovery = \"entity\"; };", false);
    struct t2m_update u = upd("d", NULL, T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, T0); /* offline: no discovery yet */
    CU_ASSERT_PTR_NULL(last("homeassistant/device_tracker/t2m_i/d/config", NULL));
    clear();
    t2m_state_connected(st, true, T0 + 1);
    CU_ASSERT(nrec > 2);
    CU_ASSERT(strncmp(recs[0].topic, "homeassistant/device_tracker/", 29) == 0);
    CU_ASSERT(recs[0].urgent);
    int first_pos = -1, last_cfg = -1;
    for (size_t i = 0; i < nrec; i++) {
        if (strncmp(recs[i].topic, "homeassistant/", 14) == 0) last_cfg = (int)i;
        if (strcmp(recs[i].topic, POS) == 0 && first_pos < 0) first_pos = (int)i;
    }
    CU_ASSERT(last_cfg >= 0 && first_pos > last_cfg);
    clear();
    u = upd("d", NULL, T0 + 2);
    t2m_state_update(st, 0, &u, T0 + 2); /* configs once per connection */
    CU_ASSERT_PTR_NULL(last("homeassistant/device_tracker/t2m_i/d/config", NULL));
    done(st);
}

/* SPEC 4: after the read-back, every config of this bridge that the present configuration
 * would not publish is cleared; the rest, and every other bridge's, stay. */
static void test_withdraw_plan(void)
{
    struct t2m_state *st =
        mk_conn("homeassistant = { enabled = true; discovery = \"entity\"; };", true);
    /* the retained state knows device d; its configs and stale ones come back too */
    const char *pos = "{\"device_token\":\"d\",\"latitude\":1,\"longitude\":2,"
                      "\"timestamp\":1700000000000}";
    t2m_state_retained(st, POS, pos, strlen(pos), T0);
    struct {
        const char *topic, *uid;
        bool stale;
    } configs[] = {
        {"homeassistant/device_tracker/t2m_i/d/config", "t2m_telematics2mqtt__i__d", false},
        {"homeassistant/sensor/t2m_i/d_speed/config", "t2m_telematics2mqtt__i__d_speed", false},
        /* zones are not configured: the zone sensor is stale */
        {"homeassistant/sensor/t2m_i/d_zone/config", "t2m_telematics2mqtt__i__d_zone", true},
        /* a device the broker no longer has a position of */
        {"homeassistant/sensor/t2m_i/gone_speed/config", "t2m_telematics2mqtt__i__gone_speed",
         true},
        /* the bridge's own instance sensors stay */
        {"homeassistant/sensor/t2m_bridge_telematics2mqtt/i_state/config",
         "t2m_telematics2mqtt__bridge__i_state", false},
        /* another bridge's and another integration's configs are never touched */
        {"homeassistant/sensor/t2m_i/x_speed/config", "t2m_other__i__x_speed", false},
        {"homeassistant/sensor/0x12/temp/config", "zigbee2mqtt_0x12_temp", false},
    };
    char payload[256];
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        snprintf(payload, sizeof(payload), "{\"unique_id\":\"%s\"}", configs[i].uid);
        CU_ASSERT(t2m_state_retained(st, configs[i].topic, payload, strlen(payload), T0));
    }
    clear();
    t2m_state_readback_done(st, T0);
    t2m_state_withdraw(st, true);
    size_t clears = 0;
    for (size_t i = 0; i < nrec; i++)
        clears += recs[i].kind == T2M_ACT_CLEAR;
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        struct rec *r = last(configs[i].topic, NULL);
        if (configs[i].stale) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(r);
            CU_ASSERT_EQUAL(r->kind, T2M_ACT_CLEAR);
            CU_ASSERT(r->retain);
        } else {
            CU_ASSERT(!r || r->kind == T2M_ACT_PUBLISH); /* kept (or re-published) */
        }
    }
    CU_ASSERT_EQUAL(clears, 2);
    /* the device known from the read-back goes out again as the present config renders it */
    CU_ASSERT_PTR_NOT_NULL(last(POS, NULL));
    CU_ASSERT_PTR_NOT_NULL(last("homeassistant/device_tracker/t2m_i/d/config", NULL));
    done(st);

    /* Home Assistant turned off: every config of this bridge goes */
    st = mk("");
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        snprintf(payload, sizeof(payload), "{\"unique_id\":\"%s\"}", configs[i].uid);
        t2m_state_retained(st, configs[i].topic, payload, strlen(payload), T0);
    }
    clear();
    t2m_state_readback_done(st, T0);
    t2m_state_withdraw(st, true);
    size_t cleared = 0;
    for (size_t i = 0; i < nrec; i++)
        cleared += recs[i].kind == T2M_ACT_CLEAR;
    CU_ASSERT_EQUAL(cleared, 5);
    CU_ASSERT_PTR_NULL(last("homeassistant/sensor/0x12/temp/config", NULL));
    done(st);
}

/* ---- issue 19, item 5: the read-back does not trust what it reads ---- */

/* Junk under the bridge's retained topics fills the table: a real new device still gets in,
 * in place of one known only from the read-back; once live, a device is never given up. */
static void test_readback_gives_way_to_live(void)
{
    struct t2m_state *st = mk("upstream = { max_devices = 3; };");
    char topic[64], payload[160];
    for (int i = 0; i < 5; i++) {
        snprintf(topic, sizeof(topic), "telematics/i/junk%d/position", i);
        snprintf(payload, sizeof(payload), "{\"latitude\":1,\"longitude\":2,\"timestamp\":%lld}",
                 (long long)(T0 - 1000));
        t2m_state_retained(st, topic, payload, strlen(payload), T0);
    }
    CU_ASSERT_EQUAL(t2m_state_count(st), 3); /* two more were dropped: the table was full */
    t2m_state_readback_done(st, T0);
    t2m_state_withdraw(st, true);
    const char *live[] = {"real1", "real2", "real3"};
    for (int i = 0; i < 3; i++) {
        struct t2m_update u = upd(live[i], NULL, T0);
        at(&u, 1, 2);
        clear();
        t2m_state_update(st, 0, &u, T0);
        snprintf(topic, sizeof(topic), "telematics/i/%s/position", live[i]);
        CU_ASSERT_PTR_NOT_NULL(last(topic, NULL));
    }
    CU_ASSERT_EQUAL(t2m_state_count(st), 3);
    /* all three are live now: a fourth live one is dropped, as max_devices says */
    uint64_t dropped = stats.dropped[T2M_DROP_MAX_DEVICES];
    struct t2m_update u = upd("real4", NULL, T0);
    at(&u, 1, 2);
    clear();
    t2m_state_update(st, 0, &u, T0);
    CU_ASSERT_PTR_NULL(last("telematics/i/real4/position", NULL));
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_MAX_DEVICES], dropped + 1);
    done(st);
}

/* One retained message read back, and the read-back's end. */
static void read_back(struct t2m_state *st, const char *topic, const char *payload)
{
    t2m_state_retained(st, topic, payload, strlen(payload), T0);
    t2m_state_readback_done(st, T0);
    t2m_state_withdraw(st, true);
}

/* Out-of-range values come back as nothing, by the rules of a live update. */
static void test_readback_validates(void)
{
    struct t2m_state *st = mk("");
    char payload[512];
    snprintf(payload, sizeof(payload),
             "{\"latitude\":95,\"longitude\":500,\"speed\":-50,\"speed_unit\":\"km/h\","
             "\"gps_accuracy\":1e300,\"heading\":400,\"timestamp\":%lld}",
             (long long)(T0 - 1000));
    read_back(st, POS, payload);
    json_object *p = json_of(POS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT(!has(p, "latitude") && !has(p, "longitude") && !has(p, "speed") &&
              !has(p, "gps_accuracy") && !has(p, "heading"));
    json_object_put(p);
    done(st);

    /* a trip starting at latitude 95 / longitude 500 with max speed -10 and distance 1e300 */
    st = mk("");
    snprintf(payload, sizeof(payload),
             "{\"track_token\":\"T\",\"state\":\"driving\",\"start\":%lld,\"duration\":%lld,"
             "\"distance\":1e300,\"distance_unit\":\"km\",\"max_speed\":-10,"
             "\"speed_unit\":\"km/h\",\"start_latitude\":95,\"start_longitude\":500,"
             "\"updates\":3}",
             (long long)(T0 - 60000), 59LL);
    read_back(st, TRIP, payload);
    /* a new trip ends it: its trip_ended carries the whole trip, valid */
    struct t2m_update u = upd("d", "T2", T0);
    at(&u, 1, 2);
    clear();
    t2m_state_update(st, 0, &u, T0);
    json_object *t = NULL;
    for (size_t i = 0; i < nrec; i++) {
        json_object *o = json_tokener_parse(recs[i].payload), *e;
        if (o && json_object_object_get_ex(o, "event", &e) &&
            strcmp(json_object_get_string(e), "trip_ended") == 0 &&
            json_object_object_get_ex(o, "trip", &e))
            t = json_object_get(e);
        json_object_put(o);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(num(t, "distance"), 0);
    CU_ASSERT(!has(t, "max_speed") && !has(t, "start_latitude"));
    json_object_put(t);
    done(st);
}

/* A retained trip without a position, a normal drive 100 s old: it goes on (trip_timeout
 * counts from its last fix), and no position stamped 1970 goes out. */
static void test_readback_trip_without_position(void)
{
    struct t2m_state *st = mk("");
    char payload[512];
    snprintf(payload, sizeof(payload),
             "{\"track_token\":\"T\",\"state\":\"driving\",\"start\":%lld,\"duration\":500,"
             "\"distance\":1.5,\"distance_unit\":\"km\",\"updates\":40}",
             (long long)(T0 - 600000));
    clear();
    read_back(st, TRIP, payload);
    t2m_state_tick(st, T0 + 1000);
    CU_ASSERT_PTR_NULL(last(POS, NULL));
    CU_ASSERT_STRING_EQUAL(events("telematics/i/d/event"), "");
    /* trip_timeout (300 s) after its last fix (T0 - 100 s): ended then, with its duration */
    t2m_state_tick(st, T0 + 199000);
    CU_ASSERT_STRING_EQUAL(events("telematics/i/d/event"), "");
    t2m_state_tick(st, T0 + 201000);
    CU_ASSERT_STRING_EQUAL(events("telematics/i/d/event"), "trip_ended");
    json_object *t = json_of(TRIP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    T2M_ASSERT_STR(str(t, "state"), "ended");
    CU_ASSERT_EQUAL(num(t, "duration"), 500);
    json_object_put(t);
    CU_ASSERT_PTR_NULL(last(POS, NULL));
    done(st);
}

/* An update of d stamped ts at latitude lat, arriving at now: the fix time its state then says
 * (-1 when it was not published, or with another latitude). */
static int64_t fix_of(struct t2m_state *st, int64_t ts, int64_t now, double lat)
{
    struct t2m_update u = upd("d", NULL, ts);
    at(&u, lat, 2);
    clear();
    t2m_state_update(st, 0, &u, now);
    json_object *p = json_of(POS);
    int64_t fix = p && num(p, "latitude") == lat ? (int64_t)num(p, "timestamp") : -1;
    json_object_put(p);
    return fix;
}

/* SPEC 2.1: a fix time too far ahead of the clock never blocks a device. */
static void test_future_times_untrusted(void)
{
    struct t2m_state *st = mk("");
    /* a retained position stamped 2100 is ignored ... */
    const char *forged = "{\"latitude\":9,\"longitude\":9,\"timestamp\":4102444800000}";
    t2m_state_retained(st, POS, forged, strlen(forged), T0);
    CU_ASSERT_EQUAL(t2m_state_count(st), 0);
    CU_ASSERT_EQUAL(stats.fields_rejected, 1);
    t2m_state_readback_done(st, T0);
    t2m_state_withdraw(st, true);
    /* ... so a real update is not stale */
    CU_ASSERT_EQUAL(fix_of(st, T0, T0, 1), T0);
    /* an update a day ahead is merged as of its arrival, its time counted as rejected */
    CU_ASSERT_EQUAL(fix_of(st, T0 + 86400000, T0 + 1000, 3), T0 + 1000);
    CU_ASSERT_EQUAL(stats.fields_rejected, 2);
    /* and the next real one is not stale */
    CU_ASSERT_EQUAL(fix_of(st, T0 + 2000, T0 + 2000, 5), T0 + 2000);
    /* within max_clock_skew (600 s) a time is trusted */
    CU_ASSERT_EQUAL(fix_of(st, T0 + 300000, T0 + 3000, 7), T0 + 300000);
    done(st);
}

/* Issue 19, item 9: a config with this bridge's unique_id under a node it never names is
 * another integration's: not withdrawn. A read-back that did not end on its marker withdraws
 * nothing (SPEC 8). */
static void test_withdraw_only_ours_and_complete(void)
{
    struct t2m_state *st = mk("homeassistant = { enabled = true; };");
    const char *cfg_payload = "{\"unique_id\":\"t2m_telematics2mqtt__i__gone_speed\"}";
    t2m_state_retained(st, "homeassistant/sensor/0x12/gone/config", cfg_payload,
                       strlen(cfg_payload), T0);
    t2m_state_retained(st, "homeassistant/sensor/t2m_i/gone_speed/config", cfg_payload,
                       strlen(cfg_payload), T0);
    clear();
    t2m_state_readback_done(st, T0);
    t2m_state_withdraw(st, false);
    CU_ASSERT_PTR_NULL(last("homeassistant/sensor/t2m_i/gone_speed/config", NULL));
    t2m_state_retained(st, "homeassistant/sensor/0x12/gone/config", cfg_payload,
                       strlen(cfg_payload), T0);
    t2m_state_retained(st, "homeassistant/sensor/t2m_i/gone_speed/config", cfg_payload,
                       strlen(cfg_payload), T0);
    clear();
    t2m_state_readback_done(st, T0);
    t2m_state_withdraw(st, true);
    CU_ASSERT_PTR_NULL(last("homeassistant/sensor/0x12/gone/config", NULL));
    struct rec *r = last("homeassistant/sensor/t2m_i/gone_speed/config", NULL);
    CU_ASSERT(r && r->kind == T2M_ACT_CLEAR);
    done(st);
}

/* SPEC v3 4: an installation of 0.x (one config per entity) moves to device-based discovery as
 * Home Assistant documents it: {"migrate_discovery": true} on each old topic, then the device's
 * one config (same unique_ids), then, at the withdrawal, the old topics cleared. */
static void test_migration_to_device_discovery(void)
{
    struct t2m_state *st = mk_conn("homeassistant = { enabled = true; };", true);
    const char *pos = "{\"device_token\":\"d\",\"latitude\":1,\"longitude\":2,"
                      "\"timestamp\":1700000000000}";
    t2m_state_hold_discovery(st, true);
    t2m_state_retained(st, POS, pos, strlen(pos), T0);
    static const char *const old[] = {
        "homeassistant/device_tracker/t2m_i/d/config", "homeassistant/sensor/t2m_i/d_speed/config",
        "homeassistant/sensor/t2m_i/d_trip_distance/config",
        "homeassistant/sensor/t2m_bridge_telematics2mqtt/i_state/config"};
    static const char *const uids[] = {
        "t2m_telematics2mqtt__i__d", "t2m_telematics2mqtt__i__d_speed",
        "t2m_telematics2mqtt__i__d_trip_distance", "t2m_telematics2mqtt__bridge__i_state"};
    char payload[256];
    for (size_t i = 0; i < 4; i++) {
        snprintf(payload, sizeof(payload), "{\"unique_id\":\"%s\"}", uids[i]);
        CU_ASSERT(t2m_state_retained(st, old[i], payload, strlen(payload), T0));
    }
    clear();
    t2m_state_connected(st, true, T0); /* held: no config yet */
    for (size_t i = 0; i < nrec; i++)
        CU_ASSERT(strncmp(recs[i].topic, "homeassistant/", 14) != 0);
    clear();
    t2m_state_readback_done(st, T0);
    const char *dev = "homeassistant/device/t2m_telematics2mqtt__i__d/config";
    size_t first_config = nrec, markers = 0;
    for (size_t i = 0; i < nrec; i++) {
        if (strcmp(recs[i].topic, dev) == 0 && first_config == nrec) first_config = i;
        if (strcmp(recs[i].payload, "{\"migrate_discovery\":true}") == 0) {
            markers++;
            CU_ASSERT(i < first_config); /* every marker before the new config */
            CU_ASSERT(recs[i].retain);
        }
    }
    CU_ASSERT_EQUAL(markers, 4);
    CU_ASSERT_FATAL(first_config < nrec);
    json_object *o = json_tokener_parse(recs[first_config].payload), *cmps, *c;
    CU_ASSERT_FATAL(o && json_object_object_get_ex(o, "components", &cmps));
    CU_ASSERT_FATAL(json_object_object_get_ex(cmps, "tracker", &c));
    T2M_ASSERT_STR(str(c, "unique_id"), "t2m_telematics2mqtt__i__d"); /* kept */
    json_object_put(o);
    /* the old topics are cleared by the withdrawal; the new config stays */
    clear();
    CU_ASSERT_EQUAL(t2m_state_withdraw(st, true), 4);
    for (size_t i = 0; i < 4; i++) {
        struct rec *r = last(old[i], NULL);
        CU_ASSERT(r && r->kind == T2M_ACT_CLEAR);
    }
    CU_ASSERT_PTR_NULL(last(dev, NULL));
    done(st);
}

/* SPEC 2.3: a rename is part of the retained state and survives a restart through the
 * read-back; an alias in the configuration wins over it. */
static void test_rename_survives_restart(void)
{
    const char *pos = "{\"device_token\":\"d\",\"name\":\"Van 9\",\"latitude\":1,\"longitude\":2,"
                      "\"timestamp\":1700000000000}";
    struct t2m_state *st = mk("");
    read_back(st, POS, pos);
    json_object *p = json_of(POS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    T2M_ASSERT_STR(str(p, "name"), "Van 9");
    json_object_put(p);
    done(st);
    st = mk("devices = ( { token = \"d\"; name = \"Configured\"; } );");
    read_back(st, POS, pos);
    p = json_of(POS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    T2M_ASSERT_STR(str(p, "name"), "Configured");
    json_object_put(p);
    done(st);
    /* a name no request could set is not taken */
    st = mk("");
    read_back(st, POS, "{\"name\":\"a\\nb\",\"latitude\":1,\"longitude\":2,\"timestamp\":1}");
    p = json_of(POS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_FALSE(has(p, "name"));
    json_object_put(p);
    done(st);
}

/* device/remove and device/rename through the core. */
static void test_remove_and_rename(void)
{
    struct t2m_state *st = mk("");
    struct t2m_update u = upd("d", "T1", T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, T0);
    CU_ASSERT_EQUAL(t2m_state_instance(st, "i"), 0);
    CU_ASSERT_EQUAL(t2m_state_instance(st, "x"), -1);
    CU_ASSERT_EQUAL(t2m_state_rename(st, 0, "nope", 4, "N", T0), -1);
    clear();
    CU_ASSERT_EQUAL(t2m_state_rename(st, 0, "d", 1, "Van 12", T0 + 1), 0);
    json_object *p = json_of(POS);
    T2M_ASSERT_STR(str(p, "name"), "Van 12");
    json_object_put(p);
    /* the status page sees what was published, the same text (SPEC 7) */
    CU_ASSERT_EQUAL_FATAL(nview, 1);
    CU_ASSERT_EQUAL(views[0].kind, T2M_ACT_VIEW_DEVICE);
    T2M_ASSERT_STR(views[0].payload, last(POS, NULL)->payload);
    char buf[4096];
    CU_ASSERT(t2m_state_render_devices(st, 0, buf, sizeof(buf)) > 0);
    json_object *arr = json_tokener_parse(buf);
    CU_ASSERT_FATAL(arr && json_object_array_length(arr) == 1);
    T2M_ASSERT_STR(str(json_object_array_get_idx(arr, 0), "name"), "Van 12");
    json_object_put(arr);
    CU_ASSERT_EQUAL(t2m_state_render_devices(st, 0, buf, 20), 0); /* does not fit */
    clear();
    CU_ASSERT_EQUAL(t2m_state_remove(st, 0, "d", 1, T0 + 2), 0);
    T2M_ASSERT_STR(events(EVENT), "device_removed");
    json_object *e = json_of(EVENT);
    T2M_ASSERT_STR(str(e, "reason"), "request");
    json_object_put(e);
    CU_ASSERT_EQUAL(last(POS, NULL)->kind, T2M_ACT_CLEAR);
    CU_ASSERT_EQUAL_FATAL(nview, 1);
    CU_ASSERT_EQUAL(views[0].kind, T2M_ACT_VIEW_REMOVED);
    T2M_ASSERT_STR(views[0].payload, "{\"instance_id\":\"i\",\"device_token\":\"d\"}");
    CU_ASSERT_EQUAL(t2m_state_count(st), 0);
    CU_ASSERT_EQUAL(t2m_state_remove(st, 0, "d", 1, T0 + 3), -1);
    CU_ASSERT(t2m_state_render_devices(st, -1, buf, sizeof(buf)) > 0);
    T2M_ASSERT_STR(buf, "[]");
    done(st);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"2.1 partial updates keep coordinates", test_partial_updates_keep_coordinates},
        {"an update for a device removed in its window is counted", test_removed_in_window_counted},
        {"2.1 a lone latitude is ignored", test_lone_latitude_ignored},
        {"2.1 timestamp, last_seen, name, driving", test_timestamp_vs_last_seen_and_name},
        {"2.1 stale dropped with no effect", test_stale_dropped_without_effect},
        {"2.1 throttle trailing edge", test_throttle_trailing_edge},
        {"2.1 max_devices", test_max_devices},
        {"2.2 haversine against hand values", test_haversine},
        {"2.2 trip: start, stats, end by a new token", test_trip_start_stats_and_end_by_new_token},
        {"2.2 trip: end by timeout", test_trip_end_by_timeout},
        {"2.2 zones: enter, leave, nearest, accuracy", test_zones},
        {"2.2 expire_after removes", test_expiry},
        {"2.1 a wall clock step moves the deadlines", test_clock_step},
        {"2.1 read-back restores state and trip", test_readback_restores},
        {"2.1 older read-back never overwrites live", test_readback_older_does_not_overwrite_live},
        {"4 discovery before the first position", test_discovery_before_first_position},
        {"4 withdraw plan", test_withdraw_plan},
        {"4 migration to device-based discovery", test_migration_to_device_discovery},
        {"2.1 read-back gives way to live devices", test_readback_gives_way_to_live},
        {"2.1 read-back: the trip inside the state", test_readback_trip_in_state},
        {"2.1 read-back values validated", test_readback_validates},
        {"2.1 read-back trip without a position", test_readback_trip_without_position},
        {"2.1 future fix times untrusted", test_future_times_untrusted},
        {"4/8 withdraw only ours, only when complete", test_withdraw_only_ours_and_complete},
        {"2.3 remove and rename", test_remove_and_rename},
        {"2.3 a rename survives a restart", test_rename_survives_restart},
        {NULL, NULL},
    };
    int rc = t2m_test_run("state", cases);
    clear();
    t2m_config_free(cfg);
    return rc;
}
