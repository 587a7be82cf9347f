/* test_devices.c - the device table. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "t2m_test.h"

static struct t2m_device *get(struct t2m_devices *t, unsigned inst, const char *tok, bool create,
                              enum t2m_dev_status *st)
{
    return t2m_devices_get(t, inst, tok, strlen(tok), create, st);
}

static void test_create_find(void)
{
    struct t2m_devices *t = t2m_devices_new(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    enum t2m_dev_status st;
    CU_ASSERT_PTR_NULL(get(t, 0, "e4855fba-1", false, &st));
    CU_ASSERT_EQUAL(st, T2M_DEV_FULL);
    CU_ASSERT_EQUAL(t2m_devices_count(t), 0);
    struct t2m_device *d = get(t, 0, "e4855fba-1", true, &st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(st, T2M_DEV_CREATED);
    CU_ASSERT_EQUAL(d->last_ts_ms, INT64_MIN);
    CU_ASSERT_EQUAL(d->flags, 0);
    CU_ASSERT_EQUAL(d->has, 0);
    char buf[T2M_DEVICE_TEXT];
    size_t n = 99;
    CU_ASSERT_PTR_NULL(t2m_device_track(d, buf, &n));
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(d->token_len, 10);
    T2M_ASSERT_STR(t2m_device_token(d, buf, &n), "e4855fba-1");
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_PTR_EQUAL(get(t, 0, "e4855fba-1", true, &st), d);
    CU_ASSERT_EQUAL(st, T2M_DEV_FOUND);
    CU_ASSERT_PTR_EQUAL(get(t, 0, "e4855fba-1", false, NULL), d);
    CU_ASSERT_PTR_NULL(get(t, 0, "e4855fba-2", false, NULL));
    CU_ASSERT_PTR_NULL(get(t, 0, "e4855fba-", false, NULL)); /* a prefix is another token */
    CU_ASSERT_EQUAL(t2m_devices_count(t), 1);
    /* empty token: a key like any other (the bridge rejects it before asking) */
    struct t2m_device *e = t2m_devices_get(t, 0, NULL, 0, true, &st);
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_EQUAL(st, T2M_DEV_CREATED);
    /* beyond the struct's fields */
    CU_ASSERT_PTR_NULL(get(t, 70000, "x", true, &st));
    CU_ASSERT_EQUAL(st, T2M_DEV_FULL);
    t2m_devices_free(t);
    t2m_devices_free(NULL);
}

static void test_instances_distinct(void)
{
    struct t2m_devices *t = t2m_devices_new(0);
    enum t2m_dev_status st;
    struct t2m_device *a = get(t, 0, "tok", true, &st);
    struct t2m_device *b = get(t, 1, "tok", true, &st);
    CU_ASSERT_EQUAL(st, T2M_DEV_CREATED);
    struct t2m_device *c = get(t, 256, "tok", true, &st);
    CU_ASSERT_EQUAL(st, T2M_DEV_CREATED);
    CU_ASSERT(a != b && b != c && a != c);
    CU_ASSERT_EQUAL(a->instance, 0);
    CU_ASSERT_EQUAL(b->instance, 1);
    CU_ASSERT_EQUAL(c->instance, 256);
    CU_ASSERT_PTR_EQUAL(get(t, 1, "tok", false, NULL), b);
    CU_ASSERT_EQUAL(t2m_devices_count(t), 3);
    t2m_devices_free(t);
}

static void test_nul_bytes(void)
{
    struct t2m_devices *t = t2m_devices_new(0);
    enum t2m_dev_status st;
    struct t2m_device *a = t2m_devices_get(t, 0, "a\0b", 3, true, &st);
    struct t2m_device *b = t2m_devices_get(t, 0, "a\0c", 3, true, &st);
    struct t2m_device *c = t2m_devices_get(t, 0, "a", 1, true, &st);
    struct t2m_device *z = t2m_devices_get(t, 0, "\0\0", 2, true, &st);
    CU_ASSERT(a && b && c && z);
    CU_ASSERT(a != b && a != c && b != c && z != c);
    CU_ASSERT_EQUAL(t2m_devices_count(t), 4);
    CU_ASSERT_EQUAL(a->token_len, 3);
    char buf[T2M_DEVICE_TEXT];
    size_t n;
    CU_ASSERT(memcmp(t2m_device_token(a, buf, &n), "a\0b", 4) == 0); /* NUL-terminated after */
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_PTR_EQUAL(t2m_devices_get(t, 0, "a\0b", 3, false, &st), a);
    CU_ASSERT_PTR_EQUAL(t2m_devices_get(t, 0, "\0\0", 2, false, &st), z);
    CU_ASSERT_PTR_NULL(t2m_devices_get(t, 0, "\0", 1, false, &st));
    t2m_devices_free(t);
}

static void test_max_devices(void)
{
    struct t2m_devices *t = t2m_devices_new(3);
    enum t2m_dev_status st;
    CU_ASSERT_PTR_NOT_NULL(get(t, 0, "a", true, &st));
    CU_ASSERT_PTR_NOT_NULL(get(t, 0, "b", true, &st));
    CU_ASSERT_PTR_NOT_NULL(get(t, 1, "a", true, &st));
    CU_ASSERT_EQUAL(st, T2M_DEV_CREATED);
    CU_ASSERT_PTR_NULL(get(t, 0, "c", true, &st));
    CU_ASSERT_EQUAL(st, T2M_DEV_FULL);
    CU_ASSERT_EQUAL(t2m_devices_count(t), 3);
    CU_ASSERT_PTR_NOT_NULL(get(t, 0, "b", true, &st)); /* existing ones still found */
    CU_ASSERT_EQUAL(st, T2M_DEV_FOUND);
    t2m_devices_free(t);
}

static void token_of(char *buf, size_t n, unsigned i)
{
    snprintf(buf, n, "%08x-4e2a-4b1c-9d3e-%012u", i * 2654435761u, i);
}

static void test_million(void)
{
    enum { N = 1000000 };
    struct t2m_devices *t = t2m_devices_new(N);
    char tok[64];
    enum t2m_dev_status st;
    struct t2m_device *first = NULL;
    unsigned created = 0, found = 0;
    for (unsigned i = 0; i < N; i++) {
        token_of(tok, sizeof(tok), i);
        struct t2m_device *d = get(t, i % 4, tok, true, &st);
        if (d && st == T2M_DEV_CREATED) created++;
        if (i == 0) first = d;
    }
    CU_ASSERT_EQUAL(created, N);
    CU_ASSERT_EQUAL(t2m_devices_count(t), N);
    for (unsigned i = 0; i < N; i++) {
        token_of(tok, sizeof(tok), i);
        struct t2m_device *d = get(t, i % 4, tok, false, &st);
        char buf[T2M_DEVICE_TEXT];
        size_t n;
        if (d && st == T2M_DEV_FOUND && strcmp(t2m_device_token(d, buf, &n), tok) == 0 &&
            d->instance == i % 4)
            found++;
    }
    CU_ASSERT_EQUAL(found, N);
    token_of(tok, sizeof(tok), 0);
    CU_ASSERT_PTR_EQUAL(get(t, 0, tok, false, NULL), first); /* growth never moves a device */
    CU_ASSERT_PTR_NULL(get(t, 1, tok, false, NULL));
    CU_ASSERT_PTR_NULL(get(t, 0, "new", true, &st));
    CU_ASSERT_EQUAL(st, T2M_DEV_FULL);
    size_t mem = t2m_devices_memory(t);
    printf("\n    1,000,000 devices (36-byte tokens): %zu bytes, %.1f bytes/device\n", mem,
           (double)mem / N);
    CU_ASSERT(mem > (size_t)N * sizeof(struct t2m_device));
    t2m_devices_free(t);
}

static struct t2m_update sample(void)
{
    /* SPEC section 1's device_update */
    struct t2m_update u;
    memset(&u, 0, sizeof(u));
    strcpy(u.device_token, "e4855fba-0000-4000-8000-000000000001");
    u.device_token_len = strlen(u.device_token);
    strcpy(u.track_token, "9F6A1B2C");
    u.track_token_len = strlen(u.track_token);
    u.has = T2M_HAS_LAT | T2M_HAS_LON | T2M_HAS_SPEED | T2M_HAS_ACCURACY | T2M_HAS_HEADING |
            T2M_HAS_TS | T2M_HAS_TRACK;
    u.lat = 40.7128;
    u.lon = -74.006;
    u.speed = 7.85;
    u.accuracy = 5.0;
    u.heading = 180.0;
    u.ts_ms = 1640995200000;
    strcpy(u.lat_text, "40.7128");
    strcpy(u.lon_text, "-74.006");
    return u;
}

static void test_store_load(void)
{
    struct t2m_devices *t = t2m_devices_new(10);
    struct t2m_update u = sample();
    struct t2m_device *d = t2m_devices_get(t, 2, u.device_token, u.device_token_len, true, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(t2m_device_store(d, &u, 0), 0);
    CU_ASSERT(d->flags & T2M_DEVF_HAS_STATE);
    CU_ASSERT_EQUAL(d->last_ts_ms, INT64_MIN); /* storing is not publishing */
    struct t2m_update out;
    memset(&out, 0x5a, sizeof(out));
    t2m_device_load(d, &out);
    CU_ASSERT_EQUAL(out.device_token_len, u.device_token_len);
    T2M_ASSERT_STR(out.device_token, u.device_token);
    CU_ASSERT_EQUAL(out.track_token_len, 8);
    T2M_ASSERT_STR(out.track_token, "9F6A1B2C");
    CU_ASSERT_EQUAL(out.has, u.has);
    CU_ASSERT_EQUAL(out.rejected, 0);
    CU_ASSERT(out.lat == 40.7128 && out.lon == -74.006 && out.speed == 7.85);
    CU_ASSERT(out.accuracy == 5.0 && out.heading == 180.0);
    CU_ASSERT_EQUAL(out.ts_ms, 1640995200000);
    T2M_ASSERT_STR(out.lat_text, "40.7128");
    T2M_ASSERT_STR(out.lon_text, "-74.006");

    /* same track token again: kept, not reallocated */
    CU_ASSERT_EQUAL(d->kind >> 2, T2M_KEY_TEXT); /* "9F6A1B2C" is no UUID */
    char *track = d->track.text;
    u.lat = 0.1 + 0.2; /* 0.30000000000000004: the text must round-trip */
    CU_ASSERT_EQUAL(t2m_device_store(d, &u, 0), 0);
    CU_ASSERT_PTR_EQUAL(d->track.text, track);
    t2m_device_load(d, &out);
    CU_ASSERT(out.lat == 0.1 + 0.2);
    CU_ASSERT(strtod(out.lat_text, NULL) == 0.1 + 0.2);

    /* a new trip */
    strcpy(u.track_token, "A0");
    u.track_token_len = 2;
    CU_ASSERT_EQUAL(t2m_device_store(d, &u, 0), 0);
    t2m_device_load(d, &out);
    T2M_ASSERT_STR(out.track_token, "A0");
    CU_ASSERT_EQUAL(out.track_token_len, 2);

    /* SPEC 2.1: a partial update merges: what it lacks stays as it was */
    struct t2m_update v;
    memset(&v, 0, sizeof(v));
    v.has = T2M_HAS_TS | T2M_HAS_SPEED;
    v.ts_ms = 1640995300000;
    v.speed = 3.5;
    CU_ASSERT_EQUAL(t2m_device_store(d, &v, 0), 0);
    t2m_device_load(d, &out);
    CU_ASSERT_EQUAL(out.has, u.has);
    CU_ASSERT(out.speed == 3.5 && out.accuracy == 5.0 && out.heading == 180.0);
    CU_ASSERT(out.lat == 0.1 + 0.2 && out.lon == -74.006);
    CU_ASSERT_EQUAL(out.ts_ms, 1640995300000);
    T2M_ASSERT_STR(out.track_token, "A0");            /* the track token too */
    T2M_ASSERT_STR(out.device_token, u.device_token); /* the device's own token */

    /* a lone latitude is ignored: coordinates only as a pair */
    memset(&v, 0, sizeof(v));
    v.has = T2M_HAS_LAT;
    v.lat = 10;
    CU_ASSERT_EQUAL(t2m_device_store(d, &v, 1640995400000), 0);
    t2m_device_load(d, &out);
    CU_ASSERT(out.lat == 0.1 + 0.2);
    CU_ASSERT_EQUAL(out.ts_ms, 1640995400000); /* no Timestamp: the given fix time */

    /* a track token over 255 bytes is not stored: the previous one stays */
    u = sample();
    memset(u.track_token, 'T', 256);
    u.track_token[256] = '\0';
    u.track_token_len = 256;
    CU_ASSERT_EQUAL(t2m_device_store(d, &u, 0), 0);
    t2m_device_load(d, &out);
    T2M_ASSERT_STR(out.track_token, "A0");
    CU_ASSERT(out.has & T2M_HAS_LAT);
    /* extremes round-trip exactly */
    u = sample();
    u.lat = -89.99999999999999;
    u.lon = 1e-7;
    CU_ASSERT_EQUAL(t2m_device_store(d, &u, 0), 0);
    t2m_device_load(d, &out);
    CU_ASSERT(strtod(out.lat_text, NULL) == u.lat);
    CU_ASSERT(strtod(out.lon_text, NULL) == u.lon);
    t2m_devices_free(t); /* frees the stored track token too */
}

static void count_visit(struct t2m_device *d, void *user)
{
    (*(unsigned *)user)++;
    d->trip_updates++;
}

static void test_foreach(void)
{
    enum { N = 5000 };
    struct t2m_devices *t = t2m_devices_new(0);
    char tok[64];
    for (unsigned i = 0; i < N; i++) {
        token_of(tok, sizeof(tok), i);
        CU_ASSERT_PTR_NOT_NULL(get(t, 0, tok, true, NULL));
    }
    unsigned visits = 0;
    t2m_devices_foreach(t, count_visit, &visits);
    CU_ASSERT_EQUAL(visits, N);
    unsigned once = 0;
    for (unsigned i = 0; i < N; i++) {
        token_of(tok, sizeof(tok), i);
        struct t2m_device *d = get(t, 0, tok, false, NULL);
        once += d && d->trip_updates == 1;
    }
    CU_ASSERT_EQUAL(once, N);
    struct t2m_devices *empty = t2m_devices_new(0);
    visits = 0;
    t2m_devices_foreach(empty, count_visit, &visits);
    CU_ASSERT_EQUAL(visits, 0);
    CU_ASSERT(t2m_devices_memory(empty) < t2m_devices_memory(t));
    t2m_devices_free(empty);
    t2m_devices_free(t);
}

/* UUIDs (8-4-4-4-12, letters of one case) are kept as 16 bytes and come back as the same text;
 * anything else (mixed case, a wrong dash) is kept as it is; each is another key. */
static void test_uuid_keys(void)
{
    struct t2m_devices *t = t2m_devices_new(0);
    static const char lower[] = "0aace1bd-0376-4ff7-9c9b-4d5b0a6d8d01";
    static const char upper[] = "0AACE1BD-0376-4FF7-9C9B-4D5B0A6D8D01";
    static const char dash[] = "0aace1bd-03764-ff7-9c9b-4d5b0a6d8d01";
    static const char mixed[] = "0aace1bd-0376-4FF7-9c9b-4d5b0a6d8d01";
    static const char digits[] = "01234567-0376-4117-9199-415101618101";
    struct t2m_device *a = get(t, 0, lower, true, NULL);
    struct t2m_device *b = get(t, 0, upper, true, NULL);
    struct t2m_device *c = get(t, 0, dash, true, NULL);
    struct t2m_device *m = get(t, 0, mixed, true, NULL);
    struct t2m_device *g = get(t, 0, digits, true, NULL);
    CU_ASSERT_FATAL(a && b && c && m && g && a != b && b != c && a != c && m != a && m != b);
    CU_ASSERT_EQUAL(a->kind & 3u, T2M_KEY_UUID);
    CU_ASSERT_EQUAL(b->kind & 3u, T2M_KEY_UUID_UPPER);
    CU_ASSERT_EQUAL(c->kind & 3u, T2M_KEY_TEXT);
    CU_ASSERT_EQUAL(m->kind & 3u, T2M_KEY_TEXT);
    CU_ASSERT_EQUAL(g->kind & 3u, T2M_KEY_UUID);
    CU_ASSERT_EQUAL(t2m_devices_count(t), 5);
    char buf[T2M_DEVICE_TEXT];
    size_t n;
    T2M_ASSERT_STR(t2m_device_token(a, buf, &n), lower);
    CU_ASSERT_EQUAL(n, 36);
    T2M_ASSERT_STR(t2m_device_token(b, buf, &n), upper);
    T2M_ASSERT_STR(t2m_device_token(m, buf, &n), mixed);
    T2M_ASSERT_STR(t2m_device_token(g, buf, &n), digits);
    CU_ASSERT_PTR_EQUAL(get(t, 0, lower, false, NULL), a);
    CU_ASSERT_PTR_EQUAL(get(t, 0, upper, false, NULL), b);
    CU_ASSERT_PTR_EQUAL(get(t, 0, mixed, false, NULL), m);
    CU_ASSERT_PTR_NULL(get(t, 1, lower, false, NULL));

    /* the track token likewise; the same trip again is recognised in either form */
    struct t2m_update u;
    memset(&u, 0, sizeof(u));
    memcpy(u.track_token, lower, 36);
    u.track_token_len = 36;
    u.has = T2M_HAS_TRACK;
    CU_ASSERT_EQUAL(t2m_device_store(a, &u, 1000), 0);
    CU_ASSERT_EQUAL(a->kind >> 2, T2M_KEY_UUID);
    T2M_ASSERT_STR(t2m_device_track(a, buf, &n), lower);
    CU_ASSERT_EQUAL(n, 36);
    CU_ASSERT(t2m_device_track_is(a, lower, 36));
    CU_ASSERT(!t2m_device_track_is(a, upper, 36));
    CU_ASSERT(!t2m_device_track_is(a, lower, 35));
    memcpy(u.track_token, upper, 36); /* the platform's form: upper case, binary too */
    CU_ASSERT_EQUAL(t2m_device_store(a, &u, 1000), 0);
    CU_ASSERT_EQUAL(a->kind >> 2, T2M_KEY_UUID_UPPER);
    CU_ASSERT_EQUAL(a->kind & 3u, T2M_KEY_UUID); /* the device token's form is kept */
    T2M_ASSERT_STR(t2m_device_track(a, buf, &n), upper);
    CU_ASSERT(t2m_device_track_is(a, upper, 36));
    CU_ASSERT(!t2m_device_track_is(a, lower, 36));
    memcpy(u.track_token, mixed, 36); /* text: the UUID form is let go */
    CU_ASSERT_EQUAL(t2m_device_store(a, &u, 1000), 0);
    CU_ASSERT_EQUAL(a->kind >> 2, T2M_KEY_TEXT);
    T2M_ASSERT_STR(t2m_device_track(a, buf, &n), mixed);
    CU_ASSERT(t2m_device_track_is(a, mixed, 36));
    memcpy(u.track_token, lower, 36); /* and back */
    CU_ASSERT_EQUAL(t2m_device_store(a, &u, 1000), 0);
    T2M_ASSERT_STR(t2m_device_track(a, buf, &n), lower);
    struct t2m_update out;
    t2m_device_load(a, &out);
    T2M_ASSERT_STR(out.device_token, lower);
    T2M_ASSERT_STR(out.track_token, lower);
    t2m_devices_free(t); /* the text forms are freed with it (valgrind, ASan) */
}

static void remove_odd(struct t2m_device *d, void *user)
{
    struct t2m_devices *t = user;
    if (d->trip_updates & 1u) t2m_devices_remove(t, d);
}

/* Removal returns the record to the slab (reused by the next device), also from inside
 * foreach; the others are still found where they were. */
static void test_remove_reuse(void)
{
    enum { N = 3000 };
    struct t2m_devices *t = t2m_devices_new(0);
    struct t2m_device *at[N];
    char tok[64];
    for (unsigned i = 0; i < N; i++) {
        snprintf(tok, sizeof(tok), i % 2 ? "%08x-4e2a-4b1c-9d3e-%012u" : "text-%u", i, i);
        at[i] = get(t, 0, tok, true, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at[i]);
        at[i]->trip_updates = i;
    }
    size_t before = t2m_devices_memory(t);
    t2m_devices_foreach(t, remove_odd, t);
    CU_ASSERT_EQUAL(t2m_devices_count(t), N / 2);
    unsigned kept = 0, gone = 0;
    for (unsigned i = 0; i < N; i++) {
        snprintf(tok, sizeof(tok), i % 2 ? "%08x-4e2a-4b1c-9d3e-%012u" : "text-%u", i, i);
        struct t2m_device *d = get(t, 0, tok, false, NULL);
        kept += i % 2 == 0 && d == at[i] && d->trip_updates == i;
        gone += i % 2 == 1 && d == NULL;
    }
    CU_ASSERT_EQUAL(kept, N / 2);
    CU_ASSERT_EQUAL(gone, N / 2);
    /* new devices take the freed records: no new slab chunk */
    for (unsigned i = 0; i < N / 2; i++) {
        snprintf(tok, sizeof(tok), "new-%u", i);
        struct t2m_device *d = get(t, 0, tok, true, NULL);
        CU_ASSERT_PTR_NOT_NULL(d);
        CU_ASSERT_EQUAL(d ? d->trip_updates : 1, 0); /* a clean record */
    }
    CU_ASSERT_EQUAL(t2m_devices_count(t), N);
    CU_ASSERT(t2m_devices_memory(t) <= before + (N / 2) * 32);
    t2m_devices_free(t);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"create and find", test_create_find},
        {"instances are distinct", test_instances_distinct},
        {"tokens with NUL bytes", test_nul_bytes},
        {"max devices", test_max_devices},
        {"1,000,000 devices", test_million},
        {"store / load round trip", test_store_load},
        {"foreach visits each once", test_foreach},
        {"UUID tokens kept as 16 bytes", test_uuid_keys},
        {"removal reuses records", test_remove_reuse},
        {NULL, NULL},
    };
    return t2m_test_run("devices", cases);
}
