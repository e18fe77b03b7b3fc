/*
 * link_cyc_b.c - see link_cyc_a.c: imports "a".ping, exports pong and the
 * plugin function run.
 */
#include "guest.h"

__attribute__((import_module("a"), import_name("ping"))) int32_t a_ping(int32_t n);

EXPORT("pong") int32_t pong(int32_t n)
{
    return n <= 0 ? 0 : a_ping(n - 1) + 1;
}

EXPORT("run") int32_t run(void)
{
    char buf[24];
    g_utoa((uint64_t)pong(4), buf);
    g_output_str(buf);
    return 0;
}
