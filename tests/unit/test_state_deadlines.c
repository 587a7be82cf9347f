/* test_state_deadlines.c - the device state core: the throttle windows, expiry and a stepped wall
 * clock (monotonic deadlines). Inputs in, actions out, time passed in by hand. */
#include "state_fixture.h"

/* An update for a device removed inside its throttle window is counted as dropped (reason
 * "removed"), and the device comes back once the window has closed. */
static void test_removed_in_window_counted(void)
{
    struct t2m_state *st = mk("mqtt = { min_interval = 1.0; };");
    struct t2m_update u = upd("d", NULL, T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, AT(T0));
    CU_ASSERT_EQUAL(t2m_state_remove(st, 0, "d", 1, AT(T0 + 10)), 0);
    u = upd("d", NULL, T0 + 20);
    at(&u, 3, 4);
    t2m_state_update(st, 0, &u, AT(T0 + 20));
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_REMOVED], 1);
    t2m_state_tick(st, AT(T0 + 1000)); /* the window closes: the device is gone for good */
    u = upd("d", NULL, T0 + 1100);
    at(&u, 5, 6);
    t2m_state_update(st, 0, &u, AT(T0 + 1100));
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
        t2m_state_update(st, 0, &u, AT(T0 + i * 100));
    }
    int n;
    json_object *p = json_of(POS);
    last(POS, &n);
    CU_ASSERT_EQUAL(n, 1); /* the first, then the window */
    CU_ASSERT_EQUAL(num(p, "latitude"), 1);
    json_object_put(p);
    CU_ASSERT_EQUAL(t2m_state_next_deadline(st), T0 + 1000);
    t2m_state_tick(st, AT(T0 + 999));
    last(POS, &n);
    CU_ASSERT_EQUAL(n, 1);
    t2m_state_tick(st, AT(T0 + 1000)); /* the window's latest state goes out at its end */
    p = json_of(POS);
    last(POS, &n);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(num(p, "latitude"), 5);
    json_object_put(p);
    t2m_state_tick(st, AT(T0 + 2000)); /* nothing new: the next window closes silently */
    last(POS, &n);
    CU_ASSERT_EQUAL(n, 2);
    done(st);
}

/* SPEC 2.1: a step of the wall clock neither removes devices nor holds positions back: every
 * deadline of the core runs on the monotonic clock. */
static void test_clock_step(void)
{
    const int64_t H = 3600000;
    struct t2m_state *st = mk("state = { expire_after = 600; };");
    struct t2m_update u = upd("d", "T1", T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, AT(T0));
    t2m_state_tick(st, WALL_MONO(T0 + H + 1000, T0 + 1000)); /* +1 h, one second later */
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    t2m_state_tick(st, WALL_MONO(T0 + H + 599000, T0 + 599000));
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    t2m_state_tick(st, WALL_MONO(T0 + H + 600000, T0 + 600000)); /* 600 s of silence */
    CU_ASSERT_EQUAL(t2m_state_count(st), 0);
    done(st);

    /* -1 h with min_interval: the window still ends a second after it opened */
    st = mk("mqtt = { min_interval = 1.0; };");
    for (int i = 0; i < 2; i++) {
        u = upd("d", NULL, T0 + i * 100);
        at(&u, 1 + i, 2);
        t2m_state_update(st, 0, &u, AT(T0 + i * 100));
    }
    clear();
    t2m_state_tick(st, WALL_MONO(T0 - H + 1000, T0 + 1000));
    json_object *p = json_of(POS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p); /* the held state went out */
    CU_ASSERT_EQUAL(num(p, "latitude"), 2);
    json_object_put(p);
    CU_ASSERT(t2m_state_next_deadline(st) <= T0 + 2000);
    /* last_seen is the wall clock as it reads now: 5 s ago after the step */
    clear();
    t2m_state_republish(st, WALL_MONO(T0 - H + 5100, T0 + 5100));
    p = json_of(POS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(num(p, "last_seen"), (double)(T0 - H + 100));
    json_object_put(p);
    done(st);
}

/* SPEC 2.1: a last_seen read back from the future (forged, or a wrong clock before the
 * restart) counts as now: it cannot hold the device's expiry off. */
static void test_future_last_seen(void)
{
    struct t2m_state *st = mk("state = { expire_after = 600; };");
    CU_ASSERT(t2m_state_retained(
        st, POS,
        "{\"device_token\":\"d\",\"latitude\":0,\"longitude\":1,\"timestamp\":1700000000000,"
        "\"last_seen\":4102444800000}",
        200, AT(T0)));
    t2m_state_readback_done(st, AT(T0));
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    t2m_state_tick(st, AT(T0 + 599000));
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    t2m_state_tick(st, AT(T0 + 600000));
    CU_ASSERT_EQUAL(t2m_state_count(st), 0);
    done(st);
    /* one last seen 100 s before the restart has 500 s to go */
    st = mk("state = { expire_after = 600; };");
    CU_ASSERT(t2m_state_retained(st, POS,
                                 "{\"device_token\":\"d\",\"latitude\":0,\"longitude\":1,"
                                 "\"timestamp\":1700000000000,\"last_seen\":1700000000000}",
                                 200, WALL_MONO(T0 + 100000, 42)));
    t2m_state_tick(st, WALL_MONO(T0 + 599000, 42 + 499000));
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    t2m_state_tick(st, WALL_MONO(T0 + 600000, 42 + 500000));
    CU_ASSERT_EQUAL(t2m_state_count(st), 0);
    done(st);
}

static void test_expiry(void)
{
    struct t2m_state *st = mk("state = { expire_after = 30; };\nmqtt = { attribute_topics = "
                              "true; };");
    struct t2m_update u = upd("d", "T1", T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, AT(T0));
    clear();
    t2m_state_tick(st, AT(T0 + 29000));
    CU_ASSERT_EQUAL(t2m_state_count(st), 1);
    t2m_state_tick(st, AT(T0 + 30000));
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

/* A re-send (reconnect, Home Assistant back) renders the same last_seen: the two clocks read a
 * moment apart jitter by a millisecond, which must not change a retained payload. */
static void test_resend_same_last_seen(void)
{
    struct t2m_state *st = mk("");
    struct t2m_update u = upd("d", NULL, T0);
    at(&u, 1, 2);
    t2m_state_update(st, 0, &u, WALL_MONO(T0, 5000));
    struct rec *r = last(POS, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    char *first = strdup(r->payload);
    clear();
    t2m_state_republish(st, WALL_MONO(T0 + 10001, 15000));
    r = last(POS, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    T2M_ASSERT_STR(r->payload, first);
    json_object *p = json_of(POS);
    CU_ASSERT_EQUAL(num(p, "last_seen"), (double)T0);
    json_object_put(p);
    free(first);
    /* a fix without a Timestamp is as of its arrival: the very time last_seen says, though the
     * clocks read a millisecond apart again */
    clear();
    u = upd("d", NULL, 0);
    at(&u, 3, 4);
    t2m_state_update(st, 0, &u, WALL_MONO(T0 + 20001, 25000));
    p = json_of(POS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(num(p, "timestamp"), (double)(T0 + 20000));
    CU_ASSERT_EQUAL(num(p, "last_seen"), (double)(T0 + 20000));
    json_object_put(p);
    done(st);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"2.1 a re-send renders the same last_seen", test_resend_same_last_seen},
        {"an update for a device removed in its window is counted", test_removed_in_window_counted},
        {"2.1 throttle trailing edge", test_throttle_trailing_edge},
        {"2.1 a wall clock step moves the deadlines", test_clock_step},
        {"2.1 a last_seen from the future expires", test_future_last_seen},
        {"2.2 expire_after removes", test_expiry},
        {NULL, NULL},
    };
    int rc = t2m_test_run("state deadlines", cases);
    clear();
    t2m_config_free(cfg);
    return rc;
}
