/* test_publisher.c - the queue policy against a recording sink standing in for mqtt.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt.h"
#include "publisher.h"
#include "stats.h"
#include "t2m_test.h"

/* ---- the sink: t2m_mqtt_publish / t2m_mqtt_connected, recording what was handed over ---- */

struct rec {
    char topic[64];
    char payload[32];
    int id;
    int qos;
    bool retain;
    int epoch; /* connection the message was sent on: lost ones are never delivered */
    bool delivered;
};

static struct {
    bool connected;
    bool eagain;
    int fail_code;           /* non-zero: returned instead of OK */
    bool sync_deliver;       /* call on_delivered inside publish */
    bool sync_disconnect;    /* call on_disconnected inside publish, then return OK */
    struct t2m_publisher *p; /* for the synchronous callbacks */
    int next_id;
    int epoch;
    struct rec *recs;
    size_t n, cap;
} S;

static struct t2m_mqtt *const FAKE = (struct t2m_mqtt *)&S;

bool t2m_mqtt_connected(const struct t2m_mqtt *m)
{
    CU_ASSERT_PTR_EQUAL(m, FAKE);
    return S.connected;
}

int t2m_mqtt_publish(struct t2m_mqtt *m, const char *topic, const void *payload, size_t len,
                     int qos, bool retain, int *msg_id)
{
    CU_ASSERT_PTR_EQUAL(m, FAKE);
    if (!S.connected) return T2M_MQTT_ENOTCONN;
    if (S.eagain) return T2M_MQTT_EAGAIN;
    if (S.fail_code) return S.fail_code;
    if (S.n == S.cap) {
        S.cap = S.cap ? S.cap * 2 : 256;
        S.recs = realloc(S.recs, S.cap * sizeof(*S.recs));
    }
    struct rec *r = &S.recs[S.n++];
    memset(r, 0, sizeof(*r));
    snprintf(r->topic, sizeof(r->topic), "%s", topic);
    memcpy(r->payload, payload, len < sizeof(r->payload) - 1 ? len : sizeof(r->payload) - 1);
    r->id = ++S.next_id;
    r->qos = qos;
    r->retain = retain;
    r->epoch = S.epoch;
    *msg_id = r->id;
    if (S.sync_disconnect) {
        S.connected = false;
        S.epoch++;
        t2m_publisher_on_disconnected(S.p);
    } else if (S.sync_deliver) {
        r->delivered = true;
        t2m_publisher_on_delivered(S.p, r->id);
    }
    return T2M_MQTT_OK;
}

static struct t2m_stats stats;
static int resumes;

static void on_resume(void *user)
{
    CU_ASSERT_PTR_EQUAL(user, &resumes);
    resumes++;
}

static struct t2m_publisher *mk(size_t offline_queue, size_t window, size_t high, size_t low)
{
    free(S.recs);
    memset(&S, 0, sizeof(S));
    memset(&stats, 0, sizeof(stats));
    resumes = 0;
    struct t2m_publisher_options o = {
        .offline_queue = offline_queue, .window = window, .high_water = high, .low_water = low};
    struct t2m_publisher *p = t2m_publisher_new(FAKE, &o, &stats, on_resume, &resumes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    S.p = p;
    return p;
}

static void done(struct t2m_publisher *p)
{
    t2m_publisher_free(p);
    free(S.recs);
    memset(&S, 0, sizeof(S));
}

static void up(struct t2m_publisher *p)
{
    S.connected = true;
    t2m_publisher_on_connected(p);
}

static void down(struct t2m_publisher *p)
{
    S.connected = false;
    S.epoch++;
    t2m_publisher_on_disconnected(p);
}

/* Delivers everything outstanding on the current connection, including what each delivery
 * causes to be sent, until nothing is left in flight. Bounded: fails rather than hangs. */
static void deliver_all(struct t2m_publisher *p)
{
    for (size_t i = 0; i < S.n && i < 10000000; i++) {
        struct rec *r = &S.recs[i];
        if (!r->delivered && r->epoch == S.epoch) {
            r->delivered = true;
            t2m_publisher_on_delivered(p, r->id);
        }
    }
}

/* Delivers the oldest outstanding message; false if none. */
static bool deliver_one(struct t2m_publisher *p)
{
    for (size_t i = 0; i < S.n; i++) {
        struct rec *r = &S.recs[i];
        if (!r->delivered && r->epoch == S.epoch) {
            r->delivered = true;
            t2m_publisher_on_delivered(p, r->id);
            return true;
        }
    }
    return false;
}

static void pub(struct t2m_publisher *p, const char *topic, const char *payload, bool retain)
{
    CU_ASSERT_EQUAL(t2m_publisher_publish(p, topic, payload, strlen(payload), 1, retain), 0);
}

/* Publishes topic "<tpre><a><tsuf>" with payload "<vpre><b>". */
static void pubf(struct t2m_publisher *p, bool retain, const char *tpre, int a, const char *tsuf,
                 const char *vpre, int b)
{
    char t[64], v[32];
    snprintf(t, sizeof(t), "%s%d%s", tpre, a, tsuf);
    snprintf(v, sizeof(v), "%s%d", vpre, b);
    pub(p, t, v, retain);
}

static bool rec_is(size_t i, const char *topic, const char *payload)
{
    return i < S.n && strcmp(S.recs[i].topic, topic) == 0 &&
           strcmp(S.recs[i].payload, payload) == 0;
}

/* The payload the broker retains for `topic`: the last one sent. */
static const char *retained(const char *topic)
{
    for (size_t i = S.n; i-- > 0;)
        if (S.recs[i].retain && strcmp(S.recs[i].topic, topic) == 0) return S.recs[i].payload;
    return "";
}

/* ---- tests ---- */

static void test_passthrough(void)
{
    struct t2m_publisher *p = mk(100, 10, 0, 0);
    up(p);
    pub(p, "telematics/i/d/position", "{\"a\":1}", true);
    CU_ASSERT_EQUAL(S.n, 1);
    CU_ASSERT(rec_is(0, "telematics/i/d/position", "{\"a\":1}"));
    CU_ASSERT_EQUAL(S.recs[0].qos, 1);
    CU_ASSERT(S.recs[0].retain);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 0);
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 1);
    CU_ASSERT_FALSE(t2m_publisher_idle(p));
    CU_ASSERT_EQUAL(stats.messages_published, 0);
    deliver_all(p);
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 0);
    CU_ASSERT(t2m_publisher_idle(p));
    CU_ASSERT_EQUAL(stats.messages_published, 1);
    /* a zero-length payload (a retained topic cleared) goes through too */
    CU_ASSERT_EQUAL(t2m_publisher_publish(p, "t/empty", NULL, 0, 0, true), 0);
    CU_ASSERT(rec_is(1, "t/empty", ""));
    CU_ASSERT_EQUAL(S.recs[1].qos, 0);
    done(p);
}

static void test_window(void)
{
    struct t2m_publisher *p = mk(100, 3, 0, 0);
    up(p);
    for (int i = 0; i < 10; i++)
        pubf(p, true, "t/", i, "", "v", i);
    CU_ASSERT_EQUAL(S.n, 3);
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 3);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 7);
    CU_ASSERT(deliver_one(p));
    CU_ASSERT_EQUAL(S.n, 4);
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 3);
    deliver_all(p);
    CU_ASSERT_EQUAL(S.n, 10);
    char t[16], v[16];
    for (int i = 0; i < 10; i++) {
        snprintf(t, sizeof(t), "t/%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        CU_ASSERT(rec_is((size_t)i, t, v));
    }
    CU_ASSERT(t2m_publisher_idle(p));
    CU_ASSERT_EQUAL(stats.messages_published, 10);
    done(p);
}

/* SPEC 8: 100 devices x 50 updates while the broker is away, offline_queue = 1000. */
static void test_offline_history_and_latest(void)
{
    struct t2m_publisher *p = mk(1000, 64, 0, 0);
    for (int r = 0; r < 50; r++)
        for (int d = 0; d < 100; d++)
            pubf(p, true, "telematics/i/d", d, "/position", "r", r);
    CU_ASSERT_EQUAL(S.n, 0);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 1100);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_OFFLINE_QUEUE], 5000 - 1100);
    CU_ASSERT_FALSE(t2m_publisher_congested(p));
    up(p);
    CU_ASSERT_EQUAL(S.n, 64);
    deliver_all(p);
    CU_ASSERT_EQUAL_FATAL(S.n, 1100);
    /* history: the newest 1000 older updates (rounds 39..48) in order */
    size_t i = 0;
    char t[64], v[16];
    int bad = 0;
    for (int r = 39; r < 49; r++)
        for (int d = 0; d < 100; d++, i++) {
            snprintf(t, sizeof(t), "telematics/i/d%d/position", d);
            snprintf(v, sizeof(v), "r%d", r);
            bad += !rec_is(i, t, v);
        }
    /* then the latest of every device */
    for (int d = 0; d < 100; d++, i++) {
        snprintf(t, sizeof(t), "telematics/i/d%d/position", d);
        bad += !rec_is(i, t, "r49");
        bad += strcmp(retained(t), "r49") != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(t2m_publisher_idle(p));
    CU_ASSERT_EQUAL(stats.messages_published, 1100);
    done(p);
}

static void test_offline_queue_zero(void)
{
    struct t2m_publisher *p = mk(0, 16, 0, 0);
    for (int r = 0; r < 50; r++)
        for (int d = 0; d < 100; d++)
            pubf(p, true, "t/d", d, "", "r", r);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 100);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_OFFLINE_QUEUE], 4900);
    up(p);
    deliver_all(p);
    CU_ASSERT_EQUAL_FATAL(S.n, 100);
    char t[16];
    int bad = 0;
    for (int d = 0; d < 100; d++) {
        snprintf(t, sizeof(t), "t/d%d", d);
        bad += !rec_is((size_t)d, t, "r49");
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

/* Per topic, messages stay in order across history and latest, whatever the interleaving. */
static void test_per_topic_order(void)
{
    struct t2m_publisher *p = mk(100, 4, 0, 0);
    pub(p, "a", "a1", true);
    pub(p, "b", "b1", true);
    pub(p, "b", "b2", true);
    pub(p, "a", "a2", true);
    pub(p, "a", "a3", true);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 5);
    up(p);
    deliver_all(p);
    CU_ASSERT_EQUAL_FATAL(S.n, 5);
    int ia = 0, ib = 0;
    const char *ea[] = {"a1", "a2", "a3"}, *eb[] = {"b1", "b2"};
    for (size_t i = 0; i < S.n; i++) {
        if (strcmp(S.recs[i].topic, "a") == 0) {
            CU_ASSERT(ia < 3 && strcmp(S.recs[i].payload, ea[ia++]) == 0);
        } else {
            CU_ASSERT(ib < 2 && strcmp(S.recs[i].payload, eb[ib++]) == 0);
        }
    }
    CU_ASSERT_EQUAL(ia, 3);
    CU_ASSERT_EQUAL(ib, 2);
    T2M_ASSERT_STR(retained("a"), "a3");
    T2M_ASSERT_STR(retained("b"), "b2");
    done(p);
}

/* Re-publishing the queued state unchanged (the bridge does after a reconnect) adds nothing. */
static void test_identical_coalesced(void)
{
    struct t2m_publisher *p = mk(100, 4, 0, 0);
    pub(p, "a", "a1", true);
    pub(p, "a", "a1", true);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 1);
    CU_ASSERT_EQUAL(t2m_publisher_publish(p, "a", "a1", 2, 0, true), 0); /* other QoS: kept */
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 2);
    pub(p, "n", "x", false); /* non-retained are never coalesced */
    pub(p, "n", "x", false);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 4);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_OFFLINE_QUEUE], 0);
    up(p);
    deliver_all(p);
    CU_ASSERT_EQUAL(S.n, 4);
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

static void test_inflight_resent(void)
{
    struct t2m_publisher *p = mk(100, 10, 0, 0);
    up(p);
    pub(p, "a", "a1", true);
    pub(p, "b", "b1", true);
    pub(p, "n", "n1", false);
    CU_ASSERT_EQUAL(S.n, 3);
    CU_ASSERT(deliver_one(p)); /* a1 confirmed: never re-sent */
    pub(p, "c", "c1", true);
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 3);
    down(p);
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 0);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 3);
    pub(p, "c", "c2", true); /* supersedes the lost c1 */
    up(p);
    deliver_all(p);
    CU_ASSERT_EQUAL_FATAL(S.n, 7);
    CU_ASSERT(rec_is(4, "b", "b1"));
    CU_ASSERT(rec_is(5, "n", "n1"));
    CU_ASSERT(rec_is(6, "c", "c2"));
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_OFFLINE_QUEUE], 1); /* c1 */
    CU_ASSERT(t2m_publisher_idle(p));
    T2M_ASSERT_STR(retained("a"), "a1");
    T2M_ASSERT_STR(retained("c"), "c2");
    done(p);
}

/* Lost twice: what was re-sent and lost again goes out once more, ahead of newer messages. */
static void test_resend_lost_again(void)
{
    struct t2m_publisher *p = mk(100, 2, 0, 0);
    up(p);
    for (int i = 0; i < 4; i++)
        pubf(p, true, "t/", i, "", "v", i);
    CU_ASSERT_EQUAL(S.n, 2);
    down(p);
    up(p); /* re-sends t/0, t/1 (window 2) */
    CU_ASSERT_EQUAL(S.n, 4);
    CU_ASSERT(rec_is(2, "t/0", "v0"));
    CU_ASSERT(rec_is(3, "t/1", "v1"));
    down(p);
    pub(p, "t/9", "v9", true);
    up(p);
    deliver_all(p);
    CU_ASSERT_EQUAL_FATAL(S.n, 9);
    CU_ASSERT(rec_is(4, "t/0", "v0"));
    CU_ASSERT(rec_is(5, "t/1", "v1"));
    CU_ASSERT(rec_is(6, "t/2", "v2"));
    CU_ASSERT(rec_is(7, "t/3", "v3"));
    CU_ASSERT(rec_is(8, "t/9", "v9"));
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

static void test_eagain_retried(void)
{
    struct t2m_publisher *p = mk(100, 10, 0, 0);
    up(p);
    pub(p, "x", "x1", true);
    S.eagain = true;
    pub(p, "a", "a1", true);
    pub(p, "b", "b1", true);
    CU_ASSERT_EQUAL(S.n, 1);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 2);
    S.eagain = false;
    CU_ASSERT(deliver_one(p)); /* the delivery retries */
    CU_ASSERT_EQUAL(S.n, 3);
    CU_ASSERT(rec_is(1, "a", "a1"));
    CU_ASSERT(rec_is(2, "b", "b1"));
    deliver_all(p);
    /* nothing in flight: the next publish retries, in order */
    S.eagain = true;
    pub(p, "c", "c1", true);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 1);
    S.eagain = false;
    pub(p, "d", "d1", true);
    CU_ASSERT_EQUAL(S.n, 5);
    CU_ASSERT(rec_is(3, "c", "c1"));
    CU_ASSERT(rec_is(4, "d", "d1"));
    deliver_all(p);
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

static void test_enotconn_kept(void)
{
    struct t2m_publisher *p = mk(100, 10, 0, 0);
    up(p);
    S.connected = false; /* the client knows before the `disconnected` event arrives */
    pub(p, "a", "a1", true);
    CU_ASSERT_EQUAL(S.n, 0);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 1);
    down(p);
    up(p);
    CU_ASSERT_EQUAL(S.n, 1);
    CU_ASSERT(rec_is(0, "a", "a1"));
    done(p);
}

static void test_rejected_dropped(void)
{
    struct t2m_publisher *p = mk(100, 10, 0, 0);
    up(p);
    S.fail_code = T2M_MQTT_EINVAL;
    pub(p, "bad", "x", true);
    CU_ASSERT(t2m_publisher_idle(p));
    S.fail_code = 0;
    pub(p, "good", "y", true);
    CU_ASSERT_EQUAL(S.n, 1);
    /* Issue 19, item 7: over the broker's Maximum Packet Size on the direct path (nothing
     * queued, window free) is counted under its reason, as from the queue. */
    uint64_t before = stats.dropped[T2M_DROP_BROKER_TOO_LARGE];
    S.fail_code = T2M_MQTT_ETOOBIG;
    pub(p, "big", "z", true);
    pub(p, "big2", "z", true);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_BROKER_TOO_LARGE], before + 2);
    CU_ASSERT(t2m_publisher_queued(p) == 0);
    S.fail_code = 0;
    done(p);
}

static void test_congestion_hysteresis(void)
{
    struct t2m_publisher *p = mk(1000, 1, 5, 2);
    up(p);
    for (int i = 0; i < 5; i++)
        pubf(p, true, "t/", i, "", "v", i);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 4);
    CU_ASSERT_FALSE(t2m_publisher_congested(p));
    pub(p, "t/5", "v5", true);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 5);
    CU_ASSERT(t2m_publisher_congested(p));
    CU_ASSERT(deliver_one(p)); /* 4 queued */
    CU_ASSERT(t2m_publisher_congested(p));
    CU_ASSERT(deliver_one(p)); /* 3 */
    CU_ASSERT(t2m_publisher_congested(p));
    CU_ASSERT_EQUAL(resumes, 0);
    CU_ASSERT(deliver_one(p)); /* 2 = low water */
    CU_ASSERT_FALSE(t2m_publisher_congested(p));
    CU_ASSERT_EQUAL(resumes, 1);
    CU_ASSERT(deliver_one(p));
    deliver_all(p);
    CU_ASSERT_EQUAL(resumes, 1);
    CU_ASSERT(t2m_publisher_idle(p));

    /* offline the queue may grow (coalescing bounds it): never congested; a disconnect while
     * congested resumes the upstream */
    for (int i = 0; i < 10; i++)
        pubf(p, true, "u/", i, "", "v", i);
    CU_ASSERT(t2m_publisher_congested(p));
    down(p);
    CU_ASSERT_FALSE(t2m_publisher_congested(p));
    CU_ASSERT_EQUAL(resumes, 2);
    for (int i = 0; i < 10; i++)
        pubf(p, true, "w/", i, "", "v", i);
    CU_ASSERT_FALSE(t2m_publisher_congested(p));
    up(p);
    CU_ASSERT(t2m_publisher_congested(p));
    deliver_all(p);
    CU_ASSERT_FALSE(t2m_publisher_congested(p));
    CU_ASSERT_EQUAL(resumes, 3);
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

static void test_idle(void)
{
    struct t2m_publisher *p = mk(10, 10, 0, 0);
    CU_ASSERT(t2m_publisher_idle(p));
    pub(p, "a", "1", true);
    CU_ASSERT_FALSE(t2m_publisher_idle(p));
    up(p);
    CU_ASSERT_FALSE(t2m_publisher_idle(p)); /* in flight */
    deliver_all(p);
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

static void test_non_retained(void)
{
    struct t2m_publisher *p = mk(10, 100, 0, 0);
    for (int i = 0; i < 5; i++)
        pubf(p, false, "ev/", 0, "", "e", i);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 5); /* not coalesced */
    for (int i = 5; i < 20; i++)
        pubf(p, false, "ev/", 0, "", "e", i);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 10);
    CU_ASSERT_EQUAL(stats.dropped[T2M_DROP_OFFLINE_QUEUE], 10);
    pub(p, "pos", "p1", true);
    up(p);
    CU_ASSERT_EQUAL_FATAL(S.n, 11);
    char v[16];
    for (int i = 0; i < 10; i++) {
        snprintf(v, sizeof(v), "e%d", 10 + i);
        CU_ASSERT(rec_is((size_t)i, "ev/0", v));
        CU_ASSERT_FALSE(S.recs[i].retain);
    }
    CU_ASSERT(rec_is(10, "pos", "p1"));
    deliver_all(p);
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

static void test_urgent(void)
{
    struct t2m_publisher *p = mk(100, 1, 0, 0);
    CU_ASSERT_EQUAL(t2m_publisher_publish_urgent(p, "b/bridge/state", "online", 6, 1, true),
                    T2M_MQTT_ENOTCONN);
    up(p);
    pub(p, "a", "a1", true);
    pub(p, "b", "b1", true);
    pub(p, "c", "c1", true);
    CU_ASSERT_EQUAL(S.n, 1);
    CU_ASSERT_EQUAL(t2m_publisher_publish_urgent(p, "b/bridge/state", "online", 6, 1, true),
                    T2M_MQTT_OK);
    CU_ASSERT_EQUAL(S.n, 2);
    CU_ASSERT(rec_is(1, "b/bridge/state", "online"));
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 1); /* not counted against the window */
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 2);
    S.eagain = true;
    CU_ASSERT_EQUAL(t2m_publisher_publish_urgent(p, "x", "y", 1, 0, false), T2M_MQTT_EAGAIN);
    S.eagain = false;
    deliver_all(p);
    CU_ASSERT_EQUAL(S.n, 4);
    CU_ASSERT(t2m_publisher_idle(p));
    CU_ASSERT_EQUAL(stats.messages_published, 4); /* the urgent one counts when delivered */
    /* an urgent message lost with the connection is not re-sent by the publisher */
    CU_ASSERT_EQUAL(t2m_publisher_publish_urgent(p, "u", "1", 1, 1, true), T2M_MQTT_OK);
    down(p);
    up(p);
    CU_ASSERT_EQUAL(S.n, 5);
    done(p);
}

static void test_sync_callbacks(void)
{
    /* a backend that reports QoS 0 delivery from inside publish */
    struct t2m_publisher *p = mk(100, 2, 0, 0);
    up(p);
    S.sync_deliver = true;
    for (int i = 0; i < 5; i++)
        pubf(p, true, "t/", i, "", "v", i);
    CU_ASSERT_EQUAL(S.n, 5);
    CU_ASSERT(t2m_publisher_idle(p));
    CU_ASSERT_EQUAL(stats.messages_published, 5);
    done(p);

    /* a backend that loses the connection inside publish */
    p = mk(100, 4, 0, 0);
    up(p);
    S.sync_disconnect = true;
    pub(p, "a", "a1", true);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 1);
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 0);
    pub(p, "b", "b1", true);
    S.sync_disconnect = false;
    up(p);
    deliver_all(p);
    CU_ASSERT(rec_is(S.n - 2, "a", "a1"));
    CU_ASSERT(rec_is(S.n - 1, "b", "b1"));
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

static void test_bad_input(void)
{
    struct t2m_publisher *p = mk(10, 10, 0, 0);
    CU_ASSERT_EQUAL(t2m_publisher_publish(p, NULL, "x", 1, 1, true), -1);
    CU_ASSERT_EQUAL(t2m_publisher_publish(p, "t", NULL, 3, 1, true), -1);
    CU_ASSERT_EQUAL(t2m_publisher_publish_urgent(p, NULL, "x", 1, 1, true), T2M_MQTT_EINVAL);
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

/* Everything on every list at free time: LeakSanitizer checks it is all released. */
static void test_free_everything(void)
{
    struct t2m_publisher *p = mk(50, 5, 0, 0);
    up(p);
    for (int i = 0; i < 10; i++)
        pubf(p, true, "t/", i, "", "v", i);
    down(p); /* 5 to re-send */
    for (int i = 0; i < 2000; i++)
        pubf(p, i % 3 != 0, "k/", i % 300, "", "v", i);
    /* 5 to re-send, 5 + 200 latest (k/<j> for j % 3 != 0 retained), 50 history */
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 260);
    up(p); /* 5 in flight again */
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 5);
    done(p);
    t2m_publisher_free(NULL);
}

/* Many topics: the topic map grows, coalescing stays exact. */
static int64_t fake_ms;
static int64_t fake_now(void)
{
    return fake_ms;
}

/* SPEC 7 / issue 10: a broker that takes PUBLISH and never acknowledges shows as a stall that
 * grows with time; any acknowledgement, a reconnect or an empty window ends it. */
static void test_stall_clock(void)
{
    free(S.recs);
    memset(&S, 0, sizeof(S));
    fake_ms = 1000;
    struct t2m_publisher_options o = {.offline_queue = 100, .window = 4, .now_ms = fake_now};
    struct t2m_publisher *p = t2m_publisher_new(FAKE, &o, &stats, on_resume, &resumes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    S.p = p;
    pub(p, "t/a", "1", true); /* offline: queued, nothing in flight */
    fake_ms = 5000;
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 0);
    up(p); /* sent now: the wait starts at the connect */
    CU_ASSERT_EQUAL(t2m_publisher_inflight(p), 1);
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 0);
    fake_ms = 12500;
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 7500);
    pub(p, "t/b", "2", true); /* more sent: still no acknowledgement */
    fake_ms = 13000;
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 8000);
    CU_ASSERT(deliver_one(p)); /* one acknowledgement: the clock restarts */
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 0);
    fake_ms = 14000;
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 1000);
    deliver_all(p); /* nothing in flight: no stall however long it stays so */
    fake_ms = 100000;
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 0);
    pub(p, "t/c", "3", true); /* the window opens again now */
    fake_ms = 100500;
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 500);
    down(p); /* disconnected: in flight moves to re-send; no stall to report */
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 0);
    fake_ms = 200000;
    up(p);
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 0);
    fake_ms = 200001;
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 1);
    done(p);
    /* Without a clock it never reports a stall. */
    p = mk(10, 2, 0, 0);
    up(p);
    pub(p, "t/a", "1", true);
    CU_ASSERT_EQUAL(t2m_publisher_stalled_ms(p), 0);
    done(p);
}

static void test_many_topics(void)
{
    struct t2m_publisher *p = mk(0, 1000, 0, 0);
    for (int r = 0; r < 3; r++)
        for (int d = 0; d < 20000; d++)
            pubf(p, true, "t/", d, "", "r", r);
    CU_ASSERT_EQUAL(t2m_publisher_queued(p), 20000);
    up(p);
    deliver_all(p);
    CU_ASSERT_EQUAL_FATAL(S.n, 20000);
    int bad = 0;
    for (size_t i = 0; i < S.n; i++)
        bad += strcmp(S.recs[i].payload, "r2") != 0;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(t2m_publisher_idle(p));
    done(p);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"pass-through when connected", test_passthrough},
        {"window limit honoured", test_window},
        {"offline: 100x50, offline_queue=1000", test_offline_history_and_latest},
        {"offline_queue=0 keeps only the latest", test_offline_queue_zero},
        {"per-topic order kept", test_per_topic_order},
        {"identical retained state coalesced", test_identical_coalesced},
        {"in-flight re-sent, superseded not", test_inflight_resent},
        {"re-sent and lost again", test_resend_lost_again},
        {"EAGAIN retried", test_eagain_retried},
        {"ENOTCONN keeps the message", test_enotconn_kept},
        {"rejected message dropped", test_rejected_dropped},
        {"congested / resume hysteresis", test_congestion_hysteresis},
        {"idle", test_idle},
        {"non-retained messages", test_non_retained},
        {"urgent bypasses the queue", test_urgent},
        {"callbacks inside publish", test_sync_callbacks},
        {"bad input", test_bad_input},
        {"free releases everything", test_free_everything},
        {"many topics", test_many_topics},
        {"stalled deliveries timed", test_stall_clock},
        {NULL, NULL},
    };
    return t2m_test_run("publisher", cases);
}
