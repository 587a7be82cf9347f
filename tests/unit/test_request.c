/* test_request.c - the bridge/request API (SPEC section 2.3): parsing, validation, responses. */
#include <json-c/json.h>

#include "request.h"
#include "t2m_test.h"

static struct t2m_request r;
static char err[256];

static int parse(const char *cmd, const char *payload)
{
    err[0] = '\0';
    return t2m_request_parse(cmd, payload, strlen(payload), &r, err, sizeof(err));
}

static void test_valid(void)
{
    CU_ASSERT_EQUAL(parse("device/remove", "{\"instance\":\"i\",\"device\":\"d/x\",\"transaction\":"
                                           "\"t-1\"}"),
                    0);
    CU_ASSERT_EQUAL(r.cmd, T2M_REQ_DEVICE_REMOVE);
    T2M_ASSERT_STR(r.instance, "i");
    T2M_ASSERT_STR(r.device, "d/x");
    CU_ASSERT_EQUAL(r.device_len, 3);
    T2M_ASSERT_STR(r.transaction, "\"t-1\"");
    CU_ASSERT_EQUAL(parse("device/rename", "{\"instance\":\"i\",\"device\":\"d\",\"name\":\"Van "
                                           "12\"}"),
                    0);
    T2M_ASSERT_STR(r.name, "Van 12");
    CU_ASSERT_EQUAL(r.transaction[0], '\0');
    CU_ASSERT_EQUAL(parse("health_check", "{}"), 0);
    CU_ASSERT_EQUAL(r.cmd, T2M_REQ_HEALTH_CHECK);
    CU_ASSERT_EQUAL(parse("options", "{\"log_level\":\"debug\",\"transaction\":{\"a\":[1,2]}}"), 0);
    T2M_ASSERT_STR(r.log_level, "debug");
    T2M_ASSERT_STR(r.transaction, "{\"a\":[1,2]}");
    CU_ASSERT_EQUAL(parse("devices", "{}"), 0);
    CU_ASSERT_FALSE(r.has_instance);
    CU_ASSERT_EQUAL(parse("devices", " {\"instance\":\"i\"} "), 0);
    CU_ASSERT(r.has_instance);
}

static void test_invalid(void)
{
    static const struct {
        const char *cmd, *payload, *why;
    } bad[] = {
        {"devices", "", "not a JSON object"},
        {"devices", "nope", "not a JSON object"},
        {"devices", "[]", "not a JSON object"},
        {"devices", "{} x", "not a JSON object"},
        {"devices", "\"x\"", "not a JSON object"},
        {"nope", "{}", "unknown command"},
        {"device/remove", "{\"instance\":\"i\"}", "are required"},
        {"device/remove", "{\"device\":\"d\"}", "are required"},
        {"device/remove", "{\"instance\":\"i\",\"device\":\"\"}", "non-empty string"},
        {"device/remove", "{\"instance\":7,\"device\":\"d\"}", "non-empty string"},
        {"device/rename", "{\"instance\":\"i\",\"device\":\"d\"}", "\"name\" is required"},
        {"device/rename", "{\"instance\":\"i\",\"device\":\"d\",\"name\":\"a\\u0007\"}",
         "control characters"},
        {"options", "{}", "nothing to change"},
        {"options", "{\"log_level\":3}", "non-empty string"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(parse(bad[i].cmd, bad[i].payload), -1);
        if (!strstr(err, bad[i].why)) fprintf(stderr, "\n  case %zu: %s\n", i, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].why));
    }
    /* invalid UTF-8, a NUL inside, too large, a transaction too long, too deep */
    CU_ASSERT_EQUAL(t2m_request_parse("devices", "{\"a\":\"\xff\"}", 9, &r, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(t2m_request_parse("devices", "{}\0{}", 5, &r, err, sizeof(err)), -1);
    static char big[T2M_REQUEST_MAX + 2];
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    CU_ASSERT_EQUAL(t2m_request_parse("devices", big, sizeof(big), &r, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than"));
    char tr[1200];
    int n = snprintf(tr, sizeof(tr), "{\"transaction\":\"%0900d\"}", 1);
    CU_ASSERT_EQUAL(t2m_request_parse("devices", tr, (size_t)n, &r, err, sizeof(err)), -1);
    char deep[128] = "{\"a\":";
    for (int i = 0; i < 20; i++)
        strcat(deep, "[");
    for (int i = 0; i < 20; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    CU_ASSERT_EQUAL(parse("devices", deep), -1);
    /* Issue 19, item 8: a transaction is echoed only as valid JSON; else the request is refused
     * with the reason (and no transaction, since it cannot be echoed) */
    static const char *const bad_tr[] = {"{\"transaction\":NaN}",
                                         "{\"transaction\":-Infinity}",
                                         "{\"transaction\":[1,NaN]}",
                                         "{\"transaction\":{\"a\":{\"b\":Infinity}}}",
                                         "{\"transaction\":12345678901234567890123}",
                                         "{\"transaction\":-12345678901234567890123}",
                                         "{\"transaction\":{\"\":[4444444444444444444448e]}}"};
    for (size_t i = 0; i < sizeof(bad_tr) / sizeof(bad_tr[0]); i++) {
        CU_ASSERT_EQUAL(parse("health_check", bad_tr[i]), -1);
        CU_ASSERT_EQUAL(r.transaction[0], '\0');
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "transaction"));
    }
    CU_ASSERT_EQUAL(parse("health_check", "{\"transaction\":-9007199254740993}"), 0);
    T2M_ASSERT_STR(r.transaction, "-9007199254740993");
    CU_ASSERT_EQUAL(parse("health_check", "{\"transaction\":1.5e300}"), 0);
    /* the transaction of a refused request is still echoed */
    CU_ASSERT_EQUAL(parse("nope", "{\"transaction\":42}"), -1);
    T2M_ASSERT_STR(r.transaction, "42");
}

static void test_responses(void)
{
    char buf[512];
    CU_ASSERT_EQUAL(parse("health_check", "{\"transaction\":\"x\"}"), 0);
    CU_ASSERT(t2m_request_response(buf, sizeof(buf), &r, "{\"healthy\":true}", NULL) > 0);
    T2M_ASSERT_STR(buf, "{\"status\":\"ok\",\"data\":{\"healthy\":true},\"transaction\":\"x\"}");
    CU_ASSERT(t2m_request_response(buf, sizeof(buf), &r, NULL, "bad \"thing\"") > 0);
    T2M_ASSERT_STR(buf,
                   "{\"status\":\"error\",\"error\":\"bad \\\"thing\\\"\",\"transaction\":\"x\"}");
    CU_ASSERT_EQUAL(parse("devices", "{}"), 0);
    CU_ASSERT(t2m_request_response(buf, sizeof(buf), &r, NULL, NULL) > 0);
    T2M_ASSERT_STR(buf, "{\"status\":\"ok\",\"data\":{}}");
    CU_ASSERT_EQUAL(t2m_request_response(buf, 10, &r, NULL, "too long for ten"), 0);
    /* every response is one JSON object */
    json_object *o = json_tokener_parse("{\"status\":\"ok\",\"data\":{}}");
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"valid requests", test_valid},
        {"invalid requests: a reason each", test_invalid},
        {"responses echo the transaction", test_responses},
        {NULL, NULL},
    };
    return t2m_test_run("request", cases);
}
