/*
 * descriptor.h - the contract between a compiled artifact and the loader.
 *
 * Kiln's AOT step (src/aot/descriptor_gen.c) writes, next to wasm2c's output,
 * a C file that includes this header, defines one shim per import (calling
 * through the instance's kiln_link) and one trampoline per exported function,
 * and exports a single symbol KILN_DESCRIPTOR_SYMBOL. The loader
 * (src/runtime/module.c) dlsym()s it, checks abi_version and never parses
 * headers at run time. This file is embedded verbatim into every artifact, so
 * bump KILN_RT_ABI_VERSION on any change to it (it is part of the cache key).
 */
#ifndef KILN_DESCRIPTOR_H
#define KILN_DESCRIPTOR_H

#include <stdint.h>
#include <wasm-rt.h>

#define KILN_RT_ABI_VERSION 3
#define KILN_DESCRIPTOR_SYMBOL "kiln_artifact_descriptor"

#ifdef __TINYC__
/*
 * tcc 0.9.27 (the fast tier, docs/internals/aot.md "Tiers") has none of the
 * bit builtins that wasm2c 1.0.32's generated code calls unconditionally
 * (I32_CLZ ... I64_POPCNT in gen.c); an artifact built without these fails
 * to load with "undefined symbol: __builtin_clz". Kiln passes tcc
 * `-include kiln_descriptor.h`, so gen.c sees them as well as desc.c. The
 * generated code calls clz/ctz only with a non-zero argument. Everything
 * else wasm-rt.h uses (__builtin_expect, memcpy, unreachable) sits behind
 * __has_builtin, which tcc lacks, so wasm-rt.h already falls back to
 * (x), memcpy and abort; these definitions cover a later wasm-rt.h that
 * calls them directly.
 */
#include <stdlib.h>
#include <string.h>

static inline int kiln__clz64(uint64_t x)
{
    int n = 0;
    if (!(x >> 32)) { n += 32; x <<= 32; }
    if (!(x >> 48)) { n += 16; x <<= 16; }
    if (!(x >> 56)) { n += 8; x <<= 8; }
    if (!(x >> 60)) { n += 4; x <<= 4; }
    if (!(x >> 62)) { n += 2; x <<= 2; }
    if (!(x >> 63)) { n += 1; }
    return n;
}

static inline int kiln__ctz64(uint64_t x)
{
    return 63 - kiln__clz64(x & (0 - x)); /* the lowest set bit alone */
}

static inline int kiln__popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

/* f32.neg / f64.neg: a sign flip, also of NaNs (tcc's -x subtracts; see
 * tcc_fix_neg in src/aot/compile.c, which routes gen.c's negations here). */
static inline float kiln__fneg32(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    u ^= 0x80000000u;
    memcpy(&x, &u, sizeof(x));
    return x;
}

static inline double kiln__fneg64(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof(u));
    u ^= 0x8000000000000000ULL;
    memcpy(&x, &u, sizeof(x));
    return x;
}

#define __builtin_clz(x) (kiln__clz64((uint32_t)(x)) - 32)
#define __builtin_clzl(x) kiln__clz64((uint64_t)(x))
#define __builtin_clzll(x) kiln__clz64((uint64_t)(x))
#define __builtin_ctz(x) kiln__ctz64((uint32_t)(x))
#define __builtin_ctzl(x) kiln__ctz64((uint64_t)(x))
#define __builtin_ctzll(x) kiln__ctz64((uint64_t)(x))
#define __builtin_popcount(x) kiln__popcount64((uint32_t)(x))
#define __builtin_popcountl(x) kiln__popcount64((uint64_t)(x))
#define __builtin_popcountll(x) kiln__popcount64((uint64_t)(x))
#define __builtin_unreachable() abort()
#define __builtin_memcpy memcpy
#define __builtin_memset memset
#define __builtin_memmove memmove
#endif

/* One resolved import: a function pointer called as fn(ctx, args...), or for
 * non-function imports the object pointer in ctx. `host` is set for host
 * functions: the shim brackets their calls with the two runtime entries
 * below, which trap when less than the host headroom of stack is left and
 * keep deadlines from unwinding through host code. */
typedef struct kiln_slot {
    void (*fn)(void);
    void *ctx;
    uintptr_t host;
} kiln_slot;

__attribute__((visibility("default"))) void wasm_rt_kiln_host_enter(void);
__attribute__((visibility("default"))) void wasm_rt_kiln_host_leave(void);

/*
 * Per-instance import bindings. Every import-module pointer field of the
 * wasm2c instance points here. wasm2c 1.0.32 passes an imported function
 * placed in a table the *address of* that field instead of its value, so the
 * shim tells the two apart by `self`, which always points to the link itself.
 */
typedef struct kiln_link {
    struct kiln_link *self;
    void *owner; /* the kiln_instance */
    kiln_slot slots[];
} kiln_link;

static inline kiln_link *kiln_link_of(void *p)
{
    kiln_link *l = (kiln_link *)p;
    return l->self == l ? l : *(kiln_link **)p;
}

typedef union kiln_desc_value {
    uint32_t i32;
    uint64_t i64;
    float f32;
    double f64;
    void *ref;
} kiln_desc_value;

typedef void (*kiln_trampoline)(void *wasm_instance, const kiln_desc_value *args,
                                kiln_desc_value *results);

typedef struct kiln_desc_import {
    const char *module; /* original names, octal-escaped in the source */
    uint32_t module_len;
    const char *name;
    uint32_t name_len;
    uint32_t kind;    /* kiln_extern_kind */
    const char *type; /* see runtime.h kiln_extern_info */
    const uint32_t **tag_var; /* tags only: the artifact's imported-tag variable */
} kiln_desc_import;

typedef struct kiln_desc_export {
    const char *name;
    uint32_t name_len;
    uint32_t kind;
    const char *type;
    void (*func)(void);                 /* functions: R f(instance, args...) */
    kiln_trampoline call;               /* functions: typed trampoline */
    void *(*object)(void *wasm_instance); /* memory/table/global accessor; tag: returns tag ptr */
} kiln_desc_export;

typedef struct kiln_descriptor {
    uint32_t abi_version;
    uint32_t instance_size;
    uint32_t n_imports;
    uint32_t n_exports;
    const kiln_desc_import *imports;
    const kiln_desc_export *exports;
    void (*init_module)(void);
    void (*instantiate)(void *wasm_instance, kiln_link *link);
    void (*free_instance)(void *wasm_instance);
    /* memory 0 (own or imported) or NULL when the module has none */
    wasm_rt_memory_t *(*memory0)(void *wasm_instance);
    const char *content_hash; /* hex key the artifact was built under */
} kiln_descriptor;

#endif
