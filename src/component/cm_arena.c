/*
 * cm_arena.c - the bump allocator behind a component tree (see cm_int.h).
 */
#include <string.h>

#include "base/alloc.h"
#include "component/cm_int.h"

#define CM_BLOCK ((size_t)64 << 10)

typedef struct cm_block {
    struct cm_block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} cm_block;

struct cm_arena {
    cm_block *head;
    size_t total;
};

cm_arena *cm_arena_new(void)
{
    return kiln_calloc(1, sizeof(cm_arena));
}

void cm_arena_free(cm_arena *a)
{
    if (a == NULL)
        return;
    for (cm_block *b = a->head, *next; b != NULL; b = next) {
        next = b->next;
        kiln_free(b);
    }
    kiln_free(a);
}

void *cm_arena_alloc(cm_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (n > CM_MAX_ARENA || a->total > CM_MAX_ARENA - n)
        return NULL;
    cm_block *b = a->head;
    if (b == NULL || b->size - b->used < n) {
        size_t size = n > CM_BLOCK / 2 ? n : CM_BLOCK;
        b = kiln_malloc(sizeof(cm_block) + size);
        if (b == NULL)
            return NULL;
        b->size = size;
        b->used = 0;
        /* A big one-off block goes behind the head so the head's free room
         * keeps serving small allocations. */
        if (a->head != NULL && size > CM_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

char *cm_arena_strndup(cm_arena *a, const char *s, size_t n)
{
    char *p = cm_arena_alloc(a, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int cm_arena_push(cm_arena *a, void ***v, uint32_t *n, uint32_t *cap, void *p)
{
    if (*n == *cap) {
        uint32_t ncap = *cap == 0 ? 8 : *cap * 2;
        void **nv = cm_arena_alloc(a, (size_t)ncap * sizeof(void *));
        if (nv == NULL)
            return KILN_ENOMEM;
        if (*n > 0)
            memcpy(nv, *v, (size_t)*n * sizeof(void *));
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = p;
    return KILN_OK;
}
