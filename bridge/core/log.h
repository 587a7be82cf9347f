/* log.h - the bridge's one logger: levels, text or JSON lines (lws is routed in by io/log_lws.c).
 */
#ifndef T2M_LOG_H
#define T2M_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum t2m_log_level { T2M_LOG_ERROR = 0, T2M_LOG_WARN, T2M_LOG_INFO, T2M_LOG_DEBUG };

/* Where a finished line goes: one call per line, from the loop or Paho's threads (the sink
 * serialises). io/log_stderr.c's t2m_log_init installs the daemon's; none: lines are dropped. */
typedef void (*t2m_log_sink_fn)(enum t2m_log_level level, const char *module, const char *msg);
void t2m_log_set_sink(t2m_log_sink_fn sink);
void t2m_log_set_level(enum t2m_log_level level);
bool t2m_log_enabled(enum t2m_log_level level);

/* Parses "error|warn|info|debug"; returns 0 or -1. */
int t2m_log_parse_level(const char *s, enum t2m_log_level *out);
const char *t2m_log_level_name(enum t2m_log_level level);

/* Formats one line and hands it to the sink. `module` is a short tag ("upstream", "mqtt").
 * Thread-safe (Paho's threads log too). Never pass secrets: nothing here redacts. */
void t2m_log(enum t2m_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A condition that can repeat per message (a dropped update, a refused publish): logged the first
 * time, then at most once per period with how many times it happened meanwhile (SPEC section 8).
 * Pure: the caller passes the time. Zero-initialise. */
struct t2m_repeat {
    int64_t next_ms;     /* no line before this time */
    uint64_t suppressed; /* occurrences since the last line */
    bool seen;
};
#define T2M_REPEAT_PERIOD_MS 60000
/* Records one occurrence at now_ms. Returns 0 when it stays silent, else the number of
 * occurrences the line printed now stands for (1 the first time, then 1 + those suppressed). */
uint64_t t2m_repeat_hit(struct t2m_repeat *r, int64_t now_ms);

#define T2M_ERROR(mod, ...) t2m_log(T2M_LOG_ERROR, mod, __VA_ARGS__)
#define T2M_WARN(mod, ...) t2m_log(T2M_LOG_WARN, mod, __VA_ARGS__)
#define T2M_INFO(mod, ...) t2m_log(T2M_LOG_INFO, mod, __VA_ARGS__)
#define T2M_DEBUG(mod, ...)                                                                        \
    do {                                                                                           \
        if (t2m_log_enabled(T2M_LOG_DEBUG)) t2m_log(T2M_LOG_DEBUG, mod, __VA_ARGS__);              \
    } while (0)

#endif
