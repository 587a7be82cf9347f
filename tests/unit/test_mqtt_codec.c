/* test_mqtt_codec.c - the MQTT 3.1.1 / 5 packet codec against the byte sequences of the OASIS
 * specifications (mqtt-v3.1.1 and mqtt-v5.0: the Remaining Length table of 2.2.3 / 1.5.5, the
 * CONNECT variable header of figure 3.6 / 3.1.2.11, the PUBLISH variable header of figure 3.11 /
 * 3.3.2.3) and hand-assembled server packets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_codec.h"
#include "t2m_test.h"

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__})
#define LEN(...) sizeof((const uint8_t[]){__VA_ARGS__})

/* The spec's Remaining Length table: PUBLISH packets whose remaining length is each boundary. */
static void test_remaining_length(void)
{
    static const struct {
        size_t rem;
        uint8_t enc[4];
        size_t n;
    } table[] = {
        {0, {0x00}, 1},
        {127, {0x7F}, 1},
        {128, {0x80, 0x01}, 2},
        {16383, {0xFF, 0x7F}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {2097151, {0xFF, 0xFF, 0x7F}, 3},
        {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
    };
    size_t cap = 2097152 + 16;
    uint8_t *buf = malloc(cap);
    uint8_t *payload = calloc(1, cap);
    CU_ASSERT_FATAL(buf && payload);
    for (size_t i = 1; i < sizeof(table) / sizeof(table[0]); i++) {
        /* QoS 0, topic "a": remaining = 2 + 1 + payload */
        size_t plen = table[i].rem - 3;
        if (table[i].rem < 3) continue;
        size_t n = t2m_mqtt_enc_publish(buf, cap, 4, "a", 1, payload, plen, 0, false, false, 0);
        CU_ASSERT_EQUAL(n, 1 + table[i].n + table[i].rem);
        CU_ASSERT(memcmp(buf + 1, table[i].enc, table[i].n) == 0);
        CU_ASSERT_EQUAL(t2m_mqtt_frame(buf, n), (long)n);
        CU_ASSERT_EQUAL(t2m_mqtt_frame(buf, n - 1), 0); /* one byte short: wait for more */
    }
    /* 0 and the largest: the header alone */
    CU_ASSERT_EQUAL(t2m_mqtt_frame(BYTES(0xD0, 0x00), 2), 2);
    CU_ASSERT_EQUAL(t2m_mqtt_frame(BYTES(0x30, 0xFF, 0xFF, 0xFF, 0x7F), 5), 0);
    CU_ASSERT_EQUAL(t2m_mqtt_frame(BYTES(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01), 6), -1);
    CU_ASSERT_EQUAL(t2m_mqtt_frame(BYTES(0x30, 0x80), 2), 0);
    /* over-long encodings (MQTT-1.5.5-1): 0 in two bytes, 127 in three */
    CU_ASSERT_EQUAL(t2m_mqtt_frame(BYTES(0xD0, 0x80, 0x00), 3), -1);
    CU_ASSERT_EQUAL(t2m_mqtt_frame(BYTES(0x30, 0xFF, 0x80, 0x00), 4), -1);
    /* the whole size is known from the header alone */
    size_t total = 0;
    CU_ASSERT_EQUAL(t2m_mqtt_frame_total(BYTES(0x30, 0xFF, 0xFF, 0x7F), 4, &total), 1);
    CU_ASSERT_EQUAL(total, 4 + 2097151);
    CU_ASSERT_EQUAL(t2m_mqtt_frame_total(BYTES(0x30, 0xFF), 2, &total), 0);
    CU_ASSERT_EQUAL(t2m_mqtt_frame(BYTES(0x30), 1), 0);
    free(buf);
    free(payload);
}

/* mqtt-v3.1.1 figure 3.6: protocol level 4, user name, password, will QoS 1, will flag, clean
 * session (0xCE), keep alive 10. */
static void test_connect_v311(void)
{
    uint8_t buf[256];
    struct t2m_mqtt_connect c = {.protocol = 4,
                                 .client_id = "t2m",
                                 .username = "u",
                                 .password = "pw",
                                 .will_topic = "t/state",
                                 .will_payload = "offline",
                                 .will_len = 7,
                                 .will_qos = 1,
                                 .will_retain = false,
                                 .keepalive = 10,
                                 .clean = true};
    size_t n = t2m_mqtt_enc_connect(buf, sizeof(buf), &c);
    static const uint8_t want[] = {
        0x10, 40,                                               /* CONNECT, remaining length */
        0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xCE, 0x00, 0x0A, /* figure 3.6 */
        0x00, 0x03, 't', '2', 'm',                              /* client id */
        0x00, 0x07, 't', '/', 's', 't', 'a',  't',  'e',        /* will topic */
        0x00, 0x07, 'o', 'f', 'f', 'l', 'i',  'n',  'e',        /* will message */
        0x00, 0x01, 'u',                                        /* user name */
        0x00, 0x02, 'p', 'w'};                                  /* password */
    CU_ASSERT_EQUAL_FATAL(n, sizeof(want));
    CU_ASSERT(memcmp(buf, want, n) == 0);
    /* the retained will sets bit 5; no will, no credentials: only clean session */
    c.will_retain = true;
    n = t2m_mqtt_enc_connect(buf, sizeof(buf), &c);
    CU_ASSERT_EQUAL(buf[9], 0xEE);
    struct t2m_mqtt_connect bare = {
        .protocol = 4, .client_id = "x", .keepalive = 60, .clean = true};
    n = t2m_mqtt_enc_connect(buf, sizeof(buf), &bare);
    CU_ASSERT_EQUAL(n, 2 + 10 + 3);
    CU_ASSERT(memcmp(buf, BYTES(0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0x00, 0x3C, 0, 1, 'x'),
                     15) == 0);
    /* a password alone goes with an empty user name (3.1.1 forbids it without) */
    bare.password = "s";
    n = t2m_mqtt_enc_connect(buf, sizeof(buf), &bare);
    CU_ASSERT_EQUAL(buf[9], 0xC2);
    CU_ASSERT(memcmp(buf + n - 5, BYTES(0, 0, 0, 1, 's'), 5) == 0);
    /* too small a buffer: nothing */
    CU_ASSERT_EQUAL(t2m_mqtt_enc_connect(buf, n - 1, &bare), 0);
}

/* mqtt-v5.0 3.1.2.11: protocol level 5, then the property length (0 here) after keep alive;
 * the will gets its own (empty) property list before the will topic. */
static void test_connect_v5(void)
{
    uint8_t buf[256];
    struct t2m_mqtt_connect c = {.protocol = 5,
                                 .client_id = "t2m",
                                 .will_topic = "w",
                                 .will_payload = "x",
                                 .will_len = 1,
                                 .will_qos = 1,
                                 .will_retain = true,
                                 .keepalive = 10,
                                 .clean = true};
    size_t n = t2m_mqtt_enc_connect(buf, sizeof(buf), &c);
    static const uint8_t want[] = {0x10, 23,   0x00, 0x04, 'M',  'Q',  'T',
                                   'T',  0x05, 0x2E, 0x00, 0x0A, 0x00, /* properties */
                                   0x00, 0x03, 't',  '2',  'm',  0x00, /* will properties */
                                   0x00, 0x01, 'w',  0x00, 0x01, 'x'};
    CU_ASSERT_EQUAL_FATAL(n, sizeof(want));
    CU_ASSERT(memcmp(buf, want, n) == 0);
    /* with Maximum Packet Size (0x27, a four-byte integer) announced: SPEC section 8 */
    c.will_topic = NULL;
    c.max_packet_size = 262144;
    n = t2m_mqtt_enc_connect(buf, sizeof(buf), &c);
    static const uint8_t want2[] = {0x10, 21,   0x00, 0x04, 'M',  'Q',  'T',  'T',
                                    0x05, 0x02, 0x00, 0x0A, 0x05, 0x27, 0x00, 0x04,
                                    0x00, 0x00, 0x00, 0x03, 't',  '2',  'm'};
    CU_ASSERT_EQUAL_FATAL(n, sizeof(want2));
    CU_ASSERT(memcmp(buf, want2, n) == 0);
    c.protocol = 4; /* MQTT 3.1.1 has no properties: nothing announced */
    CU_ASSERT_EQUAL(t2m_mqtt_enc_connect(buf, sizeof(buf), &c), 17);
}

/* mqtt-v3.1.1 figure 3.11: topic "a/b", packet identifier 10; MQTT 5 adds the property length. */
static void test_publish(void)
{
    uint8_t buf[64];
    size_t n = t2m_mqtt_enc_publish(buf, sizeof(buf), 4, "a/b", 3, "hi", 2, 1, true, false, 10);
    CU_ASSERT_EQUAL_FATAL(n, 11);
    CU_ASSERT(memcmp(buf, BYTES(0x33, 9, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'), 11) ==
              0);
    n = t2m_mqtt_enc_publish(buf, sizeof(buf), 5, "a/b", 3, "hi", 2, 1, false, true, 10);
    CU_ASSERT_EQUAL_FATAL(n, 12);
    CU_ASSERT(memcmp(buf, BYTES(0x3A, 10, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 0x00, 'h', 'i'),
                     12) == 0);
    n = t2m_mqtt_enc_publish(buf, sizeof(buf), 4, "a/b", 3, "", 0, 0, false, false, 0);
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT(memcmp(buf, BYTES(0x30, 5, 0, 3, 'a', '/', 'b'), 7) == 0);
    /* invalid: QoS 1 without an id, QoS 2 (the bridge never sends it), an id over 16 bits */
    CU_ASSERT_EQUAL(t2m_mqtt_enc_publish(buf, sizeof(buf), 4, "a", 1, "", 0, 1, false, false, 0),
                    0);
    CU_ASSERT_EQUAL(t2m_mqtt_enc_publish(buf, sizeof(buf), 4, "a", 1, "", 0, 2, false, false, 1),
                    0);
    CU_ASSERT_EQUAL(
        t2m_mqtt_enc_publish(buf, sizeof(buf), 4, "a", 1, "", 0, 1, false, false, 65536), 0);
    /* exactly the size fits, one byte less does not (and writes nothing) */
    memset(buf, 0x5A, sizeof(buf));
    CU_ASSERT_EQUAL(t2m_mqtt_enc_publish(buf, 6, 4, "a/b", 3, "", 0, 0, false, false, 0), 0);
    CU_ASSERT_EQUAL(buf[0], 0x5A);
    CU_ASSERT_EQUAL(t2m_mqtt_enc_publish(buf, 7, 4, "a/b", 3, "", 0, 0, false, false, 0), 7);

    /* what the bridge sends decodes as what it meant */
    n = t2m_mqtt_enc_publish(buf, sizeof(buf), 5, "x/y", 3, "{}", 2, 1, true, false, 65535);
    struct t2m_mqtt_packet p;
    CU_ASSERT_EQUAL_FATAL(t2m_mqtt_decode(buf, n, 5, &p), 0);
    CU_ASSERT_EQUAL(p.type, T2M_MQTT_PUBLISH);
    CU_ASSERT_EQUAL(p.qos, 1);
    CU_ASSERT(p.retain && !p.dup);
    CU_ASSERT_EQUAL(p.id, 65535);
    CU_ASSERT(p.topic_len == 3 && memcmp(p.topic, "x/y", 3) == 0);
    CU_ASSERT(p.payload_len == 2 && memcmp(p.payload, "{}", 2) == 0);
}

static void test_small_packets(void)
{
    uint8_t buf[64];
    CU_ASSERT_EQUAL(t2m_mqtt_enc_pingreq(buf, sizeof(buf)), 2);
    CU_ASSERT(memcmp(buf, BYTES(0xC0, 0x00), 2) == 0);
    CU_ASSERT_EQUAL(t2m_mqtt_enc_disconnect(buf, sizeof(buf), 5), 2);
    CU_ASSERT(memcmp(buf, BYTES(0xE0, 0x00), 2) == 0);
    CU_ASSERT_EQUAL(t2m_mqtt_enc_puback(buf, sizeof(buf), 4, 7), 4);
    CU_ASSERT(memcmp(buf, BYTES(0x40, 0x02, 0x00, 0x07), 4) == 0);
    /* SUBSCRIBE: reserved flags 0010, one filter with its options byte */
    CU_ASSERT_EQUAL(t2m_mqtt_enc_subscribe(buf, sizeof(buf), 4, 1, "a/#", 1), 10);
    CU_ASSERT(memcmp(buf, BYTES(0x82, 8, 0, 1, 0, 3, 'a', '/', '#', 0x01), 10) == 0);
    CU_ASSERT_EQUAL(t2m_mqtt_enc_subscribe(buf, sizeof(buf), 5, 2, "a/#", 0), 11);
    CU_ASSERT(memcmp(buf, BYTES(0x82, 9, 0, 2, 0, 0, 3, 'a', '/', '#', 0x00), 11) == 0);
    CU_ASSERT_EQUAL(t2m_mqtt_enc_unsubscribe(buf, sizeof(buf), 4, 3, "a/#"), 9);
    CU_ASSERT(memcmp(buf, BYTES(0xA2, 7, 0, 3, 0, 3, 'a', '/', '#'), 9) == 0);
    CU_ASSERT_EQUAL(t2m_mqtt_enc_pingreq(buf, 1), 0);
}

/* Decodes a copy that outlives the statement (a compound literal's bytes do not): the packet's
 * pointers stay valid until the next call. */
static int dec(const uint8_t *b, size_t n, int protocol, struct t2m_mqtt_packet *p)
{
    static uint8_t keep[512];
    if (n > sizeof(keep)) return -2;
    memcpy(keep, b, n);
    return t2m_mqtt_decode(keep, n, protocol, p);
}

#define DEC(proto, p, ...) dec(BYTES(__VA_ARGS__), LEN(__VA_ARGS__), proto, p)

static void test_connack(void)
{
    struct t2m_mqtt_packet p;
    CU_ASSERT_EQUAL(DEC(4, &p, 0x20, 0x02, 0x00, 0x00), 0);
    CU_ASSERT_EQUAL(p.type, T2M_MQTT_CONNACK);
    CU_ASSERT(p.reason == 0 && !p.session_present);
    CU_ASSERT(p.max_packet_size == 0 && p.receive_max == 0 && p.max_qos == 2 &&
              p.retain_available); /* 3.1.1: no limits */
    CU_ASSERT_EQUAL(DEC(4, &p, 0x20, 0x02, 0x01, 0x05), 0);
    CU_ASSERT(p.session_present && p.reason == 5);
    T2M_ASSERT_STR(t2m_mqtt_connack_string(4, 5), "not authorized");
    CU_ASSERT_EQUAL(DEC(4, &p, 0x20, 0x02, 0x02, 0x00), -1); /* reserved ack flag */
    CU_ASSERT_EQUAL(DEC(4, &p, 0x20, 0x03, 0x00, 0x00, 0x00), -1);
    /* MQTT 5 with the limits of SPEC section 8 and properties to skip (a named array: the
     * reason string points into it) */
    static const uint8_t v5[] = {0x20, 37,   0x00, 0x00, 34,   /* property length */
                                 0x27, 0x00, 0x00, 0x01, 0x00, /* maximum packet size 256 */
                                 0x21, 0x00, 0x02,             /* receive maximum 2 */
                                 0x24, 0x00,                   /* maximum QoS 0 */
                                 0x25, 0x00,                   /* retain not available */
                                 0x22, 0x00, 0x0A,             /* topic alias maximum 10 */
                                 0x13, 0x00, 0x14,             /* server keep alive 20 */
                                 0x1F, 0x00, 0x02, 'h',  'i',  /* reason string */
                                 0x26, 0x00, 0x01, 'k',  0x00, 0x01, 'v', /* user property */
                                 0x12, 0x00, 0x01, 'x'};                  /* assigned client id */
    CU_ASSERT_EQUAL(dec(v5, sizeof(v5), 5, &p), 0);
    CU_ASSERT_EQUAL(p.max_packet_size, 256);
    CU_ASSERT_EQUAL(p.receive_max, 2);
    CU_ASSERT_EQUAL(p.max_qos, 0);
    CU_ASSERT_FALSE(p.retain_available);
    CU_ASSERT_EQUAL(p.topic_alias_max, 10);
    CU_ASSERT_EQUAL(p.server_keepalive, 20);
    CU_ASSERT(p.reason_string_len == 2 && memcmp(p.reason_string, "hi", 2) == 0);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x20, 0x03, 0x00, 0x87, 0x00), 0);
    CU_ASSERT_EQUAL(p.reason, 0x87);
    T2M_ASSERT_STR(t2m_mqtt_connack_string(5, 0x87), "not authorized");
    CU_ASSERT_EQUAL(DEC(5, &p, 0x20, 0x02, 0x00, 0x00), 0); /* no property length at all */
    /* malformed properties: unknown id, a property longer than its list, receive maximum 0 */
    CU_ASSERT_EQUAL(DEC(5, &p, 0x20, 0x05, 0x00, 0x00, 0x02, 0x7E, 0x00), -1);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x20, 0x05, 0x00, 0x00, 0x02, 0x21, 0x00), -1);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00), -1);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x20, 0x04, 0x00, 0x00, 0x05, 0x24), -1);
    /* a property twice is a protocol error (MQTT 5, 2.2.2.2); the user property may repeat */
    CU_ASSERT_EQUAL(DEC(5, &p, 0x20, 0x07, 0x00, 0x00, 0x04, 0x24, 0x00, 0x24, 0x01), -1);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x20, 0x09, 0x00, 0x00, 0x06, 0x21, 0x00, 0x05, 0x21, 0x00, 0x05),
                    -1);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x20, 0x0F, 0x00, 0x00, 0x0C, 0x26, 0x00, 0x01, 'a', 0x00, 0x00,
                        0x26, 0x00, 0x01, 'b', 0x00, 0x00),
                    0);
}

static void test_acks(void)
{
    struct t2m_mqtt_packet p;
    CU_ASSERT_EQUAL(DEC(4, &p, 0x40, 0x02, 0x12, 0x34), 0);
    CU_ASSERT(p.type == T2M_MQTT_PUBACK && p.id == 0x1234 && p.reason == 0);
    CU_ASSERT_EQUAL(DEC(4, &p, 0x40, 0x03, 0x12, 0x34, 0x87), -1); /* 3.1.1 has no reason */
    CU_ASSERT_EQUAL(DEC(5, &p, 0x40, 0x03, 0x00, 0x07, 0x87), 0);
    CU_ASSERT(p.id == 7 && p.reason == 0x87);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x40, 0x07, 0x00, 0x07, 0x10, 0x03, 0x1F, 0x00, 0x00), 0);
    CU_ASSERT(p.id == 7 && p.reason == 0x10 && p.reason_string_len == 0);
    CU_ASSERT_EQUAL(DEC(4, &p, 0x41, 0x02, 0x00, 0x01), -1); /* reserved flags */
    CU_ASSERT_EQUAL(DEC(4, &p, 0x40, 0x01, 0x00), -1);
    CU_ASSERT_EQUAL(DEC(4, &p, 0x90, 0x03, 0x00, 0x01, 0x01), 0);
    CU_ASSERT(p.type == T2M_MQTT_SUBACK && p.id == 1 && p.reason == 1);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x90, 0x04, 0x00, 0x02, 0x00, 0x80), 0);
    CU_ASSERT(p.id == 2 && p.reason == 0x80);
    CU_ASSERT_EQUAL(DEC(4, &p, 0x90, 0x02, 0x00, 0x01), -1); /* no return code */
    CU_ASSERT_EQUAL(DEC(4, &p, 0xB0, 0x02, 0x00, 0x03), 0);
    CU_ASSERT(p.type == T2M_MQTT_UNSUBACK && p.id == 3);
    CU_ASSERT_EQUAL(DEC(5, &p, 0xB0, 0x04, 0x00, 0x03, 0x00, 0x00), 0);
    CU_ASSERT_EQUAL(DEC(4, &p, 0xD0, 0x00), 0);
    CU_ASSERT_EQUAL(p.type, T2M_MQTT_PINGRESP);
    CU_ASSERT_EQUAL(DEC(4, &p, 0xD0, 0x01, 0x00), -1);
    CU_ASSERT_EQUAL(DEC(5, &p, 0xE0, 0x00), 0);
    CU_ASSERT(p.type == T2M_MQTT_DISCONNECT && p.reason == 0);
    CU_ASSERT_EQUAL(DEC(5, &p, 0xE0, 0x07, 0x8E, 0x05, 0x1F, 0x00, 0x02, 'n', 'o'), 0);
    CU_ASSERT(p.reason == 0x8E && p.reason_string_len == 2);
    /* a client's packets never come from a server */
    CU_ASSERT_EQUAL(DEC(4, &p, 0x10, 0x00), -1);
    CU_ASSERT_EQUAL(DEC(4, &p, 0x82, 0x00), -1);
    CU_ASSERT_EQUAL(DEC(4, &p, 0xC0, 0x00), -1);
    CU_ASSERT_EQUAL(DEC(4, &p, 0x00, 0x00), -1);
}

static void test_incoming_publish(void)
{
    struct t2m_mqtt_packet p;
    CU_ASSERT_EQUAL(DEC(4, &p, 0x31, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'), 0);
    CU_ASSERT(p.qos == 0 && p.retain && p.id == 0);
    CU_ASSERT(p.topic_len == 3 && p.payload_len == 2 && memcmp(p.payload, "hi", 2) == 0);
    CU_ASSERT_EQUAL(DEC(4, &p, 0x32, 0x06, 0x00, 0x01, 't', 0x00, 0x05, 'x'), 0);
    CU_ASSERT(p.qos == 1 && p.id == 5 && p.payload_len == 1);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x30, 0x07, 0x00, 0x01, 't', 0x02, 0x01, 0x01, 'x'), 0);
    CU_ASSERT(p.payload_len == 1 && p.payload[0] == 'x');   /* properties skipped */
    CU_ASSERT_EQUAL(DEC(4, &p, 0x30, 0x02, 0x00, 0x00), 0); /* empty topic and payload */
    /* malformed: QoS 3, packet id 0, the topic longer than the packet, a topic alias */
    CU_ASSERT_EQUAL(DEC(4, &p, 0x36, 0x03, 0x00, 0x01, 't'), -1);
    CU_ASSERT_EQUAL(DEC(4, &p, 0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00), -1);
    CU_ASSERT_EQUAL(DEC(4, &p, 0x30, 0x03, 0x00, 0x05, 't'), -1);
    CU_ASSERT_EQUAL(DEC(5, &p, 0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, 'x'), -1);
    /* a frame that is not exactly one packet */
    CU_ASSERT_EQUAL(DEC(4, &p, 0x30, 0x04, 0x00, 0x01, 't'), -1);
    CU_ASSERT_EQUAL(DEC(4, &p, 0xD0, 0x00, 0xD0, 0x00), -1);
}

/* Any input: framing and decoding never read past the bytes given (ASan build) and agree. */
static void test_robust(void)
{
    uint8_t buf[64];
    unsigned seed = 12345;
    for (int i = 0; i < 200000; i++) {
        size_t n = (size_t)(i % 24);
        for (size_t j = 0; j < n; j++) {
            seed = seed * 1103515245u + 12345u;
            buf[j] = (uint8_t)(seed >> 16);
        }
        if (n) buf[0] = (uint8_t)((buf[0] & 0xF0u) | (i % 3 == 0 ? 0 : buf[0] & 0x0Fu));
        uint8_t *exact = malloc(n ? n : 1);
        CU_ASSERT_FATAL(exact != NULL);
        memcpy(exact, buf, n);
        long f = t2m_mqtt_frame(exact, n);
        struct t2m_mqtt_packet p;
        int r = t2m_mqtt_decode(exact, n, i % 2 ? 5 : 4, &p);
        if (r == 0) CU_ASSERT_EQUAL(f, (long)n);
        free(exact);
    }
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"remaining length table", test_remaining_length},
        {"CONNECT 3.1.1", test_connect_v311},
        {"CONNECT 5", test_connect_v5},
        {"PUBLISH", test_publish},
        {"PINGREQ, DISCONNECT, PUBACK, SUBSCRIBE", test_small_packets},
        {"CONNACK and its limits", test_connack},
        {"PUBACK, SUBACK, UNSUBACK, PINGRESP, DISCONNECT", test_acks},
        {"incoming PUBLISH", test_incoming_publish},
        {"random bytes", test_robust},
        {NULL, NULL},
    };
    return t2m_test_run("mqtt_codec", cases);
}
