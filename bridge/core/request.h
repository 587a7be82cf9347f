/* request.h - pure: the bridge/request API (SPEC section 2.3, zigbee2mqtt's conventions). A
 * request is a JSON object on B/bridge/request/<cmd>; its optional "transaction" (any JSON
 * value) is echoed in the one response on B/bridge/response/<cmd>. */
#ifndef T2M_REQUEST_H
#define T2M_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol.h"

#define T2M_REQUEST_MAX 65536 /* a larger request gets an error response, unread */

enum t2m_req_cmd {
    T2M_REQ_UNKNOWN = 0,
    T2M_REQ_DEVICE_REMOVE, /* {"instance":"I","device":"D"} */
    T2M_REQ_DEVICE_RENAME, /* {"instance":"I","device":"D","name":"Van 12"} */
    T2M_REQ_HEALTH_CHECK,  /* {} */
    T2M_REQ_OPTIONS,       /* {"log_level":"debug"|"info"|"warn"|"error"} */
    T2M_REQ_DEVICES,       /* {"instance":"I"} (optional filter) */
};

struct t2m_request {
    enum t2m_req_cmd cmd;
    char transaction[512]; /* the transaction value as JSON text, "" when absent */
    char instance[T2M_TOKEN_MAX + 1];
    bool has_instance;
    char device[T2M_TOKEN_MAX + 1];
    size_t device_len;
    char name[T2M_TOKEN_MAX + 1];
    char log_level[16];
};

/* Parses one request for command `cmd` (the topic after B/bridge/request/); payload NULL with a
 * length: a packet too large to be read (an error response). Returns 0, or -1 with
 * the reason for the error response in err (the transaction, if it could be read, is kept). */
int t2m_request_parse(const char *cmd, const void *payload, size_t len, struct t2m_request *r,
                      char *err, size_t errlen);

/* {"status":"ok","data":<data>,"transaction":..} (data: a JSON text, NULL = {}) or
 * {"status":"error","error":"<why>","transaction":..}. Returns length, or 0 when it does not
 * fit. */
size_t t2m_request_response(char *buf, size_t n, const struct t2m_request *r, const char *data,
                            const char *error);

#endif
