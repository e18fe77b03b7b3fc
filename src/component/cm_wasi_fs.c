/*
 * cm_wasi_fs.c - WASI 0.2 wasi:filesystem/{types,preopens} over Kiln's
 * preview-1 implementation: a descriptor's rep is its preview-1 fd number,
 * and every operation calls the host-value core preview 1's own function
 * calls (wasi_open_at, wasi_mkdir_at, wasi_preadv, ... in src/abi/wasi), so
 * both ABIs share one descriptor table, one set of rights, the read-only
 * preopens (EROFS → read-only) and the kernel-confined path resolution of
 * platform/sandbox_fs.h (`..`, absolute paths and symlinks leading out →
 * ENOTCAPABLE → not-permitted). This file only converts values.
 *
 * Streams on a descriptor (read-/write-/append-via-stream) and directory
 * listings are entries of cm_wasi_io.c's resource table; dropping a
 * descriptor closes its preview-1 fd unless it is a preopen (those belong
 * to the context and may be handed out again by get-directories).
 * descriptor-flags' mutate-directory is reported, not enforced: directory
 * rights follow preview 1 (everything below a writable preopen, nothing
 * that modifies below a read-only one).
 */
#include <string.h>

#include "base/alloc.h"
#include "component/cm_wasi_int.h"

uint32_t cw_error_code(wasi_errno e)
{
    switch (e) {
    case WASI_EACCES: return 0;
    case WASI_EAGAIN: return 1;
    case WASI_EALREADY: return 2;
    case WASI_EBADF: return 3;
    case WASI_EBUSY: return 4;
    case WASI_EDEADLK: return 5;
    case WASI_EDQUOT: return 6;
    case WASI_EEXIST: return 7;
    case WASI_EFBIG: return 8;
    case WASI_EILSEQ: return 9;
    case WASI_EINPROGRESS: return 10;
    case WASI_EINTR: return 11;
    case WASI_EINVAL: case WASI_EFAULT: return 12;
    case WASI_EISDIR: return 14;
    case WASI_ELOOP: return 15;
    case WASI_EMLINK: return 16;
    case WASI_EMSGSIZE: return 17;
    case WASI_ENAMETOOLONG: return 18;
    case WASI_ENODEV: return 19;
    case WASI_ENOENT: return 20;
    case WASI_ENOLCK: return 21;
    case WASI_ENOMEM: return 22;
    case WASI_ENOSPC: return 23;
    case WASI_ENOTDIR: return 24;
    case WASI_ENOTEMPTY: return 25;
    case WASI_ENOTRECOVERABLE: return 26;
    case WASI_ENOTSUP: case WASI_ENOSYS: return 27;
    case WASI_ENOTTY: return 28;
    case WASI_ENXIO: return 29;
    case WASI_EOVERFLOW: return 30;
    case WASI_EPERM: case WASI_ENOTCAPABLE: return 31;
    case WASI_EPIPE: return 32;
    case WASI_EROFS: return 33;
    case WASI_ESPIPE: return 34;
    case WASI_ETXTBSY: return 35;
    case WASI_EXDEV: return 36;
    default: return 13; /* io */
    }
}

/* result::err(error-code), or ok(payload) when e is success. */
static int fs_result(cm_inst *ci, cm_val *r, wasi_errno e, const cm_val *payload, kiln_err *err)
{
    if (e == WASI_ESUCCESS)
        return cw_ok(ci, r, payload, err);
    cm_val code = {.kind = CM_ENUM, .var = {cw_error_code(e), NULL}};
    return cw_err(ci, r, &code, err);
}

/* A guest path as a NUL-terminated host string in w->path[slot]. */
static wasi_errno path_of(kiln_wasi *w, const cm_val *s, int slot)
{
    if (s->str.len >= sizeof(w->path[slot]))
        return WASI_ENAMETOOLONG;
    if (memchr(s->str.p, '\0', s->str.len) != NULL)
        return WASI_EILSEQ;
    memcpy(w->path[slot], s->str.p, s->str.len);
    w->path[slot][s->str.len] = '\0';
    return WASI_ESUCCESS;
}

#define FD(v) ((uint32_t)(v).u)
#define HOSTFN(name)                                                                           \
    static int name(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,      \
                    kiln_err *err)

/* descriptor-type of a host file mode. */
static uint32_t type_of_mode(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFBLK: return 1;
    case S_IFCHR: return 2;
    case S_IFDIR: return 3;
    case S_IFIFO: return 4;
    case S_IFLNK: return 5;
    case S_IFREG: return 6;
    case S_IFSOCK: return 7;
    default: return 0;
    }
}

/* descriptor-type of a preview-1 filetype. */
static uint32_t type_of_filetype(uint8_t t)
{
    static const uint32_t map[] = {0, 1, 2, 3, 6, 7, 7, 5};
    return t < sizeof(map) / sizeof(map[0]) ? map[t] : 0;
}

/* ---- preopens ------------------------------------------------------------------- */

HOSTFN(get_directories)
{
    kiln_wasi *w = ud;
    uint32_t n = 0;
    for (uint32_t i = 0; i < w->nfds; i++)
        n += w->fds[i].kind != WASI_FD_FREE && w->fds[i].preopen != NULL;
    cm_val *v = cw_vals(ci, n), *t = cw_vals(ci, 2 * n);
    if (v == NULL || t == NULL)
        return cw_oom(err);
    uint32_t k = 0;
    for (uint32_t i = 0; i < w->nfds && k < n; i++) {
        const wasi_fd *f = &w->fds[i];
        if (f->kind == WASI_FD_FREE || f->preopen == NULL)
            continue;
        t[2 * k] = (cm_val){.kind = CM_OWN, .u = i};
        t[2 * k + 1] = (cm_val){.kind = CM_STRING, .str = {f->preopen,
                                                             (uint32_t)strlen(f->preopen)}};
        v[k] = (cm_val){.kind = CM_TUPLE, .agg = {&t[2 * k], 2}};
        k++;
    }
    *r = (cm_val){.kind = CM_LIST, .agg = {v, k}};
    return KILN_OK;
}

HOSTFN(drop_descriptor)
{
    kiln_wasi *w = ud;
    wasi_fd *f = wasi_fd_get(w, FD(a[0]));
    /* Preopens (and stdio, never handed out as descriptors) stay open. */
    if (f != NULL && f->preopen == NULL && FD(a[0]) > 2) {
        cw_orphan(w, FD(a[0]));
        wasi_fd_release(f);
    }
    return KILN_OK;
}

/* ---- streams on a descriptor ---------------------------------------------------- */

static int file_stream(cm_inst *ci, kiln_wasi *w, uint32_t fd, cw_kind kind, cw_mode mode,
                       uint64_t pos, cm_val *r, kiln_err *err)
{
    wasi_fd *f = wasi_fd_get(w, fd);
    uint64_t need = kind == CW_IN ? WASI_RIGHT_FD_READ : WASI_RIGHT_FD_WRITE;
    wasi_errno e = WASI_ESUCCESS;
    if (f == NULL || f->kind != WASI_FD_HOST)
        e = WASI_EBADF;
    else if (f->filetype == WASI_FILETYPE_DIRECTORY)
        e = WASI_EISDIR;
    else if (!(f->rights_base & need))
        e = f->read_only && kind == CW_OUT ? WASI_EROFS : WASI_EBADF;
    if (e != WASI_ESUCCESS)
        return fs_result(ci, r, e, NULL, err);
    cw_obj o = {.kind = (uint8_t)kind, .mode = (uint8_t)mode, .fd = fd, .pos = pos};
    uint32_t rep;
    int rc = cw_new(w, &o, &rep, err);
    if (rc != KILN_OK)
        return rc;
    cm_val s = {.kind = CM_OWN, .u = rep};
    return cw_ok(ci, r, &s, err);
}

HOSTFN(read_via_stream)
{
    return file_stream(ci, ud, FD(a[0]), CW_IN, CW_FILE, a[1].u, r, err);
}

HOSTFN(write_via_stream)
{
    return file_stream(ci, ud, FD(a[0]), CW_OUT, CW_FILE, a[1].u, r, err);
}

HOSTFN(append_via_stream)
{
    return file_stream(ci, ud, FD(a[0]), CW_OUT, CW_APPEND, 0, r, err);
}

/* ---- descriptor methods --------------------------------------------------------- */

HOSTFN(advise)
{
    return fs_result(ci, r, wasi_fadvise(ud, FD(a[0]), a[1].u, a[2].u, a[3].var.index), NULL,
                     err);
}

HOSTFN(sync_data)
{
    return fs_result(ci, r, wasi_fsync(ud, FD(a[0]), true), NULL, err);
}

HOSTFN(sync_all)
{
    return fs_result(ci, r, wasi_fsync(ud, FD(a[0]), false), NULL, err);
}

HOSTFN(get_flags)
{
    wasi_fd *f = wasi_fd_get(ud, FD(a[0]));
    if (f == NULL)
        return fs_result(ci, r, WASI_EBADF, NULL, err);
    uint32_t fl = 0;
    if (f->rights_base & (WASI_RIGHT_FD_READ | WASI_RIGHT_FD_READDIR))
        fl |= 1u << 0;
    if (f->rights_base & WASI_RIGHT_FD_WRITE)
        fl |= 1u << 1;
    uint16_t ff = wasi_fd_flags(f);
    if (ff & WASI_FDFLAGS_SYNC)
        fl |= 1u << 2;
    if (ff & WASI_FDFLAGS_DSYNC)
        fl |= 1u << 3;
    if (ff & WASI_FDFLAGS_RSYNC)
        fl |= 1u << 4;
    if (f->filetype == WASI_FILETYPE_DIRECTORY && !f->read_only &&
        (f->rights_base & WASI_RIGHTS_DIR_WRITE))
        fl |= 1u << 5;
    cm_val v = {.kind = CM_FLAGS, .flags = fl};
    return fs_result(ci, r, WASI_ESUCCESS, &v, err);
}

HOSTFN(get_type)
{
    wasi_fd *f = wasi_fd_get(ud, FD(a[0]));
    if (f == NULL)
        return fs_result(ci, r, WASI_EBADF, NULL, err);
    cm_val v = {.kind = CM_ENUM, .var = {type_of_filetype(f->filetype), NULL}};
    return fs_result(ci, r, WASI_ESUCCESS, &v, err);
}

HOSTFN(set_size)
{
    return fs_result(ci, r, wasi_ftruncate(ud, FD(a[0]), a[1].u), NULL, err);
}

/* new-timestamp: no-change, now, timestamp(datetime). */
static void new_timestamp(const cm_val *v, struct timespec *ts)
{
    ts->tv_sec = 0;
    if (v->var.index == 0) {
        ts->tv_nsec = UTIME_OMIT;
    } else if (v->var.index == 1) {
        ts->tv_nsec = UTIME_NOW;
    } else {
        const cm_val *d = v->var.payload;
        ts->tv_sec = (time_t)d->agg.v[0].u;
        ts->tv_nsec = (long)(d->agg.v[1].u % 1000000000u);
    }
}

HOSTFN(set_times)
{
    struct timespec ts[2];
    new_timestamp(&a[1], &ts[0]);
    new_timestamp(&a[2], &ts[1]);
    return fs_result(ci, r, wasi_futimens(ud, FD(a[0]), ts), NULL, err);
}

HOSTFN(set_times_at)
{
    kiln_wasi *w = ud;
    struct timespec ts[2];
    new_timestamp(&a[3], &ts[0]);
    new_timestamp(&a[4], &ts[1]);
    wasi_errno e = path_of(w, &a[2], 0);
    if (e == WASI_ESUCCESS)
        e = wasi_utimes_at(w, FD(a[0]), (a[1].flags & 1) != 0, w->path[0], ts);
    return fs_result(ci, r, e, NULL, err);
}

/* read: func(length, offset) -> result<tuple<list<u8>, bool>, error-code> */
HOSTFN(read_at)
{
    uint64_t want = a[1].u > CW_MAX_READ ? CW_MAX_READ : a[1].u;
    uint8_t *buf = cm_arena_alloc(cm_inst_arena(ci), want ? (size_t)want : 1);
    if (buf == NULL)
        return cw_oom(err);
    struct iovec iov = {buf, (size_t)want};
    size_t done = 0;
    wasi_errno e = wasi_preadv(ud, FD(a[0]), &iov, 1, a[2].u, &done);
    if (e != WASI_ESUCCESS)
        return fs_result(ci, r, e, NULL, err);
    cm_val *t = cw_vals(ci, 2);
    if (t == NULL)
        return cw_oom(err);
    int rc = cw_bytes(ci, buf, done, &t[0], err);
    if (rc != KILN_OK)
        return rc;
    /* A short read of a regular file is its end. */
    t[1] = (cm_val){.kind = CM_BOOL, .b = done < want || want == 0};
    cm_val v = {.kind = CM_TUPLE, .agg = {t, 2}};
    return fs_result(ci, r, WASI_ESUCCESS, &v, err);
}

/* write: func(buffer: list<u8>, offset) -> result<filesize, error-code> */
HOSTFN(write_at)
{
    size_t n = cm_list_len(&a[1]);
    uint8_t *buf = cm_arena_alloc(cm_inst_arena(ci), n ? n : 1);
    if (buf == NULL)
        return cw_oom(err);
    int rc = cw_unbytes(&a[1], buf, n, &n, err);
    if (rc != KILN_OK)
        return rc;
    struct iovec iov = {buf, n};
    size_t done = 0;
    wasi_errno e = wasi_pwritev(ud, FD(a[0]), &iov, 1, a[2].u, &done);
    cm_val v = {.kind = CM_U64, .u = done};
    return fs_result(ci, r, e, &v, err);
}

HOSTFN(read_directory)
{
    kiln_wasi *w = ud;
    wasi_dir_cache *d = kiln_calloc(1, sizeof(*d));
    if (d == NULL)
        return cw_oom(err);
    wasi_errno e = wasi_dir_list(w, FD(a[0]), d);
    if (e != WASI_ESUCCESS) {
        wasi_dir_free(d);
        return fs_result(ci, r, e, NULL, err);
    }
    cw_obj o = {.kind = CW_DIRENTS, .fd = FD(a[0]), .dir = d};
    uint32_t rep;
    int rc = cw_new(w, &o, &rep, err);
    if (rc != KILN_OK) {
        wasi_dir_free(d);
        return rc;
    }
    cm_val s = {.kind = CM_OWN, .u = rep};
    return cw_ok(ci, r, &s, err);
}

/* read-directory-entry: func() -> result<option<directory-entry>, error-code>;
 * "." and ".." are not entries in WASI 0.2. */
HOSTFN(read_directory_entry)
{
    cw_obj *o = cw_get(ud, FD(a[0]), CW_DIRENTS, err);
    if (o == NULL)
        return KILN_EINVAL;
    const wasi_dir_cache *d = o->dir;
    while (o->pos < d->n) {
        const wasi_dir_entry *de = &d->entries[o->pos++];
        const char *name = d->names + de->name_off;
        if ((de->name_len == 1 && name[0] == '.') ||
            (de->name_len == 2 && name[0] == '.' && name[1] == '.'))
            continue;
        cm_val *f = cw_vals(ci, 3);
        if (f == NULL)
            return cw_oom(err);
        f[0] = (cm_val){.kind = CM_ENUM, .var = {type_of_filetype(de->filetype), NULL}};
        f[1] = (cm_val){.kind = CM_STRING, .str = {name, de->name_len}};
        f[2] = (cm_val){.kind = CM_RECORD, .agg = {f, 2}};
        cm_val some = {.kind = CM_OPTION, .var = {1, &f[2]}};
        return cw_ok(ci, r, &some, err);
    }
    cm_val nothing = {.kind = CM_OPTION, .var = {0, NULL}};
    return cw_ok(ci, r, &nothing, err);
}

HOSTFN(drop_dirents)
{
    cw_free(ud, FD(a[0]));
    return KILN_OK;
}

/* One path argument at a[i], then op(w, fd, path). */
static int path_op(cm_inst *ci, kiln_wasi *w, uint32_t fd, const cm_val *path,
                   wasi_errno (*op)(kiln_wasi *, uint32_t, const char *), cm_val *r,
                   kiln_err *err)
{
    wasi_errno e = path_of(w, path, 0);
    if (e == WASI_ESUCCESS)
        e = op(w, fd, w->path[0]);
    return fs_result(ci, r, e, NULL, err);
}

HOSTFN(create_directory_at)
{
    return path_op(ci, ud, FD(a[0]), &a[1], wasi_mkdir_at, r, err);
}

HOSTFN(remove_directory_at)
{
    return path_op(ci, ud, FD(a[0]), &a[1], wasi_rmdir_at, r, err);
}

HOSTFN(unlink_file_at)
{
    return path_op(ci, ud, FD(a[0]), &a[1], wasi_unlink_at, r, err);
}

static int stat_val(cm_inst *ci, const struct stat *st, cm_val *out, kiln_err *err)
{
    cm_val *f = cw_vals(ci, 6), *ts = cw_vals(ci, 3);
    if (f == NULL || ts == NULL)
        return cw_oom(err);
    const struct timespec *t[3] = {&st->st_atim, &st->st_mtim, &st->st_ctim};
    f[0] = (cm_val){.kind = CM_ENUM, .var = {type_of_mode(st->st_mode), NULL}};
    f[1] = (cm_val){.kind = CM_U64, .u = (uint64_t)st->st_nlink};
    f[2] = (cm_val){.kind = CM_U64, .u = st->st_size < 0 ? 0 : (uint64_t)st->st_size};
    for (int i = 0; i < 3; i++) {
        uint64_t ns = t[i]->tv_sec < 0 ? 0
                                       : (uint64_t)t[i]->tv_sec * 1000000000u +
                                             (uint64_t)t[i]->tv_nsec;
        int rc = cw_datetime(ci, ns, &ts[i], err);
        if (rc != KILN_OK)
            return rc;
        f[3 + i] = (cm_val){.kind = CM_OPTION, .var = {1, &ts[i]}};
    }
    *out = (cm_val){.kind = CM_RECORD, .agg = {f, 6}};
    return KILN_OK;
}

/* stat and metadata-hash share their shape: a stat of the descriptor or of
 * (path-flags, path) under it, answered as a record made by `conv`. */
typedef int (*stat_conv)(cm_inst *ci, const struct stat *st, cm_val *out, kiln_err *err);

static int stat_result(cm_inst *ci, cm_val *r, wasi_errno e, const struct stat *st,
                       stat_conv conv, kiln_err *err)
{
    cm_val v;
    if (e != WASI_ESUCCESS)
        return fs_result(ci, r, e, NULL, err);
    int rc = conv(ci, st, &v, err);
    return rc != KILN_OK ? rc : fs_result(ci, r, e, &v, err);
}

/* (self, path-flags, path): symlink-follow is bit 0 of path-flags. */
static wasi_errno stat_path(kiln_wasi *w, const cm_val *a, struct stat *st)
{
    wasi_errno e = path_of(w, &a[2], 0);
    if (e != WASI_ESUCCESS)
        return e;
    return wasi_stat_at(w, FD(a[0]), (a[1].flags & 1) != 0, w->path[0], st);
}

HOSTFN(stat_fd)
{
    struct stat st;
    return stat_result(ci, r, wasi_fstat(ud, FD(a[0]), &st), &st, stat_val, err);
}

HOSTFN(stat_at)
{
    struct stat st;
    return stat_result(ci, r, stat_path(ud, a, &st), &st, stat_val, err);
}

/* link-at(old-path-flags, old-path, new-descriptor, new-path) */
HOSTFN(link_at)
{
    kiln_wasi *w = ud;
    wasi_errno e = path_of(w, &a[2], 0);
    if (e == WASI_ESUCCESS)
        e = path_of(w, &a[4], 1);
    if (e == WASI_ESUCCESS)
        e = wasi_link_at(w, FD(a[0]), (uint32_t)a[1].flags, w->path[0], FD(a[3]), w->path[1]);
    return fs_result(ci, r, e, NULL, err);
}

/* open-at(path-flags, path, open-flags, descriptor-flags) -> result<descriptor> */
HOSTFN(open_at)
{
    kiln_wasi *w = ud;
    uint32_t want = a[4].flags;
    bool read = want & (1u << 0), write = want & (1u << 1);
    /* Preview-1 rights for the descriptor-flags asked for: everything but
     * reading and writing, which come only when asked. */
    uint64_t rights = (WASI_RIGHTS_FILE | WASI_RIGHTS_DIR) &
                      ~(WASI_RIGHTS_FILE_WRITE | WASI_RIGHT_FD_READ | WASI_RIGHT_FD_READDIR);
    if (read)
        rights |= WASI_RIGHT_FD_READ | WASI_RIGHT_FD_READDIR;
    if (write)
        rights |= WASI_RIGHTS_FILE_WRITE;
    uint32_t fdflags = 0;
    if (want & (1u << 2))
        fdflags |= WASI_FDFLAGS_SYNC;
    if (want & (1u << 3))
        fdflags |= WASI_FDFLAGS_DSYNC;
    if (want & (1u << 4))
        fdflags |= WASI_FDFLAGS_RSYNC;
    /* open-flags create/directory/exclusive/truncate are preview 1's oflags
     * bit for bit; path-flags symlink-follow its lookupflags. */
    uint32_t nfd = 0;
    wasi_errno e = path_of(w, &a[2], 0);
    if (e == WASI_ESUCCESS)
        e = wasi_open_at(w, FD(a[0]), a[1].flags & 1, w->path[0], a[3].flags & 0xf, rights,
                         WASI_RIGHTS_FILE | WASI_RIGHTS_DIR, fdflags, &nfd);
    cm_val d = {.kind = CM_OWN, .u = nfd};
    return fs_result(ci, r, e, &d, err);
}

HOSTFN(readlink_at)
{
    kiln_wasi *w = ud;
    char *buf = cm_arena_alloc(cm_inst_arena(ci), sizeof(w->path[1]));
    if (buf == NULL)
        return cw_oom(err);
    size_t n = 0;
    wasi_errno e = path_of(w, &a[1], 0);
    if (e == WASI_ESUCCESS)
        e = wasi_readlink_at(w, FD(a[0]), w->path[0], buf, sizeof(w->path[1]), &n);
    cm_val v = {.kind = CM_STRING, .str = {buf, (uint32_t)n}};
    return fs_result(ci, r, e, &v, err);
}

/* rename-at(old-path, new-descriptor, new-path) */
HOSTFN(rename_at)
{
    kiln_wasi *w = ud;
    wasi_errno e = path_of(w, &a[1], 0);
    if (e == WASI_ESUCCESS)
        e = path_of(w, &a[3], 1);
    if (e == WASI_ESUCCESS)
        e = wasi_rename_at(w, FD(a[0]), w->path[0], FD(a[2]), w->path[1]);
    return fs_result(ci, r, e, NULL, err);
}

/* symlink-at(old-path, new-path): old-path is the link's target. */
HOSTFN(symlink_at)
{
    kiln_wasi *w = ud;
    wasi_errno e = path_of(w, &a[1], 0);
    if (e == WASI_ESUCCESS)
        e = path_of(w, &a[2], 1);
    if (e == WASI_ESUCCESS)
        e = wasi_symlink_at(w, w->path[0], FD(a[0]), w->path[1]);
    return fs_result(ci, r, e, NULL, err);
}

HOSTFN(is_same_object)
{
    struct stat x, y;
    bool same = wasi_fstat(ud, FD(a[0]), &x) == WASI_ESUCCESS &&
                wasi_fstat(ud, FD(a[1]), &y) == WASI_ESUCCESS && x.st_dev == y.st_dev &&
                x.st_ino == y.st_ino;
    *r = (cm_val){.kind = CM_BOOL, .b = same};
    return KILN_OK;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9u;
    return h ^ (h >> 29);
}

/* metadata-hash-value {lower, upper} over what changes when the file is
 * modified or replaced: device, inode, size, modification time. */
static int hash_val(cm_inst *ci, const struct stat *st, cm_val *out, kiln_err *err)
{
    uint64_t f[5] = {(uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
                     (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec};
    uint64_t lo = 0x6b696c6e, hi = 0x77617369;
    for (int i = 0; i < 5; i++) {
        lo = mix(lo, f[i]);
        hi = mix(hi, f[i] ^ lo);
    }
    cm_val *v = cw_vals(ci, 2);
    if (v == NULL)
        return cw_oom(err);
    v[0] = (cm_val){.kind = CM_U64, .u = lo};
    v[1] = (cm_val){.kind = CM_U64, .u = hi};
    *out = (cm_val){.kind = CM_RECORD, .agg = {v, 2}};
    return KILN_OK;
}

HOSTFN(metadata_hash)
{
    struct stat st;
    return stat_result(ci, r, wasi_fstat(ud, FD(a[0]), &st), &st, hash_val, err);
}

HOSTFN(metadata_hash_at)
{
    struct stat st;
    return stat_result(ci, r, stat_path(ud, a, &st), &st, hash_val, err);
}

/* filesystem-error-code(borrow<error>) -> option<error-code> */
HOSTFN(filesystem_error_code)
{
    cw_obj *o = cw_get(ud, FD(a[0]), CW_ERROR, err);
    if (o == NULL)
        return KILN_EINVAL;
    cm_val *c = cw_vals(ci, 1);
    if (c == NULL)
        return cw_oom(err);
    *c = (cm_val){.kind = CM_ENUM, .var = {cw_error_code(o->err), NULL}};
    *r = (cm_val){.kind = CM_OPTION, .var = {1, c}};
    return KILN_OK;
}

#define T "wasi:filesystem/types"
const cm_host_fn cw_fs_fns[] = {
    {"wasi:filesystem/preopens", "get-directories", get_directories},
    {T, "[resource-drop]descriptor", drop_descriptor},
    {T, "[resource-drop]directory-entry-stream", drop_dirents},
    {T, "[method]descriptor.read-via-stream", read_via_stream},
    {T, "[method]descriptor.write-via-stream", write_via_stream},
    {T, "[method]descriptor.append-via-stream", append_via_stream},
    {T, "[method]descriptor.advise", advise},
    {T, "[method]descriptor.sync-data", sync_data},
    {T, "[method]descriptor.get-flags", get_flags},
    {T, "[method]descriptor.get-type", get_type},
    {T, "[method]descriptor.set-size", set_size},
    {T, "[method]descriptor.set-times", set_times},
    {T, "[method]descriptor.read", read_at},
    {T, "[method]descriptor.write", write_at},
    {T, "[method]descriptor.read-directory", read_directory},
    {T, "[method]descriptor.sync", sync_all},
    {T, "[method]descriptor.create-directory-at", create_directory_at},
    {T, "[method]descriptor.stat", stat_fd},
    {T, "[method]descriptor.stat-at", stat_at},
    {T, "[method]descriptor.set-times-at", set_times_at},
    {T, "[method]descriptor.link-at", link_at},
    {T, "[method]descriptor.open-at", open_at},
    {T, "[method]descriptor.readlink-at", readlink_at},
    {T, "[method]descriptor.remove-directory-at", remove_directory_at},
    {T, "[method]descriptor.rename-at", rename_at},
    {T, "[method]descriptor.symlink-at", symlink_at},
    {T, "[method]descriptor.unlink-file-at", unlink_file_at},
    {T, "[method]descriptor.is-same-object", is_same_object},
    {T, "[method]descriptor.metadata-hash", metadata_hash},
    {T, "[method]descriptor.metadata-hash-at", metadata_hash_at},
    {T, "[method]directory-entry-stream.read-directory-entry", read_directory_entry},
    {T, "filesystem-error-code", filesystem_error_code},
};
const size_t cw_fs_n = sizeof(cw_fs_fns) / sizeof(cw_fs_fns[0]);
