/*
 * snap_init.c - Extism guest with an expensive initialisation, for
 * `snapshot: true` (tests/integration/test_snapshot.sh): a constructor (run
 * by the reactor's _initialize) fills a 64 KiB table and counts how often it
 * ran; `run` answers from the table, then scribbles over it and bumps a
 * counter, so an instance that saw another request's state would answer
 * differently. Identical answers with and without snapshot, every request.
 * The constructor also reads SNAP_TAG from the environment (frozen into the
 * image, so a configuration change must rebuild it).
 */
#include <stdio.h>
#include <stdlib.h>

#include "guest.h"

static uint32_t table[16384];
static int inits, calls;
static char tag[32] = "none";

__attribute__((constructor)) static void expensive_init(void)
{
    uint32_t x = 1;
    for (int round = 0; round < 200; round++)
        for (int i = 0; i < 16384; i++) {
            x = x * 1664525u + 1013904223u;
            table[i] ^= x;
        }
    /* The environment is read during init: with snapshot, a changed
     * configuration must rebuild the image to be seen. */
    const char *t = getenv("SNAP_TAG");
    if (t != NULL)
        snprintf(tag, sizeof(tag), "%s", t);
    inits++;
}

EXPORT("run") int32_t run(void)
{
    uint32_t sum = 0;
    for (int i = 0; i < 16384; i++)
        sum += table[i];
    calls++;
    char buf[128];
    snprintf(buf, sizeof(buf), "sum=%u inits=%d calls=%d tag=%s", (unsigned)sum, inits, calls,
             tag);
    for (int i = 0; i < 16384; i++)
        table[i] = 0xdeadbeef; /* the next request must never see this */
    g_output_str(buf);
    return 0;
}
