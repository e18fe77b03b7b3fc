/*
 * cgi.c - the WASI-command-as-CGI handler ABI ("wasi"), in the manner of WAGI
 * and RFC 3875: the request body is the guest's stdin, the request is
 * described by CGI meta-variables in its environment, and its stdout is a CGI
 * response (header lines, a blank line, the body). Stderr goes to the server
 * log, one line at a time, prefixed with the function name.
 *
 * Every request runs in a fresh instance with a fresh WASI context; nothing
 * survives between requests (`reuse` is refused: a command's _start runs
 * once per instance). With `snapshot: true` the fresh instance starts from
 * the image taken after the module's `wizer.initialize` or `_initialize`
 * ran at deploy (cgi_snap.c). The request's CGI context (environment,
 * stdio, output back to a response) is cgi_env.c, shared with
 * wasi:cli/command components.
 * docs/internals/http.md lists the variables.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "abi/cgi/cgi_int.h"
#include "abi/cgi/cgi_snap.h"
#include "abi/guest_log.h"
#include "base/alloc.h"
#include "kiln/abi.h"
#include "kiln/handler.h"
#include "kiln/wasi.h"
#include "net/net.h"

#define CGI_MAX_HEADERS 100

typedef struct cgi_state {
    int entry;              /* export index of _start (or fn->export_name) */
    const char *entry_name;
    kiln_wasi_preopen *preopens;
    size_t n_preopens;
    cgi_image img; /* snapshot: true (cgi_snap.h) */
} cgi_state;

static const char WASI_MODULE[] = "wasi_snapshot_preview1";

/* A WASI command: exports _start and imports nothing but WASI and Kiln's own
 * host module "kiln" (the C SDK). Low score, so that an ABI recognising more
 * specific imports wins. */
static int cgi_detect(const kiln_module *m)
{
    if (kiln_module_find_export(m, "_start", KILN_EXTERN_FUNC) < 0)
        return 0;
    for (uint32_t i = 0; i < kiln_module_import_count(m); i++) {
        kiln_extern_info im;
        kiln_module_import(m, i, &im);
        bool wasi = im.module_len == sizeof(WASI_MODULE) - 1 &&
                    memcmp(im.module, WASI_MODULE, im.module_len) == 0;
        bool kiln = im.module_len == 4 && memcmp(im.module, "kiln", 4) == 0;
        if (!wasi && !kiln)
            return 0;
    }
    return 1;
}

static const kiln_hostfn *cgi_hostfns(size_t *n)
{
    /* WASI only; the server always adds the WASI table. */
    *n = 0;
    return NULL;
}

static int cgi_prepare(const kiln_function *fn, kiln_module *m, void **state, kiln_err *err)
{
    *state = NULL;
    if (fn->reuse)
        return kiln_err_set(err, KILN_ECONFIG,
                            "function '%s': 'reuse' is not supported by the wasi (CGI) ABI: a "
                            "command runs _start once per instance; remove 'reuse'",
                            fn->name);
    const char *entry = fn->export_name ? fn->export_name : "_start";
    int idx = kiln_module_find_export(m, entry, KILN_EXTERN_FUNC);
    if (idx < 0)
        return kiln_err_set(err, KILN_ENOEXPORT,
                            "function '%s': module exports no function '%s'; a WASI command "
                            "(built with a main function) exports _start",
                            fn->name, entry);
    kiln_extern_info info;
    kiln_module_export(m, (uint32_t)idx, &info);
    if (strcmp(info.type, ">") != 0)
        return kiln_err_set(err, KILN_ETYPE,
                            "function '%s': export '%s' has type %s; the wasi ABI calls a "
                            "function taking and returning nothing (>)",
                            fn->name, entry, info.type);
    cgi_state *s = kiln_calloc(1, sizeof(*s));
    if (s == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    s->entry = idx;
    s->entry_name = entry;
    if (cgi_preopens(fn, &s->preopens, err) != KILN_OK) {
        kiln_free(s);
        return KILN_ENOMEM;
    }
    s->n_preopens = fn->n_dirs;
    *state = s;
    return KILN_OK;
}

static void cgi_release(void *state)
{
    cgi_state *s = state;
    if (s == NULL)
        return;
    cgi_image_free(&s->img);
    kiln_free(s->preopens);
    kiln_free(s);
}

/* snapshot: true: the image every request starts from (cgi_snap.h). */
static int cgi_snapshot(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                        kiln_err *err)
{
    cgi_state *s = state;
    return cgi_image_make(fn, pre, s->preopens, s->n_preopens, &s->img, err);
}

/* ---- CGI response --------------------------------------------------------------- */

static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* strchr finds the terminator: a NUL must be refused explicitly, or
         * "a\0b" would pass as a token and the header be cut short. */
        if (c == '\0' || (!isalnum(c) && strchr("!#$%&'*+-.^_`|~", c) == NULL))
            return false;
    }
    return true;
}

static bool name_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* The CGI response parser; contract in cgi_int.h. */
int cgi_parse_output(const char *fname, uint8_t *out, size_t len, kiln_response *resp,
                     kiln_err *err)
{
    static const char *const dropped[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                          "Keep-Alive", "Upgrade", "Trailer", "TE",
                                          "Proxy-Connection"};
    size_t pos = 0, line_no = 0, n_headers = 0;
    int status = 0;
    bool location = false;
    if (len == 0)
        return kiln_err_set(err, KILN_EBADOUTPUT,
                            "function '%s' wrote nothing to stdout; a CGI response starts with "
                            "headers such as 'Content-Type: text/plain' and a blank line",
                            fname);
    for (;;) {
        const uint8_t *nl = memchr(out + pos, '\n', len - pos);
        if (nl == NULL)
            return kiln_err_set(err, KILN_EBADOUTPUT,
                                "function '%s': CGI output has no blank line after its headers "
                                "(line %zu is unterminated)",
                                fname, line_no + 1);
        size_t ll = (size_t)(nl - (out + pos));
        const char *line = (const char *)out + pos;
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        pos = (size_t)(nl - out) + 1;
        line_no++;
        if (ll == 0)
            break;
        const char *colon = memchr(line, ':', ll);
        if (colon == NULL || !is_token(line, (size_t)(colon - line)))
            return kiln_err_set(err, KILN_EBADOUTPUT,
                                "function '%s': CGI output line %zu is not a header "
                                "('Name: value'); headers must end with a blank line",
                                fname, line_no);
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1, *ve = line + ll;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *c = v; c < ve; c++)
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
                return kiln_err_set(err, KILN_EBADOUTPUT,
                                    "function '%s': CGI header '%.*s' has a control character",
                                    fname, (int)nlen, line);
        if (++n_headers > CGI_MAX_HEADERS)
            return kiln_err_set(err, KILN_EBADOUTPUT, "function '%s': more than %d CGI headers",
                                fname, CGI_MAX_HEADERS);
        if (name_is(line, nlen, "Status")) {
            int code = 0;
            size_t i = 0, vl = (size_t)(ve - v);
            for (; i < vl && i < 4 && isdigit((unsigned char)v[i]); i++)
                code = code * 10 + (v[i] - '0');
            if (i != 3 || (i < vl && v[i] != ' ') || code < 100 || code > 599)
                return kiln_err_set(err, KILN_EBADOUTPUT,
                                    "function '%s': bad CGI Status '%.*s' (expected e.g. "
                                    "'Status: 404 Not Found')",
                                    fname, (int)(vl > 40 ? 40 : vl), v);
            status = code;
            continue;
        }
        bool drop = false;
        for (size_t d = 0; d < sizeof(dropped) / sizeof(dropped[0]); d++)
            drop = drop || name_is(line, nlen, dropped[d]);
        if (drop)
            continue;
        if (name_is(line, nlen, "Location"))
            location = true;
        if (kiln_response_add_header_n(resp, line, nlen, v, (size_t)(ve - v)) != KILN_OK)
            return kiln_err_set(err, KILN_ENOMEM, "function '%s': out of memory", fname);
    }
    if (n_headers == 0)
        return kiln_err_set(err, KILN_EBADOUTPUT,
                            "function '%s': CGI output starts with a blank line; it needs at "
                            "least one header (Content-Type, Status or Location)",
                            fname);
    resp->status = status ? status : location ? 302 : 200;
    size_t body = len - pos;
    if (resp->max_body != 0 && body > resp->max_body)
        return kiln_err_set(err, KILN_ELIMIT,
                            "function '%s': response body of %zu bytes exceeds the limit of %zu",
                            fname, body, resp->max_body);
    if (resp->body_len != 0) /* never: handle() starts from an empty response */
        return kiln_response_append(resp, out + pos, body);
    memmove(out, out + pos, body);
    kiln_free(resp->body);
    resp->body = out;
    resp->body_len = body;
    resp->body_cap = len;
    return KILN_OK;
}

/* ---- handle ------------------------------------------------------------------ */

/* A guest that aborts right after failing to grow memory was out of memory:
 * C's and Rust's allocators end in `unreachable` when memory.grow fails. */
static void explain_oom(kiln_instance *inst, const kiln_function *fn, kiln_err *err)
{
    if (err->trap != KILN_TRAP_UNREACHABLE || fn->limits.max_memory_bytes == 0)
        return;
    wasm_rt_memory_t *mem = kiln_instance_memory(inst);
    if (mem == NULL)
        return;
    uint64_t limit = (uint64_t)mem->max_pages * 65536;
    if (limit > fn->limits.max_memory_bytes || (uint64_t)mem->size + (1u << 20) < limit)
        return;
    kiln_err_prefix(err,
                    "out of memory: the guest reached its memory limit (%llu of %llu bytes), "
                    "then aborted; raise the function's max_memory",
                    (unsigned long long)mem->size, (unsigned long long)limit);
    err->trap = KILN_TRAP_OUT_OF_MEMORY;
}

static int cgi_handle(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                      const kiln_request *req, kiln_response *resp, kiln_err *err)
{
    cgi_state *s = state;
    cgi_env env;
    kiln_wasi *wasi = NULL;
    kiln_instance *inst = NULL;
    net_ctx http;
    memset(&http, 0, sizeof(http));
    int rc = cgi_env_build(fn, req, &env, err);
    if (rc != KILN_OK)
        return rc;
    rc = cgi_wasi_new(fn, req, &env, s->preopens, s->n_preopens, &wasi, err);
    if (rc != KILN_OK)
        goto out;
    void *slots[KILN_STATE_SLOTS] = {0};
    for (int i = 0; i < KILN_STATE_SLOTS; i++)
        slots[i] = fn->host_state[i];
    slots[KILN_STATE_WASI] = wasi;
    /* Outbound HTTP keeps the instance's last response: one per request. */
    net_ctx_init(&http, fn, fn->limits.timeout_ms);
    slots[KILN_STATE_HTTP] = &http;
    if (s->img.snap != NULL && s->img.pre == pre) /* initialised already */
        rc = kiln_instance_new_from_snapshot(s->img.snap, &fn->limits, slots, &inst, err);
    else
        rc = kiln_instance_new(pre, &fn->limits, slots, &inst, err);
    if (rc == KILN_OK)
        rc = kiln_instance_call_index(inst, s->entry, NULL, NULL, err);
    if (rc == KILN_EEXIT && err->exit_code == 0)
        rc = KILN_OK; /* proc_exit(0): a normal end */
    else if (rc == KILN_EEXIT) {
        int code = err->exit_code;
        kiln_err_set(err, KILN_EEXIT, "function '%s' exited with code %d", fn->name, code);
        err->trap = KILN_TRAP_EXIT;
        err->exit_code = code;
    } else if (rc == KILN_ETRAP && inst != NULL) {
        explain_oom(inst, fn, err);
    }
    cgi_wasi_log_stderr(fn, wasi);
    if (rc == KILN_OK)
        rc = cgi_wasi_respond(fn, wasi, resp, err);
out:
    kiln_instance_free(inst);
    net_ctx_fini(&http);
    kiln_wasi_free(wasi);
    cgi_env_free(&env);
    return rc;
}

KILN_API const kiln_abi_ops kiln_abi_cgi = {
    .name = "wasi",
    .detect = cgi_detect,
    .hostfns = cgi_hostfns,
    .prepare = cgi_prepare,
    .handle = cgi_handle,
    .release = cgi_release,
    .snapshot = cgi_snapshot,
};
