/*
 * pl_resp.c - an Otoroshi response transformer (`transform_response`) for
 * test_pipeline.sh, driven by its plugin config and the request:
 *   header x-resp-error: TEXT -> replacement: {"error": true, "status":
 *                             config.error_status (if any), "headers":
 *                             {"Content-Type": "text/plain"}, "body_str":
 *                             "replaced: TEXT"}
 *   config status          -> output as given (absent: not output at all)
 *   config headers         -> output as given (replaces the header map)
 *   config add_headers     -> "headers": otoroshi_response.headers plus these
 *                             plus x-orig-status (the status it was shown)
 *   config body_str, body, body_json, body_base64, body_bytes -> output as given
 *   config cookies         -> output as given (also in the x-resp-error answer)
 *   config show_cookies: true -> "headers": otoroshi_response.headers plus
 *                             x-orig-cookies (the cookies list it was shown,
 *                             as compact JSON text)
 *   config wrap: true      -> body_json {"status": <backend status>, "body":
 *                             "<backend body as text>"} (from
 *                             response_body_bytes)
 * Config `reply` outputs a fixed text.
 */
#include "pl_json.h"

EXPORT("transform_response") int32_t transform_response(void)
{
    char *in = g_input(NULL);
    if (pl_reply(in))
        return 0;
    const char *cfg = j_get(in, "config");
    const char *oresp = j_get(in, "otoroshi_response");
    char *m = "";
    char *rerr = j_str(j_path(in, "request", "headers", "x-resp-error", NULL));
    if (rerr != NULL) {
        pl_member(&m, "error", "true");
        pl_member(&m, "status", j_raw(j_get(cfg, "error_status")));
        pl_member(&m, "headers", "{\"Content-Type\":\"text/plain\"}");
        pl_member(&m, "body_str", j_quote(g_cat("replaced: ", rerr, NULL)));
        pl_member(&m, "cookies", j_raw(j_get(cfg, "cookies")));
        g_output_str(g_cat("{", m, "}", NULL));
        return 0;
    }
    pl_member(&m, "status", j_raw(j_get(cfg, "status")));
    pl_member(&m, "headers", j_raw(j_get(cfg, "headers")));
    pl_member(&m, "cookies", j_raw(j_get(cfg, "cookies")));
    if (j_true(j_get(cfg, "show_cookies"))) {
        char *extra = "";
        char *ck = j_raw(j_get(oresp, "cookies"));
        pl_member(&extra, "x-orig-cookies", j_quote(ck ? ck : "absent"));
        pl_member(&m, "headers", j_merge(j_get(oresp, "headers"), extra));
    }
    const char *add = j_get(cfg, "add_headers");
    if (add != NULL) {
        char *inner = j_raw(add);
        inner[strlen(inner) - 1] = '\0';
        char *extra = g_cat(inner + 1, NULL);
        char *st = j_raw(j_get(oresp, "status"));
        pl_member(&extra, "x-orig-status", j_quote(st ? st : "none"));
        pl_member(&m, "headers", j_merge(j_get(oresp, "headers"), extra));
    }
    static const char *const bodies[] = {"body_str", "body", "body_json", "body_base64",
                                         "body_bytes"};
    for (unsigned i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        pl_member(&m, bodies[i], j_raw(j_get(cfg, bodies[i])));
    if (j_true(j_get(cfg, "wrap"))) {
        size_t n;
        char *b = j_bytes(j_get(in, "response_body_bytes"), &n);
        char *st = j_raw(j_get(oresp, "status"));
        pl_member(&m, "body_json", g_cat("{\"status\":", st ? st : "null", ",\"body\":",
                                         b ? j_quote(b) : "null", "}", NULL));
    }
    g_output_str(g_cat("{", m, "}", NULL));
    return 0;
}
