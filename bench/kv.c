/*
 * kv.c - the key-value benchmark (bench/kv.sh): operations per second of a
 * guest calling kiln.kv_set and kiln.kv_get in a loop (bench/guests/kv.c),
 * against the memory backend and the SQLite backend, on 1 and 2 threads.
 *
 * Usage: kv [-t seconds] [-r reps] DIR guest.wasm
 * DIR receives the SQLite databases (deleted first). The guest is compiled
 * (or found in the cache; KILN_HOME selects it) and linked against the
 * "kiln" host module. Each thread has its own instance and its own 1000
 * keys in the function's private namespace; a thread calls the guest's loop
 * (100 operations per call) until the time is up. Gets run after the sets,
 * on keys that exist. Rows:
 *   memory                 the in-memory backend
 *   sqlite                 WAL, synchronous=FULL: every commit is fsynced
 *                          (what kiln serve uses: acknowledged = durable)
 *   sqlite, sync=normal    WAL, fsync at checkpoints only: the price of
 *                          durability is the difference
 * Each cell is the median of `reps` runs (default 3). Prints a markdown table.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abi/kiln/kiln_host.h"
#include "kiln/aot.h"
#include "kiln/kv.h"
#include "kiln/runtime.h"

#define BATCH 100

static double opt_seconds = 1.0;
static unsigned opt_reps = 3;
static kiln_instance_pre *pre;
static int ix_set, ix_get, ix_init;

static void die(const char *what, const kiln_err *err)
{
    fprintf(stderr, "bench/kv: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct worker {
    pthread_t tid;
    kiln_kv_grants *grants;
    int export_ix;
    int base;
    uint64_t ops, start, end;
} worker;

static atomic_bool stop;
static pthread_barrier_t ready;

static void *worker_main(void *p)
{
    worker *w = p;
    void *state[KILN_STATE_SLOTS] = {0};
    state[KILN_STATE_KV] = w->grants;
    kiln_instance *inst;
    kiln_err err;
    if (kiln_instance_new(pre, NULL, state, &inst, &err) != KILN_OK)
        die("instantiate", &err);
    if (ix_init >= 0 && kiln_instance_call_index(inst, ix_init, NULL, NULL, &err) != KILN_OK)
        die("_initialize", &err);
    kiln_value args[2] = {{.i32 = BATCH}, {.i32 = (uint32_t)w->base}}, res[1];
    pthread_barrier_wait(&ready);
    w->start = now_ns();
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (kiln_instance_call_index(inst, w->export_ix, args, res, &err) != KILN_OK)
            die("call", &err);
        if ((int32_t)res[0].i32 < 0) {
            fprintf(stderr, "bench/kv: the guest's KV call failed with %d\n", (int32_t)res[0].i32);
            exit(1);
        }
        w->ops += BATCH;
    }
    w->end = now_ns();
    kiln_instance_free(inst);
    kiln_rt_thread_cleanup();
    return NULL;
}

static double run(kiln_kv_grants *g, int export_ix, int nthreads)
{
    worker w[2];
    memset(w, 0, sizeof(w));
    atomic_store(&stop, false);
    pthread_barrier_init(&ready, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        w[i].grants = g;
        w[i].export_ix = export_ix;
        w[i].base = i * 1000;
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
            die("pthread_create", NULL);
    }
    pthread_barrier_wait(&ready);
    struct timespec ts = {(time_t)opt_seconds,
                          (long)((opt_seconds - (double)(time_t)opt_seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, true);
    uint64_t ops = 0, start = UINT64_MAX, end = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(w[i].tid, NULL);
        ops += w[i].ops;
        start = w[i].start < start ? w[i].start : start;
        end = w[i].end > end ? w[i].end : end;
    }
    pthread_barrier_destroy(&ready);
    return end > start ? (double)ops / ((double)(end - start) / 1e9) : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median over reps of alternating 1- and 2-thread runs. */
static void measure(kiln_kv_grants *g, int export_ix, double out[3])
{
    double runs[3][16];
    unsigned reps = opt_reps < 16 ? opt_reps : 16;
    for (unsigned r = 0; r < reps; r++)
        for (int t = 1; t <= 2; t++)
            runs[t][r] = run(g, export_ix, t);
    for (int t = 1; t <= 2; t++) {
        qsort(runs[t], reps, sizeof(double), cmp_double);
        out[t] = runs[t][reps / 2];
    }
}

static void fmt_ops(double v, char *buf, size_t cap)
{
    if (v >= 1e6)
        snprintf(buf, cap, "%.2f M", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, cap, "%.1f k", v / 1e3);
    else
        snprintf(buf, cap, "%.0f", v);
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "t:r:")) != -1) {
        if (opt == 't')
            opt_seconds = atof(optarg);
        else if (opt == 'r')
            opt_reps = (unsigned)atoi(optarg);
        else
            return 2;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: kv [-t seconds] [-r reps] DIR guest.wasm\n");
        return 2;
    }
    const char *dir = argv[optind], *wasm = argv[optind + 1];
    kiln_err err;
    kiln_linker *l;
    size_t nfns;
    const kiln_hostfn *fns = kiln_kv_hostfns(&nfns);
    if (kiln_linker_new(&l) != KILN_OK || kiln_linker_define_host(l, fns, nfns) != KILN_OK)
        die("linker", NULL);
    kiln_aot_options ao = {.opt_level = 2, .imports = l};
    kiln_module *m;
    if (kiln_aot_load_file(wasm, &ao, &m, &err) != KILN_OK)
        die(wasm, &err);
    if (kiln_instance_pre_new(m, l, &pre, &err) != KILN_OK)
        die("link", &err);
    ix_set = kiln_module_find_export(m, "set_loop", KILN_EXTERN_FUNC);
    ix_get = kiln_module_find_export(m, "get_loop", KILN_EXTERN_FUNC);
    ix_init = kiln_module_find_export(m, "_initialize", KILN_EXTERN_FUNC);
    if (ix_set < 0 || ix_get < 0)
        die("the guest lacks set_loop/get_loop", NULL);

    static const struct {
        const char *label;
        int kind; /* 0 memory, 1 sqlite full, 2 sqlite normal */
    } rows[] = {{"memory", 0}, {"sqlite", 1}, {"sqlite, sync=normal", 2}};
    printf("| backend | operation | 1 thread (ops/s) | 2 threads (ops/s) |\n");
    printf("|---|---|---:|---:|\n");
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        kiln_kv_store *s;
        if (rows[r].kind == 0) {
            if (kiln_kv_mem_open(&s, &err) != KILN_OK)
                die("memory store", &err);
        } else {
            char path[4096];
            snprintf(path, sizeof(path), "%s/kv-%d.db", dir, rows[r].kind);
            for (const char *suffix = ""; suffix != NULL;
                 suffix = *suffix == '\0' ? "-wal" : strcmp(suffix, "-wal") == 0 ? "-shm" : NULL) {
                char p[4200];
                snprintf(p, sizeof(p), "%s%s", path, suffix);
                unlink(p);
            }
            kiln_kv_sqlite_options so = {.synchronous_normal = rows[r].kind == 2};
            if (kiln_kv_sqlite_open(path, &so, &s, &err) != KILN_OK)
                die("sqlite store", &err);
        }
        kiln_kv_grants *g;
        if (kiln_kv_grants_new_with(s, s, "bench", NULL, &g, &err) != KILN_OK)
            die("grants", &err);
        double set_ops[3], get_ops[3];
        measure(g, ix_set, set_ops);
        measure(g, ix_get, get_ops);
        char a[32], b[32];
        fmt_ops(set_ops[1], a, sizeof(a));
        fmt_ops(set_ops[2], b, sizeof(b));
        printf("| %s | kv_set | %s | %s |\n", rows[r].label, a, b);
        fmt_ops(get_ops[1], a, sizeof(a));
        fmt_ops(get_ops[2], b, sizeof(b));
        printf("| %s | kv_get | %s | %s |\n", rows[r].label, a, b);
        fflush(stdout);
        kiln_kv_grants_free(g);
        kiln_kv_close(s);
    }
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
    kiln_linker_free(l);
    kiln_rt_thread_cleanup();
    return 0;
}
