/*
 * net.h - outbound HTTP for guests: the one client behind Extism's
 * http_request, Otoroshi's proxy_http_call and the "kiln" module's http_*
 * functions. libcurl underneath; the allow-list, the address guard, the
 * redirect walk and the caps are Kiln's. Notes: docs/internals/net.md.
 *
 * Policy, per function (net_policy):
 *   - allow-list entries "[scheme://]host-glob[:port]": "api.example.com",
 *     "*.example.com", "https://api.example.com:443", "http://127.0.0.1:8081",
 *     "[::1]". No scheme = http or https; no port = any port. Nothing is
 *     allowed by default.
 *   - address guard: a connection to a loopback, link-local, private,
 *     shared (CGNAT), unspecified, multicast or reserved address is refused
 *     unless an entry names that address literally ("127.0.0.1", not
 *     "127.*" and not "localhost"). The check runs on the address libcurl
 *     actually connects to, so DNS answers and redirects cannot get around it.
 *   - redirects are followed by net_fetch itself, hop by hop, each target
 *     checked against the allow-list; at most max_redirects hops.
 *   - the response body is capped at max_response_bytes; headers at
 *     NET_MAX_HEADERS lines and NET_MAX_HEADER_BYTES bytes.
 *
 * Connections: every thread keeps one libcurl handle whose connection cache
 * survives between requests, so repeated calls to one upstream from a worker
 * thread reuse the connection. Thread-safe: no state is shared between
 * threads except the counters of net_stats_get.
 */
#ifndef KILN_NET_NET_H
#define KILN_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/handler.h"
#include "kiln/kiln.h"

#define NET_DEFAULT_MAX_RESPONSE ((uint64_t)50 << 20)
#define NET_DEFAULT_MAX_REDIRECTS 10u
#define NET_MAX_HEADERS 100
#define NET_MAX_HEADER_BYTES ((size_t)64 << 10)
/* Connecting (DNS, TCP, TLS) never waits longer than this, whatever is left
 * of the caller's time. */
#define NET_CONNECT_TIMEOUT_MS 10000
#define NET_HOST_MAX 256 /* host names, IPv6 literals with brackets */

/* ---- URLs and the allow-list (net_allow.c) ------------------------------ */

typedef struct net_url {
    char scheme[8];            /* "http" or "https" */
    char host[NET_HOST_MAX];   /* lower case; IPv6 in brackets, as in URLs */
    unsigned port;             /* explicit or the scheme's default */
} net_url;

/* Parse an absolute http(s) URL. KILN_OK, or KILN_EINVAL with a message
 * naming the URL (not http/https, no host, malformed, host too long). */
int net_url_parse(const char *url, net_url *out /* OUT */, kiln_err *err);

/* Glob as in Extism's allowed_hosts: '*' any run (dots included), '?' one
 * byte, "[a-z]" / "[!a-z]" classes; a malformed pattern compares literally.
 * Case-sensitive (hosts are lower-cased before matching). */
bool net_glob_match(const char *pattern, const char *s);

/* Does one allow-list entry admit URL u (scheme, host glob, port)? Entries
 * are matched case-insensitively. */
bool net_allow_entry_match(const char *entry, const net_url *u);
/* Does any entry admit u? An empty list admits nothing. */
bool net_allowed(const char *const *allow, size_t n, const net_url *u);

/* Address classes, for the guard and for messages. */
typedef enum net_addr_class {
    NET_ADDR_PUBLIC = 0,
    NET_ADDR_LOOPBACK,    /* 127/8, ::1 */
    NET_ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 */
    NET_ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    NET_ADDR_SHARED,      /* 100.64/10 (carrier-grade NAT) */
    NET_ADDR_UNSPECIFIED, /* 0/8, :: */
    NET_ADDR_MULTICAST,   /* 224/4, ff00::/8 */
    NET_ADDR_RESERVED,    /* 240/4 incl. broadcast, 192.0.0/24, 198.18/15, docs ranges */
    NET_ADDR_INVALID,     /* not an IP address */
} net_addr_class;

/* Class of a numeric address ("10.1.2.3", "::ffff:127.0.0.1", "[::1]").
 * IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
 * IPv6 addresses are classified by the IPv4 address they carry. */
net_addr_class net_addr_classify(const char *ip);
/* Same for raw bytes: 4 (IPv4) or 16 (IPv6) in network order. */
net_addr_class net_addr_classify_raw(const uint8_t *a, size_t len);
const char *net_addr_class_name(net_addr_class c);

/* Are a and b IP literals (IPv6 with or without brackets) of one address? */
bool net_ip_same(const char *a, const char *b);

/* May a request for URL u connect to numeric address `ip`, port `port`?
 * Public addresses: yes. Others: only if an entry's host is exactly that
 * address (IPv4 or bracketed IPv6 literal, compared as addresses) and its
 * scheme and port, when given, match u and `port`. */
bool net_addr_allowed(const char *const *allow, size_t n, const net_url *u, const char *ip,
                      unsigned port);

/* ---- requests (net_http.c) ------------------------------------------------ */

typedef struct net_policy {
    const char *const *allow; /* allow-list entries; borrowed */
    size_t n_allow;
    uint64_t max_response_bytes; /* 0 = NET_DEFAULT_MAX_RESPONSE */
    unsigned max_redirects;      /* hops when following; 0 = NET_DEFAULT_MAX_REDIRECTS */
} net_policy;

typedef struct net_request {
    const char *method; /* NULL = GET; sent as given (upper-case it first) */
    const char *url;
    const kiln_kv *headers; /* names are tokens, values have no CR/LF/NUL */
    size_t n_headers;
    const uint8_t *body; /* NULL = no body; non-NULL with body_len 0 = empty body */
    size_t body_len;
    long long timeout_ms; /* the whole exchange, redirects included; <= 0 = none */
    bool follow_redirects;
} net_request;

typedef struct net_response {
    long status;
    kiln_kv *headers; /* the final response's, in order, lower-case names; kiln_malloc'd */
    size_t n_headers;
    uint8_t *body; /* kiln_malloc'd; NULL when empty */
    size_t body_len;
    unsigned redirects; /* hops followed */
    bool reused;        /* the final hop went over a reused connection */
} net_response;

/*
 * Perform one request under `p`: check the URL against the allow-list, send
 * it, follow redirects if asked (each hop re-checked), and collect the final
 * response. On a serve worker the transfer runs on the worker's curl multi
 * handle and the calling fiber waits (src/loop); elsewhere it blocks.
 * Any HTTP status is success. Returns
 *   KILN_OK
 *   KILN_EINVAL    bad URL, method or header
 *   KILN_EPERM     the URL, a redirect target or the connect address is not
 *                  allowed (the message says which and what to add)
 *   KILN_ELIMIT    body over max_response_bytes, too many/too large headers,
 *                  more than max_redirects redirects
 *   KILN_ETIMEOUT  timeout_ms passed
 *   KILN_EIO       transport error (DNS, connect, TLS, protocol)
 *   KILN_ENOMEM
 * and explains in err. Free resp with net_response_fini, even on failure.
 */
int net_fetch(const net_policy *p, const net_request *req, net_response *resp /* OUT */,
              kiln_err *err);
void net_response_fini(net_response *resp);
/* First value of header `name` (case-insensitive), or NULL. */
const char *net_response_header(const net_response *resp, const char *name);

/* Close this thread's cached connections and free its handle (also done
 * automatically when the thread exits). */
void net_thread_cleanup(void);

/* Process-wide counters, for tests and benchmarks. */
typedef struct net_stats {
    uint64_t requests;          /* transfers performed (each redirect hop counts) */
    uint64_t connections;       /* sockets opened */
    uint64_t refused_addresses; /* connect addresses refused by the guard */
} net_stats;
void net_stats_get(net_stats *out /* OUT */);

/* ---- per-instance context (KILN_STATE_HTTP) ------------------------------- */

/*
 * What the "kiln" module's http_* functions need in an instance: the
 * function's policy, the call's deadline and the last response. The handler
 * ABI owns it: net_ctx_init before kiln_instance_new (slot KILN_STATE_HTTP),
 * net_ctx_fini after kiln_instance_free. Used by one thread at a time, like
 * its instance.
 */
typedef struct net_ctx {
    net_policy policy;
    uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = none */
    bool have_response;
    net_response last;
    char last_error[1024]; /* why the last request failed; "" after success */
} net_ctx;

/* Policy from fn (allowed_hosts, max_http_response_bytes; borrowed) and a
 * deadline timeout_ms from now (0 = none). Never fails. */
void net_ctx_init(net_ctx *c, const kiln_function *fn, uint32_t timeout_ms);
/* Forget the last response and error, and set a new deadline (0 = none):
 * for an instance that serves several calls. */
void net_ctx_reset(net_ctx *c, uint64_t deadline_ns);
void net_ctx_fini(net_ctx *c);
/* Milliseconds left before c's deadline: -1 = none, 0 = passed. */
long long net_ctx_remaining_ms(const net_ctx *c);
uint64_t net_now_ns(void);

#endif
