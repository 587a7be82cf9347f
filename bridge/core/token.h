/* token.h - pure: what the bridge reads from an access token (SPEC 7), and when to warn that it
 * is about to expire. The token is never verified (the platform does that); only its `exp` claim
 * is read, to show when it ends. No I/O, no clock: times are passed in. */
#ifndef T2M_TOKEN_H
#define T2M_TOKEN_H

#include <stdbool.h>
#include <stdint.h>

/* The `exp` claim (Unix seconds) of a JWT "header.payload.signature": the payload base64url
 * decoded (padding optional) and parsed as a JSON object; exp a number in 1..2^40 (a fraction is
 * cut). Returns 0 when the token is not a JWT, its payload is not JSON or carries no valid exp. */
int64_t t2m_token_exp(const char *token);

#define T2M_TOKEN_WARN_AHEAD_S 3600     /* warn when the token ends within the hour */
#define T2M_TOKEN_WARN_EVERY_MS 3600000 /* ... at start-up and then hourly */

/* Whether to warn now that an instance's access token expires (SPEC 7): it carries an exp
 * (exp > 0), nothing can refresh it (!can_refresh), it ends within T2M_TOKEN_WARN_AHEAD_S of
 * wall_s (or has ended), and the last warning (last_warn_ms on the monotonic clock, 0: never)
 * is at least T2M_TOKEN_WARN_EVERY_MS old. */
bool t2m_token_warn_due(int64_t exp, bool can_refresh, int64_t wall_s, int64_t last_warn_ms,
                        int64_t mono_ms);

#endif
