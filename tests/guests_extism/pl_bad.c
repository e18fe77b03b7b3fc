/*
 * pl_bad.c - plugins that fail, for test_pipeline.sh (each used through a
 * plugin's `export:`): `trap` traps, `spin` never returns (a time limit ends
 * it), `garbage` outputs text that is not JSON, `fail` sets an Extism error
 * and returns 1, `empty` outputs nothing.
 */
#include "guest.h"

EXPORT("trap") int32_t trap(void)
{
    __builtin_trap();
}

EXPORT("spin") int32_t spin(void)
{
    volatile uint64_t n = 0;
    for (;;)
        n++;
    return 0;
}

EXPORT("garbage") int32_t garbage(void)
{
    g_output_str("this is <not> json {");
    return 0;
}

EXPORT("fail") int32_t fail(void)
{
    return g_error("pl_bad failed on purpose");
}

EXPORT("empty") int32_t empty(void)
{
    return 0;
}
