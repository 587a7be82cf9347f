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
    char event[DISC_TOPIC_MAX];     /* B/<I>/<D>/event */
    const char *name;               /* the device's name: the alias, or the token */
    size_t name_len;
    const char *via; /* the bridge device's identifier */
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

/* ---- one config per entity, or one per device (SPEC section 4) ---- */

/* Where entity configs go. Entity form: each its own retained config on
 * P/<component>/<node>/<object>/config, carrying availability, device and origin. Device form
 * (Home Assistant 2024.11+): one config on P/device/<node>/config holding device, origin and
 * availability once, and every entity under "components" by its object id with its platform. */
struct sink {
    const struct t2m_discovery_ctx *c;
    t2m_emit_fn emit;
    void *user;
    struct t2m_out o; /* the config being written */
    char topic[DISC_TOPIC_MAX];
    char *buf; /* device form: DISC_DEVICE_MAX bytes */
    char ebuf[DISC_PAYLOAD_MAX];
    int rc; /* the first emit result or -1 */
};

#define DISC_DEVICE_MAX 65536 /* a device's config: ~12 components of up to ~3 KB escaped ids */

/* The device block, writer given by the caller: full for the tracker and the bridge, the
 * identifiers alone on the other entities of a device (entity form). */
typedef void (*device_fn)(struct t2m_out *b, const void *arg, bool full);

static void sink_begin(struct sink *s, const char *node, device_fn dev, const void *arg)
{
    s->rc = 0;
    if (!s->c->device_based) return;
    s->o = (struct t2m_out){s->buf, DISC_DEVICE_MAX, 0, false};
    if (fmt(s->topic, sizeof s->topic, "%s/device/%s/config", s->c->prefix, node) < 0)
        s->o.full = true;
    t2m_out_str(&s->o, "{");
    dev(&s->o, arg, true);
    sb_origin(&s->o, s->c);
    sb_availability(&s->o, s->c);
    sb_key(&s->o, "components");
    t2m_out_str(&s->o, "{");
}

/* Opens one entity: its own config (entity form) or its component (device form). */
static void entity_open(struct sink *s, const char *component, const char *node, const char *object)
{
    if (s->c->device_based) {
        sb_key(&s->o, object);
        t2m_out_str(&s->o, "{");
        sb_kvs(&s->o, "platform", component);
        return;
    }
    s->o = (struct t2m_out){s->ebuf, sizeof s->ebuf, 0, false};
    if (fmt(s->topic, sizeof s->topic, "%s/%s/%s/%s/config", s->c->prefix, component, node,
            object) < 0)
        s->o.full = true;
    t2m_out_str(&s->o, "{");
}

static void entity_close(struct sink *s, device_fn dev, const void *arg, bool full_device)
{
    if (s->c->device_based) {
        t2m_out_str(&s->o, "}");
        return;
    }
    sb_availability(&s->o, s->c);
    dev(&s->o, arg, full_device);
    sb_origin(&s->o, s->c);
    t2m_out_str(&s->o, "}");
    if (s->rc == 0) s->rc = s->o.full ? -1 : s->emit(s->user, s->topic, s->ebuf, s->o.len);
}

static int sink_end(struct sink *s)
{
    if (!s->c->device_based) return s->rc;
    t2m_out_str(&s->o, "}}");
    if (s->o.full) return -1;
    return s->emit(s->user, s->topic, s->buf, s->o.len);
}

static void device_block(struct t2m_out *b, const void *arg, bool full)
{
    const struct dev_ids *d = arg;
    sb_device_open(b, d->uid);
    if (full) {
        sb_kv(b, "name", d->name, d->name_len);
        sb_kvs(b, "manufacturer", "Damoov / telematicssdk");
        sb_kvs(b, "model", "Telematics device");
        sb_kvs(b, "via_device", d->via);
    }
    t2m_out_str(b, "}");
}

/* The device tracker's attributes: where the device is and how well, not what changes only
 * because time passes (last seen, fix time: SPEC 4, light on the recorder). Keys the state
 * lacks are left out. */
#define TRACKER_ATTRIBUTES                                                                         \
    "{{ dict(value_json | dictsort | selectattr(0, 'in', ['latitude', 'longitude', "               \
    "'gps_accuracy', 'speed', 'heading', 'driving', 'zone']) | list) | to_json }}"

static void tracker(struct sink *s, const struct dev_ids *d)
{
    entity_open(s, "device_tracker", d->node, s->c->device_based ? "tracker" : d->dev);
    /* null: the entity takes the device's name (HA 2023.8+ entity naming) */
    sb_key(&s->o, "name");
    t2m_out_str(&s->o, "null");
    sb_kvs(&s->o, "unique_id", d->uid);
    sb_entity_id(&s->o, "device_tracker", d->slug, NULL);
    sb_kvs(&s->o, "json_attributes_topic", d->position);
    sb_kvs(&s->o, "json_attributes_template", TRACKER_ATTRIBUTES);
    sb_kvs(&s->o, "source_type", "gps");
    sb_kvs(&s->o, "icon", "mdi:car");
    entity_close(s, device_block, d, true);
}

enum ent_kind { ENT_SENSOR, ENT_BINARY, ENT_EVENT };

struct entity_def {
    enum ent_kind kind;
    const char *suffix;       /* object_id / unique_id / entity id suffix */
    const char *name;         /* the entity's name beside the device's */
    const char *topic;        /* state topic: 'p' position, 'e' event (first char) */
    const char *tmpl;         /* value_template */
    const char *device_class; /* NULL: none */
    const char *unit;         /* NULL: none */
    const char *state_class;  /* NULL: none */
    const char *icon;         /* NULL: the device class's */
    const char *category;     /* NULL: primary entity */
    int precision;            /* suggested_display_precision; -1 none, -2 units.precision */
    const char *options;      /* a JSON array: enum options or event_types; NULL: none */
    bool disabled;            /* enabled_by_default false: on request only (SPEC 4) */
};

static void entity(struct sink *s, const struct dev_ids *d, const struct entity_def *e)
{
    static const char *const comp[] = {"sensor", "binary_sensor", "event"};
    char object[DISC_ID_MAX + 32], uid[sizeof d->uid + 32], prec[16];
    if (fmt(object, sizeof object, "%s_%s", d->dev, e->suffix) < 0 ||
        fmt(uid, sizeof uid, "%s_%s", d->uid, e->suffix) < 0 ||
        fmt(prec, sizeof prec, "%d", e->precision == -2 ? s->c->units->precision : e->precision) <
            0) {
        s->rc = -1;
        return;
    }
    entity_open(s, comp[e->kind], d->node, s->c->device_based ? e->suffix : object);
    struct t2m_out *b = &s->o;
    sb_kvs(b, "name", e->name);
    sb_kvs(b, "unique_id", uid);
    sb_entity_id(b, comp[e->kind], d->slug, e->suffix);
    sb_kvs(b, "state_topic", e->topic[0] == 'e' ? d->event : d->position);
    sb_kvs(b, "value_template", e->tmpl);
    if (e->kind == ENT_BINARY) {
        sb_kvs(b, "payload_on", "ON");
        sb_kvs(b, "payload_off", "OFF");
    }
    if (e->device_class) sb_kvs(b, "device_class", e->device_class);
    if (e->options) {
        sb_key(b, e->kind == ENT_EVENT ? "event_types" : "options");
        t2m_out_str(b, e->options);
    }
    if (e->unit) sb_kvs(b, "unit_of_measurement", e->unit);
    if (e->state_class) sb_kvs(b, "state_class", e->state_class);
    if (e->precision != -1) {
        sb_key(b, "suggested_display_precision");
        t2m_out_str(b, prec);
    }
    if (e->icon) sb_kvs(b, "icon", e->icon);
    if (e->category) sb_kvs(b, "entity_category", e->category);
    if (e->disabled) {
        sb_key(b, "enabled_by_default");
        t2m_out_str(b, "false");
    }
    entity_close(s, device_block, d, false);
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

/* A trip figure of the state's live trip (SPEC 2.1), '' before the first trip. */
#define TRIP_VALUE(field) "{{ value_json.trip." field " if 'trip' in value_json else '' }}"

int t2m_discovery_device(const struct t2m_discovery_ctx *c, const char *instance, size_t ilen,
                         const char *token, size_t tlen, const char *name, t2m_emit_fn emit,
                         void *user)
{
    struct dev_ids d;
    if (!ctx_ok(c) || !emit || !token_ok(instance, ilen) || !token_ok(token, tlen)) return -1;
    const char *dname = (name && name[0]) ? name : token;
    size_t dlen = (name && name[0]) ? strlen(name) : tlen;
    if (dev_ids_init(&d, c, instance, ilen, token, tlen, dname, dlen) < 0) return -1;
    char fix_t[96], seen_t[96], zones[4096];
    if (ts_template(fix_t, sizeof fix_t, "timestamp", c->units->timestamp) < 0 ||
        ts_template(seen_t, sizeof seen_t, "last_seen", c->units->timestamp) < 0 ||
        zone_options(zones, sizeof zones, c) < 0)
        return -1;
    const char *dist = t2m_units_distance_name(c->units->distance);
    const char *trip_dist = c->units->distance == T2M_DIST_FT ? "mi" : "km";
    const char *speed = t2m_units_speed_name(c->units->speed);
    /* A numeric field the device never reported renders '', which HA ignores (the sensor
     * keeps its state, and no non-numeric value reaches a numeric sensor). Fix time and last
     * seen change with every update merely because time passes: disabled by default, as
     * accuracy is diagnostic (SPEC 4: light on the recorder). */
    const struct entity_def ents[] = {
        {ENT_SENSOR, "speed", "Speed", "p",
         "{{ value_json.speed if 'speed' in value_json else '' }}", "speed", speed, "measurement",
         NULL, NULL, -2, NULL, false},
        /* whole degrees: a compass reading, not a measurement worth decimals */
        {ENT_SENSOR, "heading", "Heading", "p",
         "{{ value_json.heading if 'heading' in value_json else '' }}", NULL, "\xc2\xb0",
         "measurement_angle", "mdi:compass", NULL, 0, NULL, false},
        {ENT_SENSOR, "accuracy", "Accuracy", "p",
         "{{ value_json.accuracy if 'accuracy' in value_json else '' }}", "distance", dist,
         "measurement", NULL, "diagnostic", -2, NULL, false},
        {ENT_SENSOR, "fix_time", "Fix time", "p", fix_t, "timestamp", NULL, NULL, NULL,
         "diagnostic", -1, NULL, true},
        {ENT_SENSOR, "last_seen", "Last seen", "p", seen_t, "timestamp", NULL, NULL, NULL,
         "diagnostic", -1, NULL, true},
        {ENT_SENSOR, "zone", "Zone", "p",
         "{{ value_json.zone if 'zone' in value_json else 'none' }}", "enum", NULL, NULL,
         "mdi:map-marker-radius", NULL, -1, zones, false},
        {ENT_SENSOR, "trip_distance", "Trip distance", "p", TRIP_VALUE("distance"), "distance",
         trip_dist, "measurement", "mdi:map-marker-distance", NULL, -2, NULL, false},
        {ENT_SENSOR, "trip_duration", "Trip duration", "p", TRIP_VALUE("duration"), "duration", "s",
         "measurement", "mdi:timer-outline", NULL, 0, NULL, false},
        {ENT_SENSOR, "trip_avg_speed", "Trip average speed", "p", TRIP_VALUE("avg_speed"), "speed",
         speed, "measurement", "mdi:speedometer-medium", NULL, -2, NULL, false},
        {ENT_BINARY, "driving", "Driving", "p",
         "{{ 'ON' if value_json.driving | default(false) else 'OFF' }}", "moving", NULL, NULL, NULL,
         NULL, -1, NULL, false},
        /* HA's event entity reads the type from event_type: the payload's event, kept whole as
         * the event's attributes. */
        {ENT_EVENT, "event", "Event", "e",
         "{{ dict(value_json, event_type=value_json.event) | to_json }}", NULL, NULL, NULL,
         "mdi:car-info", NULL, -1,
         "[\"trip_started\",\"trip_ended\",\"zone_entered\",\"zone_left\",\"device_removed\"]",
         false},
    };
    char dbuf[DISC_DEVICE_MAX];
    struct sink s = {.c = c, .emit = emit, .user = user, .buf = dbuf};
    d.name = dname;
    d.name_len = dlen;
    d.via = c->bridge_id;
    sink_begin(&s, d.uid, device_block, &d);
    tracker(&s, &d);
    for (size_t i = 0; i < sizeof ents / sizeof ents[0] && s.rc == 0; i++) {
        if (!strcmp(ents[i].suffix, "zone") && c->n_zones == 0) continue;
        entity(&s, &d, &ents[i]);
    }
    return s.rc ? s.rc : sink_end(&s);
}

/* The bridge device block, complete (its entities carry it whole: it has no tracker). */
static void bridge_block(struct t2m_out *b, const void *arg, bool full)
{
    const struct t2m_discovery_ctx *c = arg;
    (void)full;
    sb_device_open(b, c->bridge_id);
    sb_kvs(b, "name", "telematics2mqtt");
    sb_kvs(b, "manufacturer", "telematics2mqtt");
    sb_kvs(b, "model", "bridge");
    if (c->version && c->version[0]) sb_kvs(b, "sw_version", c->version);
    t2m_out_str(b, "}");
}

static void bridge_entity(struct sink *s, const char *component, const char *node,
                          const char *object, const char *uid, const char *entity_id,
                          const char *name, const char *state, const char *tmpl, const char *extra)
{
    entity_open(s, component, node, object);
    sb_kvs(&s->o, "name", name);
    sb_kvs(&s->o, "unique_id", uid);
    sb_kvs(&s->o, "default_entity_id", entity_id);
    sb_kvs(&s->o, "state_topic", state);
    sb_kvs(&s->o, "value_template", tmpl);
    t2m_out_str(&s->o, extra); /* further keys, each with its leading comma */
    entity_close(s, bridge_block, s->c, true);
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
    char dbuf[DISC_DEVICE_MAX];
    struct sink s = {.c = c, .emit = emit, .user = user, .buf = dbuf};
    sink_begin(&s, node, bridge_block, c);
    for (size_t i = 0; i < n && s.rc == 0; i++) {
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
        bridge_entity(&s, "binary_sensor", node, object, uid, eid, name, status,
                      "{{ 'ON' if value_json.state == 'subscribed' else 'OFF' }}",
                      ",\"payload_on\":\"ON\",\"payload_off\":\"OFF\",\"device_class\":"
                      "\"connectivity\",\"entity_category\":\"diagnostic\"");
        if (fmt(object, sizeof object, "%s_state", hi) < 0 ||
            fmt(uid, sizeof uid, "%sbridge__%s_state", pre, hi) < 0 ||
            fmt(eid, sizeof eid, "sensor.%s_%s_state", bslug, islug) < 0 ||
            fmt(name, sizeof name, "Instance %s state", inst) < 0)
            return -1;
        bridge_entity(&s, "sensor", node, object, uid, eid, name, status, "{{ value_json.state }}",
                      ",\"device_class\":\"enum\",\"options\":[\"connecting\","
                      "\"authenticating\",\"subscribed\",\"reconnecting\",\"auth_failed\"],"
                      "\"entity_category\":\"diagnostic\"");
        /* SPEC 7: when the access token expires (absent from the status when the token carries
         * no exp: the sensor is then unknown). */
        char tmpl[128], when[96];
        if (ts_template(when, sizeof when, "token_expires", c->units->timestamp) < 0 ||
            fmt(tmpl, sizeof tmpl, "%.*s if value_json.token_expires is defined else None }}",
                (int)strlen(when) - 3, when) < 0 ||
            fmt(object, sizeof object, "%s_token_expires", hi) < 0 ||
            fmt(uid, sizeof uid, "%sbridge__%s_token_expires", pre, hi) < 0 ||
            fmt(eid, sizeof eid, "sensor.%s_%s_token_expires", bslug, islug) < 0 ||
            fmt(name, sizeof name, "Instance %s token expires", inst) < 0)
            return -1;
        bridge_entity(&s, "sensor", node, object, uid, eid, name, status, tmpl,
                      ",\"device_class\":\"timestamp\",\"icon\":\"mdi:key-chain\","
                      "\"entity_category\":\"diagnostic\"");
    }
    char uid[DISC_ID_MAX + 32], eid[DISC_ID_MAX + 32], info[DISC_TOPIC_MAX];
    if (s.rc || fmt(uid, sizeof uid, "%sbridge__devices", pre) < 0 ||
        fmt(eid, sizeof eid, "sensor.%s_devices", bslug) < 0 ||
        bridge_join(info, sizeof info, c, "info") < 0)
        return s.rc ? s.rc : -1;
    bridge_entity(&s, "sensor", node, "devices", uid, eid, "Devices", info,
                  "{{ value_json.devices }}",
                  ",\"state_class\":\"measurement\",\"icon\":\"mdi:car-multiple\"");
    return s.rc ? s.rc : sink_end(&s);
}
