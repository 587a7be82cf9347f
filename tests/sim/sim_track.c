/* sim_track.c - see sim_track.h. */
#include "sim_track.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EARTH_M_PER_DEG 111320.0
#define MAX_SPEED 35.0
#define GEOFENCE_M 12000.0

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
    r->s = seed;
}

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double sim_rng_unit(struct sim_rng *r)
{
    return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double sim_rng_range(struct sim_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * sim_rng_unit(r);
}

void sim_uuid(struct sim_rng *r, bool upper, char out[37])
{
    const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    uint64_t a = sim_rng_next(r), b = sim_rng_next(r);
    int j = 0;
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20) out[j++] = '-';
        uint64_t w = i < 16 ? a : b;
        unsigned nib = (w >> ((i % 16) * 4)) & 0xf;
        /* Shaped like a random (version 4) UUID, as the service's tokens are. */
        if (i == 12)
            nib = 4;
        else if (i == 16)
            nib = 8 | (nib & 3);
        out[j++] = hex[nib];
    }
    out[j] = '\0';
}

static const struct {
    double lat, lon;
} cities[] = {
    {40.7128, -74.0060}, /* New York */
    {52.5200, 13.4050},  /* Berlin */
    {51.5074, -0.1278},  /* London */
    {48.1351, 11.5820},  /* Munich */
};

static double norm_deg(double h)
{
    h = fmod(h, 360.0);
    if (h < 0) h += 360.0;
    return h;
}

/* Signed smallest angle from a to b, in (-180, 180]. */
static double angle_diff(double a, double b)
{
    double d = norm_deg(b - a);
    return d > 180.0 ? d - 360.0 : d;
}

static void new_trip(struct sim_device *d)
{
    sim_uuid(&d->rng, true, d->track_token);
    d->trip_left = d->trip_s > 0 ? sim_rng_range(&d->rng, d->trip_s, 2 * d->trip_s)
                                 : sim_rng_range(&d->rng, 600, 2400);
    d->trips++;
}

bool sim_device_parked(const struct sim_device *d)
{
    return d->park_left > 0;
}

void sim_device_init(struct sim_device *d, uint64_t seed, unsigned index)
{
    memset(d, 0, sizeof(*d));
    /* Each device has its own stream, so adding devices never changes the existing ones. */
    sim_rng_seed(&d->rng, seed * 0x100000001b3ULL + index + 1);
    sim_rng_next(&d->rng);
    sim_uuid(&d->rng, false, d->token);
    unsigned c = index % (sizeof(cities) / sizeof(cities[0]));
    d->center_lat = cities[c].lat;
    d->center_lon = cities[c].lon;
    double r = sim_rng_range(&d->rng, 0, 8000), a = sim_rng_range(&d->rng, 0, 2 * M_PI);
    d->lat = d->center_lat + r * cos(a) / EARTH_M_PER_DEG;
    d->lon = d->center_lon + r * sin(a) / (EARTH_M_PER_DEG * cos(d->center_lat * M_PI / 180));
    /* Streets on a rough grid: start on one of the four main directions. */
    d->heading =
        norm_deg(90.0 * (double)(sim_rng_next(&d->rng) % 4) + sim_rng_range(&d->rng, -8, 8));
    d->target_heading = d->heading;
    d->speed = sim_rng_range(&d->rng, 0, 14);
    d->target_speed = sim_rng_range(&d->rng, 8, 20);
    d->accuracy = sim_rng_range(&d->rng, 3, 10);
    d->seg_left = sim_rng_range(&d->rng, 80, 600);
    new_trip(d);
}

/* What the driver does at an intersection: mostly straight on, sometimes turn, sometimes a red
 * light; and a new speed for the next street. */
static void intersection(struct sim_device *d)
{
    double p = sim_rng_unit(&d->rng);
    if (p < 0.50)
        d->target_heading = norm_deg(d->target_heading + sim_rng_range(&d->rng, -10, 10));
    else if (p < 0.70)
        d->target_heading = norm_deg(d->target_heading - 90);
    else if (p < 0.90)
        d->target_heading = norm_deg(d->target_heading + 90);
    else
        d->stop_left = sim_rng_range(&d->rng, 5, 40);
    double q = sim_rng_unit(&d->rng);
    d->target_speed = q < 0.6   ? sim_rng_range(&d->rng, 8, 15)
                      : q < 0.9 ? sim_rng_range(&d->rng, 15, 25)
                                : sim_rng_range(&d->rng, 25, MAX_SPEED);
    d->seg_left = sim_rng_range(&d->rng, 80, 600);

    double dy = (d->lat - d->center_lat) * EARTH_M_PER_DEG;
    double dx = (d->lon - d->center_lon) * EARTH_M_PER_DEG * cos(d->center_lat * M_PI / 180);
    if (sqrt(dx * dx + dy * dy) > GEOFENCE_M) {
        double home = norm_deg(atan2(-dx, -dy) * 180 / M_PI);
        d->target_heading = norm_deg(home + sim_rng_range(&d->rng, -20, 20));
    }
}

static void step(struct sim_device *d, double dt)
{
    double want = d->stop_left > 0 ? 0 : d->target_speed;
    /* Brake for turns sharper than 30 degrees, as a driver would. */
    double turn = angle_diff(d->heading, d->target_heading);
    if (fabs(turn) > 30 && want > 7) want = 7;
    if (d->speed < want)
        d->speed = fmin(want, d->speed + 2.0 * dt);
    else
        d->speed = fmax(want, d->speed - 3.5 * dt);
    if (d->speed > MAX_SPEED) d->speed = MAX_SPEED;
    if (d->stop_left > 0 && d->speed < 0.05) {
        d->speed = 0;
        d->stop_left -= dt;
    }

    double max_turn = fmin(25.0, 6.0 * d->speed) * dt;
    if (fabs(turn) <= max_turn)
        d->heading = d->target_heading;
    else
        d->heading = norm_deg(d->heading + (turn > 0 ? max_turn : -max_turn));

    double dist = d->speed * dt, h = d->heading * M_PI / 180;
    d->lat += dist * cos(h) / EARTH_M_PER_DEG;
    d->lon += dist * sin(h) / (EARTH_M_PER_DEG * cos(d->lat * M_PI / 180));
    d->seg_left -= dist;
    if (d->seg_left <= 0 && d->stop_left <= 0) intersection(d);

    d->accuracy += sim_rng_range(&d->rng, -0.6, 0.6) * dt;
    d->accuracy = fmin(20, fmax(3, d->accuracy));

    d->trip_left -= dt;
    if (d->trip_left <= 0) {
        if (d->park_s > 0) { /* parked: engine off until the next trip */
            d->park_left = sim_rng_range(&d->rng, d->park_s, 2 * d->park_s);
            d->speed = 0;
            d->trip_left = 1e300;
            return;
        }
        new_trip(d);
        d->stop_left = sim_rng_range(&d->rng, 20, 60);
    }
}

void sim_device_advance(struct sim_device *d, double dt)
{
    /* More than an hour of catch-up adds nothing but CPU time. */
    if (dt > 3600) dt = 3600;
    while (dt > 0) {
        double s = dt > 1.0 ? 1.0 : dt;
        if (d->park_left > 0) { /* parked: only the clock moves */
            d->park_left -= s;
            if (d->park_left <= 0) {
                d->park_left = 0;
                new_trip(d);
            }
            dt -= s;
            continue;
        }
        step(d, s);
        dt -= s;
    }
}

void sim_device_advance_to(struct sim_device *d, int64_t now_us)
{
    if (d->last_us && now_us > d->last_us)
        sim_device_advance(d, (double)(now_us - d->last_us) / 1e6);
    if (!d->last_us || now_us > d->last_us) d->last_us = now_us;
}

int sim_fmt_num(char *out, double v, int decimals)
{
    if (!isfinite(v)) v = 0;
    int n = snprintf(out, 32, "%.*f", decimals, v);
    if (n <= 0 || n >= 32) return snprintf(out, 32, "0.0");
    char *dot = strchr(out, '.');
    if (dot) {
        while (n > (int)(dot - out) + 2 && out[n - 1] == '0')
            out[--n] = '\0';
    } else {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    if (strcmp(out, "-0.0") == 0) return snprintf(out, 32, "0.0");
    return n;
}

int sim_json_escape(char *out, size_t cap, const char *s, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        size_t tl;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tl = 2;
        } else if (c < 0x20) {
            tl = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
        } else {
            tmp[0] = (char)c;
            tl = 1;
        }
        if (j + tl + 1 > cap) return -1;
        memcpy(out + j, tmp, tl);
        j += tl;
    }
    if (j + 1 > cap) return -1;
    out[j] = '\0';
    return (int)j;
}

/* The formatted fields of one update, shared by the full and the partial renderings. */
struct sim_fields {
    char tok[2048], lat[32], lon[32], spd[32], acc[32], hdg[32], ts[32];
};

static int sim_fields(struct sim_fields *f, const struct sim_device *d, const char *token,
                      long long timestamp)
{
    if (!token) token = d->token;
    if (sim_json_escape(f->tok, sizeof(f->tok), token, strlen(token)) < 0) return -1;
    sim_fmt_num(f->lat, d->lat, 6);
    sim_fmt_num(f->lon, d->lon, 6);
    sim_fmt_num(f->spd, d->speed, 2);
    sim_fmt_num(f->acc, d->accuracy, 1);
    double h = norm_deg(d->heading);
    /* 359.96 would print as 360.0: keep the printed value inside [0, 360). */
    if (h >= 359.95) h = 0;
    sim_fmt_num(f->hdg, h, 1);
    int n = snprintf(f->ts, sizeof(f->ts), "%lld", timestamp);
    return n < 0 || (size_t)n >= sizeof(f->ts) ? -1 : 0;
}

/* The device_update message around `pos` (the inside of the position object). */
static int sim_wrap(char *out, size_t cap, const struct sim_fields *f, const char *track,
                    const char *pos)
{
    int n = snprintf(out, cap,
                     "{\"type\":\"device_update\",\"device_token\":\"%s\",\"track_token\":\"%s\","
                     "\"position\":{%s}}",
                     f->tok, track, pos);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

int sim_render_update(char *out, size_t cap, const struct sim_device *d, const char *token,
                      long long timestamp)
{
    struct sim_fields f;
    char pos[512];
    if (sim_fields(&f, d, token, timestamp) != 0) return -1;
    int n = snprintf(pos, sizeof(pos),
                     "\"Latitude\":%s,\"Longitude\":%s,\"Speed\":%s,"
                     "\"Accuracy\":%s,\"Timestamp\":%s,\"Heading\":%s",
                     f.lat, f.lon, f.spd, f.acc, f.ts, f.hdg);
    if (n < 0 || (size_t)n >= sizeof(pos)) return -1;
    return sim_wrap(out, cap, &f, d->track_token, pos);
}

int sim_render_partial(char *out, size_t cap, const struct sim_device *d, const char *token,
                       long long timestamp, unsigned kind)
{
    struct sim_fields f;
    char pos[512];
    int n;
    if (sim_fields(&f, d, token, timestamp) != 0) return -1;
    switch (kind % SIM_PARTIAL_KINDS) {
    case 0:
        n = snprintf(pos, sizeof(pos),
                     "\"Latitude\":%s,\"Longitude\":%s,\"Accuracy\":%s,\"Timestamp\":%s", f.lat,
                     f.lon, f.acc, f.ts);
        break;
    case 1:
        n = snprintf(pos, sizeof(pos),
                     "\"Latitude\":%s,\"Longitude\":%s,\"Speed\":%s,\"Timestamp\":%s,"
                     "\"Heading\":%s",
                     f.lat, f.lon, f.spd, f.ts, f.hdg);
        break;
    case 2:
        n = snprintf(pos, sizeof(pos), "\"Speed\":%s,\"Timestamp\":%s", f.spd, f.ts);
        break;
    default:
        n = snprintf(pos, sizeof(pos),
                     "\"Latitude\":%s,\"Longitude\":%s,\"Speed\":%s,\"Accuracy\":%s,"
                     "\"Heading\":%s",
                     f.lat, f.lon, f.spd, f.acc, f.hdg);
        break;
    }
    if (n < 0 || (size_t)n >= sizeof(pos)) return -1;
    return sim_wrap(out, cap, &f, d->track_token, pos);
}

static const char *const junk_names[SIM_JUNK_KINDS] = {
    "invalid-json", "binary",    "truncated-json", "json-array",   "deep-nesting",
    "invalid-utf8", "bad-types", "unknown-type",   "out-of-range", "empty",
};

const char *sim_junk_name(unsigned kind)
{
    return junk_names[kind % SIM_JUNK_KINDS];
}

#define JUNK_DEPTH 5000

unsigned char *sim_render_junk(unsigned kind, size_t pre, const char *sample, size_t *len,
                               bool *binary, struct sim_rng *r)
{
    static const char *const fixed[SIM_JUNK_KINDS] = {
        [0] = "{\"type\":\"device_update\",,\"device_token\":}",
        [3] = "[{\"type\":\"device_update\"},1,2,3]",
        [5] = "{\"type\":\"device_update\",\"device_token\":\"\xff\xfe\xc3\x28\","
              "\"track_token\":\"\xed\xa0\x80\",\"position\":{}}",
        [6] = "{\"type\":\"device_update\",\"device_token\":12345,\"track_token\":null,"
              "\"position\":{\"Latitude\":\"north\",\"Longitude\":[],\"Speed\":\"fast\","
              "\"Accuracy\":{},\"Timestamp\":\"not a time\",\"Heading\":true}}",
        [7] = "{\"type\":\"server_notice\",\"message\":\"maintenance tonight\","
              "\"extra\":{\"nested\":[1,2]}}",
        [8] = "{\"type\":\"device_update\",\"device_token\":\"out-of-range\","
              "\"track_token\":\"X\",\"position\":{\"Latitude\":123.4,\"Longitude\":999,"
              "\"Speed\":-5,\"Accuracy\":-1,\"Timestamp\":99999999999999999999999,"
              "\"Heading\":7200,\"Extra\":1e999}}",
        [9] = "",
    };
    kind %= SIM_JUNK_KINDS;
    *binary = false;
    size_t n;
    unsigned char *b;
    switch (kind) {
    case 1:
        n = 64;
        b = malloc(pre + n);
        if (!b) return NULL;
        for (size_t i = 0; i < n; i++)
            b[pre + i] = (unsigned char)sim_rng_next(r);
        *binary = true;
        break;
    case 2:
        n = strlen(sample) / 2;
        b = malloc(pre + n + 1);
        if (!b) return NULL;
        memcpy(b + pre, sample, n);
        break;
    case 4:
        n = 2 * JUNK_DEPTH;
        b = malloc(pre + n);
        if (!b) return NULL;
        memset(b + pre, '[', JUNK_DEPTH);
        memset(b + pre + JUNK_DEPTH, ']', JUNK_DEPTH);
        break;
    default:
        n = strlen(fixed[kind]);
        b = malloc(pre + n + 1);
        if (!b) return NULL;
        memcpy(b + pre, fixed[kind], n);
        break;
    }
    *len = n;
    return b;
}

const char *sim_bad_token(unsigned i)
{
    static char long_token[301];
    static const char *const list[SIM_BAD_TOKENS] = {
        "a/b",
        "+",
        "#",
        "$SYS",
        "../x",
        "with space",
        "  ", /* "ünïcødé-日本" */
        "\xc3\xbc"
        "n"
        "\xc3\xaf"
        "c"
        "\xc3\xb8"
        "d"
        "\xc3\xa9"
        "-\xe6\x97\xa5\xe6\x9c\xac",
        NULL,
        "",
        "a+b/#/$x",
    };
    i %= SIM_BAD_TOKENS;
    if (list[i]) return list[i];
    if (!long_token[0]) memset(long_token, 'x', 300);
    return long_token;
}
