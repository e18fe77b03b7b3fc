/*
 * fuzz_guest_json.c - every JSON document the server parses from a guest at
 * run time, through the real host functions on a fake instance (fuzz.h):
 * Extism's http_request (src/abi/extism/xtm_http.c), Otoroshi's
 * proxy_log_event, proxy_*_attr, proxy_state_value and proxy_http_call
 * (src/abi/otoroshi/otoroshi.c) and the map/datastore functions over an
 * in-memory key-value store (src/abi/otoroshi/oto_kv.c). The allow-list is
 * empty, so HTTP calls are refused before any DNS or connection.
 *
 * Input: up to 6 calls, each [selector byte][length, 2 bytes LE][document].
 * The document is copied into a fresh Extism block and the function called
 * with (offset, length); a returned handle must be a live block.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_xtm.h"
#include "kiln/handler.h"
#include "kiln/kv.h"

extern const kiln_abi_ops kiln_abi_otoroshi;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const kiln_hostfn *targets[64];
static size_t n_targets;
static xtm_options opts;

static bool wanted(const kiln_hostfn *h)
{
    if (strcmp(h->module, "extism:host/env") == 0)
        return strcmp(h->name, "http_request") == 0;
    if (strcmp(h->module, "env") != 0)
        return false;
    /* Functions whose (offset, length) argument is a document. */
    return strcmp(h->type, "jj>j") == 0 && strncmp(h->name, "proxy_", 6) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    size_t n;
    const kiln_hostfn *t = kiln_abi_otoroshi.hostfns(&n);
    for (size_t i = 0; i < n && n_targets < 64; i++)
        if (wanted(&t[i]))
            targets[n_targets++] = &t[i];
    if (n_targets == 0)
        abort();
    fuzz_xtm_options(&opts);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    xtm_fn *f;
    kiln_err err;
    if (xtm_fn_new(&opts, &f, &err) != KILN_OK)
        return 0;
    kiln_kv_store *store;
    if (kiln_kv_mem_open(&store, &err) != KILN_OK)
        abort();
    kiln_kv_grant_config grant = {"global", true};
    kiln_kv_config fc = {.grants = &grant, .n_grants = 1};
    kiln_kv_grants *grants;
    if (kiln_kv_grants_new_with(store, store, "fuzz", &fc, &grants, &err) != KILN_OK)
        abort();
    fuzz_inst fi;
    fuzz_inst_init(&fi, 0);
    xtm_ctx c;
    fuzz_xtm_ctx_init(&c, f, &opts);
    fi.state[KILN_STATE_EXTISM] = &c;
    fi.state[KILN_STATE_KV] = grants;

    for (int call = 0; call < 6 && in.n > 0; call++) {
        const kiln_hostfn *h = targets[fuzz_u8(&in) % n_targets];
        size_t want = (size_t)fuzz_uint(&in, 2), len;
        const uint8_t *doc = fuzz_take(&in, want, &len);
        uint64_t blk = 0;
        if (xtm_mem_alloc(&c.mem, len, &blk) != KILN_OK)
            break;
        if (len)
            memcpy(c.mem.buf + blk, doc, len);
        uint64_t args[2] = {blk, len}, ret;
        if (strcmp(h->name, "http_request") == 0)
            args[1] = 0; /* (request handle, body handle) */
        int how = fuzz_call(&fi, h, args, &ret);
        if (how == 0 && h->type[strlen(h->type) - 1] == 'j' && ret != 0 && ret >= XTM_MEM_BASE &&
            xtm_mem_live(&c.mem, ret)) {
            /* A reply block: read it all. */
            uint64_t rl = xtm_mem_length(&c.mem, ret);
            const uint8_t *r = xtm_bytes(&c, ret, rl);
            if (r == NULL)
                abort();
            uint8_t x = 0;
            for (uint64_t i = 0; i < rl; i++)
                x ^= r[i];
            fuzz_log_sink = x;
        }
    }
    fuzz_xtm_ctx_fini(&c);
    fuzz_inst_fini(&fi);
    kiln_kv_grants_free(grants);
    kiln_kv_close(store);
    xtm_fn_free(f);
    return 0;
}
