/*
 * extism_kiln.h - Kiln's additions to the Extism C API (extism.h): the
 * knobs `kiln call` needs beyond a manifest (display name, memory and stack
 * limits, log routing, Otoroshi's host functions), the Kiln status of a
 * call, and host access to a plugin's vars. Programs written for Extism do
 * not need this header; it is installed next to extism.h as
 * <extism_kiln.h>.
 */
#ifndef KILN_EXTISM_KILN_H
#define KILN_EXTISM_KILN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extism.h"
#include "kiln.h"
#include "wasi.h"

typedef struct kiln_extism_options {
    /* Names the plugin in messages and log lines; NULL: the manifest's
     * wasm[0] file name, else "plugin". */
    const char *name;
    /* Manifest wasm paths that are relative and not found as given are
     * tried against this directory. */
    const char *base_dir;
    /* Module bytes to use instead of the manifest's wasm[0] (its hash, if
     * any, is checked against them). Borrowed during the call only. */
    const uint8_t *module;
    size_t module_len;
    /* Entries in front of the manifest's: config "KEY=VALUE" (the first
     * match wins), allowed hosts, directories (after the manifest's). */
    const char *const *config;
    size_t n_config;
    const char *const *allowed_hosts;
    size_t n_allowed_hosts;
    const kiln_wasi_preopen *dirs;
    size_t n_dirs;
    uint64_t max_memory_bytes; /* caps linear and Extism memory; 0: memory.max_pages */
    uint32_t max_stack_bytes;  /* native stack for guest code; 0: 1 MiB */
    uint32_t timeout_ms;       /* 0: the manifest's timeout_ms */
    /* "trace".."error" or "off"; NULL: the level extism_log_file/custom set. */
    const char *log_level;
    /* Log "[level] name: message" lines on stderr instead of the
     * extism_log_* sink. */
    bool log_stderr;
    /* Also link Otoroshi's host functions (a superset of Extism's) and Kiln's
     * "kiln" module (answering "not available" outside a server); a plugin
     * importing Otoroshi's follows Otoroshi's rule that a non-zero return
     * code without an error is not a failure. */
    bool otoroshi;
    /* A key-value store for the host functions that have one (Otoroshi's
     * proxy_plugin_map_* / datastore / global map functions, Kiln's
     * kiln.kv_*): the SQLite database at this path (created when first
     * written), shared with `kiln kv --db` and `kiln serve`. The plugin's
     * private namespace is "fn:<name>" (name as above); the namespace
     * "global" is granted read-write. NULL: none (those functions answer
     * "not available"). */
    const char *kv_db;
    /* OUT (may be NULL): the Kiln status and message of a failed compile,
     * without errmsg's "Unable to compile Extism plugin: " prefix
     * (KILN_EIMPORT: an import is missing; KILN_ECONFIG: directories without
     * WASI; KILN_EINVAL, KILN_EMODULE, ... for the manifest and the module). */
    kiln_err *err;
} kiln_extism_options;

/* extism_compiled_plugin_new with options (NULL = none). */
EXTISM_API ExtismCompiledPlugin *kiln_extism_compiled_new(const uint8_t *wasm, ExtismSize wasm_size,
                                                          const ExtismFunction **functions,
                                                          ExtismSize n_functions, bool with_wasi,
                                                          const kiln_extism_options *opts,
                                                          char **errmsg);

/* The Kiln status of the plugin's last call: KILN_OK, or KILN_EGUEST (the
 * plugin reported an error), KILN_ENOEXPORT, KILN_ETIMEOUT, KILN_ETRAP
 * (err->trap says which; "oom" is KILN_TRAP_OUT_OF_MEMORY), ... *err (may be
 * NULL) receives the full message ("<name>: <function> returned 1: why"). */
EXTISM_API int kiln_extism_plugin_status(ExtismPlugin *plugin, kiln_err *err /* OUT */);

/* The plugin's vars, from the host: set (value NULL removes the var) and
 * read (a malloc'd copy the caller frees; NULL when absent). Set returns
 * false when the var store is full or out of memory. */
EXTISM_API bool kiln_extism_plugin_var_set(ExtismPlugin *plugin, const char *key,
                                           const uint8_t *value, size_t len);
EXTISM_API uint8_t *kiln_extism_plugin_var_get(ExtismPlugin *plugin, const char *key,
                                               size_t *len /* OUT */);

/* Visit the plugin's vars in store order (under the var lock: fn must not
 * call back into the plugin). */
typedef void (*kiln_extism_var_fn)(void *user, const char *key, size_t key_len,
                                   const uint8_t *value, size_t len);
EXTISM_API void kiln_extism_plugin_vars_each(ExtismPlugin *plugin, kiln_extism_var_fn fn,
                                             void *user);

#endif
