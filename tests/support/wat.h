/*
 * wat.h - test support: turn WebAssembly text into a loaded kiln_module
 * through the real AOT path (wat2wasm, then kiln_aot_load_file). Header-only
 * so each test binary stays self-contained.
 */
#ifndef KILN_TESTS_WAT_H
#define KILN_TESTS_WAT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/aot.h"
#include "kiln/runtime.h"

/* Write `wat` to a temp file and convert it; returns a malloc'd .wasm path
 * or NULL. `flags` are extra wat2wasm flags (may be ""). */
static inline char *test_wat2wasm(const char *wat, const char *flags)
{
    char dir[] = "/tmp/kiln-test-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return NULL;
    char src[512], cmd[1400];
    snprintf(src, sizeof(src), "%s/m.wat", dir);
    FILE *f = fopen(src, "w");
    if (f == NULL)
        return NULL;
    fputs(wat, f);
    fclose(f);
    char *out = malloc(512);
    snprintf(out, 512, "%s/m.wasm", dir);
    snprintf(cmd, sizeof(cmd), "wat2wasm %s %s -o %s", flags, src, out);
    if (system(cmd) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* Remove the temp directory made by test_wat2wasm and free `path`. */
static inline void test_wat_cleanup(char *path)
{
    if (path == NULL)
        return;
    char *slash = strrchr(path, '/');
    unlink(path);
    if (slash != NULL) {
        strcpy(slash, "/m.wat");
        unlink(path);
        *slash = '\0';
        rmdir(path);
    }
    free(path);
}

/* Compile and load `wat`; prints the error and returns NULL on failure. */
static inline kiln_module *test_load_wat(const char *wat, const kiln_linker *check)
{
    char *path = test_wat2wasm(wat, "--enable-exceptions");
    if (path == NULL)
        return NULL;
    kiln_aot_options o = {0};
    o.opt_level = 1;
    o.cc = getenv("KILN_TEST_CC") ? getenv("KILN_TEST_CC") : "cc";
    o.imports = check;
    kiln_module *m = NULL;
    kiln_err err;
    if (kiln_aot_load_file(path, &o, &m, &err) != KILN_OK)
        fprintf(stderr, "test_load_wat: %s\n", err.msg);
    test_wat_cleanup(path);
    return m;
}

#endif
