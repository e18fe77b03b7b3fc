/*
 * mem_pages.c - manifest memory limits (issue 14): a module that starts at
 * 17 pages of linear memory (a 15-page static buffer, data and the 64 KiB
 * stack), for Extism's memory.max_pages rule (growth past the initial size
 * counts against max_pages). `pages` prints the memory size in pages;
 * `grow` grows it by the input's number of pages and prints the new size,
 * or fails with "memory.grow failed". `fill` stores the input as var "a",
 * `add` stores var "b" = "1" (the var store's limit, max_var_bytes).
 */
#include "guest.h"

static volatile char pad[15 * 65536];

static int put_pages(void)
{
    char buf[24];
    int n = g_utoa(__builtin_wasm_memory_size(0), buf);
    g_output(buf, (uint64_t)n);
    return 0;
}

EXPORT("pages") int32_t pages(void)
{
    pad[sizeof(pad) - 1] = 1;
    return put_pages();
}

EXPORT("grow") int32_t grow(void)
{
    uint64_t len;
    char *in = g_input(&len);
    unsigned long n = in ? strtoul(in, NULL, 10) : 0;
    if (__builtin_wasm_memory_grow(0, n) == (size_t)-1)
        return g_error("memory.grow failed");
    return put_pages();
}

EXPORT("fill") int32_t fill(void)
{
    uint64_t len;
    char *in = g_input(&len);
    x_var_set(g_alloc_str("a"), g_alloc_bytes(in, len));
    g_output_str("filled");
    return 0;
}

EXPORT("add") int32_t add(void)
{
    x_var_set(g_alloc_str("b"), g_alloc_str("1"));
    g_output_str("added");
    return 0;
}
