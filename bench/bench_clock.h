/* bench_clock.h - the benchmark helpers' clocks, written once: monotonic seconds for rates and
 * this process's CPU seconds (user + system). */
#ifndef T2M_BENCH_CLOCK_H
#define T2M_BENCH_CLOCK_H

#include <sys/resource.h>
#include <time.h>

static inline double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

#endif
