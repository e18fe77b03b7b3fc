/*
 * cm_wasi_io.c - WASI 0.2 wasi:io (streams, poll, error) and the
 * monotonic clock's pollables, over the preview-1 context: stdio streams
 * are the preview-1 fds' byte streams (wasi_stream_read/write, shared with
 * fd_read/fd_write), file streams read and write the descriptor at their
 * own offset (wasi_preadv/wasi_pwritev, shared with fd_pread/fd_pwrite).
 *
 * Waiting: a clock pollable is a monotonic deadline; poll and block wait
 * through wasi_wait_until, the wait preview 1's poll_oneoff uses (the
 * request's fiber on a serve worker, short slices elsewhere), which ends
 * early at the invocation's deadline or a cancelled request; cm_inst then
 * unwinds the guest when the host function returns. Stream pollables are
 * ready at once (files and in-memory stdio never block; a blocking read of
 * a host pipe waits inside wasi_stream_read with deadline checks).
 * The resource table itself (cw_new/cw_get/cw_free) lives here too.
 */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "component/cm_wasi_int.h"

/* ---- the resource table ------------------------------------------------------ */

typedef struct cw_table {
    cw_obj *o;
    uint32_t n, live;
    uint32_t buckets; /* live CW_BUCKET entries */
    uint64_t listed; /* entries held by live directory listings */
} cw_table;

static void table_free(void *p)
{
    cw_table *t = p;
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->n; i++)
        wasi_dir_free(t->o[i].dir);
    kiln_free(t->o);
    kiln_free(t);
}

int cw_new(kiln_wasi *w, const cw_obj *o, uint32_t *rep, kiln_err *err)
{
    if (w->p2 == NULL) {
        w->p2 = kiln_calloc(1, sizeof(cw_table));
        if (w->p2 == NULL)
            return cw_oom(err);
        w->p2_free = table_free;
    }
    cw_table *t = w->p2;
    if (t->live >= CW_MAX_OBJECTS)
        return kiln_err_set(err, KILN_ELIMIT, "wasi 0.2: more than %d live streams, pollables "
                            "and listings; drop the ones no longer used", CW_MAX_OBJECTS);
    if (o->kind == CW_BUCKET && t->buckets >= CW_MAX_BUCKETS)
        return kiln_err_set(err, KILN_ELIMIT, "wasi:keyvalue: more than %d open buckets in one "
                            "instance; drop the buckets no longer used (one open per bucket "
                            "is enough)", CW_MAX_BUCKETS);
    uint64_t entries = o->dir != NULL ? o->dir->n : 0;
    if (t->listed + entries > CW_MAX_LISTED)
        return kiln_err_set(err, KILN_ELIMIT, "wasi 0.2: live directory listings hold more "
                            "than %d entries; drop the ones no longer read", CW_MAX_LISTED);
    uint32_t i = 0;
    while (i < t->n && t->o[i].kind != CW_FREE)
        i++;
    if (i == t->n) {
        uint32_t n = t->n ? t->n * 2 : 16;
        cw_obj *p = kiln_realloc(t->o, (size_t)n * sizeof(*p));
        if (p == NULL)
            return cw_oom(err);
        memset(p + t->n, 0, (size_t)(n - t->n) * sizeof(*p));
        t->o = p;
        t->n = n;
    }
    t->o[i] = *o;
    t->live++;
    t->buckets += o->kind == CW_BUCKET;
    t->listed += entries;
    *rep = i + 1;
    return KILN_OK;
}

cw_obj *cw_get(kiln_wasi *w, uint32_t rep, cw_kind kind, kiln_err *err)
{
    cw_table *t = w->p2;
    if (t == NULL || rep == 0 || rep > t->n || t->o[rep - 1].kind != kind) {
        kiln_err_set(err, KILN_EINVAL, "wasi 0.2: resource %u is not a live %s", (unsigned)rep,
                     kind == CW_IN ? "input-stream" : kind == CW_OUT ? "output-stream"
                     : kind == CW_POLL ? "pollable" : kind == CW_DIRENTS
                     ? "directory-entry-stream" : kind == CW_BUCKET ? "bucket" : "error");
        return NULL;
    }
    return &t->o[rep - 1];
}

void cw_free(kiln_wasi *w, uint32_t rep)
{
    cw_table *t = w->p2;
    if (t == NULL || rep == 0 || rep > t->n || t->o[rep - 1].kind == CW_FREE)
        return;
    if (t->o[rep - 1].dir != NULL)
        t->listed -= t->o[rep - 1].dir->n;
    t->buckets -= t->o[rep - 1].kind == CW_BUCKET;
    wasi_dir_free(t->o[rep - 1].dir);
    memset(&t->o[rep - 1], 0, sizeof(cw_obj));
    t->live--;
}

void cw_orphan(kiln_wasi *w, uint32_t fd)
{
    cw_table *t = w->p2;
    for (uint32_t i = 0; t != NULL && i < t->n; i++)
        if ((t->o[i].kind == CW_IN || t->o[i].kind == CW_OUT || t->o[i].kind == CW_DIRENTS) &&
            t->o[i].fd == fd)
            t->o[i].fd = CW_NO_FD;
}

static int drop_obj(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                    kiln_err *err)
{
    cw_free(ud, (uint32_t)a[0].u);
    return KILN_OK;
}

/* ---- errors ------------------------------------------------------------------ */

int cw_stream_failed(cm_inst *ci, kiln_wasi *w, wasi_errno e, cm_val *r, kiln_err *err)
{
    cw_obj o = {.kind = CW_ERROR, .err = (uint16_t)e};
    uint32_t rep;
    int rc = cw_new(w, &o, &rep, err);
    cm_val *p = rc == KILN_OK ? cw_vals(ci, 2) : NULL;
    if (rc != KILN_OK)
        return rc;
    if (p == NULL)
        return cw_oom(err);
    p[1] = (cm_val){.kind = CM_OWN, .u = rep};
    p[0] = (cm_val){.kind = CM_VARIANT, .var = {0, &p[1]}};
    return cw_err(ci, r, &p[0], err);
}

/* error(stream-error::closed) */
static int closed(cm_inst *ci, cm_val *r, kiln_err *err)
{
    cm_val v = {.kind = CM_VARIANT, .var = {1, NULL}};
    return cw_err(ci, r, &v, err);
}

static const char *const code_names[] = {
    "access", "would-block", "already", "bad-descriptor", "busy", "deadlock", "quota",
    "exist", "file-too-large", "illegal-byte-sequence", "in-progress", "interrupted",
    "invalid", "io", "is-directory", "loop", "too-many-links", "message-size",
    "name-too-long", "no-device", "no-entry", "no-lock", "insufficient-memory",
    "insufficient-space", "not-directory", "not-empty", "not-recoverable", "unsupported",
    "no-tty", "no-such-device", "overflow", "not-permitted", "pipe", "read-only",
    "invalid-seek", "text-file-busy", "cross-device",
};

static int debug_string(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                        kiln_err *err)
{
    cw_obj *o = cw_get(ud, (uint32_t)a[0].u, CW_ERROR, err);
    if (o == NULL)
        return KILN_EINVAL;
    char *s = cm_arena_alloc(cm_inst_arena(ci), 96);
    if (s == NULL)
        return cw_oom(err);
    int n = snprintf(s, 96, "%s (WASI errno %u)", code_names[cw_error_code(o->err)],
                     (unsigned)o->err);
    *r = (cm_val){.kind = CM_STRING, .str = {s, (uint32_t)n}};
    return KILN_OK;
}

/* ---- output streams ------------------------------------------------------------ */

static wasi_errno out_write(kiln_instance *inst, kiln_wasi *w, cw_obj *o, const uint8_t *buf,
                            size_t n, size_t *done)
{
    if (o->mode == CW_STDIO)
        return wasi_stream_write(inst, w, o->fd, buf, n, done);
    uint64_t at = o->pos;
    wasi_errno e = o->mode == CW_APPEND ? wasi_file_size(w, o->fd, &at) : WASI_ESUCCESS;
    struct iovec iov = {(void *)buf, n};
    *done = 0;
    if (e == WASI_ESUCCESS)
        e = wasi_pwritev(w, o->fd, &iov, 1, at, done);
    if (e == WASI_ESUCCESS && o->mode == CW_FILE)
        o->pos += *done;
    return e;
}

/* Write all of `list` (or n zeroes when list is NULL) in host-buffer chunks. */
static int write_all(cm_inst *ci, kiln_wasi *w, uint32_t rep, const cm_val *list, uint64_t zeros,
                     cm_val *r, kiln_err *err)
{
    cw_obj *o = cw_get(w, rep, CW_OUT, err);
    if (o == NULL)
        return KILN_EINVAL;
    uint64_t n = list ? cm_list_len(list) : zeros;
    uint8_t buf[4096];
    for (uint64_t i = 0; i < n;) {
        size_t k = n - i < sizeof(buf) ? (size_t)(n - i) : sizeof(buf);
        for (size_t j = 0; j < k; j++)
            buf[j] = list ? cm_list_byte(list, (uint32_t)(i + j)) : 0;
        size_t done = 0;
        wasi_errno e = out_write(cm_inst_caller(ci), w, o, buf, k, &done);
        if (e != WASI_ESUCCESS)
            return cw_stream_failed(ci, w, e, r, err);
        if (done < k)
            return closed(ci, r, err);
        i += k;
    }
    return cw_ok(ci, r, NULL, err);
}

static int write_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                    kiln_err *err)
{
    return write_all(ci, ud, (uint32_t)a[0].u, &a[1], 0, r, err);
}

static int write_zeroes(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                        kiln_err *err)
{
    if (a[1].u > ((uint64_t)1 << 30))
        return kiln_err_set(err, KILN_ELIMIT, "write-zeroes: %llu bytes is over 1 GiB",
                            (unsigned long long)a[1].u);
    return write_all(ci, ud, (uint32_t)a[0].u, NULL, a[1].u, r, err);
}

static int check_write(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                       kiln_err *err)
{
    if (cw_get(ud, (uint32_t)a[0].u, CW_OUT, err) == NULL)
        return KILN_EINVAL;
    cm_val n = {.kind = CM_U64, .u = 65536};
    return cw_ok(ci, r, &n, err);
}

static int flush(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                 kiln_err *err)
{
    if (cw_get(ud, (uint32_t)a[0].u, CW_OUT, err) == NULL)
        return KILN_EINVAL;
    return cw_ok(ci, r, NULL, err);
}

/* ---- input streams -------------------------------------------------------------- */

/* Read up to `want` bytes (at most CW_MAX_READ) into the arena's list. */
static int read_some(cm_inst *ci, kiln_wasi *w, uint32_t rep, uint64_t want, bool keep,
                     cm_val *r, kiln_err *err)
{
    cw_obj *o = cw_get(w, rep, CW_IN, err);
    if (o == NULL)
        return KILN_EINVAL;
    if (want > CW_MAX_READ)
        want = CW_MAX_READ;
    uint8_t *buf = cm_arena_alloc(cm_inst_arena(ci), want ? (size_t)want : 1);
    if (buf == NULL)
        return cw_oom(err);
    size_t done = 0;
    wasi_errno e = WASI_ESUCCESS;
    if (want > 0 && o->mode == CW_STDIO) {
        e = wasi_stream_read(cm_inst_caller(ci), w, o->fd, buf, (size_t)want, &done);
    } else if (want > 0) {
        struct iovec iov = {buf, (size_t)want};
        e = wasi_preadv(w, o->fd, &iov, 1, o->pos, &done);
        o->pos += done;
    }
    if (e != WASI_ESUCCESS)
        return cw_stream_failed(ci, w, e, r, err);
    if (want > 0 && done == 0)
        return closed(ci, r, err);
    cm_val v;
    if (keep) {
        int rc = cw_bytes(ci, buf, done, &v, err);
        if (rc != KILN_OK)
            return rc;
    } else {
        v = (cm_val){.kind = CM_U64, .u = done};
    }
    return cw_ok(ci, r, &v, err);
}

static int read_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    return read_some(ci, ud, (uint32_t)a[0].u, a[1].u, true, r, err);
}

static int skip_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    return read_some(ci, ud, (uint32_t)a[0].u, a[1].u, false, r, err);
}

/* ---- pollables ---------------------------------------------------------------------- */

static uint64_t mono_now(void)
{
    bool ok;
    return wasi_now_ns(WASI_CLOCK_MONOTONIC, &ok);
}

static int pollable(cm_inst *ci, kiln_wasi *w, uint64_t deadline, cm_val *r, kiln_err *err)
{
    cw_obj o = {.kind = CW_POLL, .pos = deadline};
    uint32_t rep;
    int rc = cw_new(w, &o, &rep, err);
    if (rc == KILN_OK)
        *r = (cm_val){.kind = CM_OWN, .u = rep};
    return rc;
}

static int subscribe_stream(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a,
                            cm_val *r, kiln_err *err)
{
    return pollable(ci, ud, 0, r, err);
}

static int subscribe_duration(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a,
                              cm_val *r, kiln_err *err)
{
    uint64_t now = mono_now();
    uint64_t d = a[0].u;
    return pollable(ci, ud, d > UINT64_MAX - now ? UINT64_MAX : now + d, r, err);
}

static int subscribe_instant(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a,
                             cm_val *r, kiln_err *err)
{
    return pollable(ci, ud, a[0].u, r, err);
}

static int ready(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                 kiln_err *err)
{
    cw_obj *o = cw_get(ud, (uint32_t)a[0].u, CW_POLL, err);
    if (o == NULL)
        return KILN_EINVAL;
    *r = (cm_val){.kind = CM_BOOL, .b = mono_now() >= o->pos};
    return KILN_OK;
}

static int block(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                 kiln_err *err)
{
    cw_obj *o = cw_get(ud, (uint32_t)a[0].u, CW_POLL, err);
    if (o == NULL)
        return KILN_EINVAL;
    if (mono_now() < o->pos)
        (void)wasi_wait_until(o->pos);
    return KILN_OK;
}

static int poll_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    uint32_t n = a[0].agg.n;
    if (n == 0)
        return kiln_err_set(err, KILN_EINVAL, "wasi:io/poll#poll: an empty list would wait "
                            "forever; pass at least one pollable");
    uint64_t *dl = cm_arena_alloc(cm_inst_arena(ci), (size_t)n * sizeof(*dl));
    cm_val *v = cw_vals(ci, n);
    if (dl == NULL || v == NULL)
        return cw_oom(err);
    uint64_t earliest = UINT64_MAX;
    for (uint32_t i = 0; i < n; i++) {
        cw_obj *o = cw_get(ud, (uint32_t)a[0].agg.v[i].u, CW_POLL, err);
        if (o == NULL)
            return KILN_EINVAL;
        dl[i] = o->pos;
        if (dl[i] < earliest)
            earliest = dl[i];
    }
    /* Wait for the earliest; an early return (deadline, cancellation) hands
     * back what is ready, and cm_inst unwinds the guest on the way out. */
    if (mono_now() < earliest)
        (void)wasi_wait_until(earliest);
    uint64_t now = mono_now();
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (now >= dl[i])
            v[k++] = (cm_val){.kind = CM_U32, .u = i};
    *r = (cm_val){.kind = CM_LIST, .agg = {v, k}};
    return KILN_OK;
}

const cm_host_fn cw_io_fns[] = {
    {"wasi:io/streams", "[method]output-stream.check-write", check_write},
    {"wasi:io/streams", "[method]output-stream.write", write_fn},
    {"wasi:io/streams", "[method]output-stream.blocking-write-and-flush", write_fn},
    {"wasi:io/streams", "[method]output-stream.write-zeroes", write_zeroes},
    {"wasi:io/streams", "[method]output-stream.blocking-write-zeroes-and-flush", write_zeroes},
    {"wasi:io/streams", "[method]output-stream.flush", flush},
    {"wasi:io/streams", "[method]output-stream.blocking-flush", flush},
    {"wasi:io/streams", "[method]output-stream.subscribe", subscribe_stream},
    {"wasi:io/streams", "[method]input-stream.read", read_fn},
    {"wasi:io/streams", "[method]input-stream.blocking-read", read_fn},
    {"wasi:io/streams", "[method]input-stream.skip", skip_fn},
    {"wasi:io/streams", "[method]input-stream.blocking-skip", skip_fn},
    {"wasi:io/streams", "[method]input-stream.subscribe", subscribe_stream},
    {"wasi:io/streams", "[resource-drop]input-stream", drop_obj},
    {"wasi:io/streams", "[resource-drop]output-stream", drop_obj},
    {"wasi:io/error", "[method]error.to-debug-string", debug_string},
    {"wasi:io/error", "[resource-drop]error", drop_obj},
    {"wasi:io/poll", "poll", poll_fn},
    {"wasi:io/poll", "[method]pollable.ready", ready},
    {"wasi:io/poll", "[method]pollable.block", block},
    {"wasi:io/poll", "[resource-drop]pollable", drop_obj},
    {"wasi:clocks/monotonic-clock", "subscribe-duration", subscribe_duration},
    {"wasi:clocks/monotonic-clock", "subscribe-instant", subscribe_instant},
};
const size_t cw_io_n = sizeof(cw_io_fns) / sizeof(cw_io_fns[0]);
