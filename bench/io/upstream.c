/*
 * upstream.c - the slow upstream of bench/io/run.sh: a single-threaded
 * HTTP/1.1 keep-alive server that answers every GET after exactly DELAY ms.
 * Test infrastructure, not a parser: a request ends at "\r\n\r\n" and has
 * no body. Requests are due in arrival order, and every one waits the same
 * delay, so the timer queue is a FIFO ring and one timerfd armed for its
 * head; nothing here costs more than O(1) per request.
 *
 *   upstream [PORT [DELAY_MS]]      (PORT 0 or absent: any free port; 50 ms)
 *
 * Prints "listening on http://127.0.0.1:PORT" on stdout once ready. Every
 * answer is 200 with the body "upstream: waited DELAY ms\n"; anything but GET
 * gets 405 and a close. SIGUSR1 prints "upstream: N connections accepted, M
 * answers" (bench/pipeline/run.sh counts the proxy's new connections per run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX 8192 /* bytes of unanswered request heads per connection */

static char resp_ok[256]; /* 200, body "upstream: waited DELAY ms\n" */
static size_t resp_ok_len;
static const char resp_405[] = "HTTP/1.1 405 Method Not Allowed\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n"
                               "\r\n";

struct conn {
    unsigned gen;   /* bumped on close, so queued answers for an old fd die */
    int open;
    size_t in_len;  /* bytes of an incomplete request head in `in` */
    char *in;       /* REQ_MAX bytes, allocated on first use */
    char *out;      /* answers the socket would not take yet */
    size_t out_len, out_cap;
};

struct due {
    int64_t at_ns;
    int fd;
    unsigned gen;
};

static struct conn *conns;
static size_t n_conns;
static struct due *ring;
static size_t ring_cap, ring_head, ring_len;
static int ep, tfd;
static int64_t delay_ns;
static unsigned long long served, accepted;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fprintf(stderr, "upstream: out of memory\n");
        exit(1);
    }
    return p;
}

static void arm(int64_t at_ns)
{
    struct itimerspec its = {0};
    its.it_value.tv_sec = at_ns / 1000000000;
    its.it_value.tv_nsec = at_ns % 1000000000;
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void push_due(int fd)
{
    if (ring_len == ring_cap) {
        size_t cap = ring_cap ? ring_cap * 2 : 4096;
        struct due *r = xrealloc(NULL, cap * sizeof(*r));
        for (size_t i = 0; i < ring_len; i++)
            r[i] = ring[(ring_head + i) % ring_cap];
        free(ring);
        ring = r;
        ring_cap = cap;
        ring_head = 0;
    }
    struct due *d = &ring[(ring_head + ring_len) % ring_cap];
    d->at_ns = now_ns() + delay_ns;
    d->fd = fd;
    d->gen = conns[fd].gen;
    /* Only the first entry arms the timer: later ones are due later. */
    if (ring_len++ == 0)
        arm(d->at_ns);
}

static void close_conn(int fd)
{
    struct conn *c = &conns[fd];
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    c->gen++;
    c->open = 0;
    c->in_len = 0;
    c->out_len = 0;
}

/* Sends `len` bytes, keeping what the socket refuses for EPOLLOUT.
 * Returns -1 when the connection failed and was closed. */
static int send_or_queue(int fd, const char *p, size_t len)
{
    struct conn *c = &conns[fd];
    if (c->out_len == 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            close_conn(fd);
            return -1;
        }
        if (n < 0)
            n = 0;
        p += n;
        len -= (size_t)n;
        if (len == 0)
            return 0;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }
    if (c->out_len + len > c->out_cap) {
        c->out_cap = (c->out_len + len) * 2;
        c->out = xrealloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, p, len);
    c->out_len += len;
    return 0;
}

static void flush_out(int fd)
{
    struct conn *c = &conns[fd];
    ssize_t n = send(fd, c->out, c->out_len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            close_conn(fd);
        return;
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    if (c->out_len == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }
}

static void on_readable(int fd)
{
    struct conn *c = &conns[fd];
    if (c->in == NULL)
        c->in = xrealloc(NULL, REQ_MAX);
    for (;;) {
        ssize_t n = recv(fd, c->in + c->in_len, REQ_MAX - c->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            close_conn(fd);
            return;
        }
        if (n < 0)
            return;
        c->in_len += (size_t)n;
        /* Queue one answer per complete head (pipelining works too). */
        char *p = c->in, *end = c->in + c->in_len, *e;
        while ((e = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) != NULL) {
            if (end - p < 4 || memcmp(p, "GET ", 4) != 0) {
                send_or_queue(fd, resp_405, sizeof(resp_405) - 1);
                close_conn(fd);
                return;
            }
            push_due(fd);
            p = e + 4;
        }
        c->in_len = (size_t)(end - p);
        memmove(c->in, p, c->in_len);
        if (c->in_len == REQ_MAX) { /* a head that never ends */
            close_conn(fd);
            return;
        }
    }
}

static void on_timer(void)
{
    uint64_t expirations;
    if (read(tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        return;
    int64_t now = now_ns();
    while (ring_len > 0 && ring[ring_head].at_ns <= now) {
        struct due d = ring[ring_head];
        ring_head = (ring_head + 1) % ring_cap;
        ring_len--;
        if (conns[d.fd].open && conns[d.fd].gen == d.gen) {
            send_or_queue(d.fd, resp_ok, resp_ok_len);
            served++;
        }
    }
    if (ring_len > 0)
        arm(ring[ring_head].at_ns);
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or EMFILE: the next event retries */
        if ((size_t)fd >= n_conns) {
            size_t n = (size_t)fd * 2 + 64;
            conns = xrealloc(conns, n * sizeof(*conns));
            memset(conns + n_conns, 0, (n - n_conns) * sizeof(*conns));
            n_conns = n;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conns[fd].open = 1;
        accepted++;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

static volatile sig_atomic_t stop, report;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_report(int sig)
{
    (void)sig;
    report = 1;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    long delay_ms = argc > 2 ? atol(argv[2]) : 50;
    delay_ns = (int64_t)delay_ms * 1000000;
    char body[64];
    int blen = snprintf(body, sizeof(body), "upstream: waited %ld ms\n", delay_ms);
    resp_ok_len = (size_t)snprintf(resp_ok, sizeof(resp_ok),
                                   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                   "Content-Length: %d\r\n\r\n%s", blen, body);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGUSR1, on_report); /* interrupts epoll_wait (EINTR): printed below */

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        perror("upstream: bind/listen");
        return 1;
    }
    socklen_t sl = sizeof(sa);
    getsockname(lfd, (struct sockaddr *)&sa, &sl);

    ep = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = tfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    printf("listening on http://127.0.0.1:%d (answers after %ld ms)\n", ntohs(sa.sin_port), delay_ms);
    fflush(stdout);

    struct epoll_event evs[256];
    while (!stop) {
        /* A signal between two waits is seen within 200 ms, even when idle. */
        int n = epoll_wait(ep, evs, 256, 200);
        if (report) {
            report = 0;
            printf("upstream: %llu connections accepted, %llu answers\n", accepted, served);
            fflush(stdout);
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd)
                on_accept(lfd);
            else if (fd == tfd)
                on_timer();
            else if (conns[fd].open) {
                if (evs[i].events & EPOLLOUT)
                    flush_out(fd);
                if (conns[fd].open && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    on_readable(fd);
            }
        }
    }
    printf("upstream: %llu answers\n", served);
    return 0;
}
