/* sim_hostile.h - telematics-sim's --handshake modes: a server that misbehaves before or during
 * the WebSocket upgrade, where a well-behaved lws server cannot (tests/sim/README.md). */
#ifndef SIM_HOSTILE_H
#define SIM_HOSTILE_H

#include <signal.h>

/* 0 when mode is one of the names below, else -1. */
int sim_hostile_mode_known(const char *mode);
/* Listens on host:port (0 = any free port), prints the usual "listening on" line, then serves
 * every connection as `mode` says until *stop is set. redirect_to: the Location of mode
 * "redirect". Returns the exit status. */
int sim_hostile_run(const char *host, int port, const char *mode, const char *redirect_to,
                    volatile sig_atomic_t *stop);

#endif
