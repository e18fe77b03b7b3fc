/*
 * traps.c - core functions that return values the Canonical ABI must refuse:
 * an enum discriminant out of range, a surrogate as a char, invalid UTF-8, a
 * list past the end of memory, a misaligned list<u32>.
 * kiln-component: traps traps
 */
#include <stdint.h>
#include <stdlib.h>

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t o, size_t a,
                                                                 size_t n)
{
    (void)o, (void)a;
    return realloc(p, n);
}

static uint32_t pair[2];
static char bytes[8] = {(char)0xC0, (char)0x80};

__attribute__((export_name("bad-enum"))) int32_t bad_enum(void) { return 9; }
__attribute__((export_name("bad-char"))) int32_t bad_char(void) { return 0xD800; }

__attribute__((export_name("bad-string"))) uint32_t *bad_string(void)
{
    pair[0] = (uint32_t)(uintptr_t)bytes;
    pair[1] = 2;
    return pair;
}

__attribute__((export_name("out-of-bounds"))) uint32_t *out_of_bounds(void)
{
    pair[0] = 0xFFFFFF00u;
    pair[1] = 0x1000;
    return pair;
}

__attribute__((export_name("misaligned"))) uint32_t *misaligned(void)
{
    pair[0] = (uint32_t)(uintptr_t)bytes + 1;
    pair[1] = 1;
    return pair;
}
