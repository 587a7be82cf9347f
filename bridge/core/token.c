/* token.c - see token.h. */
#include "token.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

#define PAYLOAD_MAX 8192 /* bytes of decoded claims; a longer payload is not a token of ours */

int64_t t2m_token_exp(const char *token)
{
    if (!token) return 0;
    const char *p = strchr(token, '.');
    if (!p) return 0;
    p++;
    const char *end = strchr(p, '.');
    if (!end) return 0;
    unsigned char *buf = malloc(PAYLOAD_MAX);
    if (!buf) return 0;
    /* base64url, its '=' padding optional: the one decoder (text.c) takes both */
    long n = t2m_base64_decode(p, (size_t)(end - p), buf, PAYLOAD_MAX, true);
    int64_t exp = 0;
    if (n > 0) {
        json_tokener *tok = json_tokener_new_ex(8);
        if (tok) {
            json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
            json_object *root = json_tokener_parse_ex(tok, (const char *)buf, (int)n);
            json_object *e = NULL;
            size_t at = root ? json_tokener_get_parse_end(tok) : 0;
            while (at < (size_t)n && buf[at] && strchr(" \t\r\n", buf[at]))
                at++;
            if (root && at == (size_t)n && json_object_is_type(root, json_type_object) &&
                json_object_object_get_ex(root, "exp", &e) &&
                (json_object_is_type(e, json_type_int) ||
                 json_object_is_type(e, json_type_double))) {
                double d = json_object_get_double(e);
                if (isfinite(d) && d >= 1 && d <= 1099511627776.0) exp = (int64_t)d;
            }
            json_object_put(root);
            json_tokener_free(tok);
        }
    }
    free(buf);
    return exp;
}

bool t2m_token_warn_due(int64_t exp, bool can_refresh, int64_t wall_s, int64_t last_warn_ms,
                        int64_t mono_ms)
{
    if (exp <= 0 || can_refresh || exp - wall_s > T2M_TOKEN_WARN_AHEAD_S) return false;
    return last_warn_ms == 0 || mono_ms - last_warn_ms >= T2M_TOKEN_WARN_EVERY_MS;
}
