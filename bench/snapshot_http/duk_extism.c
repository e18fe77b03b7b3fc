/*
 * duk_extism.c - the interpreter-sized guest of the snapshot_http section
 * (bench/snapshot_http/run.sh) as an Extism plugin: the snapshot section's
 * Duktape reactor (bench/guests/duk_snap.c: `init` builds a JavaScript heap
 * and a 2,000-entry library, `handle(n)` calls into it) behind Extism's
 * calling convention, so `kiln serve` can run it fresh, from a snapshot
 * image, or reused.
 *
 * `run`: the input is a decimal number n, the output the library's answer
 * for it. `wizer.initialize` runs init, which is what Kiln runs when it
 * builds a `snapshot: true` image (docs/internals/snapshot.md §4); without
 * an image `run` initialises on first use, so a fresh instance pays init on
 * every request. Init calls no Extism host function (an image cannot
 * reproduce them).
 */
#include "../guests/duk_snap.c"
#include "guest.h"

EXPORT("wizer.initialize") void wizer_initialize(void)
{
    init();
}

EXPORT("run") int32_t run(void)
{
    uint64_t len;
    char *in = g_input(&len);
    int32_t n = (int32_t)strtol(in, NULL, 10);
    free(in);
    char buf[24];
    buf[g_utoa((uint64_t)(uint32_t)handle(n), buf)] = '\0';
    g_output_str(buf);
    return 0;
}
