/*
 * cm_wasi.c - WASI 0.2 for components on top of Kiln's preview-1 context
 * (kiln_wasi: the same args, env, stdio, preopens and descriptor table as
 * src/abi/wasi): wasi:cli (environment, exit, stdio, terminal stubs),
 * wasi:clocks (wall, monotonic now/resolution), wasi:random, the shared
 * value helpers, and cm_wasi_add, which registers this file's table with
 * cm_wasi_io.c's (streams, poll, error) and cm_wasi_fs.c's (filesystem).
 * Resources and the table behind them: cm_wasi_int.h.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "component/cm_wasi.h"
#include "component/cm_wasi_int.h"

/* ---- helpers shared by cm_wasi*.c ------------------------------------------------ */

cm_val *cw_vals(cm_inst *ci, uint32_t n)
{
    return cm_arena_alloc(cm_inst_arena(ci), (n ? n : 1) * sizeof(cm_val));
}

int cw_oom(kiln_err *err)
{
    return kiln_err_set(err, KILN_ENOMEM, "wasi 0.2: out of memory");
}

static int result(cm_inst *ci, cm_val *r, uint32_t index, const cm_val *payload, kiln_err *err)
{
    cm_val *p = NULL;
    if (payload != NULL) {
        p = cw_vals(ci, 1);
        if (p == NULL)
            return cw_oom(err);
        *p = *payload;
    }
    *r = (cm_val){.kind = CM_RESULT, .var = {index, p}};
    return KILN_OK;
}

int cw_ok(cm_inst *ci, cm_val *r, const cm_val *payload, kiln_err *err)
{
    return result(ci, r, 0, payload, err);
}

int cw_err(cm_inst *ci, cm_val *r, const cm_val *payload, kiln_err *err)
{
    return result(ci, r, 1, payload, err);
}

int cw_bytes(cm_inst *ci, const uint8_t *p, size_t n, cm_val *out, kiln_err *err)
{
    /* Raw bytes: lowered with one realloc and one copy. */
    *out = (cm_val){.kind = CM_LIST, .bytes = true, .str = {(const char *)p, (uint32_t)n}};
    return KILN_OK;
}

int cw_unbytes(const cm_val *list, uint8_t *buf, size_t cap, size_t *n, kiln_err *err)
{
    uint32_t len = cm_list_len(list);
    if (len > cap)
        return kiln_err_set(err, KILN_ELIMIT, "wasi 0.2: %u bytes in one call is over %zu",
                            (unsigned)len, cap);
    if (list->bytes && len != 0)
        memcpy(buf, list->str.p, len);
    else
        for (uint32_t i = 0; i < len; i++)
            buf[i] = cm_list_byte(list, i);
    *n = len;
    return KILN_OK;
}

int cw_datetime(cm_inst *ci, uint64_t ns, cm_val *r, kiln_err *err)
{
    cm_val *f = cw_vals(ci, 2);
    if (f == NULL)
        return cw_oom(err);
    f[0] = (cm_val){.kind = CM_U64, .u = ns / 1000000000u};
    f[1] = (cm_val){.kind = CM_U32, .u = ns % 1000000000u};
    *r = (cm_val){.kind = CM_RECORD, .agg = {f, 2}};
    return KILN_OK;
}

static cm_val str(const char *p, size_t n)
{
    return (cm_val){.kind = CM_STRING, .str = {p, (uint32_t)n}};
}

/* ---- wasi:cli ---------------------------------------------------------------------- */

/* A list of NUL-separated strings: "K=V" split into tuples when pairs. */
static int string_list(cm_inst *ci, const char *buf, uint32_t count, bool pairs, cm_val *r,
                       kiln_err *err)
{
    cm_val *v = cw_vals(ci, count);
    cm_val *t = pairs ? cw_vals(ci, 2 * count) : NULL;
    if (v == NULL || (pairs && t == NULL))
        return cw_oom(err);
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

/* exit(result): ok → 0, err → 1 (WASI 0.2.x carries no code). */
static int exit_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    cm_inst_set_exit(ci, a[0].var.index == 0 ? 0 : 1);
    return KILN_EEXIT;
}

/* exit-with-code(u8), unstable in 0.2.x (feature cli-exit-with-code): the
 * status as given. */
static int exit_code(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                     kiln_err *err)
{
    cm_inst_set_exit(ci, (int)(a[0].u & 0xff));
    return KILN_EEXIT;
}

/* A stream over preview-1 fd 0, 1 or 2: the same stdio configuration. */
static int stdio_stream(cm_inst *ci, kiln_wasi *w, cw_kind kind, uint32_t fd, cm_val *r,
                        kiln_err *err)
{
    cw_obj o = {.kind = (uint8_t)kind, .mode = CW_STDIO, .fd = fd};
    uint32_t rep;
    int rc = cw_new(w, &o, &rep, err);
    if (rc == KILN_OK)
        *r = (cm_val){.kind = CM_OWN, .u = rep};
    return rc;
}

static int get_stdin(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                     kiln_err *err)
{
    return stdio_stream(ci, ud, CW_IN, 0, r, err);
}

static int get_stdout(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                      kiln_err *err)
{
    return stdio_stream(ci, ud, CW_OUT, 1, r, err);
}

static int get_stderr(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                      kiln_err *err)
{
    return stdio_stream(ci, ud, CW_OUT, 2, r, err);
}

/* ---- wasi:clocks -------------------------------------------------------------------- */

static uint64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int wall_now(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                    kiln_err *err)
{
    return cw_datetime(ci, now_ns(CLOCK_REALTIME), r, err);
}

static int wall_resolution(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                           kiln_err *err)
{
    return cw_datetime(ci, 1, r, err);
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

/* ---- wasi:random ----------------------------------------------------------------------- */

static int random_bytes(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                        kiln_err *err)
{
    uint64_t n = a[0].u;
    if (n > ((uint64_t)1 << 20))
        return kiln_err_set(err, KILN_ELIMIT, "get-random-bytes: %llu bytes is over 1 MiB",
                            (unsigned long long)n);
    uint8_t *buf = cm_arena_alloc(cm_inst_arena(ci), n ? (size_t)n : 1);
    if (buf == NULL)
        return cw_oom(err);
    for (uint64_t i = 0; i < n;) {
        ssize_t k = getrandom(buf + i, (size_t)(n - i), 0);
        if (k <= 0)
            return kiln_err_set(err, KILN_EIO, "getrandom failed");
        i += (uint64_t)k;
    }
    return cw_bytes(ci, buf, (size_t)n, r, err);
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

/* insecure-seed: func() -> tuple<u64, u64> */
static int insecure_seed(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                         kiln_err *err)
{
    uint64_t x[2] = {0, 0};
    cm_val *t = cw_vals(ci, 2);
    if (t == NULL)
        return cw_oom(err);
    if (getrandom(x, sizeof(x), 0) != (ssize_t)sizeof(x))
        return kiln_err_set(err, KILN_EIO, "getrandom failed");
    t[0] = (cm_val){.kind = CM_U64, .u = x[0]};
    t[1] = (cm_val){.kind = CM_U64, .u = x[1]};
    *r = (cm_val){.kind = CM_TUPLE, .agg = {t, 2}};
    return KILN_OK;
}

static const cm_host_fn cli_fns[] = {
    {"wasi:cli/environment", "get-environment", get_environment},
    {"wasi:cli/environment", "get-arguments", get_arguments},
    {"wasi:cli/environment", "initial-cwd", none},
    {"wasi:cli/exit", "exit", exit_fn},
    {"wasi:cli/exit", "exit-with-code", exit_code},
    {"wasi:cli/stdin", "get-stdin", get_stdin},
    {"wasi:cli/stdout", "get-stdout", get_stdout},
    {"wasi:cli/stderr", "get-stderr", get_stderr},
    {"wasi:cli/terminal-stdin", "get-terminal-stdin", none},
    {"wasi:cli/terminal-stdout", "get-terminal-stdout", none},
    {"wasi:cli/terminal-stderr", "get-terminal-stderr", none},
    {"wasi:clocks/wall-clock", "now", wall_now},
    {"wasi:clocks/wall-clock", "resolution", wall_resolution},
    {"wasi:clocks/monotonic-clock", "now", mono_now},
    {"wasi:clocks/monotonic-clock", "resolution", mono_resolution},
    {"wasi:random/random", "get-random-bytes", random_bytes},
    {"wasi:random/random", "get-random-u64", random_u64},
    {"wasi:random/insecure", "get-insecure-random-bytes", random_bytes},
    {"wasi:random/insecure", "get-insecure-random-u64", random_u64},
    {"wasi:random/insecure-seed", "insecure-seed", insecure_seed},
};

int cm_wasi_add(cm_host *h, kiln_wasi *w)
{
    int rc = cm_host_add(h, cli_fns, sizeof(cli_fns) / sizeof(cli_fns[0]), w);
    if (rc == KILN_OK)
        rc = cm_host_add(h, cw_io_fns, cw_io_n, w);
    if (rc == KILN_OK)
        rc = cm_host_add(h, cw_fs_fns, cw_fs_n, w);
    return rc;
}
