/* ev_handler.c - a WASI-CGI guest that handles storage events through the
 * JSON event ABI (docs/internals/events.md) and records what it received in
 * the namespace named by env OUT_NS, for tests/integration/test_events.sh:
 *   last:<key>  the request body (the event's JSON) of the key's last event
 *   hdr:<key>   "<Kiln-Event-Type header> <Kiln-Event-Id> <Kiln-Event-Attempt>"
 *   log:<key>   "<type>=<decoded payload>;" appended per event (order check)
 * Env FAIL_FIRST=N answers 500 to attempts 1..N of every event; SLEEP_MS=M
 * sleeps M ms first (a slow handler: its fiber waits, not the thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../guests_kv/kiln_imports.h"

static char body[1 << 20];

/* The string value of "name":"..." in the body (no escapes in tests). */
static int json_str(const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", name);
    const char *p = strstr(body, pat);
    if (p == NULL)
        return -1;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (e == NULL || (size_t)(e - p) >= cap)
        return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return (int)(e - p);
}

static long json_num(const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", name);
    const char *p = strstr(body, pat);
    return p ? atol(p + strlen(pat)) : -1;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static size_t b64dec(const char *in, char *out)
{
    size_t o = 0;
    unsigned v = 0, bits = 0;
    for (; *in && *in != '='; in++) {
        int d = b64val(*in);
        if (d < 0)
            break;
        v = (v << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((v >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return o;
}

static void put(const char *ns, const char *k, const char *v, size_t vl)
{
    kv_set(ns, (uint32_t)strlen(ns), k, (uint32_t)strlen(k), v, (uint32_t)vl, 0, 0);
}

int main(void)
{
    size_t n = fread(body, 1, sizeof(body) - 1, stdin);
    body[n] = '\0';
    const char *ns = getenv("OUT_NS");
    const char *ff = getenv("FAIL_FIRST"), *sl = getenv("SLEEP_MS");
    if (ns == NULL)
        ns = "out";
    if (sl != NULL)
        usleep((useconds_t)atol(sl) * 1000);
    long attempt = json_num("attempt");
    if (ff != NULL && attempt <= atol(ff)) {
        printf("Status: 500 Failing\nContent-Type: text/plain\n\nfailing on purpose, attempt %ld\n",
               attempt);
        return 0;
    }
    static char key[1024], type[32], pl[1 << 16], dec[1 << 16], k[1100], rec[1 << 17];
    if (json_str("key", key, sizeof(key)) < 0)
        json_str("key_base64", key, sizeof(key));
    json_str("event_type", type, sizeof(type));
    json_str("payload", pl, sizeof(pl));
    b64dec(pl, dec);
    snprintf(k, sizeof(k), "last:%s", key);
    put(ns, k, body, n);
    const char *ht = getenv("HTTP_KILN_EVENT_TYPE"), *hi = getenv("HTTP_KILN_EVENT_ID"),
               *ha = getenv("HTTP_KILN_EVENT_ATTEMPT");
    snprintf(rec, sizeof(rec), "%s %s %s", ht ? ht : "-", hi ? hi : "-", ha ? ha : "-");
    snprintf(k, sizeof(k), "hdr:%s", key);
    put(ns, k, rec, strlen(rec));
    /* Append to the key's log: events of one key never run at once. */
    snprintf(k, sizeof(k), "log:%s", key);
    uint32_t len = 0;
    size_t have = 0;
    if (kv_get(ns, (uint32_t)strlen(ns), k, (uint32_t)strlen(k), rec, sizeof(rec) - 1, &len) >= 0)
        have = len;
    have += (size_t)snprintf(rec + have, sizeof(rec) - have, "%s=%s;", type, dec);
    put(ns, k, rec, have);
    kv_incr(ns, (uint32_t)strlen(ns), "count", 5, 1, &(int64_t){0});
    printf("Content-Type: text/plain\n\nok\n");
    return 0;
}
