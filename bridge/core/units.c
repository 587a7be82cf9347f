/* units.c - unit conversion, number and timestamp formatting (SPEC section 3). */
#include "units.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TZ_NAME_MAX 128
#define OFFSET_BLOCK_S 900 /* offsets are cached per 15-minute block of UTC time */

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

/* In enum order, NULL-terminated: the configuration checks its values against these too. */
const char *const t2m_units_speed_names[] = {"m/s", "km/h", "mph", "kn", NULL};
const char *const t2m_units_dist_names[] = {"m", "ft", NULL};
const char *const t2m_units_ts_names[] = {"iso", "unix", "unix_ms", NULL};
const char *const t2m_units_system_names[] = {"metric", "imperial", NULL};

const char *t2m_units_speed_name(enum t2m_speed_unit unit)
{
    return (unsigned)unit < 4 ? t2m_units_speed_names[unit] : "m/s";
}

const char *t2m_units_distance_name(enum t2m_dist_unit unit)
{
    return (unsigned)unit < 2 ? t2m_units_dist_names[unit] : "m";
}

const char *t2m_units_ts_name(enum t2m_ts_format f)
{
    return (unsigned)f < 3 ? t2m_units_ts_names[f] : "iso";
}

static int find_name(const char *s, const char *const *names)
{
    if (!s) return -1;
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

int t2m_units_parse_speed(const char *s, enum t2m_speed_unit *out)
{
    int i = find_name(s, t2m_units_speed_names);
    if (i < 0) return -1;
    *out = (enum t2m_speed_unit)i;
    return 0;
}

int t2m_units_parse_distance(const char *s, enum t2m_dist_unit *out)
{
    int i = find_name(s, t2m_units_dist_names);
    if (i < 0) return -1;
    *out = (enum t2m_dist_unit)i;
    return 0;
}

int t2m_units_parse_ts(const char *s, enum t2m_ts_format *out)
{
    int i = find_name(s, t2m_units_ts_names);
    if (i < 0) return -1;
    *out = (enum t2m_ts_format)i;
    return 0;
}

int t2m_units_parse_system(const char *s, enum t2m_speed_unit *speed, enum t2m_dist_unit *dist)
{
    if (!s) return -1;
    if (strcmp(s, t2m_units_system_names[0]) == 0) {
        *speed = T2M_SPEED_KMH;
        *dist = T2M_DIST_M;
        return 0;
    }
    if (strcmp(s, t2m_units_system_names[1]) == 0) {
        *speed = T2M_SPEED_MPH;
        *dist = T2M_DIST_FT;
        return 0;
    }
    return -1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
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

/* ---- time zones: the TZif file read once, offsets computed from it (no TZ, no tzset) ---- */

/* A POSIX TZ rule (RFC 8536 section 3.3, the TZif footer): "EST5EDT,M3.2.0,M11.1.0". */
struct tz_rule_date {
    char kind; /* 'M' month.week.day, 'J' Julian day 1..365 (no Feb 29), 'D' day 0..365 */
    int month, week, day;
    long time; /* seconds after local midnight (may be negative or past 24 h) */
};

struct tz_posix {
    bool valid, has_dst;
    long std_off, dst_off; /* seconds east of UTC */
    struct tz_rule_date start, end;
};

struct t2m_tz {
    char name[TZ_NAME_MAX];
    bool utc;
    size_t n;              /* transitions */
    int64_t *at;           /* transition times (Unix s), ascending */
    long *off;             /* the offset in force from at[i] on */
    long first_off;        /* before the first transition */
    struct tz_posix posix; /* after the last transition */
    /* Cache of the last block looked up: the loop thread is the only user (DESIGN.md). */
    bool cached;
    int64_t block;
    long offset;
};

static const char *tz_name_end(const char *p)
{
    if (*p == '<') {
        const char *e = strchr(p, '>');
        return e ? e + 1 : NULL;
    }
    const char *s = p;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] -> seconds; NULL when malformed. */
static const char *tz_hms(const char *p, long *out)
{
    int sign = 1;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (*p < '0' || *p > '9') return NULL;
    long v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i && *p != ':') break;
        if (i) p++;
        if (*p < '0' || *p > '9') return NULL;
        while (*p >= '0' && *p <= '9')
            v[i] = v[i] * 10 + (*p++ - '0');
    }
    *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    return p;
}

static const char *tz_date(const char *p, struct tz_rule_date *d)
{
    d->time = 7200; /* 02:00 unless given */
    char *e;
    if (*p == 'M') {
        d->kind = 'M';
        d->month = (int)strtol(p + 1, &e, 10);
        if (*e != '.') return NULL;
        d->week = (int)strtol(e + 1, &e, 10);
        if (*e != '.') return NULL;
        d->day = (int)strtol(e + 1, &e, 10);
        if (d->month < 1 || d->month > 12 || d->week < 1 || d->week > 5 || d->day < 0 || d->day > 6)
            return NULL;
    } else if (*p == 'J' || (*p >= '0' && *p <= '9')) {
        d->kind = *p == 'J' ? 'J' : 'D';
        d->day = (int)strtol(*p == 'J' ? p + 1 : p, &e, 10);
    } else {
        return NULL;
    }
    p = e;
    if (*p == '/') p = tz_hms(p + 1, &d->time);
    return p;
}

static bool tz_posix_parse(const char *s, struct tz_posix *z)
{
    memset(z, 0, sizeof(*z));
    const char *p = tz_name_end(s);
    long off;
    if (!p || !(p = tz_hms(p, &off))) return false;
    z->std_off = -off; /* POSIX counts west of UTC */
    z->valid = true;
    if (!*p) return true;
    if (!(p = tz_name_end(p))) return false;
    z->dst_off = z->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = tz_hms(p, &off))) return false;
        z->dst_off = -off;
    }
    if (*p != ',' || !(p = tz_date(p + 1, &z->start)) || *p != ',' ||
        !(p = tz_date(p + 1, &z->end)) || *p)
        return false;
    z->has_dst = true;
    return true;
}

int64_t t2m_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

bool t2m_leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Local midnight-based seconds of a rule date in year y (days since the epoch * 86400 + time). */
static int64_t tz_rule_local(const struct tz_rule_date *d, int64_t y)
{
    int64_t days;
    if (d->kind == 'M') {
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int64_t first = t2m_days_from_civil(y, (unsigned)d->month, 1);
        int wd = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
        int delta = (d->day - wd + 7) % 7;
        int64_t day = first + delta + 7 * (d->week - 1);
        int len = mdays[d->month - 1] + (d->month == 2 && t2m_leap_year(y));
        if (d->week == 5 && day >= first + len) day -= 7;
        days = day;
    } else if (d->kind == 'J') {
        days = t2m_days_from_civil(y, 1, 1) + d->day - 1 + (t2m_leap_year(y) && d->day >= 60);
    } else {
        days = t2m_days_from_civil(y, 1, 1) + d->day;
    }
    return days * 86400 + d->time;
}

static long tz_posix_offset(const struct tz_posix *z, int64_t t)
{
    if (!z->has_dst) return z->std_off;
    int64_t y;
    unsigned m, d;
    civil_from_days(floor_div(t + z->std_off, 86400), &y, &m, &d);
    int64_t start = tz_rule_local(&z->start, y) - z->std_off; /* in standard time */
    int64_t end = tz_rule_local(&z->end, y) - z->dst_off;     /* in daylight time */
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? z->dst_off : z->std_off;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parses a TZif file (RFC 8536; version 2 and up: the 64-bit block and the footer). */
static bool tz_parse(struct t2m_tz *tz, const unsigned char *b, size_t len)
{
    if (len < 44 || memcmp(b, "TZif", 4) != 0) return false;
    /* skip the version-1 block: its counts are at offsets 20..43 */
    size_t cnt[6];
    for (int i = 0; i < 6; i++)
        cnt[i] = be32(b + 20 + 4 * i);
    size_t v1 = 44 + cnt[3] * 5 + cnt[4] * 6 + cnt[5] + cnt[2] * 8 + cnt[1] + cnt[0];
    if (b[4] < '2' || v1 + 44 > len || memcmp(b + v1, "TZif", 4) != 0) return false;
    const unsigned char *h = b + v1;
    for (int i = 0; i < 6; i++)
        cnt[i] = be32(h + 20 + 4 * i);
    size_t isut = cnt[0], isstd = cnt[1], leapc = cnt[2], timec = cnt[3], typec = cnt[4],
           charc = cnt[5];
    size_t need = 44 + timec * 9 + typec * 6 + charc + leapc * 12 + isstd + isut;
    if (typec == 0 || typec > 256 || timec > 100000 || v1 + need > len) return false;
    const unsigned char *t = h + 44, *idx = t + timec * 8, *types = idx + timec;
    tz->at = calloc(timec ? timec : 1, sizeof(*tz->at));
    tz->off = calloc(timec ? timec : 1, sizeof(*tz->off));
    if (!tz->at || !tz->off) return false;
    for (size_t i = 0; i < timec; i++) {
        uint64_t u = (uint64_t)be32(t + 8 * i) << 32 | be32(t + 8 * i + 4);
        tz->at[i] = (int64_t)u;
        if (idx[i] >= typec) return false;
        tz->off[i] = (long)(int32_t)be32(types + 6 * idx[i]);
    }
    tz->n = timec;
    tz->first_off = (long)(int32_t)be32(types); /* type 0: before the first transition */
    /* the footer: "\nTZ-string\n" */
    const unsigned char *f = h + need;
    size_t rest = len - v1 - need;
    char rule[128] = "";
    if (rest >= 2 && f[0] == '\n') {
        const unsigned char *nl = memchr(f + 1, '\n', rest - 1);
        size_t rl = nl ? (size_t)(nl - f - 1) : 0;
        if (rl < sizeof(rule)) {
            memcpy(rule, f + 1, rl);
            rule[rl] = '\0';
        }
    }
    if (rule[0] && !tz_posix_parse(rule, &tz->posix)) return false;
    return true;
}

/* A zone name becomes a path under the tz database: only plain relative names. */
bool t2m_tz_name_ok(const char *name)
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

struct t2m_tz *t2m_tz_parse(const char *name, const unsigned char *tzif, size_t len)
{
    if (!name || !t2m_tz_name_ok(name)) return NULL;
    struct t2m_tz *tz = calloc(1, sizeof(*tz));
    if (!tz) return NULL;
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    /* "UTC" needs no tz database: a container without tzdata still runs with the default. */
    tz->utc = strcmp(name, "UTC") == 0;
    if (tz->utc) return tz;
    if (!tzif || !tz_parse(tz, tzif, len)) {
        t2m_tz_free(tz);
        return NULL;
    }
    return tz;
}

void t2m_tz_free(struct t2m_tz *tz)
{
    if (!tz) return;
    free(tz->at);
    free(tz->off);
    free(tz);
}

const char *t2m_tz_name(const struct t2m_tz *tz)
{
    return tz ? tz->name : "UTC";
}

/* The offset in force at Unix time sec: the last transition at or before it; the footer rule
 * after the last one (or with none at all); type 0 before the first. */
static long zone_offset_at(const struct t2m_tz *tz, int64_t sec)
{
    if (tz->n == 0) return tz->posix.valid ? tz_posix_offset(&tz->posix, sec) : tz->first_off;
    if (sec < tz->at[0]) return tz->first_off;
    if (sec >= tz->at[tz->n - 1])
        return tz->posix.valid ? tz_posix_offset(&tz->posix, sec) : tz->off[tz->n - 1];
    size_t lo = 0, hi = tz->n - 1; /* at[lo] <= sec < at[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= sec)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off[lo];
}

/* UTC offset in seconds of tz at Unix time sec. Zone transitions fall on 15-minute boundaries in
 * practice; a block whose two ends disagree is never cached, so the answer is exact regardless. */
long t2m_tz_offset(const struct t2m_tz *ctz, int64_t sec)
{
    if (!ctz || ctz->utc) return 0;
    /* The cache is the only mutable part; the zone was allocated non-const by t2m_tz_parse. */
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
    long off = t2m_tz_offset(tz, sec);
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

const double t2m_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                              1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                              1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The integer a / 10^frac as text, with its sign, no trailing fractional zero and no point
 * when nothing follows it ("-12.5", "0.0001", "7"). tmp holds at least 48 bytes. */
static size_t scaled_text(char *tmp, unsigned long long a, bool neg, int frac)
{
    char digits[48];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + a % 10);
        a /= 10;
    } while (a);
    while (nd <= frac)
        digits[nd++] = '0';
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
    return (size_t)(p - tmp);
}

size_t t2m_units_format_fixed(char *buf, size_t n, double v, int precision)
{
    if (!isfinite(v)) return 0;
    if (precision < 0) precision = 0;
    if (precision > 9) precision = 9;
    char tmp[400];
    size_t len;
    /* Correctly rounded from the binary value, as printf would (half away from zero on an exact
     * tie): v * 10^p is itself rounded, and can land exactly on a half that v is not on (2.675 is
     * 2.67499999999999982...; times 100 it becomes 267.5). fma gives the exact error of that
     * product, which says which way the true value lies. */
    double p10 = t2m_pow10[precision];
    double product = v * p10;
    double scaled = round(product); /* round() is half away from zero */
    if (fabs(product - trunc(product)) == 0.5) {
        double err = fma(v, p10, -product);
        if (err != 0) scaled = err > 0 ? ceil(product) : floor(product);
    }
    if (fabs(scaled) < 9e18) {
        /* Print the rounded integer and insert the point: exact, no second rounding by printf. */
        long long r = (long long)scaled;
        bool neg = r < 0;
        unsigned long long a = neg ? (unsigned long long)(-r) : (unsigned long long)r;
        len = scaled_text(tmp, a, neg, precision);
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
    char tmp[48];
    /* Without printf for what %.15g prints in fixed notation (1e-4 <= |v| < 1e15): the fewest
     * decimals k for which an integer m < 10^15 has m / 10^k == |v|. m and 10^k (k <= 22) are
     * exact doubles and IEEE division rounds correctly, so that decimal parses back to |v|;
     * and a decimal of at most 15 significant digits survives the trip through a double
     * (DBL_DIG), so it is also the text %.15g prints. Same result, a tenth of the time. */
    double a = fabs(v);
    if (a >= 1e-4 && a < 1e15) {
        for (int k = 0; k <= 19; k++) {
            double m = round(a * t2m_pow10[k]);
            if (m >= 1e15) break;
            if (m / t2m_pow10[k] == a)
                return copy_out(buf, n, tmp, scaled_text(tmp, (unsigned long long)m, v < 0, k));
        }
    }
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v) break;
    }
    return len > 0 ? copy_out(buf, n, tmp, (size_t)len) : 0;
}
