/*
 * em_plugin.c - ExtismPlugin: one plugin instance on a compiled plugin, and
 * its calls. Each plugin has its own xtm_fn (config, vars, a pool of one
 * idle instance), so instance state (globals, linear memory) and vars
 * persist across calls as in Extism. Calls are serialised by the plugin's
 * lock; the output is copied out of Extism memory so it stays readable
 * until the next call. A cancel handle is a kiln_interrupt armed around
 * each call.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "abi/extism/xtm_embed.h"
#include "base/alloc.h"
#include "embed/embed_int.h"

static void free_config(ExtismPlugin *p)
{
    for (size_t i = 0; i < p->n_config; i++) {
        kiln_free((void *)p->config[i].name);
        kiln_free((void *)p->config[i].value);
    }
    kiln_free(p->config);
    p->config = NULL;
    p->n_config = 0;
}

EXTISM_API void extism_plugin_free(ExtismPlugin *p)
{
    if (p == NULL)
        return;
    xtm_fn_free(p->fn);
    free_config(p);
    kiln_interrupt_free(p->cancel);
    pthread_mutex_destroy(&p->lock);
    kiln_free(p->output);
    kiln_free(p->error);
    em_compiled_release(p->c);
    kiln_free(p);
}

EXTISM_API ExtismPlugin *extism_plugin_new_from_compiled(const ExtismCompiledPlugin *compiled,
                                                         char **errmsg)
{
    if (errmsg != NULL)
        *errmsg = NULL;
    if (compiled == NULL) {
        em_errmsg(errmsg, "Unable to create Extism plugin: no compiled plugin");
        return NULL;
    }
    ExtismPlugin *p = kiln_calloc(1, sizeof(*p));
    if (p == NULL) {
        em_errmsg(errmsg, "Unable to create Extism plugin: out of memory");
        return NULL;
    }
    ExtismCompiledPlugin *c = em_compiled_retain(compiled);
    p->c = c;
    pthread_mutex_init(&p->lock, NULL);
    /* The config is the plugin's own: extism_plugin_config edits it. */
    p->config = kiln_calloc(c->n_config + 1, sizeof(*p->config));
    int rc = p->config ? KILN_OK : KILN_ENOMEM;
    for (size_t i = 0; rc == KILN_OK && i < c->n_config; i++) {
        p->config[i].name = kiln_strdup(c->config[i].name);
        p->config[i].value = kiln_strdup(c->config[i].value);
        p->n_config++;
        if (p->config[i].name == NULL || p->config[i].value == NULL)
            rc = KILN_ENOMEM;
    }
    if (rc == KILN_OK)
        rc = kiln_interrupt_new(&p->cancel);
    if (getrandom(p->id, sizeof(p->id), 0) != (ssize_t)sizeof(p->id))
        memset(p->id, 0, sizeof(p->id));
    p->id[6] = (uint8_t)((p->id[6] & 0x0f) | 0x40); /* UUIDv4 */
    p->id[8] = (uint8_t)((p->id[8] & 0x3f) | 0x80);

    xtm_options *o = &p->o;
    o->name = c->name;
    o->config = p->config;
    o->n_config = p->n_config;
    o->allowed_hosts = (const char *const *)c->hosts;
    o->n_allowed_hosts = c->n_hosts;
    o->limits = c->limits;
    o->max_pages_set = c->max_pages_set;
    o->max_pages = c->max_pages;
    o->max_var_bytes = c->max_var_bytes;
    o->max_http_response_bytes = c->max_http_response_bytes;
    o->http_headers = c->http_headers;
    o->log_level = c->log_level >= 0 ? c->log_level : em_log_level();
    if (!c->log_stderr) {
        o->log = em_log_write;
        o->log_user = p;
    }
    o->wasi = c->wasi;
    o->preopens = c->dirs;
    o->n_preopens = c->n_dirs;
    o->reuse = true; /* one instance, kept across calls */
    o->nonzero_rc_ok = c->nonzero_rc_ok;
    if (c->n_deps > 0) {
        o->link_instantiate = em_link_instantiate;
        o->link_free = em_link_free;
        o->link_user = c;
    }
    p->host_state[KILN_STATE_USER] = p;
    p->host_state[KILN_STATE_KV] = c->kv;
    o->host_state = p->host_state;
    kiln_err err;
    if (rc == KILN_OK)
        rc = xtm_fn_new(o, &p->fn, &err);
    if (rc != KILN_OK) {
        em_errmsg(errmsg, "Unable to create Extism plugin: %s", kiln_strerror(rc));
        extism_plugin_free(p);
        return NULL;
    }
    return p;
}

EXTISM_API ExtismPlugin *extism_plugin_new(const uint8_t *wasm, ExtismSize wasm_size,
                                           const ExtismFunction **functions,
                                           ExtismSize n_functions, bool with_wasi, char **errmsg)
{
    ExtismCompiledPlugin *c =
        extism_compiled_plugin_new(wasm, wasm_size, functions, n_functions, with_wasi, errmsg);
    if (c == NULL)
        return NULL;
    ExtismPlugin *p = extism_plugin_new_from_compiled(c, errmsg);
    em_compiled_release(c);
    return p;
}

EXTISM_API ExtismPlugin *extism_plugin_new_with_fuel_limit(const uint8_t *wasm,
                                                           ExtismSize wasm_size,
                                                           const ExtismFunction **functions,
                                                           ExtismSize n_functions, bool with_wasi,
                                                           uint64_t fuel_limit, char **errmsg)
{
    (void)wasm, (void)wasm_size, (void)functions, (void)n_functions, (void)with_wasi;
    (void)fuel_limit;
    em_errmsg(errmsg, "Unable to compile Extism plugin: fuel limits are not supported by Kiln "
                      "(compiled code is not instrumented); use the manifest's timeout_ms");
    return NULL;
}

EXTISM_API const uint8_t *extism_plugin_id(ExtismPlugin *p)
{
    return p ? p->id : NULL;
}

EXTISM_API void extism_plugin_allow_http_response_headers(ExtismPlugin *p)
{
    if (p == NULL)
        return;
    /* Takes effect for the next instance: drop the idle one. */
    pthread_mutex_lock(&p->lock);
    if (!p->o.http_headers) {
        p->o.http_headers = true;
        xtm_fn *nf;
        kiln_err err;
        if (xtm_fn_new(&p->o, &nf, &err) == KILN_OK) {
            xtm_fn_free(p->fn);
            p->fn = nf;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

/* ---- calls -------------------------------------------------------------------------- */

static int keep_output(void *arg, const uint8_t *out, size_t len, int32_t rc32, kiln_err *err)
{
    ExtismPlugin *p = arg;
    (void)rc32;
    if (len == 0)
        return KILN_OK;
    p->output = kiln_malloc(len);
    if (p->output == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory copying the %zu-byte output", len);
    memcpy(p->output, out, len);
    p->output_len = len;
    return KILN_OK;
}

static void set_error(ExtismPlugin *p, const char *msg)
{
    kiln_free(p->error);
    p->error = kiln_strdup(msg);
}

/* The message Extism's runtime gives for a failed call: the plugin's own
 * error text (or the non-zero return code), without Kiln's "<name>:
 * <function> returned N: " prefix, which kiln_extism_plugin_status keeps. */
static const char *extism_text(const ExtismPlugin *p, const char *fname, const char *msg)
{
    size_t nl = strlen(p->c->name), fl = strlen(fname);
    if (strncmp(msg, p->c->name, nl) != 0 || strncmp(msg + nl, ": ", 2) != 0)
        return msg;
    const char *s = msg + nl + 2;
    if (strncmp(s, fname, fl) == 0 && strncmp(s + fl, " returned ", 10) == 0) {
        const char *colon = strstr(s + fl + 10, ": ");
        if (colon != NULL)
            return colon + 2;
    }
    return s;
}

EXTISM_API int32_t extism_plugin_call_with_host_context(ExtismPlugin *p, const char *func_name,
                                                        const uint8_t *data, ExtismSize data_len,
                                                        void *host_context)
{
    if (p == NULL)
        return -1;
    pthread_mutex_lock(&p->lock);
    kiln_free(p->output);
    p->output = NULL;
    p->output_len = 0;
    kiln_free(p->error);
    p->error = NULL;
    memset(&p->last, 0, sizeof(p->last));
    int32_t result = 0;
    if (func_name == NULL) {
        p->last_rc = kiln_err_set(&p->last, KILN_EINVAL, "no function name given");
        set_error(p, p->last.msg);
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    p->host_context = host_context;
    kiln_interrupt_arm(p->cancel);
    int rc = xtm_run(p->fn, p->c->pre, func_name, data, (size_t)data_len, keep_output, p,
                     &p->last);
    kiln_interrupt_disarm(p->cancel);
    p->host_context = NULL;
    if (rc != KILN_OK && kiln_interrupt_fired_get(p->cancel)) {
        kiln_err_set(&p->last, KILN_ECANCELED, "%s: %s: plugin cancelled", p->c->name,
                     func_name);
        rc = KILN_ECANCELED;
    }
    p->last_rc = rc;
    if (rc != KILN_OK) {
        const char *m = p->last.msg[0] ? p->last.msg : kiln_strerror(rc);
        set_error(p, extism_text(p, func_name, m));
        /* The guest's return code when it returned one, else -1. */
        const char *r = strstr(m, " returned ");
        result = -1;
        if (rc == KILN_EGUEST && r != NULL && p->last.trap == 0)
            result = (int32_t)strtol(r + 10, NULL, 10);
        if (result == 0)
            result = -1; /* an error with rc 0 still fails the call */
    }
    pthread_mutex_unlock(&p->lock);
    return result;
}

EXTISM_API int32_t extism_plugin_call(ExtismPlugin *p, const char *func_name, const uint8_t *data,
                                      ExtismSize data_len)
{
    return extism_plugin_call_with_host_context(p, func_name, data, data_len, NULL);
}

EXTISM_API const char *extism_plugin_error(ExtismPlugin *p)
{
    return p != NULL ? p->error : NULL;
}

EXTISM_API const char *extism_error(ExtismPlugin *p)
{
    return extism_plugin_error(p);
}

EXTISM_API ExtismSize extism_plugin_output_length(ExtismPlugin *p)
{
    return p != NULL ? p->output_len : 0;
}

EXTISM_API const uint8_t *extism_plugin_output_data(ExtismPlugin *p)
{
    static const uint8_t empty[1];
    if (p == NULL)
        return NULL;
    return p->output != NULL ? p->output : empty;
}

EXTISM_API bool extism_plugin_function_exists(ExtismPlugin *p, const char *func_name)
{
    if (p == NULL || func_name == NULL)
        return false;
    return kiln_module_find_export(p->c->mod, func_name, KILN_EXTERN_FUNC) >= 0;
}

EXTISM_API const ExtismCancelHandle *extism_plugin_cancel_handle(const ExtismPlugin *p)
{
    return p != NULL ? (const ExtismCancelHandle *)p->cancel : NULL;
}

EXTISM_API bool extism_plugin_cancel(const ExtismCancelHandle *h)
{
    /* Extism answers whether the request was sent; Kiln also answers true
     * when no call is running (nothing to stop is not a failure). */
    if (h == NULL)
        return false;
    kiln_interrupt_fire((kiln_interrupt *)h);
    return true;
}

EXTISM_API bool extism_plugin_reset(ExtismPlugin *p)
{
    if (p == NULL)
        return false;
    /* Extism memory is already emptied at the start of every call; what a
     * host can still see of the last one is its output and error. */
    pthread_mutex_lock(&p->lock);
    kiln_free(p->output);
    p->output = NULL;
    p->output_len = 0;
    kiln_free(p->error);
    p->error = NULL;
    pthread_mutex_unlock(&p->lock);
    return true;
}

/* ---- config -------------------------------------------------------------------------- */

EXTISM_API bool extism_plugin_config(ExtismPlugin *p, const uint8_t *json, ExtismSize json_size)
{
    if (p == NULL || json == NULL)
        return false;
    json_error_t je;
    json_t *root = json_loadb((const char *)json, (size_t)json_size, 0, &je);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (!json_is_string(v) && !json_is_null(v)) {
            json_decref(root);
            return false;
        }
    }
    /* Build the merged config aside, then swap it in under the lock. */
    size_t cap = p->n_config + json_object_size(root) + 1, n = 0;
    kiln_kv *nc = kiln_calloc(cap, sizeof(*nc));
    bool ok = nc != NULL;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; ok && i < p->n_config; i++) {
        if (json_object_get(root, p->config[i].name) != NULL)
            continue; /* replaced or removed below */
        nc[n].name = kiln_strdup(p->config[i].name);
        nc[n].value = kiln_strdup(p->config[i].value);
        ok = nc[n].name != NULL && nc[n].value != NULL;
        n++;
    }
    json_object_foreach(root, k, v) {
        if (!ok || json_is_null(v))
            continue;
        nc[n].name = kiln_strdup(k);
        nc[n].value = kiln_strdup(json_string_value(v));
        ok = nc[n].name != NULL && nc[n].value != NULL;
        n++;
    }
    if (ok) {
        free_config(p);
        p->config = nc;
        p->n_config = n;
        xtm_fn_set_config(p->fn, nc, n);
        p->o.config = nc;
        p->o.n_config = n;
        kiln_free(p->error);
        p->error = NULL;
    } else if (nc != NULL) {
        for (size_t i = 0; i < n; i++) {
            kiln_free((void *)nc[i].name);
            kiln_free((void *)nc[i].value);
        }
        kiln_free(nc);
    }
    pthread_mutex_unlock(&p->lock);
    json_decref(root);
    return ok;
}

/* ---- Kiln's additions (extism_kiln.h) --------------------------------------------------- */

EXTISM_API int kiln_extism_plugin_status(ExtismPlugin *p, kiln_err *err)
{
    if (p == NULL)
        return KILN_EINVAL;
    if (err != NULL)
        *err = p->last;
    return p->last_rc;
}

EXTISM_API bool kiln_extism_plugin_var_set(ExtismPlugin *p, const char *key, const uint8_t *value,
                                           size_t len)
{
    if (p == NULL || key == NULL)
        return false;
    return xtm_fn_var_set(p->fn, (const uint8_t *)key, strlen(key), value, len) == KILN_OK;
}

EXTISM_API uint8_t *kiln_extism_plugin_var_get(ExtismPlugin *p, const char *key, size_t *len)
{
    uint8_t *v = NULL;
    size_t n = 0;
    if (p != NULL && key != NULL)
        xtm_fn_var_get(p->fn, (const uint8_t *)key, strlen(key), &v, &n);
    if (len != NULL)
        *len = n;
    if (v == NULL)
        return NULL;
    /* The caller frees with free(): hand over a malloc'd copy. */
    uint8_t *out = malloc(n ? n : 1);
    if (out != NULL)
        memcpy(out, v, n);
    kiln_free(v);
    return out;
}

struct var_visit {
    kiln_extism_var_fn fn;
    void *user;
};

static void visit_var(void *user, const uint8_t *key, size_t klen, const uint8_t *val,
                      size_t vlen)
{
    struct var_visit *v = user;
    v->fn(v->user, (const char *)key, klen, val, vlen);
}

EXTISM_API void kiln_extism_plugin_vars_each(ExtismPlugin *p, kiln_extism_var_fn fn, void *user)
{
    if (p == NULL || fn == NULL)
        return;
    struct var_visit v = {fn, user};
    xtm_fn_var_each(p->fn, visit_var, &v);
}
