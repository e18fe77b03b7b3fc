/*
 * test_embed.c - the Extism C API (include/kiln/extism.h, src/embed) from a
 * host program's side, on guests of tests/guests_extism (built here with
 * its build.sh): plugins from bytes, from a manifest and from a compiled
 * plugin; call, output and error; function_exists; config updates; host
 * functions with user data, destructors, namespaces and every value type;
 * extism_current_plugin_memory*; cancel from another thread; reset; vars
 * from the host; logging to a file and to the drain; linked modules; a KV store;
 * plugin ids, version, fuel-limit refusal, WASI on/off, response headers,
 * threads sharing a compiled plugin and one plugin (every function of
 * extism.h is called).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln/extism.h"
#include "kiln/extism_kiln.h"

static char guests[800];

static uint8_t *slurp(const char *name, size_t *len)
{
    char path[900];
    snprintf(path, sizeof(path), "%s/%s", guests, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static ExtismPlugin *load(const char *name, const ExtismFunction **fns, size_t n, bool wasi)
{
    size_t len;
    uint8_t *wasm = slurp(name, &len);
    char *err = NULL;
    ExtismPlugin *p = extism_plugin_new(wasm, len, fns, n, wasi, &err);
    if (p == NULL)
        fail_msg("%s: %s", name, err ? err : "?");
    free(wasm);
    return p;
}

static void assert_output(ExtismPlugin *p, const char *want)
{
    size_t n = (size_t)extism_plugin_output_length(p);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(extism_plugin_output_data(p), want, n);
}

static void test_bytes_call_output_error(void **state)
{
    (void)state;
    ExtismPlugin *p = load("greet.wasm", NULL, 0, false);
    assert_int_equal(extism_plugin_call(p, "greet", (const uint8_t *)"Kiln", 4), EXTISM_SUCCESS);
    assert_output(p, "Hello, Kiln!");
    assert_null(extism_plugin_error(p));
    assert_true(extism_plugin_function_exists(p, "greet"));
    assert_false(extism_plugin_function_exists(p, "nope"));
    /* a missing function: -1 and Extism's message */
    assert_int_equal(extism_plugin_call(p, "nope", NULL, 0), -1);
    assert_non_null(strstr(extism_plugin_error(p), "Function not found: nope"));
    assert_int_equal(extism_plugin_output_length(p), 0);
    /* the plugin still works afterwards */
    assert_int_equal(extism_plugin_call(p, "greet", (const uint8_t *)"again", 5), 0);
    assert_output(p, "Hello, again!");
    assert_non_null(extism_plugin_id(p));
    extism_plugin_free(p);

    /* a guest error: its own text, and its return code */
    p = load("fail.wasm", NULL, 0, false);
    assert_int_equal(extism_plugin_call(p, "fail", NULL, 0), 1);
    assert_string_equal(extism_plugin_error(p), "something went wrong");
    kiln_err e;
    assert_int_equal(kiln_extism_plugin_status(p, &e), KILN_EGUEST);
    assert_non_null(strstr(e.msg, "fail returned 1: something went wrong"));
    extism_plugin_free(p);

    /* not a module: NULL and a message to free */
    char *err = NULL;
    assert_null(extism_plugin_new((const uint8_t *)"nonsense", 8, NULL, 0, false, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "Unable to compile Extism plugin"));
    extism_plugin_new_error_free(err);
    assert_non_null(strstr(extism_version(), "kiln"));
}

static void test_manifest_and_config(void **state)
{
    (void)state;
    char m[1200];
    snprintf(m, sizeof(m),
             "{\"wasm\": [{\"path\": \"%s/config.wasm\"}], \"config\": {\"greeting\": \"hi\"}}",
             guests);
    char *err = NULL;
    ExtismPlugin *p = extism_plugin_new((const uint8_t *)m, strlen(m), NULL, 0, false, &err);
    if (p == NULL)
        fail_msg("%s", err);
    assert_int_equal(extism_plugin_call(p, "greeting", NULL, 0), 0);
    assert_output(p, "hi");
    const char *upd = "{\"greeting\": \"updated\"}";
    assert_true(extism_plugin_config(p, (const uint8_t *)upd, strlen(upd)));
    assert_int_equal(extism_plugin_call(p, "greeting", NULL, 0), 0);
    assert_output(p, "updated");
    const char *del = "{\"greeting\": null}";
    assert_true(extism_plugin_config(p, (const uint8_t *)del, strlen(del)));
    assert_int_equal(extism_plugin_call(p, "greeting", NULL, 0), 0);
    assert_output(p, "(none)");
    assert_false(extism_plugin_config(p, (const uint8_t *)"[1]", 3));
    assert_false(extism_plugin_config(p, (const uint8_t *)"{\"a\": 1}", 8));
    extism_plugin_free(p);

    /* manifest errors come back through errmsg */
    const char *bad = "{\"wasm\": [], \"colour\": 1}";
    assert_null(extism_plugin_new((const uint8_t *)bad, strlen(bad), NULL, 0, false, &err));
    assert_non_null(strstr(err, "colour"));
    extism_plugin_new_error_free(err);
}

static void count_var(void *user, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
    char *seen = user;
    size_t n = strlen(seen);
    snprintf(seen + n, 200 - n, "%.*s=%.*s;", (int)klen, key, (int)vlen, (const char *)val);
}

/* memory.max_pages (Extism's growth rule), vars at the store's limit, the
 * options' err and the vars visitor (what `kiln call` uses). */
static void test_manifest_limits_and_vars(void **state)
{
    (void)state;
    char m[1200], seen[200] = "";
    const char *fmt = "{\"wasm\": [{\"path\": \"%s/mem_pages.wasm\"}], \"memory\": "
                      "{\"max_pages\": %d, \"max_var_bytes\": 200}}";
    snprintf(m, sizeof(m), fmt, guests, 17);
    char *err = NULL;
    ExtismPlugin *p = extism_plugin_new((const uint8_t *)m, strlen(m), NULL, 0, false, &err);
    if (p == NULL)
        fail_msg("%s", err);
    assert_int_equal(extism_plugin_call(p, "grow", (const uint8_t *)"17", 2), 0);
    assert_output(p, "34");
    assert_int_not_equal(extism_plugin_call(p, "grow", (const uint8_t *)"1", 1), 0);
    /* vars: 101-byte "a" (150) + "b"="1" (50) is exactly the limit */
    uint8_t a[101];
    memset(a, 'x', sizeof(a));
    assert_true(kiln_extism_plugin_var_set(p, "a", a, sizeof(a)));
    assert_int_equal(extism_plugin_call(p, "add", NULL, 0), 0);
    kiln_extism_plugin_vars_each(p, count_var, seen);
    assert_non_null(strstr(seen, "b=1;"));
    assert_int_not_equal(extism_plugin_call(p, "add", NULL, 0), 0);
    assert_non_null(strstr(extism_plugin_error(p), "Variable store is full"));
    assert_false(kiln_extism_plugin_var_set(p, "c", a, sizeof(a)));
    extism_plugin_free(p);

    /* an initial size over max_pages: the call fails with "oom" */
    snprintf(m, sizeof(m), fmt, guests, 16);
    p = extism_plugin_new((const uint8_t *)m, strlen(m), NULL, 0, false, &err);
    assert_non_null(p);
    assert_int_equal(extism_plugin_call(p, "pages", NULL, 0), -1);
    assert_non_null(strstr(extism_plugin_error(p), "oom"));
    kiln_err st;
    assert_int_equal(kiln_extism_plugin_status(p, &st), KILN_ETRAP);
    assert_int_equal(st.trap, KILN_TRAP_OUT_OF_MEMORY);
    extism_plugin_free(p);

    /* kiln_extism_options.err: the Kiln status without the errmsg prefix */
    kiln_err ce;
    kiln_extism_options ko;
    memset(&ko, 0, sizeof(ko));
    ko.err = &ce;
    const char *bad = "{\"wasm\": [], \"colour\": 1}";
    assert_null(kiln_extism_compiled_new((const uint8_t *)bad, strlen(bad), NULL, 0, false, &ko,
                                         NULL));
    assert_int_not_equal(ce.code, KILN_OK);
    assert_null(strstr(ce.msg, "Unable to compile"));
}

static void test_compiled_shared(void **state)
{
    (void)state;
    size_t len;
    uint8_t *wasm = slurp("vars.wasm", &len);
    char *err = NULL;
    ExtismCompiledPlugin *c = extism_compiled_plugin_new(wasm, len, NULL, 0, false, &err);
    free(wasm);
    assert_non_null(c);
    ExtismPlugin *a = extism_plugin_new_from_compiled(c, &err);
    ExtismPlugin *b = extism_plugin_new_from_compiled(c, &err);
    extism_compiled_plugin_free(c); /* plugins keep what they need */
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < 3; i++)
        assert_int_equal(extism_plugin_call(a, "count", NULL, 0), 0);
    assert_output(a, "3");
    /* vars are per plugin */
    assert_int_equal(extism_plugin_call(b, "count", NULL, 0), 0);
    assert_output(b, "1");
    /* vars from the host */
    assert_true(kiln_extism_plugin_var_set(b, "counter", (const uint8_t *)"41", 2));
    assert_int_equal(extism_plugin_call(b, "count", NULL, 0), 0);
    assert_output(b, "42");
    size_t vl;
    uint8_t *v = kiln_extism_plugin_var_get(b, "counter", &vl);
    assert_non_null(v);
    assert_int_equal(vl, 2);
    assert_memory_equal(v, "42", 2);
    free(v);
    assert_null(kiln_extism_plugin_var_get(b, "absent", &vl));
    /* reset forgets the output, keeps the plugin usable */
    assert_true(extism_plugin_reset(a));
    assert_int_equal(extism_plugin_output_length(a), 0);
    assert_int_equal(extism_plugin_call(a, "count", NULL, 0), 0);
    assert_output(a, "4");
    extism_plugin_free(a);
    extism_plugin_free(b);
}

/* Thread model (embed.md "Thread model", as Extism documents it): a compiled
 * plugin is shared by threads, each making its own plugins from it; one
 * plugin used by several threads has its calls serialised by its lock. */
typedef struct worker {
    ExtismCompiledPlugin *c; /* own plugin from c, or ... */
    ExtismPlugin *shared;    /* ... this one, shared */
    int calls, failed;
    char last[16];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char *err = NULL;
    ExtismPlugin *p = w->shared ? w->shared : extism_plugin_new_from_compiled(w->c, &err);
    if (p == NULL) {
        w->failed = -1;
        return NULL;
    }
    for (int i = 0; i < w->calls; i++)
        if (extism_plugin_call(p, "count", NULL, 0) != 0)
            w->failed++;
    if (w->shared == NULL) {
        size_t n = (size_t)extism_plugin_output_length(p);
        snprintf(w->last, sizeof(w->last), "%.*s", (int)(n < 15 ? n : 15),
                 (const char *)extism_plugin_output_data(p));
        extism_plugin_free(p);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    size_t len;
    uint8_t *wasm = slurp("vars.wasm", &len);
    char *err = NULL;
    ExtismCompiledPlugin *c = extism_compiled_plugin_new(wasm, len, NULL, 0, false, &err);
    free(wasm);
    assert_non_null(c);
    enum { N = 4, CALLS = 300 };
    worker w[N];
    pthread_t th[N];
    /* one compiled plugin, a plugin per thread: each counts alone */
    for (int i = 0; i < N; i++) {
        w[i] = (worker){.c = c, .calls = CALLS};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failed, 0);
        assert_string_equal(w[i].last, "300");
    }
    /* one plugin, four threads: no call lost or doubled */
    ExtismPlugin *p = extism_plugin_new_from_compiled(c, &err);
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        w[i] = (worker){.shared = p, .calls = CALLS};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failed, 0);
    }
    assert_int_equal(extism_plugin_call(p, "count", NULL, 0), 0);
    assert_output(p, "1201");
    extism_plugin_free(p);
    extism_compiled_plugin_free(c);
}

/* ---- host functions ------------------------------------------------------------------ */

typedef struct counter {
    int calls;
    int freed;
    void *seen_ctx;
} counter;

static void free_counter(void *p)
{
    ((counter *)p)->freed++;
}

/* hello_world(i64 block) -> i64 block: upper-cases the input into a new block. */
static void hello_world(ExtismCurrentPlugin *cp, const ExtismVal *in, ExtismSize n_in,
                        ExtismVal *out, ExtismSize n_out, void *data)
{
    counter *c = data;
    c->calls++;
    c->seen_ctx = extism_current_plugin_host_context(cp);
    assert_int_equal(n_in, 1);
    assert_int_equal(n_out, 1);
    assert_int_equal(in[0].t, I64);
    ExtismMemoryHandle h = (ExtismMemoryHandle)in[0].v.i64;
    ExtismSize len = extism_current_plugin_memory_length(cp, h);
    /* not the start of a live block: 0 */
    assert_int_equal(extism_current_plugin_memory_length(cp, h + 1), 0);
    assert_int_equal(extism_current_plugin_memory_length(cp, 0), 0);
    /* over the memory limit: 0, nothing allocated */
    assert_int_equal(extism_current_plugin_memory_alloc(cp, (ExtismSize)1 << 40), 0);
    char buf[256];
    assert_true(len < sizeof(buf));
    memcpy(buf, extism_current_plugin_memory(cp) + h, len);
    ExtismMemoryHandle o = extism_current_plugin_memory_alloc(cp, len + 1);
    assert_int_not_equal(o, 0);
    uint8_t *mem = extism_current_plugin_memory(cp); /* may have moved */
    for (ExtismSize i = 0; i < len; i++)
        mem[o + i] = (uint8_t)(buf[i] >= 'a' && buf[i] <= 'z' ? buf[i] - 32 : buf[i]);
    mem[o + len] = '!';
    ExtismMemoryHandle tmp = extism_current_plugin_memory_alloc(cp, 8);
    assert_int_equal(extism_current_plugin_memory_length(cp, tmp), 8);
    extism_current_plugin_memory_free(cp, tmp);
    assert_int_equal(extism_current_plugin_memory_length(cp, tmp), 0);
    out[0].t = I64;
    out[0].v.i64 = (int64_t)o;
}

static void mix(ExtismCurrentPlugin *cp, const ExtismVal *in, ExtismSize n_in, ExtismVal *out,
                ExtismSize n_out, void *data)
{
    (void)cp, (void)data;
    assert_int_equal(n_in, 4);
    assert_int_equal(in[0].v.i32, -3);
    assert_true(in[1].v.i64 == 5000000000LL);
    assert_true(in[2].v.f32 == 1.5f);
    assert_true(in[3].v.f64 == 0.25);
    out[0].v.f64 = in[0].v.i32 + (double)in[1].v.i64 + in[2].v.f32 + in[3].v.f64;
    (void)n_out;
}

static void test_host_functions(void **state)
{
    (void)state;
    counter c = {0, 0, NULL};
    ExtismValType i64 = PTR;
    ExtismFunction *hw =
        extism_function_new("hello_world", &i64, 1, &i64, 1, hello_world, &c, free_counter);
    ExtismValType mt[4] = {I32, I64, F32, F64}, rt = F64;
    ExtismFunction *mx = extism_function_new("mix", mt, 4, &rt, 1, mix, NULL, NULL);
    extism_function_set_namespace(mx, "calc");
    const ExtismFunction *fns[1] = {hw};
    ExtismPlugin *p = load("hostfn.wasm", fns, 1, false);
    /* a function belongs to one plugin */
    size_t len;
    uint8_t *wasm = slurp("hostfn.wasm", &len);
    char *err = NULL;
    assert_null(extism_plugin_new(wasm, len, fns, 1, false, &err));
    assert_non_null(strstr(err, "multiple different Plugins"));
    extism_plugin_new_error_free(err);
    free(wasm);
    /* the caller may free its handles at once; the plugin keeps the function */
    extism_function_free(hw);
    assert_int_equal(c.freed, 0);

    int ctx_marker;
    assert_int_equal(extism_plugin_call_with_host_context(p, "shout", (const uint8_t *)"hey", 3,
                                                          &ctx_marker),
                     0);
    assert_output(p, "HEY!");
    assert_ptr_equal(c.seen_ctx, &ctx_marker);
    assert_int_equal(extism_plugin_call(p, "shout", (const uint8_t *)"abc", 3), 0);
    assert_output(p, "ABC!");
    assert_null(c.seen_ctx);
    assert_int_equal(c.calls, 2);
    extism_plugin_free(p);
    assert_int_equal(c.freed, 1); /* the destructor ran once, on free */
    const ExtismFunction *mfns[1] = {mx};
    p = load("hostfn_mix.wasm", mfns, 1, false);
    extism_function_free(mx);
    assert_int_equal(extism_plugin_call(p, "mixed", NULL, 0), 0);
    assert_output(p, "4999999998"); /* -3 + 5e9 + 1.5 + 0.25, truncated */
    extism_plugin_free(p);

    /* a missing host function: the import is named */
    p = NULL;
    wasm = slurp("hostfn.wasm", &len);
    assert_null(extism_plugin_new(wasm, len, NULL, 0, false, &err));
    assert_non_null(strstr(err, "extism:host/user.hello_world"));
    extism_plugin_new_error_free(err);
    /* an unsupported type is refused, the function stays the caller's */
    counter c2 = {0, 0, NULL};
    ExtismValType v128 = V128;
    ExtismFunction *bad =
        extism_function_new("hello_world", &v128, 1, &i64, 1, hello_world, &c2, free_counter);
    const ExtismFunction *bfns[1] = {bad};
    assert_null(extism_plugin_new(wasm, len, bfns, 1, false, &err));
    assert_non_null(strstr(err, "V128"));
    extism_plugin_new_error_free(err);
    free(wasm);
    assert_int_equal(c2.freed, 0);
    extism_function_free(bad);
    assert_int_equal(c2.freed, 1); /* never registered: freed with its handle */
}

/* ---- cancel, logging ------------------------------------------------------------------ */

static void *canceller(void *arg)
{
    const ExtismCancelHandle *h = arg;
    struct timespec ts = {0, 200 * 1000000};
    nanosleep(&ts, NULL);
    extism_plugin_cancel(h);
    return NULL;
}

static void test_cancel(void **state)
{
    (void)state;
    ExtismPlugin *p = load("loop.wasm", NULL, 0, false);
    const ExtismCancelHandle *h = extism_plugin_cancel_handle(p);
    assert_non_null(h);
    assert_true(extism_plugin_cancel(h)); /* nothing running: no effect on later calls */
    pthread_t th;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_create(&th, NULL, canceller, (void *)h);
    assert_int_equal(extism_plugin_call(p, "loop", NULL, 0), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(th, NULL);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(s >= 0.15 && s < 5);
    assert_non_null(strstr(extism_plugin_error(p), "cancelled"));
    assert_int_equal(kiln_extism_plugin_status(p, NULL), KILN_ECANCELED);
    /* a cancelled plugin can be called again (on a fresh instance) */
    assert_true(extism_plugin_function_exists(p, "loop"));
    extism_plugin_free(p);
    p = load("greet.wasm", NULL, 0, false);
    assert_int_equal(extism_plugin_call(p, "greet", (const uint8_t *)"x", 1), 0);
    assert_output(p, "Hello, x!");
    extism_plugin_free(p);
}

static int drained;
static void drain(const char *line, ExtismSize n)
{
    if (strstr(line, "an info line") != NULL && n == strlen(line))
        drained++;
}

static void test_log(void **state)
{
    (void)state;
    char path[900];
    snprintf(path, sizeof(path), "%s/embed-log-%d.txt", guests, (int)getpid());
    unlink(path);
    assert_false(extism_log_file(path, "loud"));
    assert_true(extism_log_file(path, "info"));
    ExtismPlugin *p = load("fail.wasm", NULL, 0, false);
    assert_int_equal(extism_plugin_call(p, "log", NULL, 0), 0);
    extism_plugin_free(p);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    assert_non_null(strstr(buf, " INFO plugin: an info line"));
    assert_non_null(strstr(buf, "an info line"));
    assert_null(strstr(buf, "a debug line")); /* below the level */

    assert_true(extism_log_custom("debug"));
    p = load("fail.wasm", NULL, 0, false);
    assert_int_equal(extism_plugin_call(p, "log", NULL, 0), 0);
    extism_plugin_free(p);
    drained = 0;
    extism_log_drain(drain);
    assert_int_equal(drained, 1);
    extism_log_drain(drain); /* drained lines are gone */
    assert_int_equal(drained, 1);
    assert_true(extism_log_file("stderr", "error"));
}

/* Several modules in one manifest, linked by name: every plugin made from
 * the compiled plugin gets fresh dependency instances, kept with its main
 * instance across calls; circular imports are refused naming the cycle. */
static void test_linked_modules(void **state)
{
    (void)state;
    char m[2000];
    snprintf(m, sizeof(m),
             "{\"wasm\": [{\"path\": \"%s/link_lib.wasm\", \"name\": \"lib\"}, "
             "{\"path\": \"%s/link_main.wasm\", \"name\": \"main\"}]}",
             guests, guests);
    char *err = NULL;
    ExtismCompiledPlugin *c =
        extism_compiled_plugin_new((const uint8_t *)m, strlen(m), NULL, 0, false, &err);
    if (c == NULL)
        fail_msg("%s", err);
    ExtismPlugin *p1 = extism_plugin_new_from_compiled(c, &err);
    ExtismPlugin *p2 = extism_plugin_new_from_compiled(c, &err);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_true(extism_plugin_function_exists(p1, "shout"));
    assert_false(extism_plugin_function_exists(p1, "upper")); /* lib's, not the plugin's */
    assert_int_equal(extism_plugin_call(p1, "shout", (const uint8_t *)"abc", 3), 0);
    assert_output(p1, "ABC #1");
    assert_int_equal(extism_plugin_call(p1, "shout", (const uint8_t *)"d", 1), 0);
    assert_output(p1, "D #2");
    assert_int_equal(extism_plugin_call(p2, "shout", (const uint8_t *)"e", 1), 0);
    assert_output(p2, "E #1");
    extism_plugin_free(p1);
    extism_plugin_free(p2);
    extism_compiled_plugin_free(c);

    snprintf(m, sizeof(m),
             "{\"wasm\": [{\"path\": \"%s/link_cyc_a.wasm\", \"name\": \"a\"}, "
             "{\"path\": \"%s/link_cyc_b.wasm\", \"name\": \"b\"}]}",
             guests, guests);
    assert_null(extism_plugin_new((const uint8_t *)m, strlen(m), NULL, 0, false, &err));
    assert_non_null(strstr(err, "circular imports between modules: b -> a -> b"));
    extism_plugin_new_error_free(err);

    snprintf(m, sizeof(m),
             "{\"wasm\": [{\"path\": \"%s/link_lib.wasm\", \"name\": \"x\"}, "
             "{\"path\": \"%s/link_main.wasm\", \"name\": \"x\"}]}",
             guests, guests);
    assert_null(extism_plugin_new((const uint8_t *)m, strlen(m), NULL, 0, false, &err));
    assert_non_null(strstr(err, "Duplicate module name found in Extism manifest: x"));
    extism_plugin_new_error_free(err);
}

/* kiln_extism_options.kv_db: Otoroshi's datastore functions get a store. */
static void test_kv_db(void **state)
{
    (void)state;
    char dir[] = "/tmp/kiln-embed-kv-XXXXXX", db[64];
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/kv.db", dir);
    size_t len;
    uint8_t *wasm = slurp("pl_echo.wasm", &len);
    kiln_extism_options o;
    memset(&o, 0, sizeof(o));
    o.otoroshi = true;
    o.kv_db = db;
    char *err = NULL;
    ExtismCompiledPlugin *c = kiln_extism_compiled_new(wasm, len, NULL, 0, false, &o, &err);
    free(wasm);
    if (c == NULL)
        fail_msg("%s", err);
    ExtismPlugin *p = extism_plugin_new_from_compiled(c, &err);
    assert_non_null(p);
    for (int i = 1; i <= 2; i++) {
        assert_int_equal(extism_plugin_call(p, "call_backend", (const uint8_t *)"{}", 2), 0);
        char want[32];
        snprintf(want, sizeof(want), "\"X-Hits\":\"%d\"", i);
        char *out = strndup((const char *)extism_plugin_output_data(p),
                            (size_t)extism_plugin_output_length(p));
        assert_non_null(strstr(out, want));
        free(out);
    }
    extism_plugin_free(p);
    extism_compiled_plugin_free(c);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- what the tests above leave out ---------------------------------------------------- */

/* extism_plugin_id, extism_version, extism_error, the NULL answers, the
 * fuel-limit refusal and new_from_compiled's errors. */
static void test_id_version_misc(void **state)
{
    (void)state;
    size_t len;
    uint8_t *wasm = slurp("greet.wasm", &len);
    char *err = (char *)"sentinel";
    ExtismCompiledPlugin *c = extism_compiled_plugin_new(wasm, len, NULL, 0, false, &err);
    assert_non_null(c);
    ExtismPlugin *a = extism_plugin_new_from_compiled(c, &err);
    assert_non_null(a);
    assert_null(err); /* cleared on success */
    ExtismPlugin *b = extism_plugin_new_from_compiled(c, &err);
    assert_non_null(b);
    extism_compiled_plugin_free(c);
    extism_compiled_plugin_free(NULL); /* no-op */

    /* ids: 16 bytes, a UUIDv4 (version 4, RFC 4122 variant), one per plugin,
     * stable across calls */
    const uint8_t *ia = extism_plugin_id(a), *ib = extism_plugin_id(b);
    assert_non_null(ia);
    assert_non_null(ib);
    assert_int_equal(ia[6] >> 4, 4);
    assert_int_equal(ia[8] & 0xc0, 0x80);
    assert_int_equal(ib[6] >> 4, 4);
    assert_memory_not_equal(ia, ib, 16);
    uint8_t saved[16];
    memcpy(saved, ia, 16);
    assert_int_equal(extism_plugin_call(a, "greet", (const uint8_t *)"id", 2), 0);
    assert_ptr_equal(extism_plugin_id(a), ia);
    assert_memory_equal(extism_plugin_id(a), saved, 16);
    assert_null(extism_plugin_id(NULL));

    /* extism_error is extism_plugin_error */
    assert_null(extism_error(a));
    assert_int_equal(extism_plugin_call(a, "nope", NULL, 0), -1);
    assert_non_null(extism_error(a));
    assert_ptr_equal(extism_error(a), extism_plugin_error(a));
    assert_non_null(strstr(extism_error(a), "Function not found: nope"));
    assert_null(extism_error(b)); /* per plugin */
    extism_plugin_free(a);
    extism_plugin_free(b);
    extism_plugin_free(NULL);

    /* "1.x.y-kiln" then Kiln's version */
    assert_string_equal(extism_version(), "1.9.0-kiln" KILN_VERSION);
    assert_ptr_equal(extism_version(), extism_version());

    /* fuel limits: always refused, with the reason and the alternative,
     * even for a valid module; a NULL errmsg is allowed */
    err = NULL;
    assert_null(extism_plugin_new_with_fuel_limit(wasm, len, NULL, 0, false, 1000000, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "fuel limits are not supported by Kiln"));
    assert_non_null(strstr(err, "timeout_ms"));
    extism_plugin_new_error_free(err);
    assert_null(extism_plugin_new_with_fuel_limit(wasm, len, NULL, 0, true, 1, NULL));
    extism_plugin_new_error_free(NULL); /* no-op */
    free(wasm);

    err = NULL;
    assert_null(extism_plugin_new_from_compiled(NULL, &err));
    assert_non_null(strstr(err, "no compiled plugin"));
    extism_plugin_new_error_free(err);
    /* a constructor failure with errmsg NULL is still just NULL */
    assert_null(extism_plugin_new((const uint8_t *)"nonsense", 8, NULL, 0, false, NULL));
}

/* extism_function_set_namespace: the import is matched by namespace and
 * name; NULLs and a call after the function was given away are no-ops. */
static void test_function_namespace(void **state)
{
    (void)state;
    counter c = {0, 0, NULL};
    ExtismValType i64 = PTR;
    ExtismFunction *hw =
        extism_function_new("hello_world", &i64, 1, &i64, 1, hello_world, &c, free_counter);
    assert_non_null(hw);
    extism_function_set_namespace(hw, "other");
    extism_function_set_namespace(hw, NULL);
    extism_function_set_namespace(NULL, "x");
    const ExtismFunction *fns[1] = {hw};
    size_t len;
    uint8_t *wasm = slurp("hostfn.wasm", &len);
    char *err = NULL;
    /* other.hello_world does not satisfy extism:host/user.hello_world */
    assert_null(extism_plugin_new(wasm, len, fns, 1, false, &err));
    assert_non_null(strstr(err, "extism:host/user.hello_world"));
    extism_plugin_new_error_free(err);
    /* the failed plugin took the function (as Extism's plugins do) and
     * released it: it cannot be given again, its destructor ran once */
    assert_null(extism_plugin_new(wasm, len, fns, 1, false, &err));
    assert_non_null(strstr(err, "multiple different Plugins"));
    extism_plugin_new_error_free(err);
    extism_function_free(hw);
    assert_int_equal(c.freed, 1);
    /* the default namespace given explicitly: accepted */
    c.freed = 0;
    hw = extism_function_new("hello_world", &i64, 1, &i64, 1, hello_world, &c, free_counter);
    extism_function_set_namespace(hw, "extism:host/user");
    fns[0] = hw;
    ExtismPlugin *p = extism_plugin_new(wasm, len, fns, 1, false, &err);
    free(wasm);
    if (p == NULL)
        fail_msg("%s", err);
    /* given to a plugin: a later namespace has no effect */
    extism_function_set_namespace(hw, "late");
    extism_function_free(hw);
    extism_function_free(NULL);
    assert_int_equal(extism_plugin_call(p, "shout", (const uint8_t *)"ns", 2), 0);
    assert_output(p, "NS!");
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.freed, 0);
    extism_plugin_free(p);
    assert_int_equal(c.freed, 1);
    assert_null(extism_function_new(NULL, NULL, 0, NULL, 0, hello_world, NULL, NULL));
}

/* Cancel with no call running: true, and no effect on the next calls. */
static void test_cancel_idle(void **state)
{
    (void)state;
    ExtismPlugin *p = load("greet.wasm", NULL, 0, false);
    const ExtismCancelHandle *h = extism_plugin_cancel_handle(p);
    assert_non_null(h);
    assert_ptr_equal(extism_plugin_cancel_handle(p), h); /* one per plugin */
    assert_true(extism_plugin_cancel(h));
    assert_true(extism_plugin_cancel(h));
    assert_int_equal(extism_plugin_call(p, "greet", (const uint8_t *)"a", 1), 0);
    assert_output(p, "Hello, a!");
    assert_int_equal(extism_plugin_call(p, "greet", (const uint8_t *)"b", 1), 0);
    assert_output(p, "Hello, b!");
    assert_null(extism_plugin_cancel_handle(NULL));
    assert_false(extism_plugin_cancel(NULL));
    extism_plugin_free(p);
}

/* WASI off: a module importing WASI is refused, naming the imports; on: it
 * runs, and what it prints is not the output. */
static void test_wasi_on_off(void **state)
{
    (void)state;
    size_t len;
    uint8_t *wasm = slurp("wasi_log.wasm", &len);
    char *err = NULL;
    assert_null(extism_plugin_new(wasm, len, NULL, 0, false, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "Unable to compile Extism plugin"));
    assert_non_null(strstr(err, "wasi_snapshot_preview1.fd_write"));
    assert_non_null(strstr(err, "not provided"));
    extism_plugin_new_error_free(err);
    ExtismCompiledPlugin *c = extism_compiled_plugin_new(wasm, len, NULL, 0, false, &err);
    assert_null(c);
    assert_non_null(strstr(err, "wasi_snapshot_preview1.fd_write"));
    extism_plugin_new_error_free(err);

    ExtismPlugin *p = extism_plugin_new(wasm, len, NULL, 0, true, &err);
    free(wasm);
    if (p == NULL)
        fail_msg("%s", err);
    assert_int_equal(extism_plugin_call(p, "run", NULL, 0), 0);
    assert_output(p, "output");
    assert_null(extism_plugin_error(p));
    extism_plugin_free(p);

    /* a module without WASI imports works either way */
    p = load("greet.wasm", NULL, 0, true);
    assert_int_equal(extism_plugin_call(p, "greet", (const uint8_t *)"w", 1), 0);
    assert_output(p, "Hello, w!");
    extism_plugin_free(p);
}

static int drain_calls;
static void count_drain(const char *line, ExtismSize n)
{
    (void)line, (void)n;
    drain_calls++;
}

/* extism_log_custom's level check; extism_log_drain with nothing buffered
 * or a NULL handler. */
static void test_log_drain_edges(void **state)
{
    (void)state;
    assert_false(extism_log_custom("loud"));
    assert_true(extism_log_custom("info"));
    drain_calls = 0;
    extism_log_drain(count_drain);
    assert_int_equal(drain_calls, 0);
    ExtismPlugin *p = load("fail.wasm", NULL, 0, false);
    assert_int_equal(extism_plugin_call(p, "log", NULL, 0), 0);
    extism_plugin_free(p);
    extism_log_drain(NULL); /* no-op: the lines stay */
    extism_log_drain(count_drain);
    assert_int_equal(drain_calls, 2); /* info and warn; the debug line is below the level */
    assert_true(extism_log_file("stderr", "error"));
}

/* A one-connection-at-a-time HTTP server answering with a known header. */
static void *http_serve(void *arg)
{
    int ls = *(int *)arg;
    for (int i = 0; i < 2; i++) {
        int s = accept(ls, NULL, NULL);
        if (s < 0)
            break;
        char buf[4096];
        size_t got = 0;
        while (got < sizeof(buf) - 1) {
            ssize_t r = recv(s, buf + got, sizeof(buf) - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n") != NULL)
                break;
        }
        const char *resp = "HTTP/1.1 200 OK\r\nX-Embed-Test: yes\r\nContent-Length: 2\r\n"
                           "Connection: close\r\n\r\nok";
        ssize_t w = send(s, resp, strlen(resp), MSG_NOSIGNAL);
        (void)w;
        close(s);
    }
    return NULL;
}

/* extism_plugin_allow_http_response_headers: http_headers() gives nothing
 * before, the response's headers after. */
static void test_allow_http_response_headers(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(ls, 4), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    pthread_t th;
    pthread_create(&th, NULL, http_serve, &ls);

    char m[1200], url[64];
    snprintf(m, sizeof(m),
             "{\"wasm\": [{\"path\": \"%s/http.wasm\"}], \"allowed_hosts\": [\"127.0.0.1\"]}",
             guests);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/h", (int)ntohs(sa.sin_port));
    char *err = NULL;
    ExtismPlugin *p = extism_plugin_new((const uint8_t *)m, strlen(m), NULL, 0, false, &err);
    if (p == NULL)
        fail_msg("%s", err);
    assert_int_equal(extism_plugin_call(p, "headers", (const uint8_t *)url, strlen(url)), 0);
    assert_output(p, "{}");
    extism_plugin_allow_http_response_headers(p);
    extism_plugin_allow_http_response_headers(NULL); /* no-op */
    assert_int_equal(extism_plugin_call(p, "headers", (const uint8_t *)url, strlen(url)), 0);
    char *out = strndup((const char *)extism_plugin_output_data(p),
                        (size_t)extism_plugin_output_length(p));
    pthread_join(th, NULL);
    close(ls);
    if (strstr(out, "\"x-embed-test\":\"yes\"") == NULL)
        fail_msg("headers: %s", out);
    assert_non_null(strstr(out, "\"content-length\":\"2\""));
    free(out);
    extism_plugin_free(p);
}

int main(void)
{
    const char *build = getenv("KILN_BUILD") ? getenv("KILN_BUILD") : "build";
    const char *root = getenv("KILN_ROOT") ? getenv("KILN_ROOT") : ".";
    snprintf(guests, sizeof(guests), "%s/guests_extism", build);
    char cmd[2000];
    snprintf(cmd, sizeof(cmd), "sh %s/tests/guests_extism/build.sh %s >/dev/null", root, guests);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot build the Extism test guests: %s\n", cmd);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_call_output_error),
        cmocka_unit_test(test_manifest_and_config),
        cmocka_unit_test(test_manifest_limits_and_vars),
        cmocka_unit_test(test_compiled_shared),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_host_functions),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_linked_modules),
        cmocka_unit_test(test_kv_db),
        cmocka_unit_test(test_id_version_misc),
        cmocka_unit_test(test_function_namespace),
        cmocka_unit_test(test_cancel_idle),
        cmocka_unit_test(test_wasi_on_off),
        cmocka_unit_test(test_log_drain_edges),
        cmocka_unit_test(test_allow_http_response_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
