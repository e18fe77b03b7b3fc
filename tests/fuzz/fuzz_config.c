/*
 * fuzz_config.c - the configuration parser (src/config/config.c) on YAML and
 * JSON text. The first byte picks the file name (odd: "kiln.json", even:
 * "kiln.yaml"; text starting with '{' is JSON either way); the rest is the
 * file. Relative paths resolve against a scratch directory holding a.wasm,
 * b.wasm and the directory d/, so seeds that name them get past the
 * existence checks into the rest of the walker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64] = "/tmp/kiln-fuzz-cfg-XXXXXX";

static void cleanup(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/a.wasm", base);
    unlink(p);
    snprintf(p, sizeof(p), "%s/b.wasm", base);
    unlink(p);
    snprintf(p, sizeof(p), "%s/d", base);
    rmdir(p);
    rmdir(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (mkdtemp(base) == NULL)
        abort();
    char p[128];
    static const char *const files[] = {"a.wasm", "b.wasm"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/%s", base, files[i]);
        FILE *f = fopen(p, "wb");
        if (f == NULL)
            abort();
        fwrite("\0asm\1\0\0\0", 1, 8, f);
        fclose(f);
    }
    snprintf(p, sizeof(p), "%s/d", base);
    mkdir(p, 0700);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *name = (data[0] & 1) ? "kiln.json" : "kiln.yaml";
    cfg_config *c = NULL;
    kiln_err err;
    int rc = cfg_parse((const char *)data + 1, size - 1, name, base, &c, &err);
    if (rc == KILN_OK) {
        /* Every route points at a function; every string is readable. */
        for (size_t i = 0; i < c->n_routes; i++) {
            if (c->routes[i].function >= c->n_functions || c->routes[i].path == NULL)
                abort();
            (void)strlen(c->routes[i].path);
        }
        for (size_t i = 0; i < c->n_warnings; i++)
            (void)strlen(c->warnings[i]);
        cfg_free(c);
    } else if (c != NULL || memchr(err.msg, 0, sizeof(err.msg)) == NULL) {
        abort();
    }
    /* The size and duration parsers on the same text, NUL-terminated. */
    char s[64];
    size_t n = size - 1 < sizeof(s) - 1 ? size - 1 : sizeof(s) - 1;
    memcpy(s, data + 1, n);
    s[n] = '\0';
    uint64_t v;
    cfg_parse_size(s, &v);
    cfg_parse_duration_ms(s, &v);
    return 0;
}
