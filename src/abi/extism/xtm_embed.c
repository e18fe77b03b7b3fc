/*
 * xtm_embed.c - the Extism ABI's door for the embedding library
 * (xtm_embed.h): Extism memory for user host functions, config and vars
 * reached from the host.
 */
#include <string.h>

#include "abi/extism/xtm_embed.h"
#include "abi/extism/xtm_int.h"
#include "base/alloc.h"

uint8_t *xtm_embed_mem_base(xtm_ctx *c)
{
    return c->mem.buf;
}

uint64_t xtm_embed_mem_alloc(xtm_ctx *c, uint64_t n)
{
    uint64_t h = 0;
    if (xtm_mem_alloc(&c->mem, n, &h) != KILN_OK)
        return 0;
    return h;
}

uint64_t xtm_embed_mem_length(xtm_ctx *c, uint64_t h)
{
    return xtm_mem_length(&c->mem, h);
}

void xtm_embed_mem_free(xtm_ctx *c, uint64_t h)
{
    xtm_mem_free(&c->mem, h);
}

void xtm_fn_set_config(xtm_fn *f, const kiln_kv *config, size_t n)
{
    f->o.config = config;
    f->o.n_config = n;
}

int xtm_fn_var_set(xtm_fn *f, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    return xtm_vars_set(f, key, klen, val, vlen);
}

int xtm_fn_var_get(xtm_fn *f, const uint8_t *key, size_t klen, uint8_t **val, size_t *vlen)
{
    int rc = KILN_OK;
    *val = NULL;
    *vlen = 0;
    pthread_mutex_lock(&f->vars_lock);
    for (size_t i = 0; i < f->n_vars; i++) {
        if (f->vars[i].klen != klen || memcmp(f->vars[i].key, key, klen) != 0)
            continue;
        *val = kiln_malloc(f->vars[i].vlen ? f->vars[i].vlen : 1);
        if (*val == NULL) {
            rc = KILN_ENOMEM;
            break;
        }
        memcpy(*val, f->vars[i].val, f->vars[i].vlen);
        *vlen = f->vars[i].vlen;
        break;
    }
    pthread_mutex_unlock(&f->vars_lock);
    return rc;
}

void xtm_fn_var_each(xtm_fn *f,
                     void (*fn)(void *user, const uint8_t *key, size_t klen, const uint8_t *val,
                                size_t vlen),
                     void *user)
{
    pthread_mutex_lock(&f->vars_lock);
    for (size_t i = 0; i < f->n_vars; i++)
        fn(user, f->vars[i].key, f->vars[i].klen, f->vars[i].val, f->vars[i].vlen);
    pthread_mutex_unlock(&f->vars_lock);
}
