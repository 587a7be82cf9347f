/* log_stderr.h - the daemon's log sink: one line per event on stderr, text or JSON. */
#ifndef T2M_LOG_STDERR_H
#define T2M_LOG_STDERR_H

#include <stdbool.h>

#include "log.h"

/* Sets level and format (json = one JSON object per line) and installs the stderr sink. Under
 * systemd (JOURNAL_STREAM set) text lines carry no timestamp: the journal adds its own. Safe
 * to call again, before Paho's threads start. */
void t2m_log_init(enum t2m_log_level level, bool json);

#endif
