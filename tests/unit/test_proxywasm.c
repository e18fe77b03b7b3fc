/*
 * test_proxywasm.c - the proxy-wasm ABI driven directly (kiln_stage + the
 * ABI's stage ops, as src/http/pipeline.c calls them), on filters built from
 * source by tests/guests_proxywasm/build.sh: the C filter pw_test.c (raw
 * ABI) and the AssemblyScript filter (solo-io proxy-runtime 0.1.8). Covers
 * header edits both ways, local replies, body rewrites, properties, shared
 * data and the end-of-stream callbacks' order, metrics in Kiln's registry,
 * a chain of two roots of one VM, http_call auth against a local server
 * (allowed, denied, unknown cluster), a trapping filter (its VM recreated),
 * a stalled stream, a refused configuration and tick timers on a loop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/metrics.h"
#include "kiln/aot.h"
#include "kiln/handler.h"
#include "kiln/wasi.h"
#include "support/wat.h"
#include "loop/loop.h"

extern const kiln_abi_ops kiln_abi_proxywasm;
void pw_vms_free_thread(void);

static const kiln_abi_ops *ops = &kiln_abi_proxywasm;
static kiln_linker *linker;
static kiln_module *mod_c, *mod_as;
static kiln_instance_pre *pre_c, *pre_as;
static int auth_port;

/* ---- a tiny auth server: 200 for user=alice, 403 otherwise ------------------------ */

static void *auth_server(void *arg)
{
    int ls = (int)(intptr_t)arg;
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[2048];
        ssize_t n = recv(c, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = 0;
        bool ok = strstr(buf, "GET /auth?user=alice ") != NULL;
        const char *body = ok ? "welcome" : "nope";
        char resp[256];
        int l = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         ok ? "200 OK" : "403 Forbidden", strlen(body), body);
        send(c, resp, (size_t)l, 0);
        close(c);
    }
}

static int start_auth(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 16) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0)
        return -1;
    auth_port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, auth_server, (void *)(intptr_t)ls);
    pthread_detach(t);
    return 0;
}

/* ---- setup ------------------------------------------------------------------------- */

static int load(const char *path, kiln_module **m, kiln_instance_pre **pre)
{
    kiln_aot_options o = {0};
    o.opt_level = 1;
    o.cc = getenv("KILN_TEST_CC") ? getenv("KILN_TEST_CC") : "cc";
    o.imports = linker;
    kiln_err err;
    if (kiln_aot_load_file(path, &o, m, &err) != KILN_OK ||
        kiln_instance_pre_new(*m, linker, pre, &err) != KILN_OK) {
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
    char dir[700], cmd[1600], path[800];
    snprintf(dir, sizeof(dir), "%s/guests_proxywasm", build);
    snprintf(cmd, sizeof(cmd), "sh %s/tests/guests_proxywasm/build.sh %s >/dev/null", root, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot build the proxy-wasm test filters: %s\n", cmd);
        return -1;
    }
    size_t nw, np;
    const kiln_hostfn *w = kiln_wasi_hostfns(&nw), *p = ops->hostfns(&np);
    if (kiln_linker_new(&linker) != KILN_OK || kiln_linker_define_host(linker, w, nw) != KILN_OK ||
        kiln_linker_define_host(linker, p, np) != KILN_OK)
        return -1;
    snprintf(path, sizeof(path), "%s/pw_test.wasm", dir);
    if (load(path, &mod_c, &pre_c) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/as_filter.wasm", dir);
    if (access(path, R_OK) == 0 && load(path, &mod_as, &pre_as) != 0)
        return -1;
    return start_auth();
}

static int teardown(void **state)
{
    (void)state;
    pw_vms_free_thread();
    kiln_instance_pre_free(pre_c);
    kiln_module_release(mod_c);
    if (pre_as != NULL) {
        kiln_instance_pre_free(pre_as);
        kiln_module_release(mod_as);
    }
    kiln_linker_free(linker);
    return 0;
}

/* ---- one filter function and requests through it ------------------------------------ */

typedef struct filt {
    kiln_function fn;
    kiln_kv clusters[2];
    char auth_url[64];
    void *state;
    const kiln_instance_pre *pre;
} filt;

static void filt_init(filt *f, const char *name, bool as)
{
    memset(f, 0, sizeof(*f));
    f->fn.name = name;
    f->fn.limits.timeout_ms = 3000;
    snprintf(f->auth_url, sizeof(f->auth_url), "http://127.0.0.1:%d", auth_port);
    f->clusters[0] = (kiln_kv){"auth", f->auth_url};
    f->fn.clusters = f->clusters;
    f->fn.n_clusters = 1;
    f->pre = as ? pre_as : pre_c;
    kiln_err err;
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    assert_int_equal(ops->prepare(&f->fn, as ? mod_as : mod_c, &f->state, &err), KILN_OK);
}

static void filt_fini(filt *f)
{
    ops->release(f->state);
}

static kiln_plugin plugin(const char *config, unsigned index)
{
    kiln_plugin p = {.name = "pwtest", .kind = KILN_STAGE_FILTER, .config_json = config,
                     .vm_config = "vmconf", .index = index};
    return p;
}

typedef struct req {
    kiln_kv headers[8];
    size_t n;
    const char *body;
} req;

static kiln_stage *new_stage(const req *r)
{
    static const kiln_stage_info info = {.route = "/r", .backend = "backend"};
    kiln_request q = {.method = "POST", .url = "/a/b?x=1", .path = "/a/b", .query = "x=1",
                      .host = "example.test", .remote_addr = "10.0.0.9"};
    q.headers = r->headers;
    q.n_headers = r->n;
    q.body = (const uint8_t *)(r->body ? r->body : "");
    q.body_len = r->body ? strlen(r->body) : 0;
    kiln_stage *st;
    assert_int_equal(kiln_stage_new(&q, &info, 1 << 20, &st), KILN_OK);
    return st;
}

static const char *req_header(kiln_stage *st, const char *name)
{
    const kiln_request *q = kiln_stage_request(st);
    for (size_t i = 0; i < q->n_headers; i++)
        if (strcasecmp(q->headers[i].name, name) == 0)
            return q->headers[i].value;
    return NULL;
}

static const char *resp_header(kiln_stage *st, const char *name)
{
    kiln_response *r = kiln_stage_response(st);
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static int phase(filt *f, const kiln_plugin *p, kiln_stage_phase ph, kiln_stage *st,
                 int *verdict, kiln_err *err)
{
    memset(err, 0, sizeof(*err));
    return ops->stage(&f->fn, f->state, f->pre, p, ph, st, verdict, err);
}

/* A request phase through p that must answer KILN_OK; its verdict in *v. */
static void request_phase_ok(filt *f, const kiln_plugin *p, kiln_stage *st, int *v)
{
    kiln_err err;
    assert_int_equal(phase(f, p, KILN_PHASE_REQUEST, st, v, &err), KILN_OK);
}

/* A new stage for r, through p's request phase (KILN_OK); the stage to check and end. */
static kiln_stage *request_ok(filt *f, const kiln_plugin *p, const req *r, int *v)
{
    kiln_stage *st = new_stage(r);
    request_phase_ok(f, p, st, v);
    return st;
}

/* p's response phase on st, which must answer KILN_OK. */
static void response_ok(filt *f, const kiln_plugin *p, kiln_stage *st, int *v)
{
    kiln_err err;
    assert_int_equal(phase(f, p, KILN_PHASE_RESPONSE, st, v, &err), KILN_OK);
}

/* The request header `name` must read the number n. */
static void assert_req_header_num(kiln_stage *st, const char *name, int n)
{
    char want[16];
    snprintf(want, sizeof(want), "%d", n);
    assert_string_equal(req_header(st, name), want);
}

/* What the pipeline does when the request is over. */
static void end(filt *f, const kiln_plugin *p, kiln_stage *st)
{
    void **slot = kiln_stage_stream(st, p->index);
    if (*slot != NULL)
        ops->stage_end(&f->fn, f->state, p, st, *slot);
    kiln_stage_free(st);
}

/* A backend answer in the stage's response. */
static void backend(kiln_stage *st, const char *body)
{
    kiln_response *r = kiln_stage_response(st);
    kiln_response_reset(r);
    r->status = 201;
    kiln_response_add_header(r, "Content-Type", "text/plain");
    kiln_response_add_header(r, "X-Pw-Resp-Replace", "old");
    kiln_response_add_header(r, "X-Pw-Resp-Remove", "gone");
    char cl[32];
    snprintf(cl, sizeof(cl), "%zu", strlen(body));
    kiln_response_add_header(r, "Content-Length", cl);
    kiln_response_append(r, body, strlen(body));
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_detect_and_backend_refused(void **state)
{
    (void)state;
    assert_true(ops->detect(mod_c) >= 100);
    assert_string_equal(ops->stage_export(KILN_STAGE_FILTER), "");
    assert_null(ops->stage_export(KILN_STAGE_ACCESS));
    filt f;
    filt_init(&f, "pwtest", false);
    kiln_response resp;
    kiln_response_init(&resp, 0);
    kiln_request q = {.method = "GET", .url = "/", .path = "/", .query = ""};
    kiln_err err;
    assert_int_equal(ops->handle(&f.fn, f.state, f.pre, &q, &resp, &err), KILN_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "list it in a route's plugins with kind: proxy-wasm"));
    kiln_response_fini(&resp);
    filt_fini(&f);
}

static void test_headers_both_ways(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwtest", false);
    kiln_plugin p = plugin("headers", 0);
    req r = {.headers = {{"X-Pw-Replace", "old"}, {"X-Pw-Remove", "x"}, {"Accept", "*/*"}},
             .n = 3};
    int v;
    kiln_stage *st = request_ok(&f, &p, &r, &v);
    assert_int_equal(v, KILN_STAGE_CONTINUE);
    assert_string_equal(req_header(st, "x-pw-added"), "1");
    assert_string_equal(req_header(st, "x-pw-replace"), "new");
    assert_null(req_header(st, "x-pw-remove"));
    assert_string_equal(req_header(st, "accept"), "*/*");
    /* 4 pseudo-headers + 3 headers, and the host moved to :authority kept. */
    assert_string_equal(req_header(st, "x-pw-count-in"), "7");
    assert_string_equal(kiln_stage_request(st)->method, "POST");
    assert_string_equal(kiln_stage_request(st)->url, "/a/b?x=1");
    backend(st, "hello");
    response_ok(&f, &p, st, &v);
    assert_int_equal(v, KILN_STAGE_CONTINUE);
    assert_string_equal(resp_header(st, "x-pw-resp"), "1");
    assert_string_equal(resp_header(st, "x-pw-resp-replace"), "new");
    assert_null(resp_header(st, "x-pw-resp-remove"));
    assert_string_equal(resp_header(st, "x-pw-status"), "201");
    assert_int_equal(kiln_stage_response(st)->status, 201);
    end(&f, &p, st);
    filt_fini(&f);
}

static void test_block_local_reply(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwtest", false);
    kiln_plugin p = plugin("block", 0);
    req r = {.headers = {{"X-Block", ""}}, .n = 1};
    int v;
    kiln_stage *st = request_ok(&f, &p, &r, &v);
    assert_int_equal(v, KILN_STAGE_RESPOND);
    kiln_response *resp = kiln_stage_response(st);
    assert_int_equal(resp->status, 403);
    assert_string_equal(resp_header(st, "x-pw-blocked"), "yes");
    assert_string_equal(resp_header(st, "content-type"), "text/plain");
    assert_int_equal(resp->body_len, 18);
    assert_memory_equal(resp->body, "blocked by filter\n", 18);
    end(&f, &p, st);
    /* Without the header the request goes on. */
    req r2 = {.n = 0};
    st = request_ok(&f, &p, &r2, &v);
    assert_int_equal(v, KILN_STAGE_CONTINUE);
    end(&f, &p, st);
    filt_fini(&f);
}

static void test_bodies(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwtest", false);
    kiln_plugin p = plugin("body,respbody", 0);
    req r = {.headers = {{"Content-Length", "11"}}, .n = 1, .body = "hello world"};
    int v;
    kiln_stage *st = request_ok(&f, &p, &r, &v);
    const kiln_request *q = kiln_stage_request(st);
    assert_int_equal(q->body_len, 11);
    assert_memory_equal(q->body, "HELLO WORLD", 11);
    assert_null(req_header(st, "content-length")); /* the filter removed it */
    backend(st, "answer");
    response_ok(&f, &p, st, &v);
    kiln_response *resp = kiln_stage_response(st);
    assert_int_equal(resp->body_len, 7);
    assert_memory_equal(resp->body, "answer!", 7);
    assert_null(resp_header(st, "content-length"));
    end(&f, &p, st);
    filt_fini(&f);
}

static void test_properties(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwtest", false);
    kiln_plugin p = plugin("props", 0);
    req r = {.n = 0};
    int v;
    kiln_stage *st = request_ok(&f, &p, &r, &v);
    assert_string_equal(req_header(st, "x-pw-prop-path"), "/a/b?x=1");
    assert_string_equal(req_header(st, "x-pw-prop-name"), "pwtest");
    assert_string_equal(req_header(st, "x-pw-prop-root"), "");
    assert_string_equal(req_header(st, "x-pw-prop-method"), "POST");
    assert_string_equal(req_header(st, "x-pw-prop-missing"), "(not found)");
    end(&f, &p, st);
    filt_fini(&f);
}

static void test_shared_data_and_end_order(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwshared", false);
    kiln_plugin p = plugin("shared", 0);
    for (int i = 1; i <= 3; i++) {
        req r = {.n = 0};
        int v;
        kiln_stage *st = request_ok(&f, &p, &r, &v);
        assert_req_header_num(st, "x-pw-count", i);
        if (i == 2)
            assert_string_equal(req_header(st, "x-pw-events"), "log,done,delete");
        end(&f, &p, st);
    }
    filt_fini(&f);
    /* Another function (another vm_id) does not see this one's data. */
    filt g;
    filt_init(&g, "pwshared2", false);
    req r = {.n = 0};
    int v;
    kiln_stage *st = request_ok(&g, &p, &r, &v);
    assert_string_equal(req_header(st, "x-pw-count"), "1");
    end(&g, &p, st);
    filt_fini(&g);
}

static void test_metric_in_registry(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwmetric", false);
    kiln_plugin p = plugin("metric", 0);
    for (int i = 1; i <= 2; i++) {
        req r = {.n = 0};
        int v;
        kiln_stage *st = request_ok(&f, &p, &r, &v);
        assert_req_header_num(st, "x-pw-metric", i);
        end(&f, &p, st);
    }
    size_t len;
    char *text = metrics_prometheus(&len);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE pw_test_requests counter\npw_test_requests 2\n"));
    kiln_free(text);
    filt_fini(&f);
}

static void test_chain_two_roots(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwtest", false);
    kiln_plugin a = plugin("tag=A", 0), b = plugin("tag=B,headers", 1);
    req r = {.n = 0};
    int v;
    kiln_stage *st = request_ok(&f, &a, &r, &v);
    request_phase_ok(&f, &b, st, &v);
    assert_string_equal(req_header(st, "x-pw-chain"), "A,B");
    assert_string_equal(req_header(st, "x-pw-added"), "1"); /* only B has "headers" */
    backend(st, "x");
    /* Response side in reverse, as Envoy runs encoders. */
    response_ok(&f, &b, st, &v);
    response_ok(&f, &a, st, &v);
    assert_string_equal(resp_header(st, "x-pw-chain"), "B,A");
    void **sb = kiln_stage_stream(st, 1);
    ops->stage_end(&f.fn, f.state, &b, st, *sb);
    end(&f, &a, st);
    filt_fini(&f);
}

static void auth_case(filt *f, const char *config, const char *user, int want_verdict,
                      int want_status)
{
    kiln_plugin p = plugin(config, 0);
    req r = {.headers = {{"X-User", user}}, .n = 1};
    int v;
    kiln_stage *st = request_ok(f, &p, &r, &v);
    if (v != want_verdict)
        fprintf(stderr, "auth %s/%s: status %d, x-auth-status %s\n", config, user,
                kiln_stage_response(st)->status, resp_header(st, "x-auth-status"));
    assert_int_equal(v, want_verdict);
    if (want_verdict == KILN_STAGE_CONTINUE) {
        assert_string_equal(req_header(st, "x-auth"), "ok:welcome");
    } else {
        assert_int_equal(kiln_stage_response(st)->status, want_status);
        if (want_status == 401)
            assert_string_equal(resp_header(st, "x-auth-status"), "403");
    }
    end(f, &p, st);
}

static void test_http_call_auth(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwauth", false);
    auth_case(&f, "auth", "alice", KILN_STAGE_CONTINUE, 0);
    auth_case(&f, "auth", "mallory", KILN_STAGE_RESPOND, 401);
    auth_case(&f, "auth,badcluster", "alice", KILN_STAGE_RESPOND, 503);
    filt_fini(&f);
}

static void test_trap_recreates_vm(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwtrap", false);
    kiln_plugin p = plugin("trap,shared", 0);
    req r = {.headers = {{"X-Trap", "1"}}, .n = 1};
    kiln_stage *st = new_stage(&r);
    int v;
    kiln_err err;
    assert_int_equal(phase(&f, &p, KILN_PHASE_REQUEST, st, &v, &err), KILN_ETRAP);
    assert_non_null(strstr(err.msg, "proxy-wasm filter 'pwtrap'"));
    end(&f, &p, st); /* no callbacks on the broken VM */
    req ok = {.n = 0};
    st = request_ok(&f, &p, &ok, &v);
    assert_int_equal(v, KILN_STAGE_CONTINUE);
    assert_non_null(req_header(st, "x-pw-count")); /* a fresh VM answered */
    end(&f, &p, st);
    filt_fini(&f);
}

static void test_stall_and_refusal(void **state)
{
    (void)state;
    filt f;
    filt_init(&f, "pwstall", false);
    kiln_plugin p = plugin("pause", 0), q = plugin("refuse", 1);
    req r = {.n = 0};
    kiln_stage *st = new_stage(&r);
    int v;
    kiln_err err;
    assert_int_equal(phase(&f, &p, KILN_PHASE_REQUEST, st, &v, &err), KILN_ETIMEOUT);
    assert_non_null(strstr(err.msg, "paused the stream"));
    assert_int_equal(phase(&f, &q, KILN_PHASE_REQUEST, st, &v, &err), KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "refused its configuration"));
    void **sq = kiln_stage_stream(st, 1);
    assert_null(*sq);
    end(&f, &p, st);
    filt_fini(&f);
}

static void test_ticks_on_a_loop(void **state)
{
    (void)state;
    kl_loop *loop;
    kiln_err err;
    assert_int_equal(kl_loop_new(&loop, &err), KILN_OK);
    kl_bind(loop);
    filt f;
    filt_init(&f, "pwtick", false);
    kiln_plugin p = plugin("tick", 0);
    req r = {.n = 0};
    int v;
    kiln_stage *st = request_ok(&f, &p, &r, &v);
    assert_string_equal(req_header(st, "x-pw-ticks"), "0");
    end(&f, &p, st);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        kl_run_once(loop, 20);
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 150);
    st = request_ok(&f, &p, &r, &v);
    int ticks = atoi(req_header(st, "x-pw-ticks"));
    assert_true(ticks >= 3); /* every 20 ms for 150 ms */
    end(&f, &p, st);
    filt_fini(&f);
    pw_vms_free_thread(); /* stops the timer before the loop goes */
    kl_bind(NULL);
    kl_loop_free(loop);
}

static void test_assemblyscript_filter(void **state)
{
    (void)state;
    if (pre_as == NULL)
        skip();
    filt f;
    filt_init(&f, "as_filter", true);
    kiln_plugin p = plugin("hello", 0);
    req r = {.headers = {{"X-As-Replace", "old"}, {"X-As-Remove", "1"}}, .n = 2};
    int v;
    kiln_stage *st = request_ok(&f, &p, &r, &v);
    assert_int_equal(v, KILN_STAGE_CONTINUE);
    assert_string_equal(req_header(st, "x-as-added"), "hello");
    assert_string_equal(req_header(st, "x-as-replace"), "new");
    assert_null(req_header(st, "x-as-remove"));
    backend(st, "ok");
    response_ok(&f, &p, st, &v);
    assert_string_equal(resp_header(st, "x-as-resp"), "1");
    end(&f, &p, st);
    req b = {.headers = {{"X-As-Block", "1"}}, .n = 1};
    st = request_ok(&f, &p, &b, &v);
    assert_int_equal(v, KILN_STAGE_RESPOND);
    assert_int_equal(kiln_stage_response(st)->status, 403);
    end(&f, &p, st);
    /* http_call through the SDK's root-context callback machinery. */
    kiln_plugin a = plugin("auth", 1);
    const char *users[2] = {"alice", "bob"};
    for (int i = 0; i < 2; i++) {
        req u = {.headers = {{"X-User", users[i]}}, .n = 1};
        st = request_ok(&f, &a, &u, &v);
        if (i == 0) {
            assert_int_equal(v, KILN_STAGE_CONTINUE);
            assert_string_equal(req_header(st, "x-as-auth"), "ok");
        } else {
            assert_int_equal(v, KILN_STAGE_RESPOND);
            assert_int_equal(kiln_stage_response(st)->status, 401);
        }
        end(&f, &a, st);
    }
    size_t len;
    char *text = metrics_prometheus(&len);
    assert_non_null(strstr(text, "as_filter_requests 4\n"));
    kiln_free(text);
    filt_fini(&f);
}

/* Every host function of the spec (proxy-wasm-abi.md §5.1-5.7, with its
 * signature) and the WASI imports Rust, TinyGo and AssemblyScript filters
 * link against (§7): a module importing all of them must link - "never a
 * missing import", whatever SDK built the filter. */
static void test_every_spec_import_links(void **state)
{
    (void)state;
    static const struct {
        const char *module, *name, *params, *result;
    } imp[] = {
        {"env", "proxy_log", "i32 i32 i32", "i32"},
        {"env", "proxy_get_log_level", "i32", "i32"},
        {"env", "proxy_get_current_time_nanoseconds", "i32", "i32"},
        {"env", "proxy_set_tick_period_milliseconds", "i32", "i32"},
        {"env", "proxy_get_status", "i32 i32 i32", "i32"},
        {"env", "proxy_set_effective_context", "i32", "i32"},
        {"env", "proxy_done", "", "i32"},
        {"env", "proxy_call_foreign_function", "i32 i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_get_property", "i32 i32 i32 i32", "i32"},
        {"env", "proxy_set_property", "i32 i32 i32 i32", "i32"},
        {"env", "proxy_get_header_map_pairs", "i32 i32 i32", "i32"},
        {"env", "proxy_set_header_map_pairs", "i32 i32 i32", "i32"},
        {"env", "proxy_get_header_map_value", "i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_add_header_map_value", "i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_replace_header_map_value", "i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_remove_header_map_value", "i32 i32 i32", "i32"},
        {"env", "proxy_get_header_map_size", "i32 i32", "i32"},
        {"env", "proxy_get_buffer_bytes", "i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_set_buffer_bytes", "i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_get_buffer_status", "i32 i32 i32", "i32"},
        {"env", "proxy_continue_stream", "i32", "i32"},
        {"env", "proxy_close_stream", "i32", "i32"},
        {"env", "proxy_send_local_response", "i32 i32 i32 i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_http_call", "i32 i32 i32 i32 i32 i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_grpc_call", "i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_grpc_stream", "i32 i32 i32 i32 i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_grpc_send", "i32 i32 i32 i32", "i32"},
        {"env", "proxy_grpc_cancel", "i32", "i32"},
        {"env", "proxy_grpc_close", "i32", "i32"},
        {"env", "proxy_get_shared_data", "i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_set_shared_data", "i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_register_shared_queue", "i32 i32 i32", "i32"},
        {"env", "proxy_resolve_shared_queue", "i32 i32 i32 i32 i32", "i32"},
        {"env", "proxy_enqueue_shared_queue", "i32 i32 i32", "i32"},
        {"env", "proxy_dequeue_shared_queue", "i32 i32 i32", "i32"},
        {"env", "proxy_define_metric", "i32 i32 i32 i32", "i32"},
        {"env", "proxy_increment_metric", "i32 i64", "i32"},
        {"env", "proxy_record_metric", "i32 i64", "i32"},
        {"env", "proxy_get_metric", "i32 i32", "i32"},
        {"wasi_snapshot_preview1", "fd_write", "i32 i32 i32 i32", "i32"},
        {"wasi_snapshot_preview1", "proc_exit", "i32", ""},
        {"wasi_snapshot_preview1", "random_get", "i32 i32", "i32"},
        {"wasi_snapshot_preview1", "environ_get", "i32 i32", "i32"},
        {"wasi_snapshot_preview1", "environ_sizes_get", "i32 i32", "i32"},
        {"wasi_snapshot_preview1", "args_get", "i32 i32", "i32"},
        {"wasi_snapshot_preview1", "args_sizes_get", "i32 i32", "i32"},
        {"wasi_snapshot_preview1", "clock_time_get", "i32 i64 i32", "i32"},
        {"wasi_snapshot_preview1", "poll_oneoff", "i32 i32 i32 i32", "i32"},
        {"wasi_snapshot_preview1", "fd_fdstat_get", "i32 i32", "i32"},
        {"wasi_snapshot_preview1", "fd_close", "i32", "i32"},
        {"wasi_snapshot_preview1", "fd_seek", "i32 i64 i32 i32", "i32"},
        {"wasi_snapshot_preview1", "sched_yield", "", "i32"},
        {"wasi_unstable", "proc_exit", "i32", ""},
        {"wasi_unstable", "fd_write", "i32 i32 i32 i32", "i32"},
    };
    size_t n = sizeof(imp) / sizeof(imp[0]);
    size_t cap = 16384, len = 0;
    char *wat = malloc(cap);
    len += (size_t)snprintf(wat + len, cap - len, "(module\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(wat + len, cap - len,
                                "  (import \"%s\" \"%s\" (func (param %s)%s%s%s))\n",
                                imp[i].module, imp[i].name, imp[i].params,
                                imp[i].result[0] ? " (result " : "", imp[i].result,
                                imp[i].result[0] ? ")" : "");
    len += (size_t)snprintf(wat + len, cap - len,
                            "  (memory (export \"memory\") 1)\n"
                            "  (func (export \"proxy_abi_version_0_2_1\"))\n"
                            "  (func (export \"proxy_on_memory_allocate\") (param i32) (result i32)"
                            " i32.const 1024)\n"
                            "  (func (export \"_initialize\")))\n");
    assert_true(len < cap);
    char *path = test_wat2wasm(wat, "");
    free(wat);
    assert_non_null(path);
    kiln_module *m = NULL;
    kiln_instance_pre *pre = NULL;
    if (load(path, &m, &pre) != 0)
        fail_msg("a module importing every spec'd host function does not link (see above)");
    assert_true(ops->detect(m) >= 100);
    void *st = NULL;
    kiln_function fn = {.name = "allimports"};
    kiln_err err;
    assert_int_equal(ops->prepare(&fn, m, &st, &err), KILN_OK);
    ops->release(st);
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
    test_wat_cleanup(path);
}

/* The TinyGo shape: no _initialize, a `_start` that ends with WASI
 * proc_exit(0) (Go's runtime does), callbacks exported next to it - the VM
 * starts cleanly and the filter runs (pw_vm.c vm_start). And ABI 0.1.0:
 * detected, refused at prepare with a message. */
static void test_start_proc_exit_and_old_abi(void **state)
{
    (void)state;
    static const char wat[] =
        "(module\n"
        "  (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))\n"
        "  (import \"env\" \"proxy_add_header_map_value\"\n"
        "    (func $add (param i32 i32 i32 i32 i32) (result i32)))\n"
        "  (memory (export \"memory\") 1)\n"
        "  (data (i32.const 16) \"x-started1\")\n"
        "  (global $started (mut i32) (i32.const 0))\n"
        "  (func (export \"proxy_abi_version_0_2_1\"))\n"
        "  (func (export \"proxy_on_memory_allocate\") (param i32) (result i32) i32.const 1024)\n"
        "  (func (export \"_start\") i32.const 1 global.set $started i32.const 0 call $exit)\n"
        "  (func (export \"proxy_on_context_create\") (param i32 i32))\n"
        "  (func (export \"proxy_on_request_headers\") (param i32 i32 i32) (result i32)\n"
        "    global.get $started\n"
        "    if\n"
        "      i32.const 0 i32.const 16 i32.const 9 i32.const 25 i32.const 1 call $add drop\n"
        "    end\n"
        "    i32.const 0))\n";
    char *path = test_wat2wasm(wat, "");
    assert_non_null(path);
    kiln_module *m = NULL;
    kiln_instance_pre *pre = NULL;
    assert_int_equal(load(path, &m, &pre), 0);
    filt f;
    memset(&f, 0, sizeof(f));
    f.fn.name = "gostart";
    f.fn.limits.timeout_ms = 3000;
    f.pre = pre;
    kiln_err err;
    kiln_rt_reinstall_signals();
    assert_int_equal(ops->prepare(&f.fn, m, &f.state, &err), KILN_OK);
    kiln_plugin p = plugin("", 0);
    req r = {.n = 0};
    int v;
    kiln_stage *st = request_ok(&f, &p, &r, &v);
    assert_int_equal(v, KILN_STAGE_CONTINUE);
    assert_string_equal(req_header(st, "x-started"), "1"); /* _start ran, proc_exit(0) was clean */
    end(&f, &p, st);
    pw_vms_free_thread();
    filt_fini(&f);
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
    test_wat_cleanup(path);

    static const char old[] = "(module (memory (export \"memory\") 1)\n"
                              "  (func (export \"proxy_abi_version_0_1_0\"))\n"
                              "  (func (export \"proxy_on_context_create\") (param i32 i32)))\n";
    path = test_wat2wasm(old, "");
    assert_non_null(path);
    assert_int_equal(load(path, &m, &pre), 0);
    assert_true(ops->detect(m) > 0);
    void *s2 = NULL;
    kiln_function fn = {.name = "old"};
    assert_int_not_equal(ops->prepare(&fn, m, &s2, &err), KILN_OK);
    assert_non_null(strstr(err.msg, "ABI 0.1.0 is not supported"));
    kiln_instance_pre_free(pre);
    kiln_module_release(m);
    test_wat_cleanup(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_and_backend_refused),
        cmocka_unit_test(test_headers_both_ways),
        cmocka_unit_test(test_block_local_reply),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_shared_data_and_end_order),
        cmocka_unit_test(test_metric_in_registry),
        cmocka_unit_test(test_chain_two_roots),
        cmocka_unit_test(test_http_call_auth),
        cmocka_unit_test(test_trap_recreates_vm),
        cmocka_unit_test(test_stall_and_refusal),
        cmocka_unit_test(test_ticks_on_a_loop),
        cmocka_unit_test(test_assemblyscript_filter),
        cmocka_unit_test(test_every_spec_import_links),
        cmocka_unit_test(test_start_proc_exit_and_old_abi),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
