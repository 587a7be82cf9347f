/* session.c - the bridge's decisions about its own MQTT session (session.h). */
#include "session.h"

#include <string.h>

static void add(struct t2m_sess_out *out, enum t2m_sess_kind kind, bool flag, int64_t n)
{
    /* T2M_SESS_OUT_MAX is above the longest sequence any one call appends (the connect's) */
    if (out->n < T2M_SESS_OUT_MAX) out->a[out->n++] = (struct t2m_sess_action){kind, flag, n};
}

void t2m_session_init(struct t2m_session *s, const struct t2m_session_options *opt)
{
    memset(s, 0, sizeof(*s));
    s->opt = *opt;
}

int64_t t2m_session_clocks(struct t2m_session *s, struct t2m_now now)
{
    struct t2m_now last = s->clocks;
    s->clocks = now;
    if (!last.wall && !last.mono) return 0; /* the first reading */
    int64_t step = now.wall - (last.wall + (now.mono - last.mono));
    return step > T2M_CLOCK_STEP_MS || step < -T2M_CLOCK_STEP_MS ? step : 0;
}

/* What waited for the first read-back (SPEC 4 and 8): Home Assistant configs (after the
 * migration of the other form's), then the queue. */
static void release_held(struct t2m_session *s, struct t2m_sess_out *out)
{
    if (!s->held) return;
    s->held = false;
    if (s->opt.homeassistant) add(out, T2M_SA_DISCOVERY, false, 0);
    add(out, T2M_SA_QUEUE_GO, false, 0);
}

/* SPEC 8: online, discovery, then what was queued. Discovery goes out urgently while the
 * publisher still counts as offline, so the positions the state core re-sends coalesce into
 * the queue and leave after the configs, never before. Until the first read-back of the run is
 * over both wait for it: it tells which configs of the other form (0.x's per-entity ones) must
 * be migrated before the new ones go (SPEC 4). */
static void connected_rest(struct t2m_session *s, struct t2m_sess_out *out)
{
    add(out, T2M_SA_STATUSES, false, 0);
    s->held = !s->settled && s->reading_back && s->opt.homeassistant;
    add(out, T2M_SA_HOLD_DISCOVERY, s->held, 0);
    if (!s->held && s->opt.homeassistant) add(out, T2M_SA_DISCOVERY, false, 0);
    add(out, T2M_SA_STATE_CONNECTED, true, 0);
    if (!s->held) add(out, T2M_SA_QUEUE_GO, false, 0);
    if (!s->stopping) add(out, T2M_SA_INFO, true, 0);
}

void t2m_session_connected(struct t2m_session *s, int64_t now, struct t2m_sess_out *out)
{
    (void)now;
    s->stall_kicked = false;
    /* Back during the shutdown flush: the broker (perhaps another node, or one that lost its
     * retained messages) still gets every device's latest state, then the bridge goes. */
    add(out, T2M_SA_AVAILABILITY, !s->stopping, 0);
    if (s->stopping) {
        s->reading_back = false;
        connected_rest(s, out);
        return;
    }
    if (s->opt.homeassistant) add(out, T2M_SA_SUB_HA_STATUS, false, 0);
    if (s->opt.requests) add(out, T2M_SA_SUB_REQUESTS, false, 0);
    /* SPEC 2.1: the broker is the bridge's memory, read back on every connect. What an
     * interrupted read-back found to withdraw is forgotten: only a whole one decides. */
    s->withdraw_due_ms = 0;
    add(out, T2M_SA_FORGET_WITHDRAW, false, 0);
    add(out, T2M_SA_READBACK_START, false, 0);
}

void t2m_session_readback_begun(struct t2m_session *s, bool ok, int64_t now,
                                struct t2m_sess_out *out)
{
    s->reading_back = ok;
    s->readback_n = 0;
    s->readback_act_ms = now;
    connected_rest(s, out);
}

bool t2m_session_is_memory(const struct t2m_session *s, bool retained)
{
    return s->reading_back && retained;
}

void t2m_session_readback_progress(struct t2m_session *s, int64_t now)
{
    s->readback_n++;
    s->readback_act_ms = now;
}

static void readback_end(struct t2m_session *s, bool on_marker, int64_t now,
                         struct t2m_sess_out *out)
{
    s->reading_back = false;
    add(out, T2M_SA_READBACK_END, on_marker, (int64_t)s->readback_n);
    s->settled = true;
    release_held(s, out);
    /* SPEC 8: configs that no longer apply are withdrawn only after a read-back that saw
     * everything (it ended on its marker), and only once the connection has stayed up a while:
     * a second bridge with the same client id (whose configs look like ours) takes the
     * connection over within its first backoff delays (1, 2, 4 s), well before. */
    if (on_marker)
        s->withdraw_due_ms = now + T2M_SESS_WITHDRAW_SETTLE_MS;
    else
        add(out, T2M_SA_FORGET_WITHDRAW, false, 0);
}

void t2m_session_marker(struct t2m_session *s, int64_t now, struct t2m_sess_out *out)
{
    if (s->reading_back) readback_end(s, true, now, out);
}

void t2m_session_ha_online(struct t2m_session *s, struct t2m_sess_out *out)
{
    if (!s->opt.homeassistant || s->held) return; /* the read-back's end sends them anyway */
    add(out, T2M_SA_DISCOVERY, false, 0);
    add(out, T2M_SA_REPUBLISH, false, 0);
}

void t2m_session_disconnected(struct t2m_session *s, struct t2m_sess_out *out)
{
    s->stall_kicked = false;
    s->reading_back = false;
    s->held = false;
    if (s->withdraw_due_ms) { /* the connection did not stay up: withdraw nothing */
        s->withdraw_due_ms = 0;
        add(out, T2M_SA_FORGET_WITHDRAW, false, 0);
    }
    add(out, T2M_SA_QUEUE_OFFLINE, false, 0);
    add(out, T2M_SA_STATE_CONNECTED, false, 0);
    t2m_session_resume(s, out); /* while offline, keep consuming: the queue coalesces */
}

bool t2m_session_delivered(struct t2m_session *s)
{
    bool was = s->stall_seen;
    s->stall_seen = false;
    return was;
}

void t2m_session_congested(struct t2m_session *s, bool congested, struct t2m_sess_out *out)
{
    if (s->paused || !congested) return;
    s->paused = true;
    add(out, T2M_SA_PAUSE, false, 0);
}

void t2m_session_resume(struct t2m_session *s, struct t2m_sess_out *out)
{
    if (!s->paused) return;
    s->paused = false;
    add(out, T2M_SA_RESUME, false, 0);
}

/* SPEC section 7: in-flight messages unacknowledged for 1.5 x keepalive mean a dead connection,
 * even while the socket and the broker's PINGRESPs look fine. */
static int64_t stall_limit_ms(const struct t2m_session *s)
{
    return (int64_t)s->opt.keepalive_s * 1500;
}

void t2m_session_tick(struct t2m_session *s, int64_t now, const struct t2m_sess_view *v,
                      struct t2m_sess_out *out)
{
    if (v->stalled_ms > stall_limit_ms(s) && !s->stopping && !s->stall_kicked) {
        s->stall_kicked = true;
        s->stall_seen = true;
        add(out, T2M_SA_RECONNECT, false, v->stalled_ms);
    }
    /* A broker that drops what it owes a subscriber when too much is queued (mosquitto's
     * max_queued_messages, 1,000 by default, also drops the marker's echo) would leave the
     * read-back waiting for ever: after a quiet while it ends with what came. */
    if (s->reading_back && now - s->readback_act_ms > T2M_SESS_READBACK_QUIET_MS)
        readback_end(s, false, now, out);
    /* Due, and the connection settled (else checked again next tick). */
    if (s->withdraw_due_ms && now >= s->withdraw_due_ms && (v->taken_over || v->settled)) {
        s->withdraw_due_ms = 0;
        if (v->taken_over) {
            add(out, T2M_SA_TAKEN_OVER, false, 0);
            add(out, T2M_SA_FORGET_WITHDRAW, false, 0);
        } else {
            add(out, T2M_SA_WITHDRAW, false, 0);
        }
    }
    if (v->connected && !s->stopping && now - s->info_ms >= T2M_SESS_INFO_MIN_MS)
        add(out, T2M_SA_INFO, false, 0);
}

void t2m_session_info_published(struct t2m_session *s, int64_t now)
{
    s->info_ms = now;
}

const char *t2m_session_unhealthy(const struct t2m_session *s, const struct t2m_sess_view *v)
{
    if (!v->connected) return "mqtt disconnected";
    if (s->stall_seen || v->stalled_ms > stall_limit_ms(s))
        return "mqtt deliveries stalled (no acknowledgement)";
    if (v->auth_failed) return "instance auth_failed";
    return NULL;
}

void t2m_session_stop(struct t2m_session *s, int64_t now, const struct t2m_sess_view *v,
                      struct t2m_sess_out *out)
{
    if (s->stopping) return;
    s->stopping = true;
    add(out, T2M_SA_STOP_UPSTREAMS, false, 0);
    release_held(s, out); /* the queue goes now, read-back or not */
    if (v->connected)
        add(out, T2M_SA_AVAILABILITY, false, 1); /* behind the queue: it leaves last */
    else if (!v->idle)
        add(out, T2M_SA_FLUSH_RECONNECT, false, 0);
    s->stop_deadline_ms = now + T2M_SESS_FLUSH_MS;
    add(out, T2M_SA_STOP_WAIT, false, 0);
}

/* Wait for the queue to drain (or the deadline), then disconnect and give the DISCONNECT a
 * moment to leave. Connected or not, the queue gets until the deadline: a broker that comes
 * back within it (the bridge tries at once, see t2m_session_stop) still receives everything. */
void t2m_session_stop_tick(struct t2m_session *s, int64_t now, const struct t2m_sess_view *v,
                           struct t2m_sess_out *out)
{
    if (!s->stopping || s->done) return;
    if (!s->disconnecting) {
        if (!v->idle && now < s->stop_deadline_ms) {
            add(out, T2M_SA_STOP_WAIT, false, 0);
            return;
        }
        if (!v->idle) add(out, T2M_SA_UNDELIVERED, v->connected, 0);
        s->disconnecting = true;
        add(out, T2M_SA_DISCONNECT, false, 0);
        s->stop_deadline_ms = now + T2M_SESS_DISCONNECT_MS;
        add(out, T2M_SA_STOP_WAIT, false, 0);
        return;
    }
    if (v->connected && now < s->stop_deadline_ms) {
        add(out, T2M_SA_STOP_WAIT, false, 0);
        return;
    }
    s->done = true;
    add(out, T2M_SA_DONE, false, 0);
}
