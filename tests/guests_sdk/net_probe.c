/*
 * net_probe.c - a C SDK guest for test_net.sh: performs the outbound
 * request described by its query and reports what happened, one
 * "key=value" line each, always with status 200 (errors are reported, not
 * raised). Query: url, n (repeat, default 1), timeout (ms), follow (1),
 * close (1: send "Connection: close", so no connection is kept), method,
 * body, header (one "Name: value" line).
 * Output: result=<status or error name>, error=<host's reason>, len=<body
 * length>, ok=<successful calls>, elapsed_us=<all calls>, body=<first 300
 * bytes>, x-upstream=<that response header>.
 */
#include <time.h>

#include "kiln.h"

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int qint(const char *name, int dflt)
{
    char *v = kiln_query_param(name);
    int r = v ? atoi(v) : dflt;
    free(v);
    return r;
}

int main(void)
{
    char *url = kiln_query_param("url");
    char *method = kiln_query_param("method");
    char *body = kiln_query_param("body");
    char *header = kiln_query_param("header");
    int n = qint("n", 1), timeout = qint("timeout", 0);
    unsigned flags = qint("follow", 0) ? KILN_HTTP_FOLLOW : 0;
    char headers[512];
    snprintf(headers, sizeof(headers), "%s%s%s", qint("close", 0) ? "Connection: close" : "",
             qint("close", 0) && header ? "\n" : "", header ? header : "");
    kiln_set_header("Content-Type", "text/plain");
    if (url == NULL) {
        kiln_puts("result=no url\n");
        return 0;
    }
    int ok = 0, last = 0;
    kiln_http_response r;
    memset(&r, 0, sizeof(r));
    long long t0 = now_us();
    for (int i = 0; i < n; i++) {
        kiln_http_response_free(&r);
        last = kiln_http(method ? method : "GET", url, headers, body, body ? strlen(body) : 0,
                         (unsigned)timeout, flags, &r);
        if (last < 0)
            break;
        ok++;
    }
    long long t1 = now_us();
    if (last < 0) {
        kiln_printf("result=%s\nerror=%s\n", kiln_strerror(last), kiln_http_error());
    } else {
        char *xu = kiln_http_header("X-Upstream");
        kiln_printf("result=%d\nlen=%zu\n", last, r.body_len);
        if (xu != NULL)
            kiln_printf("x-upstream=%s\n", xu);
        free(xu);
    }
    kiln_printf("ok=%d\nelapsed_us=%lld\n", ok, t1 - t0);
    if (r.body != NULL)
        kiln_printf("body=%.300s\n", r.body);
    kiln_http_response_free(&r);
    free(url);
    free(method);
    free(body);
    free(header);
    return 0;
}
