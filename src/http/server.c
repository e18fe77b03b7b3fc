/*
 * server.c - glue to libmicrohttpd: the listener, the worker thread pool that
 * runs the guests, request limits (431, 413, slow clients), the access log,
 * the lock-free route-table swap, and the signal loop (SIGHUP reloads,
 * SIGTERM/SIGINT drain and exit). HTTP parsing itself is the library's.
 *
 * Threads: MHD's internal thread pool (MHD_OPTION_THREAD_POOL_SIZE) accepts,
 * parses and calls on_request(); the guest runs right there, on the worker
 * that owns the connection, so each worker keeps its own memory pool in the
 * runtime. The main thread only waits for signals.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "http/http_int.h"

#define THREAD_STACK_SIZE ((size_t)8 << 20)
#define MAX_STACK_HEADERS 32
#define DISCARD_MIN ((size_t)1 << 20)

typedef struct http_server {
    struct MHD_Daemon *daemon;
    _Atomic(http_table *) table;
    atomic_long loading;   /* readers between loading `table` and taking a reference */
    atomic_long in_flight; /* requests between their first byte and completion */
    atomic_bool draining;
    const http_options *opts;
    cfg_server started;    /* settings the daemon was started with */
    unsigned port;
} http_server;

enum { STAGE_NEW = 0, STAGE_BODY = 1, STAGE_ERROR = 2, STAGE_DONE = 3 };

/* Per request, from the request line to completion. */
typedef struct http_req {
    http_server *s;
    int stage;
    int status;
    uint64_t t0;
    http_table *table;
    http_fn *fn;
    http_match match;
    bool matched;
    uint8_t *body;
    size_t body_len, body_cap, body_limit;
    bool too_large;
    size_t discarded; /* body bytes dropped after the limit was passed */
    int err_status;      /* STAGE_ERROR: the answer waiting for the end of the request */
    const char *err_msg; /* static text */
    char method[24];
    char uri[]; /* raw request target: path?query, percent-encoded */
} http_req;

/* ---- log ----------------------------------------------------------------------------- */

void http_log(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) - 1 ? (size_t)n : sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    http_log("kiln serve: libmicrohttpd: %s", msg);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- route table ------------------------------------------------------------------------ */

/* Take a reference on the current table without a lock: the `loading`
 * counter tells a reload when no reader can still be holding the old
 * pointer without having counted its reference (see swap_table). */
static http_table *acquire_table(http_server *s)
{
    atomic_fetch_add(&s->loading, 1);
    http_table *t = atomic_load(&s->table);
    http_table_retain(t);
    atomic_fetch_sub(&s->loading, 1);
    return t;
}

static void swap_table(http_server *s, http_table *t)
{
    http_table *old = atomic_exchange(&s->table, t);
    /* A reader that loaded `old` incremented `loading` before its load,
     * which precedes our exchange; once `loading` reads zero, that reader
     * has counted its reference, so dropping ours is safe. */
    while (atomic_load(&s->loading) != 0)
        sched_yield();
    http_table_release(old);
}

/* ---- responses ---------------------------------------------------------------------------- */

/* The request target for the log: printable ASCII only, at most 511 bytes. */
static const char *log_target(const http_req *r, char *buf, size_t size)
{
    size_t i = 0;
    for (; r->uri[i] && i < size - 1; i++) {
        unsigned char c = (unsigned char)r->uri[i];
        buf[i] = c < 0x21 || c >= 0x7f ? '?' : (char)c;
    }
    buf[i] = '\0';
    return buf;
}

static void access_log(http_req *r, const char *fn)
{
    if (r->table != NULL && r->table->server.quiet)
        return;
    char uri[512];
    uint64_t us = (now_ns() - r->t0) / 1000;
    http_log("%s %s %d %lluus %s", r->method[0] ? r->method : "-",
             log_target(r, uri, sizeof(uri)), r->status, (unsigned long long)us, fn ? fn : "-");
}

/* Queue `resp` (its body is handed to MHD without a copy). */
static enum MHD_Result respond(http_req *r, struct MHD_Connection *c, kiln_response *resp,
                               const char *fn)
{
    struct MHD_Response *mr;
    if (resp->body_len > 0) {
        mr = MHD_create_response_from_buffer_with_free_callback(resp->body_len, resp->body,
                                                                kiln_free);
        if (mr != NULL) {
            resp->body = NULL;
            resp->body_len = resp->body_cap = 0;
        }
    } else {
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (mr == NULL)
        return MHD_NO;
    for (size_t i = 0; i < resp->n_headers; i++)
        MHD_add_response_header(mr, resp->headers[i].name, resp->headers[i].value);
    if (atomic_load_explicit(&r->s->draining, memory_order_relaxed))
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
    int status = resp->status >= 100 && resp->status <= 999 ? resp->status : 500;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, mr);
    MHD_destroy_response(mr);
    r->stage = STAGE_DONE;
    r->status = status;
    access_log(r, fn);
    return ok;
}

/* Answer with a JSON error ({"error": msg}), optionally with an extra header. */
static enum MHD_Result respond_error(http_req *r, struct MHD_Connection *c, int status,
                                     const char *msg, const char *hname, const char *hvalue)
{
    kiln_response resp;
    kiln_response_init(&resp, 0);
    http_error_response(&resp, status, NULL, msg);
    if (hname != NULL)
        kiln_response_add_header(&resp, hname, hvalue);
    enum MHD_Result ok = respond(r, c, &resp, NULL);
    kiln_response_fini(&resp);
    return ok;
}

/* Does the request announce a body? */
static bool has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strcmp(cl, "0") != 0)
        return true;
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/*
 * Answer a request that was refused from its headers alone (404, 405, 400,
 * 431). MHD closes the connection when the answer is queued before the
 * request is complete; a request without a body completes on the next call,
 * so the answer waits for it and the connection stays open. With a body the
 * answer goes out at once rather than reading a body nobody wants.
 */
static enum MHD_Result early_error(http_req *r, struct MHD_Connection *c, int status,
                                   const char *msg)
{
    if (has_body(c))
        return respond_error(r, c, status, msg, status == MHD_HTTP_METHOD_NOT_ALLOWED
                                                    ? MHD_HTTP_HEADER_ALLOW : NULL,
                             r->match.allow);
    r->stage = STAGE_ERROR;
    r->err_status = status;
    r->err_msg = msg;
    return MHD_YES;
}

/* ---- request callbacks ---------------------------------------------------------------------- */

static http_req *req_new(http_server *s, const char *uri)
{
    size_t n = strlen(uri);
    http_req *r = kiln_malloc(sizeof(*r) + n + 1);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    memcpy(r->uri, uri, n + 1);
    r->s = s;
    r->t0 = now_ns();
    atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
    return r;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the first sight of a request, with its raw
 * target (before MHD splits off and decodes the query). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    return req_new(cls, uri);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    http_req *r = *req_cls;
    *req_cls = NULL;
    if (r == NULL)
        return;
    if (r->stage != STAGE_DONE && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        /* The client went away or timed out before we answered. */
        char uri[512];
        r->status = 0;
        if (r->table != NULL && !r->table->server.quiet)
            http_log("%s %s - %lluus %s (connection closed before the response)",
                     r->method[0] ? r->method : "-", log_target(r, uri, sizeof(uri)),
                     (unsigned long long)((now_ns() - r->t0) / 1000),
                     r->fn ? r->fn->fn.name : "-");
    }
    if (r->matched)
        http_match_fini(&r->match);
    kiln_free(r->body);
    if (r->table != NULL)
        http_table_release(r->table);
    kiln_free(r);
    atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_relaxed);
}

typedef struct hdr_walk {
    size_t bytes;
    kiln_kv *kv;
    size_t n, cap;
} hdr_walk;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    hdr_walk *w = cls;
    w->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    hdr_walk *w = cls;
    if (w->n < w->cap) {
        w->kv[w->n].name = key;
        w->kv[w->n].value = value ? value : "";
        w->n++;
    }
    return MHD_YES;
}

/* The request line and headers are in: route, check limits, get ready for the body. */
static enum MHD_Result begin(http_req *r, struct MHD_Connection *c, const char *method,
                             const char *version)
{
    http_server *s = r->s;
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->table = acquire_table(s);
    const cfg_server *srv = &r->table->server;

    /* Header limit: MHD refuses headers beyond its connection memory pool;
     * this makes the configured limit exact (431, RFC 6585). */
    hdr_walk hw = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &hw);
    size_t line = strlen(method) + strlen(r->uri) + strlen(version) + 4;
    if (line + hw.bytes > srv->max_header_bytes)
        return early_error(r, c, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
                           "request header fields too large");

    const char *q = strchr(r->uri, '?');
    size_t plen = q ? (size_t)(q - r->uri) : strlen(r->uri);
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    http_route_status st =
        http_router_match(r->table->router, method, host, r->uri, plen, &r->match);
    r->matched = true;
    switch (st) {
    case HTTP_ROUTE_FOUND:
        break;
    case HTTP_ROUTE_NOT_FOUND:
        return early_error(r, c, MHD_HTTP_NOT_FOUND, "no route for this path");
    case HTTP_ROUTE_BAD_METHOD:
        return early_error(r, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed for this path");
    case HTTP_ROUTE_BAD_PATH:
        return early_error(r, c, MHD_HTTP_BAD_REQUEST, "malformed request path");
    default:
        return early_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    r->fn = r->match.target;
    r->body_limit = r->fn->max_body_bytes;

    /* Body limit, upfront when the length is declared (413, RFC 9110). */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && *end == '\0' && n > r->body_limit) {
            char msg[120];
            snprintf(msg, sizeof(msg), "request body larger than %zu bytes", r->body_limit);
            return respond_error(r, c, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL, NULL);
        }
        if (errno == 0 && *end == '\0' && n > 0) {
            r->body = kiln_malloc((size_t)n);
            if (r->body == NULL)
                return respond_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory",
                                     NULL, NULL);
            r->body_cap = (size_t)n;
        }
    }
    r->stage = STAGE_BODY;
    return MHD_YES;
}

/* Append a piece of the body; false once over the limit (the rest is dropped). */
static bool add_body(http_req *r, const char *data, size_t n)
{
    if (r->too_large || n > r->body_limit - r->body_len) {
        r->too_large = true;
        return false;
    }
    if (r->body_len + n > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n)
            cap *= 2;
        if (cap > r->body_limit)
            cap = r->body_limit;
        uint8_t *b = kiln_realloc(r->body, cap);
        if (b == NULL) {
            r->too_large = true;
            return false;
        }
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    return true;
}

static enum MHD_Result finish(http_req *r, struct MHD_Connection *c, const char *url,
                              const char *version)
{
    if (r->too_large) {
        char msg[120];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", r->body_limit);
        return respond_error(r, c, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL, NULL);
    }
    const http_fn *f = r->fn;
    kiln_kv stack_kv[MAX_STACK_HEADERS];
    hdr_walk hw = {.kv = stack_kv, .cap = MAX_STACK_HEADERS};
    int nh = MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL);
    if (nh > MAX_STACK_HEADERS) {
        hw.kv = kiln_malloc((size_t)nh * sizeof(*hw.kv));
        if (hw.kv == NULL)
            return respond_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL,
                                 NULL);
        hw.cap = (size_t)nh;
    }
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &hw);

    char remote[INET6_ADDRSTRLEN] = "";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, remote,
                      sizeof(remote));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      remote, sizeof(remote));
    }
    const char *q = strchr(r->uri, '?');
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    kiln_request req = {
        .method = r->method,
        .url = r->uri,
        .path = url,
        .query = q ? q + 1 : "",
        .host = host ? host : "",
        .remote_addr = remote,
        .headers = hw.kv,
        .n_headers = hw.n,
        .params = r->match.params,
        .n_params = r->match.n_params,
        .body = r->body,
        .body_len = r->body_len,
    };
    kiln_response resp;
    kiln_response_init(&resp, f->fn.max_output_bytes);
    http_fn_invoke(f, &req, &resp);
    if (hw.kv != stack_kv)
        kiln_free(hw.kv);
    enum MHD_Result ok = respond(r, c, &resp, f->fn.name);
    kiln_response_fini(&resp);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    http_server *s = cls;
    http_req *r = *req_cls;
    if (r == NULL) {
        /* on_uri could not allocate; try once more, else drop the connection. */
        if ((r = req_new(s, url)) == NULL)
            return MHD_NO;
        *req_cls = r;
    }
    switch (r->stage) {
    case STAGE_NEW:
        return begin(r, c, method, version);
    case STAGE_BODY:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            if (add_body(r, upload_data, n))
                return MHD_YES;
            /* Over the limit without a declared length (chunked). MHD 0.9.75
             * cannot answer before the upload ends, so the rest is read and
             * dropped for a 413 at the end, up to as much again (at least
             * 1 MiB); a client sending more loses the connection instead. */
            r->discarded += n;
            if (r->discarded <= (r->body_limit > DISCARD_MIN ? r->body_limit : DISCARD_MIN))
                return MHD_YES;
            char uri[512];
            r->status = 413;
            if (!r->table->server.quiet)
                http_log("%s %s - %lluus - (request body over the limit: connection closed)",
                         r->method, log_target(r, uri, sizeof(uri)),
                         (unsigned long long)((now_ns() - r->t0) / 1000));
            r->stage = STAGE_DONE;
            return MHD_NO;
        }
        return finish(r, c, url, version);
    case STAGE_ERROR:
        if (*upload_data_size > 0) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        return respond_error(r, c, r->err_status, r->err_msg,
                             r->err_status == MHD_HTTP_METHOD_NOT_ALLOWED ? MHD_HTTP_HEADER_ALLOW
                                                                          : NULL,
                             r->match.allow);
    default:
        /* Answered early (404, 413, ...): discard whatever body follows. */
        *upload_data_size = 0;
        return MHD_YES;
    }
}

/* ---- start, reload, drain ----------------------------------------------------------------------- */

static int load_config(const http_options *o, cfg_config **cfg, kiln_err *err)
{
    return o->config_path ? cfg_load_file(o->config_path, cfg, err) : cfg_load_dir(o->dir, cfg, err);
}

static int build(const http_options *o, http_table **t, kiln_err *err)
{
    cfg_config *cfg;
    int rc = load_config(o, &cfg, err);
    if (rc == KILN_OK)
        rc = http_table_build(cfg, o, t, err);
    return rc;
}

/* Parse "ADDR:PORT", "[V6]:PORT", ":PORT" or "PORT" into a socket address. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, kiln_err *err)
{
    char host[256] = "";
    const char *port;
    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof(host))
            return kiln_err_set(err, KILN_ECONFIG, "listen address '%s': expected [V6ADDR]:PORT",
                                spec);
        memcpy(host, spec + 1, (size_t)(rb - spec - 1));
        host[rb - spec - 1] = '\0';
        port = rb + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL) {
            port = spec;
        } else {
            if ((size_t)(colon - spec) >= sizeof(host))
                return kiln_err_set(err, KILN_ECONFIG, "listen address '%s' is too long", spec);
            memcpy(host, spec, (size_t)(colon - spec));
            host[colon - spec] = '\0';
            port = colon + 1;
        }
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(port, &end, 10);
    if (port[0] == '\0' || *end != '\0' || errno != 0 || p > 65535)
        return kiln_err_set(err, KILN_ECONFIG, "listen address '%s': bad port '%s'", spec, port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (g != 0 || res == NULL)
        return kiln_err_set(err, KILN_ECONFIG,
                            "listen address '%s': '%s' is not a numeric IPv4 or IPv6 address "
                            "(%s)",
                            spec, host, gai_strerror(g));
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return KILN_OK;
}

static void reload(http_server *s)
{
    http_log("kiln serve: SIGHUP: reloading %s", s->opts->config_path ? s->opts->config_path : s->opts->dir);
    http_table *t;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    uint64_t t0 = now_ns();
    if (build(s->opts, &t, &err) != KILN_OK) {
        http_log("kiln serve: reload failed, still serving the previous configuration: %s",
                 err.msg);
        return;
    }
    const cfg_server *a = &s->started, *b = &t->server;
    if (strcmp(a->listen, b->listen) != 0 || a->threads != b->threads ||
        a->connection_timeout_s != b->connection_timeout_s ||
        a->max_connections != b->max_connections)
        http_log("kiln serve: warning: listen, threads, connection_timeout and max_connections "
                 "apply at start only; restart to change them");
    http_table_log_routes(t);
    swap_table(s, t);
    http_log("kiln serve: reloaded in %.0f ms", (double)(now_ns() - t0) / 1e6);
}

static void drain(http_server *s, const sigset_t *sigs)
{
    unsigned limit = s->started.drain_timeout_s;
    atomic_store(&s->draining, true);
    long n = atomic_load(&s->in_flight);
    http_log("kiln serve: stopping: no new connections; draining %ld request%s in flight "
             "(up to %u s)",
             n, n == 1 ? "" : "s", limit);
    MHD_socket ls = MHD_quiesce_daemon(s->daemon);
    /* The socket may only be closed after MHD_stop_daemon, but until then the
     * kernel would keep completing handshakes into the backlog, leaving new
     * clients hanging: shutting it down makes them see a refusal now. */
    if (ls != MHD_INVALID_SOCKET)
        shutdown(ls, SHUT_RDWR);
    uint64_t deadline = now_ns() + (uint64_t)limit * 1000000000u;
    struct timespec tick = {0, 10 * 1000000};
    while (atomic_load(&s->in_flight) > 0) {
        if (now_ns() >= deadline) {
            http_log("kiln serve: drain timeout: closing %ld unfinished request(s)",
                     atomic_load(&s->in_flight));
            break;
        }
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            http_log("kiln serve: second signal: stopping now");
            break;
        }
    }
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
}

int http_serve(const http_options *o, kiln_err *err)
{
    http_server s;
    memset(&s, 0, sizeof(s));
    s.opts = o;
    atomic_init(&s.loading, 0);
    atomic_init(&s.in_flight, 0);
    atomic_init(&s.draining, false);

    /* Signals are taken synchronously by the main thread; every thread
     * started from here (MHD's workers, the runtime's watchdog) inherits
     * the mask. A write to a closed connection must not kill the server. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    http_table *t;
    uint64_t t0 = now_ns();
    int rc = build(o, &t, err);
    if (rc != KILN_OK)
        return 1;
    s.started = t->server;
    struct sockaddr_storage ss;
    if (parse_listen(t->server.listen, &ss, err) != KILN_OK) {
        http_table_release(t);
        return 1;
    }
    atomic_init(&s.table, t);
    unsigned threads = t->server.threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    size_t pool = t->server.max_header_bytes + ((size_t)16 << 10);
    if (pool < ((size_t)32 << 10))
        pool = (size_t)32 << 10;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    s.daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, &s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, &s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
        t->server.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        MHD_OPTION_CONNECTION_LIMIT, t->server.max_connections, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, &s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s,
        MHD_OPTION_THREAD_STACK_SIZE, THREAD_STACK_SIZE, MHD_OPTION_END);
    if (s.daemon == NULL) {
        http_table_release(t);
        kiln_err_set(err, KILN_EIO,
                     "cannot listen on %s: the address is in use, not local, or needs "
                     "privileges; choose another with --listen",
                     s.started.listen);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s.daemon, MHD_DAEMON_INFO_BIND_PORT);
    s.port = di ? di->port : 0;
    http_table_log_routes(t);
    char host[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
    http_log("kiln serve: listening on http://%s%s%s:%u (%u worker thread%s, ready in %.0f ms)",
             ss.ss_family == AF_INET6 ? "[" : "", host, ss.ss_family == AF_INET6 ? "]" : "",
             s.port, threads, threads == 1 ? "" : "s", (double)(now_ns() - t0) / 1e6);

    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGHUP) {
            reload(&s);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    drain(&s, &sigs);
    http_table_release(atomic_load(&s.table));
    http_log("kiln serve: stopped");
    return 0;
}
