/*
 * vmem_posix.c - vmem.h on POSIX systems with mmap and pthread_getattr_np.
 */
#include "platform/vmem.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

void *vmem_reserve(size_t size)
{
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void vmem_release(void *p, size_t size)
{
    munmap(p, size);
}

int vmem_commit(void *p, size_t size)
{
    return size == 0 ? 0 : mprotect(p, size, PROT_READ | PROT_WRITE);
}

int vmem_decommit(void *p, size_t size)
{
    if (size == 0)
        return 0;
    /* Drop contents first so a later commit reads zeros. */
    if (madvise(p, size, MADV_DONTNEED) != 0)
        return -1;
    return mprotect(p, size, PROT_NONE);
}

int vmem_discard(void *p, size_t size)
{
    return size == 0 ? 0 : madvise(p, size, MADV_DONTNEED);
}

int vmem_resident(void *p, size_t size, unsigned char *vec)
{
    return size == 0 ? 0 : mincore(p, size, vec);
}

int vmem_swap_possible(void)
{
    /* sysinfo walks the swap areas: cache its answer briefly. Only a swapon
     * and a swap-out of a written pool page inside the same 10 ms window
     * could hide a page from mincore. */
    static _Thread_local uint64_t checked_ns;
    static _Thread_local int possible = 1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (checked_ns == 0 || now - checked_ns > 10000000u) {
        struct sysinfo si;
        possible = sysinfo(&si) != 0 || si.totalswap != 0;
        checked_ns = now;
    }
    return possible;
}

size_t vmem_page_size(void)
{
    static size_t page;
    if (page == 0)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

int vmem_thread_stack(uintptr_t *lo, uintptr_t *hi, size_t *guard)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return -1;
    int rc = pthread_attr_getstack(&attr, &addr, &size);
    if (rc == 0)
        rc = pthread_attr_getguardsize(&attr, guard);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -1;
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
    return 0;
}
