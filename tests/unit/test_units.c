/* test_units.c - unit conversion, rounding, shortest text and time zones. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "t2m_test.h"
#include <time.h>

#include "units.h"

static const char *fixed(double v, int precision)
{
    static char buf[64];
    if (t2m_units_format_fixed(buf, sizeof(buf), v, precision) == 0) return "<none>";
    return buf;
}

static const char *shortest(double v)
{
    static char buf[64];
    if (t2m_units_format_shortest(buf, sizeof(buf), v) == 0) return "<none>";
    return buf;
}

static const char *ts(int64_t ms, enum t2m_ts_format f, const struct t2m_tz *tz)
{
    static char buf[64];
    if (t2m_units_format_ts(buf, sizeof(buf), ms, f, tz) == 0) return "<none>";
    return buf;
}

static void test_spec_conversions(void)
{
    T2M_ASSERT_STR(fixed(t2m_units_speed(7.85, T2M_SPEED_KMH), 2), "28.26");
    T2M_ASSERT_STR(fixed(t2m_units_speed(7.85, T2M_SPEED_MPH), 2), "17.56");
    T2M_ASSERT_STR(fixed(t2m_units_speed(7.85, T2M_SPEED_KN), 2), "15.26");
    T2M_ASSERT_STR(fixed(t2m_units_speed(7.85, T2M_SPEED_MS), 2), "7.85");
    T2M_ASSERT_STR(fixed(t2m_units_distance(5, T2M_DIST_FT), 2), "16.4");
    T2M_ASSERT_STR(fixed(t2m_units_distance(5, T2M_DIST_M), 2), "5");
}

static void test_fixed_rounding(void)
{
    T2M_ASSERT_STR(fixed(5.0, 2), "5");
    T2M_ASSERT_STR(fixed(0.5, 2), "0.5");
    T2M_ASSERT_STR(fixed(180.0, 2), "180");
    T2M_ASSERT_STR(fixed(0.125, 2), "0.13");   /* half away from zero (0.125 is exact) */
    T2M_ASSERT_STR(fixed(-0.125, 2), "-0.13"); /* ... on both sides */
    T2M_ASSERT_STR(fixed(2.5, 0), "3");
    T2M_ASSERT_STR(fixed(-2.5, 0), "-3");
    T2M_ASSERT_STR(fixed(-0.001, 2), "0"); /* never "-0" */
    T2M_ASSERT_STR(fixed(-0.0, 2), "0");
    T2M_ASSERT_STR(fixed(0.0, 0), "0");
    T2M_ASSERT_STR(fixed(1.05, 1), "1.1");
    /* one rounding, from the binary value: 2.675 is 2.67499999999999982..., 1.005 is
     * 1.00499999999999989... (v * 100 lands exactly on the half for both) */
    T2M_ASSERT_STR(fixed(2.675, 2), "2.67");
    T2M_ASSERT_STR(fixed(-2.675, 2), "-2.67");
    T2M_ASSERT_STR(fixed(1.005, 2), "1");
    T2M_ASSERT_STR(fixed(1.015, 2), "1.01"); /* 1.01499999999999990... */
    T2M_ASSERT_STR(fixed(8.345, 2), "8.35"); /* 8.34500000000000063... */
    T2M_ASSERT_STR(fixed(12.3456789, 9), "12.3456789");
    T2M_ASSERT_STR(fixed(1.23456, 20), "1.23456"); /* precision clamped to 9 */
    T2M_ASSERT_STR(fixed(1.5, -3), "2");           /* ... and to 0 */
    T2M_ASSERT_STR(fixed(1e20, 2), "100000000000000000000");
    T2M_ASSERT_STR(fixed(NAN, 2), "<none>");
    T2M_ASSERT_STR(fixed(INFINITY, 2), "<none>");
    char small[3];
    CU_ASSERT_EQUAL(t2m_units_format_fixed(small, sizeof(small), 28.26, 2), 0);
    CU_ASSERT_EQUAL(t2m_units_format_fixed(small, sizeof(small), 28, 2), 2);
}

static void test_shortest(void)
{
    T2M_ASSERT_STR(shortest(40.7128), "40.7128");
    T2M_ASSERT_STR(shortest(-74.006), "-74.006");
    T2M_ASSERT_STR(shortest(1e-7), "1e-07");
    T2M_ASSERT_STR(shortest(0.1 + 0.2), "0.30000000000000004");
    T2M_ASSERT_STR(shortest(90), "90");
    T2M_ASSERT_STR(shortest(NAN), "<none>");
    /* Every printed text parses back to exactly the same double. */
    srand(42);
    for (int i = 0; i < 10000; i++) {
        double v = ((double)rand() / RAND_MAX - 0.5) * 360.0;
        CU_ASSERT_EQUAL(strtod(shortest(v), NULL), v);
    }
}

/* The text printf's %.15g / %.16g / %.17g gives: the first that parses back to v. */
static const char *printf_shortest(double v)
{
    static char buf[64];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

/* The fast path (no printf for |v| in [1e-4, 1e15) with at most 15 significant digits) prints
 * exactly what printf does, at its edges and for coordinates with every number of decimals. */
static void test_shortest_matches_printf(void)
{
    static const double edges[] = {1e-4,
                                   -1e-4,
                                   9.9999e-5,
                                   0.00010000000000000002,
                                   1e15,
                                   999999999999999.0,
                                   999999999999999.9,
                                   1e14 + 0.5,
                                   123456789012345.0,
                                   0.1,
                                   0.7,
                                   52.52,
                                   -33.8688,
                                   1.5,
                                   100,
                                   1e-3,
                                   2.675,
                                   4.35,
                                   1.005,
                                   0.3,
                                   1234.5678};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        T2M_ASSERT_STR(shortest(edges[i]), printf_shortest(edges[i]));
    srand(7);
    long bad = 0;
    for (int i = 0; i < 200000; i++) {
        int decimals = i % 12;
        double v = round(((double)rand() / RAND_MAX - 0.5) * 360.0 * t2m_pow10[decimals]) /
                   t2m_pow10[decimals];
        if (i % 3 == 0) v = ((double)rand() / RAND_MAX - 0.5) * 360.0; /* 17 digits */
        if (i % 7 == 0) v = ldexp((double)rand(), (rand() % 80) - 60); /* any magnitude */
        char want[64];
        snprintf(want, sizeof(want), "%s", printf_shortest(v));
        if (strcmp(shortest(v), want) != 0 && bad++ < 5)
            fprintf(stderr, "shortest(%.17g) = %s, printf: %s\n", v, shortest(v), want);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_names(void)
{
    enum t2m_speed_unit s;
    enum t2m_dist_unit d;
    enum t2m_ts_format f;
    const char *speeds[] = {"m/s", "km/h", "mph", "kn"};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(t2m_units_parse_speed(speeds[i], &s), 0);
        T2M_ASSERT_STR(t2m_units_speed_name(s), speeds[i]);
    }
    CU_ASSERT_EQUAL(t2m_units_parse_speed("kmh", &s), -1);
    CU_ASSERT_EQUAL(t2m_units_parse_speed(NULL, &s), -1);
    CU_ASSERT_EQUAL(t2m_units_parse_distance("ft", &d), 0);
    CU_ASSERT_EQUAL(d, T2M_DIST_FT);
    T2M_ASSERT_STR(t2m_units_distance_name(T2M_DIST_M), "m");
    CU_ASSERT_EQUAL(t2m_units_parse_distance("km", &d), -1);
    CU_ASSERT_EQUAL(t2m_units_parse_ts("unix_ms", &f), 0);
    CU_ASSERT_EQUAL(f, T2M_TS_UNIX_MS);
    T2M_ASSERT_STR(t2m_units_ts_name(T2M_TS_ISO), "iso");
    CU_ASSERT_EQUAL(t2m_units_parse_ts("ISO", &f), -1);
    CU_ASSERT_EQUAL(t2m_units_parse_system("imperial", &s, &d), 0);
    CU_ASSERT_EQUAL(s, T2M_SPEED_MPH);
    CU_ASSERT_EQUAL(d, T2M_DIST_FT);
    CU_ASSERT_EQUAL(t2m_units_parse_system("metric", &s, &d), 0);
    CU_ASSERT_EQUAL(s, T2M_SPEED_KMH);
    CU_ASSERT_EQUAL(d, T2M_DIST_M);
    CU_ASSERT_EQUAL(t2m_units_parse_system("nautical", &s, &d), -1);
}

static void test_tz_load(void)
{
    struct t2m_tz *tz = t2m_tz_load("UTC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tz);
    T2M_ASSERT_STR(t2m_tz_name(tz), "UTC");
    t2m_tz_free(tz);
    tz = t2m_tz_load("America/New_York");
    CU_ASSERT_PTR_NOT_NULL(tz);
    t2m_tz_free(tz);
    const char *bad[] = {"",           "Mars/Olympus",     "/etc/passwd", "../../../etc/passwd",
                         "America/..", "America", /* a directory */
                         "UTC ",       "America/New York", "zone.tab",    "Europe/Berlin\n",
                         NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_PTR_NULL(t2m_tz_load(bad[i]));
    CU_ASSERT_PTR_NULL(t2m_tz_load(NULL));
    char longname[300];
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CU_ASSERT_PTR_NULL(t2m_tz_load(longname));
    T2M_ASSERT_STR(t2m_tz_name(NULL), "UTC");
}

static void test_format_ts(void)
{
    struct t2m_tz *utc = t2m_tz_load("UTC");
    struct t2m_tz *ny = t2m_tz_load("America/New_York");
    struct t2m_tz *kolkata = t2m_tz_load("Asia/Kolkata");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(kolkata);
    const int64_t t = 1640995200000LL;
    T2M_ASSERT_STR(ts(t, T2M_TS_ISO, utc), "2022-01-01T00:00:00Z");
    T2M_ASSERT_STR(ts(t, T2M_TS_ISO, NULL), "2022-01-01T00:00:00Z");
    T2M_ASSERT_STR(ts(t, T2M_TS_ISO, ny), "2021-12-31T19:00:00-05:00");
    T2M_ASSERT_STR(ts(t, T2M_TS_ISO, kolkata), "2022-01-01T05:30:00+05:30");
    /* Alternating zones must not reuse one another's offsets. */
    T2M_ASSERT_STR(ts(t, T2M_TS_ISO, ny), "2021-12-31T19:00:00-05:00");
    T2M_ASSERT_STR(ts(t + 123, T2M_TS_ISO, utc), "2022-01-01T00:00:00.123Z");
    T2M_ASSERT_STR(ts(t + 5, T2M_TS_ISO, utc), "2022-01-01T00:00:00.005Z");
    /* Summer time, and both sides of the 2022-03-13 07:00Z spring-forward. */
    T2M_ASSERT_STR(ts(1656676800000LL, T2M_TS_ISO, ny), "2022-07-01T08:00:00-04:00");
    T2M_ASSERT_STR(ts(1647154799000LL, T2M_TS_ISO, ny), "2022-03-13T01:59:59-05:00");
    T2M_ASSERT_STR(ts(1647154800000LL, T2M_TS_ISO, ny), "2022-03-13T03:00:00-04:00");
    T2M_ASSERT_STR(ts(1647154799000LL, T2M_TS_ISO, ny), "2022-03-13T01:59:59-05:00");
    T2M_ASSERT_STR(ts(0, T2M_TS_ISO, utc), "1970-01-01T00:00:00Z");
    T2M_ASSERT_STR(ts(951782400000LL, T2M_TS_ISO, utc), "2000-02-29T00:00:00Z");
    T2M_ASSERT_STR(ts(t, T2M_TS_UNIX, ny), "1640995200");
    T2M_ASSERT_STR(ts(t + 999, T2M_TS_UNIX, ny), "1640995200");
    T2M_ASSERT_STR(ts(-1, T2M_TS_UNIX, utc), "-1"); /* floor */
    T2M_ASSERT_STR(ts(t + 999, T2M_TS_UNIX_MS, utc), "1640995200999");
    T2M_ASSERT_STR(ts(INT64_MAX, T2M_TS_ISO, utc), "<none>");
    T2M_ASSERT_STR(ts(INT64_MIN, T2M_TS_ISO, ny), "<none>");
    T2M_ASSERT_STR(ts(253402300799999LL, T2M_TS_ISO, utc), "9999-12-31T23:59:59.999Z");
    T2M_ASSERT_STR(ts(INT64_MIN, T2M_TS_UNIX_MS, utc), "-9223372036854775808");
    char small[11];
    CU_ASSERT_EQUAL(t2m_units_format_ts(small, sizeof(small), t, T2M_TS_ISO, utc), 0);
    CU_ASSERT_EQUAL(t2m_units_format_ts(small, 11, t, T2M_TS_UNIX, utc), 10);
    CU_ASSERT_EQUAL(t2m_units_format_ts(small, 10, t, T2M_TS_UNIX, utc), 0);
    t2m_tz_free(utc);
    t2m_tz_free(ny);
    t2m_tz_free(kolkata);
}

/* The zone offsets computed from the TZif data alone agree with the C library's (which needs
 * the process-wide TZ, hence only here, in a test) around every 3-day-7-hour step of
 * 1900..2100, in zones with every kind of rule: none, northern and southern DST, negative DST
 * (Dublin), half and quarter hours, rules that changed (Sao Paulo, Casablanca, Tehran). */
static void test_zone_offsets_match_libc(void)
{
    static const char *const zones[] = {
        "America/New_York",  "Europe/Berlin",    "Australia/Sydney", "Asia/Kolkata",
        "America/Sao_Paulo", "Europe/Dublin",    "Pacific/Chatham",  "Asia/Tehran",
        "Africa/Casablanca", "America/St_Johns", "Etc/GMT+5",        "Australia/Lord_Howe",
    };
    long checked = 0, wrong = 0;
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        struct t2m_tz *tz = t2m_tz_load(zones[z]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(tz);
        setenv("TZ", zones[z], 1);
        tzset();
        for (int64_t t = -2208988800LL; t < 4102444800LL; t += 3 * 86400 + 7 * 3600) {
            for (int64_t d = -3600; d <= 3600; d += 1800) {
                time_t tt = (time_t)(t + d);
                struct tm tm;
                if (!localtime_r(&tt, &tm)) continue;
                checked++;
                if (t2m_tz_offset(tz, t + d) != tm.tm_gmtoff && wrong++ < 5)
                    fprintf(stderr, "\n  %s at %lld: %ld, libc %ld", zones[z], (long long)(t + d),
                            t2m_tz_offset(tz, t + d), (long)tm.tm_gmtoff);
            }
        }
        t2m_tz_free(tz);
    }
    unsetenv("TZ");
    tzset();
    CU_ASSERT(checked > 1000000);
    CU_ASSERT_EQUAL(wrong, 0);
}

/* The same digits as printf's correctly rounded %.*f (trailing zeros cut), for every value but
 * exact binary ties, where printf rounds half to even and the bridge half away from zero. */
static void test_fixed_matches_printf(void)
{
    unsigned long long x = 88172645463325252ull;
    int mismatches = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int p = (int)(x % 4);
        /* values with few decimals, where the doubled rounding shows: k / 1000 and k / 10000 */
        double v = (double)(long long)(x % 2000001 - 1000000) / (i % 2 ? 1000.0 : 10000.0);
        char want[64];
        snprintf(want, sizeof want, "%.*f", p, v);
        char *dot = strchr(want, '.');
        if (dot) {
            char *end = want + strlen(want) - 1;
            while (*end == '0')
                *end-- = '\0';
            if (*end == '.') *end = '\0';
        }
        if (strcmp(want, "-0") == 0) strcpy(want, "0");
        const char *got = fixed(v, p);
        if (strcmp(got, want) != 0) {
            /* an exact tie: both are right by their own rule */
            static const double p10[] = {1, 10, 100, 1000};
            double t = v * p10[p];
            if (fabs(t - trunc(t)) == 0.5 && fma(v, p10[p], -t) == 0) continue;
            if (mismatches++ < 5) fprintf(stderr, "\n  %.17g p=%d: %s, printf %s", v, p, got, want);
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"zone offsets = the C library, 1900..2100", test_zone_offsets_match_libc},
        {"SPEC conversions (7.85 m/s, 5 m)", test_spec_conversions},
        {"fixed rounding", test_fixed_rounding},
        {"shortest round-trip text", test_shortest},
        {"fixed decimals = printf's correct rounding", test_fixed_matches_printf},
        {"shortest text = printf's, fast path included", test_shortest_matches_printf},
        {"unit names", test_names},
        {"time zone loading", test_tz_load},
        {"timestamp formatting", test_format_ts},
        {NULL, NULL},
    };
    return t2m_test_run("units", cases);
}
