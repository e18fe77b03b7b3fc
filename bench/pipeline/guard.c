/*
 * guard.c - the access validator of bench/pipeline/run.sh (Otoroshi kind
 * `access`): allows the request when its header `x-role` is `admin`
 * ({"result": true}), denies it otherwise ({"result": false, "error":
 * {"message": "admins only", "status": 403}}). Built like the test guests
 * (tests/guests_extism: guest.h for the Extism imports, pl_json.h to read the
 * context document).
 */
#include "pl_json.h"

EXPORT("access") int32_t access(void)
{
    char *in = g_input(NULL);
    char *role = j_str(j_path(in, "request", "headers", "x-role", NULL));
    if (role != NULL && strcmp(role, "admin") == 0)
        g_output_str("{\"result\":true}");
    else
        g_output_str("{\"result\":false,\"error\":{\"message\":\"admins only\",\"status\":403}}");
    return 0;
}
