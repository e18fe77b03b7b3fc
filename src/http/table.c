/*
 * table.c - build a route table from a configuration: compile every module
 * (in parallel, through the artifact cache), pick each module's ABI, link it
 * against WASI plus the ABI's host functions, prepare its functions and add
 * the routes. Never names an ABI: it asks the registry (handler.h).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/alloc.h"
#include "http/http_int.h"
#include "kiln/aot.h"
#include "kiln/wasi.h"
#include "net/net.h"

#define MAX_COMPILE_THREADS 8

void http_table_retain(http_table *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

static void fn_free(http_fn *f)
{
    if (f == NULL)
        return;
    if (f->prepared && f->abi != NULL && f->abi->release != NULL)
        f->abi->release(f->state);
    kiln_instance_pre_free(f->pre);
    kiln_kv_grants_free(f->kv);
    kiln_free(f->owned_name);
    kiln_free(f->owned_export);
    kiln_free(f->strip);
    kiln_free(f);
}

static void route_free(http_route *r)
{
    if (r == NULL)
        return;
    kiln_free(r->plugins);
    kiln_free(r->pattern);
    kiln_free(r);
}

static void table_free(http_table *t)
{
    for (size_t i = 0; i < t->n_fns; i++)
        fn_free(t->fns[i]);
    kiln_free(t->fns);
    for (size_t i = 0; i < t->n_routes; i++)
        route_free(t->routes[i]);
    kiln_free(t->routes);
    kiln_free(t->sinks);
    for (size_t i = 0; i < t->n_mods; i++) {
        if (t->mods[i].loaded != NULL && !t->mods[i].loaded_kept &&
            t->mods[i].abi->release != NULL)
            t->mods[i].abi->release(t->mods[i].loaded);
        if (t->mods[i].mod != NULL)
            kiln_module_release(t->mods[i].mod);
        if (t->mods[i].linker != NULL)
            kiln_linker_free(t->mods[i].linker);
    }
    kiln_free(t->mods);
    http_router_free(t->router);
    for (size_t i = 0; i < t->n_lines; i++)
        kiln_free(t->lines[i]);
    kiln_free(t->lines);
    cfg_free(t->cfg);
    for (size_t i = 0; i < t->n_kept; i++)
        http_table_release(t->kept[i]);
    kiln_free(t->kept);
    kiln_free(t);
}

void http_table_release(http_table *t)
{
    if (t != NULL && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        table_free(t);
}

static void owner_retain(void *t)
{
    http_table_retain(t);
}

static void owner_release(void *t)
{
    http_table_release(t);
}

void http_table_retire(http_table *t)
{
    for (size_t i = 0; t != NULL && i < t->n_fns; i++) {
        http_fn *f = t->fns[i];
        if (f->prepared && f->abi != NULL && f->abi->retire != NULL)
            f->abi->retire(f->state);
    }
}

static int make_linker(const kiln_abi_ops *abi, kiln_linker **out)
{
    size_t nw, na = 0;
    const kiln_hostfn *w = kiln_wasi_hostfns(&nw);
    const kiln_hostfn *a = abi->hostfns ? abi->hostfns(&na) : NULL;
    int rc = kiln_linker_new(out);
    if (rc == KILN_OK)
        rc = kiln_linker_define_host(*out, w, nw);
    /* Kiln's own host module, whatever the ABI. */
    if (rc == KILN_OK)
        rc = kiln_host_define(*out);
    /* The ABI's table is added last: later definitions shadow earlier ones. */
    if (rc == KILN_OK && a != NULL && na > 0)
        rc = kiln_linker_define_host(*out, a, na);
    return rc;
}

static void mod_unavailable(http_mod *m, int rc, const char *reason, const char *detail)
{
    m->status = rc;
    snprintf(m->reason, sizeof(m->reason), "%s", reason);
    http_log("kiln serve: function '%s' is unavailable (its routes answer 503): %s", m->cf->fn.name,
             detail);
}

/* sha256 of a file, as hex into out[65]; "" when it cannot be read. */
static void file_sha256(const char *path, char out[65])
{
    out[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char buf[65536], md[32];
    unsigned int mdlen = 0;
    bool ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        ok = EVP_DigestUpdate(c, buf, n) == 1;
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(c);
    fclose(f);
    for (unsigned i = 0; ok && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The loader switch: a module that is not a core module (its first bytes
 * claimed by an ABI, handler.h "claims"/"load") is loaded by that ABI, which
 * compiles what it embeds itself. Tiers as for core modules (load_mod) when
 * the ABI has load_best/compile: the best tier cached for everything the
 * module embeds, 503 "compiling" while none is, the missing tiers compiled
 * in the background (the ABI's compile) and swapped in by the rebuild that
 * follows; an ABI without them is loaded at the optimised tier before the
 * function serves. True when `m` was such a module (loaded or not). */
static bool load_by_abi(http_mod *m, const http_options *o, http_bg *bg)
{
    const kiln_function *fn = &m->cf->fn;
    uint8_t head[8];
    size_t n = 0;
    FILE *f = fopen(fn->module_path, "rb");
    if (f != NULL) {
        n = fread(head, 1, sizeof(head), f);
        fclose(f);
    }
    const kiln_abi_ops *abi = kiln_abi_claim(head, n);
    if (abi == NULL)
        return false;
    m->abi = abi;
    kiln_aot_options ao = o->aot;
    ao.imports = NULL;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    int rc;
    if (bg != NULL && abi->load_best != NULL && abi->compile != NULL) {
        kiln_aot_tier tier = KILN_AOT_TIER_CONFIGURED;
        rc = abi->load_best(fn, &ao, &m->loaded, &tier, &err);
        if (rc == KILN_ENOENT) {
            m->loaded = NULL;
            m->status = HTTP_MOD_COMPILING;
            snprintf(m->reason, sizeof(m->reason), "it is being compiled");
            http_bg_submit(bg, fn->name, fn->module_path, m->hash, abi, &ao, KILN_AOT_TIER_FAST);
            http_bg_submit(bg, fn->name, fn->module_path, m->hash, abi, &ao,
                           KILN_AOT_TIER_OPTIMIZED);
            return true;
        }
        if (rc == KILN_OK) {
            snprintf(m->tier, sizeof(m->tier), "%s", kiln_aot_tier_name(tier));
            if (tier == KILN_AOT_TIER_FAST)
                http_bg_submit(bg, fn->name, fn->module_path, m->hash, abi, &ao,
                               KILN_AOT_TIER_OPTIMIZED);
        }
    } else {
        if (bg != NULL) {
            ao.tier = KILN_AOT_TIER_OPTIMIZED;
            snprintf(m->tier, sizeof(m->tier), "%s", kiln_aot_tier_name(KILN_AOT_TIER_OPTIMIZED));
        } else {
            snprintf(m->tier, sizeof(m->tier), "O%d", o->aot.opt_level < 0 ? 2 : o->aot.opt_level);
        }
        rc = abi->load(fn, &ao, &m->loaded, &err);
    }
    if (rc != KILN_OK) {
        m->loaded = NULL;
        mod_unavailable(m, rc,
                        rc == KILN_EIMPORT   ? "the module imports functions Kiln does not provide"
                        : rc == KILN_ECONFIG ? "its configuration does not fit the module"
                                             : "the module cannot be served by its ABI",
                        err.msg);
        snprintf(m->detail, sizeof(m->detail), "%.*s", (int)sizeof(m->detail) - 1, err.msg);
    }
    return true;
}

/* Compile (or find in the cache), load, pick the ABI and link. Runs on a
 * compile thread; touches only `m`. */
static void load_mod(http_mod *m, const http_options *o, http_bg *bg)
{
    file_sha256(m->cf->fn.module_path, m->hash);
    if (load_by_abi(m, o, bg))
        return;
    if (bg == NULL)
        snprintf(m->tier, sizeof(m->tier), "O%d", o->aot.opt_level < 0 ? 2 : o->aot.opt_level);
    const kiln_function *fn = &m->cf->fn;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    char detail[sizeof(err.msg) + 200];
    if (fn->abi != NULL) {
        m->abi = kiln_abi_find(fn->abi);
        if (m->abi == NULL) {
            snprintf(detail, sizeof(detail), "the '%s' ABI is not part of this build", fn->abi);
            mod_unavailable(m, KILN_EUNSUPPORTED, "its ABI is not available", detail);
            return;
        }
        if (make_linker(m->abi, &m->linker) != KILN_OK) {
            mod_unavailable(m, KILN_ENOMEM, "out of memory", "out of memory");
            return;
        }
    }
    /* With a known ABI every import is checked before the compiler runs;
     * otherwise the ABI is detected from the loaded module and the imports
     * are checked when the module is linked below. */
    kiln_aot_options ao = o->aot;
    ao.imports = m->linker;
    int rc;
    if (bg != NULL) {
        /* Tiers: serve the best cached artifact now; compile what is missing
         * in the background (fast tier first), 503 "compiling" meanwhile. */
        kiln_aot_tier tier = KILN_AOT_TIER_CONFIGURED;
        rc = kiln_aot_load_best(fn->module_path, &ao, &m->mod, &tier, &err);
        if (rc == KILN_ENOENT) {
            m->status = HTTP_MOD_COMPILING;
            snprintf(m->reason, sizeof(m->reason), "it is being compiled");
            http_bg_submit(bg, fn->name, fn->module_path, m->hash, NULL, &ao, KILN_AOT_TIER_FAST);
            http_bg_submit(bg, fn->name, fn->module_path, m->hash, NULL, &ao,
                           KILN_AOT_TIER_OPTIMIZED);
            return;
        }
        if (rc == KILN_OK) {
            snprintf(m->tier, sizeof(m->tier), "%s", kiln_aot_tier_name(tier));
            if (tier == KILN_AOT_TIER_FAST)
                http_bg_submit(bg, fn->name, fn->module_path, m->hash, NULL, &ao,
                               KILN_AOT_TIER_OPTIMIZED);
        }
    } else {
        rc = kiln_aot_load_file(fn->module_path, &ao, &m->mod, &err);
    }
    if (rc != KILN_OK) {
        snprintf(detail, sizeof(detail), "%s: %s", fn->module_path, err.msg);
        mod_unavailable(m, rc, rc == KILN_EIMPORT ? "the module imports functions its ABI does not provide"
                                                  : "the module failed to compile",
                        detail);
        return;
    }
    if (m->abi == NULL) {
        m->abi = kiln_abi_detect(m->mod);
        if (m->abi == NULL) {
            snprintf(detail, sizeof(detail),
                     "%s: no handler ABI recognises the module (a WASI command exporting "
                     "_start, or an Extism/Otoroshi plugin); set 'abi' in the configuration",
                     fn->module_path);
            mod_unavailable(m, KILN_EMODULE, "the module matches no handler ABI", detail);
            return;
        }
        if (make_linker(m->abi, &m->linker) != KILN_OK)
            mod_unavailable(m, KILN_ENOMEM, "out of memory", "out of memory");
    }
}

typedef struct compile_pool {
    http_table *t;
    const http_options *o;
    http_bg *bg;
    atomic_size_t next;
} compile_pool;

static void *compile_worker(void *p)
{
    compile_pool *cp = p;
    for (;;) {
        size_t i = atomic_fetch_add(&cp->next, 1);
        if (i >= cp->t->n_mods)
            break;
        load_mod(&cp->t->mods[i], cp->o, cp->bg);
    }
    return NULL;
}

static void compile_all(http_table *t, const http_options *o, http_bg *bg)
{
    compile_pool cp = {.t = t, .o = o, .bg = bg};
    atomic_init(&cp.next, 0);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = ncpu > 0 ? (size_t)ncpu : 1;
    if (n > MAX_COMPILE_THREADS)
        n = MAX_COMPILE_THREADS;
    if (n > t->n_mods)
        n = t->n_mods;
    pthread_t th[MAX_COMPILE_THREADS];
    size_t started = 0;
    for (size_t i = 1; i < n; i++) {
        if (pthread_create(&th[started], NULL, compile_worker, &cp) != 0)
            break;
        started++;
    }
    compile_worker(&cp);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
}

static int push_fn(http_table *t, http_fn *f)
{
    if (t->n_fns == t->cap_fns) {
        size_t cap = t->cap_fns ? t->cap_fns * 2 : 16;
        http_fn **a = kiln_realloc(t->fns, cap * sizeof(*a));
        if (a == NULL)
            return KILN_ENOMEM;
        t->fns = a;
        t->cap_fns = cap;
    }
    t->fns[t->n_fns++] = f;
    return KILN_OK;
}

/*
 * Make the function serving `m` (with `export_name` when not NULL). Returns
 * KILN_OK with *out set (possibly an unavailable function that answers 503),
 * KILN_ECONFIG when the ABI refuses the configuration, or KILN_ENOMEM. With
 * `probe`, an ABI refusal is not logged and *out is NULL.
 */
/* `plugin` (may be NULL): the function is a plugin of that kind, run through
 * `abi` with export `export_name` (NULL = the function's own); its name stays
 * the function's. */
typedef struct plugin_use {
    const kiln_abi_ops *abi;
    const char *export_name;
} plugin_use;

static int make_fn(http_table *t, http_mod *m, const char *export_name, bool probe,
                   const plugin_use *plugin, http_fn **out, kiln_err *err)
{
    *out = NULL;
    http_fn *f = kiln_calloc(1, sizeof(*f));
    if (f == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    f->fn = m->cf->fn;
    f->mod = m;
    f->abi = m->abi;
    f->max_body_bytes = m->cf->max_body_bytes ? m->cf->max_body_bytes : t->server.max_body_bytes;
    if (plugin != NULL) {
        f->abi = plugin->abi;
        if (plugin->export_name != NULL) {
            if ((f->owned_export = kiln_strdup(plugin->export_name)) == NULL) {
                fn_free(f);
                return kiln_err_set(err, KILN_ENOMEM, "out of memory");
            }
            f->fn.export_name = f->owned_export;
        }
    } else if (export_name != NULL) {
        size_t n = strlen(m->cf->fn.name) + strlen(export_name) + 2;
        f->owned_export = kiln_strdup(export_name);
        f->owned_name = kiln_malloc(n);
        if (f->owned_export == NULL || f->owned_name == NULL) {
            fn_free(f);
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        }
        snprintf(f->owned_name, n, "%s/%s", m->cf->fn.name, export_name);
        f->fn.name = f->owned_name;
        f->fn.export_name = f->owned_export;
    }
    if (m->status != KILN_OK) {
        f->status = m->status;
        f->reason = m->reason;
        *out = f;
        return KILN_OK;
    }
    kiln_err e;
    memset(&e, 0, sizeof(e));
    /* Host contexts every instance gets: the key-value grants (the private
     * namespace is the configured function's, shared by all its exports)
     * and the "kiln" module's config and log. */
    int rc = kiln_kv_grants_new(&t->cfg->kv, m->cf->fn.name, m->cf->fn.kv, &f->kv, &e);
    if (rc != KILN_OK) {
        fn_free(f);
        if (rc == KILN_ENOMEM)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        return kiln_err_set(err, KILN_ECONFIG, "%s:%d: %s", t->cfg->source, m->cf->line, e.msg);
    }
    f->host.fn_name = f->fn.name;
    f->host.config = f->fn.config;
    f->host.n_config = f->fn.n_config;
    f->host.log_level = 2; /* info */
    f->fn.host_state[KILN_STATE_KV] = f->kv;
    f->fn.host_state[KILN_STATE_HOST] = &f->host;
    f->fn.owner = t;
    f->fn.owner_retain = owner_retain;
    f->fn.owner_release = owner_release;
    if (m->loaded != NULL) {
        /* Loaded by its ABI (load_by_abi): no core module, no pre; the
         * state is the module's (released with the table). */
        f->state = m->loaded;
    } else {
        rc = kiln_instance_pre_new(m->mod, m->linker, &f->pre, &e);
        if (rc == KILN_OK) {
            rc = f->abi->prepare(&f->fn, m->mod, &f->state, &e);
            f->prepared = rc == KILN_OK;
        }
    }
    bool snap_failed = false;
    if (rc == KILN_OK && f->fn.snapshot) {
        /* Deploy time: the image every request starts from (snapshot.md). */
        if (f->abi->snapshot == NULL) {
            rc = kiln_err_set(&e, KILN_ECONFIG, "function '%s': 'snapshot' is not supported by "
                              "the %s ABI yet; remove it", f->fn.name, f->abi->name);
        } else {
            e.msg[0] = '\0';
            f->fn.module_id = m->hash[0] ? m->hash : NULL;
            rc = f->abi->snapshot(&f->fn, f->state, f->pre, &e);
            snap_failed = rc != KILN_OK;
            if (rc == KILN_OK && e.msg[0] != '\0' && !probe)
                http_log("kiln serve: function '%s': %s", f->fn.name, e.msg);
            /* The ABI's note says where the image came from (extism.c). */
            if (rc == KILN_OK)
                snprintf(m->snapshot, sizeof(m->snapshot), "%s",
                         strstr(e.msg, "image loaded from") ? "loaded"
                         : strstr(e.msg, "saved to")        ? "built"
                                                            : "memory");
        }
    }
    if (rc != KILN_OK && probe) {
        fn_free(f);
        return KILN_OK;
    }
    if (rc == KILN_ECONFIG) {
        kiln_err_set(err, KILN_ECONFIG, "%s:%d: %s", t->cfg->source, m->cf->line, e.msg);
        fn_free(f);
        return KILN_ECONFIG;
    }
    if (rc == KILN_ENOMEM) {
        fn_free(f);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    if (rc != KILN_OK) {
        f->status = rc;
        f->reason = snap_failed ? "its snapshot initialisation failed"
                    : rc == KILN_EIMPORT ? "the module imports functions its ABI does not provide"
                                         : "the module cannot be served by its ABI";
        http_log("kiln serve: function '%s' is unavailable (its routes answer 503): %s",
                 f->fn.name, e.msg);
    }
    *out = f;
    return KILN_OK;
}

static int add_line(http_table *t, const char *methods, const char *host, const char *path,
                    const http_fn *f)
{
    char line[600];
    snprintf(line, sizeof(line), "kiln serve: route %s %s%s -> %s (%s)%s", methods,
             host ? host : "", path, f->fn.name,
             f->upstream ? "upstream" : f->abi ? f->abi->name : "unknown ABI",
             f->status == KILN_OK ? "" : " unavailable: 503");
    char **l = kiln_realloc(t->lines, (t->n_lines + 1) * sizeof(*l));
    if (l == NULL)
        return KILN_ENOMEM;
    t->lines = l;
    if ((l[t->n_lines] = kiln_strdup(line)) == NULL)
        return KILN_ENOMEM;
    t->n_lines++;
    return KILN_OK;
}

static int push_route(http_table *t, http_route *r)
{
    if (t->n_routes == t->cap_routes) {
        size_t cap = t->cap_routes ? t->cap_routes * 2 : 16;
        http_route **a = kiln_realloc(t->routes, cap * sizeof(*a));
        if (a == NULL)
            return KILN_ENOMEM;
        t->routes = a;
        t->cap_routes = cap;
    }
    t->routes[t->n_routes++] = r;
    return KILN_OK;
}

/* A route target for backend `f` (no plugins yet), owned by the table. */
static http_route *new_route(http_table *t, http_fn *f, const char *pattern, const char *host)
{
    http_route *r = kiln_calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    if ((r->pattern = kiln_strdup(pattern)) == NULL || push_route(t, r) != KILN_OK) {
        route_free(r);
        return NULL;
    }
    r->backend = f;
    r->info.route = r->pattern;
    r->info.route_host = host; /* host strings live in the configuration */
    r->info.backend = f->upstream ? f->upstream : f->fn.name;
    r->info.sink_status = 404;
    r->task_limits = f->fn.limits;
    return r;
}

static int add_host_route(http_table *t, const char *host, const char *path, http_fn *f,
                          kiln_err *err)
{
    http_route *rt = new_route(t, f, path, NULL);
    if (rt == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    int rc = http_router_add(t->router, path, host, NULL, 0, rt, err);
    if (rc == KILN_OK)
        rc = add_line(t, "*", host, path, f);
    return rc;
}

static int add_route(http_table *t, const char *path, http_fn *f, kiln_err *err)
{
    return add_host_route(t, NULL, path, f, err);
}

/* A plugin export name that can be a URL segment as is. */
static bool segment_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == ':' || (n == 1 && s[0] == '*') || (n == 3 && memcmp(s, "...", 3) == 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

/*
 * Directory mode. The ABI decides what a module can serve: every exported
 * `() -> i32` function (not starting with '_') that the ABI accepts as an
 * entry point becomes /<name>/<export>; a module without such exports is
 * served whole (a WASI command) at /<name> and below.
 */
/*
 * Directory functions: /NAME and /NAME/... for a command, /NAME/EXPORT per
 * plugin export; and, as drop-in servers do, by host: NAME.DOMAIN (every
 * path for a command, /EXPORT for a plugin) when the server has a domain.
 */
static int auto_routes(http_table *t, http_mod *m, const char *domain, kiln_err *err)
{
    const char *name = m->cf->fn.name;
    char path[1200], hostbuf[600];
    const char *host = NULL;
    if (domain != NULL && domain[0] != '\0') {
        snprintf(hostbuf, sizeof(hostbuf), "%s.%s", name, domain);
        host = hostbuf;
    }
    http_fn *f;
    int rc;
    size_t found = 0;
    if (m->status == KILN_OK && m->mod != NULL) {
        uint32_t n = kiln_module_export_count(m->mod);
        for (uint32_t i = 0; i < n; i++) {
            kiln_extern_info ex;
            kiln_module_export(m->mod, i, &ex);
            if (ex.kind != KILN_EXTERN_FUNC || strcmp(ex.type, ">i") != 0 || ex.name_len == 0 ||
                ex.name[0] == '_')
                continue;
            if (!segment_ok(ex.name, ex.name_len)) {
                http_log("kiln serve: %s: export '%.*s' is not served: its name is not a plain "
                         "URL segment",
                         name, (int)(ex.name_len > 100 ? 100 : ex.name_len), ex.name);
                continue;
            }
            if ((rc = make_fn(t, m, ex.name, true, NULL, &f, err)) != KILN_OK)
                return rc;
            if (f == NULL)
                continue;
            if ((rc = push_fn(t, f)) != KILN_OK) {
                fn_free(f);
                return kiln_err_set(err, rc, "out of memory");
            }
            snprintf(path, sizeof(path), "/%s/%s", name, ex.name);
            if ((rc = add_route(t, path, f, err)) != KILN_OK)
                return rc;
            if (host != NULL) {
                snprintf(path, sizeof(path), "/%s", ex.name);
                if ((rc = add_host_route(t, host, path, f, err)) != KILN_OK)
                    return rc;
            }
            found++;
        }
    }
    if (found > 0)
        return KILN_OK;
    if ((rc = make_fn(t, m, NULL, false, NULL, &f, err)) != KILN_OK)
        return rc;
    if ((rc = push_fn(t, f)) != KILN_OK) {
        fn_free(f);
        return kiln_err_set(err, rc, "out of memory");
    }
    snprintf(path, sizeof(path), "/%s", name);
    if ((rc = add_route(t, path, f, err)) != KILN_OK)
        return rc;
    snprintf(path, sizeof(path), "/%s/*", name);
    if ((rc = add_route(t, path, f, err)) != KILN_OK)
        return rc;
    if (host != NULL)
        rc = add_host_route(t, host, "/*", f, err); /* "/" and everything below */
    return rc;
}

/*
 * The target of a route to an upstream service: no module, the route's
 * timeout as its time limit (which the time-limit breaker watches too), the
 * server's body limit, and responses of up to 64 MiB.
 */
static int upstream_fn(http_table *t, const cfg_route *r, http_fn **out, kiln_err *err)
{
    net_url u;
    kiln_err e;
    memset(&e, 0, sizeof(e));
    if (net_url_parse(r->upstream, &u, &e) != KILN_OK)
        return kiln_err_set(err, KILN_ECONFIG, "%s:%d: route '%s': upstream '%s': %s",
                            t->cfg->source, r->line, r->path, r->upstream, e.msg);
    http_fn *f = kiln_calloc(1, sizeof(*f));
    size_t n = strlen(r->upstream) + 16;
    char *name = kiln_malloc(n);
    if (f == NULL || name == NULL) {
        kiln_free(f);
        kiln_free(name);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    snprintf(name, n, "upstream %s", r->upstream);
    /* A prefix route ("/api/..." or its "*" form) forwards what follows its
     * prefix: /api/search -> BASE/search, as gateways strip the matched path. */
    size_t pl = strlen(r->path);
    size_t cut = pl >= 4 && strcmp(r->path + pl - 4, "/...") == 0   ? pl - 4
                 : pl >= 2 && strcmp(r->path + pl - 2, "/*") == 0 ? pl - 2
                                                                     : 0;
    if (cut > 0 && (f->strip = kiln_strndup(r->path, cut)) == NULL) {
        kiln_free(f);
        kiln_free(name);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    f->owned_name = name;
    f->fn.name = name;
    f->upstream = r->upstream;
    f->fn.limits.timeout_ms = r->upstream_timeout_ms;
    f->fn.max_output_bytes = HTTP_UPSTREAM_MAX_RESPONSE;
    f->max_body_bytes = t->server.max_body_bytes;
    f->status = KILN_OK;
    int rc = push_fn(t, f);
    if (rc != KILN_OK) {
        fn_free(f);
        return kiln_err_set(err, rc, "out of memory");
    }
    *out = f;
    return KILN_OK;
}

/* The module serving the function a plugin names. */
static http_mod *plugin_mod(http_table *t, const cfg_config *c, const cfg_plugin *p)
{
    if (p->function != CFG_NO_FUNCTION && c == t->cfg)
        return &t->mods[p->function];
    /* By name: a sidecar naming another directory function, or a route kept
     * from an earlier configuration. */
    for (size_t i = 0; i < t->n_mods; i++)
        if (strcmp(t->mods[i].cf->fn.name, p->function_name) == 0)
            return &t->mods[i];
    return NULL;
}

/*
 * Make the function of one plugin: prepared with the plugin's export (the
 * configured one, or the ABI's default for the kind). An Extism module
 * whose ABI was detected, not configured, runs as an Otoroshi plugin.
 */
static int make_plugin(http_table *t, const cfg_config *c, const cfg_plugin *p, unsigned index,
                       http_plugin *out, kiln_err *err)
{
    http_mod *m = plugin_mod(t, c, p);
    const char *kind = kiln_stage_kind_name(p->kind);
    if (m == NULL)
        return kiln_err_set(err, KILN_ECONFIG, "%s:%d: plugin function '%s' is not defined",
                            c->source, p->line, p->function_name);
    plugin_use use = {m->abi, p->export_name};
    if (use.abi != NULL && m->cf->fn.abi == NULL && strcmp(use.abi->name, "extism") == 0 &&
        p->kind != KILN_STAGE_FILTER)
        use.abi = kiln_abi_find("otoroshi");
    if (use.abi != NULL) {
        const char *def = use.abi->stage_export ? use.abi->stage_export(p->kind) : NULL;
        if (def == NULL || use.abi->stage == NULL)
            return kiln_err_set(err, KILN_ECONFIG, "%s:%d: function '%s' (%s ABI) cannot be a "
                                "plugin of kind %s", c->source, p->line, m->cf->fn.name,
                                use.abi->name, kind);
        if (use.export_name == NULL && def[0] != '\0')
            use.export_name = def;
    }
    http_fn *f;
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc = make_fn(t, m, NULL, false, &use, &f, &e);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "%s:%d: plugin '%s' (%s): %s", c->source, p->line,
                            m->cf->fn.name, kind, e.msg);
    if ((rc = push_fn(t, f)) != KILN_OK) {
        fn_free(f);
        return kiln_err_set(err, rc, "out of memory");
    }
    out->fn = f;
    out->p.name = f->fn.name;
    out->p.kind = p->kind;
    out->p.config_json = p->config_json ? p->config_json : "{}";
    out->p.vm_config = p->vm_config;
    out->p.index = index;
    return KILN_OK;
}

/* Add one configured route (from `c`, the configuration it is written in). */
static int add_cfg_route(http_table *t, const cfg_config *c, const cfg_route *r, http_fn *f,
                         kiln_err *err)
{
    kiln_err e;
    memset(&e, 0, sizeof(e));
    http_route *rt = new_route(t, f, r->path, r->host);
    if (rt == NULL || (r->n_plugins > 0 &&
                       (rt->plugins = kiln_calloc(r->n_plugins, sizeof(*rt->plugins))) == NULL))
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    for (size_t k = 0; k < r->n_plugins; k++) {
        int prc = make_plugin(t, c, &r->plugins[k], (unsigned)k, &rt->plugins[k], err);
        if (prc != KILN_OK)
            return prc;
        rt->n_plugins++;
        /* One fiber runs the whole chain: give it the largest stack asked for
         * (0 is the 1 MiB default). */
        uint32_t want = rt->plugins[k].fn->fn.limits.max_stack_bytes, have =
                                                                      rt->task_limits.max_stack_bytes;
        if ((want ? want : 1u << 20) > (have ? have : 1u << 20))
            rt->task_limits.max_stack_bytes = want;
        if (r->plugins[k].kind == KILN_STAGE_MATCHER)
            rt->has_matchers = true;
    }
    int rc = http_router_add(t->router, r->path, r->host, r->methods, r->n_methods, rt, &e);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "%s:%d: %s", c->source, r->line, e.msg);
    char methods[200] = "*";
    size_t o = 0;
    for (size_t k = 0; k < r->n_methods && o < sizeof(methods); k++)
        o += (size_t)snprintf(methods + o, sizeof(methods) - o, "%s%s", k ? "," : "",
                              r->methods[k]);
    rc = add_line(t, methods, r->host, r->path, f);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "out of memory");
    for (size_t k = 0; k < rt->n_plugins; k++) {
        char line[400];
        snprintf(line, sizeof(line), "kiln serve:   plugin %zu: %s (%s, %s)%s", k + 1,
                 rt->plugins[k].p.name, kiln_stage_kind_name(rt->plugins[k].p.kind),
                 rt->plugins[k].fn->abi ? rt->plugins[k].fn->abi->name : "unknown ABI",
                 rt->plugins[k].fn->status == KILN_OK ? "" : " unavailable: 503");
        char **l = kiln_realloc(t->lines, (t->n_lines + 1) * sizeof(*l));
        if (l == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        t->lines = l;
        if ((l[t->n_lines] = kiln_strdup(line)) == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        t->n_lines++;
    }
    return rc == KILN_OK ? KILN_OK : kiln_err_set(err, rc, "out of memory");
}

/* Is function i used as a plugin or sink and never as a backend? Such a
 * function has no entry point of its own to prepare. */
static bool plugin_only(const cfg_config *c, const http_mod *m, size_t i)
{
    bool plugin = false;
    for (size_t j = 0; j < c->n_sinks; j++)
        plugin = plugin || c->sinks[j].function == i;
    for (size_t j = 0; j < c->n_routes; j++) {
        if (c->routes[j].function == i && m->kept_cfg == NULL)
            return false;
        for (size_t k = 0; k < c->routes[j].n_plugins; k++)
            plugin = plugin || c->routes[j].plugins[k].function == i;
    }
    if (m->kept_cfg != NULL)
        for (size_t j = 0; j < m->kept_cfg->n_routes; j++)
            if (m->kept_cfg->routes[j].function == m->kept_index)
                return false;
    return plugin;
}

static int config_routes(http_table *t, kiln_err *err)
{
    cfg_config *c = t->cfg;
    /* One http_fn per configured function, shared by its routes. */
    http_fn **by_fn = kiln_calloc(c->n_functions ? c->n_functions : 1, sizeof(*by_fn));
    if (by_fn == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    int rc = KILN_OK;
    for (size_t i = 0; i < c->n_functions && rc == KILN_OK; i++) {
        if (t->mods[i].cf->auto_routes)
            continue; /* routed by auto_routes */
        if (plugin_only(c, &t->mods[i], i))
            continue; /* prepared per use, with the plugin's export */
        if ((rc = make_fn(t, &t->mods[i], NULL, false, NULL, &by_fn[i], err)) != KILN_OK)
            break;
        if ((rc = push_fn(t, by_fn[i])) != KILN_OK) {
            fn_free(by_fn[i]);
            rc = kiln_err_set(err, rc, "out of memory");
        }
    }
    /* A function that kept its previous version keeps that version's routes. */
    for (size_t i = 0; i < c->n_routes && rc == KILN_OK; i++) {
        const cfg_route *r = &c->routes[i];
        if (r->upstream != NULL) {
            http_fn *f = NULL;
            if ((rc = upstream_fn(t, r, &f, err)) == KILN_OK)
                rc = add_cfg_route(t, c, r, f, err);
        } else if (t->mods[r->function].kept_cfg == NULL) {
            rc = add_cfg_route(t, c, r, by_fn[r->function], err);
        }
    }
    for (size_t i = 0; i < c->n_functions && rc == KILN_OK; i++) {
        const http_mod *m = &t->mods[i];
        if (m->kept_cfg == NULL || m->cf->auto_routes)
            continue;
        for (size_t k = 0; k < m->kept_cfg->n_routes && rc == KILN_OK; k++)
            if (m->kept_cfg->routes[k].function == m->kept_index)
                rc = add_cfg_route(t, m->kept_cfg, &m->kept_cfg->routes[k], by_fn[i], err);
    }
    kiln_free(by_fn);
    /* Sinks answer requests no route matched. */
    if (rc == KILN_OK && c->n_sinks > 0) {
        t->sinks = kiln_calloc(c->n_sinks, sizeof(*t->sinks));
        if (t->sinks == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        for (size_t i = 0; i < c->n_sinks && rc == KILN_OK; i++)
            if ((rc = make_plugin(t, c, &c->sinks[i], 0, &t->sinks[i], err)) == KILN_OK) {
                t->n_sinks++;
                char line[300];
                snprintf(line, sizeof(line), "kiln serve: sink %zu: %s (requests no route "
                         "matched)", i + 1, t->sinks[i].p.name);
                char **l = kiln_realloc(t->lines, (t->n_lines + 1) * sizeof(*l));
                if (l == NULL || (l[t->n_lines] = kiln_strdup(line)) == NULL) {
                    if (l != NULL)
                        t->lines = l;
                    return kiln_err_set(err, KILN_ENOMEM, "out of memory");
                }
                t->lines = l;
                t->n_lines++;
            }
    }
    return rc;
}

/* Keep alive every table whose configuration a kept function points into:
 * `prev` itself, or the table `prev` kept it from. */
static void retain_kept(http_table *t, http_table *prev)
{
    for (size_t i = 0; i < t->n_mods; i++) {
        const cfg_config *c = t->mods[i].kept_cfg;
        if (c == NULL)
            continue;
        http_table *owner = c == prev->cfg ? prev : NULL;
        for (size_t k = 0; owner == NULL && k < prev->n_kept; k++)
            if (prev->kept[k]->cfg == c)
                owner = prev->kept[k];
        if (owner == NULL)
            owner = prev; /* prev keeps its own kept tables alive */
        bool have = false;
        for (size_t k = 0; !have && k < t->n_kept; k++)
            have = t->kept[k] == owner;
        if (have)
            continue;
        http_table_retain(owner); /* t->kept has room for one per function */
        t->kept[t->n_kept++] = owner;
    }
}

/*
 * The module of `m` failed; if the serving table has a working module for
 * the same function, keep serving that one (a broken new version never
 * replaces a working one) and say so.
 */
static void keep_previous(http_mod *m, http_table *prev)
{
    if (m->status == KILN_OK)
        return;
    for (size_t i = 0; i < prev->n_mods; i++) {
        const http_mod *p = &prev->mods[i];
        if (p->status != KILN_OK || strcmp(p->cf->fn.name, m->cf->fn.name) != 0 ||
            (p->mod == NULL && p->loaded == NULL))
            continue;
        kiln_linker *l = NULL;
        if (p->mod != NULL && make_linker(p->abi, &l) != KILN_OK)
            return;
        /* The whole previous version: module and settings (routes, env,
         * limits). Its configuration lives in `prev`, kept alive by `t`. */
        m->cf = p->cf;
        if (p->kept_cfg != NULL) { /* kept already: point at the original, no chains */
            m->kept_cfg = p->kept_cfg;
            m->kept_index = p->kept_index;
        } else {
            m->kept_cfg = prev->cfg;
            m->kept_index = i;
        }
        if (m->status != HTTP_MOD_COMPILING)
            snprintf(m->refused, sizeof(m->refused), "%.*s", (int)sizeof(m->refused) - 1,
                     m->detail[0] ? m->detail : m->reason);
        if (m->linker != NULL)
            kiln_linker_free(m->linker);
        if (m->mod != NULL)
            kiln_module_release(m->mod);
        m->linker = l;
        m->mod = p->mod != NULL ? kiln_module_retain(p->mod) : NULL;
        /* A module its ABI loaded: the previous table's state, which lives
         * as long as that table, kept alive by this one (retain_kept). */
        if (m->loaded != NULL && !m->loaded_kept && m->abi->release != NULL)
            m->abi->release(m->loaded);
        m->loaded = p->loaded;
        m->loaded_kept = p->loaded != NULL;
        m->detail[0] = '\0';
        m->abi = p->abi;
        m->status = KILN_OK;
        m->reason[0] = '\0';
        memcpy(m->hash, p->hash, sizeof(m->hash));
        if (m->refused[0])
            http_log("kiln serve: function '%s': its new module was refused (%s); the previous "
                     "version keeps serving", m->cf->fn.name, m->refused);
        return;
    }
}

int http_table_build(cfg_config *cfg, const http_options *o, const http_table *prev,
                     http_bg *bg, http_table **out, kiln_err *err)
{
    *out = NULL;
    http_table *t = kiln_calloc(1, sizeof(*t));
    if (t == NULL) {
        cfg_free(cfg);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    atomic_init(&t->refs, 1);
    t->cfg = cfg;
    t->server = cfg->server;
    if (o->listen != NULL)
        t->server.listen = o->listen;
    if (o->threads != 0)
        t->server.threads = o->threads;
    if (o->quiet >= 0)
        t->server.quiet = o->quiet != 0;
    for (size_t i = 0; i < cfg->n_warnings; i++)
        http_log("kiln serve: warning: %s", cfg->warnings[i]);
    int rc = http_router_new(&t->router);
    t->mods = kiln_calloc(cfg->n_functions ? cfg->n_functions : 1, sizeof(*t->mods));
    if (rc != KILN_OK || t->mods == NULL) {
        table_free(t);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    t->n_mods = cfg->n_functions;
    for (size_t i = 0; i < t->n_mods; i++)
        t->mods[i].cf = &cfg->functions[i];
    compile_all(t, o, bg);
    /* Room for every table a kept function may need, allocated before any
     * function points into another table (without it, nothing is kept). */
    if (prev != NULL && (t->kept = kiln_calloc(t->n_mods + 1, sizeof(*t->kept))) != NULL) {
        for (size_t i = 0; i < t->n_mods; i++)
            keep_previous(&t->mods[i], (http_table *)prev);
        retain_kept(t, (http_table *)prev);
    }
    rc = config_routes(t, err);
    const char *domain = o->domain ? o->domain : "localhost";
    for (size_t i = 0; i < t->n_mods && rc == KILN_OK; i++)
        if (t->mods[i].cf->auto_routes)
            rc = auto_routes(t, &t->mods[i], domain, err);
    if (rc != KILN_OK) {
        table_free(t);
        return rc;
    }
    *out = t;
    return KILN_OK;
}

void http_table_log_routes(const http_table *t)
{
    for (size_t i = 0; i < t->n_lines; i++)
        http_log("%s", t->lines[i]);
    if (t->n_lines == 0)
        http_log("kiln serve: no routes: every request answers 404");
}
