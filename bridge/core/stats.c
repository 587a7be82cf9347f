/* stats.c - names of the drop reasons, as /metrics labels them. */
#include "stats.h"

const char *t2m_drop_reason_name(enum t2m_drop_reason r)
{
    static const char *const names[T2M_DROP_COUNT] = {
        "invalid_json",  "too_large",       "invalid_token",    "stale",          "max_devices",
        "offline_queue", "unauthenticated", "broker_too_large", "broker_refused", "removed",
    };
    return (unsigned)r < T2M_DROP_COUNT ? names[r] : "unknown";
}
