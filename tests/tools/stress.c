/*
 * stress.c - several threads instantiate, call, trap and time out
 * concurrently for many iterations. Every result is checked; memory use
 * (RSS and live reservations) must stay flat after warm-up.
 * Usage: stress MODULE.wasm THREADS ITERATIONS. Prints "N passed, N failed".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/aot.h"
#include "kiln/runtime.h"

static kiln_instance_pre *pre;
static int idx_add, idx_swap, idx_div0, idx_oob, idx_unreach, idx_rec, idx_spin, idx_grow;
/* Each CHECK site is one test: it passes if it held in every iteration. */
#define SITES 512
static atomic_long site_ok[SITES], site_bad[SITES];
static atomic_long failed;
static long iterations;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond)                                                                                  \
            atomic_fetch_add(&site_ok[__LINE__ % SITES], 1);                                       \
        else {                                                                                     \
            atomic_fetch_add(&site_bad[__LINE__ % SITES], 1);                                      \
            if (atomic_fetch_add(&failed, 1) < 20) {                                               \
                fprintf(stderr, "FAIL: " __VA_ARGS__);                                             \
                fputc('\n', stderr);                                                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static void expect_trap(kiln_instance *inst, int idx, int kind, const char *what)
{
    kiln_value a[1] = {{.i32 = 1}}, r[1];
    kiln_err err;
    int rc = kiln_instance_call_index(inst, idx, a, r, &err);
    CHECK(rc == KILN_ETRAP && err.trap == kind, "%s: rc=%d trap=%d (%s)", what, rc,
          rc == KILN_ETRAP ? err.trap : 0, rc ? err.msg : "no error");
}

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
    kiln_limits lim = {.max_memory_bytes = 4 << 20, .timeout_ms = 0};
    for (long i = 0; i < iterations; i++) {
        seed = seed * 1103515245u + 12345u;
        lim.timeout_ms = 2000; /* generous: a busy machine must not fail the test */
        kiln_instance *inst;
        kiln_err err;
        if (kiln_instance_new(pre, &lim, NULL, &inst, &err) != KILN_OK) {
            CHECK(0, "instantiate: %s", err.msg);
            continue;
        }
        kiln_value a[2], r[1];
        uint32_t x = seed >> 8, y = seed & 0xffff;
        a[0].i32 = x;
        a[1].i32 = y;
        int rc = kiln_instance_call_index(inst, idx_add, a, r, &err);
        CHECK(rc == KILN_OK && r[0].i32 == x + y, "add: rc=%d", rc);
        a[0].i32 = x | 1;
        rc = kiln_instance_call_index(inst, idx_swap, a, r, &err);
        CHECK(rc == KILN_OK && r[0].i32 == 0, "fresh memory not zero: rc=%d got %u", rc, r[0].i32);
        rc = kiln_instance_call_index(inst, idx_swap, a, r, &err);
        CHECK(rc == KILN_OK && r[0].i32 == (x | 1), "state within instance: rc=%d", rc);
        if (i % 500 == 499) {
            kiln_limits short_lim = lim;
            short_lim.timeout_ms = 5;
            kiln_instance_set_limits(inst, &short_lim);
            expect_trap(inst, idx_spin, KILN_TRAP_TIMEOUT, "spin");
            rc = kiln_instance_call_index(inst, idx_add, a, r, &err);
            CHECK(rc == KILN_ETIMEOUT, "poisoned instance callable: rc=%d", rc);
        } else if (i % 100 == 99) {
            expect_trap(inst, idx_rec, KILN_TRAP_EXHAUSTION, "recurse");
        } else {
            switch (seed % 5) {
            case 0: expect_trap(inst, idx_div0, KILN_TRAP_DIV_BY_ZERO, "div0"); break;
            case 1: expect_trap(inst, idx_oob, KILN_TRAP_OOB, "oob"); break;
            case 2: expect_trap(inst, idx_unreach, KILN_TRAP_UNREACHABLE, "unreachable"); break;
            case 3:
                a[0].i32 = 200; /* beyond the 4 MiB limit: must fail, not crash */
                rc = kiln_instance_call_index(inst, idx_grow, a, r, &err);
                CHECK(rc == KILN_OK && r[0].i32 == UINT32_MAX, "grow past limit: %u", r[0].i32);
                a[0].i32 = 2;
                rc = kiln_instance_call_index(inst, idx_grow, a, r, &err);
                CHECK(rc == KILN_OK && r[0].i32 == 1, "grow within limit: %u", r[0].i32);
                break;
            default: break;
            }
        }
        kiln_instance_free(inst);
    }
    kiln_rt_thread_cleanup();
    return NULL;
}

static void run_threads(int n, long iters)
{
    pthread_t th[64];
    iterations = iters;
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: stress MODULE.wasm THREADS ITERATIONS\n");
        return 2;
    }
    int threads = atoi(argv[2]);
    long iters = atol(argv[3]);
    if (threads < 1 || threads > 64)
        threads = 4;
    kiln_aot_options o = {0};
    o.opt_level = 1;
    kiln_module *m;
    kiln_linker *l;
    kiln_err err;
    if (kiln_aot_load_file(argv[1], &o, &m, &err) != KILN_OK) {
        fprintf(stderr, "stress: %s\n", err.msg);
        return 1;
    }
    kiln_linker_new(&l);
    if (kiln_instance_pre_new(m, l, &pre, &err) != KILN_OK) {
        fprintf(stderr, "stress: %s\n", err.msg);
        return 1;
    }
    idx_add = kiln_module_find_export(m, "add", KILN_EXTERN_FUNC);
    idx_swap = kiln_module_find_export(m, "swap", KILN_EXTERN_FUNC);
    idx_div0 = kiln_module_find_export(m, "div0", KILN_EXTERN_FUNC);
    idx_oob = kiln_module_find_export(m, "oob", KILN_EXTERN_FUNC);
    idx_unreach = kiln_module_find_export(m, "unreachable", KILN_EXTERN_FUNC);
    idx_rec = kiln_module_find_export(m, "recurse", KILN_EXTERN_FUNC);
    idx_spin = kiln_module_find_export(m, "spin", KILN_EXTERN_FUNC);
    idx_grow = kiln_module_find_export(m, "grow", KILN_EXTERN_FUNC);

    /* Warm-up fills allocator arenas and pools; then memory must stay flat. */
    run_threads(threads, iters / 10 + 1);
    long rss0 = rss_kib();
    run_threads(threads, iters);
    long rss1 = rss_kib();
    kiln_rt_stats st;
    kiln_rt_stats_get(&st);
    printf("threads=%d iterations=%ld rss_before=%ld KiB rss_after=%ld KiB reservations=%llu\n",
           threads, iters, rss0, rss1, (unsigned long long)st.memories_reserved);
    CHECK(rss1 - rss0 < 16 * 1024, "RSS grew by %ld KiB", rss1 - rss0);
    /* Threads released their pools on exit: no reservation may remain. */
    CHECK(st.memories_reserved == 0, "%llu reservations leaked",
          (unsigned long long)st.memories_reserved);
    kiln_instance_pre_free(pre);
    kiln_linker_free(l);
    kiln_module_release(m);
    long checks = 0, sites_passed = 0, sites_failed = 0;
    for (int i = 0; i < SITES; i++) {
        checks += site_ok[i] + site_bad[i];
        if (site_bad[i] > 0)
            sites_failed++;
        else if (site_ok[i] > 0)
            sites_passed++;
    }
    printf("%ld checks in %d threads, %ld failed\n", checks, threads, atomic_load(&failed));
    printf("%ld passed, %ld failed\n", sites_passed, sites_failed);
    return sites_failed != 0;
}
