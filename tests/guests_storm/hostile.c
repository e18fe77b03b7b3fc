/* hostile.c - the storm's multi-purpose CGI guest (tests/stress/storm.sh):
 * QUERY_STRING "k=KIND&id=N" picks what it does:
 *   echo                answers "echo id=N" (the same module serves normal
 *                       requests between its traps: nothing may carry over)
 *   unreachable, div0, int_overflow, invalid_conversion, oob,
 *   indirect (call_indirect signature mismatch), indirect_null (null element),
 *   indirect_range (index past the table)    trap with that kind
 *   stack               unbounded recursion in guest code
 *   loop                never ends (for a short `timeout`)
 *   oom                 mallocs until refused, then aborts (out of memory)
 *   grow                mallocs until refused, then answers "grow id=N refused"
 *   bigout              writes 1 MiB to stdout (over max_output_bytes)
 *   exit                exit(7)
 *   badout              output without a header block (malformed CGI)
 * Volatile operands keep clang from folding the faulting operation away. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int sink;
static char *volatile keep;

/* Not tail-recursive and free of address-taken locals: one native frame per
 * level, no shadow stack, so the host's guest stack runs out first. */
__attribute__((noinline)) static int recurse(int depth)
{
    if (depth == sink - 1)
        return 0;
    int r = recurse(depth + 1);
    sink = r;
    return r + depth;
}

static int takes_int(int x)
{
    return x + 1;
}

static void param(const char *q, const char *name, char *buf, size_t cap)
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
            return;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
}

static size_t fill_memory(void)
{
    size_t total = 0;
    for (;;) {
        char *p = malloc(64 * 1024);
        if (p == NULL)
            return total;
        p[0] = 1;
        keep = p; /* else clang may elide the unused allocation entirely */
        total += 64 * 1024;
    }
}

int main(void)
{
    char k[32], id[32];
    const char *q = getenv("QUERY_STRING");
    param(q, "k", k, sizeof(k));
    param(q, "id", id, sizeof(id));
    if (strcmp(k, "echo") == 0) {
        printf("Content-Type: text/plain\n\necho id=%s\n", id);
        return 0;
    } else if (strcmp(k, "unreachable") == 0) {
        __builtin_trap();
    } else if (strcmp(k, "div0") == 0) {
        volatile int a = 1, b = 0;
        printf("%d\n", a / b);
    } else if (strcmp(k, "int_overflow") == 0) {
        volatile int a = INT_MIN, b = -1;
        printf("%d\n", a / b);
    } else if (strcmp(k, "invalid_conversion") == 0) {
        volatile double d = __builtin_nan("");
        printf("%d\n", __builtin_wasm_trunc_s_i32_f64(d));
    } else if (strcmp(k, "oob") == 0) {
        volatile uintptr_t addr = 0xfffffff0u;
        printf("%d\n", *(volatile int *)addr);
    } else if (strcmp(k, "indirect") == 0) {
        void (*volatile fp)(void) = (void (*)(void))takes_int;
        fp();
    } else if (strcmp(k, "indirect_null") == 0) {
        void (*volatile fp)(void) = (void (*)(void))0;
        fp();
    } else if (strcmp(k, "indirect_range") == 0) {
        void (*volatile fp)(void) = (void (*)(void))(uintptr_t)0x7ffffff0u;
        fp();
    } else if (strcmp(k, "stack") == 0) {
        sink = 0; /* depth never reaches -1 */
        printf("%d\n", recurse(0));
    } else if (strcmp(k, "loop") == 0) {
        for (;;)
            sink++;
    } else if (strcmp(k, "oom") == 0) {
        fill_memory();
        abort();
    } else if (strcmp(k, "grow") == 0) {
        size_t got = fill_memory();
        printf("Content-Type: text/plain\n\ngrow id=%s refused after %s\n", id,
               got > 0 ? "some" : "none");
        return 0;
    } else if (strcmp(k, "bigout") == 0) {
        static char block[4096];
        memset(block, 'o', sizeof(block));
        printf("Content-Type: text/plain\n\n");
        for (int i = 0; i < 256; i++)
            fwrite(block, 1, sizeof(block), stdout);
        return 0;
    } else if (strcmp(k, "exit") == 0) {
        exit(7);
    } else if (strcmp(k, "badout") == 0) {
        printf("this is not a CGI header block\n");
        return 0;
    } else {
        printf("Status: 400 Bad Request\nContent-Type: text/plain\n\nunknown k=%s\n", k);
        return 0;
    }
    printf("Content-Type: text/plain\n\nhostile: %s did not trap\n", k);
    return 0;
}
