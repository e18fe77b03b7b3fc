/*
 * fiber.c - what a guest stack costs: the context switch alone (built twice,
 * with Kiln's assembly switch and with -DKILN_CTX_UCONTEXT for swapcontext),
 * and, with libkiln, a whole fiber run + suspend + resume round trip as a
 * waiting request pays it. Prints one line per measurement, ns per switch.
 * Build: bench/run.sh fiber (or by hand, see bench/run.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "platform/ctx_switch.h"
#ifdef KILN_BENCH_LIBKILN
#include "kiln/runtime.h"
#endif

static ctx main_ctx, other_ctx;
static long iterations;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bounce(void *arg)
{
    (void)arg;
    for (;;)
        ctx_switch(&other_ctx, &main_ctx);
}

#ifdef KILN_BENCH_LIBKILN
static int waits(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        kiln_fiber_suspend();
    return 0;
}
#endif

int main(int argc, char **argv)
{
    iterations = argc > 1 ? atol(argv[1]) : 10000000;
    size_t size = 256 << 10;
    char *stack = malloc(size);
    ctx_make(&other_ctx, stack, stack + size, bounce, NULL);
    /* warm up */
    for (int i = 0; i < 1000; i++)
        ctx_switch(&main_ctx, &other_ctx);
    double t0 = now_s();
    for (long i = 0; i < iterations; i++)
        ctx_switch(&main_ctx, &other_ctx);
    double t = now_s() - t0;
    printf("switch %-8s %.1f ns per switch (%ld round trips)\n", ctx_impl_name(),
           t * 1e9 / (double)(2 * iterations), iterations);
#ifdef KILN_BENCH_LIBKILN
    /* A fiber that suspends n times, resumed each time: the cost a waiting
     * request pays per wait, on top of the wait itself. */
    long n = iterations / 10;
    kiln_fiber *f = NULL;
    int result = 0;
    kiln_err err;
    t0 = now_s();
    int rc = kiln_fiber_run(NULL, waits, &n, &f, &result, &err);
    while (rc == 0)
        rc = kiln_fiber_resume(f, &result);
    t = now_s() - t0;
    printf("fiber suspend+resume %.1f ns per round trip (%ld)\n", t * 1e9 / (double)n, n);
    /* Start-to-finish of a fiber that never waits (a request on the fast path). */
    long zero = 0;
    t0 = now_s();
    for (long i = 0; i < n; i++)
        kiln_fiber_run(NULL, waits, &zero, &f, &result, &err);
    t = now_s() - t0;
    printf("fiber run (no wait) %.1f ns per fiber (%ld, pooled stacks)\n", t * 1e9 / (double)n, n);
#endif
    free(stack);
    return 0;
}
