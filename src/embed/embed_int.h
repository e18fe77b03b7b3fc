/*
 * embed_int.h - private to src/embed/ (the Extism C API, include/kiln/extism.h):
 * the objects behind the opaque Extism handles and the hooks between
 * em_function.c (host functions), em_compiled.c (load + link), em_plugin.c
 * (instances and calls) and em_log.c (log sinks).
 *
 * Layering: embed sits where cli does - on abi/extism (call machinery,
 * manifest), abi/wasi, aot (the artifact cache) and the runtime.
 */
#ifndef KILN_EMBED_EMBED_INT_H
#define KILN_EMBED_EMBED_INT_H

#include <ffi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "abi/extism/extism.h"
#include "kiln/extism.h"
#include "kiln/extism_kiln.h"
#include "kiln/kv.h"
#include "kiln/runtime.h"

#define EM_DEFAULT_NAMESPACE "extism:host/user"
#define EM_MAX_PARAMS 32

/* A host function's definition, shared by every plugin linked with it:
 * reference counted; the last release runs the user-data destructor. */
typedef struct em_fn {
    _Atomic int refs;
    char *name;
    char *ns;
    ExtismValType *in, *out;
    size_t n_in, n_out;
    ExtismFunctionType func;
    void *user_data;
    void (*free_user_data)(void *);
    /* The native entry the linker binds (a libffi closure calling
     * em_fn_dispatch), made when the function is first linked. */
    char sig[2 * EM_MAX_PARAMS + 4];
    ffi_cif cif;
    ffi_type *args[EM_MAX_PARAMS + 1];
    ffi_type ret_struct;
    ffi_type *ret_elems[EM_MAX_PARAMS + 1];
    ffi_closure *closure;
    void (*code)(void);
} em_fn;

struct ExtismFunction {
    em_fn *fn; /* NULL once a plugin took it */
};

em_fn *em_fn_retain(em_fn *f);
void em_fn_release(em_fn *f);
/* Build the closure and the Kiln signature of f. KILN_OK, or KILN_EUNSUPPORTED
 * (a type Kiln's host functions cannot take) / KILN_ENOMEM with err set. */
int em_fn_bind(em_fn *f, kiln_err *err);

/* A module of a manifest linked into the main one by name (em_link.c). */
typedef struct em_dep {
    char *name;
    kiln_module *mod;
    bool reactor_init; /* exports _initialize: called once per instance */
} em_dep;

/* Module, linker and the resolved options (manifest + kiln_extism_options)
 * shared by the plugins of one compile. Immutable once built. */
struct ExtismCompiledPlugin {
    _Atomic int refs;
    kiln_linker *linker;
    kiln_hostfn *user_table; /* one entry per user function (the linker borrows it) */
    em_fn **fns;
    size_t n_fns;
    kiln_module *mod;
    kiln_instance_pre *pre;
    char *name;
    kiln_kv *config; /* owned strings: options first, then the manifest's */
    size_t n_config;
    char **hosts;
    size_t n_hosts;
    kiln_wasi_preopen *dirs; /* owned strings */
    size_t n_dirs;
    kiln_limits limits;
    bool max_pages_set; /* manifest memory.max_pages (xtm_options.max_pages) */
    uint32_t max_pages;
    uint64_t max_var_bytes, max_http_response_bytes;
    bool http_headers; /* manifest allow_http_response_headers (xtm_options.http_headers) */
    int log_level; /* XTM_LOG_*, or -1: the global level when a plugin is made */
    bool log_stderr;
    bool wasi;
    bool nonzero_rc_ok; /* Otoroshi plugins */
    bool otoroshi;      /* linked with Otoroshi's host functions and Kiln's module */
    /* Linked modules: the dependencies in instantiation order (each after
     * those it imports from). When n_deps > 0, `pre` only served the import
     * check (it holds placeholders); instances come from em_link_instantiate. */
    em_dep *deps;
    size_t n_deps;
    kiln_kv_grants *kv; /* kiln_extism_options.kv_db: state slot KILN_STATE_KV */
};

/* The linker of c without the dependencies (Extism's host functions, WASI,
 * the user's functions): what the main module and the dependencies resolve
 * against. */
int em_base_linker(const ExtismCompiledPlugin *c, kiln_linker **out /* OUT */, kiln_err *err);

/* em_link.c: check the dependencies of c (loaded into c->deps, main in
 * c->mod, named main_name): no circular imports ("circular imports between
 * modules: a -> b -> a"), no WASI commands; order c->deps for instantiation and build
 * c->pre against placeholders of their exports (the full import check). */
int em_link_check(ExtismCompiledPlugin *c, const char *main_name, kiln_err *err);
/* xtm_options.link_instantiate / link_free for plugins of c (user = c). */
int em_link_instantiate(void *user, const kiln_limits *limits, void *const *state,
                        kiln_instance **out, void **link, kiln_err *err);
void em_link_free(void *user, void *link);

ExtismCompiledPlugin *em_compiled_retain(const ExtismCompiledPlugin *c);
void em_compiled_release(ExtismCompiledPlugin *c);
/* The error message convention of the C API: a malloc'd copy (freed by
 * extism_plugin_new_error_free) when errmsg is not NULL. */
void em_errmsg(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct ExtismPlugin {
    ExtismCompiledPlugin *c;
    xtm_fn *fn;
    xtm_options o;
    kiln_kv *config; /* kiln_malloc'd names and values, owned */
    size_t n_config;
    const char **hosts;
    size_t n_hosts;
    kiln_wasi_preopen *dirs;
    size_t n_dirs;
    void *host_state[KILN_STATE_SLOTS];
    pthread_mutex_t lock; /* one call at a time, as Extism's instance lock */
    kiln_interrupt *cancel;
    void *host_context; /* of the call in progress */
    uint8_t *output;
    size_t output_len;
    char *error; /* of the last call, or NULL */
    kiln_err last; /* the last call's Kiln status, for kiln_extism_plugin_status */
    int last_rc;
    uint8_t id[16];
};

/* What a host function receives as ExtismCurrentPlugin. */
struct ExtismCurrentPlugin {
    kiln_instance *inst;
    ExtismPlugin *plugin;
};

/* Log sink of every plugin (em_log.c): the level plugins created now get,
 * and the callback they log through. */
int em_log_level(void);
void em_log_write(void *user, int level, const char *fn_name, const char *msg, size_t len);

#endif
