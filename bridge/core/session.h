/* session.h - the bridge's decisions about its own MQTT session, pure: the read-back of the
 * retained state and its end (SPEC 2.1, 8), what a connection sends first and what waits for
 * the read-back (SPEC 4, 8), stalled deliveries (SPEC 7), congestion, the rate of B/bridge/info,
 * health, the requests (SPEC 2.3) and the shutdown (SPEC 7).
 *
 * Fed with events and the monotonic clock (milliseconds, any origin); each call appends the
 * actions bridge.c carries out, in order, to a struct t2m_sess_out. It reads no clock and does
 * no I/O: every rule is unit-tested (tests/unit/test_session.c). */
#ifndef T2M_SESSION_H
#define T2M_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"
#include "state.h"

#define T2M_SESS_READBACK_QUIET_MS 5000  /* a read-back without a message this long ends */
#define T2M_SESS_WITHDRAW_SETTLE_MS 5000 /* connected this long after it: configs withdrawn */
#define T2M_SESS_INFO_MIN_MS 1000        /* B/bridge/info at most once a second */
#define T2M_SESS_FLUSH_MS 5000           /* the shutdown's flush, at most (SPEC 7) */
#define T2M_SESS_DISCONNECT_MS 500       /* then the DISCONNECT's moment to leave */

enum t2m_sess_kind {
    T2M_SA_AVAILABILITY,    /* B/bridge/state retained: flag online, else offline; n 0: urgent,
                             * ahead of the queue (queued if the library refuses it now); n 1:
                             * queued behind what waits */
    T2M_SA_SUB_HA_STATUS,   /* subscribe to Home Assistant's status topic */
    T2M_SA_SUB_REQUESTS,    /* subscribe to B/bridge/request/# */
    T2M_SA_FORGET_WITHDRAW, /* drop the configs a read-back found to withdraw: withdraw none */
    T2M_SA_READBACK_START,  /* subscribe to the read-back's topics and the marker, publish the
                             * marker; report the result with t2m_session_readback_begun */
    T2M_SA_STATUSES,        /* publish every instance's B/I/status */
    T2M_SA_HOLD_DISCOVERY,  /* the state core holds device discovery (flag) */
    T2M_SA_DISCOVERY,       /* the bridge device's Home Assistant configs */
    T2M_SA_STATE_CONNECTED, /* tell the state core: connected (flag) or not */
    T2M_SA_QUEUE_GO,        /* the publisher sends what it queued */
    T2M_SA_QUEUE_OFFLINE,   /* the publisher queues from now on */
    T2M_SA_INFO,            /* render B/bridge/info, publish it when it changed (flag: even if
                             * not); say t2m_session_info_published when it went */
    T2M_SA_READBACK_END,    /* unsubscribe, the state core takes what came (n: messages read
                             * back); flag: it ended on its marker, else it went quiet */
    T2M_SA_WITHDRAW,        /* withdraw the configs that no longer apply (SPEC 8) */
    T2M_SA_TAKEN_OVER,      /* say why nothing is withdrawn: another client has our client id */
    T2M_SA_RECONNECT,       /* drop the connection: deliveries stalled for n ms */
    T2M_SA_REPUBLISH,       /* re-send every device's state (Home Assistant came back) */
    T2M_SA_PAUSE,           /* pause every upstream */
    T2M_SA_RESUME,          /* resume them */
    T2M_SA_STOP_UPSTREAMS,  /* close every upstream connection for good */
    T2M_SA_FLUSH_RECONNECT, /* disconnected at shutdown with a queue: one more attempt */
    T2M_SA_STOP_WAIT,       /* call t2m_session_stop_tick again in a moment */
    T2M_SA_UNDELIVERED,     /* say what the shutdown discards (flag: the broker was connected) */
    T2M_SA_DISCONNECT,      /* send DISCONNECT */
    T2M_SA_DONE,            /* the bridge may exit */
};

struct t2m_sess_action {
    enum t2m_sess_kind kind;
    bool flag;
    int64_t n;
};

#define T2M_SESS_OUT_MAX 24
struct t2m_sess_out {
    struct t2m_sess_action a[T2M_SESS_OUT_MAX];
    size_t n;
};

struct t2m_session_options {
    bool homeassistant; /* discovery on */
    bool requests;      /* B/bridge/request/# answered */
    int keepalive_s;    /* deliveries unacknowledged for 1.5 x this: stalled (SPEC 7) */
};

/* What the shells know right now, for the calls that decide on it. */
struct t2m_sess_view {
    bool connected;     /* the MQTT connection is up */
    bool settled;       /* it has stayed up past the broker's take-over window */
    bool taken_over;    /* another client with our client id took it over */
    bool idle;          /* nothing queued or in flight */
    int64_t stalled_ms; /* the oldest unacknowledged delivery's age, 0: none */
    bool auth_failed;   /* an instance's token was refused */
};

struct t2m_session {
    struct t2m_session_options opt;
    bool reading_back;  /* until the marker returns (or the read-back goes quiet) */
    bool held, settled; /* discovery and the queue wait for the run's first read-back */
    bool paused;        /* the upstreams are paused (congestion) */
    bool stall_seen;    /* deliveries stalled; cleared by the next acknowledgement */
    bool stall_kicked;  /* this connection was already dropped for stalling */
    bool stopping, disconnecting, done;
    size_t readback_n; /* retained messages read back on this connection */
    int64_t readback_act_ms, withdraw_due_ms, info_ms, stop_deadline_ms;
    struct t2m_now clocks; /* the last reading of both clocks (t2m_session_clocks) */
};

void t2m_session_init(struct t2m_session *s, const struct t2m_session_options *opt);

/* Both clocks read now: returns by how much the wall clock stepped since the last reading (NTP
 * on a board without a battery clock, a resumed VM), 0 when it ran with the monotonic clock
 * (T2M_CLOCK_STEP_MS, state.h). Nothing depends on it (every
 * deadline is monotonic); it is said in the log. */
int64_t t2m_session_clocks(struct t2m_session *s, struct t2m_now now);
/* The MQTT connection is up. */
void t2m_session_connected(struct t2m_session *s, int64_t now, struct t2m_sess_out *out);
/* T2M_SA_READBACK_START was carried out: ok when every subscription and the marker went. */
void t2m_session_readback_begun(struct t2m_session *s, bool ok, int64_t now,
                                struct t2m_sess_out *out);
/* Whether a message under the read-back's filters is memory (SPEC 8): during the read-back,
 * and only when the broker kept it; a live echo of the bridge's own publish is not. */
bool t2m_session_is_memory(const struct t2m_session *s, bool retained);
/* During the read-back: a retained message of ours that the state core took. */
void t2m_session_readback_progress(struct t2m_session *s, int64_t now);
/* During the read-back: the marker came back, so everything retained before it was read. */
void t2m_session_marker(struct t2m_session *s, int64_t now, struct t2m_sess_out *out);
/* Home Assistant said "online" on its status topic. */
void t2m_session_ha_online(struct t2m_session *s, struct t2m_sess_out *out);
void t2m_session_disconnected(struct t2m_session *s, struct t2m_sess_out *out);
/* An acknowledgement: true when deliveries had stalled and flow again (say so). */
bool t2m_session_delivered(struct t2m_session *s);
/* After the upstreams fed the publisher: pause them while it is congested. */
void t2m_session_congested(struct t2m_session *s, bool congested, struct t2m_sess_out *out);
/* The publisher drained below its low water mark. */
void t2m_session_resume(struct t2m_session *s, struct t2m_sess_out *out);
/* The periodic check (twice a second): stall, a quiet read-back, the withdrawal, info. */
void t2m_session_tick(struct t2m_session *s, int64_t now, const struct t2m_sess_view *v,
                      struct t2m_sess_out *out);
void t2m_session_info_published(struct t2m_session *s, int64_t now);
/* Why /healthz and the health_check request say unhealthy, or NULL. */
const char *t2m_session_unhealthy(const struct t2m_session *s, const struct t2m_sess_view *v);
/* SIGTERM: publish offline, flush at most T2M_SESS_FLUSH_MS, disconnect. Then
 * t2m_session_stop_tick each time T2M_SA_STOP_WAIT asks, until T2M_SA_DONE. */
void t2m_session_stop(struct t2m_session *s, int64_t now, const struct t2m_sess_view *v,
                      struct t2m_sess_out *out);
void t2m_session_stop_tick(struct t2m_session *s, int64_t now, const struct t2m_sess_view *v,
                           struct t2m_sess_out *out);

/* A request's answer: data (malloc'd JSON, the caller frees it; NULL: {}) or an error. */
struct t2m_reply {
    char *data;
    char error[256]; /* "" when it succeeded */
};
/* SPEC 2.3: answers a request under B/bridge/request/<cmd> (payload NULL: the broker's packet
 * was too large to read), acting on the state core (remove, rename) and the log level
 * (options) at `now`. 0, or -1 when the request
 * itself was malformed (reply->error says how; the caller logs it, once a minute). */
int t2m_session_request(const struct t2m_session *s, struct t2m_state *st, const char *cmd,
                        const void *payload, size_t len, const struct t2m_sess_view *v,
                        struct t2m_now now, struct t2m_request *r, struct t2m_reply *reply);

#endif
