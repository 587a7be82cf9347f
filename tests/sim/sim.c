/* sim.c - telematics-sim: a libwebsockets server speaking the telematics real-time upstream
 * protocol (SPEC.md section 1), with realistic tracks, scripted misbehaviour, a plain-HTTP
 * control channel on the same port, and bench modes. Single-threaded: every time-based thing is
 * an lws_sul timer on the one service loop. README.md documents every option. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libwebsockets.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sim_hostile.h"
#include "sim_track.h"

#define OUTQ_MAX 100000        /* queued messages per connection before updates are dropped */
#define RX_MAX (1024 * 1024)   /* largest client message we reassemble */
#define MAX_PER_WRITEABLE 4096 /* messages per WRITEABLE, so one client cannot starve others */
#define GEN_TICK_US 10000      /* generator period at high rates: batch per 10 ms tick */
#define MAX_DEVICES 1000000

struct out_msg {
    struct lws_dll2 node;
    size_t len;
    bool binary;
    bool update; /* counts toward updates_sent and the *_after limits */
    bool blast;  /* the connection's reusable blast frame: never freed by the writer */
    unsigned char data[];
};

enum conn_state { CS_AUTH_WAIT, CS_STREAM, CS_SILENT, CS_CLOSING };

struct conn {
    struct lws_dll2 node; /* in g.conns (WebSocket connections only) */
    struct lws *wsi;
    bool is_ws;
    enum conn_state state;
    bool auth_ignored;
    bool authed;
    uint64_t seq;
    char id[37];
    lws_sorted_usec_list_t sul_auth, sul_ping;
    struct lws_dll2_owner outq;
    struct out_msg *cur;
    size_t cur_off;
    unsigned char *rx;
    size_t rx_len, rx_cap;
    bool rx_too_big;
    uint64_t updates_sent, stream_msgs;
    uint64_t close_at, abort_at, silent_at; /* in updates_sent; 0 = off */
    unsigned junk_kind;
    int device_idx;     /* single-device mode: the only device streamed; -1 = all */
    char *device_token; /* single-device mode with a token the sim did not know */
    int close_code;
    uint64_t blast_total, blast_next, blast_sent;
    long long blast_base_s;
    lws_usec_t blast_start;
    struct out_msg *blast_msg;
    size_t blast_cap;
    /* HTTP (control channel) */
    unsigned char *body;
    size_t body_len;
};

struct settings {
    uint64_t close_after, abort_after, silent_after;
    bool no_auth_reply, bad_tokens, stamp_ms;
    int auth_error;
    int auth_then_error;    /* authenticated, then this error and close */
    bool early_update;      /* one device_update before `authenticated` */
    double trip_seconds;    /* trips last trip_seconds..2x; 0 = 600..2400 s */
    double park_seconds;    /* parked park_seconds..2x between trips, no updates; 0 = never */
    uint64_t partial_every; /* every Nth update lacks fields (kinds rotate); 0 = never */
    uint64_t junk_every, fragment, huge_frame, blast;
    double rate, ping_interval, auth_timeout;
    unsigned devices;
    char *token;
    char *instance;
};

struct blast_tpl {
    char *text;   /* rendered update with the Timestamp digits cut out */
    size_t split; /* where the Timestamp digits go */
    size_t len;
};

static struct {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct settings set;
    const char *token_file;
    uint64_t seed;
    int verbose;
    volatile sig_atomic_t interrupted;
    struct lws_dll2_owner conns;
    struct sim_device *devs;
    unsigned ndev_alloc;
    unsigned rr;
    uint64_t bad_counter;
    uint64_t partial_counter;
    struct sim_rng junk_rng;
    lws_sorted_usec_list_t sul_gen;
    lws_usec_t rate_epoch;
    uint64_t gen_since_epoch;
    struct blast_tpl *tpl;
    unsigned ntpl;
    size_t tpl_max;
    json_object *last_auth;
    struct {
        uint64_t connections, active, authenticated, authenticated_active, auth_failures,
            updates_sent, pongs, pings_sent, dropped, junk_sent, blasts_done;
        long long last_pong_timestamp;
    } st;
} g;

#define LOGV(...)                                                                                  \
    do {                                                                                           \
        if (g.verbose) fprintf(stderr, "telematics-sim: " __VA_ARGS__);                            \
    } while (0)

static long long unix_s(void)
{
    return (long long)time(NULL);
}

static long long unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *error_text(int code)
{
    switch (code) {
    case 400:
        return "Invalid JSON message";
    case 401:
        return "JWT Token Expired";
    case 403:
        return "Access Denied";
    case 404:
        return "Instance Not Found";
    case 408:
        return "Authentication Timeout";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* ---- devices ---- */

static int ensure_devices(unsigned n)
{
    if (n > g.ndev_alloc) {
        struct sim_device *d = realloc(g.devs, n * sizeof(*d));
        if (!d) return -1;
        g.devs = d;
        for (unsigned i = g.ndev_alloc; i < n; i++) {
            sim_device_init(&g.devs[i], g.seed, i);
            g.devs[i].trip_s = g.set.trip_seconds;
            g.devs[i].park_s = g.set.park_seconds;
        }
        g.ndev_alloc = n;
    }
    g.set.devices = n;
    return 0;
}

static int find_device(const char *token)
{
    for (unsigned i = 0; i < g.set.devices; i++)
        if (strcmp(g.devs[i].token, token) == 0) return (int)i;
    return -1;
}

/* ---- output queue ---- */

static struct out_msg *msg_new(const void *data, size_t len, bool binary, bool update)
{
    struct out_msg *m = malloc(sizeof(*m) + LWS_PRE + len + 1);
    if (!m) return NULL;
    memset(&m->node, 0, sizeof(m->node));
    m->len = len;
    m->binary = binary;
    m->update = update;
    m->blast = false;
    if (len) memcpy(m->data + LWS_PRE, data, len);
    return m;
}

static struct out_msg *conn_pop(struct conn *c)
{
    /* lws_dll2_remove, compiled in the library, unlinks d from c->outq where the analyzer
     * cannot see it: it takes the next head for the entry just freed. The head is read here
     * rather than through lws_dll2_get_head, whose report would land in the library's header. */
    /* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
    struct lws_dll2 *d = c->outq.head;
    if (!d) return NULL;
    lws_dll2_remove(d);
    /* NOLINTEND(clang-analyzer-unix.Malloc) */
    return lws_container_of(d, struct out_msg, node);
}

static void conn_clear_queue(struct conn *c)
{
    struct out_msg *m;
    while ((m = conn_pop(c)))
        free(m);
}

static void conn_push(struct conn *c, const void *data, size_t len, bool binary, bool update)
{
    if (c->state == CS_SILENT || c->state == CS_CLOSING) return;
    if (c->outq.count >= OUTQ_MAX) {
        g.st.dropped++;
        return;
    }
    struct out_msg *m = msg_new(data, len, binary, update);
    if (!m) {
        g.st.dropped++;
        return;
    }
    lws_dll2_add_tail(&m->node, &c->outq);
    lws_callback_on_writable(c->wsi);
}

static void conn_push_str(struct conn *c, const char *s)
{
    conn_push(c, s, strlen(s), false, false);
}

/* Sends error `code` and then closes with a close frame once it is written. */
static void conn_fail(struct conn *c, int code)
{
    char buf[160];
    snprintf(buf, sizeof(buf), "{\"type\":\"error\",\"code\":%d,\"message\":\"%s\"}", code,
             error_text(code));
    conn_push_str(c, buf);
    c->state = CS_CLOSING;
    c->close_code = code >= 500 ? (code == 503 ? LWS_CLOSE_STATUS_GOINGAWAY
                                               : LWS_CLOSE_STATUS_UNEXPECTED_CONDITION)
                                : LWS_CLOSE_STATUS_POLICY_VIOLATION;
    lws_sul_cancel(&c->sul_auth);
    lws_sul_cancel(&c->sul_ping);
    lws_callback_on_writable(c->wsi);
}

/* TCP reset without a close frame or FIN: SO_LINGER 0 alone is not enough, because lws shuts
 * the socket down (FIN) before closing it. connect(AF_UNSPEC) dissolves the association at
 * once, which sends RST, and leaves the fd valid for lws to close later. */
static void conn_reset(struct conn *c)
{
    int fd = lws_get_socket_fd(c->wsi);
    if (fd >= 0) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        struct sockaddr sa = {.sa_family = AF_UNSPEC};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        if (connect(fd, &sa, sizeof(sa)) < 0 && g.verbose)
            fprintf(stderr, "telematics-sim: reset: %s\n", strerror(errno));
    }
    conn_clear_queue(c);
    c->state = CS_SILENT;
    lws_sul_cancel(&c->sul_auth);
    lws_sul_cancel(&c->sul_ping);
}

static void conn_go_silent(struct conn *c)
{
    LOGV("conn %s: silent after %" PRIu64 " updates\n", c->id, c->updates_sent);
    conn_clear_queue(c);
    c->state = CS_SILENT;
    lws_sul_cancel(&c->sul_ping);
}

static void conn_set_limits(struct conn *c)
{
    c->close_at = g.set.close_after ? c->updates_sent + g.set.close_after : 0;
    c->abort_at = g.set.abort_after ? c->updates_sent + g.set.abort_after : 0;
    c->silent_at = g.set.silent_after ? c->updates_sent + g.set.silent_after : 0;
}

/* Queues one device update, preceded by a junk message when this is a --junk-every slot. */
static void conn_push_update(struct conn *c, const char *text, size_t len)
{
    if (c->state != CS_STREAM) return;
    c->stream_msgs++;
    if (g.set.junk_every && c->stream_msgs % g.set.junk_every == 0) {
        size_t jl;
        bool bin;
        unsigned char *j = sim_render_junk(c->junk_kind++, 0, text, &jl, &bin, &g.junk_rng);
        if (j) {
            conn_push(c, j, jl, bin, false);
            g.st.junk_sent++;
            free(j);
        }
        c->stream_msgs++;
    }
    conn_push(c, text, len, false, true);
}

/* ---- generator ---- */

static bool wants_device(const struct conn *c, unsigned d)
{
    return c->state == CS_STREAM && !c->blast_total &&
           (c->device_idx < 0 || c->device_idx == (int)d);
}

static void generate_one(lws_usec_t now)
{
    if (!g.set.devices) return;
    unsigned d = g.rr++ % g.set.devices;
    bool any = false;
    lws_start_foreach_dll(struct lws_dll2 *, p, lws_dll2_get_head(&g.conns))
    {
        if (wants_device(lws_container_of(p, struct conn, node), d)) {
            any = true;
            break;
        }
    }
    lws_end_foreach_dll(p);
    if (!any) return;

    struct sim_device *dev = &g.devs[d];
    sim_device_advance_to(dev, now);
    if (sim_device_parked(dev)) return; /* engine off: a parked car reports nothing */
    long long ts = g.set.stamp_ms ? unix_ms() : unix_s();
    const char *token = NULL;
    if (g.set.bad_tokens && g.bad_counter++ % 3 == 2)
        token = sim_bad_token((unsigned)(g.bad_counter / 3));
    char base[4096], own[4096];
    unsigned partial = 0; /* 0: a whole update, else 1 + the partial kind */
    if (g.set.partial_every && ++g.partial_counter % g.set.partial_every == 0)
        partial = 1 + (unsigned)(g.partial_counter / g.set.partial_every) % SIM_PARTIAL_KINDS;
    int bl = partial ? sim_render_partial(base, sizeof(base), dev, token, ts, partial - 1)
                     : sim_render_update(base, sizeof(base), dev, token, ts);
    if (bl < 0) return;
    lws_start_foreach_dll(struct lws_dll2 *, p, lws_dll2_get_head(&g.conns))
    {
        /* No `continue` in here: lws_end_foreach_dll holds the step to the next node. */
        struct conn *c = lws_container_of(p, struct conn, node);
        if (wants_device(c, d) && c->device_token) {
            int ol = partial ? sim_render_partial(own, sizeof(own), dev, c->device_token, ts,
                                                  partial - 1)
                             : sim_render_update(own, sizeof(own), dev, c->device_token, ts);
            if (ol >= 0) conn_push_update(c, own, (size_t)ol);
        } else if (wants_device(c, d)) {
            conn_push_update(c, base, (size_t)bl);
        }
    }
    lws_end_foreach_dll(p);
}

static void gen_schedule(lws_usec_t now);

/* Paced sending: emits however many updates the rate says are due since the epoch, so the
 * long-run rate is exact whatever the tick jitter; ticks every 10 ms at high rates. */
static void gen_tick(lws_sorted_usec_list_t *sul)
{
    lws_usec_t now = lws_now_usecs();
    if (g.set.rate <= 0) return;
    uint64_t due = (uint64_t)(g.set.rate * (double)(now - g.rate_epoch) / 1e6);
    uint64_t burst = (uint64_t)fmax(2.0, g.set.rate);
    /* After a stall (debugger, suspended process) skip ahead instead of flooding. */
    if (due > g.gen_since_epoch + burst) g.gen_since_epoch = due - burst;
    while (g.gen_since_epoch < due) {
        generate_one(now);
        g.gen_since_epoch++;
    }
    gen_schedule(now);
}

static void gen_schedule(lws_usec_t now)
{
    if (!g.ctx || g.set.rate <= 0) {
        lws_sul_cancel(&g.sul_gen);
        return;
    }
    lws_usec_t next =
        g.rate_epoch + (lws_usec_t)((double)(g.gen_since_epoch + 1) * 1e6 / g.set.rate);
    lws_usec_t wait = next - now;
    if (g.set.rate >= 100 || wait < 1000)
        wait = wait < GEN_TICK_US && g.set.rate >= 100 ? GEN_TICK_US : (wait < 1000 ? 1000 : wait);
    lws_sul_schedule(g.ctx, 0, &g.sul_gen, gen_tick, wait);
}

static void gen_restart(void)
{
    if (!g.ctx) return;
    g.rate_epoch = lws_now_usecs();
    g.gen_since_epoch = 0;
    gen_schedule(g.rate_epoch);
}

/* ---- blast ---- */

static int blast_templates(void)
{
    if (g.tpl && g.ntpl == g.set.devices) return 0;
    for (unsigned i = 0; g.tpl && i < g.ntpl; i++)
        free(g.tpl[i].text);
    free(g.tpl);
    g.ntpl = 0;
    g.tpl_max = 0;
    g.tpl = calloc(g.set.devices ? g.set.devices : 1, sizeof(*g.tpl));
    if (!g.tpl) return -1;
    for (unsigned i = 0; i < g.set.devices; i++) {
        char buf[4096];
        int n = sim_render_update(buf, sizeof(buf), &g.devs[i], NULL, 0);
        char *at = n > 0 ? strstr(buf, "\"Timestamp\":0") : NULL;
        if (!at) return -1;
        size_t split = (size_t)(at - buf) + 12;
        memmove(buf + split, buf + split + 1, (size_t)n - split);
        g.tpl[i].text = strdup(buf);
        if (!g.tpl[i].text) return -1;
        g.tpl[i].split = split;
        g.tpl[i].len = (size_t)n - 1;
        if (g.tpl[i].len > g.tpl_max) g.tpl_max = g.tpl[i].len;
        g.ntpl = i + 1;
    }
    return 0;
}

static void blast_start(struct conn *c)
{
    if (!g.set.blast || !g.set.devices || blast_templates() < 0) return;
    c->blast_cap = g.tpl_max + 24;
    c->blast_msg = malloc(sizeof(struct out_msg) + LWS_PRE + c->blast_cap);
    if (!c->blast_msg) return;
    memset(&c->blast_msg->node, 0, sizeof(c->blast_msg->node));
    c->blast_msg->binary = false;
    c->blast_msg->update = true;
    c->blast_msg->blast = true;
    c->blast_total = g.set.blast;
    c->blast_base_s = unix_s() - (long long)(c->blast_total / g.ntpl) - 1;
    c->blast_start = lws_now_usecs();
    lws_callback_on_writable(c->wsi);
}

static struct out_msg *blast_next(struct conn *c)
{
    uint64_t i = c->blast_next++;
    const struct blast_tpl *t = &g.tpl[i % g.ntpl];
    long long ts = g.set.stamp_ms ? unix_ms() : c->blast_base_s + (long long)(i / g.ntpl);
    char digits[24];
    int dl = snprintf(digits, sizeof(digits), "%lld", ts);
    unsigned char *p = c->blast_msg->data + LWS_PRE;
    memcpy(p, t->text, t->split);
    memcpy(p + t->split, digits, (size_t)dl);
    memcpy(p + t->split + dl, t->text + t->split, t->len - t->split);
    c->blast_msg->len = t->len + (size_t)dl;
    return c->blast_msg;
}

/* ---- writing ---- */

/* Writes the current message, or its next fragment in --fragment mode. Returns -1 on error,
 * 0 when more of it remains, 1 when it is complete. */
static int write_cur(struct conn *c)
{
    struct out_msg *m = c->cur;
    size_t left = m->len - c->cur_off, n = left;
    if (g.set.fragment && n > g.set.fragment) n = g.set.fragment;
    int flags =
        c->cur_off ? LWS_WRITE_CONTINUATION : (m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    if (n < left) flags |= LWS_WRITE_NO_FIN;
    /* lws writes the frame header into the bytes just before the payload; mid-message those are
     * payload already handed to lws (sent or copied into its buffer), so reusing them is safe. */
    if (lws_write(c->wsi, m->data + LWS_PRE + c->cur_off, n, (enum lws_write_protocol)flags) <
        (int)n)
        return -1;
    c->cur_off += n;
    return c->cur_off == m->len;
}

/* Accounting after a complete message; returns -1 when the connection must end now. */
static int msg_done(struct conn *c)
{
    struct out_msg *m = c->cur;
    bool update = m->update, blast = m->blast;
    if (!blast) free(m);
    c->cur = NULL;
    if (!update) return 0;
    c->updates_sent++;
    g.st.updates_sent++;
    if (blast && ++c->blast_sent == c->blast_total) {
        double el = (double)(lws_now_usecs() - c->blast_start) / 1e6;
        g.st.blasts_done++;
        fprintf(stderr,
                "telematics-sim: blast of %" PRIu64 " updates to %s finished in %.3f s "
                "(%.0f updates/s)\n",
                c->blast_total, c->id, el, el > 0 ? (double)c->blast_total / el : 0.0);
    }
    if (c->abort_at && c->updates_sent >= c->abort_at) {
        LOGV("conn %s: abort (TCP reset) after %" PRIu64 " updates\n", c->id, c->updates_sent);
        conn_reset(c);
        return -1;
    }
    if (c->close_at && c->updates_sent >= c->close_at) {
        LOGV("conn %s: close after %" PRIu64 " updates\n", c->id, c->updates_sent);
        conn_clear_queue(c);
        c->state = CS_CLOSING;
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"close-after", 11);
        return -1;
    }
    if (c->silent_at && c->updates_sent >= c->silent_at) conn_go_silent(c);
    return 0;
}

static int on_writeable(struct conn *c)
{
    if (c->state == CS_SILENT) return 0;
    for (int i = 0; i < MAX_PER_WRITEABLE; i++) {
        if (!c->cur) {
            c->cur = conn_pop(c);
            if (!c->cur && c->state == CS_STREAM && c->blast_next < c->blast_total)
                c->cur = blast_next(c);
            if (!c->cur) break;
            c->cur_off = 0;
        }
        int r = write_cur(c);
        if (r < 0) return -1;
        if (r == 1 && msg_done(c) < 0) return -1;
        if (c->state == CS_SILENT) return 0;
        if (lws_send_pipe_choked(c->wsi)) break;
    }
    if (c->cur || c->outq.count || (c->state == CS_STREAM && c->blast_next < c->blast_total)) {
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (c->state == CS_CLOSING) {
        const char *why =
            c->close_code == LWS_CLOSE_STATUS_POLICY_VIOLATION ? "auth failed" : "server error";
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code, (unsigned char *)why,
                         strlen(why));
        return -1;
    }
    return 0;
}

/* ---- timers ---- */

static void ping_fire(lws_sorted_usec_list_t *sul)
{
    struct conn *c = lws_container_of(sul, struct conn, sul_ping);
    if (c->state != CS_STREAM || g.set.ping_interval <= 0) return;
    conn_push_str(c, "{\"type\":\"ping\"}");
    g.st.pings_sent++;
    lws_sul_schedule(g.ctx, 0, &c->sul_ping, ping_fire, (lws_usec_t)(g.set.ping_interval * 1e6));
}

static void ping_start(struct conn *c)
{
    lws_sul_cancel(&c->sul_ping);
    if (g.set.ping_interval > 0 && c->state == CS_STREAM)
        lws_sul_schedule(g.ctx, 0, &c->sul_ping, ping_fire,
                         (lws_usec_t)(g.set.ping_interval * 1e6));
}

static void auth_timeout_fire(lws_sorted_usec_list_t *sul)
{
    struct conn *c = lws_container_of(sul, struct conn, sul_auth);
    if (c->state != CS_AUTH_WAIT || c->auth_ignored) return;
    LOGV("conn %s: no authenticate in time: 408\n", c->id);
    g.st.auth_failures++;
    conn_fail(c, 408);
}

/* ---- protocol ---- */

static bool token_accepted(const char *tok)
{
    if (!tok || !*tok) return false;
    if (!g.set.token && !g.token_file) return true;
    if (g.set.token && strcmp(g.set.token, tok) == 0) return true;
    if (!g.token_file) return false;
    FILE *f = fopen(g.token_file, "r");
    if (!f) {
        fprintf(stderr, "telematics-sim: --token-file %s: %s\n", g.token_file, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool ok = false;
    while (!ok && (n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                         line[n - 1] == '\t'))
            line[--n] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        ok = *s && strcmp(s, tok) == 0;
    }
    free(line);
    fclose(f);
    return ok;
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static void handle_authenticate(struct conn *c, json_object *o)
{
    if (c->state != CS_AUTH_WAIT || c->auth_ignored) {
        LOGV("conn %s: authenticate again: ignored\n", c->id);
        return;
    }
    if (g.last_auth) json_object_put(g.last_auth);
    g.last_auth = json_object_get(o);

    if (g.set.no_auth_reply) {
        LOGV("conn %s: authenticate ignored (no_auth_reply)\n", c->id);
        c->auth_ignored = true;
        lws_sul_cancel(&c->sul_auth);
        return;
    }
    int code = 0;
    const char *inst = get_str(o, "instance_id");
    if (g.set.auth_error)
        code = g.set.auth_error;
    else if (!token_accepted(get_str(o, "access_token")))
        code = 401;
    else if (!inst || !*inst || (g.set.instance && strcmp(inst, g.set.instance) != 0))
        code = 404;
    if (code) {
        LOGV("conn %s: authenticate refused: %d\n", c->id, code);
        g.st.auth_failures++;
        conn_fail(c, code);
        return;
    }

    if (g.set.auth_then_error) {
        /* Accepts, then takes it back at once: a server whose token check lags its handshake. */
        LOGV("conn %s: authenticated, then error %d\n", c->id, g.set.auth_then_error);
        g.st.authenticated++;
        conn_push_str(c, "{\"type\":\"authenticated\"}");
        conn_fail(c, g.set.auth_then_error);
        return;
    }
    if (g.set.early_update) {
        /* Out of order: data before the server said the client is authenticated. */
        static const char early[] =
            "{\"type\":\"device_update\",\"device_token\":\"early-device\",\"track_token\":"
            "\"EARLY\",\"position\":{\"Latitude\":1.5,\"Longitude\":2.5,\"Timestamp\":1}}";
        conn_push_str(c, early);
    }
    lws_sul_cancel(&c->sul_auth);
    c->state = CS_STREAM;
    g.st.authenticated++;
    g.st.authenticated_active++;
    c->authed = true;
    conn_set_limits(c);
    c->device_idx = -1;
    const char *dt = get_str(o, "device_token");
    if (dt && *dt && g.set.devices) {
        c->device_idx = find_device(dt);
        if (c->device_idx < 0) {
            /* An unknown device gets one of the simulated tracks under its own token, so a
             * test can pick any token for single-device mode. */
            c->device_idx = (int)(fnv1a(dt) % g.set.devices);
            c->device_token = strdup(dt);
        }
    }

    json_object *inst_json = json_object_new_string(inst);
    const char *inst_esc =
        json_object_to_json_string_ext(inst_json, JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t cap = 2 * strlen(inst_esc) + 256;
    char *buf = malloc(cap);
    if (buf) {
        conn_push_str(c, "{\"type\":\"authenticated\"}");
        snprintf(buf, cap,
                 "{\"type\":\"welcome\",\"connection_id\":\"%s\",\"server_time\":%lld,"
                 "\"instance_id\":%s}",
                 c->id, unix_s(), inst_esc);
        conn_push_str(c, buf);
        /* inst_esc is a quoted JSON string: splice its content after "instance:". */
        snprintf(buf, cap, "{\"type\":\"subscribed\",\"topic\":\"instance:%.*s}",
                 (int)strlen(inst_esc) - 1, inst_esc + 1);
        conn_push_str(c, buf);
        free(buf);
    }
    json_object_put(inst_json);
    LOGV("conn %s: authenticated%s\n", c->id, c->device_idx >= 0 ? " (single device)" : "");

    if (g.set.huge_frame && g.set.devices) {
        char upd[4096];
        int ul = sim_render_update(upd, sizeof(upd), &g.devs[0], NULL, unix_s());
        size_t total = g.set.huge_frame;
        const char *pad_key = ",\"padding\":\"";
        size_t fixed = (size_t)ul + strlen(pad_key) + 1; /* + closing quote */
        if (ul > 0 && total > fixed) {
            char *h = malloc(total);
            if (h) {
                /* Same update, an extra unknown field pads it to exactly --huge-frame bytes. */
                size_t pos = (size_t)ul - 1, pad = total - fixed;
                memcpy(h, upd, pos);
                /* a frame, not a C string: no terminating NUL wanted */
                memcpy(h + pos, pad_key, strlen(pad_key)); /* NOLINT(bugprone-not-null-*) */
                pos += strlen(pad_key);
                memset(h + pos, 'x', pad);
                pos += pad;
                h[pos++] = '"';
                h[pos++] = '}';
                conn_push(c, h, pos, false, false);
                free(h);
            }
        } else if (ul > 0) {
            conn_push(c, upd, (size_t)ul, false, false);
        }
    }
    ping_start(c);
    blast_start(c);
}

static void handle_message(struct conn *c, const char *buf, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) return;
    json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
    bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == len && json_object_is_type(o, json_type_object);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        LOGV("conn %s: invalid JSON from client: 400\n", c->id);
        char e[128];
        snprintf(e, sizeof(e), "{\"type\":\"error\",\"code\":400,\"message\":\"%s\"}",
                 error_text(400));
        conn_push_str(c, e);
        return;
    }
    const char *type = get_str(o, "type");
    if (type && strcmp(type, "authenticate") == 0) {
        handle_authenticate(c, o);
    } else if (type && strcmp(type, "pong") == 0) {
        json_object *ts;
        g.st.pongs++;
        g.st.last_pong_timestamp = json_object_object_get_ex(o, "timestamp", &ts) &&
                                           (json_object_is_type(ts, json_type_int) ||
                                            json_object_is_type(ts, json_type_double))
                                       ? (long long)json_object_get_int64(ts)
                                       : unix_ms();
    } else {
        LOGV("conn %s: ignored message type %s\n", c->id, type ? type : "(none)");
    }
    json_object_put(o);
}

static void on_receive(struct conn *c, const void *in, size_t len)
{
    if (c->state == CS_SILENT || c->state == CS_CLOSING) return;
    if (!c->rx_too_big) {
        if (c->rx_len + len > RX_MAX) {
            c->rx_too_big = true;
        } else {
            if (c->rx_len + len + 1 > c->rx_cap) {
                size_t nc = (c->rx_len + len + 1) * 2;
                unsigned char *n = realloc(c->rx, nc);
                if (!n) {
                    c->rx_too_big = true;
                    return;
                }
                c->rx = n;
                c->rx_cap = nc;
            }
            memcpy(c->rx + c->rx_len, in, len);
            c->rx_len += len;
        }
    }
    if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi)) return;
    if (c->rx_too_big) {
        char e[128];
        snprintf(e, sizeof(e), "{\"type\":\"error\",\"code\":400,\"message\":\"%s\"}",
                 error_text(400));
        conn_push_str(c, e);
    } else {
        c->rx[c->rx_len] = '\0';
        handle_message(c, (const char *)c->rx, c->rx_len);
    }
    c->rx_len = 0;
    c->rx_too_big = false;
}

static void conn_established(struct conn *c, struct lws *wsi)
{
    memset(c, 0, sizeof(*c));
    c->wsi = wsi;
    c->is_ws = true;
    c->state = CS_AUTH_WAIT;
    c->device_idx = -1;
    c->seq = ++g.st.connections;
    struct sim_rng r;
    /* seed ^ seq*odd is a bijection of seq, and splitmix's first output is too: ids are unique. */
    sim_rng_seed(&r, (g.seed ^ 0x5eed5eed5eedULL) ^ (c->seq * 0x9e3779b97f4a7c15ULL));
    sim_uuid(&r, false, c->id);
    g.st.active++;
    lws_dll2_add_tail(&c->node, &g.conns);
    if (g.set.auth_timeout > 0)
        lws_sul_schedule(g.ctx, 0, &c->sul_auth, auth_timeout_fire,
                         (lws_usec_t)(g.set.auth_timeout * 1e6));
    LOGV("conn %s: open\n", c->id);
}

static void conn_closed(struct conn *c)
{
    if (!c->is_ws) return;
    LOGV("conn %s: closed after %" PRIu64 " updates\n", c->id, c->updates_sent);
    lws_sul_cancel(&c->sul_auth);
    lws_sul_cancel(&c->sul_ping);
    lws_dll2_remove(&c->node);
    conn_clear_queue(c);
    if (c->cur && !c->cur->blast) free(c->cur);
    c->cur = NULL;
    free(c->blast_msg);
    free(c->rx);
    free(c->device_token);
    g.st.active--;
    if (c->authed) g.st.authenticated_active--;
    c->is_ws = false;
}

/* ---- settings: one table for the command line and /control/set ---- */

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!v || !*v || *v == '-') return -1;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x > max) return -1;
    *out = x;
    return 0;
}

static int parse_double(const char *v, double max, double *out)
{
    char *end;
    errno = 0;
    if (!v || !*v) return -1;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < 0 || x > max) return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    if (v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))) {
        *out = true;
        return 0;
    }
    if (v && (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))) {
        *out = false;
        return 0;
    }
    return -1;
}

static int set_string(char **dst, const char *v)
{
    char *n = v && *v ? strdup(v) : NULL;
    if (v && *v && !n) return -1;
    free(*dst);
    *dst = n;
    return 0;
}

/* Applies one setting by its control-channel name. Returns 0, or -1 with a reason in err. */
static int apply_setting(const char *key, const char *v, char *err, size_t errlen)
{
    uint64_t u;
    double d;
    bool b;
    int rc = 0;
    bool limits = false;

    if (!strcmp(key, "close_after") || !strcmp(key, "abort_after") ||
        !strcmp(key, "silent_after")) {
        if ((rc = parse_u64(v, UINT64_MAX / 2, &u)) == 0) {
            *(key[0] == 'c'   ? &g.set.close_after
              : key[0] == 'a' ? &g.set.abort_after
                              : &g.set.silent_after) = u;
            limits = true;
        }
    } else if (!strcmp(key, "no_auth_reply")) {
        if ((rc = parse_bool(v, &b)) == 0) g.set.no_auth_reply = b;
    } else if (!strcmp(key, "trip_seconds") || !strcmp(key, "park_seconds")) {
        if ((rc = parse_double(v, 86400, &d)) == 0) {
            bool trip = key[0] == 't';
            *(trip ? &g.set.trip_seconds : &g.set.park_seconds) = d;
            for (unsigned i = 0; i < g.ndev_alloc; i++) {
                *(trip ? &g.devs[i].trip_s : &g.devs[i].park_s) = d;
                /* A shorter trip length applies to the trip under way too. */
                if (trip && d > 0 && g.devs[i].trip_left > 2 * d) g.devs[i].trip_left = 2 * d;
            }
        }
    } else if (!strcmp(key, "partial_every")) {
        if ((rc = parse_u64(v, UINT32_MAX, &u)) == 0) g.set.partial_every = u;
    } else if (!strcmp(key, "early_update")) {
        if ((rc = parse_bool(v, &b)) == 0) g.set.early_update = b;
    } else if (!strcmp(key, "bad_tokens")) {
        if ((rc = parse_bool(v, &b)) == 0) g.set.bad_tokens = b;
    } else if (!strcmp(key, "stamp_ms")) {
        if ((rc = parse_bool(v, &b)) == 0) g.set.stamp_ms = b;
    } else if (!strcmp(key, "auth_error")) {
        rc = parse_u64(v, 999, &u);
        if (rc == 0 && u != 0 && u != 400 && u != 401 && u != 403 && u != 404 && u != 408 &&
            u != 500 && u != 503)
            rc = -1;
        if (rc == 0) g.set.auth_error = (int)u;
    } else if (!strcmp(key, "auth_then_error")) {
        rc = parse_u64(v, 999, &u);
        if (rc == 0 && u != 0 && (u < 400 || u > 599)) rc = -1;
        if (rc == 0) g.set.auth_then_error = (int)u;
    } else if (!strcmp(key, "junk_every")) {
        if ((rc = parse_u64(v, UINT32_MAX, &u)) == 0) g.set.junk_every = u;
    } else if (!strcmp(key, "fragment")) {
        if ((rc = parse_u64(v, 1 << 30, &u)) == 0) g.set.fragment = u;
    } else if (!strcmp(key, "huge_frame")) {
        if ((rc = parse_u64(v, 256u << 20, &u)) == 0) g.set.huge_frame = u;
    } else if (!strcmp(key, "blast")) {
        if ((rc = parse_u64(v, UINT64_MAX / 2, &u)) == 0) g.set.blast = u;
    } else if (!strcmp(key, "rate")) {
        if ((rc = parse_double(v, 10e6, &d)) == 0) {
            g.set.rate = d;
            gen_restart();
        }
    } else if (!strcmp(key, "ping_interval")) {
        if ((rc = parse_double(v, 86400, &d)) == 0) {
            g.set.ping_interval = d;
            lws_start_foreach_dll(struct lws_dll2 *, p, lws_dll2_get_head(&g.conns))
            {
                ping_start(lws_container_of(p, struct conn, node));
            }
            lws_end_foreach_dll(p);
        }
    } else if (!strcmp(key, "auth_timeout")) {
        if ((rc = parse_double(v, 86400, &d)) == 0) g.set.auth_timeout = d;
    } else if (!strcmp(key, "devices")) {
        rc = parse_u64(v, MAX_DEVICES, &u);
        if (rc == 0 && (u == 0 || ensure_devices((unsigned)u) < 0)) rc = -1;
    } else if (!strcmp(key, "token")) {
        rc = set_string(&g.set.token, v);
    } else if (!strcmp(key, "instance")) {
        rc = set_string(&g.set.instance, v);
    } else {
        snprintf(err, errlen, "unknown key '%s'", key);
        return -1;
    }
    if (rc < 0) {
        /* Token values are secrets: never echo them. */
        snprintf(err, errlen, "invalid value for %s%s%s%s", key, strcmp(key, "token") ? " '" : "",
                 strcmp(key, "token") ? (v ? v : "") : "", strcmp(key, "token") ? "'" : "");
        return -1;
    }
    if (limits) {
        lws_start_foreach_dll(struct lws_dll2 *, p, lws_dll2_get_head(&g.conns))
        {
            struct conn *c = lws_container_of(p, struct conn, node);
            if (c->state == CS_STREAM) conn_set_limits(c);
        }
        lws_end_foreach_dll(p);
    }
    return 0;
}

static json_object *settings_json(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "close_after", json_object_new_int64((int64_t)g.set.close_after));
    json_object_object_add(o, "abort_after", json_object_new_int64((int64_t)g.set.abort_after));
    json_object_object_add(o, "silent_after", json_object_new_int64((int64_t)g.set.silent_after));
    json_object_object_add(o, "no_auth_reply", json_object_new_boolean(g.set.no_auth_reply));
    json_object_object_add(o, "auth_error", json_object_new_int(g.set.auth_error));
    json_object_object_add(o, "auth_then_error", json_object_new_int(g.set.auth_then_error));
    json_object_object_add(o, "junk_every", json_object_new_int64((int64_t)g.set.junk_every));
    json_object_object_add(o, "fragment", json_object_new_int64((int64_t)g.set.fragment));
    json_object_object_add(o, "huge_frame", json_object_new_int64((int64_t)g.set.huge_frame));
    json_object_object_add(o, "blast", json_object_new_int64((int64_t)g.set.blast));
    json_object_object_add(o, "bad_tokens", json_object_new_boolean(g.set.bad_tokens));
    json_object_object_add(o, "early_update", json_object_new_boolean(g.set.early_update));
    json_object_object_add(o, "trip_seconds", json_object_new_double(g.set.trip_seconds));
    json_object_object_add(o, "park_seconds", json_object_new_double(g.set.park_seconds));
    json_object_object_add(o, "partial_every", json_object_new_int64((int64_t)g.set.partial_every));
    json_object_object_add(o, "stamp_ms", json_object_new_boolean(g.set.stamp_ms));
    json_object_object_add(o, "rate", json_object_new_double(g.set.rate));
    json_object_object_add(o, "ping_interval", json_object_new_double(g.set.ping_interval));
    json_object_object_add(o, "auth_timeout", json_object_new_double(g.set.auth_timeout));
    json_object_object_add(o, "devices", json_object_new_int((int)g.set.devices));
    json_object_object_add(o, "instance",
                           g.set.instance ? json_object_new_string(g.set.instance) : NULL);
    return o;
}

/* ---- control channel ---- */

static char *json_take(json_object *o)
{
    char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static char *control_stats(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "connections", json_object_new_int64((int64_t)g.st.connections));
    json_object_object_add(o, "active", json_object_new_int64((int64_t)g.st.active));
    json_object_object_add(o, "authenticated", json_object_new_int64((int64_t)g.st.authenticated));
    json_object_object_add(o, "authenticated_active",
                           json_object_new_int64((int64_t)g.st.authenticated_active));
    json_object_object_add(o, "auth_failures", json_object_new_int64((int64_t)g.st.auth_failures));
    json_object_object_add(o, "updates_sent", json_object_new_int64((int64_t)g.st.updates_sent));
    json_object_object_add(o, "pings_sent", json_object_new_int64((int64_t)g.st.pings_sent));
    json_object_object_add(o, "pongs", json_object_new_int64((int64_t)g.st.pongs));
    json_object_object_add(o, "last_pong_timestamp",
                           json_object_new_int64(g.st.last_pong_timestamp));
    json_object_object_add(o, "junk_sent", json_object_new_int64((int64_t)g.st.junk_sent));
    json_object_object_add(o, "dropped", json_object_new_int64((int64_t)g.st.dropped));
    json_object_object_add(o, "blasts_done", json_object_new_int64((int64_t)g.st.blasts_done));
    json_object_object_add(o, "last_auth", g.last_auth ? json_object_get(g.last_auth) : NULL);
    json_object *devs = json_object_new_array();
    for (unsigned i = 0; i < g.set.devices && i < 1000; i++)
        json_object_array_add(devs, json_object_new_string(g.devs[i].token));
    json_object_object_add(o, "device_tokens", devs);
    json_object_object_add(o, "settings", settings_json());
    return json_take(o);
}

static char *control_error(int *status, int code, const char *msg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    *status = code;
    return json_take(o);
}

/* Query arguments one "key=value" at a time, already percent-decoded by lws. */
static char *query_arg(struct lws *wsi, int idx)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total <= 0) return NULL;
    char *buf = malloc((size_t)total + 1);
    if (!buf) return NULL;
    if (lws_hdr_copy_fragment(wsi, buf, total + 1, WSI_TOKEN_HTTP_URI_ARGS, idx) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static char *control_set(struct lws *wsi, int *status)
{
    char err[256];
    char *arg;
    int applied = 0;
    for (int i = 0; (arg = query_arg(wsi, i)); i++) {
        char *eq = strchr(arg, '=');
        if (eq) *eq = '\0';
        int rc = apply_setting(arg, eq ? eq + 1 : NULL, err, sizeof(err));
        if (rc == 0 && strcmp(arg, "token")) LOGV("control: set %s=%s\n", arg, eq ? eq + 1 : "");
        free(arg);
        if (rc < 0) return control_error(status, 400, err);
        applied++;
    }
    if (!applied)
        return control_error(status, 400, "nothing to set: use /control/set?key=value&...");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "settings", settings_json());
    return json_take(o);
}

static char *control_send(struct lws *wsi, int *status)
{
    char *arg, *msg = NULL;
    for (int i = 0; !msg && (arg = query_arg(wsi, i)); i++) {
        if (strncmp(arg, "json=", 5) == 0)
            msg = arg;
        else
            free(arg);
    }
    if (!msg) return control_error(status, 400, "missing json=<urlencoded message>");
    size_t len = strlen(msg + 5);
    uint64_t n = 0;
    lws_start_foreach_dll(struct lws_dll2 *, p, lws_dll2_get_head(&g.conns))
    {
        struct conn *c = lws_container_of(p, struct conn, node);
        if (c->state == CS_STREAM) {
            conn_push(c, msg + 5, len, false, false);
            n++;
        }
    }
    lws_end_foreach_dll(p);
    free(msg);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sent_to", json_object_new_int64((int64_t)n));
    return json_take(o);
}

static char *control_drop(void)
{
    uint64_t n = 0;
    lws_start_foreach_dll(struct lws_dll2 *, p, lws_dll2_get_head(&g.conns))
    {
        struct conn *c = lws_container_of(p, struct conn, node);
        conn_reset(c);
        /* Outside the connection's own callback: let lws close it on its next pass. */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        n++;
    }
    lws_end_foreach_dll(p);
    LOGV("control: dropped %" PRIu64 " connections\n", n);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "dropped", json_object_new_int64((int64_t)n));
    return json_take(o);
}

static int http_request(struct conn *c, struct lws *wsi, const char *path)
{
    int status = HTTP_STATUS_OK;
    char *body;
    memset(c, 0, sizeof(*c));
    if (!strcmp(path, "/control/stats"))
        body = control_stats();
    else if (!strcmp(path, "/control/set"))
        body = control_set(wsi, &status);
    else if (!strcmp(path, "/control/send"))
        body = control_send(wsi, &status);
    else if (!strcmp(path, "/control/drop"))
        body = control_drop();
    else
        body = control_error(&status, HTTP_STATUS_NOT_FOUND,
                             "not found: /control/{stats,set,send,drop}; WebSocket on any path");
    if (!body) return -1;
    size_t len = strlen(body) + 1;
    c->body = malloc(LWS_PRE + len);
    if (!c->body) {
        free(body);
        return -1;
    }
    memcpy(c->body + LWS_PRE, body, len - 1);
    c->body[LWS_PRE + len - 1] = '\n';
    c->body_len = len;
    free(body);

    unsigned char hb[LWS_PRE + 512], *start = hb + LWS_PRE, *p = start, *end = hb + sizeof(hb) - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, "application/json", c->body_len, &p,
                                    end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static void http_free(struct conn *c)
{
    if (c->is_ws) return;
    free(c->body);
    c->body = NULL;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        conn_established(c, wsi);
        return 0;
    case LWS_CALLBACK_CLOSED:
        conn_closed(c);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        on_receive(c, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(c);
    case LWS_CALLBACK_HTTP:
        if (http_request(c, wsi, in) < 0) {
            http_free(c);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!c || !c->body) return 0;
        int n = lws_write(wsi, c->body + LWS_PRE, c->body_len, LWS_WRITE_HTTP_FINAL);
        http_free(c);
        if (n < 0 || lws_http_transaction_completed(wsi)) return -1;
        return 0;
    }
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (c) http_free(c);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"telematics-realtime", callback, sizeof(struct conn), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- main ---- */

static void on_signal(int sig)
{
    (void)sig;
    g.interrupted = 1;
    /* Wakes the poll at once (an eventfd/pipe write) instead of at the next timer. */
    if (g.ctx) lws_cancel_service(g.ctx);
}

static void usage(FILE *f)
{
    fputs(
        "Usage: telematics-sim [options]\n"
        "A simulator of the telematics real-time WebSocket API (see tests/sim/README.md).\n"
        "\n"
        "  --port P            listen port (0 = pick a free one; default 0)\n"
        "  --host H            listen address (default 127.0.0.1)\n"
        "  --instance I        accepted instance_id (default: any; others get 404)\n"
        "  --token T           accepted access_token (default: any non-empty)\n"
        "  --token-file F      file of accepted tokens, one a line, re-read at every authenticate\n"
        "  --devices N         simulated devices (default 5)\n"
        "  --rate R            device updates per second across all devices (default 1)\n"
        "  --ping-interval S   seconds between pings, fractional allowed, 0 = off (default 30)\n"
        "  --auth-timeout S    error 408 when no authenticate within S seconds (default 10)\n"
        "  --seed N            seed for device tokens, tracks and ids (default 1)\n"
        "  --tls-cert F        serve wss:// (and https) with this certificate (PEM) ...\n"
        "  --tls-key F         ... and this key (the control channel is then https too)\n"
        "Misbehaviour (each also settable with GET /control/set?key=value):\n"
        "  --close-after N     close frame after N updates (close_after)\n"
        "  --abort-after N     TCP reset without close after N updates (abort_after)\n"
        "  --silent-after N    go silent after N updates: no data, no pings (silent_after)\n"
        "  --no-auth-reply     never answer authenticate, no 408 either (no_auth_reply)\n"
        "  --auth-error CODE   answer authenticate with error CODE and close (auth_error)\n"
        "                      CODE: 400 401 403 404 408 500 503\n"
        "  --auth-then-error CODE  answer authenticated, then error CODE and close\n"
        "  --junk-every N      every Nth stream message is junk, kinds rotate (junk_every)\n"
        "  --huge-frame BYTES  one padded update of exactly BYTES after auth (huge_frame)\n"
        "  --fragment BYTES    send messages as WebSocket fragments of BYTES (fragment)\n"
        "  --bad-tokens        every 3rd update carries a hostile device token (bad_tokens)\n"
        "  --early-update      a device_update (device early-device) before authenticated\n"
        "  --trip-seconds S    trips last S..2S seconds (default 600..2400) (trip_seconds)\n"
        "  --park-seconds S    parked S..2S seconds between trips, no updates (park_seconds)\n"
        "  --partial-every N   every Nth update lacks fields, kinds rotate (partial_every)\n"
        "Bench:\n"
        "  --blast N           after auth send N updates as fast as the socket takes (blast)\n"
        "  --stamp-ms          Timestamp = send time in Unix ms (stamp_ms)\n"
        "Hostile handshakes (instead of the API; tests/sim/README.md):\n"
        "  --handshake MODE    silent | half-status | redirect | extension | rsv1 | reset\n"
        "  --redirect-to URL   the Location of --handshake redirect\n"
        "Other:\n"
        "  -v, --verbose       log connections and control requests to stderr (twice: lws)\n"
        "  -h, --help          this text\n"
        "Prints 'telematics-sim: listening on HOST:PORT' on stdout once listening.\n",
        f);
}

enum {
    OPT_PORT = 256,
    OPT_HOST,
    OPT_TOKEN_FILE,
    OPT_SEED,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_HANDSHAKE,
    OPT_REDIRECT_TO,
    OPT_SETTING, /* long options from here on map 1:1 to apply_setting keys */
};

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int has_arg;
        const char *key;
    } settings_opts[] = {
        {"instance", 1, "instance"},
        {"token", 1, "token"},
        {"devices", 1, "devices"},
        {"rate", 1, "rate"},
        {"ping-interval", 1, "ping_interval"},
        {"auth-timeout", 1, "auth_timeout"},
        {"close-after", 1, "close_after"},
        {"abort-after", 1, "abort_after"},
        {"silent-after", 1, "silent_after"},
        {"no-auth-reply", 0, "no_auth_reply"},
        {"auth-error", 1, "auth_error"},
        {"auth-then-error", 1, "auth_then_error"},
        {"junk-every", 1, "junk_every"},
        {"huge-frame", 1, "huge_frame"},
        {"fragment", 1, "fragment"},
        {"bad-tokens", 0, "bad_tokens"},
        {"early-update", 0, "early_update"},
        {"trip-seconds", 1, "trip_seconds"},
        {"park-seconds", 1, "park_seconds"},
        {"partial-every", 1, "partial_every"},
        {"blast", 1, "blast"},
        {"stamp-ms", 0, "stamp_ms"},
    };
    enum { NSET = sizeof(settings_opts) / sizeof(settings_opts[0]) };
    struct option longopts[NSET + 11];
    int k = 0;
    longopts[k++] = (struct option){"port", 1, NULL, OPT_PORT};
    longopts[k++] = (struct option){"host", 1, NULL, OPT_HOST};
    longopts[k++] = (struct option){"token-file", 1, NULL, OPT_TOKEN_FILE};
    longopts[k++] = (struct option){"seed", 1, NULL, OPT_SEED};
    longopts[k++] = (struct option){"tls-cert", 1, NULL, OPT_TLS_CERT};
    longopts[k++] = (struct option){"tls-key", 1, NULL, OPT_TLS_KEY};
    longopts[k++] = (struct option){"handshake", 1, NULL, OPT_HANDSHAKE};
    longopts[k++] = (struct option){"redirect-to", 1, NULL, OPT_REDIRECT_TO};
    longopts[k++] = (struct option){"verbose", 0, NULL, 'v'};
    longopts[k++] = (struct option){"help", 0, NULL, 'h'};
    for (int i = 0; i < NSET; i++)
        longopts[k++] =
            (struct option){settings_opts[i].name, settings_opts[i].has_arg, NULL, OPT_SETTING + i};
    longopts[k] = (struct option){NULL, 0, NULL, 0};

    const char *host = "127.0.0.1", *cert = NULL, *key = NULL;
    const char *handshake = NULL, *redirect_to = NULL;
    uint64_t port = 0;
    char err[256];
    g.seed = 1;
    g.set.rate = 1;
    g.set.ping_interval = 30;
    g.set.auth_timeout = 10;

    /* Settings that create devices depend on the seed: read --seed first. */
    int opt;
    uint64_t devices = 5;
    while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
        if (opt == OPT_SEED && parse_u64(optarg, UINT64_MAX, &g.seed) < 0) {
            fprintf(stderr, "telematics-sim: --seed: invalid number '%s'\n", optarg);
            return 2;
        }
        if (opt == '?') {
            usage(stderr);
            return 2;
        }
    }
    if (ensure_devices((unsigned)devices) < 0) return 1;
    sim_rng_seed(&g.junk_rng, g.seed ^ 0x6a756e6bULL);

    optind = 1;
    while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return 0;
        case 'v':
            g.verbose++;
            break;
        case OPT_PORT:
            if (parse_u64(optarg, 65535, &port) < 0) {
                fprintf(stderr, "telematics-sim: --port: invalid port '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_HOST:
            host = optarg;
            break;
        case OPT_TOKEN_FILE:
            g.token_file = optarg;
            break;
        case OPT_SEED:
            break;
        case OPT_TLS_CERT:
            cert = optarg;
            break;
        case OPT_TLS_KEY:
            key = optarg;
            break;
        case OPT_HANDSHAKE:
            if (sim_hostile_mode_known(optarg) < 0) {
                fprintf(stderr, "telematics-sim: --handshake: unknown mode '%s'\n", optarg);
                return 2;
            }
            handshake = optarg;
            break;
        case OPT_REDIRECT_TO:
            redirect_to = optarg;
            break;
        default:
            if (opt >= OPT_SETTING && opt < OPT_SETTING + NSET) {
                int i = opt - OPT_SETTING;
                const char *v = settings_opts[i].has_arg ? optarg : "1";
                if (apply_setting(settings_opts[i].key, v, err, sizeof(err)) < 0) {
                    fprintf(stderr, "telematics-sim: --%s: %s\n", settings_opts[i].name, err);
                    return 2;
                }
            } else {
                usage(stderr);
                return 2;
            }
        }
    }
    if (optind < argc) {
        fprintf(stderr, "telematics-sim: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!cert != !key) {
        fprintf(stderr, "telematics-sim: --tls-cert and --tls-key go together\n");
        return 2;
    }

    if (handshake) {
        struct sigaction hs;
        memset(&hs, 0, sizeof(hs));
        hs.sa_handler = on_signal;
        sigaction(SIGINT, &hs, NULL);
        sigaction(SIGTERM, &hs, NULL);
        signal(SIGPIPE, SIG_IGN);
        int hrc = sim_hostile_run(host, (int)port, handshake, redirect_to, &g.interrupted);
        free(g.devs);
        free(g.set.token);
        free(g.set.instance);
        return hrc;
    }

    lws_set_log_level(g.verbose > 1 ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : (LLL_ERR | LLL_WARN),
                      NULL);
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cert) ci.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    ci.port = CONTEXT_PORT_NO_LISTEN;
    ci.max_http_header_data = 65535; /* /control/send carries whole messages in the URL */
    ci.gid = -1;
    ci.uid = -1;
    g.ctx = lws_create_context(&ci);
    if (!g.ctx) {
        fprintf(stderr, "telematics-sim: lws context creation failed\n");
        return 1;
    }

    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof(vi));
    vi.port = (int)port;
    vi.iface = host;
    vi.protocols = protocols;
    vi.vhost_name = "telematics-sim";
    vi.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cert) {
        vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        vi.ssl_cert_filepath = cert;
        vi.ssl_private_key_filepath = key;
    }
    g.vh = lws_create_vhost(g.ctx, &vi);
    int rc = 0;
    if (!g.vh) {
        fprintf(stderr, "telematics-sim: cannot listen on %s:%d\n", host, (int)port);
        rc = 1;
        goto out;
    }
    printf("telematics-sim: listening on %s:%d\n", host, lws_get_vhost_listen_port(g.vh));
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    gen_restart();
    while (!g.interrupted)
        if (lws_service(g.ctx, 0) < 0) break;

out:
    lws_sul_cancel(&g.sul_gen);
    lws_context_destroy(g.ctx);
    g.ctx = NULL;
    fprintf(stderr,
            "telematics-sim: totals: connections=%" PRIu64 " authenticated=%" PRIu64
            " updates_sent=%" PRIu64 " pings=%" PRIu64 " pongs=%" PRIu64 " junk=%" PRIu64
            " dropped=%" PRIu64 "\n",
            g.st.connections, g.st.authenticated, g.st.updates_sent, g.st.pings_sent, g.st.pongs,
            g.st.junk_sent, g.st.dropped);
    if (g.last_auth) json_object_put(g.last_auth);
    for (unsigned i = 0; i < g.ntpl; i++)
        free(g.tpl[i].text);
    free(g.tpl);
    free(g.devs);
    free(g.set.token);
    free(g.set.instance);
    return rc;
}
