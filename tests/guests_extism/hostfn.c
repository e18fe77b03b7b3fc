/*
 * hostfn.c - calls host functions an embedder defines (the library's tests,
 * examples/embed): `shout` passes its input block to extism:host/user
 * hello_world(i64) -> i64 and outputs the block it returns; `mixed` calls
 * calc.mix(i32, i64, f32, f64) -> f64 (namespace "calc") and outputs the
 * result as an integer in decimal.
 */
#include "guest.h"

#define UIMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))
UIMPORT("extism:host/user", "hello_world") xh hello_world(xh in);
UIMPORT("calc", "mix") double mix(int32_t a, int64_t b, float c, double d);

EXPORT("shout") int32_t shout(void)
{
    xh in = g_alloc_str(g_input(NULL));
    xh out = hello_world(in);
    uint64_t n = x_length(out);
    x_output_set(out, n);
    return 0;
}

EXPORT("mixed") int32_t mixed(void)
{
    double r = mix(-3, 5000000000LL, 1.5f, 0.25);
    char buf[24];
    int64_t v = (int64_t)r;
    int neg = v < 0;
    int n = g_utoa((uint64_t)(neg ? -v : v), buf + 1);
    if (neg) {
        buf[0] = '-';
        g_output(buf, (uint64_t)n + 1);
    } else {
        g_output(buf + 1, (uint64_t)n);
    }
    return 0;
}
