/*
 * edge.c - the memory-block edge cases real plugins depend on
 * (extism-abi.md §2.2, §12), checked from inside a guest. `check` outputs
 * "ok" or the first failed expectation. `echo8` echoes the input 8 bytes at
 * a time with input_load_u64 only, as naive plugins do (short tails vanish).
 */
#include "guest.h"

static char *failure;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond) && failure == NULL) {                                                          \
            char line[24];                                                                         \
            g_utoa(__LINE__, line);                                                                \
            failure = g_cat("line ", line, ": ", #cond, NULL);                                     \
        }                                                                                          \
    } while (0)

EXPORT("check") int32_t check(void)
{
    uint64_t n = x_input_length();
    EXPECT(x_length(x_input_offset()) == n);
    EXPECT(x_alloc(0) == 0);
    EXPECT(x_length(0) == 0);
    xh a = x_alloc(5), b = x_alloc(5);
    EXPECT(a != 0 && b != 0 && a != b);
    EXPECT(x_length(a) == 5 && x_length_unsafe(a) == 5);
    EXPECT(x_length(a + 1) == 0);
    EXPECT(x_length(0xFFFFFFFFFFFFFFFFull) == 0);
    /* 8-byte accesses at a short block and a byte at h + 8 neither trap nor
     * touch the neighbour. */
    x_store_u64(b, 0x1122334455667788ull);
    x_store_u64(a, 0xAABBCCDDEEFF0011ull);
    x_store_u8(a + 8, 0x42);
    EXPECT(x_load_u64(a) == 0xAABBCCDDEEFF0011ull);
    EXPECT(x_load_u64(b) == 0x1122334455667788ull);
    EXPECT(x_load_u8(a + 8) == 0x42);
    /* Out of range: 0, no trap. */
    EXPECT(x_load_u64(0) == 0 && x_load_u8(3) == 0);
    EXPECT(x_load_u64(0xFFFFFFFFFFFFFFF0ull) == 0);
    x_store_u64(0xFFFFFFFFFFFFFFF0ull, 1);
    /* Little-endian. */
    EXPECT(x_load_u8(b) == 0x88);
    /* Freed blocks have length 0; double free is a no-op. */
    x_free(a);
    EXPECT(x_length(a) == 0);
    x_free(a);
    x_free(a + 1);
    x_free(0);
    EXPECT(x_length(b) == 5);
    /* Short input: input_load_u64 is 0 unless all 8 bytes are inside. */
    if (n > 0 && n < 8)
        EXPECT(x_input_load_u64(0) == 0);
    EXPECT(x_input_load_u8(n) == 0);
    /* Interior output_set, as the C PDK does. */
    xh o = g_alloc_str("xxok");
    x_output_set(o + 2, 2);
    /* A host-consumed key is dead: length 0. */
    xh k = g_alloc_str("greeting");
    x_config_get(k);
    EXPECT(x_length(k) == 0);
    /* Freeing the input empties it. */
    if (n > 0) {
        x_free(x_input_offset());
        EXPECT(x_input_length() == 0);
    }
    if (failure != NULL)
        return g_error(failure);
    return 0;
}

EXPORT("echo8") int32_t echo8(void)
{
    uint64_t n = x_input_length();
    xh h = x_alloc(n);
    for (uint64_t i = 0; i < n; i += 8)
        x_store_u64(h + i, x_input_load_u64(i));
    x_output_set(h, n);
    return 0;
}
