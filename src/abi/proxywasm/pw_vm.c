/*
 * pw_vm.c - proxy-wasm VMs: one instance per filter function per worker
 * thread, kept across requests as Envoy keeps them (the one place Kiln keeps
 * instances by design), started once (_initialize/main or _start), with a
 * root context per plugin configuration (on_context_create(R, 0),
 * on_vm_start, on_configure) and tick timers on the thread's event loop.
 *
 * The registry is a thread-local list. A VM whose function was released
 * (reload) or that trapped is unlinked and freed by its own thread once no
 * stream holds it; thread exit frees the rest (pthread key destructor).
 * Every call into a VM runs under the function's limits, renewed per call.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "abi/guest_log.h"
#include "abi/proxywasm/pw_int.h"
#include "base/alloc.h"

static _Thread_local pw_vm *tl_vms;
/* Set while the thread exits: its loop may be gone, so timers are left
 * alone (they can never fire again). */
static _Thread_local bool tl_exiting;
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static void root_free(pw_root *r)
{
    if (r->loop != NULL && r->timer.slot != 0 && !tl_exiting)
        kl_timer_stop(r->loop, &r->timer);
    while (r->calls != NULL) {
        pw_callout *c = r->calls;
        r->calls = c->next;
        pw_callout_free(c);
    }
    kiln_free(r->config);
    kiln_free(r->vm_config);
    kiln_free(r->name);
    kiln_free(r);
}

static void vm_free_instance(pw_vm *vm)
{
    for (pw_root *r = vm->roots; r != NULL; r = r->next) {
        if (r->loop != NULL && r->timer.slot != 0 && !tl_exiting)
            kl_timer_stop(r->loop, &r->timer);
        r->loop = NULL;
    }
    kiln_instance_free(vm->inst);
    vm->inst = NULL;
    kiln_wasi_free(vm->wasi);
    vm->wasi = NULL;
}

static void vm_destroy(pw_vm *vm)
{
    vm_free_instance(vm);
    while (vm->roots != NULL) {
        pw_root *r = vm->roots;
        vm->roots = r->next;
        root_free(r);
    }
    /* Last: the owner (route table) keeps vm->fn->fn and the instance's
     * pre alive; dropping it may free them. */
    void *owner = vm->owner;
    void (*owner_release)(void *) = vm->owner_release;
    pw_fn_unref(vm->fn);
    kiln_free(vm);
    if (owner != NULL)
        owner_release(owner);
}

void pw_vm_retain(pw_vm *vm)
{
    vm->refs++;
}

void pw_vm_release(pw_vm *vm)
{
    if (--vm->refs == 0)
        vm_destroy(vm);
}

static void unlink_vm(pw_vm *vm)
{
    if (!vm->in_registry)
        return;
    for (pw_vm **p = &tl_vms; *p != NULL; p = &(*p)->next)
        if (*p == vm) {
            *p = vm->next;
            break;
        }
    vm->in_registry = false;
    pw_vm_release(vm);
}

void pw_vm_break(pw_vm *vm)
{
    if (vm->broken)
        return;
    vm->broken = true;
    vm_free_instance(vm);
    unlink_vm(vm);
}

static void tl_destructor(void *p)
{
    (void)p;
    tl_exiting = true;
    pw_vms_free_thread();
}

static void tl_init(void)
{
    pthread_key_create(&tl_key, tl_destructor);
}

void pw_vms_free_thread(void)
{
    while (tl_vms != NULL)
        pw_vm_break(tl_vms);
}

/* ---- contexts --------------------------------------------------------------------- */

pw_root *pw_root_find(pw_vm *vm, uint32_t id)
{
    for (pw_root *r = vm->roots; r != NULL; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

pw_stream *pw_stream_find(pw_vm *vm, uint32_t id)
{
    /* Host calls come almost always from the stream whose callback is
     * running: answer that without walking every paused stream. */
    if (vm->driver != NULL && vm->driver->id == id)
        return vm->driver;
    for (pw_stream *s = vm->streams; s != NULL; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

uint32_t pw_ctx_id(pw_vm *vm)
{
    return vm->eff_ctx != 0 ? vm->eff_ctx : vm->cur_ctx;
}

pw_stream *pw_ctx_stream(pw_vm *vm)
{
    return pw_stream_find(vm, pw_ctx_id(vm));
}

pw_root *pw_ctx_root(pw_vm *vm)
{
    uint32_t id = pw_ctx_id(vm);
    pw_stream *s = pw_stream_find(vm, id);
    return s != NULL ? s->root : pw_root_find(vm, id);
}

/* ---- calls ----------------------------------------------------------------------- */

static const char *const ex_names[PW_EX_COUNT] = {
    "proxy_on_memory_allocate", "_initialize", "main", "__main_void", "_start",
    "proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure", "proxy_on_tick",
    "proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
    "proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
    "proxy_on_done", "proxy_on_log", "proxy_on_delete", "proxy_on_http_call_response",
    "proxy_on_queue_ready", "proxy_on_foreign_function",
};

int pw_vm_call(pw_vm *vm, int ex, uint32_t ctx, const uint32_t *args, int nargs, uint32_t dflt,
               uint32_t *result, kiln_err *err)
{
    if (result != NULL)
        *result = dflt;
    const char *fname = vm->fn->fn->name ? vm->fn->fn->name : "filter";
    if (vm->inst == NULL)
        return kiln_err_set(err, KILN_ECANCELED, "proxy-wasm filter '%s': its VM was discarded "
                            "after a failure while this request was using it", fname);
    int idx = vm->fn->ex[ex];
    if (idx < 0)
        return KILN_OK;
    /* A VM call never suspends (no host function of this ABI waits inside
     * one), so a VM is never re-entered by another request; check anyway. */
    if (vm->depth > 0)
        return kiln_err_set(err, KILN_EINVAL, "proxy-wasm filter '%s': VM re-entered while a "
                            "call into it is suspended", fname);
    kiln_value a[8], r[2];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < nargs && i < 8; i++)
        a[i].i32 = args[i];
    kiln_instance_set_limits(vm->inst, &vm->fn->fn->limits); /* a fresh deadline per call */
    uint32_t saved_cur = vm->cur_ctx, saved_eff = vm->eff_ctx;
    vm->cur_ctx = ctx;
    vm->eff_ctx = 0;
    vm->depth++;
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc = kiln_instance_call_index(vm->inst, idx, a, r, &e);
    vm->depth--;
    vm->cur_ctx = saved_cur;
    vm->eff_ctx = saved_eff;
    if (rc == KILN_OK) {
        if (result != NULL) {
            kiln_extern_info info;
            kiln_module_export(kiln_instance_module(vm->inst), (uint32_t)idx, &info);
            const char *gt = strchr(info.type, '>');
            if (gt != NULL && gt[1] == 'i')
                *result = r[0].i32;
        }
        return KILN_OK;
    }
    if (err != NULL) {
        *err = e;
        kiln_err_prefix(err, "proxy-wasm filter '%s' (%s)", fname, ex_names[ex]);
    }
    /* TinyGo's _start ends with proc_exit(0) once main returns: the VM is
     * started, not broken (vm_start takes it as a clean start). */
    if (ex == PW_EX_START && rc == KILN_EEXIT && e.exit_code == 0)
        return rc;
    pw_vm_break(vm);
    return rc;
}

/* ---- start ------------------------------------------------------------------------ */

static int vm_start(pw_vm *vm, kiln_err *err)
{
    pw_fn *f = vm->fn;
    int rc = KILN_OK;
    uint32_t res;
    if (f->ex[PW_EX_INITIALIZE] >= 0) {
        rc = pw_vm_call(vm, PW_EX_INITIALIZE, 0, NULL, 0, 0, NULL, err);
        if (rc == KILN_OK && f->ex[PW_EX_MAIN] >= 0) {
            uint32_t args[2] = {0, 0};
            rc = pw_vm_call(vm, PW_EX_MAIN, 0, args, 2, 0, &res, err);
        } else if (rc == KILN_OK && f->ex[PW_EX_MAIN_VOID] >= 0) {
            rc = pw_vm_call(vm, PW_EX_MAIN_VOID, 0, NULL, 0, 0, &res, err);
        }
    } else if (f->ex[PW_EX_START] >= 0) {
        rc = pw_vm_call(vm, PW_EX_START, 0, NULL, 0, 0, NULL, err);
        /* TinyGo's _start may end with proc_exit(0): a clean start. */
        if (rc == KILN_EEXIT && err != NULL && err->exit_code == 0)
            rc = KILN_OK;
    }
    return rc;
}

static int vm_new(pw_fn *f, const kiln_instance_pre *pre, pw_vm **out, kiln_err *err)
{
    const char *fname = f->fn->name ? f->fn->name : "filter";
    pw_vm *vm = kiln_calloc(1, sizeof(*vm));
    if (vm == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    vm->fn = f;
    atomic_fetch_add(&f->refs, 1);
    /* Ticks and queue notifications run between requests, when no request
     * holds the route table: the VM holds it (released in vm_destroy). */
    if (f->fn->owner != NULL && f->fn->owner_retain != NULL && f->fn->owner_release != NULL) {
        f->fn->owner_retain(f->fn->owner);
        vm->owner = f->fn->owner;
        vm->owner_release = f->fn->owner_release;
    }
    vm->refs = 1;
    vm->next_id = 1;
    vm->loop = kl_current();
    kiln_wasi_config wc;
    memset(&wc, 0, sizeof(wc));
    for (int i = 0; i < 3; i++)
        wc.stdio[i].kind = KILN_WASI_STDIO_NULL; /* fd_write is the log (pw_misc.c) */
    int rc = kiln_wasi_new(&wc, &vm->wasi, err);
    void *state[KILN_STATE_SLOTS] = {0};
    state[KILN_STATE_WASI] = vm->wasi;
    /* Kiln's own host module gets its config and log; not KV or HTTP: their
     * waits would suspend inside a VM call that other requests share. */
    state[KILN_STATE_HOST] = f->fn->host_state[KILN_STATE_HOST];
    state[KILN_STATE_USER] = vm;
    if (rc == KILN_OK) {
        /* The start section may already log: the VM is in place. */
        rc = kiln_instance_new(pre, &f->fn->limits, state, &vm->inst, err);
        if (rc != KILN_OK)
            kiln_err_prefix(err, "proxy-wasm filter '%s': instantiating", fname);
    }
    if (rc == KILN_OK)
        rc = vm_start(vm, err);
    if (rc != KILN_OK || vm->inst == NULL) {
        vm_destroy(vm);
        return rc != KILN_OK ? rc : kiln_err_set(err, KILN_ETRAP, "proxy-wasm filter '%s': "
                                                 "start failed", fname);
    }
    *out = vm;
    return KILN_OK;
}

int pw_vm_get(pw_fn *f, const kiln_instance_pre *pre, pw_vm **out, kiln_err *err)
{
    pthread_once(&tl_once, tl_init);
    /* Forget VMs of released functions on the way. */
    for (pw_vm *vm = tl_vms, *next; vm != NULL; vm = next) {
        next = vm->next;
        if (atomic_load(&vm->fn->dead))
            pw_vm_break(vm);
    }
    for (pw_vm *vm = tl_vms; vm != NULL; vm = vm->next)
        if (vm->fn == f && !vm->broken) {
            *out = vm;
            return KILN_OK;
        }
    pw_vm *vm = NULL;
    int rc = vm_new(f, pre, &vm, err);
    if (rc != KILN_OK)
        return rc;
    vm->in_registry = true;
    vm->next = tl_vms;
    tl_vms = vm;
    pthread_setspecific(tl_key, vm); /* any non-NULL value: runs the destructor */
    *out = vm;
    return KILN_OK;
}

pw_vm *pw_vm_find(pw_fn *f)
{
    for (pw_vm *vm = tl_vms; vm != NULL; vm = vm->next)
        if (vm->fn == f && !vm->broken)
            return vm;
    return NULL;
}

/* ---- roots ------------------------------------------------------------------------ */

static bool same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The plugin object is the key (it lives in the route table, as long as
 * the prepared function); the configuration the root was made with is
 * compared too, so a plugin object re-used with other settings never meets
 * a stale root. */
static bool same_plugin(const pw_root *r, const kiln_plugin *p)
{
    return r->plugin == p && same_str(r->config, p->config_json ? p->config_json : "") &&
           same_str(r->vm_config, p->vm_config ? p->vm_config : "");
}

int pw_root_get(pw_vm *vm, const kiln_plugin *plugin, pw_root **out, kiln_err *err)
{
    const char *fname = vm->fn->fn->name ? vm->fn->fn->name : "filter";
    for (pw_root *r = vm->roots; r != NULL; r = r->next)
        if (same_plugin(r, plugin)) {
            if (r->failed)
                return kiln_err_set(err, KILN_ECONFIG, "proxy-wasm filter '%s' refused its "
                                    "configuration (proxy_on_vm_start or proxy_on_configure "
                                    "returned false); see its log lines", fname);
            *out = r;
            return KILN_OK;
        }
    pw_root *r = kiln_calloc(1, sizeof(*r));
    if (r == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    r->id = vm->next_id++;
    r->plugin = plugin;
    r->config = kiln_strdup(plugin->config_json ? plugin->config_json : "");
    r->vm_config = kiln_strdup(plugin->vm_config ? plugin->vm_config : "");
    r->name = kiln_strdup(plugin->name ? plugin->name : "");
    if (r->config == NULL || r->vm_config == NULL || r->name == NULL) {
        kiln_free(r->config);
        kiln_free(r->vm_config);
        kiln_free(r->name);
        kiln_free(r);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    r->vm = vm;
    r->next = vm->roots;
    vm->roots = r;
    uint32_t args[2] = {r->id, 0}, ok = 1;
    vm->cur_root = r;
    int rc = pw_vm_call(vm, PW_EX_CTX_CREATE, r->id, args, 2, 0, NULL, err);
    if (rc == KILN_OK) {
        args[1] = (uint32_t)strlen(r->vm_config);
        rc = pw_vm_call(vm, PW_EX_VM_START, r->id, args, 2, 1, &ok, err);
    }
    if (rc == KILN_OK && ok) {
        vm->configuring = r;
        args[1] = (uint32_t)strlen(r->config);
        rc = pw_vm_call(vm, PW_EX_CONFIGURE, r->id, args, 2, 1, &ok, err);
        vm->configuring = NULL;
    }
    if (rc != KILN_OK)
        return rc; /* the VM is broken and takes its roots with it */
    if (!ok) {
        r->failed = true;
        return kiln_err_set(err, KILN_ECONFIG, "proxy-wasm filter '%s' refused its "
                            "configuration (proxy_on_vm_start or proxy_on_configure returned "
                            "false); see its log lines", fname);
    }
    pw_root_callouts_start(r);
    *out = r;
    return KILN_OK;
}

/* ---- ticks ------------------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void tick_fired(kl_timer *t)
{
    pw_root *r = t->arg;
    pw_vm *vm = r->vm;
    if (vm->broken || vm->inst == NULL)
        return;
    if (atomic_load(&vm->fn->dead)) {
        pw_vm_break(vm);
        return;
    }
    kiln_err err;
    memset(&err, 0, sizeof(err));
    guest_log_budget b;
    guest_log_begin(&b, vm->fn->fn->name, &vm->fn->fn->log);
    pw_vm_retain(vm);
    uint32_t args[1] = {r->id};
    vm->cur_root = r;
    int rc = pw_vm_call(vm, PW_EX_TICK, r->id, args, 1, 0, NULL, &err);
    if (rc != KILN_OK) {
        fprintf(stderr, "kiln serve: %s; the VM is recreated on next use\n", err.msg);
    } else {
        pw_root_callouts_start(r);
        if (r->tick_ms != 0 && !vm->broken)
            kl_timer_start(r->loop, &r->timer, mono_ns() + (uint64_t)r->tick_ms * 1000000u);
    }
    guest_log_end(&b);
    pw_vm_release(vm);
}

void pw_tick_arm(pw_root *r)
{
    if (r->loop == NULL)
        r->loop = r->vm->loop != NULL ? r->vm->loop : kl_current();
    if (r->loop == NULL)
        return; /* no event loop (kiln call, unit tests): ticks never fire */
    if (r->timer.slot != 0)
        kl_timer_stop(r->loop, &r->timer);
    if (r->tick_ms == 0)
        return;
    r->timer.cb = tick_fired;
    r->timer.arg = r;
    kl_timer_start(r->loop, &r->timer, mono_ns() + (uint64_t)r->tick_ms * 1000000u);
}
