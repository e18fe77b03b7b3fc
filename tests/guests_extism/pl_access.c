/*
 * pl_access.c - an Otoroshi access validator (`access`) for
 * test_pipeline.sh: allows the request iff its header `x-role` equals the
 * plugin config's `role`. Denied: {"result": false, "error": {"message":
 * config.message, "status": config.status}}, each member only when the
 * config has it (so the host's defaults, 403 and "An error occurred", show);
 * config `bare: true` denies with just {"result": false}. Config `reply`
 * (pl_json.h) outputs a fixed text instead.
 */
#include "pl_json.h"

EXPORT("access") int32_t access(void)
{
    char *in = g_input(NULL);
    if (pl_reply(in))
        return 0;
    const char *cfg = j_get(in, "config");
    const char *want = j_str_or(j_get(cfg, "role"), "");
    char *got = j_str(j_path(in, "request", "headers", "x-role", NULL));
    if (got != NULL && strcmp(got, want) == 0) {
        g_output_str("{\"result\":true}");
        return 0;
    }
    if (j_true(j_get(cfg, "bare"))) {
        g_output_str("{\"result\":false}");
        return 0;
    }
    char *err = "";
    pl_member(&err, "message", j_raw(j_get(cfg, "message")));
    pl_member(&err, "status", j_raw(j_get(cfg, "status")));
    g_output_str(g_cat("{\"result\":false,\"error\":{", err, "}}", NULL));
    return 0;
}
