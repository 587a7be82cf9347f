/* state_throttle.c - mqtt.min_interval: one window per device, its latest state at the end
 * (state_impl.h). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_impl.h"

/* ---- throttle ---- */

static int64_t interval_ms(const struct t2m_state *st)
{
    return (int64_t)(st->cfg->mqtt.min_interval * 1000.0);
}

/* Windows all have the same length, so appending keeps the FIFO in deadline order. Without
 * memory for the entry the device simply gets no window (its next update is not held). */
static void throttle_open(struct t2m_state *st, struct t2m_device *d)
{
    if (st->thr_n == st->thr_cap) {
        size_t cap = st->thr_cap ? st->thr_cap * 2 : 64;
        struct window *w = malloc(cap * sizeof(*w));
        if (!w) return;
        for (size_t i = 0; i < st->thr_n; i++) /* unrolled in order */
            w[i] = st->thr[(st->thr_head + i) & (st->thr_cap - 1)];
        free(st->thr);
        st->thr = w;
        st->thr_cap = cap;
        st->thr_head = 0;
    }
    struct window *w = &st->thr[(st->thr_head + st->thr_n++) & (st->thr_cap - 1)];
    w->d = d;
    w->end_ms = st->now.mono + interval_ms(st);
    d->flags |= T2M_DEVF_IN_WINDOW;
}

/* Publishes now, or marks the state pending until the device's window ends. */
void t2m_st_publish_or_hold(struct t2m_state *st, struct t2m_device *d, int64_t now_ms)
{
    if (interval_ms(st) <= 0) {
        t2m_st_publish_state(st, d, now_ms);
        return;
    }
    if (d->flags & T2M_DEVF_IN_WINDOW) {
        d->flags |= T2M_DEVF_PENDING;
        return;
    }
    t2m_st_publish_state(st, d, now_ms);
    throttle_open(st, d);
}

/* Windows that ended: their latest state goes out (the trailing edge), and a device removed
 * inside one is freed now. */
void t2m_st_throttle_due(struct t2m_state *st)
{
    while (st->thr_n && st->thr[st->thr_head].end_ms <= st->now.mono) {
        struct t2m_device *d = st->thr[st->thr_head].d;
        st->thr_head = (st->thr_head + 1) & (st->thr_cap - 1);
        st->thr_n--;
        d->flags &= (uint8_t)~T2M_DEVF_IN_WINDOW;
        if (d->flags & T2M_DEVF_REMOVED) {
            t2m_st_free_device(st, d);
            continue;
        }
        if (d->flags & T2M_DEVF_PENDING) { /* the trailing edge: the window's latest state */
            d->flags &= (uint8_t)~T2M_DEVF_PENDING;
            t2m_st_publish_state(st, d, st->now.wall);
            throttle_open(st, d);
        }
    }
}

int64_t t2m_state_next_deadline(const struct t2m_state *st) /* monotonic */
{
    int64_t t = st->next_scan_ms;
    if (st->thr_n && st->thr[st->thr_head].end_ms < t) t = st->thr[st->thr_head].end_ms;
    return t;
}
