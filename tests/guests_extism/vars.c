/*
 * vars.c - Extism vars and instance state: `count` increments the var
 * "counter" (per function, so it survives new instances); `global` increments
 * a C global (per instance, so only instance re-use keeps it); `clear`
 * deletes the var; `too_big` stores a value over the var limit.
 */
#include "guest.h"

static uint64_t calls;

EXPORT("count") int32_t count(void)
{
    char *v = g_block_str(x_var_get(g_alloc_str("counter")));
    char buf[24];
    int n = g_utoa((v ? strtoull(v, NULL, 10) : 0) + 1, buf);
    x_var_set(g_alloc_str("counter"), g_alloc_bytes(buf, (uint64_t)n));
    g_output(buf, (uint64_t)n);
    return 0;
}

EXPORT("global") int32_t global(void)
{
    char buf[24];
    int n = g_utoa(++calls, buf);
    g_output(buf, (uint64_t)n);
    return 0;
}

EXPORT("clear") int32_t clear(void)
{
    x_var_set(g_alloc_str("counter"), 0);
    g_output_str("cleared");
    return 0;
}

EXPORT("too_big") int32_t too_big(void)
{
    static char big[2 << 20];
    x_var_set(g_alloc_str("big"), g_alloc_bytes(big, sizeof(big)));
    g_output_str("stored");
    return 0;
}
