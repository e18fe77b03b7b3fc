/*
 * test_import_memory.c - imported memories the runtime provides per
 * instance (kiln_linker_define_memory), as OPA policies need for
 * env.memory: a fresh memory per instance sized by the import's limits,
 * data segments applied to it, growth up to the import's maximum (and the
 * function's memory limit), out-of-bounds traps as for own memories, the
 * memory back in the pool on free, and instances on two threads at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kiln/abi.h"
#include "support/wat.h"

static const char *import_wat =
    "(module\n"
    " (import \"env\" \"memory\" (memory 2 4))\n"
    " (data (i32.const 16) \"hi\")\n"
    " (func (export \"store\") (param i32 i32) (i32.store (local.get 0) (local.get 1)))\n"
    " (func (export \"load\") (param i32) (result i32) (i32.load (local.get 0)))\n"
    " (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    " (func (export \"size\") (result i32) (memory.size)))\n";

static kiln_module *mod;
static kiln_instance_pre *pre;

static int setup(void **state)
{
    (void)state;
    kiln_linker *l;
    if (kiln_linker_new(&l) != KILN_OK || kiln_linker_define_memory(l, "env", "memory") != KILN_OK)
        return -1;
    mod = test_load_wat(import_wat, l);
    kiln_err err;
    if (mod == NULL || kiln_instance_pre_new(mod, l, &pre, &err) != KILN_OK)
        return -1;
    kiln_linker_free(l); /* the definition is copied into pre */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kiln_instance_pre_free(pre);
    kiln_module_release(mod);
    kiln_rt_thread_cleanup();
    return 0;
}

static kiln_instance *new_inst(const kiln_limits *lim)
{
    kiln_instance *inst = NULL;
    kiln_err err;
    if (kiln_instance_new(pre, lim, NULL, &inst, &err) != KILN_OK)
        fail_msg("instantiate: %s", err.msg);
    return inst;
}

static uint32_t call1(kiln_instance *inst, const char *name, uint32_t a, int *rc, kiln_err *err)
{
    kiln_value args[1] = {{.i32 = a}}, res[1] = {{0}};
    *rc = kiln_instance_call(inst, name, NULL, args, res, err);
    return res[0].i32;
}

static uint32_t load(kiln_instance *inst, uint32_t addr)
{
    int rc;
    kiln_err err;
    uint32_t v = call1(inst, "load", addr, &rc, &err);
    if (rc != KILN_OK)
        fail_msg("load(%u): %s", addr, err.msg);
    return v;
}

static void store(kiln_instance *inst, uint32_t addr, uint32_t v)
{
    kiln_value args[2] = {{.i32 = addr}, {.i32 = v}};
    kiln_err err;
    if (kiln_instance_call(inst, "store", NULL, args, NULL, &err) != KILN_OK)
        fail_msg("store(%u): %s", addr, err.msg);
}

/* Data written by one instance is never seen by the next, nor by one alive
 * at the same time; data segments land in each instance's own memory. */
static void test_isolation(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_instance *a = new_inst(NULL), *b = new_inst(NULL);
    wasm_rt_memory_t *ma = kiln_instance_memory(a), *mb = kiln_instance_memory(b);
    assert_non_null(ma);
    assert_non_null(mb);
    assert_ptr_not_equal(ma->data, mb->data);
    assert_int_equal(ma->pages, 2);
    assert_memory_equal(ma->data + 16, "hi", 2);
    store(a, 100, 42);
    assert_int_equal(load(a, 100), 42);
    assert_int_equal(load(b, 100), 0);
    /* Host functions see it through the checked accessors. */
    uint32_t *p = kiln_guest_ptr(a, 100, 4);
    assert_non_null(p);
    assert_int_equal(*p, 42);
    assert_null(kiln_guest_ptr(a, 2 * 65536 - 3, 4));
    kiln_instance_free(a);
    kiln_instance_free(b);
    /* The pooled memory comes back zeroed but for the data segment. */
    kiln_instance *c = new_inst(NULL);
    assert_int_equal(load(c, 100), 0);
    assert_memory_equal(kiln_instance_memory(c)->data + 16, "hi", 2);
    kiln_instance_free(c);
}

/* Growth up to the import's maximum, not beyond; the function's memory
 * limit caps it further, and refuses an instance whose minimum exceeds it. */
static void test_grow_and_limits(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    int rc;
    kiln_err err;
    kiln_instance *inst = new_inst(NULL);
    assert_int_equal(call1(inst, "size", 0, &rc, &err), 2);
    assert_int_equal(call1(inst, "grow", 2, &rc, &err), 2);
    assert_int_equal(rc, KILN_OK);
    assert_int_equal(call1(inst, "size", 0, &rc, &err), 4);
    assert_int_equal(call1(inst, "grow", 1, &rc, &err), UINT32_MAX);
    store(inst, 4 * 65536 - 4, 7); /* the grown pages are usable */
    assert_int_equal(load(inst, 4 * 65536 - 4), 7);
    kiln_instance_free(inst);

    kiln_limits lim = {0};
    lim.max_memory_bytes = 3 * 65536;
    inst = new_inst(&lim);
    assert_int_equal(call1(inst, "grow", 1, &rc, &err), 2);
    assert_int_equal(call1(inst, "grow", 1, &rc, &err), UINT32_MAX);
    kiln_instance_free(inst);

    lim.max_memory_bytes = 65536; /* below the import's minimum of 2 pages */
    inst = NULL;
    rc = kiln_instance_new(pre, &lim, NULL, &inst, &err);
    assert_int_equal(rc, KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_OUT_OF_MEMORY);
    assert_null(inst);
    assert_non_null(strstr(err.msg, "limit"));
}

/* Out-of-bounds accesses trap exactly as for an own memory. */
static void test_out_of_bounds(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    int rc;
    kiln_err err;
    kiln_instance *inst = new_inst(NULL);
    assert_int_equal(load(inst, 2 * 65536 - 4), 0);
    call1(inst, "load", 2 * 65536 - 3, &rc, &err);
    assert_int_equal(rc, KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_OOB);
    call1(inst, "load", UINT32_MAX, &rc, &err);
    assert_int_equal(rc, KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_OOB);
    kiln_instance_free(inst);
}

typedef struct worker {
    uint32_t marker;
    int failures;
} worker;

static void *worker_main(void *p)
{
    worker *w = p;
    for (int i = 0; i < 200; i++) {
        kiln_instance *inst = NULL;
        kiln_err err;
        if (kiln_instance_new(pre, NULL, NULL, &inst, &err) != KILN_OK) {
            w->failures++;
            continue;
        }
        kiln_value a1[1] = {{.i32 = 1000}}, r[1] = {{0}};
        /* Each fresh instance starts empty: the other thread's writes and
         * this thread's previous instance are invisible. */
        if (kiln_instance_call(inst, "load", NULL, a1, r, &err) != KILN_OK || r[0].i32 != 0)
            w->failures++;
        kiln_value a2[2] = {{.i32 = 1000}, {.i32 = w->marker + (uint32_t)i}};
        if (kiln_instance_call(inst, "store", NULL, a2, NULL, &err) != KILN_OK)
            w->failures++;
        if (kiln_instance_call(inst, "load", NULL, a1, r, &err) != KILN_OK ||
            r[0].i32 != w->marker + (uint32_t)i)
            w->failures++;
        kiln_instance_free(inst);
    }
    kiln_rt_thread_cleanup();
    return NULL;
}

static void test_two_threads(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    worker w[2] = {{0x1000000, 0}, {0x2000000, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(w[0].failures, 0);
    assert_int_equal(w[1].failures, 0);
}

/* Without a definition the import is reported missing; a host table entry
 * of type KILN_HOSTFN_MEMORY defines it like kiln_linker_define_memory. */
static void test_linking(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_linker *l;
    kiln_instance_pre *p2 = NULL;
    kiln_err err;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    assert_int_equal(kiln_instance_pre_new(mod, l, &p2, &err), KILN_EIMPORT);
    assert_non_null(strstr(err.msg, "env.memory"));
    static const kiln_hostfn table[] = {{"env", "memory", KILN_HOSTFN_MEMORY, NULL}};
    assert_int_equal(kiln_linker_define_host(l, table, 1), KILN_OK);
    assert_int_equal(kiln_instance_pre_new(mod, l, &p2, &err), KILN_OK);
    kiln_linker_free(l);
    kiln_instance *inst = NULL;
    assert_int_equal(kiln_instance_new(p2, NULL, NULL, &inst, &err), KILN_OK);
    assert_int_equal(kiln_instance_memory(inst)->pages, 2);
    kiln_instance_free(inst);
    kiln_instance_pre_free(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_grow_and_limits),
        cmocka_unit_test(test_out_of_bounds),
        cmocka_unit_test(test_two_threads),
        cmocka_unit_test(test_linking),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
