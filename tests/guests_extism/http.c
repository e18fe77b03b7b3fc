/*
 * http.c - Extism http_request: the input is a URL (GET), or "POST <url>
 * <body>"; outputs "<status> <body>". `headers` outputs http_headers() after a GET.
 */
#include "guest.h"

EXPORT("fetch") int32_t fetch(void)
{
    char *in = g_input(NULL);
    const char *method = "GET", *url = in, *body = NULL;
    if (strncmp(in, "POST ", 5) == 0) {
        method = "POST";
        url = in + 5;
        char *sp = strchr(url, ' ');
        if (sp != NULL) {
            *sp = '\0';
            body = sp + 1;
        }
    }
    char *req = g_cat("{\"url\":\"", url, "\",\"method\":\"", method,
                      "\",\"headers\":{\"X-Kiln-Test\":\"yes\"}}", NULL);
    xh res = x_http_request(g_alloc_str(req), body ? g_alloc_str(body) : 0);
    char *rb = g_block_str(res);
    char status[24];
    g_utoa((uint64_t)x_http_status_code(), status);
    g_output_str(g_cat(status, " ", rb ? rb : "", NULL));
    return 0;
}

/* http_headers is not in guest.h (only this guest uses it). */
XIMPORT("http_headers") xh x_http_headers(void);

/* `headers`: GET the URL in the input, then output what http_headers gives:
 * the JSON object of the response's headers when the host records them
 * (allow_http_response_headers), else "{}" for the 0 it returns, as the
 * PDKs read it. */
EXPORT("headers") int32_t headers(void)
{
    char *url = g_input(NULL);
    char *req = g_cat("{\"url\":\"", url, "\"}", NULL);
    x_http_request(g_alloc_str(req), 0);
    char *h = g_block_str(x_http_headers());
    g_output_str(h ? h : "{}");
    return 0;
}
