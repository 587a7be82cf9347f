/* test_session.c - the session core's decisions, one rule per case (core/session.h). */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "session.h"
#include "state.h"
#include "stats.h"
#include "t2m_test.h"
#include "units.h"

#define K(x) T2M_SA_##x
#define END (-1)

static const char *kind_name(int k)
{
    static const char *const names[] = {
        "AVAILABILITY",    "SUB_HA_STATUS",  "SUB_REQUESTS", "FORGET_WITHDRAW", "READBACK_START",
        "STATUSES",        "HOLD_DISCOVERY", "DISCOVERY",    "STATE_CONNECTED", "QUEUE_GO",
        "QUEUE_OFFLINE",   "INFO",           "READBACK_END", "WITHDRAW",        "TAKEN_OVER",
        "RECONNECT",       "REPUBLISH",      "PAUSE",        "RESUME",          "STOP_UPSTREAMS",
        "FLUSH_RECONNECT", "STOP_WAIT",      "UNDELIVERED",  "DISCONNECT",      "DONE"};
    return k >= 0 && (size_t)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

/* The kinds of o, in order, are exactly want[] (ended by END); says the difference. */
static void expect_kinds(const struct t2m_sess_out *o, const int *want, int line)
{
    size_t n = 0;
    while (want[n] != END)
        n++;
    bool same = o->n == n;
    for (size_t i = 0; same && i < n; i++)
        same = (int)o->a[i].kind == want[i];
    if (!same) {
        fprintf(stderr, "\n  line %d: got", line);
        for (size_t i = 0; i < o->n; i++)
            fprintf(stderr, " %s", kind_name((int)o->a[i].kind));
        fprintf(stderr, "\n  want");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %s", kind_name(want[i]));
        fprintf(stderr, "\n");
    }
    CU_ASSERT_TRUE(same);
}
#define EXPECT(o, ...)                                                                             \
    do {                                                                                           \
        const int want_[] = {__VA_ARGS__, END};                                                    \
        expect_kinds((o), want_, __LINE__);                                                        \
    } while (0)
#define NOTHING(o) CU_ASSERT_EQUAL((o)->n, 0)

static const struct t2m_sess_view up = {.connected = true, .settled = true, .idle = true};
static const struct t2m_sess_view down = {.connected = false, .idle = true};

static struct t2m_session mk(bool ha, bool requests)
{
    struct t2m_session s;
    struct t2m_session_options o = {.homeassistant = ha, .requests = requests, .keepalive_s = 60};
    t2m_session_init(&s, &o);
    return s;
}

static struct t2m_sess_out fresh(void)
{
    struct t2m_sess_out o = {.n = 0};
    return o;
}

/* Connects and starts the read-back (ok), as bridge.c does: returns what followed the start. */
static struct t2m_sess_out connect_(struct t2m_session *s, int64_t now, bool ok)
{
    struct t2m_sess_out o = fresh();
    t2m_session_connected(s, now, &o);
    struct t2m_sess_out rest = fresh();
    t2m_session_readback_begun(s, ok, now, &rest);
    return rest;
}

static void test_first_connect(void)
{
    struct t2m_session s = mk(true, true);
    struct t2m_sess_out o = fresh();
    t2m_session_connected(&s, 1000, &o);
    /* online first (urgent), the subscriptions, what an old read-back found forgotten, the
     * read-back */
    EXPECT(&o, K(AVAILABILITY), K(SUB_HA_STATUS), K(SUB_REQUESTS), K(FORGET_WITHDRAW),
           K(READBACK_START));
    CU_ASSERT_TRUE(o.a[0].flag);
    CU_ASSERT_EQUAL(o.a[0].n, 0);
    /* the first read-back of the run holds discovery and the queue (SPEC 4, 8) */
    struct t2m_sess_out rest = fresh();
    t2m_session_readback_begun(&s, true, 1000, &rest);
    EXPECT(&rest, K(STATUSES), K(HOLD_DISCOVERY), K(STATE_CONNECTED), K(INFO));
    CU_ASSERT_TRUE(rest.a[1].flag);
    CU_ASSERT_TRUE(rest.a[2].flag);
    CU_ASSERT_TRUE(rest.a[3].flag); /* info forced on connect */
    CU_ASSERT_TRUE(s.reading_back);
    CU_ASSERT_TRUE(s.held);
}

static void test_memory_is_retained(void)
{
    struct t2m_session s = mk(true, false);
    CU_ASSERT_FALSE(t2m_session_is_memory(&s, true)); /* no read-back yet */
    connect_(&s, 0, true);
    CU_ASSERT_TRUE(t2m_session_is_memory(&s, true));
    CU_ASSERT_FALSE(t2m_session_is_memory(&s, false)); /* a live echo of our own publish */
    struct t2m_sess_out o = fresh();
    t2m_session_marker(&s, 10, &o);
    CU_ASSERT_FALSE(t2m_session_is_memory(&s, true)); /* over */
}

static void test_marker_releases(void)
{
    struct t2m_session s = mk(true, false);
    connect_(&s, 0, true);
    t2m_session_readback_progress(&s, 10);
    t2m_session_readback_progress(&s, 20);
    struct t2m_sess_out o = fresh();
    t2m_session_marker(&s, 30, &o);
    EXPECT(&o, K(READBACK_END), K(DISCOVERY), K(QUEUE_GO));
    CU_ASSERT_TRUE(o.a[0].flag); /* on its marker */
    CU_ASSERT_EQUAL(o.a[0].n, 2);
    CU_ASSERT_FALSE(s.reading_back);
    /* a second marker (a duplicate) changes nothing */
    o = fresh();
    t2m_session_marker(&s, 40, &o);
    NOTHING(&o);
}

static void test_withdraw_after_settle(void)
{
    struct t2m_session s = mk(true, false);
    connect_(&s, 0, true);
    struct t2m_sess_out o = fresh();
    t2m_session_marker(&s, 100, &o);
    t2m_session_info_published(&s, 100);
    /* not before the connection stayed up WITHDRAW_SETTLE_MS */
    o = fresh();
    t2m_session_tick(&s, 100 + T2M_SESS_WITHDRAW_SETTLE_MS - 1, &up, &o);
    for (size_t i = 0; i < o.n; i++)
        CU_ASSERT_NOT_EQUAL(o.a[i].kind, K(WITHDRAW));
    /* due, but the broker's take-over window is not over: wait */
    struct t2m_sess_view unsettled = up;
    unsettled.settled = false;
    o = fresh();
    t2m_session_tick(&s, 100 + T2M_SESS_WITHDRAW_SETTLE_MS, &unsettled, &o);
    for (size_t i = 0; i < o.n; i++)
        CU_ASSERT_NOT_EQUAL(o.a[i].kind, K(WITHDRAW));
    o = fresh();
    t2m_session_info_published(&s, 100 + T2M_SESS_WITHDRAW_SETTLE_MS + 500);
    t2m_session_tick(&s, 100 + T2M_SESS_WITHDRAW_SETTLE_MS + 500, &up, &o);
    EXPECT(&o, K(WITHDRAW));
    /* once */
    o = fresh();
    t2m_session_tick(&s, 100 + T2M_SESS_WITHDRAW_SETTLE_MS + 600, &up, &o);
    NOTHING(&o);
}

static void test_withdraw_taken_over(void)
{
    struct t2m_session s = mk(true, false);
    connect_(&s, 0, true);
    struct t2m_sess_out o = fresh();
    t2m_session_marker(&s, 0, &o);
    t2m_session_info_published(&s, T2M_SESS_WITHDRAW_SETTLE_MS);
    struct t2m_sess_view taken = up;
    taken.settled = false;
    taken.taken_over = true;
    o = fresh();
    t2m_session_tick(&s, T2M_SESS_WITHDRAW_SETTLE_MS, &taken, &o);
    EXPECT(&o, K(TAKEN_OVER), K(FORGET_WITHDRAW));
}

static void test_withdraw_lost_connection(void)
{
    struct t2m_session s = mk(true, false);
    connect_(&s, 0, true);
    struct t2m_sess_out o = fresh();
    t2m_session_marker(&s, 0, &o);
    o = fresh();
    t2m_session_disconnected(&s, &o);
    EXPECT(&o, K(FORGET_WITHDRAW), K(QUEUE_OFFLINE), K(STATE_CONNECTED));
    CU_ASSERT_FALSE(o.a[2].flag);
    o = fresh();
    t2m_session_tick(&s, 2 * T2M_SESS_WITHDRAW_SETTLE_MS, &down, &o);
    NOTHING(&o); /* nothing withdrawn, no info while down */
}

static void test_reconnect_not_held(void)
{
    struct t2m_session s = mk(true, true);
    connect_(&s, 0, true);
    struct t2m_sess_out o = fresh();
    t2m_session_marker(&s, 0, &o);
    o = fresh();
    t2m_session_disconnected(&s, &o);
    /* the run's first read-back is over: a reconnect sends discovery and the queue at once */
    struct t2m_sess_out rest = connect_(&s, 10000, true);
    EXPECT(&rest, K(STATUSES), K(HOLD_DISCOVERY), K(DISCOVERY), K(STATE_CONNECTED), K(QUEUE_GO),
           K(INFO));
    CU_ASSERT_FALSE(rest.a[1].flag);
    CU_ASSERT_TRUE(s.reading_back); /* the read-back itself runs on every connect */
}

static void test_readback_failed(void)
{
    struct t2m_session s = mk(true, false);
    struct t2m_sess_out rest = connect_(&s, 0, false);
    /* nothing to wait for */
    EXPECT(&rest, K(STATUSES), K(HOLD_DISCOVERY), K(DISCOVERY), K(STATE_CONNECTED), K(QUEUE_GO),
           K(INFO));
    CU_ASSERT_FALSE(s.reading_back);
}

static void test_no_homeassistant(void)
{
    struct t2m_session s = mk(false, false);
    struct t2m_sess_out o = fresh();
    t2m_session_connected(&s, 0, &o);
    EXPECT(&o, K(AVAILABILITY), K(FORGET_WITHDRAW), K(READBACK_START));
    struct t2m_sess_out rest = fresh();
    t2m_session_readback_begun(&s, true, 0, &rest);
    EXPECT(&rest, K(STATUSES), K(HOLD_DISCOVERY), K(STATE_CONNECTED), K(QUEUE_GO), K(INFO));
    o = fresh();
    t2m_session_ha_online(&s, &o);
    NOTHING(&o);
}

static void test_quiet_readback(void)
{
    struct t2m_session s = mk(true, false);
    connect_(&s, 0, true);
    t2m_session_info_published(&s, 0);
    t2m_session_readback_progress(&s, 4000);
    struct t2m_sess_out o = fresh();
    /* a message moves the quiet period */
    t2m_session_tick(&s, 4000 + T2M_SESS_READBACK_QUIET_MS, &up, &o);
    for (size_t i = 0; i < o.n; i++)
        CU_ASSERT_NOT_EQUAL(o.a[i].kind, K(READBACK_END));
    t2m_session_info_published(&s, 9001);
    o = fresh();
    t2m_session_tick(&s, 4001 + T2M_SESS_READBACK_QUIET_MS, &up, &o);
    /* ends without its marker: what it found is not enough to withdraw anything */
    EXPECT(&o, K(READBACK_END), K(DISCOVERY), K(QUEUE_GO), K(FORGET_WITHDRAW));
    CU_ASSERT_FALSE(o.a[0].flag);
    CU_ASSERT_EQUAL(o.a[0].n, 1);
    CU_ASSERT_EQUAL(s.withdraw_due_ms, 0);
}

static void test_stall(void)
{
    struct t2m_session s = mk(false, false);
    connect_(&s, 0, false);
    t2m_session_info_published(&s, 0);
    struct t2m_sess_view v = up;
    v.idle = false;
    v.stalled_ms = 60 * 1500; /* 1.5 x keepalive: not yet */
    struct t2m_sess_out o = fresh();
    t2m_session_tick(&s, 500, &v, &o);
    NOTHING(&o);
    CU_ASSERT_PTR_NULL(t2m_session_unhealthy(&s, &v));
    v.stalled_ms++;
    CU_ASSERT_PTR_NOT_NULL(t2m_session_unhealthy(&s, &v));
    o = fresh();
    t2m_session_tick(&s, 600, &v, &o);
    EXPECT(&o, K(RECONNECT));
    CU_ASSERT_EQUAL(o.a[0].n, 60 * 1500 + 1);
    /* once per connection */
    o = fresh();
    t2m_session_tick(&s, 700, &v, &o);
    NOTHING(&o);
    /* unhealthy until an acknowledgement, even with nothing in flight any more */
    v.stalled_ms = 0;
    CU_ASSERT_STRING_EQUAL(t2m_session_unhealthy(&s, &v),
                           "mqtt deliveries stalled (no acknowledgement)");
    CU_ASSERT_TRUE(t2m_session_delivered(&s));
    CU_ASSERT_FALSE(t2m_session_delivered(&s));
    CU_ASSERT_PTR_NULL(t2m_session_unhealthy(&s, &v));
    /* a new connection may be dropped again */
    o = fresh();
    t2m_session_disconnected(&s, &o);
    connect_(&s, 800, false);
    v.stalled_ms = 100000;
    o = fresh();
    t2m_session_info_published(&s, 900);
    t2m_session_tick(&s, 900, &v, &o);
    EXPECT(&o, K(RECONNECT));
}

static void test_info_rate(void)
{
    struct t2m_session s = mk(false, false);
    connect_(&s, 0, false);
    struct t2m_sess_out o = fresh();
    t2m_session_info_published(&s, 1000);
    t2m_session_tick(&s, 1000 + T2M_SESS_INFO_MIN_MS - 1, &up, &o);
    NOTHING(&o);
    t2m_session_tick(&s, 1000 + T2M_SESS_INFO_MIN_MS, &up, &o);
    EXPECT(&o, K(INFO));
    CU_ASSERT_FALSE(o.a[0].flag); /* only when it changed */
    /* unchanged, not published: asked again next tick */
    o = fresh();
    t2m_session_tick(&s, 1000 + T2M_SESS_INFO_MIN_MS + 500, &up, &o);
    EXPECT(&o, K(INFO));
    o = fresh();
    t2m_session_tick(&s, 99999, &down, &o);
    NOTHING(&o);
}

static void test_congestion(void)
{
    struct t2m_session s = mk(false, false);
    struct t2m_sess_out o = fresh();
    t2m_session_congested(&s, false, &o);
    NOTHING(&o);
    t2m_session_congested(&s, true, &o);
    EXPECT(&o, K(PAUSE));
    o = fresh();
    t2m_session_congested(&s, true, &o);
    NOTHING(&o);
    t2m_session_resume(&s, &o);
    EXPECT(&o, K(RESUME));
    o = fresh();
    t2m_session_resume(&s, &o);
    NOTHING(&o);
    /* paused when the connection drops: resume, the offline queue coalesces */
    t2m_session_congested(&s, true, &o);
    o = fresh();
    t2m_session_disconnected(&s, &o);
    EXPECT(&o, K(QUEUE_OFFLINE), K(STATE_CONNECTED), K(RESUME));
}

static void test_clock_step_noticed(void)
{
    struct t2m_session s = mk(false, false);
    CU_ASSERT_EQUAL(t2m_session_clocks(&s, (struct t2m_now){1000000, 50}), 0);
    /* two readings jitter, a slew adds a little: 0.5 s off in 100 s is no step */
    CU_ASSERT_EQUAL(t2m_session_clocks(&s, (struct t2m_now){1100500, 100050}), 0);
    CU_ASSERT_EQUAL(t2m_session_clocks(&s, (struct t2m_now){1100500 + 3600000 + 1000, 101050}),
                    3600000);
    /* and back: -1 h */
    CU_ASSERT_EQUAL(t2m_session_clocks(&s, (struct t2m_now){1102500, 102050}), -3600000);
    CU_ASSERT_EQUAL(t2m_session_clocks(&s, (struct t2m_now){1103500, 103050}), 0);
}

static void test_health(void)
{
    struct t2m_session s = mk(false, false);
    T2M_ASSERT_STR(t2m_session_unhealthy(&s, &down), "mqtt disconnected");
    CU_ASSERT_PTR_NULL(t2m_session_unhealthy(&s, &up));
    struct t2m_sess_view v = up;
    v.auth_failed = true;
    T2M_ASSERT_STR(t2m_session_unhealthy(&s, &v), "instance auth_failed");
}

static void test_ha_online(void)
{
    struct t2m_session s = mk(true, false);
    connect_(&s, 0, true);
    struct t2m_sess_out o = fresh();
    t2m_session_ha_online(&s, &o);
    NOTHING(&o); /* held: the read-back's end sends discovery anyway */
    t2m_session_marker(&s, 0, &o);
    o = fresh();
    t2m_session_ha_online(&s, &o);
    EXPECT(&o, K(DISCOVERY), K(REPUBLISH));
}

static void test_stop_connected(void)
{
    struct t2m_session s = mk(false, false);
    connect_(&s, 0, false);
    struct t2m_sess_view busy = up;
    busy.idle = false;
    struct t2m_sess_out o = fresh();
    t2m_session_stop(&s, 1000, &busy, &o);
    EXPECT(&o, K(STOP_UPSTREAMS), K(AVAILABILITY), K(STOP_WAIT));
    CU_ASSERT_FALSE(o.a[1].flag);
    CU_ASSERT_EQUAL(o.a[1].n, 1); /* offline behind the queue */
    /* the queue drains within the flush time */
    o = fresh();
    t2m_session_stop_tick(&s, 1020, &busy, &o);
    EXPECT(&o, K(STOP_WAIT));
    o = fresh();
    t2m_session_stop_tick(&s, 1040, &up, &o);
    EXPECT(&o, K(DISCONNECT), K(STOP_WAIT));
    /* the DISCONNECT gets its moment while the connection is still up */
    o = fresh();
    t2m_session_stop_tick(&s, 1040 + T2M_SESS_DISCONNECT_MS - 1, &up, &o);
    EXPECT(&o, K(STOP_WAIT));
    o = fresh();
    t2m_session_stop_tick(&s, 1060, &down, &o);
    EXPECT(&o, K(DONE));
    CU_ASSERT_TRUE(s.done);
    o = fresh();
    t2m_session_stop_tick(&s, 1080, &down, &o);
    NOTHING(&o);
    t2m_session_stop(&s, 1100, &down, &o);
    NOTHING(&o);
}

static void test_stop_unreachable(void)
{
    struct t2m_session s = mk(false, false);
    struct t2m_sess_view busy = down;
    busy.idle = false;
    struct t2m_sess_out o = fresh();
    t2m_session_stop(&s, 0, &busy, &o);
    /* one more attempt to deliver */
    EXPECT(&o, K(STOP_UPSTREAMS), K(FLUSH_RECONNECT), K(STOP_WAIT));
    o = fresh();
    t2m_session_stop_tick(&s, T2M_SESS_FLUSH_MS - 1, &busy, &o);
    EXPECT(&o, K(STOP_WAIT));
    o = fresh();
    t2m_session_stop_tick(&s, T2M_SESS_FLUSH_MS, &busy, &o);
    EXPECT(&o, K(UNDELIVERED), K(DISCONNECT), K(STOP_WAIT));
    CU_ASSERT_FALSE(o.a[0].flag);
    o = fresh();
    t2m_session_stop_tick(&s, T2M_SESS_FLUSH_MS + 20, &busy, &o);
    EXPECT(&o, K(DONE));
    /* the broker came back during the flush, then left again: no stall kick while stopping */
    struct t2m_session s2 = mk(false, false);
    o = fresh();
    t2m_session_stop(&s2, 0, &busy, &o);
    o = fresh();
    t2m_session_connected(&s2, 10, &o);
    EXPECT(&o, K(AVAILABILITY), K(STATUSES), K(HOLD_DISCOVERY), K(STATE_CONNECTED), K(QUEUE_GO));
    CU_ASSERT_FALSE(o.a[0].flag); /* offline, and no read-back, no info */
    struct t2m_sess_view stalled = up;
    stalled.stalled_ms = 1000000;
    o = fresh();
    t2m_session_tick(&s2, 20, &stalled, &o);
    NOTHING(&o);
}

static void test_stop_releases_held(void)
{
    struct t2m_session s = mk(true, false);
    connect_(&s, 0, true);
    struct t2m_sess_out o = fresh();
    t2m_session_stop(&s, 100, &up, &o);
    EXPECT(&o, K(STOP_UPSTREAMS), K(DISCOVERY), K(QUEUE_GO), K(AVAILABILITY), K(STOP_WAIT));
}

/* ---- requests ---- */

static struct t2m_state *g_st;
static struct t2m_config *g_cfg;
static struct t2m_stats g_stats;

static int none_read(const char *path, size_t max, char **text, size_t *len, char *err,
                     size_t errlen)
{
    (void)max;
    (void)text;
    (void)len;
    snprintf(err, errlen, "%s: absent", path);
    return 1;
}
static char *none_secret(const char *path, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: absent", path);
    return NULL;
}
static const char *env(const char *name)
{
    if (strcmp(name, "T2M_INSTANCE_ID") == 0) return "fleet";
    if (strcmp(name, "T2M_ACCESS_TOKEN") == 0) return "tok";
    return NULL;
}
static int none_access(const char *path, bool write)
{
    (void)path;
    (void)write;
    return 0;
}
static struct t2m_tz *utc(const char *name)
{
    return t2m_tz_parse(name, NULL, 0);
}
static void drop(void *user, const struct t2m_action *a)
{
    (void)user;
    (void)a;
}

static int req(const char *cmd, const char *payload, const struct t2m_sess_view *v,
               struct t2m_reply *reply)
{
    struct t2m_session s = mk(false, true);
    struct t2m_request r;
    return t2m_session_request(&s, g_st, cmd, payload, payload ? strlen(payload) : 4096, v,
                               (struct t2m_now){1700000000000, 5000}, &r, reply);
}

static void test_requests(void)
{
    const struct t2m_config_io io = {none_read, none_secret, env, none_access, utc};
    char err[256];
    g_cfg = t2m_config_parse(&io, NULL, false, err, sizeof(err));
    if (!g_cfg) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g_cfg);
    g_st = t2m_state_new(g_cfg, &g_stats, "test", drop, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g_st);
    struct t2m_reply rp;

    CU_ASSERT_EQUAL(req("health_check", "{\"transaction\":1}", &up, &rp), 0);
    T2M_ASSERT_STR(rp.data, "{\"healthy\":true}");
    T2M_ASSERT_STR(rp.error, "");
    free(rp.data);
    CU_ASSERT_EQUAL(req("health_check", "{}", &down, &rp), 0);
    T2M_ASSERT_STR(rp.data, "{\"healthy\":false,\"reason\":\"mqtt disconnected\"}");
    free(rp.data);

    /* a malformed request is refused (and logged by the caller) */
    CU_ASSERT_EQUAL(req("health_check", "{not json", &up, &rp), -1);
    CU_ASSERT_PTR_NULL(rp.data);
    CU_ASSERT_NOT_EQUAL(rp.error[0], '\0');
    /* too large to read: an error response all the same */
    CU_ASSERT_EQUAL(req("health_check", NULL, &up, &rp), -1);
    CU_ASSERT_NOT_EQUAL(rp.error[0], '\0');

    CU_ASSERT_EQUAL(req("device/remove", "{\"instance\":\"nope\",\"device\":\"d\"}", &up, &rp), 0);
    T2M_ASSERT_STR(rp.error, "unknown instance");
    CU_ASSERT_EQUAL(req("device/remove", "{\"instance\":\"fleet\",\"device\":\"d\"}", &up, &rp), 0);
    T2M_ASSERT_STR(rp.error, "unknown device");
    CU_ASSERT_EQUAL(
        req("device/rename", "{\"instance\":\"fleet\",\"device\":\"d\",\"name\":\"x\"}", &up, &rp),
        0);
    T2M_ASSERT_STR(rp.error, "unknown device");

    CU_ASSERT_EQUAL(req("options", "{\"log_level\":\"loud\"}", &up, &rp), 0);
    T2M_ASSERT_STR(rp.error, "log_level must be debug, info, warn or error");
    CU_ASSERT_EQUAL(req("options", "{\"log_level\":\"debug\"}", &up, &rp), 0);
    T2M_ASSERT_STR(rp.data, "{\"log_level\":\"debug\"}");
    CU_ASSERT_TRUE(t2m_log_enabled(T2M_LOG_DEBUG));
    free(rp.data);
    CU_ASSERT_EQUAL(req("options", "{\"log_level\":\"warn\"}", &up, &rp), 0);
    CU_ASSERT_FALSE(t2m_log_enabled(T2M_LOG_INFO));
    free(rp.data);

    CU_ASSERT_EQUAL(req("devices", "{}", &up, &rp), 0);
    T2M_ASSERT_STR(rp.data, "[]");
    free(rp.data);

    t2m_state_free(g_st);
    t2m_config_free(g_cfg);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"first connect: online, subscriptions, read-back, held", test_first_connect},
        {"the marker ends the read-back and releases", test_marker_releases},
        {"only what the broker kept is memory", test_memory_is_retained},
        {"withdrawal after the connection settled", test_withdraw_after_settle},
        {"no withdrawal when taken over", test_withdraw_taken_over},
        {"no withdrawal when the connection drops", test_withdraw_lost_connection},
        {"a reconnect is not held", test_reconnect_not_held},
        {"a failed read-back holds nothing", test_readback_failed},
        {"without Home Assistant", test_no_homeassistant},
        {"a quiet read-back ends", test_quiet_readback},
        {"stalled deliveries", test_stall},
        {"B/bridge/info at most once a second", test_info_rate},
        {"congestion pauses and resumes", test_congestion},
        {"health reasons", test_health},
        {"a wall clock step is noticed", test_clock_step_noticed},
        {"Home Assistant online", test_ha_online},
        {"shutdown, connected", test_stop_connected},
        {"shutdown, broker unreachable", test_stop_unreachable},
        {"shutdown during the first read-back", test_stop_releases_held},
        {"requests", test_requests},
        {NULL, NULL},
    };
    return t2m_test_run("session", cases);
}
