/*
 * test_snapshot.c - snapshot images (runtime.h "snapshots") and the reset of
 * pooled memories: an instance from a snapshot answers exactly like the
 * initialised instance it was captured from; no instance ever sees another's
 * writes (same thread, other thread, after memory.grow, image slots and
 * plain slots alike); init that traps, times out or calls a host function
 * outside the allow-list is refused with a message saying so.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/abi.h"
#include "platform/vmem.h"
#include "support/wat.h"

static uint32_t host_twice(kiln_instance *inst, uint32_t x)
{
    (void)inst;
    return 2 * x;
}

static int forbidden_calls;
static void host_forbidden(kiln_instance *inst)
{
    (void)inst;
    forbidden_calls++;
}

static const kiln_hostfn host_fns[] = {
    {"host", "twice", "i>i", (void (*)(void))host_twice},
    {"host", "forbidden", ">", (void (*)(void))host_forbidden},
};

/*
 * An "expensive" init (fills 4,000 bytes, grows memory, sets globals and a
 * table slot, calls an allowed host function) and handlers that read it.
 * Memory: 2 pages, data "abc" at 16; init grows to 3 pages and writes a
 * marker into the new page.
 */
static const char *guest_wat =
    "(module (import \"host\" \"twice\" (func $twice (param i32) (result i32)))\n"
    " (import \"host\" \"forbidden\" (func $forbidden))\n"
    " (memory 2 100)\n"
    " (global $counter (mut i32) (i32.const 0))\n"
    " (global $ready (mut i32) (i32.const 0))\n"
    " (global $big (mut i64) (i64.const 0))\n"
    " (table 4 funcref) (elem (i32.const 0) $inc $twice)\n"
    " (elem declare func $triple)\n"
    " (data (i32.const 16) \"abc\")\n"
    " (type $ti (func (param i32) (result i32)))\n"
    " (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))\n"
    " (func $triple (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))\n"
    " (func $start (global.set $counter (i32.const 5)))\n"
    " (start $start)\n"
    " (func (export \"init\") (local $i i32)\n"
    "  (loop $l (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))\n"
    "             (i32.mul (local.get $i) (i32.const 3)))\n"
    "   (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "   (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))\n"
    "  (drop (memory.grow (i32.const 1)))\n"
    "  (i32.store (i32.const 131076) (i32.const 77))\n"
    "  (table.set 0 (i32.const 2) (ref.func $triple))\n"
    "  (global.set $ready (call $twice (i32.const 21)))\n"
    "  (global.set $big (i64.const 0x123456789abc))\n"
    "  (global.set $counter (i32.add (global.get $counter) (i32.const 1))))\n"
    " (func (export \"init_forbidden\") (call $forbidden))\n"
    " (func (export \"init_trap\") unreachable)\n"
    " (func (export \"init_spin\") (loop (br 0)))\n"
    /* sum: everything init produced, in one number */
    " (func (export \"sum\") (result i32) (local $i i32) (local $s i32)\n"
    "  (loop $l (local.set $s (i32.add (local.get $s)\n"
    "             (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2))))))\n"
    "   (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "   (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))\n"
    "  (i32.add (local.get $s) (i32.add (i32.mul (global.get $counter) (i32.const 1000000))\n"
    "   (i32.add (i32.mul (global.get $ready) (i32.const 10000000))\n"
    "    (i32.add (i32.load (i32.const 131076)) (i32.add (i32.load8_u (i32.const 17))\n"
    "     (i32.add (i32.wrap_i64 (global.get $big)) (i32.mul (memory.size) (i32.const 100000000)))))))))\n"
    " (func (export \"calls\") (param i32) (result i32)\n"
    "  (i32.add (call_indirect (type $ti) (local.get 0) (i32.const 0))\n"
    "   (i32.add (call_indirect (type $ti) (local.get 0) (i32.const 1))\n"
    "    (call_indirect (type $ti) (local.get 0) (i32.const 2)))))\n"
    /* scribble: 0xAB over all memory, then grow by 2 pages and scribble them;
     * also change every global */
    " (func (export \"scribble\") (local $i i32)\n"
    "  (drop (memory.grow (i32.const 2)))\n"
    "  (memory.fill (i32.const 0) (i32.const 0xAB) (i32.mul (memory.size) (i32.const 65536)))\n"
    "  (global.set $counter (i32.const -1)) (global.set $ready (i32.const -1))\n"
    "  (global.set $big (i64.const -1)))\n"
    /* nonzero(from): bytes != 0 from `from` to the end of memory */
    " (func (export \"nonzero\") (param $a i32) (result i32) (local $n i32) (local $end i32)\n"
    "  (local.set $end (i32.mul (memory.size) (i32.const 65536)))\n"
    "  (block $done (loop $l (br_if $done (i32.ge_u (local.get $a) (local.get $end)))\n"
    "   (if (i32.load8_u (local.get $a)) (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))\n"
    "   (local.set $a (i32.add (local.get $a) (i32.const 1))) (br $l)))\n"
    "  (local.get $n))\n"
    " (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    " (func (export \"size\") (result i32) (memory.size)))\n";

typedef struct fixture {
    kiln_linker *l;
    kiln_module *m;
    kiln_instance_pre *pre;
} fixture;

static void fixture_init(fixture *f)
{
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    kiln_err err;
    assert_int_equal(kiln_linker_new(&f->l), KILN_OK);
    assert_int_equal(kiln_linker_define_host(f->l, host_fns, 2), KILN_OK);
    f->m = test_load_wat(guest_wat, f->l);
    assert_non_null(f->m);
    assert_int_equal(kiln_instance_pre_new(f->m, f->l, &f->pre, &err), KILN_OK);
}

static void fixture_fini(fixture *f)
{
    kiln_instance_pre_free(f->pre);
    kiln_module_release(f->m);
    kiln_linker_free(f->l);
}

static const char *const allow_twice[] = {"host.twice"};

static kiln_snapshot *build(fixture *f)
{
    kiln_err err;
    kiln_snapshot *s = NULL;
    const char *inits[] = {"init"};
    kiln_limits lim = {.timeout_ms = 5000};
    int rc = kiln_snapshot_build(f->pre, &lim, NULL, inits, 1, allow_twice, 1, &s, &err);
    if (rc != KILN_OK)
        fail_msg("snapshot: %s", err.msg);
    return s;
}

static uint32_t call_i(kiln_instance *inst, const char *name, uint32_t arg)
{
    kiln_err err;
    kiln_value a = {.i32 = arg}, r = {0};
    int rc = kiln_instance_call(inst, name, NULL, &a, &r, &err);
    if (rc != KILN_OK)
        fail_msg("%s: %s", name, err.msg);
    return r.i32;
}

static void call_v(kiln_instance *inst, const char *name)
{
    kiln_err err;
    int rc = kiln_instance_call(inst, name, NULL, NULL, NULL, &err);
    if (rc != KILN_OK)
        fail_msg("%s: %s", name, err.msg);
}

/* The answers of an initialised instance, by the slow path. */
static void expected(fixture *f, uint32_t *sum, uint32_t *calls)
{
    kiln_err err;
    kiln_instance *inst;
    assert_int_equal(kiln_instance_new(f->pre, NULL, NULL, &inst, &err), KILN_OK);
    call_v(inst, "init");
    *sum = call_i(inst, "sum", 0);
    *calls = call_i(inst, "calls", 10);
    kiln_instance_free(inst);
}

static void test_same_answers(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    uint32_t sum, calls;
    expected(&f, &sum, &calls);
    assert_int_equal(calls, 11 + 20 + 30); /* inc, host twice, triple (set by init) */
    kiln_snapshot *s = build(&f);
    kiln_snapshot_info info;
    kiln_snapshot_info_get(s, &info);
    assert_int_equal(info.n_memories, 1);
    assert_int_equal(info.memory_bytes, 3 * 65536);
    assert_int_equal(info.n_tables, 1);
    assert_int_equal(info.table_elems, 4);
    /* Only up to the last non-zero page is stored: the marker in page 3. */
    assert_true(info.image_bytes == 131072 + 4096);
    for (int i = 0; i < 50; i++) {
        kiln_err err;
        kiln_instance *inst;
        assert_int_equal(kiln_instance_new_from_snapshot(s, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "sum", 0), sum);
        assert_int_equal(call_i(inst, "calls", 10), calls);
        assert_int_equal(call_i(inst, "size", 0), 3);
        /* Nothing but the image: bytes past the marker are zero. */
        assert_int_equal(call_i(inst, "nonzero", 131080), 0);
        kiln_instance_free(inst);
    }
    kiln_snapshot_free(s);
    fixture_fini(&f);
}

/* One request scribbles over everything, grows and changes every global;
 * the next (same image slot) must start exactly from the image. */
static void scribble_then_check(fixture *f, kiln_snapshot *s, uint32_t sum)
{
    kiln_err err;
    kiln_instance *inst;
    for (int round = 0; round < 20; round++) {
        assert_int_equal(kiln_instance_new_from_snapshot(s, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "sum", 0), sum);
        call_v(inst, "scribble");
        assert_int_equal(call_i(inst, "size", 0), 5);
        kiln_instance_free(inst);
        assert_int_equal(kiln_instance_new_from_snapshot(s, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "size", 0), 3);
        assert_int_equal(call_i(inst, "sum", 0), sum);
        assert_int_equal(call_i(inst, "nonzero", 131080), 0);
        /* Growing again shows zero pages, not the scribble. */
        assert_int_equal(call_i(inst, "grow", 2), 3);
        assert_int_equal(call_i(inst, "nonzero", 131080), 0);
        kiln_instance_free(inst);
        /* A plain instance of the module after an image slot: only its data. */
        assert_int_equal(kiln_instance_new(f->pre, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "nonzero", 32), 0);
        assert_int_equal(call_i(inst, "nonzero", 0), 3);
        kiln_instance_free(inst);
    }
}

static void test_isolation_same_thread(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    uint32_t sum, calls;
    expected(&f, &sum, &calls);
    kiln_snapshot *s = build(&f);
    scribble_then_check(&f, s, sum);
    kiln_snapshot_free(s);
    fixture_fini(&f);
}

typedef struct thread_arg {
    fixture *f;
    kiln_snapshot *s;
    uint32_t sum;
} thread_arg;

static void *thread_body(void *p)
{
    thread_arg *a = p;
    scribble_then_check(a->f, a->s, a->sum);
    kiln_rt_thread_cleanup();
    return NULL;
}

static void test_isolation_other_threads(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    uint32_t sum, calls;
    expected(&f, &sum, &calls);
    kiln_snapshot *s = build(&f);
    thread_arg a = {&f, s, sum};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_body, &a), 0);
    scribble_then_check(&f, s, sum); /* and this thread at the same time */
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    kiln_snapshot_free(s);
    fixture_fini(&f);
}

static void test_init_refused(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    kiln_err err;
    kiln_snapshot *s = NULL;
    kiln_limits lim = {.timeout_ms = 50};
    /* A host call outside the allow-list: refused, named, never run. */
    const char *bad[] = {"init_forbidden"};
    forbidden_calls = 0;
    assert_int_equal(kiln_snapshot_build(f.pre, &lim, NULL, bad, 1, allow_twice, 1, &s, &err),
                     KILN_ETRAP);
    assert_null(s);
    assert_int_equal(forbidden_calls, 0);
    assert_non_null(strstr(err.msg, "host.forbidden"));
    assert_non_null(strstr(err.msg, "snapshot"));
    assert_non_null(strstr(err.msg, "init_forbidden"));
    /* Nothing allowed: even the allowed-elsewhere call is refused. */
    const char *init[] = {"init"};
    assert_int_equal(kiln_snapshot_build(f.pre, &lim, NULL, init, 1, NULL, 0, &s, &err), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "host.twice"));
    /* "module.*" allows a whole module. */
    const char *const star[] = {"host.*"};
    assert_int_equal(kiln_snapshot_build(f.pre, &lim, NULL, bad, 1, star, 1, &s, &err), KILN_OK);
    assert_int_equal(forbidden_calls, 1);
    kiln_snapshot_free(s);
    /* A trap in init. */
    const char *trap[] = {"init_trap"};
    assert_int_equal(kiln_snapshot_build(f.pre, &lim, NULL, trap, 1, NULL, 0, &s, &err), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "init_trap"));
    assert_non_null(strstr(err.msg, "unreachable"));
    /* A timeout in init. */
    const char *spin[] = {"init_spin"};
    assert_int_equal(kiln_snapshot_build(f.pre, &lim, NULL, spin, 1, NULL, 0, &s, &err), KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_TIMEOUT);
    assert_non_null(strstr(err.msg, "init_spin"));
    /* A missing init export. */
    const char *none[] = {"nope"};
    assert_int_equal(kiln_snapshot_build(f.pre, &lim, NULL, none, 1, NULL, 0, &s, &err),
                     KILN_ENOEXPORT);
    assert_non_null(strstr(err.msg, "nope"));
    fixture_fini(&f);
}

/* An imported memory the runtime provides per instance (OPA's env.memory,
 * kiln_linker_define_memory) is captured and restored like an own one: the
 * struct's pointer to it is rebased, each instance gets its own copy, in
 * memory and from disk. */
static void test_imported_memory(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_linker *l;
    kiln_err err;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    assert_int_equal(kiln_linker_define_memory(l, "env", "memory"), KILN_OK);
    kiln_module *m = test_load_wat(
        "(module (import \"env\" \"memory\" (memory 2 40))\n"
        " (global $g (mut i32) (i32.const 0))\n"
        " (data (i32.const 8) \"xyz\")\n"
        " (func (export \"init\") (drop (memory.grow (i32.const 1)))\n"
        "  (memory.fill (i32.const 4096) (i32.const 7) (i32.const 150000)) (global.set $g (i32.const 42)))\n"
        " (func (export \"sum\") (result i32) (local $a i32) (local $s i32)\n"
        "  (loop $l (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $a))))\n"
        "   (local.set $a (i32.add (local.get $a) (i32.const 1)))\n"
        "   (br_if $l (i32.lt_u (local.get $a) (i32.mul (memory.size) (i32.const 65536)))))\n"
        "  (i32.add (local.get $s) (i32.add (global.get $g) (i32.mul (memory.size) (i32.const 1000000)))))\n"
        " (func (export \"scribble\") (drop (memory.grow (i32.const 2)))\n"
        "  (memory.fill (i32.const 0) (i32.const 0xAB) (i32.mul (memory.size) (i32.const 65536)))\n"
        "  (global.set $g (i32.const -1))))\n", l);
    assert_non_null(m);
    kiln_instance_pre *pre;
    assert_int_equal(kiln_instance_pre_new(m, l, &pre, &err), KILN_OK);
    kiln_instance *inst;
    assert_int_equal(kiln_instance_new(pre, NULL, NULL, &inst, &err), KILN_OK);
    call_v(inst, "init");
    uint32_t sum = call_i(inst, "sum", 0);
    kiln_instance_free(inst);
    assert_int_equal(sum, 'x' + 'y' + 'z' + 7 * 150000 + 42 + 3000000);
    kiln_snapshot *s = NULL;
    const char *inits[] = {"init"};
    if (kiln_snapshot_build(pre, NULL, NULL, inits, 1, NULL, 0, &s, &err) != KILN_OK)
        fail_msg("snapshot: %s", err.msg);
    kiln_snapshot_info info;
    kiln_snapshot_info_get(s, &info);
    assert_int_equal(info.n_memories, 1);
    assert_int_equal(info.memory_bytes, 3 * 65536);
    char path[] = "/tmp/kiln-snap-imem-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(kiln_snapshot_save(s, path, "imem", "test", &err), KILN_OK);
    kiln_snapshot *d = NULL;
    assert_int_equal(kiln_snapshot_load(pre, path, "imem", &d, &err), KILN_OK);
    unlink(path);
    for (int round = 0; round < 20; round++) {
        kiln_snapshot *use = round % 2 ? d : s;
        assert_int_equal(kiln_instance_new_from_snapshot(use, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "sum", 0), sum);
        call_v(inst, "scribble");
        kiln_instance_free(inst);
        assert_int_equal(kiln_instance_new_from_snapshot(use, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "sum", 0), sum);
        kiln_instance_free(inst);
    }
    kiln_snapshot_free(d);
    kiln_snapshot_free(s);
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
    kiln_linker_free(l);
}

/* Plain pooled memories larger than the memset-everything size are reset
 * page by page (resident pages only): scattered writes, a grow, reads that
 * map the zero page; the next instance must see zeros everywhere. */
/* One size of test_plain_pool_reset: a memory of `pages` pages. */
static void pool_reset_rounds(uint32_t pages)
{
    char wat[1400];
    snprintf(wat, sizeof(wat),
        "(module (memory %u 200)\n"
        " (func (export \"poke\") (param $step i32) (local $a i32)\n"
        "  (loop $l (i32.store8 (local.get $a) (i32.const 0x5a))\n"
        "   (local.set $a (i32.add (local.get $a) (local.get $step)))\n"
        "   (br_if $l (i32.lt_u (local.get $a) (i32.mul (memory.size) (i32.const 65536))))))\n"
        " (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
        " (func (export \"nonzero\") (result i32) (local $a i32) (local $n i32)\n"
        "  (loop $l (if (i32.load8_u (local.get $a)) (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))\n"
        "   (local.set $a (i32.add (local.get $a) (i32.const 1)))\n"
        "   (br_if $l (i32.lt_u (local.get $a) (i32.mul (memory.size) (i32.const 65536)))))\n"
        "  (local.get $n)))\n", (unsigned)pages);
    kiln_module *m = test_load_wat(wat, NULL);
    assert_non_null(m);
    kiln_linker *l;
    kiln_instance_pre *pre;
    kiln_err err;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    assert_int_equal(kiln_instance_pre_new(m, l, &pre, &err), KILN_OK);
    uint32_t steps[] = {4096 * 7 + 3, 65536 * 3 + 11, 1, 4096 * 33 + 100};
    for (int round = 0; round < 8; round++) {
        kiln_instance *inst;
        assert_int_equal(kiln_instance_new(pre, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "nonzero", 0), 0);
        if (round % 2 == 1)
            assert_int_equal(call_i(inst, "grow", 5), pages);
        call_i(inst, "poke", steps[round % 4]);
        kiln_instance_free(inst);
        assert_int_equal(kiln_instance_new(pre, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "nonzero", 0), 0);
        assert_int_equal(call_i(inst, "grow", 5), pages);
        assert_int_equal(call_i(inst, "nonzero", 0), 0);
        kiln_instance_free(inst);
    }
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
    kiln_linker_free(l);
}

/* Every size is reset by zeroing only the resident pages (rt_mem.c
 * zero_touched): a 40-page memory and a 2-page one (128 KiB, which grows
 * to 448 KiB and shrinks back as slots are reused). */
static void test_plain_pool_reset(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    pool_reset_rounds(40);
    pool_reset_rounds(2);
}

/*
 * Write-tracked image slots (rt_mem.c slot_fill, snapshot.md §2b): a
 * 1 MiB image restored into a slot that held it copies back only what the
 * last request wrote. Requests write sparse pages, whole ranges, through a
 * system call (read(2) into guest memory: a kernel write), grow past the
 * image; two images of one module alternate on the same slots; a plain
 * instance and a pool trim come in between; three threads at once. Every
 * request must find its image exactly.
 */
static void host_kread(kiln_instance *inst, uint32_t ptr, uint32_t len)
{
    void *p = kiln_guest_ptr(inst, ptr, len);
    int fd = open("/dev/zero", O_RDONLY);
    if (p != NULL && fd >= 0 && read(fd, p, len) != (ssize_t)len)
        fprintf(stderr, "kread: short read\n");
    if (fd >= 0)
        close(fd);
}

static const char *tracked_wat =
    "(module (import \"host\" \"kread\" (func $kread (param i32 i32)))\n"
    " (memory 16 64)\n"
    " (func (export \"init_a\") (memory.fill (i32.const 0) (i32.const 0x11) (i32.const 1048576)))\n"
    " (func (export \"init_b\") (memory.fill (i32.const 0) (i32.const 0x22) (i32.const 1048576)))\n"
    /* check(v): bytes != v in the first 16 pages, plus 1000 per page past 16 */
    " (func (export \"check\") (param $v i32) (result i32) (local $a i32) (local $n i32)\n"
    "  (loop $l (if (i32.ne (i32.load8_u (local.get $a)) (local.get $v))\n"
    "            (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))\n"
    "   (local.set $a (i32.add (local.get $a) (i32.const 1)))\n"
    "   (br_if $l (i32.lt_u (local.get $a) (i32.const 1048576))))\n"
    "  (i32.add (local.get $n) (i32.mul (i32.sub (memory.size) (i32.const 16)) (i32.const 1000))))\n"
    " (func (export \"poke\") (param $step i32) (local $a i32)\n"
    "  (loop $l (i32.store8 (local.get $a) (i32.const 0xEE))\n"
    "   (local.set $a (i32.add (local.get $a) (local.get $step)))\n"
    "   (br_if $l (i32.lt_u (local.get $a) (i32.mul (memory.size) (i32.const 65536))))))\n"
    " (func (export \"poke_past\") (local $a i32) (local.set $a (i32.const 1048576))\n"
    "  (loop $l (i32.store8 (local.get $a) (i32.const 0xEE))\n"
    "   (local.set $a (i32.add (local.get $a) (i32.const 4097)))\n"
    "   (br_if $l (i32.lt_u (local.get $a) (i32.mul (memory.size) (i32.const 65536))))))\n"
    " (func (export \"kread\") (param i32 i32) (call $kread (local.get 0) (local.get 1)))\n"
    " (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    " (func (export \"zeros_past\") (result i32) (local $a i32) (local $n i32)\n"
    "  (local.set $a (i32.const 1048576))\n"
    "  (block $d (loop $l (br_if $d (i32.ge_u (local.get $a) (i32.mul (memory.size) (i32.const 65536))))\n"
    "   (if (i32.load8_u (local.get $a)) (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))\n"
    "   (local.set $a (i32.add (local.get $a) (i32.const 1))) (br $l)))\n"
    "  (local.get $n)))\n";

typedef struct tracked_ctx {
    kiln_instance_pre *pre;
    kiln_snapshot *a, *b;
    uint64_t partial; /* this thread's partial restores, after */
} tracked_ctx;

static void kread2(kiln_instance *inst, uint32_t ptr, uint32_t len)
{
    kiln_err err;
    kiln_value args[2] = {{.i32 = ptr}, {.i32 = len}};
    if (kiln_instance_call(inst, "kread", NULL, args, NULL, &err) != KILN_OK)
        fail_msg("kread: %s", err.msg);
}

static void tracked_rounds(tracked_ctx *c)
{
    kiln_err err;
    kiln_instance *inst;
    /* Pages written: a 32nd, a 61st, a 23rd, a 40th (plus 4 by read(2)); round 20
     * writes every byte (the slot then copies whole for a while). */
    uint32_t steps[] = {65536 * 2 + 3, 4096 * 61, 4096 * 23 + 5, 4096 * 40 + 1};
    for (int round = 0; round < 25; round++) {
        kiln_snapshot *s = round % 3 == 2 ? c->b : c->a;
        uint32_t v = s == c->a ? 0x11 : 0x22;
        assert_int_equal(kiln_instance_new_from_snapshot(s, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "check", v), 0);
        call_i(inst, "poke", round == 20 ? 1 : steps[round % 4]);
        kread2(inst, 4096 * (uint32_t)(round % 200) + 100, 3 * 4096 + 17); /* kernel write */
        if (round % 2 == 0) {
            assert_int_equal(call_i(inst, "grow", 3), 16);
            call_v(inst, "poke_past");
        }
        kiln_instance_free(inst);
        /* The next of the same image, most likely in the same slot. */
        assert_int_equal(kiln_instance_new_from_snapshot(s, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "check", v), 0);
        assert_int_equal(call_i(inst, "grow", 2), 16);
        assert_int_equal(call_i(inst, "zeros_past", 0), 0);
        kiln_instance_free(inst);
        if (round % 7 == 3) {
            /* A plain instance: zeros, not an image. */
            assert_int_equal(kiln_instance_new(c->pre, NULL, NULL, &inst, &err), KILN_OK);
            assert_int_equal(call_i(inst, "check", 0), 0);
            kiln_instance_free(inst);
        }
        if (round % 11 == 5)
            kiln_rt_trim_pools(0);
    }
    kiln_rt_stats st;
    kiln_rt_stats_get(&st);
    c->partial = st.image_partial_restores;
}

static void *tracked_thread(void *p)
{
    tracked_ctx c = *(tracked_ctx *)p;
    tracked_rounds(&c);
    kiln_rt_thread_cleanup();
    ((tracked_ctx *)p)->partial = c.partial;
    return NULL;
}

static void test_tracked_image_slots(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    static const kiln_hostfn fns[] = {{"host", "kread", "ii>", (void (*)(void))host_kread}};
    kiln_linker *l;
    kiln_err err;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    assert_int_equal(kiln_linker_define_host(l, fns, 1), KILN_OK);
    kiln_module *m = test_load_wat(tracked_wat, l);
    assert_non_null(m);
    tracked_ctx c = {0};
    assert_int_equal(kiln_instance_pre_new(m, l, &c.pre, &err), KILN_OK);
    const char *ia[] = {"init_a"}, *ib[] = {"init_b"};
    assert_int_equal(kiln_snapshot_build(c.pre, NULL, NULL, ia, 1, NULL, 0, &c.a, &err), KILN_OK);
    assert_int_equal(kiln_snapshot_build(c.pre, NULL, NULL, ib, 1, NULL, 0, &c.b, &err), KILN_OK);
    kiln_rt_stats st;
    kiln_rt_stats_get(&st);
    uint64_t before = st.image_partial_restores;
    tracked_ctx tc[2] = {c, c};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, tracked_thread, &tc[i]), 0);
    tracked_rounds(&c);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    /* The mechanism was used (where the kernel has it: Linux >= 6.7). */
    if (vmem_track_available()) {
        assert_true(c.partial - before >= 12);
        assert_true(tc[0].partial >= 12 && tc[1].partial >= 12);
    } else {
        fprintf(stderr, "test_tracked_image_slots: no write tracking here; full copies\n");
    }
    kiln_snapshot_free(c.a);
    kiln_snapshot_free(c.b);
    kiln_instance_pre_free(c.pre);
    kiln_module_release(m);
    kiln_linker_free(l);
}

/* Cleanup (snapshot.md "Cleanup"): an owner's previous image is deleted
 * when it moves to another, unless another owner still names it. */
static void touch_file(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static void test_image_cleanup(void **state)
{
    (void)state;
    char dir[] = "/tmp/kiln-snap-gc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[256], b[256], c[256], gone[512];
    snprintf(a, sizeof(a), "%s/a.img", dir);
    snprintf(b, sizeof(b), "%s/b.img", dir);
    snprintf(c, sizeof(c), "%s/c.img", dir);
    touch_file(a);
    touch_file(b);
    touch_file(c);
    kiln_err err;
    assert_int_equal(kiln_snapshot_cache_claim(a, "f1", gone, sizeof(gone), &err), KILN_OK);
    assert_string_equal(gone, "");
    assert_int_equal(kiln_snapshot_cache_claim(a, "f2", gone, sizeof(gone), &err), KILN_OK);
    /* f1 moves on; f2 still starts from a: kept. */
    assert_int_equal(kiln_snapshot_cache_claim(b, "f1", gone, sizeof(gone), &err), KILN_OK);
    assert_string_equal(gone, "");
    assert_int_equal(access(a, F_OK), 0);
    /* f2 moves on: nobody names a any more. */
    assert_int_equal(kiln_snapshot_cache_claim(c, "f2", gone, sizeof(gone), &err), KILN_OK);
    assert_string_equal(gone, a);
    assert_int_equal(access(a, F_OK), -1);
    /* Claiming the same image again removes nothing. */
    assert_int_equal(kiln_snapshot_cache_claim(c, "f2", gone, sizeof(gone), &err), KILN_OK);
    assert_string_equal(gone, "");
    assert_int_equal(access(b, F_OK), 0);
    assert_int_equal(access(c, F_OK), 0);
    assert_int_equal(kiln_snapshot_cache_claim(c, NULL, gone, sizeof(gone), &err), KILN_EINVAL);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Images on disk: saved, read back (header and sizes without an artifact),
 * restored with the same answers and isolation; a corrupt, truncated or
 * missing file and another artifact's pre are refused, never restored. */
static void test_image_on_disk(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    uint32_t sum, calls;
    expected(&f, &sum, &calls);
    kiln_snapshot *s = build(&f);
    char dir[] = "/tmp/kiln-snapimg-XXXXXX", path[256], bad[300];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/img", dir);
    kiln_err err;
    assert_int_equal(kiln_snapshot_save(s, path, NULL, "config: test", &err), KILN_OK);
    kiln_snapshot_free(s);

    kiln_snapshot_file_info fi;
    assert_int_equal(kiln_snapshot_file_info_get(path, &fi, &err), KILN_OK);
    assert_string_equal(fi.kiln_version, KILN_VERSION);
    assert_string_equal(fi.note, "config: test");
    assert_true(fi.artifact[0] != '\0');
    assert_true(fi.created > 0 && (int64_t)time(NULL) - fi.created < 600);
    assert_int_equal(fi.info.image_bytes, 131072 + 4096);
    assert_int_equal(fi.info.memory_bytes, 3 * 65536);
    assert_int_equal(fi.info.table_elems, 4);
    assert_true(fi.file_bytes > fi.info.image_bytes);

    kiln_snapshot *l = NULL;
    assert_int_equal(kiln_snapshot_load(f.pre, path, NULL, &l, &err), KILN_OK);
    for (int i = 0; i < 20; i++) {
        kiln_instance *inst;
        assert_int_equal(kiln_instance_new_from_snapshot(l, NULL, NULL, &inst, &err), KILN_OK);
        assert_int_equal(call_i(inst, "sum", 0), sum);
        assert_int_equal(call_i(inst, "calls", 10), calls);
        assert_int_equal(call_i(inst, "nonzero", 131080), 0);
        kiln_instance_free(inst);
    }
    scribble_then_check(&f, l, sum);
    kiln_snapshot_free(l);

    /* One flipped byte anywhere: the checksum refuses it. */
    uint8_t *buf;
    size_t len;
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    len = (size_t)ftell(fp);
    rewind(fp);
    buf = malloc(len);
    assert_int_equal(fread(buf, 1, len, fp), len);
    fclose(fp);
    snprintf(bad, sizeof(bad), "%s/bad", dir);
    size_t at[] = {9, 100, len / 2, len - 40};
    for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
        buf[at[k]] ^= 0x40;
        fp = fopen(bad, "wb");
        fwrite(buf, 1, len, fp);
        fclose(fp);
        buf[at[k]] ^= 0x40;
        l = NULL;
        assert_int_equal(kiln_snapshot_load(f.pre, bad, NULL, &l, &err), KILN_EINVAL);
        assert_null(l);
        assert_non_null(strstr(err.msg, "checksum"));
    }
    fp = fopen(bad, "wb");
    fwrite(buf, 1, len / 3, fp);
    fclose(fp);
    assert_int_equal(kiln_snapshot_load(f.pre, bad, NULL, &l, &err), KILN_EINVAL);
    free(buf);
    assert_int_equal(kiln_snapshot_load(f.pre, "/nonexistent/img", NULL, &l, &err), KILN_ENOENT);

    /* Another module's pre: the image names its artifact. */
    kiln_module *m2 = test_load_wat("(module (memory 1) (func (export \"f\")))", f.l);
    assert_non_null(m2);
    kiln_instance_pre *pre2;
    assert_int_equal(kiln_instance_pre_new(m2, f.l, &pre2, &err), KILN_OK);
    assert_int_equal(kiln_snapshot_load(pre2, path, NULL, &l, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "another artifact"));
    kiln_instance_pre_free(pre2);
    kiln_module_release(m2);
    unlink(bad);
    unlink(path);
    rmdir(dir);
    fixture_fini(&f);
}

/* A funcref global set by init holds a function of the artifact and the
 * instance's own address: a restored instance must call through it into
 * itself (its own globals), in memory and after a round trip through disk. */
static void test_funcref_global(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    static const char *wat =
        "(module (type $ti (func (param i32) (result i32)))\n"
        " (table 2 funcref)\n"
        " (global $g (mut funcref) (ref.null func))\n"
        " (global $k (mut i32) (i32.const 3))\n"
        " (elem declare func $mul)\n"
        " (func $mul (type $ti) (i32.mul (local.get 0) (global.get $k)))\n"
        " (func (export \"init\") (global.set $g (ref.func $mul)))\n"
        " (func (export \"set_k\") (param i32) (result i32) (global.set $k (local.get 0)) (i32.const 0))\n"
        " (func (export \"via_g\") (param i32) (result i32)\n"
        "  (table.set 0 (i32.const 1) (global.get $g))\n"
        "  (call_indirect (type $ti) (local.get 0) (i32.const 1))))\n";
    kiln_linker *l;
    kiln_err err;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    kiln_module *m = test_load_wat(wat, l);
    assert_non_null(m);
    kiln_instance_pre *pre;
    assert_int_equal(kiln_instance_pre_new(m, l, &pre, &err), KILN_OK);
    const char *const inits[] = {"init"};
    kiln_snapshot *s = NULL;
    assert_int_equal(kiln_snapshot_build(pre, NULL, NULL, inits, 1, NULL, 0, &s, &err), KILN_OK);
    char dir[] = "/tmp/kiln-snapfg-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/img", dir);
    assert_int_equal(kiln_snapshot_save(s, path, NULL, "t", &err), KILN_OK);
    kiln_snapshot *l2 = NULL;
    assert_int_equal(kiln_snapshot_load(pre, path, NULL, &l2, &err), KILN_OK);
    kiln_snapshot *both[] = {s, l2};
    for (int which = 0; which < 2; which++)
        for (int k = 2; k < 12; k++) {
            kiln_instance *inst;
            assert_int_equal(kiln_instance_new_from_snapshot(both[which], NULL, NULL, &inst, &err),
                             KILN_OK);
            assert_int_equal(call_i(inst, "via_g", 7), 21); /* the image's k */
            call_i(inst, "set_k", (uint32_t)k);
            assert_int_equal(call_i(inst, "via_g", 7), 7 * k); /* its own k, not the image's */
            kiln_instance_free(inst);
        }
    kiln_snapshot_free(l2);
    kiln_snapshot_free(s);
    unlink(path);
    rmdir(dir);
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
    kiln_linker_free(l);
}

/* Another compile tier of the same module (an -O0 and an -O2 artifact): an
 * image made on one loads on the other only with the same module id, its
 * functions (a table element set by init, a funcref global) rebound through
 * their ports; answers identical. */
static void test_image_other_tier(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    static const char *wat =
        "(module (type $ti (func (param i32) (result i32)))\n"
        " (table 3 funcref) (elem (i32.const 0) $inc $mul)\n"
        " (global $g (mut funcref) (ref.null func))\n"
        " (global $k (mut i32) (i32.const 3))\n"
        " (memory 1) (data (i32.const 8) \"xyz\")\n"
        " (func $inc (type $ti) (i32.add (local.get 0) (i32.const 1)))\n"
        " (func $mul (type $ti) (i32.mul (local.get 0) (global.get $k)))\n"
        " (func (export \"init\") (global.set $g (ref.func $inc)) (global.set $k (i32.const 4))\n"
        "  (table.set 0 (i32.const 2) (table.get 0 (i32.const 1))) (i32.store (i32.const 100) (i32.const 55)))\n"
        " (func (export \"run\") (param i32) (result i32)\n"
        "  (table.set 0 (i32.const 0) (global.get $g))\n"
        "  (i32.add (i32.load (i32.const 100)) (i32.add (call_indirect (type $ti) (local.get 0) (i32.const 0))\n"
        "   (call_indirect (type $ti) (local.get 0) (i32.const 2))))))\n";
    char *wasm = test_wat2wasm(wat, "");
    assert_non_null(wasm);
    kiln_linker *l;
    kiln_err err;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    kiln_module *m[2];
    kiln_instance_pre *pre[2];
    for (int i = 0; i < 2; i++) {
        kiln_aot_options o;
        memset(&o, 0, sizeof(o));
        o.opt_level = i == 0 ? 0 : 2;
        assert_int_equal(kiln_aot_load_file(wasm, &o, &m[i], &err), KILN_OK);
        assert_int_equal(kiln_instance_pre_new(m[i], l, &pre[i], &err), KILN_OK);
    }
    const char *const inits[] = {"init"};
    kiln_snapshot *s = NULL;
    assert_int_equal(kiln_snapshot_build(pre[0], NULL, NULL, inits, 1, NULL, 0, &s, &err), KILN_OK);
    kiln_snapshot_info si;
    kiln_snapshot_info_get(s, &si);
    assert_true(si.portable);
    char dir[] = "/tmp/kiln-snaptier-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/img", dir);
    assert_int_equal(kiln_snapshot_save(s, path, "module-x", "t", &err), KILN_OK);
    kiln_snapshot_free(s);
    kiln_snapshot *o = NULL;
    /* Without the module id, or with another, the other artifact refuses it. */
    assert_int_equal(kiln_snapshot_load(pre[1], path, NULL, &o, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "another artifact"));
    assert_int_equal(kiln_snapshot_load(pre[1], path, "module-y", &o, &err), KILN_EINVAL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kiln_snapshot_load(pre[i], path, "module-x", &o, &err), KILN_OK);
        for (int r = 0; r < 5; r++) {
            kiln_instance *inst;
            assert_int_equal(kiln_instance_new_from_snapshot(o, NULL, NULL, &inst, &err), KILN_OK);
            /* 55 + inc(10) through the global + mul(10) with k = 4 */
            assert_int_equal(call_i(inst, "run", 10), 55 + 11 + 40);
            kiln_instance_free(inst);
        }
        kiln_snapshot_free(o);
    }
    unlink(path);
    rmdir(dir);
    for (int i = 0; i < 2; i++) {
        kiln_instance_pre_free(pre[i]);
        kiln_module_release(m[i]);
    }
    kiln_linker_free(l);
    unlink(wasm);
    free(wasm);
}

/* A graph of two linked instances, as a component's shim and fixup: B
 * imports A's table, memory and a function (argument links), and its
 * element segment puts B's own function and its import of A's into A's
 * table; its start function initialises B's global and A's memory. Every
 * graph restored from the members' images calls through A's table into
 * its own B, sees the initialised state and none of another graph's
 * writes. Fails without the graph references (A's table would call the
 * captured B). */
static void test_graph(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_err err;
    kiln_module *ma = test_load_wat(
        "(module (table (export \"t\") 2 funcref) (memory (export \"mem\") 1)\n"
        " (type $ft (func (result i32))) (global $ga (mut i32) (i32.const 5))\n"
        " (func (export \"call\") (param i32) (result i32) (call_indirect (type $ft) (local.get 0)))\n"
        " (func (export \"ga\") (result i32) (global.get $ga)))\n", NULL);
    kiln_module *mb = test_load_wat(
        "(module (import \"a\" \"t\" (table 2 funcref)) (import \"a\" \"mem\" (memory 1))\n"
        " (import \"a\" \"ga\" (func $aga (result i32)))\n"
        " (global $g (mut i32) (i32.const 0))\n"
        " (func $f (result i32) (i32.add (global.get $g) (i32.add (i32.load (i32.const 16)) (call $aga))))\n"
        " (func $init (global.set $g (i32.const 100)) (i32.store (i32.const 16) (i32.const 20)))\n"
        " (func (export \"scribble\") (global.set $g (i32.const -1000)) (i32.store (i32.const 16) (i32.const 7777)))\n"
        " (elem (i32.const 0) $f $aga) (start $init))\n", NULL);
    assert_non_null(ma);
    assert_non_null(mb);
    kiln_linker *la, *lb;
    assert_int_equal(kiln_linker_new(&la), KILN_OK);
    assert_int_equal(kiln_linker_new(&lb), KILN_OK);
    assert_int_equal(kiln_linker_define_arg(lb, "a", ma, 0), KILN_OK);
    kiln_instance_pre *pa, *pb;
    assert_int_equal(kiln_instance_pre_new(ma, la, &pa, &err), KILN_OK);
    if (kiln_instance_pre_new(mb, lb, &pb, &err) != KILN_OK)
        fail_msg("pre: %s", err.msg);
    /* Plain instantiation binds the argument; without it, refused. */
    kiln_instance *g[2] = {NULL, NULL};
    assert_int_equal(kiln_instance_new(pb, NULL, NULL, &g[1], &err), KILN_EINVAL);
    assert_int_equal(kiln_instance_new(pa, NULL, NULL, &g[0], &err), KILN_OK);
    assert_int_equal(kiln_instance_new_args(pb, NULL, NULL, g, 2, &g[1], &err), KILN_OK);
    assert_int_equal(call_i(g[0], "call", 0), 125);
    assert_int_equal(call_i(g[0], "call", 1), 5);
    kiln_instance_free(g[1]);
    kiln_instance_free(g[0]);
    /* A graph member that fails after storing functions in an argument's
     * table is released at once (its caller frees the graph): failing
     * again and again reserves no new memory (it used to leak each one). */
    kiln_module *mf = test_load_wat(
        "(module (import \"a\" \"t\" (table 2 funcref)) (memory 1)\n"
        " (func $f (result i32) (i32.const 1))\n"
        " (elem (i32.const 0) $f) (func $boom unreachable) (start $boom))\n", NULL);
    assert_non_null(mf);
    kiln_instance_pre *pf;
    if (kiln_instance_pre_new(mf, lb, &pf, &err) != KILN_OK)
        fail_msg("pre: %s", err.msg);
    kiln_instance *h[2] = {NULL, NULL};
    assert_int_equal(kiln_instance_new(pa, NULL, NULL, &h[0], &err), KILN_OK);
    assert_int_equal(kiln_instance_new_args(pf, NULL, NULL, h, 2, &h[1], &err), KILN_ETRAP);
    assert_null(h[1]);
    kiln_rt_stats r0, r1;
    kiln_rt_stats_get(&r0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(kiln_instance_new_args(pf, NULL, NULL, h, 2, &h[1], &err), KILN_ETRAP);
    kiln_rt_stats_get(&r1);
    assert_int_equal(r1.memories_reserved, r0.memories_reserved);
    assert_int_equal(r1.pool_misses, r0.pool_misses);
    kiln_instance_free(h[0]);
    kiln_instance_pre_free(pf);
    kiln_module_release(mf);
    /* The images: begun in order, captured once both exist. */
    kiln_instance *ref;
    assert_int_equal(kiln_snapshot_begin(pb, NULL, NULL, NULL, 0, &ref, &err), KILN_EINVAL);
    assert_int_equal(kiln_snapshot_begin_args(pa, NULL, NULL, g, 2, NULL, 0, &g[0], &err), KILN_OK);
    g[1] = NULL;
    if (kiln_snapshot_begin_args(pb, NULL, NULL, g, 2, NULL, 0, &g[1], &err) != KILN_OK)
        fail_msg("begin: %s", err.msg);
    kiln_snapshot *alone = NULL;
    assert_int_equal(kiln_snapshot_capture(g[0], &alone, &err), KILN_EINVAL);
    kiln_snapshot *snaps[2] = {NULL, NULL};
    for (uint32_t i = 0; i < 2; i++)
        if (kiln_snapshot_capture_graph(g, 2, i, &snaps[i], &err) != KILN_OK)
            fail_msg("capture %u: %s", i, err.msg);
    kiln_instance_free(g[1]);
    kiln_instance_free(g[0]);
    assert_int_equal(kiln_instance_new_from_snapshot(snaps[1], NULL, NULL, &ref, &err), KILN_EINVAL);
    assert_int_equal(kiln_snapshot_save(snaps[0], "/tmp/kiln-graph-never.img", NULL, "t", &err),
                     KILN_EUNSUPPORTED);
    const kiln_snapshot *const *cs = (const kiln_snapshot *const *)snaps;
    for (int round = 0; round < 10; round++) {
        kiln_instance *x[2], *y[2];
        assert_int_equal(kiln_snapshot_graph_restore(cs, 2, NULL, NULL, x, &err), KILN_OK);
        assert_int_equal(kiln_snapshot_graph_restore(cs, 2, NULL, NULL, y, &err), KILN_OK);
        assert_int_equal(call_i(x[0], "call", 0), 125);
        call_v(x[1], "scribble");
        assert_int_equal(call_i(x[0], "call", 0), (uint32_t)(-1000 + 7777 + 5));
        assert_int_equal(call_i(y[0], "call", 0), 125); /* its own B and memory */
        assert_int_equal(call_i(y[0], "call", 1), 5);
        kiln_instance_free(x[1]);
        kiln_instance_free(x[0]);
        kiln_instance_free(y[1]);
        kiln_instance_free(y[0]);
    }
    kiln_snapshot_free(snaps[1]);
    kiln_snapshot_free(snaps[0]);
    kiln_instance_pre_free(pb);
    kiln_instance_pre_free(pa);
    kiln_linker_free(lb);
    kiln_linker_free(la);
    kiln_module_release(mb);
    kiln_module_release(ma);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_answers),
        cmocka_unit_test(test_isolation_same_thread),
        cmocka_unit_test(test_isolation_other_threads),
        cmocka_unit_test(test_init_refused),
        cmocka_unit_test(test_imported_memory),
        cmocka_unit_test(test_plain_pool_reset),
        cmocka_unit_test(test_tracked_image_slots),
        cmocka_unit_test(test_image_on_disk),
        cmocka_unit_test(test_image_cleanup),
        cmocka_unit_test(test_funcref_global),
        cmocka_unit_test(test_image_other_tier),
        cmocka_unit_test(test_graph),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
