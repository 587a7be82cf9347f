/* log.c - one line per event on stderr, text or JSON, shared by the loop and Paho's threads. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

/* Read by Paho's threads while an `options` request may change it on the loop: atomic (relaxed:
 * a log line more or less around the change is fine, a data race is not). */
static _Atomic int g_level = T2M_LOG_INFO;
static bool g_json;
static bool g_journal; /* stderr goes to the journal: it timestamps lines itself */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void t2m_log_init(enum t2m_log_level level, bool json)
{
    atomic_store_explicit(&g_level, (int)level, memory_order_relaxed);
    g_json = json;
    g_journal = getenv("JOURNAL_STREAM") != NULL;
}

void t2m_log_set_level(enum t2m_log_level level)
{
    atomic_store_explicit(&g_level, (int)level, memory_order_relaxed);
}

bool t2m_log_enabled(enum t2m_log_level level)
{
    return (int)level <= atomic_load_explicit(&g_level, memory_order_relaxed);
}

uint64_t t2m_repeat_hit(struct t2m_repeat *r, int64_t now_ms)
{
    if (r->seen && now_ms < r->next_ms) {
        r->suppressed++;
        return 0;
    }
    uint64_t n = r->suppressed + 1;
    r->seen = true;
    r->suppressed = 0;
    r->next_ms = now_ms + T2M_REPEAT_PERIOD_MS;
    return n;
}

int t2m_log_parse_level(const char *s, enum t2m_log_level *out)
{
    for (int i = 0; i <= T2M_LOG_DEBUG; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (enum t2m_log_level)i;
            return 0;
        }
    }
    if (s && strcmp(s, "warning") == 0) {
        *out = T2M_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *t2m_log_level_name(enum t2m_log_level level)
{
    return level <= T2M_LOG_DEBUG ? level_names[level] : "?";
}

/* Appends msg as the body of a JSON string (no quotes); control bytes become \u00XX. */

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

void t2m_log(enum t2m_log_level level, const char *module, const char *fmt, ...)
{
    if (!t2m_log_enabled(level)) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    /* Strip trailing newlines: lws lines end with one. */
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    emit(level, module, msg);
}
