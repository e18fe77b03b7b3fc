/*
 * em_compiled.c - ExtismCompiledPlugin: turn wasm bytes or an Extism
 * manifest into a linked module. The module goes through Kiln's artifact
 * cache (kiln_aot_compile: the first load of a module on a machine runs the
 * toolchain, later ones map the cached .so), against a linker holding the
 * Extism host functions, WASI when asked, and the user's functions.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/extism/extism.h"
#include "abi/kiln/kiln_host.h"
#include "base/alloc.h"
#include "embed/embed_int.h"
#include "kiln/aot.h"
#include "kiln/handler.h"
#include "kiln/wasi.h"

/* Named directly so that linking libkiln.a pulls the ABI in. */
extern const kiln_abi_ops kiln_abi_otoroshi;

#define EM_MAX_MODULE ((size_t)1 << 30)

void em_errmsg(char **errmsg, const char *fmt, ...)
{
    if (errmsg == NULL)
        return;
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* malloc, not kiln_malloc: the caller may free it with free() as Rust's
     * CString is freed through extism_plugin_new_error_free only. */
    *errmsg = strdup(buf);
}

ExtismCompiledPlugin *em_compiled_retain(const ExtismCompiledPlugin *c)
{
    ExtismCompiledPlugin *m = (ExtismCompiledPlugin *)c;
    atomic_fetch_add(&m->refs, 1);
    return m;
}

void em_compiled_release(ExtismCompiledPlugin *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->pre != NULL)
        kiln_instance_pre_free(c->pre);
    if (c->mod != NULL)
        kiln_module_release(c->mod);
    if (c->linker != NULL)
        kiln_linker_free(c->linker);
    for (size_t i = 0; i < c->n_deps; i++) {
        kiln_free(c->deps[i].name);
        if (c->deps[i].mod != NULL)
            kiln_module_release(c->deps[i].mod);
    }
    kiln_free(c->deps);
    kiln_kv_grants_free(c->kv);
    for (size_t i = 0; i < c->n_fns; i++)
        em_fn_release(c->fns[i]);
    kiln_free(c->fns);
    kiln_free(c->user_table);
    kiln_free(c->name);
    for (size_t i = 0; i < c->n_config; i++) {
        kiln_free((void *)c->config[i].name);
        kiln_free((void *)c->config[i].value);
    }
    kiln_free(c->config);
    for (size_t i = 0; i < c->n_hosts; i++)
        kiln_free(c->hosts[i]);
    kiln_free(c->hosts);
    for (size_t i = 0; i < c->n_dirs; i++) {
        kiln_free((void *)c->dirs[i].host_path);
        kiln_free((void *)c->dirs[i].guest_path);
    }
    kiln_free(c->dirs);
    kiln_free(c);
}

EXTISM_API void extism_compiled_plugin_free(ExtismCompiledPlugin *c)
{
    em_compiled_release(c);
}

/* Read a module file named by a manifest. */
static int read_file(const char *path, uint8_t **out, size_t *len, kiln_err *err)
{
    FILE *f = fopen(path, "rb");
    *out = NULL;
    *len = 0;
    if (f == NULL)
        return kiln_err_set(err, KILN_ENOENT, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = kiln_malloc(cap);
    int rc = KILN_OK;
    while (buf != NULL) {
        if (n == cap) {
            uint8_t *nb = cap < EM_MAX_MODULE ? kiln_realloc(buf, cap * 2) : NULL;
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (buf == NULL || n == cap || ferror(f))
        rc = kiln_err_set(err, KILN_EIO, "cannot read %s", path);
    fclose(f);
    if (rc != KILN_OK) {
        kiln_free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return KILN_OK;
}

static bool looks_like_json(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i < n && p[i] == '{';
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Copy a config entry "KEY=VALUE" or {name, value}. */
static int add_config(ExtismCompiledPlugin *c, const char *name, size_t nlen, const char *value)
{
    kiln_kv *e = &c->config[c->n_config];
    e->name = kiln_strndup(name, nlen);
    e->value = kiln_strdup(value ? value : "");
    if (e->name == NULL || e->value == NULL) {
        kiln_free((void *)e->name);
        kiln_free((void *)e->value);
        return KILN_ENOMEM;
    }
    c->n_config++;
    return KILN_OK;
}

/* The options and the manifest, merged: the options' entries first (the
 * first match wins), directories after the manifest's. */
static int resolve(ExtismCompiledPlugin *c, const xtm_manifest *man, const kiln_extism_options *o,
                   kiln_err *err)
{
    size_t nc = o->n_config + man->n_config, nh = o->n_allowed_hosts + man->n_allowed_hosts;
    size_t nd = o->n_dirs + man->n_allowed_paths;
    c->config = kiln_calloc(nc + 1, sizeof(*c->config));
    c->hosts = kiln_calloc(nh + 1, sizeof(*c->hosts));
    c->dirs = kiln_calloc(nd + 1, sizeof(*c->dirs));
    if (c->config == NULL || c->hosts == NULL || c->dirs == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    for (size_t i = 0; i < o->n_config; i++) {
        const char *eq = strchr(o->config[i], '=');
        if (eq == NULL)
            return kiln_err_set(err, KILN_EINVAL, "config entry '%s': expected KEY=VALUE",
                                o->config[i]);
        if (add_config(c, o->config[i], (size_t)(eq - o->config[i]), eq + 1) != KILN_OK)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < man->n_config; i++)
        if (add_config(c, man->config[i].name, strlen(man->config[i].name),
                       man->config[i].value) != KILN_OK)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    for (size_t i = 0; i < nh; i++) {
        const char *h = i < o->n_allowed_hosts ? o->allowed_hosts[i]
                                               : man->allowed_hosts[i - o->n_allowed_hosts];
        if ((c->hosts[c->n_hosts] = kiln_strdup(h)) == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        c->n_hosts++;
    }
    for (size_t i = 0; i < nd; i++) {
        const kiln_wasi_preopen *d = i < man->n_allowed_paths
                                         ? &man->allowed_paths[i]
                                         : &o->dirs[i - man->n_allowed_paths];
        kiln_wasi_preopen *e = &c->dirs[c->n_dirs++];
        e->host_path = kiln_strdup(d->host_path);
        e->guest_path = d->guest_path ? kiln_strdup(d->guest_path) : NULL;
        e->read_only = d->read_only;
        if (e->host_path == NULL || (d->guest_path != NULL && e->guest_path == NULL))
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    if (o->max_memory_bytes > 0)
        c->limits.max_memory_bytes = o->max_memory_bytes;
    else if (man->max_pages >= 0) {
        /* Extism's rule: growth past the initial size (extism.h). */
        c->max_pages_set = true;
        c->max_pages = man->max_pages > UINT32_MAX ? UINT32_MAX : (uint32_t)man->max_pages;
    }
    c->limits.max_stack_bytes = o->max_stack_bytes;
    if (o->timeout_ms > 0)
        c->limits.timeout_ms = o->timeout_ms;
    else if (man->timeout_ms > 0)
        c->limits.timeout_ms = man->timeout_ms > UINT32_MAX ? UINT32_MAX
                                                            : (uint32_t)man->timeout_ms;
    c->max_var_bytes = man->max_var_bytes >= 0 ? (uint64_t)man->max_var_bytes
                                               : XTM_DEFAULT_MAX_VAR_BYTES;
    c->max_http_response_bytes = man->max_http_response_bytes >= 0
                                     ? (uint64_t)man->max_http_response_bytes
                                     : XTM_DEFAULT_MAX_HTTP_RESPONSE;
    c->http_headers = man->http_response_headers;
    c->log_level = -1;
    if (o->log_level != NULL && (c->log_level = xtm_log_level_parse(o->log_level)) < 0)
        return kiln_err_set(err, KILN_EINVAL, "log level '%s': expected trace, debug, info, "
                            "warn, error or off", o->log_level);
    c->log_stderr = o->log_stderr;
    return KILN_OK;
}

int em_base_linker(const ExtismCompiledPlugin *c, kiln_linker **out, kiln_err *err)
{
    size_t nh;
    const kiln_hostfn *fns = c->otoroshi ? kiln_abi_otoroshi.hostfns(&nh) : xtm_hostfns(&nh);
    kiln_linker *l = NULL;
    int rc = kiln_linker_new(&l);
    if (rc == KILN_OK)
        rc = kiln_linker_define_host(l, fns, nh);
    if (rc == KILN_OK && c->wasi) {
        const kiln_hostfn *w = kiln_wasi_hostfns(&nh);
        rc = kiln_linker_define_host(l, w, nh);
    }
    if (rc == KILN_OK && c->otoroshi)
        rc = kiln_host_define(l);
    if (rc == KILN_OK && c->n_fns > 0)
        rc = kiln_linker_define_host(l, c->user_table, c->n_fns);
    if (rc != KILN_OK) {
        kiln_linker_free(l);
        return kiln_err_set(err, rc, "cannot set up the linker: %s", kiln_strerror(rc));
    }
    *out = l;
    return KILN_OK;
}

/* The linker: Extism's host functions (or Otoroshi's superset and Kiln's
 * own module), WASI when asked, then the user's, which shadow any earlier
 * definition of the same name. */
static int link(ExtismCompiledPlugin *c, const ExtismFunction **functions, size_t n,
                kiln_err *err)
{
    c->fns = kiln_calloc(n + 1, sizeof(*c->fns));
    c->user_table = kiln_calloc(n + 1, sizeof(*c->user_table));
    if (c->fns == NULL || c->user_table == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (functions[i] == NULL)
            return kiln_err_set(err, KILN_EINVAL, "Cannot pass null pointer");
        if (functions[i]->fn == NULL)
            return kiln_err_set(err, KILN_EINVAL,
                                "Function cannot be registered with multiple different Plugins");
    }
    /* Take every function only once all are known to be usable: a plugin_new
     * refused here leaves the caller's functions as they were. Once taken
     * they belong to this plugin even if a later step (a missing import)
     * fails it, as Extism's functions are consumed by the first plugin. */
    for (size_t i = 0; i < n; i++) {
        int rc = em_fn_bind(functions[i]->fn, err);
        if (rc != KILN_OK)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        ExtismFunction *h = (ExtismFunction *)functions[i];
        em_fn *f = h->fn;
        h->fn = NULL;
        c->fns[c->n_fns++] = f;
        c->user_table[i] = (kiln_hostfn){f->ns, f->name, f->sig, f->code};
    }
    return em_base_linker(c, &c->linker, err);
}

/* Compile and load one module through the artifact cache. With linked
 * modules the import check comes later (em_link_check): the linker does
 * not know the other modules' exports yet. */
static int load_module(const ExtismCompiledPlugin *c, const uint8_t *bytes, size_t len,
                       const char *name, bool check_imports, kiln_module **out, kiln_err *err)
{
    kiln_aot_options aopts;
    memset(&aopts, 0, sizeof(aopts));
    aopts.opt_level = -1;
    aopts.imports = check_imports ? c->linker : NULL;
    kiln_aot_result res;
    int rc = kiln_aot_compile(bytes, len, name, &aopts, &res, err);
    if (rc == KILN_OK)
        rc = kiln_module_load(res.so_path, name, out, err);
    return rc;
}

/* The manifest's other modules: read, hash-checked, compiled and loaded. */
static int load_deps(ExtismCompiledPlugin *c, const xtm_manifest *man, kiln_err *err)
{
    c->deps = kiln_calloc(man->n_modules, sizeof(*c->deps));
    if (c->deps == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    for (size_t i = 0; i < man->n_modules; i++) {
        const xtm_manifest_module *w = &man->modules[i];
        em_dep *d = &c->deps[c->n_deps];
        if ((d->name = kiln_strdup(w->name)) == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        c->n_deps++;
        uint8_t *owned = NULL;
        const uint8_t *bytes = w->data;
        size_t len = w->len;
        int rc = KILN_OK;
        if (bytes == NULL) {
            rc = read_file(w->path, &owned, &len, err);
            bytes = owned;
        }
        if (rc == KILN_OK && w->hash != NULL)
            rc = xtm_check_hash(bytes, len, w->hash, err);
        if (rc == KILN_OK)
            rc = load_module(c, bytes, len, w->name, false, &d->mod, err);
        kiln_free(owned);
        if (rc != KILN_OK)
            return kiln_err_prefix(err, "module %s: ", w->name);
    }
    return KILN_OK;
}

/* kiln_extism_options.kv_db: the private namespace fn:<name> and "global"
 * read-write, on the SQLite store of that path (shared per path in the
 * process, opened lazily). */
static int open_kv(ExtismCompiledPlugin *c, const char *path, kiln_err *err)
{
    static const kiln_kv_grant_config global = {"global", true};
    kiln_kv_server_config srv;
    memset(&srv, 0, sizeof(srv));
    srv.path = path;
    srv.backend = "sqlite";
    kiln_kv_config fc;
    memset(&fc, 0, sizeof(fc));
    fc.grants = &global;
    fc.n_grants = 1;
    int rc = kiln_kv_grants_new(&srv, c->name, &fc, &c->kv, err);
    return rc == KILN_OK ? KILN_OK : kiln_err_prefix(err, "key-value store %s: ", path);
}

static ExtismCompiledPlugin *compile(const uint8_t *wasm, size_t wasm_size,
                                     const ExtismFunction **functions, size_t n_functions,
                                     bool with_wasi, const kiln_extism_options *opts,
                                     kiln_err *err)
{
    kiln_extism_options none;
    memset(&none, 0, sizeof(none));
    const kiln_extism_options *o = opts ? opts : &none;
    xtm_manifest man;
    memset(&man, 0, sizeof(man));
    man.max_pages = man.max_http_response_bytes = man.max_var_bytes = man.timeout_ms = -1;
    uint8_t *owned = NULL;
    const uint8_t *bytes = wasm;
    size_t len = wasm_size;
    int rc = KILN_OK;
    ExtismCompiledPlugin *c = kiln_calloc(1, sizeof(*c));
    if (c == NULL) {
        kiln_err_set(err, KILN_ENOMEM, "out of memory");
        return NULL;
    }
    c->refs = 1;
    c->wasi = with_wasi;
    c->otoroshi = o->otoroshi;

    if (wasm_size >= 4 && memcmp(wasm, "\0asm", 4) == 0) {
        /* a module */
    } else if (wasm != NULL && looks_like_json(wasm, wasm_size)) {
        rc = xtm_manifest_parse((const char *)wasm, wasm_size, o->base_dir, &man, err);
        if (rc == KILN_OK && o->module != NULL) {
            bytes = o->module;
            len = o->module_len;
        } else if (rc == KILN_OK && man.wasm_data != NULL) {
            bytes = man.wasm_data;
            len = man.wasm_len;
        } else if (rc == KILN_OK) {
            rc = read_file(man.wasm_path, &owned, &len, err);
            bytes = owned;
        }
        if (rc == KILN_OK && man.wasm_hash != NULL)
            rc = xtm_check_hash(bytes, len, man.wasm_hash, err);
    } else if (o->module != NULL && wasm_size == 0) {
        bytes = o->module;
        len = o->module_len;
    } else {
        rc = kiln_err_set(err, KILN_EMODULE, "the data is neither a WebAssembly binary nor an "
                          "Extism manifest (JSON); Kiln does not take the text format");
    }
    const char *name = o->name            ? o->name
                       : man.wasm_path    ? base_name(man.wasm_path)
                       : man.wasm_data    ? "manifest-data.wasm"
                                          : "plugin";
    if (rc == KILN_OK && (c->name = kiln_strdup(name)) == NULL)
        rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
    if (rc == KILN_OK)
        rc = resolve(c, &man, o, err);
    if (rc == KILN_OK && o->kv_db != NULL)
        rc = open_kv(c, o->kv_db, err);
    if (rc == KILN_OK && c->n_dirs > 0 && !with_wasi)
        rc = kiln_err_set(err, KILN_ECONFIG, "directories (allowed_paths) need WASI");
    if (rc == KILN_OK)
        rc = link(c, functions, n_functions, err);
    if (rc == KILN_OK && man.n_modules > 0)
        rc = load_deps(c, &man, err);
    if (rc == KILN_OK)
        rc = load_module(c, bytes, len, c->name, c->n_deps == 0, &c->mod, err);
    if (rc == KILN_OK && c->n_deps > 0)
        rc = em_link_check(c, man.wasm_name, err);
    else if (rc == KILN_OK)
        rc = kiln_instance_pre_new(c->mod, c->linker, &c->pre, err);
    if (rc == KILN_OK)
        c->nonzero_rc_ok = o->otoroshi && kiln_abi_otoroshi.detect(c->mod) > 0;
    kiln_free(owned);
    xtm_manifest_fini(&man);
    if (rc != KILN_OK) {
        em_compiled_release(c);
        return NULL;
    }
    return c;
}

EXTISM_API ExtismCompiledPlugin *kiln_extism_compiled_new(const uint8_t *wasm, ExtismSize wasm_size,
                                                          const ExtismFunction **functions,
                                                          ExtismSize n_functions, bool with_wasi,
                                                          const kiln_extism_options *opts,
                                                          char **errmsg)
{
    kiln_err err;
    memset(&err, 0, sizeof(err));
    if (errmsg != NULL)
        *errmsg = NULL;
    if (functions == NULL)
        n_functions = 0;
    ExtismCompiledPlugin *c = compile(wasm, (size_t)wasm_size, functions, (size_t)n_functions,
                                      with_wasi, opts, &err);
    if (opts != NULL && opts->err != NULL) {
        if (c != NULL)
            memset(&err, 0, sizeof(err));
        *opts->err = err;
    }
    if (c == NULL)
        em_errmsg(errmsg, "Unable to compile Extism plugin: %s",
                  err.msg[0] ? err.msg : kiln_strerror(err.code));
    return c;
}

EXTISM_API ExtismCompiledPlugin *extism_compiled_plugin_new(const uint8_t *wasm,
                                                            ExtismSize wasm_size,
                                                            const ExtismFunction **functions,
                                                            ExtismSize n_functions,
                                                            bool with_wasi, char **errmsg)
{
    return kiln_extism_compiled_new(wasm, wasm_size, functions, n_functions, with_wasi, NULL,
                                    errmsg);
}

EXTISM_API void extism_plugin_new_error_free(char *err)
{
    free(err);
}
