/*
 * hostfn.c - calls a host function an embedder defines (the library's tests,
 * examples/embed): `shout` passes its input block to extism:host/user
 * hello_world(i64) -> i64 and outputs the block it returns.
 */
#include "guest.h"

#define UIMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))
UIMPORT("extism:host/user", "hello_world") xh hello_world(xh in);

EXPORT("shout") int32_t shout(void)
{
    xh in = g_alloc_str(g_input(NULL));
    xh out = hello_world(in);
    uint64_t n = x_length(out);
    x_output_set(out, n);
    return 0;
}
