/*
 * pl_pre_route.c - an Otoroshi pre-route plugin (`pre_route`) for
 * test_pipeline.sh. A request with header `x-stop: TEXT` is answered here:
 * {"error": true, "status": config.status, "headers": config.headers,
 *  <body>} (status and headers only when the config has them), the body
 * written the way config `form` says: "body" (default) or "body_str" ->
 * the text "stopped: TEXT"; "body_json" -> {"stopped": "TEXT"};
 * "body_base64" / "body_bytes" -> "stopped: TEXT" encoded so. Any other
 * request continues ({"error": false}). Config `reply` outputs a fixed text.
 */
#include "pl_json.h"

EXPORT("pre_route") int32_t pre_route(void)
{
    char *in = g_input(NULL);
    if (pl_reply(in))
        return 0;
    char *stop = j_str(j_path(in, "request", "headers", "x-stop", NULL));
    if (stop == NULL) {
        g_output_str("{\"error\":false}");
        return 0;
    }
    const char *cfg = j_get(in, "config");
    const char *form = j_str_or(j_get(cfg, "form"), "body");
    char *text = g_cat("stopped: ", stop, NULL);
    char *m = "";
    pl_member(&m, "error", "true");
    pl_member(&m, "status", j_raw(j_get(cfg, "status")));
    pl_member(&m, "headers", j_raw(j_get(cfg, "headers")));
    if (strcmp(form, "body_json") == 0)
        pl_member(&m, "body_json", g_cat("{\"stopped\":", j_quote(stop), "}", NULL));
    else if (strcmp(form, "body_base64") == 0)
        pl_member(&m, "body_base64", j_quote(j_b64(text, strlen(text))));
    else if (strcmp(form, "body_bytes") == 0)
        pl_member(&m, "body_bytes", j_bytes_text(text, strlen(text)));
    else
        pl_member(&m, form, j_quote(text));
    g_output_str(g_cat("{", m, "}", NULL));
    return 0;
}
