/* mqtt_codec.c - MQTT 3.1.1 / 5 packets as bytes (OASIS mqtt-v3.1.1 section 2-3, mqtt-v5.0
 * section 2-3). Every length is computed before a byte is written; a packet that does not fit
 * is not written at all. */
#include "mqtt_codec.h"

#include <string.h>

/* ---- writing ---- */

struct w {
    uint8_t *b;
    size_t n, o;
};

static size_t varint_size(size_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void put_u8(struct w *w, unsigned v)
{
    w->b[w->o++] = (uint8_t)v;
}

static void put_u16(struct w *w, unsigned v)
{
    w->b[w->o++] = (uint8_t)(v >> 8);
    w->b[w->o++] = (uint8_t)v;
}

static void put_varint(struct w *w, size_t v)
{
    do {
        uint8_t byte = (uint8_t)(v % 128);
        v /= 128;
        w->b[w->o++] = (uint8_t)(v ? byte | 0x80u : byte);
    } while (v);
}

static void put_bytes(struct w *w, const void *p, size_t len)
{
    if (len) memcpy(w->b + w->o, p, len);
    w->o += len;
}

/* A length-prefixed string or binary field (the caller checked len <= 65535). */
static void put_field(struct w *w, const void *p, size_t len)
{
    put_u16(w, (unsigned)len);
    put_bytes(w, p, len);
}

/* Starts a packet of remaining length rem: false (nothing written) when it does not fit. */
static bool begin(struct w *w, uint8_t *buf, size_t n, unsigned byte0, size_t rem)
{
    w->b = buf;
    w->n = n;
    w->o = 0;
    if (rem > T2M_MQTT_MAX_REMAINING || !buf || n < 1 + varint_size(rem) + rem) return false;
    put_u8(w, byte0);
    put_varint(w, rem);
    return true;
}

size_t t2m_mqtt_enc_connect(uint8_t *buf, size_t n, const struct t2m_mqtt_connect *c)
{
    bool v5 = c->protocol == 5;
    const char *cid = c->client_id ? c->client_id : "";
    /* MQTT 3.1.1 allows no password without a user name: an empty one goes with it. */
    const char *user = c->username ? c->username : c->password ? "" : NULL;
    size_t cl = strlen(cid), ul = user ? strlen(user) : 0;
    size_t pl = c->password ? strlen(c->password) : 0;
    size_t tl = c->will_topic ? strlen(c->will_topic) : 0;
    if (cl > 65535 || ul > 65535 || pl > 65535 || tl > 65535 || c->will_len > 65535 ||
        c->keepalive > 65535 || c->will_qos < 0 || c->will_qos > 2)
        return 0;
    /* MQTT 5: the one CONNECT property, Maximum Packet Size (0x27), when given */
    size_t props = v5 && c->max_packet_size ? 5 : 0;
    size_t rem = 10 + (v5 ? 1 : 0) + props + 2 + cl;
    if (c->will_topic) rem += (v5 ? 1 : 0) + 2 + tl + 2 + c->will_len;
    if (user) rem += 2 + ul;
    if (c->password) rem += 2 + pl;
    struct w w;
    if (!begin(&w, buf, n, T2M_MQTT_CONNECT << 4, rem)) return 0;
    put_field(&w, "MQTT", 4);
    put_u8(&w, v5 ? 5 : 4);
    unsigned flags = c->clean ? 0x02u : 0;
    if (c->will_topic) flags |= 0x04u | (unsigned)c->will_qos << 3 | (c->will_retain ? 0x20u : 0);
    if (c->password) flags |= 0x40u;
    if (user) flags |= 0x80u;
    put_u8(&w, flags);
    put_u16(&w, c->keepalive);
    if (v5) {
        put_u8(&w, (unsigned)props);
        if (props) {
            put_u8(&w, 0x27);
            put_u16(&w, c->max_packet_size >> 16);
            put_u16(&w, c->max_packet_size & 0xffffu);
        }
    }
    put_field(&w, cid, cl);
    if (c->will_topic) {
        if (v5) put_u8(&w, 0); /* no will properties */
        put_field(&w, c->will_topic, tl);
        put_field(&w, c->will_payload, c->will_len);
    }
    if (user) put_field(&w, user, ul);
    if (c->password) put_field(&w, c->password, pl);
    return w.o;
}

size_t t2m_mqtt_enc_publish(uint8_t *buf, size_t n, int protocol, const char *topic, size_t tlen,
                            const void *payload, size_t plen, int qos, bool retain, bool dup,
                            unsigned id)
{
    if (tlen > 65535 || qos < 0 || qos > 1 || (qos && (id == 0 || id > 65535))) return 0;
    size_t rem = 2 + tlen + (qos ? 2 : 0) + (protocol == 5 ? 1 : 0) + plen;
    unsigned byte0 =
        T2M_MQTT_PUBLISH << 4 | (dup ? 0x08u : 0) | (unsigned)qos << 1 | (retain ? 1u : 0);
    struct w w;
    if (rem < plen || !begin(&w, buf, n, byte0, rem)) return 0;
    put_field(&w, topic, tlen);
    if (qos) put_u16(&w, id);
    if (protocol == 5) put_u8(&w, 0);
    put_bytes(&w, payload, plen);
    return w.o;
}

size_t t2m_mqtt_enc_puback(uint8_t *buf, size_t n, int protocol, unsigned id)
{
    (void)protocol; /* MQTT 5: reason 0 and no properties may be left out */
    struct w w;
    if (id == 0 || id > 65535 || !begin(&w, buf, n, T2M_MQTT_PUBACK << 4, 2)) return 0;
    put_u16(&w, id);
    return w.o;
}

size_t t2m_mqtt_enc_subscribe(uint8_t *buf, size_t n, int protocol, unsigned id, const char *filter,
                              int qos)
{
    size_t fl = strlen(filter);
    if (fl > 65535 || id == 0 || id > 65535 || qos < 0 || qos > 2) return 0;
    struct w w;
    if (!begin(&w, buf, n, T2M_MQTT_SUBSCRIBE << 4 | 0x02u,
               2 + (protocol == 5 ? 1 : 0) + 2 + fl + 1))
        return 0;
    put_u16(&w, id);
    if (protocol == 5) put_u8(&w, 0);
    put_field(&w, filter, fl);
    put_u8(&w, (unsigned)qos);
    return w.o;
}

size_t t2m_mqtt_enc_unsubscribe(uint8_t *buf, size_t n, int protocol, unsigned id,
                                const char *filter)
{
    size_t fl = strlen(filter);
    if (fl > 65535 || id == 0 || id > 65535) return 0;
    struct w w;
    if (!begin(&w, buf, n, T2M_MQTT_UNSUBSCRIBE << 4 | 0x02u, 2 + (protocol == 5 ? 1 : 0) + 2 + fl))
        return 0;
    put_u16(&w, id);
    if (protocol == 5) put_u8(&w, 0);
    put_field(&w, filter, fl);
    return w.o;
}

size_t t2m_mqtt_enc_pingreq(uint8_t *buf, size_t n)
{
    struct w w;
    return begin(&w, buf, n, T2M_MQTT_PINGREQ << 4, 0) ? w.o : 0;
}

size_t t2m_mqtt_enc_disconnect(uint8_t *buf, size_t n, int protocol)
{
    (void)protocol; /* MQTT 5: no Remaining Length means reason 0x00, normal disconnection */
    struct w w;
    return begin(&w, buf, n, T2M_MQTT_DISCONNECT << 4, 0) ? w.o : 0;
}

/* ---- reading ---- */

struct r {
    const uint8_t *b;
    size_t n, o;
    bool bad;
};

static unsigned get_u8(struct r *r)
{
    if (r->o + 1 > r->n) {
        r->bad = true;
        return 0;
    }
    return r->b[r->o++];
}

static unsigned get_u16(struct r *r)
{
    unsigned hi = get_u8(r);
    return hi << 8 | get_u8(r);
}

static uint32_t get_u32(struct r *r)
{
    uint32_t hi = get_u16(r);
    return hi << 16 | get_u16(r);
}

static size_t get_varint(struct r *r)
{
    size_t v = 0, mul = 1;
    for (int i = 0; i < 4; i++) {
        unsigned byte = get_u8(r);
        v += (byte & 127u) * mul;
        if (!(byte & 128u)) return v;
        mul *= 128;
    }
    r->bad = true;
    return 0;
}

/* A length-prefixed field: its bytes (in place) and length. */
static const uint8_t *get_field(struct r *r, size_t *len)
{
    *len = get_u16(r);
    if (r->bad || r->o + *len > r->n) {
        r->bad = true;
        *len = 0;
        return NULL;
    }
    const uint8_t *p = r->b + r->o;
    r->o += *len;
    return p;
}

long t2m_mqtt_frame_total(const uint8_t *buf, size_t len, size_t *total)
{
    size_t v = 0, mul = 1;
    for (size_t i = 1; i <= 4; i++) {
        if (i >= len) return 0;
        v += (buf[i] & 127u) * mul;
        if (!(buf[i] & 128u)) {
            /* MQTT-1.5.5-1: the fewest bytes; a trailing zero byte is an over-long encoding */
            if (i > 1 && buf[i] == 0) return -1;
            *total = 1 + i + v;
            return 1;
        }
        mul *= 128;
    }
    return -1;
}

long t2m_mqtt_frame(const uint8_t *buf, size_t len)
{
    size_t total;
    long r = t2m_mqtt_frame_total(buf, len, &total);
    if (r <= 0) return r;
    return total <= len ? (long)total : 0;
}

/* MQTT 5 properties: the ones the bridge uses are kept, the others checked and skipped. */
static void get_props(struct r *r, struct t2m_mqtt_packet *p)
{
    size_t len = get_varint(r);
    if (r->bad || r->o + len > r->n) {
        r->bad = true;
        return;
    }
    struct r s = {r->b, r->o + len, r->o, false};
    r->o += len;
    uint64_t seen = 0; /* property ids 0..63 already read */
    while (!s.bad && s.o < s.n) {
        size_t id = get_varint(&s), flen;
        const uint8_t *f;
        /* Every property but the user property at most once: a second is a protocol error
         * (MQTT 5, 2.2.2.2), as mosquitto treats it. */
        if (id < 64 && id != 0x26) {
            if (seen & (1ull << id)) {
                s.bad = true;
                break;
            }
            seen |= 1ull << id;
        }
        switch (id) {
        case 0x01:
        case 0x17:
        case 0x19:
        case 0x28:
        case 0x29:
        case 0x2A: /* bytes */
            get_u8(&s);
            break;
        case 0x24:
            p->max_qos = (int)get_u8(&s);
            break;
        case 0x25:
            p->retain_available = get_u8(&s) != 0;
            break;
        case 0x23: /* topic alias: never sent to the bridge, which announces none */
            get_u16(&s);
            s.bad = true;
            break;
        case 0x13:
            p->server_keepalive = get_u16(&s);
            break;
        case 0x21:
            p->receive_max = get_u16(&s);
            if (p->receive_max == 0) s.bad = true; /* a protocol error (3.2.2.3.3) */
            break;
        case 0x22:
            p->topic_alias_max = get_u16(&s);
            break;
        case 0x02:
        case 0x11:
        case 0x18: /* four-byte integers */
            get_u32(&s);
            break;
        case 0x27:
            p->max_packet_size = get_u32(&s);
            if (p->max_packet_size == 0) s.bad = true;
            break;
        case 0x0B:
            get_varint(&s);
            break;
        case 0x1F:
            f = get_field(&s, &flen);
            p->reason_string = (const char *)f;
            p->reason_string_len = flen;
            break;
        case 0x03:
        case 0x08:
        case 0x09:
        case 0x12:
        case 0x15:
        case 0x16:
        case 0x1A:
        case 0x1C:
            get_field(&s, &flen);
            break;
        case 0x26: /* user property: a string pair */
            get_field(&s, &flen);
            get_field(&s, &flen);
            break;
        default:
            s.bad = true;
        }
    }
    if (s.bad) r->bad = true;
}

int t2m_mqtt_decode(const uint8_t *pkt, size_t len, int protocol, struct t2m_mqtt_packet *out)
{
    memset(out, 0, sizeof(*out));
    out->max_qos = 2;
    out->retain_available = true;
    long framed = t2m_mqtt_frame(pkt, len);
    if (framed <= 0 || (size_t)framed != len) return -1;
    size_t h = 1;
    while (pkt[h] & 128u)
        h++;
    h++;
    struct r r = {pkt, len, h, false};
    bool v5 = protocol == 5;
    out->type = pkt[0] >> 4;
    out->flags = pkt[0] & 15;
    switch (out->type) {
    case T2M_MQTT_CONNACK: {
        unsigned ack = get_u8(&r);
        if (ack & 0xFEu) return -1;
        out->session_present = ack & 1u;
        out->reason = (int)get_u8(&r);
        if (v5 && r.o < r.n) get_props(&r, out);
        if (!v5 && r.o != r.n) return -1;
        break;
    }
    case T2M_MQTT_PUBLISH: {
        out->qos = (out->flags >> 1) & 3;
        if (out->qos == 3) return -1;
        out->retain = out->flags & 1;
        out->dup = out->flags & 8;
        out->topic = (const char *)get_field(&r, &out->topic_len);
        if (out->qos) {
            out->id = get_u16(&r);
            if (!r.bad && out->id == 0) return -1;
        }
        if (v5) get_props(&r, out);
        if (r.bad) return -1;
        out->payload = pkt + r.o;
        out->payload_len = len - r.o;
        r.o = len;
        break;
    }
    case T2M_MQTT_PUBACK:
    case T2M_MQTT_UNSUBACK:
    case T2M_MQTT_SUBACK:
        if (out->flags) return -1;
        out->id = get_u16(&r);
        if (out->type == T2M_MQTT_PUBACK && v5 && r.o < r.n) out->reason = (int)get_u8(&r);
        if (v5 && r.o < r.n) get_props(&r, out);
        if (out->type == T2M_MQTT_SUBACK) {
            if (r.o >= r.n) return -1; /* at least one return code */
            out->reason = (int)get_u8(&r);
            r.o = r.n; /* one filter per SUBSCRIBE: the rest would be extra codes */
        }
        if (out->type == T2M_MQTT_UNSUBACK) r.o = r.n; /* MQTT 5: one reason code per filter */
        break;
    case T2M_MQTT_PINGRESP:
        if (len != 2) return -1;
        break;
    case T2M_MQTT_DISCONNECT:
        if (r.o < r.n) out->reason = (int)get_u8(&r);
        if (v5 && r.o < r.n) get_props(&r, out);
        break;
    case T2M_MQTT_PUBREC:
    case T2M_MQTT_PUBREL:
    case T2M_MQTT_PUBCOMP:
    case T2M_MQTT_AUTH:
        r.o = r.n;
        break;
    default:
        return -1; /* CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, 0: a client's packets */
    }
    return r.bad || r.o != r.n ? -1 : 0;
}

const char *t2m_mqtt_connack_string(int protocol, int code)
{
    if (protocol != 5) {
        static const char *const v3[] = {
            "accepted",           "unacceptable protocol version", "identifier rejected",
            "server unavailable", "bad user name or password",     "not authorized"};
        return code >= 0 && code <= 5 ? v3[code] : "unknown return code";
    }
    switch (code) {
    case 0x00:
        return "success";
    case 0x80:
        return "unspecified error";
    case 0x81:
        return "malformed packet";
    case 0x82:
        return "protocol error";
    case 0x83:
        return "implementation specific error";
    case 0x84:
        return "unsupported protocol version";
    case 0x85:
        return "client identifier not valid";
    case 0x86:
        return "bad user name or password";
    case 0x87:
        return "not authorized";
    case 0x88:
        return "server unavailable";
    case 0x89:
        return "server busy";
    case 0x8A:
        return "banned";
    case 0x8C:
        return "bad authentication method";
    case 0x90:
        return "topic name invalid";
    case 0x95:
        return "packet too large";
    case 0x97:
        return "quota exceeded";
    case 0x99:
        return "payload format invalid";
    case 0x9A:
        return "retain not supported";
    case 0x9B:
        return "QoS not supported";
    case 0x9C:
        return "use another server";
    case 0x9D:
        return "server moved";
    case 0x9F:
        return "connection rate exceeded";
    default:
        return "unknown reason code";
    }
}
