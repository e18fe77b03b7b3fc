/*
 * cm_int.h - internals shared by the component files: the arena every
 * component tree allocates from.
 *
 * The arena only grows; cm_free() releases it whole. Growing an array copies
 * it into a fresh block and leaves the old one in the arena, which at most
 * doubles the memory an array costs and keeps every error path free of
 * partial frees.
 */
#ifndef KILN_COMPONENT_CM_INT_H
#define KILN_COMPONENT_CM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "component/cm.h"

/* Cap on the bytes one component tree may allocate while decoding. */
#define CM_MAX_ARENA ((size_t)256 << 20)

cm_arena *cm_arena_new(void);
void cm_arena_free(cm_arena *a);
/* Zeroed memory for n bytes, 16-aligned; NULL when out of memory or over CM_MAX_ARENA. */
void *cm_arena_alloc(cm_arena *a, size_t n);
/* A copy of n bytes with a NUL after them. */
char *cm_arena_strndup(cm_arena *a, const char *s, size_t n);
/* Append p to the array *v (n entries, room for *cap); KILN_OK or KILN_ENOMEM. */
int cm_arena_push(cm_arena *a, void ***v, uint32_t *n, uint32_t *cap, void *p);

/* cm_nest.c: whether the root instantiates a component it defines, and the
 * flattening of those instantiations into the root's own index spaces
 * (contract in cm_nest.c). */
bool cm_nest_needed(const cm_component *c);
int cm_nest_flatten(cm_component *root, kiln_err *err);

#endif
