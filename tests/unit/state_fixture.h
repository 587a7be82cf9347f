/* state_fixture.h - what the state core's suites share: a recording action sink, a state made
 * from a config snippet, updates built by hand, both clocks passed in. */
#ifndef T2M_STATE_FIXTURE_H
#define T2M_STATE_FIXTURE_H
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "files.h"
#include "state.h"
#include "t2m_test.h"
#include "trip.h"

#define T0 1700000000000LL /* a wall-clock time, ms */
/* Both clocks at ms (the monotonic one's origin is arbitrary: here it reads as the wall one);
 * the clock tests step the wall clock alone. */
#define AT(ms) ((struct t2m_now){(ms), (ms)})
#define WALL_MONO(w, m) ((struct t2m_now){(w), (m)})

struct rec {
    enum t2m_action_kind kind;
    char topic[256];
    char *payload;
    bool retain, urgent;
    int qos;
};

static struct rec recs[4096];
static size_t nrec;
static struct t2m_stats stats;
/* the status page's actions (no topic), kept apart from what is published */
static struct rec views[1024];
static size_t nview;

static inline void sink(void *user, const struct t2m_action *a)
{
    (void)user;
    if (a->kind == T2M_ACT_VIEW_DEVICE || a->kind == T2M_ACT_VIEW_REMOVED) {
        CU_ASSERT_PTR_NULL(a->topic);
        if (nview < sizeof(views) / sizeof(views[0])) {
            struct rec *v = &views[nview++];
            v->kind = a->kind;
            v->topic[0] = '\0';
            v->payload = strndup(a->payload, a->len);
        }
        return;
    }
    CU_ASSERT_FATAL(nrec < sizeof(recs) / sizeof(recs[0]));
    struct rec *r = &recs[nrec++];
    r->kind = a->kind;
    snprintf(r->topic, sizeof(r->topic), "%s", a->topic);
    r->payload = strndup(a->payload, a->len);
    r->retain = a->retain;
    r->urgent = a->urgent;
    r->qos = a->qos;
}

static inline void clear(void)
{
    for (size_t i = 0; i < nrec; i++)
        free(recs[i].payload);
    nrec = 0;
    for (size_t i = 0; i < nview; i++)
        free(views[i].payload);
    nview = 0;
}

/* The last action on topic (NULL if none) and how many there were. */
static inline struct rec *last(const char *topic, int *count)
{
    struct rec *r = NULL;
    int c = 0;
    for (size_t i = 0; i < nrec; i++)
        if (strcmp(recs[i].topic, topic) == 0) {
            r = &recs[i];
            c++;
        }
    if (count) *count = c;
    return r;
}

static inline json_object *json_of(const char *topic)
{
    struct rec *r = last(topic, NULL);
    return r && r->payload[0] ? json_tokener_parse(r->payload) : NULL;
}

/* Events on the topic, in order, as their "event" names joined by ','. */
static inline const char *events(const char *topic)
{
    static char out[1024];
    out[0] = '\0';
    for (size_t i = 0; i < nrec; i++) {
        if (strcmp(recs[i].topic, topic) != 0) continue;
        json_object *o = json_tokener_parse(recs[i].payload), *e;
        if (o && json_object_object_get_ex(o, "event", &e)) {
            if (out[0]) strcat(out, ",");
            strncat(out, json_object_get_string(e), sizeof(out) - strlen(out) - 1);
        }
        json_object_put(o);
    }
    return out;
}

/* The live trip inside the latest state on POS (SPEC v3 2.1), or NULL. */
static inline json_object *state_trip(void)
{
    json_object *p = json_of("telematics/i/d/position"), *t = NULL;
    if (p && json_object_object_get_ex(p, "trip", &t)) json_object_get(t);
    json_object_put(p);
    return t;
}

static inline double num(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : NAN;
}

static inline const char *str(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "(absent)";
}

static inline bool has(json_object *o, const char *key)
{
    return json_object_object_get_ex(o, key, NULL);
}

static struct t2m_config *cfg;
static char conf_path[] = "/tmp/t2m_test_state_XXXXXX";

static inline struct t2m_state *mk_conn(const char *extra, bool connected)
{
    clear();
    memset(&stats, 0, sizeof(stats));
    t2m_config_free(cfg);
    int fd = mkstemp(conf_path);
    CU_ASSERT_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "instances = ( { id = \"i\"; access_token = \"t\"; } );\n%s%s\n",
            strstr(extra, "homeassistant") ? "" : "homeassistant = { enabled = false; };\n",
            strstr(extra, "units") ? "" : "units = { timestamp = \"unix_ms\"; };\n");
    fprintf(f, "%s\n", extra);
    fclose(f);
    char err[512];
    cfg = t2m_config_load(conf_path, true, err, sizeof(err));
    unlink(conf_path);
    strcpy(conf_path, "/tmp/t2m_test_state_XXXXXX");
    if (!cfg) fprintf(stderr, "\n  config: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    struct t2m_state *st = t2m_state_new(cfg, &stats, "test", sink, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    if (connected) t2m_state_connected(st, true, AT(T0));
    return st;
}

static inline struct t2m_state *mk(const char *extra)
{
    return mk_conn(extra, true);
}

static inline struct t2m_update upd(const char *dev, const char *track, int64_t ts_ms)
{
    struct t2m_update u;
    memset(&u, 0, sizeof(u));
    u.device_token_len = strlen(dev);
    memcpy(u.device_token, dev, u.device_token_len);
    if (track) {
        u.track_token_len = strlen(track);
        memcpy(u.track_token, track, u.track_token_len);
        u.has |= T2M_HAS_TRACK;
    }
    if (ts_ms) {
        u.ts_ms = ts_ms;
        u.has |= T2M_HAS_TS;
    }
    return u;
}

static inline void at(struct t2m_update *u, double lat, double lon)
{
    u->lat = lat;
    u->lon = lon;
    u->has |= T2M_HAS_LAT | T2M_HAS_LON;
}

static inline void speed(struct t2m_update *u, double mps)
{
    u->speed = mps;
    u->has |= T2M_HAS_SPEED;
}

#define POS "telematics/i/d/position"
#define TRIP "telematics/i/d/trip"
#define EVENT "telematics/i/d/event"

static inline void done(struct t2m_state *st)
{
    t2m_state_free(st);
    clear();
}

#endif
