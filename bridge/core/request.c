/* request.c - the bridge/request API (request.h). */
#include "request.h"

#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "out.h"
#include "text.h"

static const struct {
    const char *name;
    enum t2m_req_cmd cmd;
} cmds[] = {
    {"device/remove", T2M_REQ_DEVICE_REMOVE},
    {"device/rename", T2M_REQ_DEVICE_RENAME},
    {"health_check", T2M_REQ_HEALTH_CHECK},
    {"options", T2M_REQ_OPTIONS},
    {"devices", T2M_REQ_DEVICES},
};

/* A string member into out (at most T2M_TOKEN_MAX bytes, no NUL). 1 found, 0 absent, -1 bad. */
static int string_member(json_object *o, const char *key, char *out, size_t n, size_t *len,
                         char *err, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL) return 0;
    size_t l = json_object_is_type(v, json_type_string) ? (size_t)json_object_get_string_len(v) : 0;
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    if (!s || l == 0 || l >= n || memchr(s, '\0', l)) {
        snprintf(err, errlen, "\"%s\" must be a non-empty string of at most %zu bytes", key, n - 1);
        return -1;
    }
    memcpy(out, s, l);
    out[l] = '\0';
    if (len) *len = l;
    return 1;
}

/* A transaction is echoed as it came, so it must be one JSON value that prints as valid JSON
 * again: json-c takes NaN and Infinity, and clamps integers beyond 64 bits to the nearest
 * limit (12345678901234567890123 came back as 18446744073709551615). Any value whose numbers
 * all survive the round trip (objects and arrays checked member by member; the parser's depth
 * bound, 16, bounds the recursion); otherwise the request is refused with the reason. */
/* The echo is valid JSON that reads back as the same text: json-c keeps a number's text as it
 * came, and accepts texts (such as 4444444444444444444448e) that a strict reader refuses. */
static bool echoes_as_itself(const char *text)
{
    json_tokener *tok = json_tokener_new_ex(16);
    if (!tok) return false;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    size_t len = strlen(text);
    /* with its NUL: a bare number completes only there (LIBRARY-NOTES) */
    json_object *o = json_tokener_parse_ex(tok, text, (int)len + 1);
    size_t end = json_tokener_get_parse_end(tok);
    bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
              (end == len || end == len + 1) &&
              strcmp(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE),
                     text) == 0;
    json_object_put(o);
    json_tokener_free(tok);
    return ok;
}

static bool transaction_ok(json_object *t, char *err, size_t errlen)
{
    switch (json_object_get_type(t)) {
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(t); i++)
            if (!transaction_ok(json_object_array_get_idx(t, i), err, errlen)) return false;
        return true;
    case json_type_object: {
        json_object_object_foreach(t, key, val)
        {
            (void)key;
            if (!transaction_ok(val, err, errlen)) return false;
        }
        return true;
    }
    case json_type_string:
    case json_type_boolean:
    case json_type_null:
        return true;
    case json_type_double:
        /* NaN, Infinity and texts like 8e: echoes_as_itself refuses what json-c keeps as it came */
        if (isfinite(json_object_get_double(t))) return true;
        snprintf(err, errlen, "transaction must be a finite number");
        return false;
    case json_type_int: {
        int64_t v = json_object_get_int64(t);
        uint64_t u = json_object_get_uint64(t);
        if (v != INT64_MAX && v != INT64_MIN && u != UINT64_MAX) return true;
        snprintf(err, errlen, "transaction out of range (a 64-bit integer or a string)");
        return false;
    }
    default:
        return true;
    }
}

int t2m_request_parse(const char *cmd, const void *payload, size_t len, struct t2m_request *r,
                      char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    if (len > T2M_REQUEST_MAX || (!payload && len)) { /* NULL: a packet too large to be read */
        snprintf(err, errlen, "request larger than %d bytes", T2M_REQUEST_MAX);
        return -1;
    }
    json_object *o = NULL;
    if (len > 0 && t2m_utf8_valid(payload, len)) {
        json_tokener *tok = json_tokener_new_ex(16);
        if (tok) {
            o = json_tokener_parse_ex(tok, payload, (int)len);
            if (o && json_tokener_get_parse_end(tok) != len) {
                json_object_put(o);
                o = NULL;
            }
            json_tokener_free(tok);
        }
    }
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        snprintf(err, errlen, "the request is not a JSON object");
        return -1;
    }
    int rc = -1;
    json_object *t;
    if (json_object_object_get_ex(o, "transaction", &t)) {
        if (!transaction_ok(t, err, errlen)) goto out;
        const char *text = json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
        if (strlen(text) >= sizeof(r->transaction)) {
            snprintf(err, errlen, "transaction longer than %zu bytes", sizeof(r->transaction) - 1);
            goto out;
        }
        if (!echoes_as_itself(text)) {
            snprintf(err, errlen, "transaction must be plain JSON (it is echoed as it came)");
            goto out;
        }
        strcpy(r->transaction, text);
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (cmd && strcmp(cmd, cmds[i].name) == 0) r->cmd = cmds[i].cmd;
    int in = string_member(o, "instance", r->instance, sizeof(r->instance), NULL, err, errlen);
    if (in < 0) goto out;
    r->has_instance = in == 1;
    switch (r->cmd) {
    case T2M_REQ_UNKNOWN:
        snprintf(err, errlen,
                 "unknown command (device/remove, device/rename, health_check, "
                 "options, devices)");
        goto out;
    case T2M_REQ_DEVICE_RENAME:
    case T2M_REQ_DEVICE_REMOVE: {
        int dv =
            string_member(o, "device", r->device, sizeof(r->device), &r->device_len, err, errlen);
        if (dv < 0) goto out;
        if (!r->has_instance || dv == 0) {
            snprintf(err, errlen, "\"instance\" and \"device\" are required");
            goto out;
        }
        if (r->cmd == T2M_REQ_DEVICE_RENAME) {
            int nm = string_member(o, "name", r->name, sizeof(r->name), NULL, err, errlen);
            if (nm < 0) goto out;
            if (nm == 0) {
                snprintf(err, errlen, "\"name\" is required");
                goto out;
            }
            if (!t2m_text_printable(r->name, strlen(r->name))) {
                snprintf(err, errlen, "\"name\" must be text without control characters");
                goto out;
            }
        }
        break;
    }
    case T2M_REQ_OPTIONS: {
        int ll =
            string_member(o, "log_level", r->log_level, sizeof(r->log_level), NULL, err, errlen);
        if (ll < 0) goto out;
        if (ll == 0) {
            snprintf(err, errlen, "nothing to change (\"log_level\")");
            goto out;
        }
        break;
    }
    default:
        break;
    }
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

size_t t2m_request_response(char *buf, size_t n, const struct t2m_request *r, const char *data,
                            const char *error)
{
    struct t2m_out o = {buf, n, 0, !buf || n == 0};
    if (o.full) return 0;
    if (error) {
        T2M_OUT_LIT(&o, "{\"status\":\"error\",\"error\":");
        t2m_out_json(&o, error, strlen(error));
    } else {
        T2M_OUT_LIT(&o, "{\"status\":\"ok\",\"data\":");
        t2m_out_str(&o, data ? data : "{}");
    }
    if (r && r->transaction[0]) {
        T2M_OUT_LIT(&o, ",\"transaction\":");
        t2m_out_str(&o, r->transaction);
    }
    T2M_OUT_LIT(&o, "}");
    return t2m_out_finish(&o);
}
