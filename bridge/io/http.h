/* http.h - GET /healthz and GET /metrics, and the status page (GET /, /api/state, /api/events
 * as Server-Sent Events) on an lws vhost in the bridge's own loop (SPEC 7). */
#ifndef T2M_HTTP_H
#define T2M_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct lws_context;
struct t2m_http;

/* Renders a response body into buf (at most n bytes) and returns its length; *status gets the
 * HTTP status (200 / 503). Called on the loop thread for every request. */
typedef size_t (*t2m_http_render_fn)(void *user, char *buf, size_t n, int *status);

struct t2m_http_handlers {
    t2m_http_render_fn healthz; /* application/json */
    t2m_http_render_fn metrics; /* text/plain; version=0.0.4 */
    /* The status page (NULL: none): GET /api/state (application/json), also the first event
     * ("state") of every GET /api/events. */
    t2m_http_render_fn state;
    bool ui;                 /* http.ui */
    const char *ui_password; /* http.ui_password_file's content, NULL: none (kept by the caller) */
    const char *leaflet_dir; /* NULL: T2M_LEAFLET_DIR */
    void *user;
};

/* Sends one Server-Sent Event to every client of GET /api/events (a client too far behind is
 * dropped; its browser reconnects and starts again from a "state" event). */
void t2m_http_broadcast(struct t2m_http *h, const char *event, const char *data, size_t len);
/* Sends the whole state (the `state` handler, as the first event of every client) to every
 * client of GET /api/events: after something changed many devices at once (a read-back). */
void t2m_http_broadcast_state(struct t2m_http *h);
/* How many clients GET /api/events has now: the caller renders nothing when there are none. */
unsigned t2m_http_live_clients(const struct t2m_http *h);

/* listen: "127.0.0.1:9780", "[::1]:9780", ":9780" (all interfaces) or "" (off -> returns NULL
 * with err empty). Creates a vhost on ctx (which must have LWS_SERVER_OPTION_EXPLICIT_VHOSTS).
 * NULL with err filled when the address is malformed or the port cannot be bound. */
struct t2m_http *t2m_http_new(struct lws_context *ctx, const char *listen,
                              const struct t2m_http_handlers *h, char *err, size_t errlen);
void t2m_http_free(struct t2m_http *h);
/* The port actually bound (for listen ports of 0 in tests). */
int t2m_http_port(const struct t2m_http *h);

/* Parses "host:port" / "[v6]:port" / ":port". 0 or -1. host gets "" for all interfaces. */
int t2m_http_parse_listen(const char *listen, char *host, size_t hostlen, int *port);

#endif
