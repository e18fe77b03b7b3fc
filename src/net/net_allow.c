/*
 * net_allow.c - the policy half of outbound HTTP: URL parsing, allow-list
 * entries ("[scheme://]host-glob[:port]") and their globs, and the address
 * classes behind the server-side request forgery guard. Pure functions; no
 * I/O (URL parsing uses libcurl's parser so that Kiln and libcurl agree on
 * what the host of a URL is).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net.h"

/* ---- globs ------------------------------------------------------------------ */

/* Does every '[' have its ']'? (A ']' right after "[" or "[!" is a member.) */
static bool glob_valid(const char *p)
{
    for (; *p; p++) {
        if (*p != '[')
            continue;
        p++;
        if (*p == '!')
            p++;
        if (*p == ']')
            p++;
        while (*p && *p != ']')
            p++;
        if (*p == '\0')
            return false;
    }
    return true;
}

/* Match byte c against the class starting at p ('['); *end is past its ']'. */
static bool class_match(const char *p, unsigned char c, const char **end)
{
    const char *q = p + 1;
    bool neg = false, hit = false, first = true;
    if (*q == '!') {
        neg = true;
        q++;
    }
    while (*q && (*q != ']' || first)) {
        first = false;
        unsigned char lo = (unsigned char)q[0];
        if (q[1] == '-' && q[2] && q[2] != ']') {
            unsigned char hi = (unsigned char)q[2];
            if (c >= lo && c <= hi)
                hit = true;
            q += 3;
        } else {
            if (c == lo)
                hit = true;
            q++;
        }
    }
    *end = *q ? q + 1 : q;
    return hit != neg;
}

bool net_glob_match(const char *pattern, const char *s)
{
    if (!glob_valid(pattern))
        return strcmp(pattern, s) == 0;
    const char *p = pattern, *star_p = NULL, *star_s = NULL;
    while (*s) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            star_p = p;
            star_s = s;
            continue;
        }
        if (*p == '?') {
            p++;
            s++;
            continue;
        }
        if (*p == '[') {
            const char *e;
            if (class_match(p, (unsigned char)*s, &e)) {
                p = e;
                s++;
                continue;
            }
        } else if (*p != '\0' && *p == *s) {
            p++;
            s++;
            continue;
        }
        if (star_p == NULL)
            return false;
        p = star_p;
        s = ++star_s;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* ---- URLs --------------------------------------------------------------------- */

static void lower_copy(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)((src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 : src[i]);
    dst[n] = '\0';
}

int net_url_parse(const char *url, net_url *out, kiln_err *err)
{
    memset(out, 0, sizeof(*out));
    CURLU *u = curl_url();
    if (u == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory parsing a URL");
    char *host = NULL, *scheme = NULL, *port = NULL;
    int rc = KILN_OK;
    /* CURLU_DEFAULT_PORT: the port even when the URL leaves it implicit. */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rc = kiln_err_set(err, KILN_EINVAL, "invalid URL '%.300s'", url);
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        rc = kiln_err_set(err, KILN_EINVAL, "URL '%.300s': only http and https are supported",
                          url);
    } else if (host[0] == '\0' || strlen(host) >= sizeof(out->host)) {
        rc = kiln_err_set(err, KILN_EINVAL, "URL '%.300s': %s", url,
                          host[0] ? "host name too long" : "no host");
    } else {
        lower_copy(out->scheme, scheme, strlen(scheme));
        lower_copy(out->host, host, strlen(host));
        out->port = (unsigned)strtoul(port, NULL, 10);
    }
    curl_free(host);
    curl_free(scheme);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* ---- allow-list entries ----------------------------------------------------------- */

typedef struct entry {
    char scheme[8]; /* "" = http or https */
    char host[NET_HOST_MAX + 2];
    unsigned port; /* 0 = any */
} entry;

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Split an entry into scheme, host glob and port. False if it cannot be
 * understood (it then admits nothing). */
static bool parse_entry(const char *text, entry *e)
{
    memset(e, 0, sizeof(*e));
    char buf[NET_HOST_MAX + 32];
    size_t len = strlen(text);
    if (len == 0 || len >= sizeof(buf))
        return false;
    lower_copy(buf, text, len);
    char *rest = buf;
    char *sep = strstr(buf, "://");
    if (sep != NULL) {
        size_t sl = (size_t)(sep - buf);
        if (sl >= sizeof(e->scheme))
            return false;
        memcpy(e->scheme, buf, sl);
        if (strcmp(e->scheme, "http") != 0 && strcmp(e->scheme, "https") != 0)
            return false;
        rest = sep + 3;
    }
    /* A path after the authority ("https://api.example.com/") is ignored. */
    char *slash = strchr(rest, '/');
    if (slash != NULL)
        *slash = '\0';
    const char *host = rest;
    size_t hl = strlen(rest);
    char *close = rest[0] == '[' ? strchr(rest, ']') : NULL;
    if (close != NULL && memchr(rest, ':', (size_t)(close - rest)) != NULL) {
        /* "[v6]" or "[v6]:port" */
        hl = (size_t)(close - rest) + 1;
        if (close[1] == ':') {
            if (!all_digits(close + 2, strlen(close + 2)))
                return false;
            e->port = (unsigned)strtoul(close + 2, NULL, 10);
        } else if (close[1] != '\0') {
            return false;
        }
    } else {
        char *colon = strrchr(rest, ':');
        if (colon != NULL && strchr(rest, ':') == colon) {
            if (!all_digits(colon + 1, strlen(colon + 1)))
                return false;
            e->port = (unsigned)strtoul(colon + 1, NULL, 10);
            hl = (size_t)(colon - rest);
        } else if (colon != NULL) {
            /* Several colons: an IPv6 literal written without brackets. */
            if (hl + 2 >= sizeof(e->host))
                return false;
            e->host[0] = '[';
            memcpy(e->host + 1, rest, hl);
            e->host[hl + 1] = ']';
            e->host[hl + 2] = '\0';
            return true;
        }
    }
    if (hl == 0 || hl >= sizeof(e->host) || e->port > 65535)
        return false;
    memcpy(e->host, host, hl);
    e->host[hl] = '\0';
    return true;
}

/* Bytes of an IP literal ("1.2.3.4", "[::1]"); 0 if s is not one. */
static size_t ip_bytes(const char *s, uint8_t out[16])
{
    if (inet_pton(AF_INET, s, out) == 1)
        return 4;
    char buf[NET_HOST_MAX];
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        s = buf;
    }
    if (inet_pton(AF_INET6, s, out) == 1)
        return 16;
    return 0;
}

static bool entry_admits(const entry *e, const net_url *u)
{
    if (e->scheme[0] != '\0' && strcmp(e->scheme, u->scheme) != 0)
        return false;
    if (e->port != 0 && e->port != u->port)
        return false;
    uint8_t a[16], b[16];
    size_t la = ip_bytes(e->host, a);
    if (la != 0) {
        /* An address literal: compare addresses, so "[::1]" admits
         * "[0:0::1]" and no glob character can sneak in. */
        size_t lb = ip_bytes(u->host, b);
        return la == lb && memcmp(a, b, la) == 0;
    }
    return net_glob_match(e->host, u->host);
}

bool net_allow_entry_match(const char *text, const net_url *u)
{
    entry e;
    return text != NULL && parse_entry(text, &e) && entry_admits(&e, u);
}

bool net_allowed(const char *const *allow, size_t n, const net_url *u)
{
    for (size_t i = 0; i < n; i++)
        if (net_allow_entry_match(allow[i], u))
            return true;
    return false;
}

/* ---- addresses ------------------------------------------------------------------- */

static net_addr_class classify4(const uint8_t *a)
{
    if (a[0] == 0)
        return NET_ADDR_UNSPECIFIED;
    if (a[0] == 127)
        return NET_ADDR_LOOPBACK;
    if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
        return NET_ADDR_PRIVATE;
    if (a[0] == 169 && a[1] == 254)
        return NET_ADDR_LINK_LOCAL;
    if (a[0] == 100 && (a[1] & 0xc0) == 64)
        return NET_ADDR_SHARED;
    if (a[0] >= 224 && a[0] < 240)
        return NET_ADDR_MULTICAST;
    if (a[0] >= 240)
        return NET_ADDR_RESERVED; /* 240/4 and 255.255.255.255 */
    /* IETF protocol assignments, the three documentation nets, benchmarking. */
    if ((a[0] == 192 && a[1] == 0 && (a[2] == 0 || a[2] == 2)) ||
        (a[0] == 198 && a[1] == 51 && a[2] == 100) || (a[0] == 203 && a[1] == 0 && a[2] == 113) ||
        (a[0] == 198 && (a[1] & 0xfe) == 18))
        return NET_ADDR_RESERVED;
    return NET_ADDR_PUBLIC;
}

static bool zero(const uint8_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != 0)
            return false;
    return true;
}

static net_addr_class classify6(const uint8_t *a)
{
    if (zero(a, 15) && a[15] == 0)
        return NET_ADDR_UNSPECIFIED;
    if (zero(a, 15) && a[15] == 1)
        return NET_ADDR_LOOPBACK;
    /* Addresses that carry an IPv4 address are as private as that address:
     * ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated),
     * 64:ff9b::a.b.c.d (NAT64), 2002:aabb:ccdd:: (6to4). */
    if (zero(a, 10) && a[10] == 0xff && a[11] == 0xff)
        return classify4(a + 12);
    if (zero(a, 12))
        return classify4(a + 12);
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    if (memcmp(a, nat64, 12) == 0)
        return classify4(a + 12);
    if (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0x00 &&
        a[5] == 0x01)
        return NET_ADDR_PRIVATE; /* 64:ff9b:1::/48, local-use NAT64 */
    if (a[0] == 0x20 && a[1] == 0x02)
        return classify4(a + 2);
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x00 && a[3] == 0x00) {
        /* Teredo: the client's IPv4 address, inverted, in the last 4 bytes. */
        uint8_t v4[4] = {(uint8_t)~a[12], (uint8_t)~a[13], (uint8_t)~a[14], (uint8_t)~a[15]};
        net_addr_class c = classify4(v4);
        return c != NET_ADDR_PUBLIC ? c : classify4(a + 4);
    }
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return NET_ADDR_LINK_LOCAL;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return NET_ADDR_PRIVATE; /* site-local, deprecated */
    if ((a[0] & 0xfe) == 0xfc)
        return NET_ADDR_PRIVATE; /* unique local */
    if (a[0] == 0xff)
        return NET_ADDR_MULTICAST;
    if ((a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) ||
        (a[0] == 0x01 && zero(a + 1, 7)))
        return NET_ADDR_RESERVED; /* documentation, discard-only */
    return NET_ADDR_PUBLIC;
}

net_addr_class net_addr_classify_raw(const uint8_t *a, size_t len)
{
    if (len == 4)
        return classify4(a);
    if (len == 16)
        return classify6(a);
    return NET_ADDR_INVALID;
}

net_addr_class net_addr_classify(const char *ip)
{
    uint8_t a[16];
    size_t n = ip ? ip_bytes(ip, a) : 0;
    return n ? net_addr_classify_raw(a, n) : NET_ADDR_INVALID;
}

const char *net_addr_class_name(net_addr_class c)
{
    switch (c) {
    case NET_ADDR_PUBLIC:
        return "public";
    case NET_ADDR_LOOPBACK:
        return "loopback";
    case NET_ADDR_PRIVATE:
        return "private";
    case NET_ADDR_LINK_LOCAL:
        return "link-local";
    case NET_ADDR_SHARED:
        return "shared (carrier-grade NAT)";
    case NET_ADDR_UNSPECIFIED:
        return "unspecified";
    case NET_ADDR_MULTICAST:
        return "multicast";
    case NET_ADDR_RESERVED:
        return "reserved";
    case NET_ADDR_INVALID:
        break;
    }
    return "not an IP address";
}

bool net_ip_same(const char *x, const char *y)
{
    uint8_t a[16], b[16];
    size_t la = ip_bytes(x, a);
    return la != 0 && ip_bytes(y, b) == la && memcmp(a, b, la) == 0;
}

bool net_addr_allowed(const char *const *allow, size_t n, const net_url *u, const char *ip,
                      unsigned port)
{
    uint8_t a[16], b[16];
    size_t la = ip ? ip_bytes(ip, a) : 0;
    if (la == 0)
        return false;
    if (net_addr_classify_raw(a, la) == NET_ADDR_PUBLIC)
        return true;
    for (size_t i = 0; i < n; i++) {
        entry e;
        if (allow[i] == NULL || !parse_entry(allow[i], &e))
            continue;
        size_t lb = ip_bytes(e.host, b);
        if (lb != la || memcmp(a, b, la) != 0)
            continue;
        if (e.scheme[0] != '\0' && strcmp(e.scheme, u->scheme) != 0)
            continue;
        if (e.port != 0 && e.port != port)
            continue;
        return true;
    }
    return false;
}
