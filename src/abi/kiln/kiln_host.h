/*
 * kiln_host.h - private to src/abi/kiln/ and the server that links it: the
 * tables of Kiln's own host module "kiln" (conventions in
 * include/kiln/host_abi.h, reference in docs/abi/kiln-host.md) and the
 * per-function context its functions read from the instance's state slots.
 *
 * Every function's linker gets these tables next to WASI and its ABI's own
 * functions, whatever the ABI (CGI, Extism, Otoroshi). The tables are static;
 * the state they need comes from kiln_function.host_state:
 *   KILN_STATE_HOST  a kiln_host_ctx (function name, config) - config_get, log
 *   KILN_STATE_KV    a kiln_kv_grants (kv.h)                  - kv_*
 *   KILN_STATE_HTTP  the outbound HTTP context (src/net)      - http_*
 * A slot left NULL makes the functions that need it answer
 * KILN_HOST_EUNAVAILABLE instead of trapping.
 */
#ifndef KILN_ABI_KILN_KILN_HOST_H
#define KILN_ABI_KILN_KILN_HOST_H

#include <stddef.h>

#include "kiln/handler.h"
#include "kiln/runtime.h"

/* What state[KILN_STATE_HOST] points to. Borrowed strings; must outlive
 * every instance (the server keeps it with the function). */
typedef struct kiln_host_ctx {
    const char *fn_name;   /* in log lines */
    const kiln_kv *config; /* config_get */
    size_t n_config;
    int log_level;         /* lowest level logged: 0 trace .. 4 error; 5 = off */
    void (*log)(void *user, int level, const char *fn_name, const char *msg, size_t len);
    void *log_user;        /* log == NULL: one line on stderr */
} kiln_host_ctx;

/* kv_get, kv_set, kv_delete, kv_incr, kv_expire, kv_ttl, kv_list,
 * config_get and log (src/abi/kiln/kiln_kv.c). */
const kiln_hostfn *kiln_kv_hostfns(size_t *n /* OUT */);

/* http_request, http_response_body, http_response_header,
 * http_response_headers and http_error (src/abi/kiln/kiln_http.c). They read
 * a net_ctx (src/net/net.h) from KILN_STATE_HTTP: per instance, because it
 * holds the instance's last response, so the handler ABI (not the server)
 * sets that slot for each instance it creates. */
const kiln_hostfn *kiln_net_hostfns(size_t *n /* OUT */);

/* Define the whole "kiln" module (both tables above) in `l`; every embedder
 * (server, kiln run, kiln call) links it the same way. KILN_OK or ENOMEM. */
int kiln_host_define(kiln_linker *l);

/* kiln.log's sink, shared with components' wasi:logging (cm_kiln_config.c):
 * a line of `level` (0 trace .. 4 error) below h->log_level is dropped,
 * else it goes to h->log (or stderr, h NULL or h->log NULL: as
 * "[level] fn: msg") through the invocation's log budget (guest_log.h). */
void kiln_host_log(const kiln_host_ctx *h, int level, const char *msg, size_t len);

/* Internal status -> guest-visible KILN_HOST_* code (host_abi.h). */
int32_t kiln_host_code(int rc);

/* Store `v` little-endian at guest address ptr; false if out of bounds. */
bool kiln_host_put_u32(kiln_instance *inst, uint32_t ptr, uint32_t v);

#endif
