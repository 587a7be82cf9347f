/* trip.c - haversine and the trip payload (trip.h). */
#include "trip.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "out.h"

double t2m_haversine_m(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    if (a > 1) a = 1; /* rounding at antipodes */
    return 2 * T2M_EARTH_RADIUS_M * asin(sqrt(a));
}

const char *t2m_trip_distance_unit(enum t2m_dist_unit unit)
{
    return unit == T2M_DIST_FT ? "mi" : "km";
}

double t2m_trip_distance(double m, enum t2m_dist_unit unit)
{
    return unit == T2M_DIST_FT ? m / 1609.344 : m / 1000.0;
}

double t2m_trip_distance_m(double v, enum t2m_dist_unit unit)
{
    return unit == T2M_DIST_FT ? v * 1609.344 : v * 1000.0;
}

static void put_coord(struct t2m_out *o, const char *key, double v)
{
    char tmp[32];
    size_t l = t2m_units_format_shortest(tmp, sizeof(tmp), v);
    if (l == 0) o->full = true;
    t2m_out_str(o, key);
    t2m_out_put(o, tmp, l);
}

static void put_ts(struct t2m_out *o, const char *key, int64_t ms, const struct t2m_units *u)
{
    char tmp[48];
    size_t l = t2m_units_format_ts(tmp, sizeof(tmp), ms, u->timestamp, u->tz);
    if (l == 0) o->full = true;
    t2m_out_str(o, key);
    if (u->timestamp == T2M_TS_ISO) T2M_OUT_LIT(o, "\"");
    t2m_out_put(o, tmp, l);
    if (u->timestamp == T2M_TS_ISO) T2M_OUT_LIT(o, "\"");
}

size_t t2m_payload_trip(char *buf, size_t n, const struct t2m_trip *t,
                        const struct t2m_units *units)
{
    struct t2m_out o = {buf, n, 0, !buf || n == 0 || !t || !units};
    if (o.full) return 0;
    T2M_OUT_LIT(&o, "{\"track_token\":");
    t2m_out_json(&o, t->track ? t->track : "", t->track ? t->track_len : 0);
    if (t->driving)
        T2M_OUT_LIT(&o, ",\"state\":\"driving\"");
    else
        T2M_OUT_LIT(&o, ",\"state\":\"ended\"");
    put_ts(&o, ",\"start\":", t->start_ms, units);
    if (!t->driving) put_ts(&o, ",\"end\":", t->end_ms, units);
    double secs = t->end_ms > t->start_ms ? (double)(t->end_ms - t->start_ms) / 1000.0 : 0;
    T2M_OUT_LIT(&o, ",\"duration\":");
    t2m_out_fixed(&o, secs, 0);
    T2M_OUT_LIT(&o, ",\"distance\":");
    t2m_out_fixed(&o, t2m_trip_distance(t->distance_m, units->distance), units->precision);
    T2M_OUT_LIT(&o, ",\"distance_unit\":\"");
    t2m_out_str(&o, t2m_trip_distance_unit(units->distance));
    T2M_OUT_LIT(&o, "\"");
    if (t->has_max) {
        T2M_OUT_LIT(&o, ",\"max_speed\":");
        t2m_out_fixed(&o, t2m_units_speed(t->max_speed, units->speed), units->precision);
    }
    T2M_OUT_LIT(&o, ",\"avg_speed\":");
    t2m_out_fixed(&o, t2m_units_speed(secs > 0 ? t->distance_m / secs : 0, units->speed),
                  units->precision);
    T2M_OUT_LIT(&o, ",\"speed_unit\":\"");
    t2m_out_str(&o, t2m_units_speed_name(units->speed));
    T2M_OUT_LIT(&o, "\"");
    if (t->has_start) {
        put_coord(&o, ",\"start_latitude\":", t->start_lat);
        put_coord(&o, ",\"start_longitude\":", t->start_lon);
    }
    if (t->has_end) {
        put_coord(&o, ",\"end_latitude\":", t->end_lat);
        put_coord(&o, ",\"end_longitude\":", t->end_lon);
    }
    char num[24];
    int l = snprintf(num, sizeof(num), ",\"updates\":%u}", (unsigned)t->updates);
    t2m_out_put(&o, num, l > 0 ? (size_t)l : 0);
    return t2m_out_finish(&o);
}
