/*
 * rt_fiber.c - guest stacks. Every top-level guarded entry runs on a stack of
 * Kiln's own, never on the thread's: the thread's stack has whatever guard
 * the thread library gave it (glibc: one page), while a guest stack has
 *
 *     [ guard: RT_STACK_GUARD, never mapped ][ host headroom ][ guest ][ rt_fiber ]
 *     guard_lo                    stack_lo     host_floor          stack_hi
 *
 * Guest frames may use everything down to stack_lo; the first access below
 * faults in the guard and becomes "call stack exhausted". Artifacts are
 * compiled with stack-clash protection (every frame touches each of its
 * pages in order), and the guard is larger than any frame Kiln lets a
 * module have, so no frame can step over it. Host functions only start with
 * at least RT_HOST_HEADROOM below them (rt_host_begin and the import shims
 * check the stack pointer against host_floor first), so host code never
 * faults on stack and a fault inside host code is never a guest trap.
 *
 * Stacks are pooled per thread (RT_FIBER_POOL, same-size reuse; up to
 * RT_FIBER_HOT keep their pages, the rest are discarded and kept apart), so
 * the steady state maps nothing: one entry costs a context switch there and
 * back (src/platform/ctx_switch.c, no syscall). The fiber header at the top
 * of the mapping holds the rt_exec of the entry running on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "platform/ctx_switch.h"
#include "platform/vmem.h"
#include "runtime/rt_int.h"

#if defined(__SANITIZE_ADDRESS__)
#define RT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RT_ASAN 1
#endif
#endif
#ifdef RT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
#endif

struct rt_fiber {
    rt_exec x; /* first: the running rt_exec is its fiber */
    ctx self, caller;
    int (*body)(rt_exec *x, void *arg);
    void *arg;
    int result;
    rt_thread *owner;
    bool suspendable, finished, cancelled;
    uint64_t saved_deadline; /* the thread's deadline while the fiber is away */
    int (*user_fn)(void *arg); /* kiln_fiber_run */
    void *user_arg;
    void *locals[KILN_FIBER_LOCALS];
    uint8_t *map;
    size_t map_size, usable;
    rt_fiber *next_free;
    bool resident; /* pooled with its touched pages still resident */
#ifdef RT_ASAN
    void *fake_stack;
    const void *caller_bottom;
    size_t caller_size;
#endif
};

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

static size_t usable_for(const kiln_limits *lim)
{
    size_t guest = lim && lim->max_stack_bytes ? lim->max_stack_bytes : RT_DEFAULT_STACK;
    if (guest < RT_MIN_STACK)
        guest = RT_MIN_STACK;
    if (guest > RT_MAX_STACK)
        guest = RT_MAX_STACK;
    return round_up(guest + RT_HOST_HEADROOM, vmem_page_size());
}

static rt_fiber *fiber_new(size_t usable)
{
    size_t page = vmem_page_size();
    size_t header = round_up(sizeof(rt_fiber), page);
    size_t total = RT_STACK_GUARD + usable + header;
    uint8_t *map = vmem_reserve(total);
    if (map == NULL)
        return NULL;
    if (vmem_commit(map + RT_STACK_GUARD, usable + header) != 0) {
        vmem_release(map, total);
        return NULL;
    }
    rt_fiber *f = (rt_fiber *)(map + RT_STACK_GUARD + usable);
    memset(f, 0, sizeof(*f));
    f->map = map;
    f->map_size = total;
    f->usable = usable;
    f->x.guard_lo = (uintptr_t)map;
    f->x.stack_lo = (uintptr_t)map + RT_STACK_GUARD;
    f->x.stack_hi = (uintptr_t)f;
    f->x.host_floor = f->x.stack_lo + RT_HOST_HEADROOM;
    return f;
}

static void fiber_free(rt_fiber *f)
{
    vmem_release(f->map, f->map_size);
}

static rt_fiber *fiber_take(rt_thread *t, size_t usable)
{
    /* A resident stack of the size first, then a discarded one. */
    for (rt_fiber **list = &t->fibers; list != NULL;
         list = list == &t->fibers ? &t->fibers_cold : NULL)
        for (rt_fiber **pp = list; *pp != NULL; pp = &(*pp)->next_free) {
            rt_fiber *f = *pp;
            if (f->usable == usable) {
                *pp = f->next_free;
                t->n_fibers--;
                t->fibers_resident -= f->resident;
                return f;
            }
        }
    return fiber_new(usable);
}

/* Unlink and free the last stack of *list (non-empty). */
static void fiber_drop_last(rt_thread *t, rt_fiber **list)
{
    while ((*list)->next_free != NULL)
        list = &(*list)->next_free;
    t->fibers_resident -= (*list)->resident;
    fiber_free(*list);
    *list = NULL;
    t->n_fibers--;
}

static void fiber_give(rt_thread *t, rt_fiber *f)
{
    /* Up to RT_FIBER_HOT pooled stacks keep their pages; past them a stack
     * gives its touched pages back (in two lists: a burst that leaves a
     * long pool must not make every later release a discard). */
    f->resident = t->fibers_resident < RT_FIBER_HOT;
    if (!f->resident)
        vmem_discard((void *)f->x.stack_lo, f->usable);
    if (t->n_fibers >= RT_FIBER_POOL) /* keep the most recent: drop the oldest */
        fiber_drop_last(t, t->fibers_cold != NULL ? &t->fibers_cold : &t->fibers);
    rt_fiber **list = f->resident ? &t->fibers : &t->fibers_cold;
    f->next_free = *list;
    *list = f;
    t->n_fibers++;
    t->fibers_resident += f->resident;
}

void rt_fiber_trim(rt_thread *t, unsigned keep)
{
    unsigned i = 0;
    for (rt_fiber **pp = &t->fibers; *pp != NULL; i++) {
        rt_fiber *f = *pp;
        if (i < keep || vmem_discard((void *)f->x.stack_lo, f->usable) != 0) {
            pp = &f->next_free;
            continue;
        }
        *pp = f->next_free; /* to the cold list */
        f->resident = false;
        f->next_free = t->fibers_cold;
        t->fibers_cold = f;
        t->fibers_resident--;
    }
}

void rt_fiber_drain(rt_thread *t)
{
    for (rt_fiber **list = &t->fibers; list != NULL;
         list = list == &t->fibers ? &t->fibers_cold : NULL)
        while (*list != NULL) {
            rt_fiber *f = *list;
            *list = f->next_free;
            fiber_free(f);
        }
    t->n_fibers = 0;
    t->fibers_resident = 0;
}

static void fiber_main(void *p)
{
    rt_fiber *f = p;
#ifdef RT_ASAN
    __sanitizer_finish_switch_fiber(NULL, &f->caller_bottom, &f->caller_size);
#endif
    f->result = f->body(&f->x, f->arg);
    f->finished = true;
#ifdef RT_ASAN
    __sanitizer_start_switch_fiber(NULL, f->caller_bottom, f->caller_size);
#endif
    ctx_switch(&f->self, &f->caller);
    __builtin_trap(); /* never resumed after it finished */
}

static rt_fiber *fiber_prepare(rt_thread *t, const kiln_limits *limits,
                               int (*body)(rt_exec *x, void *arg), void *arg, kiln_err *err)
{
    size_t usable = usable_for(limits);
    rt_fiber *f = fiber_take(t, usable);
    if (f == NULL) {
        kiln_err_set(err, KILN_ENOMEM, "cannot map a %zu KiB guest stack; lower the function's "
                     "stack limit or raise the process's address-space limit", usable >> 10);
        return NULL;
    }
    rt_exec *x = &f->x;
    x->jb = NULL;
    x->in_guest = x->in_host = x->timeout_pending = 0;
    x->current = NULL;
    x->unwind_target = NULL;
    x->trap_msg[0] = '\0';
    x->exit_code = 0;
    f->body = body;
    f->arg = arg;
    f->owner = t;
    f->suspendable = f->finished = f->cancelled = false;
    memset(f->locals, 0, sizeof(f->locals));
    f->saved_deadline = 0;
    ctx_make(&f->self, (void *)x->stack_lo, (void *)x->stack_hi, fiber_main, f);
    return f;
}

/* Switch to `f` until it finishes (1, f is back in the pool) or suspends (0). */
static int fiber_enter(rt_thread *t, rt_fiber *f)
{
    rt_exec *outer = t->x;
    t->x = &f->x;
    atomic_store_explicit(&t->deadline_ns, f->saved_deadline, memory_order_relaxed);
#ifdef RT_ASAN
    __sanitizer_start_switch_fiber(&f->fake_stack, (const void *)f->x.stack_lo, f->usable);
#endif
    ctx_switch(&f->caller, &f->self);
#ifdef RT_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, NULL, NULL);
#endif
    t->x = outer;
    if (!f->finished)
        return 0;
    atomic_store_explicit(&t->deadline_ns, 0, memory_order_relaxed);
    fiber_give(t, f);
    return 1;
}

int rt_fiber_run(rt_thread *t, const kiln_limits *limits, int (*body)(rt_exec *x, void *arg),
                 void *arg, kiln_err *err)
{
    rt_fiber *f = fiber_prepare(t, limits, body, arg, err);
    if (f == NULL)
        return KILN_ENOMEM;
    fiber_enter(t, f); /* not suspendable: always finishes */
    return f->result;  /* f is pooled, not unmapped: its fields stay readable */
}

/* ---- public fibers ------------------------------------------------------------ */

static int user_body(rt_exec *x, void *arg)
{
    (void)x;
    rt_fiber *f = arg;
    return f->user_fn(f->user_arg);
}

int kiln_fiber_run(const kiln_limits *limits, int (*fn)(void *arg), void *arg,
                   kiln_fiber **fiber, int *result, kiln_err *err)
{
    rt_thread *t = rt_self();
    *fiber = NULL;
    rt_fiber *f = fiber_prepare(t, limits, user_body, NULL, err);
    if (f == NULL)
        return KILN_ENOMEM;
    f->arg = f;
    f->user_fn = fn;
    f->user_arg = arg;
    f->suspendable = true;
    *fiber = (kiln_fiber *)f; /* known to the code it runs, before it runs */
    if (fiber_enter(t, f)) {
        *fiber = NULL;
        *result = f->result;
        return 1;
    }
    return 0;
}

int kiln_fiber_resume(kiln_fiber *fiber, int *result)
{
    rt_fiber *f = (rt_fiber *)fiber;
    rt_thread *t = rt_self();
    if (f->owner != t || f->finished) {
        fprintf(stderr, "kiln: kiln_fiber_resume: fiber of another thread or finished\n");
        abort();
    }
    if (fiber_enter(t, f)) {
        *result = f->result;
        return 1;
    }
    return 0;
}

kiln_fiber *kiln_fiber_current(void)
{
    rt_exec *x = rt_self()->x;
    return x != NULL && ((rt_fiber *)x)->suspendable ? (kiln_fiber *)x : NULL;
}

bool kiln_fiber_suspend(void)
{
    rt_thread *t = rt_self();
    rt_fiber *f = (rt_fiber *)t->x;
    if (f == NULL || !f->suspendable)
        return false;
    f->saved_deadline = atomic_load_explicit(&t->deadline_ns, memory_order_relaxed);
    atomic_store_explicit(&t->deadline_ns, 0, memory_order_relaxed);
#ifdef RT_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, f->caller_bottom, f->caller_size);
#endif
    ctx_switch(&f->self, &f->caller);
#ifdef RT_ASAN
    __sanitizer_finish_switch_fiber(fake, &f->caller_bottom, &f->caller_size);
#endif
    return true;
}

void kiln_fiber_cancel(kiln_fiber *fiber)
{
    ((rt_fiber *)fiber)->cancelled = true;
}

bool kiln_fiber_cancelled(void)
{
    rt_exec *x = rt_self()->x;
    return x != NULL && ((rt_fiber *)x)->cancelled;
}

bool kiln_fiber_clear_cancel(void)
{
    rt_exec *x = rt_self()->x;
    if (x == NULL)
        return false;
    bool was = ((rt_fiber *)x)->cancelled;
    ((rt_fiber *)x)->cancelled = false;
    return was;
}

void **kiln_fiber_local(unsigned slot)
{
    static _Thread_local void *thread_locals[KILN_FIBER_LOCALS];
    if (slot >= KILN_FIBER_LOCALS)
        return NULL;
    rt_exec *x = rt_self()->x;
    if (x != NULL && ((rt_fiber *)x)->suspendable)
        return &((rt_fiber *)x)->locals[slot];
    return &thread_locals[slot];
}
