/* devices.c - the device table: chained hash on (instance, token), power-of-two buckets of
 * 4-byte slot numbers, doubled at load factor 1. Records live in a slab of fixed-size chunks
 * (no allocation per device, addresses stable, freed slots reused); a canonical UUID token is
 * kept as its 16 bytes inside the record, any other token (and the track token likewise) as
 * its own allocation, replaced only when it actually changes (a trip keeps its token). */
#include "devices.h"

#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "units.h"

#define INITIAL_BUCKETS 64
#define CHUNK_BITS 10 /* 1024 records (160 KiB) per slab chunk */
#define CHUNK (1u << CHUNK_BITS)
#define TRACK_MAX 255 /* track_len is a uint8_t */
#define UUID_LEN 36

struct t2m_devices {
    uint32_t *buckets; /* slot + 1, 0 = empty */
    size_t mask;       /* buckets - 1 */
    size_t count;
    size_t max; /* 0 = no limit */
    struct t2m_device **chunks;
    size_t n_chunks, cap_chunks;
    uint32_t used;      /* slots handed out so far (the free list holds the returned ones) */
    uint32_t free_head; /* slot + 1 of a freed record, chained through .next; 0 = none */
};

/* ---- keys ---- */

/* A hex digit's value; *cases collects 1 for a lower-case letter, 2 for an upper-case one. */
static int hexval(char c, unsigned *cases)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') {
        *cases |= 1u;
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        *cases |= 2u;
        return c - 'A' + 10;
    }
    return -1;
}

/* A UUID's 16 bytes and its kind (T2M_KEY_UUID, or T2M_KEY_UUID_UPPER when its letters are
 * upper case); T2M_KEY_TEXT for anything else, mixed case included (it would not come back the
 * same). */
static unsigned uuid_parse(const char *s, size_t len, uint8_t out[16])
{
    if (len != UUID_LEN) return T2M_KEY_TEXT;
    size_t j = 0;
    unsigned cases = 0;
    for (size_t i = 0; i < UUID_LEN;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i++] != '-') return T2M_KEY_TEXT;
            continue;
        }
        int hi = hexval(s[i], &cases), lo = hexval(s[i + 1], &cases);
        if (hi < 0 || lo < 0) return T2M_KEY_TEXT;
        out[j++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return cases == 3u ? T2M_KEY_TEXT : cases == 2u ? T2M_KEY_UUID_UPPER : T2M_KEY_UUID;
}

static bool is_uuid(unsigned kind)
{
    return kind == T2M_KEY_UUID || kind == T2M_KEY_UUID_UPPER;
}

static const char *uuid_format(const uint8_t u[16], unsigned kind, char buf[T2M_DEVICE_TEXT])
{
    const char *hex = kind == T2M_KEY_UUID_UPPER ? "0123456789ABCDEF" : "0123456789abcdef";
    size_t o = 0;
    for (size_t j = 0; j < 16; j++) {
        if (j == 4 || j == 6 || j == 8 || j == 10) buf[o++] = '-';
        buf[o++] = hex[u[j] >> 4];
        buf[o++] = hex[u[j] & 15u];
    }
    buf[o] = '\0';
    return buf;
}

static unsigned token_kind(const struct t2m_device *d)
{
    return d->kind & 3u;
}

static unsigned track_kind(const struct t2m_device *d)
{
    return (d->kind >> 2) & 3u;
}

const char *t2m_device_token(const struct t2m_device *d, char buf[T2M_DEVICE_TEXT], size_t *len)
{
    *len = d->token_len;
    unsigned k = token_kind(d);
    return is_uuid(k) ? uuid_format(d->token.uuid, k, buf) : d->token.text;
}

const char *t2m_device_track(const struct t2m_device *d, char buf[T2M_DEVICE_TEXT], size_t *len)
{
    unsigned k = track_kind(d);
    switch (k) {
    case T2M_KEY_UUID:
    case T2M_KEY_UUID_UPPER:
        *len = UUID_LEN;
        return uuid_format(d->track.uuid, k, buf);
    case T2M_KEY_TEXT:
        *len = d->track_len;
        return d->track.text;
    default:
        *len = 0;
        return NULL;
    }
}

bool t2m_device_track_is(const struct t2m_device *d, const char *s, size_t n)
{
    uint8_t u[16];
    unsigned k = track_kind(d);
    switch (k) {
    case T2M_KEY_UUID:
    case T2M_KEY_UUID_UPPER:
        return uuid_parse(s, n, u) == k && memcmp(u, d->track.uuid, 16) == 0;
    case T2M_KEY_TEXT:
        return d->track_len == n && memcmp(d->track.text, s, n) == 0;
    default:
        return false;
    }
}

/* A key as looked up: binary when it is a canonical UUID, else the text itself. */
struct key {
    unsigned kind;
    uint8_t uuid[16];
    const char *text;
    size_t len;
};

static void key_of(struct key *k, const char *s, size_t len)
{
    k->kind = uuid_parse(s, len, k->uuid);
    k->text = s;
    k->len = len;
}

/* FNV-1a over the instance number (two bytes, low first) then the stored form of the token. */
static uint32_t key_hash(unsigned instance, unsigned kind, const uint8_t *uuid, const char *text,
                         size_t len)
{
    unsigned char inst[2] = {(unsigned char)(instance & 0xffu),
                             (unsigned char)((instance >> 8) & 0xffu)};
    uint32_t h = t2m_fnv1a(T2M_FNV_INIT, inst, 2);
    return is_uuid(kind) ? t2m_fnv1a(h, uuid, 16) : t2m_fnv1a(h, text, len);
}

static uint32_t device_hash(const struct t2m_device *d)
{
    return key_hash(d->instance, token_kind(d), d->token.uuid, d->token.text, d->token_len);
}

static bool key_matches(const struct t2m_device *d, unsigned instance, const struct key *k)
{
    if (d->instance != instance || token_kind(d) != k->kind) return false;
    if (is_uuid(k->kind)) return memcmp(d->token.uuid, k->uuid, 16) == 0;
    return d->token_len == k->len && memcmp(d->token.text, k->text, k->len) == 0;
}

static char *text_copy(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (!c) return NULL;
    if (n) memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

/* ---- the slab ---- */

static struct t2m_device *slot_at(const struct t2m_devices *t, uint32_t ref)
{
    uint32_t s = ref - 1;
    return &t->chunks[s >> CHUNK_BITS][s & (CHUNK - 1)];
}

/* A zeroed record and its slot + 1, or 0 when memory (or the 32-bit slot space) runs out. */
static uint32_t slot_take(struct t2m_devices *t)
{
    uint32_t ref = t->free_head;
    if (ref) {
        struct t2m_device *d = slot_at(t, ref);
        t->free_head = d->next;
        memset(d, 0, sizeof(*d));
        return ref;
    }
    if (t->used >= UINT32_MAX - CHUNK) return 0;
    if ((t->used >> CHUNK_BITS) >= t->n_chunks) {
        if (t->n_chunks == t->cap_chunks) {
            size_t cap = t->cap_chunks ? t->cap_chunks * 2 : 16;
            struct t2m_device **c = realloc(t->chunks, cap * sizeof(*c));
            if (!c) return 0;
            t->chunks = c;
            t->cap_chunks = cap;
        }
        struct t2m_device *chunk = calloc(CHUNK, sizeof(*chunk));
        if (!chunk) return 0;
        t->chunks[t->n_chunks++] = chunk;
    }
    return ++t->used; /* fresh records of a calloc'ed chunk are zero */
}

static void slot_free(struct t2m_devices *t, uint32_t ref)
{
    struct t2m_device *d = slot_at(t, ref);
    if (token_kind(d) == T2M_KEY_TEXT) free(d->token.text);
    if (track_kind(d) == T2M_KEY_TEXT) free(d->track.text);
    memset(d, 0, sizeof(*d));
    d->next = t->free_head;
    t->free_head = ref;
}

/* ---- the table ---- */

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
    for (size_t i = 0; i <= t->mask; i++)
        for (uint32_t ref = t->buckets[i]; ref;) {
            struct t2m_device *d = slot_at(t, ref);
            ref = d->next;
            if (token_kind(d) == T2M_KEY_TEXT) free(d->token.text);
            if (track_kind(d) == T2M_KEY_TEXT) free(d->track.text);
        }
    for (size_t c = 0; c < t->n_chunks; c++)
        free(t->chunks[c]);
    free(t->chunks);
    free(t->buckets);
    free(t);
}

/* Doubles the bucket array at once, rehashing each record's key. On allocation failure the
 * table just stays at its current size: longer chains, still correct. */
static void grow(struct t2m_devices *t)
{
    size_t n = (t->mask + 1) * 2;
    uint32_t *b = calloc(n, sizeof(*b));
    if (!b) return;
    for (size_t i = 0; i <= t->mask; i++) {
        for (uint32_t ref = t->buckets[i]; ref;) {
            struct t2m_device *d = slot_at(t, ref);
            uint32_t next = d->next;
            size_t j = device_hash(d) & (n - 1);
            d->next = b[j];
            b[j] = ref;
            ref = next;
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
    /* The record's fields cannot represent these; the bridge never asks for them (tokens are
     * at most T2M_TOKEN_MAX bytes), so answer "no room" rather than truncate. */
    if (instance > UINT16_MAX || len > UINT16_MAX || (len && !token)) {
        *status = T2M_DEV_FULL;
        return NULL;
    }
    struct key k;
    key_of(&k, len ? token : "", len);
    uint32_t h = key_hash(instance, k.kind, k.uuid, k.text, k.len);
    for (uint32_t ref = t->buckets[h & t->mask]; ref;) {
        struct t2m_device *d = slot_at(t, ref);
        if (key_matches(d, instance, &k)) {
            *status = T2M_DEV_FOUND;
            return d;
        }
        ref = d->next;
    }
    if (!create || (t->max && t->count >= t->max)) {
        *status = T2M_DEV_FULL;
        return NULL;
    }
    char *text = NULL;
    if (k.kind == T2M_KEY_TEXT && !(text = text_copy(k.text, len))) {
        *status = T2M_DEV_NOMEM;
        return NULL;
    }
    uint32_t ref = slot_take(t);
    if (!ref) {
        free(text);
        *status = T2M_DEV_NOMEM;
        return NULL;
    }
    struct t2m_device *d = slot_at(t, ref);
    d->last_ts_ms = INT64_MIN;
    d->seen_ms = T2M_SEEN_NEVER;
    d->zone = -1;
    d->instance = (uint16_t)instance;
    d->token_len = (uint16_t)len;
    d->kind = (uint8_t)k.kind;
    if (text)
        d->token.text = text;
    else
        memcpy(d->token.uuid, k.uuid, 16);
    if (t->count >= t->mask + 1) grow(t);
    size_t i = h & t->mask;
    d->next = t->buckets[i];
    t->buckets[i] = ref;
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
        for (uint32_t ref = t->buckets[i]; ref;) {
            struct t2m_device *d = slot_at(t, ref);
            ref = d->next; /* before fn, which may remove d */
            fn(d, user);
        }
    }
}

/* Stores the track token n bytes long (the caller checked n <= TRACK_MAX). */
static int store_track(struct t2m_device *d, const char *s, size_t n)
{
    /* Compare first: consecutive updates of a trip carry the same track token. */
    if (t2m_device_track_is(d, s, n)) return 0;
    uint8_t u[16];
    unsigned kind = uuid_parse(s, n, u);
    char *copy = NULL;
    if (!is_uuid(kind) && !(copy = text_copy(s, n))) return -1;
    if (track_kind(d) == T2M_KEY_TEXT) free(d->track.text);
    if (copy)
        d->track.text = copy;
    else
        memcpy(d->track.uuid, u, 16);
    d->track_len = (uint8_t)n;
    d->kind = (uint8_t)((d->kind & 3u) | kind << 2);
    return 0;
}

int t2m_device_store(struct t2m_device *d, const struct t2m_update *u, int64_t fix_ms)
{
    bool pair = (u->has & T2M_HAS_LAT) && (u->has & T2M_HAS_LON);
    bool track = (u->has & T2M_HAS_TRACK) && u->track_token_len <= TRACK_MAX &&
                 u->track_token_len <= T2M_TOKEN_MAX;
    if (track) {
        if (store_track(d, u->track_token, u->track_token_len) != 0) return -1;
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
    for (uint32_t *pp = &t->buckets[device_hash(d) & t->mask]; *pp;) {
        struct t2m_device *e = slot_at(t, *pp);
        if (e == d) {
            uint32_t ref = *pp;
            *pp = d->next;
            t->count--;
            slot_free(t, ref);
            return;
        }
        pp = &e->next;
    }
}

void t2m_device_load(const struct t2m_device *d, struct t2m_update *out)
{
    memset(out, 0, sizeof(*out));
    char buf[T2M_DEVICE_TEXT];
    size_t n;
    const char *s = t2m_device_token(d, buf, &n);
    if (n > T2M_TOKEN_MAX) n = T2M_TOKEN_MAX;
    memcpy(out->device_token, s, n);
    out->device_token_len = n;
    s = t2m_device_track(d, buf, &n);
    if (s && (d->has & T2M_HAS_TRACK)) {
        memcpy(out->track_token, s, n);
        out->track_token_len = n;
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

/* glibc's chunk for an n-byte malloc: n + 8 rounded up to 16, at least 32 bytes. */
static size_t malloc_cost(size_t n)
{
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

size_t t2m_devices_memory(const struct t2m_devices *t)
{
    size_t bytes = malloc_cost(sizeof(*t)) + malloc_cost((t->mask + 1) * sizeof(*t->buckets)) +
                   malloc_cost(t->cap_chunks * sizeof(*t->chunks)) +
                   t->n_chunks * malloc_cost(CHUNK * sizeof(struct t2m_device));
    for (size_t i = 0; i <= t->mask; i++) {
        for (uint32_t ref = t->buckets[i]; ref;) {
            const struct t2m_device *d = slot_at(t, ref);
            if (token_kind(d) == T2M_KEY_TEXT) bytes += malloc_cost((size_t)d->token_len + 1);
            if (track_kind(d) == T2M_KEY_TEXT) bytes += malloc_cost((size_t)d->track_len + 1);
            ref = d->next;
        }
    }
    return bytes;
}
