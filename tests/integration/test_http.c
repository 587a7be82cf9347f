/* test_http.c - /healthz and /metrics served by t2m_http on a real lws context over loopback,
 * fetched with a raw socket client; the metrics text checked by promtool (SPEC 7). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "log_stderr.h"
#include "metrics.h"
#include "t2m_test.h"

#define DEADLINE_MS 5000

static struct lws_context *ctx;
static int health_status = 200;
static unsigned healthz_calls;

static size_t render_healthz(void *user, char *buf, size_t n, int *status)
{
    healthz_calls++;
    const char *body = health_status == 200 ? "{\"status\":\"ok\"}"
                                            : "{\"status\":\"error\",\"reason\":\"mqtt down\"}";
    *status = health_status;
    size_t len = strlen(body);
    if (len >= n) return 0;
    memcpy(buf, body, len + 1);
    return len;
}

static size_t render_metrics(void *user, char *buf, size_t n, int *status)
{
    static const struct t2m_metrics_instance inst[] = {{"inst-1", 2, 1767225600},
                                                       {"odd \"id\"\\", 4, 0}};
    struct t2m_stats st = {.updates_received = 10, .messages_published = 9};
    st.dropped[T2M_DROP_STALE] = 1;
    struct t2m_metrics_snapshot s = {.stats = &st,
                                     .mqtt_connected = true,
                                     .offline_queue_depth = 2,
                                     .devices = 5,
                                     .instances = inst,
                                     .n_instances = 2};
    *status = 200;
    return t2m_metrics_render(buf, n, &s);
}

/* A handler whose output needs more than the first buffer: the server must grow it. */
static size_t render_big(void *user, char *buf, size_t n, int *status)
{
    const size_t want = 100000;
    if (n <= want) return 0;
    memset(buf, 'x', want);
    buf[want] = '\0';
    *status = 200;
    return want;
}

/* A handler that never fits, and one with a nonsense status: both must give a clean 500. */
static size_t render_never(void *user, char *buf, size_t n, int *status)
{
    return 0;
}

static size_t render_bad_status(void *user, char *buf, size_t n, int *status)
{
    *status = 42;
    buf[0] = 'x';
    return 1;
}

static const struct t2m_http_handlers handlers = {.healthz = render_healthz,
                                                  .metrics = render_metrics};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct resp {
    char raw[262144];
    size_t len;
    int status;
    const char *body;
    size_t body_len;
};

/* Content-Length of a header block, or -1. */
static long content_length(const char *raw, size_t hdr_len)
{
    for (const char *p = raw; p && p < raw + hdr_len; p = strstr(p, "\r\n")) {
        p += (*p == '\r') ? 2 : 0;
        if (strncasecmp(p, "content-length:", 15) == 0) return strtol(p + 15, NULL, 10);
    }
    return -1;
}

/* Sends `req`, then services the loop until one whole response (headers + Content-Length
 * bytes) is in, the peer closes, or the deadline passes. 0 when a response was read. */
static int exchange(int fd, const char *req, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    size_t sent = 0, reqlen = strlen(req);
    long long deadline = now_ms() + DEADLINE_MS;
    while (now_ms() < deadline) {
        lws_service(ctx, -1);
        if (sent < reqlen) {
            ssize_t n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINPROGRESS && errno != ENOTCONN)
                return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 2) <= 0) continue;
        ssize_t n = recv(fd, r->raw + r->len, sizeof(r->raw) - 1 - r->len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) break;
        r->len += (size_t)n;
        r->raw[r->len] = '\0';
        const char *eoh = strstr(r->raw, "\r\n\r\n");
        if (eoh) {
            long cl = content_length(r->raw, (size_t)(eoh - r->raw));
            if (cl >= 0 && r->len >= (size_t)(eoh + 4 - r->raw) + (size_t)cl) break;
        }
    }
    const char *eoh = strstr(r->raw, "\r\n\r\n");
    if (!eoh || sscanf(r->raw, "HTTP/1.%*1[01] %d", &r->status) != 1) return -1;
    r->body = eoh + 4;
    r->body_len = r->len - (size_t)(r->body - r->raw);
    return 0;
}

static int connect_to(int family, int port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request on a fresh connection. */
static int fetch(int family, int port, const char *req, struct resp *r)
{
    int fd = connect_to(family, port);
    if (fd < 0) return -1;
    int rc = exchange(fd, req, r);
    close(fd);
    return rc;
}

static const char *header(const struct resp *r, const char *name)
{
    static char val[256];
    size_t nl = strlen(name);
    for (const char *p = strstr(r->raw, "\r\n"); p && p < r->body; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            snprintf(val, sizeof(val), "%.*s", (int)vl, v);
            return val;
        }
    }
    return NULL;
}

static struct t2m_http *start(const char *listen, const struct t2m_http_handlers *h)
{
    char err[256] = "x";
    struct t2m_http *s = t2m_http_new(ctx, listen, h, err, sizeof(err));
    if (!s) fprintf(stderr, "t2m_http_new(%s): %s\n", listen, err);
    return s;
}

/* Frees the server and services until lws has finished destroying the vhost. */
static void stop(struct t2m_http *s)
{
    t2m_http_free(s);
    for (int i = 0; i < 20; i++)
        lws_service(ctx, -1);
}

static void test_parse_listen(void)
{
    char host[64];
    int port = -1;
    CU_ASSERT_EQUAL(t2m_http_parse_listen("127.0.0.1:9780", host, sizeof(host), &port), 0);
    T2M_ASSERT_STR(host, "127.0.0.1");
    CU_ASSERT_EQUAL(port, 9780);
    CU_ASSERT_EQUAL(t2m_http_parse_listen("[::1]:9780", host, sizeof(host), &port), 0);
    T2M_ASSERT_STR(host, "::1");
    CU_ASSERT_EQUAL(t2m_http_parse_listen(":9780", host, sizeof(host), &port), 0);
    T2M_ASSERT_STR(host, "");
    CU_ASSERT_EQUAL(port, 9780);
    CU_ASSERT_EQUAL(t2m_http_parse_listen("0.0.0.0:0", host, sizeof(host), &port), 0);
    T2M_ASSERT_STR(host, "0.0.0.0");
    CU_ASSERT_EQUAL(port, 0);
    CU_ASSERT_EQUAL(t2m_http_parse_listen("[::]:65535", host, sizeof(host), &port), 0);
    CU_ASSERT_EQUAL(port, 65535);
    CU_ASSERT_EQUAL(t2m_http_parse_listen("localhost:80", host, sizeof(host), &port), 0);
    T2M_ASSERT_STR(host, "127.0.0.1");

    static const char *const bad[] = {"9780",
                                      "127.0.0.1",
                                      "127.0.0.1:",
                                      "127.0.0.1:65536",
                                      "127.0.0.1:-1",
                                      "127.0.0.1:9x",
                                      "::1:9780",
                                      "[::1]9780",
                                      "[::1:9780",
                                      "[127.0.0.1]:80",
                                      "300.1.1.1:80",
                                      "example.com:80",
                                      "127.0.0.1:99999999999",
                                      "[zz]:80",
                                      " :80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        port = -7;
        CU_ASSERT_EQUAL(t2m_http_parse_listen(bad[i], host, sizeof(host), &port), -1);
        CU_ASSERT_EQUAL(port, -7);
    }
    CU_ASSERT_EQUAL(t2m_http_parse_listen("[::1]:80", host, 3, &port), -1);
    CU_ASSERT_EQUAL(t2m_http_parse_listen(NULL, host, sizeof(host), &port), -1);
}

static void test_off_and_bad_address(void)
{
    char err[256] = "x";
    CU_ASSERT_PTR_NULL(t2m_http_new(ctx, "", &handlers, err, sizeof(err)));
    T2M_ASSERT_STR(err, "");
    CU_ASSERT_PTR_NULL(t2m_http_new(ctx, "nonsense", &handlers, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nonsense"));
    err[0] = '\0';
    /* 192.0.2.1 (TEST-NET-1) is valid syntax but no local address: bind fails. */
    CU_ASSERT_PTR_NULL(t2m_http_new(ctx, "192.0.2.1:0", &handlers, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "192.0.2.1:0"));
    CU_ASSERT_EQUAL(t2m_http_port(NULL), -1);
}

static void test_healthz(void)
{
    struct t2m_http *s = start("127.0.0.1:0", &handlers);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    int port = t2m_http_port(s);
    CU_ASSERT(port > 0 && port < 65536);
    struct resp r;
    health_status = 200;
    CU_ASSERT_EQUAL_FATAL(
        fetch(AF_INET, port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(strncmp(r.raw, "HTTP/1.1 200 ", 13), 0);
    const char *ct = header(&r, "content-type");
    CU_ASSERT_PTR_NOT_NULL(ct);
    if (ct) T2M_ASSERT_STR(ct, "application/json");
    T2M_ASSERT_STR(r.body, "{\"status\":\"ok\"}");

    health_status = 503;
    CU_ASSERT_EQUAL_FATAL(
        fetch(AF_INET, port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r),
        0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_EQUAL(strncmp(r.raw, "HTTP/1.1 503 ", 13), 0);
    T2M_ASSERT_STR(r.body, "{\"status\":\"error\",\"reason\":\"mqtt down\"}");
    health_status = 200;

    /* A query string does not change the route. */
    CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, port, "GET /healthz?full=1 HTTP/1.0\r\n\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    stop(s);
}

static void test_metrics_route(void)
{
    struct t2m_http *s = start("127.0.0.1:0", &handlers);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    struct resp r;
    CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, t2m_http_port(s),
                                "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    const char *ct = header(&r, "content-type");
    CU_ASSERT_PTR_NOT_NULL(ct);
    if (ct) CU_ASSERT_EQUAL(strncmp(ct, "text/plain; version=0.0.4", 25), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\nt2m_updates_received_total 10\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "t2m_updates_dropped_total{reason=\"stale\"} 1\n"));
    char expect[16384];
    int st;
    size_t len = render_metrics(NULL, expect, sizeof(expect), &st);
    CU_ASSERT_EQUAL(r.body_len, len);
    T2M_ASSERT_STR(r.body, expect);
    stop(s);
}

static void test_not_found_and_method(void)
{
    struct t2m_http *s = start("127.0.0.1:0", &handlers);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    int port = t2m_http_port(s);
    struct resp r;
    static const char *const missing[] = {"/", "/healthz/", "/metricsx", "/../metrics"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        char req[128];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 missing[i]);
        CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, port, req, &r), 0);
        if (i < 3) CU_ASSERT_EQUAL(r.status, 404);
    }
    unsigned before = healthz_calls;
    static const char *const methods[] = {"POST", "PUT", "DELETE", "HEAD", "OPTIONS"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char req[160];
        snprintf(req, sizeof(req),
                 "%s /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: "
                 "close\r\n\r\n{}",
                 methods[i]);
        CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, port, req, &r), 0);
        CU_ASSERT_EQUAL(r.status, 405);
        const char *allow = header(&r, "allow");
        CU_ASSERT_PTR_NOT_NULL(allow);
        if (allow) T2M_ASSERT_STR(allow, "GET");
    }
    CU_ASSERT_EQUAL(healthz_calls, before);
    /* Still serving after all that. */
    CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, port, "GET /healthz HTTP/1.0\r\n\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    stop(s);
}

/* Two requests on one keep-alive connection, the big body growing the render buffer. */
static void test_keepalive_and_big_body(void)
{
    struct t2m_http_handlers big = {.healthz = render_healthz, .metrics = render_big};
    struct t2m_http *s = start("127.0.0.1:0", &big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    int fd = connect_to(AF_INET, t2m_http_port(s));
    CU_ASSERT_FATAL(fd >= 0);
    struct resp r;
    CU_ASSERT_EQUAL(exchange(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(exchange(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, 100000);
    close(fd);
    stop(s);
}

static void test_handler_failure(void)
{
    struct t2m_http_handlers bad = {.healthz = render_bad_status, .metrics = render_never};
    struct t2m_http *s = start("127.0.0.1:0", &bad);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    struct resp r;
    CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, t2m_http_port(s), "GET /metrics HTTP/1.0\r\n\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 500);
    CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, t2m_http_port(s), "GET /healthz HTTP/1.0\r\n\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 500);
    stop(s);

    /* a fleet too large for the status page: a clear 503 on both of its data paths */
    struct t2m_http_handlers huge = {
        .healthz = render_healthz, .metrics = render_metrics, .state = render_never, .ui = true};
    s = start("127.0.0.1:0", &huge);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    static const char *const paths[] = {"/api/state", "/api/events"};
    for (size_t i = 0; i < 2; i++) {
        char req[128];
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", paths[i]);
        CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, t2m_http_port(s), req, &r), 0);
        CU_ASSERT_EQUAL(r.status, 503);
        CU_ASSERT(r.body && strstr(r.body, "too many devices for the status page") != NULL);
    }
    CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, t2m_http_port(s), "GET / HTTP/1.0\r\n\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200); /* the page itself is there */
    stop(s);
}

/* A port another socket (here: another process's, as far as lws knows) listens on. Two vhosts
 * of one lws context on one port share the listener by design, so the holder is a plain socket. */
static void test_port_in_use(void)
{
    int holder = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(holder >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    CU_ASSERT_FATAL(bind(holder, (struct sockaddr *)&a, sizeof(a)) == 0);
    CU_ASSERT_FATAL(listen(holder, 1) == 0);
    CU_ASSERT_FATAL(getsockname(holder, (struct sockaddr *)&a, &al) == 0);
    char listen_at[64], err[256] = "";
    snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", ntohs(a.sin_port));
    struct t2m_http *b = t2m_http_new(ctx, listen_at, &handlers, err, sizeof(err));
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, listen_at));
    if (b) stop(b);
    close(holder);
}

static void test_ipv6_and_all(void)
{
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
    bool have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&a6, sizeof(a6)) == 0;
    if (probe >= 0) close(probe);
    struct resp r;
    if (have_v6) {
        struct t2m_http *s = start("[::1]:0", &handlers);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT_EQUAL(fetch(AF_INET6, t2m_http_port(s), "GET /healthz HTTP/1.0\r\n\r\n", &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        stop(s);
    } else {
        fprintf(stderr, "no IPv6 loopback here: [::1] case not run\n");
    }
    /* ":0" listens on every interface: reachable on IPv4 loopback. */
    struct t2m_http *s = start(":0", &handlers);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(fetch(AF_INET, t2m_http_port(s), "GET /healthz HTTP/1.0\r\n\r\n", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    stop(s);
}

/* promtool, the reference parser and linter, accepts what /metrics serves. */
static void test_promtool(void)
{
    const char *promtool = T2M_PROMTOOL;
    if (promtool[0] == '\0' || access(promtool, X_OK) != 0)
        fprintf(stderr, "promtool not found: install Debian's 'prometheus' package\n");
    CU_ASSERT_FATAL(promtool[0] != '\0' && access(promtool, X_OK) == 0);
    struct t2m_http *s = start("127.0.0.1:0", &handlers);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    struct resp r;
    CU_ASSERT_EQUAL_FATAL(fetch(AF_INET, t2m_http_port(s), "GET /metrics HTTP/1.0\r\n\r\n", &r), 0);
    stop(s);
    char path[] = "/tmp/t2m-metrics-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, r.body, r.body_len), (ssize_t)r.body_len);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s' 2>&1", promtool, path);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    unlink(path);
    if (rc != 0 || n != 0) fprintf(stderr, "promtool said (rc %d):\n%s\n", rc, out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(n, 0); /* lint findings print even when the exit status is 0 */
}

int main(void)
{
    t2m_log_init(T2M_LOG_WARN, false);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.port = CONTEXT_PORT_NO_LISTEN;
    lws_set_log_level(LLL_ERR, NULL);
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws_create_context failed\n");
        return 1;
    }
    static const struct t2m_test_case cases[] = {
        {"parse listen", test_parse_listen},
        {"off, malformed and unbindable addresses", test_off_and_bad_address},
        {"GET /healthz 200 and 503", test_healthz},
        {"GET /metrics", test_metrics_route},
        {"404 and 405", test_not_found_and_method},
        {"keep-alive and a big body", test_keepalive_and_big_body},
        {"handler failure gives 500", test_handler_failure},
        {"port in use", test_port_in_use},
        {"IPv6 loopback and all interfaces", test_ipv6_and_all},
        {"promtool check metrics", test_promtool},
        {NULL, NULL},
    };
    int rc = t2m_test_run("http", cases);
    lws_context_destroy(ctx);
    return rc;
}
