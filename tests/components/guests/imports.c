/*
 * imports.c - the kiln:imports@0.1.0 world: `greet` calls the host's
 * kiln:cli/log#log (a canon lower of a component import, linked to Kiln's
 * host registry), writes to stdout with printf (WASI preview 1, adapted to
 * WASI 0.2 by jco's reactor adapter: a second core module plus the shim and
 * fixup modules routing its imports) and returns a string built in memory.
 * kiln-component: imports imports reactor
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("kiln:cli/log@0.1.0"), import_name("log"))) extern void
host_log(const char *p, size_t n);

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

static struct {
    char *p;
    size_t n;
} ret;

__attribute__((export_name("greet"))) void *greet(char *name, size_t n)
{
    char line[300];
    int k = snprintf(line, sizeof(line), "log: greeting %.*s", (int)(n > 200 ? 200 : n), name);
    host_log(line, (size_t)k);
    printf("stdout: greeting %.*s\n", (int)(n > 200 ? 200 : n), name);
    fflush(stdout);
    ret.p = malloc(n + 7);
    memcpy(ret.p, "hello, ", 7);
    memcpy(ret.p + 7, name, n);
    ret.n = n + 7;
    return &ret;
}
