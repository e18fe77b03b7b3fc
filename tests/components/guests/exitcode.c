/*
 * exitcode.c - the kiln:exitcode@0.1.0 world: a command component written
 * against the canonical ABI by hand (no adapter) that exports wasi:cli/run
 * and ends as its first argument says: "code N" calls exit-with-code(N),
 * "ok"/"err" call exit(ok)/exit(err), "return-err" returns err from run,
 * anything else returns ok.
 * kiln-component: exitcode exitcode
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(m, n) __attribute__((import_module(m), import_name(n)))

IMPORT("wasi:cli/exit@0.2.0", "exit-with-code") extern void exit_with_code(uint32_t code);
IMPORT("wasi:cli/exit@0.2.0", "exit") extern void exit_result(uint32_t is_err);
IMPORT("wasi:cli/environment@0.2.0", "get-arguments") extern void get_arguments(void *ret);

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

/* list<string>: (ptr, len) of (ptr, len) pairs. */
static uint32_t args[2];

static int arg_is(uint32_t i, const char *s)
{
    const uint32_t *v = (const uint32_t *)(uintptr_t)args[0];
    if (i >= args[1])
        return 0;
    return v[2 * i + 1] == strlen(s) && memcmp((const void *)(uintptr_t)v[2 * i], s,
                                                v[2 * i + 1]) == 0;
}

static uint32_t arg_num(uint32_t i)
{
    const uint32_t *v = (const uint32_t *)(uintptr_t)args[0];
    uint32_t n = 0;
    if (i >= args[1])
        return 0;
    const char *p = (const char *)(uintptr_t)v[2 * i];
    for (uint32_t k = 0; k < v[2 * i + 1]; k++)
        n = n * 10 + (uint32_t)(p[k] - '0');
    return n;
}

/* run: func() -> result (0: ok, 1: err) */
__attribute__((export_name("wasi:cli/run@0.2.0#run"))) uint32_t run(void)
{
    get_arguments(args);
    if (arg_is(1, "code"))
        exit_with_code(arg_num(2));
    if (arg_is(1, "ok"))
        exit_result(0);
    if (arg_is(1, "err"))
        exit_result(1);
    return arg_is(1, "return-err") ? 1 : 0;
}
