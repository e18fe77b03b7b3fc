/*
 * trap.c - guests that do not return normally: `trap` executes unreachable,
 * `oom` allocates Extism memory until the limit stops it, `bad_key` passes
 * an invalid handle to config_get.
 */
#include "guest.h"

EXPORT("trap") int32_t trap(void)
{
    __builtin_trap();
}

EXPORT("oom") int32_t oom(void)
{
    for (;;)
        if (x_alloc(1 << 20) == 0)
            return g_error("alloc returned 0");
}

EXPORT("bad_key") int32_t bad_key(void)
{
    x_config_get(12345678);
    return 0;
}
