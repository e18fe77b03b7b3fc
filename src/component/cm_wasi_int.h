/*
 * cm_wasi_int.h - private to cm_wasi*.c: the WASI 0.2 host's resource table
 * and the helpers its three files share. cm_wasi.c has the CLI, clocks and
 * random; cm_wasi_io.c streams, pollables, errors and poll; cm_wasi_fs.c
 * wasi:filesystem over the preview-1 descriptor table.
 *
 * Resources are host representations (`rep`, the cm_val's `u`):
 *   - descriptor: the preview-1 fd number in kiln_wasi's own table, so both
 *     ABIs share one descriptor table, one set of rights and one sandbox;
 *   - input-stream, output-stream, pollable, directory-entry-stream, error:
 *     index + 1 into the table below (cw_obj), kept beside the context in
 *     kiln_wasi's p2 slot and freed with it. A guest dropping its handle
 *     frees the entry (the `[resource-drop]...` entries, called by
 *     cm_inst's resource.drop); live entries are capped at CW_MAX_OBJECTS.
 *   - bucket (wasi:keyvalue, cm_kiln_kv.c): an entry of the same table
 *     naming the granted namespace it opened; live buckets are capped at
 *     CW_MAX_BUCKETS, so a guest opening buckets in a loop gets an error
 *     instead of growing the table.
 * The handle table checks the resource type of every handle before a host
 * function sees its rep; cw_get checks the kind again.
 */
#ifndef KILN_COMPONENT_CM_WASI_INT_H
#define KILN_COMPONENT_CM_WASI_INT_H

#include <stddef.h>
#include <stdint.h>

#include "abi/wasi/wasi.h"
#include "component/cm_inst.h"
#include "component/cm_int.h"

/* Live streams, pollables, listings and errors of one context. */
#define CW_MAX_OBJECTS 65536
/* Directory entries all live listings of one context may hold (each
 * read-directory snapshots its directory). */
#define CW_MAX_LISTED (1 << 20)
/* Live wasi:keyvalue buckets of one context (each open is one). */
#define CW_MAX_BUCKETS 1024
/* Bytes one read or blocking-read returns at most (lifted values cost
 * about 32 bytes of arena per byte). */
#define CW_MAX_READ 65536

typedef enum cw_kind {
    CW_FREE = 0, CW_IN, CW_OUT, CW_POLL, CW_DIRENTS, CW_ERROR, CW_BUCKET,
} cw_kind;

struct kiln_kv_ns;

typedef enum cw_mode {
    CW_STDIO = 0, /* the fd's byte stream (wasi_stream_read/write) */
    CW_FILE,      /* pread/pwrite at `pos`, which advances */
    CW_APPEND,    /* pwrite at the file's current end */
} cw_mode;

typedef struct cw_obj {
    uint8_t kind; /* cw_kind */
    uint8_t mode; /* cw_mode, streams */
    uint16_t err; /* CW_ERROR: the wasi_errno */
    uint32_t fd;  /* streams, listings: the preview-1 descriptor */
    uint64_t pos; /* file streams: offset; pollables: monotonic deadline
                     (0: ready); listings: next entry */
    wasi_dir_cache *dir; /* CW_DIRENTS: the snapshot */
    const struct kiln_kv_ns *ns; /* CW_BUCKET: the granted namespace (the
                                    function's grant set outlives the context) */
} cw_obj;

/* A new entry (a copy of *o; a listing's snapshot then belongs to the
 * table) in w's table: *rep = its representation. KILN_ELIMIT past
 * CW_MAX_OBJECTS live entries, CW_MAX_LISTED listed entries or
 * CW_MAX_BUCKETS buckets, KILN_ENOMEM;
 * on failure *o's snapshot stays the caller's. */
int cw_new(kiln_wasi *w, const cw_obj *o, uint32_t *rep, kiln_err *err);
/* The live entry rep of `kind`, or NULL with err set (KILN_EINVAL). */
cw_obj *cw_get(kiln_wasi *w, uint32_t rep, cw_kind kind, kiln_err *err);
/* Free entry rep (its listing too); unknown reps are ignored. */
void cw_free(kiln_wasi *w, uint32_t rep);

/* A descriptor's fd is being closed: its streams and listings lose it (a
 * later use is bad-descriptor, never a file opened later under the same
 * number). */
#define CW_NO_FD UINT32_MAX
void cw_orphan(kiln_wasi *w, uint32_t fd);

/* An error resource carrying e, as a stream-error::last-operation-failed. */
int cw_stream_failed(cm_inst *ci, kiln_wasi *w, wasi_errno e, cm_val *r, kiln_err *err);

/* Values in the call's arena. */
cm_val *cw_vals(cm_inst *ci, uint32_t n);
int cw_oom(kiln_err *err);
/* result::ok(payload) (payload NULL: ok without a value) and result::err. */
int cw_ok(cm_inst *ci, cm_val *r, const cm_val *payload, kiln_err *err);
int cw_err(cm_inst *ci, cm_val *r, const cm_val *payload, kiln_err *err);
/* A byte list of the n bytes at p (raw-bytes form; p must live in the
 * call's arena, or longer, until the result is lowered). */
int cw_bytes(cm_inst *ci, const uint8_t *p, size_t n, cm_val *out, kiln_err *err);
/* A lifted list<u8> copied into a host buffer (at most cap bytes; more is
 * KILN_ELIMIT). */
int cw_unbytes(const cm_val *list, uint8_t *buf, size_t cap, size_t *n, kiln_err *err);
/* The wall-clock datetime record of ns since the epoch. */
int cw_datetime(cm_inst *ci, uint64_t ns, cm_val *r, kiln_err *err);

/* wasi:filesystem's error-code case for a preview-1 errno (the WIT's
 * order; ENOTCAPABLE, an escape from the sandbox, is not-permitted). */
uint32_t cw_error_code(wasi_errno e);

extern const cm_host_fn cw_io_fns[];
extern const size_t cw_io_n;
extern const cm_host_fn cw_fs_fns[];
extern const size_t cw_fs_n;

#endif
