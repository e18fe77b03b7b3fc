/*
 * test_aot_cache.c - unit tests for src/aot (compile.c, cache.c,
 * toolchain.c) and the sandboxed child runner in src/platform/proc_posix.c:
 * cache keys, caching, atomic publish, scratch clean-up, the error for each
 * failure the pipeline maps (cache dir, compiler, imports, invalid and
 * unsupported modules, timeouts). Real wasm2c and cc run; each test uses its
 * own cache directory under /tmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "aot/cache.h"
#include "aot/toolchain.h"
#include "base/alloc.h"
#include "base/sha256.h"
#include "platform/fs.h"
#include "platform/proc.h"
#include "support/wat.h"

static const char *add_wat = "(module (func (export \"add\") (param i32 i32) (result i32)\n"
                             "  (i32.add (local.get 0) (local.get 1))))\n";

/* ---- helpers ------------------------------------------------------------ */

typedef struct tdir {
    char root[64];   /* /tmp/kiln-aot-XXXXXX */
    char cache[128]; /* root/cache */
    char wasm[128];  /* root/m.wasm */
} tdir;

static void tdir_new(tdir *t, const char *wat, const char *wat_flags)
{
    snprintf(t->root, sizeof(t->root), "/tmp/kiln-aot-XXXXXX");
    assert_non_null(mkdtemp(t->root));
    snprintf(t->cache, sizeof(t->cache), "%s/cache", t->root);
    snprintf(t->wasm, sizeof(t->wasm), "%s/m.wasm", t->root);
    if (wat != NULL) {
        char *p = test_wat2wasm(wat, wat_flags);
        assert_non_null(p);
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "mv %s %s && rm -rf \"$(dirname %s)\"", p, t->wasm, p);
        assert_int_equal(system(cmd), 0);
        free(p);
    }
}

static void tdir_free(tdir *t)
{
    fs_remove_tree(t->root);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    assert_int_equal(fs_write_file(path, text, strlen(text)), 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* Number of entries in `dir` (0 when it does not exist); counts names ending
 * in `suffix` only when suffix is not NULL. */
static int count_entries(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        size_t l = strlen(de->d_name), sl = suffix ? strlen(suffix) : 0;
        if (suffix == NULL || (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0))
            n++;
    }
    closedir(d);
    return n;
}

static int count_tmp(const tdir *t)
{
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s/tmp", t->cache);
    return count_entries(tmp, NULL);
}

static kiln_aot_options opts_for(const tdir *t)
{
    kiln_aot_options o;
    memset(&o, 0, sizeof(o));
    o.opt_level = 0;
    o.cache_dir = t->cache;
    return o;
}

static bool have_program(const char *name)
{
    char path[4096];
    return fs_which(name, getenv("PATH"), path, sizeof(path)) == 0;
}

/* ---- cache keys --------------------------------------------------------- */

static void key_of(const aot_key_input *in, char out[AOT_KEY_HEX + 1])
{
    kiln_err err;
    assert_int_equal(aot_cache_key(in, out, &err), KILN_OK);
    assert_int_equal(strlen(out), AOT_KEY_HEX);
}

static void test_key_inputs(void **state)
{
    (void)state;
    uint8_t wasm[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    const char *flags[] = {"-shared", "-fPIC", "-O2"};
    const char *flags2[] = {"-shared", "-fPIC", "-O2", "-w"};
    aot_key_input base = {
        .wasm = wasm,
        .wasm_len = sizeof(wasm),
        .wabt_version = "wabt 1.0.32",
        .cc_identity = "/usr/bin/gcc-12\ngcc (Debian 12.2.0-14) 12.2.0",
        .opt_level = 2,
        .flags = flags,
        .n_flags = 3,
        .abi_version = 1,
        .descriptor_h = "contract",
        .descriptor_h_len = 8,
    };
    char k0[65], k1[65];
    key_of(&base, k0);
    key_of(&base, k1);
    assert_string_equal(k0, k1); /* stable */

    aot_key_input v = base;
    uint8_t wasm2[sizeof(wasm)];
    memcpy(wasm2, wasm, sizeof(wasm));
    wasm2[7] = 1;
    v.wasm = wasm2;
    key_of(&v, k1);
    assert_string_not_equal(k0, k1); /* bytes */

    v = base;
    v.opt_level = 1;
    key_of(&v, k1);
    assert_string_not_equal(k0, k1); /* opt level */

    v = base;
    v.cc_identity = "/usr/bin/clang-14\nDebian clang version 14.0.6";
    key_of(&v, k1);
    assert_string_not_equal(k0, k1); /* compiler */

    v = base;
    v.wabt_version = "wabt 1.0.33";
    key_of(&v, k1);
    assert_string_not_equal(k0, k1); /* translator */

    v = base;
    v.flags = flags2;
    v.n_flags = 4;
    key_of(&v, k1);
    assert_string_not_equal(k0, k1); /* flags */

    v = base;
    v.abi_version = 2;
    key_of(&v, k1);
    assert_string_not_equal(k0, k1); /* runtime ABI */

    /* Field boundaries matter: moving a byte between fields changes the key. */
    v = base;
    v.wabt_version = "wabt 1.0.3";
    v.cc_identity = "2/usr/bin/gcc-12\ngcc (Debian 12.2.0-14) 12.2.0";
    key_of(&v, k1);
    assert_string_not_equal(k0, k1);
}

/* ---- compiling and caching ---------------------------------------------- */

static void test_compile_then_cached(void **state)
{
    (void)state;
    tdir t;
    tdir_new(&t, add_wat, "");
    kiln_aot_options o = opts_for(&t);
    kiln_aot_result r1, r2, r3;
    kiln_err err;
    int rc = kiln_aot_compile_file(t.wasm, &o, &r1, &err);
    if (rc != KILN_OK)
        fail_msg("compile: %s", err.msg);
    assert_false(r1.cached);
    assert_int_equal(strlen(r1.key), 64);
    assert_true(fs_is_file(r1.so_path));
    char expect[4200], real_cache[4096];
    assert_int_equal(fs_realpath(t.cache, real_cache, sizeof(real_cache)), 0);
    snprintf(expect, sizeof(expect), "%s/%s.so", real_cache, r1.key);
    assert_string_equal(r1.so_path, expect);

    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r2, &err), KILN_OK);
    assert_true(r2.cached);
    assert_string_equal(r1.key, r2.key);
    assert_string_equal(r1.so_path, r2.so_path);

    /* --force recompiles into the same name. */
    o.force = true;
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r3, &err), KILN_OK);
    assert_false(r3.cached);
    assert_string_equal(r1.key, r3.key);
    o.force = false;

    /* Another opt level is another artifact. */
    o.opt_level = 1;
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r3, &err), KILN_OK);
    assert_false(r3.cached);
    assert_string_not_equal(r1.key, r3.key);

    /* Another compiler is another artifact. */
    if (have_program("gcc") && have_program("clang")) {
        o.opt_level = 0;
        o.cc = "gcc";
        assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r2, &err), KILN_OK);
        o.cc = "clang";
        rc = kiln_aot_compile_file(t.wasm, &o, &r3, &err);
        if (rc != KILN_OK)
            fail_msg("clang: %s", err.msg);
        assert_string_not_equal(r2.key, r3.key);
        assert_int_equal(count_entries(t.cache, ".so"), 4);
    } else {
        assert_int_equal(count_entries(t.cache, ".so"), 2);
    }
    assert_int_equal(count_tmp(&t), 0); /* no scratch left behind */
    tdir_free(&t);
}

static void test_load_file(void **state)
{
    (void)state;
    tdir t;
    tdir_new(&t, add_wat, "");
    kiln_aot_options o = opts_for(&t);
    kiln_module *m = NULL;
    kiln_err err;
    /* Artifacts resolve wasm_rt_* against the executable, but a static
     * archive only contributes objects something references: make sure the
     * runtime's memory/type-registry object is linked into this test. */
    kiln_rt_stats stats;
    kiln_rt_stats_get(&stats);
    int rc = kiln_aot_load_file(t.wasm, &o, &m, &err);
    if (rc != KILN_OK)
        fail_msg("load: %s", err.msg);
    assert_string_equal(kiln_module_name(m), "m.wasm");
    assert_true(kiln_module_find_export(m, "add", KILN_EXTERN_FUNC) >= 0);
    /* And it runs (this also links the runtime's wasm_rt_* into the test). */
    kiln_linker *l;
    kiln_instance_pre *pre;
    kiln_instance *inst;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    assert_int_equal(kiln_instance_pre_new(m, l, &pre, &err), KILN_OK);
    assert_int_equal(kiln_instance_new(pre, NULL, NULL, &inst, &err), KILN_OK);
    kiln_value args[2] = {{.i32 = 2}, {.i32 = 3}}, res[1];
    assert_int_equal(kiln_instance_call(inst, "add", "ii>i", args, res, &err), KILN_OK);
    assert_int_equal(res[0].i32, 5);
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
    kiln_linker_free(l);
    kiln_module_release(m);
    tdir_free(&t);
}

typedef struct compile_arg {
    const tdir *t;
    int rc;
    char msg[1024];
} compile_arg;

static void *compile_thread(void *p)
{
    compile_arg *a = p;
    kiln_aot_options o = opts_for(a->t);
    o.force = true;
    kiln_aot_result r;
    kiln_err err;
    err.msg[0] = '\0';
    a->rc = kiln_aot_compile_file(a->t->wasm, &o, &r, &err);
    snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
    return NULL;
}

/* kiln_aot_compile is thread-safe: forced compiles of one module on several
 * threads all succeed, publish one artifact and leave no scratch. */
static void test_threads_compile_concurrently(void **state)
{
    (void)state;
    tdir t;
    tdir_new(&t, add_wat, "");
    enum { N = 4 };
    pthread_t th[N];
    compile_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i].t = &t;
        assert_int_equal(pthread_create(&th[i], NULL, compile_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        if (args[i].rc != KILN_OK)
            fail_msg("thread %d: %s", i, args[i].msg);
    }
    assert_int_equal(count_entries(t.cache, ".so"), 1);
    assert_int_equal(count_tmp(&t), 0);
    tdir_free(&t);
}

/* ---- atomic publish ----------------------------------------------------- */

/* A compiler that writes half an artifact, then fails. */
static const char *partial_cc = "#!/bin/sh\n"
                                "if [ \"$1\" = --version ]; then echo 'fakecc 1.0'; exit 0; fi\n"
                                "out=\n"
                                "while [ $# -gt 0 ]; do\n"
                                "  if [ \"$1\" = -o ]; then out=$2; fi; shift\n"
                                "done\n"
                                "printf 'partial' > \"$out\"\n"
                                "echo 'fakecc: error: line one' >&2\n"
                                "echo 'fakecc: error: line two' >&2\n"
                                "exit 1\n";

static void test_failed_compile_leaves_nothing(void **state)
{
    (void)state;
    tdir t;
    tdir_new(&t, add_wat, "");
    char cc[160];
    snprintf(cc, sizeof(cc), "%s/fakecc", t.root);
    write_file(cc, partial_cc, 0755);
    kiln_aot_options o = opts_for(&t);
    o.cc = cc;
    kiln_aot_result r;
    kiln_err err;
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_ECOMPILE);
    assert_non_null(strstr(err.msg, "m.wasm: C compiler"));
    assert_non_null(strstr(err.msg, "failed (exit 1)"));
    assert_non_null(strstr(err.msg, "line one | fakecc: error: line two"));
    assert_non_null(strstr(err.msg, "--cc"));
    assert_string_equal(r.so_path, "");
    assert_int_equal(count_entries(t.cache, ".so"), 0); /* the partial file never got a name */
    assert_int_equal(count_tmp(&t), 0);
    tdir_free(&t);
}

/* ---- kiln_aot_best_tier: one tier for a set of modules ------------------- */

static const char *sub_wat = "(module (func (export \"sub\") (param i32 i32) (result i32)\n"
                             "  (i32.sub (local.get 0) (local.get 1))))\n";

static void read_wasm(const char *path, uint8_t **buf, size_t *len)
{
    assert_int_equal(fs_read_file(path, 1 << 20, buf, len), 0);
}

static int compile_tier(const uint8_t *w, size_t n, const kiln_aot_options *base,
                        kiln_aot_tier tier)
{
    kiln_aot_options o = *base;
    o.tier = tier;
    kiln_aot_result r;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    return kiln_aot_compile(w, n, "m", &o, &r, &err);
}

/* The optimised tier only once every module has it; a tier one module
 * failed is never chosen; KILN_ENOENT while a tier can still be compiled;
 * both tiers failed: the optimised tier's remembered failure. */
static void test_best_tier_of_a_set(void **state)
{
    (void)state;
    if (!have_program("tcc")) {
        print_message("tcc not installed: skipped\n");
        return;
    }
    tdir a, b;
    tdir_new(&a, add_wat, "");
    tdir_new(&b, sub_wat, "");
    uint8_t *wa, *wb;
    size_t la, lb;
    read_wasm(a.wasm, &wa, &la);
    read_wasm(b.wasm, &wb, &lb);
    kiln_aot_input in[2] = {{wa, la, "a.wasm"}, {wb, lb, "b.wasm"}};
    kiln_aot_options o = opts_for(&a);
    kiln_aot_tier tier;
    kiln_aot_result res[2];
    kiln_err err;
    memset(&err, 0, sizeof(err));

    assert_int_equal(kiln_aot_best_tier(in, 2, &o, &tier, res, &err), KILN_ENOENT);
    assert_non_null(strstr(err.msg, "no tier is cached yet"));
    assert_int_equal(count_entries(a.cache, ".so"), 0); /* nothing compiled */
    assert_int_equal(kiln_aot_best_tier(in, 0, &o, &tier, NULL, &err), KILN_OK);
    assert_int_equal(tier, KILN_AOT_TIER_OPTIMIZED);

    assert_int_equal(compile_tier(wa, la, &o, KILN_AOT_TIER_FAST), KILN_OK);
    assert_int_equal(kiln_aot_best_tier(in, 2, &o, &tier, res, &err), KILN_ENOENT);
    assert_int_equal(compile_tier(wb, lb, &o, KILN_AOT_TIER_FAST), KILN_OK);
    assert_int_equal(kiln_aot_best_tier(in, 2, &o, &tier, res, &err), KILN_OK);
    assert_int_equal(tier, KILN_AOT_TIER_FAST);
    assert_true(res[0].cached && res[1].cached);
    assert_string_not_equal(res[0].so_path, res[1].so_path); /* one artifact per module */
    assert_int_equal(compile_tier(wa, la, &o, KILN_AOT_TIER_OPTIMIZED), KILN_OK);
    assert_int_equal(kiln_aot_best_tier(in, 2, &o, &tier, res, &err), KILN_OK);
    assert_int_equal(tier, KILN_AOT_TIER_FAST); /* b has no optimised artifact yet */
    assert_int_equal(compile_tier(wb, lb, &o, KILN_AOT_TIER_OPTIMIZED), KILN_OK);
    assert_int_equal(kiln_aot_best_tier(in, 2, &o, &tier, res, &err), KILN_OK);
    assert_int_equal(tier, KILN_AOT_TIER_OPTIMIZED);
    assert_int_equal(count_entries(a.cache, ".so"), 4);

    /* A failing optimising compiler: b's optimised tier is remembered as
     * failed, so the set stays at the fast tier. */
    char cc[160];
    snprintf(cc, sizeof(cc), "%s/fakecc", a.root);
    write_file(cc, partial_cc, 0755);
    kiln_aot_options f = o;
    f.cc = cc;
    assert_int_equal(compile_tier(wb, lb, &f, KILN_AOT_TIER_OPTIMIZED), KILN_ECOMPILE);
    assert_int_equal(kiln_aot_best_tier(in, 2, &f, &tier, res, &err), KILN_OK);
    assert_int_equal(tier, KILN_AOT_TIER_FAST);
    /* A fast compiler not run yet: compile that tier (KILN_ENOENT). Once it
     * failed too, both tiers of b are failed: the optimised tier's failure,
     * although a's artifacts for these compilers were never even tried. */
    kiln_aot_input one = in[1];
    f.fast_cc = cc;
    assert_int_equal(kiln_aot_best_tier(&one, 1, &f, &tier, NULL, &err), KILN_ENOENT);
    assert_int_equal(compile_tier(wb, lb, &f, KILN_AOT_TIER_FAST), KILN_ECOMPILE);
    memset(&err, 0, sizeof(err));
    assert_int_equal(kiln_aot_best_tier(in, 2, &f, &tier, res, &err), KILN_ECOMPILE);
    assert_non_null(strstr(err.msg, "remembered failure"));
    assert_int_equal(tier, KILN_AOT_TIER_CONFIGURED);

    kiln_free(wa);
    kiln_free(wb);
    tdir_free(&a);
    tdir_free(&b);
}

static void test_stale_scratch_is_never_an_artifact(void **state)
{
    (void)state;
    tdir t;
    tdir_new(&t, add_wat, "");
    kiln_aot_options o = opts_for(&t);
    kiln_aot_result r;
    kiln_err err;

    /* Learn the key, then start over with only leftovers of a crashed
     * compile: a scratch directory of a dead process holding a complete-
     * looking out.so, and a file named like the artifact inside tmp/. */
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_OK);
    char key[65];
    snprintf(key, sizeof(key), "%s", r.key);
    assert_int_equal(unlink(r.so_path), 0);
    char host[64], dead[256], stray[256], stale_so[300];
    fs_host_tag(host, sizeof(host));
    snprintf(dead, sizeof(dead), "%s/tmp/%s.99999999.abcdef", t.cache, host);
    assert_int_equal(fs_mkdir_p(dead), 0);
    snprintf(stale_so, sizeof(stale_so), "%s/out.so", dead);
    write_file(stale_so, "stale", 0644);
    snprintf(stray, sizeof(stray), "%s/tmp/%s.so", t.cache, key);
    write_file(stray, "stale", 0644);

    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_OK);
    assert_false(r.cached); /* tmp/ is never looked up */
    assert_string_equal(r.key, key);
    struct stat st;
    assert_int_equal(stat(r.so_path, &st), 0);
    assert_true(st.st_size > 1000); /* a real ELF object, not "stale" */
    /* The dead process's scratch directory was swept; the young stray file
     * (no owner to check) stays until it is a day old. */
    assert_int_not_equal(access(dead, F_OK), 0);
    assert_int_equal(access(stray, F_OK), 0);
    assert_int_equal(count_entries(t.cache, ".so"), 1);
    tdir_free(&t);
}

static void test_compiler_timeout(void **state)
{
    (void)state;
    tdir t;
    tdir_new(&t, add_wat, "");
    char cc[160];
    snprintf(cc, sizeof(cc), "%s/slowcc", t.root);
    /* The grandchild sleep must die too: it holds the output pipes. */
    write_file(cc,
               "#!/bin/sh\n"
               "if [ \"$1\" = --version ]; then echo 'slowcc 1.0'; exit 0; fi\n"
               "sleep 60 & sleep 60\n",
               0755);
    kiln_aot_options o = opts_for(&t);
    o.cc = cc;
    o.timeout_s = 1;
    kiln_aot_result r;
    kiln_err err;
    time_t t0 = time(NULL);
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_ECOMPILE);
    assert_true(time(NULL) - t0 < 10);
    assert_non_null(strstr(err.msg, "compiler exceeded 1 s"));
    assert_int_equal(count_entries(t.cache, ".so"), 0);
    assert_int_equal(count_tmp(&t), 0);
    tdir_free(&t);
}

/* ---- error messages ----------------------------------------------------- */

static void test_unwritable_cache_dir(void **state)
{
    (void)state;
    tdir t;
    tdir_new(&t, add_wat, "");
    kiln_aot_options o = opts_for(&t);
    /* Tests run as root, so permissions cannot make a directory unwritable:
     * a path below a regular file fails with ENOTDIR for everyone. */
    o.cache_dir = "/etc/passwd/x";
    kiln_aot_result r;
    kiln_err err;
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_ECACHE);
    assert_non_null(strstr(err.msg, "m.wasm: "));
    assert_non_null(strstr(err.msg, "/etc/passwd/x"));
    assert_non_null(strstr(err.msg, strerror(ENOTDIR)));
    assert_non_null(strstr(err.msg, "KILN_HOME"));
    tdir_free(&t);
}

static void test_missing_compiler(void **state)
{
    (void)state;
    tdir t;
    tdir_new(&t, add_wat, "");
    kiln_aot_options o = opts_for(&t);
    o.cc = "/nonexistent/cc";
    kiln_aot_result r;
    kiln_err err;
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_ETOOLCHAIN);
    assert_non_null(strstr(err.msg, "m.wasm: C compiler '/nonexistent/cc' not found"));
    assert_non_null(strstr(err.msg, "apt-get install"));
    assert_non_null(strstr(err.msg, "--cc"));

    o.cc = "kiln-no-such-compiler";
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_ETOOLCHAIN);
    assert_non_null(strstr(err.msg, "not found in PATH"));
    tdir_free(&t);
}

static uint32_t host_add(kiln_instance *inst, uint32_t a)
{
    (void)inst;
    return a + 1;
}

static void test_bad_imports_listed_before_tools_run(void **state)
{
    (void)state;
    tdir t;
    tdir_new(&t,
             "(module\n"
             " (import \"env\" \"inc\" (func (param i32) (result i32)))\n"
             " (import \"env\" \"wrong\" (func (param f64) (result f64)))\n"
             " (import \"env\" \"absent\" (func))\n"
             " (import \"other\" \"mem\" (memory 1)))\n",
             "");
    static const kiln_hostfn fns[] = {
        {"env", "inc", "i>i", (void (*)(void))host_add},
        {"env", "wrong", "i>i", (void (*)(void))host_add},
    };
    kiln_linker *l;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    assert_int_equal(kiln_linker_define_host(l, fns, 2), KILN_OK);
    kiln_aot_options o = opts_for(&t);
    o.imports = l;
    /* A compiler that does not exist: the import check must fail first. */
    o.cc = "/nonexistent/cc";
    kiln_aot_result r;
    kiln_err err;
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_EIMPORT);
    assert_non_null(strstr(err.msg, "m.wasm: 3 imports not provided"));
    assert_non_null(strstr(err.msg, "env.wrong"));
    assert_non_null(strstr(err.msg, "env.absent"));
    assert_non_null(strstr(err.msg, "other.mem"));
    assert_null(strstr(err.msg, "env.inc"));
    assert_int_not_equal(access(t.cache, F_OK), 0); /* nothing ran, nothing was created */
    kiln_linker_free(l);
    tdir_free(&t);
}

static void test_unsupported_and_invalid_modules(void **state)
{
    (void)state;
    kiln_aot_result r;
    kiln_err err;
    tdir t;

    tdir_new(&t,
             "(module (func (export \"f\") (result i32)\n"
             "  (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4))))\n",
             "");
    kiln_aot_options o = opts_for(&t);
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "m.wasm: uses SIMD (v128)"));
    assert_non_null(strstr(err.msg, "-msimd128"));
    assert_int_equal(count_entries(t.cache, ".so"), 0);
    assert_int_equal(count_tmp(&t), 0);
    tdir_free(&t);

    tdir_new(&t,
             "(module (func $g (result i32) (i32.const 1))\n"
             "  (func (export \"f\") (result i32) (return_call $g)))\n",
             "--enable-tail-call");
    o = opts_for(&t);
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "tail calls"));
    tdir_free(&t);

    tdir_new(&t,
             "(module (memory 1 1)\n"
             "  (func (export \"f\") (result i32) (i32.atomic.load (i32.const 0))))\n",
             "--enable-threads");
    o = opts_for(&t);
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "threads"));
    tdir_free(&t);

    /* Structurally fine, but the body does not type-check: wasm-validate. */
    tdir_new(&t, "(module (func (export \"f\") (result i32) (i64.const 1)))\n", "--no-check");
    o = opts_for(&t);
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_EMODULE);
    assert_non_null(strstr(err.msg, "m.wasm: invalid WebAssembly module: wasm-validate:"));
    assert_non_null(strstr(err.msg, "type mismatch"));
    assert_null(strstr(err.msg, "module.wasm")); /* no scratch names */
    assert_int_equal(count_tmp(&t), 0);
    tdir_free(&t);

    /* Not a module at all: the reader rejects it before any tool runs. */
    tdir_new(&t, NULL, NULL);
    assert_int_equal(fs_write_file(t.wasm, "\0asm\1\0\0\0garbage!", 16), 0);
    o = opts_for(&t);
    assert_int_equal(kiln_aot_compile_file(t.wasm, &o, &r, &err), KILN_EMODULE);
    assert_non_null(strstr(err.msg, "m.wasm: "));
    tdir_free(&t);
}

static void test_compile_file_errors(void **state)
{
    (void)state;
    kiln_aot_result r;
    kiln_err err;
    assert_int_equal(kiln_aot_compile_file("/nonexistent/x.wasm", NULL, &r, &err), KILN_ENOENT);
    assert_non_null(strstr(err.msg, "cannot read /nonexistent/x.wasm"));
    assert_non_null(strstr(err.msg, strerror(ENOENT)));
    assert_non_null(strstr(err.msg, "check the path"));

    kiln_aot_options o;
    memset(&o, 0, sizeof(o));
    o.opt_level = 7;
    uint8_t wasm[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    assert_int_equal(kiln_aot_compile(wasm, sizeof(wasm), "x.wasm", &o, &r, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "x.wasm: optimisation level 7"));
    /* Without an error record the status is unchanged. */
    assert_int_equal(kiln_aot_compile(wasm, sizeof(wasm), "x.wasm", &o, &r, NULL), KILN_EINVAL);
}

static void test_enospc_mapping(void **state)
{
    (void)state;
    assert_int_equal(aot_errno_status(ENOSPC, KILN_ECACHE), KILN_ENOSPC);
    assert_int_equal(aot_errno_status(EDQUOT, KILN_ECACHE), KILN_ENOSPC);
    assert_int_equal(aot_errno_status(EACCES, KILN_ECACHE), KILN_ECACHE);
    /* /dev/full is what a full disk looks like to a writer. */
    assert_int_equal(fs_write_file("/dev/full", "x", 1), -1);
    assert_int_equal(errno, ENOSPC);
}

/* ---- the sandboxed child runner ----------------------------------------- */

static void run_sh(const char *script, const proc_limits *lim, proc_result *res)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
    assert_int_equal(proc_run("/bin/sh", argv, envp, "/", lim, res), 0);
}

static void test_proc_capture_env_fds(void **state)
{
    (void)state;
    proc_limits lim = {.wall_s = 10, .capture_bytes = 100};
    proc_result res;
    /* An fd the parent has open must not reach the child. */
    int fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
    assert_true(fd >= 0);
    char script[256];
    snprintf(script, sizeof(script),
             "echo out; echo err >&2; pwd; echo \"$LC_ALL\"; "
             "[ -e /proc/self/fd/%d ] && echo leaked; read x; echo \"stdin=$x\"; exit 3",
             fd);
    run_sh(script, &lim, &res);
    close(fd);
    assert_false(res.exec_failed);
    assert_int_equal(res.exit_code, 3);
    assert_string_equal(res.out, "out\n/\nC\nstdin=\n");
    assert_string_equal(res.err, "err\n");
    proc_result_free(&res);

    /* Output beyond the cap is drained and dropped. */
    run_sh("i=0; while [ $i -lt 1000 ]; do echo 0123456789; i=$((i+1)); done", &lim, &res);
    assert_int_equal(res.exit_code, 0);
    assert_int_equal(res.out_len, 100);
    assert_true(res.truncated);
    proc_result_free(&res);

    /* A program that does not exist: exec_failed with its errno. */
    char *argv[] = {"nope", NULL};
    char *envp[] = {NULL};
    assert_int_equal(proc_run("/nonexistent/nope", argv, envp, NULL, &lim, &res), 0);
    assert_true(res.exec_failed);
    assert_int_equal(res.exec_errno, ENOENT);
    proc_result_free(&res);
}

/* Still executing? A killed orphan may stay a zombie when the container's
 * init does not reap, so "exists" is not the question. */
static bool running(long pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp != NULL && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void test_proc_limits_and_kill(void **state)
{
    (void)state;
    proc_limits lim = {.wall_s = 1, .fsize_bytes = 4096, .cpu_s = 30};
    proc_result res;
    /* Wall clock: the whole group dies, including the background sleep. */
    time_t t0 = time(NULL);
    run_sh("sleep 30 & echo $! ; sleep 30", &lim, &res);
    assert_true(res.timed_out);
    assert_int_equal(res.term_signal, SIGKILL);
    assert_true(time(NULL) - t0 < 5);
    long bg = atol(res.out);
    assert_true(bg > 0);
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_false(running(bg));
    proc_result_free(&res);

    /* Limits as the child sees them. */
    lim.wall_s = 10;
    run_sh("ulimit -f; ulimit -c; ulimit -t", &lim, &res);
    assert_int_equal(res.exit_code, 0);
    assert_string_equal(res.out, "8\n0\n30\n"); /* ulimit -f counts 512-byte blocks */
    proc_result_free(&res);

    /* Writing past RLIMIT_FSIZE kills the writer with SIGXFSZ. */
    run_sh("exec head -c 100000 /dev/zero > /dev/shm/kiln-aot-fsize-test", &lim, &res);
    unlink("/dev/shm/kiln-aot-fsize-test");
    assert_int_equal(res.term_signal, SIGXFSZ);
    proc_result_free(&res);
}

static void test_first_lines(void **state)
{
    (void)state;
    char out[64];
    aot_first_lines("module.wasm:000010: error: a\n\nb\tc\x01\nd\ne\n", 3, "module.wasm:", out,
                    sizeof(out));
    assert_string_equal(out, "000010: error: a | b c\\x01 | d");
    aot_first_lines("", 5, NULL, out, sizeof(out));
    assert_string_equal(out, "(no output)");
    aot_first_lines("0123456789012345678901234567890123456789012345678901234567890123456789", 1,
                    NULL, out, sizeof(out));
    assert_int_equal(strlen(out), sizeof(out) - 1);
}

/* Kiln's SHA-256 (the cache key's hash since libcrypto left `kiln run`):
 * FIPS 180-4 vectors, and OpenSSL's digest at every length around the block
 * and padding boundaries, split into every chunking, with the SHA extensions
 * and without. */
extern int kiln_sha256_allow_ni;
static void test_sha256_matches_openssl(void **state)
{
    (void)state;
    char hex[65];
    kiln_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    kiln_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    static uint8_t buf[3000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 131 + (i >> 7));
    for (int ni = 0; ni <= 1; ni++) {
        kiln_sha256_allow_ni = ni;
        for (size_t len = 0; len < sizeof(buf); len += len < 300 ? 1 : 97) {
            unsigned char ref[EVP_MAX_MD_SIZE];
            unsigned int rl = 0;
            assert_int_equal(EVP_Digest(buf, len, ref, &rl, EVP_sha256(), NULL), 1);
            char want[65];
            kiln_sha256_to_hex(ref, want);
            kiln_sha256_hex(buf, len, hex);
            assert_string_equal(hex, want);
            for (size_t chunk = 1; chunk <= 130; chunk += chunk < 8 ? 1 : 61) {
                kiln_sha256 c;
                uint8_t md[32];
                kiln_sha256_init(&c);
                for (size_t o = 0; o < len; o += chunk)
                    kiln_sha256_update(&c, buf + o, len - o < chunk ? len - o : chunk);
                kiln_sha256_final(&c, md);
                kiln_sha256_to_hex(md, hex);
                assert_string_equal(hex, want);
            }
        }
    }
    kiln_sha256_allow_ni = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_inputs),
        cmocka_unit_test(test_sha256_matches_openssl),
        cmocka_unit_test(test_first_lines),
        cmocka_unit_test(test_enospc_mapping),
        cmocka_unit_test(test_proc_capture_env_fds),
        cmocka_unit_test(test_proc_limits_and_kill),
        cmocka_unit_test(test_compile_then_cached),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_threads_compile_concurrently),
        cmocka_unit_test(test_failed_compile_leaves_nothing),
        cmocka_unit_test(test_stale_scratch_is_never_an_artifact),
        cmocka_unit_test(test_compiler_timeout),
        cmocka_unit_test(test_unwritable_cache_dir),
        cmocka_unit_test(test_missing_compiler),
        cmocka_unit_test(test_bad_imports_listed_before_tools_run),
        cmocka_unit_test(test_unsupported_and_invalid_modules),
        cmocka_unit_test(test_compile_file_errors),
        cmocka_unit_test(test_best_tier_of_a_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
