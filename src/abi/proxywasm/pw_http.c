/*
 * pw_http.c - proxy_http_call (spec §3.4, §5.5): callouts to the clusters
 * named in Kiln's configuration (`clusters: {NAME: URL}`).
 *
 * The host function only records the callout and hands out a token; the
 * transfer happens after the callback returns, outside the VM:
 *   - made during a stream's callback: the stage op performs it on the
 *     request's fiber (net_fetch on the worker's curl multi handle: the
 *     fiber is suspended, the thread serves other requests and other
 *     streams of the same VM meanwhile), then calls
 *     proxy_on_http_call_response(root, token, ...) with map 6 and buffer 4
 *     readable; the filter resumes (proxy_continue_stream) or answers.
 *   - made outside a stream (on_configure, on_tick, on_queue_ready): a
 *     task of the worker's loop performs it, posted so it never nests in
 *     the caller's fiber; without a loop it runs at once, blocking.
 * A failed transfer (refused, reset, timeout) is reported as Envoy does:
 * on_http_call_response(root, token, 0, 0, 0), and proxy_get_status then
 * gives BROKEN_CONNECTION with the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/guest_log.h"
#include "abi/proxywasm/pw_int.h"
#include "base/alloc.h"
#include "net/net.h"

#define PW_CALL_DEFAULT_TIMEOUT_MS 30000u
#define PW_CALL_MAX_RESPONSE ((uint64_t)16 << 20)

void pw_callout_free(pw_callout *c)
{
    if (c == NULL)
        return;
    kiln_free(c->url);
    kiln_free(c->method);
    pw_kv_free(c->headers, c->n_headers);
    kiln_free(c->body);
    kiln_free(c);
}

static const char *cluster_url(const kiln_function *fn, const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < fn->n_clusters; i++)
        if (strlen(fn->clusters[i].name) == len && memcmp(fn->clusters[i].name, name, len) == 0)
            return fn->clusters[i].value;
    return NULL;
}

static const char *kv_get(const kiln_kv *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

static uint32_t hf_http_call(kiln_instance *inst, uint32_t up_ptr, uint32_t up_len,
                             uint32_t h_ptr, uint32_t h_len, uint32_t b_ptr, uint32_t b_len,
                             uint32_t t_ptr, uint32_t t_len, uint32_t timeout_ms,
                             uint32_t token_ptr)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *up = pw_in(inst, up_ptr, up_len), *hp = pw_in(inst, h_ptr, h_len);
    const uint8_t *bp = pw_in(inst, b_ptr, b_len), *tp = pw_in(inst, t_ptr, t_len);
    if (up == NULL || hp == NULL || bp == NULL || tp == NULL ||
        kiln_guest_ptr(inst, token_ptr, 4) == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    const kiln_function *fn = vm->fn->fn;
    const char *base = cluster_url(fn, up, up_len);
    if (base == NULL || (int32_t)timeout_ms < 0) {
        static const char msg[] = "proxy_http_call: unknown cluster (name it under `clusters:` "
                                  "in the configuration) or negative timeout";
        pw_log(vm, 1, msg, sizeof(msg) - 1);
        return PW_BAD_ARGUMENT;
    }
    pw_root *root = pw_ctx_root(vm);
    if (root == NULL)
        return PW_BAD_ARGUMENT;
    kiln_kv *h;
    size_t n;
    pw_pairs_parse(hp, h_len, true, &h, &n);
    const char *method = kv_get(h, n, ":method"), *path = kv_get(h, n, ":path");
    const char *authority = kv_get(h, n, ":authority");
    if (method == NULL || path == NULL || authority == NULL || path[0] != '/') {
        pw_kv_free(h, n);
        return PW_BAD_ARGUMENT; /* Envoy requires all three */
    }
    pw_callout *c = kiln_calloc(1, sizeof(*c));
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    size_t ul = bl + strlen(path) + 1;
    if (c != NULL) {
        c->url = kiln_malloc(ul);
        c->method = kiln_strdup(method);
        c->headers = kiln_calloc(n + 1, sizeof(*c->headers));
        c->body = kiln_malloc(b_len ? b_len : 1);
    }
    if (c == NULL || c->url == NULL || c->method == NULL || c->headers == NULL ||
        c->body == NULL) {
        pw_callout_free(c);
        pw_kv_free(h, n);
        return PW_INTERNAL_FAILURE;
    }
    snprintf(c->url, ul, "%.*s%s", (int)bl, base, path);
    /* Pseudo-headers become the request line and Host; the rest go as given. */
    for (size_t i = 0; i < n; i++) {
        if (h[i].name[0] == ':' && strcmp(h[i].name, ":authority") != 0) {
            kiln_free((void *)h[i].name);
            kiln_free((void *)h[i].value);
            continue;
        }
        if (strcmp(h[i].name, ":authority") == 0) {
            kiln_free((void *)h[i].name);
            h[i].name = kiln_strdup("host");
            if (h[i].name == NULL) {
                kiln_free((void *)h[i].value);
                continue;
            }
        }
        c->headers[c->n_headers++] = h[i];
    }
    kiln_free(h);
    memcpy(c->body, bp, b_len);
    c->body_len = b_len;
    c->timeout_ms = timeout_ms ? timeout_ms : PW_CALL_DEFAULT_TIMEOUT_MS;
    c->token = vm->next_id++;
    c->root = root;
    /* Made in a stream's callback: that stream performs it; else the root. */
    pw_callout **list = vm->driver != NULL ? &vm->driver->calls : &root->calls;
    while (*list != NULL)
        list = &(*list)->next;
    *list = c;
    pw_put_u32(inst, token_ptr, c->token);
    return PW_OK;
}

/* Perform one callout; fills *resp or sets the root's failure status. */
static int perform(pw_vm *vm, pw_callout *c, net_response *resp)
{
    kiln_err err;
    memset(&err, 0, sizeof(err));
    net_url u;
    if (net_url_parse(c->url, &u, &err) != KILN_OK) {
        snprintf(c->root->status_msg, sizeof(c->root->status_msg), "bad cluster URL");
        return KILN_EINVAL;
    }
    /* The cluster is the operator's: its origin is the allow-list. */
    char origin[NET_HOST_MAX + 32];
    snprintf(origin, sizeof(origin), "%s://%s:%u", u.scheme, u.host, u.port);
    const char *allow[1] = {origin};
    net_policy policy = {.allow = allow, .n_allow = 1, .max_response_bytes = PW_CALL_MAX_RESPONSE};
    bool has_body = c->body_len > 0 || strcmp(c->method, "POST") == 0 ||
                    strcmp(c->method, "PUT") == 0 || strcmp(c->method, "PATCH") == 0;
    net_request req = {
        .method = c->method,
        .url = c->url,
        .headers = c->headers,
        .n_headers = c->n_headers,
        .body = has_body ? c->body : NULL,
        .body_len = c->body_len,
        .timeout_ms = c->timeout_ms,
        .follow_redirects = false,
    };
    int rc = net_fetch(&policy, &req, resp, &err);
    if (rc != KILN_OK) {
        snprintf(c->root->status_msg, sizeof(c->root->status_msg), "%s",
                 rc == KILN_ETIMEOUT ? "timeout" : "reset");
        char line[sizeof(err.msg) + 64];
        int len = snprintf(line, sizeof(line), "proxy_http_call to %s failed: %s", c->url, err.msg);
        pw_log(vm, 3, line, len < 0 ? 0 : (size_t)len >= sizeof(line) ? sizeof(line) - 1 : (size_t)len);
    }
    return rc;
}

int pw_callouts_run(pw_vm *vm, pw_stream *s, pw_callout **list, kiln_err *err)
{
    int rc = KILN_OK;
    while (rc == KILN_OK && *list != NULL) {
        pw_callout *c = *list;
        *list = c->next;
        net_response resp;
        memset(&resp, 0, sizeof(resp));
        int frc = perform(vm, c, &resp);
        if (s != NULL && kiln_fiber_cancelled()) {
            /* The client went away while the callout ran: as Envoy, drop
             * the stream's callouts without their callbacks. Entering the
             * shared VM now would unwind it at its first host call and
             * break it for every other stream of this worker. */
            net_response_fini(&resp);
            pw_callout_free(c);
            while (*list != NULL) {
                c = *list;
                *list = c->next;
                pw_callout_free(c);
            }
            return kiln_err_set(err, KILN_ECANCELED, "the client went away while the filter "
                                "waited for its http_call");
        }
        pw_call_resp cr = {NULL, 0, NULL, 0};
        kiln_kv *h = NULL;
        if (frc == KILN_OK) {
            h = kiln_calloc(resp.n_headers + 1, sizeof(*h));
            char status[16];
            snprintf(status, sizeof(status), "%ld", resp.status);
            if (h != NULL && (h[0].name = kiln_strdup(":status")) != NULL &&
                (h[0].value = kiln_strdup(status)) != NULL) {
                size_t k = 1;
                for (size_t i = 0; i < resp.n_headers; i++)
                    h[k++] = resp.headers[i];
                resp.n_headers = 0; /* moved */
                cr.headers = h;
                cr.n_headers = k;
            } else if (h != NULL) {
                kiln_free((void *)h[0].name);
                kiln_free(h);
                h = NULL;
            }
            cr.body = resp.body;
            cr.body_len = resp.body_len;
            c->root->status_code = PW_OK;
            c->root->status_msg[0] = '\0';
        } else {
            c->root->status_code = PW_BROKEN_CONNECTION;
        }
        uint32_t args[5] = {c->root->id, c->token, (uint32_t)cr.n_headers, (uint32_t)cr.body_len,
                            0};
        pw_stream *prev = vm->driver;
        vm->driver = s;
        vm->call_resp = &cr;
        rc = pw_vm_call(vm, PW_EX_CALL_RESPONSE, c->root->id, args, 5, 0, NULL, err);
        vm->call_resp = NULL;
        vm->driver = prev;
        pw_kv_free(cr.headers, cr.n_headers);
        net_response_fini(&resp);
        pw_callout_free(c);
    }
    return rc;
}

typedef struct root_task {
    kl_task task;
    pw_vm *vm;
    pw_root *root;
} root_task;

static int root_task_run(void *arg)
{
    root_task *t = arg;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    guest_log_budget b;
    guest_log_begin(&b, t->vm->fn->fn->name, &t->vm->fn->fn->log);
    int rc = pw_callouts_run(t->vm, NULL, &t->root->calls, &err);
    guest_log_end(&b);
    if (rc != KILN_OK)
        fprintf(stderr, "kiln serve: %s\n", err.msg);
    return rc;
}

static void root_task_done(kl_task *task, int result)
{
    (void)result;
    root_task *t = task->arg;
    t->root->calls_running = false;
    pw_vm_release(t->vm);
    kiln_free(t);
}

static void root_task_start(void *arg)
{
    root_task *t = arg;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    if (t->vm->broken || kl_task_start(t->vm->loop, &t->task, &t->vm->fn->fn->limits,
                                       root_task_run, t, &err) != KILN_OK) {
        t->root->calls_running = false;
        pw_vm_release(t->vm);
        kiln_free(t);
    }
}

void pw_root_callouts_start(pw_root *r)
{
    pw_vm *vm = r->vm;
    if (r->calls == NULL || r->calls_running || vm->broken)
        return;
    if (vm->loop == NULL) {
        kiln_err err;
        memset(&err, 0, sizeof(err));
        r->calls_running = true;
        if (pw_callouts_run(vm, NULL, &r->calls, &err) != KILN_OK)
            fprintf(stderr, "kiln: %s\n", err.msg);
        r->calls_running = false;
        return;
    }
    root_task *t = kiln_calloc(1, sizeof(*t));
    if (t == NULL)
        return;
    t->vm = vm;
    t->root = r;
    t->task.done = root_task_done;
    t->task.arg = t;
    pw_vm_retain(vm);
    r->calls_running = true;
    if (kl_post(vm->loop, root_task_start, t) != KILN_OK) {
        r->calls_running = false;
        pw_vm_release(vm);
        kiln_free(t);
    }
}

#define FN(name, sig, fn) {"env", name, sig, (void (*)(void))(fn)}
const kiln_hostfn pw_http_fns[] = {
    FN("proxy_http_call", "iiiiiiiiii>i", hf_http_call),
    /* The name some SDK sources use for the same import. */
    FN("proxy_dispatch_http_call", "iiiiiiiiii>i", hf_http_call),
};
const size_t pw_http_nfns = sizeof(pw_http_fns) / sizeof(pw_http_fns[0]);
