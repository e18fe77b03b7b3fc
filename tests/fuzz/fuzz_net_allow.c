/*
 * fuzz_net_allow.c - the SSRF guard's parsing and matching (src/net/net_allow.c).
 * The input is NUL-separated: a URL, an IP address, then allow-list entries.
 * Besides memory safety it checks properties the guard relies on:
 *   - a parsed URL has scheme http/https, a non-empty lower-case host and a
 *     port of at most 65535;
 *   - an empty allow-list admits no URL, and admits an address only if it is
 *     public;
 *   - a non-public address is admitted only by an entry naming it;
 *   - an IPv4 address embedded in IPv6 (mapped, compatible, NAT64, 6to4) is
 *     classified like the IPv4 address itself, and "[v6]" like "v6".
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "net/net.h"

#define MAX_ENTRIES 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why, const char *a, const char *b)
{
    fprintf(stderr, "fuzz_net_allow: %s: '%s' '%s'\n", why, a, b);
    abort();
}

static void check_embedded(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    const uint8_t *v4 = data + size - 4;
    net_addr_class c4 = net_addr_classify_raw(v4, 4);
    uint8_t a[16];
    /* ::ffff:a.b.c.d */
    memset(a, 0, 16);
    a[10] = a[11] = 0xff;
    memcpy(a + 12, v4, 4);
    if (net_addr_classify_raw(a, 16) != c4)
        fail("mapped address classified apart from its IPv4", "", "");
    /* 64:ff9b::a.b.c.d */
    memset(a, 0, 16);
    a[1] = 0x64;
    a[2] = 0xff;
    a[3] = 0x9b;
    memcpy(a + 12, v4, 4);
    if (net_addr_classify_raw(a, 16) != c4)
        fail("NAT64 address classified apart from its IPv4", "", "");
    /* 2002:aabb:ccdd::/48 */
    memset(a, 0, 16);
    a[0] = 0x20;
    a[1] = 0x02;
    memcpy(a + 2, v4, 4);
    if (net_addr_classify_raw(a, 16) != c4)
        fail("6to4 address classified apart from its IPv4", "", "");
    /* A non-public IPv4 never turns public when written as IPv6 text. */
    char t4[INET_ADDRSTRLEN], t6[INET6_ADDRSTRLEN + 2];
    inet_ntop(AF_INET, v4, t4, sizeof(t4));
    if (net_addr_classify(t4) != c4)
        fail("text and raw IPv4 classified differently", t4, "");
    if (size >= 16) {
        const uint8_t *v6 = data + size - 16;
        t6[0] = '[';
        inet_ntop(AF_INET6, v6, t6 + 1, INET6_ADDRSTRLEN);
        net_addr_class c6 = net_addr_classify_raw(v6, 16);
        if (net_addr_classify(t6 + 1) != c6)
            fail("text and raw IPv6 classified differently", t6 + 1, "");
        strcat(t6, "]");
        if (net_addr_classify(t6) != c6)
            fail("[v6] and v6 classified differently", t6, "");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = fuzz_part(data, size, 0);
    char *ip = fuzz_part(data, size, 1);
    char *entries[MAX_ENTRIES];
    size_t n = 0;
    for (; n < MAX_ENTRIES; n++) {
        entries[n] = fuzz_part(data, size, n + 2);
        if (entries[n][0] == '\0') {
            free(entries[n]);
            break;
        }
    }
    const char *const *allow = (const char *const *)entries;

    net_glob_match(n > 0 ? entries[0] : url, ip);
    net_ip_same(url, ip);
    net_addr_class cls = net_addr_classify(ip);
    (void)net_addr_class_name(cls);

    net_url u;
    kiln_err err;
    if (net_url_parse(url, &u, &err) == KILN_OK) {
        if (strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0)
            fail("scheme", url, u.scheme);
        if (u.host[0] == '\0' || u.port > 65535)
            fail("host or port", url, u.host);
        for (const char *c = u.host; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                fail("host not lower-cased", url, u.host);
        if (net_allowed(allow, 0, &u))
            fail("empty allow-list admits a URL", url, "");
        bool any = net_allowed(allow, n, &u);
        bool each = false;
        for (size_t i = 0; i < n; i++)
            each = each || net_allow_entry_match(entries[i], &u);
        if (any != each)
            fail("net_allowed disagrees with its entries", url, "");
        unsigned port = u.port;
        bool pub = cls == NET_ADDR_PUBLIC;
        if (net_addr_allowed(allow, 0, &u, ip, port) != pub)
            fail("empty allow-list: address admitted iff public", ip, "");
        if (!pub && net_addr_allowed(allow, n, &u, ip, port)) {
            /* Some entry must name this address: its host part (without
             * scheme, port, brackets) is the same IP. */
            bool named = false;
            for (size_t i = 0; i < n && !named; i++) {
                char h[NET_HOST_MAX + 40];
                const char *s = strstr(entries[i], "://");
                snprintf(h, sizeof(h), "%s", s ? s + 3 : entries[i]);
                h[strcspn(h, "/")] = '\0';
                named = net_ip_same(h, ip);
                if (!named && h[0] == '[' && strchr(h, ']'))
                    *(strchr(h, ']') + 1) = '\0';
                else if (!named && strchr(h, ':') == strrchr(h, ':') && strchr(h, ':'))
                    *strchr(h, ':') = '\0';
                named = named || net_ip_same(h, ip);
            }
            if (!named)
                fail("non-public address admitted by no entry naming it", ip, url);
        }
    }
    check_embedded(data, size);
    for (size_t i = 0; i < n; i++)
        free(entries[i]);
    free(url);
    free(ip);
    return 0;
}
