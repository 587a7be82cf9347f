/* payload.c - an update -> position payload, attribute values, instance status (SPEC section 2).
 * Hand-written appends into the caller's buffer: this runs once per update on the hot path. */
#include "payload.h"

#include <stdio.h>
#include <string.h>

#include "out.h"

/* Used when a caller passes no units: the SPEC's defaults (metric, ISO in UTC, 2 decimals). */
static const struct t2m_units default_units = {T2M_SPEED_KMH, T2M_DIST_M, T2M_TS_ISO, 2, NULL};

static void put_text(struct t2m_out *o, const char *text, double v)
{
    if (text[0]) {
        t2m_out_put(o, text, strnlen(text, 32));
        return;
    }
    /* An update built without the parser: derive the same shortest text. */
    char tmp[32];
    size_t l = t2m_units_format_shortest(tmp, sizeof(tmp), v);
    if (l == 0) o->full = true;
    t2m_out_put(o, tmp, l);
}

/* ISO timestamps are JSON strings; unix and unix_ms are numbers. */
static void put_ts_json(struct t2m_out *o, int64_t ts_ms, const struct t2m_units *units)
{
    char tmp[48];
    size_t l = t2m_units_format_ts(tmp, sizeof(tmp), ts_ms, units->timestamp, units->tz);
    if (l == 0) {
        o->full = true;
        return;
    }
    if (units->timestamp == T2M_TS_ISO) t2m_out_put(o, "\"", 1);
    t2m_out_put(o, tmp, l);
    if (units->timestamp == T2M_TS_ISO) t2m_out_put(o, "\"", 1);
}

size_t t2m_payload_position(char *buf, size_t n, const char *instance_id, size_t instance_len,
                            const struct t2m_update *u, const struct t2m_units *units)
{
    return t2m_payload_state(buf, n, instance_id, instance_len, u, NULL, units);
}

size_t t2m_payload_state(char *buf, size_t n, const char *instance_id, size_t instance_len,
                         const struct t2m_update *u, const struct t2m_state_extra *x,
                         const struct t2m_units *units)
{
    struct t2m_out o = {buf, n, 0, !buf || n == 0 || !u || (!instance_id && instance_len)};
    if (o.full) return 0;
    if (!units) units = &default_units;
    T2M_OUT_LIT(&o, "{\"instance_id\":");
    t2m_out_json(&o, instance_id, instance_len);
    T2M_OUT_LIT(&o, ",\"device_token\":");
    t2m_out_json(&o, u->device_token, u->device_token_len);
    if (x && x->name) {
        T2M_OUT_LIT(&o, ",\"name\":");
        t2m_out_json(&o, x->name, strlen(x->name));
    }
    if (u->has & T2M_HAS_TRACK) {
        T2M_OUT_LIT(&o, ",\"track_token\":");
        t2m_out_json(&o, u->track_token, u->track_token_len);
    }
    if (u->has & T2M_HAS_LAT) {
        T2M_OUT_LIT(&o, ",\"latitude\":");
        put_text(&o, u->lat_text, u->lat);
    }
    if (u->has & T2M_HAS_LON) {
        T2M_OUT_LIT(&o, ",\"longitude\":");
        put_text(&o, u->lon_text, u->lon);
    }
    if (u->has & T2M_HAS_SPEED) {
        T2M_OUT_LIT(&o, ",\"speed\":");
        t2m_out_fixed(&o, t2m_units_speed(u->speed, units->speed), units->precision);
        T2M_OUT_LIT(&o, ",\"speed_unit\":\"");
        const char *name = t2m_units_speed_name(units->speed);
        t2m_out_put(&o, name, strlen(name));
        T2M_OUT_LIT(&o, "\"");
    }
    if (u->has & T2M_HAS_ACCURACY) {
        T2M_OUT_LIT(&o, ",\"accuracy\":");
        t2m_out_fixed(&o, t2m_units_distance(u->accuracy, units->distance), units->precision);
        T2M_OUT_LIT(&o, ",\"accuracy_unit\":\"");
        const char *name = t2m_units_distance_name(units->distance);
        t2m_out_put(&o, name, strlen(name));
        T2M_OUT_LIT(&o, "\",\"gps_accuracy\":");
        t2m_out_fixed(&o, u->accuracy, units->precision);
    }
    if (u->has & T2M_HAS_HEADING) {
        T2M_OUT_LIT(&o, ",\"heading\":");
        t2m_out_fixed(&o, u->heading, units->precision);
    }
    if (u->has & T2M_HAS_TS) {
        T2M_OUT_LIT(&o, ",\"timestamp\":");
        put_ts_json(&o, u->ts_ms, units);
    }
    if (x && x->last_seen_ms) {
        T2M_OUT_LIT(&o, ",\"last_seen\":");
        put_ts_json(&o, x->last_seen_ms, units);
    }
    if (x && x->driving >= 0) {
        if (x->driving)
            T2M_OUT_LIT(&o, ",\"driving\":true");
        else
            T2M_OUT_LIT(&o, ",\"driving\":false");
    }
    if (x && x->trip && x->trip_len) {
        T2M_OUT_LIT(&o, ",\"trip\":");
        t2m_out_put(&o, x->trip, x->trip_len);
    }
    if (x && x->zone) {
        T2M_OUT_LIT(&o, ",\"zone\":");
        t2m_out_json(&o, x->zone, strlen(x->zone));
    }
    T2M_OUT_LIT(&o, "}");
    return t2m_out_finish(&o);
}

static const char *const attr_names[T2M_ATTR_COUNT] = {
    "latitude",  "longitude",   "speed",     "accuracy", "heading",
    "timestamp", "track_token", "last_seen", "driving",
};

const char *t2m_payload_attr_name(enum t2m_attr a)
{
    return (unsigned)a < T2M_ATTR_COUNT ? attr_names[a] : "";
}

size_t t2m_payload_state_attribute(char *buf, size_t n, enum t2m_attr a, const struct t2m_update *u,
                                   const struct t2m_state_extra *x, const struct t2m_units *units)
{
    struct t2m_out o = {buf, n, 0, !buf || n == 0 || !u};
    if (o.full) return 0;
    if (!units) units = &default_units;
    static const unsigned bits[T2M_ATTR_TRACK_TOKEN + 1] = {
        T2M_HAS_LAT,     T2M_HAS_LON, T2M_HAS_SPEED, T2M_HAS_ACCURACY,
        T2M_HAS_HEADING, T2M_HAS_TS,  T2M_HAS_TRACK};
    bool present = (unsigned)a <= T2M_ATTR_TRACK_TOKEN ? (u->has & bits[a]) != 0
                   : a == T2M_ATTR_LAST_SEEN           ? x && x->last_seen_ms
                   : a == T2M_ATTR_DRIVING             ? x && x->driving >= 0
                                                       : false;
    if (!present) {
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
        t2m_out_fixed(&o, t2m_units_speed(u->speed, units->speed), units->precision);
        break;
    case T2M_ATTR_ACCURACY:
        t2m_out_fixed(&o, t2m_units_distance(u->accuracy, units->distance), units->precision);
        break;
    case T2M_ATTR_HEADING:
        t2m_out_fixed(&o, u->heading, units->precision);
        break;
    case T2M_ATTR_TIMESTAMP: {
        if (n == 0) break;
        size_t l = t2m_units_format_ts(buf, n, u->ts_ms, units->timestamp, units->tz);
        o.len = l;
        o.full = l == 0;
        break;
    }
    case T2M_ATTR_TRACK_TOKEN:
        t2m_out_put(&o, u->track_token, u->track_token_len);
        break;
    case T2M_ATTR_LAST_SEEN: {
        size_t l = t2m_units_format_ts(buf, n, x->last_seen_ms, units->timestamp, units->tz);
        o.len = l;
        o.full = l == 0;
        break;
    }
    case T2M_ATTR_DRIVING:
        t2m_out_str(&o, x->driving ? "true" : "false");
        break;
    default:
        break;
    }
    return t2m_out_finish(&o);
}

size_t t2m_payload_status(char *buf, size_t n, const char *state, int64_t since_ms,
                          const char *connection_id, int error_code, const char *error_message,
                          int64_t token_expires_ms, const struct t2m_units *units)
{
    struct t2m_out o = {buf, n, 0, !buf || n == 0};
    if (o.full) return 0;
    if (!units) units = &default_units;
    if (!state) state = "";
    T2M_OUT_LIT(&o, "{\"state\":");
    t2m_out_json(&o, state, strlen(state));
    T2M_OUT_LIT(&o, ",\"since\":");
    put_ts_json(&o, since_ms, units);
    if (connection_id && connection_id[0]) {
        T2M_OUT_LIT(&o, ",\"connection_id\":");
        t2m_out_json(&o, connection_id, strlen(connection_id));
    }
    if (error_code != 0) {
        char code[16];
        size_t l = t2m_units_format_fixed(code, sizeof(code), error_code, 0);
        T2M_OUT_LIT(&o, ",\"error\":{\"code\":");
        t2m_out_put(&o, code, l);
        T2M_OUT_LIT(&o, ",\"message\":");
        t2m_out_json(&o, error_message ? error_message : "",
                     error_message ? strlen(error_message) : 0);
        T2M_OUT_LIT(&o, "}");
    }
    if (token_expires_ms > 0) {
        T2M_OUT_LIT(&o, ",\"token_expires\":");
        put_ts_json(&o, token_expires_ms, units);
    }
    T2M_OUT_LIT(&o, "}");
    return t2m_out_finish(&o);
}

size_t t2m_payload_info(char *buf, size_t n, const char *version, int64_t started_ms,
                        const char *const *ids, const char *const *states, size_t n_inst,
                        size_t devices, const char *config_json, const struct t2m_units *units)
{
    struct t2m_out o = {buf, n, 0, !buf || n == 0};
    if (o.full) return 0;
    if (!units) units = &default_units;
    T2M_OUT_LIT(&o, "{\"version\":");
    t2m_out_json(&o, version ? version : "", version ? strlen(version) : 0);
    T2M_OUT_LIT(&o, ",\"started\":");
    put_ts_json(&o, started_ms, units);
    T2M_OUT_LIT(&o, ",\"instances\":[");
    for (size_t i = 0; i < n_inst; i++) {
        T2M_OUT_LIT(&o, "{\"id\":");
        t2m_out_json(&o, ids[i], strlen(ids[i]));
        T2M_OUT_LIT(&o, ",\"state\":");
        t2m_out_json(&o, states[i], strlen(states[i]));
        t2m_out_str(&o, i + 1 < n_inst ? "}," : "}");
    }
    char num[32];
    snprintf(num, sizeof(num), "],\"devices\":%zu,\"config\":", devices);
    t2m_out_str(&o, num);
    t2m_out_str(&o, config_json ? config_json : "{}");
    T2M_OUT_LIT(&o, "}");
    return t2m_out_finish(&o);
}

size_t t2m_payload_healthz(char *buf, size_t n, const char *reason, bool mqtt_connected,
                           const char *broker, size_t devices, const char *const *ids,
                           const char *const *states, size_t n_inst)
{
    struct t2m_out o = {buf, n, 0, !buf || n == 0};
    if (o.full) return 0;
    t2m_out_str(&o, reason ? "{\"status\":\"error\",\"reason\":" : "{\"status\":\"ok\"");
    if (reason) t2m_out_json(&o, reason, strlen(reason));
    t2m_out_str(&o, mqtt_connected ? ",\"mqtt\":\"connected\"" : ",\"mqtt\":\"disconnected\"");
    if (broker && *broker) {
        T2M_OUT_LIT(&o, ",\"broker\":");
        t2m_out_json(&o, broker, strlen(broker));
    }
    char num[48];
    snprintf(num, sizeof(num), ",\"devices\":%zu,\"instances\":{", devices);
    t2m_out_str(&o, num);
    for (size_t i = 0; i < n_inst; i++) {
        if (i) T2M_OUT_LIT(&o, ",");
        t2m_out_json(&o, ids[i], strlen(ids[i]));
        T2M_OUT_LIT(&o, ":");
        t2m_out_json(&o, states[i], strlen(states[i]));
    }
    T2M_OUT_LIT(&o, "}}\n");
    return t2m_out_finish(&o);
}
