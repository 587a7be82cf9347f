/* test_text.c - strict UTF-8, printable topic text, secret redaction, and the repeat summariser
 * of the logger (both pure). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "t2m_test.h"
#include "text.h"

static void test_utf8(void)
{
    CU_ASSERT(t2m_utf8_valid("", 0));
    CU_ASSERT(t2m_utf8_valid("plain ascii", 11));
    CU_ASSERT(t2m_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\x97", 9)); /* é € 🚗 */
    CU_ASSERT(!t2m_utf8_valid("\xc0\xaf", 2));                            /* overlong '/' */
    CU_ASSERT(!t2m_utf8_valid("\xe0\x80\xaf", 3));                        /* overlong */
    CU_ASSERT(!t2m_utf8_valid("\xed\xa0\x80", 3));                        /* surrogate */
    CU_ASSERT(!t2m_utf8_valid("\xf4\x90\x80\x80", 4));                    /* > U+10FFFF */
    CU_ASSERT(!t2m_utf8_valid("\xe2\x82", 2));                            /* truncated */
    CU_ASSERT(!t2m_utf8_valid("\xff", 1));
    CU_ASSERT(!t2m_utf8_valid("a\x80", 2));
    CU_ASSERT_EQUAL(t2m_utf8_seq((const unsigned char *)"\xf0\x9f\x9a\x97", 4), 4);
    CU_ASSERT_EQUAL(t2m_utf8_seq((const unsigned char *)"\xf0\x9f\x9a\x97", 3), 0);
}

static void test_printable(void)
{
    CU_ASSERT(t2m_text_printable("telematics/fleet-1", 18));
    CU_ASSERT(t2m_text_printable("t\xc3\xa9l\xc3\xa9", 6));
    CU_ASSERT(!t2m_text_printable("a\nb", 3));
    CU_ASSERT(!t2m_text_printable("a\tb", 3));
    CU_ASSERT(!t2m_text_printable("a\x7f", 2));
    CU_ASSERT(!t2m_text_printable("a\xc2\x85", 3)); /* NEL, a C1 control */
    CU_ASSERT(t2m_text_printable("a\xc2\xa0", 3));  /* NBSP is text */
    CU_ASSERT(!t2m_text_printable("a\0b", 3));
    CU_ASSERT(!t2m_text_printable("\xfe", 1));
}

static void test_redact(void)
{
    const char *secrets[] = {"eyJhbGciOiJIUzI1NiJ9.payload.sig", NULL, "", "pw"};
    char s[256];
    strcpy(s, "invalid token eyJhbGciOiJIUzI1NiJ9.payload.sig (expired)");
    CU_ASSERT_EQUAL(t2m_redact(s, secrets, 4), 1);
    T2M_ASSERT_STR(s, "invalid token *** (expired)");

    strcpy(s, "a eyJhbGciOiJIUzI1NiJ9.payload.sig b eyJhbGciOiJIUzI1NiJ9.payload.sig");
    CU_ASSERT_EQUAL(t2m_redact(s, secrets, 1), 2);
    T2M_ASSERT_STR(s, "a *** b ***");

    /* Short secrets become as many stars: the text never grows. */
    strcpy(s, "user pw and pwpw");
    CU_ASSERT_EQUAL(t2m_redact(s, secrets, 4), 3);
    T2M_ASSERT_STR(s, "user ** and ****");

    /* A message cut in the middle of the token loses that part too. */
    strcpy(s, "token eyJhbGciOiJIUz");
    CU_ASSERT_EQUAL(t2m_redact(s, secrets, 1), 1);
    T2M_ASSERT_STR(s, "token ***");
    strcpy(s, "ends in eyJ"); /* 3 bytes: too short to tell */
    CU_ASSERT_EQUAL(t2m_redact(s, secrets, 1), 0);
    T2M_ASSERT_STR(s, "ends in eyJ");

    strcpy(s, "nothing here");
    CU_ASSERT_EQUAL(t2m_redact(s, secrets, 4), 0);
    T2M_ASSERT_STR(s, "nothing here");
}

static void test_repeat(void)
{
    struct t2m_repeat r = {0};
    CU_ASSERT_EQUAL(t2m_repeat_hit(&r, 1000), 1); /* the first is logged */
    for (int i = 0; i < 500; i++)
        CU_ASSERT_EQUAL(t2m_repeat_hit(&r, 1000 + i), 0);
    CU_ASSERT_EQUAL(t2m_repeat_hit(&r, 1000 + T2M_REPEAT_PERIOD_MS - 1), 0);
    /* A minute on: one line for the 501 since the last one and this one. */
    CU_ASSERT_EQUAL(t2m_repeat_hit(&r, 1000 + T2M_REPEAT_PERIOD_MS), 502);
    CU_ASSERT_EQUAL(t2m_repeat_hit(&r, 1000 + T2M_REPEAT_PERIOD_MS + 1), 0);
    CU_ASSERT_EQUAL(t2m_repeat_hit(&r, 1000 + 5 * T2M_REPEAT_PERIOD_MS), 2);
}

static void test_base64(void)
{
    unsigned char out[64];
    CU_ASSERT_EQUAL(t2m_base64_decode("YWRtaW46cHc=", 12, out, sizeof out, false), 8);
    CU_ASSERT_EQUAL(memcmp(out, "admin:pw", 8), 0);
    CU_ASSERT_EQUAL(t2m_base64_decode("YWRtaW46cHc", 11, out, sizeof out, false), 8);
    CU_ASSERT_EQUAL(t2m_base64_decode("", 0, out, sizeof out, false), 0);
    /* the two alphabets: 0xfb 0xff = "+/8" / "-_8" */
    CU_ASSERT_EQUAL(t2m_base64_decode("+/8=", 4, out, sizeof out, false), 2);
    CU_ASSERT_EQUAL(out[0], 0xfb);
    CU_ASSERT_EQUAL(out[1], 0xff);
    CU_ASSERT_EQUAL(t2m_base64_decode("-_8", 3, out, sizeof out, true), 2);
    CU_ASSERT_EQUAL(t2m_base64_decode("-_8", 3, out, sizeof out, false), -1);
    CU_ASSERT_EQUAL(t2m_base64_decode("+/8", 3, out, sizeof out, true), -1);
    /* impossible lengths, bad padding, short output */
    CU_ASSERT_EQUAL(t2m_base64_decode("Y", 1, out, sizeof out, false), -1);
    CU_ASSERT_EQUAL(t2m_base64_decode("YW=", 3, out, sizeof out, false), -1);
    CU_ASSERT_EQUAL(t2m_base64_decode("YWJj", 4, out, 2, false), -1);
    CU_ASSERT_EQUAL(t2m_base64_decode("YW Jj", 5, out, sizeof out, false), -1);
    CU_ASSERT_EQUAL(t2m_base64_decode(NULL, 0, out, sizeof out, false), -1);
}

static void test_sbuf(void)
{
    struct t2m_sbuf b = {0};
    char *empty = t2m_sbuf_take(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(empty);
    T2M_ASSERT_STR(empty, "");
    free(empty);
    for (int i = 0; i < 1000; i++)
        t2m_sbuf_printf(&b, "%03d,", i);
    t2m_sbuf_str(&b, "end");
    t2m_sbuf_put(&b, "xyz", 1);
    char *s = t2m_sbuf_take(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(strlen(s), 4000u + 4u);
    CU_ASSERT_NSTRING_EQUAL(s, "000,001,", 8);
    T2M_ASSERT_STR(s + 3996, "999,endx");
    free(s);
    CU_ASSERT_PTR_NULL(b.buf); /* taken: the builder is empty again */
}

/* A renderer that needs `need` bytes (and a NUL): counts its calls. */
static int render_calls;
static size_t need_bytes(void *ctx, char *buf, size_t n)
{
    size_t need = *(const size_t *)ctx;
    render_calls++;
    if (need >= n) return 0;
    memset(buf, 'x', need);
    buf[need] = '\0';
    return need;
}

static void test_render_grow(void)
{
    size_t need = 100000, len = 0;
    render_calls = 0;
    char *b = t2m_render_grow(need_bytes, &need, 16, 1000, 1u << 20, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(len, need);
    CU_ASSERT_EQUAL(b[16], 'x'); /* after the headroom */
    CU_ASSERT_EQUAL(strlen(b + 16), need);
    CU_ASSERT_EQUAL(render_calls, 8); /* 1000, 2000 ... 128000 */
    free(b);
    /* more than max would hold: NULL, no length */
    CU_ASSERT_PTR_NULL(t2m_render_grow(need_bytes, &need, 0, 1000, 64000, &len));
    CU_ASSERT_EQUAL(len, 0);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"strict UTF-8", test_utf8},
        {"printable topic text", test_printable},
        {"secret redaction", test_redact},
        {"repeated conditions summarised", test_repeat},
        {"base64 and base64url", test_base64},
        {"growing string", test_sbuf},
        {"rendering into a growing buffer", test_render_grow},
        {NULL, NULL},
    };
    return t2m_test_run("text", cases);
}
