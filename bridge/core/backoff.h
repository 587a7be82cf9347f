/* backoff.h - pure: exponential backoff with full jitter (SPEC section 8). */
#ifndef T2M_BACKOFF_H
#define T2M_BACKOFF_H

/* Delay in seconds before retry number `attempt` (0 for the first retry):
 * cap = min(max, min * 2^attempt); delay = min + rnd01 * (cap - min), rnd01 in [0,1).
 * Never below min nor above max; large attempts do not overflow. */
double t2m_backoff_delay(unsigned attempt, double min, double max, double rnd01);

#endif
