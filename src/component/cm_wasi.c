/*
 * cm_wasi.c - minimal WASI 0.2 for `wasi:cli/command` components (what the
 * preview-1 command adapter imports for a program that reads args and env,
 * writes stdout/stderr, reads stdin and exits), on top of Kiln's preview-1
 * context (kiln_wasi: the same args, env and stdio, src/abi/wasi).
 *
 * Resources are host representations: output-stream 1/2 and input-stream 0
 * are the preview-1 fds; every pollable is ready (stdio only); error is
 * never created. wasi:filesystem is not wired yet: get-directories returns
 * no preopens and every other filesystem function traps.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "abi/wasi/wasi.h"
#include "component/cm_inst.h"
#include "component/cm_int.h"
#include "component/cm_wasi.h"

static cm_val *vals(cm_inst *ci, uint32_t n)
{
    return cm_arena_alloc(cm_inst_arena(ci), (n ? n : 1) * sizeof(cm_val));
}

static int oom(kiln_err *err)
{
    return kiln_err_set(err, KILN_ENOMEM, "out of memory");
}

static cm_val str(const char *p, size_t n)
{
    return (cm_val){.kind = CM_STRING, .str = {p, (uint32_t)n}};
}

/* A list of NUL-separated strings: "K=V" split into tuples when pairs. */
static int string_list(cm_inst *ci, const char *buf, uint32_t count, bool pairs, cm_val *r,
                       kiln_err *err)
{
    cm_val *v = vals(ci, count);
    cm_val *t = pairs ? vals(ci, 2 * count) : NULL;
    if (v == NULL || (pairs && t == NULL))
        return oom(err);
    const char *p = buf;
    for (uint32_t i = 0; i < count; i++) {
        size_t n = strlen(p);
        if (pairs) {
            const char *eq = memchr(p, '=', n);
            size_t k = eq ? (size_t)(eq - p) : n;
            t[2 * i] = str(p, k);
            t[2 * i + 1] = eq ? str(eq + 1, n - k - 1) : str("", 0);
            v[i] = (cm_val){.kind = CM_TUPLE, .agg = {&t[2 * i], 2}};
        } else {
            v[i] = str(p, n);
        }
        p += n + 1;
    }
    *r = (cm_val){.kind = CM_LIST, .agg = {v, count}};
    return KILN_OK;
}

static int get_environment(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                           kiln_err *err)
{
    kiln_wasi *w = ud;
    return string_list(ci, w->envs, w->envc, true, r, err);
}

static int get_arguments(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                         kiln_err *err)
{
    kiln_wasi *w = ud;
    return string_list(ci, w->args, w->argc, false, r, err);
}

static int none(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                kiln_err *err)
{
    *r = (cm_val){.kind = CM_OPTION, .var = {0, NULL}};
    return KILN_OK;
}

static int exit_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    cm_inst_set_exit(ci, a[0].var.index == 0 ? 0 : 1);
    return KILN_EEXIT;
}

static int stream_rep(cm_val *r, uint32_t rep)
{
    *r = (cm_val){.kind = CM_OWN, .u = rep};
    return KILN_OK;
}

static int get_stdin(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                     kiln_err *err)
{
    return stream_rep(r, 0);
}

static int get_stdout(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                      kiln_err *err)
{
    return stream_rep(r, 1);
}

static int get_stderr(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                      kiln_err *err)
{
    return stream_rep(r, 2);
}

/* ok(payload) of a result. */
static int ok(cm_inst *ci, cm_val *r, const cm_val *payload, kiln_err *err)
{
    cm_val *p = NULL;
    if (payload != NULL) {
        p = vals(ci, 1);
        if (p == NULL)
            return oom(err);
        *p = *payload;
    }
    *r = (cm_val){.kind = CM_RESULT, .var = {0, p}};
    return KILN_OK;
}

/* error(stream-error::closed) */
static int closed(cm_inst *ci, cm_val *r, kiln_err *err)
{
    cm_val *p = vals(ci, 1);
    if (p == NULL)
        return oom(err);
    *p = (cm_val){.kind = CM_VARIANT, .var = {1, NULL}};
    *r = (cm_val){.kind = CM_RESULT, .var = {1, p}};
    return KILN_OK;
}

static int check_write(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                       kiln_err *err)
{
    cm_val n = {.kind = CM_U64, .u = 65536};
    return ok(ci, r, &n, err);
}

static int write_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                    kiln_err *err)
{
    kiln_wasi *w = ud;
    uint32_t n = a[1].agg.n;
    uint8_t buf[4096];
    for (uint32_t i = 0; i < n;) {
        uint32_t k = 0;
        while (k < sizeof(buf) && i + k < n) {
            buf[k] = (uint8_t)a[1].agg.v[i + k].u;
            k++;
        }
        size_t done;
        if (wasi_stream_write(cm_inst_caller(ci), w, (uint32_t)a[0].u, buf, k, &done) !=
                WASI_ESUCCESS ||
            done < k)
            return closed(ci, r, err);
        i += k;
    }
    return ok(ci, r, NULL, err);
}

static int flush(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                 kiln_err *err)
{
    return ok(ci, r, NULL, err);
}

static int subscribe(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                     kiln_err *err)
{
    return stream_rep(r, 0); /* pollables: always ready */
}

static int read_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    kiln_wasi *w = ud;
    /* Up to 16 KiB per read: the buffer lives on the guest's host headroom. */
    uint64_t want = a[1].u > 16384 ? 16384 : a[1].u;
    uint8_t buf[16384];
    size_t done = 0;
    if (want > 0 && (wasi_stream_read(cm_inst_caller(ci), w, (uint32_t)a[0].u, buf, want,
                                      &done) != WASI_ESUCCESS ||
                     done == 0))
        return closed(ci, r, err);
    cm_val *v = vals(ci, (uint32_t)done);
    if (v == NULL)
        return oom(err);
    for (size_t i = 0; i < done; i++)
        v[i] = (cm_val){.kind = CM_U8, .u = buf[i]};
    cm_val list = {.kind = CM_LIST, .agg = {v, (uint32_t)done}};
    return ok(ci, r, &list, err);
}

static int poll_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    uint32_t n = a[0].agg.n;
    cm_val *v = vals(ci, n);
    if (v == NULL)
        return oom(err);
    for (uint32_t i = 0; i < n; i++)
        v[i] = (cm_val){.kind = CM_U32, .u = i};
    *r = (cm_val){.kind = CM_LIST, .agg = {v, n}};
    return KILN_OK;
}

static int ready(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                 kiln_err *err)
{
    *r = (cm_val){.kind = CM_BOOL, .b = true};
    return KILN_OK;
}

static int nothing(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    return KILN_OK;
}

static int debug_string(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                        kiln_err *err)
{
    *r = str("stream error", 12);
    return KILN_OK;
}

static uint64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int datetime(cm_inst *ci, cm_val *r, uint64_t ns, kiln_err *err)
{
    cm_val *f = vals(ci, 2);
    if (f == NULL)
        return oom(err);
    f[0] = (cm_val){.kind = CM_U64, .u = ns / 1000000000u};
    f[1] = (cm_val){.kind = CM_U32, .u = ns % 1000000000u};
    *r = (cm_val){.kind = CM_RECORD, .agg = {f, 2}};
    return KILN_OK;
}

static int wall_now(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                    kiln_err *err)
{
    return datetime(ci, r, now_ns(CLOCK_REALTIME), err);
}

static int wall_resolution(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                           kiln_err *err)
{
    return datetime(ci, r, 1, err);
}

static int mono_now(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                    kiln_err *err)
{
    *r = (cm_val){.kind = CM_U64, .u = now_ns(CLOCK_MONOTONIC)};
    return KILN_OK;
}

static int mono_resolution(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                           kiln_err *err)
{
    *r = (cm_val){.kind = CM_U64, .u = 1};
    return KILN_OK;
}

static int random_bytes(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                        kiln_err *err)
{
    uint64_t n = a[0].u;
    if (n > ((uint64_t)1 << 20))
        return kiln_err_set(err, KILN_ELIMIT, "get-random-bytes: %llu bytes is over 1 MiB",
                            (unsigned long long)n);
    cm_val *v = vals(ci, (uint32_t)n);
    if (v == NULL)
        return oom(err);
    uint8_t buf[256];
    for (uint64_t i = 0; i < n; i += sizeof(buf)) {
        size_t k = n - i < sizeof(buf) ? (size_t)(n - i) : sizeof(buf);
        if (getrandom(buf, k, 0) != (ssize_t)k)
            return kiln_err_set(err, KILN_EIO, "getrandom failed");
        for (size_t j = 0; j < k; j++)
            v[i + j] = (cm_val){.kind = CM_U8, .u = buf[j]};
    }
    *r = (cm_val){.kind = CM_LIST, .agg = {v, (uint32_t)n}};
    return KILN_OK;
}

static int random_u64(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                      kiln_err *err)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
        return kiln_err_set(err, KILN_EIO, "getrandom failed");
    *r = (cm_val){.kind = CM_U64, .u = x};
    return KILN_OK;
}

static int empty_list(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                      kiln_err *err)
{
    *r = (cm_val){.kind = CM_LIST, .agg = {NULL, 0}};
    return KILN_OK;
}

static int fs_unwired(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                      kiln_err *err)
{
    return kiln_err_set(err, KILN_EUNSUPPORTED, "wasi:filesystem is not wired to Kiln's "
                        "preopens yet (components see no preopened directories)");
}

static const cm_host_fn wasi_fns[] = {
    {"wasi:cli/environment", "get-environment", get_environment},
    {"wasi:cli/environment", "get-arguments", get_arguments},
    {"wasi:cli/environment", "initial-cwd", none},
    {"wasi:cli/exit", "exit", exit_fn},
    {"wasi:cli/stdin", "get-stdin", get_stdin},
    {"wasi:cli/stdout", "get-stdout", get_stdout},
    {"wasi:cli/stderr", "get-stderr", get_stderr},
    {"wasi:cli/terminal-stdin", "get-terminal-stdin", none},
    {"wasi:cli/terminal-stdout", "get-terminal-stdout", none},
    {"wasi:cli/terminal-stderr", "get-terminal-stderr", none},
    {"wasi:io/streams", "[method]output-stream.check-write", check_write},
    {"wasi:io/streams", "[method]output-stream.write", write_fn},
    {"wasi:io/streams", "[method]output-stream.blocking-write-and-flush", write_fn},
    {"wasi:io/streams", "[method]output-stream.flush", flush},
    {"wasi:io/streams", "[method]output-stream.blocking-flush", flush},
    {"wasi:io/streams", "[method]output-stream.subscribe", subscribe},
    {"wasi:io/streams", "[method]input-stream.read", read_fn},
    {"wasi:io/streams", "[method]input-stream.blocking-read", read_fn},
    {"wasi:io/streams", "[method]input-stream.subscribe", subscribe},
    {"wasi:io/error", "[method]error.to-debug-string", debug_string},
    {"wasi:io/poll", "poll", poll_fn},
    {"wasi:io/poll", "[method]pollable.ready", ready},
    {"wasi:io/poll", "[method]pollable.block", nothing},
    {"wasi:clocks/wall-clock", "now", wall_now},
    {"wasi:clocks/wall-clock", "resolution", wall_resolution},
    {"wasi:clocks/monotonic-clock", "now", mono_now},
    {"wasi:clocks/monotonic-clock", "resolution", mono_resolution},
    {"wasi:clocks/monotonic-clock", "subscribe-duration", subscribe},
    {"wasi:clocks/monotonic-clock", "subscribe-instant", subscribe},
    {"wasi:random/random", "get-random-bytes", random_bytes},
    {"wasi:random/random", "get-random-u64", random_u64},
    {"wasi:random/insecure", "get-insecure-random-bytes", random_bytes},
    {"wasi:random/insecure", "get-insecure-random-u64", random_u64},
    {"wasi:filesystem/preopens", "get-directories", empty_list},
    {"wasi:filesystem/types", "*", fs_unwired},
};

int cm_wasi_add(cm_host *h, kiln_wasi *w)
{
    return cm_host_add(h, wasi_fns, sizeof(wasi_fns) / sizeof(wasi_fns[0]), w);
}
