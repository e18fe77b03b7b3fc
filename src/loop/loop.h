/*
 * loop.h - one event loop per worker thread, and the waits host functions
 * make on it without holding the thread.
 *
 * A worker thread owns a kl_loop (epoll): the HTTP library's sockets, the
 * outbound-HTTP sockets of its curl multi handle, its timers and a queue
 * other threads may post to all wake the same epoll_wait. Requests run as
 * tasks: a task is a fiber (kiln_fiber_run) plus a completion callback. A
 * host function that waits (kl_sleep_until, kl_curl_perform) registers what
 * it waits for with the loop and suspends the task's fiber; when the wait is
 * over the loop resumes it, on the same thread, and the host function goes on
 * as if it had blocked. The guest sees the same synchronous ABI.
 *
 * Outside a task (kiln run, kiln call, a thread without a loop) the waits
 * return KL_BLOCK and the caller blocks as it always did.
 *
 * Threads: everything here is used by the loop's own thread only, except
 * kl_post and kl_wake, which any thread may call.
 */
#ifndef KILN_LOOP_H
#define KILN_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/runtime.h"

typedef struct kl_loop kl_loop;

/* An fd watched by the loop; owned by the caller, valid until kl_unwatch. */
typedef struct kl_io {
    int fd;
    uint32_t events; /* EPOLLIN | EPOLLOUT | EPOLLRDHUP ... */
    void (*cb)(struct kl_io *io, uint32_t events);
    void *arg;
} kl_io;

/* A one-shot timer; owned by the caller. */
typedef struct kl_timer {
    uint64_t when; /* CLOCK_MONOTONIC ns */
    size_t slot;   /* heap index + 1; 0 = not armed */
    void (*cb)(struct kl_timer *t);
    void *arg;
} kl_timer;

/* A request running on a fiber. `done` runs on the loop's thread when the
 * fiber's function returned (result = its return value). */
typedef struct kl_task {
    kiln_fiber *fiber;
    void (*done)(struct kl_task *t, int result);
    void *arg;
    /* internal */
    kl_loop *loop;
    bool ready;
    void (*cancel_wait)(struct kl_task *t); /* set while waiting */
    void *wait;
    struct kl_task *next_ready;
} kl_task;

int kl_loop_new(kl_loop **out /* OUT */, kiln_err *err);
void kl_loop_free(kl_loop *l);
/* The calling thread's loop (set by kl_loop_run_once's caller with kl_bind). */
void kl_bind(kl_loop *l);
kl_loop *kl_current(void);

int kl_watch(kl_loop *l, kl_io *io);   /* add, or change io->events */
void kl_unwatch(kl_loop *l, kl_io *io);
void kl_timer_start(kl_loop *l, kl_timer *t, uint64_t when_ns);
void kl_timer_stop(kl_loop *l, kl_timer *t);
/* Run fn(arg) on the loop's thread soon. Any thread. KILN_OK or KILN_ENOMEM. */
int kl_post(kl_loop *l, void (*fn)(void *arg), void *arg);

/* Wait for events (at most max_wait_ms; -1 = until something happens),
 * dispatch them, fire due timers and resume ready tasks. Returns how many fd
 * events it dispatched (0: the wait ended on its timeout). */
int kl_run_once(kl_loop *l, int max_wait_ms);

/*
 * Start `t` (fiber running fn(arg), stack sized by limits). If it finishes
 * without waiting, t->done has run when this returns. KILN_OK, or
 * KILN_ENOMEM (no stack: t->done is not called).
 */
int kl_task_start(kl_loop *l, kl_task *t, const kiln_limits *limits, int (*fn)(void *arg),
                  void *arg, kiln_err *err);
/* The client went away: stop the task's wait and let it unwind (its done
 * callback still runs). */
void kl_task_cancel(kl_task *t);
/* Tasks started and not yet done on this loop. */
size_t kl_tasks_in_flight(const kl_loop *l);

/* ---- waits (from host functions) ----------------------------------------------- */

enum { KL_OK = 0, KL_BLOCK = 1, KL_CANCELED = 2 };

/* Suspend until `when_ns` (CLOCK_MONOTONIC), bounded by the invocation's
 * deadline. KL_OK when woken, KL_CANCELED, or KL_BLOCK: not on a task, the
 * caller must sleep itself. */
int kl_sleep_until(uint64_t when_ns);
/* Run a configured curl easy handle on this loop's multi handle, suspending
 * until it completes. KL_OK with *code = its CURLcode, KL_CANCELED, or
 * KL_BLOCK (the caller runs curl_easy_perform). */
int kl_curl_perform(void *easy, int *code /* OUT */);

/*
 * A wait for another thread's work (the SQLite writer's group commit):
 *
 *     kl_waiter w;
 *     if (kl_waiter_begin(&w)) { hand &w to the other thread; kl_waiter_wait(&w); }
 *     else { block as before }
 *
 * The other thread calls kl_waiter_signal(&w) exactly once, after its last
 * touch of anything on the waiter's side: the fiber may resume and return
 * (the waiter lives on its stack) as soon as the signal is posted. The wait
 * ignores cancellation and deadlines: the signal always comes, and the work
 * it waits for is short and bounded by its owner.
 */
typedef struct kl_waiter {
    kl_task *task;
    kl_loop *loop;
    struct { /* an intrusive post: no allocation to signal */
        void (*fn)(void *arg);
        void *arg;
        void *next;
        bool owned;
    } post;
} kl_waiter;

bool kl_waiter_begin(kl_waiter *w);
void kl_waiter_wait(kl_waiter *w);
void kl_waiter_signal(kl_waiter *w); /* any thread */

#endif
