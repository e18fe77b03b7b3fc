/*
 * toolchain.h - the external tools of the AOT pipeline (wasm-validate, wasm2c,
 * the C compiler): finding them, identifying them once per process, the
 * flags Kiln passes them, and running them sandboxed (platform/proc.h).
 * Internal to src/aot/.
 */
#ifndef KILN_AOT_TOOLCHAIN_H
#define KILN_AOT_TOOLCHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "kiln/kiln.h"
#include "platform/proc.h"

/* The wabt release whose wasm-rt.h ABI Kiln's runtime implements. */
#define AOT_WABT_VERSION "1.0.32"
#define AOT_CC_MAX_WORDS 8
#define AOT_PATH_MAX 4096

/* Feature flags shared by wasm-validate and wasm2c (spec §1.8). */
#define AOT_WASM_FEATURE_FLAGS "--disable-simd", "--enable-exceptions", "--enable-multi-memory"

typedef struct aot_wabt {
    char wasm2c[AOT_PATH_MAX]; /* resolved paths */
    char wasm_validate[AOT_PATH_MAX];
    char version[64]; /* "wabt 1.0.32" */
} aot_wabt;

typedef struct aot_cc {
    char cmd[512];                     /* the command as configured, e.g. "clang" */
    char path[AOT_PATH_MAX];           /* found in PATH: what is executed */
    char real[AOT_PATH_MAX];           /* symlinks resolved: part of the identity */
    char *words[AOT_CC_MAX_WORDS + 1]; /* cmd split at spaces: argv prefix */
    char words_buf[512];
    size_t n_words;
    char version[256]; /* first line of `cc --version` */
    bool is_gcc, is_clang;
    bool is_tcc; /* Tiny C Compiler: the fast tier (docs/internals/aot.md "Tiers") */
} aot_cc;

/*
 * Locate wasm2c and wasm-validate and read `wasm2c --version` (once per
 * process; failures are retried on the next call). KILN_ETOOLCHAIN with an
 * "install wabt" hint when missing or of another release.
 */
int aot_wabt_get(aot_wabt *out /* OUT */, kiln_err *err);

/*
 * Resolve compiler command `cmd` (words separated by spaces, the first one
 * looked up in $PATH) and identify it with `--version`; cached per process
 * per command. KILN_ETOOLCHAIN when it cannot be found or run.
 */
int aot_cc_get(const char *cmd, aot_cc *out /* OUT */, kiln_err *err);

/* "resolved path\nfirst line of --version\nextra words": the compiler part
 * of the cache key. */
void aot_cc_identity(const aot_cc *cc, char *out, size_t size);

/*
 * The C flags for compiling generated code at `opt_level` with `cc`, in
 * order, without file names. tcc gets only the flags it implements, plus
 * `-include kiln_descriptor.h` (the builtins it lacks). Stored in `flags` (static strings; at most
 * AOT_CC_MAX_FLAGS). Every flag is part of the cache key.
 */
#define AOT_CC_MAX_FLAGS 16
size_t aot_cc_flags(const aot_cc *cc, int opt_level, const char *flags[AOT_CC_MAX_FLAGS]);

/*
 * Run a tool sandboxed in `cwd`: environment PATH (inherited), LC_ALL=C and
 * TMPDIR=cwd; RLIMIT_CPU = timeout, RLIMIT_AS 4 GiB, RLIMIT_FSIZE 1 GiB, no
 * core files; SIGKILL to its process group after `timeout_s` wall seconds.
 * Returns KILN_OK (inspect *res; free it with proc_result_free) or
 * KILN_ENOMEM/KILN_EIO when the child could not be started at all.
 */
int aot_tool_run(const char *path, char *const argv[], const char *cwd, unsigned timeout_s,
                 proc_result *res /* OUT */, kiln_err *err);

/* The ceiling of RLIMIT_AS for a tool run, and the default. */
#define AOT_TOOL_MAX_AS (4ULL << 30)

/* aot_tool_run with RLIMIT_AS = as_bytes (0 or above AOT_TOOL_MAX_AS: that
 * ceiling). A tool over it fails to allocate: gcc exits "out of memory",
 * clang and wasm2c abort (bad_alloc); compile.c recognises both. */
int aot_tool_run_limited(const char *path, char *const argv[], const char *cwd,
                         unsigned timeout_s, uint64_t as_bytes, proc_result *res /* OUT */,
                         kiln_err *err);

/*
 * Copy at most `max_lines` lines of `text` into `out`, joined by " | ", with
 * control characters escaped and `strip` (e.g. "module.wasm:") removed
 * wherever it occurs. Empty text becomes "(no output)".
 */
void aot_first_lines(const char *text, int max_lines, const char *strip, char *out, size_t size);

/* src/runtime/descriptor.h, embedded at build time: the header every
 * generated descriptor includes as "kiln_descriptor.h". */
extern const char aot_descriptor_h[];
extern const size_t aot_descriptor_h_len;

#endif
