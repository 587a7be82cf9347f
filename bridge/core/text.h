/* text.h - pure byte-string helpers shared by every module: strict UTF-8 and secret redaction.
 * One copy of each; no I/O (only t2m_sbuf and t2m_wipe_free touch the heap). */
#ifndef T2M_TEXT_H
#define T2M_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (at most len bytes, len >= 1): 1 for ASCII, 2..4,
 * or 0 when it is not valid (overlong forms, surrogates, code points past U+10FFFF). */
size_t t2m_utf8_seq(const unsigned char *s, size_t len);
/* True when all len bytes are strict UTF-8. */
bool t2m_utf8_valid(const char *s, size_t len);
/* True when s is strict UTF-8 without control characters (C0, DEL, C1): what a topic level
 * or an MQTT client id may hold. */
bool t2m_text_printable(const char *s, size_t len);

/* Replaces, in place, every occurrence of each non-empty secret in the NUL-terminated text s
 * with "***" (a secret shorter than that with as many '*'), and a tail of 4 or more bytes that
 * is the start of a secret (a text truncated in the middle of it) with "***", so the text
 * never grows. For text that came from the network before it is logged or published. Returns
 * how many were replaced. */
size_t t2m_redact(char *s, const char *const *secrets, size_t n_secrets);

/* Appends s (len bytes) as a JSON string literal with quotes, escaping ", \, control bytes and
 * (valid UTF-8 kept) invalid bytes as \u00XX. Returns bytes written or 0 if it does not fit. */
size_t t2m_json_escape(char *buf, size_t n, const char *s, size_t len);

/* Overwrites the NUL-terminated secret s with zeros (explicit_bzero: not optimised away) and
 * frees it. NULL is fine. */
void t2m_wipe_free(char *s);

/* Decodes len characters of base64 (url: the base64url alphabet "-_", else "+/"; '=' padding at
 * the end allowed, not required) into out (room: cap bytes). Returns the decoded length, or -1
 * when a character is outside the alphabet, the length is impossible or out is too small. */
long t2m_base64_decode(const char *s, size_t len, unsigned char *out, size_t cap, bool url);

/* FNV-1a (32 bit) of len bytes, continuing from h (start with T2M_FNV_INIT): the one hash of
 * the device table, the publisher's topic map and (SPEC 9) instance sharding. */
#define T2M_FNV_INIT 2166136261u
uint32_t t2m_fnv1a(uint32_t h, const void *data, size_t len);

/* A growing string, for text whose size is not known before it is written (the printed
 * configuration). Zero-initialise; after a failed allocation every append is a no-op and
 * t2m_sbuf_take says NULL. */
struct t2m_sbuf {
    char *buf;
    size_t len, cap;
    bool oom;
};
void t2m_sbuf_put(struct t2m_sbuf *b, const char *s, size_t len);
void t2m_sbuf_str(struct t2m_sbuf *b, const char *s);
void t2m_sbuf_printf(struct t2m_sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The text (NUL-terminated, the caller frees it), or NULL after a failed allocation. */
char *t2m_sbuf_take(struct t2m_sbuf *b);

/* A renderer into a fixed buffer: the length written, 0 when it does not fit. */
typedef size_t (*t2m_render_fn)(void *ctx, char *buf, size_t n);
/* The one loop for output of unknown size through such a renderer: a malloc'd buffer of `first`
 * bytes (after `pre` bytes of headroom, lws' LWS_PRE), doubled until the text fits or `max`
 * bytes would not hold it. The buffer (the text at buf + pre, its length in *len), or NULL. */
char *t2m_render_grow(t2m_render_fn fn, void *ctx, size_t pre, size_t first, size_t max,
                      size_t *len);

#endif
