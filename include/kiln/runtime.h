/*
 * runtime.h - load compiled artifacts, link imports, instantiate and call.
 *
 * Object lifetimes (each _new/_load is paired with the _free/_release below it):
 *   kiln_module        a loaded artifact (.so + descriptor). Reference counted,
 *                      thread-safe, immutable after load.
 *   kiln_linker        a set of import definitions (host function tables,
 *                      named instances, raw memories/tables/globals). Not
 *                      thread-safe while being defined; read-only afterwards.
 *   kiln_instance_pre  a module with every import resolved and type-checked
 *                      against a linker. Immutable, shareable across threads;
 *                      holds a reference to the module. Must not outlive the
 *                      linker's definitions (host tables, linked instances).
 *   kiln_instance      one instantiation. Owned by the thread that uses it; an
 *                      instance may move between threads between calls but is
 *                      never used by two threads at once.
 *
 * Traps: every call into guest code goes through one guarded entry. A trap
 * (including timeouts and stack exhaustion) returns KILN_ETRAP with err->trap
 * set and err->msg naming the module and export; proc_exit returns KILN_EEXIT
 * with err->trap = KILN_TRAP_EXIT and err->exit_code. A guest can never
 * crash or stall the process. After a timeout the instance is poisoned: further
 * calls fail with KILN_ETIMEOUT; free it.
 */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"

/* Value type letters used in signature strings, e.g. "ii>i" for
 * (i32, i32) -> i32 and ">" for () -> (). The letters match wasm2c's
 * multi-value struct codes. */
#define KILN_T_I32 'i'
#define KILN_T_I64 'j'
#define KILN_T_F32 'f'
#define KILN_T_F64 'd'
#define KILN_T_EXTERNREF 'e'
#define KILN_T_FUNCREF 'r'

typedef union kiln_value {
    uint32_t i32;
    uint64_t i64;
    float f32;
    double f64;
    void *ref;
} kiln_value;

typedef enum kiln_extern_kind {
    KILN_EXTERN_FUNC = 0,
    KILN_EXTERN_TABLE = 1,
    KILN_EXTERN_MEMORY = 2,
    KILN_EXTERN_GLOBAL = 3,
    KILN_EXTERN_TAG = 4,
} kiln_extern_kind;

/* Trap kinds. 0..8 equal wasm_rt_trap_t; the rest are Kiln's. */
typedef enum kiln_trap_kind {
    KILN_TRAP_NONE = 0,
    KILN_TRAP_OOB = 1,
    KILN_TRAP_INT_OVERFLOW = 2,
    KILN_TRAP_DIV_BY_ZERO = 3,
    KILN_TRAP_INVALID_CONVERSION = 4,
    KILN_TRAP_UNREACHABLE = 5,
    KILN_TRAP_CALL_INDIRECT = 6,
    KILN_TRAP_UNCAUGHT_EXCEPTION = 7,
    KILN_TRAP_EXHAUSTION = 8, /* call stack exhausted */
    KILN_TRAP_TIMEOUT = 9,
    KILN_TRAP_OUT_OF_MEMORY = 10, /* allocation failed or over the memory limit */
    KILN_TRAP_EXIT = 11,          /* proc_exit; err->exit_code holds the code */
    KILN_TRAP_HOST = 12,          /* a host function aborted the guest */
} kiln_trap_kind;

/* Short name of a trap kind ("out of bounds memory access", ...). */
KILN_API const char *kiln_trap_name(int kind);

typedef struct kiln_extern_info {
    const char *module; /* imports only; NULL for exports */
    size_t module_len;
    const char *name;   /* NUL-terminated; wasm names may also contain NULs, */
    size_t name_len;    /* so name_len is authoritative */
    kiln_extern_kind kind;
    const char *type; /* functions: signature ("ii>i"); others: descriptive */
} kiln_extern_info;

/* ---- modules ---------------------------------------------------------- */

typedef struct kiln_module kiln_module;

/*
 * Load the artifact at `so_path` (made by kiln_aot_compile). `display_name`
 * (copied) names the module in messages. Checks the descriptor's ABI version.
 * On success *out holds one reference. Thread-safe.
 */
KILN_API int kiln_module_load(const char *so_path, const char *display_name,
                              kiln_module **out /* OUT */, kiln_err *err);
KILN_API kiln_module *kiln_module_retain(kiln_module *m);
/* Drop a reference; the artifact stays mapped for the life of the process
 * because funcrefs into it may survive (see docs/internals/runtime.md). */
KILN_API void kiln_module_release(kiln_module *m);
KILN_API const char *kiln_module_name(const kiln_module *m);
KILN_API uint32_t kiln_module_import_count(const kiln_module *m);
KILN_API uint32_t kiln_module_export_count(const kiln_module *m);
KILN_API void kiln_module_import(const kiln_module *m, uint32_t i, kiln_extern_info *out /* OUT */);
KILN_API void kiln_module_export(const kiln_module *m, uint32_t i, kiln_extern_info *out /* OUT */);
/* Index of export `name` of `kind`, or -1. */
KILN_API int kiln_module_find_export(const kiln_module *m, const char *name, kiln_extern_kind kind);
KILN_API int kiln_module_find_export_n(const kiln_module *m, const char *name, size_t len,
                                       kiln_extern_kind kind);

/* ---- linking ---------------------------------------------------------- */

/*
 * A host function. `fn` is called as
 *     R fn(kiln_instance *inst, P1, P2, ...)
 * with C types u32/u64/float/double/void* per signature letter, returning
 * void, one value, or wasm2c's `struct wasm_multi_<letters>` for several.
 * See abi.h for the helpers a host function may use.
 */
typedef struct kiln_hostfn {
    const char *module;
    const char *name;
    const char *type; /* signature, e.g. "iiii>i"; KILN_HOSTFN_MEMORY: see below */
    void (*fn)(void);
} kiln_hostfn;
/* An entry {module, name, KILN_HOSTFN_MEMORY, NULL} in a host table is not a
 * function but a per-instance memory (kiln_linker_define_memory): an ABI
 * whose modules import their memory declares it next to its functions, so
 * every linker built from the ABI's table provides it. */
#define KILN_HOSTFN_MEMORY "memory"


typedef struct kiln_linker kiln_linker;
typedef struct kiln_instance kiln_instance;

KILN_API int kiln_linker_new(kiln_linker **out /* OUT */);
KILN_API void kiln_linker_free(kiln_linker *l);
/* Add host functions. The table must outlive the linker (use static tables). */
KILN_API int kiln_linker_define_host(kiln_linker *l, const kiln_hostfn *fns, size_t n);
/* Make every export of `inst` importable as `module_name`.<export>. The
 * instance must outlive every instance linked against it. */
KILN_API int kiln_linker_define_instance(kiln_linker *l, const char *module_name,
                                         kiln_instance *inst);
/* Make one export of `inst` (by name and kind) importable as module.name
 * (renamed: a component's inline core instances do this). KILN_ENOENT when
 * the instance has no such export. The instance must outlive every
 * instance linked against it. */
KILN_API int kiln_linker_define_instance_export(kiln_linker *l, const char *module,
                                                const char *name, kiln_instance *inst,
                                                const char *export_name, kiln_extern_kind kind);
/*
 * Links to instances that do not exist yet (a component's core-instance
 * graph, linked once per deployed function and instantiated per request):
 * every export of (or one export of, renamed) the instance that will be
 * passed as argument `arg` of kiln_instance_new_args, an instance of module
 * `m`. Types are checked against m's declared exports when the pre is made;
 * the instance is bound at each instantiation. The pre only compares m's
 * artifact with the argument's, so m need not outlive it. Tags cannot be
 * linked this way (KILN_EUNSUPPORTED).
 */
KILN_API int kiln_linker_define_arg(kiln_linker *l, const char *module_name, kiln_module *m,
                                    uint32_t arg);
KILN_API int kiln_linker_define_arg_export(kiln_linker *l, const char *module, const char *name,
                                           kiln_module *m, uint32_t arg, const char *export_name,
                                           kiln_extern_kind kind);
/* Define a raw memory (wasm_rt_memory_t*), table (wasm_rt_funcref_table_t*),
 * global (pointer to its value; type is the value letter, mutable prefixed
 * with "mut ") or tag (const u32 * value) under module.name. */
KILN_API int kiln_linker_define_extern(kiln_linker *l, const char *module, const char *name,
                                       kiln_extern_kind kind, const char *type, void *ptr);
/*
 * Provide the memory import module.name afresh for every instance: the
 * runtime allocates it from the instantiating thread's pool, sized by the
 * import's own limits (minimum pages initially, growable to its maximum),
 * capped by limits.max_memory_bytes like an own memory, with the same guard
 * reservation, and returns it to the pool when the instance is freed.
 * Host functions reach it as memory 0 (kiln_instance_memory). For modules
 * that import their memory (OPA policies: env.memory) and must never share
 * it between concurrent requests. Any plain memory type matches.
 */
KILN_API int kiln_linker_define_memory(kiln_linker *l, const char *module, const char *name);
/* Is an import with this module, name, kind and type provided? If not, and
 * err is given, the message says why (missing, or provided with type X). */
KILN_API bool kiln_linker_provides(const kiln_linker *l, const kiln_extern_info *import,
                                   kiln_err *err);

/* ---- instances -------------------------------------------------------- */

#define KILN_STATE_SLOTS 8
/* Well-known state slots for host ABIs (see abi.h). */
enum {
    KILN_STATE_WASI = 0,
    KILN_STATE_EXTISM = 1,
    KILN_STATE_HTTP = 2, /* outbound HTTP context (src/net) */
    KILN_STATE_KV = 3,   /* KV grants of the calling function (src/store) */
    KILN_STATE_HOST = 4, /* Kiln's own host module: config, log, request scratch */
    KILN_STATE_OPA = 5,  /* OPA policies: the prepared policy (src/abi/opa) */
    KILN_STATE_COMPONENT = 6, /* the component instance a core instance belongs to */
    KILN_STATE_USER = 7
};

typedef struct kiln_limits {
    uint64_t max_memory_bytes; /* per linear memory; 0 = the module's own maximum */
    /* Table elements of one instance, all tables together (their bytes also
     * count against max_memory_bytes when that is set); 0 = 1,000,000. */
    uint32_t max_table_elems;
    uint32_t timeout_ms;       /* wall clock per call (and for instantiate); 0 = none */
    /* Native stack for guest code, excluding the 256 KiB always kept for host
     * calls; 0 = 1 MiB. Clamped to [64 KiB, 256 MiB]. */
    uint32_t max_stack_bytes;
} kiln_limits;

typedef struct kiln_instance_pre kiln_instance_pre;

/* Resolve and type-check every import of `m` against `l`. On failure the
 * message lists every missing or mistyped import as module.name. */
KILN_API int kiln_instance_pre_new(kiln_module *m, const kiln_linker *l,
                                   kiln_instance_pre **out /* OUT */, kiln_err *err);
KILN_API void kiln_instance_pre_free(kiln_instance_pre *pre);
KILN_API kiln_module *kiln_instance_pre_module(const kiln_instance_pre *pre);

/*
 * Instantiate: allocate memories (from this thread's pool), tables, globals,
 * apply segments, run the start function under limits->timeout_ms.
 * `state` (may be NULL) supplies KILN_STATE_SLOTS pointers for host ABIs;
 * they must stay valid until kiln_instance_free. Returns KILN_OK, KILN_ENOMEM,
 * or KILN_ETRAP (start function trapped; nothing is leaked, except that a
 * module importing a table whose instantiation fails after storing some of
 * its functions in that table stays allocated, never freed, because those
 * functions stay callable, as the spec's partial results require).
 */
KILN_API int kiln_instance_new(const kiln_instance_pre *pre, const kiln_limits *limits,
                               void *const *state, kiln_instance **out /* OUT */,
                               kiln_err *err);
/* kiln_instance_new for a pre whose linker has argument links
 * (kiln_linker_define_arg): args[k] is the instance bound to argument k; it
 * must be of the module the link named and outlive the new instance.
 * kiln_instance_new on such a pre fails with KILN_EINVAL. The instances of
 * one graph live and die together: when instantiation fails, the new
 * instance is released at once, even if it already stored functions in an
 * argument's table, so the caller must then free the whole graph without
 * calling into it again (kiln_instance_new instead keeps such an instance
 * alive, as the spec's partial results require). */
KILN_API int kiln_instance_new_args(const kiln_instance_pre *pre, const kiln_limits *limits,
                                    void *const *state, kiln_instance *const *args,
                                    uint32_t n_args, kiln_instance **out /* OUT */,
                                    kiln_err *err);
/* Call export `index` (from kiln_module_find_export) with args/results sized
 * by its signature. Returns KILN_OK, KILN_ETRAP, KILN_EEXIT (proc_exit), or
 * KILN_ETIMEOUT (the instance was poisoned by an earlier timeout). */
KILN_API int kiln_instance_call_index(kiln_instance *inst, int index, const kiln_value *args,
                                      kiln_value *results, kiln_err *err);
/* Same by name; checks the signature `type` if not NULL. */
KILN_API int kiln_instance_call(kiln_instance *inst, const char *name, const char *type,
                                const kiln_value *args, kiln_value *results, kiln_err *err);
/* Free the instance; its memories go back to this thread's pool. NULL is ok. */
KILN_API void kiln_instance_free(kiln_instance *inst);
KILN_API kiln_module *kiln_instance_module(const kiln_instance *inst);
KILN_API void *kiln_instance_state(const kiln_instance *inst, int slot);
/* Replace limits between calls (e.g. a new deadline per request in reuse mode). */
KILN_API void kiln_instance_set_limits(kiln_instance *inst, const kiln_limits *limits);
/* Exported memory/table/global object (wasm_rt_memory_t* etc.) or NULL. */
KILN_API void *kiln_instance_export_object(kiln_instance *inst, const char *name,
                                           kiln_extern_kind kind);

/* ---- snapshots: start every instance from an initialised image -------- */

/*
 * A snapshot is the state of an instance right after its initialisation:
 * linear memories (only up to the last non-zero page), globals and the
 * other per-instance scalars, and tables (function references kept as
 * offsets into the module's artifact and into the instance, so an image
 * does not depend on where anything is mapped). An instance made from it
 * skips data segments, the start function and every initialisation export,
 * and behaves exactly like the instance that was captured.
 *
 *   kiln_snapshot_begin   instantiate (running the start function) with
 *                         every host import not in `allow` refused: calling
 *                         one traps, naming it ("module.name" entries, or
 *                         "module.*"). Host state an init creates through
 *                         other calls cannot be reproduced, so it is never
 *                         allowed to create any.
 *   (the caller runs its initialisation exports on the instance)
 *   kiln_snapshot_capture copy the state; fails, saying what, if the
 *                         instance cannot be reproduced (imports a memory,
 *                         table or global, links another instance, holds
 *                         externrefs or foreign function references, was
 *                         poisoned by a timeout).
 *   kiln_instance_new_from_snapshot   a fresh instance from the image.
 *
 * Values a host call returned during init (clock, random, environment) are
 * frozen into the image. The snapshot refers to `pre` (which must outlive
 * it), is immutable and may be used by many threads at once. Memory slots
 * are pooled per thread with affinity: a slot that last held the same
 * image needs only the image copied back, no zeroing.
 */
typedef struct kiln_snapshot kiln_snapshot;
KILN_API int kiln_snapshot_begin(const kiln_instance_pre *pre, const kiln_limits *limits,
                                 void *const *state, const char *const *allow, size_t n_allow,
                                 kiln_instance **out /* OUT */, kiln_err *err);
KILN_API int kiln_snapshot_capture(kiln_instance *inst, kiln_snapshot **out /* OUT */,
                                   kiln_err *err);
/* begin + call each of `inits` (exports of type () -> (), in order; a
 * missing one is an error) + capture + free, under `limits` (its timeout
 * applies to each call). Errors name the export and say "snapshot". */
KILN_API int kiln_snapshot_build(const kiln_instance_pre *pre, const kiln_limits *limits,
                                 void *const *state, const char *const *inits, size_t n_inits,
                                 const char *const *allow, size_t n_allow,
                                 kiln_snapshot **out /* OUT */, kiln_err *err);
KILN_API int kiln_instance_new_from_snapshot(const kiln_snapshot *s, const kiln_limits *limits,
                                             void *const *state, kiln_instance **out /* OUT */,
                                             kiln_err *err);
/*
 * Graphs of linked instances (a component's core instances, whose pres
 * link argument k to graph member k: kiln_linker_define_arg). Begin each
 * member in order with kiln_snapshot_begin_args (argument links are bound
 * to args and allowed; host imports are refused as for begin); once the
 * whole graph is initialised, capture each member with
 * kiln_snapshot_capture_graph: pointers into another member (an imported
 * memory, table or global) and table elements holding another member's
 * function (a shim table a later fixup module filled) are kept as (member,
 * offset). kiln_snapshot_graph_restore makes a whole new graph from the
 * members' images (NULL entries stay NULL in out[n]): every member is
 * allocated first, so a table may refer to a later member. Graph images
 * hold other artifacts' function addresses: they live in this process only
 * (kiln_snapshot_save refuses them; artifacts are never unmapped), and a
 * member is never restored alone.
 */
KILN_API int kiln_snapshot_begin_args(const kiln_instance_pre *pre, const kiln_limits *limits,
                                      void *const *state, kiln_instance *const *args,
                                      uint32_t n_args, const char *const *allow, size_t n_allow,
                                      kiln_instance **out /* OUT */, kiln_err *err);
KILN_API int kiln_snapshot_capture_graph(kiln_instance *const *graph, uint32_t n, uint32_t self,
                                         kiln_snapshot **out /* OUT */, kiln_err *err);
KILN_API int kiln_snapshot_graph_restore(const kiln_snapshot *const *snaps, uint32_t n,
                                         const kiln_limits *limits, void *const *state,
                                         kiln_instance **out /* OUT: n */, kiln_err *err);
KILN_API void kiln_snapshot_free(kiln_snapshot *s);
typedef struct kiln_snapshot_info {
    uint64_t image_bytes;  /* memory bytes stored (non-zero extents) */
    uint64_t memory_bytes; /* memory size of the captured instance */
    uint32_t n_memories, n_tables, table_elems;
    uint32_t state_bytes;  /* globals and other scalars (the wasm2c struct) */
    bool portable;         /* loadable on another artifact (compile tier) of the module */
} kiln_snapshot_info;
KILN_API void kiln_snapshot_info_get(const kiln_snapshot *s, kiln_snapshot_info *out /* OUT */);

/*
 * Images on disk (docs/internals/snapshot.md "Images on disk"). save writes
 * the image atomically (scratch file + rename) with the caller's `module_id`
 * (e.g. the module's SHA-256; may be NULL) and a free-form `note` (what
 * configuration it was made under). load reads one back for `pre`:
 * KILN_ENOENT when there is no file; KILN_EINVAL, saying why, when it is
 * corrupt, from another Kiln version, or for another artifact unless the
 * same non-NULL module_id is given and the image is portable (every function
 * it holds is found again through a reference instance: another compile
 * tier of the module). file_info_get reads the header and sizes.
 */
typedef struct kiln_snapshot_file_info {
    char kiln_version[32];
    char artifact[80]; /* content hash of the artifact it was made on */
    char module_id[80];
    bool portable;
    char note[256];
    int64_t created;   /* Unix seconds */
    uint64_t file_bytes;
    kiln_snapshot_info info;
} kiln_snapshot_file_info;
KILN_API int kiln_snapshot_save(const kiln_snapshot *s, const char *path, const char *module_id,
                                const char *note, kiln_err *err);
KILN_API int kiln_snapshot_load(const kiln_instance_pre *pre, const char *path,
                                const char *module_id, kiln_snapshot **out /* OUT */,
                                kiln_err *err);
KILN_API int kiln_snapshot_file_info_get(const char *path, kiln_snapshot_file_info *out /* OUT */,
                                         kiln_err *err);
/* Where the image of `pre` under configuration `variant` (a short hex digest
 * of what the ABI's init depends on) lives: next to the artifact,
 * "<cache>/images/<module_id, else the artifact content hash>-<variant>.img"
 * (the directory is created). KILN_ENOENT when the module was not loaded
 * from a file. */
KILN_API int kiln_snapshot_cache_path(const kiln_instance_pre *pre, const char *module_id,
                                      const char *variant, char *out, size_t size,
                                      kiln_err *err);
/* Cleanup (docs/internals/snapshot.md "Cleanup"): record that `owner` (a
 * function name) now starts from image file `path` (one kiln_snapshot_cache_path
 * gave) and delete the image it started from before, unless another owner's
 * record names it. *removed gets the deleted file's path, "" when none. */
KILN_API int kiln_snapshot_cache_claim(const char *path, const char *owner,
                                       char *removed /* OUT */, size_t size, kiln_err *err);
/* A function's image: loaded from the cache (under module_id, any compile
 * tier; else under pre's artifact) for `variant` (what init can observe
 * besides the module, hex), else made by build(ctx, pre, out, err) and saved
 * there with `note` (best effort); then claimed for `owner` (NULL: not).
 * On success err->msg says which for the log ("snapshot image loaded from
 * P (note)" / "... built and saved to P (note, any compile tier|this
 * artifact only)[; replaced: why]" / "... built (not cached: why)"). A build
 * failure is returned as is. */
typedef int (*kiln_snapshot_build_fn)(void *ctx, const kiln_instance_pre *pre,
                                      kiln_snapshot **out, kiln_err *err);
KILN_API int kiln_snapshot_obtain(const kiln_instance_pre *pre, const char *module_id,
                                  const char *variant, const char *note, const char *owner,
                                  kiln_snapshot_build_fn build, void *ctx,
                                  kiln_snapshot **out /* OUT */, kiln_err *err);

/* ---- fibers: invocations that wait without holding a thread ----------- */

/*
 * A fiber runs fn(arg) on a guest stack of its own (sized by `limits`, like
 * every guest call). Guest calls made inside it (kiln_instance_call, ...)
 * run on the same stack. A host function that has to wait may suspend the
 * fiber (kiln_fiber_suspend): the thread returns from kiln_fiber_run /
 * kiln_fiber_resume and does other work; whoever completes the wait calls
 * kiln_fiber_resume on the same thread, and the host function carries on
 * where it stopped. The invocation's deadline keeps counting meanwhile
 * (waits must be bounded by kiln_host_deadline_ns()).
 *
 * kiln_fiber_run/kiln_fiber_resume return 1 when fn finished (its return
 * value in *result; the fiber is gone), 0 when it suspended (*fiber is the
 * handle to resume), or a negative status (no stack could be mapped).
 * A fiber belongs to the thread that started it; it must be resumed there.
 */
typedef struct kiln_fiber kiln_fiber;
KILN_API int kiln_fiber_run(const kiln_limits *limits, int (*fn)(void *arg), void *arg,
                            kiln_fiber **fiber /* OUT */, int *result /* OUT */, kiln_err *err);
KILN_API int kiln_fiber_resume(kiln_fiber *fiber, int *result /* OUT */);
/* The fiber this thread is running, or NULL (plain thread, or a guest call
 * outside kiln_fiber_run: those cannot suspend). */
KILN_API kiln_fiber *kiln_fiber_current(void);
/* Suspend the current fiber until kiln_fiber_resume. Returns false (and does
 * nothing) if there is no current fiber: the caller must block instead. */
KILN_API bool kiln_fiber_suspend(void);
/* Ask a suspended fiber to give up (its client went away): once resumed, the
 * waiting host call sees kiln_fiber_cancelled() and the next
 * kiln_host_checkpoint unwinds the guest. */
KILN_API void kiln_fiber_cancel(kiln_fiber *fiber);
KILN_API bool kiln_fiber_cancelled(void);
/* Forget a cancellation of the current fiber (returns whether there was
 * one): for clean-up calls into an instance that outlives the request, such
 * as a proxy-wasm VM's on_done, which must not be unwound half-way. */
KILN_API bool kiln_fiber_clear_cancel(void);
/* Per-invocation variables: a slot of the current fiber (each fiber starts
 * with NULLs), or of the thread when not on a fiber. Host code that keeps
 * "the current request's X" uses these rather than _Thread_local, which
 * another request on the same thread would overwrite while this one waits.
 * Slots: KILN_FLOCAL_LOG (guest log budget), KILN_FLOCAL_STAGE (the request's
 * pipeline state, handler.h), others free. */
#define KILN_FIBER_LOCALS 4
enum { KILN_FLOCAL_LOG = 0, KILN_FLOCAL_STAGE = 1 };
KILN_API void **kiln_fiber_local(unsigned slot);
/* The running invocation's deadline (CLOCK_MONOTONIC ns), 0 = none. */
KILN_API uint64_t kiln_host_deadline_ns(void);

/* ---- interrupts: cancel guest code from another thread ---------------- */

/*
 * A kiln_interrupt stops guest code on another thread. The thread about to
 * run guest code arms it (kiln_interrupt_arm) and disarms it afterwards;
 * kiln_interrupt_fire, from any thread, then unwinds whatever guest code the
 * armed thread runs as a timeout trap (KILN_ETRAP, err->trap =
 * KILN_TRAP_TIMEOUT, message "... (cancelled by the host)", the instance
 * poisoned): at once in guest code, when the host call returns inside one.
 * A fired handle stays fired until disarmed: every later guarded entry on
 * that thread fails before it starts. Firing a disarmed handle does nothing
 * and returns false (there is nothing to cancel). arm re-arms (clears
 * `fired`). A handle is armed by one thread at a time; free it disarmed.
 */
typedef struct kiln_interrupt kiln_interrupt;
KILN_API int kiln_interrupt_new(kiln_interrupt **out /* OUT */);
KILN_API void kiln_interrupt_free(kiln_interrupt *h);
KILN_API void kiln_interrupt_arm(kiln_interrupt *h);
KILN_API void kiln_interrupt_disarm(kiln_interrupt *h);
KILN_API bool kiln_interrupt_fire(kiln_interrupt *h);
/* Was the handle fired since it was last armed? */
KILN_API bool kiln_interrupt_fired_get(const kiln_interrupt *h);

/* ---- runtime-wide ----------------------------------------------------- */

/* Runtime statistics, for tests and benchmarks. */
typedef struct kiln_rt_stats {
    uint64_t memories_reserved; /* 8 GiB reservations currently mapped (process) */
    uint64_t pool_hits;         /* allocations served from a pool (this thread) */
    uint64_t pool_misses;       /* allocations that needed mmap (this thread) */
    /* snapshot restores into a slot that held the same image and tracked
     * writes, copying back only the written pages (this thread) */
    uint64_t image_partial_restores;
    uint64_t pool_resident;     /* pooled memories with their pages resident (this thread) */
    uint64_t pool_discards;     /* released memories whose pages went back (madvise; this
                                   thread): beyond the resident bound, or when trimmed */
} kiln_rt_stats;
KILN_API void kiln_rt_stats_get(kiln_rt_stats *out /* OUT */);
/* Release this thread's pooled memories (call before a thread exits). */
KILN_API void kiln_rt_thread_cleanup(void);
/* Install Kiln's SIGSEGV/SIGBUS/timeout handlers again. They are installed
 * automatically the first time guest code runs; call this only if other code
 * (a test framework, a language runtime) replaced them since. */
KILN_API void kiln_rt_reinstall_signals(void);
/* Pool policy: 0 disables pooling (fresh mmap per memory; for benchmarks). */
KILN_API void kiln_rt_set_pool_size(unsigned per_thread);
/* Give back the pages of this thread's pooled memories and guest stacks
 * past the first `keep` (they stay pooled, as address space). Pools keep up
 * to 256 of each resident while busy; call this when the thread goes idle. */
KILN_API void kiln_rt_trim_pools(unsigned keep);

#endif
