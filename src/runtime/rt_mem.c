/*
 * rt_mem.c - linear memories and tables for wasm2c code (wasm-rt.h).
 *
 * Each linear memory is an 8 GiB + 64 KiB PROT_NONE reservation preceded by
 * a small read-write header page; exactly `size` bytes are accessible, so the
 * MMU does the bounds checks. Freed memories go back to a per-thread pool
 * (no lock, no mmap on the steady-state path) after being zeroed: memset of
 * small memories, of only the resident (touched) pages of larger ones, so a
 * reused memory never shows a previous instance's bytes. Limits come from the instance that is
 * being instantiated on this thread (kiln_limits).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "platform/vmem.h"
#include "runtime/rt_int.h"

#define RT_REGISTRY_MAX 16384 /* ~ 47-bit address space / 8 GiB */

/* Base addresses of live reservations, for the fault handler. Written under
 * registry_lock (only when a reservation is created or destroyed, never on
 * the pooled path); read lock-free by the signal handler. */
static _Atomic uintptr_t registry[RT_REGISTRY_MAX];
static _Atomic int registry_high;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t reserved_count;
static _Atomic unsigned pool_limit = RT_POOL_DEFAULT;

static const size_t reservation = RT_MEM_HEADER + RT_MEM_RESERVE + RT_MEM_TAIL;

bool rt_mem_contains(uintptr_t addr)
{
    int high = atomic_load_explicit(&registry_high, memory_order_acquire);
    for (int i = 0; i < high; i++) {
        uintptr_t b = atomic_load_explicit(&registry[i], memory_order_relaxed);
        if (b != 0 && addr >= b + RT_MEM_HEADER && addr < b + reservation)
            return true;
    }
    return false;
}

unsigned rt_pool_limit(void)
{
    return atomic_load_explicit(&pool_limit, memory_order_relaxed);
}

void kiln_rt_set_pool_size(unsigned per_thread)
{
    atomic_store(&pool_limit, per_thread);
}

static rt_mem_header *reserve_new(void)
{
    uint8_t *base = vmem_reserve(reservation);
    if (base == NULL)
        return NULL;
    if (vmem_commit(base, RT_MEM_HEADER) != 0) {
        vmem_release(base, reservation);
        return NULL;
    }
    rt_mem_header *h = (rt_mem_header *)base;
    h->committed = 0;
    h->image_id = 0;
    h->image_extent = 0;
    h->tracked = false;
    h->track_skip = 0;
    h->track_backoff = 0;
    h->next_free = NULL;
    h->registry_index = -1;
    pthread_mutex_lock(&registry_lock);
    int high = atomic_load(&registry_high);
    for (int i = 0; i < RT_REGISTRY_MAX; i++) {
        if (atomic_load(&registry[i]) == 0) {
            atomic_store(&registry[i], (uintptr_t)base);
            h->registry_index = i;
            if (i >= high)
                atomic_store_explicit(&registry_high, i + 1, memory_order_release);
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    if (h->registry_index < 0) {
        vmem_release(base, reservation);
        return NULL;
    }
    atomic_fetch_add(&reserved_count, 1);
    return h;
}

static void release_reservation(rt_mem_header *h)
{
    pthread_mutex_lock(&registry_lock);
    atomic_store(&registry[h->registry_index], 0);
    pthread_mutex_unlock(&registry_lock);
    atomic_fetch_sub(&reserved_count, 1);
    vmem_release(h, reservation);
}

static inline uint8_t *header_data(rt_mem_header *h)
{
    return (uint8_t *)h + RT_MEM_HEADER;
}

/* Limit in pages for a new memory of the instance being instantiated. */
static uint32_t quota_pages(uint32_t declared_max)
{
    uint64_t max = declared_max;
    kiln_instance *inst = rt_current();
    if (inst != NULL && inst->limits.max_memory_bytes != 0) {
        uint64_t q = inst->limits.max_memory_bytes / RT_PAGE;
        if (q < max)
            max = q;
    }
    if (max > RT_MAX_PAGES)
        max = RT_MAX_PAGES;
    return (uint32_t)max;
}

/* The slot no longer holds an image (its bytes are zeroed or discarded by
 * the caller): stop tracking writes to it. */
static void slot_untag(rt_mem_header *h)
{
    if (h->tracked)
        vmem_track_stop(header_data(h), h->image_extent);
    h->tracked = false;
    h->image_id = 0;
    h->image_extent = 0;
}

/* Put image bytes [0, extent) into a slot. A slot that last held the same
 * image and tracks writes gets back only the pages written since (snapshot.md
 * §2b): list them, copy them from the image, re-arm them (copying wrote
 * them). Any other slot gets the whole copy and, for a big enough image,
 * starts tracking. */
static void slot_fill(rt_mem_header *h, const uint8_t *image, uint64_t extent, uint64_t image_id)
{
    uint8_t *d = header_data(h);
    if (h->image_id == image_id && h->tracked && h->image_extent == extent) {
        vmem_range runs[RT_TRACK_RUNS];
        long n = vmem_track_written(d, extent, runs, RT_TRACK_RUNS);
        uint64_t written = 0;
        for (long i = 0; i < n; i++) {
            uint64_t off = runs[i].offset, len = runs[i].len;
            if (off < extent) {
                len = len < extent - off ? len : extent - off;
                memcpy(d + off, image + off, len);
                written += len;
            }
        }
        /* More than a sixteenth written: the next requests likely do the
         * same, and tracked writes (~1.3 us a page: the fault, the copy
         * back, re-arming) then cost more than copying the whole image
         * (~0.1 us a page; snapshot.md §2b). */
        bool mostly = written > extent / 16;
        if (n >= 0 && !mostly && vmem_track_rearm(d, extent) == 0) {
            h->track_backoff = 0;
            rt_tls.image_partial_restores++;
            return;
        }
        if (n >= 0 && mostly) {
            slot_untag(h); /* stops tracking; the bytes are the image again */
            h->track_skip = (uint16_t)(RT_TRACK_SKIP << h->track_backoff);
            if (h->track_backoff < RT_TRACK_BACKOFF_MAX)
                h->track_backoff++;
            h->image_id = image_id;
            h->image_extent = extent;
            rt_tls.image_partial_restores++;
            return;
        }
    }
    if (h->tracked)
        slot_untag(h);
    memcpy(d, image, extent);
    h->image_id = image_id;
    h->image_extent = extent;
    if (h->track_skip > 0)
        h->track_skip--;
    else
        h->tracked = extent >= RT_TRACK_MIN && vmem_track_start(d, extent) == 0;
}

/* Take a slot from the thread's pool: one that last held image `image_id`
 * if such is among the first few (0: any). A slot holding another image's
 * bytes has them zeroed here, so what callers get is all zero except,
 * for a matching image, its first image_extent bytes. */
#define RT_AFFINITY_SCAN 8
static rt_mem_header *pool_take(rt_thread *t, uint64_t image_id)
{
    /* The resident slots first (their pages are mapped and zero); a cold
     * one only when none is left. */
    rt_mem_header **pp = t->pool != NULL ? &t->pool : &t->pool_cold;
    if (image_id != 0) {
        rt_mem_header **q = &t->pool;
        for (int i = 0; *q != NULL && i < RT_AFFINITY_SCAN; i++, q = &(*q)->next_free)
            if ((*q)->image_id == image_id) {
                pp = q;
                break;
            }
    }
    rt_mem_header *h = *pp;
    if (h == NULL)
        return NULL;
    *pp = h->next_free;
    t->pool_len--;
    if (h->resident)
        t->pool_resident--;
    if (h->image_id != 0 && h->image_id != image_id) {
        uint64_t n = h->image_extent < h->committed ? h->image_extent : h->committed;
        slot_untag(h);
        h->track_skip = 0; /* that image's write pattern, not the next one's */
        h->track_backoff = 0;
        memset(header_data(h), 0, n);
    }
    return h;
}

static void mem_alloc(wasm_rt_memory_t *mem, uint32_t initial_pages, uint32_t max_pages,
                      const uint8_t *image, uint64_t extent, uint64_t image_id)
{
    rt_thread *t = rt_self();
    uint32_t limit = quota_pages(max_pages);
    memset(mem, 0, sizeof(*mem));
    if (initial_pages > limit)
        rt_trap_msg(KILN_TRAP_OUT_OF_MEMORY,
                    "the module needs %u pages (%llu KiB) of memory initially but the limit is "
                    "%u pages; raise the function's memory limit",
                    initial_pages, (unsigned long long)initial_pages * 64, limit);
    rt_host_begin(t);
    rt_mem_header *h = pool_take(t, image_id);
    if (h != NULL) {
        t->pool_hits++;
    } else {
        t->pool_misses++;
        h = reserve_new();
    }
    uint64_t need = (uint64_t)initial_pages * RT_PAGE;
    int rc = -1;
    if (h != NULL) {
        /* Pooled memories are zero up to `committed` (but for a matching
         * image's extent); adjust protection to exactly the initial size so
         * out-of-bounds accesses still fault. */
        if (h->committed < need)
            rc = vmem_commit(header_data(h) + h->committed, need - h->committed);
        else if (h->committed > need)
            rc = vmem_decommit(header_data(h) + need, h->committed - need);
        else
            rc = 0;
        if (rc == 0)
            h->committed = need;
    }
    if (h != NULL && rc != 0) {
        release_reservation(h);
        h = NULL;
    }
    if (h != NULL && image_id != 0)
        slot_fill(h, image, extent, image_id); /* extent <= need: captured from initial_pages */
    rt_host_close(t);
    if (h == NULL)
        rt_trap_msg(KILN_TRAP_OUT_OF_MEMORY, "cannot reserve address space for a linear memory");
    mem->data = header_data(h);
    mem->pages = initial_pages;
    mem->max_pages = limit;
    mem->size = (uint32_t)need;
    rt_host_deliver(t); /* a deadline that fired meanwhile */
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial_pages, uint32_t max_pages)
{
    kiln_instance *inst = rt_current();
    if (inst != NULL && inst->rec != NULL)
        rt_rec_note(inst, RT_REC_MEMORY, mem, max_pages);
    mem_alloc(mem, initial_pages, max_pages, NULL, 0, 0);
}

void rt_mem_restore(wasm_rt_memory_t *mem, uint32_t pages, uint32_t declared_max,
                    const uint8_t *image, uint64_t extent, uint64_t image_id)
{
    mem_alloc(mem, pages, declared_max, image, extent, image_id);
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t delta)
{
    uint32_t old = mem->pages;
    if (delta == 0)
        return old;
    uint64_t new_pages = (uint64_t)old + delta;
    if (new_pages > mem->max_pages || new_pages > RT_MAX_PAGES)
        return UINT32_MAX;
    rt_thread *t = rt_self();
    rt_mem_header *h = (rt_mem_header *)(mem->data - RT_MEM_HEADER);
    uint64_t need = new_pages * RT_PAGE;
    rt_host_begin(t);
    int rc = 0;
    if (need > h->committed) {
        rc = vmem_commit(header_data(h) + h->committed, need - h->committed);
        if (rc == 0)
            h->committed = need;
    }
    rt_host_close(t);
    if (rc != 0)
        return UINT32_MAX;
    mem->pages = (uint32_t)new_pages;
    mem->size = (uint32_t)need;
    rt_host_deliver(t);
    return old;
}

/*
 * Zero what the last user of a slot may have written in [from, committed):
 * the resident pages only. A pooled slot is all zeros, and a page that was
 * never touched since is not resident (or maps the shared zero page), so
 * memset work follows what the instances that held the slot touched, not
 * the memory's size: a 16 MiB memory whose requests use 200 KiB costs 200
 * KiB. Pages zeroed here stay resident, so a slot settles on the union of
 * what its users touch. With swap configured a written page may be absent
 * from memory yet not zero: then everything is zeroed, as before. Returns
 * the bytes zeroed, or UINT64_MAX when that would exceed `limit` (nothing
 * zeroed: the caller discards instead).
 */
bool rt_mem_is_zero(const uint8_t *p, uint64_t n)
{
    /* Word-wise with an early exit per 256 bytes: a dirty page usually
     * shows it in its first bytes. */
    const uint64_t *w = (const uint64_t *)(const void *)p;
    for (uint64_t i = 0; i < n / 8; i += 32) {
        uint64_t acc = 0;
        uint64_t lim = n / 8 - i < 32 ? n / 8 - i : 32;
        for (uint64_t k = 0; k < lim; k++)
            acc |= w[i + k];
        if (acc != 0)
            return false;
    }
    for (uint64_t i = n & ~(uint64_t)7; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}
#define mem_is_zero rt_mem_is_zero

static uint64_t zero_touched(rt_mem_header *h, uint64_t from, uint64_t limit)
{
    uint8_t *d = header_data(h);
    uint64_t end = h->committed;
    if (from >= end)
        return 0;
    /* Only the resident pages (mincore), whatever the size: a memset of
     * everything writes - and so faults in, ~1.5 µs each - every page that
     * is not resident, and a small slot often has many (a request grew the
     * memory and touched little of it, or pool_take discarded what the last
     * user committed beyond the next one's size). A component's graph of
     * ~128-256 KiB memories paid ~25 faults per request that way
     * (snapshot.md §2). Only with swap is everything written. */
    if (vmem_swap_possible()) {
        if (end - from > limit)
            return UINT64_MAX;
        memset(d + from, 0, end - from);
        return end - from;
    }
    enum { CHUNK = 512, RUNS = 16 };
    const uint64_t pg = 4096;
    unsigned char vec[CHUNK];
    uint64_t zeroed = 0, clean = 0, runs[2 * RUNS];
    unsigned nr = 0;
    bool overflow = false;
    for (uint64_t base = from & ~(pg - 1); base < end; base += CHUNK * pg) {
        uint64_t len = end - base < CHUNK * pg ? end - base : CHUNK * pg;
        uint64_t n = (len + pg - 1) / pg;
        if (vmem_resident(d + base, len, vec) != 0)
            memset(vec, 1, sizeof(vec)); /* cannot tell: treat all as touched */
        for (uint64_t i = 0; i < n; i++) {
            if (!(vec[i] & 1))
                continue;
            uint64_t lo = base + i * pg, hi = lo + pg;
            if (lo < from)
                lo = from;
            if (hi > end)
                hi = end;
            /* A resident page may be clean (zeroed for an earlier user and
             * not touched since) or map the shared zero page (only read):
             * reading it is cheaper than writing, and writing the zero
             * page would cost a copy-on-write fault. */
            if (mem_is_zero(d + lo, hi - lo)) {
                clean += hi - lo;
                if (lo % pg == 0 && hi - lo == pg) {
                    if (nr > 0 && runs[2 * nr - 1] == lo)
                        runs[2 * nr - 1] = hi;
                    else if (nr < RUNS) {
                        runs[2 * nr] = lo;
                        runs[2 * nr + 1] = hi;
                        nr++;
                    } else {
                        overflow = true;
                    }
                }
                continue;
            }
            /* Over the limit: stop; the caller discards the whole range
             * (which zeroes it too), so what was done is merely wasted. */
            if (zeroed + (hi - lo) > limit)
                return UINT64_MAX;
            memset(d + lo, 0, hi - lo);
            zeroed += hi - lo;
        }
    }
    /* Clean resident pages are read on every release: when a slot served a
     * bigger user before and its present user touches far less, give the
     * clean ones back so mincore skips them from now on (a slot shared by
     * two functions then costs what each touches, not their union). */
    if (!overflow && clean > RT_MEMSET_ALL && clean > 4 * zeroed)
        for (unsigned k = 0; k < nr; k++)
            vmem_discard(d + runs[2 * k], runs[2 * k + 1] - runs[2 * k]);
    return zeroed;
}

uint64_t rt_mem_extent(uint8_t *data, uint64_t size)
{
    enum { CHUNK = 512 };
    const uint64_t pg = 4096;
    unsigned char vec[CHUNK];
    uint64_t end = (size + pg - 1) & ~(pg - 1);
    while (end > 0) {
        uint64_t n = end / pg < CHUNK ? end / pg : CHUNK, base = end - n * pg;
        bool swap = vmem_swap_possible();
        if (swap || vmem_resident(data + base, n * pg, vec) != 0)
            memset(vec, 1, sizeof(vec));
        for (uint64_t i = n; i-- > 0;) {
            uint64_t lo = base + i * pg, hi = lo + pg < size ? lo + pg : size;
            if ((vec[i] & 1) && !mem_is_zero(data + lo, hi - lo))
                return hi;
        }
        end = base;
    }
    return 0;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
    if (mem->data == NULL)
        return;
    rt_thread *t = rt_self();
    rt_mem_header *h = (rt_mem_header *)(mem->data - RT_MEM_HEADER);
    memset(mem, 0, sizeof(*mem));
    rt_host_begin(t);
    bool pooled = false;
    if (t->pool_len < rt_pool_limit()) {
        int rc = 0;
        h->resident = false;
        /* A slot restored from a snapshot keeps the image's bytes: the next
         * user restores the same image over them or zeroes them first. */
        uint64_t keep = h->image_id != 0 ? h->image_extent : 0;
        if (keep > h->committed)
            keep = h->committed;
        if (t->pool_resident < RT_POOL_HOT)
            h->resident = zero_touched(h, keep, RT_ZERO_LIMIT) != UINT64_MAX;
        if (!h->resident) {
            slot_untag(h);
            rc = vmem_discard(header_data(h), h->committed);
            t->pool_discards++;
        }
        if (rc == 0) {
            rt_mem_header **list = h->resident ? &t->pool : &t->pool_cold;
            h->next_free = *list;
            *list = h;
            t->pool_len++;
            t->pool_resident += h->resident;
            pooled = true;
        }
    }
    if (!pooled)
        release_reservation(h);
    rt_host_close(t);
}

void rt_pool_drain(rt_thread *t)
{
    for (rt_mem_header **list = &t->pool; list != NULL;
         list = list == &t->pool ? &t->pool_cold : NULL)
        while (*list != NULL) {
            rt_mem_header *h = *list;
            *list = h->next_free;
            release_reservation(h);
        }
    t->pool_len = 0;
    t->pool_resident = 0;
}

void kiln_rt_trim_pools(unsigned keep)
{
    rt_thread *t = rt_self();
    unsigned i = 0;
    for (rt_mem_header **pp = &t->pool; *pp != NULL; i++) {
        rt_mem_header *h = *pp;
        if (i < keep) {
            pp = &h->next_free;
            continue;
        }
        uint64_t n = h->image_extent < h->committed ? h->image_extent : h->committed;
        slot_untag(h);
        if (vmem_discard(header_data(h), h->committed) != 0) {
            memset(header_data(h), 0, n); /* untagged: must read as zeros */
            pp = &h->next_free;
            continue;
        }
        *pp = h->next_free; /* to the cold list */
        h->resident = false;
        h->next_free = t->pool_cold;
        t->pool_cold = h;
        t->pool_resident--;
        t->pool_discards++;
    }
    rt_fiber_trim(t, keep);
}

void kiln_rt_thread_cleanup(void)
{
    rt_pool_drain(&rt_tls);
}

void kiln_rt_stats_get(kiln_rt_stats *out)
{
    out->memories_reserved = atomic_load(&reserved_count);
    out->pool_hits = rt_tls.pool_hits;
    out->image_partial_restores = rt_tls.image_partial_restores;
    out->pool_misses = rt_tls.pool_misses;
    out->pool_resident = rt_tls.pool_resident;
    out->pool_discards = rt_tls.pool_discards;
}

/* ---- tables --------------------------------------------------------------- */

/*
 * Every table element a guest can cause is charged to its instance: all
 * tables together may hold limits.max_table_elems elements (default
 * RT_DEFAULT_TABLE_ELEMS), and their bytes count against max_memory_bytes
 * when that is set. Tables made outside any instance (a host's own) are
 * bounded per table. Storage comes from calloc, whose large blocks are fresh
 * zero pages: the null value is all-zero bytes, so a big, mostly unused
 * table costs address space, not memory, until it is written.
 */
static uint64_t table_budget(const kiln_instance *inst, size_t elem_size)
{
    uint64_t cap = RT_DEFAULT_TABLE_ELEMS;
    if (inst == NULL)
        return cap;
    if (inst->limits.max_table_elems != 0)
        cap = inst->limits.max_table_elems;
    if (inst->limits.max_memory_bytes != 0 && inst->limits.max_memory_bytes / elem_size < cap)
        cap = inst->limits.max_memory_bytes / elem_size;
    return cap;
}

/* Charge `add` elements to the running instance; false if over budget. */
static bool table_charge(uint64_t add, size_t elem_size, uint64_t *budget /* OUT */)
{
    kiln_instance *inst = rt_current();
    uint64_t cap = table_budget(inst, elem_size);
    *budget = cap;
    uint64_t used = inst ? inst->table_elems : 0;
    if (used + add > cap)
        return false;
    if (inst)
        inst->table_elems = used + add;
    return true;
}

#define DEFINE_TABLE(kind, elem_t)                                                     \
    void wasm_rt_allocate_##kind##_table(wasm_rt_##kind##_table_t *table, uint32_t elements,      \
                                         uint32_t max_elements)                                   \
    {                                                                                              \
        uint64_t budget;                                                                           \
        kiln_instance *rinst = rt_current();                                                       \
        if (rinst != NULL && rinst->rec != NULL)                                                   \
            rt_rec_note(rinst, RT_REC_##kind, table, max_elements);                               \
        memset(table, 0, sizeof(*table));                                                          \
        if (!table_charge(elements, sizeof(elem_t), &budget))                                      \
            rt_trap_msg(KILN_TRAP_OUT_OF_MEMORY,                                                   \
                        "the module's tables need more than %llu elements (this one %u); raise "  \
                        "the function's table limit (max_table_elems) or memory limit",           \
                        (unsigned long long)budget, elements);                                     \
        rt_thread *t = rt_self();                                                                  \
        rt_host_begin(t);                                                                          \
        elem_t *data = kiln_calloc(elements ? elements : 1, sizeof(elem_t));                      \
        rt_host_close(t);                                                                          \
        if (data == NULL)                                                                          \
            rt_trap_msg(KILN_TRAP_OUT_OF_MEMORY, "cannot allocate a table of %u elements",        \
                        elements);                                                                 \
        table->data = data;                                                                        \
        table->size = elements;                                                                    \
        table->max_size = max_elements;                                                            \
        rt_host_deliver(t);                                                                        \
    }                                                                                              \
    void wasm_rt_free_##kind##_table(wasm_rt_##kind##_table_t *table)                              \
    {                                                                                              \
        kiln_free(table->data);                                                                    \
        memset(table, 0, sizeof(*table));                                                          \
    }                                                                                              \
    uint32_t wasm_rt_grow_##kind##_table(wasm_rt_##kind##_table_t *table, uint32_t delta,        \
                                         elem_t init)                                              \
    {                                                                                              \
        uint32_t old = table->size;                                                                \
        uint64_t new_size = (uint64_t)old + delta, budget;                                         \
        if (new_size > table->max_size)                                                            \
            return UINT32_MAX;                                                                     \
        if (delta == 0)                                                                            \
            return old;                                                                            \
        if (!table_charge(delta, sizeof(elem_t), &budget))                                         \
            return UINT32_MAX;                                                                     \
        rt_thread *t = rt_self();                                                                  \
        rt_host_begin(t);                                                                          \
        elem_t *data = kiln_realloc(table->data, (size_t)new_size * sizeof(elem_t));              \
        rt_host_close(t);                                                                          \
        if (data == NULL) {                                                                        \
            kiln_instance *inst = rt_current();                                                    \
            if (inst)                                                                              \
                inst->table_elems -= delta;                                                        \
            return UINT32_MAX;                                                                     \
        }                                                                                          \
        for (uint64_t i = old; i < new_size; i++)                                                  \
            data[i] = init;                                                                        \
        table->data = data;                                                                        \
        table->size = (uint32_t)new_size;                                                          \
        rt_host_deliver(t);                                                                        \
        return old;                                                                                \
    }

#define RT_REC_funcref RT_REC_FUNCREF
#define RT_REC_externref RT_REC_EXTERNREF
DEFINE_TABLE(funcref, wasm_rt_funcref_t)
DEFINE_TABLE(externref, wasm_rt_externref_t)

/* ---- function types (process-wide) --------------------------------------- */

typedef struct rt_functype {
    uint32_t params, results;
    wasm_rt_type_t types[];
} rt_functype;

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;
static rt_functype **types;
static uint32_t n_types, cap_types;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
    wasm_rt_type_t buf[256];
    uint32_t n = params + results;
    wasm_rt_type_t *key = n <= 256 ? buf : kiln_xmalloc(n * sizeof(*key));
    va_list ap;
    va_start(ap, results);
    for (uint32_t i = 0; i < n; i++)
        key[i] = (wasm_rt_type_t)va_arg(ap, int);
    va_end(ap);
    uint32_t id = rt_functype_register(params, results, key);
    if (key != buf)
        kiln_free(key);
    return id;
}

bool rt_functype_sig(uint32_t id, uint32_t *params, uint32_t *results,
                     const wasm_rt_type_t **sig)
{
    pthread_mutex_lock(&types_lock);
    bool ok = id >= 1 && id <= n_types;
    if (ok) {
        *params = types[id - 1]->params;
        *results = types[id - 1]->results;
        *sig = types[id - 1]->types; /* entries are never freed or moved */
    }
    pthread_mutex_unlock(&types_lock);
    return ok;
}

uint32_t rt_functype_register(uint32_t params, uint32_t results, const wasm_rt_type_t *key)
{
    uint32_t n = params + results;
    pthread_mutex_lock(&types_lock);
    uint32_t id = 0;
    for (uint32_t i = 0; i < n_types && id == 0; i++) {
        rt_functype *f = types[i];
        if (f->params == params && f->results == results &&
            memcmp(f->types, key, n * sizeof(*key)) == 0)
            id = i + 1;
    }
    if (id == 0) {
        if (n_types == cap_types) {
            cap_types = cap_types ? cap_types * 2 : 64;
            rt_functype **nt = kiln_realloc(types, cap_types * sizeof(*types));
            if (nt == NULL) {
                fprintf(stderr, "kiln: out of memory registering function types\n");
                abort();
            }
            types = nt;
        }
        rt_functype *f = kiln_xmalloc(sizeof(*f) + n * sizeof(*key));
        f->params = params;
        f->results = results;
        memcpy(f->types, key, n * sizeof(*key));
        types[n_types++] = f;
        id = n_types;
    }
    pthread_mutex_unlock(&types_lock);
    return id;
}
