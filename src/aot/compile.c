/*
 * compile.c - kiln_aot_compile: .wasm -> (reader, rewrite) -> wasm-validate ->
 * wasm2c -> descriptor -> C compiler -> .so, published atomically into the
 * content-addressed cache. See include/kiln/aot.h and docs/internals/aot.md.
 */
#include "kiln/aot.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aot/cache.h"
#include "aot/descriptor_gen.h"
#include "aot/elf_stack.h"
#include "aot/toolchain.h"
#include "aot/wasm_reader.h"
#include "base/alloc.h"
#include "platform/fs.h"
#include "runtime/descriptor.h"

#define AOT_DEFAULT_TIMEOUT_S 300
/* Bounds (docs/internals/aot.md, "Bounds"). A one-function module of 136 KiB
 * of code took gcc -O2 42 s and 865 MiB; the same code as 50 functions 6 s
 * and 152 MiB: the largest function drives the cost, the code size bounds it. */
#define AOT_TIMEOUT_BASE_S 30
#define AOT_TIMEOUT_MS_PER_KIB 250
#define AOT_MEM_BASE (1024ULL << 20) /* 512 MiB was seen to fail a 25 KiB module once */
#define AOT_MEM_PER_KIB (4ULL << 20)
#define AOT_DEFAULT_MAX_CODE (32ULL << 20)
#define AOT_DEFAULT_MAX_FUNCS 100000u
#define AOT_DEFAULT_MAX_FUNC_BYTES (256ULL << 10)
#define AOT_DEFAULT_OPT 2
#define AOT_MAX_WASM_FILE (1ULL << 30)
#define AOT_ERR_LINES 5
/* The fast tier's compiler when neither opts->fast_cc nor $KILN_AOT_FAST_CC
 * names one (docs/internals/aot.md, "Tiers"). */
#define AOT_DEFAULT_FAST_CC "tcc"
/* First line of a failure memo, <key>.fail (see "Failure memo" below). */
#define AOT_FAIL_MAGIC "kiln-aot-fail-1"
#define AOT_FAIL_MAX (64 * 1024)

/* wasm2c flags besides -n and file names (spec §1.1, §1.8). */
/* wasm2c 1.0.32 refuses every module when given --disable-simd, so only the
 * validator gets it: SIMD modules are rejected before wasm2c runs. */
static const char *const wasm2c_flags[] = {"--enable-exceptions", "--enable-multi-memory",
                                           "--no-debug-names"};
#define N_WASM2C_FLAGS (sizeof(wasm2c_flags) / sizeof(wasm2c_flags[0]))
/* What follows the flags on the compiler's command line. */
static const char *const cc_tail[] = {"gen.c", "desc.c", "-o", "out.so", "-lm"};
#define N_CC_TAIL (sizeof(cc_tail) / sizeof(cc_tail[0]))

/* One compilation in progress. Large (paths, toolchain identities): heap. */
typedef struct aot_job {
    const char *name; /* display name for messages */
    const kiln_aot_options *opts;
    int opt_level;
    unsigned timeout_s;
    uint64_t max_memory; /* RLIMIT_AS of every tool run */
    uint64_t largest_body;
    uint32_t largest_index; /* function index (imports first) of the largest body */
    kiln_wasm_info info;
    bool have_info;
    aot_wabt wabt;
    aot_cc cc;
    const char *cflags[AOT_CC_MAX_FLAGS];
    size_t n_cflags;
    char key[AOT_KEY_HEX + 1];
    char c_name[24]; /* wasm2c -n: "k" + 16 hex digits of the key */
    char cache_dir[AOT_PATH_MAX];
    char artifact[AOT_PATH_MAX];
    char fail_memo[AOT_PATH_MAX]; /* <key>.fail */
    char scratch[AOT_PATH_MAX];
} aot_job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] != '\0' ? slash + 1 : path;
}

/* Prefix err's message with the module name, keeping `rc` (also when err is NULL). */
static int prefixed(int rc, kiln_err *err, const char *name)
{
    if (err != NULL)
        kiln_err_prefix(err, "%s", name);
    return rc;
}

static void describe_status(const proc_result *res, char *out, size_t size)
{
    if (res->term_signal)
        snprintf(out, size, "killed by signal %d", res->term_signal);
    else
        snprintf(out, size, "exit %d", res->exit_code);
}

static int scratch_file(const aot_job *j, const char *file, char *out, size_t size, kiln_err *err)
{
    int n = snprintf(out, size, "%s/%s", j->scratch, file);
    if (n < 0 || (size_t)n >= size)
        return kiln_err_set(err, KILN_EINVAL, "%s: scratch path too long under '%s'", j->name,
                            j->scratch);
    return KILN_OK;
}

static int write_failed(const aot_job *j, const char *path, int e, kiln_err *err)
{
    int code = aot_errno_status(e, KILN_ECACHE);
    if (code == KILN_ENOSPC)
        return kiln_err_set(err, code,
                            "%s: disk full while writing %s; free space in the cache's "
                            "file system",
                            j->name, path);
    return kiln_err_set(err, code, "%s: cannot write %s: %s; check the cache directory", j->name,
                        path, strerror(e));
}

static int write_scratch(const aot_job *j, const char *file, const void *data, size_t len,
                         kiln_err *err)
{
    char path[AOT_PATH_MAX];
    int rc = scratch_file(j, file, path, sizeof(path), err);
    if (rc == KILN_OK && fs_write_file(path, data, len) != 0)
        rc = write_failed(j, path, errno, err);
    return rc;
}

/* ---- bounds -------------------------------------------------------------- */

/* A size from the environment ("512MiB", "2g", "65536"); 0 when unset.
 * KILN_EINVAL naming the variable when malformed. */
static int env_size(const aot_job *j, const char *var, uint64_t *out, kiln_err *err)
{
    *out = 0;
    const char *v = getenv(var);
    if (v == NULL || *v == '\0')
        return KILN_OK;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    unsigned shift = 0;
    if (end != v) {
        switch (*end == '\0' ? 0 : (*end | 0x20)) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        case 0: break;
        default: end = (char *)v; break;
        }
        if (*end != '\0' && end != v) {
            end++;
            if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0 || strcmp(end, "ib") == 0 ||
                strcmp(end, "b") == 0)
                end += strlen(end);
        }
    }
    if (end == v || *end != '\0' || errno == ERANGE || n == 0 || (n << shift) >> shift != n)
        return kiln_err_set(err, KILN_EINVAL,
                            "%s: %s='%s' is not a size; use e.g. 512MiB, 2GiB or 65536", j->name,
                            var, v);
    *out = (uint64_t)n << shift;
    return KILN_OK;
}

static uint64_t leb_u32(const uint8_t *p, size_t len, size_t *pos)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *pos < len && shift < 35; shift += 7) {
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    return UINT64_MAX;
}

/* The largest function body of the code section (the module is already
 * decoded, so the walk only needs to stay in bounds). */
static void largest_body(aot_job *j, const uint8_t *wasm, size_t len)
{
    size_t pos = 8;
    while (pos < len) {
        uint8_t id = wasm[pos++];
        uint64_t size = leb_u32(wasm, len, &pos);
        if (size == UINT64_MAX || size > len - pos)
            return;
        if (id != 10) {
            pos += (size_t)size;
            continue;
        }
        size_t end = pos + (size_t)size;
        uint64_t n = leb_u32(wasm, end, &pos);
        for (uint64_t i = 0; i < n && pos < end; i++) {
            uint64_t b = leb_u32(wasm, end, &pos);
            if (b == UINT64_MAX || b > end - pos)
                return;
            if (b > j->largest_body) {
                j->largest_body = b;
                j->largest_index = j->info.n_func_imports + (uint32_t)i;
            }
            pos += (size_t)b;
        }
        return;
    }
}

/*
 * Size the compile by the module, before any tool runs: refuse modules over
 * the code, function-count and function-size bounds, and derive the memory
 * and time limits of the tool runs from the code size.
 */
static int resolve_bounds(aot_job *j, const uint8_t *wasm, size_t len, kiln_err *err)
{
    const kiln_aot_options *o = j->opts;
    uint64_t max_code = o ? o->max_code_bytes : 0, max_body = o ? o->max_function_bytes : 0;
    uint64_t max_funcs = o ? o->max_functions : 0, env;
    int rc = KILN_OK;
    if (max_code == 0 && (rc = env_size(j, "KILN_AOT_MAX_CODE_BYTES", &env, err)) == KILN_OK)
        max_code = env ? env : AOT_DEFAULT_MAX_CODE;
    if (rc == KILN_OK && max_body == 0 &&
        (rc = env_size(j, "KILN_AOT_MAX_FUNCTION_BYTES", &env, err)) == KILN_OK)
        max_body = env ? env : AOT_DEFAULT_MAX_FUNC_BYTES;
    if (rc == KILN_OK && max_funcs == 0 &&
        (rc = env_size(j, "KILN_AOT_MAX_FUNCTIONS", &env, err)) == KILN_OK)
        max_funcs = env ? env : AOT_DEFAULT_MAX_FUNCS;
    if (rc == KILN_OK && (j->max_memory = o ? o->max_memory_bytes : 0) == 0 &&
        (rc = env_size(j, "KILN_AOT_MAX_MEMORY", &j->max_memory, err)) == KILN_OK &&
        j->max_memory == 0) {
        uint64_t kib = ((uint64_t)j->info.code_size + 1023) / 1024;
        j->max_memory = AOT_MEM_BASE + kib * AOT_MEM_PER_KIB;
    }
    if (rc != KILN_OK)
        return rc;
    if (j->max_memory > AOT_TOOL_MAX_AS)
        j->max_memory = AOT_TOOL_MAX_AS;
    if (o == NULL || o->timeout_s == 0) {
        const char *v = getenv("KILN_AOT_TIMEOUT");
        char *end = NULL;
        unsigned long t = v && *v ? strtoul(v, &end, 10) : 0;
        if (v && *v && (end == v || (*end != '\0' && strcmp(end, "s") != 0) || t == 0 ||
                        t > 86400))
            return kiln_err_set(err, KILN_EINVAL,
                                "%s: KILN_AOT_TIMEOUT='%s' is not a number of seconds (1 to "
                                "86400)",
                                j->name, v);
        if (t == 0) {
            t = AOT_TIMEOUT_BASE_S +
                (unsigned long)((uint64_t)j->info.code_size / 1024 * AOT_TIMEOUT_MS_PER_KIB / 1000);
            if (t > AOT_DEFAULT_TIMEOUT_S)
                t = AOT_DEFAULT_TIMEOUT_S;
        }
        j->timeout_s = (unsigned)t;
    }

    uint32_t n_defined = j->info.n_funcs - j->info.n_func_imports;
    if (j->info.code_size > max_code)
        return kiln_err_set(err, KILN_ELIMIT,
                            "%s: too large to compile: its code section is %u bytes, over the "
                            "limit of %llu (max_code_bytes); raise it with "
                            "KILN_AOT_MAX_CODE_BYTES=<size> (kiln_aot_options.max_code_bytes) or "
                            "shrink the module",
                            j->name, j->info.code_size, (unsigned long long)max_code);
    if (n_defined > max_funcs)
        return kiln_err_set(err, KILN_ELIMIT,
                            "%s: too large to compile: it defines %u functions, over the limit "
                            "of %llu (max_functions); raise it with KILN_AOT_MAX_FUNCTIONS=<n> "
                            "(kiln_aot_options.max_functions) or shrink the module",
                            j->name, n_defined, (unsigned long long)max_funcs);
    largest_body(j, wasm, len);
    if (j->largest_body > max_body)
        return kiln_err_set(err, KILN_ELIMIT,
                            "%s: too large to compile: function %u has a body of %llu bytes, "
                            "over the limit of %llu (max_function_bytes; one large function "
                            "costs the C compiler far more time and memory than many small "
                            "ones); raise it with KILN_AOT_MAX_FUNCTION_BYTES=<size> "
                            "(kiln_aot_options.max_function_bytes) or split the function",
                            j->name, j->largest_index, (unsigned long long)j->largest_body,
                            (unsigned long long)max_body);
    return KILN_OK;
}

/* Did the tool die for want of memory? gcc says "out of memory allocating"
 * or "virtual memory exhausted", or cc1 dies of SIGSEGV when even its stack
 * cannot grow; clang and wasm2c abort on bad_alloc or "LLVM ERROR: out of
 * memory", or cannot map their shared libraries at all; the gcc driver
 * reports a cc1 the kernel's OOM killer took as "Killed signal terminated
 * program". */
static bool out_of_memory(const proc_result *res)
{
    static const char *const signs[] = {"out of memory", "memory exhausted",
                                        "Cannot allocate memory", "bad_alloc",
                                        "Killed signal terminated program",
                                        "Segmentation fault signal terminated program",
                                        "failed to map segment"};
    if (res->timed_out)
        return false;
    for (size_t i = 0; i < sizeof(signs) / sizeof(signs[0]); i++)
        if (res->err != NULL && strstr(res->err, signs[i]) != NULL)
            return true;
    return res->term_signal == SIGKILL;
}

static int oom_error(const aot_job *j, const char *tool, kiln_err *err)
{
    return kiln_err_set(err, KILN_ECOMPILE,
                        "%s: %s ran out of memory (limit %llu MiB for %u KiB of code; the "
                        "largest function, %u, is %llu bytes); raise KILN_AOT_MAX_MEMORY=<size> "
                        "(kiln_aot_options.max_memory_bytes, at most %llu MiB), shrink the module "
                        "or its largest function, or compile with a lower -O level",
                        j->name, tool, (unsigned long long)(j->max_memory >> 20),
                        (j->info.code_size + 1023) / 1024, j->largest_index,
                        (unsigned long long)j->largest_body,
                        (unsigned long long)(AOT_TOOL_MAX_AS >> 20));
}

/* ---- step 1: imports ---------------------------------------------------- */

/* Check every import against the linker and report all failures at once. */
static int check_imports(aot_job *j, const kiln_linker *linker, kiln_err *err)
{
    char list[768];
    size_t used = 0;
    unsigned bad = 0, shown = 0;
    list[0] = '\0';
    for (uint32_t i = 0; i < j->info.n_imports; i++) {
        const wr_extern *im = &j->info.imports[i];
        kiln_extern_info xi = {
            .module = im->module,
            .module_len = im->module_len,
            .name = im->name,
            .name_len = im->name_len,
            .kind = im->kind,
            .type = im->type,
        };
        kiln_err why;
        memset(&why, 0, sizeof(why));
        if (kiln_linker_provides(linker, &xi, &why))
            continue;
        bad++;
        /* The linker's message names module.name and what is wrong with it. */
        char mod[160], name[160], item[400];
        kiln_wasm_name_display(im->module, im->module_len, mod, sizeof(mod));
        kiln_wasm_name_display(im->name, im->name_len, name, sizeof(name));
        int n = why.msg[0] ? snprintf(item, sizeof(item), "%s%s", bad > 1 ? "; " : "", why.msg)
                           : snprintf(item, sizeof(item), "%s%s.%s is not provided",
                                      bad > 1 ? "; " : "", mod, name);
        if (n > 0 && used + (size_t)n < sizeof(list)) {
            memcpy(list + used, item, (size_t)n + 1);
            used += (size_t)n;
            shown++;
        }
    }
    if (bad == 0)
        return KILN_OK;
    char more[64] = "";
    if (shown < bad)
        snprintf(more, sizeof(more), "; and %u more", bad - shown);
    return kiln_err_set(err, KILN_EIMPORT,
                        "%s: %u import%s not provided by the host: %s%s; provide them or rebuild "
                        "the module for this ABI",
                        j->name, bad, bad == 1 ? "" : "s", list, more);
}

/* ---- step 3: validation ------------------------------------------------- */

static int run_validate(aot_job *j, const char *const *flags, size_t n_flags, proc_result *res,
                        kiln_err *err)
{
    char *argv[16];
    size_t a = 0;
    argv[a++] = "wasm-validate";
    for (size_t i = 0; i < n_flags && a < 14; i++)
        argv[a++] = (char *)flags[i];
    argv[a++] = "module.wasm";
    argv[a] = NULL;
    int rc = aot_tool_run_limited(j->wabt.wasm_validate, argv, j->scratch, j->timeout_s,
                                  j->max_memory, res, err);
    if (rc != KILN_OK)
        return prefixed(rc, err, j->name);
    if (res->exec_failed) {
        rc = kiln_err_set(err, KILN_ETOOLCHAIN,
                          "%s: cannot run %s (%s); install wabt " AOT_WABT_VERSION
                          " (apt-get install wabt)",
                          j->name, j->wabt.wasm_validate, strerror(res->exec_errno));
    } else if (res->timed_out) {
        rc = kiln_err_set(err, KILN_ECOMPILE,
                          "%s: wasm-validate exceeded %u s; raise the "
                          "timeout or check the module's size",
                          j->name, j->timeout_s);
    } else if ((res->term_signal || res->exit_code != 0) && out_of_memory(res)) {
        /* Not an invalid module: wasm-validate could not finish. */
        rc = oom_error(j, "wasm-validate", err);
    }
    if (rc != KILN_OK)
        proc_result_free(res);
    return rc;
}

/* A proposal wasm2c 1.0.32 cannot translate, and how to recognise it: the
 * module validates once its flags are added to the base flags. */
typedef struct feature_probe {
    const char *flags[2];
    bool drop_disable_simd; /* SIMD is on by default: probing means not disabling it */
    const char *message;
} feature_probe;

#define W2C "wasm2c " AOT_WABT_VERSION
static const feature_probe probes[] = {
    {{NULL}, true, "uses SIMD (v128), which " W2C " cannot translate; rebuild without -msimd128"},
    {{"--enable-relaxed-simd"},
     true,
     "uses relaxed SIMD, which " W2C " cannot translate; rebuild without -mrelaxed-simd"},
    {{"--enable-threads"},
     false,
     "uses threads (atomics or shared memory), which " W2C " cannot translate; rebuild without "
     "-pthread/-matomics"},
    {{"--enable-tail-call"},
     false,
     "uses tail calls (return_call), which " W2C " cannot translate; rebuild without -mtail-call"},
    {{"--enable-memory64"},
     false,
     "uses 64-bit memories (memory64), which " W2C " cannot translate; build for wasm32"},
    {{"--enable-extended-const"},
     false,
     "uses extended constant expressions, which " W2C " cannot translate; rebuild without "
     "-mextended-const"},
    {{"--enable-function-references"},
     false,
     "uses typed function references, which " W2C " cannot translate; build for WebAssembly 2.0 "
     "(MVP + bulk memory, reference types, multi-value)"},
    {{"--enable-function-references", "--enable-gc"},
     false,
     "uses garbage-collected types (GC proposal), which " W2C " cannot translate; build for "
     "WebAssembly 2.0 (MVP + bulk memory, reference types, multi-value)"},
};

static int validate(aot_job *j, kiln_err *err)
{
    static const char *const base[] = {AOT_WASM_FEATURE_FLAGS};
    const size_t n_base = sizeof(base) / sizeof(base[0]);
    proc_result res;
    int rc = run_validate(j, base, n_base, &res, err);
    if (rc != KILN_OK)
        return rc;
    bool ok = !res.term_signal && res.exit_code == 0;
    char base_msg[600];
    aot_first_lines(res.err, AOT_ERR_LINES, "module.wasm:", base_msg, sizeof(base_msg));
    proc_result_free(&res);
    if (ok)
        return KILN_OK;

    /* Invalid whatever the features: a genuinely invalid module. */
    static const char *const all[] = {"--enable-all"};
    rc = run_validate(j, all, 1, &res, err);
    if (rc != KILN_OK)
        return rc;
    ok = !res.term_signal && res.exit_code == 0;
    if (!ok) {
        char msg[600];
        aot_first_lines(res.err, AOT_ERR_LINES, "module.wasm:", msg, sizeof(msg));
        proc_result_free(&res);
        return kiln_err_set(err, KILN_EMODULE,
                            "%s: invalid WebAssembly module: wasm-validate: %s; fix the toolchain "
                            "that produced it (offsets refer to Kiln's name-stripped copy)",
                            j->name, msg);
    }
    proc_result_free(&res);

    /* Valid with some proposal enabled: name the first one that suffices. */
    for (size_t p = 0; p < sizeof(probes) / sizeof(probes[0]); p++) {
        const char *flags[8];
        size_t n = 0;
        for (size_t i = 0; i < n_base; i++)
            if (!(probes[p].drop_disable_simd && strcmp(base[i], "--disable-simd") == 0))
                flags[n++] = base[i];
        for (size_t i = 0; i < 2 && probes[p].flags[i] != NULL; i++)
            flags[n++] = probes[p].flags[i];
        rc = run_validate(j, flags, n, &res, err);
        if (rc != KILN_OK)
            return rc;
        ok = !res.term_signal && res.exit_code == 0;
        proc_result_free(&res);
        if (ok)
            return kiln_err_set(err, KILN_EUNSUPPORTED, "%s: %s", j->name, probes[p].message);
    }
    return kiln_err_set(err, KILN_EUNSUPPORTED,
                        "%s: uses several WebAssembly proposals that " W2C " cannot translate "
                        "(it validates only with --enable-all): %s; build for WebAssembly 2.0",
                        j->name, base_msg);
}

/* ---- step 4: wasm2c ----------------------------------------------------- */

static int translate(aot_job *j, kiln_err *err)
{
    char *argv[16];
    size_t a = 0;
    argv[a++] = "wasm2c";
    for (size_t i = 0; i < N_WASM2C_FLAGS; i++)
        argv[a++] = (char *)wasm2c_flags[i];
    argv[a++] = "-n";
    argv[a++] = j->c_name;
    argv[a++] = "module.wasm";
    argv[a++] = "-o";
    argv[a++] = "gen.c";
    argv[a] = NULL;
    proc_result res;
    int rc = aot_tool_run_limited(j->wabt.wasm2c, argv, j->scratch, j->timeout_s, j->max_memory,
                                  &res, err);
    if (rc != KILN_OK)
        return prefixed(rc, err, j->name);
    char msg[600], status[64];
    aot_first_lines(res.err, AOT_ERR_LINES, "module.wasm:", msg, sizeof(msg));
    describe_status(&res, status, sizeof(status));
    if (res.exec_failed) {
        rc = kiln_err_set(err, KILN_ETOOLCHAIN,
                          "%s: cannot run %s (%s); install wabt " AOT_WABT_VERSION
                          " (apt-get install wabt)",
                          j->name, j->wabt.wasm2c, strerror(res.exec_errno));
    } else if (res.timed_out) {
        rc = kiln_err_set(err, KILN_ECOMPILE, "%s: wasm2c exceeded %u s; raise the timeout",
                          j->name, j->timeout_s);
    } else if ((res.term_signal || res.exit_code != 0) && out_of_memory(&res)) {
        rc = oom_error(j, "wasm2c", err);
    } else if (res.term_signal) {
        /* wasm2c 1.0.32 aborts on constructs it cannot translate (spec §1.8). */
        rc = kiln_err_set(err, KILN_EUNSUPPORTED,
                          "%s: " W2C " crashed translating it (%s): %s; the module uses a "
                          "feature wasm2c cannot translate, build for WebAssembly 2.0",
                          j->name, status, msg);
    } else if (strstr(res.err, "No space left on device") != NULL) {
        rc = kiln_err_set(err, KILN_ENOSPC,
                          "%s: disk full while writing %s/gen.c; free space "
                          "in the cache's file system",
                          j->name, j->scratch);
    } else if (res.exit_code != 0) {
        rc = kiln_err_set(err, KILN_EMODULE, "%s: wasm2c rejected it (%s): %s", j->name, status,
                          msg);
    }
    proc_result_free(&res);
    return rc;
}

/* Read scratch file `name` of the job whole (its path in path[AOT_PATH_MAX]). */
static int read_scratch(aot_job *j, const char *name, char *path, uint8_t **out, size_t *len,
                        kiln_err *err)
{
    int rc = scratch_file(j, name, path, AOT_PATH_MAX, err);
    if (rc != KILN_OK)
        return rc;
    if (fs_read_file(path, 1ULL << 30, out, len) != 0)
        return kiln_err_set(err, errno == ENOMEM ? KILN_ENOMEM : KILN_ECACHE,
                            "%s: cannot read %s: %s", j->name, path, strerror(errno));
    return KILN_OK;
}

/*
 * tcc compiles a float's unary minus as an arithmetic subtraction, which
 * keeps a NaN's sign and quiets a signalling NaN; WebAssembly's f32.neg and
 * f64.neg flip the sign bit and nothing else (33 spec assertions). wasm2c
 * 1.0.32 writes every neg as `w2c_fN = -(w2c_fN);` (f32) or `w2c_dN =
 * -(w2c_dN);` (f64) on its typed stack variables, and nothing else in gen.c
 * has that shape, so for tcc those become calls of kiln__fneg32/64, bit
 * flips defined in descriptor.h under __TINYC__. A change here changes the
 * artifacts: bump KILN_RT_ABI_VERSION with it.
 */
static int tcc_fix_neg(aot_job *j, kiln_err *err)
{
    char path[AOT_PATH_MAX];
    uint8_t *src = NULL;
    size_t len = 0;
    int rc = read_scratch(j, "gen.c", path, &src, &len, err);
    if (rc != KILN_OK)
        return rc;
    static const char pat[] = " = -(";
    const size_t pl = sizeof(pat) - 1, extra = sizeof("kiln__fneg32(") - 2;
    size_t n = 0;
    for (const uint8_t *p = src; (p = memmem(p, len - (size_t)(p - src), pat, pl)) != NULL; p += pl)
        n++;
    uint8_t *out = n ? kiln_malloc(len + n * extra) : NULL;
    if (n && out == NULL) {
        kiln_free(src);
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory rewriting gen.c for tcc", j->name);
    }
    size_t o = 0, from = 0, fixed = 0;
    for (const uint8_t *p = src; n && (p = memmem(p, len - (size_t)(p - src), pat, pl)) != NULL;
         p += pl) {
        /* The left-hand side: w2c_f<digits> or w2c_d<digits>. */
        size_t at = (size_t)(p - src), b = at;
        while (b > 0 && src[b - 1] >= '0' && src[b - 1] <= '9')
            b--;
        if (b == at || b < 5 || memcmp(src + b - 5, "w2c_", 4) != 0 ||
            (src[b - 1] != 'f' && src[b - 1] != 'd'))
            continue;
        size_t lhs = b - 5, lhs_len = at - lhs, arg = at + pl;
        if (arg + lhs_len + 2 > len || memcmp(src + arg, src + lhs, lhs_len) != 0 ||
            memcmp(src + arg + lhs_len, ");", 2) != 0)
            continue;
        memcpy(out + o, src + from, arg - 2 - from); /* up to and including " = " */
        o += arg - 2 - from;
        const char *call = src[b - 1] == 'f' ? "kiln__fneg32(" : "kiln__fneg64(";
        memcpy(out + o, call, strlen(call));
        o += strlen(call);
        from = arg;
        fixed++;
    }
    if (fixed > 0) {
        memcpy(out + o, src + from, len - from);
        o += len - from;
        if (fs_write_file(path, out, o) != 0)
            rc = write_failed(j, path, errno, err);
    }
    kiln_free(out);
    kiln_free(src);
    return rc;
}

/* ---- step 5: descriptor ------------------------------------------------- */

static int write_descriptor(aot_job *j, kiln_err *err)
{
    int rc = write_scratch(j, "kiln_descriptor.h", aot_descriptor_h, aot_descriptor_h_len, err);
    if (rc != KILN_OK)
        return rc;
    char path[AOT_PATH_MAX];
    rc = scratch_file(j, "desc.c", path, sizeof(path), err);
    if (rc != KILN_OK)
        return rc;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return write_failed(j, path, errno, err);
    rc = kiln_desc_generate(&j->info, j->c_name, "gen.h", j->key, f, err);
    if (rc != KILN_OK) {
        fclose(f);
        return prefixed(rc, err, j->name);
    }
    int e = 0;
    if (fflush(f) != 0 || ferror(f))
        e = errno ? errno : EIO;
    if (fclose(f) != 0 && e == 0)
        e = errno ? errno : EIO;
    return e ? write_failed(j, path, e, err) : KILN_OK;
}

/* ---- step 6: the C compiler --------------------------------------------- */

static int compile_c(aot_job *j, kiln_err *err)
{
    char *argv[AOT_CC_MAX_WORDS + AOT_CC_MAX_FLAGS + N_CC_TAIL + 1];
    size_t a = 0;
    for (size_t i = 0; i < j->cc.n_words; i++)
        argv[a++] = j->cc.words[i];
    for (size_t i = 0; i < j->n_cflags; i++)
        argv[a++] = (char *)j->cflags[i];
    for (size_t i = 0; i < N_CC_TAIL; i++)
        argv[a++] = (char *)cc_tail[i];
    argv[a] = NULL;

    proc_result res;
    int rc = aot_tool_run_limited(j->cc.path, argv, j->scratch, j->timeout_s, j->max_memory, &res,
                                  err);
    if (rc != KILN_OK)
        return prefixed(rc, err, j->name);
    char msg[700], status[64];
    aot_first_lines(res.err, AOT_ERR_LINES, NULL, msg, sizeof(msg));
    describe_status(&res, status, sizeof(status));
    const char *other = j->cc.is_clang ? "gcc" : "clang";
    if (res.exec_failed) {
        rc = kiln_err_set(err, KILN_ETOOLCHAIN,
                          "%s: C compiler '%s' cannot be run (%s); install it: apt-get install "
                          "%s, or pass --cc",
                          j->name, j->cc.cmd, strerror(res.exec_errno),
                          j->cc.is_clang ? "clang" : "gcc");
    } else if (res.timed_out) {
        rc = kiln_err_set(err, KILN_ECOMPILE,
                          "%s: compiler exceeded %u s (for %u KiB of code; its largest function, "
                          "%u, is %llu bytes); raise KILN_AOT_TIMEOUT=<seconds> "
                          "(kiln_aot_options.timeout_s), shrink the module or its largest "
                          "function, or compile with a lower -O level",
                          j->name, j->timeout_s, (j->info.code_size + 1023) / 1024,
                          j->largest_index, (unsigned long long)j->largest_body);
    } else if (strstr(res.err, "No space left on device") != NULL) {
        rc = kiln_err_set(err, KILN_ENOSPC,
                          "%s: disk full while writing %s/out.so; free space in the cache's file "
                          "system",
                          j->name, j->scratch);
    } else if ((res.term_signal || res.exit_code != 0) && out_of_memory(&res)) {
        rc = oom_error(j, "compiler", err);
    } else if (res.term_signal || res.exit_code != 0) {
        rc = kiln_err_set(err, KILN_ECOMPILE,
                          "%s: C compiler '%s' failed (%s): %s; check that %s is installed and "
                          "working or pass --cc %s",
                          j->name, j->cc.cmd, status, msg, j->cc.words[0], other);
    } else {
        char out[AOT_PATH_MAX];
        rc = scratch_file(j, "out.so", out, sizeof(out), err);
        if (rc == KILN_OK && !fs_is_file(out))
            rc = kiln_err_set(err, KILN_ECOMPILE,
                              "%s: C compiler '%s' reported success but wrote no out.so; pass "
                              "--cc %s",
                              j->name, j->cc.cmd, other);
    }
    proc_result_free(&res);
    return rc;
}

/*
 * gcc and clang probe every page of a large frame (-fstack-clash-protection);
 * tcc cannot, so a tcc frame larger than the 1 MiB guard below a guest stack
 * could reach past it. The reader's 50,000-locals bound keeps locals to
 * 400 KB, but wasm2c also gives every operand-stack slot a variable: a
 * 240 KB function with 50,000 i64 locals and 80,000 values on its stack got
 * a 1,040,016-byte tcc frame. So the fast tier refuses any function whose
 * frame is over AOT_TCC_MAX_FRAME. tcc 0.9.27's x86-64 prologue is always
 * `push %rbp; mov %rsp,%rbp; sub $imm32,%rsp`; scanning the whole object for
 * it may also match data, which can only refuse more, never less. On other
 * architectures the pattern never matches and the check does nothing.
 */
#define AOT_TCC_MAX_FRAME (768u << 10)
static int tcc_frame_check(aot_job *j, kiln_err *err)
{
    static const uint8_t prologue[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x81, 0xec};
    char path[AOT_PATH_MAX];
    uint8_t *so = NULL;
    size_t len = 0;
    int rc = read_scratch(j, "out.so", path, &so, &len, err);
    if (rc != KILN_OK)
        return rc;
    uint32_t worst = 0;
    /* Matches whose imm32 lies inside the file: the haystack ends 4 bytes short. */
    for (const uint8_t *p = so; len >= sizeof(prologue) + 4 &&
                                (p = memmem(p, len - 4 - (size_t)(p - so), prologue,
                                            sizeof(prologue))) != NULL;
         p++) {
        const uint8_t *imm = p + sizeof(prologue);
        uint32_t frame = (uint32_t)imm[0] | (uint32_t)imm[1] << 8 | (uint32_t)imm[2] << 16 |
                         (uint32_t)imm[3] << 24;
        if (frame > worst)
            worst = frame;
    }
    kiln_free(so);
    if (worst > AOT_TCC_MAX_FRAME)
        return kiln_err_set(err, KILN_ECOMPILE,
                            "%s: tcc gave a function a %u-byte stack frame, over the fast tier's "
                            "bound of %u (tcc cannot probe stack pages, and the guard below a "
                            "guest stack is 1 MiB); compile it with gcc or clang (the optimised "
                            "tier probes its frames) or reduce the function's locals",
                            j->name, worst, AOT_TCC_MAX_FRAME);
    return KILN_OK;
}

/* ---- step 7: load check ------------------------------------------------- */

/*
 * dlopen the built artifact the way kiln_module_load will (RTLD_NOW |
 * RTLD_LOCAL), find its descriptor, check its ABI version and content hash,
 * and close it again. None of its code has run (init_module is the loader's
 * to call), so unloading it is safe. An object the dynamic linker rejects
 * (an unresolved symbol such as tcc's missing __builtin_clz, a truncated or
 * garbage file, another ABI) fails the compile here, before it has a name
 * in the cache. First the object loses any claim to an executable stack
 * (tcc writes no PT_GNU_STACK), which dlopen would otherwise grant by
 * making every thread stack of this process executable.
 */
static int load_check(aot_job *j, kiln_err *err)
{
    char out[AOT_PATH_MAX], strip[AOT_PATH_MAX + 2];
    int rc = scratch_file(j, "out.so", out, sizeof(out), err);
    if (rc != KILN_OK)
        return rc;
    snprintf(strip, sizeof(strip), "%s/", j->scratch);
    if (aot_elf_noexec_stack(out) < 0)
        return write_failed(j, out, errno, err);
    void *dl = dlopen(out, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        char why[600];
        aot_first_lines(dlerror(), 2, strip, why, sizeof(why));
        return kiln_err_set(err, KILN_ECOMPILE,
                            "%s: the artifact C compiler '%s' built does not load: %s; nothing "
                            "was cached; pass --cc gcc or clang, or fix the compiler",
                            j->name, j->cc.cmd, why);
    }
    const kiln_descriptor *d = dlsym(dl, KILN_DESCRIPTOR_SYMBOL);
    if (d == NULL)
        rc = kiln_err_set(err, KILN_ECOMPILE,
                          "%s: the artifact C compiler '%s' built has no %s symbol; nothing was "
                          "cached; pass --cc gcc or clang, or fix the compiler",
                          j->name, j->cc.cmd, KILN_DESCRIPTOR_SYMBOL);
    else if (d->abi_version != KILN_RT_ABI_VERSION)
        rc = kiln_err_set(err, KILN_ECOMPILE,
                          "%s: the artifact C compiler '%s' built has ABI version %u, not %u; "
                          "nothing was cached",
                          j->name, j->cc.cmd, d->abi_version, KILN_RT_ABI_VERSION);
    else if (d->content_hash == NULL || strcmp(d->content_hash, j->key) != 0)
        rc = kiln_err_set(err, KILN_ECOMPILE,
                          "%s: the artifact C compiler '%s' built carries another content hash; "
                          "nothing was cached",
                          j->name, j->cc.cmd);
    dlclose(dl);
    return rc;
}

/* ---- failure memo ------------------------------------------------------- */

/*
 * A compile that failed for a reason the key determines (an invalid or
 * unsupported module, wasm2c or the compiler rejecting it or dying, a
 * time or memory limit, an artifact that does not load) is remembered in
 * <key>.fail, published atomically like an artifact. The next compile of
 * the same key returns that failure at once instead of paying for it
 * again. Missing tools, a full disk or an unwritable cache are not
 * remembered: they are about the machine, not the module. The memo records
 * the time and memory limits it failed under; raising either makes the
 * memo stale, so a compile that ran out of time is retried with more.
 */
static bool rememberable(int rc)
{
    return rc == KILN_EMODULE || rc == KILN_EUNSUPPORTED || rc == KILN_ECOMPILE;
}

static void memo_write(aot_job *j, int rc, const kiln_err *err)
{
    char path[AOT_PATH_MAX], name[256];
    if (j->scratch[0] == '\0' || scratch_file(j, "fail.txt", path, sizeof(path), NULL) != KILN_OK)
        return;
    snprintf(name, sizeof(name), "%s", j->name);
    for (char *p = name; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fprintf(f, AOT_FAIL_MAGIC "\nstatus %d\ntimeout_s %u\nmax_memory %llu\nname %s\n%s\n", rc,
            j->timeout_s, (unsigned long long)j->max_memory, name,
            err && err->msg[0] ? err->msg : kiln_strerror(rc));
    bool ok = fflush(f) == 0 && !ferror(f);
    if (fclose(f) == 0 && ok)
        aot_cache_publish(path, j->fail_memo, NULL); /* best effort: else retried next time */
}

/*
 * The remembered failure of this key, if any applies: returns its status
 * (with the message in err), or KILN_OK when there is none, it is
 * unreadable, or the limits were raised since.
 */
static int memo_check(aot_job *j, kiln_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (fs_read_file(j->fail_memo, AOT_FAIL_MAX, &data, &len) != 0)
        return KILN_OK;
    char *text = kiln_malloc(len + 1);
    if (text == NULL) {
        kiln_free(data);
        return KILN_OK;
    }
    memcpy(text, data, len);
    text[len] = '\0';
    kiln_free(data);
    int status = 0, used = 0;
    unsigned timeout = 0;
    unsigned long long mem = 0;
    int rc = KILN_OK;
    if (sscanf(text, AOT_FAIL_MAGIC "\nstatus %d\ntimeout_s %u\nmax_memory %llu\nname %n",
               &status, &timeout, &mem, &used) == 3 &&
        used > 0 && rememberable(status) && j->timeout_s <= timeout && j->max_memory <= mem) {
        char *old_name = text + used, *msg = strchr(old_name, '\n');
        if (msg != NULL) {
            *msg++ = '\0';
            size_t n = strlen(old_name), m = strlen(msg);
            while (m > 0 && msg[m - 1] == '\n')
                msg[--m] = '\0';
            /* The message names the module as it was called then. */
            if (strncmp(msg, old_name, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
                msg += n + 2;
            rc = kiln_err_set(err, status,
                              "%s: remembered failure (%s; retry with `kiln compile --force` or "
                              "kiln_aot_options.force, delete that file, or change the module "
                              "or compiler): %s",
                              j->name, j->fail_memo, msg);
        }
    }
    kiln_free(text);
    return rc;
}

/* ---- the pipeline ------------------------------------------------------- */

static int resolve_options(aot_job *j, const kiln_aot_options *opts, kiln_err *err)
{
    kiln_aot_tier tier = opts ? opts->tier : KILN_AOT_TIER_CONFIGURED;
    if (tier != KILN_AOT_TIER_CONFIGURED && tier != KILN_AOT_TIER_FAST &&
        tier != KILN_AOT_TIER_OPTIMIZED)
        return kiln_err_set(err, KILN_EINVAL,
                            "%s: unknown compilation tier %d; use KILN_AOT_TIER_CONFIGURED, "
                            "_FAST or _OPTIMIZED",
                            j->name, (int)tier);
    j->opt_level = opts && opts->opt_level >= 0 ? opts->opt_level : AOT_DEFAULT_OPT;
    if (tier == KILN_AOT_TIER_OPTIMIZED)
        j->opt_level = 2;
    if (j->opt_level > 2)
        return kiln_err_set(err, KILN_EINVAL,
                            "%s: optimisation level %d is not supported; use "
                            "0, 1 or 2",
                            j->name, j->opt_level);
    j->timeout_s = opts && opts->timeout_s ? opts->timeout_s : AOT_DEFAULT_TIMEOUT_S;
    return KILN_OK;
}

static int compute_key(aot_job *j, const uint8_t *wasm, size_t len, kiln_err *err)
{
    const char *cc_cmd = j->opts ? j->opts->cc : NULL;
    if (cc_cmd == NULL || cc_cmd[0] == '\0')
        cc_cmd = getenv("KILN_CC");
    if (cc_cmd == NULL || cc_cmd[0] == '\0')
        cc_cmd = "cc";
    if (j->opts != NULL && j->opts->tier == KILN_AOT_TIER_FAST) {
        cc_cmd = j->opts->fast_cc;
        if (cc_cmd == NULL || cc_cmd[0] == '\0')
            cc_cmd = getenv("KILN_AOT_FAST_CC");
        if (cc_cmd == NULL || cc_cmd[0] == '\0')
            cc_cmd = AOT_DEFAULT_FAST_CC;
    }
    int rc = aot_wabt_get(&j->wabt, err);
    if (rc == KILN_OK)
        rc = aot_cc_get(cc_cmd, &j->cc, err);
    if (rc != KILN_OK)
        return prefixed(rc, err, j->name);
    /* tcc does not optimise: one artifact whatever -O was asked for. */
    if (j->cc.is_tcc)
        j->opt_level = 0;
    j->n_cflags = aot_cc_flags(&j->cc, j->opt_level, j->cflags);

    /* Every flag of both tools goes into the key, in order. */
    const char *flags[N_WASM2C_FLAGS + 1 + AOT_CC_MAX_FLAGS + N_CC_TAIL];
    size_t n = 0;
    for (size_t i = 0; i < N_WASM2C_FLAGS; i++)
        flags[n++] = wasm2c_flags[i];
    flags[n++] = "|";
    for (size_t i = 0; i < j->n_cflags; i++)
        flags[n++] = j->cflags[i];
    for (size_t i = 0; i < N_CC_TAIL; i++)
        flags[n++] = cc_tail[i];
    char identity[AOT_PATH_MAX + 1024];
    aot_cc_identity(&j->cc, identity, sizeof(identity));
    aot_key_input in = {
        .wasm = wasm,
        .wasm_len = len,
        .wabt_version = j->wabt.version,
        .cc_identity = identity,
        .opt_level = j->opt_level,
        .flags = flags,
        .n_flags = n,
        .abi_version = KILN_RT_ABI_VERSION,
        .descriptor_h = aot_descriptor_h,
        .descriptor_h_len = aot_descriptor_h_len,
    };
    rc = aot_cache_key(&in, j->key, err);
    if (rc != KILN_OK)
        return prefixed(rc, err, j->name);
    /* A letter + content hash: unique symbols per artifact (spec §4 item 1). */
    snprintf(j->c_name, sizeof(j->c_name), "k%.16s", j->key);
    return KILN_OK;
}

/* Rewrite, validate, translate, describe, compile and publish, in the scratch
 * directory. */
static int build(aot_job *j, const uint8_t *wasm, size_t len, kiln_err *err)
{
    uint8_t *rewritten = NULL;
    size_t rewritten_len = 0;
    int rc = kiln_wasm_rewrite(&j->info, wasm, len, &rewritten, &rewritten_len, err);
    if (rc != KILN_OK)
        return prefixed(rc, err, j->name);
    rc = write_scratch(j, "module.wasm", rewritten, rewritten_len, err);
    kiln_free(rewritten);
    if (rc == KILN_OK)
        rc = validate(j, err);
    if (rc == KILN_OK)
        rc = translate(j, err);
    if (rc == KILN_OK && j->cc.is_tcc)
        rc = tcc_fix_neg(j, err);
    if (rc == KILN_OK)
        rc = write_descriptor(j, err);
    if (rc == KILN_OK)
        rc = compile_c(j, err);
    if (rc == KILN_OK && j->cc.is_tcc)
        rc = tcc_frame_check(j, err);
    if (rc == KILN_OK)
        rc = load_check(j, err);
    if (rc != KILN_OK && rememberable(rc))
        memo_write(j, rc, err);
    if (rc == KILN_OK) {
        char built[AOT_PATH_MAX];
        rc = scratch_file(j, "out.so", built, sizeof(built), err);
        if (rc == KILN_OK)
            rc = aot_cache_publish(built, j->artifact, err);
        if (rc != KILN_OK)
            rc = prefixed(rc, err, j->name);
    }
    return rc;
}

const char *kiln_aot_tier_name(kiln_aot_tier tier)
{
    switch (tier) {
    case KILN_AOT_TIER_CONFIGURED: return "configured";
    case KILN_AOT_TIER_FAST: return "fast";
    case KILN_AOT_TIER_OPTIMIZED: return "optimized";
    }
    return "unknown";
}

int kiln_aot_compile(const uint8_t *wasm, size_t len, const char *display_name,
                     const kiln_aot_options *opts, kiln_aot_result *out, kiln_err *err)
{
    double t0 = now_s();
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    const char *name = display_name && display_name[0] ? display_name : "module";
    if (out == NULL || (wasm == NULL && len != 0))
        return kiln_err_set(err, KILN_EINVAL,
                            "%s: kiln_aot_compile needs the module bytes and a "
                            "result record",
                            name);
    aot_job *j = kiln_calloc(1, sizeof(*j));
    if (j == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory starting compilation", name);
    /* The failure memo stores the message, so keep one even for a caller
     * that passed no error record. */
    kiln_err local;
    if (err == NULL) {
        memset(&local, 0, sizeof(local));
        err = &local;
    }
    j->name = name;
    j->opts = opts;

    int rc = resolve_options(j, opts, err);
    if (rc == KILN_OK) {
        rc = kiln_wasm_parse(wasm, len, &j->info, err);
        if (rc == KILN_OK)
            j->have_info = true;
        else
            prefixed(rc, err, name);
    }
    /* Before any external tool: a module too large to compile, or one the
     * host cannot link, is rejected without spending a compile on it. */
    if (rc == KILN_OK)
        rc = resolve_bounds(j, wasm, len, err);
    if (rc == KILN_OK && opts != NULL && opts->imports != NULL)
        rc = check_imports(j, opts->imports, err);
    if (rc == KILN_OK)
        rc = compute_key(j, wasm, len, err);
    if (rc == KILN_OK) {
        rc = aot_cache_dir(opts ? opts->cache_dir : NULL, j->cache_dir, sizeof(j->cache_dir), err);
        if (rc != KILN_OK)
            prefixed(rc, err, name);
    }
    if (rc == KILN_OK)
        rc = aot_cache_artifact_path(j->cache_dir, j->key, j->artifact, sizeof(j->artifact), err);
    if (rc == KILN_OK)
        rc = aot_cache_fail_path(j->cache_dir, j->key, j->fail_memo, sizeof(j->fail_memo), err);
    if (rc == KILN_OK) {
        bool force = opts && opts->force;
        snprintf(out->key, sizeof(out->key), "%s", j->key);
        snprintf(out->so_path, sizeof(out->so_path), "%s", j->artifact);
        snprintf(out->compiler, sizeof(out->compiler), "%s", j->cc.version);
        out->opt_level = j->opt_level;
        out->tier = j->cc.is_tcc       ? KILN_AOT_TIER_FAST
                    : j->opt_level == 2 ? KILN_AOT_TIER_OPTIMIZED
                                        : KILN_AOT_TIER_CONFIGURED;
        if (!force && aot_cache_has(j->artifact)) {
            out->cached = true;
        } else if (!force && (rc = memo_check(j, err)) != KILN_OK) {
            out->failure_remembered = true;
        } else if (opts && opts->cache_only) {
            rc = kiln_err_set(err, KILN_ENOENT,
                              "%s: not in the cache yet (%s tier, %s -O%d); compile it "
                              "(without --cache-only / kiln_aot_options.cache_only)",
                              name, kiln_aot_tier_name(out->tier), j->cc.cmd, j->opt_level);
        } else {
            rc = aot_cache_scratch_new(j->cache_dir, j->scratch, sizeof(j->scratch), err);
            if (rc != KILN_OK) {
                prefixed(rc, err, name);
            } else {
                rc = build(j, wasm, len, err);
                /* Success or failure, nothing of this compile stays behind. */
                aot_cache_scratch_remove(j->scratch);
                /* A forced retry that worked: the old failure no longer holds. */
                if (rc == KILN_OK)
                    unlink(j->fail_memo);
            }
        }
    }
    if (rc != KILN_OK) {
        out->so_path[0] = '\0';
        out->cached = false;
    }
    if (j->have_info)
        kiln_wasm_info_free(&j->info);
    kiln_free(j);
    out->seconds = now_s() - t0;
    return rc;
}

int kiln_aot_compile_file(const char *path, const kiln_aot_options *opts, kiln_aot_result *out,
                          kiln_err *err)
{
    if (path == NULL)
        return kiln_err_set(err, KILN_EINVAL, "kiln_aot_compile_file: no path given");
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fs_read_file(path, AOT_MAX_WASM_FILE, &buf, &len) != 0) {
        int e = errno;
        if (out != NULL)
            memset(out, 0, sizeof(*out));
        if (e == ENOMEM)
            return kiln_err_set(err, KILN_ENOMEM, "cannot read %s: out of memory", path);
        if (e == EFBIG)
            return kiln_err_set(err, KILN_ELIMIT,
                                "cannot read %s: larger than %llu MiB; Kiln "
                                "compiles modules up to that size",
                                path, AOT_MAX_WASM_FILE >> 20);
        return kiln_err_set(err, KILN_ENOENT, "cannot read %s: %s; check the path", path,
                            strerror(e));
    }
    int rc = kiln_aot_compile(buf, len, base_name(path), opts, out, err);
    kiln_free(buf);
    return rc;
}

int kiln_aot_load_file(const char *path, const kiln_aot_options *opts, kiln_module **out,
                       kiln_err *err)
{
    if (out == NULL)
        return kiln_err_set(err, KILN_EINVAL, "kiln_aot_load_file: no output pointer given");
    *out = NULL;
    kiln_aot_result res;
    int rc = kiln_aot_compile_file(path, opts, &res, err);
    if (rc != KILN_OK)
        return rc;
    return kiln_module_load(res.so_path, base_name(path), out, err);
}

/*
 * The tier choice of kiln_aot_load_best, for n modules at once. Per tier the
 * status is the first failure of a module (a remembered failure, a missing
 * compiler: compiling cannot complete the tier), else KILN_ENOENT when a
 * module is only not compiled yet, else KILN_OK.
 */
int kiln_aot_best_tier(const kiln_aot_input *in, size_t n, const kiln_aot_options *opts,
                       kiln_aot_tier *tier_out, kiln_aot_result *out, kiln_err *err)
{
    if (tier_out != NULL)
        *tier_out = KILN_AOT_TIER_CONFIGURED;
    if (in == NULL && n > 0)
        return kiln_err_set(err, KILN_EINVAL, "kiln_aot_best_tier: no modules given");
    kiln_aot_options o;
    if (opts != NULL)
        o = *opts;
    else
        memset(&o, 0, sizeof(o)), o.opt_level = -1;
    o.force = false;
    o.cache_only = true;
    static const kiln_aot_tier order[] = {KILN_AOT_TIER_OPTIMIZED, KILN_AOT_TIER_FAST};
    kiln_err why[2];
    int rcs[2];
    kiln_aot_result scratch;
    for (size_t t = 0; t < 2; t++) {
        memset(&why[t], 0, sizeof(why[t]));
        rcs[t] = KILN_OK;
        o.tier = order[t];
        for (size_t i = 0; i < n; i++) {
            kiln_err e;
            memset(&e, 0, sizeof(e));
            int rc = kiln_aot_compile(in[i].wasm, in[i].len, in[i].name, &o,
                                      out != NULL ? &out[i] : &scratch, &e);
            if (rc == KILN_OK)
                continue;
            if (rcs[t] == KILN_OK || rcs[t] == KILN_ENOENT) {
                rcs[t] = rc;
                why[t] = e;
            }
            if (rc != KILN_ENOENT)
                break; /* compiling the others cannot complete this tier */
        }
        if (rcs[t] == KILN_OK) {
            if (tier_out != NULL)
                *tier_out = order[t];
            return KILN_OK;
        }
    }
    const char *name = n > 0 && in[0].name != NULL ? in[0].name : "module";
    if (rcs[0] == KILN_ENOENT || rcs[1] == KILN_ENOENT)
        return kiln_err_set(err, KILN_ENOENT,
                            "%s%s: no tier is cached yet (optimized: %s; fast: %s); compile it",
                            name, n > 1 ? " and the modules served with it" : "",
                            kiln_strerror(rcs[0]), kiln_strerror(rcs[1]));
    if (err != NULL)
        *err = why[0];
    return rcs[0];
}

int kiln_aot_load_best(const char *path, const kiln_aot_options *opts, kiln_module **out,
                       kiln_aot_tier *tier_out, kiln_err *err)
{
    if (out == NULL)
        return kiln_err_set(err, KILN_EINVAL, "kiln_aot_load_best: no output pointer given");
    *out = NULL;
    if (tier_out != NULL)
        *tier_out = KILN_AOT_TIER_CONFIGURED;
    if (path == NULL)
        return kiln_err_set(err, KILN_EINVAL, "kiln_aot_load_best: no path given");
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fs_read_file(path, AOT_MAX_WASM_FILE, &buf, &len) != 0)
        return kiln_err_set(err, errno == ENOMEM ? KILN_ENOMEM : KILN_ENOENT,
                            "cannot read %s: %s; check the path", path, strerror(errno));
    kiln_aot_input in = {.wasm = buf, .len = len, .name = base_name(path)};
    kiln_aot_result res;
    kiln_aot_tier tier;
    int rc = kiln_aot_best_tier(&in, 1, opts, &tier, &res, err);
    kiln_free(buf);
    if (rc == KILN_OK)
        rc = kiln_module_load(res.so_path, base_name(path), out, err);
    if (rc == KILN_OK && tier_out != NULL)
        *tier_out = tier;
    return rc;
}
