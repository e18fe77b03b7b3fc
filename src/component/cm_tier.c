/*
 * cm_tier.c - which compile tier of a component's embedded core modules is
 * cached, and compiling one tier of them (contract in cm_tier.h). The tier
 * choice itself is the AOT layer's (kiln_aot_best_tier), the one used for
 * core modules too; this file only lists the embedded modules.
 */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "component/cm_tier.h"

/* cm_mods_load's name for embedded module i. */
#define MOD_NAME_MAX 300
static void mod_name(char *out, const char *display, uint32_t i)
{
    snprintf(out, MOD_NAME_MAX, "%.200s#module%u", display, (unsigned)i);
}

static kiln_aot_options options(const kiln_aot_options *aot)
{
    kiln_aot_options ao;
    if (aot != NULL)
        ao = *aot;
    else
        memset(&ao, 0, sizeof(ao)), ao.opt_level = -1;
    ao.imports = NULL;
    return ao;
}

int cm_mods_best_tier(const cm_component *c, const uint8_t *buf, const char *display,
                      const kiln_aot_options *aot, kiln_aot_tier *tier, kiln_err *err)
{
    uint32_t n = c->n_space[CM_SORT_CORE_MODULE], k = 0;
    kiln_aot_input *in = kiln_calloc(n + 1, sizeof(*in));
    char *names = kiln_malloc((size_t)(n + 1) * MOD_NAME_MAX);
    if (in == NULL || names == NULL) {
        kiln_free(in);
        kiln_free(names);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        const cm_module *m = c->space[CM_SORT_CORE_MODULE][i];
        if (m == NULL)
            continue; /* imported: refused when instantiated */
        char *name = names + (size_t)k * MOD_NAME_MAX;
        mod_name(name, display, i);
        in[k++] = (kiln_aot_input){.wasm = buf + m->offset, .len = m->len, .name = name};
    }
    kiln_aot_options ao = options(aot);
    int rc = kiln_aot_best_tier(in, k, &ao, tier, NULL, err);
    kiln_free(names);
    kiln_free(in);
    return rc;
}

int cm_mods_compile(const cm_component *c, const uint8_t *buf, const char *display,
                    const kiln_aot_options *aot, kiln_err *err)
{
    kiln_aot_options ao = options(aot);
    ao.cache_only = false;
    for (uint32_t i = 0; i < c->n_space[CM_SORT_CORE_MODULE]; i++) {
        const cm_module *m = c->space[CM_SORT_CORE_MODULE][i];
        if (m == NULL)
            continue;
        char name[MOD_NAME_MAX];
        mod_name(name, display, i);
        kiln_aot_result res;
        /* The first failure ends the job: the tier cannot be served without
         * every module, so compiling the rest would be wasted. */
        int rc = kiln_aot_compile(buf + m->offset, m->len, name, &ao, &res, err);
        if (rc != KILN_OK)
            return rc;
    }
    return KILN_OK;
}
