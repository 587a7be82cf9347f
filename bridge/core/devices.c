/* devices.c - the device table: chained hash on (instance, token bytes), power-of-two buckets,
 * doubled at load factor 1. One allocation per device (struct + token); the track token is a
 * second small allocation, replaced only when it actually changes (a trip keeps its token). */
#include "devices.h"

#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "units.h"

#define INITIAL_BUCKETS 64
#define TRACK_MAX 255 /* track_len is a uint8_t */

struct t2m_devices {
    struct t2m_device **buckets;
    size_t mask; /* buckets - 1 */
    size_t count;
    size_t max; /* 0 = no limit */
};

/* FNV-1a over the instance number (two bytes, low first) then the token bytes. */
static uint32_t device_hash(unsigned instance, const char *token, size_t len)
{
    unsigned char inst[2] = {(unsigned char)(instance & 0xffu),
                             (unsigned char)((instance >> 8) & 0xffu)};
    return t2m_fnv1a(t2m_fnv1a(T2M_FNV_INIT, inst, 2), token, len);
}

/* glibc's chunk for an n-byte malloc: n + 8 rounded up to 16, at least 32 bytes. */
static size_t malloc_cost(size_t n)
{
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

struct t2m_devices *t2m_devices_new(size_t max)
{
    struct t2m_devices *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->buckets = calloc(INITIAL_BUCKETS, sizeof(*t->buckets));
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->mask = INITIAL_BUCKETS - 1;
    t->max = max;
    return t;
}

void t2m_devices_free(struct t2m_devices *t)
{
    if (!t) return;
    for (size_t i = 0; i <= t->mask; i++) {
        struct t2m_device *d = t->buckets[i];
        while (d) {
            struct t2m_device *next = d->next;
            free(d->track);
            free(d);
            d = next;
        }
    }
    free(t->buckets);
    free(t);
}

/* Doubles the bucket array at once, reusing the stored hashes. On allocation failure the table
 * just stays at its current size: longer chains, still correct. */
static void grow(struct t2m_devices *t)
{
    size_t n = (t->mask + 1) * 2;
    struct t2m_device **b = calloc(n, sizeof(*b));
    if (!b) return;
    for (size_t i = 0; i <= t->mask; i++) {
        struct t2m_device *d = t->buckets[i];
        while (d) {
            struct t2m_device *next = d->next;
            size_t j = d->hash & (n - 1);
            d->next = b[j];
            b[j] = d;
            d = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->mask = n - 1;
}

struct t2m_device *t2m_devices_get(struct t2m_devices *t, unsigned instance, const char *token,
                                   size_t len, bool create, enum t2m_dev_status *status)
{
    enum t2m_dev_status dummy;
    if (!status) status = &dummy;
    /* The struct's fields cannot represent these; the bridge never asks for them (tokens are
     * at most T2M_TOKEN_MAX bytes), so answer "no room" rather than truncate. */
    if (instance > UINT16_MAX || len > UINT16_MAX || (len && !token)) {
        *status = T2M_DEV_FULL;
        return NULL;
    }
    uint32_t h = device_hash(instance, token, len);
    for (struct t2m_device *d = t->buckets[h & t->mask]; d; d = d->next) {
        if (d->hash == h && d->instance == instance && d->token_len == len &&
            memcmp(d->token, token, len) == 0) {
            *status = T2M_DEV_FOUND;
            return d;
        }
    }
    if (!create || (t->max && t->count >= t->max)) {
        *status = T2M_DEV_FULL;
        return NULL;
    }
    struct t2m_device *d = calloc(1, sizeof(*d) + len + 1);
    if (!d) {
        *status = T2M_DEV_NOMEM;
        return NULL;
    }
    d->last_ts_ms = INT64_MIN;
    d->zone = -1;
    d->hash = h;
    d->instance = (uint16_t)instance;
    d->token_len = (uint16_t)len;
    if (len) memcpy(d->token, token, len);
    d->token[len] = '\0';
    if (t->count >= t->mask + 1) grow(t);
    size_t i = h & t->mask;
    d->next = t->buckets[i];
    t->buckets[i] = d;
    t->count++;
    *status = T2M_DEV_CREATED;
    return d;
}

size_t t2m_devices_count(const struct t2m_devices *t)
{
    return t->count;
}

void t2m_devices_foreach(struct t2m_devices *t, void (*fn)(struct t2m_device *d, void *user),
                         void *user)
{
    for (size_t i = 0; i <= t->mask; i++) {
        struct t2m_device *d = t->buckets[i];
        while (d) {
            struct t2m_device *next = d->next;
            fn(d, user);
            d = next;
        }
    }
}

int t2m_device_store(struct t2m_device *d, const struct t2m_update *u, int64_t fix_ms)
{
    bool pair = (u->has & T2M_HAS_LAT) && (u->has & T2M_HAS_LON);
    bool track = (u->has & T2M_HAS_TRACK) && u->track_token_len <= TRACK_MAX &&
                 u->track_token_len <= T2M_TOKEN_MAX;
    if (track) {
        size_t n = u->track_token_len;
        /* Compare first: consecutive updates of a trip carry the same track token. */
        if (!d->track || d->track_len != n || memcmp(d->track, u->track_token, n) != 0) {
            char *copy = malloc(n + 1);
            if (!copy) return -1;
            memcpy(copy, u->track_token, n);
            copy[n] = '\0';
            free(d->track);
            d->track = copy;
            d->track_len = (uint8_t)n;
        }
        d->has |= T2M_HAS_TRACK;
    }
    if (pair) {
        d->lat = u->lat;
        d->lon = u->lon;
        d->has |= T2M_HAS_LAT | T2M_HAS_LON;
    }
    if (u->has & T2M_HAS_SPEED) {
        d->speed = u->speed;
        d->has |= T2M_HAS_SPEED;
    }
    if (u->has & T2M_HAS_ACCURACY) {
        d->accuracy = u->accuracy;
        d->has |= T2M_HAS_ACCURACY;
    }
    if (u->has & T2M_HAS_HEADING) {
        d->heading = u->heading;
        d->has |= T2M_HAS_HEADING;
    }
    d->ts_ms = (u->has & T2M_HAS_TS) ? u->ts_ms : fix_ms;
    d->has |= T2M_HAS_TS;
    d->flags |= T2M_DEVF_HAS_STATE;
    return 0;
}

void t2m_devices_remove(struct t2m_devices *t, struct t2m_device *d)
{
    for (struct t2m_device **pp = &t->buckets[d->hash & t->mask]; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            t->count--;
            free(d->track);
            free(d);
            return;
        }
    }
}

void t2m_device_load(const struct t2m_device *d, struct t2m_update *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = d->token_len <= T2M_TOKEN_MAX ? d->token_len : T2M_TOKEN_MAX;
    memcpy(out->device_token, d->token, n);
    out->device_token_len = n;
    if (d->track && (d->has & T2M_HAS_TRACK)) {
        memcpy(out->track_token, d->track, d->track_len);
        out->track_token_len = d->track_len;
    }
    out->has = d->has;
    out->lat = d->lat;
    out->lon = d->lon;
    out->speed = d->speed;
    out->accuracy = d->accuracy;
    out->heading = d->heading;
    out->ts_ms = d->ts_ms;
    if (d->has & T2M_HAS_LAT)
        t2m_units_format_shortest(out->lat_text, sizeof(out->lat_text), d->lat);
    if (d->has & T2M_HAS_LON)
        t2m_units_format_shortest(out->lon_text, sizeof(out->lon_text), d->lon);
}

size_t t2m_devices_memory(const struct t2m_devices *t)
{
    size_t bytes = malloc_cost(sizeof(*t)) + malloc_cost((t->mask + 1) * sizeof(*t->buckets));
    for (size_t i = 0; i <= t->mask; i++) {
        for (const struct t2m_device *d = t->buckets[i]; d; d = d->next) {
            bytes += malloc_cost(sizeof(*d) + d->token_len + 1);
            if (d->track) bytes += malloc_cost((size_t)d->track_len + 1);
        }
    }
    return bytes;
}
