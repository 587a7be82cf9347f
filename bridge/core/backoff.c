/* backoff.c - exponential backoff with full jitter (SPEC section 8). Written here rather than with
 * lws_retry_bo_t because that one takes a fixed table of delays in ms and its own random source,
 * while the reconnect policy needs configured float bounds and a testable random input. */
#include "backoff.h"

double t2m_backoff_delay(unsigned attempt, double min, double max, double rnd01)
{
    /* The comparisons are written so that NaN inputs fall to the safe side. */
    if (!(min > 0)) min = 0;
    if (min > 1e300) min = 1e300; /* keeps cap - min finite, so rnd01 0 cannot make 0 * inf */
    if (!(max >= min)) max = min;
    if (max > 1e300) max = 1e300;
    if (!(rnd01 > 0)) rnd01 = 0;
    if (!(rnd01 < 1)) rnd01 = 0.999999999;
    double cap = min;
    /* Doubling stops at max (or at once for min 0, where min * 2^n stays 0), so a huge attempt
     * costs at most ~1100 steps and never overflows. */
    for (unsigned i = 0; i < attempt && cap < max && cap > 0; i++)
        cap *= 2;
    if (cap > max) cap = max;
    double d = min + rnd01 * (cap - min);
    if (d < min) d = min;
    if (d > max) d = max;
    return d;
}
