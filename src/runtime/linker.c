/*
 * linker.c - import definitions and their resolution into kiln_instance_pre.
 *
 * Every import is checked by module, name, kind and exact type before an
 * artifact is instantiated (wasm2c binds imports by name only, so this is the
 * one place types are enforced at run time; kiln_aot_compile runs the same
 * check before translation). Lookups are linear: they happen when a
 * kiln_instance_pre is built, never per request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "runtime/rt_int.h"

typedef struct lk_def {
    char *module;
    size_t module_len;
    char *name;
    size_t name_len;
    kiln_extern_kind kind;
    char *type;
    void (*fn)(void);  /* functions */
    void *ctx;         /* functions: callee context; others: the object */
    bool ctx_is_self;  /* host function: ctx is the calling kiln_instance */
    kiln_instance *inst; /* definitions from an instance: its type is live */
    uint32_t export_index;
    bool per_instance; /* memory: a new one for each instance (kiln_linker_define_memory) */
    /* an argument link (kiln_linker_define_arg): export `export_index` of the
     * instance passed as argument `arg` (of artifact `arg_d`) at instantiation */
    uint32_t arg;
    const kiln_descriptor *arg_d;
} lk_def;

struct kiln_linker {
    lk_def *defs;
    size_t n, cap;
};

int kiln_linker_new(kiln_linker **out)
{
    *out = kiln_calloc(1, sizeof(**out));
    return *out ? KILN_OK : KILN_ENOMEM;
}

void kiln_linker_free(kiln_linker *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        kiln_free(l->defs[i].module);
        kiln_free(l->defs[i].name);
        kiln_free(l->defs[i].type);
    }
    kiln_free(l->defs);
    kiln_free(l);
}

static int add_def(kiln_linker *l, const char *module, size_t mlen, const char *name, size_t nlen,
                   kiln_extern_kind kind, const char *type, lk_def **out)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        lk_def *d = kiln_realloc(l->defs, cap * sizeof(*d));
        if (d == NULL)
            return KILN_ENOMEM;
        l->defs = d;
        l->cap = cap;
    }
    lk_def *d = &l->defs[l->n];
    memset(d, 0, sizeof(*d));
    d->module = kiln_strndup(module, mlen);
    d->name = kiln_strndup(name, nlen);
    d->type = kiln_strdup(type ? type : "");
    if (!d->module || !d->name || !d->type) {
        kiln_free(d->module);
        kiln_free(d->name);
        kiln_free(d->type);
        return KILN_ENOMEM;
    }
    d->module_len = mlen;
    d->name_len = nlen;
    d->kind = kind;
    d->arg = RT_NO_ARG;
    l->n++;
    *out = d;
    return KILN_OK;
}

int kiln_linker_define_host(kiln_linker *l, const kiln_hostfn *fns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fns[i].fn == NULL && strcmp(fns[i].type, KILN_HOSTFN_MEMORY) == 0) {
            int rc = kiln_linker_define_memory(l, fns[i].module, fns[i].name);
            if (rc != KILN_OK)
                return rc;
            continue;
        }
        lk_def *d;
        int rc = add_def(l, fns[i].module, strlen(fns[i].module), fns[i].name,
                         strlen(fns[i].name), KILN_EXTERN_FUNC, fns[i].type, &d);
        if (rc != KILN_OK)
            return rc;
        d->fn = fns[i].fn;
        d->ctx_is_self = true;
    }
    return KILN_OK;
}

int kiln_linker_define_instance(kiln_linker *l, const char *module_name, kiln_instance *inst)
{
    const kiln_descriptor *d = inst->d;
    for (uint32_t i = 0; i < d->n_exports; i++) {
        const kiln_desc_export *ex = &d->exports[i];
        lk_def *def;
        int rc = add_def(l, module_name, strlen(module_name), ex->name, ex->name_len,
                         (kiln_extern_kind)ex->kind, ex->type, &def);
        if (rc != KILN_OK)
            return rc;
        def->inst = inst;
        def->export_index = i;
        if (ex->kind == KILN_EXTERN_FUNC) {
            def->fn = ex->func;
            def->ctx = inst->wasm;
        } else {
            def->ctx = ex->object(inst->wasm);
        }
    }
    return KILN_OK;
}

int kiln_linker_define_instance_export(kiln_linker *l, const char *module, const char *name,
                                       kiln_instance *inst, const char *export_name,
                                       kiln_extern_kind kind)
{
    int idx = kiln_module_find_export(inst->pre->m, export_name, kind);
    if (idx < 0)
        return KILN_ENOENT;
    const kiln_desc_export *ex = &inst->d->exports[idx];
    lk_def *def;
    int rc = add_def(l, module, strlen(module), name, strlen(name), kind, ex->type, &def);
    if (rc != KILN_OK)
        return rc;
    def->inst = inst;
    def->export_index = (uint32_t)idx;
    if (kind == KILN_EXTERN_FUNC) {
        def->fn = ex->func;
        def->ctx = inst->wasm;
    } else {
        def->ctx = ex->object(inst->wasm);
    }
    return KILN_OK;
}

static int add_arg_def(kiln_linker *l, const char *module, const char *name, kiln_module *m,
                       uint32_t arg, uint32_t idx)
{
    const kiln_desc_export *ex = &m->d->exports[idx];
    if (ex->kind == KILN_EXTERN_TAG)
        return KILN_EUNSUPPORTED;
    lk_def *def;
    int rc = add_def(l, module, strlen(module), name, strlen(name), (kiln_extern_kind)ex->kind,
                     ex->type, &def);
    if (rc != KILN_OK)
        return rc;
    def->arg = arg;
    def->arg_d = m->d;
    def->export_index = idx;
    if (ex->kind == KILN_EXTERN_FUNC)
        def->fn = ex->func; /* the same in every instance; ctx bound per instance */
    return KILN_OK;
}

int kiln_linker_define_arg(kiln_linker *l, const char *module_name, kiln_module *m, uint32_t arg)
{
    if (arg == RT_NO_ARG)
        return KILN_EINVAL;
    for (uint32_t i = 0; i < m->d->n_exports; i++) {
        if (m->d->exports[i].kind == KILN_EXTERN_TAG)
            continue; /* never importable through an argument (an import of it fails) */
        int rc = add_arg_def(l, module_name, m->d->exports[i].name, m, arg, i);
        if (rc != KILN_OK)
            return rc;
    }
    return KILN_OK;
}

int kiln_linker_define_arg_export(kiln_linker *l, const char *module, const char *name,
                                  kiln_module *m, uint32_t arg, const char *export_name,
                                  kiln_extern_kind kind)
{
    if (arg == RT_NO_ARG)
        return KILN_EINVAL;
    int idx = kiln_module_find_export(m, export_name, kind);
    if (idx < 0)
        return KILN_ENOENT;
    return add_arg_def(l, module, name, m, arg, (uint32_t)idx);
}

int kiln_linker_define_extern(kiln_linker *l, const char *module, const char *name,
                              kiln_extern_kind kind, const char *type, void *ptr)
{
    lk_def *d;
    int rc = add_def(l, module, strlen(module), name, strlen(name), kind, type, &d);
    if (rc == KILN_OK)
        d->ctx = ptr;
    return rc;
}

int kiln_linker_define_memory(kiln_linker *l, const char *module, const char *name)
{
    lk_def *d;
    int rc = add_def(l, module, strlen(module), name, strlen(name), KILN_EXTERN_MEMORY,
                     "memory (per instance)", &d);
    if (rc == KILN_OK)
        d->per_instance = true;
    return rc;
}

/* Parse "<word> MIN[ MAX]" limits of a memory or table type. */
static bool parse_limits(const char *type, char *word, size_t wsize, unsigned long long *min,
                         unsigned long long *max, bool *has_max)
{
    char w[32];
    unsigned long long a = 0, b = 0;
    int n = sscanf(type, "%31s %llu %llu", w, &a, &b);
    if (n < 2)
        return false;
    snprintf(word, wsize, "%s", w);
    *min = a;
    *max = b;
    *has_max = n == 3;
    return true;
}

/* Current type of a definition: memories and tables exported by a live
 * instance are matched against their current size (as the spec requires). */
static void def_type(const lk_def *d, char *buf, size_t size)
{
    snprintf(buf, size, "%s", d->type);
    if (d->kind == KILN_EXTERN_MEMORY && d->ctx != NULL) {
        const wasm_rt_memory_t *m = d->ctx;
        char w[32];
        unsigned long long mn, mx;
        bool has_max;
        if (parse_limits(d->type, w, sizeof(w), &mn, &mx, &has_max)) {
            if (has_max)
                snprintf(buf, size, "memory %u %llu", m->pages, mx);
            else
                snprintf(buf, size, "memory %u", m->pages);
        }
    } else if (d->kind == KILN_EXTERN_TABLE && d->ctx != NULL) {
        const wasm_rt_funcref_table_t *t = d->ctx;
        char w[32];
        unsigned long long mn, mx;
        bool has_max;
        if (parse_limits(d->type, w, sizeof(w), &mn, &mx, &has_max)) {
            if (has_max)
                snprintf(buf, size, "%s %u %llu", w, t->size, mx);
            else
                snprintf(buf, size, "%s %u", w, t->size);
        }
    }
}

static bool type_matches(kiln_extern_kind kind, const char *want, const char *have)
{
    if (kind != KILN_EXTERN_MEMORY && kind != KILN_EXTERN_TABLE)
        return strcmp(want, have) == 0;
    char w1[32], w2[32];
    unsigned long long min1, max1, min2, max2;
    bool hm1, hm2;
    if (!parse_limits(want, w1, sizeof(w1), &min1, &max1, &hm1) ||
        !parse_limits(have, w2, sizeof(w2), &min2, &max2, &hm2))
        return false;
    if (strcmp(w1, w2) != 0 || min2 < min1)
        return false;
    if (hm1 && (!hm2 || max2 > max1))
        return false;
    return true;
}

static void display(const char *s, size_t len, char *dst, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            dst[o++] = (char)c;
        else
            o += (size_t)snprintf(dst + o, size - o, "\\x%02x", c);
    }
    dst[o] = '\0';
}

static const char *kind_name(kiln_extern_kind k)
{
    static const char *names[] = {"function", "table", "memory", "global", "tag"};
    return (unsigned)k < 5 ? names[k] : "extern";
}

static const lk_def *lookup(const kiln_linker *l, const kiln_extern_info *im, const lk_def **named)
{
    *named = NULL;
    /* Later definitions shadow earlier ones (re-registration). */
    for (size_t i = l->n; i-- > 0;) {
        const lk_def *d = &l->defs[i];
        if (d->module_len != im->module_len || d->name_len != im->name_len ||
            memcmp(d->module, im->module, im->module_len) != 0 ||
            memcmp(d->name, im->name, im->name_len) != 0)
            continue;
        if (*named == NULL)
            *named = d;
        if (d->per_instance) {
            /* Sized from the import itself at instantiation: any plain
             * memory type fits (memory64 and shared memories never get
             * this far, the reader refuses them). */
            if (im->kind == KILN_EXTERN_MEMORY && strncmp(im->type, "memory ", 7) == 0)
                return d;
            continue;
        }
        char have[128];
        def_type(d, have, sizeof(have));
        if (d->kind == im->kind && type_matches(im->kind, im->type, have))
            return d;
    }
    return NULL;
}

bool kiln_linker_provides(const kiln_linker *l, const kiln_extern_info *im, kiln_err *err)
{
    const lk_def *named;
    if (lookup(l, im, &named) != NULL)
        return true;
    char m[160], n[160];
    display(im->module, im->module_len, m, sizeof(m));
    display(im->name, im->name_len, n, sizeof(n));
    if (named == NULL)
        kiln_err_set(err, KILN_EIMPORT, "%s.%s (%s %s) is not provided", m, n,
                     kind_name(im->kind), im->type);
    else {
        char have[128];
        def_type(named, have, sizeof(have));
        kiln_err_set(err, KILN_EIMPORT, "%s.%s is imported as %s %s but provided as %s %s", m, n,
                     kind_name(im->kind), im->type, kind_name(named->kind), have);
    }
    return false;
}

/* Record that import slot `slot` gets a fresh memory per instance, sized by
 * the import's own limits (type "memory MIN[ MAX]"). */
static int add_inst_mem(kiln_instance_pre *pre, uint32_t slot, const char *type)
{
    char w[32];
    unsigned long long min = 0, max = 0;
    bool has_max = false;
    if (!parse_limits(type, w, sizeof(w), &min, &max, &has_max))
        min = 0;
    rt_inst_mem *a = kiln_realloc(pre->inst_mems, (pre->n_inst_mems + 1) * sizeof(*a));
    if (a == NULL)
        return KILN_ENOMEM;
    pre->inst_mems = a;
    rt_inst_mem *e = &a[pre->n_inst_mems++];
    e->slot = slot;
    e->min_pages = (uint32_t)(min > RT_MAX_PAGES + 1ull ? RT_MAX_PAGES + 1ull : min);
    /* No declared maximum: the 4 GiB of a 32-bit memory; the function's
     * memory limit caps it further (wasm_rt_allocate_memory). */
    e->max_pages = has_max && max <= 65536 ? (uint32_t)max : 65536u;
    return KILN_OK;
}

/* Record that import slot `slot` is bound per instantiation to an export of
 * argument def->arg (kiln_linker_define_arg). */
static int add_arg_slot(kiln_instance_pre *pre, uint32_t slot, const lk_def *def)
{
    if (def->arg >= pre->n_args) {
        const kiln_descriptor **a = kiln_realloc(pre->arg_d, (def->arg + 1) * sizeof(*a));
        if (a == NULL)
            return KILN_ENOMEM;
        for (uint32_t k = pre->n_args; k <= def->arg; k++)
            a[k] = NULL;
        pre->arg_d = a;
        pre->n_args = def->arg + 1;
    }
    if (pre->arg_d[def->arg] != NULL && pre->arg_d[def->arg] != def->arg_d)
        return KILN_EINVAL;
    pre->arg_d[def->arg] = def->arg_d;
    rt_arg_slot *s = kiln_realloc(pre->arg_slots, (pre->n_arg_slots + 1) * sizeof(*s));
    if (s == NULL)
        return KILN_ENOMEM;
    pre->arg_slots = s;
    s[pre->n_arg_slots++] = (rt_arg_slot){slot, def->arg, def->export_index};
    return KILN_OK;
}

int kiln_instance_pre_new(kiln_module *m, const kiln_linker *l, kiln_instance_pre **out,
                          kiln_err *err)
{
    *out = NULL;
    const kiln_descriptor *d = m->d;
    kiln_instance_pre *pre = kiln_calloc(1, sizeof(*pre));
    if (pre == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory linking", m->name);
    pre->n_slots = d->n_imports;
    pre->slots = kiln_calloc(d->n_imports, sizeof(kiln_slot));
    pre->ctx_is_self = kiln_calloc(d->n_imports, sizeof(bool));
    if (pre->slots == NULL || pre->ctx_is_self == NULL) {
        kiln_instance_pre_free(pre);
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory linking", m->name);
    }
    char problems[sizeof(err->msg)];
    size_t plen = 0;
    unsigned missing = 0;
    problems[0] = '\0';
    for (uint32_t i = 0; i < d->n_imports; i++) {
        kiln_extern_info im;
        kiln_module_import(m, i, &im);
        const lk_def *named;
        const lk_def *def = lookup(l, &im, &named);
        if (def == NULL) {
            kiln_err e;
            kiln_linker_provides(l, &im, &e);
            missing++;
            if (plen + strlen(e.msg) + 8 < sizeof(problems))
                plen += (size_t)snprintf(problems + plen, sizeof(problems) - plen, "%s%s",
                                         missing > 1 ? "; " : "", e.msg);
            continue;
        }
        if (def->per_instance) {
            int rc = add_inst_mem(pre, i, im.type);
            if (rc != KILN_OK) {
                kiln_instance_pre_free(pre);
                return kiln_err_set(err, rc, "%s: out of memory linking", m->name);
            }
        }
        if (def->arg != RT_NO_ARG) {
            int rc = add_arg_slot(pre, i, def);
            if (rc != KILN_OK) {
                kiln_instance_pre_free(pre);
                return kiln_err_set(err, rc, "%s: import %u is linked to argument %u, which "
                                    "another import links as another module", m->name,
                                    (unsigned)i, (unsigned)def->arg);
            }
        }
        pre->slots[i].fn = def->fn;
        pre->slots[i].ctx = def->ctx;
        pre->slots[i].host = def->ctx_is_self;
        pre->ctx_is_self[i] = def->ctx_is_self;
        if (im.kind == KILN_EXTERN_TAG && d->imports[i].tag_var != NULL)
            *d->imports[i].tag_var = (const uint32_t *)def->ctx;
    }
    if (missing > 0) {
        kiln_instance_pre_free(pre);
        return kiln_err_set(err, KILN_EIMPORT, "%s: %u unresolved import%s: %s; the function's ABI "
                            "does not provide %s", m->name, missing, missing > 1 ? "s" : "",
                            problems, missing > 1 ? "them" : "it");
    }
    pre->m = kiln_module_retain(m);
    *out = pre;
    return KILN_OK;
}

void kiln_instance_pre_free(kiln_instance_pre *pre)
{
    if (pre == NULL)
        return;
    if (pre->m)
        kiln_module_release(pre->m);
    kiln_free(pre->slots);
    kiln_free(pre->ctx_is_self);
    kiln_free(pre->inst_mems);
    kiln_free(pre->arg_slots);
    kiln_free(pre->arg_d);
    kiln_free(pre);
}

kiln_module *kiln_instance_pre_module(const kiln_instance_pre *pre)
{
    return pre->m;
}
