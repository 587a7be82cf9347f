/* fuzz_topics.c - libFuzzer target: topic segment encoding (SPEC section 2) and Home Assistant
 * ids. The input is split in two byte strings a and b (the first byte says where): encoding must
 * round-trip through decode, stay inside [A-Za-z0-9._~%-], and map distinct inputs to distinct
 * outputs; every output buffer is allocated to the exact size so an overrun is an ASan report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "protocol.h"
#include "topics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '~' || c == '-';
}

/* Encodes s into a heap buffer of exactly the size needed; checks that one byte less fails.
 * Returns the buffer (free it) with *outlen set, or NULL when s is not a valid segment. */
static char *encode_exact(const char *s, size_t len, int *outlen)
{
    size_t need = 0;
    for (size_t i = 0; i < len; i++)
        need += unreserved((unsigned char)s[i]) ? 1 : 3;
    char *big = malloc(3 * T2M_TOKEN_MAX + 1);
    FUZZ_CHECK(big != NULL, "oom");
    int r = t2m_topic_segment(big, 3 * T2M_TOKEN_MAX + 1, s, len);
    free(big);
    if (len == 0 || len > T2M_TOKEN_MAX) {
        FUZZ_CHECK(r == -1, "segment of %zu bytes accepted", len);
        return NULL;
    }
    FUZZ_CHECK(r == (int)need, "encoded length %d, expected %zu", r, need);
    char *small = malloc(need);
    FUZZ_CHECK(small != NULL, "oom");
    FUZZ_CHECK(t2m_topic_segment(small, need, s, len) == -1, "fits without room for the NUL");
    free(small);
    char *out = malloc(need + 1);
    FUZZ_CHECK(out != NULL, "oom");
    *outlen = t2m_topic_segment(out, need + 1, s, len);
    FUZZ_CHECK(*outlen == (int)need && out[need] == '\0', "exact-size encode failed");
    for (size_t i = 0; i < need; i++)
        FUZZ_CHECK(unreserved((unsigned char)out[i]) || out[i] == '%', "byte 0x%02x in segment",
                   (unsigned char)out[i]);
    return out;
}

static void check_segment(const char *s, size_t len)
{
    int elen;
    char *enc = encode_exact(s, len, &elen);
    if (!enc) return;
    char *dec = malloc(len + 1);
    FUZZ_CHECK(dec != NULL, "oom");
    int dl = t2m_topic_segment_decode(dec, len + 1, enc, (size_t)elen);
    FUZZ_CHECK(dl == (int)len && memcmp(dec, s, len) == 0, "decode(encode(x)) != x");
    free(dec);

    /* a topic built from it has exactly the expected shape */
    size_t tl = 10 + 1 + (size_t)elen + 1 + 8;
    char *topic = malloc(tl + 1);
    FUZZ_CHECK(topic != NULL, "oom");
    FUZZ_CHECK(t2m_topic_join(topic, tl, 3, "telematics", enc, "position") == -1,
               "join fits without room for the NUL");
    FUZZ_CHECK(t2m_topic_join(topic, tl + 1, 3, "telematics", enc, "position") == (int)tl,
               "join length");
    FUZZ_CHECK(strncmp(topic, "telematics/", 11) == 0 &&
                   strchr(topic + 11, '/') == topic + 11 + elen && strpbrk(topic, "+#") == NULL,
               "topic %s escapes its segment", topic);
    free(topic);
    free(enc);
}

/* Whatever decode accepts re-encodes to a segment that decodes to the same bytes. */
static void check_decode(const char *s, size_t len)
{
    char *dec = malloc(len + 1);
    FUZZ_CHECK(dec != NULL, "oom");
    int dl = t2m_topic_segment_decode(dec, len + 1, s, len);
    if (dl > 0 && dl <= T2M_TOKEN_MAX) {
        int elen;
        char *enc = encode_exact(dec, (size_t)dl, &elen);
        FUZZ_CHECK(enc != NULL, "decoded segment does not encode");
        char *again = malloc((size_t)dl + 1);
        FUZZ_CHECK(again != NULL, "oom");
        FUZZ_CHECK(t2m_topic_segment_decode(again, (size_t)dl + 1, enc, (size_t)elen) == dl &&
                       memcmp(again, dec, (size_t)dl) == 0,
                   "decode is not stable");
        free(again);
        free(enc);
    }
    free(dec);
}

static char *ha_id_exact(const char *s, size_t len, int *outlen)
{
    size_t need = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int keep =
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        need += keep ? 1 : 3;
    }
    char *out = malloc(need + 1);
    FUZZ_CHECK(out != NULL, "oom");
    FUZZ_CHECK(t2m_topic_ha_id(out, need, s, len) == -1, "ha_id fits without room for the NUL");
    *outlen = t2m_topic_ha_id(out, need + 1, s, len);
    FUZZ_CHECK(*outlen == (int)need, "ha_id length %d, expected %zu", *outlen, need);
    for (size_t i = 0; i < need; i++) {
        unsigned char c = (unsigned char)out[i];
        FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_',
                   "byte 0x%02x in ha_id", c);
    }
    return out;
}

static void check_escape(const char *s, size_t len)
{
    size_t n = 6 * len + 3;
    char *buf = malloc(n);
    FUZZ_CHECK(buf != NULL, "oom");
    size_t w = t2m_json_escape(buf, n, s, len);
    FUZZ_CHECK(w > 0 && strlen(buf) == w, "escape failed for %zu bytes", len);
    /* wrap it to parse it as a document */
    char *doc = malloc(w + 8);
    FUZZ_CHECK(doc != NULL, "oom");
    memcpy(doc, "{\"k\":", 5);
    memcpy(doc + 5, buf, w);
    doc[w + 5] = '}';
    json_object *o = fuzz_json_object(doc, w + 6);
    FUZZ_CHECK(o != NULL, "escaped string is not JSON: %s", buf);
    json_object *v;
    FUZZ_CHECK(json_object_object_get_ex(o, "k", &v) && json_object_is_type(v, json_type_string),
               "escaped string lost");
    if (fuzz_utf8_valid((const unsigned char *)s, len))
        FUZZ_CHECK((size_t)json_object_get_string_len(v) == len &&
                       memcmp(json_object_get_string(v), s, len) == 0,
                   "escape does not round-trip");
    json_object_put(o);
    free(doc);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    size_t split = data[0] < size ? data[0] : size - 1;
    const char *a = (const char *)data + 1;
    size_t alen = split;
    const char *b = (const char *)data + 1 + split;
    size_t blen = size - 1 - split;

    check_segment(a, alen);
    check_segment(b, blen);
    check_decode(b, blen);
    check_escape(a, alen);

    /* collision-free: distinct inputs, distinct encodings (both mappings) */
    int same = alen == blen && memcmp(a, b, alen) == 0;
    int ea, eb;
    char *sa = encode_exact(a, alen, &ea), *sb = encode_exact(b, blen, &eb);
    if (sa && sb)
        FUZZ_CHECK((ea == eb && memcmp(sa, sb, (size_t)ea) == 0) == same, "segment collision");
    free(sa);
    free(sb);
    char *ha = ha_id_exact(a, alen, &ea), *hb = ha_id_exact(b, blen, &eb);
    FUZZ_CHECK((ea == eb && memcmp(ha, hb, (size_t)ea) == 0) == same, "ha_id collision");
    free(ha);
    free(hb);
    return 0;
}
