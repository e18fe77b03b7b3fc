/*
 * otoroshi.c - the Otoroshi plugin ABI (otoroshi-abi.md): Otoroshi's env.proxy_*
 * host functions on top of the Extism ABI, the WasmBackend input document
 * built from a request, and the output document turned into a response.
 * Plugins run through the Extism machinery (abi/extism/extism.h) with
 * Otoroshi's outcome rules; the map and data-store functions live in
 * oto_kv.c, on Kiln's key-value store.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "abi/extism/extism.h"
#include "abi/otoroshi/oto_kv.h"
#include "abi/otoroshi/otoroshi.h"
#include "base/alloc.h"
#include "base/json_raw.h"
#include "kiln/abi.h"
#include "net/net.h"

/* ---- per-call state of the host functions ------------------------------------ */

typedef struct oto_call {
    json_t *attrs; /* request attributes (proxy_*_attr) */
    char *scratch; /* a result on its way into Extism memory (jansson's malloc) */
} oto_call;

static void oto_call_free(void *p)
{
    oto_call *oc = p;
    if (oc == NULL)
        return;
    json_decref(oc->attrs);
    free(oc->scratch);
    kiln_free(oc);
}

/* The call's state, created on first use. Call inside a host bracket. */
static oto_call *call_state(xtm_ctx *c)
{
    oto_call *oc = xtm_ext_get(c);
    if (oc != NULL)
        return oc;
    oc = kiln_calloc(1, sizeof(*oc));
    if (oc == NULL)
        return NULL;
    oc->attrs = json_object();
    if (oc->attrs == NULL) {
        kiln_free(oc);
        return NULL;
    }
    xtm_ext_set(c, oc, oto_call_free);
    return oc;
}

/* Keep a result string in the call's state, which frees it with the call.
 * Takes ownership of s. */
static void keep(oto_call *oc, char *s)
{
    free(oc->scratch);
    oc->scratch = s;
}

/* Argument bytes (off, len) in Extism memory; fails the call if outside. */
static const uint8_t *arg_bytes(kiln_instance *inst, xtm_ctx *c, uint64_t off, uint64_t len,
                                const char *fn)
{
    if (len == 0)
        return (const uint8_t *)"";
    const uint8_t *b = xtm_bytes(c, off, len);
    if (b == NULL)
        xtm_fail(inst, "%s: argument (offset %llu, length %llu) lies outside Extism memory", fn,
                 (unsigned long long)off, (unsigned long long)len);
    return b;
}

/* Return the JSON text kept in the call's state as a new Extism block. */
static uint64_t reply_kept(kiln_instance *inst, oto_call *oc)
{
    if (oc == NULL || oc->scratch == NULL)
        return 0;
    return xtm_new_block(inst, oc->scratch, strlen(oc->scratch));
}

/* Serialize v (stolen) into the call's state; false on OOM. */
static bool keep_json(oto_call *oc, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (s == NULL)
        return false;
    keep(oc, s);
    return true;
}

__attribute__((noreturn)) static void fail_oom_host(kiln_instance *inst, const char *fn)
{
    xtm_fail(inst, "%s: out of host memory", fn);
}

/* ---- logging ------------------------------------------------------------------ */

static int oto_level(int64_t level)
{
    /* 0 trace, 1 debug, 2 info, 3 warn, 4 error, 5 critical, 6 max. */
    static const int map[] = {XTM_LOG_TRACE, XTM_LOG_DEBUG, XTM_LOG_INFO, XTM_LOG_WARN,
                              XTM_LOG_ERROR, XTM_LOG_ERROR, XTM_LOG_ERROR};
    return level >= 0 && level <= 6 ? map[level] : -1;
}

static uint32_t hf_proxy_log(kiln_instance *inst, uint32_t level, uint64_t off, uint64_t len)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    int lv = oto_level((int32_t)level);
    if (lv < 0)
        xtm_fail(inst, "proxy_log: unknown log level %d (expected 0..6)", (int32_t)level);
    const uint8_t *msg = arg_bytes(inst, c, off, len, "proxy_log");
    xtm_log(c, lv, (const char *)msg, (size_t)len);
    return 0;
}

static uint64_t hf_proxy_log_event(kiln_instance *inst, uint64_t off, uint64_t len)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    const uint8_t *b = arg_bytes(inst, c, off, len, "proxy_log_event");
    json_t *ev = json_loadb((const char *)b, (size_t)len, 0, NULL);
    const char *fn = "unknown function", *msg = "--";
    int lv = XTM_LOG_DEBUG;
    if (json_is_object(ev)) {
        json_t *v = json_object_get(ev, "function");
        if (json_is_string(v))
            fn = json_string_value(v);
        v = json_object_get(ev, "message");
        if (json_is_string(v))
            msg = json_string_value(v);
        v = json_object_get(ev, "level");
        if (json_is_integer(v) && oto_level(json_integer_value(v)) >= 0)
            lv = oto_level(json_integer_value(v));
    }
    char line[1024];
    int n = snprintf(line, sizeof(line), "event: %s: %s", fn, msg);
    xtm_log(c, lv, line, n < 0 ? 0 : (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n);
    json_decref(ev);
    return 0;
}

/* ---- request attributes ---------------------------------------------------------
 *
 * Under `kiln serve` every request runs in a pipeline (handler.h): the
 * attributes are the request's, shared by all its stages and kept as the
 * JSON text the plugin wrote. Without one (`kiln call`) they live for the
 * call only.
 */

static void attr_key(const uint8_t *k, uint64_t len, char key[256])
{
    size_t n = len < 255 ? (size_t)len : 255;
    memcpy(key, k, n);
    key[n] = '\0';
}

static uint64_t hf_proxy_get_attrs(kiln_instance *inst, uint64_t unused)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    (void)unused;
    oto_call *oc = call_state(c);
    kiln_stage *st = kiln_stage_current();
    if (st != NULL) {
        char *s = oc ? kiln_stage_attrs_json(st, NULL) : NULL;
        if (s == NULL)
            fail_oom_host(inst, "proxy_get_attrs");
        keep(oc, s);
        return reply_kept(inst, oc);
    }
    bool ok = oc != NULL && keep_json(oc, json_incref(oc->attrs));
    if (!ok)
        fail_oom_host(inst, "proxy_get_attrs");
    return reply_kept(inst, oc);
}

static uint64_t hf_proxy_get_attr(kiln_instance *inst, uint64_t off, uint64_t len)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    const uint8_t *k = arg_bytes(inst, c, off, len, "proxy_get_attr");
    oto_call *oc = call_state(c);
    bool ok = oc != NULL, found = false;
    kiln_stage *st = kiln_stage_current();
    if (ok && st != NULL) {
        char key[256];
        attr_key(k, len, key);
        const char *v = kiln_stage_attr(st, key);
        if (v == NULL)
            return 0;
        char *copy = strdup(v);
        if (copy == NULL)
            fail_oom_host(inst, "proxy_get_attr");
        keep(oc, copy);
        return reply_kept(inst, oc);
    }
    if (ok) {
        char key[256];
        size_t n = len < sizeof(key) ? (size_t)len : sizeof(key) - 1;
        memcpy(key, k, n);
        key[n] = '\0';
        json_t *v = json_object_get(oc->attrs, key);
        found = v != NULL;
        if (found)
            ok = keep_json(oc, json_incref(v));
    }
    if (!ok)
        fail_oom_host(inst, "proxy_get_attr");
    return found ? reply_kept(inst, oc) : 0;
}

static uint64_t hf_proxy_set_attr(kiln_instance *inst, uint64_t off, uint64_t len)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    const uint8_t *b = arg_bytes(inst, c, off, len, "proxy_set_attr");
    oto_call *oc = call_state(c);
    uint64_t r = 0;
    json_t *req = json_raw_load((const char *)b, (size_t)len, NULL);
    json_t *k = json_object_get(req, "key"), *v = json_object_get(req, "value");
    kiln_stage *st = kiln_stage_current();
    if (st != NULL && json_is_string(k) && v != NULL) {
        /* The value exactly as written (numbers are not reformatted). */
        const char *raw;
        size_t rlen;
        if (json_raw_member((const char *)b, (size_t)len, "value", &raw, &rlen) == 1)
            r = kiln_stage_attr_set(st, json_string_value(k), raw, rlen) == KILN_OK;
    } else if (oc != NULL && json_is_string(k) && v != NULL) {
        r = json_object_set(oc->attrs, json_string_value(k), v) == 0;
    }
    json_decref(req);
    return r;
}

static uint64_t hf_proxy_del_attr(kiln_instance *inst, uint64_t off, uint64_t len)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    const uint8_t *k = arg_bytes(inst, c, off, len, "proxy_del_attr");
    oto_call *oc = call_state(c);
    uint64_t r = 0;
    char key[256];
    attr_key(k, len, key);
    kiln_stage *st = kiln_stage_current();
    if (st != NULL)
        r = kiln_stage_attr_del(st, key);
    else if (oc != NULL)
        r = json_object_del(oc->attrs, key) == 0;
    return r;
}

static uint64_t hf_proxy_clear_attrs(kiln_instance *inst, uint64_t unused)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    (void)unused;
    oto_call *oc = call_state(c);
    kiln_stage *st = kiln_stage_current();
    if (st != NULL)
        kiln_stage_attrs_clear(st);
    else if (oc != NULL)
        json_object_clear(oc->attrs);
    return 0;
}

/* ---- gateway state: Kiln has no Otoroshi entities (§3.5) ---------------------------- */

static const char *const entity_names[] = {
    "raw_routes", "routes",       "routeCompositions", "apikeys",       "ngbackends",
    "jwtVerifiers", "certificates", "authModules",     "services",      "teams",
    "tenants",    "serviceGroups", "dataExporters",    "otoroshiAdmins", "backofficeSessions",
    "privateAppsSessions", "tcpServices", "scripts",   "wasmPlugins",   "drafts",
};

/* Reply with a constant JSON text. */
static uint64_t reply_const(kiln_instance *inst, const char *json)
{
    return xtm_new_block(inst, json, strlen(json));
}

static uint64_t hf_proxy_state(kiln_instance *inst, uint64_t unused)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    (void)unused;
    oto_call *oc = call_state(c);
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < sizeof(entity_names) / sizeof(entity_names[0]); i++)
        json_object_set_new(o, entity_names[i], json_array());
    bool ok = oc != NULL && keep_json(oc, o);
    if (!ok)
        fail_oom_host(inst, "proxy_state");
    return reply_kept(inst, oc);
}

static uint64_t hf_proxy_state_value(kiln_instance *inst, uint64_t off, uint64_t len)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    const uint8_t *b = arg_bytes(inst, c, off, len, "proxy_state_value");
    json_t *req = json_loadb((const char *)b, (size_t)len, 0, NULL);
    json_t *id = json_object_get(req, "id");
    bool by_id = id != NULL && !json_is_null(id);
    json_decref(req);
    /* No entities: every list is empty and every lookup finds nothing. */
    return reply_const(inst, by_id ? "null" : "[]");
}

static uint64_t hf_proxy_empty_object(kiln_instance *inst, uint64_t unused)
{
    (void)unused;
    xtm_ctx_of(inst);
    return reply_const(inst, "{}");
}

static uint64_t hf_proxy_cluster_state_value(kiln_instance *inst, uint64_t off, uint64_t len)
{
    arg_bytes(inst, xtm_ctx_of(inst), off, len, "proxy_cluster_state_value");
    return reply_const(inst, "null");
}

/* ---- proxy_http_call (§3.4) ------------------------------------------------------- */

static bool unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Append the percent-encoded s to buf (jansson-free growable string). */
static char *append_enc(char *buf, size_t *len, size_t *cap, const char *s, bool encode)
{
    for (; buf != NULL && *s; s++) {
        if (*len + 4 >= *cap) {
            size_t nc = *cap * 2 + 16;
            char *nb = kiln_realloc(buf, nc);
            if (nb == NULL) {
                kiln_free(buf);
                return NULL;
            }
            buf = nb;
            *cap = nc;
        }
        unsigned char ch = (unsigned char)*s;
        if (!encode || unreserved(ch)) {
            buf[(*len)++] = (char)ch;
        } else {
            snprintf(buf + *len, 4, "%%%02X", ch);
            *len += 3;
        }
    }
    if (buf != NULL)
        buf[*len] = '\0';
    return buf;
}

/* URL with the request's "query" object appended (kiln_malloc'd). */
static char *url_with_query(const char *url, json_t *query)
{
    size_t len = 0, cap = strlen(url) + 64;
    char *buf = kiln_malloc(cap);
    if (buf == NULL)
        return NULL;
    buf[0] = '\0';
    buf = append_enc(buf, &len, &cap, url, false);
    const char *k;
    json_t *v;
    bool first = strchr(url, '?') == NULL;
    json_object_foreach(query, k, v) {
        if (!json_is_string(v))
            continue;
        buf = append_enc(buf, &len, &cap, first ? "?" : "&", false);
        first = false;
        buf = append_enc(buf, &len, &cap, k, true);
        buf = append_enc(buf, &len, &cap, "=", false);
        buf = append_enc(buf, &len, &cap, json_string_value(v), true);
    }
    return buf;
}

/* The request body per §3.4: body_str or body, body_json, body_base64,
 * body_bytes; *out is kiln_malloc'd (NULL = no body). `text` is the request
 * document as the plugin wrote it: body_json is sent as its exact bytes
 * there (numbers as written, as for a WasmBackend's body_json). */
static int http_call_body(json_t *req, const char *text, size_t text_len, uint8_t **out,
                          size_t *len, char *msg, size_t cap)
{
    json_t *v = json_object_get(req, "body_str");
    if (v == NULL)
        v = json_object_get(req, "body");
    *out = NULL;
    *len = 0;
    if (json_is_string(v)) {
        *len = json_string_length(v);
        *out = kiln_malloc(*len + 1);
        if (*out != NULL)
            memcpy(*out, json_string_value(v), *len);
        return *out ? KILN_OK : KILN_ENOMEM;
    }
    v = json_object_get(req, "body_json");
    if (v != NULL && !json_is_null(v)) {
        const char *raw;
        size_t n;
        if (json_raw_member(text, text_len, "body_json", &raw, &n) != 1) {
            snprintf(msg, cap, "proxy_http_call: body_json cannot be read back from the request");
            return KILN_EINVAL;
        }
        *out = kiln_malloc(n + 1);
        if (*out == NULL)
            return KILN_ENOMEM;
        memcpy(*out, raw, n);
        *len = n;
        return KILN_OK;
    }
    v = json_object_get(req, "body_base64");
    if (json_is_string(v)) {
        if (xtm_base64_decode(json_string_value(v), json_string_length(v), out, len) != KILN_OK) {
            snprintf(msg, cap, "proxy_http_call: body_base64 is not valid base64");
            return KILN_EINVAL;
        }
        return KILN_OK;
    }
    v = json_object_get(req, "body_bytes");
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        *out = kiln_malloc(n ? n : 1);
        if (*out == NULL)
            return KILN_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);
            json_int_t b = json_is_integer(e) ? json_integer_value(e) : 1000;
            if (b < -128 || b > 255) {
                kiln_free(*out);
                *out = NULL;
                snprintf(msg, cap, "proxy_http_call: body_bytes[%zu] is not a byte", i);
                return KILN_EINVAL;
            }
            (*out)[i] = (uint8_t)b;
        }
        *len = n;
    }
    return KILN_OK;
}

/* The response document: {status, headers, body_base64}. */
static json_t *http_call_result(long status, const char *headers_json, const uint8_t *body,
                                size_t len)
{
    json_t *o = json_object();
    json_t *h = headers_json ? json_loads(headers_json, 0, NULL) : json_object();
    char *b64 = xtm_base64_encode(body, len);
    if (o == NULL || h == NULL || b64 == NULL) {
        json_decref(o);
        json_decref(h);
        kiln_free(b64);
        return NULL;
    }
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "headers", h);
    json_object_set_new(o, "body_base64", json_string(b64));
    kiln_free(b64);
    return o;
}

/* The answer to a refused host: not an error in Otoroshi but a 403
 * document. `why` (may be NULL) follows the host in the text. */
static json_t *http_call_denied(const char *host, const char *why)
{
    char text[800];
    int n = snprintf(text, sizeof(text), "you cannot access host: %s%s%.700s", host,
                     why ? ": " : "", why ? why : "");
    return http_call_result(403, "{\"content-type\":\"text/plain\"}", (uint8_t *)text,
                            n < 0 ? 0 : (size_t)n >= sizeof(text) ? sizeof(text) - 1 : (size_t)n);
}

static uint64_t hf_proxy_http_call(kiln_instance *inst, uint64_t off, uint64_t len)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    const xtm_options *o = xtm_ctx_options(c);
    if (xtm_remaining_ms(c) == 0)
        kiln_host_trap(inst, KILN_TRAP_TIMEOUT, "timeout");
    const uint8_t *b = arg_bytes(inst, c, off, len, "proxy_http_call");
    char msg[600] = "";
    int rc = KILN_OK;
    bool timed_out = false;
    kiln_kv *hdrs = NULL;
    char *url = NULL;
    uint8_t *body = NULL;
    size_t body_len = 0;
    net_response resp;
    memset(&resp, 0, sizeof(resp));

    oto_call *oc = call_state(c);
    json_error_t je;
    /* json_raw_load: an integer beyond int64 (in body_json, say) must not
     * make the whole request unreadable. */
    json_t *req = json_raw_load((const char *)b, (size_t)len, &je);
    if (oc == NULL) {
        rc = KILN_ENOMEM;
        snprintf(msg, sizeof(msg), "proxy_http_call: out of host memory");
    } else if (!json_is_object(req)) {
        rc = KILN_EINVAL;
        snprintf(msg, sizeof(msg), "proxy_http_call: the request is not a JSON object%s%s",
                 req ? "" : ": ", req ? "" : je.text);
    }
    json_t *headers = json_object_get(req, "headers");
    size_t n_hdrs = 0;
    if (rc == KILN_OK) {
        json_t *u = json_object_get(req, "url");
        json_t *q = json_object_get(req, "query");
        url = url_with_query(json_is_string(u) ? json_string_value(u)
                                               : "https://request.otoroshi.io",
                             json_is_object(q) ? q : NULL);
        hdrs = kiln_calloc(json_is_object(headers) ? json_object_size(headers) + 1 : 1,
                           sizeof(*hdrs));
        if (url == NULL || hdrs == NULL) {
            rc = KILN_ENOMEM;
            snprintf(msg, sizeof(msg), "proxy_http_call: out of host memory");
        }
    }
    if (rc == KILN_OK && json_is_object(headers)) {
        const char *k;
        json_t *v;
        json_object_foreach(headers, k, v) {
            if (json_is_string(v)) {
                hdrs[n_hdrs].name = k;
                hdrs[n_hdrs++].value = json_string_value(v);
            }
        }
    }
    if (rc == KILN_OK)
        rc = http_call_body(req, (const char *)b, (size_t)len, &body, &body_len, msg,
                            sizeof(msg));
    if (rc == KILN_ENOMEM && msg[0] == '\0')
        snprintf(msg, sizeof(msg), "proxy_http_call: out of host memory");
    net_url nu;
    bool denied = false;
    if (rc == KILN_OK) {
        kiln_err e;
        if (net_url_parse(url, &nu, &e) != KILN_OK) {
            rc = KILN_EINVAL;
            snprintf(msg, sizeof(msg), "proxy_http_call: %.560s", e.msg);
        } else {
            denied = !net_allowed(o->allowed_hosts, o->n_allowed_hosts, &nu);
        }
    }
    json_t *result = NULL;
    if (rc == KILN_OK && denied) {
        result = http_call_denied(nu.host, NULL);
    } else if (rc == KILN_OK) {
        json_t *m = json_object_get(req, "method");
        json_t *t = json_object_get(req, "request_timeout");
        long long tmo = json_is_integer(t) && json_integer_value(t) > 0 ? json_integer_value(t)
                                                                        : 10000;
        long long left = xtm_remaining_ms(c);
        bool deadline_first = left > 0 && left <= tmo;
        net_policy pol;
        memset(&pol, 0, sizeof(pol));
        pol.allow = o->allowed_hosts;
        pol.n_allow = o->n_allowed_hosts;
        pol.max_response_bytes = o->max_http_response_bytes;
        net_request nr;
        memset(&nr, 0, sizeof(nr));
        nr.method = json_is_string(m) ? json_string_value(m) : "GET";
        nr.url = url;
        nr.headers = hdrs;
        nr.n_headers = n_hdrs;
        nr.body = body;
        nr.body_len = body_len;
        nr.timeout_ms = deadline_first ? left : tmo;
        nr.follow_redirects = json_is_true(json_object_get(req, "follow_redirects"));
        kiln_err e;
        rc = net_fetch(&pol, &nr, &resp, &e);
        if (rc == KILN_ETIMEOUT && deadline_first)
            timed_out = true;
        else if (rc == KILN_ETIMEOUT)
            snprintf(msg, sizeof(msg), "proxy_http_call: no answer within %lld ms", tmo);
        else if (rc == KILN_EPERM) {
            /* The address guard or a refused redirect: answered like a
             * refused host, with the reason. */
            rc = KILN_OK;
            result = http_call_denied(nu.host, e.msg);
        } else if (rc != KILN_OK)
            snprintf(msg, sizeof(msg), "proxy_http_call: %.560s", e.msg);
        if (rc == KILN_OK && result == NULL) {
            /* Otoroshi keeps the first value of each header. */
            char *hj = xtm_http_headers_json(&resp, true);
            if (hj != NULL)
                result = http_call_result(resp.status, hj, resp.body, resp.body_len);
            free(hj);
        }
    }
    if (rc == KILN_OK && (result == NULL || !keep_json(oc, result))) {
        rc = KILN_ENOMEM;
        snprintf(msg, sizeof(msg), "proxy_http_call: out of host memory");
    }
    net_response_fini(&resp);
    json_decref(req);
    kiln_free(hdrs);
    kiln_free(url);
    kiln_free(body);
    if (timed_out)
        kiln_host_trap(inst, KILN_TRAP_TIMEOUT, "timeout");
    if (rc != KILN_OK)
        xtm_fail(inst, "%s", msg);
    return reply_kept(inst, oc);
}

/* ---- key-value functions: abi/otoroshi/oto_kv.c --------------------------------------- */

/* ---- the table ------------------------------------------------------------------------ */

#define FN(f) ((void (*)(void))(f))
#define KV1(n) {"env", #n, "j>j", FN(oto_kv_##n)}
#define KV2(n) {"env", #n, "jj>j", FN(oto_kv_##n)}

/* Module "env"; a copy under "env/Otoroshi" serves plugins built with isJS. */
static const kiln_hostfn oto_table[] = {
    {"env", "proxy_log", "ijj>i", FN(hf_proxy_log)},
    {"env", "proxy_log_event", "jj>j", FN(hf_proxy_log_event)},
    {"env", "proxy_http_call", "jj>j", FN(hf_proxy_http_call)},
    {"env", "proxy_get_attrs", "j>j", FN(hf_proxy_get_attrs)},
    {"env", "proxy_get_attr", "jj>j", FN(hf_proxy_get_attr)},
    {"env", "proxy_set_attr", "jj>j", FN(hf_proxy_set_attr)},
    {"env", "proxy_del_attr", "jj>j", FN(hf_proxy_del_attr)},
    {"env", "proxy_clear_attrs", "j>j", FN(hf_proxy_clear_attrs)},
    {"env", "proxy_state", "j>j", FN(hf_proxy_state)},
    {"env", "proxy_state_value", "jj>j", FN(hf_proxy_state_value)},
    {"env", "proxy_global_config", "j>j", FN(hf_proxy_empty_object)},
    {"env", "proxy_config", "j>j", FN(hf_proxy_empty_object)},
    {"env", "proxy_cluster_state", "j>j", FN(hf_proxy_empty_object)},
    {"env", "proxy_cluster_state_value", "jj>j", FN(hf_proxy_cluster_state_value)},
    KV2(proxy_global_map_set),
    KV2(proxy_plugin_map_set),
    KV2(proxy_global_map_get),
    KV2(proxy_plugin_map_get),
    KV2(proxy_global_map_del),
    KV2(proxy_plugin_map_del),
    KV1(proxy_global_map),
    KV1(proxy_plugin_map),
    KV2(proxy_datastore_keys),
    KV2(proxy_plugin_datastore_keys),
    KV2(proxy_datastore_get),
    KV2(proxy_plugin_datastore_get),
    KV2(proxy_datastore_exists),
    KV2(proxy_plugin_datastore_exists),
    KV2(proxy_datastore_pttl),
    KV2(proxy_plugin_datastore_pttl),
    KV2(proxy_datastore_all_matching),
    KV2(proxy_plugin_datastore_all_matching),
    KV2(proxy_datastore_set),
    KV2(proxy_plugin_datastore_set),
    KV2(proxy_datastore_setnx),
    KV2(proxy_plugin_datastore_setnx),
    KV2(proxy_datastore_del),
    KV2(proxy_plugin_datastore_del),
    KV2(proxy_datastore_incrby),
    KV2(proxy_plugin_datastore_incrby),
    KV2(proxy_datastore_pexpire),
    KV2(proxy_plugin_datastore_pexpire),
};

#define OTO_N (sizeof(oto_table) / sizeof(oto_table[0]))

static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static kiln_hostfn *full_table; /* Extism's table, then ours twice; lives forever */
static size_t full_n;

static void build_table(void)
{
    size_t nx;
    const kiln_hostfn *x = xtm_hostfns(&nx);
    full_table = kiln_xcalloc(nx + 2 * OTO_N, sizeof(*full_table));
    memcpy(full_table, x, nx * sizeof(*x));
    for (size_t i = 0; i < OTO_N; i++) {
        full_table[nx + i] = oto_table[i];
        full_table[nx + OTO_N + i] = oto_table[i];
        full_table[nx + OTO_N + i].module = "env/Otoroshi";
    }
    full_n = nx + 2 * OTO_N;
}

static const kiln_hostfn *oto_hostfns(size_t *n)
{
    pthread_once(&table_once, build_table);
    *n = full_n;
    return full_table;
}

/* ---- input document (§4.2, §4.3) ------------------------------------------------------ */

/*
 * The documents are written straight into the jw writer: building them as
 * jansson trees first (json_pack, one allocation per member, then a walk)
 * was half of a plugin call's cost. Member order and values are those the
 * jansson trees had: a map keeps a repeated key at its first position with
 * its last value, as json_object_set does.
 */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode [s, s+n) ('+' is a space) into out (n bytes at most);
 * returns the decoded length. */
static size_t decode_into(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
                   hexval((unsigned char)s[i + 2]) >= 0) {
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

/* One decoded query parameter, pointing into a scratch buffer. The key ends
 * at its first NUL (it was a C string key of the jansson object). */
typedef struct qparam {
    const char *k, *v;
    size_t kn, vn;
} qparam;

#define QUERY_STACK 1024 /* bytes of query decoded without an allocation */
#define QUERY_PARAMS 32  /* parameters without an allocation */

/* {"x": ["1", "2"]} from "x=1&x=2" (keys in first-seen order). Returns
 * false on OOM (the writer is poisoned then too). */
static bool write_query(jw *w, const char *q)
{
    size_t qlen = q ? strlen(q) : 0, np = 1;
    for (size_t i = 0; i < qlen; i++)
        np += q[i] == '&';
    char sbuf[QUERY_STACK];
    qparam sp[QUERY_PARAMS];
    char *buf = qlen <= sizeof(sbuf) ? sbuf : kiln_malloc(qlen);
    qparam *ps = np <= QUERY_PARAMS ? sp : kiln_malloc(np * sizeof(*ps));
    bool ok = buf != NULL && ps != NULL;
    size_t n_ps = 0, used = 0;
    for (const char *s = q; ok && s != NULL && *s;) {
        const char *amp = strchr(s, '&');
        size_t n = amp ? (size_t)(amp - s) : strlen(s);
        if (n > 0) {
            const char *eq = memchr(s, '=', n);
            size_t kn = eq ? (size_t)(eq - s) : n;
            qparam *p = &ps[n_ps++];
            p->k = buf + used;
            p->kn = decode_into(s, kn, buf + used);
            p->kn = strnlen(p->k, p->kn);
            used += kn;
            p->v = buf + used;
            p->vn = eq ? decode_into(eq + 1, n - kn - 1, buf + used) : 0;
            used += eq ? n - kn - 1 : 0;
        }
        s = amp ? amp + 1 : s + n;
    }
    jw_obj_open(w);
    for (size_t i = 0; ok && i < n_ps; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = ps[j].kn == ps[i].kn && memcmp(ps[j].k, ps[i].k, ps[i].kn) == 0;
        if (seen)
            continue;
        jw_keyn(w, ps[i].k, ps[i].kn);
        jw_arr_open(w);
        for (size_t j = i; j < n_ps; j++)
            if (ps[j].kn == ps[i].kn && memcmp(ps[j].k, ps[i].k, ps[i].kn) == 0)
                jw_strn(w, ps[j].v, ps[j].vn);
        jw_arr_close(w);
    }
    jw_obj_close(w);
    if (buf != sbuf)
        kiln_free(buf);
    if (ps != sp)
        kiln_free(ps);
    if (!ok)
        jw_fail(w);
    return ok;
}

static const char *req_header(const kiln_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

/* Cookies from the Cookie header; `plugin_side` uses the NgPluginHttpRequest keys. */
static void write_cookies(jw *w, const kiln_request *req, bool plugin_side)
{
    jw_arr_open(w);
    const char *c = req_header(req, "cookie");
    while (c != NULL && *c) {
        while (*c == ' ' || *c == ';')
            c++;
        const char *end = strchr(c, ';');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        const char *eq = memchr(c, '=', n);
        if (n > 0 && eq != NULL) {
            jw_obj_open(w);
            jw_key(w, "name");
            jw_strn(w, c, (size_t)(eq - c));
            jw_key(w, "value");
            jw_strn(w, eq + 1, n - (size_t)(eq - c) - 1);
            jw_key(w, "path");
            jw_str(w, "/");
            jw_key(w, "domain");
            jw_null(w);
            jw_key(w, plugin_side ? "httpOnly" : "http_only");
            jw_bool(w, false);
            jw_key(w, plugin_side ? "maxAge" : "max_age");
            jw_null(w);
            jw_key(w, "secure");
            jw_bool(w, false);
            if (!plugin_side) {
                jw_key(w, "same_site");
                jw_null(w);
            }
            jw_obj_close(w);
        }
        c = end ? end + 1 : c + n;
    }
    jw_arr_close(w);
}

/* Header names as the map keys them: lower-case, at most 255 bytes. */
#define HNAME_MAX 255

/* The request's headers, single-valued with lower-case names: a name repeated
 * (in any case) keeps its first position and its last value. */
static void write_req_headers(jw *w, const kiln_request *req)
{
    const kiln_kv *h = req->headers;
    jw_obj_open(w);
    for (size_t i = 0; i < req->n_headers; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = h[j].value != NULL && strncasecmp(h[j].name, h[i].name, HNAME_MAX) == 0;
        const char *value = NULL;
        for (size_t j = i; j < req->n_headers && !seen; j++)
            if (h[j].value != NULL && strncasecmp(h[j].name, h[i].name, HNAME_MAX) == 0)
                value = h[j].value;
        if (seen || value == NULL)
            continue;
        char name[HNAME_MAX + 1];
        size_t n = 0;
        for (; h[i].name[n] && n < HNAME_MAX; n++) {
            char ch = h[i].name[n];
            name[n] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
        }
        jw_keyn(w, name, n);
        jw_str(w, value);
    }
    jw_obj_close(w);
}

/* A name -> value map (route parameters, config): a repeated name keeps its
 * first position and its last value; a NULL value is "". */
static void write_kv(jw *w, const kiln_kv *kv, size_t n)
{
    jw_obj_open(w);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(kv[j].name, kv[i].name) == 0;
        if (seen)
            continue;
        const char *value = NULL;
        for (size_t j = i; j < n; j++)
            if (strcmp(kv[j].name, kv[i].name) == 0)
                value = kv[j].value;
        jw_key(w, kv[i].name);
        jw_str(w, value ? value : "");
    }
    jw_obj_close(w);
}

void oto_write_backend(jw *w, const char *id, const char *host)
{
    char hostname[256];
    long port = 80;
    snprintf(hostname, sizeof(hostname), "%s", host && *host ? host : "localhost");
    char *colon = strrchr(hostname, ':'), *bracket = strchr(hostname, ']');
    /* "[::1]" has colons but no port; "[::1]:8080" and "h:8080" have one. */
    if (colon != NULL && (bracket == NULL || bracket < colon)) {
        port = strtol(colon + 1, NULL, 10);
        *colon = '\0';
    }
    jw_obj_open(w);
    jw_key(w, "id");
    jw_str(w, id);
    jw_key(w, "hostname");
    jw_str(w, hostname);
    jw_key(w, "port");
    jw_int(w, (int)port);
    /* The constant members in one piece: this document is written two or
     * three times per plugin call. */
    jw_members(w, "\"tls\":false,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,"
                  "\"predicate\":{\"type\":\"AlwaysMatch\"},\"tls_config\":{}");
    jw_obj_close(w);
}

static void bool_member(jw *w, const char *k, bool v)
{
    jw_key(w, k);
    jw_bool(w, v);
}

void oto_write_route(jw *w, const char *name, const char *host, const char *backend_id)
{
    jw_obj_open(w);
    jw_key(w, "id");
    jw_str(w, name);
    jw_key(w, "name");
    jw_str(w, name);
    jw_members(w, "\"description\":\"\",\"tags\":[],\"metadata\":{},\"enabled\":true,"
                  "\"debug_flow\":false,\"export_reporting\":false,\"capture\":false,"
                  "\"groups\":[\"default\"]");
    jw_key(w, "frontend");
    jw_obj_open(w);
    jw_key(w, "domains");
    jw_arr_open(w);
    if (host != NULL && *host)
        jw_str(w, host);
    jw_arr_close(w);
    jw_members(w, "\"strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},"
                  "\"methods\":[]");
    jw_obj_close(w);
    jw_key(w, "backend");
    jw_obj_open(w);
    jw_key(w, "targets");
    jw_arr_open(w);
    oto_write_backend(w, backend_id, host);
    jw_arr_close(w);
    jw_members(w, "\"root\":\"/\",\"rewrite\":false,\"load_balancing\":{\"type\":\"RoundRobin\"},"
                  "\"client\":{},\"health_check\":null");
    jw_obj_close(w);
    jw_members(w, "\"backend_ref\":null,\"plugins\":[]");
    jw_obj_close(w);
}

static _Atomic unsigned long request_seq;

unsigned long oto_snowflake(char out[64])
{
    unsigned long seq = atomic_fetch_add(&request_seq, 1) + 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* Milliseconds, then the sequence as 6 digits ("%lld%06lu" by hand). */
    char tmp[32];
    char *p = tmp + sizeof(tmp);
    unsigned long s = seq % 1000000;
    for (int i = 0; i < 6; i++, s /= 10)
        *--p = (char)('0' + s % 10);
    long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    unsigned long long u = ms < 0 ? 0ull - (unsigned long long)ms : (unsigned long long)ms;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (ms < 0)
        *--p = '-';
    size_t n = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(out, p, n);
    out[n] = '\0';
    return seq;
}

const char *oto_request_host(const kiln_request *req)
{
    const char *host = req_header(req, "host");
    if (host == NULL)
        host = req->host && *req->host ? req->host : "localhost";
    return host;
}

void oto_write_request(jw *w, const kiln_request *req, unsigned long id)
{
    jw_obj_open(w);
    jw_key(w, "id");
    jw_int(w, (long long)(id % 1000000000));
    jw_key(w, "method");
    jw_str(w, req->method ? req->method : "GET");
    jw_key(w, "headers");
    write_req_headers(w, req);
    jw_key(w, "cookies");
    write_cookies(w, req, false);
    bool_member(w, "tls", false);
    jw_key(w, "uri");
    jw_str(w, req->url ? req->url : "/");
    jw_key(w, "query");
    write_query(w, req->query);
    jw_key(w, "path");
    jw_str(w, req->path ? req->path : "/");
    jw_key(w, "version");
    jw_str(w, "HTTP/1.1");
    bool_member(w, "has_body", req->body_len > 0);
    jw_key(w, "remote");
    jw_str(w, req->remote_addr ? req->remote_addr : "");
    jw_key(w, "client_cert_chain");
    jw_null(w);
    jw_key(w, "path_params");
    write_kv(w, req->params, req->n_params);
    jw_obj_close(w);
}

void oto_write_plugin_request(jw *w, const kiln_request *req)
{
    /* "http://<host><uri>", cut at 4095 bytes as it always was. */
    char url[4096];
    const char *host = oto_request_host(req), *uri = req->url ? req->url : "/";
    size_t hn = strlen(host), un = strlen(uri), n = 7;
    memcpy(url, "http://", 7);
    hn = hn < sizeof(url) - 1 - n ? hn : sizeof(url) - 1 - n;
    memcpy(url + n, host, hn);
    n += hn;
    un = un < sizeof(url) - 1 - n ? un : sizeof(url) - 1 - n;
    memcpy(url + n, uri, un);
    n += un;
    jw_obj_open(w);
    jw_key(w, "url");
    jw_strn(w, url, n);
    jw_key(w, "method");
    jw_str(w, req->method ? req->method : "GET");
    jw_key(w, "headers");
    write_req_headers(w, req);
    jw_key(w, "query");
    write_query(w, req->query);
    jw_key(w, "version");
    jw_str(w, "HTTP/1.1");
    jw_key(w, "client_cert_chain");
    jw_null(w);
    jw_key(w, "backend");
    jw_null(w);
    jw_key(w, "cookies");
    write_cookies(w, req, true);
    jw_obj_close(w);
}

void oto_write_body_bytes(jw *w, const uint8_t *b, size_t n)
{
    if (n == 0) {
        jw_null(w);
        return;
    }
    jw_arr_open(w);
    for (size_t i = 0; i < n; i++)
        jw_int(w, (int8_t)b[i]);
    jw_arr_close(w);
}

char *oto_input_json(const kiln_function *fn, const kiln_request *req, size_t *len)
{
    char snowflake[64];
    unsigned long seq = oto_snowflake(snowflake);
    const char *host = oto_request_host(req);
    const char *fname = fn->name ? fn->name : "function";
    /* The attributes earlier stages of the pipeline set, exactly as written. */
    kiln_stage *st = kiln_stage_current();
    size_t alen = 2;
    char *attrs = st ? kiln_stage_attrs_json(st, &alen) : NULL;
    jw *w = jw_new();
    if (w == NULL || (st != NULL && attrs == NULL)) {
        free(attrs);
        jw_free(w);
        return NULL;
    }
    jw_obj_open(w);
    jw_key(w, "snowflake");
    jw_str(w, snowflake);
    jw_key(w, "backend");
    oto_write_backend(w, fname, host);
    jw_members(w, "\"apikey\":null,\"user\":null");
    jw_key(w, "raw_request");
    oto_write_request(w, req, seq);
    jw_key(w, "config");
    write_kv(w, fn->config, fn->n_config);
    jw_members(w, "\"global_config\":{}");
    jw_key(w, "attrs");
    jw_raw(w, attrs ? attrs : "{}", alen);
    jw_key(w, "route");
    oto_write_route(w, fname, host, fname);
    jw_key(w, "request");
    oto_write_plugin_request(w, req);
    jw_key(w, "request_body_bytes");
    oto_write_body_bytes(w, req->body, req->body_len);
    jw_obj_close(w);
    free(attrs);
    return jw_finish(w, len);
}

/* ---- output document (§4.1, §4.3) ------------------------------------------------------- */

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

int oto_error_response(kiln_response *resp, const char *msg)
{
    kiln_response_reset(resp);
    resp->status = 400;
    /* The message keeps its text: newlines and quotes are escaped, and bytes
     * that are not UTF-8 become U+FFFD (jansson would refuse the string). */
    jw *w = jw_new();
    if (w != NULL) {
        jw_obj_open(w);
        jw_key(w, "error");
        jw_str(w, msg);
        jw_obj_close(w);
    }
    size_t len = 0;
    char *s = w ? jw_finish(w, &len) : NULL;
    int rc = s ? kiln_response_add_header(resp, "Content-Type", "application/json") : KILN_ENOMEM;
    if (rc == KILN_OK)
        rc = kiln_response_append(resp, s, len);
    free(s);
    return rc;
}

/* Member `key` of the output document's top-level object `outer` (NULL: of
 * the document itself), as compact JSON with its numbers as written
 * (malloc'd), or NULL. */
static char *raw_member(const char *doc, size_t doc_len, const char *outer, const char *key)
{
    const char *v;
    size_t n;
    if (outer != NULL && json_raw_member(doc, doc_len, outer, &doc, &doc_len) != 1)
        return NULL;
    if (json_raw_member(doc, doc_len, key, &v, &n) != 1)
        return NULL;
    jw *w = jw_new();
    if (w != NULL)
        jw_raw(w, v, n);
    return jw_finish(w, NULL);
}

/* The body per §4.1; *data is kiln_malloc'd or NULL (empty). `doc` is the
 * output document's text, o the same parsed. */
int oto_output_body(const char *doc, size_t doc_len, json_t *o, uint8_t **data, size_t *len,
                    kiln_err *err)
{
    *data = NULL;
    *len = 0;
    json_t *v = json_object_get(o, "body_str");
    if (v == NULL)
        v = json_object_get(o, "body");
    if (json_is_string(v) && !blank(json_string_value(v))) {
        *len = json_string_length(v);
        *data = kiln_malloc(*len);
        if (*data == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        memcpy(*data, json_string_value(v), *len);
        return KILN_OK;
    }
    v = json_object_get(o, "body_json");
    if (v != NULL && !json_is_null(v)) {
        /* The member's text exactly as the plugin wrote it: jansson would
         * rewrite its numbers (0.9678663636363636 as 0.96786636363636358). */
        const char *raw;
        size_t n;
        if (json_raw_member(doc, doc_len, "body_json", &raw, &n) != 1)
            return kiln_err_set(err, KILN_EBADOUTPUT,
                                "the plugin's body_json cannot be read back from its output");
        *data = kiln_malloc(n);
        if (*data == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        memcpy(*data, raw, n);
        *len = n;
        return KILN_OK;
    }
    v = json_object_get(o, "body_base64");
    if (json_is_string(v) && !blank(json_string_value(v))) {
        if (xtm_base64_decode(json_string_value(v), json_string_length(v), data, len) != KILN_OK)
            return kiln_err_set(err, KILN_EBADOUTPUT,
                                "the plugin's body_base64 is not valid base64");
        return KILN_OK;
    }
    v = json_object_get(o, "body_bytes");
    if (json_is_array(v) && json_array_size(v) > 0) {
        size_t n = json_array_size(v);
        uint8_t *b = kiln_malloc(n);
        if (b == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);
            /* Signed bytes; anything else drops the body, as Otoroshi's reader does. */
            if (!json_is_integer(e) || json_integer_value(e) < -128 ||
                json_integer_value(e) > 127) {
                kiln_free(b);
                return KILN_OK;
            }
            b[i] = (uint8_t)(int8_t)json_integer_value(e);
        }
        *data = b;
        *len = n;
    }
    return KILN_OK;
}

int oto_output_to_response(const uint8_t *out, size_t len, kiln_response *resp, kiln_err *err)
{
    const char *doc = (const char *)out;
    /* json_raw_load: an integer beyond int64 in body_json must not lose the
     * whole document, as jansson's json_loadb alone would. */
    json_error_t je;
    json_t *o = json_raw_load(doc, len, &je);
    if (!json_is_object(o)) {
        /* Otoroshi answers output it cannot read with 200 and an empty body
         * (as {}); Kiln says what is wrong instead (a 502 naming the
         * function): an empty 200 hides the plugin's bug from everyone. */
        bool empty = true;
        for (size_t i = 0; i < len && empty; i++)
            empty = doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r';
        int rc = KILN_EBADOUTPUT;
        if (o != NULL)
            kiln_err_set(err, rc, "the plugin's output is a JSON %s, not an object",
                         json_is_array(o) ? "array" : "value");
        else if (empty)
            kiln_err_set(err, rc, "the plugin's output is empty, not a JSON object");
        else if (json_error_code(&je) == json_error_out_of_memory)
            rc = kiln_err_set(err, KILN_ENOMEM, "out of memory reading the plugin's output");
        else
            kiln_err_set(err, rc, "the plugin's output is not JSON: %s at byte %d", je.text,
                         je.position);
        json_decref(o);
        return rc;
    }
    int rc = KILN_OK;
    if (json_is_true(json_object_get(o, "delegates_call")))
        rc = kiln_err_set(err, KILN_EBADOUTPUT,
                          "the plugin answered delegates_call: true, but a Kiln function has no "
                          "backend to delegate to; return a response instead");
    int status = 200;
    json_t *st = json_object_get(o, "status");
    if (rc == KILN_OK && json_is_integer(st)) {
        json_int_t s = json_integer_value(st);
        if (s < 100 || s > 599)
            rc = kiln_err_set(err, KILN_EBADOUTPUT,
                              "the plugin answered status %lld, which is not an HTTP status "
                              "(100..599)",
                              (long long)s);
        status = (int)s;
    }
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (rc == KILN_OK)
        rc = oto_output_body(doc, len, o, &body, &body_len, err);
    if (rc == KILN_OK) {
        kiln_response_reset(resp);
        resp->status = status;
        json_t *h = json_object_get(o, "headers");
        if (json_is_object(h)) {
            const char *k;
            json_t *v;
            json_object_foreach(h, k, v) {
                if (rc != KILN_OK || json_is_null(v))
                    continue;
                if (json_is_string(v)) {
                    rc = kiln_response_add_header_n(resp, k, strlen(k), json_string_value(v),
                                                    json_string_length(v));
                } else {
                    /* Numbers as written; jansson's text only if the raw one
                     * cannot be had (the two parsers disagree). */
                    char *s = raw_member(doc, len, "headers", k);
                    if (s == NULL)
                        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                    rc = s ? kiln_response_add_header(resp, k, s) : KILN_ENOMEM;
                    free(s);
                }
            }
        } else {
            rc = kiln_response_add_header(resp, "Content-Type", "application/json");
        }
        if (rc == KILN_OK)
            rc = kiln_response_append(resp, body, body_len);
        if (rc == KILN_ELIMIT)
            kiln_err_set(err, rc, "the plugin's %zu-byte body exceeds the response limit of %zu "
                         "bytes", body_len, resp->max_body);
        else if (rc != KILN_OK)
            kiln_err_set(err, rc, "out of memory building the response");
    }
    kiln_free(body);
    json_decref(o);
    return rc;
}

/* ---- the handler ops ------------------------------------------------------------------- */

static int oto_detect(const kiln_module *m)
{
    for (uint32_t i = 0; i < kiln_module_import_count(m); i++) {
        kiln_extern_info info;
        kiln_module_import(m, i, &info);
        bool env = info.module_len == 3 && memcmp(info.module, "env", 3) == 0;
        bool env_oto = info.module_len == 12 && memcmp(info.module, "env/Otoroshi", 12) == 0;
        if (!(env || env_oto) || info.kind != KILN_EXTERN_FUNC)
            continue;
        /* Name and type must both match: proxy-wasm also imports env.proxy_*
         * (e.g. proxy_log with i32 arguments). */
        for (size_t k = 0; k < OTO_N; k++)
            if (strcmp(info.name, oto_table[k].name) == 0 &&
                strcmp(info.type, oto_table[k].type) == 0)
                return 60;
    }
    return 0;
}

static int oto_prepare(const kiln_function *fn, kiln_module *m, void **state, kiln_err *err)
{
    return xtm_handler_prepare(fn, m, OTO_DEFAULT_EXPORT, state, err);
}

typedef struct oto_out {
    kiln_response *resp;
    bool ran; /* the output callback ran: its errors are not call failures */
} oto_out;

static int oto_output(void *arg, const uint8_t *out, size_t len, int32_t rc32, kiln_err *err)
{
    oto_out *o = arg;
    (void)rc32; /* a non-zero return code alone is no failure in Otoroshi */
    o->ran = true;
    return oto_output_to_response(out, len, o->resp, err);
}

static int oto_handle(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                      const kiln_request *req, kiln_response *resp, kiln_err *err)
{
    size_t len = 0;
    char *in = oto_input_json(fn, req, &len);
    if (in == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory describing the request",
                            fn->name ? fn->name : "function");
    oto_out o = {resp, false};
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc = xtm_handler_run(state, pre, (const uint8_t *)in, len, oto_output, &o, &e);
    free(in);
    if (rc == KILN_OK)
        return KILN_OK;
    if (o.ran || rc == KILN_ENOMEM) {
        if (err != NULL)
            *err = e;
        return rc;
    }
    /* A failed call is an answer in Otoroshi: 400 {"error": "<message>"}. */
    rc = oto_error_response(resp, e.msg);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "out of memory building the error response");
    return KILN_OK;
}

const kiln_abi_ops kiln_abi_otoroshi = {
    .name = "otoroshi",
    .detect = oto_detect,
    .hostfns = oto_hostfns,
    .prepare = oto_prepare,
    .handle = oto_handle,
    .release = xtm_handler_release,
    .snapshot = xtm_handler_snapshot,
    .stage_export = oto_stage_export,
    .stage = oto_stage,
};
