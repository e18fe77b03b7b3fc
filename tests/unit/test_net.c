/*
 * test_net.c - src/net: globs, URL parsing, allow-list entries (scheme,
 * port, IPv6 literals), address classes for IPv4 and IPv6, the address
 * guard's rule, and net_fetch against an in-process loopback server
 * (redirects followed and refused, redirect limit, body and header caps,
 * header injection, timeout, connection reuse), also on fibers of an event
 * loop, as in kiln serve (src/loop's curl multi handle).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop/loop.h"
#include "net/net.h"

/* ---- globs and URLs ------------------------------------------------------------- */

static void test_glob(void **state)
{
    (void)state;
    assert_true(net_glob_match("127.*", "127.0.0.1"));
    assert_true(net_glob_match("127.0.0.1", "127.0.0.1"));
    assert_false(net_glob_match("*.example.com", "127.0.0.1"));
    assert_false(net_glob_match("*.example.com", "example.com"));
    assert_true(net_glob_match("*.example.com", "api.v2.example.com"));
    assert_true(net_glob_match("*", "anything.at.all"));
    assert_true(net_glob_match("ex?mple.com", "example.com"));
    assert_false(net_glob_match("ex?mple.com", "exmple.com"));
    assert_true(net_glob_match("host[0-9].lan", "host7.lan"));
    assert_false(net_glob_match("host[0-9].lan", "hostx.lan"));
    assert_true(net_glob_match("host[!0-9].lan", "hostx.lan"));
    assert_true(net_glob_match("[]x]", "]"));
    assert_true(net_glob_match("a*b*c", "aXXbYYc"));
    assert_false(net_glob_match("a*b*c", "aXXbYY"));
    /* Malformed globs compare literally. */
    assert_true(net_glob_match("[abc", "[abc"));
    assert_false(net_glob_match("[abc", "a"));
    assert_true(net_glob_match("", ""));
    assert_false(net_glob_match("", "x"));
}

static void test_url_parse(void **state)
{
    (void)state;
    net_url u;
    kiln_err err;
    assert_int_equal(net_url_parse("http://127.0.0.1:8080/x?y=1", &u, &err), KILN_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.scheme, "http");
    assert_int_equal(u.port, 8080);
    assert_int_equal(net_url_parse("HTTPS://Example.COM/", &u, &err), KILN_OK);
    assert_string_equal(u.host, "example.com");
    assert_string_equal(u.scheme, "https");
    assert_int_equal(u.port, 443);
    assert_int_equal(net_url_parse("http://[::1]/", &u, &err), KILN_OK);
    assert_string_equal(u.host, "[::1]");
    assert_int_equal(u.port, 80);
    assert_int_equal(net_url_parse("http://user:pw@h.lan/", &u, &err), KILN_OK);
    assert_string_equal(u.host, "h.lan");
    assert_int_equal(net_url_parse("ftp://h.lan/", &u, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "only http and https"));
    assert_int_equal(net_url_parse("file:///etc/passwd", &u, &err), KILN_EINVAL);
    assert_int_equal(net_url_parse("not a url", &u, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "not a url"));
}

/* ---- allow-list entries ----------------------------------------------------------- */

static bool admits(const char *entry, const char *url)
{
    net_url u;
    assert_int_equal(net_url_parse(url, &u, NULL), KILN_OK);
    return net_allow_entry_match(entry, &u);
}

static void test_entries(void **state)
{
    (void)state;
    /* Host globs: any scheme, any port. */
    assert_true(admits("api.example.com", "http://api.example.com/"));
    assert_true(admits("api.example.com", "https://api.example.com:8443/x"));
    assert_true(admits("*.example.com", "https://a.b.example.com/"));
    assert_false(admits("*.example.com", "https://example.com/"));
    assert_true(admits("API.Example.COM", "http://api.example.com/")); /* case-insensitive */
    /* Scheme. */
    assert_true(admits("https://api.example.com", "https://api.example.com/"));
    assert_false(admits("https://api.example.com", "http://api.example.com/"));
    assert_true(admits("https://api.example.com/", "https://api.example.com/p")); /* path ignored */
    /* Port, explicit or the scheme's default. */
    assert_true(admits("https://api.example.com:443", "https://api.example.com/"));
    assert_false(admits("https://api.example.com:443", "https://api.example.com:8443/"));
    assert_true(admits("api.example.com:8080", "http://api.example.com:8080/"));
    assert_false(admits("api.example.com:8080", "http://api.example.com/"));
    assert_true(admits("http://127.0.0.1:8081", "http://127.0.0.1:8081/x"));
    assert_false(admits("http://127.0.0.1:8081", "http://127.0.0.1:8082/x"));
    assert_false(admits("http://127.0.0.1:8081", "https://127.0.0.1:8081/x"));
    /* IPv6 literals, bracketed or not, compared as addresses. */
    assert_true(admits("[::1]", "http://[::1]:80/"));
    assert_true(admits("[::1]:8080", "http://[0:0::1]:8080/"));
    assert_false(admits("[::1]:8080", "http://[::1]:8081/"));
    assert_true(admits("::1", "http://[::1]/"));
    assert_true(admits("http://[fd00::5]:81", "http://[fd00::5]:81/"));
    /* An address literal is no glob: "127.0.0.1" does not admit a name. */
    assert_false(admits("127.0.0.1", "http://localhost/"));
    /* Entries that cannot be understood admit nothing. */
    assert_false(admits("ftp://api.example.com", "http://api.example.com/"));
    assert_false(admits("api.example.com:http", "http://api.example.com/"));
    assert_false(admits("api.example.com:99999", "http://api.example.com/"));
    assert_false(admits("", "http://api.example.com/"));

    net_url u;
    assert_int_equal(net_url_parse("http://127.0.0.1/", &u, NULL), KILN_OK);
    const char *const list[] = {"*.example.org", "127.*"};
    assert_true(net_allowed(list, 2, &u));
    assert_false(net_allowed(NULL, 0, &u)); /* nothing by default */
}

/* ---- addresses --------------------------------------------------------------------- */

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        const char *ip;
        net_addr_class c;
    } cases[] = {
        {"8.8.8.8", NET_ADDR_PUBLIC},
        {"93.184.216.34", NET_ADDR_PUBLIC},
        {"127.0.0.1", NET_ADDR_LOOPBACK},
        {"127.255.1.2", NET_ADDR_LOOPBACK},
        {"10.0.0.1", NET_ADDR_PRIVATE},
        {"172.16.0.1", NET_ADDR_PRIVATE},
        {"172.31.255.255", NET_ADDR_PRIVATE},
        {"172.32.0.1", NET_ADDR_PUBLIC},
        {"172.15.0.1", NET_ADDR_PUBLIC},
        {"192.168.1.1", NET_ADDR_PRIVATE},
        {"169.254.169.254", NET_ADDR_LINK_LOCAL}, /* cloud metadata */
        {"100.64.0.1", NET_ADDR_SHARED},
        {"100.127.255.255", NET_ADDR_SHARED},
        {"100.128.0.1", NET_ADDR_PUBLIC},
        {"0.0.0.0", NET_ADDR_UNSPECIFIED},
        {"0.1.2.3", NET_ADDR_UNSPECIFIED},
        {"224.0.0.1", NET_ADDR_MULTICAST},
        {"255.255.255.255", NET_ADDR_RESERVED},
        {"240.0.0.1", NET_ADDR_RESERVED},
        {"192.0.2.1", NET_ADDR_RESERVED},
        {"198.18.0.1", NET_ADDR_RESERVED},
        {"2606:4700::1111", NET_ADDR_PUBLIC},
        {"::", NET_ADDR_UNSPECIFIED},
        {"::1", NET_ADDR_LOOPBACK},
        {"[::1]", NET_ADDR_LOOPBACK},
        {"fe80::1", NET_ADDR_LINK_LOCAL},
        {"febf::1", NET_ADDR_LINK_LOCAL},
        {"fec0::1", NET_ADDR_PRIVATE},
        {"fc00::1", NET_ADDR_PRIVATE},
        {"fd12:3456::1", NET_ADDR_PRIVATE},
        {"ff02::1", NET_ADDR_MULTICAST},
        {"2001:db8::1", NET_ADDR_RESERVED},
        /* IPv6 forms that carry an IPv4 address. */
        {"::ffff:127.0.0.1", NET_ADDR_LOOPBACK},
        {"::ffff:10.1.2.3", NET_ADDR_PRIVATE},
        {"::ffff:169.254.169.254", NET_ADDR_LINK_LOCAL},
        {"::ffff:8.8.8.8", NET_ADDR_PUBLIC},
        {"::127.0.0.1", NET_ADDR_LOOPBACK},
        {"64:ff9b::192.168.0.1", NET_ADDR_PRIVATE},
        {"64:ff9b::8.8.8.8", NET_ADDR_PUBLIC},
        {"2002:7f00:1::", NET_ADDR_LOOPBACK}, /* 6to4 of 127.0.0.1 */
        {"2002:0808:0808::", NET_ADDR_PUBLIC},
        {"localhost", NET_ADDR_INVALID},
        {"1.2.3", NET_ADDR_INVALID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        net_addr_class c = net_addr_classify(cases[i].ip);
        if (c != cases[i].c)
            fail_msg("%s: class %s, expected %s", cases[i].ip, net_addr_class_name(c),
                     net_addr_class_name(cases[i].c));
    }
}

static void test_addr_allowed(void **state)
{
    (void)state;
    net_url u;
    assert_int_equal(net_url_parse("http://svc.example.com:8081/", &u, NULL), KILN_OK);
    const char *const glob[] = {"*", "127.*", "localhost", "10.0.0.0"};
    /* Public addresses need no naming; private ones need their literal. */
    assert_true(net_addr_allowed(glob, 4, &u, "93.184.216.34", 8081));
    assert_false(net_addr_allowed(glob, 4, &u, "127.0.0.1", 8081));
    assert_false(net_addr_allowed(glob, 4, &u, "10.0.0.1", 8081));
    assert_false(net_addr_allowed(NULL, 0, &u, "169.254.169.254", 80));
    const char *const named[] = {"svc.example.com", "127.0.0.1", "http://10.0.0.1:8081", "[::1]"};
    assert_true(net_addr_allowed(named, 4, &u, "127.0.0.1", 8081));
    assert_true(net_addr_allowed(named, 4, &u, "10.0.0.1", 8081));
    assert_false(net_addr_allowed(named, 4, &u, "10.0.0.1", 8082)); /* port named */
    assert_true(net_addr_allowed(named, 4, &u, "::1", 8081));
    /* A v4-mapped peer is not the v4 literal. */
    assert_false(net_addr_allowed(named, 4, &u, "::ffff:10.0.0.1", 8081));
    assert_false(net_addr_allowed(named, 4, &u, "192.168.0.1", 8081));
    net_url s;
    assert_int_equal(net_url_parse("https://svc.example.com:8081/", &s, NULL), KILN_OK);
    assert_false(net_addr_allowed(named, 4, &s, "10.0.0.1", 8081)); /* scheme named */
}

/* ---- net_fetch against a loopback server ------------------------------------------------ */

static int srv_fd;
static unsigned srv_port;
static int srv_hits;
static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;

static void reply(int fd, const char *status, const char *extra, const char *body)
{
    char buf[8192];
    int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s\r\n%s", status,
                     strlen(body), extra, body);
    ssize_t w = write(fd, buf, (size_t)n);
    (void)w;
}

/* One connection: requests until the client closes (keep-alive). */
static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[16384];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t r = read(fd, req + len, sizeof(req) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        req[len] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        if (end == NULL)
            continue;
        pthread_mutex_lock(&srv_lock);
        srv_hits++;
        pthread_mutex_unlock(&srv_lock);
        char path[256] = "";
        sscanf(req, "%*s %255s", path);
        char loc[512];
        if (strcmp(path, "/ok") == 0) {
            reply(fd, "200 OK", "X-Test: one\r\nX-Test: two\r\n", "ok");
        } else if (strcmp(path, "/self") == 0) {
            reply(fd, "302 Found", "Location: /ok\r\n", "");
        } else if (strcmp(path, "/loop") == 0) {
            reply(fd, "302 Found", "Location: /loop\r\n", "");
        } else if (strcmp(path, "/out") == 0) {
            reply(fd, "302 Found", "Location: http://evil.example.net/x\r\n", "");
        } else if (strcmp(path, "/scheme") == 0) {
            reply(fd, "302 Found", "Location: file:///etc/passwd\r\n", "");
        } else if (strcmp(path, "/tolocal") == 0) {
            /* Admitted by a name, but the address is loopback on a port the
             * allow-list does not name. */
            snprintf(loc, sizeof(loc), "Location: http://localhost:%u/ok\r\n", srv_port + 1);
            reply(fd, "307 Temporary Redirect", loc, "");
        } else if (strcmp(path, "/big") == 0) {
            static char big[4001];
            memset(big, 'x', sizeof(big) - 1);
            reply(fd, "200 OK", "", big);
        } else if (strcmp(path, "/headers") == 0) {
            static char many[NET_MAX_HEADERS * 12 + 64];
            size_t o = 0;
            for (int i = 0; i <= NET_MAX_HEADERS; i++)
                o += (size_t)snprintf(many + o, sizeof(many) - o, "X-H%d: v\r\n", i);
            reply(fd, "200 OK", many, "");
        } else if (strcmp(path, "/bye") == 0) {
            /* Keep-alive as far as the client knows; closed once idle. */
            reply(fd, "200 OK", "", "bye");
            usleep(30000);
            break;
        } else if (strcmp(path, "/slow") == 0) {
            sleep(2);
            reply(fd, "200 OK", "", "late");
        } else {
            reply(fd, "404 Not Found", "", "no");
        }
        len = 0;
    }
    close(fd);
    return NULL;
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(srv_fd, NULL, NULL);
        if (c < 0)
            return NULL;
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)c);
        pthread_detach(t);
    }
}

static int start_server(void **state)
{
    (void)state;
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (bind(srv_fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(srv_fd, 16) != 0 ||
        getsockname(srv_fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    srv_port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, serve, NULL);
    pthread_detach(t);
    return 0;
}

static char url_buf[256];
static const char *url(const char *path)
{
    snprintf(url_buf, sizeof(url_buf), "http://127.0.0.1:%u%s", srv_port, path);
    return url_buf;
}

static int fetch(const char *const *allow, size_t n, const char *path, bool follow,
                 uint64_t max, long long timeout_ms, net_response *r, kiln_err *err)
{
    net_policy p;
    memset(&p, 0, sizeof(p));
    p.allow = allow;
    p.n_allow = n;
    p.max_response_bytes = max;
    p.max_redirects = 3;
    net_request q;
    memset(&q, 0, sizeof(q));
    q.url = path[0] == '/' ? url(path) : path;
    q.follow_redirects = follow;
    q.timeout_ms = timeout_ms;
    return net_fetch(&p, &q, r, err);
}

static char entry_buf[64];
static const char *const *loopback_allowed(void)
{
    static const char *list[2];
    snprintf(entry_buf, sizeof(entry_buf), "http://127.0.0.1:%u", srv_port);
    list[0] = entry_buf;
    list[1] = "localhost";
    return list;
}

static void test_fetch_guard(void **state)
{
    (void)state;
    net_response r;
    kiln_err err;
    /* Not in the list at all. */
    assert_int_equal(fetch(NULL, 0, "/ok", false, 0, 5000, &r, &err), KILN_EPERM);
    assert_non_null(strstr(err.msg, "is not allowed"));
    net_response_fini(&r);
    /* Admitted by a glob, refused by the address guard before connecting. */
    net_stats before, after;
    net_stats_get(&before);
    const char *const glob[] = {"127.*"};
    assert_int_equal(fetch(glob, 1, "/ok", false, 0, 5000, &r, &err), KILN_EPERM);
    assert_non_null(strstr(err.msg, "a loopback address"));
    net_response_fini(&r);
    net_stats_get(&after);
    assert_true(after.refused_addresses > before.refused_addresses);
    assert_int_equal(after.connections, before.connections);
    /* Named by address: allowed. */
    assert_int_equal(fetch(loopback_allowed(), 1, "/ok", false, 0, 5000, &r, &err), KILN_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 2);
    assert_memory_equal(r.body, "ok", 2);
    assert_string_equal(net_response_header(&r, "X-TEST"), "one");
    net_response_fini(&r);
}

static void test_fetch_redirects(void **state)
{
    (void)state;
    const char *const *allow = loopback_allowed();
    net_response r;
    kiln_err err;
    /* Not followed unless asked. */
    assert_int_equal(fetch(allow, 2, "/self", false, 0, 5000, &r, &err), KILN_OK);
    assert_int_equal(r.status, 302);
    assert_string_equal(net_response_header(&r, "location"), "/ok");
    net_response_fini(&r);
    assert_int_equal(fetch(allow, 2, "/self", true, 0, 5000, &r, &err), KILN_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.redirects, 1);
    net_response_fini(&r);
    /* A target outside the allow-list. */
    assert_int_equal(fetch(allow, 2, "/out", true, 0, 5000, &r, &err), KILN_EPERM);
    assert_non_null(
        strstr(err.msg, "redirects to http://evil.example.net/x, which is not allowed"));
    net_response_fini(&r);
    /* A non-http target. */
    assert_int_equal(fetch(allow, 2, "/scheme", true, 0, 5000, &r, &err), KILN_EPERM);
    net_response_fini(&r);
    /* A target admitted by name whose address the guard refuses. */
    assert_int_equal(fetch(allow, 2, "/tolocal", true, 0, 5000, &r, &err), KILN_EPERM);
    assert_non_null(strstr(err.msg, "loopback"));
    net_response_fini(&r);
    /* The redirect limit. */
    assert_int_equal(fetch(allow, 2, "/loop", true, 0, 5000, &r, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "more than 3 redirects"));
    net_response_fini(&r);
}

static void test_fetch_limits(void **state)
{
    (void)state;
    const char *const *allow = loopback_allowed();
    net_response r;
    kiln_err err;
    assert_int_equal(fetch(allow, 1, "/big", false, 1000, 5000, &r, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "maximum number of bytes: 1000"));
    net_response_fini(&r);
    assert_int_equal(fetch(allow, 1, "/big", false, 4000, 5000, &r, &err), KILN_OK);
    assert_int_equal(r.body_len, 4000);
    net_response_fini(&r);
    assert_int_equal(fetch(allow, 1, "/headers", false, 0, 5000, &r, &err), KILN_ELIMIT);
    net_response_fini(&r);
    /* Header injection is refused before anything is sent. */
    net_policy p;
    memset(&p, 0, sizeof(p));
    p.allow = allow;
    p.n_allow = 1;
    kiln_kv h = {"X-Evil", "a\r\nHost: other"};
    net_request q;
    memset(&q, 0, sizeof(q));
    q.url = url("/ok");
    q.headers = &h;
    q.n_headers = 1;
    assert_int_equal(net_fetch(&p, &q, &r, &err), KILN_EINVAL);
    net_response_fini(&r);
    kiln_kv bad = {"Bad Name", "x"};
    q.headers = &bad;
    assert_int_equal(net_fetch(&p, &q, &r, &err), KILN_EINVAL);
    net_response_fini(&r);
    q.headers = NULL;
    q.n_headers = 0;
    q.method = "GET /x HTTP/1.1\r\n";
    assert_int_equal(net_fetch(&p, &q, &r, &err), KILN_EINVAL);
    net_response_fini(&r);
    /* The timeout covers the whole exchange. */
    uint64_t t0 = net_now_ns();
    assert_int_equal(fetch(allow, 1, "/slow", false, 0, 300, &r, &err), KILN_ETIMEOUT);
    net_response_fini(&r);
    assert_true(net_now_ns() - t0 < 1500000000u);
}

static void test_fetch_reuse(void **state)
{
    (void)state;
    const char *const *allow = loopback_allowed();
    net_response r;
    kiln_err err;
    net_thread_cleanup(); /* start from a fresh handle */
    net_stats before, after;
    net_stats_get(&before);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(fetch(allow, 1, "/ok", false, 0, 5000, &r, &err), KILN_OK);
        assert_int_equal(r.reused, i > 0);
        net_response_fini(&r);
    }
    net_stats_get(&after);
    assert_int_equal(after.connections - before.connections, 1);
    assert_int_equal(after.requests - before.requests, 20);
    /* A connection opened under one policy is not handed to a policy that
     * may not reach its address (the pre-request check). */
    const char *const glob[] = {"127.0.0.1:*", "127.*"};
    net_stats_get(&before);
    assert_int_equal(fetch(glob, 2, "/ok", false, 0, 5000, &r, &err), KILN_EPERM);
    net_response_fini(&r);
    net_stats_get(&after);
    assert_int_equal(after.connections, before.connections);
    assert_int_equal(after.refused_addresses - before.refused_addresses, 1);
    net_thread_cleanup();
}

/* ---- on an event loop (kiln serve) ----------------------------------------------- */

typedef struct loop_fetch {
    kl_task task;
    const char *path;
    int rc;
    bool reused, done;
} loop_fetch;

static int loop_fetch_run(void *arg)
{
    loop_fetch *f = arg;
    net_response r;
    kiln_err err;
    f->rc = fetch(loopback_allowed(), 1, f->path, false, 0, 5000, &r, &err);
    f->reused = r.reused;
    net_response_fini(&r);
    return 0;
}

static void loop_fetch_done(kl_task *t, int result)
{
    (void)result;
    ((loop_fetch *)t->arg)->done = true;
}

/* Run `n` fetches of `path` at once, each on its own task, until all are done. */
static void loop_round(kl_loop *loop, loop_fetch *f, size_t n, const char *path)
{
    static const kiln_limits lim;
    kiln_err err;
    for (size_t i = 0; i < n; i++) {
        f[i] = (loop_fetch){.path = path, .rc = -1};
        f[i].task.done = loop_fetch_done;
        f[i].task.arg = &f[i];
        assert_int_equal(kl_task_start(loop, &f[i].task, &lim, loop_fetch_run, &f[i], &err),
                         KILN_OK);
    }
    for (int spins = 0; spins < 1000; spins++) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += !f[i].done;
        if (left == 0)
            break;
        kl_run_once(loop, 10);
    }
    for (size_t i = 0; i < n; i++) {
        assert_true(f[i].done);
        assert_int_equal(f[i].rc, KILN_OK);
    }
}

/* Concurrent transfers on a loop keep their connections: bursts of 16 at
 * once open 16 connections once, and later bursts reuse them all. curl's
 * default cache size (4 x the handles added at that moment) closed some
 * whenever a burst wound down, since Kiln adds a handle per transfer. */
static void test_loop_reuse(void **state)
{
    (void)state;
    kl_loop *loop;
    kiln_err err;
    assert_int_equal(kl_loop_new(&loop, &err), KILN_OK);
    kl_bind(loop);
    enum { N = 16 };
    loop_fetch f[N];
    net_stats before, after;
    net_stats_get(&before);
    loop_round(loop, f, N, "/ok");
    net_stats_get(&after);
    assert_int_equal(after.connections - before.connections, N);
    for (int round = 0; round < 5; round++) {
        loop_round(loop, f, N, "/ok");
        for (size_t i = 0; i < N; i++)
            assert_true(f[i].reused);
    }
    net_stats_get(&after);
    assert_int_equal(after.connections - before.connections, N);
    assert_int_equal(after.requests - before.requests, 6 * N);
    kl_bind(NULL);
    kl_loop_free(loop);
}

/* A cached connection the server closes while idle: its socket stays in the
 * loop's epoll set after the transfer (no delete and re-add per request), so
 * the close is an event nobody asked for. The loop drops the registration on
 * it instead of waking up for it again and again (level-triggered), and the
 * next request opens a new connection. */
static void test_loop_idle_close(void **state)
{
    (void)state;
    kl_loop *loop;
    kiln_err err;
    assert_int_equal(kl_loop_new(&loop, &err), KILN_OK);
    kl_bind(loop);
    loop_fetch f[1];
    net_stats before, after;
    net_stats_get(&before);
    loop_round(loop, f, 1, "/bye");
    /* The server closes 30 ms after answering: 200 ms of loop, 20 ms a turn. */
    int woken = 0;
    for (int i = 0; i < 10; i++)
        woken += kl_run_once(loop, 20);
    assert_true(woken <= 2);
    loop_round(loop, f, 1, "/ok");
    assert_false(f[0].reused);
    loop_round(loop, f, 1, "/ok");
    assert_true(f[0].reused);
    net_stats_get(&after);
    assert_int_equal(after.connections - before.connections, 2);
    kl_bind(NULL);
    kl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_addr_allowed),
        cmocka_unit_test(test_fetch_guard),
        cmocka_unit_test(test_fetch_redirects),
        cmocka_unit_test(test_fetch_limits),
        cmocka_unit_test(test_fetch_reuse),
        cmocka_unit_test(test_loop_reuse),
        cmocka_unit_test(test_loop_idle_close),
    };
    return cmocka_run_group_tests(tests, start_server, NULL);
}
