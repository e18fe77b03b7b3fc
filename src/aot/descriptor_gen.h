/*
 * descriptor_gen.h - write the per-artifact descriptor C file (see
 * src/runtime/descriptor.h for the contract it implements).
 */
#ifndef KILN_AOT_DESCRIPTOR_GEN_H
#define KILN_AOT_DESCRIPTOR_GEN_H

#include <stdio.h>

#include "aot/wasm_reader.h"

/*
 * Write the descriptor for a module whose rewritten binary (kiln_wasm_rewrite)
 * was translated with `wasm2c -n <c_name>` into a header named `gen_header`.
 * `key` is the artifact's cache key. Returns KILN_OK or KILN_EIO/KILN_EUNSUPPORTED.
 */
int kiln_desc_generate(const kiln_wasm_info *info, const char *c_name, const char *gen_header,
                       const char *key, FILE *out, kiln_err *err);

#endif
