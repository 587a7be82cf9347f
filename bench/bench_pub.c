/* bench_pub.c - the benchmark's baselines: a raw publisher pushing ready-made ~250-byte retained
 * payloads over N topics, with Paho MQTTAsync or libmosquitto, as fast as the client library and
 * the broker allow with at most W messages outstanding. What a bridge built on that library
 * could reach at best on this machine and broker.
 *
 *   bench-pub --lib mosquitto|paho -p PORT [--qos Q] [--topics N] [-n COUNT] [--inflight W]
 *
 * Prints one JSON line: messages confirmed (QoS 1 acked, QoS 0 written), elapsed seconds from
 * the first publish to the last confirmation, rate, and the process's CPU (user + sys, all
 * threads) per message. */
#include <MQTTAsync.h>
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_clock.h"

#define PAYLOAD_LEN 250

static struct {
    int port, qos, topics, inflight;
    long count;
    char **topic;
    char payload[PAYLOAD_LEN + 1];
    /* shared with Paho's threads under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long done, failed;
    bool connected, conn_failed;
} g = {.port = 1883,
       .qos = 1,
       .topics = 1000,
       .inflight = 1000,
       .count = 100000,
       .lock = PTHREAD_MUTEX_INITIALIZER,
       .cond = PTHREAD_COND_INITIALIZER};

/* A position-shaped payload padded to exactly PAYLOAD_LEN bytes. */
static void make_payload(void)
{
    int n = snprintf(g.payload, sizeof(g.payload),
                     "{\"instance_id\":\"bench\",\"device_token\":\"e4855fba-0000-4000-8000-"
                     "000000000000\",\"latitude\":40.7128,\"longitude\":-74.006,\"speed\":28.26,"
                     "\"speed_unit\":\"km/h\",\"accuracy\":5,\"accuracy_unit\":\"m\","
                     "\"gps_accuracy\":5,\"heading\":180,\"timestamp\":1640995200000,\"pad\":\"");
    while (n < PAYLOAD_LEN - 2)
        g.payload[n++] = 'x';
    memcpy(g.payload + n, "\"}", 3);
}

static void report(const char *lib, long done, double el, double cpu)
{
    printf("{\"lib\":\"%s\",\"qos\":%d,\"done\":%ld,\"elapsed\":%.6f,\"rate\":%.1f,"
           "\"cpu_us_per_msg\":%.3f}\n",
           lib, g.qos, done, el, el > 0 ? (double)done / el : 0.0,
           done ? cpu * 1e6 / (double)done : 0.0);
}

/* ---- libmosquitto: one thread, the library's loop driven here ---- */

static long m_done;
static bool m_connected;

static void m_on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    (void)obj;
    m_connected = rc == 0;
}

static void m_on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    (void)obj;
    (void)mid;
    m_done++;
}

static int run_mosquitto(void)
{
    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new("bench-pub-mosquitto", true, NULL);
    if (!mosq) return 1;
    mosquitto_connect_callback_set(mosq, m_on_connect);
    mosquitto_publish_callback_set(mosq, m_on_publish);
    mosquitto_max_inflight_messages_set(mosq, (unsigned)g.inflight);
    if (mosquitto_connect(mosq, "127.0.0.1", g.port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "bench-pub: cannot connect\n");
        return 1;
    }
    while (!m_connected)
        if (mosquitto_loop(mosq, 100, 1) != MOSQ_ERR_SUCCESS) return 1;
    double c0 = cpu_s(), t0 = mono_s();
    long sent = 0;
    while (m_done < g.count) {
        /* Keep at most `inflight` outstanding (for QoS 0: written), then let the loop work. */
        while (sent < g.count && sent - m_done < g.inflight) {
            int rc = mosquitto_publish(mosq, NULL, g.topic[sent % g.topics], PAYLOAD_LEN, g.payload,
                                       g.qos, true);
            if (rc != MOSQ_ERR_SUCCESS) {
                fprintf(stderr, "bench-pub: publish: %s\n", mosquitto_strerror(rc));
                return 1;
            }
            sent++;
        }
        /* loop_read stops after one packet when errno still says EAGAIN from an earlier call
         * (the bridge's backend does the same): cleared, one wakeup takes a burst of PUBACKs. */
        errno = 0;
        if (mosquitto_loop(mosq, 100, g.inflight + 64) != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "bench-pub: connection lost\n");
            return 1;
        }
    }
    report("mosquitto", m_done, mono_s() - t0, cpu_s() - c0);
    mosquitto_disconnect(mosq);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    return 0;
}

/* ---- Paho MQTTAsync: its threads confirm, the main thread keeps the window full ---- */

static void p_on_connect(void *ctx, MQTTAsync_successData *resp)
{
    (void)ctx;
    (void)resp;
    pthread_mutex_lock(&g.lock);
    g.connected = true;
    pthread_cond_signal(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

static void p_on_connect_fail(void *ctx, MQTTAsync_failureData *resp)
{
    (void)ctx;
    (void)resp;
    pthread_mutex_lock(&g.lock);
    g.conn_failed = true;
    pthread_cond_signal(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

static void p_on_sent(void *ctx, MQTTAsync_successData *resp)
{
    (void)ctx;
    (void)resp;
    pthread_mutex_lock(&g.lock);
    g.done++;
    pthread_cond_signal(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

static void p_on_send_fail(void *ctx, MQTTAsync_failureData *resp)
{
    (void)ctx;
    (void)resp;
    pthread_mutex_lock(&g.lock);
    g.failed++;
    g.done++;
    pthread_cond_signal(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

static int p_msgarrvd(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    (void)ctx;
    (void)tlen;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static int run_paho(void)
{
    char uri[64];
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", g.port);
    MQTTAsync client;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.sendWhileDisconnected = 0;
    /* Paho counts every queued publish command against this even while connected (default 100). */
    co.maxBufferedMessages = g.inflight + 64;
    if (MQTTAsync_createWithOptions(&client, uri, "bench-pub-paho", MQTTCLIENT_PERSISTENCE_NONE,
                                    NULL, &co) != MQTTASYNC_SUCCESS)
        return 1;
    MQTTAsync_setCallbacks(client, NULL, NULL, p_msgarrvd, NULL);
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    opts.cleansession = 1;
    opts.keepAliveInterval = 60;
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.maxInflight = g.inflight;
    opts.onSuccess = p_on_connect;
    opts.onFailure = p_on_connect_fail;
    if (MQTTAsync_connect(client, &opts) != MQTTASYNC_SUCCESS) return 1;
    pthread_mutex_lock(&g.lock);
    while (!g.connected && !g.conn_failed)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
    if (g.conn_failed) {
        fprintf(stderr, "bench-pub: paho connect failed\n");
        return 1;
    }
    double c0 = cpu_s(), t0 = mono_s();
    for (long sent = 0; sent < g.count; sent++) {
        pthread_mutex_lock(&g.lock);
        while (sent - g.done >= g.inflight)
            pthread_cond_wait(&g.cond, &g.lock);
        pthread_mutex_unlock(&g.lock);
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        ro.onSuccess = p_on_sent;
        ro.onFailure = p_on_send_fail;
        MQTTAsync_message msg = MQTTAsync_message_initializer;
        msg.payload = g.payload;
        msg.payloadlen = PAYLOAD_LEN;
        msg.qos = g.qos;
        msg.retained = 1;
        int rc = MQTTAsync_sendMessage(client, g.topic[sent % g.topics], &msg, &ro);
        if (rc != MQTTASYNC_SUCCESS) {
            fprintf(stderr, "bench-pub: paho send: %d\n", rc);
            return 1;
        }
    }
    pthread_mutex_lock(&g.lock);
    while (g.done < g.count)
        pthread_cond_wait(&g.cond, &g.lock);
    long done = g.done - g.failed;
    pthread_mutex_unlock(&g.lock);
    report("paho", done, mono_s() - t0, cpu_s() - c0);
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 1000;
    MQTTAsync_disconnect(client, &d);
    MQTTAsync_destroy(&client);
    return 0;
}

int main(int argc, char **argv)
{
    const char *lib = "mosquitto";
    static const struct option opts[] = {
        {"lib", required_argument, NULL, 'l'},
        {"port", required_argument, NULL, 'p'},
        {"qos", required_argument, NULL, 'q'},
        {"topics", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "l:p:q:t:n:w:", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            lib = optarg;
            break;
        case 'p':
            g.port = atoi(optarg);
            break;
        case 'q':
            g.qos = atoi(optarg);
            break;
        case 't':
            g.topics = atoi(optarg);
            break;
        case 'n':
            g.count = atol(optarg);
            break;
        case 'w':
            g.inflight = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: bench-pub --lib mosquitto|paho -p PORT [--qos Q] "
                            "[--topics N] [-n COUNT] [--inflight W]\n");
            return 2;
        }
    }
    if (g.topics < 1 || g.count < 1 || g.inflight < 1 || g.qos < 0 || g.qos > 1) return 2;
    make_payload();
    g.topic = calloc((size_t)g.topics, sizeof(*g.topic));
    for (int i = 0; g.topic && i < g.topics; i++) {
        g.topic[i] = malloc(64);
        if (!g.topic[i]) return 1;
        snprintf(g.topic[i], 64, "telematics/bench/dev%06d/position", i);
    }
    if (!g.topic) return 1;
    int rc = strcmp(lib, "paho") == 0 ? run_paho() : run_mosquitto();
    for (int i = 0; i < g.topics; i++)
        free(g.topic[i]);
    free(g.topic);
    return rc;
}
