/* metrics.c - the Prometheus text exposition format (version 0.0.4) of /metrics. Pure. */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "out.h"
#include "text.h"

static void putf(struct t2m_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct t2m_out *o, const char *fmt, ...)
{
    if (o->full) return;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(o->buf + o->len, o->n - o->len, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= o->n - o->len) {
        o->full = true;
        o->buf[o->len] = '\0';
        return;
    }
    o->len += (size_t)r;
}

static void family(struct t2m_out *o, const char *name, const char *type, const char *help)
{
    putf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped as the format requires; bytes that
 * are not UTF-8 become U+FFFD so one odd instance id cannot make the whole scrape invalid. */
static void label_value(struct t2m_out *o, const char *v)
{
    const unsigned char *s = (const unsigned char *)(v ? v : "");
    size_t len = strlen((const char *)s);
    while (len > 0) {
        size_t k = t2m_utf8_seq(s, len);
        if (k == 0) {
            t2m_out_put(o, "\xef\xbf\xbd", 3);
            k = 1;
        } else if (*s == '\\') {
            t2m_out_put(o, "\\\\", 2);
        } else if (*s == '"') {
            t2m_out_put(o, "\\\"", 2);
        } else if (*s == '\n') {
            t2m_out_put(o, "\\n", 2);
        } else {
            t2m_out_put(o, (const char *)s, k);
        }
        s += k;
        len -= k;
    }
}

size_t t2m_metrics_render(char *buf, size_t n, const struct t2m_metrics_snapshot *s)
{
    if (!buf || n == 0 || !s) return 0;
    static const struct t2m_stats zero;
    const struct t2m_stats *st = s->stats ? s->stats : &zero;
    struct t2m_out o = {.buf = buf, .n = n};
    buf[0] = '\0';

    family(&o, "t2m_updates_received_total", "counter",
           "device_update messages received from the upstream API.");
    putf(&o, "t2m_updates_received_total %" PRIu64 "\n", st->updates_received);

    family(&o, "t2m_messages_published_total", "counter",
           "MQTT messages written (QoS 0) or acknowledged by the broker (QoS 1).");
    putf(&o, "t2m_messages_published_total %" PRIu64 "\n", st->messages_published);

    family(&o, "t2m_updates_dropped_total", "counter", "Updates dropped, by reason.");
    for (int r = 0; r < T2M_DROP_COUNT; r++)
        putf(&o, "t2m_updates_dropped_total{reason=\"%s\"} %" PRIu64 "\n",
             t2m_drop_reason_name((enum t2m_drop_reason)r), st->dropped[r]);

    family(&o, "t2m_fields_rejected_total", "counter",
           "Single fields of an update ignored: NaN, out of range or of the wrong type.");
    putf(&o, "t2m_fields_rejected_total %" PRIu64 "\n", st->fields_rejected);

    family(&o, "t2m_upstream_reconnects_total", "counter",
           "Reconnects to the upstream API, all instances together.");
    putf(&o, "t2m_upstream_reconnects_total %" PRIu64 "\n", st->upstream_reconnects);

    family(&o, "t2m_mqtt_inbound_skipped_total", "counter",
           "Packets from the broker over the bridge's 256 KiB bound, skipped unread.");
    putf(&o, "t2m_mqtt_inbound_skipped_total %" PRIu64 "\n", st->mqtt_skipped);

    family(&o, "t2m_mqtt_connected", "gauge", "1 while the MQTT broker connection is up, else 0.");
    putf(&o, "t2m_mqtt_connected %d\n", s->mqtt_connected ? 1 : 0);

    if (s->broker_node && *s->broker_node) {
        family(&o, "t2m_mqtt_broker_node", "gauge",
               "1 for the MQTT broker node in use (mqtt.url may list a cluster's nodes).");
        T2M_OUT_LIT(&o, "t2m_mqtt_broker_node{node=\"");
        label_value(&o, s->broker_node);
        T2M_OUT_LIT(&o, "\"} 1\n");
    }

    family(&o, "t2m_upstream_state", "gauge",
           "Upstream connection state per instance: 0 connecting, 1 authenticating, "
           "2 subscribed, 3 reconnecting, 4 auth_failed.");
    for (size_t i = 0; s->instances && i < s->n_instances; i++) {
        t2m_out_put(&o, "t2m_upstream_state{instance=\"", strlen("t2m_upstream_state{instance=\""));
        label_value(&o, s->instances[i].id);
        putf(&o, "\"} %d\n", s->instances[i].state);
    }

    bool any_exp = false;
    for (size_t i = 0; s->instances && i < s->n_instances; i++)
        any_exp |= s->instances[i].token_expiry > 0;
    if (any_exp)
        family(&o, "t2m_token_expiry_timestamp_seconds", "gauge",
               "When the instance's access token expires (its exp claim, Unix seconds).");
    for (size_t i = 0; s->instances && i < s->n_instances; i++) {
        if (s->instances[i].token_expiry <= 0) continue;
        T2M_OUT_LIT(&o, "t2m_token_expiry_timestamp_seconds{instance=\"");
        label_value(&o, s->instances[i].id);
        putf(&o, "\"} %lld\n", (long long)s->instances[i].token_expiry);
    }

    family(&o, "t2m_offline_queue_depth", "gauge",
           "Messages waiting in the offline queue for the MQTT broker.");
    putf(&o, "t2m_offline_queue_depth %zu\n", s->offline_queue_depth);

    family(&o, "t2m_devices", "gauge", "Devices currently tracked.");
    putf(&o, "t2m_devices %zu\n", s->devices);

    if (o.full) {
        buf[0] = '\0';
        return 0;
    }
    return o.len;
}
