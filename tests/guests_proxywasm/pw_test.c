/*
 * pw_test.c - a proxy-wasm filter for Kiln's tests, written against the raw
 * ABI (pw.h). Its plugin configuration is a comma-separated list of
 * behaviours, so one module covers every case and a chain of two plugins
 * of it exercises two root contexts in one VM:
 *   headers   request: add x-pw-added, replace x-pw-replace, remove
 *             x-pw-remove; response: add x-pw-resp, replace
 *             x-pw-resp-replace, remove x-pw-resp-remove
 *   block     answer 403 locally when the request has x-block (returning
 *             Pause; `block0`: returning Continue, which must not matter)
 *   body      request body upper-cased (buffered, whole)
 *   respbody  response body gets "!" appended
 *   auth      http_call to cluster "auth" GET /auth?user=<x-user>; 200
 *             resumes (adds x-auth: ok), anything else answers 401; an
 *             unknown cluster (BAD_ARGUMENT) answers 503
 *   shared    counts requests in shared data "count" (CAS loop), adds
 *             x-pw-count, and x-pw-events with what the previous streams'
 *             end callbacks recorded
 *   metric    counter pw_test_requests incremented per request, reported in
 *             x-pw-metric
 *   gauges    gauge pw_test_gauge recorded to 7, histogram pw_test_hist
 *             recorded 5 per request; x-pw-gauge = the gauge read back
 *   queue     registers shared queue "pwq" at configure; each request
 *             enqueues one item; proxy_on_queue_ready (root) dequeues them
 *             all and adds their count to shared data "dequeued";
 *             x-pw-dequeued = that count as the request saw it
 *   now       x-pw-now = proxy_get_current_time_nanoseconds
 *   vmconf    x-pw-vmconf = the vm_configuration proxy_on_vm_start got
 *   spin      loops forever when the request has x-spin (a time limit)
 *   stubs     x-pw-stubs = the statuses of calls Kiln answers without doing
 *             anything (gRPC, foreign functions) and of refused arguments
 *             (log level 6, a missing header, an unknown queue, a negative
 *             counter delta, an unknown effective context, stream type 9,
 *             a stale CAS), as "name=status ..."
 *   hdrcheck  x-pw-hdrcheck = "empty=<status>/<len> dup=<first x-dup>
 *             order=<x-dup values in pair order> lower=<1 if every key of
 *             proxy_get_header_map_pairs is lower-case>"
 *   pseudo    x-pw-pseudo = ":method :path :authority :scheme" as the
 *             request map has them; with x-new-path: P, replaces :path by P
 *             (and :method by PUT)
 *   tick      tick every 20 ms; x-pw-ticks tells how many fired
 *   props     x-pw-prop-path/-name/-root/-method from properties
 *   props2    x-pw-props2 = request.host|scheme|protocol|useragent|url_path|
 *             query|source.address|plugin_vm_id|route_name|xds.cluster_name
 *             (Rust/Go spelling: segments joined by NUL, no terminator);
 *             response: x-pw-resp-code = response.code
 *   trap      traps when the request has x-trap
 *   log       logs "pw_test log at <level>" at every level 0..5 per request,
 *             and in proxy_on_log "pw_test on_log <:method> <:path> <:status>"
 *             read from the request and response maps (as access-log
 *             filters do)
 *   pause     pauses forever (a stall)
 *   refuse    on_configure answers false
 *   tag=X     appends X to x-pw-chain on the request and the response
 */
#include <stdio.h>

#include "pw.h"

#define MAX_ROOTS 8
#define MAX_STREAMS 256

typedef struct root {
    uint32_t id;
    char cfg[256];
    uint32_t metric, gauge, hist, queue;
    int ticks;
} root;

static char vm_conf[128]; /* what proxy_on_vm_start was given */

typedef struct stream {
    uint32_t id, root, token;
} stream;

static root roots[MAX_ROOTS];
static stream streams[MAX_STREAMS];

static root *find_root(uint32_t id)
{
    for (int i = 0; i < MAX_ROOTS; i++)
        if (roots[i].id == id)
            return &roots[i];
    return NULL;
}

static stream *find_stream(uint32_t id)
{
    for (int i = 0; i < MAX_STREAMS; i++)
        if (streams[i].id == id)
            return &streams[i];
    return NULL;
}

static root *root_of(uint32_t ctx)
{
    stream *s = find_stream(ctx);
    return find_root(s ? s->root : ctx);
}

static int has(root *r, const char *word)
{
    size_t n = strlen(word);
    const char *c = r->cfg;
    while (*c) {
        const char *e = strchr(c, ',');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (l == n && memcmp(c, word, n) == 0)
            return 1;
        c += l + (e ? 1 : 0);
    }
    return 0;
}

static const char *tag(root *r)
{
    const char *t = strstr(r->cfg, "tag=");
    static char buf[32];
    if (t == NULL)
        return NULL;
    size_t i = 0;
    for (t += 4; *t && *t != ',' && i < sizeof(buf) - 1; t++)
        buf[i++] = *t;
    buf[i] = 0;
    return buf;
}

/* Append an event to shared data "events" (CAS loop). */
static void event(const char *what)
{
    for (int tries = 0; tries < 10; tries++) {
        char *v = NULL;
        size_t vl = 0;
        uint32_t cas = 0;
        char buf[256];
        size_t n = 0;
        if (pw_get_shared("events", 6, &v, &vl, &cas) == 0 && vl < 200) {
            memcpy(buf, v, vl);
            n = vl;
        }
        free(v);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "," : "", what);
        if (pw_set_shared("events", 6, buf, n, cas) == 0)
            return;
    }
}

EXPORT("proxy_on_context_create") void on_context_create(uint32_t ctx, uint32_t parent)
{
    if (parent == 0) {
        for (int i = 0; i < MAX_ROOTS; i++)
            if (roots[i].id == 0) {
                roots[i].id = ctx;
                return;
            }
        return;
    }
    for (int i = 0; i < MAX_STREAMS; i++)
        if (streams[i].id == 0) {
            streams[i].id = ctx;
            streams[i].root = parent;
            streams[i].token = 0;
            return;
        }
}

static int root_order_ok = -1; /* on_vm_start saw a root created before it */

EXPORT("proxy_on_vm_start") int on_vm_start(uint32_t root_id, uint32_t len)
{
    root_order_ok = root_id != 0 && find_root(root_id) != NULL;
    char *v = NULL;
    size_t vl = 0;
    pw_get_buffer(BUF_VM, 0, len, &v, &vl);
    snprintf(vm_conf, sizeof(vm_conf), "%.*s", (int)vl, v ? v : "");
    char line[300];
    snprintf(line, sizeof(line), "vm start: root %u, vm configuration '%.*s'", root_id, (int)vl,
             v ? v : "");
    pw_logs(2, line);
    free(v);
    return 1;
}

EXPORT("proxy_on_configure") int on_configure(uint32_t root_id, uint32_t len)
{
    root *r = find_root(root_id);
    if (r == NULL)
        return 0;
    char *v = NULL;
    size_t vl = 0;
    pw_get_buffer(BUF_PLUGIN, 0, len, &v, &vl);
    if (vl >= sizeof(r->cfg))
        vl = sizeof(r->cfg) - 1;
    /* A JSON string configuration arrives with its quotes: drop them. */
    size_t off = 0;
    if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
        off = 1;
        vl -= 2;
    }
    memcpy(r->cfg, v ? v + off : "", vl);
    r->cfg[vl] = 0;
    free(v);
    if (has(r, "refuse"))
        return 0;
    if (has(r, "metric"))
        pw_define_metric(0, "pw_test_requests", 16, &r->metric);
    if (has(r, "tick"))
        pw_set_tick(20);
    if (has(r, "gauges")) {
        pw_define_metric(1, "pw_test_gauge", 13, &r->gauge);
        pw_define_metric(2, "pw_test_hist", 12, &r->hist);
    }
    if (has(r, "queue"))
        pw_register_queue("pwq", 3, &r->queue);
    return 1;
}

/* Add `delta` to the number in shared data `key` (CAS loop); the new value. */
static long long shared_add(const char *key, long long delta)
{
    for (int tries = 0; tries < 20; tries++) {
        char *v = NULL;
        size_t vl = 0;
        uint32_t cas = 0;
        long long c = 0;
        if (pw_get_shared(key, strlen(key), &v, &vl, &cas) == 0 && vl > 0)
            c = strtoll(v, NULL, 10);
        free(v);
        char b[32];
        int bl = snprintf(b, sizeof(b), "%lld", c + delta);
        if (pw_set_shared(key, strlen(key), b, (size_t)bl, cas) == 0)
            return c + delta;
    }
    return -1;
}

EXPORT("proxy_on_queue_ready") void on_queue_ready(uint32_t root_id, uint32_t queue_id)
{
    (void)root_id;
    long long n = 0;
    char *v = NULL;
    size_t vl = 0;
    while (pw_dequeue(queue_id, &v, &vl) == 0) {
        free(v);
        v = NULL;
        n++;
    }
    if (n > 0)
        shared_add("dequeued", n);
}

EXPORT("proxy_on_tick") void on_tick(uint32_t root_id)
{
    root *r = find_root(root_id);
    if (r != NULL)
        r->ticks++;
}

static void set_int_header(int map, const char *k, long long v)
{
    char b[32];
    snprintf(b, sizeof(b), "%lld", v);
    pw_set(map, k, b);
}

static void chain_tag(int map, root *r)
{
    const char *t = tag(r);
    if (t == NULL)
        return;
    char *old = pw_header(map, "x-pw-chain");
    char b[128];
    snprintf(b, sizeof(b), "%s%s%s", old ? old : "", old ? "," : "", t);
    pw_set(map, "x-pw-chain", b);
    free(old);
}

static void prop_header(const char *path, size_t pl, const char *h)
{
    char *v = NULL;
    size_t vl = 0;
    if (pw_get_property(path, pl, &v, &vl) != 0) {
        pw_set(MAP_REQ, h, "(not found)");
        return;
    }
    char b[256];
    snprintf(b, sizeof(b), "%.*s", (int)vl, v ? v : "");
    free(v);
    pw_set(MAP_REQ, h, b);
}

EXPORT("proxy_on_request_headers") int on_request_headers(uint32_t ctx, uint32_t n, uint32_t eos)
{
    root *r = root_of(ctx);
    stream *s = find_stream(ctx);
    if (r == NULL || s == NULL)
        return 0;
    chain_tag(MAP_REQ, r);
    if (has(r, "trap")) {
        char *t = pw_header(MAP_REQ, "x-trap");
        if (t != NULL)
            __builtin_trap();
    }
    if (has(r, "headers")) {
        pw_add(MAP_REQ, "x-pw-added", "1");
        pw_set(MAP_REQ, "x-pw-replace", "new");
        pw_remove_header(MAP_REQ, "x-pw-remove", 11);
        set_int_header(MAP_REQ, "x-pw-count-in", n);
    }
    if (has(r, "props")) {
        prop_header("request\0path", 12, "x-pw-prop-path");
        prop_header("plugin_name", 11, "x-pw-prop-name");
        prop_header("plugin_root_id", 14, "x-pw-prop-root");
        prop_header("request\0method\0", 15, "x-pw-prop-method");
        prop_header("no\0such", 7, "x-pw-prop-missing");
    }
    if (has(r, "props2")) {
        static const char *const names[] = {"request\0host", "request\0scheme",
                                            "request\0protocol", "request\0useragent",
                                            "request\0url_path", "request\0query",
                                            "source\0address", "plugin_vm_id", "route_name",
                                            "xds\0cluster_name"};
        static const size_t lens[] = {12, 14, 16, 17, 16, 13, 14, 12, 10, 16};
        char b[600];
        size_t bl = 0;
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            char *v = NULL;
            size_t vl = 0;
            int st = pw_get_property(names[i], lens[i], &v, &vl);
            bl += (size_t)snprintf(b + bl, sizeof(b) - bl, "%s%.*s", i ? "|" : "",
                                   st == 0 ? (int)vl : 3, st == 0 ? (v ? v : "") : "N/F");
            free(v);
        }
        pw_set(MAP_REQ, "x-pw-props2", b);
    }
    if (has(r, "shared")) {
        for (int tries = 0; tries < 10; tries++) {
            char *v = NULL;
            size_t vl = 0;
            uint32_t cas = 0;
            long long c = 0;
            if (pw_get_shared("count", 5, &v, &vl, &cas) == 0 && vl > 0)
                c = strtoll(v, NULL, 10);
            free(v);
            char b[32];
            int bl = snprintf(b, sizeof(b), "%lld", c + 1);
            if (pw_set_shared("count", 5, b, (size_t)bl, cas) == 0) {
                pw_set(MAP_REQ, "x-pw-count", b);
                break;
            }
        }
        char *v = NULL;
        size_t vl = 0;
        uint32_t cas;
        if (pw_get_shared("events", 6, &v, &vl, &cas) == 0) {
            char b[256];
            snprintf(b, sizeof(b), "%.*s", (int)vl, v);
            pw_set(MAP_REQ, "x-pw-events", b);
        }
        free(v);
    }
    if (has(r, "metric")) {
        uint64_t v = 0;
        pw_increment_metric(r->metric, 1);
        pw_get_metric(r->metric, &v);
        set_int_header(MAP_REQ, "x-pw-metric", (long long)v);
    }
    if (has(r, "tick"))
        set_int_header(MAP_REQ, "x-pw-ticks", r->ticks);
    if (has(r, "gauges")) {
        uint64_t v = 0;
        pw_record_metric(r->gauge, 7);
        pw_record_metric(r->hist, 5);
        pw_get_metric(r->gauge, &v);
        set_int_header(MAP_REQ, "x-pw-gauge", (long long)v);
    }
    if (has(r, "queue")) {
        set_int_header(MAP_REQ, "x-pw-dequeued", shared_add("dequeued", 0));
        pw_enqueue(r->queue, "x", 1);
    }
    if (has(r, "now")) {
        uint64_t ns = 0;
        pw_now(&ns);
        set_int_header(MAP_REQ, "x-pw-now", (long long)ns);
    }
    if (has(r, "vmconf")) {
        pw_set(MAP_REQ, "x-pw-vmconf", vm_conf);
        set_int_header(MAP_REQ, "x-pw-root-order", root_order_ok);
    }
    if (has(r, "stubs")) {
        uint32_t tok = 0, ctr = 0, cas = 0;
        char *v = NULL, *res = NULL;
        size_t vl = 0, rl = 0;
        int grpc = pw_grpc_call("svc", 3, "s", 1, "m", 1, NULL, 0, NULL, 0, 100, &tok);
        int cancel = pw_grpc_cancel(12345);
        int foreign = pw_foreign("nope", 4, NULL, 0, &res, &rl);
        int log6 = pw_log(6, "x", 1);
        int missing = pw_get_header(MAP_REQ, "x-not-there", 11, &v, &vl);
        int deq = pw_dequeue(987654, &v, &vl);
        pw_define_metric(0, "pw_test_stub_counter", 20, &ctr);
        int neg = pw_increment_metric(ctr, -1);
        int eff = pw_set_effective(987654);
        int cont = pw_continue(9);
        pw_set_shared("stub_cas", 8, "a", 1, 0);
        pw_get_shared("stub_cas", 8, &v, &vl, &cas);
        free(v);
        pw_set_shared("stub_cas", 8, "b", 1, 0); /* a new cas */
        int stale = pw_set_shared("stub_cas", 8, "c", 1, cas);
        char b[200];
        snprintf(b, sizeof(b),
                 "grpc=%d cancel=%d foreign=%d log6=%d missing=%d deq=%d neg=%d eff=%d cont=%d "
                 "cas=%d",
                 grpc, cancel, foreign, log6, missing, deq, neg, eff, cont, stale);
        pw_set(MAP_REQ, "x-pw-stubs", b);
    }
    if (has(r, "hdrcheck")) {
        char *v = NULL;
        size_t vl = 0;
        int est = pw_get_header(MAP_REQ, "x-empty", 7, &v, &vl);
        free(v);
        char *dup = pw_header(MAP_REQ, "x-dup");
        char *pairs = NULL;
        size_t pl = 0;
        char order[64] = "";
        int lower = 1;
        if (pw_get_pairs(MAP_REQ, &pairs, &pl) == 0 && pl >= 4) {
            uint32_t n;
            memcpy(&n, pairs, 4);
            const char *d = pairs + 4 + (size_t)n * 8;
            for (uint32_t i = 0; i < n; i++) {
                uint32_t kl, vl2;
                memcpy(&kl, pairs + 4 + i * 8, 4);
                memcpy(&vl2, pairs + 8 + i * 8, 4);
                for (uint32_t k = 0; k < kl; k++)
                    if (d[k] >= 'A' && d[k] <= 'Z')
                        lower = 0;
                if (kl == 5 && memcmp(d, "x-dup", 5) == 0)
                    snprintf(order + strlen(order), sizeof(order) - strlen(order), "%.*s",
                             (int)vl2, d + kl + 1);
                d += kl + 1 + vl2 + 1;
            }
        }
        free(pairs);
        char b[200];
        snprintf(b, sizeof(b), "empty=%d/%zu dup=%s order=%s lower=%d", est, vl,
                 dup ? dup : "-", order, lower);
        free(dup);
        pw_set(MAP_REQ, "x-pw-hdrcheck", b);
    }
    if (has(r, "pseudo")) {
        char *m = pw_header(MAP_REQ, ":method"), *p = pw_header(MAP_REQ, ":path");
        char *a = pw_header(MAP_REQ, ":authority"), *sc = pw_header(MAP_REQ, ":scheme");
        char b[400];
        snprintf(b, sizeof(b), "%s %s %s %s", m ? m : "-", p ? p : "-", a ? a : "-",
                 sc ? sc : "-");
        pw_set(MAP_REQ, "x-pw-pseudo", b);
        free(m), free(p), free(a), free(sc);
        char *np = pw_header(MAP_REQ, "x-new-path");
        if (np != NULL) {
            pw_set(MAP_REQ, ":path", np);
            pw_set(MAP_REQ, ":method", "PUT");
            free(np);
        }
    }
    if (has(r, "log"))
        for (int level = 0; level <= 5; level++) {
            char line[64];
            snprintf(line, sizeof(line), "pw_test log at %d", level);
            pw_logs(level, line);
        }
    if (has(r, "spin") && pw_header(MAP_REQ, "x-spin") != NULL)
        for (volatile int i = 0;; i++)
            ;
    if ((has(r, "block") || has(r, "block0")) && pw_header(MAP_REQ, "x-block") != NULL) {
        const char *kv[] = {"x-pw-blocked", "yes"};
        char h[64];
        size_t hl = pw_pairs(h, kv, 1);
        pw_local(403, "blocked", 7, "blocked by filter\n", 18, h, hl, -1);
        return has(r, "block0") ? 0 : 1;
    }
    if (has(r, "auth")) {
        char *user = pw_header(MAP_REQ, "x-user");
        char path[128];
        snprintf(path, sizeof(path), "/auth?user=%s", user ? user : "");
        free(user);
        const char *kv[] = {":method", "GET", ":path", path, ":authority", "auth"};
        char h[256];
        size_t hl = pw_pairs(h, kv, 3);
        const char *cluster = has(r, "badcluster") ? "nowhere" : "auth";
        int st = pw_http_call(cluster, strlen(cluster), h, hl, NULL, 0, NULL, 0, 5000, &s->token);
        if (st != 0) {
            pw_local(503, "no auth", 7, "auth service unknown\n", 21, NULL, 0, -1);
            return 1;
        }
        return 1; /* paused until the callout answers */
    }
    if (has(r, "pause"))
        return 1;
    (void)eos;
    return 0;
}

EXPORT("proxy_on_request_body") int on_request_body(uint32_t ctx, uint32_t len, uint32_t eos)
{
    root *r = root_of(ctx);
    if (r == NULL || !has(r, "body"))
        return 0;
    if (!eos)
        return 1; /* buffer until the end */
    char *v = NULL;
    size_t vl = 0;
    pw_get_buffer(BUF_REQ, 0, len, &v, &vl);
    for (size_t i = 0; i < vl; i++)
        if (v[i] >= 'a' && v[i] <= 'z')
            v[i] = (char)(v[i] - 32);
    pw_set_buffer(BUF_REQ, 0, len, v, vl);
    free(v);
    pw_remove_header(MAP_REQ, "content-length", 14);
    return 0;
}

EXPORT("proxy_on_http_call_response")
void on_http_call_response(uint32_t root_id, uint32_t token, uint32_t nh, uint32_t blen,
                           uint32_t nt)
{
    (void)nt;
    stream *s = NULL;
    for (int i = 0; i < MAX_STREAMS; i++)
        if (streams[i].id != 0 && streams[i].token == token)
            s = &streams[i];
    if (s == NULL || find_root(root_id) == NULL)
        return;
    pw_set_effective(s->id);
    char *status = nh ? pw_header(MAP_CALL, ":status") : NULL;
    char *body = NULL;
    size_t bl = 0;
    pw_get_buffer(BUF_CALL, 0, blen, &body, &bl);
    if (status != NULL && strcmp(status, "200") == 0) {
        char b[128];
        snprintf(b, sizeof(b), "ok:%.*s", (int)(bl > 60 ? 60 : bl), body ? body : "");
        pw_set(MAP_REQ, "x-auth", b);
        pw_continue(0);
    } else {
        const char *kv[] = {"x-auth-status", status ? status : "failed"};
        char h[128];
        size_t hl = pw_pairs(h, kv, 1);
        pw_local(401, "denied", 6, "denied\n", 7, h, hl, -1);
    }
    free(status);
    free(body);
}

EXPORT("proxy_on_response_headers") int on_response_headers(uint32_t ctx, uint32_t n, uint32_t eos)
{
    (void)n, (void)eos;
    root *r = root_of(ctx);
    if (r == NULL)
        return 0;
    chain_tag(MAP_RESP, r);
    if (has(r, "headers")) {
        pw_add(MAP_RESP, "x-pw-resp", "1");
        pw_set(MAP_RESP, "x-pw-resp-replace", "new");
        pw_remove_header(MAP_RESP, "x-pw-resp-remove", 16);
        char *st = pw_header(MAP_RESP, ":status");
        if (st != NULL)
            pw_set(MAP_RESP, "x-pw-status", st);
        free(st);
    }
    if (has(r, "respbody"))
        pw_remove_header(MAP_RESP, "content-length", 14);
    if (has(r, "props2")) {
        char *v = NULL;
        size_t vl = 0;
        char b[32] = "N/F";
        if (pw_get_property("response\0code", 13, &v, &vl) == 0) {
            /* Envoy encodes numbers as 8 little-endian bytes */
            long long code = 0;
            if (vl == 8)
                memcpy(&code, v, 8);
            snprintf(b, sizeof(b), "%lld/%zu", code, vl);
        }
        free(v);
        pw_set(MAP_RESP, "x-pw-resp-code", b);
    }
    return 0;
}

EXPORT("proxy_on_response_body") int on_response_body(uint32_t ctx, uint32_t len, uint32_t eos)
{
    root *r = root_of(ctx);
    if (r == NULL || !has(r, "respbody") || !eos)
        return 0;
    char *v = NULL;
    size_t vl = 0;
    pw_get_buffer(BUF_RESP, 0, len, &v, &vl);
    char *nb = malloc(vl + 1);
    memcpy(nb, v, vl);
    nb[vl] = '!';
    pw_set_buffer(BUF_RESP, 0, len, nb, vl + 1);
    free(v);
    free(nb);
    return 0;
}

EXPORT("proxy_on_log") void on_log(uint32_t ctx)
{
    root *r = root_of(ctx);
    if (r != NULL && has(r, "shared"))
        event("log");
    if (r != NULL && has(r, "log")) {
        char *m = pw_header(MAP_REQ, ":method"), *p = pw_header(MAP_REQ, ":path");
        char *st = pw_header(MAP_RESP, ":status");
        char line[300];
        snprintf(line, sizeof(line), "pw_test on_log %s %s %s", m ? m : "-", p ? p : "-",
                 st ? st : "-");
        pw_logs(2, line);
        free(m), free(p), free(st);
    }
}

EXPORT("proxy_on_done") int on_done(uint32_t ctx)
{
    root *r = root_of(ctx);
    if (r != NULL && has(r, "shared"))
        event("done");
    return 1;
}

EXPORT("proxy_on_delete") void on_delete(uint32_t ctx)
{
    root *r = root_of(ctx);
    if (r != NULL && has(r, "shared"))
        event("delete");
    stream *s = find_stream(ctx);
    if (s != NULL)
        memset(s, 0, sizeof(*s));
}
