/* kv_counter.c - a CGI guest whose state lives in the host: every request
 * increments "hits" in the function's private namespace and answers
 * "hits=N". Run in fresh instances, the count still grows, and with the
 * SQLite backend it survives a server restart. */
#include <stdio.h>

#include "kiln_imports.h"

int main(void)
{
    int64_t n = 0;
    int32_t rc = kv_incr("", 0, "hits", 4, 1, &n);
    if (rc != 0) {
        printf("Status: 500 KV Error\nContent-Type: text/plain\n\nkv_incr failed: %d\n", rc);
        return 0;
    }
    printf("Content-Type: text/plain\n\nhits=%lld\n", (long long)n);
    return 0;
}
