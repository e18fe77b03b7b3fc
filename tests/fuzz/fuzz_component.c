/*
 * fuzz_component.c - the component reader (src/component/cm_reader.c) and
 * the WIT printer (cm_wit.c) on arbitrary bytes. Whatever cm_parse accepts
 * must hold only in-range indices and bounded types, and print as WIT
 * without crashing; whatever it refuses must leave a terminated message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "component/cm.h"
#include "component/cm_wit.h"

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "fuzz_component: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_type(const cm_type *t)
{
    CHECK(t != NULL);
    CHECK(t->depth >= 1 && t->depth <= CM_MAX_TYPE_DEPTH);
    CHECK(t->nodes >= 1 && t->nodes <= CM_MAX_TYPE_NODES);
    if (t->kind == CM_OWN || t->kind == CM_BORROW)
        CHECK(t->elem != NULL && t->elem->kind == CM_RESOURCE);
    if (t->kind == CM_FLAGS)
        CHECK(t->n >= 1 && t->n <= CM_MAX_FLAGS);
}

static void check(const cm_component *c, size_t size)
{
    for (uint32_t i = 0; i < c->n_modules; i++)
        CHECK(c->modules[i]->offset + c->modules[i]->len <= size);
    for (uint32_t i = 0; i < c->n_space[CM_SORT_TYPE]; i++)
        check_type(c->space[CM_SORT_TYPE][i]);
    for (uint32_t i = 0; i < c->n_space[CM_SORT_FUNC]; i++) {
        const cm_func *f = c->space[CM_SORT_FUNC][i];
        CHECK(f->type != NULL && f->type->kind == CM_FUNC);
        if (f->how == CM_FUNC_LIFT) {
            CHECK(f->core_func < c->n_space[CM_SORT_CORE_FUNC]);
            if (f->opts.has_memory)
                CHECK(f->opts.memory < c->n_space[CM_SORT_CORE_MEMORY]);
            if (f->opts.has_realloc)
                CHECK(f->opts.realloc < c->n_space[CM_SORT_CORE_FUNC]);
            if (f->opts.has_post_return)
                CHECK(f->opts.post_return < c->n_space[CM_SORT_CORE_FUNC]);
        }
    }
    for (uint32_t i = 0; i < c->n_space[CM_SORT_CORE_FUNC]; i++) {
        const cm_core_func *f = c->space[CM_SORT_CORE_FUNC][i];
        if (f->how == CM_CORE_ALIAS)
            CHECK(f->instance < c->n_space[CM_SORT_CORE_INSTANCE] && f->name != NULL);
        else if (f->how == CM_CORE_LOWER)
            CHECK(f->func < c->n_space[CM_SORT_FUNC]);
        else
            CHECK(f->resource != NULL && f->resource->kind == CM_RESOURCE);
    }
    for (uint32_t i = 0; i < c->n_space[CM_SORT_CORE_INSTANCE]; i++) {
        const cm_core_instance *ci = c->space[CM_SORT_CORE_INSTANCE][i];
        if (ci->instantiate)
            CHECK(ci->module < c->n_space[CM_SORT_CORE_MODULE]);
        for (uint32_t k = 0; k < ci->n; k++)
            CHECK(ci->args[k].index < c->n_space[ci->args[k].sort]);
    }
    for (uint32_t i = 0; i < c->n_exports; i++) {
        CHECK(c->exports[i].index < c->n_space[c->exports[i].sort]);
        CHECK(c->exports[i].name != NULL);
    }
    for (uint32_t i = 0; i < c->n_components; i++)
        check(c->components[i], size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cm_component *c = (cm_component *)1;
    kiln_err err;
    if (cm_parse(data, size, &c, &err) != KILN_OK) {
        CHECK(c == NULL);
        CHECK(memchr(err.msg, 0, sizeof(err.msg)) != NULL);
        return 0;
    }
    check(c, size);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    cm_wit_world(c, f);
    fclose(f);
    free(text);
    cm_free(c);
    return 0;
}
