/*
 * snapshot.c - the "snapshot" section of bench/run.sh and the measurements
 * behind docs/internals/snapshot.md: where a fresh instance's time goes, and
 * what starting from a snapshot image saves. In-process, against libkiln.
 *
 * Usage: snapshot [-n iterations] [-w warmup] [-m mode] LABEL=module.wasm:INIT:CALL ...
 *   INIT  an export run once per instance after instantiation ("-" for none;
 *         `_initialize` is always run first when exported)
 *   CALL  an export () -> i32 or (i32) -> i32, the request
 * Modes (all by default; -m picks one, for perf record):
 *   fresh     kiln_instance_new + _initialize + INIT + CALL + free, per request
 *   snapshot  kiln_instance_new_from_snapshot + CALL + free, per request
 *   reuse     one instance, only CALL per request (no isolation: the ceiling)
 * Every instance gets its own WASI context (stdout/stderr buffered), as a
 * server request would. Prints one markdown table: p50/p99 per request, the
 * p50 of each phase, requests/s on one thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln/aot.h"
#include "kiln/kiln.h"
#include "kiln/runtime.h"
#include "kiln/wasi.h"

enum { M_FRESH, M_SNAP, M_REUSE, N_MODES };
static const char *const mode_names[N_MODES] = {"fresh", "snapshot", "reuse"};
enum { PH_WASI, PH_NEW, PH_INIT, PH_CALL, PH_FREE, N_PH };
static const char *const ph_names[N_PH] = {"wasi ctx", "new", "init", "call", "free"};

typedef struct bench_mod {
    const char *label, *path, *init_name, *call_name;
    kiln_module *m;
    kiln_linker *l;
    kiln_instance_pre *pre;
    int init, call, initialize;
    bool call_arg;
    kiln_snapshot *snap;
} bench_mod;

static unsigned opt_n = 2000, opt_warm = 200;
static int opt_mode = -1;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const kiln_err *err)
{
    fprintf(stderr, "snapshot: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static kiln_wasi *wasi_new(void)
{
    kiln_wasi_config wc;
    memset(&wc, 0, sizeof(wc));
    wc.stdio[0].kind = KILN_WASI_STDIO_NULL;
    wc.stdio[1].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[1].cap = 4096;
    wc.stdio[2].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[2].cap = 4096;
    kiln_wasi *w;
    kiln_err err;
    if (kiln_wasi_new(&wc, &w, &err) != KILN_OK)
        die("wasi", &err);
    return w;
}

static int32_t call(bench_mod *b, kiln_instance *inst, uint32_t n)
{
    kiln_err err;
    kiln_value a = {.i32 = n}, r = {0};
    if (kiln_instance_call_index(inst, b->call, &a, &r, &err) != KILN_OK)
        die(b->label, &err);
    return (int32_t)r.i32;
}

static void run_init(bench_mod *b, kiln_instance *inst)
{
    kiln_err err;
    if (b->initialize >= 0 && kiln_instance_call_index(inst, b->initialize, NULL, NULL, &err) != KILN_OK)
        die(b->label, &err);
    if (b->init >= 0 && kiln_instance_call_index(inst, b->init, NULL, NULL, &err) != KILN_OK)
        die(b->label, &err);
}

/* One request in `mode`; t[0..N_PH] bracket the phases. */
static int32_t request(bench_mod *b, int mode, kiln_instance *reused, uint32_t n, uint64_t *t)
{
    kiln_err err;
    static const kiln_limits lim = {.timeout_ms = 60000};
    if (mode == M_REUSE) {
        t[0] = t[1] = t[2] = t[3] = now_ns();
        int32_t r = call(b, reused, n);
        t[4] = t[5] = now_ns();
        return r;
    }
    t[0] = now_ns();
    kiln_wasi *w = wasi_new();
    void *state[KILN_STATE_SLOTS] = {0};
    state[KILN_STATE_WASI] = w;
    kiln_instance *inst;
    t[1] = now_ns();
    int rc = mode == M_SNAP ? kiln_instance_new_from_snapshot(b->snap, &lim, state, &inst, &err)
                            : kiln_instance_new(b->pre, &lim, state, &inst, &err);
    if (rc != KILN_OK)
        die(b->label, &err);
    t[2] = now_ns();
    if (mode == M_FRESH)
        run_init(b, inst);
    t[3] = now_ns();
    int32_t r = call(b, inst, n);
    t[4] = now_ns();
    kiln_instance_free(inst);
    kiln_wasi_free(w);
    t[5] = now_ns();
    return r;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, unsigned n, double p)
{
    unsigned i = (unsigned)(p / 100.0 * n);
    return v[i >= n ? n - 1 : i] / 1000.0;
}

static void measure(bench_mod *b, int mode, int32_t *answer)
{
    kiln_err err;
    kiln_instance *reused = NULL;
    kiln_wasi *rw = NULL;
    if (mode == M_REUSE) {
        rw = wasi_new();
        void *state[KILN_STATE_SLOTS] = {0};
        state[KILN_STATE_WASI] = rw;
        if (kiln_instance_new(b->pre, NULL, state, &reused, &err) != KILN_OK)
            die(b->label, &err);
        run_init(b, reused);
    }
    uint64_t t[N_PH + 1];
    for (unsigned i = 0; i < opt_warm; i++)
        request(b, mode, reused, i, t);
    uint64_t *tot = malloc(sizeof(uint64_t) * opt_n * (N_PH + 1));
    if (tot == NULL)
        die("buffers", NULL);
    uint64_t *ph = tot + opt_n;
    uint64_t start = now_ns();
    for (unsigned i = 0; i < opt_n; i++) {
        int32_t r = request(b, mode, reused, i, t);
        if (i == 7)
            answer[mode] = r;
        tot[i] = t[N_PH] - t[0];
        for (int k = 0; k < N_PH; k++)
            ph[k * opt_n + i] = t[k + 1] - t[k];
    }
    double secs = (now_ns() - start) / 1e9;
    qsort(tot, opt_n, sizeof(*tot), cmp_u64);
    printf("| %s | %s | %.1f | %.1f |", b->label, mode_names[mode], pct(tot, opt_n, 50),
           pct(tot, opt_n, 99));
    for (int k = 0; k < N_PH; k++) {
        qsort(ph + k * opt_n, opt_n, sizeof(*ph), cmp_u64);
        printf(" %.1f |", pct(ph + k * opt_n, opt_n, 50));
    }
    printf(" %.0f |\n", opt_n / secs);
    fflush(stdout);
    free(tot);
    if (reused) {
        kiln_instance_free(reused);
        kiln_wasi_free(rw);
    }
}

static void setup(bench_mod *b, char *spec)
{
    kiln_err err;
    char *eq = strchr(spec, '=');
    if (eq == NULL)
        die("usage: LABEL=module.wasm:INIT:CALL", NULL);
    *eq = '\0';
    b->label = spec;
    b->path = eq + 1;
    char *c1 = strchr(eq + 1, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
        die("usage: LABEL=module.wasm:INIT:CALL", NULL);
    *c1 = *c2 = '\0';
    b->init_name = c1 + 1;
    b->call_name = c2 + 1;
    kiln_aot_options o;
    memset(&o, 0, sizeof(o));
    if (kiln_aot_load_file(b->path, &o, &b->m, &err) != KILN_OK)
        die(b->path, &err);
    size_t nf;
    const kiln_hostfn *fns = kiln_wasi_hostfns(&nf);
    if (kiln_linker_new(&b->l) != KILN_OK || kiln_linker_define_host(b->l, fns, nf) != KILN_OK)
        die("linker", NULL);
    if (kiln_instance_pre_new(b->m, b->l, &b->pre, &err) != KILN_OK)
        die(b->label, &err);
    b->initialize = kiln_module_find_export(b->m, "_initialize", KILN_EXTERN_FUNC);
    b->init = strcmp(b->init_name, "-") == 0 ? -1
              : kiln_module_find_export(b->m, b->init_name, KILN_EXTERN_FUNC);
    b->call = kiln_module_find_export(b->m, b->call_name, KILN_EXTERN_FUNC);
    if (b->call < 0)
        die(b->call_name, NULL);
    /* The snapshot: the same initialisation, once, under a 10 s limit. */
    kiln_wasi *w = wasi_new();
    void *state[KILN_STATE_SLOTS] = {0};
    state[KILN_STATE_WASI] = w;
    kiln_limits lim = {.timeout_ms = 10000};
    const char *inits[2];
    size_t ni = 0;
    if (b->initialize >= 0)
        inits[ni++] = "_initialize";
    if (b->init >= 0)
        inits[ni++] = b->init_name;
    size_t na;
    const char *const *allow = kiln_wasi_snapshot_allow(&na);
    if (kiln_snapshot_build(b->pre, &lim, state, inits, ni, allow, na, &b->snap, &err) != KILN_OK)
        die(b->label, &err);
    kiln_wasi_free(w);
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-n") == 0)
            opt_n = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-w") == 0)
            opt_warm = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-m") == 0) {
            for (int k = 0; k < N_MODES; k++)
                if (strcmp(argv[i + 1], mode_names[k]) == 0)
                    opt_mode = k;
        }
    }
    printf("| guest | mode | p50 µs | p99 µs |");
    for (int k = 0; k < N_PH; k++)
        printf(" %s p50 |", ph_names[k]);
    printf(" req/s (1 thread) |\n|---|---|---:|---:|");
    for (int k = 0; k < N_PH; k++)
        printf("---:|");
    printf("---:|\n");
    int bad = 0;
    for (; i < argc; i++) {
        bench_mod b;
        memset(&b, 0, sizeof(b));
        setup(&b, argv[i]);
        int32_t answer[N_MODES] = {0};
        for (int mode = 0; mode < N_MODES; mode++)
            if (opt_mode < 0 || opt_mode == mode)
                measure(&b, mode, answer);
        if (opt_mode < 0 && (answer[M_FRESH] != answer[M_SNAP] || answer[M_FRESH] != answer[M_REUSE])) {
            fprintf(stderr, "snapshot: %s: answers differ: fresh %d snapshot %d reuse %d\n",
                    b.label, answer[M_FRESH], answer[M_SNAP], answer[M_REUSE]);
            bad = 1;
        }
        kiln_snapshot_free(b.snap);
    }
    return bad;
}
