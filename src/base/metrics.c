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

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. A name may end in a
 * label set, `base{label="value",...}` (Kiln's own metrics use one, e.g.
 * kiln_events_delivered_total{function="f"}): the base is sanitised, the
 * labels are kept as given. Returns the length of the base in outn. */
static size_t prom_name(const char *in, char *outn)
{
    const char *brace = strchr(in, '{');
    size_t n = strlen(in);
    bool labels = brace != NULL && brace != in && n > 0 && in[n - 1] == '}';
    size_t base = labels ? (size_t)(brace - in) : n;
    size_t i = 0;
    for (; i < base; i++) {
        char c = in[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        outn[i] = ok ? c : '_';
    }
    memcpy(outn + base, in + base, n - base);
    outn[n] = '\0';
    return base;
}

static void put_metric(out *o, const metric *m, const char *name, size_t base)
{
    /* name = base + labels ("" or "{...}"). */
    const char *labels = name + base;
    char b[METRICS_NAME_MAX + 1];
    memcpy(b, name, base);
    b[base] = '\0';
    if (m->type != METRICS_HISTOGRAM) {
        put(o, "%s %lld\n", name, (long long)atomic_load(&m->value));
        return;
    }
    /* Histogram buckets add `le` to the metric's own labels. */
    char lab[METRICS_NAME_MAX + 1] = "";
    if (*labels) {
        size_t ll = strlen(labels);
        memcpy(lab, labels + 1, ll - 2);
        lab[ll - 2] = ',';
        lab[ll - 1] = '\0';
    }
    uint64_t cum = 0;
    for (unsigned k = 0; k < METRICS_BUCKETS - 1; k++) {
        cum += atomic_load(&m->buckets[k]);
        put(o, "%s_bucket{%sle=\"%llu\"} %llu\n", b, lab, (unsigned long long)1 << k,
            (unsigned long long)cum);
    }
    cum += atomic_load(&m->buckets[METRICS_BUCKETS - 1]);
    put(o, "%s_bucket{%sle=\"+Inf\"} %llu\n", b, lab, (unsigned long long)cum);
    put(o, "%s_sum%s %lld\n", b, labels, (long long)atomic_load(&m->value));
    put(o, "%s_count%s %llu\n", b, labels, (unsigned long long)atomic_load(&m->count));
}

char *metrics_prometheus(size_t *len)
{
    out o = {NULL, 0, 0, false};
    put(&o, "%s", "");
    unsigned n = atomic_load_explicit(&n_defined, memory_order_acquire);
    static const char *const types[] = {"counter", "gauge", "histogram"};
    /* A family (one base name, several label sets) is written together
     * under one TYPE line, where its first member was defined. */
    for (unsigned i = 0; i < n; i++) {
        metric *m = &table[i];
        char name[METRICS_NAME_MAX + 1];
        size_t base = prom_name(m->name, name);
        bool earlier = false;
        for (unsigned j = 0; j < i && !earlier; j++) {
            char other[METRICS_NAME_MAX + 1];
            size_t ob = prom_name(table[j].name, other);
            earlier = ob == base && memcmp(other, name, base) == 0 && table[j].type == m->type;
        }
        if (earlier)
            continue;
        put(&o, "# TYPE %.*s %s\n", (int)base, name, types[m->type]);
        put_metric(&o, m, name, base);
        for (unsigned j = i + 1; j < n; j++) {
            char other[METRICS_NAME_MAX + 1];
            size_t ob = prom_name(table[j].name, other);
            if (ob == base && memcmp(other, name, base) == 0 && table[j].type == m->type)
                put_metric(&o, &table[j], other, ob);
        }
    }
    if (o.oom) {
        kiln_free(o.s);
        return NULL;
    }
    *len = o.len;
    return o.s;
}
