/*
 * embed_bench.c - the libkiln side of the embed benchmark: the count_vowels
 * plugin (tests/guests_extism/count_vowels.c) loaded through Extism's C API
 * (include/kiln/extism.h, linked against libkiln.so as an Extism host
 * program would be), one plugin, N calls with the same input after a
 * warm-up, all in-process.
 * Usage: embed_bench PLUGIN.wasm CALLS INPUT
 * Prints one line: "<calls> <seconds> <calls/s> <us/call> <last output>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <extism.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: embed_bench PLUGIN.wasm CALLS INPUT\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *wasm = malloc((size_t)n);
    if (wasm == NULL || fread(wasm, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    long calls = atol(argv[2]);
    const uint8_t *in = (const uint8_t *)argv[3];
    size_t in_len = strlen(argv[3]);
    char *err = NULL;
    ExtismPlugin *p = extism_plugin_new(wasm, (ExtismSize)n, NULL, 0, false, &err);
    free(wasm);
    if (p == NULL) {
        fprintf(stderr, "extism_plugin_new: %s\n", err ? err : "?");
        return 1;
    }
    for (long i = 0; i < (calls < 1000 ? calls : 1000); i++)
        if (extism_plugin_call(p, "count_vowels", in, in_len) != 0) {
            fprintf(stderr, "call failed: %s\n", extism_plugin_error(p));
            return 1;
        }
    double t0 = now();
    for (long i = 0; i < calls; i++)
        if (extism_plugin_call(p, "count_vowels", in, in_len) != 0) {
            fprintf(stderr, "call failed: %s\n", extism_plugin_error(p));
            return 1;
        }
    double s = now() - t0;
    printf("%ld %.4f %.0f %.2f %.*s\n", calls, s, (double)calls / s, s * 1e6 / (double)calls,
           (int)extism_plugin_output_length(p), (const char *)extism_plugin_output_data(p));
    extism_plugin_free(p);
    return 0;
}
