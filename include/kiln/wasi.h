/*
 * wasi.h - the WASI preview 1 host (`wasi_snapshot_preview1`): a host-function
 * table for a kiln_linker and the per-instance context those functions use.
 *
 * Typical use (see src/cli/cmd_run.c):
 *
 *     size_t n;
 *     const kiln_hostfn *fns = kiln_wasi_hostfns(&n);
 *     kiln_linker_define_host(linker, fns, n);
 *     ...
 *     kiln_wasi_config cfg = {0};              // inherit stdio, no args
 *     cfg.argv = argv; cfg.argc = argc;
 *     kiln_wasi *wasi;
 *     if (kiln_wasi_new(&cfg, &wasi, &err) != KILN_OK) ...
 *     void *state[KILN_STATE_SLOTS] = {0};
 *     state[KILN_STATE_WASI] = wasi;
 *     kiln_instance_new(pre, &limits, state, &inst, &err);
 *     kiln_instance_call(inst, "_start", ">", NULL, NULL, &err);
 *     kiln_instance_free(inst);
 *     kiln_wasi_free(wasi);                    // after the instance
 *
 * Capability model: the guest sees only the preopened directories (as fds 3,
 * 4, ... in config order) and the three stdio streams. Every path is resolved
 * by the kernel beneath a preopen (see docs/internals/wasi.md); `..`,
 * absolute paths and symlinks leading out fail with ENOTCAPABLE, and
 * read-only preopens refuse every modification with EROFS.
 *
 * Thread-safety: kiln_wasi_hostfns is thread-safe. A kiln_wasi context
 * belongs to one instance and is used by one thread at a time, like the
 * instance itself.
 */
#ifndef KILN_WASI_H
#define KILN_WASI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "runtime.h"

typedef struct kiln_wasi kiln_wasi;

typedef enum kiln_wasi_stdio_kind {
    KILN_WASI_STDIO_INHERIT = 0, /* the host process's own fd 0, 1 or 2 */
    KILN_WASI_STDIO_NULL = 1,    /* stdin reads EOF; output is discarded */
    KILN_WASI_STDIO_FD = 2,      /* the host fd `fd` (borrowed, never closed) */
    KILN_WASI_STDIO_BUFFER = 3,  /* stdin: read data/len; stdout/stderr: captured */
} kiln_wasi_stdio_kind;

typedef struct kiln_wasi_stdio {
    kiln_wasi_stdio_kind kind;
    int fd;           /* KILN_WASI_STDIO_FD */
    const void *data; /* stdin BUFFER: borrowed; must outlive the context */
    size_t len;       /* stdin BUFFER: bytes at data */
    size_t cap;       /* stdout/stderr BUFFER: capture cap in bytes; 0 = 1 MiB */
} kiln_wasi_stdio;

typedef struct kiln_wasi_preopen {
    const char *host_path;  /* directory to expose (opened by kiln_wasi_new) */
    const char *guest_path; /* name the guest sees; NULL = host_path */
    bool read_only;         /* refuse every write below this directory */
} kiln_wasi_preopen;

/* A zeroed config is valid: no args, no env, no preopens, inherited stdio. */
typedef struct kiln_wasi_config {
    const char *const *argv; /* argv[0] is the program name the guest sees */
    size_t argc;
    const char *const *env; /* "KEY=VALUE" strings; each must contain '=' */
    size_t envc;
    const kiln_wasi_preopen *preopens;
    size_t npreopens;
    kiln_wasi_stdio stdio[3]; /* stdin, stdout, stderr */
    uint32_t max_fds;         /* open-descriptor limit for the guest; 0 = 1024 */
} kiln_wasi_config;

/*
 * The `wasi_snapshot_preview1` host functions, every import wasi-libc can make
 * (signatures exactly as in wasi-libc's <wasi/api.h>). The table is static;
 * *n receives its length. Unsupported functions return ENOSYS to the guest.
 */
KILN_API const kiln_hostfn *kiln_wasi_hostfns(size_t *n /* OUT */);
/* The WASI calls a snapshot's initialisation may make (the `allow` list of
 * kiln_snapshot_begin): reads of args, environment, preopen names, stdio
 * kinds, clock and randomness, and fd_write (only stdout/stderr can be
 * open). "module.name" strings, static. */
KILN_API const char *const *kiln_wasi_snapshot_allow(size_t *n /* OUT */);

/*
 * Create a context from `cfg`: copies argv and env, opens every preopen (the
 * host directory must exist). Returns KILN_OK, KILN_EINVAL (malformed config,
 * e.g. an env entry without '='), KILN_ENOENT (a preopen cannot be opened),
 * KILN_EUNSUPPORTED (preopens requested but the kernel cannot confine path
 * lookups) or KILN_ENOMEM; err explains. The caller owns *out and frees it
 * with kiln_wasi_free after every instance using it is freed.
 */
KILN_API int kiln_wasi_new(const kiln_wasi_config *cfg, kiln_wasi **out /* OUT */, kiln_err *err);

/* Close every descriptor the context opened and free it. NULL is ok. */
KILN_API void kiln_wasi_free(kiln_wasi *w);

/*
 * Captured output of fd 1 or 2 when configured as KILN_WASI_STDIO_BUFFER:
 * returns the bytes (valid until the next guest call or kiln_wasi_free) and
 * sets *len; NULL with *len = 0 when nothing was captured or fd is not a
 * buffer. *truncated (may be NULL) tells whether output beyond the cap was
 * refused: the guest saw short writes, then EFBIG.
 */
KILN_API const uint8_t *kiln_wasi_output(const kiln_wasi *w, int fd, size_t *len /* OUT */,
                                         bool *truncated /* OUT */);

/* Take ownership of fd 1 or 2's captured bytes (free with kiln_free), leaving
 * the buffer empty. *data is NULL when nothing was captured. */
KILN_API void kiln_wasi_output_take(kiln_wasi *w, int fd, uint8_t **data /* OUT */,
                                    size_t *len /* OUT */);

#endif
