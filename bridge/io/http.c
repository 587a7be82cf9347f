/* http.c - /healthz and /metrics on a vhost of the bridge's lws context (SPEC 7). No thread of
 * its own: requests are answered on the loop thread, in the order the loop sees them. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"

#define MOD "http"
/* The render buffer grows by doubling from the first size up to the cap; /metrics is a few
 * KiB even with many instances, so the cap only stops a runaway handler. */
#define BODY_FIRST 16384
#define BODY_CAP (4u * 1024 * 1024)
#define HEADERS_MAX 1024
/* Connections this endpoint holds at most: a probe or a scraper needs one or two, and every one
 * is a file descriptor the upstream and the broker connections share. Past it, a new
 * connection is closed at once. */
#define CONNS_MAX 64
/* Seconds a connection may sit without completing a request (and between keep-alive
 * requests): lws' own default is 20 s for the first request. */
#define IDLE_SECS 5

/* lws destroys a vhost lazily (lws_vhost_destroy may return before, and the vhost's end can
 * come as late as lws_context_destroy) and may even deliver LWS_CALLBACK_PROTOCOL_INIT to a vhost
 * already being destroyed; it uses info.iface and the vhost user pointer until the end. So the
 * struct is freed on the vhost's LWS_CALLBACK_PROTOCOL_DESTROY, never before, and t2m_http_new
 * has lws initialise the protocols at once so that PROTOCOL_DESTROY always comes. `closing`
 * stops serving meanwhile. If the context goes first, PROTOCOL_DESTROY only clears vh and
 * t2m_http_free frees. */
struct t2m_http {
    struct lws_vhost *vh;
    struct t2m_http_handlers h;
    char iface[INET6_ADDRSTRLEN];
    int port;
    bool closing;
    unsigned conns;     /* connections accepted and not yet destroyed */
    unsigned long full; /* connections refused because CONNS_MAX were open */
};

/* One response waiting for LWS_CALLBACK_HTTP_WRITEABLE. */
struct pss {
    unsigned char *buf; /* LWS_PRE bytes, then the body */
    size_t len;         /* body length */
    int close_after;    /* the request may have a body we never read: do not reuse the socket */
};

static void pss_reset(struct pss *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = 0;
}

/* Renders with the handler into a buffer that grows while the handler says "too small" (0). */
static int render(struct pss *p, t2m_http_render_fn fn, void *user, int *status)
{
    for (size_t cap = BODY_FIRST; cap <= BODY_CAP; cap *= 2) {
        unsigned char *b = malloc(LWS_PRE + cap);
        if (!b) return -1;
        *status = 200;
        size_t len = fn(user, (char *)b + LWS_PRE, cap, status);
        if (len > 0 && len < cap) {
            p->buf = b;
            p->len = len;
            return 0;
        }
        free(b);
    }
    return -1;
}

static int set_text(struct pss *p, const char *text)
{
    size_t len = strlen(text);
    p->buf = malloc(LWS_PRE + len + 1);
    if (!p->buf) return -1;
    memcpy(p->buf + LWS_PRE, text, len + 1);
    p->len = len;
    return 0;
}

/* Writes the status line and headers now; the body follows on the writeable callback. */
static int send_headers(struct lws *wsi, struct pss *p, int status, const char *ctype, bool allow)
{
    unsigned char hdr[LWS_PRE + HEADERS_MAX];
    unsigned char *start = hdr + LWS_PRE, *pos = start, *end = hdr + sizeof(hdr) - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, (lws_filepos_t)p->len, &pos,
                                    end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &pos, end))
        return -1;
    if (allow && lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
                                             (const unsigned char *)"GET", 3, &pos, end))
        return -1;
    if (p->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &pos, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &pos, end)) return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_request(struct lws *wsi, struct t2m_http *h, struct pss *p, const char *path)
{
    pss_reset(p);
    /* lws files the request URI under a token named for the method. */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        p->close_after = 1;
        if (set_text(p, "method not allowed\n")) return -1;
        return send_headers(wsi, p, HTTP_STATUS_METHOD_NOT_ALLOWED, "text/plain", true);
    }
    t2m_http_render_fn fn = NULL;
    const char *ctype = NULL;
    if (path && strcmp(path, "/healthz") == 0) {
        fn = h->h.healthz;
        ctype = "application/json";
    } else if (path && strcmp(path, "/metrics") == 0) {
        fn = h->h.metrics;
        ctype = "text/plain; version=0.0.4; charset=utf-8";
    }
    if (!fn) {
        if (set_text(p, "not found\n")) return -1;
        return send_headers(wsi, p, HTTP_STATUS_NOT_FOUND, "text/plain", false);
    }
    int status = 200;
    if (render(p, fn, h->h.user, &status) || status < 200 || status > 599) {
        pss_reset(p);
        T2M_WARN(MOD, "could not render %s (status %d)", path, status);
        if (set_text(p, "internal error\n")) return -1;
        return send_headers(wsi, p, HTTP_STATUS_INTERNAL_SERVER_ERROR, "text/plain", false);
    }
    return send_headers(wsi, p, status, ctype, false);
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct pss *p = user;
    /* Some callbacks (GET_THREAD_ID, ...) come on a placeholder wsi without a vhost. */
    struct lws_vhost *vh = wsi ? lws_get_vhost(wsi) : NULL;
    struct t2m_http *h = vh ? lws_get_vhost_user(vh) : NULL;

    switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        if (!h || h->closing) return -1;
        if (h->conns >= CONNS_MAX) {
            if (h->full++ % 1000 == 0)
                T2M_WARN(MOD, "%u connections open: refusing more (%lu refused so far)", h->conns,
                         h->full);
            return -1;
        }
        h->conns++;
        lws_set_opaque_user_data(wsi, h); /* marks the wsi as counted, for WSI_DESTROY */
        lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, IDLE_SECS);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (h && lws_get_opaque_user_data(wsi) == h && h->conns) h->conns--;
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_ESTABLISHED:
        /* A WebSocket upgrade: this endpoint serves GET /healthz and /metrics only, and an
         * upgraded connection would be held open for ever (issue 10). */
        return -1;
    case LWS_CALLBACK_PROTOCOL_DESTROY:
        if (h && h->closing)
            free(h);
        else if (h)
            h->vh = NULL;
        return 0;
    case LWS_CALLBACK_HTTP:
        if (!h || !p || h->closing) return -1;
        p->close_after = 0;
        return on_request(wsi, h, p, in) ? -1 : 0;
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        /* A request body (of a method we refuse anyway) is discarded. */
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!p || !p->buf) return 0;
        int n = lws_write(wsi, p->buf + LWS_PRE, p->len, LWS_WRITE_HTTP_FINAL);
        int close_after = p->close_after;
        pss_reset(p);
        if (n < 0 || close_after) return -1;
        /* Keep-alive: ready for the next request, or close when lws says so. */
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (p) pss_reset(p);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {.name = "http", .callback = callback_http, .per_session_data_size = sizeof(struct pss)},
    {.name = NULL},
};

int t2m_http_parse_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    if (!listen || !host || hostlen == 0 || !port) return -1;
    char tmp[INET6_ADDRSTRLEN];
    int p;
    bool v6;
    if (t2m_addr_split(listen, strlen(listen), tmp, sizeof(tmp), &p, true, &v6) != 0 || p < 0)
        return -1;
    unsigned char addr[sizeof(struct in6_addr)];
    if (v6) {
        if (inet_pton(AF_INET6, tmp, addr) != 1) return -1;
    } else if (tmp[0]) {
        /* A listener binds an address, not a name: localhost is the one name taken. */
        if (strcmp(tmp, "localhost") == 0)
            strcpy(tmp, "127.0.0.1");
        else if (inet_pton(AF_INET, tmp, addr) != 1)
            return -1;
    }
    if (strlen(tmp) >= hostlen) return -1;
    strcpy(host, tmp);
    *port = p;
    return 0;
}

struct t2m_http *t2m_http_new(struct lws_context *ctx, const char *listen,
                              const struct t2m_http_handlers *hs, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!listen || listen[0] == '\0') return NULL;
    char host[INET6_ADDRSTRLEN];
    int port;
    if (!ctx || !hs || !hs->healthz || !hs->metrics) {
        snprintf(err, errlen, "http: internal error: no context or handlers");
        return NULL;
    }
    if (t2m_http_parse_listen(listen, host, sizeof(host), &port)) {
        snprintf(err, errlen,
                 "http.listen \"%s\" is not HOST:PORT (\"127.0.0.1:9780\", \"[::1]:9780\", "
                 "\":9780\")",
                 listen);
        return NULL;
    }
    struct t2m_http *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "http: out of memory");
        return NULL;
    }
    h->h = *hs;

    bool v4 = strchr(host, ':') == NULL && host[0] != '\0';
    bool any = host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
    snprintf(h->iface, sizeof(h->iface), "%s", host);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "t2m-http";
    info.port = port;
    /* NULL binds every address (dual stack when IPv6 is there); lws reads a literal address
     * from iface the same way it would an interface name. */
    info.iface = any ? NULL : h->iface;
    info.protocols = protocols;
    info.user = h;
    info.keepalive_timeout = IDLE_SECS;
    if (v4) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (strcmp(host, "::") == 0) info.options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY;

    h->vh = lws_create_vhost(ctx, &info);
    if (!h->vh) {
        snprintf(err, errlen, "http.listen \"%s\": cannot listen (address in use or not local)",
                 listen);
        free(h);
        return NULL;
    }
    /* Before the loop's first lws_service, lws has not sent PROTOCOL_INIT yet; a vhost destroyed
     * in that state would never get PROTOCOL_DESTROY either (see struct t2m_http). */
    if (lws_protocol_init(ctx)) {
        snprintf(err, errlen, "http.listen \"%s\": cannot initialise the vhost", listen);
        t2m_http_free(h);
        return NULL;
    }
    h->port = lws_get_vhost_listen_port(h->vh);
    if (h->port <= 0) {
        snprintf(err, errlen, "http.listen \"%s\": cannot listen (address not available)", listen);
        t2m_http_free(h);
        return NULL;
    }
    T2M_INFO(MOD, "listening on %s (port %d)", listen, h->port);
    return h;
}

void t2m_http_free(struct t2m_http *h)
{
    if (!h) return;
    if (!h->vh) {
        free(h);
        return;
    }
    h->closing = true;
    lws_vhost_destroy(h->vh); /* h is freed by PROTOCOL_DESTROY, perhaps already now */
}

int t2m_http_port(const struct t2m_http *h)
{
    return h ? h->port : -1;
}
