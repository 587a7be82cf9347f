/* bridge.h - the decisions between upstream and MQTT: device table, stale guard, throttling,
 * fan-out to position / attribute / OwnTracks / discovery topics, instance status, health.
 * Owns every other module's object; everything runs on the lws loop. */
#ifndef T2M_BRIDGE_H
#define T2M_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct lws_context;
struct t2m_bridge;

/* Builds everything (MQTT client, upstream connections, HTTP endpoint) without connecting.
 * cfg stays owned by the caller and must outlive the bridge. NULL + err on failure. */
struct t2m_bridge *t2m_bridge_new(struct lws_context *ctx, struct t2m_config *cfg, char *err,
                                  size_t errlen);
/* Starts connecting to the broker and every instance. */
int t2m_bridge_start(struct t2m_bridge *b);
/* SIGHUP: re-read token and password files, reconnect what changed. */
void t2m_bridge_reload(struct t2m_bridge *b);
/* SIGTERM/SIGINT: stop the upstreams, publish `offline`, flush (at most 5 s), disconnect. */
void t2m_bridge_stop(struct t2m_bridge *b);
/* True once the shutdown started by t2m_bridge_stop has finished: leave the loop. */
bool t2m_bridge_done(const struct t2m_bridge *b);
void t2m_bridge_free(struct t2m_bridge *b);

#endif
