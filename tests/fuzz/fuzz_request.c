/* fuzz_request.c - libFuzzer target: the bridge/request parser (SPEC section 2.3). The first
 * input byte picks the command, the rest is the payload. Whatever comes in, a request either
 * parses or gets a reason, and the response rendered from it is one strict JSON object whose
 * transaction is the request's. */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const cmds[] = {"device/remove", "device/rename", "health_check",
                                       "options",       "devices",       "no/such"};
    if (size == 0) return 0;
    const char *cmd = cmds[data[0] % (sizeof(cmds) / sizeof(cmds[0]))];
    struct t2m_request r;
    char err[256] = "";
    int rc = t2m_request_parse(cmd, data + 1, size - 1, &r, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || err[0], "refused without a reason");
    if (rc == 0) {
        FUZZ_CHECK(r.cmd != T2M_REQ_UNKNOWN, "an unknown command parsed");
        if (r.cmd == T2M_REQ_DEVICE_REMOVE || r.cmd == T2M_REQ_DEVICE_RENAME)
            FUZZ_CHECK(r.has_instance && r.device_len > 0 && r.device_len <= T2M_TOKEN_MAX,
                       "device request without its fields");
    }
    char buf[4096];
    size_t n = t2m_request_response(buf, sizeof(buf), &r, rc == 0 ? "{\"x\":1}" : NULL,
                                    rc == 0 ? NULL : err);
    FUZZ_CHECK(n > 0, "no response rendered");
    json_object *o = fuzz_json_object(buf, n);
    FUZZ_CHECK(o != NULL, "response is not one JSON object: %s", buf);
    json_object *t;
    if (r.transaction[0]) {
        FUZZ_CHECK(json_object_object_get_ex(o, "transaction", &t), "transaction lost");
        FUZZ_CHECK(strcmp(json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE),
                          r.transaction) == 0,
                   "transaction changed");
    }
    json_object_put(o);
    return 0;
}
