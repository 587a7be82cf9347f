/* owntracks.c - pure: OwnTracks location payloads (SPEC section 5). */
#include "owntracks.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "units.h"

void t2m_owntracks_tid(char out[3], const char *name, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; name && i < len && k < 2; i++) {
        unsigned char ch = (unsigned char)name[i];
        /* ASCII only: isalnum() would follow the locale and could pass a lone UTF-8 byte */
        if (ch >= 'a' && ch <= 'z')
            out[k++] = (char)(ch - 'a' + 'A');
        else if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            out[k++] = (char)ch;
    }
    while (k < 2)
        out[k++] = 'X';
    out[2] = '\0';
}

/* The lat/lon text of the position payload; the parser fills it, this covers a caller that
 * built the update by hand. */
static const char *coord_text(char *tmp, size_t n, const char *text, double v)
{
    if (text[0] != '\0' && memchr(text, '\0', 32) != NULL) return text;
    return t2m_units_format_shortest(tmp, n, v) ? tmp : NULL;
}

size_t t2m_owntracks_payload(char *buf, size_t n, const struct t2m_update *u, const char tid[3],
                             long long now_s)
{
    char lat_tmp[32], lon_tmp[32], t[3];
    if (!buf || n == 0 || !u) return 0;
    buf[0] = '\0';
    if ((u->has & (T2M_HAS_LAT | T2M_HAS_LON)) != (T2M_HAS_LAT | T2M_HAS_LON)) return 0;
    const char *lat = coord_text(lat_tmp, sizeof lat_tmp, u->lat_text, u->lat);
    const char *lon = coord_text(lon_tmp, sizeof lon_tmp, u->lon_text, u->lon);
    if (!lat || !lon) return 0;

    long long tst = now_s;
    if (u->has & T2M_HAS_TS) {
        /* floor, so a pre-1970 millisecond value still lands on the right second */
        tst = (long long)(u->ts_ms / 1000);
        if (u->ts_ms % 1000 < 0) tst--;
    }

    int w = snprintf(buf, n, "{\"_type\":\"location\",\"lat\":%s,\"lon\":%s,\"tst\":%lld", lat, lon,
                     tst);
    if (w < 0 || (size_t)w >= n) goto toolong;
    size_t len = (size_t)w;

    if (u->has & T2M_HAS_SPEED) {
        /* OwnTracks' vel is km/h whatever units.* says: its consumers assume it */
        long long vel = llround(u->speed * 3.6);
        w = snprintf(buf + len, n - len, ",\"vel\":%lld", vel < 0 ? 0 : vel);
        if (w < 0 || (size_t)w >= n - len) goto toolong;
        len += (size_t)w;
    }
    if (u->has & T2M_HAS_ACCURACY) {
        /* Home Assistant's OwnTracks integration ignores a fix whose acc is 0: floor at 1 m */
        long long acc = llround(u->accuracy);
        w = snprintf(buf + len, n - len, ",\"acc\":%lld", acc < 1 ? 1 : acc);
        if (w < 0 || (size_t)w >= n - len) goto toolong;
        len += (size_t)w;
    }
    if (u->has & T2M_HAS_HEADING) {
        long long cog = llround(u->heading) % 360;
        w = snprintf(buf + len, n - len, ",\"cog\":%lld", cog < 0 ? cog + 360 : cog);
        if (w < 0 || (size_t)w >= n - len) goto toolong;
        len += (size_t)w;
    }

    /* Re-derived through t2m_owntracks_tid: unchanged for what it made, and a caller's
     * stray quote or control byte can never reach the JSON. */
    t2m_owntracks_tid(t, tid, tid ? strnlen(tid, 2) : 0);
    w = snprintf(buf + len, n - len, ",\"tid\":\"%s\"}", t);
    if (w < 0 || (size_t)w >= n - len) goto toolong;
    return len + (size_t)w;

toolong:
    buf[0] = '\0';
    return 0;
}
