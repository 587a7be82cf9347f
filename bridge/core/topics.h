/* topics.h - pure: topic segment encoding and topic building (SPEC section 2). */
#ifndef T2M_TOPICS_H
#define T2M_TOPICS_H

#include <stddef.h>

/* SPEC section 2: the longest topic the bridge builds (a practical bound below MQTT's 65,535);
 * config.c makes sure the fixed parts leave room for devices. */
#define T2M_TOPIC_MAX 1024
/* Room for one id as a topic segment: every byte percent-encoded at worst, and the NUL. */
#define T2M_SEG_MAX (3 * T2M_TOKEN_MAX + 1)

/* Percent-encodes one segment: bytes outside [A-Za-z0-9._~-] become %XX (upper-case hex).
 * Returns the encoded length (NUL-terminated), or -1 when inlen is 0 or > T2M_TOKEN_MAX (256),
 * or when out is too small (3*256+1 always fits). */
int t2m_topic_segment(char *out, size_t outlen, const char *in, size_t inlen);

/* Reverses t2m_topic_segment. Returns decoded length or -1 on malformed input. */
int t2m_topic_segment_decode(char *out, size_t outlen, const char *in, size_t inlen);

/* Maps bytes to [a-zA-Z0-9_-] collision-free for Home Assistant ids: [a-zA-Z0-9-] kept, every
 * other byte (including '_') becomes '_' + two lower-case hex digits. Returns length or -1. */
int t2m_topic_ha_id(char *out, size_t outlen, const char *in, size_t inlen);

/* Joins already-encoded segments with '/': t2m_topic_join(buf, n, 3, "telematics", "I", "D").
 * Returns length or -1 if it does not fit. */
int t2m_topic_join(char *out, size_t outlen, int count, ...);

#endif
