/* test_config.c - config.c: defaults, every key, every kind of error with its exact
 * "FILE:LINE: ..." text, environment overrides, secret files, redaction, the example file, the
 * print round trip, t2m_url_parse and t2m_url_check. */
#include "addr.h"
#include "config.h"
#include "files.h"
#include "log_stderr.h"

#include <fcntl.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t2m_test.h"

#ifndef T2M_FIXTURES
#error "T2M_FIXTURES (tests/unit/config) must be defined by CMake"
#endif
#ifndef T2M_EXAMPLE_CONF
#error "T2M_EXAMPLE_CONF (config/telematics2mqtt.conf) must be defined by CMake"
#endif

static char tmpdir[] = "/tmp/t2m_test_config.XXXXXX";
static char errbuf[1024];

static const char *const env_vars[] = {
    "T2M_UPSTREAM_URL",
    "T2M_INSTANCE_ID",
    "T2M_ACCESS_TOKEN",
    "T2M_ACCESS_TOKEN_FILE",
    "T2M_MQTT_URL",
    "T2M_MQTT_CLIENT",
    "T2M_MQTT_USERNAME",
    "T2M_MQTT_PASSWORD",
    "T2M_MQTT_PASSWORD_FILE",
    "T2M_BASE_TOPIC",
    "T2M_UNITS",
    "T2M_LOG_LEVEL",
    "T2M_HTTP_LISTEN",
    "T2M_SHARD",
    "T2M_REFRESH_TOKEN_FILE",
    "T2M_REFRESH_URL",
    NULL,
};

static void clear_env(void)
{
    for (int i = 0; env_vars[i]; i++)
        unsetenv(env_vars[i]);
}

/* Writes tmpdir/name with the given text and mode; returns its path (static, per name slot). */
static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char paths[8][512];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    unlink(p);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CU_ASSERT_FATAL(fd >= 0);
    size_t len = strlen(text);
    CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
    fchmod(fd, mode);
    close(fd);
    return p;
}

static struct t2m_config *load_text(const char *text)
{
    const char *path = write_file("t.conf", text, 0600);
    errbuf[0] = '\0';
    return t2m_config_load(path, true, errbuf, sizeof(errbuf));
}

/* Loads text, expects failure with exactly "<path><suffix>". */
static void expect_err(const char *text, const char *suffix)
{
    struct t2m_config *c = load_text(text);
    CU_ASSERT_PTR_NULL(c);
    t2m_config_free(c);
    char want[1024];
    snprintf(want, sizeof(want), "%s/t.conf%s", tmpdir, suffix);
    if (strcmp(errbuf, want) != 0) fprintf(stderr, "\n  got:  %s\n  want: %s\n", errbuf, want);
    T2M_ASSERT_STR(errbuf, want);
}

/* Loads with T2M_INSTANCE_ID + T2M_ACCESS_TOKEN set, expects failure with exactly `want`. */
static void expect_env_err(const char *var, const char *value, const char *want)
{
    clear_env();
    setenv("T2M_INSTANCE_ID", "i1", 1);
    setenv("T2M_ACCESS_TOKEN", "tok", 1);
    setenv(var, value, 1);
    struct t2m_config *c = load_text("");
    CU_ASSERT_PTR_NULL(c);
    t2m_config_free(c);
    if (strcmp(errbuf, want) != 0) fprintf(stderr, "\n  got:  %s\n  want: %s\n", errbuf, want);
    T2M_ASSERT_STR(errbuf, want);
    clear_env();
}

static char *print_to_string(const struct t2m_config *c)
{
    char *buf = t2m_config_text(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    return buf;
}

/* Where the print's second line starts: the first names the source file. */
static size_t body(const char *printed)
{
    return strcspn(printed, "\n") + 1;
}

/* Runs fn with stderr redirected to a file; returns what was written (caller frees). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/stderr.txt", tmpdir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    char *out = calloc(1, 8192);
    if (f) {
        size_t n = fread(out, 1, 8191, f);
        out[n] = '\0';
        fclose(f);
    }
    return out;
}

/* ---- the pure parse: core/ reads nothing itself ---- */

/* An io that has one file, two variables, one secret and only the UTC zone, and records what
 * was asked of it: the parse sees the world only through it. */
static const char *mem_conf = "instances = ( { id = \"m\"; access_token_file = \"/s/tok\"; } );\n"
                              "mqtt = { ca_file = \"/ca.pem\"; };\n";
static int mem_reads, mem_access;
static int mem_read_file(const char *path, size_t max, char **text, size_t *len, char *err,
                         size_t errlen)
{
    (void)max;
    mem_reads++;
    if (strcmp(path, "/mem/t2m.conf") != 0) {
        snprintf(err, errlen, "%s: cannot open: absent", path);
        return 1;
    }
    *text = strdup(mem_conf);
    *len = strlen(mem_conf);
    return *text ? 0 : -1;
}
static char *mem_secret(const char *path, char *err, size_t errlen)
{
    if (strcmp(path, "/s/tok") == 0) return strdup("memtoken");
    snprintf(err, errlen, "cannot read %s: absent", path);
    return NULL;
}
static const char *mem_getenv(const char *name)
{
    return strcmp(name, "T2M_BASE_TOPIC") == 0 ? "memtopic" : NULL;
}
static int mem_can(const char *path, bool write)
{
    mem_access++;
    return !write && strcmp(path, "/ca.pem") == 0 ? 0 : ENOENT;
}
static struct t2m_tz *mem_tz(const char *name)
{
    return strcmp(name, "UTC") == 0 ? t2m_tz_parse(name, NULL, 0) : NULL;
}

static void test_parse_io(void)
{
    const struct t2m_config_io io = {mem_read_file, mem_secret, mem_getenv, mem_can, mem_tz};
    char err[512];
    struct t2m_config *c = t2m_config_parse(&io, "/mem/t2m.conf", true, err, sizeof(err));
    if (!c) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->instances[0].access_token, "memtoken");
    T2M_ASSERT_STR(c->mqtt.base_topic, "memtopic");
    T2M_ASSERT_STR(c->mqtt.ca_file, "/ca.pem");
    CU_ASSERT_EQUAL(mem_reads, 1);
    CU_ASSERT_EQUAL(mem_access, 1);
    t2m_config_free(c);
    /* what the io says is absent is an error where the file had to exist, and names it */
    CU_ASSERT_PTR_NULL(t2m_config_parse(&io, "/mem/other.conf", true, err, sizeof(err)));
    T2M_ASSERT_STR(err, "/mem/other.conf: cannot open: absent");
    /* a zone the io does not have is refused where it is set */
    mem_conf = "instances = ( { id = \"m\"; access_token_file = \"/s/tok\"; } );\n"
               "units = { timezone = \"Europe/Berlin\"; };\n";
    CU_ASSERT_PTR_NULL(t2m_config_parse(&io, "/mem/t2m.conf", true, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/mem/t2m.conf:2: units.timezone: unknown time zone"));
}

/* ---- defaults and every key ---- */

static void test_defaults(void)
{
    clear_env();
    setenv("T2M_INSTANCE_ID", "inst", 1);
    setenv("T2M_ACCESS_TOKEN", "tok", 1);
    struct t2m_config *c = load_text("# nothing but a comment\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->upstream.url,
                   "wss://portal-apis.telematicssdk.com/realtime/api/v1/ws/realtime");
    T2M_ASSERT_STR(c->upstream.ca_file, "");
    CU_ASSERT_TRUE(c->upstream.tls_verify);
    CU_ASSERT_EQUAL(c->upstream.max_message_size, 65536);
    CU_ASSERT_EQUAL(c->upstream.max_devices, 100000);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.connect_timeout, 10, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.auth_timeout, 10, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.idle_timeout, 90, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.backoff_min, 1, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.backoff_max, 60, 0);
    CU_ASSERT_EQUAL_FATAL(c->n_instances, 1);
    T2M_ASSERT_STR(c->instances[0].id, "inst");
    T2M_ASSERT_STR(c->instances[0].access_token, "tok");
    T2M_ASSERT_STR(c->instances[0].access_token_file, "");
    T2M_ASSERT_STR(c->instances[0].client_id, "");
    T2M_ASSERT_STR(c->instances[0].device_token, "");
    T2M_ASSERT_STR(c->instances[0].refresh_token_file, "");
    CU_ASSERT_EQUAL(c->n_devices, 0);
    T2M_ASSERT_STR(c->mqtt.client, "lws"); /* SPEC v3 6: the fast transport by default */
    T2M_ASSERT_STR(c->mqtt.url, "tcp://localhost:1883");
    T2M_ASSERT_STR(c->mqtt.client_id, "telematics2mqtt");
    T2M_ASSERT_STR(c->mqtt.username, "");
    T2M_ASSERT_STR(c->mqtt.password, "");
    T2M_ASSERT_STR(c->mqtt.password_file, "");
    T2M_ASSERT_STR(c->mqtt.ca_file, "");
    T2M_ASSERT_STR(c->mqtt.cert_file, "");
    T2M_ASSERT_STR(c->mqtt.key_file, "");
    CU_ASSERT_TRUE(c->mqtt.tls_verify);
    CU_ASSERT_EQUAL(c->mqtt.protocol, 4);
    CU_ASSERT_EQUAL(c->mqtt.keepalive, 30);
    CU_ASSERT_EQUAL(c->mqtt.qos, 1);
    CU_ASSERT_TRUE(c->mqtt.retain);
    T2M_ASSERT_STR(c->mqtt.base_topic, "telematics");
    CU_ASSERT_FALSE(c->mqtt.attribute_topics);
    CU_ASSERT_EQUAL(c->mqtt.offline_queue, 10000);
    CU_ASSERT_DOUBLE_EQUAL(c->mqtt.min_interval, 0, 0);
    T2M_ASSERT_STR(c->units.system, "metric");
    T2M_ASSERT_STR(c->units.speed, "");
    T2M_ASSERT_STR(c->units.distance, "");
    T2M_ASSERT_STR(c->units.timestamp, "iso");
    T2M_ASSERT_STR(c->units.timezone, "UTC");
    CU_ASSERT_EQUAL(c->units.precision, 2);
    CU_ASSERT_EQUAL(c->units.resolved.speed, T2M_SPEED_KMH);
    CU_ASSERT_EQUAL(c->units.resolved.distance, T2M_DIST_M);
    CU_ASSERT_EQUAL(c->units.resolved.timestamp, T2M_TS_ISO);
    CU_ASSERT_EQUAL(c->units.resolved.precision, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->units.resolved.tz);
    T2M_ASSERT_STR(t2m_tz_name(c->units.resolved.tz), "UTC");
    CU_ASSERT_TRUE(c->homeassistant.enabled);
    T2M_ASSERT_STR(c->homeassistant.discovery_prefix, "homeassistant");
    T2M_ASSERT_STR(c->homeassistant.status_topic, "homeassistant/status");
    T2M_ASSERT_STR(c->homeassistant.discovery, "device");
    CU_ASSERT_DOUBLE_EQUAL(c->state.max_clock_skew, 600, 0);
    CU_ASSERT_FALSE(c->owntracks.enabled);
    T2M_ASSERT_STR(c->http.listen, "127.0.0.1:9780");
    CU_ASSERT_EQUAL(c->log.level, T2M_LOG_INFO);
    CU_ASSERT_FALSE(c->log.json);
    t2m_config_free(c);
    clear_env();
}

static void test_every_key(void)
{
    clear_env();
    struct t2m_config *c = t2m_config_load(T2M_FIXTURES "/full.conf", true, errbuf, sizeof(errbuf));
    if (!c) fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->path, T2M_FIXTURES "/full.conf");
    T2M_ASSERT_STR(c->upstream.url, "ws://127.0.0.1:8765/realtime");
    T2M_ASSERT_STR(c->upstream.ca_file, "/dev/null");
    CU_ASSERT_FALSE(c->upstream.tls_verify);
    CU_ASSERT_EQUAL(c->upstream.max_message_size, 1048576);
    CU_ASSERT_EQUAL(c->upstream.max_devices, 5000);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.connect_timeout, 3, 0); /* an int for a float key */
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.auth_timeout, 4.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.idle_timeout, 45.25, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.backoff_min, 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.backoff_max, 30, 0);
    CU_ASSERT_EQUAL_FATAL(c->n_instances, 2);
    T2M_ASSERT_STR(c->instances[0].id, "inst-one");
    T2M_ASSERT_STR(c->instances[0].access_token, "eyJhbGciOiJIUzI1NiJ9.full.secret");
    T2M_ASSERT_STR(c->instances[0].client_id, "client-7");
    T2M_ASSERT_STR(c->instances[0].device_token, "dev-tok-1");
    T2M_ASSERT_STR(c->instances[0].refresh_token_file, "full_refresh_token");
    T2M_ASSERT_STR(c->instances[1].id, "inst/two");
    T2M_ASSERT_STR(c->instances[1].access_token, "second-secret-token");
    T2M_ASSERT_STR(c->instances[1].client_id, "");
    CU_ASSERT_EQUAL_FATAL(c->n_devices, 2);
    T2M_ASSERT_STR(t2m_config_alias(c, "e4855fba-aaaa", 13), "Van \"12\" \\ north");
    T2M_ASSERT_STR(t2m_config_alias(c, "0000-first", 10), "Car 1");
    T2M_ASSERT_STR(t2m_config_alias(c, "0000-first-and-more", 10), "Car 1"); /* len counts */
    CU_ASSERT_PTR_NULL(t2m_config_alias(c, "0000-firs", 9));
    CU_ASSERT_PTR_NULL(t2m_config_alias(c, "nope", 4));
    T2M_ASSERT_STR(c->mqtt.client, "paho");
    T2M_ASSERT_STR(c->mqtt.url, "mqtts://[::1]:8884");
    T2M_ASSERT_STR(c->mqtt.client_id, "t2m-test");
    T2M_ASSERT_STR(c->mqtt.username, "bridge");
    T2M_ASSERT_STR(c->mqtt.password, "mqtt-secret-pw");
    T2M_ASSERT_STR(c->mqtt.ca_file, "/dev/null");
    T2M_ASSERT_STR(c->mqtt.cert_file, "/dev/null");
    T2M_ASSERT_STR(c->mqtt.key_file, "/dev/null");
    CU_ASSERT_FALSE(c->mqtt.tls_verify);
    CU_ASSERT_EQUAL(c->mqtt.protocol, 5);
    CU_ASSERT_EQUAL(c->mqtt.keepalive, 60);
    CU_ASSERT_EQUAL(c->mqtt.qos, 0);
    CU_ASSERT_FALSE(c->mqtt.retain);
    T2M_ASSERT_STR(c->mqtt.base_topic, "fleet/telematics");
    CU_ASSERT_TRUE(c->mqtt.attribute_topics);
    CU_ASSERT_EQUAL(c->mqtt.offline_queue, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->mqtt.min_interval, 2.5, 0);
    T2M_ASSERT_STR(c->units.system, "imperial");
    CU_ASSERT_EQUAL(c->units.resolved.speed, T2M_SPEED_KN);  /* units.speed overrides */
    CU_ASSERT_EQUAL(c->units.resolved.distance, T2M_DIST_M); /* units.distance overrides */
    CU_ASSERT_EQUAL(c->units.resolved.timestamp, T2M_TS_UNIX_MS);
    CU_ASSERT_EQUAL(c->units.resolved.precision, 4);
    T2M_ASSERT_STR(t2m_tz_name(c->units.resolved.tz), "America/New_York");
    CU_ASSERT_FALSE(c->homeassistant.enabled);
    T2M_ASSERT_STR(c->homeassistant.discovery_prefix, "ha");
    T2M_ASSERT_STR(c->homeassistant.status_topic, "ha/status");
    T2M_ASSERT_STR(c->homeassistant.discovery, "entity");
    CU_ASSERT_TRUE(c->owntracks.enabled);
    T2M_ASSERT_STR(c->http.listen, "[::1]:9999");
    CU_ASSERT_EQUAL(c->log.level, T2M_LOG_DEBUG);
    CU_ASSERT_TRUE(c->log.json);
    t2m_config_free(c);
}

static void test_units_system_only(void)
{
    clear_env();
    setenv("T2M_INSTANCE_ID", "i", 1);
    setenv("T2M_ACCESS_TOKEN", "t", 1);
    struct t2m_config *c = load_text("units = { system = \"imperial\"; timestamp = \"unix\"; };\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->units.resolved.speed, T2M_SPEED_MPH);
    CU_ASSERT_EQUAL(c->units.resolved.distance, T2M_DIST_FT);
    CU_ASSERT_EQUAL(c->units.resolved.timestamp, T2M_TS_UNIX);
    t2m_config_free(c);
    c = load_text("units = { speed = \"m/s\"; distance = \"ft\"; };\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->units.resolved.speed, T2M_SPEED_MS);
    CU_ASSERT_EQUAL(c->units.resolved.distance, T2M_DIST_FT);
    t2m_config_free(c);
    clear_env();
}

static void test_include(void)
{
    clear_env();
    struct t2m_config *c =
        t2m_config_load(T2M_FIXTURES "/include_main.conf", true, errbuf, sizeof(errbuf));
    if (!c) fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->mqtt.base_topic, "included");
    T2M_ASSERT_STR(c->instances[0].id, "inc");
    t2m_config_free(c);

    /* A wide integer inside an included file names that file. */
    write_file("part.conf", "mqtt = {\n    offline_queue = 4294967296;\n};\n", 0600);
    char want[1024];
    snprintf(want, sizeof(want),
             "%s/part.conf:2: integer 4294967296 does not fit in 32 bits (no option takes one "
             "that large)",
             tmpdir);
    c = load_text("@include \"part.conf\"\n");
    CU_ASSERT_PTR_NULL(c);
    T2M_ASSERT_STR(errbuf, want);
    t2m_config_free(c);
}

/* ---- errors ---- */

static void test_syntax_and_unknown(void)
{
    clear_env();
    expect_err("upstream = {\n    url = ;\n};\n", ":2: syntax error");
    expect_err("mqtt = {\n    qos = 1;\n    qos = 0;\n};\n", ":3: duplicate setting name");
    expect_err("# top\nmqt = { qos = 1; };\n", ":2: unknown key mqt");
    expect_err("mqtt = {\n    qos = 1;\n    hots = \"x\";\n};\n", ":3: unknown key mqtt.hots");
    expect_err("instances = (\n    {\n        id = \"a\";\n        tokn = \"x\";\n    }\n);\n",
               ":4: unknown key instances[0].tokn");
    expect_err("devices = (\n    { token = \"a\"; name = \"b\"; },\n    { token = \"c\";\n"
               "      nmae = \"d\"; }\n);\n",
               ":4: unknown key devices[1].nmae");
    expect_err("log = {\n    colour = true;\n};\n", ":2: unknown key log.colour");
}

static void test_type_mismatch(void)
{
    clear_env();
    expect_err("mqtt = {\n    qos = \"1\";\n};\n",
               ":2: mqtt.qos: expected an integer, got a string");
    expect_err("mqtt = {\n    retain = 1;\n};\n",
               ":2: mqtt.retain: expected a boolean (true or false), got an integer");
    expect_err("upstream = {\n    url = 5;\n};\n",
               ":2: upstream.url: expected a string, got an integer");
    expect_err("upstream = {\n    backoff_min = \"1\";\n};\n",
               ":2: upstream.backoff_min: expected a number, got a string");
    expect_err("units = {\n    precision = 2.0;\n};\n",
               ":2: units.precision: expected an integer, got a float");
    expect_err("log = {\n    level = [\"info\"];\n};\n",
               ":2: log.level: expected a string, got an array");
    expect_err("mqtt = 5;\n", ":1: mqtt: expected a group { ... }, got an integer");
    expect_err("\ninstances = { id = \"a\"; };\n",
               ":2: instances: expected a list ( { ... }, ... ), got a group");
    expect_err("instances = ( \"a\" );\n",
               ":1: instances[0]: expected a group { id = ...; ... }, got a string");
    expect_err("devices = ( 1 );\n",
               ":1: devices[0]: expected a group { token = ...; name = ...; }, got an integer");
}

static void test_ranges(void)
{
    clear_env();
    expect_err("mqtt = {\n    qos = 2;\n};\n", ":2: mqtt.qos: must be 0 or 1, not 2");
    expect_err("mqtt = {\n    protocol = 3;\n};\n", ":2: mqtt.protocol: must be 4 or 5, not 3");
    expect_err("mqtt = {\n    keepalive = 70000;\n};\n",
               ":2: mqtt.keepalive: must be between 0 and 65535, not 70000");
    expect_err("mqtt = {\n    offline_queue = -1;\n};\n",
               ":2: mqtt.offline_queue: must be at least 0, not -1");
    expect_err("mqtt = {\n    min_interval = -0.5;\n};\n",
               ":2: mqtt.min_interval: must be between 0 and 86400, not -0.5");
    expect_err("units = {\n    precision = 10;\n};\n",
               ":2: units.precision: must be between 0 and 9, not 10");
    expect_err("upstream = {\n    max_message_size = 1023;\n};\n",
               ":2: upstream.max_message_size: must be between 1024 and 1073741824, not 1023");
    expect_err("upstream = {\n    backoff_min = 0;\n};\n",
               ":2: upstream.backoff_min: must be greater than 0 and at most 86400, not 0");
    expect_err("upstream = {\n    idle_timeout = 1e400;\n};\n",
               ":2: upstream.idle_timeout: must be greater than 0 and at most 86400, not inf");
    expect_err("upstream = {\n    backoff_min = 5;\n    backoff_max = 2.5;\n};\n",
               ":3: upstream.backoff_max: must be at least upstream.backoff_min (5)");
    expect_err("upstream = {\n    backoff_min = 100;\n};\n",
               ":2: upstream.backoff_min: must not exceed upstream.backoff_max (60)");
    /* libconfig wraps these to small numbers without a word: caught from the source text. */
    expect_err("upstream = {\n    max_devices = 4294967297;\n};\n",
               ":2: integer 4294967297 does not fit in 32 bits (no option takes one that large)");
    expect_err("upstream = {\n    max_devices = -2147483649;\n};\n",
               ":2: integer -2147483649 does not fit in 32 bits (no option takes one that large)");
    expect_err("upstream = {\n    max_devices = 0x80000000;\n};\n",
               ":2: integer 0x80000000 does not fit in 32 bits (no option takes one that large)");
    expect_err("upstream = {\n    max_devices = 4294967297L;\n};\n",
               ":2: upstream.max_devices: must be between 1 and 2147483647, not 4294967297");
    /* Numbers inside strings and comments are not integers. */
    clear_env();
    setenv("T2M_INSTANCE_ID", "i", 1);
    setenv("T2M_ACCESS_TOKEN", "t", 1);
    struct t2m_config *c = load_text("# 99999999999 in a comment\n"
                                     "/* 88888888888 */ mqtt = { client_id = \"77777777777\"; "
                                     "min_interval = 1e10L; };\n");
    CU_ASSERT_PTR_NULL(c); /* 1e10L is not valid libconfig: a syntax error, not a wide int */
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "syntax error"));
    t2m_config_free(c);
    c = load_text("# 99999999999 in a comment\n"
                  "/* 88888888888 */ mqtt = { client_id = \"77777777777\"; min_interval = "
                  "12345678901.5; };\nupstream = { max_devices = 7L; backoff_max = .5; "
                  "backoff_min = 0.25; };\n");
    CU_ASSERT_PTR_NULL(c); /* min_interval above a day */
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "mqtt.min_interval: must be between 0 and 86400"));
    t2m_config_free(c);
    c = load_text("# 99999999999 in a comment\n"
                  "/* 88888888888 */ mqtt = { client_id = \"77777777777\"; min_interval = 1.5e3; "
                  "};\nupstream = { max_devices = 7L; backoff_max = .5; backoff_min = 0.25; };\n");
    if (!c) fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->mqtt.client_id, "77777777777");
    CU_ASSERT_EQUAL(c->upstream.max_devices, 7);
    CU_ASSERT_DOUBLE_EQUAL(c->mqtt.min_interval, 1500, 0);
    CU_ASSERT_DOUBLE_EQUAL(c->upstream.backoff_max, 0.5, 0);
    t2m_config_free(c);
    clear_env();
}

static void test_values(void)
{
    clear_env();
    expect_err("upstream = {\n    url = \"https://example.com/ws\";\n};\n",
               ":2: upstream.url: not a valid ws:// or wss:// URL");
    expect_err("upstream = {\n    url = \"tcp://example.com\";\n};\n",
               ":2: upstream.url: must start with ws:// or wss://");
    expect_err("mqtt = {\n    url = \"wss://example.com\";\n};\n",
               ":2: mqtt.url: must start with tcp://, mqtt://, ssl:// or mqtts://");
    expect_err("mqtt = {\n    url = \"tcp://user:pw@example.com\";\n};\n",
               ":2: mqtt.url: credentials do not belong in the URL (use username / password)");
    expect_err("mqtt = {\n    url = \"tcp://example.com:1883/x\";\n};\n",
               ":2: mqtt.url: an MQTT URL has no path");
    expect_err("mqtt = {\n    url = \"tcp://example.com:0\";\n};\n",
               ":2: mqtt.url: not a valid tcp://, mqtt://, ssl:// or mqtts:// URL");
    expect_err("mqtt = {\n    client = \"hivemq\";\n};\n",
               ":2: mqtt.client: must be \"mosquitto\", \"paho\" or \"lws\"");
    expect_err("mqtt = {\n    client_id = \"\";\n};\n", ":2: mqtt.client_id: must not be empty");
    expect_err("mqtt = {\n    base_topic = \"a/#\";\n};\n",
               ":2: mqtt.base_topic: must not contain the MQTT wildcards + or #");
    expect_err("mqtt = {\n    base_topic = \"a/\";\n};\n",
               ":2: mqtt.base_topic: must not start or end with /");
    expect_err("mqtt = {\n    ca_file = \"/nonexistent/ca.pem\";\n};\n",
               ":2: mqtt.ca_file: cannot read /nonexistent/ca.pem: No such file or directory");
    expect_err("units = {\n    system = \"nautical\";\n};\n",
               ":2: units.system: must be \"metric\" or \"imperial\"");
    expect_err("units = {\n    speed = \"furlong/fortnight\";\n};\n",
               ":2: units.speed: must be \"m/s\", \"km/h\", \"mph\", \"kn\" or \"\"");
    expect_err("units = {\n    distance = \"yd\";\n};\n",
               ":2: units.distance: must be \"m\", \"ft\" or \"\"");
    expect_err("units = {\n    timestamp = \"rfc2822\";\n};\n",
               ":2: units.timestamp: must be \"iso\", \"unix\" or \"unix_ms\"");
    expect_err("homeassistant = {\n    discovery = \"both\";\n};\n",
               ":2: homeassistant.discovery: must be \"device\" (one config per device) or "
               "\"entity\" (one per entity)");
    expect_err("units = {\n    timezone = \"Mars/Olympus_Mons\";\n};\n",
               ":2: units.timezone: unknown time zone \"Mars/Olympus_Mons\" (an IANA name such "
               "as \"Europe/Berlin\")");
    expect_err("units = {\n    timezone = \"../../etc/passwd\";\n};\n",
               ":2: units.timezone: unknown time zone \"../../etc/passwd\" (an IANA name such "
               "as \"Europe/Berlin\")");
    expect_err("http = {\n    listen = \"localhost\";\n};\n",
               ":2: http.listen: must be \"HOST:PORT\", \"[IPv6]:PORT\", \":PORT\" or \"\" (off)");
    expect_err("log = {\n    level = \"verbose\";\n};\n",
               ":2: log.level: must be \"error\", \"warn\", \"info\" or \"debug\"");
    expect_err("log = {\n    format = \"xml\";\n};\n",
               ":2: log.format: must be \"text\" or \"json\"");
    expect_err("mqtt = {\n    password = \"pw\";\n};\n"
               "instances = ( { id = \"a\"; access_token = \"t\"; } );\n",
               ":2: mqtt.password: a password needs mqtt.username too");
    expect_err("mqtt = {\n    key_file = \"/dev/null\";\n};\n"
               "instances = ( { id = \"a\"; access_token = \"t\"; } );\n",
               ":2: mqtt.key_file: needs mqtt.cert_file too");

    /* Accepted forms. */
    setenv("T2M_INSTANCE_ID", "i", 1);
    setenv("T2M_ACCESS_TOKEN", "t", 1);
    const char *ok[] = {
        "http = { listen = \"\"; };",
        "http = { listen = \":9780\"; };",
        "http = { listen = \"0.0.0.0:1\"; };",
        "mqtt = { url = \"mqtt://broker.local\"; };",
        "mqtt = { url = \"SSL://10.0.0.1:8883/\"; };",
        "upstream = { url = \"ws://[::1]:8080\"; };",
        "log = { level = \"warning\"; };",
        "instances = [ ];",
        "devices = [ ];",
        NULL,
    };
    for (int i = 0; ok[i]; i++) {
        struct t2m_config *c = load_text(ok[i]);
        if (!c) fprintf(stderr, "\n  %s: %s\n", ok[i], errbuf);
        CU_ASSERT_PTR_NOT_NULL(c);
        t2m_config_free(c);
    }
    clear_env();
}

static void test_instances_and_devices(void)
{
    clear_env();
    struct t2m_config *c = load_text("");
    CU_ASSERT_PTR_NULL(c);
    /* That one has no line: it reads "telematics2mqtt: ...", not the file name. */
    T2M_ASSERT_STR(errbuf, "telematics2mqtt: no instance configured: add instances = ( { id = "
                           "\"...\"; access_token_file = \"...\"; } ) or set T2M_INSTANCE_ID and "
                           "T2M_ACCESS_TOKEN");
    expect_err("instances = (\n    { access_token = \"t\"; }\n);\n",
               ":2: instances[0]: no id (set id, or T2M_INSTANCE_ID)");
    expect_err("instances = (\n    { id = \"a\"; }\n);\n",
               ":2: instances[0]: no access token (set access_token or access_token_file, or "
               "T2M_ACCESS_TOKEN or T2M_ACCESS_TOKEN_FILE)");
    expect_err("instances = (\n    { id = \"\"; access_token = \"t\"; }\n);\n",
               ":2: instances[0].id: must not be empty");
    char text[1024];
    char longid[258];
    memset(longid, 'x', 257);
    longid[257] = '\0';
    snprintf(text, sizeof(text), "instances = (\n    { id = \"%s\"; access_token = \"t\"; }\n);\n",
             longid);
    expect_err(text, ":2: instances[0].id: longer than 256 bytes");
    longid[256] = '\0'; /* exactly 256 bytes is fine */
    snprintf(text, sizeof(text), "instances = (\n    { id = \"%s\"; access_token = \"t\"; }\n);\n",
             longid);
    c = load_text(text);
    CU_ASSERT_PTR_NOT_NULL(c);
    t2m_config_free(c);
    expect_err("instances = (\n    { id = \"a\"; access_token = \"t\"; },\n"
               "    { id = \"b\"; access_token = \"t\"; },\n"
               "    { access_token = \"t\";\n      id = \"a\"; }\n);\n",
               ":5: instances[2].id: \"a\" is already the id of instances[0]");
    /* SPEC section 2: "bridge" would share B/bridge/... with the bridge's own topics. */
    expect_err("instances = (\n    { id = \"a\"; access_token = \"t\"; },\n"
               "    { access_token = \"t\";\n      id = \"bridge\"; }\n);\n",
               ":4: instances[1].id: \"bridge\" is reserved: B/bridge/... are the bridge's own "
               "topics");
    /* Issue 19, item 1: libmosquitto aborts on an MQTT 5 packet with an unknown property. */
    expect_err("instances = ( { id = \"a\"; access_token = \"t\"; } );\n"
               "mqtt = {\n  client = \"mosquitto\";\n  protocol = 5;\n};\n",
               ":3: mqtt.client: the libmosquitto client cannot speak MQTT 5 safely (libmosquitto "
               "up to 2.0.20 aborts on a packet with an unknown property): use mqtt.client = "
               "\"lws\" or \"paho\" for MQTT 5, or mqtt.protocol = 4");
    c = load_text("instances = ( { id = \"a\"; access_token = \"t\"; } );\n"
                  "mqtt = { client = \"lws\"; protocol = 5; };\n");
    CU_ASSERT_PTR_NOT_NULL(c);
    t2m_config_free(c);
    expect_err("instances = (\n    { id = \"a\"; access_token = \"t\";\n"
               "      access_token_file = \"/x\"; }\n);\n",
               ":3: instances[0].access_token_file: set either access_token or "
               "access_token_file, not both");
    expect_err("devices = (\n    { token = \"a\"; }\n);\n",
               ":2: devices[0]: needs both token and name");
    expect_err("devices = (\n    { token = \"\"; name = \"x\"; }\n);\n",
               ":2: devices[0].token: must not be empty");
    expect_err("devices = (\n    { token = \"b\"; name = \"\"; }\n);\n",
               ":2: devices[0].name: must not be empty");
    expect_err("devices = (\n    { token = \"b\"; name = \"x\"; },\n    { token = \"a\"; name = "
               "\"y\"; },\n    { token = \"b\"; name = \"z\"; }\n);\n",
               ":4: devices: a second alias for the same token");
}

static void test_missing_file(void)
{
    clear_env();
    struct t2m_config *c = t2m_config_load("/nonexistent/t2m.conf", true, errbuf, sizeof(errbuf));
    CU_ASSERT_PTR_NULL(c);
    T2M_ASSERT_STR(errbuf, "/nonexistent/t2m.conf: cannot open: No such file or directory");
    /* A directory is not a config file. */
    c = t2m_config_load(tmpdir, true, errbuf, sizeof(errbuf));
    CU_ASSERT_PTR_NULL(c);
    char want[600];
    snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
    T2M_ASSERT_STR(errbuf, want);
    /* A missing @include names the including line. */
    write_file("inc_missing.conf", "# x\n@include \"nope.conf\"\n", 0600);
    c = load_text("@include \"inc_missing.conf\"\n");
    CU_ASSERT_PTR_NULL(c);
    T2M_ASSERT_STR(errbuf, "inc_missing.conf:2: cannot open include file"); /* as written */
    /* NULL err and a tiny buffer are fine too. */
    CU_ASSERT_PTR_NULL(t2m_config_load("/nonexistent/t2m.conf", true, NULL, 0));
    char tiny[8];
    CU_ASSERT_PTR_NULL(t2m_config_load("/nonexistent/t2m.conf", true, tiny, sizeof(tiny)));
    CU_ASSERT_EQUAL(strlen(tiny), 7);
}

/* ---- environment ---- */

static void test_env_overrides(void)
{
    clear_env();
    const char *tokfile = write_file("env_token", "env-file-token\n", 0600);
    setenv("T2M_UPSTREAM_URL", "ws://127.0.0.1:1/x", 1);
    setenv("T2M_INSTANCE_ID", "env-inst", 1);
    setenv("T2M_ACCESS_TOKEN_FILE", tokfile, 1);
    setenv("T2M_MQTT_URL", "tcp://127.0.0.1:2", 1);
    setenv("T2M_MQTT_CLIENT", "paho", 1);
    setenv("T2M_MQTT_USERNAME", "env-user", 1);
    setenv("T2M_MQTT_PASSWORD", "env-pw", 1);
    setenv("T2M_BASE_TOPIC", "envtopic", 1);
    setenv("T2M_UNITS", "imperial", 1);
    setenv("T2M_LOG_LEVEL", "error", 1);
    setenv("T2M_HTTP_LISTEN", "", 1);
    struct t2m_config *c =
        load_text("upstream = { url = \"wss://file.example/ws\"; };\n"
                  "instances = ( { id = \"file-inst\"; access_token = \"file-token\"; },\n"
                  "              { id = \"second\"; access_token = \"t2\"; } );\n"
                  "mqtt = { url = \"tcp://file.example\"; username = \"file-user\";\n"
                  "         password_file = \"/nonexistent/pw\"; base_topic = \"filetopic\"; };\n"
                  "units = { system = \"metric\"; };\n"
                  "http = { listen = \"127.0.0.1:1234\"; };\n"
                  "log = { level = \"debug\"; };\n");
    if (!c) fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->upstream.url, "ws://127.0.0.1:1/x");
    CU_ASSERT_EQUAL_FATAL(c->n_instances, 2);
    T2M_ASSERT_STR(c->instances[0].id, "env-inst");
    T2M_ASSERT_STR(c->instances[0].access_token, "env-file-token");
    T2M_ASSERT_STR(c->instances[0].access_token_file, tokfile);
    T2M_ASSERT_STR(c->instances[1].id, "second");
    T2M_ASSERT_STR(c->mqtt.url, "tcp://127.0.0.1:2");
    T2M_ASSERT_STR(c->mqtt.client, "paho");
    T2M_ASSERT_STR(c->mqtt.username, "env-user");
    T2M_ASSERT_STR(c->mqtt.password, "env-pw");
    T2M_ASSERT_STR(c->mqtt.password_file, ""); /* the env password replaces the file's */
    T2M_ASSERT_STR(c->mqtt.base_topic, "envtopic");
    T2M_ASSERT_STR(c->units.system, "imperial");
    CU_ASSERT_EQUAL(c->units.resolved.speed, T2M_SPEED_MPH);
    CU_ASSERT_EQUAL(c->log.level, T2M_LOG_ERROR);
    T2M_ASSERT_STR(c->http.listen, "");
    t2m_config_free(c);

    /* T2M_ACCESS_TOKEN replaces a file's access_token_file (the example's placeholder). */
    clear_env();
    setenv("T2M_ACCESS_TOKEN", "env-token", 1);
    setenv("T2M_MQTT_PASSWORD_FILE", tokfile, 1);
    c = load_text("instances = ( { id = \"a\"; access_token_file = \"/nonexistent/tok\"; } );\n"
                  "mqtt = { username = \"u\"; password = \"file-pw\"; };\n");
    if (!c) fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->instances[0].access_token, "env-token");
    T2M_ASSERT_STR(c->instances[0].access_token_file, "");
    T2M_ASSERT_STR(c->mqtt.password, "env-file-token");
    T2M_ASSERT_STR(c->mqtt.password_file, tokfile);
    t2m_config_free(c);

    /* Empty secret variables count as unset. */
    clear_env();
    setenv("T2M_ACCESS_TOKEN", "", 1);
    setenv("T2M_MQTT_PASSWORD", "", 1);
    c = load_text("instances = ( { id = \"a\"; access_token = \"file-token\"; } );\n"
                  "mqtt = { username = \"u\"; password = \"file-pw\"; };\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->instances[0].access_token, "file-token");
    T2M_ASSERT_STR(c->mqtt.password, "file-pw");
    t2m_config_free(c);
    clear_env();
}

static void test_env_only(void)
{
    clear_env();
    setenv("T2M_INSTANCE_ID", "container", 1);
    setenv("T2M_ACCESS_TOKEN", "jwt", 1);
    setenv("T2M_MQTT_URL", "tcp://127.0.0.1:1883", 1);
    /* No -c and no file at the default place: the environment alone configures the bridge. */
    struct t2m_config *c =
        t2m_config_load(T2M_FIXTURES "/absent.conf", false, errbuf, sizeof(errbuf));
    if (!c) fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NULL(c->path);
    CU_ASSERT_EQUAL_FATAL(c->n_instances, 1);
    T2M_ASSERT_STR(c->instances[0].id, "container");
    T2M_ASSERT_STR(c->instances[0].access_token, "jwt");
    T2M_ASSERT_STR(c->mqtt.url, "tcp://127.0.0.1:1883");
    T2M_ASSERT_STR(c->mqtt.base_topic, "telematics");
    char *p = print_to_string(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "environment only"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "idle_timeout = 90.0;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "min_interval = 0.0;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "access_token = \"<redacted>\";"));
    CU_ASSERT_PTR_NULL(strstr(p, "jwt"));
    free(p);
    t2m_config_free(c);
    if (access(T2M_DEFAULT_CONFIG, F_OK) != 0) {
        c = t2m_config_load(NULL, false, errbuf, sizeof(errbuf));
        CU_ASSERT_PTR_NOT_NULL(c);
        t2m_config_free(c);
    }
    /* Only an id: the missing token is reported without a file name. */
    unsetenv("T2M_ACCESS_TOKEN");
    c = t2m_config_load(T2M_FIXTURES "/absent.conf", false, errbuf, sizeof(errbuf));
    CU_ASSERT_PTR_NULL(c);
    T2M_ASSERT_STR(errbuf, "telematics2mqtt: instances[0]: no access token (set access_token or "
                           "access_token_file, or T2M_ACCESS_TOKEN or T2M_ACCESS_TOKEN_FILE)");
    clear_env();
}

static void test_env_errors(void)
{
    expect_env_err("T2M_UPSTREAM_URL", "http://x",
                   "T2M_UPSTREAM_URL: not a valid ws:// or wss:// URL");
    expect_env_err("T2M_UPSTREAM_URL", "", "T2M_UPSTREAM_URL: not a valid ws:// or wss:// URL");
    expect_env_err("T2M_MQTT_URL", "ws://x",
                   "T2M_MQTT_URL: must start with tcp://, mqtt://, ssl:// or mqtts://");
    expect_env_err("T2M_MQTT_CLIENT", "x",
                   "T2M_MQTT_CLIENT: must be \"mosquitto\", \"paho\" or \"lws\"");
    expect_env_err("T2M_UNITS", "nautical", "T2M_UNITS: must be \"metric\" or \"imperial\"");
    expect_env_err("T2M_LOG_LEVEL", "loud",
                   "T2M_LOG_LEVEL: must be \"error\", \"warn\", \"info\" or \"debug\"");
    expect_env_err("T2M_BASE_TOPIC", "a/+/b",
                   "T2M_BASE_TOPIC: must not contain the MQTT wildcards + or #");
    expect_env_err("T2M_HTTP_LISTEN", "nonsense",
                   "T2M_HTTP_LISTEN: must be \"HOST:PORT\", \"[IPv6]:PORT\", \":PORT\" or \"\" "
                   "(off)");
    expect_env_err("T2M_ACCESS_TOKEN_FILE", "/nonexistent/tok",
                   "T2M_ACCESS_TOKEN: set either T2M_ACCESS_TOKEN or T2M_ACCESS_TOKEN_FILE, not "
                   "both");
    char longid[300];
    memset(longid, 'y', 299);
    longid[299] = '\0';
    expect_env_err("T2M_INSTANCE_ID", longid, "T2M_INSTANCE_ID: longer than 256 bytes");
    expect_env_err("T2M_MQTT_PASSWORD", "pw",
                   "T2M_MQTT_PASSWORD: a password needs mqtt.username too");

    clear_env();
    setenv("T2M_INSTANCE_ID", "i1", 1);
    setenv("T2M_ACCESS_TOKEN_FILE", "/nonexistent/tok", 1);
    struct t2m_config *c = load_text("");
    CU_ASSERT_PTR_NULL(c);
    T2M_ASSERT_STR(errbuf, "T2M_ACCESS_TOKEN_FILE: cannot read /nonexistent/tok: No such file or "
                           "directory");
    setenv("T2M_ACCESS_TOKEN_FILE", write_file("tok", "t\n", 0600), 1);
    setenv("T2M_MQTT_USERNAME", "u", 1);
    setenv("T2M_MQTT_PASSWORD_FILE", "/nonexistent/pw", 1);
    c = load_text("");
    CU_ASSERT_PTR_NULL(c);
    T2M_ASSERT_STR(
        errbuf, "T2M_MQTT_PASSWORD_FILE: cannot read /nonexistent/pw: No such file or directory");
    setenv("T2M_MQTT_PASSWORD", "pw", 1);
    c = load_text("");
    CU_ASSERT_PTR_NULL(c);
    T2M_ASSERT_STR(errbuf, "T2M_MQTT_PASSWORD: set either T2M_MQTT_PASSWORD or "
                           "T2M_MQTT_PASSWORD_FILE, not both");
    clear_env();
}

/* ---- secrets ---- */

static void test_secret_files(void)
{
    clear_env();
    char err[512];
    const char *p = write_file("s1", "the-token \t\r\nsecond line ignored\n", 0600);
    char *s = t2m_config_read_secret(p, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    T2M_ASSERT_STR(s, "the-token");
    free(s);
    p = write_file("s2", "no-newline", 0600);
    s = t2m_config_read_secret(p, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    T2M_ASSERT_STR(s, "no-newline");
    free(s);

    p = write_file("s3", " \n", 0600);
    char want[600];
    snprintf(want, sizeof(want), "%s is empty", p);
    CU_ASSERT_PTR_NULL(t2m_config_read_secret(p, err, sizeof(err)));
    T2M_ASSERT_STR(err, want);
    p = write_file("s4", "", 0600);
    snprintf(want, sizeof(want), "%s is empty", p);
    CU_ASSERT_PTR_NULL(t2m_config_read_secret(p, err, sizeof(err)));
    T2M_ASSERT_STR(err, want);
    CU_ASSERT_PTR_NULL(t2m_config_read_secret("/nonexistent/secret", err, sizeof(err)));
    T2M_ASSERT_STR(err, "cannot read /nonexistent/secret: No such file or directory");
    CU_ASSERT_PTR_NULL(t2m_config_read_secret(tmpdir, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s is not a regular file", tmpdir);
    T2M_ASSERT_STR(err, want);

    /* A NUL byte: the token would be cut short without a word. */
    p = write_file("s6", "abc", 0600);
    FILE *nf = fopen(p, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(nf);
    fwrite("tok\0en\n", 1, 7, nf);
    fclose(nf);
    snprintf(want, sizeof(want), "%s holds a NUL byte: not a text secret", p);
    CU_ASSERT_PTR_NULL(t2m_config_read_secret(p, err, sizeof(err)));
    T2M_ASSERT_STR(err, want);

    /* A FIFO with no writer: opening it for reading must not wait for one (issue 10). */
    char fifo[400];
    snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
    unlink(fifo);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    snprintf(want, sizeof(want), "%s is not a regular file", fifo);
    CU_ASSERT_PTR_NULL(t2m_config_read_secret(fifo, err, sizeof(err)));
    T2M_ASSERT_STR(err, want);
    errbuf[0] = '\0';
    CU_ASSERT_PTR_NULL(t2m_config_load(fifo, true, errbuf, sizeof(errbuf)));
    snprintf(want, sizeof(want), "%s: not a regular file", fifo);
    T2M_ASSERT_STR(errbuf, want);

    /* Through the config: FILE:LINE of the key, the path, never the content. */
    p = write_file("s5", "\n\nsecret-on-line-3\n", 0600);
    char text[1024];
    snprintf(text, sizeof(text),
             "instances = (\n    { id = \"a\";\n      access_token_file = \"%s\"; }\n);\n", p);
    snprintf(want, sizeof(want), ":3: instances[0].access_token_file: %s is empty", p);
    expect_err(text, want);
    CU_ASSERT_PTR_NULL(strstr(errbuf, "secret-on-line-3"));
    snprintf(text, sizeof(text),
             "instances = (\n    { id = \"a\";\n      access_token_file = \"%s/missing\"; }\n);\n",
             tmpdir);
    snprintf(want, sizeof(want),
             ":3: instances[0].access_token_file: cannot read %s/missing: No such file or "
             "directory",
             tmpdir);
    expect_err(text, want);
    snprintf(text, sizeof(text),
             "instances = ( { id = \"a\"; access_token = \"t\"; } );\n"
             "mqtt = {\n    username = \"u\";\n    password_file = \"%s/missing\";\n};\n",
             tmpdir);
    snprintf(want, sizeof(want),
             ":4: mqtt.password_file: cannot read %s/missing: No such file or directory", tmpdir);
    expect_err(text, want);

    /* Both secrets from files. */
    const char *tok = write_file("tokfile", "file-jwt\n", 0600);
    const char *pw = write_file("pwfile", "file-pw\n", 0600);
    snprintf(text, sizeof(text),
             "instances = ( { id = \"a\"; access_token_file = \"%s\"; } );\n"
             "mqtt = { username = \"u\"; password_file = \"%s\"; };\n",
             tok, pw);
    struct t2m_config *c = load_text(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->instances[0].access_token, "file-jwt");
    T2M_ASSERT_STR(c->mqtt.password, "file-pw");
    t2m_config_free(c);
}

static void read_secret_cb(void *arg)
{
    char err[256];
    char *s = t2m_config_read_secret(arg, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(s);
    free(s);
}

/* Issue 10: what passed --check-config and then failed at the broker, or hung the start. */
static void test_hostile_values(void)
{
    clear_env();
    const char *inst = "instances = ( { id = \"a\"; access_token = \"t\"; } );\n";
    char text[1024];
    snprintf(text, sizeof(text), "%smqtt = {\n base_topic = \"tele\\nmatics\"; };\n", inst);
    expect_err(text, ":3: mqtt.base_topic: must be UTF-8 without control characters (newline, "
                     "tab, ...)");
    snprintf(text, sizeof(text), "%shomeassistant = { discovery_prefix = \"ha\\x01\"; };\n", inst);
    expect_err(text, ":2: homeassistant.discovery_prefix: must be UTF-8 without control "
                     "characters (newline, tab, ...)");
    snprintf(text, sizeof(text), "%smqtt = { base_topic = \"t\\xff\"; };\n", inst);
    expect_err(text, ":2: mqtt.base_topic: must be UTF-8 without control characters (newline, "
                     "tab, ...)");
    snprintf(text, sizeof(text), "%smqtt = { client_id = \"a\\tb\"; };\n", inst);
    expect_err(text, ":2: mqtt.client_id: must be UTF-8 without control characters");
    /* UTF-8 itself is fine. */
    snprintf(text, sizeof(text), "%smqtt = { base_topic = \"t\xc3\xa9l\xc3\xa9\"; };\n", inst);
    struct t2m_config *c = load_text(text);
    CU_ASSERT_PTR_NOT_NULL(c);
    t2m_config_free(c);

    /* SPEC 2: a base topic or discovery prefix that leaves no room for a device's topics */
    static char big[4096];
    memset(big, 'b', 3000);
    snprintf(big + 3000, sizeof(big) - 3000, "\"; };\n");
    snprintf(text, sizeof(text), "%smqtt = {\n base_topic = \"", inst);
    char *longtext = malloc(strlen(text) + sizeof(big));
    CU_ASSERT_PTR_NOT_NULL_FATAL(longtext);
    strcpy(longtext, text);
    strcat(longtext, big);
    expect_err(longtext, ":3: mqtt.base_topic: too long (3000 bytes): with the instance ids its "
                         "topics would pass 1024 bytes");
    strcpy(longtext, inst);
    strcat(longtext, "homeassistant = { discovery_prefix = \"");
    strcat(longtext, big);
    expect_err(longtext, ":2: homeassistant.discovery_prefix: too long (3000 bytes): with the "
                         "instance ids its topics would pass 1024 bytes");
    free(longtext);

    /* A NUL escape in a secret would cut the token short. */
    expect_err("instances = ( { id = \"a\";\n access_token = \"ab\\x00cd\"; } );\n",
               ":2: a string holds a NUL byte (\\x00)");
    setenv("T2M_BASE_TOPIC", "a\nb", 1);
    setenv("T2M_INSTANCE_ID", "i", 1);
    setenv("T2M_ACCESS_TOKEN", "t", 1);
    errbuf[0] = '\0';
    c = t2m_config_load(NULL, false, errbuf, sizeof(errbuf));
    CU_ASSERT_PTR_NULL(c);
    t2m_config_free(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "T2M_BASE_TOPIC"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "control characters"));
    clear_env();
}

/* libconfig's scanner is quadratic in a line's length: comments are stripped before it sees the
 * text, whatever their size, and an over-long line is an error with its number. */
static void test_long_lines(void)
{
    clear_env();
    size_t big = 4u << 20;
    char *text = malloc(big + 256);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    int o = sprintf(text, "instances = ( { id = \"a\"; access_token = \"t\"; } );\n# ");
    memset(text + o, 'x', big);
    strcpy(text + o + big, "\n/* y\n*/ mqtt = { qos = 0; };\n");
    struct t2m_config *c = load_text(text);
    CU_ASSERT_PTR_NOT_NULL(c);
    if (c) CU_ASSERT_EQUAL(c->mqtt.qos, 0);
    t2m_config_free(c);
    o = sprintf(text, "instances = ( { id = \"a\"; access_token = \"t\"; } );\nmqtt = { x = \"");
    memset(text + o, 'x', 70000);
    strcpy(text + o + 70000, "\"; };\n");
    expect_err(text, ":2: line longer than 65536 bytes (comments aside)");
    free(text);
}

static void test_secret_mode_warning(void)
{
    const char *p = write_file("open_secret", "visible-token\n", 0644);
    char *out = capture_stderr(read_secret_cb, (void *)p);
    char want[600];
    snprintf(want, sizeof(want), "%s is readable by group or others: chmod 600 it", p);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    CU_ASSERT_PTR_NULL(strstr(out, "visible-token"));
    /* Once per read. */
    const char *first = strstr(out, want);
    CU_ASSERT_PTR_NULL(first ? strstr(first + 1, want) : NULL);
    free(out);

    p = write_file("closed_secret", "hidden-token\n", 0600);
    out = capture_stderr(read_secret_cb, (void *)p);
    CU_ASSERT_PTR_NULL(strstr(out, "readable by group"));
    free(out);
}

/* ---- printing ---- */

static void test_print_redacts(void)
{
    clear_env();
    struct t2m_config *c = t2m_config_load(T2M_FIXTURES "/full.conf", true, errbuf, sizeof(errbuf));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char *p = print_to_string(c);
    CU_ASSERT_PTR_NULL(strstr(p, "full.secret"));
    CU_ASSERT_PTR_NULL(strstr(p, "second-secret-token"));
    CU_ASSERT_PTR_NULL(strstr(p, "mqtt-secret-pw"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "access_token = \"<redacted>\";"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "password = \"<redacted>\";"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "name = \"Van \\\"12\\\" \\\\ north\";"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "auth_timeout = 4.5;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "connect_timeout = 3.0;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "level = \"debug\";"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, "format = \"json\";"));
    free(p);
    t2m_config_free(c);

    /* Secrets from files: the paths are shown, the values are not. */
    const char *tok = write_file("ptok", "file-jwt-value\n", 0600);
    const char *pw = write_file("ppw", "file-pw-value\n", 0600);
    char text[1024];
    snprintf(text, sizeof(text),
             "instances = ( { id = \"a\"; access_token_file = \"%s\"; } );\n"
             "mqtt = { username = \"u\"; password_file = \"%s\"; };\n",
             tok, pw);
    c = load_text(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    p = print_to_string(c);
    CU_ASSERT_PTR_NULL(strstr(p, "file-jwt-value"));
    CU_ASSERT_PTR_NULL(strstr(p, "file-pw-value"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, tok));
    CU_ASSERT_PTR_NOT_NULL(strstr(p, pw));
    free(p);
    t2m_config_free(c);
}

/* Loads `path`, prints, loads the print, prints again: both prints must match. */
static void round_trip(const char *path)
{
    struct t2m_config *a = t2m_config_load(path, true, errbuf, sizeof(errbuf));
    if (!a) fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    char *p1 = print_to_string(a);
    const char *printed = write_file("printed.conf", p1, 0600);
    struct t2m_config *b = t2m_config_load(printed, true, errbuf, sizeof(errbuf));
    if (!b) fprintf(stderr, "\n  %s\n%s\n", errbuf, p1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    char *p2 = print_to_string(b);
    T2M_ASSERT_STR(p2 + body(p2), p1 + body(p1));
    CU_ASSERT_EQUAL(a->n_instances, b->n_instances);
    CU_ASSERT_EQUAL(a->n_devices, b->n_devices);
    free(p1);
    free(p2);
    t2m_config_free(a);
    t2m_config_free(b);
}

static void test_print_round_trip(void)
{
    clear_env();
    round_trip(T2M_FIXTURES "/full.conf");
    const char *tok = write_file("rtok", "jwt\n", 0600);
    char text[1024];
    snprintf(text, sizeof(text),
             "instances = ( { id = \"a\\tb\"; access_token_file = \"%s\"; } );\n"
             "mqtt = { min_interval = 0.1; };\nupstream = { backoff_max = 1e3; };\n",
             tok);
    round_trip(write_file("rt.conf", text, 0600));
}

static void test_example_loads(void)
{
    clear_env();
    setenv("T2M_ACCESS_TOKEN", "example-token", 1);
    struct t2m_config *ex = t2m_config_load(T2M_EXAMPLE_CONF, true, errbuf, sizeof(errbuf));
    if (!ex) fprintf(stderr, "\n  %s\n", errbuf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    CU_ASSERT_EQUAL(ex->n_instances, 1);
    T2M_ASSERT_STR(ex->instances[0].access_token, "example-token");

    /* The example documents the defaults: it prints exactly as no file at all does. */
    setenv("T2M_INSTANCE_ID", ex->instances[0].id, 1);
    struct t2m_config *def = load_text("");
    CU_ASSERT_PTR_NOT_NULL_FATAL(def);
    char *p1 = print_to_string(ex), *p2 = print_to_string(def);
    T2M_ASSERT_STR(p1 + body(p1), p2 + body(p2));
    free(p1);
    free(p2);
    t2m_config_free(ex);
    t2m_config_free(def);
    clear_env();
}

/* ---- URLs ---- */

struct url_case {
    const char *url;
    const char *scheme, *host;
    int port;
    const char *path;
};

static void test_parse_url(void)
{
    static const struct url_case ok[] = {
        {"wss://portal-apis.telematicssdk.com/realtime/api/v1/ws/realtime", "wss",
         "portal-apis.telematicssdk.com", 443, "/realtime/api/v1/ws/realtime"},
        {"ws://127.0.0.1:8765", "ws", "127.0.0.1", 8765, "/"},
        {"ws://localhost/", "ws", "localhost", 80, "/"},
        {"WS://Host.Example:81/a?b=c", "ws", "Host.Example", 81, "/a?b=c"},
        {"ws://h?x=1", "ws", "h", 80, "/?x=1"},
        {"tcp://localhost:1883", "tcp", "localhost", 1883, "/"},
        {"mqtt://broker", "mqtt", "broker", 1883, "/"},
        {"ssl://broker", "ssl", "broker", 8883, "/"},
        {"mqtts://broker:8884", "mqtts", "broker", 8884, "/"},
        {"tcp://[::1]:1884", "tcp", "::1", 1884, "/"},
        {"wss://[2001:db8::1]/p", "wss", "2001:db8::1", 443, "/p"},
        {"ws://h:65535", "ws", "h", 65535, "/"},
        {"https://user.example/v1/Auth", "https", "user.example", 443, "/v1/Auth"},
        {"http://127.0.0.1:8080/r", "http", "127.0.0.1", 8080, "/r"},
        {NULL, NULL, NULL, 0, NULL},
    };
    char scheme[16], host[64], path[128];
    int port;
    for (const struct url_case *c = ok; c->url; c++) {
        int rc = t2m_url_parse(c->url, scheme, sizeof(scheme), host, sizeof(host), &port, path,
                               sizeof(path));
        if (rc != 0) fprintf(stderr, "\n  rejected %s\n", c->url);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        T2M_ASSERT_STR(scheme, c->scheme);
        T2M_ASSERT_STR(host, c->host);
        CU_ASSERT_EQUAL(port, c->port);
        T2M_ASSERT_STR(path, c->path);
    }
    static const char *const bad[] = {
        "",           "localhost:1883", "://h",          "gopher://h",     "ws://",
        "ws://:80",   "ws://h:0",       "ws://h:65536",  "ws://h:12a",     "ws://h:",
        "ws://[::1",  "ws://[::1]x",    "ws://[]:80",    "ws://u:p@h",     "ws://h h",
        "ws://h/a b", "tcp://h:1:2",    "ws://h:123456", "ws://ex%41mple", "ftp://h",
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        int rc = t2m_url_parse(bad[i], scheme, sizeof(scheme), host, sizeof(host), &port, path,
                               sizeof(path));
        if (rc != -1) fprintf(stderr, "\n  accepted %s\n", bad[i]);
        CU_ASSERT_EQUAL(rc, -1);
    }
    /* Buffers too small. */
    CU_ASSERT_EQUAL(
        t2m_url_parse("wss://h/p", scheme, 3, host, sizeof(host), &port, path, sizeof(path)), -1);
    CU_ASSERT_EQUAL(t2m_url_parse("ws://longhost/p", scheme, sizeof(scheme), host, 8, &port, path,
                                  sizeof(path)),
                    -1);
    CU_ASSERT_EQUAL(t2m_url_parse("ws://h/longpath", scheme, sizeof(scheme), host, sizeof(host),
                                  &port, path, 8),
                    -1);
    CU_ASSERT_EQUAL(
        t2m_url_parse("ws://h/1234567", scheme, sizeof(scheme), host, sizeof(host), &port, path, 9),
        0);
    CU_ASSERT_TRUE(t2m_url_tls("wss"));
    CU_ASSERT_TRUE(t2m_url_tls("ssl"));
    CU_ASSERT_TRUE(t2m_url_tls("mqtts"));
    CU_ASSERT_FALSE(t2m_url_tls("ws"));
    CU_ASSERT_FALSE(t2m_url_tls("tcp"));
    CU_ASSERT_FALSE(t2m_url_tls("mqtt"));

    /* t2m_url_check: the one check of the configuration's and the MQTT backends' URLs */
    char msg[200];
    bool tls = false;
    CU_ASSERT_EQUAL(t2m_url_check("mqtts://[::1]:8884", false, host, sizeof(host), &port, &tls, msg,
                                  sizeof(msg)),
                    0);
    T2M_ASSERT_STR(host, "::1");
    CU_ASSERT_EQUAL(port, 8884);
    CU_ASSERT_TRUE(tls);
    CU_ASSERT_EQUAL(t2m_url_check("tcp://u:pw@h", false, NULL, 0, NULL, NULL, msg, sizeof(msg)),
                    -1);
    T2M_ASSERT_STR(msg, "credentials do not belong in the URL (use username / password)");
    CU_ASSERT_EQUAL(t2m_url_check("ws://h", false, NULL, 0, NULL, NULL, msg, sizeof(msg)), -1);
    T2M_ASSERT_STR(msg, "must start with tcp://, mqtt://, ssl:// or mqtts://");
    CU_ASSERT_EQUAL(t2m_url_check("tcp://h/x", false, NULL, 0, NULL, NULL, msg, sizeof(msg)), -1);
    T2M_ASSERT_STR(msg, "an MQTT URL has no path");
    CU_ASSERT_EQUAL(t2m_url_check("https://h", true, NULL, 0, NULL, NULL, msg, sizeof(msg)), -1);
    T2M_ASSERT_STR(msg, "not a valid ws:// or wss:// URL");
    CU_ASSERT_EQUAL(t2m_url_check("wss://h/p?q", true, NULL, 0, NULL, &tls, msg, sizeof(msg)), 0);
    CU_ASSERT_TRUE(tls);

    /* t2m_list_next: mqtt.url's node list */
    char item[8];
    const char *p = "a,bb,,c";
    static const char *const items[] = {"a", "bb", "", "c"};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL_FATAL(t2m_list_next(&p, item, sizeof(item)), 1);
        T2M_ASSERT_STR(item, items[i]);
    }
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(t2m_list_next(&p, item, sizeof(item)), 0);
    p = "";
    CU_ASSERT_EQUAL(t2m_list_next(&p, item, sizeof(item)), 1); /* one empty item */
    T2M_ASSERT_STR(item, "");
    CU_ASSERT_EQUAL(t2m_list_next(&p, item, sizeof(item)), 0);
    p = "x,12345678,y"; /* too long: -1, and the iterator stays on it */
    CU_ASSERT_EQUAL(t2m_list_next(&p, item, sizeof(item)), 1);
    const char *at = p;
    CU_ASSERT_EQUAL(t2m_list_next(&p, item, sizeof(item)), -1);
    CU_ASSERT_PTR_EQUAL(p, at);
    p = "1234567,";
    CU_ASSERT_EQUAL(t2m_list_next(&p, item, sizeof(item)), 1); /* exactly fits */
    T2M_ASSERT_STR(item, "1234567");
    CU_ASSERT_EQUAL(t2m_list_next(&p, item, sizeof(item)), 1); /* the empty last item */
    T2M_ASSERT_STR(item, "");
}

static void rm_tmpdir(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void test_shard(void)
{
    unsigned k = 99, n = 99;
    CU_ASSERT_EQUAL(t2m_shard_parse("0/1", &k, &n), 0);
    CU_ASSERT(k == 0 && n == 1);
    CU_ASSERT_EQUAL(t2m_shard_parse("2/3", &k, &n), 0);
    CU_ASSERT(k == 2 && n == 3);
    /* a StatefulSet pod's name: the ordinal after the last dash */
    CU_ASSERT_EQUAL(t2m_shard_parse("telematics2mqtt-1/3", &k, &n), 0);
    CU_ASSERT(k == 1 && n == 3);
    CU_ASSERT_EQUAL(t2m_shard_parse("my-bridge-10/12", &k, &n), 0);
    CU_ASSERT(k == 10 && n == 12);
    CU_ASSERT_EQUAL(t2m_shard_parse("1023/1024", &k, &n), 0);
    static const char *const bad[] = {"",       "3",    "/3",    "3/3",    "4/3",     "0/0",
                                      "0/1025", "a/3",  "pod/3", "pod-/3", "-1/3",    "1/-3",
                                      "1/3/",   "1/3x", " 1/3",  "1/ 3",   "99999/3", NULL};
    for (int i = 0; bad[i]; i++) {
        if (t2m_shard_parse(bad[i], &k, &n) == 0) fprintf(stderr, "\n  accepted: \"%s\"\n", bad[i]);
        CU_ASSERT_EQUAL(t2m_shard_parse(bad[i], &k, &n), -1);
    }
    /* FNV-1a 32 of the id, modulo N: "a" = 0xe40c292c */
    CU_ASSERT_EQUAL(t2m_shard_of("a", 1000), 0xe40c292cu % 1000);
    CU_ASSERT_EQUAL(t2m_shard_of("anything", 1), 0);

    /* nine instances over three shards: each served by exactly one */
    const char *conf =
        "instances = ( { id = \"i0\"; access_token = \"t\"; },"
        " { id = \"i1\"; access_token = \"t\"; }, { id = \"i2\"; access_token = \"t\"; },"
        " { id = \"i3\"; access_token = \"t\"; }, { id = \"i4\"; access_token = \"t\"; },"
        " { id = \"i5\"; access_token = \"t\"; }, { id = \"i6\"; access_token = \"t\"; },"
        " { id = \"i7\"; access_token = \"t\"; }, { id = \"i8\"; access_token = \"t\"; } );\n"
        "mqtt = { client_id = \"t2m\"; base_topic = \"fleet\"; };\n";
    int served[9] = {0};
    for (unsigned sh = 0; sh < 3; sh++) {
        char text[2048], want[32];
        snprintf(text, sizeof(text), "%sshard = \"%u/3\";\n", conf, sh);
        clear_env();
        struct t2m_config *c = load_text(text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT(c->shard.k == sh && c->shard.n == 3 && c->shard.configured == 9);
        snprintf(want, sizeof(want), "t2m-%u", sh);
        T2M_ASSERT_STR(c->mqtt.client_id, want);
        snprintf(want, sizeof(want), "fleet/bridge/%u", sh);
        T2M_ASSERT_STR(c->mqtt.bridge_topic, want);
        for (size_t i = 0; i < c->n_instances; i++) {
            CU_ASSERT_EQUAL(t2m_shard_of(c->instances[i].id, 3), sh);
            served[c->instances[i].id[1] - '0']++;
        }
        char *printed = print_to_string(c);
        snprintf(want, sizeof(want), "shard = \"%u/3\";", sh);
        CU_ASSERT_PTR_NOT_NULL(strstr(printed, want));
        free(printed);
        t2m_config_free(c);
    }
    for (int i = 0; i < 9; i++)
        CU_ASSERT_EQUAL(served[i], 1);

    /* T2M_SHARD wins over the file; a pod name works there too */
    clear_env();
    setenv("T2M_SHARD", "telematics2mqtt-1/3", 1);
    struct t2m_config *c = load_text(conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(c->shard.k == 1 && c->shard.n == 3);
    t2m_config_free(c);
    clear_env();
    /* not sharded: the plain topic and client id */
    c = load_text(conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->shard.n, 0);
    T2M_ASSERT_STR(c->mqtt.client_id, "t2m");
    T2M_ASSERT_STR(c->mqtt.bridge_topic, "fleet/bridge");
    t2m_config_free(c);

    expect_err("instances = ( { id = \"i\"; access_token = \"t\"; } );\nshard = \"3/3\";\n",
               ":2: shard: \"3/3\" is not \"K/N\" (1 <= N <= 1024, 0 <= K < N; K may be a "
               "StatefulSet pod name ending in -K)");
    expect_err("instances = ( { id = \"i\"; access_token = \"t\"; } );\nshard = 1;\n",
               ":2: shard: must be a string such as \"0/3\"");
    expect_env_err("T2M_SHARD", "x/2",
                   "T2M_SHARD: \"x/2\" is not \"K/N\" (1 <= N <= 1024, 0 <= K < N; K may be "
                   "a StatefulSet pod name ending in -K)");
}

static void test_mqtt_url_list(void)
{
    clear_env();
    const char *inst = "instances = ( { id = \"i\"; access_token = \"t\"; } );\n";
    char text[1024];
    snprintf(text, sizeof(text),
             "%smqtt = { url = [ \"tcp://n1:1883\", \"mqtt://n2\", \"tcp://n3:1884\" ]; };\n",
             inst);
    struct t2m_config *c = load_text(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->mqtt.url, "tcp://n1:1883,mqtt://n2,tcp://n3:1884");
    /* printed as the comma form, which loads back the same */
    char *printed = print_to_string(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(printed, "url = \"tcp://n1:1883,mqtt://n2,tcp://n3:1884\";"));
    free(printed);
    t2m_config_free(c);
    setenv("T2M_MQTT_URL", "ssl://a:8883,mqtts://b", 1);
    c = load_text(inst);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->mqtt.url, "ssl://a:8883,mqtts://b");
    t2m_config_free(c);
    clear_env();
    snprintf(text, sizeof(text), "%smqtt = { url = [ \"tcp://a\", \"ssl://b\" ]; };\n", inst);
    expect_err(text, ":2: mqtt.url: the nodes of one broker must all use TLS or none");
    snprintf(text, sizeof(text), "%smqtt = { url = [ ]; };\n", inst);
    expect_err(text, ":2: mqtt.url: an empty list of broker nodes");
    snprintf(text, sizeof(text), "%smqtt = { url = [ \"tcp://a\", 5 ]; };\n", inst);
    CU_ASSERT_PTR_NULL(load_text(text));
    snprintf(text, sizeof(text), "%smqtt = { url = \"tcp://a,,tcp://b\"; };\n", inst);
    CU_ASSERT_PTR_NULL(load_text(text));
    snprintf(text, sizeof(text), "%smqtt = { url = [ \"tcp://a,tcp://b\" ]; };\n", inst);
    expect_err(text, ":2: mqtt.url: a node URL cannot contain a comma");
}

/* SPEC 6, 7: token refresh from the environment alone; the endpoint override only where the tokens
 * cannot travel in clear text; the refresh token's directory must be writable. */
static void test_refresh_env(void)
{
    clear_env();
    const char *ref = write_file("refresh_token", "ref-0\n", 0600);
    setenv("T2M_INSTANCE_ID", "i", 1);
    setenv("T2M_ACCESS_TOKEN", "t", 1);
    setenv("T2M_REFRESH_TOKEN_FILE", ref, 1);
    struct t2m_config *c = load_text("");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    T2M_ASSERT_STR(c->instances[0].refresh_token_file, ref);
    CU_ASSERT_PTR_NULL(c->upstream.refresh_url); /* the platform's */
    t2m_config_free(c);

    static const char *const ok[] = {"https://auth.example/v1/Auth/RefreshToken",
                                     "http://127.0.0.1:8080/r",
                                     "http://[::1]:9/r",
                                     "http://localhost/r",
                                     "HTTPS://h",
                                     NULL};
    for (int i = 0; ok[i]; i++) {
        setenv("T2M_REFRESH_URL", ok[i], 1);
        c = load_text("");
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        T2M_ASSERT_STR(c->upstream.refresh_url, ok[i]);
        t2m_config_free(c);
    }
    clear_env();
    expect_env_err("T2M_REFRESH_URL", "http://auth.example/r",
                   "T2M_REFRESH_URL: http:// only to a loopback address: the tokens never travel "
                   "in clear text (use https://)");
    expect_env_err("T2M_REFRESH_URL", "http://10.0.0.1/r",
                   "T2M_REFRESH_URL: http:// only to a loopback address: the tokens never travel "
                   "in clear text (use https://)");
    expect_env_err("T2M_REFRESH_URL", "http://127.0.0.1.example/r",
                   "T2M_REFRESH_URL: http:// only to a loopback address: the tokens never travel "
                   "in clear text (use https://)");
    expect_env_err("T2M_REFRESH_URL", "ws://127.0.0.1/r",
                   "T2M_REFRESH_URL: not a valid https:// URL");
    expect_env_err("T2M_REFRESH_URL", "https://u:p@h/r",
                   "T2M_REFRESH_URL: not a valid https:// URL");
    char want[1024];
    snprintf(want, sizeof(want),
             "T2M_REFRESH_TOKEN_FILE: cannot read %s/absent: No such file or directory", tmpdir);
    char absent[600];
    snprintf(absent, sizeof(absent), "%s/absent", tmpdir);
    expect_env_err("T2M_REFRESH_TOKEN_FILE", absent, want);

    /* a directory the bridge cannot write to: as an unprivileged user (root may write anywhere) */
    char dir[600], file[700];
    snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
    snprintf(file, sizeof(file), "%s/refresh_token", dir);
    FILE *f = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("ref-0\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(chmod(file, 0604), 0); /* readable by the unprivileged user */
    CU_ASSERT_EQUAL(chmod(tmpdir, 0755), 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
        } else if (chmod(dir, 0555) != 0) {
            _exit(3);
        }
        clear_env();
        setenv("T2M_INSTANCE_ID", "i", 1);
        setenv("T2M_ACCESS_TOKEN", "t", 1);
        setenv("T2M_REFRESH_TOKEN_FILE", file, 1);
        char err[1024];
        struct t2m_config *cc = t2m_config_load(NULL, false, err, sizeof(err));
        char expect[1024];
        snprintf(expect, sizeof(expect),
                 "T2M_REFRESH_TOKEN_FILE: the directory %s is not writable (Permission denied): "
                 "the rotated refresh token is written back there (systemd: StateDirectory=; a "
                 "container: a volume)",
                 dir);
        if (cc) _exit(1);
        if (strcmp(err, expect) != 0) {
            fprintf(stderr, "\n  got:  %s\n  want: %s\n", err, expect);
            _exit(2);
        }
        _exit(0);
    }
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0) fprintf(stderr, "\n  child exit %d\n", WEXITSTATUS(st));
    CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
    chmod(dir, 0755);
    chmod(tmpdir, 0700);
    unlink(file);
    rmdir(dir);
}

/* B/bridge/info's config (SPEC 2.3): every value typed as in the file, secrets left out. */
static void test_config_json(void)
{
    clear_env();
    struct t2m_config *c = load_text(
        "instances = ( { id = \"i\"; access_token = \"tok-secret\"; } );\n"
        "log = { format = \"json\"; level = \"warn\"; };\n"
        "mqtt = { username = \"u\"; password = \"pw-secret\"; qos = 0; min_interval = 1.5; };\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char *j = t2m_config_json(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"format\":\"json\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"level\":\"warn\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"qos\":0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"min_interval\":1.5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"retain\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"password\":\"<redacted>\""));
    CU_ASSERT_PTR_NULL(strstr(j, "secret"));
    free(j);
    t2m_config_free(c);
    c = load_text("instances = ( { id = \"i\"; access_token = \"t\"; } );\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    j = t2m_config_json(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"format\":\"text\""));
    free(j);
    t2m_config_free(c);
}

static void test_loopback(void)
{
    static const char *const yes[] = {"127.0.0.1", "127.1.2.3", "::1",
                                      "localhost", "LocalHost", NULL};
    static const char *const no[] = {
        "128.0.0.1", "127.0.0.1.example", "127.0.0.256", "0.0.0.0", "::", "10.0.0.1", "127.0.0",
        "",          "localhost.example", NULL};
    for (int i = 0; yes[i]; i++)
        CU_ASSERT_TRUE(t2m_addr_loopback(yes[i]));
    for (int i = 0; no[i]; i++) {
        if (t2m_addr_loopback(no[i])) fprintf(stderr, "\n  loopback? %s\n", no[i]);
        CU_ASSERT_FALSE(t2m_addr_loopback(no[i]));
    }
    CU_ASSERT_FALSE(t2m_addr_loopback(NULL));
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 2;
    t2m_log_init(T2M_LOG_INFO, false);
    /* full.conf's refresh_token_file is relative: a readable file in a writable directory */
    if (chdir(tmpdir) != 0) return 2;
    FILE *rf = fopen("full_refresh_token", "w");
    if (!rf || fputs("ref-full\n", rf) < 0 || fclose(rf) != 0 ||
        chmod("full_refresh_token", 0600) != 0)
        return 2;
    static const struct t2m_test_case cases[] = {
        {"defaults", test_defaults},
        {"the parse reads only through its io", test_parse_io},
        {"every key", test_every_key},
        {"units system and overrides", test_units_system_only},
        {"@include", test_include},
        {"syntax errors and unknown keys", test_syntax_and_unknown},
        {"type mismatches", test_type_mismatch},
        {"ranges and wide integers", test_ranges},
        {"bad values", test_values},
        {"instances and device aliases", test_instances_and_devices},
        {"missing file", test_missing_file},
        {"environment overrides", test_env_overrides},
        {"environment only", test_env_only},
        {"bad environment values", test_env_errors},
        {"secret files", test_secret_files},
        {"hostile values", test_hostile_values},
        {"long lines", test_long_lines},
        {"secret file mode warning", test_secret_mode_warning},
        {"print redacts secrets", test_print_redacts},
        {"print round trip", test_print_round_trip},
        {"example file loads", test_example_loads},
        {"parse_url", test_parse_url},
        {"token refresh from the environment (SPEC 6)", test_refresh_env},
        {"loopback addresses", test_loopback},
        {"bridge/info config typed", test_config_json},
        {"shard (SPEC section 9)", test_shard},
        {"mqtt.url as a list of nodes (SPEC section 9)", test_mqtt_url_list},
        {NULL, NULL},
    };
    int rc = t2m_test_run("config", cases);
    rm_tmpdir();
    return rc;
}
