/*
 * cmd_call_component.c - `kiln call component.wasm EXPORT --input-json
 * '[ARG, ...]'`: call a lifted export of a component and print its result as
 * JSON (mapping in src/component/cm_json.h).
 *
 * The component is instantiated afresh for the call from its own
 * instructions (src/component/cm_inst.c): every core module compiled through
 * the AOT cache, imports wired between core instances, and the component's
 * imports satisfied by the host registry: WASI 0.2 (src/component/cm_wasi.c;
 * the guest's stdout goes to stderr, stdout carries the JSON result),
 * Kiln's host interfaces (src/component/cm_kiln.h: wasi:keyvalue over the
 * store core plugins get from `kiln call --kv`, private namespace
 * fn:<file name> and 'global' read-write; wasi:config over --config;
 * wasi:logging on stderr) and kiln:cli/log. The export is called through the Canonical ABI
 * (src/component/cm_canon.c) with the memory, realloc and post-return the
 * lift names. cli_run_component() runs wasi:cli/run for `kiln run`.
 *
 * Exit status: 0 success; 1 load/compile/instantiate errors or bad input;
 * 134 on a trap (a guest trap or a Canonical ABI trap); 2 usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aot/wasm_reader.h"
#include "base/alloc.h"
#include "cli/cli.h"
#include "component/cm.h"
#include "component/cm_canon.h"
#include "component/cm_inst.h"
#include "component/cm_int.h"
#include "component/cm_json.h"
#include "component/cm_kiln.h"
#include "component/cm_wasi.h"
#include "kiln/abi.h"
#include "abi/kiln/kiln_host.h"
#include "kiln/aot.h"
#include "kiln/kv.h"
#include "kiln/runtime.h"
#include "kiln/wasi.h"

#define EXIT_TRAP 134

/* kiln:cli/log#log(message: string): one line on stderr, for components
 * called from the command line (and a host import the tests exercise). */
static int cli_log(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *args, cm_val *result,
                   kiln_err *err)
{
    if (ft->n != 1 || args[0].kind != CM_STRING || ft->elem != NULL)
        return kiln_err_set(err, KILN_EINVAL, "kiln:cli/log#log must be func(message: string)");
    fprintf(stderr, "%.*s\n", (int)args[0].str.len, args[0].str.p);
    return KILN_OK;
}

static const cm_host_fn cli_log_fns[] = {{"kiln:cli/log", "log", cli_log}};

static int fail(const char *fmt, ...) KILN_PRINTF(1, 2);

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kiln call: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int exit_for(int rc)
{
    return rc == KILN_ETRAP ? EXIT_TRAP : 1;
}

/* What the component sees of Kiln besides WASI: --kv and --config. */
typedef struct call_host {
    const char *kv_dir; /* NULL: $KILN_HOME/kv.db */
    kiln_kv config[64];
    size_t n_config;
} call_host;

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The grant set of `kiln call --kv` for core plugins (em_compiled.c
 * open_kv): fn:<file name> and 'global' read-write on DIR/kv.db, else
 * $KILN_HOME/kv.db; *out NULL without either (buckets: no-such-store). */
static int call_grants(const char *path, const char *kv_dir, kiln_kv_grants **out,
                       kiln_err *err)
{
    static const kiln_kv_grant_config global = {"global", true};
    char db[4096];
    *out = NULL;
    if (kv_dir != NULL)
        snprintf(db, sizeof(db), "%s/kv.db", kv_dir);
    else if (kiln_kv_default_path(db, sizeof(db)) != KILN_OK)
        return KILN_OK;
    kiln_kv_server_config srv = {.path = db, .backend = "sqlite"};
    kiln_kv_config fc = {.grants = &global, .n_grants = 1};
    int rc = kiln_kv_grants_new(&srv, base_name(path), &fc, out, err);
    return rc == KILN_OK ? KILN_OK : kiln_err_prefix(err, "key-value store %s: ", db);
}

static int call_component(const char *path, const uint8_t *buf, size_t size,
                          const char *export_name, const char *input_json,
                          const kiln_limits *limits, const call_host *ch)
{
    cm_component *c;
    kiln_err err = {0};
    if (cm_parse(buf, size, &c, &err) != KILN_OK)
        return fail("%s: %s", path, err.msg);
    int status = 1;
    cm_inst *ci = NULL;
    kiln_wasi *wasi = NULL;
    cm_arena *arena = NULL;
    json_t *input = NULL;
    kiln_kv_grants *grants = NULL;

    const cm_extern *ex = NULL;
    for (uint32_t i = 0; i < c->n_exports; i++)
        if (c->exports[i].sort == CM_SORT_FUNC && strcmp(c->exports[i].name, export_name) == 0)
            ex = &c->exports[i];
    if (ex == NULL) {
        fail("%s has no exported function '%s'; `kiln inspect %s` lists its exports", path,
             export_name, path);
        goto out;
    }
    const cm_func *fn = c->space[CM_SORT_FUNC][ex->index];
    const cm_type *ft = ex->type;
    if (fn->how != CM_FUNC_LIFT) {
        fail("export '%s' is not lifted from a core function here (re-exported import)",
             export_name);
        goto out;
    }
    if (cm_check_supported(ft, &err) != KILN_OK || fn->opts.async) {
        fail("export '%s': %s", export_name, fn->opts.async ? "async lifts are not implemented"
                                                            : err.msg);
        goto out;
    }
    /* Arguments. */
    json_error_t jerr;
    input = json_loads(input_json ? input_json : "[]", JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (input == NULL || !json_is_array(input)) {
        fail("--input-json must be a JSON array of the %u arguments%s%s", (unsigned)ft->n,
             input ? "" : ": ", input ? "" : jerr.text);
        goto out;
    }
    if (json_array_size(input) != ft->n) {
        fail("export '%s' takes %u arguments, --input-json has %zu", export_name,
             (unsigned)ft->n, json_array_size(input));
        goto out;
    }
    arena = cm_arena_new();
    cm_val *args = arena ? cm_arena_alloc(arena, (ft->n + 1) * sizeof(cm_val)) : NULL;
    if (args == NULL) {
        fail("out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < ft->n; i++) {
        char p[64];
        snprintf(p, sizeof(p), "$[%u]", (unsigned)i);
        if (cm_val_from_json(arena, ft->f[i].type, json_array_get(input, i), p, &args[i], &err) !=
            KILN_OK) {
            fail("%s (parameter '%s')", err.msg, ft->f[i].name);
            goto out;
        }
    }

    /* The component's core instances, fresh for this call. WASI 0.2 goes to
     * a context whose stdout is this process's stderr (stdout carries the
     * JSON result), next to Kiln's kiln:cli/log. */
    kiln_wasi_config wcfg = {0};
    wcfg.stdio[1].kind = KILN_WASI_STDIO_FD;
    wcfg.stdio[1].fd = 2;
    int rc = kiln_wasi_new(&wcfg, &wasi, &err);
    cm_host host = {0};
    if (rc == KILN_OK)
        rc = cm_wasi_add(&host, wasi);
    if (rc == KILN_OK)
        rc = cm_kiln_add(&host, wasi);
    if (rc == KILN_OK)
        rc = cm_host_add(&host, cli_log_fns, 1, NULL);
    if (rc == KILN_OK)
        rc = call_grants(path, ch->kv_dir, &grants, &err);
    kiln_host_ctx hctx = {.fn_name = base_name(path), .config = ch->config,
                          .n_config = ch->n_config, .log_level = 2};
    void *state[KILN_STATE_SLOTS] = {0};
    state[KILN_STATE_WASI] = wasi;
    state[KILN_STATE_KV] = grants;
    state[KILN_STATE_HOST] = &hctx;
    if (rc == KILN_OK)
        rc = cm_inst_new(c, buf, path, limits, &host, state, &ci, &err);
    cm_val result = {0};
    if (rc == KILN_OK)
        rc = cm_inst_call(ci, fn, args, arena, &result, &err);
    json_t *out_json = NULL;
    if (rc == KILN_OK && ft->elem != NULL && (out_json = cm_val_to_json(ft->elem, &result)) == NULL)
        rc = kiln_err_set(&err, KILN_ENOMEM, "out of memory building the result");
    if (rc != KILN_OK) {
        json_decref(out_json);
        status = exit_for(rc);
        if (rc == KILN_EEXIT)
            fail("%s: the component exited with status %d", export_name, cm_inst_exit_code(ci));
        else
            fail("%s: %s", export_name, err.msg[0] ? err.msg : kiln_strerror(rc));
        goto out;
    }
    char *text = out_json ? json_dumps(out_json, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(out_json);
    printf("%s\n", text ? text : "null");
    free(text);
    status = 0;
out:
    json_decref(input);
    cm_inst_free(ci);
    kiln_wasi_free(wasi);
    kiln_kv_grants_free(grants);
    cm_arena_free(arena);
    cm_free(c);
    return status;
}

/* Whether `path` is a readable file that starts with a component's preamble. */
bool cli_file_is_component(const char *path)
{
    uint8_t head[8];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    size_t n = fread(head, 1, sizeof(head), f);
    fclose(f);
    return cm_is_component(head, n);
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = kiln_malloc(cap);
    while (b != NULL) {
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= ((size_t)1 << 30)) { /* 1 GiB: surely not a component */
            kiln_free(b);
            b = NULL;
            break;
        }
        uint8_t *nb = kiln_realloc(b, cap * 2);
        if (nb == NULL)
            kiln_free(b);
        b = nb;
        cap *= 2;
    }
    bool bad = b == NULL || ferror(f);
    fclose(f);
    if (bad) {
        kiln_free(b);
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln call [options] component.wasm EXPORT --input-json '[ARG, ...]'\n"
               "\n"
               "Call a lifted export of a component: the arguments are a JSON array (records\n"
               "as objects, enums by name, variants as {\"case\": value}, options as null or\n"
               "the value, results as {\"ok\": v} / {\"error\": e}, lists and tuples as\n"
               "arrays, flags as arrays of labels, strings as strings) and the result is\n"
               "printed as JSON. Every core module is compiled ahead of time and cached under\n"
               "$KILN_HOME; the component may import WASI 0.2 (its stdout goes to stderr),\n"
               "wasi:keyvalue (buckets 'default', fn:<file name> in the store, and\n"
               "'global'), wasi:config (--config), wasi:logging (stderr) and kiln:cli/log\n"
               "(log: func(message: string), a line on stderr).\n"
               "\n"
               "options:\n"
               "  --input-json JSON   the arguments (default: [])\n"
               "  --timeout MS        time limit, in milliseconds\n"
               "  --max-memory SIZE   cap linear memory (e.g. 16MiB)\n"
               "  --kv DIR            the key-value store: DIR/kv.db (default\n"
               "                      $KILN_HOME/kv.db, as `kiln kv`)\n"
               "  --config KEY=VALUE  a config value for wasi:config (repeatable)\n"
               "  -h, --help          show this help\n"
               "\n"
               "For core modules (Extism plugins), see `kiln call --help` without a component.\n"
               "exit status: 0 on success; 1 on errors; 134 on a trap; 2 on usage errors.\n");
}

int cmd_call_dispatch(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else if (strcmp(argv[i], "--input-json") == 0 || strcmp(argv[i], "--timeout") == 0 ||
                 strcmp(argv[i], "--max-memory") == 0 || strcmp(argv[i], "--kv") == 0 ||
                 strcmp(argv[i], "--config") == 0)
            i++;
    }
    if (pos[0] == NULL || !cli_file_is_component(pos[0]))
        return cmd_call(argc, argv);

    const char *input = NULL;
    kiln_limits limits = {0};
    call_host ch;
    memset(&ch, 0, sizeof(ch));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-')
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--input-json", &m)) != NULL || m) {
            if (v == NULL)
                goto need_value;
            input = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--timeout", &m)) != NULL || m) {
            long long ms = cli_parse_uint(v, UINT32_MAX);
            if (ms < 0) {
                cli_error("call", "--timeout needs milliseconds, not '%s'", v ? v : "");
                return 2;
            }
            limits.timeout_ms = (uint32_t)ms;
        } else if ((v = cli_opt_value(argc, argv, &i, "--max-memory", &m)) != NULL || m) {
            long long b = cli_parse_size(v);
            if (b < 0) {
                cli_error("call", "--max-memory needs a size such as 16MiB, not '%s'", v ? v : "");
                return 2;
            }
            limits.max_memory_bytes = (uint64_t)b;
        } else if ((v = cli_opt_value(argc, argv, &i, "--kv", &m)) != NULL || m) {
            if (v == NULL)
                goto need_value;
            ch.kv_dir = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--config", &m)) != NULL || m) {
            if (v == NULL)
                goto need_value;
            const char *eq = strchr(v, '=');
            if (eq == NULL || eq == v || ch.n_config == sizeof(ch.config) / sizeof(ch.config[0])) {
                cli_error("call", "--config '%s': expected KEY=VALUE (at most %zu)", v,
                          sizeof(ch.config) / sizeof(ch.config[0]));
                return 2;
            }
            /* argv outlives the call: the key is cut off in place. */
            ((char *)v)[eq - v] = '\0';
            ch.config[ch.n_config++] = (kiln_kv){v, eq + 1};
        } else {
            cli_error("call", "option '%s' is not supported for components; see `kiln call "
                              "%s --help`",
                      a, pos[0]);
            return 2;
        }
        continue;
    need_value:
        cli_error("call", "option %s needs a value", a);
        return 2;
    }
    if (pos[1] == NULL) {
        cli_error("call", "no export given; usage: kiln call component.wasm EXPORT "
                          "--input-json '[ARG, ...]'");
        return 2;
    }
    uint8_t *buf;
    size_t size;
    if (read_all(pos[0], &buf, &size) != 0) {
        cli_error("call", "cannot read '%s': %s", pos[0], strerror(errno));
        return 1;
    }
    int rc = call_component(pos[0], buf, size, pos[1], input, &limits, &ch);
    kiln_free(buf);
    return rc;
}

int cli_run_component(const char *path, kiln_wasi *wasi, const kiln_limits *limits, kiln_err *err)
{
    uint8_t *buf;
    size_t size;
    if (read_all(path, &buf, &size) != 0)
        return kiln_err_set(err, KILN_EIO, "cannot read '%s': %s", path, strerror(errno));
    cm_component *c = NULL;
    cm_inst *ci = NULL;
    cm_arena *arena = NULL;
    int rc = cm_parse(buf, size, &c, err);
    const cm_func *run = rc == KILN_OK ? cm_find_cli_run(c) : NULL;
    if (rc == KILN_OK && run == NULL)
        rc = kiln_err_set(err, KILN_EUNSUPPORTED, "%s: a component without a wasi:cli/run "
                          "export is not a command; see `kiln inspect %s` and use `kiln call`",
                          path, path);
    cm_host host = {0};
    if (rc == KILN_OK)
        rc = cm_wasi_add(&host, wasi);
    /* Kiln's interfaces without a store or config: buckets are
     * no-such-store, wasi:logging lines go to stderr. */
    if (rc == KILN_OK)
        rc = cm_kiln_add(&host, wasi);
    void *state[KILN_STATE_SLOTS] = {0};
    state[KILN_STATE_WASI] = wasi;
    if (rc == KILN_OK)
        rc = cm_inst_new(c, buf, path, limits, &host, state, &ci, err);
    if (rc == KILN_OK)
        arena = cm_arena_new();
    if (rc == KILN_OK && arena == NULL)
        rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
    cm_val result = {0};
    if (rc == KILN_OK)
        rc = cm_inst_call(ci, run, NULL, arena, &result, err);
    if (rc == KILN_EEXIT) {
        err->code = KILN_EEXIT;
        err->trap = KILN_TRAP_EXIT;
        err->exit_code = cm_inst_exit_code(ci);
    } else if (rc == KILN_OK && result.kind == CM_RESULT && result.var.index != 0) {
        /* run returned error: exit status 1, as wasmtime does */
        rc = KILN_EEXIT;
        err->code = KILN_EEXIT;
        err->trap = KILN_TRAP_EXIT;
        err->exit_code = 1;
    }
    cm_arena_free(arena);
    cm_inst_free(ci);
    cm_free(c);
    kiln_free(buf);
    return rc;
}
