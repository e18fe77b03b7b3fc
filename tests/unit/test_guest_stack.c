/*
 * test_guest_stack.c - what a hostile guest found, as tests that fail on the
 * runtime before guest stacks existed:
 *
 *  - stack clash: functions with native frames of 4 KiB, 64 KiB and 256 KiB
 *    (8 bytes per live i64 local) entered at every depth near the end of the
 *    guest stack, each starting at many offsets from the guard: every call
 *    either answers correctly or traps "call stack exhausted";
 *  - host calls at the stack edge: the guest recurses until little stack is
 *    left and calls a host function that takes a lock, allocates and uses a
 *    200 KiB frame. Every call either succeeds or traps before the host
 *    function runs; the lock is never left held (the server deadlocked);
 *  - deadlines never unwind through a host function holding a lock;
 *  - tables are charged to the instance: 4 tables of 10 M elements under a
 *    1 MiB memory limit (948 MB RSS before) fail instantiation with a clear
 *    message; table.grow past the budget returns -1; the reader refuses
 *    100,000 tables and functions with 100,000 locals.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "aot/wasm_reader.h"
#include "kiln/abi.h"
#include "support/wat.h"

/* ---- helpers ---------------------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    if (b->p == NULL) {
        b->cap = 4096;
        b->p = malloc(b->cap);
        assert_non_null(b->p);
    }
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap ? b->cap * 2 + (size_t)n : 4096 + (size_t)n;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
}

/* Compile at -O0: frames are exactly the declared locals, and a 32k-local
 * function compiles in seconds rather than minutes. */
static kiln_module *load_wat_o0(const char *wat, const kiln_linker *check)
{
    char *path = test_wat2wasm(wat, "");
    assert_non_null(path);
    kiln_aot_options o = {0};
    o.opt_level = 0;
    o.max_function_bytes = 4 << 20; /* the 256 KiB frame's body is ~360 KiB */
    o.cc = getenv("KILN_TEST_CC") ? getenv("KILN_TEST_CC") : "cc";
    o.imports = check;
    kiln_module *m = NULL;
    kiln_err err;
    if (kiln_aot_load_file(path, &o, &m, &err) != KILN_OK)
        fail_msg("compile: %s", err.msg);
    test_wat_cleanup(path);
    return m;
}

static kiln_instance *instantiate(kiln_module *m, const kiln_linker *l, const kiln_limits *lim,
                                  kiln_instance_pre **pre)
{
    kiln_err err;
    kiln_instance *inst = NULL;
    if (kiln_instance_pre_new(m, l, pre, &err) != KILN_OK)
        fail_msg("link: %s", err.msg);
    if (kiln_instance_new(*pre, lim, NULL, &inst, &err) != KILN_OK)
        fail_msg("instantiate: %s", err.msg);
    return inst;
}

/* ---- stack clash --------------------------------------------------------------- */

/*
 * $big_N(d): N i64 locals loaded from memory and live across the recursive
 * call (so they sit in the frame), result = (d + 1) * sum(0..N-1).
 * $pad(n, d): n small frames first, so $big starts at every offset.
 */
static char *frames_wat(const unsigned *sizes, size_t n_sizes)
{
    strbuf b = {0};
    sb_printf(&b, "(module (memory 16)\n"
                  " (func (export \"init\") (local $i i32)\n"
                  "  (loop $l (i64.store (i32.shl (local.get $i) (i32.const 3))\n"
                  "     (i64.extend_i32_u (local.get $i)))\n"
                  "   (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
                  "   (br_if $l (i32.lt_u (local.get $i) (i32.const 131072)))))\n");
    for (size_t s = 0; s < n_sizes; s++) {
        unsigned n = sizes[s] / 8;
        sb_printf(&b, " (func $big%u (param $d i32) (result i64) (local $x i64) (local", n);
        for (unsigned k = 0; k < n; k++)
            sb_printf(&b, " i64");
        sb_printf(&b, ")\n");
        for (unsigned k = 0; k < n; k++)
            sb_printf(&b, "  i32.const %u i64.load local.set %u\n", k * 8, k + 2);
        sb_printf(&b, "  (if (local.get $d) (then (local.set $x (call $big%u (i32.sub "
                      "(local.get $d) (i32.const 1))))))\n  local.get $x\n", n);
        for (unsigned k = 0; k < n; k++)
            sb_printf(&b, "  local.get %u i64.add\n", k + 2);
        sb_printf(&b, " )\n");
        sb_printf(&b, " (func $pad%u (param $n i32) (param $d i32) (result i64)\n"
                      "  (if (result i64) (local.get $n)\n"
                      "   (then (call $pad%u (i32.sub (local.get $n) (i32.const 1)) (local.get $d)))\n"
                      "   (else (call $big%u (local.get $d)))))\n"
                      " (export \"run%u\" (func $pad%u))\n",
                  n, n, n, n, n);
    }
    sb_printf(&b, ")\n");
    return b.p;
}

/* Call run(n, d): returns 1 on the right answer, 0 on stack exhaustion;
 * anything else fails the test. */
static int call_run(kiln_instance *inst, const char *name, unsigned n_locals, uint32_t pad,
                    uint32_t depth)
{
    kiln_value a[2] = {{.i32 = pad}, {.i32 = depth}}, r[1];
    kiln_err err;
    int rc = kiln_instance_call(inst, name, NULL, a, r, &err);
    if (rc == KILN_OK) {
        uint64_t sum = (uint64_t)n_locals * (n_locals - 1) / 2;
        assert_int_equal(r[0].i64, (uint64_t)(depth + 1) * sum);
        return 1;
    }
    if (rc != KILN_ETRAP || err.trap != KILN_TRAP_EXHAUSTION)
        fail_msg("%s(%u, %u): unexpected result %d: %s", name, pad, depth, rc, err.msg);
    assert_non_null(strstr(err.msg, "call stack exhausted"));
    return 0;
}

static void test_frames_near_the_guard(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    static const unsigned sizes[] = {4096, 65536, 262144};
    char *wat = frames_wat(sizes, 3);
    kiln_module *m = load_wat_o0(wat, NULL);
    free(wat);
    assert_non_null(m);
    kiln_linker *l;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    /* A small guest stack: the limit is reached quickly. */
    kiln_limits lim = {.max_stack_bytes = 512 << 10};
    kiln_instance_pre *pre;
    kiln_instance *inst = instantiate(m, l, &lim, &pre);
    kiln_err err;
    assert_int_equal(kiln_instance_call(inst, "init", NULL, NULL, NULL, &err), KILN_OK);

    for (size_t s = 0; s < 3; s++) {
        unsigned n = sizes[s] / 8;
        char name[32];
        snprintf(name, sizeof(name), "run%u", n);
        /* Deepest big-frame depth that fits with no padding. */
        uint32_t lo = 0, hi = 4096;
        assert_int_equal(call_run(inst, name, n, 0, 0), 1);
        while (lo + 1 < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (call_run(inst, name, n, 0, mid))
                lo = mid;
            else
                hi = mid;
        }
        /* Every depth around it, each entered at many offsets: the pad
         * frames shift where the last big frame starts by a few dozen
         * bytes each, across more than one big frame's span. */
        unsigned ok = 0, trapped = 0;
        uint32_t pads = sizes[s] / 16 + 64;
        if (pads > 2048)
            pads = 2048;
        for (uint32_t d = lo > 0 ? lo - 1 : 0; d <= lo + 1; d++)
            for (uint32_t p = 0; p < pads; p += (sizes[s] > 65536 ? 7 : 1))
                call_run(inst, name, n, p, d) ? ok++ : trapped++;
        print_message("frame %u KiB: max depth %u, %u answered, %u trapped near the guard\n",
                      sizes[s] >> 10, lo, ok, trapped);
        assert_true(ok > 0);
        assert_true(trapped > 0);
        /* The instance still works after all those traps. */
        assert_int_equal(call_run(inst, name, n, 0, 0), 1);
    }
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
    kiln_linker_free(l);
}

/* ---- host calls at the stack edge ------------------------------------------ */

static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned host_calls;

__attribute__((noinline)) static uint32_t use_big_frame(uint32_t x)
{
    volatile uint8_t frame[200 << 10];
    for (size_t i = 0; i < sizeof(frame); i += 512)
        frame[i] = (uint8_t)(x + i);
    return frame[x % sizeof(frame)] + x;
}

static uint32_t host_locked(kiln_instance *inst, uint32_t x)
{
    (void)inst;
    pthread_mutex_lock(&host_lock);
    void *p = malloc(64 << 10);
    memset(p, (int)x, 64 << 10);
    uint32_t r = use_big_frame(x);
    free(p);
    host_calls++;
    pthread_mutex_unlock(&host_lock);
    return r - x + 1; /* frame[...] is written as (x + i) & 0xff at i = k*512 */
}

static uint32_t host_sleep_locked(kiln_instance *inst, uint32_t ms)
{
    (void)inst;
    pthread_mutex_lock(&host_lock);
    usleep(ms * 1000u);
    pthread_mutex_unlock(&host_lock);
    return 7;
}

static const char *edge_wat =
    "(module\n"
    " (import \"env\" \"locked\" (func $locked (param i32) (result i32)))\n"
    " (import \"env\" \"sleep_locked\" (func $sleep (param i32) (result i32)))\n"
    " (func $rec (export \"rec\") (param $n i32) (result i32)\n"
    "  (if (result i32) (local.get $n)\n"
    "   (then (i32.add (call $rec (i32.sub (local.get $n) (i32.const 1))) (i32.const 0)))\n"
    "   (else (call $locked (i32.const 0)))))\n"
    " (func (export \"sleepy\") (result i32) (call $sleep (i32.const 300)))\n"
    " (func (export \"spin\") (loop (br 0))))\n";

static void assert_lock_free(void)
{
    int rc = pthread_mutex_trylock(&host_lock);
    assert_int_equal(rc, 0); /* a trap never leaves the host's lock held */
    pthread_mutex_unlock(&host_lock);
}

static void test_host_call_at_the_stack_edge(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_linker *l;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    static const kiln_hostfn fns[] = {
        {"env", "locked", "i>i", (void (*)(void))host_locked},
        {"env", "sleep_locked", "i>i", (void (*)(void))host_sleep_locked},
    };
    assert_int_equal(kiln_linker_define_host(l, fns, 2), KILN_OK);
    kiln_module *m = load_wat_o0(edge_wat, l);
    assert_non_null(m);
    kiln_limits lim = {.max_stack_bytes = 256 << 10, .timeout_ms = 100};
    kiln_instance_pre *pre;
    kiln_instance *inst = instantiate(m, l, &lim, &pre);

    /* Find the deepest recursion that still reaches the host function. */
    kiln_value a[1], r[1];
    kiln_err err;
    uint32_t lo = 0, hi = 1u << 20;
    while (lo + 1 < hi) {
        uint32_t mid = (lo + hi) / 2;
        a[0].i32 = mid;
        int rc = kiln_instance_call(inst, "rec", NULL, a, r, &err);
        if (rc == KILN_OK)
            lo = mid;
        else
            hi = mid;
        assert_lock_free();
    }
    /* Every depth near it: success, or a clean trap before the host runs. */
    unsigned ok = 0, trapped = 0;
    for (uint32_t d = lo > 300 ? lo - 300 : 0; d < lo + 300; d++) {
        a[0].i32 = d;
        unsigned before = host_calls;
        int rc = kiln_instance_call(inst, "rec", NULL, a, r, &err);
        if (rc == KILN_OK) {
            assert_int_equal(r[0].i32, 1);
            assert_int_equal(host_calls, before + 1);
            ok++;
        } else {
            assert_int_equal(rc, KILN_ETRAP);
            assert_int_equal(err.trap, KILN_TRAP_EXHAUSTION);
            assert_int_equal(host_calls, before); /* trapped before, never inside */
            trapped++;
        }
        assert_lock_free();
    }
    print_message("host call edge at depth %u: %u answered, %u trapped\n", lo, ok, trapped);
    assert_true(ok > 0 && trapped > 0);

    /* A deadline that passes inside the host function waits for it: the lock
     * is released, then the guest unwinds with the timeout. */
    int rc = kiln_instance_call(inst, "sleepy", NULL, NULL, r, &err);
    assert_int_equal(rc, KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_TIMEOUT);
    assert_lock_free();
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);

    /* A guest in a loop is still interrupted. */
    inst = instantiate(m, l, &lim, &pre);
    rc = kiln_instance_call(inst, "spin", NULL, NULL, r, &err);
    assert_int_equal(rc, KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_TIMEOUT);
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
    kiln_linker_free(l);
}

/* ---- tables ---------------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static void test_tables_are_charged(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_linker *l;
    assert_int_equal(kiln_linker_new(&l), KILN_OK);
    kiln_module *m = load_wat_o0("(module (table 10000000 funcref) (table 10000000 funcref)\n"
                                 " (table 10000000 funcref) (table 10000000 funcref))",
                                 NULL);
    assert_non_null(m);
    long before = rss_kib();
    kiln_instance_pre *pre;
    kiln_err err;
    assert_int_equal(kiln_instance_pre_new(m, l, &pre, &err), KILN_OK);
    kiln_instance *inst = NULL;
    /* Under a 1 MiB memory limit, and under the default table budget. */
    kiln_limits one_mib = {.max_memory_bytes = 1 << 20};
    for (int pass = 0; pass < 2; pass++) {
        int rc = kiln_instance_new(pre, pass == 0 ? &one_mib : NULL, NULL, &inst, &err);
        assert_int_equal(rc, KILN_ETRAP);
        assert_int_equal(err.trap, KILN_TRAP_OUT_OF_MEMORY);
        assert_non_null(strstr(err.msg, "table"));
        assert_non_null(strstr(err.msg, "max_table_elems"));
    }
    long after = rss_kib();
    print_message("4 x 10M-element tables: RSS %ld -> %ld KiB\n", before, after);
    assert_true(after - before < 64 * 1024);
    kiln_instance_pre_free(pre);

    /* Growth is charged too: a table may grow only within the budget. */
    m = load_wat_o0("(module (table $t 10 funcref)\n"
                    " (func (export \"grow\") (param i32) (result i32)\n"
                    "  (table.grow $t (ref.null func) (local.get 0))))",
                    NULL);
    assert_non_null(m);
    kiln_limits small = {.max_table_elems = 1000};
    inst = instantiate(m, l, &small, &pre);
    kiln_value a[1] = {{.i32 = 900}}, r[1];
    assert_int_equal(kiln_instance_call(inst, "grow", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 10);
    a[0].i32 = 200; /* 1110 > 1000 */
    assert_int_equal(kiln_instance_call(inst, "grow", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, (uint32_t)-1);
    a[0].i32 = 90;
    assert_int_equal(kiln_instance_call(inst, "grow", NULL, a, r, &err), KILN_OK);
    assert_int_equal(r[0].i32, 910);
    kiln_instance_free(inst);
    kiln_instance_pre_free(pre);
    kiln_linker_free(l);
}

/* Hand-made binaries: wat2wasm itself balks at such counts. */
static void test_reader_refuses_absurd_counts(void **state)
{
    (void)state;
    /* 100,000 tables in a 68-byte-per-thousand encoding: (funcref, min 0). */
    size_t n = 100000, len = 0;
    uint8_t *buf = malloc(16 + n * 3);
    static const uint8_t hdr[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    memcpy(buf, hdr, 8);
    len = 8;
    buf[len++] = 4; /* table section */
    uint32_t body = 3 + (uint32_t)n * 3;
    for (uint32_t v = body;; v >>= 7) { /* LEB128 size */
        buf[len++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    buf[len++] = 0xa0; /* count 100000 = 0xa0 0x8d 0x06 */
    buf[len++] = 0x8d;
    buf[len++] = 0x06;
    for (size_t i = 0; i < n; i++) {
        buf[len++] = 0x70;
        buf[len++] = 0;
        buf[len++] = 0;
    }
    kiln_wasm_info info;
    kiln_err err;
    assert_int_equal(kiln_wasm_parse(buf, len, &info, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "table"));
    assert_non_null(strstr(err.msg, "limit"));

    /* One function declaring 100,000 locals. */
    static const uint8_t fn[] = {0, 'a', 's', 'm', 1, 0, 0, 0,
                                 1, 4, 1, 0x60, 0, 0,        /* type () -> () */
                                 3, 2, 1, 0,                 /* one function */
                                 10, 8, 1, 6, 1, 0xa0, 0x8d, 0x06, 0x7e, 0x0b};
    assert_int_equal(kiln_wasm_parse(fn, sizeof(fn), &info, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "locals"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_refuses_absurd_counts),
        cmocka_unit_test(test_tables_are_charged),
        cmocka_unit_test(test_host_call_at_the_stack_edge),
        cmocka_unit_test(test_frames_near_the_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
