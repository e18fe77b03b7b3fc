/*
 * fuzz_xtm.h - an Extism context (abi/extism/xtm_int.h) for the harnesses
 * that call Extism and Otoroshi host functions on a fake instance (fuzz.h):
 * a 1 MiB Extism memory, vars, trace logging into a sink that reads every
 * byte (so ASan checks the message), no allowed hosts (no network).
 */
#ifndef KILN_TESTS_FUZZ_XTM_H
#define KILN_TESTS_FUZZ_XTM_H

#include <stdlib.h>
#include <string.h>

#include "abi/extism/xtm_int.h"
#include "base/alloc.h"

#define FUZZ_XTM_LIMIT ((uint64_t)1 << 20)

static volatile uint8_t fuzz_log_sink;

static inline void fuzz_log(void *user, int level, const char *fn_name, const char *msg,
                            size_t len)
{
    (void)user;
    (void)level;
    (void)fn_name;
    uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= (uint8_t)msg[i];
    fuzz_log_sink = x;
}

static inline void fuzz_xtm_options(xtm_options *o)
{
    static const kiln_kv config[] = {{"greeting", "hello"}, {"empty", ""}};
    memset(o, 0, sizeof(*o));
    o->name = "fuzz";
    o->config = config;
    o->n_config = 2;
    o->limits.max_memory_bytes = FUZZ_XTM_LIMIT;
    o->max_var_bytes = 4096;
    o->max_http_response_bytes = 1 << 16;
    o->http_headers = true;
    o->log_level = XTM_LOG_TRACE;
    o->log = fuzz_log;
}

/* A fresh context for one input; fuzz_xtm_ctx_fini releases it. */
static inline void fuzz_xtm_ctx_init(xtm_ctx *c, xtm_fn *f, const xtm_options *o)
{
    memset(c, 0, sizeof(*c));
    xtm_mem_init(&c->mem, FUZZ_XTM_LIMIT);
    c->fn = f;
    c->o = o;
}

static inline void fuzz_xtm_ctx_fini(xtm_ctx *c)
{
    xtm_ext_set(c, NULL, NULL);
    kiln_free(c->http_headers);
    xtm_mem_fini(&c->mem);
}

#endif
