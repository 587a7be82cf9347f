/* out.h - the bounded output cursor every renderer appends through (payload, protocol,
 * metrics): each append is checked; once one did not fit, `full` sticks and the render reports
 * 0 with an empty buffer rather than a truncated (and therefore invalid) document. */
#ifndef T2M_OUT_H
#define T2M_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "protocol.h" /* t2m_json_escape */
#include "units.h"    /* t2m_units_format_fixed */

struct t2m_out {
    char *buf;
    size_t n, len; /* capacity, bytes written (always NUL-terminated below n) */
    bool full;
};

static inline void t2m_out_put(struct t2m_out *o, const char *s, size_t len)
{
    if (o->full || len >= o->n - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, len);
    o->len += len;
    o->buf[o->len] = '\0';
}

static inline void t2m_out_str(struct t2m_out *o, const char *s)
{
    t2m_out_put(o, s, strlen(s));
}

/* s (len bytes) as a JSON string literal, quotes included (t2m_json_escape). */
static inline void t2m_out_json(struct t2m_out *o, const char *s, size_t len)
{
    if (o->full) return;
    size_t w = t2m_json_escape(o->buf + o->len, o->n - o->len, s, len);
    if (w == 0 || w >= o->n - o->len) {
        o->full = true;
        return;
    }
    o->len += w;
}

/* v with `precision` decimals (t2m_units_format_fixed). */
static inline void t2m_out_fixed(struct t2m_out *o, double v, int precision)
{
    if (o->full) return;
    size_t w = t2m_units_format_fixed(o->buf + o->len, o->n - o->len, v, precision);
    if (w == 0) o->full = true;
    o->len += w;
}

#define T2M_OUT_LIT(o, lit) t2m_out_put((o), (lit), sizeof(lit) - 1)

/* The length written, or 0 (and an empty string) when something did not fit. */
static inline size_t t2m_out_finish(struct t2m_out *o)
{
    if (o->full) {
        if (o->n) o->buf[0] = '\0';
        return 0;
    }
    return o->len;
}

#endif
