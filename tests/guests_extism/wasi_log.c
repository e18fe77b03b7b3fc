/*
 * wasi_log.c - an Extism plugin that also uses WASI (printf to stdout and
 * stderr): it needs --wasi, and what it prints goes to the log, not to the
 * output.
 */
#include <stdio.h>

#include "guest.h"

EXPORT("run") int32_t run(void)
{
    printf("printed to stdout\n");
    fprintf(stderr, "printed to stderr\n");
    fflush(stdout);
    g_output_str("output");
    return 0;
}
