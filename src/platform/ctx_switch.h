/*
 * ctx_switch.h - the machine-level half of a fiber: start a function on a
 * stack of our own and switch between such stacks.
 *
 * Contract:
 *  - ctx_make(stack_hi, entry, arg) prepares a context whose first
 *    ctx_switch() into it calls entry(arg) on the stack that ends at
 *    `stack_hi` (exclusive, 16-byte aligned by the caller or rounded down).
 *    `entry` must never return: it leaves by switching to another context.
 *  - ctx_switch(&from, to) saves the callee-saved registers (and the FPU/SSE
 *    control words) of the caller into `from`, then resumes `to`. It returns
 *    when some other code switches back to `from`.
 *  - No signal mask is saved or restored: a switch is a few instructions and
 *    no syscall. Code that relies on the mask (sigsetjmp(jb, 1)) must not
 *    span a switch.
 *
 * Two implementations: hand-written assembly for x86-64 and AArch64 (the
 * default), and POSIX ucontext (swapcontext, one rt_sigprocmask syscall per
 * switch) for other machines or when built with -DKILN_CTX_UCONTEXT. The
 * fiber benchmark (bench/fiber.c) measures both.
 */
#ifndef KILN_PLATFORM_CTX_SWITCH_H
#define KILN_PLATFORM_CTX_SWITCH_H

#include <stddef.h>
#include <stdint.h>

#if !defined(KILN_CTX_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define KILN_CTX_UCONTEXT 1
#endif

#ifdef KILN_CTX_UCONTEXT
#include <ucontext.h>
typedef struct ctx { ucontext_t uc; } ctx;
#else
typedef struct ctx { void *sp; } ctx;
#endif

void ctx_make(ctx *c, void *stack_lo, void *stack_hi, void (*entry)(void *), void *arg);
void ctx_switch(ctx *from, ctx *to);
/* "asm" or "ucontext", for benchmarks and logs. */
const char *ctx_impl_name(void);

#endif
