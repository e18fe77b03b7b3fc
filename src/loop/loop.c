/*
 * loop.c - loop.h on Linux: epoll for readiness, a binary min-heap of
 * timers, an eventfd for posts from other threads, and libcurl's multi
 * interface driven by the same epoll (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION),
 * so outbound requests of every task on this thread share one connection
 * cache and no thread.
 */
#include "loop/loop.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"

#define KL_EVENTS 128

/*
 * Connections the worker's curl multi handle keeps open when idle. curl's
 * default is 4 x the easy handles added at that moment; Kiln adds a handle
 * per transfer, so whenever the transfers in flight fell below a quarter of
 * the open connections curl closed the oldest, and the next burst opened new
 * ones (bench "pipeline": 8-17 % of the requests proxied at 64 client
 * connections opened a new upstream connection). A fixed cache holds every
 * connection a burst of this size needs; idle ones still close after curl's
 * CURLOPT_MAXAGE_CONN (118 s) or when the peer closes them.
 */
#define KL_CURL_MAXCONNECTS 256L

/*
 * One socket of the curl multi handle. The epoll registration outlives the
 * transfer: when a transfer ends curl says CURL_POLL_REMOVE but keeps the
 * connection in its cache, and the next transfer on it asks for the socket
 * again. Deleting and re-adding the registration each time cost three
 * epoll_ctl calls, a calloc and a free per proxied request; now a removed
 * socket is only disarmed here (`armed` = 0), and re-arming it is one
 * EPOLL_CTL_MOD. An event on a disarmed socket (the peer closed an idle
 * connection) deletes the registration then, since curl is not listening.
 * Before curl closes a socket, on_closesocket deletes its registration, so a
 * closed fd never stays in the epoll set.
 */
typedef struct kl_curl_sock {
    kl_io io;          /* io.events: what is registered while in_epoll */
    uint32_t armed;    /* what curl asked for; 0 since CURL_POLL_REMOVE */
    bool in_epoll;
} kl_curl_sock;

/* Laid out like kl_waiter.post, so a waiter is posted without allocating. */
typedef struct kl_post_item {
    void (*fn)(void *arg);
    void *arg;
    struct kl_post_item *next;
    bool owned; /* freed after running (kl_post), or part of a waiter */
} kl_post_item;

struct kl_loop {
    int ep;
    kl_io wake;
    kl_timer **heap;
    size_t n_timers, cap_timers;
    pthread_mutex_t post_lock;
    kl_post_item *posts;
    kl_task *ready_head, *ready_tail;
    size_t in_flight;
    CURLM *multi;
    kl_timer curl_timer;
    kl_curl_sock **socks; /* curl's sockets by fd; entries live as long as the loop */
    size_t n_socks;
};

static _Thread_local kl_loop *bound;
static _Thread_local kl_task *running;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void kl_bind(kl_loop *l)
{
    bound = l;
}

kl_loop *kl_current(void)
{
    return bound;
}

/* ---- fds ---------------------------------------------------------------------------- */

/* Register io->fd with io->events: one epoll_ctl when `registered` guesses
 * right (MOD for a registered fd, ADD for a new one), two when it does not. */
static int ep_set(kl_loop *l, kl_io *io, bool registered)
{
    struct epoll_event ev = {.events = io->events, .data.ptr = io};
    int first = registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->ep, first, io->fd, &ev) == 0)
        return KILN_OK;
    if (errno == (registered ? ENOENT : EEXIST) &&
        epoll_ctl(l->ep, registered ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, io->fd, &ev) == 0)
        return KILN_OK;
    return KILN_EIO;
}

/* Every caller registers a new fd (a suspended request's socket, the HTTP
 * daemon's epoll fd): ADD first. */
int kl_watch(kl_loop *l, kl_io *io)
{
    return ep_set(l, io, false);
}

void kl_unwatch(kl_loop *l, kl_io *io)
{
    epoll_ctl(l->ep, EPOLL_CTL_DEL, io->fd, NULL);
}

/* ---- timers (min-heap on `when`; slot = index + 1) -------------------------------------- */

static void heap_set(kl_loop *l, size_t i, kl_timer *t)
{
    l->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(kl_loop *l, size_t i)
{
    kl_timer *t = l->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->when <= t->when)
            break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, t);
}

static void sift_down(kl_loop *l, size_t i)
{
    kl_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->n_timers)
            break;
        if (c + 1 < l->n_timers && l->heap[c + 1]->when < l->heap[c]->when)
            c++;
        if (t->when <= l->heap[c]->when)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

void kl_timer_stop(kl_loop *l, kl_timer *t)
{
    if (t->slot == 0)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    kl_timer *last = l->heap[--l->n_timers];
    if (i == l->n_timers)
        return;
    heap_set(l, i, last);
    sift_up(l, i);
    sift_down(l, last->slot - 1);
}

void kl_timer_start(kl_loop *l, kl_timer *t, uint64_t when_ns)
{
    kl_timer_stop(l, t);
    if (l->n_timers == l->cap_timers) {
        size_t cap = l->cap_timers ? l->cap_timers * 2 : 64;
        kl_timer **h = kiln_realloc(l->heap, cap * sizeof(*h));
        if (h == NULL) { /* the same policy as kiln_xmalloc */
            fprintf(stderr, "kiln: out of memory growing a timer heap\n");
            abort();
        }
        l->heap = h;
        l->cap_timers = cap;
    }
    t->when = when_ns;
    heap_set(l, l->n_timers++, t);
    sift_up(l, l->n_timers - 1);
}

static void fire_timers(kl_loop *l)
{
    uint64_t now = now_ns();
    while (l->n_timers > 0 && l->heap[0]->when <= now) {
        kl_timer *t = l->heap[0];
        kl_timer_stop(l, t);
        t->cb(t);
    }
}

/* ---- posts -------------------------------------------------------------------------------- */

/* Queue a post and wake the loop's thread. Any thread. */
static void post_push(kl_loop *l, kl_post_item *p)
{
    pthread_mutex_lock(&l->post_lock);
    p->next = l->posts;
    l->posts = p;
    pthread_mutex_unlock(&l->post_lock);
    uint64_t one = 1;
    ssize_t w = write(l->wake.fd, &one, sizeof(one));
    (void)w;
}

int kl_post(kl_loop *l, void (*fn)(void *arg), void *arg)
{
    kl_post_item *p = kiln_malloc(sizeof(*p));
    if (p == NULL)
        return KILN_ENOMEM;
    p->fn = fn;
    p->arg = arg;
    p->owned = true;
    post_push(l, p);
    return KILN_OK;
}

static void on_wake(kl_io *io, uint32_t events)
{
    kl_loop *l = io->arg;
    uint64_t n;
    ssize_t r = read(io->fd, &n, sizeof(n));
    (void)r, (void)events;
    pthread_mutex_lock(&l->post_lock);
    kl_post_item *p = l->posts;
    l->posts = NULL;
    pthread_mutex_unlock(&l->post_lock);
    /* Oldest first. */
    kl_post_item *rev = NULL;
    while (p != NULL) {
        kl_post_item *next = p->next;
        p->next = rev;
        rev = p;
        p = next;
    }
    while (rev != NULL) {
        kl_post_item *next = rev->next;
        bool owned = rev->owned;
        rev->fn(rev->arg); /* may free a waiter's item: read `owned` first */
        if (owned)
            kiln_free(rev);
        rev = next;
    }
}

/* ---- tasks ---------------------------------------------------------------------------------- */

static void make_ready(kl_task *t)
{
    if (t->ready)
        return;
    kl_loop *l = t->loop;
    t->ready = true;
    t->next_ready = NULL;
    if (l->ready_tail != NULL)
        l->ready_tail->next_ready = t;
    else
        l->ready_head = t;
    l->ready_tail = t;
}

static void finished(kl_loop *l, kl_task *t, int result)
{
    l->in_flight--;
    t->fiber = NULL;
    t->done(t, result);
}

int kl_task_start(kl_loop *l, kl_task *t, const kiln_limits *limits, int (*fn)(void *arg),
                  void *arg, kiln_err *err)
{
    t->loop = l;
    t->ready = false;
    t->cancel_wait = NULL;
    t->wait = NULL;
    t->fiber = NULL;
    kl_task *outer = running;
    running = t;
    l->in_flight++;
    int result = 0;
    int rc = kiln_fiber_run(limits, fn, arg, &t->fiber, &result, err);
    running = outer;
    if (rc < 0) {
        l->in_flight--;
        return rc;
    }
    if (rc == 1)
        finished(l, t, result);
    return KILN_OK;
}

static void run_ready(kl_loop *l)
{
    while (l->ready_head != NULL) {
        kl_task *t = l->ready_head;
        l->ready_head = t->next_ready;
        if (l->ready_head == NULL)
            l->ready_tail = NULL;
        t->ready = false;
        kl_task *outer = running;
        running = t;
        int result = 0;
        int rc = kiln_fiber_resume(t->fiber, &result);
        running = outer;
        if (rc == 1)
            finished(l, t, result);
    }
}

void kl_task_cancel(kl_task *t)
{
    if (t->fiber == NULL)
        return;
    kiln_fiber_cancel(t->fiber);
    if (t->cancel_wait != NULL)
        t->cancel_wait(t);
    make_ready(t);
}

size_t kl_tasks_in_flight(const kl_loop *l)
{
    return l->in_flight;
}

/* ---- waits ------------------------------------------------------------------------------------- */

static kl_task *waiting_task(void)
{
    kl_task *t = running;
    return t != NULL && kiln_fiber_current() == t->fiber ? t : NULL;
}

static void sleep_fired(kl_timer *tm)
{
    make_ready(tm->arg);
}

static void sleep_cancel(kl_task *t)
{
    kl_timer_stop(t->loop, t->wait);
}

int kl_sleep_until(uint64_t when_ns)
{
    kl_task *t = waiting_task();
    if (t == NULL)
        return KL_BLOCK;
    uint64_t dl = kiln_host_deadline_ns();
    if (dl != 0 && dl < when_ns)
        when_ns = dl;
    kl_timer tm = {.cb = sleep_fired, .arg = t};
    kl_timer_start(t->loop, &tm, when_ns);
    t->cancel_wait = sleep_cancel;
    t->wait = &tm;
    kiln_fiber_suspend();
    t->cancel_wait = NULL;
    t->wait = NULL;
    kl_timer_stop(t->loop, &tm);
    return kiln_fiber_cancelled() ? KL_CANCELED : KL_OK;
}

/* waits for other threads */

typedef struct waiter_item {
    void (*fn)(void *arg);
    void *arg;
    kl_post_item *next;
    bool owned;
} waiter_item;

_Static_assert(sizeof(waiter_item) == sizeof(kl_post_item), "post layouts must match");

static void waiter_wake(void *arg)
{
    kl_waiter *w = arg;
    make_ready(w->task);
}

bool kl_waiter_begin(kl_waiter *w)
{
    kl_task *t = waiting_task();
    if (t == NULL)
        return false;
    w->task = t;
    w->loop = t->loop;
    return true;
}

void kl_waiter_wait(kl_waiter *w)
{
    w->task->cancel_wait = NULL;
    kiln_fiber_suspend();
}

void kl_waiter_signal(kl_waiter *w)
{
    kl_loop *l = w->loop;
    /* The waiter's own storage is the post: nothing to allocate or free. */
    kl_post_item *p = (kl_post_item *)(void *)&w->post;
    p->fn = waiter_wake;
    p->arg = w;
    p->owned = false;
    post_push(l, p);
}

/* curl multi on the loop */

typedef struct curl_wait {
    kl_task *task;
    int code;
    bool done;
} curl_wait;

static void curl_check_done(kl_loop *l)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_wait *w = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
        CURLcode code = m->data.result;
        curl_multi_remove_handle(l->multi, m->easy_handle);
        if (w != NULL) {
            w->code = (int)code;
            w->done = true;
            make_ready(w->task);
        }
    }
}

static void curl_io(kl_io *io, uint32_t events)
{
    kl_loop *l = io->arg;
    kl_curl_sock *cs = (kl_curl_sock *)(void *)io;
    if (cs->armed == 0) {
        /* An idle cached connection (the peer closed it, most likely): curl
         * finds out when it next looks at it; until then stop hearing it.
         * Not in the set any more: an event of this batch for a socket curl
         * has closed since, whose fd may already be someone else's. */
        if (cs->in_epoll)
            epoll_ctl(l->ep, EPOLL_CTL_DEL, io->fd, NULL);
        cs->in_epoll = false;
        return;
    }
    int flags = 0, still;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(l->multi, io->fd, flags, &still);
    curl_check_done(l);
}

static void curl_timer_fired(kl_timer *t)
{
    kl_loop *l = t->arg;
    int still;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &still);
    curl_check_done(l);
}

/* The entry for fd `s`, made on first use. NULL when out of memory. */
static kl_curl_sock *curl_sock(kl_loop *l, curl_socket_t s)
{
    if (s < 0)
        return NULL;
    size_t fd = (size_t)s;
    if (fd >= l->n_socks) {
        size_t n = l->n_socks ? l->n_socks : 64;
        while (n <= fd)
            n *= 2;
        kl_curl_sock **t = kiln_realloc(l->socks, n * sizeof(*t));
        if (t == NULL)
            return NULL;
        memset(t + l->n_socks, 0, (n - l->n_socks) * sizeof(*t));
        l->socks = t;
        l->n_socks = n;
    }
    if (l->socks[fd] == NULL) {
        kl_curl_sock *cs = kiln_calloc(1, sizeof(*cs));
        if (cs == NULL)
            return NULL;
        cs->io.fd = s;
        cs->io.cb = curl_io;
        cs->io.arg = l;
        l->socks[fd] = cs;
    }
    return l->socks[fd];
}

static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy, (void)socketp;
    kl_loop *l = userp;
    if (what == CURL_POLL_REMOVE) {
        /* Usually a connection going back to curl's cache: keep the
         * registration (see kl_curl_sock). */
        if ((size_t)s < l->n_socks && l->socks[s] != NULL)
            l->socks[s]->armed = 0;
        return 0;
    }
    kl_curl_sock *cs = curl_sock(l, s);
    if (cs == NULL)
        return -1;
    uint32_t want = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    /* Armed, the fd is known to be the same socket (curl removes a socket
     * before closing it): nothing to do if the events are the same. Disarmed,
     * it may have been closed and the number reused, so MOD, else ADD. */
    if (cs->armed != 0 && cs->in_epoll && cs->io.events == want) {
        cs->armed = want;
        return 0;
    }
    cs->io.events = want;
    cs->in_epoll = ep_set(l, &cs->io, cs->in_epoll) == KILN_OK;
    cs->armed = cs->in_epoll ? want : 0;
    return cs->in_epoll ? 0 : -1;
}

/* CURLOPT_CLOSESOCKETFUNCTION: leave the epoll set before the fd is closed
 * (a registration can outlive close() while a spawned child holds a copy of
 * the descriptor). */
static int on_closesocket(void *clientp, curl_socket_t s)
{
    kl_loop *l = clientp;
    if (s >= 0 && (size_t)s < l->n_socks && l->socks[s] != NULL) {
        kl_curl_sock *cs = l->socks[s];
        if (cs->in_epoll)
            epoll_ctl(l->ep, EPOLL_CTL_DEL, s, NULL);
        cs->in_epoll = false;
        cs->armed = 0;
    }
    return close(s);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    kl_loop *l = userp;
    if (timeout_ms < 0)
        kl_timer_stop(l, &l->curl_timer);
    else
        kl_timer_start(l, &l->curl_timer, now_ns() + (uint64_t)timeout_ms * 1000000u);
    return 0;
}

static CURLM *loop_multi(kl_loop *l)
{
    if (l->multi != NULL)
        return l->multi;
    l->multi = curl_multi_init();
    if (l->multi == NULL)
        return NULL;
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, KL_CURL_MAXCONNECTS);
    l->curl_timer.cb = curl_timer_fired;
    l->curl_timer.arg = l;
    return l->multi;
}

int kl_curl_perform(void *easy, int *code)
{
    kl_task *t = waiting_task();
    if (t == NULL)
        return KL_BLOCK;
    CURLM *m = loop_multi(t->loop);
    if (m == NULL)
        return KL_BLOCK;
    curl_wait w = {.task = t};
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)&w);
    /* Copied into every connection this transfer opens, which may outlive
     * the transfer (curl's cache) but not the loop (kl_loop_free). */
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, t->loop);
    if (curl_multi_add_handle(m, easy) != CURLM_OK) {
        /* The caller performs it alone: its connections are not the loop's. */
        curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, (curl_closesocket_callback)NULL);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)NULL);
        return KL_BLOCK;
    }
    /* Cancelling only wakes the task; the handle is removed below. */
    t->cancel_wait = NULL;
    kiln_fiber_suspend();
    if (!w.done) {
        curl_multi_remove_handle(m, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)NULL);
        return KL_CANCELED;
    }
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)NULL);
    *code = w.code;
    return KL_OK;
}

/* ---- the loop ---------------------------------------------------------------------------------- */

int kl_loop_new(kl_loop **out, kiln_err *err)
{
    *out = NULL;
    kl_loop *l = kiln_calloc(1, sizeof(*l));
    if (l == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory creating an event loop");
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->ep < 0 || l->wake.fd < 0) {
        int e = errno;
        if (l->ep >= 0)
            close(l->ep);
        if (l->wake.fd >= 0)
            close(l->wake.fd);
        kiln_free(l);
        return kiln_err_set(err, KILN_EIO, "cannot create an event loop: %s", strerror(e));
    }
    pthread_mutex_init(&l->post_lock, NULL);
    l->wake.events = EPOLLIN;
    l->wake.cb = on_wake;
    l->wake.arg = l;
    kl_watch(l, &l->wake);
    *out = l;
    return KILN_OK;
}

void kl_loop_free(kl_loop *l)
{
    if (l == NULL)
        return;
    if (l->multi != NULL)
        curl_multi_cleanup(l->multi); /* closes the cache: on_closesocket needs l */
    for (size_t i = 0; i < l->n_socks; i++)
        kiln_free(l->socks[i]);
    kiln_free(l->socks);
    on_wake(&l->wake, 0); /* run what was posted: posters own resources */
    close(l->wake.fd);
    close(l->ep);
    pthread_mutex_destroy(&l->post_lock);
    kiln_free(l->heap);
    kiln_free(l);
}

int kl_run_once(kl_loop *l, int max_wait_ms)
{
    int wait = max_wait_ms;
    if (l->ready_head != NULL)
        wait = 0;
    if (l->n_timers > 0) {
        uint64_t now = now_ns(), when = l->heap[0]->when;
        uint64_t ms = when > now ? (when - now + 999999) / 1000000 : 0;
        if (wait < 0 || ms < (uint64_t)wait)
            wait = (int)ms;
    }
    struct epoll_event evs[KL_EVENTS];
    int n = epoll_wait(l->ep, evs, KL_EVENTS, wait);
    for (int i = 0; i < n; i++) {
        kl_io *io = evs[i].data.ptr;
        if (io->cb != NULL)
            io->cb(io, evs[i].events);
    }
    fire_timers(l);
    run_ready(l);
    return n > 0 ? n : 0;
}
