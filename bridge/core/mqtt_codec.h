/* mqtt_codec.h - pure: the MQTT 3.1.1 (protocol level 4) and MQTT 5 packets the bridge sends and
 * receives, as bytes. No I/O, no allocation, no clock: the lws transport (io/mqtt_lws.c) frames
 * its reads with t2m_mqtt_frame, decodes with t2m_mqtt_decode, and appends encoded packets to
 * its output buffer. Encoders return the packet's length, or 0 when it does not fit in the
 * buffer or cannot be encoded (a field over its MQTT limit). */
#ifndef T2M_MQTT_CODEC_H
#define T2M_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum t2m_mqtt_type {
    T2M_MQTT_CONNECT = 1,
    T2M_MQTT_CONNACK = 2,
    T2M_MQTT_PUBLISH = 3,
    T2M_MQTT_PUBACK = 4,
    T2M_MQTT_PUBREC = 5,
    T2M_MQTT_PUBREL = 6,
    T2M_MQTT_PUBCOMP = 7,
    T2M_MQTT_SUBSCRIBE = 8,
    T2M_MQTT_SUBACK = 9,
    T2M_MQTT_UNSUBSCRIBE = 10,
    T2M_MQTT_UNSUBACK = 11,
    T2M_MQTT_PINGREQ = 12,
    T2M_MQTT_PINGRESP = 13,
    T2M_MQTT_DISCONNECT = 14,
    T2M_MQTT_AUTH = 15,
};

#define T2M_MQTT_MAX_REMAINING 268435455u /* the largest Remaining Length (4-byte varint) */

struct t2m_mqtt_connect {
    int protocol; /* 4 (3.1.1) or 5 */
    const char *client_id;
    const char *username, *password; /* NULL: none */
    const char *will_topic;          /* NULL: no will */
    const void *will_payload;
    size_t will_len;
    int will_qos;
    bool will_retain;
    unsigned keepalive; /* seconds */
    bool clean;
    uint32_t max_packet_size; /* MQTT 5: the largest packet the client takes; 0: not announced */
};

/* A packet from the server, decoded. Pointers point into the decoded bytes. */
struct t2m_mqtt_packet {
    int type;    /* T2M_MQTT_* */
    int flags;   /* the fixed header's low four bits */
    int reason;  /* CONNACK return/reason code, PUBACK/DISCONNECT reason, SUBACK first code */
    unsigned id; /* PUBACK, SUBACK, UNSUBACK, incoming PUBLISH at QoS > 0 */
    bool session_present;
    /* CONNACK (MQTT 5 properties; 3.1.1 brokers announce nothing: these say "no limit") */
    uint32_t max_packet_size; /* 0: no limit */
    unsigned receive_max;     /* 0: not announced (65,535) */
    int max_qos;              /* 2 unless announced */
    bool retain_available;
    unsigned topic_alias_max;
    unsigned server_keepalive; /* 0: not announced */
    const char *reason_string; /* CONNACK/PUBACK/DISCONNECT Reason String, not NUL-terminated */
    size_t reason_string_len;
    /* incoming PUBLISH */
    const char *topic;
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
    int qos;
    bool retain, dup;
};

/* Bytes of the packet starting at buf: > 0 when all of it is in the len bytes, 0 when more
 * are needed, -1 when the Remaining Length is malformed (longer than 4 bytes, or over-long:
 * not in the fewest bytes, MQTT-1.5.5-1). */
long t2m_mqtt_frame(const uint8_t *buf, size_t len);
/* The whole packet's size once its fixed header is in: 1 with *total set, 0 when the header is
 * not complete yet, -1 when malformed (as t2m_mqtt_frame). */
long t2m_mqtt_frame_total(const uint8_t *buf, size_t len, size_t *total);

/* Decodes one framed packet (as t2m_mqtt_frame delimited it) that a server may send: CONNACK,
 * PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP, DISCONNECT (AUTH, PUBREC, PUBREL, PUBCOMP are
 * decoded as their type only). 0, or -1 when the packet is malformed or one a server never
 * sends (CONNECT, SUBSCRIBE, ...). */
int t2m_mqtt_decode(const uint8_t *pkt, size_t len, int protocol, struct t2m_mqtt_packet *out);

size_t t2m_mqtt_enc_connect(uint8_t *buf, size_t n, const struct t2m_mqtt_connect *c);
/* PUBLISH: id only at QoS 1 (1..65535); MQTT 5 with an empty property list. */
size_t t2m_mqtt_enc_publish(uint8_t *buf, size_t n, int protocol, const char *topic, size_t tlen,
                            const void *payload, size_t plen, int qos, bool retain, bool dup,
                            unsigned id);
size_t t2m_mqtt_enc_puback(uint8_t *buf, size_t n, int protocol, unsigned id);
/* One topic filter per SUBSCRIBE / UNSUBSCRIBE. */
size_t t2m_mqtt_enc_subscribe(uint8_t *buf, size_t n, int protocol, unsigned id, const char *filter,
                              int qos);
size_t t2m_mqtt_enc_unsubscribe(uint8_t *buf, size_t n, int protocol, unsigned id,
                                const char *filter);
size_t t2m_mqtt_enc_pingreq(uint8_t *buf, size_t n);
/* DISCONNECT, normal (reason 0: MQTT 5 sends the two-byte short form). */
size_t t2m_mqtt_enc_disconnect(uint8_t *buf, size_t n, int protocol);

/* A CONNACK code as text: 3.1.1 return codes 1-5, MQTT 5 reason codes 0x80 and up. */
const char *t2m_mqtt_connack_string(int protocol, int code);

#endif
