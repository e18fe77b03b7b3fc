/*
 * em_function.c - user host functions (extism_function_*) and what they see
 * of the calling plugin (extism_current_plugin_*).
 *
 * Kiln calls a host function natively, as R fn(kiln_instance *, args...)
 * with C types per signature letter, and has no per-function context. A
 * libffi closure gives each ExtismFunction its own native entry of exactly
 * its signature that lands in em_fn_dispatch with the em_fn as user data;
 * the dispatcher boxes the arguments into ExtismVals, calls the user's
 * callback and unboxes the results (several results are wasm2c's
 * struct-by-value return). The calling plugin is found from the instance
 * (state slot KILN_STATE_USER).
 */
#include <stdlib.h>
#include <string.h>

#include "abi/extism/xtm_embed.h"
#include "base/alloc.h"
#include "embed/embed_int.h"

EXTISM_API ExtismFunction *extism_function_new(const char *name, const ExtismValType *inputs,
                                               ExtismSize n_inputs, const ExtismValType *outputs,
                                               ExtismSize n_outputs, ExtismFunctionType func,
                                               void *user_data, void (*free_user_data)(void *_))
{
    if (name == NULL || func == NULL || n_inputs > EM_MAX_PARAMS || n_outputs > EM_MAX_PARAMS)
        return NULL;
    ExtismFunction *h = kiln_calloc(1, sizeof(*h));
    em_fn *f = kiln_calloc(1, sizeof(*f));
    if (h == NULL || f == NULL)
        goto fail;
    f->refs = 1;
    f->name = kiln_strdup(name);
    f->ns = kiln_strdup(EM_DEFAULT_NAMESPACE);
    f->in = kiln_calloc(n_inputs + 1, sizeof(*f->in));
    f->out = kiln_calloc(n_outputs + 1, sizeof(*f->out));
    if (f->name == NULL || f->ns == NULL || f->in == NULL || f->out == NULL)
        goto fail;
    if (n_inputs)
        memcpy(f->in, inputs, n_inputs * sizeof(*f->in));
    if (n_outputs)
        memcpy(f->out, outputs, n_outputs * sizeof(*f->out));
    f->n_in = (size_t)n_inputs;
    f->n_out = (size_t)n_outputs;
    f->func = func;
    f->user_data = user_data;
    f->free_user_data = free_user_data;
    h->fn = f;
    return h;
fail:
    if (f != NULL) {
        /* Not the user's failure: their data stays theirs (no destructor). */
        f->free_user_data = NULL;
        em_fn_release(f);
    }
    kiln_free(h);
    return NULL;
}

EXTISM_API void extism_function_free(ExtismFunction *h)
{
    if (h == NULL)
        return;
    em_fn_release(h->fn);
    kiln_free(h);
}

EXTISM_API void extism_function_set_namespace(ExtismFunction *h, const char *ns)
{
    if (h == NULL || h->fn == NULL || ns == NULL)
        return;
    char *copy = kiln_strdup(ns);
    if (copy == NULL)
        return;
    kiln_free(h->fn->ns);
    h->fn->ns = copy;
}

em_fn *em_fn_retain(em_fn *f)
{
    atomic_fetch_add(&f->refs, 1);
    return f;
}

void em_fn_release(em_fn *f)
{
    if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    if (f->free_user_data != NULL)
        f->free_user_data(f->user_data);
    if (f->closure != NULL)
        ffi_closure_free(f->closure);
    kiln_free(f->name);
    kiln_free(f->ns);
    kiln_free(f->in);
    kiln_free(f->out);
    kiln_free(f);
}

/* ---- the native entry ------------------------------------------------------------ */

static void em_fn_dispatch(ffi_cif *cif, void *ret, void **args, void *user)
{
    (void)cif;
    em_fn *f = user;
    kiln_instance *inst = *(kiln_instance **)args[0];
    ExtismVal in[EM_MAX_PARAMS], out[EM_MAX_PARAMS];
    for (size_t i = 0; i < f->n_in; i++) {
        in[i].t = f->in[i];
        switch (f->in[i]) {
        case I32: in[i].v.i32 = *(int32_t *)args[i + 1]; break;
        case I64: in[i].v.i64 = *(int64_t *)args[i + 1]; break;
        case F32: in[i].v.f32 = *(float *)args[i + 1]; break;
        default: in[i].v.f64 = *(double *)args[i + 1]; break;
        }
    }
    for (size_t i = 0; i < f->n_out; i++) {
        out[i].t = f->out[i];
        out[i].v.i64 = 0;
    }
    ExtismCurrentPlugin cp = {inst, kiln_instance_state(inst, KILN_STATE_USER)};
    f->func(&cp, f->n_in ? in : NULL, f->n_in, f->n_out ? out : NULL, f->n_out, f->user_data);
    if (f->n_out == 0)
        return;
    if (f->n_out == 1) {
        /* libffi widens integral results to ffi_arg. */
        switch (f->out[0]) {
        case I32: *(ffi_arg *)ret = (ffi_arg)(uint32_t)out[0].v.i32; break;
        case I64: *(uint64_t *)ret = (uint64_t)out[0].v.i64; break;
        case F32: *(float *)ret = out[0].v.f32; break;
        default: *(double *)ret = out[0].v.f64; break;
        }
        return;
    }
    /* wasm2c's struct wasm_multi_<letters>: the fields in order, C layout. */
    size_t offsets[EM_MAX_PARAMS];
    ffi_get_struct_offsets(FFI_DEFAULT_ABI, &f->ret_struct, offsets);
    for (size_t i = 0; i < f->n_out; i++) {
        uint8_t *p = (uint8_t *)ret + offsets[i];
        switch (f->out[i]) {
        case I32: memcpy(p, &out[i].v.i32, 4); break;
        case I64: memcpy(p, &out[i].v.i64, 8); break;
        case F32: memcpy(p, &out[i].v.f32, 4); break;
        default: memcpy(p, &out[i].v.f64, 8); break;
        }
    }
}

static int type_of(ExtismValType t, ffi_type **ft, char *letter)
{
    switch (t) {
    case I32: *ft = &ffi_type_uint32; *letter = KILN_T_I32; return 0;
    case I64: *ft = &ffi_type_uint64; *letter = KILN_T_I64; return 0;
    case F32: *ft = &ffi_type_float; *letter = KILN_T_F32; return 0;
    case F64: *ft = &ffi_type_double; *letter = KILN_T_F64; return 0;
    default: return -1;
    }
}

static const char *type_name(ExtismValType t)
{
    static const char *const names[] = {"I32", "I64", "F32", "F64", "V128", "FuncRef",
                                        "ExternRef"};
    return (unsigned)t < 7 ? names[t] : "unknown";
}

int em_fn_bind(em_fn *f, kiln_err *err)
{
    if (f->closure != NULL)
        return KILN_OK;
    size_t k = 0;
    f->args[0] = &ffi_type_pointer; /* the calling kiln_instance */
    for (size_t i = 0; i < f->n_in; i++)
        if (type_of(f->in[i], &f->args[i + 1], &f->sig[k++]) != 0)
            return kiln_err_set(err, KILN_EUNSUPPORTED,
                                "host function %s::%s: parameter %zu has type %s; Kiln's host "
                                "functions take I32, I64, F32 and F64",
                                f->ns, f->name, i, type_name(f->in[i]));
    f->sig[k++] = '>';
    ffi_type *rt = &ffi_type_void;
    for (size_t i = 0; i < f->n_out; i++)
        if (type_of(f->out[i], &f->ret_elems[i], &f->sig[k++]) != 0)
            return kiln_err_set(err, KILN_EUNSUPPORTED,
                                "host function %s::%s: result %zu has type %s; Kiln's host "
                                "functions return I32, I64, F32 and F64",
                                f->ns, f->name, i, type_name(f->out[i]));
    f->sig[k] = '\0';
    if (f->n_out == 1) {
        rt = f->ret_elems[0];
    } else if (f->n_out > 1) {
        f->ret_elems[f->n_out] = NULL;
        f->ret_struct.size = 0;
        f->ret_struct.alignment = 0;
        f->ret_struct.type = FFI_TYPE_STRUCT;
        f->ret_struct.elements = f->ret_elems;
        rt = &f->ret_struct;
    }
    if (ffi_prep_cif(&f->cif, FFI_DEFAULT_ABI, (unsigned)f->n_in + 1, rt, f->args) != FFI_OK)
        return kiln_err_set(err, KILN_EUNSUPPORTED, "host function %s::%s: cannot build a "
                            "native entry for signature %s", f->ns, f->name, f->sig);
    void *code = NULL;
    f->closure = ffi_closure_alloc(sizeof(ffi_closure), &code);
    if (f->closure == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "host function %s::%s: out of memory", f->ns,
                            f->name);
    if (ffi_prep_closure_loc(f->closure, &f->cif, em_fn_dispatch, f, code) != FFI_OK) {
        ffi_closure_free(f->closure);
        f->closure = NULL;
        return kiln_err_set(err, KILN_EUNSUPPORTED, "host function %s::%s: cannot build a "
                            "native entry", f->ns, f->name);
    }
    f->code = (void (*)(void))code;
    return KILN_OK;
}

/* ---- the calling plugin -------------------------------------------------------------- */

static xtm_ctx *ctx_of(ExtismCurrentPlugin *p)
{
    return p != NULL && p->inst != NULL ? kiln_instance_state(p->inst, KILN_STATE_EXTISM) : NULL;
}

EXTISM_API void *extism_current_plugin_host_context(ExtismCurrentPlugin *p)
{
    return p != NULL && p->plugin != NULL ? p->plugin->host_context : NULL;
}

EXTISM_API uint8_t *extism_current_plugin_memory(ExtismCurrentPlugin *p)
{
    xtm_ctx *c = ctx_of(p);
    return c != NULL ? xtm_embed_mem_base(c) : NULL;
}

EXTISM_API ExtismMemoryHandle extism_current_plugin_memory_alloc(ExtismCurrentPlugin *p,
                                                                 ExtismSize n)
{
    xtm_ctx *c = ctx_of(p);
    return c != NULL ? xtm_embed_mem_alloc(c, n) : 0;
}

EXTISM_API ExtismSize extism_current_plugin_memory_length(ExtismCurrentPlugin *p,
                                                          ExtismMemoryHandle h)
{
    xtm_ctx *c = ctx_of(p);
    return c != NULL ? xtm_embed_mem_length(c, h) : 0;
}

EXTISM_API void extism_current_plugin_memory_free(ExtismCurrentPlugin *p, ExtismMemoryHandle h)
{
    xtm_ctx *c = ctx_of(p);
    if (c != NULL)
        xtm_embed_mem_free(c, h);
}
