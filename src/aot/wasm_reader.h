/*
 * wasm_reader.h - decode the module-level structure of a .wasm binary
 * (types, imports, functions, tables, memories, globals, exports, tags, start)
 * and rewrite it so that no guest-chosen name ever reaches wasm2c.
 *
 * Kiln never hands a guest's import/export names to wasm2c: wasm2c 1.0.32
 * copies them into C comments, where `*` `/`, backslash-newline or `??/`
 * inject code. kiln_wasm_rewrite() replaces every import module/field and
 * export name with a synthetic one and drops custom sections; the original
 * names survive only in the descriptor, as octal-escaped C strings.
 *
 * This module does not validate function bodies (wasm-validate does that out
 * of process); it checks section structure, LEB encodings, UTF-8 names and
 * index ranges it uses, and never reads past the buffer.
 */
#ifndef KILN_AOT_WASM_READER_H
#define KILN_AOT_WASM_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/kiln.h"
#include "kiln/runtime.h"

#define WR_MAX_NAME 1024  /* bytes per import/export name */
#define WR_MAX_TYPE 512   /* bytes of a type string incl. NUL */

/*
 * Entity-count limits (KILN_ELIMIT beyond them). They are the JavaScript
 * embedding's implementation limits, which every toolchain already targets;
 * they bound what a hostile module can make the parser allocate.
 */
#define WR_MAX_TYPES 1000000
#define WR_MAX_FUNCS 1000000
#define WR_MAX_IMPORTS 100000
#define WR_MAX_EXPORTS 100000
#define WR_MAX_GLOBALS 1000000
#define WR_MAX_TABLES 100 /* per module; compilers emit one, the spec tests a handful */
#define WR_MAX_MEMORIES 100
#define WR_MAX_TAGS 1000000
#define WR_MAX_LOCALS 50000   /* per function, as browsers bound them */
#define WR_MAX_BODY 7654321   /* bytes per function body (JS API limit) */

typedef struct wr_limits {
    uint64_t min, max;
    bool has_max, shared, is64;
    char ref;      /* tables: element type letter ('r' funcref, 'e' externref); memories: 0 */
    bool imported; /* the first n_*_imports entries are imports */
} wr_limits;

typedef struct wr_global {
    char type;     /* value type letter (runtime.h KILN_T_*) */
    bool mut;
    bool imported;
} wr_global;

typedef struct wr_extern {
    char *module;            /* imports only; malloc'd, NUL-terminated, may hold NULs */
    uint32_t module_len;
    char *name;              /* malloc'd, NUL-terminated, may hold NULs */
    uint32_t name_len;
    kiln_extern_kind kind;
    uint32_t index;          /* exports: index in its index space; imports: type index (func/tag) */
    char type[WR_MAX_TYPE];  /* runtime.h kiln_extern_info type string:
                                func/tag "ij>d", memory "memory MIN" or "memory MIN MAX",
                                table "funcref MIN[ MAX]" / "externref MIN[ MAX]",
                                global "i" or "mut i" */
    uint32_t module_group;   /* imports: index of its distinct module name, in order of first appearance */
} wr_extern;

typedef struct kiln_wasm_info {
    uint32_t n_types;
    char **types;            /* signature string per type index ("ii>i") */
    uint32_t n_imports;
    wr_extern *imports;
    uint32_t n_import_modules; /* distinct import module names */
    uint32_t n_exports;
    wr_extern *exports;
    uint32_t n_funcs;        /* imported + defined */
    uint32_t *func_types;    /* type index per function (imports first) */
    uint32_t n_memories;     /* imported + defined */
    wr_limits *memories;
    uint32_t n_tables;
    wr_limits *tables;
    uint32_t n_globals;      /* imported + defined */
    wr_global *globals;
    uint32_t n_tags;         /* imported + defined */
    uint32_t *tag_types;     /* type index per tag (imports first) */
    /* How many of each index space are imports (they come first in it). */
    uint32_t n_func_imports, n_table_imports, n_memory_imports, n_global_imports, n_tag_imports;
    bool has_start;
    uint32_t start_func;
    uint32_t code_size;      /* bytes of the code section */
} kiln_wasm_info;

/*
 * Decode `buf`. On failure returns KILN_EMODULE (malformed, with the byte
 * offset and what was expected), KILN_EUNSUPPORTED (shared memory =>
 * "threads", 64-bit memory => "memory64", v128 => "SIMD", with the feature
 * name in the message), KILN_ELIMIT (a valid module over one of the limits
 * above, a name over WR_MAX_NAME or a signature over WR_MAX_TYPE) or
 * KILN_ENOMEM. On failure *info is left zeroed (freeing it is harmless); on
 * success it must be released with kiln_wasm_info_free. Thread-safe.
 */
int kiln_wasm_parse(const uint8_t *buf, size_t len, kiln_wasm_info *info /* OUT */,
                    kiln_err *err);
/* Release everything kiln_wasm_parse allocated and zero *info. NULL is ok. */
void kiln_wasm_info_free(kiln_wasm_info *info);

/*
 * Produce a copy of `buf` in which import i is named module "m<G>" field "f<i>"
 * (G = its module_group), export i is named "e<i>", and every custom section
 * is dropped. Everything else is copied byte for byte. *out is malloc'd
 * (release with kiln_free). `info` must come from kiln_wasm_parse of the same
 * bytes; a mismatch returns KILN_EINVAL. Section sizes are re-encoded as
 * minimal LEB128, so the output may be shorter than a padded input.
 */
int kiln_wasm_rewrite(const kiln_wasm_info *info, const uint8_t *buf, size_t len,
                      uint8_t **out /* OUT */, size_t *out_len /* OUT */, kiln_err *err);

/* Render `len` bytes as printable text for error messages: printable ASCII
 * is kept, anything else becomes \xHH. Always NUL-terminates dst (unless
 * dst_size is 0); when dst is too small the text is cut at a whole character
 * or escape and ends in "...". */
void kiln_wasm_name_display(const char *name, size_t len, char *dst, size_t dst_size);

#endif
