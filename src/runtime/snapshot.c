/*
 * snapshot.c - capture an initialised instance as an image and start new
 * instances from it (runtime.h "snapshots"; docs/internals/snapshot.md).
 *
 * What an instance is, for wasm2c 1.0.32: one struct (the descriptor's
 * instance_size) holding, in order, a pointer per import module (Kiln points
 * all of them at the instance's kiln_link), the globals, the memory and
 * table structs and the dropped-segment flags; plus the memories' pages and
 * the tables' element arrays outside it. Kiln does not know the struct's
 * layout, but the runtime allocates every memory and table, and is told the
 * field's address when it does: an instance begun for a snapshot records
 * them (rt_rec_note). Everything else in the struct is plain data and is
 * copied as is; the import-module pointers are checked to be exactly the
 * first words, and rewritten on restore.
 *
 * Ownership: a kiln_snapshot owns its bytes and refers to its
 * kiln_instance_pre, which must outlive it. Immutable once captured.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "runtime/rt_int.h"

#define REFUSAL_MAGIC 0x6b696c6e736e6170ULL /* "kilnsnap" */

typedef struct rt_refusal {
    uint64_t magic;
    const kiln_desc_import *im;
} rt_refusal;

typedef struct snap_ref {
    uint32_t func_type;
    int64_t func_off; /* from the artifact's load address; -1: null */
    int64_t inst_off; /* module_instance, from the wasm2c struct; -1: NULL */
} snap_ref;

typedef struct snap_obj {
    rt_rec_obj rec;
    uint32_t size;   /* memory: pages; table: elements */
    uint64_t extent; /* memory: bytes stored */
    uint8_t *bytes;  /* memory image */
    snap_ref *refs;  /* funcref table elements */
} snap_obj;

struct kiln_snapshot {
    const kiln_instance_pre *pre;
    uint64_t id; /* process-unique: pool slot affinity */
    uint8_t *base; /* the artifact's load address in this process */
    uint32_t state_size;
    uint8_t *state; /* the wasm2c struct */
    uint32_t n_link_words;
    uint32_t n_objs;
    snap_obj *objs;
};

static _Atomic uint64_t next_id = 1;

void rt_rec_note(kiln_instance *inst, int kind, const void *field, uint32_t declared_max)
{
    rt_recording *r = inst->rec;
    uintptr_t lo = (uintptr_t)inst->wasm, p = (uintptr_t)field;
    if (p < lo || p >= lo + inst->d->instance_size) {
        r->problem = "it allocates a memory or table outside its own instance (an imported one)";
        return;
    }
    if (r->n == RT_REC_MAX) {
        r->problem = "it has more than 64 memories and tables";
        return;
    }
    r->objs[r->n++] = (rt_rec_obj){(uint8_t)kind, (uint32_t)(p - lo), declared_max};
}

void rt_rec_free(kiln_instance *inst)
{
    if (inst->rec != NULL) {
        kiln_free(inst->rec->refusals);
        kiln_free(inst->rec);
        inst->rec = NULL;
    }
}

/* Stands in for every host import an initialisation may not call. The shim
 * calls it as fn(ctx, args...) whatever the import's type; it never
 * returns, so the arguments and result type do not matter. (A host function
 * returning a struct in memory would get the result pointer first; then ctx
 * is not a refusal record and the message is less precise.) */
static void refuse_call(void *ctx)
{
    const rt_refusal *r = ctx;
    if (r != NULL && r->magic == REFUSAL_MAGIC)
        kiln_host_trap(NULL, KILN_TRAP_HOST,
                       "snapshot: init called %.*s.%.*s, whose effect a snapshot cannot "
                       "reproduce (init may only read args, environment, clock, randomness "
                       "and write stdout/stderr)",
                       (int)r->im->module_len, r->im->module, (int)r->im->name_len, r->im->name);
    kiln_host_trap(NULL, KILN_TRAP_HOST,
                   "snapshot: the initialisation called a host function whose effect a snapshot "
                   "cannot reproduce");
}

static bool allowed(const kiln_desc_import *im, const char *const *allow, size_t n_allow)
{
    for (size_t i = 0; i < n_allow; i++) {
        const char *a = allow[i], *dot = strrchr(a, '.');
        if (dot == NULL || (size_t)(dot - a) != im->module_len ||
            memcmp(a, im->module, im->module_len) != 0)
            continue;
        if (strcmp(dot + 1, "*") == 0 ||
            (strlen(dot + 1) == im->name_len && memcmp(dot + 1, im->name, im->name_len) == 0))
            return true;
    }
    return false;
}

/* Import modules of wasm2c's struct: one pointer per distinct module name. */
static uint32_t import_groups(const kiln_descriptor *d)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->n_imports; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = d->imports[j].module_len == d->imports[i].module_len &&
                   memcmp(d->imports[j].module, d->imports[i].module, d->imports[i].module_len) == 0;
        n += !seen;
    }
    return n;
}

int kiln_snapshot_begin(const kiln_instance_pre *pre, const kiln_limits *limits,
                        void *const *state, const char *const *allow, size_t n_allow,
                        kiln_instance **out, kiln_err *err)
{
    *out = NULL;
    const kiln_descriptor *d = pre->m->d;
    for (uint32_t i = 0; i < d->n_imports; i++) {
        const kiln_desc_import *im = &d->imports[i];
        if (im->kind == KILN_EXTERN_TAG)
            continue;
        if (im->kind != KILN_EXTERN_FUNC || !pre->slots[i].host)
            return kiln_err_set(err, KILN_EINVAL,
                                "%s: snapshot: the module imports %.*s.%.*s (%s), which a snapshot "
                                "cannot capture; only host-function imports are supported",
                                pre->m->name, (int)im->module_len, im->module, (int)im->name_len,
                                im->name, im->kind == KILN_EXTERN_FUNC ? "a linked instance's function"
                                : im->kind == KILN_EXTERN_MEMORY ? "a memory"
                                : im->kind == KILN_EXTERN_TABLE ? "a table" : "a global");
    }
    kiln_instance *inst = rt_instance_alloc(pre, limits, state, err);
    if (inst == NULL)
        return KILN_ENOMEM;
    inst->rec = kiln_calloc(1, sizeof(*inst->rec));
    rt_refusal *ref = kiln_calloc(d->n_imports ? d->n_imports : 1, sizeof(*ref));
    if (inst->rec == NULL || ref == NULL) {
        kiln_free(ref);
        rt_instance_discard(inst);
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", pre->m->name);
    }
    inst->rec->refusals = ref;
    for (uint32_t i = 0; i < d->n_imports; i++) {
        if (d->imports[i].kind != KILN_EXTERN_FUNC || allowed(&d->imports[i], allow, n_allow))
            continue;
        ref[i].magic = REFUSAL_MAGIC;
        ref[i].im = &d->imports[i];
        inst->link->slots[i].fn = (void (*)(void))refuse_call;
        inst->link->slots[i].ctx = &ref[i];
    }
    int rc = rt_instance_start(inst, err);
    if (rc != KILN_OK)
        return kiln_err_prefix(err, "snapshot: start function");
    *out = inst;
    return KILN_OK;
}

static uint8_t *artifact_base(const kiln_descriptor *d)
{
    Dl_info info;
    return dladdr((const void *)d, &info) != 0 ? (uint8_t *)info.dli_fbase : NULL;
}

static void objs_free(snap_obj *o, uint32_t n)
{
    for (uint32_t i = 0; i < n && o != NULL; i++) {
        kiln_free(o[i].bytes);
        kiln_free(o[i].refs);
    }
    kiln_free(o);
}

void kiln_snapshot_free(kiln_snapshot *s)
{
    if (s == NULL)
        return;
    objs_free(s->objs, s->n_objs);
    kiln_free(s->state);
    kiln_free(s);
}

/* Copy one recorded object; a refusal is returned as a message. */
static const char *capture_obj(kiln_snapshot *s, kiln_instance *inst, snap_obj *o, kiln_err *err)
{
    uint8_t *field = (uint8_t *)inst->wasm + o->rec.offset;
    uintptr_t lo = (uintptr_t)inst->wasm, hi = lo + inst->d->instance_size;
    if (o->rec.kind == RT_REC_MEMORY) {
        wasm_rt_memory_t *m = (wasm_rt_memory_t *)field;
        uint64_t extent = rt_mem_extent(m->data, (uint64_t)m->pages * RT_PAGE);
        o->size = m->pages;
        o->extent = extent;
        o->bytes = kiln_malloc(extent ? extent : 1);
        if (o->bytes == NULL)
            return "out of memory";
        memcpy(o->bytes, m->data, extent);
        return NULL;
    }
    if (o->rec.kind == RT_REC_EXTERNREF) {
        wasm_rt_externref_table_t *t = (wasm_rt_externref_table_t *)field;
        for (uint32_t i = 0; i < t->size; i++)
            if (t->data[i] != NULL)
                return "a table holds an external reference (host object)";
        o->size = t->size;
        return NULL;
    }
    wasm_rt_funcref_table_t *t = (wasm_rt_funcref_table_t *)field;
    o->size = t->size;
    o->refs = kiln_malloc((t->size ? t->size : 1) * sizeof(*o->refs));
    if (o->refs == NULL)
        return "out of memory";
    for (uint32_t i = 0; i < t->size; i++) {
        const wasm_rt_funcref_t *r = &t->data[i];
        snap_ref *sr = &o->refs[i];
        sr->func_type = r->func_type;
        sr->func_off = -1;
        sr->inst_off = -1;
        if (r->func != NULL) {
            Dl_info info;
            if (dladdr((const void *)r->func, &info) == 0 || (uint8_t *)info.dli_fbase != s->base)
                return "a table holds a function of another module";
            sr->func_off = (uint8_t *)(uintptr_t)r->func - s->base;
        }
        if (r->module_instance != NULL) {
            uintptr_t mi = (uintptr_t)r->module_instance;
            if (mi < lo || mi >= hi)
                return "a table holds a function bound to another instance";
            sr->inst_off = (int64_t)(mi - lo);
        }
    }
    (void)err;
    return NULL;
}

int kiln_snapshot_capture(kiln_instance *inst, kiln_snapshot **out, kiln_err *err)
{
    *out = NULL;
    const char *mname = inst->pre->m->name;
    if (inst->rec == NULL)
        return kiln_err_set(err, KILN_EINVAL, "%s: snapshot: the instance was not made by "
                            "kiln_snapshot_begin", mname);
    if (inst->poisoned)
        return kiln_err_set(err, KILN_ETIMEOUT, "%s: snapshot: the initialisation was stopped by "
                            "its time limit", mname);
    if (inst->rec->problem != NULL)
        return kiln_err_set(err, KILN_EINVAL, "%s: snapshot: cannot capture the instance: %s",
                            mname, inst->rec->problem);
    const kiln_descriptor *d = inst->d;
    uint32_t groups = import_groups(d);
    if ((uint64_t)groups * sizeof(void *) > d->instance_size)
        return kiln_err_set(err, KILN_EINVAL, "%s: snapshot: unexpected instance layout", mname);
    for (uint32_t i = 0; i < groups; i++)
        if (((void **)inst->wasm)[i] != (void *)inst->link)
            return kiln_err_set(err, KILN_EINVAL, "%s: snapshot: unexpected instance layout "
                                "(import module %u); this wasm2c is not supported", mname, i);
    kiln_snapshot *s = kiln_calloc(1, sizeof(*s));
    if (s == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", mname);
    s->pre = inst->pre;
    s->base = artifact_base(d);
    s->n_link_words = groups;
    s->state_size = d->instance_size;
    s->state = kiln_malloc(d->instance_size ? d->instance_size : 1);
    s->n_objs = inst->rec->n;
    s->objs = kiln_calloc(s->n_objs ? s->n_objs : 1, sizeof(*s->objs));
    if (s->state == NULL || s->objs == NULL || s->base == NULL) {
        kiln_snapshot_free(s);
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", mname);
    }
    memcpy(s->state, inst->wasm, d->instance_size);
    for (uint32_t i = 0; i < s->n_objs; i++) {
        s->objs[i].rec = inst->rec->objs[i];
        const char *why = capture_obj(s, inst, &s->objs[i], err);
        if (why != NULL) {
            kiln_snapshot_free(s);
            return kiln_err_set(err, KILN_EINVAL, "%s: snapshot: cannot capture the instance: %s",
                                mname, why);
        }
    }
    /* The copied struct's pointers are meaningless in an image. */
    for (uint32_t i = 0; i < s->n_objs; i++) {
        size_t sz = s->objs[i].rec.kind == RT_REC_MEMORY ? sizeof(wasm_rt_memory_t)
                    : s->objs[i].rec.kind == RT_REC_FUNCREF ? sizeof(wasm_rt_funcref_table_t)
                                                             : sizeof(wasm_rt_externref_table_t);
        memset(s->state + s->objs[i].rec.offset, 0, sz);
    }
    memset(s->state, 0, groups * sizeof(void *));
    s->id = atomic_fetch_add(&next_id, 1);
    *out = s;
    return KILN_OK;
}

int kiln_snapshot_build(const kiln_instance_pre *pre, const kiln_limits *limits,
                        void *const *state, const char *const *inits, size_t n_inits,
                        const char *const *allow, size_t n_allow, kiln_snapshot **out,
                        kiln_err *err)
{
    *out = NULL;
    kiln_instance *inst;
    int rc = kiln_snapshot_begin(pre, limits, state, allow, n_allow, &inst, err);
    for (size_t i = 0; rc == KILN_OK && i < n_inits; i++) {
        rc = kiln_instance_call(inst, inits[i], ">", NULL, NULL, err);
        if (rc != KILN_OK)
            kiln_err_prefix(err, "snapshot: initialisation export '%s'", inits[i]);
    }
    if (rc == KILN_OK)
        rc = kiln_snapshot_capture(inst, out, err);
    kiln_instance_free(inst);
    return rc;
}

typedef struct restore_args {
    const kiln_snapshot *s;
    kiln_instance *inst;
} restore_args;

static void do_restore(void *p)
{
    restore_args *a = p;
    const kiln_snapshot *s = a->s;
    uint8_t *w = a->inst->wasm;
    for (uint32_t i = 0; i < s->n_objs; i++) {
        const snap_obj *o = &s->objs[i];
        uint8_t *field = w + o->rec.offset;
        if (o->rec.kind == RT_REC_MEMORY) {
            rt_mem_restore((wasm_rt_memory_t *)field, o->size, o->rec.declared_max, o->bytes,
                           o->extent, s->id);
        } else if (o->rec.kind == RT_REC_EXTERNREF) {
            wasm_rt_allocate_externref_table((wasm_rt_externref_table_t *)field, o->size,
                                             o->rec.declared_max);
        } else {
            wasm_rt_funcref_table_t *t = (wasm_rt_funcref_table_t *)field;
            wasm_rt_allocate_funcref_table(t, o->size, o->rec.declared_max);
            for (uint32_t k = 0; k < o->size; k++) {
                const snap_ref *r = &o->refs[k];
                t->data[k].func_type = r->func_type;
                t->data[k].func = r->func_off < 0 ? NULL
                                  : (wasm_rt_function_ptr_t)(uintptr_t)(s->base + r->func_off);
                t->data[k].module_instance = r->inst_off < 0 ? NULL : w + r->inst_off;
            }
        }
    }
}

int kiln_instance_new_from_snapshot(const kiln_snapshot *s, const kiln_limits *limits,
                                    void *const *state, kiln_instance **out, kiln_err *err)
{
    *out = NULL;
    kiln_instance *inst = rt_instance_alloc(s->pre, limits, state, err);
    if (inst == NULL)
        return KILN_ENOMEM;
    /* Memory and table structs are zero in the image, so a restore that
     * fails half-way frees exactly what it allocated. */
    memcpy(inst->wasm, s->state, s->state_size);
    for (uint32_t i = 0; i < s->n_link_words; i++)
        ((void **)inst->wasm)[i] = inst->link;
    restore_args a = {s, inst};
    int rc = rt_guarded(inst, "restore from snapshot", do_restore, &a, err);
    if (rc != KILN_OK) {
        rt_instance_discard(inst);
        return rc;
    }
    inst->instantiated = true;
    inst->mem0 = inst->d->memory0 ? inst->d->memory0(inst->wasm) : NULL;
    *out = inst;
    return KILN_OK;
}

void kiln_snapshot_info_get(const kiln_snapshot *s, kiln_snapshot_info *out)
{
    memset(out, 0, sizeof(*out));
    out->state_bytes = s->state_size;
    for (uint32_t i = 0; i < s->n_objs; i++) {
        const snap_obj *o = &s->objs[i];
        if (o->rec.kind == RT_REC_MEMORY) {
            out->n_memories++;
            out->image_bytes += o->extent;
            out->memory_bytes += (uint64_t)o->size * RT_PAGE;
        } else {
            out->n_tables++;
            out->table_elems += o->size;
        }
    }
}
