/*
 * pw_headers.c - header maps (spec §5.2), buffers (§5.3), stream control
 * and local replies (§5.4) of the proxy-wasm host.
 *
 * Maps are views of the request (kiln_stage) and response being built:
 * the request map is ":method", ":path", ":authority", ":scheme" then the
 * headers with lower-case names (Host becomes :authority); the response
 * map is ":status" then the headers. A read materialises the map; an edit
 * materialises it, applies the change and writes it back through
 * kiln_stage_set_method/_set_url/_set_headers or into the kiln_response,
 * so the next stage and the backend see exactly what the filter left.
 * Trailers are always empty (Kiln's HTTP library has none); edits to them
 * are accepted and dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi/proxywasm/pw_int.h"
#include "base/alloc.h"

static char *lower_dup(const char *s)
{
    char *d = kiln_strdup(s);
    for (char *c = d; c != NULL && *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    return d;
}

/* Append a copy (name lower-cased) to a growing list. */
static int kv_push(kiln_kv **h, size_t *n, size_t *cap, const char *name, const char *value)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        kiln_kv *g = kiln_realloc(*h, c * sizeof(*g));
        if (g == NULL)
            return KILN_ENOMEM;
        *h = g;
        *cap = c;
    }
    char *k = lower_dup(name), *v = kiln_strdup(value ? value : "");
    if (k == NULL || v == NULL) {
        kiln_free(k);
        kiln_free(v);
        return KILN_ENOMEM;
    }
    (*h)[*n].name = k;
    (*h)[*n].value = v;
    (*n)++;
    return KILN_OK;
}

int pw_request_map(kiln_stage *st, kiln_kv **out, size_t *n)
{
    const kiln_request *rq = kiln_stage_request(st);
    const char *authority = rq->host ? rq->host : "";
    for (size_t i = 0; i < rq->n_headers; i++)
        if (strcasecmp(rq->headers[i].name, "host") == 0)
            authority = rq->headers[i].value;
    kiln_kv *h = NULL;
    size_t cap = 0;
    *n = 0;
    int rc = kv_push(&h, n, &cap, ":method", rq->method ? rq->method : "GET");
    if (rc == KILN_OK)
        rc = kv_push(&h, n, &cap, ":path", rq->url ? rq->url : "/");
    if (rc == KILN_OK)
        rc = kv_push(&h, n, &cap, ":authority", authority);
    if (rc == KILN_OK)
        rc = kv_push(&h, n, &cap, ":scheme", "http");
    for (size_t i = 0; rc == KILN_OK && i < rq->n_headers; i++)
        if (strcasecmp(rq->headers[i].name, "host") != 0)
            rc = kv_push(&h, n, &cap, rq->headers[i].name, rq->headers[i].value);
    if (rc != KILN_OK) {
        pw_kv_free(h, *n);
        *n = 0;
        h = NULL;
    }
    *out = h;
    return rc;
}

int pw_response_map(const kiln_response *r, kiln_kv **out, size_t *n)
{
    kiln_kv *h = NULL;
    size_t cap = 0;
    char status[16];
    snprintf(status, sizeof(status), "%d", r->status);
    *n = 0;
    int rc = kv_push(&h, n, &cap, ":status", status);
    for (size_t i = 0; rc == KILN_OK && i < r->n_headers; i++)
        rc = kv_push(&h, n, &cap, r->headers[i].name, r->headers[i].value);
    if (rc != KILN_OK) {
        pw_kv_free(h, *n);
        *n = 0;
        h = NULL;
    }
    *out = h;
    return rc;
}

static const char *kv_get(const kiln_kv *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

/* Write a request map back into the stage. */
static int store_request(kiln_stage *st, const kiln_kv *h, size_t n)
{
    const kiln_request *rq = kiln_stage_request(st);
    const char *m = kv_get(h, n, ":method"), *p = kv_get(h, n, ":path");
    const char *a = kv_get(h, n, ":authority");
    int rc = KILN_OK;
    if (m != NULL && *m && strcmp(m, rq->method ? rq->method : "") != 0)
        rc = kiln_stage_set_method(st, m);
    if (rc == KILN_OK && p != NULL && *p && strcmp(p, rq->url ? rq->url : "") != 0)
        rc = kiln_stage_set_url(st, p);
    if (rc != KILN_OK)
        return rc;
    kiln_kv *plain = kiln_calloc(n + 1, sizeof(*plain));
    if (plain == NULL)
        return KILN_ENOMEM;
    size_t k = 0;
    if (a != NULL && *a)
        plain[k++] = (kiln_kv){"host", a};
    for (size_t i = 0; i < n; i++)
        if (h[i].name[0] != ':' && strcmp(h[i].name, "host") != 0)
            plain[k++] = h[i];
    rc = kiln_stage_set_headers(st, plain, k);
    kiln_free(plain);
    return rc;
}

static int store_response(kiln_response *r, const kiln_kv *h, size_t n)
{
    const char *s = kv_get(h, n, ":status");
    if (s != NULL) {
        long v = strtol(s, NULL, 10);
        if (v >= 100 && v <= 599)
            r->status = (int)v;
    }
    for (size_t i = 0; i < r->n_headers; i++) {
        kiln_free((void *)r->headers[i].name);
        kiln_free((void *)r->headers[i].value);
    }
    r->n_headers = 0;
    int rc = KILN_OK;
    for (size_t i = 0; rc == KILN_OK && i < n; i++)
        if (h[i].name[0] != ':')
            rc = kiln_response_add_header(r, h[i].name, h[i].value);
    return rc;
}

/* Map `type` of the calling context: a copy in *h (free with pw_kv_free).
 * PW_OK, PW_BAD_ARGUMENT (no such map now) or PW_INTERNAL_FAILURE. */
static uint32_t map_load(pw_vm *vm, uint32_t type, kiln_kv **h, size_t *n)
{
    *h = NULL;
    *n = 0;
    if (type > 7)
        return PW_BAD_ARGUMENT;
    if (type == PW_MAP_CALL_RESP || type == PW_MAP_CALL_TRAILERS) {
        if (vm->call_resp == NULL)
            return PW_BAD_ARGUMENT;
        if (type == PW_MAP_CALL_TRAILERS)
            return PW_OK;
        kiln_kv *c = kiln_calloc(vm->call_resp->n_headers + 1, sizeof(*c));
        if (c == NULL)
            return PW_INTERNAL_FAILURE;
        for (size_t i = 0; i < vm->call_resp->n_headers; i++) {
            c[i].name = kiln_strdup(vm->call_resp->headers[i].name);
            c[i].value = kiln_strdup(vm->call_resp->headers[i].value);
            *n = i + 1;
            if (c[i].name == NULL || c[i].value == NULL) {
                pw_kv_free(c, *n);
                *n = 0;
                return PW_INTERNAL_FAILURE;
            }
        }
        *h = c;
        return PW_OK;
    }
    pw_stream *s = pw_ctx_stream(vm);
    if (s == NULL || type == 4 || type == 5)
        return PW_BAD_ARGUMENT;
    if (type == PW_MAP_REQ_TRAILERS || type == PW_MAP_RESP_TRAILERS)
        return PW_OK;
    int rc = type == PW_MAP_REQ ? pw_request_map(s->st, h, n)
                                : pw_response_map(kiln_stage_response(s->st), h, n);
    return rc == KILN_OK ? PW_OK : PW_INTERNAL_FAILURE;
}

static uint32_t map_store(pw_vm *vm, uint32_t type, const kiln_kv *h, size_t n)
{
    if (type == PW_MAP_REQ_TRAILERS || type == PW_MAP_RESP_TRAILERS)
        return PW_OK;
    pw_stream *s = pw_ctx_stream(vm);
    if (s == NULL || (type != PW_MAP_REQ && type != PW_MAP_RESP))
        return PW_BAD_ARGUMENT;
    int rc = type == PW_MAP_REQ ? store_request(s->st, h, n)
                                : store_response(kiln_stage_response(s->st), h, n);
    return rc == KILN_OK ? PW_OK : PW_INTERNAL_FAILURE;
}

/* A guest string as a NUL-terminated, lower-cased copy (keys) or as-is. */
static char *guest_str(kiln_instance *inst, uint32_t ptr, uint32_t len, bool lower)
{
    const uint8_t *p = pw_in(inst, ptr, len);
    if (p == NULL)
        return NULL;
    char *s = kiln_strndup((const char *)p, len);
    for (char *c = s; lower && c != NULL && *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    return s;
}

static uint32_t hf_get_map_pairs(kiln_instance *inst, uint32_t type, uint32_t ret_ptr,
                                 uint32_t ret_len)
{
    pw_vm *vm = pw_vm_of(inst);
    kiln_kv *h;
    size_t n;
    uint32_t st = map_load(vm, type, &h, &n);
    if (st != PW_OK)
        return st;
    size_t size = pw_pairs_size(h, n);
    uint8_t *buf = size ? kiln_malloc(size) : NULL;
    if (size && buf == NULL) {
        pw_kv_free(h, n);
        return PW_INTERNAL_FAILURE;
    }
    pw_pairs_write(h, n, buf);
    pw_kv_free(h, n);
    st = pw_out(inst, buf, size, ret_ptr, ret_len);
    kiln_free(buf);
    return pw_finish(inst, st);
}

static uint32_t hf_set_map_pairs(kiln_instance *inst, uint32_t type, uint32_t ptr, uint32_t len)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *p = pw_in(inst, ptr, len);
    if (p == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    if (type > 7)
        return PW_BAD_ARGUMENT;
    kiln_kv *h;
    size_t n;
    pw_pairs_parse(p, len, true, &h, &n);
    uint32_t st = map_store(vm, type, h, n);
    pw_kv_free(h, n);
    return st;
}

static uint32_t hf_get_map_value(kiln_instance *inst, uint32_t type, uint32_t kptr, uint32_t klen,
                                 uint32_t ret_ptr, uint32_t ret_len)
{
    pw_vm *vm = pw_vm_of(inst);
    char *key = guest_str(inst, kptr, klen, true);
    if (key == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    kiln_kv *h;
    size_t n;
    uint32_t st = map_load(vm, type, &h, &n);
    char *val = NULL;
    if (st == PW_OK) {
        const char *v = kv_get(h, n, key);
        if (v == NULL)
            st = PW_NOT_FOUND;
        else if ((val = kiln_strdup(v)) == NULL)
            st = PW_INTERNAL_FAILURE;
    }
    pw_kv_free(h, n);
    kiln_free(key);
    if (st != PW_OK)
        return st;
    /* Present and empty: OK with 0, 0 (C++ filters test presence this way). */
    st = pw_out(inst, val, strlen(val), ret_ptr, ret_len);
    kiln_free(val);
    return pw_finish(inst, st);
}

enum { EDIT_ADD, EDIT_REPLACE, EDIT_REMOVE };

static uint32_t edit_map(kiln_instance *inst, uint32_t type, uint32_t kptr, uint32_t klen,
                         uint32_t vptr, uint32_t vlen, int op)
{
    pw_vm *vm = pw_vm_of(inst);
    char *key = guest_str(inst, kptr, klen, true);
    char *val = op == EDIT_REMOVE ? kiln_strdup("") : guest_str(inst, vptr, vlen, false);
    if (key == NULL || val == NULL) {
        kiln_free(key);
        kiln_free(val);
        return PW_INVALID_MEMORY_ACCESS;
    }
    kiln_kv *h;
    size_t n;
    uint32_t st = map_load(vm, type, &h, &n);
    if (st == PW_OK && type != PW_MAP_REQ && type != PW_MAP_RESP && type != PW_MAP_REQ_TRAILERS &&
        type != PW_MAP_RESP_TRAILERS)
        st = PW_BAD_ARGUMENT; /* callout answers are read-only */
    kiln_kv *g = NULL;
    size_t m = 0;
    if (st == PW_OK && (g = kiln_calloc(n + 1, sizeof(*g))) == NULL)
        st = PW_INTERNAL_FAILURE;
    if (st == PW_OK) {
        bool placed = false;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(h[i].name, key) == 0 && op != EDIT_ADD) {
                if (op == EDIT_REPLACE && !placed) {
                    g[m++] = (kiln_kv){h[i].name, val};
                    placed = true;
                }
                continue;
            }
            g[m++] = h[i];
        }
        if ((op == EDIT_ADD || op == EDIT_REPLACE) && !placed)
            g[m++] = (kiln_kv){key, val};
        st = map_store(vm, type, g, m);
    }
    kiln_free(g);
    pw_kv_free(h, n);
    kiln_free(key);
    kiln_free(val);
    return st;
}

static uint32_t hf_add_map_value(kiln_instance *inst, uint32_t type, uint32_t kp, uint32_t kl,
                                 uint32_t vp, uint32_t vl)
{
    return edit_map(inst, type, kp, kl, vp, vl, EDIT_ADD);
}

static uint32_t hf_replace_map_value(kiln_instance *inst, uint32_t type, uint32_t kp, uint32_t kl,
                                     uint32_t vp, uint32_t vl)
{
    return edit_map(inst, type, kp, kl, vp, vl, EDIT_REPLACE);
}

static uint32_t hf_remove_map_value(kiln_instance *inst, uint32_t type, uint32_t kp, uint32_t kl)
{
    return edit_map(inst, type, kp, kl, 0, 0, EDIT_REMOVE);
}

static uint32_t hf_get_map_size(kiln_instance *inst, uint32_t type, uint32_t ret)
{
    pw_vm *vm = pw_vm_of(inst);
    kiln_kv *h;
    size_t n;
    uint32_t st = map_load(vm, type, &h, &n);
    size_t size = st == PW_OK ? pw_pairs_size(h, n) : 0;
    pw_kv_free(h, n);
    if (st != PW_OK)
        return st;
    return pw_put_u32(inst, ret, (uint32_t)size) ? PW_OK : PW_INVALID_MEMORY_ACCESS;
}

/* ---- buffers ------------------------------------------------------------------------ */

/* The bytes of buffer `type` now, or PW_NOT_FOUND. */
static uint32_t buffer_view(pw_vm *vm, uint32_t type, const uint8_t **data, size_t *len)
{
    pw_stream *s = pw_ctx_stream(vm);
    pw_root *r = pw_ctx_root(vm);
    switch (type) {
    case PW_BUF_REQ_BODY:
        if (s == NULL)
            return PW_NOT_FOUND;
        *data = kiln_stage_request(s->st)->body;
        *len = kiln_stage_request(s->st)->body_len;
        return PW_OK;
    case PW_BUF_RESP_BODY:
        if (s == NULL || !s->resp_seen)
            return PW_NOT_FOUND;
        *data = kiln_stage_response(s->st)->body;
        *len = kiln_stage_response(s->st)->body_len;
        return PW_OK;
    case PW_BUF_CALL_BODY:
        if (vm->call_resp == NULL)
            return PW_NOT_FOUND;
        *data = vm->call_resp->body;
        *len = vm->call_resp->body_len;
        return PW_OK;
    case PW_BUF_VM_CONFIG:
        if (r == NULL)
            return PW_NOT_FOUND;
        *data = (const uint8_t *)r->vm_config;
        *len = strlen((const char *)*data);
        return PW_OK;
    case PW_BUF_PLUGIN_CONFIG:
        /* Envoy: only during proxy_on_configure. */
        if (vm->configuring == NULL)
            return PW_NOT_FOUND;
        *data = (const uint8_t *)vm->configuring->config;
        *len = strlen((const char *)*data);
        return PW_OK;
    default:
        return PW_NOT_FOUND;
    }
}

static uint32_t hf_get_buffer_bytes(kiln_instance *inst, uint32_t type, uint32_t start,
                                    uint32_t max, uint32_t ret_ptr, uint32_t ret_len)
{
    pw_vm *vm = pw_vm_of(inst);
    if ((uint64_t)start + max > UINT32_MAX)
        return PW_BAD_ARGUMENT;
    const uint8_t *data = NULL;
    size_t len = 0;
    uint32_t st = buffer_view(vm, type, &data, &len);
    if (st != PW_OK)
        return st;
    if (start > len)
        return pw_finish(inst, pw_out(inst, NULL, 0, ret_ptr, ret_len));
    size_t take = len - start < max ? len - start : max;
    /* The view may move when the allocator runs: copy first. */
    uint8_t *copy = take ? kiln_malloc(take) : NULL;
    if (take && copy == NULL)
        return PW_INTERNAL_FAILURE;
    if (take)
        memcpy(copy, data + start, take);
    st = pw_out(inst, copy, take, ret_ptr, ret_len);
    kiln_free(copy);
    return pw_finish(inst, st);
}

/* Replace a content-length header with the new length, if there is one
 * (filters rewriting bodies usually remove it; Kiln frames the rest). */
static int fix_length_request(kiln_stage *st, size_t len)
{
    const kiln_request *rq = kiln_stage_request(st);
    for (size_t i = 0; i < rq->n_headers; i++)
        if (strcasecmp(rq->headers[i].name, "content-length") == 0) {
            char v[32];
            snprintf(v, sizeof(v), "%zu", len);
            return kiln_stage_set_header(st, "content-length", v);
        }
    return KILN_OK;
}

static void fix_length_response(kiln_response *r)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, "content-length") == 0) {
            char v[32];
            snprintf(v, sizeof(v), "%zu", r->body_len);
            char *nv = kiln_strdup(v);
            if (nv != NULL) {
                kiln_free((void *)r->headers[i].value);
                r->headers[i].value = nv;
            }
        }
}

static uint32_t hf_set_buffer_bytes(kiln_instance *inst, uint32_t type, uint32_t start,
                                    uint32_t size, uint32_t ptr, uint32_t len)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *p = pw_in(inst, ptr, len);
    if (p == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    pw_stream *s = pw_ctx_stream(vm);
    if (s == NULL || (type != PW_BUF_REQ_BODY && type != PW_BUF_RESP_BODY))
        return type <= 8 ? PW_BAD_ARGUMENT : PW_NOT_FOUND;
    if (type == PW_BUF_RESP_BODY && !s->resp_seen)
        return PW_NOT_FOUND;
    const uint8_t *old;
    size_t old_len;
    buffer_view(vm, type, &old, &old_len);
    /* Envoy's three forms: prepend, replace all, append. */
    size_t keep_front, keep_back_from;
    if (start == 0 && size == 0) {
        keep_front = 0;
        keep_back_from = 0;
    } else if (start == 0 && size >= old_len) {
        keep_front = 0;
        keep_back_from = old_len;
    } else if (start >= old_len) {
        keep_front = old_len;
        keep_back_from = old_len;
    } else {
        return PW_BAD_ARGUMENT;
    }
    size_t nl = keep_front + len + (old_len - keep_back_from);
    uint8_t *nb = kiln_malloc(nl ? nl : 1);
    if (nb == NULL)
        return PW_INTERNAL_FAILURE;
    memcpy(nb, old, keep_front);
    memcpy(nb + keep_front, p, len);
    memcpy(nb + keep_front + len, old + keep_back_from, old_len - keep_back_from);
    int rc;
    if (type == PW_BUF_REQ_BODY) {
        rc = kiln_stage_set_body(s->st, nb, nl);
        if (rc == KILN_OK)
            rc = fix_length_request(s->st, nl);
    } else {
        kiln_response *r = kiln_stage_response(s->st);
        r->body_len = 0;
        rc = kiln_response_append(r, nb, nl);
        if (rc == KILN_OK)
            fix_length_response(r);
    }
    kiln_free(nb);
    return rc == KILN_OK ? PW_OK : PW_INTERNAL_FAILURE;
}

static uint32_t hf_get_buffer_status(kiln_instance *inst, uint32_t type, uint32_t len_ptr,
                                     uint32_t flags_ptr)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *data;
    size_t len = 0;
    uint32_t st = buffer_view(vm, type, &data, &len);
    if (st != PW_OK)
        return st;
    if (!pw_put_u32(inst, len_ptr, (uint32_t)len) || !pw_put_u32(inst, flags_ptr, 0))
        return PW_INVALID_MEMORY_ACCESS;
    return PW_OK;
}

/* ---- stream control ---------------------------------------------------------------- */

static uint32_t hf_continue_stream(kiln_instance *inst, uint32_t type)
{
    pw_vm *vm = pw_vm_of(inst);
    if (type > 3)
        return PW_BAD_ARGUMENT;
    pw_stream *s = pw_ctx_stream(vm);
    if (s == NULL)
        return PW_NOT_FOUND;
    if (type <= 1)
        s->paused = false;
    return PW_OK;
}

static uint32_t hf_continue_request(kiln_instance *inst)
{
    return hf_continue_stream(inst, 0);
}

static uint32_t hf_continue_response(kiln_instance *inst)
{
    return hf_continue_stream(inst, 1);
}

static uint32_t hf_close_stream(kiln_instance *inst, uint32_t type)
{
    pw_vm *vm = pw_vm_of(inst);
    if (type > 3)
        return PW_BAD_ARGUMENT;
    pw_stream *s = pw_ctx_stream(vm);
    if (s == NULL)
        return PW_NOT_FOUND;
    s->closed = true;
    return PW_OK;
}

int pw_local_response(pw_stream *s, int status, const uint8_t *body, size_t body_len,
                      const kiln_kv *h, size_t n)
{
    kiln_response *r = kiln_stage_response(s->st);
    kiln_response_reset(r);
    r->status = status;
    int rc = KILN_OK;
    bool has_type = false;
    for (size_t i = 0; rc == KILN_OK && i < n; i++) {
        if (h[i].name[0] == ':')
            continue;
        has_type = has_type || strcmp(h[i].name, "content-type") == 0;
        rc = kiln_response_add_header(r, h[i].name, h[i].value);
    }
    /* Envoy labels a local reply's body text/plain unless told otherwise. */
    if (rc == KILN_OK && body_len > 0 && !has_type)
        rc = kiln_response_add_header(r, "content-type", "text/plain");
    if (rc == KILN_OK)
        rc = kiln_response_append(r, body, body_len);
    s->local = true;
    s->paused = false;
    return rc;
}

static uint32_t hf_send_local_response(kiln_instance *inst, uint32_t status, uint32_t dptr,
                                       uint32_t dlen, uint32_t bptr, uint32_t blen,
                                       uint32_t hptr, uint32_t hlen, uint32_t grpc)
{
    (void)grpc; /* gRPC status: Kiln serves no gRPC */
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *details = pw_in(inst, dptr, dlen), *body = pw_in(inst, bptr, blen);
    const uint8_t *hp = pw_in(inst, hptr, hlen);
    if (details == NULL || body == NULL || hp == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    pw_stream *s = pw_ctx_stream(vm);
    if (s == NULL)
        return PW_NOT_FOUND;
    if (status < 100 || status > 599)
        return PW_BAD_ARGUMENT;
    kiln_kv *h;
    size_t n;
    pw_pairs_parse(hp, hlen, true, &h, &n);
    /* Copy the body: kiln_response_append may not read guest memory after
     * it reallocates ours, but the guest's memory does not move here. */
    int rc = pw_local_response(s, (int)status, body, blen, h, n);
    pw_kv_free(h, n);
    return rc == KILN_OK ? PW_OK : PW_INTERNAL_FAILURE;
}

#define FN(name, sig, fn) {"env", name, sig, (void (*)(void))(fn)}
const kiln_hostfn pw_headers_fns[] = {
    FN("proxy_get_header_map_pairs", "iii>i", hf_get_map_pairs),
    FN("proxy_set_header_map_pairs", "iii>i", hf_set_map_pairs),
    FN("proxy_get_header_map_value", "iiiii>i", hf_get_map_value),
    FN("proxy_add_header_map_value", "iiiii>i", hf_add_map_value),
    FN("proxy_replace_header_map_value", "iiiii>i", hf_replace_map_value),
    FN("proxy_remove_header_map_value", "iii>i", hf_remove_map_value),
    FN("proxy_get_header_map_size", "ii>i", hf_get_map_size),
    FN("proxy_get_buffer_bytes", "iiiii>i", hf_get_buffer_bytes),
    FN("proxy_set_buffer_bytes", "iiiii>i", hf_set_buffer_bytes),
    FN("proxy_get_buffer_status", "iii>i", hf_get_buffer_status),
    FN("proxy_continue_stream", "i>i", hf_continue_stream),
    FN("proxy_close_stream", "i>i", hf_close_stream),
    FN("proxy_continue_request", ">i", hf_continue_request),
    FN("proxy_continue_response", ">i", hf_continue_response),
    FN("proxy_send_local_response", "iiiiiiii>i", hf_send_local_response),
};
const size_t pw_headers_nfns = sizeof(pw_headers_fns) / sizeof(pw_headers_fns[0]);
