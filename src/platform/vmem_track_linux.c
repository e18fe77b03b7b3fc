/*
 * vmem_track_linux.c - write tracking of anonymous memory (vmem.h
 * "write tracking"): which pages of a range were written since it was last
 * armed, without a fault delivered to user space and without copying.
 *
 * Mechanism (Linux >= 6.7): the range is registered with a userfaultfd in
 * asynchronous write-protect mode (UFFD_FEATURE_WP_ASYNC): a write to a
 * protected page costs one in-kernel minor fault that lifts the protection,
 * and nothing is queued on the descriptor. PAGEMAP_SCAN on /proc/self/pagemap
 * lists the pages whose protection was lifted ("written") and, with
 * PM_SCAN_WP_MATCHING, protects them again. The registration is per range
 * (per VMA), unlike soft-dirty's process-wide /proc/self/clear_refs.
 * docs/internals/snapshot.md §2b measures it against a full copy and
 * copy-on-write mappings of a memfd.
 *
 * One userfaultfd for the process (UFFD_USER_MODE_ONLY: allowed without
 * privileges; asynchronous write-protect faults are resolved in the kernel,
 * so writes by system calls are tracked too). Unavailable (older kernel,
 * seccomp, no /proc): vmem_track_start fails and callers copy everything.
 * The kernel headers of Debian 12 predate PAGEMAP_SCAN: its ABI is declared
 * here (include/uapi/linux/fs.h, stable since 6.7).
 */
#include "platform/vmem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

struct kiln_page_region {
    uint64_t start, end, categories;
};
struct kiln_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define KILN_PAGEMAP_SCAN _IOWR('f', 16, struct kiln_pm_scan_arg)
#define KILN_PM_SCAN_WP_MATCHING (1 << 0)
#define KILN_PM_SCAN_CHECK_WPASYNC (1 << 1)
#define KILN_PAGE_IS_WRITTEN (1 << 1)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int uffd = -1, pagemap = -1;

static void track_init(void)
{
    if (getenv("KILN_NO_WRITE_TRACKING") != NULL)
        return;
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return;
    struct uffdio_api api = {.api = UFFD_API,
                             .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED};
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (ioctl(fd, UFFDIO_API, &api) != 0 || pm < 0 ||
        !(api.features & UFFD_FEATURE_WP_ASYNC)) {
        close(fd);
        if (pm >= 0)
            close(pm);
        return;
    }
    uffd = fd;
    pagemap = pm;
}

bool vmem_track_available(void)
{
    pthread_once(&once, track_init);
    return uffd >= 0;
}

/* Protect (arm) whatever in [p, p+size) is written, or list it. */
static long scan(void *p, size_t size, bool rearm, vmem_range *out, size_t max)
{
    struct kiln_page_region v[32];
    uint64_t start = (uintptr_t)p, end = start + size;
    size_t n = 0;
    while (start < end) {
        struct kiln_pm_scan_arg a = {
            .size = sizeof(a),
            .flags = KILN_PM_SCAN_CHECK_WPASYNC | (rearm ? KILN_PM_SCAN_WP_MATCHING : 0),
            .start = start,
            .end = end,
            .vec = (uintptr_t)v,
            .vec_len = sizeof(v) / sizeof(v[0]),
            .category_mask = KILN_PAGE_IS_WRITTEN,
            .return_mask = KILN_PAGE_IS_WRITTEN,
        };
        long got = ioctl(pagemap, KILN_PAGEMAP_SCAN, &a);
        if (got < 0)
            return -1;
        for (long i = 0; i < got && out != NULL; i++) {
            if (n == max)
                return -1; /* more runs than the caller keeps: treat as all written */
            out[n].offset = v[i].start - (uintptr_t)p;
            out[n].len = v[i].end - v[i].start;
            n++;
        }
        if (a.walk_end <= start)
            return -1;
        start = a.walk_end;
    }
    return (long)n;
}

int vmem_track_start(void *p, size_t size)
{
    if (size == 0 || !vmem_track_available())
        return -1;
    struct uffdio_register reg = {.range = {(uintptr_t)p, size}, .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
        return -1;
    struct uffdio_writeprotect wp = {.range = {(uintptr_t)p, size},
                                     .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0) {
        vmem_track_stop(p, size);
        return -1;
    }
    return 0;
}

long vmem_track_written(void *p, size_t size, vmem_range *out, size_t max)
{
    return uffd < 0 ? -1 : scan(p, size, false, out, max);
}

int vmem_track_rearm(void *p, size_t size)
{
    return uffd < 0 || scan(p, size, true, NULL, 0) < 0 ? -1 : 0;
}

void vmem_track_stop(void *p, size_t size)
{
    if (uffd < 0 || size == 0)
        return;
    struct uffdio_range r = {(uintptr_t)p, size};
    (void)ioctl(uffd, UFFDIO_UNREGISTER, &r);
}
