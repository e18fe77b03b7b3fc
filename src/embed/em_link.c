/*
 * em_link.c - linked modules: a manifest with several `wasm` entries, linked
 * by name as Extism does (extism-abi.md §5.3). The main module imports the
 * exports of the others as `<name>.<export>`; the others may import from
 * each other. Every instance of the plugin gets fresh instances of the
 * dependencies, made first with the same state slots (one Extism memory,
 * WASI and HTTP context for all) and the same limits, and freed after it.
 *
 * Compile time (em_link_check): circular imports are refused naming the
 * cycle, the dependencies are ordered so that each comes after those it
 * imports from, and every import of every module is checked against the
 * host functions plus placeholders of the dependencies' exports.
 */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "embed/embed_int.h"

/* Index of the dependency `name` (len bytes) of c, c->n_deps for the main
 * module's name, or -1. */
static long node_of(const ExtismCompiledPlugin *c, const char *main_name, const char *name,
                    size_t len)
{
    for (size_t i = 0; i < c->n_deps; i++)
        if (strlen(c->deps[i].name) == len && memcmp(c->deps[i].name, name, len) == 0)
            return (long)i;
    if (strlen(main_name) == len && memcmp(main_name, name, len) == 0)
        return (long)c->n_deps;
    return -1;
}

static const kiln_module *node_mod(const ExtismCompiledPlugin *c, size_t v)
{
    return v < c->n_deps ? c->deps[v].mod : c->mod;
}

static const char *node_name(const ExtismCompiledPlugin *c, const char *main_name, size_t v)
{
    return v < c->n_deps ? c->deps[v].name : main_name;
}

typedef struct walk {
    const ExtismCompiledPlugin *c;
    const char *main_name;
    unsigned char *color; /* 0 new, 1 on the path, 2 done */
    size_t *path;
    size_t depth;
    size_t *order; /* dependencies, post-order */
    size_t n_order;
} walk;

static int visit(walk *w, size_t v, kiln_err *err)
{
    if (w->color[v] == 2)
        return KILN_OK;
    if (w->color[v] == 1) {
        char msg[512];
        size_t at = 0, len = 0;
        while (w->path[at] != v)
            at++;
        msg[0] = '\0';
        for (size_t i = at; i < w->depth && len < sizeof(msg); i++)
            len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s -> ",
                                    node_name(w->c, w->main_name, w->path[i]));
        if (len < sizeof(msg))
            snprintf(msg + len, sizeof(msg) - len, "%s", node_name(w->c, w->main_name, v));
        return kiln_err_set(err, KILN_ECONFIG,
                            "manifest: circular imports between modules: %s (Extism links "
                            "modules without cycles)",
                            msg);
    }
    w->color[v] = 1;
    w->path[w->depth++] = v;
    const kiln_module *m = node_mod(w->c, v);
    uint32_t n = kiln_module_import_count(m);
    for (uint32_t i = 0; i < n; i++) {
        kiln_extern_info im;
        kiln_module_import(m, i, &im);
        long to = node_of(w->c, w->main_name, im.module, im.module_len);
        if (to < 0)
            continue;
        int rc = visit(w, (size_t)to, err);
        if (rc != KILN_OK)
            return rc;
    }
    w->depth--;
    w->color[v] = 2;
    if (v < w->c->n_deps)
        w->order[w->n_order++] = v;
    return KILN_OK;
}

/* Placeholders of every dependency's exports: types only, for checking. */
static int define_placeholders(const ExtismCompiledPlugin *c, kiln_linker *l)
{
    for (size_t d = 0; d < c->n_deps; d++) {
        const kiln_module *m = c->deps[d].mod;
        uint32_t n = kiln_module_export_count(m);
        for (uint32_t i = 0; i < n; i++) {
            kiln_extern_info ex;
            kiln_module_export(m, i, &ex);
            int rc = kiln_linker_define_extern(l, c->deps[d].name, ex.name, ex.kind, ex.type,
                                               NULL);
            if (rc != KILN_OK)
                return rc;
        }
    }
    return KILN_OK;
}

int em_link_check(ExtismCompiledPlugin *c, const char *main_name, kiln_err *err)
{
    size_t nodes = c->n_deps + 1;
    walk w = {.c = c, .main_name = main_name};
    w.color = kiln_calloc(nodes, 1);
    w.path = kiln_calloc(nodes + 1, sizeof(size_t));
    w.order = kiln_calloc(nodes, sizeof(size_t));
    int rc = KILN_OK;
    if (w.color == NULL || w.path == NULL || w.order == NULL)
        rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
    /* From the main module first, so that a cycle is named from it. */
    for (size_t k = 0; k < nodes && rc == KILN_OK; k++)
        rc = visit(&w, (c->n_deps + k) % nodes, err);
    for (size_t d = 0; d < c->n_deps && rc == KILN_OK; d++) {
        const kiln_module *m = c->deps[d].mod;
        if (kiln_module_find_export(m, "_start", KILN_EXTERN_FUNC) >= 0)
            rc = kiln_err_set(err, KILN_EUNSUPPORTED,
                              "manifest: module '%s' is a WASI command (it exports _start); "
                              "Kiln links reactor modules only (build it with "
                              "-mexec-model=reactor)",
                              c->deps[d].name);
        int ix = kiln_module_find_export(m, "_initialize", KILN_EXTERN_FUNC);
        if (ix >= 0) {
            kiln_extern_info ex;
            kiln_module_export(m, (uint32_t)ix, &ex);
            c->deps[d].reactor_init = strcmp(ex.type, ">") == 0;
        }
    }
    if (rc == KILN_OK) {
        /* Instantiation order: each dependency after those it imports from. */
        em_dep *sorted = kiln_calloc(c->n_deps, sizeof(*sorted));
        if (sorted == NULL)
            rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
        else {
            for (size_t i = 0; i < w.n_order; i++)
                sorted[i] = c->deps[w.order[i]];
            kiln_free(c->deps);
            c->deps = sorted;
        }
    }
    kiln_free(w.color);
    kiln_free(w.path);
    kiln_free(w.order);
    if (rc != KILN_OK)
        return rc;

    /* Every import of every module, against the host functions and the
     * dependencies' exports (types only). */
    kiln_linker *l = NULL;
    rc = em_base_linker(c, &l, err);
    if (rc == KILN_OK && (rc = define_placeholders(c, l)) != KILN_OK)
        kiln_err_set(err, rc, "out of memory");
    for (size_t d = 0; d < c->n_deps && rc == KILN_OK; d++) {
        kiln_instance_pre *pre = NULL;
        rc = kiln_instance_pre_new(c->deps[d].mod, l, &pre, err);
        kiln_instance_pre_free(pre);
    }
    if (rc == KILN_OK)
        rc = kiln_instance_pre_new(c->mod, l, &c->pre, err);
    kiln_linker_free(l);
    return rc;
}

/* What one plugin instance holds besides its main instance. */
typedef struct em_link {
    kiln_linker *l;
    kiln_instance_pre *main_pre;
    kiln_instance_pre **pres;
    kiln_instance **insts;
    size_t n;
} em_link;

void em_link_free(void *user, void *link)
{
    (void)user;
    em_link *k = link;
    if (k == NULL)
        return;
    kiln_instance_pre_free(k->main_pre);
    for (size_t i = k->n; i-- > 0;) {
        kiln_instance_free(k->insts[i]);
        kiln_instance_pre_free(k->pres[i]);
    }
    kiln_free(k->insts);
    kiln_free(k->pres);
    kiln_linker_free(k->l);
    kiln_free(k);
}

int em_link_instantiate(void *user, const kiln_limits *limits, void *const *state,
                        kiln_instance **out, void **link, kiln_err *err)
{
    const ExtismCompiledPlugin *c = user;
    *out = NULL;
    *link = NULL;
    em_link *k = kiln_calloc(1, sizeof(*k));
    if (k != NULL) {
        k->pres = kiln_calloc(c->n_deps, sizeof(*k->pres));
        k->insts = kiln_calloc(c->n_deps, sizeof(*k->insts));
    }
    if (k == NULL || k->pres == NULL || k->insts == NULL) {
        em_link_free(NULL, k);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory instantiating linked modules");
    }
    int rc = em_base_linker(c, &k->l, err);
    for (size_t d = 0; d < c->n_deps && rc == KILN_OK; d++) {
        const em_dep *dep = &c->deps[d];
        rc = kiln_instance_pre_new(dep->mod, k->l, &k->pres[d], err);
        if (rc == KILN_OK)
            rc = kiln_instance_new(k->pres[d], limits, state, &k->insts[d], err);
        if (rc == KILN_OK)
            k->n = d + 1;
        else
            kiln_instance_pre_free(k->pres[d]);
        if (rc == KILN_OK && dep->reactor_init)
            rc = kiln_instance_call(k->insts[d], "_initialize", ">", NULL, NULL, err);
        if (rc == KILN_OK && (rc = kiln_linker_define_instance(k->l, dep->name, k->insts[d])) !=
                                 KILN_OK)
            kiln_err_set(err, rc, "out of memory");
        if (rc != KILN_OK)
            kiln_err_prefix(err, "module %s: ", dep->name);
    }
    if (rc == KILN_OK)
        rc = kiln_instance_pre_new(c->mod, k->l, &k->main_pre, err);
    if (rc == KILN_OK)
        rc = kiln_instance_new(k->main_pre, limits, state, out, err);
    if (rc != KILN_OK) {
        em_link_free(NULL, k);
        return rc;
    }
    *link = k;
    return KILN_OK;
}
