/* config.c - SPEC section 6: the libconfig file, T2M_* environment overrides, secret files and
 * validation into struct t2m_config, and the effective configuration printed back.
 *
 * One table (`keys`) documents every scalar option: its place, type, default and range. Parsing,
 * environment overrides, defaults, freeing and printing are all driven by it, so an option is
 * added in exactly one place. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "out.h"
#include "text.h"
#include "topics.h"

#define MOD "config"
#define MAX_ID_LEN 256         /* instance ids and device tokens, as topic segments (SPEC 2) */
#define MAX_SECRET 65536       /* first line of a secret file */
#define MAX_CONF_SIZE 16777216 /* a config file scanned for wide integers */
#define MAX_INCLUDE_DEPTH 10
#define MAX_CONF_LINE 65536 /* libconfig's scanner is quadratic in a line's length: bound it */

enum ktype { T_STR, T_BOOL, T_INT, T_FLOAT, T_LEVEL, T_FORMAT };

typedef int (*check_fn)(const char *v, char *msg, size_t n);

/* One option, everything about it in its row (redis' static_configs[]): where it lives, its type
 * and default, what values it takes, the T2M_ variable that sets it, whether it is a secret.
 * Parsing, defaults, the environment, freeing and both printers are driven by the rows. */
struct key {
    const char *group, *name;
    enum ktype type;
    size_t off;                /* into struct t2m_config (or the instance / alias / zone struct) */
    const char *def_s;         /* default of T_STR, T_LEVEL, T_FORMAT */
    double def_n;              /* default of T_BOOL (0/1), T_INT, T_FLOAT */
    double min, max;           /* T_INT, T_FLOAT: the allowed range */
    bool min_excl;             /* min itself is not allowed ("> 0") */
    const char *const *values; /* T_STR: the values it takes (NULL-terminated), or NULL: any */
    const char *values_say;    /* how a refusal explains them; NULL: must be "a", "b" or "c" */
    check_fn check;            /* T_STR: NULL or a validator */
    bool file;                 /* T_STR: a path that must be readable when set */
    bool or_empty;             /* T_STR with values: "" too (units.system decides then) */
    bool zone;                 /* T_STR: a time zone the tz database has */
    bool secret;               /* wiped on free, printed as "<redacted>" */
    const char *env;           /* the variable that overrides it (SPEC 6), or NULL */
    int env_pair;              /* 1 + the key a value from env clears (a secret's other form) */
};

static int check_ws_url(const char *v, char *msg, size_t n);
static int check_mqtt_url(const char *v, char *msg, size_t n);
static int check_nonempty(const char *v, char *msg, size_t n);
static int check_topic(const char *v, char *msg, size_t n);
static int check_client_id(const char *v, char *msg, size_t n);
static int check_listen(const char *v, char *msg, size_t n);
static int check_id(const char *v, char *msg, size_t n);

static const char *const mqtt_clients[] = T2M_MQTT_CLIENT_NAMES;
static const char *const discovery_forms[] = {"device", "entity", NULL};

/* clang-format off */
#define C(f) offsetof(struct t2m_config, f)
#define STR(g, k, f, d, ...) {.group = (g), .name = (k), .type = T_STR, .off = C(f), .def_s = (d), __VA_ARGS__}
#define BOOL(g, k, f, d) {.group = (g), .name = (k), .type = T_BOOL, .off = C(f), .def_n = (d)}
#define INT(g, k, f, d, lo, hi) {.group = (g), .name = (k), .type = T_INT, .off = C(f), .def_n = (d), .min = (lo), .max = (hi)}
#define FLT(g, k, f, d, lo, hi, ex) {.group = (g), .name = (k), .type = T_FLOAT, .off = C(f), .def_n = (d), .min = (lo), .max = (hi), .min_excl = (ex)}
#define DAY 86400.0

enum key_id {
    K_UP_URL, K_UP_CA, K_UP_VERIFY, K_UP_MAXMSG, K_UP_MAXDEV, K_UP_CONNTO, K_UP_AUTHTO,
    K_UP_IDLETO, K_UP_BOMIN, K_UP_BOMAX,
    K_MQ_CLIENT, K_MQ_URL, K_MQ_CLIENTID, K_MQ_USER, K_MQ_PASS, K_MQ_PASSFILE, K_MQ_CA,
    K_MQ_CERT, K_MQ_KEY, K_MQ_VERIFY, K_MQ_PROTO, K_MQ_KEEPALIVE, K_MQ_QOS, K_MQ_RETAIN,
    K_MQ_BASE, K_MQ_ATTR, K_MQ_QUEUE, K_MQ_MININT, K_MQ_REQUESTS,
    K_UN_SYSTEM, K_UN_SPEED, K_UN_DIST, K_UN_TS, K_UN_TZ, K_UN_PREC,
    K_HA_ENABLED, K_HA_PREFIX, K_HA_STATUS, K_HA_DISCOVERY,
    K_OT_ENABLED,
    K_ST_TRIPTO, K_ST_EXPIRE, K_ST_SKEW,
    K_HTTP_LISTEN, K_HTTP_UI, K_HTTP_UIPASS,
    K_LOG_LEVEL, K_LOG_FORMAT,
    N_KEYS
};

/* Every scalar option of SPEC section 6, in the SPEC's order (the environment applies in it). */
static const struct key keys[N_KEYS] = {
    [K_UP_URL] = STR("upstream", "url", upstream.url, "wss://portal-apis.telematicssdk.com/realtime/api/v1/ws/realtime",
                     .check = check_ws_url, .env = "T2M_UPSTREAM_URL"),
    [K_UP_CA] = STR("upstream", "ca_file", upstream.ca_file, "", .file = true),
    [K_UP_VERIFY] = BOOL("upstream", "tls_verify", upstream.tls_verify, 1),
    [K_UP_MAXMSG] = INT("upstream", "max_message_size", upstream.max_message_size, 65536, 1024, 1073741824),
    [K_UP_MAXDEV] = INT("upstream", "max_devices", upstream.max_devices, 100000, 1, INT_MAX),
    [K_UP_CONNTO] = FLT("upstream", "connect_timeout", upstream.connect_timeout, 10, 0, DAY, true),
    [K_UP_AUTHTO] = FLT("upstream", "auth_timeout", upstream.auth_timeout, 10, 0, DAY, true),
    [K_UP_IDLETO] = FLT("upstream", "idle_timeout", upstream.idle_timeout, 90, 0, DAY, true),
    [K_UP_BOMIN] = FLT("upstream", "backoff_min", upstream.backoff_min, 1, 0, DAY, true),
    [K_UP_BOMAX] = FLT("upstream", "backoff_max", upstream.backoff_max, 60, 0, DAY, true),
    [K_MQ_CLIENT] = STR("mqtt", "client", mqtt.client, "lws", .values = mqtt_clients, .env = "T2M_MQTT_CLIENT"),
    [K_MQ_URL] = STR("mqtt", "url", mqtt.url, "tcp://localhost:1883", .check = check_mqtt_url, .env = "T2M_MQTT_URL"),
    [K_MQ_CLIENTID] = STR("mqtt", "client_id", mqtt.client_id, "telematics2mqtt", .check = check_client_id),
    [K_MQ_USER] = STR("mqtt", "username", mqtt.username, "", .env = "T2M_MQTT_USERNAME"),
    [K_MQ_PASS] = STR("mqtt", "password", mqtt.password, "", .secret = true, .env = "T2M_MQTT_PASSWORD",
                      .env_pair = 1 + K_MQ_PASSFILE),
    [K_MQ_PASSFILE] = STR("mqtt", "password_file", mqtt.password_file, "", .env = "T2M_MQTT_PASSWORD_FILE",
                          .env_pair = 1 + K_MQ_PASS),
    [K_MQ_CA] = STR("mqtt", "ca_file", mqtt.ca_file, "", .file = true),
    [K_MQ_CERT] = STR("mqtt", "cert_file", mqtt.cert_file, "", .file = true),
    [K_MQ_KEY] = STR("mqtt", "key_file", mqtt.key_file, "", .file = true),
    [K_MQ_VERIFY] = BOOL("mqtt", "tls_verify", mqtt.tls_verify, 1),
    [K_MQ_PROTO] = INT("mqtt", "protocol", mqtt.protocol, 4, 4, 5),
    [K_MQ_KEEPALIVE] = INT("mqtt", "keepalive", mqtt.keepalive, 30, 0, 65535),
    [K_MQ_QOS] = INT("mqtt", "qos", mqtt.qos, 1, 0, 1),
    [K_MQ_RETAIN] = BOOL("mqtt", "retain", mqtt.retain, 1),
    [K_MQ_BASE] = STR("mqtt", "base_topic", mqtt.base_topic, "telematics", .check = check_topic, .env = "T2M_BASE_TOPIC"),
    [K_MQ_ATTR] = BOOL("mqtt", "attribute_topics", mqtt.attribute_topics, 0),
    [K_MQ_QUEUE] = INT("mqtt", "offline_queue", mqtt.offline_queue, 10000, 0, INT_MAX),
    [K_MQ_MININT] = FLT("mqtt", "min_interval", mqtt.min_interval, 0, 0, DAY, false),
    [K_MQ_REQUESTS] = BOOL("mqtt", "requests", mqtt.requests, 1),
    [K_UN_SYSTEM] = STR("units", "system", units.system, "metric", .values = t2m_units_system_names, .env = "T2M_UNITS"),
    [K_UN_SPEED] = STR("units", "speed", units.speed, "", .values = t2m_units_speed_names, .or_empty = true),
    [K_UN_DIST] = STR("units", "distance", units.distance, "", .values = t2m_units_dist_names, .or_empty = true),
    [K_UN_TS] = STR("units", "timestamp", units.timestamp, "iso", .values = t2m_units_ts_names),
    [K_UN_TZ] = STR("units", "timezone", units.timezone, "UTC", .zone = true),
    [K_UN_PREC] = INT("units", "precision", units.precision, 2, 0, 9),
    [K_HA_ENABLED] = BOOL("homeassistant", "enabled", homeassistant.enabled, 1),
    [K_HA_PREFIX] = STR("homeassistant", "discovery_prefix", homeassistant.discovery_prefix, "homeassistant", .check = check_topic),
    [K_HA_STATUS] = STR("homeassistant", "status_topic", homeassistant.status_topic, "homeassistant/status", .check = check_topic),
    [K_HA_DISCOVERY] = STR("homeassistant", "discovery", homeassistant.discovery, "device", .values = discovery_forms,
                           .values_say = "must be \"device\" (one config per device) or \"entity\" (one per entity)"),
    [K_OT_ENABLED] = BOOL("owntracks", "enabled", owntracks.enabled, 0),
    [K_ST_TRIPTO] = FLT("state", "trip_timeout", state.trip_timeout, 300, 0, DAY, true),
    [K_ST_EXPIRE] = FLT("state", "expire_after", state.expire_after, 0, 0, 366 * DAY, false),
    [K_ST_SKEW] = FLT("state", "max_clock_skew", state.max_clock_skew, 600, 0, 366 * DAY, true),
    [K_HTTP_LISTEN] = STR("http", "listen", http.listen, "127.0.0.1:9780", .check = check_listen, .env = "T2M_HTTP_LISTEN"),
    [K_HTTP_UI] = BOOL("http", "ui", http.ui, 1),
    [K_HTTP_UIPASS] = STR("http", "ui_password_file", http.ui_password_file, ""),
    [K_LOG_LEVEL] = {.group = "log", .name = "level", .type = T_LEVEL, .off = C(log.level), .def_s = "info", .env = "T2M_LOG_LEVEL"},
    [K_LOG_FORMAT] = {.group = "log", .name = "format", .type = T_FORMAT, .off = C(log.json), .def_s = "text"},
};

static const char *const groups[] = {"upstream", "mqtt", "units", "homeassistant", "owntracks", "state", "http", "log"};

#define I(f) offsetof(struct t2m_instance_cfg, f)
#define ISTR(k, f, ...) {.group = "instances", .name = (k), .type = T_STR, .off = I(f), .def_s = "", __VA_ARGS__}
enum ikey_id { IK_ID, IK_TOKEN, IK_TOKFILE, IK_CLIENT, IK_DEVICE, IK_REFRESH, N_IKEYS };
/* The first instance's keys have variables too (SPEC 6); T2M_INSTANCE_ID creates it. */
static const struct key ikeys[N_IKEYS] = {
    [IK_ID] = ISTR("id", id, .check = check_id, .env = "T2M_INSTANCE_ID"),
    [IK_TOKEN] = ISTR("access_token", access_token, .secret = true, .env = "T2M_ACCESS_TOKEN", .env_pair = 1 + IK_TOKFILE),
    [IK_TOKFILE] = ISTR("access_token_file", access_token_file, .env = "T2M_ACCESS_TOKEN_FILE", .env_pair = 1 + IK_TOKEN),
    [IK_CLIENT] = ISTR("client_id", client_id),
    [IK_DEVICE] = ISTR("device_token", device_token),
    [IK_REFRESH] = ISTR("refresh_token_file", refresh_token_file, .env = "T2M_REFRESH_TOKEN_FILE"),
};

#define D(f) offsetof(struct t2m_device_alias, f)
enum dkey_id { DK_TOKEN, DK_NAME, N_DKEYS };
static const struct key dkeys[N_DKEYS] = {
    [DK_TOKEN] = {.group = "devices", .name = "token", .type = T_STR, .off = D(token), .def_s = "", .check = check_id},
    [DK_NAME] = {.group = "devices", .name = "name", .type = T_STR, .off = D(name), .def_s = "", .check = check_nonempty},
};

#define Z(f) offsetof(struct t2m_zone, f)
enum zkey_id { ZK_NAME, ZK_LAT, ZK_LON, ZK_RADIUS, N_ZKEYS };
static const struct key zkeys[N_ZKEYS] = {
    [ZK_NAME] = {.group = "zones", .name = "name", .type = T_STR, .off = Z(name), .def_s = "", .check = check_nonempty},
    [ZK_LAT] = {.group = "zones", .name = "latitude", .type = T_FLOAT, .off = Z(latitude), .min = -90, .max = 90},
    [ZK_LON] = {.group = "zones", .name = "longitude", .type = T_FLOAT, .off = Z(longitude), .min = -180, .max = 180},
    [ZK_RADIUS] = {.group = "zones", .name = "radius", .type = T_FLOAT, .off = Z(radius), .min = 0, .max = 4e7, .min_excl = true},
};
/* clang-format on */

/* Where a value came from, for error messages: a file line, an environment variable, or neither
 * (the default). */
struct loc {
    const char *file;
    int line;
    const char *env;
};

struct inst_loc {
    struct loc group;
    struct loc k[N_IKEYS];
};

struct alias_tmp {
    struct t2m_device_alias a;
    struct loc at;
};

struct loader {
    const struct t2m_config_io *io; /* every file and variable read goes through it */
    struct t2m_config *cfg;
    config_t lc;
    char *incdir;
    struct loc locs[N_KEYS];
    struct inst_loc *ilocs;
    struct loc shard_at; /* where shard was set, if it was */
    char *err;
    size_t errlen;
};

/* ---- small helpers ---- */

static char **str_at(void *base, const struct key *k)
{
    return (char **)((char *)base + k->off);
}

/* Replaces a string field; the old value is wiped first when it may be a secret. */
static int set_str(void *base, const struct key *k, const char *v)
{
    char *dup = strdup(v);
    if (!dup) return -1;
    char **slot = str_at(base, k);
    if (k->secret)
        t2m_wipe_free(*slot);
    else
        free(*slot);
    *slot = dup;
    return 0;
}

static const char *type_name(int t)
{
    switch (t) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
        return "an integer";
    case CONFIG_TYPE_INT64:
        return "a 64-bit integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "nothing";
    }
}

static const char *want_name(enum ktype t)
{
    switch (t) {
    case T_BOOL:
        return "a boolean (true or false)";
    case T_INT:
        return "an integer";
    case T_FLOAT:
        return "a number";
    default:
        return "a string";
    }
}

/* Where a setting stands: an included file by its name, the main file (handed to libconfig as
 * a string, so it has none there) by its path. */
static struct loc loc_of(const struct loader *L, const config_setting_t *s)
{
    const char *f = config_setting_source_file(s);
    struct loc l = {f ? f : L->cfg->path, (int)config_setting_source_line(s), NULL};
    return l;
}

static struct loc loc_env(const char *var)
{
    struct loc l = {NULL, 0, var};
    return l;
}

static bool loc_set(const struct loc *l)
{
    return l->env || l->file;
}

/* Writes one error line: "T2M_X: ...", "FILE:LINE: what: ..." or "telematics2mqtt: what: ...".
 * Always returns -1 so callers can `return fail(...)`. */
__attribute__((format(printf, 4, 5))) static int fail(struct loader *L, const struct loc *at,
                                                      const char *what, const char *fmt, ...)
{
    if (!L->err || L->errlen == 0) return -1;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (at && at->env)
        snprintf(L->err, L->errlen, "%s: %s", at->env, msg);
    else if (at && at->file)
        snprintf(L->err, L->errlen, "%s:%d: %s%s%s", at->file, at->line, what ? what : "",
                 what ? ": " : "", msg);
    else
        snprintf(L->err, L->errlen, "telematics2mqtt: %s%s%s", what ? what : "", what ? ": " : "",
                 msg);
    return -1;
}

static int oom(struct loader *L)
{
    return fail(L, NULL, NULL, "out of memory");
}

/* ---- value checks ---- */

static int check_ws_url(const char *v, char *msg, size_t n)
{
    return t2m_url_check(v, true, NULL, 0, NULL, NULL, msg, n);
}

/* SPEC section 9: one URL, or the nodes of one clustered broker separated by commas (a list in
 * the file is stored so); all plain or all TLS. */
static int check_mqtt_url(const char *v, char *msg, size_t n)
{
    int tls = -1, count = 0, r;
    char one[1280];
    for (const char *p = v; (r = t2m_list_next(&p, one, sizeof(one))) != 0;) {
        if (r < 0) {
            snprintf(msg, n, "a broker URL longer than %zu bytes", sizeof(one) - 1);
            return -1;
        }
        bool node_tls;
        if (t2m_url_check(one, false, NULL, 0, NULL, &node_tls, msg, n)) return -1;
        int t = node_tls ? 1 : 0;
        if (tls >= 0 && t != tls) {
            snprintf(msg, n, "the nodes of one broker must all use TLS or none");
            return -1;
        }
        tls = t;
        if (++count > T2M_MQTT_MAX_NODES) {
            snprintf(msg, n, "more than %d broker nodes", T2M_MQTT_MAX_NODES);
            return -1;
        }
    }
    return 0;
}

static int check_nonempty(const char *v, char *msg, size_t n)
{
    if (*v) return 0;
    snprintf(msg, n, "must not be empty");
    return -1;
}

static int check_id(const char *v, char *msg, size_t n)
{
    if (check_nonempty(v, msg, n)) return -1;
    if (strlen(v) > MAX_ID_LEN) {
        snprintf(msg, n, "longer than %d bytes", MAX_ID_LEN);
        return -1;
    }
    return 0;
}

/* A topic prefix the bridge publishes under: no wildcards, no empty first or last level. */
static int check_topic(const char *v, char *msg, size_t n)
{
    if (check_nonempty(v, msg, n)) return -1;
    if (strpbrk(v, "+#")) {
        snprintf(msg, n, "must not contain the MQTT wildcards + or #");
        return -1;
    }
    if (v[0] == '/' || v[strlen(v) - 1] == '/') {
        snprintf(msg, n, "must not start or end with /");
        return -1;
    }
    if (!t2m_text_printable(v, strlen(v))) {
        snprintf(msg, n, "must be UTF-8 without control characters (newline, tab, ...)");
        return -1;
    }
    return 0;
}

/* An MQTT client id: a UTF-8 string a broker takes (MQTT 3.1.1 section 1.5.3). */
static int check_client_id(const char *v, char *msg, size_t n)
{
    if (check_nonempty(v, msg, n)) return -1;
    if (!t2m_text_printable(v, strlen(v))) {
        snprintf(msg, n, "must be UTF-8 without control characters");
        return -1;
    }
    return 0;
}

/* Same grammar as t2m_http_parse_listen ("host:port", "[v6]:port", ":port"), which this module
 * cannot link without pulling in lws. */
static int check_listen(const char *v, char *msg, size_t n)
{
    if (*v == '\0') return 0;
    const char *end = v + strlen(v);
    char host[256];
    int port = -1;
    int rc;
    rc = t2m_addr_split(v, (size_t)(end - v), host, sizeof(host), &port, false, NULL);
    if (rc == 0 && port > 0) return 0;
    snprintf(msg, n, "must be \"HOST:PORT\", \"[IPv6]:PORT\", \":PORT\" or \"\" (off)");
    return -1;
}

/* ---- wide integers ---- */

/* libconfig 1.5 silently wraps an integer literal past 32 bits without an L suffix
 * (4294967297 reads as 1), so the parsed value cannot tell: scan the source text for such
 * literals. Runs only on a file libconfig already parsed, so the lexing can be simple. */
static int scan_file(struct loader *L, const char *file, int depth);

static int scan_include(struct loader *L, const char *file, int line, const char **pp, int depth)
{
    const char *p = *pp;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '"') return 0;
    const char *q = strchr(p + 1, '"');
    if (!q) return 0;
    *pp = q + 1;
    char inc[4096];
    size_t n = (size_t)(q - p - 1);
    int w;
    if (p[1] != '/' && L->incdir)
        w = snprintf(inc, sizeof(inc), "%s/%.*s", L->incdir, (int)n, p + 1);
    else
        w = snprintf(inc, sizeof(inc), "%.*s", (int)n, p + 1);
    if (w < 0 || (size_t)w >= sizeof(inc)) {
        struct loc at = {file, line, NULL};
        return fail(L, &at, "@include", "path too long");
    }
    if (depth >= MAX_INCLUDE_DEPTH) {
        struct loc at = {file, line, NULL};
        return fail(L, &at, "@include", "nested more than %d deep", MAX_INCLUDE_DEPTH);
    }
    return scan_file(L, inc, depth + 1);
}

static int scan_number(struct loader *L, const char *file, int line, const char **pp)
{
    const char *p = *pp, *start = p;
    if (*p == '-' || *p == '+') p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        const char *h = p + 2;
        for (p = h; isxdigit((unsigned char)*p);)
            p++;
        *pp = p;
        if (*p == 'L') {
            *pp = p + 1 + (p[1] == 'L');
            return 0;
        }
        errno = 0;
        unsigned long long v = strtoull(h, NULL, 16);
        if (errno == 0 && v <= INT_MAX) return 0;
    } else {
        while (isdigit((unsigned char)*p))
            p++;
        if (*p == '.' || *p == 'e' || *p == 'E') {
            while (isalnum((unsigned char)*p) || *p == '.' ||
                   ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')))
                p++;
            *pp = p;
            return 0;
        }
        *pp = p;
        if (*p == 'L') {
            *pp = p + 1 + (p[1] == 'L');
            return 0;
        }
        errno = 0;
        long long v = strtoll(start, NULL, 10);
        if (errno == 0 && v >= INT_MIN && v <= INT_MAX) return 0;
    }
    struct loc at = {file, line, NULL};
    return fail(L, &at, NULL,
                "integer %.*s does not fit in 32 bits (no option takes one that large)",
                (int)(*pp - start), start);
}

static int scan_text(struct loader *L, const char *file, const char *p, int depth)
{
    int line = 1;
    while (*p) {
        if (*p == '\n') {
            line++;
            p++;
        } else if (*p == '"') { /* comments are gone already (strip_comments) */
            for (p++; *p && *p != '"'; p++) {
                /* libconfig turns "\x00" into a NUL that silently cuts the string short. */
                if (p[0] == '\\' && p[1] == 'x' && p[2] == '0' && p[3] == '0') {
                    struct loc at = {file, line, NULL};
                    return fail(L, &at, NULL, "a string holds a NUL byte (\\x00)");
                }
                if (*p == '\\' && p[1]) p++;
                line += *p == '\n';
            }
            if (*p) p++;
        } else if (strncmp(p, "@include", 8) == 0) {
            p += 8;
            if (scan_include(L, file, line, &p, depth)) return -1;
        } else if (isalpha((unsigned char)*p) || *p == '*') {
            while (isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '*')
                p++;
        } else if (*p == '.' && isdigit((unsigned char)p[1])) {
            p++;
            while (isalnum((unsigned char)*p) || *p == '.' ||
                   ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')))
                p++;
        } else if (isdigit((unsigned char)*p) ||
                   ((*p == '-' || *p == '+') && isdigit((unsigned char)p[1]))) {
            if (scan_number(L, file, line, &p)) return -1;
        } else {
            p++;
        }
    }
    return 0;
}

/* Reads a whole configuration file into *text through the io (NUL-terminated, *n bytes): *text
 * stays NULL when it does not exist and need not. 0, or -1 with L->err. */
static int load_text(struct loader *L, const char *file, bool must_exist, char **text, size_t *n)
{
    *text = NULL;
    *n = 0;
    int rc = L->io->read_file(file, MAX_CONF_SIZE, text, n, L->err, L->errlen);
    if (rc == 1 && !must_exist) {
        L->err[0] = '\0';
        return 0;
    }
    return rc == 0 ? 0 : -1;
}

static void free_text(char *text, size_t n)
{
    if (!text) return;
    explicit_bzero(text, n); /* the text may hold inline secrets */
    free(text);
}

/* Removes comments (#, //, block comments) in place, keeping every newline so that line numbers
 * stay right, and checks that no line is longer than MAX_CONF_LINE: libconfig's scanner takes
 * time quadratic in a token's length, so a 10 MB comment line would stall the start for a
 * minute. Linear in the text's length. Returns 0, or -1 with L->err. */
static int strip_comments(struct loader *L, const char *file, char *text)
{
    char *r = text, *w = text, *line_start = text;
    int line = 1;
    while (*r) {
        if (*r == '"') {
            *w++ = *r++;
            while (*r && *r != '"') {
                if (*r == '\\' && r[1]) *w++ = *r++;
                if (*r == '\n') {
                    line++;
                    line_start = w + 1;
                }
                *w++ = *r++;
            }
            if (*r) *w++ = *r++;
        } else if (*r == '#' || (r[0] == '/' && r[1] == '/')) {
            r += strcspn(r, "\n");
        } else if (r[0] == '/' && r[1] == '*') {
            for (r += 2; *r && !(r[0] == '*' && r[1] == '/'); r++)
                if (*r == '\n') {
                    *w++ = '\n';
                    line++;
                    line_start = w;
                }
            if (*r) r += 2;
        } else {
            if (*r == '\n') {
                line++;
                line_start = w + 1;
            }
            *w++ = *r++;
        }
        if (w - line_start > MAX_CONF_LINE) {
            struct loc at = {file, line, NULL};
            return fail(L, &at, NULL, "line longer than %d bytes (comments aside)", MAX_CONF_LINE);
        }
    }
    *w = '\0';
    return 0;
}

static int scan_file(struct loader *L, const char *file, int depth)
{
    char *text;
    size_t n;
    if (load_text(L, file, false, &text, &n)) return -1;
    if (!text) return 0; /* libconfig read it a moment ago; nothing to add if it is gone */
    int rc = strip_comments(L, file, text);
    if (rc == 0) rc = scan_text(L, file, text, depth);
    free_text(text, n);
    return rc;
}

/* ---- storing values ---- */

static void key_path(char *buf, size_t n, const char *group, long idx, const char *name)
{
    if (idx >= 0)
        snprintf(buf, n, "%s[%ld].%s", group, idx, name);
    else
        snprintf(buf, n, "%s.%s", group, name);
}

static int set_default(struct loader *L, void *base, const struct key *k)
{
    void *p = (char *)base + k->off; /* a member of the type k->type names */
    switch (k->type) {
    case T_BOOL:
        *(bool *)p = k->def_n != 0;
        return 0;
    case T_INT:
        *(int *)p = (int)k->def_n;
        return 0;
    case T_FLOAT:
        *(double *)p = k->def_n;
        return 0;
    case T_LEVEL:
        return t2m_log_parse_level(k->def_s, (enum t2m_log_level *)p);
    case T_FORMAT:
        *(bool *)p = strcmp(k->def_s, "json") == 0;
        return 0;
    case T_STR:
        break;
    }
    return set_str(base, k, k->def_s) ? oom(L) : 0;
}

/* Stores a string value (from the file or the environment) after checking it. */
static bool one_of(const char *v, const char *const *values)
{
    for (; *values; values++)
        if (strcmp(v, *values) == 0) return true;
    return false;
}

/* must be "a", "b" or "c" (or "" last, when it is taken too) */
static const char *say_values(const struct key *k, char *buf, size_t n)
{
    struct t2m_out o = {buf, n, 0, false};
    t2m_out_str(&o, "must be ");
    size_t count = 0;
    while (k->values[count])
        count++;
    size_t total = count + (k->or_empty ? 1 : 0);
    for (size_t i = 0; i < total; i++) {
        if (i) t2m_out_str(&o, i + 1 == total ? " or " : ", ");
        t2m_out_str(&o, "\"");
        t2m_out_str(&o, i < count ? k->values[i] : "");
        t2m_out_str(&o, "\"");
    }
    return t2m_out_finish(&o) ? buf : "is not one of the values it takes";
}

static int store_string(struct loader *L, void *base, const struct key *k, const char *v,
                        const struct loc *at, const char *what)
{
    char *p = (char *)base + k->off;
    char msg[512];
    if (k->type == T_LEVEL) {
        if (t2m_log_parse_level(v, (enum t2m_log_level *)p))
            return fail(L, at, what, "must be \"error\", \"warn\", \"info\" or \"debug\"");
        return 0;
    }
    if (k->type == T_FORMAT) {
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
            return fail(L, at, what, "must be \"text\" or \"json\"");
        *(bool *)p = strcmp(v, "json") == 0;
        return 0;
    }
    if (k->values && !(k->or_empty && !*v) && !one_of(v, k->values))
        return fail(L, at, what, "%s",
                    k->values_say ? k->values_say : say_values(k, msg, sizeof(msg)));
    if (k->check && k->check(v, msg, sizeof(msg))) return fail(L, at, what, "%s", msg);
    int e = k->file && *v ? L->io->access(v, false) : 0;
    if (e) return fail(L, at, what, "cannot read %s: %s", v, strerror(e));
    struct t2m_tz *tz = k->zone ? L->io->load_tz(v) : NULL;
    if (k->zone && !tz)
        return fail(L, at, what,
                    "unknown time zone \"%s\" (an IANA name such as \"Europe/Berlin\")", v);
    t2m_tz_free(tz);
    return set_str(base, k, v) ? oom(L) : 0;
}

static int store_number(struct loader *L, void *base, const struct key *k, double v,
                        const char *text, const struct loc *at, const char *what)
{
    bool ok = isfinite(v) && v >= k->min && v <= k->max && !(k->min_excl && v <= k->min);
    if (!ok) {
        if (k->type == T_INT && k->max - k->min == 1)
            return fail(L, at, what, "must be %.15g or %.15g, not %s", k->min, k->max, text);
        if (k->max >= INT_MAX && v < k->min)
            return fail(L, at, what, "must be at least %.15g, not %s", k->min, text);
        if (k->min_excl)
            return fail(L, at, what, "must be greater than %.15g and at most %.15g, not %s", k->min,
                        k->max, text);
        return fail(L, at, what, "must be between %.15g and %.15g, not %s", k->min, k->max, text);
    }
    void *p = (char *)base + k->off;
    if (k->type == T_INT)
        *(int *)p = (int)v;
    else
        *(double *)p = v;
    return 0;
}

/* Checks one setting's type against its key and stores it. A type mismatch is an error: libconfig's
 * lookup functions would report it as a missing key and leave the default in place. */
static int apply_setting(struct loader *L, void *base, const struct key *k, config_setting_t *s,
                         struct loc *at, const char *what)
{
    int t = config_setting_type(s);
    char text[64];
    *at = loc_of(L, s);
    switch (k->type) {
    case T_BOOL:
        if (t != CONFIG_TYPE_BOOL) break;
        *(bool *)((char *)base + k->off) = config_setting_get_bool(s) != 0;
        return 0;
    case T_INT:
    case T_FLOAT:
        if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
            long long v =
                t == CONFIG_TYPE_INT ? config_setting_get_int(s) : config_setting_get_int64(s);
            snprintf(text, sizeof(text), "%lld", v);
            return store_number(L, base, k, (double)v, text, at, what);
        }
        if (t == CONFIG_TYPE_FLOAT && k->type == T_FLOAT) {
            double v = config_setting_get_float(s);
            snprintf(text, sizeof(text), "%g", v);
            return store_number(L, base, k, v, text, at, what);
        }
        break;
    default:
        if (t != CONFIG_TYPE_STRING) break;
        int rc = store_string(L, base, k, config_setting_get_string(s), at, what);
        if (k->secret) {
            /* config_destroy frees its copy of an inline secret without wiping it. */
            char *raw = (char *)config_setting_get_string(s);
            explicit_bzero(raw, strlen(raw));
        }
        return rc;
    }
    return fail(L, at, what, "expected %s, got %s", want_name(k->type), type_name(t));
}

static const struct key *find_key(const struct key *table, size_t n, const char *group,
                                  const char *name, size_t *idx)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(table[i].group, group) == 0 && strcmp(table[i].name, name) == 0) {
            *idx = i;
            return &table[i];
        }
    }
    return NULL;
}

/* ---- the file ---- */

/* mqtt.url as a list of nodes: stored as one comma-separated string. */
static int apply_url_list(struct loader *L, const struct key *k, config_setting_t *s,
                          struct loc *slot, const char *what)
{
    struct loc at = loc_of(L, s);
    int cnt = config_setting_length(s);
    if (cnt == 0) return fail(L, &at, what, "an empty list of broker nodes");
    size_t total = 1;
    for (int i = 0; i < cnt; i++) {
        const char *e = config_setting_get_string_elem(s, i);
        if (!e) return fail(L, &at, what, "a list of URL strings expected");
        total += strlen(e) + 1;
    }
    char *joined = malloc(total);
    if (!joined) return oom(L);
    size_t o = 0;
    for (int i = 0; i < cnt; i++) {
        const char *e = config_setting_get_string_elem(s, i);
        size_t el = strlen(e);
        if (memchr(e, ',', el)) {
            free(joined);
            return fail(L, &at, what, "a node URL cannot contain a comma");
        }
        if (i) joined[o++] = ',';
        memcpy(joined + o, e, el);
        o += el;
    }
    joined[o] = '\0';
    int rc = store_string(L, L->cfg, k, joined, &at, what);
    free(joined);
    if (rc == 0) *slot = at;
    return rc;
}

static int parse_group(struct loader *L, config_setting_t *g, const char *gname)
{
    struct loc at = loc_of(L, g);
    if (!config_setting_is_group(g))
        return fail(L, &at, gname, "expected a group { ... }, got %s",
                    type_name(config_setting_type(g)));
    for (int i = 0; i < config_setting_length(g); i++) {
        config_setting_t *s = config_setting_get_elem(g, i);
        size_t idx;
        const struct key *k = find_key(keys, N_KEYS, gname, config_setting_name(s), &idx);
        struct loc sat = loc_of(L, s);
        if (!k) return fail(L, &sat, NULL, "unknown key %s.%s", gname, config_setting_name(s));
        char what[128];
        key_path(what, sizeof(what), gname, -1, k->name);
        int t = config_setting_type(s);
        if (idx == K_MQ_URL && (t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_ARRAY)) {
            if (apply_url_list(L, k, s, &L->locs[idx], what)) return -1;
            continue;
        }
        if (apply_setting(L, L->cfg, k, s, &L->locs[idx], what)) return -1;
    }
    return 0;
}

/* A list of groups; an empty array or list is fine too. */
static int check_list(struct loader *L, config_setting_t *s, const char *name)
{
    struct loc at = loc_of(L, s);
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_LIST || (t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
        return 0;
    return fail(L, &at, name, "expected a list ( { ... }, ... ), got %s", type_name(t));
}

static int add_instance(struct loader *L, const struct loc *at)
{
    struct t2m_config *cfg = L->cfg;
    size_t n = cfg->n_instances;
    struct t2m_instance_cfg *ni = realloc(cfg->instances, (n + 1) * sizeof(*ni));
    if (!ni) return oom(L);
    cfg->instances = ni;
    struct inst_loc *nl = realloc(L->ilocs, (n + 1) * sizeof(*nl));
    if (!nl) return oom(L);
    L->ilocs = nl;
    memset(&ni[n], 0, sizeof(ni[n]));
    memset(&nl[n], 0, sizeof(nl[n]));
    nl[n].group = *at;
    cfg->n_instances = n + 1;
    for (size_t k = 0; k < N_IKEYS; k++)
        if (set_default(L, &ni[n], &ikeys[k])) return -1;
    return 0;
}

static int parse_instances(struct loader *L, config_setting_t *list)
{
    if (check_list(L, list, "instances")) return -1;
    for (int i = 0; i < config_setting_length(list); i++) {
        config_setting_t *g = config_setting_get_elem(list, i);
        struct loc at = loc_of(L, g);
        char what[128];
        snprintf(what, sizeof(what), "instances[%d]", i);
        if (!config_setting_is_group(g))
            return fail(L, &at, what, "expected a group { id = ...; ... }, got %s",
                        type_name(config_setting_type(g)));
        if (add_instance(L, &at)) return -1;
        struct t2m_instance_cfg *inst = &L->cfg->instances[i];
        struct inst_loc *il = &L->ilocs[i];
        for (int j = 0; j < config_setting_length(g); j++) {
            config_setting_t *s = config_setting_get_elem(g, j);
            size_t idx;
            const struct key *k =
                find_key(ikeys, N_IKEYS, "instances", config_setting_name(s), &idx);
            struct loc sat = loc_of(L, s);
            if (!k)
                return fail(L, &sat, NULL, "unknown key instances[%d].%s", i,
                            config_setting_name(s));
            key_path(what, sizeof(what), "instances", i, k->name);
            if (apply_setting(L, inst, k, s, &il->k[idx], what)) return -1;
        }
        if (*inst->access_token && *inst->access_token_file) {
            key_path(what, sizeof(what), "instances", i, "access_token_file");
            return fail(L, &il->k[IK_TOKFILE], what, "set either access_token or %s, not both",
                        "access_token_file");
        }
    }
    return 0;
}

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static int cmp_alias(const void *x, const void *y)
{
    const struct alias_tmp *a = x, *b = y;
    int c = cmp_bytes(a->a.token, strlen(a->a.token), b->a.token, strlen(b->a.token));
    return c ? c : (a->at.line > b->at.line) - (a->at.line < b->at.line);
}

static void free_aliases(struct alias_tmp *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].a.token);
        free(t[i].a.name);
    }
    free(t);
}

/* Aliases are kept sorted by token so t2m_config_alias is a binary search. */
static int parse_devices(struct loader *L, config_setting_t *list)
{
    if (check_list(L, list, "devices")) return -1;
    size_t n = (size_t)config_setting_length(list);
    struct alias_tmp *t = calloc(n ? n : 1, sizeof(*t));
    if (!t) return oom(L);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        char what[128];
        snprintf(what, sizeof(what), "devices[%zu]", i);
        t[i].at = loc_of(L, g);
        if (!config_setting_is_group(g)) {
            rc = fail(L, &t[i].at, what, "expected a group { token = ...; name = ...; }, got %s",
                      type_name(config_setting_type(g)));
            break;
        }
        for (int j = 0; j < config_setting_length(g) && rc == 0; j++) {
            config_setting_t *s = config_setting_get_elem(g, j);
            size_t idx;
            const struct key *k = find_key(dkeys, N_DKEYS, "devices", config_setting_name(s), &idx);
            struct loc sat = loc_of(L, s);
            key_path(what, sizeof(what), "devices", (long)i, config_setting_name(s));
            rc = k ? apply_setting(L, &t[i].a, k, s, &sat, what)
                   : fail(L, &sat, NULL, "unknown key %s", what);
        }
        if (rc == 0 && (!t[i].a.token || !t[i].a.name)) {
            snprintf(what, sizeof(what), "devices[%zu]", i);
            rc = fail(L, &t[i].at, what, "needs both token and name");
        }
    }
    if (rc) {
        free_aliases(t, n);
        return -1;
    }
    qsort(t, n, sizeof(*t), cmp_alias);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(t[i].a.token, t[i - 1].a.token) == 0) {
            struct loc at = t[i].at;
            free_aliases(t, n);
            return fail(L, &at, "devices", "a second alias for the same token");
        }
    }
    struct t2m_device_alias *d = calloc(n ? n : 1, sizeof(*d));
    if (!d) {
        free_aliases(t, n);
        return oom(L);
    }
    for (size_t i = 0; i < n; i++)
        d[i] = t[i].a;
    free(t);
    L->cfg->devices = d;
    L->cfg->n_devices = n;
    return 0;
}

/* zones = ( { name = "Depot"; latitude = 52.37; longitude = 4.89; radius = 150.0; } ); every
 * key required, names unique (they are what events and the state carry). */
static int parse_zones(struct loader *L, config_setting_t *list)
{
    if (check_list(L, list, "zones")) return -1;
    size_t n = (size_t)config_setting_length(list);
    struct t2m_zone *z = calloc(n ? n : 1, sizeof(*z));
    if (!z) return oom(L);
    L->cfg->zones = z;
    L->cfg->n_zones = n;
    for (size_t i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        char what[128];
        snprintf(what, sizeof(what), "zones[%zu]", i);
        struct loc at = loc_of(L, g);
        if (!config_setting_is_group(g))
            return fail(L, &at, what,
                        "expected a group { name = ...; latitude = ...; longitude = ...; "
                        "radius = ...; }, got %s",
                        type_name(config_setting_type(g)));
        bool seen[N_ZKEYS] = {false};
        for (int j = 0; j < config_setting_length(g); j++) {
            config_setting_t *s = config_setting_get_elem(g, j);
            size_t idx;
            const struct key *k = find_key(zkeys, N_ZKEYS, "zones", config_setting_name(s), &idx);
            struct loc sat = loc_of(L, s);
            key_path(what, sizeof(what), "zones", (long)i, config_setting_name(s));
            if (!k) return fail(L, &sat, NULL, "unknown key %s", what);
            if (apply_setting(L, &z[i], k, s, &sat, what)) return -1;
            seen[idx] = true;
        }
        for (size_t k = 0; k < N_ZKEYS; k++) {
            if (seen[k]) continue;
            snprintf(what, sizeof(what), "zones[%zu]", i);
            return fail(L, &at, what, "needs name, latitude, longitude and radius (%s missing)",
                        zkeys[k].name);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(z[j].name, z[i].name) == 0) {
                snprintf(what, sizeof(what), "zones[%zu]", i);
                return fail(L, &at, what, "a second zone named \"%s\"", z[i].name);
            }
        }
    }
    return 0;
}

/* ---- SPEC section 9: shards ---- */

static void free_strings(void *base, const struct key *table, size_t n);

static bool all_digits(const char *s, size_t len)
{
    if (len == 0 || len > 4) return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

int t2m_shard_parse(const char *text, unsigned *k, unsigned *n)
{
    if (!text) return -1;
    const char *slash = strrchr(text, '/');
    if (!slash || slash == text) return -1;
    const char *ns = slash + 1;
    if (!all_digits(ns, strlen(ns))) return -1;
    unsigned nn = (unsigned)strtoul(ns, NULL, 10); /* 1..4 digits, checked above */
    /* K: a number, or a name ending in -<ordinal> (a StatefulSet pod's name) */
    const char *ks = text;
    size_t kl = (size_t)(slash - text);
    if (!all_digits(ks, kl)) {
        const char *dash = NULL;
        for (const char *c = text; c < slash; c++)
            if (*c == '-') dash = c;
        if (!dash || dash == text) return -1;
        ks = dash + 1;
        kl = (size_t)(slash - ks);
        if (!all_digits(ks, kl)) return -1;
    }
    char kb[8];
    memcpy(kb, ks, kl);
    kb[kl] = '\0';
    unsigned kk = (unsigned)strtoul(kb, NULL, 10);
    if (nn < 1 || nn > 1024 || kk >= nn) return -1;
    *k = kk;
    *n = nn;
    return 0;
}

unsigned t2m_shard_of(const char *instance_id, unsigned n)
{
    return n ? t2m_fnv1a(T2M_FNV_INIT, instance_id, strlen(instance_id)) % n : 0;
}

static int set_shard(struct loader *L, const char *text, const struct loc *at)
{
    unsigned k, n;
    if (t2m_shard_parse(text, &k, &n) != 0)
        return fail(L, at, "shard",
                    "\"%s\" is not \"K/N\" (1 <= N <= 1024, 0 <= K < N; K may be a StatefulSet pod "
                    "name ending in -K)",
                    text);
    L->cfg->shard.k = k;
    L->cfg->shard.n = n;
    L->shard_at = *at;
    return 0;
}

static int parse_shard(struct loader *L, config_setting_t *s)
{
    struct loc at = loc_of(L, s);
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(L, &at, "shard", "must be a string such as \"0/3\"");
    return set_shard(L, config_setting_get_string(s), &at);
}

/* Keeps the instances of this shard, derives the client id and the bridge's own topic. */
static int apply_shard(struct loader *L)
{
    struct t2m_config *cfg = L->cfg;
    cfg->shard.configured = cfg->n_instances;
    char k[16];
    snprintf(k, sizeof(k), "%u", cfg->shard.k);
    char topic[T2M_TOPIC_MAX + 1];
    int tl = cfg->shard.n
                 ? t2m_topic_join(topic, sizeof(topic), 3, cfg->mqtt.base_topic, "bridge", k)
                 : t2m_topic_join(topic, sizeof(topic), 2, cfg->mqtt.base_topic, "bridge");
    if (tl < 0)
        return fail(L, &L->locs[K_MQ_BASE], "mqtt.base_topic", "too long for the bridge's topics");
    if (!(cfg->mqtt.bridge_topic = strdup(topic))) return oom(L);
    if (!cfg->shard.n) return 0;
    if (*cfg->mqtt.client_id) {
        size_t l = strlen(cfg->mqtt.client_id) + strlen(k) + 2;
        char *id = malloc(l);
        if (!id) return oom(L);
        snprintf(id, l, "%s-%s", cfg->mqtt.client_id, k);
        free(cfg->mqtt.client_id);
        cfg->mqtt.client_id = id;
    }
    size_t kept = 0;
    for (size_t i = 0; i < cfg->n_instances; i++) {
        if (t2m_shard_of(cfg->instances[i].id, cfg->shard.n) == cfg->shard.k)
            cfg->instances[kept++] = cfg->instances[i];
        else
            free_strings(&cfg->instances[i], ikeys, N_IKEYS);
    }
    cfg->n_instances = kept;
    return 0;
}

static int parse_root(struct loader *L, config_setting_t *root)
{
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *s = config_setting_get_elem(root, i);
        const char *name = config_setting_name(s);
        int rc = -2;
        for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
            if (strcmp(name, groups[g]) == 0) rc = parse_group(L, s, groups[g]);
        if (strcmp(name, "instances") == 0)
            rc = parse_instances(L, s);
        else if (strcmp(name, "devices") == 0)
            rc = parse_devices(L, s);
        else if (strcmp(name, "zones") == 0)
            rc = parse_zones(L, s);
        else if (strcmp(name, "shard") == 0)
            rc = parse_shard(L, s);
        if (rc == -2) {
            struct loc at = loc_of(L, s);
            return fail(L, &at, NULL, "unknown key %s", name);
        }
        if (rc) return -1;
    }
    return 0;
}

static int read_text(struct loader *L, const char *file, char *text);

static int read_file(struct loader *L, const char *file, bool must_exist)
{
    if (!*file) return fail(L, NULL, NULL, "empty configuration file name");
    char *text;
    size_t n;
    if (load_text(L, file, must_exist, &text, &n)) return -1;
    if (!text) return 0; /* no file at all: the environment alone configures the bridge */
    int rc = read_text(L, file, text);
    free_text(text, n);
    return rc;
}

/* The file's text, read once: comments stripped, wide integers checked, then libconfig. */
static int read_text(struct loader *L, const char *file, char *text)
{
    if (!(L->cfg->path = strdup(file)) || !(L->incdir = strdup(file))) return oom(L);
    char *slash = strrchr(L->incdir, '/');
    if (slash)
        slash[slash == L->incdir ? 1 : 0] = '\0';
    else
        strcpy(L->incdir, ".");
    config_set_include_dir(&L->lc, L->incdir);
    if (strip_comments(L, file, text) || scan_text(L, file, text, 0)) return -1;
    if (!config_read_string(&L->lc, text)) {
        const char *ef = config_error_file(&L->lc);
        snprintf(L->err, L->errlen, "%s:%d: %s", ef ? ef : file, config_error_line(&L->lc),
                 config_error_text(&L->lc));
        return -1;
    }
    return parse_root(L, config_root_setting(&L->lc));
}

/* ---- the environment ---- */

static const char *getenv_nonempty(struct loader *L, const char *var)
{
    const char *v = L->io->getenv(var);
    return v && *v ? v : NULL;
}

/* SPEC 6: the refresh endpoint may be overridden only where the tokens cannot travel in clear
 * text to another host: https://, or http:// to a loopback address (tests). */
static int apply_env_refresh_url(struct loader *L)
{
    const char *v = getenv_nonempty(L, "T2M_REFRESH_URL");
    if (!v) return 0;
    struct loc at = loc_env("T2M_REFRESH_URL");
    char scheme[16], host[256], path[1024];
    int port;
    if (t2m_url_parse(v, scheme, sizeof(scheme), host, sizeof(host), &port, path, sizeof(path)) ||
        (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0))
        return fail(L, &at, NULL, "not a valid https:// URL");
    if (strcmp(scheme, "http") == 0 && !t2m_addr_loopback(host))
        return fail(L, &at, NULL,
                    "http:// only to a loopback address: the tokens never travel in clear text "
                    "(use https://)");
    free(L->cfg->upstream.refresh_url);
    if (!(L->cfg->upstream.refresh_url = strdup(v))) return oom(L);
    return 0;
}

/* The first instance's variables (ikeys' env column): T2M_INSTANCE_ID creates it when the file
 * has none; an access token from one variable clears the file's other form. */
static int apply_env_instance(struct loader *L)
{
    const char *v[N_IKEYS] = {NULL};
    bool any = false;
    for (size_t k = 0; k < N_IKEYS; k++)
        any |= ikeys[k].env && (v[k] = getenv_nonempty(L, ikeys[k].env)) != NULL;
    if (!any) return 0;
    if (v[IK_TOKEN] && v[IK_TOKFILE]) {
        struct loc at = loc_env(ikeys[IK_TOKEN].env);
        return fail(L, &at, NULL, "set either %s or %s, not both", ikeys[IK_TOKEN].env,
                    ikeys[IK_TOKFILE].env);
    }
    struct loc none = {NULL, 0, NULL};
    if (L->cfg->n_instances == 0 && add_instance(L, &none)) return -1;
    struct t2m_instance_cfg *inst = &L->cfg->instances[0];
    struct inst_loc *il = &L->ilocs[0];
    char msg[256];
    for (size_t k = 0; k < N_IKEYS; k++) {
        if (!v[k]) continue;
        il->k[k] = loc_env(ikeys[k].env);
        if (ikeys[k].check && ikeys[k].check(v[k], msg, sizeof(msg)))
            return fail(L, &il->k[k], NULL, "%s", msg);
        if (set_str(inst, &ikeys[k], v[k])) return oom(L);
        if (ikeys[k].env_pair) {
            il->k[ikeys[k].env_pair - 1] = none;
            if (set_str(inst, &ikeys[ikeys[k].env_pair - 1], "")) return oom(L);
        }
    }
    return 0;
}

static int apply_env(struct loader *L)
{
    const struct key *pw = &keys[K_MQ_PASS], *pwf = &keys[K_MQ_PASSFILE];
    if (getenv_nonempty(L, pw->env) && getenv_nonempty(L, pwf->env)) {
        struct loc at = loc_env(pw->env);
        return fail(L, &at, NULL, "set either %s or %s, not both", pw->env, pwf->env);
    }
    if (apply_env_refresh_url(L)) return -1;
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];
        const char *v = k->env ? L->io->getenv(k->env) : NULL;
        if (!v || (k->env_pair && !*v)) continue; /* an empty secret counts as unset */
        struct loc at = loc_env(k->env);
        if (store_string(L, L->cfg, k, v, &at, NULL)) return -1;
        L->locs[i] = at;
        if (k->env_pair) {
            if (set_str(L->cfg, &keys[k->env_pair - 1], "")) return oom(L);
            memset(&L->locs[k->env_pair - 1], 0, sizeof(struct loc));
        }
    }
    const char *shard = getenv_nonempty(L, "T2M_SHARD");
    if (shard) {
        struct loc at = loc_env("T2M_SHARD");
        if (set_shard(L, shard, &at)) return -1;
    }
    return apply_env_instance(L);
}

/* ---- whole-configuration checks ---- */

static int read_secret_into(struct loader *L, char **slot, const char *file, const struct loc *at,
                            const char *what)
{
    char msg[512];
    char *s = L->io->read_secret(file, msg, sizeof(msg));
    if (!s) return fail(L, at, what, "%s", msg);
    t2m_wipe_free(*slot);
    *slot = s;
    return 0;
}

/* SPEC 6: the refresh token file is a readable secret, and its directory writable: the rotated
 * token is written back there atomically (a temporary file, then a rename). */
static int check_refresh_file(struct loader *L, const char *file, const struct loc *at,
                              const char *what)
{
    char msg[512];
    char *s = L->io->read_secret(file, msg, sizeof(msg));
    if (!s) return fail(L, at, what, "%s", msg);
    t2m_wipe_free(s);
    const char *slash = strrchr(file, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == file)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - file) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
    else
        return fail(L, at, what, "path too long");
    int e = L->io->access(dir, true);
    if (e)
        return fail(L, at, what,
                    "the directory %s is not writable (%s): the rotated refresh token is written "
                    "back there (systemd: StateDirectory=; a container: a volume)",
                    dir, strerror(e));
    return 0;
}

static int check_instances(struct loader *L)
{
    struct t2m_config *cfg = L->cfg;
    char what[128];
    if (cfg->n_instances == 0)
        return fail(L, NULL, NULL,
                    "no instance configured: add instances = ( { id = \"...\"; "
                    "access_token_file = \"...\"; } ) or set T2M_INSTANCE_ID and T2M_ACCESS_TOKEN");
    for (size_t i = 0; i < cfg->n_instances; i++) {
        struct t2m_instance_cfg *in = &cfg->instances[i];
        struct inst_loc *il = &L->ilocs[i];
        if (*in->access_token_file) {
            key_path(what, sizeof(what), "instances", (long)i, "access_token_file");
            if (read_secret_into(L, &in->access_token, in->access_token_file, &il->k[IK_TOKFILE],
                                 what))
                return -1;
        }
        if (*in->refresh_token_file) {
            key_path(what, sizeof(what), "instances", (long)i, "refresh_token_file");
            if (check_refresh_file(L, in->refresh_token_file, &il->k[IK_REFRESH], what)) return -1;
        }
        snprintf(what, sizeof(what), "instances[%zu]", i);
        if (!*in->id) return fail(L, &il->group, what, "no id (set id, or T2M_INSTANCE_ID)");
        if (strcmp(in->id, "bridge") == 0) {
            key_path(what, sizeof(what), "instances", (long)i, "id");
            return fail(L, loc_set(&il->k[IK_ID]) ? &il->k[IK_ID] : &il->group, what,
                        "\"bridge\" is reserved: B/bridge/... are the bridge's own topics");
        }
        if (!*in->access_token)
            return fail(L, &il->group, what,
                        "no access token (set access_token or access_token_file, or "
                        "T2M_ACCESS_TOKEN or T2M_ACCESS_TOKEN_FILE)");
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->instances[j].id, in->id) == 0) {
                key_path(what, sizeof(what), "instances", (long)i, "id");
                const struct loc *at = loc_set(&il->k[IK_ID]) ? &il->k[IK_ID] : &il->group;
                return fail(L, at, what, "\"%s\" is already the id of instances[%zu]", in->id, j);
            }
        }
    }
    return 0;
}

static int check_mqtt(struct loader *L)
{
    struct t2m_config *cfg = L->cfg;
    if (*cfg->mqtt.password_file &&
        read_secret_into(L, &cfg->mqtt.password, cfg->mqtt.password_file, &L->locs[K_MQ_PASSFILE],
                         "mqtt.password_file"))
        return -1;
    if (*cfg->mqtt.password && !*cfg->mqtt.username) {
        bool f = *cfg->mqtt.password_file;
        return fail(L, &L->locs[f ? K_MQ_PASSFILE : K_MQ_PASS],
                    f ? "mqtt.password_file" : "mqtt.password",
                    "a password needs mqtt.username too");
    }
    if (strcmp(cfg->mqtt.client, "mosquitto") == 0 && cfg->mqtt.protocol == 5) {
        /* libmosquitto (2.0.11 here, and every release up to 2.0.20) aborts the process on an
         * MQTT 5 CONNACK or PUBLISH with an unknown property: property__read logs it through
         * log__printf(NULL, ...), which asserts its first argument. A broker, or anyone on a
         * plain-TCP path, could kill the bridge at will. */
        bool c = loc_set(&L->locs[K_MQ_CLIENT]);
        return fail(L, &L->locs[c ? K_MQ_CLIENT : K_MQ_PROTO], c ? "mqtt.client" : "mqtt.protocol",
                    "the libmosquitto client cannot speak MQTT 5 safely (libmosquitto up to 2.0.20 "
                    "aborts on a packet with an unknown property): use mqtt.client = \"lws\" or "
                    "\"paho\" for MQTT 5, or mqtt.protocol = 4");
    }
    if (!*cfg->mqtt.cert_file != !*cfg->mqtt.key_file) {
        bool c = *cfg->mqtt.cert_file;
        return fail(L, &L->locs[c ? K_MQ_CERT : K_MQ_KEY], c ? "mqtt.cert_file" : "mqtt.key_file",
                    "needs %s too", c ? "mqtt.key_file" : "mqtt.cert_file");
    }
    return 0;
}

static int check_upstream(struct loader *L)
{
    struct t2m_config *cfg = L->cfg;
    if (cfg->upstream.backoff_max >= cfg->upstream.backoff_min) return 0;
    if (loc_set(&L->locs[K_UP_BOMAX]) || !loc_set(&L->locs[K_UP_BOMIN]))
        return fail(L, &L->locs[K_UP_BOMAX], "upstream.backoff_max",
                    "must be at least upstream.backoff_min (%g)", cfg->upstream.backoff_min);
    return fail(L, &L->locs[K_UP_BOMIN], "upstream.backoff_min",
                "must not exceed upstream.backoff_max (%g)", cfg->upstream.backoff_max);
}

/* SPEC section 2: no topic is ever truncated, and none is longer than 1,024 bytes. A base topic
 * or discovery prefix that leaves too little room for a device is a configuration error here,
 * not a drop per message later: room is kept for a 64-byte device token (192 bytes encoded). */
#define DEVICE_ROOM 192
static int check_topic_room(struct loader *L)
{
    const struct t2m_config *cfg = L->cfg;
    size_t longest_id = 0;
    for (size_t i = 0; i < cfg->n_instances; i++)
        if (strlen(cfg->instances[i].id) > longest_id) longest_id = strlen(cfg->instances[i].id);
    /* B/I/D/last_seen, B/bridge/response/device/rename */
    size_t base = strlen(cfg->mqtt.base_topic);
    if (base + 1 + 3 * longest_id + 1 + DEVICE_ROOM + sizeof("/last_seen") > T2M_TOPIC_MAX ||
        base + sizeof("/bridge/1023/response/device/rename") > T2M_TOPIC_MAX)
        return fail(L, &L->locs[K_MQ_BASE], "mqtt.base_topic",
                    "too long (%zu bytes): with the instance ids its topics would pass %d bytes",
                    base, T2M_TOPIC_MAX);
    /* P/device_tracker/t2m_<I>/<D>/config, ids escaped up to 3 bytes a byte */
    size_t prefix = strlen(cfg->homeassistant.discovery_prefix);
    if (prefix + sizeof("/binary_sensor/t2m_") + 3 * longest_id + 1 + DEVICE_ROOM +
            sizeof("_driving/config") >
        T2M_TOPIC_MAX)
        return fail(L, &L->locs[K_HA_PREFIX], "homeassistant.discovery_prefix",
                    "too long (%zu bytes): with the instance ids its topics would pass %d bytes",
                    prefix, T2M_TOPIC_MAX);
    return 0;
}

static int resolve_units(struct loader *L)
{
    struct t2m_config *cfg = L->cfg;
    struct t2m_units *u = &cfg->units.resolved;
    /* Each name was checked when it was stored; these cannot fail. */
    t2m_units_parse_system(cfg->units.system, &u->speed, &u->distance);
    if (*cfg->units.speed) t2m_units_parse_speed(cfg->units.speed, &u->speed);
    if (*cfg->units.distance) t2m_units_parse_distance(cfg->units.distance, &u->distance);
    t2m_units_parse_ts(cfg->units.timestamp, &u->timestamp);
    u->precision = cfg->units.precision;
    struct t2m_tz *tz = L->io->load_tz(cfg->units.timezone);
    if (!tz)
        return fail(L, &L->locs[K_UN_TZ], "units.timezone", "cannot load time zone \"%s\"",
                    cfg->units.timezone);
    u->tz = tz;
    return 0;
}

struct t2m_config *t2m_config_parse(const struct t2m_config_io *io, const char *path,
                                    bool explicit_path, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    struct loader L = {.io = io, .err = err, .errlen = errlen};
    L.cfg = calloc(1, sizeof(*L.cfg));
    if (!L.cfg) {
        oom(&L);
        return NULL;
    }
    config_init(&L.lc);
    int rc = 0;
    for (size_t i = 0; i < N_KEYS && rc == 0; i++)
        rc = set_default(&L, L.cfg, &keys[i]);
    if (rc == 0) rc = read_file(&L, path ? path : T2M_DEFAULT_CONFIG, path && explicit_path);
    if (rc == 0) rc = apply_env(&L);
    if (rc == 0) rc = check_upstream(&L);
    if (rc == 0) rc = check_instances(&L);
    if (rc == 0) rc = check_mqtt(&L);
    if (rc == 0 && *L.cfg->http.ui_password_file)
        rc = read_secret_into(&L, &L.cfg->http.ui_password, L.cfg->http.ui_password_file,
                              &L.locs[K_HTTP_UIPASS], "http.ui_password_file");
    if (rc == 0) rc = check_topic_room(&L);
    if (rc == 0) rc = apply_shard(&L);
    if (rc == 0) rc = resolve_units(&L);
    /* The error text is already formatted: the file names it points into may go now. */
    config_destroy(&L.lc);
    free(L.ilocs);
    free(L.incdir);
    if (rc) {
        t2m_config_free(L.cfg);
        return NULL;
    }
    return L.cfg;
}

/* ---- freeing, lookup ---- */

static void free_strings(void *base, const struct key *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (table[i].type != T_STR) continue;
        char **slot = str_at(base, &table[i]);
        if (table[i].secret)
            t2m_wipe_free(*slot);
        else
            free(*slot);
        *slot = NULL;
    }
}

void t2m_config_free(struct t2m_config *cfg)
{
    if (!cfg) return;
    free_strings(cfg, keys, N_KEYS);
    for (size_t i = 0; i < cfg->n_instances; i++)
        free_strings(&cfg->instances[i], ikeys, N_IKEYS);
    free(cfg->instances);
    for (size_t i = 0; i < cfg->n_devices; i++)
        free_strings(&cfg->devices[i], dkeys, N_DKEYS);
    free(cfg->devices);
    for (size_t i = 0; i < cfg->n_zones; i++)
        free_strings(&cfg->zones[i], zkeys, N_ZKEYS);
    free(cfg->zones);
    free(cfg->mqtt.bridge_topic);
    free(cfg->upstream.refresh_url);
    t2m_wipe_free(cfg->http.ui_password);
    /* resolved.tz is const for its readers; this struct owns it. */
    t2m_tz_free((struct t2m_tz *)cfg->units.resolved.tz);
    free(cfg->path);
    free(cfg);
}

const char *t2m_config_alias(const struct t2m_config *cfg, const char *token, size_t len)
{
    if (!cfg || !token) return NULL;
    size_t lo = 0, hi = cfg->n_devices;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *t = cfg->devices[mid].token;
        int c = cmp_bytes(token, len, t, strlen(t));
        if (c == 0) return cfg->devices[mid].name;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- printing ---- */

/* A libconfig string literal. */
static void print_str(struct t2m_sbuf *out, const char *s)
{
    t2m_sbuf_put(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            t2m_sbuf_str(out, "\\\"");
            break;
        case '\\':
            t2m_sbuf_str(out, "\\\\");
            break;
        case '\n':
            t2m_sbuf_str(out, "\\n");
            break;
        case '\r':
            t2m_sbuf_str(out, "\\r");
            break;
        case '\t':
            t2m_sbuf_str(out, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                t2m_sbuf_printf(out, "\\x%02x", *p);
            else
                t2m_sbuf_put(out, (const char *)p, 1);
        }
    }
    t2m_sbuf_put(out, "\"", 1);
}

/* The shortest text that reads back as the same double, always with a '.' or an exponent so
 * libconfig takes it as a float (JSON takes it as it is). */
static void print_float(struct t2m_sbuf *out, double v)
{
    char buf[40];
    if (!t2m_units_format_shortest(buf, sizeof(buf), v)) snprintf(buf, sizeof(buf), "%.17g", v);
    t2m_sbuf_str(out, buf);
    if (!strpbrk(buf, ".e")) t2m_sbuf_str(out, ".0");
}

/* A string literal by libconfig's rules or JSON's. */
static void print_string(struct t2m_sbuf *out, const char *s, bool json)
{
    if (!json) {
        print_str(out, s);
        return;
    }
    size_t len = strlen(s), cap = 6 * len + 3; /* every byte escaped, and the quotes */
    char *tmp = malloc(cap);
    size_t w = tmp ? t2m_json_escape(tmp, cap, s, len) : 0;
    if (w)
        t2m_sbuf_put(out, tmp, w);
    else
        out->oom = true;
    free(tmp);
}

/* One option's value, as libconfig text or as JSON; a secret that is set as "<redacted>". */
static void print_value(struct t2m_sbuf *out, const void *base, const struct key *k, bool json)
{
    const void *p = (const char *)base + k->off;
    switch (k->type) {
    case T_BOOL:
        t2m_sbuf_str(out, *(const bool *)p ? "true" : "false");
        break;
    case T_INT:
        t2m_sbuf_printf(out, "%d", *(const int *)p);
        break;
    case T_FLOAT:
        print_float(out, *(const double *)p);
        break;
    case T_LEVEL:
        print_string(out, t2m_log_level_name(*(const enum t2m_log_level *)p), json);
        break;
    case T_FORMAT:
        print_string(out, *(const bool *)p ? "json" : "text", json);
        break;
    case T_STR: {
        const char *v = *(char *const *)p;
        print_string(out, k->secret && *v ? "<redacted>" : v, json);
        break;
    }
    }
}

static void print_key(struct t2m_sbuf *out, const void *base, const struct key *k,
                      const char *indent)
{
    t2m_sbuf_printf(out, "%s%s = ", indent, k->name);
    print_value(out, base, k, false);
    t2m_sbuf_str(out, ";\n");
}

static void print_group(struct t2m_sbuf *out, const struct t2m_config *cfg, const char *group)
{
    t2m_sbuf_printf(out, "%s = {\n", group);
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].group, group) != 0) continue;
        /* A secret read from a file shows as that file; printing both would not load again. */
        if (i == K_MQ_PASS && *cfg->mqtt.password_file) continue;
        print_key(out, cfg, &keys[i], "    ");
    }
    t2m_sbuf_str(out, "};\n");
}

char *t2m_config_text(const struct t2m_config *cfg)
{
    if (!cfg) return NULL;
    struct t2m_sbuf sb = {0}, *out = &sb;
    t2m_sbuf_printf(out, "# telematics2mqtt %s: effective configuration (%s%s), secrets redacted\n",
                    T2M_VERSION, cfg->path ? "from " : "environment only",
                    cfg->path ? cfg->path : "");
    print_group(out, cfg, "upstream");
    if (cfg->shard.n)
        t2m_sbuf_printf(
            out,
            "# shard %u of %u: %zu of the %zu configured instances; mqtt.client_id and the "
            "bridge's topics carry \"%u\"\nshard = \"%u/%u\";\n",
            cfg->shard.k, cfg->shard.n, cfg->n_instances, cfg->shard.configured, cfg->shard.k,
            cfg->shard.k, cfg->shard.n);
    t2m_sbuf_str(out, "instances = (\n");
    for (size_t i = 0; i < cfg->n_instances; i++) {
        const struct t2m_instance_cfg *in = &cfg->instances[i];
        t2m_sbuf_str(out, "    {\n");
        for (size_t k = 0; k < N_IKEYS; k++) {
            if (k == IK_TOKEN && *in->access_token_file) continue;
            print_key(out, in, &ikeys[k], "        ");
        }
        t2m_sbuf_str(out, i + 1 < cfg->n_instances ? "    },\n" : "    }\n");
    }
    t2m_sbuf_str(out, ");\n");
    t2m_sbuf_str(out, "devices = (\n");
    for (size_t i = 0; i < cfg->n_devices; i++) {
        t2m_sbuf_str(out, "    { ");
        t2m_sbuf_str(out, "token = ");
        print_str(out, cfg->devices[i].token);
        t2m_sbuf_str(out, "; name = ");
        print_str(out, cfg->devices[i].name);
        t2m_sbuf_str(out, i + 1 < cfg->n_devices ? "; },\n" : "; }\n");
    }
    t2m_sbuf_str(out, ");\n");
    t2m_sbuf_str(out, "zones = (\n");
    for (size_t i = 0; i < cfg->n_zones; i++) {
        t2m_sbuf_str(out, "    {\n");
        for (size_t k = 0; k < N_ZKEYS; k++)
            print_key(out, &cfg->zones[i], &zkeys[k], "        ");
        t2m_sbuf_str(out, i + 1 < cfg->n_zones ? "    },\n" : "    }\n");
    }
    t2m_sbuf_str(out, ");\n");
    for (size_t g = 1; g < sizeof(groups) / sizeof(groups[0]); g++)
        print_group(out, cfg, groups[g]);
    return t2m_sbuf_take(out);
}

/* ---- bridge/info ---- */

char *t2m_config_json(const struct t2m_config *cfg)
{
    struct t2m_sbuf sb = {0}, *out = &sb;
    t2m_sbuf_str(out, "{");
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        t2m_sbuf_printf(out, "%s\"%s\":{", g ? "," : "", groups[g]);
        bool first = true;
        for (size_t i = 0; i < N_KEYS; i++) {
            if (strcmp(keys[i].group, groups[g]) != 0) continue;
            t2m_sbuf_printf(out, "%s\"%s\":", first ? "" : ",", keys[i].name);
            print_value(out, cfg, &keys[i], true);
            first = false;
        }
        t2m_sbuf_str(out, "}");
    }
    t2m_sbuf_str(out, ",\"instances\":[");
    for (size_t i = 0; i < cfg->n_instances; i++) {
        if (i) t2m_sbuf_str(out, ",");
        print_string(out, cfg->instances[i].id, true);
    }
    t2m_sbuf_str(out, "]");
    if (cfg->shard.n) t2m_sbuf_printf(out, ",\"shard\":\"%u/%u\"", cfg->shard.k, cfg->shard.n);
    t2m_sbuf_str(out, ",\"zones\":[");
    for (size_t i = 0; i < cfg->n_zones; i++) {
        if (i) t2m_sbuf_str(out, ",");
        print_string(out, cfg->zones[i].name, true);
    }
    t2m_sbuf_printf(out, "],\"devices\":%zu}", cfg->n_devices);
    return t2m_sbuf_take(out);
}
