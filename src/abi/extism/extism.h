/*
 * extism.h - the Extism host ABI (module "extism:host/env") as a library for
 * the rest of Kiln: the handler ops (kiln_abi_extism), and the pieces the
 * Otoroshi ABI and `kiln call` build on - per-function state, the per-call
 * sequence, manifest parsing and the helpers host functions share.
 * Spec: /work/shared/specs/extism-abi.md; notes: docs/internals/extism.md.
 *
 * Objects:
 *   xtm_fn      one configured function: options (borrowed), the var store
 *               shared by all its instances, and the pool of idle instances
 *               kept when options.reuse is set. Thread-safe.
 *   xtm_ctx     the Extism state of one instance (memory arena, input,
 *               output, error, last HTTP response). Reached from host
 *               functions through kiln_instance_state(inst, KILN_STATE_EXTISM).
 *               Used by one thread at a time, like its instance.
 */
#ifndef KILN_ABI_EXTISM_EXTISM_H
#define KILN_ABI_EXTISM_EXTISM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/handler.h"
#include "kiln/runtime.h"
#include "kiln/wasi.h"
#include "net/net.h"

/* Log levels as get_log_level returns them; XTM_LOG_OFF disables logging. */
enum {
    XTM_LOG_TRACE = 0,
    XTM_LOG_DEBUG = 1,
    XTM_LOG_INFO = 2,
    XTM_LOG_WARN = 3,
    XTM_LOG_ERROR = 4,
    XTM_LOG_OFF = 2147483647,
};

#define XTM_DEFAULT_MAX_VAR_BYTES ((uint64_t)1 << 20)
#define XTM_DEFAULT_MAX_HTTP_RESPONSE ((uint64_t)50 << 20)

/* "trace".."error", "off"; -1 if unknown. Case-insensitive. */
int xtm_log_level_parse(const char *s);
const char *xtm_log_level_name(int level);

/* Log sink: one message of a plugin (not NUL-terminated). */
typedef void (*xtm_log_fn)(void *user, int level, const char *fn_name, const char *msg,
                           size_t len);

/*
 * How a function runs. Every pointer is borrowed and must outlive the
 * xtm_fn made from it (kiln_function strings live as long as the config).
 */
typedef struct xtm_options {
    const char *name; /* function name in messages and logs */
    const kiln_kv *config;
    size_t n_config;
    const char *const *allowed_hosts; /* http_request globs; none = deny all */
    size_t n_allowed_hosts;
    kiln_limits limits; /* max_memory_bytes also caps Extism memory */
    uint64_t max_var_bytes;           /* 0 = vars disabled */
    uint64_t max_http_response_bytes; /* response body cap (XTM_DEFAULT_MAX_HTTP_RESPONSE) */
    bool http_headers;                /* record response headers for http_headers() */
    int log_level;                    /* XTM_LOG_*; a zeroed struct logs at trace */
    xtm_log_fn log;                   /* NULL = one line per message on stderr */
    void *log_user;
    bool wasi; /* give every instance a WASI context (stdio captured, logged at debug) */
    const kiln_wasi_preopen *preopens;
    size_t n_preopens;
    const char *const *env; /* WASI environment, "KEY=VALUE" */
    size_t n_env;
    bool reuse;            /* keep idle instances between calls (per-function pool) */
    bool snapshot;         /* instances start from the image xtm_fn_snapshot took */
    bool nonzero_rc_ok;    /* Otoroshi: rc != 0 without an Extism error is success */
    bool discard_on_error; /* Otoroshi: never re-use an instance after a failed call */
    void *const *host_state; /* KILN_STATE_SLOTS per-function host contexts
                                (kiln_function.host_state); NULL = none */
    /* Manifest memory.max_pages, Extism's rule (docs/internals/extism.md):
     * linear memory may grow max_pages pages past its size at instantiation
     * (never past its declared maximum or limits.max_memory_bytes), a module
     * starting above max_pages fails the call with "oom", and Extism memory
     * is capped at max_pages pages instead of limits.max_memory_bytes. */
    bool max_pages_set;
    uint32_t max_pages;
    /* Linked modules (a manifest with several): a new instance of the main
     * module is made by this hook instead of kiln_instance_new(pre). It gets
     * the instance's state slots (so the dependencies share its Extism
     * memory, WASI and HTTP contexts) and limits, instantiates the
     * dependencies, links and instantiates the main module, and returns it
     * with an opaque `link` that link_free releases after the main instance
     * is freed. Not combined with snapshots. NULL = kiln_instance_new. */
    int (*link_instantiate)(void *user, const kiln_limits *limits, void *const *state,
                            kiln_instance **out /* OUT */, void **link /* OUT */,
                            kiln_err *err);
    void (*link_free)(void *user, void *link);
    void *link_user;
} xtm_options;

typedef struct xtm_fn xtm_fn;
typedef struct xtm_ctx xtm_ctx;

/* Time limit of a snapshot's initialisation (deploy time), unless the
 * function's own limit is longer. */
#define XTM_SNAPSHOT_INIT_MS 10000

/* Create the per-function state. KILN_OK or KILN_ENOMEM. */
int xtm_fn_new(const xtm_options *o, xtm_fn **out /* OUT */, kiln_err *err);
/* Free the state and every pooled instance. No call may be in flight. */
void xtm_fn_free(xtm_fn *f);
const xtm_options *xtm_fn_options(const xtm_fn *f);
/*
 * Take the function's snapshot on `pre` (options.snapshot): instantiate, run
 * the guest-runtime init (as a fresh call would) and `wizer.initialize` if
 * exported, with only kiln_wasi_snapshot_allow's WASI calls allowed (no
 * Extism host call: their state lives in the host), under the function's
 * limits and at least XTM_SNAPSHOT_INIT_MS; keep the image for every later
 * instance of `pre`. Call once, before any xtm_run. Errors say "snapshot".
 */
/* module_id: the module's SHA-256 when known (NULL else): images portable
 * across compile tiers are cached under it (snapshot.md "Images on disk"). */
int xtm_fn_snapshot(xtm_fn *f, const kiln_instance_pre *pre, const char *module_id,
                    kiln_err *err);

/* Receives the output of a successful call (valid only during the callback).
 * Its return status becomes xtm_run's. */
typedef int (*xtm_output_fn)(void *arg, const uint8_t *out, size_t len, int32_t rc,
                             kiln_err *err);

/*
 * One Extism call, following the spec's per-call sequence: take an idle
 * instance of `pre` from the pool (options.reuse) or instantiate one (plus
 * guest-runtime init), reset Extism memory, set the input, call `export_name`
 * under the time limit, and hand the output to `cb`. Thread-safe.
 * Returns the callback's status, or:
 *   KILN_EGUEST     the plugin set an error or returned non-zero, or a host
 *                   function refused (message "<fn>: <export> returned N: <why>")
 *   KILN_ENOEXPORT  no such callable export ("Function not found: <name>")
 *   KILN_ETIMEOUT   the time limit passed (err->trap = KILN_TRAP_TIMEOUT)
 *   KILN_ETRAP      the guest trapped (err->trap says how; "oom" for the
 *                   Extism memory limit is KILN_TRAP_OUT_OF_MEMORY)
 *   KILN_ENOMEM, or the runtime's instantiation errors.
 */
int xtm_run(xtm_fn *f, const kiln_instance_pre *pre, const char *export_name, const uint8_t *in,
            size_t in_len, xtm_output_fn cb, void *cb_arg, kiln_err *err);

/* Handler plumbing shared with the Otoroshi ABI (same state as kiln_abi_extism's
 * prepare/handle/release, with Otoroshi's call-outcome rules: a non-zero return
 * code alone is success, and an instance that failed a call is never re-used). */
int xtm_handler_prepare(const kiln_function *fn, kiln_module *m, const char *default_export,
                        void **state /* OUT */, kiln_err *err);
int xtm_handler_run(void *state, const kiln_instance_pre *pre, const uint8_t *in, size_t len,
                    xtm_output_fn cb, void *cb_arg, kiln_err *err);
/* The same, calling `export_name` instead of the prepared export (NULL = it):
 * a plugin kind with two entry points (Otoroshi sinks). */
int xtm_handler_run_export(void *state, const kiln_instance_pre *pre, const char *export_name,
                           const uint8_t *in, size_t len, xtm_output_fn cb, void *cb_arg,
                           kiln_err *err);
void xtm_handler_release(void *state);
/* kiln_abi_ops.snapshot for both ABIs: xtm_fn_snapshot on the state. */
int xtm_handler_snapshot(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                         kiln_err *err);

/* Is export `name` callable as an Extism function (type () -> i32 or () -> ())?
 * If not, err says why ("Function not found: <name>", listing candidates). */
int xtm_check_export(const kiln_module *m, const char *name, kiln_err *err);
/* The only callable export that is not an init function, for functions
 * configured without an export name; NULL if there is not exactly one. */
const char *xtm_default_export(const kiln_module *m);
/* Does the module import anything from `module`? */
bool xtm_module_imports(const kiln_module *m, const char *module);

/* The Extism host functions: extism:host/env, the legacy env.extism_*
 * aliases and env.abort (AssemblyScript). Static table. */
const kiln_hostfn *xtm_hostfns(size_t *n /* OUT */);

/* ---- for host functions (this ABI's and Otoroshi's) ---------------------- */

/* The calling instance's Extism context; traps if the instance has none. */
xtm_ctx *xtm_ctx_of(kiln_instance *inst);
const xtm_options *xtm_ctx_options(const xtm_ctx *c);
/* Bytes [off, off+len) of Extism memory, or NULL if out of range. Valid
 * until the next allocation. */
const uint8_t *xtm_bytes(xtm_ctx *c, uint64_t off, uint64_t len);
/* New block holding a copy of data; 0 for len 0. Traps with "oom" over the
 * memory limit; returns 0 when the host itself is out of memory. */
uint64_t xtm_new_block(kiln_instance *inst, const void *data, size_t len);
/* Fail the call with a message (the Extism error still wins). Never returns.
 * Hold no lock and no allocation when calling it. */
__attribute__((noreturn)) void xtm_fail(kiln_instance *inst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Emit a log line at `level` if enabled. */
void xtm_log(xtm_ctx *c, int level, const char *msg, size_t len);
/* Per-call extension data of another ABI: freed (with its function) before
 * every call and when the instance goes away. */
void *xtm_ext_get(xtm_ctx *c);
void xtm_ext_set(xtm_ctx *c, void *p, void (*free_fn)(void *));
/* Milliseconds left before the call's deadline: -1 = no deadline, 0 = passed. */
long long xtm_remaining_ms(const xtm_ctx *c);

/* ---- outbound HTTP (xtm_http.c; the client is src/net) -------------------- */

/* Response headers of r as a compact JSON object of lower-case names; a
 * repeated name keeps its first value if first_wins (Otoroshi), else its last
 * (Extism). jansson-allocated (free()); NULL when out of memory. */
char *xtm_http_headers_json(const net_response *r, bool first_wins);

/* Standard base64 (with padding). Encode returns a kiln_malloc'd string;
 * decode returns KILN_OK or KILN_EINVAL; *out is kiln_malloc'd. */
char *xtm_base64_encode(const uint8_t *data, size_t len);
int xtm_base64_decode(const char *s, size_t len, uint8_t **out /* OUT */, size_t *out_len);

/* ---- manifest (xtm_manifest.c) --------------------------------------------- */

/* One module of a manifest's `wasm` list. */
typedef struct xtm_manifest_module {
    char *name;      /* `name`, default "main" */
    char *path;      /* `path`, resolved (see docs); or NULL when data */
    uint8_t *data;   /* `data` decoded; or NULL */
    size_t len;
    char *hash;      /* expected sha256, lower-case hex, or NULL */
} xtm_manifest_module;

typedef struct xtm_manifest {
    /* The main module (the plugin): the one named "main", else the last. */
    char *wasm_path;     /* its path, resolved (see docs); or NULL when data */
    uint8_t *wasm_data;  /* its data decoded; or NULL */
    size_t wasm_len;
    char *wasm_hash;     /* expected sha256, lower-case hex, or NULL */
    char *wasm_name;     /* its name ("main" unless the last module is named otherwise) */
    /* The other modules, in manifest order: linked by name into every
     * instance of the main module (extism.md, "Linked modules"). */
    xtm_manifest_module *modules;
    size_t n_modules;
    kiln_kv *config;     /* kiln_malloc'd names and values */
    size_t n_config;
    char **allowed_hosts;
    size_t n_allowed_hosts;
    kiln_wasi_preopen *allowed_paths; /* "ro:" prefix -> read_only */
    size_t n_allowed_paths;
    long long max_pages;               /* -1 = unset */
    long long max_http_response_bytes; /* -1 = unset */
    long long max_var_bytes;           /* -1 = unset */
    long long timeout_ms;              /* -1 = unset */
    bool http_response_headers;        /* allow_http_response_headers (Kiln's field) */
} xtm_manifest;

/*
 * Parse an Extism manifest (JSON). Several `wasm` entries: names default to
 * "main"; duplicates are refused ("Duplicate module name found in Extism
 * manifest: <name>"); the one named "main", or the last, is the plugin.
 * Relative wasm paths are tried as given,
 * then against `base_dir` (the manifest's directory; may be NULL). Unknown
 * fields are rejected, as Extism does. KILN_OK or KILN_ECONFIG / KILN_ENOMEM
 * with a message naming the field. Free with xtm_manifest_fini.
 */
int xtm_manifest_parse(const char *json, size_t len, const char *base_dir,
                       xtm_manifest *out /* OUT */, kiln_err *err);
void xtm_manifest_fini(xtm_manifest *m);
/* Check bytes against a lower-case hex SHA-256. KILN_OK or KILN_EINVAL with
 * "Hash mismatch, found <actual> but expected <expected>". */
int xtm_check_hash(const uint8_t *data, size_t len, const char *expected, kiln_err *err);

#endif
