/*
 * ctx_switch.c - ctx_switch.h: a hand-written switch for x86-64 System V,
 * POSIX ucontext elsewhere (or with -DKILN_CTX_UCONTEXT).
 *
 * The x86-64 switch pushes the six callee-saved integer registers and the
 * MXCSR / x87 control words (the ABI makes them callee-saved too), stores the
 * stack pointer, loads the other one and pops the same frame: 16
 * instructions, no syscall. A new context is a stack whose saved frame
 * "returns" into ctx_boot, which calls entry(arg) with the stack 16-byte
 * aligned as the ABI requires at a call.
 */
#include "platform/ctx_switch.h"

#include <stdlib.h>
#include <string.h>

#ifndef KILN_CTX_UCONTEXT

void kiln__ctx_swap(void **save_sp, void *new_sp);
void kiln__ctx_boot(void);

__asm__(".text\n"
        ".globl kiln__ctx_swap\n"
        ".hidden kiln__ctx_swap\n"
        ".type kiln__ctx_swap,@function\n"
        "kiln__ctx_swap:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  subq $8, %rsp\n"
        "  stmxcsr (%rsp)\n"
        "  fnstcw 4(%rsp)\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  ldmxcsr (%rsp)\n"
        "  fldcw 4(%rsp)\n"
        "  addq $8, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size kiln__ctx_swap, .-kiln__ctx_swap\n"
        ".globl kiln__ctx_boot\n"
        ".hidden kiln__ctx_boot\n"
        ".type kiln__ctx_boot,@function\n"
        "kiln__ctx_boot:\n"
        "  movq %r13, %rdi\n"
        "  callq *%r12\n"
        "  ud2\n"
        ".size kiln__ctx_boot, .-kiln__ctx_boot\n");

void ctx_make(ctx *c, void *stack_lo, void *stack_hi, void (*entry)(void *), void *arg)
{
    (void)stack_lo;
    uintptr_t top = ((uintptr_t)stack_hi & ~(uintptr_t)15) - 16;
    uint64_t *sp = (uint64_t *)top;
    /* After `ret` into ctx_boot the stack pointer is `top` (16-aligned). */
    *--sp = (uint64_t)(uintptr_t)kiln__ctx_boot;
    *--sp = 0;                          /* rbp */
    *--sp = 0;                          /* rbx */
    *--sp = (uint64_t)(uintptr_t)entry; /* r12 */
    *--sp = (uint64_t)(uintptr_t)arg;   /* r13 */
    *--sp = 0;                          /* r14 */
    *--sp = 0;                          /* r15 */
    /* Default MXCSR (all exceptions masked, round to nearest) and x87 CW. */
    *--sp = (uint64_t)0x1F80u | ((uint64_t)0x037Fu << 32);
    c->sp = sp;
    ((uint64_t *)top)[0] = 0; /* a zero return address ends backtraces */
}

void ctx_switch(ctx *from, ctx *to)
{
    kiln__ctx_swap(&from->sp, to->sp);
}

const char *ctx_impl_name(void)
{
    return "asm";
}

#else

/* makecontext passes int arguments only: split the pointers. */
static void uc_boot(unsigned e_hi, unsigned e_lo, unsigned a_hi, unsigned a_lo)
{
    void (*entry)(void *) =
        (void (*)(void *))(uintptr_t)(((uint64_t)e_hi << 32) | (uint64_t)e_lo);
    void *arg = (void *)(uintptr_t)(((uint64_t)a_hi << 32) | (uint64_t)a_lo);
    entry(arg);
    abort(); /* entry must switch away, never return */
}

void ctx_make(ctx *c, void *stack_lo, void *stack_hi, void (*entry)(void *), void *arg)
{
    memset(c, 0, sizeof(*c));
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack_lo;
    c->uc.uc_stack.ss_size = (size_t)((uint8_t *)stack_hi - (uint8_t *)stack_lo);
    c->uc.uc_link = NULL;
    uint64_t e = (uint64_t)(uintptr_t)entry, a = (uint64_t)(uintptr_t)arg;
    makecontext(&c->uc, (void (*)(void))uc_boot, 4, (unsigned)(e >> 32), (unsigned)e,
                (unsigned)(a >> 32), (unsigned)a);
}

void ctx_switch(ctx *from, ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}

const char *ctx_impl_name(void)
{
    return "ucontext";
}

#endif
