/*
 * prims.c - the kiln:prims@0.1.0 world by hand against the canonical ABI:
 * every primitive type through `echo` (a 13-field record: 14 flat parameters,
 * the result returned in memory), an option, flags, a tuple and a list of
 * strings built in guest memory.
 * kiln-component: prims prims
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

__attribute__((export_name("add"))) int32_t add(int32_t a, int32_t b)
{
    return a + b;
}

/* record all, laid out as the canonical ABI does (C's natural layout here). */
struct all {
    uint8_t b;
    int8_t s8v;
    uint8_t u8v;
    int16_t s16v;
    uint16_t u16v;
    int32_t s32v;
    uint32_t u32v;
    int64_t s64v;
    uint64_t u64v;
    float f32v;
    double f64v;
    uint32_t c;
    char *s;
    uint32_t s_len;
};
_Static_assert(sizeof(struct all) == 64, "canonical layout of record all");

static struct all echoed;

__attribute__((export_name("echo"))) struct all *echo(int32_t b, int32_t s8v, int32_t u8v,
                                                      int32_t s16v, int32_t u16v, int32_t s32v,
                                                      int32_t u32v, int64_t s64v, int64_t u64v,
                                                      float f32v, double f64v, int32_t c, char *s,
                                                      uint32_t s_len)
{
    echoed = (struct all){(uint8_t)b, (int8_t)s8v, (uint8_t)u8v, (int16_t)s16v, (uint16_t)u16v,
                          s32v, (uint32_t)u32v, s64v, (uint64_t)u64v, f32v, f64v, (uint32_t)c,
                          s, s_len};
    return &echoed;
}

static uint32_t opt[2];

__attribute__((export_name("maybe-double"))) uint32_t *maybe_double(int32_t some, uint32_t v)
{
    opt[0] = some ? 1 : 0;
    opt[1] = some ? v * 2 : 0;
    return opt;
}

__attribute__((export_name("toggle"))) int32_t toggle(int32_t p)
{
    return p ^ 0x7;
}

static uint32_t tup[3];

__attribute__((export_name("swap"))) uint32_t *swap(int32_t u, char *s, uint32_t len)
{
    tup[0] = (uint32_t)(uintptr_t)s;
    tup[1] = len;
    tup[2] = (uint8_t)u;
    return tup;
}

static uint32_t list[2];

/* Split on spaces; the list and its strings point into a fresh array. */
__attribute__((export_name("words"))) uint32_t *words(char *s, uint32_t len)
{
    uint32_t *pairs = malloc(8 * (len / 2 + 1));
    uint32_t n = 0;
    for (uint32_t i = 0; i < len;) {
        while (i < len && s[i] == ' ')
            i++;
        uint32_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (i > start) {
            pairs[2 * n] = (uint32_t)(uintptr_t)(s + start);
            pairs[2 * n + 1] = i - start;
            n++;
        }
    }
    list[0] = (uint32_t)(uintptr_t)pairs;
    list[1] = n;
    return list;
}

__attribute__((export_name("cabi_post_words"))) void post_words(uint32_t *r)
{
    free((void *)(uintptr_t)r[0]);
}
