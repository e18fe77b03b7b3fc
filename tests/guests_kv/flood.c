/* flood.c - a CGI guest that tries to make the host allocate without bound,
 * for tests/integration/test_kv.sh:
 *   op=fill  n=COUNT size=BYTES [ns=NAME] [from=K]: kv_set keys
 *            f<K>..f<K+COUNT-1> (K default 0) with values of BYTES bytes
 *            until one fails; answers
 *            "stored=<k> rc=<code of the first failure, or 0>"
 *   op=log   n=LINES size=BYTES: kiln.log (warn) LINES lines of BYTES bytes,
 *            then the same on stderr; answers "logged=<LINES> rc=<last code>"
 * Either way the guest itself keeps answering: the point is that the host
 * stays bounded and the request still succeeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_imports.h"

static long param(const char *q, const char *name, long def)
{
    size_t n = strlen(name);
    for (const char *p = q; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == '=')
            return atol(p + n + 1);
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return def;
}

static const char *sparam(const char *q, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = q; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char *v = p + n + 1, *e = strchr(v, '&');
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= cap)
                len = cap - 1;
            memcpy(buf, v, len);
            buf[len] = '\0';
            return buf;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    buf[0] = '\0';
    return buf;
}

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    char op[16], ns[80];
    sparam(q, "op", op, sizeof(op));
    sparam(q, "ns", ns, sizeof(ns));
    long count = param(q, "n", 10), size = param(q, "size", 100), from = param(q, "from", 0);
    char *v = malloc((size_t)size + 1);
    if (v == NULL) {
        printf("Status: 500 No Memory\n\nguest malloc failed\n");
        return 0;
    }
    memset(v, 'x', (size_t)size);
    printf("Content-Type: text/plain\n\n");
    if (strcmp(op, "fill") == 0) {
        long k = 0;
        int32_t rc = 0;
        for (; k < count; k++) {
            char key[32];
            int kl = snprintf(key, sizeof(key), "f%ld", from + k);
            rc = kv_set(ns, (uint32_t)strlen(ns), key, (uint32_t)kl, v, (uint32_t)size, 0, 0);
            if (rc < 0)
                break;
        }
        printf("stored=%ld rc=%d\n", k, rc);
    } else if (strcmp(op, "log") == 0) {
        int32_t rc = 0;
        for (long i = 0; i < count; i++)
            rc = klog(3, v, (uint32_t)size);
        for (long i = 0; i < count; i++) {
            fwrite(v, 1, (size_t)size, stderr);
            fputc('\n', stderr);
        }
        printf("logged=%ld rc=%d\n", count, rc);
    } else {
        printf("unknown op\n");
    }
    return 0;
}
