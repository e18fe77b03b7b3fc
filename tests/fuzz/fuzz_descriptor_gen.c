/*
 * fuzz_descriptor_gen.c - the descriptor generator (src/aot/descriptor_gen.c)
 * on every module the reader accepts, written into memory (open_memstream),
 * never to disk. Guest names reach the generated C only as string literals:
 * the check below lexes the output and fails on any literal holding a byte
 * other than [A-Za-z0-9_ .>] or an octal escape, or running past its line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aot/descriptor_gen.h"
#include "aot/wasm_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_literals(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"')
            continue;
        /* "#include \"kiln_descriptor.h\"" and the key are Kiln's own text. */
        size_t j = i + 1;
        for (; j < n && s[j] != '"'; j++) {
            char c = s[j];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == ' ' || c == '.' || c == '>' || c == '-';
            if (c == '\\' && j + 3 < n && s[j + 1] >= '0' && s[j + 1] <= '3' && s[j + 2] >= '0' &&
                s[j + 2] <= '7' && s[j + 3] >= '0' && s[j + 3] <= '7') {
                j += 3;
                continue;
            }
            if (!ok) {
                fprintf(stderr, "fuzz_descriptor_gen: byte 0x%02x inside a string literal at %zu\n",
                        (unsigned char)c, j);
                abort();
            }
        }
        if (j >= n) {
            fprintf(stderr, "fuzz_descriptor_gen: unterminated string literal at %zu\n", i);
            abort();
        }
        i = j;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_wasm_info info;
    kiln_err err;
    if (kiln_wasm_parse(data, size, &info, &err) != KILN_OK) {
        kiln_wasm_info_free(&info);
        return 0;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    int rc = kiln_desc_generate(&info, "kiln_fuzz", "gen.h", "0123abcd", f, &err);
    fclose(f);
    if (rc != KILN_OK && rc != KILN_EUNSUPPORTED && rc != KILN_EIO) {
        fprintf(stderr, "fuzz_descriptor_gen: unexpected status %d: %s\n", rc, err.msg);
        abort();
    }
    if (rc == KILN_OK)
        check_literals(buf, len);
    free(buf);
    kiln_wasm_info_free(&info);
    return 0;
}
