/* log.c - levels, the message and the per-message summary; where a line goes (stderr, with the
 * time) is the sink's business (io/log_stderr.c): core/ reads no clock and writes no file. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Read by Paho's threads while an `options` request may change it on the loop: atomic (relaxed:
 * a log line more or less around the change is fine, a data race is not). */
static _Atomic int g_level = T2M_LOG_INFO;
/* Set once, before any thread logs (t2m_log_init); NULL: lines are dropped. */
static t2m_log_sink_fn g_sink;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void t2m_log_set_sink(t2m_log_sink_fn sink)
{
    g_sink = sink;
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

void t2m_log(enum t2m_log_level level, const char *module, const char *fmt, ...)
{
    if (!g_sink || !t2m_log_enabled(level)) return;
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
    g_sink(level, module, msg);
}
