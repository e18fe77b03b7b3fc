/*
 * filter.c - the proxy-wasm filter of bench/proxywasm/run.sh, written against
 * the raw ABI (tests/guests_proxywasm/pw.h, no SDK). Its plugin configuration
 * picks what it does:
 *   add      request: adds `x-bench: 1` (the backend function echoes it, so
 *            the check before the load proves the filter ran); response:
 *            adds `x-pw-bench: 1` (visible on the upstream route too). One
 *            header each way, nothing else.
 *   callout  request: dispatches an http_call (GET /) to cluster "slow" and
 *            pauses; when the callout answers 200 it adds `x-bench: 1` and
 *            continues the stream, anything else answers 502 locally.
 * Unlike tests/guests_proxywasm/pw_test.c (a fixed table of 256 streams),
 * the stream and callout tables here are open-addressed hashes large enough
 * for thousands of streams paused at once in one VM.
 */
#include "pw.h"

#define SLOTS 16384 /* power of two; far above the streams one worker holds */

static int mode_callout; /* set by on_configure; one plugin per VM here */

/* token -> stream context, for the callouts in flight. */
static uint32_t tok_key[SLOTS], tok_ctx[SLOTS];

static uint32_t slot_of(uint32_t k)
{
    return (k * 2654435761u) & (SLOTS - 1);
}

static void tok_put(uint32_t token, uint32_t ctx)
{
    uint32_t i = slot_of(token);
    while (tok_key[i] != 0)
        i = (i + 1) & (SLOTS - 1);
    tok_key[i] = token;
    tok_ctx[i] = ctx;
}

/* Removes token (backward-shift deletion); its context, or 0. */
static uint32_t tok_take(uint32_t token)
{
    uint32_t i = slot_of(token);
    while (tok_key[i] != token) {
        if (tok_key[i] == 0)
            return 0;
        i = (i + 1) & (SLOTS - 1);
    }
    uint32_t ctx = tok_ctx[i];
    for (;;) {
        tok_key[i] = 0;
        uint32_t j = i;
        for (;;) {
            j = (j + 1) & (SLOTS - 1);
            if (tok_key[j] == 0)
                return ctx;
            uint32_t h = slot_of(tok_key[j]);
            /* Move j back to i unless its home lies cyclically in (i, j]. */
            if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
                continue;
            tok_key[i] = tok_key[j];
            tok_ctx[i] = tok_ctx[j];
            i = j;
            break;
        }
    }
}

EXPORT("proxy_on_vm_start") int on_vm_start(uint32_t root, uint32_t len)
{
    (void)root, (void)len;
    return 1;
}

EXPORT("proxy_on_configure") int on_configure(uint32_t root, uint32_t len)
{
    (void)root;
    char *v = NULL;
    size_t vl = 0;
    pw_get_buffer(BUF_PLUGIN, 0, len, &v, &vl);
    /* A JSON string configuration may arrive with its quotes. */
    mode_callout = v != NULL && vl >= 7 && memmem(v, vl, "callout", 7) != NULL;
    int ok = v != NULL && (mode_callout || memmem(v, vl, "add", 3) != NULL);
    free(v);
    return ok;
}

EXPORT("proxy_on_context_create") void on_context_create(uint32_t ctx, uint32_t parent)
{
    (void)ctx, (void)parent;
}

EXPORT("proxy_on_request_headers") int on_request_headers(uint32_t ctx, uint32_t n, uint32_t eos)
{
    (void)n, (void)eos;
    if (!mode_callout) {
        pw_add_header(MAP_REQ, "x-bench", 7, "1", 1);
        return 0;
    }
    static const char *const kv[] = {":method", "GET", ":path", "/", ":authority", "slow"};
    static char h[128];
    static size_t hl;
    if (hl == 0)
        hl = pw_pairs(h, kv, 3);
    uint32_t token = 0;
    if (pw_http_call("slow", 4, h, hl, NULL, 0, NULL, 0, 5000, &token) != 0) {
        pw_local(503, "no cluster", 10, "cluster slow unknown\n", 21, NULL, 0, -1);
        return 1;
    }
    tok_put(token, ctx);
    return 1; /* paused until the callout answers */
}

EXPORT("proxy_on_http_call_response")
void on_http_call_response(uint32_t root, uint32_t token, uint32_t nh, uint32_t blen, uint32_t nt)
{
    (void)root, (void)blen, (void)nt;
    uint32_t ctx = tok_take(token);
    if (ctx == 0)
        return;
    pw_set_effective(ctx);
    char *status = nh ? pw_header(MAP_CALL, ":status") : NULL;
    if (status != NULL && strcmp(status, "200") == 0) {
        pw_add_header(MAP_REQ, "x-bench", 7, "1", 1);
        pw_continue(0);
    } else {
        pw_local(502, "callout failed", 14, "callout failed\n", 15, NULL, 0, -1);
    }
    free(status);
}

EXPORT("proxy_on_response_headers") int on_response_headers(uint32_t ctx, uint32_t n, uint32_t eos)
{
    (void)ctx, (void)n, (void)eos;
    if (!mode_callout)
        pw_add_header(MAP_RESP, "x-pw-bench", 10, "1", 1);
    return 0;
}

EXPORT("proxy_on_done") int on_done(uint32_t ctx)
{
    (void)ctx;
    return 1;
}
