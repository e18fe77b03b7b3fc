/*
 * alloc.c - allocation wrappers with optional failure injection.
 */
#include "base/alloc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_after = -2; /* -2: not read yet, -1: never fail */

static int should_fail(void)
{
    long n = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (n == -2) {
        const char *s = getenv("KILN_FAIL_ALLOC_AFTER");
        n = s ? atol(s) : -1;
        atomic_store(&fail_after, n);
    }
    if (n < 0)
        return 0;
    if (n == 0)
        return 1;
    atomic_fetch_sub(&fail_after, 1);
    return 0;
}

void *kiln_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *kiln_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *kiln_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void kiln_free(void *p)
{
    free(p);
}

char *kiln_strndup(const char *s, size_t n)
{
    char *d = kiln_malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *kiln_strdup(const char *s)
{
    return kiln_strndup(s, strlen(s));
}

void *kiln_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "kiln: out of memory allocating %zu bytes at startup\n", n);
        exit(70);
    }
    return p;
}

void *kiln_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "kiln: out of memory allocating %zu bytes at startup\n", count * size);
        exit(70);
    }
    return p;
}
