/*
 * test_opa.c - the OPA ABI (src/abi/opa) driven directly: prepare and
 * stage on synthetic requests (allow, deny with the policy's status and
 * message, entrypoints by name and by id), the backend answer, the ABI 1.2
 * fast path and the eval-context path, traps (opa_abort, bad guest
 * addresses, undeclared builtins), refusal of modules that lack exports or
 * need builtins, the decision rule on its own.
 *
 * The policies are hand-written in C (tests/guests_opa/policy.c, built by
 * tests/guests_opa/build.sh) because `opa build -t wasm` is not available
 * offline; they implement the OPA Wasm ABI exports as OPA's compiler does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "abi/opa/opa.h"
#include "base/alloc.h"
#include "kiln/handler.h"
#include "support/wat.h"

extern const kiln_abi_ops kiln_abi_opa;
extern const kiln_abi_ops kiln_abi_extism;

typedef struct env {
    kiln_module *m;
    kiln_instance_pre *pre;
} env;

enum { P_FAST, P_CTX, P_HOSTILE, P_BUILTINS, N_POLICIES };
static const char *const policy_files[N_POLICIES] = {"policy", "policy_ctx", "policy_hostile",
                                                     "policy_builtins"};
static env envs[N_POLICIES];
static kiln_linker *linker;

static int load(const char *dir, const char *name, env *e)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.wasm", dir, name);
    kiln_aot_options o = {0};
    o.opt_level = 1;
    o.cc = getenv("KILN_TEST_CC") ? getenv("KILN_TEST_CC") : "cc";
    o.imports = linker;
    kiln_err err;
    if (kiln_aot_load_file(path, &o, &e->m, &err) != KILN_OK ||
        kiln_instance_pre_new(e->m, linker, &e->pre, &err) != KILN_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    const char *root = getenv("KILN_ROOT") ? getenv("KILN_ROOT") : ".";
    const char *build = getenv("KILN_BUILD") ? getenv("KILN_BUILD") : "/tmp";
    char dir[700], cmd[1600];
    snprintf(dir, sizeof(dir), "%s/guests_opa", build);
    snprintf(cmd, sizeof(cmd), "sh %s/tests/guests_opa/build.sh %s >/dev/null", root, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot build the OPA test policies: %s\n", cmd);
        return -1;
    }
    size_t n;
    const kiln_hostfn *h = kiln_abi_opa.hostfns(&n);
    if (kiln_linker_new(&linker) != KILN_OK || kiln_linker_define_host(linker, h, n) != KILN_OK)
        return -1;
    for (int i = 0; i < N_POLICIES; i++)
        if (load(dir, policy_files[i], &envs[i]) != 0)
            return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_POLICIES; i++) {
        kiln_instance_pre_free(envs[i].pre);
        kiln_module_release(envs[i].m);
    }
    kiln_linker_free(linker);
    return 0;
}

static kiln_function make_fn(void)
{
    kiln_function fn;
    memset(&fn, 0, sizeof(fn));
    fn.name = "policy";
    fn.limits.timeout_ms = 5000;
    return fn;
}

typedef struct outcome {
    int rc;
    int verdict;
    int status;
    char body[512];
    kiln_err err;
} outcome;

/* One access stage of a prepared policy on a synthetic request. */
static void stage_once(kiln_function *fn, void *st_policy, int which, const char *method,
                       const char *path, const char *role, const char *config_json, outcome *o)
{
    memset(o, 0, sizeof(*o));
    kiln_kv hdr[2] = {{"host", "example.test"}, {"x-role", role}};
    kiln_request req = {0};
    req.method = method;
    req.url = path;
    req.path = path;
    req.query = "";
    req.host = "example.test";
    req.remote_addr = "127.0.0.1";
    req.headers = hdr;
    req.n_headers = role ? 2 : 1;
    kiln_stage_info info = {"/", NULL, "backend", 404, NULL};
    kiln_stage *st = NULL;
    assert_int_equal(kiln_stage_new(&req, &info, 1 << 20, &st), KILN_OK);
    kiln_plugin plugin = {"policy", KILN_STAGE_ACCESS, config_json ? config_json : "{}", NULL, 0};
    o->verdict = -1;
    o->rc = kiln_abi_opa.stage(fn, st_policy, envs[which].pre, &plugin, KILN_PHASE_REQUEST, st,
                               &o->verdict, &o->err);
    kiln_response *r = kiln_stage_response(st);
    o->status = r->status;
    snprintf(o->body, sizeof(o->body), "%.*s", (int)r->body_len, (const char *)r->body);
    kiln_stage_free(st);
}

/* Evaluations start from an image (snapshot: true) while set. */
static bool with_snapshot;

/* prepare (+ snapshot) + one access stage + release on a synthetic request. */
static void run_stage(int which, const char *method, const char *path, const char *role,
                      const char *config_json, outcome *o)
{
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    memset(o, 0, sizeof(*o));
    kiln_function fn = make_fn();
    void *st_policy = NULL;
    o->rc = kiln_abi_opa.prepare(&fn, envs[which].m, &st_policy, &o->err);
    if (o->rc == KILN_OK && with_snapshot) {
        o->rc = kiln_abi_opa.snapshot(&fn, st_policy, envs[which].pre, &o->err);
        assert_int_equal(o->rc, KILN_OK);
        assert_non_null(strstr(o->err.msg, "snapshot image built in memory"));
    }
    if (o->rc == KILN_OK)
        stage_once(&fn, st_policy, which, method, path, role, config_json, o);
    kiln_abi_opa.release(st_policy);
}

static void assert_denied(const outcome *o, int status, const char *message)
{
    assert_int_equal(o->rc, KILN_OK);
    assert_int_equal(o->verdict, KILN_STAGE_RESPOND);
    assert_int_equal(o->status, status);
    json_t *j = json_loads(o->body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "error")), message);
    assert_string_equal(json_string_value(json_object_get(j, "plugin")), "policy");
    json_decref(j);
}

static void test_detect(void **state)
{
    (void)state;
    assert_string_equal(kiln_abi_opa.name, "opa");
    assert_true(kiln_abi_opa.detect(envs[P_FAST].m) > 0);
    assert_true(kiln_abi_opa.detect(envs[P_CTX].m) > kiln_abi_extism.detect(envs[P_CTX].m));
    assert_ptr_equal(kiln_abi_detect(envs[P_FAST].m)->name, kiln_abi_find("opa")->name);
    assert_string_equal(kiln_abi_opa.stage_export(KILN_STAGE_ACCESS), "");
    assert_null(kiln_abi_opa.stage_export(KILN_STAGE_REQUEST));
    assert_null(kiln_abi_opa.stage_export(KILN_STAGE_FILTER));
}

/* Entrypoint 0 (a boolean): allowed, or 403 with Kiln's default message. */
static void check_allow_rule(int which)
{
    outcome o;
    run_stage(which, "GET", "/public/a", NULL, NULL, &o);
    assert_int_equal(o.rc, KILN_OK);
    assert_int_equal(o.verdict, KILN_STAGE_CONTINUE);
    run_stage(which, "DELETE", "/private", "admin", NULL, &o);
    assert_int_equal(o.verdict, KILN_STAGE_CONTINUE);
    run_stage(which, "POST", "/public/a", NULL, NULL, &o);
    assert_denied(&o, 403, "forbidden by policy");
    run_stage(which, "GET", "/private", "user", NULL, &o);
    assert_denied(&o, 403, "forbidden by policy");
}

static void test_allow_deny_fast_path(void **state)
{
    (void)state;
    check_allow_rule(P_FAST);
}

static void test_allow_deny_eval_context(void **state)
{
    (void)state;
    kiln_function fn = make_fn();
    opa_policy *p = NULL;
    kiln_err err;
    assert_int_equal(opa_policy_new("policy", envs[P_CTX].m, &fn.limits, &p, &err), KILN_OK);
    assert_false(p->fast_path);
    assert_int_equal(p->abi_minor, 1);
    opa_policy_free(p);
    assert_int_equal(opa_policy_new("policy", envs[P_FAST].m, &fn.limits, &p, &err), KILN_OK);
    assert_true(p->fast_path);
    assert_int_equal(p->n_entrypoints, 2);
    opa_policy_free(p);
    check_allow_rule(P_CTX);
}

/* Entrypoint 1 (an object) by name and by id: the policy's status and message. */
static void test_entrypoints(void **state)
{
    (void)state;
    const char *cfgs[] = {"{\"entrypoint\": \"kiln/authz/decision\"}", "{\"entrypoint\": 1}",
                          "{\"entrypoint\": \"1\"}"};
    for (int w = P_FAST; w <= P_CTX; w++) {
        for (size_t i = 0; i < 3; i++) {
            outcome o;
            run_stage(w, "PUT", "/x", "user", cfgs[i], &o);
            assert_denied(&o, 401, "admin role or public GET required");
            run_stage(w, "PUT", "/x", "admin", cfgs[i], &o);
            assert_int_equal(o.rc, KILN_OK);
            assert_int_equal(o.verdict, KILN_STAGE_CONTINUE);
        }
    }
    outcome o;
    run_stage(P_FAST, "GET", "/public", NULL, "{\"entrypoint\": \"kiln/authz/allow\"}", &o);
    assert_int_equal(o.verdict, KILN_STAGE_CONTINUE);
    run_stage(P_FAST, "GET", "/x", NULL, "{\"entrypoint\": \"nope\"}", &o);
    assert_int_equal(o.rc, KILN_ECONFIG);
    assert_non_null(strstr(o.err.msg, "kiln/authz/decision"));
    run_stage(P_FAST, "GET", "/x", NULL, "{\"entrypoint\": 9}", &o);
    assert_int_equal(o.rc, KILN_ECONFIG);
    run_stage(P_FAST, "GET", "/x", NULL, "{\"entrypoint\": true}", &o);
    assert_int_equal(o.rc, KILN_ECONFIG);
}

/* As a backend: 200 with the result set. */
static void test_backend(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_function fn = make_fn();
    kiln_kv cfg[1] = {{"entrypoint", "kiln/authz/decision"}};
    fn.config = cfg;
    fn.n_config = 1;
    void *sp = NULL;
    kiln_err err;
    assert_int_equal(kiln_abi_opa.prepare(&fn, envs[P_FAST].m, &sp, &err), KILN_OK);
    kiln_request req = {0};
    req.method = "GET";
    req.url = req.path = "/public/doc";
    req.query = "";
    kiln_response resp;
    kiln_response_init(&resp, 1 << 20);
    assert_int_equal(kiln_abi_opa.handle(&fn, sp, envs[P_FAST].pre, &req, &resp, &err), KILN_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.headers[0].value, "application/json");
    json_t *j = json_loadb((const char *)resp.body, resp.body_len, 0, NULL);
    json_t *r = json_object_get(json_array_get(j, 0), "result");
    assert_true(json_is_true(json_object_get(r, "allow")));
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 401);
    json_decref(j);
    kiln_response_fini(&resp);
    kiln_abi_opa.release(sp);
}

static void test_traps(void **state)
{
    (void)state;
    outcome o;
    run_stage(P_HOSTILE, "GET", "/x", NULL, "{\"entrypoint\": \"kiln/test/abort\"}", &o);
    assert_int_equal(o.rc, KILN_ETRAP);
    assert_int_equal(o.err.trap, KILN_TRAP_HOST);
    assert_non_null(strstr(o.err.msg, "policy aborted on purpose"));
    assert_int_equal(o.verdict, KILN_STAGE_CONTINUE); /* untouched: the server fails the request */

    run_stage(P_HOSTILE, "GET", "/x", NULL, "{\"entrypoint\": \"kiln/test/abort_bad_address\"}",
              &o);
    assert_int_equal(o.rc, KILN_ETRAP);
    assert_non_null(strstr(o.err.msg, "outside its memory"));

    run_stage(P_HOSTILE, "GET", "/x", NULL, "{\"entrypoint\": \"kiln/test/builtin\"}", &o);
    assert_int_equal(o.rc, KILN_ETRAP);
    assert_non_null(strstr(o.err.msg, "builtin #7"));

    run_stage(P_HOSTILE, "GET", "/x", NULL, "{\"entrypoint\": \"kiln/test/bad_result\"}", &o);
    assert_int_equal(o.rc, KILN_EBADOUTPUT);
    assert_non_null(strstr(o.err.msg, "outside the policy's memory"));

    run_stage(P_HOSTILE, "GET", "/x", NULL, "{\"entrypoint\": \"kiln/test/println\"}", &o);
    assert_int_equal(o.rc, KILN_OK);
    assert_int_equal(o.verdict, KILN_STAGE_CONTINUE);
}

/*
 * snapshot: true. Every decision, denial body and trap is the same as
 * without; one image serves many evaluations in turn (the pool slot the
 * last one used is reset to the image, input written by one never seen by
 * the next); an init that cannot run is refused naming why.
 */
static void test_snapshot(void **state)
{
    (void)state;
    with_snapshot = true;
    check_allow_rule(P_FAST);
    check_allow_rule(P_CTX);
    test_traps(state);
    with_snapshot = false;
    kiln_rt_reinstall_signals();
    static const struct {
        const char *method, *path, *role, *config;
    } reqs[] = {
        {"GET", "/public/a", NULL, NULL},
        {"POST", "/public/a", NULL, NULL},
        {"GET", "/private/with/a/much/longer/path/than/the/others/to/write/more/input", "admin", NULL},
        {"GET", "/private", "user", "{\"entrypoint\": \"kiln/authz/decision\"}"},
        {"DELETE", "/x", "admin", "{\"entrypoint\": \"kiln/authz/decision\"}"},
        {"GET", "/private", NULL, "{\"entrypoint\": 1}"},
    };
    for (int which = P_FAST; which <= P_CTX; which++) {
        kiln_function fn = make_fn();
        void *plain = NULL, *snap = NULL;
        kiln_err err;
        assert_int_equal(kiln_abi_opa.prepare(&fn, envs[which].m, &plain, &err), KILN_OK);
        assert_int_equal(kiln_abi_opa.prepare(&fn, envs[which].m, &snap, &err), KILN_OK);
        assert_int_equal(kiln_abi_opa.snapshot(&fn, snap, envs[which].pre, &err), KILN_OK);
        kiln_rt_stats st0, st1;
        kiln_rt_stats_get(&st0);
        for (int round = 0; round < 60; round++) {
            int k = (round * 7) % 6;
            outcome a, b;
            stage_once(&fn, plain, which, reqs[k].method, reqs[k].path, reqs[k].role,
                       reqs[k].config, &a);
            stage_once(&fn, snap, which, reqs[k].method, reqs[k].path, reqs[k].role,
                       reqs[k].config, &b);
            assert_int_equal(a.rc, KILN_OK);
            assert_int_equal(b.rc, KILN_OK);
            assert_int_equal(a.verdict, b.verdict);
            assert_int_equal(a.status, b.status);
            assert_string_equal(a.body, b.body);
        }
        kiln_rt_stats_get(&st1);
        assert_true(st1.pool_hits > st0.pool_hits); /* slots were reused */
        kiln_abi_opa.release(plain);
        kiln_abi_opa.release(snap);
    }
    /* A policy whose memory does not fit the limit: the image is refused
     * at deploy, naming the snapshot. */
    kiln_function fn = make_fn();
    void *sp = NULL;
    kiln_err err;
    assert_int_equal(kiln_abi_opa.prepare(&fn, envs[P_FAST].m, &sp, &err), KILN_OK);
    fn.limits.max_memory_bytes = 65536;
    assert_int_not_equal(kiln_abi_opa.snapshot(&fn, sp, envs[P_FAST].pre, &err), KILN_OK);
    assert_non_null(strstr(err.msg, "snapshot (instantiate) failed"));
    kiln_abi_opa.release(sp);
}

/* The function's limits apply: the imported memory's 2 initial pages do not
 * fit in 64 KiB, and the evaluation fails cleanly. */
static void test_memory_limit(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_function fn = make_fn();
    void *sp = NULL;
    kiln_err err;
    assert_int_equal(kiln_abi_opa.prepare(&fn, envs[P_FAST].m, &sp, &err), KILN_OK);
    fn.limits.max_memory_bytes = 65536;
    char *res = NULL;
    size_t len;
    int rc = opa_evaluate(sp, envs[P_FAST].pre, &fn.limits, NULL, 0, "{}", 2, &res, &len, &err);
    assert_int_equal(rc, KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_OUT_OF_MEMORY);
    assert_null(res);
    kiln_abi_opa.release(sp);
}

static void test_refused(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_function fn = make_fn();
    void *sp = NULL;
    kiln_err err;
    assert_int_equal(kiln_abi_opa.prepare(&fn, envs[P_BUILTINS].m, &sp, &err), KILN_EUNSUPPORTED);
    assert_null(sp);
    assert_non_null(strstr(err.msg, "http.send"));
    assert_non_null(strstr(err.msg, "time.now_ns"));

    /* Looks like a policy, lacks most of the ABI. */
    kiln_module *m = test_load_wat("(module (import \"env\" \"memory\" (memory 1))\n"
                                   " (func (export \"opa_eval\") (param i32 i32 i32 i32 i32 i32 "
                                   "i32) (result i32) (i32.const 0))\n"
                                   " (func (export \"opa_malloc\") (param i64) (result i32) "
                                   "(i32.const 0)))\n",
                                   linker);
    assert_non_null(m);
    assert_true(kiln_abi_opa.detect(m) > 0);
    assert_int_not_equal(kiln_abi_opa.prepare(&fn, m, &sp, &err), KILN_OK);
    assert_non_null(strstr(err.msg, "missing exports"));
    assert_non_null(strstr(err.msg, "opa_json_parse"));
    assert_non_null(strstr(err.msg, "opa_malloc (want i>i)"));
    kiln_module_release(m);

    /* No env.memory import: not a policy at all. */
    m = test_load_wat("(module (memory 1) (func (export \"opa_eval_ctx_new\") (result i32) "
                      "(i32.const 0)))\n",
                      linker);
    assert_non_null(m);
    assert_int_equal(kiln_abi_opa.detect(m), 0);
    assert_int_equal(kiln_abi_opa.prepare(&fn, m, &sp, &err), KILN_ENOEXPORT);
    assert_non_null(strstr(err.msg, "env.memory"));
    kiln_module_release(m);
}

static void test_decide(void **state)
{
    (void)state;
    struct {
        const char *rs;
        bool allow;
        int status;
        const char *msg;
    } cases[] = {
        {"[{\"result\": true}]", true, 0, NULL},
        {"[{\"result\": {\"allow\": true, \"status\": 401}}]", true, 0, NULL},
        {"[{\"result\": false}]", false, 403, "forbidden by policy"},
        {"[]", false, 403, "forbidden by policy (no result)"},
        {"[{\"result\": \"true\"}]", false, 403, "forbidden by policy"},
        {"[{\"result\": {\"allow\": false, \"status\": 451, \"message\": \"no\"}}]", false, 451,
         "no"},
        {"[{\"result\": {\"error\": {\"status\": 418, \"message\": \"teapot\"}}}]", false, 418,
         "teapot"},
        {"[{\"result\": {\"allow\": false, \"status\": 9999}}]", false, 403,
         "forbidden by policy"},
        {"not json", false, 403, "forbidden by policy (no result)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status;
        char *msg;
        bool a = opa_decide(cases[i].rs, strlen(cases[i].rs), &status, &msg);
        assert_int_equal(a, cases[i].allow);
        if (!a) {
            assert_int_equal(status, cases[i].status);
            assert_string_equal(msg, cases[i].msg);
        }
        kiln_free(msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_allow_deny_fast_path),
        cmocka_unit_test(test_allow_deny_eval_context),
        cmocka_unit_test(test_entrypoints),
        cmocka_unit_test(test_backend),
        cmocka_unit_test(test_traps),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_decide),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
