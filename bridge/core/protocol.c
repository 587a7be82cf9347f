/* protocol.c - upstream messages (SPEC section 1) <-> structs, with one reused json-c tokener. */
#include "protocol.h"

#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out.h"
#include "text.h"
#include "units.h"

/* Timestamps accepted: 1970-01-01 up to 9999-12-31T23:59:59.999Z (what ISO output can print). */
#define TS_MS_MAX 253402300799999LL
/* Physical bounds, so every unit conversion and integer rounding of them stays finite and in
 * range (1e308 m/s is a finite double, but x3.6 is inf and no payload could print it). */
#define SPEED_MAX 299792458.0 /* m/s, the speed of light */
#define ACCURACY_MAX 4.0e7    /* m, about the Earth's circumference */

struct t2m_parser {
    json_tokener *tok;
    bool fast;               /* try parse_fast first */
    bool fast_ok;            /* the depth limit allows it */
    unsigned long fast_hits; /* messages the fast path parsed whole */
};

struct t2m_parser *t2m_parser_new(int max_depth)
{
    struct t2m_parser *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->tok = json_tokener_new_ex(max_depth > 0 ? max_depth : 16);
    if (!p->tok) {
        free(p);
        return NULL;
    }
    /* No JSON_TOKENER_VALIDATE_UTF8: t2m_protocol_parse checks every byte more strictly
     * (t2m_utf8_valid) before the tokener runs, and json-c's check costs ~1 µs per message. */
    json_tokener_set_flags(p->tok, JSON_TOKENER_STRICT);
    /* parse_fast reads two levels of nesting; json-c refuses those below depth 3. */
    p->fast_ok = max_depth <= 0 || max_depth >= 3;
    p->fast = p->fast_ok;
    return p;
}

unsigned long t2m_parser_fast_hits(const struct t2m_parser *p)
{
    return p ? p->fast_hits : 0;
}

void t2m_parser_set_fast_path(struct t2m_parser *p, bool on)
{
    if (p) p->fast = on && p->fast_ok;
}

void t2m_parser_free(struct t2m_parser *p)
{
    if (!p) return;
    json_tokener_free(p->tok);
    free(p);
}

static void set_why(char *why, size_t whylen, const char *msg)
{
    if (why && whylen) snprintf(why, whylen, "%s", msg);
}

/* Copies a string value truncated to the buffer; printable_only replaces everything outside
 * printable ASCII with '?' (for text that ends up in logs). */
static void copy_string(char *dst, size_t dstlen, json_object *v, int printable_only)
{
    dst[0] = '\0';
    if (!v || !json_object_is_type(v, json_type_string)) return;
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (len >= dstlen) len = dstlen - 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (printable_only && (c < 0x20 || c > 0x7e)) c = '?';
        dst[i] = c;
    }
    dst[len] = '\0';
}

int t2m_protocol_ts_from_number(double v, int64_t *ts_ms)
{
    if (!isfinite(v) || v < 0) return -1;
    double ms = v > 1e11 ? v : v * 1000.0;
    if (ms > (double)TS_MS_MAX) return -1;
    *ts_ms = (int64_t)llround(ms);
    if (*ts_ms > TS_MS_MAX) *ts_ms = TS_MS_MAX;
    return 0;
}

static int digits(const char *s, size_t len, size_t *pos, int count, int *out)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        if (*pos >= len || s[*pos] < '0' || s[*pos] > '9') return -1;
        v = v * 10 + (s[(*pos)++] - '0');
    }
    *out = v;
    return 0;
}

static int expect(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c) return -1;
    (*pos)++;
    return 0;
}

static int parse_iso(const char *s, size_t len, int64_t *ts_ms)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t p = 0;
    int y, mo, d, h, mi, sec, ms = 0;
    if (digits(s, len, &p, 4, &y) || expect(s, len, &p, '-') || digits(s, len, &p, 2, &mo) ||
        expect(s, len, &p, '-') || digits(s, len, &p, 2, &d))
        return -1;
    if (p >= len || (s[p] != 'T' && s[p] != 't' && s[p] != ' ')) return -1;
    p++;
    if (digits(s, len, &p, 2, &h) || expect(s, len, &p, ':') || digits(s, len, &p, 2, &mi) ||
        expect(s, len, &p, ':') || digits(s, len, &p, 2, &sec))
        return -1;
    if (p < len && (s[p] == '.' || s[p] == ',')) {
        p++;
        int nd = 0;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (nd < 3) ms = ms * 10 + (s[p] - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9) return -1;
        for (int i = nd; i < 3; i++)
            ms *= 10;
    }
    int off = 0;
    if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        int sign = s[p++] == '-' ? -1 : 1;
        int oh, om = 0;
        if (digits(s, len, &p, 2, &oh)) return -1;
        if (p < len && s[p] == ':') p++;
        if (p < len && digits(s, len, &p, 2, &om)) return -1;
        if (oh > 23 || om > 59) return -1;
        off = sign * (oh * 3600 + om * 60);
    }
    /* No zone designator: the upstream speaks UTC, so a bare local time is read as UTC. */
    if (p != len) return -1;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60) return -1;
    unsigned dim = mdays[mo - 1];
    if (mo == 2 && t2m_leap_year(y)) dim = 29;
    if ((unsigned)d > dim) return -1;
    int64_t t =
        t2m_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= off;
    int64_t r = t * 1000 + ms;
    if (r < 0 || r > TS_MS_MAX) return -1;
    *ts_ms = r;
    return 0;
}

int t2m_protocol_parse_ts_text(const char *s, size_t len, int64_t *ts_ms)
{
    if (!s || len == 0 || len > 64) return -1;
    if (len >= 10 && s[4] == '-') return parse_iso(s, len, ts_ms);
    /* A decimal number as text: only plain notation, so strtod's hex, inf and nan never apply. */
    char tmp[65];
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
            return -1;
        tmp[i] = c;
    }
    tmp[len] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (end != tmp + len) return -1;
    return t2m_protocol_ts_from_number(v, ts_ms);
}

int t2m_json_number(json_object *obj, const char *key, double *out)
{
    json_object *v;
    if (!obj || !json_object_object_get_ex(obj, key, &v) || v == NULL) return 1;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return -1;
    double d = json_object_get_double(v);
    if (!isfinite(d)) return -1;
    *out = d;
    return 0;
}

const char *t2m_json_string(json_object *o, const char *key, size_t *len)
{
    json_object *x;
    if (!o || !json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_string))
        return NULL;
    if (len) *len = (size_t)json_object_get_string_len(x);
    return json_object_get_string(x);
}

bool t2m_protocol_field_ok(unsigned bit, double v)
{
    switch (bit) {
    case T2M_HAS_LAT:
        return v >= -90 && v <= 90;
    case T2M_HAS_LON:
        return v >= -180 && v <= 180;
    case T2M_HAS_SPEED:
        return v >= 0 && v <= SPEED_MAX;
    case T2M_HAS_ACCURACY:
        return v >= 0 && v <= ACCURACY_MAX;
    case T2M_HAS_HEADING:
        return v >= 0 && v <= 360;
    default:
        return false;
    }
}

/* One numeric position field with its range; sets the has or rejected bit. */
static void position_number(json_object *pos, const char *key, unsigned bit, double *dst,
                            struct t2m_update *u)
{
    double v;
    int r = t2m_json_number(pos, key, &v);
    if (r > 0) return;
    if (r < 0 || !t2m_protocol_field_ok(bit, v)) {
        u->rejected |= bit;
        return;
    }
    *dst = v;
    u->has |= bit;
}

static void position_timestamp(json_object *pos, struct t2m_update *u)
{
    json_object *v;
    if (!json_object_object_get_ex(pos, "Timestamp", &v) || v == NULL) return;
    int rc = -1;
    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);
        /* Integers are exact here; going through double would round large ms values. */
        if (i >= 0 && i <= 100000000000LL) i *= 1000;
        if (i >= 0 && i <= TS_MS_MAX) {
            u->ts_ms = i;
            rc = 0;
        }
    } else if (json_object_is_type(v, json_type_double)) {
        rc = t2m_protocol_ts_from_number(json_object_get_double(v), &u->ts_ms);
    } else if (json_object_is_type(v, json_type_string)) {
        rc = t2m_protocol_parse_ts_text(json_object_get_string(v),
                                        (size_t)json_object_get_string_len(v), &u->ts_ms);
    }
    if (rc == 0) {
        u->has |= T2M_HAS_TS;
    } else {
        u->ts_ms = 0;
        u->rejected |= T2M_HAS_TS;
    }
}

/* Nesting depth of v (a scalar 0, a container 1 + its deepest member), counted up to limit + 1:
 * the bound on what the bridge reads holds for the fields it reads, whatever unknown ones do. */
static int json_depth(json_object *v, int limit)
{
    if (limit < 0) return 1;
    int d = 0;
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, child)
        {
            (void)key;
            int c = json_depth(child, limit - 1);
            if (c > d) d = c;
            if (d > limit) break;
        }
        return d + 1;
    }
    if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n && d <= limit; i++) {
            int c = json_depth(json_object_array_get_idx(v, i), limit - 1);
            if (c > d) d = c;
        }
        return d + 1;
    }
    return 0;
}

static enum t2m_parse_result parse_update(json_object *root, struct t2m_update *u, char *why,
                                          size_t whylen)
{
    json_object *v;
    if (!json_object_object_get_ex(root, "device_token", &v) ||
        !json_object_is_type(v, json_type_string)) {
        set_why(why, whylen, "device_token missing or not a string");
        return T2M_PARSE_INVALID_TOKEN;
    }
    size_t len = (size_t)json_object_get_string_len(v);
    if (len == 0 || len > T2M_TOKEN_MAX) {
        set_why(why, whylen, len ? "device_token longer than 256 bytes" : "device_token empty");
        return T2M_PARSE_INVALID_TOKEN;
    }
    memcpy(u->device_token, json_object_get_string(v), len);
    u->device_token[len] = '\0';
    u->device_token_len = len;

    if (json_object_object_get_ex(root, "track_token", &v) && v != NULL) {
        len = json_object_is_type(v, json_type_string) ? (size_t)json_object_get_string_len(v) : 0;
        if (!json_object_is_type(v, json_type_string) || len > T2M_TOKEN_MAX) {
            u->rejected |= T2M_HAS_TRACK;
        } else if (len > 0) {
            memcpy(u->track_token, json_object_get_string(v), len);
            u->track_token[len] = '\0';
            u->track_token_len = len;
            u->has |= T2M_HAS_TRACK;
        }
    }

    json_object *pos;
    if (!json_object_object_get_ex(root, "position", &pos) || pos == NULL) return T2M_PARSE_OK;
    /* The message is one level, so position may hold T2M_PROTOCOL_READ_DEPTH - 1 more. */
    if (json_depth(pos, T2M_PROTOCOL_READ_DEPTH - 1) > T2M_PROTOCOL_READ_DEPTH - 1) {
        set_why(why, whylen, "position nested too deep");
        return T2M_PARSE_INVALID_JSON;
    }
    if (!json_object_is_type(pos, json_type_object)) {
        u->rejected |= T2M_HAS_LAT | T2M_HAS_LON | T2M_HAS_SPEED | T2M_HAS_ACCURACY |
                       T2M_HAS_HEADING | T2M_HAS_TS;
        return T2M_PARSE_OK;
    }
    position_number(pos, "Latitude", T2M_HAS_LAT, &u->lat, u);
    position_number(pos, "Longitude", T2M_HAS_LON, &u->lon, u);
    position_number(pos, "Speed", T2M_HAS_SPEED, &u->speed, u);
    position_number(pos, "Accuracy", T2M_HAS_ACCURACY, &u->accuracy, u);
    position_number(pos, "Heading", T2M_HAS_HEADING, &u->heading, u);
    position_timestamp(pos, u);
    if (u->has & T2M_HAS_LAT) t2m_units_format_shortest(u->lat_text, sizeof(u->lat_text), u->lat);
    if (u->has & T2M_HAS_LON) t2m_units_format_shortest(u->lon_text, sizeof(u->lon_text), u->lon);
    return T2M_PARSE_OK;
}

static void parse_welcome(json_object *root, struct t2m_message *m)
{
    json_object *v;
    if (json_object_object_get_ex(root, "connection_id", &v))
        copy_string(m->connection_id, sizeof(m->connection_id), v, 1);
    if (json_object_object_get_ex(root, "instance_id", &v))
        copy_string(m->instance_id, sizeof(m->instance_id), v, 0);
    double t;
    if (json_object_object_get_ex(root, "server_time", &v) && json_object_is_type(v, json_type_int))
        m->server_time = json_object_get_int64(v);
    else if (t2m_json_number(root, "server_time", &t) == 0 && t > -9e18 && t < 9e18)
        m->server_time = (int64_t)t;
}

static void parse_error(json_object *root, struct t2m_message *m)
{
    json_object *v = NULL;
    double code;
    if (json_object_object_get_ex(root, "code", &v) && json_object_is_type(v, json_type_int)) {
        int64_t c = json_object_get_int64(v);
        m->error_code = c > INT_MAX ? INT_MAX : c < INT_MIN ? INT_MIN : (int)c;
    } else if (t2m_json_number(root, "code", &code) == 0 && code > INT_MIN && code < INT_MAX) {
        m->error_code = (int)code;
    } else if (v && json_object_is_type(v, json_type_string)) {
        /* Some servers send "401": read plain digits, nothing else. */
        const char *s = json_object_get_string(v);
        char *end;
        long c = strtol(s, &end, 10);
        if (end != s && *end == '\0' && c > 0 && c < 100000) m->error_code = (int)c;
    }
    if (json_object_object_get_ex(root, "message", &v))
        copy_string(m->error_message, sizeof(m->error_message), v, 1);
}

static const struct {
    const char *name;
    enum t2m_msg_type type;
} msg_types[] = {
    {"device_update", T2M_MSG_DEVICE_UPDATE}, {"ping", T2M_MSG_PING},
    {"authenticated", T2M_MSG_AUTHENTICATED}, {"welcome", T2M_MSG_WELCOME},
    {"subscribed", T2M_MSG_SUBSCRIBED},       {"error", T2M_MSG_ERROR},
};

/* ---- fast path: the exact shape of a device_update, without json-c ----
 *
 * Reads {"type":"device_update","device_token":"...",...,"position":{...}} as the server sends
 * it, in one pass with no allocation. It gives up (FP_NO) on anything it does not fully
 * understand: escapes or control bytes in a string, nesting besides "position", a known key
 * twice, a value of an unexpected type, numbers of more than 18 integer digits, NaN,
 * Infinity, "-0", leading or trailing bytes around the object, a missing or invalid
 * device_token. json-c then parses the message from scratch, so every message gets exactly
 * the result the general path gives (test_protocol.c checks both paths on the same inputs). */

#define FP_NO (-1)

enum fp_kind { FP_NONE = 0, FP_NULL, FP_STR, FP_NUM, FP_OBJ };

struct fp_val {
    enum fp_kind kind;
    const char *s; /* string contents or number text */
    size_t len;
    bool is_int; /* a number without '.', 'e' or 'E': json-c's int type */
};

static bool fp_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *fp_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string without escapes or control bytes (UTF-8 was validated before). */
static const char *fp_string(const char *p, const char *e, struct fp_val *v)
{
    if (p >= e || *p != '"') return NULL;
    const char *s = ++p;
    for (; p < e && *p != '"'; p++)
        if ((unsigned char)*p < 0x20 || *p == '\\') return NULL;
    if (p >= e) return NULL;
    v->kind = FP_STR;
    v->s = s;
    v->len = (size_t)(p - s);
    return p + 1;
}

/* A number in JSON's grammar; the byte after it must end the value (checked by the caller). */
static const char *fp_number(const char *p, const char *e, struct fp_val *v)
{
    const char *s = p;
    if (p < e && *p == '-') p++;
    if (p >= e || !fp_digit(*p)) return NULL;
    if (*p == '0')
        p++;
    else
        while (p < e && fp_digit(*p))
            p++;
    bool is_int = true;
    if (p < e && *p == '.') {
        if (++p >= e || !fp_digit(*p)) return NULL;
        while (p < e && fp_digit(*p))
            p++;
        is_int = false;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        if (++p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || !fp_digit(*p)) return NULL;
        while (p < e && fp_digit(*p))
            p++;
        is_int = false;
    }
    size_t len = (size_t)(p - s);
    /* Integers json-c might treat as uint64 or out of range, its "-0", and texts too long for
     * the conversion buffer all go the general way. */
    if (len > 40 || (is_int && (len - (*s == '-') > 18 || (len == 2 && s[0] == '-')))) return NULL;
    v->kind = FP_NUM;
    v->s = s;
    v->len = len;
    v->is_int = is_int;
    return p;
}

/* A scalar value: string, number or null (true and false only for keys we ignore). */
static const char *fp_scalar(const char *p, const char *e, struct fp_val *v, bool any_literal)
{
    if (p >= e) return NULL;
    if (*p == '"') return fp_string(p, e, v);
    if (*p == '-' || fp_digit(*p)) return fp_number(p, e, v);
    if (e - p >= 4 && memcmp(p, "null", 4) == 0) {
        v->kind = FP_NULL;
        return p + 4;
    }
    if (any_literal && e - p >= 4 && memcmp(p, "true", 4) == 0) {
        v->kind = FP_NONE;
        return p + 4;
    }
    if (any_literal && e - p >= 5 && memcmp(p, "false", 5) == 0) {
        v->kind = FP_NONE;
        return p + 5;
    }
    return NULL;
}

/* The number's value as json-c gives it: (double) of the int64 for integers, strtod for the
 * rest. Plain decimals of up to 15 digits skip strtod: digits and 10^k (k <= 22) are both
 * exact doubles and IEEE division rounds correctly, so m / 10^k is strtod's nearest double. */
static double fp_value(const struct fp_val *v, int64_t *as_int)
{
    const char *p = v->s, *e = v->s + v->len;
    bool neg = *p == '-';
    if (neg) p++;
    if (v->is_int) {
        int64_t i = 0;
        for (; p < e; p++)
            i = i * 10 + (*p - '0');
        *as_int = neg ? -i : i;
        return (double)*as_int;
    }
    uint64_t m = 0;
    int ndig = 0, frac = 0;
    bool dot = false;
    for (; p < e && (fp_digit(*p) || *p == '.'); p++) {
        if (*p == '.') {
            dot = true;
            continue;
        }
        m = m * 10 + (uint64_t)(*p - '0');
        if (m) ndig++;
        if (dot) frac++;
    }
    if (p == e && ndig <= 15 && frac <= 22) {
        double d = (double)m / t2m_pow10[frac];
        return neg ? -d : d;
    }
    char tmp[48];
    memcpy(tmp, v->s, v->len);
    tmp[v->len] = '\0';
    return strtod(tmp, NULL);
}

/* t2m_units_format_shortest(v), taken from the text v was read from when that text is what
 * "%.15g" prints for it: at most 15 significant digits (so it round-trips), no exponent, no
 * trailing fractional zero, no leading zero but a lone "0", a magnitude %.15g prints in fixed
 * notation (1e-4 <= |v| < 1e15), and not a negative zero. */
static void fp_shortest(char *buf, size_t n, const struct fp_val *v, double d)
{
    const char *p = v->s, *e = v->s + v->len;
    if (*p == '-') p++;
    const char *dot = memchr(p, '.', (size_t)(e - p));
    const char *int_end = dot ? dot : e;
    bool canonical = v->len < n && (p[0] != '0' || int_end - p == 1);
    int sig = 0, zeros = 0;
    bool seen = false;
    for (const char *q = p; canonical && q < e; q++) {
        if (*q == '.') continue;
        if (*q < '0' || *q > '9')
            canonical = false; /* an exponent */
        else if (*q != '0')
            seen = true;
        else if (!seen && q > int_end)
            zeros++; /* 0.000x */
        if (seen) sig++;
    }
    if (canonical && dot && (e - dot < 2 || e[-1] == '0')) canonical = false;
    if (canonical && (!seen ? (v->len != 1) : (sig > 15 || zeros > 3 || int_end - p > 15)))
        canonical = false;
    if (!canonical) {
        t2m_units_format_shortest(buf, n, d);
        return;
    }
    memcpy(buf, v->s, v->len);
    buf[v->len] = '\0';
}

/* One position number: range check and has/rejected bits, as position_number. */
static void fp_position_number(const struct fp_val *v, unsigned bit, double *dst,
                               struct t2m_update *u)
{
    if (v->kind != FP_NUM) return; /* absent or null */
    int64_t i;
    double d = fp_value(v, &i);
    if (!isfinite(d) || !t2m_protocol_field_ok(bit, d)) {
        u->rejected |= bit;
        return;
    }
    *dst = d;
    u->has |= bit;
}

static void fp_timestamp(const struct fp_val *v, struct t2m_update *u)
{
    int rc = -1;
    if (v->kind == FP_NONE || v->kind == FP_NULL) return;
    if (v->kind == FP_NUM && v->is_int) {
        int64_t i;
        fp_value(v, &i);
        if (i >= 0 && i <= 100000000000LL) i *= 1000;
        if (i >= 0 && i <= TS_MS_MAX) {
            u->ts_ms = i;
            rc = 0;
        }
    } else if (v->kind == FP_NUM) {
        int64_t unused;
        rc = t2m_protocol_ts_from_number(fp_value(v, &unused), &u->ts_ms);
    } else if (v->kind == FP_STR) {
        rc = t2m_protocol_parse_ts_text(v->s, v->len, &u->ts_ms);
    }
    if (rc == 0) {
        u->has |= T2M_HAS_TS;
    } else {
        u->ts_ms = 0;
        u->rejected |= T2M_HAS_TS;
    }
}

/* Finds `key` in names[]; -1 for an unknown key. */
static int fp_key(const struct fp_val *k, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == k->len && memcmp(names[i], k->s, k->len) == 0) return i;
    return -1;
}

/* One object's members into vals[] (by names[]); `nested` is the index of the one key whose
 * value may be an object, which is then read into *inner (its members by inner_names). */
static const char *fp_object(const char *p, const char *e, const char *const *names, int count,
                             struct fp_val *vals, int nested, const char *const *inner_names,
                             int inner_count, struct fp_val *inner)
{
    if (p >= e || *p != '{') return NULL;
    p = fp_ws(p + 1, e);
    if (p < e && *p == '}') return p + 1;
    for (;;) {
        struct fp_val k;
        p = fp_string(p, e, &k);
        if (!p) return NULL;
        p = fp_ws(p, e);
        if (p >= e || *p != ':') return NULL;
        p = fp_ws(p + 1, e);
        int idx = fp_key(&k, names, count);
        struct fp_val ignored = {FP_NONE, NULL, 0, false};
        struct fp_val *v = idx >= 0 ? &vals[idx] : &ignored;
        if (idx >= 0 && v->kind != FP_NONE) return NULL; /* json-c keeps the last: let it */
        if (idx >= 0 && idx == nested && p < e && *p == '{') {
            p = fp_object(p, e, inner_names, inner_count, inner, -1, NULL, 0, NULL);
            v->kind = FP_OBJ;
        } else {
            p = fp_scalar(p, e, v, idx < 0);
            if (p && idx >= 0 && v->kind == FP_NONE) return NULL;
        }
        if (!p) return NULL;
        p = fp_ws(p, e);
        if (p < e && *p == '}') return p + 1;
        if (p >= e || *p != ',') return NULL;
        p = fp_ws(p + 1, e);
    }
}

enum { FK_TYPE, FK_DEVICE, FK_TRACK, FK_POSITION, FK_COUNT };
enum { PK_LAT, PK_LON, PK_SPEED, PK_ACC, PK_HEADING, PK_TS, PK_COUNT };
static const char *const fp_top[FK_COUNT] = {"type", "device_token", "track_token", "position"};
static const char *const fp_pos[PK_COUNT] = {"Latitude", "Longitude", "Speed",
                                             "Accuracy", "Heading",   "Timestamp"};

/* 0 with *out filled exactly as the general path would, or FP_NO. */
static int parse_fast(const char *buf, size_t len, struct t2m_message *out)
{
    struct fp_val top[FK_COUNT] = {0}, pos[PK_COUNT] = {0};
    const char *e = buf + len;
    const char *p = fp_object(buf, e, fp_top, FK_COUNT, top, FK_POSITION, fp_pos, PK_COUNT, pos);
    if (p != e) return FP_NO;
    const struct fp_val *t = &top[FK_TYPE], *d = &top[FK_DEVICE], *tr = &top[FK_TRACK];
    if (t->kind != FP_STR || t->len != 13 || memcmp(t->s, "device_update", 13) != 0) return FP_NO;
    if (d->kind != FP_STR || d->len == 0 || d->len > T2M_TOKEN_MAX) return FP_NO;
    if (tr->kind != FP_NONE && tr->kind != FP_NULL && tr->kind != FP_STR) return FP_NO;
    if (top[FK_POSITION].kind != FP_NONE && top[FK_POSITION].kind != FP_NULL &&
        top[FK_POSITION].kind != FP_OBJ)
        return FP_NO;
    for (int i = 0; i < PK_COUNT; i++)
        if (pos[i].kind == FP_STR && i != PK_TS) return FP_NO;

    out->type = T2M_MSG_DEVICE_UPDATE;
    memcpy(out->type_name, "device_update", 14);
    struct t2m_update *u = &out->update;
    memcpy(u->device_token, d->s, d->len);
    u->device_token[d->len] = '\0';
    u->device_token_len = d->len;
    if (tr->kind == FP_STR && tr->len > T2M_TOKEN_MAX) {
        u->rejected |= T2M_HAS_TRACK;
    } else if (tr->kind == FP_STR && tr->len > 0) {
        memcpy(u->track_token, tr->s, tr->len);
        u->track_token[tr->len] = '\0';
        u->track_token_len = tr->len;
        u->has |= T2M_HAS_TRACK;
    }
    if (top[FK_POSITION].kind != FP_OBJ) return 0;
    fp_position_number(&pos[PK_LAT], T2M_HAS_LAT, &u->lat, u);
    fp_position_number(&pos[PK_LON], T2M_HAS_LON, &u->lon, u);
    fp_position_number(&pos[PK_SPEED], T2M_HAS_SPEED, &u->speed, u);
    fp_position_number(&pos[PK_ACC], T2M_HAS_ACCURACY, &u->accuracy, u);
    fp_position_number(&pos[PK_HEADING], T2M_HAS_HEADING, &u->heading, u);
    fp_timestamp(&pos[PK_TS], u);
    if (u->has & T2M_HAS_LAT) fp_shortest(u->lat_text, sizeof(u->lat_text), &pos[PK_LAT], u->lat);
    if (u->has & T2M_HAS_LON) fp_shortest(u->lon_text, sizeof(u->lon_text), &pos[PK_LON], u->lon);
    return 0;
}

enum t2m_parse_result t2m_protocol_parse(struct t2m_parser *p, const char *buf, size_t len,
                                         struct t2m_message *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    set_why(why, whylen, "");
    if (!p || !buf || len == 0 || len > INT_MAX) {
        set_why(why, whylen, len ? "message too large" : "empty message");
        return T2M_PARSE_INVALID_JSON;
    }
    if (!t2m_utf8_valid(buf, len)) {
        set_why(why, whylen, "invalid UTF-8");
        return T2M_PARSE_INVALID_JSON;
    }
    if (p->fast && parse_fast(buf, len, out) == 0) {
        p->fast_hits++;
        return T2M_PARSE_OK;
    }
    json_tokener_reset(p->tok);
    json_object *root = json_tokener_parse_ex(p->tok, buf, (int)len);
    enum json_tokener_error err = json_tokener_get_error(p->tok);
    if (!root) {
        set_why(why, whylen,
                err == json_tokener_continue ? "truncated JSON" : json_tokener_error_desc(err));
        return T2M_PARSE_INVALID_JSON;
    }
    enum t2m_parse_result rc = T2M_PARSE_OK;
    if (json_tokener_get_parse_end(p->tok) != len) {
        set_why(why, whylen, "trailing data after JSON");
        rc = T2M_PARSE_INVALID_JSON;
        goto done;
    }
    if (!json_object_is_type(root, json_type_object)) {
        set_why(why, whylen, "not a JSON object");
        rc = T2M_PARSE_INVALID_JSON;
        goto done;
    }
    json_object *type;
    if (!json_object_object_get_ex(root, "type", &type) ||
        !json_object_is_type(type, json_type_string))
        goto done; /* valid JSON without a type: T2M_MSG_UNKNOWN */
    copy_string(out->type_name, sizeof(out->type_name), type, 1);
    const char *tname = json_object_get_string(type);
    size_t tlen = (size_t)json_object_get_string_len(type);
    for (size_t i = 0; i < sizeof(msg_types) / sizeof(msg_types[0]); i++) {
        if (strlen(msg_types[i].name) == tlen && memcmp(msg_types[i].name, tname, tlen) == 0) {
            out->type = msg_types[i].type;
            break;
        }
    }
    json_object *v;
    switch (out->type) {
    case T2M_MSG_DEVICE_UPDATE:
        rc = parse_update(root, &out->update, why, whylen);
        break;
    case T2M_MSG_WELCOME:
        parse_welcome(root, out);
        break;
    case T2M_MSG_SUBSCRIBED:
        if (json_object_object_get_ex(root, "topic", &v))
            copy_string(out->topic, sizeof(out->topic), v, 1);
        break;
    case T2M_MSG_ERROR:
        parse_error(root, out);
        break;
    default:
        break;
    }
done:
    json_object_put(root);
    return rc;
}

static void put_json(struct t2m_out *o, const char *s)
{
    t2m_out_json(o, s ? s : "", s ? strlen(s) : 0);
}

size_t t2m_protocol_render_auth(char *buf, size_t n, const struct t2m_auth *a)
{
    struct t2m_out o = {buf, n, 0, !buf || n == 0 || !a};
    if (o.full) return 0;
    t2m_out_str(&o, "{\"type\":\"authenticate\",\"access_token\":");
    put_json(&o, a->access_token);
    t2m_out_str(&o, ",\"instance_id\":");
    put_json(&o, a->instance_id);
    if (a->client_id && a->client_id[0]) {
        t2m_out_str(&o, ",\"client_id\":");
        put_json(&o, a->client_id);
    }
    if (a->device_token && a->device_token[0]) {
        t2m_out_str(&o, ",\"device_token\":");
        put_json(&o, a->device_token);
    }
    t2m_out_str(&o, ",\"units\":\"metric\",\"timezone\":");
    put_json(&o, a->timezone && a->timezone[0] ? a->timezone : "UTC");
    t2m_out_str(&o, ",\"date_format\":\"unix\"}");
    return t2m_out_finish(&o);
}

size_t t2m_protocol_render_pong(char *buf, size_t n, int64_t now_ms)
{
    if (!buf || n == 0) return 0;
    int l = snprintf(buf, n, "{\"type\":\"pong\",\"timestamp\":%lld}", (long long)now_ms);
    if (l < 0 || (size_t)l >= n) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)l;
}
