/*
 * fuzz.h - shared by the libFuzzer harnesses in tests/fuzz/: a byte reader
 * that turns the fuzzer's input into choices, and a fake kiln_instance that
 * lets host functions run without a module (fake_instance.c).
 *
 * The fake instance works at link time: every harness is linked with
 * -Wl,--wrap= for the runtime entry points a host function may reach
 * (kiln_instance_state, kiln_instance_memory, kiln_host_trap, kiln_host_exit,
 * kiln_host_enter, kiln_host_leave, kiln_host_check_stack), so the ABI code
 * under test is the real library code and only src/runtime is replaced.
 * A trap or proc_exit longjmps back to fuzz_call(); a host function that
 * traps inside a kiln_host_enter/leave bracket, or leaves more often than it
 * enters, aborts the run (abi.h: "never trap while holding a lock").
 */
#ifndef KILN_TESTS_FUZZ_H
#define KILN_TESTS_FUZZ_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kiln/abi.h"
#include "kiln/runtime.h"

/* ---- reading choices from the input ------------------------------------- */

typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline uint8_t fuzz_u8(fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint64_t fuzz_uint(fuzz_in *in, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++)
        v |= (uint64_t)fuzz_u8(in) << (8 * i);
    return v;
}

/* Take up to n bytes (fewer at the end of the input). */
static inline const uint8_t *fuzz_take(fuzz_in *in, size_t n, size_t *got /* OUT */)
{
    const uint8_t *p = in->p;
    *got = n < in->n ? n : in->n;
    in->p += *got;
    in->n -= *got;
    return p;
}

/* Split the input at NUL bytes: the i-th part as a fresh NUL-terminated
 * string, or "" past the last part. Caller frees. */
char *fuzz_part(const uint8_t *data, size_t size, size_t i);

/* ---- the fake instance ------------------------------------------------------- */

typedef struct fuzz_inst {
    wasm_rt_memory_t mem;           /* memory 0; data is exactly mem.size bytes */
    bool has_mem;
    void *state[KILN_STATE_SLOTS];  /* kiln_instance_state */
    jmp_buf jb;                     /* fuzz_call's landing pad */
    bool armed;
    int depth;                      /* kiln_host_enter nesting */
    int trap_kind;                  /* last trap (-1 = proc_exit) */
    int exit_code;
    char trap_msg[1024];
} fuzz_inst;

/* A fake linear memory of `size` bytes (0 = no memory), zeroed. Every byte
 * past `size` is outside the heap block, so an unchecked access is an ASan
 * report. Returns false when out of memory. */
bool fuzz_inst_init(fuzz_inst *f, uint64_t size);
void fuzz_inst_fini(fuzz_inst *f);

static inline kiln_instance *fuzz_inst_ptr(fuzz_inst *f)
{
    return (kiln_instance *)(void *)f;
}

/*
 * Call host function `h` with integer arguments args[0..] (one per signature
 * letter, truncated to its width). *ret receives the result (0 for none).
 * Returns 0 when it returned, 1 when it trapped, 2 for proc_exit. Only
 * signatures of 'i' and 'j' letters are supported; others return -1.
 *
 * Every argument is passed as a uint64_t already truncated to its width,
 * which is how x86-64 and AArch64 pass a uint32_t anyway: one caller
 * instead of one per signature.
 */
int fuzz_call(fuzz_inst *f, const kiln_hostfn *h, const uint64_t *args, uint64_t *ret /* OUT */);

/* Number of parameters in a signature ("iij>i" -> 3); -1 if unsupported. */
int fuzz_sig_params(const char *type);

#endif
