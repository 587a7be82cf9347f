/* payload.c - an update -> position payload, attribute values, instance status (SPEC section 2).
 * Hand-written appends into the caller's buffer: this runs once per update on the hot path. */
#include "payload.h"

#include <string.h>

/* Used when a caller passes no units: the SPEC's defaults (metric, ISO in UTC, 2 decimals). */
static const struct t2m_units default_units = {T2M_SPEED_KMH, T2M_DIST_M, T2M_TS_ISO, 2, NULL};

struct out {
    char *buf;
    size_t n, len;
    int full;
};

static void put(struct out *o, const char *s, size_t len)
{
    if (o->full || len >= o->n - o->len) {
        o->full = 1;
        return;
    }
    memcpy(o->buf + o->len, s, len);
    o->len += len;
    o->buf[o->len] = '\0';
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_json(struct out *o, const char *s, size_t len)
{
    if (o->full) return;
    size_t w = t2m_json_escape(o->buf + o->len, o->n - o->len, s, len);
    if (w == 0) o->full = 1;
    o->len += w;
}

static void put_fixed(struct out *o, double v, int precision)
{
    if (o->full) return;
    size_t w = t2m_units_format_fixed(o->buf + o->len, o->n - o->len, v, precision);
    if (w == 0) o->full = 1;
    o->len += w;
}

static void put_text(struct out *o, const char *text, double v)
{
    if (text[0]) {
        put(o, text, strnlen(text, 32));
        return;
    }
    /* An update built without the parser: derive the same shortest text. */
    char tmp[32];
    size_t l = t2m_units_format_shortest(tmp, sizeof(tmp), v);
    if (l == 0) o->full = 1;
    put(o, tmp, l);
}

/* ISO timestamps are JSON strings; unix and unix_ms are numbers. */
static void put_ts_json(struct out *o, int64_t ts_ms, const struct t2m_units *units)
{
    char tmp[48];
    size_t l = t2m_units_format_ts(tmp, sizeof(tmp), ts_ms, units->timestamp, units->tz);
    if (l == 0) {
        o->full = 1;
        return;
    }
    if (units->timestamp == T2M_TS_ISO) put(o, "\"", 1);
    put(o, tmp, l);
    if (units->timestamp == T2M_TS_ISO) put(o, "\"", 1);
}

static size_t finish(struct out *o)
{
    if (o->full) {
        if (o->n) o->buf[0] = '\0';
        return 0;
    }
    return o->len;
}

size_t t2m_payload_position(char *buf, size_t n, const char *instance_id, size_t instance_len,
                            const struct t2m_update *u, const struct t2m_units *units)
{
    struct out o = {buf, n, 0, !buf || n == 0 || !u || (!instance_id && instance_len)};
    if (o.full) return 0;
    if (!units) units = &default_units;
    PUT_LIT(&o, "{\"instance_id\":");
    put_json(&o, instance_id, instance_len);
    PUT_LIT(&o, ",\"device_token\":");
    put_json(&o, u->device_token, u->device_token_len);
    if (u->has & T2M_HAS_TRACK) {
        PUT_LIT(&o, ",\"track_token\":");
        put_json(&o, u->track_token, u->track_token_len);
    }
    if (u->has & T2M_HAS_LAT) {
        PUT_LIT(&o, ",\"latitude\":");
        put_text(&o, u->lat_text, u->lat);
    }
    if (u->has & T2M_HAS_LON) {
        PUT_LIT(&o, ",\"longitude\":");
        put_text(&o, u->lon_text, u->lon);
    }
    if (u->has & T2M_HAS_SPEED) {
        PUT_LIT(&o, ",\"speed\":");
        put_fixed(&o, t2m_units_speed(u->speed, units->speed), units->precision);
        PUT_LIT(&o, ",\"speed_unit\":\"");
        const char *name = t2m_units_speed_name(units->speed);
        put(&o, name, strlen(name));
        PUT_LIT(&o, "\"");
    }
    if (u->has & T2M_HAS_ACCURACY) {
        PUT_LIT(&o, ",\"accuracy\":");
        put_fixed(&o, t2m_units_distance(u->accuracy, units->distance), units->precision);
        PUT_LIT(&o, ",\"accuracy_unit\":\"");
        const char *name = t2m_units_distance_name(units->distance);
        put(&o, name, strlen(name));
        PUT_LIT(&o, "\",\"gps_accuracy\":");
        put_fixed(&o, u->accuracy, units->precision);
    }
    if (u->has & T2M_HAS_HEADING) {
        PUT_LIT(&o, ",\"heading\":");
        put_fixed(&o, u->heading, units->precision);
    }
    if (u->has & T2M_HAS_TS) {
        PUT_LIT(&o, ",\"timestamp\":");
        put_ts_json(&o, u->ts_ms, units);
    }
    PUT_LIT(&o, "}");
    return finish(&o);
}

static const char *const attr_names[T2M_ATTR_COUNT] = {
    "latitude", "longitude", "speed", "accuracy", "heading", "timestamp", "track_token",
};

const char *t2m_payload_attr_name(enum t2m_attr a)
{
    return (unsigned)a < T2M_ATTR_COUNT ? attr_names[a] : "";
}

size_t t2m_payload_attribute(char *buf, size_t n, enum t2m_attr a, const struct t2m_update *u,
                             const struct t2m_units *units)
{
    struct out o = {buf, n, 0, !buf || n == 0 || !u};
    if (o.full) return 0;
    if (!units) units = &default_units;
    static const unsigned bits[T2M_ATTR_COUNT] = {T2M_HAS_LAT,      T2M_HAS_LON,     T2M_HAS_SPEED,
                                                  T2M_HAS_ACCURACY, T2M_HAS_HEADING, T2M_HAS_TS,
                                                  T2M_HAS_TRACK};
    if ((unsigned)a >= T2M_ATTR_COUNT || !(u->has & bits[a])) {
        buf[0] = '\0';
        return 0;
    }
    switch (a) {
    case T2M_ATTR_LATITUDE:
        put_text(&o, u->lat_text, u->lat);
        break;
    case T2M_ATTR_LONGITUDE:
        put_text(&o, u->lon_text, u->lon);
        break;
    case T2M_ATTR_SPEED:
        put_fixed(&o, t2m_units_speed(u->speed, units->speed), units->precision);
        break;
    case T2M_ATTR_ACCURACY:
        put_fixed(&o, t2m_units_distance(u->accuracy, units->distance), units->precision);
        break;
    case T2M_ATTR_HEADING:
        put_fixed(&o, u->heading, units->precision);
        break;
    case T2M_ATTR_TIMESTAMP: {
        if (n == 0) break;
        size_t l = t2m_units_format_ts(buf, n, u->ts_ms, units->timestamp, units->tz);
        o.len = l;
        o.full = l == 0;
        break;
    }
    case T2M_ATTR_TRACK_TOKEN:
        put(&o, u->track_token, u->track_token_len);
        break;
    default:
        break;
    }
    return finish(&o);
}

size_t t2m_payload_status(char *buf, size_t n, const char *state, int64_t since_ms,
                          const char *connection_id, int error_code, const char *error_message,
                          const struct t2m_units *units)
{
    struct out o = {buf, n, 0, !buf || n == 0};
    if (o.full) return 0;
    if (!units) units = &default_units;
    if (!state) state = "";
    PUT_LIT(&o, "{\"state\":");
    put_json(&o, state, strlen(state));
    PUT_LIT(&o, ",\"since\":");
    put_ts_json(&o, since_ms, units);
    if (connection_id && connection_id[0]) {
        PUT_LIT(&o, ",\"connection_id\":");
        put_json(&o, connection_id, strlen(connection_id));
    }
    if (error_code != 0) {
        char code[16];
        size_t l = t2m_units_format_fixed(code, sizeof(code), error_code, 0);
        PUT_LIT(&o, ",\"error\":{\"code\":");
        put(&o, code, l);
        PUT_LIT(&o, ",\"message\":");
        put_json(&o, error_message ? error_message : "", error_message ? strlen(error_message) : 0);
        PUT_LIT(&o, "}");
    }
    PUT_LIT(&o, "}");
    return finish(&o);
}
