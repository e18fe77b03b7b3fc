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
 * never leave a partial artifact. Thread-safe.
 */
#ifndef KILN_AOT_H
#define KILN_AOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "runtime.h"

typedef struct kiln_aot_options {
    const char *cc;             /* compiler command; NULL: $KILN_CC, else "cc" */
    int opt_level;              /* 0, 1 or 2 (-O0/-O1/-O2); -1: default 2 */
    const char *cache_dir;      /* NULL: $KILN_HOME/cache, $KILN_HOME defaults to ~/.kiln */
    const kiln_linker *imports; /* if set, every import must be provided by it */
    unsigned timeout_s;         /* wall-clock (and CPU) limit per tool run; 0: KILN_AOT_TIMEOUT
                                   (seconds), else 30 s + 250 ms per KiB of code section, at
                                   most 300 s */
    bool force;                 /* recompile even when cached */
    /* Bounds on what one compile may cost. 0 = the environment variable named,
     * else the default; see docs/internals/aot.md ("Bounds"). */
    uint64_t max_memory_bytes;   /* address space of each tool run: KILN_AOT_MAX_MEMORY, else
                                    512 MiB + 4 MiB per KiB of code section, at most 4 GiB */
    uint64_t max_code_bytes;     /* code section: KILN_AOT_MAX_CODE_BYTES, else 32 MiB */
    uint32_t max_functions;      /* defined functions: KILN_AOT_MAX_FUNCTIONS, else 100000 */
    uint64_t max_function_bytes; /* largest function body: KILN_AOT_MAX_FUNCTION_BYTES, else
                                    256 KiB */
} kiln_aot_options;

typedef struct kiln_aot_result {
    char so_path[4096]; /* the cached artifact */
    char key[65];       /* hex SHA-256 cache key */
    bool cached;        /* true when no compilation was needed */
    double seconds;     /* wall time of this call */
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

#endif
