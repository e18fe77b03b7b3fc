/*
 * extism.c - the Extism ABI's call machinery and handler ops: per-function
 * state (options, the shared var store, the idle-instance pool), lazy
 * instantiation with guest-runtime init, the per-call sequence of
 * extism-abi.md §3.1 and the mapping of its outcomes to Kiln statuses.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "abi/extism/xtm_int.h"
#include "base/alloc.h"
#include "base/sha256.h"
#include "kiln/abi.h"

#define XTM_WASI_CAPTURE ((size_t)64 << 10)

uint64_t xtm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error"};

int xtm_log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < 5; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return XTM_LOG_WARN;
    if (strcasecmp(s, "off") == 0 || strcasecmp(s, "none") == 0)
        return XTM_LOG_OFF;
    return -1;
}

const char *xtm_log_level_name(int level)
{
    return level >= 0 && level < 5 ? level_names[level] : "off";
}

/* ---- modules ----------------------------------------------------------------- */

static bool callable_type(const char *type)
{
    return strcmp(type, ">i") == 0 || strcmp(type, ">") == 0;
}

static bool has_export(const kiln_module *m, const char *name, const char *type)
{
    int i = kiln_module_find_export(m, name, KILN_EXTERN_FUNC);
    if (i < 0)
        return false;
    kiln_extern_info info;
    kiln_module_export(m, (uint32_t)i, &info);
    return strcmp(info.type, type) == 0;
}

static bool init_export(const char *name)
{
    return strcmp(name, "_initialize") == 0 || strcmp(name, "__wasm_call_ctors") == 0 ||
           strcmp(name, "hs_init") == 0 || strcmp(name, "_start") == 0;
}

/* Comma-separated callable exports, for messages. */
static void list_callable(const kiln_module *m, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < kiln_module_export_count(m); i++) {
        kiln_extern_info info;
        kiln_module_export(m, i, &info);
        if (info.kind != KILN_EXTERN_FUNC || !callable_type(info.type) || init_export(info.name))
            continue;
        int n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", info.name);
        if (n < 0 || (size_t)n >= cap - used) {
            if (cap > 4)
                memcpy(buf + cap - 4, "...", 4);
            return;
        }
        used += (size_t)n;
    }
}

int xtm_check_export(const kiln_module *m, const char *name, kiln_err *err)
{
    int i = kiln_module_find_export(m, name, KILN_EXTERN_FUNC);
    if (i < 0) {
        char list[400];
        list_callable(m, list, sizeof(list));
        return kiln_err_set(err, KILN_ENOEXPORT,
                            "Function not found: %s; the module's callable exports are: %s", name,
                            list[0] ? list : "(none)");
    }
    kiln_extern_info info;
    kiln_module_export(m, (uint32_t)i, &info);
    if (!callable_type(info.type))
        return kiln_err_set(err, KILN_ETYPE,
                            "Function %s has type (%s) but an Extism function takes no "
                            "parameters and returns i32 or nothing; export a () -> i32 function",
                            name, info.type);
    return KILN_OK;
}

const char *xtm_default_export(const kiln_module *m)
{
    const char *found = NULL;
    for (uint32_t i = 0; i < kiln_module_export_count(m); i++) {
        kiln_extern_info info;
        kiln_module_export(m, i, &info);
        if (info.kind != KILN_EXTERN_FUNC || !callable_type(info.type) || init_export(info.name))
            continue;
        if (found != NULL)
            return NULL;
        found = info.name;
    }
    return found;
}

bool xtm_module_imports(const kiln_module *m, const char *module)
{
    size_t len = strlen(module);
    for (uint32_t i = 0; i < kiln_module_import_count(m); i++) {
        kiln_extern_info info;
        kiln_module_import(m, i, &info);
        if (info.module_len == len && memcmp(info.module, module, len) == 0)
            return true;
    }
    return false;
}

/* ---- vars ------------------------------------------------------------------------ */

static long var_find(const xtm_fn *f, const uint8_t *key, size_t klen)
{
    for (size_t i = 0; i < f->n_vars; i++)
        if (f->vars[i].klen == klen && memcmp(f->vars[i].key, key, klen) == 0)
            return (long)i;
    return -1;
}

int xtm_vars_get(xtm_ctx *c, const uint8_t *key, size_t klen, uint64_t *h)
{
    xtm_fn *f = c->fn;
    int rc = KILN_OK;
    *h = 0;
    pthread_mutex_lock(&f->vars_lock);
    /* Look the key up before allocating: the allocation may move the arena
     * that `key` points into. */
    long i = var_find(f, key, klen);
    if (i >= 0 && f->vars[i].vlen > 0) {
        rc = xtm_mem_alloc(&c->mem, f->vars[i].vlen, h);
        if (rc == KILN_OK && *h != 0)
            memcpy(c->mem.buf + *h, f->vars[i].val, f->vars[i].vlen);
    }
    pthread_mutex_unlock(&f->vars_lock);
    return rc == KILN_ENOMEM ? KILN_OK : rc;
}

int xtm_vars_set(xtm_fn *f, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    int rc = KILN_OK;
    pthread_mutex_lock(&f->vars_lock);
    long i = var_find(f, key, klen);
    if (val == NULL) {
        if (i >= 0) {
            xtm_var *v = &f->vars[i];
            f->vars_bytes -= v->klen + v->vlen + XTM_VAR_OVERHEAD;
            kiln_free(v->key);
            kiln_free(v->val);
            f->vars[i] = f->vars[--f->n_vars];
        }
        goto out;
    }
    /* Rust's accounting: the new entry plus every existing one, the old
     * value of this key included; the limit is exclusive (§6). */
    uint64_t size = (uint64_t)klen + vlen + XTM_VAR_OVERHEAD + f->vars_bytes;
    if (size > f->o.max_var_bytes) {
        rc = KILN_ELIMIT;
        goto out;
    }
    uint8_t *nv = kiln_malloc(vlen ? vlen : 1);
    if (nv == NULL) {
        rc = KILN_ENOMEM;
        goto out;
    }
    memcpy(nv, val, vlen);
    if (i >= 0) {
        xtm_var *v = &f->vars[i];
        f->vars_bytes = f->vars_bytes - v->vlen + vlen;
        kiln_free(v->val);
        v->val = nv;
        v->vlen = vlen;
        goto out;
    }
    uint8_t *nk = kiln_malloc(klen ? klen : 1);
    if (nk == NULL || (f->n_vars == f->cap_vars && f->cap_vars > SIZE_MAX / 2 / sizeof(xtm_var))) {
        kiln_free(nk);
        kiln_free(nv);
        rc = KILN_ENOMEM;
        goto out;
    }
    if (f->n_vars == f->cap_vars) {
        size_t cap = f->cap_vars ? f->cap_vars * 2 : 16;
        xtm_var *a = kiln_realloc(f->vars, cap * sizeof(*a));
        if (a == NULL) {
            kiln_free(nk);
            kiln_free(nv);
            rc = KILN_ENOMEM;
            goto out;
        }
        f->vars = a;
        f->cap_vars = cap;
    }
    memcpy(nk, key, klen);
    f->vars[f->n_vars++] = (xtm_var){nk, klen, nv, vlen};
    f->vars_bytes += klen + vlen + XTM_VAR_OVERHEAD;
out:
    pthread_mutex_unlock(&f->vars_lock);
    return rc;
}

/* ---- plugins: one instance with its Extism context ------------------------------- */

struct xtm_plugin {
    xtm_fn *fn;
    const kiln_instance_pre *pre;
    kiln_instance *inst;
    void *link; /* options.link_instantiate's, released after inst */
    kiln_wasi *wasi;
    xtm_ctx ctx;
    net_ctx http; /* KILN_STATE_HTTP: the "kiln" module's http_* (src/net) */
    bool discard; /* recreate before the next call (trap, _start, failure) */
};

static xtm_plugin *plugin_new(xtm_fn *f, const kiln_instance_pre *pre)
{
    xtm_plugin *p = kiln_calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->fn = f;
    p->pre = pre;
    p->ctx.fn = f;
    p->ctx.o = &f->o;
    xtm_mem_init(&p->ctx.mem, f->o.max_pages_set ? (uint64_t)f->o.max_pages * 65536u
                                                 : f->o.limits.max_memory_bytes);
    p->http.policy.allow = f->o.allowed_hosts;
    p->http.policy.n_allow = f->o.n_allowed_hosts;
    p->http.policy.max_response_bytes = f->o.max_http_response_bytes;
    return p;
}

static void plugin_drop_instance(xtm_plugin *p)
{
    kiln_instance_free(p->inst);
    p->inst = NULL;
    if (p->link != NULL)
        p->fn->o.link_free(p->fn->o.link_user, p->link);
    p->link = NULL;
    kiln_wasi_free(p->wasi);
    p->wasi = NULL;
}

static void plugin_free(xtm_plugin *p)
{
    if (p == NULL)
        return;
    plugin_drop_instance(p);
    xtm_ext_set(&p->ctx, NULL, NULL);
    xtm_mem_fini(&p->ctx.mem);
    kiln_free(p->ctx.http_headers);
    net_ctx_fini(&p->http);
    kiln_free(p);
}

/* Time left for the current call in ms: -1 none, 0 passed. */
static long long remaining(const xtm_ctx *c)
{
    return xtm_remaining_ms(c);
}

static void set_call_limits(xtm_plugin *p, long long left)
{
    kiln_limits l = p->fn->o.limits;
    l.timeout_ms = left < 0 ? 0 : (uint32_t)(left > UINT32_MAX ? UINT32_MAX : left);
    kiln_instance_set_limits(p->inst, &l);
}

/* Guest-runtime init (§5.1): Haskell, then C++/Rust constructors, then a
 * WASI reactor's _initialize. _start is never called implicitly. */
static int guest_init(xtm_plugin *p, const char **what, kiln_err *err)
{
    const kiln_module *m = kiln_instance_pre_module(p->pre);
    int rc = KILN_OK;
    if (has_export(m, "hs_init", "ii>")) {
        if (has_export(m, "_initialize", ">")) {
            *what = "_initialize";
            rc = kiln_instance_call(p->inst, "_initialize", ">", NULL, NULL, err);
        }
        if (rc == KILN_OK) {
            kiln_value args[2] = {{.i32 = 0}, {.i32 = 0}};
            *what = "hs_init";
            set_call_limits(p, remaining(&p->ctx));
            rc = kiln_instance_call(p->inst, "hs_init", "ii>", args, NULL, err);
        }
    } else if (has_export(m, "__wasm_call_ctors", ">")) {
        *what = "__wasm_call_ctors";
        rc = kiln_instance_call(p->inst, "__wasm_call_ctors", ">", NULL, NULL, err);
    } else if (has_export(m, "_initialize", ">")) {
        *what = "_initialize";
        rc = kiln_instance_call(p->inst, "_initialize", ">", NULL, NULL, err);
    }
    return rc;
}

/* The WASI context and state slots of a new instance of p. */
static int plugin_state(xtm_plugin *p, void **state, kiln_err *err)
{
    const xtm_options *o = &p->fn->o;
    if (o->wasi) {
        kiln_wasi_config wc;
        memset(&wc, 0, sizeof(wc));
        wc.env = o->env;
        wc.envc = o->n_env;
        wc.preopens = o->preopens;
        wc.npreopens = o->n_preopens;
        wc.stdio[0].kind = KILN_WASI_STDIO_NULL;
        wc.stdio[1].kind = KILN_WASI_STDIO_BUFFER;
        wc.stdio[1].cap = XTM_WASI_CAPTURE;
        wc.stdio[2].kind = KILN_WASI_STDIO_BUFFER;
        wc.stdio[2].cap = XTM_WASI_CAPTURE;
        int rc = kiln_wasi_new(&wc, &p->wasi, err);
        if (rc != KILN_OK)
            return rc;
    }
    for (int i = 0; o->host_state != NULL && i < KILN_STATE_SLOTS; i++)
        state[i] = o->host_state[i];
    state[KILN_STATE_EXTISM] = &p->ctx;
    state[KILN_STATE_WASI] = p->wasi;
    state[KILN_STATE_HTTP] = &p->http;
    return KILN_OK;
}

/*
 * memory.max_pages as Extism's runtime applies it: its limiter holds a
 * budget of max_pages pages that instantiation draws on and that is then
 * reset, so only growth past the initial size counts, and an initial size
 * over the budget fails with "oom". The cap of the fresh instance's memory
 * is lowered to its size + max_pages (memory.grow returns -1 beyond it).
 */
static int apply_max_pages(xtm_plugin *p, kiln_err *err)
{
    const xtm_options *o = &p->fn->o;
    wasm_rt_memory_t *mem = o->max_pages_set ? kiln_instance_memory(p->inst) : NULL;
    if (mem == NULL)
        return KILN_OK;
    if (mem->pages > o->max_pages) {
        kiln_err_set(err, KILN_ETRAP,
                     "%s: oom (the module starts with %u pages of linear memory; the manifest's "
                     "memory.max_pages is %u); raise memory.max_pages",
                     o->name, (unsigned)mem->pages, (unsigned)o->max_pages);
        err->trap = KILN_TRAP_OUT_OF_MEMORY;
        return KILN_ETRAP;
    }
    uint64_t cap = (uint64_t)mem->pages + o->max_pages;
    if (cap < mem->max_pages)
        mem->max_pages = (uint32_t)cap;
    return KILN_OK;
}

static int instantiate(xtm_plugin *p, const char **what, kiln_err *err)
{
    const xtm_options *o = &p->fn->o;
    *what = "instantiate";
    void *state[KILN_STATE_SLOTS] = {0};
    int rc = plugin_state(p, state, err);
    if (rc != KILN_OK)
        return rc;
    kiln_limits l = o->limits;
    long long left = remaining(&p->ctx);
    l.timeout_ms = left < 0 ? 0 : (uint32_t)(left > UINT32_MAX ? UINT32_MAX : left);
    const xtm_fn *f = p->fn;
    if (f->snap != NULL && f->snap_pre == p->pre) {
        /* Initialised already: no data segments, no init (snapshot.md). */
        *what = "instantiate from snapshot";
        rc = kiln_instance_new_from_snapshot(f->snap, &l, state, &p->inst, err);
        if (rc == KILN_OK && (rc = apply_max_pages(p, err)) != KILN_OK)
            p->discard = true;
        return rc;
    }
    /* With max_pages, the runtime's own cap is the declared maximum (or
     * limits.max_memory_bytes); apply_max_pages sets the real one. */
    if (o->link_instantiate != NULL)
        rc = o->link_instantiate(o->link_user, &l, state, &p->inst, &p->link, err);
    else
        rc = kiln_instance_new(p->pre, &l, state, &p->inst, err);
    if (rc == KILN_OK && (rc = apply_max_pages(p, err)) != KILN_OK)
        p->discard = true;
    if (rc == KILN_OK) {
        rc = guest_init(p, what, err);
        if (rc != KILN_OK)
            p->discard = true;
    }
    return rc;
}

/* Forward what a WASI plugin wrote to stdout/stderr to the log (debug). */
static void flush_wasi_output(xtm_plugin *p)
{
    if (p->wasi == NULL)
        return;
    for (int fd = 1; fd <= 2; fd++) {
        uint8_t *data = NULL;
        size_t len = 0;
        kiln_wasi_output_take(p->wasi, fd, &data, &len);
        while (len > 0 && data[len - 1] == '\n')
            len--;
        if (len > 0) {
            size_t n = len + 16;
            char *line = kiln_malloc(n);
            if (line != NULL) {
                int k = snprintf(line, n, "%s: ", fd == 1 ? "stdout" : "stderr");
                memcpy(line + k, data, len);
                xtm_log(&p->ctx, XTM_LOG_DEBUG, line, (size_t)k + len);
                kiln_free(line);
            }
        }
        kiln_free(data);
    }
}

/* Turn the end of a call (or of instantiation) into a status (§3.1 steps 8-11). */
static int outcome(xtm_plugin *p, const char *what, int rc, const kiln_err *cerr, int32_t rc32,
                   kiln_err *err)
{
    xtm_ctx *c = &p->ctx;
    const xtm_options *o = &p->fn->o;
    const char *name = o->name ? o->name : "plugin";
    bool exited = rc == KILN_EEXIT || (rc == KILN_ETRAP && cerr->trap == KILN_TRAP_EXIT);
    if (rc != KILN_OK)
        p->discard = true; /* a trapped instance may be mid-update: never re-use it */
    if (exited)
        rc32 = cerr->exit_code;

    /* The Extism error wins over the return code, traps and host failures. */
    uint64_t elen = xtm_mem_length(&c->mem, c->error_h);
    if (elen > 0) {
        const uint8_t *e = c->mem.buf + c->error_h;
        int shown = elen > 700 ? 700 : (int)elen;
        if (o->discard_on_error)
            p->discard = true;
        if (rc == KILN_OK || exited)
            return kiln_err_set(err, KILN_EGUEST, "%s: %s returned %d: %.*s", name, what, rc32,
                                shown, (const char *)e);
        return kiln_err_set(err, KILN_EGUEST, "%s: %s failed: %.*s", name, what, shown,
                            (const char *)e);
    }
    if (exited) {
        if (rc32 == 0)
            return KILN_OK;
        kiln_err_set(err, KILN_EGUEST, "%s: %s exited with code %d", name, what, rc32);
        err->exit_code = rc32;
        return KILN_EGUEST;
    }
    if (rc == KILN_OK) {
        if (rc32 != 0 && !o->nonzero_rc_ok) {
            if (o->discard_on_error)
                p->discard = true;
            return kiln_err_set(err, KILN_EGUEST,
                                "%s: %s returned %d: Returned non-zero exit code: %d", name, what,
                                rc32, rc32);
        }
        return KILN_OK;
    }
    if (rc == KILN_ETIMEOUT || cerr->trap == KILN_TRAP_TIMEOUT) {
        kiln_err_set(err, KILN_ETIMEOUT,
                     "%s: %s: timeout (the limit of %u ms passed); raise the function's "
                     "timeout if this is expected",
                     name, what, o->limits.timeout_ms);
        err->trap = KILN_TRAP_TIMEOUT;
        return KILN_ETIMEOUT;
    }
    if (c->failed && c->fail_kind == KILN_TRAP_OUT_OF_MEMORY) {
        kiln_err_set(err, KILN_ETRAP,
                     "%s: %s: oom (Extism memory would exceed %llu bytes); raise the "
                     "function's memory limit",
                     name, what, (unsigned long long)c->mem.limit);
        err->trap = KILN_TRAP_OUT_OF_MEMORY;
        return KILN_ETRAP;
    }
    if (c->failed)
        return kiln_err_set(err, KILN_EGUEST, "%s: %s: %s", name, what, c->fail_msg);
    if (err != NULL && err != cerr)
        *err = *cerr;
    return rc;
}

/* One call on plugin p; on success *out and *out_len are the output bytes
 * (valid until p's next call). */
static int plugin_call(xtm_plugin *p, const char *export_name, const uint8_t *in, size_t in_len,
                       const uint8_t **out, size_t *out_len, int32_t *rc32, kiln_err *err)
{
    const xtm_options *o = &p->fn->o;
    xtm_ctx *c = &p->ctx;
    const char *name = o->name ? o->name : "plugin";
    kiln_err cerr;
    memset(&cerr, 0, sizeof(cerr));
    *out = NULL;
    *out_len = 0;
    *rc32 = 0;
    c->deadline_ns = o->limits.timeout_ms ? xtm_now_ns() + o->limits.timeout_ms * 1000000ull : 0;
    /* A response of kiln.http_request does not outlive its call. */
    net_ctx_reset(&p->http, c->deadline_ns);
    c->failed = false;
    c->fail_kind = 0;
    c->fail_msg[0] = '\0';
    xtm_ext_set(c, NULL, NULL);

    const kiln_module *m = kiln_instance_pre_module(p->pre);
    int rc = xtm_check_export(m, export_name, err);
    if (rc != KILN_OK)
        return kiln_err_prefix(err, "%s", name);
    int idx = kiln_module_find_export(m, export_name, KILN_EXTERN_FUNC);

    if (p->inst == NULL) {
        /* Lazy instantiation under this call's time limit (§5.1). */
        const char *what = "instantiate";
        xtm_mem_reset(&c->mem);
        c->error_h = 0;
        rc = instantiate(p, &what, &cerr);
        if (rc != KILN_OK) {
            flush_wasi_output(p);
            return outcome(p, what, rc, &cerr, 0, err);
        }
    }

    /* Every old handle dies; the input becomes one fresh block. */
    xtm_mem_reset(&c->mem);
    c->input_h = c->input_len = 0;
    c->output_p = c->output_len = 0;
    c->error_h = 0;
    if (in_len > 0) {
        uint64_t h;
        rc = xtm_mem_alloc(&c->mem, in_len, &h);
        if (rc == KILN_ELIMIT) {
            kiln_err_set(err, KILN_ETRAP,
                         "%s: %s: oom (the %zu-byte input exceeds the Extism memory limit of "
                         "%llu bytes)",
                         name, export_name, in_len, (unsigned long long)c->mem.limit);
            err->trap = KILN_TRAP_OUT_OF_MEMORY;
            return KILN_ETRAP;
        }
        if (rc != KILN_OK)
            return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory copying a %zu-byte input",
                                name, in_len);
        memcpy(c->mem.buf + h, in, in_len);
        c->input_h = h;
        c->input_len = in_len;
    }

    long long left = remaining(c);
    if (left == 0) {
        cerr.trap = KILN_TRAP_TIMEOUT;
        return outcome(p, export_name, KILN_ETRAP, &cerr, 0, err);
    }
    set_call_limits(p, left);
    kiln_value res[1];
    memset(res, 0, sizeof(res));
    rc = kiln_instance_call_index(p->inst, idx, NULL, res, &cerr);
    if (strcmp(export_name, "_start") == 0)
        p->discard = true; /* §5.2: _start forces re-creation */
    flush_wasi_output(p);
    int32_t r = 0;
    kiln_extern_info info;
    kiln_module_export(m, (uint32_t)idx, &info);
    if (rc == KILN_OK && strcmp(info.type, ">i") == 0)
        r = (int32_t)res[0].i32;
    rc = outcome(p, export_name, rc, &cerr, r, err);
    if (rc == KILN_OK) {
        *rc32 = r;
        const uint8_t *b = xtm_mem_ptr(&c->mem, c->output_p, c->output_len);
        if (b != NULL && c->output_len > 0) {
            *out = b;
            *out_len = (size_t)c->output_len;
        }
    }
    return rc;
}

/* ---- per-function state and the pool ---------------------------------------------- */

int xtm_fn_new(const xtm_options *o, xtm_fn **out, kiln_err *err)
{
    xtm_fn *f = kiln_calloc(1, sizeof(*f));
    *out = NULL;
    if (f == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", o->name ? o->name : "extism");
    f->o = *o;
    pthread_mutex_init(&f->vars_lock, NULL);
    pthread_mutex_init(&f->pool_lock, NULL);
    *out = f;
    return KILN_OK;
}

void xtm_fn_free(xtm_fn *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n_idle; i++)
        plugin_free(f->idle[i]);
    for (size_t i = 0; i < f->n_vars; i++) {
        kiln_free(f->vars[i].key);
        kiln_free(f->vars[i].val);
    }
    kiln_free(f->vars);
    kiln_snapshot_free(f->snap);
    pthread_mutex_destroy(&f->vars_lock);
    pthread_mutex_destroy(&f->pool_lock);
    kiln_free(f);
}

const xtm_options *xtm_fn_options(const xtm_fn *f)
{
    return &f->o;
}

static int snapshot_build(xtm_fn *f, const kiln_instance_pre *pre, kiln_err *err)
{
    const char *name = f->o.name ? f->o.name : "plugin";
    xtm_plugin *p = plugin_new(f, pre);
    if (p == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", name);
    void *state[KILN_STATE_SLOTS] = {0};
    int rc = plugin_state(p, state, err);
    kiln_limits l = f->o.limits;
    if (l.timeout_ms < XTM_SNAPSHOT_INIT_MS)
        l.timeout_ms = XTM_SNAPSHOT_INIT_MS;
    p->ctx.deadline_ns = xtm_now_ns() + (uint64_t)l.timeout_ms * 1000000u;
    /* Only WASI calls a fresh context answers alike; every Extism call
     * (alloc, config, vars, HTTP, log) keeps state in the host. */
    size_t na = 0;
    const char *const *allow = kiln_wasi_snapshot_allow(&na);
    const char *what = "instantiate";
    if (rc == KILN_OK)
        rc = kiln_snapshot_begin(pre, &l, state, allow, na, &p->inst, err);
    if (rc == KILN_OK)
        rc = guest_init(p, &what, err);
    const kiln_module *m = kiln_instance_pre_module(pre);
    if (rc == KILN_OK && has_export(m, "wizer.initialize", ">")) {
        /* Wizer's contract: run once when the image is made, never again. */
        what = "wizer.initialize";
        rc = kiln_instance_call(p->inst, "wizer.initialize", ">", NULL, NULL, err);
    }
    kiln_snapshot *snap = NULL;
    if (rc == KILN_OK) {
        what = "capture";
        rc = kiln_snapshot_capture(p->inst, &snap, err);
    }
    flush_wasi_output(p); /* init's stdout/stderr: logged, not kept */
    plugin_free(p);
    if (rc != KILN_OK)
        return kiln_err_prefix(err, "%s: snapshot (%s) failed; the function cannot start from a "
                               "snapshot (set snapshot: false, or fix its initialisation)",
                               name, what);
    f->snap = snap;
    f->snap_pre = pre;
    return KILN_OK;
}

/* What init can observe besides the module (snapshot.md "Images on disk"):
 * the WASI context's configuration and the memory limits. Everything else an
 * Extism function is configured with is refused during init. `variant` gets
 * 16 hex digits of its SHA-256, `note` a summary ("default" when none is set). */
static void snapshot_variant(const xtm_options *o, char variant[17], char *note, size_t size)
{
    kiln_sha256 h;
    char num[96];
    kiln_sha256_init(&h);
    snprintf(num, sizeof(num), "xtm-image-1|%d|%llu|%d|%u|", o->wasi,
             (unsigned long long)o->limits.max_memory_bytes, o->max_pages_set, o->max_pages);
    kiln_sha256_update(&h, num, strlen(num));
    for (size_t i = 0; i < o->n_env; i++)
        kiln_sha256_update(&h, o->env[i], strlen(o->env[i]) + 1);
    kiln_sha256_update(&h, "|", 1);
    for (size_t i = 0; i < o->n_preopens; i++) {
        const kiln_wasi_preopen *po = &o->preopens[i];
        const char *g = po->guest_path ? po->guest_path : po->host_path;
        kiln_sha256_update(&h, po->host_path, strlen(po->host_path) + 1);
        kiln_sha256_update(&h, g, strlen(g) + 1);
        kiln_sha256_update(&h, po->read_only ? "r" : "w", 1);
    }
    uint8_t md[32];
    char hex[65];
    kiln_sha256_final(&h, md);
    kiln_sha256_to_hex(md, hex);
    memcpy(variant, hex, 16);
    variant[16] = '\0';
    /* "default": nothing the function's configuration adds (no environment,
     * preopens or manifest max_pages); the memory limit is the server's. */
    char pages[32] = "";
    if (o->max_pages_set)
        snprintf(pages, sizeof(pages), ", max_pages %u", o->max_pages);
    snprintf(note, size, "%s%s: %zu env, %zu preopens, max_memory %llu%s",
             o->n_env == 0 && o->n_preopens == 0 && !o->max_pages_set ? "default" : "custom",
             o->wasi ? " (wasi)" : "", o->n_env, o->n_preopens,
             (unsigned long long)o->limits.max_memory_bytes, pages);
}

static int build_image(void *ctx, const kiln_instance_pre *pre, kiln_snapshot **out,
                       kiln_err *err)
{
    xtm_fn *f = ctx;
    int rc = snapshot_build(f, pre, err);
    *out = rc == KILN_OK ? f->snap : NULL;
    return rc;
}

/*
 * The image for `pre`: read from the artifact cache when one was made for
 * this artifact, configuration and Kiln version, else built and saved there
 * (best effort), and claimed for the function (its previous image deleted:
 * snapshot.md "Cleanup"). On success err->msg says which, for the log.
 */
int xtm_fn_snapshot(xtm_fn *f, const kiln_instance_pre *pre, const char *module_id,
                    kiln_err *err)
{
    char variant[17], note[200];
    snapshot_variant(&f->o, variant, note, sizeof(note));
    const char *owner = f->o.name != NULL && f->o.name[0] != '\0' ? f->o.name : NULL;
    kiln_snapshot *snap = NULL;
    int rc = kiln_snapshot_obtain(pre, module_id, variant, note, owner, build_image, f, &snap,
                                  err);
    if (rc != KILN_OK)
        return rc;
    f->snap = snap;
    f->snap_pre = pre;
    return KILN_OK;
}

static xtm_plugin *pool_take(xtm_fn *f, const kiln_instance_pre *pre)
{
    xtm_plugin *p = NULL;
    pthread_mutex_lock(&f->pool_lock);
    for (size_t i = f->n_idle; i-- > 0;) {
        if (f->idle[i]->pre == pre) {
            p = f->idle[i];
            f->idle[i] = f->idle[--f->n_idle];
            break;
        }
    }
    pthread_mutex_unlock(&f->pool_lock);
    return p;
}

static void pool_put(xtm_fn *f, xtm_plugin *p)
{
    pthread_mutex_lock(&f->pool_lock);
    if (f->n_idle < XTM_POOL_MAX) {
        f->idle[f->n_idle++] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&f->pool_lock);
    plugin_free(p);
}

int xtm_run(xtm_fn *f, const kiln_instance_pre *pre, const char *export_name, const uint8_t *in,
            size_t in_len, xtm_output_fn cb, void *cb_arg, kiln_err *err)
{
    kiln_err local;
    if (err == NULL)
        err = &local;
    memset(err, 0, sizeof(*err));
    xtm_plugin *p = f->o.reuse ? pool_take(f, pre) : NULL;
    if (p == NULL)
        p = plugin_new(f, pre);
    if (p == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory creating an instance",
                            f->o.name ? f->o.name : "plugin");
    const uint8_t *out;
    size_t out_len;
    int32_t rc32;
    int rc = plugin_call(p, export_name, in, in_len, &out, &out_len, &rc32, err);
    if (rc == KILN_OK && cb != NULL)
        rc = cb(cb_arg, out, out_len, rc32, err);
    if (f->o.reuse && !p->discard && p->inst != NULL) {
        /* Drop this call's data now rather than keep it while idle. */
        xtm_ext_set(&p->ctx, NULL, NULL);
        pool_put(f, p);
    } else {
        plugin_free(p);
    }
    return rc;
}

/* ---- the handler ops -------------------------------------------------------------- */

typedef struct xtm_handler {
    xtm_fn *f;
    const char *export_name;
    kiln_wasi_preopen *preopens;
    char **env;
    size_t n_env;
} xtm_handler;

static int extism_detect(const kiln_module *m)
{
    int score = 0;
    for (uint32_t i = 0; i < kiln_module_import_count(m); i++) {
        kiln_extern_info info;
        kiln_module_import(m, i, &info);
        if (info.module_len == 15 && memcmp(info.module, "extism:host/env", 15) == 0)
            return 50;
        if (info.module_len == 3 && memcmp(info.module, "env", 3) == 0 &&
            strncmp(info.name, "extism_", 7) == 0)
            score = 40;
    }
    return score;
}

static const kiln_hostfn *extism_hostfns(size_t *n)
{
    return xtm_hostfns(n);
}

static void handler_free(xtm_handler *h)
{
    if (h == NULL)
        return;
    xtm_fn_free(h->f);
    kiln_free(h->preopens);
    for (size_t i = 0; i < h->n_env; i++)
        kiln_free(h->env[i]);
    kiln_free(h->env);
    kiln_free(h);
}

/*
 * Shared by the Extism and Otoroshi handlers: resolve the export (explicit,
 * `default_export`, or the module's only callable one), check it, and build
 * the function state from the configuration.
 */
static int handler_new(const kiln_function *fn, kiln_module *m, const char *default_export,
                       bool otoroshi, xtm_handler **out, kiln_err *err)
{
    const char *fname = fn->name ? fn->name : kiln_module_name(m);
    *out = NULL;
    const char *ex = fn->export_name ? fn->export_name : default_export;
    if (ex == NULL)
        ex = xtm_default_export(m);
    if (ex == NULL) {
        char list[400];
        list_callable(m, list, sizeof(list));
        return kiln_err_set(err, KILN_ECONFIG,
                            "%s: no export name configured and the module does not have exactly "
                            "one callable export (it has: %s); set the function's export",
                            fname, list[0] ? list : "none");
    }
    int rc = xtm_check_export(m, ex, err);
    if (rc != KILN_OK)
        return kiln_err_prefix(err, "%s", fname);

    xtm_handler *h = kiln_calloc(1, sizeof(*h));
    if (h == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", fname);
    h->export_name = ex;
    xtm_options o;
    memset(&o, 0, sizeof(o));
    o.name = fname;
    o.config = fn->config;
    o.n_config = fn->n_config;
    o.allowed_hosts = fn->allowed_hosts;
    o.n_allowed_hosts = fn->n_allowed_hosts;
    o.limits = fn->limits;
    /* kiln_function has no "disabled" value: 0 means the Extism default. */
    o.max_var_bytes = fn->max_var_bytes ? fn->max_var_bytes : XTM_DEFAULT_MAX_VAR_BYTES;
    o.max_http_response_bytes = fn->max_http_response_bytes ? fn->max_http_response_bytes
                                                             : XTM_DEFAULT_MAX_HTTP_RESPONSE;
    o.http_headers = fn->http_response_headers;
    o.log_level = XTM_LOG_INFO;
    o.reuse = fn->reuse;
    o.snapshot = fn->snapshot;
    o.nonzero_rc_ok = otoroshi;
    o.discard_on_error = otoroshi;
    o.host_state = fn->host_state;
    /* kiln_function has no WASI switch: a plugin that imports WASI gets it. */
    o.wasi = xtm_module_imports(m, "wasi_snapshot_preview1");
    if (o.wasi && fn->n_dirs > 0) {
        h->preopens = kiln_calloc(fn->n_dirs, sizeof(*h->preopens));
        if (h->preopens == NULL)
            goto nomem;
        for (size_t i = 0; i < fn->n_dirs; i++) {
            h->preopens[i].host_path = fn->dirs[i].host;
            h->preopens[i].guest_path = fn->dirs[i].guest;
            h->preopens[i].read_only = fn->dirs[i].read_only;
        }
        o.preopens = h->preopens;
        o.n_preopens = fn->n_dirs;
    }
    if (o.wasi && fn->n_env > 0) {
        h->env = kiln_calloc(fn->n_env, sizeof(*h->env));
        if (h->env == NULL)
            goto nomem;
        for (size_t i = 0; i < fn->n_env; i++) {
            const char *k = fn->env[i].name, *v = fn->env[i].value ? fn->env[i].value : "";
            size_t n = strlen(k) + strlen(v) + 2;
            h->env[i] = kiln_malloc(n);
            if (h->env[i] == NULL)
                goto nomem;
            h->n_env++;
            snprintf(h->env[i], n, "%s=%s", k, v);
        }
        o.env = (const char *const *)h->env;
        o.n_env = h->n_env;
    }
    rc = xtm_fn_new(&o, &h->f, err);
    if (rc != KILN_OK) {
        handler_free(h);
        return rc;
    }
    *out = h;
    return KILN_OK;
nomem:
    handler_free(h);
    return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", fname);
}

static int extism_prepare(const kiln_function *fn, kiln_module *m, void **state, kiln_err *err)
{
    xtm_handler *h;
    int rc = handler_new(fn, m, NULL, false, &h, err);
    *state = rc == KILN_OK ? h : NULL;
    return rc;
}

static void extism_release(void *state)
{
    handler_free(state);
}

/* JSON description of the request, for fn->request_json (see docs). */
static char *request_json(const kiln_request *req, size_t *len)
{
    json_t *o = json_object();
    json_t *hd = json_object();
    json_t *pa = json_object();
    if (o == NULL || hd == NULL || pa == NULL) {
        json_decref(o);
        json_decref(hd);
        json_decref(pa);
        return NULL;
    }
    json_object_set_new(o, "method", json_string(req->method ? req->method : "GET"));
    json_object_set_new(o, "url", json_string(req->url ? req->url : "/"));
    json_object_set_new(o, "path", json_string(req->path ? req->path : "/"));
    json_object_set_new(o, "query", json_string(req->query ? req->query : ""));
    json_object_set_new(o, "remote_addr", json_string(req->remote_addr ? req->remote_addr : ""));
    for (size_t i = 0; i < req->n_headers; i++) {
        /* Repeated headers are joined with ", " as HTTP allows. */
        const char *n = req->headers[i].name, *v = req->headers[i].value;
        json_t *old = json_object_get(hd, n);
        if (old != NULL && json_is_string(old)) {
            size_t need = json_string_length(old) + strlen(v) + 3;
            char *j = kiln_malloc(need);
            if (j != NULL) {
                snprintf(j, need, "%s, %s", json_string_value(old), v);
                json_object_set_new(hd, n, json_string(j));
                kiln_free(j);
            }
        } else {
            json_object_set_new(hd, n, json_string(v));
        }
    }
    json_object_set_new(o, "headers", hd);
    for (size_t i = 0; i < req->n_params; i++)
        json_object_set_new(pa, req->params[i].name, json_string(req->params[i].value));
    json_object_set_new(o, "params", pa);
    json_t *body = req->body_len ? json_stringn((const char *)req->body, req->body_len)
                                 : json_string("");
    if (body != NULL) {
        json_object_set_new(o, "body", body);
    } else {
        char *b64 = xtm_base64_encode(req->body, req->body_len);
        json_object_set_new(o, "body_base64", json_string(b64 ? b64 : ""));
        kiln_free(b64);
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s != NULL)
        *len = strlen(s);
    return s;
}

static int extism_output(void *arg, const uint8_t *out, size_t len, int32_t rc32, kiln_err *err)
{
    kiln_response *resp = arg;
    (void)rc32;
    resp->status = 200;
    int rc = kiln_response_add_header(resp, "Content-Type", "application/octet-stream");
    if (rc == KILN_OK)
        rc = kiln_response_append(resp, out, len);
    if (rc == KILN_ELIMIT)
        return kiln_err_set(err, KILN_ELIMIT,
                            "the plugin's %zu-byte output exceeds the response limit of %zu "
                            "bytes; raise the function's max output size",
                            len, resp->max_body);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "out of memory building the response");
    return KILN_OK;
}

static int extism_handle(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                         const kiln_request *req, kiln_response *resp, kiln_err *err)
{
    xtm_handler *h = state;
    const uint8_t *in = req->body;
    size_t len = req->body_len;
    char *json = NULL;
    if (fn->request_json) {
        json = request_json(req, &len);
        if (json == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory describing the request",
                                h->f->o.name);
        in = (const uint8_t *)json;
    }
    int rc = xtm_run(h->f, pre, h->export_name, in, len, extism_output, resp, err);
    free(json); /* jansson's allocation */
    return rc;
}

const kiln_abi_ops kiln_abi_extism = {
    .name = "extism",
    .detect = extism_detect,
    .hostfns = extism_hostfns,
    .prepare = extism_prepare,
    .handle = extism_handle,
    .release = extism_release,
    .snapshot = xtm_handler_snapshot,
};

/* ---- shared with the Otoroshi ABI ---------------------------------------------------- */

int xtm_handler_prepare(const kiln_function *fn, kiln_module *m, const char *default_export,
                        void **state, kiln_err *err)
{
    xtm_handler *h;
    int rc = handler_new(fn, m, default_export, true, &h, err);
    *state = rc == KILN_OK ? h : NULL;
    return rc;
}

int xtm_handler_run(void *state, const kiln_instance_pre *pre, const uint8_t *in, size_t len,
                    xtm_output_fn cb, void *cb_arg, kiln_err *err)
{
    xtm_handler *h = state;
    return xtm_run(h->f, pre, h->export_name, in, len, cb, cb_arg, err);
}

int xtm_handler_run_export(void *state, const kiln_instance_pre *pre, const char *export_name,
                           const uint8_t *in, size_t len, xtm_output_fn cb, void *cb_arg,
                           kiln_err *err)
{
    xtm_handler *h = state;
    return xtm_run(h->f, pre, export_name ? export_name : h->export_name, in, len, cb, cb_arg,
                   err);
}

void xtm_handler_release(void *state)
{
    handler_free(state);
}

int xtm_handler_snapshot(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                         kiln_err *err)
{
    (void)fn;
    xtm_handler *h = state;
    return xtm_fn_snapshot(h->f, pre, fn->module_id, err);
}
