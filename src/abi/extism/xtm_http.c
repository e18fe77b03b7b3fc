/*
 * xtm_http.c - outbound HTTP for guests: the allowed_hosts glob check, a
 * small libcurl client with a capped response body, base64, and the Extism
 * http_request / http_status_code / http_headers host functions (§8).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "abi/extism/xtm_int.h"
#include "base/alloc.h"
#include "kiln/abi.h"

/* ---- globs ------------------------------------------------------------------ */

/* Does every '[' have its ']'? (A ']' right after "[" or "[!" is a member.) */
static bool glob_valid(const char *p)
{
    for (; *p; p++) {
        if (*p != '[')
            continue;
        p++;
        if (*p == '!')
            p++;
        if (*p == ']')
            p++;
        while (*p && *p != ']')
            p++;
        if (*p == '\0')
            return false;
    }
    return true;
}

/* Match byte c against the class starting at p ('['); *end is past its ']'. */
static bool class_match(const char *p, unsigned char c, const char **end)
{
    const char *q = p + 1;
    bool neg = false, hit = false, first = true;
    if (*q == '!') {
        neg = true;
        q++;
    }
    while (*q && (*q != ']' || first)) {
        first = false;
        unsigned char lo = (unsigned char)q[0];
        if (q[1] == '-' && q[2] && q[2] != ']') {
            unsigned char hi = (unsigned char)q[2];
            if (c >= lo && c <= hi)
                hit = true;
            q += 3;
        } else {
            if (c == lo)
                hit = true;
            q++;
        }
    }
    *end = *q ? q + 1 : q;
    return hit != neg;
}

bool xtm_glob_match(const char *pattern, const char *s)
{
    if (!glob_valid(pattern))
        return strcmp(pattern, s) == 0;
    const char *p = pattern, *star_p = NULL, *star_s = NULL;
    while (*s) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            star_p = p;
            star_s = s;
            continue;
        }
        if (*p == '?') {
            p++;
            s++;
            continue;
        }
        if (*p == '[') {
            const char *e;
            if (class_match(p, (unsigned char)*s, &e)) {
                p = e;
                s++;
                continue;
            }
        } else if (*p != '\0' && *p == *s) {
            p++;
            s++;
            continue;
        }
        if (star_p == NULL)
            return false;
        p = star_p;
        s = ++star_s;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

bool xtm_host_allowed(const char *const *globs, size_t n, const char *host)
{
    for (size_t i = 0; i < n; i++)
        if (globs[i] != NULL && xtm_glob_match(globs[i], host))
            return true;
    return false;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int xtm_url_host(const char *url, char *buf, size_t cap, kiln_err *err)
{
    pthread_once(&curl_once, curl_init);
    CURLU *u = curl_url();
    if (u == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory parsing a URL");
    char *host = NULL, *scheme = NULL;
    int rc = KILN_OK;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = kiln_err_set(err, KILN_EINVAL, "invalid URL '%s'", url);
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        rc = kiln_err_set(err, KILN_EINVAL, "URL '%s': only http and https are supported", url);
    } else if (strlen(host) >= cap) {
        rc = kiln_err_set(err, KILN_EINVAL, "URL '%s': host name too long", url);
    } else {
        size_t i;
        for (i = 0; host[i]; i++)
            buf[i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] + 32 : host[i]);
        buf[i] = '\0';
    }
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

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

/* ---- the client -------------------------------------------------------------- */

typedef struct http_sink {
    uint8_t *buf;
    size_t len, cap;
    uint64_t max;
    bool over, oom;
    json_t *headers;
    int header_mode;
} http_sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    http_sink *s = arg;
    size_t n = size * nmemb;
    if (n > s->max || s->len > s->max - n) {
        s->over = true;
        return 0;
    }
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        uint8_t *b = kiln_realloc(s->buf, cap);
        if (b == NULL) {
            s->oom = true;
            return 0;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    http_sink *s = arg;
    size_t n = size * nmemb;
    if (s->headers == NULL)
        return n;
    /* A new status line (after 100 Continue or a redirect): start over. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        json_object_clear(s->headers);
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (colon == NULL || colon == data)
        return n;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char name[256];
    if (nlen >= sizeof(name))
        return n;
    for (size_t i = 0; i < nlen; i++)
        name[i] = (char)((data[i] >= 'A' && data[i] <= 'Z') ? data[i] + 32 : data[i]);
    name[nlen] = '\0';
    if (s->header_mode == 2 && json_object_get(s->headers, name) != NULL)
        return n;
    json_t *val = json_stringn(v, (size_t)(end - v));
    if (val != NULL)
        json_object_set_new(s->headers, name, val);
    return n;
}

int xtm_http_perform(const xtm_http_req *req, xtm_http_resp *resp, kiln_err *err)
{
    memset(resp, 0, sizeof(*resp));
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return kiln_err_set(err, KILN_EIO, "libcurl could not be initialised: %s",
                            curl_easy_strerror(curl_init_rc));
    CURL *h = curl_easy_init();
    if (h == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory starting an HTTP request");
    http_sink sink;
    memset(&sink, 0, sizeof(sink));
    sink.max = req->max_bytes;
    sink.header_mode = req->header_mode;
    if (req->header_mode != 0)
        sink.headers = json_object();
    struct curl_slist *hl = NULL;
    bool has_ctype = false, ok = true;
    char line[8192];
    for (size_t i = 0; i < req->n_headers && ok; i++) {
        const char *n = req->headers[i].name;
        const char *v = req->headers[i].value ? req->headers[i].value : "";
        if (strcasecmp(n, "content-type") == 0)
            has_ctype = true;
        /* "Name;" is curl's syntax for a header with an empty value. */
        if (v[0] == '\0')
            snprintf(line, sizeof(line), "%s;", n);
        else
            snprintf(line, sizeof(line), "%s: %s", n, v);
        struct curl_slist *t = curl_slist_append(hl, line);
        ok = t != NULL;
        hl = t ? t : hl;
    }
    /* No implicit headers the guest did not ask for. */
    if (ok && req->body != NULL && !has_ctype) {
        struct curl_slist *t = curl_slist_append(hl, "Content-Type:");
        ok = t != NULL;
        hl = t ? t : hl;
    }
    if (ok) {
        struct curl_slist *t = curl_slist_append(hl, "Expect:");
        ok = t != NULL;
        hl = t ? t : hl;
    }
    if (!ok) {
        curl_slist_free_all(hl);
        curl_easy_cleanup(h);
        json_decref(sink.headers);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory building HTTP headers");
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    const char *method = req->method ? req->method : "GET";
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
    if (req->timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 || req->body != NULL)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (req->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body_len ? (const char *)req->body : "");
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);

    int rc = KILN_OK;
    if (sink.over)
        rc = kiln_err_set(err, KILN_ELIMIT,
                          "HTTP response exceeds the configured maximum number of bytes: %llu",
                          (unsigned long long)req->max_bytes);
    else if (sink.oom)
        rc = kiln_err_set(err, KILN_ENOMEM, "out of memory reading the HTTP response");
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        rc = kiln_err_set(err, KILN_ETIMEOUT, "timeout");
    else if (cc != CURLE_OK)
        rc = kiln_err_set(err, KILN_EIO, "HTTP request to %s failed: %s", req->url,
                          errbuf[0] ? errbuf : curl_easy_strerror(cc));
    if (rc == KILN_OK) {
        resp->status = status;
        resp->body = sink.buf;
        resp->body_len = sink.len;
        sink.buf = NULL;
        if (sink.headers != NULL) {
            resp->headers_json = json_dumps(sink.headers, JSON_COMPACT);
            if (resp->headers_json == NULL)
                rc = kiln_err_set(err, KILN_ENOMEM, "out of memory reading HTTP headers");
        }
    }
    kiln_free(sink.buf);
    json_decref(sink.headers);
    return rc;
}

void xtm_http_resp_fini(xtm_http_resp *resp)
{
    kiln_free(resp->body);
    free(resp->headers_json); /* jansson's allocation */
    memset(resp, 0, sizeof(*resp));
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
    xtm_http_resp resp;
    memset(&resp, 0, sizeof(resp));
    char *headers_json = NULL;
    uint8_t *data = NULL;
    size_t data_len = 0;

    kiln_host_enter(inst);
    int rc = parse_request(rb, (size_t)rlen, &root, &url, &method, &hdrs, &n_hdrs, msg,
                           sizeof(msg));
    char host[512];
    char up[32];
    if (rc == KILN_OK) {
        kiln_err e;
        if (xtm_url_host(url, host, sizeof(host), &e) != KILN_OK) {
            snprintf(msg, sizeof(msg), "http_request: %.560s", e.msg);
            rc = KILN_EINVAL;
        } else if (!xtm_host_allowed(o->allowed_hosts, o->n_allowed_hosts, host)) {
            snprintf(msg, sizeof(msg), "HTTP request to %s is not allowed", url);
            rc = KILN_EPERM;
        }
    }
    if (rc == KILN_OK) {
        /* The method is upper-cased; absent or null means GET. */
        size_t i = 0;
        for (; method && method[i] && i < sizeof(up) - 1; i++)
            up[i] = (char)((method[i] >= 'a' && method[i] <= 'z') ? method[i] - 32 : method[i]);
        up[i] = '\0';
        xtm_http_req hr;
        memset(&hr, 0, sizeof(hr));
        hr.method = i ? up : "GET";
        hr.url = url;
        hr.headers = hdrs;
        hr.n_headers = n_hdrs;
        /* The body block is dead, so nothing re-uses it: safe to read. */
        hr.body = bb;
        hr.body_len = (size_t)blen;
        hr.timeout_ms = xtm_remaining_ms(c);
        hr.max_bytes = o->max_http_response_bytes;
        hr.header_mode = o->http_headers ? 1 : 0;
        kiln_err e;
        rc = xtm_http_perform(&hr, &resp, &e);
        if (rc == KILN_ETIMEOUT)
            kind = KILN_TRAP_TIMEOUT;
        if (rc != KILN_OK)
            snprintf(msg, sizeof(msg), "%.560s", e.msg);
    }
    if (rc == KILN_OK) {
        c->http_status = (int32_t)resp.status;
        if (resp.headers_json != NULL)
            headers_json = kiln_strdup(resp.headers_json);
        data = resp.body;
        data_len = resp.body_len;
        resp.body = NULL;
    }
    xtm_http_resp_fini(&resp);
    json_decref(root);
    kiln_free(hdrs);
    /* Nothing allocated may be held across kiln_host_leave (it can unwind on
     * a deadline): the results go into the context first. */
    c->http_headers = headers_json;
    uint64_t h = 0;
    int arc = KILN_OK;
    if (rc == KILN_OK && data_len > 0) {
        arc = xtm_mem_alloc(&c->mem, data_len, &h);
        if (arc == KILN_OK)
            memcpy(c->mem.buf + h, data, data_len);
    }
    kiln_free(data);
    kiln_host_leave(inst);
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
