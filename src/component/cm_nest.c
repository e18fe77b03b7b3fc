/*
 * cm_nest.c - nested components: flatten the component instances a root
 * component makes of the components it defines into the root's own index
 * spaces, so the rest of Kiln (cm_inst.c's core-instance graph, the
 * Canonical ABI, inspect, serve) runs a composed component as it runs a
 * flat one.
 *
 * Contract (cm_int.h). cm_nest_flatten(root) is called by cm_parse when the
 * root instantiates a nested component. Every entry of the root keeps its
 * index; what each nested instantiation defines (core modules, core
 * instances, core functions, memories, tables, globals, lifted functions)
 * is appended after the root's own entries, once per instantiation, with
 * its indices rewritten into the root's spaces. A root function aliased
 * from a nested instance's export becomes that export (a lift, or whatever
 * the nested component re-exports). A nested component's imports are bound
 * to the instantiation's arguments; a function it imports from the root's
 * own imported instances stays a host import; one that is a lift elsewhere
 * in the tree becomes a lowered lift, which cm_inst.c calls through the
 * Canonical ABI (lift out of the callee, lower into the caller: a
 * component-to-component call).
 *
 * Order. Core instances are instantiated in index order: the root's own
 * first, then each nested instantiation's, in the order they are reached.
 * Dependencies between core instances never cross a component boundary (a
 * component exports no core instance, memory or table), and calls across
 * one go through lowered lifts resolved when called, so this order
 * instantiates every core instance after its arguments.
 *
 * Not supported (KILN_EUNSUPPORTED, naming what): instantiating an imported
 * component, an imported core module inside a nested component, an
 * instance exported by an imported instance, resources with destructors
 * defined by a nested component, component start functions and values (the
 * reader refuses the last two already).
 *
 * Ownership: everything appended lives in the root's arena; the scratch
 * maps below are freed before returning.
 */
#include <string.h>

#include "base/alloc.h"
#include "component/cm.h"
#include "component/cm_int.h"

/* What a nested-made instance exports: name -> (sort, index in the root).
 * Lives in the root's arena. */
typedef struct nest_map {
    uint32_t n;
    const cm_core_arg *e;
} nest_map;

typedef struct nest {
    cm_component *root;
    kiln_err *err;
    const nest_map **maps; /* per root INSTANCE index; NULL: an imported instance */
    uint32_t n_maps;
    uint32_t depth;   /* nested instantiations */
    uint32_t calls;   /* resolve() recursion */
    uint32_t n_insts; /* nested instantiations so far (their ids are 1..n_insts) */
} nest;

/* Bound on resolve()'s recursion: a hostile chain of definitions each
 * naming the one before cannot exhaust the host stack. */
#define NEST_MAX_RECURSION 1024

/* One instantiation of a nested component. NULL stands for the root, whose
 * indices are kept as they are. */
typedef struct nest_ctx {
    const cm_component *c;
    uint32_t id;             /* the instantiation's id (cm_func.owner, cm_type.impl) */
    const cm_core_arg *args; /* the instantiation's arguments, indices in the root */
    uint32_t n_args;
    uint32_t *memo[CM_SORT_COUNT]; /* root index + 1, 0 = not resolved yet */
} nest_ctx;

static int resolve(nest *t, nest_ctx *x, cm_sort s, uint32_t i, uint32_t *out);

static int fail(nest *t, int code, const char *what)
{
    return kiln_err_set(t->err, code, "nested component: %s", what);
}

static void *alloc(nest *t, size_t n)
{
    void *p = cm_arena_alloc(t->root->arena, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

static int set_map(nest *t, uint32_t inst, const nest_map *m)
{
    if (inst >= t->n_maps) {
        const nest_map **v = kiln_realloc(t->maps, (size_t)(inst + 1) * sizeof(*v));
        if (v == NULL)
            return fail(t, KILN_ENOMEM, "out of memory");
        for (uint32_t k = t->n_maps; k <= inst; k++)
            v[k] = NULL;
        t->maps = v;
        t->n_maps = inst + 1;
    }
    t->maps[inst] = m;
    return KILN_OK;
}

/* Append p to the root's space s; *out its index. */
static int append(nest *t, cm_sort s, void *p, uint32_t *out)
{
    cm_component *r = t->root;
    if (r->n_space[s] >= CM_MAX_SPACE)
        return fail(t, KILN_ELIMIT, "too many definitions after flattening");
    if (cm_arena_push(r->arena, &r->space[s], &r->n_space[s], &r->cap_space[s], p) != KILN_OK)
        return fail(t, KILN_ENOMEM, "out of memory");
    *out = r->n_space[s] - 1;
    return KILN_OK;
}

/* Export `name` (of sort s) of root instance `inst`. A function exported
 * by an imported instance becomes an alias of it: a host import. */
static int instance_export(nest *t, uint32_t inst, const char *name, cm_sort s,
                           const cm_type *type, uint32_t *out)
{
    const nest_map *m = inst < t->n_maps ? t->maps[inst] : NULL;
    if (m != NULL) {
        for (uint32_t k = 0; k < m->n; k++)
            if (m->e[k].sort == s && strcmp(m->e[k].name, name) == 0) {
                *out = m->e[k].index;
                return KILN_OK;
            }
        return kiln_err_set(t->err, KILN_EMODULE, "nested component: instance %u has no %s "
                            "export '%s'", (unsigned)inst, cm_sort_name(s), name);
    }
    if (s != CM_SORT_FUNC)
        return kiln_err_set(t->err, KILN_EUNSUPPORTED, "nested component: the %s export '%s' "
                            "of an imported instance", cm_sort_name(s), name);
    cm_func *f = alloc(t, sizeof(*f));
    if (f == NULL)
        return fail(t, KILN_ENOMEM, "out of memory");
    f->how = CM_FUNC_ALIAS;
    f->type = type;
    f->instance = inst;
    f->name = name;
    return append(t, CM_SORT_FUNC, f, out);
}

static int remap_opts(nest *t, nest_ctx *x, cm_opts *o)
{
    int rc = KILN_OK;
    if (o->has_memory)
        rc = resolve(t, x, CM_SORT_CORE_MEMORY, o->memory, &o->memory);
    if (rc == KILN_OK && o->has_realloc)
        rc = resolve(t, x, CM_SORT_CORE_FUNC, o->realloc, &o->realloc);
    if (rc == KILN_OK && o->has_post_return)
        rc = resolve(t, x, CM_SORT_CORE_FUNC, o->post_return, &o->post_return);
    if (rc == KILN_OK && o->has_callback)
        rc = resolve(t, x, CM_SORT_CORE_FUNC, o->callback, &o->callback);
    return rc;
}

/* The argument bound to import `name` of the instantiated component. */
static int bound(nest *t, nest_ctx *x, const char *name, cm_sort s, uint32_t *out)
{
    for (uint32_t k = 0; k < x->n_args; k++)
        if (strcmp(x->args[k].name, name) == 0) {
            if (x->args[k].sort != s)
                return kiln_err_set(t->err, KILN_EMODULE, "nested component: import '%s' is a "
                                    "%s, instantiated with a %s", name, cm_sort_name(s),
                                    cm_sort_name(x->args[k].sort));
            *out = x->args[k].index;
            return KILN_OK;
        }
    return kiln_err_set(t->err, KILN_EMODULE, "nested component: import '%s' is not given when "
                        "the component is instantiated", name);
}

/* The arguments (or inline exports) `a` of a definition in x, with their
 * indices in the root's spaces; types and components pass by identity. */
static int resolve_args(nest *t, nest_ctx *x, const cm_core_arg *a, uint32_t n,
                        const cm_core_arg **out)
{
    if (x == NULL) {
        *out = a;
        return KILN_OK;
    }
    cm_core_arg *r = alloc(t, (size_t)n * sizeof(*r) + 1);
    if (r == NULL)
        return fail(t, KILN_ENOMEM, "out of memory");
    int rc = KILN_OK;
    for (uint32_t k = 0; k < n && rc == KILN_OK; k++) {
        r[k] = a[k];
        if (a[k].sort != CM_SORT_TYPE && a[k].sort != CM_SORT_COMPONENT &&
            a[k].sort != CM_SORT_CORE_TYPE)
            rc = resolve(t, x, a[k].sort, a[k].index, &r[k].index);
    }
    *out = r;
    return rc;
}

/* A resource type the nested component imports is the one it is given:
 * the import takes the argument's identity (cm_type.id), so handles of one
 * are handles of the other on both sides of a component-to-component call
 * (the Canonical ABI's resource types are the argument's, not new ones).
 * The tree is the root's, in its arena: flattening rewrites it. */
static int bind_resource(nest *t, const cm_type *imported, const cm_type *given)
{
    if (imported == NULL || given == NULL || imported->kind != CM_RESOURCE ||
        !imported->abstract || given->kind != CM_RESOURCE || imported == given)
        return KILN_OK; /* not a `(sub resource)` import: its identity is its own */
    cm_type *im = (cm_type *)imported;
    if (im->bound && im->id != given->id)
        return fail(t, KILN_EUNSUPPORTED, "a component instantiated twice with different "
                    "resource types for one of its imports");
    im->id = given->id;
    im->bound = true;
    return KILN_OK;
}

/* The resources among d's arguments, bound to nc's imports: a type given
 * for a type import, and the type exports of an instance given for an
 * instance import, by name. `args` are d's resolved in the root. */
static int bind_resources(nest *t, nest_ctx *x, const cm_inst_def *d, const cm_component *nc,
                          const cm_core_arg *args)
{
    const cm_component *parent = x != NULL ? x->c : t->root;
    int rc = KILN_OK;
    for (uint32_t a = 0; a < d->n && rc == KILN_OK; a++) {
        const cm_extern *im = NULL;
        for (uint32_t k = 0; k < nc->n_imports && im == NULL; k++)
            if (strcmp(nc->imports[k].name, d->args[a].name) == 0)
                im = &nc->imports[k];
        if (im == NULL || im->sort != d->args[a].sort || im->type == NULL)
            continue;
        if (im->sort == CM_SORT_TYPE) {
            /* Types pass by identity: the index is in the parent's space. */
            uint32_t i = d->args[a].index;
            if (i < parent->n_space[CM_SORT_TYPE])
                rc = bind_resource(t, im->type, parent->space[CM_SORT_TYPE][i]);
        } else if (im->sort == CM_SORT_INSTANCE) {
            uint32_t i = args[a].index;
            const cm_type *given = i < t->root->n_space[CM_SORT_INSTANCE]
                                       ? t->root->space[CM_SORT_INSTANCE][i]
                                       : NULL;
            for (uint32_t j = 0; given != NULL && j < im->type->n_exports && rc == KILN_OK; j++) {
                const cm_extern *ex = &im->type->exports[j];
                if (ex->sort != CM_SORT_TYPE)
                    continue;
                for (uint32_t g = 0; g < given->n_exports; g++)
                    if (given->exports[g].sort == CM_SORT_TYPE &&
                        strcmp(given->exports[g].name, ex->name) == 0) {
                        rc = bind_resource(t, ex->type, given->exports[g].type);
                        break;
                    }
            }
        }
    }
    return rc;
}

/* Instantiate nested component d->component with d's arguments (resolved
 * in x): every core instance and nested instance it makes, then its
 * exports as a map. */
static int instantiate(nest *t, nest_ctx *x, const cm_inst_def *d, nest_map **out)
{
    const cm_component *nc = d->component;
    if (nc == NULL)
        return fail(t, KILN_EUNSUPPORTED, "instantiating an imported component (only components "
                    "defined inside the component can be instantiated)");
    if (t->depth >= CM_MAX_NESTING)
        return fail(t, KILN_ELIMIT, "instantiations nested too deep");
    nest_ctx child = {.c = nc, .n_args = d->n, .id = ++t->n_insts};
    int rc = resolve_args(t, x, d->args, d->n, &child.args);
    if (rc == KILN_OK)
        rc = bind_resources(t, x, d, nc, child.args);
    /* Every import must be given (the sorts are checked where used). */
    for (uint32_t k = 0; rc == KILN_OK && k < nc->n_imports; k++) {
        bool given = false;
        for (uint32_t a = 0; a < d->n && !given; a++)
            given = strcmp(d->args[a].name, nc->imports[k].name) == 0;
        if (!given)
            rc = kiln_err_set(t->err, KILN_EMODULE, "nested component: its import '%s' is not "
                              "given when it is instantiated", nc->imports[k].name);
    }
    for (int s = 0; rc == KILN_OK && s < CM_SORT_COUNT; s++)
        if (nc->n_space[s] != 0 &&
            (child.memo[s] = kiln_calloc(nc->n_space[s], sizeof(uint32_t))) == NULL)
            rc = fail(t, KILN_ENOMEM, "out of memory");
    t->depth++;
    /* Everything the component defines, in index order per sort: what it
     * instantiates happens, used or not, and every reference then goes to
     * an entry resolved already, which keeps the recursion shallow. */
    static const cm_sort order[] = {CM_SORT_CORE_MODULE, CM_SORT_CORE_INSTANCE,
                                    CM_SORT_CORE_FUNC,   CM_SORT_CORE_MEMORY,
                                    CM_SORT_CORE_TABLE,  CM_SORT_CORE_GLOBAL,
                                    CM_SORT_FUNC,        CM_SORT_INSTANCE};
    uint32_t ignored;
    for (size_t o = 0; rc == KILN_OK && o < sizeof(order) / sizeof(order[0]); o++)
        for (uint32_t k = 0; rc == KILN_OK && k < nc->n_space[order[o]]; k++) {
            const cm_inst_def *kd = k < nc->n_idefs ? nc->idefs[k] : NULL;
            if (order[o] == CM_SORT_INSTANCE &&
                (kd == NULL || kd->how == CM_INST_IMPORT || kd->how == CM_INST_ALIAS))
                continue; /* bound or aliased: resolved when used */
            rc = resolve(t, &child, order[o], k, &ignored);
        }
    nest_map *m = rc == KILN_OK ? alloc(t, sizeof(*m)) : NULL;
    cm_core_arg *e = m != NULL ? alloc(t, (size_t)nc->n_exports * sizeof(*e) + 1) : NULL;
    if (rc == KILN_OK && e == NULL)
        rc = fail(t, KILN_ENOMEM, "out of memory");
    for (uint32_t k = 0; rc == KILN_OK && k < nc->n_exports; k++) {
        const cm_extern *ex = &nc->exports[k];
        e[k] = (cm_core_arg){.name = ex->name, .index = ex->index, .sort = ex->sort};
        if (ex->sort != CM_SORT_TYPE && ex->sort != CM_SORT_COMPONENT)
            rc = resolve(t, &child, ex->sort, ex->index, &e[k].index);
    }
    t->depth--;
    for (int s = 0; s < CM_SORT_COUNT; s++)
        kiln_free(child.memo[s]);
    if (rc != KILN_OK)
        return rc;
    m->n = nc->n_exports;
    m->e = e;
    *out = m;
    return KILN_OK;
}

/* The map of an instance defined in x (x NULL: the root) by d. */
static int instance_map(nest *t, nest_ctx *x, const cm_inst_def *d, const nest_map **out)
{
    if (d->how == CM_INST_INLINE) {
        nest_map *m = alloc(t, sizeof(*m));
        if (m == NULL)
            return fail(t, KILN_ENOMEM, "out of memory");
        m->n = d->n;
        *out = m;
        return resolve_args(t, x, d->args, d->n, &m->e);
    }
    nest_map *m = NULL;
    int rc = instantiate(t, x, d, &m);
    *out = m;
    return rc;
}

static int resolve_instance(nest *t, nest_ctx *x, uint32_t i, uint32_t *out)
{
    const cm_inst_def *d = i < x->c->n_idefs ? x->c->idefs[i] : NULL;
    if (d == NULL)
        return fail(t, KILN_EUNSUPPORTED, "an instance of unknown origin");
    if (d->how == CM_INST_IMPORT)
        return bound(t, x, d->name, CM_SORT_INSTANCE, out);
    if (d->how == CM_INST_ALIAS) {
        uint32_t p;
        int rc = resolve(t, x, CM_SORT_INSTANCE, d->instance, &p);
        return rc != KILN_OK ? rc : instance_export(t, p, d->name, CM_SORT_INSTANCE, NULL, out);
    }
    const nest_map *m = NULL;
    int rc = instance_map(t, x, d, &m);
    if (rc == KILN_OK)
        rc = append(t, CM_SORT_INSTANCE, x->c->space[CM_SORT_INSTANCE][i], out);
    if (rc == KILN_OK)
        rc = set_map(t, *out, m);
    return rc;
}

static int resolve_func(nest *t, nest_ctx *x, uint32_t i, uint32_t *out)
{
    const cm_func *f = x->c->space[CM_SORT_FUNC][i];
    if (f->how == CM_FUNC_IMPORT)
        return bound(t, x, f->name, CM_SORT_FUNC, out);
    if (f->how == CM_FUNC_ALIAS) {
        uint32_t p;
        int rc = resolve(t, x, CM_SORT_INSTANCE, f->instance, &p);
        return rc != KILN_OK ? rc : instance_export(t, p, f->name, CM_SORT_FUNC, f->type, out);
    }
    cm_func *n = alloc(t, sizeof(*n));
    if (n == NULL)
        return fail(t, KILN_ENOMEM, "out of memory");
    *n = *f;
    n->owner = x->id;
    int rc = resolve(t, x, CM_SORT_CORE_FUNC, f->core_func, &n->core_func);
    if (rc == KILN_OK)
        rc = remap_opts(t, x, &n->opts);
    return rc == KILN_OK ? append(t, CM_SORT_FUNC, n, out) : rc;
}

/* x implements resource type r (it has a resource.new of it: only the
 * defining component may). Its destructor's index moves to the root's
 * space. A component defining resources instantiated twice would share one
 * type object between two implementers (the Canonical ABI makes a new type
 * per instantiation): refused. */
static int implement(nest *t, nest_ctx *x, const cm_type *r)
{
    cm_type *rt = (cm_type *)r; /* the root's arena: flattening rewrites the tree */
    if (rt->has_impl)
        return rt->impl == x->id ? KILN_OK
                                 : fail(t, KILN_EUNSUPPORTED, "a component that defines a "
                                        "resource type is instantiated more than once (Kiln "
                                        "would share the type between the instances: define "
                                        "the component once per instantiation)");
    rt->has_impl = true;
    rt->impl = x->id;
    if (!rt->has_dtor)
        return KILN_OK;
    uint32_t d;
    int rc = resolve(t, x, CM_SORT_CORE_FUNC, rt->dtor, &d);
    if (rc == KILN_OK)
        rt->dtor = d;
    return rc;
}

static int resolve_core_func(nest *t, nest_ctx *x, uint32_t i, uint32_t *out)
{
    const cm_core_func *f = x->c->space[CM_SORT_CORE_FUNC][i];
    cm_core_func *n = alloc(t, sizeof(*n));
    if (n == NULL)
        return fail(t, KILN_ENOMEM, "out of memory");
    *n = *f;
    int rc = KILN_OK;
    switch (f->how) {
    case CM_CORE_ALIAS:
        rc = resolve(t, x, CM_SORT_CORE_INSTANCE, f->instance, &n->instance);
        break;
    case CM_CORE_LOWER:
        rc = resolve(t, x, CM_SORT_FUNC, f->func, &n->func);
        if (rc == KILN_OK)
            rc = remap_opts(t, x, &n->opts);
        break;
    default: /* resource.new/drop/rep: the type object is the defining component's */
        if (f->how == CM_CORE_RESOURCE_NEW && f->resource != NULL)
            rc = implement(t, x, f->resource);
        break;
    }
    return rc == KILN_OK ? append(t, CM_SORT_CORE_FUNC, n, out) : rc;
}

static int resolve_core_instance(nest *t, nest_ctx *x, uint32_t i, uint32_t *out)
{
    const cm_core_instance *ci = x->c->space[CM_SORT_CORE_INSTANCE][i];
    cm_core_instance *n = alloc(t, sizeof(*n));
    if (n == NULL)
        return fail(t, KILN_ENOMEM, "out of memory");
    *n = *ci;
    int rc = KILN_OK;
    if (ci->instantiate)
        rc = resolve(t, x, CM_SORT_CORE_MODULE, ci->module, &n->module);
    const cm_core_arg *args = NULL;
    if (rc == KILN_OK)
        rc = resolve_args(t, x, ci->args, ci->n, &args);
    n->args = (cm_core_arg *)args;
    return rc == KILN_OK ? append(t, CM_SORT_CORE_INSTANCE, n, out) : rc;
}

/* A core module: the same embedded module once in the root, however many
 * times it is instantiated. */
static int resolve_module(nest *t, nest_ctx *x, uint32_t i, uint32_t *out)
{
    const cm_module *m = x->c->space[CM_SORT_CORE_MODULE][i];
    if (m == NULL)
        return fail(t, KILN_EUNSUPPORTED, "a nested component importing a core module");
    cm_component *r = t->root;
    for (uint32_t k = 0; k < r->n_space[CM_SORT_CORE_MODULE]; k++)
        if (r->space[CM_SORT_CORE_MODULE][k] == m) {
            *out = k;
            return KILN_OK;
        }
    return append(t, CM_SORT_CORE_MODULE, (void *)m, out);
}

static int resolve(nest *t, nest_ctx *x, cm_sort s, uint32_t i, uint32_t *out)
{
    if (x == NULL) {
        *out = i;
        return KILN_OK;
    }
    if (i >= x->c->n_space[s])
        return fail(t, KILN_EMODULE, "index out of range");
    if (x->memo[s] != NULL && x->memo[s][i] != 0) {
        *out = x->memo[s][i] - 1;
        return KILN_OK;
    }
    if (t->calls >= NEST_MAX_RECURSION)
        return fail(t, KILN_ELIMIT, "definitions refer to each other too deeply");
    t->calls++;
    int rc;
    switch (s) {
    case CM_SORT_FUNC: rc = resolve_func(t, x, i, out); break;
    case CM_SORT_INSTANCE: rc = resolve_instance(t, x, i, out); break;
    case CM_SORT_CORE_FUNC: rc = resolve_core_func(t, x, i, out); break;
    case CM_SORT_CORE_INSTANCE: rc = resolve_core_instance(t, x, i, out); break;
    case CM_SORT_CORE_MODULE: rc = resolve_module(t, x, i, out); break;
    case CM_SORT_CORE_MEMORY:
    case CM_SORT_CORE_TABLE:
    case CM_SORT_CORE_GLOBAL: {
        const cm_core_item *it = x->c->space[s][i];
        cm_core_item *n = alloc(t, sizeof(*n));
        if (n == NULL)
            return fail(t, KILN_ENOMEM, "out of memory");
        *n = *it;
        rc = resolve(t, x, CM_SORT_CORE_INSTANCE, it->instance, &n->instance);
        if (rc == KILN_OK)
            rc = append(t, s, n, out);
        break;
    }
    default:
        rc = kiln_err_set(t->err, KILN_EUNSUPPORTED, "nested component: passing a %s",
                          cm_sort_name(s));
    }
    t->calls--;
    if (rc == KILN_OK && x->memo[s] != NULL)
        x->memo[s][i] = *out + 1;
    return rc;
}

bool cm_nest_needed(const cm_component *c)
{
    for (uint32_t i = 0; i < c->n_idefs; i++)
        if (c->idefs[i] != NULL && c->idefs[i]->how == CM_INST_INSTANTIATE)
            return true;
    return false;
}

int cm_nest_flatten(cm_component *root, kiln_err *err)
{
    nest t = {.root = root, .err = err};
    uint32_t n_inst = root->n_space[CM_SORT_INSTANCE];
    int rc = KILN_OK;
    /* The root implements the resources it makes (instantiation 0). */
    for (uint32_t i = 0; i < root->n_space[CM_SORT_CORE_FUNC]; i++) {
        const cm_core_func *f = root->space[CM_SORT_CORE_FUNC][i];
        if (f->how == CM_CORE_RESOURCE_NEW && f->resource != NULL) {
            cm_type *rt = (cm_type *)f->resource;
            rt->has_impl = true;
            rt->impl = 0;
        }
    }
    /* The root's own instances, in order: nested instantiations happen
     * here, and inline bags and aliases get their maps. */
    for (uint32_t i = 0; rc == KILN_OK && i < n_inst; i++) {
        const cm_inst_def *d = i < root->n_idefs ? root->idefs[i] : NULL;
        if (d == NULL || d->how == CM_INST_IMPORT)
            continue;
        if (d->how == CM_INST_ALIAS) {
            const nest_map *pm = d->instance < t.n_maps ? t.maps[d->instance] : NULL;
            uint32_t target;
            if (pm == NULL)
                continue; /* an instance exported by an imported one: used by type only */
            rc = instance_export(&t, d->instance, d->name, CM_SORT_INSTANCE, NULL, &target);
            if (rc == KILN_OK)
                rc = set_map(&t, i, target < t.n_maps ? t.maps[target] : NULL);
            continue;
        }
        const nest_map *m = NULL;
        rc = instance_map(&t, NULL, d, &m);
        if (rc == KILN_OK)
            rc = set_map(&t, i, m);
    }
    /* Root functions aliased from nested-made instances become what those
     * instances export. */
    uint32_t n_fn = root->n_space[CM_SORT_FUNC];
    for (uint32_t i = 0; rc == KILN_OK && i < n_fn; i++) {
        const cm_func *f = root->space[CM_SORT_FUNC][i];
        if (f->how != CM_FUNC_ALIAS || f->instance >= t.n_maps || t.maps[f->instance] == NULL)
            continue;
        uint32_t target;
        rc = instance_export(&t, f->instance, f->name, CM_SORT_FUNC, f->type, &target);
        if (rc == KILN_OK)
            root->space[CM_SORT_FUNC][i] = root->space[CM_SORT_FUNC][target];
    }
    kiln_free(t.maps);
    if (rc == KILN_OK)
        root->flattened = true;
    return rc;
}
