/* t2m_test.h - the CUnit boilerplate every unit suite shares. */
#ifndef T2M_TEST_H
#define T2M_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

struct t2m_test_case {
    const char *name;
    void (*fn)(void);
};

/* Runs one suite; exits non-zero when any assertion failed (CU_basic_run_tests returns 0
 * either way: LIBRARY-NOTES.md). */
static inline int t2m_test_run(const char *suite, const struct t2m_test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    for (const struct t2m_test_case *c = cases; c->name; c++)
        CU_add_test(s, c->name, c->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return (failed != 0 || run == 0) ? 1 : 0;
}

#define T2M_ASSERT_STR(actual, expected) CU_ASSERT_STRING_EQUAL((actual), (expected))

#endif
