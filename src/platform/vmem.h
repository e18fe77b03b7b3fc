/*
 * vmem.h - virtual memory and thread facts the runtime needs from the OS:
 * reserve/commit/decommit address space, and the calling thread's stack.
 * The only place that calls mmap/mprotect/madvise.
 */
#ifndef KILN_PLATFORM_VMEM_H
#define KILN_PLATFORM_VMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reserve `size` bytes of inaccessible address space; NULL on failure. */
void *vmem_reserve(size_t size);
void vmem_release(void *p, size_t size);
/* Make [p, p+size) read-write (0) or inaccessible (prot_none); 0 or -1. */
int vmem_commit(void *p, size_t size);
int vmem_decommit(void *p, size_t size);
/* Drop the pages' contents (they read back as zeros); keeps protection. */
int vmem_discard(void *p, size_t size);
size_t vmem_page_size(void);
/* Which pages of [p, p+size) (page-aligned) are resident: vec[i] bit 0 for
 * page i (mincore). 0 or -1. */
int vmem_resident(void *p, size_t size, unsigned char *vec /* OUT */);
/* Could an anonymous page that was written be out of memory (swapped)? While
 * not, a page vmem_resident reports absent still reads as zeros. Checked
 * against the system at most every 10 ms per thread. */
int vmem_swap_possible(void);

/*
 * Write tracking (vmem_track_linux.c): which pages of an anonymous,
 * read-write range were written since it was last armed. start registers
 * and arms [p, p+size) (page-aligned; -1 when the system cannot track:
 * then callers assume every page written); written lists the runs written
 * since (offsets from p; -1 on failure or more than `max` runs: assume
 * all); rearm arms again what was written (call it after restoring those
 * pages, since restoring writes them); stop unregisters the range (needed
 * before it is used untracked; munmap drops it too). Writes by system calls
 * count. A page discarded (madvise) while tracked must be restored by the
 * caller without relying on the list.
 */
typedef struct vmem_range {
    uint64_t offset, len;
} vmem_range;
bool vmem_track_available(void);
int vmem_track_start(void *p, size_t size);
long vmem_track_written(void *p, size_t size, vmem_range *out /* OUT */, size_t max);
int vmem_track_rearm(void *p, size_t size);
void vmem_track_stop(void *p, size_t size);

/* Lowest usable address of the calling thread's stack and its guard size. */
int vmem_thread_stack(uintptr_t *lo /* OUT */, uintptr_t *hi /* OUT */, size_t *guard /* OUT */);

#endif
