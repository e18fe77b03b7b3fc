/*
 * cache.h - the content-addressed artifact cache: cache keys, the cache
 * directory, scratch directories and the atomic publish of an artifact.
 * Internal to src/aot/. Layout of a cache directory:
 *     <dir>/<key>.so                    published artifacts (never partial)
 *     <dir>/<key>.fail                  remembered failures (compile.c "failure memo")
 *     <dir>/tmp/<host>.<pid>.XXXXXX/    one scratch directory per compile
 */
#ifndef KILN_AOT_CACHE_H
#define KILN_AOT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/kiln.h"

#define AOT_KEY_HEX 64
/* A scratch directory whose owner is gone is removed at once; any entry of
 * tmp/ older than this is removed whoever owns it. */
#define AOT_SCRATCH_MAX_AGE_S (24 * 3600)

/* Everything that determines an artifact's bytes. */
typedef struct aot_key_input {
    const uint8_t *wasm; /* the module as given (before Kiln's rewrite) */
    size_t wasm_len;
    const char *wabt_version; /* "wabt 1.0.32" */
    const char *cc_identity;  /* aot_cc_identity(): resolved path + --version line */
    int opt_level;
    const char *const *flags; /* every flag passed to wasm2c and the compiler, in order */
    size_t n_flags;
    unsigned abi_version;     /* KILN_RT_ABI_VERSION */
    const char *descriptor_h; /* the contract text compiled into the artifact */
    size_t descriptor_h_len;
} aot_key_input;

/* Hex SHA-256 over the length-prefixed fields of `in`; `out` gets 64 hex
 * digits + NUL. KILN_OK or KILN_ENOMEM. Pure; thread-safe. */
int aot_cache_key(const aot_key_input *in, char out[AOT_KEY_HEX + 1], kiln_err *err);

/*
 * Resolve the cache directory: `configured` if not NULL, else
 * $KILN_HOME/cache, else $HOME/.kiln/cache. Creates it (mkdir -p) and
 * stores its canonical absolute path in `out`. KILN_ECACHE naming the
 * directory and the errno text, or KILN_ENOSPC.
 */
int aot_cache_dir(const char *configured, char *out, size_t size, kiln_err *err);

/* "<dir>/<key>.so" into `out`; KILN_EINVAL when it does not fit. */
int aot_cache_artifact_path(const char *dir, const char *key, char *out, size_t size,
                            kiln_err *err);

/* "<dir>/<key>.fail": the remembered failure of that key; KILN_EINVAL when
 * it does not fit. */
int aot_cache_fail_path(const char *dir, const char *key, char *out, size_t size, kiln_err *err);

/* Is there a published artifact at `path`? */
bool aot_cache_has(const char *path);

/*
 * Create a fresh scratch directory under <dir>/tmp/ (absolute path into
 * `out`), first removing scratch directories left behind by dead processes.
 * KILN_ECACHE / KILN_ENOSPC on failure.
 */
int aot_cache_scratch_new(const char *dir, char *out, size_t size, kiln_err *err);
/* Remove stale entries of <dir>/tmp/ (see AOT_SCRATCH_MAX_AGE_S). */
void aot_cache_sweep(const char *dir);
/* Remove a scratch directory and everything in it; best effort. */
void aot_cache_scratch_remove(const char *scratch);

/*
 * Make `built` (a file in a scratch directory of the same cache) durable and
 * atomically rename it to `artifact` (an artifact or a failure memo). Replacing an artifact that a concurrent
 * compile just published is fine: the content is identical.
 */
int aot_cache_publish(const char *built, const char *artifact, kiln_err *err);

/* KILN_ENOSPC for ENOSPC/EDQUOT, else `otherwise`. */
int aot_errno_status(int e, int otherwise);

#endif
