/*
 * test_wasm_reader.c - unit tests for src/aot/wasm_reader.c: decoding, the
 * errors for malformed and unsupported modules, and the name rewrite.
 * Modules are built byte by byte here; no external tool runs. "?\?/" is how
 * this file spells the trigraph "??" "/" (-std=c11 would translate it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "aot/wasm_reader.h"
#include "base/alloc.h"

/* ---- a tiny module builder ------------------------------------------- */

#define WBUF_SIZE 8192
#include "support/wbuf.h"

static void header(wbuf *w)
{
    static const uint8_t h[8] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00};
    w->n = 0;
    put(w, h, sizeof(h));
}

/* Type section with one signature given as params/results letter strings. */
static void put_functype(wbuf *w, const char *params, const char *results)
{
    const char *parts[2] = {params, results};
    put1(w, 0x60);
    for (int p = 0; p < 2; p++) {
        putu(w, (uint32_t)strlen(parts[p]));
        for (const char *c = parts[p]; *c; c++) {
            switch (*c) {
            case 'i': put1(w, 0x7F); break;
            case 'j': put1(w, 0x7E); break;
            case 'f': put1(w, 0x7D); break;
            case 'd': put1(w, 0x7C); break;
            case 'r': put1(w, 0x70); break;
            case 'e': put1(w, 0x6F); break;
            case 'v': put1(w, 0x7B); break;
            default: fail_msg("bad letter %c", *c);
            }
        }
    }
}

/* Function + code sections for `n` functions of type 0 whose body is `end`. */
static void put_funcs(wbuf *m, uint32_t n)
{
    wbuf s = {0};
    putu(&s, n);
    for (uint32_t i = 0; i < n; i++)
        putu(&s, 0);
    section(m, 3, &s);
}

static void put_code(wbuf *m, uint32_t n)
{
    wbuf s = {0};
    putu(&s, n);
    for (uint32_t i = 0; i < n; i++) {
        put1(&s, 2);    /* body size */
        put1(&s, 0);    /* no locals */
        put1(&s, 0x0B); /* end */
    }
    section(m, 10, &s);
}

static void parse_ok(const wbuf *m, kiln_wasm_info *info)
{
    kiln_err err = {0};
    int rc = kiln_wasm_parse(m->b, m->n, info, &err);
    if (rc != KILN_OK)
        fail_msg("parse failed (%d): %s", rc, err.msg);
}

/* Parse must fail with `code` and a message containing every needle. */
static void parse_fails(const uint8_t *b, size_t n, int code, const char *needle1,
                        const char *needle2)
{
    kiln_wasm_info info;
    kiln_err err = {0};
    int rc = kiln_wasm_parse(b, n, &info, &err);
    if (rc != code)
        fail_msg("expected status %d, got %d: %s", code, rc, err.msg);
    assert_int_equal(err.code, code);
    if (needle1 != NULL && strstr(err.msg, needle1) == NULL)
        fail_msg("message lacks [%s]: %s", needle1, err.msg);
    if (needle2 != NULL && strstr(err.msg, needle2) == NULL)
        fail_msg("message lacks [%s]: %s", needle2, err.msg);
    /* A failed parse leaves nothing to free. */
    assert_null(info.types);
    assert_null(info.imports);
    assert_null(info.exports);
    assert_int_equal(info.n_imports, 0);
}

static const wr_extern *find_export(const kiln_wasm_info *info, const char *name, size_t len)
{
    for (uint32_t i = 0; i < info->n_exports; i++)
        if (info->exports[i].name_len == len && memcmp(info->exports[i].name, name, len) == 0)
            return &info->exports[i];
    return NULL;
}

/* ---- decoding ---------------------------------------------------------- */

static void test_minimal_module(void **state)
{
    static const uint8_t m[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00};
    kiln_wasm_info info;
    kiln_err err = {0};
    assert_int_equal(kiln_wasm_parse(m, sizeof(m), &info, &err), KILN_OK);
    assert_int_equal(info.n_types, 0);
    assert_int_equal(info.n_imports, 0);
    assert_int_equal(info.n_exports, 0);
    assert_int_equal(info.n_funcs, 0);
    assert_int_equal(info.n_memories, 0);
    assert_false(info.has_start);
    kiln_wasm_info_free(&info);
    kiln_wasm_info_free(&info); /* zeroed after free: a second call is harmless */
}

static void test_bad_header(void **state)
{
    static const uint8_t short_[] = {0x00, 0x61, 0x73};
    static const uint8_t magic[] = {0x7F, 'E', 'L', 'F', 0x01, 0x00, 0x00, 0x00};
    static const uint8_t version[] = {0x00, 0x61, 0x73, 0x6D, 0x02, 0x00, 0x00, 0x00};
    static const uint8_t component[] = {0x00, 0x61, 0x73, 0x6D, 0x0D, 0x00, 0x01, 0x00};
    parse_fails(short_, sizeof(short_), KILN_EMODULE, "magic", "offset 0");
    parse_fails(magic, sizeof(magic), KILN_EMODULE, "magic", "offset 0");
    parse_fails(version, sizeof(version), KILN_EMODULE, "version", "offset 4");
    parse_fails(component, sizeof(component), KILN_EUNSUPPORTED, "component model", NULL);
}

static void test_type_signatures(void **state)
{
    wbuf m, s = {0};
    header(&m);
    putu(&s, 4);
    put_functype(&s, "ii", "i");
    put_functype(&s, "", "");
    put_functype(&s, "jfdre", "ij");
    put_functype(&s, "", "d");
    section(&m, 1, &s);
    kiln_wasm_info info;
    parse_ok(&m, &info);
    assert_int_equal(info.n_types, 4);
    assert_string_equal(info.types[0], "ii>i");
    assert_string_equal(info.types[1], ">");
    assert_string_equal(info.types[2], "jfdre>ij");
    assert_string_equal(info.types[3], ">d");
    kiln_wasm_info_free(&info);
}

static void test_imports_of_every_kind(void **state)
{
    wbuf m, s = {0};
    header(&m);
    putu(&s, 2);
    put_functype(&s, "ii", "i");
    put_functype(&s, "i", "");
    section(&m, 1, &s);

    s.n = 0;
    putu(&s, 7);
    puts_(&s, "env");
    puts_(&s, "add");
    put1(&s, 0x00); /* func */
    putu(&s, 0);
    puts_(&s, "wasi");
    puts_(&s, "tbl");
    put1(&s, 0x01); /* table funcref 1..10 */
    put1(&s, 0x70);
    put1(&s, 0x01);
    putu(&s, 1);
    putu(&s, 10);
    puts_(&s, "env");
    puts_(&s, "memory");
    put1(&s, 0x02); /* memory, min 1, no max */
    put1(&s, 0x00);
    putu(&s, 1);
    puts_(&s, "env");
    puts_(&s, "counter");
    put1(&s, 0x03); /* global mut i64 */
    put1(&s, 0x7E);
    put1(&s, 0x01);
    puts_(&s, "other");
    puts_(&s, "pi");
    put1(&s, 0x03); /* global const f64 */
    put1(&s, 0x7C);
    put1(&s, 0x00);
    puts_(&s, "wasi");
    puts_(&s, "oops");
    put1(&s, 0x04); /* tag: attribute 0, type 1 */
    put1(&s, 0x00);
    putu(&s, 1);
    puts_(&s, "wasi");
    puts_(&s, "refs");
    put1(&s, 0x01); /* table externref 0..(no max) */
    put1(&s, 0x6F);
    put1(&s, 0x00);
    putu(&s, 0);
    section(&m, 2, &s);

    kiln_wasm_info info;
    parse_ok(&m, &info);
    assert_int_equal(info.n_imports, 7);
    const wr_extern *im = info.imports;
    assert_string_equal(im[0].module, "env");
    assert_string_equal(im[0].name, "add");
    assert_int_equal(im[0].kind, KILN_EXTERN_FUNC);
    assert_int_equal(im[0].index, 0);
    assert_string_equal(im[0].type, "ii>i");
    assert_int_equal(im[1].kind, KILN_EXTERN_TABLE);
    assert_string_equal(im[1].type, "funcref 1 10");
    assert_int_equal(im[2].kind, KILN_EXTERN_MEMORY);
    assert_string_equal(im[2].type, "memory 1");
    assert_int_equal(im[3].kind, KILN_EXTERN_GLOBAL);
    assert_string_equal(im[3].type, "mut j");
    assert_string_equal(im[4].type, "d");
    assert_int_equal(im[5].kind, KILN_EXTERN_TAG);
    assert_int_equal(im[5].index, 1);
    assert_string_equal(im[5].type, "i>");
    assert_string_equal(im[6].type, "externref 0");

    /* Module groups number distinct module names by first appearance. */
    assert_int_equal(info.n_import_modules, 3);
    assert_int_equal(im[0].module_group, 0); /* env */
    assert_int_equal(im[1].module_group, 1); /* wasi */
    assert_int_equal(im[2].module_group, 0);
    assert_int_equal(im[3].module_group, 0);
    assert_int_equal(im[4].module_group, 2); /* other */
    assert_int_equal(im[5].module_group, 1);
    assert_int_equal(im[6].module_group, 1);

    assert_int_equal(info.n_funcs, 1);
    assert_int_equal(info.n_func_imports, 1);
    assert_int_equal(info.func_types[0], 0);
    assert_int_equal(info.n_tables, 2);
    assert_int_equal(info.n_table_imports, 2);
    assert_int_equal(info.tables[0].min, 1);
    assert_int_equal(info.tables[0].max, 10);
    assert_true(info.tables[0].has_max);
    assert_true(info.tables[0].imported);
    assert_int_equal(info.tables[1].ref, KILN_T_EXTERNREF);
    assert_int_equal(info.n_memories, 1);
    assert_false(info.memories[0].has_max);
    assert_int_equal(info.n_globals, 2);
    assert_true(info.globals[0].mut);
    assert_int_equal(info.globals[1].type, KILN_T_F64);
    assert_int_equal(info.n_tags, 1);
    assert_int_equal(info.tag_types[0], 1);
    kiln_wasm_info_free(&info);
}

/* A module exporting one of each kind, with defined entities. */
static void build_exports_module(wbuf *m)
{
    wbuf s = {0};
    header(m);
    putu(&s, 2);
    put_functype(&s, "ii", "i");
    put_functype(&s, "j", "");
    section(m, 1, &s);
    s.n = 0; /* one function import so export indices span both kinds */
    putu(&s, 1);
    puts_(&s, "env");
    puts_(&s, "log");
    put1(&s, 0x00);
    putu(&s, 1);
    section(m, 2, &s);
    put_funcs(m, 1);
    s.n = 0;
    putu(&s, 1); /* table externref 0 */
    put1(&s, 0x6F);
    put1(&s, 0x00);
    putu(&s, 0);
    section(m, 4, &s);
    s.n = 0;
    putu(&s, 1); /* memory 2..16 */
    put1(&s, 0x01);
    putu(&s, 2);
    putu(&s, 16);
    section(m, 5, &s);
    s.n = 0;
    putu(&s, 1); /* global mut f32 = 1.5 */
    put1(&s, 0x7D);
    put1(&s, 0x01);
    put1(&s, 0x43);
    put(&s, "\x00\x00\xC0\x3F", 4);
    put1(&s, 0x0B);
    section(m, 6, &s);
    s.n = 0;
    putu(&s, 5);
    puts_(&s, "add");
    put1(&s, 0x00);
    putu(&s, 1);
    puts_(&s, "log_again");
    put1(&s, 0x00);
    putu(&s, 0);
    puts_(&s, "memory");
    put1(&s, 0x02);
    putu(&s, 0);
    puts_(&s, "table");
    put1(&s, 0x01);
    putu(&s, 0);
    puts_(&s, "g");
    put1(&s, 0x03);
    putu(&s, 0);
    section(m, 7, &s);
    s.n = 0;
    putu(&s, 1); /* start: function 1 */
    section(m, 8, &s);
    put_code(m, 1);
}

static void test_exports_and_start(void **state)
{
    wbuf m;
    build_exports_module(&m);
    kiln_wasm_info info;
    parse_ok(&m, &info);
    assert_int_equal(info.n_exports, 5);
    const wr_extern *e = find_export(&info, "add", 3);
    assert_non_null(e);
    assert_int_equal(e->kind, KILN_EXTERN_FUNC);
    assert_int_equal(e->index, 1);
    assert_string_equal(e->type, "ii>i");
    assert_null(e->module);
    e = find_export(&info, "log_again", 9);
    assert_non_null(e);
    assert_string_equal(e->type, "j>");
    e = find_export(&info, "memory", 6);
    assert_non_null(e);
    assert_int_equal(e->kind, KILN_EXTERN_MEMORY);
    assert_string_equal(e->type, "memory 2 16");
    e = find_export(&info, "table", 5);
    assert_non_null(e);
    assert_string_equal(e->type, "externref 0");
    e = find_export(&info, "g", 1);
    assert_non_null(e);
    assert_string_equal(e->type, "mut f");
    assert_true(info.has_start);
    assert_int_equal(info.start_func, 1);
    assert_int_equal(info.n_funcs, 2);
    assert_int_equal(info.code_size, 4); /* count + one 3-byte body */
    assert_int_equal(info.memories[0].min, 2);
    assert_int_equal(info.memories[0].max, 16);
    kiln_wasm_info_free(&info);
}

static void test_hostile_names_stored_raw(void **state)
{
    static const struct {
        const char *s;
        size_t n;
    } names[] = {
        {"*/ int evil; /*", 15}, {"a\0b", 3}, {"line\nbreak", 10}, {"?\?/", 3},
        {"back\\\nslash", 11},   {"", 0},     {"caf\xC3\xA9", 5},
    };
    const size_t count = sizeof(names) / sizeof(names[0]);
    wbuf m, s = {0};
    header(&m);
    putu(&s, 1);
    put_functype(&s, "", "");
    section(&m, 1, &s);
    s.n = 0;
    putu(&s, 1);
    putn(&s, "*/\0", 3);
    putn(&s, "?\?/\n", 4);
    put1(&s, 0x00);
    putu(&s, 0);
    section(&m, 2, &s);
    s.n = 0;
    putu(&s, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        putn(&s, names[i].s, names[i].n);
        put1(&s, 0x00);
        putu(&s, 0);
    }
    section(&m, 7, &s);
    kiln_wasm_info info;
    parse_ok(&m, &info);
    assert_int_equal(info.imports[0].module_len, 3);
    assert_memory_equal(info.imports[0].module, "*/\0", 4); /* includes the terminator */
    assert_int_equal(info.imports[0].name_len, 4);
    assert_memory_equal(info.imports[0].name, "?\?/\n", 5);
    assert_int_equal(info.n_exports, count);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(info.exports[i].name_len, names[i].n);
        assert_memory_equal(info.exports[i].name, names[i].s, names[i].n);
        assert_int_equal(info.exports[i].name[names[i].n], '\0');
    }
    kiln_wasm_info_free(&info);
}

/* Module: header, then an export section holding one export named `name`. */
static size_t build_one_export(wbuf *m, uint8_t section_id, const char *name, size_t n)
{
    wbuf s = {0};
    header(m);
    putu(&s, 1);
    putn(&s, name, n);
    if (section_id == 2) /* an import: `name` is the module, then field "f" */
        puts_(&s, "f");
    put1(&s, 0x00);
    putu(&s, 0);
    section(m, section_id, &s);
    return 8 + 1 + 1 + 1 + 1; /* offset of the first name byte */
}

static void test_invalid_utf8_rejected(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        size_t bad; /* index of the first bad byte */
    } cases[] = {
        {"ab\xC0\x80", 4, 2},       /* overlong NUL */
        {"\x80", 1, 0},             /* lone continuation */
        {"x\xED\xA0\x80", 4, 1},    /* surrogate U+D800 */
        {"ok\xF4\x90\x80\x80", 6, 2}, /* above U+10FFFF */
        {"\xE2\x82", 2, 0},         /* truncated sequence */
        {"abc\xFF", 4, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wbuf m;
        size_t at = build_one_export(&m, 7, cases[i].s, cases[i].n);
        char needle[96];
        snprintf(needle, sizeof(needle), "malformed UTF-8 in export name at offset %zu",
                 at + cases[i].bad);
        parse_fails(m.b, m.n, KILN_EMODULE, needle, NULL);
    }
    /* Import module names are checked too. */
    wbuf m;
    size_t at = build_one_export(&m, 2, "\xC3(", 2);
    char needle[96];
    snprintf(needle, sizeof(needle), "malformed UTF-8 in import module name at offset %zu", at);
    parse_fails(m.b, m.n, KILN_EMODULE, needle, NULL);
}

static void test_name_too_long(void **state)
{
    static char big[WR_MAX_NAME + 1];
    memset(big, 'a', sizeof(big));
    wbuf m;
    build_one_export(&m, 7, big, WR_MAX_NAME + 1);
    parse_fails(m.b, m.n, KILN_ELIMIT, "1025 bytes", "1024");
}

static void test_entity_limits(void **state)
{
    /* WR_MAX_MEMORIES + 1 memories: valid wasm, but over Kiln's limit. */
    wbuf m, s = {0};
    header(&m);
    putu(&s, WR_MAX_MEMORIES + 1);
    for (int i = 0; i < WR_MAX_MEMORIES + 1; i++) {
        put1(&s, 0x00);
        putu(&s, 0);
    }
    section(&m, 5, &s);
    parse_fails(m.b, m.n, KILN_ELIMIT, "memory count 101", "limit of 100");
    /* One fewer is accepted. */
    header(&m);
    s.n = 0;
    putu(&s, WR_MAX_MEMORIES);
    for (int i = 0; i < WR_MAX_MEMORIES; i++) {
        put1(&s, 0x00);
        putu(&s, 0);
    }
    section(&m, 5, &s);
    kiln_wasm_info info;
    parse_ok(&m, &info);
    assert_int_equal(info.n_memories, WR_MAX_MEMORIES);
    kiln_wasm_info_free(&info);
    /* Imported and defined memories count together. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    puts_(&s, "env");
    puts_(&s, "m");
    put(&s, "\x02\x00\x00", 3);
    section(&m, 2, &s);
    s.n = 0;
    putu(&s, WR_MAX_MEMORIES);
    for (int i = 0; i < WR_MAX_MEMORIES; i++) {
        put1(&s, 0x00);
        putu(&s, 0);
    }
    section(&m, 5, &s);
    parse_fails(m.b, m.n, KILN_ELIMIT, "more than 100 memories", NULL);
}

static void test_truncated_section_rejected(void **state)
{
    /* A type section that claims 10 bytes when 2 remain. */
    static const uint8_t m[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
                                0x01, 0x0A, 0x01, 0x60};
    parse_fails(m, sizeof(m), KILN_EMODULE, "type section claims 10 bytes", "offset 8");
    /* A section size cut off mid-LEB. */
    static const uint8_t m2[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0x80};
    parse_fails(m2, sizeof(m2), KILN_EMODULE, "section size", "offset 10");
    /* A section whose contents stop short of its size. */
    static const uint8_t m3[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
                                 0x01, 0x05, 0x01, 0x60, 0x00, 0x00, 0x00};
    parse_fails(m3, sizeof(m3), KILN_EMODULE, "ends 1 bytes before", "offset 14");
    /* An entry that runs past the end of its section into the next one. */
    static const uint8_t m4[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
                                 0x01, 0x04, 0x01, 0x60, 0x01, 0x7F, 0x00};
    parse_fails(m4, sizeof(m4), KILN_EMODULE, "unexpected end of section", "offset 14");
}

static void test_count_overflow_rejected(void **state)
{
    /* 0xFFFFFFFF types in a 6-byte section: must fail before allocating. */
    static const uint8_t m[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
                                0x01, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x60};
    parse_fails(m, sizeof(m), KILN_EMODULE, "type count 4294967295", "offset 10");
    /* An import whose name length runs past the section. */
    static const uint8_t m2[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
                                 0x02, 0x06, 0x01, 0x7F, 'e', 'n', 'v', 0x00};
    parse_fails(m2, sizeof(m2), KILN_EMODULE, "import module name length 127", "offset 11");
    /* 0x80000 parameters claimed by a 4-byte type entry. */
    static const uint8_t m3[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
                                 0x01, 0x05, 0x01, 0x60, 0x80, 0x80, 0x20};
    parse_fails(m3, sizeof(m3), KILN_EMODULE, "parameter count", "offset 12");
}

static void test_bad_leb_rejected(void **state)
{
    /* Six-byte u32 and a fifth byte with bits beyond 32. */
    static const uint8_t m[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
                                0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    parse_fails(m, sizeof(m), KILN_EMODULE, "integer too large", "offset 9");
    static const uint8_t m2[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
                                 0x01, 0x81, 0x80, 0x80, 0x80, 0x10};
    parse_fails(m2, sizeof(m2), KILN_EMODULE, "integer too large", "offset 9");
    /* A padded but in-range LEB is fine: type section of size 1 as 81 80 80 80 00. */
    static const uint8_t ok[] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
                                 0x01, 0x81, 0x80, 0x80, 0x80, 0x00, 0x00};
    kiln_wasm_info info;
    kiln_err err = {0};
    assert_int_equal(kiln_wasm_parse(ok, sizeof(ok), &info, &err), KILN_OK);
    kiln_wasm_info_free(&info);
}

static void memory_module(wbuf *m, uint8_t flags, bool imported)
{
    wbuf s = {0};
    header(m);
    if (imported) {
        putu(&s, 1);
        puts_(&s, "env");
        puts_(&s, "mem");
        put1(&s, 0x02);
    } else {
        putu(&s, 1);
    }
    put1(&s, flags);
    putu(&s, 1);
    if (flags & 1)
        putu(&s, 2);
    section(m, imported ? 2 : 5, &s);
}

static void test_unsupported_features_named(void **state)
{
    wbuf m;
    memory_module(&m, 0x03, false);
    parse_fails(m.b, m.n, KILN_EUNSUPPORTED, "threads (shared memory)", "offset 11");
    memory_module(&m, 0x03, true);
    parse_fails(m.b, m.n, KILN_EUNSUPPORTED, "threads (shared memory)", NULL);
    memory_module(&m, 0x04, false);
    parse_fails(m.b, m.n, KILN_EUNSUPPORTED, "memory64", "offset 11");
    memory_module(&m, 0x05, true);
    parse_fails(m.b, m.n, KILN_EUNSUPPORTED, "memory64", NULL);
    memory_module(&m, 0x08, false);
    parse_fails(m.b, m.n, KILN_EMODULE, "limits flags 0x08", NULL);
    /* Control: the same builder with ordinary flags parses. */
    memory_module(&m, 0x01, false);
    kiln_wasm_info info;
    parse_ok(&m, &info);
    assert_int_equal(info.memories[0].max, 2);
    kiln_wasm_info_free(&info);

    wbuf s = {0};
    header(&m);
    putu(&s, 1);
    put_functype(&s, "iv", "");
    section(&m, 1, &s);
    parse_fails(m.b, m.n, KILN_EUNSUPPORTED, "SIMD (v128)", "offset 14");
    /* v128.const in a global initializer. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x7F);
    put1(&s, 0x00);
    put1(&s, 0xFD);
    put1(&s, 0x0C);
    section(&m, 6, &s);
    parse_fails(m.b, m.n, KILN_EUNSUPPORTED, "SIMD", NULL);
}

static void test_global_init_exprs(void **state)
{
    /* Immediates containing 0x0B must not end the scan early. */
    wbuf m, s = {0};
    header(&m);
    s.n = 0;
    putu(&s, 1);
    puts_(&s, "env");
    puts_(&s, "base");
    put1(&s, 0x03);
    put1(&s, 0x7F);
    put1(&s, 0x00);
    section(&m, 2, &s);
    s.n = 0;
    putu(&s, 7);
    put(&s, "\x7F\x00\x41\x0B\x0B", 5);                                 /* i32.const 11 */
    put(&s, "\x7E\x01\x42\x8B\x80\x80\x80\x80\x80\x80\x80\x80\x7F\x0B", 14); /* i64 min */
    put(&s, "\x7D\x00\x43\x0B\x0B\x0B\x0B\x0B", 8);                     /* f32 bits */
    put(&s, "\x7C\x00\x44\x0B\x0B\x0B\x0B\x0B\x0B\x0B\x0B\x0B", 12);    /* f64 bits */
    put(&s, "\x7F\x00\x23\x00\x41\x01\x6A\x0B", 8); /* global.get 0 + 1 (extended const) */
    put(&s, "\x6F\x00\xD0\x6F\x0B", 5);             /* ref.null extern */
    put(&s, "\x70\x00\xD2\x00\x0B", 5);             /* ref.func 0 */
    section(&m, 6, &s);
    s.n = 0;
    putu(&s, 1);
    puts_(&s, "last");
    put1(&s, 0x03);
    putu(&s, 7);
    section(&m, 7, &s);
    kiln_wasm_info info;
    parse_ok(&m, &info);
    assert_int_equal(info.n_globals, 8);
    assert_int_equal(info.n_global_imports, 1);
    assert_int_equal(info.globals[2].type, KILN_T_I64);
    assert_true(info.globals[2].mut);
    assert_int_equal(info.globals[7].type, KILN_T_FUNCREF);
    assert_string_equal(info.exports[0].type, "r");
    kiln_wasm_info_free(&info);

    /* An i32.const with an over-long immediate, and a disallowed opcode. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    put(&s, "\x7F\x00\x41\x80\x80\x80\x80\x40\x0B", 9);
    section(&m, 6, &s);
    parse_fails(m.b, m.n, KILN_EMODULE, "i32.const", NULL);
    header(&m);
    s.n = 0;
    putu(&s, 1);
    put(&s, "\x7F\x00\x20\x00\x0B", 5); /* local.get */
    section(&m, 6, &s);
    parse_fails(m.b, m.n, KILN_EMODULE, "opcode 0x20", "offset 13");
    /* An initializer with no end. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    put(&s, "\x7F\x00\x41\x00", 4);
    section(&m, 6, &s);
    parse_fails(m.b, m.n, KILN_EMODULE, "constant expression", NULL);
}

static void test_structure_errors(void **state)
{
    wbuf m, s = {0};
    /* Function section before type section. */
    header(&m);
    put_funcs(&m, 0);
    s.n = 0;
    putu(&s, 0);
    section(&m, 1, &s);
    parse_fails(m.b, m.n, KILN_EMODULE, "type section is duplicated or out of order", NULL);
    /* Unknown section id. */
    header(&m);
    put1(&m, 14);
    put1(&m, 0);
    parse_fails(m.b, m.n, KILN_EMODULE, "unknown section id 14", "offset 8");
    /* Export index out of range. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    puts_(&s, "f");
    put1(&s, 0x00);
    putu(&s, 5);
    section(&m, 7, &s);
    parse_fails(m.b, m.n, KILN_EMODULE, "names function 5", NULL);
    /* Function with an undefined type. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    putu(&s, 3);
    section(&m, 3, &s);
    parse_fails(m.b, m.n, KILN_EMODULE, "type index 3", NULL);
    /* Code count differs from function count, and missing code section. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    put_functype(&s, "", "");
    section(&m, 1, &s);
    put_funcs(&m, 2);
    put_code(&m, 1);
    parse_fails(m.b, m.n, KILN_EMODULE, "1 bodies", "declares 2");
    header(&m);
    section(&m, 1, &s);
    put_funcs(&m, 1);
    parse_fails(m.b, m.n, KILN_EMODULE, "no code section", NULL);
    /* Start function out of range. */
    header(&m);
    s.n = 0;
    putu(&s, 0);
    section(&m, 8, &s);
    parse_fails(m.b, m.n, KILN_EMODULE, "start function 0", NULL);
    /* Duplicate export names are caught here, before the rewrite hides them. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    put_functype(&s, "", "");
    section(&m, 1, &s);
    put_funcs(&m, 1);
    s.n = 0;
    putu(&s, 2);
    puts_(&s, "dup\n");
    put1(&s, 0x00);
    putu(&s, 0);
    puts_(&s, "dup\n");
    put1(&s, 0x00);
    putu(&s, 0);
    section(&m, 7, &s);
    put_code(&m, 1);
    parse_fails(m.b, m.n, KILN_EMODULE, "duplicate export name \"dup\\x0a\"", NULL);
}

static void test_signature_length_limit(void **state)
{
    wbuf m, s = {0};
    header(&m);
    putu(&s, 1);
    put1(&s, 0x60);
    putu(&s, WR_MAX_TYPE - 1); /* one more than fits with '>' and NUL */
    for (int i = 0; i < WR_MAX_TYPE - 1; i++)
        put1(&s, 0x7F);
    putu(&s, 0);
    section(&m, 1, &s);
    parse_fails(m.b, m.n, KILN_ELIMIT, "more than 510 parameters", NULL);
    /* 510 letters (509 params + 1 result) is the largest accepted signature. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x60);
    putu(&s, 509);
    for (int i = 0; i < 509; i++)
        put1(&s, 0x7E);
    putu(&s, 1);
    put1(&s, 0x7F);
    section(&m, 1, &s);
    kiln_wasm_info info;
    parse_ok(&m, &info);
    assert_int_equal(strlen(info.types[0]), 511);
    kiln_wasm_info_free(&info);
}

static void test_tag_section(void **state)
{
    wbuf m, s = {0};
    header(&m);
    putu(&s, 1);
    put_functype(&s, "ij", "");
    section(&m, 1, &s);
    s.n = 0; /* tag section comes between memory and global */
    putu(&s, 2);
    put1(&s, 0x00);
    putu(&s, 0);
    put1(&s, 0x00);
    putu(&s, 0);
    section(&m, 13, &s);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x7F);
    put1(&s, 0x00);
    put(&s, "\x41\x00\x0B", 3);
    section(&m, 6, &s);
    s.n = 0;
    putu(&s, 1);
    puts_(&s, "err");
    put1(&s, 0x04);
    putu(&s, 1);
    section(&m, 7, &s);
    kiln_wasm_info info;
    parse_ok(&m, &info);
    assert_int_equal(info.n_tags, 2);
    assert_int_equal(info.exports[0].kind, KILN_EXTERN_TAG);
    assert_string_equal(info.exports[0].type, "ij>");
    kiln_wasm_info_free(&info);
    /* A bad attribute byte is malformed. */
    header(&m);
    s.n = 0;
    putu(&s, 1);
    put_functype(&s, "", "");
    section(&m, 1, &s);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x01);
    putu(&s, 0);
    section(&m, 13, &s);
    parse_fails(m.b, m.n, KILN_EMODULE, "tag attribute 0x01", NULL);
}

/* ---- rewrite ----------------------------------------------------------- */

/* Types, imports from three modules, hostile export names, customs. */
static void build_rewrite_module(wbuf *m)
{
    wbuf s = {0};
    header(m);
    s.n = 0;
    puts_(&s, "name");
    put(&s, "\x01\x02\x03", 3);
    section(m, 0, &s);
    s.n = 0;
    putu(&s, 2);
    put_functype(&s, "ii", "i");
    put_functype(&s, "", "");
    section(m, 1, &s);
    s.n = 0;
    putu(&s, 4);
    puts_(&s, "extism:host/env");
    puts_(&s, "*/ evil(); /*");
    put1(&s, 0x00);
    putu(&s, 0);
    puts_(&s, "wasi_snapshot_preview1");
    puts_(&s, "fd_write");
    put1(&s, 0x00);
    putu(&s, 0);
    puts_(&s, "extism:host/env");
    puts_(&s, "memory");
    put1(&s, 0x02);
    put1(&s, 0x01);
    putu(&s, 1);
    putu(&s, 300); /* a two-byte LEB copied verbatim */
    putn(&s, "n\0l", 3);
    puts_(&s, "g");
    put1(&s, 0x03);
    put1(&s, 0x7E);
    put1(&s, 0x01);
    section(m, 2, &s);
    s.n = 0;
    puts_(&s, "producers");
    put(&s, "*/", 2);
    section(m, 0, &s);
    put_funcs(m, 2);
    s.n = 0;
    putu(&s, 3);
    puts_(&s, "*/\n#error x /*");
    put1(&s, 0x00);
    putu(&s, 2);
    puts_(&s, "_start");
    put1(&s, 0x00);
    putu(&s, 3);
    puts_(&s, "mem?\?/");
    put1(&s, 0x02);
    putu(&s, 0);
    section(m, 7, &s);
    put_code(m, 2);
    s.n = 0; /* a data section (active, memory 0, offset 0, 2 bytes) */
    putu(&s, 1);
    put(&s, "\x00\x41\x00\x0B\x02hi", 7);
    section(m, 11, &s);
    s.n = 0;
    puts_(&s, "trailing");
    section(m, 0, &s);
}

/* Find section `id` in a module; returns its payload or NULL. */
static const uint8_t *find_section(const uint8_t *b, size_t n, uint8_t id, uint32_t *size,
                                   int *count)
{
    size_t pos = 8;
    const uint8_t *found = NULL;
    *count = 0;
    while (pos < n) {
        uint8_t sid = b[pos++];
        uint32_t sz = 0;
        int shift = 0;
        uint8_t c;
        do {
            c = b[pos++];
            sz |= (uint32_t)(c & 0x7F) << shift;
            shift += 7;
        } while (c & 0x80);
        if (sid == id) {
            (*count)++;
            found = b + pos;
            *size = sz;
        }
        pos += sz;
    }
    assert_int_equal(pos, n);
    return found;
}

static bool contains(const uint8_t *b, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(b + i, needle, k) == 0)
            return true;
    return false;
}

static void test_rewrite_synthetic_names(void **state)
{
    wbuf m;
    build_rewrite_module(&m);
    kiln_wasm_info info, again;
    parse_ok(&m, &info);
    assert_int_equal(info.n_import_modules, 3);
    uint8_t *out = NULL;
    size_t out_len = 0;
    kiln_err err = {0};
    int rc = kiln_wasm_rewrite(&info, m.b, m.n, &out, &out_len, &err);
    if (rc != KILN_OK)
        fail_msg("rewrite failed: %s", err.msg);
    assert_int_equal(kiln_wasm_parse(out, out_len, &again, &err), KILN_OK);

    static const char *const mods[] = {"m0", "m1", "m0", "m2"};
    static const char *const fields[] = {"f0", "f1", "f2", "f3"};
    assert_int_equal(again.n_imports, info.n_imports);
    for (uint32_t i = 0; i < info.n_imports; i++) {
        assert_string_equal(again.imports[i].module, mods[i]);
        assert_string_equal(again.imports[i].name, fields[i]);
        assert_int_equal(again.imports[i].kind, info.imports[i].kind);
        assert_string_equal(again.imports[i].type, info.imports[i].type);
        assert_int_equal(again.imports[i].module_group, info.imports[i].module_group);
    }
    assert_string_equal(again.imports[2].type, "memory 1 300");
    assert_string_equal(again.imports[3].type, "mut j");
    assert_int_equal(again.n_exports, 3);
    for (uint32_t i = 0; i < info.n_exports; i++) {
        char want[16];
        snprintf(want, sizeof(want), "e%u", (unsigned)i);
        assert_string_equal(again.exports[i].name, want);
        assert_int_equal(again.exports[i].kind, info.exports[i].kind);
        assert_int_equal(again.exports[i].index, info.exports[i].index);
        assert_string_equal(again.exports[i].type, info.exports[i].type);
    }
    assert_int_equal(again.n_types, info.n_types);
    for (uint32_t i = 0; i < info.n_types; i++)
        assert_string_equal(again.types[i], info.types[i]);
    assert_int_equal(again.n_funcs, info.n_funcs);
    assert_int_equal(again.code_size, info.code_size);

    /* No guest text survives anywhere in the output. */
    assert_false(contains(out, out_len, "*/"));
    assert_false(contains(out, out_len, "?\?/"));
    assert_false(contains(out, out_len, "extism"));
    assert_false(contains(out, out_len, "_start"));
    assert_false(contains(out, out_len, "producers"));
    assert_true(contains(m.b, m.n, "*/")); /* control: the input had them */
    kiln_free(out);
    kiln_wasm_info_free(&info);
    kiln_wasm_info_free(&again);
}

static void test_rewrite_drops_customs_copies_rest(void **state)
{
    wbuf m;
    build_rewrite_module(&m);
    kiln_wasm_info info;
    parse_ok(&m, &info);
    uint8_t *out = NULL;
    size_t out_len = 0;
    kiln_err err = {0};
    assert_int_equal(kiln_wasm_rewrite(&info, m.b, m.n, &out, &out_len, &err), KILN_OK);
    uint32_t in_size, out_size;
    int in_n, out_n;
    assert_non_null(find_section(m.b, m.n, 0, &in_size, &in_n));
    assert_int_equal(in_n, 3);
    assert_null(find_section(out, out_len, 0, &out_size, &out_n));
    assert_int_equal(out_n, 0);
    /* Type, function, code and data sections are byte-for-byte copies. */
    static const uint8_t ids[] = {1, 3, 10, 11};
    for (size_t i = 0; i < sizeof(ids); i++) {
        const uint8_t *a = find_section(m.b, m.n, ids[i], &in_size, &in_n);
        const uint8_t *b = find_section(out, out_len, ids[i], &out_size, &out_n);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(in_size, out_size);
        assert_memory_equal(a, b, in_size);
    }
    /* Section order is kept: every id of the output in the input's order. */
    assert_memory_equal(out, m.b, 8);
    assert_int_equal(out[8], 1);
    assert_int_equal(out[out_len - 8 - 2], 11); /* data is last; its payload is 8 bytes */
    kiln_free(out);
    kiln_wasm_info_free(&info);
}

static void test_rewrite_rejects_mismatched_info(void **state)
{
    wbuf m, other;
    build_rewrite_module(&m);
    build_exports_module(&other);
    kiln_wasm_info info;
    parse_ok(&other, &info);
    uint8_t dummy = 0;
    uint8_t *out = &dummy;
    size_t out_len = 7;
    kiln_err err = {0};
    assert_int_equal(kiln_wasm_rewrite(&info, m.b, m.n, &out, &out_len, &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "does not match"));
    assert_null(out);
    assert_int_equal(out_len, 0);
    kiln_wasm_info_free(&info);
}

/*
 * Every prefix and every single-byte corruption of a real module must either
 * parse or fail cleanly with a message; when it parses, the rewrite must
 * parse again. Run under ASan/valgrind this also proves there is no overread.
 */
static void test_prefixes_and_corruptions(void **state)
{
    wbuf m;
    build_rewrite_module(&m);
    /* Section boundaries: the only prefixes that may parse. */
    bool boundary[sizeof(m.b) + 1] = {false};
    size_t pos = 8;
    boundary[8] = true;
    while (pos < m.n) {
        pos++;
        uint32_t sz = 0;
        int shift = 0;
        uint8_t c;
        do {
            c = m.b[pos++];
            sz |= (uint32_t)(c & 0x7F) << shift;
            shift += 7;
        } while (c & 0x80);
        pos += sz;
        boundary[pos] = true;
    }
    for (size_t n = 0; n < m.n; n++) {
        kiln_wasm_info info;
        kiln_err err = {0};
        int rc = kiln_wasm_parse(m.b, n, &info, &err);
        /* A prefix ending at a section boundary is a complete module,
         * unless it declares functions whose code section was cut off. */
        if (boundary[n] && rc != KILN_OK && strstr(err.msg, "no code section") == NULL)
            fail_msg("prefix %zu: %s", n, err.msg);
        if (!boundary[n]) {
            if (rc != KILN_EMODULE)
                fail_msg("prefix %zu: expected KILN_EMODULE, got %d", n, rc);
            assert_non_null(strstr(err.msg, "offset"));
        }
        kiln_wasm_info_free(&info);
    }
    size_t parsed = 0;
    for (size_t i = 0; i < m.n; i++) {
        for (int v = 0; v < 3; v++) {
            static const uint8_t vals[] = {0x00, 0xFF, 0x80};
            wbuf c = m;
            c.b[i] = vals[v];
            kiln_wasm_info info, again;
            kiln_err err = {0};
            int rc = kiln_wasm_parse(c.b, c.n, &info, &err);
            if (rc != KILN_OK) {
                assert_true(rc == KILN_EMODULE || rc == KILN_EUNSUPPORTED || rc == KILN_ELIMIT);
                assert_true(strlen(err.msg) > 0);
                continue;
            }
            parsed++;
            uint8_t *out;
            size_t out_len;
            assert_int_equal(kiln_wasm_rewrite(&info, c.b, c.n, &out, &out_len, &err), KILN_OK);
            assert_int_equal(kiln_wasm_parse(out, out_len, &again, &err), KILN_OK);
            assert_int_equal(again.n_imports, info.n_imports);
            assert_int_equal(again.n_exports, info.n_exports);
            kiln_wasm_info_free(&again);
            kiln_wasm_info_free(&info);
            kiln_free(out);
        }
    }
    assert_true(parsed > 0); /* corrupting custom payloads, e.g., still parses */
}

/* ---- allocation failure ------------------------------------------------ */

/*
 * Child mode for test_allocation_failures: parse and rewrite with the
 * allocator failing after KILN_FAIL_ALLOC_AFTER allocations. Exit 0 when
 * everything succeeded, 3 when a step failed cleanly with KILN_ENOMEM and a
 * message, 1 for anything else.
 */
static int oom_child(void)
{
    wbuf m;
    build_rewrite_module(&m);
    kiln_wasm_info info;
    kiln_err err = {0};
    int rc = kiln_wasm_parse(m.b, m.n, &info, &err);
    if (rc == KILN_OK) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        rc = kiln_wasm_rewrite(&info, m.b, m.n, &out, &out_len, &err);
        kiln_free(out);
        kiln_wasm_info_free(&info);
    }
    if (rc == KILN_OK)
        return 0;
    if (rc == KILN_ENOMEM && strstr(err.msg, "out of memory") != NULL)
        return 3;
    fprintf(stderr, "oom child: status %d: %s\n", rc, err.msg);
    return 1;
}

static void test_allocation_failures(void **state)
{
    int clean_failures = 0;
    for (int n = 0; n < 500; n++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char v[16];
            snprintf(v, sizeof(v), "%d", n);
            setenv("KILN_FAIL_ALLOC_AFTER", v, 1);
            execl("/proc/self/exe", "test_wasm_reader", "--oom-child", (char *)NULL);
            _exit(127);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status))
            fail_msg("allocation %d failing: child died with signal %d", n, WTERMSIG(status));
        int code = WEXITSTATUS(status);
        if (code == 0)
            break; /* n exceeds the allocations needed: every path was tried */
        if (code != 3)
            fail_msg("allocation %d failing: child exited %d", n, code);
        clean_failures++;
    }
    assert_true(clean_failures > 5);
}

/* ---- display ----------------------------------------------------------- */

static void test_name_display(void **state)
{
    char buf[64];
    kiln_wasm_name_display("fd_write", 8, buf, sizeof(buf));
    assert_string_equal(buf, "fd_write");
    kiln_wasm_name_display("a\0b\n\x7F\xC3\xA9", 7, buf, sizeof(buf));
    assert_string_equal(buf, "a\\x00b\\x0a\\x7f\\xc3\\xa9");
    kiln_wasm_name_display("*/ x", 4, buf, sizeof(buf));
    assert_string_equal(buf, "*/ x");
    kiln_wasm_name_display("", 0, buf, sizeof(buf));
    assert_string_equal(buf, "");

    /* Exactly fitting text is not cut. */
    char small[6];
    kiln_wasm_name_display("abcde", 5, small, sizeof(small));
    assert_string_equal(small, "abcde");
    /* One more byte is cut with "...", never inside an escape. */
    kiln_wasm_name_display("abcdef", 6, small, sizeof(small));
    assert_string_equal(small, "ab...");
    kiln_wasm_name_display("a\n\n", 3, small, sizeof(small));
    assert_string_equal(small, "a...");
    char tiny[2] = {'x', 'x'};
    kiln_wasm_name_display("abc", 3, tiny, sizeof(tiny));
    assert_string_equal(tiny, ".");
    tiny[0] = 'x';
    kiln_wasm_name_display("abc", 3, tiny, 0); /* nothing written */
    assert_int_equal(tiny[0], 'x');
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--oom-child") == 0)
        return oom_child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_module),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_type_signatures),
        cmocka_unit_test(test_imports_of_every_kind),
        cmocka_unit_test(test_exports_and_start),
        cmocka_unit_test(test_hostile_names_stored_raw),
        cmocka_unit_test(test_invalid_utf8_rejected),
        cmocka_unit_test(test_name_too_long),
        cmocka_unit_test(test_entity_limits),
        cmocka_unit_test(test_truncated_section_rejected),
        cmocka_unit_test(test_count_overflow_rejected),
        cmocka_unit_test(test_bad_leb_rejected),
        cmocka_unit_test(test_unsupported_features_named),
        cmocka_unit_test(test_global_init_exprs),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_signature_length_limit),
        cmocka_unit_test(test_tag_section),
        cmocka_unit_test(test_rewrite_synthetic_names),
        cmocka_unit_test(test_rewrite_drops_customs_copies_rest),
        cmocka_unit_test(test_rewrite_rejects_mismatched_info),
        cmocka_unit_test(test_prefixes_and_corruptions),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_name_display),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
