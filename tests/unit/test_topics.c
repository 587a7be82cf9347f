/* test_topics.c - topic segment encoding, Home Assistant ids, joining. */
#include <stdlib.h>

#include "protocol.h"
#include "t2m_test.h"
#include "topics.h"

static char enc[3 * T2M_TOKEN_MAX + 1];

static const char *seg(const char *in, size_t len)
{
    if (t2m_topic_segment(enc, sizeof(enc), in, len) < 0) return "<rejected>";
    return enc;
}

static void test_segment_spec(void)
{
    T2M_ASSERT_STR(seg("a/b", 3), "a%2Fb");
    T2M_ASSERT_STR(seg("+", 1), "%2B");
    T2M_ASSERT_STR(seg("#", 1), "%23");
    T2M_ASSERT_STR(seg("$SYS", 4), "%24SYS");
    T2M_ASSERT_STR(seg("a\0b", 3), "a%00b");
    T2M_ASSERT_STR(seg("caf\xc3\xa9", 5), "caf%C3%A9");
    T2M_ASSERT_STR(seg("A-z_0.9~", 8), "A-z_0.9~");
    T2M_ASSERT_STR(seg("a b%", 4), "a%20b%25");
    T2M_ASSERT_STR(seg("e4855fba-0d7e-4dbd-baad-aae9d0b90c15", 36),
                   "e4855fba-0d7e-4dbd-baad-aae9d0b90c15");
    T2M_ASSERT_STR(seg("", 0), "<rejected>");
}

static void test_segment_lengths(void)
{
    char in[T2M_TOKEN_MAX + 1];
    memset(in, '/', sizeof(in));
    CU_ASSERT_EQUAL(t2m_topic_segment(enc, sizeof(enc), in, 256), 3 * 256); /* worst case fits */
    CU_ASSERT_EQUAL(t2m_topic_segment(enc, sizeof(enc), in, 257), -1);
    char small[4];
    CU_ASSERT_EQUAL(t2m_topic_segment(small, sizeof(small), "abc", 3), 3);
    CU_ASSERT_EQUAL(t2m_topic_segment(small, sizeof(small), "abcd", 4), -1);
    CU_ASSERT_EQUAL(t2m_topic_segment(small, sizeof(small), "a/", 2), -1);
    CU_ASSERT_EQUAL(t2m_topic_segment(small, sizeof(small), "/", 1), 3);
}

static void test_encoded_never_has_topic_syntax(void)
{
    char in[256];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    int l = t2m_topic_segment(enc, sizeof(enc), in, sizeof(in));
    CU_ASSERT_FATAL(l > 0);
    CU_ASSERT_PTR_NULL(memchr(enc, '/', (size_t)l));
    CU_ASSERT_PTR_NULL(memchr(enc, '+', (size_t)l));
    CU_ASSERT_PTR_NULL(memchr(enc, '#', (size_t)l));
    CU_ASSERT_PTR_NULL(memchr(enc, '$', (size_t)l));
    CU_ASSERT_PTR_NULL(memchr(enc, '\0', (size_t)l));
}

static void test_roundtrip(void)
{
    char dec[T2M_TOKEN_MAX + 1];
    char in[T2M_TOKEN_MAX];
    srand(7);
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = 1 + (size_t)rand() % T2M_TOKEN_MAX;
        for (size_t i = 0; i < len; i++)
            in[i] = (char)(rand() % 256);
        int l = t2m_topic_segment(enc, sizeof(enc), in, len);
        CU_ASSERT_FATAL(l > 0);
        int d = t2m_topic_segment_decode(dec, sizeof(dec), enc, (size_t)l);
        CU_ASSERT_EQUAL_FATAL(d, (int)len);
        CU_ASSERT(memcmp(dec, in, len) == 0);
    }
}

static void test_decode_malformed(void)
{
    char dec[64];
    CU_ASSERT_EQUAL(t2m_topic_segment_decode(dec, sizeof(dec), "a%2fb", 5), 3);
    T2M_ASSERT_STR(dec, "a/b");
    CU_ASSERT_EQUAL(t2m_topic_segment_decode(dec, sizeof(dec), "%", 1), -1);
    CU_ASSERT_EQUAL(t2m_topic_segment_decode(dec, sizeof(dec), "%2", 2), -1);
    CU_ASSERT_EQUAL(t2m_topic_segment_decode(dec, sizeof(dec), "%zz", 3), -1);
    CU_ASSERT_EQUAL(t2m_topic_segment_decode(dec, sizeof(dec), "a/b", 3), -1);
    CU_ASSERT_EQUAL(t2m_topic_segment_decode(dec, sizeof(dec), "+", 1), -1);
    CU_ASSERT_EQUAL(t2m_topic_segment_decode(dec, 3, "abc", 3), -1);
    CU_ASSERT_EQUAL(t2m_topic_segment_decode(dec, sizeof(dec), "", 0), 0);
}

static const char *haid(const char *in, size_t len)
{
    if (t2m_topic_ha_id(enc, sizeof(enc), in, len) < 0) return "<rejected>";
    return enc;
}

static void test_ha_id(void)
{
    T2M_ASSERT_STR(haid("e4855fba-0d7e", 13), "e4855fba-0d7e");
    T2M_ASSERT_STR(haid("a_b", 3), "a_5fb");
    T2M_ASSERT_STR(haid("a/b", 3), "a_2fb");
    T2M_ASSERT_STR(haid("a.b", 3), "a_2eb");
    T2M_ASSERT_STR(haid("\xff", 1), "_ff");
    char small[3];
    CU_ASSERT_EQUAL(t2m_topic_ha_id(small, sizeof(small), "/", 1), -1);
    CU_ASSERT_EQUAL(t2m_topic_ha_id(small, sizeof(small), "ab", 2), 2);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_ha_id_collision_free(void)
{
    /* Pairs that a lossy mapping (everything to '_') would merge. */
    const char *pairs[][2] = {{"a_b", "a/b"}, {"a_2fb", "a/b"}, {"a.b", "a_b"},
                              {"_", "__"},    {"a b", "a_b"},   {"A", "a"}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        char x[64], y[64];
        CU_ASSERT(t2m_topic_ha_id(x, sizeof(x), pairs[i][0], strlen(pairs[i][0])) >= 0);
        CU_ASSERT(t2m_topic_ha_id(y, sizeof(y), pairs[i][1], strlen(pairs[i][1])) >= 0);
        CU_ASSERT(strcmp(x, y) != 0);
    }
    /* Exhaustively over all 1- and 2-byte inputs: distinct inputs give distinct ids. */
    static char ids[256 + 65536][7];
    size_t count = 0;
    for (int a = 0; a < 256; a++) {
        char in[1] = {(char)a};
        CU_ASSERT(t2m_topic_ha_id(ids[count++], 7, in, 1) > 0);
    }
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++) {
            char in[2] = {(char)a, (char)b};
            CU_ASSERT(t2m_topic_ha_id(ids[count++], 7, in, 2) > 0);
        }
    qsort(ids, count, sizeof(ids[0]), cmp_id);
    size_t dups = 0;
    for (size_t i = 1; i < count; i++)
        dups += strcmp(ids[i - 1], ids[i]) == 0;
    CU_ASSERT_EQUAL(dups, 0);
    /* And only [a-zA-Z0-9_-] comes out. */
    for (size_t i = 0; i < count; i++)
        CU_ASSERT(
            strspn(ids[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
            strlen(ids[i]));
}

static void test_join(void)
{
    char t[32];
    CU_ASSERT_EQUAL(t2m_topic_join(t, sizeof(t), 3, "telematics", "I", "D"), 14);
    T2M_ASSERT_STR(t, "telematics/I/D");
    CU_ASSERT_EQUAL(t2m_topic_join(t, sizeof(t), 1, "x"), 1);
    T2M_ASSERT_STR(t, "x");
    CU_ASSERT_EQUAL(t2m_topic_join(t, 15, 3, "telematics", "I", "D"), 14);
    CU_ASSERT_EQUAL(t2m_topic_join(t, 14, 3, "telematics", "I", "D"), -1);
    CU_ASSERT_EQUAL(t2m_topic_join(t, sizeof(t), 2, "a", (const char *)NULL), -1);
    CU_ASSERT_EQUAL(t2m_topic_join(t, sizeof(t), 0), -1);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"segment encoding (SPEC cases)", test_segment_spec},
        {"segment length limits", test_segment_lengths},
        {"encoded segment has no topic syntax", test_encoded_never_has_topic_syntax},
        {"decode(encode(x)) == x", test_roundtrip},
        {"decode rejects malformed input", test_decode_malformed},
        {"Home Assistant ids", test_ha_id},
        {"Home Assistant ids are collision-free", test_ha_id_collision_free},
        {"join", test_join},
        {NULL, NULL},
    };
    return t2m_test_run("topics", cases);
}
