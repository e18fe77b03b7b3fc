/*
 * strenc.h - the kiln:strenc world's exports for the UTF-16 and
 * Latin-1+UTF-16 guests (utf16.c, latin1.c): strings arrive as (pointer,
 * length in code units), and for Latin-1+UTF-16 the length carries the tag
 * bit 1<<31 when the host stored UTF-16. Each string is handed back as it
 * came (the host's allocation, freed by the post-return functions).
 * Layouts: string (ptr @0, len @4); tuple<string, string> (ptr @0, len @4,
 * ptr @8, len @12).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size ? size : 1);
}

static uint32_t ret[4];

/* Code units without the tag: zero-length strings were never allocated
 * (jco passes the address 1 for them), so they are not freed. */
static void free_string(uint32_t p, uint32_t len)
{
    if ((len & 0x7fffffffu) > 0)
        free((void *)(uintptr_t)p);
}

__attribute__((export_name("echo"))) uint32_t *echo(uint32_t p, uint32_t len)
{
    ret[0] = p;
    ret[1] = len;
    return ret;
}

__attribute__((export_name("cabi_post_echo"))) void post_echo(uint32_t *r)
{
    free_string(r[0], r[1]);
}

__attribute__((export_name("units"))) uint32_t units(uint32_t p, uint32_t len)
{
    free_string(p, len);
    return len;
}

__attribute__((export_name("pair"))) uint32_t *pair(uint32_t pa, uint32_t la, uint32_t pb,
                                                   uint32_t lb)
{
    ret[0] = pb; /* swapped: b, a */
    ret[1] = lb;
    ret[2] = pa;
    ret[3] = la;
    return ret;
}

__attribute__((export_name("cabi_post_pair"))) void post_pair(uint32_t *r)
{
    free_string(r[0], r[1]);
    free_string(r[2], r[3]);
}
