/*
 * rt_thread.c - the one trap boundary: per-thread context, the guarded entry
 * into guest code, SIGSEGV/SIGBUS classification, deadlines (a watchdog
 * thread signals threads whose deadline passed), and the wasm_rt_* trap,
 * exception and init entry points of wasm-rt.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "platform/vmem.h"
#include "runtime/rt_int.h"

_Thread_local rt_thread rt_tls __attribute__((tls_model("initial-exec")));

#define RT_ALTSTACK_SIZE ((size_t)64 << 10)
#define RT_EXC_MAX ((uint32_t)64 << 10)

static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static rt_thread *threads; /* registered for the watchdog */
static pthread_key_t thread_key;
static _Atomic uint32_t max_tag_size;

uint64_t rt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- signals ----------------------------------------------------------- */

static void restore_default_and_return(int sig)
{
    /* Not a guest fault: let it repeat with the default action so a host
     * bug still crashes loudly with a core dump. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    rt_thread *t = &rt_tls;
    rt_exec *x = t->ready ? t->x : NULL;
    uintptr_t a = (uintptr_t)si->si_addr;
    /* Only guest code faults into a trap. Host code (in_host > 0) always
     * starts with RT_HOST_HEADROOM of stack and never touches guest memory
     * unchecked, so a fault there is a host bug: crash loudly, never unwind
     * through code that may hold a lock. */
    if (x != NULL && x->jb != NULL && x->in_guest && x->in_host == 0) {
        /* Stack overflow: the fault lands in the guard below the guest stack. */
        if (a >= x->guard_lo && a < x->stack_lo)
            siglongjmp(*x->jb, KILN_TRAP_EXHAUSTION);
        /* Guest memory access beyond the accessible size. */
        if (rt_mem_contains(a))
            siglongjmp(*x->jb, KILN_TRAP_OOB);
    }
    restore_default_and_return(sig);
}

static void on_timeout(int sig, siginfo_t *si, void *uctx)
{
    (void)sig, (void)si, (void)uctx;
    rt_thread *t = &rt_tls;
    if (!t->ready || t->x == NULL)
        return;
    rt_exec *x = t->x;
    uint64_t dl = atomic_load_explicit(&t->deadline_ns, memory_order_relaxed);
    /* A signal meant for an earlier invocation is stale: ignore it. */
    if (dl == 0 || rt_now_ns() < dl)
        return;
    if (x->jb != NULL && x->in_guest && x->in_host == 0) {
        atomic_store_explicit(&t->deadline_ns, 0, memory_order_relaxed);
        siglongjmp(*x->jb, KILN_TRAP_TIMEOUT);
    }
    /* In host code (or not yet in the guest): unwind at the next boundary. */
    x->timeout_pending = 1;
}

static void thread_exit(void *p)
{
    rt_thread *t = p;
    rt_pool_drain(t);
    rt_fiber_drain(t);
    pthread_mutex_lock(&threads_lock);
    if (t->prev)
        t->prev->next = t->next;
    else if (threads == t)
        threads = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
    pthread_mutex_unlock(&threads_lock);
    if (t->altstack) {
        stack_t ss = {.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        kiln_free(t->altstack);
        t->altstack = NULL;
    }
    kiln_free(t->exc_data);
    t->exc_data = NULL;
    t->ready = false;
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    /* SA_NODEFER: we leave the handler by siglongjmp to a sigsetjmp(jb, 0)
     * context, which does not restore the mask; the signal must not stay
     * blocked or the next fault would kill the process. */
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_fault;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sa.sa_sigaction = on_timeout;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
    sigaction(RT_SIG_TIMEOUT, &sa, NULL);
}

static void process_init(void)
{
    install_handlers();
    pthread_key_create(&thread_key, thread_exit);
}

void kiln_rt_reinstall_signals(void)
{
    pthread_once(&process_once, process_init);
    install_handlers();
}

void rt_thread_init(rt_thread *t)
{
    pthread_once(&process_once, process_init);
    memset(t, 0, sizeof(*t));
    t->altstack = kiln_xmalloc(RT_ALTSTACK_SIZE);
    stack_t ss = {.ss_sp = t->altstack, .ss_size = RT_ALTSTACK_SIZE, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    t->tid = pthread_self();
    pthread_mutex_lock(&threads_lock);
    t->next = threads;
    if (threads)
        threads->prev = t;
    threads = t;
    pthread_mutex_unlock(&threads_lock);
    pthread_setspecific(thread_key, t);
    t->ready = true;
}

/* ---- watchdog ---------------------------------------------------------- */

static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;

static void *watchdog_main(void *arg)
{
    (void)arg;
    for (;;) {
        bool active = false;
        uint64_t now = rt_now_ns();
        pthread_mutex_lock(&threads_lock);
        for (rt_thread *t = threads; t != NULL; t = t->next) {
            uint64_t dl = atomic_load_explicit(&t->deadline_ns, memory_order_relaxed);
            if (dl == 0)
                continue;
            active = true;
            if (now >= dl && t->signalled_deadline != dl) {
                t->signalled_deadline = dl;
                pthread_kill(t->tid, RT_SIG_TIMEOUT);
            }
        }
        pthread_mutex_unlock(&threads_lock);
        struct timespec ts = {0, active ? 1000000 : 5000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void watchdog_spawn(void)
{
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 << 10);
    /* The watchdog must never receive the timeout signal itself. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&th, &attr, watchdog_main, NULL) != 0)
        fprintf(stderr, "kiln: cannot start the deadline watchdog thread; time limits are off\n");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

void rt_watchdog_start(void)
{
    pthread_once(&watchdog_once, watchdog_spawn);
}

/* ---- guarded entry ----------------------------------------------------- */

static const char *trap_text(int kind)
{
    return kiln_trap_name(kind);
}

typedef struct guarded_call {
    kiln_instance *inst;
    const char *what;
    void (*fn)(void *);
    void *arg;
    kiln_err *err;
} guarded_call;

/* The guarded entry proper, on the guest stack of `x`: arm the landing pad
 * (and, at top level, the deadline), call, and turn an unwind into an error. */
static int guarded_body(rt_exec *x, void *p)
{
    guarded_call *g = p;
    kiln_instance *inst = g->inst;
    rt_thread *t = &rt_tls;
    sigjmp_buf jb;
    /* Save the outer context so a host function may re-enter guest code. */
    sigjmp_buf *volatile outer_jb = x->jb;
    kiln_instance *volatile outer_inst = x->current;
    jmp_buf *volatile outer_unwind = x->unwind_target;
    volatile sig_atomic_t outer_in_guest = x->in_guest;
    volatile sig_atomic_t outer_in_host = x->in_host;
    volatile uint64_t outer_deadline = atomic_load(&t->deadline_ns);
    bool nested = outer_jb != NULL;

    x->trap_msg[0] = '\0';
    x->current = inst;
    x->unwind_target = (jmp_buf *)&jb;
    int code = sigsetjmp(jb, 0);
    if (code == 0) {
        x->jb = &jb;
        if (!nested) {
            x->timeout_pending = 0;
            uint32_t ms = inst ? inst->limits.timeout_ms : 0;
            if (ms != 0) {
                rt_watchdog_start();
                atomic_store_explicit(&t->deadline_ns, rt_now_ns() + (uint64_t)ms * 1000000u,
                                      memory_order_relaxed);
            }
        }
        x->in_host = 0;
        x->in_guest = 1;
        /* Cancelled before this entry began (between two calls of one
         * invocation): the fired handle stays fired until disarmed. Not a
         * free (no instance): it runs no guest code, and skipping it leaked
         * the tables of an instance discarded after a cancel. */
        if (!nested && inst != NULL && rt_interrupt_fired(t))
            siglongjmp(jb, KILN_TRAP_TIMEOUT);
        g->fn(g->arg);
    }
    x->in_guest = outer_in_guest;
    x->in_host = outer_in_host;
    x->jb = outer_jb;
    x->current = outer_inst;
    x->unwind_target = outer_unwind;
    if (!nested) {
        atomic_store_explicit(&t->deadline_ns, 0, memory_order_relaxed);
        x->timeout_pending = 0;
    } else {
        atomic_store_explicit(&t->deadline_ns, outer_deadline, memory_order_relaxed);
    }
    if (code == 0)
        return KILN_OK;

    kiln_err *err = g->err;
    const char *what = g->what;
    const char *mod = inst ? kiln_module_name(kiln_instance_module(inst)) : "module";
    if (code == KILN_TRAP_EXIT) {
        kiln_err_set(err, KILN_EEXIT, "%s: %s: exited with code %d", mod, what, x->exit_code);
        if (err) {
            err->trap = KILN_TRAP_EXIT;
            err->exit_code = x->exit_code;
        }
        return KILN_EEXIT;
    }
    if (code == KILN_TRAP_TIMEOUT && inst)
        inst->poisoned = true;
    if (code == KILN_TRAP_TIMEOUT && rt_interrupt_fired(t))
        kiln_err_set(err, KILN_ETRAP, "%s: %s: trap: %s (cancelled by the host)", mod, what,
                     trap_text(code));
    else if (x->trap_msg[0])
        kiln_err_set(err, KILN_ETRAP, "%s: %s: trap: %s (%s)", mod, what, trap_text(code),
                     x->trap_msg);
    else if (code == KILN_TRAP_TIMEOUT)
        kiln_err_set(err, KILN_ETRAP, "%s: %s: trap: %s after %u ms; raise the function's time "
                     "limit if this is expected", mod, what, trap_text(code),
                     inst ? inst->limits.timeout_ms : 0);
    else if (code == KILN_TRAP_EXHAUSTION)
        kiln_err_set(err, KILN_ETRAP, "%s: %s: trap: %s; the guest recursed deeper than its "
                     "stack limit allows (raise it if this is expected)", mod, what,
                     trap_text(code));
    else
        kiln_err_set(err, KILN_ETRAP, "%s: %s: trap: %s", mod, what, trap_text(code));
    if (err)
        err->trap = code;
    return KILN_ETRAP;
}

int rt_guarded(kiln_instance *inst, const char *what, void (*fn)(void *), void *arg, kiln_err *err)
{
    rt_thread *t = rt_self();
    guarded_call g = {inst, what, fn, arg, err};
    /* A host function calling back into guest code stays on its stack. */
    if (t->x != NULL)
        return guarded_body(t->x, &g);
    return rt_fiber_run(t, inst ? &inst->limits : NULL, guarded_body, &g, err);
}

/* ---- traps ------------------------------------------------------------- */

__attribute__((noreturn)) static void unwind(rt_exec *x, int kind)
{
    if (x == NULL || x->jb == NULL) {
        fprintf(stderr, "kiln: trap '%s' outside guest code (%s)\n", trap_text(kind),
                x ? x->trap_msg : "");
        abort();
    }
    siglongjmp(*x->jb, kind);
}

static rt_exec *cur_exec(void)
{
    return rt_self()->x;
}

static void set_trap_msg(rt_exec *x, const char *fmt, va_list ap)
{
    if (x != NULL)
        vsnprintf(x->trap_msg, sizeof(x->trap_msg), fmt, ap);
    else
        vfprintf(stderr, fmt, ap);
}

void wasm_rt_trap(wasm_rt_trap_t code)
{
    unwind(cur_exec(), (int)code);
}

void rt_trap_msg(int kind, const char *fmt, ...)
{
    rt_exec *x = cur_exec();
    va_list ap;
    va_start(ap, fmt);
    set_trap_msg(x, fmt, ap);
    va_end(ap);
    unwind(x, kind);
}

void kiln_host_trap(kiln_instance *inst, int kind, const char *fmt, ...)
{
    (void)inst;
    rt_exec *x = cur_exec();
    va_list ap;
    va_start(ap, fmt);
    set_trap_msg(x, fmt, ap);
    va_end(ap);
    unwind(x, kind);
}

void kiln_host_exit(kiln_instance *inst, int code)
{
    (void)inst;
    rt_exec *x = cur_exec();
    if (x != NULL)
        x->exit_code = code;
    unwind(x, KILN_TRAP_EXIT);
}

/* ---- host calls ---------------------------------------------------------- */

/* Every import shim brackets a host-function call with these, as does
 * runtime code that allocates (rt_mem.c): the stack check runs while still
 * in guest context (trapping there unwinds nothing of the host's), and a
 * deadline that fires inside the bracket is delivered when it closes. */
void rt_host_begin(rt_thread *t)
{
    rt_exec *x = t->x;
    if (x == NULL)
        return;
    volatile char probe;
    if ((uintptr_t)&probe < x->host_floor && x->in_host == 0) {
        snprintf(x->trap_msg, sizeof(x->trap_msg), "less than %zu KiB of stack left for a host "
                 "call", RT_HOST_HEADROOM >> 10);
        unwind(x, KILN_TRAP_EXHAUSTION);
    }
    x->in_host++;
}

void rt_host_close(rt_thread *t)
{
    rt_exec *x = t->x;
    if (x != NULL && x->in_host > 0)
        x->in_host--;
}

void rt_host_deliver(rt_thread *t)
{
    rt_exec *x = t->x;
    if (x == NULL)
        return;
    if (x->in_host == 0 && x->timeout_pending && x->jb != NULL) {
        x->timeout_pending = 0;
        atomic_store_explicit(&t->deadline_ns, 0, memory_order_relaxed);
        unwind(x, KILN_TRAP_TIMEOUT);
    }
}

void rt_host_end(rt_thread *t)
{
    rt_host_close(t);
    rt_host_deliver(t);
}

void wasm_rt_kiln_host_enter(void)
{
    rt_thread *t = &rt_tls;
    rt_exec *x = t->x;
    if (x != NULL && x->in_host == 0 && x->jb != NULL && x->in_guest &&
        kiln_fiber_cancelled()) {
        /* The client went away while this invocation waited: stop at the
         * guest's next host call rather than run it to the end for nobody.
         * Only here, on a call from guest code: runtime code that brackets
         * itself (freeing an instance, growing memory) must never unwind. */
        snprintf(x->trap_msg, sizeof(x->trap_msg), "cancelled: the client went away");
        unwind(x, KILN_TRAP_HOST);
    }
    rt_host_begin(t);
}

void wasm_rt_kiln_host_leave(void)
{
    rt_host_end(&rt_tls);
}

void kiln_host_enter(kiln_instance *inst)
{
    (void)inst;
    rt_host_begin(rt_self());
}

void kiln_host_leave(kiln_instance *inst)
{
    (void)inst;
    rt_host_end(&rt_tls);
}

void kiln_host_checkpoint(kiln_instance *inst)
{
    (void)inst;
    rt_thread *t = rt_self();
    rt_exec *x = t->x;
    if (x == NULL || x->jb == NULL)
        return;
    if (kiln_fiber_cancelled()) {
        snprintf(x->trap_msg, sizeof(x->trap_msg), "cancelled: the client went away");
        unwind(x, KILN_TRAP_HOST);
    }
    uint64_t dl = atomic_load_explicit(&t->deadline_ns, memory_order_relaxed);
    if (x->timeout_pending || (dl != 0 && rt_now_ns() >= dl)) {
        x->timeout_pending = 0;
        atomic_store_explicit(&t->deadline_ns, 0, memory_order_relaxed);
        unwind(x, KILN_TRAP_TIMEOUT);
    }
}

uint64_t kiln_host_deadline_ns(void)
{
    return atomic_load_explicit(&rt_self()->deadline_ns, memory_order_relaxed);
}

void kiln_host_check_stack(kiln_instance *inst)
{
    (void)inst;
    rt_exec *x = cur_exec();
    volatile char probe;
    uintptr_t sp = (uintptr_t)&probe;
    if (x != NULL && sp < x->stack_lo + RT_HOST_STACK_MARGIN)
        rt_trap_msg(KILN_TRAP_EXHAUSTION, "host function needs stack");
}

const char *kiln_trap_name(int kind)
{
    switch (kind) {
    case KILN_TRAP_NONE: return "no trap";
    case KILN_TRAP_OOB: return "out of bounds memory access";
    case KILN_TRAP_INT_OVERFLOW: return "integer overflow";
    case KILN_TRAP_DIV_BY_ZERO: return "integer divide by zero";
    case KILN_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case KILN_TRAP_UNREACHABLE: return "unreachable executed";
    case KILN_TRAP_CALL_INDIRECT: return "indirect call type mismatch or null/out-of-range element";
    case KILN_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
    case KILN_TRAP_EXHAUSTION: return "call stack exhausted";
    case KILN_TRAP_TIMEOUT: return "time limit exceeded";
    case KILN_TRAP_OUT_OF_MEMORY: return "out of memory";
    case KILN_TRAP_EXIT: return "exit";
    case KILN_TRAP_HOST: return "host error";
    }
    return "unknown trap";
}

/* ---- wasm-rt.h: init ---------------------------------------------------- */

void wasm_rt_init(void)
{
    rt_self();
}

bool wasm_rt_is_initialized(void)
{
    return true;
}

void wasm_rt_free(void)
{
}

const char *wasm_rt_strerror(wasm_rt_trap_t trap)
{
    return kiln_trap_name((int)trap);
}

/* ---- wasm-rt.h: exceptions (per thread) --------------------------------- */

uint32_t wasm_rt_register_tag(uint32_t size)
{
    static _Atomic uint32_t next_tag = 1;
    uint32_t cur = atomic_load(&max_tag_size);
    while (size > cur && !atomic_compare_exchange_weak(&max_tag_size, &cur, size))
        ;
    return atomic_fetch_add(&next_tag, 1);
}

void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void *values)
{
    rt_thread *t = rt_self();
    if (size > RT_EXC_MAX)
        rt_trap_msg(KILN_TRAP_OUT_OF_MEMORY, "exception payload of %u bytes", size);
    if (t->exc_data == NULL) {
        rt_host_begin(t);
        t->exc_data = kiln_malloc(RT_EXC_MAX);
        rt_host_close(t); /* a pending deadline is delivered by the throw's landing */
        if (t->exc_data == NULL)
            rt_trap_msg(KILN_TRAP_OUT_OF_MEMORY, "exception buffer");
    }
    t->exc_tag = tag;
    t->exc_size = size;
    if (size)
        memcpy(t->exc_data, values, size);
}

void wasm_rt_throw(void)
{
    rt_exec *x = cur_exec();
    /* No wasm `try` is armed when the target is the entry's own landing pad. */
    if (x == NULL || x->unwind_target == NULL || (void *)x->unwind_target == (void *)x->jb)
        unwind(x, KILN_TRAP_UNCAUGHT_EXCEPTION);
    siglongjmp(*x->unwind_target, WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
}

WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void)
{
    rt_exec *x = cur_exec();
    return x ? x->unwind_target : NULL;
}

void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *target)
{
    rt_exec *x = cur_exec();
    if (x != NULL)
        x->unwind_target = target;
}

uint32_t wasm_rt_exception_tag(void)
{
    return rt_tls.exc_tag;
}

uint32_t wasm_rt_exception_size(void)
{
    return rt_tls.exc_size;
}

void *wasm_rt_exception(void)
{
    return rt_tls.exc_data;
}
