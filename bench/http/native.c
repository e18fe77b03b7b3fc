/*
 * native.c - the native peer of bench/http/run.sh: the greet function written
 * in C on the same HTTP library as `kiln serve`, with the same threading mode
 * (src/http/server.c), so the difference to Kiln is what Kiln adds per request.
 *
 *   gcc -O2 native.c -o native -lmicrohttpd && ./native [PORT] [THREADS]
 *
 * Any POST answers "Hello, <body>!" (application/octet-stream, like Kiln's
 * Extism ABI); other methods get 405. PORT 0 or absent: any free port;
 * THREADS 0 or absent: one per online CPU. Prints
 * "listening on http://127.0.0.1:PORT" on stdout once ready; SIGTERM or
 * SIGINT stops it.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BODY ((size_t)1 << 20)

/* The body of one request, gathered across on_request calls. */
typedef struct body {
    size_t len, cap;
    char *data;
} body;

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    body *b = *req_cls;
    *req_cls = NULL;
    if (b != NULL) {
        free(b->data);
        free(b);
    }
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, char *text, size_t n)
{
    struct MHD_Response *r;
    if (n > 0)
        r = MHD_create_response_from_buffer_with_free_callback(n, text, free);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    body *b = *req_cls;
    if (b == NULL) {
        /* First call: headers only. Answer 405 once the request is complete. */
        b = calloc(1, sizeof(*b));
        if (b == NULL)
            return MHD_NO;
        *req_cls = b;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (n > MAX_BODY - b->len)
            return MHD_NO;
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 256;
            while (cap < b->len + n)
                cap *= 2;
            char *d = realloc(b->data, cap);
            if (d == NULL)
                return MHD_NO;
            b->data = d;
            b->cap = cap;
        }
        memcpy(b->data + b->len, upload_data, n);
        b->len += n;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, 0);
    static const char pre[] = "Hello, ", post[] = "!";
    size_t n = sizeof(pre) - 1 + b->len + sizeof(post) - 1;
    char *out = malloc(n);
    if (out == NULL)
        return MHD_NO;
    memcpy(out, pre, sizeof(pre) - 1);
    if (b->len > 0)
        memcpy(out + sizeof(pre) - 1, b->data, b->len);
    memcpy(out + sizeof(pre) - 1 + b->len, post, sizeof(post) - 1);
    return answer(c, MHD_HTTP_OK, out, n);
}

int main(int argc, char **argv)
{
    unsigned port = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Loopback only, like the configuration run.sh gives Kiln. */
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Kiln's flags and limits (src/http/server.c with the default
     * configuration): 16 KiB headers + 16 KiB = 32 KiB per connection,
     * 30 s timeout, 1024 connections, 8 MiB worker stacks. */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)32 << 10, MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_THREAD_STACK_SIZE, (size_t)8 << 20, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "native: cannot start the daemon on port %u\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on http://127.0.0.1:%u (%u worker threads)\n", di ? di->port : 0,
           threads);
    fflush(stdout);
    int sig;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    return 0;
}
