/*
 * wasi.c - WASI preview 1 context (config, descriptor table, capture buffers),
 * the host-function table, errno conversion, and the small host functions:
 * args, environ, clocks, random, proc_*, sched_yield, sock_*.
 * File and path functions live in wasi_fd.c / wasi_path.c, polling in wasi_poll.c.
 */
#include "abi/wasi/wasi.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "loop/loop.h"
#include "platform/sandbox_fs.h"

/* ---- errno conversion ------------------------------------------------------ */

wasi_errno wasi_errno_from_host(int e)
{
    if (e < 0)
        e = -e;
    if (e == SBX_ENOTCAPABLE)
        return WASI_ENOTCAPABLE;
    switch (e) {
    case 0: return WASI_ESUCCESS;
    case E2BIG: return WASI_E2BIG;
    case EACCES: return WASI_EACCES;
    case EADDRINUSE: return WASI_EADDRINUSE;
    case EADDRNOTAVAIL: return WASI_EADDRNOTAVAIL;
    case EAFNOSUPPORT: return WASI_EAFNOSUPPORT;
    case EAGAIN: return WASI_EAGAIN;
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK: return WASI_EAGAIN;
#endif
    case EALREADY: return WASI_EALREADY;
    case EBADF: return WASI_EBADF;
    case EBADMSG: return WASI_EBADMSG;
    case EBUSY: return WASI_EBUSY;
    case ECANCELED: return WASI_ECANCELED;
    case ECHILD: return WASI_ECHILD;
    case ECONNABORTED: return WASI_ECONNABORTED;
    case ECONNREFUSED: return WASI_ECONNREFUSED;
    case ECONNRESET: return WASI_ECONNRESET;
    case EDEADLK: return WASI_EDEADLK;
    case EDESTADDRREQ: return WASI_EDESTADDRREQ;
    case EDOM: return WASI_EDOM;
    case EDQUOT: return WASI_EDQUOT;
    case EEXIST: return WASI_EEXIST;
    case EFAULT: return WASI_EFAULT;
    case EFBIG: return WASI_EFBIG;
    case EHOSTUNREACH: return WASI_EHOSTUNREACH;
    case EIDRM: return WASI_EIDRM;
    case EILSEQ: return WASI_EILSEQ;
    case EINPROGRESS: return WASI_EINPROGRESS;
    case EINTR: return WASI_EINTR;
    case EINVAL: return WASI_EINVAL;
    case EIO: return WASI_EIO;
    case EISCONN: return WASI_EISCONN;
    case EISDIR: return WASI_EISDIR;
    case ELOOP: return WASI_ELOOP;
    case EMFILE: return WASI_EMFILE;
    case EMLINK: return WASI_EMLINK;
    case EMSGSIZE: return WASI_EMSGSIZE;
    case EMULTIHOP: return WASI_EMULTIHOP;
    case ENAMETOOLONG: return WASI_ENAMETOOLONG;
    case ENETDOWN: return WASI_ENETDOWN;
    case ENETRESET: return WASI_ENETRESET;
    case ENETUNREACH: return WASI_ENETUNREACH;
    case ENFILE: return WASI_ENFILE;
    case ENOBUFS: return WASI_ENOBUFS;
    case ENODEV: return WASI_ENODEV;
    case ENOENT: return WASI_ENOENT;
    case ENOEXEC: return WASI_ENOEXEC;
    case ENOLCK: return WASI_ENOLCK;
    case ENOLINK: return WASI_ENOLINK;
    case ENOMEM: return WASI_ENOMEM;
    case ENOMSG: return WASI_ENOMSG;
    case ENOPROTOOPT: return WASI_ENOPROTOOPT;
    case ENOSPC: return WASI_ENOSPC;
    case ENOSYS: return WASI_ENOSYS;
    case ENOTCONN: return WASI_ENOTCONN;
    case ENOTDIR: return WASI_ENOTDIR;
    case ENOTEMPTY: return WASI_ENOTEMPTY;
    case ENOTRECOVERABLE: return WASI_ENOTRECOVERABLE;
    case ENOTSOCK: return WASI_ENOTSOCK;
    case ENOTSUP: return WASI_ENOTSUP;
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP: return WASI_ENOTSUP;
#endif
    case ENOTTY: return WASI_ENOTTY;
    case ENXIO: return WASI_ENXIO;
    case EOVERFLOW: return WASI_EOVERFLOW;
    case EOWNERDEAD: return WASI_EOWNERDEAD;
    case EPERM: return WASI_EPERM;
    case EPIPE: return WASI_EPIPE;
    case EPROTO: return WASI_EPROTO;
    case EPROTONOSUPPORT: return WASI_EPROTONOSUPPORT;
    case EPROTOTYPE: return WASI_EPROTOTYPE;
    case ERANGE: return WASI_ERANGE;
    case EROFS: return WASI_EROFS;
    case ESPIPE: return WASI_ESPIPE;
    case ESRCH: return WASI_ESRCH;
    case ESTALE: return WASI_ESTALE;
    case ETIMEDOUT: return WASI_ETIMEDOUT;
    case ETXTBSY: return WASI_ETXTBSY;
    case EXDEV: return WASI_EXDEV;
    default: return WASI_EIO;
    }
}

/* ---- small shared helpers ---------------------------------------------------- */

wasi_errno wasi_put32(kiln_instance *inst, uint32_t ptr, uint32_t v)
{
    uint8_t *p = kiln_guest_ptr(inst, ptr, 4);
    if (p == NULL)
        return WASI_EFAULT;
    wasi_st32(p, v);
    return WASI_ESUCCESS;
}

wasi_errno wasi_put64(kiln_instance *inst, uint32_t ptr, uint64_t v)
{
    uint8_t *p = kiln_guest_ptr(inst, ptr, 8);
    if (p == NULL)
        return WASI_EFAULT;
    wasi_st64(p, v);
    return WASI_ESUCCESS;
}

wasi_errno wasi_guest_path(kiln_instance *inst, uint32_t ptr, uint32_t len, char *buf)
{
    const char *src = kiln_guest_ptr(inst, ptr, len);
    if (src == NULL)
        return WASI_EFAULT;
    if (len >= SBX_PATH_MAX)
        return WASI_ENAMETOOLONG;
    if (memchr(src, '\0', len) != NULL)
        return WASI_EILSEQ;
    memcpy(buf, src, len);
    buf[len] = '\0';
    return WASI_ESUCCESS;
}

wasi_errno wasi_scratch(kiln_wasi *w, size_t n)
{
    if (w->scratch_size >= n)
        return WASI_ESUCCESS;
    void *p = kiln_realloc(w->scratch, n);
    if (p == NULL)
        return WASI_ENOMEM;
    w->scratch = p;
    w->scratch_size = n;
    return WASI_ESUCCESS;
}

uint8_t wasi_filetype_of_mode(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return WASI_FILETYPE_REGULAR_FILE;
    case S_IFDIR: return WASI_FILETYPE_DIRECTORY;
    case S_IFLNK: return WASI_FILETYPE_SYMBOLIC_LINK;
    case S_IFCHR: return WASI_FILETYPE_CHARACTER_DEVICE;
    case S_IFBLK: return WASI_FILETYPE_BLOCK_DEVICE;
    case S_IFSOCK: return WASI_FILETYPE_SOCKET_STREAM;
    default: return WASI_FILETYPE_UNKNOWN; /* FIFOs have no WASI type */
    }
}

static uint64_t ts_ns(const struct timespec *ts)
{
    if (ts->tv_sec < 0)
        return 0;
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

void wasi_filestat_store(uint8_t *dst, const struct stat *st)
{
    memset(dst, 0, WASI_FILESTAT_SIZE);
    wasi_st64(dst + 0, (uint64_t)st->st_dev);
    wasi_st64(dst + 8, (uint64_t)st->st_ino);
    wasi_st8(dst + 16, wasi_filetype_of_mode(st->st_mode));
    wasi_st64(dst + 24, (uint64_t)st->st_nlink);
    wasi_st64(dst + 32, st->st_size < 0 ? 0 : (uint64_t)st->st_size);
    wasi_st64(dst + 40, ts_ns(&st->st_atim));
    wasi_st64(dst + 48, ts_ns(&st->st_mtim));
    wasi_st64(dst + 56, ts_ns(&st->st_ctim));
}

/* ---- capture buffers --------------------------------------------------------- */

long wasi_outbuf_write(wasi_outbuf *b, const void *src, size_t len)
{
    if (len == 0)
        return 0;
    if (b->len >= b->cap) {
        b->truncated = true;
        return -(long)WASI_EFBIG;
    }
    size_t n = len;
    if (n > b->cap - b->len) {
        n = b->cap - b->len;
        b->truncated = true;
    }
    if (b->len + n > b->alloc) {
        size_t want = b->alloc ? b->alloc : 4096;
        while (want < b->len + n)
            want = want > b->cap / 2 ? b->cap : want * 2;
        uint8_t *p = kiln_realloc(b->data, want);
        if (p == NULL)
            return -(long)WASI_ENOMEM;
        b->data = p;
        b->alloc = want;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return (long)n;
}

void wasi_outbuf_free(wasi_outbuf *b)
{
    kiln_free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- descriptor table ---------------------------------------------------------- */

wasi_fd *wasi_fd_get(kiln_wasi *w, uint32_t fd)
{
    if (fd >= w->nfds || w->fds[fd].kind == WASI_FD_FREE)
        return NULL;
    return &w->fds[fd];
}

wasi_errno wasi_fd_alloc(kiln_wasi *w, uint32_t *out_fd)
{
    for (uint32_t i = 0; i < w->nfds; i++) {
        if (w->fds[i].kind == WASI_FD_FREE) {
            *out_fd = i;
            return WASI_ESUCCESS;
        }
    }
    if (w->nfds >= w->max_fds)
        return WASI_EMFILE;
    uint32_t n = w->nfds < 8 ? 8 : w->nfds * 2;
    if (n > w->max_fds)
        n = w->max_fds;
    wasi_fd *p = kiln_realloc(w->fds, (size_t)n * sizeof(*p));
    if (p == NULL)
        return WASI_ENOMEM;
    memset(p + w->nfds, 0, (size_t)(n - w->nfds) * sizeof(*p));
    for (uint32_t i = w->nfds; i < n; i++)
        p[i].host_fd = -1;
    *out_fd = w->nfds;
    w->fds = p;
    w->nfds = n;
    return WASI_ESUCCESS;
}

void wasi_fd_release(wasi_fd *f)
{
    if (f->owned && f->host_fd >= 0)
        close(f->host_fd);
    kiln_free(f->preopen);
    if (f->dir != NULL) {
        kiln_free(f->dir->entries);
        kiln_free(f->dir->names);
        kiln_free(f->dir);
    }
    memset(f, 0, sizeof(*f));
    f->host_fd = -1;
}

/* ---- context --------------------------------------------------------------------- */

/* Pack strings as NUL-terminated runs; WASI sizes are u32. */
static int pack_strings(const char *const *v, size_t n, char **out, uint32_t *size,
                        const char *what, kiln_err *err)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NULL)
            return kiln_err_set(err, KILN_EINVAL, "wasi: %s[%zu] is NULL", what, i);
        total += strlen(v[i]) + 1;
    }
    if (n > UINT32_MAX / 4 || total > UINT32_MAX / 2)
        return kiln_err_set(err, KILN_ELIMIT, "wasi: %s is too large (%llu bytes)", what,
                            (unsigned long long)total);
    char *buf = kiln_malloc(total ? (size_t)total : 1);
    if (buf == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "wasi: out of memory copying %s", what);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]) + 1;
        memcpy(buf + off, v[i], l);
        off += l;
    }
    *out = buf;
    *size = (uint32_t)total;
    return KILN_OK;
}

static int setup_stdio(kiln_wasi *w, int i, const kiln_wasi_stdio *s, kiln_err *err)
{
    static const char *const names[3] = {"stdin", "stdout", "stderr"};
    wasi_fd *f = &w->fds[i];
    f->host_fd = -1;
    f->filetype = WASI_FILETYPE_UNKNOWN;
    uint64_t dir_right = i == 0 ? WASI_RIGHT_FD_READ : WASI_RIGHT_FD_WRITE;
    f->rights_base = dir_right | WASI_RIGHT_FD_FDSTAT_SET_FLAGS | WASI_RIGHT_FD_FILESTAT_GET |
                     WASI_RIGHT_POLL_FD_READWRITE;
    switch (s->kind) {
    case KILN_WASI_STDIO_INHERIT:
    case KILN_WASI_STDIO_FD: {
        int hfd = s->kind == KILN_WASI_STDIO_INHERIT ? i : s->fd;
        struct stat st;
        if (hfd < 0 || fstat(hfd, &st) != 0) {
            if (s->kind == KILN_WASI_STDIO_FD)
                return kiln_err_set(err, KILN_EINVAL, "wasi: %s: host fd %d is not open",
                                    names[i], hfd);
            /* The host started us with this stream closed: the guest gets a
             * null device rather than a number that may be reused later. */
            f->kind = WASI_FD_NULL;
            f->filetype = WASI_FILETYPE_CHARACTER_DEVICE;
            f->rights_base |= WASI_RIGHT_FD_READ | WASI_RIGHT_FD_WRITE;
            break;
        }
        f->kind = WASI_FD_HOST;
        f->host_fd = hfd;
        f->owned = false;
        f->filetype = wasi_filetype_of_mode(st.st_mode);
        /* A redirected regular file keeps its seekability, as under a shell. */
        if (S_ISREG(st.st_mode))
            f->rights_base |= WASI_RIGHTS_FILE &
                              ~(i == 0 ? WASI_RIGHTS_FILE_WRITE : WASI_RIGHT_FD_READ);
        break;
    }
    case KILN_WASI_STDIO_NULL:
        f->kind = WASI_FD_NULL;
        f->filetype = WASI_FILETYPE_CHARACTER_DEVICE;
        f->rights_base |= WASI_RIGHT_FD_READ | WASI_RIGHT_FD_WRITE;
        break;
    case KILN_WASI_STDIO_BUFFER:
        if (i == 0) {
            if (s->data == NULL && s->len != 0)
                return kiln_err_set(err, KILN_EINVAL, "wasi: stdin buffer is NULL");
            f->kind = WASI_FD_IN_BUF;
            w->in_data = s->data;
            w->in_len = s->len;
        } else {
            f->kind = WASI_FD_OUT_BUF;
            f->outbuf = i - 1;
            w->out[i - 1].cap = s->cap ? s->cap : WASI_DEFAULT_CAPTURE_CAP;
        }
        break;
    default:
        return kiln_err_set(err, KILN_EINVAL, "wasi: %s: unknown stdio kind %d", names[i],
                            (int)s->kind);
    }
    return KILN_OK;
}

static int setup_preopen(kiln_wasi *w, const kiln_wasi_preopen *p, kiln_err *err)
{
    if (p->host_path == NULL || p->host_path[0] == '\0')
        return kiln_err_set(err, KILN_EINVAL, "wasi: preopen without a host path");
    const char *guest = p->guest_path ? p->guest_path : p->host_path;
    if (guest[0] == '\0')
        return kiln_err_set(err, KILN_EINVAL, "wasi: preopen '%s' has an empty guest path",
                            p->host_path);
    uint32_t fd;
    if (wasi_fd_alloc(w, &fd) != WASI_ESUCCESS)
        return kiln_err_set(err, KILN_ELIMIT, "wasi: too many preopens (max_fds %u)",
                            w->max_fds);
    wasi_fd *f = &w->fds[fd];
    int hfd;
    int rc = sbx_open_root(p->host_path, &hfd);
    if (rc != 0)
        return kiln_err_set(err, rc == -ENOENT ? KILN_ENOENT : KILN_EINVAL,
                            "wasi: cannot open directory '%s': %s; check that it exists and is "
                            "a directory",
                            p->host_path, strerror(-rc));
    f->preopen = kiln_strdup(guest);
    if (f->preopen == NULL) {
        close(hfd);
        return kiln_err_set(err, KILN_ENOMEM, "wasi: out of memory");
    }
    f->kind = WASI_FD_HOST;
    f->host_fd = hfd;
    f->owned = true;
    f->read_only = p->read_only;
    f->filetype = WASI_FILETYPE_DIRECTORY;
    f->rights_base = WASI_RIGHTS_DIR;
    /* Write rights stay inheritable even below a read-only preopen so that
     * wasi-libc asks for them and path_open can refuse with a clear EROFS,
     * instead of silently opening an O_WRONLY request read-only. */
    f->rights_inheriting = WASI_RIGHTS_DIR | WASI_RIGHTS_FILE;
    if (p->read_only)
        f->rights_base &= ~WASI_RIGHTS_DIR_WRITE;
    return KILN_OK;
}

int kiln_wasi_new(const kiln_wasi_config *cfg, kiln_wasi **out, kiln_err *err)
{
    static const kiln_wasi_config empty;
    if (cfg == NULL)
        cfg = &empty;
    *out = NULL;
    if ((cfg->argc && cfg->argv == NULL) || (cfg->envc && cfg->env == NULL) ||
        (cfg->npreopens && cfg->preopens == NULL))
        return kiln_err_set(err, KILN_EINVAL, "wasi: config has a count without its array");
    for (size_t i = 0; i < cfg->envc; i++) {
        if (cfg->env[i] != NULL && (strchr(cfg->env[i], '=') == NULL || cfg->env[i][0] == '='))
            return kiln_err_set(err, KILN_EINVAL,
                                "wasi: environment entry '%s' is not KEY=VALUE", cfg->env[i]);
    }
    if (cfg->npreopens > 0 && !sbx_available())
        return kiln_err_set(err, KILN_EUNSUPPORTED,
                            "wasi: this kernel cannot confine path lookups (no openat2 with "
                            "RESOLVE_BENEATH, Linux >= 5.6 needed); run without --dir");

    kiln_wasi *w = kiln_calloc(1, sizeof(*w));
    if (w == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "wasi: out of memory");
    w->max_fds = cfg->max_fds ? cfg->max_fds : WASI_DEFAULT_MAX_FDS;
    if (w->max_fds < 3 + cfg->npreopens)
        w->max_fds = 3 + (uint32_t)cfg->npreopens;

    int rc = pack_strings(cfg->argv, cfg->argc, &w->args, &w->args_size, "argv", err);
    if (rc == KILN_OK) {
        w->argc = (uint32_t)cfg->argc;
        rc = pack_strings(cfg->env, cfg->envc, &w->envs, &w->envs_size, "env", err);
        w->envc = (uint32_t)cfg->envc;
    }
    for (int i = 0; i < 3 && rc == KILN_OK; i++) {
        uint32_t fd;
        if (wasi_fd_alloc(w, &fd) != WASI_ESUCCESS)
            rc = kiln_err_set(err, KILN_ENOMEM, "wasi: out of memory");
        else
            rc = setup_stdio(w, i, &cfg->stdio[i], err);
    }
    for (size_t i = 0; i < cfg->npreopens && rc == KILN_OK; i++)
        rc = setup_preopen(w, &cfg->preopens[i], err);
    if (rc != KILN_OK) {
        kiln_wasi_free(w);
        return rc;
    }
    *out = w;
    return KILN_OK;
}

void kiln_wasi_free(kiln_wasi *w)
{
    if (w == NULL)
        return;
    for (uint32_t i = 0; i < w->nfds; i++)
        wasi_fd_release(&w->fds[i]);
    kiln_free(w->fds);
    kiln_free(w->args);
    kiln_free(w->envs);
    wasi_outbuf_free(&w->out[0]);
    wasi_outbuf_free(&w->out[1]);
    kiln_free(w->scratch);
    if (w->p2_free != NULL)
        w->p2_free(w->p2);
    kiln_free(w);
}

const uint8_t *kiln_wasi_output(const kiln_wasi *w, int fd, size_t *len, bool *truncated)
{
    *len = 0;
    if (truncated)
        *truncated = false;
    if (w == NULL || (fd != 1 && fd != 2))
        return NULL;
    const wasi_outbuf *b = &w->out[fd - 1];
    if (truncated)
        *truncated = b->truncated;
    *len = b->len;
    return b->len ? b->data : NULL;
}

void kiln_wasi_output_take(kiln_wasi *w, int fd, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (w == NULL || (fd != 1 && fd != 2))
        return;
    wasi_outbuf *b = &w->out[fd - 1];
    if (b->len > 0) {
        *data = b->data;
        *len = b->len;
    } else {
        kiln_free(b->data);
    }
    b->data = NULL;
    b->len = b->alloc = 0;
    b->truncated = false;
}

/* ---- args and environ ---------------------------------------------------------- */

static uint32_t strings_get(kiln_instance *inst, const char *blob, uint32_t size, uint32_t count,
                            uint32_t vec_ptr, uint32_t buf_ptr)
{
    uint8_t *vec = kiln_guest_array(inst, vec_ptr, count, 4);
    uint8_t *buf = kiln_guest_ptr(inst, buf_ptr, size);
    if (vec == NULL || buf == NULL)
        return WASI_EFAULT;
    memcpy(buf, blob, size);
    uint32_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        wasi_st32(vec + 4 * (size_t)i, buf_ptr + off);
        off += (uint32_t)strlen(blob + off) + 1;
    }
    return WASI_ESUCCESS;
}

static uint32_t wasi_args_get(kiln_instance *inst, uint32_t argv, uint32_t argv_buf)
{
    WASI_PROLOGUE(inst, w);
    return strings_get(inst, w->args, w->args_size, w->argc, argv, argv_buf);
}

static uint32_t wasi_args_sizes_get(kiln_instance *inst, uint32_t argc_ptr, uint32_t size_ptr)
{
    WASI_PROLOGUE(inst, w);
    if (kiln_guest_ptr(inst, argc_ptr, 4) == NULL || kiln_guest_ptr(inst, size_ptr, 4) == NULL)
        return WASI_EFAULT;
    wasi_put32(inst, argc_ptr, w->argc);
    return wasi_put32(inst, size_ptr, w->args_size);
}

static uint32_t wasi_environ_get(kiln_instance *inst, uint32_t env_ptr, uint32_t env_buf)
{
    WASI_PROLOGUE(inst, w);
    return strings_get(inst, w->envs, w->envs_size, w->envc, env_ptr, env_buf);
}

static uint32_t wasi_environ_sizes_get(kiln_instance *inst, uint32_t count_ptr, uint32_t size_ptr)
{
    WASI_PROLOGUE(inst, w);
    if (kiln_guest_ptr(inst, count_ptr, 4) == NULL || kiln_guest_ptr(inst, size_ptr, 4) == NULL)
        return WASI_EFAULT;
    wasi_put32(inst, count_ptr, w->envc);
    return wasi_put32(inst, size_ptr, w->envs_size);
}

/* ---- clocks and random ----------------------------------------------------------- */

static bool host_clock(uint32_t id, clockid_t *out)
{
    switch (id) {
    case WASI_CLOCK_REALTIME: *out = CLOCK_REALTIME; return true;
    case WASI_CLOCK_MONOTONIC: *out = CLOCK_MONOTONIC; return true;
    case WASI_CLOCK_PROCESS_CPUTIME: *out = CLOCK_PROCESS_CPUTIME_ID; return true;
    case WASI_CLOCK_THREAD_CPUTIME: *out = CLOCK_THREAD_CPUTIME_ID; return true;
    default: return false;
    }
}

uint64_t wasi_now_ns(int id, bool *ok)
{
    clockid_t c;
    struct timespec ts;
    *ok = host_clock((uint32_t)id, &c) && clock_gettime(c, &ts) == 0;
    return *ok ? ts_ns(&ts) : 0;
}

/* Short enough that a deadline is noticed promptly, long enough to be cheap. */
#define WASI_SLEEP_SLICE_NS 10000000u

bool wasi_wait_until(uint64_t deadline_ns)
{
    /* On a worker's event loop the fiber waits, not the thread; the wait
     * ends at the invocation's deadline at the latest. */
    int r = kl_sleep_until(deadline_ns);
    if (r == KL_CANCELED)
        return false;
    for (;;) {
        bool ok;
        uint64_t now = wasi_now_ns(WASI_CLOCK_MONOTONIC, &ok);
        if (!ok || now >= deadline_ns)
            return true;
        /* The invocation's deadline (0: none; a fired interrupt sets a
         * value in the past) ends the wait early. */
        uint64_t dl = kiln_host_deadline_ns();
        if ((dl != 0 && now >= dl) || r != KL_BLOCK)
            return false;
        uint64_t d = deadline_ns - now;
        if (d > WASI_SLEEP_SLICE_NS)
            d = WASI_SLEEP_SLICE_NS;
        struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
        nanosleep(&ts, NULL);
    }
}

void wasi_sleep_until(kiln_instance *inst, uint64_t deadline_ns)
{
    /* The wait returns early at the invocation's deadline or on a
     * cancelled request; the checkpoint then unwinds the guest. */
    (void)wasi_wait_until(deadline_ns);
    kiln_host_checkpoint(inst);
}

static uint32_t wasi_clock_res_get(kiln_instance *inst, uint32_t id, uint32_t res_ptr)
{
    WASI_PROLOGUE(inst, w);
    (void)w;
    clockid_t c;
    struct timespec ts;
    if (!host_clock(id, &c))
        return WASI_EINVAL;
    if (clock_getres(c, &ts) != 0)
        return wasi_errno_from_host(errno);
    return wasi_put64(inst, res_ptr, ts_ns(&ts));
}

static uint32_t wasi_clock_time_get(kiln_instance *inst, uint32_t id, uint64_t precision,
                                    uint32_t time_ptr)
{
    WASI_PROLOGUE(inst, w);
    (void)w;
    (void)precision;
    clockid_t c;
    struct timespec ts;
    if (!host_clock(id, &c))
        return WASI_EINVAL;
    if (clock_gettime(c, &ts) != 0)
        return wasi_errno_from_host(errno);
    return wasi_put64(inst, time_ptr, ts_ns(&ts));
}

static uint32_t wasi_random_get(kiln_instance *inst, uint32_t buf, uint32_t len)
{
    WASI_PROLOGUE(inst, w);
    (void)w;
    uint8_t *p = kiln_guest_ptr(inst, buf, len);
    if (p == NULL)
        return WASI_EFAULT;
    int rc = sbx_random(p, len);
    return wasi_errno_from_host(rc);
}

/* ---- process, scheduling, sockets ----------------------------------------------- */

static void wasi_proc_exit(kiln_instance *inst, uint32_t code)
{
    kiln_host_exit(inst, (int)code);
}

static uint32_t wasi_proc_raise(kiln_instance *inst, uint32_t sig)
{
    (void)inst;
    (void)sig;
    return WASI_ENOSYS;
}

static uint32_t wasi_sched_yield(kiln_instance *inst)
{
    sched_yield();
    return WASI_ESUCCESS;
}

/* Kiln grants no sockets: no preopened sockets exist, so every sock_* call
 * answers ENOSYS (see docs/internals/wasi.md). */
static uint32_t wasi_sock_accept(kiln_instance *inst, uint32_t fd, uint32_t flags, uint32_t out)
{
    (void)inst, (void)fd, (void)flags, (void)out;
    return WASI_ENOSYS;
}

static uint32_t wasi_sock_recv(kiln_instance *inst, uint32_t fd, uint32_t ri_data,
                               uint32_t ri_len, uint32_t ri_flags, uint32_t ro_len,
                               uint32_t ro_flags)
{
    (void)inst, (void)fd, (void)ri_data, (void)ri_len, (void)ri_flags, (void)ro_len,
        (void)ro_flags;
    return WASI_ENOSYS;
}

static uint32_t wasi_sock_send(kiln_instance *inst, uint32_t fd, uint32_t si_data,
                               uint32_t si_len, uint32_t si_flags, uint32_t so_len)
{
    (void)inst, (void)fd, (void)si_data, (void)si_len, (void)si_flags, (void)so_len;
    return WASI_ENOSYS;
}

static uint32_t wasi_sock_shutdown(kiln_instance *inst, uint32_t fd, uint32_t how)
{
    (void)inst, (void)fd, (void)how;
    return WASI_ENOSYS;
}

/* ---- the table -------------------------------------------------------------------- */

#define WASI_MODULE "wasi_snapshot_preview1"
#define FN(name, sig, fn) {WASI_MODULE, name, sig, (void (*)(void))(fn)}

/* Signatures are those of wasi-libc's <wasi/api.h> imports, verified by
 * compiling a module that references every __wasi_* function. */
static const kiln_hostfn wasi_table[] = {
    FN("args_get", "ii>i", wasi_args_get),
    FN("args_sizes_get", "ii>i", wasi_args_sizes_get),
    FN("environ_get", "ii>i", wasi_environ_get),
    FN("environ_sizes_get", "ii>i", wasi_environ_sizes_get),
    FN("clock_res_get", "ii>i", wasi_clock_res_get),
    FN("clock_time_get", "iji>i", wasi_clock_time_get),
    FN("fd_advise", "ijji>i", wasi_fd_advise),
    FN("fd_allocate", "ijj>i", wasi_fd_allocate),
    FN("fd_close", "i>i", wasi_fd_close),
    FN("fd_datasync", "i>i", wasi_fd_datasync),
    FN("fd_fdstat_get", "ii>i", wasi_fd_fdstat_get),
    FN("fd_fdstat_set_flags", "ii>i", wasi_fd_fdstat_set_flags),
    FN("fd_fdstat_set_rights", "ijj>i", wasi_fd_fdstat_set_rights),
    FN("fd_filestat_get", "ii>i", wasi_fd_filestat_get),
    FN("fd_filestat_set_size", "ij>i", wasi_fd_filestat_set_size),
    FN("fd_filestat_set_times", "ijji>i", wasi_fd_filestat_set_times),
    FN("fd_pread", "iiiji>i", wasi_fd_pread),
    FN("fd_prestat_get", "ii>i", wasi_fd_prestat_get),
    FN("fd_prestat_dir_name", "iii>i", wasi_fd_prestat_dir_name),
    FN("fd_pwrite", "iiiji>i", wasi_fd_pwrite),
    FN("fd_read", "iiii>i", wasi_fd_read),
    FN("fd_readdir", "iiiji>i", wasi_fd_readdir),
    FN("fd_renumber", "ii>i", wasi_fd_renumber),
    FN("fd_seek", "ijii>i", wasi_fd_seek),
    FN("fd_sync", "i>i", wasi_fd_sync),
    FN("fd_tell", "ii>i", wasi_fd_tell),
    FN("fd_write", "iiii>i", wasi_fd_write),
    FN("path_create_directory", "iii>i", wasi_path_create_directory),
    FN("path_filestat_get", "iiiii>i", wasi_path_filestat_get),
    FN("path_filestat_set_times", "iiiijji>i", wasi_path_filestat_set_times),
    FN("path_link", "iiiiiii>i", wasi_path_link),
    FN("path_open", "iiiiijjii>i", wasi_path_open),
    FN("path_readlink", "iiiiii>i", wasi_path_readlink),
    FN("path_remove_directory", "iii>i", wasi_path_remove_directory),
    FN("path_rename", "iiiiii>i", wasi_path_rename),
    FN("path_symlink", "iiiii>i", wasi_path_symlink),
    FN("path_unlink_file", "iii>i", wasi_path_unlink_file),
    FN("poll_oneoff", "iiii>i", wasi_poll_oneoff),
    FN("proc_exit", "i>", wasi_proc_exit),
    FN("proc_raise", "i>i", wasi_proc_raise),
    FN("sched_yield", ">i", wasi_sched_yield),
    FN("random_get", "ii>i", wasi_random_get),
    FN("sock_accept", "iii>i", wasi_sock_accept),
    FN("sock_recv", "iiiiii>i", wasi_sock_recv),
    FN("sock_send", "iiiii>i", wasi_sock_send),
    FN("sock_shutdown", "ii>i", wasi_sock_shutdown),
};

const kiln_hostfn *kiln_wasi_hostfns(size_t *n)
{
    *n = sizeof(wasi_table) / sizeof(wasi_table[0]);
    return wasi_table;
}

/*
 * What a snapshot's initialisation may call (kiln_snapshot_begin): calls
 * whose answers a fresh context of the same configuration gives again
 * (arguments, environment, preopen names, stdio kinds), clock and random
 * reads (their values are frozen into the image), and writes, which can
 * only reach stdout/stderr because opening anything is refused. Everything
 * that creates or changes descriptors, reads input or waits is refused.
 */
static const char *const wasi_snapshot_allow[] = {
    "wasi_snapshot_preview1.args_get",        "wasi_snapshot_preview1.args_sizes_get",
    "wasi_snapshot_preview1.environ_get",     "wasi_snapshot_preview1.environ_sizes_get",
    "wasi_snapshot_preview1.clock_res_get",   "wasi_snapshot_preview1.clock_time_get",
    "wasi_snapshot_preview1.random_get",      "wasi_snapshot_preview1.fd_write",
    "wasi_snapshot_preview1.fd_fdstat_get",   "wasi_snapshot_preview1.fd_prestat_get",
    "wasi_snapshot_preview1.fd_prestat_dir_name", "wasi_snapshot_preview1.sched_yield",
};

const char *const *kiln_wasi_snapshot_allow(size_t *n)
{
    *n = sizeof(wasi_snapshot_allow) / sizeof(wasi_snapshot_allow[0]);
    return wasi_snapshot_allow;
}
