/*
 * wasi.h - private to src/abi/wasi/: the context layout, the guest-visible
 * errno enum and helpers shared by wasi.c, wasi_fd.c, wasi_path.c and
 * wasi_poll.c. The public interface is include/kiln/wasi.h.
 *
 * Every host function follows one shape:
 *   1. WASI_PROLOGUE: check native stack, find the context (ENOSYS without);
 *   2. validate every guest (ptr, len) through kiln_guest_ptr/_array;
 *   3. do the work (the import shim has opened the host bracket: a deadline
 *      unwinds the guest only after the function returns, or at a
 *      kiln_host_checkpoint between waits, where nothing is held);
 *   4. return a wasi_errno (never a host errno or a KILN_E* status).
 * Scratch memory lives in the context.
 */
#ifndef KILN_ABI_WASI_WASI_H
#define KILN_ABI_WASI_WASI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "kiln/abi.h"
#include "kiln/wasi.h"

/* Guest-visible error numbers, exactly wasi-libc's __WASI_ERRNO_* values.
 * Host errno values never reach the guest unconverted (STYLE rule 3). */
typedef enum wasi_errno {
    WASI_ESUCCESS = 0, WASI_E2BIG = 1, WASI_EACCES = 2, WASI_EADDRINUSE = 3,
    WASI_EADDRNOTAVAIL = 4, WASI_EAFNOSUPPORT = 5, WASI_EAGAIN = 6, WASI_EALREADY = 7,
    WASI_EBADF = 8, WASI_EBADMSG = 9, WASI_EBUSY = 10, WASI_ECANCELED = 11,
    WASI_ECHILD = 12, WASI_ECONNABORTED = 13, WASI_ECONNREFUSED = 14, WASI_ECONNRESET = 15,
    WASI_EDEADLK = 16, WASI_EDESTADDRREQ = 17, WASI_EDOM = 18, WASI_EDQUOT = 19,
    WASI_EEXIST = 20, WASI_EFAULT = 21, WASI_EFBIG = 22, WASI_EHOSTUNREACH = 23,
    WASI_EIDRM = 24, WASI_EILSEQ = 25, WASI_EINPROGRESS = 26, WASI_EINTR = 27,
    WASI_EINVAL = 28, WASI_EIO = 29, WASI_EISCONN = 30, WASI_EISDIR = 31,
    WASI_ELOOP = 32, WASI_EMFILE = 33, WASI_EMLINK = 34, WASI_EMSGSIZE = 35,
    WASI_EMULTIHOP = 36, WASI_ENAMETOOLONG = 37, WASI_ENETDOWN = 38, WASI_ENETRESET = 39,
    WASI_ENETUNREACH = 40, WASI_ENFILE = 41, WASI_ENOBUFS = 42, WASI_ENODEV = 43,
    WASI_ENOENT = 44, WASI_ENOEXEC = 45, WASI_ENOLCK = 46, WASI_ENOLINK = 47,
    WASI_ENOMEM = 48, WASI_ENOMSG = 49, WASI_ENOPROTOOPT = 50, WASI_ENOSPC = 51,
    WASI_ENOSYS = 52, WASI_ENOTCONN = 53, WASI_ENOTDIR = 54, WASI_ENOTEMPTY = 55,
    WASI_ENOTRECOVERABLE = 56, WASI_ENOTSOCK = 57, WASI_ENOTSUP = 58, WASI_ENOTTY = 59,
    WASI_ENXIO = 60, WASI_EOVERFLOW = 61, WASI_EOWNERDEAD = 62, WASI_EPERM = 63,
    WASI_EPIPE = 64, WASI_EPROTO = 65, WASI_EPROTONOSUPPORT = 66, WASI_EPROTOTYPE = 67,
    WASI_ERANGE = 68, WASI_EROFS = 69, WASI_ESPIPE = 70, WASI_ESRCH = 71,
    WASI_ESTALE = 72, WASI_ETIMEDOUT = 73, WASI_ETXTBSY = 74, WASI_EXDEV = 75,
    WASI_ENOTCAPABLE = 76,
} wasi_errno;

/* Convert a host errno (positive, or SBX_ENOTCAPABLE) to the guest's value.
 * Unknown values become WASI_EIO. Also accepts the negated form. */
wasi_errno wasi_errno_from_host(int host_errno);

/* ---- constants from wasi-libc's <wasi/api.h> ------------------------------ */

enum {
    WASI_FILETYPE_UNKNOWN = 0, WASI_FILETYPE_BLOCK_DEVICE = 1,
    WASI_FILETYPE_CHARACTER_DEVICE = 2, WASI_FILETYPE_DIRECTORY = 3,
    WASI_FILETYPE_REGULAR_FILE = 4, WASI_FILETYPE_SOCKET_DGRAM = 5,
    WASI_FILETYPE_SOCKET_STREAM = 6, WASI_FILETYPE_SYMBOLIC_LINK = 7,
};

enum {
    WASI_FDFLAGS_APPEND = 1 << 0, WASI_FDFLAGS_DSYNC = 1 << 1, WASI_FDFLAGS_NONBLOCK = 1 << 2,
    WASI_FDFLAGS_RSYNC = 1 << 3, WASI_FDFLAGS_SYNC = 1 << 4,
};
enum {
    WASI_OFLAGS_CREAT = 1, WASI_OFLAGS_DIRECTORY = 2, WASI_OFLAGS_EXCL = 4, WASI_OFLAGS_TRUNC = 8,
};
enum { WASI_LOOKUP_SYMLINK_FOLLOW = 1 };
enum { WASI_FSTFLAGS_ATIM = 1, WASI_FSTFLAGS_ATIM_NOW = 2, WASI_FSTFLAGS_MTIM = 4,
       WASI_FSTFLAGS_MTIM_NOW = 8 };
enum { WASI_WHENCE_SET = 0, WASI_WHENCE_CUR = 1, WASI_WHENCE_END = 2 };
enum { WASI_CLOCK_REALTIME = 0, WASI_CLOCK_MONOTONIC = 1, WASI_CLOCK_PROCESS_CPUTIME = 2,
       WASI_CLOCK_THREAD_CPUTIME = 3 };
enum { WASI_EVENTTYPE_CLOCK = 0, WASI_EVENTTYPE_FD_READ = 1, WASI_EVENTTYPE_FD_WRITE = 2 };
enum { WASI_EVENTRWFLAGS_HANGUP = 1 };
enum { WASI_SUBCLOCKFLAGS_ABSTIME = 1 };
enum { WASI_PREOPENTYPE_DIR = 0 };

#define WASI_RIGHT(n) ((uint64_t)1 << (n))
#define WASI_RIGHT_FD_DATASYNC WASI_RIGHT(0)
#define WASI_RIGHT_FD_READ WASI_RIGHT(1)
#define WASI_RIGHT_FD_SEEK WASI_RIGHT(2)
#define WASI_RIGHT_FD_FDSTAT_SET_FLAGS WASI_RIGHT(3)
#define WASI_RIGHT_FD_SYNC WASI_RIGHT(4)
#define WASI_RIGHT_FD_TELL WASI_RIGHT(5)
#define WASI_RIGHT_FD_WRITE WASI_RIGHT(6)
#define WASI_RIGHT_FD_ADVISE WASI_RIGHT(7)
#define WASI_RIGHT_FD_ALLOCATE WASI_RIGHT(8)
#define WASI_RIGHT_PATH_CREATE_DIRECTORY WASI_RIGHT(9)
#define WASI_RIGHT_PATH_CREATE_FILE WASI_RIGHT(10)
#define WASI_RIGHT_PATH_LINK_SOURCE WASI_RIGHT(11)
#define WASI_RIGHT_PATH_LINK_TARGET WASI_RIGHT(12)
#define WASI_RIGHT_PATH_OPEN WASI_RIGHT(13)
#define WASI_RIGHT_FD_READDIR WASI_RIGHT(14)
#define WASI_RIGHT_PATH_READLINK WASI_RIGHT(15)
#define WASI_RIGHT_PATH_RENAME_SOURCE WASI_RIGHT(16)
#define WASI_RIGHT_PATH_RENAME_TARGET WASI_RIGHT(17)
#define WASI_RIGHT_PATH_FILESTAT_GET WASI_RIGHT(18)
#define WASI_RIGHT_PATH_FILESTAT_SET_SIZE WASI_RIGHT(19)
#define WASI_RIGHT_PATH_FILESTAT_SET_TIMES WASI_RIGHT(20)
#define WASI_RIGHT_FD_FILESTAT_GET WASI_RIGHT(21)
#define WASI_RIGHT_FD_FILESTAT_SET_SIZE WASI_RIGHT(22)
#define WASI_RIGHT_FD_FILESTAT_SET_TIMES WASI_RIGHT(23)
#define WASI_RIGHT_PATH_SYMLINK WASI_RIGHT(24)
#define WASI_RIGHT_PATH_REMOVE_DIRECTORY WASI_RIGHT(25)
#define WASI_RIGHT_PATH_UNLINK_FILE WASI_RIGHT(26)
#define WASI_RIGHT_POLL_FD_READWRITE WASI_RIGHT(27)
#define WASI_RIGHT_SOCK_SHUTDOWN WASI_RIGHT(28)
#define WASI_RIGHT_SOCK_ACCEPT WASI_RIGHT(29)
#define WASI_RIGHTS_ALL (WASI_RIGHT(30) - 1)

/* Rights a regular file (or stream) may carry. */
#define WASI_RIGHTS_FILE                                                                       \
    (WASI_RIGHT_FD_DATASYNC | WASI_RIGHT_FD_READ | WASI_RIGHT_FD_SEEK |                        \
     WASI_RIGHT_FD_FDSTAT_SET_FLAGS | WASI_RIGHT_FD_SYNC | WASI_RIGHT_FD_TELL |                 \
     WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ADVISE | WASI_RIGHT_FD_ALLOCATE |                     \
     WASI_RIGHT_FD_FILESTAT_GET | WASI_RIGHT_FD_FILESTAT_SET_SIZE |                            \
     WASI_RIGHT_FD_FILESTAT_SET_TIMES | WASI_RIGHT_POLL_FD_READWRITE)
/* Rights that modify a file's contents or size. */
#define WASI_RIGHTS_FILE_WRITE                                                                 \
    (WASI_RIGHT_FD_DATASYNC | WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ALLOCATE |                   \
     WASI_RIGHT_FD_FILESTAT_SET_SIZE)
/* Rights a directory may carry. */
#define WASI_RIGHTS_DIR                                                                        \
    (WASI_RIGHT_FD_FDSTAT_SET_FLAGS | WASI_RIGHT_FD_SYNC | WASI_RIGHT_FD_ADVISE |              \
     WASI_RIGHT_PATH_CREATE_DIRECTORY | WASI_RIGHT_PATH_CREATE_FILE |                          \
     WASI_RIGHT_PATH_LINK_SOURCE | WASI_RIGHT_PATH_LINK_TARGET | WASI_RIGHT_PATH_OPEN |        \
     WASI_RIGHT_FD_READDIR | WASI_RIGHT_PATH_READLINK | WASI_RIGHT_PATH_RENAME_SOURCE |        \
     WASI_RIGHT_PATH_RENAME_TARGET | WASI_RIGHT_PATH_FILESTAT_GET |                            \
     WASI_RIGHT_PATH_FILESTAT_SET_SIZE | WASI_RIGHT_PATH_FILESTAT_SET_TIMES |                  \
     WASI_RIGHT_FD_FILESTAT_GET | WASI_RIGHT_FD_FILESTAT_SET_TIMES | WASI_RIGHT_PATH_SYMLINK | \
     WASI_RIGHT_PATH_REMOVE_DIRECTORY | WASI_RIGHT_PATH_UNLINK_FILE)
/* Directory rights that modify the tree; absent below read-only preopens. */
#define WASI_RIGHTS_DIR_WRITE                                                                  \
    (WASI_RIGHT_PATH_CREATE_DIRECTORY | WASI_RIGHT_PATH_CREATE_FILE |                          \
     WASI_RIGHT_PATH_LINK_SOURCE | WASI_RIGHT_PATH_LINK_TARGET |                               \
     WASI_RIGHT_PATH_RENAME_SOURCE | WASI_RIGHT_PATH_RENAME_TARGET |                           \
     WASI_RIGHT_PATH_FILESTAT_SET_SIZE | WASI_RIGHT_PATH_FILESTAT_SET_TIMES |                  \
     WASI_RIGHT_FD_FILESTAT_SET_TIMES | WASI_RIGHT_PATH_SYMLINK |                              \
     WASI_RIGHT_PATH_REMOVE_DIRECTORY | WASI_RIGHT_PATH_UNLINK_FILE)

/* ---- guest struct layouts (byte offsets; little-endian) ------------------- */

enum {
    WASI_IOVEC_SIZE = 8,        /* buf u32 @0, buf_len u32 @4 */
    WASI_FDSTAT_SIZE = 24,      /* filetype u8 @0, flags u16 @2, base u64 @8, inh u64 @16 */
    WASI_FILESTAT_SIZE = 64,    /* dev @0 ino @8 filetype u8 @16 nlink @24 size @32
                                   atim @40 mtim @48 ctim @56 */
    WASI_PRESTAT_SIZE = 8,      /* tag u8 @0, name_len u32 @4 */
    WASI_DIRENT_SIZE = 24,      /* d_next u64 @0, d_ino u64 @8, d_namlen u32 @16, d_type u8 @20 */
    WASI_SUBSCRIPTION_SIZE = 48, /* userdata u64 @0, tag u8 @8, clock: id u32 @16,
                                    timeout u64 @24, precision u64 @32, flags u16 @40;
                                    fd_readwrite: fd u32 @16 */
    WASI_EVENT_SIZE = 32,       /* userdata u64 @0, error u16 @8, type u8 @10,
                                   nbytes u64 @16, flags u16 @24 */
};

/* Most iovecs accepted by one call, as Linux's IOV_MAX. */
#define WASI_IOV_MAX 1024
/* Default capture cap for stdout/stderr buffers. */
#define WASI_DEFAULT_CAPTURE_CAP ((size_t)1 << 20)
#define WASI_DEFAULT_MAX_FDS 1024

/* ---- context -------------------------------------------------------------- */

typedef enum wasi_fd_kind {
    WASI_FD_FREE = 0,
    WASI_FD_HOST,    /* host_fd: a file, directory, or inherited/borrowed stream */
    WASI_FD_IN_BUF,  /* reads the context's stdin buffer */
    WASI_FD_OUT_BUF, /* appends to out[outbuf] */
    WASI_FD_NULL,    /* reads EOF, swallows writes */
} wasi_fd_kind;

/* Growable byte buffer with a hard cap (curl's dynbuf `toobig` idea). */
typedef struct wasi_outbuf {
    uint8_t *data;
    size_t len;
    size_t alloc;
    size_t cap;
    bool truncated; /* a write was refused or shortened by the cap */
} wasi_outbuf;

/* Snapshot of a directory listing, taken when fd_readdir starts at cookie 0. */
typedef struct wasi_dir_cache {
    struct wasi_dir_entry *entries;
    size_t n, alloc;
    char *names; /* all names back to back, no NULs */
    size_t names_len, names_alloc;
} wasi_dir_cache;

typedef struct wasi_dir_entry {
    uint64_t ino;
    uint32_t name_off;
    uint32_t name_len;
    uint8_t filetype;
} wasi_dir_entry;

typedef struct wasi_fd {
    uint8_t kind; /* wasi_fd_kind */
    uint8_t filetype;
    uint16_t fdflags;
    bool owned;     /* close host_fd when the entry goes away */
    bool read_only; /* at or below a read-only preopen */
    int host_fd;
    int outbuf; /* WASI_FD_OUT_BUF: 0 = stdout capture, 1 = stderr capture */
    uint64_t rights_base;
    uint64_t rights_inheriting;
    char *preopen; /* preopens only: guest path (NUL-terminated), else NULL */
    wasi_dir_cache *dir;
} wasi_fd;

struct kiln_wasi {
    /* argv and environ, each as NUL-terminated strings back to back. */
    char *args;
    uint32_t args_size, argc;
    char *envs;
    uint32_t envs_size, envc;

    wasi_fd *fds;
    uint32_t nfds; /* entries allocated in fds */
    uint32_t max_fds;

    const uint8_t *in_data; /* borrowed stdin buffer */
    size_t in_len, in_pos;
    wasi_outbuf out[2]; /* stdout, stderr captures */

    /* Scratch owned by the context so a deadline unwinding a host function
     * mid-call leaks nothing. */
    struct iovec iov[WASI_IOV_MAX];
    char path[2][4096];
    void *scratch;
    size_t scratch_size;

    /* State a WASI 0.2 host keeps beside this context (cm_wasi's resource
     * table: streams, pollables, directory listings), freed with it by
     * kiln_wasi_free through p2_free. abi/wasi never looks inside. */
    void *p2;
    void (*p2_free)(void *p2);
};

/* Context of the calling instance, or NULL if it has none. */
static inline kiln_wasi *wasi_ctx(kiln_instance *inst)
{
    return (kiln_wasi *)kiln_instance_state(inst, KILN_STATE_WASI);
}

#define WASI_PROLOGUE(inst, w)                                                                 \
    kiln_host_check_stack(inst);                                                               \
    kiln_wasi *w = wasi_ctx(inst);                                                             \
    if (w == NULL)                                                                             \
    return WASI_ENOSYS

/* Little-endian stores/loads into guest memory (unaligned-safe). */
static inline void wasi_st8(void *p, uint8_t v) { *(uint8_t *)p = v; }
static inline void wasi_st16(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static inline void wasi_st32(void *p, uint32_t v)
{
    uint8_t *b = p;
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}
static inline void wasi_st64(void *p, uint64_t v)
{
    uint8_t *b = p;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t wasi_ld16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t wasi_ld32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
           ((uint32_t)b[3] << 24);
}
static inline uint64_t wasi_ld64(const void *p)
{
    return (uint64_t)wasi_ld32(p) | ((uint64_t)wasi_ld32((const uint8_t *)p + 4) << 32);
}

/* Store a u32/u64 result at guest address ptr; WASI_EFAULT if out of bounds. */
/* Host-side byte streams over fd's kind (host fd, capture buffer, stdin
 * buffer, null), shared with WASI 0.2's streams (src/component/cm_wasi_io.c).
 * Write: all of len unless the capture cap or an error stops it (*done
 * says how much); read: at most len, 0 at end of stream. A pipe or
 * terminal is waited for in slices that never unwind: past the
 * invocation's deadline (or on a cancelled request) they return WASI_EINTR
 * and the caller's host bracket delivers the timeout. */
wasi_errno wasi_stream_write(kiln_instance *inst, kiln_wasi *w, uint32_t fd, const void *buf,
                             size_t len, size_t *done);
wasi_errno wasi_stream_read(kiln_instance *inst, kiln_wasi *w, uint32_t fd, void *buf, size_t len,
                            size_t *done);
wasi_errno wasi_put32(kiln_instance *inst, uint32_t ptr, uint32_t v);
wasi_errno wasi_put64(kiln_instance *inst, uint32_t ptr, uint64_t v);

/* Entry for guest fd, or NULL (EBADF). */
wasi_fd *wasi_fd_get(kiln_wasi *w, uint32_t fd);
/* Lowest free descriptor number, growing the table up to max_fds: WASI_EMFILE
 * at the limit, WASI_ENOMEM if the table cannot grow. */
wasi_errno wasi_fd_alloc(kiln_wasi *w, uint32_t *out_fd);
/* Release an entry: close an owned host fd, free its caches. */
void wasi_fd_release(wasi_fd *f);
/* WASI filetype of an S_IF* mode. */
uint8_t wasi_filetype_of_mode(unsigned mode);
/* Fill a 64-byte guest filestat from a host stat. */
void wasi_filestat_store(uint8_t *dst, const struct stat *st);

/* Append to a capture buffer: stores what fits under the cap and returns the
 * count (0 < n <= len), or WASI_EFBIG (full) / WASI_ENOMEM as a negative
 * number. len 0 returns 0. */
long wasi_outbuf_write(wasi_outbuf *b, const void *src, size_t len);
void wasi_outbuf_free(wasi_outbuf *b);

/* Build utimensat times from WASI fstflags (WASI_EINVAL on bad flags). */
wasi_errno wasi_times(uint64_t atim, uint64_t mtim, uint32_t fstflags, struct timespec ts[2]);

/* Copy the guest string (ptr, len) into buf (size SBX_PATH_MAX) with a NUL:
 * WASI_EFAULT (bounds), WASI_ENAMETOOLONG, WASI_EILSEQ (embedded NUL). */
wasi_errno wasi_guest_path(kiln_instance *inst, uint32_t ptr, uint32_t len, char *buf);

/* Ensure w->scratch holds at least n bytes (WASI_ENOMEM otherwise). */
wasi_errno wasi_scratch(kiln_wasi *w, size_t n);

/* Monotonic time in ns, and sleep until a monotonic deadline: on a serve
 * worker the fiber waits (src/loop), elsewhere in short slices; either way
 * an invocation deadline interrupts it (kiln_host_checkpoint traps).
 * wasi_wait_until is the same wait without the unwinding, for callers that
 * hold allocations (WASI 0.2's host functions): it returns true when
 * deadline_ns was reached, false when the invocation's deadline passed or
 * the request was cancelled first; the caller returns, and the host
 * bracket delivers the timeout. */
uint64_t wasi_now_ns(int wasi_clock_id, bool *ok);
void wasi_sleep_until(kiln_instance *inst, uint64_t deadline_ns);
bool wasi_wait_until(uint64_t deadline_ns);

/* ---- host-value cores shared by preview 1 and WASI 0.2 ----------------------
 * The work of a preview-1 function once the guest's memory has been read:
 * the same rights checks, read-only preopens and sandboxed resolution
 * (platform/sandbox_fs.h) for both ABIs. Paths are NUL-terminated host
 * strings below the directory descriptor `fd`; `follow` follows a final
 * symlink (still beneath the root). */
wasi_errno wasi_open_at(kiln_wasi *w, uint32_t dirfd, uint32_t dirflags, const char *path,
                        uint32_t oflags, uint64_t rights_base, uint64_t rights_inheriting,
                        uint32_t fdflags, uint32_t *out_fd);
wasi_errno wasi_mkdir_at(kiln_wasi *w, uint32_t fd, const char *path);
wasi_errno wasi_rmdir_at(kiln_wasi *w, uint32_t fd, const char *path);
wasi_errno wasi_unlink_at(kiln_wasi *w, uint32_t fd, const char *path);
wasi_errno wasi_stat_at(kiln_wasi *w, uint32_t fd, bool follow, const char *path,
                        struct stat *st);
wasi_errno wasi_utimes_at(kiln_wasi *w, uint32_t fd, bool follow, const char *path,
                          const struct timespec ts[2]);
wasi_errno wasi_readlink_at(kiln_wasi *w, uint32_t fd, const char *path, char *buf, size_t len,
                            size_t *n);
wasi_errno wasi_rename_at(kiln_wasi *w, uint32_t fd, const char *old_path, uint32_t new_fd,
                          const char *new_path);
wasi_errno wasi_link_at(kiln_wasi *w, uint32_t old_fd, uint32_t old_flags, const char *old_path,
                        uint32_t new_fd, const char *new_path);
wasi_errno wasi_symlink_at(kiln_wasi *w, const char *target, uint32_t fd, const char *path);
/* Positioned reads and writes of a host file (rights READ/WRITE + SEEK). */
wasi_errno wasi_preadv(kiln_wasi *w, uint32_t fd, const struct iovec *iov, int n,
                       uint64_t offset, size_t *done);
wasi_errno wasi_pwritev(kiln_wasi *w, uint32_t fd, const struct iovec *iov, int n,
                        uint64_t offset, size_t *done);
/* Size of a file open for writing (where an append lands). */
wasi_errno wasi_file_size(kiln_wasi *w, uint32_t fd, uint64_t *size);
wasi_errno wasi_fstat(kiln_wasi *w, uint32_t fd, struct stat *st);
wasi_errno wasi_fsync(kiln_wasi *w, uint32_t fd, bool data_only);
wasi_errno wasi_fadvise(kiln_wasi *w, uint32_t fd, uint64_t offset, uint64_t len,
                        uint32_t advice);
wasi_errno wasi_ftruncate(kiln_wasi *w, uint32_t fd, uint64_t size);
wasi_errno wasi_futimens(kiln_wasi *w, uint32_t fd, const struct timespec ts[2]);
/* WASI fdflags of an entry (a host fd's O_APPEND/O_NONBLOCK/O_*SYNC). */
uint16_t wasi_fd_flags(const wasi_fd *f);
/* A fresh listing of directory fd into d ("." and ".." included). */
wasi_errno wasi_dir_list(kiln_wasi *w, uint32_t fd, wasi_dir_cache *d);
void wasi_dir_free(wasi_dir_cache *d);

/* ---- host functions (the signature letters are in wasi.c's table) --------- */

uint32_t wasi_fd_advise(kiln_instance *, uint32_t, uint64_t, uint64_t, uint32_t);
uint32_t wasi_fd_allocate(kiln_instance *, uint32_t, uint64_t, uint64_t);
uint32_t wasi_fd_close(kiln_instance *, uint32_t);
uint32_t wasi_fd_datasync(kiln_instance *, uint32_t);
uint32_t wasi_fd_fdstat_get(kiln_instance *, uint32_t, uint32_t);
uint32_t wasi_fd_fdstat_set_flags(kiln_instance *, uint32_t, uint32_t);
uint32_t wasi_fd_fdstat_set_rights(kiln_instance *, uint32_t, uint64_t, uint64_t);
uint32_t wasi_fd_filestat_get(kiln_instance *, uint32_t, uint32_t);
uint32_t wasi_fd_filestat_set_size(kiln_instance *, uint32_t, uint64_t);
uint32_t wasi_fd_filestat_set_times(kiln_instance *, uint32_t, uint64_t, uint64_t, uint32_t);
uint32_t wasi_fd_pread(kiln_instance *, uint32_t, uint32_t, uint32_t, uint64_t, uint32_t);
uint32_t wasi_fd_prestat_get(kiln_instance *, uint32_t, uint32_t);
uint32_t wasi_fd_prestat_dir_name(kiln_instance *, uint32_t, uint32_t, uint32_t);
uint32_t wasi_fd_pwrite(kiln_instance *, uint32_t, uint32_t, uint32_t, uint64_t, uint32_t);
uint32_t wasi_fd_read(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t wasi_fd_readdir(kiln_instance *, uint32_t, uint32_t, uint32_t, uint64_t, uint32_t);
uint32_t wasi_fd_renumber(kiln_instance *, uint32_t, uint32_t);
uint32_t wasi_fd_seek(kiln_instance *, uint32_t, uint64_t, uint32_t, uint32_t);
uint32_t wasi_fd_sync(kiln_instance *, uint32_t);
uint32_t wasi_fd_tell(kiln_instance *, uint32_t, uint32_t);
uint32_t wasi_fd_write(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t);

uint32_t wasi_path_create_directory(kiln_instance *, uint32_t, uint32_t, uint32_t);
uint32_t wasi_path_filestat_get(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t,
                                uint32_t);
uint32_t wasi_path_filestat_set_times(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t,
                                      uint64_t, uint64_t, uint32_t);
uint32_t wasi_path_link(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
                        uint32_t, uint32_t);
uint32_t wasi_path_open(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
                        uint64_t, uint64_t, uint32_t, uint32_t);
uint32_t wasi_path_readlink(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
                            uint32_t);
uint32_t wasi_path_remove_directory(kiln_instance *, uint32_t, uint32_t, uint32_t);
uint32_t wasi_path_rename(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
                          uint32_t);
uint32_t wasi_path_symlink(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t wasi_path_unlink_file(kiln_instance *, uint32_t, uint32_t, uint32_t);

uint32_t wasi_poll_oneoff(kiln_instance *, uint32_t, uint32_t, uint32_t, uint32_t);

#endif
