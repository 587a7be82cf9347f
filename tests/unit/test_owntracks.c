/* test_owntracks.c - OwnTracks location payloads (SPEC section 5). */
#include <json-c/json.h>
#include <stdbool.h>

#include "owntracks.h"
#include "t2m_test.h"

/* The SPEC's sample device_update: 7.85 m/s, 5 m, 180 degrees, 2022-01-01T00:00:00Z */
static struct t2m_update sample(void)
{
    struct t2m_update u;
    memset(&u, 0, sizeof u);
    snprintf(u.device_token, sizeof u.device_token, "e4855fba-7c1e");
    u.device_token_len = strlen(u.device_token);
    u.has =
        T2M_HAS_LAT | T2M_HAS_LON | T2M_HAS_SPEED | T2M_HAS_ACCURACY | T2M_HAS_HEADING | T2M_HAS_TS;
    u.lat = 40.7128;
    u.lon = -74.006;
    snprintf(u.lat_text, sizeof u.lat_text, "40.7128");
    snprintf(u.lon_text, sizeof u.lon_text, "-74.006");
    u.speed = 7.85;
    u.accuracy = 5.0;
    u.heading = 180.0;
    u.ts_ms = 1640995200000LL;
    return u;
}

static json_object *parse(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    if (o && json_tokener_get_parse_end(tok) != len) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static long long get_int(json_object *o, const char *k)
{
    json_object *v = NULL;
    CU_ASSERT_FATAL(json_object_object_get_ex(o, k, &v));
    CU_ASSERT_FATAL(json_object_is_type(v, json_type_int));
    return (long long)json_object_get_int64(v);
}

static void test_tid(void)
{
    char t[3];
    t2m_owntracks_tid(t, "Van 12", 6);
    T2M_ASSERT_STR(t, "VA");
    t2m_owntracks_tid(t, "e4855fba-7c1e", 13);
    T2M_ASSERT_STR(t, "E4");
    t2m_owntracks_tid(t, "a", 1);
    T2M_ASSERT_STR(t, "AX");
    t2m_owntracks_tid(t, "", 0);
    T2M_ASSERT_STR(t, "XX");
    t2m_owntracks_tid(t, NULL, 5);
    T2M_ASSERT_STR(t, "XX");
    t2m_owntracks_tid(t, "-- 7", 4);
    T2M_ASSERT_STR(t, "7X");
    t2m_owntracks_tid(t, "\xc3\xa9t\"9", 5); /* "ét"9": non-ASCII and quotes skipped */
    T2M_ASSERT_STR(t, "T9");
    t2m_owntracks_tid(t, "a\0b", 3); /* tokens may hold NUL: the length counts */
    T2M_ASSERT_STR(t, "AB");
    t2m_owntracks_tid(t, "abc", 1);
    T2M_ASSERT_STR(t, "AX");
}

static void test_sample_payload(void)
{
    char buf[512];
    struct t2m_update u = sample();
    size_t n = t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 42);
    T2M_ASSERT_STR(buf,
                   "{\"_type\":\"location\",\"lat\":40.7128,\"lon\":-74.006,\"tst\":1640995200,"
                   "\"vel\":28,\"acc\":5,\"cog\":180,\"tid\":\"E4\"}");
    CU_ASSERT_EQUAL(n, strlen(buf));

    json_object *o = parse(buf, n);
    CU_ASSERT_FATAL(o != NULL);
    json_object *v = NULL;
    CU_ASSERT(json_object_object_get_ex(o, "lat", &v) && json_object_is_type(v, json_type_double));
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(v), 40.7128, 0);
    CU_ASSERT_EQUAL(get_int(o, "tst"), 1640995200);
    CU_ASSERT_EQUAL(get_int(o, "vel"), 28);
    CU_ASSERT_EQUAL(get_int(o, "acc"), 5);
    CU_ASSERT_EQUAL(get_int(o, "cog"), 180);
    json_object_put(o);
}

static void test_rounding(void)
{
    char buf[512];
    struct t2m_update u = sample();
    u.accuracy = 0.4;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"acc\":1,") != NULL);
    u.accuracy = 0.0;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"acc\":1,") != NULL);
    u.accuracy = 5.5;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"acc\":6,") != NULL);

    u.heading = 359.7; /* rounds to 360, which is north: 0 */
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"cog\":0,") != NULL);
    u.heading = 360.0;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"cog\":0,") != NULL);
    u.heading = 89.4;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"cog\":89,") != NULL);

    u.speed = 0.0;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"vel\":0,") != NULL);
    u.speed = 100.0; /* 360 km/h: vel stays km/h whatever units.* says */
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"vel\":360,") != NULL);

    /* milliseconds are floored to the second */
    u.ts_ms = 1640995200999LL;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"tst\":1640995200,") != NULL);
    u.ts_ms = -1;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"tst\":-1,") != NULL);
}

static void test_absent_fields(void)
{
    char buf[512];
    struct t2m_update u = sample();
    u.has = T2M_HAS_LAT | T2M_HAS_LON;
    size_t n = t2m_owntracks_payload(buf, sizeof buf, &u, "VA", 1700000000);
    /* no timestamp upstream: now */
    T2M_ASSERT_STR(buf,
                   "{\"_type\":\"location\",\"lat\":40.7128,\"lon\":-74.006,\"tst\":1700000000,"
                   "\"tid\":\"VA\"}");
    CU_ASSERT_EQUAL(n, strlen(buf));

    u.has = T2M_HAS_LAT | T2M_HAS_SPEED | T2M_HAS_TS;
    buf[0] = 'z';
    CU_ASSERT_EQUAL(t2m_owntracks_payload(buf, sizeof buf, &u, "VA", 0), 0);
    CU_ASSERT_EQUAL(buf[0], '\0');
    u.has = T2M_HAS_LON;
    CU_ASSERT_EQUAL(t2m_owntracks_payload(buf, sizeof buf, &u, "VA", 0), 0);
    CU_ASSERT_EQUAL(t2m_owntracks_payload(buf, sizeof buf, NULL, "VA", 0), 0);
    CU_ASSERT_EQUAL(t2m_owntracks_payload(NULL, 0, &u, "VA", 0), 0);
}

static void test_coordinates_text(void)
{
    char buf[512];
    struct t2m_update u = sample();
    /* printed as received, never re-rounded through %.17g */
    snprintf(u.lat_text, sizeof u.lat_text, "1e-07");
    u.lat = 1e-7;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"lat\":1e-07,") != NULL);
    /* an update built without the text: the shortest round-trip form */
    u.lat_text[0] = '\0';
    u.lon_text[0] = '\0';
    u.lat = 40.7128;
    u.lon = -74.006;
    t2m_owntracks_payload(buf, sizeof buf, &u, "E4", 0);
    CU_ASSERT(strstr(buf, "\"lat\":40.7128,\"lon\":-74.006,") != NULL);
}

static void test_tid_sanitised(void)
{
    char buf[512];
    struct t2m_update u = sample();
    size_t n = t2m_owntracks_payload(buf, sizeof buf, &u, "\"\\", 0);
    CU_ASSERT(n > 0);
    CU_ASSERT(strstr(buf, "\"tid\":\"XX\"}") != NULL);
    json_object *o = parse(buf, n);
    CU_ASSERT(o != NULL);
    json_object_put(o);
    CU_ASSERT(t2m_owntracks_payload(buf, sizeof buf, &u, NULL, 0) > 0);
    CU_ASSERT(strstr(buf, "\"tid\":\"XX\"}") != NULL);
}

static void test_small_buffer(void)
{
    char full[512], buf[512];
    struct t2m_update u = sample();
    size_t len = t2m_owntracks_payload(full, sizeof full, &u, "E4", 0);
    CU_ASSERT_FATAL(len > 0);
    for (size_t n = 0; n <= len; n++) {
        memset(buf, 'z', sizeof buf);
        CU_ASSERT_EQUAL(t2m_owntracks_payload(buf, n, &u, "E4", 0), 0);
        if (n > 0) CU_ASSERT_EQUAL(buf[0], '\0');
        CU_ASSERT_EQUAL(buf[n], 'z'); /* nothing written past n */
    }
    CU_ASSERT_EQUAL(t2m_owntracks_payload(buf, len + 1, &u, "E4", 0), len);
    T2M_ASSERT_STR(buf, full);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"tid from alias or token", test_tid},
        {"SPEC sample location", test_sample_payload},
        {"vel/acc/cog/tst rounding", test_rounding},
        {"absent fields left out, lat/lon required", test_absent_fields},
        {"lat/lon printed as received", test_coordinates_text},
        {"tid cannot break the JSON", test_tid_sanitised},
        {"too small a buffer gives 0", test_small_buffer},
        {NULL, NULL},
    };
    return t2m_test_run("owntracks", cases);
}
