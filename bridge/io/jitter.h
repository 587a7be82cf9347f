/* jitter.h - the one random source of the backoffs (MQTT and upstream): per process, from the
 * kernel, so that a fleet of bridges does not retry in lockstep. Nothing secret rides on it. */
#ifndef T2M_JITTER_H
#define T2M_JITTER_H

/* A uniform number in [0, 1): getrandom, or (no entropy yet at early boot) the monotonic
 * clock's low bits, which differ between processes too. */
double t2m_jitter(void);

#endif
