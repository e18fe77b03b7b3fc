/*
 * wasi_path.c - WASI path functions (path_*). Every path is resolved beneath
 * the directory descriptor it is relative to by platform/sandbox_fs.h; this
 * file adds rights checks, read-only preopens and guest-memory validation.
 *
 * Each operation is a host-value core (wasi_open_at, wasi_mkdir_at, ...:
 * C strings in, wasi_errno out, declared in wasi.h) shared with WASI 0.2's
 * wasi:filesystem (src/component/cm_wasi_fs.c), and a preview-1 wrapper
 * that reads the guest's paths and stores the guest's results.
 */
#include "abi/wasi/wasi.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform/sandbox_fs.h"

/*
 * Look up a directory descriptor for a path operation. `modifies`: the
 * operation writes below the directory, which a read-only preopen refuses
 * with EROFS before any rights are considered.
 */
static wasi_errno dir_lookup(kiln_wasi *w, uint32_t fd, uint64_t need, bool modifies,
                             wasi_fd **out)
{
    wasi_fd *f = wasi_fd_get(w, fd);
    if (f == NULL)
        return WASI_EBADF;
    if (f->kind != WASI_FD_HOST || f->filetype != WASI_FILETYPE_DIRECTORY)
        return WASI_ENOTDIR;
    if (modifies && f->read_only)
        return WASI_EROFS;
    if ((f->rights_base & need) != need)
        return WASI_ENOTCAPABLE;
    *out = f;
    return WASI_ESUCCESS;
}

wasi_errno wasi_open_at(kiln_wasi *w, uint32_t dirfd, uint32_t dirflags, const char *path,
                        uint32_t oflags, uint64_t rights_base, uint64_t rights_inheriting,
                        uint32_t fdflags, uint32_t *out_fd)
{
    if (oflags & ~(uint32_t)(WASI_OFLAGS_CREAT | WASI_OFLAGS_DIRECTORY | WASI_OFLAGS_EXCL |
                             WASI_OFLAGS_TRUNC))
        return WASI_EINVAL;
    if (fdflags & ~(uint32_t)(WASI_FDFLAGS_APPEND | WASI_FDFLAGS_DSYNC | WASI_FDFLAGS_NONBLOCK |
                              WASI_FDFLAGS_RSYNC | WASI_FDFLAGS_SYNC))
        return WASI_EINVAL;
    bool write = (rights_base & WASI_RIGHTS_FILE_WRITE) || (fdflags & WASI_FDFLAGS_APPEND);
    bool read = (rights_base & (WASI_RIGHT_FD_READ | WASI_RIGHT_FD_READDIR)) != 0;
    bool modifies = write || (oflags & (WASI_OFLAGS_CREAT | WASI_OFLAGS_TRUNC));
    wasi_fd *d;
    wasi_errno e = dir_lookup(w, dirfd, WASI_RIGHT_PATH_OPEN, modifies, &d);
    if (e != WASI_ESUCCESS)
        return e;
    if ((oflags & WASI_OFLAGS_CREAT) && !(d->rights_base & WASI_RIGHT_PATH_CREATE_FILE))
        return WASI_ENOTCAPABLE;

    int flags = (read && write) ? O_RDWR : write ? O_WRONLY : O_RDONLY;
    if (oflags & WASI_OFLAGS_CREAT)
        flags |= O_CREAT;
    if (oflags & WASI_OFLAGS_DIRECTORY)
        flags |= O_DIRECTORY;
    if (oflags & WASI_OFLAGS_EXCL)
        flags |= O_EXCL;
    if (oflags & WASI_OFLAGS_TRUNC)
        flags |= O_TRUNC;
    if (fdflags & WASI_FDFLAGS_APPEND)
        flags |= O_APPEND;
    if (fdflags & WASI_FDFLAGS_DSYNC)
        flags |= O_DSYNC;
    if (fdflags & WASI_FDFLAGS_NONBLOCK)
        flags |= O_NONBLOCK;
    if (fdflags & WASI_FDFLAGS_RSYNC)
        flags |= O_RSYNC;
    if (fdflags & WASI_FDFLAGS_SYNC)
        flags |= O_SYNC;
    if (!(dirflags & WASI_LOOKUP_SYMLINK_FOLLOW))
        flags |= O_NOFOLLOW;

    /* Reserve the slot first (it may reallocate the table, and `d` with it)
     * and park the new host fd in it: the context owns and closes it. */
    uint32_t nfd;
    e = wasi_fd_alloc(w, &nfd);
    if (e != WASI_ESUCCESS)
        return e;
    d = &w->fds[dirfd];
    wasi_fd *f = &w->fds[nfd];
    int hfd = -1;
    int rc = sbx_openat(d->host_fd, path, flags, 0666, &hfd);
    if (rc == 0) {
        f->kind = WASI_FD_HOST;
        f->host_fd = hfd;
        f->owned = true;
    }
    if (rc != 0)
        return wasi_errno_from_host(rc);

    struct stat st;
    if (fstat(hfd, &st) != 0) {
        e = wasi_errno_from_host(errno);
        wasi_fd_release(f);
        return e;
    }
    f->filetype = wasi_filetype_of_mode(st.st_mode);
    f->read_only = d->read_only;
    if (S_ISDIR(st.st_mode)) {
        f->rights_base = rights_base & WASI_RIGHTS_DIR & d->rights_inheriting;
        if (f->read_only)
            f->rights_base &= ~WASI_RIGHTS_DIR_WRITE;
    } else {
        f->rights_base = rights_base & WASI_RIGHTS_FILE & d->rights_inheriting;
        if (!write)
            f->rights_base &= ~WASI_RIGHTS_FILE_WRITE;
        if (f->read_only)
            f->rights_base &= ~WASI_RIGHT_FD_FILESTAT_SET_TIMES;
        if (!read)
            f->rights_base &= ~WASI_RIGHT_FD_READ;
    }
    f->rights_inheriting = rights_inheriting & d->rights_inheriting;
    *out_fd = nfd;
    return WASI_ESUCCESS;
}

uint32_t wasi_path_open(kiln_instance *inst, uint32_t dirfd, uint32_t dirflags, uint32_t path,
                        uint32_t path_len, uint32_t oflags, uint64_t rights_base,
                        uint64_t rights_inheriting, uint32_t fdflags, uint32_t fd_out)
{
    WASI_PROLOGUE(inst, w);
    wasi_errno e = wasi_guest_path(inst, path, path_len, w->path[0]);
    if (e != WASI_ESUCCESS)
        return e;
    if (kiln_guest_ptr(inst, fd_out, 4) == NULL)
        return WASI_EFAULT;
    uint32_t nfd;
    e = wasi_open_at(w, dirfd, dirflags, w->path[0], oflags, rights_base, rights_inheriting,
                     fdflags, &nfd);
    return e != WASI_ESUCCESS ? e : wasi_put32(inst, fd_out, nfd);
}

wasi_errno wasi_mkdir_at(kiln_wasi *w, uint32_t fd, const char *path)
{
    wasi_fd *d;
    wasi_errno e = dir_lookup(w, fd, WASI_RIGHT_PATH_CREATE_DIRECTORY, true, &d);
    return e != WASI_ESUCCESS ? e : wasi_errno_from_host(sbx_mkdir(d->host_fd, path, 0777));
}

wasi_errno wasi_rmdir_at(kiln_wasi *w, uint32_t fd, const char *path)
{
    wasi_fd *d;
    wasi_errno e = dir_lookup(w, fd, WASI_RIGHT_PATH_REMOVE_DIRECTORY, true, &d);
    return e != WASI_ESUCCESS ? e : wasi_errno_from_host(sbx_rmdir(d->host_fd, path));
}

wasi_errno wasi_unlink_at(kiln_wasi *w, uint32_t fd, const char *path)
{
    wasi_fd *d;
    wasi_errno e = dir_lookup(w, fd, WASI_RIGHT_PATH_UNLINK_FILE, true, &d);
    return e != WASI_ESUCCESS ? e : wasi_errno_from_host(sbx_unlink(d->host_fd, path));
}

wasi_errno wasi_stat_at(kiln_wasi *w, uint32_t fd, bool follow, const char *path,
                        struct stat *st)
{
    wasi_fd *d;
    wasi_errno e = dir_lookup(w, fd, WASI_RIGHT_PATH_FILESTAT_GET, false, &d);
    return e != WASI_ESUCCESS ? e : wasi_errno_from_host(sbx_stat(d->host_fd, path, follow, st));
}

wasi_errno wasi_utimes_at(kiln_wasi *w, uint32_t fd, bool follow, const char *path,
                          const struct timespec ts[2])
{
    wasi_fd *d;
    wasi_errno e = dir_lookup(w, fd, WASI_RIGHT_PATH_FILESTAT_SET_TIMES, true, &d);
    return e != WASI_ESUCCESS ? e : wasi_errno_from_host(sbx_utimes(d->host_fd, path, follow, ts));
}

wasi_errno wasi_readlink_at(kiln_wasi *w, uint32_t fd, const char *path, char *buf, size_t len,
                            size_t *n)
{
    wasi_fd *d;
    wasi_errno e = dir_lookup(w, fd, WASI_RIGHT_PATH_READLINK, false, &d);
    return e != WASI_ESUCCESS ? e : wasi_errno_from_host(sbx_readlink(d->host_fd, path, buf, len, n));
}

wasi_errno wasi_rename_at(kiln_wasi *w, uint32_t fd, const char *old_path, uint32_t new_fd,
                          const char *new_path)
{
    wasi_fd *a, *b;
    /* The source counts as modified too: renaming out of a read-only tree
     * would hand its files to a writable one. */
    wasi_errno e = dir_lookup(w, fd, WASI_RIGHT_PATH_RENAME_SOURCE, true, &a);
    if (e == WASI_ESUCCESS)
        e = dir_lookup(w, new_fd, WASI_RIGHT_PATH_RENAME_TARGET, true, &b);
    if (e != WASI_ESUCCESS)
        return e;
    return wasi_errno_from_host(sbx_rename(a->host_fd, old_path, b->host_fd, new_path));
}

wasi_errno wasi_link_at(kiln_wasi *w, uint32_t old_fd, uint32_t old_flags, const char *old_path,
                        uint32_t new_fd, const char *new_path)
{
    wasi_fd *a, *b;
    /* Following a final symlink would need linkat(AT_EMPTY_PATH), which
     * requires CAP_DAC_READ_SEARCH; link the symlink itself or nothing. */
    if (old_flags & WASI_LOOKUP_SYMLINK_FOLLOW)
        return WASI_ENOTSUP;
    /* A hard link from a read-only tree into a writable one would make the
     * file writable: the source side counts as modified. */
    wasi_errno e = dir_lookup(w, old_fd, WASI_RIGHT_PATH_LINK_SOURCE, true, &a);
    if (e == WASI_ESUCCESS)
        e = dir_lookup(w, new_fd, WASI_RIGHT_PATH_LINK_TARGET, true, &b);
    if (e != WASI_ESUCCESS)
        return e;
    return wasi_errno_from_host(sbx_link(a->host_fd, old_path, b->host_fd, new_path));
}

wasi_errno wasi_symlink_at(kiln_wasi *w, const char *target, uint32_t fd, const char *path)
{
    wasi_fd *d;
    wasi_errno e = dir_lookup(w, fd, WASI_RIGHT_PATH_SYMLINK, true, &d);
    return e != WASI_ESUCCESS ? e : wasi_errno_from_host(sbx_symlink(target, d->host_fd, path));
}

/* ---- preview-1 wrappers: guest paths in, guest results out ------------------ */

uint32_t wasi_path_create_directory(kiln_instance *inst, uint32_t fd, uint32_t path,
                                    uint32_t path_len)
{
    WASI_PROLOGUE(inst, w);
    wasi_errno e = wasi_guest_path(inst, path, path_len, w->path[0]);
    return e != WASI_ESUCCESS ? e : wasi_mkdir_at(w, fd, w->path[0]);
}

uint32_t wasi_path_remove_directory(kiln_instance *inst, uint32_t fd, uint32_t path,
                                    uint32_t path_len)
{
    WASI_PROLOGUE(inst, w);
    wasi_errno e = wasi_guest_path(inst, path, path_len, w->path[0]);
    return e != WASI_ESUCCESS ? e : wasi_rmdir_at(w, fd, w->path[0]);
}

uint32_t wasi_path_unlink_file(kiln_instance *inst, uint32_t fd, uint32_t path,
                               uint32_t path_len)
{
    WASI_PROLOGUE(inst, w);
    wasi_errno e = wasi_guest_path(inst, path, path_len, w->path[0]);
    return e != WASI_ESUCCESS ? e : wasi_unlink_at(w, fd, w->path[0]);
}

uint32_t wasi_path_filestat_get(kiln_instance *inst, uint32_t fd, uint32_t flags, uint32_t path,
                                uint32_t path_len, uint32_t buf)
{
    WASI_PROLOGUE(inst, w);
    wasi_errno e = wasi_guest_path(inst, path, path_len, w->path[0]);
    if (e != WASI_ESUCCESS)
        return e;
    uint8_t *p = kiln_guest_ptr(inst, buf, WASI_FILESTAT_SIZE);
    if (p == NULL)
        return WASI_EFAULT;
    struct stat st;
    e = wasi_stat_at(w, fd, (flags & WASI_LOOKUP_SYMLINK_FOLLOW) != 0, w->path[0], &st);
    if (e == WASI_ESUCCESS)
        wasi_filestat_store(p, &st);
    return e;
}

uint32_t wasi_path_filestat_set_times(kiln_instance *inst, uint32_t fd, uint32_t flags,
                                      uint32_t path, uint32_t path_len, uint64_t atim,
                                      uint64_t mtim, uint32_t fst)
{
    WASI_PROLOGUE(inst, w);
    struct timespec ts[2];
    wasi_errno e = wasi_times(atim, mtim, fst, ts);
    if (e == WASI_ESUCCESS)
        e = wasi_guest_path(inst, path, path_len, w->path[0]);
    if (e != WASI_ESUCCESS)
        return e;
    return wasi_utimes_at(w, fd, (flags & WASI_LOOKUP_SYMLINK_FOLLOW) != 0, w->path[0], ts);
}

uint32_t wasi_path_readlink(kiln_instance *inst, uint32_t fd, uint32_t path, uint32_t path_len,
                            uint32_t buf, uint32_t buf_len, uint32_t bufused_ptr)
{
    WASI_PROLOGUE(inst, w);
    wasi_errno e = wasi_guest_path(inst, path, path_len, w->path[0]);
    if (e != WASI_ESUCCESS)
        return e;
    char *out = kiln_guest_ptr(inst, buf, buf_len);
    if (out == NULL || kiln_guest_ptr(inst, bufused_ptr, 4) == NULL)
        return WASI_EFAULT;
    size_t n = 0;
    e = wasi_readlink_at(w, fd, w->path[0], out, buf_len, &n);
    return e != WASI_ESUCCESS ? e : wasi_put32(inst, bufused_ptr, (uint32_t)n);
}

uint32_t wasi_path_rename(kiln_instance *inst, uint32_t fd, uint32_t old_path, uint32_t old_len,
                          uint32_t new_fd, uint32_t new_path, uint32_t new_len)
{
    WASI_PROLOGUE(inst, w);
    wasi_errno e = wasi_guest_path(inst, old_path, old_len, w->path[0]);
    if (e == WASI_ESUCCESS)
        e = wasi_guest_path(inst, new_path, new_len, w->path[1]);
    return e != WASI_ESUCCESS ? e : wasi_rename_at(w, fd, w->path[0], new_fd, w->path[1]);
}

uint32_t wasi_path_link(kiln_instance *inst, uint32_t old_fd, uint32_t old_flags,
                        uint32_t old_path, uint32_t old_len, uint32_t new_fd, uint32_t new_path,
                        uint32_t new_len)
{
    WASI_PROLOGUE(inst, w);
    wasi_errno e = wasi_guest_path(inst, old_path, old_len, w->path[0]);
    if (e == WASI_ESUCCESS)
        e = wasi_guest_path(inst, new_path, new_len, w->path[1]);
    if (e != WASI_ESUCCESS)
        return e;
    return wasi_link_at(w, old_fd, old_flags, w->path[0], new_fd, w->path[1]);
}

uint32_t wasi_path_symlink(kiln_instance *inst, uint32_t old_path, uint32_t old_len, uint32_t fd,
                           uint32_t new_path, uint32_t new_len)
{
    WASI_PROLOGUE(inst, w);
    wasi_errno e = wasi_guest_path(inst, old_path, old_len, w->path[0]);
    if (e == WASI_ESUCCESS)
        e = wasi_guest_path(inst, new_path, new_len, w->path[1]);
    return e != WASI_ESUCCESS ? e : wasi_symlink_at(w, w->path[0], fd, w->path[1]);
}
