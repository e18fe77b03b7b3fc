/*
 * alloc.h - the one allocation entry point. Everything sized by a guest or a
 * client goes through kiln_malloc & co. and handles NULL; kiln_xmalloc is for
 * startup-sized allocations only and exits with a message on failure.
 * Allocation failures can be injected for tests (KILN_FAIL_ALLOC_AFTER=N in
 * the environment fails the N+1th allocation and every one after it).
 */
#ifndef KILN_BASE_ALLOC_H
#define KILN_BASE_ALLOC_H

#include <stddef.h>

void *kiln_malloc(size_t n);
void *kiln_calloc(size_t count, size_t size);
void *kiln_realloc(void *p, size_t n);
void kiln_free(void *p);
char *kiln_strdup(const char *s);
char *kiln_strndup(const char *s, size_t n);
void *kiln_xmalloc(size_t n);
void *kiln_xcalloc(size_t count, size_t size);

#endif
