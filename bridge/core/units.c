/* units.c - unit conversion, number and timestamp formatting (SPEC section 3). */
#include "units.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TZ_NAME_MAX 128
#define TZ_DIR "/usr/share/zoneinfo/"
#define OFFSET_BLOCK_S 900 /* offsets are cached per 15-minute block of UTC time */

struct t2m_tz {
    char name[TZ_NAME_MAX];
    bool utc;
    /* Cache of the last block looked up: the loop thread is the only user (DESIGN.md). */
    bool cached;
    int64_t block;
    long offset;
};

double t2m_units_speed(double mps, enum t2m_speed_unit unit)
{
    switch (unit) {
    case T2M_SPEED_KMH:
        return mps * 3.6;
    case T2M_SPEED_MPH:
        return mps * 2.236936;
    case T2M_SPEED_KN:
        return mps * 1.943844;
    case T2M_SPEED_MS:
    default:
        return mps;
    }
}

double t2m_units_distance(double m, enum t2m_dist_unit unit)
{
    return unit == T2M_DIST_FT ? m * 3.28084 : m;
}

static const char *const speed_names[] = {"m/s", "km/h", "mph", "kn"};
static const char *const dist_names[] = {"m", "ft"};
static const char *const ts_names[] = {"iso", "unix", "unix_ms"};

const char *t2m_units_speed_name(enum t2m_speed_unit unit)
{
    return (unsigned)unit < 4 ? speed_names[unit] : "m/s";
}

const char *t2m_units_distance_name(enum t2m_dist_unit unit)
{
    return (unsigned)unit < 2 ? dist_names[unit] : "m";
}

const char *t2m_units_ts_name(enum t2m_ts_format f)
{
    return (unsigned)f < 3 ? ts_names[f] : "iso";
}

static int find_name(const char *s, const char *const *names, int count)
{
    if (!s) return -1;
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

int t2m_units_parse_speed(const char *s, enum t2m_speed_unit *out)
{
    int i = find_name(s, speed_names, 4);
    if (i < 0) return -1;
    *out = (enum t2m_speed_unit)i;
    return 0;
}

int t2m_units_parse_distance(const char *s, enum t2m_dist_unit *out)
{
    int i = find_name(s, dist_names, 2);
    if (i < 0) return -1;
    *out = (enum t2m_dist_unit)i;
    return 0;
}

int t2m_units_parse_ts(const char *s, enum t2m_ts_format *out)
{
    int i = find_name(s, ts_names, 3);
    if (i < 0) return -1;
    *out = (enum t2m_ts_format)i;
    return 0;
}

int t2m_units_parse_system(const char *s, enum t2m_speed_unit *speed, enum t2m_dist_unit *dist)
{
    if (!s) return -1;
    if (strcmp(s, "metric") == 0) {
        *speed = T2M_SPEED_KMH;
        *dist = T2M_DIST_M;
        return 0;
    }
    if (strcmp(s, "imperial") == 0) {
        *speed = T2M_SPEED_MPH;
        *dist = T2M_DIST_FT;
        return 0;
    }
    return -1;
}

/* A zone name becomes a path under TZ_DIR and the TZ variable: only plain relative names. */
static bool tz_name_safe(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= TZ_NAME_MAX || name[0] == '/' || strstr(name, "..")) return false;
    for (const char *c = name; *c; c++) {
        bool ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '+' || *c == '/' || *c == '-';
        if (!ok) return false;
    }
    return true;
}

static bool tz_file_is_tzif(const char *name)
{
    char path[sizeof(TZ_DIR) + TZ_NAME_MAX];
    snprintf(path, sizeof(path), "%s%s", TZ_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char magic[4];
    ssize_t r;
    do {
        r = read(fd, magic, sizeof(magic));
    } while (r < 0 && errno == EINTR);
    close(fd);
    return r == (ssize_t)sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
}

struct t2m_tz *t2m_tz_load(const char *name)
{
    if (!name || !tz_name_safe(name)) return NULL;
    /* "UTC" needs no tz database: a container without tzdata still runs with the default. */
    bool utc = strcmp(name, "UTC") == 0;
    if (!utc && !tz_file_is_tzif(name)) return NULL;
    struct t2m_tz *tz = calloc(1, sizeof(*tz));
    if (!tz) return NULL;
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    tz->utc = utc;
    return tz;
}

void t2m_tz_free(struct t2m_tz *tz)
{
    free(tz);
}

const char *t2m_tz_name(const struct t2m_tz *tz)
{
    return tz ? tz->name : "UTC";
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The process-wide TZ last set, so setenv+tzset run only when the zone changes. */
static char current_tz[TZ_NAME_MAX];

static long zone_offset_at(const struct t2m_tz *tz, int64_t sec)
{
    if (strcmp(current_tz, tz->name) != 0) {
        setenv("TZ", tz->name, 1);
        tzset();
        snprintf(current_tz, sizeof(current_tz), "%s", tz->name);
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!localtime_r(&t, &tm)) return 0;
    return tm.tm_gmtoff;
}

/* UTC offset in seconds of tz at Unix time sec. Zone transitions fall on 15-minute boundaries in
 * practice; a block whose two ends disagree is never cached, so the answer is exact regardless. */
static long zone_offset(const struct t2m_tz *ctz, int64_t sec)
{
    if (!ctz || ctz->utc) return 0;
    /* The cache is the only mutable part; the zone was allocated non-const by t2m_tz_load. */
    struct t2m_tz *tz = (struct t2m_tz *)ctz;
    int64_t block = floor_div(sec, OFFSET_BLOCK_S);
    if (tz->cached && tz->block == block) return tz->offset;
    int64_t start = block * OFFSET_BLOCK_S;
    long a = zone_offset_at(tz, start);
    long b = zone_offset_at(tz, start + OFFSET_BLOCK_S - 1);
    if (a != b) return zone_offset_at(tz, sec);
    tz->cached = true;
    tz->block = block;
    tz->offset = a;
    return a;
}

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm), valid for the whole range. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *put2(char *p, unsigned v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* Writes the ISO form; at most 32 bytes plus NUL. */
static size_t format_iso(char *out, int64_t ts_ms, const struct t2m_tz *tz)
{
    /* Years 0000..9999 only (a day of margin for the zone offset); keeps the arithmetic in range.
     */
    if (ts_ms < -62167132800000LL || ts_ms > 253402387199999LL) return 0;
    int64_t sec = floor_div(ts_ms, 1000);
    unsigned ms = (unsigned)(ts_ms - sec * 1000);
    long off = zone_offset(tz, sec);
    int64_t local = sec + off;
    int64_t days = floor_div(local, 86400);
    unsigned sod = (unsigned)(local - days * 86400);
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (y < 0 || y > 9999) return 0;
    char *p = out;
    p = put2(p, (unsigned)(y / 100));
    p = put2(p, (unsigned)(y % 100));
    *p++ = '-';
    p = put2(p, mo);
    *p++ = '-';
    p = put2(p, d);
    *p++ = 'T';
    p = put2(p, sod / 3600);
    *p++ = ':';
    p = put2(p, sod / 60 % 60);
    *p++ = ':';
    p = put2(p, sod % 60);
    if (ms) {
        *p++ = '.';
        *p++ = (char)('0' + ms / 100);
        p = put2(p, ms % 100);
    }
    if (off == 0) {
        *p++ = 'Z';
    } else {
        unsigned a = (unsigned)(off < 0 ? -off : off);
        *p++ = off < 0 ? '-' : '+';
        p = put2(p, a / 3600);
        *p++ = ':';
        p = put2(p, a / 60 % 60);
        /* Only pre-1900 local mean times have second offsets; keep the text exact for them. */
        if (a % 60) {
            *p++ = ':';
            p = put2(p, a % 60);
        }
    }
    *p = '\0';
    return (size_t)(p - out);
}

static size_t copy_out(char *buf, size_t n, const char *src, size_t len)
{
    if (len == 0 || len + 1 > n) return 0;
    memcpy(buf, src, len + 1);
    return len;
}

size_t t2m_units_format_ts(char *buf, size_t n, int64_t ts_ms, enum t2m_ts_format f,
                           const struct t2m_tz *tz)
{
    char tmp[48];
    int len;
    switch (f) {
    case T2M_TS_UNIX:
        len = snprintf(tmp, sizeof(tmp), "%lld", (long long)floor_div(ts_ms, 1000));
        break;
    case T2M_TS_UNIX_MS:
        len = snprintf(tmp, sizeof(tmp), "%lld", (long long)ts_ms);
        break;
    case T2M_TS_ISO:
    default:
        len = (int)format_iso(tmp, ts_ms, tz);
        break;
    }
    return len > 0 ? copy_out(buf, n, tmp, (size_t)len) : 0;
}

static const double pow10_tab[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

size_t t2m_units_format_fixed(char *buf, size_t n, double v, int precision)
{
    if (!isfinite(v)) return 0;
    if (precision < 0) precision = 0;
    if (precision > 9) precision = 9;
    char tmp[400];
    size_t len;
    double scaled = round(v * pow10_tab[precision]); /* round() is half away from zero */
    if (fabs(scaled) < 9e18) {
        /* Print the rounded integer and insert the point: exact, no second rounding by printf. */
        long long r = (long long)scaled;
        bool neg = r < 0;
        unsigned long long a = neg ? (unsigned long long)(-r) : (unsigned long long)r;
        char digits[24];
        int nd = 0;
        do {
            digits[nd++] = (char)('0' + a % 10);
            a /= 10;
        } while (a);
        while (nd <= precision)
            digits[nd++] = '0';
        int frac = precision;
        int skip = 0;
        while (skip < frac && digits[skip] == '0')
            skip++;
        char *p = tmp;
        if (neg) *p++ = '-';
        for (int i = nd - 1; i >= frac; i--)
            *p++ = digits[i];
        if (skip < frac) {
            *p++ = '.';
            for (int i = frac - 1; i >= skip; i--)
                *p++ = digits[i];
        }
        *p = '\0';
        len = (size_t)(p - tmp);
    } else {
        /* Beyond 64-bit integers a double has no fraction left to round. */
        int l = snprintf(tmp, sizeof(tmp), "%.0f", v);
        if (l <= 0 || (size_t)l >= sizeof(tmp)) return 0;
        len = (size_t)l;
    }
    return copy_out(buf, n, tmp, len);
}

size_t t2m_units_format_shortest(char *buf, size_t n, double v)
{
    if (!isfinite(v)) return 0;
    char tmp[40];
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v) break;
    }
    return len > 0 ? copy_out(buf, n, tmp, (size_t)len) : 0;
}
