/*
 * config.h - the `kiln serve` configuration as plain structs: parsed from a
 * YAML file (libyaml), a JSON file (jansson checks the syntax; the same tree
 * walker reads both) or derived from a directory of modules. No behaviour
 * lives here: src/http compiles the modules and builds the routes.
 *
 * Every error message starts with "FILE:LINE: " and names the key, e.g.
 *   kiln.yaml:12: unknown key 'memroy' in function 'hello'; expected one of: ...
 * The schema and its defaults are documented in README.md ("Configuration").
 */
#ifndef KILN_CONFIG_CONFIG_H
#define KILN_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "kiln/handler.h"
#include "kiln/kiln.h"
#include "kiln/kv.h"

/* Defaults, also used by the directory mode and documented in the README. */
#define CFG_DEFAULT_LISTEN "127.0.0.1:8080"
#define CFG_DEFAULT_MAX_MEMORY ((uint64_t)64 << 20)
#define CFG_DEFAULT_TIMEOUT_MS 5000u
#define CFG_DEFAULT_MAX_HEADER_BYTES ((size_t)16 << 10)
#define CFG_DEFAULT_MAX_BODY_BYTES ((size_t)10 << 20)
#define CFG_DEFAULT_MAX_OUTPUT_BYTES ((size_t)16 << 20)
#define CFG_DEFAULT_MAX_VAR_BYTES ((size_t)1 << 20)
#define CFG_DEFAULT_MAX_HTTP_RESPONSE_BYTES ((size_t)50 << 20)
#define CFG_DEFAULT_CONNECTION_TIMEOUT_S 30u
#define CFG_DEFAULT_DRAIN_TIMEOUT_S 30u
#define CFG_DEFAULT_MAX_CONNECTIONS 1024u
#define CFG_DEFAULT_HEADER_TIMEOUT_MS 10000u
#define CFG_DEFAULT_MIN_BODY_RATE ((size_t)1 << 10)
#define CFG_DEFAULT_MAX_CONNECTIONS_PER_IP 128u
#define CFG_DEFAULT_MAX_IN_FLIGHT 10000u
#define CFG_DEFAULT_MAX_BUFFERED_BODY_BYTES ((size_t)256 << 20)

typedef struct cfg_server {
    const char *listen;            /* "ADDR:PORT"; port 0 = any free port */
    unsigned threads;              /* worker threads; 0 = number of cores */
    size_t max_header_bytes;       /* request line + headers; beyond: 431 */
    size_t max_body_bytes;         /* request body default; beyond: 413 */
    unsigned connection_timeout_s; /* idle/slow client timeout; 0 = none */
    unsigned drain_timeout_s;      /* SIGTERM: longest wait for in-flight requests */
    unsigned max_connections;
    unsigned max_connections_per_ip; /* per client address; 0 = no limit */
    unsigned max_in_flight;          /* requests running or waiting per worker; beyond: 503 */
    unsigned header_timeout_ms;    /* request line + headers must arrive within; 0 = none */
    size_t min_body_rate;          /* body bytes/s after a header_timeout grace; 0 = none */
    size_t max_buffered_body_bytes; /* request bodies held at once, server-wide; beyond: 503 */
    bool quiet;                    /* no access log */
    bool server_timing;            /* Server-Timing header: each stage's duration */
} cfg_server;

/* A function's subscription to storage events (`events:`, src/event). */
typedef struct cfg_events {
    const char *ns;       /* a global namespace the function is granted (r or rw) */
    unsigned types;       /* mask of 1u << KILN_KV_EV_*; default all three */
    uint32_t retries;     /* attempts after the first; default 3 */
    uint32_t backoff_ms;  /* before the first retry, doubling; default 100 */
    uint64_t max_queue;   /* queued events at most; default KILN_KV_DEFAULT_MAX_EVENTS */
    int line;
} cfg_events;

typedef struct cfg_function {
    kiln_function fn;        /* strings and arrays owned by the cfg_config */
    const cfg_events *events; /* NULL = no subscription */
    size_t max_body_bytes;   /* request body limit; 0 = the server's */
    bool auto_routes;        /* directory mode: routes follow from ABI and exports */
    int line;                /* where it is defined; 0 in directory mode */
} cfg_function;

#define CFG_NO_FUNCTION SIZE_MAX

/* A plugin of a route's chain (or a sink): a function run as a pipeline
 * stage (handler.h, "pipeline stages"). */
typedef struct cfg_plugin {
    size_t function;         /* index into cfg_config.functions; CFG_NO_FUNCTION in a
                                sidecar naming another directory function: then
                                resolved by function_name when the table is built */
    const char *function_name;
    kiln_stage_kind kind;
    const char *export_name; /* NULL = the ABI's default for the kind */
    /* `config` as JSON text ("{}" if none); for proxy-wasm `configuration`
     * as given: a string as-is, anything else as JSON text ("" if none). */
    const char *config_json;
    const char *vm_config;   /* proxy-wasm `vm_configuration`, same rules; NULL if none */
    int line;
} cfg_plugin;

typedef struct cfg_route {
    const char *path;
    const char *host; /* NULL = any */
    const char *const *methods;
    size_t n_methods; /* 0 = any */
    size_t function;  /* index into cfg_config.functions; CFG_NO_FUNCTION with upstream */
    int line;
    /* A route to an upstream service instead of a function: its base URL
     * ("http://host:port[/base]"), proxied through libcurl, and how long it
     * may take to answer (default CFG_DEFAULT_UPSTREAM_TIMEOUT_MS). */
    const char *upstream;
    uint32_t upstream_timeout_ms;
    const cfg_plugin *plugins; /* the chain in front of the backend, in configured order */
    size_t n_plugins;
} cfg_route;

#define CFG_DEFAULT_UPSTREAM_TIMEOUT_MS 30000u

typedef struct cfg_config {
    const char *source; /* the file or directory it came from */
    bool from_dir;
    cfg_server server;
    kiln_kv_server_config kv; /* top-level 'kv': database path, namespaces */
    cfg_function *functions;
    size_t n_functions;
    cfg_route *routes;
    size_t n_routes;
    cfg_plugin *sinks; /* answer requests no route matched, tried in order */
    size_t n_sinks;
    const kiln_kv *clusters; /* named upstream URLs (proxy-wasm http_call) */
    size_t n_clusters;
    const char *const *warnings; /* things skipped, for the log */
    size_t n_warnings;
    struct cfg_arena *arena; /* owns everything above */
} cfg_config;

/* Server defaults (CFG_DEFAULT_*). */
void cfg_server_defaults(cfg_server *s /* OUT */);

/*
 * Load a configuration file: JSON when the name ends in ".json" or the text
 * starts with '{', YAML otherwise. Relative module and directory paths are
 * resolved against the file's directory; every module must exist. Returns
 * KILN_OK, KILN_ENOENT (file unreadable), KILN_ECONFIG (message names
 * FILE:LINE and the key) or KILN_ENOMEM. Free *out with cfg_free.
 */
int cfg_load_file(const char *path, cfg_config **out /* OUT */, kiln_err *err);

/* Sidecar files (NAME.yaml/.yml/.json next to NAME.wasm in a served
 * directory) are at most this large. */
#define CFG_MAX_SIDECAR (256 * 1024)

/* Move every function and route of `from` into `into` (which then owns all
 * of `from`; do not free it). A function whose name `into` already has is
 * skipped with a warning. KILN_OK or KILN_ENOMEM (`from` freed either way). */
int cfg_merge(cfg_config *into, cfg_config *from, kiln_err *err);
bool cfg_has_function(const cfg_config *c, const char *name);

/* Parse text already in memory; `name` is used in messages, `base_dir` to
 * resolve relative paths. For tests and the file loader. */
int cfg_parse(const char *text, size_t len, const char *name, const char *base_dir,
              cfg_config **out /* OUT */, kiln_err *err);

/*
 * Directory mode: one function per `*.wasm` in `dir` (sorted by name, named
 * after the file without ".wasm"), ABI detected later, routes derived from
 * the module (auto_routes). KILN_ENOENT if the directory cannot be read;
 * an empty directory is valid (every request gets 404).
 */
int cfg_load_dir(const char *dir, cfg_config **out /* OUT */, kiln_err *err);

void cfg_free(cfg_config *c);

/* Parse "64MiB", "1k", "65536" (bytes); false on malformed input. */
bool cfg_parse_size(const char *s, uint64_t *out /* OUT */);
/* Parse "250ms", "5s", "2m", "1h" into milliseconds; a unit is required. */
bool cfg_parse_duration_ms(const char *s, uint64_t *out /* OUT */);

#endif
