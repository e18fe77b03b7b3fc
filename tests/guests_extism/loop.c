/* loop.c - an Extism function that never returns (for time limits). */
#include "guest.h"

EXPORT("loop") int32_t loop(void)
{
    volatile uint64_t n = 0;
    for (;;)
        n++;
}
