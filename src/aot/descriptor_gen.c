/*
 * descriptor_gen.c - write the C descriptor compiled into every artifact:
 * import shims that call through the instance's kiln_link (so imports are
 * bound per instance, by Kiln's type-checked linker, never by symbol name
 * against the host), typed export trampolines, and the kiln_descriptor
 * record (src/runtime/descriptor.h). Original names are written only as
 * octal escapes inside string literals; no guest text reaches C otherwise.
 */
#include <inttypes.h>
#include <string.h>

#include "aot/descriptor_gen.h"
#include "runtime/descriptor.h"

static const char *ctype(char t)
{
    switch (t) {
    case 'i': return "u32";
    case 'j': return "u64";
    case 'f': return "f32";
    case 'd': return "f64";
    case 'e': return "wasm_rt_externref_t";
    case 'r': return "wasm_rt_funcref_t";
    }
    return NULL;
}

static const char *union_field(char t)
{
    switch (t) {
    case 'i': return "i32";
    case 'j': return "i64";
    case 'f': return "f32";
    case 'd': return "f64";
    }
    return "ref";
}

/* Split "pp>rr" into params and results; false if malformed or a type has
 * no C mapping. */
static bool split_sig(const char *sig, char *params, char *results, size_t size)
{
    const char *gt = strchr(sig, '>');
    if (gt == NULL || (size_t)(gt - sig) >= size || strlen(gt + 1) >= size)
        return false;
    memcpy(params, sig, (size_t)(gt - sig));
    params[gt - sig] = '\0';
    strcpy(results, gt + 1);
    for (const char *p = params; *p; p++)
        if (ctype(*p) == NULL)
            return false;
    for (const char *p = results; *p; p++)
        if (ctype(*p) == NULL)
            return false;
    return true;
}

/* wasm2c's return type for a result list. */
static void ret_type(const char *results, char *buf, size_t size)
{
    size_t n = strlen(results);
    if (n == 0)
        snprintf(buf, size, "void");
    else if (n == 1)
        snprintf(buf, size, "%s", ctype(results[0]));
    else
        snprintf(buf, size, "struct wasm_multi_%s", results);
}

static void put_cstring(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
            c == ' ' || c == '.' || c == '>')
            fputc(c, f);
        else
            fprintf(f, "\\%03o", c);
    }
    fputc('"', f);
}

static const char *object_ctype(const wr_extern *x)
{
    switch (x->kind) {
    case KILN_EXTERN_MEMORY: return "wasm_rt_memory_t";
    case KILN_EXTERN_TABLE:
        return strncmp(x->type, "externref", 9) == 0 ? "wasm_rt_externref_table_t"
                                                     : "wasm_rt_funcref_table_t";
    case KILN_EXTERN_GLOBAL: {
        const char *t = x->type;
        if (strncmp(t, "mut ", 4) == 0)
            t += 4;
        return ctype(t[0]);
    }
    default: return NULL;
    }
}

static int gen_import(FILE *f, const kiln_wasm_info *info, uint32_t i, kiln_err *err)
{
    const wr_extern *im = &info->imports[i];
    char sym[64], inst[64];
    snprintf(sym, sizeof(sym), "Z_m%" PRIu32 "Z_f%" PRIu32, im->module_group, i);
    snprintf(inst, sizeof(inst), "struct Z_m%" PRIu32 "_instance_t", im->module_group);
    if (im->kind == KILN_EXTERN_FUNC) {
        char params[WR_MAX_TYPE], results[WR_MAX_TYPE], ret[WR_MAX_TYPE + 32];
        if (!split_sig(im->type, params, results, sizeof(params)))
            return kiln_err_set(err, KILN_EUNSUPPORTED, "import %" PRIu32 " has unsupported type %s",
                                i, im->type);
        ret_type(results, ret, sizeof(ret));
        fprintf(f, "%s %s(%s *p", ret, sym, inst);
        for (size_t k = 0; params[k]; k++)
            fprintf(f, ", %s a%zu", ctype(params[k]), k);
        fprintf(f, ") {\n  const kiln_slot *s = &kiln_link_of(p)->slots[%" PRIu32 "];\n", i);
        /* Host functions run inside the runtime's host bracket; wasm-to-wasm
         * links are plain calls. */
        bool has_ret = strcmp(ret, "void") != 0;
        for (int host = 1; host >= 0; host--) {
            fprintf(f, host ? "  if (s->host) {\n    wasm_rt_kiln_host_enter();\n    "
                            : "  ");
            if (host && has_ret)
                fprintf(f, "%s r = ", ret);
            else if (has_ret)
                fprintf(f, "return ");
            fprintf(f, "((%s (*)(void *", ret);
            for (size_t k = 0; params[k]; k++)
                fprintf(f, ", %s", ctype(params[k]));
            fprintf(f, "))s->fn)(s->ctx");
            for (size_t k = 0; params[k]; k++)
                fprintf(f, ", a%zu", k);
            fprintf(f, ");\n");
            if (host)
                fprintf(f, "    wasm_rt_kiln_host_leave();\n    return%s;\n  }\n",
                        has_ret ? " r" : "");
        }
        fprintf(f, "}\n");
    } else if (im->kind == KILN_EXTERN_TAG) {
        fprintf(f, "const u32 *%s;\n", sym);
    } else {
        const char *ct = object_ctype(im);
        if (ct == NULL)
            return kiln_err_set(err, KILN_EUNSUPPORTED, "import %" PRIu32 " has unsupported type %s",
                                i, im->type);
        fprintf(f, "%s *%s(%s *p) {\n  return (%s *)kiln_link_of(p)->slots[%" PRIu32 "].ctx;\n}\n",
                ct, sym, inst, ct, i);
    }
    return KILN_OK;
}

static const char *export_type(const kiln_wasm_info *info, const wr_extern *ex)
{
    if (ex->kind == KILN_EXTERN_FUNC && ex->index < info->n_funcs &&
        info->func_types[ex->index] < info->n_types)
        return info->types[info->func_types[ex->index]];
    return ex->type;
}

static int gen_export(FILE *f, const kiln_wasm_info *info, const char *c_name, uint32_t i,
                      kiln_err *err)
{
    const wr_extern *ex = &info->exports[i];
    char sym[96];
    snprintf(sym, sizeof(sym), "Z_%sZ_e%" PRIu32, c_name, i);
    if (ex->kind == KILN_EXTERN_FUNC) {
        char params[WR_MAX_TYPE], results[WR_MAX_TYPE], ret[WR_MAX_TYPE + 32];
        if (!split_sig(export_type(info, ex), params, results, sizeof(params)))
            return kiln_err_set(err, KILN_EUNSUPPORTED, "export %" PRIu32 " has unsupported type",
                                i);
        ret_type(results, ret, sizeof(ret));
        fprintf(f, "static void kt%" PRIu32 "(void *inst, const kiln_desc_value *a, "
                   "kiln_desc_value *r) {\n  (void)a; (void)r;\n  ", i);
        size_t nres = strlen(results);
        if (nres == 1)
            fprintf(f, "%s v = ", ret);
        else if (nres > 1)
            fprintf(f, "%s v = ", ret);
        fprintf(f, "%s(inst", sym);
        for (size_t k = 0; params[k]; k++) {
            if (params[k] == 'r')
                fprintf(f, ", a[%zu].ref ? *(const wasm_rt_funcref_t *)a[%zu].ref : "
                           "wasm_rt_funcref_null_value", k, k);
            else
                fprintf(f, ", a[%zu].%s", k, union_field(params[k]));
        }
        fprintf(f, ");\n");
        for (size_t k = 0; k < nres; k++) {
            char val[64];
            if (nres == 1)
                snprintf(val, sizeof(val), "v");
            else
                snprintf(val, sizeof(val), "v.%c%zu", results[k], k);
            if (results[k] == 'r')
                fprintf(f, "  r[%zu].ref = (void *)%s.func;\n", k, val);
            else
                fprintf(f, "  r[%zu].%s = %s;\n", k, union_field(results[k]), val);
        }
        fprintf(f, "}\n");
    } else if (ex->kind == KILN_EXTERN_TAG) {
        fprintf(f, "static void *ko%" PRIu32 "(void *inst) {\n  (void)inst;\n  return (void *)%s;\n}\n",
                i, sym);
    } else {
        fprintf(f, "static void *ko%" PRIu32 "(void *inst) {\n  return (void *)%s(inst);\n}\n", i,
                sym);
    }
    return KILN_OK;
}

int kiln_desc_generate(const kiln_wasm_info *info, const char *c_name, const char *gen_header,
                       const char *key, FILE *f, kiln_err *err)
{
    int rc = KILN_OK;
    fprintf(f, "/* Generated by Kiln: the artifact's descriptor. Do not edit. */\n"
               "#include <stddef.h>\n#include \"%s\"\n#include \"kiln_descriptor.h\"\n\n",
            gen_header);
    for (uint32_t i = 0; i < info->n_imports && rc == KILN_OK; i++)
        rc = gen_import(f, info, i, err);
    for (uint32_t i = 0; i < info->n_exports && rc == KILN_OK; i++)
        rc = gen_export(f, info, c_name, i, err);
    if (rc != KILN_OK)
        return rc;

    /* Import table. */
    fprintf(f, "\nstatic const kiln_desc_import kiln_imports[] = {\n");
    for (uint32_t i = 0; i < info->n_imports; i++) {
        const wr_extern *im = &info->imports[i];
        fprintf(f, "  {");
        put_cstring(f, im->module, im->module_len);
        fprintf(f, ", %" PRIu32 ", ", im->module_len);
        put_cstring(f, im->name, im->name_len);
        fprintf(f, ", %" PRIu32 ", %u, ", im->name_len, (unsigned)im->kind);
        put_cstring(f, im->type, strlen(im->type));
        if (im->kind == KILN_EXTERN_TAG)
            fprintf(f, ", &Z_m%" PRIu32 "Z_f%" PRIu32 "},\n", im->module_group, i);
        else
            fprintf(f, ", NULL},\n");
    }
    if (info->n_imports == 0)
        fprintf(f, "  {0}\n");
    fprintf(f, "};\n\nstatic const kiln_desc_export kiln_exports[] = {\n");
    for (uint32_t i = 0; i < info->n_exports; i++) {
        const wr_extern *ex = &info->exports[i];
        const char *t = export_type(info, ex);
        fprintf(f, "  {");
        put_cstring(f, ex->name, ex->name_len);
        fprintf(f, ", %" PRIu32 ", %u, ", ex->name_len, (unsigned)ex->kind);
        put_cstring(f, t, strlen(t));
        if (ex->kind == KILN_EXTERN_FUNC)
            fprintf(f, ", (void (*)(void))Z_%sZ_e%" PRIu32 ", kt%" PRIu32 ", NULL},\n", c_name, i, i);
        else
            fprintf(f, ", NULL, NULL, ko%" PRIu32 "},\n", i);
    }
    if (info->n_exports == 0)
        fprintf(f, "  {0}\n");
    fprintf(f, "};\n\n");

    /* Memory 0: imported (a pointer field named like its import symbol),
     * exported (use the accessor), or wasm2c's own field w2c_M0. */
    uint32_t mem_imports = 0, first_mem_import = 0;
    for (uint32_t i = 0; i < info->n_imports; i++)
        if (info->imports[i].kind == KILN_EXTERN_MEMORY && mem_imports++ == 0)
            first_mem_import = i;
    int32_t mem_export = -1;
    for (uint32_t i = 0; i < info->n_exports && mem_export < 0; i++)
        if (info->exports[i].kind == KILN_EXTERN_MEMORY && info->exports[i].index == 0)
            mem_export = (int32_t)i;
    bool has_mem0 = info->n_memories > 0;
    if (has_mem0) {
        fprintf(f, "static wasm_rt_memory_t *kiln_memory0(void *p) {\n  Z_%s_instance_t *inst = p;\n",
                c_name);
        if (mem_imports > 0)
            fprintf(f, "  return inst->Z_m%" PRIu32 "Z_f%" PRIu32 ";\n",
                    info->imports[first_mem_import].module_group, first_mem_import);
        else if (mem_export >= 0)
            fprintf(f, "  return Z_%sZ_e%" PRId32 "(inst);\n", c_name, mem_export);
        else
            fprintf(f, "  return &inst->w2c_M0;\n");
        fprintf(f, "}\n\n");
    }

    /* Instantiate: every import-module pointer gets the same link. */
    fprintf(f, "static void kiln_instantiate(void *inst, kiln_link *link) {\n  (void)link;\n"
               "  Z_%s_instantiate((Z_%s_instance_t *)inst", c_name, c_name);
    for (uint32_t g = 0; g < info->n_import_modules; g++)
        fprintf(f, ", (struct Z_m%" PRIu32 "_instance_t *)link", g);
    fprintf(f, ");\n}\n\nstatic void kiln_free_instance(void *inst) {\n"
               "  Z_%s_free((Z_%s_instance_t *)inst);\n}\n\n", c_name, c_name);

    fprintf(f, "__attribute__((visibility(\"default\"))) const kiln_descriptor kiln_artifact_descriptor = {\n"
               "  %d, sizeof(Z_%s_instance_t), %" PRIu32 ", %" PRIu32 ", kiln_imports, kiln_exports,\n"
               "  Z_%s_init_module, kiln_instantiate, kiln_free_instance, %s, \"%s\"\n};\n",
            KILN_RT_ABI_VERSION, c_name, info->n_imports, info->n_exports, c_name,
            has_mem0 ? "kiln_memory0" : "NULL", key);
    return ferror(f) ? kiln_err_set(err, KILN_EIO, "cannot write the descriptor") : KILN_OK;
}
