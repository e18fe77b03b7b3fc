/*
 * proxywasm.c - the "proxy-wasm" ABI (spec ../shared/specs/proxy-wasm-abi.md,
 * model docs/internals/proxywasm.md): Envoy-compatible HTTP filters as
 * pipeline stages (handler.h, KILN_STAGE_FILTER).
 *
 *   detect    a `proxy_abi_version_0_2_1` / `_0_2_0` export (0.1.0 is
 *             recognised, then refused by prepare);
 *   prepare   check the callback exports and their types, find the
 *             allocator; per function, no instance yet;
 *   stage     REQUEST: the stream context is created on the root context of
 *             this plugin in this thread's VM, then on_request_headers and
 *             (with a body, buffered whole by Kiln) on_request_body with
 *             end_of_stream = 1; RESPONSE: on_response_headers/body.
 *             Callouts made by a callback are performed on the request's
 *             fiber before the stream goes on; a local reply answers
 *             (KILN_STAGE_RESPOND); a stream left paused is an error.
 *   stage_end on_log, on_done, on_delete (Envoy's order), once per stream;
 *   handle    refuses: a filter is not a backend.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "abi/guest_log.h"
#include "abi/proxywasm/pw_int.h"
#include "base/alloc.h"
#include "kiln/wasi.h"

/* ---- the host-function table ------------------------------------------------------ */

#define PW_TABLE_MAX 192
static kiln_hostfn table[PW_TABLE_MAX];
static size_t n_table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void add_all(const kiln_hostfn *fns, size_t n)
{
    for (size_t i = 0; i < n && n_table < PW_TABLE_MAX; i++)
        table[n_table++] = fns[i];
}

static bool replaced(const char *name)
{
    for (size_t i = 0; i < pw_wasi_nfns; i++)
        if (strcmp(pw_wasi_fns[i].name, name) == 0)
            return true;
    return false;
}

static void table_init(void)
{
    add_all(pw_headers_fns, pw_headers_nfns);
    add_all(pw_misc_fns, pw_misc_nfns);
    add_all(pw_shared_fns, pw_shared_nfns);
    add_all(pw_http_fns, pw_http_nfns);
    add_all(pw_wasi_fns, pw_wasi_nfns);
    /* The whole preview-1 set again under the pre-snapshot name
     * AssemblyScript filters import (cpp-host does the same). */
    size_t nw;
    const kiln_hostfn *w = kiln_wasi_hostfns(&nw);
    for (size_t i = 0; i < nw && n_table < PW_TABLE_MAX; i++) {
        if (replaced(w[i].name))
            continue;
        table[n_table] = w[i];
        table[n_table].module = "wasi_unstable";
        n_table++;
    }
}

const kiln_hostfn *pw_hostfns(size_t *n)
{
    pthread_once(&table_once, table_init);
    *n = n_table;
    return table;
}

/* ---- prepare ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *type;
} callbacks[PW_EX_COUNT] = {
    [PW_EX_ALLOC] = {"proxy_on_memory_allocate", "i>i"},
    [PW_EX_INITIALIZE] = {"_initialize", ">"},
    [PW_EX_MAIN] = {"main", "ii>i"},
    [PW_EX_MAIN_VOID] = {"__main_void", ">i"},
    [PW_EX_START] = {"_start", ">"},
    [PW_EX_CTX_CREATE] = {"proxy_on_context_create", "ii>"},
    [PW_EX_VM_START] = {"proxy_on_vm_start", "ii>i"},
    [PW_EX_CONFIGURE] = {"proxy_on_configure", "ii>i"},
    [PW_EX_TICK] = {"proxy_on_tick", "i>"},
    [PW_EX_REQ_HEADERS] = {"proxy_on_request_headers", "iii>i"},
    [PW_EX_REQ_BODY] = {"proxy_on_request_body", "iii>i"},
    [PW_EX_REQ_TRAILERS] = {"proxy_on_request_trailers", "ii>i"},
    [PW_EX_RESP_HEADERS] = {"proxy_on_response_headers", "iii>i"},
    [PW_EX_RESP_BODY] = {"proxy_on_response_body", "iii>i"},
    [PW_EX_RESP_TRAILERS] = {"proxy_on_response_trailers", "ii>i"},
    [PW_EX_DONE] = {"proxy_on_done", "i>i"},
    [PW_EX_LOG] = {"proxy_on_log", "i>"},
    [PW_EX_DELETE] = {"proxy_on_delete", "i>"},
    [PW_EX_CALL_RESPONSE] = {"proxy_on_http_call_response", "iiiii>"},
    [PW_EX_QUEUE_READY] = {"proxy_on_queue_ready", "ii>"},
    [PW_EX_FOREIGN] = {"proxy_on_foreign_function", "iii>"},
};

static bool has_export(const kiln_module *m, const char *name)
{
    return kiln_module_find_export(m, name, KILN_EXTERN_FUNC) >= 0;
}

static int pw_detect(const kiln_module *m)
{
    if (has_export(m, "proxy_abi_version_0_2_1") || has_export(m, "proxy_abi_version_0_2_0") ||
        has_export(m, "proxy_abi_version_0_1_0"))
        return 100;
    return 0;
}

static const char *config_value(const kiln_function *fn, const char *key)
{
    for (size_t i = 0; i < fn->n_config; i++)
        if (strcmp(fn->config[i].name, key) == 0)
            return fn->config[i].value;
    return NULL;
}

static void pw_fn_free(pw_fn *f)
{
    kiln_free((void *)f->root_id);
    kiln_free((void *)f->vm_id);
    kiln_free(f);
}

static int pw_prepare(const kiln_function *fn, kiln_module *m, void **state, kiln_err *err)
{
    const char *name = fn->name ? fn->name : "filter";
    *state = NULL;
    bool v021 = has_export(m, "proxy_abi_version_0_2_1");
    if (!v021 && !has_export(m, "proxy_abi_version_0_2_0"))
        return kiln_err_set(err, KILN_EUNSUPPORTED, "proxy-wasm filter '%s': %s", name,
                            has_export(m, "proxy_abi_version_0_1_0")
                                ? "ABI 0.1.0 is not supported; rebuild it with an SDK for "
                                  "ABI 0.2.0 or 0.2.1"
                                : "no proxy_abi_version_0_2_1 or _0_2_0 export: not a "
                                  "proxy-wasm module");
    pw_fn *f = kiln_calloc(1, sizeof(*f));
    if (f == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    f->fn = fn;
    f->abi_021 = v021;
    atomic_init(&f->refs, 1);
    for (int i = 0; i < PW_EX_COUNT; i++) {
        f->ex[i] = kiln_module_find_export(m, callbacks[i].name, KILN_EXTERN_FUNC);
        if (i == PW_EX_ALLOC && f->ex[i] < 0)
            f->ex[i] = kiln_module_find_export(m, "malloc", KILN_EXTERN_FUNC);
        if (f->ex[i] < 0)
            continue;
        kiln_extern_info info;
        kiln_module_export(m, (uint32_t)f->ex[i], &info);
        if (strcmp(info.type, callbacks[i].type) != 0) {
            pw_fn_free(f);
            return kiln_err_set(err, KILN_EMODULE, "proxy-wasm filter '%s': export '%s' has "
                                "type %s, the ABI says %s", name, info.name, info.type,
                                callbacks[i].type);
        }
    }
    if (f->ex[PW_EX_ALLOC] < 0) {
        pw_fn_free(f);
        return kiln_err_set(err, KILN_EMODULE, "proxy-wasm filter '%s': exports neither "
                            "proxy_on_memory_allocate nor malloc (i32) -> i32, so the host "
                            "cannot return values to it", name);
    }
    const char *root_id = config_value(fn, "root_id"), *vm_id = config_value(fn, "vm_id");
    f->root_id = kiln_strdup(root_id ? root_id : "");
    f->vm_id = kiln_strdup(vm_id ? vm_id : name);
    if (f->root_id == NULL || f->vm_id == NULL) {
        pw_fn_free(f);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    *state = f;
    return KILN_OK;
}

void pw_fn_unref(pw_fn *f)
{
    if (f != NULL && atomic_fetch_sub(&f->refs, 1) == 1)
        pw_fn_free(f);
}

/* The server routes elsewhere now: VMs on worker threads notice at their
 * next request or tick and go away, dropping the references on the table
 * they hold (pw_vm.c). */
static void pw_retire(void *state)
{
    pw_fn *f = state;
    if (f != NULL)
        atomic_store(&f->dead, true);
}

static void pw_release(void *state)
{
    pw_fn *f = state;
    if (f == NULL)
        return;
    atomic_store(&f->dead, true);
    pw_fn_unref(f);
}

static int pw_handle(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                     const kiln_request *req, kiln_response *resp, kiln_err *err)
{
    (void)state, (void)pre, (void)req, (void)resp;
    return kiln_err_set(err, KILN_EUNSUPPORTED, "function '%s' is a proxy-wasm filter; a "
                        "proxy-wasm filter is a plugin: list it in a route's plugins with "
                        "kind: proxy-wasm", fn->name ? fn->name : "filter");
}

static const char *pw_stage_export(kiln_stage_kind kind)
{
    return kind == KILN_STAGE_FILTER ? "" : NULL;
}

/* ---- streams ------------------------------------------------------------------------ */

static atomic_uint_fast64_t request_seq;

static int stream_new(pw_fn *f, const kiln_instance_pre *pre, const kiln_plugin *plugin,
                      kiln_stage *st, pw_stream **out, kiln_err *err)
{
    pw_vm *vm;
    int rc = pw_vm_get(f, pre, &vm, err);
    if (rc != KILN_OK)
        return rc;
    pw_root *root;
    rc = pw_root_get(vm, plugin, &root, err);
    if (rc != KILN_OK)
        return rc;
    pw_stream *s = kiln_calloc(1, sizeof(*s));
    if (s == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    s->id = vm->next_id++;
    s->vm = vm;
    pw_vm_retain(vm);
    s->root = root;
    s->st = st;
    s->plugin = plugin;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(s->req_id, sizeof(s->req_id), "%08llx-%012llx", (unsigned long long)ts.tv_sec,
             (unsigned long long)atomic_fetch_add(&request_seq, 1));
    s->next = vm->streams;
    vm->streams = s;
    *out = s;
    uint32_t args[2] = {s->id, root->id};
    return pw_vm_call(vm, PW_EX_CTX_CREATE, s->id, args, 2, 0, NULL, err);
}

static void stream_free(pw_stream *s)
{
    pw_vm *vm = s->vm;
    for (pw_stream **p = &vm->streams; *p != NULL; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    if (vm->driver == s)
        vm->driver = NULL;
    while (s->calls != NULL) {
        pw_callout *c = s->calls;
        s->calls = c->next;
        pw_callout_free(c);
    }
    pw_props_free(s->props);
    kiln_free(s);
    pw_vm_release(vm);
}

/* One callback of the stream, then the callouts it made. */
static int step(pw_stream *s, int ex, const uint32_t *args, int nargs, kiln_err *err)
{
    pw_vm *vm = s->vm;
    uint32_t action = 0;
    vm->driver = s;
    int rc = pw_vm_call(vm, ex, s->id, args, nargs, 0, &action, err);
    vm->driver = NULL;
    if (rc != KILN_OK || s->local || s->closed)
        return rc;
    /* 0 = go on; anything else pauses (StopIteration, buffer, watermark). */
    s->paused = action != 0;
    return pw_callouts_run(vm, s, &s->calls, err);
}

/* Where a phase ended: answered, going on, or stuck. */
static int settle(pw_stream *s, int *verdict, kiln_err *err)
{
    const char *name = s->vm->fn->fn->name ? s->vm->fn->fn->name : "filter";
    if (s->local) {
        *verdict = KILN_STAGE_RESPOND;
        return KILN_OK;
    }
    if (s->closed)
        return kiln_err_set(err, KILN_EGUEST, "proxy-wasm filter '%s' closed the stream "
                            "(proxy_close_stream)", name);
    if (s->paused)
        return kiln_err_set(err, KILN_ETIMEOUT, "proxy-wasm filter '%s' paused the stream and "
                            "nothing resumed it (no proxy_continue_stream or local reply after "
                            "its callbacks and callouts; Kiln hands the whole body to one "
                            "callback with end_of_stream set)", name);
    return KILN_OK;
}

static int request_phase(pw_stream *s, int *verdict, kiln_err *err)
{
    s->req_seen = true;
    const kiln_request *rq = kiln_stage_request(s->st);
    kiln_kv *h;
    size_t n;
    if (pw_request_map(s->st, &h, &n) != KILN_OK)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    pw_kv_free(h, n);
    size_t body_len = rq->body_len;
    uint32_t args[3] = {s->id, (uint32_t)n, body_len == 0};
    int rc = step(s, PW_EX_REQ_HEADERS, args, 3, err);
    if (rc == KILN_OK && !s->local && !s->closed && body_len > 0) {
        /* Kiln has the whole body: one call, end_of_stream set. The body
         * may have been replaced meanwhile: pass its current length. */
        args[1] = (uint32_t)kiln_stage_request(s->st)->body_len;
        args[2] = 1;
        rc = step(s, PW_EX_REQ_BODY, args, 3, err);
    }
    return rc != KILN_OK ? rc : settle(s, verdict, err);
}

static int response_phase(pw_stream *s, int *verdict, kiln_err *err)
{
    s->resp_seen = true;
    s->local = false; /* a local reply from the request side passes here once */
    s->paused = false;
    kiln_response *r = kiln_stage_response(s->st);
    uint32_t args[3] = {s->id, (uint32_t)r->n_headers + 1, r->body_len == 0};
    int rc = step(s, PW_EX_RESP_HEADERS, args, 3, err);
    if (rc == KILN_OK && !s->local && !s->closed && r->body_len > 0) {
        args[1] = (uint32_t)r->body_len;
        args[2] = 1;
        rc = step(s, PW_EX_RESP_BODY, args, 3, err);
    }
    return rc != KILN_OK ? rc : settle(s, verdict, err);
}

static int pw_stage(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                    const kiln_plugin *plugin, kiln_stage_phase phase, kiln_stage *st,
                    int *verdict, kiln_err *err)
{
    pw_fn *f = state;
    *verdict = KILN_STAGE_CONTINUE;
    if (phase != KILN_PHASE_REQUEST && phase != KILN_PHASE_RESPONSE)
        return KILN_OK;
    /* The pipeline brackets stage() in the guest log budget. */
    void **slot = kiln_stage_stream(st, plugin->index);
    pw_stream *s = slot != NULL ? *slot : NULL;
    int rc = KILN_OK;
    if (slot == NULL) {
        rc = kiln_err_set(err, KILN_EINVAL, "proxy-wasm filter '%s': plugin index %u out of "
                          "range", fn->name, plugin->index);
    } else if (s == NULL) {
        rc = stream_new(f, pre, plugin, st, &s, err);
        if (s != NULL)
            *slot = s; /* stage_end runs even if creation failed half-way */
    }
    if (rc == KILN_OK) {
        s->st = st;
        rc = phase == KILN_PHASE_REQUEST ? request_phase(s, verdict, err)
                                         : response_phase(s, verdict, err);
    }
    if (rc != KILN_OK && rc != KILN_ENOMEM)
        fprintf(stderr, "kiln serve: %s\n", err != NULL ? err->msg : kiln_strerror(rc));
    return rc;
}

static void pw_stage_end(const kiln_function *fn, void *state, const kiln_plugin *plugin,
                         kiln_stage *st, void *stream)
{
    (void)state;
    pw_stream *s = stream;
    if (s == NULL)
        return;
    pw_vm *vm = s->vm;
    /* The stream's last callbacks run even if its client went away: they
     * are the filter's clean-up, in a VM other streams share. */
    kiln_fiber_clear_cancel();
    if (!vm->broken) {
        guest_log_budget b;
        guest_log_begin(&b, fn->name, &fn->log);
        kiln_err err;
        memset(&err, 0, sizeof(err));
        uint32_t args[1] = {s->id}, ok;
        /* Envoy's order: the access log, then done and delete. Callouts
         * made here go to the root context (the stream is ending). */
        int rc = pw_vm_call(vm, PW_EX_LOG, s->id, args, 1, 0, NULL, &err);
        if (rc == KILN_OK)
            rc = pw_vm_call(vm, PW_EX_DONE, s->id, args, 1, 1, &ok, &err);
        if (rc == KILN_OK)
            rc = pw_vm_call(vm, PW_EX_DELETE, s->id, args, 1, 0, NULL, &err);
        if (rc == KILN_OK)
            pw_root_callouts_start(s->root);
        else
            fprintf(stderr, "kiln serve: %s; the VM is recreated on next use\n", err.msg);
        guest_log_end(&b);
    }
    void **slot = st != NULL ? kiln_stage_stream(st, plugin->index) : NULL;
    if (slot != NULL && *slot == s)
        *slot = NULL;
    stream_free(s);
}

const kiln_abi_ops kiln_abi_proxywasm = {
    .name = "proxy-wasm",
    .detect = pw_detect,
    .hostfns = pw_hostfns,
    .prepare = pw_prepare,
    .handle = pw_handle,
    .release = pw_release,
    .retire = pw_retire,
    .stage_export = pw_stage_export,
    .stage = pw_stage,
    .stage_end = pw_stage_end,
};
