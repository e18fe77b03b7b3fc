/*
 * abi.h - what a host ABI (WASI, Extism, ...) may use from inside a host
 * function: checked guest-memory access, traps, and the deadline bracket.
 *
 * A host function receives the calling kiln_instance as its first argument
 * (see kiln_hostfn in runtime.h). Rules:
 *   - every guest (ptr, len) goes through kiln_guest_ptr()/kiln_guest_str()
 *     before host code touches it;
 *   - a host function that allocates, takes a lock or does I/O brackets that
 *     work with kiln_host_enter()/kiln_host_leave(): a deadline that fires
 *     inside the bracket only marks the call pending, and the guest is
 *     unwound at kiln_host_leave(). Never trap while holding a lock.
 */
#ifndef KILN_ABI_H
#define KILN_ABI_H

#include <stdint.h>

/* Kiln implements wasm-rt.h and compiled artifacts resolve those symbols
 * against the kiln executable: they must stay visible although Kiln builds
 * with -fvisibility=hidden. */
#pragma GCC visibility push(default)
#include <wasm-rt.h>
#pragma GCC visibility pop

#include "runtime.h"

/* Memory 0 of the instance (own or imported), or NULL if it has none.
 * The pointer is stable for the instance's life; data/size change on grow. */
KILN_API wasm_rt_memory_t *kiln_instance_memory(kiln_instance *inst);

/*
 * Host address of guest range [ptr, ptr+len) in memory 0, or NULL if any byte
 * is out of bounds (64-bit arithmetic: no overflow). len 0 is valid at any
 * ptr <= size. The pointer is valid until the guest grows memory or returns.
 */
static inline void *kiln_guest_ptr(kiln_instance *inst, uint64_t ptr, uint64_t len)
{
    wasm_rt_memory_t *mem = kiln_instance_memory(inst);
    if (mem == NULL || ptr > mem->size || len > (uint64_t)mem->size - ptr)
        return NULL;
    return mem->data + ptr;
}

/* Checked pointer to an array of n elements of `size` bytes each, aligned or not. */
static inline void *kiln_guest_array(kiln_instance *inst, uint64_t ptr, uint64_t n, uint64_t size)
{
    if (size != 0 && n > UINT32_MAX / size)
        return NULL;
    return kiln_guest_ptr(inst, ptr, n * size);
}

/* Unwind the guest with trap `kind` and a message (copied). Never returns.
 * Must only be called from a host function invoked by guest code. */
KILN_API __attribute__((noreturn)) void kiln_host_trap(kiln_instance *inst, int kind,
                                                       const char *fmt, ...) KILN_PRINTF(3, 4);
/* Unwind the guest as proc_exit(code). Never returns. */
KILN_API __attribute__((noreturn)) void kiln_host_exit(kiln_instance *inst, int code);

/* Deadline bracket. Every call from guest code into a host function is
 * already inside one (the artifact's import shim opens it, after checking
 * that at least 256 KiB of stack are left), so a deadline never unwinds
 * through host code: it is delivered when the host function returns.
 * Nestable; kiln_host_leave at the outermost level traps with
 * KILN_TRAP_TIMEOUT if the deadline passed while inside. */
KILN_API void kiln_host_enter(kiln_instance *inst);
KILN_API void kiln_host_leave(kiln_instance *inst);
/* A host function that waits (sleeps, polls) calls this between waits, at a
 * point where it holds no lock and owns no allocation: if the invocation's
 * deadline has passed, the guest is unwound with KILN_TRAP_TIMEOUT now,
 * however deeply bracketed. Otherwise returns. */
KILN_API void kiln_host_checkpoint(kiln_instance *inst);

/* Trap KILN_TRAP_EXHAUSTION unless at least 128 KiB of native stack remain;
 * host functions that recurse or use large frames call it first. */
KILN_API void kiln_host_check_stack(kiln_instance *inst);

#endif
