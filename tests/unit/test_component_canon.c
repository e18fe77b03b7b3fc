/*
 * test_component_canon.c - the Canonical ABI (src/component/cm_canon.c) value
 * by value against a plain byte buffer standing in for guest memory, with a
 * bump allocator as the guest's realloc: layout, flattening, store/load and
 * flat lower/lift round trips for every supported type, the three string
 * encodings with their transcoding, parameter spilling and result loading,
 * and every trap condition as a clean KILN_ETRAP.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "component/cm_canon.h"
#include "component/cm_inst.h"

/* ---- guest memory and realloc ------------------------------------------- */

#define MEM 65536
static uint8_t mem[MEM];
static uint32_t brk;
static int realloc_mode; /* 0 normal, 1 misaligned result, 2 out of bounds, 3 fails */
static int realloc_calls;

static int bump_realloc(cm_cx *cx, uint32_t old_ptr, uint32_t old_size, uint32_t align,
                        uint32_t new_size, uint32_t *out)
{
    realloc_calls++;
    if (realloc_mode == 3)
        return kiln_err_set(cx->err, KILN_ETRAP, "guest realloc trapped");
    brk = (brk + align - 1) / align * align;
    uint32_t p = brk;
    if (realloc_mode == 1)
        p += 1;
    if (realloc_mode == 2)
        p = MEM - 2;
    if (old_ptr != 0 && realloc_mode == 0)
        memmove(mem + p, mem + old_ptr, old_size < new_size ? old_size : new_size);
    brk += new_size;
    *out = p;
    return KILN_OK;
}

static cm_arena *arena;
static kiln_err err;

static cm_cx cx_for(cm_encoding enc)
{
    memset(mem, 0, sizeof(mem));
    brk = 1024;
    realloc_mode = 0;
    realloc_calls = 0;
    memset(&err, 0, sizeof(err));
    return (cm_cx){.mem = mem, .mem_len = MEM, .encoding = enc, .realloc = bump_realloc,
                   .arena = arena, .err = &err};
}

static int setup(void **state)
{
    arena = cm_arena_new();
    return arena == NULL;
}

static int teardown(void **state)
{
    cm_arena_free(arena);
    return 0;
}

/* ---- types -------------------------------------------------------------- */

#define P(k) cm_prim(k)
static cm_field all_fields[13];
static cm_type t_all = {.kind = CM_RECORD, .n = 13, .f = all_fields};
static cm_type t_list_u16 = {.kind = CM_LIST};
static cm_type t_list_str = {.kind = CM_LIST};
static cm_type t_opt_u32 = {.kind = CM_OPTION};
static cm_type t_opt_f32 = {.kind = CM_OPTION};
static cm_field enum_labels[3] = {{"a", NULL}, {"b", NULL}, {"c", NULL}};
static cm_type t_enum = {.kind = CM_ENUM, .n = 3, .f = enum_labels};
static cm_type t_flags3 = {.kind = CM_FLAGS, .n = 3, .f = enum_labels};
static cm_field var_cases[4];
static cm_type t_var = {.kind = CM_VARIANT, .n = 4, .f = var_cases};
static cm_field err_cases[3];
static cm_type t_herr = {.kind = CM_VARIANT, .n = 3, .f = err_cases};
static cm_type t_res = {.kind = CM_RESULT};
static cm_type t_res_u32_f32 = {.kind = CM_RESULT};
static cm_field tup_fields[2];
static cm_type t_tuple = {.kind = CM_TUPLE, .n = 2, .f = tup_fields};

static void init_types(void)
{
    static const cm_kind ks[13] = {CM_BOOL, CM_S8, CM_U8, CM_S16, CM_U16, CM_S32, CM_U32,
                                   CM_S64, CM_U64, CM_F32, CM_F64, CM_CHAR, CM_STRING};
    for (int i = 0; i < 13; i++)
        all_fields[i] = (cm_field){cm_kind_name(ks[i]), P(ks[i])};
    t_list_u16.elem = P(CM_U16);
    t_list_str.elem = P(CM_STRING);
    t_opt_u32.elem = P(CM_U32);
    t_opt_f32.elem = P(CM_F32);
    var_cases[0] = (cm_field){"a", P(CM_U32)};
    var_cases[1] = (cm_field){"b", P(CM_F32)};
    var_cases[2] = (cm_field){"c", P(CM_U64)};
    var_cases[3] = (cm_field){"d", NULL};
    err_cases[0] = (cm_field){"unsupported", &t_enum};
    err_cases[1] = (cm_field){"invalid", P(CM_STRING)};
    err_cases[2] = (cm_field){"failed", P(CM_STRING)};
    t_res.err = &t_herr;
    t_res_u32_f32.elem = P(CM_U32);
    t_res_u32_f32.err = P(CM_F32);
    tup_fields[0] = (cm_field){NULL, P(CM_U8)};
    tup_fields[1] = (cm_field){NULL, P(CM_STRING)};
}

static cm_val S(const char *s)
{
    return (cm_val){.kind = CM_STRING, .str = {s, (uint32_t)strlen(s)}};
}

static cm_val all_value(cm_val *fields)
{
    fields[0] = (cm_val){.kind = CM_BOOL, .b = true};
    fields[1] = (cm_val){.kind = CM_S8, .s = -128};
    fields[2] = (cm_val){.kind = CM_U8, .u = 255};
    fields[3] = (cm_val){.kind = CM_S16, .s = -2};
    fields[4] = (cm_val){.kind = CM_U16, .u = 65535};
    fields[5] = (cm_val){.kind = CM_S32, .s = INT32_MIN};
    fields[6] = (cm_val){.kind = CM_U32, .u = UINT32_MAX};
    fields[7] = (cm_val){.kind = CM_S64, .s = INT64_MIN};
    fields[8] = (cm_val){.kind = CM_U64, .u = UINT64_MAX};
    fields[9] = (cm_val){.kind = CM_F32, .f32 = 1.5f};
    fields[10] = (cm_val){.kind = CM_F64, .f64 = -0.25};
    fields[11] = (cm_val){.kind = CM_CHAR, .c = 0x1F600};
    fields[12] = S("h\xc3\xa9llo");
    return (cm_val){.kind = CM_RECORD, .agg = {fields, 13}};
}

static void check_all(const cm_val *v)
{
    assert_int_equal(v->kind, CM_RECORD);
    assert_int_equal(v->agg.n, 13);
    const cm_val *f = v->agg.v;
    assert_true(f[0].b);
    assert_int_equal(f[1].s, -128);
    assert_int_equal(f[2].u, 255);
    assert_int_equal(f[3].s, -2);
    assert_int_equal(f[4].u, 65535);
    assert_int_equal(f[5].s, INT32_MIN);
    assert_int_equal(f[6].u, UINT32_MAX);
    assert_true(f[7].s == INT64_MIN);
    assert_true(f[8].u == UINT64_MAX);
    assert_true(f[9].f32 == 1.5f);
    assert_true(f[10].f64 == -0.25);
    assert_int_equal(f[11].c, 0x1F600);
    assert_int_equal(f[12].str.len, 6);
    assert_memory_equal(f[12].str.p, "h\xc3\xa9llo", 6);
}

/* ---- layout and flattening ------------------------------------------------- */

static void test_layout(void **state)
{
    assert_int_equal(cm_size(&t_all), 64);
    assert_int_equal(cm_alignment(&t_all), 8);
    assert_int_equal(cm_size(&t_herr), 12);
    assert_int_equal(cm_alignment(&t_herr), 4);
    assert_int_equal(cm_size(&t_res), 16);
    assert_int_equal(cm_size(&t_opt_u32), 8);
    assert_int_equal(cm_size(&t_flags3), 1);
    assert_int_equal(cm_size(&t_tuple), 12);
    assert_int_equal(cm_size(&t_enum), 1);
    assert_int_equal(cm_size(&t_var), 16); /* u8 disc, u64 payload at 8 */
    assert_int_equal(cm_alignment(&t_var), 8);
    static cm_field many[300];
    for (int i = 0; i < 300; i++)
        many[i] = (cm_field){"x", NULL};
    cm_type big_enum = {.kind = CM_ENUM, .n = 300, .f = many};
    assert_int_equal(cm_size(&big_enum), 2);
    cm_type flags17 = {.kind = CM_FLAGS, .n = 17, .f = many};
    assert_int_equal(cm_size(&flags17), 4);
    cm_type flags9 = {.kind = CM_FLAGS, .n = 9, .f = many};
    assert_int_equal(cm_size(&flags9), 2);
}

static void test_flatten(void **state)
{
    char f[CM_MAX_FLAT + 1];
    uint32_t n = cm_flatten(&t_all, f, CM_MAX_FLAT);
    assert_int_equal(n, 14);
    assert_memory_equal(f, "iiiiiiijjfdiii", 14);
    n = cm_flatten(&t_var, f, CM_MAX_FLAT);
    assert_int_equal(n, 2);
    assert_memory_equal(f, "ij", 2); /* u32 / f32 / u64 join to i64 */
    n = cm_flatten(&t_opt_f32, f, CM_MAX_FLAT);
    assert_memory_equal(f, "if", 2);
    n = cm_flatten(&t_res_u32_f32, f, CM_MAX_FLAT);
    assert_int_equal(n, 2);
    assert_memory_equal(f, "ii", 2); /* i32 / f32 join to i32 */
    n = cm_flatten(&t_res, f, CM_MAX_FLAT);
    assert_memory_equal(f, "iiii", 4);
    assert_int_equal(cm_flatten(&t_all, f, 10), 11); /* over max: max + 1 */
}

/* ---- store / load round trips ---------------------------------------------- */

static void test_store_load_all_primitives(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    cm_val fields[13], out;
    cm_val v = all_value(fields);
    assert_int_equal(cm_store(&cx, &v, &t_all, 64), KILN_OK);
    /* Spot-check the bytes: bool @64, s16 @68, s64 @80, char @112, string @116. */
    assert_int_equal(mem[64], 1);
    assert_int_equal(mem[65], 0x80);
    assert_int_equal(mem[68] | mem[69] << 8, 0xFFFE);
    assert_int_equal(mem[112] | mem[113] << 8 | mem[114] << 16, 0x1F600);
    uint32_t sp, sl;
    memcpy(&sp, mem + 116, 4);
    memcpy(&sl, mem + 120, 4);
    assert_int_equal(sl, 6);
    assert_memory_equal(mem + sp, "h\xc3\xa9llo", 6);
    assert_int_equal(cm_load(&cx, 64, &t_all, &out), KILN_OK);
    check_all(&out);
}

static void test_store_load_compound(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    cm_val out;
    /* list<u16> */
    cm_val items[3] = {{.kind = CM_U16, .u = 1}, {.kind = CM_U16, .u = 2}, {.kind = CM_U16, .u = 65535}};
    cm_val l = {.kind = CM_LIST, .agg = {items, 3}};
    assert_int_equal(cm_store(&cx, &l, &t_list_u16, 0), KILN_OK);
    assert_int_equal(cm_load(&cx, 0, &t_list_u16, &out), KILN_OK);
    assert_int_equal(out.agg.n, 3);
    assert_int_equal(out.agg.v[2].u, 65535);
    /* list<string>, empty list */
    cm_val strs[2] = {S("a"), S("")};
    cm_val ls = {.kind = CM_LIST, .agg = {strs, 2}};
    assert_int_equal(cm_store(&cx, &ls, &t_list_str, 8), KILN_OK);
    assert_int_equal(cm_load(&cx, 8, &t_list_str, &out), KILN_OK);
    assert_int_equal(out.agg.n, 2);
    assert_int_equal(out.agg.v[0].str.len, 1);
    assert_int_equal(out.agg.v[1].str.len, 0);
    cm_val empty = {.kind = CM_LIST, .agg = {NULL, 0}};
    assert_int_equal(cm_store(&cx, &empty, &t_list_u16, 16), KILN_OK);
    assert_int_equal(cm_load(&cx, 16, &t_list_u16, &out), KILN_OK);
    assert_int_equal(out.agg.n, 0);
    /* tuple<u8, string> */
    cm_val tf[2] = {{.kind = CM_U8, .u = 7}, S("xy")};
    cm_val tup = {.kind = CM_TUPLE, .agg = {tf, 2}};
    assert_int_equal(cm_store(&cx, &tup, &t_tuple, 24), KILN_OK);
    assert_int_equal(cm_load(&cx, 24, &t_tuple, &out), KILN_OK);
    assert_int_equal(out.agg.v[0].u, 7);
    assert_memory_equal(out.agg.v[1].str.p, "xy", 2);
    /* variant: each case, and the payload position */
    cm_val pay = {.kind = CM_U64, .u = 0x1122334455667788ULL};
    cm_val var = {.kind = CM_VARIANT, .var = {2, &pay}};
    assert_int_equal(cm_store(&cx, &var, &t_var, 40), KILN_OK);
    assert_int_equal(mem[40], 2);
    assert_int_equal(mem[48], 0x88);
    assert_int_equal(cm_load(&cx, 40, &t_var, &out), KILN_OK);
    assert_int_equal(out.var.index, 2);
    assert_true(out.var.payload->u == 0x1122334455667788ULL);
    cm_val none_case = {.kind = CM_VARIANT, .var = {3, NULL}};
    assert_int_equal(cm_store(&cx, &none_case, &t_var, 40), KILN_OK);
    assert_int_equal(cm_load(&cx, 40, &t_var, &out), KILN_OK);
    assert_int_equal(out.var.index, 3);
    assert_null(out.var.payload);
    /* enum, flags */
    cm_val e = {.kind = CM_ENUM, .var = {2, NULL}};
    assert_int_equal(cm_store(&cx, &e, &t_enum, 60), KILN_OK);
    assert_int_equal(cm_load(&cx, 60, &t_enum, &out), KILN_OK);
    assert_int_equal(out.var.index, 2);
    cm_val fl = {.kind = CM_FLAGS, .flags = 5};
    assert_int_equal(cm_store(&cx, &fl, &t_flags3, 61), KILN_OK);
    assert_int_equal(mem[61], 5);
    mem[61] = 0xFD; /* bits past the labels are ignored on lift */
    assert_int_equal(cm_load(&cx, 61, &t_flags3, &out), KILN_OK);
    assert_int_equal(out.flags, 5);
    /* option<u32>: none and some */
    cm_val v42 = {.kind = CM_U32, .u = 42};
    cm_val some = {.kind = CM_OPTION, .var = {1, &v42}};
    assert_int_equal(cm_store(&cx, &some, &t_opt_u32, 64), KILN_OK);
    assert_int_equal(cm_load(&cx, 64, &t_opt_u32, &out), KILN_OK);
    assert_int_equal(out.var.index, 1);
    assert_int_equal(out.var.payload->u, 42);
    /* result<_, handler-error>: error(invalid("bad")) */
    cm_val msg = S("bad");
    cm_val herr = {.kind = CM_VARIANT, .var = {1, &msg}};
    cm_val res = {.kind = CM_RESULT, .var = {1, &herr}};
    assert_int_equal(cm_store(&cx, &res, &t_res, 72), KILN_OK);
    assert_int_equal(mem[72], 1);
    assert_int_equal(mem[76], 1);
    assert_int_equal(cm_load(&cx, 72, &t_res, &out), KILN_OK);
    assert_int_equal(out.var.index, 1);
    assert_int_equal(out.var.payload->var.index, 1);
    assert_memory_equal(out.var.payload->var.payload->str.p, "bad", 3);
}

static void test_nan_canonical(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    uint32_t snan = 0x7f800001, bits;
    float f;
    memcpy(&f, &snan, 4);
    cm_val v = {.kind = CM_F32, .f32 = f};
    assert_int_equal(cm_store(&cx, &v, P(CM_F32), 0), KILN_OK);
    memcpy(&bits, mem, 4);
    assert_int_equal(bits, 0x7fc00000);
    memcpy(mem, &snan, 4);
    cm_val out;
    assert_int_equal(cm_load(&cx, 0, P(CM_F32), &out), KILN_OK);
    memcpy(&bits, &out.f32, 4);
    assert_int_equal(bits, 0x7fc00000);
    uint64_t dn = 0xfff0000000000001ULL, dbits;
    memcpy(mem, &dn, 8);
    assert_int_equal(cm_load(&cx, 0, P(CM_F64), &out), KILN_OK);
    memcpy(&dbits, &out.f64, 8);
    assert_true(dbits == 0x7ff8000000000000ULL);
    cm_flat in = {.t = 'f'};
    memcpy(&in.v.f32, &snan, 4);
    uint32_t pos = 0;
    assert_int_equal(cm_lift_flat(&cx, &in, 1, &pos, P(CM_F32), &out), KILN_OK);
    memcpy(&bits, &out.f32, 4);
    assert_int_equal(bits, 0x7fc00000);
}

/* ---- strings in the three encodings ----------------------------------------- */

static void test_strings_utf16(void **state)
{
    cm_cx cx = cx_for(CM_UTF16);
    cm_val s = S("a\xf0\x9f\x98\x80"); /* a, U+1F600 */
    assert_int_equal(cm_store(&cx, &s, P(CM_STRING), 0), KILN_OK);
    uint32_t p, units;
    memcpy(&p, mem, 4);
    memcpy(&units, mem + 4, 4);
    assert_int_equal(units, 3);
    assert_int_equal(p % 2, 0);
    assert_int_equal(mem[p] | mem[p + 1] << 8, 'a');
    assert_int_equal(mem[p + 2] | mem[p + 3] << 8, 0xD83D);
    assert_int_equal(mem[p + 4] | mem[p + 5] << 8, 0xDE00);
    cm_val out;
    assert_int_equal(cm_load(&cx, 0, P(CM_STRING), &out), KILN_OK);
    assert_int_equal(out.str.len, 5);
    assert_memory_equal(out.str.p, "a\xf0\x9f\x98\x80", 5);
    /* unpaired surrogates trap: a lone high one, and a lone low one */
    mem[p + 4] = 'x';
    mem[p + 5] = 0;
    assert_int_equal(cm_load(&cx, 0, P(CM_STRING), &out), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "unpaired UTF-16 surrogate"));
    mem[p + 2] = 0x00;
    mem[p + 3] = 0xDC;
    assert_int_equal(cm_load(&cx, 0, P(CM_STRING), &out), KILN_ETRAP);
    /* misaligned UTF-16 string */
    uint32_t odd = p + 1;
    memcpy(mem, &odd, 4);
    assert_int_equal(cm_load(&cx, 0, P(CM_STRING), &out), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "not aligned to 2"));
}

static void test_strings_latin1_utf16(void **state)
{
    cm_cx cx = cx_for(CM_LATIN1_UTF16);
    cm_val s = S("h\xc3\xa9llo"); /* all Latin-1 */
    assert_int_equal(cm_store(&cx, &s, P(CM_STRING), 0), KILN_OK);
    uint32_t p, units;
    memcpy(&p, mem, 4);
    memcpy(&units, mem + 4, 4);
    assert_int_equal(units, 5); /* untagged: Latin-1 */
    assert_memory_equal(mem + p, "h\xe9llo", 5);
    cm_val out;
    assert_int_equal(cm_load(&cx, 0, P(CM_STRING), &out), KILN_OK);
    assert_int_equal(out.str.len, 6);
    assert_memory_equal(out.str.p, "h\xc3\xa9llo", 6);
    /* one scalar past Latin-1 switches to UTF-16 with the tag, inflating
     * what was already written */
    cm_val e = S("\xc3\xa9\xe2\x82\xac!"); /* é € ! */
    assert_int_equal(cm_store(&cx, &e, P(CM_STRING), 8), KILN_OK);
    memcpy(&p, mem + 8, 4);
    memcpy(&units, mem + 12, 4);
    assert_int_equal(units, 3 | CM_UTF16_TAG);
    assert_int_equal(mem[p] | mem[p + 1] << 8, 0xE9);
    assert_int_equal(mem[p + 2] | mem[p + 3] << 8, 0x20AC);
    assert_int_equal(mem[p + 4] | mem[p + 5] << 8, '!');
    assert_int_equal(cm_load(&cx, 8, P(CM_STRING), &out), KILN_OK);
    assert_int_equal(out.str.len, 6);
    assert_memory_equal(out.str.p, "\xc3\xa9\xe2\x82\xac!", 6);
}

static void test_strings_utf8_traps(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    cm_val out;
    static const char *const bad_utf8[] = {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
                                           "\x80"};
    for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
        uint32_t p = 100, n = (uint32_t)strlen(bad_utf8[i]);
        memcpy(mem + p, bad_utf8[i], n);
        memcpy(mem, &p, 4);
        memcpy(mem + 4, &n, 4);
        assert_int_equal(cm_load(&cx, 0, P(CM_STRING), &out), KILN_ETRAP);
        assert_non_null(strstr(err.msg, "not valid UTF-8"));
    }
    /* out of bounds */
    uint32_t p = MEM - 2, n = 3;
    memcpy(mem, &p, 4);
    memcpy(mem + 4, &n, 4);
    assert_int_equal(cm_load(&cx, 0, P(CM_STRING), &out), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "out of bounds"));
    /* a length that wraps past 2^32 */
    p = 16;
    n = 0xFFFFFFFF;
    memcpy(mem, &p, 4);
    memcpy(mem + 4, &n, 4);
    assert_int_equal(cm_load(&cx, 0, P(CM_STRING), &out), KILN_ETRAP);
    /* a host string that is not UTF-8 is the caller's error */
    cm_val bad = {.kind = CM_STRING, .str = {"\xff", 1}};
    assert_int_equal(cm_store(&cx, &bad, P(CM_STRING), 0), KILN_EINVAL);
}

/* ---- trap conditions ------------------------------------------------------- */

static void test_traps(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    cm_val out;
    uint32_t w;
    /* invalid char: surrogate and past U+10FFFF */
    w = 0xD800;
    memcpy(mem, &w, 4);
    assert_int_equal(cm_load(&cx, 0, P(CM_CHAR), &out), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "not a Unicode scalar value"));
    w = 0x110000;
    memcpy(mem, &w, 4);
    assert_int_equal(cm_load(&cx, 0, P(CM_CHAR), &out), KILN_ETRAP);
    cm_flat fc = {.t = 'i', .v.i32 = 0xDFFF};
    uint32_t pos = 0;
    assert_int_equal(cm_lift_flat(&cx, &fc, 1, &pos, P(CM_CHAR), &out), KILN_ETRAP);
    /* discriminants out of range: variant, enum, option, result */
    mem[0] = 4;
    assert_int_equal(cm_load(&cx, 0, &t_var, &out), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "discriminant 4 out of range"));
    mem[0] = 3;
    assert_int_equal(cm_load(&cx, 0, &t_enum, &out), KILN_ETRAP);
    mem[0] = 2;
    assert_int_equal(cm_load(&cx, 0, &t_opt_u32, &out), KILN_ETRAP);
    assert_int_equal(cm_load(&cx, 0, &t_res, &out), KILN_ETRAP);
    cm_flat fv[2] = {{.t = 'i', .v.i32 = 9}, {.t = 'j'}};
    pos = 0;
    assert_int_equal(cm_lift_flat(&cx, fv, 2, &pos, &t_var, &out), KILN_ETRAP);
    /* misaligned list pointer (list<u16> at an odd address) and out of bounds */
    uint32_t lp[2] = {3, 2};
    memcpy(mem, lp, 8);
    assert_int_equal(cm_load(&cx, 0, &t_list_u16, &out), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "not aligned"));
    lp[0] = MEM - 2;
    memcpy(mem, lp, 8);
    assert_int_equal(cm_load(&cx, 0, &t_list_u16, &out), KILN_ETRAP);
    lp[0] = 0;
    lp[1] = 0x80000000u; /* length * 2 overflows 32 bits */
    memcpy(mem, lp, 8);
    assert_int_equal(cm_load(&cx, 0, &t_list_u16, &out), KILN_ETRAP);
    /* a load past the end of memory */
    assert_int_equal(cm_load(&cx, MEM - 4, &t_all, &out), KILN_ETRAP);
    /* realloc: misaligned result, out-of-bounds result, a trapping realloc */
    cm_val s = S("hello");
    cx = cx_for(CM_UTF16);
    realloc_mode = 1;
    assert_int_equal(cm_store(&cx, &s, P(CM_STRING), 0), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "realloc result pointer"));
    realloc_mode = 2;
    assert_int_equal(cm_store(&cx, &s, P(CM_STRING), 0), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "out of bounds"));
    realloc_mode = 3;
    assert_int_equal(cm_store(&cx, &s, P(CM_STRING), 0), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "guest realloc trapped"));
    cx.realloc = NULL;
    realloc_mode = 0;
    assert_int_equal(cm_store(&cx, &s, P(CM_STRING), 0), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "no realloc"));
    /* host values out of range are refused, not truncated */
    cx = cx_for(CM_UTF8);
    cm_val big = {.kind = CM_U8, .u = 256};
    assert_int_equal(cm_store(&cx, &big, P(CM_U8), 0), KILN_EINVAL);
    cm_val neg = {.kind = CM_S16, .s = -40000};
    cm_flat fo[1];
    pos = 0;
    assert_int_equal(cm_lower_flat(&cx, &neg, P(CM_S16), fo, 1, &pos), KILN_EINVAL);
    cm_val badc = {.kind = CM_CHAR, .c = 0xD800};
    assert_int_equal(cm_store(&cx, &badc, P(CM_CHAR), 0), KILN_EINVAL);
    cm_val fl = {.kind = CM_FLAGS, .flags = 8};
    assert_int_equal(cm_store(&cx, &fl, &t_flags3, 0), KILN_EINVAL);
    cm_val wrong = {.kind = CM_U32, .u = 1};
    assert_int_equal(cm_store(&cx, &wrong, P(CM_STRING), 0), KILN_EINVAL);
}

/* ---- flat lowering and lifting ---------------------------------------------- */

static void test_flat_ints_and_bool(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    cm_val out;
    /* lift_flat_unsigned/signed take the low bits of the core value */
    cm_flat f = {.t = 'i', .v.i32 = 0x1FF};
    uint32_t pos = 0;
    assert_int_equal(cm_lift_flat(&cx, &f, 1, &pos, P(CM_U8), &out), KILN_OK);
    assert_int_equal(out.u, 255);
    pos = 0;
    assert_int_equal(cm_lift_flat(&cx, &f, 1, &pos, P(CM_S8), &out), KILN_OK);
    assert_int_equal(out.s, -1);
    f.v.i32 = 0xFFFF8000;
    pos = 0;
    assert_int_equal(cm_lift_flat(&cx, &f, 1, &pos, P(CM_S16), &out), KILN_OK);
    assert_int_equal(out.s, -32768);
    f.v.i32 = 2; /* any non-zero is true */
    pos = 0;
    assert_int_equal(cm_lift_flat(&cx, &f, 1, &pos, P(CM_BOOL), &out), KILN_OK);
    assert_true(out.b);
    /* a core value of the wrong type is refused */
    f.t = 'j';
    pos = 0;
    assert_int_equal(cm_lift_flat(&cx, &f, 1, &pos, P(CM_U32), &out), KILN_EINVAL);
    cm_val neg = {.kind = CM_S32, .s = -5};
    cm_flat o[2];
    pos = 0;
    assert_int_equal(cm_lower_flat(&cx, &neg, P(CM_S32), o, 2, &pos), KILN_OK);
    assert_int_equal(o[0].t, 'i');
    assert_int_equal(o[0].v.i32, 0xFFFFFFFB);
}

static void test_flat_variant_join(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    cm_val out;
    cm_flat o[4];
    uint32_t pos = 0;
    cm_val f = {.kind = CM_F32, .f32 = 1.5f};
    cm_val v = {.kind = CM_VARIANT, .var = {1, &f}};
    assert_int_equal(cm_lower_flat(&cx, &v, &t_var, o, 4, &pos), KILN_OK);
    assert_int_equal(pos, 2);
    assert_int_equal(o[0].v.i32, 1);
    assert_int_equal(o[1].t, 'j');
    uint32_t bits;
    memcpy(&bits, &f.f32, 4);
    assert_true(o[1].v.i64 == bits); /* f32 bits, zero-extended into the i64 slot */
    uint32_t p = 0;
    assert_int_equal(cm_lift_flat(&cx, o, 2, &p, &t_var, &out), KILN_OK);
    assert_int_equal(out.var.index, 1);
    assert_true(out.var.payload->f32 == 1.5f);
    /* the payload-less case pads with a zero of the joined type */
    cm_val d = {.kind = CM_VARIANT, .var = {3, NULL}};
    pos = 0;
    assert_int_equal(cm_lower_flat(&cx, &d, &t_var, o, 4, &pos), KILN_OK);
    assert_int_equal(pos, 2);
    assert_true(o[1].t == 'j' && o[1].v.i64 == 0);
    /* result<u32, f32>: the f32 error through the i32 slot */
    cm_val e = {.kind = CM_F32, .f32 = -2.0f};
    cm_val r = {.kind = CM_RESULT, .var = {1, &e}};
    pos = 0;
    assert_int_equal(cm_lower_flat(&cx, &r, &t_res_u32_f32, o, 4, &pos), KILN_OK);
    assert_int_equal(o[1].t, 'i');
    p = 0;
    assert_int_equal(cm_lift_flat(&cx, o, 2, &p, &t_res_u32_f32, &out), KILN_OK);
    assert_true(out.var.payload->f32 == -2.0f);
    /* strings flat: pointer and length into memory through realloc */
    cm_val s = S("abc");
    pos = 0;
    assert_int_equal(cm_lower_flat(&cx, &s, P(CM_STRING), o, 4, &pos), KILN_OK);
    assert_int_equal(pos, 2);
    assert_int_equal(o[1].v.i32, 3);
    assert_memory_equal(mem + o[0].v.i32, "abc", 3);
    p = 0;
    assert_int_equal(cm_lift_flat(&cx, o, 2, &p, P(CM_STRING), &out), KILN_OK);
    assert_memory_equal(out.str.p, "abc", 3);
}

/* ---- parameters and results of a lifted export --------------------------------- */

static void test_params_flat_and_spilled(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    cm_flat o[CM_MAX_FLAT_PARAMS];
    uint32_t n;
    /* echo(v: all): 14 flat values, under the limit */
    cm_field p1[1] = {{"v", &t_all}};
    cm_type ft = {.kind = CM_FUNC, .n = 1, .f = p1, .elem = &t_all};
    cm_val fields[13];
    cm_val arg = all_value(fields);
    assert_int_equal(cm_lower_params(&cx, &ft, &arg, o, &n), KILN_OK);
    assert_int_equal(n, 14);
    assert_int_equal(o[7].t, 'j');
    assert_int_equal(o[12].t, 'i');
    assert_memory_equal(mem + o[12].v.i32, "h\xc3\xa9llo", 6);
    /* 17 u32 parameters: spilled as a tuple into realloc'd memory */
    cm_field p17[17];
    cm_val a17[17];
    for (int i = 0; i < 17; i++) {
        p17[i] = (cm_field){"x", P(CM_U32)};
        a17[i] = (cm_val){.kind = CM_U32, .u = (uint64_t)i * 3};
    }
    cm_type ft17 = {.kind = CM_FUNC, .n = 17, .f = p17};
    int calls = realloc_calls;
    assert_int_equal(cm_lower_params(&cx, &ft17, a17, o, &n), KILN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(realloc_calls, calls + 1);
    uint32_t p = o[0].v.i32, x;
    assert_int_equal(p % 4, 0);
    memcpy(&x, mem + p + 16 * 4, 4);
    assert_int_equal(x, 48);
}

/* list<u8> given as raw bytes (cm_val.bytes): stored and lowered flat as the
 * element-by-element form would be, and refused for other element types. */
static void test_byte_lists(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    cm_type t_bytes = {.kind = CM_LIST, .elem = P(CM_U8), .depth = 2, .nodes = 2};
    cm_type t_u32s = {.kind = CM_LIST, .elem = P(CM_U32), .depth = 2, .nodes = 2};
    cm_val v = {.kind = CM_LIST, .bytes = true};
    v.str.p = "a\0b\xff";
    v.str.len = 4;
    /* in memory */
    assert_int_equal(cm_store(&cx, &v, &t_bytes, 16), KILN_OK);
    uint32_t p, n;
    memcpy(&p, mem + 16, 4);
    memcpy(&n, mem + 20, 4);
    assert_int_equal(n, 4);
    assert_memory_equal(mem + p, "a\0b\xff", 4);
    cm_val back;
    assert_int_equal(cm_load(&cx, 16, &t_bytes, &back), KILN_OK);
    /* lifted back as raw bytes too (one host byte per guest byte) */
    assert_true(back.bytes);
    assert_int_equal(cm_list_len(&back), 4);
    assert_memory_equal(back.str.p, "a\0b\xff", 4);
    assert_int_equal(cm_list_byte(&back, 3), 0xff);
    /* flat, as a parameter */
    cm_flat o[CM_MAX_FLAT_PARAMS];
    uint32_t nf;
    cm_field p1[1] = {{"b", &t_bytes}};
    cm_type ft = {.kind = CM_FUNC, .n = 1, .f = p1};
    assert_int_equal(cm_lower_params(&cx, &ft, &v, o, &nf), KILN_OK);
    assert_int_equal(nf, 2);
    assert_int_equal(o[1].v.i32, 4);
    assert_memory_equal(mem + o[0].v.i32, "a\0b\xff", 4);
    /* empty */
    v.str.len = 0;
    assert_int_equal(cm_lower_params(&cx, &ft, &v, o, &nf), KILN_OK);
    assert_int_equal(o[1].v.i32, 0);
    /* not a list<u8> */
    v.str.len = 4;
    assert_int_equal(cm_store(&cx, &v, &t_u32s, 16), KILN_EINVAL);
    cm_field p2[1] = {{"b", &t_u32s}};
    cm_type ft2 = {.kind = CM_FUNC, .n = 1, .f = p2};
    assert_int_equal(cm_lower_params(&cx, &ft2, &v, o, &nf), KILN_EINVAL);
}

static void test_results(void **state)
{
    cm_cx cx = cx_for(CM_UTF8);
    cm_val out, fields[13];
    cm_val v = all_value(fields);
    cm_type ft = {.kind = CM_FUNC, .elem = &t_all};
    assert_true(cm_results_spill(&ft));
    assert_int_equal(cm_store(&cx, &v, &t_all, 256), KILN_OK);
    cm_flat r = {.t = 'i', .v.i32 = 256};
    assert_int_equal(cm_lift_results(&cx, &ft, &r, 1, &out), KILN_OK);
    check_all(&out);
    r.v.i32 = 260; /* misaligned for an 8-aligned record */
    assert_int_equal(cm_lift_results(&cx, &ft, &r, 1, &out), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "result pointer 260 is not aligned to 8"));
    r.v.i32 = MEM - 8;
    assert_int_equal(cm_lift_results(&cx, &ft, &r, 1, &out), KILN_ETRAP);
    /* one flat result */
    cm_type fs32 = {.kind = CM_FUNC, .elem = P(CM_S32)};
    assert_false(cm_results_spill(&fs32));
    r.v.i32 = (uint32_t)-7;
    assert_int_equal(cm_lift_results(&cx, &fs32, &r, 1, &out), KILN_OK);
    assert_int_equal(out.s, -7);
    /* no result */
    cm_type fnone = {.kind = CM_FUNC};
    assert_int_equal(cm_lift_results(&cx, &fnone, NULL, 0, &out), KILN_OK);
    assert_int_equal(cm_lift_results(&cx, &fnone, &r, 1, &out), KILN_EINVAL);
}

static void test_unsupported(void **state)
{
    cm_type res = {.kind = CM_RESOURCE};
    cm_type stream = {.kind = CM_STREAM, .elem = &res};
    cm_type lst = {.kind = CM_LIST, .elem = &stream};
    kiln_err e = {0};
    assert_int_equal(cm_check_supported(&lst, &e), KILN_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "stream"));
    assert_int_equal(cm_check_supported(&t_all, &e), KILN_OK);
    assert_int_equal(cm_check_supported(&t_res, &e), KILN_OK);
    /* own/borrow are supported through cx->handle; without one they are refused. */
    cm_type own = {.kind = CM_OWN, .elem = &res};
    assert_int_equal(cm_check_supported(&own, &e), KILN_OK);
    cm_cx cx = {.err = &e};
    cm_val v = {.kind = CM_OWN, .u = 7};
    cm_flat out[1];
    uint32_t pos = 0;
    assert_int_equal(cm_lower_flat(&cx, &v, &own, out, 1, &pos), KILN_EUNSUPPORTED);
}

/* The handle table: resource.new/rep/drop and every trap. */
static void test_resource_handles(void **state)
{
    cm_type r1 = {.kind = CM_RESOURCE, .id = 1, .name = "stream"};
    cm_type r1_alias = {.kind = CM_RESOURCE, .id = 1, .name = "stream"};
    cm_type r2 = {.kind = CM_RESOURCE, .id = 2, .name = "pollable"};
    cm_handles t = {0};
    kiln_err e = {0};
    uint32_t h1, h2, h3;
    cm_handle *p;
    cm_handle out;
    assert_int_equal(cm_handles_add(&t, &r1, 42, true, &h1, &e), KILN_OK);
    assert_int_equal(h1, 1); /* handle 0 is never valid */
    assert_int_equal(cm_handles_add(&t, &r2, 43, false, &h2, &e), KILN_OK);
    assert_int_equal(cm_handles_get(&t, h1, &r1_alias, &p, &e), KILN_OK); /* same id */
    assert_int_equal(p->rep, 42);
    /* wrong type */
    assert_int_equal(cm_handles_get(&t, h1, &r2, &p, &e), KILN_ETRAP);
    assert_non_null(strstr(e.msg, "not a pollable"));
    /* handle 0 and unknown handles */
    assert_int_equal(cm_handles_get(&t, 0, &r1, &p, &e), KILN_ETRAP);
    assert_int_equal(cm_handles_get(&t, 99, &r1, &p, &e), KILN_ETRAP);
    /* drop while lent out */
    assert_int_equal(cm_handles_get(&t, h1, &r1, &p, &e), KILN_OK);
    p->lends = 1;
    assert_int_equal(cm_handles_remove(&t, h1, &r1, &out, &e), KILN_ETRAP);
    assert_non_null(strstr(e.msg, "borrow"));
    p->lends = 0;
    assert_int_equal(cm_handles_remove(&t, h1, &r1, &out, &e), KILN_OK);
    assert_int_equal(out.rep, 42);
    assert_true(out.own);
    /* use after drop, double drop */
    assert_int_equal(cm_handles_get(&t, h1, &r1, &p, &e), KILN_ETRAP);
    assert_non_null(strstr(e.msg, "not live"));
    assert_int_equal(cm_handles_remove(&t, h1, &r1, &out, &e), KILN_ETRAP);
    /* the slot is reused */
    assert_int_equal(cm_handles_add(&t, &r1, 44, true, &h3, &e), KILN_OK);
    assert_int_equal(h3, h1);
    assert_int_equal(cm_handles_remove(&t, h2, &r2, &out, &e), KILN_OK);
    assert_false(out.own);
    /* A borrow lowered into a call counts in the call's scope until it is
     * dropped; a borrow lent on to another call cannot be dropped either. */
    uint32_t scope = 1, hb;
    assert_int_equal(cm_handles_add(&t, &r2, 45, false, &hb, &e), KILN_OK);
    assert_int_equal(cm_handles_get(&t, hb, &r2, &p, &e), KILN_OK);
    p->scope = &scope;
    p->lends = 1;
    assert_int_equal(cm_handles_remove(&t, hb, &r2, &out, &e), KILN_ETRAP);
    assert_non_null(strstr(e.msg, "borrow"));
    assert_int_equal(scope, 1);
    p->lends = 0;
    assert_int_equal(cm_handles_remove(&t, hb, &r2, &out, &e), KILN_OK);
    assert_int_equal(scope, 0);
    cm_handles_free(&t);
}

int main(void)
{
    init_types();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_store_load_all_primitives),
        cmocka_unit_test(test_store_load_compound),
        cmocka_unit_test(test_nan_canonical),
        cmocka_unit_test(test_strings_utf16),
        cmocka_unit_test(test_strings_latin1_utf16),
        cmocka_unit_test(test_strings_utf8_traps),
        cmocka_unit_test(test_traps),
        cmocka_unit_test(test_flat_ints_and_bool),
        cmocka_unit_test(test_flat_variant_join),
        cmocka_unit_test(test_params_flat_and_spilled),
        cmocka_unit_test(test_byte_lists),
        cmocka_unit_test(test_results),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_resource_handles),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
