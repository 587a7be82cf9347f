/* config.h - the whole configuration (SPEC section 6): libconfig file + env overrides +
 * validation -> struct t2m_config. The one place every option is documented in code. */
#ifndef T2M_CONFIG_H
#define T2M_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"
#include "units.h"

/* mqtt.client's values: the MQTT backends (io/mqtt.c picks them in this order), and the most
 * broker nodes mqtt.url may list (SPEC 9). One definition for the configuration and the
 * backends, which this module cannot link. */
#define T2M_MQTT_CLIENT_NAMES                                                                      \
    {                                                                                              \
        "mosquitto", "paho", "lws", NULL                                                           \
    }
#define T2M_MQTT_MAX_NODES 16

#define T2M_DEFAULT_CONFIG "/etc/telematics2mqtt/telematics2mqtt.conf"

struct t2m_instance_cfg {
    char *id;
    char *access_token;      /* secret: resolved from access_token or access_token_file */
    char *access_token_file; /* "" when unset; kept to re-read on 401 / SIGHUP */
    char *client_id;         /* "" -> omitted */
    char *device_token;      /* "" -> omitted (single-device mode when set) */
    char *refresh_token_file;
};

struct t2m_device_alias {
    char *token;
    char *name;
};

/* A named circle (SPEC section 2.2): a device within `radius` metres of the centre is in it. */
struct t2m_zone {
    char *name;
    double latitude, longitude; /* degrees */
    double radius;              /* metres, > 0 */
};

struct t2m_config {
    char *path; /* file read, or NULL when running from env only */
    struct {
        char *url;
        char *ca_file;
        bool tls_verify;
        int max_message_size; /* bytes */
        int max_devices;
        double connect_timeout, auth_timeout, idle_timeout; /* seconds */
        double backoff_min, backoff_max;                    /* seconds */
        /* the RefreshToken endpoint: $T2M_REFRESH_URL (https://, or http:// to loopback; no
         * file key), NULL for the platform's */
        char *refresh_url;
    } upstream;
    struct t2m_instance_cfg *instances;
    size_t n_instances;
    struct t2m_device_alias *devices;
    size_t n_devices;
    struct t2m_zone *zones;
    size_t n_zones;
    struct {
        char *client; /* one of T2M_MQTT_CLIENT_NAMES ("lws" by default) */
        char *url;    /* tcp://, mqtt://, ssl://, mqtts:// host[:port] */
        char *client_id;
        char *username;
        char *password; /* secret: resolved from password or password_file */
        char *password_file;
        char *ca_file, *cert_file, *key_file;
        bool tls_verify;
        int protocol; /* 4 = MQTT 3.1.1, 5 = MQTT 5 */
        int keepalive;
        int qos; /* 0 or 1 */
        bool retain;
        char *base_topic;
        bool attribute_topics;
        int offline_queue;
        double min_interval;
        bool requests;      /* serve B/bridge/request/# (SPEC section 2.3) */
        char *bridge_topic; /* derived: B/bridge, or B/bridge/K when sharded (SPEC section 9) */
    } mqtt;
    /* SPEC section 9: this process serves the instances whose t2m_shard_of(id, n) is k; it adds
     * "-K" to mqtt.client_id and K to its own topics. n == 0: not sharded. Instances of other
     * shards are dropped from `instances` at load (n_instances may then be 0). */
    struct {
        unsigned k, n;
        size_t configured; /* instances in the configuration, all shards */
    } shard;
    struct {
        char *system, *speed, *distance, *timestamp, *timezone; /* as configured */
        int precision;
        struct t2m_units resolved; /* effective units; resolved.tz owned here */
    } units;
    struct {
        bool enabled;
        char *discovery_prefix;
        char *status_topic;
        char *discovery; /* "device" (one config per device, SPEC v3 4) or "entity" (0.x) */
    } homeassistant;
    struct {
        bool enabled;
    } owntracks;
    struct {
        double trip_timeout; /* seconds without an update that end a trip */
        double expire_after; /* seconds of silence that remove a device; 0 = never */
        /* seconds a fix time may be ahead of the bridge's clock before it is not trusted */
        double max_clock_skew;
    } state;
    struct {
        char *listen; /* "" = off */
        bool ui;      /* the status page: GET /, /api/state, /api/events (SPEC 7) */
        char *ui_password_file;
        char *ui_password; /* secret: from ui_password_file; NULL when none */
    } http;
    struct {
        enum t2m_log_level level;
        bool json;
    } log;
};

/* What the configuration reads, handed in so that core/ does no I/O (io/files.c has the
 * system's; a test may hand its own). */
struct t2m_tz;
struct t2m_config_io {
    /* A whole regular file, NUL-terminated, at most max bytes: 0, 1 absent, -1; err says why. */
    int (*read_file)(const char *path, size_t max, char **text, size_t *len, char *err,
                     size_t errlen);
    /* A secret file's first line (malloc'd), or NULL and err. */
    char *(*read_secret)(const char *path, char *err, size_t errlen);
    const char *(*getenv)(const char *name);
    /* 0 when path is readable (write: a directory one can create files in), else an errno. */
    int (*access)(const char *path, bool write);
    struct t2m_tz *(*load_tz)(const char *name);
};

/* Parses `path` (NULL: the default path if it exists, else env only; a path given explicitly
 * must exist), applies T2M_* environment overrides, reads *_file secrets, validates.
 * On error returns NULL and writes "FILE:LINE: what is wrong" (or "telematics2mqtt: ..." when no
 * line applies) into err. `explicit_path` says whether -c was given.
 * Environment (wins over the file): T2M_UPSTREAM_URL, T2M_INSTANCE_ID (id of the first instance,
 * created when the file has none), T2M_ACCESS_TOKEN / T2M_ACCESS_TOKEN_FILE (first instance;
 * each replaces the other's file value), T2M_MQTT_URL, T2M_MQTT_CLIENT, T2M_MQTT_USERNAME,
 * T2M_MQTT_PASSWORD / T2M_MQTT_PASSWORD_FILE, T2M_BASE_TOPIC, T2M_UNITS (units.system),
 * T2M_LOG_LEVEL, T2M_HTTP_LISTEN ("" turns it off), T2M_SHARD. An empty T2M_INSTANCE_ID,
 * T2M_ACCESS_TOKEN* or T2M_MQTT_PASSWORD* counts as unset; a bad value gives "T2M_XXX: what is
 * wrong". Relative @include paths resolve against the config file's directory. */
struct t2m_config *t2m_config_parse(const struct t2m_config_io *io, const char *path,
                                    bool explicit_path, char *err, size_t errlen);

/* SPEC section 9: "K/N" with 1 <= N <= 1024 and 0 <= K < N. K may also be a name that ends in
 * "-<ordinal>", such as a StatefulSet pod's name ("telematics2mqtt-2/3" is shard 2 of 3), so
 * that Kubernetes can pass "$(POD_NAME)/3". 0 and *k, *n set, or -1. */
int t2m_shard_parse(const char *text, unsigned *k, unsigned *n);
/* The shard (0..n-1) that serves an instance: FNV-1a (32 bit) of its id, modulo n. */
unsigned t2m_shard_of(const char *instance_id, unsigned n);

/* Frees everything, secrets wiped first. NULL is fine. */
void t2m_config_free(struct t2m_config *cfg);

/* The effective configuration in libconfig syntax, secrets as "<redacted>" (malloc'd; NULL when
 * out of memory). */
char *t2m_config_text(const struct t2m_config *cfg);

/* The effective configuration as one JSON object (for B/bridge/info): every group's keys, the
 * instance ids, zone names and the number of aliases; secrets as "<redacted>". Malloc'd. */
char *t2m_config_json(const struct t2m_config *cfg);

/* The alias configured for a device token, or NULL. */
const char *t2m_config_alias(const struct t2m_config *cfg, const char *token, size_t len);

#endif
