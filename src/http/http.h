/*
 * http.h - `kiln serve`: the HTTP server that runs a Wasm function per
 * request. The interface the CLI uses; everything else in src/http is
 * private (http_int.h). docs/internals/http.md describes the design.
 */
#ifndef KILN_HTTP_HTTP_H
#define KILN_HTTP_HTTP_H

#include <stdbool.h>

#include "kiln/aot.h"
#include "kiln/kiln.h"

typedef struct http_server http_server;

typedef struct http_options {
    const char *config_path; /* --config FILE, or */
    const char *dir;         /* DIR: serve every *.wasm in it (watched: changes are live) */
    /* A second directory served next to the above, in the same way (watched;
     * NAME.wasm + optional NAME.yaml/NAME.json sidecar): where the admin API
     * puts deployed functions. NULL = none. */
    const char *managed_dir;
    /* Directory functions are also served by host: NAME.DOMAIN (NULL =
     * "localhost"; "" = off). */
    const char *domain;
    /* Called on the main thread once the server listens (s stays valid until
     * on_stopping returns) and when it starts to drain. May be NULL. */
    void (*on_started)(http_server *s, void *arg);
    void (*on_stopping)(http_server *s, void *arg);
    void *hook_arg;
    const char *listen;      /* "ADDR:PORT" overriding the configuration; NULL = keep */
    unsigned threads;        /* worker threads overriding the configuration; 0 = keep */
    int quiet;               /* -1 = keep, 0/1 = override the access log setting */
    kiln_aot_options aot;    /* compiler, optimisation level, cache (imports is set per module) */
    /* Compile in one step before serving (aot as given) instead of in tiers
     * in the background (fast tier, then optimised; 503 "compiling" meanwhile). */
    bool no_tiers;
} http_options;

/*
 * Load the configuration, compile every module, listen, and serve until
 * SIGTERM or SIGINT; SIGHUP reloads the configuration. Blocks SIGTERM,
 * SIGINT, SIGHUP in the calling thread and ignores SIGPIPE. Returns the
 * process exit status: 0 after a clean drain, 1 when the server cannot start
 * (err explains: bad configuration, address in use, ...).
 */
int http_serve(const http_options *o, kiln_err *err);

/* What a running server serves under one function name (thread-safe). */
typedef struct http_fn_status {
    bool found;
    bool available;          /* answers requests (else 503: compiling or failed) */
    bool compiling;          /* its first tier is still being compiled */
    char tier[16];           /* "tcc", "O2", ... of the artifact serving, or "" */
    char module_hash[65];    /* sha256 of the module bytes serving, or "" */
    char abi[32];
    char error[512];         /* why it is unavailable, or why its newest module was refused */
    unsigned n_routes;
    char snapshot[8];        /* "loaded", "built", "memory" (see http_mod), or "" */
} http_fn_status;
void http_server_fn_status(http_server *s, const char *name, http_fn_status *out /* OUT */);
/* Names of every function served, malloc'd array of malloc'd strings. */
size_t http_server_fn_names(http_server *s, char ***out /* OUT */);
/* The dead-lettered storage events (docs/internals/events.md) of the stores
 * the served functions' subscriptions live in, newest first, at most max
 * per store: JSON text {"dead":[{"id", "function", "namespace",
 * "event_type", "key" or "key_base64", "payload" (base64), "attempts",
 * "cause", "event_timestamp"}]}, malloc'd (free()); NULL when out of
 * memory. Thread-safe. */
char *http_server_events_dead(http_server *s, size_t max);
/* Re-read the configuration and the watched directories now, as a change
 * seen by the watcher would (asynchronous: the main thread does it). */
void http_server_rescan(http_server *s);

#endif
