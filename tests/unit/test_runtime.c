/*
 * test_runtime.c - the runtime through the real AOT path: traps of every
 * kind, memory limits and pooling, import linking and type checks, deadlines
 * (including deferral inside host functions), exceptions, and two versions
 * of one module loaded side by side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/abi.h"
#include "support/wat.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Instantiate `m` with no imports and the given limits. */
static kiln_instance *inst_of(kiln_module *m, const kiln_limits *lim, kiln_instance_pre **pre_out)
{
    kiln_linker *l;
    kiln_instance_pre *pre;
    kiln_instance *inst = NULL;
    kiln_err err;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    assert_int_equal(kiln_instance_pre_new(m, l, &pre, &err), KILN_OK);
    kiln_linker_free(l);
    int rc = kiln_instance_new(pre, lim, NULL, &inst, &err);
    if (rc != KILN_OK)
        fail_msg("instantiate: %s", err.msg);
    *pre_out = pre;
    return inst;
}

static const char *traps_wat =
    "(module (memory 1 4)\n"
    " (func (export \"oob\") (result i32) (i32.load (i32.const 65534)))\n"
    " (func (export \"div0\") (result i32) (i32.div_u (i32.const 1) (i32.const 0)))\n"
    " (func (export \"ovf\") (result i32) (i32.div_s (i32.const 0x80000000) (i32.const -1)))\n"
    " (func (export \"conv\") (result i32) (i32.trunc_f64_s (f64.const nan)))\n"
    " (func (export \"unreach\") unreachable)\n"
    " (type $t (func (result i64)))\n"
    " (table 1 funcref) (elem (i32.const 0) $f)\n"
    " (func $f (result i32) (i32.const 1))\n"
    " (func (export \"indirect\") (result i64) (call_indirect (type $t) (i32.const 0)))\n"
    " (func (export \"null\") (result i64) (call_indirect (type $t) (i32.const 5)))\n"
    " (func $r (export \"rec\") (result i32) (i32.add (call $r) (i32.const 1)))\n"
    " (func (export \"spin\") (loop (br 0)))\n"
    " (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    " (func (export \"size\") (result i32) (memory.size))\n"
    " (func (export \"peek\") (param i32) (result i32) (i32.load (local.get 0)))\n"
    " (func (export \"poke\") (param i32 i32) (i32.store (local.get 0) (local.get 1))))\n";

static void expect_trap(kiln_instance *inst, const char *name, int kind)
{
    kiln_value r[1];
    kiln_err err;
    int rc = kiln_instance_call(inst, name, NULL, NULL, r, &err);
    assert_int_equal(rc, KILN_ETRAP);
    assert_int_equal(err.trap, kind);
    /* The message names the module, the export and the trap. */
    assert_non_null(strstr(err.msg, "m.wasm"));
    assert_non_null(strstr(err.msg, name));
    assert_non_null(strstr(err.msg, kiln_trap_name(kind)));
}

static void test_every_trap_kind(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_module *m = test_load_wat(traps_wat, NULL);
    assert_non_null(m);
    kiln_instance_pre *pre;
    kiln_limits lim = {.timeout_ms = 100};
    kiln_instance *inst = inst_of(m, &lim, &pre);
    expect_trap(inst, "oob", KILN_TRAP_OOB);
    expect_trap(inst, "div0", KILN_TRAP_DIV_BY_ZERO);
    expect_trap(inst, "ovf", KILN_TRAP_INT_OVERFLOW);
    expect_trap(inst, "conv", KILN_TRAP_INVALID_CONVERSION);
    expect_trap(inst, "unreach", KILN_TRAP_UNREACHABLE);
    expect_trap(inst, "indirect", KILN_TRAP_CALL_INDIRECT);
    expect_trap(inst, "null", KILN_TRAP_CALL_INDIRECT);
    expect_trap(inst, "rec", KILN_TRAP_EXHAUSTION);
    /* The instance survives traps (not timeouts): still usable. */
    kiln_value a[2] = {{.i32 = 8}, {.i32 = 42}}, r[1];
    kiln_err err;
    assert_int_equal(kiln_instance_call(inst, "poke", "ii>", a, r, &err), KILN_OK);
    assert_int_equal(kiln_instance_call(inst, "peek", "i>i", a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 42);
    uint64_t t0 = now_ms();
    expect_trap(inst, "spin", KILN_TRAP_TIMEOUT);
    uint64_t took = now_ms() - t0;
    assert_true(took >= 100 && took < 1000);
    assert_int_equal(kiln_instance_call(inst, "peek", "i>i", a, r, &err), KILN_ETIMEOUT);
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
}

static void test_memory_limits_and_pool(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_module *m = test_load_wat(traps_wat, NULL);
    assert_non_null(m);
    kiln_instance_pre *pre;
    kiln_limits lim = {.max_memory_bytes = 2 * 65536};
    kiln_instance *inst = inst_of(m, &lim, &pre);
    kiln_value a[2], r[1];
    kiln_err err;
    a[0].i32 = 1;
    assert_int_equal(kiln_instance_call(inst, "grow", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 1); /* 1 -> 2 pages: within the 128 KiB limit */
    assert_int_equal(kiln_instance_call(inst, "grow", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, UINT32_MAX); /* over the limit: -1, no crash */
    /* Write into the grown page, then free: the pooled memory must come back zeroed. */
    a[0].i32 = 65536 + 16;
    a[1].i32 = 0xdeadbeef;
    assert_int_equal(kiln_instance_call(inst, "poke", NULL, a, r, &err), KILN_OK);
    kiln_instance_free(inst);
    kiln_rt_stats s0, s1;
    kiln_rt_stats_get(&s0);
    assert_int_equal(kiln_instance_new(pre, &lim, NULL, &inst, &err), KILN_OK);
    kiln_rt_stats_get(&s1);
    assert_int_equal(s1.pool_hits, s0.pool_hits + 1);
    assert_int_equal(kiln_instance_call(inst, "size", NULL, NULL, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 1);
    a[0].i32 = 16;
    assert_int_equal(kiln_instance_call(inst, "peek", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 0);
    /* The page that was accessible before must fault again (protection restored). */
    a[0].i32 = 65536 + 16;
    assert_int_equal(kiln_instance_call(inst, "peek", NULL, a, r, &err), KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_OOB);
    a[0].i32 = 1;
    assert_int_equal(kiln_instance_call(inst, "grow", NULL, a, r, &err), KILN_OK);
    a[0].i32 = 65536 + 16;
    assert_int_equal(kiln_instance_call(inst, "peek", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 0); /* the previous instance's 0xdeadbeef is gone */
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
}

/* After a burst (more instances at once than the pool keeps resident),
 * the pool is long; the memories released after it must still be kept
 * resident (zeroed) up to the bound, not discarded one by one (an madvise
 * and its TLB shootdown per release, then page faults on the next use). */
static void test_pool_resident_after_burst(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_module *m = test_load_wat(traps_wat, NULL);
    assert_non_null(m);
    kiln_instance_pre *pre;
    kiln_instance *first = inst_of(m, NULL, &pre);
    enum { BURST = 300 }; /* > RT_POOL_HOT */
    kiln_instance *burst[BURST];
    kiln_err err;
    burst[0] = first;
    for (int i = 1; i < BURST; i++)
        assert_int_equal(kiln_instance_new(pre, NULL, NULL, &burst[i], &err), KILN_OK);
    for (int i = 0; i < BURST; i++)
        kiln_instance_free(burst[i]);
    kiln_rt_stats s0, s1;
    kiln_rt_stats_get(&s0);
    assert_true(s0.pool_resident <= 256); /* the bound holds */
    assert_true(s0.pool_resident >= 200);
    /* Steady state after the burst: every release stays resident. */
    kiln_value a[1], r[1];
    for (int i = 0; i < 50; i++) {
        kiln_instance *x;
        assert_int_equal(kiln_instance_new(pre, NULL, NULL, &x, &err), KILN_OK);
        a[0].i32 = 16;
        assert_int_equal(kiln_instance_call(x, "peek", NULL, a, r, &err), KILN_OK);
        assert_int_equal(r[0].i32, 0); /* and zeroed */
        kiln_instance_free(x);
    }
    kiln_rt_stats_get(&s1);
    assert_int_equal(s1.pool_discards, s0.pool_discards);
    assert_int_equal(s1.pool_resident, s0.pool_resident);
    /* Trimming gives the pages back and counts them. */
    kiln_rt_trim_pools(4);
    kiln_rt_stats_get(&s1);
    assert_int_equal(s1.pool_resident, 4);
    assert_true(s1.pool_discards > s0.pool_discards);
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
}

static void test_initial_memory_over_limit(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_module *m = test_load_wat("(module (memory 100))", NULL);
    assert_non_null(m);
    kiln_linker *l;
    kiln_instance_pre *pre;
    kiln_instance *inst;
    kiln_err err;
    kiln_linker_new(&l);
    assert_int_equal(kiln_instance_pre_new(m, l, &pre, &err), KILN_OK);
    kiln_limits lim = {.max_memory_bytes = 1 << 20};
    assert_int_equal(kiln_instance_new(pre, &lim, NULL, &inst, &err), KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_OUT_OF_MEMORY);
    assert_non_null(strstr(err.msg, "100 pages"));
    assert_non_null(strstr(err.msg, "memory limit"));
    kiln_instance_pre_free(pre);
    kiln_linker_free(l);
}

/* ---- host functions ---- */

static uint32_t host_twice(kiln_instance *inst, uint32_t x)
{
    (void)inst;
    return x * 2;
}

static void host_slow(kiln_instance *inst)
{
    kiln_host_enter(inst);
    usleep(5000); /* a deadline firing here must not unwind host code */
    kiln_host_leave(inst);
}

static uint32_t host_sum(kiln_instance *inst, uint32_t ptr, uint32_t len)
{
    uint8_t *p = kiln_guest_ptr(inst, ptr, len);
    if (p == NULL)
        kiln_host_trap(inst, KILN_TRAP_OOB, "sum: range %u+%u outside memory", ptr, len);
    uint32_t s = 0;
    for (uint32_t i = 0; i < len; i++)
        s += p[i];
    return s;
}

static const kiln_hostfn host_fns[] = {
    {"host", "twice", "i>i", (void (*)(void))host_twice},
    {"host", "slow", ">", (void (*)(void))host_slow},
    {"host", "sum", "ii>i", (void (*)(void))host_sum},
};

static const char *host_wat =
    "(module (import \"host\" \"twice\" (func $t (param i32) (result i32)))\n"
    " (import \"host\" \"slow\" (func $s))\n"
    " (import \"host\" \"sum\" (func $sum (param i32 i32) (result i32)))\n"
    " (memory 1) (data (i32.const 0) \"\\01\\02\\03\")\n"
    " (table 1 funcref) (elem (i32.const 0) $t)\n"
    " (type $ti (func (param i32) (result i32)))\n"
    " (func (export \"direct\") (param i32) (result i32) (call $t (local.get 0)))\n"
    " (func (export \"table\") (param i32) (result i32) (call_indirect (type $ti) (local.get 0) (i32.const 0)))\n"
    " (func (export \"sum\") (param i32 i32) (result i32) (call $sum (local.get 0) (local.get 1)))\n"
    " (func (export \"slowloop\") (loop (call $s) (br 0))))\n";

static void test_host_functions(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_linker *l;
    kiln_linker_new(&l);
    kiln_linker_define_host(l, host_fns, 3);
    kiln_module *m = test_load_wat(host_wat, l);
    assert_non_null(m);
    kiln_instance_pre *pre;
    kiln_instance *inst;
    kiln_err err;
    assert_int_equal(kiln_instance_pre_new(m, l, &pre, &err), KILN_OK);
    kiln_limits lim = {.timeout_ms = 12};
    assert_int_equal(kiln_instance_new(pre, &lim, NULL, &inst, &err), KILN_OK);
    kiln_value a[2] = {{.i32 = 21}}, r[1];
    assert_int_equal(kiln_instance_call(inst, "direct", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 42);
    /* Through a table, wasm2c passes a different context pointer: same result. */
    assert_int_equal(kiln_instance_call(inst, "table", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 42);
    a[0].i32 = 0;
    a[1].i32 = 3;
    assert_int_equal(kiln_instance_call(inst, "sum", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 6);
    a[0].i32 = 65535;
    a[1].i32 = 0xffffffff; /* overflowing range: checked, trap with the host's message */
    assert_int_equal(kiln_instance_call(inst, "sum", NULL, a, r, &err), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "outside memory"));
    /* Deadline inside a host call: the guest unwinds only after the host returns. */
    uint64_t t0 = now_ms();
    assert_int_equal(kiln_instance_call(inst, "slowloop", NULL, NULL, r, &err), KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_TIMEOUT);
    assert_true(now_ms() - t0 >= 12 && now_ms() - t0 < 500);
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
    kiln_linker_free(l);
}

static void test_import_errors(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_linker *l;
    kiln_linker_new(&l);
    kiln_linker_define_host(l, host_fns, 3);
    /* Checked before compiling: every missing or mistyped import is listed. */
    kiln_err err;
    char *path = test_wat2wasm("(module (import \"host\" \"twice\" (func (param f64) (result f64)))\n"
                               " (import \"nope\" \"a\" (func)) (import \"nope\" \"b\" (func)))", "");
    assert_non_null(path);
    kiln_aot_options o = {0};
    o.opt_level = 0;
    o.imports = l;
    kiln_aot_result res;
    assert_int_equal(kiln_aot_compile_file(path, &o, &res, &err), KILN_EIMPORT);
    assert_non_null(strstr(err.msg, "host.twice"));
    assert_non_null(strstr(err.msg, "d>d"));
    assert_non_null(strstr(err.msg, "nope.a"));
    assert_non_null(strstr(err.msg, "nope.b"));
    test_wat_cleanup(path);
    /* At link time too (a module compiled without the check). */
    kiln_module *m = test_load_wat("(module (import \"nope\" \"x\" (func)))", NULL);
    assert_non_null(m);
    kiln_instance_pre *pre;
    assert_int_equal(kiln_instance_pre_new(m, l, &pre, &err), KILN_EIMPORT);
    assert_non_null(strstr(err.msg, "nope.x"));
    kiln_linker_free(l);
}

static void test_two_versions_side_by_side(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_module *v1 = test_load_wat("(module (func (export \"v\") (result i32) (i32.const 1)))", NULL);
    kiln_module *v2 = test_load_wat("(module (func (export \"v\") (result i32) (i32.const 2)))", NULL);
    assert_non_null(v1);
    assert_non_null(v2);
    kiln_instance_pre *p1, *p2;
    kiln_instance *i1 = inst_of(v1, NULL, &p1), *i2 = inst_of(v2, NULL, &p2);
    kiln_value r[1];
    kiln_err err;
    assert_int_equal(kiln_instance_call(i1, "v", ">i", NULL, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 1);
    assert_int_equal(kiln_instance_call(i2, "v", ">i", NULL, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 2);
    assert_int_equal(kiln_instance_call(i2, "v", ">j", NULL, r, &err), KILN_ETYPE);
    assert_int_equal(kiln_instance_call(i2, "w", NULL, NULL, r, &err), KILN_ENOEXPORT);
    kiln_instance_free(i1);
    kiln_instance_free(i2);
    kiln_instance_pre_free(p1);
    kiln_instance_pre_free(p2);
}

static void test_exceptions_and_start(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_module *m = test_load_wat(
        "(module (tag $e (param i32)) (global $g (mut i32) (i32.const 0))\n"
        " (func $start (global.set $g (i32.const 7))) (start $start)\n"
        " (func (export \"g\") (result i32) (global.get $g))\n"
        " (func (export \"throw\") (throw $e (i32.const 3)))\n"
        " (func (export \"catch\") (result i32) (try (result i32) (do (throw $e (i32.const 9)))\n"
        "   (catch $e))))", NULL);
    assert_non_null(m);
    kiln_instance_pre *pre;
    kiln_instance *inst = inst_of(m, NULL, &pre);
    kiln_value r[1];
    kiln_err err;
    assert_int_equal(kiln_instance_call(inst, "g", NULL, NULL, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 7);
    assert_int_equal(kiln_instance_call(inst, "catch", NULL, NULL, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 9);
    assert_int_equal(kiln_instance_call(inst, "throw", NULL, NULL, r, &err), KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_UNCAUGHT_EXCEPTION);
    /* A stale unwind target must not survive into the next call. */
    assert_int_equal(kiln_instance_call(inst, "catch", NULL, NULL, r, &err), KILN_OK);
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
    /* A start function that traps fails instantiation cleanly. */
    kiln_module *bad = test_load_wat("(module (memory 1) (func $s unreachable) (start $s))", NULL);
    assert_non_null(bad);
    kiln_linker *l;
    kiln_linker_new(&l);
    assert_int_equal(kiln_instance_pre_new(bad, l, &pre, &err), KILN_OK);
    kiln_instance *x;
    kiln_rt_stats s0, s1;
    kiln_rt_stats_get(&s0);
    assert_int_equal(kiln_instance_new(pre, NULL, NULL, &x, &err), KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_UNREACHABLE);
    kiln_rt_stats_get(&s1);
    assert_int_equal(s1.memories_reserved, s0.memories_reserved); /* memory went back */
    kiln_instance_pre_free(pre);
    kiln_linker_free(l);
}

/* A failed instantiation that already stored a function in an imported
 * table: the function stays callable (spec) and its instance stays alive. */
static void test_failed_instantiation_keeps_table_functions(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_module *ma = test_load_wat(
        "(module (type $t (func (result i32))) (table (export \"tab\") 10 funcref)\n"
        " (func (export \"call\") (param i32) (result i32)\n"
        "   (call_indirect (type $t) (local.get 0))))", NULL);
    kiln_module *mb = test_load_wat(
        "(module (import \"a\" \"tab\" (table 10 funcref))\n"
        " (global $g (mut i32) (i32.const 42)) (memory 1)\n"
        " (func $f (result i32) (global.get $g))\n"
        " (elem (i32.const 7) $f)\n"
        " (elem (i32.const 8) $f $f $f $f $f))", NULL);
    assert_non_null(ma);
    assert_non_null(mb);
    kiln_instance_pre *pa, *pb;
    kiln_instance *a = inst_of(ma, NULL, &pa), *b;
    kiln_linker *l;
    kiln_err err;
    kiln_linker_new(&l);
    kiln_linker_define_instance(l, "a", a);
    assert_int_equal(kiln_instance_pre_new(mb, l, &pb, &err), KILN_OK);
    assert_int_equal(kiln_instance_new(pb, NULL, NULL, &b, &err), KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_OOB);
    /* Were the instance freed, these allocations would reuse and scribble
     * over it, and the call below would read 0x5a5a5a5a instead of 42. */
    void *junk[256];
    for (int i = 0; i < 256; i++) {
        junk[i] = malloc((size_t)(i % 64 + 1) * 16);
        memset(junk[i], 0x5a, (size_t)(i % 64 + 1) * 16);
    }
    kiln_value arg = {.i32 = 7}, r[1];
    assert_int_equal(kiln_instance_call(a, "call", NULL, &arg, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 42);
    for (int i = 0; i < 256; i++)
        free(junk[i]);
    kiln_linker_free(l);
}

/* wasm2c 1.0.32 copies export names into C comments: a name containing
 * "* /" (or "*" + backslash-newline + "/", or the "??/" trigraph) would inject
 * C that runs inside Kiln at dlopen. Kiln rewrites every name before wasm2c:
 * the module must compile, the injected constructor must never run, and the
 * export must still be callable by its exact original name. */
static void test_name_injection_is_neutralised(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    const char *marker = "/tmp/kp";
    unlink(marker);
    const char *inject =
        "*/ extern int creat(const char *, unsigned); static const char kp[] = "
        "{47,116,109,112,47,107,112,0}; __attribute__((constructor)) static void "
        "kiln_pwn(void) { creat(kp, 384); } /*";
    char wat[2048];
    snprintf(wat, sizeof(wat),
             "(module (func $f (result i32) (i32.const 7))\n"
             " (export \"%s\" (func $f))\n"
             " (export \"*\\\\\\n/ int x; /*\" (func $f))\n"
             " (export \"*?\?/\\n/ int y; /*\" (func $f)))", inject);
    kiln_module *m = test_load_wat(wat, NULL);
    assert_non_null(m);
    assert_int_equal(access(marker, F_OK), -1); /* the constructor never ran */
    kiln_instance_pre *pre;
    kiln_instance *inst = inst_of(m, NULL, &pre);
    kiln_value r[1];
    kiln_err err;
    assert_int_equal(kiln_instance_call(inst, inject, ">i", NULL, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 7);
    assert_int_equal(kiln_instance_call(inst, "*\\\n/ int x; /*", ">i", NULL, r, &err), KILN_OK);
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_trap_kind),
        cmocka_unit_test(test_memory_limits_and_pool),
        cmocka_unit_test(test_pool_resident_after_burst),
        cmocka_unit_test(test_initial_memory_over_limit),
        cmocka_unit_test(test_host_functions),
        cmocka_unit_test(test_import_errors),
        cmocka_unit_test(test_two_versions_side_by_side),
        cmocka_unit_test(test_exceptions_and_start),
        cmocka_unit_test(test_failed_instantiation_keeps_table_functions),
        cmocka_unit_test(test_name_injection_is_neutralised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
