/*
 * instantiate.c - the "instantiate" section of bench/run.sh: the cost of a
 * fresh instance per request (instantiate + call a trivial export + free),
 * measured in-process against libkiln, and how it scales across threads.
 *
 * Usage: instantiate [-n iterations] [-w warmup] [-t seconds] [-r reps] [-m mode]
 *                    LABEL=module.wasm ...
 * (-m pooled|deadline|fresh runs one mode and skips the peers: for perf record)
 * Each module is compiled (or found in the cache; KILN_HOME selects it) at
 * -O2 with the default compiler, loaded once and linked against an empty
 * linker: the guests import nothing. Prints markdown tables to stdout.
 *
 * Modes, run in this order for every module:
 *   pooled         the runtime's default per-thread memory pool
 *   pooled+dl      pooled, with a 1 s deadline per call (what a server sets)
 *   fresh          kiln_rt_set_pool_size(0): one 8 GiB mmap/munmap per memory
 * Latency: clock_gettime around each phase of each of `iterations` loops
 * after `warmup` loops; p50/p99 of the whole loop, p50 of each phase.
 * Throughput: 1 and 2 threads, each its own loop for `seconds`; ops/s. The
 * 1- and 2-thread runs alternate `reps` times (-r, default 3) and each
 * reports its median, so a burst of outside load hits both alike.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <wasm-rt.h>

#include "kiln/aot.h"
#include "kiln/kiln.h"
#include "kiln/runtime.h"

#define MAX_MODULES 8
#define MAX_THREADS 2

enum { MODE_POOLED, MODE_DEADLINE, MODE_FRESH, N_MODES };
static const char *const mode_names[N_MODES] = {"pooled", "pooled + 1 s deadline",
                                                "fresh mmap (pool off)"};

typedef struct lat_result {
    double p50, p99, new_p50, call_p50, free_p50; /* microseconds */
    uint64_t hits, misses;                         /* pool stats over the timed loops */
} lat_result;

typedef struct bench_module {
    const char *label;
    const char *path;
    long wasm_bytes;
    uint32_t mem_bytes; /* memory 0 size after instantiate */
    kiln_module *m;
    kiln_linker *l;
    kiln_instance_pre *pre;
    int noop, init; /* export indexes; init = _initialize or -1 */
    lat_result lat[N_MODES];
    double ops[N_MODES][MAX_THREADS + 1]; /* ops/s by thread count */
    double copy_ops[MAX_THREADS + 1];     /* the "copy" peer */
    lat_result copy_lat;                  /* the "copy" peer, p50/p99 only */
} bench_module;

static unsigned opt_iterations = 20000, opt_warmup = 2000;
static double opt_seconds = 1.0;
static int opt_mode = -1; /* -1: all modes and the peers */
static unsigned opt_reps = 3;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const kiln_err *err)
{
    fprintf(stderr, "instantiate: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static const kiln_limits *mode_limits(int mode)
{
    static const kiln_limits none = {0};
    static const kiln_limits deadline = {.timeout_ms = 1000};
    return mode == MODE_DEADLINE ? &deadline : &none;
}

/* One request: instantiate, optional _initialize, call noop, free. The
 * timestamps t[0..3] bracket the three phases when t is not NULL. */
static void one_iteration(bench_module *bm, const kiln_limits *lim, uint64_t *t)
{
    kiln_err err;
    kiln_instance *inst;
    kiln_value res[1];
    if (t)
        t[0] = now_ns();
    if (kiln_instance_new(bm->pre, lim, NULL, &inst, &err) != KILN_OK)
        die(bm->label, &err);
    if (t)
        t[1] = now_ns();
    if (bm->init >= 0 && kiln_instance_call_index(inst, bm->init, NULL, NULL, &err) != KILN_OK)
        die(bm->label, &err);
    if (kiln_instance_call_index(inst, bm->noop, NULL, res, &err) != KILN_OK)
        die(bm->label, &err);
    if (t)
        t[2] = now_ns();
    kiln_instance_free(inst);
    if (t)
        t[3] = now_ns();
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double pct_us(const uint64_t *sorted, unsigned n, double p)
{
    unsigned i = (unsigned)(p / 100.0 * n);
    if (i >= n)
        i = n - 1;
    return sorted[i] / 1000.0;
}

static void measure_latency(bench_module *bm, int mode)
{
    const kiln_limits *lim = mode_limits(mode);
    unsigned n = opt_iterations;
    uint64_t *total = malloc(4 * (size_t)n * sizeof(uint64_t));
    if (total == NULL)
        die("latency buffers", NULL);
    uint64_t *ph_new = total + n, *ph_call = total + 2 * n, *ph_free = total + 3 * n;
    for (unsigned i = 0; i < opt_warmup; i++)
        one_iteration(bm, lim, NULL);
    kiln_rt_stats s0, s1;
    kiln_rt_stats_get(&s0);
    for (unsigned i = 0; i < n; i++) {
        uint64_t t[4];
        one_iteration(bm, lim, t);
        total[i] = t[3] - t[0];
        ph_new[i] = t[1] - t[0];
        ph_call[i] = t[2] - t[1];
        ph_free[i] = t[3] - t[2];
    }
    kiln_rt_stats_get(&s1);
    lat_result *r = &bm->lat[mode];
    r->hits = s1.pool_hits - s0.pool_hits;
    r->misses = s1.pool_misses - s0.pool_misses;
    qsort(total, n, sizeof(uint64_t), cmp_u64);
    qsort(ph_new, n, sizeof(uint64_t), cmp_u64);
    qsort(ph_call, n, sizeof(uint64_t), cmp_u64);
    qsort(ph_free, n, sizeof(uint64_t), cmp_u64);
    r->p50 = pct_us(total, n, 50);
    r->p99 = pct_us(total, n, 99);
    r->new_p50 = pct_us(ph_new, n, 50);
    r->call_p50 = pct_us(ph_call, n, 50);
    r->free_p50 = pct_us(ph_free, n, 50);
    free(total);
}

/* ---- throughput ---------------------------------------------------------- */

/*
 * Peers for the scaling column, measured in the same run: "copy" does what a
 * pooled instantiate must do at minimum without Kiln (memcpy the module's
 * data bytes into a thread-private buffer of the memory's size, then memset
 * it on release), "spin" is pure ALU work of about the same duration. If
 * they do not scale to 2x either, the machine is the limit (shared memory
 * bandwidth, vCPUs that are hyperthreads or overcommitted).
 */
enum { PEER_NONE, PEER_COPY, PEER_SPIN };

typedef struct worker {
    pthread_t tid;
    bench_module *bm;
    int mode, peer;
    pthread_barrier_t *ready;
    atomic_bool *stop;
    uint8_t *buf, *src;
    uint64_t ops, start_ns, end_ns, sink;
} worker;

static void worker_op(worker *w, const kiln_limits *lim)
{
    if (w->peer == PEER_NONE) {
        one_iteration(w->bm, lim, NULL);
    } else if (w->peer == PEER_COPY) {
        memcpy(w->buf, w->src, (size_t)w->bm->wasm_bytes);
        __asm__ volatile("" : : "r"(w->buf) : "memory");
        memset(w->buf, 0, w->bm->mem_bytes);
        __asm__ volatile("" : : "r"(w->buf) : "memory");
    } else {
        uint64_t x = w->sink | 1;
        for (int i = 0; i < 2000; i++)
            x = x * 6364136223846793005u + 1442695040888963407u;
        w->sink = x;
    }
}

static void *worker_main(void *p)
{
    worker *w = p;
    const kiln_limits *lim = mode_limits(w->mode);
    if (w->peer == PEER_COPY) {
        w->buf = calloc(1, w->bm->mem_bytes);
        w->src = malloc((size_t)w->bm->wasm_bytes);
        if (w->buf == NULL || w->src == NULL || (size_t)w->bm->wasm_bytes > w->bm->mem_bytes)
            die("peer buffers", NULL);
        memset(w->src, 0x5a, (size_t)w->bm->wasm_bytes);
    }
    /* Warm this thread's runtime context and pool before the clock starts. */
    for (unsigned i = 0; i < 200; i++)
        worker_op(w, lim);
    pthread_barrier_wait(w->ready);
    w->start_ns = now_ns();
    uint64_t ops = 0;
    while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
        worker_op(w, lim);
        ops++;
    }
    w->end_ns = now_ns();
    w->ops = ops;
    free(w->buf);
    free(w->src);
    if (w->peer == PEER_NONE)
        kiln_rt_thread_cleanup();
    return NULL;
}

static double measure_throughput(bench_module *bm, int mode, int peer, int nthreads)
{
    worker w[MAX_THREADS];
    pthread_barrier_t ready;
    atomic_bool stop = false;
    pthread_barrier_init(&ready, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        w[i] = (worker){.bm = bm, .mode = mode, .peer = peer, .ready = &ready, .stop = &stop};
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
        start = w[i].start_ns < start ? w[i].start_ns : start;
        end = w[i].end_ns > end ? w[i].end_ns : end;
    }
    pthread_barrier_destroy(&ready);
    return end > start ? ops / ((end - start) / 1e9) : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ops[1] and ops[2]: medians of opt_reps alternating 1- and 2-thread runs. */
static void measure_scaling(bench_module *bm, int mode, int peer, double ops[MAX_THREADS + 1])
{
    double runs[MAX_THREADS + 1][16];
    unsigned reps = opt_reps < 16 ? opt_reps : 16;
    for (unsigned r = 0; r < reps; r++)
        for (int t = 1; t <= MAX_THREADS; t++)
            runs[t][r] = measure_throughput(bm, mode, peer, t);
    for (int t = 1; t <= MAX_THREADS; t++) {
        qsort(runs[t], reps, sizeof(double), cmp_double);
        ops[t] = runs[t][reps / 2];
    }
}

/* Latency of the "copy" peer on this thread, timed like measure_latency. */
static void measure_copy_latency(bench_module *bm)
{
    worker w = {.bm = bm, .peer = PEER_COPY};
    unsigned n = opt_iterations;
    uint64_t *lat = malloc((size_t)n * sizeof(uint64_t));
    w.buf = calloc(1, bm->mem_bytes);
    w.src = malloc((size_t)bm->wasm_bytes);
    if (lat == NULL || w.buf == NULL || w.src == NULL || (size_t)bm->wasm_bytes > bm->mem_bytes)
        die("peer buffers", NULL);
    memset(w.src, 0x5a, (size_t)bm->wasm_bytes);
    for (unsigned i = 0; i < opt_warmup; i++)
        worker_op(&w, NULL);
    for (unsigned i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        worker_op(&w, NULL);
        lat[i] = now_ns() - t0;
    }
    qsort(lat, n, sizeof(uint64_t), cmp_u64);
    bm->copy_lat.p50 = pct_us(lat, n, 50);
    bm->copy_lat.p99 = pct_us(lat, n, 99);
    free(lat);
    free(w.buf);
    free(w.src);
}

/* ---- setup and report ---------------------------------------------------- */

static void load(bench_module *bm)
{
    kiln_err err;
    kiln_aot_options opts = {.cc = NULL, .opt_level = 2};
    struct stat st;
    if (stat(bm->path, &st) != 0)
        die(bm->path, NULL);
    bm->wasm_bytes = (long)st.st_size;
    if (kiln_aot_load_file(bm->path, &opts, &bm->m, &err) != KILN_OK)
        die(bm->path, &err);
    if (kiln_linker_new(&bm->l) != KILN_OK)
        die("kiln_linker_new", NULL);
    if (kiln_instance_pre_new(bm->m, bm->l, &bm->pre, &err) != KILN_OK)
        die(bm->label, &err);
    bm->noop = kiln_module_find_export(bm->m, "noop", KILN_EXTERN_FUNC);
    bm->init = kiln_module_find_export(bm->m, "_initialize", KILN_EXTERN_FUNC);
    if (bm->noop < 0) {
        fprintf(stderr, "instantiate: %s: no export 'noop'\n", bm->path);
        exit(1);
    }
    kiln_instance *inst;
    if (kiln_instance_new(bm->pre, NULL, NULL, &inst, &err) != KILN_OK)
        die(bm->label, &err);
    wasm_rt_memory_t *mem = kiln_instance_export_object(inst, "memory", KILN_EXTERN_MEMORY);
    bm->mem_bytes = mem ? mem->size : 0;
    kiln_instance_free(inst);
}

static void usage(void)
{
    fprintf(stderr, "usage: instantiate [-n iterations] [-w warmup] [-t seconds] "
                    "[-r reps] [-m pooled|deadline|fresh] LABEL=module.wasm ...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bench_module mods[MAX_MODULES];
    int n = 0, opt;
    while ((opt = getopt(argc, argv, "n:w:t:r:m:")) != -1) {
        if (opt == 'n')
            opt_iterations = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 'w')
            opt_warmup = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 't')
            opt_seconds = strtod(optarg, NULL);
        else if (opt == 'r')
            opt_reps = (unsigned)strtoul(optarg, NULL, 10);
        else if (opt == 'm')
            opt_mode = strcmp(optarg, "pooled") == 0     ? MODE_POOLED
                       : strcmp(optarg, "deadline") == 0 ? MODE_DEADLINE
                       : strcmp(optarg, "fresh") == 0    ? MODE_FRESH
                                                         : -2;
        else
            usage();
    }
    if (optind >= argc || opt_iterations == 0 || opt_seconds <= 0 || opt_mode == -2 ||
        opt_reps == 0)
        usage();
    for (int i = optind; i < argc && n < MAX_MODULES; i++, n++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            usage();
        *eq = '\0';
        memset(&mods[n], 0, sizeof(mods[n]));
        mods[n].label = argv[i];
        mods[n].path = eq + 1;
        load(&mods[n]);
    }

    double spin_ops[MAX_THREADS + 1] = {0};
    if (opt_mode == -1) {
        fprintf(stderr, "instantiate: peer: spin ...\n");
        measure_scaling(&mods[0], MODE_POOLED, PEER_SPIN, spin_ops);
        for (int i = 0; i < n; i++) {
            fprintf(stderr, "instantiate: peer: copy %s ...\n", mods[i].label);
            measure_copy_latency(&mods[i]);
            measure_scaling(&mods[i], MODE_POOLED, PEER_COPY, mods[i].copy_ops);
        }
    }

    /* Pooled modes first: setting the pool size to 0 is process-wide. */
    for (int mode = 0; mode < N_MODES; mode++) {
        if (opt_mode >= 0 && mode != opt_mode)
            continue;
        if (mode == MODE_FRESH) {
            kiln_rt_set_pool_size(0);
            kiln_rt_thread_cleanup();
        }
        for (int i = 0; i < n; i++) {
            fprintf(stderr, "instantiate: %s, %s: latency ...\n", mods[i].label,
                    mode_names[mode]);
            measure_latency(&mods[i], mode);
            fprintf(stderr, "instantiate: %s, %s: throughput ...\n", mods[i].label,
                    mode_names[mode]);
            measure_scaling(&mods[i], mode, PEER_NONE, mods[i].ops[mode]);
        }
    }

    printf("Latency per request (instantiate + call `noop` + free), %u iterations after %u "
           "warm-up, 1 thread; phases are p50s of their own.\n\n",
           opt_iterations, opt_warmup);
    printf("| module | wasm | memory | mode | p50 µs | p99 µs | new p50 | call p50 | free p50 "
           "| pool hits/misses | target (p50) |\n");
    printf("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n");
    for (int i = 0; i < n; i++)
        for (int mode = 0; mode < N_MODES; mode++) {
            if (opt_mode >= 0 && mode != opt_mode)
                continue;
            lat_result *r = &mods[i].lat[mode];
            const char *target = "-";
            if (mode == MODE_POOLED)
                target = r->p50 <= 5.0 ? "≤ 5 µs: met" : "≤ 5 µs: **missed**";
            printf("| %s | %.0f KB | %u KiB | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %llu/%llu "
                   "| %s |\n",
                   mods[i].label, mods[i].wasm_bytes / 1000.0, mods[i].mem_bytes / 1024,
                   mode_names[mode], r->p50, r->p99, r->new_p50, r->call_p50, r->free_p50,
                   (unsigned long long)r->hits, (unsigned long long)r->misses, target);
            if (mode == N_MODES - 1 && opt_mode == -1)
                printf("| %s | | | peer: memcpy %.0f KB + memset %u KiB, no Kiln | %.2f | %.2f "
                       "| - | - | - | - | the bytes any copy-based instantiate moves |\n",
                       mods[i].label, mods[i].wasm_bytes / 1000.0, mods[i].mem_bytes / 1024,
                       mods[i].copy_lat.p50, mods[i].copy_lat.p99);
        }
    printf("\nThroughput, each thread its own instantiate + call + free loop for %.1f s; "
           "median of %u alternating 1- and 2-thread runs (machine: %ld CPUs).\n\n",
           opt_seconds, opt_reps, sysconf(_SC_NPROCESSORS_ONLN));
    printf("| module | mode | 1 thread ops/s | 2 threads ops/s | scaling 2T/1T "
           "| ÷ memcpy-peer scaling | target |\n");
    printf("|---|---|---:|---:|---:|---:|---|\n");
    for (int i = 0; i < n; i++) {
        double c1 = mods[i].copy_ops[1], c2 = mods[i].copy_ops[2];
        double cscale = c1 > 0 ? c2 / c1 : 0;
        for (int mode = 0; mode < N_MODES; mode++) {
            if (opt_mode >= 0 && mode != opt_mode)
                continue;
            double one = mods[i].ops[mode][1], two = mods[i].ops[mode][2];
            double scale = one > 0 ? two / one : 0;
            char rel[32] = "-";
            if (cscale > 0)
                snprintf(rel, sizeof(rel), "%.2f", scale / cscale);
            printf("| %s | %s | %.0f | %.0f | %.2f× | %s | %s |\n", mods[i].label,
                   mode_names[mode], one, two, scale, rel,
                   mode == MODE_FRESH ? "- (mmap/munmap take the process-wide mm lock)"
                   : scale >= 1.8     ? "≈ 2×: met"
                                      : "≈ 2×: **missed**");
        }
        if (opt_mode != -1)
            continue;
        printf("| %s | peer: memcpy %.0f KB + memset %u KiB, no Kiln | %.0f | %.0f | %.2f× | 1.00 | "
               "machine ceiling (memory) |\n",
               mods[i].label, mods[i].wasm_bytes / 1000.0, mods[i].mem_bytes / 1024, c1, c2,
               cscale);
    }
    if (opt_mode == -1)
        printf("| - | peer: ALU spin loop, no memory | %.0f | %.0f | %.2f× | - | machine ceiling "
               "(CPU) |\n",
               spin_ops[1], spin_ops[2], spin_ops[1] > 0 ? spin_ops[2] / spin_ops[1] : 0);
    for (int i = 0; i < n; i++) {
        kiln_instance_pre_free(mods[i].pre);
        kiln_linker_free(mods[i].l);
        kiln_module_release(mods[i].m);
    }
    kiln_rt_thread_cleanup();
    return 0;
}
