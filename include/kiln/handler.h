/*
 * handler.h - the seam between the HTTP server and the handler ABIs
 * (WASI/CGI, Extism, Otoroshi JSON, later proxy-wasm).
 *
 * The server turns an HTTP request into a kiln_request view, picks the
 * route's kiln_function and calls its ABI's kiln_abi_ops.handle(), which
 * instantiates the function's module (fresh per request unless fn->reuse),
 * runs it and fills a kiln_response. The server never names an ABI; ABIs
 * never include server code. Errors come back as a status + kiln_err; the
 * server maps them to HTTP (trap 500, timeout 504, out of memory 500,
 * KILN_EGUEST 500 with the guest's message, KILN_EBADOUTPUT 502).
 */
#ifndef KILN_HANDLER_H
#define KILN_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "runtime.h"

typedef struct kiln_kv {
    const char *name;
    const char *value;
} kiln_kv;

/* A request, as a read-only view valid for the duration of handle(). */
typedef struct kiln_request {
    const char *method;
    const char *url;   /* path?query as received */
    const char *path;  /* decoded path, no query */
    const char *query; /* raw query string without '?', "" if none */
    const char *host;  /* Host header or "" */
    const char *remote_addr;
    const kiln_kv *headers;
    size_t n_headers;
    const kiln_kv *params; /* route parameters (":id" -> value) */
    size_t n_params;
    const uint8_t *body;
    size_t body_len;
} kiln_request;

/* A response under construction. Owned by the caller: kiln_response_init
 * before handle(), kiln_response_fini after. Body growth is capped at
 * max_body bytes (KILN_ELIMIT beyond). */
typedef struct kiln_response {
    int status; /* 200 unless set */
    kiln_kv *headers; /* malloc'd names and values */
    size_t n_headers, cap_headers;
    uint8_t *body;
    size_t body_len, body_cap, max_body;
} kiln_response;

KILN_API void kiln_response_init(kiln_response *r, size_t max_body);
KILN_API void kiln_response_fini(kiln_response *r);
/* Copy name/value in. KILN_OK or KILN_ENOMEM. */
KILN_API int kiln_response_add_header(kiln_response *r, const char *name, const char *value);
KILN_API int kiln_response_add_header_n(kiln_response *r, const char *name, size_t nlen,
                                        const char *value, size_t vlen);
KILN_API int kiln_response_append(kiln_response *r, const void *data, size_t len);
/* Drop headers and body (status back to 200), e.g. before an error body. */
KILN_API void kiln_response_reset(kiln_response *r);

typedef struct kiln_dir {
    const char *host;
    const char *guest;
    bool read_only;
} kiln_dir;

/* How much a function's guest may write to the server log per invocation,
 * over every ABI's logging (kiln.log, Extism log_*, Otoroshi proxy_log,
 * WASI-CGI stderr): lines beyond max_lines or max_bytes are dropped, longer
 * lines cut at max_line_bytes, and one line per invocation reports what was
 * dropped. 0 in a field = its default. */
#define KILN_LOG_DEFAULT_MAX_LINES 100u
#define KILN_LOG_DEFAULT_MAX_BYTES ((uint64_t)64 << 10)
#define KILN_LOG_DEFAULT_MAX_LINE_BYTES 1024u
#define KILN_LOG_MAX_LINE_BYTES (16u << 10) /* ceiling of max_line_bytes */

typedef struct kiln_log_limits {
    uint32_t max_lines;
    uint64_t max_bytes; /* message bytes, after truncation */
    uint32_t max_line_bytes;
} kiln_log_limits;

/* A function as configured. Immutable while serving; strings owned by the
 * configuration that produced it. */
typedef struct kiln_function {
    const char *name;
    const char *module_path;
    const char *abi;         /* "wasi", "extism", "otoroshi", or NULL = detect */
    const char *export_name; /* Extism/Otoroshi function to call */
    const kiln_kv *config;   /* Extism config / Otoroshi config */
    size_t n_config;
    const kiln_kv *env;      /* WASI environment */
    size_t n_env;
    const char *const *allowed_hosts; /* outbound HTTP globs; none = nothing allowed */
    size_t n_allowed_hosts;
    const kiln_dir *dirs;    /* WASI preopens */
    size_t n_dirs;
    kiln_limits limits;
    bool reuse;              /* keep one instance per worker thread */
    bool request_json;       /* Extism: input is a JSON description of the request */
    size_t max_var_bytes;
    size_t max_http_response_bytes;
    size_t max_output_bytes; /* response body cap */
    const struct kiln_kv_config *kv; /* KV settings (kv.h); NULL = defaults */
    kiln_log_limits log;     /* guest log budget per invocation */
    /* Set by the server, not the configuration: per-function host contexts
     * (KILN_STATE_KV grants, KILN_STATE_HTTP, KILN_STATE_HOST, ...) that every
     * instance of the function gets in the same state slots. ABIs copy the
     * non-NULL slots into the state they pass to kiln_instance_new. */
    void *host_state[KILN_STATE_SLOTS];
} kiln_function;

typedef struct kiln_abi_ops {
    const char *name;
    /* 0 = not this ABI; higher = more specific. Used when fn->abi is NULL. */
    int (*detect)(const kiln_module *m);
    /* Host functions the ABI provides (imports are checked against these
     * plus WASI before compiling). */
    const kiln_hostfn *(*hostfns)(size_t *n);
    /* Per-function setup once the module is loaded (find exports, parse
     * config); *state is passed to handle() and release(). */
    int (*prepare)(const kiln_function *fn, kiln_module *m, void **state /* OUT */,
                   kiln_err *err);
    /* Serve one request. Thread-safe: called concurrently from workers. */
    int (*handle)(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                  const kiln_request *req, kiln_response *resp, kiln_err *err);
    void (*release)(void *state);
} kiln_abi_ops;

/* The registry of built-in ABIs (src/abi/abi.c). NULL if unknown. */
KILN_API const kiln_abi_ops *kiln_abi_find(const char *name);
/* Best-matching ABI for a loaded module, or NULL. */
KILN_API const kiln_abi_ops *kiln_abi_detect(const kiln_module *m);

#endif
