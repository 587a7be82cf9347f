/* addr.c - addresses and URLs (addr.h). */
#include "addr.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool t2m_url_tls(const char *scheme)
{
    return scheme && (strcmp(scheme, "wss") == 0 || strcmp(scheme, "ssl") == 0 ||
                      strcmp(scheme, "mqtts") == 0 || strcmp(scheme, "https") == 0);
}

/* A dotted quad "a.b.c.d" (each 0..255, decimal, no sign, at most 3 digits): its first byte, or -1.
 */
static int dotted_quad_first(const char *s)
{
    int first = -1;
    for (int part = 0; part < 4; part++) {
        int v = 0, digits = 0;
        for (; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
            v = v * 10 + (*s - '0');
        if (digits == 0 || digits > 3 || v > 255) return -1;
        if (part == 0) first = v;
        if (part < 3 && *s++ != '.') return -1;
    }
    return *s == '\0' ? first : -1;
}

bool t2m_addr_loopback(const char *host)
{
    if (!host) return false;
    if (strcmp(host, "::1") == 0 || strcasecmp(host, "localhost") == 0) return true;
    return dotted_quad_first(host) == 127; /* 127.0.0.0/8 */
}

static int default_port(const char *scheme)
{
    static const struct {
        const char *s;
        int port;
    } ports[] = {{"ws", 80},    {"wss", 443},    {"tcp", 1883}, {"mqtt", 1883},
                 {"ssl", 8883}, {"mqtts", 8883}, {"http", 80},  {"https", 443}};
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
        if (strcmp(scheme, ports[i].s) == 0) return ports[i].port;
    return -1;
}

/* Parses the digits of a port in [p, end): 1..65535, nothing else. */
static int parse_port(const char *p, const char *end)
{
    if (p == end || end - p > 5) return -1;
    int v = 0;
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        v = v * 10 + (*p - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

static bool host_ok(const char *h, size_t n, bool v6)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (v6 ? !(isxdigit(c) || c == ':' || c == '.' || c == '%')
               : !(isalnum(c) || c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

static int copy_n(char *dst, size_t dl, const char *src, size_t n)
{
    if (n >= dl) return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

int t2m_addr_split(const char *a, size_t len, char *host, size_t hl, int *port, bool allow_zero,
                   bool *v6out)
{
    const char *end = a + len;
    if (len == 0) return -1;
    const char *hs = a, *he, *rest;
    bool v6 = false;
    if (*a == '[') {
        const char *close = memchr(a, ']', (size_t)(end - a));
        if (!close) return -1;
        hs = a + 1;
        he = close;
        rest = close + 1;
        v6 = true;
    } else {
        he = memchr(a, ':', (size_t)(end - a));
        if (!he) he = end;
        rest = he;
    }
    /* ":port" alone: the host is empty (every address, for a listener) */
    bool empty = !v6 && he == hs && rest != end;
    if ((!empty && !host_ok(hs, (size_t)(he - hs), v6)) || copy_n(host, hl, hs, (size_t)(he - hs)))
        return -1;
    if (v6out) *v6out = v6;
    int p = -1;
    if (rest != end) {
        if (*rest != ':') return -1;
        p = allow_zero && end - rest == 2 && rest[1] == '0' ? 0 : parse_port(rest + 1, end);
        if (p < 0) return -1;
    }
    *port = p;
    return 0;
}

int t2m_url_parse(const char *url, char *scheme, size_t sl, char *host, size_t hl, int *port,
                  char *path, size_t pl)
{
    if (!url || !scheme || !host || !port || !path) return -1;
    const char *sep = strstr(url, "://");
    if (!sep || sep == url || (size_t)(sep - url) >= sl) return -1;
    size_t n = (size_t)(sep - url);
    for (size_t i = 0; i < n; i++)
        scheme[i] = (char)tolower((unsigned char)url[i]);
    scheme[n] = '\0';
    int def = default_port(scheme);
    if (def < 0) return -1;

    const char *a = sep + 3;
    const char *end = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(end - a))) return -1;
    bool v6;
    if (t2m_addr_split(a, (size_t)(end - a), host, hl, port, false, &v6) || (!v6 && !host[0]))
        return -1;
    if (*port < 0) *port = def;

    for (const char *p = end; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return -1;
    if (*end == '\0') return copy_n(path, pl, "/", 1);
    if (*end == '/') return copy_n(path, pl, end, strlen(end));
    if (pl < 2) return -1;
    path[0] = '/';
    return copy_n(path + 1, pl - 1, end, strlen(end));
}

int t2m_url_check(const char *v, bool ws, char *host, size_t hl, int *port, bool *tls, char *msg,
                  size_t n)
{
    char scheme[16], path[1024], h[256];
    int p;
    const char *want = ws ? "ws:// or wss://" : "tcp://, mqtt://, ssl:// or mqtts://";
    if (!host || hl == 0) {
        host = h;
        hl = sizeof(h);
    }
    if (t2m_url_parse(v, scheme, sizeof(scheme), host, hl, &p, path, sizeof(path)) ||
        strncmp(scheme, "http", 4) == 0) {
        if (v && strchr(v, '@'))
            snprintf(msg, n, "credentials do not belong in the URL (use username / password)");
        else
            snprintf(msg, n, "not a valid %s URL", want);
        return -1;
    }
    bool is_ws = strcmp(scheme, "ws") == 0 || strcmp(scheme, "wss") == 0;
    if (is_ws != ws) {
        snprintf(msg, n, "must start with %s", want);
        return -1;
    }
    if (!ws && strcmp(path, "/") != 0) {
        snprintf(msg, n, "an MQTT URL has no path");
        return -1;
    }
    if (port) *port = p;
    if (tls) *tls = t2m_url_tls(scheme);
    return 0;
}

int t2m_list_next(const char **p, char *buf, size_t size)
{
    if (!*p) return 0;
    const char *end = strchr(*p, ',');
    size_t len = end ? (size_t)(end - *p) : strlen(*p);
    if (len >= size) return -1;
    memcpy(buf, *p, len);
    buf[len] = '\0';
    *p = end ? end + 1 : NULL;
    return 1;
}
