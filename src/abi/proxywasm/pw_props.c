/*
 * pw_props.c - proxy_get_property / proxy_set_property (spec §4.2) with
 * Envoy's attribute names, computed from the request as edited so far and
 * the response: request.{path,url_path,host,scheme,method,headers,id,
 * protocol,query,size,total_size,useragent,referer}, response.{code,headers,
 * size,total_size}, source.{address,port}, destination.{address,port},
 * plugin_name, plugin_root_id, plugin_vm_id, route_name / xds.route_name,
 * xds.cluster_name (the backend) — and whatever the filter set itself with
 * proxy_set_property on this stream. Everything else is NOT_FOUND.
 * Encodings as Envoy: strings raw, integers 8 bytes little-endian, maps as
 * pairs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi/proxywasm/pw_int.h"
#include "base/alloc.h"

typedef struct prop_out {
    uint8_t *v;
    size_t len;
} prop_out;

static uint32_t out_bytes(prop_out *o, const void *data, size_t len)
{
    o->v = kiln_malloc(len ? len : 1);
    if (o->v == NULL)
        return PW_INTERNAL_FAILURE;
    memcpy(o->v, data, len);
    o->len = len;
    return PW_OK;
}

static uint32_t out_str(prop_out *o, const char *s)
{
    return out_bytes(o, s ? s : "", s ? strlen(s) : 0);
}

static uint32_t out_int(prop_out *o, int64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)v >> (8 * i));
    return out_bytes(o, b, 8);
}

static uint32_t out_map(prop_out *o, kiln_kv *h, size_t n, int rc)
{
    if (rc != KILN_OK)
        return PW_INTERNAL_FAILURE;
    /* Envoy's header maps hold the pseudo-headers too. */
    size_t size = pw_pairs_size(h, n);
    uint32_t st = PW_OK;
    o->v = kiln_malloc(size ? size : 1);
    if (o->v == NULL)
        st = PW_INTERNAL_FAILURE;
    else
        pw_pairs_write(h, n, o->v);
    o->len = size;
    pw_kv_free(h, n);
    return st;
}

static const char *req_header(const kiln_request *rq, const char *name)
{
    for (size_t i = 0; i < rq->n_headers; i++)
        if (strcasecmp(rq->headers[i].name, name) == 0)
            return rq->headers[i].value;
    return NULL;
}

/* "1.2.3.4:5678", "[::1]:80" or a bare address: split off the port. */
static void split_addr(const char *a, char *host, size_t cap, long *port)
{
    *port = 0;
    snprintf(host, cap, "%s", a ? a : "");
    char *colon = strrchr(host, ':'), *rb = strrchr(host, ']');
    bool v6_bare = colon != NULL && strchr(host, ':') != colon && rb == NULL;
    if (colon != NULL && !v6_bare && (rb == NULL || rb < colon)) {
        *port = strtol(colon + 1, NULL, 10);
        *colon = '\0';
    }
}

static uint32_t lookup(pw_vm *vm, const char *path, prop_out *o)
{
    pw_stream *s = pw_ctx_stream(vm);
    pw_root *r = pw_ctx_root(vm);
    pw_fn *f = vm->fn;
    if (strcmp(path, "plugin_root_id") == 0)
        return out_str(o, f->root_id); /* OK even when empty: SDKs abort otherwise */
    if (strcmp(path, "plugin_vm_id") == 0)
        return out_str(o, f->vm_id);
    if (strcmp(path, "plugin_name") == 0)
        return out_str(o, r != NULL && r->name[0] ? r->name : f->fn->name);
    if (s == NULL)
        return PW_NOT_FOUND;
    /* What the filter set on this stream wins. */
    size_t pl = strlen(path);
    for (pw_prop *p = s->props; p != NULL; p = p->next)
        if (p->path_len == pl && memcmp(p->path, path, pl) == 0)
            return out_bytes(o, p->value, p->len);
    const kiln_request *rq = kiln_stage_request(s->st);
    const kiln_stage_info *info = kiln_stage_get_info(s->st);
    if (strncmp(path, "request.", 8) == 0) {
        const char *k = path + 8;
        if (strcmp(k, "path") == 0)
            return out_str(o, rq->url);
        if (strcmp(k, "url_path") == 0)
            return out_str(o, rq->path);
        if (strcmp(k, "query") == 0)
            return out_str(o, rq->query);
        if (strcmp(k, "host") == 0) {
            const char *h = req_header(rq, "host");
            return out_str(o, h ? h : rq->host);
        }
        if (strcmp(k, "scheme") == 0)
            return out_str(o, "http");
        if (strcmp(k, "method") == 0)
            return out_str(o, rq->method);
        if (strcmp(k, "protocol") == 0)
            return out_str(o, "HTTP/1.1");
        if (strcmp(k, "id") == 0) {
            const char *h = req_header(rq, "x-request-id");
            return out_str(o, h ? h : s->req_id);
        }
        if (strcmp(k, "useragent") == 0 || strcmp(k, "referer") == 0) {
            const char *h = req_header(rq, k[0] == 'u' ? "user-agent" : "referer");
            return h ? out_str(o, h) : PW_NOT_FOUND;
        }
        if (strcmp(k, "size") == 0 || strcmp(k, "total_size") == 0)
            return out_int(o, (int64_t)rq->body_len);
        if (strcmp(k, "headers") == 0) {
            kiln_kv *h;
            size_t n;
            int rc = pw_request_map(s->st, &h, &n);
            return out_map(o, h, n, rc);
        }
        return PW_NOT_FOUND;
    }
    if (strncmp(path, "response.", 9) == 0) {
        if (!s->resp_seen)
            return PW_NOT_FOUND;
        const kiln_response *resp = kiln_stage_response(s->st);
        const char *k = path + 9;
        if (strcmp(k, "code") == 0)
            return out_int(o, resp->status);
        if (strcmp(k, "size") == 0 || strcmp(k, "total_size") == 0)
            return out_int(o, (int64_t)resp->body_len);
        if (strcmp(k, "headers") == 0) {
            kiln_kv *h;
            size_t n;
            int rc = pw_response_map(resp, &h, &n);
            return out_map(o, h, n, rc);
        }
        return PW_NOT_FOUND;
    }
    if (strcmp(path, "source.address") == 0 || strcmp(path, "source.port") == 0) {
        char host[256];
        long port;
        split_addr(rq->remote_addr, host, sizeof(host), &port);
        if (path[7] == 'a')
            return out_str(o, rq->remote_addr ? rq->remote_addr : "");
        return port ? out_int(o, port) : PW_NOT_FOUND;
    }
    if ((strcmp(path, "route_name") == 0 || strcmp(path, "xds.route_name") == 0) && info != NULL)
        return out_str(o, info->route);
    if (strcmp(path, "xds.cluster_name") == 0 && info != NULL)
        return out_str(o, info->backend);
    return PW_NOT_FOUND;
}

uint32_t pw_property(pw_vm *vm, const uint8_t *path, size_t len, uint8_t **val, size_t *vlen)
{
    /* Segments are NUL-separated (C++ terminates each, Rust/Go join them):
     * join the non-empty ones with '.', Envoy's attribute spelling. */
    char name[256];
    size_t n = 0;
    bool sep = false;
    for (size_t i = 0; i < len; i++) {
        if (path[i] == 0) {
            sep = n > 0;
            continue;
        }
        if (sep) {
            if (n + 1 >= sizeof(name))
                return PW_NOT_FOUND;
            name[n++] = '.';
            sep = false;
        }
        if (n + 1 >= sizeof(name))
            return PW_NOT_FOUND;
        name[n++] = (char)path[i];
    }
    name[n] = '\0';
    prop_out o = {NULL, 0};
    uint32_t st = lookup(vm, name, &o);
    *val = o.v;
    *vlen = o.len;
    return st;
}

uint32_t pw_property_set(pw_vm *vm, const uint8_t *path, size_t len, const uint8_t *val,
                         size_t vlen)
{
    pw_stream *s = pw_ctx_stream(vm);
    if (s == NULL)
        return PW_NOT_FOUND;
    /* Stored under the dotted name, so reads with either spelling match. */
    char name[256];
    size_t n = 0;
    bool sep = false;
    for (size_t i = 0; i < len && n + 2 < sizeof(name); i++) {
        if (path[i] == 0) {
            sep = n > 0;
            continue;
        }
        if (sep) {
            name[n++] = '.';
            sep = false;
        }
        name[n++] = (char)path[i];
    }
    name[n] = '\0';
    pw_prop *p = NULL;
    for (pw_prop *q = s->props; q != NULL; q = q->next)
        if (q->path_len == n && memcmp(q->path, name, n) == 0)
            p = q;
    uint8_t *copy = kiln_malloc(vlen ? vlen : 1);
    if (copy == NULL)
        return PW_INTERNAL_FAILURE;
    memcpy(copy, val, vlen);
    if (p == NULL) {
        p = kiln_calloc(1, sizeof(*p));
        if (p == NULL || (p->path = kiln_strdup(name)) == NULL) {
            kiln_free(p);
            kiln_free(copy);
            return PW_INTERNAL_FAILURE;
        }
        p->path_len = n;
        p->next = s->props;
        s->props = p;
    } else {
        kiln_free(p->value);
    }
    p->value = copy;
    p->len = vlen;
    return PW_OK;
}

void pw_props_free(pw_prop *p)
{
    while (p != NULL) {
        pw_prop *next = p->next;
        kiln_free(p->path);
        kiln_free(p->value);
        kiln_free(p);
        p = next;
    }
}
