/*
 * xtm_embed.h - what the embedding library (src/embed, the Extism C API)
 * needs from the Extism ABI beyond extism.h: Extism memory of the calling
 * instance for user host functions, and config replaced between calls.
 * Kept apart from extism.h so the server-facing interface stays as it is.
 */
#ifndef KILN_ABI_EXTISM_XTM_EMBED_H
#define KILN_ABI_EXTISM_XTM_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "abi/extism/extism.h"

/* Base of the calling instance's Extism memory: handle h is base + h. NULL
 * before the first block. Moves when a block is allocated. */
uint8_t *xtm_embed_mem_base(xtm_ctx *c);
/* New zeroed block of n bytes; 0 over the memory limit or out of memory
 * (as Extism's extism_current_plugin_memory_alloc). Call from a host
 * function only. */
uint64_t xtm_embed_mem_alloc(xtm_ctx *c, uint64_t n);
/* Length of the live block at h, else 0. */
uint64_t xtm_embed_mem_length(xtm_ctx *c, uint64_t h);
/* Free the block at h (no-op unless h starts a live block). */
void xtm_embed_mem_free(xtm_ctx *c, uint64_t h);

/* Replace the function's config (borrowed: must outlive f or the next
 * replacement). No call may be in flight. */
void xtm_fn_set_config(xtm_fn *f, const kiln_kv *config, size_t n);
/* The function's var store: preset a var (val NULL removes it) and read one
 * (a kiln_malloc'd copy in *val, NULL when absent). KILN_OK, KILN_ELIMIT
 * (store full) or KILN_ENOMEM. Thread-safe. */
int xtm_fn_var_set(xtm_fn *f, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
int xtm_fn_var_get(xtm_fn *f, const uint8_t *key, size_t klen, uint8_t **val /* OUT */,
                   size_t *vlen /* OUT */);
/* Visit every var (under the var lock). */
void xtm_fn_var_each(xtm_fn *f,
                     void (*fn)(void *user, const uint8_t *key, size_t klen, const uint8_t *val,
                                size_t vlen),
                     void *user);

#endif
