/*
 * pw_int.h - private to src/abi/proxywasm/: the proxy-wasm host's model
 * (docs/internals/proxywasm.md, spec ../shared/specs/proxy-wasm-abi.md).
 *
 *   pw_fn      a filter function as prepared (one per kiln_function): the
 *              export indices, root/VM ids. Reference counted: every VM
 *              holds one, release() marks it dead; VMs of a dead function
 *              are freed by their own thread at its next look-up or tick.
 *   pw_vm      one instance of the filter on one worker thread, kept across
 *              requests (Envoy's model; the one place Kiln keeps instances
 *              by design). Owned by that thread's registry (pw_vm.c);
 *              streams waiting on a callout hold a reference. A trap or
 *              timeout "breaks" it: the instance is freed at once, the
 *              registry makes a new VM on next use.
 *   pw_root    a root context: one per (VM, kiln_plugin), so two routes using
 *              one filter with different configurations get two roots.
 *   pw_stream  an HTTP context: one per (request, plugin), kept in the
 *              request's kiln_stage_stream slot from the first phase to
 *              stage_end.
 *
 * Threads: a VM and everything hanging off it is used by its thread only.
 * Shared data, queues and metrics are process-wide (pw_shared.c, metrics.c).
 * Host functions find their VM in the instance's KILN_STATE_USER slot.
 */
#ifndef KILN_ABI_PROXYWASM_PW_INT_H
#define KILN_ABI_PROXYWASM_PW_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/abi.h"
#include "kiln/handler.h"
#include "kiln/wasi.h"
#include "loop/loop.h"

/* proxy_status_t (spec §9) */
enum {
    PW_OK = 0,
    PW_NOT_FOUND = 1,
    PW_BAD_ARGUMENT = 2,
    PW_SERIALIZATION_FAILURE = 3,
    PW_PARSE_FAILURE = 4,
    PW_INVALID_MEMORY_ACCESS = 6,
    PW_EMPTY = 7,
    PW_CAS_MISMATCH = 8,
    PW_INTERNAL_FAILURE = 10,
    PW_BROKEN_CONNECTION = 11,
    PW_UNIMPLEMENTED = 12,
    PW_TRAPPED = 0x7fff, /* internal: pw_out's allocator call failed; see pw_finish */
};

/* proxy_map_type_t / proxy_buffer_type_t */
enum { PW_MAP_REQ = 0, PW_MAP_REQ_TRAILERS = 1, PW_MAP_RESP = 2, PW_MAP_RESP_TRAILERS = 3,
       PW_MAP_CALL_RESP = 6, PW_MAP_CALL_TRAILERS = 7 };
enum { PW_BUF_REQ_BODY = 0, PW_BUF_RESP_BODY = 1, PW_BUF_CALL_BODY = 4, PW_BUF_VM_CONFIG = 6,
       PW_BUF_PLUGIN_CONFIG = 7 };

/* Callback exports, looked up once at prepare (index or -1). */
enum {
    PW_EX_ALLOC = 0,  /* proxy_on_memory_allocate or malloc */
    PW_EX_INITIALIZE, /* _initialize */
    PW_EX_MAIN,       /* main(i32, i32) -> i32 */
    PW_EX_MAIN_VOID,  /* __main_void */
    PW_EX_START,      /* _start */
    PW_EX_CTX_CREATE,
    PW_EX_VM_START,
    PW_EX_CONFIGURE,
    PW_EX_TICK,
    PW_EX_REQ_HEADERS,
    PW_EX_REQ_BODY,
    PW_EX_REQ_TRAILERS,
    PW_EX_RESP_HEADERS,
    PW_EX_RESP_BODY,
    PW_EX_RESP_TRAILERS,
    PW_EX_DONE,
    PW_EX_LOG,
    PW_EX_DELETE,
    PW_EX_CALL_RESPONSE,
    PW_EX_QUEUE_READY,
    PW_EX_FOREIGN,
    PW_EX_COUNT
};

typedef struct pw_fn {
    const kiln_function *fn; /* borrowed: lives as long as its owner (the route
                                table), which every VM holds a reference on */
    int ex[PW_EX_COUNT];
    bool abi_021;            /* 0.2.1 (else 0.2.0) */
    const char *root_id;     /* fn config `root_id`, default "" */
    const char *vm_id;       /* fn config `vm_id`, default the function's name */
    atomic_int refs;
    atomic_bool dead;
} pw_fn;

/* Drop a reference (proxywasm.c); the last one frees it. NULL is ok. */
void pw_fn_unref(pw_fn *f);

typedef struct pw_callout pw_callout;
typedef struct pw_stream pw_stream;
typedef struct pw_vm pw_vm;

typedef struct pw_root {
    uint32_t id;
    const kiln_plugin *plugin; /* the key (with the copies below); never dereferenced */
    char *config, *vm_config;  /* as the root was configured with: buffers 7 and 6 */
    char *name;                /* plugin_name */
    pw_vm *vm;
    bool failed;               /* on_vm_start/on_configure said no */
    bool done_pending;         /* on_done returned false: waiting for proxy_done */
    uint32_t tick_ms;
    kl_timer timer;            /* armed while tick_ms != 0 and a loop exists */
    kl_loop *loop;
    uint32_t status_code;      /* proxy_get_status: last callout */
    char status_msg[64];
    pw_callout *calls;         /* callouts made outside a stream (on_tick ...) */
    bool calls_running;        /* a task is performing them */
    struct pw_root *next;
} pw_root;

/* A key/value kept by proxy_set_property. */
typedef struct pw_prop {
    char *path;
    size_t path_len;
    uint8_t *value;
    size_t len;
    struct pw_prop *next;
} pw_prop;

struct pw_stream {
    uint32_t id;
    pw_vm *vm;   /* holds a reference */
    pw_root *root;
    kiln_stage *st;
    const kiln_plugin *plugin;
    bool paused;        /* the last callback answered non-zero and nobody continued */
    bool local;         /* proxy_send_local_response: the answer is in the stage's response */
    bool closed;        /* proxy_close_stream */
    bool req_seen, resp_seen;
    bool log_done;
    pw_callout *calls;  /* dispatched during this stream's callbacks, not yet performed */
    pw_prop *props;
    char req_id[40];
    struct pw_stream *next;
};

/* An HTTP callout's answer, readable during proxy_on_http_call_response. */
typedef struct pw_call_resp {
    kiln_kv *headers; /* ":status" first */
    size_t n_headers;
    const uint8_t *body;
    size_t body_len;
} pw_call_resp;

struct pw_vm {
    pw_fn *fn;             /* holds a reference */
    void *owner;           /* a reference on fn->fn->owner (the route table), or NULL */
    void (*owner_release)(void *owner);
    kiln_instance *inst;   /* NULL once broken */
    kiln_wasi *wasi;
    int refs;              /* the registry's + one per stream */
    bool broken;
    bool in_registry;
    uint32_t next_id;      /* context ids and tokens */
    pw_root *roots;
    pw_stream *streams;
    /* The callback running now (0 = none), proxy_set_effective_context's
     * choice, the stream whose callback runs (callouts attach to it), and
     * what only some callbacks may read. */
    uint32_t cur_ctx, eff_ctx;
    pw_stream *driver;
    pw_root *configuring;  /* buffer 7 */
    pw_root *cur_root;     /* buffer 6 */
    const pw_call_resp *call_resp; /* map 6, buffer 4 */
    int depth;
    int trap_rc;           /* pw_out -> pw_finish */
    kiln_err trap;
    kl_loop *loop;
    struct pw_vm *next;
};

/* ---- pw_vm.c ---------------------------------------------------------------- */

/* This thread's live VM for `f`, created (and started) if needed. */
int pw_vm_get(pw_fn *f, const kiln_instance_pre *pre, pw_vm **out /* OUT */, kiln_err *err);
void pw_vm_retain(pw_vm *vm);
void pw_vm_release(pw_vm *vm);
/* Free the instance after a failure; the registry forgets the VM. */
void pw_vm_break(pw_vm *vm);
/* Call callback `ex` for context `ctx` with i32 args; *result gets its
 * i32 result (dflt when the export is missing or returns nothing). On
 * failure the VM is broken and err names the filter. */
int pw_vm_call(pw_vm *vm, int ex, uint32_t ctx, const uint32_t *args, int nargs,
               uint32_t dflt, uint32_t *result, kiln_err *err);
/* The root context of `plugin` in vm, created and configured on first use. */
int pw_root_get(pw_vm *vm, const kiln_plugin *plugin, pw_root **out /* OUT */, kiln_err *err);
pw_root *pw_root_find(pw_vm *vm, uint32_t id);
pw_stream *pw_stream_find(pw_vm *vm, uint32_t id);
/* The context host functions act on: the effective one, else the running one. */
uint32_t pw_ctx_id(pw_vm *vm);
/* Its stream, or NULL (a root context). */
pw_stream *pw_ctx_stream(pw_vm *vm);
/* Its root: the stream's root, or the root itself. */
pw_root *pw_ctx_root(pw_vm *vm);
/* The VM behind a host function's instance. */
static inline pw_vm *pw_vm_of(kiln_instance *inst)
{
    return kiln_instance_state(inst, KILN_STATE_USER);
}
/* (Re)arm or stop a root's tick timer after proxy_set_tick_period_milliseconds. */
void pw_tick_arm(pw_root *r);
/* Free every VM of this thread (tests; thread exit does it too). */
void pw_vms_free_thread(void);

/* ---- pw_mem.c: guest memory and the pairs format ----------------------------- */

/* Host pointer of guest [ptr, ptr+len), or NULL. (0, 0) is valid. */
const uint8_t *pw_in(kiln_instance *inst, uint32_t ptr, uint32_t len);
/* Copy data into a buffer the guest allocates (its allocator export), then
 * store its address and length at ret_ptr/ret_len. Empty: 0, 0 without
 * allocating. Returns PW_OK, PW_INVALID_MEMORY_ACCESS, or PW_TRAPPED when
 * the allocator trapped or failed: the host function frees what it holds
 * and returns pw_finish(inst, status), which unwinds the guest then. */
uint32_t pw_out(kiln_instance *inst, const void *data, size_t len, uint32_t ret_ptr,
                uint32_t ret_len);
uint32_t pw_finish(kiln_instance *inst, uint32_t st);
bool pw_put_u32(kiln_instance *inst, uint32_t ptr, uint32_t v);
bool pw_put_u64(kiln_instance *inst, uint32_t ptr, uint64_t v);

/* Serialized size of a header list (§4.1); 0 for an empty list. */
size_t pw_pairs_size(const kiln_kv *h, size_t n);
/* Serialize into out (pw_pairs_size bytes). */
void pw_pairs_write(const kiln_kv *h, size_t n, uint8_t *out);
/* Parse pairs into kiln_malloc'd copies (*out, *n; free with pw_kv_free).
 * Any inconsistency gives an empty list and false. Keys lower-cased when
 * `lower`. */
bool pw_pairs_parse(const uint8_t *data, size_t len, bool lower, kiln_kv **out, size_t *n);
void pw_kv_free(kiln_kv *h, size_t n);

/* ---- pw_headers.c -------------------------------------------------------------- */

/* The request map (pseudo-headers first, lower-case names) of the stage,
 * as kiln_malloc'd copies. */
int pw_request_map(kiln_stage *st, kiln_kv **out, size_t *n);
int pw_response_map(const kiln_response *r, kiln_kv **out, size_t *n);
/* Answer locally (proxy_send_local_response) into the stage's response. */
int pw_local_response(pw_stream *s, int status, const uint8_t *body, size_t body_len,
                      const kiln_kv *h, size_t n);

/* ---- pw_props.c ------------------------------------------------------------------ */

/* The value of a property path (segments joined by NULs), kiln_malloc'd.
 * PW_OK, PW_NOT_FOUND or PW_INTERNAL_FAILURE (no memory). */
uint32_t pw_property(pw_vm *vm, const uint8_t *path, size_t len, uint8_t **val, size_t *vlen);
uint32_t pw_property_set(pw_vm *vm, const uint8_t *path, size_t len, const uint8_t *val,
                         size_t vlen);
void pw_props_free(pw_prop *p);

/* ---- pw_http.c ------------------------------------------------------------------- */

struct pw_callout {
    uint32_t token;
    pw_root *root;
    char *url;
    char *method;
    kiln_kv *headers; /* without pseudo-headers, plus host */
    size_t n_headers;
    uint8_t *body;
    size_t body_len;
    uint32_t timeout_ms;
    struct pw_callout *next;
};

void pw_callout_free(pw_callout *c);
/* Perform every callout queued on *list (in order, including ones their
 * callbacks queue) and run proxy_on_http_call_response for each. On a serve
 * worker each transfer suspends the calling fiber. */
int pw_callouts_run(pw_vm *vm, pw_stream *s, pw_callout **list, kiln_err *err);
/* Callouts queued on a root outside any stream (on_tick, on_configure, on_queue_ready):
 * run them on a task of the loop, or at once without a loop. */
void pw_root_callouts_start(pw_root *r);

/* This thread's live VM of f, or NULL (queue notifications). */
pw_vm *pw_vm_find(pw_fn *f);

/* ---- host-function tables ------------------------------------------------------------ */

const kiln_hostfn *pw_hostfns(size_t *n);
extern const kiln_hostfn pw_headers_fns[];
extern const size_t pw_headers_nfns;
extern const kiln_hostfn pw_misc_fns[];
extern const size_t pw_misc_nfns;
extern const kiln_hostfn pw_shared_fns[];
extern const size_t pw_shared_nfns;
extern const kiln_hostfn pw_http_fns[];
extern const size_t pw_http_nfns;
/* WASI functions the filter host replaces (stdout/stderr to the log, a
 * poll_oneoff that never sleeps inside a VM call), for both module names. */
extern const kiln_hostfn pw_wasi_fns[];
extern const size_t pw_wasi_nfns;

/* Log a filter's line at proxy level 0..5 (the guest log budget applies). */
void pw_log(pw_vm *vm, uint32_t level, const char *msg, size_t len);

#endif
