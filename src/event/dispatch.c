/*
 * dispatch.c - the event dispatcher (event.h): one thread with its own loop
 * takes each subscriber's queued events from its store into a window, starts
 * deliveries on the workers (a task per event), and on their completion
 * removes handled events from the queue, retries failed ones after a
 * backoff timer, or dead-letters them once their retries are spent.
 *
 * Order per key: the window is in id (commit) order; an event may start only
 * when no earlier event of its key is in the window, and an event leaves the
 * window only once its removal from the store committed. So the next event
 * of a key starts after the previous one is handled and durably gone, even
 * across retries and restarts (at least once, never reordered).
 *
 * Everything here runs on the dispatcher's thread except ev_notify (a
 * store's writer), job_start/job_done (the worker running the delivery) and
 * ev_dispatcher_update/free (the server's main thread), which talk to it by
 * posts to its loop.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/metrics.h"
#include "event/event.h"

_Static_assert(KILN_KV_EV_ADDED == KILN_EVENT_OBJECT_ADDED &&
                   KILN_KV_EV_REMOVED == KILN_EVENT_OBJECT_REMOVED &&
                   KILN_KV_EV_UPDATED == KILN_EVENT_OBJECT_UPDATED,
               "kv.h event types follow handler.h");

#define POLL_MS 1000 /* look for events other processes queued (kiln kv) */

/* Owners of targets, reference counted by the dispatcher's thread. */
typedef struct ev_gen {
    struct ev_gen *next;
    struct ev_dispatcher *d;
    void *owner;
    void (*release)(void *owner);
    ev_target *targets;
    size_t n;
    long refs; /* subscribers pointing into it + deliveries running on it */
} ev_gen;

enum { IT_QUEUED, IT_RUNNING, IT_WAITING, IT_OK, IT_DEAD };

typedef struct ev_sub ev_sub;

typedef struct ev_item {
    struct ev_item *next;
    ev_sub *sub;
    uint64_t id;
    unsigned type;
    int64_t ts_ns;
    uint8_t *key, *payload; /* key and payload in one allocation (key first) */
    size_t klen, plen;
    int st;
    uint32_t attempts; /* made so far */
    kl_timer timer;
    char cause[300];
} ev_item;

struct ev_sub {
    struct ev_sub *next;
    ev_dispatcher *d;
    ev_target t;       /* points into gen */
    ev_gen *gen;
    ev_item *head, *tail;
    size_t n_items;
    uint64_t last_id;  /* highest id loaded */
    bool more;         /* the store may hold events after last_id */
    bool retired;      /* no longer subscribed: finishes what runs, then freed */
    unsigned running;
    char source[80];   /* "kv:NS" */
    uint32_t m_delivered, m_failed, m_retried, m_depth, m_refused;
};

/* One delivery, from its start on a worker to its end back here. */
typedef struct ev_job {
    kl_task task;
    ev_dispatcher *d;
    ev_item *item;
    ev_gen *gen; /* the generation t points into (a reference) */
    ev_target t;
    kiln_event ev;
    kl_loop *loop;
    int rc;
    kiln_err err;
} ev_job;

struct ev_dispatcher {
    ev_host host;
    kl_loop *loop;
    pthread_t tid;
    atomic_bool stop;   /* main thread -> dispatcher */
    bool stopping;      /* dispatcher: start nothing new */
    atomic_bool notified;
    ev_sub *subs;
    ev_gen *gens;
    kl_timer poll;
    /* main thread: the targets last installed (their stores are subscribed) */
    ev_target *last;
    size_t n_last;
};

static void pump(ev_dispatcher *d);

static void ev_log(const char *fmt, ...) KILN_PRINTF(1, 2);
static void ev_log(const char *fmt, ...)
{
    char line[1400];
    int n = snprintf(line, sizeof(line), "kiln events: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len); /* one write: lines of threads never interleave */
    (void)w;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t metric(metrics_type type, const char *base, const char *fn)
{
    char name[METRICS_NAME_MAX + 1];
    int n = snprintf(name, sizeof(name), "%s{function=\"%s\"}", base, fn);
    uint32_t id = UINT32_MAX;
    if (n > 0 && (size_t)n < sizeof(name) && metrics_define(type, name, (size_t)n, &id) != KILN_OK)
        id = UINT32_MAX;
    return id;
}

static void gen_put(ev_dispatcher *d, ev_gen *g)
{
    if (--g->refs > 0)
        return;
    for (ev_gen **pp = &d->gens; *pp != NULL; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    if (g->release != NULL)
        g->release(g->owner);
    kiln_free(g->targets);
    kiln_free(g);
}

/* ---- the window ---------------------------------------------------------------- */

static void item_free(ev_item *it)
{
    kiln_free(it->key);
    kiln_free(it);
}

static void refill(ev_sub *s)
{
    if (!s->more || s->retired || s->n_items >= EV_WINDOW)
        return;
    kiln_kv_events page;
    size_t want = EV_WINDOW - s->n_items;
    int rc = s->t.store->ops->events_read(s->t.store, s->t.fn_name, s->last_id, want, &page);
    if (rc != KILN_OK) {
        ev_log("function '%s': cannot read its queued events (%s); trying again in a second",
               s->t.fn_name, kiln_strerror(rc));
        return;
    }
    s->more = page.n == want;
    for (size_t i = 0; i < page.n; i++) {
        const kiln_kv_qevent *e = &page.ev[i];
        ev_item *it = kiln_calloc(1, sizeof(*it));
        uint8_t *bytes = it ? kiln_malloc(e->klen + e->plen + 1) : NULL;
        if (bytes == NULL) {
            kiln_free(it);
            s->more = true; /* the rest later */
            break;
        }
        memcpy(bytes, e->key, e->klen);
        if (e->plen)
            memcpy(bytes + e->klen, e->payload, e->plen);
        *it = (ev_item){.sub = s, .id = e->id, .type = e->type, .ts_ns = e->ts_ns, .key = bytes,
                        .payload = bytes + e->klen, .klen = e->klen, .plen = e->plen,
                        .st = IT_QUEUED, .attempts = e->attempts};
        if (s->tail != NULL)
            s->tail->next = it;
        else
            s->head = it;
        s->tail = it;
        s->n_items++;
        s->last_id = e->id;
    }
    kiln_kv_events_fini(&page);
}

/* Remove finished events from the store, then from the window. */
static void flush(ev_sub *s)
{
    uint64_t ids[EV_WINDOW];
    const char *causes[EV_WINDOW];
    uint32_t attempts[EV_WINDOW];
    size_t n = 0;
    bool dead = false;
    for (ev_item *it = s->head; it != NULL && n < EV_WINDOW; it = it->next) {
        if (it->st != IT_OK && it->st != IT_DEAD)
            continue;
        ids[n] = it->id;
        causes[n] = it->st == IT_DEAD ? it->cause : NULL;
        dead |= it->st == IT_DEAD;
        attempts[n++] = it->attempts;
    }
    if (n == 0)
        return;
    int rc = s->t.store->ops->events_done(s->t.store, s->t.fn_name, ids, dead ? causes : NULL,
                                          attempts, n);
    if (rc != KILN_OK) {
        /* They stay in the window (and block their keys) until it works. */
        ev_log("function '%s': cannot remove %zu finished event(s) from the queue (%s); "
               "trying again in a second",
               s->t.fn_name, n, kiln_strerror(rc));
        return;
    }
    for (ev_item **pp = &s->head, *prev = NULL; *pp != NULL;) {
        ev_item *it = *pp;
        if (it->st == IT_OK || it->st == IT_DEAD) {
            *pp = it->next;
            if (s->tail == it)
                s->tail = prev;
            s->n_items--;
            item_free(it);
        } else {
            prev = it;
            pp = &it->next;
        }
    }
}

/* ---- deliveries -------------------------------------------------------------------- */

static void job_finished(void *arg);

static int job_run(void *arg)
{
    ev_job *j = arg;
    memset(&j->err, 0, sizeof(j->err));
    j->rc = ev_deliver(&j->t, &j->ev, &j->err);
    return j->rc;
}

static void job_task_done(kl_task *t, int result)
{
    (void)result;
    ev_job *j = t->arg;
    if (kl_post(j->d->loop, job_finished, j) != KILN_OK)
        ev_log("function '%s': out of memory reporting event %" PRIu64 " done", j->t.fn_name,
               j->ev.id);
}

/* On the worker's thread: run the delivery as a task there. */
static void job_start(void *arg)
{
    ev_job *j = arg;
    j->task.done = job_task_done;
    j->task.arg = j;
    memset(&j->err, 0, sizeof(j->err));
    if (kl_task_start(j->loop, &j->task, &j->t.fn->limits, job_run, j, &j->err) != KILN_OK) {
        j->rc = KILN_ENOMEM;
        if (j->err.msg[0] == '\0')
            kiln_err_set(&j->err, KILN_ENOMEM, "no stack for the delivery");
        job_task_done(&j->task, j->rc);
    }
}

static void start(ev_dispatcher *d, ev_sub *s, ev_item *it)
{
    ev_job *j = kiln_calloc(1, sizeof(*j));
    kl_loop *l = d->host.pick(d->host.ctx);
    if (j == NULL || l == NULL) {
        kiln_free(j);
        return; /* stays queued: the next pump tries again */
    }
    it->attempts++;
    it->st = IT_RUNNING;
    s->running++;
    s->gen->refs++;
    *j = (ev_job){.d = d, .item = it, .gen = s->gen, .t = s->t, .loop = l};
    j->ev = (kiln_event){.type = (kiln_event_type)it->type, .timestamp_ns = it->ts_ns,
                         .version = "1", .source = s->source, .key = it->key,
                         .key_len = it->klen, .payload = it->payload, .payload_len = it->plen,
                         .id = it->id, .attempt = it->attempts};
    if (kl_post(l, job_start, j) != KILN_OK) {
        it->attempts--;
        it->st = IT_QUEUED;
        s->running--;
        s->gen->refs--;
        kiln_free(j);
    }
}

static void retry_due(kl_timer *t)
{
    ev_item *it = t->arg;
    it->st = IT_QUEUED;
    pump(it->sub->d);
}

static void sub_free(ev_dispatcher *d, ev_sub *s)
{
    for (ev_item *it = s->head, *n; it != NULL; it = n) {
        n = it->next;
        if (it->timer.slot != 0)
            kl_timer_stop(d->loop, &it->timer);
        item_free(it);
    }
    gen_put(d, s->gen);
    kiln_free(s);
}

/* Back on the dispatcher's thread: account for the attempt. */
static void job_finished(void *arg)
{
    ev_job *j = arg;
    ev_dispatcher *d = j->d;
    ev_item *it = j->item;
    ev_sub *s = it->sub;
    s->running--;
    if (j->rc == KILN_OK) {
        it->st = IT_OK;
        metrics_add(s->m_delivered, 1);
    } else if (it->attempts <= s->t.retries && !s->retired) {
        /* Backoff: backoff_ms, doubling per attempt, capped. */
        uint64_t ms = s->t.backoff_ms;
        for (uint32_t k = 1; k < it->attempts && ms < EV_MAX_BACKOFF_MS; k++)
            ms *= 2;
        if (ms > EV_MAX_BACKOFF_MS)
            ms = EV_MAX_BACKOFF_MS;
        /* Recorded, so that a restart goes on counting (rare: failures only). */
        if (s->t.store->ops->events_tried(s->t.store, s->t.fn_name, &it->id, &it->attempts, 1) !=
            KILN_OK)
            ev_log("function '%s': cannot record the attempts of event %" PRIu64
                   " (a restart would count them from 1 again)",
                   s->t.fn_name, it->id);
        it->st = IT_WAITING;
        it->timer = (kl_timer){.cb = retry_due, .arg = it};
        kl_timer_start(d->loop, &it->timer, mono_ns() + ms * 1000000u);
        metrics_add(s->m_retried, 1);
    } else if (s->retired) {
        it->st = IT_QUEUED; /* dropped with the subscription */
    } else {
        const char *why = j->err.msg[0] ? j->err.msg : kiln_strerror(j->rc);
        size_t wl = strnlen(why, sizeof(it->cause) - 1);
        memcpy(it->cause, why, wl);
        it->cause[wl] = '\0';
        it->st = IT_DEAD;
        metrics_add(s->m_failed, 1);
        char key[120];
        size_t o = 0;
        for (size_t i = 0; i < it->klen && o + 5 < sizeof(key); i++) {
            uint8_t c = it->key[i];
            o += (size_t)(c >= 0x20 && c < 0x7f && c != '\\'
                              ? snprintf(key + o, sizeof(key) - o, "%c", c)
                              : snprintf(key + o, sizeof(key) - o, "\\x%02x", c));
        }
        key[o] = '\0';
        ev_log("function '%s': event %" PRIu64 " (%s of key '%s' in %s) failed %" PRIu32
               " time(s), giving up: %s; it is kept in the dead letters (kiln kv dead)",
               s->t.fn_name, it->id, kiln_event_type_name((kiln_event_type)it->type), key,
               s->source, it->attempts, it->cause);
    }
    gen_put(d, j->gen);
    kiln_free(j);
    pump(d);
}

/* Start what may start: per sub, events whose key has no earlier event in
 * the window. A small open-addressing set of the keys seen so far. */
static uint64_t key_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void schedule(ev_dispatcher *d, ev_sub *s)
{
    ev_item *seen[EV_WINDOW * 2];
    memset(seen, 0, sizeof(seen));
    const size_t mask = EV_WINDOW * 2 - 1;
    for (ev_item *it = s->head; it != NULL; it = it->next) {
        size_t h = (size_t)key_hash(it->key, it->klen) & mask;
        bool blocked = false;
        while (seen[h] != NULL) {
            if (seen[h]->klen == it->klen && memcmp(seen[h]->key, it->key, it->klen) == 0) {
                blocked = true;
                break;
            }
            h = (h + 1) & mask;
        }
        if (blocked)
            continue;
        seen[h] = it;
        if (it->st == IT_QUEUED && s->running < EV_MAX_RUNNING && !d->stopping && !s->retired &&
            s->t.available)
            start(d, s, it);
    }
}

static void gauges(ev_sub *s)
{
    uint64_t depth = 0, refused = 0;
    if (s->t.store->ops->events_stats(s->t.store, s->t.fn_name, &depth, &refused) == KILN_OK) {
        metrics_record(s->m_depth, depth);
        int64_t have = 0;
        if (metrics_get(s->m_refused, &have) == KILN_OK && (uint64_t)have < refused)
            metrics_add(s->m_refused, (int64_t)(refused - (uint64_t)have));
    }
}

static void pump(ev_dispatcher *d)
{
    for (ev_sub **pp = &d->subs; *pp != NULL;) {
        ev_sub *s = *pp;
        if (s->retired && s->running == 0) {
            *pp = s->next;
            sub_free(d, s);
            continue;
        }
        if (!s->retired) {
            flush(s);
            refill(s);
            schedule(d, s);
        }
        pp = &s->next;
    }
}

static void on_notify(void *arg)
{
    ev_dispatcher *d = arg;
    atomic_store(&d->notified, false);
    for (ev_sub *s = d->subs; s != NULL; s = s->next)
        s->more = true;
    pump(d);
}

/* A store's writer committed events (any thread). */
static void ev_notify(void *arg)
{
    ev_dispatcher *d = arg;
    if (!atomic_exchange(&d->notified, true) && kl_post(d->loop, on_notify, d) != KILN_OK)
        atomic_store(&d->notified, false); /* the poll timer picks them up */
}

static void on_poll(kl_timer *t)
{
    ev_dispatcher *d = t->arg;
    for (ev_sub *s = d->subs; s != NULL; s = s->next) {
        s->more = true;
        if (!s->retired)
            gauges(s);
    }
    pump(d);
    kl_timer_start(d->loop, &d->poll, mono_ns() + (uint64_t)POLL_MS * 1000000u);
}

/* ---- installing targets ------------------------------------------------------------- */

static void install(void *arg)
{
    ev_gen *g = arg;
    ev_dispatcher *d = g->d;
    g->next = d->gens;
    d->gens = g;
    g->refs++; /* held while installing */
    bool *matched = kiln_calloc(g->n ? g->n : 1, sizeof(*matched));
    for (ev_sub *s = d->subs; s != NULL; s = s->next) {
        if (s->retired)
            continue;
        size_t i = 0;
        while (i < g->n && !(g->targets[i].store == s->t.store &&
                             strcmp(g->targets[i].fn_name, s->t.fn_name) == 0 &&
                             strcmp(g->targets[i].ns, s->t.ns) == 0))
            i++;
        if (i == g->n || matched == NULL || matched[i]) {
            s->retired = true;
            for (ev_item *it = s->head; it != NULL; it = it->next)
                if (it->timer.slot != 0)
                    kl_timer_stop(d->loop, &it->timer);
            continue;
        }
        matched[i] = true;
        ev_gen *old = s->gen;
        s->t = g->targets[i];
        s->gen = g;
        g->refs++;
        s->more = true;
        gen_put(d, old);
    }
    for (size_t i = 0; i < g->n; i++) {
        if (matched == NULL || matched[i])
            continue;
        ev_sub *s = kiln_calloc(1, sizeof(*s));
        if (s == NULL) {
            ev_log("function '%s': out of memory: its events are not delivered",
                   g->targets[i].fn_name);
            continue;
        }
        s->d = d;
        s->t = g->targets[i];
        s->gen = g;
        g->refs++;
        s->more = true;
        snprintf(s->source, sizeof(s->source), "kv:%s", s->t.ns);
        const char *fn = s->t.fn_name;
        s->m_delivered = metric(METRICS_COUNTER, "kiln_events_delivered_total", fn);
        s->m_failed = metric(METRICS_COUNTER, "kiln_events_failed_total", fn);
        s->m_retried = metric(METRICS_COUNTER, "kiln_events_retried_total", fn);
        s->m_refused = metric(METRICS_COUNTER, "kiln_events_refused_writes_total", fn);
        s->m_depth = metric(METRICS_GAUGE, "kiln_events_queue_depth", fn);
        s->next = d->subs;
        d->subs = s;
        gauges(s);
    }
    kiln_free(matched);
    gen_put(d, g);
    pump(d);
}

static void nothing(void *arg)
{
    (void)arg;
}

static bool any_running(const ev_dispatcher *d)
{
    for (const ev_sub *s = d->subs; s != NULL; s = s->next)
        if (s->running > 0)
            return true;
    return false;
}

static void *dispatcher_main(void *arg)
{
    ev_dispatcher *d = arg;
    kl_bind(d->loop);
    d->poll = (kl_timer){.cb = on_poll, .arg = d};
    kl_timer_start(d->loop, &d->poll, mono_ns() + (uint64_t)POLL_MS * 1000000u);
    for (;;) {
        if (atomic_load(&d->stop))
            d->stopping = true;
        if (d->stopping && !any_running(d))
            break;
        kl_run_once(d->loop, 1000);
    }
    kl_timer_stop(d->loop, &d->poll);
    /* What finished is removed from the queues; the rest stays for the
     * next start. */
    for (ev_sub *s = d->subs; s != NULL; s = s->next)
        flush(s);
    while (d->subs != NULL) {
        ev_sub *s = d->subs;
        d->subs = s->next;
        sub_free(d, s);
    }
    kl_bind(NULL);
    return NULL;
}

int ev_dispatcher_new(const ev_host *h, ev_dispatcher **out, kiln_err *err)
{
    *out = NULL;
    ev_dispatcher *d = kiln_calloc(1, sizeof(*d));
    if (d == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory starting the event dispatcher");
    d->host = *h;
    atomic_init(&d->stop, false);
    atomic_init(&d->notified, false);
    if (kl_loop_new(&d->loop, err) != KILN_OK) {
        kiln_free(d);
        return KILN_EIO;
    }
    int rc = pthread_create(&d->tid, NULL, dispatcher_main, d);
    if (rc != 0) {
        kl_loop_free(d->loop);
        kiln_free(d);
        return kiln_err_set(err, KILN_EIO, "cannot start the event dispatcher's thread: %s",
                            strerror(rc));
    }
    *out = d;
    return KILN_OK;
}

/* Subscribe `store` to the targets of `t` that live in it (notify: d or none). */
static int subscribe_store(ev_dispatcher *d, kiln_kv_store *store, const ev_target *t, size_t n,
                           bool notify)
{
    kiln_kv_sub *subs = kiln_calloc(n ? n : 1, sizeof(*subs));
    if (subs == NULL)
        return KILN_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].store == store)
            subs[m++] = (kiln_kv_sub){t[i].fn_name, t[i].ns, t[i].types, t[i].max_queue};
    int rc = store->ops->subscribe(store, subs, m, notify ? ev_notify : NULL, notify ? d : NULL);
    if (rc != KILN_OK)
        ev_log("cannot subscribe to the key-value store (%s): events of its namespaces are "
               "neither queued nor delivered",
               kiln_strerror(rc));
    kiln_free(subs);
    return rc;
}

int ev_dispatcher_update(ev_dispatcher *d, const ev_target *targets, size_t n, void *owner,
                         void (*retain)(void *owner), void (*release)(void *owner))
{
    int result = KILN_OK;
    /* Every store of the new set, and those of the previous one (they drop
     * the events of functions that left). */
    for (size_t pass = 0; pass < 2; pass++) {
        const ev_target *set = pass == 0 ? targets : d->last;
        size_t sn = pass == 0 ? n : d->n_last;
        for (size_t i = 0; i < sn; i++) {
            kiln_kv_store *st = set[i].store;
            bool done = false;
            for (size_t j = 0; j < i && !done; j++)
                done = set[j].store == st;
            for (size_t j = 0; pass == 1 && j < n && !done; j++)
                done = targets[j].store == st;
            if (done)
                continue;
            int rc = subscribe_store(d, st, targets, n, true);
            if (rc != KILN_OK)
                result = rc;
        }
    }
    ev_gen *g = kiln_calloc(1, sizeof(*g));
    ev_target *copy = kiln_calloc(n ? n : 1, sizeof(*copy));
    ev_target *last = kiln_calloc(n ? n : 1, sizeof(*last));
    if (g == NULL || copy == NULL || last == NULL) {
        kiln_free(g);
        kiln_free(copy);
        kiln_free(last);
        ev_log("out of memory: the new subscriptions are not delivered");
        if (retain != NULL)
            retain(owner);
        if (release != NULL)
            release(owner);
        return KILN_ENOMEM;
    }
    if (n > 0) {
        memcpy(copy, targets, n * sizeof(*copy));
        memcpy(last, targets, n * sizeof(*last));
    }
    kiln_free(d->last);
    d->last = last;
    d->n_last = n;
    if (retain != NULL)
        retain(owner);
    *g = (ev_gen){.owner = owner, .release = release, .targets = copy, .n = n, .d = d};
    if (kl_post(d->loop, install, g) != KILN_OK) {
        ev_log("out of memory: the new subscriptions are not delivered");
        if (release != NULL)
            release(owner);
        kiln_free(copy);
        kiln_free(g);
        return KILN_ENOMEM;
    }
    return result;
}

void ev_dispatcher_free(ev_dispatcher *d)
{
    if (d == NULL)
        return;
    /* No notification may reach d once it is freed. */
    for (size_t i = 0; i < d->n_last; i++) {
        bool done = false;
        for (size_t j = 0; j < i && !done; j++)
            done = d->last[j].store == d->last[i].store;
        if (!done)
            subscribe_store(d, d->last[i].store, d->last, d->n_last, false);
    }
    atomic_store(&d->stop, true);
    kl_post(d->loop, nothing, NULL);
    pthread_join(d->tid, NULL);
    kl_loop_free(d->loop);
    kiln_free(d->last);
    kiln_free(d);
}
