/*
 * kiln_http.c - an Extism plugin that uses Kiln's own host module for
 * outbound HTTP (kiln.http_request, kiln.http_response_body, kiln.http_error)
 * instead of Extism's http_request: `fetch` GETs the URL in its input and
 * outputs "<status> <body>", or "error <code>: <reason>". test_net.sh serves
 * it to check that the "kiln" module works under the Extism ABI too.
 */
#include "guest.h"

#define KIMPORT(name) __attribute__((import_module("kiln"), import_name(name)))
KIMPORT("http_request")
int32_t k_http_request(const char *m, uint32_t ml, const char *u, uint32_t ul, const char *h,
                       uint32_t hl, const void *b, uint32_t bl, uint32_t timeout_ms,
                       uint32_t flags);
KIMPORT("http_response_body") int32_t k_http_response_body(void *buf, uint32_t len, uint32_t *out);
KIMPORT("http_error") int32_t k_http_error(char *buf, uint32_t len, uint32_t *out);

EXPORT("fetch") int32_t fetch(void)
{
    uint64_t n;
    char *url = g_input(&n);
    int32_t st = k_http_request("GET", 3, url, (uint32_t)n, "", 0, "", 0, 0, 0);
    char num[24];
    if (st < 0) {
        static char why[1024];
        uint32_t wl = 0;
        int32_t r = k_http_error(why, sizeof(why) - 1, &wl);
        why[r > 0 ? r : 0] = '\0';
        g_utoa((uint64_t)-st, num);
        g_output_str(g_cat("error -", num, ": ", why, NULL));
        return 0;
    }
    uint32_t len = 0;
    k_http_response_body(NULL, 0, &len);
    char *body = malloc(len + 1);
    k_http_response_body(body, len, &len);
    body[len] = '\0';
    g_utoa((uint64_t)st, num);
    g_output_str(g_cat(num, " ", body, NULL));
    return 0;
}
