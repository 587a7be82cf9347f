/* test_token.c - the access token's exp claim and the expiry warning (SPEC 7). */
#include <string.h>

#include "t2m_test.h"
#include "token.h"

static void test_exp(void)
{
    /* {"alg":"HS256"} . {"sub":"x","exp":1700000000} . sig */
    CU_ASSERT_EQUAL(
        t2m_token_exp("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjoxNzAwMDAwMDAwfQ.sig"),
        1700000000);
    /* padded payload, empty signature */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.eyJzdWIiOiJ4IiwiZXhwIjoxNzAwMDAwMDAwfQ==."), 1700000000);
    /* a fraction is cut */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.eyJleHAiOjE3MDAwMDAwMDAuOX0.x"), 1700000000);
}

static void test_no_exp(void)
{
    CU_ASSERT_EQUAL(t2m_token_exp(NULL), 0);
    CU_ASSERT_EQUAL(t2m_token_exp(""), 0);
    CU_ASSERT_EQUAL(t2m_token_exp("demo-token"), 0);                        /* not a JWT */
    CU_ASSERT_EQUAL(t2m_token_exp("a.b"), 0);                               /* two parts */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.e30.x"), 0);                         /* {} : no exp */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.eyJleHAiOiIxNzAwMDAwMDAwIn0.x"), 0); /* exp a string */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.e!30.x"), 0);                        /* not base64url */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.e.x"), 0);                           /* impossible length */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.W10.x"), 0);                         /* [] : not an object */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.eyJleHAiOi0xfQ.x"), 0);              /* {"exp":-1} */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.eyJleHAiOjF9IA.x"), 1); /* {"exp":1} + space: fine */
    CU_ASSERT_EQUAL(t2m_token_exp("e30.eyJleHAiOjF9eA.x"), 0); /* {"exp":1}x : trailing junk */
    /* a payload longer than any token of ours */
    static char big[20000];
    memcpy(big, "e30.", 4);
    memset(big + 4, 'A', sizeof(big) - 8);
    memcpy(big + sizeof(big) - 4, ".x", 3);
    CU_ASSERT_EQUAL(t2m_token_exp(big), 0);
}

static void test_warn(void)
{
    const int64_t now = 1700000000, hour_ms = T2M_TOKEN_WARN_EVERY_MS;
    /* within the hour, no refresh, never warned: warn */
    CU_ASSERT_TRUE(t2m_token_warn_due(now + 1800, false, now, 0, 5000));
    /* already expired: warn too */
    CU_ASSERT_TRUE(t2m_token_warn_due(now - 10, false, now, 0, 5000));
    /* more than an hour left: no */
    CU_ASSERT_FALSE(t2m_token_warn_due(now + 3601, false, now, 0, 5000));
    CU_ASSERT_TRUE(t2m_token_warn_due(now + 3600, false, now, 0, 5000));
    /* a refresh is configured: never */
    CU_ASSERT_FALSE(t2m_token_warn_due(now + 10, true, now, 0, 5000));
    /* no exp claim: never */
    CU_ASSERT_FALSE(t2m_token_warn_due(0, false, now, 0, 5000));
    /* hourly, on the monotonic clock */
    CU_ASSERT_FALSE(t2m_token_warn_due(now + 10, false, now, 5000, 5000 + hour_ms - 1));
    CU_ASSERT_TRUE(t2m_token_warn_due(now + 10, false, now, 5000, 5000 + hour_ms));
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"exp claim read", test_exp},
        {"no or bad exp", test_no_exp},
        {"expiry warning due", test_warn},
        {NULL, NULL},
    };
    return t2m_test_run("token", cases);
}
