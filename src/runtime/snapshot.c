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
    bool none_allowed; /* begun with an empty allow-list (a component's graph) */
} rt_refusal;

/* Where a function sits in a reference instance's tables (element segments
 * applied, start function run, no init): the same in every artifact of the
 * module, whatever compiled it. NO_PORT: not found there. */
#define NO_PORT UINT32_MAX
typedef struct snap_port {
    uint32_t obj, idx;
} snap_port;

/* Graph images (kiln_snapshot_capture_graph): a reference into another
 * member of the graph names it by index; SELF is the instance itself. */
#define SELF UINT32_MAX
typedef struct snap_ref {
    uint32_t func_type;
    int64_t func_off; /* from the artifact's load address; -1: null */
    int64_t inst_off; /* module_instance, from the wasm2c struct; -1: NULL */
    snap_port port;
    /* graph images: the function is another artifact's, at address
     * func_off (kept in memory only, where artifacts never move) */
    bool func_abs;
    uint32_t inst_who; /* whose struct inst_off is in: SELF or a member */
} snap_ref;

typedef struct snap_obj {
    rt_rec_obj rec;
    uint32_t size;   /* memory: pages; table: elements */
    uint64_t extent; /* memory: bytes stored */
    uint8_t *bytes;  /* memory image */
    snap_ref *refs;  /* funcref table elements */
} snap_obj;

/* A pointer in the wasm2c struct outside the fields Kiln knows (a funcref
 * global: its function and module_instance): stored as an offset, rebased on
 * restore. */
/* RELOC_INST_MEMORY: the address of the instance's imported memory number
 * `delta` (wasm2c keeps a pointer to each imported memory in the struct). */
/* RELOC_GRAPH / RELOC_GRAPH_MEMORY: the same into graph member `who` (an
 * imported memory, table or global of another core instance). */
enum { RELOC_INSTANCE, RELOC_ARTIFACT, RELOC_INST_MEMORY, RELOC_GRAPH, RELOC_GRAPH_MEMORY };
typedef struct snap_reloc {
    uint32_t offset; /* in the struct, 8-byte aligned */
    uint32_t kind;
    int64_t delta; /* from the instance struct or the artifact's load address */
    snap_port port; /* RELOC_ARTIFACT */
    uint32_t who;   /* RELOC_GRAPH*: the member */
} snap_reloc;

struct kiln_snapshot {
    const kiln_instance_pre *pre;
    uint64_t id; /* process-unique: pool slot affinity */
    uint8_t *base; /* the artifact's load address in this process */
    uint32_t state_size;
    uint8_t *state; /* the wasm2c struct */
    uint32_t n_link_words;
    uint32_t n_objs;
    snap_obj *objs;
    uint32_t n_relocs;
    snap_reloc *relocs;
    bool portable; /* every function it holds has a port: loadable on any tier */
    bool graph;    /* refers to other members of a graph: restored with it, never saved */
};

static _Atomic uint64_t next_id = 1;

void rt_rec_note(kiln_instance *inst, int kind, const void *field, uint32_t declared_max)
{
    rt_recording *r = inst->rec;
    uintptr_t lo = (uintptr_t)inst->wasm, p = (uintptr_t)field;
    uintptr_t ml = (uintptr_t)inst->imported_mems;
    uint32_t k = 0;
    if (kind == RT_REC_MEMORY && p >= ml && p < ml + inst->pre->n_inst_mems * sizeof(wasm_rt_memory_t)) {
        k = (uint32_t)((p - ml) / sizeof(wasm_rt_memory_t));
        kind = RT_REC_INST_MEMORY;
    } else if (p < lo || p >= lo + inst->d->instance_size) {
        r->problem = "it allocates a memory or table outside its own instance (an imported one)";
        return;
    }
    if (r->n == RT_REC_MAX) {
        r->problem = "it has more than 64 memories and tables";
        return;
    }
    r->objs[r->n++] = (rt_rec_obj){(uint8_t)kind,
                                   kind == RT_REC_INST_MEMORY ? k : (uint32_t)(p - lo), declared_max};
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
    if (r != NULL && r->magic == REFUSAL_MAGIC && r->none_allowed)
        kiln_host_trap(NULL, KILN_TRAP_HOST,
                       "snapshot: init called %.*s.%.*s, whose effect a snapshot cannot "
                       "reproduce (this initialisation may call no host function)",
                       (int)r->im->module_len, r->im->module, (int)r->im->name_len, r->im->name);
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

/* Import modules of wasm2c's struct: one pointer per distinct module name
 * that functions (or tags) are imported from; an imported memory or table
 * is a pointer of its own, after them. */
static bool group_kind(const kiln_desc_import *im)
{
    return im->kind == KILN_EXTERN_FUNC || im->kind == KILN_EXTERN_TAG;
}

static uint32_t import_groups(const kiln_descriptor *d)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->n_imports; i++) {
        if (!group_kind(&d->imports[i]))
            continue;
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = group_kind(&d->imports[j]) &&
                   d->imports[j].module_len == d->imports[i].module_len &&
                   memcmp(d->imports[j].module, d->imports[i].module, d->imports[i].module_len) == 0;
        n += !seen;
    }
    return n;
}

static bool arg_slot(const kiln_instance_pre *pre, uint32_t slot)
{
    for (uint32_t k = 0; k < pre->n_arg_slots; k++)
        if (pre->arg_slots[k].slot == slot)
            return true;
    return false;
}

int kiln_snapshot_begin(const kiln_instance_pre *pre, const kiln_limits *limits,
                        void *const *state, const char *const *allow, size_t n_allow,
                        kiln_instance **out, kiln_err *err)
{
    return kiln_snapshot_begin_args(pre, limits, state, NULL, 0, allow, n_allow, out, err);
}

int kiln_snapshot_begin_args(const kiln_instance_pre *pre, const kiln_limits *limits,
                             void *const *state, kiln_instance *const *args, uint32_t n_args,
                             const char *const *allow, size_t n_allow, kiln_instance **out,
                             kiln_err *err)
{
    *out = NULL;
    const kiln_descriptor *d = pre->m->d;
    for (uint32_t i = 0; i < d->n_imports; i++) {
        const kiln_desc_import *im = &d->imports[i];
        if (im->kind == KILN_EXTERN_TAG)
            continue;
        if (args != NULL && arg_slot(pre, i))
            continue; /* a graph member's export: captured with the graph */
        bool own_mem = false; /* a memory the runtime gives each instance: captured */
        for (uint32_t k = 0; im->kind == KILN_EXTERN_MEMORY && k < pre->n_inst_mems; k++)
            own_mem = own_mem || pre->inst_mems[k].slot == i;
        if (own_mem)
            continue;
        if (im->kind != KILN_EXTERN_FUNC || !pre->slots[i].host)
            return kiln_err_set(err, KILN_EINVAL,
                                "%s: snapshot: the module imports %.*s.%.*s (%s), which a snapshot "
                                "cannot capture; only host-function imports are supported",
                                pre->m->name, (int)im->module_len, im->module, (int)im->name_len,
                                im->name, im->kind == KILN_EXTERN_FUNC ? "a linked instance's function"
                                : im->kind == KILN_EXTERN_MEMORY ? "a memory shared with another instance"
                                : im->kind == KILN_EXTERN_TABLE ? "a table" : "a global");
    }
    kiln_instance *inst = rt_instance_alloc(pre, limits, state, err);
    if (inst == NULL)
        return KILN_ENOMEM;
    int brc = rt_instance_bind(inst, args, n_args, err);
    if (brc != KILN_OK) {
        rt_instance_discard(inst);
        return brc;
    }
    inst->rec = kiln_calloc(1, sizeof(*inst->rec));
    rt_refusal *ref = kiln_calloc(d->n_imports ? d->n_imports : 1, sizeof(*ref));
    if (inst->rec == NULL || ref == NULL) {
        kiln_free(ref);
        rt_instance_discard(inst);
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", pre->m->name);
    }
    inst->rec->refusals = ref;
    for (uint32_t i = 0; i < d->n_imports; i++) {
        if (d->imports[i].kind != KILN_EXTERN_FUNC || !pre->slots[i].host ||
            allowed(&d->imports[i], allow, n_allow))
            continue;
        ref[i].magic = REFUSAL_MAGIC;
        ref[i].im = &d->imports[i];
        ref[i].none_allowed = n_allow == 0;
        inst->link->slots[i].fn = (void (*)(void))refuse_call;
        inst->link->slots[i].ctx = &ref[i];
    }
    int rc = rt_instance_start(inst, args != NULL, err);
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
    kiln_free(s->relocs);
    kiln_free(s->state);
    kiln_free(s);
}

/* The member of `graph` whose wasm2c struct holds address p, or SELF. */
static uint32_t graph_member(kiln_instance *const *graph, uint32_t n, uintptr_t p)
{
    for (uint32_t k = 0; k < n; k++) {
        uintptr_t lo = graph[k] ? (uintptr_t)graph[k]->wasm : 0;
        if (graph[k] != NULL && p >= lo && p < lo + graph[k]->d->instance_size)
            return k;
    }
    return SELF;
}

/* The member of `graph` one of whose per-instance memories
 * (kiln_linker_define_memory) is at p, or SELF. */
static uint32_t graph_mem_member(kiln_instance *const *graph, uint32_t n, uintptr_t p)
{
    for (uint32_t k = 0; k < n; k++) {
        if (graph[k] == NULL || graph[k]->pre->n_inst_mems == 0)
            continue;
        uintptr_t lo = (uintptr_t)graph[k]->imported_mems;
        uintptr_t hi = lo + graph[k]->pre->n_inst_mems * sizeof(wasm_rt_memory_t);
        if (p >= lo && p < hi && (p - lo) % sizeof(wasm_rt_memory_t) == 0)
            return k;
    }
    return SELF;
}

/* Copy one recorded object; a refusal is returned as a message. */
static const char *capture_obj(kiln_snapshot *s, kiln_instance *inst, snap_obj *o,
                               kiln_instance *const *graph, uint32_t n_graph, kiln_err *err)
{
    uint8_t *field = o->rec.kind == RT_REC_INST_MEMORY
                         ? (uint8_t *)&inst->imported_mems[o->rec.offset]
                         : (uint8_t *)inst->wasm + o->rec.offset;
    uintptr_t lo = (uintptr_t)inst->wasm, hi = lo + inst->d->instance_size;
    if (o->rec.kind == RT_REC_MEMORY || o->rec.kind == RT_REC_INST_MEMORY) {
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
        sr->inst_who = SELF;
        sr->func_abs = false;
        if (r->func != NULL) {
            Dl_info info;
            bool own = dladdr((const void *)r->func, &info) != 0 &&
                       (uint8_t *)info.dli_fbase == s->base;
            if (!own && graph == NULL)
                return "a table holds a function of another module";
            sr->func_abs = !own; /* another member's artifact: mapped for good */
            sr->func_off = own ? (uint8_t *)(uintptr_t)r->func - s->base
                               : (int64_t)(uintptr_t)r->func;
        }
        if (r->module_instance != NULL) {
            uintptr_t mi = (uintptr_t)r->module_instance;
            if (mi >= lo && mi < hi) {
                sr->inst_off = (int64_t)(mi - lo);
            } else {
                uint32_t k = graph_member(graph, n_graph, mi);
                if (k == SELF)
                    return "a table holds a function bound to an instance outside the graph";
                sr->inst_who = k;
                sr->inst_off = (int64_t)(mi - (uintptr_t)graph[k]->wasm);
            }
        }
    }
    (void)err;
    return NULL;
}

/* ---- ports: functions named independently of the artifact --------------- */

typedef struct fent {
    uintptr_t fn;
    snap_port port;
} fent;

static int fent_cmp(const void *a, const void *b)
{
    const fent *x = a, *y = b;
    if (x->fn != y->fn)
        return x->fn < y->fn ? -1 : 1;
    if (x->port.obj != y->port.obj)
        return x->port.obj < y->port.obj ? -1 : 1;
    return x->port.idx < y->port.idx ? -1 : x->port.idx > y->port.idx;
}

/* A reference instance of `pre` (every host call refused, so a start function
 * that calls one fails it: no ports) and the functions in its tables, sorted.
 * NULL when none can be made. */
static fent *ref_index(const kiln_instance_pre *pre, kiln_instance **ref, size_t *n)
{
    kiln_err e;
    *ref = NULL;
    *n = 0;
    kiln_limits lim;
    memset(&lim, 0, sizeof(lim));
    lim.timeout_ms = 10000; /* the start function: it already ran once, within its limits */
    if (kiln_snapshot_begin(pre, &lim, NULL, NULL, 0, ref, &e) != KILN_OK)
        return NULL;
    const rt_recording *rec = (*ref)->rec;
    size_t cap = 0;
    for (uint32_t i = 0; i < rec->n; i++)
        if (rec->objs[i].kind == RT_REC_FUNCREF)
            cap += ((wasm_rt_funcref_table_t *)((uint8_t *)(*ref)->wasm + rec->objs[i].offset))->size;
    fent *a = kiln_malloc((cap ? cap : 1) * sizeof(*a));
    if (a == NULL)
        return NULL;
    for (uint32_t i = 0; i < rec->n; i++) {
        if (rec->objs[i].kind != RT_REC_FUNCREF)
            continue;
        wasm_rt_funcref_table_t *t =
            (wasm_rt_funcref_table_t *)((uint8_t *)(*ref)->wasm + rec->objs[i].offset);
        for (uint32_t k = 0; k < t->size; k++)
            if (t->data[k].func != NULL)
                a[(*n)++] = (fent){(uintptr_t)t->data[k].func, {i, k}};
    }
    qsort(a, *n, sizeof(*a), fent_cmp);
    return a;
}

static snap_port ref_find(const fent *a, size_t n, uintptr_t fn)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid].fn < fn)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo].fn == fn ? a[lo].port : (snap_port){NO_PORT, NO_PORT};
}

/* Give every function the image holds its port; s->portable when all have. */
static void snapshot_ports(kiln_snapshot *s)
{
    kiln_instance *ref;
    size_t n;
    fent *a = ref_index(s->pre, &ref, &n);
    bool all = a != NULL;
    for (uint32_t i = 0; i < s->n_objs; i++) {
        snap_obj *o = &s->objs[i];
        if (o->rec.kind != RT_REC_FUNCREF)
            continue;
        for (uint32_t k = 0; k < o->size; k++) {
            snap_ref *r = &o->refs[k];
            r->port = (snap_port){NO_PORT, NO_PORT};
            if (r->func_off >= 0 && !r->func_abs && a != NULL)
                r->port = ref_find(a, n, (uintptr_t)(s->base + r->func_off));
            all = all && (r->func_off < 0 || (!r->func_abs && r->port.obj != NO_PORT));
        }
    }
    for (uint32_t i = 0; i < s->n_relocs; i++) {
        snap_reloc *r = &s->relocs[i];
        r->port = (snap_port){NO_PORT, NO_PORT};
        if (r->kind == RELOC_ARTIFACT && a != NULL)
            r->port = ref_find(a, n, (uintptr_t)(s->base + r->delta));
        all = all && (r->kind != RELOC_ARTIFACT || r->port.obj != NO_PORT);
    }
    s->portable = all;
    kiln_free(a);
    kiln_instance_free(ref);
}

static int capture(kiln_instance *inst, kiln_instance *const *graph, uint32_t n_graph,
                   kiln_snapshot **out, kiln_err *err);

int kiln_snapshot_capture(kiln_instance *inst, kiln_snapshot **out, kiln_err *err)
{
    return capture(inst, NULL, 0, out, err);
}

int kiln_snapshot_capture_graph(kiln_instance *const *graph, uint32_t n, uint32_t self,
                                kiln_snapshot **out, kiln_err *err)
{
    *out = NULL;
    if (self >= n || graph[self] == NULL)
        return kiln_err_set(err, KILN_EINVAL, "snapshot: graph member %u does not exist",
                            (unsigned)self);
    int rc = capture(graph[self], graph, n, out, err);
    if (rc == KILN_OK)
        (*out)->graph = true;
    return rc;
}

static int capture(kiln_instance *inst, kiln_instance *const *graph, uint32_t n_graph,
                   kiln_snapshot **out, kiln_err *err)
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
        const char *why = capture_obj(s, inst, &s->objs[i], graph, n_graph, err);
        if (why != NULL) {
            kiln_snapshot_free(s);
            return kiln_err_set(err, KILN_EINVAL, "%s: snapshot: cannot capture the instance: %s",
                                mname, why);
        }
    }
    /* The copied struct's pointers are meaningless in an image. */
    for (uint32_t i = 0; i < s->n_objs; i++) {
        if (s->objs[i].rec.kind == RT_REC_INST_MEMORY)
            continue; /* outside the struct */
        size_t sz = s->objs[i].rec.kind == RT_REC_MEMORY ? sizeof(wasm_rt_memory_t)
                    : s->objs[i].rec.kind == RT_REC_FUNCREF ? sizeof(wasm_rt_funcref_table_t)
                                                             : sizeof(wasm_rt_externref_table_t);
        memset(s->state + s->objs[i].rec.offset, 0, sz);
    }
    memset(s->state, 0, groups * sizeof(void *));
    /* What is left is globals and flags. A funcref global holds a function
     * of the artifact and this instance's address: found by value (a word
     * pointing into the instance struct or the artifact; a plain i64 global
     * coinciding with such an address is a ~1e-13 chance), kept as offsets. */
    uintptr_t lo = (uintptr_t)inst->wasm, hi = lo + d->instance_size;
    uintptr_t ml = (uintptr_t)inst->imported_mems;
    uint32_t n_im = inst->pre->n_inst_mems;
    for (uint32_t off = groups * sizeof(void *); off + 8 <= s->state_size; off += 8) {
        uint64_t v;
        memcpy(&v, s->state + off, 8);
        uint32_t kind, who = SELF;
        int64_t delta;
        Dl_info info;
        if (n_im > 0 && v >= ml && v < ml + n_im * sizeof(wasm_rt_memory_t) &&
            (v - ml) % sizeof(wasm_rt_memory_t) == 0) {
            kind = RELOC_INST_MEMORY;
            delta = (int64_t)((v - ml) / sizeof(wasm_rt_memory_t));
        } else if (v >= lo && v < hi) {
            kind = RELOC_INSTANCE;
            delta = (int64_t)(v - lo);
        } else if (graph != NULL && (who = graph_member(graph, n_graph, v)) != SELF) {
            /* an imported memory, table or global: another member's field */
            kind = RELOC_GRAPH;
            delta = (int64_t)(v - (uintptr_t)graph[who]->wasm);
        } else if (graph != NULL && (who = graph_mem_member(graph, n_graph, v)) != SELF) {
            kind = RELOC_GRAPH_MEMORY; /* another member's per-instance memory */
            delta = (int64_t)((v - (uintptr_t)graph[who]->imported_mems) /
                              sizeof(wasm_rt_memory_t));
        } else if (v >= 4096 && dladdr((const void *)(uintptr_t)v, &info) != 0 &&
                   (uint8_t *)info.dli_fbase == s->base) {
            kind = RELOC_ARTIFACT;
            delta = (int64_t)(v - (uintptr_t)s->base);
        } else {
            continue; /* plain data; another artifact's function stays valid in process */
        }
        snap_reloc *nr = kiln_realloc(s->relocs, (s->n_relocs + 1) * sizeof(*nr));
        if (nr == NULL) {
            kiln_snapshot_free(s);
            return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", mname);
        }
        s->relocs = nr;
        s->relocs[s->n_relocs++] = (snap_reloc){off, kind, delta, {NO_PORT, NO_PORT}, who};
        memset(s->state + off, 0, 8);
    }
    snapshot_ports(s);
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
    kiln_instance *const *graph; /* graph images: every member, allocated */
} restore_args;

static void do_restore(void *p)
{
    restore_args *a = p;
    const kiln_snapshot *s = a->s;
    uint8_t *w = a->inst->wasm;
    for (uint32_t i = 0; i < s->n_objs; i++) {
        const snap_obj *o = &s->objs[i];
        uint8_t *field = w + o->rec.offset;
        if (o->rec.kind == RT_REC_INST_MEMORY) {
            /* offset < n_inst_mems: checked at capture and load */
            const rt_inst_mem *im = &a->inst->pre->inst_mems[o->rec.offset];
            wasm_rt_memory_t *mem = &a->inst->imported_mems[o->rec.offset];
            rt_mem_restore(mem, o->size, im->max_pages, o->bytes, o->extent, s->id);
            a->inst->link->slots[im->slot].ctx = mem;
        } else if (o->rec.kind == RT_REC_MEMORY) {
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
                                  : r->func_abs ? (wasm_rt_function_ptr_t)(uintptr_t)r->func_off
                                  : (wasm_rt_function_ptr_t)(uintptr_t)(s->base + r->func_off);
                uint8_t *mw = r->inst_who == SELF ? w : (uint8_t *)a->graph[r->inst_who]->wasm;
                t->data[k].module_instance = r->inst_off < 0 ? NULL : mw + r->inst_off;
            }
        }
    }
}

/* Fill an allocated instance from its image (graph: every member
 * allocated, those before it restored; NULL for a plain image). On failure
 * the caller discards it: memory and table structs are zero in the image,
 * so a restore that fails half-way frees exactly what it allocated. */
static int restore_into(const kiln_snapshot *s, kiln_instance *inst, kiln_instance *const *graph,
                        uint32_t n_graph, kiln_err *err)
{
    memcpy(inst->wasm, s->state, s->state_size);
    for (uint32_t i = 0; i < s->n_link_words; i++)
        ((void **)inst->wasm)[i] = inst->link;
    for (uint32_t i = 0; i < s->n_relocs; i++) {
        const snap_reloc *r = &s->relocs[i];
        uint64_t v;
        if (r->kind == RELOC_INST_MEMORY)
            v = (uintptr_t)&inst->imported_mems[r->delta];
        else if (r->kind == RELOC_GRAPH)
            v = (uintptr_t)graph[r->who]->wasm + (uint64_t)r->delta;
        else if (r->kind == RELOC_GRAPH_MEMORY)
            v = (uintptr_t)&graph[r->who]->imported_mems[r->delta];
        else
            v = (r->kind == RELOC_INSTANCE ? (uintptr_t)inst->wasm : (uintptr_t)s->base) +
                (uint64_t)r->delta;
        memcpy((uint8_t *)inst->wasm + r->offset, &v, 8);
    }
    int rc = rt_instance_bind(inst, graph, n_graph, err);
    restore_args a = {s, inst, graph};
    if (rc == KILN_OK)
        rc = rt_guarded(inst, "restore from snapshot", do_restore, &a, err);
    if (rc != KILN_OK)
        return rc;
    inst->instantiated = true;
    inst->mem0 = inst->d->memory0 ? inst->d->memory0(inst->wasm) : NULL;
    return KILN_OK;
}

int kiln_instance_new_from_snapshot(const kiln_snapshot *s, const kiln_limits *limits,
                                    void *const *state, kiln_instance **out, kiln_err *err)
{
    *out = NULL;
    if (s->graph)
        return kiln_err_set(err, KILN_EINVAL, "%s: a graph member's image is restored with its "
                            "graph (kiln_snapshot_graph_restore)", s->pre->m->name);
    kiln_instance *inst = rt_instance_alloc(s->pre, limits, state, err);
    if (inst == NULL)
        return KILN_ENOMEM;
    int rc = restore_into(s, inst, NULL, 0, err);
    if (rc != KILN_OK) {
        rt_instance_discard(inst);
        return rc;
    }
    *out = inst;
    return KILN_OK;
}

int kiln_snapshot_graph_restore(const kiln_snapshot *const *snaps, uint32_t n,
                                const kiln_limits *limits, void *const *state,
                                kiln_instance **out, kiln_err *err)
{
    memset(out, 0, n * sizeof(*out));
    int rc = KILN_OK;
    /* Every member's block first: a table may hold a later member's
     * function (a component's shim table filled by its fixup module). */
    for (uint32_t i = 0; rc == KILN_OK && i < n; i++)
        if (snaps[i] != NULL && (out[i] = rt_instance_alloc(snaps[i]->pre, limits, state, err)) == NULL)
            rc = KILN_ENOMEM;
    for (uint32_t i = 0; rc == KILN_OK && i < n; i++)
        if (snaps[i] != NULL)
            rc = restore_into(snaps[i], out[i], out, n, err);
    if (rc != KILN_OK) {
        /* Restored members are freed like instances, the rest discarded:
         * the same call (wasm2c's free accepts a zeroed struct). */
        for (uint32_t i = n; i-- > 0;) {
            if (out[i] != NULL && out[i]->instantiated)
                kiln_instance_free(out[i]);
            else if (out[i] != NULL)
                rt_instance_discard(out[i]);
            out[i] = NULL;
        }
    }
    return rc;
}

void kiln_snapshot_info_get(const kiln_snapshot *s, kiln_snapshot_info *out)
{
    memset(out, 0, sizeof(*out));
    out->state_bytes = s->state_size;
    out->portable = s->portable;
    for (uint32_t i = 0; i < s->n_objs; i++) {
        const snap_obj *o = &s->objs[i];
        if (o->rec.kind == RT_REC_MEMORY || o->rec.kind == RT_REC_INST_MEMORY) {
            out->n_memories++;
            out->image_bytes += o->extent;
            out->memory_bytes += (uint64_t)o->size * RT_PAGE;
        } else {
            out->n_tables++;
            out->table_elems += o->size;
        }
    }
}

/* ---- images on disk ------------------------------------------------------ */

/*
 * Format (host byte order; docs/internals/snapshot.md "Images on disk"):
 *   "KILNIMG1", u32 format, str Kiln version, str artifact content hash,
 *   str module id (the caller's, may be empty), u8 portable,
 *   i64 created (Unix seconds), str note;
 *   u32 state_size, u32 n_link_words, u32 n_objs, state bytes;
 *   u32 n_relocs, per reloc u32 offset, u32 kind, i64 delta, u32 port obj, u32 port idx;
 *   per object: u8 kind, u32 offset, u32 declared_max, u32 size, u64 extent,
 *     memory: extent bytes; funcref table: per element u32 params
 *     (UINT32_MAX: no type), u32 results, u32 types[params + results],
 *     i64 func_off, i64 inst_off, u32 port obj, u32 port idx;
 *   SHA-256 of everything before (32 bytes).
 * Strings are u32 length + bytes. Function type ids are process-local, so
 * elements carry their signature and are registered again on load; function
 * offsets are from the artifact's load address, so an image is only loaded
 * against the artifact whose content hash it names.
 */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "base/sha256.h"
#include "platform/fs.h"

#define IMG_MAGIC "KILNIMG1"
#define IMG_FORMAT 3u
#define IMG_MAX_BYTES (8ULL << 30)

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void w_put(wbuf *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *np = kiln_realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
#define W_VAL(b, type, v)                                                                          \
    do {                                                                                           \
        type w_v_ = (v);                                                                           \
        w_put((b), &w_v_, sizeof(w_v_));                                                           \
    } while (0)
static void w_str(wbuf *b, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0;
    W_VAL(b, uint32_t, n);
    w_put(b, s ? s : "", n);
}

int kiln_snapshot_save(const kiln_snapshot *s, const char *path, const char *module_id,
                       const char *note, kiln_err *err)
{
    if (s->graph)
        return kiln_err_set(err, KILN_EUNSUPPORTED, "%s: an image of a linked instance graph "
                            "refers to other artifacts' functions by address and is kept in "
                            "memory only", s->pre->m->name);
    const char *hash = s->pre->m->d->content_hash;
    wbuf b = {0};
    w_put(&b, IMG_MAGIC, 8);
    W_VAL(&b, uint32_t, IMG_FORMAT);
    w_str(&b, KILN_VERSION);
    w_str(&b, hash);
    w_str(&b, module_id);
    W_VAL(&b, uint8_t, s->portable);
    W_VAL(&b, int64_t, (int64_t)time(NULL));
    w_str(&b, note);
    W_VAL(&b, uint32_t, s->state_size);
    W_VAL(&b, uint32_t, s->n_link_words);
    W_VAL(&b, uint32_t, s->n_objs);
    w_put(&b, s->state, s->state_size);
    W_VAL(&b, uint32_t, s->n_relocs);
    for (uint32_t i = 0; i < s->n_relocs; i++) {
        W_VAL(&b, uint32_t, s->relocs[i].offset);
        W_VAL(&b, uint32_t, s->relocs[i].kind);
        W_VAL(&b, int64_t, s->relocs[i].delta);
        W_VAL(&b, uint32_t, s->relocs[i].port.obj);
        W_VAL(&b, uint32_t, s->relocs[i].port.idx);
    }
    for (uint32_t i = 0; i < s->n_objs; i++) {
        const snap_obj *o = &s->objs[i];
        W_VAL(&b, uint8_t, o->rec.kind);
        W_VAL(&b, uint32_t, o->rec.offset);
        W_VAL(&b, uint32_t, o->rec.declared_max);
        W_VAL(&b, uint32_t, o->size);
        W_VAL(&b, uint64_t, o->extent);
        if (o->rec.kind == RT_REC_MEMORY || o->rec.kind == RT_REC_INST_MEMORY)
            w_put(&b, o->bytes, o->extent);
        else if (o->rec.kind == RT_REC_FUNCREF)
            for (uint32_t k = 0; k < o->size; k++) {
                const snap_ref *r = &o->refs[k];
                uint32_t np, nr;
                const wasm_rt_type_t *ty;
                if (rt_functype_sig(r->func_type, &np, &nr, &ty)) {
                    W_VAL(&b, uint32_t, np);
                    W_VAL(&b, uint32_t, nr);
                    for (uint32_t t = 0; t < np + nr; t++)
                        W_VAL(&b, uint32_t, (uint32_t)ty[t]);
                } else {
                    W_VAL(&b, uint32_t, UINT32_MAX);
                    W_VAL(&b, uint32_t, r->func_type);
                }
                W_VAL(&b, int64_t, r->func_off);
                W_VAL(&b, int64_t, r->inst_off);
                W_VAL(&b, uint32_t, r->port.obj);
                W_VAL(&b, uint32_t, r->port.idx);
            }
    }
    uint8_t md[32];
    kiln_sha256 h;
    if (!b.oom) {
        kiln_sha256_init(&h);
        kiln_sha256_update(&h, b.p, b.n);
        kiln_sha256_final(&h, md);
        w_put(&b, md, sizeof(md));
    }
    if (b.oom) {
        kiln_free(b.p);
        return kiln_err_set(err, KILN_ENOMEM, "snapshot image: out of memory");
    }
    /* Atomic publish, as artifacts are: a reader sees the old file or the
     * whole new one. */
    static _Atomic uint64_t seq;
    char tmp[4200];
    int n = snprintf(tmp, sizeof(tmp), "%s.%ld.%llu.tmp", path, (long)getpid(),
                     (unsigned long long)atomic_fetch_add(&seq, 1));
    int rc = KILN_OK;
    if (n < 0 || (size_t)n >= sizeof(tmp))
        rc = kiln_err_set(err, KILN_EINVAL, "snapshot image: path too long: %s", path);
    else if (fs_write_file(tmp, b.p, b.n) != 0 || fs_rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        rc = kiln_err_set(err, e == ENOSPC ? KILN_ENOSPC : KILN_ECACHE,
                          "snapshot image: cannot write %s: %s", path, strerror(e));
    }
    kiln_free(b.p);
    return rc;
}

typedef struct rbuf {
    const uint8_t *p;
    size_t n, off;
    bool bad;
} rbuf;

static const uint8_t *r_take(rbuf *r, uint64_t n)
{
    if (r->bad || n > r->n - r->off) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += (size_t)n;
    return q;
}
#define R_VAL(r, type, dst)                                                                        \
    do {                                                                                           \
        const uint8_t *r_q_ = r_take((r), sizeof(type));                                           \
        type r_v_ = 0;                                                                             \
        if (r_q_ != NULL)                                                                          \
            memcpy(&r_v_, r_q_, sizeof(type));                                                     \
        (dst) = r_v_;                                                                              \
    } while (0)
static void r_str(rbuf *r, char *out, size_t size)
{
    uint32_t n;
    R_VAL(r, uint32_t, n);
    const uint8_t *q = r_take(r, n);
    size_t c = q == NULL ? 0 : n < size ? n : size - 1;
    if (q != NULL)
        memcpy(out, q, c);
    out[c] = '\0';
}

/* Parse a whole image. With `pre`, build the snapshot (*out) after checking
 * it belongs to pre's artifact; always fill `info`. NULL = fine, else why. */
/* The image was made on another artifact of the same module: rebind every
 * function through its port in this artifact's reference instance. */
static const char *remap_ports(kiln_snapshot *s)
{
    kiln_instance *ref;
    size_t n;
    fent *a = ref_index(s->pre, &ref, &n);
    const char *why = a == NULL ? "cannot make a reference instance of this artifact" : NULL;
    const rt_recording *rec = ref ? ref->rec : NULL;
    if (why == NULL && rec->n != s->n_objs)
        why = "instance layout differs from the artifact's";
    for (uint32_t i = 0; why == NULL && i < s->n_objs; i++)
        if (rec->objs[i].kind != s->objs[i].rec.kind ||
            rec->objs[i].offset != s->objs[i].rec.offset ||
            rec->objs[i].declared_max != s->objs[i].rec.declared_max)
            why = "instance layout differs from the artifact's";
#define PORT_FN(pt, fnp)                                                                           \
    do {                                                                                           \
        wasm_rt_funcref_table_t *t_ = NULL;                                                        \
        if ((pt).obj < rec->n && rec->objs[(pt).obj].kind == RT_REC_FUNCREF)                       \
            t_ = (wasm_rt_funcref_table_t *)((uint8_t *)ref->wasm + rec->objs[(pt).obj].offset);   \
        (fnp) = t_ != NULL && (pt).idx < t_->size ? (uintptr_t)t_->data[(pt).idx].func : 0;        \
    } while (0)
    for (uint32_t i = 0; why == NULL && i < s->n_objs; i++) {
        snap_obj *o = &s->objs[i];
        for (uint32_t k = 0; why == NULL && o->rec.kind == RT_REC_FUNCREF && k < o->size; k++) {
            snap_ref *r = &o->refs[k];
            if (r->func_off < 0)
                continue;
            uintptr_t fn;
            PORT_FN(r->port, fn);
            if (fn == 0)
                why = "a table function has no counterpart in this artifact";
            else
                r->func_off = (int64_t)(fn - (uintptr_t)s->base);
        }
    }
    for (uint32_t i = 0; why == NULL && i < s->n_relocs; i++) {
        snap_reloc *r = &s->relocs[i];
        if (r->kind != RELOC_ARTIFACT)
            continue;
        uintptr_t fn;
        PORT_FN(r->port, fn);
        if (fn == 0)
            why = "a global's function has no counterpart in this artifact";
        else
            r->delta = (int64_t)(fn - (uintptr_t)s->base);
    }
#undef PORT_FN
    kiln_free(a);
    kiln_instance_free(ref);
    return why;
}

static const char *img_parse(const uint8_t *p, size_t n, const kiln_instance_pre *pre,
                             const char *module_id, kiln_snapshot **out,
                             kiln_snapshot_file_info *info)
{
    if (n < 8 + 32 || memcmp(p, IMG_MAGIC, 8) != 0)
        return "not a Kiln snapshot image";
    uint8_t md[32];
    kiln_sha256 h;
    kiln_sha256_init(&h);
    kiln_sha256_update(&h, p, n - 32);
    kiln_sha256_final(&h, md);
    if (memcmp(md, p + n - 32, 32) != 0)
        return "checksum mismatch (truncated or corrupt)";
    rbuf r = {p, n - 32, 8, false};
    uint32_t format;
    R_VAL(&r, uint32_t, format);
    if (format != IMG_FORMAT)
        return "unknown image format";
    r_str(&r, info->kiln_version, sizeof(info->kiln_version));
    r_str(&r, info->artifact, sizeof(info->artifact));
    r_str(&r, info->module_id, sizeof(info->module_id));
    uint8_t portable;
    R_VAL(&r, uint8_t, portable);
    info->portable = portable != 0;
    R_VAL(&r, int64_t, info->created);
    r_str(&r, info->note, sizeof(info->note));
    info->file_bytes = n;
    if (strcmp(info->kiln_version, KILN_VERSION) != 0)
        return "made by another Kiln version";
    const kiln_descriptor *d = pre ? pre->m->d : NULL;
    /* Another artifact (another compile tier) of the same module: only when
     * the caller vouches for the module and every function has a port. */
    bool other = d != NULL &&
                 (d->content_hash == NULL || strcmp(d->content_hash, info->artifact) != 0);
    if (other && (module_id == NULL || module_id[0] == '\0' ||
                  strcmp(module_id, info->module_id) != 0 || !info->portable))
        return "made for another artifact";
    kiln_snapshot *s = kiln_calloc(1, sizeof(*s));
    if (s == NULL)
        return "out of memory";
    R_VAL(&r, uint32_t, s->state_size);
    R_VAL(&r, uint32_t, s->n_link_words);
    R_VAL(&r, uint32_t, s->n_objs);
    const char *why = NULL;
    if (r.bad || s->n_objs > RT_REC_MAX || (uint64_t)s->n_link_words * sizeof(void *) > s->state_size)
        why = "malformed header";
    else if (d != NULL && (s->state_size != d->instance_size || s->n_link_words != import_groups(d)))
        why = "instance layout differs from the artifact's";
    /* Imported memories the runtime provides: as many as pre has (any
     * number up to RT_REC_MAX when only reading the header). */
    uint32_t n_inst_mems = pre != NULL ? pre->n_inst_mems : RT_REC_MAX;
    const uint8_t *st = why ? NULL : r_take(&r, s->state_size);
    if (why == NULL && st == NULL)
        why = "truncated";
    if (why == NULL) {
        s->state = kiln_malloc(s->state_size ? s->state_size : 1);
        s->objs = kiln_calloc(s->n_objs ? s->n_objs : 1, sizeof(*s->objs));
        if (s->state == NULL || s->objs == NULL)
            why = "out of memory";
        else
            memcpy(s->state, st, s->state_size);
    }
    uint32_t nrel = 0;
    R_VAL(&r, uint32_t, nrel);
    if (why == NULL && (r.bad || (uint64_t)nrel * 16 > r.n - r.off))
        why = "truncated relocations";
    if (why == NULL && (r.bad || (uint64_t)nrel * 24 > r.n - r.off))
        why = "truncated relocations";
    if (why == NULL && nrel > 0 && (s->relocs = kiln_calloc(nrel, sizeof(*s->relocs))) == NULL)
        why = "out of memory";
    for (uint32_t i = 0; why == NULL && i < nrel; i++) {
        snap_reloc *rl = &s->relocs[i];
        rl->who = SELF;
        R_VAL(&r, uint32_t, rl->offset);
        R_VAL(&r, uint32_t, rl->kind);
        R_VAL(&r, int64_t, rl->delta);
        R_VAL(&r, uint32_t, rl->port.obj);
        R_VAL(&r, uint32_t, rl->port.idx);
        s->n_relocs = i + 1;
        if (r.bad || rl->kind > RELOC_INST_MEMORY || (uint64_t)rl->offset + 8 > s->state_size ||
            rl->offset < s->n_link_words * sizeof(void *) || rl->delta < 0 ||
            (rl->kind == RELOC_INSTANCE && rl->delta >= (int64_t)s->state_size) ||
            (rl->kind == RELOC_INST_MEMORY && rl->delta >= (int64_t)n_inst_mems))
            why = "malformed relocation";
    }
    kiln_snapshot_info *si = &info->info;
    si->state_bytes = s->state_size;
    si->portable = info->portable;
    for (uint32_t i = 0; why == NULL && i < s->n_objs; i++) {
        snap_obj *o = &s->objs[i];
        R_VAL(&r, uint8_t, o->rec.kind);
        R_VAL(&r, uint32_t, o->rec.offset);
        R_VAL(&r, uint32_t, o->rec.declared_max);
        R_VAL(&r, uint32_t, o->size);
        R_VAL(&r, uint64_t, o->extent);
        size_t fsz = o->rec.kind == RT_REC_MEMORY    ? sizeof(wasm_rt_memory_t)
                     : o->rec.kind == RT_REC_FUNCREF ? sizeof(wasm_rt_funcref_table_t)
                                                      : sizeof(wasm_rt_externref_table_t);
        bool inst_mem = o->rec.kind == RT_REC_INST_MEMORY;
        if (r.bad || o->rec.kind > RT_REC_INST_MEMORY ||
            (inst_mem ? o->rec.offset >= n_inst_mems : (uint64_t)o->rec.offset + fsz > s->state_size) ||
            (o->rec.declared_max != 0 && o->size > o->rec.declared_max && o->rec.declared_max != UINT32_MAX)) {
            why = "malformed object";
            break;
        }
        if (o->rec.kind == RT_REC_MEMORY || inst_mem) {
            if (o->size > 65536 || o->extent > (uint64_t)o->size * RT_PAGE) {
                why = "malformed memory";
                break;
            }
            const uint8_t *q = r_take(&r, o->extent);
            o->bytes = q ? kiln_malloc(o->extent ? o->extent : 1) : NULL;
            if (o->bytes == NULL) {
                why = q ? "out of memory" : "truncated";
                break;
            }
            memcpy(o->bytes, q, o->extent);
            si->n_memories++;
            si->image_bytes += o->extent;
            si->memory_bytes += (uint64_t)o->size * RT_PAGE;
        } else {
            si->n_tables++;
            si->table_elems += o->size;
        }
        if (o->rec.kind != RT_REC_FUNCREF)
            continue;
        if ((uint64_t)o->size * 32 > r.n - r.off) {
            why = "truncated";
            break;
        }
        o->refs = kiln_malloc((o->size ? o->size : 1) * sizeof(*o->refs));
        if (o->refs == NULL) {
            why = "out of memory";
            break;
        }
        for (uint32_t k = 0; k < o->size && why == NULL; k++) {
            snap_ref *sr = &o->refs[k];
            sr->func_abs = false; /* graph images are never saved */
            sr->inst_who = SELF;
            uint32_t np, nr;
            R_VAL(&r, uint32_t, np);
            R_VAL(&r, uint32_t, nr);
            if (np == UINT32_MAX) {
                sr->func_type = nr; /* never registered: kept as it was */
            } else if (r.bad || np > 1000 || nr > 1000) {
                why = "malformed function type";
            } else {
                wasm_rt_type_t ty[2000];
                for (uint32_t t = 0; t < np + nr; t++) {
                    uint32_t v;
                    R_VAL(&r, uint32_t, v);
                    ty[t] = (wasm_rt_type_t)v;
                }
                sr->func_type = pre && !r.bad ? rt_functype_register(np, nr, ty) : 0;
            }
            R_VAL(&r, int64_t, sr->func_off);
            R_VAL(&r, int64_t, sr->inst_off);
            R_VAL(&r, uint32_t, sr->port.obj);
            R_VAL(&r, uint32_t, sr->port.idx);
            if (sr->inst_off >= (int64_t)s->state_size || sr->func_off < -1 || sr->inst_off < -1)
                why = "malformed table element";
        }
    }
    if (why == NULL && (r.bad || r.off != r.n))
        why = "truncated or trailing bytes";
    if (why == NULL && pre != NULL) {
        s->pre = pre;
        s->base = artifact_base(d);
        s->portable = info->portable;
        if (s->base == NULL)
            why = "cannot find the artifact's load address";
        else if (other)
            why = remap_ports(s);
    }
    if (why != NULL || out == NULL) {
        kiln_snapshot_free(s);
        return why;
    }
    s->id = atomic_fetch_add(&next_id, 1);
    *out = s;
    return NULL;
}

static int img_read(const char *path, uint8_t **buf, size_t *len, kiln_err *err)
{
    if (fs_read_file(path, IMG_MAX_BYTES, buf, len) != 0) {
        int e = errno;
        return kiln_err_set(err, e == ENOENT ? KILN_ENOENT : KILN_ECACHE,
                            "snapshot image %s: %s", path, strerror(e));
    }
    return KILN_OK;
}

int kiln_snapshot_load(const kiln_instance_pre *pre, const char *path, const char *module_id,
                       kiln_snapshot **out, kiln_err *err)
{
    *out = NULL;
    uint8_t *buf;
    size_t len;
    int rc = img_read(path, &buf, &len, err);
    if (rc != KILN_OK)
        return rc;
    kiln_snapshot_file_info info;
    memset(&info, 0, sizeof(info));
    const char *why = img_parse(buf, len, pre, module_id, out, &info);
    kiln_free(buf);
    if (why != NULL)
        return kiln_err_set(err, KILN_EINVAL, "snapshot image %s: %s", path, why);
    return KILN_OK;
}

int kiln_snapshot_file_info_get(const char *path, kiln_snapshot_file_info *out, kiln_err *err)
{
    memset(out, 0, sizeof(*out));
    uint8_t *buf;
    size_t len;
    int rc = img_read(path, &buf, &len, err);
    if (rc != KILN_OK)
        return rc;
    const char *why = img_parse(buf, len, NULL, NULL, NULL, out);
    kiln_free(buf);
    if (why != NULL)
        return kiln_err_set(err, KILN_EINVAL, "snapshot image %s: %s", path, why);
    return KILN_OK;
}

int kiln_snapshot_cache_path(const kiln_instance_pre *pre, const char *module_id,
                             const char *variant, char *out, size_t size, kiln_err *err)
{
    const kiln_module *m = pre->m;
    const char *hash = module_id != NULL && module_id[0] ? module_id : m->d->content_hash;
    const char *slash = m->path ? strrchr(m->path, '/') : NULL;
    if (slash == NULL || hash == NULL || hash[0] == '\0')
        return kiln_err_set(err, KILN_ENOENT, "%s: no artifact file to keep an image next to",
                            m->name);
    int n = snprintf(out, size, "%.*s/images", (int)(slash - m->path), m->path);
    if (n < 0 || (size_t)n >= size)
        return kiln_err_set(err, KILN_EINVAL, "%s: image path too long", m->name);
    if (fs_mkdir_p(out) != 0)
        return kiln_err_set(err, KILN_ECACHE, "cannot create %s: %s", out, strerror(errno));
    n = snprintf(out, size, "%.*s/images/%s-%s.img", (int)(slash - m->path), m->path, hash,
                 variant);
    if (n < 0 || (size_t)n >= size)
        return kiln_err_set(err, KILN_EINVAL, "%s: image path too long", m->name);
    return KILN_OK;
}
