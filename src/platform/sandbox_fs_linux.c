/*
 * sandbox_fs_linux.c - sandbox_fs.h on Linux: openat2(2) with RESOLVE_BENEATH
 * confines every lookup to a root directory fd; getrandom(2) for entropy.
 */
#include "platform/sandbox_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#else
struct open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_BENEATH 0x08
#endif

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* openat2 returns EAGAIN when a concurrent rename makes RESOLVE_BENEATH unsure
 * whether the walk stayed inside; retrying a few times is the documented fix. */
enum { OPENAT2_RETRIES = 16 };

/* -1: not probed, 0: unavailable, 1: available. */
static atomic_int openat2_state = -1;

static int raw_openat2(int dirfd, const char *path, int flags, unsigned mode)
{
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC);
    /* The kernel rejects a mode without O_CREAT/O_TMPFILE (and O_TMPFILE
     * contains the O_DIRECTORY bit, so test it as a whole). */
    how.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long r = -1;
    for (int i = 0; i < OPENAT2_RETRIES; i++) {
        r = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        if (r >= 0 || (errno != EAGAIN && errno != EINTR))
            break;
    }
    return (int)r;
}

bool sbx_available(void)
{
    int st = atomic_load(&openat2_state);
    if (st < 0) {
        int fd = raw_openat2(AT_FDCWD, ".", O_PATH | O_DIRECTORY, 0);
        /* ENOSYS: kernel older than 5.6; EPERM: a seccomp filter that does
         * not know the syscall. Anything else means the call itself exists. */
        st = (fd >= 0 || (errno != ENOSYS && errno != EPERM)) ? 1 : 0;
        if (fd >= 0)
            close(fd);
        atomic_store(&openat2_state, st);
    }
    return st == 1;
}

/* openat2 beneath dirfd, with the kernel's escape error made explicit. */
static int beneath(int dirfd, const char *path, int flags, unsigned mode, int *out_fd)
{
    if (!sbx_available())
        return -SBX_ENOTCAPABLE;
    if (path[0] == '\0')
        return -ENOENT;
    int fd = raw_openat2(dirfd, path, flags, mode);
    if (fd < 0) {
        /* RESOLVE_BENEATH reports an escape (absolute path, `..` above the
         * root, a symlink leading out) as EXDEV. */
        return errno == EXDEV ? -SBX_ENOTCAPABLE : -errno;
    }
    *out_fd = fd;
    return 0;
}

int sbx_open_root(const char *host_path, int *out_fd)
{
    int fd = open(host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    *out_fd = fd;
    return 0;
}

int sbx_openat(int dirfd, const char *path, int flags, unsigned mode, int *out_fd)
{
    return beneath(dirfd, path, flags | O_NOCTTY, mode, out_fd);
}

/* ---- parent + final component ----------------------------------------- */

typedef struct parent {
    int fd;         /* the directory holding `name` */
    bool owned;     /* fd must be closed */
    bool slash;     /* the path ended in '/' */
    bool dots;      /* name is "." or ".." */
    char name[NAME_MAX + 1];
} parent;

static void parent_close(parent *p)
{
    if (p->owned)
        close(p->fd);
    p->owned = false;
}

/*
 * Resolve everything but the last component of `path` beneath `dirfd`. The
 * final name never contains '/', so *at() calls on it cannot be redirected
 * outside by the path itself; the ops below never follow it when it is a
 * symlink.
 */
static int parent_open(int dirfd, const char *path, parent *p)
{
    char buf[SBX_PATH_MAX];
    size_t len = strlen(path);
    memset(p, 0, sizeof(*p));
    p->fd = -1;
    if (len == 0)
        return -ENOENT;
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    if (path[0] == '/')
        return -SBX_ENOTCAPABLE;
    memcpy(buf, path, len + 1);
    while (len > 0 && buf[len - 1] == '/') {
        buf[--len] = '\0';
        p->slash = true;
    }
    char *slash = strrchr(buf, '/');
    const char *name = slash ? slash + 1 : buf;
    size_t name_len = strlen(name);
    if (name_len > NAME_MAX)
        return -ENAMETOOLONG;
    memcpy(p->name, name, name_len + 1);
    p->dots = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
    if (slash == NULL) {
        p->fd = dirfd;
        return 0;
    }
    *slash = '\0';
    int rc = beneath(dirfd, buf, O_PATH | O_DIRECTORY, 0, &p->fd);
    if (rc == 0)
        p->owned = true;
    return rc;
}

static int is_dir_nofollow(const parent *p)
{
    struct stat st;
    if (fstatat(p->fd, p->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 1 : 0;
}

int sbx_stat(int dirfd, const char *path, bool follow, struct stat *st)
{
    int fd = -1;
    int rc = beneath(dirfd, path, O_PATH | (follow ? 0 : O_NOFOLLOW), 0, &fd);
    if (rc != 0)
        return rc;
    rc = fstat(fd, st) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int sbx_utimes(int dirfd, const char *path, bool follow, const struct timespec ts[2])
{
    int fd = -1;
    int rc = beneath(dirfd, path, O_PATH | (follow ? 0 : O_NOFOLLOW), 0, &fd);
    if (rc != 0)
        return rc;
    /* An O_PATH fd pins exactly the inode that was resolved beneath the
     * root; AT_EMPTY_PATH applies the times to it without a second lookup. */
    if (utimensat(fd, "", ts, AT_EMPTY_PATH | (follow ? 0 : AT_SYMLINK_NOFOLLOW)) == 0) {
        rc = 0;
    } else if (errno == EINVAL) {
        /* Kernels before AT_EMPTY_PATH support in utimensat: go through the
         * fd's /proc entry, which names the same inode. For a symlink itself
         * that would follow it, so use the parent instead. */
        struct stat st;
        if (!follow && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
            parent p;
            rc = parent_open(dirfd, path, &p);
            if (rc == 0)
                rc = utimensat(p.fd, p.name, ts, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
            parent_close(&p);
        } else {
            char proc[64];
            snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
            rc = utimensat(AT_FDCWD, proc, ts, 0) == 0 ? 0 : -errno;
        }
    } else {
        rc = -errno;
    }
    close(fd);
    return rc;
}

int sbx_mkdir(int dirfd, const char *path, unsigned mode)
{
    parent p;
    int rc = parent_open(dirfd, path, &p);
    if (rc == 0)
        rc = p.dots ? -EEXIST : (mkdirat(p.fd, p.name, mode) == 0 ? 0 : -errno);
    parent_close(&p);
    return rc;
}

int sbx_rmdir(int dirfd, const char *path)
{
    parent p;
    int rc = parent_open(dirfd, path, &p);
    if (rc == 0)
        rc = p.dots ? -EINVAL : (unlinkat(p.fd, p.name, AT_REMOVEDIR) == 0 ? 0 : -errno);
    parent_close(&p);
    return rc;
}

int sbx_unlink(int dirfd, const char *path)
{
    parent p;
    int rc = parent_open(dirfd, path, &p);
    if (rc == 0 && p.dots)
        rc = -EISDIR;
    if (rc == 0 && p.slash) {
        /* "name/" names a directory; unlinking one is EISDIR, anything else
         * with a trailing slash is ENOTDIR. */
        rc = is_dir_nofollow(&p);
        if (rc >= 0)
            rc = rc == 1 ? -EISDIR : -ENOTDIR;
    }
    if (rc == 0)
        rc = unlinkat(p.fd, p.name, 0) == 0 ? 0 : -errno;
    parent_close(&p);
    return rc;
}

int sbx_rename(int old_dirfd, const char *old_path, int new_dirfd, const char *new_path)
{
    parent a, b;
    int rc = parent_open(old_dirfd, old_path, &a);
    if (rc != 0) {
        parent_close(&a);
        return rc;
    }
    rc = parent_open(new_dirfd, new_path, &b);
    if (rc == 0 && (a.dots || b.dots))
        rc = -EBUSY;
    if (rc == 0 && (a.slash || b.slash)) {
        rc = is_dir_nofollow(&a);
        if (rc >= 0)
            rc = rc == 1 ? 0 : -ENOTDIR;
    }
    if (rc == 0)
        rc = renameat(a.fd, a.name, b.fd, b.name) == 0 ? 0 : -errno;
    parent_close(&a);
    parent_close(&b);
    return rc;
}

int sbx_link(int old_dirfd, const char *old_path, int new_dirfd, const char *new_path)
{
    parent a, b;
    int rc = parent_open(old_dirfd, old_path, &a);
    if (rc != 0) {
        parent_close(&a);
        return rc;
    }
    rc = parent_open(new_dirfd, new_path, &b);
    if (rc == 0 && a.dots)
        rc = -EPERM; /* hard links to directories are not allowed */
    if (rc == 0 && b.dots)
        rc = -EEXIST;
    if (rc == 0 && (a.slash || b.slash)) {
        rc = is_dir_nofollow(&a);
        if (rc >= 0)
            rc = rc == 1 ? -EPERM : -ENOTDIR;
    }
    /* Flags 0: a final symlink in old_path is linked itself, never followed
     * (following it could hard-link a file from outside the root). */
    if (rc == 0)
        rc = linkat(a.fd, a.name, b.fd, b.name, 0) == 0 ? 0 : -errno;
    parent_close(&a);
    parent_close(&b);
    return rc;
}

int sbx_symlink(const char *target, int dirfd, const char *path)
{
    if (target[0] == '\0')
        return -ENOENT;
    if (target[0] == '/')
        return -SBX_ENOTCAPABLE;
    parent p;
    int rc = parent_open(dirfd, path, &p);
    if (rc == 0 && (p.dots || p.slash))
        rc = -EEXIST;
    if (rc == 0)
        rc = symlinkat(target, p.fd, p.name) == 0 ? 0 : -errno;
    parent_close(&p);
    return rc;
}

int sbx_readlink(int dirfd, const char *path, char *buf, size_t len, size_t *out_len)
{
    parent p;
    int rc = parent_open(dirfd, path, &p);
    if (rc == 0 && (p.dots || p.slash))
        rc = -EINVAL;
    if (rc == 0) {
        ssize_t n = readlinkat(p.fd, p.name, buf, len);
        if (n < 0) {
            rc = -errno;
        } else {
            *out_len = (size_t)n;
        }
    }
    parent_close(&p);
    return rc;
}

/* ---- directories and entropy -------------------------------------------- */

static unsigned dtype_to_mode(unsigned char t)
{
    switch (t) {
    case DT_REG: return S_IFREG;
    case DT_DIR: return S_IFDIR;
    case DT_LNK: return S_IFLNK;
    case DT_CHR: return S_IFCHR;
    case DT_BLK: return S_IFBLK;
    case DT_FIFO: return S_IFIFO;
    case DT_SOCK: return S_IFSOCK;
    default: return 0;
    }
}

int sbx_readdir(int dirfd, sbx_dirent_cb cb, void *arg)
{
    /* A fresh open of "." gives an independent offset, so listing never
     * disturbs dirfd and always starts at the beginning. */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            rc = errno ? -errno : 0;
            break;
        }
        rc = cb(arg, (uint64_t)e->d_ino, dtype_to_mode(e->d_type), e->d_name);
        if (rc != 0)
            break;
    }
    closedir(d);
    return rc;
}

int sbx_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
