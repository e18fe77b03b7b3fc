/*
 * cm_inst.h - a running component: its core instances made by following the
 * component's own core-instance instructions, its host imports (a registry
 * of host functions keyed by interface and function name, called through
 * `canon lower`), its resource handle table, and calls of lifted exports.
 *
 * Contract. cm_inst_new() walks the component's core instances in order:
 * an `instantiate` compiles the embedded core module through the AOT cache
 * (kiln_aot_compile, keyed by the module's bytes), links each import from the
 * named argument instance (a core instance made earlier: all its exports; or
 * a bag of inline exports: aliases of earlier instances' exports, `canon
 * lower`ed component functions and resource built-ins as host functions) and
 * instantiates it under `limits` with `state` (plus KILN_STATE_COMPONENT: the
 * cm_inst). A lowered function must be an import of the component (directly
 * or an export of an imported instance) that the registry provides, else
 * instantiation fails naming it. Every core instance and the handle table
 * are fresh per cm_inst: no state survives cm_inst_free.
 *
 * Host functions receive lifted arguments (cm_val, resources as their host
 * representation in `u`) and return one lifted result; returning KILN_EEXIT
 * with ci->exit_code set ends the guest as proc_exit does; any other error
 * traps the guest with the message.
 *
 * Thread-safety: a cm_inst belongs to one thread at a time.
 */
#ifndef KILN_COMPONENT_CM_INST_H
#define KILN_COMPONENT_CM_INST_H

#include <stdbool.h>
#include <stdint.h>

#include "component/cm.h"
#include "component/cm_canon.h"
#include "kiln/aot.h"
#include "kiln/runtime.h"

typedef struct cm_inst cm_inst;

/* A host implementation of one component-level function. `ft` is the
 * function type the component imports it with; args has ft->n values;
 * *result is written when ft has a result. */
typedef int (*cm_host_call)(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *args,
                            cm_val *result, kiln_err *err);

typedef struct cm_host_fn {
    /* Interface without version ("wasi:cli/stdout") matches any version of
     * it; with one ("kiln:faas/kv@0.1.0") only that one. NULL: a function
     * imported directly by the component (not through an instance). */
    const char *iface;
    const char *name; /* "get-stdout", "[method]output-stream.write"; "*": any */
    cm_host_call fn;
} cm_host_fn;

#define CM_HOST_MAX_TABLES 16

/* The registry: tables of host functions, each with its user data. Later
 * tables shadow earlier ones. A zeroed cm_host is empty. */
typedef struct cm_host {
    struct {
        const cm_host_fn *fns;
        size_t n;
        void *ud;
    } t[CM_HOST_MAX_TABLES];
    size_t n;
} cm_host;

int cm_host_add(cm_host *h, const cm_host_fn *fns, size_t n, void *ud);
/* The entry for import `iface_name` (NULL for a direct import), function `name`. */
const cm_host_fn *cm_host_find(const cm_host *h, const char *iface_name, const char *name,
                               void **ud);

/* During a host function: the calling core instance, and the arena its
 * result values are allocated in (freed after they are lowered). */
kiln_instance *cm_inst_caller(cm_inst *ci);
cm_arena *cm_inst_arena(cm_inst *ci);

/* Limits of the handle table (KILN_ELIMIT / trap beyond). */
#define CM_MAX_HANDLES 100000

int cm_inst_new(const cm_component *c, const uint8_t *buf, const char *display,
                const kiln_limits *limits, const cm_host *host, void *const *state,
                cm_inst **out, kiln_err *err);

/*
 * Serving: the component's embedded core modules compiled (through the AOT
 * cache, with `aot`; its `imports` is ignored) and loaded once (cm_mods),
 * then linked once (cm_plan), then instantiated per request.
 * cm_inst_new_loaded() makes a plan for one instance (kept for `kiln call`
 * style callers). `mods` must outlive the plans made from it; c and buf
 * must be the ones it was loaded from. Thread-safe once loaded.
 */
typedef struct cm_mods cm_mods;
int cm_mods_load(const cm_component *c, const uint8_t *buf, const char *display,
                 const kiln_aot_options *aot, cm_mods **out /* OUT */, kiln_err *err);
void cm_mods_free(cm_mods *m);
int cm_inst_new_loaded(const cm_component *c, const uint8_t *buf, const char *display,
                       const cm_mods *mods, const kiln_limits *limits, const cm_host *host,
                       void *const *state, cm_inst **out, kiln_err *err);

/*
 * A plan: everything about instantiating the component that does not depend
 * on the request, made once per deployed function — per core instance its
 * module, linker and kiln_instance_pre (links to earlier core instances are
 * argument links, kiln_linker_define_arg, bound to the request's instances),
 * every lowered import resolved in the registry and turned into its libffi
 * closure. A closure finds the request's cm_inst through the calling core
 * instance's KILN_STATE_COMPONENT slot (per instance, so safe when a request
 * suspends in a host call on its fiber and another runs on the thread), and
 * its host function's user data in the request's registry.
 *
 * cm_plan_new: `mods` NULL compiles the modules here (the AOT cache);
 * `host` is the registry's shape (which tables, in which order): its user
 * data is not used. cm_inst_new_plan: a fresh instance (core instances from
 * the per-thread pools, start functions run, an empty handle table) whose
 * registry `host` holds the plan's tables (KILN_EINVAL otherwise) with this
 * request's user data. The plan must outlive its instances; it is immutable
 * and shared by threads.
 */
typedef struct cm_plan cm_plan;
int cm_plan_new(const cm_component *c, const uint8_t *buf, const char *display,
                const cm_mods *mods, const cm_host *host, cm_plan **out /* OUT */,
                kiln_err *err);
void cm_plan_free(cm_plan *p);
int cm_inst_new_plan(const cm_plan *p, const kiln_limits *limits, const cm_host *host,
                     void *const *state, cm_inst **out /* OUT */, kiln_err *err);

/*
 * Images (`snapshot: true`): cm_image_build instantiates the plan's graph
 * once under `limits` with `state`, every host import refused (a start
 * function - a guest's constructors through `_initialize` - that calls one
 * fails the build with the trap naming the core import), and captures
 * every core instance (kiln_snapshot_capture_graph: memories, globals,
 * tables, a shim table's funcrefs into the fixup instance included).
 * cm_inst_new_image: a fresh instance restored from it (no start function,
 * no segments; write-tracked memory restores), otherwise as
 * cm_inst_new_plan. The image refers to the plan (which must outlive it),
 * lives in memory only, is immutable and shared by threads.
 */
typedef struct cm_image cm_image;
int cm_image_build(const cm_plan *p, const kiln_limits *limits, void *const *state,
                   cm_image **out /* OUT */, kiln_err *err);
void cm_image_free(cm_image *img);
/* Core instances captured and memory bytes stored, for the log. */
void cm_image_info(const cm_image *img, uint32_t *n_core, uint64_t *image_bytes);
int cm_inst_new_image(const cm_plan *p, const cm_image *img, const kiln_limits *limits,
                      const cm_host *host, void *const *state, cm_inst **out /* OUT */,
                      kiln_err *err);

/* Whether `host` provides every import the component lowers: KILN_EIMPORT
 * naming the first one it does not ("import IFACE#NAME is not provided by
 * Kiln"), KILN_EUNSUPPORTED for a lower of something not imported. */
int cm_check_imports(const cm_component *c, const cm_host *host, kiln_err *err);
void cm_inst_free(cm_inst *ci);

/* The kiln_instance of core instance `i`, NULL for an inline-export bag. */
kiln_instance *cm_inst_core(cm_inst *ci, uint32_t i);
/* Exit code after a call returned KILN_EEXIT; a host function sets it
 * before returning KILN_EEXIT. */
void cm_inst_set_exit(cm_inst *ci, int code);
int cm_inst_exit_code(const cm_inst *ci);

/*
 * Call the lifted function `fn` (CM_FUNC_LIFT) with args (one per
 * parameter): lower, call, lift into *result (allocated in `arena`), then
 * post-return. The caller converts the result before freeing the arena.
 * KILN_ETRAP on a guest or Canonical ABI trap (including a callee that
 * returns without dropping every borrow lowered into it), KILN_EEXIT on
 * exit.
 */
int cm_inst_call(cm_inst *ci, const cm_func *fn, const cm_val *args, cm_arena *arena,
                 cm_val *result, kiln_err *err);

/* ---- resources: the handle table (exposed for tests) -------------------- */

typedef struct cm_handle {
    const cm_type *rt; /* the resource type; NULL: a free slot */
    uint32_t rep;
    bool own;
    uint32_t lends;    /* calls in progress this handle is lent to (passed as a borrow) */
    uint32_t *scope;   /* a borrow lowered into a call (cm_inst_call): that call's count of
                          borrows not yet dropped, which must be 0 when it returns */
} cm_handle;

typedef struct cm_handles {
    cm_handle *h; /* index 0 is never used: handle 0 is invalid */
    uint32_t n, cap;
    uint32_t free_head; /* a free slot to reuse, or 0 */
} cm_handles;

/* resource.new / lowering: a new handle for rep. */
int cm_handles_add(cm_handles *t, const cm_type *rt, uint32_t rep, bool own, uint32_t *out,
                   kiln_err *err);
/* The live handle h of resource type rt, or a trap (unknown or dropped
 * handle, wrong resource type). */
int cm_handles_get(cm_handles *t, uint32_t h, const cm_type *rt, cm_handle **out, kiln_err *err);
/* resource.drop / lifting an own: remove h; traps as get, and when the
 * handle is still lent out. Removing a borrow ends it in its call's scope. */
int cm_handles_remove(cm_handles *t, uint32_t h, const cm_type *rt, cm_handle *out,
                      kiln_err *err);
void cm_handles_free(cm_handles *t);

#endif
