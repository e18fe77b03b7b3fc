/*
 * vmem.h - virtual memory and thread facts the runtime needs from the OS:
 * reserve/commit/decommit address space, and the calling thread's stack.
 * The only place that calls mmap/mprotect/madvise.
 */
#ifndef KILN_PLATFORM_VMEM_H
#define KILN_PLATFORM_VMEM_H

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

/* Lowest usable address of the calling thread's stack and its guard size. */
int vmem_thread_stack(uintptr_t *lo /* OUT */, uintptr_t *hi /* OUT */, size_t *guard /* OUT */);

#endif
