/* test_state.c - the device state core: merging updates, the stale guard, untrusted times, the
 * device limit, requests. Inputs in, actions out, time passed in by hand. */
#include "state_fixture.h"

static void test_partial_updates_keep_coordinates(void)
{
    struct t2m_state *st = mk("");
    struct t2m_update u = upd("d", NULL, T0);
    at(&u, 52.1, 4.3);
    u.accuracy = 5;
    u.has |= T2M_HAS_ACCURACY;
    t2m_state_update(st, 0, &u, AT(T0));
    u = upd("d", NULL, T0 + 1000);
    speed(&u, 6.71);
    t2m_state_update(st, 0, &u, AT(T0 + 1000));
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
    t2m_state_update(st, 0, &u, AT(T0));
    u = upd("d", NULL, T0 + 1000);
    u.lat = 10;
    u.has |= T2M_HAS_LAT;
    t2m_state_update(st, 0, &u, AT(T0 + 1000));
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
    t2m_state_update(st, 0, &u, AT(T0));
    json_object *p = json_of(POS);
    CU_ASSERT_EQUAL(num(p, "timestamp"), (double)(T0 - 5000));
    CU_ASSERT_EQUAL(num(p, "last_seen"), (double)T0);
    T2M_ASSERT_STR(str(p, "name"), "Van 12");
    CU_ASSERT_FALSE(json_object_get_boolean(json_object_object_get(p, "driving")));
    CU_ASSERT_FALSE(has(p, "zone"));
    json_object_put(p);
    /* no Timestamp: the arrival is the fix time */
    u = upd("d", NULL, 0);
    t2m_state_update(st, 0, &u, AT(T0 + 7000));
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
    t2m_state_update(st, 0, &u, AT(T0));
    clear();
    u = upd("d", "T2", T0 - 1); /* older, and with a new track: still no trip, no event */
    at(&u, 3, 4);
    t2m_state_update(st, 0, &u, AT(T0 + 10));
    CU_ASSERT_EQUAL(nrec, 0);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_STALE], 1);
    done(st);
}

/* What the state core logs, captured through the log sink. */
static char logged[8][512];
static int n_logged;
static void capture(enum t2m_log_level level, const char *module, const char *msg)
{
    (void)level;
    (void)module;
    if (n_logged < 8) snprintf(logged[n_logged++], sizeof(logged[0]), "%s", msg);
}

/* SPEC 8: a per-message condition is logged once, then summarised at most once a minute, on
 * the monotonic clock (a wall clock that steps back cannot silence it). */
static void test_repeated_condition_summarised(void)
{
    struct t2m_state *st = mk("upstream = { max_devices = 1; };");
    t2m_log_set_sink(capture);
    n_logged = 0;
    const char *devs[] = {"a", "b", "c", "d"};
    const struct t2m_now at_[] = {AT(T0), WALL_MONO(T0, 1000), WALL_MONO(T0 - 3600000, 2000),
                                  WALL_MONO(T0 - 3600000, 61000)};
    for (int i = 0; i < 4; i++) {
        struct t2m_update u = upd(devs[i], NULL, at_[i].wall);
        at(&u, 1, 2);
        t2m_state_update(st, 0, &u, at_[i]);
    }
    t2m_log_set_sink(NULL);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_MAX_DEVICES], 3);
    CU_ASSERT_EQUAL_FATAL(n_logged, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(logged[0], "(1 since the last report)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(logged[1], "(2 since the last report)"));
    done(st);
}

static void test_max_devices(void)
{
    struct t2m_state *st = mk("upstream = { max_devices = 2; };");
    const char *devs[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        struct t2m_update u = upd(devs[i], NULL, T0);
        at(&u, 1, 2);
        t2m_state_update(st, 0, &u, AT(T0));
    }
    CU_ASSERT_EQUAL(t2m_state_count(st), 2);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_MAX_DEVICES], 1);
    CU_ASSERT_PTR_NULL(last("telematics/i/c/position", NULL));
    done(st);
}

/* An update of d stamped ts at latitude lat, arriving at now: the fix time its state then says
 * (-1 when it was not published, or with another latitude). */
static int64_t fix_of(struct t2m_state *st, int64_t ts, int64_t now, double lat)
{
    struct t2m_update u = upd("d", NULL, ts);
    at(&u, lat, 2);
    clear();
    t2m_state_update(st, 0, &u, AT(now));
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
    t2m_state_retained(st, POS, forged, strlen(forged), AT(T0));
    CU_ASSERT_EQUAL(t2m_state_count(st), 0);
    CU_ASSERT_EQUAL(stats.fields_rejected, 1);
    t2m_state_readback_done(st, AT(T0));
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

/* device/remove and device/rename through the core. */
static void test_remove_and_rename(void)
{
    struct t2m_state *st = mk("");
    struct t2m_update u = upd("d", "T1", T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, AT(T0));
    CU_ASSERT_EQUAL(t2m_state_instance(st, "i"), 0);
    CU_ASSERT_EQUAL(t2m_state_instance(st, "x"), -1);
    CU_ASSERT_EQUAL(t2m_state_rename(st, 0, "nope", 4, "N", AT(T0)), -1);
    clear();
    CU_ASSERT_EQUAL(t2m_state_rename(st, 0, "d", 1, "Van 12", AT(T0 + 1)), 0);
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
    CU_ASSERT_EQUAL(t2m_state_remove(st, 0, "d", 1, AT(T0 + 2)), 0);
    T2M_ASSERT_STR(events(EVENT), "device_removed");
    json_object *e = json_of(EVENT);
    T2M_ASSERT_STR(str(e, "reason"), "request");
    json_object_put(e);
    CU_ASSERT_EQUAL(last(POS, NULL)->kind, T2M_ACT_CLEAR);
    CU_ASSERT_EQUAL_FATAL(nview, 1);
    CU_ASSERT_EQUAL(views[0].kind, T2M_ACT_VIEW_REMOVED);
    T2M_ASSERT_STR(views[0].payload, "{\"instance_id\":\"i\",\"device_token\":\"d\"}");
    CU_ASSERT_EQUAL(t2m_state_count(st), 0);
    CU_ASSERT_EQUAL(t2m_state_remove(st, 0, "d", 1, AT(T0 + 3)), -1);
    CU_ASSERT(t2m_state_render_devices(st, -1, buf, sizeof(buf)) > 0);
    T2M_ASSERT_STR(buf, "[]");
    done(st);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"2.1 partial updates keep coordinates", test_partial_updates_keep_coordinates},
        {"2.1 a lone latitude is ignored", test_lone_latitude_ignored},
        {"2.1 timestamp, last_seen, name, driving", test_timestamp_vs_last_seen_and_name},
        {"2.1 stale dropped with no effect", test_stale_dropped_without_effect},
        {"2.1 max_devices", test_max_devices},
        {"8 a repeated condition is summarised", test_repeated_condition_summarised},
        {"2.1 future fix times untrusted", test_future_times_untrusted},
        {"2.3 remove and rename", test_remove_and_rename},
        {NULL, NULL},
    };
    int rc = t2m_test_run("state", cases);
    clear();
    t2m_config_free(cfg);
    return rc;
}
