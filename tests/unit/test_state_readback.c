/* test_state_readback.c - the device state core: the retained state read back, the migration and
 * the withdrawal (SPEC 2.1, 4, 8). Inputs in, actions out, time passed in by hand. */
#include "state_fixture.h"

static void test_readback_restores(void)
{
    struct t2m_state *st = mk("");
    CU_ASSERT(t2m_state_retained(
        st, POS,
        "{\"instance_id\":\"i\",\"device_token\":\"d\",\"track_token\":\"T1\",\"latitude\":0,"
        "\"longitude\":1,\"speed\":36,\"speed_unit\":\"km/h\",\"timestamp\":1700000000000,"
        "\"last_seen\":1700000000500,\"driving\":true}",
        200, AT(T0 + 1000)));
    const char *trip = "{\"track_token\":\"T1\",\"state\":\"driving\",\"start\":1699999000000,"
                       "\"duration\":1000,\"distance\":5.5,\"distance_unit\":\"km\","
                       "\"max_speed\":72,\"avg_speed\":19.8,\"speed_unit\":\"km/h\","
                       "\"start_latitude\":0,\"start_longitude\":0.95,\"updates\":40}";
    CU_ASSERT(t2m_state_retained(st, TRIP, trip, strlen(trip), AT(T0 + 1000)));
    CU_ASSERT_FALSE(t2m_state_retained(st, "telematics/other/d/position", "{}", 2, AT(T0)));
    CU_ASSERT_FALSE(t2m_state_retained(st, "elsewhere/i/d/position", "{}", 2, AT(T0)));
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    CU_ASSERT_EQUAL(nrec, 0); /* restoring publishes nothing */
    /* an older update is still stale */
    struct t2m_update u = upd("d", "T1", T0 - 1);
    at(&u, 5, 5);
    t2m_state_update(st, 0, &u, AT(T0 + 2000));
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_STALE], 1);
    /* a newer one continues the trip: no trip_started, the distance adds */
    u = upd("d", "T1", T0 + 10000);
    at(&u, 0, 1.01); /* 1.112 km further */
    t2m_state_update(st, 0, &u, AT(T0 + 10000));
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
        if (order == 0) t2m_state_retained(st, POS, pos, strlen(pos), AT(T0 + 1000));
        t2m_state_retained(st, TRIP, old, strlen(old), AT(T0 + 1000));
        if (order == 1) t2m_state_retained(st, POS, pos, strlen(pos), AT(T0 + 1000));
        t2m_state_readback_done(st, AT(T0 + 1000));
        struct t2m_update u = upd("d", "T1", T0 + 10000);
        at(&u, 0, 1.01); /* 1.112 km further */
        clear();
        t2m_state_update(st, 0, &u, AT(T0 + 10000));
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
    t2m_state_update(st, 0, &u, AT(T0 + 5000));
    clear();
    const char *old = "{\"device_token\":\"d\",\"latitude\":1,\"longitude\":2,\"heading\":90,"
                      "\"timestamp\":1700000000000}";
    t2m_state_retained(st, POS, old, strlen(old), AT(T0 + 5100));
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
    t2m_state_update(st, 0, &u, AT(T0)); /* offline: no discovery yet */
    CU_ASSERT_PTR_NULL(last("homeassistant/device_tracker/t2m_i/d/config", NULL));
    clear();
    t2m_state_connected(st, true, AT(T0 + 1));
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
    t2m_state_update(st, 0, &u, AT(T0 + 2)); /* configs once per connection */
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
    t2m_state_retained(st, POS, pos, strlen(pos), AT(T0));
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
        CU_ASSERT(t2m_state_retained(st, configs[i].topic, payload, strlen(payload), AT(T0)));
    }
    clear();
    t2m_state_readback_done(st, AT(T0));
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
        t2m_state_retained(st, configs[i].topic, payload, strlen(payload), AT(T0));
    }
    clear();
    t2m_state_readback_done(st, AT(T0));
    t2m_state_withdraw(st, true);
    size_t cleared = 0;
    for (size_t i = 0; i < nrec; i++)
        cleared += recs[i].kind == T2M_ACT_CLEAR;
    CU_ASSERT_EQUAL(cleared, 5);
    CU_ASSERT_PTR_NULL(last("homeassistant/sensor/0x12/temp/config", NULL));
    done(st);
}

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
        t2m_state_retained(st, topic, payload, strlen(payload), AT(T0));
    }
    CU_ASSERT_EQUAL(t2m_state_count(st), 3); /* two more were dropped: the table was full */
    t2m_state_readback_done(st, AT(T0));
    t2m_state_withdraw(st, true);
    const char *live[] = {"real1", "real2", "real3"};
    for (int i = 0; i < 3; i++) {
        struct t2m_update u = upd(live[i], NULL, T0);
        at(&u, 1, 2);
        clear();
        t2m_state_update(st, 0, &u, AT(T0));
        snprintf(topic, sizeof(topic), "telematics/i/%s/position", live[i]);
        CU_ASSERT_PTR_NOT_NULL(last(topic, NULL));
    }
    CU_ASSERT_EQUAL(t2m_state_count(st), 3);
    /* all three are live now: a fourth live one is dropped, as max_devices says */
    uint64_t dropped = stats.dropped[T2M_DROP_MAX_DEVICES];
    struct t2m_update u = upd("real4", NULL, T0);
    at(&u, 1, 2);
    clear();
    t2m_state_update(st, 0, &u, AT(T0));
    CU_ASSERT_PTR_NULL(last("telematics/i/real4/position", NULL));
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_MAX_DEVICES], dropped + 1);
    done(st);
}

/* One retained message read back, and the read-back's end. */
static void read_back(struct t2m_state *st, const char *topic, const char *payload)
{
    t2m_state_retained(st, topic, payload, strlen(payload), AT(T0));
    t2m_state_readback_done(st, AT(T0));
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
    t2m_state_update(st, 0, &u, AT(T0));
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
    t2m_state_tick(st, AT(T0 + 1000));
    CU_ASSERT_PTR_NULL(last(POS, NULL));
    CU_ASSERT_STRING_EQUAL(events("telematics/i/d/event"), "");
    /* trip_timeout (300 s) after its last fix (T0 - 100 s): ended then, with its duration */
    t2m_state_tick(st, AT(T0 + 199000));
    CU_ASSERT_STRING_EQUAL(events("telematics/i/d/event"), "");
    t2m_state_tick(st, AT(T0 + 201000));
    CU_ASSERT_STRING_EQUAL(events("telematics/i/d/event"), "trip_ended");
    json_object *t = json_of(TRIP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    T2M_ASSERT_STR(str(t, "state"), "ended");
    CU_ASSERT_EQUAL(num(t, "duration"), 500);
    json_object_put(t);
    CU_ASSERT_PTR_NULL(last(POS, NULL));
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
                       strlen(cfg_payload), AT(T0));
    t2m_state_retained(st, "homeassistant/sensor/t2m_i/gone_speed/config", cfg_payload,
                       strlen(cfg_payload), AT(T0));
    clear();
    t2m_state_readback_done(st, AT(T0));
    t2m_state_withdraw(st, false);
    CU_ASSERT_PTR_NULL(last("homeassistant/sensor/t2m_i/gone_speed/config", NULL));
    t2m_state_retained(st, "homeassistant/sensor/0x12/gone/config", cfg_payload,
                       strlen(cfg_payload), AT(T0));
    t2m_state_retained(st, "homeassistant/sensor/t2m_i/gone_speed/config", cfg_payload,
                       strlen(cfg_payload), AT(T0));
    clear();
    t2m_state_readback_done(st, AT(T0));
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
    t2m_state_retained(st, POS, pos, strlen(pos), AT(T0));
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
        CU_ASSERT(t2m_state_retained(st, old[i], payload, strlen(payload), AT(T0)));
    }
    clear();
    t2m_state_connected(st, true, AT(T0)); /* held: no config yet */
    for (size_t i = 0; i < nrec; i++)
        CU_ASSERT(strncmp(recs[i].topic, "homeassistant/", 14) != 0);
    clear();
    t2m_state_readback_done(st, AT(T0));
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

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"2.1 read-back restores state and trip", test_readback_restores},
        {"2.1 read-back: the trip inside the state", test_readback_trip_in_state},
        {"2.1 older read-back never overwrites live", test_readback_older_does_not_overwrite_live},
        {"4 discovery before the first position", test_discovery_before_first_position},
        {"4 withdraw plan", test_withdraw_plan},
        {"2.1 read-back gives way to live devices", test_readback_gives_way_to_live},
        {"2.1 read-back values validated", test_readback_validates},
        {"2.1 read-back trip without a position", test_readback_trip_without_position},
        {"4/8 withdraw only ours, only when complete", test_withdraw_only_ours_and_complete},
        {"4 migration to device-based discovery", test_migration_to_device_discovery},
        {"2.3 a rename survives a restart", test_rename_survives_restart},
        {NULL, NULL},
    };
    int rc = t2m_test_run("state read-back", cases);
    clear();
    t2m_config_free(cfg);
    return rc;
}
