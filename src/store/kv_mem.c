/*
 * kv_mem.c - the in-memory KV backend: one hash table per namespace under
 * one reader-writer lock per store. Reads share the lock; writes, expiry
 * purges and listings of the same store serialise. Data lives as long as the
 * store (the process, through the registry in kv_ns.c).
 *
 * Storage events (kv.h) are queued in memory under the same write lock as
 * the write: allocated before the write, linked after it, so an event exists
 * iff its write happened. They do not survive a restart (nor does the data).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "store/kv_int.h"

typedef struct mem_entry {
    struct mem_entry *next; /* hash chain */
    uint64_t hash;
    int64_t expires; /* absolute ms; 0 = none */
    uint8_t *val;
    size_t vlen;
    size_t klen;
    uint8_t key[];
} mem_entry;

typedef struct mem_ns {
    struct mem_ns *next;
    uint64_t hash;
    mem_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;    /* entries, expired ones included until purged */
    uint64_t bytes;  /* their keys plus values: the byte quota's measure */
    char name[];
} mem_ns;

#define NS_BUCKETS 256

/* A queued event (or a dead letter). */
typedef struct mem_ev {
    struct mem_ev *next;
    uint64_t id;
    unsigned type;
    int64_t ts_ns;
    size_t sub;        /* index into the set, while prepared */
    uint8_t *payload;
    size_t plen, klen;
    char *fn, *ns, *cause; /* dead letters only */
    uint32_t attempts;
    uint8_t key[];
} mem_ev;

typedef struct mem_evq {
    mem_ev *head, *tail;
    uint64_t depth, refused;
} mem_evq;

#define MEM_MAX_DEAD 1000

typedef struct mem_store {
    kiln_kv_store base;
    pthread_rwlock_t lock;
    mem_ns *ns[NS_BUCKETS];
    /* storage events, under lock */
    kv_subset *subs;
    mem_evq *q; /* one per subscription */
    uint64_t next_id;
    mem_ev *dead; /* newest first */
    size_t n_dead;
    void (*notify)(void *arg);
    void *notify_arg;
} mem_store;

/* FNV-1a, 64-bit. */
static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static bool live(const mem_entry *e, int64_t now)
{
    return e->expires == 0 || e->expires > now;
}

static mem_ns *ns_find(mem_store *s, const char *name)
{
    uint64_t h = hash_bytes(name, strlen(name));
    for (mem_ns *n = s->ns[h % NS_BUCKETS]; n != NULL; n = n->next)
        if (n->hash == h && strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

/* Find or create; call with the write lock. NULL on OOM. */
static mem_ns *ns_get(mem_store *s, const char *name)
{
    mem_ns *n = ns_find(s, name);
    if (n != NULL)
        return n;
    size_t len = strlen(name);
    n = kiln_calloc(1, sizeof(*n) + len + 1);
    if (n == NULL)
        return NULL;
    n->nbuckets = 16;
    n->buckets = kiln_calloc(n->nbuckets, sizeof(*n->buckets));
    if (n->buckets == NULL) {
        kiln_free(n);
        return NULL;
    }
    memcpy(n->name, name, len + 1);
    n->hash = hash_bytes(name, len);
    n->next = s->ns[n->hash % NS_BUCKETS];
    s->ns[n->hash % NS_BUCKETS] = n;
    return n;
}

/* The slot holding the entry for key (or the chain's terminating NULL). */
static mem_entry **slot_of(mem_ns *n, const void *key, size_t klen, uint64_t h)
{
    mem_entry **pp = &n->buckets[h & (n->nbuckets - 1)];
    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            break;
    return pp;
}

static mem_entry *lookup(mem_ns *n, const void *key, size_t klen)
{
    if (n == NULL)
        return NULL;
    return *slot_of(n, key, klen, hash_bytes(key, klen));
}

static void entry_free(mem_entry *e)
{
    kiln_free(e->val);
    kiln_free(e);
}

static uint64_t entry_size(const mem_entry *e)
{
    return (uint64_t)e->klen + e->vlen;
}

static void remove_slot(mem_ns *n, mem_entry **pp)
{
    mem_entry *e = *pp;
    *pp = e->next;
    n->count--;
    n->bytes -= entry_size(e);
    entry_free(e);
}

/* Drop every expired entry of the namespace. */
static void purge_ns(mem_ns *n, int64_t now)
{
    for (size_t b = 0; b < n->nbuckets; b++) {
        mem_entry **pp = &n->buckets[b];
        while (*pp != NULL) {
            if (!live(*pp, now))
                remove_slot(n, pp);
            else
                pp = &(*pp)->next;
        }
    }
}

/* Grow the table when it is full; failure only costs speed. */
static void maybe_grow(mem_ns *n)
{
    if (n->count < n->nbuckets)
        return;
    size_t nb = n->nbuckets * 2;
    mem_entry **b = kiln_calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < n->nbuckets; i++) {
        for (mem_entry *e = n->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    kiln_free(n->buckets);
    n->buckets = b;
    n->nbuckets = nb;
}

/* Does a write replacing old_size bytes (0 and is_new for a new key) with
 * new_size stay within the quota? Expired entries are purged first when it
 * would not; the caller's own entry, if any, is live, so it survives. */
static int room_for(mem_ns *n, bool is_new, uint64_t old_size, uint64_t new_size,
                    kiln_kv_quota *q, int64_t now)
{
    if (q == NULL)
        return KILN_OK;
    bool keys_ok = !is_new || q->max_keys == 0 || n->count < q->max_keys;
    if (keys_ok && kv_quota_fits(n->bytes, old_size, new_size, q->max_bytes))
        return KILN_OK;
    purge_ns(n, now);
    keys_ok = !is_new || q->max_keys == 0 || n->count < q->max_keys;
    if (keys_ok && kv_quota_fits(n->bytes, old_size, new_size, q->max_bytes))
        return KILN_OK;
    q->over_bytes = keys_ok;
    q->used_bytes = n->bytes;
    return KILN_ELIMIT;
}

/* ---- storage events ---------------------------------------------------------------- */

static void ev_free(mem_ev *e)
{
    if (e == NULL)
        return;
    kiln_free(e->payload);
    kiln_free(e->fn);
    kiln_free(e->ns);
    kiln_free(e->cause);
    kiln_free(e);
}

static void ev_free_list(mem_ev *e)
{
    for (mem_ev *n; e != NULL; e = n) {
        n = e->next;
        ev_free(e);
    }
}

/* The events a write of `type` to key in ns queues, allocated before the
 * write (call with the write lock). KILN_ELIMIT (logged) when a
 * subscriber's queue is full; KILN_ENOMEM. */
static int ev_prepare(mem_store *s, const char *ns, unsigned type, const void *key, size_t klen,
                      const void *payload, size_t plen, kiln_kv_quota *q, mem_ev **out)
{
    *out = NULL;
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++) {
        const kiln_kv_sub *sub = &s->subs->subs[i];
        if (!(sub->types & (1u << type)) || strcmp(sub->ns, ns) != 0)
            continue;
        int rc = KILN_OK;
        mem_ev *e = NULL;
        if (s->q[i].depth >= sub->max_queue) {
            s->q[i].refused++;
            kv_log_queue_full(s, sub->fn, sub->ns, sub->max_queue);
            if (q != NULL)
                q->over_events = true;
            rc = KILN_ELIMIT;
        } else if ((e = kiln_calloc(1, sizeof(*e) + klen)) == NULL ||
                   (e->payload = kiln_malloc(plen ? plen : 1)) == NULL) {
            kiln_free(e);
            rc = KILN_ENOMEM;
        }
        if (rc != KILN_OK) {
            ev_free_list(*out);
            *out = NULL;
            return rc;
        }
        memcpy(e->key, key, klen);
        e->klen = klen;
        if (plen)
            memcpy(e->payload, payload, plen);
        e->plen = plen;
        e->type = type;
        e->sub = i;
        e->next = *out;
        *out = e;
    }
    return KILN_OK;
}

/* A write meets the expired entry e (may be NULL or live: nothing): its
 * expiry is a removal subscribers hear of, queued before the write's own
 * event, and never refused by a full queue (it already happened). */
static int ev_expired(mem_store *s, const char *ns, const mem_entry *e, int64_t now,
                      mem_ev **out)
{
    *out = NULL;
    if (e == NULL || live(e, now))
        return KILN_OK;
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++) {
        const kiln_kv_sub *sub = &s->subs->subs[i];
        if (!(sub->types & (1u << KILN_KV_EV_REMOVED)) || strcmp(sub->ns, ns) != 0)
            continue;
        mem_ev *x = kiln_calloc(1, sizeof(*x) + e->klen);
        if (x == NULL || (x->payload = kiln_malloc(1)) == NULL) {
            kiln_free(x);
            ev_free_list(*out);
            *out = NULL;
            return KILN_ENOMEM;
        }
        memcpy(x->key, e->key, e->klen);
        x->klen = e->klen;
        x->type = KILN_KV_EV_REMOVED;
        x->sub = i;
        x->next = *out;
        *out = x;
    }
    return KILN_OK;
}

/* The write happened: queue its prepared events. True if there were any. */
static bool ev_commit(mem_store *s, mem_ev *list)
{
    bool any = list != NULL;
    int64_t ts = kv_now_ns();
    uint64_t id = s->next_id;
    size_t n = 0;
    for (mem_ev *e = list; e != NULL; e = e->next)
        n++;
    s->next_id += n;
    /* The list is in reverse subscription order; ids only need to grow per
     * subscriber (each gets one event of this write). */
    for (mem_ev *e = list, *next; e != NULL; e = next) {
        next = e->next;
        e->next = NULL;
        e->id = ++id;
        e->ts_ns = ts;
        mem_evq *q = &s->q[e->sub];
        if (q->tail != NULL)
            q->tail->next = e;
        else
            q->head = e;
        q->tail = e;
        q->depth++;
    }
    return any;
}

/* Called under the read lock, so that once mem_subscribe (write lock) has
 * replaced the callback, no thread is still inside the old one. */
static void ev_notify(mem_store *s, bool queued)
{
    if (!queued)
        return;
    pthread_rwlock_rdlock(&s->lock);
    if (s->notify != NULL)
        s->notify(s->notify_arg);
    pthread_rwlock_unlock(&s->lock);
}

static int mem_subscribe(kiln_kv_store *st, const kiln_kv_sub *subs, size_t n,
                         void (*notify)(void *arg), void *arg)
{
    mem_store *s = (mem_store *)st;
    kv_subset *set = kv_subset_copy(subs, n);
    mem_evq *q = kiln_calloc(n ? n : 1, sizeof(*q));
    if (set == NULL || q == NULL) {
        kiln_free(set);
        kiln_free(q);
        return KILN_ENOMEM;
    }
    pthread_rwlock_wrlock(&s->lock);
    for (size_t j = 0; s->subs != NULL && j < s->subs->n; j++) {
        const kiln_kv_sub *old = &s->subs->subs[j];
        size_t i = 0;
        while (i < set->n &&
               (strcmp(set->subs[i].fn, old->fn) != 0 || strcmp(set->subs[i].ns, old->ns) != 0))
            i++;
        if (i < set->n) {
            q[i] = s->q[j];
            continue;
        }
        if (s->q[j].depth > 0)
            kv_log("events: function '%s' no longer subscribes to namespace '%s': dropped its "
                   "%llu queued event(s)",
                   old->fn, old->ns, (unsigned long long)s->q[j].depth);
        ev_free_list(s->q[j].head);
    }
    kiln_free(s->subs);
    kiln_free(s->q);
    s->subs = set;
    s->q = q;
    s->notify = notify;
    s->notify_arg = arg;
    pthread_rwlock_unlock(&s->lock);
    return KILN_OK;
}

static mem_evq *evq_of(mem_store *s, const char *fn)
{
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++)
        if (strcmp(s->subs->subs[i].fn, fn) == 0)
            return &s->q[i];
    return NULL;
}

static int mem_events_read(kiln_kv_store *st, const char *fn, uint64_t after, size_t max,
                           kiln_kv_events *out)
{
    mem_store *s = (mem_store *)st;
    kv_evb b;
    kv_evb_init(&b, out);
    int rc = KILN_OK;
    pthread_rwlock_rdlock(&s->lock);
    mem_evq *q = evq_of(s, fn);
    for (mem_ev *e = q ? q->head : NULL; e != NULL && out->n < max && rc == KILN_OK;
         e = e->next) {
        if (e->id <= after)
            continue;
        kiln_kv_qevent v = {.id = e->id, .type = e->type, .ts_ns = e->ts_ns, .fn = fn,
                            .ns = s->subs->subs[q - s->q].ns, .key = e->key, .klen = e->klen,
                            .payload = e->payload, .plen = e->plen, .attempts = e->attempts};
        rc = kv_evb_add(&b, &v);
    }
    pthread_rwlock_unlock(&s->lock);
    if (rc != KILN_OK) {
        kv_evb_abort(&b);
        return rc;
    }
    kv_evb_finish(&b);
    return KILN_OK;
}

static int mem_events_done(kiln_kv_store *st, const char *fn, const uint64_t *ids,
                           const char *const *causes, const uint32_t *attempts, size_t n)
{
    mem_store *s = (mem_store *)st;
    int rc = KILN_OK;
    pthread_rwlock_wrlock(&s->lock);
    mem_evq *q = evq_of(s, fn);
    for (size_t i = 0; q != NULL && i < n; i++) {
        mem_ev **pp = &q->head, *prev = NULL;
        while (*pp != NULL && (*pp)->id != ids[i]) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        mem_ev *e = *pp;
        if (e == NULL)
            continue;
        *pp = e->next;
        if (q->tail == e)
            q->tail = prev;
        q->depth--;
        e->next = NULL;
        if (causes == NULL || causes[i] == NULL) {
            ev_free(e);
            continue;
        }
        e->fn = kiln_strdup(fn);
        e->ns = kiln_strdup(s->subs->subs[q - s->q].ns);
        e->cause = kiln_strdup(causes[i]);
        e->attempts = attempts ? attempts[i] : 0;
        if (e->fn == NULL || e->ns == NULL || e->cause == NULL) {
            ev_free(e);
            rc = KILN_ENOMEM;
            continue;
        }
        e->next = s->dead;
        s->dead = e;
        if (++s->n_dead > MEM_MAX_DEAD) {
            mem_ev *d = s->dead;
            while (d->next->next != NULL)
                d = d->next;
            ev_free(d->next);
            d->next = NULL;
            s->n_dead--;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

static int mem_events_tried(kiln_kv_store *st, const char *fn, const uint64_t *ids,
                            const uint32_t *attempts, size_t n)
{
    mem_store *s = (mem_store *)st;
    pthread_rwlock_wrlock(&s->lock);
    mem_evq *q = evq_of(s, fn);
    for (size_t i = 0; q != NULL && i < n; i++)
        for (mem_ev *e = q->head; e != NULL; e = e->next)
            if (e->id == ids[i]) {
                e->attempts = attempts[i];
                break;
            }
    pthread_rwlock_unlock(&s->lock);
    return KILN_OK;
}

static int mem_events_stats(kiln_kv_store *st, const char *fn, uint64_t *depth,
                            uint64_t *refused)
{
    mem_store *s = (mem_store *)st;
    pthread_rwlock_rdlock(&s->lock);
    mem_evq *q = evq_of(s, fn);
    *depth = q ? q->depth : 0;
    *refused = q ? q->refused : 0;
    pthread_rwlock_unlock(&s->lock);
    return KILN_OK;
}

static int mem_events_dead(kiln_kv_store *st, size_t max, kiln_kv_events *out)
{
    mem_store *s = (mem_store *)st;
    kv_evb b;
    kv_evb_init(&b, out);
    int rc = KILN_OK;
    pthread_rwlock_rdlock(&s->lock);
    for (mem_ev *e = s->dead; e != NULL && out->n < max && rc == KILN_OK; e = e->next) {
        kiln_kv_qevent v = {.id = e->id, .type = e->type, .ts_ns = e->ts_ns, .fn = e->fn,
                            .ns = e->ns, .key = e->key, .klen = e->klen, .payload = e->payload,
                            .plen = e->plen, .cause = e->cause, .attempts = e->attempts};
        rc = kv_evb_add(&b, &v);
    }
    pthread_rwlock_unlock(&s->lock);
    if (rc != KILN_OK) {
        kv_evb_abort(&b);
        return rc;
    }
    kv_evb_finish(&b);
    return KILN_OK;
}

/* ---- operations -------------------------------------------------------------------- */

static int mem_get(kiln_kv_store *st, const char *ns, const void *key, size_t klen, void *buf,
                   size_t cap, size_t *len, int64_t *pttl)
{
    mem_store *s = (mem_store *)st;
    int64_t now = kiln_kv_now_ms();
    int rc = KILN_ENOENT;
    pthread_rwlock_rdlock(&s->lock);
    mem_entry *e = lookup(ns_find(s, ns), key, klen);
    if (e != NULL && live(e, now)) {
        rc = KILN_OK;
        *len = e->vlen;
        if (e->vlen <= cap && e->vlen > 0)
            memcpy(buf, e->val, e->vlen);
        if (pttl != NULL)
            *pttl = e->expires == 0 ? -1 : e->expires - now;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

/* Store val into the entry for key (creating it); the caller holds the
 * write lock and has checked NX. The quota is checked before anything is
 * allocated, so a refused write costs no memory. */
static int put(mem_ns *n, const void *key, size_t klen, const void *val, size_t vlen,
               int64_t expires, bool keep_expiry, kiln_kv_quota *q, int64_t now)
{
    uint64_t h = hash_bytes(key, klen);
    mem_entry **pp = slot_of(n, key, klen, h);
    if (*pp != NULL && !live(*pp, now)) {
        /* An expired entry is gone for the caller: replace it as a new key
         * (and keep the purge in room_for from freeing it under us). */
        remove_slot(n, pp);
        pp = slot_of(n, key, klen, h);
    }
    mem_entry *e = *pp;
    int rc = room_for(n, e == NULL, e ? entry_size(e) : 0, (uint64_t)klen + vlen, q, now);
    if (rc != KILN_OK)
        return rc;
    uint8_t *copy = kiln_malloc(vlen ? vlen : 1);
    if (copy == NULL)
        return KILN_ENOMEM;
    if (vlen)
        memcpy(copy, val, vlen);
    if (e != NULL) {
        n->bytes = n->bytes - e->vlen + vlen;
        kiln_free(e->val);
        e->val = copy;
        e->vlen = vlen;
        if (!keep_expiry)
            e->expires = expires;
        return KILN_OK;
    }
    e = kiln_malloc(sizeof(*e) + klen);
    if (e == NULL) {
        kiln_free(copy);
        return KILN_ENOMEM;
    }
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->hash = h;
    e->val = copy;
    e->vlen = vlen;
    e->expires = expires;
    /* The purge above may have emptied the chain: look the slot up again. */
    pp = slot_of(n, key, klen, h);
    e->next = *pp;
    *pp = e;
    n->count++;
    n->bytes += (uint64_t)klen + vlen;
    maybe_grow(n);
    return KILN_OK;
}

static int mem_set(kiln_kv_store *st, const char *ns, const void *key, size_t klen,
                   const void *val, size_t vlen, int64_t ttl_ms, unsigned flags,
                   kiln_kv_quota *q, bool *stored)
{
    mem_store *s = (mem_store *)st;
    int64_t now = kiln_kv_now_ms();
    if (stored != NULL)
        *stored = false;
    pthread_rwlock_wrlock(&s->lock);
    int rc = KILN_OK;
    bool queued = false;
    mem_ns *n = ns_get(s, ns);
    if (n == NULL) {
        rc = KILN_ENOMEM;
    } else {
        mem_entry *e = lookup(n, key, klen);
        bool was = e != NULL && live(e, now);
        mem_ev *evs = NULL, *gone = NULL;
        if ((flags & KILN_KV_NX) && was) {
            rc = KILN_OK; /* present: NX leaves it */
        } else {
            rc = ev_prepare(s, ns, was ? KILN_KV_EV_UPDATED : KILN_KV_EV_ADDED, key, klen, val,
                            vlen, q, &evs);
            if (rc == KILN_OK)
                rc = ev_expired(s, ns, e, now, &gone);
            if (rc == KILN_OK)
                rc = put(n, key, klen, val, vlen, kv_expiry(now, ttl_ms), false, q, now);
            if (rc == KILN_OK) {
                queued = ev_commit(s, gone);
                queued |= ev_commit(s, evs);
            } else {
                ev_free_list(evs);
                ev_free_list(gone);
            }
            if (rc == KILN_OK && stored != NULL)
                *stored = true;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    ev_notify(s, queued);
    return rc;
}

static int mem_del(kiln_kv_store *st, const char *ns, const void *key, size_t klen,
                   bool *deleted)
{
    mem_store *s = (mem_store *)st;
    int64_t now = kiln_kv_now_ms();
    bool found = false, queued = false;
    int rc = KILN_OK;
    pthread_rwlock_wrlock(&s->lock);
    mem_ns *n = ns_find(s, ns);
    if (n != NULL) {
        mem_entry **pp = slot_of(n, key, klen, hash_bytes(key, klen));
        mem_ev *evs = NULL;
        if (*pp != NULL && live(*pp, now))
            rc = ev_prepare(s, ns, KILN_KV_EV_REMOVED, key, klen, NULL, 0, NULL, &evs);
        else if (*pp != NULL)
            rc = ev_expired(s, ns, *pp, now, &evs);
        if (*pp != NULL && rc == KILN_OK) {
            found = live(*pp, now);
            remove_slot(n, pp);
            queued = ev_commit(s, evs);
        }
    }
    pthread_rwlock_unlock(&s->lock);
    ev_notify(s, queued);
    if (deleted != NULL)
        *deleted = found;
    return rc;
}

static int mem_incr(kiln_kv_store *st, const char *ns, const void *key, size_t klen,
                    int64_t delta, kiln_kv_quota *q, int64_t *out)
{
    mem_store *s = (mem_store *)st;
    int64_t now = kiln_kv_now_ms();
    int rc = KILN_OK;
    bool queued = false;
    pthread_rwlock_wrlock(&s->lock);
    mem_ns *n = ns_get(s, ns);
    if (n == NULL) {
        rc = KILN_ENOMEM;
    } else {
        mem_entry *e = lookup(n, key, klen);
        int64_t v = 0;
        bool was = e != NULL && live(e, now);
        if (was)
            rc = kv_parse_counter(e->val, e->vlen, &v);
        if (rc == KILN_OK)
            rc = kv_add_i64(v, delta, &v);
        if (rc == KILN_OK) {
            char buf[24];
            size_t len = kv_fmt_i64(v, buf);
            mem_ev *evs = NULL, *gone = NULL;
            rc = ev_prepare(s, ns, was ? KILN_KV_EV_UPDATED : KILN_KV_EV_ADDED, key, klen, buf,
                            len, q, &evs);
            if (rc == KILN_OK)
                rc = ev_expired(s, ns, e, now, &gone);
            if (rc == KILN_OK)
                rc = put(n, key, klen, buf, len, 0, true, q, now);
            if (rc == KILN_OK) {
                *out = v;
                queued = ev_commit(s, gone);
                queued |= ev_commit(s, evs);
            } else {
                ev_free_list(evs);
                ev_free_list(gone);
            }
        }
    }
    pthread_rwlock_unlock(&s->lock);
    ev_notify(s, queued);
    return rc;
}

static int mem_expire(kiln_kv_store *st, const char *ns, const void *key, size_t klen,
                      int64_t ttl_ms, bool *found)
{
    mem_store *s = (mem_store *)st;
    int64_t now = kiln_kv_now_ms();
    *found = false;
    pthread_rwlock_wrlock(&s->lock);
    mem_entry *e = lookup(ns_find(s, ns), key, klen);
    if (e != NULL && live(e, now)) {
        e->expires = kv_expiry(now, ttl_ms);
        *found = true;
    }
    pthread_rwlock_unlock(&s->lock);
    return KILN_OK;
}

typedef struct key_ref {
    const uint8_t *p;
    size_t len;
} key_ref;

static int ref_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    return kv_key_cmp(x->p, x->len, y->p, y->len);
}

/* Sort the candidates and emit the first max into a page. */
static int emit_sorted(key_ref *refs, size_t n, size_t max, kiln_kv_page *out)
{
    qsort(refs, n, sizeof(*refs), ref_cmp);
    kv_page_builder b;
    kv_pb_init(&b, out);
    for (size_t i = 0; i < n && i < max; i++) {
        if (kv_pb_add(&b, refs[i].p, refs[i].len) != KILN_OK) {
            kv_pb_abort(&b);
            return KILN_ENOMEM;
        }
    }
    kv_pb_finish(&b);
    out->more = n > max;
    return KILN_OK;
}

static int mem_list(kiln_kv_store *st, const char *ns, const void *prefix, size_t plen,
                    const void *after, size_t alen, size_t max, kiln_kv_page *out)
{
    mem_store *s = (mem_store *)st;
    int64_t now = kiln_kv_now_ms();
    memset(out, 0, sizeof(*out));
    int rc = KILN_OK;
    pthread_rwlock_rdlock(&s->lock);
    mem_ns *n = ns_find(s, ns);
    if (n != NULL && n->count > 0) {
        /* A hash table has no order: collect the candidates, sort them. The
         * namespace's key limit bounds this. */
        key_ref *refs = kiln_malloc(n->count * sizeof(*refs));
        size_t k = 0;
        if (refs == NULL) {
            rc = KILN_ENOMEM;
        } else {
            for (size_t b = 0; b < n->nbuckets; b++)
                for (mem_entry *e = n->buckets[b]; e != NULL; e = e->next)
                    if (live(e, now) && kv_has_prefix(e->key, e->klen, prefix, plen) &&
                        (alen == 0 || kv_key_cmp(e->key, e->klen, after, alen) > 0))
                        refs[k++] = (key_ref){e->key, e->klen};
            rc = emit_sorted(refs, k, max, out);
            kiln_free(refs);
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

static int mem_namespaces(kiln_kv_store *st, const void *after, size_t alen, size_t max,
                          kiln_kv_page *out)
{
    mem_store *s = (mem_store *)st;
    int64_t now = kiln_kv_now_ms();
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&s->lock);
    size_t total = 0;
    for (size_t i = 0; i < NS_BUCKETS; i++)
        for (mem_ns *n = s->ns[i]; n != NULL; n = n->next)
            total++;
    key_ref *refs = kiln_malloc((total ? total : 1) * sizeof(*refs));
    int rc = refs ? KILN_OK : KILN_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; refs != NULL && i < NS_BUCKETS; i++) {
        for (mem_ns *n = s->ns[i]; n != NULL; n = n->next) {
            bool any = false;
            for (size_t b = 0; b < n->nbuckets && !any; b++)
                for (mem_entry *e = n->buckets[b]; e != NULL && !any; e = e->next)
                    any = live(e, now);
            size_t len = strlen(n->name);
            if (any && (alen == 0 || kv_key_cmp(n->name, len, after, alen) > 0))
                refs[k++] = (key_ref){(const uint8_t *)n->name, len};
        }
    }
    if (rc == KILN_OK)
        rc = emit_sorted(refs, k, max, out);
    kiln_free(refs);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

static void mem_close(kiln_kv_store *st)
{
    mem_store *s = (mem_store *)st;
    for (size_t i = 0; i < NS_BUCKETS; i++) {
        for (mem_ns *n = s->ns[i], *nn; n != NULL; n = nn) {
            nn = n->next;
            for (size_t b = 0; b < n->nbuckets; b++)
                for (mem_entry *e = n->buckets[b], *ne; e != NULL; e = ne) {
                    ne = e->next;
                    entry_free(e);
                }
            kiln_free(n->buckets);
            kiln_free(n);
        }
    }
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++)
        ev_free_list(s->q[i].head);
    kiln_free(s->subs);
    kiln_free(s->q);
    ev_free_list(s->dead);
    pthread_rwlock_destroy(&s->lock);
    kiln_free(s);
}

static const kiln_kv_ops mem_ops = {
    .name = "memory",
    .get = mem_get,
    .set = mem_set,
    .del = mem_del,
    .incr = mem_incr,
    .expire = mem_expire,
    .list = mem_list,
    .namespaces = mem_namespaces,
    .close = mem_close,
    .subscribe = mem_subscribe,
    .events_read = mem_events_read,
    .events_done = mem_events_done,
    .events_tried = mem_events_tried,
    .events_stats = mem_events_stats,
    .events_dead = mem_events_dead,
};

int kiln_kv_mem_open(kiln_kv_store **out, kiln_err *err)
{
    *out = NULL;
    mem_store *s = kiln_calloc(1, sizeof(*s));
    if (s == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "in-memory KV store: out of memory");
    if (pthread_rwlock_init(&s->lock, NULL) != 0) {
        kiln_free(s);
        return kiln_err_set(err, KILN_ENOMEM, "in-memory KV store: cannot create its lock");
    }
    s->base.ops = &mem_ops;
    *out = &s->base;
    return KILN_OK;
}
