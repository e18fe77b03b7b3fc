/*
 * kiln.h - the C SDK for Kiln functions: read the request, write the
 * response, key-value storage, outbound HTTP, logging and configuration.
 *
 * A function is a WASI command (it has a main) served by Kiln's WASI/CGI
 * handler: the request arrives as CGI variables and stdin, the response
 * leaves as a CGI document on stdout, and everything else goes through
 * Kiln's host module "kiln" (docs/abi/kiln-host.md). Header-only; include it
 * in one source file of the guest and build with Debian's clang + wasi-libc:
 *
 *     clang --target=wasm32-wasi --sysroot=/usr -O2 -s -I sdk/c hello.c -o hello.wasm
 *
 * A complete function:
 *
 *     #include "kiln.h"
 *     int main(void)
 *     {
 *         char *name = kiln_query_param("name");
 *         kiln_set_header("Content-Type", "text/plain");
 *         kiln_printf("hello, %s\n", name ? name : "world");
 *         free(name);
 *         return 0;
 *     }
 *
 * Conventions: functions that can fail return an int, >= 0 on success and a
 * negative KILN_E* code otherwise (kiln_strerror names it). Strings the SDK
 * returns as `char *` are malloc'd and NUL-terminated (free them); `const
 * char *` results point into the environment or SDK state and must not be
 * freed. Not thread-safe (WASI guests have one thread).
 */
#ifndef KILN_SDK_KILN_H
#define KILN_SDK_KILN_H

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- status codes (include/kiln/host_abi.h) ---------------------------------- */

#define KILN_OK 0
#define KILN_ENOTFOUND (-1)
#define KILN_ETOOSMALL (-2)
#define KILN_EDENIED (-3)
#define KILN_ELIMIT (-4)
#define KILN_EINVAL (-5)
#define KILN_EEXISTS (-6)
#define KILN_EIO (-7)
#define KILN_ETIMEOUT (-8)
#define KILN_ENOMEM (-9)
#define KILN_ETYPE (-10)
#define KILN_EUNAVAILABLE (-11)

static inline const char *kiln_strerror(int code)
{
    static const char *const text[] = {
        "ok", "not found", "buffer too small", "not granted to this function",
        "limit exceeded", "invalid argument", "already exists", "storage or network error",
        "timed out", "out of memory", "wrong value type", "not available in this context",
    };
    if (code > 0)
        return "ok";
    if (code < KILN_EUNAVAILABLE)
        return "unknown error";
    return text[-code];
}

/* ---- host imports (module "kiln") --------------------------------------------------- */

#define KILN_IMPORT_(n) __attribute__((import_module("kiln"), import_name(n)))

KILN_IMPORT_("kv_get")
int32_t kiln__kv_get(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len,
                     void *buf, uint32_t buf_len, uint32_t *len_out);
KILN_IMPORT_("kv_set")
int32_t kiln__kv_set(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len,
                     const void *val, uint32_t val_len, int64_t ttl_ms, int32_t flags);
KILN_IMPORT_("kv_delete")
int32_t kiln__kv_delete(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len);
KILN_IMPORT_("kv_incr")
int32_t kiln__kv_incr(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len,
                      int64_t delta, int64_t *out);
KILN_IMPORT_("kv_list")
int32_t kiln__kv_list(const char *ns, uint32_t ns_len, const void *prefix, uint32_t prefix_len,
                      const void *after, uint32_t after_len, void *buf, uint32_t buf_len,
                      uint32_t *out);
KILN_IMPORT_("config_get")
int32_t kiln__config_get(const char *key, uint32_t key_len, char *buf, uint32_t buf_len,
                         uint32_t *len_out);
KILN_IMPORT_("log") int32_t kiln__log(int32_t level, const char *msg, uint32_t msg_len);
KILN_IMPORT_("http_request")
int32_t kiln__http_request(const char *method, uint32_t method_len, const char *url,
                           uint32_t url_len, const char *headers, uint32_t headers_len,
                           const void *body, uint32_t body_len, uint32_t timeout_ms,
                           uint32_t flags);
KILN_IMPORT_("http_response_body")
int32_t kiln__http_response_body(void *buf, uint32_t buf_len, uint32_t *len_out);
KILN_IMPORT_("http_response_header")
int32_t kiln__http_response_header(const char *name, uint32_t name_len, char *buf,
                                   uint32_t buf_len, uint32_t *len_out);
KILN_IMPORT_("http_response_headers")
int32_t kiln__http_response_headers(char *buf, uint32_t buf_len, uint32_t *len_out);
KILN_IMPORT_("http_error") int32_t kiln__http_error(char *buf, uint32_t buf_len, uint32_t *len_out);

/* Call `get` with a buffer, growing it on KILN_ETOOSMALL; the result is
 * malloc'd and NUL-terminated, its length in *len. Internal. */
typedef int32_t (*kiln__getter)(void *ctx, char *buf, uint32_t buf_len, uint32_t *len_out);
static inline int kiln__fetch(kiln__getter get, void *ctx, char **out, size_t *len)
{
    uint32_t cap = 256, need = 0;
    *out = NULL;
    for (int tries = 0; tries < 4; tries++) {
        char *buf = malloc((size_t)cap + 1);
        if (buf == NULL)
            return KILN_ENOMEM;
        int32_t rc = get(ctx, buf, cap, &need);
        if (rc == KILN_ETOOSMALL) {
            free(buf);
            cap = need;
            continue;
        }
        if (rc < 0) {
            free(buf);
            return rc;
        }
        buf[need] = '\0';
        *out = buf;
        if (len != NULL)
            *len = need;
        return KILN_OK;
    }
    return KILN_EIO; /* the value kept changing size */
}

/* ---- the request ---------------------------------------------------------------------- */

static inline const char *kiln__env(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "";
}

/* "GET", "POST", ... */
static inline const char *kiln_method(void)
{
    return kiln__env("REQUEST_METHOD");
}

/* The request path (route and the rest), without the query. */
static inline const char *kiln_path(void)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s%s", kiln__env("SCRIPT_NAME"), kiln__env("PATH_INFO"));
    return path;
}

/* The raw query string, "" if none. */
static inline const char *kiln_query(void)
{
    return kiln__env("QUERY_STRING");
}

static inline int kiln__hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode [s, s+n) ('+' is a space) into a new string. */
static inline char *kiln_url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; out != NULL && i < n; i++) {
        if (s[i] == '%' && i + 2 < n && kiln__hex(s[i + 1]) >= 0 && kiln__hex(s[i + 2]) >= 0) {
            out[o++] = (char)(kiln__hex(s[i + 1]) * 16 + kiln__hex(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    if (out != NULL)
        out[o] = '\0';
    return out;
}

/* The decoded value of query parameter `name` (the first one), or NULL.
 * "?flag" gives "". */
static inline char *kiln_query_param(const char *name)
{
    const char *q = kiln_query();
    size_t nl = strlen(name);
    while (*q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t kl = eq ? (size_t)(eq - q) : len;
        char *k = kiln_url_decode(q, kl);
        int hit = k != NULL && strlen(k) == nl && memcmp(k, name, nl) == 0;
        free(k);
        if (hit)
            return eq ? kiln_url_decode(eq + 1, len - kl - 1) : kiln_url_decode("", 0);
        q += len + (end ? 1 : 0);
    }
    return NULL;
}

/* Request header `name` (any case; joined with ", " when repeated), or NULL. */
static inline const char *kiln_header(const char *name)
{
    char var[256] = "HTTP_";
    size_t o = 5;
    if (strcasecmp(name, "Content-Type") == 0 || strcasecmp(name, "Content-Length") == 0)
        o = 0;
    for (const char *p = name; *p && o < sizeof(var) - 1; p++)
        var[o++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    var[o] = '\0';
    return getenv(var);
}

/* Route parameter `name` (":name" in the route), or NULL. */
static inline const char *kiln_param(const char *name)
{
    char var[256] = "X_PARAM_";
    size_t o = 8;
    for (const char *p = name; *p && o < sizeof(var) - 1; p++)
        var[o++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    var[o] = '\0';
    return getenv(var);
}

/* The whole request body (malloc'd, NUL-terminated; "" when empty), its
 * length in *len (may be NULL). NULL when out of memory. */
static inline char *kiln_body(size_t *len)
{
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf != NULL)
        buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

/* ---- the response ----------------------------------------------------------------------- */

/* Status and headers are collected until the first body byte (or the end of
 * main) and then written as the CGI header block. */
static struct {
    int status, sent, registered, has_ctype;
    char head[8192];
    size_t head_len;
} kiln__resp = {200, 0, 0, 0, "", 0};

static inline void kiln__send_head(void)
{
    if (kiln__resp.sent)
        return;
    kiln__resp.sent = 1;
    printf("Status: %d\r\n", kiln__resp.status);
    if (!kiln__resp.has_ctype)
        fputs("Content-Type: text/plain; charset=utf-8\r\n", stdout);
    fwrite(kiln__resp.head, 1, kiln__resp.head_len, stdout);
    fputs("\r\n", stdout);
}

static inline void kiln__register(void)
{
    if (!kiln__resp.registered) {
        kiln__resp.registered = 1;
        atexit(kiln__send_head);
    }
}

/* Set the status (200 unless set). Before the first body byte. */
static inline void kiln_status(int code)
{
    kiln__register();
    kiln__resp.status = code;
}

/* Add a response header. Before the first body byte; returns KILN_EINVAL if
 * the head is already sent or the header has a line break, KILN_ELIMIT when
 * the headers exceed 8 KiB. */
static inline int kiln_set_header(const char *name, const char *value)
{
    kiln__register();
    if (kiln__resp.sent || strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
        return KILN_EINVAL;
    size_t room = sizeof(kiln__resp.head) - kiln__resp.head_len;
    int n = snprintf(kiln__resp.head + kiln__resp.head_len, room, "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= room)
        return KILN_ELIMIT;
    kiln__resp.head_len += (size_t)n;
    if (strcasecmp(name, "Content-Type") == 0)
        kiln__resp.has_ctype = 1;
    return KILN_OK;
}

/* Append body bytes. */
static inline void kiln_write(const void *data, size_t len)
{
    kiln__send_head();
    fwrite(data, 1, len, stdout);
}

static inline void kiln_puts(const char *s)
{
    kiln_write(s, strlen(s));
}

__attribute__((format(printf, 1, 2))) static inline void kiln_printf(const char *fmt, ...)
{
    kiln__send_head();
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

/* A whole response in one call: status, Content-Type and body. */
static inline void kiln_respond(int status, const char *content_type, const void *body,
                                size_t len)
{
    kiln_status(status);
    kiln_set_header("Content-Type", content_type);
    kiln_write(body, len);
}

/* ---- logging and configuration ------------------------------------------------------------ */

#define KILN_LOG_TRACE 0
#define KILN_LOG_DEBUG 1
#define KILN_LOG_INFO 2
#define KILN_LOG_WARN 3
#define KILN_LOG_ERROR 4

/* One line in the server's log, "[level] function: message". */
__attribute__((format(printf, 2, 3))) static inline void kiln_log(int level, const char *fmt,
                                                                   ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    kiln__log(level, line, (uint32_t)((size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1));
}

static inline int32_t kiln__config_getter(void *key, char *buf, uint32_t cap, uint32_t *need)
{
    return kiln__config_get(key, (uint32_t)strlen(key), buf, cap, need);
}

/* The function's configuration entry `key` ("config:" in kiln.yaml), or
 * NULL when it has none. */
static inline char *kiln_config(const char *key)
{
    char *v = NULL;
    kiln__fetch(kiln__config_getter, (void *)key, &v, NULL);
    return v;
}

/* ---- key-value storage -------------------------------------------------------------------- */

/* `ns` is a global namespace the function was granted, or NULL / "" for its
 * private namespace. Keys are C strings here; values are bytes. */

#define KILN_KV_NX 1 /* kiln_kv_set: only if the key is absent (else KILN_EEXISTS) */

typedef struct {
    const char *ns, *key;
} kiln__kv_arg;

static inline int32_t kiln__kv_getter(void *p, char *buf, uint32_t cap, uint32_t *need)
{
    const kiln__kv_arg *a = p;
    return kiln__kv_get(a->ns, (uint32_t)strlen(a->ns), a->key, (uint32_t)strlen(a->key), buf,
                        cap, need);
}

/* The value of `key` (malloc'd, NUL-terminated for convenience) and its
 * length. KILN_OK, KILN_ENOTFOUND, KILN_EDENIED, ... */
static inline int kiln_kv_get(const char *ns, const char *key, char **value, size_t *len)
{
    kiln__kv_arg a = {ns ? ns : "", key};
    return kiln__fetch(kiln__kv_getter, &a, value, len);
}

/* Store `len` bytes under `key`; ttl_ms 0 = no expiry; flags 0 or
 * KILN_KV_NX. KILN_OK, KILN_EEXISTS (KILN_KV_NX), KILN_EDENIED, KILN_ELIMIT. */
static inline int kiln_kv_set(const char *ns, const char *key, const void *value, size_t len,
                              int64_t ttl_ms, int flags)
{
    ns = ns ? ns : "";
    return kiln__kv_set(ns, (uint32_t)strlen(ns), key, (uint32_t)strlen(key), value,
                        (uint32_t)len, ttl_ms, flags);
}

/* KILN_OK, or KILN_ENOTFOUND when there was no such key. */
static inline int kiln_kv_delete(const char *ns, const char *key)
{
    ns = ns ? ns : "";
    return kiln__kv_delete(ns, (uint32_t)strlen(ns), key, (uint32_t)strlen(key));
}

/* Add `delta` to the decimal integer at `key` (absent = 0); the new value in
 * *out (may be NULL). KILN_OK or KILN_ETYPE, KILN_EDENIED, ... */
static inline int kiln_kv_incr(const char *ns, const char *key, int64_t delta, int64_t *out)
{
    int64_t v = 0;
    ns = ns ? ns : "";
    int rc = kiln__kv_incr(ns, (uint32_t)strlen(ns), key, (uint32_t)strlen(key), delta, &v);
    if (rc == KILN_OK && out != NULL)
        *out = v;
    return rc;
}

/* Call `fn` for every key starting with `prefix`, in byte order, until it
 * returns non-zero. Keys are passed NUL-terminated. Returns KILN_OK or a
 * code. */
static inline int kiln_kv_list(const char *ns, const char *prefix,
                               int (*fn)(void *arg, const char *key, size_t len), void *arg)
{
    ns = ns ? ns : "";
    uint32_t cap = 4096;
    char *buf = malloc(cap), *after = NULL;
    size_t after_len = 0;
    int rc = buf ? KILN_OK : KILN_ENOMEM;
    while (rc == KILN_OK) {
        uint32_t out[2] = {0, 0};
        int32_t n = kiln__kv_list(ns, (uint32_t)strlen(ns), prefix, (uint32_t)strlen(prefix),
                                  after ? after : "", (uint32_t)after_len, buf, cap, out);
        if (n == KILN_ETOOSMALL) {
            char *nb = realloc(buf, out[0]);
            rc = nb ? KILN_OK : KILN_ENOMEM;
            buf = nb ? nb : buf;
            cap = nb ? out[0] : cap;
            continue;
        }
        if (n < 0) {
            rc = n;
            break;
        }
        uint32_t pos = 0;
        int stop = 0;
        for (int32_t i = 0; i < n && !stop; i++) {
            uint32_t l;
            memcpy(&l, buf + pos, 4);
            char *k = malloc((size_t)l + 1);
            if (k == NULL) {
                rc = KILN_ENOMEM;
                break;
            }
            memcpy(k, buf + pos + 4, l);
            k[l] = '\0';
            stop = fn(arg, k, l);
            free(after);
            after = k;
            after_len = l;
            pos += 4 + l;
        }
        if (stop || out[1] == 0)
            break;
    }
    free(after);
    free(buf);
    return rc;
}

/* ---- outbound HTTP ------------------------------------------------------------------------ */

/* The host must allow the URL: allowed_hosts in the function's configuration
 * (nothing is allowed by default; loopback and private addresses must be
 * named by address). */

#define KILN_HTTP_FOLLOW 1u    /* follow redirects (each hop is checked) */
#define KILN_HTTP_SEND_BODY 2u /* send an empty body (POST with no data) */

typedef struct kiln_http_response {
    int status;
    char *body; /* malloc'd, NUL-terminated for convenience */
    size_t body_len;
    char *headers; /* "name: value\n" lines, lower-case names */
} kiln_http_response;

static inline int32_t kiln__body_getter(void *unused, char *buf, uint32_t cap, uint32_t *need)
{
    (void)unused;
    return kiln__http_response_body(buf, cap, need);
}

static inline int32_t kiln__headers_getter(void *unused, char *buf, uint32_t cap,
                                           uint32_t *need)
{
    (void)unused;
    return kiln__http_response_headers(buf, cap, need);
}

/*
 * Send a request and read the whole response into *resp. `headers` is
 * "Name: value" lines separated by "\n" (or NULL); `body` may be NULL.
 * timeout_ms 0 = up to the function's own time limit. Returns the HTTP status
 * (any status is success), or a negative code: KILN_EDENIED (not allowed),
 * KILN_ETIMEOUT, KILN_ELIMIT (response too large), KILN_EIO, KILN_EINVAL;
 * kiln_http_error() says why. Free with kiln_http_response_free.
 */
static inline int kiln_http(const char *method, const char *url, const char *headers,
                            const void *body, size_t body_len, unsigned timeout_ms,
                            unsigned flags, kiln_http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    headers = headers ? headers : "";
    int32_t st = kiln__http_request(method, (uint32_t)strlen(method), url, (uint32_t)strlen(url),
                                    headers, (uint32_t)strlen(headers), body ? body : "",
                                    (uint32_t)body_len, timeout_ms, flags);
    if (st < 0)
        return st;
    resp->status = st;
    int rc = kiln__fetch(kiln__body_getter, NULL, &resp->body, &resp->body_len);
    if (rc == KILN_OK)
        rc = kiln__fetch(kiln__headers_getter, NULL, &resp->headers, NULL);
    return rc == KILN_OK ? st : rc;
}

static inline int kiln_http_get(const char *url, kiln_http_response *resp)
{
    return kiln_http("GET", url, NULL, NULL, 0, 0, 0, resp);
}

/* Value of header `name` of the last response (malloc'd), or NULL. */
static inline char *kiln_http_header(const char *name)
{
    uint32_t need = 0;
    int32_t rc = kiln__http_response_header(name, (uint32_t)strlen(name), NULL, 0, &need);
    if (rc < 0 && rc != KILN_ETOOSMALL)
        return NULL;
    char *v = malloc((size_t)need + 1);
    if (v == NULL || kiln__http_response_header(name, (uint32_t)strlen(name), v, need, &need) < 0) {
        free(v);
        return NULL;
    }
    v[need] = '\0';
    return v;
}

static inline void kiln_http_response_free(kiln_http_response *resp)
{
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof(*resp));
}

static inline int32_t kiln__error_getter(void *unused, char *buf, uint32_t cap, uint32_t *need)
{
    (void)unused;
    return kiln__http_error(buf, cap, need);
}

/* Why the last request failed ("" if it did not). Valid until the next call. */
static inline const char *kiln_http_error(void)
{
    static char *msg;
    free(msg);
    msg = NULL;
    kiln__fetch(kiln__error_getter, NULL, &msg, NULL);
    return msg ? msg : "";
}

#endif
