/* upstream.h - one authenticated WebSocket connection per instance (SPEC section 1, 8): connect,
 * authenticate, answer pings, reassemble messages, hand device updates to the bridge, reconnect
 * for ever with backoff. Runs on the lws loop; owns nothing but its connection. */
#ifndef T2M_UPSTREAM_H
#define T2M_UPSTREAM_H

#include <stdbool.h>

#include "config.h"
#include "protocol.h"
#include "stats.h"

struct lws_context;
struct lws_vhost;
struct t2m_upstream;

enum t2m_up_state {
    T2M_UP_CONNECTING = 0,
    T2M_UP_AUTHENTICATING,
    T2M_UP_SUBSCRIBED,
    T2M_UP_RECONNECTING,
    T2M_UP_AUTH_FAILED,
};

/* "connecting", "authenticating", "subscribed", "reconnecting", "auth_failed" */
const char *t2m_upstream_state_name(enum t2m_up_state s);

/* Messages dropped before they become updates (junk, too large, bad tokens) are counted in the
 * stats passed to t2m_upstream_new and logged here; the bridge is not told. */
struct t2m_upstream_callbacks {
    /* A device_update that parsed (tokens valid; rejected fields already cleared). */
    void (*update)(void *user, unsigned idx, const struct t2m_update *u);
    /* A state transition (called once per transition, not per retry). connection_id is set from
     * `welcome` on; code/message from the last `error` (0 / NULL when none). */
    void (*state)(void *user, unsigned idx, enum t2m_up_state s, const char *connection_id,
                  int code, const char *message);
};

/* The client vhost all instances share (upstream.ca_file applies to it). NULL + err on failure. */
struct lws_vhost *t2m_upstream_vhost(struct lws_context *ctx, const struct t2m_config *cfg,
                                     char *err, size_t errlen);

/* Instance `idx` of cfg. Does not connect until t2m_upstream_start. */
struct t2m_upstream *t2m_upstream_new(struct lws_context *ctx, struct lws_vhost *vh,
                                      const struct t2m_config *cfg, unsigned idx,
                                      const struct t2m_upstream_callbacks *cb, void *user,
                                      struct t2m_stats *stats);
void t2m_upstream_start(struct t2m_upstream *up);
/* Back-pressure: stop / resume reading from the socket. The idle watchdog is off while paused. */
void t2m_upstream_pause(struct t2m_upstream *up, bool paused);
/* SIGHUP: re-reads the token file; reconnects when the token changed. */
void t2m_upstream_reload(struct t2m_upstream *up);
/* Closes the connection and stops retrying (shutdown). */
void t2m_upstream_stop(struct t2m_upstream *up);
enum t2m_up_state t2m_upstream_state(const struct t2m_upstream *up);
/* The exp claim (Unix seconds) of the access token in use, 0 when it carries none (SPEC 7). */
int64_t t2m_upstream_token_exp(const struct t2m_upstream *up);
void t2m_upstream_free(struct t2m_upstream *up);

#endif
