/*
 * xtm_http.c - the Extism http_request / http_status_code / http_headers host
 * functions (§8) on top of Kiln's one outbound HTTP client (src/net), and
 * the base64 helpers Extism and Otoroshi share.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi/extism/xtm_int.h"
#include "base/alloc.h"
#include "kiln/abi.h"
#include "net/net.h"

/* ---- base64 ------------------------------------------------------------------ */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *xtm_base64_encode(const uint8_t *data, size_t len)
{
    if (len > (SIZE_MAX - 4) / 4 * 3)
        return NULL;
    size_t n = (len + 2) / 3 * 4;
    char *out = kiln_malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int xtm_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
    /* Accepts standard and URL-safe alphabets, with or without padding;
     * whitespace is skipped. */
    *out = kiln_malloc(len / 4 * 3 + 3);
    *out_len = 0;
    if (*out == NULL)
        return KILN_ENOMEM;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64val(c);
        if (v < 0 || pad > 0)
            goto bad;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            (*out)[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6 || pad > 2)
        goto bad;
    *out_len = o;
    return KILN_OK;
bad:
    kiln_free(*out);
    *out = NULL;
    return KILN_EINVAL;
}

/* ---- Extism host functions ------------------------------------------------------ */

/* Parse and check the request JSON (§9.2); on failure msg says why. */
static int parse_request(const uint8_t *json, size_t len, json_t **root, const char **url,
                         const char **method, kiln_kv **hdrs, size_t *n_hdrs, char *msg,
                         size_t cap)
{
    json_error_t je;
    *root = json_loadb((const char *)json, len, 0, &je);
    if (*root == NULL || !json_is_object(*root)) {
        snprintf(msg, cap, "http_request: the request is not a JSON object: %s",
                 *root ? "wrong type" : je.text);
        return KILN_EINVAL;
    }
    const char *k;
    json_t *v, *headers = NULL;
    *url = NULL;
    *method = NULL;
    json_object_foreach(*root, k, v) {
        if (strcmp(k, "url") == 0 && json_is_string(v)) {
            *url = json_string_value(v);
        } else if (strcmp(k, "method") == 0 && (json_is_string(v) || json_is_null(v))) {
            *method = json_string_value(v);
        } else if ((strcmp(k, "headers") == 0 || strcmp(k, "header") == 0) &&
                   (json_is_object(v) || json_is_null(v))) {
            headers = v;
        } else if (strcmp(k, "url") == 0 || strcmp(k, "method") == 0 ||
                   strcmp(k, "headers") == 0 || strcmp(k, "header") == 0) {
            snprintf(msg, cap, "http_request: field `%s` has the wrong type", k);
            return KILN_EINVAL;
        } else {
            snprintf(msg, cap,
                     "http_request: unknown field `%s`, expected one of `url`, `headers`, "
                     "`method`",
                     k);
            return KILN_EINVAL;
        }
    }
    if (*url == NULL) {
        snprintf(msg, cap, "http_request: missing field `url`");
        return KILN_EINVAL;
    }
    size_t n = headers ? json_object_size(headers) : 0;
    *hdrs = kiln_calloc(n ? n : 1, sizeof(**hdrs));
    *n_hdrs = 0;
    if (*hdrs == NULL) {
        snprintf(msg, cap, "http_request: out of host memory");
        return KILN_ENOMEM;
    }
    if (headers != NULL) {
        json_object_foreach(headers, k, v) {
            if (!json_is_string(v)) {
                snprintf(msg, cap, "http_request: header `%s` must be a string", k);
                return KILN_EINVAL;
            }
            (*hdrs)[*n_hdrs].name = k;
            (*hdrs)[(*n_hdrs)++].value = json_string_value(v);
        }
    }
    return KILN_OK;
}

/* Response headers as a compact JSON object; `first_wins` keeps the first
 * value of a repeated name (Otoroshi), otherwise the last (Extism). Returns
 * a jansson-allocated string or NULL (out of memory). */
char *xtm_http_headers_json(const net_response *r, bool first_wins)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < r->n_headers; i++) {
        if (first_wins && json_object_get(o, r->headers[i].name) != NULL)
            continue;
        json_t *v = json_string(r->headers[i].value);
        if (v == NULL || json_object_set_new(o, r->headers[i].name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

uint64_t xtm_hf_http_request(kiln_instance *inst, uint64_t req, uint64_t body)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    const xtm_options *o = c->o;
    c->http_status = 0;
    kiln_free(c->http_headers);
    c->http_headers = NULL;
    if (xtm_remaining_ms(c) == 0)
        kiln_host_trap(inst, KILN_TRAP_TIMEOUT, "timeout");
    uint64_t rlen = xtm_mem_length(&c->mem, req), blen = xtm_mem_length(&c->mem, body);
    xtm_mem_consume(&c->mem, req);
    xtm_mem_consume(&c->mem, body);
    const uint8_t *rb = rlen ? c->mem.buf + req : (const uint8_t *)"";
    uint8_t *bb = blen ? c->mem.buf + body : NULL;

    char msg[600] = "";
    int kind = KILN_TRAP_HOST;
    json_t *root = NULL;
    kiln_kv *hdrs = NULL;
    size_t n_hdrs = 0;
    const char *url, *method;
    net_response resp;
    memset(&resp, 0, sizeof(resp));
    char *headers_json = NULL;
    uint8_t *data = NULL;
    size_t data_len = 0;

    int rc = parse_request(rb, (size_t)rlen, &root, &url, &method, &hdrs, &n_hdrs, msg,
                           sizeof(msg));
    if (rc == KILN_OK) {
        /* The method is upper-cased; absent or null means GET. */
        char up[32];
        size_t i = 0;
        for (; method && method[i] && i < sizeof(up) - 1; i++)
            up[i] = (char)((method[i] >= 'a' && method[i] <= 'z') ? method[i] - 32 : method[i]);
        up[i] = '\0';
        net_policy pol;
        memset(&pol, 0, sizeof(pol));
        pol.allow = o->allowed_hosts;
        pol.n_allow = o->n_allowed_hosts;
        pol.max_response_bytes = o->max_http_response_bytes;
        net_request nr;
        memset(&nr, 0, sizeof(nr));
        nr.method = i ? up : "GET";
        nr.url = url;
        nr.headers = hdrs;
        nr.n_headers = n_hdrs;
        /* The body block is dead, so nothing re-uses it: safe to read. */
        nr.body = bb;
        nr.body_len = (size_t)blen;
        nr.timeout_ms = xtm_remaining_ms(c);
        /* Redirects are not followed (docs/internals/extism.md). */
        kiln_err e;
        rc = net_fetch(&pol, &nr, &resp, &e);
        if (rc == KILN_ETIMEOUT)
            kind = KILN_TRAP_TIMEOUT;
        if (rc != KILN_OK)
            snprintf(msg, sizeof(msg), "%.560s", e.msg);
    }
    if (rc == KILN_OK) {
        c->http_status = (int32_t)resp.status;
        if (o->http_headers) {
            char *j = xtm_http_headers_json(&resp, false);
            headers_json = j ? kiln_strdup(j) : NULL;
            free(j); /* jansson's allocation */
        }
        data = resp.body;
        data_len = resp.body_len;
        resp.body = NULL;
    }
    net_response_fini(&resp);
    json_decref(root);
    kiln_free(hdrs);
    /* The results go into the context, which frees them with the call. */
    c->http_headers = headers_json;
    uint64_t h = 0;
    int arc = KILN_OK;
    if (rc == KILN_OK && data_len > 0) {
        arc = xtm_mem_alloc(&c->mem, data_len, &h);
        if (arc == KILN_OK)
            memcpy(c->mem.buf + h, data, data_len);
    }
    kiln_free(data);
    if (rc != KILN_OK) {
        if (kind == KILN_TRAP_TIMEOUT)
            kiln_host_trap(inst, KILN_TRAP_TIMEOUT, "timeout");
        xtm_fail(inst, "%s", msg);
    }
    if (arc == KILN_ELIMIT)
        xtm_fail_oom(inst, c);
    return h;
}

uint32_t xtm_hf_http_status_code(kiln_instance *inst)
{
    return (uint32_t)xtm_ctx_of(inst)->http_status;
}

uint64_t xtm_hf_http_headers(kiln_instance *inst)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    if (c->http_headers == NULL)
        return 0;
    return xtm_new_block(inst, c->http_headers, strlen(c->http_headers));
}
