/*
 * kv_events.c - pieces of storage events (kv.h "storage events") that both
 * backends share: a private copy of the subscription set, the builder of an
 * event page (every pointer of a kiln_kv_events points into its one data
 * buffer), and the rate-limited log line of a full queue. The queues
 * themselves live in the backends, written with the KV write they describe.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "store/kv_int.h"

kv_subset *kv_subset_copy(const kiln_kv_sub *subs, size_t n)
{
    size_t bytes = sizeof(kv_subset) + n * sizeof(kiln_kv_sub);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(subs[i].fn) + strlen(subs[i].ns) + 2;
    kv_subset *set = kiln_malloc(bytes);
    if (set == NULL)
        return NULL;
    set->subs = (kiln_kv_sub *)(set + 1);
    set->n = n;
    char *sp = (char *)(set->subs + n);
    for (size_t i = 0; i < n; i++) {
        kiln_kv_sub *d = &set->subs[i];
        *d = subs[i];
        size_t a = strlen(subs[i].fn) + 1, b = strlen(subs[i].ns) + 1;
        memcpy(sp, subs[i].fn, a);
        d->fn = sp;
        sp += a;
        memcpy(sp, subs[i].ns, b);
        d->ns = sp;
        sp += b;
        if (d->max_queue == 0)
            d->max_queue = KILN_KV_DEFAULT_MAX_EVENTS;
        d->types &= KILN_KV_EV_ALL;
    }
    return set;
}

bool kv_subset_has(const kv_subset *set, const char *fn, const char *ns)
{
    for (size_t i = 0; set != NULL && i < set->n; i++)
        if (strcmp(set->subs[i].fn, fn) == 0 && strcmp(set->subs[i].ns, ns) == 0)
            return true;
    return false;
}

/* ---- event pages ---------------------------------------------------------------- */

/* While building, the pointer fields hold offsets into data + 1 (0 = NULL),
 * since data may move as it grows; finish turns them into pointers. */
void kv_evb_init(kv_evb *b, kiln_kv_events *out)
{
    memset(out, 0, sizeof(*out));
    memset(b, 0, sizeof(*b));
    b->out = out;
}

static int put_bytes(kv_evb *b, const void *p, size_t n, bool nul, uintptr_t *off)
{
    if (p == NULL && !nul) {
        *off = 0;
        return KILN_OK;
    }
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *d = kiln_realloc(b->out->data, cap);
        if (d == NULL)
            return KILN_ENOMEM;
        b->out->data = d;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->out->data + b->len, p, n);
    b->out->data[b->len + n] = 0;
    *off = b->len + 1;
    b->len += n + 1;
    return KILN_OK;
}

int kv_evb_add(kv_evb *b, const kiln_kv_qevent *e)
{
    kiln_kv_events *o = b->out;
    if (o->n == b->cap_ev) {
        size_t cap = b->cap_ev ? b->cap_ev * 2 : 16;
        kiln_kv_qevent *a = kiln_realloc(o->ev, cap * sizeof(*a));
        if (a == NULL)
            return KILN_ENOMEM;
        o->ev = a;
        b->cap_ev = cap;
    }
    kiln_kv_qevent *d = &o->ev[o->n];
    *d = *e;
    uintptr_t fn, ns, key, pl, cause;
    int rc = put_bytes(b, e->fn, e->fn ? strlen(e->fn) : 0, false, &fn);
    if (rc == KILN_OK)
        rc = put_bytes(b, e->ns, e->ns ? strlen(e->ns) : 0, false, &ns);
    if (rc == KILN_OK)
        rc = put_bytes(b, e->key, e->klen, true, &key);
    if (rc == KILN_OK)
        rc = put_bytes(b, e->payload, e->plen, true, &pl);
    if (rc == KILN_OK)
        rc = put_bytes(b, e->cause, e->cause ? strlen(e->cause) : 0, false, &cause);
    if (rc != KILN_OK)
        return rc;
    d->fn = (const char *)fn;
    d->ns = (const char *)ns;
    d->key = (const uint8_t *)key;
    d->payload = (const uint8_t *)pl;
    d->cause = (const char *)cause;
    o->n++;
    return KILN_OK;
}

#define FIX(T, f) ((f) = (uintptr_t)(f) ? (T)(o->data + (uintptr_t)(f) - 1) : NULL)

void kv_evb_finish(kv_evb *b)
{
    kiln_kv_events *o = b->out;
    for (size_t i = 0; i < o->n; i++) {
        kiln_kv_qevent *e = &o->ev[i];
        FIX(const char *, e->fn);
        FIX(const char *, e->ns);
        FIX(const uint8_t *, e->key);
        FIX(const uint8_t *, e->payload);
        FIX(const char *, e->cause);
    }
}

void kv_evb_abort(kv_evb *b)
{
    kiln_kv_events_fini(b->out);
}

void kiln_kv_events_fini(kiln_kv_events *e)
{
    if (e == NULL)
        return;
    kiln_free(e->ev);
    kiln_free(e->data);
    memset(e, 0, sizeof(*e));
}

/* ---- a full queue: log it, but not for every refused write ------------------------ */

#define QFULL_SLOTS 64
#define QFULL_INTERVAL_MS 60000

static _Atomic int64_t qfull_logged[QFULL_SLOTS];

void kv_log_queue_full(const void *store, const char *fn, const char *ns, uint64_t max_queue)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)(uintptr_t)store;
    for (const char *p = fn; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    _Atomic int64_t *slot = &qfull_logged[h % QFULL_SLOTS];
    int64_t now = kiln_kv_now_ms(), last = atomic_load(slot);
    if ((last != 0 && now - last < QFULL_INTERVAL_MS) ||
        !atomic_compare_exchange_strong(slot, &last, now))
        return;
    kv_log("events: function '%s' has %" PRIu64 " events queued, its limit (events.max_queue): "
           "a write to namespace '%s' was refused (the writer got ELIMIT) so that no event is "
           "lost; the function is not keeping up or is failing: check its log, or raise "
           "events.max_queue (not logged again for this function for 60 s)",
           fn, max_queue, ns);
}

int64_t kv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
