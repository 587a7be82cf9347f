/* bench_sub.c - the benchmark's subscriber: counts what the broker actually delivers on one
 * topic filter, and optionally measures latency from a Unix-ms "timestamp" in each payload.
 *
 *   bench-sub -p PORT [-t FILTER] [-n EXPECT] [--idle-ms MS] [--latency] [--skip N]
 *
 * Prints "ready" on stdout once subscribed, then one JSON line when done: EXPECT messages
 * counted, IDLE-MS without a message after the first one, or SIGINT/SIGTERM. Retained messages
 * (replayed at subscribe time) are not counted: only live deliveries are. libmosquitto, one
 * thread, its own loop: the subscriber must never be what limits the measurement. */
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_clock.h"

static volatile sig_atomic_t g_stop;

static struct {
    const char *filter;
    uint64_t expect, skip;
    long idle_ms;
    bool latency;
    bool subscribed;
    uint64_t count, retained, bad_stamp;
    double t_first, t_last; /* monotonic seconds of the first and last counted message */
    float *lat_ms;          /* latency samples, ms */
    size_t nlat, caplat;
} g = {.filter = "telematics/+/+/position", .idle_ms = 3000};

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* The integer after "timestamp": in the payload (the bridge renders unix_ms as a JSON integer),
 * or -1. The payload is not NUL-terminated: bounded scan. */
static long long payload_stamp(const char *p, size_t len)
{
    static const char key[] = "\"timestamp\":";
    const size_t kl = sizeof(key) - 1;
    for (size_t i = 0; i + kl < len; i++) {
        if (p[i] != '"' || memcmp(p + i, key, kl) != 0) continue;
        long long v = 0;
        size_t j = i + kl, start = j;
        while (j < len && p[j] >= '0' && p[j] <= '9')
            v = v * 10 + (p[j++] - '0');
        return j > start ? v : -1;
    }
    return -1;
}

static void record_latency(const struct mosquitto_message *msg)
{
    long long ts = payload_stamp(msg->payload, (size_t)msg->payloadlen);
    if (ts < 0) {
        g.bad_stamp++;
        return;
    }
    if (g.nlat == g.caplat) {
        size_t nc = g.caplat ? g.caplat * 2 : 65536;
        float *n = realloc(g.lat_ms, nc * sizeof(*n));
        if (!n) return;
        g.lat_ms = n;
        g.caplat = nc;
    }
    g.lat_ms[g.nlat++] = (float)(wall_ms() - (double)ts);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    (void)mosq;
    (void)obj;
    if (msg->retain) {
        g.retained++;
        return;
    }
    double now = mono_s();
    if (g.count == 0) g.t_first = now;
    g.t_last = now;
    g.count++;
    if (g.latency && g.count > g.skip) record_latency(msg);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
    (void)mosq;
    (void)obj;
    (void)mid;
    (void)n;
    (void)granted;
    g.subscribed = true;
    printf("ready\n");
    fflush(stdout);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)obj;
    if (rc != 0) {
        fprintf(stderr, "bench-sub: connect refused: %s\n", mosquitto_connack_string(rc));
        g_stop = 1;
        return;
    }
    mosquitto_subscribe(mosq, NULL, g.filter, 0);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double pct(double p)
{
    if (!g.nlat) return -1;
    size_t i = (size_t)(p / 100.0 * (double)(g.nlat - 1) + 0.5);
    return g.lat_ms[i < g.nlat ? i : g.nlat - 1];
}

static void report(void)
{
    double el = g.count > 1 ? g.t_last - g.t_first : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    printf("{\"count\":%llu,\"retained\":%llu,\"elapsed\":%.6f,\"rate\":%.1f,\"cpu_s\":%.3f",
           (unsigned long long)g.count, (unsigned long long)g.retained, el,
           el > 0 ? (double)(g.count - 1) / el : 0.0, cpu);
    if (g.latency) {
        qsort(g.lat_ms, g.nlat, sizeof(*g.lat_ms), cmp_float);
        printf(",\"samples\":%zu,\"bad_stamp\":%llu,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
               "\"max\":%.3f",
               g.nlat, (unsigned long long)g.bad_stamp, pct(50), pct(99), pct(99.9),
               g.nlat ? g.lat_ms[g.nlat - 1] : -1.0);
    }
    printf("}\n");
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-sub -p PORT [-t FILTER] [-n EXPECT] [--idle-ms MS] "
                    "[--latency] [--skip N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int port = 1883;
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"topic", required_argument, NULL, 't'},
        {"expect", required_argument, NULL, 'n'},
        {"idle-ms", required_argument, NULL, 'i'},
        {"latency", no_argument, NULL, 'l'},
        {"skip", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "p:t:n:", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            port = atoi(optarg);
            break;
        case 't':
            g.filter = optarg;
            break;
        case 'n':
            g.expect = strtoull(optarg, NULL, 10);
            break;
        case 'i':
            g.idle_ms = atol(optarg);
            break;
        case 'l':
            g.latency = true;
            break;
        case 's':
            g.skip = strtoull(optarg, NULL, 10);
            break;
        default:
            usage();
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new("bench-sub", true, NULL);
    if (!mosq) return 1;
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_message_callback_set(mosq, on_message);
    if (mosquitto_connect(mosq, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "bench-sub: cannot connect to 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    while (!g_stop) {
        int rc = mosquitto_loop(mosq, 100, 64);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "bench-sub: connection lost: %s\n", mosquitto_strerror(rc));
            break;
        }
        if (g.expect && g.count >= g.expect) break;
        if (g.count && g.idle_ms > 0 && (mono_s() - g.t_last) * 1000 > (double)g.idle_ms) break;
    }
    report();
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    free(g.lat_ms);
    return 0;
}
