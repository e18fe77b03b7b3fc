/*
 * link_lib.c - the `lib` module of a linked manifest (Extism's several
 * `wasm` entries, linked by name): the main module link_main.wasm imports
 * its exports as lib.<name>. It uses the Extism host functions too, so its
 * blocks live in the plugin's one Extism memory.
 *   upper(h) -> h'  a new block: block h upper-cased (ASCII)
 *   count() -> n    a counter in a global: 1 on the first call of a fresh
 *                   instance, so it shows when the dependency is re-created
 */
#include "guest.h"

static int32_t counter;

EXPORT("upper") xh upper(xh h)
{
    uint64_t n = x_length(h);
    char *s = malloc(n + 1);
    g_load(h, s, n);
    for (uint64_t i = 0; i < n; i++)
        if (s[i] >= 'a' && s[i] <= 'z')
            s[i] = (char)(s[i] - 'a' + 'A');
    xh out = g_alloc_bytes(s, n);
    free(s);
    return out;
}

EXPORT("count") int32_t count(void)
{
    return ++counter;
}
