/* test_state_trips.c - the device state core: trips and zones (SPEC 2.2). Inputs in,
 * actions out, time passed in by hand. */
#include "state_fixture.h"

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
    t2m_state_update(st, 0, &u, AT(T0));
    T2M_ASSERT_STR(events(EVENT), "trip_started");
    json_object *t = json_of(TRIP);
    T2M_ASSERT_STR(str(t, "state"), "driving");
    CU_ASSERT_FALSE(has(t, "end"));
    CU_ASSERT(last(TRIP, NULL)->retain);
    json_object_put(t);
    u = upd("d", "T1", T0 + 100000);
    at(&u, 0, 1); /* 111.195 km east */
    speed(&u, 30);
    t2m_state_update(st, 0, &u, AT(T0 + 100000));
    u = upd("d", NULL, T0 + 200000); /* a partial update belongs to the trip */
    speed(&u, 20);
    t2m_state_update(st, 0, &u, AT(T0 + 200000));
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
    t2m_state_update(st, 0, &u, AT(T0 + 300000));
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
    t2m_state_update(st, 0, &u, AT(T0));
    CU_ASSERT(t2m_state_next_deadline(st) <= T0 + 1000);
    clear();
    t2m_state_tick(st, AT(T0 + 59000));
    CU_ASSERT_STRING_EQUAL(events(EVENT), "");
    t2m_state_tick(st, AT(T0 + 60000));
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

static void test_zones(void)
{
    /* two overlapping zones 1 km apart, and a small one */
    struct t2m_state *st = mk("zones = ( { name = \"A\"; latitude = 0.0; longitude = 0.0; "
                              "radius = 1000.0; }, { name = \"B\"; latitude = 0.0; longitude = "
                              "0.009; radius = 1000.0; } );");
    struct t2m_update u = upd("d", NULL, T0);
    at(&u, 0, 0.003); /* 334 m from A, 667 m from B: nearest wins */
    t2m_state_update(st, 0, &u, AT(T0));
    T2M_ASSERT_STR(events(EVENT), "zone_entered");
    json_object *p = json_of(POS);
    T2M_ASSERT_STR(str(p, "zone"), "A");
    json_object_put(p);
    clear();
    u = upd("d", NULL, T0 + 1000);
    at(&u, 0, 0.006);
    t2m_state_update(st, 0, &u, AT(T0 + 1000));
    T2M_ASSERT_STR(events(EVENT), "zone_left,zone_entered");
    clear();
    /* an accuracy worse than the radius does not move the zone */
    u = upd("d", NULL, T0 + 2000);
    at(&u, 0, 1);
    u.accuracy = 5000;
    u.has |= T2M_HAS_ACCURACY;
    t2m_state_update(st, 0, &u, AT(T0 + 2000));
    T2M_ASSERT_STR(events(EVENT), "");
    p = json_of(POS);
    T2M_ASSERT_STR(str(p, "zone"), "B");
    json_object_put(p);
    u = upd("d", NULL, T0 + 3000);
    at(&u, 0, 1);
    u.accuracy = 10;
    u.has |= T2M_HAS_ACCURACY;
    t2m_state_update(st, 0, &u, AT(T0 + 3000));
    T2M_ASSERT_STR(events(EVENT), "zone_left");
    p = json_of(POS);
    CU_ASSERT_FALSE(has(p, "zone"));
    json_object_put(p);
    done(st);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"2.2 haversine against hand values", test_haversine},
        {"2.2 trip: start, stats, end by a new token", test_trip_start_stats_and_end_by_new_token},
        {"2.2 trip: end by timeout", test_trip_end_by_timeout},
        {"2.2 zones: enter, leave, nearest, accuracy", test_zones},
        {NULL, NULL},
    };
    int rc = t2m_test_run("state trips", cases);
    clear();
    t2m_config_free(cfg);
    return rc;
}
