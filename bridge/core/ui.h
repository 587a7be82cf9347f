/* ui.h - pure: the rules of the status page (SPEC 7) - who may see it, how its live events are
 * framed, which files it serves. No I/O: io/http.c moves the bytes, bridge.c renders the data. */
#ifndef T2M_UI_H
#define T2M_UI_H

#include <stdbool.h>
#include <stddef.h>

enum t2m_ui_access {
    T2M_UI_ALLOW,        /* serve it */
    T2M_UI_OFF,          /* http.ui = false: 404, as if the paths did not exist */
    T2M_UI_FORBIDDEN,    /* not on loopback and no password configured: 403 */
    T2M_UI_UNAUTHORIZED, /* a password is configured and the request does not carry it: 401 */
};

#define T2M_UI_USER "admin"

/* Whether a request for /, /api/... or the page's assets may be answered. loopback: http.listen
 * is a loopback address (then no authentication is asked). password: http.ui_password_file's
 * content (NULL or "": none). authorization: the request's Authorization header (NULL: none);
 * only "Basic base64(admin:<password>)" passes (the scheme case-insensitive), compared in
 * constant time. */
enum t2m_ui_access t2m_ui_access(bool ui, bool loopback, const char *password,
                                 const char *authorization);

/* One Server-Sent Events message: "event: <event>\n" then data's lines each as "data: <line>\n",
 * then "\n" (a CR or LF in data starts a new data line, so data can never end the message or
 * forge a field). event: [a-z_]+ only. Returns the length written (NUL-terminated), or 0 when it
 * does not fit or event is not a plain name. */
size_t t2m_sse_frame(char *buf, size_t n, const char *event, const char *data, size_t len);

/* A file the page needs. Embedded ones carry their bytes; Leaflet's are files of Debian's
 * libjs-leaflet, named relative to its directory (T2M_LEAFLET_DIR). */
struct t2m_ui_asset {
    const char *path;          /* the request path, "/" or "/app.js" or "/leaflet/leaflet.js" */
    const char *ctype;         /* Content-Type */
    const unsigned char *data; /* embedded bytes, or NULL for a Leaflet file */
    size_t len;
    const char *file; /* a Leaflet file's name in T2M_LEAFLET_DIR, else NULL */
};

#define T2M_LEAFLET_DIR "/usr/share/javascript/leaflet"

/* The asset for a request path (the query string already cut), NULL when the page has none. */
const struct t2m_ui_asset *t2m_ui_asset(const char *path);

#endif
