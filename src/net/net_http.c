/*
 * net_http.c - the outbound HTTP client: one libcurl easy handle per thread
 * (its connection cache is what makes repeated calls to one upstream cheap),
 * the address guard in libcurl's open-socket and pre-request callbacks,
 * redirects followed here hop by hop, and capped body and header sinks.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "loop/loop.h"
#include "net/net.h"

static _Atomic uint64_t stat_requests, stat_connections, stat_refused;

void net_stats_get(net_stats *out)
{
    out->requests = atomic_load(&stat_requests);
    out->connections = atomic_load(&stat_connections);
    out->refused_addresses = atomic_load(&stat_refused);
}

uint64_t net_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the per-thread handle ------------------------------------------------------ */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_FAILED_INIT;
static pthread_key_t handle_key;
static _Thread_local CURL *thread_easy;

static void handle_destroy(void *h)
{
    curl_easy_cleanup(h);
}

static pthread_key_t spare_key;
static void spares_destroy(void *unused);

static void global_init(void)
{
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (init_rc == CURLE_OK && (pthread_key_create(&handle_key, handle_destroy) != 0 ||
                                pthread_key_create(&spare_key, spares_destroy) != 0))
        init_rc = CURLE_FAILED_INIT;
}

/* This thread's handle, options reset; its connections, DNS and TLS session
 * caches are kept (curl_easy_reset leaves them alone). NULL on failure. */
static CURL *thread_handle(void)
{
    pthread_once(&init_once, global_init);
    if (init_rc != CURLE_OK)
        return NULL;
    if (thread_easy != NULL) {
        curl_easy_reset(thread_easy);
        return thread_easy;
    }
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    if (pthread_setspecific(handle_key, h) != 0) {
        curl_easy_cleanup(h);
        return NULL;
    }
    thread_easy = h;
    return h;
}

/*
 * Handles for requests made on a fiber (kiln serve): a fiber may suspend in
 * the middle of a request, and another request on the same thread must not
 * reuse its handle, so each takes one of this thread's spares. Their
 * transfers run on the worker's curl multi handle (src/loop), whose
 * connection cache they share. The list keeps as many handles as were in use
 * at once, up to NET_SPARE_HANDLES: with 16, a worker proxying 32 requests at
 * once (bench "pipeline", 64 connections on 2 workers) made and destroyed a
 * handle for about every other one (curl_easy_init + curl_easy_cleanup, a
 * few kilobytes each). A spare costs about 25 KB (curl's own state and its
 * 16 KB receive buffer).
 */
#define NET_SPARE_HANDLES 64
static _Thread_local CURL *spare[NET_SPARE_HANDLES];
static _Thread_local unsigned n_spare;

static CURL *handle_take(bool *own)
{
    *own = kiln_fiber_current() != NULL;
    if (!*own)
        return thread_handle();
    pthread_once(&init_once, global_init);
    if (init_rc != CURLE_OK)
        return NULL;
    if (n_spare > 0) {
        CURL *c = spare[--n_spare];
        curl_easy_reset(c);
        return c;
    }
    return curl_easy_init();
}

/* Thread exit (pthread key destructor): the spares go with the thread. */
static void spares_destroy(void *unused)
{
    (void)unused;
    while (n_spare > 0)
        curl_easy_cleanup(spare[--n_spare]);
}

static void handle_give(CURL *c, bool own)
{
    if (!own || c == NULL)
        return;
    if (n_spare < NET_SPARE_HANDLES) {
        if (n_spare == 0)
            pthread_setspecific(spare_key, (void *)1); /* arm the destructor */
        spare[n_spare++] = c;
    } else {
        curl_easy_cleanup(c);
    }
}

void net_thread_cleanup(void)
{
    spares_destroy(NULL);
    if (thread_easy == NULL)
        return;
    pthread_setspecific(handle_key, NULL);
    curl_easy_cleanup(thread_easy);
    thread_easy = NULL;
}

/* ---- one hop -------------------------------------------------------------------- */

typedef struct hop {
    const net_policy *p;
    const net_url *u;
    /* address guard */
    bool refused;
    char refused_ip[INET6_ADDRSTRLEN];
    unsigned refused_port;
    /* body */
    uint8_t *buf;
    size_t len, cap;
    uint64_t max;
    bool over, oom;
    /* headers of the current response */
    kiln_kv *hdrs;
    size_t n_hdrs, cap_hdrs, hdr_bytes;
    bool hdr_over;
} hop;

static void free_headers(kiln_kv *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kiln_free((void *)h[i].name);
        kiln_free((void *)h[i].value);
    }
}

static bool guard(hop *h, const char *ip, unsigned port)
{
    if (net_addr_allowed(h->p->allow, h->p->n_allow, h->u, ip, port))
        return true;
    h->refused = true;
    snprintf(h->refused_ip, sizeof(h->refused_ip), "%s", ip);
    h->refused_port = port;
    atomic_fetch_add(&stat_refused, 1);
    return false;
}

/* Every new connection: refuse a forbidden address before any packet leaves. */
static curl_socket_t on_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    hop *h = arg;
    char ip[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (a->family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)&a->addr;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
        port = ntohs(s->sin_port);
    } else if (a->family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)&a->addr;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
        port = ntohs(s->sin6_port);
    }
    if (purpose != CURLSOCKTYPE_IPCXN || !guard(h, ip, port))
        return CURL_SOCKET_BAD;
    int fd = socket(a->family, a->socktype, a->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    /* Kiln starts compilers as child processes: they must not inherit this. */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    atomic_fetch_add(&stat_connections, 1);
    return fd;
}

/* Every request, on a new or a reused connection: a connection opened for a
 * function that may reach an address must not serve one that may not. */
static int on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    (void)local_ip, (void)local_port;
    return guard(arg, primary_ip, (unsigned)primary_port) ? CURL_PREREQFUNC_OK
                                                          : CURL_PREREQFUNC_ABORT;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    hop *h = arg;
    size_t n = size * nmemb;
    if (n > h->max || h->len > h->max - n) {
        h->over = true;
        return 0;
    }
    if (h->len + n > h->cap) {
        size_t cap = h->cap ? h->cap : 4096;
        while (cap < h->len + n)
            cap *= 2;
        uint8_t *b = kiln_realloc(h->buf, cap);
        if (b == NULL) {
            h->oom = true;
            return 0;
        }
        h->buf = b;
        h->cap = cap;
    }
    memcpy(h->buf + h->len, data, n);
    h->len += n;
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    hop *h = arg;
    size_t n = size * nmemb;
    /* A new status line (after 100 Continue): only the last block counts. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        free_headers(h->hdrs, h->n_hdrs);
        h->n_hdrs = 0;
        h->hdr_bytes = 0;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (colon == NULL || colon == data || data[0] == ' ' || data[0] == '\t')
        return n; /* the blank line, or an obsolete folded line */
    h->hdr_bytes += n;
    if (h->n_hdrs == NET_MAX_HEADERS || h->hdr_bytes > NET_MAX_HEADER_BYTES) {
        h->hdr_over = true;
        return 0;
    }
    if (h->n_hdrs == h->cap_hdrs) {
        size_t cap = h->cap_hdrs ? h->cap_hdrs * 2 : 16;
        kiln_kv *nh = kiln_realloc(h->hdrs, cap * sizeof(*nh));
        if (nh == NULL) {
            h->oom = true;
            return 0;
        }
        h->hdrs = nh;
        h->cap_hdrs = cap;
    }
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *name = kiln_strndup(data, nlen), *value = kiln_strndup(v, (size_t)(end - v));
    if (name == NULL || value == NULL) {
        kiln_free(name);
        kiln_free(value);
        h->oom = true;
        return 0;
    }
    for (size_t i = 0; i < nlen; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            name[i] = (char)(name[i] + 32);
    h->hdrs[h->n_hdrs].name = name;
    h->hdrs[h->n_hdrs++].value = value;
    return n;
}

static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c) != NULL))
            return false;
    }
    return true;
}

/* The request headers as curl wants them, plus removals of curl's own
 * defaults the guest did not ask for. `drop_credentials`: leave out
 * Authorization, Cookie and Proxy-Authorization (a redirect to another
 * origin). NULL with *rc set on failure. */
static struct curl_slist *build_headers(const net_request *req, bool has_body,
                                        bool drop_credentials, int *rc, kiln_err *err)
{
    struct curl_slist *hl = NULL;
    bool has_ctype = false;
    *rc = KILN_OK;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *n = req->headers[i].name;
        const char *v = req->headers[i].value ? req->headers[i].value : "";
        if (!is_token(n)) {
            *rc = kiln_err_set(err, KILN_EINVAL, "request header name '%.100s' is not a token",
                               n);
            break;
        }
        if (strpbrk(v, "\r\n") != NULL) {
            *rc = kiln_err_set(err, KILN_EINVAL,
                               "request header '%.100s' has a line break in its value", n);
            break;
        }
        if (drop_credentials && (strcasecmp(n, "authorization") == 0 ||
                                 strcasecmp(n, "cookie") == 0 ||
                                 strcasecmp(n, "proxy-authorization") == 0))
            continue;
        if (strcasecmp(n, "content-type") == 0)
            has_ctype = true;
        size_t need = strlen(n) + strlen(v) + 3;
        char *line = kiln_malloc(need);
        if (line == NULL) {
            *rc = KILN_ENOMEM;
            break;
        }
        /* "Name;" is curl's syntax for a header with an empty value. */
        if (v[0] == '\0')
            snprintf(line, need, "%s;", n);
        else
            snprintf(line, need, "%s: %s", n, v);
        struct curl_slist *t = curl_slist_append(hl, line);
        kiln_free(line);
        if (t == NULL) {
            *rc = KILN_ENOMEM;
            break;
        }
        hl = t;
    }
    /* No implicit headers the guest did not ask for. */
    static const char *const off[] = {"Content-Type:", "Expect:"};
    for (size_t i = 0; *rc == KILN_OK && i < 2; i++) {
        if (i == 0 && (!has_body || has_ctype))
            continue;
        struct curl_slist *t = curl_slist_append(hl, off[i]);
        if (t == NULL)
            *rc = KILN_ENOMEM;
        else
            hl = t;
    }
    if (*rc == KILN_ENOMEM)
        kiln_err_set(err, KILN_ENOMEM, "out of memory building HTTP headers");
    if (*rc != KILN_OK) {
        curl_slist_free_all(hl);
        return NULL;
    }
    return hl;
}

typedef struct hop_result {
    CURLcode cc;
    long status;
    char *location; /* absolute redirect target, kiln_malloc'd, or NULL */
    bool reused;
    char errbuf[CURL_ERROR_SIZE];
} hop_result;

static void perform(CURL *c, hop *h, const char *url, const char *method, const uint8_t *body,
                    size_t body_len, struct curl_slist *hl, long long left_ms, hop_result *r)
{
    memset(r, 0, sizeof(*r));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* Never a proxy from the environment: the guard checks the peer. */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, h);
    curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, h);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max);
    long connect_ms = NET_CONNECT_TIMEOUT_MS;
    if (left_ms > 0) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left_ms);
        if (left_ms < connect_ms)
            connect_ms = (long)left_ms;
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 || body != NULL)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body_len ? (const char *)body : "");
    }
    atomic_fetch_add(&stat_requests, 1);
    int code = 0;
    int waited = kl_curl_perform(c, &code);
    if (waited == KL_OK)
        r->cc = (CURLcode)code;
    else if (waited == KL_CANCELED)
        r->cc = CURLE_ABORTED_BY_CALLBACK;
    else
        r->cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    long connects = 0;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    r->reused = r->cc == CURLE_OK && connects == 0;
    char *loc = NULL;
    if (r->cc == CURLE_OK && curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK &&
        loc != NULL)
        r->location = kiln_strdup(loc);
}

/* Turn a failed hop into a status and message. */
static int hop_error(const hop *h, const hop_result *r, const char *url, long long timeout_ms,
                     kiln_err *err)
{
    if (h->refused) {
        /* "10.0.0.1 is", or "db.internal resolves to 10.0.0.1," */
        char who[NET_HOST_MAX + INET6_ADDRSTRLEN + 32];
        if (net_ip_same(h->u->host, h->refused_ip))
            snprintf(who, sizeof(who), "%s is", h->refused_ip);
        else
            snprintf(who, sizeof(who), "%s resolves to %s,", h->u->host, h->refused_ip);
        bool v6 = strchr(h->refused_ip, ':') != NULL;
        return kiln_err_set(err, KILN_EPERM,
                            "HTTP request to %.300s refused: %s a %s address; such addresses "
                            "are reachable only when allowed_hosts names them, e.g. "
                            "\"%s://%s%s%s:%u\"",
                            url, who, net_addr_class_name(net_addr_classify(h->refused_ip)),
                            h->u->scheme, v6 ? "[" : "", h->refused_ip, v6 ? "]" : "",
                            h->refused_port);
    }
    if (h->over || r->cc == CURLE_FILESIZE_EXCEEDED)
        return kiln_err_set(err, KILN_ELIMIT,
                            "HTTP response exceeds the configured maximum number of bytes: %llu",
                            (unsigned long long)h->max);
    if (h->hdr_over)
        return kiln_err_set(err, KILN_ELIMIT,
                            "HTTP response from %.300s has more than %d headers or %zu bytes of "
                            "headers",
                            url, NET_MAX_HEADERS, NET_MAX_HEADER_BYTES);
    if (h->oom || r->cc == CURLE_OUT_OF_MEMORY)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory reading the HTTP response");
    if (r->cc == CURLE_OPERATION_TIMEDOUT)
        return kiln_err_set(err, KILN_ETIMEOUT, "HTTP request to %.300s timed out after %lld ms",
                            url, timeout_ms);
    return kiln_err_set(err, KILN_EIO, "HTTP request to %.300s failed: %s", url,
                        r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->cc));
}

int net_fetch(const net_policy *p, const net_request *req, net_response *resp, kiln_err *err)
{
    memset(resp, 0, sizeof(*resp));
    const char *method = req->method && req->method[0] ? req->method : "GET";
    if (!is_token(method))
        return kiln_err_set(err, KILN_EINVAL, "HTTP method '%.40s' is not a token", method);
    net_url first, u;
    int rc = net_url_parse(req->url, &first, err);
    if (rc != KILN_OK)
        return rc;
    if (!net_allowed(p->allow, p->n_allow, &first))
        return kiln_err_set(err, KILN_EPERM, "HTTP request to %.300s is not allowed", req->url);
    bool own_handle;
    CURL *c = handle_take(&own_handle);
    if (c == NULL)
        return kiln_err_set(err, KILN_EIO, "libcurl could not be initialised");

    uint64_t deadline = req->timeout_ms > 0 ? net_now_ns() + (uint64_t)req->timeout_ms * 1000000u
                                            : 0;
    unsigned max_redirects = p->max_redirects ? p->max_redirects : NET_DEFAULT_MAX_REDIRECTS;
    hop h;
    memset(&h, 0, sizeof(h));
    h.p = p;
    h.max = p->max_response_bytes ? p->max_response_bytes : NET_DEFAULT_MAX_RESPONSE;
    char *url = kiln_strdup(req->url);
    const uint8_t *body = req->body;
    size_t body_len = req->body_len;
    char cur_method[64];
    snprintf(cur_method, sizeof(cur_method), "%s", method);
    bool cross_origin = false;
    u = first;
    if (url == NULL)
        rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
    while (rc == KILN_OK) {
        long long left = -1;
        if (deadline != 0) {
            uint64_t now = net_now_ns();
            left = now >= deadline ? 0 : (long long)((deadline - now + 999999) / 1000000);
            if (left == 0) {
                rc = kiln_err_set(err, KILN_ETIMEOUT, "HTTP request to %.300s timed out after "
                                  "%lld ms", url, req->timeout_ms);
                break;
            }
        }
        struct curl_slist *hl = build_headers(req, body != NULL, cross_origin, &rc, err);
        if (rc != KILN_OK)
            break;
        h.u = &u;
        h.refused = false;
        h.len = 0;
        free_headers(h.hdrs, h.n_hdrs);
        h.n_hdrs = h.hdr_bytes = 0;
        hop_result r;
        perform(c, &h, url, cur_method, body, body_len, hl, left, &r);
        curl_slist_free_all(hl);
        if (r.cc != CURLE_OK) {
            rc = hop_error(&h, &r, url, req->timeout_ms, err);
            kiln_free(r.location);
            break;
        }
        bool redirect = r.status == 301 || r.status == 302 || r.status == 303 ||
                        r.status == 307 || r.status == 308;
        if (!req->follow_redirects || !redirect || r.location == NULL) {
            resp->status = r.status;
            resp->reused = r.reused;
            kiln_free(r.location);
            break;
        }
        /* Follow: the target must pass the allow-list like the first URL. */
        if (resp->redirects == max_redirects) {
            rc = kiln_err_set(err, KILN_ELIMIT, "HTTP request to %.300s: more than %u redirects",
                              req->url, max_redirects);
            kiln_free(r.location);
            break;
        }
        net_url next;
        if (net_url_parse(r.location, &next, err) != KILN_OK) {
            rc = kiln_err_set(err, KILN_EPERM, "HTTP request to %.300s redirects to %.300s, which "
                              "is not an http(s) URL", url, r.location);
            kiln_free(r.location);
            break;
        }
        if (!net_allowed(p->allow, p->n_allow, &next)) {
            rc = kiln_err_set(err, KILN_EPERM, "HTTP request to %.300s redirects to %.300s, "
                              "which is not allowed", url, r.location);
            kiln_free(r.location);
            break;
        }
        /* 303, and 301/302 after a POST, continue as GET without a body
         * (what browsers and curl do); 307/308 repeat the request. */
        if (strcmp(cur_method, "HEAD") != 0 &&
            (r.status == 303 || ((r.status == 301 || r.status == 302) &&
                                 strcmp(cur_method, "POST") == 0))) {
            snprintf(cur_method, sizeof(cur_method), "GET");
            body = NULL;
            body_len = 0;
        }
        if (strcmp(next.scheme, first.scheme) != 0 || strcmp(next.host, first.host) != 0 ||
            next.port != first.port)
            cross_origin = true;
        kiln_free(url);
        url = r.location;
        u = next;
        resp->redirects++;
    }
    if (rc == KILN_OK) {
        resp->body = h.buf;
        resp->body_len = h.len;
        resp->headers = h.hdrs;
        resp->n_headers = h.n_hdrs;
        if (resp->body_len == 0) {
            kiln_free(resp->body);
            resp->body = NULL;
        }
    } else {
        kiln_free(h.buf);
        free_headers(h.hdrs, h.n_hdrs);
        kiln_free(h.hdrs);
    }
    kiln_free(url);
    handle_give(c, own_handle);
    return rc;
}

void net_response_fini(net_response *resp)
{
    free_headers(resp->headers, resp->n_headers);
    kiln_free(resp->headers);
    kiln_free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

const char *net_response_header(const net_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->n_headers; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

/* ---- per-instance context -------------------------------------------------------- */

void net_ctx_init(net_ctx *c, const kiln_function *fn, uint32_t timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->policy.allow = fn->allowed_hosts;
    c->policy.n_allow = fn->n_allowed_hosts;
    c->policy.max_response_bytes = fn->max_http_response_bytes;
    if (timeout_ms > 0)
        c->deadline_ns = net_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

void net_ctx_reset(net_ctx *c, uint64_t deadline_ns)
{
    net_response_fini(&c->last);
    c->have_response = false;
    c->last_error[0] = '\0';
    c->deadline_ns = deadline_ns;
}

void net_ctx_fini(net_ctx *c)
{
    net_response_fini(&c->last);
    c->have_response = false;
}

long long net_ctx_remaining_ms(const net_ctx *c)
{
    if (c->deadline_ns == 0)
        return -1;
    uint64_t now = net_now_ns();
    return now >= c->deadline_ns ? 0 : (long long)((c->deadline_ns - now + 999999) / 1000000);
}
