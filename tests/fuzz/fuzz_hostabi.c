/*
 * fuzz_hostabi.c - host ABI entry points with hostile pointers, lengths and
 * handles. No module is compiled or instantiated: a fake instance (fuzz.h)
 * gives the real host functions a small linear memory of 1..64 KiB whose
 * heap block ends exactly at its size, so any access the bounds helpers let
 * through beyond it is an ASan report. Covered:
 *   - kiln_guest_ptr / kiln_guest_array (include/kiln/abi.h): a non-NULL
 *     answer must lie inside memory, and every in-bounds range must be given;
 *   - the Extism memory arena (xtm_mem.c) directly, with its invariants
 *     (blocks sorted and disjoint, inside [XTM_MEM_BASE, top], top <= size);
 *   - every WASI preview 1 function but poll_oneoff (its clock timeouts
 *     would sleep), with stdio buffers and one read-only preopen of an empty
 *     scratch directory;
 *   - every extism:host/env function but http_request (fuzz_guest_json has
 *     it), and Kiln's own "kiln" module (KV over an in-memory store,
 *     config_get, log; http_* with a context whose allow-list is empty, so
 *     http_request parses the guest's method, URL and headers and is refused
 *     before any DNS lookup).
 *
 * Input: [memory size, 2 bytes][initial memory bytes, up to 256] then ops,
 * each an opcode byte and its operands (see the switch).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi/kiln/kiln_host.h"
#include "fuzz.h"
#include "fuzz_xtm.h"
#include "kiln/abi.h"
#include "kiln/kv.h"
#include "kiln/wasi.h"
#include "net/net.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FNS 256
#define MAX_HANDLES 16

static const kiln_hostfn *wasi_fns[MAX_FNS], *xtm_fns[MAX_FNS], *kiln_fns[MAX_FNS];
static size_t n_wasi, n_xtm, n_kiln;
static xtm_options opts;
static char scratch[64] = "/tmp/kiln-fuzz-abi-XXXXXX";

static void cleanup(void)
{
    rmdir(scratch);
}

static void collect(const kiln_hostfn *t, size_t n, const kiln_hostfn **out, size_t *count,
                    const char *skip)
{
    for (size_t i = 0; i < n && *count < MAX_FNS; i++)
        if (fuzz_sig_params(t[i].type) >= 0 && strcmp(t[i].name, skip) != 0)
            out[(*count)++] = &t[i];
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    size_t n;
    const kiln_hostfn *t = kiln_wasi_hostfns(&n);
    collect(t, n, wasi_fns, &n_wasi, "poll_oneoff");
    t = xtm_hostfns(&n);
    collect(t, n, xtm_fns, &n_xtm, "http_request");
    t = kiln_kv_hostfns(&n);
    collect(t, n, kiln_fns, &n_kiln, "");
    t = kiln_net_hostfns(&n);
    collect(t, n, kiln_fns, &n_kiln, "");
    if (n_wasi == 0 || n_xtm == 0 || n_kiln == 0)
        abort();
    fuzz_xtm_options(&opts);
    if (mkdtemp(scratch) == NULL)
        abort();
    atexit(cleanup);
    return 0;
}

typedef struct env {
    fuzz_inst fi;
    uint64_t size;
    xtm_ctx xc;
    uint64_t handles[MAX_HANDLES];
} env;

static void fail(const char *why, uint64_t a, uint64_t b)
{
    fprintf(stderr, "fuzz_hostabi: %s (%llu, %llu)\n", why, (unsigned long long)a,
            (unsigned long long)b);
    abort();
}

/* An argument: mostly values near the interesting edges. */
static uint64_t arg(fuzz_in *in, env *e)
{
    switch (fuzz_u8(in) % 8) {
    case 0: return fuzz_u8(in);
    case 1: return fuzz_uint(in, 2);
    case 2: return fuzz_uint(in, 4);
    case 3: return fuzz_uint(in, 8);
    case 4: return e->size - fuzz_u8(in) % 16;      /* just inside or at the end */
    case 5: return e->size + fuzz_u8(in) % 16;      /* just past the end */
    case 6: return e->handles[fuzz_u8(in) % MAX_HANDLES];
    default: return (uint64_t)0 - 1 - fuzz_u8(in) % 16; /* wraps */
    }
}

static void check_guest_ptr(env *e, uint64_t p, uint64_t len)
{
    kiln_instance *inst = fuzz_inst_ptr(&e->fi);
    uint8_t *g = kiln_guest_ptr(inst, p, len);
    bool inside = p <= e->size && len <= e->size - p;
    if ((g != NULL) != inside)
        fail("kiln_guest_ptr answer", p, len);
    if (g != NULL) {
        if (g != e->fi.mem.data + p)
            fail("kiln_guest_ptr address", p, len);
        if (len > 0)
            fuzz_log_sink = g[0] ^ g[len - 1];
    }
}

static void check_guest_array(env *e, uint64_t p, uint64_t n, uint64_t sz)
{
    uint8_t *g = kiln_guest_array(fuzz_inst_ptr(&e->fi), p, n, sz);
    if (g == NULL)
        return;
    unsigned __int128 total = (unsigned __int128)n * sz;
    if (p > e->size || total > e->size - p)
        fail("kiln_guest_array lets an out-of-bounds array through", p, (uint64_t)total);
    if (total > 0)
        fuzz_log_sink = g[0] ^ g[total - 1];
}

static void check_xtm_mem(const xtm_mem *m)
{
    if (m->top < XTM_MEM_BASE || (m->n_blocks > 0 && m->top > m->size))
        fail("xtm_mem top", m->top, m->size);
    uint64_t prev_end = XTM_MEM_BASE;
    size_t n_free = 0;
    for (size_t i = 0; i < m->n_blocks; i++) {
        const xtm_block *b = &m->blocks[i];
        if (b->off < prev_end || b->len > b->cap || b->cap > m->top - b->off)
            fail("xtm_mem block overlaps or overflows", b->off, b->cap);
        prev_end = b->off + b->cap;
        n_free += b->state == XTM_BLOCK_FREE;
    }
    if (n_free != m->n_free)
        fail("xtm_mem free count", n_free, m->n_free);
}

static void remember(env *e, uint64_t h, uint8_t slot)
{
    if (h != 0)
        e->handles[slot % MAX_HANDLES] = h;
}

static void host_call(env *e, fuzz_in *in, const kiln_hostfn *h, uint8_t slot)
{
    uint64_t args[10], ret;
    int n = fuzz_sig_params(h->type);
    for (int i = 0; i < n; i++)
        args[i] = arg(in, e);
    if (fuzz_call(&e->fi, h, args, &ret) == 0)
        remember(e, ret, slot);
    check_xtm_mem(&e->xc.mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    env *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return 0;
    e->size = 1 + fuzz_uint(&in, 2);
    if (!fuzz_inst_init(&e->fi, e->size)) {
        free(e);
        return 0;
    }
    size_t got;
    const uint8_t *init = fuzz_take(&in, e->size < 256 ? e->size : 256, &got);
    memcpy(e->fi.mem.data, init, got);

    kiln_err err;
    xtm_fn *f;
    if (xtm_fn_new(&opts, &f, &err) != KILN_OK)
        abort();
    fuzz_xtm_ctx_init(&e->xc, f, &opts);
    static const char stdin_text[] = "some stdin\nbytes";
    const char *argv[] = {"prog.wasm", "arg"};
    const char *envv[] = {"A=1", "PATH=/bin"};
    kiln_wasi_preopen po = {scratch, "/data", true};
    kiln_wasi_config wc;
    memset(&wc, 0, sizeof(wc));
    wc.argv = argv;
    wc.argc = 2;
    wc.env = envv;
    wc.envc = 2;
    wc.preopens = &po;
    wc.npreopens = 1;
    wc.stdio[0].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[0].data = stdin_text;
    wc.stdio[0].len = sizeof(stdin_text) - 1;
    wc.stdio[1].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[1].cap = 256;
    wc.stdio[2].kind = KILN_WASI_STDIO_NULL;
    wc.max_fds = 16;
    kiln_wasi *w;
    if (kiln_wasi_new(&wc, &w, &err) != KILN_OK)
        abort();
    kiln_kv_store *store;
    kiln_kv_grants *grants;
    kiln_kv_grant_config grant = {"shared", true};
    kiln_kv_config fc = {.grants = &grant, .n_grants = 1};
    if (kiln_kv_mem_open(&store, &err) != KILN_OK ||
        kiln_kv_grants_new_with(store, store, "fuzz", &fc, &grants, &err) != KILN_OK)
        abort();
    static const kiln_kv hcfg[] = {{"k", "v"}, {"long", "0123456789abcdef0123456789"}};
    kiln_host_ctx hc = {"fuzz", hcfg, 2, 0, fuzz_log, NULL};
    e->fi.state[KILN_STATE_WASI] = w;
    e->fi.state[KILN_STATE_EXTISM] = &e->xc;
    e->fi.state[KILN_STATE_KV] = grants;
    e->fi.state[KILN_STATE_HOST] = &hc;
    kiln_function nf;
    memset(&nf, 0, sizeof(nf));
    nf.name = "fuzz";
    net_ctx nc;
    net_ctx_init(&nc, &nf, 0);
    e->fi.state[KILN_STATE_HTTP] = &nc;

    for (int ops = 0; ops < 64 && in.n > 0; ops++) {
        uint8_t op = fuzz_u8(&in);
        switch (op % 8) {
        case 0: {
            uint64_t p = arg(&in, e), len = arg(&in, e);
            check_guest_ptr(e, p, len);
            break;
        }
        case 1: {
            uint64_t p = arg(&in, e), n = arg(&in, e), sz = fuzz_u8(&in) % 33;
            check_guest_array(e, p, n, sz);
            break;
        }
        case 2: /* the arena directly */
            switch (fuzz_u8(&in) % 4) {
            case 0: {
                uint64_t h;
                int rc = xtm_mem_alloc(&e->xc.mem, arg(&in, e) % (1u << 18), &h);
                if (rc == KILN_OK)
                    remember(e, h, op >> 3);
                break;
            }
            case 1: xtm_mem_free(&e->xc.mem, arg(&in, e)); break;
            case 2: xtm_mem_consume(&e->xc.mem, arg(&in, e)); break;
            default: {
                uint64_t p = arg(&in, e), n = arg(&in, e);
                uint8_t *b = xtm_mem_ptr(&e->xc.mem, p, n);
                if (b != NULL && n > 0)
                    fuzz_log_sink = b[0] ^ b[n - 1];
                (void)xtm_mem_length(&e->xc.mem, p);
            }
            }
            check_xtm_mem(&e->xc.mem);
            break;
        case 3: /* write bytes into guest memory (iovecs, strings) */ {
            uint64_t at = fuzz_uint(&in, 2) % e->size;
            const uint8_t *b = fuzz_take(&in, fuzz_u8(&in) % 32, &got);
            if (got > e->size - at)
                got = (size_t)(e->size - at);
            memcpy(e->fi.mem.data + at, b, got);
            break;
        }
        case 4:
        case 5: host_call(e, &in, wasi_fns[fuzz_u8(&in) % n_wasi], op >> 3); break;
        case 6: host_call(e, &in, xtm_fns[fuzz_u8(&in) % n_xtm], op >> 3); break;
        default: host_call(e, &in, kiln_fns[fuzz_u8(&in) % n_kiln], op >> 3); break;
        }
    }

    net_ctx_fini(&nc);
    fuzz_xtm_ctx_fini(&e->xc);
    xtm_fn_free(f);
    kiln_wasi_free(w);
    kiln_kv_grants_free(grants);
    kiln_kv_close(store);
    fuzz_inst_fini(&e->fi);
    free(e);
    return 0;
}
