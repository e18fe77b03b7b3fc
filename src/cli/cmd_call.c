/*
 * cmd_call.c - `kiln call`: run one function of an Extism (or Otoroshi)
 * plugin the way `extism call` does - compile the module ahead of time,
 * link the Extism host functions (and WASI with --wasi), pass the input,
 * print the output bytes.
 *
 * Built on the public embedding API only (kiln/extism.h and
 * kiln/extism_kiln.h): the same door as a program linking libkiln, so the
 * CLI and the library cannot drift apart. kiln_extism_compiled_new takes
 * the manifest and the command line's additions; each call goes through
 * extism_plugin_call on one plugin, so --loop and --then calls share an
 * instance. Plugins get a KV store (--kv DIR, default $KILN_HOME/kv.db).
 *
 * Exit status (as `kiln run`): 0 success; 1 when the plugin reports an error
 * (error_set, a non-zero return code, a refused host call) or the module
 * cannot be compiled, linked or instantiated; 124 on timeout; 134 on a trap
 * (including Extism's "oom"); 2 on a usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <strings.h>

#include "base/alloc.h"
#include "cli/cli.h"
#include "kiln/extism.h"
#include "kiln/extism_kiln.h"
#include "kiln/kiln.h"
#include "kiln/kv.h"
#include "kiln/wasi.h"

#define CALL_EXIT_ERROR 1
#define CALL_EXIT_USAGE 2
#define CALL_EXIT_TIMEOUT 124
#define CALL_EXIT_TRAP 134
#define CALL_MAX_INPUT ((size_t)1 << 30)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kiln call [options] module.wasm FUNCTION\n"
            "       kiln call [options] --manifest FILE [module.wasm] FUNCTION\n"
            "\n"
            "Call FUNCTION of an Extism plugin (an export of type () -> i32) like `extism\n"
            "call`: the input goes in through the Extism ABI, the output bytes are printed\n"
            "to stdout. The module is compiled ahead of time and cached under $KILN_HOME.\n"
            "\n"
            "options:\n"
            "  --input STR, -i STR    the call's input (default: empty)\n"
            "  --input-file FILE      read the input from FILE ('-' = stdin)\n"
            "  -                      read the input from stdin\n"
            "  --config KEY=VALUE     a config entry for config_get (repeatable)\n"
            "  --var KEY=VALUE        preset a var for var_get before the first call\n"
            "                         (repeatable)\n"
            "  --show-vars            after the calls, print the plugin's vars on stderr,\n"
            "                         one 'var KEY=VALUE' line each (bytes outside\n"
            "                         printable ASCII as \\xNN)\n"
            "  --allow-host GLOB      let http_request reach hosts matching GLOB (repeatable;\n"
            "                         nothing is allowed by default)\n"
            "  --wasi                 link WASI (wasi_snapshot_preview1); guest stdout and\n"
            "                         stderr are logged at debug level\n"
            "  --dir HOST[::GUEST]    preopen a directory for WASI (--dir-ro: read-only)\n"
            "  --timeout MS           time limit per call, in milliseconds\n"
            "  --max-memory SIZE      cap linear memory and Extism memory (e.g. 16MiB)\n"
            "  --max-stack SIZE       native stack for guest code (default 1MiB)\n"
            "  --manifest FILE        an Extism manifest (wasm modules, memory, config,\n"
            "                         allowed_hosts, allowed_paths, timeout_ms); options\n"
            "                         given on the command line take precedence\n"
            "  --log-level LEVEL      trace, debug, info, warn, error or off (default off)\n"
            "  --then FUNCTION        then call FUNCTION on the same instance; an --input,\n"
            "                         -i or --input-file after it is that call's input\n"
            "                         (repeatable: the calls run in order, outputs are\n"
            "                         printed one after the other; the first failure stops)\n"
            "  --loop N               run the calls N times on the same instance\n"
            "  --kv DIR               the key-value store of Otoroshi's and Kiln's KV host\n"
            "                         functions: DIR/kv.db (default $KILN_HOME/kv.db, as\n"
            "                         `kiln kv`); private namespace fn:<module file name>,\n"
            "                         namespace 'global' read-write\n"
            "  -h, --help             show this help\n"
            "\n"
            "exit status: 0 on success; 1 if the plugin fails (error set, non-zero return,\n"
            "refused host call) or the module cannot be loaded; 124 on timeout; 134 on a\n"
            "trap; 2 on usage errors.\n");
}

typedef struct call_var {
    char *name;
    const char *value;
} call_var;

/* One call: the first from the positional FUNCTION, then one per --then. */
typedef struct call_step {
    const char *function;
    const char *input;
    size_t input_len;
    const char *input_file;
    bool stdin_input;
    uint8_t *owned; /* the input read from input_file */
} call_step;

typedef struct call_opts {
    const char *module;
    const char *function;
    const char *input;
    size_t input_len;
    const char *input_file;
    call_step *then; /* --then calls, in order */
    size_t n_then;
    const char *kv_dir; /* --kv; NULL = $KILN_HOME */
    const char **config; /* "KEY=VALUE" */
    size_t n_config;
    call_var *vars;
    size_t n_vars;
    bool show_vars;
    const char **hosts;
    size_t n_hosts;
    kiln_wasi_preopen *dirs;
    size_t n_dirs;
    bool wasi;
    long long timeout_ms; /* -1 = unset */
    long long max_memory; /* -1 = unset */
    long long max_stack;  /* 0 = default */
    const char *manifest;
    const char *log_level; /* NULL = off */
    long long loops;
} call_opts;

/* The level names the library takes (kiln_extism_options.log_level). */
static bool valid_log_level(const char *s)
{
    static const char *const names[] = {"trace", "debug", "info", "warn", "warning",
                                        "error", "off",   "none"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(s, names[i]) == 0)
            return true;
    return false;
}

/* Split "KEY=VALUE" (KEY non-empty) into a call_var whose name is a copy. */
static bool split_kv(const char *v, call_var *kv)
{
    const char *eq = strchr(v, '=');
    if (eq == NULL || eq == v)
        return false;
    char *name = kiln_xmalloc((size_t)(eq - v) + 1);
    memcpy(name, v, (size_t)(eq - v));
    name[eq - v] = '\0';
    kv->name = name;
    kv->value = eq + 1;
    return true;
}

static int input_twice(const call_step *cur)
{
    if (cur->function != NULL)
        cli_error("call", "--then %s: give its input once: --input, --input-file or -",
                  cur->function);
    else
        cli_error("call", "give the input once: --input, --input-file or -");
    return CALL_EXIT_USAGE;
}

/* Parse options; returns -1 to continue, else an exit status. */
static int parse(int argc, char **argv, call_opts *o)
{
    o->config = kiln_xcalloc((size_t)argc, sizeof(*o->config));
    o->vars = kiln_xcalloc((size_t)argc, sizeof(*o->vars));
    o->hosts = kiln_xcalloc((size_t)argc, sizeof(*o->hosts));
    o->dirs = kiln_xcalloc((size_t)argc, sizeof(*o->dirs));
    o->then = kiln_xcalloc((size_t)argc, sizeof(*o->then));
    call_step first;
    memset(&first, 0, sizeof(first));
    call_step *cur = &first; /* the call an input option applies to */
    o->timeout_ms = o->max_memory = -1;
    o->loops = 1;
    const char *pos[2];
    int npos = 0;
    bool stdin_input = false, only_pos = false;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        bool m;
        const char *v;
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (only_pos || a[0] != '-') {
            if (npos == 2) {
                cli_error("call", "unexpected argument '%s'; usage: kiln call [options] "
                                  "module.wasm FUNCTION",
                          a);
                return CALL_EXIT_USAGE;
            }
            pos[npos++] = a;
            continue;
        }
        if (strcmp(a, "-") == 0) {
            if (cur->stdin_input || cur->input != NULL || cur->input_file != NULL)
                return input_twice(cur);
            if (stdin_input) {
                cli_error("call", "stdin ('-') can be the input of one call only");
                return CALL_EXIT_USAGE;
            }
            cur->stdin_input = true;
            stdin_input = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--wasi") == 0) {
            o->wasi = true;
            continue;
        }
        if (strcmp(a, "--show-vars") == 0) {
            o->show_vars = true;
            continue;
        }
        static const char *const with_value[] = {
            "--input",      "-i",       "--input-file", "--config",   "--allow-host",
            "--dir-ro",     "--dir",    "--timeout",    "--max-memory", "--manifest",
            "--log-level",  "--loop",   "--max-stack",  "--var",        "--then",
            "--kv",
        };
        size_t k, nk = sizeof(with_value) / sizeof(with_value[0]);
        v = NULL;
        for (k = 0; k < nk; k++) {
            v = cli_opt_value(argc, argv, &i, with_value[k], &m);
            if (m)
                break;
        }
        if (k == nk) {
            cli_error("call", "unknown option '%s'; see `kiln call --help`", a);
            return CALL_EXIT_USAGE;
        }
        if (v == NULL || (*v == '\0' && k > 1)) {
            cli_error("call", "option %s needs a value", with_value[k]);
            return CALL_EXIT_USAGE;
        }
        const char *name = with_value[k];
        if (k <= 1 || strcmp(name, "--input-file") == 0) {
            if (cur->stdin_input || cur->input != NULL || cur->input_file != NULL)
                return input_twice(cur);
            if (k <= 1) {
                cur->input = v;
                cur->input_len = strlen(v);
            } else {
                cur->input_file = v;
            }
        } else if (strcmp(name, "--then") == 0) {
            cur = &o->then[o->n_then++];
            cur->function = v;
        } else if (strcmp(name, "--kv") == 0) {
            o->kv_dir = v;
        } else if (strcmp(name, "--config") == 0) {
            const char *eq = strchr(v, '=');
            if (eq == NULL || eq == v) {
                cli_error("call", "--config '%s': expected KEY=VALUE", v);
                return CALL_EXIT_USAGE;
            }
            o->config[o->n_config++] = v;
        } else if (strcmp(name, "--var") == 0) {
            if (!split_kv(v, &o->vars[o->n_vars])) {
                cli_error("call", "--var '%s': expected KEY=VALUE", v);
                return CALL_EXIT_USAGE;
            }
            o->n_vars++;
        } else if (strcmp(name, "--allow-host") == 0) {
            o->hosts[o->n_hosts++] = v;
        } else if (strcmp(name, "--dir") == 0 || strcmp(name, "--dir-ro") == 0) {
            kiln_wasi_preopen *p = &o->dirs[o->n_dirs++];
            char *sep = strstr(v, "::");
            p->host_path = v;
            if (sep != NULL) {
                *sep = '\0';
                p->guest_path = sep + 2;
            }
            p->read_only = strcmp(name, "--dir-ro") == 0;
        } else if (strcmp(name, "--timeout") == 0) {
            o->timeout_ms = cli_parse_uint(v, UINT32_MAX);
            if (o->timeout_ms <= 0) {
                cli_error("call", "--timeout '%s': expected milliseconds, 1..%u", v,
                          (unsigned)UINT32_MAX);
                return CALL_EXIT_USAGE;
            }
        } else if (strcmp(name, "--max-memory") == 0) {
            o->max_memory = cli_parse_size(v);
            if (o->max_memory <= 0) {
                cli_error("call", "--max-memory '%s': expected a size such as 16MiB", v);
                return CALL_EXIT_USAGE;
            }
        } else if (strcmp(name, "--max-stack") == 0) {
            o->max_stack = cli_parse_size(v);
            if (o->max_stack < (64 << 10) || o->max_stack > (256LL << 20)) {
                cli_error("call", "--max-stack '%s': expected a size from 64KiB to 256MiB", v);
                return CALL_EXIT_USAGE;
            }
        } else if (strcmp(name, "--manifest") == 0) {
            o->manifest = v;
        } else if (strcmp(name, "--log-level") == 0) {
            o->log_level = v;
            if (!valid_log_level(v)) {
                cli_error("call", "--log-level '%s': expected trace, debug, info, warn, error "
                                  "or off",
                          v);
                return CALL_EXIT_USAGE;
            }
        } else if (strcmp(name, "--loop") == 0) {
            o->loops = cli_parse_uint(v, 1000000000);
            if (o->loops <= 0) {
                cli_error("call", "--loop '%s': expected a positive count", v);
                return CALL_EXIT_USAGE;
            }
        }
    }
    o->input = first.input;
    o->input_len = first.input_len;
    o->input_file = first.stdin_input ? "-" : first.input_file;
    for (size_t t = 0; t < o->n_then; t++)
        if (o->then[t].stdin_input)
            o->then[t].input_file = "-";
    if (npos == 2) {
        o->module = pos[0];
        o->function = pos[1];
    } else if (npos == 1 && o->manifest != NULL) {
        o->function = pos[0];
    } else {
        cli_error("call", "%s; usage: kiln call [options] module.wasm FUNCTION",
                  npos == 0 ? "no module and function given" : "no function given");
        return CALL_EXIT_USAGE;
    }
    return -1;
}

/* Read a whole file (or stdin for "-") into a kiln_malloc'd buffer. */
static int read_all(const char *path, uint8_t **out, size_t *len, size_t max)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    *out = NULL;
    *len = 0;
    if (f == NULL) {
        cli_error("call", "cannot open '%s': %s; check the path", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = kiln_malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            if (cap >= max) {
                cli_error("call", "'%s' is larger than %zu bytes", path, max);
                kiln_free(buf);
                buf = NULL;
                break;
            }
            uint8_t *nb = kiln_realloc(buf, cap * 2);
            if (nb == NULL) {
                kiln_free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                cli_error("call", "cannot read '%s': %s", path, strerror(errno));
                kiln_free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf == NULL)
        return -1;
    *out = buf;
    *len = n;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Map a failed call to the exit status, printing the message. */
static int report(int rc, const kiln_err *err)
{
    const char *msg = err->msg[0] ? err->msg : kiln_strerror(rc);
    fprintf(stderr, "kiln call: %s\n", msg);
    if (rc == KILN_ETIMEOUT || (rc == KILN_ETRAP && err->trap == KILN_TRAP_TIMEOUT))
        return CALL_EXIT_TIMEOUT;
    if (rc == KILN_ETRAP)
        return CALL_EXIT_TRAP;
    return CALL_EXIT_ERROR;
}

/* Directory part of a path, for resolving manifest-relative module paths. */
static char *dir_of(const char *path)
{
    const char *s = strrchr(path, '/');
    if (s == NULL)
        return kiln_strdup(".");
    return kiln_strndup(path, s == path ? 1 : (size_t)(s - path));
}

/* --show-vars: one "var KEY=VALUE" line per var on stderr. */
static void put_escaped(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            fputc(p[i], stderr);
        else
            fprintf(stderr, "\\x%02x", p[i]);
    }
}

static void print_var(void *user, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
    (void)user;
    fputs("var ", stderr);
    put_escaped((const uint8_t *)key, klen);
    fputc('=', stderr);
    put_escaped(val, vlen);
    fputc('\n', stderr);
}

/* Compile the plugin through the library; prints why on failure and sets
 * *status. */
static ExtismCompiledPlugin *load(const call_opts *o, const uint8_t *wasm, size_t wasm_len,
                                  const uint8_t *manifest, size_t manifest_len,
                                  const char *kv_db, int *status)
{
    kiln_err err;
    memset(&err, 0, sizeof(err));
    char *dir = o->manifest ? dir_of(o->manifest) : NULL;
    kiln_extism_options ko;
    memset(&ko, 0, sizeof(ko));
    ko.name = o->module ? base_name(o->module) : NULL;
    ko.base_dir = dir;
    ko.module = wasm;
    ko.module_len = wasm_len;
    ko.config = o->config;
    ko.n_config = o->n_config;
    ko.allowed_hosts = o->hosts;
    ko.n_allowed_hosts = o->n_hosts;
    ko.dirs = o->dirs;
    ko.n_dirs = o->n_dirs;
    ko.max_memory_bytes = o->max_memory > 0 ? (uint64_t)o->max_memory : 0;
    ko.max_stack_bytes = (uint32_t)o->max_stack;
    ko.timeout_ms = o->timeout_ms > 0 ? (uint32_t)o->timeout_ms : 0;
    ko.log_level = o->log_level ? o->log_level : "off";
    ko.log_stderr = true;
    /* Otoroshi's table, a superset of Extism's, so Otoroshi plugins run too,
     * and Kiln's own module (answering "not available" without a server). */
    ko.otoroshi = true;
    ko.kv_db = kv_db;
    ko.err = &err;
    ExtismCompiledPlugin *c =
        kiln_extism_compiled_new(manifest ? manifest : NULL, manifest ? manifest_len : 0, NULL,
                                 0, o->wasi, &ko, NULL);
    kiln_free(dir);
    if (c != NULL)
        return c;
    const char *msg = err.msg[0] ? err.msg : kiln_strerror(err.code);
    *status = CALL_EXIT_ERROR;
    if (err.code == KILN_ECONFIG && strstr(msg, "need WASI") != NULL) {
        cli_error("call", "directories (--dir or allowed_paths) need WASI: pass --wasi");
        *status = CALL_EXIT_USAGE;
    } else if (o->manifest != NULL && (err.code == KILN_EINVAL || err.code == KILN_ENOENT)) {
        cli_error("call", "%s: %s", o->manifest, msg);
    } else if (err.code == KILN_EIMPORT && !o->wasi &&
               strstr(msg, "wasi_snapshot_preview1") != NULL) {
        fprintf(stderr, "kiln call: %s\nkiln call: the plugin needs WASI: pass --wasi\n", msg);
    } else {
        fprintf(stderr, "kiln call: %s\n", msg);
    }
    return NULL;
}

int cmd_call(int argc, char **argv)
{
    call_opts o;
    memset(&o, 0, sizeof(o));
    int status = parse(argc, argv, &o);
    if (status >= 0)
        goto out_opts;
    status = CALL_EXIT_ERROR;
    signal(SIGPIPE, SIG_IGN);

    ExtismCompiledPlugin *compiled = NULL;
    ExtismPlugin *plugin = NULL;
    uint8_t *input = NULL, *wasm = NULL, *manifest = NULL;
    size_t input_len = 0, wasm_len = 0, manifest_len = 0;

    if (o.manifest != NULL &&
        read_all(o.manifest, &manifest, &manifest_len, (size_t)64 << 20) != 0)
        goto out;
    if (o.module != NULL && read_all(o.module, &wasm, &wasm_len, (size_t)1 << 30) != 0)
        goto out;
    if (o.input_file != NULL) {
        if (read_all(o.input_file, &input, &input_len, CALL_MAX_INPUT) != 0)
            goto out;
    } else if (o.input != NULL) {
        input = (uint8_t *)kiln_xmalloc(o.input_len + 1);
        memcpy(input, o.input, o.input_len);
        input_len = o.input_len;
    }

    for (size_t t = 0; t < o.n_then; t++) {
        call_step *st = &o.then[t];
        if (st->input_file != NULL) {
            uint8_t *b = NULL;
            size_t n = 0;
            if (read_all(st->input_file, &b, &n, CALL_MAX_INPUT) != 0)
                goto out;
            st->input = (const char *)b;
            st->input_len = n;
            st->owned = b;
        }
    }
    /* --kv DIR, else $KILN_HOME/kv.db (as `kiln kv`); none without a home. */
    char kv_db[4096];
    const char *kv = kv_db;
    if (o.kv_dir != NULL)
        snprintf(kv_db, sizeof(kv_db), "%s/kv.db", o.kv_dir);
    else if (kiln_kv_default_path(kv_db, sizeof(kv_db)) != KILN_OK)
        kv = NULL;

    compiled = load(&o, wasm, wasm_len, manifest, manifest_len, kv, &status);
    if (compiled == NULL)
        goto out;
    char *errmsg = NULL;
    plugin = extism_plugin_new_from_compiled(compiled, &errmsg);
    if (plugin == NULL) {
        fprintf(stderr, "kiln call: %s\n", errmsg ? errmsg : "cannot create the plugin");
        extism_plugin_new_error_free(errmsg);
        goto out;
    }
    for (size_t i = 0; i < o.n_vars; i++) {
        if (!kiln_extism_plugin_var_set(plugin, o.vars[i].name, (const uint8_t *)o.vars[i].value,
                                        strlen(o.vars[i].value))) {
            cli_error("call", "--var %s: Variable store is full (memory.max_var_bytes)",
                      o.vars[i].name);
            goto out;
        }
    }

    int rc = KILN_OK;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    /* The calls in order (the positional FUNCTION, then each --then), --loop
     * times, all on the plugin's one instance; the first failure stops. */
    for (long long i = 0; rc == KILN_OK && i < o.loops; i++) {
        for (size_t t = 0; rc == KILN_OK && t <= o.n_then; t++) {
            const char *fn = t == 0 ? o.function : o.then[t - 1].function;
            const uint8_t *in = t == 0 ? input : (const uint8_t *)o.then[t - 1].input;
            size_t in_len = t == 0 ? input_len : o.then[t - 1].input_len;
            extism_plugin_call(plugin, fn, in, in_len);
            rc = kiln_extism_plugin_status(plugin, &err);
            if (rc != KILN_OK)
                break;
            size_t len = (size_t)extism_plugin_output_length(plugin);
            if (len > 0 && fwrite(extism_plugin_output_data(plugin), 1, len, stdout) != len)
                rc = kiln_err_set(&err, KILN_EIO, "cannot write the output: %s",
                                  strerror(errno));
        }
    }
    fflush(stdout);
    status = rc == KILN_OK ? 0 : report(rc, &err);
    if (o.show_vars)
        kiln_extism_plugin_vars_each(plugin, print_var, NULL);

out:
    extism_plugin_free(plugin);
    extism_compiled_plugin_free(compiled);
    kiln_free(input);
    kiln_free(wasm);
    kiln_free(manifest);
out_opts:
    for (size_t i = 0; i < o.n_vars; i++)
        kiln_free(o.vars[i].name);
    kiln_free(o.vars);
    for (size_t t = 0; t < o.n_then; t++)
        kiln_free(o.then[t].owned);
    kiln_free(o.then);
    kiln_free(o.config);
    kiln_free(o.hosts);
    kiln_free(o.dirs);
    fflush(stdout);
    return status;
}
