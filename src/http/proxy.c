/*
 * proxy.c - routes to an upstream service (`upstream: URL` on a route): the
 * request is forwarded through src/net (libcurl; on a serve worker the
 * transfer runs on the worker's curl multi handle and the request's fiber
 * waits, so a slow upstream holds no thread), the answer relayed.
 *
 * What crosses, as reverse proxies (nginx, Envoy) do:
 *  - method, path and query, appended to the upstream's base path (a prefix
 *    route "/api/..." forwards what follows "/api": /api/x?q -> BASE/x?q);
 *  - request headers except the hop-by-hop ones (RFC 9110 §7.6.1: Connection
 *    and the headers it names, Keep-Alive, Proxy-Connection, TE, Trailer,
 *    Transfer-Encoding, Upgrade) and those the transfer itself sets (Host,
 *    Content-Length, Expect); X-Forwarded-For gains the client address,
 *    X-Forwarded-Host and X-Forwarded-Proto carry the original host and scheme;
 *  - the body, buffered both ways (bounded by the server's body limit and
 *    HTTP_UPSTREAM_MAX_RESPONSE).
 * The upstream is the operator's own: the SSRF guard admits exactly its
 * origin (a loopback or private address named there is reachable), nothing
 * else; redirects are relayed to the client, never followed.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "http/http_int.h"
#include "net/net.h"

#define PROXY_MAX_HEADERS (NET_MAX_HEADERS - 4)

static const char *const hop_by_hop[] = {
    "connection", "keep-alive", "proxy-connection", "te",   "trailer",
    "transfer-encoding", "upgrade", "host", "content-length", "expect",
};

/* Is `name` hop-by-hop here, or listed in the message's Connection header? */
static bool hop(const char *name, const char *connection)
{
    for (size_t i = 0; i < sizeof(hop_by_hop) / sizeof(hop_by_hop[0]); i++)
        if (strcasecmp(name, hop_by_hop[i]) == 0)
            return true;
    if (connection == NULL)
        return false;
    size_t n = strlen(name);
    for (const char *p = connection; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - p) == n && strncasecmp(p, name, n) == 0)
            return true;
        p = e;
    }
    return false;
}

static const char *find(const kiln_kv *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

static void fail(kiln_response *resp, int status, const http_fn *f, const char *msg)
{
    http_error_response(resp, status, f->fn.name, msg);
    http_log("[%s] %d: %s", f->fn.name, status, msg);
}

int http_proxy(const http_fn *f, const kiln_request *req, kiln_response *resp)
{
    net_url u;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    if (net_url_parse(f->upstream, &u, &err) != KILN_OK) { /* checked at load: unreachable */
        fail(resp, 502, f, err.msg);
        return KILN_EINVAL;
    }
    /* The upstream's base path, then the request's path and query as received
     * (for a prefix route, what follows the prefix). */
    size_t base_len = strlen(f->upstream);
    while (base_len > 0 && f->upstream[base_len - 1] == '/')
        base_len--;
    const char *rest = req->url;
    size_t sl = f->strip ? strlen(f->strip) : 0;
    if (sl > 0 && strncmp(rest, f->strip, sl) == 0 &&
        (rest[sl] == '\0' || rest[sl] == '/' || rest[sl] == '?'))
        rest += sl;
    size_t url_len = base_len + strlen(rest) + 2;
    char *url = kiln_malloc(url_len);
    char origin[NET_HOST_MAX + 32];
    snprintf(origin, sizeof(origin), "%s://%s:%u", u.scheme, u.host, u.port);
    const char *allow[1] = {origin};
    kiln_kv hdrs[NET_MAX_HEADERS];
    char xff[512], xfh[300];
    if (url == NULL) {
        fail(resp, 500, f, "out of memory");
        return KILN_ENOMEM;
    }
    snprintf(url, url_len, "%.*s%s%s", (int)base_len, f->upstream, rest[0] == '/' ? "" : "/",
             rest);

    const char *connection = find(req->headers, req->n_headers, "connection");
    const char *prior_xff = find(req->headers, req->n_headers, "x-forwarded-for");
    size_t n = 0;
    for (size_t i = 0; i < req->n_headers && n < PROXY_MAX_HEADERS; i++) {
        const char *name = req->headers[i].name;
        if (hop(name, connection) || strncasecmp(name, "x-forwarded-", 12) == 0)
            continue;
        hdrs[n++] = req->headers[i];
    }
    if (prior_xff != NULL)
        snprintf(xff, sizeof(xff), "%s, %s", prior_xff, req->remote_addr);
    else
        snprintf(xff, sizeof(xff), "%s", req->remote_addr);
    snprintf(xfh, sizeof(xfh), "%s", req->host);
    hdrs[n++] = (kiln_kv){"X-Forwarded-For", xff};
    if (xfh[0] != '\0')
        hdrs[n++] = (kiln_kv){"X-Forwarded-Host", xfh};
    hdrs[n++] = (kiln_kv){"X-Forwarded-Proto", "http"};

    net_policy policy = {.allow = allow, .n_allow = 1,
                         .max_response_bytes = HTTP_UPSTREAM_MAX_RESPONSE};
    net_request nr = {
        .method = req->method,
        .url = url,
        .headers = hdrs,
        .n_headers = n,
        .body = req->body_len > 0 || strcmp(req->method, "POST") == 0 ||
                        strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0
                    ? (req->body ? req->body : (const uint8_t *)"")
                    : NULL,
        .body_len = req->body_len,
        .timeout_ms = f->fn.limits.timeout_ms,
        .follow_redirects = false,
    };
    net_response nresp;
    int rc = net_fetch(&policy, &nr, &nresp, &err);
    kiln_free(url);
    if (rc != KILN_OK) {
        char msg[sizeof(err.msg) + 300];
        if (rc == KILN_ETIMEOUT) {
            snprintf(msg, sizeof(msg), "upstream %s did not answer within %u ms (the route's "
                     "timeout)", f->upstream, (unsigned)f->fn.limits.timeout_ms);
            fail(resp, 504, f, msg);
        } else {
            snprintf(msg, sizeof(msg), "upstream %s: %s", f->upstream, err.msg);
            fail(resp, 502, f, msg);
        }
        return rc;
    }
    resp->status = (int)nresp.status;
    const char *up_connection = NULL;
    for (size_t i = 0; i < nresp.n_headers; i++)
        if (strcasecmp(nresp.headers[i].name, "connection") == 0)
            up_connection = nresp.headers[i].value;
    for (size_t i = 0; i < nresp.n_headers && rc == KILN_OK; i++)
        if (!hop(nresp.headers[i].name, up_connection))
            rc = kiln_response_add_header(resp, nresp.headers[i].name, nresp.headers[i].value);
    if (rc == KILN_OK && nresp.body_len > 0)
        rc = kiln_response_append(resp, nresp.body, nresp.body_len);
    net_response_fini(&nresp);
    if (rc != KILN_OK) {
        kiln_response_reset(resp);
        fail(resp, 502, f, "the upstream's answer does not fit (out of memory or over the "
                           "response limit)");
    }
    return rc;
}
