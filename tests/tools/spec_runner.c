/*
 * spec_runner.c - run one wast2json command file (the official WebAssembly
 * spec testsuite) through Kiln's real path: kiln_aot_compile_file -> .so ->
 * kiln_module_load -> kiln_linker/kiln_instance_pre/kiln_instance_new ->
 * kiln_instance_call_index. See docs/internals/spec-tests.md.
 *
 * Usage: spec_runner [--count] FILE.json
 *   --count  print the number of counted assertions and exit (tests/spec/run.sh
 *            uses it to charge a crashed file with all of its assertions).
 * Environment: KILN_CC (compiler, default "cc" via aot.h), KILN_SPEC_OPT
 * (0..2, default 0), KILN_SPEC_TIMEOUT_MS (per call, default 30000; 0 = none),
 * KILN_SPEC_VERBOSE (1: print passes too), KILN_HOME (artifact cache).
 *
 * Output: one "FAIL file:line command ..." line per failure, per-category
 * counts, and last "<passed> passed, <failed> failed". Exit 0 iff no failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasm-rt.h>

#include "kiln/aot.h"
#include "kiln/kiln.h"
#include "kiln/runtime.h"

/* ---- the spectest host module ----------------------------------------- */

static bool g_verbose;

static void spectest_print(kiln_instance *inst)
{
    if (g_verbose)
        printf("spectest.print()\n");
}

static void spectest_print_i32(kiln_instance *inst, uint32_t a)
{
    if (g_verbose)
        printf("spectest.print_i32(%" PRIu32 ")\n", a);
}

static void spectest_print_i64(kiln_instance *inst, uint64_t a)
{
    if (g_verbose)
        printf("spectest.print_i64(%" PRIu64 ")\n", a);
}

static void spectest_print_f32(kiln_instance *inst, float a)
{
    if (g_verbose)
        printf("spectest.print_f32(%g)\n", (double)a);
}

static void spectest_print_f64(kiln_instance *inst, double a)
{
    if (g_verbose)
        printf("spectest.print_f64(%g)\n", a);
}

static void spectest_print_i32_f32(kiln_instance *inst, uint32_t a, float b)
{
    if (g_verbose)
        printf("spectest.print_i32_f32(%" PRIu32 ", %g)\n", a, (double)b);
}

static void spectest_print_f64_f64(kiln_instance *inst, double a, double b)
{
    if (g_verbose)
        printf("spectest.print_f64_f64(%g, %g)\n", a, b);
}

#define HOSTFN(name, type) { "spectest", #name, type, (void (*)(void))spectest_##name }
static const kiln_hostfn spectest_fns[] = {
    HOSTFN(print, ">"),
    HOSTFN(print_i32, "i>"),
    HOSTFN(print_i64, "j>"),
    HOSTFN(print_f32, "f>"),
    HOSTFN(print_f64, "d>"),
    HOSTFN(print_i32_f32, "if>"),
    HOSTFN(print_f64_f64, "dd>"),
};
#undef HOSTFN

/* One process runs one .wast file, so the spectest objects are process-wide:
 * modules of the same file share them, as the spec's host does. */
static uint32_t spectest_global_i32 = 666;
static uint64_t spectest_global_i64 = 666;
static float spectest_global_f32 = 666.6f;
static double spectest_global_f64 = 666.6;
static wasm_rt_funcref_table_t spectest_table;
static wasm_rt_memory_t spectest_memory;
static bool spectest_ready;

/* externref values in the JSON are small integers; null is NULL, so N maps
 * to the (never dereferenced) host pointer N + 1. */
static void *externref_of(uint64_t n)
{
    return (void *)(uintptr_t)(n + 1);
}

/* ---- runner state ----------------------------------------------------- */

enum cat {
    CAT_RETURN,
    CAT_TRAP,
    CAT_EXHAUSTION,
    CAT_EXCEPTION,
    CAT_UNINSTANTIABLE,
    CAT_UNLINKABLE,
    CAT_INVALID,
    CAT_MALFORMED,
    CAT_MODULE, /* module commands: failures only (they are not assertions) */
    CAT_ACTION, /* top-level actions: failures only */
    CAT_COUNT
};

static const char *const cat_names[CAT_COUNT] = {
    "assert_return", "assert_trap",       "assert_exhaustion", "assert_exception",
    "assert_uninstantiable", "assert_unlinkable", "assert_invalid", "assert_malformed",
    "module", "action",
};

typedef struct named_inst {
    char *name;
    kiln_instance *inst;
} named_inst;

typedef struct runner {
    const char *json_path;
    char dir[4096];    /* folder of the JSON: module filenames are relative to it */
    char label[256];   /* wast file name for messages */
    kiln_aot_options opts;
    kiln_limits limits;

    /* Everything created stays alive until the end of the file: funcrefs of
     * an unnamed module may live on in a table another module exported. */
    kiln_instance **insts;
    size_t n_insts, cap_insts;
    kiln_instance_pre **pres;
    size_t n_pres, cap_pres;
    kiln_module **mods;
    size_t n_mods, cap_mods;
    kiln_linker **linkers;
    size_t n_linkers, cap_linkers;

    kiln_linker *linker;    /* current linker (spectest + registrations) */
    size_t linker_regs;     /* registrations it reflects */
    kiln_instance *current; /* the most recent module; NULL if it failed */
    int current_line;       /* line of the most recent module command */

    named_inst *names; /* $name -> instance */
    size_t n_names, cap_names;
    named_inst *regs; /* register "as" -> instance, in order */
    size_t n_regs, cap_regs;

    int passed[CAT_COUNT], failed[CAT_COUNT];
    int skipped_text;    /* assert_malformed/assert_invalid in text form */
    int skipped_feature; /* validation assertions about a feature Kiln enables */
    bool multi_memory;   /* the file is from proposals/multi-memory */
    int trap_kind_mismatch;
    int dependent_failures; /* failures only because their module failed */
} runner;

static void *xgrow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *q = realloc(p, ncap * elem);
    if (q == NULL) {
        fprintf(stderr, "spec_runner: out of memory\n");
        exit(2);
    }
    *cap = ncap;
    return q;
}

#define PUSH(r, arr, n, cap, v)                                                                    \
    do {                                                                                           \
        (r)->arr = xgrow((r)->arr, &(r)->cap, (r)->n + 1, sizeof(*(r)->arr));                      \
        (r)->arr[(r)->n++] = (v);                                                                  \
    } while (0)

/* Failures of commands whose module failed to build are counted, but only
 * the first few are printed: the module's own failure says what went wrong. */
#define DEPENDENT_SHOWN 3

static void fail(runner *r, enum cat c, int line, const char *fmt, ...) KILN_PRINTF(4, 5);
static void fail(runner *r, enum cat c, int line, const char *fmt, ...)
{
    va_list ap;
    r->failed[c]++;
    printf("FAIL %s:%d %s: ", r->label, line, cat_names[c]);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void pass(runner *r, enum cat c, int line)
{
    r->passed[c]++;
    if (g_verbose)
        printf("ok   %s:%d %s\n", r->label, line, cat_names[c]);
}

/* Printable rendering of a (possibly NUL-containing) name, for messages. */
static const char *show_name(const char *s, size_t len, char *buf, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
    }
    buf[o < size ? o : size - 1] = '\0';
    return buf;
}

/* ---- values ----------------------------------------------------------- */

static char type_letter(const char *t)
{
    if (strcmp(t, "i32") == 0)
        return KILN_T_I32;
    if (strcmp(t, "i64") == 0)
        return KILN_T_I64;
    if (strcmp(t, "f32") == 0)
        return KILN_T_F32;
    if (strcmp(t, "f64") == 0)
        return KILN_T_F64;
    if (strcmp(t, "externref") == 0)
        return KILN_T_EXTERNREF;
    if (strcmp(t, "funcref") == 0)
        return KILN_T_FUNCREF;
    return 0;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Is a funcref value null? Trampolines return a funcref result as its
 * function pointer (wasm_rt_funcref_t.func), NULL for ref.null; a global's
 * funcref is converted to the same form when read. */
static bool funcref_is_null(void *ref)
{
    return ref == NULL;
}

/* Parse an argument value of JSON type `t` into `out`. */
static bool parse_arg(json_t *v, char letter, kiln_value *out, char *why, size_t why_size)
{
    const char *s = json_string_value(json_object_get(v, "value"));
    uint64_t u;
    memset(out, 0, sizeof(*out));
    if (s == NULL) {
        snprintf(why, why_size, "argument without a value");
        return false;
    }
    if (letter == KILN_T_EXTERNREF || letter == KILN_T_FUNCREF) {
        if (strcmp(s, "null") == 0) {
            out->ref = NULL;
            return true;
        }
        if (letter == KILN_T_EXTERNREF && parse_u64(s, &u)) {
            out->ref = externref_of(u);
            return true;
        }
        snprintf(why, why_size, "unsupported reference argument \"%s\"", s);
        return false;
    }
    if (!parse_u64(s, &u)) {
        snprintf(why, why_size, "bad value \"%s\"", s);
        return false;
    }
    switch (letter) {
    case KILN_T_I32:
        out->i32 = (uint32_t)u;
        break;
    case KILN_T_I64:
        out->i64 = u;
        break;
    case KILN_T_F32: {
        uint32_t b = (uint32_t)u;
        memcpy(&out->f32, &b, 4);
        break;
    }
    case KILN_T_F64:
        memcpy(&out->f64, &u, 8);
        break;
    default:
        snprintf(why, why_size, "unknown type");
        return false;
    }
    return true;
}

static void show_value(char letter, const kiln_value *v, char *buf, size_t size)
{
    uint32_t b32;
    uint64_t b64;
    switch (letter) {
    case KILN_T_I32:
        snprintf(buf, size, "i32:%" PRIu32 " (%" PRId32 ")", v->i32, (int32_t)v->i32);
        break;
    case KILN_T_I64:
        snprintf(buf, size, "i64:%" PRIu64 " (%" PRId64 ")", v->i64, (int64_t)v->i64);
        break;
    case KILN_T_F32:
        memcpy(&b32, &v->f32, 4);
        snprintf(buf, size, "f32:0x%08" PRIx32 " (%.9g)", b32, (double)v->f32);
        break;
    case KILN_T_F64:
        memcpy(&b64, &v->f64, 8);
        snprintf(buf, size, "f64:0x%016" PRIx64 " (%.17g)", b64, v->f64);
        break;
    case KILN_T_EXTERNREF:
        if (v->ref == NULL)
            snprintf(buf, size, "externref:null");
        else
            snprintf(buf, size, "externref:%" PRIuPTR, (uintptr_t)v->ref - 1);
        break;
    case KILN_T_FUNCREF:
        snprintf(buf, size, "funcref:%s", funcref_is_null(v->ref) ? "null" : "non-null");
        break;
    default:
        snprintf(buf, size, "?%c", letter);
    }
}

/* Does actual value `v` (of type `letter`) match the JSON expectation `e`? */
static bool value_matches(json_t *e, char letter, const kiln_value *v, char *want, size_t want_size)
{
    const char *t = json_string_value(json_object_get(e, "type"));
    const char *s = json_string_value(json_object_get(e, "value"));
    uint64_t u = 0;
    char el = t ? type_letter(t) : 0;

    snprintf(want, want_size, "%s:%s", t ? t : "?", s ? s : "?");
    if (el != letter || s == NULL)
        return false;
    if (letter == KILN_T_F32 || letter == KILN_T_F64) {
        uint64_t bits = 0;
        uint64_t exp_mask, quiet, sign;
        if (letter == KILN_T_F32) {
            uint32_t b;
            memcpy(&b, &v->f32, 4);
            bits = b;
            exp_mask = 0x7f800000u;
            quiet = 0x00400000u;
            sign = 0x80000000u;
        } else {
            memcpy(&bits, &v->f64, 8);
            exp_mask = 0x7ff0000000000000ull;
            quiet = 0x0008000000000000ull;
            sign = 0x8000000000000000ull;
        }
        /* Canonical NaN: exponent all ones, only the quiet bit set in the
         * payload, either sign. Arithmetic NaN: any NaN with the quiet bit. */
        if (strcmp(s, "nan:canonical") == 0)
            return (bits & ~sign) == (exp_mask | quiet);
        if (strcmp(s, "nan:arithmetic") == 0)
            return (bits & (exp_mask | quiet)) == (exp_mask | quiet);
        if (!parse_u64(s, &u))
            return false;
        return bits == u;
    }
    if (letter == KILN_T_EXTERNREF) {
        if (strcmp(s, "null") == 0)
            return v->ref == NULL;
        return parse_u64(s, &u) && v->ref == externref_of(u);
    }
    if (letter == KILN_T_FUNCREF) {
        if (strcmp(s, "null") == 0)
            return funcref_is_null(v->ref);
        return false; /* the suite has no non-null funcref expectations */
    }
    if (!parse_u64(s, &u))
        return false;
    if (letter == KILN_T_I32)
        return v->i32 == (uint32_t)u;
    return v->i64 == u;
}

/* ---- modules and linking ---------------------------------------------- */

static kiln_instance *find_named(const named_inst *list, size_t n, const char *name)
{
    /* Later definitions shadow earlier ones. */
    for (size_t i = n; i-- > 0;)
        if (strcmp(list[i].name, name) == 0)
            return list[i].inst;
    return NULL;
}

/* Allocated on first use, outside guest code: the runtime's allocators only
 * trap (here: abort) when the allocation itself fails. */
static void spectest_init(void)
{
    if (spectest_ready)
        return;
    wasm_rt_allocate_funcref_table(&spectest_table, 10, 20);
    wasm_rt_allocate_memory(&spectest_memory, 1, 2);
    spectest_ready = true;
}

/* A linker with spectest and every registration so far (latest wins). It is
 * rebuilt only when a registration was added; old linkers are kept alive for
 * the instance_pre objects made against them. */
static int current_linker(runner *r, kiln_linker **out, kiln_err *err)
{
    kiln_linker *l = NULL;
    int rc;

    if (r->linker != NULL && r->linker_regs == r->n_regs) {
        *out = r->linker;
        return KILN_OK;
    }
    spectest_init();
    rc = kiln_linker_new(&l);
    if (rc == KILN_OK)
        rc = kiln_linker_define_host(l, spectest_fns,
                                     sizeof(spectest_fns) / sizeof(spectest_fns[0]));
    if (rc == KILN_OK)
        rc = kiln_linker_define_extern(l, "spectest", "global_i32", KILN_EXTERN_GLOBAL, "i",
                                       &spectest_global_i32);
    if (rc == KILN_OK)
        rc = kiln_linker_define_extern(l, "spectest", "global_i64", KILN_EXTERN_GLOBAL, "j",
                                       &spectest_global_i64);
    if (rc == KILN_OK)
        rc = kiln_linker_define_extern(l, "spectest", "global_f32", KILN_EXTERN_GLOBAL, "f",
                                       &spectest_global_f32);
    if (rc == KILN_OK)
        rc = kiln_linker_define_extern(l, "spectest", "global_f64", KILN_EXTERN_GLOBAL, "d",
                                       &spectest_global_f64);
    if (rc == KILN_OK)
        rc = kiln_linker_define_extern(l, "spectest", "table", KILN_EXTERN_TABLE,
                                       "funcref 10 20", &spectest_table);
    if (rc == KILN_OK)
        rc = kiln_linker_define_extern(l, "spectest", "memory", KILN_EXTERN_MEMORY, "memory 1 2",
                                       &spectest_memory);
    for (size_t i = 0; rc == KILN_OK && i < r->n_regs; i++) {
        bool shadowed = false;
        for (size_t j = i + 1; j < r->n_regs; j++)
            if (strcmp(r->regs[i].name, r->regs[j].name) == 0)
                shadowed = true;
        if (!shadowed)
            rc = kiln_linker_define_instance(l, r->regs[i].name, r->regs[i].inst);
    }
    if (rc != KILN_OK) {
        kiln_linker_free(l);
        return kiln_err_set(err, rc, "building the linker failed: %s", kiln_strerror(rc));
    }
    PUSH(r, linkers, n_linkers, cap_linkers, l);
    r->linker = l;
    r->linker_regs = r->n_regs;
    *out = l;
    return KILN_OK;
}

/* Stages a module goes through; a failure reports which one refused it. */
enum stage { ST_COMPILE, ST_LOAD, ST_LINK, ST_INSTANTIATE, ST_DONE };
static const char *const stage_names[] = { "compile", "load", "link", "instantiate", "done" };

/* Compile, load, link and (if `instantiate`) instantiate the module file
 * `filename`. Returns the stage reached; on failure `err` explains. */
static enum stage build_module(runner *r, const char *filename, bool instantiate,
                               kiln_instance **out, kiln_err *err)
{
    char path[8192];
    kiln_aot_result res;
    kiln_module *m = NULL;
    kiln_linker *l = NULL;
    kiln_instance_pre *pre = NULL;
    kiln_instance *inst = NULL;
    int rc;

    *out = NULL;
    memset(err, 0, sizeof(*err));
    snprintf(path, sizeof(path), "%s/%s", r->dir, filename);
    rc = kiln_aot_compile_file(path, &r->opts, &res, err);
    if (rc != KILN_OK) {
        if (err->code == 0)
            kiln_err_set(err, rc, "%s", kiln_strerror(rc));
        return ST_COMPILE;
    }
    rc = kiln_module_load(res.so_path, filename, &m, err);
    if (rc != KILN_OK) {
        if (err->code == 0)
            kiln_err_set(err, rc, "%s", kiln_strerror(rc));
        return ST_LOAD;
    }
    PUSH(r, mods, n_mods, cap_mods, m);
    rc = current_linker(r, &l, err);
    if (rc == KILN_OK)
        rc = kiln_instance_pre_new(m, l, &pre, err);
    if (rc != KILN_OK) {
        if (err->code == 0)
            kiln_err_set(err, rc, "%s", kiln_strerror(rc));
        return ST_LINK;
    }
    PUSH(r, pres, n_pres, cap_pres, pre);
    if (!instantiate)
        return ST_INSTANTIATE;
    rc = kiln_instance_new(pre, &r->limits, NULL, &inst, err);
    if (rc != KILN_OK) {
        if (err->code == 0)
            kiln_err_set(err, rc, "%s", kiln_strerror(rc));
        return ST_INSTANTIATE;
    }
    PUSH(r, insts, n_insts, cap_insts, inst);
    *out = inst;
    return ST_DONE;
}

/* ---- actions ---------------------------------------------------------- */

enum act_status { ACT_OK, ACT_TRAP, ACT_ERROR };

typedef struct act_result {
    enum act_status status;
    bool dependent;     /* ACT_ERROR because the module failed earlier */
    kiln_err err;       /* ACT_TRAP: err.trap; ACT_ERROR: err.msg */
    char types[64];     /* result type letters */
    size_t n;
    kiln_value vals[64];
} act_result;

static kiln_instance *action_instance(runner *r, json_t *action, char *why, size_t why_size)
{
    const char *mod = json_string_value(json_object_get(action, "module"));
    kiln_instance *inst;
    if (mod != NULL) {
        inst = find_named(r->names, r->n_names, mod);
        if (inst == NULL)
            snprintf(why, why_size, "no module named %s (did it fail to instantiate?)", mod);
        return inst;
    }
    if (r->current == NULL)
        snprintf(why, why_size, "no current module (the module at line %d failed)",
                 r->current_line);
    return r->current;
}

static void act_error(act_result *out, const char *fmt, ...) KILN_PRINTF(2, 3);
static void act_error(act_result *out, const char *fmt, ...)
{
    va_list ap;
    out->status = ACT_ERROR;
    va_start(ap, fmt);
    vsnprintf(out->err.msg, sizeof(out->err.msg), fmt, ap);
    va_end(ap);
}

/* Describe the action for messages: field(args). */
static void show_action(json_t *action, char *buf, size_t size)
{
    json_t *field = json_object_get(action, "field");
    json_t *args = json_object_get(action, "args");
    char name[256];
    size_t o, i;
    json_t *a;

    show_name(json_string_value(field) ? json_string_value(field) : "?",
              json_string_value(field) ? json_string_length(field) : 1, name, sizeof(name));
    o = (size_t)snprintf(buf, size, "%s \"%s\"(",
                         json_string_value(json_object_get(action, "type")), name);
    json_array_foreach(args, i, a)
    {
        const char *t = json_string_value(json_object_get(a, "type"));
        const char *v = json_string_value(json_object_get(a, "value"));
        if (o < size)
            o += (size_t)snprintf(buf + o, size - o, "%s%s:%s", i ? ", " : "", t ? t : "?",
                                  v ? v : "?");
    }
    if (o < size)
        snprintf(buf + o, size - o, ")");
}

static void run_action(runner *r, json_t *action, act_result *out)
{
    const char *type = json_string_value(json_object_get(action, "type"));
    json_t *field = json_object_get(action, "field");
    const char *fname = json_string_value(field);
    size_t flen = json_string_length(field);
    char why[512] = "";
    char shown[256];
    kiln_instance *inst;
    kiln_module *m;
    kiln_extern_info info;
    int idx;

    memset(out, 0, sizeof(*out));
    inst = action_instance(r, action, why, sizeof(why));
    if (inst == NULL) {
        act_error(out, "%s", why);
        out->dependent = true;
        return;
    }
    if (type == NULL || fname == NULL) {
        act_error(out, "malformed action");
        return;
    }
    m = kiln_instance_module(inst);
    show_name(fname, flen, shown, sizeof(shown));

    if (strcmp(type, "get") == 0) {
        const char *gt;
        void *p;
        idx = kiln_module_find_export_n(m, fname, flen, KILN_EXTERN_GLOBAL);
        if (idx < 0) {
            act_error(out, "no global export \"%s\"", shown);
            return;
        }
        kiln_module_export(m, (uint32_t)idx, &info);
        gt = info.type;
        if (strncmp(gt, "mut ", 4) == 0)
            gt += 4;
        /* By C string: the suite's global names contain no NUL. */
        p = kiln_instance_export_object(inst, info.name, KILN_EXTERN_GLOBAL);
        if (p == NULL) {
            act_error(out, "kiln_instance_export_object(\"%s\") returned NULL", shown);
            return;
        }
        out->n = 1;
        out->types[0] = gt[0];
        switch (gt[0]) {
        case KILN_T_I32:
            memcpy(&out->vals[0].i32, p, 4);
            break;
        case KILN_T_I64:
            memcpy(&out->vals[0].i64, p, 8);
            break;
        case KILN_T_F32:
            memcpy(&out->vals[0].f32, p, 4);
            break;
        case KILN_T_F64:
            memcpy(&out->vals[0].f64, p, 8);
            break;
        case KILN_T_EXTERNREF:
            memcpy(&out->vals[0].ref, p, sizeof(void *));
            break;
        case KILN_T_FUNCREF:
            /* Same form as a call result: the function pointer. */
            out->vals[0].ref = (void *)((const wasm_rt_funcref_t *)p)->func;
            break;
        default:
            act_error(out, "global \"%s\" has unknown type \"%s\"", shown, info.type);
            return;
        }
        out->status = ACT_OK;
        return;
    }

    if (strcmp(type, "invoke") != 0) {
        act_error(out, "unknown action type %s", type);
        return;
    }
    idx = kiln_module_find_export_n(m, fname, flen, KILN_EXTERN_FUNC);
    if (idx < 0) {
        act_error(out, "no function export \"%s\"", shown);
        return;
    }
    kiln_module_export(m, (uint32_t)idx, &info);

    const char *sig = info.type;
    const char *arrow = strchr(sig, '>');
    json_t *args = json_object_get(action, "args");
    size_t nparams, nargs = json_array_size(args);
    if (arrow == NULL) {
        act_error(out, "export \"%s\" has bad signature \"%s\"", shown, sig);
        return;
    }
    nparams = (size_t)(arrow - sig);
    out->n = strlen(arrow + 1);
    if (nparams != nargs || out->n > sizeof(out->vals) / sizeof(out->vals[0])) {
        act_error(out, "export \"%s\" has signature \"%s\" but %zu arguments were given", shown,
                  sig, nargs);
        return;
    }
    memcpy(out->types, arrow + 1, out->n);

    kiln_value *argv = calloc(nparams ? nparams : 1, sizeof(kiln_value));
    if (argv == NULL) {
        act_error(out, "out of memory");
        return;
    }
    for (size_t i = 0; i < nargs; i++) {
        json_t *a = json_array_get(args, i);
        const char *at = json_string_value(json_object_get(a, "type"));
        char letter = at ? type_letter(at) : 0;
        if (letter != sig[i]) {
            act_error(out, "argument %zu is %s but \"%s\" has signature \"%s\"", i,
                      at ? at : "?", shown, sig);
            free(argv);
            return;
        }
        if (!parse_arg(a, letter, &argv[i], why, sizeof(why))) {
            act_error(out, "argument %zu: %s", i, why);
            free(argv);
            return;
        }
    }
    int rc = kiln_instance_call_index(inst, idx, argv, out->vals, &out->err);
    free(argv);
    if (rc == KILN_OK) {
        out->status = ACT_OK;
    } else if (rc == KILN_ETRAP) {
        out->status = ACT_TRAP;
    } else {
        out->status = ACT_ERROR;
        if (out->err.msg[0] == '\0')
            snprintf(out->err.msg, sizeof(out->err.msg), "call failed: %s", kiln_strerror(rc));
    }
}

/* Trap kinds the suite's message text allows. Traps count as passed whatever
 * their kind (as in wabt's wasm2c runner); a different kind is noted. */
static bool trap_kind_plausible(const char *text, int kind)
{
    if (text == NULL)
        return true;
    if (strstr(text, "divide by zero"))
        return kind == KILN_TRAP_DIV_BY_ZERO;
    if (strstr(text, "integer overflow"))
        return kind == KILN_TRAP_INT_OVERFLOW;
    if (strstr(text, "invalid conversion"))
        return kind == KILN_TRAP_INVALID_CONVERSION;
    if (strstr(text, "unreachable"))
        return kind == KILN_TRAP_UNREACHABLE;
    if (strstr(text, "indirect call") || strstr(text, "undefined element") ||
        strstr(text, "uninitialized element"))
        return kind == KILN_TRAP_CALL_INDIRECT || kind == KILN_TRAP_OOB;
    if (strstr(text, "out of bounds"))
        return kind == KILN_TRAP_OOB;
    if (strstr(text, "exhausted"))
        return kind == KILN_TRAP_EXHAUSTION;
    return true;
}

/* ---- commands --------------------------------------------------------- */

static void cmd_module(runner *r, json_t *c, int line)
{
    const char *filename = json_string_value(json_object_get(c, "filename"));
    const char *name = json_string_value(json_object_get(c, "name"));
    kiln_instance *inst;
    kiln_err err;
    enum stage st;

    r->current = NULL;
    r->current_line = line;
    if (filename == NULL) {
        fail(r, CAT_MODULE, line, "module command without a filename");
        return;
    }
    st = build_module(r, filename, true, &inst, &err);
    if (st != ST_DONE) {
        fail(r, CAT_MODULE, line, "%s: %s failed: %s (trap %d)", filename, stage_names[st],
             err.msg, err.trap);
        return;
    }
    r->current = inst;
    if (name != NULL) {
        named_inst ni = { strdup(name), inst };
        PUSH(r, names, n_names, cap_names, ni);
    }
}

static void cmd_register(runner *r, json_t *c, int line)
{
    const char *as = json_string_value(json_object_get(c, "as"));
    const char *name = json_string_value(json_object_get(c, "name"));
    kiln_instance *inst = name ? find_named(r->names, r->n_names, name) : r->current;
    if (as == NULL || inst == NULL) {
        fail(r, CAT_MODULE, line, "register %s: no such module %s", as ? as : "?",
             name ? name : "(current)");
        return;
    }
    named_inst ni = { strdup(as), inst };
    PUSH(r, regs, n_regs, cap_regs, ni);
}

static void fail_action(runner *r, enum cat cat, int line, const char *desc,
                        const act_result *res)
{
    if (res->dependent && ++r->dependent_failures > DEPENDENT_SHOWN) {
        r->failed[cat]++;
        return;
    }
    fail(r, cat, line, "%s: %s", desc, res->err.msg);
}

static void cmd_assert_return(runner *r, json_t *c, int line, enum cat cat)
{
    json_t *action = json_object_get(c, "action");
    json_t *expected = json_object_get(c, "expected");
    char desc[512], want[128], got[128];
    act_result res;

    run_action(r, action, &res);
    show_action(action, desc, sizeof(desc));
    if (res.status == ACT_ERROR) {
        fail_action(r, cat, line, desc, &res);
        return;
    }
    if (res.status == ACT_TRAP) {
        fail(r, cat, line, "%s: expected a return, got trap %d (%s): %s", desc, res.err.trap,
             kiln_trap_name(res.err.trap), res.err.msg);
        return;
    }
    if (cat == CAT_ACTION)
        return; /* top-level actions only have to not trap */
    if (json_array_size(expected) != res.n) {
        fail(r, cat, line, "%s: expected %zu results, the export returns %zu", desc,
             json_array_size(expected), res.n);
        return;
    }
    for (size_t i = 0; i < res.n; i++) {
        if (!value_matches(json_array_get(expected, i), res.types[i], &res.vals[i], want,
                           sizeof(want))) {
            show_value(res.types[i], &res.vals[i], got, sizeof(got));
            fail(r, cat, line, "%s: result %zu: expected %s, got %s", desc, i, want, got);
            return;
        }
    }
    pass(r, cat, line);
}

static void cmd_assert_trap(runner *r, json_t *c, int line, enum cat cat)
{
    json_t *action = json_object_get(c, "action");
    const char *text = json_string_value(json_object_get(c, "text"));
    char desc[512];
    act_result res;

    run_action(r, action, &res);
    show_action(action, desc, sizeof(desc));
    if (res.status == ACT_ERROR) {
        fail_action(r, cat, line, desc, &res);
        return;
    }
    if (res.status != ACT_TRAP) {
        fail(r, cat, line, "%s: expected trap \"%s\", but it returned", desc, text ? text : "");
        return;
    }
    if (cat == CAT_EXHAUSTION && res.err.trap != KILN_TRAP_EXHAUSTION) {
        fail(r, cat, line, "%s: expected stack exhaustion, got trap %d (%s): %s", desc,
             res.err.trap, kiln_trap_name(res.err.trap), res.err.msg);
        return;
    }
    if (cat == CAT_EXCEPTION && res.err.trap != KILN_TRAP_UNCAUGHT_EXCEPTION) {
        fail(r, cat, line, "%s: expected an uncaught exception, got trap %d (%s): %s", desc,
             res.err.trap, kiln_trap_name(res.err.trap), res.err.msg);
        return;
    }
    if (cat == CAT_TRAP && !trap_kind_plausible(text, res.err.trap)) {
        r->trap_kind_mismatch++;
        printf("note %s:%d assert_trap: %s: expected \"%s\", got trap %d (%s)\n", r->label, line,
               desc, text, res.err.trap, kiln_trap_name(res.err.trap));
    }
    pass(r, cat, line);
}

static void cmd_assert_module(runner *r, json_t *c, int line, enum cat cat)
{
    const char *filename = json_string_value(json_object_get(c, "filename"));
    const char *mtype = json_string_value(json_object_get(c, "module_type"));
    const char *text = json_string_value(json_object_get(c, "text"));
    kiln_instance *inst = NULL;
    kiln_err err;
    enum stage st;

    if (mtype != NULL && strcmp(mtype, "binary") != 0) {
        r->skipped_text++;
        return;
    }
    if (filename == NULL) {
        fail(r, cat, line, "command without a filename");
        return;
    }
    switch (cat) {
    case CAT_INVALID:
    case CAT_MALFORMED: {
        /* Kiln always enables multi-memory (src/aot/toolchain.h), so the core
         * files' "only one memory" checks do not apply: a second memory and a
         * non-zero (or multi-byte) memory index byte are valid there. */
        if (!r->multi_memory && text != NULL &&
            (strcmp(text, "multiple memories") == 0 || strcmp(text, "zero byte expected") == 0)) {
            r->skipped_feature++;
            return;
        }
        /* Only the compile step is asked: Kiln must refuse at deploy time. */
        char path[8192];
        kiln_aot_result res;
        int rc;
        snprintf(path, sizeof(path), "%s/%s", r->dir, filename);
        memset(&err, 0, sizeof(err));
        rc = kiln_aot_compile_file(path, &r->opts, &res, &err);
        if (rc == KILN_OK)
            fail(r, cat, line, "%s (\"%s\"): compiled, but it must be refused", filename,
                 text ? text : "");
        else
            pass(r, cat, line);
        return;
    }
    case CAT_UNLINKABLE:
        st = build_module(r, filename, false, &inst, &err);
        if (st == ST_LINK)
            pass(r, cat, line);
        else if (st < ST_LINK)
            fail(r, cat, line, "%s (\"%s\"): %s failed before linking: %s", filename,
                 text ? text : "", stage_names[st], err.msg);
        else
            fail(r, cat, line, "%s (\"%s\"): linked, but it must be refused", filename,
                 text ? text : "");
        return;
    case CAT_UNINSTANTIABLE:
        st = build_module(r, filename, true, &inst, &err);
        if (st == ST_INSTANTIATE && err.code == KILN_ETRAP)
            pass(r, cat, line);
        else if (st == ST_DONE)
            fail(r, cat, line, "%s (\"%s\"): instantiated, but it must trap", filename,
                 text ? text : "");
        else
            fail(r, cat, line, "%s (\"%s\"): %s failed without a trap: %s", filename,
                 text ? text : "", stage_names[st], err.msg);
        return;
    default:
        return;
    }
}

/* Counted assertions of a command list (for --count). Assertions skipped
 * as not applicable (see cmd_assert_module) are counted here too: the count
 * only charges a file that crashed. */
static int count_assertions(json_t *cmds)
{
    size_t i;
    json_t *c;
    int n = 0;
    json_array_foreach(cmds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *mt = json_string_value(json_object_get(c, "module_type"));
        if (t == NULL || strncmp(t, "assert_", 7) != 0)
            continue;
        if (mt != NULL && strcmp(mt, "binary") != 0)
            continue;
        n++;
    }
    return n;
}

static void run_commands(runner *r, json_t *cmds)
{
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        int line = (int)json_integer_value(json_object_get(c, "line"));
        if (t == NULL)
            continue;
        if (strcmp(t, "module") == 0)
            cmd_module(r, c, line);
        else if (strcmp(t, "register") == 0)
            cmd_register(r, c, line);
        else if (strcmp(t, "action") == 0)
            cmd_assert_return(r, c, line, CAT_ACTION);
        else if (strcmp(t, "assert_return") == 0)
            cmd_assert_return(r, c, line, CAT_RETURN);
        else if (strcmp(t, "assert_trap") == 0)
            cmd_assert_trap(r, c, line, CAT_TRAP);
        else if (strcmp(t, "assert_exhaustion") == 0)
            cmd_assert_trap(r, c, line, CAT_EXHAUSTION);
        else if (strcmp(t, "assert_exception") == 0)
            cmd_assert_trap(r, c, line, CAT_EXCEPTION);
        else if (strcmp(t, "assert_uninstantiable") == 0)
            cmd_assert_module(r, c, line, CAT_UNINSTANTIABLE);
        else if (strcmp(t, "assert_unlinkable") == 0)
            cmd_assert_module(r, c, line, CAT_UNLINKABLE);
        else if (strcmp(t, "assert_invalid") == 0)
            cmd_assert_module(r, c, line, CAT_INVALID);
        else if (strcmp(t, "assert_malformed") == 0)
            cmd_assert_module(r, c, line, CAT_MALFORMED);
        else
            fail(r, CAT_MODULE, line, "unknown command type %s", t);
        fflush(stdout);
    }
}

static void cleanup(runner *r)
{
    /* Importers before exporters: reverse creation order. */
    for (size_t i = r->n_insts; i-- > 0;)
        kiln_instance_free(r->insts[i]);
    for (size_t i = r->n_pres; i-- > 0;)
        kiln_instance_pre_free(r->pres[i]);
    for (size_t i = r->n_linkers; i-- > 0;)
        kiln_linker_free(r->linkers[i]);
    for (size_t i = r->n_mods; i-- > 0;)
        kiln_module_release(r->mods[i]);
    for (size_t i = 0; i < r->n_names; i++)
        free(r->names[i].name);
    for (size_t i = 0; i < r->n_regs; i++)
        free(r->regs[i].name);
    free(r->insts);
    free(r->pres);
    free(r->linkers);
    free(r->mods);
    free(r->names);
    free(r->regs);
    if (spectest_ready) {
        wasm_rt_free_funcref_table(&spectest_table);
        wasm_rt_free_memory(&spectest_memory);
    }
}

static int env_int(const char *name, int dflt, int lo, int hi)
{
    const char *s = getenv(name);
    char *end;
    long v;
    if (s == NULL || *s == '\0')
        return dflt;
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "spec_runner: ignoring %s=%s (want %d..%d)\n", name, s, lo, hi);
        return dflt;
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    runner r;
    json_error_t jerr;
    json_t *root, *cmds;
    const char *src, *slash;
    bool count_only = false;
    int total_p = 0, total_f = 0, exec_p = 0, exec_n = 0, val_p = 0, val_n = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "--count") == 0) {
        count_only = true;
        argv++;
        argc--;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: spec_runner [--count] FILE.json\n");
        return 2;
    }
    memset(&r, 0, sizeof(r));
    r.json_path = argv[1];
    /* Export names may contain NUL (\u0000): keep them, with their length. */
    root = json_load_file(r.json_path, JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        fprintf(stderr, "spec_runner: %s:%d: %s\n", r.json_path, jerr.line, jerr.text);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    cmds = json_object_get(root, "commands");
    if (count_only) {
        printf("%d\n", count_assertions(cmds));
        json_decref(root);
        return 0;
    }

    g_verbose = env_int("KILN_SPEC_VERBOSE", 0, 0, 1) != 0;
    slash = strrchr(r.json_path, '/');
    if (slash == NULL)
        snprintf(r.dir, sizeof(r.dir), ".");
    else
        snprintf(r.dir, sizeof(r.dir), "%.*s", (int)(slash - r.json_path), r.json_path);
    src = json_string_value(json_object_get(root, "source_filename"));
    if (src == NULL)
        src = r.json_path;
    r.multi_memory = strstr(src, "/multi-memory/") != NULL;
    /* Label: "i32.wast", or "exception-handling/throw.wast" for proposals. */
    slash = strstr(src, "/proposals/");
    if (slash != NULL)
        slash += strlen("/proposals");
    else
        slash = strrchr(src, '/');
    snprintf(r.label, sizeof(r.label), "%s", slash ? slash + 1 : src);

    r.opts.cc = getenv("KILN_CC");
    r.opts.opt_level = env_int("KILN_SPEC_OPT", 0, 0, 2);
    r.opts.imports = NULL; /* imports are checked by kiln_instance_pre_new */
    r.limits.timeout_ms = (uint32_t)env_int("KILN_SPEC_TIMEOUT_MS", 30000, 0, INT_MAX);

    run_commands(&r, cmds);

    for (int c = 0; c < CAT_COUNT; c++) {
        total_p += r.passed[c];
        total_f += r.failed[c];
        if (c <= CAT_UNINSTANTIABLE) {
            exec_p += r.passed[c];
            exec_n += r.passed[c] + r.failed[c];
        } else if (c <= CAT_MALFORMED) {
            val_p += r.passed[c];
            val_n += r.passed[c] + r.failed[c];
        }
        if (r.passed[c] + r.failed[c] > 0)
            printf("  %-22s %5d passed, %d failed\n", cat_names[c], r.passed[c], r.failed[c]);
    }
    printf("%s: execution %d/%d, validation %d/%d, skipped %d text-format and %d "
           "multi-memory-disabled validation checks, %d trap-kind notes\n",
           r.label, exec_p, exec_n, val_p, val_n, r.skipped_text, r.skipped_feature,
           r.trap_kind_mismatch);
    if (r.dependent_failures > DEPENDENT_SHOWN)
        printf("(%d more failures not shown: their module failed to build)\n",
               r.dependent_failures - DEPENDENT_SHOWN);
    printf("%d passed, %d failed\n", total_p, total_f);
    fflush(stdout);

    cleanup(&r);
    json_decref(root);
    return total_f == 0 ? 0 : 1;
}
