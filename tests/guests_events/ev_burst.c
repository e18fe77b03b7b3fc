/* ev_burst.c - a WASI-CGI guest that writes many keys in one request, for
 * measuring storage-event delivery: QUERY_STRING "ns=NAME&n=N&p=PREFIX" sets
 * PREFIX0..PREFIX(N-1) to "v" in namespace NAME and answers how many writes
 * succeeded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../guests_kv/kiln_imports.h"

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    char ns[65] = "bucket", p[33] = "k";
    int n = 0;
    if (q != NULL) {
        const char *s = strstr(q, "ns=");
        if (s != NULL)
            sscanf(s + 3, "%64[^&]", ns);
        s = strstr(q, "n=");
        if (s != NULL)
            n = atoi(s + 2);
        s = strstr(q, "p=");
        if (s != NULL)
            sscanf(s + 2, "%32[^&]", p);
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char k[64];
        int kl = snprintf(k, sizeof(k), "%s%d", p, i);
        ok += kv_set(ns, (uint32_t)strlen(ns), k, (uint32_t)kl, "v", 1, 0, 0) == 0;
    }
    printf("Content-Type: text/plain\n\n%d\n", ok);
    return 0;
}
