/* trip.h - pure: trip math and the trip and event payloads (SPEC section 2.2). */
#ifndef T2M_TRIP_H
#define T2M_TRIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "units.h"

#define T2M_EARTH_RADIUS_M 6371008.8 /* the mean radius the SPEC names */

/* Great-circle distance in metres between two fixes (degrees), by the haversine formula. */
double t2m_haversine_m(double lat1, double lon1, double lat2, double lon2);

/* One trip as the payload shows it; speeds in m/s, distance in metres. */
struct t2m_trip {
    const char *track; /* the trip's track_token */
    size_t track_len;
    bool driving;             /* "driving" while open, "ended" once over */
    int64_t start_ms, end_ms; /* first and last fix */
    double distance_m;        /* sum of the legs between consecutive fixes */
    bool has_max;             /* a Speed was reported */
    double max_speed;         /* the highest reported Speed */
    bool has_start, has_end;  /* positions known */
    double start_lat, start_lon;
    double end_lat, end_lon;
    uint32_t updates; /* updates merged into the trip */
};

/* "km" for metric distances, "mi" for imperial ones. */
const char *t2m_trip_distance_unit(enum t2m_dist_unit unit);
/* Metres in the trip distance unit (km or mi) and back. */
double t2m_trip_distance(double m, enum t2m_dist_unit unit);
double t2m_trip_distance_m(double v, enum t2m_dist_unit unit);

/* {"track_token":..,"state":"driving"|"ended","start":..,"end":..,"duration":s,"distance":..,
 *  "distance_unit":..,"max_speed":..,"avg_speed":..,"speed_unit":..,"start_latitude":..,
 *  "start_longitude":..,"end_latitude":..,"end_longitude":..,"updates":N}; "end" left out while
 * driving, max_speed without a Speed, positions when unknown. Returns length or 0. */
size_t t2m_payload_trip(char *buf, size_t n, const struct t2m_trip *t,
                        const struct t2m_units *units);

#endif
