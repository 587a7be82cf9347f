/* log_stderr.c - the stderr sink of log.h, shared by the loop and Paho's threads. */
#include "log_stderr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

static bool g_json;
static bool g_journal; /* stderr goes to the journal: it timestamps lines itself */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static void emit(enum t2m_log_level level, const char *module, const char *msg)
{
    char ts[40] = "";
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t l = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + l, sizeof(ts) - l, ".%03ldZ", now.tv_nsec / 1000000);

    pthread_mutex_lock(&g_lock);
    if (g_json) {
        char body[6 * 1024 + 3]; /* a 1 KiB message, every byte escaped */
        if (!t2m_json_escape(body, sizeof(body), msg, strlen(msg))) strcpy(body, "\"?\"");
        fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":%s}\n", ts,
                t2m_log_level_name(level), module, body);
    } else if (g_journal) {
        fprintf(stderr, "<%d>%s: %s\n",
                level == T2M_LOG_ERROR  ? 3
                : level == T2M_LOG_WARN ? 4
                : level == T2M_LOG_INFO ? 6
                                        : 7,
                module, msg);
    } else {
        fprintf(stderr, "%s %-5s %s: %s\n", ts, t2m_log_level_name(level), module, msg);
    }
    fflush(stderr);
    pthread_mutex_unlock(&g_lock);
}

void t2m_log_init(enum t2m_log_level level, bool json)
{
    t2m_log_set_level(level);
    g_json = json;
    g_journal = getenv("JOURNAL_STREAM") != NULL;
    t2m_log_set_sink(emit);
}
