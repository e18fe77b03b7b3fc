/*
 * metrics.c - the process-wide metrics registry (metrics.h): a fixed array
 * of entries published by an atomic count, so readers and updaters never
 * lock; only metrics_define takes the mutex, to keep names unique.
 */
#include "base/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "kiln/kiln.h"

typedef struct metric {
    char name[METRICS_NAME_MAX + 1];
    metrics_type type;
    _Atomic int64_t value;                   /* counter, gauge; histogram: sum */
    _Atomic uint64_t count;                  /* histogram observations */
    _Atomic uint64_t buckets[METRICS_BUCKETS]; /* not cumulative */
} metric;

static metric table[METRICS_MAX];
static atomic_uint n_defined;
static pthread_mutex_t define_lock = PTHREAD_MUTEX_INITIALIZER;

int metrics_define(metrics_type type, const char *name, size_t len, uint32_t *id)
{
    if (len == 0 || len > METRICS_NAME_MAX || memchr(name, '\0', len) != NULL ||
        (unsigned)type > METRICS_HISTOGRAM)
        return KILN_EINVAL;
    pthread_mutex_lock(&define_lock);
    unsigned n = atomic_load(&n_defined);
    for (unsigned i = 0; i < n; i++)
        if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0) {
            pthread_mutex_unlock(&define_lock);
            if (table[i].type != type)
                return KILN_EINVAL;
            *id = i;
            return KILN_OK;
        }
    if (n == METRICS_MAX) {
        pthread_mutex_unlock(&define_lock);
        return KILN_ELIMIT;
    }
    memcpy(table[n].name, name, len);
    table[n].name[len] = '\0';
    table[n].type = type;
    /* Publish: readers see the entry complete once the count covers it. */
    atomic_store_explicit(&n_defined, n + 1, memory_order_release);
    pthread_mutex_unlock(&define_lock);
    *id = n;
    return KILN_OK;
}

static metric *get(uint32_t id)
{
    return id < atomic_load_explicit(&n_defined, memory_order_acquire) ? &table[id] : NULL;
}

int metrics_add(uint32_t id, int64_t delta)
{
    metric *m = get(id);
    if (m == NULL || m->type == METRICS_HISTOGRAM || (m->type == METRICS_COUNTER && delta < 0))
        return KILN_EINVAL;
    atomic_fetch_add_explicit(&m->value, delta, memory_order_relaxed);
    return KILN_OK;
}

int metrics_record(uint32_t id, uint64_t v)
{
    metric *m = get(id);
    if (m == NULL)
        return KILN_EINVAL;
    if (m->type == METRICS_COUNTER) {
        atomic_fetch_add_explicit(&m->value, (int64_t)v, memory_order_relaxed);
    } else if (m->type == METRICS_GAUGE) {
        atomic_store_explicit(&m->value, (int64_t)v, memory_order_relaxed);
    } else {
        unsigned b = 0;
        while (b < METRICS_BUCKETS - 1 && v > ((uint64_t)1 << b))
            b++;
        atomic_fetch_add_explicit(&m->buckets[b], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->value, (int64_t)v, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    }
    return KILN_OK;
}

int metrics_get(uint32_t id, int64_t *v)
{
    metric *m = get(id);
    if (m == NULL || m->type == METRICS_HISTOGRAM)
        return KILN_EINVAL;
    *v = atomic_load_explicit(&m->value, memory_order_relaxed);
    return KILN_OK;
}

int metrics_type_of(uint32_t id, metrics_type *t)
{
    metric *m = get(id);
    if (m == NULL)
        return KILN_EINVAL;
    *t = m->type;
    return KILN_OK;
}

typedef struct out {
    char *s;
    size_t len, cap;
    bool oom;
} out;

static void put(out *o, const char *fmt, ...) KILN_PRINTF(2, 3);
static void put(out *o, const char *fmt, ...)
{
    for (;;) {
        if (o->oom)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->s ? o->s + o->len : NULL, o->s ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if (o->s != NULL && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 4096;
        while (cap < o->len + (size_t)n + 1)
            cap *= 2;
        char *g = kiln_realloc(o->s, cap);
        if (g == NULL) {
            o->oom = true;
            return;
        }
        o->s = g;
        o->cap = cap;
    }
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static void prom_name(const char *in, char *outn)
{
    size_t i = 0;
    for (; in[i]; i++) {
        char c = in[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        outn[i] = ok ? c : '_';
    }
    outn[i] = '\0';
}

char *metrics_prometheus(size_t *len)
{
    out o = {NULL, 0, 0, false};
    put(&o, "%s", "");
    unsigned n = atomic_load_explicit(&n_defined, memory_order_acquire);
    static const char *const types[] = {"counter", "gauge", "histogram"};
    for (unsigned i = 0; i < n; i++) {
        metric *m = &table[i];
        char name[METRICS_NAME_MAX + 1];
        prom_name(m->name, name);
        put(&o, "# TYPE %s %s\n", name, types[m->type]);
        if (m->type != METRICS_HISTOGRAM) {
            put(&o, "%s %lld\n", name, (long long)atomic_load(&m->value));
            continue;
        }
        uint64_t cum = 0;
        for (unsigned b = 0; b < METRICS_BUCKETS - 1; b++) {
            cum += atomic_load(&m->buckets[b]);
            put(&o, "%s_bucket{le=\"%llu\"} %llu\n", name, (unsigned long long)1 << b,
                (unsigned long long)cum);
        }
        cum += atomic_load(&m->buckets[METRICS_BUCKETS - 1]);
        put(&o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
        put(&o, "%s_sum %lld\n", name, (long long)atomic_load(&m->value));
        put(&o, "%s_count %llu\n", name, (unsigned long long)atomic_load(&m->count));
    }
    if (o.oom) {
        kiln_free(o.s);
        return NULL;
    }
    *len = o.len;
    return o.s;
}
