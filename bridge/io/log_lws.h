/* log_lws.h - libwebsockets' log routed into log.h (the logger itself stays free of lws). */
#ifndef T2M_LOG_LWS_H
#define T2M_LOG_LWS_H

/* Routes libwebsockets' own log lines (errors and warnings; notices at debug) into t2m_log. */
void t2m_log_route_lws(void);

#endif
