/* kv_deep.c - a hostile CGI guest: recurse `depth` levels (from the query
 * string, ?depth=N), then increment "hits" in the SQLite-backed store. Near
 * the end of the guest stack the host call must trap cleanly before the host
 * function runs (it takes the store's writer lock): before guest stacks had
 * guaranteed host headroom, a fault inside kv_incr left the lock held and
 * every worker of the server deadlocked. Answers "deep=N hits=H". */
// kiln-guest-flags: -Wl,-z,stack-size=1048576
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "kiln_imports.h"

static int64_t hits;
static uint64_t checksum;

/* No address-taken locals: the frames are native (wasm locals), not in the
 * shadow stack in linear memory. */
__attribute__((noinline)) static int32_t descend(unsigned n, uint64_t a, uint64_t b, uint64_t c)
{
    if (n == 0)
        return kv_incr("", 0, "hits", 4, 1, &hits);
    uint64_t x = a * 3 + b, y = b ^ (c << 1), z = c + a;
    int32_t rc = descend(n - 1, x, y, z);
    checksum += x ^ y ^ z; /* keeps x, y, z live across the call: no tail call */
    return rc;
}

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    unsigned depth = 0;
    if (q && strncmp(q, "depth=", 6) == 0)
        depth = (unsigned)strtoul(q + 6, NULL, 10);
    int32_t rc = descend(depth, depth, 2, 3);
    if (rc != 0) {
        printf("Status: 500 KV Error\nContent-Type: text/plain\n\nkv_incr failed: %d\n", rc);
        return 0;
    }
    printf("Content-Type: text/plain\n\ndeep=%u hits=%lld sum=%llu\n", depth, (long long)hits,
           (unsigned long long)checksum);
    return 0;
}
