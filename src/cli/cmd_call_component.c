/*
 * cmd_call_component.c - `kiln call component.wasm EXPORT --input-json
 * '[ARG, ...]'`: call a lifted export of a component and print its result as
 * JSON (mapping in src/component/cm_json.h).
 *
 * This first slice runs components whose export is lifted from a core module
 * that imports nothing: that module is compiled through the AOT cache (keyed
 * by its own bytes, so it is compiled once per core module), instantiated,
 * and the export called through the Canonical ABI (src/component/cm_canon.c)
 * with the guest's memory, realloc and post-return as the lift names them.
 * Components whose core modules import anything (WASI through the preview-1
 * adapter, other instances) are refused with the list of what is missing.
 *
 * Exit status: 0 success; 1 load/compile/instantiate errors or bad input;
 * 134 on a trap (a guest trap or a Canonical ABI trap); 2 usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aot/wasm_reader.h"
#include "base/alloc.h"
#include "cli/cli.h"
#include "component/cm.h"
#include "component/cm_canon.h"
#include "component/cm_json.h"
#include "kiln/abi.h"
#include "kiln/aot.h"
#include "kiln/runtime.h"

#define EXIT_TRAP 134

typedef struct call_cx {
    kiln_instance *inst;
    const char *realloc_name;
    wasm_rt_memory_t *memory;
} call_cx;

static void refresh(cm_cx *cx)
{
    call_cx *c = cx->ud;
    cx->mem = c->memory->data;
    cx->mem_len = c->memory->size;
}

static int guest_realloc(cm_cx *cx, uint32_t old_ptr, uint32_t old_size, uint32_t align,
                         uint32_t new_size, uint32_t *out)
{
    call_cx *c = cx->ud;
    if (c->realloc_name == NULL)
        return kiln_err_set(cx->err, KILN_ETRAP, "canonical ABI: the export has no realloc");
    kiln_value args[4] = {{.i32 = old_ptr}, {.i32 = old_size}, {.i32 = align}, {.i32 = new_size}};
    kiln_value res[1];
    int rc = kiln_instance_call(c->inst, c->realloc_name, "iiii>i", args, res, cx->err);
    if (rc != KILN_OK)
        return rc;
    refresh(cx); /* realloc may have grown memory */
    *out = res[0].i32;
    return KILN_OK;
}

/* The core export name behind core func `i`, if it aliases core instance `ci`. */
static const char *core_export(const cm_component *c, uint32_t i, uint32_t ci)
{
    const cm_core_func *f = c->space[CM_SORT_CORE_FUNC][i];
    return f->how == CM_CORE_ALIAS && f->instance == ci ? f->name : NULL;
}

static int fail(const char *fmt, ...) KILN_PRINTF(1, 2);

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kiln call: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int exit_for(int rc)
{
    return rc == KILN_ETRAP ? EXIT_TRAP : 1;
}

static int call_component(const char *path, const uint8_t *buf, size_t size,
                          const char *export_name, const char *input_json,
                          const kiln_limits *limits)
{
    cm_component *c;
    kiln_err err = {0};
    if (cm_parse(buf, size, &c, &err) != KILN_OK)
        return fail("%s: %s", path, err.msg);
    int status = 1;
    kiln_module *mod = NULL;
    kiln_linker *linker = NULL;
    kiln_instance_pre *pre = NULL;
    kiln_instance *inst = NULL;
    cm_arena *arena = NULL;
    json_t *input = NULL;

    const cm_extern *ex = NULL;
    for (uint32_t i = 0; i < c->n_exports; i++)
        if (c->exports[i].sort == CM_SORT_FUNC && strcmp(c->exports[i].name, export_name) == 0)
            ex = &c->exports[i];
    if (ex == NULL) {
        fail("%s has no exported function '%s'; `kiln inspect %s` lists its exports", path,
             export_name, path);
        goto out;
    }
    const cm_func *fn = c->space[CM_SORT_FUNC][ex->index];
    const cm_type *ft = ex->type;
    if (fn->how != CM_FUNC_LIFT) {
        fail("export '%s' is not lifted from a core function here (re-exported import)",
             export_name);
        goto out;
    }
    if (cm_check_supported(ft, &err) != KILN_OK || fn->opts.async) {
        fail("export '%s': %s", export_name, fn->opts.async ? "async lifts are not implemented"
                                                            : err.msg);
        goto out;
    }
    const cm_core_func *cf = c->space[CM_SORT_CORE_FUNC][fn->core_func];
    const cm_core_instance *ci =
        cf->how == CM_CORE_ALIAS ? c->space[CM_SORT_CORE_INSTANCE][cf->instance] : NULL;
    const cm_module *m =
        ci != NULL && ci->instantiate ? c->space[CM_SORT_CORE_MODULE][ci->module] : NULL;
    if (m == NULL || ci->n != 0) {
        fail("export '%s' is lifted from a core module that needs imports or is not embedded; "
             "this first slice runs only core modules without imports",
             export_name);
        goto out;
    }
    call_cx cc = {0};
    if (fn->opts.has_realloc &&
        (cc.realloc_name = core_export(c, fn->opts.realloc, cf->instance)) == NULL) {
        fail("export '%s': its realloc is not an export of the same core instance", export_name);
        goto out;
    }
    const char *post = NULL;
    if (fn->opts.has_post_return &&
        (post = core_export(c, fn->opts.post_return, cf->instance)) == NULL) {
        fail("export '%s': its post-return is not an export of the same core instance",
             export_name);
        goto out;
    }
    const char *mem_name = NULL;
    if (fn->opts.has_memory) {
        const cm_core_item *it = c->space[CM_SORT_CORE_MEMORY][fn->opts.memory];
        if (it->instance != cf->instance) {
            fail("export '%s': its memory is not an export of the same core instance",
                 export_name);
            goto out;
        }
        mem_name = it->name;
    }

    /* Arguments. */
    json_error_t jerr;
    input = json_loads(input_json ? input_json : "[]", JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (input == NULL || !json_is_array(input)) {
        fail("--input-json must be a JSON array of the %u arguments%s%s", (unsigned)ft->n,
             input ? "" : ": ", input ? "" : jerr.text);
        goto out;
    }
    if (json_array_size(input) != ft->n) {
        fail("export '%s' takes %u arguments, --input-json has %zu", export_name,
             (unsigned)ft->n, json_array_size(input));
        goto out;
    }
    arena = cm_arena_new();
    cm_val *args = arena ? cm_arena_alloc(arena, (ft->n + 1) * sizeof(cm_val)) : NULL;
    if (args == NULL) {
        fail("out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < ft->n; i++) {
        char p[64];
        snprintf(p, sizeof(p), "$[%u]", (unsigned)i);
        if (cm_val_from_json(arena, ft->f[i].type, json_array_get(input, i), p, &args[i], &err) !=
            KILN_OK) {
            fail("%s (parameter '%s')", err.msg, ft->f[i].name);
            goto out;
        }
    }

    /* The core module: compiled through the artifact cache, instantiated. */
    char display[256];
    snprintf(display, sizeof(display), "%.200s#module%u", path, (unsigned)ci->module);
    kiln_aot_result res;
    int rc = kiln_aot_compile(buf + m->offset, m->len, display, NULL, &res, &err);
    if (rc == KILN_OK)
        rc = kiln_module_load(res.so_path, display, &mod, &err);
    if (rc == KILN_OK)
        rc = kiln_linker_new(&linker);
    if (rc == KILN_OK)
        rc = kiln_instance_pre_new(mod, linker, &pre, &err);
    if (rc == KILN_OK)
        rc = kiln_instance_new(pre, limits, NULL, &inst, &err);
    if (rc != KILN_OK) {
        status = exit_for(rc);
        fail("%s", err.msg[0] ? err.msg : kiln_strerror(rc));
        goto out;
    }
    cc.inst = inst;
    if (mem_name != NULL &&
        (cc.memory = kiln_instance_export_object(inst, mem_name, KILN_EXTERN_MEMORY)) == NULL) {
        fail("the core module does not export memory '%s'", mem_name);
        goto out;
    }
    static wasm_rt_memory_t no_memory;
    if (cc.memory == NULL)
        cc.memory = &no_memory;
    cm_cx cx = {.encoding = fn->opts.encoding, .realloc = guest_realloc, .ud = &cc,
                .arena = arena, .err = &err};
    refresh(&cx);

    /* lower, call, lift, post-return */
    cm_flat flat[CM_MAX_FLAT_PARAMS];
    uint32_t nflat = 0;
    rc = cm_lower_params(&cx, ft, args, flat, &nflat);
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
    if (rc == KILN_OK)
        rc = kiln_instance_call(inst, cf->name, sig, cargs, cres, &err);
    cm_val result = {0};
    cm_flat fres = {.t = rt, .v = cres[0]};
    if (rc == KILN_OK) {
        refresh(&cx);
        rc = cm_lift_results(&cx, ft, &fres, nres, &result);
    }
    json_t *out_json = NULL;
    if (rc == KILN_OK && ft->elem != NULL && (out_json = cm_val_to_json(ft->elem, &result)) == NULL)
        rc = kiln_err_set(&err, KILN_ENOMEM, "out of memory building the result");
    /* post-return runs after the result has been copied out of the guest. */
    if (rc == KILN_OK && post != NULL) {
        char psig[4] = {0};
        if (nres)
            psig[0] = rt, psig[1] = '>';
        else
            psig[0] = '>';
        /* post-return receives the core results of the call. */
        rc = kiln_instance_call(inst, post, psig, nres ? cres : NULL, NULL, &err);
    }
    if (rc != KILN_OK) {
        json_decref(out_json);
        status = exit_for(rc);
        fail("%s: %s", export_name, err.msg[0] ? err.msg : kiln_strerror(rc));
        goto out;
    }
    char *text = out_json ? json_dumps(out_json, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(out_json);
    printf("%s\n", text ? text : "null");
    free(text);
    status = 0;
out:
    json_decref(input);
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
    kiln_linker_free(linker);
    if (mod != NULL)
        kiln_module_release(mod);
    cm_arena_free(arena);
    cm_free(c);
    return status;
}

/* Whether `path` is a readable file that starts with a component's preamble. */
static bool file_is_component(const char *path)
{
    uint8_t head[8];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    size_t n = fread(head, 1, sizeof(head), f);
    fclose(f);
    return cm_is_component(head, n);
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = kiln_malloc(cap);
    while (b != NULL) {
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= ((size_t)1 << 30)) { /* 1 GiB: surely not a component */
            kiln_free(b);
            b = NULL;
            break;
        }
        uint8_t *nb = kiln_realloc(b, cap * 2);
        if (nb == NULL)
            kiln_free(b);
        b = nb;
        cap *= 2;
    }
    bool bad = b == NULL || ferror(f);
    fclose(f);
    if (bad) {
        kiln_free(b);
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln call [options] component.wasm EXPORT --input-json '[ARG, ...]'\n"
               "\n"
               "Call a lifted export of a component: the arguments are a JSON array (records\n"
               "as objects, enums by name, variants as {\"case\": value}, options as null or\n"
               "the value, results as {\"ok\": v} / {\"error\": e}, lists and tuples as\n"
               "arrays, flags as arrays of labels, strings as strings) and the result is\n"
               "printed as JSON. The export's core module must import nothing (this first\n"
               "slice); it is compiled ahead of time and cached under $KILN_HOME.\n"
               "\n"
               "options:\n"
               "  --input-json JSON   the arguments (default: [])\n"
               "  --timeout MS        time limit, in milliseconds\n"
               "  --max-memory SIZE   cap linear memory (e.g. 16MiB)\n"
               "  -h, --help          show this help\n"
               "\n"
               "For core modules (Extism plugins), see `kiln call --help` without a component.\n"
               "exit status: 0 on success; 1 on errors; 134 on a trap; 2 on usage errors.\n");
}

int cmd_call_dispatch(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else if (strcmp(argv[i], "--input-json") == 0 || strcmp(argv[i], "--timeout") == 0 ||
                 strcmp(argv[i], "--max-memory") == 0)
            i++;
    }
    if (pos[0] == NULL || !file_is_component(pos[0]))
        return cmd_call(argc, argv);

    const char *input = NULL;
    kiln_limits limits = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-')
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--input-json", &m)) != NULL || m) {
            if (v == NULL)
                goto need_value;
            input = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--timeout", &m)) != NULL || m) {
            long long ms = cli_parse_uint(v, UINT32_MAX);
            if (ms < 0) {
                cli_error("call", "--timeout needs milliseconds, not '%s'", v ? v : "");
                return 2;
            }
            limits.timeout_ms = (uint32_t)ms;
        } else if ((v = cli_opt_value(argc, argv, &i, "--max-memory", &m)) != NULL || m) {
            long long b = cli_parse_size(v);
            if (b < 0) {
                cli_error("call", "--max-memory needs a size such as 16MiB, not '%s'", v ? v : "");
                return 2;
            }
            limits.max_memory_bytes = (uint64_t)b;
        } else {
            cli_error("call", "option '%s' is not supported for components; see `kiln call "
                              "%s --help`",
                      a, pos[0]);
            return 2;
        }
        continue;
    need_value:
        cli_error("call", "option %s needs a value", a);
        return 2;
    }
    if (pos[1] == NULL) {
        cli_error("call", "no export given; usage: kiln call component.wasm EXPORT "
                          "--input-json '[ARG, ...]'");
        return 2;
    }
    uint8_t *buf;
    size_t size;
    if (read_all(pos[0], &buf, &size) != 0) {
        cli_error("call", "cannot read '%s': %s", pos[0], strerror(errno));
        return 1;
    }
    int rc = call_component(pos[0], buf, size, pos[1], input, &limits);
    kiln_free(buf);
    return rc;
}
