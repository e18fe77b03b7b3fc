/*
 * hostfn_mix.c - a host function of every value type in its own namespace
 * (the library's tests): `mixed` calls calc.mix(i32, i64, f32, f64) -> f64
 * and outputs the result, truncated to an integer, in decimal.
 */
#include "guest.h"

__attribute__((import_module("calc"), import_name("mix"))) double mix(int32_t a, int64_t b,
                                                                      float c, double d);

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
