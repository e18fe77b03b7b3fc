/*
 * cgi.c - the WASI-command-as-CGI handler ABI ("wasi"), in the manner of WAGI
 * and RFC 3875: the request body is the guest's stdin, the request is
 * described by CGI meta-variables in its environment, and its stdout is a CGI
 * response (header lines, a blank line, the body). Stderr goes to the server
 * log, one line at a time, prefixed with the function name.
 *
 * Every request runs in a fresh instance with a fresh WASI context; nothing
 * survives between requests (`reuse` is refused: a command's _start runs
 * once per instance). docs/internals/http.md lists the variables.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "abi/cgi/cgi_int.h"
#include "abi/guest_log.h"
#include "base/alloc.h"
#include "kiln/abi.h"
#include "kiln/handler.h"
#include "kiln/wasi.h"
#include "net/net.h"

#define CGI_MAX_HEADERS 100
#define CGI_HEADER_SLACK ((size_t)64 << 10) /* stdout room for headers beyond the body cap */
#define CGI_STDERR_CAP ((size_t)64 << 10)
#define CGI_DEFAULT_OUTPUT ((size_t)16 << 20)

typedef struct cgi_state {
    int entry;              /* export index of _start (or fn->export_name) */
    const char *entry_name;
    kiln_wasi_preopen *preopens;
    size_t n_preopens;
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
    if (fn->n_dirs > 0) {
        s->preopens = kiln_calloc(fn->n_dirs, sizeof(*s->preopens));
        if (s->preopens == NULL) {
            kiln_free(s);
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < fn->n_dirs; i++) {
            s->preopens[i].host_path = fn->dirs[i].host;
            s->preopens[i].guest_path = fn->dirs[i].guest;
            s->preopens[i].read_only = fn->dirs[i].read_only;
        }
        s->n_preopens = fn->n_dirs;
    }
    *state = s;
    return KILN_OK;
}

static void cgi_release(void *state)
{
    cgi_state *s = state;
    if (s == NULL)
        return;
    kiln_free(s->preopens);
    kiln_free(s);
}

/* ---- environment ---------------------------------------------------------- */

/* Environment under construction: strings packed into one buffer. Built in
 * two passes (count, then write) so each request does two allocations. */
typedef struct env_builder {
    char *buf;
    size_t len, cap;
    const char **vars;
    size_t n, max;
} env_builder;

/* Append NAME=VALUE; `name` is copied through `map` (CGI spelling of a
 * header or parameter name) when map is true. */
static void env_add(env_builder *e, const char *prefix, const char *name, bool map,
                    const char *value, size_t vlen)
{
    size_t pl = strlen(prefix), nl = strlen(name);
    size_t need = pl + nl + 1 + vlen + 1;
    if (e->buf == NULL) { /* counting pass */
        e->len += need;
        e->n++;
        return;
    }
    char *s = e->buf + e->len;
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)name[i];
        s[pl + i] = map ? (isalnum(c) ? (char)toupper(c) : '_') : (char)c;
    }
    s[pl + nl] = '=';
    memcpy(s + pl + nl + 1, value, vlen);
    s[need - 1] = '\0';
    /* Values must not contain NUL: the env string would end early. Header
     * values cannot (the HTTP parser refuses them), guest-facing params are
     * decoded without %00 (the router refuses it). */
    e->vars[e->n++] = s;
    e->len += need;
}

static void env_adds(env_builder *e, const char *name, const char *value)
{
    env_add(e, "", name, false, value, strlen(value));
}

static bool env_has(const env_builder *e, const char *name, size_t nl)
{
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->vars[i], name, nl) == 0 && e->vars[i][nl] == '=')
            return true;
    return false;
}

static const char *find_kv(const kiln_kv *kv, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(kv[i].name, name) == 0)
            return kv[i].value;
    return NULL;
}

/* Header names that become HTTP_* variables: letters, digits and '-' only.
 * A name with '_' (or anything else mapped to '_') could pose as another
 * header after mapping ("X_Forwarded_For" vs "X-Forwarded-For"), so such
 * headers are not passed, as nginx does by default. */
static bool header_name_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-')
            return false;
    return true;
}

/* HTTP_<NAME> for header i, its value joined with every later header of the
 * same name by ", " (RFC 9110 5.3); later duplicates are skipped. */
static void env_add_header(env_builder *e, const kiln_request *req, size_t i)
{
    const char *name = req->headers[i].name;
    for (size_t j = 0; j < i; j++)
        if (strcasecmp(req->headers[j].name, name) == 0)
            return; /* joined into the first one */
    size_t vlen = 0, count = 0;
    for (size_t j = i; j < req->n_headers; j++)
        if (strcasecmp(req->headers[j].name, name) == 0) {
            vlen += strlen(req->headers[j].value) + (count ? 2 : 0);
            count++;
        }
    if (count == 1 || e->buf == NULL) {
        /* One value, or the counting pass (only the length matters there). */
        env_add(e, "HTTP_", name, true, count == 1 ? req->headers[i].value : "", vlen);
        return;
    }
    char *start = e->buf + e->len;
    env_add(e, "HTTP_", name, true, "", 0);
    /* env_add wrote "HTTP_NAME=" and a NUL; extend it in place (the counting
     * pass reserved vlen bytes for it). */
    char *v = start + strlen(start);
    for (size_t j = i, k = 0; j < req->n_headers; j++) {
        if (strcasecmp(req->headers[j].name, name) != 0)
            continue;
        size_t l = strlen(req->headers[j].value);
        if (k++ > 0) {
            memcpy(v, ", ", 2);
            v += 2;
        }
        memcpy(v, req->headers[j].value, l);
        v += l;
    }
    *v = '\0';
    e->len += vlen;
}

static void build_env(env_builder *e, const kiln_function *fn, const kiln_request *req)
{
    char num[32];
    const char *rest = NULL;
    for (size_t i = 0; i < req->n_params; i++)
        if (strcmp(req->params[i].name, "*") == 0)
            rest = req->params[i].value;
    /* SCRIPT_NAME is the path the route matched; PATH_INFO the rest below a
     * prefix route (RFC 3875 4.1.13, 4.1.5). */
    size_t plen = strlen(req->path), rlen = rest ? strlen(rest) : 0;
    size_t script_len = plen;
    if (rest != NULL && rlen <= plen && memcmp(req->path + plen - rlen, rest, rlen) == 0)
        script_len = plen - rlen;

    env_adds(e, "GATEWAY_INTERFACE", "CGI/1.1");
    env_adds(e, "SERVER_SOFTWARE", "kiln/" KILN_VERSION);
    env_adds(e, "SERVER_PROTOCOL", "HTTP/1.1");
    env_adds(e, "REQUEST_METHOD", req->method);
    env_adds(e, "REQUEST_URI", req->url);
    env_add(e, "", "SCRIPT_NAME", false, req->path, script_len);
    env_adds(e, "PATH_INFO", rest ? rest : "");
    env_adds(e, "QUERY_STRING", req->query ? req->query : "");
    const char *ct = find_kv(req->headers, req->n_headers, "Content-Type");
    if (ct != NULL)
        env_adds(e, "CONTENT_TYPE", ct);
    if (req->body_len > 0 || find_kv(req->headers, req->n_headers, "Content-Length") != NULL) {
        snprintf(num, sizeof(num), "%zu", req->body_len);
        env_adds(e, "CONTENT_LENGTH", num);
    }
    /* SERVER_NAME and SERVER_PORT from the Host header (the request view
     * carries no listener address); "[v6]:port" keeps its brackets. */
    const char *host = req->host && req->host[0] ? req->host : "localhost";
    const char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    if (colon != NULL && host[0] == '[')
        colon++;
    if (colon != NULL) {
        env_add(e, "", "SERVER_NAME", false, host, (size_t)(colon - host));
        env_adds(e, "SERVER_PORT", colon + 1);
    } else {
        env_adds(e, "SERVER_NAME", host);
        env_adds(e, "SERVER_PORT", "80");
    }
    env_adds(e, "REMOTE_ADDR", req->remote_addr ? req->remote_addr : "");
    for (size_t i = 0; i < req->n_params; i++)
        if (strcmp(req->params[i].name, "*") != 0)
            env_add(e, "X_PARAM_", req->params[i].name, true, req->params[i].value,
                    strlen(req->params[i].value));
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *n = req->headers[i].name;
        if (!header_name_ok(n) || strcasecmp(n, "Content-Type") == 0 ||
            strcasecmp(n, "Content-Length") == 0 || strcasecmp(n, "Proxy") == 0)
            continue; /* CONTENT_* above; HTTP_PROXY is the httpoxy hole */
        env_add_header(e, req, i);
    }
    /* The function's own environment; CGI variables take precedence. */
    for (size_t i = 0; i < fn->n_env; i++) {
        if (e->buf != NULL && env_has(e, fn->env[i].name, strlen(fn->env[i].name)))
            continue;
        env_adds(e, fn->env[i].name, fn->env[i].value);
    }
}

/* ---- logging ---------------------------------------------------------------- */

/* Guest stderr into the server log: "[fn] line", each line through the
 * invocation's log budget (abi/guest_log.h: lines, bytes, line length). */
static void log_stderr(const char *name, const uint8_t *data, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const uint8_t *nl = memchr(data + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (data + pos)) : len - pos;
        guest_log_write(name, NULL, (const char *)data + pos, ll);
        pos += ll + (nl ? 1 : 0);
    }
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
    env_builder e;
    memset(&e, 0, sizeof(e));
    build_env(&e, fn, req);
    e.max = e.n;
    e.cap = e.len;
    e.buf = kiln_malloc(e.cap ? e.cap : 1);
    e.vars = kiln_malloc((e.max ? e.max : 1) * sizeof(*e.vars));
    e.n = e.len = 0;
    kiln_wasi *wasi = NULL;
    kiln_instance *inst = NULL;
    net_ctx http;
    memset(&http, 0, sizeof(http));
    int rc = KILN_OK;
    if (e.buf == NULL || e.vars == NULL) {
        rc = kiln_err_set(err, KILN_ENOMEM, "function '%s': out of memory", fn->name);
        goto out;
    }
    build_env(&e, fn, req);

    size_t out_cap = fn->max_output_bytes ? fn->max_output_bytes : CGI_DEFAULT_OUTPUT;
    kiln_wasi_config wc;
    memset(&wc, 0, sizeof(wc));
    const char *argv[1] = {fn->name};
    wc.argv = argv;
    wc.argc = 1;
    wc.env = e.vars;
    wc.envc = e.n;
    wc.preopens = s->preopens;
    wc.npreopens = s->n_preopens;
    wc.stdio[0].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[0].data = req->body;
    wc.stdio[0].len = req->body_len;
    wc.stdio[1].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[1].cap = out_cap + CGI_HEADER_SLACK;
    wc.stdio[2].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[2].cap = CGI_STDERR_CAP;
    rc = kiln_wasi_new(&wc, &wasi, err);
    if (rc != KILN_OK)
        goto out;
    void *slots[KILN_STATE_SLOTS] = {0};
    for (int i = 0; i < KILN_STATE_SLOTS; i++)
        slots[i] = fn->host_state[i];
    slots[KILN_STATE_WASI] = wasi;
    /* Outbound HTTP keeps the instance's last response: one per request. */
    net_ctx_init(&http, fn, fn->limits.timeout_ms);
    slots[KILN_STATE_HTTP] = &http;
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

    size_t elen;
    const uint8_t *edata = kiln_wasi_output(wasi, 2, &elen, NULL);
    if (elen > 0)
        log_stderr(fn->name, edata, elen);
    if (rc != KILN_OK)
        goto out;

    uint8_t *out;
    size_t olen;
    bool truncated;
    kiln_wasi_output(wasi, 1, &olen, &truncated);
    if (truncated) {
        rc = kiln_err_set(err, KILN_ELIMIT,
                          "function '%s': output exceeds max_output_bytes (%zu bytes)", fn->name,
                          out_cap);
        goto out;
    }
    kiln_wasi_output_take(wasi, 1, &out, &olen);
    rc = cgi_parse_output(fn->name, out, olen, resp, err);
    if (resp->body != out)
        kiln_free(out);
out:
    kiln_instance_free(inst);
    net_ctx_fini(&http);
    kiln_wasi_free(wasi);
    kiln_free(e.buf);
    kiln_free(e.vars);
    return rc;
}

KILN_API const kiln_abi_ops kiln_abi_cgi = {
    .name = "wasi",
    .detect = cgi_detect,
    .hostfns = cgi_hostfns,
    .prepare = cgi_prepare,
    .handle = cgi_handle,
    .release = cgi_release,
};
