/*
 * wasi_fd.c - WASI descriptor functions (fd_*): reads and writes on host fds
 * and on in-memory stdio, seeking, stat, flags, rights, preopen discovery and
 * directory listing.
 */
#include "abi/wasi/wasi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "platform/sandbox_fs.h"

/* Look up fd and require `need` rights. A missing read/write right is EBADF,
 * as POSIX reports writing to a read-only descriptor; others ENOTCAPABLE. */
static wasi_errno fd_lookup(kiln_wasi *w, uint32_t fd, uint64_t need, wasi_fd **out)
{
    wasi_fd *f = wasi_fd_get(w, fd);
    if (f == NULL)
        return WASI_EBADF;
    if ((f->rights_base & need) != need)
        return (need & (WASI_RIGHT_FD_READ | WASI_RIGHT_FD_WRITE)) ? WASI_EBADF
                                                                   : WASI_ENOTCAPABLE;
    *out = f;
    return WASI_ESUCCESS;
}

/*
 * Translate a guest iovec array into w->iov. Every buffer is bounds-checked;
 * the total is clamped to UINT32_MAX because the guest's result is a u32.
 */
static wasi_errno load_iovs(kiln_instance *inst, kiln_wasi *w, uint32_t iovs, uint32_t n,
                            int *out_n, uint64_t *out_total)
{
    if (n > WASI_IOV_MAX)
        return WASI_EINVAL;
    const uint8_t *arr = kiln_guest_array(inst, iovs, n, WASI_IOVEC_SIZE);
    if (arr == NULL)
        return WASI_EFAULT;
    uint64_t total = 0;
    int count = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t ptr = wasi_ld32(arr + (size_t)i * WASI_IOVEC_SIZE);
        uint64_t len = wasi_ld32(arr + (size_t)i * WASI_IOVEC_SIZE + 4);
        void *p = kiln_guest_ptr(inst, ptr, len);
        if (p == NULL)
            return WASI_EFAULT;
        if (total + len > UINT32_MAX)
            len = UINT32_MAX - total;
        w->iov[count].iov_base = p;
        w->iov[count].iov_len = (size_t)len;
        count++;
        total += len;
        if (total == UINT32_MAX)
            break;
    }
    *out_n = count;
    *out_total = total;
    return WASI_ESUCCESS;
}

/*
 * Wait until a stream is ready in short slices, so a deadline can unwind the
 * guest instead of hanging in a blocking read (files never block; guests that
 * set NONBLOCK get EAGAIN from the syscall itself).
 */
static bool wait_ready_bounded(const wasi_fd *f, short events)
{
    if (f->filetype == WASI_FILETYPE_REGULAR_FILE || f->filetype == WASI_FILETYPE_DIRECTORY)
        return true;
    int fl = fcntl(f->host_fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK))
        return true;
    for (;;) {
        struct pollfd p = {.fd = f->host_fd, .events = events};
        int r = poll(&p, 1, 10);
        if (r != 0 && !(r < 0 && errno == EINTR))
            return true;
        bool ok;
        uint64_t dl = kiln_host_deadline_ns();
        if ((dl != 0 && wasi_now_ns(WASI_CLOCK_MONOTONIC, &ok) >= dl) || kiln_fiber_cancelled())
            return false;
    }
}

static void wait_ready(kiln_instance *inst, const wasi_fd *f, short events)
{
    while (!wait_ready_bounded(f, events))
        kiln_host_checkpoint(inst);
}

uint32_t wasi_fd_read(kiln_instance *inst, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                      uint32_t nread_ptr)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f;
    int n;
    uint64_t total;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_READ, &f);
    if (e == WASI_ESUCCESS)
        e = load_iovs(inst, w, iovs, iovs_len, &n, &total);
    if (e == WASI_ESUCCESS && kiln_guest_ptr(inst, nread_ptr, 4) == NULL)
        e = WASI_EFAULT;
    if (e != WASI_ESUCCESS)
        return e;

    uint64_t done = 0;
    switch (f->kind) {
    case WASI_FD_HOST: {
        wait_ready(inst, f, POLLIN);
        ssize_t r = readv(f->host_fd, w->iov, n);
        int err = errno;
        if (r < 0)
            return wasi_errno_from_host(err);
        done = (uint64_t)r;
        break;
    }
    case WASI_FD_IN_BUF:
        for (int i = 0; i < n && w->in_pos < w->in_len; i++) {
            size_t c = w->in_len - w->in_pos;
            if (c > w->iov[i].iov_len)
                c = w->iov[i].iov_len;
            memcpy(w->iov[i].iov_base, w->in_data + w->in_pos, c);
            w->in_pos += c;
            done += c;
        }
        break;
    case WASI_FD_NULL:
        break;
    default:
        return WASI_EBADF;
    }
    return wasi_put32(inst, nread_ptr, (uint32_t)done);
}

uint32_t wasi_fd_write(kiln_instance *inst, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                       uint32_t nwritten_ptr)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f;
    int n;
    uint64_t total;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_WRITE, &f);
    if (e == WASI_ESUCCESS)
        e = load_iovs(inst, w, iovs, iovs_len, &n, &total);
    if (e == WASI_ESUCCESS && kiln_guest_ptr(inst, nwritten_ptr, 4) == NULL)
        e = WASI_EFAULT;
    if (e != WASI_ESUCCESS)
        return e;

    uint64_t done = 0;
    switch (f->kind) {
    case WASI_FD_HOST: {
        wait_ready(inst, f, POLLOUT);
        ssize_t r = writev(f->host_fd, w->iov, n);
        int err = errno;
        if (r < 0)
            return wasi_errno_from_host(err);
        done = (uint64_t)r;
        break;
    }
    case WASI_FD_OUT_BUF: {
        wasi_outbuf *b = &w->out[f->outbuf];
        for (int i = 0; i < n; i++) {
            long r = wasi_outbuf_write(b, w->iov[i].iov_base, w->iov[i].iov_len);
            if (r < 0) {
                if (done == 0)
                    return (uint32_t)-r;
                break;
            }
            done += (uint64_t)r;
            if ((size_t)r < w->iov[i].iov_len)
                break;
        }
        break;
    }
    case WASI_FD_NULL:
        done = total;
        break;
    default:
        return WASI_EBADF;
    }
    return wasi_put32(inst, nwritten_ptr, (uint32_t)done);
}

/* Positioned I/O on a host file: the check every caller shares. */
static wasi_errno positioned(kiln_wasi *w, uint32_t fd, uint64_t right, uint64_t offset,
                             wasi_fd **f)
{
    wasi_errno e = fd_lookup(w, fd, right | WASI_RIGHT_FD_SEEK, f);
    if (e == WASI_ESUCCESS && (*f)->kind != WASI_FD_HOST)
        e = WASI_ESPIPE;
    if (e == WASI_ESUCCESS && offset > INT64_MAX)
        e = WASI_EINVAL;
    return e;
}

wasi_errno wasi_preadv(kiln_wasi *w, uint32_t fd, const struct iovec *iov, int n,
                       uint64_t offset, size_t *done)
{
    wasi_fd *f;
    *done = 0;
    wasi_errno e = positioned(w, fd, WASI_RIGHT_FD_READ, offset, &f);
    if (e != WASI_ESUCCESS)
        return e;
    ssize_t r = preadv(f->host_fd, iov, n, (off_t)offset);
    if (r < 0)
        return wasi_errno_from_host(errno);
    *done = (size_t)r;
    return WASI_ESUCCESS;
}

wasi_errno wasi_pwritev(kiln_wasi *w, uint32_t fd, const struct iovec *iov, int n,
                        uint64_t offset, size_t *done)
{
    wasi_fd *f;
    *done = 0;
    wasi_errno e = positioned(w, fd, WASI_RIGHT_FD_WRITE, offset, &f);
    if (e != WASI_ESUCCESS)
        return e;
    ssize_t r = pwritev(f->host_fd, iov, n, (off_t)offset);
    if (r < 0)
        return wasi_errno_from_host(errno);
    *done = (size_t)r;
    return WASI_ESUCCESS;
}

wasi_errno wasi_file_size(kiln_wasi *w, uint32_t fd, uint64_t *size)
{
    wasi_fd *f;
    struct stat st;
    wasi_errno e = positioned(w, fd, WASI_RIGHT_FD_WRITE, 0, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (fstat(f->host_fd, &st) != 0)
        return wasi_errno_from_host(errno);
    *size = st.st_size < 0 ? 0 : (uint64_t)st.st_size;
    return WASI_ESUCCESS;
}

uint32_t wasi_fd_pread(kiln_instance *inst, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                       uint64_t offset, uint32_t nread_ptr)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f;
    int n;
    uint64_t total;
    size_t r;
    wasi_errno e = positioned(w, fd, WASI_RIGHT_FD_READ, offset, &f);
    if (e == WASI_ESUCCESS)
        e = load_iovs(inst, w, iovs, iovs_len, &n, &total);
    if (e == WASI_ESUCCESS && kiln_guest_ptr(inst, nread_ptr, 4) == NULL)
        e = WASI_EFAULT;
    if (e == WASI_ESUCCESS)
        e = wasi_preadv(w, fd, w->iov, n, offset, &r);
    return e != WASI_ESUCCESS ? e : wasi_put32(inst, nread_ptr, (uint32_t)r);
}

uint32_t wasi_fd_pwrite(kiln_instance *inst, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                        uint64_t offset, uint32_t nwritten_ptr)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f;
    int n;
    uint64_t total;
    size_t r;
    wasi_errno e = positioned(w, fd, WASI_RIGHT_FD_WRITE, offset, &f);
    if (e == WASI_ESUCCESS)
        e = load_iovs(inst, w, iovs, iovs_len, &n, &total);
    if (e == WASI_ESUCCESS && kiln_guest_ptr(inst, nwritten_ptr, 4) == NULL)
        e = WASI_EFAULT;
    if (e == WASI_ESUCCESS)
        e = wasi_pwritev(w, fd, w->iov, n, offset, &r);
    return e != WASI_ESUCCESS ? e : wasi_put32(inst, nwritten_ptr, (uint32_t)r);
}

uint32_t wasi_fd_seek(kiln_instance *inst, uint32_t fd, uint64_t offset, uint32_t whence,
                      uint32_t newoffset_ptr)
{
    WASI_PROLOGUE(inst, w);
    /* lseek(fd, 0, SEEK_CUR) is how wasi-libc spells ftell: TELL suffices. */
    uint64_t need = (offset == 0 && whence == WASI_WHENCE_CUR) ? WASI_RIGHT_FD_TELL
                                                                : WASI_RIGHT_FD_SEEK;
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, need, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (f->kind != WASI_FD_HOST)
        return WASI_ESPIPE;
    int how;
    switch (whence) {
    case WASI_WHENCE_SET: how = SEEK_SET; break;
    case WASI_WHENCE_CUR: how = SEEK_CUR; break;
    case WASI_WHENCE_END: how = SEEK_END; break;
    default: return WASI_EINVAL;
    }
    if (kiln_guest_ptr(inst, newoffset_ptr, 8) == NULL)
        return WASI_EFAULT;
    off_t r = lseek(f->host_fd, (off_t)(int64_t)offset, how);
    if (r < 0)
        return wasi_errno_from_host(errno);
    return wasi_put64(inst, newoffset_ptr, (uint64_t)r);
}

uint32_t wasi_fd_tell(kiln_instance *inst, uint32_t fd, uint32_t offset_ptr)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_TELL, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (f->kind != WASI_FD_HOST)
        return WASI_ESPIPE;
    off_t r = lseek(f->host_fd, 0, SEEK_CUR);
    if (r < 0)
        return wasi_errno_from_host(errno);
    return wasi_put64(inst, offset_ptr, (uint64_t)r);
}

uint32_t wasi_fd_close(kiln_instance *inst, uint32_t fd)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f = wasi_fd_get(w, fd);
    if (f == NULL)
        return WASI_EBADF;
    wasi_fd_release(f);
    return WASI_ESUCCESS;
}

wasi_errno wasi_fsync(kiln_wasi *w, uint32_t fd, bool data_only)
{
    uint64_t right = data_only ? WASI_RIGHT_FD_DATASYNC : WASI_RIGHT_FD_SYNC;
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, right, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (f->kind != WASI_FD_HOST)
        return WASI_EINVAL;
    int r = data_only ? fdatasync(f->host_fd) : fsync(f->host_fd);
    int err = errno;
    return r == 0 ? WASI_ESUCCESS : wasi_errno_from_host(err);
}

uint32_t wasi_fd_sync(kiln_instance *inst, uint32_t fd)
{
    WASI_PROLOGUE(inst, w);
    return wasi_fsync(w, fd, false);
}

uint32_t wasi_fd_datasync(kiln_instance *inst, uint32_t fd)
{
    WASI_PROLOGUE(inst, w);
    return wasi_fsync(w, fd, true);
}

uint32_t wasi_fd_advise(kiln_instance *inst, uint32_t fd, uint64_t offset, uint64_t len,
                        uint32_t advice)
{
    WASI_PROLOGUE(inst, w);
    return wasi_fadvise(w, fd, offset, len, advice);
}

wasi_errno wasi_fadvise(kiln_wasi *w, uint32_t fd, uint64_t offset, uint64_t len,
                        uint32_t advice)
{
    static const int map[] = {POSIX_FADV_NORMAL,   POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
                              POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED,   POSIX_FADV_NOREUSE};
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_ADVISE, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (advice >= sizeof(map) / sizeof(map[0]) || offset > INT64_MAX || len > INT64_MAX)
        return WASI_EINVAL;
    if (f->kind != WASI_FD_HOST)
        return WASI_ESPIPE;
    /* Advice is only a hint: directories and streams accept it silently. */
    if (f->filetype != WASI_FILETYPE_REGULAR_FILE)
        return WASI_ESUCCESS;
    int r = posix_fadvise(f->host_fd, (off_t)offset, (off_t)len, map[advice]);
    return wasi_errno_from_host(r);
}

uint32_t wasi_fd_allocate(kiln_instance *inst, uint32_t fd, uint64_t offset, uint64_t len)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_ALLOCATE, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (f->read_only)
        return WASI_EROFS;
    if (f->kind != WASI_FD_HOST)
        return WASI_ESPIPE;
    if (offset > INT64_MAX || len > INT64_MAX || offset + len > INT64_MAX)
        return WASI_EFBIG;
    int r = posix_fallocate(f->host_fd, (off_t)offset, (off_t)len);
    return wasi_errno_from_host(r);
}

uint16_t wasi_fd_flags(const wasi_fd *f)
{
    if (f->kind != WASI_FD_HOST)
        return f->fdflags;
    int fl = fcntl(f->host_fd, F_GETFL);
    if (fl < 0)
        return 0;
    uint16_t r = 0;
    if (fl & O_APPEND)
        r |= WASI_FDFLAGS_APPEND;
    if (fl & O_NONBLOCK)
        r |= WASI_FDFLAGS_NONBLOCK;
    if ((fl & O_SYNC) == O_SYNC)
        r |= WASI_FDFLAGS_SYNC;
    else if (fl & O_DSYNC)
        r |= WASI_FDFLAGS_DSYNC;
    return r;
}

uint32_t wasi_fd_fdstat_get(kiln_instance *inst, uint32_t fd, uint32_t buf)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f = wasi_fd_get(w, fd);
    if (f == NULL)
        return WASI_EBADF;
    uint8_t *p = kiln_guest_ptr(inst, buf, WASI_FDSTAT_SIZE);
    if (p == NULL)
        return WASI_EFAULT;
    memset(p, 0, WASI_FDSTAT_SIZE);
    wasi_st8(p + 0, f->filetype);
    wasi_st16(p + 2, wasi_fd_flags(f));
    wasi_st64(p + 8, f->rights_base);
    wasi_st64(p + 16, f->rights_inheriting);
    return WASI_ESUCCESS;
}

uint32_t wasi_fd_fdstat_set_flags(kiln_instance *inst, uint32_t fd, uint32_t flags)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_FDSTAT_SET_FLAGS, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (flags & ~(uint32_t)(WASI_FDFLAGS_APPEND | WASI_FDFLAGS_DSYNC | WASI_FDFLAGS_NONBLOCK |
                            WASI_FDFLAGS_RSYNC | WASI_FDFLAGS_SYNC))
        return WASI_EINVAL;
    /* Linux cannot change the sync flags of an open file. */
    if (flags & (WASI_FDFLAGS_DSYNC | WASI_FDFLAGS_RSYNC | WASI_FDFLAGS_SYNC))
        return WASI_ENOTSUP;
    if (f->kind != WASI_FD_HOST) {
        f->fdflags = (uint16_t)flags;
        return WASI_ESUCCESS;
    }
    /* A borrowed host stream (the terminal, a shared pipe) is also the host
     * process's: NONBLOCK on it would leak into the embedder and its parent. */
    if (!f->owned)
        return WASI_ENOTSUP;
    if (f->read_only && (flags & WASI_FDFLAGS_APPEND))
        return WASI_EROFS;
    int fl = fcntl(f->host_fd, F_GETFL);
    if (fl < 0)
        return wasi_errno_from_host(errno);
    fl &= ~(O_APPEND | O_NONBLOCK);
    if (flags & WASI_FDFLAGS_APPEND)
        fl |= O_APPEND;
    if (flags & WASI_FDFLAGS_NONBLOCK)
        fl |= O_NONBLOCK;
    return fcntl(f->host_fd, F_SETFL, fl) == 0 ? WASI_ESUCCESS : wasi_errno_from_host(errno);
}

uint32_t wasi_fd_fdstat_set_rights(kiln_instance *inst, uint32_t fd, uint64_t base,
                                   uint64_t inheriting)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f = wasi_fd_get(w, fd);
    if (f == NULL)
        return WASI_EBADF;
    /* Rights can only shrink. */
    if ((base & ~f->rights_base) || (inheriting & ~f->rights_inheriting))
        return WASI_ENOTCAPABLE;
    f->rights_base = base;
    f->rights_inheriting = inheriting;
    return WASI_ESUCCESS;
}

wasi_errno wasi_fstat(kiln_wasi *w, uint32_t fd, struct stat *st)
{
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_FILESTAT_GET, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (f->kind != WASI_FD_HOST)
        return WASI_EBADF;
    return fstat(f->host_fd, st) == 0 ? WASI_ESUCCESS : wasi_errno_from_host(errno);
}

uint32_t wasi_fd_filestat_get(kiln_instance *inst, uint32_t fd, uint32_t buf)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_FILESTAT_GET, &f);
    if (e != WASI_ESUCCESS)
        return e;
    uint8_t *p = kiln_guest_ptr(inst, buf, WASI_FILESTAT_SIZE);
    if (p == NULL)
        return WASI_EFAULT;
    if (f->kind == WASI_FD_HOST) {
        struct stat st;
        e = wasi_fstat(w, fd, &st);
        if (e != WASI_ESUCCESS)
            return e;
        wasi_filestat_store(p, &st);
    } else {
        memset(p, 0, WASI_FILESTAT_SIZE);
        wasi_st8(p + 16, f->filetype);
        if (f->kind == WASI_FD_IN_BUF)
            wasi_st64(p + 32, (uint64_t)(w->in_len - w->in_pos));
        else if (f->kind == WASI_FD_OUT_BUF)
            wasi_st64(p + 32, (uint64_t)w->out[f->outbuf].len);
    }
    return WASI_ESUCCESS;
}

uint32_t wasi_fd_filestat_set_size(kiln_instance *inst, uint32_t fd, uint64_t size)
{
    WASI_PROLOGUE(inst, w);
    return wasi_ftruncate(w, fd, size);
}

wasi_errno wasi_ftruncate(kiln_wasi *w, uint32_t fd, uint64_t size)
{
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_FILESTAT_SET_SIZE, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (f->read_only)
        return WASI_EROFS;
    if (f->kind != WASI_FD_HOST)
        return WASI_EINVAL;
    if (size > INT64_MAX)
        return WASI_EFBIG;
    int r = ftruncate(f->host_fd, (off_t)size);
    int err = errno;
    return r == 0 ? WASI_ESUCCESS : wasi_errno_from_host(err);
}

wasi_errno wasi_times(uint64_t atim, uint64_t mtim, uint32_t fst, struct timespec ts[2])
{
    if (fst & ~(uint32_t)(WASI_FSTFLAGS_ATIM | WASI_FSTFLAGS_ATIM_NOW | WASI_FSTFLAGS_MTIM |
                          WASI_FSTFLAGS_MTIM_NOW))
        return WASI_EINVAL;
    if ((fst & WASI_FSTFLAGS_ATIM) && (fst & WASI_FSTFLAGS_ATIM_NOW))
        return WASI_EINVAL;
    if ((fst & WASI_FSTFLAGS_MTIM) && (fst & WASI_FSTFLAGS_MTIM_NOW))
        return WASI_EINVAL;
    const uint64_t t[2] = {atim, mtim};
    const uint32_t set[2] = {WASI_FSTFLAGS_ATIM, WASI_FSTFLAGS_MTIM};
    const uint32_t now[2] = {WASI_FSTFLAGS_ATIM_NOW, WASI_FSTFLAGS_MTIM_NOW};
    for (int i = 0; i < 2; i++) {
        ts[i].tv_sec = 0;
        if (fst & set[i]) {
            ts[i].tv_sec = (time_t)(t[i] / 1000000000u);
            ts[i].tv_nsec = (long)(t[i] % 1000000000u);
        } else if (fst & now[i]) {
            ts[i].tv_nsec = UTIME_NOW;
        } else {
            ts[i].tv_nsec = UTIME_OMIT;
        }
    }
    return WASI_ESUCCESS;
}

wasi_errno wasi_futimens(kiln_wasi *w, uint32_t fd, const struct timespec ts[2])
{
    wasi_fd *f = wasi_fd_get(w, fd);
    if (f == NULL)
        return WASI_EBADF;
    if (f->read_only)
        return WASI_EROFS;
    if (!(f->rights_base & WASI_RIGHT_FD_FILESTAT_SET_TIMES))
        return WASI_ENOTCAPABLE;
    if (f->kind != WASI_FD_HOST)
        return WASI_EINVAL;
    return futimens(f->host_fd, ts) == 0 ? WASI_ESUCCESS : wasi_errno_from_host(errno);
}

uint32_t wasi_fd_filestat_set_times(kiln_instance *inst, uint32_t fd, uint64_t atim,
                                    uint64_t mtim, uint32_t fst)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f = wasi_fd_get(w, fd);
    if (f == NULL)
        return WASI_EBADF;
    if (f->read_only)
        return WASI_EROFS;
    if (!(f->rights_base & WASI_RIGHT_FD_FILESTAT_SET_TIMES))
        return WASI_ENOTCAPABLE;
    struct timespec ts[2];
    wasi_errno e = wasi_times(atim, mtim, fst, ts);
    return e != WASI_ESUCCESS ? e : wasi_futimens(w, fd, ts);
}

uint32_t wasi_fd_prestat_get(kiln_instance *inst, uint32_t fd, uint32_t buf)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f = wasi_fd_get(w, fd);
    if (f == NULL || f->preopen == NULL)
        return WASI_EBADF;
    uint8_t *p = kiln_guest_ptr(inst, buf, WASI_PRESTAT_SIZE);
    if (p == NULL)
        return WASI_EFAULT;
    memset(p, 0, WASI_PRESTAT_SIZE);
    wasi_st8(p, WASI_PREOPENTYPE_DIR);
    wasi_st32(p + 4, (uint32_t)strlen(f->preopen));
    return WASI_ESUCCESS;
}

uint32_t wasi_fd_prestat_dir_name(kiln_instance *inst, uint32_t fd, uint32_t path,
                                  uint32_t path_len)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f = wasi_fd_get(w, fd);
    if (f == NULL || f->preopen == NULL)
        return WASI_EBADF;
    size_t len = strlen(f->preopen);
    if (path_len < len)
        return WASI_ENAMETOOLONG;
    uint8_t *p = kiln_guest_ptr(inst, path, len);
    if (p == NULL)
        return WASI_EFAULT;
    memcpy(p, f->preopen, len);
    return WASI_ESUCCESS;
}

/* ---- fd_readdir ------------------------------------------------------------- */

/* Enough for any real directory; bounds what a guest can make the host hold. */
#define WASI_READDIR_MAX_ENTRIES (1u << 20)

static int dir_add(void *arg, uint64_t ino, unsigned type, const char *name)
{
    wasi_dir_cache *d = arg;
    size_t len = strlen(name);
    if (d->n >= WASI_READDIR_MAX_ENTRIES || d->names_len + len > UINT32_MAX)
        return -EOVERFLOW;
    if (d->n == d->alloc) {
        size_t na = d->alloc ? d->alloc * 2 : 64;
        wasi_dir_entry *p = kiln_realloc(d->entries, na * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        d->entries = p;
        d->alloc = na;
    }
    if (d->names_len + len > d->names_alloc) {
        size_t na = d->names_alloc ? d->names_alloc : 1024;
        while (na < d->names_len + len)
            na *= 2;
        char *p = kiln_realloc(d->names, na);
        if (p == NULL)
            return -ENOMEM;
        d->names = p;
        d->names_alloc = na;
    }
    memcpy(d->names + d->names_len, name, len);
    wasi_dir_entry *e = &d->entries[d->n++];
    e->ino = ino;
    e->name_off = (uint32_t)d->names_len;
    e->name_len = (uint32_t)len;
    e->filetype = type ? wasi_filetype_of_mode(type) : WASI_FILETYPE_UNKNOWN;
    d->names_len += len;
    return 0;
}

wasi_errno wasi_dir_list(kiln_wasi *w, uint32_t fd, wasi_dir_cache *d)
{
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_READDIR, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (f->kind != WASI_FD_HOST || f->filetype != WASI_FILETYPE_DIRECTORY)
        return WASI_ENOTDIR;
    d->n = 0;
    d->names_len = 0;
    int rc = sbx_readdir(f->host_fd, dir_add, d);
    if (rc != 0) {
        d->n = 0;
        return wasi_errno_from_host(rc);
    }
    return WASI_ESUCCESS;
}

void wasi_dir_free(wasi_dir_cache *d)
{
    if (d == NULL)
        return;
    kiln_free(d->entries);
    kiln_free(d->names);
    kiln_free(d);
}

uint32_t wasi_fd_readdir(kiln_instance *inst, uint32_t fd, uint32_t buf, uint32_t buf_len,
                         uint64_t cookie, uint32_t bufused_ptr)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *f;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_READDIR, &f);
    if (e != WASI_ESUCCESS)
        return e;
    if (f->kind != WASI_FD_HOST || f->filetype != WASI_FILETYPE_DIRECTORY)
        return WASI_ENOTDIR;
    uint8_t *out = kiln_guest_ptr(inst, buf, buf_len);
    if (out == NULL || kiln_guest_ptr(inst, bufused_ptr, 4) == NULL)
        return WASI_EFAULT;

    /* Cookie 0 (re)starts the listing from a fresh snapshot; later cookies
     * index into the snapshot, so entries are neither skipped nor repeated
     * while the guest walks it in buffer-sized pieces. */
    if (cookie == 0 || f->dir == NULL) {
        if (f->dir == NULL) {
            f->dir = kiln_calloc(1, sizeof(*f->dir));
            if (f->dir == NULL)
                return WASI_ENOMEM;
        }
        e = wasi_dir_list(w, fd, f->dir);
        if (e != WASI_ESUCCESS)
            return e;
    }
    const wasi_dir_cache *d = f->dir;
    size_t used = 0;
    for (uint64_t i = cookie; i < d->n && used < buf_len; i++) {
        const wasi_dir_entry *de = &d->entries[i];
        uint8_t hdr[WASI_DIRENT_SIZE];
        memset(hdr, 0, sizeof(hdr));
        wasi_st64(hdr + 0, i + 1);
        wasi_st64(hdr + 8, de->ino);
        wasi_st32(hdr + 16, de->name_len);
        wasi_st8(hdr + 20, de->filetype);
        /* A partial last entry is expected: wasi-libc sees a full buffer and
         * retries with a larger one. */
        size_t c = buf_len - used < sizeof(hdr) ? buf_len - used : sizeof(hdr);
        memcpy(out + used, hdr, c);
        used += c;
        c = buf_len - used < de->name_len ? buf_len - used : de->name_len;
        memcpy(out + used, d->names + de->name_off, c);
        used += c;
    }
    return wasi_put32(inst, bufused_ptr, (uint32_t)used);
}

uint32_t wasi_fd_renumber(kiln_instance *inst, uint32_t from, uint32_t to)
{
    WASI_PROLOGUE(inst, w);
    wasi_fd *a = wasi_fd_get(w, from);
    wasi_fd *b = wasi_fd_get(w, to);
    if (a == NULL || b == NULL)
        return WASI_EBADF;
    if (from == to)
        return WASI_ESUCCESS;
    wasi_fd_release(b);
    *b = *a;
    memset(a, 0, sizeof(*a));
    a->host_fd = -1;
    return WASI_ESUCCESS;
}

/* ---- byte streams for WASI 0.2 (src/component/cm_wasi.c) ------------------ */

wasi_errno wasi_stream_write(kiln_instance *inst, kiln_wasi *w, uint32_t fd, const void *buf,
                             size_t len, size_t *done)
{
    wasi_fd *f;
    *done = 0;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_WRITE, &f);
    if (e != WASI_ESUCCESS)
        return e;
    switch (f->kind) {
    case WASI_FD_HOST:
        while (*done < len) {
            if (!wait_ready_bounded(f, POLLOUT))
                return *done ? WASI_ESUCCESS : WASI_EINTR;
            ssize_t r = write(f->host_fd, (const char *)buf + *done, len - *done);
            if (r < 0)
                return *done ? WASI_ESUCCESS : wasi_errno_from_host(errno);
            *done += (size_t)r;
        }
        return WASI_ESUCCESS;
    case WASI_FD_OUT_BUF: {
        long r = wasi_outbuf_write(&w->out[f->outbuf], buf, len);
        if (r < 0)
            return (wasi_errno)-r;
        *done = (size_t)r;
        return WASI_ESUCCESS;
    }
    case WASI_FD_NULL:
        *done = len;
        return WASI_ESUCCESS;
    default:
        return WASI_EBADF;
    }
}

wasi_errno wasi_stream_read(kiln_instance *inst, kiln_wasi *w, uint32_t fd, void *buf, size_t len,
                            size_t *done)
{
    wasi_fd *f;
    *done = 0;
    wasi_errno e = fd_lookup(w, fd, WASI_RIGHT_FD_READ, &f);
    if (e != WASI_ESUCCESS)
        return e;
    switch (f->kind) {
    case WASI_FD_HOST: {
        if (!wait_ready_bounded(f, POLLIN))
            return WASI_EINTR;
        ssize_t r = read(f->host_fd, buf, len);
        if (r < 0)
            return wasi_errno_from_host(errno);
        *done = (size_t)r;
        return WASI_ESUCCESS;
    }
    case WASI_FD_IN_BUF: {
        size_t c = w->in_len - w->in_pos;
        if (c > len)
            c = len;
        if (c) /* in_data may be NULL for an empty stdin */
            memcpy(buf, w->in_data + w->in_pos, c);
        w->in_pos += c;
        *done = c;
        return WASI_ESUCCESS;
    }
    case WASI_FD_NULL:
        return WASI_ESUCCESS;
    default:
        return WASI_EBADF;
    }
}
