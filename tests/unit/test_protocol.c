/* test_protocol.c - upstream message parsing and rendering (SPEC section 1). */
#include <json-c/json.h>
#include <stdlib.h>

#include "protocol.h"
#include "t2m_test.h"

#define SAMPLE                                                                                     \
    "{\"type\":\"device_update\",\"device_token\":\"e4855fba-0d7e-4dbd-baad-aae9d0b90c15\","       \
    "\"track_token\":\"9F6A4F03-300B-4C14-8847-DAC537E8D70C\",\"position\":{\"Latitude\":40.7128," \
    "\"Longitude\":-74.006,\"Speed\":7.85,\"Accuracy\":5.0,\"Timestamp\":1640995200,"              \
    "\"Heading\":180.0}}"

#define ALL_POS                                                                                    \
    (T2M_HAS_LAT | T2M_HAS_LON | T2M_HAS_SPEED | T2M_HAS_ACCURACY | T2M_HAS_HEADING | T2M_HAS_TS)

static struct t2m_parser *parser;
static struct t2m_message msg;
static char why[128];

static enum t2m_parse_result parse_n(const char *s, size_t len)
{
    return t2m_protocol_parse(parser, s, len, &msg, why, sizeof(why));
}

static enum t2m_parse_result parse(const char *s)
{
    return parse_n(s, strlen(s));
}

/* A device_update whose position object is `pos`. */
static enum t2m_parse_result parse_pos(const char *pos)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":%s}", pos);
    return parse(buf);
}

static void test_sample_update(void)
{
    CU_ASSERT_EQUAL_FATAL(parse(SAMPLE), T2M_PARSE_OK);
    const struct t2m_update *u = &msg.update;
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_DEVICE_UPDATE);
    T2M_ASSERT_STR(msg.type_name, "device_update");
    CU_ASSERT_EQUAL(u->device_token_len, 36);
    T2M_ASSERT_STR(u->device_token, "e4855fba-0d7e-4dbd-baad-aae9d0b90c15");
    CU_ASSERT_EQUAL(u->track_token_len, 36);
    T2M_ASSERT_STR(u->track_token, "9F6A4F03-300B-4C14-8847-DAC537E8D70C");
    CU_ASSERT_EQUAL(u->has, ALL_POS | T2M_HAS_TRACK);
    CU_ASSERT_EQUAL(u->rejected, 0);
    CU_ASSERT_DOUBLE_EQUAL(u->lat, 40.7128, 0);
    CU_ASSERT_DOUBLE_EQUAL(u->lon, -74.006, 0);
    CU_ASSERT_DOUBLE_EQUAL(u->speed, 7.85, 0);
    CU_ASSERT_DOUBLE_EQUAL(u->accuracy, 5.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(u->heading, 180.0, 0);
    CU_ASSERT_EQUAL(u->ts_ms, 1640995200000LL);
    T2M_ASSERT_STR(u->lat_text, "40.7128");
    T2M_ASSERT_STR(u->lon_text, "-74.006");
}

static void test_reuse_clears(void)
{
    CU_ASSERT_EQUAL_FATAL(parse(SAMPLE), T2M_PARSE_OK);
    CU_ASSERT_EQUAL_FATAL(parse("{\"type\":\"device_update\",\"device_token\":\"x\"}"),
                          T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, 0);
    CU_ASSERT_EQUAL(msg.update.track_token_len, 0);
    T2M_ASSERT_STR(msg.update.lat_text, "");
    T2M_ASSERT_STR(msg.update.device_token, "x");
    /* Thousands of messages through one parser keep working. */
    for (int i = 0; i < 5000; i++)
        CU_ASSERT_EQUAL(parse(i % 3 ? SAMPLE : "{\"a\":"),
                        i % 3 ? T2M_PARSE_OK : T2M_PARSE_INVALID_JSON);
}

static void test_timestamps(void)
{
    CU_ASSERT_EQUAL(parse_pos("{\"Timestamp\":1640995200123}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.ts_ms, 1640995200123LL); /* > 1e11: milliseconds */
    CU_ASSERT_EQUAL(parse_pos("{\"Timestamp\":1640995200.5}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.ts_ms, 1640995200500LL);
    CU_ASSERT_EQUAL(parse_pos("{\"Timestamp\":1.640995200123e12}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.ts_ms, 1640995200123LL);
    CU_ASSERT_EQUAL(parse_pos("{\"Timestamp\":\"2022-01-01T00:00:00Z\"}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, T2M_HAS_TS);
    CU_ASSERT_EQUAL(msg.update.ts_ms, 1640995200000LL);
    CU_ASSERT_EQUAL(parse_pos("{\"Timestamp\":\"2021-12-31T19:00:00-05:00\"}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.ts_ms, 1640995200000LL);
    CU_ASSERT_EQUAL(parse_pos("{\"Timestamp\":null}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, 0);
    CU_ASSERT_EQUAL(msg.update.rejected, 0);
    const char *bad[] = {"-5",
                         "1e300",
                         "\"tomorrow\"",
                         "true",
                         "[1]",
                         "{}",
                         "\"\"",
                         "99999999999999999999999",
                         "\"2022-13-01T00:00:00Z\"",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        char pos[64];
        snprintf(pos, sizeof(pos), "{\"Timestamp\":%s}", bad[i]);
        CU_ASSERT_EQUAL(parse_pos(pos), T2M_PARSE_OK);
        CU_ASSERT_EQUAL(msg.update.has, 0);
        CU_ASSERT_EQUAL(msg.update.rejected, T2M_HAS_TS);
    }
}

static int64_t ts_text(const char *s)
{
    int64_t v;
    return t2m_protocol_parse_ts_text(s, strlen(s), &v) == 0 ? v : -1;
}

static void test_ts_text(void)
{
    CU_ASSERT_EQUAL(ts_text("2022-01-01T00:00:00Z"), 1640995200000LL);
    CU_ASSERT_EQUAL(ts_text("2022-01-01T00:00:00.123Z"), 1640995200123LL);
    CU_ASSERT_EQUAL(ts_text("2022-01-01T00:00:00.1Z"), 1640995200100LL);
    CU_ASSERT_EQUAL(ts_text("2022-01-01T00:00:00.123456789Z"), 1640995200123LL);
    CU_ASSERT_EQUAL(ts_text("2021-12-31T19:00:00-05:00"), 1640995200000LL);
    CU_ASSERT_EQUAL(ts_text("2021-12-31T19:00:00-0500"), 1640995200000LL);
    CU_ASSERT_EQUAL(ts_text("2022-01-01T05:30:00+05:30"), 1640995200000LL);
    CU_ASSERT_EQUAL(ts_text("2022-01-01T01:00:00+01"), 1640995200000LL);
    CU_ASSERT_EQUAL(ts_text("2022-01-01 00:00:00"), 1640995200000LL); /* no zone: UTC */
    CU_ASSERT_EQUAL(ts_text("2000-02-29T00:00:00Z"), 951782400000LL);
    CU_ASSERT_EQUAL(ts_text("1970-01-01T00:00:00Z"), 0);
    CU_ASSERT_EQUAL(ts_text("1640995200"), 1640995200000LL);
    CU_ASSERT_EQUAL(ts_text("1640995200123"), 1640995200123LL);
    const char *bad[] = {"",
                         "2022-01-01",
                         "2022-01-01T00:00Z",
                         "2022-02-30T00:00:00Z",
                         "2021-02-29T00:00:00Z",
                         "2022-01-01T24:00:00Z",
                         "2022-01-01T00:60:00Z",
                         "2022-01-01T00:00:00+25:00",
                         "2022-01-01T00:00:00Zjunk",
                         "2022-01-01T00:00:00.Z",
                         "1969-12-31T23:59:59Z",
                         "0x10",
                         "inf",
                         "nan",
                         "12abc",
                         " 1640995200",
                         "-1",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        int64_t v;
        CU_ASSERT_EQUAL(t2m_protocol_parse_ts_text(bad[i], strlen(bad[i]), &v), -1);
    }
    char longs[100];
    memset(longs, '1', sizeof(longs));
    int64_t v;
    CU_ASSERT_EQUAL(t2m_protocol_parse_ts_text(longs, sizeof(longs), &v), -1);
    /* Length-bounded: bytes past len are not read. */
    CU_ASSERT_EQUAL(t2m_protocol_parse_ts_text("1640995200999", 10, &v), 0);
    CU_ASSERT_EQUAL(v, 1640995200000LL);
}

static void test_ts_from_number(void)
{
    int64_t v;
    CU_ASSERT_EQUAL(t2m_protocol_ts_from_number(1640995200, &v), 0);
    CU_ASSERT_EQUAL(v, 1640995200000LL);
    CU_ASSERT_EQUAL(t2m_protocol_ts_from_number(1640995200123.0, &v), 0);
    CU_ASSERT_EQUAL(v, 1640995200123LL);
    CU_ASSERT_EQUAL(t2m_protocol_ts_from_number(1e11, &v), 0); /* not > 1e11: seconds */
    CU_ASSERT_EQUAL(v, 100000000000000LL);
    CU_ASSERT_EQUAL(t2m_protocol_ts_from_number(-1, &v), -1);
    CU_ASSERT_EQUAL(t2m_protocol_ts_from_number(1e300, &v), -1);
    CU_ASSERT_EQUAL(t2m_protocol_ts_from_number(0.0 / 0.0, &v), -1);
}

static void test_missing_null_mistyped(void)
{
    CU_ASSERT_EQUAL(parse("{\"type\":\"device_update\",\"device_token\":\"d\"}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, 0);
    CU_ASSERT_EQUAL(msg.update.rejected, 0);
    CU_ASSERT_EQUAL(parse("{\"type\":\"device_update\",\"device_token\":\"d\",\"track_token\":null,"
                          "\"position\":null}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, 0);
    CU_ASSERT_EQUAL(msg.update.rejected, 0);
    CU_ASSERT_EQUAL(parse_pos("{\"Latitude\":null,\"Longitude\":null,\"Speed\":null,"
                              "\"Accuracy\":null,\"Heading\":null,\"Timestamp\":null}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, 0);
    CU_ASSERT_EQUAL(msg.update.rejected, 0);
    /* Strings for numbers: json-c would happily read "40.7" as 40.7 and "abc" as 0. */
    CU_ASSERT_EQUAL(parse_pos("{\"Latitude\":\"40.7\",\"Longitude\":\"abc\",\"Speed\":true,"
                              "\"Accuracy\":[5],\"Heading\":{},\"Timestamp\":1640995200}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, T2M_HAS_TS);
    CU_ASSERT_EQUAL(msg.update.rejected, ALL_POS & ~T2M_HAS_TS);
    CU_ASSERT_EQUAL(parse_pos("\"here\""), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, 0);
    CU_ASSERT_EQUAL(msg.update.rejected, ALL_POS);
    /* Integers are numbers too; field names are case-sensitive (unknown ones are ignored). */
    CU_ASSERT_EQUAL(parse_pos("{\"Latitude\":40,\"latitude\":1,\"Heading\":0}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, T2M_HAS_LAT | T2M_HAS_HEADING);
    T2M_ASSERT_STR(msg.update.lat_text, "40");
    /* track_token: wrong type or too long is rejected, empty is simply absent. */
    CU_ASSERT_EQUAL(parse("{\"type\":\"device_update\",\"device_token\":\"d\",\"track_token\":7}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.rejected, T2M_HAS_TRACK);
    CU_ASSERT_EQUAL(
        parse("{\"type\":\"device_update\",\"device_token\":\"d\",\"track_token\":\"\"}"),
        T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, 0);
    CU_ASSERT_EQUAL(msg.update.rejected, 0);
}

static void test_out_of_range(void)
{
    const struct {
        const char *pos;
        unsigned rejected;
    } cases[] = {
        {"{\"Latitude\":NaN}", T2M_HAS_LAT},
        {"{\"Latitude\":1e400}", T2M_HAS_LAT},
        {"{\"Longitude\":-1e400}", T2M_HAS_LON},
        {"{\"Speed\":Infinity}", T2M_HAS_SPEED},
        {"{\"Latitude\":90.0001}", T2M_HAS_LAT},
        {"{\"Latitude\":-91}", T2M_HAS_LAT},
        {"{\"Longitude\":180.5}", T2M_HAS_LON},
        {"{\"Longitude\":-181}", T2M_HAS_LON},
        {"{\"Speed\":-0.1}", T2M_HAS_SPEED},
        {"{\"Accuracy\":-1}", T2M_HAS_ACCURACY},
        {"{\"Speed\":1e308,\"Accuracy\":1e308}", T2M_HAS_SPEED | T2M_HAS_ACCURACY},
        {"{\"Heading\":360.01}", T2M_HAS_HEADING},
        {"{\"Heading\":-1}", T2M_HAS_HEADING},
        {"{\"Latitude\":18446744073709551615}", T2M_HAS_LAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_EQUAL(parse_pos(cases[i].pos), T2M_PARSE_OK);
        CU_ASSERT_EQUAL(msg.update.has, 0);
        CU_ASSERT_EQUAL(msg.update.rejected, cases[i].rejected);
    }
    /* The bounds themselves are valid; a bad field does not spoil the good ones. */
    CU_ASSERT_EQUAL(parse_pos("{\"Latitude\":-90,\"Longitude\":180,\"Heading\":360,\"Speed\":0,"
                              "\"Accuracy\":NaN}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.has, T2M_HAS_LAT | T2M_HAS_LON | T2M_HAS_HEADING | T2M_HAS_SPEED);
    CU_ASSERT_EQUAL(msg.update.rejected, T2M_HAS_ACCURACY);
}

static void test_device_token(void)
{
    CU_ASSERT_EQUAL(parse("{\"type\":\"device_update\"}"), T2M_PARSE_INVALID_TOKEN);
    CU_ASSERT(why[0] != '\0');
    CU_ASSERT_EQUAL(parse("{\"type\":\"device_update\",\"device_token\":\"\"}"),
                    T2M_PARSE_INVALID_TOKEN);
    CU_ASSERT_EQUAL(parse("{\"type\":\"device_update\",\"device_token\":42}"),
                    T2M_PARSE_INVALID_TOKEN);
    CU_ASSERT_EQUAL(parse("{\"type\":\"device_update\",\"device_token\":null}"),
                    T2M_PARSE_INVALID_TOKEN);
    char buf[400];
    for (int len = 256; len <= 257; len++) {
        int o = snprintf(buf, sizeof(buf), "{\"type\":\"device_update\",\"device_token\":\"");
        memset(buf + o, 'x', (size_t)len);
        snprintf(buf + o + len, sizeof(buf) - (size_t)(o + len), "\"}");
        CU_ASSERT_EQUAL(parse(buf), len == 256 ? T2M_PARSE_OK : T2M_PARSE_INVALID_TOKEN);
    }
    CU_ASSERT_EQUAL(msg.update.device_token_len, 0);
    /* Tokens may hold anything, NUL included: kept with their length. */
    CU_ASSERT_EQUAL(parse("{\"type\":\"device_update\",\"device_token\":\"a\\u0000/+#\"}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.update.device_token_len, 5);
    CU_ASSERT(memcmp(msg.update.device_token, "a\0/+#", 5) == 0);
}

static void test_junk(void)
{
    const char *junk[] = {
        "",
        "not json",
        "{\"type\":\"ping\"} trailing",
        "{\"type\":\"ping\"}{}",
        "{\"type\":\"ping\"",
        "[{\"type\":\"ping\"}]",
        "\"ping\"",
        "42",
        "null",
        "{'type':\"ping\"}x",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]"
        "]]]]]]]}",
        "{\"type\":\"ping\",\"s\":\"\xff\xfe\"}",
        "{\"type\":\"ping\",\"s\":\"\xc0\xaf\"}",         /* overlong, json-c lets it pass */
        "{\"type\":\"ping\",\"s\":\"\xed\xa0\x80\"}",     /* surrogate */
        "{\"type\":\"ping\",\"s\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
        "{\"type\":\"ping\",\"s\":\"\xe2\x82\"}",         /* truncated */
        NULL,
    };
    for (int i = 0; junk[i]; i++) {
        why[0] = '\0';
        CU_ASSERT_EQUAL(parse(junk[i]), T2M_PARSE_INVALID_JSON);
        CU_ASSERT(why[0] != '\0');
        CU_ASSERT_EQUAL(msg.type, T2M_MSG_UNKNOWN);
    }
    /* Embedded NUL and data after the declared length. */
    CU_ASSERT_EQUAL(parse_n("{\"type\":\"ping\"}\0", 16), T2M_PARSE_INVALID_JSON);
    CU_ASSERT_EQUAL(parse_n("{\"type\":\"ping\"}garbage", 15), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_PING);
    CU_ASSERT_EQUAL(t2m_protocol_parse(parser, NULL, 5, &msg, NULL, 0), T2M_PARSE_INVALID_JSON);
    /* Whitespace around the object is fine. */
    CU_ASSERT_EQUAL(parse(" \n{\"type\":\"ping\"}\r\n"), T2M_PARSE_OK);
    /* A huge string: parsed, and the copies stay bounded. */
    size_t big = 200000;
    char *huge = malloc(big + 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
    int o = sprintf(huge, "{\"type\":\"error\",\"code\":500,\"message\":\"");
    memset(huge + o, 'm', big);
    strcpy(huge + o + big, "\"}");
    CU_ASSERT_EQUAL(parse(huge), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(strlen(msg.error_message), sizeof(msg.error_message) - 1);
    o = sprintf(huge, "{\"type\":\"");
    memset(huge + o, 't', big);
    strcpy(huge + o + big, "\"}");
    CU_ASSERT_EQUAL(parse(huge), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_UNKNOWN);
    CU_ASSERT_EQUAL(strlen(msg.type_name), sizeof(msg.type_name) - 1);
    free(huge);
}

static void test_unknown(void)
{
    CU_ASSERT_EQUAL(parse("{\"type\":\"trip_started\",\"x\":1}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_UNKNOWN);
    T2M_ASSERT_STR(msg.type_name, "trip_started");
    CU_ASSERT_EQUAL(parse("{\"no_type\":1}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_UNKNOWN);
    CU_ASSERT_EQUAL(parse("{\"type\":7}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_UNKNOWN);
    CU_ASSERT_EQUAL(parse("{\"type\":\"PING\"}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_UNKNOWN);
    CU_ASSERT_EQUAL(parse("{\"type\":\"ping\\u0000x\"}"), T2M_PARSE_OK); /* not "ping" */
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_UNKNOWN);
    T2M_ASSERT_STR(msg.type_name, "ping?x");
    /* Unknown fields everywhere are ignored. */
    CU_ASSERT_EQUAL(
        parse("{\"type\":\"device_update\",\"extra\":{\"a\":[1,2]},\"device_token\":\"d\","
              "\"position\":{\"Altitude\":12,\"Latitude\":1.5}}"),
        T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_DEVICE_UPDATE);
    CU_ASSERT_EQUAL(msg.update.has, T2M_HAS_LAT);
}

static void test_control_messages(void)
{
    CU_ASSERT_EQUAL(parse("{\"type\":\"ping\"}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_PING);
    CU_ASSERT_EQUAL(parse("{\"type\":\"authenticated\"}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_AUTHENTICATED);
    CU_ASSERT_EQUAL(parse("{\"type\":\"welcome\",\"connection_id\":\"c-123\",\"server_time\":"
                          "1640995200,\"instance_id\":\"inst\"}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_WELCOME);
    T2M_ASSERT_STR(msg.connection_id, "c-123");
    T2M_ASSERT_STR(msg.instance_id, "inst");
    CU_ASSERT_EQUAL(msg.server_time, 1640995200);
    CU_ASSERT_EQUAL(parse("{\"type\":\"welcome\",\"server_time\":\"2022-01-01T00:00:00Z\"}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.server_time, 0);
    T2M_ASSERT_STR(msg.connection_id, "");
    CU_ASSERT_EQUAL(parse("{\"type\":\"subscribed\",\"topic\":\"devices/all\"}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_SUBSCRIBED);
    T2M_ASSERT_STR(msg.topic, "devices/all");
    CU_ASSERT_EQUAL(parse("{\"type\":\"error\",\"code\":401,\"message\":\"JWT expired\"}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.type, T2M_MSG_ERROR);
    CU_ASSERT_EQUAL(msg.error_code, 401);
    T2M_ASSERT_STR(msg.error_message, "JWT expired");
    CU_ASSERT_EQUAL(parse("{\"type\":\"error\",\"code\":\"503\",\"message\":\"caf\xc3\xa9\\n\"}"),
                    T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.error_code, 503);
    T2M_ASSERT_STR(msg.error_message, "caf???"); /* printable ASCII only */
    CU_ASSERT_EQUAL(parse("{\"type\":\"error\",\"code\":\"40x\"}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.error_code, 0);
    CU_ASSERT_EQUAL(parse("{\"type\":\"error\",\"code\":403.0}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.error_code, 403);
    CU_ASSERT_EQUAL(parse("{\"type\":\"error\",\"code\":1e300}"), T2M_PARSE_OK);
    CU_ASSERT_EQUAL(msg.error_code, 0);
}

static void test_render_auth(void)
{
    char buf[512];
    struct t2m_auth a = {"eyJ.tok", "inst-1", NULL, NULL, "UTC"};
    size_t l = t2m_protocol_render_auth(buf, sizeof(buf), &a);
    T2M_ASSERT_STR(buf, "{\"type\":\"authenticate\",\"access_token\":\"eyJ.tok\",\"instance_id\":"
                        "\"inst-1\",\"units\":\"metric\",\"timezone\":\"UTC\",\"date_format\":"
                        "\"unix\"}");
    CU_ASSERT_EQUAL(l, strlen(buf));
    a.client_id = "";
    a.device_token = "";
    t2m_protocol_render_auth(buf, sizeof(buf), &a);
    CU_ASSERT_PTR_NULL(strstr(buf, "client_id"));
    CU_ASSERT_PTR_NULL(strstr(buf, "device_token"));
    struct t2m_auth b = {"t\"k", "i", "cli", "dev", "America/New_York"};
    l = t2m_protocol_render_auth(buf, sizeof(buf), &b);
    T2M_ASSERT_STR(buf, "{\"type\":\"authenticate\",\"access_token\":\"t\\\"k\",\"instance_id\":"
                        "\"i\",\"client_id\":\"cli\",\"device_token\":\"dev\",\"units\":\"metric\","
                        "\"timezone\":\"America/New_York\",\"date_format\":\"unix\"}");
    CU_ASSERT_EQUAL(t2m_protocol_render_auth(buf, l, &b), 0);
    CU_ASSERT_EQUAL(t2m_protocol_render_auth(buf, l + 1, &b), l);
}

static void test_render_pong(void)
{
    char buf[64];
    CU_ASSERT_EQUAL(t2m_protocol_render_pong(buf, sizeof(buf), 1640995200123LL), 41);
    T2M_ASSERT_STR(buf, "{\"type\":\"pong\",\"timestamp\":1640995200123}");
    CU_ASSERT_EQUAL(t2m_protocol_render_pong(buf, 41, 1640995200123LL), 0);
    /* Our own output parses back as valid JSON (an unknown type to us). */
    t2m_protocol_render_pong(buf, sizeof(buf), 5);
    CU_ASSERT_EQUAL(parse(buf), T2M_PARSE_OK);
    T2M_ASSERT_STR(msg.type_name, "pong");
}

static const char *esc(const char *s, size_t len)
{
    static char buf[256];
    if (t2m_json_escape(buf, sizeof(buf), s, len) == 0) return "<none>";
    return buf;
}

static void test_json_escape(void)
{
    T2M_ASSERT_STR(esc("abc", 3), "\"abc\"");
    T2M_ASSERT_STR(esc("", 0), "\"\"");
    T2M_ASSERT_STR(esc("a\"b\\c/", 6), "\"a\\\"b\\\\c/\"");
    T2M_ASSERT_STR(esc("\n\r\t\b\f\x01\x1f", 7), "\"\\n\\r\\t\\b\\f\\u0001\\u001f\"");
    T2M_ASSERT_STR(esc("a\0b", 3), "\"a\\u0000b\"");
    T2M_ASSERT_STR(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x90", 14),
                   "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x90\"");
    T2M_ASSERT_STR(esc("\xff", 1), "\"\\u00ff\"");
    T2M_ASSERT_STR(esc("\xc3", 1), "\"\\u00c3\"");                       /* truncated sequence */
    T2M_ASSERT_STR(esc("\xc0\xaf", 2), "\"\\u00c0\\u00af\"");            /* overlong '/' */
    T2M_ASSERT_STR(esc("\xed\xa0\x80", 3), "\"\\u00ed\\u00a0\\u0080\""); /* surrogate */
    T2M_ASSERT_STR(esc("\xf4\x90\x80\x80", 4), "\"\\u00f4\\u0090\\u0080\\u0080\"");
    char small[6];
    CU_ASSERT_EQUAL(t2m_json_escape(small, sizeof(small), "abc", 3), 5);
    T2M_ASSERT_STR(small, "\"abc\"");
    CU_ASSERT_EQUAL(t2m_json_escape(small, sizeof(small), "abcd", 4), 0);
    CU_ASSERT_EQUAL(t2m_json_escape(small, sizeof(small), "\n", 1), 4);
    CU_ASSERT_EQUAL(t2m_json_escape(small, sizeof(small), "\x01", 1), 0);
    /* Every escaped byte string parses back through json-c as valid JSON. */
    char in[64], doc[512];
    srand(3);
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)rand() % sizeof(in);
        for (size_t k = 0; k < len; k++)
            in[k] = (char)(rand() % 256);
        int o = sprintf(doc, "{\"type\":");
        size_t w = t2m_json_escape(doc + o, sizeof(doc) - (size_t)o - 1, in, len);
        CU_ASSERT_FATAL(w > 0);
        strcpy(doc + o + w, "}");
        CU_ASSERT_EQUAL(parse(doc), T2M_PARSE_OK);
    }
}

/* ---- the fast path gives exactly json-c's results ---- */

static struct t2m_parser *slow_parser;
static int fast_compared;

/* Parses `s` with the fast path on (the default parser) and off; both results must be equal
 * byte for byte. */
static void same_both_ways_n(const char *s, size_t len)
{
    static struct t2m_message fast, slow;
    char fwhy[128], swhy[128];
    enum t2m_parse_result fr = t2m_protocol_parse(parser, s, len, &fast, fwhy, sizeof(fwhy));
    enum t2m_parse_result sr = t2m_protocol_parse(slow_parser, s, len, &slow, swhy, sizeof(swhy));
    CU_ASSERT_EQUAL(fr, sr);
    T2M_ASSERT_STR(fwhy, swhy);
    bool same = memcmp(&fast, &slow, sizeof(fast)) == 0;
    CU_ASSERT(same);
    if (!same)
        fprintf(stderr, "\n  fast and json-c differ on: %.*s\n  lat %s / %s, has %x / %x\n",
                (int)len, s, fast.update.lat_text, slow.update.lat_text, fast.update.has,
                slow.update.has);
    fast_compared++;
}

static void same_both_ways(const char *s)
{
    same_both_ways_n(s, strlen(s));
}

static void test_fast_path_documents(void)
{
    static const char *const docs[] = {
        SAMPLE,
        "{\"type\":\"device_update\",\"device_token\":\"d\"}",
        " {\"type\":\"device_update\",\"device_token\":\"d\"}",
        "{\"type\":\"device_update\",\"device_token\":\"d\"} ",
        "{ \"type\" : \"device_update\" ,\n\t\"device_token\" :\r\"d\" , \"position\" : { "
        "\"Latitude\" : 1.5 , \"Timestamp\" : 7 } }",
        "{\"position\":{\"Longitude\":-74.006,\"Latitude\":40.7128},\"device_token\":\"d\","
        "\"type\":\"device_update\"}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"extra\":\"x\",\"n\":1.5e3,\"t\":true,"
        "\"f\":false,\"z\":null,\"position\":{\"Speed\":3,\"odd\":\"y\",\"b\":false}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"nested\":{\"a\":1}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"arr\":[1,2]}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"device_token\":\"e\"}",
        "{\"type\":\"device_update\",\"type\":\"ping\",\"device_token\":\"d\"}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Latitude\":1,"
        "\"Latitude\":2}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Latitude\":1},"
        "\"position\":{\"Longitude\":2}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Latitude\":1,"
        "\"Latitude\":null}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\\u0041\"}",
        "{\"type\":\"device_update\",\"device_token\":\"d\\\"q\"}",
        "{\"type\":\"device_update\",\"device_token\":\"caf\xc3\xa9 \x7f\"}",
        "{\"type\":\"device_update\",\"device_token\":\"\"}",
        "{\"type\":\"device_update\",\"device_token\":null}",
        "{\"type\":\"device_update\",\"device_token\":5}",
        "{\"type\":\"device_update\"}",
        "{\"type\":\"ping\"}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"track_token\":null}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"track_token\":\"\"}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"track_token\":7}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"track_token\":true}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":null}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":\"here\"}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":[1]}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Latitude\":\"1\"}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Speed\":true}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Heading\":{}}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Latitude\":null,"
        "\"Longitude\":null,\"Speed\":null,\"Accuracy\":null,\"Heading\":null,\"Timestamp\":null}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Timestamp\":"
        "\"2021-12-31T19:00:00-05:00\"}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Timestamp\":\"x\"}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Timestamp\":"
        "\"1640995200.5\"}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Timestamp\":true}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Latitude\":1}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",}",
        "{\"type\":\"device_update\",\"device_token\":\"d\"}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\" \"x\":1}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Speed\":nul}}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"n\":tru}",
        "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"Speed\":1}}x",
        "{\"type\":\"device_update\",\"device_token\":\"d\"\v}",
        "{\"type\":\"device_update\",\"device_token\":\"d\"\f}",
        "{\"type\":\"device_update\",\"device_token\":\"d\t\"}",
        "{'type':'device_update','device_token':'d'}",
        "{}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        same_both_ways(docs[i]);
    /* A NUL inside, every prefix of the sample (truncated JSON), a token too long. */
    same_both_ways_n("{\"type\":\"device_update\",\"device_token\":\"d\0e\"}", 45);
    for (size_t n = 1; n < strlen(SAMPLE); n++)
        same_both_ways_n(SAMPLE, n);
    char doc[700];
    for (int tl = 255; tl <= 258; tl++) {
        char tok[300];
        memset(tok, 'a', (size_t)tl);
        tok[tl] = '\0';
        snprintf(doc, sizeof(doc),
                 "{\"type\":\"device_update\",\"device_token\":\"%s\",\"track_token\":\"%s\"}", tok,
                 tok);
        same_both_ways(doc);
    }
}

/* Every number form in every numeric field, Timestamp included. */
static void test_fast_path_numbers(void)
{
    static const char *const nums[] = {"0",
                                       "-0",
                                       "0.0",
                                       "-0.0",
                                       "00",
                                       "01",
                                       "-01",
                                       "1.",
                                       ".5",
                                       "-",
                                       "+1",
                                       "1e",
                                       "1e+",
                                       "1E5",
                                       "1e+5",
                                       "1e-5",
                                       "-1.5E-3",
                                       "1.0",
                                       "12.50",
                                       "40.7128",
                                       "-74.006",
                                       "0.1",
                                       "0.0001",
                                       "0.00001",
                                       "0.000123",
                                       "0.00012345678901234",
                                       "90",
                                       "90.0",
                                       "-90",
                                       "90.0000000000001",
                                       "-90.00000000000001",
                                       "180",
                                       "-180.0",
                                       "360",
                                       "5.0",
                                       "7.85",
                                       "1e400",
                                       "-1e400",
                                       "1e-400",
                                       "NaN",
                                       "Infinity",
                                       "-Infinity",
                                       "18446744073709551615",
                                       "9223372036854775807",
                                       "9223372036854775808",
                                       "-9223372036854775808",
                                       "123456789012345678",
                                       "1234567890123456789",
                                       "12345678901234567",
                                       "123456789012345",
                                       "1234567890123456",
                                       "0.30000000000000004",
                                       "33.333333333333336",
                                       "1.7976931348623157e308",
                                       "4.9406564584124654e-324",
                                       "1640995200",
                                       "1640995200123",
                                       "1640995200.5",
                                       "1.640995200123e12",
                                       "99999999999999999999999",
                                       "100000000000",
                                       "100000000001",
                                       "253402300799999",
                                       "253402300800000",
                                       "0.5e1",
                                       "45.123456789012345678901234567890",
                                       "1e22",
                                       "1e23",
                                       "299792458",
                                       "299792458.0000001",
                                       "4e7",
                                       "40000000.000001",
                                       "12345678901234.5",
                                       "1234567890123456.5",
                                       "-1e-4",
                                       "1e-4"};
    static const char *const fields[] = {"Latitude", "Longitude", "Speed",
                                         "Accuracy", "Heading",   "Timestamp"};
    char doc[256];
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
            snprintf(doc, sizeof(doc),
                     "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"%s\":%s}}",
                     fields[f], nums[i]);
            same_both_ways(doc);
            snprintf(doc, sizeof(doc),
                     "{\"type\":\"device_update\",\"device_token\":\"d\",\"position\":{\"%s\":%s,"
                     "\"x\":1}}",
                     fields[f], nums[i]);
            same_both_ways(doc);
        }
    }
}

/* Random coordinates printed the ways senders print them: %.Nf, %.Ng, %e. */
static void test_fast_path_random(void)
{
    unsigned long long x = 88172645463325252ULL;
    char doc[256], lat[40], lon[40];
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double a = (double)(x % 180000000001ULL) / 1e9 - 90.0;
        double o = (double)((x >> 20) % 360000000001ULL) / 1e9 - 180.0;
        int prec = (int)(x >> 40) % 18;
        switch ((x >> 50) % 4) {
        case 0:
            snprintf(lat, sizeof(lat), "%.*f", prec, a);
            snprintf(lon, sizeof(lon), "%.*f", prec, o);
            break;
        case 1:
            snprintf(lat, sizeof(lat), "%.*g", prec + 1, a);
            snprintf(lon, sizeof(lon), "%.*g", prec + 1, o);
            break;
        case 2:
            snprintf(lat, sizeof(lat), "%.*e", prec, a / 1e6);
            snprintf(lon, sizeof(lon), "%.*f", prec, o / 1e5);
            break;
        default:
            snprintf(lat, sizeof(lat), "%.17g", a);
            snprintf(lon, sizeof(lon), "%.*f", prec, o / 1e3);
            break;
        }
        snprintf(
            doc, sizeof(doc),
            "{\"type\":\"device_update\",\"device_token\":\"d%d\",\"position\":{\"Latitude\":%s,"
            "\"Longitude\":%s,\"Speed\":%.*f,\"Timestamp\":%s}}",
            i, lat, lon, prec % 4, a < 0 ? -a : a, prec % 2 ? lat : "1640995200");
        same_both_ways(doc);
    }
    CU_ASSERT(fast_compared > 20000);
    /* and the fast path really ran: it parsed most of them itself (a test where it bailed out
     * every time would compare json-c with json-c) */
    CU_ASSERT(t2m_parser_fast_hits(parser) > 10000);
    CU_ASSERT_EQUAL(t2m_parser_fast_hits(slow_parser), 0);
}

/* SPEC section 1 / issue 10: an unknown field is skipped however deep it nests (up to the
 * parser's bound); the position the bridge reads keeps the old 16-level bound. Both paths. */
static void test_depth(void)
{
    struct t2m_parser *ps[2] = {t2m_parser_new(T2M_PROTOCOL_MAX_DEPTH),
                                t2m_parser_new(T2M_PROTOCOL_MAX_DEPTH)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(ps[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ps[1]);
    t2m_parser_set_fast_path(ps[1], false);
    static char doc[8192];
    static const struct {
        int extra_depth, pos_depth;
        enum t2m_parse_result want;
    } cases[] = {
        {17, 0, T2M_PARSE_OK},
        {100, 0, T2M_PARSE_OK},
        {254, 0, T2M_PARSE_OK},
        {300, 0, T2M_PARSE_INVALID_JSON}, /* past the parser's bound */
        {0, 14, T2M_PARSE_OK},
        {0, 15, T2M_PARSE_INVALID_JSON}, /* 1 + 1 + 15 > 16 */
        {0, 40, T2M_PARSE_INVALID_JSON},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int o = snprintf(doc, sizeof(doc), "{\"type\":\"device_update\",\"device_token\":\"d\",");
        o += snprintf(doc + o, sizeof(doc) - (size_t)o, "\"extra\":");
        for (int i = 0; i < cases[c].extra_depth; i++)
            o += snprintf(doc + o, sizeof(doc) - (size_t)o, "{\"a\":");
        o += snprintf(doc + o, sizeof(doc) - (size_t)o, "1");
        for (int i = 0; i < cases[c].extra_depth; i++)
            doc[o++] = '}';
        o += snprintf(doc + o, sizeof(doc) - (size_t)o,
                      ",\"position\":{\"Latitude\":1.5,"
                      "\"Longitude\":2.5,\"deep\":");
        for (int i = 0; i < cases[c].pos_depth; i++)
            doc[o++] = '[';
        doc[o++] = '0';
        for (int i = 0; i < cases[c].pos_depth; i++)
            doc[o++] = ']';
        o += snprintf(doc + o, sizeof(doc) - (size_t)o, "}}");
        for (int k = 0; k < 2; k++) {
            enum t2m_parse_result r =
                t2m_protocol_parse(ps[k], doc, (size_t)o, &msg, why, sizeof(why));
            if (r != cases[c].want)
                fprintf(stderr, "\n  case %zu path %d: got %d (%s)\n", c, k, r, why);
            CU_ASSERT_EQUAL(r, cases[c].want);
            if (r == T2M_PARSE_OK) {
                CU_ASSERT_EQUAL(msg.type, T2M_MSG_DEVICE_UPDATE);
                CU_ASSERT(msg.update.has & T2M_HAS_LAT);
            }
        }
    }
    t2m_parser_free(ps[0]);
    t2m_parser_free(ps[1]);
}

/* The one strictly typed JSON reader every module uses. */
static void test_json_members(void)
{
    json_object *o =
        json_tokener_parse("{\"n\":1.5,\"i\":-3,\"s\":\"12\",\"z\":null,\"b\":true,\"e\":\"\"}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    double v = 0;
    CU_ASSERT_EQUAL(t2m_json_number(o, "n", &v), 0);
    CU_ASSERT_EQUAL(v, 1.5);
    CU_ASSERT_EQUAL(t2m_json_number(o, "i", &v), 0);
    CU_ASSERT_EQUAL(v, -3);
    CU_ASSERT_EQUAL(t2m_json_number(o, "s", &v), -1); /* "12" is no number */
    CU_ASSERT_EQUAL(t2m_json_number(o, "b", &v), -1);
    CU_ASSERT_EQUAL(t2m_json_number(o, "z", &v), 1);
    CU_ASSERT_EQUAL(t2m_json_number(o, "missing", &v), 1);
    CU_ASSERT_EQUAL(t2m_json_number(NULL, "n", &v), 1);
    size_t len = 99;
    T2M_ASSERT_STR(t2m_json_string(o, "s", &len), "12");
    CU_ASSERT_EQUAL(len, 2);
    T2M_ASSERT_STR(t2m_json_string(o, "e", &len), "");
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_PTR_NULL(t2m_json_string(o, "n", NULL));
    CU_ASSERT_PTR_NULL(t2m_json_string(o, "z", NULL));
    CU_ASSERT_PTR_NULL(t2m_json_string(NULL, "s", NULL));
    json_object_put(o);
}

int main(void)
{
    parser = t2m_parser_new(16);
    slow_parser = t2m_parser_new(16);
    if (!parser || !slow_parser) return 2;
    t2m_parser_set_fast_path(slow_parser, false);
    static const struct t2m_test_case cases[] = {
        {"SPEC sample device_update", test_sample_update},
        {"parser reuse clears old fields", test_reuse_clears},
        {"timestamps: seconds, ms, ISO, null, bad", test_timestamps},
        {"ISO-8601 timestamp text", test_ts_text},
        {"numeric timestamp normalisation", test_ts_from_number},
        {"missing, null and mistyped fields", test_missing_null_mistyped},
        {"NaN, 1e400 and out-of-range numbers", test_out_of_range},
        {"device_token validation", test_device_token},
        {"junk input", test_junk},
        {"unknown types and fields", test_unknown},
        {"nesting: unknown fields skipped, position bounded", test_depth},
        {"ping, authenticated, welcome, subscribed, error", test_control_messages},
        {"auth message", test_render_auth},
        {"pong", test_render_pong},
        {"JSON string escaping", test_json_escape},
        {"JSON members, strictly typed", test_json_members},
        {"fast path = json-c: documents", test_fast_path_documents},
        {"fast path = json-c: number forms", test_fast_path_numbers},
        {"fast path = json-c: random coordinates", test_fast_path_random},
        {NULL, NULL},
    };
    int rc = t2m_test_run("protocol", cases);
    t2m_parser_free(parser);
    t2m_parser_free(slow_parser);
    return rc;
}
