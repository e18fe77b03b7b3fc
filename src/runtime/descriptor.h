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

#define KILN_RT_ABI_VERSION 2
#define KILN_DESCRIPTOR_SYMBOL "kiln_artifact_descriptor"

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
