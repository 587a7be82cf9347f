/* addr.h - pure: the one parser of addresses and URLs (upstream.url, mqtt.url, http.listen,
 * --healthcheck). No I/O, no allocation. */
#ifndef T2M_ADDR_H
#define T2M_ADDR_H

#include <stdbool.h>
#include <stddef.h>

/* Splits "host:port", "[IPv6]:port", "host" or ":port" (len bytes at a): the host without
 * brackets into host (hl bytes; "" for ":port"), the port (1..65535, or 0 with allow_zero) or -1
 * when absent, *v6 when it was bracketed. Host names are letters, digits, '-', '.', '_';
 * bracketed ones hex digits, ':', '.', '%'. 0, or -1 when malformed or a buffer is too small. */
int t2m_addr_split(const char *a, size_t len, char *host, size_t hl, int *port, bool allow_zero,
                   bool *v6);

/* Splits "scheme://host[:port][/path]" for ws, wss, tcp, mqtt, ssl, mqtts, http and https (scheme
 * matched case-insensitively, written lower-case). host: a name, IPv4 or "[IPv6]" (written
 * without the brackets). port: default 80 / 443 / 1883 / 8883 (ws, http / wss, https / tcp,
 * mqtt / ssl, mqtts). path:
 * "/" when absent, else from the first '/' on, query included ("?x" alone gives "/?x").
 * Userinfo ("user:pw@") is refused so credentials never sit in a URL. 0, or -1 when malformed,
 * of another scheme, or a buffer is too small. */
int t2m_url_parse(const char *url, char *scheme, size_t sl, char *host, size_t hl, int *port,
                  char *path, size_t pl);

/* The one check of the bridge's URLs: the upstream's (ws: ws:// or wss://) or one MQTT broker
 * node's (tcp://, mqtt://, ssl:// or mqtts://, no path), never with credentials. 0 with the host
 * (hl bytes; NULL: not wanted), port and TLS flag (either may be NULL), or -1 and why in msg. */
int t2m_url_check(const char *v, bool ws, char *host, size_t hl, int *port, bool *tls, char *msg,
                  size_t n);

/* True for the TLS schemes t2m_url_parse writes: "wss", "ssl", "mqtts", "https". */
bool t2m_url_tls(const char *scheme);

/* True when host (as t2m_addr_split / t2m_url_parse write it: no brackets) is a loopback
 * address: 127.0.0.0/8 as a dotted quad, ::1 or "localhost". Nothing is resolved. */
bool t2m_addr_loopback(const char *host);

/* The one iterator over a comma-separated list (mqtt.url's nodes): copies the item at *p into
 * buf (size bytes, NUL-terminated) and moves *p past it and its comma, NULL after the last.
 * 1 for an item (possibly empty), 0 when *p is NULL (the list is done), -1 when the item does
 * not fit (*p unchanged). "" is one empty item. */
int t2m_list_next(const char **p, char *buf, size_t size);

#endif
