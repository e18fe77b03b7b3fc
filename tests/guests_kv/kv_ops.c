/* kv_ops.c - a CGI guest that runs one kiln.kv_* call chosen by the query
 * string and reports its return code, so the tests can drive every
 * operation, grant and limit from curl:
 *   op=get|set|setnx|del|incr|expire|ttl|list|config|log
 *   ns=NAME (absent = private) key=K val=V ttl=MS n=BYTES (set: a value of
 *   n 'x' bytes) buf=BYTES (get/list buffer size) prefix=P
 * The body is "rc=<code>" followed by the result. A failed set answers
 * 500, so a client can count acknowledged writes by status 200. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_imports.h"

static char *param(const char *q, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = q; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char *v = p + n + 1, *e = strchr(v, '&');
            size_t len = e ? (size_t)(e - v) : strlen(v);
            char *s = malloc(len + 1);
            memcpy(s, v, len);
            s[len] = '\0';
            return s;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return NULL;
}

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    char *op = param(q, "op"), *ns = param(q, "ns"), *key = param(q, "key"),
         *val = param(q, "val"), *ttl = param(q, "ttl"), *nb = param(q, "n"),
         *bufs = param(q, "buf"), *prefix = param(q, "prefix");
    if (op == NULL)
        op = "get";
    if (ns == NULL)
        ns = "";
    if (key == NULL)
        key = "";
    if (prefix == NULL)
        prefix = "";
    uint32_t nsl = (uint32_t)strlen(ns), kl = (uint32_t)strlen(key);
    size_t cap = bufs ? (size_t)atol(bufs) : 65536;
    char *buf = malloc(cap + 1);
    int32_t rc;
    char out[4096] = "";
    if (strcmp(op, "set") == 0 || strcmp(op, "setnx") == 0) {
        size_t vl = val ? strlen(val) : 0;
        char *v = val ? val : "";
        if (nb != NULL) {
            vl = (size_t)atol(nb);
            v = malloc(vl + 1);
            memset(v, 'x', vl);
        }
        rc = kv_set(ns, nsl, key, kl, v, (uint32_t)vl, ttl ? atoll(ttl) : 0,
                    strcmp(op, "setnx") == 0 ? 1 : 0);
    } else if (strcmp(op, "get") == 0) {
        uint32_t len = 0;
        rc = kv_get(ns, nsl, key, kl, buf, (uint32_t)cap, &len);
        if (rc >= 0)
            snprintf(out, sizeof(out), " len=%u val=%.*s", len, rc > 2000 ? 2000 : (int)rc, buf);
        else if (rc == -2)
            snprintf(out, sizeof(out), " need=%u", len);
    } else if (strcmp(op, "del") == 0) {
        rc = kv_delete(ns, nsl, key, kl);
    } else if (strcmp(op, "incr") == 0) {
        int64_t n = 0;
        rc = kv_incr(ns, nsl, key, kl, val ? atoll(val) : 1, &n);
        if (rc == 0)
            snprintf(out, sizeof(out), " n=%lld", (long long)n);
    } else if (strcmp(op, "expire") == 0) {
        rc = kv_expire(ns, nsl, key, kl, ttl ? atoll(ttl) : 0);
    } else if (strcmp(op, "ttl") == 0) {
        int64_t t = 0;
        rc = kv_ttl(ns, nsl, key, kl, &t);
        if (rc == 0)
            snprintf(out, sizeof(out), " ttl=%s", t < 0 ? "none" : t > 0 ? "some" : "zero");
    } else if (strcmp(op, "list") == 0) {
        /* Page through everything with a small buffer; report the keys and
         * how many calls it took. */
        char after[256] = "";
        uint32_t alen = 0, res[2];
        int calls = 0;
        size_t o = 0;
        for (;;) {
            rc = kv_list(ns, nsl, prefix, (uint32_t)strlen(prefix), after, alen, buf,
                         (uint32_t)cap, res);
            calls++;
            if (rc < 0)
                break;
            uint32_t pos = 0;
            for (int i = 0; i < rc; i++) {
                uint32_t l;
                memcpy(&l, buf + pos, 4);
                o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%.*s", o ? "," : " keys=",
                                      (int)l, buf + pos + 4);
                memcpy(after, buf + pos + 4, l);
                alen = l;
                pos += 4 + l;
            }
            if (!res[1] || calls > 100)
                break;
        }
        if (rc == -2)
            o += (size_t)snprintf(out + o, sizeof(out) - o, " need=%u", res[0]);
        snprintf(out + o, sizeof(out) - o, " calls=%d", calls);
        if (rc > 0)
            rc = 0;
    } else if (strcmp(op, "config") == 0) {
        uint32_t len = 0;
        rc = config_get(key, kl, buf, (uint32_t)cap, &len);
        if (rc >= 0)
            snprintf(out, sizeof(out), " val=%.*s", (int)rc, buf);
        else if (rc == -2)
            snprintf(out, sizeof(out), " need=%u", len);
    } else if (strcmp(op, "log") == 0) {
        rc = klog(val ? atoi(val) : 2, key, kl);
    } else {
        printf("Status: 400 Bad Request\nContent-Type: text/plain\n\nunknown op\n");
        return 0;
    }
    if (rc < 0 && (strcmp(op, "set") == 0 || strcmp(op, "setnx") == 0))
        printf("Status: 500 Not Stored\n");
    printf("Content-Type: text/plain\n\nrc=%d%s\n", rc, out);
    return 0;
}
