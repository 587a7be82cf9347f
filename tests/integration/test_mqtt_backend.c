/* test_mqtt_backend.c - mqtt.h against a real mosquitto broker, for one backend (argv[1]:
 * "mosquitto" or "paho"). The broker runs on a free loopback port from a temporary config; the
 * test kills and restarts it. A second, independent libmosquitto client observes retained
 * messages and the will. Also prints (does not assert) throughput and CPU per message. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "log_stderr.h"
#include "mqtt.h"

#define MAX_IDS 400000
#define WINDOW 1000

static const char *backend;
static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            printf("  ok: " __VA_ARGS__);                                                          \
            printf("\n");                                                                          \
        } else {                                                                                   \
            printf("  FAIL (%s:%d): ", __FILE__, __LINE__);                                        \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the broker ---- */

static char tmpdir[64];
static pid_t broker_pid = -1;
static int broker_port, tls_port;

/* A throw-away CA and a server certificate for "localhost" only. */
static void make_certs(void)
{
    char cmd[2048];
    snprintf(
        cmd, sizeof(cmd),
        "cd %s && printf 'subjectAltName=DNS:localhost\\n' > ext.cnf && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 "
        "-subj /CN=t2m-test-ca && "
        "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost && "
        "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt "
        "-days 2 -extfile ext.cnf",
        tmpdir);
    char full[2200];
    snprintf(full, sizeof(full), "(%s) >%s/openssl.log 2>&1", cmd, tmpdir);
    if (system(full) != 0) {
        fprintf(stderr, "openssl failed (see %s/openssl.log)\n", tmpdir);
        exit(2);
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl)) {
        perror("free_port");
        exit(2);
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static void broker_start(void)
{
    char conf[128], log[128];
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", tmpdir);
    snprintf(log, sizeof(log), "%s/mosquitto.log", tmpdir);
    FILE *f = fopen(conf, "w");
    if (!f) {
        perror(conf);
        exit(2);
    }
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n",
            broker_port);
    fprintf(f, "listener %d 127.0.0.1\ncafile %s/ca.crt\ncertfile %s/srv.crt\nkeyfile %s/srv.key\n",
            tls_port, tmpdir, tmpdir, tmpdir);
    fclose(f);
    broker_pid = fork();
    if (broker_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    double deadline = now_s() + 10;
    while (!port_accepts(broker_port) && now_s() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!port_accepts(broker_port)) {
        fprintf(stderr, "mosquitto did not start (see %s)\n", log);
        exit(2);
    }
}

static void broker_kill(void)
{
    if (broker_pid > 0) {
        kill(broker_pid, SIGKILL);
        waitpid(broker_pid, NULL, 0);
        broker_pid = -1;
    }
}

/* ---- the client under test, and the loop ---- */

static struct lws_context *ctx;
static lws_sorted_usec_list_t tick;

static struct {
    int connected_n, disconnected_n;
    char reason[160];
    long delivered_n, dup, bad;
    long outstanding;
    unsigned char *seen;
    int msg_n;
    char msg_topic[256], msg_payload[256];
    bool msg_retained;
} st;

static void on_connected(void *u)
{
    st.connected_n++;
}

static void on_disconnected(void *u, const char *reason)
{
    st.disconnected_n++;
    snprintf(st.reason, sizeof(st.reason), "%s", reason);
    st.outstanding = 0;
}

static void on_delivered(void *u, int id)
{
    if (id <= 0 || id >= MAX_IDS)
        st.bad++;
    else if (st.seen[id]++)
        st.dup++;
    st.delivered_n++;
    st.outstanding--;
}

static void on_message(void *u, const char *topic, const void *payload, size_t len, bool retained)
{
    st.msg_retained = retained;
    st.msg_n++;
    snprintf(st.msg_topic, sizeof(st.msg_topic), "%s", topic);
    snprintf(st.msg_payload, sizeof(st.msg_payload), "%.*s", (int)len, (const char *)payload);
}

static const struct t2m_mqtt_callbacks cbs = {on_connected, on_disconnected, on_delivered,
                                              NULL,         on_message,      NULL};

/* Keeps lws_service from sleeping past our deadlines when nothing else happens. */
static void tick_cb(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(ctx, 0, &tick, tick_cb, 20 * LWS_US_PER_MS);
}

static void make_context(void)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options =
        LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT; /* as main.c */
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws_create_context failed\n");
        exit(2);
    }
    lws_sul_schedule(ctx, 0, &tick, tick_cb, 20 * LWS_US_PER_MS);
}

typedef bool (*pred_fn)(void *);

static bool service_until(pred_fn pred, void *arg, double seconds)
{
    double deadline = now_s() + seconds;
    while (!pred(arg)) {
        if (now_s() > deadline) return false;
        lws_service(ctx, 0);
    }
    return true;
}

static bool p_connected_n(void *a)
{
    return st.connected_n >= *(int *)a;
}
static bool p_disconnected_n(void *a)
{
    return st.disconnected_n >= *(int *)a;
}
static bool p_delivered(void *a)
{
    return st.delivered_n >= *(long *)a;
}
static bool p_msg(void *a)
{
    return st.msg_n > 0 && strcmp(st.msg_payload, (const char *)a) == 0;
}

static struct t2m_mqtt *new_client(const char *will_topic, const char *client_id)
{
    char url[64], err[256];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", broker_port);
    struct t2m_mqtt_options o = {
        .backend = backend,
        .url = url,
        .client_id = client_id,
        .protocol = 4,
        .keepalive = 30,
        .tls_verify = true,
        .will_topic = will_topic,
        .will_payload = "offline",
        .max_inflight = WINDOW,
    };
    struct t2m_mqtt *m = t2m_mqtt_new(ctx, &o, &cbs, NULL, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "t2m_mqtt_new: %s\n", err);
        exit(2);
    }
    return m;
}

/* Publishes n messages keeping at most `window` outstanding; returns the seconds it took. */
static double publish_burst(struct t2m_mqtt *m, long n, int qos, int window, double limit_s,
                            long *sent_out)
{
    static char payload[251];
    memset(payload, 'x', sizeof(payload) - 1);
    char topic[64];
    long sent = 0, target = st.delivered_n + n;
    double t0 = now_s(), deadline = t0 + limit_s;
    while (st.delivered_n < target && now_s() < deadline) {
        while (sent < n && st.outstanding < window) {
            snprintf(topic, sizeof(topic), "t2m-test/%s/burst/%ld", backend, sent % 1000);
            int id, rc = t2m_mqtt_publish(m, topic, payload, 250, qos, true, &id);
            if (rc == T2M_MQTT_EAGAIN) break;
            if (rc != T2M_MQTT_OK) {
                printf("  publish failed: %d\n", rc);
                *sent_out = sent;
                return now_s() - t0;
            }
            sent++;
            st.outstanding++;
        }
        lws_service(ctx, 0);
    }
    *sent_out = sent;
    return now_s() - t0;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- the observer: an independent libmosquitto client on its own thread ---- */

static pthread_mutex_t obs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t obs_cond = PTHREAD_COND_INITIALIZER;
static char obs_topic[256], obs_payload[256];
static bool obs_retained, obs_connected;

static void obs_on_connect(struct mosquitto *o, void *u, int rc)
{
    pthread_mutex_lock(&obs_lock);
    obs_connected = rc == 0;
    pthread_cond_broadcast(&obs_cond);
    pthread_mutex_unlock(&obs_lock);
}

static void obs_on_message(struct mosquitto *o, void *u, const struct mosquitto_message *msg)
{
    pthread_mutex_lock(&obs_lock);
    snprintf(obs_topic, sizeof(obs_topic), "%s", msg->topic);
    snprintf(obs_payload, sizeof(obs_payload), "%.*s", msg->payloadlen, (char *)msg->payload);
    obs_retained = msg->retain;
    pthread_cond_broadcast(&obs_cond);
    pthread_mutex_unlock(&obs_lock);
}

/* Waits until the observer saw `payload` on `topic` (retained); false on timeout. */
static bool obs_wait(const char *topic, const char *payload, double seconds)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)seconds;
    pthread_mutex_lock(&obs_lock);
    bool ok;
    while (
        !(ok = strcmp(obs_topic, topic) == 0 && strcmp(obs_payload, payload) == 0 && obs_retained))
        if (pthread_cond_timedwait(&obs_cond, &obs_lock, &dl) != 0) break;
    ok = strcmp(obs_topic, topic) == 0 && strcmp(obs_payload, payload) == 0 && obs_retained;
    pthread_mutex_unlock(&obs_lock);
    return ok;
}

static struct mosquitto *obs_start(void)
{
    struct mosquitto *o = mosquitto_new(NULL, true, NULL);
    mosquitto_connect_callback_set(o, obs_on_connect);
    mosquitto_message_callback_set(o, obs_on_message);
    if (mosquitto_connect(o, "127.0.0.1", broker_port, 30) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(o) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "observer cannot connect\n");
        exit(2);
    }
    return o;
}

static void obs_stop(struct mosquitto *o)
{
    mosquitto_disconnect(o);
    mosquitto_loop_stop(o, false);
    mosquitto_destroy(o);
}

/* ---- the will: a child process connects with a will and dies without DISCONNECT ---- */

static int will_child(const char *port)
{
    broker_port = atoi(port);
    make_context();
    char topic[128];
    snprintf(topic, sizeof(topic), "t2m-test/%s/will", backend);
    struct t2m_mqtt *m = new_client(topic, "t2m-test-will-child");
    t2m_mqtt_start(m);
    int one = 1;
    if (!service_until(p_connected_n, &one, 10)) _exit(3);
    int id;
    if (t2m_mqtt_publish(m, topic, "online", 6, 1, true, &id) != T2M_MQTT_OK) _exit(4);
    long target = 1;
    if (!service_until(p_delivered, &target, 10)) _exit(5);
    _exit(0); /* no DISCONNECT: the broker must publish the will */
}

static void test_will(void)
{
    printf("%s: will\n", backend);
    char port[16], topic[128];
    snprintf(port, sizeof(port), "%d", broker_port);
    snprintf(topic, sizeof(topic), "t2m-test/%s/will", backend);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_mqtt_backend", backend, "--will-child", port, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "will child connected and published");
    struct mosquitto *o = obs_start();
    mosquitto_subscribe(o, NULL, topic, 1);
    CHECK(obs_wait(topic, "offline", 10),
          "the retained will 'offline' is visible to another client");
    obs_stop(o);
}

/* ---- TLS ---- */

static struct t2m_mqtt *new_tls_client(const char *host)
{
    char url[128], ca[128], err[256];
    snprintf(url, sizeof(url), "mqtts://%s:%d", host, tls_port);
    snprintf(ca, sizeof(ca), "%s/ca.crt", tmpdir);
    struct t2m_mqtt_options o = {
        .backend = backend,
        .url = url,
        .client_id = "t2m-test-tls",
        .ca_file = ca,
        .tls_verify = true,
        /* libmosquitto is refused MQTT 5 (it aborts on an unknown property) */
        .protocol = strcmp(backend, "mosquitto") == 0 ? 4 : 5,
        .keepalive = 30,
        .max_inflight = 100,
    };
    struct t2m_mqtt *m = t2m_mqtt_new(ctx, &o, &cbs, NULL, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "t2m_mqtt_new: %s\n", err);
        exit(2);
    }
    return m;
}

static void test_tls(void)
{
    printf("%s: TLS (MQTT 5)\n", backend);
    int want = st.connected_n + 1;
    struct t2m_mqtt *m = new_tls_client("localhost");
    t2m_mqtt_start(m);
    CHECK(service_until(p_connected_n, &want, 10), "connected over TLS with the CA file");
    int id;
    CHECK(t2m_mqtt_publish(m, "t2m-test/tls", "t", 1, 1, false, &id) == T2M_MQTT_OK,
          "publish over TLS");
    st.outstanding++;
    long target = st.delivered_n + 1;
    CHECK(service_until(p_delivered, &target, 5), "delivered over TLS");
    want = st.disconnected_n + 1;
    t2m_mqtt_disconnect(m);
    CHECK(service_until(p_disconnected_n, &want, 5), "TLS client disconnected");
    t2m_mqtt_free(m);

    /* The certificate names localhost only: 127.0.0.1 must be refused when verifying. */
    want = st.connected_n + 1;
    m = new_tls_client("127.0.0.1");
    t2m_mqtt_start(m);
    CHECK(!service_until(p_connected_n, &want, 2.5), "a certificate for another name is refused");
    t2m_mqtt_free(m);
}

/* ---- the main sequence ---- */

static void run(void)
{
    make_context();

    test_will();
    broker_kill();

    printf("%s: broker down at start\n", backend);
    struct t2m_mqtt *m = new_client(NULL, "t2m-test-main");
    CHECK(t2m_mqtt_start(m) == T2M_MQTT_OK, "start with the broker down is not an error");
    int one = 1;
    CHECK(!service_until(p_connected_n, &one, 1.2), "not connected while the broker is down");
    int id = 0;
    CHECK(t2m_mqtt_publish(m, "t2m-test/x", "a", 1, 1, false, &id) == T2M_MQTT_ENOTCONN,
          "publish while disconnected returns ENOTCONN");
    broker_start();
    CHECK(service_until(p_connected_n, &one, 15), "connected once the broker appears");
    CHECK(t2m_mqtt_connected(m), "t2m_mqtt_connected() is true");

    printf("%s: subscribe and receive own message\n", backend);
    char sub[128], topic[128];
    snprintf(sub, sizeof(sub), "t2m-test/%s/echo/#", backend);
    snprintf(topic, sizeof(topic), "t2m-test/%s/echo/1", backend);
    CHECK(t2m_mqtt_subscribe(m, sub, 1) == T2M_MQTT_OK, "subscribe");
    CHECK(t2m_mqtt_publish(m, topic, "hello", 5, 1, false, &id) == T2M_MQTT_OK, "publish");
    st.outstanding++;
    CHECK(service_until(p_msg, "hello", 5) && strcmp(st.msg_topic, topic) == 0,
          "own message received on %s", topic);
    CHECK(!st.msg_retained, "a live message is not flagged retained");
    long target = 1;
    CHECK(service_until(p_delivered, &target, 5) && st.seen[id] == 1, "publish %d delivered", id);
    CHECK(t2m_mqtt_publish(m, "t2m-test/#", "x", 1, 1, false, &id) == T2M_MQTT_EINVAL,
          "a wildcard topic is EINVAL");
    CHECK(t2m_mqtt_publish(m, "t2m-test/x", "x", 1, 3, false, &id) == T2M_MQTT_EINVAL,
          "QoS 3 is EINVAL");

    printf("%s: 10,000 QoS 1 messages, at most %d outstanding\n", backend, WINDOW);
    long before = st.delivered_n, sent = 0;
    publish_burst(m, 10000, 1, WINDOW, 30, &sent);
    CHECK(sent == 10000 && st.delivered_n - before == 10000 && st.dup == 0 && st.bad == 0,
          "exactly 10,000 delivered (sent %ld, delivered %ld, duplicates %ld, unknown %ld)", sent,
          st.delivered_n - before, st.dup, st.bad);

    printf("%s: retained message visible to a second client\n", backend);
    snprintf(topic, sizeof(topic), "t2m-test/%s/retained", backend);
    CHECK(t2m_mqtt_publish(m, topic, "r1", 2, 1, true, &id) == T2M_MQTT_OK, "publish retained");
    st.outstanding++;
    target = st.delivered_n + 1;
    CHECK(service_until(p_delivered, &target, 5), "retained publish delivered");
    struct mosquitto *o = obs_start();
    mosquitto_subscribe(o, NULL, topic, 1);
    CHECK(obs_wait(topic, "r1", 10), "observer got the retained message");
    obs_stop(o);
    /* the read-back takes only what the broker kept (SPEC 8): the RETAIN flag reaches mqtt.h */
    CHECK(t2m_mqtt_subscribe(m, topic, 0) == T2M_MQTT_OK, "subscribe to the retained topic");
    CHECK(service_until(p_msg, "r1", 5) && st.msg_retained, "the retained message flagged");
    t2m_mqtt_unsubscribe(m, topic);

    printf("%s: broker killed and restarted\n", backend);
    broker_kill();
    int n1 = 1;
    CHECK(service_until(p_disconnected_n, &n1, 10), "disconnected reported (%s)", st.reason);
    CHECK(!t2m_mqtt_connected(m), "t2m_mqtt_connected() is false");
    broker_start();
    int two = 2;
    CHECK(service_until(p_connected_n, &two, 20), "reconnected by itself");
    CHECK(t2m_mqtt_publish(m, topic, "r2", 2, 1, true, &id) == T2M_MQTT_OK,
          "publish after the reconnect");
    st.outstanding++;
    target = st.delivered_n + 1;
    CHECK(service_until(p_delivered, &target, 5), "delivered after the reconnect");

    /* The window matters: libmosquitto walks its whole outgoing list on every PUBACK. */
    static const struct {
        int qos, window;
    } runs[] = {{1, WINDOW}, {1, 100}, {0, WINDOW}};
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        double c0 = cpu_s();
        double secs = publish_burst(m, 100000, runs[i].qos, runs[i].window, 60, &sent);
        double cpu = cpu_s() - c0;
        printf("  bench %-9s QoS %d window %4d: %ld messages in %.2f s = %.0f msg/s, "
               "%.2f us CPU/msg\n",
               backend, runs[i].qos, runs[i].window, sent, secs, sent / secs,
               cpu * 1e6 / (double)(sent ? sent : 1));
        CHECK(sent == 100000, "bench: all 100,000 sent");
    }

    test_tls();

    if (strcmp(backend, "mosquitto") == 0) {
        /* Issue 19, item 1: libmosquitto aborts on an MQTT 5 packet with an unknown property. */
        printf("%s: MQTT 5 refused\n", backend);
        char err[256] = "";
        struct t2m_mqtt_options o5 = {
            .backend = backend, .url = "tcp://127.0.0.1:1", .protocol = 5};
        struct t2m_mqtt *m5 = t2m_mqtt_new(ctx, &o5, &cbs, NULL, err, sizeof(err));
        CHECK(m5 == NULL && strstr(err, "MQTT 3.1.1 only"), "libmosquitto refused MQTT 5");
        t2m_mqtt_free(m5);
    }

    printf("%s: clean shutdown\n", backend);
    int before_disc = st.disconnected_n + 1;
    t2m_mqtt_disconnect(m);
    CHECK(service_until(p_disconnected_n, &before_disc, 5), "disconnect reported");
    t2m_mqtt_free(m);
    lws_context_destroy(ctx);
    ctx = NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || t2m_mqtt_backend_known(argv[1]) != 0) {
        fprintf(stderr, "usage: %s mosquitto|paho\n", argv[0]);
        return 2;
    }
    backend = argv[1];
    /* As the daemon does: Paho's threads inherit the mask, the loop handles signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    t2m_log_init(T2M_LOG_INFO, false);
    mosquitto_lib_init();

    st.seen = calloc(MAX_IDS, 1);
    if (argc == 4 && strcmp(argv[2], "--will-child") == 0) return will_child(argv[3]);

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/t2m-mqtt-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    broker_port = free_port();
    do
        tls_port = free_port();
    while (tls_port == broker_port);
    make_certs();
    broker_start();
    double t0 = now_s();
    run();
    broker_kill();
    mosquitto_lib_cleanup();
    char path[128];
    snprintf(path, sizeof(path), "%s/mosquitto.conf", tmpdir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/mosquitto.log", tmpdir);
    if (failures == 0) unlink(path);
    static const char *const files[] = {"ca.key",  "ca.crt",  "ca.srl",  "srv.key",
                                        "srv.csr", "srv.crt", "ext.cnf", "openssl.log"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    free(st.seen);
    printf("%s: %s (%d failures, %.1f s)\n", backend, failures ? "FAILED" : "passed", failures,
           now_s() - t0);
    return failures ? 1 : 0;
}
