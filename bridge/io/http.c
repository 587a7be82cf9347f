/* http.c - /healthz and /metrics on a vhost of the bridge's lws context (SPEC 7). No thread of
 * its own: requests are answered on the loop thread, in the order the loop sees them. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "log.h"
#include "text.h"
#include "ui.h"

#define MOD "http"
/* The render buffer grows by doubling from the first size up to the cap; /metrics is a few
 * KiB even with many instances, so the cap only stops a runaway handler. */
#define BODY_FIRST 16384
#define BODY_CAP (4u * 1024 * 1024)
/* The status page's state (/api/state, the first event of /api/events): about 450 bytes a
 * device, so this is some 140,000 devices. */
#define STATE_CAP (64u * 1024 * 1024)
#define HEADERS_MAX 1024
/* Connections this endpoint holds at most: a probe or a scraper needs one or two, and every one
 * is a file descriptor the upstream and the broker connections share. Past it, a new
 * connection is closed at once. */
#define CONNS_MAX 64
/* Seconds a connection may sit without completing a request (and between keep-alive
 * requests): lws' own default is 20 s for the first request. */
#define IDLE_SECS 5
/* GET /api/events: at most this many live clients, each dropped when more than SSE_QUEUE_MAX
 * bytes wait for it (a tab in the background, a stalled network); a comment line every
 * SSE_BEAT_SECS keeps proxies from closing a quiet stream and finds dead peers. */
#define SSE_MAX 8
#define SSE_QUEUE_MAX (1u << 20)
#define SSE_BEAT_SECS 15
#define ASSET_MAX (1u << 20) /* a Leaflet file larger than this is not Leaflet */

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
    bool loopback;      /* http.listen is a loopback address: the page needs no password */
    struct lws_context *ctx;
    struct lws *sse[SSE_MAX]; /* the clients of GET /api/events */
    unsigned n_sse;
    unsigned long sse_dropped;
    unsigned ticks; /* of sul_beat, one a second */
    bool leaflet_warned, state_warned;
    lws_sorted_usec_list_t sul_beat;
};

/* One response waiting for LWS_CALLBACK_HTTP_WRITEABLE; or, for GET /api/events, the events
 * waiting for the client (buf: LWS_PRE bytes, then len bytes of which off are written). */
struct pss {
    unsigned char *buf; /* LWS_PRE bytes, then the body */
    size_t len;         /* body length */
    int close_after;    /* the request may have a body we never read: do not reuse the socket */
    bool sse;           /* a live GET /api/events */
    bool drop;          /* fell behind: closed at the next writeable */
    size_t off, cap;    /* sse: bytes of buf already written; room after LWS_PRE */
    size_t whole;       /* sse: the last whole-state event's size, allowed beyond SSE_QUEUE_MAX */
};

static void pss_reset(struct pss *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = 0;
    p->off = 0;
    p->cap = 0;
}

static void sse_forget(struct t2m_http *h, struct lws *wsi)
{
    for (unsigned i = 0; h && i < h->n_sse; i++)
        if (h->sse[i] == wsi) {
            h->sse[i] = h->sse[--h->n_sse];
            return;
        }
}

/* Appends len bytes to a live client's queue; a client that falls too far behind is dropped.
 * whole: a "state" event (a large fleet's is bigger than the backlog allowed after it). */
static void sse_queue(struct t2m_http *h, struct lws *wsi, struct pss *p, const char *data,
                      size_t len, bool whole)
{
    if (p->drop) return;
    if (whole) p->whole = len;
    if (p->off) { /* what was written makes room */
        memmove(p->buf + LWS_PRE, p->buf + LWS_PRE + p->off, p->len - p->off);
        p->len -= p->off;
        p->off = 0;
    }
    if (p->len + len > SSE_QUEUE_MAX + p->whole) {
        p->drop = true;
        if (h->sse_dropped++ % 100 == 0)
            T2M_WARN(MOD,
                     "a status page client fell %u KiB behind: dropped (%lu so far; its "
                     "browser reconnects)",
                     SSE_QUEUE_MAX >> 10, h->sse_dropped);
        lws_callback_on_writable(wsi);
        return;
    }
    if (p->len + len > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + len)
            cap *= 2;
        unsigned char *nb = realloc(p->buf, LWS_PRE + cap);
        if (!nb) {
            p->drop = true;
            lws_callback_on_writable(wsi);
            return;
        }
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + LWS_PRE + p->len, data, len);
    p->len += len;
    lws_callback_on_writable(wsi);
}

/* One Server-Sent Event in a new buffer (free it), its length in *n; NULL when out of memory. */
static char *sse_frame_new(const char *event, const char *data, size_t len, size_t *n)
{
    size_t need = len + len / 8 + strlen(event) + 64; /* "data: " per line, rarely more than one */
    char *frame = malloc(need);
    *n = frame ? t2m_sse_frame(frame, need, event, data, len) : 0;
    if (frame && !*n) { /* many line breaks: the exact worst case */
        free(frame);
        need = 7 * len + strlen(event) + 64;
        frame = malloc(need);
        *n = frame ? t2m_sse_frame(frame, need, event, data, len) : 0;
    }
    if (!*n) {
        free(frame);
        return NULL;
    }
    return frame;
}

void t2m_http_broadcast(struct t2m_http *h, const char *event, const char *data, size_t len)
{
    if (!h || h->closing || !h->n_sse) return;
    size_t n;
    char *frame = sse_frame_new(event, data, len, &n);
    for (unsigned i = 0; frame && i < h->n_sse; i++) {
        struct pss *p = lws_wsi_user(h->sse[i]);
        if (p) sse_queue(h, h->sse[i], p, frame, n, strcmp(event, "state") == 0);
    }
    free(frame);
}

unsigned t2m_http_live_clients(const struct t2m_http *h)
{
    return h ? h->n_sse : 0;
}

/* Every second: a live client whose peer has gone is dropped (lws reads nothing more from an
 * HTTP/1 connection before its response is complete, so it would not notice the close itself);
 * every SSE_BEAT_SECS a comment line keeps proxies from closing a quiet stream. */
static void beat_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_http *h = lws_container_of(sul, struct t2m_http, sul_beat);
    if (h->closing) return;
    bool beat = ++h->ticks % SSE_BEAT_SECS == 0;
    for (unsigned i = 0; i < h->n_sse; i++) {
        struct pss *p = lws_wsi_user(h->sse[i]);
        if (!p) continue;
        char c;
        ssize_t r = recv(lws_get_socket_fd(h->sse[i]), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            p->drop = true; /* closed at its writeable callback */
            lws_callback_on_writable(h->sse[i]);
        } else if (beat) {
            sse_queue(h, h->sse[i], p, ":\n\n", 3, false);
        }
    }
    lws_sul_schedule(h->ctx, 0, &h->sul_beat, beat_cb, LWS_US_PER_SEC);
}

struct handler_ctx {
    t2m_http_render_fn fn;
    void *user;
    int *status;
};

static size_t render_handler(void *ctx, char *buf, size_t n)
{
    const struct handler_ctx *c = ctx;
    *c->status = 200;
    return c->fn(c->user, buf, n, c->status);
}

/* Renders with the handler into a buffer that grows while the handler says "too small" (0). */
static int render_upto(struct pss *p, t2m_http_render_fn fn, void *user, int *status, size_t max)
{
    struct handler_ctx c = {fn, user, status};
    size_t len;
    char *b = t2m_render_grow(render_handler, &c, LWS_PRE, BODY_FIRST, max, &len);
    if (!b) return -1;
    p->buf = (unsigned char *)b;
    p->len = len;
    return 0;
}

static int render(struct pss *p, t2m_http_render_fn fn, void *user, int *status)
{
    return render_upto(p, fn, user, status, BODY_CAP);
}

static int send_text(struct lws *wsi, struct pss *p, int status, const char *text, int flags);

/* The status page's state; a fleet too large for it is a clear 503, said once in the log. */
static int render_state(struct t2m_http *h, struct lws *wsi, struct pss *p, struct pss *into)
{
    int status = 200;
    if (render_upto(into, h->h.state, h->h.user, &status, STATE_CAP) == 0 && status == 200)
        return 0;
    pss_reset(into);
    if (!h->state_warned)
        T2M_WARN(MOD,
                 "the status page's state is larger than %u MiB: /api/state and "
                 "/api/events answer 503",
                 STATE_CAP >> 20);
    h->state_warned = true;
    p->close_after = 1;
    send_text(wsi, p, HTTP_STATUS_SERVICE_UNAVAILABLE, "too many devices for the status page\n", 0);
    return -1;
}

void t2m_http_broadcast_state(struct t2m_http *h)
{
    if (!h || h->closing || !h->n_sse) return;
    struct pss body = {0};
    int status = 200;
    if (render_upto(&body, h->h.state, h->h.user, &status, STATE_CAP) == 0 && status == 200)
        t2m_http_broadcast(h, "state", (char *)body.buf + LWS_PRE, body.len);
    pss_reset(&body);
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

enum { HDR_ALLOW = 1, HDR_AUTH = 2, HDR_CACHE = 4, HDR_STREAM = 8 };

/* Writes the status line and headers now; the body follows on the writeable callback. */
static int send_headers(struct lws *wsi, struct pss *p, int status, const char *ctype, int flags)
{
    unsigned char hdr[LWS_PRE + HEADERS_MAX];
    unsigned char *start = hdr + LWS_PRE, *pos = start, *end = hdr + sizeof(hdr) - 1;
    const char *cache = flags & HDR_CACHE ? "max-age=3600" : "no-store";
    lws_filepos_t clen = flags & HDR_STREAM ? LWS_ILLEGAL_HTTP_CONTENT_LEN : (lws_filepos_t)p->len;
    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, clen, &pos, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)cache, (int)strlen(cache), &pos, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)"nosniff", 7, &pos, end))
        return -1;
    if ((flags & HDR_ALLOW) &&
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"allow:", (const unsigned char *)"GET", 3, &pos, end))
        return -1;
    static const char realm[] = "Basic realm=\"telematics2mqtt\", charset=\"UTF-8\"";
    if ((flags & HDR_AUTH) && lws_add_http_header_by_name(
                                  wsi, (const unsigned char *)"www-authenticate:",
                                  (const unsigned char *)realm, (int)sizeof(realm) - 1, &pos, end))
        return -1;
    /* (a stream without a length gets "connection: close" from lws itself) */
    if (p->close_after && !(flags & HDR_STREAM) &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &pos, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &pos, end)) return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int send_text(struct lws *wsi, struct pss *p, int status, const char *text, int flags)
{
    if (set_text(p, text)) return -1;
    return send_headers(wsi, p, status, "text/plain; charset=utf-8", flags);
}

/* A Leaflet file of Debian's libjs-leaflet, read whole into p. */
static int read_asset(struct t2m_http *h, struct pss *p, const char *file)
{
    char path[512];
    const char *dir = h->h.leaflet_dir ? h->h.leaflet_dir : T2M_LEAFLET_DIR;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (!h->leaflet_warned)
            T2M_WARN(MOD, "cannot read %s (%s): the status page's map needs Debian's libjs-leaflet",
                     path, strerror(errno));
        h->leaflet_warned = true;
        return -1;
    }
    unsigned char *b = malloc(LWS_PRE + ASSET_MAX + 1);
    size_t n = b ? fread(b + LWS_PRE, 1, ASSET_MAX + 1, f) : 0;
    fclose(f);
    if (!b || n == 0 || n > ASSET_MAX) {
        free(b);
        return -1;
    }
    p->buf = b;
    p->len = n;
    return 0;
}

/* GET /api/events: the state first, then every change (t2m_http_broadcast). */
static int start_events(struct lws *wsi, struct t2m_http *h, struct pss *p)
{
    if (h->n_sse >= SSE_MAX) {
        p->close_after = 1;
        return send_text(wsi, p, HTTP_STATUS_SERVICE_UNAVAILABLE,
                         "too many live clients of /api/events\n", 0);
    }
    struct pss tmp = {0};
    if (render_state(h, wsi, p, &tmp)) return 0; /* answered */
    p->sse = true;
    h->sse[h->n_sse++] = wsi;
    /* a live stream: no idle time-out (the heartbeat finds dead peers) */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    p->len = 0;
    if (send_headers(wsi, p, 200, "text/event-stream", HDR_STREAM)) {
        pss_reset(&tmp);
        return -1;
    }
    size_t n;
    char *frame = sse_frame_new("state", (char *)tmp.buf + LWS_PRE, tmp.len, &n);
    pss_reset(&tmp);
    if (!frame) return -1;
    sse_queue(h, wsi, p, frame, n, true);
    free(frame);
    return 0;
}

/* The status page: /, its assets, /api/state, /api/events (SPEC 7). */
static int on_ui(struct lws *wsi, struct t2m_http *h, struct pss *p, const char *path)
{
    char auth[600] = "";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
        auth[0] = '\0';
    enum t2m_ui_access a =
        t2m_ui_access(h->h.ui, h->loopback, h->h.ui_password, auth[0] ? auth : NULL);
    explicit_bzero(auth, sizeof(auth));
    switch (a) {
    case T2M_UI_OFF:
        return send_text(wsi, p, HTTP_STATUS_NOT_FOUND, "not found\n", 0);
    case T2M_UI_FORBIDDEN:
        return send_text(wsi, p, HTTP_STATUS_FORBIDDEN,
                         "the status page needs a password (http.ui_password_file) when "
                         "http.listen is not a loopback address\n",
                         0);
    case T2M_UI_UNAUTHORIZED:
        return send_text(wsi, p, HTTP_STATUS_UNAUTHORIZED, "authentication required\n", HDR_AUTH);
    case T2M_UI_ALLOW:
        break;
    }
    if (strcmp(path, "/api/events") == 0) return start_events(wsi, h, p);
    if (strcmp(path, "/api/state") == 0) {
        struct pss body = {0};
        if (render_state(h, wsi, p, &body)) return 0; /* answered */
        p->buf = body.buf;
        p->len = body.len;
        return send_headers(wsi, p, 200, "application/json", 0);
    }
    const struct t2m_ui_asset *as = t2m_ui_asset(path);
    if (!as) return send_text(wsi, p, HTTP_STATUS_NOT_FOUND, "not found\n", 0);
    if (as->data) {
        p->buf = malloc(LWS_PRE + as->len);
        if (!p->buf) return -1;
        memcpy(p->buf + LWS_PRE, as->data, as->len);
        p->len = as->len;
    } else if (read_asset(h, p, as->file)) {
        return send_text(wsi, p, HTTP_STATUS_NOT_FOUND, "not found (install libjs-leaflet)\n", 0);
    }
    /* the page itself is never cached (it is the bridge's version); its files for an hour */
    return send_headers(wsi, p, 200, as->ctype, strcmp(path, "/") ? HDR_CACHE : 0);
}

static int on_request(struct lws *wsi, struct t2m_http *h, struct pss *p, const char *path)
{
    pss_reset(p);
    /* lws files the request URI under a token named for the method. */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        p->close_after = 1;
        return send_text(wsi, p, HTTP_STATUS_METHOD_NOT_ALLOWED, "method not allowed\n", HDR_ALLOW);
    }
    t2m_http_render_fn fn = NULL;
    const char *ctype = NULL;
    if (path && strcmp(path, "/healthz") == 0) {
        fn = h->h.healthz;
        ctype = "application/json";
    } else if (path && strcmp(path, "/metrics") == 0) {
        fn = h->h.metrics;
        ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else if (path && h->h.state && (t2m_ui_asset(path) || strncmp(path, "/api/", 5) == 0)) {
        return on_ui(wsi, h, p, path);
    }
    if (!fn) return send_text(wsi, p, HTTP_STATUS_NOT_FOUND, "not found\n", 0);
    int status = 200;
    if (render(p, fn, h->h.user, &status) || status < 200 || status > 599) {
        pss_reset(p);
        T2M_WARN(MOD, "could not render %s (status %d)", path, status);
        return send_text(wsi, p, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal error\n", 0);
    }
    return send_headers(wsi, p, status, ctype, 0);
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
        sse_forget(h, wsi);
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
        if (!h || !p || h->closing || p->sse) return -1;
        p->close_after = 0;
        return on_request(wsi, h, p, in) ? -1 : 0;
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        /* A request body (of a method we refuse anyway) is discarded. */
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (p && p->sse) {
            if (p->drop || !h || h->closing) return -1;
            if (p->off >= p->len) return 0;
            size_t n = p->len - p->off;
            if (n > 65536) n = 65536;
            if (lws_write(wsi, p->buf + LWS_PRE + p->off, n, LWS_WRITE_HTTP) < 0) return -1;
            p->off += n;
            if (p->off < p->len) lws_callback_on_writable(wsi);
            return 0;
        }
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
        if (p && p->sse) sse_forget(h, wsi);
        if (p) {
            pss_reset(p);
            p->sse = false;
        }
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
    h->ctx = ctx;

    bool v4 = strchr(host, ':') == NULL && host[0] != '\0';
    bool any = host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
    h->loopback = !any && t2m_addr_loopback(host);
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
    T2M_INFO(MOD, "listening on %s (port %d)%s", listen, h->port,
             !hs->state || !hs->ui ? ""
             : h->loopback         ? "; status page at /"
             : hs->ui_password     ? "; status page at / (password required)"
                                   : "; status page off: not a loopback address and no "
                                     "http.ui_password_file (403)");
    lws_sul_schedule(ctx, 0, &h->sul_beat, beat_cb, LWS_US_PER_SEC);
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
    lws_sul_cancel(&h->sul_beat);
    lws_vhost_destroy(h->vh); /* h is freed by PROTOCOL_DESTROY, perhaps already now */
}

int t2m_http_port(const struct t2m_http *h)
{
    return h ? h->port : -1;
}
