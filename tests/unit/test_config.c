/*
 * test_config.c - `kiln serve` configuration parsing (src/config/config.c):
 * a full YAML file and its JSON twin, defaults, the directory mode, and the
 * error messages (FILE:LINE plus the key) for bad syntax, unknown keys,
 * missing modules, wrong types and undefined functions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

static char dir[256];

static void touch(const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("\0asm", f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/kiln-test-config-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    touch("hello.wasm");
    touch("api.wasm");
    char p[512];
    snprintf(p, sizeof(p), "%s/data", dir);
    mkdir(p, 0755);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int parse(const char *name, const char *text, cfg_config **c, kiln_err *err)
{
    memset(err, 0, sizeof(*err));
    return cfg_parse(text, strlen(text), name, dir, c, err);
}

/* Parse text expected to fail; check the message contains each needle. */
static void expect_error(const char *name, const char *text, const char *n1, const char *n2)
{
    cfg_config *c = NULL;
    kiln_err err;
    int rc = parse(name, text, &c, &err);
    if (rc != KILN_ECONFIG)
        fail_msg("expected KILN_ECONFIG for %s, got %d (%s)", name, rc, err.msg);
    assert_null(c);
    if (n1 && strstr(err.msg, n1) == NULL)
        fail_msg("message [%s] lacks [%s]", err.msg, n1);
    if (n2 && strstr(err.msg, n2) == NULL)
        fail_msg("message [%s] lacks [%s]", err.msg, n2);
}

static const char full_yaml[] =
    "# a full configuration\n"
    "server:\n"
    "  listen: 0.0.0.0:9000\n"
    "  threads: 3\n"
    "  max_header_bytes: 8KiB\n"
    "  max_body_bytes: 2MiB\n"
    "  connection_timeout: 15s\n"
    "  drain_timeout: 1m\n"
    "  max_connections: 500\n"
    "  max_connections_per_ip: 32\n"
    "  header_timeout: 4s\n"
    "  min_body_rate: 2KiB\n"
    "  max_buffered_body_bytes: 64MiB\n"
    "  quiet: yes\n"
    "functions:\n"
    "  hello:\n"
    "    module: hello.wasm\n"
    "    abi: wasi\n"
    "    env: {GREETING: hi, EMPTY: \"\"}\n"
    "    dirs:\n"
    "      - data::/data\n"
    "      - {host: data, guest: /ro, read_only: true}\n"
    "    max_memory: 16MiB\n"
    "    timeout: 250ms\n"
    "    max_stack: 256KiB\n"
    "    max_table_elems: 5000\n"
    "    max_body_bytes: 1k\n"
    "    max_output_bytes: 1MiB\n"
    "    routes: [/hello, {path: /hi/:name, methods: [GET, post]}]\n"
    "  api:\n"
    "    module: api.wasm\n"
    "    export: handle\n"
    "    config: {key: value, n: 3}\n"
    "    allowed_hosts: ['*.example.com']\n"
    "    reuse: true\n"
    "    snapshot: true\n"
    "    request_json: true\n"
    "    max_var_bytes: 0\n"
    "    max_http_response_bytes: 1MiB\n"
    "    allow_http_response_headers: true\n"
    "routes:\n"
    "  - path: /api/*\n"
    "    function: api\n"
    "    host: api.example.com\n"
    "    method: GET\n";

static const char full_json[] =
    "{\n"
    "  \"server\": {\"listen\": \"0.0.0.0:9000\", \"threads\": 3, \"max_header_bytes\": \"8KiB\",\n"
    "             \"max_body_bytes\": 2097152, \"connection_timeout\": \"15s\",\n"
    "             \"drain_timeout\": \"1m\", \"max_connections\": 500, \"quiet\": true,\n"
    "             \"max_connections_per_ip\": 32, \"header_timeout\": \"4s\",\n"
    "             \"min_body_rate\": \"2KiB\", \"max_buffered_body_bytes\": \"64MiB\"},\n"
    "  \"functions\": {\n"
    "    \"hello\": {\"module\": \"hello.wasm\", \"abi\": \"wasi\",\n"
    "              \"env\": {\"GREETING\": \"hi\", \"EMPTY\": \"\"},\n"
    "              \"dirs\": [\"data::/data\", {\"host\": \"data\", \"guest\": \"/ro\", "
    "\"read_only\": true}],\n"
    "              \"max_memory\": \"16MiB\", \"timeout\": \"250ms\", \"max_body_bytes\": \"1k\",\n"
    "              \"max_stack\": \"256KiB\", \"max_table_elems\": 5000,\n"
    "              \"max_output_bytes\": \"1MiB\",\n"
    "              \"routes\": [\"/hello\", {\"path\": \"/hi/:name\", \"methods\": [\"GET\", "
    "\"post\"]}]},\n"
    "    \"api\": {\"module\": \"api.wasm\", \"export\": \"handle\",\n"
    "            \"config\": {\"key\": \"value\", \"n\": \"3\"},\n"
    "            \"allowed_hosts\": [\"*.example.com\"], \"reuse\": true, \"snapshot\": true, \"request_json\": true,\n"
    "            \"max_var_bytes\": 0, \"max_http_response_bytes\": \"1MiB\",\n"
    "            \"allow_http_response_headers\": true}\n"
    "  },\n"
    "  \"routes\": [{\"path\": \"/api/*\", \"function\": \"api\", \"host\": \"api.example.com\",\n"
    "              \"method\": \"GET\"}]\n"
    "}\n";

static void check_full(const cfg_config *c)
{
    assert_string_equal(c->server.listen, "0.0.0.0:9000");
    assert_int_equal(c->server.threads, 3);
    assert_int_equal(c->server.max_header_bytes, 8192);
    assert_int_equal(c->server.max_body_bytes, 2 << 20);
    assert_int_equal(c->server.connection_timeout_s, 15);
    assert_int_equal(c->server.drain_timeout_s, 60);
    assert_int_equal(c->server.max_connections, 500);
    assert_int_equal(c->server.max_connections_per_ip, 32);
    assert_int_equal(c->server.header_timeout_ms, 4000);
    assert_int_equal(c->server.min_body_rate, 2048);
    assert_int_equal(c->server.max_buffered_body_bytes, (size_t)64 << 20);
    assert_true(c->server.quiet);
    assert_int_equal(c->n_functions, 2);
    const cfg_function *h = &c->functions[0], *a = &c->functions[1];
    assert_string_equal(h->fn.name, "hello");
    char want[600];
    snprintf(want, sizeof(want), "%s/hello.wasm", dir);
    assert_string_equal(h->fn.module_path, want);
    assert_string_equal(h->fn.abi, "wasi");
    assert_int_equal(h->fn.n_env, 2);
    assert_string_equal(h->fn.env[0].name, "GREETING");
    assert_string_equal(h->fn.env[0].value, "hi");
    assert_string_equal(h->fn.env[1].value, "");
    assert_int_equal(h->fn.n_dirs, 2);
    assert_string_equal(h->fn.dirs[0].guest, "/data");
    assert_false(h->fn.dirs[0].read_only);
    assert_string_equal(h->fn.dirs[1].guest, "/ro");
    assert_true(h->fn.dirs[1].read_only);
    snprintf(want, sizeof(want), "%s/data", dir);
    assert_string_equal(h->fn.dirs[1].host, want);
    assert_int_equal(h->fn.limits.max_memory_bytes, 16 << 20);
    assert_int_equal(h->fn.limits.timeout_ms, 250);
    assert_int_equal(h->fn.limits.max_stack_bytes, 256 << 10);
    assert_int_equal(h->fn.limits.max_table_elems, 5000);
    assert_int_equal(h->max_body_bytes, 1000);
    assert_int_equal(h->fn.max_output_bytes, 1 << 20);
    assert_false(h->fn.reuse);
    assert_false(h->fn.snapshot);
    assert_false(h->auto_routes);
    assert_string_equal(a->fn.name, "api");
    assert_null(a->fn.abi);
    assert_string_equal(a->fn.export_name, "handle");
    assert_int_equal(a->fn.n_config, 2);
    assert_string_equal(a->fn.config[1].name, "n");
    assert_string_equal(a->fn.config[1].value, "3");
    assert_int_equal(a->fn.n_allowed_hosts, 1);
    assert_string_equal(a->fn.allowed_hosts[0], "*.example.com");
    assert_true(a->fn.reuse);
    assert_true(a->fn.snapshot);
    assert_true(a->fn.request_json);
    assert_int_equal(a->fn.max_var_bytes, 0);
    assert_int_equal(a->fn.max_http_response_bytes, 1 << 20);
    assert_true(a->fn.http_response_headers);
    assert_false(h->fn.http_response_headers); /* default: off, as in Extism */
    /* Defaults. */
    assert_int_equal(a->fn.limits.max_memory_bytes, 64 << 20);
    assert_int_equal(a->fn.limits.timeout_ms, 5000);
    assert_int_equal(a->fn.limits.max_stack_bytes, 0); /* the runtime's 1 MiB */
    assert_int_equal(a->fn.limits.max_table_elems, 0);  /* the runtime's 1,000,000 */
    assert_int_equal(a->max_body_bytes, 0);
    /* Routes: the functions' own first, then the list. */
    assert_int_equal(c->n_routes, 3);
    assert_string_equal(c->routes[0].path, "/hello");
    assert_int_equal(c->routes[0].function, 0);
    assert_int_equal(c->routes[0].n_methods, 0);
    assert_string_equal(c->routes[1].path, "/hi/:name");
    assert_int_equal(c->routes[1].n_methods, 2);
    assert_string_equal(c->routes[1].methods[1], "post");
    assert_string_equal(c->routes[2].path, "/api/*");
    assert_int_equal(c->routes[2].function, 1);
    assert_string_equal(c->routes[2].host, "api.example.com");
    assert_int_equal(c->routes[2].n_methods, 1);
    assert_string_equal(c->routes[2].methods[0], "GET");
    assert_int_equal(c->n_warnings, 0);
}

static void test_full_yaml(void **state)
{
    (void)state;
    cfg_config *c;
    kiln_err err;
    int rc = parse("kiln.yaml", full_yaml, &c, &err);
    if (rc != KILN_OK)
        fail_msg("%s", err.msg);
    check_full(c);
    assert_int_equal(c->routes[2].line, 42);
    assert_int_equal(c->functions[1].line, 30);
    cfg_free(c);
}

static void test_full_json(void **state)
{
    (void)state;
    cfg_config *c;
    kiln_err err;
    int rc = parse("kiln.json", full_json, &c, &err);
    if (rc != KILN_OK)
        fail_msg("%s", err.msg);
    check_full(c);
    assert_int_equal(c->functions[1].line, 15); /* line numbers survive JSON too */
    cfg_free(c);
}

static void test_minimal_and_defaults(void **state)
{
    (void)state;
    cfg_config *c;
    kiln_err err;
    int rc = parse("k.yaml", "functions:\n  hello: {module: hello.wasm}\n  other: {module: "
                   "api.wasm}\nroutes:\n  - {path: /, function: hello}\n", &c, &err);
    if (rc != KILN_OK)
        fail_msg("%s", err.msg);
    assert_string_equal(c->server.listen, CFG_DEFAULT_LISTEN);
    assert_int_equal(c->server.threads, 0);
    assert_int_equal(c->server.max_body_bytes, CFG_DEFAULT_MAX_BODY_BYTES);
    assert_int_equal(c->server.connection_timeout_s, CFG_DEFAULT_CONNECTION_TIMEOUT_S);
    assert_int_equal(c->server.max_connections_per_ip, CFG_DEFAULT_MAX_CONNECTIONS_PER_IP);
    assert_int_equal(c->server.header_timeout_ms, CFG_DEFAULT_HEADER_TIMEOUT_MS);
    assert_int_equal(c->server.min_body_rate, CFG_DEFAULT_MIN_BODY_RATE);
    assert_int_equal(c->server.max_buffered_body_bytes, CFG_DEFAULT_MAX_BUFFERED_BODY_BYTES);
    assert_false(c->server.quiet);
    assert_int_equal(c->n_warnings, 1); /* 'other' has no route */
    assert_non_null(strstr(c->warnings[0], "k.yaml:3: function 'other' has no route"));
    cfg_free(c);
    /* Anchors and aliases work. */
    rc = parse("k.yaml", "x: &lim {module: hello.wasm, timeout: 1s}\n", &c, &err);
    assert_int_equal(rc, KILN_ECONFIG); /* unknown top-level key x */
    rc = parse("k.yaml", "functions:\n  a: &f {module: hello.wasm, timeout: 1s}\n  b: *f\n"
               "routes: [{path: /a, function: a}, {path: /b, function: b}]\n", &c, &err);
    if (rc != KILN_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(c->functions[1].fn.limits.timeout_ms, 1000);
    cfg_free(c);
}

static void test_upstream_route(void **state)
{
    (void)state;
    cfg_config *c;
    kiln_err err;
    const char *text = "functions: {}\nroutes:\n"
                       "  - {path: /api/..., upstream: 'http://127.0.0.1:9/base', timeout: 2s}\n"
                       "  - {path: /b, upstream: 'https://example.com'}\n";
    int rc = cfg_parse(text, strlen(text), "u.yaml", NULL, &c, &err);
    if (rc != KILN_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(c->n_routes, 2);
    assert_string_equal(c->routes[0].upstream, "http://127.0.0.1:9/base");
    assert_int_equal(c->routes[0].upstream_timeout_ms, 2000);
    assert_true(c->routes[0].function == CFG_NO_FUNCTION);
    assert_int_equal(c->routes[1].upstream_timeout_ms, CFG_DEFAULT_UPSTREAM_TIMEOUT_MS);
    cfg_free(c);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("bad.yaml", "functions:\n  hello: {module: hello.wasm\nroutes: []\n",
                 "bad.yaml:3:", "YAML syntax error");
    expect_error("bad.yaml", "server:\n  listen: x\n  bogus: 1\n", "bad.yaml:3: unknown key 'bogus' in 'server'",
                 "expected one of: listen, threads");
    expect_error("k.yaml",
                 "functions:\n  hello:\n    module: hello.wasm\n    memroy: 1MiB\n",
                 "k.yaml:4: unknown key 'memroy' in function 'hello'", "max_memory");
    expect_error("k.yaml", "functions:\n  hello:\n    module: nope.wasm\n",
                 "k.yaml:3: function 'hello': module 'nope.wasm' not found", "looked at");
    expect_error("k.yaml", "functions:\n  hello:\n    abi: wasi\n",
                 "k.yaml:3: function 'hello': missing key 'module'", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm}\nroutes:\n  - path: /x\n"
                 "    function: hullo\n",
                 "k.yaml:5: route '/x': function 'hullo' is not defined", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm, timeout: 5}\n",
                 "k.yaml:2:", "needs a unit");
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm, max_memory: lots}\n",
                 "k.yaml:2: function 'hello': 'max_memory' must be a size", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm, max_stack: 1KiB}\n",
                 "k.yaml:2: function 'hello': 'max_stack'", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm, max_table_elems: 0}\n",
                 "k.yaml:2: function 'hello': 'max_table_elems'", NULL);
    /* Upstream routes. */
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm}\nroutes:\n"
                 "  - {path: /a, function: hello, upstream: 'http://x'}\n",
                 "give 'function' or 'upstream', not both", NULL);
    expect_error("k.yaml", "functions: {}\nroutes:\n  - {path: /a, upstream: 'ftp://x'}\n",
                 "upstream 'ftp://x' must be an http:// or https:// URL", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm}\nroutes:\n"
                 "  - {path: /a, function: hello, timeout: 1s}\n",
                 "'timeout' belongs to an upstream route", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm, abi: cobol}\n",
                 "abi 'cobol' is unknown", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm, reuse: maybe}\n",
                 "'reuse' must be true or false", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm, snapshot: 1}\n",
                 "'snapshot' must be true or false", NULL);
    expect_error("k.yaml",
                 "functions:\n  hello: {module: hello.wasm, allow_http_response_headers: 1}\n",
                 "k.yaml:2:", "'allow_http_response_headers' must be true or false");
    expect_error("k.yaml",
                 "functions:\n  hello:\n    module: hello.wasm\n    abi: wasi\n"
                 "    allow_http_response_headers: true\n",
                 "k.yaml:5:", "abi 'wasi' has no such switch");
    expect_error("k.yaml",
                 "functions:\n  hello:\n    module: hello.wasm\n    abi: proxy-wasm\n"
                 "    allow_http_response_headers: true\n",
                 "'allow_http_response_headers' is an Extism/Otoroshi setting", NULL);
    expect_error("k.yaml", "server: {threads: 0}\nfunctions: {}\n", "k.yaml:1: server.threads",
                 "from 1 to 1024");
    /* Hostile-client limits. */
    expect_error("k.yaml", "server: {max_connections_per_ip: -1}\nfunctions: {}\n",
                 "k.yaml:1: server.max_connections_per_ip", "from 0 to 1000000");
    expect_error("k.yaml", "server: {header_timeout: 10}\nfunctions: {}\n",
                 "k.yaml:1: server.header_timeout '10' needs a unit", NULL);
    expect_error("k.yaml", "server: {header_timeout: 50ms}\nfunctions: {}\n",
                 "k.yaml:1: server.header_timeout must be 0 (no deadline) or at least 100ms", NULL);
    expect_error("k.yaml", "server: {header_timeout: 2h}\nfunctions: {}\n",
                 "server.header_timeout must be a duration", "at most 3600000 ms");
    expect_error("k.yaml", "server: {min_body_rate: fast}\nfunctions: {}\n",
                 "k.yaml:1: server.min_body_rate must be a size", NULL);
    expect_error("k.yaml", "server: {max_buffered_body_bytes: 1k}\nfunctions: {}\n",
                 "k.yaml:1: server.max_buffered_body_bytes must be a size", "from 65536");
    expect_error("k.yaml", "server:\n  max_body_bytes: 1MiB\n  max_buffered_body_bytes: 512KiB\n"
                 "functions: {}\n",
                 "k.yaml:3: server.max_buffered_body_bytes (524288 bytes) is smaller than "
                 "server.max_body_bytes (1048576 bytes)", "raise the first or lower the second");
    expect_error("k.yaml", "server: {max_body_bytes: 1MiB, max_buffered_body_bytes: 2MiB}\n"
                 "functions:\n  hello: {module: hello.wasm, max_body_bytes: 3MiB}\n",
                 "k.yaml:3: function 'hello': max_body_bytes (3145728 bytes) is larger than "
                 "server.max_buffered_body_bytes (2097152 bytes)", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm, module: api.wasm}\n",
                 "key 'module' appears twice", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm, dirs: [nodir]}\n",
                 "directory 'nodir' not found", NULL);
    expect_error("k.yaml", "functions:\n  'bad name': {module: hello.wasm}\n",
                 "function name 'bad name'", NULL);
    expect_error("k.yaml", "functions:\n  hello: {module: hello.wasm}\nroutes:\n  - /x\n",
                 "k.yaml:4: a route in 'routes' is a mapping", NULL);
    expect_error("k.yaml", "", "k.yaml: the configuration is empty", NULL);
    expect_error("k.yaml", "- a\n- b\n", "must be a mapping", NULL);
    expect_error("k.yaml", "a: 1\n---\nb: 2\n", "one YAML document", NULL);
    expect_error("k.yaml", "functions: {a: *nope}\n", "nope", NULL);
    /* JSON: syntax errors from jansson, schema errors with lines. */
    expect_error("k.json", "{\"functions\": {,}}", "k.json:1:", "JSON syntax error");
    expect_error("k.json", "{\"functions\": {\"a\": {\"module\": \"hello.wasm\"}},}\n",
                 "JSON syntax error", NULL);
    expect_error("k.json", "{\n  \"functions\": {\n    \"a\": {\n      \"module\": \"hello.wasm\",\n"
                 "      \"tiemout\": \"1s\"\n    }\n  }\n}\n",
                 "k.json:5: unknown key 'tiemout' in function 'a'", NULL);
    expect_error("k.json", "{\"functions\": {\"a\": {\"module\": \"hello.wasm\"}, \"a\": {}}}",
                 "JSON syntax error", "duplicate");
}

static void test_sizes(void **state)
{
    (void)state;
    uint64_t v;
    assert_true(cfg_parse_size("65536", &v));
    assert_int_equal(v, 65536);
    assert_true(cfg_parse_size("64MiB", &v));
    assert_int_equal(v, 64 << 20);
    assert_true(cfg_parse_size("1k", &v));
    assert_int_equal(v, 1000);
    assert_true(cfg_parse_size("2 GiB", &v));
    assert_false(cfg_parse_size("-1", &v));
    assert_false(cfg_parse_size("1 parsec", &v));
    assert_false(cfg_parse_size("99999999999999999999999", &v));
    assert_true(cfg_parse_duration_ms("250ms", &v));
    assert_int_equal(v, 250);
    assert_true(cfg_parse_duration_ms("5s", &v));
    assert_int_equal(v, 5000);
    assert_true(cfg_parse_duration_ms("2m", &v));
    assert_int_equal(v, 120000);
    assert_false(cfg_parse_duration_ms("5", &v));
    assert_false(cfg_parse_duration_ms("s", &v));
}

static void test_dir_mode(void **state)
{
    (void)state;
    touch("a-b.wasm");
    touch("not wasm.txt");
    touch("bad name.wasm");
    cfg_config *c;
    kiln_err err;
    assert_int_equal(cfg_load_dir(dir, &c, &err), KILN_OK);
    assert_true(c->from_dir);
    assert_int_equal(c->n_functions, 3);
    assert_string_equal(c->functions[0].fn.name, "a-b");
    assert_string_equal(c->functions[1].fn.name, "api");
    assert_string_equal(c->functions[2].fn.name, "hello");
    assert_true(c->functions[2].auto_routes);
    assert_null(c->functions[2].fn.abi);
    assert_int_equal(c->functions[2].fn.limits.timeout_ms, CFG_DEFAULT_TIMEOUT_MS);
    assert_int_equal(c->n_routes, 0);
    assert_int_equal(c->n_warnings, 1);
    assert_non_null(strstr(c->warnings[0], "bad name.wasm: skipped"));
    cfg_free(c);
    assert_int_equal(cfg_load_dir("/nonexistent/kiln", &c, &err), KILN_ENOENT);
    assert_int_equal(cfg_load_file("/nonexistent/kiln.yaml", &c, &err), KILN_ENOENT);
}

static void test_load_file(void **state)
{
    (void)state;
    char p[600];
    snprintf(p, sizeof(p), "%s/kiln.yaml", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(full_yaml, f);
    fclose(f);
    cfg_config *c;
    kiln_err err;
    int rc = cfg_load_file(p, &c, &err);
    if (rc != KILN_OK)
        fail_msg("%s", err.msg);
    check_full(c);
    assert_string_equal(c->source, p);
    cfg_free(c);
}

/* Route plugins and sinks (issue 10): the mistakes a user can make name the
 * file, the line and the key. Only key substrings are checked: the wording
 * is the configuration's. */
#define PL_HEAD "functions:\n  hello: {module: hello.wasm}\n  g: {module: api.wasm}\nroutes:\n" \
                "  - path: /x\n    function: hello\n"
static void test_plugin_errors(void **state)
{
    (void)state;
    /* line 8: the plugin */
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - {function: g, kind: acces}\n",
                 "p.yaml:8:", "unknown plugin kind");
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - {function: g, kind: acces}\n", "'acces'",
                 NULL);
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - {function: nope, kind: access}\n",
                 "p.yaml:8:", "'nope'");
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - {function: nope, kind: access}\n",
                 "not defined", NULL);
    expect_error("p.yaml", PL_HEAD "    plugins: {function: g, kind: access}\n", "p.yaml:7:",
                 "list");
    expect_error("p.yaml", PL_HEAD "    plugins: g\n", "p.yaml:7:", "plugins");
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - {function: g}\n", "p.yaml:8:", "'kind'");
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - {function: g}\n", "'g'", NULL);
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - {kind: access}\n", "p.yaml:8:",
                 "'function'");
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - g\n", "p.yaml:8:", "mapping");
    /* a sink among a route's plugins, a sink with a kind */
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - {function: g, kind: sink}\n",
                 "p.yaml:8:", "sinks");
    expect_error("p.yaml", PL_HEAD "sinks:\n  - {function: g, kind: sink}\n", "p.yaml:8:",
                 "'kind'");
    expect_error("p.yaml", PL_HEAD "sinks:\n  - {function: nope}\n", "p.yaml:8:", "'nope'");
    expect_error("p.yaml", PL_HEAD "sinks: {function: g}\n", "p.yaml:7:", "sinks");
    expect_error("p.yaml", PL_HEAD "    plugins:\n      - {function: g, kind: access, bogus: 1}\n",
                 "p.yaml:8:", "'bogus'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_yaml), cmocka_unit_test(test_full_json),
        cmocka_unit_test(test_minimal_and_defaults), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sizes), cmocka_unit_test(test_dir_mode),
        cmocka_unit_test(test_load_file), cmocka_unit_test(test_upstream_route),
        cmocka_unit_test(test_plugin_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
