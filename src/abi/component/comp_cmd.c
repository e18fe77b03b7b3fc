/*
 * comp_cmd.c - a wasi:cli/command component served as CGI, exactly as the
 * wasi ABI serves a core WASI command (src/abi/cgi/cgi.c): the request's CGI
 * context (cgi_env.c: RFC 3875 variables and the function's env, the body on
 * stdin, stdout and stderr captured) behind WASI 0.2's CLI interfaces, a
 * fresh component instance, wasi:cli/run called, stderr to the server log,
 * stdout parsed as a CGI response. A non-zero exit (wasi:cli/exit, or run
 * returning err) is a 500 naming the function.
 */
#include <string.h>

#include "abi/cgi/cgi_int.h"
#include "abi/component/comp_int.h"
#include "component/cm_int.h"

int comp_cmd_handle(const kiln_function *fn, const comp_state *s, const kiln_request *req,
                    kiln_response *resp, kiln_err *err)
{
    cgi_env env;
    kiln_wasi *wasi = NULL;
    cm_inst *ci = NULL;
    cm_arena *arena = NULL;
    cm_host host;
    int rc = cgi_env_build(fn, req, &env, err);
    if (rc != KILN_OK)
        return rc;
    rc = cgi_wasi_new(fn, req, &env, s->preopens, s->n_preopens, &wasi, err);
    if (rc == KILN_OK)
        rc = comp_instantiate(fn, s, wasi, &host, &ci, err);
    if (rc == KILN_OK && (arena = cm_arena_new()) == NULL)
        rc = kiln_err_set(err, KILN_ENOMEM, "function '%s': out of memory", fn->name);
    cm_val result;
    memset(&result, 0, sizeof(result));
    if (rc == KILN_OK)
        rc = cm_inst_call(ci, s->entry, NULL, arena, &result, err);
    int code = 0;
    if (rc == KILN_EEXIT)
        code = cm_inst_exit_code(ci);
    else if (rc == KILN_OK && result.kind == CM_RESULT && result.var.index != 0)
        code = 1; /* run returned err: exit status 1, as wasmtime and `kiln run` */
    if (rc == KILN_EEXIT || code != 0) {
        if (code == 0) {
            rc = KILN_OK; /* exit(ok) */
        } else {
            rc = kiln_err_set(err, KILN_EEXIT, "function '%s' exited with code %d", fn->name,
                              code);
            err->trap = KILN_TRAP_EXIT;
            err->exit_code = code;
        }
    } else if (rc == KILN_ETRAP) {
        comp_explain_oom(ci, s, fn, err);
    }
    if (wasi != NULL)
        cgi_wasi_log_stderr(fn, wasi);
    if (rc == KILN_OK)
        rc = cgi_wasi_respond(fn, wasi, resp, err);
    cm_arena_free(arena);
    cm_inst_free(ci);
    kiln_wasi_free(wasi);
    cgi_env_free(&env);
    return rc;
}
