/*
 * aot.h - ahead-of-time compilation: .wasm -> wasm2c -> C compiler -> .so,
 * cached by content hash under $KILN_HOME/cache (default ~/.kiln/cache).
 *
 * Pipeline (src/aot/compile.c): read + structurally decode the binary;
 * optionally check every import against a linker (before any tool runs);
 * rewrite all names to synthetic ones (no guest text reaches generated C);
 * validate with wasm-validate and name any unsupported proposal (SIMD,
 * threads, memory64, tail calls, ...); translate with wasm2c; generate the
 * descriptor; compile and link with the configured compiler. wasm2c and the
 * compiler run as child processes in a scratch directory with CPU, memory,
 * file-size and wall-clock limits. The artifact appears in the cache by an
 * atomic rename: concurrent compiles of one module and crashes mid-compile
 * never leave a partial artifact. Before that rename the artifact is
 * dlopen'ed and its descriptor checked, so a cached artifact always loads.
 * A compile that fails for a reason the cache key determines is remembered
 * in the cache (<key>.fail) and returned at once next time, until `force`.
 * Thread-safe.
 *
 * Tiers (docs/internals/aot.md, "Tiers"). A server that wants to answer
 * soon after a deploy and run fast later compiles each module twice, both
 * cached under their own keys:
 *
 *     kiln_aot_options o = {.opt_level = -1, .tier = KILN_AOT_TIER_FAST};
 *     // tier 1, about 10x faster to build, code 4-13x slower: serve with it
 *     rc = kiln_aot_load_file(path, &o, &fast, &err);
 *     // tier 2, in the background: the configured compiler at -O2
 *     o.tier = KILN_AOT_TIER_OPTIMIZED;
 *     rc = kiln_aot_load_file(path, &o, &opt, &err);   // then swap to `opt`
 *
 * At restart, kiln_aot_load_best() (cache_only lookups, no compiler run)
 * loads the optimised tier if it is cached, else the fast one, else says
 * KILN_ENOENT; the server then compiles whatever tier is missing. A
 * remembered failure of either tier comes back at once with its status
 * and `failure_remembered` set, so it is not recompiled on every start.
 * kiln_aot_best_tier() makes the same choice for several modules that run
 * together at one tier (a component's embedded core modules).
 */
#ifndef KILN_AOT_H
#define KILN_AOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "runtime.h"

/* Which compiler and level build an artifact. */
typedef enum kiln_aot_tier {
    /* cc and opt_level as given (NULL cc: $KILN_CC, else "cc"): the
     * behaviour of every caller that predates tiers */
    KILN_AOT_TIER_CONFIGURED = 0,
    /* fast_cc (NULL: $KILN_AOT_FAST_CC, else "tcc"); opt_level ignored */
    KILN_AOT_TIER_FAST = 1,
    /* cc as for CONFIGURED, always at -O2; opt_level ignored */
    KILN_AOT_TIER_OPTIMIZED = 2,
} kiln_aot_tier;

/* "configured", "fast" or "optimized" (a static string; "unknown" otherwise). */
KILN_API const char *kiln_aot_tier_name(kiln_aot_tier tier);

typedef struct kiln_aot_options {
    const char *cc;             /* compiler command; NULL: $KILN_CC, else "cc" */
    int opt_level;              /* 0, 1 or 2 (-O0/-O1/-O2); -1: default 2 */
    const char *cache_dir;      /* NULL: $KILN_HOME/cache, $KILN_HOME defaults to ~/.kiln */
    const kiln_linker *imports; /* if set, every import must be provided by it */
    unsigned timeout_s;         /* wall-clock (and CPU) limit per tool run; 0: KILN_AOT_TIMEOUT
                                   (seconds), else 30 s + 250 ms per KiB of code section, at
                                   most 300 s */
    bool force;                 /* recompile even when cached or remembered as failed */
    /* Bounds on what one compile may cost. 0 = the environment variable named,
     * else the default; see docs/internals/aot.md ("Bounds"). */
    uint64_t max_memory_bytes;   /* address space of each tool run: KILN_AOT_MAX_MEMORY, else
                                    512 MiB + 4 MiB per KiB of code section, at most 4 GiB */
    uint64_t max_code_bytes;     /* code section: KILN_AOT_MAX_CODE_BYTES, else 32 MiB */
    uint32_t max_functions;      /* defined functions: KILN_AOT_MAX_FUNCTIONS, else 100000 */
    uint64_t max_function_bytes; /* largest function body: KILN_AOT_MAX_FUNCTION_BYTES, else
                                    256 KiB */
    kiln_aot_tier tier;          /* 0 (CONFIGURED): cc and opt_level as given */
    const char *fast_cc;         /* the FAST tier's compiler; NULL: $KILN_AOT_FAST_CC, else
                                    "tcc" */
    /* Never compile: when the artifact is not cached, fail with KILN_ENOENT
     * (a remembered failure still returns its own status). The toolchain is
     * still identified (its --version answers are cached on disk), since it
     * is part of the key. */
    bool cache_only;
} kiln_aot_options;

typedef struct kiln_aot_result {
    char so_path[4096]; /* the cached artifact */
    char key[65];       /* hex SHA-256 cache key */
    bool cached;        /* true when no compilation was needed */
    double seconds;     /* wall time of this call */
    /* Set once the toolchain is identified, also on failure: */
    kiln_aot_tier tier;  /* FAST for tcc, OPTIMIZED for another compiler at -O2, else
                            CONFIGURED */
    char compiler[256];  /* first line of its --version, e.g. "tcc version 0.9.27 (x86_64
                            Linux)" */
    int opt_level;       /* the level used (always 0 for tcc, which does not optimise) */
    bool failure_remembered; /* the error is a remembered failure: nothing ran */
} kiln_aot_result;

/* Compile bytes. `display_name` names the module in messages. */
KILN_API int kiln_aot_compile(const uint8_t *wasm, size_t len, const char *display_name,
                              const kiln_aot_options *opts, kiln_aot_result *out /* OUT */,
                              kiln_err *err);
/* Compile a file (KILN_ENOENT with the path if it cannot be read). */
KILN_API int kiln_aot_compile_file(const char *path, const kiln_aot_options *opts,
                                   kiln_aot_result *out /* OUT */, kiln_err *err);
/* Compile (or find in cache) and load: the one call most embedders need. */
KILN_API int kiln_aot_load_file(const char *path, const kiln_aot_options *opts,
                                kiln_module **out /* OUT */, kiln_err *err);

/*
 * Load the best tier of `path` that is already cached, compiling nothing:
 * the OPTIMIZED artifact if there is one, else the FAST one (`opts` gives
 * the cache, compilers and bounds; its tier, force and cache_only are
 * ignored). *tier_out (may be NULL) says which was loaded. When neither is
 * cached: KILN_ENOENT if some tier is neither cached nor remembered as
 * failed (compile that one); otherwise the optimised tier's error (its
 * remembered failure, or e.g. KILN_ETOOLCHAIN), so a module that failed
 * both tiers is reported, not recompiled. A missing fast compiler (no tcc)
 * never hides an optimised artifact. Thread-safe.
 */
KILN_API int kiln_aot_load_best(const char *path, const kiln_aot_options *opts,
                                kiln_module **out /* OUT */, kiln_aot_tier *tier_out /* OUT */,
                                kiln_err *err);

/* One module of a set that is served at one tier (kiln_aot_best_tier). */
typedef struct kiln_aot_input {
    const uint8_t *wasm;
    size_t len;
    const char *name; /* names the module in messages */
} kiln_aot_input;

/*
 * kiln_aot_load_best's choice for a set of modules that must all run at the
 * same tier (the core modules a component embeds): the OPTIMIZED tier if
 * every module's artifact of it is cached, else the FAST tier if every one
 * of those is, compiling nothing (`opts` as for kiln_aot_load_best). On
 * KILN_OK *tier_out is that tier and out[i] (n results; out may be NULL)
 * describes module i's artifact, loaded by nothing yet. When no tier is
 * complete: KILN_ENOENT if some tier has no module remembered as failed
 * (compile that tier of every module); otherwise the optimised tier's error.
 * A tier one module failed is never chosen, whatever the others. n == 0 is
 * the optimised tier. Thread-safe.
 */
KILN_API int kiln_aot_best_tier(const kiln_aot_input *in, size_t n, const kiln_aot_options *opts,
                                kiln_aot_tier *tier_out /* OUT */,
                                kiln_aot_result *out /* OUT, n of them; may be NULL */,
                                kiln_err *err);

#endif
