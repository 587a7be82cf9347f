/* session_request.c - the request table of the session core (session.h, SPEC 2.3): what each
 * request under B/bridge/request/ does to the state core and the log level, and its answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "out.h"
#include "session.h"
#include "state.h"
#include "text.h"

#define DEVICES_REPLY_MAX (8u << 20) /* a devices reply larger than this asks for a filter */

static void reply_error(struct t2m_reply *reply, const char *why)
{
    snprintf(reply->error, sizeof(reply->error), "%s", why);
}

static char *health_json(const char *why)
{
    char buf[512];
    struct t2m_out o = {buf, sizeof(buf), 0, false};
    t2m_out_str(&o, why ? "{\"healthy\":false,\"reason\":" : "{\"healthy\":true");
    if (why) t2m_out_json(&o, why, strlen(why));
    t2m_out_str(&o, "}");
    return t2m_out_finish(&o) ? strdup(buf) : NULL;
}

struct devices_ctx {
    struct t2m_state *st;
    int inst;
};

static size_t render_devices(void *ctx, char *buf, size_t n)
{
    const struct devices_ctx *c = ctx;
    return t2m_state_render_devices(c->st, c->inst, buf, n);
}

/* The devices (of one instance, or every), in a buffer that grows until they fit. */
static char *devices_json(struct t2m_state *st, int inst)
{
    struct devices_ctx c = {st, inst};
    size_t len;
    return t2m_render_grow(render_devices, &c, 0, 65536, DEVICES_REPLY_MAX, &len);
}

int t2m_session_request(const struct t2m_session *s, struct t2m_state *st, const char *cmd,
                        const void *payload, size_t len, const struct t2m_sess_view *v,
                        struct t2m_now now, struct t2m_request *r, struct t2m_reply *reply)
{
    memset(reply, 0, sizeof(*reply));
    if (t2m_request_parse(cmd, payload, len, r, reply->error, sizeof(reply->error)) != 0) return -1;
    int inst = r->has_instance ? t2m_state_instance(st, r->instance) : -1;
    if (r->has_instance && inst < 0) {
        reply_error(reply, "unknown instance");
        return 0;
    }
    switch (r->cmd) {
    case T2M_REQ_DEVICE_REMOVE:
        if (t2m_state_remove(st, (unsigned)inst, r->device, r->device_len, now) != 0) {
            reply_error(reply, "unknown device");
            break;
        }
        T2M_INFO("bridge", "request: device %s of %s removed", r->device, r->instance);
        break;
    case T2M_REQ_DEVICE_RENAME:
        if (t2m_state_rename(st, (unsigned)inst, r->device, r->device_len, r->name, now) != 0)
            reply_error(reply, "unknown device");
        break;
    case T2M_REQ_HEALTH_CHECK:
        if (!(reply->data = health_json(t2m_session_unhealthy(s, v))))
            reply_error(reply, "out of memory");
        break;
    case T2M_REQ_OPTIONS: {
        enum t2m_log_level lvl;
        if (t2m_log_parse_level(r->log_level, &lvl) != 0) {
            reply_error(reply, "log_level must be debug, info, warn or error");
            break;
        }
        t2m_log_set_level(lvl);
        T2M_WARN("bridge", "request: log level now %s", t2m_log_level_name(lvl));
        char data[64];
        snprintf(data, sizeof(data), "{\"log_level\":\"%s\"}", t2m_log_level_name(lvl));
        if (!(reply->data = strdup(data))) reply_error(reply, "out of memory");
        break;
    }
    case T2M_REQ_DEVICES:
        if (!(reply->data = devices_json(st, inst)))
            reply_error(reply, "too many devices for one reply: filter by \"instance\"");
        break;
    default:
        reply_error(reply, "unknown command");
        break;
    }
    return 0;
}
