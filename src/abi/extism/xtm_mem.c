/*
 * xtm_mem.c - the Extism memory arena (see xtm_mem.h): bump allocation,
 * a sorted block table, and the re-use policy real guests depend on.
 */
#include <string.h>

#include "abi/extism/xtm_mem.h"
#include "base/alloc.h"
#include "kiln/kiln.h"

#define XTM_MEM_MAX_LIMIT ((uint64_t)4 << 30)

void xtm_mem_init(xtm_mem *m, uint64_t limit)
{
    memset(m, 0, sizeof(*m));
    m->top = XTM_MEM_BASE;
    if (limit == 0 || limit > XTM_MEM_MAX_LIMIT)
        limit = XTM_MEM_MAX_LIMIT;
    m->limit = limit < XTM_MEM_INITIAL ? XTM_MEM_INITIAL : limit;
}

void xtm_mem_fini(xtm_mem *m)
{
    kiln_free(m->buf);
    kiln_free(m->blocks);
    memset(m, 0, sizeof(*m));
}

void xtm_mem_reset(xtm_mem *m)
{
    m->n_blocks = 0;
    m->n_free = 0;
    m->top = XTM_MEM_BASE;
}

long xtm_mem_find(const xtm_mem *m, uint64_t h)
{
    size_t lo = 0, hi = m->n_blocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t off = m->blocks[mid].off;
        if (off == h)
            return (long)mid;
        if (off < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

uint64_t xtm_mem_length(const xtm_mem *m, uint64_t h)
{
    long i = xtm_mem_find(m, h);
    return i >= 0 && m->blocks[i].state == XTM_BLOCK_ACTIVE ? m->blocks[i].len : 0;
}

void xtm_mem_free(xtm_mem *m, uint64_t h)
{
    long i = xtm_mem_find(m, h);
    if (i >= 0 && m->blocks[i].state == XTM_BLOCK_ACTIVE) {
        m->blocks[i].state = XTM_BLOCK_FREE;
        m->n_free++;
    }
}

void xtm_mem_consume(xtm_mem *m, uint64_t h)
{
    long i = xtm_mem_find(m, h);
    if (i >= 0 && m->blocks[i].state == XTM_BLOCK_ACTIVE)
        m->blocks[i].state = XTM_BLOCK_DEAD;
}

/* Re-use the first guest-freed block with room for `cap` bytes. */
static bool reuse_free(xtm_mem *m, uint64_t n, uint64_t cap, uint64_t *h)
{
    if (m->n_free == 0)
        return false;
    for (size_t i = 0; i < m->n_blocks; i++) {
        xtm_block *b = &m->blocks[i];
        if (b->state != XTM_BLOCK_FREE || b->cap < cap)
            continue;
        b->state = XTM_BLOCK_ACTIVE;
        b->len = n;
        m->n_free--;
        memset(m->buf + b->off, 0, b->cap);
        *h = b->off;
        return true;
    }
    return false;
}

static int grow_buffer(xtm_mem *m, uint64_t need)
{
    uint64_t size = m->size ? m->size : XTM_MEM_INITIAL;
    while (size < need)
        size = size > m->limit / 2 ? m->limit : size * 2;
    if (size > m->limit)
        size = m->limit;
    if (size < need || size > SIZE_MAX)
        return KILN_ELIMIT;
    uint8_t *b = kiln_realloc(m->buf, (size_t)size);
    if (b == NULL)
        return KILN_ENOMEM;
    m->buf = b;
    m->size = size;
    return KILN_OK;
}

int xtm_mem_alloc(xtm_mem *m, uint64_t n, uint64_t *h)
{
    *h = 0;
    if (n == 0)
        return KILN_OK;
    /* Largest request that cannot overflow the capacity arithmetic. */
    if (n > m->limit)
        return KILN_ELIMIT;
    uint64_t cap = ((n + 7) & ~(uint64_t)7) + 8;
    uint64_t end = m->top + cap;
    if (end > m->size) {
        /* Re-use guest-freed blocks only now, when the arena would grow:
         * eager re-use breaks guests that free blocks the host consumed. */
        if (reuse_free(m, n, cap, h))
            return KILN_OK;
        if (end > m->limit)
            return KILN_ELIMIT;
        int rc = grow_buffer(m, end);
        if (rc != KILN_OK)
            return rc;
    }
    if (m->n_blocks == m->cap_blocks) {
        size_t nc = m->cap_blocks ? m->cap_blocks * 2 : 64;
        xtm_block *nb = kiln_realloc(m->blocks, nc * sizeof(*nb));
        if (nb == NULL)
            return KILN_ENOMEM;
        m->blocks = nb;
        m->cap_blocks = nc;
    }
    xtm_block *b = &m->blocks[m->n_blocks++];
    b->off = m->top;
    b->len = n;
    b->cap = cap;
    b->state = XTM_BLOCK_ACTIVE;
    /* The region may hold bytes of an earlier call: no data leaks between
     * calls or requests. */
    memset(m->buf + b->off, 0, cap);
    m->top = end;
    *h = b->off;
    return KILN_OK;
}
