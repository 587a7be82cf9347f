/* log_lws.c - libwebsockets' own log lines routed into the bridge's logger (log_lws.h). */
#include "log_lws.h"

#include <libwebsockets.h>
#include <string.h>

#include "log.h"

static void lws_emit(int level, const char *line)
{
    enum t2m_log_level l = level & LLL_ERR    ? T2M_LOG_ERROR
                           : level & LLL_WARN ? T2M_LOG_WARN
                                              : T2M_LOG_DEBUG;
    /* lws prefixes its own timestamp "[2026/12/01 06:15:00:1234] E: "; drop it. */
    const char *p = line;
    if (*p == '[') {
        const char *e = strstr(p, "] ");
        if (e) {
            p = e + 2;
            if (p[0] && p[1] == ':' && p[2] == ' ') p += 3;
        }
    }
    t2m_log(l, "lws", "%s", p);
}

void t2m_log_route_lws(void)
{
    int mask = LLL_ERR | LLL_WARN;
    if (t2m_log_enabled(T2M_LOG_DEBUG)) mask |= LLL_NOTICE;
    lws_set_log_level(mask, lws_emit);
}
