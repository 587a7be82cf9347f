/* refresh.c - the RefreshToken call: a one-shot lws HTTP client POST, its reply parsed with
 * json-c, the rotated refresh token written to its file atomically before anyone uses it. */
#include "refresh.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "protocol.h"
#include "text.h"

struct t2m_refresh {
    struct lws_context *ctx;
    struct lws *wsi;
    t2m_refresh_cb cb;
    void *user;
    char *url_copy; /* lws_parse_uri cuts it into the pieces below */
    char path[1024];
    char *host;
    char *body; /* secret: the request JSON */
    size_t body_len;
    char *file;
    char *reply;
    size_t reply_len;
    bool reply_overflow;
    int status;
    bool done;
    bool starting;     /* inside lws_client_connect_via_info */
    bool failed_early; /* the connection failed while starting */
    lws_sorted_usec_list_t sul_timeout, sul_fail;
};

char *t2m_refresh_render_request(const char *access, const char *refresh)
{
    struct json_object *o = json_object_new_object();
    if (!o) return NULL;
    json_object_object_add(o, "AccessToken", json_object_new_string(access ? access : ""));
    json_object_object_add(o, "RefreshToken", json_object_new_string(refresh ? refresh : ""));
    const char *s =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = s ? strdup(s) : NULL;
    /* json-c keeps its rendering in a buffer owned by the object: wipe it before the free. */
    if (s) explicit_bzero((char *)s, strlen(s));
    json_object_put(o);
    return out;
}

void t2m_refresh_result_clear(struct t2m_refresh_result *r)
{
    if (!r) return;
    t2m_wipe_free(r->access_token);
    t2m_wipe_free(r->refresh_token);
    memset(r, 0, sizeof(*r));
}

/* A non-empty string member, or NULL. */
static const char *nonempty(struct json_object *o, const char *key)
{
    size_t len = 0;
    const char *s = t2m_json_string(o, key, &len);
    return s && len ? s : NULL;
}

int t2m_refresh_parse_reply(const char *body, size_t len, struct t2m_refresh_result *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct json_tokener *tok = json_tokener_new_ex(16);
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success || end != len) {
        snprintf(err, errlen, "reply is not one JSON document");
        json_object_put(root);
        return -1;
    }
    struct json_object *result = NULL, *access = NULL, *exp = NULL;
    int rc = -1;
    if (!json_object_object_get_ex(root, "Result", &result) ||
        !json_object_is_type(result, json_type_object)) {
        snprintf(err, errlen, "reply has no Result object");
        goto out;
    }
    if (!json_object_object_get_ex(result, "AccessToken", &access) ||
        !json_object_is_type(access, json_type_object)) {
        snprintf(err, errlen, "reply has no Result.AccessToken object");
        goto out;
    }
    const char *token = nonempty(access, "Token");
    const char *rtoken = nonempty(result, "RefreshToken");
    if (!token || !rtoken) {
        snprintf(err, errlen, "reply lacks %s",
                 token ? "Result.RefreshToken" : "Result.AccessToken.Token");
        goto out;
    }
    double expires = 0;
    if (json_object_object_get_ex(access, "ExpiresIn", &exp) &&
        !json_object_is_type(exp, json_type_null)) {
        if (!json_object_is_type(exp, json_type_int) &&
            !json_object_is_type(exp, json_type_double)) {
            snprintf(err, errlen, "Result.AccessToken.ExpiresIn is not a number");
            goto out;
        }
        expires = json_object_get_double(exp);
        if (!(expires >= 0)) {
            snprintf(err, errlen, "Result.AccessToken.ExpiresIn is negative");
            goto out;
        }
    }
    out->access_token = strdup(token);
    out->refresh_token = strdup(rtoken);
    out->expires_in = expires;
    if (!out->access_token || !out->refresh_token) {
        t2m_refresh_result_clear(out);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

int t2m_refresh_write_atomic(const char *path, const char *content, char *err, size_t errlen)
{
    char dir[4096], tmp[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(content);
    const char *p = content;
    size_t left = len;
    int e = 0;
    if (fchmod(fd, 0600) != 0) e = errno;
    while (!e && left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            e = errno;
        else {
            p += n;
            left -= (size_t)n;
        }
    }
    if (!e && write(fd, "\n", 1) != 1) e = errno ? errno : EIO;
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        unlink(tmp);
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(e));
        return -1;
    }
    /* The rename is durable only once the directory entry is on disk. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            T2M_WARN("refresh", "%s: fsync of the directory failed: %s", dir, strerror(errno));
        close(dfd);
    }
    return 0;
}

static void refresh_free(struct t2m_refresh *r)
{
    lws_sul_cancel(&r->sul_timeout);
    lws_sul_cancel(&r->sul_fail);
    if (r->wsi) {
        /* Detach first: the close callbacks that follow must not find us. */
        lws_set_opaque_user_data(r->wsi, NULL);
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    free(r->url_copy);
    if (r->body) explicit_bzero(r->body, r->body_len);
    free(r->body);
    free(r->file);
    if (r->reply) explicit_bzero(r->reply, r->reply_len);
    free(r->reply);
    free(r);
}

/* Reports the outcome exactly once and frees the handle. */
static void finish(struct t2m_refresh *r, const char *why)
{
    if (r->done) return;
    r->done = true;
    struct t2m_refresh_result res = {0};
    char err[256];
    if (!why) {
        if (r->status != 200) {
            snprintf(err, sizeof(err), "HTTP status %d", r->status);
            why = err;
        } else if (r->reply_overflow) {
            why = "reply too large";
        } else if (t2m_refresh_parse_reply(r->reply ? r->reply : "", r->reply_len, &res, err,
                                           sizeof(err)) != 0) {
            why = err;
        } else if (t2m_refresh_write_atomic(r->file, res.refresh_token, err, sizeof(err)) != 0) {
            /* The old refresh token is spent: without the new one on disk a restart could not
             * refresh again. Say so loudly, but the new access token is still good to use. */
            T2M_ERROR("refresh", "rotated refresh token NOT persisted: %s", err);
        }
    }
    t2m_refresh_cb cb = r->cb;
    void *user = r->user;
    refresh_free(r);
    cb(user, why ? NULL : &res, why);
    t2m_refresh_result_clear(&res);
}

static void timeout_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_refresh *r = lws_container_of(sul, struct t2m_refresh, sul_timeout);
    finish(r, "timed out");
}

static void connect_failed_cb(lws_sorted_usec_list_t *sul)
{
    struct t2m_refresh *r = lws_container_of(sul, struct t2m_refresh, sul_fail);
    finish(r, "cannot start the connection");
}

struct t2m_refresh *t2m_refresh_start(struct lws_context *ctx, struct lws_vhost *vh,
                                      const struct t2m_refresh_request *req, t2m_refresh_cb cb,
                                      void *user)
{
    struct t2m_refresh *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->ctx = ctx;
    r->cb = cb;
    r->user = user;
    r->url_copy = strdup(req->url);
    r->body = t2m_refresh_render_request(req->access_token, req->refresh_token);
    r->file = strdup(req->refresh_token_file);
    if (!r->url_copy || !r->body || !r->file) goto fail;
    r->body_len = strlen(r->body);

    const char *scheme, *address, *path;
    int port;
    if (lws_parse_uri(r->url_copy, &scheme, &address, &port, &path) ||
        (strcmp(scheme, "https") && strcmp(scheme, "http")) || !address[0]) {
        T2M_ERROR("refresh", "bad refresh URL (want https://host[:port]/path)");
        goto fail;
    }
    bool tls = strcmp(scheme, "https") == 0;
    if (tls && port == 80) port = 443; /* lws_parse_uri defaults to 80 for any scheme */
    /* lws_parse_uri drops the leading '/' (LIBRARY-NOTES.md). */
    snprintf(r->path, sizeof(r->path), "/%s", path);
    r->host = (char *)address;

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = ctx;
    ci.vhost = vh;
    ci.address = address;
    ci.port = port;
    ci.path = r->path;
    ci.host = address;
    ci.origin = address;
    ci.method = "POST";
    ci.alpn = "http/1.1"; /* the body is written the HTTP/1 way */
    ci.protocol = T2M_REFRESH_PROTOCOL;
    ci.local_protocol_name = T2M_REFRESH_PROTOCOL;
    ci.opaque_user_data = r;
    ci.pwsi = &r->wsi;
    if (tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (!req->tls_verify)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    }
    double timeout = req->timeout > 0 ? req->timeout : 30;
    lws_sul_schedule(ctx, 0, &r->sul_timeout, timeout_cb, (lws_usec_t)(timeout * LWS_US_PER_SEC));
    T2M_DEBUG("refresh", "POST %s://%s:%d%s", scheme, address, port, r->path);
    /* NULL can come back with or without an error callback: report the failure from a timer so
     * cb never runs inside t2m_refresh_start and runs once. */
    r->starting = true;
    struct lws *w = lws_client_connect_via_info(&ci);
    r->starting = false;
    if (!w || r->failed_early) {
        r->wsi = NULL;
        lws_sul_schedule(ctx, 0, &r->sul_fail, connect_failed_cb, 1);
    }
    return r;

fail:
    refresh_free(r);
    return NULL;
}

void t2m_refresh_cancel(struct t2m_refresh *r)
{
    if (r && !r->done) {
        r->done = true;
        refresh_free(r);
    }
}

int t2m_refresh_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct t2m_refresh *r = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (!r) break;
        T2M_WARN("refresh", "connection failed: %s", in ? (const char *)in : "(no reason)");
        r->wsi = NULL;
        lws_set_opaque_user_data(wsi, NULL);
        if (r->starting)
            r->failed_early = true;
        else
            finish(r, "connection failed");
        break;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!r) break;
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        char clen[32];
        snprintf(clen, sizeof(clen), "%zu", r->body_len);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)"application/json", 16, p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                         (const unsigned char *)clen, (int)strlen(clen), p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ACCEPT,
                                         (const unsigned char *)"application/json", 16, p, end))
            return -1;
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        if (!r) break;
        unsigned char *buf = malloc(LWS_PRE + r->body_len);
        if (!buf) return -1;
        memcpy(buf + LWS_PRE, r->body, r->body_len);
        int n = lws_write(wsi, buf + LWS_PRE, r->body_len, LWS_WRITE_HTTP_FINAL);
        explicit_bzero(buf + LWS_PRE, r->body_len);
        free(buf);
        if (n < (int)r->body_len) return -1;
        lws_client_http_body_pending(wsi, 0);
        break;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (r) r->status = (int)lws_http_client_http_response(wsi);
        break;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (!r) break;
        if (r->reply_overflow || r->reply_len + len > T2M_REFRESH_MAX_REPLY) {
            r->reply_overflow = true;
            break;
        }
        if (!r->reply && !(r->reply = malloc(T2M_REFRESH_MAX_REPLY + 1))) return -1;
        memcpy(r->reply + r->reply_len, in, len);
        r->reply_len += len;
        r->reply[r->reply_len] = '\0';
        break;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buffer[1024 + LWS_PRE];
        char *px = buffer + LWS_PRE;
        int lenx = (int)sizeof(buffer) - LWS_PRE;
        if (lws_http_client_read(wsi, &px, &lenx) < 0) return -1;
        break;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (r) finish(r, NULL);
        break;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (!r) break;
        r->wsi = NULL;
        /* A reply without Content-Length ends with the close; the parser rejects a cut one. */
        finish(r, r->status == 200 && r->reply_len
                      ? NULL
                      : "connection closed before the reply was complete");
        break;
    default:
        break;
    }
    return 0;
}
