/*
 * types.c - the kiln:types world's exports, canonical ABI glue by hand: each
 * returns what it was given (the host's own allocations, handed back and
 * freed by the post-return functions), so a value crosses the boundary in
 * both directions. Layouts (CanonicalABI.md):
 *   shape: flat (i32 case, i64 joined payload, i32); in memory u8 case @0,
 *          payload @8 (size 16): u8, s64, f32 bits, f64, string ptr/len
 *   result<u32, string>, option<string>: flat (i32, i32, i32); in memory
 *          u8 case @0, payload @4 (size 12)
 *   point: s16 @0, f64 @8, string @16 (size 24, align 8)
 *   spill: 5 points are 20 flat values > 16: one i32, the address of the
 *          tuple in memory (laid out like a list of 5 points)
 * Zero-length strings and lists are never freed: jco passes the address 1
 * for them without calling cabi_realloc (as wit-bindgen's glue expects).
 * kiln-component: types types
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

static uint8_t ret[16] __attribute__((aligned(8)));

static void put32(uint8_t *at, uint32_t v) { memcpy(at, &v, 4); }
static uint32_t get32(const uint8_t *at)
{
    uint32_t v;
    memcpy(&v, at, 4);
    return v;
}

__attribute__((export_name("echo-shape"))) uint8_t *echo_shape(int32_t c, int64_t a, int32_t b)
{
    memset(ret, 0, sizeof(ret));
    ret[0] = (uint8_t)c;
    if (c == 1)
        ret[8] = (uint8_t)a;
    else if (c == 2 || c == 4)
        memcpy(ret + 8, &a, 8);
    else if (c == 3)
        put32(ret + 8, (uint32_t)a);
    else if (c == 5) {
        put32(ret + 8, (uint32_t)a);
        put32(ret + 12, (uint32_t)b);
    }
    return ret;
}

__attribute__((export_name("cabi_post_echo-shape"))) void post_shape(uint8_t *r)
{
    if (r[0] == 5 && get32(r + 12) > 0)
        free((void *)(uintptr_t)get32(r + 8));
}

/* result<u32, string> and option<string>: the same flat and memory shape. */
static uint8_t *case_and_pair(int32_t c, int32_t a, int32_t b)
{
    memset(ret, 0, sizeof(ret));
    ret[0] = (uint8_t)c;
    put32(ret + 4, (uint32_t)a);
    put32(ret + 8, (uint32_t)b);
    return ret;
}

__attribute__((export_name("echo-result"))) uint8_t *echo_result(int32_t c, int32_t a, int32_t b)
{
    return case_and_pair(c, a, c == 0 ? 0 : b);
}

__attribute__((export_name("cabi_post_echo-result"))) void post_result(uint8_t *r)
{
    if (r[0] == 1 && get32(r + 8) > 0)
        free((void *)(uintptr_t)get32(r + 4));
}

__attribute__((export_name("echo-opt"))) uint8_t *echo_opt(int32_t c, int32_t a, int32_t b)
{
    return case_and_pair(c, c ? a : 0, c ? b : 0);
}

__attribute__((export_name("cabi_post_echo-opt"))) void post_opt(uint8_t *r)
{
    if (r[0] == 1 && get32(r + 8) > 0)
        free((void *)(uintptr_t)get32(r + 4));
}

static uint8_t *list(uint32_t p, uint32_t n)
{
    put32(ret, p);
    put32(ret + 4, n);
    return ret;
}

__attribute__((export_name("echo-u32s"))) uint8_t *echo_u32s(uint32_t p, uint32_t n)
{
    return list(p, n);
}

__attribute__((export_name("cabi_post_echo-u32s"))) void post_u32s(uint8_t *r)
{
    if (get32(r + 4) > 0)
        free((void *)(uintptr_t)get32(r));
}

__attribute__((export_name("echo-points"))) uint8_t *echo_points(uint32_t p, uint32_t n)
{
    return list(p, n);
}

/* Frees a list of points: every tag, then the array. */
__attribute__((export_name("cabi_post_echo-points"))) void post_points(uint8_t *r)
{
    uint8_t *a = (uint8_t *)(uintptr_t)get32(r);
    for (uint32_t i = 0; i < get32(r + 4); i++)
        if (get32(a + 24 * i + 20) > 0)
            free((void *)(uintptr_t)get32(a + 24 * i + 16));
    if (get32(r + 4) > 0)
        free(a);
}

__attribute__((export_name("flip-wide"))) int32_t flip_wide(int32_t f)
{
    return f ^ 0x201; /* f0 and f9 */
}

/* The five points, last first, as a list in the tuple's own memory. */
__attribute__((export_name("spill"))) uint8_t *spill(uint8_t *t)
{
    uint8_t tmp[24];
    for (int i = 0; i < 2; i++) {
        memcpy(tmp, t + 24 * i, 24);
        memcpy(t + 24 * i, t + 24 * (4 - i), 24);
        memcpy(t + 24 * (4 - i), tmp, 24);
    }
    return list((uint32_t)(uintptr_t)t, 5);
}

__attribute__((export_name("cabi_post_spill"))) void post_spill(uint8_t *r)
{
    post_points(r);
}

__attribute__((export_name("half"))) float half(float x)
{
    return x / 2;
}
