/*
 * opa_eval.c - one OPA policy module as the OPA SDKs drive it: the env
 * imports (opa_abort, opa_println, opa_builtin0..4), the ABI check and probe
 * at prepare (version, builtins, entrypoints), and one evaluation in a
 * fresh instance (the ABI 1.2 one-shot opa_eval, or the eval-context calls
 * of ABI 1.0/1.1). Every address the policy hands back is bounds-checked
 * against its memory before the host reads or writes it.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi/guest_log.h"
#include "abi/opa/opa.h"
#include "base/alloc.h"
#include "kiln/abi.h"

/* ---- guest strings ----------------------------------------------------------- */

/* The NUL-terminated string at guest address `addr`, or NULL when it starts
 * outside memory or runs to its end without a NUL. Valid until the guest
 * runs again. */
static const char *guest_cstr(kiln_instance *inst, uint32_t addr, size_t *len)
{
    wasm_rt_memory_t *mem = kiln_instance_memory(inst);
    if (mem == NULL || addr >= mem->size)
        return NULL;
    const char *s = (const char *)mem->data + addr;
    const char *nul = memchr(s, 0, mem->size - addr);
    if (nul == NULL)
        return NULL;
    *len = (size_t)(nul - s);
    return s;
}

/* ---- host functions (env) ---------------------------------------------------- */

static const char *policy_name(kiln_instance *inst)
{
    const opa_policy *p = kiln_instance_state(inst, KILN_STATE_OPA);
    return p != NULL && p->name != NULL ? p->name : "opa";
}

static void h_abort(kiln_instance *inst, uint32_t addr)
{
    size_t len;
    const char *msg = guest_cstr(inst, addr, &len);
    if (msg == NULL)
        kiln_host_trap(inst, KILN_TRAP_HOST,
                       "OPA policy aborted (its message at address %u is outside its memory)",
                       addr);
    kiln_host_trap(inst, KILN_TRAP_HOST, "OPA policy aborted: %.*s",
                   (int)(len > 400 ? 400 : len), msg);
}

static void h_println(kiln_instance *inst, uint32_t addr)
{
    size_t len;
    const char *msg = guest_cstr(inst, addr, &len);
    if (msg == NULL)
        kiln_host_trap(inst, KILN_TRAP_HOST,
                       "opa_println: the string at address %u is outside the policy's memory",
                       addr);
    guest_log_write(policy_name(inst), "info", msg, len);
}

/* Kiln implements no OPA builtin: a policy whose builtins export names any
 * is refused at prepare, so a call here names an id the policy never
 * declared. */
static __attribute__((noreturn)) void no_builtin(kiln_instance *inst, uint32_t id)
{
    kiln_host_trap(inst, KILN_TRAP_HOST,
                   "OPA builtin #%u called, which the policy's builtins export does not declare; "
                   "Kiln implements no OPA builtins",
                   id);
}

static uint32_t h_builtin0(kiln_instance *inst, uint32_t id, uint32_t ctx)
{
    no_builtin(inst, id);
}

static uint32_t h_builtin1(kiln_instance *inst, uint32_t id, uint32_t ctx, uint32_t a)
{
    no_builtin(inst, id);
}

static uint32_t h_builtin2(kiln_instance *inst, uint32_t id, uint32_t ctx, uint32_t a, uint32_t b)
{
    no_builtin(inst, id);
}

static uint32_t h_builtin3(kiln_instance *inst, uint32_t id, uint32_t ctx, uint32_t a, uint32_t b,
                           uint32_t c)
{
    no_builtin(inst, id);
}

static uint32_t h_builtin4(kiln_instance *inst, uint32_t id, uint32_t ctx, uint32_t a, uint32_t b,
                           uint32_t c, uint32_t d)
{
    no_builtin(inst, id);
}

#define FN(f) ((void (*)(void))(f))
static const kiln_hostfn host_table[] = {
    {"env", "memory", KILN_HOSTFN_MEMORY, NULL},
    {"env", "opa_abort", "i>", FN(h_abort)},
    {"env", "opa_println", "i>", FN(h_println)},
    {"env", "opa_builtin0", "ii>i", FN(h_builtin0)},
    {"env", "opa_builtin1", "iii>i", FN(h_builtin1)},
    {"env", "opa_builtin2", "iiii>i", FN(h_builtin2)},
    {"env", "opa_builtin3", "iiiii>i", FN(h_builtin3)},
    {"env", "opa_builtin4", "iiiiii>i", FN(h_builtin4)},
};

const kiln_hostfn *opa_hostfns(size_t *n)
{
    *n = sizeof(host_table) / sizeof(host_table[0]);
    return host_table;
}

/* ---- the module's exports --------------------------------------------------- */

typedef struct want_fn {
    const char *name;
    const char *type; /* params>results; ">" results may also return one i32 */
} want_fn;

static const want_fn common_fns[] = {
    {"opa_malloc", "i>i"},       {"opa_json_parse", "ii>i"}, {"opa_json_dump", "i>i"},
    {"opa_heap_ptr_get", ">i"},  {"opa_heap_ptr_set", "i>"}, {"builtins", ">i"},
    {"entrypoints", ">i"},
};
static const want_fn ctx_fns[] = {
    {"opa_eval_ctx_new", ">i"},         {"opa_eval_ctx_set_input", "ii>"},
    {"opa_eval_ctx_set_data", "ii>"},   {"opa_eval_ctx_set_entrypoint", "ii>"},
    {"opa_eval_ctx_get_result", "i>i"}, {"eval", "i>i"},
};
static const want_fn fast_fn = {"opa_eval", "iiiiiii>i"};

/* 1 = exported with a usable type, 0 = missing, -1 = mistyped. The host
 * calls exports without a per-call type check, so this is what keeps the
 * argument and result arrays the right size. */
static int has_fn(const kiln_module *m, const want_fn *w)
{
    int idx = kiln_module_find_export(m, w->name, KILN_EXTERN_FUNC);
    if (idx < 0)
        return 0;
    kiln_extern_info info;
    kiln_module_export(m, (uint32_t)idx, &info);
    if (strcmp(info.type, w->type) == 0)
        return 1;
    size_t n = strlen(w->type);
    if (w->type[n - 1] == '>' && strncmp(info.type, w->type, n) == 0 &&
        strcmp(info.type + n, "i") == 0)
        return 1;
    return -1;
}

static void list_add(char *buf, size_t size, const char *fmt, const char *a, const char *b)
{
    size_t o = strlen(buf);
    if (o + 4 >= size)
        return;
    snprintf(buf + o, size - o, "%s", o ? ", " : "");
    o = strlen(buf);
    snprintf(buf + o, size - o, fmt, a, b);
}

/* Check the functions of `w`; append problems to missing/mistyped. */
static bool check_fns(const kiln_module *m, const want_fn *w, size_t n, char *missing,
                      char *mistyped, size_t size)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        int r = has_fn(m, &w[i]);
        if (r == 0)
            list_add(missing, size, "%s%s", w[i].name, "");
        else if (r < 0)
            list_add(mistyped, size, "%s (want %s)", w[i].name, w[i].type);
        ok = ok && r == 1;
    }
    return ok;
}

bool opa_module_is_policy(const kiln_module *m)
{
    if (kiln_module_find_export(m, "opa_eval_ctx_new", KILN_EXTERN_FUNC) < 0 &&
        kiln_module_find_export(m, "opa_eval", KILN_EXTERN_FUNC) < 0)
        return false;
    for (uint32_t i = 0; i < kiln_module_import_count(m); i++) {
        kiln_extern_info im;
        kiln_module_import(m, i, &im);
        if (im.kind == KILN_EXTERN_MEMORY && im.module_len == 3 &&
            memcmp(im.module, "env", 3) == 0 && strcmp(im.name, "memory") == 0)
            return true;
    }
    return false;
}

/* An exported i32 global's value, or `dflt` when not exported as one. */
static uint32_t global_i32(kiln_instance *inst, const kiln_module *m, const char *name,
                           uint32_t dflt, bool *found)
{
    *found = false;
    int idx = kiln_module_find_export(m, name, KILN_EXTERN_GLOBAL);
    if (idx < 0)
        return dflt;
    kiln_extern_info info;
    kiln_module_export(m, (uint32_t)idx, &info);
    const char *t = strncmp(info.type, "mut ", 4) == 0 ? info.type + 4 : info.type;
    const uint32_t *v = kiln_instance_export_object(inst, name, KILN_EXTERN_GLOBAL);
    if (strcmp(t, "i") != 0 || v == NULL)
        return dflt;
    *found = true;
    return *v;
}

/* ---- one evaluation ------------------------------------------------------------- */

typedef struct ev {
    const opa_policy *p;
    kiln_instance *inst;
    kiln_limits lim;
    uint64_t deadline_ns; /* 0 = none */
    bool from_image;      /* started from p->snap: data {} is loaded already */
} ev;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The time left of the evaluation as a per-call limit; false when none is. */
static bool ev_budget(ev *e, uint32_t *ms)
{
    *ms = 0;
    if (e->deadline_ns == 0)
        return true;
    uint64_t now = now_ns();
    if (now >= e->deadline_ns)
        return false;
    uint64_t left = (e->deadline_ns - now + 999999) / 1000000;
    *ms = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
    return true;
}

static int ev_timeout(ev *e, const char *what, kiln_err *err)
{
    return kiln_err_set(err, KILN_ETIMEOUT, "%s: the policy ran out of time (%u ms) in %s",
                        e->p->name, e->lim.timeout_ms, what);
}

/* Call export `name` with i32 arguments; its one i32 result (if any) in *res. */
static int ev_call(ev *e, const char *name, const uint32_t *args, size_t nargs, uint32_t *res,
                   kiln_err *err)
{
    kiln_limits l = e->lim;
    if (!ev_budget(e, &l.timeout_ms))
        return ev_timeout(e, name, err);
    kiln_instance_set_limits(e->inst, &l);
    kiln_value a[8] = {{0}}, r[1] = {{0}};
    for (size_t i = 0; i < nargs && i < 8; i++)
        a[i].i32 = args[i];
    int rc = kiln_instance_call(e->inst, name, NULL, a, r, err);
    if (res != NULL)
        *res = r[0].i32;
    return rc;
}

static int bad_output(ev *e, kiln_err *err, const char *what, uint32_t addr)
{
    return kiln_err_set(err, KILN_EBADOUTPUT,
                        "%s: %s returned address %u, outside the policy's memory; the module "
                        "does not implement the OPA Wasm ABI correctly",
                        e->p->name, what, addr);
}

/* Copy `len` bytes into a block from opa_malloc; its address in *addr. */
static int ev_write(ev *e, const void *data, size_t len, uint32_t *addr, kiln_err *err)
{
    if (len > UINT32_MAX)
        return kiln_err_set(err, KILN_ELIMIT, "%s: a %zu-byte document is too large for a policy",
                            e->p->name, len);
    uint32_t a = (uint32_t)len;
    int rc = ev_call(e, "opa_malloc", &a, 1, addr, err);
    if (rc != KILN_OK)
        return rc;
    void *dst = kiln_guest_ptr(e->inst, *addr, len);
    if (dst == NULL || (*addr == 0 && len > 0))
        return bad_output(e, err, "opa_malloc", *addr);
    if (len > 0)
        memcpy(dst, data, len);
    return KILN_OK;
}

/* opa_json_parse of a JSON text: the value's address in *value. */
static int ev_load_json(ev *e, const char *json, size_t len, uint32_t *value, kiln_err *err)
{
    uint32_t raw;
    int rc = ev_write(e, json, len, &raw, err);
    if (rc != KILN_OK)
        return rc;
    uint32_t args[2] = {raw, (uint32_t)len};
    rc = ev_call(e, "opa_json_parse", args, 2, value, err);
    if (rc == KILN_OK && *value == 0)
        return kiln_err_set(err, KILN_EGUEST, "%s: the policy failed to parse a JSON document "
                            "(opa_json_parse returned 0)", e->p->name);
    return rc;
}

/* A kiln_malloc'd copy of the NUL-terminated string at `addr`. */
static int ev_read_str(ev *e, const char *what, uint32_t addr, char **out, size_t *len,
                       kiln_err *err)
{
    const char *s = guest_cstr(e->inst, addr, len);
    if (s == NULL || addr == 0)
        return bad_output(e, err, what, addr);
    *out = kiln_strndup(s, *len);
    return *out ? KILN_OK : kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", e->p->name);
}

/* opa_json_dump of a value, as a kiln_malloc'd string. */
static int ev_dump(ev *e, uint32_t value, char **out, size_t *len, kiln_err *err)
{
    uint32_t s;
    int rc = ev_call(e, "opa_json_dump", &value, 1, &s, err);
    return rc != KILN_OK ? rc : ev_read_str(e, "opa_json_dump", s, out, len, err);
}

static int ev_start(ev *e, const opa_policy *p, const kiln_instance_pre *pre,
                    const kiln_limits *limits, void *const *host_state, kiln_err *err)
{
    memset(e, 0, sizeof(*e));
    e->p = p;
    if (limits != NULL)
        e->lim = *limits;
    if (e->lim.timeout_ms != 0)
        e->deadline_ns = now_ns() + (uint64_t)e->lim.timeout_ms * 1000000u;
    void *state[KILN_STATE_SLOTS] = {0};
    for (int i = 0; host_state != NULL && i < KILN_STATE_SLOTS; i++)
        state[i] = host_state[i];
    state[KILN_STATE_OPA] = (void *)p;
    if (p->snap != NULL && p->snap_pre == pre) {
        e->from_image = true;
        return kiln_instance_new_from_snapshot(p->snap, &e->lim, state, &e->inst, err);
    }
    return kiln_instance_new(pre, &e->lim, state, &e->inst, err);
}

int opa_snapshot_build(opa_policy *p, const kiln_instance_pre *pre, const kiln_limits *limits,
                       void *const *host_state, kiln_err *err)
{
    ev e;
    memset(&e, 0, sizeof(e));
    e.p = p;
    if (limits != NULL)
        e.lim = *limits;
    if (e.lim.timeout_ms < OPA_SNAPSHOT_INIT_MS)
        e.lim.timeout_ms = OPA_SNAPSHOT_INIT_MS;
    e.deadline_ns = now_ns() + (uint64_t)e.lim.timeout_ms * 1000000u;
    void *state[KILN_STATE_SLOTS] = {0};
    for (int i = 0; host_state != NULL && i < KILN_STATE_SLOTS; i++)
        state[i] = host_state[i];
    state[KILN_STATE_OPA] = (void *)p;
    /* Init = instantiation (data segments, start) and data {} loaded as every
     * evaluation does first; every env host call (opa_abort, println,
     * builtins) is refused, none is needed. */
    uint32_t data = 0;
    kiln_snapshot *snap = NULL;
    const char *what = "instantiate";
    int rc = kiln_snapshot_begin(pre, &e.lim, state, NULL, 0, &e.inst, err);
    if (rc == KILN_OK) {
        what = "loading data {}";
        rc = ev_load_json(&e, "{}", 2, &data, err);
    }
    if (rc == KILN_OK) {
        what = "capture";
        rc = kiln_snapshot_capture(e.inst, &snap, err);
    }
    kiln_instance_free(e.inst);
    if (rc != KILN_OK)
        return kiln_err_prefix(err, "%s: snapshot (%s) failed; the policy cannot start from a "
                               "snapshot (set snapshot: false)", p->name, what);
    kiln_snapshot_free(p->snap);
    p->snap = snap;
    p->snap_pre = pre;
    p->snap_data = data;
    return KILN_OK;
}

int opa_evaluate(const opa_policy *p, const kiln_instance_pre *pre, const kiln_limits *limits,
                 void *const *host_state, int32_t entrypoint, const char *input, size_t input_len,
                 char **result, size_t *result_len, kiln_err *err)
{
    *result = NULL;
    *result_len = 0;
    ev e;
    int rc = ev_start(&e, p, pre, limits, host_state, err);
    if (rc != KILN_OK)
        return rc;
    uint32_t data = 0, heap = 0, out = 0, ok = 0;
    /* data is {} (Kiln has no data documents), loaded first as the SDKs do;
     * an image has it loaded already. */
    if (e.from_image)
        data = p->snap_data;
    else
        rc = ev_load_json(&e, "{}", 2, &data, err);
    if (rc == KILN_OK && p->fast_path) {
        /* ABI 1.2: the raw input goes below the heap pointer opa_eval starts
         * from. The SDKs write it at the heap pointer and grow the memory
         * from the host; opa_malloc does both inside the policy. */
        uint32_t in = 0;
        rc = ev_write(&e, input, input_len, &in, err);
        if (rc == KILN_OK)
            rc = ev_call(&e, "opa_heap_ptr_get", NULL, 0, &heap, err);
        uint32_t args[7] = {0, (uint32_t)entrypoint, data, in, (uint32_t)input_len, heap, 0};
        if (rc == KILN_OK)
            rc = ev_call(&e, "opa_eval", args, 7, &out, err);
        if (rc == KILN_OK)
            rc = ev_read_str(&e, "opa_eval", out, result, result_len, err);
    } else if (rc == KILN_OK) {
        uint32_t in = 0, ctx = 0, res = 0;
        rc = ev_call(&e, "opa_heap_ptr_get", NULL, 0, &heap, err);
        if (rc == KILN_OK)
            rc = ev_call(&e, "opa_heap_ptr_set", &heap, 1, NULL, err);
        if (rc == KILN_OK)
            rc = ev_load_json(&e, input, input_len, &in, err);
        if (rc == KILN_OK)
            rc = ev_call(&e, "opa_eval_ctx_new", NULL, 0, &ctx, err);
        uint32_t a_in[2] = {ctx, in}, a_data[2] = {ctx, data}, a_ep[2] = {ctx, (uint32_t)entrypoint};
        if (rc == KILN_OK)
            rc = ev_call(&e, "opa_eval_ctx_set_input", a_in, 2, NULL, err);
        if (rc == KILN_OK)
            rc = ev_call(&e, "opa_eval_ctx_set_data", a_data, 2, NULL, err);
        if (rc == KILN_OK)
            rc = ev_call(&e, "opa_eval_ctx_set_entrypoint", a_ep, 2, NULL, err);
        if (rc == KILN_OK)
            rc = ev_call(&e, "eval", &ctx, 1, &ok, err);
        if (rc == KILN_OK && ok != 0)
            rc = kiln_err_set(err, KILN_EGUEST, "%s: the policy's eval failed with code %u",
                              p->name, ok);
        if (rc == KILN_OK)
            rc = ev_call(&e, "opa_eval_ctx_get_result", &ctx, 1, &res, err);
        if (rc == KILN_OK)
            rc = ev_dump(&e, res, result, result_len, err);
    }
    kiln_instance_free(e.inst);
    if (rc == KILN_OK) {
        json_t *j = json_loadb(*result, *result_len, 0, NULL);
        if (!json_is_array(j))
            rc = kiln_err_set(err, KILN_EBADOUTPUT,
                              "%s: the policy's result is not a JSON result set (an array)",
                              p->name);
        json_decref(j);
    }
    if (rc != KILN_OK) {
        kiln_free(*result);
        *result = NULL;
        *result_len = 0;
    }
    return rc;
}

/* ---- prepare: check and probe ---------------------------------------------- */

void opa_policy_free(opa_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_entrypoints; i++)
        kiln_free(p->ep_names[i]);
    kiln_free(p->ep_names);
    kiln_free(p->ep_ids);
    kiln_snapshot_free(p->snap);
    kiln_free(p);
}

int32_t opa_entrypoint_id(const opa_policy *p, const char *s)
{
    for (size_t i = 0; i < p->n_entrypoints; i++)
        if (strcmp(p->ep_names[i], s) == 0)
            return p->ep_ids[i];
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > INT32_MAX)
        return -1;
    for (size_t i = 0; i < p->n_entrypoints; i++)
        if (p->ep_ids[i] == v)
            return (int32_t)v;
    return -1;
}

/* Read the builtins and entrypoints exports in the probe instance. */
static int probe_declarations(ev *e, opa_policy *p, kiln_err *err)
{
    uint32_t v;
    char *text = NULL;
    size_t len;
    int rc = ev_call(e, "builtins", NULL, 0, &v, err);
    if (rc == KILN_OK)
        rc = ev_dump(e, v, &text, &len, err);
    if (rc != KILN_OK)
        return rc;
    json_t *b = json_loadb(text, len, 0, NULL);
    kiln_free(text);
    if (!json_is_object(b)) {
        json_decref(b);
        return kiln_err_set(err, KILN_EBADOUTPUT, "%s: the builtins export is not a JSON object",
                            p->name);
    }
    if (json_object_size(b) > 0) {
        char names[600] = "";
        const char *k;
        json_t *val;
        json_object_foreach(b, k, val) list_add(names, sizeof(names), "%s%s", k, "");
        json_decref(b);
        return kiln_err_set(err, KILN_EUNSUPPORTED,
                            "%s: the policy needs OPA builtins Kiln does not implement: %s; "
                            "rewrite the policy without them",
                            p->name, names);
    }
    json_decref(b);

    rc = ev_call(e, "entrypoints", NULL, 0, &v, err);
    if (rc == KILN_OK)
        rc = ev_dump(e, v, &text, &len, err);
    if (rc != KILN_OK)
        return rc;
    json_t *eps = json_loadb(text, len, 0, NULL);
    kiln_free(text);
    if (!json_is_object(eps) || json_object_size(eps) == 0) {
        json_decref(eps);
        return kiln_err_set(err, KILN_EBADOUTPUT,
                            "%s: the entrypoints export is not a non-empty JSON object", p->name);
    }
    size_t n = json_object_size(eps);
    p->ep_names = kiln_calloc(n, sizeof(*p->ep_names));
    p->ep_ids = kiln_calloc(n, sizeof(*p->ep_ids));
    rc = p->ep_names && p->ep_ids ? KILN_OK : KILN_ENOMEM;
    const char *k;
    json_t *val;
    json_object_foreach(eps, k, val)
    {
        if (rc != KILN_OK)
            break;
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) > INT32_MAX) {
            rc = kiln_err_set(err, KILN_EBADOUTPUT, "%s: entrypoint '%s' has no valid id",
                              p->name, k);
            break;
        }
        p->ep_names[p->n_entrypoints] = kiln_strdup(k);
        if (p->ep_names[p->n_entrypoints] == NULL) {
            rc = KILN_ENOMEM;
            break;
        }
        p->ep_ids[p->n_entrypoints++] = (int32_t)json_integer_value(val);
    }
    json_decref(eps);
    if (rc == KILN_ENOMEM)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", p->name);
    return rc;
}

int opa_policy_new(const char *name, kiln_module *m, const kiln_limits *limits, opa_policy **out,
                   kiln_err *err)
{
    *out = NULL;
    if (!opa_module_is_policy(m))
        return kiln_err_set(err, KILN_ENOEXPORT,
                            "%s: not an OPA policy: it must import its memory as env.memory and "
                            "export opa_eval_ctx_new or opa_eval (build it with opa build -t wasm)",
                            name);
    char missing[600] = "", mistyped[600] = "";
    bool ok = check_fns(m, common_fns, sizeof(common_fns) / sizeof(common_fns[0]), missing,
                        mistyped, sizeof(missing));
    char ctx_missing[600] = "", ctx_mistyped[600] = "";
    bool ctx_ok = check_fns(m, ctx_fns, sizeof(ctx_fns) / sizeof(ctx_fns[0]), ctx_missing,
                            ctx_mistyped, sizeof(ctx_missing));
    int fast = has_fn(m, &fast_fn);
    if (fast < 0)
        list_add(mistyped, sizeof(mistyped), "%s (want %s)", fast_fn.name, fast_fn.type);
    if (!ok || fast < 0)
        return kiln_err_set(err, missing[0] ? KILN_ENOEXPORT : KILN_ETYPE,
                            "%s: not a usable OPA policy:%s%s%s%s", name,
                            missing[0] ? " missing exports " : "", missing,
                            mistyped[0] ? "; mistyped exports " : "", mistyped);

    opa_policy *p = kiln_calloc(1, sizeof(*p));
    if (p == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", name);
    p->name = name;

    /* A probe instance of the module alone: the env imports are all it may
     * have, and what it declares does not depend on the request. */
    kiln_linker *l = NULL;
    kiln_instance_pre *pre = NULL;
    size_t nh;
    const kiln_hostfn *h = opa_hostfns(&nh);
    int rc = kiln_linker_new(&l);
    if (rc == KILN_OK)
        rc = kiln_linker_define_host(l, h, nh);
    if (rc != KILN_OK)
        rc = kiln_err_set(err, rc, "%s: out of memory", name);
    if (rc == KILN_OK)
        rc = kiln_instance_pre_new(m, l, &pre, err);
    ev e;
    memset(&e, 0, sizeof(e));
    if (rc == KILN_OK)
        rc = ev_start(&e, p, pre, limits, NULL, err);
    if (rc == KILN_OK) {
        bool found;
        uint32_t major = global_i32(e.inst, m, "opa_wasm_abi_version", 1, &found);
        p->abi_minor = global_i32(e.inst, m, "opa_wasm_abi_minor_version", 0, &found);
        if (major != 1)
            rc = kiln_err_set(err, KILN_EUNSUPPORTED,
                              "%s: OPA Wasm ABI version %u is not supported (Kiln implements 1.x)",
                              name, major);
        p->fast_path = p->abi_minor >= 2 && fast == 1;
        if (rc == KILN_OK && !p->fast_path && !ctx_ok)
            rc = kiln_err_set(err, ctx_missing[0] ? KILN_ENOEXPORT : KILN_ETYPE,
                              "%s: not a usable OPA policy: ABI 1.%u without opa_eval needs the "
                              "eval-context exports:%s%s%s%s",
                              name, p->abi_minor, ctx_missing[0] ? " missing " : "", ctx_missing,
                              ctx_mistyped[0] ? "; mistyped " : "", ctx_mistyped);
        if (rc == KILN_OK)
            rc = probe_declarations(&e, p, err);
    }
    kiln_instance_free(e.inst);
    kiln_instance_pre_free(pre);
    kiln_linker_free(l);
    if (rc != KILN_OK) {
        opa_policy_free(p);
        return rc;
    }
    *out = p;
    return KILN_OK;
}
