/*
 * sandbox_fs.h - capability-confined filesystem access for WASI preopens, plus
 * the few other OS primitives the WASI host needs (directory listing, entropy).
 *
 * Every path is resolved relative to a directory fd and can never leave it:
 * absolute paths, `..` above that directory and symlinks that point outside it
 * (absolute ones, or relative ones that climb out) fail with -SBX_ENOTCAPABLE.
 * On Linux this is openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), done by
 * the kernel, so a concurrent rename cannot race a check. Without openat2
 * every path operation is refused; confinement is never emulated in user space.
 *
 * Operations that act on the final component itself (mkdir, unlink, rename,
 * link, symlink, readlink) open its parent beneath the root first and then
 * use the *at() call on a single name that contains no '/' and is neither
 * "." nor "..", so the kernel never follows a final symlink for them.
 *
 * Return convention: 0 on success, otherwise a negative host errno (-ENOENT)
 * or -SBX_ENOTCAPABLE. This differs from the KILN_E* status convention on
 * purpose: the only caller (abi/wasi) translates results into guest-visible
 * WASI errno values, and KILN_E* codes would lose the distinctions (ENOTEMPTY
 * vs EEXIST vs ENOTDIR) that guest programs depend on.
 *
 * Thread-safety: every function is thread-safe; the only state is a cached
 * probe result.
 */
#ifndef KILN_PLATFORM_SANDBOX_FS_H
#define KILN_PLATFORM_SANDBOX_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* "Would escape the root". Larger than any host errno; returned negated. */
#define SBX_ENOTCAPABLE 4096

/* Longest path accepted, including the terminating NUL. */
#define SBX_PATH_MAX 4096

/* True when the kernel can confine lookups (openat2 works). Cached. */
bool sbx_available(void);

/* Open the host directory `host_path` (unconfined: the embedder chose it) for
 * use as a root. On success *out_fd is an O_RDONLY|O_DIRECTORY|O_CLOEXEC fd. */
int sbx_open_root(const char *host_path, int *out_fd /* OUT */);

/*
 * Open `path` beneath `dirfd` with open(2) `flags` (O_CLOEXEC is added) and
 * `mode` for O_CREAT. Intermediate symlinks are followed as long as they stay
 * beneath `dirfd`; pass O_NOFOLLOW to refuse a final symlink (-ELOOP).
 */
int sbx_openat(int dirfd, const char *path, int flags, unsigned mode, int *out_fd /* OUT */);

/* stat(2) of `path` beneath `dirfd`; follow: follow a final symlink. */
int sbx_stat(int dirfd, const char *path, bool follow, struct stat *st /* OUT */);

/* utimensat(2) semantics for `ts` (UTIME_NOW / UTIME_OMIT allowed). */
int sbx_utimes(int dirfd, const char *path, bool follow, const struct timespec ts[2]);

int sbx_mkdir(int dirfd, const char *path, unsigned mode);
int sbx_rmdir(int dirfd, const char *path);
int sbx_unlink(int dirfd, const char *path);
int sbx_rename(int old_dirfd, const char *old_path, int new_dirfd, const char *new_path);
/* Hard link; never follows a final symlink in `old_path`. */
int sbx_link(int old_dirfd, const char *old_path, int new_dirfd, const char *new_path);
/* Create symlink `path` -> `target`. Absolute targets are refused
 * (-SBX_ENOTCAPABLE): they could never be followed inside the sandbox. */
int sbx_symlink(const char *target, int dirfd, const char *path);
/* Read a symlink's contents into buf (not NUL-terminated, truncated to len). */
int sbx_readlink(int dirfd, const char *path, char *buf, size_t len, size_t *out_len /* OUT */);

/*
 * List the directory open as `dirfd` from its beginning, "." and ".."
 * included, calling cb(arg, ino, type, name) per entry; `type` is an S_IF*
 * file-type value or 0 when unknown. A non-zero return from cb stops the
 * listing and is returned. Does not move `dirfd`'s own offset.
 */
typedef int (*sbx_dirent_cb)(void *arg, uint64_t ino, unsigned type, const char *name);
int sbx_readdir(int dirfd, sbx_dirent_cb cb, void *arg);

/* Fill buf with len bytes from the kernel's CSPRNG. */
int sbx_random(void *buf, size_t len);

#endif
