/* token.c - see token.h. */
#include "token.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_MAX 8192 /* bytes of decoded claims; a longer payload is not a token of ours */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes len base64url characters (no padding) into out (room: cap). Returns the decoded
 * length, or -1 when a character is not base64url, the length is impossible or out is short. */
static long b64url_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    if (len % 4 == 1) return -1;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap) return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)n;
}

int64_t t2m_token_exp(const char *token)
{
    if (!token) return 0;
    const char *p = strchr(token, '.');
    if (!p) return 0;
    p++;
    const char *end = strchr(p, '.');
    if (!end) return 0;
    size_t len = (size_t)(end - p);
    while (len && p[len - 1] == '=')
        len--;
    static const size_t cap = PAYLOAD_MAX;
    unsigned char *buf = malloc(cap + 1);
    if (!buf) return 0;
    long n = b64url_decode(p, len, buf, cap);
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
            if (root && at == (size_t)n &&
                json_object_is_type(root, json_type_object) &&
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
