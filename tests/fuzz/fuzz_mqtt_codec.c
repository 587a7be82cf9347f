/* fuzz_mqtt_codec.c - libFuzzer target: the MQTT packet decoder on what a broker may send. The
 * input is a byte stream cut into packets the way the lws transport does (t2m_mqtt_frame), each
 * decoded as MQTT 3.1.1 and as MQTT 5, each copied into a buffer of exactly its size (an overread
 * is an ASan report). A decoded PUBLISH at QoS 0/1 is encoded again and must decode the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "mqtt_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_publish(const struct t2m_mqtt_packet *p, int protocol)
{
    if (p->type != T2M_MQTT_PUBLISH || p->qos > 1) return;
    size_t cap = p->topic_len + p->payload_len + 16;
    uint8_t *buf = malloc(cap);
    FUZZ_CHECK(buf != NULL, "oom");
    size_t n = t2m_mqtt_enc_publish(buf, cap, protocol, p->topic, p->topic_len, p->payload,
                                    p->payload_len, p->qos, p->retain, p->dup, p->id);
    FUZZ_CHECK(n > 0, "a decoded PUBLISH must encode again");
    FUZZ_CHECK(t2m_mqtt_frame(buf, n) == (long)n, "framing of an encoded PUBLISH");
    struct t2m_mqtt_packet q;
    FUZZ_CHECK(t2m_mqtt_decode(buf, n, protocol, &q) == 0, "re-encoded PUBLISH decodes");
    FUZZ_CHECK(q.qos == p->qos && q.retain == p->retain && q.dup == p->dup && q.id == p->id,
               "flags and id survive");
    FUZZ_CHECK(q.topic_len == p->topic_len && memcmp(q.topic, p->topic, q.topic_len) == 0,
               "topic survives");
    FUZZ_CHECK(q.payload_len == p->payload_len &&
                   (q.payload_len == 0 || memcmp(q.payload, p->payload, q.payload_len) == 0),
               "payload survives");
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        long f = t2m_mqtt_frame(data + off, size - off);
        if (f <= 0) break; /* need more bytes, or malformed: the transport drops the connection */
        FUZZ_CHECK((size_t)f <= size - off && f >= 2, "a frame lies inside the input");
        uint8_t *pkt = malloc((size_t)f);
        FUZZ_CHECK(pkt != NULL, "oom");
        memcpy(pkt, data + off, (size_t)f);
        for (int protocol = 4; protocol <= 5; protocol++) {
            struct t2m_mqtt_packet p;
            if (t2m_mqtt_decode(pkt, (size_t)f, protocol, &p) != 0) continue;
            FUZZ_CHECK(p.type >= 2 && p.type <= 15, "a server packet type");
            if (p.topic) FUZZ_CHECK(p.topic >= (const char *)pkt, "topic inside the packet");
            if (p.reason_string)
                FUZZ_CHECK(p.reason_string >= (const char *)pkt &&
                               p.reason_string + p.reason_string_len <= (const char *)pkt + f,
                           "reason string inside the packet");
            check_publish(&p, protocol);
        }
        free(pkt);
        off += (size_t)f;
    }
    return 0;
}
