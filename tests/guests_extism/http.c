/*
 * http.c - Extism http_request: the input is a URL (GET), or "POST <url>
 * <body>"; outputs "<status> <body>".
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
