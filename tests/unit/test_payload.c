/* test_payload.c - position payload, attribute values and status payload (SPEC section 2). */
#include "payload.h"
#include "files.h"
#include "t2m_test.h"

#define SAMPLE                                                                                     \
    "{\"type\":\"device_update\",\"device_token\":\"e4855fba-0d7e-4dbd-baad-aae9d0b90c15\","       \
    "\"track_token\":\"9F6A4F03-300B-4C14-8847-DAC537E8D70C\",\"position\":{\"Latitude\":40.7128," \
    "\"Longitude\":-74.006,\"Speed\":7.85,\"Accuracy\":5.0,\"Timestamp\":1640995200,"              \
    "\"Heading\":180.0}}"

#define SPEC_PAYLOAD                                                                               \
    "{\"instance_id\":\"I\",\"device_token\":\"e4855fba-0d7e-4dbd-baad-aae9d0b90c15\","            \
    "\"track_token\":\"9F6A4F03-300B-4C14-8847-DAC537E8D70C\",\"latitude\":40.7128,"               \
    "\"longitude\":-74.006,\"speed\":28.26,\"speed_unit\":\"km/h\",\"accuracy\":5,"                \
    "\"accuracy_unit\":\"m\",\"gps_accuracy\":5,\"heading\":180,"                                  \
    "\"timestamp\":\"2022-01-01T00:00:00Z\"}"

static struct t2m_parser *parser;
static struct t2m_message msg;
static struct t2m_tz *utc, *ny;
static char out[T2M_PAYLOAD_MAX];

static const struct t2m_update *sample(void)
{
    enum t2m_parse_result r = t2m_protocol_parse(parser, SAMPLE, strlen(SAMPLE), &msg, NULL, 0);
    CU_ASSERT_EQUAL(r, T2M_PARSE_OK);
    return &msg.update;
}

static struct t2m_units metric(void)
{
    struct t2m_units u = {T2M_SPEED_KMH, T2M_DIST_M, T2M_TS_ISO, 2, utc};
    return u;
}

static void test_spec_example(void)
{
    struct t2m_units units = metric();
    size_t l = t2m_payload_position(out, sizeof(out), "I", 1, sample(), &units);
    T2M_ASSERT_STR(out, SPEC_PAYLOAD);
    CU_ASSERT_EQUAL(l, strlen(SPEC_PAYLOAD));
    /* NULL units are the SPEC defaults, so the same bytes. */
    t2m_payload_position(out, sizeof(out), "I", 1, sample(), NULL);
    T2M_ASSERT_STR(out, SPEC_PAYLOAD);
}

static void test_other_units(void)
{
    struct t2m_units units = {T2M_SPEED_MPH, T2M_DIST_FT, T2M_TS_ISO, 2, ny};
    t2m_payload_position(out, sizeof(out), "I", 1, sample(), &units);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"speed\":17.56,\"speed_unit\":\"mph\","));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"accuracy\":16.4,\"accuracy_unit\":\"ft\","
                                       "\"gps_accuracy\":5,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"timestamp\":\"2021-12-31T19:00:00-05:00\"}"));
    units.speed = T2M_SPEED_KN;
    units.timestamp = T2M_TS_UNIX;
    t2m_payload_position(out, sizeof(out), "I", 1, sample(), &units);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"speed\":15.26,\"speed_unit\":\"kn\","));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"timestamp\":1640995200}"));
    units.speed = T2M_SPEED_MS;
    units.timestamp = T2M_TS_UNIX_MS;
    units.precision = 0;
    t2m_payload_position(out, sizeof(out), "I", 1, sample(), &units);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"speed\":8,\"speed_unit\":\"m/s\","));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"timestamp\":1640995200000}"));
    /* Latitude and longitude are never rounded. */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"latitude\":40.7128,\"longitude\":-74.006,"));
}

static void test_absent_fields(void)
{
    struct t2m_units units = metric();
    const char *m =
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Latitude\":1.5,"
        "\"Longitude\":\"bad\",\"Speed\":null,\"Heading\":0}}";
    CU_ASSERT_EQUAL_FATAL(t2m_protocol_parse(parser, m, strlen(m), &msg, NULL, 0), T2M_PARSE_OK);
    t2m_payload_position(out, sizeof(out), "I", 1, &msg.update, &units);
    T2M_ASSERT_STR(out,
                   "{\"instance_id\":\"I\",\"device_token\":\"d\",\"latitude\":1.5,\"heading\":0}");
    m = "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Accuracy\":0.004}}";
    CU_ASSERT_EQUAL_FATAL(t2m_protocol_parse(parser, m, strlen(m), &msg, NULL, 0), T2M_PARSE_OK);
    t2m_payload_position(out, sizeof(out), "I", 1, &msg.update, &units);
    T2M_ASSERT_STR(out, "{\"instance_id\":\"I\",\"device_token\":\"d\",\"accuracy\":0,"
                        "\"accuracy_unit\":\"m\",\"gps_accuracy\":0}");
}

static void test_escaping_and_bounds(void)
{
    struct t2m_units units = metric();
    struct t2m_update u;
    memset(&u, 0, sizeof(u));
    memcpy(u.device_token, "a\"\0\n\xff", 5);
    u.device_token_len = 5;
    u.has = T2M_HAS_LAT;
    u.lat = 0.1 + 0.2; /* no lat_text: derived */
    size_t l = t2m_payload_position(out, sizeof(out), "i/\"x", 4, &u, &units);
    T2M_ASSERT_STR(out, "{\"instance_id\":\"i/\\\"x\",\"device_token\":\"a\\\"\\u0000\\n\\u00ff\","
                        "\"latitude\":0.30000000000000004}");
    CU_ASSERT_EQUAL(l, strlen(out));
    /* Exactly enough room (length + NUL) works, one byte less gives 0 and an empty string. */
    const struct t2m_update *s = sample();
    size_t full = t2m_payload_position(out, sizeof(out), "I", 1, s, &units);
    for (size_t n = 0; n <= full; n++) {
        char small[T2M_PAYLOAD_MAX];
        memset(small, 'X', sizeof(small));
        CU_ASSERT_EQUAL(t2m_payload_position(small, n, "I", 1, s, &units), 0);
        if (n > 0) CU_ASSERT_EQUAL(small[0], '\0');
        CU_ASSERT_EQUAL(small[n], 'X'); /* nothing written past n */
    }
    CU_ASSERT_EQUAL(t2m_payload_position(out, full + 1, "I", 1, s, &units), full);
    /* The worst case (256-byte tokens of bytes needing \u00XX) fits T2M_PAYLOAD_MAX. */
    memset(&u, 0, sizeof(u));
    memset(u.device_token, 1, T2M_TOKEN_MAX);
    u.device_token_len = T2M_TOKEN_MAX;
    memset(u.track_token, 0xff, T2M_TOKEN_MAX);
    u.track_token_len = T2M_TOKEN_MAX;
    u.has = T2M_HAS_TRACK | T2M_HAS_SPEED | T2M_HAS_ACCURACY | T2M_HAS_HEADING | T2M_HAS_TS;
    u.speed = 1e300;
    u.accuracy = 1e300;
    u.heading = 359.999;
    u.ts_ms = 253402300799999LL;
    units.precision = 9;
    char inst[T2M_TOKEN_MAX];
    memset(inst, '\x7f', sizeof(inst));
    u.has |= T2M_HAS_LAT | T2M_HAS_LON;
    u.lat = -1.2345678901234567e-300;
    u.lon = -1.2345678901234567e-300;
    size_t worst = t2m_payload_position(out, sizeof(out), inst, sizeof(inst), &u, &units);
    CU_ASSERT(worst > 3 * 1538 && worst < T2M_PAYLOAD_MAX);
}

static const char *attr(enum t2m_attr a, const struct t2m_update *u, const struct t2m_units *un)
{
    static char buf[300];
    if (t2m_payload_state_attribute(buf, sizeof(buf), a, u, NULL, un) == 0) return "<absent>";
    return buf;
}

static void test_attributes(void)
{
    struct t2m_units units = metric();
    const struct t2m_update *u = sample();
    T2M_ASSERT_STR(attr(T2M_ATTR_LATITUDE, u, &units), "40.7128");
    T2M_ASSERT_STR(attr(T2M_ATTR_LONGITUDE, u, &units), "-74.006");
    T2M_ASSERT_STR(attr(T2M_ATTR_SPEED, u, &units), "28.26");
    T2M_ASSERT_STR(attr(T2M_ATTR_ACCURACY, u, &units), "5");
    T2M_ASSERT_STR(attr(T2M_ATTR_HEADING, u, &units), "180");
    T2M_ASSERT_STR(attr(T2M_ATTR_TIMESTAMP, u, &units), "2022-01-01T00:00:00Z");
    T2M_ASSERT_STR(attr(T2M_ATTR_TRACK_TOKEN, u, &units), "9F6A4F03-300B-4C14-8847-DAC537E8D70C");
    units.timestamp = T2M_TS_UNIX_MS;
    units.distance = T2M_DIST_FT;
    T2M_ASSERT_STR(attr(T2M_ATTR_TIMESTAMP, u, &units), "1640995200000");
    T2M_ASSERT_STR(attr(T2M_ATTR_ACCURACY, u, &units), "16.4");
    T2M_ASSERT_STR(attr(T2M_ATTR_COUNT, u, &units), "<absent>");
    struct t2m_update empty;
    memset(&empty, 0, sizeof(empty));
    for (int a = 0; a < T2M_ATTR_COUNT; a++)
        T2M_ASSERT_STR(attr((enum t2m_attr)a, &empty, &units), "<absent>");
    const char *names[] = {"latitude",  "longitude",   "speed",     "accuracy", "heading",
                           "timestamp", "track_token", "last_seen", "driving"};
    CU_ASSERT_EQUAL(sizeof(names) / sizeof(names[0]), T2M_ATTR_COUNT);
    for (int a = 0; a < T2M_ATTR_COUNT; a++)
        T2M_ASSERT_STR(t2m_payload_attr_name((enum t2m_attr)a), names[a]);
    /* last_seen and driving come from the state, not from the update */
    struct t2m_state_extra x = {"Van 12", 1640995201000, 1, "Depot", NULL, 0};
    char buf[64];
    units.timestamp = T2M_TS_ISO;
    CU_ASSERT(t2m_payload_state_attribute(buf, sizeof(buf), T2M_ATTR_LAST_SEEN, u, &x, &units));
    T2M_ASSERT_STR(buf, "2022-01-01T00:00:01Z");
    CU_ASSERT(t2m_payload_state_attribute(buf, sizeof(buf), T2M_ATTR_DRIVING, u, &x, &units));
    T2M_ASSERT_STR(buf, "true");
    x.driving = -1;
    CU_ASSERT_EQUAL(t2m_payload_state_attribute(buf, sizeof(buf), T2M_ATTR_DRIVING, u, &x, &units),
                    0);
    CU_ASSERT_EQUAL(
        t2m_payload_state_attribute(buf, sizeof(buf), T2M_ATTR_LAST_SEEN, u, NULL, &units), 0);
    units.timestamp = T2M_TS_UNIX_MS;
    char small[4];
    CU_ASSERT_EQUAL(
        t2m_payload_state_attribute(small, sizeof(small), T2M_ATTR_SPEED, u, NULL, &units), 0);
    CU_ASSERT_EQUAL(
        t2m_payload_state_attribute(small, sizeof(small), T2M_ATTR_TIMESTAMP, u, NULL, &units), 0);
    CU_ASSERT_EQUAL(
        t2m_payload_state_attribute(small, sizeof(small), T2M_ATTR_HEADING, u, NULL, &units), 3);
}

/* SPEC 2.1: the state payload is the position plus name, last_seen, driving, zone. */
static void test_state_payload(void)
{
    struct t2m_units units = metric();
    struct t2m_state_extra x = {"Van \"12\"", 1640995201000, 1, "Depot", NULL, 0};
    size_t n = t2m_payload_state(out, sizeof(out), "I", 1, sample(), &x, &units);
    CU_ASSERT(n > 0);
    T2M_ASSERT_STR(out,
                   "{\"instance_id\":\"I\",\"device_token\":\"e4855fba-0d7e-4dbd-baad-"
                   "aae9d0b90c15\",\"name\":\"Van \\\"12\\\"\",\"track_token\":\"9F6A4F03-300B-"
                   "4C14-8847-DAC537E8D70C\",\"latitude\":40.7128,\"longitude\":-74.006,"
                   "\"speed\":28.26,\"speed_unit\":\"km/h\",\"accuracy\":5,\"accuracy_unit\":"
                   "\"m\",\"gps_accuracy\":5,\"heading\":180,\"timestamp\":\"2022-01-01T00:00:"
                   "00Z\",\"last_seen\":\"2022-01-01T00:00:01Z\",\"driving\":true,\"zone\":"
                   "\"Depot\"}");
    /* SPEC v3 2.1: the live trip rides in the state, as the same object as on B/I/D/trip */
    x.trip = "{\"track_token\":\"T\",\"state\":\"driving\"}";
    x.trip_len = strlen(x.trip);
    CU_ASSERT(t2m_payload_state(out, sizeof(out), "I", 1, sample(), &x, &units) > 0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, ",\"driving\":true,\"trip\":{\"track_token\":\"T\",\"state\":\"driving\"},"
                    "\"zone\":\"Depot\"}"));
    x.trip = NULL;
    x.trip_len = 0;
    struct t2m_state_extra none = {NULL, 0, -1, NULL, NULL, 0};
    char plain[T2M_PAYLOAD_MAX];
    t2m_payload_position(plain, sizeof(plain), "I", 1, sample(), &units);
    t2m_payload_state(out, sizeof(out), "I", 1, sample(), &none, &units);
    T2M_ASSERT_STR(out, plain);
    x.driving = 0;
    x.name = NULL;
    x.zone = NULL;
    t2m_payload_state(out, sizeof(out), "I", 1, sample(), &x, &units);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"driving\":false}"));
    CU_ASSERT_PTR_NULL(strstr(out, "name"));
}

static void test_status(void)
{
    struct t2m_units units = metric();
    const int64_t t = 1640995200000LL;
    size_t l = t2m_payload_status(out, sizeof(out), "subscribed", t, "c-1", 0, NULL, 0, &units);
    T2M_ASSERT_STR(out, "{\"state\":\"subscribed\",\"since\":\"2022-01-01T00:00:00Z\","
                        "\"connection_id\":\"c-1\"}");
    CU_ASSERT_EQUAL(l, strlen(out));
    t2m_payload_status(out, sizeof(out), "connecting", t, "", 0, "ignored", 0, &units);
    T2M_ASSERT_STR(out, "{\"state\":\"connecting\",\"since\":\"2022-01-01T00:00:00Z\"}");
    units.timestamp = T2M_TS_UNIX;
    t2m_payload_status(out, sizeof(out), "auth_failed", t, NULL, 403, "access \"denied\"", 0,
                       &units);
    T2M_ASSERT_STR(out, "{\"state\":\"auth_failed\",\"since\":1640995200,\"error\":{\"code\":403,"
                        "\"message\":\"access \\\"denied\\\"\"}}");
    t2m_payload_status(out, sizeof(out), "reconnecting", t, "c", -1, NULL, 0, &units);
    T2M_ASSERT_STR(out, "{\"state\":\"reconnecting\",\"since\":1640995200,\"connection_id\":\"c\","
                        "\"error\":{\"code\":-1,\"message\":\"\"}}");
    units.timestamp = T2M_TS_ISO;
    units.tz = ny;
    t2m_payload_status(out, sizeof(out), "subscribed", t, NULL, 0, NULL, 0, &units);
    T2M_ASSERT_STR(out, "{\"state\":\"subscribed\",\"since\":\"2021-12-31T19:00:00-05:00\"}");
    CU_ASSERT_EQUAL(t2m_payload_status(out, 20, "subscribed", t, NULL, 0, NULL, 0, &units), 0);
    /* the access token's expiry, in the same format as since (SPEC 7) */
    units.timestamp = T2M_TS_UNIX;
    t2m_payload_status(out, sizeof(out), "subscribed", t, NULL, 0, NULL, t + 3600000, &units);
    T2M_ASSERT_STR(out, "{\"state\":\"subscribed\",\"since\":1640995200,"
                        "\"token_expires\":1640998800}");
}

static void test_healthz(void)
{
    const char *ids[] = {"a", "b\"q"}, *states[] = {"subscribed", "auth_failed"};
    size_t l = t2m_payload_healthz(out, sizeof(out), NULL, true, NULL, 3, ids, states, 1);
    T2M_ASSERT_STR(out, "{\"status\":\"ok\",\"mqtt\":\"connected\",\"devices\":3,"
                        "\"instances\":{\"a\":\"subscribed\"}}\n");
    CU_ASSERT_EQUAL(l, strlen(out));
    l = t2m_payload_healthz(out, sizeof(out), "instance auth_failed", false, "", 0, ids, states, 2);
    T2M_ASSERT_STR(out, "{\"status\":\"error\",\"reason\":\"instance auth_failed\","
                        "\"mqtt\":\"disconnected\",\"devices\":0,\"instances\":{\"a\":"
                        "\"subscribed\",\"b\\\"q\":\"auth_failed\"}}\n");
    t2m_payload_healthz(out, sizeof(out), NULL, true, "10.0.0.2:1883", 0, ids, states, 0);
    T2M_ASSERT_STR(out, "{\"status\":\"ok\",\"mqtt\":\"connected\",\"broker\":\"10.0.0.2:1883\","
                        "\"devices\":0,\"instances\":{}}\n");
    /* Every size short of the whole document renders nothing rather than a truncated one. */
    size_t whole =
        t2m_payload_healthz(out, sizeof(out), "r", true, "[::1]:1883", 7, ids, states, 2);
    for (size_t n = 0; n <= whole; n++) {
        char small[256];
        CU_ASSERT_EQUAL(t2m_payload_healthz(small, n, "r", true, "[::1]:1883", 7, ids, states, 2),
                        0);
        if (n) CU_ASSERT_EQUAL(small[0], '\0');
    }
    char fit[256];
    CU_ASSERT_EQUAL(t2m_payload_healthz(fit, whole + 1, "r", true, "[::1]:1883", 7, ids, states, 2),
                    whole);
}

int main(void)
{
    parser = t2m_parser_new(16);
    utc = t2m_tz_load("UTC");
    ny = t2m_tz_load("America/New_York");
    if (!parser || !utc || !ny) return 2;
    static const struct t2m_test_case cases[] = {
        {"SPEC example, byte-exact", test_spec_example},
        {"other units and timestamp formats", test_other_units},
        {"absent and rejected fields are left out", test_absent_fields},
        {"escaping and buffer bounds", test_escaping_and_bounds},
        {"attribute values", test_attributes},
        {"state payload: name, last_seen, driving, zone", test_state_payload},
        {"status payload", test_status},
        {"/healthz document", test_healthz},
        {NULL, NULL},
    };
    int rc = t2m_test_run("payload", cases);
    t2m_parser_free(parser);
    t2m_tz_free(utc);
    t2m_tz_free(ny);
    return rc;
}
