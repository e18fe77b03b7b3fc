/*
 * cm_kiln_config.c - wasi:config/store and wasi:logging/logging for
 * components, over the function's "kiln" host context (kiln_host_ctx in
 * KILN_STATE_HOST, src/abi/kiln/kiln_host.h), the one kiln.config_get and
 * kiln.log read for core modules; and cm_kiln_add, which registers these
 * tables with cm_kiln_kv.c's. Contract: cm_kiln.h.
 *
 * Config: get and get-all read the function's `config` map (a key without
 * a value reads as ""); a value that is not UTF-8, which a WIT string
 * cannot carry, is error::upstream naming the key. Interfaces are matched
 * without their version: 0.2.0-draft (wasmtime) and Spin's dated drafts
 * have the same shape.
 *
 * Logging: log(level, context, message) is one line of the server log,
 * "[<level>] <function>: <context>: <message>" (no "<context>: " when it
 * is empty), through kiln_host_log: the function's log level and its
 * per-invocation log budget apply as to kiln.log. wasi:logging's
 * `critical` is logged at Kiln's highest level, error.
 */
#include <string.h>

#include "abi/kiln/kiln_host.h"
#include "base/utf8.h"
#include "component/cm_kiln.h"
#include "component/cm_wasi_int.h"

static const kiln_host_ctx *host_of(cm_inst *ci)
{
    kiln_instance *inst = cm_inst_caller(ci);
    return inst != NULL ? kiln_instance_state(inst, KILN_STATE_HOST) : NULL;
}

static cm_val str(const char *p, size_t n)
{
    return (cm_val){.kind = CM_STRING, .str = {p, (uint32_t)n}};
}

/* err(error::upstream("config value of KEY is not UTF-8")) */
static int not_utf8(cm_inst *ci, const char *key, cm_val *r, kiln_err *err)
{
    static const char tail[] = "' is not valid UTF-8, which a WIT string cannot carry; fix "
                               "the function's config";
    size_t kn = strlen(key), n = sizeof("the config value of '") - 1 + kn + sizeof(tail) - 1;
    char *s = cm_arena_alloc(cm_inst_arena(ci), n);
    cm_val *p = cw_vals(ci, 2);
    if (s == NULL || p == NULL)
        return cw_oom(err);
    memcpy(s, "the config value of '", sizeof("the config value of '") - 1);
    memcpy(s + sizeof("the config value of '") - 1, key, kn);
    memcpy(s + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    p[1] = str(s, n);
    p[0] = (cm_val){.kind = CM_VARIANT, .var = {0, &p[1]}};
    return cw_err(ci, r, &p[0], err);
}

static const char *value_of(const kiln_kv *c)
{
    return c->value != NULL ? c->value : "";
}

/* get: func(key: string) -> result<option<string>, error> */
static int config_get(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                      kiln_err *err)
{
    const kiln_host_ctx *h = host_of(ci);
    cm_val *p = cw_vals(ci, 2);
    if (p == NULL)
        return cw_oom(err);
    p[0] = (cm_val){.kind = CM_OPTION, .var = {0, NULL}};
    for (size_t i = 0; h != NULL && i < h->n_config; i++) {
        const char *name = h->config[i].name;
        if (strlen(name) != a[0].str.len || memcmp(name, a[0].str.p, a[0].str.len) != 0)
            continue;
        const char *v = value_of(&h->config[i]);
        size_t n = strlen(v);
        if (!utf8_valid((const uint8_t *)v, n))
            return not_utf8(ci, name, r, err);
        p[1] = str(v, n); /* the function's config outlives the call */
        p[0].var.index = 1;
        p[0].var.payload = &p[1];
        break;
    }
    return cw_ok(ci, r, &p[0], err);
}

/* get-all: func() -> result<list<tuple<string, string>>, error> */
static int config_get_all(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                          kiln_err *err)
{
    const kiln_host_ctx *h = host_of(ci);
    uint32_t n = h != NULL ? (uint32_t)h->n_config : 0;
    cm_val *v = cw_vals(ci, n), *t = cw_vals(ci, 2 * n);
    if (v == NULL || t == NULL)
        return cw_oom(err);
    for (uint32_t i = 0; i < n; i++) {
        const char *name = h->config[i].name, *val = value_of(&h->config[i]);
        size_t nn = strlen(name), vn = strlen(val);
        if (!utf8_valid((const uint8_t *)name, nn) || !utf8_valid((const uint8_t *)val, vn))
            return not_utf8(ci, name, r, err);
        t[2 * i] = str(name, nn);
        t[2 * i + 1] = str(val, vn);
        v[i] = (cm_val){.kind = CM_TUPLE, .agg = {&t[2 * i], 2}};
    }
    cm_val list = {.kind = CM_LIST, .agg = {v, n}};
    return cw_ok(ci, r, &list, err);
}

/* log: func(level: level, context: string, message: string) */
static int log_fn(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                  kiln_err *err)
{
    /* trace, debug, info, warn, error as Kiln's 0..4; critical as error */
    int level = a[0].var.index > 4 ? 4 : (int)a[0].var.index;
    const cm_val *ctx = &a[1], *msg = &a[2];
    if (ctx->str.len == 0) {
        kiln_host_log(host_of(ci), level, msg->str.p, msg->str.len);
        return KILN_OK;
    }
    size_t n = (size_t)ctx->str.len + 2 + msg->str.len;
    char *line = cm_arena_alloc(cm_inst_arena(ci), n);
    if (line == NULL)
        return cw_oom(err);
    memcpy(line, ctx->str.p, ctx->str.len);
    memcpy(line + ctx->str.len, ": ", 2);
    memcpy(line + ctx->str.len + 2, msg->str.p, msg->str.len);
    kiln_host_log(host_of(ci), level, line, n);
    return KILN_OK;
}

const cm_host_fn ck_config_fns[] = {
    {"wasi:config/store", "get", config_get},
    {"wasi:config/store", "get-all", config_get_all},
    {"wasi:logging/logging", "log", log_fn},
};
const size_t ck_config_n = sizeof(ck_config_fns) / sizeof(ck_config_fns[0]);

int cm_kiln_add(cm_host *h, kiln_wasi *w)
{
    int rc = cm_host_add(h, ck_kv_fns, ck_kv_n, w);
    if (rc == KILN_OK)
        rc = cm_host_add(h, ck_config_fns, ck_config_n, w);
    return rc;
}
