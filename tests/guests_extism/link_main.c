/*
 * link_main.c - the main module of a linked manifest: imports upper and
 * count from the module named "lib" (link_lib.wasm).
 *   shout: output "<input upper-cased by lib> #<lib's counter>"
 */
#include "guest.h"

#define LIB(name) __attribute__((import_module("lib"), import_name(name)))

LIB("upper") xh lib_upper(xh h);
LIB("count") int32_t lib_count(void);

EXPORT("shout") int32_t shout(void)
{
    uint64_t n;
    char *in = g_input(&n);
    xh up = lib_upper(g_alloc_bytes(in, n));
    uint64_t len = x_length(up);
    char *s = malloc(len + 1);
    g_load(up, s, len);
    s[len] = '\0';
    char cbuf[24];
    g_utoa((uint64_t)lib_count(), cbuf);
    g_output_str(g_cat(s, " #", cbuf, NULL));
    return 0;
}
