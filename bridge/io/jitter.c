/* jitter.c - the backoffs' random source (jitter.h). */
#include "jitter.h"

#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

double t2m_jitter(void)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r = (uint32_t)ts.tv_nsec * 2654435761u;
    }
    return (double)r / 4294967296.0;
}
