/* refresh.h - the RefreshToken call of SPEC section 1: POST {"AccessToken","RefreshToken"} over
 * HTTPS with lws' HTTP client, parse the new access token and the rotated refresh token, and
 * persist the rotated refresh token atomically. The pure parts (request body, reply parsing, the
 * atomic file write) are separate functions with their own unit tests. */
#ifndef T2M_REFRESH_H
#define T2M_REFRESH_H

#include <libwebsockets.h> /* the protocol callback's signature needs its enum */
#include <stdbool.h>
#include <stddef.h>

struct t2m_refresh;

#define T2M_REFRESH_DEFAULT_URL "https://user.telematicssdk.com/v1/Auth/RefreshToken"
/* Name of the lws protocol the HTTP client runs on: the vhost passed to t2m_refresh_start must
 * list {T2M_REFRESH_PROTOCOL, t2m_refresh_callback, ...} among its protocols. */
#define T2M_REFRESH_PROTOCOL "t2m-refresh"
#define T2M_REFRESH_MAX_REPLY 65536 /* bytes; a longer reply is a failure */

/* A successful reply. Strings are malloc'd secrets: free with t2m_refresh_result_clear. */
struct t2m_refresh_result {
    char *access_token;
    char *refresh_token;
    double expires_in; /* seconds; 0 when the reply has none */
};

/* Renders {"AccessToken":access,"RefreshToken":refresh} (JSON-escaped) into a new string, NULL
 * when out of memory. The caller wipes and frees it. */
char *t2m_refresh_render_request(const char *access, const char *refresh);

/* Parses a reply body: Result.AccessToken.Token and Result.RefreshToken must be non-empty
 * strings; Result.AccessToken.ExpiresIn a non-negative number (or absent -> 0). Returns 0 and
 * fills out, or -1 with err filled (never containing a token). */
int t2m_refresh_parse_reply(const char *body, size_t len, struct t2m_refresh_result *out, char *err,
                            size_t errlen);

/* Wipes and frees the strings of r; r itself is left zeroed. */
void t2m_refresh_result_clear(struct t2m_refresh_result *r);

/* Replaces `path` with `content` + "\n" atomically: a temporary file in the same directory
 * (mode 0600), fsync, rename over path, fsync of the directory. Returns 0, or -1 with err
 * filled and path untouched. */
int t2m_refresh_write_atomic(const char *path, const char *content, char *err, size_t errlen);

/* Called once per t2m_refresh_start (never after t2m_refresh_cancel), from the lws loop. On
 * success res holds the reply (the callee may take its strings, setting them to NULL; the rest
 * is cleared after the call) and the rotated refresh token has already been written to the
 * refresh token file; on failure res is NULL and why says what went wrong. */
typedef void (*t2m_refresh_cb)(void *user, struct t2m_refresh_result *res, const char *why);

struct t2m_refresh_request {
    const char *url;                /* https:// (or http://) endpoint */
    const char *access_token;       /* the current (possibly expired) access token */
    const char *refresh_token;      /* the refresh token to trade in */
    const char *refresh_token_file; /* where the rotated refresh token is persisted */
    bool tls_verify;                /* false: accept any server certificate */
    double timeout;                 /* seconds for the whole exchange; <= 0: 30 */
};

/* Starts one refresh on vhost vh (its TLS settings, e.g. upstream.ca_file, apply). The request's
 * strings are copied. Returns a handle, or NULL when out of memory or the URL is bad (cb is then
 * not called). A connection that cannot even be started is reported through cb, later. */
struct t2m_refresh *t2m_refresh_start(struct lws_context *ctx, struct lws_vhost *vh,
                                      const struct t2m_refresh_request *req, t2m_refresh_cb cb,
                                      void *user);

/* Abandons a refresh in flight: cb will not be called, the handle is freed. NULL is fine. */
void t2m_refresh_cancel(struct t2m_refresh *r);

/* The lws protocol callback for T2M_REFRESH_PROTOCOL. */
int t2m_refresh_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len);

#endif
