/* discovery.c - pure: Home Assistant MQTT discovery configs (SPEC section 4).
 *
 * Payloads are rendered by hand into stack buffers (no json-c trees): the keys are fixed, only
 * the ids, names and topics vary, and every one of those goes through t2m_json_escape.
 * The documented keys per platform are those of the HA pages device_tracker.mqtt, sensor.mqtt
 * and binary_sensor.mqtt; tests/unit/test_discovery.c holds the lists. */
#include "discovery.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "out.h"
#include "protocol.h"
#include "topics.h"

#define DISC_TOPIC_MAX 4096
#define DISC_PAYLOAD_MAX 16384
/* ha_id maps one byte to at most 3, and a token is at most T2M_TOKEN_MAX bytes */
#define DISC_ID_MAX (3 * T2M_TOKEN_MAX + 1)
#define DISC_SEG_MAX (3 * T2M_TOKEN_MAX + 1)

#define T2M_SUPPORT_URL "https://github.com/telematics2mqtt/telematics2mqtt"

static void sb_cstr(struct t2m_out *b, const char *s)
{
    t2m_out_json(b, s, strlen(s));
}

/* ,"key":"escaped value" (the comma only when something precedes it in the object) */
static void sb_kv(struct t2m_out *b, const char *key, const char *val, size_t vlen)
{
    if (!b->full && b->len > 0 && b->buf[b->len - 1] != '{') t2m_out_str(b, ",");
    t2m_out_str(b, "\"");
    t2m_out_str(b, key);
    t2m_out_str(b, "\":");
    t2m_out_json(b, val, vlen);
}

static void sb_kvs(struct t2m_out *b, const char *key, const char *val)
{
    sb_kv(b, key, val, strlen(val));
}

static void sb_key(struct t2m_out *b, const char *key)
{
    if (!b->full && b->len > 0 && b->buf[b->len - 1] != '{') t2m_out_str(b, ",");
    t2m_out_str(b, "\"");
    t2m_out_str(b, key);
    t2m_out_str(b, "\":");
}

/* snprintf into a fixed buffer; -1 when it does not fit */
static int fmt(char *out, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static int fmt(char *out, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = vsnprintf(out, n, f, ap);
    va_end(ap);
    return (r < 0 || (size_t)r >= n) ? -1 : r;
}

static bool token_ok(const char *s, size_t len)
{
    return s != NULL && len > 0 && len <= T2M_TOKEN_MAX;
}

static bool ctx_ok(const struct t2m_discovery_ctx *c)
{
    return c && c->prefix && c->prefix[0] && c->base_topic && c->base_topic[0] && c->bridge_id &&
           c->bridge_id[0] && c->units;
}

static void sb_availability(struct t2m_out *b, const struct t2m_discovery_ctx *c)
{
    char topic[DISC_TOPIC_MAX];
    if (fmt(topic, sizeof topic, "%s/bridge/state", c->base_topic) < 0) {
        b->full = true;
        return;
    }
    sb_key(b, "availability");
    t2m_out_str(b, "[{");
    sb_kvs(b, "topic", topic);
    sb_kvs(b, "payload_available", "online");
    sb_kvs(b, "payload_not_available", "offline");
    t2m_out_str(b, "}]");
}

/* ,"device":{"identifiers":["id"]  -- the device block, left open for more keys. */
static void sb_device_open(struct t2m_out *b, const char *id)
{
    sb_key(b, "device");
    t2m_out_str(b, "{");
    sb_key(b, "identifiers");
    t2m_out_str(b, "[");
    sb_cstr(b, id);
    t2m_out_str(b, "]");
}

static void sb_origin(struct t2m_out *b, const struct t2m_discovery_ctx *c)
{
    sb_key(b, "origin");
    t2m_out_str(b, "{");
    sb_kvs(b, "name", "telematics2mqtt");
    if (c->version && c->version[0]) sb_kvs(b, "sw_version", c->version);
    sb_kvs(b, "support_url", T2M_SUPPORT_URL);
    t2m_out_str(b, "}");
}

/* Everything one device's configs share, computed once. */
struct dev_ids {
    char uid[DISC_ID_MAX * 2 + 16]; /* t2m_<I>__<D>: unique_id base and device identifier */
    char node[DISC_ID_MAX + 8];     /* t2m_<I>: the discovery node_id */
    char dev[DISC_ID_MAX];          /* <D> mapped: the discovery object_id base */
    char position[DISC_TOPIC_MAX];  /* B/<I>/<D>/position, percent-encoded segments */
};

static int dev_ids_init(struct dev_ids *d, const struct t2m_discovery_ctx *c, const char *instance,
                        size_t ilen, const char *token, size_t tlen)
{
    char hi[DISC_ID_MAX], si[DISC_SEG_MAX], sd[DISC_SEG_MAX];
    if (t2m_topic_ha_id(hi, sizeof hi, instance, ilen) < 0 ||
        t2m_topic_ha_id(d->dev, sizeof d->dev, token, tlen) < 0 ||
        t2m_topic_segment(si, sizeof si, instance, ilen) < 0 ||
        t2m_topic_segment(sd, sizeof sd, token, tlen) < 0)
        return -1;
    /* ha_id output has '_' only before two hex digits, so "__" cannot occur inside a mapped
     * id: joining with it keeps <I>,<D> pairs apart even across instances ("a/"+"b" vs
     * "a"+"/b"), which a single '_' would not. */
    if (fmt(d->uid, sizeof d->uid, "t2m_%s__%s", hi, d->dev) < 0 ||
        fmt(d->node, sizeof d->node, "t2m_%s", hi) < 0)
        return -1;
    if (t2m_topic_join(d->position, sizeof d->position, 4, c->base_topic, si, sd, "position") < 0)
        return -1;
    return 0;
}

static int emit_device_tracker(const struct t2m_discovery_ctx *c, const struct dev_ids *d,
                               const char *name, size_t nlen, t2m_emit_fn emit, void *user)
{
    char topic[DISC_TOPIC_MAX], payload[DISC_PAYLOAD_MAX];
    struct t2m_out b = {payload, sizeof payload, 0, false};
    payload[0] = '\0';

    if (fmt(topic, sizeof topic, "%s/device_tracker/%s/%s/config", c->prefix, d->node, d->dev) < 0)
        return -1;
    t2m_out_str(&b, "{");
    /* null: the entity takes the device's name (HA 2023.8+ entity naming) */
    sb_key(&b, "name");
    t2m_out_str(&b, "null");
    sb_kvs(&b, "unique_id", d->uid);
    sb_kvs(&b, "object_id", d->uid);
    sb_kvs(&b, "json_attributes_topic", d->position);
    sb_kvs(&b, "source_type", "gps");
    sb_kvs(&b, "icon", "mdi:car");
    sb_availability(&b, c);
    sb_device_open(&b, d->uid);
    sb_kv(&b, "name", name, nlen);
    sb_kvs(&b, "manufacturer", "Damoov / telematicssdk");
    sb_kvs(&b, "model", "Telematics device");
    sb_kvs(&b, "via_device", c->bridge_id);
    t2m_out_str(&b, "}");
    sb_origin(&b, c);
    t2m_out_str(&b, "}");
    if (b.full) return -1;
    return emit(user, topic, payload, b.len);
}

struct sensor_def {
    const char *suffix; /* object_id / unique_id suffix and the position payload's field */
    const char *name;
    const char *device_class; /* NULL: none */
    const char *unit;         /* NULL: none */
    const char *icon;         /* NULL: the device class's */
    const char *category;     /* NULL: primary entity */
    bool numeric;
    int precision; /* suggested_display_precision; -1: units.precision */
};

static int emit_sensor(const struct t2m_discovery_ctx *c, const struct dev_ids *d,
                       const struct sensor_def *s, t2m_emit_fn emit, void *user)
{
    char topic[DISC_TOPIC_MAX], payload[DISC_PAYLOAD_MAX], uid[sizeof d->uid + 32];
    char tmpl[128];
    struct t2m_out b = {payload, sizeof payload, 0, false};
    payload[0] = '\0';

    if (fmt(topic, sizeof topic, "%s/sensor/%s/%s_%s/config", c->prefix, d->node, d->dev,
            s->suffix) < 0 ||
        fmt(uid, sizeof uid, "%s_%s", d->uid, s->suffix) < 0)
        return -1;
    /* A field missing from one position must not blank the sensor. For a numeric sensor
     * (unit set) HA ignores an empty rendered value and keeps its state (sensor.mqtt,
     * state_topic); re-rendering this.state instead would feed back a value HA may already
     * have converted to the user's display unit. A timestamp is not numeric: there, this.state
     * (an ISO string HA parses back unchanged) keeps the previous state. */
    if (fmt(tmpl, sizeof tmpl, "{{ value_json.%s if '%s' in value_json else %s }}", s->suffix,
            s->suffix, s->numeric ? "''" : "this.state") < 0)
        return -1;

    t2m_out_str(&b, "{");
    sb_kvs(&b, "name", s->name);
    sb_kvs(&b, "unique_id", uid);
    sb_kvs(&b, "object_id", uid);
    sb_kvs(&b, "state_topic", d->position);
    sb_kvs(&b, "value_template", tmpl);
    if (s->device_class) sb_kvs(&b, "device_class", s->device_class);
    if (s->unit) sb_kvs(&b, "unit_of_measurement", s->unit);
    if (s->numeric) {
        char prec[16];
        sb_kvs(&b, "state_class", "measurement");
        if (fmt(prec, sizeof prec, "%d", s->precision < 0 ? c->units->precision : s->precision) < 0)
            return -1;
        sb_key(&b, "suggested_display_precision");
        t2m_out_str(&b, prec);
    }
    if (s->icon) sb_kvs(&b, "icon", s->icon);
    if (s->category) sb_kvs(&b, "entity_category", s->category);
    sb_availability(&b, c);
    sb_device_open(&b, d->uid);
    t2m_out_str(&b, "}");
    sb_origin(&b, c);
    t2m_out_str(&b, "}");
    if (b.full) return -1;
    return emit(user, topic, payload, b.len);
}

int t2m_discovery_device(const struct t2m_discovery_ctx *c, const char *instance, size_t ilen,
                         const char *token, size_t tlen, const char *name, t2m_emit_fn emit,
                         void *user)
{
    struct dev_ids d;
    if (!ctx_ok(c) || !emit || !token_ok(instance, ilen) || !token_ok(token, tlen)) return -1;
    if (dev_ids_init(&d, c, instance, ilen, token, tlen) < 0) return -1;

    const char *dname = (name && name[0]) ? name : token;
    size_t dlen = (name && name[0]) ? strlen(name) : tlen;
    int r = emit_device_tracker(c, &d, dname, dlen, emit, user);
    if (r != 0) return r;

    const struct sensor_def sensors[] = {
        {"speed", "Speed", "speed", t2m_units_speed_name(c->units->speed), NULL, NULL, true, -1},
        /* whole degrees: a compass reading, not a measurement worth decimals */
        {"heading", "Heading", NULL, "\xc2\xb0", "mdi:compass", NULL, true, 0},
        {"accuracy", "Accuracy", "distance", t2m_units_distance_name(c->units->distance), NULL,
         "diagnostic", true, -1},
        {"timestamp", "Timestamp", "timestamp", NULL, NULL, "diagnostic", false, -1},
    };
    for (size_t i = 0; i < sizeof sensors / sizeof sensors[0]; i++) {
        /* HA's timestamp device class needs ISO 8601; unix numbers would be rejected */
        if (!strcmp(sensors[i].suffix, "timestamp") && c->units->timestamp != T2M_TS_ISO) continue;
        if (!sensors[i].unit && sensors[i].numeric) return -1;
        r = emit_sensor(c, &d, &sensors[i], emit, user);
        if (r != 0) return r;
    }
    return 0;
}

static int emit_bridge_instance(const struct t2m_discovery_ctx *c, const char *cid,
                                const char *instance, t2m_emit_fn emit, void *user)
{
    char hi[DISC_ID_MAX], si[DISC_SEG_MAX], uid[3 * DISC_ID_MAX], name[T2M_TOKEN_MAX + 32];
    char topic[DISC_TOPIC_MAX], state[DISC_TOPIC_MAX], payload[DISC_PAYLOAD_MAX];
    struct t2m_out b = {payload, sizeof payload, 0, false};
    size_t ilen = instance ? strlen(instance) : 0;
    payload[0] = '\0';

    if (!token_ok(instance, ilen) || t2m_topic_ha_id(hi, sizeof hi, instance, ilen) < 0 ||
        t2m_topic_segment(si, sizeof si, instance, ilen) < 0)
        return -1;
    if (fmt(topic, sizeof topic, "%s/binary_sensor/t2m_bridge_%s/%s_connected/config", c->prefix,
            cid, hi) < 0 ||
        fmt(uid, sizeof uid, "t2m_bridge_%s__%s_connected", cid, hi) < 0 ||
        fmt(name, sizeof name, "Instance %s connected", instance) < 0 ||
        t2m_topic_join(state, sizeof state, 3, c->base_topic, si, "status") < 0)
        return -1;

    t2m_out_str(&b, "{");
    sb_kvs(&b, "name", name);
    sb_kvs(&b, "unique_id", uid);
    sb_kvs(&b, "object_id", uid);
    sb_kvs(&b, "state_topic", state);
    sb_kvs(&b, "value_template", "{{ 'ON' if value_json.state == 'subscribed' else 'OFF' }}");
    sb_kvs(&b, "payload_on", "ON");
    sb_kvs(&b, "payload_off", "OFF");
    sb_kvs(&b, "device_class", "connectivity");
    sb_kvs(&b, "entity_category", "diagnostic");
    sb_availability(&b, c);
    sb_device_open(&b, c->bridge_id);
    sb_kvs(&b, "name", "telematics2mqtt");
    sb_kvs(&b, "manufacturer", "telematics2mqtt");
    sb_kvs(&b, "model", "bridge");
    if (c->version && c->version[0]) sb_kvs(&b, "sw_version", c->version);
    t2m_out_str(&b, "}");
    sb_origin(&b, c);
    t2m_out_str(&b, "}");
    if (b.full) return -1;
    return emit(user, topic, payload, b.len);
}

int t2m_discovery_bridge(const struct t2m_discovery_ctx *c, const char *const *instances, size_t n,
                         t2m_emit_fn emit, void *user)
{
    char cid[DISC_ID_MAX];
    if (!ctx_ok(c) || !emit || (n > 0 && !instances)) return -1;
    if (t2m_topic_ha_id(cid, sizeof cid, c->bridge_id, strlen(c->bridge_id)) < 0) return -1;
    for (size_t i = 0; i < n; i++) {
        int r = emit_bridge_instance(c, cid, instances[i], emit, user);
        if (r != 0) return r;
    }
    return 0;
}
