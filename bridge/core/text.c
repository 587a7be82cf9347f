/* text.c - strict UTF-8 and secret redaction (text.h). */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t t2m_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (len < need || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return need;
}

/* json-c's JSON_TOKENER_VALIDATE_UTF8 checks only the byte structure: this is strict, and cheap
 * for ASCII. */
bool t2m_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = t2m_utf8_seq(u + i, len - i);
        if (k == 0) return false;
        i += k;
    }
    return true;
}

bool t2m_text_printable(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t k = t2m_utf8_seq(u + i, len - i);
        if (k == 0 || u[i] < 0x20 || u[i] == 0x7f) return false;
        if (k == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0) return false; /* C1 controls */
        i += k;
    }
    return true;
}

size_t t2m_redact(char *s, const char *const *secrets, size_t n_secrets)
{
    size_t count = 0;
    for (size_t k = 0; s && k < n_secrets; k++) {
        const char *sec = secrets[k];
        size_t sl = sec ? strlen(sec) : 0;
        if (sl == 0) continue;
        size_t rl = sl < 3 ? sl : 3;
        char *at;
        char *from = s;
        while ((at = strstr(from, sec)) != NULL) {
            memset(at, '*', rl);
            memmove(at + rl, at + sl, strlen(at + sl) + 1);
            from = at + rl;
            count++;
        }
        /* A text cut short (the protocol keeps 255 bytes of an error message) can end in the
         * first part of a long token: that part goes too, from 4 bytes on. */
        size_t tl = strlen(s);
        for (size_t tail = (tl < sl ? tl : sl - 1); tail >= 4; tail--) {
            if (memcmp(s + tl - tail, sec, tail) == 0) {
                memcpy(s + tl - tail, "***", 4);
                count++;
                break;
            }
        }
    }
    return count;
}

/* Hand-written rather than lws_json_purify: that one needs the whole output bound up front and
 * drops invalid bytes, where the payload wants them kept visibly as \u00XX. */
size_t t2m_json_escape(char *buf, size_t n, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!buf || n < 3 || (!s && len)) return 0;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    size_t lim = n - 1; /* room for the NUL */
    buf[o++] = '"';
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (o + 1 > lim) return 0;
            buf[o++] = (char)c;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t sl = t2m_utf8_seq(u + i, len - i);
            if (sl) {
                if (o + sl > lim) return 0;
                memcpy(buf + o, u + i, sl);
                o += sl;
                i += sl;
                continue;
            }
        }
        char esc = 0;
        switch (c) {
        case '"':
            esc = '"';
            break;
        case '\\':
            esc = '\\';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        case '\t':
            esc = 't';
            break;
        case '\b':
            esc = 'b';
            break;
        case '\f':
            esc = 'f';
            break;
        default:
            break;
        }
        if (esc) {
            if (o + 2 > lim) return 0;
            buf[o++] = '\\';
            buf[o++] = esc;
        } else {
            if (o + 6 > lim) return 0;
            memcpy(buf + o, "\\u00", 4);
            buf[o + 4] = hex[c >> 4];
            buf[o + 5] = hex[c & 15];
            o += 6;
        }
        i++;
    }
    if (o + 1 > lim) return 0;
    buf[o++] = '"';
    buf[o] = '\0';
    return o;
}

uint32_t t2m_fnv1a(uint32_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

long t2m_base64_decode(const char *s, size_t len, unsigned char *out, size_t cap, bool url)
{
    if (!s || !out) return -1;
    size_t pad = 0;
    while (len && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad && (len + pad) % 4 != 0)) return -1;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap) return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i], url);
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

void t2m_wipe_free(char *s)
{
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static bool sbuf_room(struct t2m_sbuf *b, size_t more)
{
    if (b->oom) return false;
    if (more < b->cap - b->len) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= more) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->buf, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->buf = p;
    b->cap = cap;
    return true;
}

void t2m_sbuf_put(struct t2m_sbuf *b, const char *s, size_t len)
{
    if (!sbuf_room(b, len)) return;
    memcpy(b->buf + b->len, s, len);
    b->len += len;
    b->buf[b->len] = '\0';
}

void t2m_sbuf_str(struct t2m_sbuf *b, const char *s)
{
    t2m_sbuf_put(b, s, strlen(s));
}

void t2m_sbuf_printf(struct t2m_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sbuf_room(b, (size_t)n)) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *t2m_sbuf_take(struct t2m_sbuf *b)
{
    if (!b->oom && !b->buf) sbuf_room(b, 0);
    if (b->oom) {
        free(b->buf);
        *b = (struct t2m_sbuf){0};
        return NULL;
    }
    char *s = b->buf;
    if (s) s[b->len] = '\0';
    *b = (struct t2m_sbuf){0};
    return s;
}

char *t2m_render_grow(t2m_render_fn fn, void *ctx, size_t pre, size_t first, size_t max,
                      size_t *len)
{
    *len = 0;
    for (size_t cap = first; cap && cap <= max; cap *= 2) {
        char *b = malloc(pre + cap);
        if (!b) return NULL;
        size_t n = fn(ctx, b + pre, cap);
        if (n > 0 && n < cap) {
            *len = n;
            return b;
        }
        free(b);
        if (cap > SIZE_MAX / 2) break;
    }
    return NULL;
}
