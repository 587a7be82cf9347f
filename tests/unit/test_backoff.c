/* test_backoff.c - exponential backoff with full jitter. */
#include <math.h>

#include "backoff.h"
#include "t2m_test.h"

static void test_bounds(void)
{
    for (unsigned a = 0; a < 200; a++)
        for (int r = 0; r < 100; r++) {
            double d = t2m_backoff_delay(a, 1.0, 60.0, r / 100.0);
            CU_ASSERT(d >= 1.0 && d <= 60.0);
        }
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(0, 1.0, 60.0, 0.999), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(5, 1.0, 60.0, 0.0), 1.0, 1e-12);
}

static void test_growth(void)
{
    /* With rnd01 = 0.5 the delay sits half-way between min and the cap = min * 2^attempt. */
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(0, 1.0, 60.0, 0.5), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(1, 1.0, 60.0, 0.5), 1.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(2, 1.0, 60.0, 0.5), 2.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(3, 1.0, 60.0, 0.5), 4.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(5, 1.0, 60.0, 0.5), 16.5, 1e-12);
    /* Capped at max from attempt 6 (2^6 = 64 > 60) on. */
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(6, 1.0, 60.0, 0.5), 30.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(100, 1.0, 60.0, 0.5), 30.5, 1e-12);
    double prev = 0;
    for (unsigned a = 0; a < 10; a++) {
        double d = t2m_backoff_delay(a, 0.5, 60.0, 0.9);
        CU_ASSERT(d >= prev);
        prev = d;
    }
    CU_ASSERT(t2m_backoff_delay(7, 1.0, 60.0, 0.99999) > 59.0);
}

static void test_extremes(void)
{
    /* Huge attempts neither overflow nor hang. */
    double d = t2m_backoff_delay(4000000000u, 1.0, 60.0, 0.999999);
    CU_ASSERT(d >= 1.0 && d <= 60.0);
    d = t2m_backoff_delay(4000000000u, 0.001, INFINITY, 0.0);
    CU_ASSERT(isfinite(d) && d >= 0.001);
    /* Out-of-range random input is clamped, not trusted. */
    d = t2m_backoff_delay(3, 1.0, 60.0, 5.0);
    CU_ASSERT(d >= 1.0 && d <= 8.0);
    d = t2m_backoff_delay(3, 1.0, 60.0, -1.0);
    CU_ASSERT_DOUBLE_EQUAL(d, 1.0, 1e-12);
    d = t2m_backoff_delay(3, 1.0, 60.0, NAN);
    CU_ASSERT(d >= 1.0 && d <= 8.0);
    /* min == max is a fixed delay. */
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(9, 60.0, 60.0, 0.7), 60.0, 1e-12);
    /* min 0 follows the formula (min * 2^n stays 0) without looping 4e9 times. */
    CU_ASSERT_DOUBLE_EQUAL(t2m_backoff_delay(4000000000u, 0.0, 60.0, 0.5), 0.0, 1e-12);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"bounds", test_bounds},
        {"exponential growth and cap", test_growth},
        {"extreme inputs", test_extremes},
        {NULL, NULL},
    };
    return t2m_test_run("backoff", cases);
}
