/*
 * cgi_env.c - a request as a CGI context, shared by the wasi (CGI) ABI
 * (cgi.c) and wasi:cli/command components served the same way
 * (src/abi/component/): the RFC 3875 meta-variables plus the function's own
 * environment, the preview-1 WASI context that carries them (stdin = the
 * body, stdout and stderr captured), and the captured output back as a
 * response (stderr to the server log, stdout through cgi_parse_output).
 * Contracts in cgi_int.h; docs/internals/http.md lists the variables.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "abi/cgi/cgi_int.h"
#include "abi/guest_log.h"
#include "base/alloc.h"
#include "kiln/handler.h"
#include "kiln/wasi.h"

#define CGI_HEADER_SLACK ((size_t)64 << 10) /* stdout room for headers beyond the body cap */
#define CGI_STDERR_CAP ((size_t)64 << 10)
#define CGI_DEFAULT_OUTPUT ((size_t)16 << 20)

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
void cgi_log_lines(const char *name, const uint8_t *data, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const uint8_t *nl = memchr(data + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (data + pos)) : len - pos;
        guest_log_write(name, NULL, (const char *)data + pos, ll);
        pos += ll + (nl ? 1 : 0);
    }
}


int cgi_env_build(const kiln_function *fn, const kiln_request *req, cgi_env *out,
                  kiln_err *err)
{
    env_builder e;
    memset(&e, 0, sizeof(e));
    memset(out, 0, sizeof(*out));
    build_env(&e, fn, req);
    e.max = e.n;
    e.cap = e.len;
    e.buf = kiln_malloc(e.cap ? e.cap : 1);
    e.vars = kiln_malloc((e.max ? e.max : 1) * sizeof(*e.vars));
    if (e.buf == NULL || e.vars == NULL) {
        kiln_free(e.buf);
        kiln_free(e.vars);
        return kiln_err_set(err, KILN_ENOMEM, "function '%s': out of memory", fn->name);
    }
    e.n = e.len = 0;
    build_env(&e, fn, req);
    out->buf = e.buf;
    out->vars = e.vars;
    out->n = e.n;
    return KILN_OK;
}

void cgi_env_free(cgi_env *e)
{
    if (e == NULL)
        return;
    kiln_free(e->buf);
    kiln_free(e->vars);
    memset(e, 0, sizeof(*e));
}

size_t cgi_output_cap(const kiln_function *fn)
{
    return fn->max_output_bytes ? fn->max_output_bytes : CGI_DEFAULT_OUTPUT;
}

int cgi_wasi_new(const kiln_function *fn, const kiln_request *req, const cgi_env *env,
                 const kiln_wasi_preopen *preopens, size_t n_preopens, kiln_wasi **out,
                 kiln_err *err)
{
    kiln_wasi_config wc;
    memset(&wc, 0, sizeof(wc));
    const char *argv[1] = {fn->name};
    wc.argv = argv;
    wc.argc = 1;
    wc.env = env->vars;
    wc.envc = env->n;
    wc.preopens = preopens;
    wc.npreopens = n_preopens;
    wc.stdio[0].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[0].data = req->body != NULL ? (const void *)req->body : ""; /* never NULL + 0 */
    wc.stdio[0].len = req->body_len;
    wc.stdio[1].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[1].cap = cgi_output_cap(fn) + CGI_HEADER_SLACK;
    wc.stdio[2].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[2].cap = CGI_STDERR_CAP;
    return kiln_wasi_new(&wc, out, err);
}

void cgi_wasi_log_stderr(const kiln_function *fn, kiln_wasi *wasi)
{
    size_t elen;
    const uint8_t *edata = kiln_wasi_output(wasi, 2, &elen, NULL);
    if (elen > 0)
        cgi_log_lines(fn->name, edata, elen);
}

int cgi_wasi_respond(const kiln_function *fn, kiln_wasi *wasi, kiln_response *resp,
                     kiln_err *err)
{
    uint8_t *out;
    size_t olen;
    bool truncated;
    kiln_wasi_output(wasi, 1, &olen, &truncated);
    if (truncated)
        return kiln_err_set(err, KILN_ELIMIT,
                            "function '%s': output exceeds max_output_bytes (%zu bytes)",
                            fn->name, cgi_output_cap(fn));
    kiln_wasi_output_take(wasi, 1, &out, &olen);
    int rc = cgi_parse_output(fn->name, out, olen, resp, err);
    if (resp->body != out)
        kiln_free(out);
    return rc;
}

int cgi_preopens(const kiln_function *fn, kiln_wasi_preopen **out, kiln_err *err)
{
    *out = NULL;
    if (fn->n_dirs == 0)
        return KILN_OK;
    kiln_wasi_preopen *p = kiln_calloc(fn->n_dirs, sizeof(*p));
    if (p == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "function '%s': out of memory", fn->name);
    for (size_t i = 0; i < fn->n_dirs; i++) {
        p[i].host_path = fn->dirs[i].host;
        p[i].guest_path = fn->dirs[i].guest;
        p[i].read_only = fn->dirs[i].read_only;
    }
    *out = p;
    return KILN_OK;
}
