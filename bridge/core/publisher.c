/* publisher.c - the window, the offline queue with coalescing, re-send after a lost connection.
 *
 * Every message handed to the publisher is one allocation (entry + topic + payload) that lives
 * until the broker confirms it (`delivered`) or the queue policy drops it. An entry is on exactly
 * one list at a time:
 *   history  - FIFO of older messages (superseded retained ones, non-retained ones), bounded
 *   latest   - the newest queued message of each retained topic, also in the topic map
 *   resend   - in flight when the connection was lost, re-sent first on reconnect
 *   inflight - handed to mqtt.h, in send order, also in the msg-id map
 * The topic map and the msg-id map are chained hashes sharing the entry's `chain` link: an entry
 * is in the topic map only while it is latest, in the msg-id map only while in flight. */
#include "publisher.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "text.h"

#define MOD "publisher"
#define TOPIC_BUCKETS_MIN 64
#define ID_BUCKETS_MIN 16
#define ID_BUCKETS_MAX ((size_t)1 << 20)

enum where { W_HISTORY = 1, W_LATEST, W_RESEND, W_INFLIGHT };

struct entry {
    struct entry *prev, *next; /* the list named by `where` */
    struct entry *chain;       /* topic map (W_LATEST) or msg-id map (W_INFLIGHT) */
    uint32_t hash;             /* of the topic */
    int msg_id;                /* valid while W_INFLIGHT */
    uint32_t topic_len;
    uint32_t len;
    uint8_t qos;
    uint8_t retain;
    uint8_t where;
    char data[]; /* topic, NUL, payload */
};

struct list {
    struct entry *head, *tail;
    size_t n;
};

struct t2m_publisher {
    struct t2m_mqtt *mqtt;
    struct t2m_stats *stats;
    void (*on_resume)(void *user);
    void *user;
    struct t2m_publisher_options opt;
    struct list history, latest, resend, inflight;
    struct entry **topics; /* topic -> latest entry */
    size_t topics_mask;
    struct entry **ids; /* msg id -> in-flight entry */
    size_t ids_mask;
    unsigned ids_shift;
    bool connected;
    bool congested;
    bool draining;   /* guards against re-entry from callbacks fired inside t2m_mqtt_publish */
    bool in_publish; /* inside t2m_mqtt_publish for a tracked entry */
    bool early;      /* `delivered` for an unknown id arrived while in_publish ... */
    int early_id;    /* ... with this id */
    bool drop_warned;
    int64_t progress_ms; /* last acknowledgement, connect, or start of a non-empty window */
    size_t window;       /* opt.window, or less when the broker's Receive Maximum says so */
    struct t2m_repeat rep_too_large, rep_rejected;
};

static void progress(struct t2m_publisher *p)
{
    if (p->opt.now_ms) p->progress_ms = p->opt.now_ms();
}

int64_t t2m_publisher_stalled_ms(const struct t2m_publisher *p)
{
    if (!p->opt.now_ms || !p->connected || p->inflight.n == 0) return 0;
    int64_t d = p->opt.now_ms() - p->progress_ms;
    return d > 0 ? d : 0;
}

static const char *entry_topic(const struct entry *e)
{
    return e->data;
}

static const char *entry_payload(const struct entry *e)
{
    return e->data + e->topic_len + 1;
}

/* FNV-1a: topics are short and mostly share a prefix, which FNV mixes well enough. */
static uint32_t topic_hash(const char *s, size_t len)
{
    return t2m_fnv1a(T2M_FNV_INIT, s, len);
}

static void list_append(struct list *l, struct entry *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    l->n++;
}

static void list_remove(struct list *l, struct entry *e)
{
    /* Tested against head and tail rather than through prev/next: the same under the list's
     * invariants, and what lets clang's static analyzer follow the unlinking. */
    if (l->head == e)
        l->head = e->next;
    else
        e->prev->next = e->next;
    if (l->tail == e)
        l->tail = e->prev;
    else
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    l->n--;
}

/* Puts `e` where `old` was in the list (a retained topic keeps its place in the latest list). */
static void list_replace(struct list *l, struct entry *old, struct entry *e)
{
    e->prev = old->prev;
    e->next = old->next;
    if (e->prev)
        e->prev->next = e;
    else
        l->head = e;
    if (e->next)
        e->next->prev = e;
    else
        l->tail = e;
    old->prev = old->next = NULL;
}

static void free_list(struct list *l)
{
    struct entry *e = l->head;
    while (e) {
        struct entry *next = e->next;
        free(e);
        e = next;
    }
    l->head = l->tail = NULL;
    l->n = 0;
}

static struct list *list_of(struct t2m_publisher *p, const struct entry *e)
{
    switch (e->where) {
    case W_HISTORY:
        return &p->history;
    case W_LATEST:
        return &p->latest;
    case W_RESEND:
        return &p->resend;
    default:
        return &p->inflight;
    }
}

/* The chain link pointing at the latest entry for e's topic, or NULL. */
static struct entry **topic_slot(struct t2m_publisher *p, const struct entry *e)
{
    struct entry **s = &p->topics[e->hash & p->topics_mask];
    for (; *s; s = &(*s)->chain) {
        const struct entry *o = *s;
        if (o->hash == e->hash && o->topic_len == e->topic_len &&
            memcmp(o->data, e->data, e->topic_len) == 0)
            return s;
    }
    return NULL;
}

/* Doubles the topic map; on allocation failure it keeps working with longer chains. */
static void topics_grow(struct t2m_publisher *p)
{
    size_t n = (p->topics_mask + 1) * 2;
    struct entry **b = calloc(n, sizeof(*b));
    if (!b) return;
    for (size_t i = 0; i <= p->topics_mask; i++) {
        struct entry *e = p->topics[i];
        while (e) {
            struct entry *next = e->chain;
            e->chain = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(p->topics);
    p->topics = b;
    p->topics_mask = n - 1;
}

static void topics_insert(struct t2m_publisher *p, struct entry *e)
{
    if (p->latest.n > p->topics_mask) topics_grow(p);
    struct entry **b = &p->topics[e->hash & p->topics_mask];
    e->chain = *b;
    *b = e;
}

static void topics_remove(struct t2m_publisher *p, struct entry *e)
{
    struct entry **s = &p->topics[e->hash & p->topics_mask];
    while (*s && *s != e)
        s = &(*s)->chain;
    if (*s) *s = e->chain;
    e->chain = NULL;
}

static size_t id_bucket(const struct t2m_publisher *p, int id)
{
    /* Fibonacci hashing: ids are mostly sequential, this spreads them and any other pattern. */
    return (size_t)(((uint32_t)id * 2654435761u) >> p->ids_shift) & p->ids_mask;
}

static void ids_insert(struct t2m_publisher *p, struct entry *e)
{
    struct entry **b = &p->ids[id_bucket(p, e->msg_id)];
    e->chain = *b;
    *b = e;
}

static struct entry *ids_remove(struct t2m_publisher *p, int id)
{
    for (struct entry **s = &p->ids[id_bucket(p, id)]; *s; s = &(*s)->chain) {
        struct entry *e = *s;
        if (e->msg_id == id) {
            *s = e->chain;
            e->chain = NULL;
            return e;
        }
    }
    return NULL;
}

size_t t2m_publisher_queued(const struct t2m_publisher *p)
{
    return p->history.n + p->latest.n + p->resend.n;
}

size_t t2m_publisher_inflight(const struct t2m_publisher *p)
{
    return p->inflight.n;
}

bool t2m_publisher_congested(const struct t2m_publisher *p)
{
    return p->connected && p->congested;
}

bool t2m_publisher_idle(const struct t2m_publisher *p)
{
    return t2m_publisher_queued(p) == 0 && p->inflight.n == 0;
}

/* Congestion only means something while connected: offline, coalescing bounds the queue and the
 * upstream must keep flowing so that the latest state is known. */
static void update_congestion(struct t2m_publisher *p)
{
    size_t q = t2m_publisher_queued(p);
    if (!p->congested) {
        if (p->connected && p->opt.high_water && q >= p->opt.high_water) p->congested = true;
    } else if (!p->connected || q <= p->opt.low_water) {
        p->congested = false;
        if (p->on_resume) p->on_resume(p->user);
    }
}

/* Counted as an offline-queue drop either way: the message was coalesced away. `full` says
 * whether the history bound pushed it out (warned once per outage) or a newer message for its
 * topic superseded a lost in-flight one. */
static void drop(struct t2m_publisher *p, struct entry *e, bool full)
{
    if (p->stats) p->stats->dropped[T2M_DROP_OFFLINE_QUEUE]++;
    if (!full) {
        T2M_DEBUG(MOD, "not re-sending a lost message on %s: a newer one is queued",
                  entry_topic(e));
    } else if (!p->drop_warned) {
        T2M_WARN(MOD,
                 "offline queue full (%zu messages): dropping the oldest updates, keeping "
                 "the latest of every topic",
                 p->opt.offline_queue);
        p->drop_warned = true;
    }
    free(e);
}

/* Appends to history, then drops from its head down to the bound. */
static void history_push(struct t2m_publisher *p, struct entry *e)
{
    e->where = W_HISTORY;
    list_append(&p->history, e);
    while (p->history.n > p->opt.offline_queue && p->history.head) {
        struct entry *old = p->history.head;
        list_remove(&p->history, old);
        drop(p, old, true);
    }
}

/* Queues a new message behind everything else; a retained one replaces its topic's latest
 * (which moves to history), unless it repeats it exactly. */
static void enqueue(struct t2m_publisher *p, struct entry *e)
{
    if (!e->retain) {
        history_push(p, e);
        return;
    }
    e->where = W_LATEST;
    struct entry **s = topic_slot(p, e);
    if (s) {
        struct entry *old = *s;
        if (old->len == e->len && old->qos == e->qos &&
            memcmp(entry_payload(old), entry_payload(e), e->len) == 0) {
            /* The same retained state again (the republish after a reconnect): sending both
             * would only repeat it. */
            free(e);
            return;
        }
        e->chain = old->chain;
        *s = e;
        old->chain = NULL;
        list_replace(&p->latest, old, e);
        history_push(p, old);
        return;
    }
    list_append(&p->latest, e);
    topics_insert(p, e);
}

/* Takes e off its queue list (and the topic map when latest). */
static void unqueue(struct t2m_publisher *p, struct entry *e)
{
    if (e->where == W_LATEST) topics_remove(p, e);
    list_remove(list_of(p, e), e);
}

/* Hands a queued entry to mqtt.h. Returns the T2M_MQTT_* code; on OK the entry is in flight (or
 * already done, or left queued when the connection went away during the call). */
static int send_entry(struct t2m_publisher *p, struct entry *e, bool queued)
{
    int id = 0;
    p->in_publish = true;
    p->early = false;
    int rc = t2m_mqtt_publish(p->mqtt, entry_topic(e), entry_payload(e), e->len, e->qos,
                              e->retain != 0, &id);
    p->in_publish = false;
    if (rc != T2M_MQTT_OK) return rc;
    bool done = p->early && p->early_id == id;
    p->early = false;
    if (!done && !p->connected) {
        /* `disconnected` fired inside the call: the message is lost, keep it queued. */
        if (!queued) enqueue(p, e);
        return T2M_MQTT_OK;
    }
    if (queued) unqueue(p, e);
    if (done) {
        free(e);
        return T2M_MQTT_OK;
    }
    e->where = W_INFLIGHT;
    e->msg_id = id;
    if (p->inflight.n == 0) progress(p); /* the wait for an acknowledgement starts now */
    list_append(&p->inflight, e);
    ids_insert(p, e);
    return T2M_MQTT_OK;
}

/* The next entry to send: re-sends first, then history, then latest. A re-send whose topic has a
 * newer queued message is dropped here: only the newer one goes out. */
static struct entry *next_queued(struct t2m_publisher *p)
{
    while (p->resend.head) {
        struct entry *e = p->resend.head;
        if (!e->retain || !topic_slot(p, e)) return e;
        list_remove(&p->resend, e);
        drop(p, e, false);
    }
    /* The analyzer cannot know that an entry is on the list its `where` names (unqueue relies
     * on it), so after drain() frees a rejected entry it takes these heads for freed memory. */
    /* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
    if (p->history.head) return p->history.head;
    return p->latest.head;
    /* NOLINTEND(clang-analyzer-unix.Malloc) */
}

/* A message the client will never send (over the broker's Maximum Packet Size, or refused
 * outright): SPEC 8, counted under its own reason, logged once a minute, never retried; the
 * same whether it was queued first or sent directly. Frees e. */
static void rejected(struct t2m_publisher *p, struct entry *e, int rc)
{
    int64_t now = p->opt.now_ms ? p->opt.now_ms() : 0;
    if (rc == T2M_MQTT_ETOOBIG) {
        if (p->stats) p->stats->dropped[T2M_DROP_BROKER_TOO_LARGE]++;
        uint64_t n = t2m_repeat_hit(&p->rep_too_large, now);
        if (n)
            T2M_WARN(MOD,
                     "%llu message(s) over the broker's Maximum Packet Size dropped (the last on "
                     "%s)",
                     (unsigned long long)n, entry_topic(e));
    } else {
        uint64_t n = t2m_repeat_hit(&p->rep_rejected, now);
        if (n)
            T2M_WARN(MOD, "%llu message(s) the client rejected (error %d) dropped, the last on %s",
                     (unsigned long long)n, rc, entry_topic(e));
    }
    free(e);
}

static void drain(struct t2m_publisher *p)
{
    if (p->draining) return;
    p->draining = true;
    while (p->connected && p->inflight.n < p->window) {
        struct entry *e = next_queued(p);
        if (!e) break;
        int rc = send_entry(p, e, true);
        if (rc == T2M_MQTT_EAGAIN || rc == T2M_MQTT_ENOTCONN)
            break; /* stays queued: retried on the next delivery, publish or connect */
        if (rc != T2M_MQTT_OK) {
            unqueue(p, e);
            rejected(p, e, rc);
        }
    }
    p->draining = false;
    update_congestion(p);
}

struct t2m_publisher *t2m_publisher_new(struct t2m_mqtt *mqtt,
                                        const struct t2m_publisher_options *opt,
                                        struct t2m_stats *stats, void (*on_resume)(void *user),
                                        void *user)
{
    struct t2m_publisher *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->mqtt = mqtt;
    p->stats = stats;
    p->on_resume = on_resume;
    p->user = user;
    p->opt = *opt;
    if (p->opt.window == 0) p->opt.window = 1;
    p->window = p->opt.window;
    if (p->opt.high_water && p->opt.low_water >= p->opt.high_water)
        p->opt.low_water = p->opt.high_water - 1;
    size_t nid = ID_BUCKETS_MIN;
    unsigned bits = 4;
    while (nid / 2 < p->opt.window && nid < ID_BUCKETS_MAX) {
        nid *= 2;
        bits++;
    }
    p->ids = calloc(nid, sizeof(*p->ids));
    p->topics = calloc(TOPIC_BUCKETS_MIN, sizeof(*p->topics));
    if (!p->ids || !p->topics) {
        free(p->ids);
        free(p->topics);
        free(p);
        return NULL;
    }
    p->ids_mask = nid - 1;
    p->ids_shift = 32 - bits;
    p->topics_mask = TOPIC_BUCKETS_MIN - 1;
    p->connected = mqtt && t2m_mqtt_connected(mqtt);
    return p;
}

void t2m_publisher_free(struct t2m_publisher *p)
{
    if (!p) return;
    free_list(&p->history);
    free_list(&p->latest);
    free_list(&p->resend);
    free_list(&p->inflight);
    free(p->topics);
    free(p->ids);
    free(p);
}

int t2m_publisher_publish(struct t2m_publisher *p, const char *topic, const void *payload,
                          size_t len, int qos, bool retain)
{
    if (!topic || (len && !payload)) {
        T2M_ERROR(MOD, "publish without a topic or payload");
        return -1;
    }
    size_t tlen = strlen(topic);
    if (tlen > UINT32_MAX || len > UINT32_MAX) {
        T2M_ERROR(MOD, "message too large to publish (%zu bytes)", len);
        return -1;
    }
    struct entry *e = malloc(sizeof(*e) + tlen + 1 + len);
    if (!e) {
        T2M_ERROR(MOD, "out of memory queueing a message");
        return -1;
    }
    e->prev = e->next = e->chain = NULL;
    e->hash = topic_hash(topic, tlen);
    e->msg_id = 0;
    e->topic_len = (uint32_t)tlen;
    e->len = (uint32_t)len;
    e->qos = (uint8_t)(qos < 0 ? 0 : qos > 2 ? 2 : qos);
    e->retain = retain;
    e->where = 0;
    memcpy(e->data, topic, tlen + 1);
    if (len) memcpy(e->data + tlen + 1, payload, len);

    if (p->connected && !p->draining && t2m_publisher_queued(p) == 0 && p->inflight.n < p->window) {
        int rc = send_entry(p, e, false);
        if (rc == T2M_MQTT_EAGAIN || rc == T2M_MQTT_ENOTCONN) {
            enqueue(p, e);
        } else if (rc != T2M_MQTT_OK) {
            rejected(p, e, rc);
        }
        update_congestion(p);
        return 0;
    }
    enqueue(p, e);
    if (p->connected)
        drain(p);
    else
        update_congestion(p);
    return 0;
}

int t2m_publisher_publish_urgent(struct t2m_publisher *p, const char *topic, const void *payload,
                                 size_t len, int qos, bool retain)
{
    if (!topic || (len && !payload)) return T2M_MQTT_EINVAL;
    int id = 0;
    /* Untracked: its `delivered` arrives with an id the publisher does not know, and is only
     * counted. */
    return t2m_mqtt_publish(p->mqtt, topic, payload, len, qos, retain, &id);
}

void t2m_publisher_set_receive_max(struct t2m_publisher *p, size_t receive_max)
{
    p->window = receive_max && receive_max < p->opt.window ? receive_max : p->opt.window;
}

void t2m_publisher_on_connected(struct t2m_publisher *p)
{
    p->connected = true;
    p->drop_warned = false;
    progress(p);
    drain(p);
}

void t2m_publisher_on_disconnected(struct t2m_publisher *p)
{
    p->connected = false;
    memset(p->ids, 0, (p->ids_mask + 1) * sizeof(*p->ids));
    if (p->inflight.head) {
        /* Everything in flight was sent after whatever still waits to be re-sent. */
        for (struct entry *e = p->inflight.head; e; e = e->next) {
            e->where = W_RESEND;
            e->chain = NULL;
        }
        p->inflight.tail->next = p->resend.head;
        if (p->resend.head)
            p->resend.head->prev = p->inflight.tail;
        else
            p->resend.tail = p->inflight.tail;
        p->resend.head = p->inflight.head;
        p->resend.n += p->inflight.n;
        p->inflight.head = p->inflight.tail = NULL;
        p->inflight.n = 0;
    }
    update_congestion(p);
}

void t2m_publisher_on_delivered(struct t2m_publisher *p, int msg_id)
{
    if (p->stats) p->stats->messages_published++;
    struct entry *e = ids_remove(p, msg_id);
    if (!e) {
        if (p->in_publish) {
            p->early = true;
            p->early_id = msg_id;
        }
        return;
    }
    list_remove(&p->inflight, e);
    free(e);
    progress(p);
    drain(p);
}
