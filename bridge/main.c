/* main.c - command line, signals, the loop: wires the bridge together (SPEC section 7). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef T2M_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "bridge.h"
#include "config.h"
#include "files.h"
#include "http.h"
#include "log.h"
#include "log_stderr.h"
#include "log_lws.h"

struct app {
    struct t2m_bridge *bridge;
    struct lws_context *ctx;
    lws_sorted_usec_list_t sul_watchdog;
    lws_usec_t watchdog_us;
};

static struct app g_app;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: telematics2mqtt [-c FILE] [-v|-q] [--check-config] [--version] [--help]\n"
            "                       [--healthcheck [URL]]\n"
            "Bridges the telematics real-time WebSocket API into MQTT.\n\n"
            "  -c, --config FILE    configuration file (default %s;\n"
            "                       without it, T2M_* environment variables alone)\n"
            "  -v, --verbose        log at debug level\n"
            "  -q, --quiet          log warnings and errors only\n"
            "      --check-config   validate, print the effective configuration (secrets\n"
            "                       redacted) and exit 0, or 2 when it is invalid\n"
            "      --healthcheck [URL]  exit 0 when GET URL (default: /healthz on http.listen)\n"
            "                       answers 200, else 1 (for container HEALTHCHECKs)\n"
            "      --version        print the version and exit\n"
            "  -h, --help           this text\n\n"
            "Exit status: 0 clean stop, 1 fatal runtime error, 2 configuration or usage error.\n",
            T2M_DEFAULT_CONFIG);
}

/* GET http://host:port/path with a plain socket: no curl in slim images. */
static int healthcheck(const char *url)
{
    char host[256] = "127.0.0.1", path[512] = "/healthz";
    int port = 9780;
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0) p += 7;
    const char *slash = strchr(p, '/');
    size_t hostport_len = slash ? (size_t)(slash - p) : strlen(p);
    char hp[300];
    if (hostport_len >= sizeof(hp)) {
        fprintf(stderr, "telematics2mqtt: --healthcheck: bad URL\n");
        return 1;
    }
    memcpy(hp, p, hostport_len);
    hp[hostport_len] = '\0';
    if (slash) snprintf(path, sizeof(path), "%s", slash);
    if (t2m_http_parse_listen(hp, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "telematics2mqtt: --healthcheck: bad URL %s\n", url);
        return 1;
    }
    if (!host[0]) snprintf(host, sizeof(host), "127.0.0.1");
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai = NULL;
    if (getaddrinfo(host, portstr, &hints, &ai) != 0) {
        fprintf(stderr, "telematics2mqtt: --healthcheck: bad address %s\n", host);
        return 1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "telematics2mqtt: --healthcheck: cannot connect to %s:%d: %s\n", host, port,
                strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return 1;
    }
    freeaddrinfo(ai);
    char req[700];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    char resp[4096];
    size_t got = 0;
    if (write(fd, req, (size_t)n) == n) {
        ssize_t r;
        while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
            got += (size_t)r;
    }
    close(fd);
    resp[got] = '\0';
    /* strtol rather than sscanf's %d, where an out-of-range number is undefined behaviour */
    const char *sp = strncmp(resp, "HTTP/", 5) == 0 ? strchr(resp, ' ') : NULL;
    char *end = NULL;
    long status = sp ? strtol(sp + 1, &end, 10) : 0;
    if (!sp || end == sp + 1 || status < 100 || status > 999) {
        fprintf(stderr, "telematics2mqtt: --healthcheck: no HTTP answer\n");
        return 1;
    }
    char *body = strstr(resp, "\r\n\r\n");
    printf("%ld %s\n", status, body ? body + 4 : "");
    return status == 200 ? 0 : 1;
}

static int callback_signal(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    if (reason != LWS_CALLBACK_RAW_RX_FILE) return 0;
    struct signalfd_siginfo si;
    int fd = lws_get_socket_fd(wsi);
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            t2m_bridge_reload(g_app.bridge);
        } else {
            T2M_INFO("main", "signal %d: shutting down", (int)si.ssi_signo);
#ifdef T2M_HAVE_SYSTEMD
            sd_notify(0, "STOPPING=1");
#endif
            t2m_bridge_stop(g_app.bridge);
        }
    }
    return 0;
}

static const struct lws_protocols main_protocols[] = {
    {"t2m-signal", callback_signal, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

#ifdef T2M_HAVE_SYSTEMD
/* systemd watchdog: the loop itself pets it, so a hung loop gets restarted. */
static void watchdog_cb(lws_sorted_usec_list_t *sul)
{
    sd_notify(0, "WATCHDOG=1");
    lws_sul_schedule(g_app.ctx, 0, sul, watchdog_cb, g_app.watchdog_us / 2);
}
#endif

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"check-config", no_argument, NULL, 'C'},
        {"healthcheck", optional_argument, NULL, 'H'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    const char *hc_url = NULL;
    int verbose = 0, quiet = 0, check = 0, hc = 0, c;
    while ((c = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'C':
            check = 1;
            break;
        case 'H':
            hc = 1;
            if (!optarg && optind < argc && argv[optind][0] != '-') optarg = argv[optind++];
            hc_url = optarg;
            break;
        case 'V':
            printf("telematics2mqtt %s\n", T2M_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || (verbose && quiet)) {
        fprintf(stderr, "telematics2mqtt: %s\n",
                optind < argc ? "unexpected argument" : "-v and -q exclude each other");
        usage(stderr);
        return 2;
    }
    if (hc && hc_url) return healthcheck(hc_url);

    char err[1024] = "";
    t2m_log_init(T2M_LOG_INFO, false);
    struct t2m_config *cfg = t2m_config_load(path, path != NULL, err, sizeof(err));
    if (!cfg) {
        if (hc) /* no usable config: try the default address */
            return healthcheck("127.0.0.1:9780");
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (hc) {
        const char *l =
            cfg->http.listen && cfg->http.listen[0] ? cfg->http.listen : "127.0.0.1:9780";
        char url[300];
        snprintf(url, sizeof(url), "%s%s/healthz", l[0] == ':' ? "127.0.0.1" : "", l);
        t2m_config_free(cfg);
        return healthcheck(url);
    }
    if (check) {
        char *text = t2m_config_text(cfg);
        t2m_config_free(cfg);
        if (!text || fputs(text, stdout) == EOF || fflush(stdout) != 0) {
            free(text);
            fprintf(stderr, "telematics2mqtt: cannot print the configuration\n");
            return 1;
        }
        free(text);
        return 0;
    }
    t2m_log_init(verbose ? T2M_LOG_DEBUG : quiet ? T2M_LOG_WARN : cfg->log.level, cfg->log.json);
    t2m_log_route_lws();

    /* Signals are taken by the loop through a signalfd; blocking them first also keeps them
     * off the threads a library may start (LIBRARY-NOTES.md: Paho). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = main_protocols;
    info.fd_limit_per_thread = 4096;
    int rc = 0;
    g_app.ctx = lws_create_context(&info);
    struct lws_vhost *vh = NULL;
    if (g_app.ctx) {
        info.vhost_name = "main";
        vh = lws_create_vhost(g_app.ctx, &info);
    }
    if (!g_app.ctx || !vh || sfd < 0) {
        T2M_ERROR("main", "cannot create the event loop");
        rc = 1;
        goto out;
    }
    lws_sock_file_fd_type fdt;
    fdt.filefd = sfd;
    if (!lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fdt, "t2m-signal", NULL)) {
        T2M_ERROR("main", "cannot watch signals");
        rc = 1;
        goto out;
    }
    sfd = -1; /* lws owns it now */

    g_app.bridge = t2m_bridge_new(g_app.ctx, cfg, err, sizeof(err));
    if (!g_app.bridge) {
        T2M_ERROR("main", "%s", err);
        rc = 1;
        goto out;
    }
    T2M_INFO("main", "telematics2mqtt %s starting: %zu instance(s), broker %s", T2M_VERSION,
             cfg->n_instances, cfg->mqtt.url);
    if (cfg->shard.n)
        T2M_INFO("main",
                 "shard %u of %u: serving %zu of the %zu configured instances as client %s, own "
                 "topics under %s",
                 cfg->shard.k, cfg->shard.n, cfg->n_instances, cfg->shard.configured,
                 cfg->mqtt.client_id, cfg->mqtt.bridge_topic);
    t2m_bridge_start(g_app.bridge);
#ifdef T2M_HAVE_SYSTEMD
    sd_notify(0, "READY=1");
    uint64_t wd;
    if (sd_watchdog_enabled(0, &wd) > 0) {
        g_app.watchdog_us = (lws_usec_t)wd;
        lws_sul_schedule(g_app.ctx, 0, &g_app.sul_watchdog, watchdog_cb, 1);
    }
#endif
    while (!t2m_bridge_done(g_app.bridge))
        if (lws_service(g_app.ctx, 0) < 0) break;
    T2M_INFO("main", "stopped");
out:
    lws_sul_cancel(&g_app.sul_watchdog);
    t2m_bridge_free(g_app.bridge);
    if (g_app.ctx) lws_context_destroy(g_app.ctx);
    if (sfd >= 0) close(sfd);
    t2m_config_free(cfg);
    return rc;
}
