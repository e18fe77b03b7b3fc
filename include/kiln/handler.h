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

#include "aot.h"
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
    bool snapshot;           /* start every instance from an image taken after init */
    bool request_json;       /* Extism: input is a JSON description of the request */
    size_t max_var_bytes;
    size_t max_http_response_bytes;
    /* Extism/Otoroshi: http_request records the response's headers for
     * http_headers() (config `allow_http_response_headers`, the host option
     * extism_plugin_allow_http_response_headers). Off: http_headers() is 0. */
    bool http_response_headers;
    size_t max_output_bytes; /* response body cap */
    const struct kiln_kv_config *kv; /* KV settings (kv.h); NULL = defaults */
    kiln_log_limits log;     /* guest log budget per invocation */
    const kiln_kv *clusters; /* named upstreams (config `clusters`): proxy-wasm http_call */
    size_t n_clusters;
    /* Set by the server, not the configuration: per-function host contexts
     * (KILN_STATE_KV grants, KILN_STATE_HTTP, KILN_STATE_HOST, ...) that every
     * instance of the function gets in the same state slots. ABIs copy the
     * non-NULL slots into the state they pass to kiln_instance_new. */
    void *host_state[KILN_STATE_SLOTS];
    /* Set by the server: hex SHA-256 of the module bytes, or NULL. Snapshot
     * images are cached under it (runtime.h "Images on disk"). */
    const char *module_id;
    /* Set by the server: the owner of this function and of everything it
     * points to (the route table). An ABI that keeps instances beyond a
     * request (proxy-wasm VMs, whose timers fire between requests) holds a
     * reference for as long as it keeps one; NULL hooks: nothing to hold
     * (kiln call, libkiln, unit tests). */
    void *owner;
    void (*owner_retain)(void *owner);
    void (*owner_release)(void *owner);
} kiln_function;

/* ---- pipeline stages -------------------------------------------------------
 *
 * A route is a chain: plugins in front of one backend (a function or an
 * upstream service). The server (src/http/pipeline.c) runs the chain on the
 * request's fiber; a plugin is a function whose ABI implements the stage ops
 * below. Kinds follow Otoroshi's plugin kinds, plus proxy-wasm filters.
 * Order: matchers (does the route take the request?), pre-route, access,
 * request transformers and filters' request side in configured order,
 * backend, response transformers and filters' response side. Sinks answer
 * requests that no route matched.
 */
typedef enum kiln_stage_kind {
    KILN_STAGE_MATCHER = 0,   /* verdict NO_MATCH: the route does not take it */
    KILN_STAGE_PRE_ROUTE = 1, /* may answer first */
    KILN_STAGE_ACCESS = 2,    /* CONTINUE = allowed; RESPOND = denied (the answer) */
    KILN_STAGE_REQUEST = 3,   /* may edit the request, or answer */
    KILN_STAGE_RESPONSE = 4,  /* may edit the response */
    KILN_STAGE_SINK = 5,      /* answers a request no route matched */
    KILN_STAGE_FILTER = 6,    /* proxy-wasm: request and response phases, one stream */
} kiln_stage_kind;
#define KILN_STAGE_KINDS 7

/* "matcher", "pre-route", "access", "request", "response", "sink", "proxy-wasm". */
KILN_API const char *kiln_stage_kind_name(kiln_stage_kind kind);
/* The kind named `name` (as above), or -1. */
KILN_API int kiln_stage_kind_parse(const char *name);

typedef enum kiln_stage_phase {
    KILN_PHASE_MATCH = 0,    /* matcher; sink: does it take the request? */
    KILN_PHASE_REQUEST = 1,  /* pre-route, access, request, filter request side */
    KILN_PHASE_RESPONSE = 2, /* response, filter response side */
    KILN_PHASE_HANDLE = 3,   /* sink: answer the request */
} kiln_stage_phase;

enum {
    KILN_STAGE_CONTINUE = 0, /* go on with the next stage */
    KILN_STAGE_RESPOND = 1,  /* kiln_stage_response() holds the answer: stop the chain */
    KILN_STAGE_NO_MATCH = 2, /* matcher / sink: not this request */
};

/* One plugin as configured on a route. Immutable while serving. */
typedef struct kiln_plugin {
    const char *name;        /* the function's name, for messages */
    kiln_stage_kind kind;
    const char *config_json; /* its `config` (proxy-wasm: `configuration`) as JSON text; "{}" if none */
    const char *vm_config;   /* proxy-wasm `vm_configuration` as given, or NULL */
    unsigned index;          /* position in the route's chain: its kiln_stage_stream slot */
} kiln_plugin;

/*
 * The state of one request going through a chain (src/abi/stage.c): the
 * request as edited so far, the response, the attributes plugins share
 * (Otoroshi's attrs: key -> JSON text, exact as written), and a per-plugin
 * slot for ABIs that keep a stream across phases. Owned by whoever made it
 * (the server); one fiber uses it at a time. Every string handed in is
 * copied. Functions returning int give KILN_OK or KILN_ENOMEM.
 */
typedef struct kiln_stage kiln_stage;

typedef struct kiln_stage_info {
    const char *route;    /* the route's pattern as written ("" for a sink) */
    const char *route_host; /* its host, or NULL */
    const char *backend;  /* backend function name or upstream URL ("" for a sink) */
    int sink_status;      /* sinks: what Kiln would answer without them (404) */
    const char *sink_message;
} kiln_stage_info;

#define KILN_STAGE_MAX_PLUGINS 32 /* plugins per route */

/* `req` is copied lazily: the view stays valid until the first edit.
 * `max_body` caps the response (kiln_response_init). */
KILN_API int kiln_stage_new(const kiln_request *req, const kiln_stage_info *info,
                            size_t max_body, kiln_stage **out /* OUT */);
KILN_API void kiln_stage_free(kiln_stage *st);
KILN_API const kiln_stage_info *kiln_stage_get_info(const kiln_stage *st);
/* The request as the next stage sees it (edits applied). */
KILN_API const kiln_request *kiln_stage_request(const kiln_stage *st);
KILN_API int kiln_stage_set_method(kiln_stage *st, const char *method);
/* "/path?query", or an absolute URL whose path and query are taken (the
 * scheme and host of a backend are the route's, not the plugin's). */
KILN_API int kiln_stage_set_url(kiln_stage *st, const char *url);
KILN_API int kiln_stage_set_headers(kiln_stage *st, const kiln_kv *h, size_t n); /* replace all */
/* Replace (case-insensitive) or add one header; value NULL removes it. */
KILN_API int kiln_stage_set_header(kiln_stage *st, const char *name, const char *value);
KILN_API int kiln_stage_set_body(kiln_stage *st, const void *body, size_t len);
/* The response: the answer being built (RESPOND), or the backend's during
 * KILN_PHASE_RESPONSE, edited in place. */
KILN_API kiln_response *kiln_stage_response(kiln_stage *st);
/* Attributes. kiln_stage_attr returns the value's JSON text or NULL. */
KILN_API const char *kiln_stage_attr(const kiln_stage *st, const char *key);
KILN_API int kiln_stage_attr_set(kiln_stage *st, const char *key, const char *json, size_t len);
KILN_API bool kiln_stage_attr_del(kiln_stage *st, const char *key);
KILN_API void kiln_stage_attrs_clear(kiln_stage *st);
/* {"key": value, ...} with every value exactly as set; malloc'd (free()). */
KILN_API char *kiln_stage_attrs_json(const kiln_stage *st, size_t *len /* OUT */);
/* The per-request slot of plugin `index` (< KILN_STAGE_MAX_PLUGINS). */
KILN_API void **kiln_stage_stream(kiln_stage *st, unsigned index);
/* The chain the running invocation belongs to (a fiber-local), or NULL
 * outside a pipeline (kiln call, plain function routes without plugins
 * still have one). Set by the server around every stage and backend. */
KILN_API kiln_stage *kiln_stage_current(void);
KILN_API void kiln_stage_set_current(kiln_stage *st);

/* ---- events ----------------------------------------------------------------
 *
 * An event is a call that does not come from an HTTP request: a committed
 * write in a KV namespace a function subscribes to (src/event/), later
 * schedules and messages. Types and fields follow the `kiln:faas` WIT world
 * (wit/kiln-faas.wit): components receive it as a `handler-event` record,
 * core modules as JSON (docs/internals/events.md). A view valid for the
 * duration of the ABI's event() call.
 */
typedef enum kiln_event_type {
    KILN_EVENT_OBJECT_ADDED = 0,
    KILN_EVENT_OBJECT_REMOVED = 1,
    KILN_EVENT_OBJECT_UPDATED = 2,
    KILN_EVENT_SCHEDULED = 3,
    KILN_EVENT_MESSAGE = 4,
} kiln_event_type;
#define KILN_EVENT_TYPES 5

/* "object-added", "object-removed", "object-updated", "scheduled", "message". */
KILN_API const char *kiln_event_type_name(kiln_event_type type);
/* The type named `name` (as above), or -1. */
KILN_API int kiln_event_type_parse(const char *name);

typedef struct kiln_event {
    kiln_event_type type;
    int64_t timestamp_ns;   /* wall clock when the write committed (ns since the epoch) */
    const char *version;    /* the event format's version ("1") */
    const char *source;     /* where it came from: "kv:NAMESPACE" */
    const uint8_t *key;     /* the KV key (any bytes) */
    size_t key_len;
    const uint8_t *payload; /* the value written; empty for object-removed */
    size_t payload_len;
    uint64_t id;            /* the event's sequence number in its queue */
    uint32_t attempt;       /* 1 on first delivery, then 2, 3, ... on retries */
} kiln_event;

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
    /* Optional: the server stopped routing to this prepared function (a new
     * table replaced its table). Instances kept beyond a request must go
     * at their next chance, dropping the owner references that would
     * otherwise keep the old table alive. Thread-safe; release() comes
     * later, when the last reference to the table goes. */
    void (*retire)(void *state);
    /* Optional (fn->snapshot): run the function's initialisation once on
     * `pre` and keep the image every later instance starts from (runtime.h
     * "snapshots"). Called after prepare, at deploy time; a failure makes
     * the function unavailable with err's message; on success err->msg may
     * say where the image came from (the server logs it). NULL: the ABI
     * cannot. */
    int (*snapshot)(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                    kiln_err *err);

    /* Optional: deliver one event to the function (fresh instance, the
     * function's limits and grants, like handle()). KILN_OK = handled;
     * any error = the handler failed (the caller retries, then logs and
     * counts it), with err naming the cause: a trap, a timeout, or what the
     * handler answered (a component's handler-error, a core module's
     * non-zero status). Thread-safe. NULL: the ABI cannot take events. */
    int (*event)(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                 const kiln_event *ev, kiln_err *err);

    /* ---- modules that are not core modules (both NULL: core modules only) ----
     * A WebAssembly component (docs/internals/component.md "Serving") is not
     * a kiln_module: it never reaches the core reader, pre or prepare().
     * claims: does this ABI own a module file whose first bytes are `head`
     * (n <= 8: the preamble)? The server asks the registry
     * (kiln_abi_claim) before compiling; a claimed module goes to load()
     * instead, whatever fn->abi says (a mismatch is a configuration error).
     * load: read fn->module_path, compile what it embeds through the
     * artifact cache with `aot` (its `imports` unset), check what it
     * imports, and set *state as prepare() does. KILN_ECONFIG for settings
     * the ABI refuses, KILN_EIMPORT naming an import Kiln lacks, else as the
     * compiler. handle(), event() and release() then get that state with
     * pre == NULL. */
    bool (*claims)(const uint8_t *head, size_t n);
    int (*load)(const kiln_function *fn, const kiln_aot_options *aot, void **state /* OUT */,
                kiln_err *err);
    /* Optional, for compile tiers (kiln serve; both NULL: load() at the
     * optimised tier before serving). Every artifact a loaded module uses
     * is at one tier.
     * load_best: as load(), compiling nothing: at the optimised tier if
     * every artifact of it is cached, else at the fast tier if every one of
     * those is (*tier says which; kiln_aot_best_tier's choice). The checks
     * of load() come first and fail as there; then KILN_ENOENT when some
     * tier still has to be compiled (compile() it), else the optimised
     * tier's failure (both tiers failed). A file that cannot be read is
     * KILN_EIO, never KILN_ENOENT.
     * compile: compile tier aot->tier of everything the file at `path`
     * embeds into the artifact cache, loading nothing (the background
     * compiler; `display` names the function in messages). */
    int (*load_best)(const kiln_function *fn, const kiln_aot_options *aot,
                     void **state /* OUT */, kiln_aot_tier *tier /* OUT */, kiln_err *err);
    int (*compile)(const char *path, const char *display, const kiln_aot_options *aot,
                   kiln_err *err);

    /* ---- as a pipeline plugin (all NULL: the ABI only serves backends) ---- */
    /* The export a plugin of `kind` calls when the configuration names none;
     * NULL if the ABI cannot be a plugin of that kind. A non-NULL return of
     * "" means "supported, no export to check" (proxy-wasm). */
    const char *(*stage_export)(kiln_stage_kind kind);
    /* Run `plugin` (a function prepared with the plugin's export) for one
     * phase of the request in `st`. Sets *verdict (KILN_STAGE_*). Errors as
     * handle(): the server fails the request naming the plugin (trap 500,
     * timeout 504, KILN_EBADOUTPUT 502) and never lets it through. */
    int (*stage)(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                 const kiln_plugin *plugin, kiln_stage_phase phase, kiln_stage *st,
                 int *verdict /* OUT */, kiln_err *err);
    /* Optional: the request is over (answered, failed or cancelled); release
     * what the plugin kept in *kiln_stage_stream(st, plugin->index) (called
     * only when that slot is non-NULL, in reverse chain order). */
    void (*stage_end)(const kiln_function *fn, void *state, const kiln_plugin *plugin,
                      kiln_stage *st, void *stream);
} kiln_abi_ops;

/* The registry of built-in ABIs (src/abi/abi.c). NULL if unknown. */
KILN_API const kiln_abi_ops *kiln_abi_find(const char *name);
/* Best-matching ABI for a loaded module, or NULL. */
KILN_API const kiln_abi_ops *kiln_abi_detect(const kiln_module *m);
/* The ABI that loads a module starting with `head` itself (ops.claims), or
 * NULL: a core module. */
KILN_API const kiln_abi_ops *kiln_abi_claim(const uint8_t *head, size_t n);

#endif
