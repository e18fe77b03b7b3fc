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

typedef struct http_options {
    const char *config_path; /* --config FILE, or */
    const char *dir;         /* DIR: serve every *.wasm in it */
    const char *listen;      /* "ADDR:PORT" overriding the configuration; NULL = keep */
    unsigned threads;        /* worker threads overriding the configuration; 0 = keep */
    int quiet;               /* -1 = keep, 0/1 = override the access log setting */
    kiln_aot_options aot;    /* compiler, optimisation level, cache (imports is set per module) */
} http_options;

/*
 * Load the configuration, compile every module, listen, and serve until
 * SIGTERM or SIGINT; SIGHUP reloads the configuration. Blocks SIGTERM,
 * SIGINT, SIGHUP in the calling thread and ignores SIGPIPE. Returns the
 * process exit status: 0 after a clean drain, 1 when the server cannot start
 * (err explains: bad configuration, address in use, ...).
 */
int http_serve(const http_options *o, kiln_err *err);

#endif
