/*
 * kiln_http.c - Kiln's own host module "kiln", outbound HTTP part:
 * http_request and the accessors of its response (status, headers, body,
 * error text), on top of src/net. The state is the instance's net_ctx
 * (slot KILN_STATE_HTTP), which holds the function's policy, the call's
 * deadline and the last response. Signatures and codes: docs/abi/kiln-host.md.
 * Guest mistakes and network failures come back as codes; nothing here traps.
 * A deadline that passes while the request waits unwinds the guest when the
 * host function returns (the import shim's bracket).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "abi/kiln/kiln_host.h"
#include "base/alloc.h"
#include "kiln/abi.h"
#include "kiln/host_abi.h"
#include "net/net.h"

#define HTTP_MAX_METHOD 32
#define HTTP_MAX_URL 8192
#define HTTP_FOLLOW_REDIRECTS 1u /* flags of http_request */
#define HTTP_SEND_BODY 2u        /* send the body even when it is empty */
#define HTTP_FLAGS (HTTP_FOLLOW_REDIRECTS | HTTP_SEND_BODY)

/* Copy n bytes out to the guest's (buf, buf_len), length at len_out; the
 * ETOOSMALL protocol of host_abi.h. */
static uint32_t put_out(kiln_instance *inst, uint32_t buf, uint32_t buf_len, uint32_t len_out,
                        const void *data, size_t n)
{
    if (kiln_guest_ptr(inst, len_out, 4) == NULL || kiln_guest_ptr(inst, buf, buf_len) == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    if (n > INT32_MAX)
        return (uint32_t)KILN_HOST_ELIMIT;
    kiln_host_put_u32(inst, len_out, (uint32_t)n);
    if (n > buf_len)
        return (uint32_t)KILN_HOST_ETOOSMALL;
    if (n > 0)
        memcpy(kiln_guest_ptr(inst, buf, n), data, n);
    return (uint32_t)n;
}

/* Record why the last request failed (read back with http_error). */
static int32_t failed(net_ctx *c, int32_t code, const char *msg)
{
    snprintf(c->last_error, sizeof(c->last_error), "%s", msg);
    return code;
}

/*
 * Parse "Name: value" lines (LF or CRLF; a blank line ends them) into kv
 * pairs pointing into `text`, which is modified in place. Returns the count,
 * or -1 for a line without ':' or more than NET_MAX_HEADERS lines.
 */
static long parse_headers(char *text, size_t len, kiln_kv *out)
{
    long n = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *next = nl ? nl + 1 : end;
        if (le > p && le[-1] == '\r')
            le--;
        if (le == p)
            break;
        *le = '\0';
        char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon == NULL || n == NET_MAX_HEADERS)
            return -1;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = '\0';
        out[n].name = p;
        out[n].value = v;
        n++;
        p = next;
    }
    return n;
}

static uint32_t hf_http_request(kiln_instance *inst, uint32_t method, uint32_t method_len,
                                uint32_t url, uint32_t url_len, uint32_t headers,
                                uint32_t headers_len, uint32_t body, uint32_t body_len,
                                uint32_t timeout_ms, uint32_t flags)
{
    net_ctx *c = kiln_instance_state(inst, KILN_STATE_HTTP);
    if (c == NULL)
        return (uint32_t)KILN_HOST_EUNAVAILABLE;
    const char *m = kiln_guest_ptr(inst, method, method_len);
    const char *u = kiln_guest_ptr(inst, url, url_len);
    const char *h = kiln_guest_ptr(inst, headers, headers_len);
    const uint8_t *b = kiln_guest_ptr(inst, body, body_len);
    if (m == NULL || u == NULL || h == NULL || b == NULL)
        return (uint32_t)failed(c, KILN_HOST_EINVAL, "http_request: an argument lies outside "
                                "the guest's memory");
    if ((flags & ~HTTP_FLAGS) != 0)
        return (uint32_t)failed(c, KILN_HOST_EINVAL, "http_request: unknown flags");
    if (method_len > HTTP_MAX_METHOD || url_len == 0 || url_len > HTTP_MAX_URL ||
        headers_len > NET_MAX_HEADER_BYTES)
        return (uint32_t)failed(c, KILN_HOST_EINVAL,
                                "http_request: method over 32 bytes, URL empty or over 8192 "
                                "bytes, or headers over 64 KiB");
    if (memchr(m, '\0', method_len) != NULL || memchr(u, '\0', url_len) != NULL ||
        memchr(h, '\0', headers_len) != NULL)
        return (uint32_t)failed(c, KILN_HOST_EINVAL, "http_request: NUL byte in the method, "
                                "URL or headers");

    /* A new request forgets the previous response. */
    net_response_fini(&c->last);
    c->have_response = false;
    c->last_error[0] = '\0';
    char mbuf[HTTP_MAX_METHOD + 1];
    for (uint32_t i = 0; i < method_len; i++)
        mbuf[i] = (char)((m[i] >= 'a' && m[i] <= 'z') ? m[i] - 32 : m[i]);
    mbuf[method_len] = '\0';
    char *ubuf = kiln_strndup(u, url_len);
    char *hbuf = kiln_strndup(h, headers_len);
    kiln_kv *hv = kiln_calloc(NET_MAX_HEADERS, sizeof(*hv));
    int32_t code = KILN_HOST_OK;
    long nh = 0;
    if (ubuf == NULL || hbuf == NULL || hv == NULL)
        code = failed(c, KILN_HOST_ENOMEM, "http_request: out of host memory");
    else if ((nh = parse_headers(hbuf, headers_len, hv)) < 0)
        code = failed(c, KILN_HOST_EINVAL, "http_request: headers must be \"Name: value\" "
                      "lines, at most 100");
    long long left = net_ctx_remaining_ms(c);
    if (code == KILN_HOST_OK && left == 0)
        code = failed(c, KILN_HOST_ETIMEOUT, "http_request: the function's time limit passed");
    if (code == KILN_HOST_OK) {
        long long t = left;
        if (timeout_ms > 0 && (t < 0 || (long long)timeout_ms < t))
            t = timeout_ms;
        net_request q;
        memset(&q, 0, sizeof(q));
        q.method = method_len ? mbuf : "GET";
        q.url = ubuf;
        q.headers = hv;
        q.n_headers = (size_t)nh;
        if (body_len > 0 || (flags & HTTP_SEND_BODY))
            q.body = b ? b : (const uint8_t *)"";
        q.body_len = body_len;
        q.timeout_ms = t;
        q.follow_redirects = (flags & HTTP_FOLLOW_REDIRECTS) != 0;
        kiln_err e;
        int rc = net_fetch(&c->policy, &q, &c->last, &e);
        if (rc == KILN_OK) {
            c->have_response = true;
            code = (int32_t)c->last.status;
        } else {
            net_response_fini(&c->last);
            code = failed(c, kiln_host_code(rc), e.msg);
        }
    }
    kiln_free(ubuf);
    kiln_free(hbuf);
    kiln_free(hv);
    return (uint32_t)code;
}

/* The context with a response, or NULL with *code set. */
static net_ctx *response_of(kiln_instance *inst, int32_t *code)
{
    net_ctx *c = kiln_instance_state(inst, KILN_STATE_HTTP);
    *code = c == NULL ? KILN_HOST_EUNAVAILABLE : KILN_HOST_ENOTFOUND;
    return c != NULL && c->have_response ? c : NULL;
}

static uint32_t hf_http_response_body(kiln_instance *inst, uint32_t buf, uint32_t buf_len,
                                      uint32_t len_out)
{
    int32_t code;
    net_ctx *c = response_of(inst, &code);
    if (c == NULL)
        return (uint32_t)code;
    return put_out(inst, buf, buf_len, len_out, c->last.body, c->last.body_len);
}

static uint32_t hf_http_response_header(kiln_instance *inst, uint32_t name, uint32_t name_len,
                                        uint32_t buf, uint32_t buf_len, uint32_t len_out)
{
    int32_t code;
    net_ctx *c = response_of(inst, &code);
    if (c == NULL)
        return (uint32_t)code;
    const char *n = kiln_guest_ptr(inst, name, name_len);
    if (n == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    for (size_t i = 0; i < c->last.n_headers; i++) {
        const kiln_kv *h = &c->last.headers[i];
        if (strlen(h->name) == name_len && strncasecmp(h->name, n, name_len) == 0)
            return put_out(inst, buf, buf_len, len_out, h->value, strlen(h->value));
    }
    return (uint32_t)KILN_HOST_ENOTFOUND;
}

static uint32_t hf_http_response_headers(kiln_instance *inst, uint32_t buf, uint32_t buf_len,
                                         uint32_t len_out)
{
    int32_t code;
    net_ctx *c = response_of(inst, &code);
    if (c == NULL)
        return (uint32_t)code;
    size_t need = 0;
    for (size_t i = 0; i < c->last.n_headers; i++)
        need += strlen(c->last.headers[i].name) + strlen(c->last.headers[i].value) + 3;
    char *text = kiln_malloc(need + 1);
    size_t o = 0;
    for (size_t i = 0; text != NULL && i < c->last.n_headers; i++)
        o += (size_t)snprintf(text + o, need + 1 - o, "%s: %s\n", c->last.headers[i].name,
                              c->last.headers[i].value);
    uint32_t r = text ? put_out(inst, buf, buf_len, len_out, text, o)
                      : (uint32_t)KILN_HOST_ENOMEM;
    kiln_free(text);
    return r;
}

static uint32_t hf_http_error(kiln_instance *inst, uint32_t buf, uint32_t buf_len,
                              uint32_t len_out)
{
    net_ctx *c = kiln_instance_state(inst, KILN_STATE_HTTP);
    if (c == NULL)
        return (uint32_t)KILN_HOST_EUNAVAILABLE;
    if (c->last_error[0] == '\0')
        return (uint32_t)KILN_HOST_ENOTFOUND;
    return put_out(inst, buf, buf_len, len_out, c->last_error, strlen(c->last_error));
}

#define FN(f) ((void (*)(void))(f))

static const kiln_hostfn http_table[] = {
    {"kiln", "http_request", "iiiiiiiiii>i", FN(hf_http_request)},
    {"kiln", "http_response_body", "iii>i", FN(hf_http_response_body)},
    {"kiln", "http_response_header", "iiiii>i", FN(hf_http_response_header)},
    {"kiln", "http_response_headers", "iii>i", FN(hf_http_response_headers)},
    {"kiln", "http_error", "iii>i", FN(hf_http_error)},
};

const kiln_hostfn *kiln_net_hostfns(size_t *n)
{
    *n = sizeof(http_table) / sizeof(http_table[0]);
    return http_table;
}
