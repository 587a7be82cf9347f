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

/* B/bridge/<leaf>, or B/bridge/K/<leaf> for a shard (SPEC section 9) */
static int bridge_join(char *out, size_t n, const struct t2m_discovery_ctx *c, const char *leaf)
{
    return c->bridge_topic ? t2m_topic_join(out, n, 2, c->bridge_topic, leaf)
                           : t2m_topic_join(out, n, 3, c->base_topic, "bridge", leaf);
}

static void sb_availability(struct t2m_out *b, const struct t2m_discovery_ctx *c)
{
    char topic[DISC_TOPIC_MAX];
    if (bridge_join(topic, sizeof topic, c, "state") < 0) {
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
    /* No support_url: the project has no public home to point at yet (README). */
    t2m_out_str(b, "}");
}

/* An entity id's object part from free text (HA's slugify, ASCII): lower-case letters and
 * digits kept, every run of anything else one '_', none at either end; "device" when nothing is
 * left. Returns -1 when it does not fit. */
static int slug(char *out, size_t n, const char *s, size_t len)
{
    size_t o = 0;
    bool sep = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch - 'A' + 'a');
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
            if (sep && o > 0) {
                if (o + 1 >= n) return -1;
                out[o++] = '_';
            }
            if (o + 1 >= n) return -1;
            out[o++] = (char)ch;
            sep = false;
        } else {
            sep = true;
        }
    }
    if (o == 0) {
        if (n < 7) return -1;
        memcpy(out, "device", 7);
        return 6;
    }
    out[o] = '\0';
    return (int)o;
}

/* Everything one device's configs share, computed once. */
struct dev_ids {
    char uid[DISC_ID_MAX * 3 + 32]; /* t2m_<C>__<I>__<D>: unique_id base, device identifier */
    char node[DISC_ID_MAX + 8];     /* t2m_<I>: the discovery node_id */
    char dev[DISC_ID_MAX];          /* <D> mapped: the discovery object_id base */
    char slug[DISC_ID_MAX];         /* the alias or token as an entity id's object part */
    char position[DISC_TOPIC_MAX];  /* B/<I>/<D>/position, percent-encoded segments */
    char trip[DISC_TOPIC_MAX];      /* B/<I>/<D>/trip */
    char event[DISC_TOPIC_MAX];     /* B/<I>/<D>/event */
};

/* The prefix of every unique_id this bridge makes: t2m_<client id mapped>__ . Mapped ids hold
 * '_' only before two hex digits, so "__" ends the client id unambiguously. */
static int uid_prefix(char *out, size_t n, const struct t2m_discovery_ctx *c)
{
    char cid[DISC_ID_MAX];
    if (t2m_topic_ha_id(cid, sizeof cid, c->bridge_id, strlen(c->bridge_id)) < 0) return -1;
    return fmt(out, n, "t2m_%s__", cid);
}

bool t2m_discovery_topic_ours(const char *topic)
{
    const char *node = strchr(topic, '/');
    return node && strncmp(node + 1, "t2m_", 4) == 0;
}

bool t2m_discovery_ours(const struct t2m_discovery_ctx *c, const char *unique_id, size_t len)
{
    char pre[DISC_ID_MAX + 8];
    int pl = ctx_ok(c) ? uid_prefix(pre, sizeof pre, c) : -1;
    return pl > 0 && unique_id && len > (size_t)pl && memcmp(unique_id, pre, (size_t)pl) == 0;
}

static int dev_ids_init(struct dev_ids *d, const struct t2m_discovery_ctx *c, const char *instance,
                        size_t ilen, const char *token, size_t tlen, const char *name, size_t nlen)
{
    char hi[DISC_ID_MAX], si[DISC_SEG_MAX], sd[DISC_SEG_MAX], pre[DISC_ID_MAX + 8];
    if (t2m_topic_ha_id(hi, sizeof hi, instance, ilen) < 0 ||
        t2m_topic_ha_id(d->dev, sizeof d->dev, token, tlen) < 0 ||
        t2m_topic_segment(si, sizeof si, instance, ilen) < 0 ||
        t2m_topic_segment(sd, sizeof sd, token, tlen) < 0 || uid_prefix(pre, sizeof pre, c) < 0 ||
        slug(d->slug, sizeof d->slug, name, nlen) < 0)
        return -1;
    /* "__" cannot occur inside a mapped id: joining with it keeps <C>,<I>,<D> apart ("a/"+"b"
     * vs "a"+"/b"), which a single '_' would not. */
    if (fmt(d->uid, sizeof d->uid, "%s%s__%s", pre, hi, d->dev) < 0 ||
        fmt(d->node, sizeof d->node, "t2m_%s", hi) < 0)
        return -1;
    if (t2m_topic_join(d->position, sizeof d->position, 4, c->base_topic, si, sd, "position") < 0 ||
        t2m_topic_join(d->trip, sizeof d->trip, 4, c->base_topic, si, sd, "trip") < 0 ||
        t2m_topic_join(d->event, sizeof d->event, 4, c->base_topic, si, sd, "event") < 0)
        return -1;
    return 0;
}

/* "domain.object": HA's entity id format (lower-case, digits, single '_' separators). */
static void sb_entity_id(struct t2m_out *b, const char *domain, const char *object,
                         const char *suffix)
{
    char id[DISC_ID_MAX + 64];
    if (fmt(id, sizeof id, "%s.%s%s%s", domain, object, suffix ? "_" : "", suffix ? suffix : "") <
        0) {
        b->full = true;
        return;
    }
    sb_kvs(b, "default_entity_id", id);
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
    sb_entity_id(&b, "device_tracker", d->slug, NULL);
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

enum ent_kind { ENT_SENSOR, ENT_BINARY, ENT_EVENT };

struct entity_def {
    enum ent_kind kind;
    const char *suffix;       /* object_id / unique_id / entity id suffix */
    const char *name;         /* the entity's name beside the device's */
    const char *topic;        /* state topic: 'p' position, 't' trip, 'e' event (first char) */
    const char *tmpl;         /* value_template */
    const char *device_class; /* NULL: none */
    const char *unit;         /* NULL: none */
    const char *state_class;  /* NULL: none */
    const char *icon;         /* NULL: the device class's */
    const char *category;     /* NULL: primary entity */
    int precision;            /* suggested_display_precision; -1 none, -2 units.precision */
    const char *options;      /* a JSON array: enum options or event_types; NULL: none */
};

static int emit_entity(const struct t2m_discovery_ctx *c, const struct dev_ids *d,
                       const struct entity_def *e, t2m_emit_fn emit, void *user)
{
    static const char *const comp[] = {"sensor", "binary_sensor", "event"};
    char topic[DISC_TOPIC_MAX], payload[DISC_PAYLOAD_MAX], uid[sizeof d->uid + 32];
    struct t2m_out b = {payload, sizeof payload, 0, false};
    payload[0] = '\0';

    if (fmt(topic, sizeof topic, "%s/%s/%s/%s_%s/config", c->prefix, comp[e->kind], d->node, d->dev,
            e->suffix) < 0 ||
        fmt(uid, sizeof uid, "%s_%s", d->uid, e->suffix) < 0)
        return -1;
    const char *state = e->topic[0] == 't' ? d->trip : e->topic[0] == 'e' ? d->event : d->position;
    t2m_out_str(&b, "{");
    sb_kvs(&b, "name", e->name);
    sb_kvs(&b, "unique_id", uid);
    sb_entity_id(&b, comp[e->kind], d->slug, e->suffix);
    sb_kvs(&b, "state_topic", state);
    sb_kvs(&b, "value_template", e->tmpl);
    if (e->kind == ENT_BINARY) {
        sb_kvs(&b, "payload_on", "ON");
        sb_kvs(&b, "payload_off", "OFF");
    }
    if (e->device_class) sb_kvs(&b, "device_class", e->device_class);
    if (e->options) {
        sb_key(&b, e->kind == ENT_EVENT ? "event_types" : "options");
        t2m_out_str(&b, e->options);
    }
    if (e->unit) sb_kvs(&b, "unit_of_measurement", e->unit);
    if (e->state_class) sb_kvs(&b, "state_class", e->state_class);
    if (e->precision != -1) {
        char prec[16];
        if (fmt(prec, sizeof prec, "%d", e->precision == -2 ? c->units->precision : e->precision) <
            0)
            return -1;
        sb_key(&b, "suggested_display_precision");
        t2m_out_str(&b, prec);
    }
    if (e->icon) sb_kvs(&b, "icon", e->icon);
    if (e->category) sb_kvs(&b, "entity_category", e->category);
    sb_availability(&b, c);
    sb_device_open(&b, d->uid);
    t2m_out_str(&b, "}");
    sb_origin(&b, c);
    t2m_out_str(&b, "}");
    if (b.full) return -1;
    return emit(user, topic, payload, b.len);
}

/* A timestamp sensor's template for the configured format: HA's timestamp device class wants a
 * datetime, which ISO text is and a Unix number becomes through as_datetime. The state always
 * carries both times (SPEC 2.1), so no fallback is needed. */
static int ts_template(char *out, size_t n, const char *field, enum t2m_ts_format f)
{
    switch (f) {
    case T2M_TS_UNIX:
        return fmt(out, n, "{{ as_datetime(value_json.%s) }}", field);
    case T2M_TS_UNIX_MS:
        return fmt(out, n, "{{ as_datetime(value_json.%s / 1000) }}", field);
    default:
        return fmt(out, n, "{{ value_json.%s }}", field);
    }
}

/* ["Depot","none"]: the zone sensor's enum options. */
static int zone_options(char *out, size_t n, const struct t2m_discovery_ctx *c)
{
    struct t2m_out o = {out, n, 0, false};
    t2m_out_str(&o, "[");
    for (size_t i = 0; i < c->n_zones; i++) {
        t2m_out_json(&o, c->zones[i], strlen(c->zones[i]));
        t2m_out_str(&o, ",");
    }
    t2m_out_str(&o, "\"none\"]");
    return o.full ? -1 : 0;
}

int t2m_discovery_device(const struct t2m_discovery_ctx *c, const char *instance, size_t ilen,
                         const char *token, size_t tlen, const char *name, t2m_emit_fn emit,
                         void *user)
{
    struct dev_ids d;
    if (!ctx_ok(c) || !emit || !token_ok(instance, ilen) || !token_ok(token, tlen)) return -1;
    const char *dname = (name && name[0]) ? name : token;
    size_t dlen = (name && name[0]) ? strlen(name) : tlen;
    if (dev_ids_init(&d, c, instance, ilen, token, tlen, dname, dlen) < 0) return -1;
    int r = emit_device_tracker(c, &d, dname, dlen, emit, user);
    if (r != 0) return r;

    char fix_t[96], seen_t[96], zones[4096];
    if (ts_template(fix_t, sizeof fix_t, "timestamp", c->units->timestamp) < 0 ||
        ts_template(seen_t, sizeof seen_t, "last_seen", c->units->timestamp) < 0 ||
        zone_options(zones, sizeof zones, c) < 0)
        return -1;
    const char *dist = t2m_units_distance_name(c->units->distance);
    const char *trip_dist = c->units->distance == T2M_DIST_FT ? "mi" : "km";
    /* A numeric field the device never reported renders '', which HA ignores (the sensor
     * keeps its state, and no non-numeric value reaches a numeric sensor). */
    const struct entity_def ents[] = {
        {ENT_SENSOR, "speed", "Speed", "p",
         "{{ value_json.speed if 'speed' in value_json else '' }}", "speed",
         t2m_units_speed_name(c->units->speed), "measurement", NULL, NULL, -2, NULL},
        /* whole degrees: a compass reading, not a measurement worth decimals */
        {ENT_SENSOR, "heading", "Heading", "p",
         "{{ value_json.heading if 'heading' in value_json else '' }}", NULL, "\xc2\xb0",
         "measurement_angle", "mdi:compass", NULL, 0, NULL},
        {ENT_SENSOR, "accuracy", "Accuracy", "p",
         "{{ value_json.accuracy if 'accuracy' in value_json else '' }}", "distance", dist,
         "measurement", NULL, "diagnostic", -2, NULL},
        {ENT_SENSOR, "fix_time", "Fix time", "p", fix_t, "timestamp", NULL, NULL, NULL,
         "diagnostic", -1, NULL},
        {ENT_SENSOR, "last_seen", "Last seen", "p", seen_t, "timestamp", NULL, NULL, NULL,
         "diagnostic", -1, NULL},
        {ENT_SENSOR, "zone", "Zone", "p",
         "{{ value_json.zone if 'zone' in value_json else 'none' }}", "enum", NULL, NULL,
         "mdi:map-marker-radius", NULL, -1, zones},
        {ENT_SENSOR, "trip_distance", "Trip distance", "t", "{{ value_json.distance }}", "distance",
         trip_dist, "measurement", "mdi:map-marker-distance", NULL, -2, NULL},
        {ENT_BINARY, "driving", "Driving", "p",
         "{{ 'ON' if value_json.driving | default(false) else 'OFF' }}", "moving", NULL, NULL, NULL,
         NULL, -1, NULL},
        /* HA's event entity reads the type from event_type: the payload's event, kept whole as
         * the event's attributes. */
        {ENT_EVENT, "event", "Event", "e",
         "{{ dict(value_json, event_type=value_json.event) | to_json }}", NULL, NULL, NULL,
         "mdi:car-info", NULL, -1,
         "[\"trip_started\",\"trip_ended\",\"zone_entered\",\"zone_left\",\"device_removed\"]"},
    };
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
        if (!strcmp(ents[i].suffix, "zone") && c->n_zones == 0) continue;
        r = emit_entity(c, &d, &ents[i], emit, user);
        if (r != 0) return r;
    }
    return 0;
}

/* The bridge device block, complete (its entities carry it whole: it has no tracker). */
static void sb_bridge_device(struct t2m_out *b, const struct t2m_discovery_ctx *c)
{
    sb_device_open(b, c->bridge_id);
    sb_kvs(b, "name", "telematics2mqtt");
    sb_kvs(b, "manufacturer", "telematics2mqtt");
    sb_kvs(b, "model", "bridge");
    if (c->version && c->version[0]) sb_kvs(b, "sw_version", c->version);
    t2m_out_str(b, "}");
}

static int emit_bridge_entity(const struct t2m_discovery_ctx *c, const char *component,
                              const char *node, const char *object, const char *uid,
                              const char *entity_id, const char *name, const char *state,
                              const char *tmpl, const char *extra, t2m_emit_fn emit, void *user)
{
    char topic[DISC_TOPIC_MAX], payload[DISC_PAYLOAD_MAX];
    struct t2m_out b = {payload, sizeof payload, 0, false};
    payload[0] = '\0';
    if (fmt(topic, sizeof topic, "%s/%s/%s/%s/config", c->prefix, component, node, object) < 0)
        return -1;
    t2m_out_str(&b, "{");
    sb_kvs(&b, "name", name);
    sb_kvs(&b, "unique_id", uid);
    sb_kvs(&b, "default_entity_id", entity_id);
    sb_kvs(&b, "state_topic", state);
    sb_kvs(&b, "value_template", tmpl);
    t2m_out_str(&b, extra); /* further keys, each with its leading comma */
    sb_availability(&b, c);
    sb_bridge_device(&b, c);
    sb_origin(&b, c);
    t2m_out_str(&b, "}");
    if (b.full) return -1;
    return emit(user, topic, payload, b.len);
}

int t2m_discovery_bridge(const struct t2m_discovery_ctx *c, const char *const *instances, size_t n,
                         t2m_emit_fn emit, void *user)
{
    char cid[DISC_ID_MAX], node[DISC_ID_MAX + 16], pre[DISC_ID_MAX + 8];
    if (!ctx_ok(c) || !emit || (n > 0 && !instances)) return -1;
    if (t2m_topic_ha_id(cid, sizeof cid, c->bridge_id, strlen(c->bridge_id)) < 0 ||
        uid_prefix(pre, sizeof pre, c) < 0 || fmt(node, sizeof node, "t2m_bridge_%s", cid) < 0)
        return -1;
    char bslug[DISC_ID_MAX];
    if (slug(bslug, sizeof bslug, c->bridge_id, strlen(c->bridge_id)) < 0) return -1;
    for (size_t i = 0; i < n; i++) {
        const char *inst = instances[i];
        size_t ilen = inst ? strlen(inst) : 0;
        char hi[DISC_ID_MAX], si[DISC_SEG_MAX], islug[DISC_ID_MAX], object[DISC_ID_MAX + 16];
        char uid[3 * DISC_ID_MAX], eid[3 * DISC_ID_MAX], name[T2M_TOKEN_MAX + 32];
        char status[DISC_TOPIC_MAX];
        if (!token_ok(inst, ilen) || t2m_topic_ha_id(hi, sizeof hi, inst, ilen) < 0 ||
            t2m_topic_segment(si, sizeof si, inst, ilen) < 0 ||
            slug(islug, sizeof islug, inst, ilen) < 0 ||
            t2m_topic_join(status, sizeof status, 3, c->base_topic, si, "status") < 0)
            return -1;
        if (fmt(object, sizeof object, "%s_connected", hi) < 0 ||
            fmt(uid, sizeof uid, "%sbridge__%s_connected", pre, hi) < 0 ||
            fmt(eid, sizeof eid, "binary_sensor.%s_%s_connected", bslug, islug) < 0 ||
            fmt(name, sizeof name, "Instance %s connected", inst) < 0)
            return -1;
        int r = emit_bridge_entity(
            c, "binary_sensor", node, object, uid, eid, name, status,
            "{{ 'ON' if value_json.state == 'subscribed' else 'OFF' }}",
            ",\"payload_on\":\"ON\",\"payload_off\":\"OFF\",\"device_class\":\"connectivity\","
            "\"entity_category\":\"diagnostic\"",
            emit, user);
        if (r != 0) return r;
        if (fmt(object, sizeof object, "%s_state", hi) < 0 ||
            fmt(uid, sizeof uid, "%sbridge__%s_state", pre, hi) < 0 ||
            fmt(eid, sizeof eid, "sensor.%s_%s_state", bslug, islug) < 0 ||
            fmt(name, sizeof name, "Instance %s state", inst) < 0)
            return -1;
        r = emit_bridge_entity(
            c, "sensor", node, object, uid, eid, name, status, "{{ value_json.state }}",
            ",\"device_class\":\"enum\",\"options\":[\"connecting\","
            "\"authenticating\",\"subscribed\",\"reconnecting\",\"auth_failed\"],"
            "\"entity_category\":\"diagnostic\"",
            emit, user);
        if (r != 0) return r;
    }
    char uid[DISC_ID_MAX + 32], eid[DISC_ID_MAX + 32], info[DISC_TOPIC_MAX];
    if (fmt(uid, sizeof uid, "%sbridge__devices", pre) < 0 ||
        fmt(eid, sizeof eid, "sensor.%s_devices", bslug) < 0 ||
        bridge_join(info, sizeof info, c, "info") < 0)
        return -1;
    return emit_bridge_entity(
        c, "sensor", node, "devices", uid, eid, "Devices", info, "{{ value_json.devices }}",
        ",\"state_class\":\"measurement\",\"icon\":\"mdi:car-multiple\"", emit, user);
}
