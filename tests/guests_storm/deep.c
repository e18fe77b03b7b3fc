/* deep.c - a storm guest that recurses in guest code, then calls the host at
 * the bottom: QUERY_STRING "op=OP&depth=D&id=N", OP one of
 *   kv     kiln.kv_incr on the private namespace
 *   write  WASI fd_write on stdout (write(2), no stdio buffering)
 *   log    kiln.log
 * At any depth the answer is either "deep op=OP depth=D id=N rc=0" or a
 * clean 500 "call stack exhausted" (with a small max_stack the bottom is
 * reached a thousand-odd levels down): a host function must never start
 * without the stack it needs, nor fault inside with a lock held. */
// kiln-guest-flags: -Wl,-z,stack-size=1048576
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln_imports.h"

static int op;
static uint64_t checksum;
static int64_t hits;
static const char header[] = "Content-Type: text/plain\n\n";

/* No address-taken locals: the frames are native (wasm locals). */
__attribute__((noinline)) static int32_t descend(unsigned n, uint64_t a, uint64_t b, uint64_t c)
{
    if (n == 0) {
        if (op == 0)
            return kv_incr("", 0, "hits", 4, 1, &hits);
        if (op == 1)
            return write(1, header, sizeof(header) - 1) == (ssize_t)(sizeof(header) - 1) ? 0 : -1;
        return klog(2, "deep", 4);
    }
    uint64_t x = a * 3 + b, y = b ^ (c << 1), z = c + a;
    int32_t rc = descend(n - 1, x, y, z);
    checksum += x ^ y ^ z; /* keeps x, y, z live across the call: no tail call */
    return rc;
}

static const char *param(const char *q, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    buf[0] = '\0';
    for (const char *p = q; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char *v = p + n + 1, *e = strchr(v, '&');
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= cap)
                len = cap - 1;
            memcpy(buf, v, len);
            buf[len] = '\0';
            break;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return buf;
}

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    char o[16], d[16], id[32];
    param(q, "op", o, sizeof(o));
    param(q, "depth", d, sizeof(d));
    param(q, "id", id, sizeof(id));
    op = strcmp(o, "kv") == 0 ? 0 : strcmp(o, "write") == 0 ? 1 : 2;
    unsigned depth = (unsigned)strtoul(d, NULL, 10);
    int32_t rc = descend(depth, depth, 2, 3);
    if (op != 1)
        fwrite(header, 1, sizeof(header) - 1, stdout);
    printf("deep op=%s depth=%u id=%s rc=%d\n", o, depth, id, (int)rc);
    return 0;
}
