/*
 * traps.c - provokes one WebAssembly trap, selected by argv[1]:
 *   oob, div0, int_overflow, invalid_conversion, unreachable, indirect,
 *   stack (unbounded recursion), loop (never ends; for --timeout),
 *   grow (mallocs until it fails, prints the total, exits 0; for --max-memory),
 *   sleep MS (sleeps through poll_oneoff, prints "slept"; for --timeout).
 * Volatile operands keep clang from folding the faulting operation away.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int sink;
static char *volatile keep; /* makes allocations observable to the optimiser */

/* Not tail-recursive (the result is used after the call) and free of
 * address-taken locals, so each level is one native wasm2c frame and no
 * shadow-stack memory: the host's call stack runs out first. */
__attribute__((noinline)) static int recurse(int depth)
{
    if (depth == sink - 1)
        return 0;
    int r = recurse(depth + 1);
    sink = r;
    return r + depth;
}

static int takes_int(int x)
{
    return x + 1;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "oob") == 0) {
        volatile uintptr_t addr = 0xfffffff0u;
        printf("%d\n", *(volatile int *)addr);
    } else if (strcmp(what, "div0") == 0) {
        volatile int a = 1, b = 0;
        printf("%d\n", a / b);
    } else if (strcmp(what, "int_overflow") == 0) {
        volatile int a = INT_MIN, b = -1;
        printf("%d\n", a / b);
    } else if (strcmp(what, "invalid_conversion") == 0) {
        /* A plain (int) cast is lowered with a range check (out-of-range
         * fptosi is only poison in LLVM), so use the raw trapping
         * i32.trunc_f64_s on NaN. */
        volatile double d = __builtin_nan("");
        printf("%d\n", __builtin_wasm_trunc_s_i32_f64(d));
    } else if (strcmp(what, "unreachable") == 0) {
        __builtin_trap();
    } else if (strcmp(what, "indirect") == 0) {
        /* call_indirect with the wrong signature: (i32)->i32 called as ()->void */
        void (*volatile fp)(void) = (void (*)(void))takes_int;
        fp();
    } else if (strcmp(what, "stack") == 0) {
        sink = 0; /* depth never reaches -1 */
        printf("%d\n", recurse(0));
    } else if (strcmp(what, "loop") == 0) {
        for (;;)
            sink++;
    } else if (strcmp(what, "sleep") == 0) {
        usleep((useconds_t)(argc > 2 ? atoi(argv[2]) : 1000) * 1000u);
        printf("slept\n");
        return 0;
    } else if (strcmp(what, "grow") == 0) {
        size_t total = 0;
        const size_t chunk = 64 * 1024;
        for (;;) {
            char *p = malloc(chunk);
            if (p == NULL)
                break;
            p[0] = 1;
            keep = p; /* else clang may elide the unused allocation entirely */
            total += chunk;
            if (total >= ((size_t)3 << 30))
                break;
        }
        printf("grow: got %zu bytes\n", total);
        return 0;
    } else {
        fprintf(stderr, "usage: traps oob|div0|int_overflow|invalid_conversion|unreachable|"
                        "indirect|stack|loop|grow|sleep [MS]\n");
        return 2;
    }
    printf("traps: %s did not trap\n", what);
    return 1;
}
