/* protocol.h - pure: upstream messages (SPEC section 1) <-> structs. No I/O, no allocation per
 * message once the parser exists. */
#ifndef T2M_PROTOCOL_H
#define T2M_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text.h" /* t2m_json_escape */

/* Strictly typed JSON members (json-c itself would read "12" as 12 and "abc" as 0), the one copy
 * every module that reads JSON uses. */
struct json_object;
/* A number member: 0 and *out; 1 missing or null; -1 present but not a finite number. */
int t2m_json_number(struct json_object *o, const char *key, double *out);
/* A string member and its length (len may be NULL), or NULL when missing or not a string. */
const char *t2m_json_string(struct json_object *o, const char *key, size_t *len);

#define T2M_TOKEN_MAX 256 /* longest device/instance token accepted as a topic segment */

enum t2m_msg_type {
    T2M_MSG_UNKNOWN = 0, /* valid JSON, unknown or missing "type": ignored */
    T2M_MSG_AUTHENTICATED,
    T2M_MSG_WELCOME,
    T2M_MSG_SUBSCRIBED,
    T2M_MSG_DEVICE_UPDATE,
    T2M_MSG_PING,
    T2M_MSG_ERROR,
};

/* Which fields of a position were present and valid (bit set) */
enum {
    T2M_HAS_LAT = 1u << 0,
    T2M_HAS_LON = 1u << 1,
    T2M_HAS_SPEED = 1u << 2,
    T2M_HAS_ACCURACY = 1u << 3,
    T2M_HAS_HEADING = 1u << 4,
    T2M_HAS_TS = 1u << 5,
    T2M_HAS_TRACK = 1u << 6,
};

/* One device_update. Token bytes may contain anything (even NUL): always use the lengths. */
struct t2m_update {
    char device_token[T2M_TOKEN_MAX + 1];
    size_t device_token_len;
    char track_token[T2M_TOKEN_MAX + 1];
    size_t track_token_len;
    unsigned has;      /* T2M_HAS_* */
    unsigned rejected; /* T2M_HAS_* bits of fields present but invalid (NaN, out of range, wrong
                          type): treated as missing, counted by the caller */
    double lat, lon;   /* degrees, lat in [-90,90], lon in [-180,180] */
    double speed;      /* m/s, [0, 299792458] */
    double accuracy;   /* m, [0, 4e7] */
    double heading;    /* degrees [0,360] */
    int64_t ts_ms;     /* Unix milliseconds (seconds, ms > 1e11 and ISO-8601 all accepted) */
    char lat_text[32]; /* lat/lon as printed in the payload: shortest round-trip text */
    char lon_text[32];
};

struct t2m_message {
    enum t2m_msg_type type;
    char type_name[32];       /* the "type" string as received (truncated), for debug logs */
    struct t2m_update update; /* DEVICE_UPDATE */
    char connection_id[128];  /* WELCOME */
    char instance_id[T2M_TOKEN_MAX + 1];
    int64_t server_time;     /* WELCOME, as a number if it was one, else 0 */
    char topic[256];         /* SUBSCRIBED */
    int error_code;          /* ERROR */
    char error_message[256]; /* ERROR, printable ASCII only (others replaced by '?') */
};

enum t2m_parse_result {
    T2M_PARSE_OK = 0,
    T2M_PARSE_INVALID_JSON,  /* not JSON, trailing data, too deep, bad UTF-8, not an object */
    T2M_PARSE_INVALID_TOKEN, /* device_update whose device_token is missing, empty, not a string
                                or longer than T2M_TOKEN_MAX */
};

struct t2m_parser;

/* The nesting limit the bridge parses with. Generous, so that an unknown field however a server
 * nests it is skipped rather than taking its update down (SPEC section 1), and still a bound on
 * the parser's stack and memory (deeper messages are dropped as invalid JSON). */
#define T2M_PROTOCOL_MAX_DEPTH 256
/* ... while a field the bridge reads (position) may nest at most this deep, counting the message
 * itself: deeper, the update is dropped as invalid JSON, as before unknown fields were skipped. */
#define T2M_PROTOCOL_READ_DEPTH 16

/* max_depth: json nesting limit (e.g. T2M_PROTOCOL_MAX_DEPTH). NULL on allocation failure. */
struct t2m_parser *t2m_parser_new(int max_depth);
void t2m_parser_free(struct t2m_parser *p);
/* On by default: device_updates of the usual shape are read without json-c, with the same
 * results (anything unusual still goes through json-c). Off: json-c for everything (tests). */
void t2m_parser_set_fast_path(struct t2m_parser *p, bool on);
/* How many messages the fast path parsed whole (the rest went to json-c). */
unsigned long t2m_parser_fast_hits(const struct t2m_parser *p);

/* Parses one complete text message. On OK, *out is filled (fields not present are zeroed / has
 * bits clear). `why` (may be NULL) gets a short reason on failure. */
enum t2m_parse_result t2m_protocol_parse(struct t2m_parser *p, const char *buf, size_t len,
                                         struct t2m_message *out, char *why, size_t whylen);

/* Parses a Timestamp given as text: ISO-8601 ("2022-01-01T00:00:00Z", offsets, fractions) or a
 * decimal number. Returns 0 and Unix ms, or -1. */
int t2m_protocol_parse_ts_text(const char *s, size_t len, int64_t *ts_ms);
/* Normalises a numeric Timestamp: > 1e11 is milliseconds, else seconds. -1 if out of range. */
int t2m_protocol_ts_from_number(double v, int64_t *ts_ms);
/* Whether v is a valid value of the position field `bit` (T2M_HAS_LAT, _LON, _SPEED in m/s,
 * _ACCURACY in m, _HEADING): the one rule for live updates and for the read-back. */
bool t2m_protocol_field_ok(unsigned bit, double v);

struct t2m_auth {
    const char *access_token;
    const char *instance_id;
    const char *client_id;    /* NULL or "" -> omitted */
    const char *device_token; /* NULL or "" -> omitted */
    const char *timezone;     /* IANA name, e.g. "UTC" */
};

/* Renders {"type":"authenticate",...,"units":"metric","timezone":TZ,"date_format":"unix"}.
 * Returns length (NUL-terminated) or 0 if it does not fit. */
size_t t2m_protocol_render_auth(char *buf, size_t n, const struct t2m_auth *a);
/* Renders {"type":"pong","timestamp":<now_ms>}. */
size_t t2m_protocol_render_pong(char *buf, size_t n, int64_t now_ms);

#endif
