/*
 * xtm_mem.h - Extism memory: the host-owned byte space that Extism guests
 * address through 64-bit handles (docs/internals/extism.md, "Memory model").
 * Private to src/abi/extism/ and its unit test.
 *
 * A handle is an offset into one growable arena; offsets 0..63 are reserved
 * so that 0 means "no block". Every block gets round_up(n, 8) + 8 bytes so a
 * guest's 8-byte access at any byte of a short block stays inside it. Blocks
 * are laid out by a bump pointer, so the block table is sorted by offset.
 * Blocks freed by the guest are re-used only when the arena would otherwise
 * have to grow; blocks the host consumed (keys, log messages...) stay dead
 * until the next reset. Nothing here traps or takes locks: callers decide.
 */
#ifndef KILN_ABI_EXTISM_XTM_MEM_H
#define KILN_ABI_EXTISM_XTM_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XTM_MEM_BASE 64u                     /* first handle */
#define XTM_MEM_INITIAL ((uint64_t)64 << 10) /* arena bytes before any growth */

enum { XTM_BLOCK_ACTIVE = 1, XTM_BLOCK_FREE = 2, XTM_BLOCK_DEAD = 3 };

typedef struct xtm_block {
    uint64_t off; /* handle of byte 0 */
    uint64_t len; /* bytes the guest asked for */
    uint64_t cap; /* bytes reserved: round_up(len, 8) + 8, or more when re-used */
    int state;    /* XTM_BLOCK_* */
} xtm_block;

typedef struct xtm_mem {
    uint8_t *buf;      /* arena; handle h is buf[h] */
    uint64_t size;     /* bytes allocated at buf */
    uint64_t top;      /* bump pointer: end of the last block (>= XTM_MEM_BASE) */
    uint64_t limit;    /* size never exceeds max(limit, XTM_MEM_INITIAL) */
    xtm_block *blocks; /* sorted by off */
    size_t n_blocks, cap_blocks;
    size_t n_free; /* blocks in state XTM_BLOCK_FREE */
} xtm_mem;

/* Empty arena whose buffer may grow to `limit` bytes (0 = 4 GiB). No
 * allocation happens until the first block. */
void xtm_mem_init(xtm_mem *m, uint64_t limit);
void xtm_mem_fini(xtm_mem *m);
/* Forget every block; keeps the buffer for the next call. */
void xtm_mem_reset(xtm_mem *m);

/*
 * New zeroed block of n bytes; *h receives its handle (0 when n == 0).
 * Returns KILN_OK, KILN_ELIMIT (the arena would exceed its limit: the
 * Extism "oom" failure) or KILN_ENOMEM (the host is out of memory; Extism
 * guests see handle 0).
 */
int xtm_mem_alloc(xtm_mem *m, uint64_t n, uint64_t *h /* OUT */);

/* Index of the block starting exactly at h, in any state; -1 if none. */
long xtm_mem_find(const xtm_mem *m, uint64_t h);
/* Length of the live block starting exactly at h, else 0. Safe for any h. */
uint64_t xtm_mem_length(const xtm_mem *m, uint64_t h);
/* Is h the start of a live block? */
static inline bool xtm_mem_live(const xtm_mem *m, uint64_t h)
{
    long i = xtm_mem_find(m, h);
    return i >= 0 && m->blocks[i].state == XTM_BLOCK_ACTIVE;
}
/* Guest `free`: no-op unless h starts a live block. */
void xtm_mem_free(xtm_mem *m, uint64_t h);
/* The host consumed h (a handle passed into a host function): it dies but is
 * never re-used before the next reset. No-op unless h starts a live block. */
void xtm_mem_consume(xtm_mem *m, uint64_t h);

/*
 * Host pointer to [p, p+n) when the whole range lies inside the allocated
 * region [XTM_MEM_BASE, top), else NULL. Overflow-safe for any p and n.
 * n == 0 is valid for XTM_MEM_BASE <= p <= top. Invalidated by the next
 * xtm_mem_alloc (the buffer may move).
 */
static inline uint8_t *xtm_mem_ptr(const xtm_mem *m, uint64_t p, uint64_t n)
{
    if (p < XTM_MEM_BASE || p > m->top || n > m->top - p)
        return NULL;
    /* Before the first block there is no buffer, and the only valid range
     * is (XTM_MEM_BASE, 0): answer a non-NULL pointer to no bytes rather
     * than NULL + p (undefined behaviour, found by tests/fuzz/fuzz_hostabi). */
    if (m->buf == NULL) {
        static uint8_t no_bytes[1];
        return no_bytes;
    }
    return m->buf + p;
}

#endif
