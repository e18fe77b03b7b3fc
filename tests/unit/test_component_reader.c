/*
 * test_component_reader.c - unit tests for src/component/cm_reader.c and
 * cm_wit.c: components built byte by byte (no external tool), decoded into
 * index spaces and types; every malformed input gives a clean error with an
 * offset; limits hold; the WIT printer spells what was decoded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "component/cm.h"
#include "component/cm_wit.h"

#include "support/wbuf.h"

static void preamble(wbuf *w)
{
    static const uint8_t p[8] = {0x00, 0x61, 0x73, 0x6D, 0x0d, 0x00, 0x01, 0x00};
    w->n = 0;
    put(w, p, 8);
}

static cm_component *parse_ok(const wbuf *w)
{
    cm_component *c = NULL;
    kiln_err err = {0};
    int rc = cm_parse(w->b, w->n, &c, &err);
    if (rc != KILN_OK)
        fail_msg("cm_parse: %s", err.msg);
    assert_non_null(c);
    return c;
}

static void parse_fails(const wbuf *w, int code, const char *needle)
{
    cm_component *c = (cm_component *)1;
    kiln_err err = {0};
    int rc = cm_parse(w->b, w->n, &c, &err);
    if (rc != code)
        fail_msg("cm_parse returned %d (want %d): %s", rc, code, err.msg);
    assert_null(c);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
    assert_non_null(strstr(err.msg, "offset"));
}

/* The event world, as wit-component lays it out: types imported as
 * (eq N), a function type, a core module, a core instance, aliases, a lift
 * and an export. */
static void faas_component(wbuf *w)
{
    wbuf s = {0};
    preamble(w);
    /* types 0: enum; 1: import "event-type" (eq 0) */
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x6d);
    putu(&s, 3);
    puts_(&s, "object-added");
    puts_(&s, "object-removed");
    puts_(&s, "message");
    section(w, 7, &s);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x00);
    puts_(&s, "event-type");
    put1(&s, 0x03);
    put1(&s, 0x00);
    putu(&s, 0);
    section(w, 10, &s);
    /* types 2: list<u8>; 3: record; 4: variant; 5: result<_, 4>; 6: func */
    s.n = 0;
    putu(&s, 5);
    put1(&s, 0x70);
    put1(&s, 0x7d);
    put1(&s, 0x72);
    putu(&s, 3);
    puts_(&s, "event-type");
    putu(&s, 1);
    puts_(&s, "key");
    put1(&s, 0x73);
    puts_(&s, "payload");
    putu(&s, 2);
    put1(&s, 0x71);
    putu(&s, 2);
    puts_(&s, "unsupported");
    put1(&s, 0x01);
    putu(&s, 1);
    put1(&s, 0x00);
    puts_(&s, "failed");
    put1(&s, 0x01);
    put1(&s, 0x73);
    put1(&s, 0x00);
    put1(&s, 0x6a);
    put1(&s, 0x00);
    put1(&s, 0x01);
    putu(&s, 4);
    put1(&s, 0x40);
    putu(&s, 1);
    puts_(&s, "event");
    putu(&s, 3);
    put1(&s, 0x00);
    putu(&s, 5);
    section(w, 7, &s);
    /* export the record and the variant as named types */
    s.n = 0;
    putu(&s, 2);
    put1(&s, 0x00);
    puts_(&s, "handler-event");
    put1(&s, 0x03);
    putu(&s, 3);
    put1(&s, 0x00);
    put1(&s, 0x00);
    puts_(&s, "handler-error");
    put1(&s, 0x03);
    putu(&s, 4);
    put1(&s, 0x00);
    section(w, 11, &s);
    /* core module 0: an empty module */
    static const uint8_t mod[8] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00};
    s.n = 0;
    put(&s, mod, 8);
    section(w, 1, &s);
    /* core instance 0 = instantiate module 0 */
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x00);
    putu(&s, 0);
    putu(&s, 0);
    section(w, 2, &s);
    /* aliases: core func 0 = "handle", core memory 0 = "memory", core func 1 = "cabi_realloc" */
    s.n = 0;
    putu(&s, 3);
    put1(&s, 0x00);
    put1(&s, 0x00);
    put1(&s, 0x01);
    putu(&s, 0);
    puts_(&s, "handle");
    put1(&s, 0x00);
    put1(&s, 0x02);
    put1(&s, 0x01);
    putu(&s, 0);
    puts_(&s, "memory");
    put1(&s, 0x00);
    put1(&s, 0x00);
    put1(&s, 0x01);
    putu(&s, 0);
    puts_(&s, "cabi_realloc");
    section(w, 6, &s);
    /* canon lift core func 0 (memory 0) (realloc 1) utf8, type 6 */
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x00);
    put1(&s, 0x00);
    putu(&s, 0);
    putu(&s, 3);
    put1(&s, 0x03);
    putu(&s, 0);
    put1(&s, 0x04);
    putu(&s, 1);
    put1(&s, 0x00);
    putu(&s, 6);
    section(w, 8, &s);
    /* export "handle" (func 0) */
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x00);
    puts_(&s, "handle");
    put1(&s, 0x01);
    putu(&s, 0);
    put1(&s, 0x00);
    section(w, 11, &s);
    /* a custom section is skipped */
    s.n = 0;
    puts_(&s, "producers");
    put1(&s, 0xAB);
    section(w, 0, &s);
}

static void test_empty_component(void **state)
{
    wbuf w;
    preamble(&w);
    cm_component *c = parse_ok(&w);
    assert_int_equal(c->n_imports, 0);
    assert_int_equal(c->n_exports, 0);
    assert_int_equal(c->n_modules, 0);
    cm_free(c);
}

static void test_is_component(void **state)
{
    static const uint8_t comp[8] = {0x00, 0x61, 0x73, 0x6D, 0x0d, 0x00, 0x01, 0x00};
    static const uint8_t core[8] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00};
    assert_true(cm_is_component(comp, 8));
    assert_false(cm_is_component(core, 8));
    assert_false(cm_is_component(comp, 7));
}

static void test_faas_world(void **state)
{
    wbuf w;
    faas_component(&w);
    cm_component *c = parse_ok(&w);
    assert_int_equal(c->n_imports, 1);
    assert_string_equal(c->imports[0].name, "event-type");
    assert_int_equal(c->imports[0].sort, CM_SORT_TYPE);
    assert_int_equal(c->n_exports, 3);
    assert_int_equal(c->n_space[CM_SORT_TYPE], 9); /* 7 + 2 type exports */
    assert_int_equal(c->n_space[CM_SORT_CORE_FUNC], 2);
    assert_int_equal(c->n_space[CM_SORT_CORE_MEMORY], 1);
    assert_int_equal(c->n_modules, 1);
    assert_int_equal(c->modules[0]->len, 8);

    const cm_extern *h = &c->exports[2];
    assert_string_equal(h->name, "handle");
    assert_int_equal(h->sort, CM_SORT_FUNC);
    const cm_type *ft = h->type;
    assert_int_equal(ft->kind, CM_FUNC);
    assert_int_equal(ft->n, 1);
    assert_string_equal(ft->f[0].name, "event");
    const cm_type *rec = ft->f[0].type;
    assert_int_equal(rec->kind, CM_RECORD);
    assert_string_equal(rec->name, "handler-event");
    assert_int_equal(rec->n, 3);
    assert_int_equal(rec->f[0].type->kind, CM_ENUM);
    assert_string_equal(rec->f[0].type->name, "event-type");
    assert_int_equal(rec->f[2].type->kind, CM_LIST);
    assert_ptr_equal(rec->f[2].type->elem, cm_prim(CM_U8));
    assert_int_equal(ft->elem->kind, CM_RESULT);
    assert_null(ft->elem->elem);
    assert_int_equal(ft->elem->err->kind, CM_VARIANT);
    assert_string_equal(ft->elem->err->f[0].type->name, "event-type");
    assert_ptr_equal(ft->elem->err->f[1].type, cm_prim(CM_STRING));

    const cm_func *fn = c->space[CM_SORT_FUNC][h->index];
    assert_int_equal(fn->how, CM_FUNC_LIFT);
    assert_int_equal(fn->core_func, 0);
    assert_true(fn->opts.has_memory && fn->opts.has_realloc && !fn->opts.has_post_return);
    assert_int_equal(fn->opts.encoding, CM_UTF8);
    const cm_core_func *cf = c->space[CM_SORT_CORE_FUNC][0];
    assert_int_equal(cf->how, CM_CORE_ALIAS);
    assert_string_equal(cf->name, "handle");

    char buf[256];
    cm_wit_type(ft, buf, sizeof(buf));
    assert_string_equal(buf, "func(event: handler-event) -> result<_, handler-error>");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cm_wit_world(c, f);
    fclose(f);
    assert_non_null(strstr(text, "  enum event-type {\n    object-added,\n"));
    assert_non_null(strstr(text, "  record handler-event {\n    event-type: event-type,\n"
                                 "    key: string,\n    payload: list<u8>,\n  }\n"));
    assert_non_null(strstr(text, "    unsupported(event-type),\n    failed(string),\n"));
    assert_non_null(strstr(text, "  export handle: func(event: handler-event) -> "
                                 "result<_, handler-error>;\n"));
    free(text);
    cm_free(c);
}

/* Every truncation of a valid component fails cleanly (no crash, no leak). */
static void test_truncations(void **state)
{
    wbuf w;
    faas_component(&w);
    for (size_t n = 0; n < w.n; n++) {
        cm_component *c = (cm_component *)1;
        kiln_err err = {0};
        int rc = cm_parse(w.b, n, &c, &err);
        if (n == 8) { /* the preamble alone is a valid empty component */
            assert_int_equal(rc, KILN_OK);
            cm_free(c);
            continue;
        }
        /* A cut exactly between sections is a shorter valid component. */
        if (rc == KILN_OK) {
            cm_free(c);
            continue;
        }
        assert_null(c);
        assert_true(rc == KILN_EMODULE);
        assert_non_null(memchr(err.msg, 0, sizeof(err.msg)));
    }
}

static void test_preamble_errors(void **state)
{
    wbuf w;
    preamble(&w);
    w.b[4] = 0x0c;
    parse_fails(&w, KILN_EUNSUPPORTED, "version");
    preamble(&w);
    w.b[6] = 0x00;
    w.b[4] = 0x01;
    parse_fails(&w, KILN_EMODULE, "layer 0 is not a component");
    preamble(&w);
    w.b[0] = 'x';
    parse_fails(&w, KILN_EMODULE, "magic");
}

static void test_bad_indices(void **state)
{
    wbuf w, s = {0};
    /* a record naming type 5 of none */
    preamble(&w);
    putu(&s, 1);
    put1(&s, 0x72);
    putu(&s, 1);
    puts_(&s, "a");
    putu(&s, 5);
    section(&w, 7, &s);
    parse_fails(&w, KILN_EMODULE, "type index 5 out of range");
    /* alias of a core export from a core instance that does not exist */
    preamble(&w);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x00);
    put1(&s, 0x00);
    put1(&s, 0x01);
    putu(&s, 3);
    puts_(&s, "f");
    section(&w, 6, &s);
    parse_fails(&w, KILN_EMODULE, "core instance index 3 out of range");
    /* an export of func 0 of none */
    preamble(&w);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x00);
    puts_(&s, "f");
    put1(&s, 0x01);
    putu(&s, 0);
    put1(&s, 0x00);
    section(&w, 11, &s);
    parse_fails(&w, KILN_EMODULE, "func index 0 out of range");
    /* own of a non-resource */
    preamble(&w);
    s.n = 0;
    putu(&s, 2);
    put1(&s, 0x7f);
    put1(&s, 0x69);
    putu(&s, 0);
    section(&w, 7, &s);
    parse_fails(&w, KILN_EMODULE, "not a resource");
    /* a func import typed by a value type */
    preamble(&w);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x7f);
    section(&w, 7, &s);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x00);
    puts_(&s, "f");
    put1(&s, 0x01); /* a func import whose type 0 is bool */
    putu(&s, 0);
    section(&w, 10, &s);
    parse_fails(&w, KILN_EMODULE, "expected a func type");
}

static void test_malformed(void **state)
{
    wbuf w, s = {0};
    /* section larger than the buffer */
    preamble(&w);
    put1(&w, 7);
    putu(&w, 100);
    parse_fails(&w, KILN_EMODULE, "runs past the end");
    /* count larger than the bytes left */
    preamble(&w);
    s.n = 0;
    putu(&s, 1000);
    section(&w, 7, &s);
    parse_fails(&w, KILN_EMODULE, "cannot fit");
    /* invalid UTF-8 label */
    preamble(&w);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x6d);
    putu(&s, 1);
    putu(&s, 2);
    put1(&s, 0xC0);
    put1(&s, 0x80);
    section(&w, 7, &s);
    parse_fails(&w, KILN_EMODULE, "not valid UTF-8");
    /* empty enum */
    preamble(&w);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x6d);
    putu(&s, 0);
    section(&w, 7, &s);
    parse_fails(&w, KILN_EMODULE, "at least one member");
    /* leftover bytes in a section */
    preamble(&w);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x7f);
    put1(&s, 0x7f);
    section(&w, 7, &s);
    parse_fails(&w, KILN_EMODULE, "left over");
    /* unknown section */
    preamble(&w);
    s.n = 0;
    section(&w, 13, &s);
    parse_fails(&w, KILN_EMODULE, "unknown section id 13");
    /* 33 flags */
    preamble(&w);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x6e);
    putu(&s, 33);
    for (int i = 0; i < 33; i++)
        puts_(&s, "f");
    section(&w, 7, &s);
    parse_fails(&w, KILN_ELIMIT, "flags with 33 labels");
    /* over-long LEB */
    preamble(&w);
    s.n = 0;
    put1(&s, 0x80);
    put1(&s, 0x80);
    put1(&s, 0x80);
    put1(&s, 0x80);
    put1(&s, 0x70);
    section(&w, 7, &s);
    parse_fails(&w, KILN_EMODULE, "LEB128");
    /* embedded module without a preamble */
    preamble(&w);
    s.n = 0;
    put1(&s, 0x00);
    section(&w, 1, &s);
    parse_fails(&w, KILN_EMODULE, "lacks its preamble");
}

static void test_unsupported(void **state)
{
    wbuf w, s = {0};
    preamble(&w);
    s.n = 0;
    putu(&s, 0);
    section(&w, 12, &s);
    parse_fails(&w, KILN_EUNSUPPORTED, "value definitions");
    preamble(&w);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x08); /* backpressure.set */
    section(&w, 8, &s);
    parse_fails(&w, KILN_EUNSUPPORTED, "canonical built-in 0x08");
}

/* list<list<...>> 70 deep: each level its own type entry. */
static void test_type_depth_limit(void **state)
{
    wbuf w, s = {0};
    preamble(&w);
    putu(&s, 70);
    put1(&s, 0x70);
    put1(&s, 0x7d);
    for (uint32_t i = 1; i < 70; i++) {
        put1(&s, 0x70);
        putu(&s, i - 1);
    }
    section(&w, 7, &s);
    parse_fails(&w, KILN_ELIMIT, "nested deeper than 64");
}

/* tuple<T, T> doubling: the node count saturates and is refused. */
static void test_type_nodes_limit(void **state)
{
    wbuf w, s = {0};
    preamble(&w);
    putu(&s, 30);
    put1(&s, 0x6f);
    putu(&s, 2);
    put1(&s, 0x7d);
    put1(&s, 0x7d);
    for (uint32_t i = 1; i < 30; i++) {
        put1(&s, 0x6f);
        putu(&s, 2);
        putu(&s, i - 1);
        putu(&s, i - 1);
    }
    section(&w, 7, &s);
    parse_fails(&w, KILN_ELIMIT, "more than 100000 nodes");
}

/* Nested components 20 deep. */
static void test_nesting_limit(void **state)
{
    static wbuf levels[21];
    preamble(&levels[20]);
    for (int i = 19; i >= 0; i--) {
        preamble(&levels[i]);
        section(&levels[i], 4, &levels[i + 1]);
    }
    parse_fails(&levels[0], KILN_ELIMIT, "nested deeper than 16");
}

/* An instance-type import with a type export, aliased out and used. */
static void test_instance_import_alias(void **state)
{
    wbuf w, s = {0};
    preamble(&w);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x42);          /* instance type */
    putu(&s, 3);
    put1(&s, 0x01);          /* type 0: record datetime */
    put1(&s, 0x72);
    putu(&s, 1);
    puts_(&s, "seconds");
    put1(&s, 0x77);
    put1(&s, 0x04);          /* export "datetime" (type (eq 0)) */
    put1(&s, 0x00);
    puts_(&s, "datetime");
    put1(&s, 0x03);
    put1(&s, 0x00);
    putu(&s, 0);
    put1(&s, 0x01);          /* type 2: func() -> 1 */
    put1(&s, 0x40);
    putu(&s, 0);
    put1(&s, 0x00);
    putu(&s, 1);
    section(&w, 7, &s);
    /* oops: the func type was not exported; export it as "now" too */
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x00);
    puts_(&s, "wasi:clocks/wall-clock@0.2.0");
    put1(&s, 0x05);
    putu(&s, 0);
    section(&w, 10, &s);
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x03);          /* alias type export 0 "datetime" */
    put1(&s, 0x00);
    putu(&s, 0);
    puts_(&s, "datetime");
    section(&w, 6, &s);
    cm_component *c = parse_ok(&w);
    assert_int_equal(c->n_space[CM_SORT_TYPE], 2);
    const cm_type *dt = c->space[CM_SORT_TYPE][1];
    assert_int_equal(dt->kind, CM_RECORD);
    assert_string_equal(dt->name, "datetime");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cm_wit_world(c, f);
    fclose(f);
    assert_non_null(strstr(text, "import wasi:clocks/wall-clock@0.2.0: interface {\n"
                                 "    record datetime {\n      seconds: u64,\n"));
    free(text);
    cm_free(c);

    /* aliasing a name the instance does not export fails */
    w.n -= s.n + 2;
    s.n = 0;
    putu(&s, 1);
    put1(&s, 0x03);
    put1(&s, 0x00);
    putu(&s, 0);
    puts_(&s, "nope");
    section(&w, 6, &s);
    parse_fails(&w, KILN_EMODULE, "has no type export 'nope'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_component),
        cmocka_unit_test(test_is_component),
        cmocka_unit_test(test_faas_world),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_preamble_errors),
        cmocka_unit_test(test_bad_indices),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_type_depth_limit),
        cmocka_unit_test(test_type_nodes_limit),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_instance_import_alias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
