/*
 * rt_interrupt.c - cancelling guest code from another thread (kiln_interrupt,
 * runtime.h). A handle is armed by the thread that is about to run guest
 * code; firing it from any thread makes that thread's deadline "already
 * passed" and signals it, so the guest unwinds exactly as on a timeout: at
 * once in guest code, at the end of the host call inside one. The handle
 * stays fired until disarmed, so a cancel between two guarded entries of one
 * invocation (instantiate, init, call) stops the next one before it starts.
 */
#include <stdlib.h>

#include "base/alloc.h"
#include "runtime/rt_int.h"

struct kiln_interrupt {
    pthread_mutex_t lock; /* orders fire against arm/disarm: a fired signal
                             only ever reaches the thread that armed it */
    rt_thread *t;         /* the arming thread, NULL when disarmed */
    pthread_t tid;
    _Atomic bool fired;
};

/* Deadlines written by fire: tiny values, always in the past, and never the
 * same twice, since the watchdog skips a deadline it already signalled. */
static _Atomic uint64_t fire_seq;

int kiln_interrupt_new(kiln_interrupt **out)
{
    kiln_interrupt *h = kiln_calloc(1, sizeof(*h));
    *out = h;
    if (h == NULL)
        return KILN_ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    return KILN_OK;
}

void kiln_interrupt_free(kiln_interrupt *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->lock);
    kiln_free(h);
}

void kiln_interrupt_arm(kiln_interrupt *h)
{
    rt_thread *t = rt_self();
    pthread_mutex_lock(&h->lock);
    h->t = t;
    h->tid = pthread_self();
    atomic_store(&h->fired, false);
    atomic_store(&t->interrupt, h);
    pthread_mutex_unlock(&h->lock);
}

void kiln_interrupt_disarm(kiln_interrupt *h)
{
    pthread_mutex_lock(&h->lock);
    if (h->t != NULL)
        atomic_store(&h->t->interrupt, NULL);
    h->t = NULL;
    pthread_mutex_unlock(&h->lock);
}

bool kiln_interrupt_fire(kiln_interrupt *h)
{
    bool armed;
    pthread_mutex_lock(&h->lock);
    armed = h->t != NULL;
    if (armed) {
        atomic_store(&h->fired, true);
        /* Only a thread inside guest code has a landing pad; elsewhere the
         * fired flag alone stops the next guarded entry. */
        if (h->t->x != NULL) {
            atomic_store_explicit(&h->t->deadline_ns, atomic_fetch_add(&fire_seq, 1) + 1,
                                  memory_order_relaxed);
            rt_watchdog_start(); /* re-signals if this signal lands in host code */
            pthread_kill(h->tid, RT_SIG_TIMEOUT);
        }
    }
    pthread_mutex_unlock(&h->lock);
    return armed;
}

bool kiln_interrupt_fired_get(const kiln_interrupt *h)
{
    return atomic_load(&((kiln_interrupt *)h)->fired);
}

bool rt_interrupt_fired(rt_thread *t)
{
    kiln_interrupt *h = atomic_load(&t->interrupt);
    return h != NULL && atomic_load(&h->fired);
}
