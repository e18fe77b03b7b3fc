/*
 * memwalk.c - CPU guest: a dependent random walk (read-modify-write) over a
 * 16 MiB heap array; each index depends on the value just loaded, so it
 * measures memory latency plus the cost of bounds handling per access.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define WORDS (4u << 20) /* 4 Mi x 4 bytes = 16 MiB */
#define STEPS 2000000u

int main(void)
{
    uint32_t *a = malloc(WORDS * sizeof(*a));
    if (a == NULL) {
        fputs("memwalk: out of memory\n", stderr);
        return 1;
    }
    uint32_t x = 2463534242u;
    for (uint32_t i = 0; i < WORDS; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        a[i] = x;
    }
    uint32_t idx = 0, acc = 0;
    for (uint32_t s = 0; s < STEPS; s++) {
        uint32_t v = a[idx];
        acc += v;
        a[idx] = v * 2654435761u + s;
        idx = (v ^ acc) & (WORDS - 1);
    }
    printf("memwalk checksum %08x\n", (unsigned)acc);
    free(a);
    return 0;
}
