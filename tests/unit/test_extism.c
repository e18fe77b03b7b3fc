/*
 * test_extism.c - the Extism and Otoroshi ABIs below the CLI: Extism memory
 * edge cases (handles, short blocks, re-use policy, limits), base64,
 * manifest parsing, Otoroshi's output rules and input document, and the
 * handler ops end to end on WAT plugins (outputs, error mapping, timeouts,
 * vars and instance re-use, concurrency). Allow-list and URL tests live in
 * test_net.c, with the client.
 */
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "abi/extism/extism.h"
#include "abi/extism/xtm_mem.h"
#include "abi/otoroshi/otoroshi.h"
#include "base/alloc.h"
#include "kiln/handler.h"
#include "support/wat.h"

extern const kiln_abi_ops kiln_abi_extism;
extern const kiln_abi_ops kiln_abi_otoroshi;

/* ---- Extism memory ---------------------------------------------------------- */

static void test_mem_handles(void **state)
{
    (void)state;
    xtm_mem m;
    xtm_mem_init(&m, 0);
    uint64_t a, b, z;
    assert_int_equal(xtm_mem_alloc(&m, 0, &z), KILN_OK);
    assert_int_equal(z, 0);
    assert_int_equal(xtm_mem_alloc(&m, 5, &a), KILN_OK);
    assert_int_equal(a, XTM_MEM_BASE);
    assert_int_equal(xtm_mem_alloc(&m, 5, &b), KILN_OK);
    /* round_up(5, 8) + 8 bytes of slack per block */
    assert_int_equal(b, XTM_MEM_BASE + 16);
    assert_int_equal(xtm_mem_length(&m, a), 5);
    assert_int_equal(xtm_mem_length(&m, a + 1), 0); /* interior pointer */
    assert_int_equal(xtm_mem_length(&m, 0), 0);
    assert_int_equal(xtm_mem_length(&m, UINT64_MAX), 0);
    assert_int_equal(xtm_mem_length(&m, 1), 0);
    /* 8-byte access at a 5-byte block and a byte at h + 8 stay in the block. */
    assert_non_null(xtm_mem_ptr(&m, a, 8));
    assert_non_null(xtm_mem_ptr(&m, a + 8, 1));
    memset(xtm_mem_ptr(&m, a, 16), 0xAB, 16);
    assert_int_equal(m.buf[b], 0);
    /* Bounds: below the base, past the top, overflowing. */
    assert_null(xtm_mem_ptr(&m, 0, 1));
    assert_null(xtm_mem_ptr(&m, XTM_MEM_BASE - 1, 1));
    assert_null(xtm_mem_ptr(&m, b + 16, 1));
    assert_non_null(xtm_mem_ptr(&m, b + 16, 0));
    assert_null(xtm_mem_ptr(&m, UINT64_MAX, 2));
    assert_null(xtm_mem_ptr(&m, 64, UINT64_MAX));
    /* Free: length 0, double free and interior free are no-ops. */
    xtm_mem_free(&m, a);
    assert_int_equal(xtm_mem_length(&m, a), 0);
    xtm_mem_free(&m, a);
    xtm_mem_free(&m, b + 1);
    xtm_mem_free(&m, 0);
    assert_int_equal(xtm_mem_length(&m, b), 5);
    /* Reset: every handle dies; allocation starts over, zeroed. */
    xtm_mem_reset(&m);
    assert_int_equal(xtm_mem_length(&m, b), 0);
    assert_int_equal(xtm_mem_alloc(&m, 5, &a), KILN_OK);
    assert_int_equal(a, XTM_MEM_BASE);
    assert_int_equal(m.buf[a], 0);
    assert_int_equal(m.buf[a + 8], 0);
    xtm_mem_fini(&m);
}

static void test_mem_reuse_policy(void **state)
{
    (void)state;
    xtm_mem m;
    xtm_mem_init(&m, 0);
    uint64_t a, b, c, d;
    assert_int_equal(xtm_mem_alloc(&m, 100, &a), KILN_OK);
    xtm_mem_free(&m, a);
    /* A guest-freed block is not re-used while the arena has room. */
    assert_int_equal(xtm_mem_alloc(&m, 100, &b), KILN_OK);
    assert_true(b != a);
    /* A host-consumed block is dead and never re-used before reset. */
    xtm_mem_consume(&m, b);
    assert_int_equal(xtm_mem_length(&m, b), 0);
    assert_false(xtm_mem_live(&m, b));
    /* Fill the initial 64 KiB: then the freed block is re-used (zeroed), the
     * consumed one is not. */
    memset(m.buf + a, 0x5A, 100);
    uint64_t used = m.top, big = XTM_MEM_INITIAL - used - 8;
    assert_int_equal(xtm_mem_alloc(&m, big, &c), KILN_OK);
    assert_int_equal(m.top, XTM_MEM_INITIAL);
    assert_int_equal(xtm_mem_alloc(&m, 50, &d), KILN_OK);
    assert_int_equal(d, a);
    assert_int_equal(xtm_mem_length(&m, d), 50);
    assert_int_equal(m.buf[d + 10], 0);
    assert_int_equal(xtm_mem_alloc(&m, 100, &d), KILN_OK); /* now it grows */
    assert_true(d >= XTM_MEM_INITIAL);
    assert_true(m.size > XTM_MEM_INITIAL);
    xtm_mem_fini(&m);
}

static void test_mem_limit(void **state)
{
    (void)state;
    xtm_mem m;
    xtm_mem_init(&m, 256 << 10);
    uint64_t h;
    assert_int_equal(xtm_mem_alloc(&m, 200 << 10, &h), KILN_OK);
    assert_int_equal(xtm_mem_alloc(&m, 100 << 10, &h), KILN_ELIMIT);
    assert_int_equal(xtm_mem_alloc(&m, UINT64_MAX, &h), KILN_ELIMIT);
    assert_int_equal(xtm_mem_alloc(&m, UINT64_MAX - 7, &h), KILN_ELIMIT);
    assert_int_equal(h, 0);
    /* A limit below 64 KiB still allows the initial arena. */
    xtm_mem_fini(&m);
    xtm_mem_init(&m, 1000);
    assert_int_equal(xtm_mem_alloc(&m, 30000, &h), KILN_OK);
    xtm_mem_fini(&m);
}

/* ---- base64 -------------------------------------------------------------------- */

static void test_base64(void **state)
{
    (void)state;
    const char *cases[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
                              {"foobar", "Zm9vYmFy"}, {"hello base64", "aGVsbG8gYmFzZTY0"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *e = xtm_base64_encode((const uint8_t *)cases[i][0], strlen(cases[i][0]));
        assert_string_equal(e, cases[i][1]);
        kiln_free(e);
        uint8_t *d;
        size_t n;
        assert_int_equal(xtm_base64_decode(cases[i][1], strlen(cases[i][1]), &d, &n), KILN_OK);
        assert_int_equal(n, strlen(cases[i][0]));
        assert_memory_equal(d, cases[i][0], n);
        kiln_free(d);
    }
    uint8_t *d;
    size_t n;
    assert_int_equal(xtm_base64_decode("Zm9v YmFy\n", 10, &d, &n), KILN_OK); /* whitespace */
    assert_int_equal(n, 6);
    kiln_free(d);
    assert_int_equal(xtm_base64_decode("Zm9", 3, &d, &n), KILN_OK); /* unpadded */
    assert_int_equal(n, 2);
    kiln_free(d);
    assert_int_equal(xtm_base64_decode("Zm9v!", 5, &d, &n), KILN_EINVAL);
    assert_int_equal(xtm_base64_decode("Z", 1, &d, &n), KILN_EINVAL);
    assert_int_equal(xtm_base64_decode("Zg==Zg", 6, &d, &n), KILN_EINVAL);
}

/* ---- manifest ---------------------------------------------------------------------- */

static int parse_manifest(const char *json, xtm_manifest *m, kiln_err *err)
{
    return xtm_manifest_parse(json, strlen(json), "/base", m, err);
}

static void test_manifest_full(void **state)
{
    (void)state;
    xtm_manifest m;
    kiln_err err;
    const char *json =
        "{\"wasm\": [{\"path\": \"plugin.wasm\", \"name\": \"main\", \"hash\": \"ab\"}],"
        " \"memory\": {\"max_pages\": 4, \"max_http_response_bytes\": 1024,"
        " \"max_var_bytes\": 0},"
        " \"config\": {\"greeting\": \"hi\", \"empty\": \"\"},"
        " \"allowed_hosts\": [\"example.com\", \"*.example.org\"],"
        " \"allowed_paths\": {\"/tmp/data\": \"/data\", \"ro:/tmp/ro\": \"/ro\"},"
        " \"timeout_ms\": 1500, \"allow_http_response_headers\": true}";
    assert_int_equal(parse_manifest(json, &m, &err), KILN_OK);
    assert_true(m.http_response_headers);
    assert_string_equal(m.wasm_path, "/base/plugin.wasm"); /* not in the cwd */
    assert_string_equal(m.wasm_hash, "ab");
    assert_int_equal(m.max_pages, 4);
    assert_int_equal(m.max_http_response_bytes, 1024);
    assert_int_equal(m.max_var_bytes, 0);
    assert_int_equal(m.timeout_ms, 1500);
    assert_int_equal(m.n_config, 2);
    assert_string_equal(m.config[0].name, "greeting");
    assert_string_equal(m.config[0].value, "hi");
    assert_int_equal(m.n_allowed_hosts, 2);
    assert_string_equal(m.allowed_hosts[1], "*.example.org");
    assert_int_equal(m.n_allowed_paths, 2);
    assert_string_equal(m.allowed_paths[0].host_path, "/tmp/data");
    assert_false(m.allowed_paths[0].read_only);
    assert_string_equal(m.allowed_paths[1].host_path, "/tmp/ro");
    assert_string_equal(m.allowed_paths[1].guest_path, "/ro");
    assert_true(m.allowed_paths[1].read_only);
    xtm_manifest_fini(&m);

    /* Minimal: everything unset; nulls are allowed; data is base64. */
    assert_int_equal(parse_manifest("{\"wasm\": [{\"data\": \"AGFzbQEAAAA=\"}], \"memory\": null,"
                                    " \"allowed_hosts\": null, \"timeout_ms\": null}",
                                    &m, &err),
                     KILN_OK);
    assert_null(m.wasm_path);
    assert_int_equal(m.wasm_len, 8);
    assert_memory_equal(m.wasm_data, "\0asm\1\0\0\0", 8);
    assert_int_equal(m.max_pages, -1);
    assert_int_equal(m.timeout_ms, -1);
    assert_int_equal(m.n_allowed_hosts, 0);
    assert_false(m.http_response_headers);
    xtm_manifest_fini(&m);
}

static void test_manifest_errors(void **state)
{
    (void)state;
    xtm_manifest m;
    kiln_err err;
    assert_int_equal(parse_manifest("{\"wasm\": []}", &m, &err), KILN_ECONFIG);
    assert_string_equal(err.msg, "No wasm files specified in Extism manifest");
    assert_int_equal(parse_manifest("{}", &m, &err), KILN_ECONFIG);
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"a\"}], \"bogus\": 1}", &m, &err),
                     KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "unknown field `bogus`"));
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"a\"}],"
                                    " \"allow_http_response_headers\": 1}",
                                    &m, &err),
                     KILN_ECONFIG);
    assert_string_equal(err.msg, "manifest: allow_http_response_headers must be a boolean");
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"a\", \"paht\": 1}]}", &m, &err),
                     KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "`paht`"));
    /* several modules: both unnamed are both "main" */
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"a\"}, {\"path\": \"b\"}]}", &m, &err),
                     KILN_ECONFIG);
    assert_string_equal(err.msg, "Duplicate module name found in Extism manifest: main");
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"/a\", \"name\": \"main\"}, "
                                    "{\"path\": \"/b\", \"name\": \"lib\"}]}",
                                    &m, &err),
                     KILN_OK);
    assert_string_equal(m.wasm_path, "/a");
    assert_string_equal(m.wasm_name, "main");
    assert_int_equal(m.n_modules, 1);
    assert_string_equal(m.modules[0].name, "lib");
    assert_string_equal(m.modules[0].path, "/b");
    xtm_manifest_fini(&m);
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"/a\", \"name\": \"x\"}, "
                                    "{\"path\": \"/b\", \"name\": \"y\"}]}",
                                    &m, &err),
                     KILN_OK);
    assert_string_equal(m.wasm_name, "y"); /* no "main": the last one */
    assert_string_equal(m.modules[0].name, "x");
    xtm_manifest_fini(&m);
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"a\", \"name\": 3}]}", &m, &err),
                     KILN_ECONFIG);
    assert_int_equal(parse_manifest("{\"wasm\": [{\"url\": \"https://x/a.wasm\"}]}", &m, &err),
                     KILN_EUNSUPPORTED);
    assert_int_equal(
        parse_manifest("{\"wasm\": [{\"path\": \"a\", \"data\": \"AA==\"}]}", &m, &err),
        KILN_ECONFIG);
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"a\"}], \"memory\": "
                                    "{\"max_pages\": -1}}",
                                    &m, &err),
                     KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "memory.max_pages"));
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"a\"}], \"config\": {\"k\": 1}}",
                                    &m, &err),
                     KILN_ECONFIG);
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"a\"}], \"allowed_hosts\": \"x\"}",
                                    &m, &err),
                     KILN_ECONFIG);
    assert_int_equal(parse_manifest("{\"wasm\": [{\"path\": \"a\"}],", &m, &err), KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "invalid JSON"));

    assert_int_equal(xtm_check_hash((const uint8_t *)"abc", 3,
                                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015"
                                    "ad",
                                    &err),
                     KILN_OK);
    assert_int_equal(xtm_check_hash((const uint8_t *)"abd", 3, "00", &err), KILN_EINVAL);
    assert_non_null(strstr(err.msg, "Hash mismatch, found "));
    assert_non_null(strstr(err.msg, " but expected 00"));
}

/* ---- Otoroshi output and input ----------------------------------------------------------- */

static const char *header(const kiln_response *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static int oto_out(const char *json, kiln_response *r, kiln_err *err)
{
    kiln_response_reset(r);
    return oto_output_to_response((const uint8_t *)json, strlen(json), r, err);
}

static void assert_body(const kiln_response *r, const char *expected)
{
    assert_int_equal(r->body_len, strlen(expected));
    if (r->body_len > 0)
        assert_memory_equal(r->body, expected, r->body_len);
}

static void test_oto_output(void **state)
{
    (void)state;
    kiln_response r;
    kiln_err err;
    kiln_response_init(&r, 1 << 20);

    /* Defaults: status 200, Content-Type application/json, empty body. */
    assert_int_equal(oto_out("{}", &r, &err), KILN_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    assert_body(&r, "");
    /* Not JSON, or not an object: Kiln says so (Otoroshi would answer {}). */
    assert_int_equal(oto_out("hello", &r, &err), KILN_EBADOUTPUT);
    assert_non_null(strstr(err.msg, "the plugin's output is not JSON: "));
    assert_non_null(strstr(err.msg, " at byte "));
    assert_int_equal(oto_out("{\"status\":200,}", &r, &err), KILN_EBADOUTPUT);
    assert_non_null(strstr(err.msg, "not JSON"));
    assert_int_equal(oto_out("[1,2]", &r, &err), KILN_EBADOUTPUT);
    assert_string_equal(err.msg, "the plugin's output is a JSON array, not an object");
    assert_int_equal(oto_out(" \n", &r, &err), KILN_EBADOUTPUT);
    assert_string_equal(err.msg, "the plugin's output is empty, not a JSON object");
    assert_int_equal(oto_out("", &r, &err), KILN_EBADOUTPUT);

    /* body_json as written: numbers, escapes and spacing are the plugin's. */
    assert_int_equal(oto_out("{\"status\":201,\"body_json\":{\"p\":0.9678663636363636,"
                             "\"v\":431952.32,\"big\":123456789012345678901234567890,"
                             "\"neg\":-1e400,\"e\":1.0E+2,\"z\":-0.0,\"s\":\"\\u00e9\\n\"}}",
                             &r, &err),
                     KILN_OK);
    assert_int_equal(r.status, 201); /* the big number did not drop the document */
    assert_body(&r, "{\"p\":0.9678663636363636,\"v\":431952.32,"
                    "\"big\":123456789012345678901234567890,\"neg\":-1e400,\"e\":1.0E+2,"
                    "\"z\":-0.0,\"s\":\"\\u00e9\\n\"}");
    assert_int_equal(oto_out("{\"body_json\":[1,2],\"body_json\":[ 3.10 ]}", &r, &err), KILN_OK);
    assert_body(&r, "[ 3.10 ]"); /* the last of repeated keys, as jansson reads it */
    assert_int_equal(oto_out("{\"headers\":{\"X-N\":0.1,\"X-O\":{\"a\": [1e2, \"x\\ny\"]}}}", &r,
                             &err),
                     KILN_OK);
    assert_string_equal(header(&r, "X-N"), "0.1");
    assert_string_equal(header(&r, "X-O"), "{\"a\":[1e2,\"x\\ny\"]}"); /* one line */

    /* Precedence: body_str > body_json > body_base64 > body_bytes. */
    assert_int_equal(
        oto_out("{\"body_str\":\"s\",\"body_json\":{\"a\":1},\"body_base64\":\"Yg==\"}", &r,
                &err),
        KILN_OK);
    assert_body(&r, "s");
    assert_int_equal(oto_out("{\"body\":\"b\",\"body_json\":1}", &r, &err), KILN_OK);
    assert_body(&r, "b");
    /* body is only read when body_str is absent. */
    assert_int_equal(oto_out("{\"body_str\":\" \",\"body\":\"b\",\"body_json\":[1]}", &r, &err),
                     KILN_OK);
    assert_body(&r, "[1]");
    assert_int_equal(oto_out("{\"body_str\":\"\\t\",\"body_json\":{\"a\": [1, 2]}}", &r, &err),
                     KILN_OK);
    assert_body(&r, "{\"a\": [1, 2]}");
    assert_int_equal(oto_out("{\"body_json\":null,\"body_base64\":\"aGk=\"}", &r, &err), KILN_OK);
    assert_body(&r, "hi");
    assert_int_equal(oto_out("{\"body_json\":\"text\"}", &r, &err), KILN_OK);
    assert_body(&r, "\"text\"");
    assert_int_equal(oto_out("{\"body_base64\":\" \",\"body_bytes\":[104,105,-1]}", &r, &err),
                     KILN_OK);
    assert_body(&r, "hi\xff");
    assert_int_equal(oto_out("{\"body_bytes\":[104,300]}", &r, &err), KILN_OK);
    assert_body(&r, ""); /* not a signed byte: the body is dropped */
    assert_int_equal(oto_out("{\"body_bytes\":[]}", &r, &err), KILN_OK);
    assert_body(&r, "");

    /* Status and headers as given; headers replace the default. */
    assert_int_equal(oto_out("{\"status\":201,\"headers\":{\"X-A\":\"1\",\"X-N\":5,\"X-Z\":null},"
                             "\"body_str\":\"ok\"}",
                             &r, &err),
                     KILN_OK);
    assert_int_equal(r.status, 201);
    assert_string_equal(header(&r, "X-A"), "1");
    assert_string_equal(header(&r, "X-N"), "5");
    assert_null(header(&r, "X-Z"));
    assert_null(header(&r, "Content-Type"));
    assert_int_equal(oto_out("{\"status\":\"404\"}", &r, &err), KILN_OK);
    assert_int_equal(r.status, 200); /* not an integer: default */

    /* What Kiln cannot honour. */
    assert_int_equal(oto_out("{\"status\":700}", &r, &err), KILN_EBADOUTPUT);
    assert_non_null(strstr(err.msg, "700"));
    assert_int_equal(oto_out("{\"delegates_call\":true}", &r, &err), KILN_EBADOUTPUT);
    assert_non_null(strstr(err.msg, "delegates_call"));
    assert_int_equal(oto_out("{\"body_base64\":\"!!\"}", &r, &err), KILN_EBADOUTPUT);
    assert_int_equal(oto_out("{\"delegates_call\":false,\"body_str\":\"x\"}", &r, &err), KILN_OK);

    /* The failure answer. */
    assert_int_equal(oto_error_response(&r, "boom \"quoted\""), KILN_OK);
    assert_int_equal(r.status, 400);
    assert_body(&r, "{\"error\":\"boom \\\"quoted\\\"\"}");
    /* Its text kept: newlines escaped, UTF-8 intact, invalid bytes as U+FFFD. */
    assert_int_equal(oto_error_response(&r, "a\nb \xc3\xa9 \xff"), KILN_OK);
    assert_body(&r, "{\"error\":\"a\\nb \xc3\xa9 \xef\xbf\xbd\"}");

    /* The response cap. */
    kiln_response small;
    kiln_response_init(&small, 4);
    assert_int_equal(oto_out("{\"body_str\":\"too long\"}", &small, &err), KILN_ELIMIT);
    kiln_response_fini(&small);
    kiln_response_fini(&r);
}

static void test_oto_input(void **state)
{
    (void)state;
    kiln_kv headers[] = {{"Host", "api.local:8080"}, {"Foo", "bar"}, {"Cookie", "a=1; b=2"}};
    kiln_kv params[] = {{"id", "42"}};
    kiln_kv config[] = {{"mode", "test"}};
    kiln_request req = {0};
    req.method = "POST";
    req.url = "/p/42?x=1&x=2&y=a%20b";
    req.path = "/p/42";
    req.query = "x=1&x=2&y=a%20b";
    req.remote_addr = "10.0.0.1";
    req.headers = headers;
    req.n_headers = 3;
    req.params = params;
    req.n_params = 1;
    req.body = (const uint8_t *)"h\xff";
    req.body_len = 2;
    kiln_function fn = {0};
    fn.name = "backend";
    fn.config = config;
    fn.n_config = 1;
    size_t len;
    char *s = oto_input_json(&fn, &req, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    free(s);
    assert_non_null(o);
    assert_true(json_is_string(json_object_get(o, "snowflake")));
    assert_true(json_is_null(json_object_get(o, "apikey")));
    assert_true(json_is_null(json_object_get(o, "user")));
    assert_true(json_is_object(json_object_get(o, "global_config")));
    assert_true(json_is_object(json_object_get(o, "attrs")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "config"), "mode")),
                        "test");
    json_t *backend = json_object_get(o, "backend");
    assert_string_equal(json_string_value(json_object_get(backend, "hostname")), "api.local");
    assert_int_equal(json_integer_value(json_object_get(backend, "port")), 8080);
    json_t *raw = json_object_get(o, "raw_request");
    assert_string_equal(json_string_value(json_object_get(raw, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(raw, "uri")), req.url);
    assert_string_equal(json_string_value(json_object_get(raw, "path")), "/p/42");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(raw, "headers"), "foo")), "bar");
    json_t *q = json_object_get(json_object_get(raw, "query"), "x");
    assert_int_equal(json_array_size(q), 2);
    assert_string_equal(json_string_value(json_array_get(q, 1)), "2");
    q = json_object_get(json_object_get(raw, "query"), "y");
    assert_string_equal(json_string_value(json_array_get(q, 0)), "a b");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(raw, "path_params"), "id")), "42");
    assert_int_equal(json_array_size(json_object_get(raw, "cookies")), 2);
    assert_true(json_is_true(json_object_get(raw, "has_body")));
    json_t *preq = json_object_get(o, "request");
    assert_string_equal(json_string_value(json_object_get(preq, "url")),
                        "http://api.local:8080/p/42?x=1&x=2&y=a%20b");
    json_t *ck = json_array_get(json_object_get(preq, "cookies"), 0);
    assert_non_null(json_object_get(ck, "httpOnly"));
    json_t *bytes = json_object_get(o, "request_body_bytes");
    assert_int_equal(json_array_size(bytes), 2);
    assert_int_equal(json_integer_value(json_array_get(bytes, 1)), -1);
    json_t *route = json_object_get(o, "route");
    assert_string_equal(json_string_value(json_object_get(route, "id")), "backend");
    json_t *fe = json_object_get(route, "frontend");
    assert_true(json_is_array(json_object_get(fe, "domains")));
    assert_true(json_is_null(json_object_get(fe, "strict_path")));
    json_t *targets = json_object_get(json_object_get(route, "backend"), "targets");
    assert_int_equal(json_array_size(targets), 1);
    json_decref(o);

    /* No body: null. */
    req.body_len = 0;
    s = oto_input_json(&fn, &req, &len);
    o = json_loads(s, 0, &je);
    free(s);
    assert_true(json_is_null(json_object_get(o, "request_body_bytes")));
    json_decref(o);
}

/* ---- context documents, byte for byte ------------------------------------------------------- */

/* The snowflake and the request id change per call: blank them out. */
static void doc_normalize(char *s)
{
    static const char *const keys[] = {"\"snowflake\":\"", "\"id\":"};
    for (int k = 0; k < 2; k++) {
        size_t kl = strlen(keys[k]);
        for (char *p = strstr(s, keys[k]); p != NULL; p = strstr(p + 1, keys[k])) {
            char *d = p + kl, *e = d;
            while (*e >= '0' && *e <= '9')
                e++;
            if (e == d)
                continue;
            *d = '0';
            memmove(d + 1, e, strlen(e) + 1);
        }
    }
}

static kiln_kv golden_headers[] = {
    {"Host", "api.local:8080"},
    {"X-Dup", "one"},
    {"Foo", "bar \"q\" \\ / \xc3\xa9 \t\x01\x1f\x7f\b\f\r\n \xe2\x82\xac"},
    {"x-dup", "two"},
    {"Cookie", "a=1; b=x=y;  bad; =v; c=;;d=\"q\""},
    {"Content-Type", "text/plain"},
};
static kiln_kv golden_params[] = {{"id", "42"}, {"id", "43"}, {"n\"m", "\xc3\xa9"}};
static kiln_kv golden_config[] = {{"mode", "test"}, {"n", "1"}, {"mode", "again"}};

static void golden_request(kiln_request *req)
{
    memset(req, 0, sizeof(*req));
    req->method = "POST";
    req->url = "/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41=%zz%4";
    req->path = "/p/42";
    req->query = "x=1&x=2&y=a%20b+c&&z&=e&%41=%zz%4";
    req->remote_addr = "10.0.0.1";
    req->headers = golden_headers;
    req->n_headers = sizeof(golden_headers) / sizeof(golden_headers[0]);
    req->params = golden_params;
    req->n_params = sizeof(golden_params) / sizeof(golden_params[0]);
    req->body = (const uint8_t *)"h\xff\x80";
    req->body_len = 3;
}

/* The document as text, normalized; NULL-safe. */
static char *golden_doc(char *s)
{
    assert_non_null(s);
    doc_normalize(s);
    return s;
}

#define GOLDEN_PRINT getenv("KILN_GOLDEN_PRINT") != NULL

static void golden_check(const char *what, char *got, const char *want)
{
    if (GOLDEN_PRINT)
        printf("GOLDEN %s\n%s\n", what, got);
    else
        assert_string_equal(got, want);
    free(got);
}

static const char *const golden_want[] = {
    /* backend */
    "{\"snowflake\":\"0\",\"backend\":{\"id\":\"backend\",\"hostname\":\"api.local\",\"port\""
    ":8080,\"tls\":false,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predica"
    "te\":{\"type\":\"AlwaysMatch\"},\"tls_config\":{}},\"apikey\":null,\"user\":null,\"raw_r"
    "equest\":{\"id\":0,\"method\":\"POST\",\"headers\":{\"host\":\"api.local:8080\",\"x-dup"
    "\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / \303\251 \\t\\u0001\\u001F\177\\b\\f\\r\\n "
    "\342\202\254\",\"cookie\":\"a=1; b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"content-type\":\"t"
    "ext/plain\"},\"cookies\":[{\"name\":\"a\",\"value\":\"1\",\"path\":\"/\",\"domain\":null"
    ",\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"b"
    "\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null"
    ",\"secure\":false,\"same_site\":null},{\"name\":\"\",\"value\":\"v\",\"path\":\"/\",\"do"
    "main\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_site\":null},{"
    "\"name\":\"c\",\"value\":\"\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_a"
    "ge\":null,\"secure\":false,\"same_site\":null},{\"name\":\"d\",\"value\":\"\\\"q\\\"\","
    "\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"s"
    "ame_site\":null}],\"tls\":false,\"uri\":\"/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41=%zz%4\",\"qu"
    "ery\":{\"x\":[\"1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\":[\"%zz%4\"]"
    "},\"path\":\"/p/42\",\"version\":\"HTTP/1.1\",\"has_body\":true,\"remote\":\"10.0.0.1\","
    "\"client_cert_chain\":null,\"path_params\":{\"id\":\"43\",\"n\\\"m\":\"\303\251\"}},\"co"
    "nfig\":{\"mode\":\"again\",\"n\":\"1\"},\"global_config\":{},\"attrs\":{},\"route\":{\"i"
    "d\":\"backend\",\"name\":\"backend\",\"description\":\"\",\"tags\":[],\"metadata\":{},\""
    "enabled\":true,\"debug_flow\":false,\"export_reporting\":false,\"capture\":false,\"group"
    "s\":[\"default\"],\"frontend\":{\"domains\":[\"api.local:8080\"],\"strict_path\":null,\""
    "exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},\"backend\":{\"targets\":[{\"i"
    "d\":\"backend\",\"hostname\":\"api.local\",\"port\":8080,\"tls\":false,\"weight\":1,\"pr"
    "otocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":\"AlwaysMatch\"},\"tls"
    "_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_balancing\":{\"type\":\"RoundRobi"
    "n\"},\"client\":{},\"health_check\":null},\"backend_ref\":null,\"plugins\":[]},\"request"
    "\":{\"url\":\"http://api.local:8080/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41=%zz%4\",\"method\":"
    "\"POST\",\"headers\":{\"host\":\"api.local:8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q"
    "\\\" \\\\ / \303\251 \\t\\u0001\\u001F\177\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; "
    "b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"content-type\":\"text/plain\"},\"query\":{\"x\":[\""
    "1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\":[\"%zz%4\"]},\"version\":\""
    "HTTP/1.1\",\"client_cert_chain\":null,\"backend\":null,\"cookies\":[{\"name\":\"a\",\"va"
    "lue\":\"1\",\"path\":\"/\",\"domain\":null,\"httpOnly\":false,\"maxAge\":null,\"secure\""
    ":false},{\"name\":\"b\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"httpOnly\":fa"
    "lse,\"maxAge\":null,\"secure\":false},{\"name\":\"\",\"value\":\"v\",\"path\":\"/\",\"do"
    "main\":null,\"httpOnly\":false,\"maxAge\":null,\"secure\":false},{\"name\":\"c\",\"value"
    "\":\"\",\"path\":\"/\",\"domain\":null,\"httpOnly\":false,\"maxAge\":null,\"secure\":fal"
    "se},{\"name\":\"d\",\"value\":\"\\\"q\\\"\",\"path\":\"/\",\"domain\":null,\"httpOnly\":"
    "false,\"maxAge\":null,\"secure\":false}]},\"request_body_bytes\":[104,-1,-128]}",
    /* backend-bare */
    "{\"snowflake\":\"0\",\"backend\":{\"id\":\"function\",\"hostname\":\"[::1]\",\"port\":80"
    "81,\"tls\":false,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate"
    "\":{\"type\":\"AlwaysMatch\"},\"tls_config\":{}},\"apikey\":null,\"user\":null,\"raw_req"
    "uest\":{\"id\":0,\"method\":\"GET\",\"headers\":{\"host\":\"[::1]:8081\"},\"cookies\":[]"
    ",\"tls\":false,\"uri\":\"/\",\"query\":{},\"path\":\"/\",\"version\":\"HTTP/1.1\",\"has_"
    "body\":false,\"remote\":\"\",\"client_cert_chain\":null,\"path_params\":{}},\"config\":{"
    "},\"global_config\":{},\"attrs\":{},\"route\":{\"id\":\"function\",\"name\":\"function\""
    ",\"description\":\"\",\"tags\":[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,"
    "\"export_reporting\":false,\"capture\":false,\"groups\":[\"default\"],\"frontend\":{\"do"
    "mains\":[\"[::1]:8081\"],\"strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{"
    "},\"methods\":[]},\"backend\":{\"targets\":[{\"id\":\"function\",\"hostname\":\"[::1]\","
    "\"port\":8081,\"tls\":false,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,"
    "\"predicate\":{\"type\":\"AlwaysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":"
    "false,\"load_balancing\":{\"type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},"
    "\"backend_ref\":null,\"plugins\":[]},\"request\":{\"url\":\"http://[::1]:8081/\",\"metho"
    "d\":\"GET\",\"headers\":{\"host\":\"[::1]:8081\"},\"query\":{},\"version\":\"HTTP/1.1\","
    "\"client_cert_chain\":null,\"backend\":null,\"cookies\":[]},\"request_body_bytes\":null}",
    /* backend-host */
    "{\"snowflake\":\"0\",\"backend\":{\"id\":\"function\",\"hostname\":\"h.example\",\"port"
    "\":80,\"tls\":false,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predica"
    "te\":{\"type\":\"AlwaysMatch\"},\"tls_config\":{}},\"apikey\":null,\"user\":null,\"raw_r"
    "equest\":{\"id\":0,\"method\":\"GET\",\"headers\":{},\"cookies\":[],\"tls\":false,\"uri"
    "\":\"/\",\"query\":{},\"path\":\"/\",\"version\":\"HTTP/1.1\",\"has_body\":false,\"remot"
    "e\":\"\",\"client_cert_chain\":null,\"path_params\":{}},\"config\":{},\"global_config\":"
    "{},\"attrs\":{},\"route\":{\"id\":\"function\",\"name\":\"function\",\"description\":\""
    "\",\"tags\":[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,\"export_reporting"
    "\":false,\"capture\":false,\"groups\":[\"default\"],\"frontend\":{\"domains\":[\"h.examp"
    "le\"],\"strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},"
    "\"backend\":{\"targets\":[{\"id\":\"function\",\"hostname\":\"h.example\",\"port\":80,\""
    "tls\":false,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\""
    "type\":\"AlwaysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_bala"
    "ncing\":{\"type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},\"backend_ref\":n"
    "ull,\"plugins\":[]},\"request\":{\"url\":\"http://h.example/\",\"method\":\"GET\",\"head"
    "ers\":{},\"query\":{},\"version\":\"HTTP/1.1\",\"client_cert_chain\":null,\"backend\":nu"
    "ll,\"cookies\":[]},\"request_body_bytes\":null}",
    /* stage-matcher-0 */
    "{\"snowflake\":\"0\",\"config\":{\"ratio\":0.9678663636363636,\"big\":123456789012345678"
    "901234567890},\"attrs\":{\"k\":[1.50,{\"a\":null},123456789012345678901234567890],\"q\\"
    "\"k\":\"v\"},\"request\":{\"id\":0,\"method\":\"POST\",\"headers\":{\"host\":\"api.local"
    ":8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / \303\251 \\t\\u0001\\u001F\177"
    "\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"conte"
    "nt-type\":\"text/plain\"},\"cookies\":[{\"name\":\"a\",\"value\":\"1\",\"path\":\"/\",\""
    "domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_site\":null},"
    "{\"name\":\"b\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"m"
    "ax_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"\",\"value\":\"v\",\"path"
    "\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_si"
    "te\":null},{\"name\":\"c\",\"value\":\"\",\"path\":\"/\",\"domain\":null,\"http_only\":f"
    "alse,\"max_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"d\",\"value\":\""
    "\\\"q\\\"\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure"
    "\":false,\"same_site\":null}],\"tls\":false,\"uri\":\"/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41="
    "%zz%4\",\"query\":{\"x\":[\"1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\""
    ":[\"%zz%4\"]},\"path\":\"/p/42\",\"version\":\"HTTP/1.1\",\"has_body\":true,\"remote\":"
    "\"10.0.0.1\",\"client_cert_chain\":null,\"path_params\":{\"id\":\"43\",\"n\\\"m\":\"\303"
    "\251\"}},\"route\":{\"id\":\"/p/:id\",\"name\":\"/p/:id\",\"description\":\"\",\"tags\":"
    "[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,\"export_reporting\":false,\"ca"
    "pture\":false,\"groups\":[\"default\"],\"frontend\":{\"domains\":[\"api.local:8080\"],\""
    "strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},\"backend"
    "\":{\"targets\":[{\"id\":\"backend\",\"hostname\":\"api.local\",\"port\":8080,\"tls\":fa"
    "lse,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":"
    "\"AlwaysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_balancing\""
    ":{\"type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},\"backend_ref\":null,\"p"
    "lugins\":[]}}",
    /* stage-pre-route-1 */
    "{\"snowflake\":\"0\",\"config\":{\"ratio\":0.9678663636363636,\"big\":123456789012345678"
    "901234567890},\"attrs\":{\"k\":[1.50,{\"a\":null},123456789012345678901234567890],\"q\\"
    "\"k\":\"v\"},\"request\":{\"id\":0,\"method\":\"POST\",\"headers\":{\"host\":\"api.local"
    ":8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / \303\251 \\t\\u0001\\u001F\177"
    "\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"conte"
    "nt-type\":\"text/plain\"},\"cookies\":[{\"name\":\"a\",\"value\":\"1\",\"path\":\"/\",\""
    "domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_site\":null},"
    "{\"name\":\"b\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"m"
    "ax_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"\",\"value\":\"v\",\"path"
    "\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_si"
    "te\":null},{\"name\":\"c\",\"value\":\"\",\"path\":\"/\",\"domain\":null,\"http_only\":f"
    "alse,\"max_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"d\",\"value\":\""
    "\\\"q\\\"\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure"
    "\":false,\"same_site\":null}],\"tls\":false,\"uri\":\"/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41="
    "%zz%4\",\"query\":{\"x\":[\"1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\""
    ":[\"%zz%4\"]},\"path\":\"/p/42\",\"version\":\"HTTP/1.1\",\"has_body\":true,\"remote\":"
    "\"10.0.0.1\",\"client_cert_chain\":null,\"path_params\":{\"id\":\"43\",\"n\\\"m\":\"\303"
    "\251\"}},\"route\":{\"id\":\"/p/:id\",\"name\":\"/p/:id\",\"description\":\"\",\"tags\":"
    "[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,\"export_reporting\":false,\"ca"
    "pture\":false,\"groups\":[\"default\"],\"frontend\":{\"domains\":[\"api.local:8080\"],\""
    "strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},\"backend"
    "\":{\"targets\":[{\"id\":\"backend\",\"hostname\":\"api.local\",\"port\":8080,\"tls\":fa"
    "lse,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":"
    "\"AlwaysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_balancing\""
    ":{\"type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},\"backend_ref\":null,\"p"
    "lugins\":[]},\"global_config\":{}}",
    /* stage-access-1 */
    "{\"snowflake\":\"0\",\"config\":{\"ratio\":0.9678663636363636,\"big\":123456789012345678"
    "901234567890},\"attrs\":{\"k\":[1.50,{\"a\":null},123456789012345678901234567890],\"q\\"
    "\"k\":\"v\"},\"request\":{\"id\":0,\"method\":\"POST\",\"headers\":{\"host\":\"api.local"
    ":8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / \303\251 \\t\\u0001\\u001F\177"
    "\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"conte"
    "nt-type\":\"text/plain\"},\"cookies\":[{\"name\":\"a\",\"value\":\"1\",\"path\":\"/\",\""
    "domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_site\":null},"
    "{\"name\":\"b\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"m"
    "ax_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"\",\"value\":\"v\",\"path"
    "\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_si"
    "te\":null},{\"name\":\"c\",\"value\":\"\",\"path\":\"/\",\"domain\":null,\"http_only\":f"
    "alse,\"max_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"d\",\"value\":\""
    "\\\"q\\\"\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure"
    "\":false,\"same_site\":null}],\"tls\":false,\"uri\":\"/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41="
    "%zz%4\",\"query\":{\"x\":[\"1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\""
    ":[\"%zz%4\"]},\"path\":\"/p/42\",\"version\":\"HTTP/1.1\",\"has_body\":true,\"remote\":"
    "\"10.0.0.1\",\"client_cert_chain\":null,\"path_params\":{\"id\":\"43\",\"n\\\"m\":\"\303"
    "\251\"}},\"route\":{\"id\":\"/p/:id\",\"name\":\"/p/:id\",\"description\":\"\",\"tags\":"
    "[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,\"export_reporting\":false,\"ca"
    "pture\":false,\"groups\":[\"default\"],\"frontend\":{\"domains\":[\"api.local:8080\"],\""
    "strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},\"backend"
    "\":{\"targets\":[{\"id\":\"backend\",\"hostname\":\"api.local\",\"port\":8080,\"tls\":fa"
    "lse,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":"
    "\"AlwaysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_balancing\""
    ":{\"type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},\"backend_ref\":null,\"p"
    "lugins\":[]},\"global_config\":{},\"apikey\":null,\"user\":null}",
    /* stage-request-1 */
    "{\"snowflake\":\"0\",\"config\":{\"ratio\":0.9678663636363636,\"big\":123456789012345678"
    "901234567890},\"attrs\":{\"k\":[1.50,{\"a\":null},123456789012345678901234567890],\"q\\"
    "\"k\":\"v\"},\"request\":{\"id\":0,\"method\":\"POST\",\"headers\":{\"host\":\"api.local"
    ":8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / \303\251 \\t\\u0001\\u001F\177"
    "\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"conte"
    "nt-type\":\"text/plain\"},\"cookies\":[{\"name\":\"a\",\"value\":\"1\",\"path\":\"/\",\""
    "domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_site\":null},"
    "{\"name\":\"b\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"m"
    "ax_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"\",\"value\":\"v\",\"path"
    "\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_si"
    "te\":null},{\"name\":\"c\",\"value\":\"\",\"path\":\"/\",\"domain\":null,\"http_only\":f"
    "alse,\"max_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"d\",\"value\":\""
    "\\\"q\\\"\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure"
    "\":false,\"same_site\":null}],\"tls\":false,\"uri\":\"/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41="
    "%zz%4\",\"query\":{\"x\":[\"1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\""
    ":[\"%zz%4\"]},\"path\":\"/p/42\",\"version\":\"HTTP/1.1\",\"has_body\":true,\"remote\":"
    "\"10.0.0.1\",\"client_cert_chain\":null,\"path_params\":{\"id\":\"43\",\"n\\\"m\":\"\303"
    "\251\"}},\"route\":{\"id\":\"/p/:id\",\"name\":\"/p/:id\",\"description\":\"\",\"tags\":"
    "[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,\"export_reporting\":false,\"ca"
    "pture\":false,\"groups\":[\"default\"],\"frontend\":{\"domains\":[\"api.local:8080\"],\""
    "strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},\"backend"
    "\":{\"targets\":[{\"id\":\"backend\",\"hostname\":\"api.local\",\"port\":8080,\"tls\":fa"
    "lse,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":"
    "\"AlwaysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_balancing\""
    ":{\"type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},\"backend_ref\":null,\"p"
    "lugins\":[]},\"global_config\":{},\"apikey\":null,\"user\":null,\"raw_request\":{\"url\""
    ":\"http://api.local:8080/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41=%zz%4\",\"method\":\"POST\",\""
    "headers\":{\"host\":\"api.local:8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / "
    "\303\251 \\t\\u0001\\u001F\177\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; b=x=y;  bad;"
    " =v; c=;;d=\\\"q\\\"\",\"content-type\":\"text/plain\"},\"query\":{\"x\":[\"1\",\"2\"],"
    "\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\":[\"%zz%4\"]},\"version\":\"HTTP/1.1\","
    "\"client_cert_chain\":null,\"backend\":null,\"cookies\":[{\"name\":\"a\",\"value\":\"1\""
    ",\"path\":\"/\",\"domain\":null,\"httpOnly\":false,\"maxAge\":null,\"secure\":false},{\""
    "name\":\"b\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"httpOnly\":false,\"maxAg"
    "e\":null,\"secure\":false},{\"name\":\"\",\"value\":\"v\",\"path\":\"/\",\"domain\":null"
    ",\"httpOnly\":false,\"maxAge\":null,\"secure\":false},{\"name\":\"c\",\"value\":\"\",\"p"
    "ath\":\"/\",\"domain\":null,\"httpOnly\":false,\"maxAge\":null,\"secure\":false},{\"name"
    "\":\"d\",\"value\":\"\\\"q\\\"\",\"path\":\"/\",\"domain\":null,\"httpOnly\":false,\"max"
    "Age\":null,\"secure\":false}]},\"otoroshi_request\":{\"url\":\"http://api.local:8080/p/4"
    "2?x=1&x=2&y=a%20b+c&&z&=e&%41=%zz%4\",\"method\":\"POST\",\"headers\":{\"host\":\"api.lo"
    "cal:8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / \303\251 \\t\\u0001\\u001F"
    "\177\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"c"
    "ontent-type\":\"text/plain\"},\"query\":{\"x\":[\"1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\""
    "\"],\"\":[\"e\"],\"A\":[\"%zz%4\"]},\"version\":\"HTTP/1.1\",\"client_cert_chain\":null,"
    "\"backend\":null,\"cookies\":[{\"name\":\"a\",\"value\":\"1\",\"path\":\"/\",\"domain\":"
    "null,\"httpOnly\":false,\"maxAge\":null,\"secure\":false},{\"name\":\"b\",\"value\":\"x="
    "y\",\"path\":\"/\",\"domain\":null,\"httpOnly\":false,\"maxAge\":null,\"secure\":false},"
    "{\"name\":\"\",\"value\":\"v\",\"path\":\"/\",\"domain\":null,\"httpOnly\":false,\"maxAg"
    "e\":null,\"secure\":false},{\"name\":\"c\",\"value\":\"\",\"path\":\"/\",\"domain\":null"
    ",\"httpOnly\":false,\"maxAge\":null,\"secure\":false},{\"name\":\"d\",\"value\":\"\\\"q"
    "\\\"\",\"path\":\"/\",\"domain\":null,\"httpOnly\":false,\"maxAge\":null,\"secure\":fals"
    "e}]},\"backend\":{\"id\":\"backend\",\"hostname\":\"api.local\",\"port\":8080,\"tls\":fa"
    "lse,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":"
    "\"AlwaysMatch\"},\"tls_config\":{}},\"request_body_bytes\":[104,-1,-128]}",
    /* stage-response-2 */
    "{\"snowflake\":\"0\",\"config\":{\"ratio\":0.9678663636363636,\"big\":123456789012345678"
    "901234567890},\"attrs\":{\"k\":[1.50,{\"a\":null},123456789012345678901234567890],\"q\\"
    "\"k\":\"v\"},\"request\":{\"id\":0,\"method\":\"POST\",\"headers\":{\"host\":\"api.local"
    ":8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / \303\251 \\t\\u0001\\u001F\177"
    "\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"conte"
    "nt-type\":\"text/plain\"},\"cookies\":[{\"name\":\"a\",\"value\":\"1\",\"path\":\"/\",\""
    "domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_site\":null},"
    "{\"name\":\"b\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"m"
    "ax_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"\",\"value\":\"v\",\"path"
    "\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_si"
    "te\":null},{\"name\":\"c\",\"value\":\"\",\"path\":\"/\",\"domain\":null,\"http_only\":f"
    "alse,\"max_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"d\",\"value\":\""
    "\\\"q\\\"\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure"
    "\":false,\"same_site\":null}],\"tls\":false,\"uri\":\"/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41="
    "%zz%4\",\"query\":{\"x\":[\"1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\""
    ":[\"%zz%4\"]},\"path\":\"/p/42\",\"version\":\"HTTP/1.1\",\"has_body\":true,\"remote\":"
    "\"10.0.0.1\",\"client_cert_chain\":null,\"path_params\":{\"id\":\"43\",\"n\\\"m\":\"\303"
    "\251\"}},\"route\":{\"id\":\"/p/:id\",\"name\":\"/p/:id\",\"description\":\"\",\"tags\":"
    "[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,\"export_reporting\":false,\"ca"
    "pture\":false,\"groups\":[\"default\"],\"frontend\":{\"domains\":[\"api.local:8080\"],\""
    "strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},\"backend"
    "\":{\"targets\":[{\"id\":\"backend\",\"hostname\":\"api.local\",\"port\":8080,\"tls\":fa"
    "lse,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":"
    "\"AlwaysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_balancing\""
    ":{\"type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},\"backend_ref\":null,\"p"
    "lugins\":[]},\"global_config\":{},\"apikey\":null,\"user\":null,\"raw_response\":{\"stat"
    "us\":201,\"headers\":{\"content-type\":\"text/plain\",\"x-up\":\"A\",\"x-up\":\"B\"},\"c"
    "ookies\":[{\"name\":\"s\",\"value\":\"1\",\"domain\":\"d.example\",\"path\":\"/x\",\"max"
    "Age\":60,\"secure\":true,\"httpOnly\":true}]},\"otoroshi_response\":{\"status\":201,\"he"
    "aders\":{\"content-type\":\"text/plain\",\"x-up\":\"A\",\"x-up\":\"B\"},\"cookies\":[{\""
    "name\":\"s\",\"value\":\"1\",\"domain\":\"d.example\",\"path\":\"/x\",\"maxAge\":60,\"se"
    "cure\":true,\"httpOnly\":true}]},\"response_body_bytes\":[111,107]}",
    /* stage-sink-0 */
    "{\"snowflake\":\"0\",\"config\":{\"ratio\":0.9678663636363636,\"big\":123456789012345678"
    "901234567890},\"attrs\":{\"k\":[1.50,{\"a\":null},123456789012345678901234567890],\"q\\"
    "\"k\":\"v\"},\"request\":{\"id\":0,\"method\":\"POST\",\"headers\":{\"host\":\"api.local"
    ":8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / \303\251 \\t\\u0001\\u001F\177"
    "\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"conte"
    "nt-type\":\"text/plain\"},\"cookies\":[{\"name\":\"a\",\"value\":\"1\",\"path\":\"/\",\""
    "domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_site\":null},"
    "{\"name\":\"b\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"m"
    "ax_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"\",\"value\":\"v\",\"path"
    "\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_si"
    "te\":null},{\"name\":\"c\",\"value\":\"\",\"path\":\"/\",\"domain\":null,\"http_only\":f"
    "alse,\"max_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"d\",\"value\":\""
    "\\\"q\\\"\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure"
    "\":false,\"same_site\":null}],\"tls\":false,\"uri\":\"/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41="
    "%zz%4\",\"query\":{\"x\":[\"1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\""
    ":[\"%zz%4\"]},\"path\":\"/p/42\",\"version\":\"HTTP/1.1\",\"has_body\":true,\"remote\":"
    "\"10.0.0.1\",\"client_cert_chain\":null,\"path_params\":{\"id\":\"43\",\"n\\\"m\":\"\303"
    "\251\"}},\"route\":{\"id\":\"/p/:id\",\"name\":\"/p/:id\",\"description\":\"\",\"tags\":"
    "[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,\"export_reporting\":false,\"ca"
    "pture\":false,\"groups\":[\"default\"],\"frontend\":{\"domains\":[\"api.local:8080\"],\""
    "strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},\"backend"
    "\":{\"targets\":[{\"id\":\"backend\",\"hostname\":\"api.local\",\"port\":8080,\"tls\":fa"
    "lse,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":"
    "\"AlwaysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_balancing\""
    ":{\"type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},\"backend_ref\":null,\"p"
    "lugins\":[]},\"global_config\":{},\"origin\":\"NotFound\",\"status\":404,\"message\":\"n"
    "o route \\\"here\\\"\"}",
    /* stage-sink-3 */
    "{\"snowflake\":\"0\",\"config\":{\"ratio\":0.9678663636363636,\"big\":123456789012345678"
    "901234567890},\"attrs\":{\"k\":[1.50,{\"a\":null},123456789012345678901234567890],\"q\\"
    "\"k\":\"v\"},\"request\":{\"id\":0,\"method\":\"POST\",\"headers\":{\"host\":\"api.local"
    ":8080\",\"x-dup\":\"two\",\"foo\":\"bar \\\"q\\\" \\\\ / \303\251 \\t\\u0001\\u001F\177"
    "\\b\\f\\r\\n \342\202\254\",\"cookie\":\"a=1; b=x=y;  bad; =v; c=;;d=\\\"q\\\"\",\"conte"
    "nt-type\":\"text/plain\"},\"cookies\":[{\"name\":\"a\",\"value\":\"1\",\"path\":\"/\",\""
    "domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_site\":null},"
    "{\"name\":\"b\",\"value\":\"x=y\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"m"
    "ax_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"\",\"value\":\"v\",\"path"
    "\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure\":false,\"same_si"
    "te\":null},{\"name\":\"c\",\"value\":\"\",\"path\":\"/\",\"domain\":null,\"http_only\":f"
    "alse,\"max_age\":null,\"secure\":false,\"same_site\":null},{\"name\":\"d\",\"value\":\""
    "\\\"q\\\"\",\"path\":\"/\",\"domain\":null,\"http_only\":false,\"max_age\":null,\"secure"
    "\":false,\"same_site\":null}],\"tls\":false,\"uri\":\"/p/42?x=1&x=2&y=a%20b+c&&z&=e&%41="
    "%zz%4\",\"query\":{\"x\":[\"1\",\"2\"],\"y\":[\"a b c\"],\"z\":[\"\"],\"\":[\"e\"],\"A\""
    ":[\"%zz%4\"]},\"path\":\"/p/42\",\"version\":\"HTTP/1.1\",\"has_body\":true,\"remote\":"
    "\"10.0.0.1\",\"client_cert_chain\":null,\"path_params\":{\"id\":\"43\",\"n\\\"m\":\"\303"
    "\251\"}},\"route\":{\"id\":\"/p/:id\",\"name\":\"/p/:id\",\"description\":\"\",\"tags\":"
    "[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,\"export_reporting\":false,\"ca"
    "pture\":false,\"groups\":[\"default\"],\"frontend\":{\"domains\":[\"api.local:8080\"],\""
    "strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},\"backend"
    "\":{\"targets\":[{\"id\":\"backend\",\"hostname\":\"api.local\",\"port\":8080,\"tls\":fa"
    "lse,\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":"
    "\"AlwaysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_balancing\""
    ":{\"type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},\"backend_ref\":null,\"p"
    "lugins\":[]},\"global_config\":{},\"origin\":\"NotFound\",\"status\":404,\"message\":\"n"
    "o route \\\"here\\\"\",\"body_bytes\":[104,-1,-128]}",
    /* stage-sink-bare */
    "{\"snowflake\":\"0\",\"config\":{},\"attrs\":{},\"request\":{\"id\":0,\"method\":\"GET\""
    ",\"headers\":{},\"cookies\":[],\"tls\":false,\"uri\":\"/\",\"query\":{},\"path\":\"/\","
    "\"version\":\"HTTP/1.1\",\"has_body\":false,\"remote\":\"\",\"client_cert_chain\":null,"
    "\"path_params\":{}},\"route\":{\"id\":\"sink\",\"name\":\"sink\",\"description\":\"\",\""
    "tags\":[],\"metadata\":{},\"enabled\":true,\"debug_flow\":false,\"export_reporting\":fal"
    "se,\"capture\":false,\"groups\":[\"default\"],\"frontend\":{\"domains\":[\"h.example\"],"
    "\"strict_path\":null,\"exact\":false,\"headers\":{},\"query\":{},\"methods\":[]},\"backe"
    "nd\":{\"targets\":[{\"id\":\"sink\",\"hostname\":\"h.example\",\"port\":80,\"tls\":false"
    ",\"weight\":1,\"protocol\":\"HTTP/1.1\",\"ip_address\":null,\"predicate\":{\"type\":\"Al"
    "waysMatch\"},\"tls_config\":{}}],\"root\":\"/\",\"rewrite\":false,\"load_balancing\":{\""
    "type\":\"RoundRobin\"},\"client\":{},\"health_check\":null},\"backend_ref\":null,\"plugi"
    "ns\":[]},\"global_config\":{},\"origin\":\"NotFound\",\"status\":404,\"message\":\"no ro"
    "ute for this path\",\"body_bytes\":null}",
};

static void test_oto_input_exact(void **state)
{
    (void)state;
    kiln_request req;
    golden_request(&req);
    kiln_function fn = {0};
    fn.name = "backend";
    fn.config = golden_config;
    fn.n_config = sizeof(golden_config) / sizeof(golden_config[0]);
    size_t len, gi = 0;
    char name[64];

    /* The WasmBackend document, with a body and without. */
    golden_check("backend", golden_doc(oto_input_json(&fn, &req, &len)), golden_want[gi++]);
    kiln_request bare = {0};
    bare.url = "/";
    bare.path = "/";
    bare.query = "";
    kiln_kv h6[] = {{"host", "[::1]:8081"}};
    bare.headers = h6;
    bare.n_headers = 1;
    fn.n_config = 0;
    fn.name = NULL;
    golden_check("backend-bare", golden_doc(oto_input_json(&fn, &bare, &len)), golden_want[gi++]);
    bare.n_headers = 0;
    bare.host = "h.example";
    golden_check("backend-host", golden_doc(oto_input_json(&fn, &bare, &len)), golden_want[gi++]);

    /* Every kind's context document, with attributes and a config whose
     * numbers must stay as written. */
    kiln_stage_info info = {.route = "/p/:id", .backend = "backend", .sink_status = 404,
                            .sink_message = "no route \"here\""};
    kiln_stage *st = NULL;
    assert_int_equal(kiln_stage_new(&req, &info, 1 << 20, &st), KILN_OK);
    const char *a1 = "[1.50, {\"a\":null}, 123456789012345678901234567890]";
    assert_int_equal(kiln_stage_attr_set(st, "k", a1, strlen(a1)), KILN_OK);
    assert_int_equal(kiln_stage_attr_set(st, "q\"k", "\"v\"", 3), KILN_OK);
    kiln_response *resp = kiln_stage_response(st);
    resp->status = 201;
    assert_int_equal(kiln_response_add_header(resp, "Content-Type", "text/plain"), KILN_OK);
    assert_int_equal(kiln_response_add_header(resp, "Set-Cookie", "s=1; Path=/x; HttpOnly; "
                                              "Max-Age=60; Domain=d.example; Secure"), KILN_OK);
    assert_int_equal(kiln_response_add_header(resp, "X-Up", "A"), KILN_OK);
    assert_int_equal(kiln_response_add_header(resp, "x-up", "B"), KILN_OK);
    assert_int_equal(kiln_response_append(resp, "ok", 2), KILN_OK);
    kiln_plugin pl = {.name = "guard", .config_json = "{\"ratio\": 0.9678663636363636, "
                                                      "\"big\": 123456789012345678901234567890}"};
    fn.name = "guard";
    static const struct {
        kiln_stage_kind kind;
        kiln_stage_phase phase;
    } kinds[] = {
        {KILN_STAGE_MATCHER, KILN_PHASE_MATCH},     {KILN_STAGE_PRE_ROUTE, KILN_PHASE_REQUEST},
        {KILN_STAGE_ACCESS, KILN_PHASE_REQUEST},    {KILN_STAGE_REQUEST, KILN_PHASE_REQUEST},
        {KILN_STAGE_RESPONSE, KILN_PHASE_RESPONSE}, {KILN_STAGE_SINK, KILN_PHASE_MATCH},
        {KILN_STAGE_SINK, KILN_PHASE_HANDLE},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        pl.kind = kinds[i].kind;
        snprintf(name, sizeof(name), "stage-%s-%d", kiln_stage_kind_name(pl.kind), kinds[i].phase);
        golden_check(name, golden_doc(oto_stage_input(&fn, &pl, kinds[i].phase, st, &len)),
                     golden_want[gi++]);
    }
    /* A sink's stage: no route, no backend, no config. */
    kiln_stage_free(st);
    kiln_stage_info none = {.route = "", .backend = "", .sink_status = 0};
    assert_int_equal(kiln_stage_new(&bare, &none, 0, &st), KILN_OK);
    pl.kind = KILN_STAGE_SINK;
    pl.config_json = NULL;
    fn.name = NULL;
    golden_check("stage-sink-bare", golden_doc(oto_stage_input(&fn, &pl, KILN_PHASE_HANDLE, st,
                                                               &len)), golden_want[gi++]);
    kiln_stage_free(st);
    assert_int_equal(gi, sizeof(golden_want) / sizeof(golden_want[0]));

    /* Bytes that are not UTF-8 (a decoded path, a header, a query value)
     * are written as U+FFFD: jansson refused them, which dropped a header,
     * emptied a query value and failed the whole document over a path. */
    kiln_kv hbad[] = {{"X-Bad", "a\xff"}};
    bare.headers = hbad;
    bare.n_headers = 1;
    bare.path = "/\xc3";
    bare.query = "q=%FF";
    char *s = oto_input_json(&fn, &bare, &len);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"x-bad\":\"a\xef\xbf\xbd\""));
    assert_non_null(strstr(s, "\"path\":\"/\xef\xbf\xbd\""));
    assert_non_null(strstr(s, "\"query\":{\"q\":[\"\xef\xbf\xbd\"]}"));
    free(s);
}

/* ---- handlers end to end ------------------------------------------------------------------- */

/* An Extism plugin in WAT: $block copies guest memory into a new block. */
static const char *extism_wat =
    "(module\n"
    " (import \"extism:host/env\" \"alloc\" (func $alloc (param i64) (result i64)))\n"
    " (import \"extism:host/env\" \"store_u8\" (func $store_u8 (param i64 i32)))\n"
    " (import \"extism:host/env\" \"load_u8\" (func $load_u8 (param i64) (result i32)))\n"
    " (import \"extism:host/env\" \"length\" (func $length (param i64) (result i64)))\n"
    " (import \"extism:host/env\" \"output_set\" (func $output_set (param i64 i64)))\n"
    " (import \"extism:host/env\" \"error_set\" (func $error_set (param i64)))\n"
    " (import \"extism:host/env\" \"input_length\" (func $input_length (result i64)))\n"
    " (import \"extism:host/env\" \"input_load_u8\" (func $input_load_u8 (param i64) (result "
    "i32)))\n"
    " (import \"extism:host/env\" \"var_get\" (func $var_get (param i64) (result i64)))\n"
    " (import \"extism:host/env\" \"var_set\" (func $var_set (param i64 i64)))\n"
    " (import \"extism:host/env\" \"config_get\" (func $config_get (param i64) (result i64)))\n"
    " (memory (export \"memory\") 1)\n"
    " (data (i32.const 16) \"bad thing\")\n"
    " (data (i32.const 32) \"n\")\n"
    " (data (i32.const 48) \"greeting\")\n"
    " (global $calls (mut i32) (i32.const 0))\n"
    " (func $block (param $p i32) (param $n i32) (result i64) (local $h i64) (local $i i32)\n"
    "  (local.set $h (call $alloc (i64.extend_i32_u (local.get $n))))\n"
    "  (block $d (loop $l\n"
    "   (br_if $d (i32.ge_u (local.get $i) (local.get $n)))\n"
    "   (call $store_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))\n"
    "                   (i32.load8_u (i32.add (local.get $p) (local.get $i))))\n"
    "   (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "   (br $l)))\n"
    "  (local.get $h))\n"
    " (func $out_byte (param $b i32) (local $h i64)\n"
    "  (local.set $h (call $alloc (i64.const 1)))\n"
    "  (call $store_u8 (local.get $h) (local.get $b))\n"
    "  (call $output_set (local.get $h) (i64.const 1)))\n"
    " (func (export \"echo\") (result i32) (local $n i64) (local $h i64) (local $i i64)\n"
    "  (local.set $n (call $input_length))\n"
    "  (local.set $h (call $alloc (local.get $n)))\n"
    "  (block $d (loop $l\n"
    "   (br_if $d (i64.ge_u (local.get $i) (local.get $n)))\n"
    "   (call $store_u8 (i64.add (local.get $h) (local.get $i))\n"
    "                   (call $input_load_u8 (local.get $i)))\n"
    "   (local.set $i (i64.add (local.get $i) (i64.const 1)))\n"
    "   (br $l)))\n"
    "  (call $output_set (local.get $h) (local.get $n))\n"
    "  (i32.const 0))\n"
    " (func (export \"fail\") (result i32)\n"
    "  (call $error_set (call $block (i32.const 16) (i32.const 9)))\n"
    "  (i32.const 1))\n"
    " (func (export \"fail_trap\")\n"
    "  (call $error_set (call $block (i32.const 16) (i32.const 9)))\n"
    "  unreachable)\n"
    " (func (export \"rc2\") (result i32) (call $out_byte (i32.const 65)) (i32.const 2))\n"
    " (func (export \"trap\") (result i32) unreachable)\n"
    " (func (export \"loop\") (result i32) (loop $l (br $l)) (i32.const 0))\n"
    " (func (export \"calls\")\n"
    "  (global.set $calls (i32.add (global.get $calls) (i32.const 1)))\n"
    "  (call $out_byte (i32.add (i32.const 48) (global.get $calls))))\n"
    " (func (export \"varcount\") (result i32) (local $h i64) (local $v i32)\n"
    "  (local.set $h (call $var_get (call $block (i32.const 32) (i32.const 1))))\n"
    "  (if (i64.ne (local.get $h) (i64.const 0))\n"
    "   (then (local.set $v (call $load_u8 (local.get $h)))))\n"
    "  (local.set $v (i32.add (local.get $v) (i32.const 1)))\n"
    "  (i32.store8 (i32.const 40) (local.get $v))\n"
    "  (call $var_set (call $block (i32.const 32) (i32.const 1))\n"
    "                 (call $block (i32.const 40) (i32.const 1)))\n"
    "  (call $out_byte (i32.add (i32.const 48) (local.get $v)))\n"
    "  (i32.const 0))\n"
    " (func (export \"greeting\") (result i32) (local $h i64)\n"
    "  (local.set $h (call $config_get (call $block (i32.const 48) (i32.const 8))))\n"
    "  (call $output_set (local.get $h) (call $length (local.get $h)))\n"
    "  (i32.const 0))\n"
    " (func (export \"with_param\") (param i32) (result i32) (i32.const 0)))\n";

/* An Otoroshi plugin: imports env.proxy_log, answers JSON, returns 5. */
static const char *oto_wat =
    "(module\n"
    " (import \"extism:host/env\" \"alloc\" (func $alloc (param i64) (result i64)))\n"
    " (import \"extism:host/env\" \"store_u8\" (func $store_u8 (param i64 i32)))\n"
    " (import \"extism:host/env\" \"output_set\" (func $output_set (param i64 i64)))\n"
    " (import \"extism:host/env\" \"error_set\" (func $error_set (param i64)))\n"
    " (import \"env\" \"proxy_log\" (func $proxy_log (param i32 i64 i64) (result i32)))\n"
    " (memory (export \"memory\") 1)\n"
    " (data (i32.const 0) \"{\\\"status\\\":202,\\\"body_json\\\":{\\\"ok\\\":true}}\")\n"
    " (data (i32.const 100) \"denied\")\n"
    " (func $block (param $p i32) (param $n i32) (result i64) (local $h i64) (local $i i32)\n"
    "  (local.set $h (call $alloc (i64.extend_i32_u (local.get $n))))\n"
    "  (block $d (loop $l\n"
    "   (br_if $d (i32.ge_u (local.get $i) (local.get $n)))\n"
    "   (call $store_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))\n"
    "                   (i32.load8_u (i32.add (local.get $p) (local.get $i))))\n"
    "   (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "   (br $l)))\n"
    "  (local.get $h))\n"
    " (func (export \"call_backend\") (result i32)\n"
    "  (drop (call $proxy_log (i32.const 1) (call $block (i32.const 100) (i32.const 6))\n"
    "        (i64.const 6)))\n"
    "  (call $output_set (call $block (i32.const 0) (i32.const 38)) (i64.const 38))\n"
    "  (i32.const 5))\n"
    " (func (export \"refuse\") (result i32)\n"
    "  (call $error_set (call $block (i32.const 100) (i32.const 6)))\n"
    "  (i32.const 1))\n"
    " (func (export \"trap\") (result i32) unreachable))\n";

typedef struct abi_env {
    const kiln_abi_ops *ops;
    kiln_linker *linker;
    kiln_module *m;
    kiln_instance_pre *pre;
} abi_env;

static abi_env xenv, oenv;

static int load_env(abi_env *e, const kiln_abi_ops *ops, const char *wat)
{
    e->ops = ops;
    size_t n;
    const kiln_hostfn *fns = ops->hostfns(&n);
    if (kiln_linker_new(&e->linker) != KILN_OK ||
        kiln_linker_define_host(e->linker, fns, n) != KILN_OK)
        return -1;
    e->m = test_load_wat(wat, e->linker);
    if (e->m == NULL)
        return -1;
    kiln_err err;
    if (kiln_instance_pre_new(e->m, e->linker, &e->pre, &err) != KILN_OK) {
        fprintf(stderr, "pre: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    if (load_env(&xenv, &kiln_abi_extism, extism_wat) != 0)
        return -1;
    if (load_env(&oenv, &kiln_abi_otoroshi, oto_wat) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    abi_env *all[] = {&xenv, &oenv};
    for (size_t i = 0; i < 2; i++) {
        if (all[i]->pre)
            kiln_instance_pre_free(all[i]->pre);
        if (all[i]->m)
            kiln_module_release(all[i]->m);
        if (all[i]->linker)
            kiln_linker_free(all[i]->linker);
    }
    return 0;
}

typedef struct call_result {
    int rc;
    kiln_err err;
    kiln_response resp;
} call_result;

/* prepare + handle + release for one request. */
static void run_once(abi_env *e, kiln_function *fn, const char *body, call_result *r)
{
    kiln_rt_reinstall_signals(); /* cmocka installs its own per test */
    memset(r, 0, sizeof(*r));
    kiln_response_init(&r->resp, 1 << 20);
    void *st = NULL;
    r->rc = e->ops->prepare(fn, e->m, &st, &r->err);
    if (r->rc != KILN_OK)
        return;
    kiln_request req = {0};
    req.method = "POST";
    req.url = "/x";
    req.path = "/x";
    req.query = "";
    req.body = (const uint8_t *)body;
    req.body_len = strlen(body);
    r->rc = e->ops->handle(fn, st, e->pre, &req, &r->resp, &r->err);
    e->ops->release(st);
}

static kiln_function make_fn(const char *export_name)
{
    kiln_function fn;
    memset(&fn, 0, sizeof(fn));
    fn.name = "testfn";
    fn.export_name = export_name;
    return fn;
}

/* Otoroshi cookies (oto_cookies.c): Set-Cookie headers shown as WSCookie
 * objects, tolerant of spacing, case and unknown attributes; returned lists
 * become Cookie / Set-Cookie headers; anything that would inject is refused
 * with nothing changed. */
static void test_oto_cookies(void **state)
{
    (void)state;
    const kiln_kv h[] = {
        {"Content-Type", "text/plain"},
        {"Set-Cookie", " sid = abc ;Path=/app; max-age=60 ; SECURE;HttpOnly; SameSite=Lax"},
        {"set-cookie", "lang=fr; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Domain=example.com"},
        {"Set-Cookie", "novalue"},
        {"Set-Cookie", "=nameless"},
        {"Set-Cookie", "empty="},
        {"Set-Cookie", "m=1; Max-Age=soon"},
    };
    jw *w = jw_new();
    assert_non_null(w);
    oto_write_response_cookies(w, h, sizeof(h) / sizeof(h[0]));
    size_t len;
    char *text = jw_finish(w, &len);
    assert_non_null(text);
    assert_string_equal(
        text,
        "[{\"name\":\"sid\",\"value\":\"abc\",\"domain\":null,\"path\":\"/app\",\"maxAge\":60,"
        "\"secure\":true,\"httpOnly\":true},"
        "{\"name\":\"lang\",\"value\":\"fr\",\"domain\":\"example.com\",\"path\":null,"
        "\"maxAge\":null,\"secure\":false,\"httpOnly\":false},"
        "{\"name\":\"empty\",\"value\":\"\",\"domain\":null,\"path\":null,\"maxAge\":null,"
        "\"secure\":false,\"httpOnly\":false},"
        "{\"name\":\"m\",\"value\":\"1\",\"domain\":null,\"path\":null,\"maxAge\":null,"
        "\"secure\":false,\"httpOnly\":false}]");
    free(text);

    /* to a response: every Set-Cookie replaced, other headers kept */
    kiln_response resp;
    kiln_response_init(&resp, 1 << 20);
    kiln_response_add_header(&resp, "Set-Cookie", "old=1");
    kiln_response_add_header(&resp, "X-Keep", "yes");
    kiln_response_add_header(&resp, "set-cookie", "old=2");
    json_t *doc = json_loads("{\"cookies\": [{\"name\": \"a\", \"value\": \"1\", \"maxAge\": 0,"
                             " \"secure\": true}, {\"name\": \"b\", \"value\": \"x y\","
                             " \"path\": null, \"domain\": \"d.example\"}]}",
                             0, NULL);
    kiln_err err;
    assert_int_equal(oto_cookies_to_response(doc, &resp, &err), KILN_OK);
    json_decref(doc);
    assert_int_equal(resp.n_headers, 3);
    assert_string_equal(resp.headers[0].name, "X-Keep");
    assert_string_equal(resp.headers[1].value, "a=1; Max-Age=0; Secure");
    assert_string_equal(resp.headers[2].value, "b=x y; Domain=d.example");
    /* refused, response untouched */
    static const char *const bad[] = {
        "{\"cookies\": {\"name\": \"a\"}}",
        "{\"cookies\": [1]}",
        "{\"cookies\": [{\"value\": \"v\"}]}",
        "{\"cookies\": [{\"name\": \"\", \"value\": \"v\"}]}",
        "{\"cookies\": [{\"name\": \"a b\", \"value\": \"v\"}]}",
        "{\"cookies\": [{\"name\": \"a\", \"value\": \"v\\r\\nX-Evil: 1\"}]}",
        "{\"cookies\": [{\"name\": \"a\", \"value\": \"v\\u0000w\"}]}",
        "{\"cookies\": [{\"name\": \"a\", \"value\": \"v\", \"path\": \"/; Domain=evil\"}]}",
        "{\"cookies\": [{\"name\": \"a\", \"value\": \"v\", \"maxAge\": \"60\"}]}",
        "{\"cookies\": [{\"name\": \"ok\", \"value\": \"1\"}, {\"name\": \"a=b\", \"value\": \"v\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        doc = json_loads(bad[i], JSON_ALLOW_NUL, NULL);
        assert_non_null(doc);
        memset(&err, 0, sizeof(err));
        if (oto_cookies_to_response(doc, &resp, &err) != KILN_EBADOUTPUT)
            fail_msg("not refused: %s", bad[i]);
        assert_non_null(strstr(err.msg, "cookies"));
        json_decref(doc);
        assert_int_equal(resp.n_headers, 3);
    }
    /* no list: nothing changes */
    doc = json_loads("{\"cookies\": null}", 0, NULL);
    assert_int_equal(oto_cookies_to_response(doc, &resp, &err), KILN_OK);
    json_decref(doc);
    assert_int_equal(resp.n_headers, 3);
    kiln_response_fini(&resp);

    /* to a request: the Cookie header */
    static const kiln_stage_info info = {.route = "/r", .backend = "b"};
    kiln_kv rh[] = {{"Cookie", "old=1"}, {"Accept", "*/*"}};
    kiln_request q = {.method = "GET", .url = "/", .path = "/", .query = "", .headers = rh,
                      .n_headers = 2};
    kiln_stage *st;
    assert_int_equal(kiln_stage_new(&q, &info, 1 << 20, &st), KILN_OK);
    doc = json_loads("{\"cookies\": [{\"name\": \"a\", \"value\": \"1\", \"path\": \"/ignored\"},"
                     " {\"name\": \"b\", \"value\": \"2\"}]}",
                     0, NULL);
    assert_int_equal(oto_cookies_to_request(doc, st, &err), KILN_OK);
    json_decref(doc);
    const kiln_request *r = kiln_stage_request(st);
    const char *cookie = NULL;
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, "cookie") == 0)
            cookie = r->headers[i].value;
    assert_non_null(cookie);
    assert_string_equal(cookie, "a=1; b=2");
    doc = json_loads("{\"cookies\": []}", 0, NULL);
    assert_int_equal(oto_cookies_to_request(doc, st, &err), KILN_OK);
    json_decref(doc);
    r = kiln_stage_request(st);
    for (size_t i = 0; i < r->n_headers; i++)
        assert_int_not_equal(strcasecmp(r->headers[i].name, "cookie"), 0);
    kiln_stage_free(st);
}

static void test_detect(void **state)
{
    (void)state;
    assert_int_equal(kiln_abi_extism.detect(xenv.m) > 0, 1);
    assert_int_equal(kiln_abi_otoroshi.detect(xenv.m), 0);
    assert_true(kiln_abi_otoroshi.detect(oenv.m) > kiln_abi_extism.detect(oenv.m));
    assert_string_equal(kiln_abi_extism.name, "extism");
    assert_string_equal(kiln_abi_otoroshi.name, "otoroshi");
    size_t n;
    const kiln_hostfn *fns = kiln_abi_extism.hostfns(&n);
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(fns[i].module, "extism:host/env") == 0)
            found++;
    assert_int_equal(found, 32); /* every 1.x import of the spec */
}

static void test_extism_output(void **state)
{
    (void)state;
    kiln_function fn = make_fn("echo");
    call_result r;
    run_once(&xenv, &fn, "ping", &r);
    assert_int_equal(r.rc, KILN_OK);
    assert_int_equal(r.resp.status, 200);
    assert_string_equal(header(&r.resp, "Content-Type"), "application/octet-stream");
    assert_body(&r.resp, "ping");
    kiln_response_fini(&r.resp);

    /* request_json: the input is the request described as JSON. */
    fn.request_json = true;
    run_once(&xenv, &fn, "payload", &r);
    assert_int_equal(r.rc, KILN_OK);
    json_t *o = json_loadb((const char *)r.resp.body, r.resp.body_len, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(o, "path")), "/x");
    assert_string_equal(json_string_value(json_object_get(o, "body")), "payload");
    assert_true(json_is_object(json_object_get(o, "headers")));
    json_decref(o);
    kiln_response_fini(&r.resp);

    kiln_kv cfg[] = {{"greeting", "howdy"}};
    fn = make_fn("greeting");
    fn.config = cfg;
    fn.n_config = 1;
    run_once(&xenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_OK);
    assert_body(&r.resp, "howdy");
    kiln_response_fini(&r.resp);
}

static void test_extism_errors(void **state)
{
    (void)state;
    kiln_function fn = make_fn("fail");
    call_result r;
    run_once(&xenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_EGUEST);
    assert_string_equal(r.err.msg, "testfn: fail returned 1: bad thing");
    kiln_response_fini(&r.resp);

    /* The Extism error wins over a trap. */
    fn = make_fn("fail_trap");
    run_once(&xenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_EGUEST);
    assert_string_equal(r.err.msg, "testfn: fail_trap failed: bad thing");
    kiln_response_fini(&r.resp);

    fn = make_fn("rc2");
    run_once(&xenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_EGUEST);
    assert_string_equal(r.err.msg, "testfn: rc2 returned 2: Returned non-zero exit code: 2");
    kiln_response_fini(&r.resp);

    fn = make_fn("trap");
    run_once(&xenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_ETRAP);
    assert_int_equal(r.err.trap, KILN_TRAP_UNREACHABLE);
    kiln_response_fini(&r.resp);

    fn = make_fn("loop");
    fn.limits.timeout_ms = 100;
    run_once(&xenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_ETIMEOUT);
    assert_int_equal(r.err.trap, KILN_TRAP_TIMEOUT);
    assert_non_null(strstr(r.err.msg, "timeout"));
    kiln_response_fini(&r.resp);

    fn = make_fn("missing");
    run_once(&xenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_ENOEXPORT);
    assert_non_null(strstr(r.err.msg, "Function not found: missing"));
    assert_non_null(strstr(r.err.msg, "echo"));
    kiln_response_fini(&r.resp);

    fn = make_fn("with_param");
    run_once(&xenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_ETYPE);
    kiln_response_fini(&r.resp);

    /* No export configured and several candidates. */
    fn = make_fn(NULL);
    run_once(&xenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_ECONFIG);
    kiln_response_fini(&r.resp);

    /* Output over the response cap. */
    fn = make_fn("echo");
    kiln_rt_reinstall_signals();
    void *st;
    kiln_err err;
    assert_int_equal(kiln_abi_extism.prepare(&fn, xenv.m, &st, &err), KILN_OK);
    kiln_response small;
    kiln_response_init(&small, 3);
    kiln_request req = {0};
    req.body = (const uint8_t *)"too long";
    req.body_len = 8;
    assert_int_equal(kiln_abi_extism.handle(&fn, st, xenv.pre, &req, &small, &err), KILN_ELIMIT);
    kiln_response_fini(&small);
    kiln_abi_extism.release(st);
}

static int last_byte(void *arg, const uint8_t *out, size_t len, int32_t rc32, kiln_err *err)
{
    (void)rc32, (void)err;
    *(char *)arg = len > 0 ? (char)out[len - 1] : 0;
    return KILN_OK;
}

/* Call `export` n times through one prepared state; returns the last body byte. */
static char call_n(kiln_function *fn, int n)
{
    kiln_rt_reinstall_signals();
    void *st;
    kiln_err err;
    assert_int_equal(kiln_abi_extism.prepare(fn, xenv.m, &st, &err), KILN_OK);
    char last = 0;
    for (int i = 0; i < n; i++) {
        kiln_response r;
        kiln_response_init(&r, 1024);
        kiln_request req = {0};
        int rc = kiln_abi_extism.handle(fn, st, xenv.pre, &req, &r, &err);
        if (rc != KILN_OK)
            fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, KILN_OK);
        assert_int_equal(r.body_len, 1);
        last = (char)r.body[0];
        kiln_response_fini(&r);
    }
    kiln_abi_extism.release(st);
    return last;
}

static void test_reuse_and_vars(void **state)
{
    (void)state;
    /* Globals live in the instance: kept only when instances are re-used. */
    kiln_function fn = make_fn("calls");
    assert_int_equal(call_n(&fn, 3), '1');
    fn.reuse = true;
    assert_int_equal(call_n(&fn, 3), '3');
    /* Vars live in the function: kept across fresh instances too. */
    fn = make_fn("varcount");
    assert_int_equal(call_n(&fn, 3), '3');
    fn.reuse = true;
    assert_int_equal(call_n(&fn, 4), '4'); /* a new prepare starts a new store */
    /* A trap discards the re-used instance; the next call gets a fresh one. */
    kiln_rt_reinstall_signals();
    xtm_options o;
    memset(&o, 0, sizeof(o));
    o.name = "direct";
    o.reuse = true;
    o.max_var_bytes = XTM_DEFAULT_MAX_VAR_BYTES;
    xtm_fn *f;
    kiln_err err;
    assert_int_equal(xtm_fn_new(&o, &f, &err), KILN_OK);
    char last = 0;
    for (int i = 0; i < 2; i++)
        assert_int_equal(xtm_run(f, xenv.pre, "calls", NULL, 0, last_byte, &last, &err), KILN_OK);
    assert_int_equal(last, '2');
    assert_int_equal(xtm_run(f, xenv.pre, "trap", NULL, 0, last_byte, &last, &err), KILN_ETRAP);
    assert_int_equal(xtm_run(f, xenv.pre, "calls", NULL, 0, last_byte, &last, &err), KILN_OK);
    assert_int_equal(last, '1');
    /* A guest error (no trap) keeps the instance, as Extism does. */
    assert_int_equal(xtm_run(f, xenv.pre, "fail", NULL, 0, last_byte, &last, &err), KILN_EGUEST);
    assert_int_equal(xtm_run(f, xenv.pre, "calls", NULL, 0, last_byte, &last, &err), KILN_OK);
    assert_int_equal(last, '2');
    xtm_fn_free(f);
    /* A timeout poisons it: the next call starts over, and still works. */
    o.limits.timeout_ms = 50;
    assert_int_equal(xtm_fn_new(&o, &f, &err), KILN_OK);
    assert_int_equal(xtm_run(f, xenv.pre, "calls", NULL, 0, last_byte, &last, &err), KILN_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(xtm_run(f, xenv.pre, "loop", NULL, 0, last_byte, &last, &err),
                         KILN_ETIMEOUT);
        assert_int_equal(xtm_run(f, xenv.pre, "calls", NULL, 0, last_byte, &last, &err),
                         KILN_OK);
        assert_int_equal(last, '1');
    }
    xtm_fn_free(f);
}

typedef struct thread_arg {
    void *st;
    int failures;
} thread_arg;

static void *echo_thread(void *p)
{
    thread_arg *a = p;
    kiln_function fn = make_fn("echo");
    fn.reuse = true;
    for (int i = 0; i < 40; i++) {
        char body[32];
        int n = snprintf(body, sizeof(body), "req-%d-%p", i, (void *)a);
        kiln_response r;
        kiln_response_init(&r, 1024);
        kiln_request req = {0};
        req.body = (const uint8_t *)body;
        req.body_len = (size_t)n;
        kiln_err err;
        if (kiln_abi_extism.handle(&fn, a->st, xenv.pre, &req, &r, &err) != KILN_OK ||
            r.body_len != (size_t)n || memcmp(r.body, body, (size_t)n) != 0)
            a->failures++;
        kiln_response_fini(&r);
    }
    kiln_rt_thread_cleanup();
    return NULL;
}

static void test_concurrent_reuse(void **state)
{
    (void)state;
    kiln_rt_reinstall_signals();
    kiln_function fn = make_fn("echo");
    fn.reuse = true;
    void *st;
    kiln_err err;
    assert_int_equal(kiln_abi_extism.prepare(&fn, xenv.m, &st, &err), KILN_OK);
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){st, 0};
        assert_int_equal(pthread_create(&th[i], NULL, echo_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    kiln_abi_extism.release(st);
}

static void test_otoroshi_handler(void **state)
{
    (void)state;
    kiln_function fn = make_fn(NULL); /* default export: call_backend */
    call_result r;
    run_once(&oenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_OK); /* return code 5 without an error: success */
    assert_int_equal(r.resp.status, 202);
    assert_string_equal(header(&r.resp, "Content-Type"), "application/json");
    assert_body(&r.resp, "{\"ok\":true}");
    kiln_response_fini(&r.resp);

    fn = make_fn("refuse");
    run_once(&oenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_OK);
    assert_int_equal(r.resp.status, 400);
    json_t *o = json_loadb((const char *)r.resp.body, r.resp.body_len, 0, NULL);
    assert_non_null(strstr(json_string_value(json_object_get(o, "error")), "denied"));
    json_decref(o);
    kiln_response_fini(&r.resp);

    fn = make_fn("trap");
    run_once(&oenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_OK);
    assert_int_equal(r.resp.status, 400);
    kiln_response_fini(&r.resp);

    fn = make_fn("nope");
    run_once(&oenv, &fn, "", &r);
    assert_int_equal(r.rc, KILN_ENOEXPORT); /* a configuration error, found at prepare */
    kiln_response_fini(&r.resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mem_handles),
        cmocka_unit_test(test_mem_reuse_policy),
        cmocka_unit_test(test_mem_limit),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_manifest_full),
        cmocka_unit_test(test_manifest_errors),
        cmocka_unit_test(test_oto_output),
        cmocka_unit_test(test_oto_input),
        cmocka_unit_test(test_oto_input_exact),
        cmocka_unit_test(test_oto_cookies),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_extism_output),
        cmocka_unit_test(test_extism_errors),
        cmocka_unit_test(test_reuse_and_vars),
        cmocka_unit_test(test_concurrent_reuse),
        cmocka_unit_test(test_otoroshi_handler),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
