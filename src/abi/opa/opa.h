/*
 * opa.h - private to src/abi/opa/ and its unit test: Open Policy Agent
 * policies compiled to WebAssembly (`opa build -t wasm`), evaluated the way
 * the OPA SDKs do (docs/internals/opa.md). The ABI itself is kiln_abi_opa
 * (include/kiln/handler.h): an access-validator plugin or a backend that
 * answers with the result set.
 *
 * A policy module imports its memory (env.memory: the runtime gives every
 * instance its own, kiln_linker_define_memory) and env.opa_abort,
 * env.opa_println, env.opa_builtin0..4; it exports the evaluation API
 * (opa_malloc, opa_json_parse, opa_json_dump, opa_heap_ptr_get/set,
 * opa_eval_ctx_*, eval, builtins, entrypoints, and from ABI 1.2 the one-shot
 * opa_eval) and the globals opa_wasm_abi_version / _minor_version.
 */
#ifndef KILN_ABI_OPA_OPA_H
#define KILN_ABI_OPA_OPA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/handler.h"

/* What prepare learned from the module, shared read-only by every evaluation. */
typedef struct opa_policy {
    const char *name;      /* the function's name, for messages (not owned) */
    uint32_t abi_minor;    /* opa_wasm_abi_minor_version (0 when not exported) */
    bool fast_path;        /* ABI >= 1.2 and opa_eval exported: one call per evaluation */
    size_t n_entrypoints;
    char **ep_names;       /* entrypoints export: name -> id */
    int32_t *ep_ids;
    /* snapshot: true (opa_snapshot_build): the image evaluations on
     * snap_pre start from, with data {} loaded at snap_data. Set at deploy,
     * before any evaluation; owned. */
    kiln_snapshot *snap;
    const kiln_instance_pre *snap_pre;
    uint32_t snap_data;
} opa_policy;

/* The host functions of the env module, with env.memory as a per-instance
 * memory (KILN_HOSTFN_MEMORY). */
const kiln_hostfn *opa_hostfns(size_t *n);

/* Does `m` look like an OPA policy (opa_eval_ctx_new or opa_eval exported,
 * env.memory imported)? */
bool opa_module_is_policy(const kiln_module *m);

/*
 * Check `m` against the OPA Wasm ABI and read what it declares, in a probe
 * instance made with `limits`: the ABI version (1 required), its builtins
 * (every one must be implemented by Kiln: none is, so a policy needing any
 * is refused with their names) and its entrypoints. Missing or mistyped
 * exports are listed in one message (KILN_ENOEXPORT / KILN_ETYPE).
 */
int opa_policy_new(const char *name, kiln_module *m, const kiln_limits *limits,
                   opa_policy **out /* OUT */, kiln_err *err);
void opa_policy_free(opa_policy *p);

/* Make the image every evaluation on `pre` starts from (snapshot: true;
 * docs/internals/snapshot.md §4): a fresh instance with data {} loaded,
 * every host call refused, at least OPA_SNAPSHOT_INIT_MS to do it. Kept in
 * p (replacing an earlier image). */
#define OPA_SNAPSHOT_INIT_MS 10000u
int opa_snapshot_build(opa_policy *p, const kiln_instance_pre *pre, const kiln_limits *limits,
                       void *const *host_state, kiln_err *err);

/* Entrypoint id from a name (the entrypoints export) or a decimal index
 * that the module declares; -1 if it has none such. */
int32_t opa_entrypoint_id(const opa_policy *p, const char *name_or_index);

/*
 * Evaluate entrypoint `entrypoint` on the input document (JSON text) with
 * data {} in a fresh instance of `pre` under `limits` (timeout_ms bounds the
 * whole evaluation), the function's host contexts copied from `host_state`.
 * On KILN_OK *result is the result set's JSON text (kiln_malloc'd,
 * NUL-terminated). Traps (opa_abort included) return KILN_ETRAP; a policy
 * that returns an address outside its memory or unparsable JSON,
 * KILN_EBADOUTPUT.
 */
int opa_evaluate(const opa_policy *p, const kiln_instance_pre *pre, const kiln_limits *limits,
                 void *const *host_state, int32_t entrypoint, const char *input,
                 size_t input_len, char **result /* OUT */, size_t *result_len /* OUT */,
                 kiln_err *err);

/* The access decision for a result set (docs/internals/opa.md): allowed iff
 * the first result is true or an object whose "allow" is true. Otherwise
 * *status and *message (kiln_malloc'd) say how to deny: the result's
 * "status"/"message", or "error": {"status", "message"} (Otoroshi's access
 * validator answer), default 403 "forbidden by policy". */
bool opa_decide(const char *result_set, size_t len, int *status /* OUT */,
                char **message /* OUT */);

#endif
