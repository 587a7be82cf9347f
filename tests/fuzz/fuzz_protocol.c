/* fuzz_protocol.c - libFuzzer target: one upstream message through t2m_protocol_parse (one
 * parser reused across inputs, as upstream.c does), then every renderer a device_update feeds:
 * position payload, attribute values, OwnTracks, Home Assistant discovery and the instance
 * status. Checks that what they render is valid JSON carrying exactly what was parsed. */
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "discovery.h"
#include "files.h"
#include "fuzz_common.h"
#include "owntracks.h"
#include "payload.h"
#include "protocol.h"
#include "units.h"

static struct t2m_parser *parser;
static struct t2m_tz *tz_utc, *tz_ny;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    parser = t2m_parser_new(T2M_PROTOCOL_MAX_DEPTH);
    tz_utc = t2m_tz_load("UTC");
    tz_ny = t2m_tz_load("America/New_York");
    FUZZ_CHECK(parser && tz_utc && tz_ny, "setup failed (is tzdata installed?)");
    return 0;
}

/* The output units vary with the input, so every unit, format and precision gets its turn. */
static struct t2m_units pick_units(const uint8_t *data, size_t size)
{
    unsigned h = (unsigned)size;
    for (size_t i = 0; i < size; i += 7)
        h = h * 31u + data[i];
    struct t2m_units u = {
        .speed = (enum t2m_speed_unit)(h % 4),
        .distance = (enum t2m_dist_unit)((h / 4) % 2),
        .timestamp = (enum t2m_ts_format)((h / 8) % 3),
        .precision = (int)((h / 24) % 10),
    };
    unsigned z = (h / 240) % 3;
    u.tz = z == 0 ? NULL : z == 1 ? tz_utc : tz_ny;
    return u;
}

/* The string member `key` of obj must equal the len bytes at s. */
static void check_string_member(json_object *obj, const char *key, const char *s, size_t len)
{
    json_object *v;
    FUZZ_CHECK(json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string),
               "%s missing", key);
    FUZZ_CHECK((size_t)json_object_get_string_len(v) == len &&
                   memcmp(json_object_get_string(v), s, len) == 0,
               "%s does not round-trip", key);
}

static void check_number_member(json_object *obj, const char *key, int present)
{
    json_object *v;
    int got = json_object_object_get_ex(obj, key, &v);
    FUZZ_CHECK(got == present, "%s present=%d, expected %d", key, got, present);
    if (present)
        FUZZ_CHECK(json_object_is_type(v, json_type_double) ||
                       json_object_is_type(v, json_type_int),
                   "%s is not a number", key);
}

static void check_position(const struct t2m_update *u, const char *inst, size_t ilen,
                           const struct t2m_units *units)
{
    static char buf[T2M_PAYLOAD_MAX];
    size_t len = t2m_payload_position(buf, sizeof buf, inst, ilen, u, units);
    /* payload.h promises T2M_PAYLOAD_MAX always fits: a parsed update must always render */
    FUZZ_CHECK(len > 0, "position payload did not render");
    FUZZ_CHECK(strlen(buf) == len, "position payload length %zu, strlen %zu", len, strlen(buf));
    json_object *o = fuzz_json_object(buf, len);
    FUZZ_CHECK(o != NULL, "position payload is not a JSON object: %s", buf);
    /* tokens that are valid UTF-8 come back byte for byte; others are \u00XX-escaped by design */
    if (fuzz_utf8_valid((const unsigned char *)u->device_token, u->device_token_len))
        check_string_member(o, "device_token", u->device_token, u->device_token_len);
    if (fuzz_utf8_valid((const unsigned char *)inst, ilen))
        check_string_member(o, "instance_id", inst, ilen);
    if ((u->has & T2M_HAS_TRACK) &&
        fuzz_utf8_valid((const unsigned char *)u->track_token, u->track_token_len))
        check_string_member(o, "track_token", u->track_token, u->track_token_len);
    check_number_member(o, "latitude", !!(u->has & T2M_HAS_LAT));
    check_number_member(o, "longitude", !!(u->has & T2M_HAS_LON));
    check_number_member(o, "speed", !!(u->has & T2M_HAS_SPEED));
    check_number_member(o, "accuracy", !!(u->has & T2M_HAS_ACCURACY));
    check_number_member(o, "gps_accuracy", !!(u->has & T2M_HAS_ACCURACY));
    check_number_member(o, "heading", !!(u->has & T2M_HAS_HEADING));
    json_object *v;
    /* SPEC 2: latitude and longitude are printed exactly as received */
    if (u->has & T2M_HAS_LAT) {
        json_object_object_get_ex(o, "latitude", &v);
        FUZZ_CHECK(json_object_get_double(v) == u->lat, "latitude %s != %.17g", u->lat_text,
                   u->lat);
    }
    if (u->has & T2M_HAS_LON) {
        json_object_object_get_ex(o, "longitude", &v);
        FUZZ_CHECK(json_object_get_double(v) == u->lon, "longitude %s != %.17g", u->lon_text,
                   u->lon);
    }
    int has_ts = json_object_object_get_ex(o, "timestamp", &v);
    FUZZ_CHECK(has_ts == !!(u->has & T2M_HAS_TS), "timestamp presence");
    if (has_ts)
        FUZZ_CHECK(json_object_is_type(v, units->timestamp == T2M_TS_ISO ? json_type_string
                                                                         : json_type_int),
                   "timestamp has the wrong JSON type");
    json_object_put(o);
}

static void check_attributes(const struct t2m_update *u, const struct t2m_units *units)
{
    static const unsigned bits[T2M_ATTR_COUNT] = {T2M_HAS_LAT,      T2M_HAS_LON,     T2M_HAS_SPEED,
                                                  T2M_HAS_ACCURACY, T2M_HAS_HEADING, T2M_HAS_TS,
                                                  T2M_HAS_TRACK};
    char buf[T2M_PAYLOAD_MAX];
    for (int a = 0; a < T2M_ATTR_COUNT; a++) {
        size_t len = t2m_payload_state_attribute(buf, sizeof buf, (enum t2m_attr)a, u, NULL, units);
        if (!(u->has & bits[a])) {
            FUZZ_CHECK(len == 0, "attribute %d rendered while absent", a);
            continue;
        }
        FUZZ_CHECK(len > 0, "attribute %s did not render", t2m_payload_attr_name((enum t2m_attr)a));
        if (a == T2M_ATTR_TRACK_TOKEN) {
            FUZZ_CHECK(len == u->track_token_len && memcmp(buf, u->track_token, len) == 0,
                       "track_token attribute differs");
        } else if (a != T2M_ATTR_TIMESTAMP || units->timestamp != T2M_TS_ISO) {
            FUZZ_CHECK(fuzz_json_number(buf, len), "attribute %s is not a number: %s",
                       t2m_payload_attr_name((enum t2m_attr)a), buf);
        }
    }
}

static void check_owntracks(const struct t2m_update *u)
{
    char buf[T2M_PAYLOAD_MAX], tid[3];
    t2m_owntracks_tid(tid, u->device_token, u->device_token_len);
    size_t len = t2m_owntracks_payload(buf, sizeof buf, u, tid, 1640995200);
    if ((u->has & (T2M_HAS_LAT | T2M_HAS_LON)) != (T2M_HAS_LAT | T2M_HAS_LON)) {
        FUZZ_CHECK(len == 0, "owntracks payload without a position");
        return;
    }
    FUZZ_CHECK(len > 0, "owntracks payload did not render");
    json_object *o = fuzz_json_object(buf, len);
    FUZZ_CHECK(o != NULL, "owntracks payload is not a JSON object: %s", buf);
    json_object *v;
    FUZZ_CHECK(json_object_object_get_ex(o, "tst", &v) && json_object_is_type(v, json_type_int),
               "owntracks tst");
    check_number_member(o, "lat", 1);
    check_number_member(o, "lon", 1);
    json_object_put(o);
}

static const char disc_prefix[] = "homeassistant";

/* Every discovery config lands under the prefix, on a topic without wildcards, as JSON. */
static int check_discovery_emit(void *user, const char *topic, const char *payload, size_t len)
{
    size_t pl = sizeof disc_prefix - 1;
    FUZZ_CHECK(strncmp(topic, disc_prefix, pl) == 0 && topic[pl] == '/', "topic %s", topic);
    FUZZ_CHECK(strpbrk(topic, "+#") == NULL, "wildcard in discovery topic %s", topic);
    FUZZ_CHECK(strlen(payload) == len, "discovery payload length");
    json_object *o = fuzz_json_object(payload, len);
    FUZZ_CHECK(o != NULL, "discovery payload is not a JSON object: %s", payload);
    json_object_put(o);
    (*(int *)user)++;
    return 0;
}

static void check_discovery(const struct t2m_update *u, const char *inst, size_t ilen,
                            const struct t2m_units *units)
{
    /* the track token doubles as a hostile alias and zone name (both are C strings) */
    const char *name = (u->has & T2M_HAS_TRACK) ? u->track_token : NULL;
    const char *zones[] = {name};
    struct t2m_discovery_ctx ctx = {.prefix = disc_prefix,
                                    .base_topic = "telematics",
                                    .bridge_id = "telematics2mqtt",
                                    .version = "0.1.0",
                                    .units = units,
                                    .zones = name ? zones : NULL,
                                    .n_zones = name ? 1 : 0};
    int emitted = 0;
    int r = t2m_discovery_device(&ctx, inst, ilen, u->device_token, u->device_token_len, name,
                                 check_discovery_emit, &emitted);
    FUZZ_CHECK(r == 0 && emitted >= 4, "discovery failed: %d after %d configs", r, emitted);
}

static void check_status(const struct t2m_message *m, const struct t2m_units *units)
{
    char buf[T2M_PAYLOAD_MAX];
    size_t len = t2m_payload_status(buf, sizeof buf, "subscribed", m->server_time, m->connection_id,
                                    m->error_code, m->error_message, 0, units);
    /* a server_time the timestamp format cannot print is allowed to fail; nothing else */
    if (len == 0) return;
    json_object *o = fuzz_json_object(buf, len);
    FUZZ_CHECK(o != NULL, "status payload is not a JSON object: %s", buf);
    json_object_put(o);
    len = t2m_payload_status(buf, sizeof buf, "auth_failed", 1640995200000LL, m->connection_id,
                             m->error_code, m->error_message, 0, units);
    FUZZ_CHECK(len > 0, "status payload did not render");
    o = fuzz_json_object(buf, len);
    FUZZ_CHECK(o != NULL, "status payload is not a JSON object: %s", buf);
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct t2m_message m;
    char why[128];
    enum t2m_parse_result r =
        t2m_protocol_parse(parser, (const char *)data, size, &m, why, sizeof why);
    FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL, "why not terminated");
    if (r != T2M_PARSE_OK) {
        FUZZ_CHECK(why[0] != '\0', "failure without a reason");
        return 0;
    }
    struct t2m_units units = pick_units(data, size);
    if (m.type == T2M_MSG_WELCOME || m.type == T2M_MSG_ERROR) check_status(&m, &units);
    if (m.type != T2M_MSG_DEVICE_UPDATE) return 0;

    const struct t2m_update *u = &m.update;
    FUZZ_CHECK(u->device_token_len > 0 && u->device_token_len <= T2M_TOKEN_MAX &&
                   u->device_token[u->device_token_len] == '\0',
               "device token length %zu", u->device_token_len);
    FUZZ_CHECK((u->has & u->rejected) == 0, "a field both valid and rejected");
    if (u->has & T2M_HAS_LAT) FUZZ_CHECK(u->lat >= -90 && u->lat <= 90, "lat %g", u->lat);
    if (u->has & T2M_HAS_LON) FUZZ_CHECK(u->lon >= -180 && u->lon <= 180, "lon %g", u->lon);
    if (u->has & T2M_HAS_SPEED) FUZZ_CHECK(isfinite(u->speed) && u->speed >= 0, "speed");
    if (u->has & T2M_HAS_ACCURACY) FUZZ_CHECK(isfinite(u->accuracy) && u->accuracy >= 0, "acc");
    if (u->has & T2M_HAS_HEADING) FUZZ_CHECK(u->heading >= 0 && u->heading <= 360, "heading");

    /* the instance id: the track token when there is one, so it is hostile too */
    const char *inst = (u->has & T2M_HAS_TRACK) ? u->track_token : "inst1";
    size_t ilen = (u->has & T2M_HAS_TRACK) ? u->track_token_len : 5;
    check_position(u, inst, ilen, &units);
    check_attributes(u, &units);
    check_owntracks(u);
    check_discovery(u, inst, ilen, &units);
    return 0;
}
