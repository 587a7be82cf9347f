/* fuzz_session.c - libFuzzer target: the session core (core/session.h) fed any sequence of
 * events, each byte one event, the monotonic clock moving by the next byte's worth. Whatever
 * the order, no call's actions are cut short, the shutdown ends once, nothing is withdrawn
 * unless a read-back ended on its marker, and availability says online only while not
 * stopping. (The request table, which needs a state core, is fuzzed through fuzz_request's
 * parser.) */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct t2m_session *s, const struct t2m_sess_out *o, bool *marker_seen,
                  bool *done)
{
    FUZZ_CHECK(o->n < T2M_SESS_OUT_MAX, "%zu actions: some may have been cut", o->n);
    for (size_t i = 0; i < o->n; i++) {
        const struct t2m_sess_action *a = &o->a[i];
        if (a->kind == T2M_SA_READBACK_END && a->flag) *marker_seen = true;
        if (a->kind == T2M_SA_WITHDRAW)
            FUZZ_CHECK(*marker_seen, "a withdrawal without a whole read-back");
        if (a->kind == T2M_SA_AVAILABILITY && a->flag)
            FUZZ_CHECK(!s->stopping, "online while stopping");
        if (a->kind == T2M_SA_DONE) {
            FUZZ_CHECK(!*done, "done twice");
            *done = true;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    struct t2m_session s;
    struct t2m_session_options opt = {
        .homeassistant = data[0] & 1, .requests = data[0] & 2, .keepalive_s = data[0] >> 2};
    t2m_session_init(&s, &opt);
    int64_t now = 1;
    bool marker_seen = false, done = false;
    struct t2m_sess_view v = {.idle = true};
    for (size_t i = 1; i < size; i++) {
        uint8_t e = data[i];
        now += (int64_t)(e & 0x0f) * 400;
        struct t2m_sess_out o = {.n = 0};
        switch (e >> 4) {
        case 0:
            v.connected = true;
            t2m_session_connected(&s, now, &o);
            for (size_t k = 0; k < o.n; k++) /* as bridge.c carries it out */
                if (o.a[k].kind == T2M_SA_READBACK_START)
                    t2m_session_readback_begun(&s, (e & 1) != 0, now, &o);
            break;
        case 1:
            v.connected = false;
            t2m_session_disconnected(&s, &o);
            marker_seen = false;
            break;
        case 2:
            if (t2m_session_is_memory(&s, e & 1)) t2m_session_readback_progress(&s, now);
            break;
        case 3:
            t2m_session_marker(&s, now, &o);
            break;
        case 4:
            t2m_session_ha_online(&s, &o);
            break;
        case 5:
            t2m_session_delivered(&s);
            v.stalled_ms = 0;
            break;
        case 6:
            t2m_session_congested(&s, e & 1, &o);
            break;
        case 7:
            t2m_session_resume(&s, &o);
            break;
        case 8:
            v.settled = e & 1;
            v.taken_over = e & 2;
            v.idle = e & 4;
            v.stalled_ms = (int64_t)(e & 8) * 100000;
            break;
        case 9:
        case 10:
            t2m_session_tick(&s, now, &v, &o);
            break;
        case 11:
            t2m_session_info_published(&s, now);
            break;
        case 12:
            t2m_session_stop(&s, now, &v, &o);
            break;
        case 13:
        case 14:
            t2m_session_stop_tick(&s, now, &v, &o);
            break;
        default:
            (void)t2m_session_unhealthy(&s, &v);
            (void)t2m_session_clocks(&s, (struct t2m_now){now * (e & 3), now});
            break;
        }
        check(&s, &o, &marker_seen, &done);
    }
    return 0;
}
