/*
 * admin.h - the control plane: the admin API (JSON REST over its own
 * libmicrohttpd daemon, bearer token) in front of the deploy registry
 * (registry.h), which hands deployed functions to `kiln serve` through the
 * managed directory. The API never listens on the public port.
 * README "Deploying" documents the endpoints; docs/internals/admin.md the design.
 *
 * Life cycle (cmd_serve.c):
 *     admin_create   open the registry, repair the managed directory, load or
 *                    generate the token, bind the listener (errors before serving)
 *     admin_start    from the server's on_started hook: start answering, with
 *                    `backend` telling what the server serves
 *     admin_stop     from on_stopping: stop answering (joins every request)
 *     admin_destroy  after the server returned
 */
#ifndef KILN_ADMIN_ADMIN_H
#define KILN_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "kiln/kiln.h"

#define ADMIN_DEFAULT_LISTEN "127.0.0.1:8081"
#define ADMIN_DEFAULT_URL "http://127.0.0.1:8081"
#define ADMIN_MAX_UPLOAD ((size_t)64 << 20) /* module bytes per PUT; beyond: 413 */
#define ADMIN_DEFAULT_WAIT_S 30             /* a deploy waits this long for the server */
#define ADMIN_MAX_WAIT_S 300

typedef struct admin_server admin_server;

typedef struct admin_options {
    const char *home;   /* $KILN_HOME; NULL = admin_home() */
    const char *listen; /* "ADDR:PORT"; NULL = ADMIN_DEFAULT_LISTEN; "off" = no API (the
                           managed directory is still kept and served) */
    const char *token;  /* NULL = $KILN_ADMIN_TOKEN, else $KILN_HOME/admin.token
                           (generated at first start, mode 0600) */
} admin_options;

/* What the running server serves under one name (mirrors http_fn_status; the
 * admin module does not include src/http). */
typedef struct admin_fn_status {
    bool found, available, compiling;
    char tier[16];
    char module_hash[65];
    char abi[32];
    char error[512];
    unsigned n_routes;
    char snapshot[8]; /* snapshot image: "loaded", "built", "memory", or "" */
} admin_fn_status;

/* The server as the admin API sees it; every callback is thread-safe and
 * valid from admin_start until admin_stop returns. */
typedef struct admin_backend {
    void (*fn_status)(void *ctx, const char *name, admin_fn_status *out /* OUT */);
    size_t (*fn_names)(void *ctx, char ***out /* OUT: malloc'd array of malloc'd strings */);
    void (*rescan)(void *ctx);
    void *ctx;
    /* Storage events given up on (docs/internals/events.md): JSON text
     * {"dead":[...]}, malloc'd (free()), NULL when out of memory. May be
     * NULL: GET /events/dead answers 404. */
    char *(*events_dead)(void *ctx);
} admin_backend;

/*
 * Open the registry under o->home, reconcile the managed directory, load the
 * token and bind the listener. KILN_OK, or KILN_EIO / KILN_ECONFIG (bad or
 * busy address, unreadable token file) with a message saying what to do.
 * Logs "kiln serve: admin API on http://ADDR:PORT ..." to stderr.
 */
int admin_create(const admin_options *o, admin_server **out /* OUT */, kiln_err *err);
/* Absolute path of $KILN_HOME/functions (valid until admin_destroy). */
const char *admin_managed_dir(const admin_server *a);
/* Start answering. `b` may be NULL (no server: statuses read "unknown");
 * it is copied. KILN_OK or KILN_EIO. */
int admin_start(admin_server *a, const admin_backend *b, kiln_err *err);
/* Stop answering; requests waiting for a deploy end at once. Idempotent. */
void admin_stop(admin_server *a);
void admin_destroy(admin_server *a);

/* $KILN_HOME, else $HOME/.kiln, into buf. KILN_ENOENT when neither is set. */
int admin_home(char *buf, size_t cap);

#endif
