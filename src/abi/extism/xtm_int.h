/*
 * xtm_int.h - private to src/abi/extism/: the per-instance context, the
 * per-function state and the hooks between extism.c, xtm_host.c and
 * xtm_http.c. Other modules use extism.h.
 */
#ifndef KILN_ABI_EXTISM_XTM_INT_H
#define KILN_ABI_EXTISM_XTM_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi/extism/extism.h"
#include "abi/extism/xtm_mem.h"

#define XTM_POOL_MAX 64
/* Rust's per-entry overhead in the var-store accounting (extism-abi.md §6). */
#define XTM_VAR_OVERHEAD 48

struct xtm_ctx {
    xtm_mem mem;
    xtm_fn *fn;
    const xtm_options *o;
    uint64_t input_h, input_len;
    uint64_t output_p, output_len;
    uint64_t error_h;
    int32_t http_status;  /* last http_request of this instance; 0 before any */
    char *http_headers;   /* JSON of the last response's headers, or NULL */
    uint64_t deadline_ns; /* CLOCK_MONOTONIC deadline of the current call; 0 = none */
    /* A host function that fails records why here, then traps. */
    bool failed;
    int fail_kind;
    char fail_msg[768];
    void *ext;
    void (*ext_free)(void *);
};

typedef struct xtm_var {
    uint8_t *key;
    size_t klen;
    uint8_t *val;
    size_t vlen;
} xtm_var;

typedef struct xtm_plugin xtm_plugin;

struct xtm_fn {
    xtm_options o;
    /* Vars are per function, shared by every instance; the lock is held only
     * inside a host function (never across a trap: a deadline unwinds only
     * after the host function returns). */
    pthread_mutex_t vars_lock;
    xtm_var *vars;
    size_t n_vars, cap_vars;
    uint64_t vars_bytes; /* Σ (klen + vlen + XTM_VAR_OVERHEAD) */
    pthread_mutex_t pool_lock;
    xtm_plugin *idle[XTM_POOL_MAX];
    size_t n_idle;
    /* Set once by xtm_fn_snapshot before the function serves, then read
     * only: instances of `snap_pre` start from `snap`. */
    kiln_snapshot *snap;
    const kiln_instance_pre *snap_pre;
};

uint64_t xtm_now_ns(void);

/* Fail the call with the Extism "oom" error (an allocation over the memory
 * limit). Never returns; hold nothing when calling it. */
__attribute__((noreturn)) void xtm_fail_oom(kiln_instance *inst, xtm_ctx *c);

/* Var store (extism.c). Both return KILN_OK, KILN_ELIMIT (store full) or
 * KILN_ENOMEM; call inside a host bracket. xtm_vars_get copies the value
 * into a new block of c's memory (*h = 0 when absent or empty); it returns
 * KILN_ELIMIT when that allocation is over the memory limit. */
int xtm_vars_get(xtm_ctx *c, const uint8_t *key, size_t klen, uint64_t *h /* OUT */);
int xtm_vars_set(xtm_fn *f, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);

/* Host functions of xtm_http.c, listed in xtm_host.c's table. */
uint64_t xtm_hf_http_request(kiln_instance *inst, uint64_t req, uint64_t body);
uint32_t xtm_hf_http_status_code(kiln_instance *inst);
uint64_t xtm_hf_http_headers(kiln_instance *inst);

#endif
