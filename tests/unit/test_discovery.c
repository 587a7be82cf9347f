/* test_discovery.c - Home Assistant discovery configs (SPEC section 4). Every payload is parsed
 * with json-c and its keys are checked against the keys Home Assistant documents. */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>

#include "discovery.h"
#include "protocol.h"
#include "t2m_test.h"

/* The key lists below are copied from Home Assistant's MQTT integration (facts, not code):
 * homeassistant/components/mqtt/schemas.py (MQTT_ENTITY_COMMON_SCHEMA: availability*, device,
 * enabled_by_default, entity_category, icon, json_attributes_*, unique_id, origin and, since
 * 2025.10, default_entity_id, which replaces the deprecated object_id that 2026.4 ignores) plus
 * each platform's PLATFORM_SCHEMA_MODERN in device_tracker.py, sensor.py, binary_sensor.py and
 * event.py; "platform" and "qos" from the discovery schema. object_id is left out on purpose:
 * the bridge must not send it. */
#define COMMON_KEYS                                                                                \
    "availability", "availability_mode", "availability_template", "availability_topic", "device",  \
        "default_entity_id", "enabled_by_default", "entity_category", "entity_picture", "icon",    \
        "json_attributes_template", "json_attributes_topic", "name", "origin",                     \
        "payload_available", "payload_not_available", "platform", "qos", "unique_id", "encoding"

/* device_tracker.py */
static const char *const TRACKER_KEYS[] = {
    COMMON_KEYS,   "payload_home", "payload_not_home", "payload_reset",
    "source_type", "state_topic",  "value_template",   NULL};

/* sensor.py (and components/sensor/const.py for state_class: measurement_angle, 2025.x) */
static const char *const SENSOR_KEYS[] = {COMMON_KEYS,
                                          "device_class",
                                          "expire_after",
                                          "force_update",
                                          "last_reset_value_template",
                                          "options",
                                          "suggested_display_precision",
                                          "state_class",
                                          "state_topic",
                                          "unit_of_measurement",
                                          "value_template",
                                          NULL};

/* binary_sensor.py */
static const char *const BINARY_KEYS[] = {
    COMMON_KEYS,   "device_class", "expire_after", "force_update",   "off_delay",
    "payload_off", "payload_on",   "state_topic",  "value_template", NULL};

/* event.py */
static const char *const EVENT_KEYS[] = {COMMON_KEYS,   "device_class",   "event_types",
                                         "state_topic", "value_template", NULL};

/* The `device` map, identical on the three pages above */
static const char *const DEVICE_KEYS[] = {"configuration_url",
                                          "connections",
                                          "hw_version",
                                          "identifiers",
                                          "manufacturer",
                                          "model",
                                          "model_id",
                                          "name",
                                          "serial_number",
                                          "suggested_area",
                                          "sw_version",
                                          "via_device",
                                          NULL};

/* The `availability` list items, identical on the three pages above */
static const char *const AVAIL_KEYS[] = {"payload_available", "payload_not_available", "topic",
                                         "value_template", NULL};

/* schemas.py MQTT_ORIGIN_INFO_SCHEMA (`origin`) */
static const char *const ORIGIN_KEYS[] = {"name", "sw_version", "support_url", NULL};

#define MAX_CONFIGS 32

struct captured {
    int count;
    int stop_after; /* 0: never stop */
    char topic[MAX_CONFIGS][4096];
    json_object *obj[MAX_CONFIGS];
    bool valid[MAX_CONFIGS];
};

static int capture(void *user, const char *topic, const char *payload, size_t len)
{
    struct captured *c = user;
    CU_ASSERT_FATAL(c->count < MAX_CONFIGS);
    CU_ASSERT_EQUAL(strlen(payload), len); /* NUL-terminated, no embedded NUL */
    snprintf(c->topic[c->count], sizeof c->topic[0], "%s", topic);
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, payload, (int)len);
    bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == len && json_object_is_type(o, json_type_object);
    if (!ok) fprintf(stderr, "invalid JSON on %s: %s\n", topic, payload);
    json_tokener_free(tok);
    c->valid[c->count] = ok;
    c->obj[c->count] = o;
    c->count++;
    return (c->stop_after && c->count >= c->stop_after) ? 7 : 0;
}

static void release(struct captured *c)
{
    for (int i = 0; i < c->count; i++)
        json_object_put(c->obj[i]);
    c->count = 0;
}

static bool in_list(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(k, *list)) return true;
    return false;
}

static void assert_keys(json_object *o, const char *const *list)
{
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        if (!in_list(k, list)) fprintf(stderr, "undocumented key: %s\n", k);
        CU_ASSERT(in_list(k, list));
    }
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v)) return NULL;
    return v;
}

static const char *gets(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    return (v && json_object_is_type(v, json_type_string)) ? json_object_get_string(v) : NULL;
}

static void assert_str(json_object *o, const char *key, const char *want)
{
    const char *got = gets(o, key);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got) T2M_ASSERT_STR(got, want);
}

/* The blocks every config shares: availability on B/bridge/state, origin, a device block. */
static void assert_common(json_object *o, const char *base)
{
    char avail[256];
    snprintf(avail, sizeof avail, "%s/bridge/state", base);
    json_object *a = get(o, "availability");
    CU_ASSERT_FATAL(a && json_object_is_type(a, json_type_array));
    CU_ASSERT_EQUAL(json_object_array_length(a), 1);
    json_object *a0 = json_object_array_get_idx(a, 0);
    assert_keys(a0, AVAIL_KEYS);
    assert_str(a0, "topic", avail);
    assert_str(a0, "payload_available", "online");
    assert_str(a0, "payload_not_available", "offline");

    json_object *org = get(o, "origin");
    CU_ASSERT_FATAL(org && json_object_is_type(org, json_type_object));
    assert_keys(org, ORIGIN_KEYS);
    assert_str(org, "name", "telematics2mqtt");
    assert_str(org, "sw_version", "0.1.0");
    CU_ASSERT_PTR_NULL(get(org, "support_url")); /* no placeholder: the project has no home yet */
    CU_ASSERT_PTR_NULL(get(o, "object_id"));     /* deprecated, ignored since HA 2026.4 */

    json_object *dev = get(o, "device");
    CU_ASSERT_FATAL(dev && json_object_is_type(dev, json_type_object));
    assert_keys(dev, DEVICE_KEYS);
    json_object *ids = get(dev, "identifiers");
    CU_ASSERT_FATAL(ids && json_object_is_type(ids, json_type_array));
    CU_ASSERT_EQUAL(json_object_array_length(ids), 1);
    CU_ASSERT(json_object_is_type(json_object_array_get_idx(ids, 0), json_type_string));
    CU_ASSERT_PTR_NOT_NULL(gets(o, "unique_id"));
}

static struct t2m_units metric = {T2M_SPEED_KMH, T2M_DIST_M, T2M_TS_ISO, 2, NULL};

static struct t2m_discovery_ctx ctx(const struct t2m_units *u)
{
    struct t2m_discovery_ctx c = {.prefix = "homeassistant",
                                  .base_topic = "telematics",
                                  .bridge_id = "telematics2mqtt",
                                  .version = "0.1.0",
                                  .units = u};
    return c;
}

#define TOKEN "e4855fba-7c1e-4e5b-9b3a-2f6d8c9e0a11"

static int device(const struct t2m_discovery_ctx *c, const char *inst, const char *tok,
                  const char *name, struct captured *cap)
{
    return t2m_discovery_device(c, inst, strlen(inst), tok, strlen(tok), name, capture, cap);
}

#define UID "t2m_telematics2mqtt__inst-1__" TOKEN
/* tracker, speed, heading, accuracy, fix time, last seen, trip distance, duration and average
 * speed, driving, event */
#define NDEV 11

static void test_sample_device(void)
{
    static struct captured cap;
    struct t2m_discovery_ctx c = ctx(&metric);
    CU_ASSERT_EQUAL(device(&c, "inst-1", TOKEN, "Van 12", &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, NDEV);
    for (int i = 0; i < cap.count; i++)
        CU_ASSERT_FATAL(cap.valid[i]);

    const char *topics[NDEV] = {
        "homeassistant/device_tracker/t2m_inst-1/" TOKEN "/config",
        "homeassistant/sensor/t2m_inst-1/" TOKEN "_speed/config",
        "homeassistant/sensor/t2m_inst-1/" TOKEN "_heading/config",
        "homeassistant/sensor/t2m_inst-1/" TOKEN "_accuracy/config",
        "homeassistant/sensor/t2m_inst-1/" TOKEN "_fix_time/config",
        "homeassistant/sensor/t2m_inst-1/" TOKEN "_last_seen/config",
        "homeassistant/sensor/t2m_inst-1/" TOKEN "_trip_distance/config",
        "homeassistant/sensor/t2m_inst-1/" TOKEN "_trip_duration/config",
        "homeassistant/sensor/t2m_inst-1/" TOKEN "_trip_avg_speed/config",
        "homeassistant/binary_sensor/t2m_inst-1/" TOKEN "_driving/config",
        "homeassistant/event/t2m_inst-1/" TOKEN "_event/config",
    };
    const char *entity_ids[NDEV] = {
        "device_tracker.van_12",        "sensor.van_12_speed",
        "sensor.van_12_heading",        "sensor.van_12_accuracy",
        "sensor.van_12_fix_time",       "sensor.van_12_last_seen",
        "sensor.van_12_trip_distance",  "sensor.van_12_trip_duration",
        "sensor.van_12_trip_avg_speed", "binary_sensor.van_12_driving",
        "event.van_12_event",
    };
    const char *const *keys[NDEV] = {TRACKER_KEYS, SENSOR_KEYS, SENSOR_KEYS, SENSOR_KEYS,
                                     SENSOR_KEYS,  SENSOR_KEYS, SENSOR_KEYS, SENSOR_KEYS,
                                     SENSOR_KEYS,  BINARY_KEYS, EVENT_KEYS};
    for (int i = 0; i < NDEV; i++) {
        T2M_ASSERT_STR(cap.topic[i], topics[i]);
        assert_keys(cap.obj[i], keys[i]);
        assert_common(cap.obj[i], "telematics");
        assert_str(cap.obj[i], "default_entity_id", entity_ids[i]);
        CU_ASSERT(t2m_discovery_ours(&c, gets(cap.obj[i], "unique_id"),
                                     strlen(gets(cap.obj[i], "unique_id"))));
    }

    const char *pos = "telematics/inst-1/" TOKEN "/position";
    json_object *t = cap.obj[0];
    CU_ASSERT(get(t, "name") == NULL && json_object_object_get_ex(t, "name", NULL));
    assert_str(t, "json_attributes_topic", pos);
    /* SPEC 4: times that change merely because time passes are no tracker attributes */
    const char *attrs = gets(t, "json_attributes_template");
    CU_ASSERT_PTR_NOT_NULL_FATAL(attrs);
    CU_ASSERT_PTR_NOT_NULL(strstr(attrs, "'gps_accuracy'"));
    CU_ASSERT_PTR_NULL(strstr(attrs, "last_seen"));
    CU_ASSERT_PTR_NULL(strstr(attrs, "timestamp"));
    assert_str(t, "source_type", "gps");
    assert_str(t, "unique_id", UID);
    json_object *dev = get(t, "device");
    assert_str(dev, "name", "Van 12");
    assert_str(dev, "manufacturer", "Damoov / telematicssdk");
    assert_str(dev, "model", "Telematics device");
    assert_str(dev, "via_device", "telematics2mqtt");
    T2M_ASSERT_STR(json_object_get_string(json_object_array_get_idx(get(dev, "identifiers"), 0)),
                   UID);
    for (int i = 1; i < NDEV; i++) {
        /* entities refer to the tracker's device by its identifier only */
        json_object *sd = get(cap.obj[i], "device");
        CU_ASSERT_EQUAL(json_object_object_length(sd), 1);
        T2M_ASSERT_STR(json_object_get_string(json_object_array_get_idx(get(sd, "identifiers"), 0)),
                       UID);
    }
    /* speed: a field never reported renders '' (HA keeps the state) */
    assert_str(cap.obj[1], "state_topic", pos);
    assert_str(cap.obj[1], "value_template",
               "{{ value_json.speed if 'speed' in value_json else '' }}");
    assert_str(cap.obj[1], "device_class", "speed");
    assert_str(cap.obj[1], "unit_of_measurement", "km/h");
    assert_str(cap.obj[1], "state_class", "measurement");
    json_object *prec = get(cap.obj[1], "suggested_display_precision");
    CU_ASSERT(prec && json_object_is_type(prec, json_type_int) && json_object_get_int(prec) == 2);
    /* heading: an angle */
    CU_ASSERT_PTR_NULL(get(cap.obj[2], "device_class"));
    assert_str(cap.obj[2], "unit_of_measurement", "\xc2\xb0");
    assert_str(cap.obj[2], "icon", "mdi:compass");
    assert_str(cap.obj[2], "state_class", "measurement_angle");
    CU_ASSERT_EQUAL(json_object_get_int(get(cap.obj[2], "suggested_display_precision")), 0);
    assert_str(cap.obj[3], "device_class", "distance");
    assert_str(cap.obj[3], "unit_of_measurement", "m");
    assert_str(cap.obj[3], "entity_category", "diagnostic");
    /* fix time and last seen: timestamps, no fallback to this.state */
    for (int i = 4; i <= 5; i++) {
        assert_str(cap.obj[i], "device_class", "timestamp");
        CU_ASSERT_PTR_NULL(get(cap.obj[i], "unit_of_measurement"));
        CU_ASSERT_PTR_NULL(get(cap.obj[i], "state_class"));
        CU_ASSERT_PTR_NULL(strstr(gets(cap.obj[i], "value_template"), "this.state"));
    }
    assert_str(cap.obj[4], "value_template", "{{ value_json.timestamp }}");
    assert_str(cap.obj[5], "value_template", "{{ value_json.last_seen }}");
    /* SPEC 4: they write a recorder row per update: disabled by default; the rest enabled */
    for (int i = 0; i < NDEV; i++) {
        json_object *en = get(cap.obj[i], "enabled_by_default");
        bool disabled = i == 4 || i == 5;
        CU_ASSERT(disabled ? (en && json_object_is_type(en, json_type_boolean) &&
                              !json_object_get_boolean(en))
                           : en == NULL);
    }
    /* the trip sensors read the live trip inside the state (SPEC v3 2.1) */
    for (int i = 6; i <= 8; i++)
        assert_str(cap.obj[i], "state_topic", pos);
    assert_str(cap.obj[6], "device_class", "distance");
    assert_str(cap.obj[6], "unit_of_measurement", "km");
    assert_str(cap.obj[6], "value_template",
               "{{ value_json.trip.distance if 'trip' in value_json else '' }}");
    assert_str(cap.obj[7], "device_class", "duration");
    assert_str(cap.obj[7], "unit_of_measurement", "s");
    assert_str(cap.obj[7], "value_template",
               "{{ value_json.trip.duration if 'trip' in value_json else '' }}");
    assert_str(cap.obj[8], "device_class", "speed");
    assert_str(cap.obj[8], "unit_of_measurement", "km/h");
    assert_str(cap.obj[8], "value_template",
               "{{ value_json.trip.avg_speed if 'trip' in value_json else '' }}");
    /* driving */
    assert_str(cap.obj[9], "device_class", "moving");
    assert_str(cap.obj[9], "payload_on", "ON");
    assert_str(cap.obj[9], "state_topic", pos);
    /* the event entity: its types, and event_type mapped from the payload's event */
    assert_str(cap.obj[10], "state_topic", "telematics/inst-1/" TOKEN "/event");
    json_object *types = get(cap.obj[10], "event_types");
    CU_ASSERT_FATAL(types && json_object_is_type(types, json_type_array));
    const char *want[] = {"trip_started", "trip_ended", "zone_entered", "zone_left",
                          "device_removed"};
    CU_ASSERT_EQUAL_FATAL(json_object_array_length(types), 5);
    for (size_t i = 0; i < 5; i++)
        T2M_ASSERT_STR(json_object_get_string(json_object_array_get_idx(types, i)), want[i]);
    CU_ASSERT_PTR_NOT_NULL(strstr(gets(cap.obj[10], "value_template"), "event_type="));

    /* all unique ids of one device differ */
    for (int i = 0; i < NDEV; i++)
        for (int j = i + 1; j < NDEV; j++)
            CU_ASSERT(strcmp(gets(cap.obj[i], "unique_id"), gets(cap.obj[j], "unique_id")));
    release(&cap);

    /* zones configured: a zone enum sensor with every zone and "none" */
    const char *zones[] = {"Depot", "Home \"base\""};
    c.zones = zones;
    c.n_zones = 2;
    CU_ASSERT_EQUAL(device(&c, "inst-1", TOKEN, NULL, &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, NDEV + 1);
    T2M_ASSERT_STR(cap.topic[6], "homeassistant/sensor/t2m_inst-1/" TOKEN "_zone/config");
    assert_keys(cap.obj[6], SENSOR_KEYS);
    assert_str(cap.obj[6], "device_class", "enum");
    json_object *opts = get(cap.obj[6], "options");
    CU_ASSERT_FATAL(opts && json_object_array_length(opts) == 3);
    T2M_ASSERT_STR(json_object_get_string(json_object_array_get_idx(opts, 1)), "Home \"base\"");
    T2M_ASSERT_STR(json_object_get_string(json_object_array_get_idx(opts, 2)), "none");
    /* entity ids from the token when there is no alias */
    assert_str(cap.obj[0], "default_entity_id",
               "device_tracker.e4855fba_7c1e_4e5b_9b3a_2f6d8c9e0a11");
    release(&cap);
}

static void test_name_falls_back_to_token(void)
{
    static struct captured cap;
    struct t2m_discovery_ctx c = ctx(&metric);
    CU_ASSERT_EQUAL(device(&c, "inst-1", TOKEN, NULL, &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, NDEV);
    assert_str(get(cap.obj[0], "device"), "name", TOKEN);
    release(&cap);
    CU_ASSERT_EQUAL(device(&c, "inst-1", TOKEN, "", &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, NDEV);
    assert_str(get(cap.obj[0], "device"), "name", TOKEN);
    release(&cap);
}

static void test_units_and_timestamp_sensors(void)
{
    static struct captured cap;
    struct t2m_units imperial = {T2M_SPEED_MPH, T2M_DIST_FT, T2M_TS_UNIX, 1, NULL};
    struct t2m_discovery_ctx c = ctx(&imperial);
    CU_ASSERT_EQUAL(device(&c, "i", "d", NULL, &cap), 0);
    /* timestamp sensors for every units.timestamp: unix numbers become datetimes */
    CU_ASSERT_EQUAL_FATAL(cap.count, NDEV);
    for (int i = 0; i < cap.count; i++)
        CU_ASSERT_FATAL(cap.valid[i]);
    assert_str(cap.obj[1], "unit_of_measurement", "mph");
    assert_str(cap.obj[3], "unit_of_measurement", "ft");
    assert_str(cap.obj[4], "value_template", "{{ as_datetime(value_json.timestamp) }}");
    assert_str(cap.obj[5], "value_template", "{{ as_datetime(value_json.last_seen) }}");
    assert_str(cap.obj[6], "unit_of_measurement", "mi");
    CU_ASSERT_EQUAL(json_object_get_int(get(cap.obj[1], "suggested_display_precision")), 1);
    release(&cap);

    struct t2m_units kn = {T2M_SPEED_KN, T2M_DIST_M, T2M_TS_UNIX_MS, 2, NULL};
    c = ctx(&kn);
    CU_ASSERT_EQUAL(device(&c, "i", "d", NULL, &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, NDEV);
    assert_str(cap.obj[1], "unit_of_measurement", "kn");
    assert_str(cap.obj[4], "value_template", "{{ as_datetime(value_json.timestamp / 1000) }}");
    release(&cap);
}

/* Collect a device's unique_ids and topics into one flat list. */
static int collect(const char *inst, size_t ilen, const char *tok, size_t tlen, char ids[][1024],
                   char topics[][4096], int at)
{
    static struct captured cap;
    struct t2m_discovery_ctx c = ctx(&metric);
    CU_ASSERT_EQUAL(t2m_discovery_device(&c, inst, ilen, tok, tlen, NULL, capture, &cap), 0);
    for (int i = 0; i < cap.count; i++) {
        CU_ASSERT(cap.valid[i]);
        const char *u = gets(cap.obj[i], "unique_id");
        snprintf(ids[at], 1024, "%s", u ? u : "");
        snprintf(topics[at], 4096, "%s", cap.topic[i]);
        at++;
    }
    release(&cap);
    return at;
}

static void test_ids_collision_free(void)
{
    static char ids[6 * NDEV][1024];
    static char topics[6 * NDEV][4096];
    int n = 0;
    n = collect("i", 1, "a/b", 3, ids, topics, n);
    n = collect("i", 1, "a_b", 3, ids, topics, n);
    n = collect("i", 1, "a.b", 3, ids, topics, n);
    n = collect("i", 1, "A/b", 3, ids, topics, n);
    /* pairs a single '_' separator would merge: "a"+"2f\xab" and "a/"+"ab" */
    n = collect("a", 1, "2f\xab", 3, ids, topics, n);
    n = collect("a/", 2, "ab", 2, ids, topics, n);
    CU_ASSERT_EQUAL_FATAL(n, 6 * NDEV);
    for (int i = 0; i < n; i++) {
        for (const char *p = ids[i]; *p; p++)
            CU_ASSERT(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                             *p) != NULL);
        for (int j = i + 1; j < n; j++) {
            CU_ASSERT(strcmp(ids[i], ids[j]) != 0);
            CU_ASSERT(strcmp(topics[i], topics[j]) != 0);
        }
    }
}

static void test_hostile_token_gives_valid_json(void)
{
    static struct captured cap;
    struct t2m_discovery_ctx c = ctx(&metric);
    const char tok[] = "q\"b\\s/+#$\x01\n\xff\xc3\xa9";
    CU_ASSERT_EQUAL(
        t2m_discovery_device(&c, "in\"st", 5, tok, sizeof tok - 1, "Al\"ias\\", capture, &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, NDEV);
    for (int i = 0; i < cap.count; i++) {
        CU_ASSERT(cap.valid[i]);
        /* topics stay inside the discovery prefix, one level each, no wildcards */
        CU_ASSERT(strncmp(cap.topic[i], "homeassistant/", 14) == 0);
        CU_ASSERT(strpbrk(cap.topic[i], "+#\"\\") == NULL);
        int slashes = 0;
        for (const char *p = cap.topic[i]; *p; p++)
            slashes += *p == '/';
        CU_ASSERT_EQUAL(slashes, 4);
    }
    assert_str(get(cap.obj[0], "device"), "name", "Al\"ias\\");
    /* the position topic percent-encodes */
    assert_str(cap.obj[0], "json_attributes_topic",
               "telematics/in%22st/q%22b%5Cs%2F%2B%23%24%01%0A%FF%C3%A9/position");
    release(&cap);

    /* the token as device name: escaped, still valid (invalid bytes kept as \u00XX) */
    CU_ASSERT_EQUAL(t2m_discovery_device(&c, "i", 1, tok, sizeof tok - 1, NULL, capture, &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, NDEV);
    CU_ASSERT(cap.valid[0]);
    const char *nm = gets(get(cap.obj[0], "device"), "name");
    CU_ASSERT(nm && strncmp(nm, "q\"b\\s/+#$\x01\n", 11) == 0);
    release(&cap);
}

static void test_bad_input_rejected(void)
{
    static struct captured cap;
    struct t2m_discovery_ctx c = ctx(&metric);
    char big[T2M_TOKEN_MAX + 2];
    memset(big, 'a', sizeof big);
    CU_ASSERT_EQUAL(t2m_discovery_device(&c, "i", 1, "", 0, NULL, capture, &cap), -1);
    CU_ASSERT_EQUAL(t2m_discovery_device(&c, "", 0, "d", 1, NULL, capture, &cap), -1);
    CU_ASSERT_EQUAL(t2m_discovery_device(&c, "i", 1, big, T2M_TOKEN_MAX + 1, NULL, capture, &cap),
                    -1);
    CU_ASSERT_EQUAL(t2m_discovery_device(&c, "i", 1, NULL, 3, NULL, capture, &cap), -1);
    CU_ASSERT_EQUAL(t2m_discovery_device(NULL, "i", 1, "d", 1, NULL, capture, &cap), -1);
    CU_ASSERT_EQUAL(t2m_discovery_device(&c, "i", 1, "d", 1, NULL, NULL, &cap), -1);
    CU_ASSERT_EQUAL(cap.count, 0);

    /* the longest token still fits */
    CU_ASSERT_EQUAL(
        t2m_discovery_device(&c, big, T2M_TOKEN_MAX, big, T2M_TOKEN_MAX, NULL, capture, &cap), 0);
    CU_ASSERT_EQUAL(cap.count, NDEV);
    for (int i = 0; i < cap.count; i++)
        CU_ASSERT(cap.valid[i]);
    release(&cap);
    /* and so does the worst case of mapping: every byte escaped */
    memset(big, '/', sizeof big);
    CU_ASSERT_EQUAL(
        t2m_discovery_device(&c, big, T2M_TOKEN_MAX, big, T2M_TOKEN_MAX, NULL, capture, &cap), 0);
    CU_ASSERT_EQUAL(cap.count, NDEV);
    release(&cap);

    const char *insts[] = {"ok", ""};
    CU_ASSERT_EQUAL(t2m_discovery_bridge(&c, insts, 2, capture, &cap), -1);
    CU_ASSERT_EQUAL(cap.count, 3); /* the first instance's three, then the refusal */
    release(&cap);
    struct t2m_discovery_ctx noid = ctx(&metric);
    noid.bridge_id = "";
    CU_ASSERT_EQUAL(t2m_discovery_bridge(&noid, insts, 1, capture, &cap), -1);
    CU_ASSERT_EQUAL(cap.count, 0);
}

static void test_emit_stops(void)
{
    static struct captured cap;
    struct t2m_discovery_ctx c = ctx(&metric);
    cap.stop_after = 2;
    CU_ASSERT_EQUAL(device(&c, "i", "d", NULL, &cap), 7);
    CU_ASSERT_EQUAL(cap.count, 2);
    release(&cap);
    const char *insts[] = {"a", "b", "c"};
    cap.stop_after = 1;
    CU_ASSERT_EQUAL(t2m_discovery_bridge(&c, insts, 3, capture, &cap), 7);
    CU_ASSERT_EQUAL(cap.count, 1);
    release(&cap);
    cap.stop_after = 0;
}

static void test_bridge(void)
{
    static struct captured cap;
    struct t2m_discovery_ctx c = ctx(&metric);
    const char *insts[] = {"inst-1", "my/inst"};
    CU_ASSERT_EQUAL(t2m_discovery_bridge(&c, insts, 2, capture, &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, 7);
    const char *topics[] = {
        "homeassistant/binary_sensor/t2m_bridge_telematics2mqtt/inst-1_connected/config",
        "homeassistant/sensor/t2m_bridge_telematics2mqtt/inst-1_state/config",
        "homeassistant/sensor/t2m_bridge_telematics2mqtt/inst-1_token_expires/config",
        "homeassistant/binary_sensor/t2m_bridge_telematics2mqtt/my_2finst_connected/config",
        "homeassistant/sensor/t2m_bridge_telematics2mqtt/my_2finst_state/config",
        "homeassistant/sensor/t2m_bridge_telematics2mqtt/my_2finst_token_expires/config",
        "homeassistant/sensor/t2m_bridge_telematics2mqtt/devices/config",
    };
    for (int i = 0; i < 7; i++) {
        json_object *o = cap.obj[i];
        CU_ASSERT_FATAL(cap.valid[i]);
        T2M_ASSERT_STR(cap.topic[i], topics[i]);
        assert_keys(o, i == 0 || i == 3 ? BINARY_KEYS : SENSOR_KEYS);
        assert_common(o, "telematics");
        json_object *dev = get(o, "device");
        T2M_ASSERT_STR(
            json_object_get_string(json_object_array_get_idx(get(dev, "identifiers"), 0)),
            "telematics2mqtt");
        assert_str(dev, "name", "telematics2mqtt");
        assert_str(dev, "model", "bridge");
        assert_str(dev, "sw_version", "0.1.0");
        CU_ASSERT(t2m_discovery_ours(&c, gets(o, "unique_id"), strlen(gets(o, "unique_id"))));
    }
    assert_str(cap.obj[0], "device_class", "connectivity");
    assert_str(cap.obj[0], "default_entity_id", "binary_sensor.telematics2mqtt_inst_1_connected");
    const char *tmpl = gets(cap.obj[0], "value_template");
    CU_ASSERT(tmpl && strstr(tmpl, "value_json.state == 'subscribed'") != NULL);
    assert_str(cap.obj[0], "state_topic", "telematics/inst-1/status");
    assert_str(cap.obj[3], "state_topic", "telematics/my%2Finst/status");
    /* the instance state: an enum of SPEC 2's states */
    assert_str(cap.obj[1], "device_class", "enum");
    assert_str(cap.obj[1], "value_template", "{{ value_json.state }}");
    CU_ASSERT_EQUAL(json_object_array_length(get(cap.obj[1], "options")), 5);
    /* the token's expiry (SPEC 7): a timestamp, unknown while the status has none */
    assert_str(cap.obj[2], "device_class", "timestamp");
    assert_str(cap.obj[2], "entity_category", "diagnostic");
    assert_str(cap.obj[2], "state_topic", "telematics/inst-1/status");
    assert_str(cap.obj[2], "value_template",
               "{{ value_json.token_expires if value_json.token_expires is defined else None }}");
    assert_str(cap.obj[2], "default_entity_id", "sensor.telematics2mqtt_inst_1_token_expires");
    /* the device count reads bridge/info */
    assert_str(cap.obj[6], "state_topic", "telematics/bridge/info");
    assert_str(cap.obj[6], "value_template", "{{ value_json.devices }}");
    assert_str(cap.obj[6], "default_entity_id", "sensor.telematics2mqtt_devices");
    for (int i = 0; i < 7; i++)
        for (int j = i + 1; j < 7; j++)
            CU_ASSERT(strcmp(gets(cap.obj[i], "unique_id"), gets(cap.obj[j], "unique_id")) != 0);
    release(&cap);

    CU_ASSERT_EQUAL(t2m_discovery_bridge(&c, NULL, 0, capture, &cap), 0);
    CU_ASSERT_EQUAL(cap.count, 1); /* the device count only */
    release(&cap);
}

/* Withdrawal may clear only this bridge's configs: another client id never matches. */
static void test_ours(void)
{
    struct t2m_discovery_ctx c = ctx(&metric);
    const char *mine = "t2m_telematics2mqtt__i__d_speed";
    CU_ASSERT(t2m_discovery_ours(&c, mine, strlen(mine)));
    const char *other[] = {"t2m_telematics2mqtt2__i__d", "t2m_telematics__i__d", "t2m_i__d",
                           "t2m_telematics2mqtt__",      "zigbee2mqtt_0x1234",   ""};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        CU_ASSERT_FALSE(t2m_discovery_ours(&c, other[i], strlen(other[i])));
    c.bridge_id = "telematics2mqtt2";
    CU_ASSERT_FALSE(t2m_discovery_ours(&c, mine, strlen(mine)));
}

/* schemas.py DEVICE_DISCOVERY_SCHEMA: the availability options, device, components, origin and
 * the options its components inherit (discovery.py SHARED_OPTIONS) */
static const char *const DEVICE_TOP_KEYS[] = {"availability",
                                              "availability_mode",
                                              "availability_template",
                                              "availability_topic",
                                              "payload_available",
                                              "payload_not_available",
                                              "device",
                                              "components",
                                              "origin",
                                              "state_topic",
                                              "command_topic",
                                              "qos",
                                              "encoding",
                                              "message_expiry_interval",
                                              NULL};

/* SPEC v3 4: device-based discovery, the default. One retained config per device on
 * P/device/<node>/config; its components are the entities of the per-entity form, key by key
 * within their platform's schema, with the same unique_ids (so nothing loses its id, name, area
 * or history when an installation moves from 0.x). */
static void test_device_based(void)
{
    static struct captured ent, dev;
    struct t2m_discovery_ctx c = ctx(&metric);
    CU_ASSERT_EQUAL(device(&c, "inst-1", TOKEN, "Van 12", &ent), 0);
    CU_ASSERT_EQUAL_FATAL(ent.count, NDEV);
    c.device_based = true;
    CU_ASSERT_EQUAL(device(&c, "inst-1", TOKEN, "Van 12", &dev), 0);
    CU_ASSERT_EQUAL_FATAL(dev.count, 1);
    CU_ASSERT_FATAL(dev.valid[0]);
    T2M_ASSERT_STR(dev.topic[0], "homeassistant/device/" UID "/config");
    json_object *o = dev.obj[0];
    assert_keys(o, DEVICE_TOP_KEYS);
    /* device, origin, availability as every entity config has them, once */
    json_object *d = get(o, "device");
    CU_ASSERT_FATAL(d != NULL);
    assert_keys(d, DEVICE_KEYS);
    assert_str(d, "name", "Van 12");
    assert_str(d, "via_device", "telematics2mqtt");
    json_object *org = get(o, "origin");
    CU_ASSERT_FATAL(org != NULL);
    assert_str(org, "name", "telematics2mqtt");
    CU_ASSERT_EQUAL(json_object_array_length(get(o, "availability")), 1);
    json_object *cmps = get(o, "components");
    CU_ASSERT_FATAL(cmps && json_object_is_type(cmps, json_type_object));
    CU_ASSERT_EQUAL_FATAL(json_object_object_length(cmps), NDEV);
    static const char *const ids[NDEV] = {
        "tracker",       "speed",         "heading",        "accuracy", "fix_time", "last_seen",
        "trip_distance", "trip_duration", "trip_avg_speed", "driving",  "event"};
    for (int i = 0; i < NDEV; i++) {
        json_object *e = get(cmps, ids[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        const char *platform = gets(e, "platform");
        CU_ASSERT_PTR_NOT_NULL_FATAL(platform);
        /* the platform is the entity form's component, and every key is its schema's */
        char want[64];
        snprintf(want, sizeof want, "homeassistant/%s/", platform);
        CU_ASSERT(strncmp(ent.topic[i], want, strlen(want)) == 0);
        assert_keys(e, !strcmp(platform, "device_tracker")  ? TRACKER_KEYS
                       : !strcmp(platform, "sensor")        ? SENSOR_KEYS
                       : !strcmp(platform, "binary_sensor") ? BINARY_KEYS
                                                            : EVENT_KEYS);
        CU_ASSERT_PTR_NULL(get(e, "device")); /* inherited from the device config */
        CU_ASSERT_PTR_NULL(get(e, "availability"));
        /* the same entity as in the entity form: every key but device, origin, availability */
        json_object_object_foreach(ent.obj[i], k, v)
        {
            if (!strcmp(k, "device") || !strcmp(k, "origin") || !strcmp(k, "availability"))
                continue;
            json_object *dv = NULL;
            CU_ASSERT(json_object_object_get_ex(e, k, &dv)); /* (the tracker's name is null) */
            if (dv)
                CU_ASSERT_STRING_EQUAL(json_object_to_json_string(dv),
                                       json_object_to_json_string(v));
        }
    }
    release(&ent);
    release(&dev);

    /* the bridge: one config with every instance's entities */
    const char *insts[] = {"inst-1", "my/inst"};
    CU_ASSERT_EQUAL(t2m_discovery_bridge(&c, insts, 2, capture, &dev), 0);
    CU_ASSERT_EQUAL_FATAL(dev.count, 1);
    T2M_ASSERT_STR(dev.topic[0], "homeassistant/device/t2m_bridge_telematics2mqtt/config");
    assert_keys(dev.obj[0], DEVICE_TOP_KEYS);
    CU_ASSERT_EQUAL(json_object_object_length(get(dev.obj[0], "components")), 7);
    assert_str(get(dev.obj[0], "device"), "model", "bridge");
    release(&dev);
}

static void test_custom_prefix_and_base(void)
{
    static struct captured cap;
    struct t2m_discovery_ctx c = {
        .prefix = "ha/disc", .base_topic = "fleet/t2m", .bridge_id = "br\"idge", .units = &metric};
    CU_ASSERT_EQUAL(device(&c, "i", "d", "n", &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, NDEV);
    T2M_ASSERT_STR(cap.topic[0], "ha/disc/device_tracker/t2m_i/d/config");
    assert_str(cap.obj[0], "json_attributes_topic", "fleet/t2m/i/d/position");
    assert_str(get(cap.obj[0], "device"), "via_device", "br\"idge");
    assert_str(json_object_array_get_idx(get(cap.obj[0], "availability"), 0), "topic",
               "fleet/t2m/bridge/state");
    /* no version: origin keeps its name, sw_version left out */
    CU_ASSERT_PTR_NULL(get(get(cap.obj[0], "origin"), "sw_version"));
    assert_str(get(cap.obj[0], "origin"), "name", "telematics2mqtt");
    release(&cap);
    const char *insts[] = {"i"};
    CU_ASSERT_EQUAL(t2m_discovery_bridge(&c, insts, 1, capture, &cap), 0);
    CU_ASSERT_EQUAL_FATAL(cap.count, 4);
    CU_ASSERT(cap.valid[0]);
    T2M_ASSERT_STR(cap.topic[0], "ha/disc/binary_sensor/t2m_bridge_br_22idge/i_connected/config");
    release(&cap);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"sample device: topics, keys, values", test_sample_device},
        {"device name falls back to the token", test_name_falls_back_to_token},
        {"units; timestamp sensors for every format", test_units_and_timestamp_sensors},
        {"unique ids and topics collision-free", test_ids_collision_free},
        {"hostile token still gives valid JSON", test_hostile_token_gives_valid_json},
        {"bad input rejected, longest token fits", test_bad_input_rejected},
        {"emit result stops the walk", test_emit_stops},
        {"bridge: connectivity, state, device count", test_bridge},
        {"withdrawal matches this bridge's ids only", test_ours},
        {"custom prefix and base topic", test_custom_prefix_and_base},
        {"device-based discovery: one config, same entities", test_device_based},
        {NULL, NULL},
    };
    return t2m_test_run("discovery", cases);
}
