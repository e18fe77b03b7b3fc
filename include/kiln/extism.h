/*
 * extism.h - Extism's C API (libextism's `extism.h`) on Kiln's engine:
 * the same names, types and calling conventions, so a program written for
 * Extism builds unchanged against libkiln (`#include <extism.h>`, link
 * -lkiln; `make install` puts this header there). Design, thread model and
 * what differs from Extism's runtime: docs/internals/embed.md.
 *
 * Objects and ownership:
 *   ExtismFunction        a host function definition. The caller frees it
 *                         (extism_function_free) in every case; a plugin
 *                         given it takes its callback and user data, and the
 *                         user-data destructor runs when the last plugin (or
 *                         compiled plugin) using it is freed.
 *   ExtismCompiledPlugin  a module compiled (through Kiln's artifact cache)
 *                         and linked. Immutable, shareable by threads; plugins
 *                         made from it keep what they need, so it may be freed
 *                         before them.
 *   ExtismPlugin          one plugin instance: config, vars, output and error
 *                         of the last call. Calls on one plugin are serialised
 *                         by a lock (as in Extism); use one plugin per thread
 *                         for parallelism.
 *   ExtismCancelHandle    owned by its plugin; extism_plugin_cancel may be
 *                         called from any thread while the plugin lives.
 *   ExtismCurrentPlugin   valid only inside a host function call.
 *
 * Errors: constructors return NULL and, when errmsg is not NULL, a message
 * the caller frees with extism_plugin_new_error_free. extism_plugin_call
 * returns the guest's return code, or -1 when the call failed;
 * extism_plugin_error then says why (NULL after a successful call).
 */
#ifndef KILN_EXTISM_H
#define KILN_EXTISM_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__GNUC__)
#define EXTISM_API __attribute__((visibility("default")))
#else
#define EXTISM_API
#endif

#define EXTISM_FUNCTION(N)                                                                         \
    extern void N(ExtismCurrentPlugin *, const ExtismVal *, ExtismSize, ExtismVal *, ExtismSize,   \
                  void *)

/* extism_plugin_call's return code of a successful call. */
#define EXTISM_SUCCESS 0

/* An Extism pointer (a memory handle) is passed as an I64. */
#define PTR I64

/* WebAssembly value types. Kiln's host functions take I32, I64, F32 and
 * F64; a function declared with V128, FuncRef or ExternRef is refused when
 * a plugin is created from it. */
typedef enum {
    I32,
    I64,
    F32,
    F64,
    V128,
    FuncRef,
    ExternRef,
} ExtismValType;

typedef struct ExtismCancelHandle ExtismCancelHandle;
typedef struct ExtismCompiledPlugin ExtismCompiledPlugin;
typedef struct ExtismCurrentPlugin ExtismCurrentPlugin;
typedef struct ExtismFunction ExtismFunction;
typedef struct ExtismPlugin ExtismPlugin;

/* Offset of a block in a plugin's Extism memory; 0 is "no block". */
typedef uint64_t ExtismMemoryHandle;
typedef uint64_t ExtismSize;

typedef union {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
} ExtismValUnion;

/* A host function argument or result: its type and value. */
typedef struct {
    ExtismValType t;
    ExtismValUnion v;
} ExtismVal;

/* A host function: `inputs` holds the arguments (NULL when there are none),
 * `outputs` the results to fill in (pre-typed, zeroed). `data` is the user
 * data given to extism_function_new. */
typedef void (*ExtismFunctionType)(ExtismCurrentPlugin *plugin, const ExtismVal *inputs,
                                   ExtismSize n_inputs, ExtismVal *outputs, ExtismSize n_outputs,
                                   void *data);

/* Receives one buffered log line (NUL-terminated, `size` bytes). */
typedef void (*ExtismLogDrainFunctionType)(const char *data, ExtismSize size);

#ifdef __cplusplus
extern "C" {
#endif

/* 16 bytes identifying the plugin (a random UUIDv4), owned by the plugin. */
EXTISM_API const uint8_t *extism_plugin_id(ExtismPlugin *plugin);

/* The host_context given to extism_plugin_call_with_host_context, or NULL.
 * Host functions only. */
EXTISM_API void *extism_current_plugin_host_context(ExtismCurrentPlugin *plugin);

/* Base of the calling plugin's Extism memory: handle h is at base + h. The
 * base moves when a block is allocated (re-read it after _memory_alloc).
 * Host functions only. */
EXTISM_API uint8_t *extism_current_plugin_memory(ExtismCurrentPlugin *plugin);
/* A new zeroed block of n bytes; 0 when over the plugin's memory limit. */
EXTISM_API ExtismMemoryHandle extism_current_plugin_memory_alloc(ExtismCurrentPlugin *plugin,
                                                                 ExtismSize n);
/* Length of the block at n; 0 if n does not start a live block. */
EXTISM_API ExtismSize extism_current_plugin_memory_length(ExtismCurrentPlugin *plugin,
                                                          ExtismMemoryHandle n);
EXTISM_API void extism_current_plugin_memory_free(ExtismCurrentPlugin *plugin,
                                                  ExtismMemoryHandle ptr);

/*
 * A host function `name` taking `inputs` and returning `outputs`, imported
 * by plugins from namespace "extism:host/user" unless
 * extism_function_set_namespace says otherwise. `free_user_data` (may be
 * NULL) is called once with `user_data` when the function and every plugin
 * given it are freed. NULL when name is NULL or out of memory.
 */
EXTISM_API ExtismFunction *extism_function_new(const char *name, const ExtismValType *inputs,
                                               ExtismSize n_inputs, const ExtismValType *outputs,
                                               ExtismSize n_outputs, ExtismFunctionType func,
                                               void *user_data, void (*free_user_data)(void *_));
EXTISM_API void extism_function_free(ExtismFunction *f);
/* Set the import namespace (copied). No effect once given to a plugin. */
EXTISM_API void extism_function_set_namespace(ExtismFunction *ptr, const char *namespace_);

/*
 * Compile a plugin once for many instances. `wasm` is a WebAssembly binary
 * or an Extism manifest (JSON). Each function can be given to one plugin
 * (or compiled plugin) only. The first compile of a module on a machine
 * runs the C toolchain; later ones load the cached artifact.
 */
EXTISM_API ExtismCompiledPlugin *extism_compiled_plugin_new(const uint8_t *wasm,
                                                            ExtismSize wasm_size,
                                                            const ExtismFunction **functions,
                                                            ExtismSize n_functions,
                                                            bool with_wasi, char **errmsg);
EXTISM_API void extism_compiled_plugin_free(ExtismCompiledPlugin *plugin);
EXTISM_API ExtismPlugin *extism_plugin_new_from_compiled(const ExtismCompiledPlugin *compiled,
                                                         char **errmsg);

/* extism_compiled_plugin_new + extism_plugin_new_from_compiled. */
EXTISM_API ExtismPlugin *extism_plugin_new(const uint8_t *wasm, ExtismSize wasm_size,
                                           const ExtismFunction **functions,
                                           ExtismSize n_functions, bool with_wasi, char **errmsg);
/* Kiln has no instruction counting: always NULL with a message saying so
 * (a plugin's time limit is the manifest's timeout_ms). */
EXTISM_API ExtismPlugin *extism_plugin_new_with_fuel_limit(const uint8_t *wasm,
                                                           ExtismSize wasm_size,
                                                           const ExtismFunction **functions,
                                                           ExtismSize n_functions, bool with_wasi,
                                                           uint64_t fuel_limit, char **errmsg);
/* Let the plugin read response headers of its http_request calls. */
EXTISM_API void extism_plugin_allow_http_response_headers(ExtismPlugin *plugin);
EXTISM_API void extism_plugin_new_error_free(char *err);
EXTISM_API void extism_plugin_free(ExtismPlugin *plugin);

EXTISM_API const ExtismCancelHandle *extism_plugin_cancel_handle(const ExtismPlugin *plugin);
/* Stop the plugin's running call (from any thread): it fails with an error
 * saying it was cancelled. True for any valid handle, whether or not a call
 * was running (an idle plugin's next call is not affected); false for NULL. */
EXTISM_API bool extism_plugin_cancel(const ExtismCancelHandle *handle);

/* Merge a JSON object of config values into the plugin's config: a string
 * sets a key, null removes it. False (config unchanged) on invalid JSON. */
EXTISM_API bool extism_plugin_config(ExtismPlugin *plugin, const uint8_t *json,
                                     ExtismSize json_size);
/* Does the module export a function callable as `func_name`? */
EXTISM_API bool extism_plugin_function_exists(ExtismPlugin *plugin, const char *func_name);

/* Call `func_name` with `data` as input. Returns the guest's return code
 * (0 = EXTISM_SUCCESS), or -1 when the call failed (see extism_plugin_error). */
EXTISM_API int32_t extism_plugin_call(ExtismPlugin *plugin, const char *func_name,
                                      const uint8_t *data, ExtismSize data_len);
/* The same, with a pointer host functions read through
 * extism_current_plugin_host_context during this call. */
EXTISM_API int32_t extism_plugin_call_with_host_context(ExtismPlugin *plugin,
                                                        const char *func_name,
                                                        const uint8_t *data, ExtismSize data_len,
                                                        void *host_context);

/* The last call's error, owned by the plugin (valid until the next call). */
EXTISM_API const char *extism_error(ExtismPlugin *plugin); /* deprecated alias */
EXTISM_API const char *extism_plugin_error(ExtismPlugin *plugin);
/* The last successful call's output, owned by the plugin. */
EXTISM_API ExtismSize extism_plugin_output_length(ExtismPlugin *plugin);
EXTISM_API const uint8_t *extism_plugin_output_data(ExtismPlugin *plugin);

/* Log to `filename` ("stderr", "stdout" or a file, appended) at
 * `log_level` (trace, debug, info, warn, error; NULL = error). Applies to
 * plugins created afterwards. False on an unknown level or file. */
EXTISM_API bool extism_log_file(const char *filename, const char *log_level);
/* Buffer log lines in memory until extism_log_drain. */
EXTISM_API bool extism_log_custom(const char *log_level);
EXTISM_API void extism_log_drain(ExtismLogDrainFunctionType handler);

/* Forget the plugin's Extism memory, output and error between calls. */
EXTISM_API bool extism_plugin_reset(ExtismPlugin *plugin);

/* Version of the Extism C API implemented, "1.x.y-kiln". */
EXTISM_API const char *extism_version(void);

#ifdef __cplusplus
}
#endif

#endif
