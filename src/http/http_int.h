/*
 * http_int.h - private to src/http: the route table (loaded functions and
 * their router) shared by server.c, table.c and fn_handler.c.
 *
 * Lifetime: a table is built from a configuration by the main thread, then
 * published with an atomic pointer store. Each request takes a reference for
 * its whole life (http_table_acquire/release); a reload swaps the pointer
 * and drops the server's own reference, so the old table is freed by
 * whichever thread finishes its last request.
 */
#ifndef KILN_HTTP_HTTP_INT_H
#define KILN_HTTP_HTTP_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "abi/kiln/kiln_host.h"
#include "config/config.h"
#include "http/http.h"
#include "http/router.h"
#include "kiln/handler.h"
#include "kiln/kv.h"
#include "kiln/runtime.h"

/* One module as configured: compiled and loaded once per table. */
#define HTTP_UPSTREAM_MAX_RESPONSE ((size_t)64 << 20)

/* http_mod.status while its first tier is being compiled in the background
 * (503 "compiling" with Retry-After); not a KILN_E* code. */
#define HTTP_MOD_COMPILING 1

typedef struct http_mod {
    const cfg_function *cf;
    const kiln_abi_ops *abi;
    kiln_module *mod;
    kiln_linker *linker; /* WASI + the ABI's host functions; outlives every pre */
    /* A module the ABI loads itself (handler.h: claims/load, e.g. a
     * component): the state its load() made, shared by the module's
     * functions and released with abi->release when the table goes; mod and
     * linker stay NULL. */
    void *loaded;
    bool loaded_kept; /* `loaded` is the previous table's (keep_previous): not ours to release */
    int status;          /* KILN_OK, or why the module cannot serve */
    char reason[200];    /* short cause for the 503 body (details go to the log) */
    char detail[512];    /* a module its ABI loaded (loaded below) and refused: the full
                            message, which the admin API reports; "" otherwise */
    char hash[65];       /* sha256 of the module bytes serving (hex), "" if unknown */
    char tier[16];       /* tier serving: "fast"/"optimized" (tiers), "O2" etc. (--no-tiers);
                            "" if none. A claimed module (a component) has one tier for
                            every artifact it embeds */
    /* snapshot: true and its image is ready: "loaded" (from the artifact
     * cache), "built" (init ran, image saved) or "memory" (built, not
     * cached); "" otherwise. Set while the table is built. */
    char snapshot[8];
    /* The file's newest contents failed and the previous table's module for
     * this function kept serving: why (for status and the log). */
    char refused[300];
    /* Set when the previous version was kept: cf then points into the
     * previous table's configuration (kept alive by http_table.kept), and
     * kept_index is the function's index there (for its routes). */
    const cfg_config *kept_cfg;
    size_t kept_index;
} http_mod;

/* A route target: one function of a module (directory mode makes one per
 * exported plugin function). */
typedef struct http_fn {
    kiln_function fn;         /* a copy of the configured one; name/export may be owned */
    char *owned_name, *owned_export;
    http_mod *mod;            /* NULL for an upstream */
    const kiln_abi_ops *abi;  /* mod->abi, or Otoroshi's for an Extism module used as an
                                 Otoroshi plugin (Otoroshi's host ABI is a superset) */
    const char *upstream;     /* a route to an upstream service: its base URL (proxy.c) */
    char *strip;              /* upstream prefix routes: the literal prefix taken off */
    kiln_instance_pre *pre;
    void *state;              /* from abi->prepare */
    bool prepared;
    size_t max_body_bytes;    /* request body limit */
    int status;               /* KILN_OK or unavailable (503) */
    const char *reason;
    kiln_kv_grants *kv;       /* fn.host_state[KILN_STATE_KV] */
    kiln_host_ctx host;       /* fn.host_state[KILN_STATE_HOST] */
    /* The only mutable part, for the time-limit breaker (server.c): requests
     * of this function running now, and until when it counts as looping
     * (one of its invocations hit the time limit). */
    atomic_uint running;
    _Atomic uint64_t hot_until_ns;
} http_fn;

/* One plugin of a route's chain, or a sink: its function prepared with the
 * plugin's export (owned by the table's fns). */
typedef struct http_plugin {
    kiln_plugin p;
    http_fn *fn;
} http_plugin;

/* A router target: a route's chain and its backend. */
typedef struct http_route {
    http_fn *backend;        /* a function or an upstream */
    http_plugin *plugins;    /* in configured order */
    size_t n_plugins;
    bool has_matchers;
    kiln_stage_info info;    /* strings owned below / by the configuration */
    char *pattern;
    kiln_limits task_limits; /* the request's fiber: the largest stack of the chain */
} http_route;

typedef struct http_table {
    atomic_long refs;
    cfg_config *cfg;
    http_mod *mods;
    size_t n_mods;
    http_fn **fns;
    size_t n_fns, cap_fns;
    http_router *router;   /* targets are http_route */
    http_route **routes;
    size_t n_routes, cap_routes;
    http_plugin *sinks;    /* answer requests no route matched, in order */
    size_t n_sinks;
    cfg_server server; /* effective settings (configuration + command line) */
    char **lines;      /* the routes, described for the log */
    size_t n_lines;
    /* Earlier tables whose configuration a kept function's settings live
     * in (each at most once; no chains); released with this one. */
    struct http_table **kept;
    size_t n_kept;
} http_table;

/*
 * Build a table from `cfg` (ownership passes to the table, also on failure):
 * compile every module (in parallel), detect ABIs, prepare functions and add
 * routes. A module that fails to compile or link only makes its routes answer
 * 503 (the compiler's message is logged); configuration mistakes (bad route
 * pattern, duplicate route, a setting the ABI refuses) fail the whole build
 * with KILN_ECONFIG. The table starts with one reference.
 */
/* `prev` (may be NULL): the table serving now; a function whose module now
 * fails keeps prev's working module for that name (a broken new version never
 * replaces a working one). */
typedef struct http_bg http_bg;
/* `bg` (may be NULL): modules not cached yet are compiled there and answer
 * 503 "compiling" meanwhile; NULL compiles them before returning. */
int http_table_build(cfg_config *cfg, const http_options *o, const http_table *prev,
                     http_bg *bg, http_table **out /* OUT */,
                     kiln_err *err);
void http_table_retain(http_table *t);
/* Drop a reference; the last one frees the table (any thread). */
void http_table_release(http_table *t);
/* The server no longer routes through t: each prepared function's ABI drops
 * what it keeps beyond a request (kiln_abi_ops.retire). Thread-safe. */
void http_table_retire(http_table *t);
/* Log the routes of a table, one line each. */
void http_table_log_routes(const http_table *t);

/*
 * Run one request through `f` and leave a complete response in resp: the
 * function's own, or a JSON error mapped from its failure (503 unavailable,
 * 500 trap / out of memory / guest error / non-zero exit, 504 timeout,
 * 502 malformed output). Never fails; returns the kiln status for logging.
 */
int http_fn_invoke(const http_fn *f, const kiln_request *req, kiln_response *resp);

/* A function that cannot run now (still compiling, or unavailable): answer
 * 503 in resp and return its status; KILN_OK if it can run. */
int http_fn_refuse(const http_fn *f, kiln_response *resp);

/* Map a failed invocation of function `name` (rc, err; limits for the
 * timeout message) to its HTTP error in resp (statuses as http_fn_invoke);
 * `stage` names the plugin kind when a plugin failed, else NULL. */
int http_fail_response(const char *name, const kiln_limits *limits, const char *stage, int rc,
                       kiln_err *err, kiln_response *resp);

/*
 * One request through the table (pipeline.c), on the request's fiber:
 * route matchers (falling through to the next candidate route), the chain
 * in front of the backend, the backend, the response side; or, when no route
 * matched (route NULL), the sinks, then 404. Leaves the answer in x->resp;
 * never fails; returns the kiln status for logging.
 */
typedef struct http_exchange {
    const http_table *table;
    http_route *route;      /* the router's choice (NULL: none; sinks); updated on fall-through */
    http_match *match;      /* its match; replaced on fall-through */
    kiln_request *req;      /* as received; params follow the route taken */
    kiln_response *resp;    /* the answer (initialised by the caller) */
    const char *host;       /* for re-matching */
    const char *raw_path;
    size_t raw_len;
    const http_fn *served_by; /* out: the function that answered, for logs and the breaker */
} http_exchange;
int http_pipeline_run(http_exchange *x);

/* Replace resp with a JSON error body {"error": msg, "function": fn}. */
void http_error_response(kiln_response *resp, int status, const char *fn, const char *msg);

/* One line to stderr in a single write (lines of concurrent threads never
 * interleave). Adds the newline. */
void http_log(const char *fmt, ...) KILN_PRINTF(1, 2);

/* Open connections per client address over all workers (conn_limit.c).
 * Thread-safe; touched on accept and close only. */
struct sockaddr;
typedef struct http_ip_table http_ip_table;
int http_ip_table_new(http_ip_table **out /* OUT */);
void http_ip_table_free(http_ip_table *t);
/* May `addr` open one more connection under `cap` (0 = no cap)? */
bool http_ip_admit(http_ip_table *t, const struct sockaddr *addr, unsigned cap);
void http_ip_count(http_ip_table *t, const struct sockaddr *addr, int delta);

/* The background compiler (bg_compile.c): compiles a module's tier off the
 * request path, then calls done(arg) (the server's rescan). Thread-safe. */
int http_bg_new(void (*done)(void *arg), void *arg, http_bg **out /* OUT */);
void http_bg_free(http_bg *bg); /* waits for a compile in progress */
/* Queue `tier` of the module at `path` (content `hash`) unless it is queued
 * or compiling already, or that tier of that content failed in this server
 * already (the failure was logged then; a new module version or a restart
 * tries again). `loader` NULL: a core module (kiln_aot_load_file); else the
 * ABI that claimed the file, whose compile() builds the tier of everything
 * it embeds (a component's core modules). */
void http_bg_submit(http_bg *bg, const char *name, const char *path, const char *hash,
                    const kiln_abi_ops *loader, const kiln_aot_options *ao, kiln_aot_tier tier);

/* Answer `req` from the upstream service of `f` (proxy.c): forwards method,
 * path and query (below the upstream's base path), headers without the
 * hop-by-hop ones, X-Forwarded-For/-Host/-Proto, and the body; relays status,
 * headers and body. Unreachable upstream: 502; no answer within the route's
 * timeout: 504; both name the upstream. On a serve worker the fiber waits. */
int http_proxy(const http_fn *f, const kiln_request *req, kiln_response *resp);

/* Storage events (events.c): give the dispatcher *d the subscribers of
 * table t (starting it when the first one appears; *d may stay NULL while
 * nobody subscribes). Main thread. KILN_OK or the failure (logged). */
struct ev_dispatcher;
struct ev_host;
int http_events_update(struct ev_dispatcher **d, const struct ev_host *host, http_table *t);
/* http_server_events_dead over table t. */
char *http_events_dead_json(const http_table *t, size_t max);

#endif
