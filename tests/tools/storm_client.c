/*
 * storm_client.c - the load client of the fault storm (tests/stress/storm.sh):
 * drives a running `kiln serve` over CONNS keep-alive connections with a
 * seeded random mix of normal and hostile requests, checks EVERY answer
 * (status and body; normal answers carry the request id back), and samples
 * the server's RSS and open descriptors after warm-up, periodically and at
 * the end. The routes are those of the kiln.yaml storm.sh writes.
 *
 * Usage: storm_client HOST:PORT SERVER_PID N SEED CONNS
 * Prints one "kind NAME sent=.. ok=.. bad=.." line per kind, "sample ..."
 * lines, the first wrong answers ("WRONG ..."), then key=value results:
 * total ok wrong hangs conn_errors rss_start_kib rss_end_kib rss_max_kib
 * fds_start fds_end fds_max alive final_answer wall_s rps. Exit 0 when every
 * answer was right; the bounds on RSS and fds are storm.sh's to check.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the mix ------------------------------------------------------------------------------ */

enum check {
    EXACT,    /* status and the whole body, "%lu" = the request id */
    CONTAINS, /* status, and the body holds both needles */
    DEEP,     /* 200 and EXACT body ("%u" depth, "%lu" id), or 500 "call stack exhausted" */
    KVDEEP,   /* 200 and a body starting "deep=D hits=", or 500 "call stack exhausted" */
};

struct kind {
    const char *name;
    int weight; /* per mille */
    const char *path; /* "%lu" = id; DEEP: "%u" depth then "%lu" id */
    enum check check;
    int status;
    const char *a, *b; /* EXACT/DEEP: the body; CONTAINS: two needles */
};

#define TRAP(t) "\"trap\":\"" t
static struct kind kinds[] = {
    {"normal", 341, "/counter?id=%lu", EXACT, 200, "id=%lu count=1 heap=clean\n", NULL},
    {"echo", 100, "/hostile?k=echo&id=%lu", EXACT, 200, "echo id=%lu\n", NULL},
    {"unreachable", 30, "/hostile?k=unreachable&id=%lu", CONTAINS, 500,
     TRAP("unreachable executed\""), "\"function\":\"hostile\""},
    {"div0", 30, "/hostile?k=div0&id=%lu", CONTAINS, 500, TRAP("integer divide by zero\""),
     "\"function\":\"hostile\""},
    {"int_overflow", 30, "/hostile?k=int_overflow&id=%lu", CONTAINS, 500,
     TRAP("integer overflow\""), "\"function\":\"hostile\""},
    {"invalid_conversion", 30, "/hostile?k=invalid_conversion&id=%lu", CONTAINS, 500,
     TRAP("invalid conversion to integer\""), "\"function\":\"hostile\""},
    {"oob", 30, "/hostile?k=oob&id=%lu", CONTAINS, 500, TRAP("out of bounds memory access\""),
     "\"function\":\"hostile\""},
    {"indirect_mismatch", 20, "/hostile?k=indirect&id=%lu", CONTAINS, 500,
     TRAP("indirect call type mismatch"), "\"function\":\"hostile\""},
    {"indirect_null", 15, "/hostile?k=indirect_null&id=%lu", CONTAINS, 500,
     TRAP("indirect call type mismatch"), "\"function\":\"hostile\""},
    {"indirect_range", 15, "/hostile?k=indirect_range&id=%lu", CONTAINS, 500,
     TRAP("indirect call type mismatch"), "\"function\":\"hostile\""},
    {"exception", 30, "/exception?id=%lu", CONTAINS, 500, TRAP("uncaught exception\""),
     "\"function\":\"exception\""},
    {"stack_guest", 40, "/hostile?k=stack&id=%lu", CONTAINS, 500, TRAP("call stack exhausted\""),
     "recursed deeper than its stack limit"},
    {"oom", 30, "/hostile?k=oom&id=%lu", CONTAINS, 500, TRAP("out of memory\""),
     "reached its memory limit"},
    {"grow_refused", 20, "/hostile?k=grow&id=%lu", EXACT, 200, "grow id=%lu refused after some\n",
     NULL},
    {"tables", 20, "/tables?id=%lu", CONTAINS, 500, TRAP("out of memory\""), "max_table_elems"},
    {"timeout", 4, "/spin?k=loop&id=%lu", CONTAINS, 504, TRAP("time limit exceeded\""),
     "\"function\":\"spin\""},
    {"deep_kv", 40, "/deep?op=kv&depth=%u&id=%lu", DEEP, 200,
     "deep op=kv depth=%u id=%lu rc=0\n", NULL},
    {"deep_write", 30, "/deep?op=write&depth=%u&id=%lu", DEEP, 200,
     "deep op=write depth=%u id=%lu rc=0\n", NULL},
    {"deep_log", 20, "/deep?op=log&depth=%u&id=%lu", DEEP, 200,
     "deep op=log depth=%u id=%lu rc=0\n", NULL},
    {"deep_kv_sqlite", 10, "/kvdeep?depth=%u&id=%lu", KVDEEP, 200, NULL, NULL},
    {"kv_denied", 30, "/flood?op=fill&ns=secret&n=1&size=10&id=%lu", EXACT, 200,
     "stored=0 rc=-3\n", NULL},
    {"log_flood", 20, "/flood?op=log&n=1000&size=300&id=%lu", EXACT, 200, "logged=1000 rc=0\n",
     NULL},
    {"big_output", 20, "/hostile?k=bigout&id=%lu", CONTAINS, 500,
     "output exceeds max_output_bytes", "\"function\":\"hostile\""},
    {"exit_code", 20, "/hostile?k=exit&id=%lu", CONTAINS, 500, "\"exit_code\":7",
     "\"function\":\"hostile\""},
    {"bad_cgi_output", 20, "/hostile?k=badout&id=%lu", CONTAINS, 502, "is not a header",
     "\"function\":\"hostile\""},
    {"no_route", 5, "/nosuch/%lu", CONTAINS, 404, "", ""},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))
static struct {
    unsigned long sent, ok, bad;
} counts[NKINDS];
#define COUNT(k) counts[(k) - kinds]
/* Deep requests pick a depth in [0, DEEP_MAX]; the edge of a 64 KiB stack is
 * a thousand-odd levels down. Up to DEEP_SURE levels must always succeed. */
#define DEEP_MAX 2000
#define DEEP_SURE 200
#define HANG_MS 30000
#define MAX_RESPONSE (32u << 20)

static uint64_t rng;

static uint64_t rnd(void)
{
    /* xorshift64*: seeded, so a failing mix can be replayed. */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

/* ---- connections -------------------------------------------------------------------------- */

struct conn {
    int fd;
    char req[512];
    size_t req_len, req_off;
    char *in;
    size_t in_len, in_cap;
    struct kind *k;
    unsigned long id;
    unsigned depth;
    double t0;
    int busy;
};

static struct sockaddr_in addr;
static int ep;
static unsigned long n_total, n_issued, n_done, n_ok, n_wrong, n_hangs, n_conn_errors, next_id;
static int printed;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int connect_to(int nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Control bytes (the CRLFs of the answer, the newline ending a body) as '|'. */
static void flatten(char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++)
        if ((unsigned char)s[i] < 0x20)
            s[i] = '|';
}

static void report(struct conn *c, const char *fmt, ...)
{
    if (printed++ >= 20)
        return;
    char why[256], got[301];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    flatten(why, sizeof(why));
    size_t n = c->in_len < 300 ? c->in_len : 300;
    memcpy(got, c->in ? c->in : "", c->in ? n : 1);
    got[c->in ? n : 0] = '\0';
    flatten(got, n);
    printf("WRONG kind=%s request=\"%.*s\" %s; got %zu bytes: %s\n", c->k->name,
           (int)(strchr(c->req, '\r') - c->req), c->req, why, c->in_len, got);
}

/* 1 if body (len bytes, not NUL-terminated) holds needle. */
static int has(const char *body, size_t len, const char *needle)
{
    return memmem(body, len, needle, strlen(needle)) != NULL;
}

/* Checks one complete answer; returns 1 if it is right. */
static int check(struct conn *c, int status, const char *body, size_t len)
{
    struct kind *k = c->k;
    char want[256];
    switch (k->check) {
    case EXACT:
        snprintf(want, sizeof(want), k->a, c->id);
        if (status == k->status && len == strlen(want) && memcmp(body, want, len) == 0)
            return 1;
        report(c, "expected %d [%s]", k->status, want);
        return 0;
    case CONTAINS:
        if (status == k->status && has(body, len, k->a) && has(body, len, k->b))
            return 1;
        /* A function that keeps hitting its time limit meets the server's
         * time-limit breaker: 503 naming the limit, by design. */
        if (status == 503 && k->status == 504 &&
            has(body, len, "recently ran into its time limit") && has(body, len, k->b))
            return 1;
        report(c, "expected %d with [%s] and [%s]", k->status, k->a, k->b);
        return 0;
    case DEEP:
    case KVDEEP:
        if (k->check == DEEP)
            snprintf(want, sizeof(want), k->a, c->depth, c->id);
        else
            snprintf(want, sizeof(want), "deep=%u hits=", c->depth);
        if (status == 200 && (k->check == DEEP ? len == strlen(want) && !memcmp(body, want, len)
                                               : len > strlen(want) && !memcmp(body, want,
                                                                                strlen(want))))
            return 1;
        if (status == 500 && c->depth > DEEP_SURE && has(body, len, TRAP("call stack exhausted")))
            return 1;
        report(c, "expected 200 [%s]%s", want,
               c->depth > DEEP_SURE ? " or 500 call stack exhausted" : "");
        return 0;
    }
    return 0;
}

static void start_request(struct conn *c)
{
    uint64_t r = rnd() % 1000;
    int acc = 0;
    struct kind *k = &kinds[0];
    for (size_t i = 0; i < NKINDS; i++) {
        acc += kinds[i].weight;
        if ((int)r < acc) {
            k = &kinds[i];
            break;
        }
    }
    char path[256];
    c->k = k;
    c->id = ++next_id;
    c->depth = (unsigned)(rnd() % (DEEP_MAX + 1));
    if (k->check == DEEP || k->check == KVDEEP)
        snprintf(path, sizeof(path), k->path, c->depth, c->id);
    else
        snprintf(path, sizeof(path), k->path, c->id);
    c->req_len = (size_t)snprintf(c->req, sizeof(c->req),
                                  "GET %s HTTP/1.1\r\nHost: storm\r\n\r\n", path);
    c->req_off = 0;
    c->in_len = 0;
    c->t0 = now_ms();
    c->busy = 1;
    COUNT(k).sent++;
    n_issued++;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void open_conn(struct conn *c)
{
    c->fd = connect_to(1);
    if (c->fd < 0) {
        perror("storm_client: connect");
        exit(2);
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->busy = 0;
}

static void close_conn(struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->busy = 0;
}

/* Parses c->in. Returns 1 with the status, body and whether the server closes when the
 * answer is complete, 0 if more bytes are needed, -1 if it is malformed. The body is
 * decoded in place when chunked. */
static int parse(struct conn *c, int *status, char **body, size_t *blen, int *closing)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL)
        return c->in_len > 65536 ? -1 : 0;
    if (c->in_len < 12 || memcmp(c->in, "HTTP/1.1 ", 9) != 0)
        return -1;
    *status = atoi(c->in + 9);
    size_t head = (size_t)(end - c->in) + 4;
    long clen = -1;
    int chunked = 0;
    *closing = 0;
    for (char *l = strstr(c->in, "\r\n") + 2; l < end; l = strstr(l, "\r\n") + 2) {
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            clen = atol(l + 15);
        else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0 && strstr(l, "chunked") &&
                 strstr(l, "chunked") < strstr(l, "\r\n"))
            chunked = 1;
        else if (strncasecmp(l, "Connection:", 11) == 0 && strcasestr(l, "close") &&
                 strcasestr(l, "close") < strstr(l, "\r\n"))
            *closing = 1;
    }
    if (!chunked) {
        if (clen < 0)
            return -1;
        if (c->in_len < head + (size_t)clen)
            return 0;
        *body = c->in + head;
        *blen = (size_t)clen;
        return 1;
    }
    /* Chunked: decode once the terminating chunk is in. */
    size_t p = head, out = head;
    for (;;) {
        char *e = memmem(c->in + p, c->in_len - p, "\r\n", 2);
        if (e == NULL)
            return 0;
        size_t n = strtoul(c->in + p, NULL, 16);
        p = (size_t)(e - c->in) + 2;
        if (n == 0) {
            if (c->in_len < p + 2)
                return 0;
            break;
        }
        if (c->in_len < p + n + 2)
            return 0;
        memmove(c->in + out, c->in + p, n);
        out += n;
        p += n + 2;
    }
    *body = c->in + head;
    *blen = out - head;
    return 1;
}

static void finish_one(struct conn *c, int right)
{
    n_done++;
    if (right) {
        n_ok++;
        COUNT(c->k).ok++;
    } else {
        n_wrong++;
        COUNT(c->k).bad++;
    }
    c->busy = 0;
}

static void next_or_reconnect(struct conn *c, int reconnect)
{
    if (reconnect) {
        close_conn(c);
        open_conn(c);
    }
    if (n_issued < n_total)
        start_request(c);
    else if (!reconnect) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void on_event(struct conn *c, uint32_t events)
{
    if (!c->busy) {
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            /* An idle connection closed by the server: not an answer to anything. */
            close_conn(c);
            if (n_issued < n_total)
                open_conn(c);
        } else if (n_issued < n_total) {
            start_request(c);
        } else {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        return;
    }
    if (c->req_off < c->req_len && (events & EPOLLOUT)) {
        ssize_t w = send(c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
            n_conn_errors++;
            report(c, "send: %s", strerror(errno));
            finish_one(c, 0);
            next_or_reconnect(c, 1);
            return;
        }
        if (w > 0)
            c->req_off += (size_t)w;
        if (c->req_off == c->req_len) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    for (;;) {
        if (c->in_cap - c->in_len < 65536) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
            char *p = cap <= MAX_RESPONSE ? realloc(c->in, cap + 1) : NULL;
            if (p == NULL) {
                report(c, "answer larger than %u bytes", MAX_RESPONSE);
                finish_one(c, 0);
                next_or_reconnect(c, 1);
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            n_conn_errors++;
            report(c, "connection closed before the answer was complete (%s)",
                   r < 0 ? strerror(errno) : "EOF");
            finish_one(c, 0);
            next_or_reconnect(c, 1);
            return;
        }
        c->in_len += (size_t)r;
        c->in[c->in_len] = '\0';
        int status = 0, closing = 0;
        char *body = NULL;
        size_t blen = 0;
        int p = parse(c, &status, &body, &blen, &closing);
        if (p == 0)
            continue;
        if (p < 0) {
            report(c, "malformed HTTP answer");
            finish_one(c, 0);
            next_or_reconnect(c, 1);
            return;
        }
        finish_one(c, check(c, status, body, blen));
        next_or_reconnect(c, closing);
        return;
    }
}

/* ---- the server's footprint --------------------------------------------------------------- */

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static int fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* 1 if the process exists and is not a zombie. */
static int alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* One normal request on a fresh blocking connection; 1 if its answer is right. */
static int final_answer(void)
{
    struct conn c;
    memset(&c, 0, sizeof(c));
    c.k = &kinds[0];
    c.id = ++next_id;
    c.fd = connect_to(0);
    if (c.fd < 0)
        return 0;
    struct timeval tv = {.tv_sec = 30};
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    c.req_len = (size_t)snprintf(c.req, sizeof(c.req),
                                 "GET /counter?id=%lu HTTP/1.1\r\nHost: storm\r\n\r\n", c.id);
    int right = 0;
    c.in_cap = 65536;
    c.in = malloc(c.in_cap + 1);
    if (c.in != NULL && send(c.fd, c.req, c.req_len, MSG_NOSIGNAL) == (ssize_t)c.req_len) {
        for (;;) {
            ssize_t r = recv(c.fd, c.in + c.in_len, c.in_cap - c.in_len, 0);
            if (r <= 0)
                break;
            c.in_len += (size_t)r;
            c.in[c.in_len] = '\0';
            int status, closing;
            char *body;
            size_t blen;
            int p = parse(&c, &status, &body, &blen, &closing);
            if (p != 0) {
                right = p > 0 && check(&c, status, body, blen);
                break;
            }
        }
    }
    free(c.in);
    close(c.fd);
    return right;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: storm_client HOST:PORT SERVER_PID N SEED CONNS\n");
        return 2;
    }
    char host[64];
    snprintf(host, sizeof(host), "%s", argv[1]);
    char *colon = strrchr(host, ':');
    if (colon == NULL) {
        fprintf(stderr, "storm_client: HOST:PORT expected\n");
        return 2;
    }
    *colon = '\0';
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "storm_client: bad address %s\n", host);
        return 2;
    }
    pid_t pid = (pid_t)atol(argv[2]);
    n_total = strtoul(argv[3], NULL, 10);
    rng = strtoull(argv[4], NULL, 10) * 0x9e3779b97f4a7c15ull + 1;
    int nconn = atoi(argv[5]);
    if (nconn < 1 || nconn > 1000)
        nconn = 32;
    int sum = 0;
    for (size_t i = 0; i < NKINDS; i++)
        sum += kinds[i].weight;
    if (sum != 1000) {
        fprintf(stderr, "storm_client: weights add up to %d, not 1000\n", sum);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("seed=%s n=%lu conns=%d\n", argv[4], n_total, nconn);
    fflush(stdout);

    /* Warm-up fills the workers' pools and the allocator's arenas; the footprint is
     * measured from there. */
    unsigned long warm = n_total / 50;
    if (warm < 2000)
        warm = 2000;
    if (warm > 20000)
        warm = 20000;
    if (warm > n_total / 2)
        warm = n_total / 2;
    unsigned long every = (n_total - warm) / 10 + 1, next_sample = warm;
    long rss0 = -1, rss_max = -1, rss = -1;
    int fds0 = -1, fds_max = -1, fds = -1;

    ep = epoll_create1(0);
    struct conn *conns = calloc((size_t)nconn, sizeof(*conns));
    for (int i = 0; i < nconn; i++)
        open_conn(&conns[i]);
    double t0 = now_ms();
    struct epoll_event evs[64];
    while (n_done < n_total) {
        int n = epoll_wait(ep, evs, 64, 1000);
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events);
        if (n_done >= next_sample && pid > 0) {
            rss = rss_kib(pid);
            fds = fd_count(pid);
            if (rss0 < 0) {
                rss0 = rss;
                fds0 = fds;
            }
            if (rss > rss_max)
                rss_max = rss;
            if (fds > fds_max)
                fds_max = fds;
            printf("sample done=%lu rss_kib=%ld fds=%d elapsed_s=%.1f\n", n_done, rss, fds,
                   (now_ms() - t0) / 1e3);
            fflush(stdout);
            next_sample += every;
            if (!alive(pid)) {
                printf("server process %d is gone\n", (int)pid);
                break;
            }
        }
        double t = now_ms();
        for (int i = 0; i < nconn; i++) {
            struct conn *c = &conns[i];
            if (c->busy && t - c->t0 > HANG_MS) {
                n_hangs++;
                report(c, "no answer within %d ms", HANG_MS);
                finish_one(c, 0);
                next_or_reconnect(c, 1);
            }
        }
    }
    double wall = (now_ms() - t0) / 1e3;
    /* The end sample, with the same connections open as at the start. */
    if (pid > 0) {
        rss = rss_kib(pid);
        fds = fd_count(pid);
        if (rss > rss_max)
            rss_max = rss;
        if (fds > fds_max)
            fds_max = fds;
    }
    for (int i = 0; i < nconn; i++) {
        if (conns[i].fd >= 0)
            close_conn(&conns[i]);
        free(conns[i].in);
    }
    free(conns);
    int is_alive = pid > 0 ? alive(pid) : 1;
    int answered = final_answer();

    for (size_t i = 0; i < NKINDS; i++)
        printf("kind %-20s sent=%lu ok=%lu bad=%lu\n", kinds[i].name, counts[i].sent, counts[i].ok,
               counts[i].bad);
    printf("total=%lu\nok=%lu\nwrong=%lu\nhangs=%lu\nconn_errors=%lu\n", n_done, n_ok, n_wrong,
           n_hangs, n_conn_errors);
    printf("warmup=%lu\nrss_start_kib=%ld\nrss_end_kib=%ld\nrss_max_kib=%ld\n", warm, rss0, rss,
           rss_max);
    printf("fds_start=%d\nfds_end=%d\nfds_max=%d\n", fds0, fds, fds_max);
    printf("alive=%d\nfinal_answer=%d\nwall_s=%.1f\nrps=%.0f\n", is_alive, answered, wall,
           wall > 0 ? n_done / wall : 0.0);
    return n_wrong == 0 && n_done == n_total && is_alive && answered ? 0 : 1;
}
