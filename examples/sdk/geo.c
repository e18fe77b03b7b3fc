/*
 * geo.c - the geolocation cache: GET /search?q=<address> answers with the
 * upstream address API's JSON for q. Answers are cached in the function's
 * private key-value namespace, so only the first request for a given q pays
 * the upstream round trip; X-Cache says which path served it.
 *
 *   functions:
 *     geo:
 *       module: geo.wasm
 *       allowed_hosts: ["https://api-adresse.data.gouv.fr"]
 *       config: {upstream: "https://api-adresse.data.gouv.fr/search/", ttl_ms: "3600000"}
 *   routes: {/search: geo}
 */
#include "kiln.h"

/* Percent-encode s for a query value. */
static char *url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    for (; out != NULL && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    if (out != NULL)
        *o = '\0';
    return out;
}

int main(void)
{
    char *q = kiln_query_param("q");
    if (q == NULL || q[0] == '\0') {
        kiln_respond(400, "text/plain", "missing ?q=\n", 12);
        return 0;
    }
    char key[1100];
    snprintf(key, sizeof(key), "q:%.1000s", q);

    char *cached = NULL;
    size_t len = 0;
    if (kiln_kv_get(NULL, key, &cached, &len) == KILN_OK) {
        kiln_set_header("Content-Type", "application/json");
        kiln_set_header("X-Cache", "hit");
        kiln_write(cached, len);
        free(cached);
        free(q);
        return 0;
    }

    char *upstream = kiln_config("upstream");
    char *ttl = kiln_config("ttl_ms");
    char *enc = url_encode(q);
    char url[4096];
    snprintf(url, sizeof(url), "%s?q=%s", upstream ? upstream : "", enc ? enc : "");
    kiln_http_response r;
    int st = kiln_http("GET", url, "Accept: application/json", NULL, 0, 0, KILN_HTTP_FOLLOW, &r);
    if (st != 200) {
        kiln_log(KILN_LOG_WARN, "upstream %s: %s", url,
                 st < 0 ? kiln_http_error() : "unexpected status");
        kiln_status(502);
        if (st < 0)
            kiln_printf("upstream failed: %s\n", kiln_http_error());
        else
            kiln_printf("upstream answered %d\n", st);
    } else {
        int rc = kiln_kv_set(NULL, key, r.body, r.body_len, ttl ? atoll(ttl) : 0, 0);
        if (rc < 0)
            kiln_log(KILN_LOG_WARN, "not cached: %s", kiln_strerror(rc));
        kiln_set_header("Content-Type", "application/json");
        kiln_set_header("X-Cache", "miss");
        kiln_write(r.body, r.body_len);
    }
    kiln_http_response_free(&r);
    free(upstream);
    free(ttl);
    free(enc);
    free(q);
    return 0;
}
