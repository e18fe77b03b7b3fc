/*
 * opa.c - kiln_abi_opa: OPA policies (opa build -t wasm) as access
 * validators in a route's plugin chain, or as a backend answering with the
 * result set. Every evaluation runs in a fresh instance with its own
 * memory (opa_eval.c), on the access-validator context document Otoroshi
 * gives its OPA policies (oto_stage_input), data {}. The decision rule is
 * opa_decide (docs/internals/opa.md).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/opa/opa.h"
#include "abi/otoroshi/otoroshi.h"
#include "base/alloc.h"

static int opa_detect(const kiln_module *m)
{
    /* Above Extism (50): an OPA policy imports nothing of Extism's. */
    return opa_module_is_policy(m) ? 60 : 0;
}

static const kiln_hostfn *opa_hostfns_op(size_t *n)
{
    return opa_hostfns(n);
}

static const char *fn_name(const kiln_function *fn)
{
    return fn->name ? fn->name : "policy";
}

static int opa_prepare(const kiln_function *fn, kiln_module *m, void **state, kiln_err *err)
{
    opa_policy *p = NULL;
    int rc = opa_policy_new(fn_name(fn), m, &fn->limits, &p, err);
    *state = p;
    return rc;
}

static void opa_release(void *state)
{
    opa_policy_free(state);
}

/* The entrypoint a configuration names (`entrypoint`: a name from the
 * policy's entrypoints, or an id), default id 0 as in the OPA SDKs. */
static int resolve_entrypoint(const opa_policy *p, const json_t *v, int32_t *id, kiln_err *err)
{
    char buf[32];
    const char *s;
    if (v == NULL || json_is_null(v)) {
        s = "0";
    } else if (json_is_string(v)) {
        s = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        s = buf;
    } else {
        return kiln_err_set(err, KILN_ECONFIG, "%s: `entrypoint` must be a name or an id",
                            p->name);
    }
    *id = opa_entrypoint_id(p, s);
    if (*id >= 0)
        return KILN_OK;
    char list[500] = "";
    for (size_t i = 0; i < p->n_entrypoints; i++) {
        size_t o = strlen(list);
        snprintf(list + o, sizeof(list) - o, "%s%s (%d)", i ? ", " : "", p->ep_names[i],
                 (int)p->ep_ids[i]);
    }
    return kiln_err_set(err, KILN_ECONFIG, "%s: entrypoint '%s' is not one of the policy's: %s",
                        p->name, s, list);
}

static int entrypoint_from_json(const opa_policy *p, const char *config_json, int32_t *id,
                                kiln_err *err)
{
    json_t *cfg = config_json ? json_loads(config_json, 0, NULL) : NULL;
    int rc = resolve_entrypoint(p, json_is_object(cfg) ? json_object_get(cfg, "entrypoint") : NULL,
                                id, err);
    json_decref(cfg);
    return rc;
}

/* ---- the decision --------------------------------------------------------------- */

static bool status_ok(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 100 && json_integer_value(v) <= 599;
}

bool opa_decide(const char *result_set, size_t len, int *status, char **message)
{
    *status = 403;
    *message = NULL;
    json_t *rs = json_loadb(result_set, len, 0, NULL);
    json_t *r = json_object_get(json_array_get(rs, 0), "result");
    bool allow = json_is_true(r) || json_is_true(json_object_get(r, "allow"));
    if (!allow) {
        const json_t *err = json_object_get(r, "error");
        const json_t *st = json_object_get(r, "status"), *msg = json_object_get(r, "message");
        if (!status_ok(st))
            st = json_object_get(err, "status");
        if (!json_is_string(msg))
            msg = json_object_get(err, "message");
        if (status_ok(st))
            *status = (int)json_integer_value(st);
        const char *text = json_is_string(msg) ? json_string_value(msg)
                           : r == NULL         ? "forbidden by policy (no result)"
                                               : "forbidden by policy";
        *message = kiln_strdup(text);
    }
    json_decref(rs);
    return allow;
}

/* Fill `resp` with the denial: status, {"error": message, "plugin": name}. */
static int deny_response(kiln_response *resp, int status, const char *message, const char *name)
{
    kiln_response_reset(resp);
    resp->status = status;
    json_t *o = json_pack("{s:s, s:s}", "error", message, "plugin", name);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int rc = s ? kiln_response_add_header(resp, "Content-Type", "application/json") : KILN_ENOMEM;
    if (rc == KILN_OK)
        rc = kiln_response_append(resp, s, strlen(s));
    free(s);
    return rc;
}

/* Evaluate on the access-validator document of `st`. */
static int eval_stage(const kiln_function *fn, const opa_policy *p, const kiln_instance_pre *pre,
                      const kiln_plugin *plugin, kiln_stage *st, int32_t ep, char **result,
                      size_t *rlen, kiln_err *err)
{
    size_t in_len = 0;
    char *in = oto_stage_input(fn, plugin, KILN_PHASE_REQUEST, st, &in_len);
    if (in == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory describing the request",
                            p->name);
    int rc = opa_evaluate(p, pre, &fn->limits, fn->host_state, ep, in, in_len, result, rlen, err);
    free(in);
    return rc;
}

static int opa_stage(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                     const kiln_plugin *plugin, kiln_stage_phase phase, kiln_stage *st,
                     int *verdict, kiln_err *err)
{
    const opa_policy *p = state;
    *verdict = KILN_STAGE_CONTINUE;
    if (plugin->kind != KILN_STAGE_ACCESS || phase != KILN_PHASE_REQUEST)
        return kiln_err_set(err, KILN_ECONFIG, "%s: an OPA policy is only an access plugin",
                            p->name);
    int32_t ep;
    int rc = entrypoint_from_json(p, plugin->config_json, &ep, err);
    char *result = NULL;
    size_t rlen = 0;
    if (rc == KILN_OK)
        rc = eval_stage(fn, p, pre, plugin, st, ep, &result, &rlen, err);
    if (rc != KILN_OK)
        return rc;
    int status;
    char *message;
    bool allow = opa_decide(result, rlen, &status, &message);
    kiln_free(result);
    if (!allow) {
        rc = message ? deny_response(kiln_stage_response(st), status, message, p->name)
                     : KILN_ENOMEM;
        kiln_free(message);
        if (rc != KILN_OK)
            return kiln_err_set(err, rc, "%s: cannot build the denial", p->name);
        *verdict = KILN_STAGE_RESPOND;
    }
    return KILN_OK;
}

/* snapshot: true. The image is made in memory at every start: making it
 * costs one instantiation plus parsing "{}", less than keeping a file
 * (snapshot.md §4). */
static int opa_snapshot(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                        kiln_err *err)
{
    opa_policy *p = state;
    int rc = opa_snapshot_build(p, pre, &fn->limits, fn->host_state, err);
    if (rc != KILN_OK)
        return rc;
    kiln_snapshot_info si;
    kiln_snapshot_info_get(p->snap, &si);
    kiln_err_set(err, KILN_OK, "snapshot image built in memory (instantiated, data {} loaded; "
                 "%llu KiB of %llu KiB memory stored)", (unsigned long long)si.image_bytes / 1024,
                 (unsigned long long)si.memory_bytes / 1024);
    return KILN_OK;
}

static const char *opa_stage_export(kiln_stage_kind kind)
{
    return kind == KILN_STAGE_ACCESS ? "" : NULL;
}

/* As a backend: the result set for the request, 200 application/json. The
 * input is the access-validator document of the request as the chain has
 * it (or of the plain request outside a pipeline); the entrypoint comes from
 * the function's config key `entrypoint`. */
static int opa_handle(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                      const kiln_request *req, kiln_response *resp, kiln_err *err)
{
    const opa_policy *p = state;
    json_t *ep_v = NULL;
    for (size_t i = 0; i < fn->n_config; i++)
        if (strcmp(fn->config[i].name, "entrypoint") == 0 && fn->config[i].value != NULL)
            ep_v = json_string(fn->config[i].value);
    int32_t ep;
    int rc = resolve_entrypoint(p, ep_v, &ep, err);
    json_decref(ep_v);
    if (rc != KILN_OK)
        return rc;
    kiln_stage *st = kiln_stage_current(), *own = NULL;
    if (st == NULL) {
        kiln_stage_info info = {"", NULL, fn_name(fn), 404, NULL};
        if (kiln_stage_new(req, &info, resp->max_body, &own) != KILN_OK)
            return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", p->name);
        st = own;
    }
    kiln_plugin plugin = {fn_name(fn), KILN_STAGE_ACCESS, "{}", NULL, 0};
    char *result = NULL;
    size_t rlen = 0;
    rc = eval_stage(fn, p, pre, &plugin, st, ep, &result, &rlen, err);
    if (own != NULL)
        kiln_stage_free(own);
    if (rc != KILN_OK)
        return rc;
    resp->status = 200;
    rc = kiln_response_add_header(resp, "Content-Type", "application/json");
    if (rc == KILN_OK)
        rc = kiln_response_append(resp, result, rlen);
    kiln_free(result);
    if (rc == KILN_ELIMIT)
        return kiln_err_set(err, rc, "%s: the %zu-byte result set exceeds the response limit",
                            p->name, rlen);
    return rc == KILN_OK ? KILN_OK : kiln_err_set(err, rc, "%s: out of memory", p->name);
}

const kiln_abi_ops kiln_abi_opa = {
    .name = "opa",
    .detect = opa_detect,
    .hostfns = opa_hostfns_op,
    .prepare = opa_prepare,
    .handle = opa_handle,
    .release = opa_release,
    .snapshot = opa_snapshot,
    .stage_export = opa_stage_export,
    .stage = opa_stage,
};
