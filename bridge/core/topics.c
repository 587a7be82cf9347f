/* topics.c - topic segment encoding and topic building (SPEC section 2). */
#include "topics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "protocol.h"

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

static bool is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '~' || c == '-';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int t2m_topic_segment(char *out, size_t outlen, const char *in, size_t inlen)
{
    if (!out || !in || inlen == 0 || inlen > T2M_TOKEN_MAX) return -1;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_unreserved(c)) {
            if (o + 1 >= outlen) return -1;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outlen) return -1;
            out[o++] = '%';
            out[o++] = hex_upper[c >> 4];
            out[o++] = hex_upper[c & 15];
        }
    }
    if (o >= outlen) return -1;
    out[o] = '\0';
    return (int)o;
}

/* Accepts exactly what t2m_topic_segment can produce (hex in either case), so a decoded segment
 * re-encodes to an equivalent topic and raw separators or wildcards are refused. */
int t2m_topic_segment_decode(char *out, size_t outlen, const char *in, size_t inlen)
{
    if (!out || (!in && inlen)) return -1;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (inlen - i < 3) return -1;
            int hi = hex_value((unsigned char)in[i + 1]);
            int lo = hex_value((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (!is_unreserved(c)) {
            return -1;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = (char)c;
    }
    if (o >= outlen) return -1;
    out[o] = '\0';
    return (int)o;
}

int t2m_topic_ha_id(char *out, size_t outlen, const char *in, size_t inlen)
{
    if (!out || (!in && inlen)) return -1;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_alnum(c) || c == '-') {
            if (o + 1 >= outlen) return -1;
            out[o++] = (char)c;
        } else {
            /* '_' itself is escaped, so '_' always starts an escape: the mapping is injective. */
            if (o + 3 >= outlen) return -1;
            out[o++] = '_';
            out[o++] = hex_lower[c >> 4];
            out[o++] = hex_lower[c & 15];
        }
    }
    if (o >= outlen) return -1;
    out[o] = '\0';
    return (int)o;
}

int t2m_topic_join(char *out, size_t outlen, int count, ...)
{
    if (!out || outlen == 0 || count <= 0) return -1;
    va_list ap;
    va_start(ap, count);
    size_t o = 0;
    int rc = 0;
    for (int i = 0; i < count; i++) {
        const char *seg = va_arg(ap, const char *);
        if (!seg) {
            rc = -1;
            break;
        }
        size_t l = strlen(seg);
        size_t need = l + (i > 0);
        if (need >= outlen - o) {
            rc = -1;
            break;
        }
        if (i > 0) out[o++] = '/';
        memcpy(out + o, seg, l);
        o += l;
    }
    va_end(ap);
    if (rc < 0) {
        out[0] = '\0';
        return -1;
    }
    out[o] = '\0';
    return (int)o;
}
