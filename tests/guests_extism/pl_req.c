/*
 * pl_req.c - an Otoroshi request transformer (`transform_request`) for
 * test_pipeline.sh, driven by its plugin config and the request:
 *   header x-reject: TEXT  -> answer directly: {"error": true, "status":
 *                             config.reject_status (if any), "headers":
 *                             {"Content-Type": "text/plain", "X-Rejected":
 *                             "pl_req"}, "body_str": "rejected: TEXT"}
 *   config method, url     -> output as given (header x-url overrides url)
 *   config headers         -> output as given (replaces the header map)
 *   config add_headers     -> "headers": otoroshi_request.headers plus these
 *                             plus x-seen-method / x-seen-url (what the
 *                             plugin was shown)
 *   config body_str, body, body_json, body_base64, body_bytes -> output as given
 *   config cookies         -> output as given (also in the x-reject answer)
 *   config upper: true     -> body_bytes = request_body_bytes upper-cased
 * Nothing configured: output {} (the request goes on unchanged). Config
 * `reply` outputs a fixed text.
 */
#include "pl_json.h"

EXPORT("transform_request") int32_t transform_request(void)
{
    char *in = g_input(NULL);
    if (pl_reply(in))
        return 0;
    char *reject = j_str(j_path(in, "request", "headers", "x-reject", NULL));
    const char *cfg = j_get(in, "config");
    char *m = "";
    if (reject != NULL) {
        pl_member(&m, "error", "true");
        pl_member(&m, "status", j_raw(j_get(cfg, "reject_status")));
        pl_member(&m, "headers", "{\"Content-Type\":\"text/plain\",\"X-Rejected\":\"pl_req\"}");
        pl_member(&m, "body_str", j_quote(g_cat("rejected: ", reject, NULL)));
        pl_member(&m, "cookies", j_raw(j_get(cfg, "cookies")));
        g_output_str(g_cat("{", m, "}", NULL));
        return 0;
    }
    const char *oreq = j_get(in, "otoroshi_request");
    pl_member(&m, "method", j_raw(j_get(cfg, "method")));
    const char *xurl = j_path(in, "request", "headers", "x-url", NULL);
    pl_member(&m, "url", j_raw(xurl ? xurl : j_get(cfg, "url")));
    pl_member(&m, "headers", j_raw(j_get(cfg, "headers")));
    pl_member(&m, "cookies", j_raw(j_get(cfg, "cookies")));
    const char *add = j_get(cfg, "add_headers");
    if (add != NULL) {
        char *extra = "";
        char *inner = j_raw(add); /* {...} */
        inner[strlen(inner) - 1] = '\0';
        extra = g_cat(inner + 1, NULL);
        pl_member(&extra, "x-seen-method", j_raw(j_get(oreq, "method")));
        pl_member(&extra, "x-seen-url", j_raw(j_get(oreq, "url")));
        pl_member(&m, "headers", j_merge(j_get(oreq, "headers"), extra));
    }
    static const char *const bodies[] = {"body_str", "body", "body_json", "body_base64",
                                         "body_bytes"};
    for (unsigned i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        pl_member(&m, bodies[i], j_raw(j_get(cfg, bodies[i])));
    if (j_true(j_get(cfg, "upper"))) {
        size_t n;
        char *b = j_bytes(j_get(in, "request_body_bytes"), &n);
        if (b == NULL) {
            b = "";
            n = 0;
        }
        for (size_t i = 0; i < n; i++)
            if (b[i] >= 'a' && b[i] <= 'z')
                b[i] = (char)(b[i] - 32);
        pl_member(&m, "body_bytes", j_bytes_text(b, n));
    }
    g_output_str(g_cat("{", m, "}", NULL));
    return 0;
}
