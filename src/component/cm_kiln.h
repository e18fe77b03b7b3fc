/*
 * cm_kiln.h - Kiln's host interfaces for components: the capabilities core
 * modules get from the "kiln" host module (src/abi/kiln), through the
 * standard WASI proposals Spin and wasmtime serve, so that a component
 * built with wit-bindgen against them runs on Kiln unchanged (the WIT is
 * wit/deps/, printed by `kiln wit`):
 *   - wasi:keyvalue/store, atomics (increment; CAS answers "not
 *     supported") and batch @0.2.0-draft2 (Spin 3's) and @0.2.0-draft
 *     (wasmtime's) over the calling function's KV grant set (cm_kiln_kv.c);
 *   - wasi:config/store (any version) over its `config` map, and
 *     wasi:logging/logging (any version) into the server log under its
 *     name and log budget (cm_kiln_config.c).
 *
 * Contract. The functions read the function's host contexts from the
 * calling core instance's state slots, exactly as kiln.kv_* and
 * kiln.config_get/log do: KILN_STATE_KV (a kiln_kv_grants: buckets are its
 * namespaces, with their grants, limits, quotas and storage events, through
 * the same kiln_kv_ns_* calls) and KILN_STATE_HOST (a kiln_host_ctx: name,
 * config, log level and sink). A slot left NULL means the function has
 * none: open answers no-such-store, config is empty, log lines go to stderr
 * at the default level (info) under the name "function". Bucket handles
 * are entries of `w`'s WASI 0.2 resource table (cm_wasi_int.h), at most
 * CW_MAX_BUCKETS live ones, freed when the guest drops them or with `w`
 * (one cm_inst's context).
 *
 * Differences from Spin: docs/internals/component.md "Kiln's host
 * interfaces for components".
 */
#ifndef KILN_COMPONENT_CM_KILN_H
#define KILN_COMPONENT_CM_KILN_H

#include "component/cm_inst.h"
#include "kiln/wasi.h"

/*
 * Add the two tables (key-value; config and logging) to h, with `w` as
 * their context (NULL when only the registry's shape matters, e.g. the
 * import check at deploy). Returns KILN_OK or KILN_ELIMIT (h is full).
 */
int cm_kiln_add(cm_host *h, kiln_wasi *w);

/* The tables, for cm_kiln_add (cm_kiln_kv.c, cm_kiln_config.c). */
extern const cm_host_fn ck_kv_fns[];
extern const size_t ck_kv_n;
extern const cm_host_fn ck_config_fns[];
extern const size_t ck_config_n;

#endif
