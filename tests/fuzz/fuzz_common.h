/* fuzz_common.h - what the libFuzzer targets share: a hard assertion and a strict JSON check. */
#ifndef T2M_FUZZ_COMMON_H
#define T2M_FUZZ_COMMON_H

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

/* A broken invariant is a crash: libFuzzer then saves the input that caused it. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Parses buf[0..len) as one complete strict JSON object. Returns the tree (json_object_put it)
 * or NULL when it is not exactly one valid object. */
static inline json_object *fuzz_json_object(const char *buf, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) abort();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
    if (o &&
        (json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object))) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* True when buf[0..len) is exactly a JSON number (RFC 8259 grammar): json-c cannot tell a bare
 * number from a truncated one, and strtod accepts far more ("inf", hex, leading '+'). */
static inline int fuzz_json_number(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-') i++;
    if (i < len && s[i] == '0') {
        i++;
    } else {
        if (i >= len || s[i] < '1' || s[i] > '9') return 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < len && s[i] == '.') {
        size_t d = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d) return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d) return 0;
    }
    return i == len;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static inline int fuzz_utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            need = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 3;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 4;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return 0;
        }
        if (len - i < need || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k < need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) return 0;
        i += need;
    }
    return 1;
}

#endif
