/*
 * duk_cmd.c - the snapshot section's Duktape guest (bench/guests/duk_snap.c)
 * as a WASI command, for the start-up rows of bench/snapshot_http/run.sh:
 * `kiln run duk_cmd.wasm` creates the JavaScript heap and library, answers
 * for n = 7 and exits. `wizer.initialize` runs that initialisation, so Wizer
 * can pre-initialise the module offline (duk_cmd.wizer.wasm), whose `_start`
 * then finds the heap ready and only answers.
 */
#include <stdio.h>

#include "../guests/duk_snap.c"

__attribute__((export_name("wizer.initialize"))) void wizer_initialize(void)
{
    init();
}

int main(void)
{
    printf("%d\n", (int)handle(7));
    return 0;
}
