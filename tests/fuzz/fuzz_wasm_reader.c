/*
 * fuzz_wasm_reader.c - the .wasm reader and name rewriter (src/aot/wasm_reader.c)
 * on arbitrary bytes. Whatever kiln_wasm_parse accepts must rewrite, and the
 * rewritten module must parse again with the same shape and carry no guest
 * name: that is the property that keeps guest text out of wasm2c's C.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aot/wasm_reader.h"
#include "base/alloc.h"

#define CHECK(c)                                                                            \
    do {                                                                                    \
        if (!(c)) {                                                                         \
            fprintf(stderr, "fuzz_wasm_reader: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_wasm_info info;
    kiln_err err;
    if (kiln_wasm_parse(data, size, &info, &err) != KILN_OK) {
        /* On failure the info is zeroed and the message terminated. */
        CHECK(info.n_imports == 0 && info.imports == NULL && info.types == NULL);
        CHECK(memchr(err.msg, 0, sizeof(err.msg)) != NULL);
        kiln_wasm_info_free(&info);
        return 0;
    }
    /* Indices the reader hands to the descriptor generator stay in range. */
    for (uint32_t i = 0; i < info.n_funcs; i++)
        CHECK(info.func_types[i] < info.n_types);
    for (uint32_t i = 0; i < info.n_tags; i++)
        CHECK(info.tag_types[i] < info.n_types);
    for (uint32_t i = 0; i < info.n_imports; i++) {
        CHECK(info.imports[i].module_group < info.n_import_modules);
        CHECK(memchr(info.imports[i].type, 0, WR_MAX_TYPE) != NULL);
        char shown[64];
        kiln_wasm_name_display(info.imports[i].name, info.imports[i].name_len, shown,
                               sizeof(shown));
        CHECK(strlen(shown) < sizeof(shown));
    }
    for (uint32_t i = 0; i < info.n_exports; i++) {
        const wr_extern *ex = &info.exports[i];
        uint32_t limit = ex->kind == KILN_EXTERN_FUNC     ? info.n_funcs
                         : ex->kind == KILN_EXTERN_TABLE  ? info.n_tables
                         : ex->kind == KILN_EXTERN_MEMORY ? info.n_memories
                         : ex->kind == KILN_EXTERN_GLOBAL ? info.n_globals
                                                          : info.n_tags;
        CHECK(ex->index < limit);
    }
    if (info.has_start)
        CHECK(info.start_func < info.n_funcs);

    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = kiln_wasm_rewrite(&info, data, size, &out, &out_len, &err);
    CHECK(rc == KILN_OK || rc == KILN_ENOMEM);
    if (rc == KILN_OK) {
        kiln_wasm_info again;
        rc = kiln_wasm_parse(out, out_len, &again, &err);
        if (rc != KILN_OK)
            fprintf(stderr, "re-parse: %s\n", err.msg);
        CHECK(rc == KILN_OK);
        CHECK(again.n_imports == info.n_imports && again.n_exports == info.n_exports);
        CHECK(again.n_funcs == info.n_funcs && again.n_types == info.n_types);
        CHECK(again.n_memories == info.n_memories && again.n_tables == info.n_tables);
        CHECK(again.n_globals == info.n_globals && again.n_tags == info.n_tags);
        CHECK(again.n_import_modules == info.n_import_modules);
        /* Only synthetic names survive: m<G>/f<i>/e<i>. */
        for (uint32_t i = 0; i < again.n_imports; i++) {
            char want[32];
            snprintf(want, sizeof(want), "m%u", again.imports[i].module_group);
            CHECK(strcmp(again.imports[i].module, want) == 0);
            snprintf(want, sizeof(want), "f%u", i);
            CHECK(strcmp(again.imports[i].name, want) == 0);
            CHECK(strcmp(again.imports[i].type, info.imports[i].type) == 0);
        }
        for (uint32_t i = 0; i < again.n_exports; i++) {
            char want[32];
            snprintf(want, sizeof(want), "e%u", i);
            CHECK(strcmp(again.exports[i].name, want) == 0);
            CHECK(again.exports[i].kind == info.exports[i].kind);
            CHECK(again.exports[i].index == info.exports[i].index);
        }
        kiln_wasm_info_free(&again);
        kiln_free(out);
    }
    kiln_wasm_info_free(&info);
    return 0;
}
