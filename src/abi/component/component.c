/*
 * component.c - the "component" handler ABI: WebAssembly components as
 * served functions (docs/internals/component.md "Serving"). A component is
 * not a core module, so this ABI takes the loader path of handler.h
 * (claims + load) instead of detect + prepare: the server hands it the file,
 * and at deploy it
 *   - parses the component (src/component/cm_reader.c),
 *   - finds which served world it is: a wasi:cli/command (exports
 *     wasi:cli/run; comp_cmd.c) or a kiln:faas handler (exports handle;
 *     comp_faas.c), and refuses anything else, naming what it exports,
 *   - checks that every import it lowers is in the host registry (WASI 0.2's
 *     CLI subset, src/component/cm_wasi.c, and Kiln's host interfaces,
 *     src/component/cm_kiln.h), naming the first one missing,
 *   - compiles and loads every embedded core module once through the
 *     artifact cache (cm_mods_load), in the tier the server asks for; or,
 *     with tiers (load_best), loads the best tier cached for all of them,
 *     which the server's background compiler fills (compile, cm_tier.h).
 * Requests and events then instantiate the component afresh
 * (comp_instantiate). Owns the comp_state it makes; release frees it.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "abi/cgi/cgi_int.h"
#include "abi/component/comp_int.h"
#include "base/alloc.h"
#include "component/cm_kiln.h"
#include "component/cm_tier.h"
#include "component/cm_wasi.h"
#include "kiln/abi.h"

#define COMP_MAX_FILE ((size_t)256 << 20) /* the component reader's arena bound */

static const char WORLDS[] =
    "Kiln serves two component worlds: wasi:cli/command (export wasi:cli/run, served as "
    "CGI) and kiln:faas handler (export handle: func(event: handler-event) -> result<_, "
    "handler-error>)";

static bool comp_claims(const uint8_t *head, size_t n)
{
    return cm_is_component(head, n);
}

/* Core modules are never components: this ABI is chosen by claims(), or by
 * name (and then prepare() refuses a core module). */
static int comp_detect(const kiln_module *m)
{
    (void)m;
    return 0;
}

static const kiln_hostfn *comp_hostfns(size_t *n)
{
    *n = 0;
    return NULL;
}

static int comp_prepare(const kiln_function *fn, kiln_module *m, void **state, kiln_err *err)
{
    (void)m;
    *state = NULL;
    return kiln_err_set(err, KILN_ECONFIG,
                        "function '%s': abi 'component' needs a WebAssembly component, and %s "
                        "is a core module; remove 'abi' to detect the core module's ABI",
                        fn->name, fn->module_path);
}

static int read_file(const char *path, uint8_t **out, size_t *len, kiln_err *err)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        if (f != NULL)
            fclose(f);
        return kiln_err_set(err, KILN_ENOENT, "cannot read %s", path);
    }
    if ((uint64_t)st.st_size > COMP_MAX_FILE) {
        fclose(f);
        return kiln_err_set(err, KILN_ELIMIT, "%s is %lld bytes; components are limited to %zu",
                            path, (long long)st.st_size, COMP_MAX_FILE);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = kiln_malloc(n ? n : 1);
    if (b == NULL) {
        fclose(f);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory reading %s", path);
    }
    size_t got = fread(b, 1, n, f);
    fclose(f);
    if (got != n) {
        kiln_free(b);
        return kiln_err_set(err, KILN_EIO, "cannot read %s (short read)", path);
    }
    *out = b;
    *len = n;
    return KILN_OK;
}

/* The lift behind wasi:cli/run's `run`, when the component exports the
 * wasi:cli/run instance. */
static const cm_func *find_run(const cm_component *c)
{
    bool exported = false;
    for (uint32_t i = 0; i < c->n_exports; i++)
        exported = exported || (c->exports[i].sort == CM_SORT_INSTANCE &&
                                strncmp(c->exports[i].name, "wasi:cli/run@", 13) == 0);
    if (!exported)
        return NULL;
    return cm_find_cli_run(c);
}

static const cm_func *find_handle(const cm_component *c)
{
    for (uint32_t i = 0; i < c->n_exports; i++) {
        const cm_extern *ex = &c->exports[i];
        if (ex->sort != CM_SORT_FUNC || strcmp(ex->name, "handle") != 0)
            continue;
        const cm_func *f = c->space[CM_SORT_FUNC][ex->index];
        if (f->how == CM_FUNC_LIFT && !f->opts.async && comp_faas_signature(f->type))
            return f;
    }
    return NULL;
}

/* "wasi:cli/run@0.2.0, handle (func with 2 params)" for the refusal. */
static void list_exports(const cm_component *c, char *out, size_t cap)
{
    size_t pos = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < c->n_exports && pos + 1 < cap; i++) {
        int w = snprintf(out + pos, cap - pos, "%s%s %s", i ? ", " : "",
                         cm_sort_name(c->exports[i].sort), c->exports[i].name);
        if (w < 0 || (size_t)w >= cap - pos) {
            snprintf(out + (cap > 4 ? cap - 4 : 0), cap > 4 ? 4 : cap, "...");
            return;
        }
        pos += (size_t)w;
    }
    if (c->n_exports == 0)
        snprintf(out, cap, "nothing");
}

static void comp_release(void *state)
{
    comp_state *s = state;
    if (s == NULL)
        return;
    cm_image_free(atomic_load(&s->image));
    cm_plan_free(s->plan);
    cm_mods_free(s->mods);
    kiln_free(s->preopens);
    cm_free(s->c);
    kiln_free(s->buf);
    kiln_free(s);
}

/* The embedded core modules: at aot's tier, or (best != NULL) at the best
 * tier every one of them is cached at, compiling nothing. */
static int load_mods(comp_state *s, const char *name, const kiln_aot_options *aot,
                     kiln_aot_tier *best, kiln_err *e)
{
    if (best == NULL)
        return cm_mods_load(s->c, s->buf, name, aot, &s->mods, e);
    int rc = cm_mods_best_tier(s->c, s->buf, name, aot, best, e);
    if (rc != KILN_OK)
        return rc;
    kiln_aot_options ao = *aot;
    ao.tier = *best;
    ao.cache_only = true;
    return cm_mods_load(s->c, s->buf, name, &ao, &s->mods, e);
}

/* load (best NULL) and load_best (*best: the tier loaded). */
static int comp_load_tier(const kiln_function *fn, const kiln_aot_options *aot,
                          kiln_aot_tier *best, void **state, kiln_err *err)
{
    *state = NULL;
    if (fn->reuse)
        return kiln_err_set(err, KILN_ECONFIG,
                            "function '%s': 'reuse' is not supported for components: every "
                            "request gets a fresh component instance; remove 'reuse'",
                            fn->name);
    if (fn->abi != NULL && strcmp(fn->abi, "component") != 0)
        return kiln_err_set(err, KILN_ECONFIG,
                            "function '%s': %s is a WebAssembly component, which the '%s' ABI "
                            "cannot serve; set 'abi: component' or remove 'abi'",
                            fn->name, fn->module_path, fn->abi);
    comp_state *s = kiln_calloc(1, sizeof(*s));
    if (s == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc = read_file(fn->module_path, &s->buf, &s->len, &e);
    if (rc == KILN_ENOENT && best != NULL)
        rc = KILN_EIO; /* for load_best, KILN_ENOENT means "compile it" */
    if (rc == KILN_OK)
        rc = cm_parse(s->buf, s->len, &s->c, &e);
    if (rc != KILN_OK) {
        comp_release(s);
        return kiln_err_set(err, rc, "function '%s': %s", fn->name, e.msg);
    }
    if ((s->entry = find_run(s->c)) != NULL) {
        s->world = COMP_COMMAND;
    } else if ((s->entry = find_handle(s->c)) != NULL) {
        s->world = COMP_FAAS;
    } else {
        char found[400];
        list_exports(s->c, found, sizeof(found));
        comp_release(s);
        return kiln_err_set(err, KILN_ENOEXPORT,
                            "function '%s': the component is of neither world Kiln serves; %s; "
                            "it exports %s (`kiln inspect` prints its world)",
                            fn->name, WORLDS, found);
    }
    /* Imports before the compiler runs: the registry a request will get. */
    cm_host host;
    memset(&host, 0, sizeof(host));
    rc = comp_host_add(&host, NULL);
    if (rc == KILN_OK)
        rc = cm_check_imports(s->c, &host, &e);
    if (rc != KILN_OK) {
        comp_release(s);
        if (rc == KILN_EIMPORT)
            return kiln_err_set(err, rc,
                                "function '%s': the component's %s; Kiln provides WASI 0.2's "
                                "CLI interfaces (wasi:cli, wasi:io, wasi:clocks, wasi:random, "
                                "wasi:filesystem) and wasi:keyvalue@0.2.0-draft2 (store, "
                                "atomics.increment, batch), wasi:config/store and "
                                "wasi:logging/logging to components: rebuild it without that "
                                "import",
                                fn->name, e.msg);
        return kiln_err_set(err, rc, "function '%s': %s", fn->name, e.msg);
    }
    /* Handed to every request's preview-1 context, which WASI 0.2's
     * filesystem maps onto (cm_wasi.c), as the wasi ABI does. */
    if (cgi_preopens(fn, &s->preopens, err) != KILN_OK) {
        comp_release(s);
        return KILN_ENOMEM;
    }
    s->n_preopens = fn->n_dirs;
    rc = load_mods(s, fn->name, aot, best, &e);
    if (rc != KILN_OK) {
        comp_release(s);
        return kiln_err_set(err, rc, "function '%s': a core module of the component: %s",
                            fn->name, e.msg);
    }
    /* Linked once: a request only instantiates (comp_instantiate). The
     * registry's shape is the one comp_host_add gives every request. */
    memset(&host, 0, sizeof(host));
    rc = comp_host_add(&host, NULL);
    if (rc == KILN_OK)
        rc = cm_plan_new(s->c, s->buf, fn->name, s->mods, &host, &s->plan, &e);
    if (rc != KILN_OK) {
        comp_release(s);
        return kiln_err_set(err, rc, "function '%s': linking the component: %s", fn->name,
                            e.msg);
    }
    *state = s;
    return KILN_OK;
}

int comp_instantiate(const kiln_function *fn, const comp_state *s, kiln_wasi *wasi,
                     cm_host *host, cm_inst **out, kiln_err *err)
{
    memset(host, 0, sizeof(*host));
    int rc = comp_host_add(host, wasi);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "function '%s': out of memory", fn->name);
    void *slots[KILN_STATE_SLOTS] = {0};
    for (int i = 0; i < KILN_STATE_SLOTS; i++)
        slots[i] = fn->host_state[i];
    slots[KILN_STATE_WASI] = wasi;
    cm_image *img = fn->snapshot ? atomic_load(&((comp_state *)s)->image) : NULL;
    if (img != NULL)
        return cm_inst_new_image(s->plan, img, &fn->limits, host, slots, out, err);
    return cm_inst_new_plan(s->plan, &fn->limits, host, slots, out, err);
}

int comp_host_add(cm_host *host, kiln_wasi *wasi)
{
    int rc = cm_wasi_add(host, wasi);
    return rc == KILN_OK ? cm_kiln_add(host, wasi) : rc;
}

void comp_explain_oom(cm_inst *ci, const comp_state *s, const kiln_function *fn, kiln_err *err)
{
    if (ci == NULL || err->trap != KILN_TRAP_UNREACHABLE || fn->limits.max_memory_bytes == 0)
        return;
    for (uint32_t i = 0; i < s->c->n_space[CM_SORT_CORE_INSTANCE]; i++) {
        kiln_instance *inst = cm_inst_core(ci, i);
        wasm_rt_memory_t *mem = inst ? kiln_instance_memory(inst) : NULL;
        if (mem == NULL)
            continue;
        uint64_t limit = (uint64_t)mem->max_pages * 65536;
        if (limit > fn->limits.max_memory_bytes || (uint64_t)mem->size + (1u << 20) < limit)
            continue;
        kiln_err_prefix(err,
                        "out of memory: the guest reached its memory limit (%llu of %llu "
                        "bytes), then aborted; raise the function's max_memory",
                        (unsigned long long)mem->size, (unsigned long long)limit);
        err->trap = KILN_TRAP_OUT_OF_MEMORY;
        return;
    }
}

static int comp_handle(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                       const kiln_request *req, kiln_response *resp, kiln_err *err)
{
    (void)pre;
    const comp_state *s = state;
    if (s->world == COMP_COMMAND)
        return comp_cmd_handle(fn, s, req, resp, err);
    return comp_faas_handle(fn, s, req, resp, err);
}

static int comp_event(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                      const kiln_event *ev, kiln_err *err)
{
    const comp_state *s = state;
    if (s == NULL || s->world != COMP_FAAS)
        return kiln_err_set(err, KILN_EUNSUPPORTED,
                            "function '%s': only a kiln:faas handler component (exporting "
                            "handle) takes events; this one is a wasi:cli/command",
                            fn->name);
    return comp_faas_event(fn, state, pre, ev, err);
}

static int comp_load(const kiln_function *fn, const kiln_aot_options *aot, void **state,
                     kiln_err *err)
{
    return comp_load_tier(fn, aot, NULL, state, err);
}

static int comp_load_best(const kiln_function *fn, const kiln_aot_options *aot, void **state,
                          kiln_aot_tier *tier, kiln_err *err)
{
    return comp_load_tier(fn, aot, tier, state, err);
}

/* The background compiler's job: one tier of every embedded core module. */
static int comp_compile(const char *path, const char *display, const kiln_aot_options *aot,
                        kiln_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    cm_component *c = NULL;
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc = read_file(path, &buf, &len, &e);
    if (rc == KILN_OK)
        rc = cm_parse(buf, len, &c, &e);
    if (rc == KILN_OK)
        rc = cm_mods_compile(c, buf, display, aot, &e);
    cm_free(c);
    kiln_free(buf);
    /* The caller names the function (the server's log line does). */
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "a core module of the component: %s", e.msg);
    return KILN_OK;
}

KILN_API const kiln_abi_ops kiln_abi_component = {
    .name = "component",
    .detect = comp_detect,
    .hostfns = comp_hostfns,
    .prepare = comp_prepare,
    .handle = comp_handle,
    .release = comp_release,
    .event = comp_event,
    .claims = comp_claims,
    .load = comp_load,
    .load_best = comp_load_best,
    .snapshot = comp_snapshot,
    .compile = comp_compile,
};
