/*
 * registry.h - the deploy registry: which functions were deployed, every
 * version of each (module hash, settings, status), and which version is
 * active. SQLite ($KILN_HOME/registry.db, WAL) holds the records; module
 * bytes are stored once by content hash in $KILN_HOME/modules/<sha256>.wasm.
 *
 * The registry also owns the *managed directory* ($KILN_HOME/functions/),
 * which `kiln serve` serves and watches: for each function with an active
 * version it holds NAME.json (the settings, keys as in kiln.yaml) and
 * NAME.wasm (the module). Every operation that changes the active version
 * rewrites those files before it commits, under one process-wide lock and
 * inside one SQLite write transaction, so the directory always matches the
 * registry. docs/internals/admin.md describes the schema and the protocol.
 *
 * Thread-safety: every function may be called from any thread; a registry
 * serialises its operations internally.
 */
#ifndef KILN_ADMIN_REGISTRY_H
#define KILN_ADMIN_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/kiln.h"

typedef struct reg_registry reg_registry;

#define REG_MAX_NAME 64              /* bytes of a function name */
#define REG_MAX_SETTINGS (256 * 1024) /* bytes of a settings document (= CFG_MAX_SIDECAR) */

/* One version of a function. Strings are owned by the struct: release with
 * reg_version_fini. */
typedef struct reg_version {
    char name[REG_MAX_NAME + 1];
    int64_t version;        /* 1, 2, ... per function; never reused */
    int64_t previous;       /* the version active before this operation, 0 = none */
    char sha256[65];        /* of the module bytes */
    uint64_t size;          /* module bytes */
    char *settings;         /* compact JSON object (kiln.yaml function keys, no "module") */
    int64_t created_at;     /* Unix seconds */
} reg_version;
void reg_version_fini(reg_version *v);

/*
 * Open (creating if needed) the registry under `home` ($KILN_HOME): the
 * database, modules/ and functions/. KILN_OK, or KILN_EIO / KILN_ENOMEM with
 * a message naming the path. Release with reg_close.
 */
int reg_open(const char *home, reg_registry **out /* OUT */, kiln_err *err);
void reg_close(reg_registry *r);

/* Absolute path of the managed directory (valid until reg_close). */
const char *reg_managed_dir(const reg_registry *r);

/*
 * Make the managed directory match the registry: rewrite the files of every
 * active version whose module or settings differ on disk, remove the files
 * of undeployed functions and leftover temporary files. Called at start,
 * before the server reads the directory (repairs a crash between a commit
 * and a write). Files of names the registry never knew are left alone.
 */
int reg_reconcile(reg_registry *r, kiln_err *err);

/* Is `name` a valid function name (1..64 of [A-Za-z0-9_.-], not starting
 * with '.')? */
bool reg_name_ok(const char *name);

/*
 * Deploy `wasm` as a new version of `name` and make it active. The module is
 * checked with the wasm reader and the settings (a JSON object of kiln.yaml
 * function keys, or NULL for none) with the configuration parser *before*
 * anything changes. Returns KILN_OK and fills *out, or:
 *   KILN_EINVAL   bad name;
 *   KILN_EMODULE, KILN_EUNSUPPORTED, KILN_ELIMIT   the module was refused;
 *   KILN_ECONFIG  the settings were refused (message as for kiln.yaml);
 *   KILN_EIO, KILN_ENOMEM   storage failed (nothing changed).
 */
int reg_deploy(reg_registry *r, const char *name, const uint8_t *wasm, size_t len,
               const char *settings_json, reg_version *out /* OUT */, kiln_err *err);

/*
 * Make `version` of `name` active again (0 = the version before the active
 * one; for an undeployed function, its newest version). KILN_ENOENT when the
 * function or the version does not exist, KILN_EINVAL when there is no
 * earlier version, KILN_EIO on storage failures.
 */
int reg_rollback(reg_registry *r, const char *name, int64_t version,
                 reg_version *out /* OUT */, kiln_err *err);

/*
 * Undeploy `name`: remove it from the managed directory, keep its history.
 * KILN_ENOENT when it is not deployed. *n_versions (may be NULL) gets the
 * number of versions kept.
 */
int reg_delete(reg_registry *r, const char *name, int64_t *n_versions /* OUT */, kiln_err *err);

/*
 * A deploy that the server refused: if `version` is still the active one,
 * make `fallback` active again (0 = undeploy) and rewrite the managed
 * directory. Records `error` on the version either way. KILN_OK, or
 * KILN_ECANCELED when another operation changed the function meanwhile.
 */
int reg_revert(reg_registry *r, const char *name, int64_t version, int64_t fallback,
               const char *error, kiln_err *err);

/* Record what the server said about a version ("serving", "failed",
 * "pending"; error may be NULL). Best effort. */
void reg_set_status(reg_registry *r, const char *name, int64_t version, const char *status,
                    const char *error);

/* Active version of `name` (0 = not deployed or unknown). */
int64_t reg_active(reg_registry *r, const char *name);

/*
 * JSON views (new references; NULL on failure):
 *   reg_list: array of {name, active_version|null, sha256, size, settings,
 *     created_at, updated_at, n_versions}; undeployed functions only with `all`.
 *   reg_get: {name, active_version|null, created_at, updated_at, versions: [{version,
 *     sha256, size, settings, created_at, status, error|null, active}]} (newest first),
 *     or NULL with *found false when the registry never saw `name`.
 */
json_t *reg_list(reg_registry *r, bool all);
json_t *reg_get(reg_registry *r, const char *name, bool *found /* OUT */);

/* The version (0 = none) of `name` whose module has hash `sha256`, newest first. */
int64_t reg_version_of_hash(reg_registry *r, const char *name, const char *sha256);

/* Hex SHA-256 of `len` bytes into out (65 bytes). */
int reg_sha256_hex(const uint8_t *buf, size_t len, char out[65]);

#endif
