/*
 * cm_inst.c - instantiate a component's core-instance graph, link `canon
 * lower`ed imports to the host registry through libffi closures, keep the
 * resource handle table, call lifted exports. Contract in cm_inst.h.
 */
#include <ffi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "component/cm_inst.h"
#include "component/cm_int.h"
#include "kiln/abi.h"
#include "kiln/aot.h"

#define MAX_CORE_PARAMS (CM_MAX_FLAT_PARAMS + 1) /* + the retptr */

/* A core function the runtime provides: a lowered import or a resource
 * built-in. Made once per plan (per deployed function): the libffi closure
 * finds the request's cm_inst through the calling core instance's
 * KILN_STATE_COMPONENT slot, which is per instance, so a request suspended
 * inside a host call on its fiber never sees another request's. */
typedef struct cm_lowered {
    const cm_core_func *cf;
    const cm_type *ft;          /* lower: the component function's type */
    const cm_host_fn *hf;       /* lower; resource.drop of a host resource: its drop */
    const cm_func *lift;        /* lower of a lift (a nested component's export, cm_nest.c):
                                   called through the Canonical ABI instead of hf */
    uint32_t table;             /* the registry table hf is in: its user data is the request's */
    uint32_t n_in;              /* core parameters */
    char sig[MAX_CORE_PARAMS + 4];
    char ret;                   /* 0: none */
    ffi_cif cif;
    ffi_type *args[MAX_CORE_PARAMS + 1];
    ffi_closure *closure;
    void *code;
    kiln_hostfn hostfn;         /* the linker entry, names filled per use */
} cm_lowered;

/* The compiled core modules of a component, by core module index (NULL for
 * an imported module). */
struct cm_mods {
    uint32_t n;
    kiln_module **mod;
};

/* Everything about instantiating a component that does not depend on the
 * request (cm_inst.h "plans"). Immutable once made. */
struct cm_plan {
    const cm_component *c;
    const uint8_t *buf;
    char *display;
    cm_mods *own_mods;         /* compiled here when none were given */
    uint32_t n_core;
    kiln_module **mods;        /* per core instance (a reference), NULL for a bag */
    kiln_linker **linkers;
    kiln_instance_pre **pres;  /* per core instance; arguments = earlier core instances */
    cm_lowered **lowered;      /* per core func index, made on first use */
    kiln_hostfn **hostfns;     /* kiln_hostfn entries the linkers point to */
    uint32_t n_hostfns;
    /* The registry's tables as the plan resolved them: a request's registry
     * must hold the same tables (its user data is the request's). */
    const cm_host_fn *tables[CM_HOST_MAX_TABLES];
    uint32_t n_tables;
};

struct cm_inst {
    const cm_plan *plan;
    cm_plan *own_plan;     /* cm_inst_new / cm_inst_new_loaded: made for this instance */
    const cm_component *c;
    kiln_limits limits;
    const cm_host *host;
    void *ud[CM_HOST_MAX_TABLES]; /* per plan table: this instance's user data */
    void *state[KILN_STATE_SLOTS];
    uint32_t n_core;
    kiln_instance **core;
    cm_handles handles;
    int exit_code;
    kiln_instance *caller; /* during a host call: the calling core instance */
    cm_arena *call_arena;  /* during a host call: where results are allocated */
};

/* ---- the registry --------------------------------------------------------- */

int cm_host_add(cm_host *h, const cm_host_fn *fns, size_t n, void *ud)
{
    if (h->n == CM_HOST_MAX_TABLES)
        return KILN_ELIMIT;
    h->t[h->n].fns = fns;
    h->t[h->n].n = n;
    h->t[h->n].ud = ud;
    h->n++;
    return KILN_OK;
}

static bool iface_matches(const char *want, const char *have)
{
    if (want == NULL || have == NULL)
        return want == have;
    if (strchr(want, '@') != NULL)
        return strcmp(want, have) == 0;
    size_t n = strlen(want);
    return strncmp(want, have, n) == 0 && (have[n] == '\0' || have[n] == '@');
}

/* cm_host_find, also giving the table's index. */
static const cm_host_fn *host_find(const cm_host *h, const char *iface, const char *name,
                                   uint32_t *table)
{
    for (size_t i = h ? h->n : 0; i-- > 0;)
        for (size_t j = 0; j < h->t[i].n; j++) {
            const cm_host_fn *f = &h->t[i].fns[j];
            if (iface_matches(f->iface, iface) &&
                (strcmp(f->name, name) == 0 || strcmp(f->name, "*") == 0)) {
                *table = (uint32_t)i;
                return f;
            }
        }
    return NULL;
}

const cm_host_fn *cm_host_find(const cm_host *h, const char *iface, const char *name, void **ud)
{
    uint32_t t;
    const cm_host_fn *f = host_find(h, iface, name, &t);
    if (f != NULL)
        *ud = h->t[t].ud;
    return f;
}

/* ---- handles -------------------------------------------------------------- */

static bool same_resource(const cm_type *a, const cm_type *b)
{
    return a == b || (a != NULL && b != NULL && a->kind == CM_RESOURCE &&
                      b->kind == CM_RESOURCE && a->id == b->id);
}

static const char *rname(const cm_type *rt)
{
    return rt && rt->name ? rt->name : "resource";
}

int cm_handles_add(cm_handles *t, const cm_type *rt, uint32_t rep, bool own, uint32_t *out,
                   kiln_err *err)
{
    uint32_t i = t->free_head;
    if (i != 0) {
        t->free_head = t->h[i].rep; /* free slots chain through rep */
    } else {
        if (t->n == 0)
            t->n = 1; /* handle 0 is never valid */
        if (t->n >= CM_MAX_HANDLES)
            return kiln_err_set(err, KILN_ETRAP, "canonical ABI: more than %d live resource "
                                "handles", CM_MAX_HANDLES);
        if (t->n >= t->cap) {
            uint32_t cap = t->cap ? t->cap * 2 : 16;
            cm_handle *h = kiln_realloc(t->h, cap * sizeof(*h));
            if (h == NULL)
                return kiln_err_set(err, KILN_ENOMEM, "out of memory for resource handles");
            t->h = h;
            t->cap = cap;
        }
        i = t->n++;
    }
    t->h[i] = (cm_handle){.rt = rt, .rep = rep, .own = own};
    *out = i;
    return KILN_OK;
}

int cm_handles_get(cm_handles *t, uint32_t h, const cm_type *rt, cm_handle **out, kiln_err *err)
{
    if (h == 0 || h >= t->n || t->h[h].rt == NULL)
        return kiln_err_set(err, KILN_ETRAP, "canonical ABI: %s handle %u is not live (never "
                            "created, or already dropped)", rname(rt), (unsigned)h);
    if (rt != NULL && !same_resource(t->h[h].rt, rt))
        return kiln_err_set(err, KILN_ETRAP, "canonical ABI: handle %u is a %s, not a %s",
                            (unsigned)h, rname(t->h[h].rt), rname(rt));
    *out = &t->h[h];
    return KILN_OK;
}

int cm_handles_remove(cm_handles *t, uint32_t h, const cm_type *rt, cm_handle *out, kiln_err *err)
{
    cm_handle *e;
    int rc = cm_handles_get(t, h, rt, &e, err);
    if (rc != KILN_OK)
        return rc;
    if (e->lends > 0)
        return kiln_err_set(err, KILN_ETRAP, "canonical ABI: %s handle %u is dropped while "
                            "%u borrow%s of it are live", rname(rt), (unsigned)h,
                            (unsigned)e->lends, e->lends > 1 ? "s" : "");
    if (!e->own && e->scope != NULL)
        (*e->scope)--; /* the borrow ends within its call */
    *out = *e;
    e->rt = NULL;
    e->rep = t->free_head;
    t->free_head = h;
    return KILN_OK;
}

void cm_handles_free(cm_handles *t)
{
    kiln_free(t->h);
    memset(t, 0, sizeof(*t));
}

/* Forget `scope` in the borrows still naming it (its call failed or
 * trapped: they are never dropped, and the count dies with the call). */
static void handles_unscope(cm_handles *t, const uint32_t *scope)
{
    for (uint32_t i = 1; i < t->n; i++)
        if (t->h[i].rt != NULL && t->h[i].scope == scope)
            t->h[i].scope = NULL;
}

/* ---- guest memory, realloc and handles for a lift or lower ---------------- */

#define LENT_INLINE 8

typedef struct opts_cx {
    cm_inst *ci;
    kiln_instance *realloc_inst;
    const char *realloc_name;
    wasm_rt_memory_t *memory;
    /* Lowering a call's arguments into the callee: the call's count of
     * borrows not yet dropped (Task.num_borrows), or NULL; and the callee's
     * component instance (cm_func.owner). */
    uint32_t *scope;
    uint32_t owner;
    /* Lifting a call's arguments from the caller: the handles it lends
     * for the call (Subtask.lenders), released by lends_release. */
    uint32_t *lent, n_lent, cap_lent;
    uint32_t lent_inline[LENT_INLINE];
} opts_cx;

static int lend(cm_cx *cx, opts_cx *o, cm_handle *e, uint32_t h)
{
    if (o->n_lent == o->cap_lent) {
        uint32_t cap = o->cap_lent * 2;
        uint32_t *l = cm_arena_alloc(cx->arena, cap * sizeof(*l));
        if (l == NULL)
            return kiln_err_set(cx->err, KILN_ENOMEM, "out of memory for lent handles");
        memcpy(l, o->lent, o->n_lent * sizeof(*l));
        o->lent = l;
        o->cap_lent = cap;
    }
    o->lent[o->n_lent++] = h;
    e->lends++;
    return KILN_OK;
}

/* The call lifted with o returned (or failed): its lent handles are the
 * caller's again. */
static void lends_release(opts_cx *o)
{
    cm_handles *t = &o->ci->handles;
    for (uint32_t i = 0; i < o->n_lent; i++) {
        uint32_t h = o->lent[i];
        if (h < t->n && t->h[h].rt != NULL && t->h[h].lends > 0)
            t->h[h].lends--;
    }
    o->n_lent = 0;
}

/* cm_cx.handle: lifting takes the guest's handle (own: out of its table;
 * borrow: lent for the call), lowering gives the guest a new one (a borrow
 * counted in the call's scope). */
static int cx_handle(cm_cx *cx, const cm_type *t, bool lift, uint32_t in, uint32_t *out)
{
    opts_cx *o = cx->ud;
    cm_inst *ci = o->ci;
    const cm_type *rt = t->elem;
    if (lift) {
        if (t->kind == CM_OWN) {
            cm_handle e;
            int rc = cm_handles_remove(&ci->handles, in, rt, &e, cx->err);
            if (rc == KILN_OK && !e.own)
                rc = kiln_err_set(cx->err, KILN_ETRAP, "canonical ABI: a borrowed %s handle "
                                  "passed where ownership is required", rname(rt));
            *out = e.rep;
            return rc;
        }
        cm_handle *e;
        int rc = cm_handles_get(&ci->handles, in, rt, &e, cx->err);
        if (rc == KILN_OK)
            rc = lend(cx, o, e, in);
        if (rc == KILN_OK)
            *out = e->rep;
        return rc;
    }
    if (t->kind == CM_BORROW && o->scope != NULL && rt->has_impl && rt->impl == o->owner) {
        *out = in; /* a borrow given to the resource's implementer is its rep */
        return KILN_OK;
    }
    int rc = cm_handles_add(&ci->handles, rt, in, t->kind == CM_OWN, out, cx->err);
    if (rc == KILN_OK && t->kind == CM_BORROW && o->scope != NULL) {
        ci->handles.h[*out].scope = o->scope;
        (*o->scope)++;
    }
    return rc;
}

static void refresh(cm_cx *cx)
{
    opts_cx *o = cx->ud;
    cx->mem = o->memory ? o->memory->data : NULL;
    cx->mem_len = o->memory ? o->memory->size : 0;
}

static int opts_realloc(cm_cx *cx, uint32_t old_ptr, uint32_t old_size, uint32_t align,
                        uint32_t new_size, uint32_t *out)
{
    opts_cx *o = cx->ud;
    if (o->realloc_name == NULL)
        return kiln_err_set(cx->err, KILN_ETRAP, "canonical ABI: no realloc for this call");
    kiln_value args[4] = {{.i32 = old_ptr}, {.i32 = old_size}, {.i32 = align}, {.i32 = new_size}};
    kiln_value res[1];
    int rc = kiln_instance_call(o->realloc_inst, o->realloc_name, "iiii>i", args, res, cx->err);
    if (rc != KILN_OK)
        return rc;
    refresh(cx);
    *out = res[0].i32;
    return KILN_OK;
}

static int core_alias(cm_inst *ci, uint32_t core_func, kiln_instance **inst, const char **name,
                      kiln_err *err)
{
    const cm_core_func *f = ci->c->space[CM_SORT_CORE_FUNC][core_func];
    if (f->how != CM_CORE_ALIAS || f->instance >= ci->n_core || ci->core[f->instance] == NULL)
        return kiln_err_set(err, KILN_EUNSUPPORTED, "core function %u is not an export of an "
                            "instantiated core module", (unsigned)core_func);
    *inst = ci->core[f->instance];
    *name = f->name;
    return KILN_OK;
}

static int opts_setup(cm_inst *ci, const cm_opts *opts, opts_cx *o, cm_cx *cx, cm_arena *arena,
                      kiln_err *err)
{
    memset(o, 0, sizeof(*o));
    o->ci = ci;
    o->lent = o->lent_inline;
    o->cap_lent = LENT_INLINE;
    if (opts->has_memory) {
        const cm_core_item *it = ci->c->space[CM_SORT_CORE_MEMORY][opts->memory];
        kiln_instance *mi = it->instance < ci->n_core ? ci->core[it->instance] : NULL;
        o->memory = mi ? kiln_instance_export_object(mi, it->name, KILN_EXTERN_MEMORY) : NULL;
        if (o->memory == NULL)
            return kiln_err_set(err, KILN_EUNSUPPORTED, "memory '%s' of core instance %u is "
                                "not available", it->name, (unsigned)it->instance);
    }
    if (opts->has_realloc) {
        int rc = core_alias(ci, opts->realloc, &o->realloc_inst, &o->realloc_name, err);
        if (rc != KILN_OK)
            return rc;
    }
    *cx = (cm_cx){.encoding = opts->encoding, .realloc = opts_realloc, .ud = o,
                  .handle = cx_handle, .arena = arena, .err = err};
    refresh(cx);
    return KILN_OK;
}

/* ---- lowered imports and resource built-ins -------------------------------- */

static void lowered_dispatch(ffi_cif *cif, void *ret, void **args, void *user)
{
    cm_lowered *l = user;
    kiln_instance *caller = *(kiln_instance **)args[0];
    cm_inst *ci = kiln_instance_state(caller, KILN_STATE_COMPONENT);
    if (ci == NULL)
        kiln_host_trap(caller, KILN_TRAP_HOST, "canonical ABI: a lowered function called from "
                       "a core instance that belongs to no component instance");
    cm_flat in[MAX_CORE_PARAMS];
    for (uint32_t i = 0; i < l->n_in; i++) {
        in[i].t = l->sig[i];
        switch (l->sig[i]) {
        case 'i': in[i].v.i32 = *(uint32_t *)args[i + 1]; break;
        case 'j': in[i].v.i64 = *(uint64_t *)args[i + 1]; break;
        case 'f': in[i].v.f32 = *(float *)args[i + 1]; break;
        default: in[i].v.f64 = *(double *)args[i + 1]; break;
        }
    }
    kiln_err err = {0};
    int rc = KILN_OK;
    cm_flat out = {0};
    uint32_t n_out = 0;
    const cm_core_func *cf = l->cf;
    if (cf->how == CM_CORE_RESOURCE_NEW) {
        uint32_t h = 0;
        rc = cm_handles_add(&ci->handles, cf->resource, in[0].v.i32, true, &h, &err);
        out = (cm_flat){.t = 'i', .v.i32 = h};
        n_out = 1;
    } else if (cf->how == CM_CORE_RESOURCE_REP) {
        cm_handle *e;
        rc = cm_handles_get(&ci->handles, in[0].v.i32, cf->resource, &e, &err);
        out = (cm_flat){.t = 'i', .v.i32 = rc == KILN_OK ? e->rep : 0};
        n_out = 1;
    } else if (cf->how == CM_CORE_RESOURCE_DROP) {
        cm_handle e;
        rc = cm_handles_remove(&ci->handles, in[0].v.i32, cf->resource, &e, &err);
        /* Dropping an own handle of a resource this component defines runs
         * its destructor with the rep (host resources have none: WASI's
         * are static). */
        if (rc == KILN_OK && e.own && cf->resource->has_dtor) {
            kiln_instance *di;
            const char *dname;
            kiln_value arg = {.i32 = e.rep};
            rc = core_alias(ci, cf->resource->dtor, &di, &dname, &err);
            if (rc == KILN_OK)
                rc = kiln_instance_call(di, dname, "i>", &arg, NULL, &err);
        } else if (rc == KILN_OK && e.own && l->hf != NULL) {
            /* A host resource: its `[resource-drop]NAME` entry frees what
             * the rep stands for (an open file, a stream's position). */
            cm_val arg = {.kind = CM_OWN, .u = e.rep};
            kiln_instance *outer_caller = ci->caller;
            ci->caller = caller;
            rc = l->hf->fn(ci, ci->ud[l->table], NULL, &arg, NULL, &err);
            ci->caller = outer_caller;
        }
    } else {
        cm_arena *arena = cm_arena_new();
        cm_val *vals = arena ? cm_arena_alloc(arena, (l->ft->n + 1) * sizeof(cm_val)) : NULL;
        opts_cx o = {.ci = ci}; /* lends_release is a no-op until opts_setup */
        cm_cx cx;
        cm_val result = {0};
        if (vals == NULL)
            rc = kiln_err_set(&err, KILN_ENOMEM, "out of memory");
        if (rc == KILN_OK)
            rc = opts_setup(ci, &cf->opts, &o, &cx, arena, &err);
        uint32_t np = cm_params_flat_count(l->ft);
        if (rc == KILN_OK)
            rc = cm_lift_params(&cx, l->ft, in, np, vals);
        if (rc == KILN_OK) {
            kiln_instance *outer_caller = ci->caller;
            cm_arena *outer_arena = ci->call_arena;
            ci->caller = caller;
            ci->call_arena = arena;
            /* A lowered lift is a component-to-component call: the
             * values lifted from the caller's memory are lowered into the
             * callee's, and its results lifted back (cm_nest.c). */
            rc = l->lift != NULL ? cm_inst_call(ci, l->lift, vals, arena, &result, &err)
                                 : l->hf->fn(ci, ci->ud[l->table], l->ft, vals, &result, &err);
            ci->caller = outer_caller;
            ci->call_arena = outer_arena;
            lends_release(&o); /* the borrows it was given ended with the call */
            if (rc == KILN_EEXIT) {
                cm_arena_free(arena);
                kiln_host_exit(caller, ci->exit_code);
            }
        }
        if (rc == KILN_OK) {
            refresh(&cx);
            rc = cm_lower_results(&cx, l->ft, &result, np < l->n_in ? in[np].v.i32 : 0, &out,
                                  &n_out);
        }
        lends_release(&o); /* lifting failed part-way: what it lent */
        cm_arena_free(arena);
    }
    if (rc != KILN_OK)
        kiln_host_trap(caller, KILN_TRAP_HOST, "%s", err.msg[0] ? err.msg : kiln_strerror(rc));
    /* Nothing is held here: a host function that waited (a WASI 0.2 poll)
     * returned early at the deadline or on a cancelled request, and this
     * is where the guest is unwound for it. */
    kiln_host_checkpoint(caller);
    if (l->ret == 0)
        return;
    switch (l->ret) {
    case 'i': *(ffi_arg *)ret = (ffi_arg)out.v.i32; break;
    case 'j': *(uint64_t *)ret = out.v.i64; break;
    case 'f': *(float *)ret = out.v.f32; break;
    default: *(double *)ret = out.v.f64; break;
    }
    (void)cif;
}

static ffi_type *ffi_of(char t)
{
    return t == 'i' ? &ffi_type_uint32 : t == 'j' ? &ffi_type_uint64 : t == 'f' ? &ffi_type_float
                                                                           : &ffi_type_double;
}

/* The host's `[resource-drop]NAME` for resource type rt, when rt is a type
 * export NAME of an imported instance (a host resource) and the registry
 * has that exact entry ("*" does not match drops); else NULL. */
static const cm_host_fn *host_drop(const cm_component *c, const cm_host *h, const cm_type *rt,
                                   uint32_t *table)
{
    for (uint32_t i = 0; i < c->n_imports; i++) {
        const cm_extern *im = &c->imports[i];
        if (im->sort != CM_SORT_INSTANCE || im->type == NULL)
            continue;
        for (uint32_t j = 0; j < im->type->n_exports; j++) {
            const cm_extern *ex = &im->type->exports[j];
            if (ex->sort != CM_SORT_TYPE || !same_resource(ex->type, rt))
                continue;
            char name[CM_MAX_NAME + 32];
            snprintf(name, sizeof(name), "[resource-drop]%s", ex->name);
            for (size_t t = h ? h->n : 0; t-- > 0;)
                for (size_t k = 0; k < h->t[t].n; k++) {
                    const cm_host_fn *f = &h->t[t].fns[k];
                    if (iface_matches(f->iface, im->name) && strcmp(f->name, name) == 0) {
                        *table = (uint32_t)t;
                        return f;
                    }
                }
            break; /* an interface that only `use`s it: look further */
        }
    }
    return NULL;
}

/* The component import behind component function `fi`: its interface (NULL
 * for a direct import) and name. */
static int import_of(const cm_component *c, uint32_t fi, const char **iface, const char **name)
{
    const cm_func *f = c->space[CM_SORT_FUNC][fi];
    if (f->how == CM_FUNC_IMPORT) {
        *iface = NULL;
        *name = f->name;
        return f->name ? KILN_OK : KILN_ENOENT;
    }
    if (f->how != CM_FUNC_ALIAS)
        return KILN_ENOENT;
    for (uint32_t i = 0; i < c->n_imports; i++)
        if (c->imports[i].sort == CM_SORT_INSTANCE && c->imports[i].index == f->instance) {
            *iface = c->imports[i].name;
            *name = f->name;
            return KILN_OK;
        }
    return KILN_ENOENT;
}

static int make_lowered(cm_plan *p, const cm_host *host, uint32_t idx, cm_lowered **out,
                        kiln_err *err)
{
    if (p->lowered[idx] != NULL) {
        *out = p->lowered[idx];
        return KILN_OK;
    }
    const cm_core_func *cf = p->c->space[CM_SORT_CORE_FUNC][idx];
    cm_lowered *l = kiln_calloc(1, sizeof(*l));
    if (l == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    p->lowered[idx] = l;
    l->cf = cf;
    uint32_t k = 0;
    if (cf->how == CM_CORE_LOWER) {
        const cm_func *f = p->c->space[CM_SORT_FUNC][cf->func];
        const char *iface = NULL, *name = NULL;
        l->ft = f->type;
        if (cf->opts.async)
            return kiln_err_set(err, KILN_EUNSUPPORTED, "async lowers are not implemented");
        if (f->how == CM_FUNC_LIFT) {
            l->lift = f;
            iface = "(component)";
            name = "(lifted function)";
        } else if (import_of(p->c, cf->func, &iface, &name) != KILN_OK) {
            return kiln_err_set(err, KILN_EUNSUPPORTED, "a lowered function that is neither an "
                                "import of the component nor lifted by one of its components");
        }
        if (l->lift == NULL)
            l->hf = host_find(host, iface, name, &l->table);
        if (l->hf == NULL && l->lift == NULL)
            return kiln_err_set(err, KILN_EIMPORT, "import %s%s%s is not provided by Kiln",
                                iface ? iface : "", iface ? "#" : "", name);
        if (cm_check_supported(l->ft, err) != KILN_OK)
            return kiln_err_set(err, KILN_EUNSUPPORTED, "import %s%s%s: %s", iface ? iface : "",
                                iface ? "#" : "", name, err->msg);
        /* parameters: flat, or one i32 (the tuple's address) when spilled */
        char flat[CM_MAX_FLAT_PARAMS + 1];
        uint32_t np = 0;
        bool spill = false;
        for (uint32_t i = 0; i < l->ft->n && !spill; i++) {
            char tmp[CM_MAX_FLAT + 1];
            uint32_t n = cm_flatten(l->ft->f[i].type, tmp, CM_MAX_FLAT);
            if (n > CM_MAX_FLAT || np + n > CM_MAX_FLAT_PARAMS)
                spill = true;
            else
                memcpy(flat + np, tmp, n), np += n;
        }
        if (spill)
            flat[0] = 'i', np = 1;
        for (uint32_t i = 0; i < np; i++)
            l->sig[k++] = flat[i];
        if (cm_results_spill(l->ft)) {
            l->sig[k++] = 'i';
        } else if (l->ft->elem != NULL) {
            char rf[CM_MAX_FLAT + 1];
            cm_flatten(l->ft->elem, rf, CM_MAX_FLAT);
            l->ret = rf[0];
        }
    } else {
        l->sig[k++] = 'i';
        if (cf->how != CM_CORE_RESOURCE_DROP)
            l->ret = 'i';
        else if (!cf->resource->has_dtor)
            l->hf = host_drop(p->c, host, cf->resource, &l->table);
    }
    l->n_in = k;
    l->args[0] = &ffi_type_pointer;
    for (uint32_t i = 0; i < k; i++)
        l->args[i + 1] = ffi_of(l->sig[i]);
    l->sig[k] = '>';
    if (l->ret)
        l->sig[k + 1] = l->ret;
    ffi_type *rt = l->ret ? ffi_of(l->ret) : &ffi_type_void;
    bool built = ffi_prep_cif(&l->cif, FFI_DEFAULT_ABI, k + 1, rt, l->args) == FFI_OK;
    if (built)
        l->closure = ffi_closure_alloc(sizeof(ffi_closure), &l->code);
    built = built && l->closure != NULL &&
            ffi_prep_closure_loc(l->closure, &l->cif, lowered_dispatch, l, l->code) == FFI_OK;
    if (!built)
        return kiln_err_set(err, KILN_ENOMEM, "cannot build a native entry for signature %s",
                            l->sig);
    l->hostfn.type = l->sig;
    l->hostfn.fn = (void (*)(void))l->code;
    *out = l;
    return KILN_OK;
}

/* ---- loading once, checking imports ---------------------------------------- */

int cm_mods_load(const cm_component *c, const uint8_t *buf, const char *display,
                 const kiln_aot_options *aot, cm_mods **out, kiln_err *err)
{
    *out = NULL;
    uint32_t n = c->n_space[CM_SORT_CORE_MODULE];
    cm_mods *m = kiln_calloc(1, sizeof(*m));
    if (m == NULL || (m->mod = kiln_calloc(n + 1, sizeof(*m->mod))) == NULL) {
        kiln_free(m);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    m->n = n;
    kiln_aot_options ao;
    if (aot != NULL)
        ao = *aot;
    else
        memset(&ao, 0, sizeof(ao)), ao.opt_level = -1;
    ao.imports = NULL; /* a core module's imports come from the other core instances */
    for (uint32_t i = 0; i < n; i++) {
        const cm_module *cm = c->space[CM_SORT_CORE_MODULE][i];
        if (cm == NULL)
            continue; /* imported: refused when instantiated */
        char name[300];
        snprintf(name, sizeof(name), "%.200s#module%u", display, (unsigned)i);
        kiln_aot_result res;
        int rc = kiln_aot_compile(buf + cm->offset, cm->len, name, &ao, &res, err);
        if (rc == KILN_OK)
            rc = kiln_module_load(res.so_path, name, &m->mod[i], err);
        if (rc != KILN_OK) {
            cm_mods_free(m);
            return rc;
        }
    }
    *out = m;
    return KILN_OK;
}

void cm_mods_free(cm_mods *m)
{
    if (m == NULL)
        return;
    for (uint32_t i = 0; i < m->n; i++)
        if (m->mod[i] != NULL)
            kiln_module_release(m->mod[i]);
    kiln_free(m->mod);
    kiln_free(m);
}

int cm_check_imports(const cm_component *c, const cm_host *host, kiln_err *err)
{
    for (uint32_t i = 0; i < c->n_space[CM_SORT_CORE_FUNC]; i++) {
        const cm_core_func *cf = c->space[CM_SORT_CORE_FUNC][i];
        if (cf->how != CM_CORE_LOWER)
            continue;
        const char *iface = NULL, *name = NULL;
        const cm_func *f = c->space[CM_SORT_FUNC][cf->func];
        if (f->how == CM_FUNC_LIFT)
            continue; /* a component-to-component call (cm_nest.c) */
        if (import_of(c, cf->func, &iface, &name) != KILN_OK)
            return kiln_err_set(err, KILN_EUNSUPPORTED, "a lowered function that is neither an "
                                "import of the component nor lifted by one of its components");
        void *ud;
        if (cm_host_find(host, iface, name, &ud) == NULL)
            return kiln_err_set(err, KILN_EIMPORT, "import %s%s%s is not provided by Kiln",
                                iface ? iface : "", iface ? "#" : "", name);
    }
    return KILN_OK;
}

/* ---- instantiation ---------------------------------------------------------- */

static int define_item(cm_plan *p, const cm_host *host, kiln_linker *lk, const char *module,
                       const cm_core_arg *a, kiln_err *err)
{
    const cm_component *c = p->c;
    static const kiln_extern_kind kinds[] = {
        [CM_SORT_CORE_FUNC] = KILN_EXTERN_FUNC, [CM_SORT_CORE_TABLE] = KILN_EXTERN_TABLE,
        [CM_SORT_CORE_MEMORY] = KILN_EXTERN_MEMORY, [CM_SORT_CORE_GLOBAL] = KILN_EXTERN_GLOBAL};
    uint32_t src = UINT32_MAX;
    const char *src_name = NULL;
    if (a->sort == CM_SORT_CORE_FUNC) {
        const cm_core_func *f = c->space[CM_SORT_CORE_FUNC][a->index];
        if (f->how != CM_CORE_ALIAS) {
            cm_lowered *l = NULL;
            int rc = make_lowered(p, host, a->index, &l, err);
            if (rc != KILN_OK)
                return rc;
            /* One table entry per (module, name) use; it must outlive the
             * linker, so the plan keeps it. */
            kiln_hostfn *h = kiln_malloc(sizeof(*h));
            void *v = h ? kiln_realloc(p->hostfns, (p->n_hostfns + 1) * sizeof(*p->hostfns)) : NULL;
            if (v == NULL) {
                kiln_free(h);
                return kiln_err_set(err, KILN_ENOMEM, "out of memory");
            }
            p->hostfns = v;
            p->hostfns[p->n_hostfns++] = h;
            *h = l->hostfn;
            h->module = module;
            h->name = a->name;
            return kiln_linker_define_host(lk, h, 1);
        }
        src = f->instance;
        src_name = f->name;
    } else if (a->sort == CM_SORT_CORE_TABLE || a->sort == CM_SORT_CORE_MEMORY ||
               a->sort == CM_SORT_CORE_GLOBAL) {
        const cm_core_item *it = c->space[a->sort][a->index];
        src = it->instance;
        src_name = it->name;
    } else {
        return kiln_err_set(err, KILN_EUNSUPPORTED, "inline core export '%s' of a %s", a->name,
                            cm_sort_name(a->sort));
    }
    if (src >= p->n_core || p->pres[src] == NULL)
        return kiln_err_set(err, KILN_EUNSUPPORTED, "core export '%s' comes from an instance "
                            "that is not instantiated", src_name);
    /* Bound per request to that core instance (kiln_instance_new_args with
     * the request's core instances as arguments, by index). */
    int rc = kiln_linker_define_arg_export(lk, module, a->name, p->mods[src], src, src_name,
                                           kinds[a->sort]);
    if (rc == KILN_ENOENT)
        return kiln_err_set(err, rc, "core instance has no %s export '%s'",
                            cm_sort_name(a->sort), src_name);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "cannot link core export '%s': %s", src_name,
                            kiln_strerror(rc));
    return KILN_OK;
}

/* Link core instance i once: its module, a linker whose instance arguments
 * are placeholders for the request's earlier core instances, the pre. */
static int plan_instance(cm_plan *p, const cm_mods *mods, const cm_host *host, uint32_t i,
                         kiln_err *err)
{
    const cm_component *c = p->c;
    const cm_core_instance *inst = c->space[CM_SORT_CORE_INSTANCE][i];
    if (!inst->instantiate)
        return KILN_OK; /* a bag of inline exports: resolved where it is used */
    const cm_module *m = c->space[CM_SORT_CORE_MODULE][inst->module];
    if (m == NULL || inst->module >= mods->n || mods->mod[inst->module] == NULL)
        return kiln_err_set(err, KILN_EUNSUPPORTED, "core instance %u instantiates an imported "
                            "core module; only embedded modules are supported", (unsigned)i);
    p->mods[i] = kiln_module_retain(mods->mod[inst->module]);
    int rc = KILN_OK;
    if (kiln_linker_new(&p->linkers[i]) != KILN_OK)
        rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
    for (uint32_t a = 0; rc == KILN_OK && a < inst->n; a++) {
        const cm_core_arg *arg = &inst->args[a];
        const cm_core_instance *src = c->space[CM_SORT_CORE_INSTANCE][arg->index];
        if (src->instantiate) {
            if (arg->index >= i || p->pres[arg->index] == NULL)
                rc = kiln_err_set(err, KILN_EUNSUPPORTED, "argument '%s' of core instance %u "
                                  "is not instantiated", arg->name, (unsigned)i);
            else if (kiln_linker_define_arg(p->linkers[i], arg->name, p->mods[arg->index],
                                            arg->index) != KILN_OK)
                rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
            continue;
        }
        for (uint32_t e = 0; rc == KILN_OK && e < src->n; e++)
            rc = define_item(p, host, p->linkers[i], arg->name, &src->args[e], err);
    }
    if (rc == KILN_OK)
        rc = kiln_instance_pre_new(p->mods[i], p->linkers[i], &p->pres[i], err);
    if (rc != KILN_OK && err->msg[0] == '\0')
        kiln_err_set(err, rc, "core instance %u: %s", (unsigned)i, kiln_strerror(rc));
    return rc;
}

int cm_plan_new(const cm_component *c, const uint8_t *buf, const char *display,
                const cm_mods *mods, const cm_host *host, cm_plan **out, kiln_err *err)
{
    *out = NULL;
    cm_plan *p = kiln_calloc(1, sizeof(*p));
    if (p == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    p->c = c;
    p->buf = buf;
    p->display = kiln_strdup(display ? display : "component");
    p->n_core = c->n_space[CM_SORT_CORE_INSTANCE];
    uint32_t nf = c->n_space[CM_SORT_CORE_FUNC];
    p->mods = kiln_calloc(p->n_core + 1, sizeof(*p->mods));
    p->pres = kiln_calloc(p->n_core + 1, sizeof(*p->pres));
    p->linkers = kiln_calloc(p->n_core + 1, sizeof(*p->linkers));
    p->lowered = kiln_calloc(nf + 1, sizeof(*p->lowered));
    if (!p->display || !p->mods || !p->pres || !p->linkers || !p->lowered) {
        cm_plan_free(p);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t t = 0; host != NULL && t < host->n; t++)
        p->tables[p->n_tables++] = host->t[t].fns;
    int rc = KILN_OK;
    if (mods == NULL) {
        rc = cm_mods_load(c, buf, p->display, NULL, &p->own_mods, err);
        mods = p->own_mods;
    }
    for (uint32_t i = 0; rc == KILN_OK && i < p->n_core; i++)
        rc = plan_instance(p, mods, host, i, err);
    if (rc != KILN_OK) {
        cm_plan_free(p);
        return rc;
    }
    *out = p;
    return KILN_OK;
}

void cm_plan_free(cm_plan *p)
{
    if (p == NULL)
        return;
    for (uint32_t i = p->n_core; i-- > 0;) {
        if (p->pres)
            kiln_instance_pre_free(p->pres[i]);
        if (p->linkers)
            kiln_linker_free(p->linkers[i]);
        if (p->mods && p->mods[i])
            kiln_module_release(p->mods[i]);
    }
    uint32_t nf = p->c->n_space[CM_SORT_CORE_FUNC];
    for (uint32_t i = 0; p->lowered && i < nf; i++)
        if (p->lowered[i]) {
            if (p->lowered[i]->closure)
                ffi_closure_free(p->lowered[i]->closure);
            kiln_free(p->lowered[i]);
        }
    for (uint32_t i = 0; i < p->n_hostfns; i++)
        kiln_free(p->hostfns[i]);
    kiln_free(p->hostfns);
    kiln_free(p->mods);
    kiln_free(p->pres);
    kiln_free(p->linkers);
    kiln_free(p->lowered);
    cm_mods_free(p->own_mods);
    kiln_free(p->display);
    kiln_free(p);
}

int cm_inst_new(const cm_component *c, const uint8_t *buf, const char *display,
                const kiln_limits *limits, const cm_host *host, void *const *state,
                cm_inst **out, kiln_err *err)
{
    return cm_inst_new_loaded(c, buf, display, NULL, limits, host, state, out, err);
}

int cm_inst_new_loaded(const cm_component *c, const uint8_t *buf, const char *display,
                       const cm_mods *mods, const kiln_limits *limits, const cm_host *host,
                       void *const *state, cm_inst **out, kiln_err *err)
{
    *out = NULL;
    cm_plan *p;
    int rc = cm_plan_new(c, buf, display, mods, host, &p, err);
    if (rc != KILN_OK)
        return rc;
    rc = cm_inst_new_plan(p, limits, host, state, out, err);
    if (rc != KILN_OK) {
        cm_plan_free(p);
        return rc;
    }
    (*out)->own_plan = p;
    return KILN_OK;
}

/* A new cm_inst with the plan's registry tables found in `host` (their user
 * data is this instance's), its state, no core instances yet. */
static int inst_alloc(const cm_plan *p, const kiln_limits *limits, const cm_host *host,
                      void *const *state, cm_inst **out, kiln_err *err)
{
    cm_inst *ci = kiln_calloc(1, sizeof(*ci));
    if (ci == NULL || (ci->core = kiln_calloc(p->n_core + 1, sizeof(*ci->core))) == NULL) {
        kiln_free(ci);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    ci->plan = p;
    ci->c = p->c;
    if (limits)
        ci->limits = *limits;
    ci->host = host;
    ci->n_core = p->n_core;
    if (state)
        memcpy(ci->state, state, sizeof(ci->state));
    ci->state[KILN_STATE_COMPONENT] = ci;
    /* No registry (building an image): every host import is refused then. */
    for (uint32_t k = 0; host != NULL && k < p->n_tables; k++) {
        size_t t = host ? host->n : 0;
        while (t-- > 0 && host->t[t].fns != p->tables[k])
            ;
        if (t == (size_t)-1) {
            cm_inst_free(ci);
            return kiln_err_set(err, KILN_EINVAL, "%s: the host registry lacks a table the "
                                "component was linked with; make instances with the registry "
                                "the plan was made with", p->display);
        }
        ci->ud[k] = host->t[t].ud;
    }
    *out = ci;
    return KILN_OK;
}

int cm_inst_new_plan(const cm_plan *p, const kiln_limits *limits, const cm_host *host,
                     void *const *state, cm_inst **out, kiln_err *err)
{
    *out = NULL;
    cm_inst *ci = NULL;
    int rc = inst_alloc(p, limits, host, state, &ci, err);
    for (uint32_t i = 0; rc == KILN_OK && i < p->n_core; i++) {
        if (p->pres[i] == NULL)
            continue;
        rc = kiln_instance_new_args(p->pres[i], &ci->limits, ci->state, ci->core, p->n_core,
                                    &ci->core[i], err);
        if (rc != KILN_OK && err->msg[0] == '\0')
            kiln_err_set(err, rc, "core instance %u: %s", (unsigned)i, kiln_strerror(rc));
    }
    if (rc != KILN_OK) {
        if (ci != NULL)
            cm_inst_free(ci);
        return rc;
    }
    *out = ci;
    return KILN_OK;
}

/* ---- images: the graph instantiated once, every request restored ---------- */

struct cm_image {
    uint32_t n;
    kiln_snapshot **snaps; /* per core instance, NULL for a bag */
};

int cm_image_build(const cm_plan *p, const kiln_limits *limits, void *const *state,
                   cm_image **out, kiln_err *err)
{
    *out = NULL;
    cm_image *img = kiln_calloc(1, sizeof(*img));
    if (img == NULL || (img->snaps = kiln_calloc(p->n_core + 1, sizeof(*img->snaps))) == NULL) {
        kiln_free(img);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    img->n = p->n_core;
    cm_inst *ci = NULL;
    int rc = inst_alloc(p, limits, NULL, state, &ci, err);
    /* Begun in order with every host import refused: start functions (the
     * guest's constructors through `_initialize`), data and element segments
     * run as for a request, and only what can be reproduced is captured. */
    for (uint32_t i = 0; rc == KILN_OK && i < p->n_core; i++) {
        if (p->pres[i] == NULL)
            continue;
        rc = kiln_snapshot_begin_args(p->pres[i], &ci->limits, ci->state, ci->core, p->n_core,
                                      NULL, 0, &ci->core[i], err);
        if (rc != KILN_OK)
            kiln_err_prefix(err, "core instance %u", (unsigned)i);
    }
    /* Captured once all exist: a shim's table holds the fixup's functions. */
    for (uint32_t i = 0; rc == KILN_OK && i < p->n_core; i++) {
        if (ci->core[i] == NULL)
            continue;
        rc = kiln_snapshot_capture_graph(ci->core, p->n_core, i, &img->snaps[i], err);
        if (rc != KILN_OK)
            kiln_err_prefix(err, "core instance %u", (unsigned)i);
    }
    cm_inst_free(ci);
    if (rc != KILN_OK) {
        cm_image_free(img);
        return rc;
    }
    *out = img;
    return KILN_OK;
}

void cm_image_free(cm_image *img)
{
    if (img == NULL)
        return;
    for (uint32_t i = 0; i < img->n; i++)
        kiln_snapshot_free(img->snaps[i]);
    kiln_free(img->snaps);
    kiln_free(img);
}

void cm_image_info(const cm_image *img, uint32_t *n_core, uint64_t *image_bytes)
{
    *n_core = 0;
    *image_bytes = 0;
    for (uint32_t i = 0; i < img->n; i++) {
        if (img->snaps[i] == NULL)
            continue;
        kiln_snapshot_info si;
        kiln_snapshot_info_get(img->snaps[i], &si);
        (*n_core)++;
        *image_bytes += si.image_bytes;
    }
}

int cm_inst_new_image(const cm_plan *p, const cm_image *img, const kiln_limits *limits,
                      const cm_host *host, void *const *state, cm_inst **out, kiln_err *err)
{
    *out = NULL;
    if (img->n != p->n_core)
        return kiln_err_set(err, KILN_EINVAL, "%s: the image is of another component",
                            p->display);
    cm_inst *ci = NULL;
    int rc = inst_alloc(p, limits, host, state, &ci, err);
    if (rc == KILN_OK)
        rc = kiln_snapshot_graph_restore((const kiln_snapshot *const *)img->snaps, img->n,
                                         &ci->limits, ci->state, ci->core, err);
    if (rc != KILN_OK) {
        cm_inst_free(ci);
        return rc;
    }
    *out = ci;
    return KILN_OK;
}

void cm_inst_free(cm_inst *ci)
{
    if (ci == NULL)
        return;
    /* Later instances link against earlier ones: free in reverse. */
    for (uint32_t i = ci->n_core; i-- > 0;)
        if (ci->core)
            kiln_instance_free(ci->core[i]);
    kiln_free(ci->core);
    cm_handles_free(&ci->handles);
    cm_plan_free(ci->own_plan);
    kiln_free(ci);
}

kiln_instance *cm_inst_core(cm_inst *ci, uint32_t i)
{
    return i < ci->n_core ? ci->core[i] : NULL;
}

int cm_inst_exit_code(const cm_inst *ci)
{
    return ci->exit_code;
}

void cm_inst_set_exit(cm_inst *ci, int code)
{
    ci->exit_code = code;
}

/* ---- calling a lifted export ---------------------------------------------- */

/* cm_inst_call's core call with the lowered arguments; then the borrow
 * check, the result lifted, post-return. */
static int call_core(cm_inst *ci, const cm_func *fn, kiln_instance *inst, const char *name,
                     cm_cx *cx, const cm_flat *flat, uint32_t nflat, const uint32_t *borrows,
                     cm_val *result, kiln_err *err)
{
    const cm_type *ft = fn->type;
    int rc;
    char sig[CM_MAX_FLAT_PARAMS + 4];
    kiln_value cargs[CM_MAX_FLAT_PARAMS], cres[1];
    size_t k = 0;
    for (uint32_t i = 0; i < nflat; i++) {
        sig[k++] = flat[i].t;
        cargs[i] = flat[i].v;
    }
    sig[k++] = '>';
    uint32_t nres = 0;
    char rt = 0;
    if (ft->elem != NULL) {
        char rf[CM_MAX_FLAT + 1];
        rt = cm_results_spill(ft) ? 'i' : (cm_flatten(ft->elem, rf, CM_MAX_FLAT), rf[0]);
        sig[k++] = rt;
        nres = 1;
    }
    sig[k] = '\0';
    rc = kiln_instance_call(inst, name, sig, cargs, cres, err);
    if (rc == KILN_EEXIT || (rc == KILN_ETRAP && err->trap == KILN_TRAP_EXIT)) {
        ci->exit_code = err->exit_code;
        return KILN_EEXIT;
    }
    /* Before the result is taken (Task.return_): the caller may count on
     * having its lent handles back when it sees the result. */
    if (rc == KILN_OK && *borrows != 0)
        return kiln_err_set(err, KILN_ETRAP, "canonical ABI: '%s' returned without dropping "
                            "%u borrowed handle%s it was given (a callee drops every borrow "
                            "before it returns)", name, (unsigned)*borrows,
                            *borrows > 1 ? "s" : "");
    cm_flat fres = {.t = rt, .v = cres[0]};
    if (rc == KILN_OK) {
        refresh(cx);
        rc = cm_lift_results(cx, ft, &fres, nres, result);
    }
    if (rc == KILN_OK && fn->opts.has_post_return) {
        kiln_instance *pi;
        const char *pname;
        rc = core_alias(ci, fn->opts.post_return, &pi, &pname, err);
        char psig[4] = {0};
        if (nres)
            psig[0] = rt, psig[1] = '>';
        else
            psig[0] = '>';
        if (rc == KILN_OK)
            rc = kiln_instance_call(pi, pname, psig, nres ? cres : NULL, NULL, err);
    }
    return rc;
}

int cm_inst_call(cm_inst *ci, const cm_func *fn, const cm_val *args, cm_arena *arena,
                 cm_val *result, kiln_err *err)
{
    const cm_type *ft = fn->type;
    if (fn->how != CM_FUNC_LIFT || fn->opts.async)
        return kiln_err_set(err, KILN_EUNSUPPORTED, "only synchronous lifted functions can be "
                            "called");
    kiln_instance *inst;
    const char *name;
    int rc = core_alias(ci, fn->core_func, &inst, &name, err);
    opts_cx o = {.ci = ci};
    cm_cx cx;
    /* Borrows lowered into the callee for this call, not yet dropped: it
     * must drop every one before it returns (CanonicalABI.md, Task.return_). */
    uint32_t borrows = 0;
    if (rc == KILN_OK)
        rc = opts_setup(ci, &fn->opts, &o, &cx, arena, err);
    o.scope = &borrows;
    o.owner = fn->owner;
    cm_flat flat[CM_MAX_FLAT_PARAMS];
    uint32_t nflat = 0;
    if (rc == KILN_OK)
        rc = cm_lower_params(&cx, ft, args, flat, &nflat);
    if (rc == KILN_OK)
        rc = call_core(ci, fn, inst, name, &cx, flat, nflat, &borrows, result, err);
    if (borrows != 0)
        handles_unscope(&ci->handles, &borrows);
    lends_release(&o); /* none unless a result held a borrow */
    return rc;
}

kiln_instance *cm_inst_caller(cm_inst *ci)
{
    return ci->caller;
}

cm_arena *cm_inst_arena(cm_inst *ci)
{
    return ci->call_arena;
}
