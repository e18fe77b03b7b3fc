/*
 * instance.c - instantiate, call and free. One allocation per instance holds
 * the kiln_instance, its import link and wasm2c's instance struct; memories
 * come from the calling thread's pool (rt_mem.c), so the steady state does
 * no mmap and takes no lock.
 */
#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "runtime/rt_int.h"

_Static_assert(sizeof(kiln_value) == sizeof(kiln_desc_value), "value unions must match");

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

typedef struct call_args {
    kiln_instance *inst;
    const kiln_desc_export *ex;
    const kiln_value *args;
    kiln_value *results;
} call_args;

/* Imported memories the runtime provides per instance are allocated here,
 * inside the guarded entry: the instance is current (its memory limit
 * applies) and a limit trap unwinds like any instantiation trap. */
static void do_instantiate(void *p)
{
    kiln_instance *inst = p;
    const kiln_instance_pre *pre = inst->pre;
    for (uint32_t k = 0; k < pre->n_inst_mems; k++) {
        const rt_inst_mem *im = &pre->inst_mems[k];
        wasm_rt_allocate_memory(&inst->imported_mems[k], im->min_pages, im->max_pages);
        inst->link->slots[im->slot].ctx = &inst->imported_mems[k];
    }
    inst->d->instantiate(inst->wasm, inst->link);
}

static void do_free(void *p)
{
    kiln_instance *inst = p;
    inst->d->free_instance(inst->wasm);
    for (uint32_t k = 0; k < inst->pre->n_inst_mems; k++)
        wasm_rt_free_memory(&inst->imported_mems[k]); /* no-op if never allocated */
}

static bool imports_table(const kiln_descriptor *d)
{
    for (uint32_t i = 0; i < d->n_imports; i++)
        if (d->imports[i].kind == KILN_EXTERN_TABLE)
            return true;
    return false;
}

/* Is every argument the pre links to given, and of the module it named? */
static int args_ok(const kiln_instance_pre *pre, kiln_instance *const *args, uint32_t n_args,
                   kiln_err *err)
{
    for (uint32_t k = 0; k < pre->n_args; k++) {
        if (pre->arg_d[k] == NULL)
            continue;
        if (k >= n_args || args == NULL || args[k] == NULL)
            return kiln_err_set(err, KILN_EINVAL, "%s: instantiation needs the instance it "
                                "links as argument %u (kiln_instance_new_args)", pre->m->name,
                                (unsigned)k);
        if (args[k]->d != pre->arg_d[k])
            return kiln_err_set(err, KILN_EINVAL, "%s: argument %u is an instance of %s, not "
                                "of the module it was linked against", pre->m->name,
                                (unsigned)k, args[k]->pre->m->name);
    }
    return KILN_OK;
}

int rt_instance_bind(kiln_instance *inst, kiln_instance *const *args, uint32_t n_args,
                     kiln_err *err)
{
    const kiln_instance_pre *pre = inst->pre;
    int rc = args_ok(pre, args, n_args, err);
    if (rc != KILN_OK)
        return rc;
    for (uint32_t i = 0; i < pre->n_arg_slots; i++) {
        const rt_arg_slot *as = &pre->arg_slots[i];
        const kiln_instance *a = args[as->arg];
        const kiln_desc_export *ex = &a->d->exports[as->export_index];
        inst->link->slots[as->slot].ctx =
            ex->kind == KILN_EXTERN_FUNC ? a->wasm : ex->object(a->wasm);
    }
    return KILN_OK;
}

kiln_instance *rt_instance_alloc(const kiln_instance_pre *pre, const kiln_limits *limits,
                                 void *const *state, kiln_err *err)
{
    const kiln_descriptor *d = pre->m->d;
    size_t link_size = sizeof(kiln_link) + pre->n_slots * sizeof(kiln_slot);
    size_t mems_size = align16(pre->n_inst_mems * sizeof(wasm_rt_memory_t));
    size_t total = align16(sizeof(kiln_instance)) + align16(link_size) + mems_size +
                   d->instance_size;
    uint8_t *block = kiln_malloc(total);
    if (block == NULL) {
        kiln_err_set(err, KILN_ENOMEM, "%s: out of memory creating an instance", pre->m->name);
        return NULL;
    }
    kiln_instance *inst = (kiln_instance *)block;
    memset(inst, 0, sizeof(*inst));
    inst->pre = pre;
    inst->d = d;
    if (limits)
        inst->limits = *limits;
    if (state)
        memcpy(inst->state, state, sizeof(inst->state));
    inst->link = (kiln_link *)(block + align16(sizeof(kiln_instance)));
    inst->imported_mems = (wasm_rt_memory_t *)(block + align16(sizeof(kiln_instance)) +
                                               align16(link_size));
    memset(inst->imported_mems, 0, mems_size);
    inst->wasm = block + align16(sizeof(kiln_instance)) + align16(link_size) + mems_size;
    /* wasm2c's free must accept a partially instantiated struct: zero it. */
    memset(inst->wasm, 0, d->instance_size);
    inst->link->self = inst->link;
    inst->link->owner = inst;
    for (uint32_t i = 0; i < pre->n_slots; i++) {
        inst->link->slots[i] = pre->slots[i];
        if (pre->ctx_is_self[i])
            inst->link->slots[i].ctx = inst;
    }
    return inst;
}

void rt_instance_discard(kiln_instance *inst)
{
    kiln_err e2;
    rt_guarded(NULL, "free", do_free, inst, &e2);
    rt_rec_free(inst);
    kiln_free(inst);
}

int rt_instance_start(kiln_instance *inst, bool graph, kiln_err *err)
{
    const kiln_descriptor *d = inst->d;
    int rc = rt_guarded(inst, "instantiate", do_instantiate, inst, err);
    if (rc != KILN_OK && graph) {
        /* A member of a graph being imaged: the caller frees the whole
         * graph, table owners included, before anything calls again. */
        rt_instance_discard(inst);
        return rc;
    }
    if (rc != KILN_OK) {
        /* A failed instantiation may already have stored its functions in an
         * imported table, where they stay callable (the spec keeps partial
         * effects). Such an instance must stay alive: it is kept, never
         * freed. Modules without imported tables (every FaaS handler) are
         * released normally. */
        if (!imports_table(d))
            rt_instance_discard(inst);
        return rc;
    }
    inst->instantiated = true;
    inst->mem0 = d->memory0 ? d->memory0(inst->wasm) : NULL;
    return KILN_OK;
}

int kiln_instance_new(const kiln_instance_pre *pre, const kiln_limits *limits, void *const *state,
                      kiln_instance **out, kiln_err *err)
{
    return kiln_instance_new_args(pre, limits, state, NULL, 0, out, err);
}

int kiln_instance_new_args(const kiln_instance_pre *pre, const kiln_limits *limits,
                           void *const *state, kiln_instance *const *args, uint32_t n_args,
                           kiln_instance **out, kiln_err *err)
{
    *out = NULL;
    kiln_instance *inst = rt_instance_alloc(pre, limits, state, err);
    if (inst == NULL)
        return KILN_ENOMEM;
    int brc = rt_instance_bind(inst, args, n_args, err);
    if (brc != KILN_OK) {
        rt_instance_discard(inst);
        return brc;
    }
    /* With arguments the instance is a member of a graph its caller frees
     * whole on failure (a component instance): a failed member is released
     * at once, even when its functions are already in an argument's table.
     * Kept alive instead, every failing request would leak one instance
     * and its memory (a guest could exhaust the address space). */
    int rc = rt_instance_start(inst, args != NULL && n_args != 0, err);
    if (rc == KILN_OK)
        *out = inst;
    return rc;
}
void kiln_instance_free(kiln_instance *inst)
{
    if (inst == NULL)
        return;
    kiln_err e;
    /* wasm2c's free only releases memories and tables; it cannot trap, but
     * it runs runtime code that expects a thread context. */
    rt_guarded(NULL, "free", do_free, inst, &e);
    rt_rec_free(inst);
    kiln_free(inst);
}

static void do_call(void *p)
{
    call_args *a = p;
    a->ex->call(a->inst->wasm, (const kiln_desc_value *)a->args, (kiln_desc_value *)a->results);
}

int kiln_instance_call_index(kiln_instance *inst, int index, const kiln_value *args,
                             kiln_value *results, kiln_err *err)
{
    const kiln_descriptor *d = inst->d;
    if (index < 0 || (uint32_t)index >= d->n_exports || d->exports[index].kind != KILN_EXTERN_FUNC)
        return kiln_err_set(err, KILN_ENOEXPORT, "%s: export #%d is not a function",
                            kiln_module_name(inst->pre->m), index);
    const kiln_desc_export *ex = &d->exports[index];
    if (inst->poisoned)
        return kiln_err_set(err, KILN_ETIMEOUT, "%s: %s: instance was stopped by a timeout and "
                            "cannot be called again; create a new instance",
                            kiln_module_name(inst->pre->m), ex->name);
    call_args a = {inst, ex, args, results};
    return rt_guarded(inst, ex->name, do_call, &a, err);
}

int kiln_instance_call(kiln_instance *inst, const char *name, const char *type,
                       const kiln_value *args, kiln_value *results, kiln_err *err)
{
    int idx = kiln_module_find_export(inst->pre->m, name, KILN_EXTERN_FUNC);
    if (idx < 0)
        return kiln_err_set(err, KILN_ENOEXPORT, "%s: no exported function '%s'; check the export "
                            "name (`kiln inspect` lists them)", kiln_module_name(inst->pre->m), name);
    if (type != NULL && strcmp(type, inst->d->exports[idx].type) != 0)
        return kiln_err_set(err, KILN_ETYPE, "%s: export '%s' has type %s, expected %s",
                            kiln_module_name(inst->pre->m), name, inst->d->exports[idx].type, type);
    return kiln_instance_call_index(inst, idx, args, results, err);
}

kiln_module *kiln_instance_module(const kiln_instance *inst)
{
    return inst->pre->m;
}

void *kiln_instance_state(const kiln_instance *inst, int slot)
{
    return (unsigned)slot < KILN_STATE_SLOTS ? inst->state[slot] : NULL;
}

void kiln_instance_set_limits(kiln_instance *inst, const kiln_limits *limits)
{
    inst->limits = *limits;
}

wasm_rt_memory_t *kiln_instance_memory(kiln_instance *inst)
{
    /* During instantiate (start functions) mem0 is not cached yet. */
    if (inst->mem0 == NULL && inst->d->memory0 != NULL)
        return inst->d->memory0(inst->wasm);
    return inst->mem0;
}

void *kiln_instance_export_object(kiln_instance *inst, const char *name, kiln_extern_kind kind)
{
    int idx = kiln_module_find_export(inst->pre->m, name, kind);
    if (idx < 0 || kind == KILN_EXTERN_FUNC)
        return NULL;
    return inst->d->exports[idx].object(inst->wasm);
}
