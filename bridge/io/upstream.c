/* upstream.c - the WebSocket client of one instance: connect, authenticate, keep alive,
 * reassemble, parse, reconnect. Everything time-based is an lws_sul timer on the loop. */
#include "upstream.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "backoff.h"
#include "files.h"
#include "jitter.h"
#include "log.h"
#include "refresh.h"
#include "token.h"
#include "text.h"

#define TXQ_LEN 16                         /* outgoing text messages waiting for WRITEABLE */
#define STAYED_UP_US (30 * LWS_US_PER_SEC) /* a connection this old resets the backoff */
#define WATCHDOG_US (LWS_US_PER_SEC / 2)

struct t2m_upstream {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws *wsi;
    const struct t2m_config *cfg;
    const struct t2m_instance_cfg *inst;
    unsigned idx;
    struct t2m_upstream_callbacks cb;
    void *user;
    struct t2m_stats *stats;

    char *token; /* secret: the access token in use */
    enum t2m_up_state state;
    bool started, stopping, paused, retried_401, rx_seen;
    bool authed;          /* `authenticated` received on the current connection */
    bool killed;          /* we dropped the current connection ourselves (and said why) */
    bool retry_scheduled; /* sul_retry is armed: a second "connection gone" adds nothing */
    struct t2m_repeat rep_drop[T2M_DROP_COUNT], rep_unauth;
    unsigned attempt;          /* failed attempts since the last connection that stayed up */
    lws_usec_t established_at; /* 0 while not established */
    lws_usec_t last_rx;
    char connection_id[128];
    int err_code;
    char err_msg[256];
    enum t2m_up_state pending_failure; /* state to enter when the connection closes */
    double pending_delay;              /* >= 0: forced retry delay for the next close */

    lws_sorted_usec_list_t sul_retry, sul_auth, sul_watchdog, sul_connect;

    /* Token refresh (instances[].refresh_token_file set): */
    struct t2m_refresh *refresh;        /* the call in flight, or NULL */
    char *refresh_token;                /* secret: read from the file at first use and on SIGHUP */
    bool want_refresh;                  /* the next connect waits for a successful refresh */
    unsigned refresh_attempt;           /* failed refreshes in a row */
    lws_sorted_usec_list_t sul_refresh; /* refresh ahead of ExpiresIn, or retry a failed one */

    char *rx; /* reassembly buffer, max_message_size + 1 */
    size_t rx_len;
    bool rx_overflow; /* current message is over the limit: discard to its end */

    char *txq[TXQ_LEN]; /* ring of malloc'd messages (LWS_PRE bytes of headroom each) */
    size_t txq_len[TXQ_LEN];
    unsigned tx_head, tx_count;

    struct t2m_parser *parser;
    struct t2m_message msg;
    int64_t token_exp; /* the access token's exp claim (SPEC 7), 0: none */
};

static const char *const state_names[] = {"connecting", "authenticating", "subscribed",
                                          "reconnecting", "auth_failed"};

const char *t2m_upstream_state_name(enum t2m_up_state s)
{
    return (unsigned)s <= T2M_UP_AUTH_FAILED ? state_names[s] : "unknown";
}

enum t2m_up_state t2m_upstream_state(const struct t2m_upstream *up)
{
    return up->state;
}

int64_t t2m_upstream_token_exp(const struct t2m_upstream *up)
{
    return up->token_exp;
}

/* Takes t (a malloc'd secret) as the access token; the old one is wiped. */
static void set_token(struct t2m_upstream *up, char *t)
{
    t2m_wipe_free(up->token);
    up->token = t;
    up->token_exp = t2m_token_exp(t);
}

/* Publishes a transition once; repeated retries in the same state say nothing. */
static void set_state(struct t2m_upstream *up, enum t2m_up_state s)
{
    if (up->state == s) return;
    up->state = s;
    T2M_INFO("upstream", "instance %s: %s%s%s", up->inst->id, t2m_upstream_state_name(s),
             up->err_code ? " after error " : "", up->err_code ? up->err_msg : "");
    if (up->cb.state)
        up->cb.state(up->user, up->idx, s, up->connection_id[0] ? up->connection_id : NULL,
                     up->err_code, up->err_code ? up->err_msg : NULL);
}

static void txq_clear(struct t2m_upstream *up)
{
    while (up->tx_count) {
        free(up->txq[up->tx_head]);
        up->tx_head = (up->tx_head + 1) % TXQ_LEN;
        up->tx_count--;
    }
}

/* Queues one text message and asks for WRITEABLE. When full, the oldest (a pong) goes. */
static void send_text(struct t2m_upstream *up, const char *text, size_t len)
{
    if (!up->wsi) return;
    if (up->tx_count == TXQ_LEN) {
        free(up->txq[up->tx_head]);
        up->tx_head = (up->tx_head + 1) % TXQ_LEN;
        up->tx_count--;
    }
    char *b = malloc(LWS_PRE + len + 1);
    if (!b) return;
    memcpy(b + LWS_PRE, text, len);
    unsigned slot = (up->tx_head + up->tx_count) % TXQ_LEN;
    up->txq[slot] = b;
    up->txq_len[slot] = len;
    up->tx_count++;
    lws_callback_on_writable(up->wsi);
}

static void connect_now(struct t2m_upstream *up);
static void start_refresh(struct t2m_upstream *up);

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_upstream *up = lws_container_of(sul, struct t2m_upstream, sul_retry);
    up->retry_scheduled = false;
    if (up->want_refresh)
        start_refresh(up); /* connects when it succeeds (or joins the one in flight) */
    else
        connect_now(up);
}

static bool refresh_configured(const struct t2m_upstream *up)
{
    return up->inst->refresh_token_file && up->inst->refresh_token_file[0];
}

static void refresh_ahead_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_upstream *up = lws_container_of(sul, struct t2m_upstream, sul_refresh);
    start_refresh(up);
}

static bool reload_token(struct t2m_upstream *up);

/* A refresh failed: back off (the upstream's schedule) and try again. A connect waiting for it
 * goes ahead instead when the access token file has meanwhile changed. */
static void refresh_failed(struct t2m_upstream *up)
{
    double delay = t2m_backoff_delay(up->refresh_attempt++, up->cfg->upstream.backoff_min,
                                     up->cfg->upstream.backoff_max, t2m_jitter());
    T2M_DEBUG("upstream", "instance %s: refresh again in %.2f s", up->inst->id, delay);
    if (up->want_refresh) {
        if (reload_token(up)) up->want_refresh = false;
        lws_sul_schedule(up->ctx, 0, &up->sul_retry, retry_cb,
                         (lws_usec_t)(delay * LWS_US_PER_SEC));
    } else {
        lws_sul_schedule(up->ctx, 0, &up->sul_refresh, refresh_ahead_cb,
                         (lws_usec_t)(delay * LWS_US_PER_SEC));
    }
}

static void refresh_done(void *user, struct t2m_refresh_result *res, const char *why)
{
    struct t2m_upstream *up = user;
    up->refresh = NULL;
    if (!res) {
        T2M_WARN("upstream", "instance %s: token refresh failed: %s", up->inst->id, why);
        refresh_failed(up);
        return;
    }
    up->refresh_attempt = 0;
    set_token(up, res->access_token);
    res->access_token = NULL;
    t2m_wipe_free(up->refresh_token);
    up->refresh_token = res->refresh_token;
    res->refresh_token = NULL;
    T2M_INFO("upstream", "instance %s: access token refreshed (expires in %.0f s)", up->inst->id,
             res->expires_in);
    /* Ahead of expiry, so a live connection never meets a 401 for an expired token. */
    if (res->expires_in > 0)
        lws_sul_schedule(up->ctx, 0, &up->sul_refresh, refresh_ahead_cb,
                         (lws_usec_t)(res->expires_in * 0.8 * LWS_US_PER_SEC));
    if (up->want_refresh) {
        up->want_refresh = false;
        /* While the rejected connection is still closing, its close schedules the connect. */
        if (!up->wsi && !up->stopping) connect_now(up);
    }
}

/* Trades the refresh token for a new access token (SPEC section 1), on the upstream vhost. */
static void start_refresh(struct t2m_upstream *up)
{
    if (up->refresh || up->stopping) return;
    lws_sul_cancel(&up->sul_refresh);
    if (!up->refresh_token) {
        char err[512];
        up->refresh_token = t2m_config_read_secret(up->inst->refresh_token_file, err, sizeof(err));
        if (!up->refresh_token) {
            T2M_WARN("upstream", "instance %s: %s", up->inst->id, err);
            refresh_failed(up);
            return;
        }
    }
    struct t2m_refresh_request req = {
        .url =
            up->cfg->upstream.refresh_url ? up->cfg->upstream.refresh_url : T2M_REFRESH_DEFAULT_URL,
        .access_token = up->token,
        .refresh_token = up->refresh_token,
        .refresh_token_file = up->inst->refresh_token_file,
        .tls_verify = up->cfg->upstream.tls_verify,
        .timeout = up->cfg->upstream.connect_timeout + up->cfg->upstream.auth_timeout,
    };
    T2M_INFO("upstream", "instance %s: refreshing the access token", up->inst->id);
    up->refresh = t2m_refresh_start(up->ctx, up->vh, &req, refresh_done, up);
    if (!up->refresh) refresh_failed(up);
}

/* After a failure or close: pick the delay (backoff with full jitter, or forced) and wait. */
static void schedule_retry(struct t2m_upstream *up)
{
    if (up->retry_scheduled) return;
    lws_sul_cancel(&up->sul_auth);
    lws_sul_cancel(&up->sul_watchdog);
    lws_sul_cancel(&up->sul_connect);
    txq_clear(up);
    up->wsi = NULL;
    if (up->stopping) return;
    /* Only a connection that stayed up proves the server well: then the backoff restarts, and a
     * later 401 may again reconnect at once (never every time: SPEC section 1). */
    if (up->established_at && lws_now_usecs() - up->established_at >= STAYED_UP_US) {
        up->attempt = 0;
        up->retried_401 = false;
    }
    up->established_at = 0;

    double delay;
    if (up->pending_delay >= 0) {
        delay = up->pending_delay;
    } else {
        delay = t2m_backoff_delay(up->attempt, up->cfg->upstream.backoff_min,
                                  up->cfg->upstream.backoff_max, t2m_jitter());
        up->attempt++;
    }
    up->pending_delay = -1;
    set_state(up, up->pending_failure);
    up->pending_failure = T2M_UP_RECONNECTING;
    up->stats->upstream_reconnects++;
    T2M_DEBUG("upstream", "instance %s: retry in %.2f s", up->inst->id, delay);
    up->retry_scheduled = true;
    lws_sul_schedule(up->ctx, 0, &up->sul_retry, retry_cb, (lws_usec_t)(delay * LWS_US_PER_SEC));
}

/* Drops the live connection from a timer: lws closes it and CLIENT_CLOSED follows. */
static void kill_connection(struct t2m_upstream *up, const char *why)
{
    T2M_WARN("upstream", "instance %s: %s, reconnecting", up->inst->id, why);
    up->killed = true;
    if (up->wsi) lws_set_timeout(up->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void connect_timeout_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_upstream *up = lws_container_of(sul, struct t2m_upstream, sul_connect);
    kill_connection(up, "connect timeout");
}

static void auth_timeout_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_upstream *up = lws_container_of(sul, struct t2m_upstream, sul_auth);
    kill_connection(up, "no authenticated reply within auth_timeout");
}

/* The idle watchdog: a frame seen since the last tick is proof of life (and tells lws, which
 * otherwise only counts PONGs); none for idle_timeout means a dead or half-open connection. */
static void watchdog_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_upstream *up = lws_container_of(sul, struct t2m_upstream, sul_watchdog);
    lws_usec_t now = lws_now_usecs();
    if (up->rx_seen || up->paused) {
        up->rx_seen = false;
        up->last_rx = now;
        if (up->wsi) lws_validity_confirmed(up->wsi);
    } else if (now - up->last_rx > (lws_usec_t)(up->cfg->upstream.idle_timeout * LWS_US_PER_SEC)) {
        kill_connection(up, "no frame within idle_timeout");
        return;
    }
    lws_sul_schedule(up->ctx, 0, &up->sul_watchdog, watchdog_cb, WATCHDOG_US);
}

static void connect_now(struct t2m_upstream *up)
{
    up->retry_scheduled = false;
    up->killed = false;
    lws_sul_cancel(&up->sul_retry);
    char scheme[16], host[256], path[1024];
    int port = 0;
    if (t2m_url_parse(up->cfg->upstream.url, scheme, sizeof(scheme), host, sizeof(host), &port,
                      path, sizeof(path)) != 0) {
        T2M_ERROR("upstream", "bad upstream.url");
        return;
    }
    bool tls = strcmp(scheme, "wss") == 0;
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = up->ctx;
    ci.vhost = up->vh;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.ietf_version_or_minus_one = -1;
    ci.local_protocol_name = "t2m-upstream";
    ci.opaque_user_data = up;
    ci.pwsi = &up->wsi;
    /* The token goes to the configured host only (SPEC section 1): a redirect is a failure. */
    ci.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    if (tls) {
        ci.ssl_connection |= LCCSCF_USE_SSL;
        if (!up->cfg->upstream.tls_verify) {
            T2M_WARN("upstream",
                     "instance %s: upstream.tls_verify = false: the server's "
                     "certificate is NOT checked",
                     up->inst->id);
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
        }
    }
    up->rx_len = 0;
    up->rx_overflow = false;
    up->connection_id[0] = '\0';
    T2M_DEBUG("upstream", "instance %s: connecting to %s:%d", up->inst->id, host, port);
    lws_sul_schedule(up->ctx, 0, &up->sul_connect, connect_timeout_cb,
                     (lws_usec_t)(up->cfg->upstream.connect_timeout * LWS_US_PER_SEC));
    /* NULL can come back with no error callback (LIBRARY-NOTES.md): retry here too, unless the
     * wsi's destruction already did. */
    if (!lws_client_connect_via_info(&ci)) {
        T2M_DEBUG("upstream", "instance %s: connect to %s:%d failed at once", up->inst->id, host,
                  port);
        up->wsi = NULL;
        schedule_retry(up);
    }
}

static void on_established(struct t2m_upstream *up)
{
    lws_sul_cancel(&up->sul_connect);
    up->established_at = lws_now_usecs();
    up->last_rx = up->established_at;
    up->rx_seen = false;
    up->authed = false;
    up->err_code = 0;
    up->err_msg[0] = '\0';
    set_state(up, T2M_UP_AUTHENTICATING);

    char buf[16384];
    struct t2m_auth a = {
        .access_token = up->token,
        .instance_id = up->inst->id,
        .client_id = up->inst->client_id,
        .device_token = up->inst->device_token,
        .timezone = up->cfg->units.timezone,
    };
    size_t n = t2m_protocol_render_auth(buf, sizeof(buf), &a);
    if (n) send_text(up, buf, n);
    explicit_bzero(buf, sizeof(buf));
    lws_sul_schedule(up->ctx, 0, &up->sul_auth, auth_timeout_cb,
                     (lws_usec_t)(up->cfg->upstream.auth_timeout * LWS_US_PER_SEC));
    lws_sul_schedule(up->ctx, 0, &up->sul_watchdog, watchdog_cb, WATCHDOG_US);
}

/* Re-reads the token file; returns true when the token changed. */
static bool reload_token(struct t2m_upstream *up)
{
    if (!up->inst->access_token_file || !up->inst->access_token_file[0]) return false;
    char err[512];
    char *t = t2m_config_read_secret(up->inst->access_token_file, err, sizeof(err));
    if (!t) {
        T2M_WARN("upstream", "instance %s: %s", up->inst->id, err);
        return false;
    }
    bool changed = strcmp(t, up->token) != 0;
    set_token(up, t);
    return changed;
}

/* Text that came from the network may quote a secret back (an error message with the token in
 * it): every secret the process holds is cut out before it is logged or published. */
static void scrub(struct t2m_upstream *up, char *text)
{
    const struct t2m_config *cfg = up->cfg;
    size_t n = 0;
    const char *secrets[cfg->n_instances + 4];
    secrets[n++] = up->token;
    secrets[n++] = up->refresh_token;
    secrets[n++] = cfg->mqtt.password;
    secrets[n++] = cfg->mqtt.username; /* not secret in itself, but often one half of a pair */
    for (size_t i = 0; i < cfg->n_instances; i++)
        secrets[n++] = cfg->instances[i].access_token;
    t2m_redact(text, secrets, n);
}

/* Logs a drop the first time and then once a minute with the count (SPEC section 8). */
static void log_drop(struct t2m_upstream *up, struct t2m_repeat *r, const char *what,
                     const char *why)
{
    uint64_t n = t2m_repeat_hit(r, lws_now_usecs() / 1000);
    if (n == 1)
        T2M_WARN("upstream", "instance %s: %s: %s", up->inst->id, what, why);
    else if (n > 1)
        T2M_WARN("upstream", "instance %s: %s: %s (%llu times in the last minute)", up->inst->id,
                 what, why, (unsigned long long)n);
}

/* An `error` message from the server (SPEC section 1 and 8). */
static void on_error_msg(struct t2m_upstream *up, int code, const char *message)
{
    up->err_code = code;
    snprintf(up->err_msg, sizeof(up->err_msg), "%s", message);
    scrub(up, up->err_msg);
    T2M_WARN("upstream", "instance %s: server error %d: %s", up->inst->id, code, up->err_msg);
    switch (code) {
    case 401:
        /* JWT expired: a fresh token (refreshed, or re-read), then reconnect at once, once. */
        if (refresh_configured(up))
            up->want_refresh = true;
        else
            reload_token(up);
        if (!up->retried_401) {
            up->retried_401 = true;
            up->pending_delay = 0;
        }
        break;
    case 403:
    case 404:
        up->pending_failure = T2M_UP_AUTH_FAILED;
        up->pending_delay = up->cfg->upstream.backoff_max;
        break;
    default: /* 400, 408, 500, 503: back off */
        break;
    }
    if (code >= 401 && up->wsi)
        lws_set_timeout(up->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void handle_message(struct t2m_upstream *up, const char *buf, size_t len)
{
    char why[128];
    struct t2m_message *m = &up->msg;
    enum t2m_parse_result r = t2m_protocol_parse(up->parser, buf, len, m, why, sizeof(why));
    if (r != T2M_PARSE_OK) {
        enum t2m_drop_reason dr =
            r == T2M_PARSE_INVALID_TOKEN ? T2M_DROP_INVALID_TOKEN : T2M_DROP_INVALID_JSON;
        up->stats->dropped[dr]++;
        scrub(up, why);
        log_drop(up, &up->rep_drop[dr], "message dropped", why);
        return;
    }
    switch (m->type) {
    case T2M_MSG_DEVICE_UPDATE:
        if (!up->authed) { /* SPEC section 1: data flows only after `authenticated` */
            up->stats->dropped[T2M_DROP_UNAUTHENTICATED]++;
            log_drop(up, &up->rep_unauth, "device_update before authenticated dropped",
                     "the server skipped authentication");
            break;
        }
        if (up->state == T2M_UP_AUTHENTICATING) {
            lws_sul_cancel(&up->sul_auth);
            set_state(up, T2M_UP_SUBSCRIBED);
        }
        up->cb.update(up->user, up->idx, &m->update);
        break;
    case T2M_MSG_PING: {
        char pong[64];
        /* lws_now_usecs is monotonic; the server wants wall-clock Unix ms. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        size_t n = t2m_protocol_render_pong(pong, sizeof(pong),
                                            (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (n) send_text(up, pong, n);
        break;
    }
    case T2M_MSG_AUTHENTICATED:
        lws_sul_cancel(&up->sul_auth);
        up->authed = true;
        T2M_DEBUG("upstream", "instance %s: authenticated", up->inst->id);
        break;
    case T2M_MSG_WELCOME:
        snprintf(up->connection_id, sizeof(up->connection_id), "%s", m->connection_id);
        scrub(up, up->connection_id);
        T2M_INFO("upstream", "instance %s: welcome, connection id %s", up->inst->id,
                 up->connection_id);
        break;
    case T2M_MSG_SUBSCRIBED:
        lws_sul_cancel(&up->sul_auth);
        scrub(up, m->topic);
        T2M_DEBUG("upstream", "instance %s: subscribed to %s", up->inst->id, m->topic);
        set_state(up, T2M_UP_SUBSCRIBED);
        break;
    case T2M_MSG_ERROR:
        on_error_msg(up, m->error_code, m->error_message);
        break;
    case T2M_MSG_UNKNOWN:
        scrub(up, m->type_name);
        T2M_DEBUG("upstream", "instance %s: ignoring message of type \"%s\"", up->inst->id,
                  m->type_name);
        break;
    }
}

/* Reassembles fragments and chunks into whole messages, capped at max_message_size. */
static void on_receive(struct t2m_upstream *up, struct lws *wsi, const char *in, size_t len)
{
    up->rx_seen = true;
    bool done = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    size_t max = (size_t)up->cfg->upstream.max_message_size;

    if (lws_frame_is_binary(wsi) && up->rx_len == 0 && !up->rx_overflow) {
        /* The protocol is text only: a binary message is junk. Discard it whole. */
        up->rx_overflow = true;
        up->stats->dropped[T2M_DROP_INVALID_JSON]++;
        log_drop(up, &up->rep_drop[T2M_DROP_INVALID_JSON], "message dropped", "binary frame");
    }
    if (!up->rx_overflow) {
        if (done && up->rx_len == 0) { /* the common case: one chunk, no copy */
            if (len > max) goto too_large;
            handle_message(up, in, len);
            return;
        }
        if (up->rx_len + len > max) goto too_large;
        memcpy(up->rx + up->rx_len, in, len);
        up->rx_len += len;
    }
    if (done) {
        if (!up->rx_overflow) handle_message(up, up->rx, up->rx_len);
        up->rx_len = 0;
        up->rx_overflow = false;
    }
    return;

too_large:
    up->stats->dropped[T2M_DROP_TOO_LARGE]++;
    char why[96];
    snprintf(why, sizeof(why), "over upstream.max_message_size (%zu bytes)", max);
    log_drop(up, &up->rep_drop[T2M_DROP_TOO_LARGE], "message dropped", why);
    up->rx_len = 0;
    up->rx_overflow = !done;
}

static int on_writeable(struct t2m_upstream *up, struct lws *wsi)
{
    if (!up->tx_count) return 0;
    unsigned slot = up->tx_head;
    char *b = up->txq[slot];
    size_t len = up->txq_len[slot];
    int n = lws_write(wsi, (unsigned char *)b + LWS_PRE, len, LWS_WRITE_TEXT);
    explicit_bzero(b + LWS_PRE, len); /* the auth message holds the token */
    free(b);
    up->tx_head = (up->tx_head + 1) % TXQ_LEN;
    up->tx_count--;
    if (n < (int)len) return -1;
    if (up->tx_count) lws_callback_on_writable(wsi);
    return 0;
}

/* Why a connection attempt failed, in words an operator can act on. A redirect gets its own:
 * lws reports it only as "not 101". */
static void connection_error_reason(struct lws *wsi, const void *in, char *why, size_t n)
{
    unsigned status = lws_http_client_http_response(wsi);
    if (status >= 300 && status < 400) {
        char loc[256] = "";
        if (lws_hdr_copy(wsi, loc, (int)sizeof(loc), WSI_TOKEN_HTTP_LOCATION) < 0) loc[0] = '\0';
        for (char *c = loc; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?';
        snprintf(why, n,
                 "the server answered the upgrade with HTTP %u redirect%s%s: not followed (the "
                 "access token goes to upstream.url's host only; configure the new URL)",
                 status, loc[0] ? " to " : "", loc);
        return;
    }
    snprintf(why, n, "%s", in ? (const char *)in : "(no reason)");
}

static int callback_upstream(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                             void *in, size_t len)
{
    struct t2m_upstream *up = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        if (!up || wsi != up->wsi) break;
        char why[512];
        connection_error_reason(wsi, in, why, sizeof(why));
        scrub(up, why);
        if (up->state != T2M_UP_RECONNECTING || up->attempt == 0)
            T2M_WARN("upstream", "instance %s: connection failed: %s", up->inst->id, why);
        else
            T2M_DEBUG("upstream", "instance %s: connection failed: %s", up->inst->id, why);
        up->wsi = NULL;
        schedule_retry(up);
        break;
    }
    case LWS_CALLBACK_WSI_DESTROY:
        /* Every wsi of this vhost ends here, the token refresh's too (its opaque pointer is not
         * ours). lws frees a connection that timed out in its handshake (TLS, or an upgrade that
         * is never answered) without any other callback: this is the one sure "it is gone". */
        if (lws_get_protocol(wsi) && lws_get_protocol(wsi)->callback != callback_upstream) break;
        if (up && wsi == up->wsi) {
            if (!up->killed)
                T2M_WARN("upstream", "instance %s: connection dropped during the handshake",
                         up->inst->id);
            up->wsi = NULL;
            schedule_retry(up);
        }
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (up) on_established(up);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (up) on_receive(up, wsi, in, len);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (up) return on_writeable(up, wsi);
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (up && len >= 2) {
            const unsigned char *p = in;
            T2M_INFO("upstream", "instance %s: server closed the connection (code %u)",
                     up->inst->id, (unsigned)(p[0] << 8 | p[1]));
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (up && wsi == up->wsi) {
            if (up->state == T2M_UP_SUBSCRIBED)
                T2M_INFO("upstream", "instance %s: connection closed", up->inst->id);
            else if (!up->killed && !up->err_code)
                T2M_WARN("upstream", "instance %s: connection closed before subscribed",
                         up->inst->id);
            up->wsi = NULL;
            schedule_retry(up);
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols upstream_protocols[] = {
    /* 64 KiB per read: a burst of updates costs one recv() per ~300 of them, not per ~20 */
    {"t2m-upstream", callback_upstream, 0, 65536, 0, NULL, 0},
    {T2M_REFRESH_PROTOCOL, t2m_refresh_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct lws_vhost *t2m_upstream_vhost(struct lws_context *ctx, const struct t2m_config *cfg,
                                     char *err, size_t errlen)
{
    /* lws' own idle policy: WS PING after a third of idle_timeout without proof of life, hang
     * up at idle_timeout; proof is any frame (lws_validity_confirmed from the watchdog). */
    static lws_retry_bo_t policy;
    policy.secs_since_valid_ping = (uint16_t)(cfg->upstream.idle_timeout / 3 + 1);
    policy.secs_since_valid_hangup = (uint16_t)(cfg->upstream.idle_timeout + 5);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "upstream";
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = upstream_protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.retry_and_idle_policy = &policy;
    info.connect_timeout_secs = (unsigned)(cfg->upstream.connect_timeout + 0.999);
    if (cfg->upstream.ca_file && cfg->upstream.ca_file[0])
        info.client_ssl_ca_filepath = cfg->upstream.ca_file;
    struct lws_vhost *vh = lws_create_vhost(ctx, &info);
    if (!vh)
        snprintf(err, errlen, "cannot create the upstream client (TLS setup failed? ca_file %s)",
                 cfg->upstream.ca_file && cfg->upstream.ca_file[0] ? cfg->upstream.ca_file
                                                                   : "(system)");
    return vh;
}

struct t2m_upstream *t2m_upstream_new(struct lws_context *ctx, struct lws_vhost *vh,
                                      const struct t2m_config *cfg, unsigned idx,
                                      const struct t2m_upstream_callbacks *cb, void *user,
                                      struct t2m_stats *stats)
{
    struct t2m_upstream *up = calloc(1, sizeof(*up));
    if (!up) return NULL;
    up->ctx = ctx;
    up->vh = vh;
    up->cfg = cfg;
    up->inst = &cfg->instances[idx];
    up->idx = idx;
    up->cb = *cb;
    up->user = user;
    up->stats = stats;
    up->state = T2M_UP_CONNECTING;
    up->pending_failure = T2M_UP_RECONNECTING;
    up->pending_delay = -1;
    set_token(up, strdup(up->inst->access_token ? up->inst->access_token : ""));
    up->rx = malloc((size_t)cfg->upstream.max_message_size + 1);
    up->parser = t2m_parser_new(T2M_PROTOCOL_MAX_DEPTH);
    if (!up->token || !up->rx || !up->parser) {
        t2m_upstream_free(up);
        return NULL;
    }
    return up;
}

void t2m_upstream_start(struct t2m_upstream *up)
{
    up->started = true;
    if (up->cb.state) up->cb.state(up->user, up->idx, up->state, NULL, 0, NULL);
    connect_now(up);
}

void t2m_upstream_pause(struct t2m_upstream *up, bool paused)
{
    if (up->paused == paused) return;
    up->paused = paused;
    if (up->wsi) lws_rx_flow_control(up->wsi, paused ? 0 : 1);
}

void t2m_upstream_reload(struct t2m_upstream *up)
{
    t2m_wipe_free(up->refresh_token); /* re-read from its file at the next refresh */
    up->refresh_token = NULL;
    if (reload_token(up)) {
        T2M_INFO("upstream", "instance %s: access token changed, reconnecting", up->inst->id);
        up->pending_delay = 0;
        if (up->wsi)
            lws_set_timeout(up->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        else if (up->started && !up->stopping)
            connect_now(up);
    }
}

void t2m_upstream_stop(struct t2m_upstream *up)
{
    up->stopping = true;
    t2m_refresh_cancel(up->refresh);
    up->refresh = NULL;
    lws_sul_cancel(&up->sul_refresh);
    lws_sul_cancel(&up->sul_retry);
    lws_sul_cancel(&up->sul_auth);
    lws_sul_cancel(&up->sul_watchdog);
    lws_sul_cancel(&up->sul_connect);
    if (up->wsi) lws_set_timeout(up->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void t2m_upstream_free(struct t2m_upstream *up)
{
    if (!up) return;
    t2m_refresh_cancel(up->refresh);
    lws_sul_cancel(&up->sul_refresh);
    t2m_wipe_free(up->refresh_token);
    lws_sul_cancel(&up->sul_retry);
    lws_sul_cancel(&up->sul_auth);
    lws_sul_cancel(&up->sul_watchdog);
    lws_sul_cancel(&up->sul_connect);
    if (up->wsi) lws_set_opaque_user_data(up->wsi, NULL);
    txq_clear(up);
    t2m_wipe_free(up->token);
    free(up->rx);
    t2m_parser_free(up->parser);
    free(up);
}
