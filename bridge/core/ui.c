/* ui.c - see ui.h. */
#include "ui.h"

#include <string.h>
#include <strings.h>

#include "text.h"
#include "ui_assets.h"

static bool same_secret(const char *a, size_t al, const char *b, size_t bl)
{
    /* Constant time over the longer of the two: the length leaks nothing useful either. */
    size_t n = al > bl ? al : bl;
    unsigned char diff = (unsigned char)(al != bl);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)((i < al ? (unsigned char)a[i] : 0) ^
                                (i < bl ? (unsigned char)b[i] : 0));
    return diff == 0;
}

enum t2m_ui_access t2m_ui_access(bool ui, bool loopback, const char *password,
                                 const char *authorization)
{
    if (!ui) return T2M_UI_OFF;
    if (loopback) return T2M_UI_ALLOW;
    if (!password || !*password) return T2M_UI_FORBIDDEN;
    if (!authorization || strncasecmp(authorization, "Basic ", 6) != 0) return T2M_UI_UNAUTHORIZED;
    const char *b64 = authorization + 6;
    while (*b64 == ' ')
        b64++;
    size_t bl = strlen(b64);
    while (bl && b64[bl - 1] == ' ')
        bl--;
    unsigned char cred[512];
    long n = t2m_base64_decode(b64, bl, cred, sizeof(cred) - 1, false);
    if (n < 0) return T2M_UI_UNAUTHORIZED;
    const char *c = (const char *)cred;
    const char *colon = memchr(c, ':', (size_t)n);
    bool ok = colon && same_secret(c, (size_t)(colon - c), T2M_UI_USER, strlen(T2M_UI_USER));
    ok &= colon && same_secret(colon + 1, (size_t)(c + n - colon - 1), password, strlen(password));
    explicit_bzero(cred, sizeof(cred));
    return ok ? T2M_UI_ALLOW : T2M_UI_UNAUTHORIZED;
}

static bool put(char *buf, size_t n, size_t *at, const char *s, size_t len)
{
    if (len >= n - *at) return false;
    if (len) memcpy(buf + *at, s, len);
    *at += len;
    return true;
}

size_t t2m_sse_frame(char *buf, size_t n, const char *event, const char *data, size_t len)
{
    if (!buf || n == 0 || !event || !*event || (!data && len)) return 0;
    for (const char *e = event; *e; e++)
        if (!((*e >= 'a' && *e <= 'z') || *e == '_')) return 0;
    size_t at = 0;
    bool ok = put(buf, n, &at, "event: ", 7) && put(buf, n, &at, event, strlen(event)) &&
              put(buf, n, &at, "\n", 1);
    size_t start = 0;
    for (size_t i = 0; ok && i <= len; i++) {
        if (i < len && data[i] != '\n' && data[i] != '\r') continue;
        ok = put(buf, n, &at, "data: ", 6) && put(buf, n, &at, data + start, i - start) &&
             put(buf, n, &at, "\n", 1);
        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') i++;
        start = i + 1;
    }
    ok = ok && put(buf, n, &at, "\n", 1);
    if (!ok) {
        buf[0] = '\0';
        return 0;
    }
    buf[at] = '\0';
    return at;
}

static const struct t2m_ui_asset assets[] = {
    {"/", "text/html; charset=utf-8", t2m_ui_index_html, sizeof(t2m_ui_index_html), NULL},
    {"/app.js", "text/javascript; charset=utf-8", t2m_ui_app_js, sizeof(t2m_ui_app_js), NULL},
    {"/style.css", "text/css; charset=utf-8", t2m_ui_style_css, sizeof(t2m_ui_style_css), NULL},
    {"/leaflet/leaflet.js", "text/javascript; charset=utf-8", NULL, 0, "leaflet.min.js"},
    {"/leaflet/leaflet.css", "text/css; charset=utf-8", NULL, 0, "leaflet.css"},
    {"/leaflet/images/marker-icon.png", "image/png", NULL, 0, "images/marker-icon.png"},
    {"/leaflet/images/marker-icon-2x.png", "image/png", NULL, 0, "images/marker-icon-2x.png"},
    {"/leaflet/images/marker-shadow.png", "image/png", NULL, 0, "images/marker-shadow.png"},
    {"/leaflet/images/layers.png", "image/png", NULL, 0, "images/layers.png"},
    {"/leaflet/images/layers-2x.png", "image/png", NULL, 0, "images/layers-2x.png"},
};

const struct t2m_ui_asset *t2m_ui_asset(const char *path)
{
    if (!path) return NULL;
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
        if (strcmp(path, assets[i].path) == 0) return &assets[i];
    return NULL;
}
