/*
 * cmd_call.c - `kiln call`: run one function of an Extism (or Otoroshi)
 * plugin the way `extism call` does - compile the module ahead of time,
 * link the Extism host functions (and WASI with --wasi), pass the input,
 * print the output bytes.
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

#include "abi/extism/extism.h"
#include "base/alloc.h"
#include "abi/kiln/kiln_host.h"
#include "cli/cli.h"
#include "kiln/aot.h"
#include "kiln/handler.h"
#include "kiln/kiln.h"
#include "kiln/runtime.h"
#include "kiln/wasi.h"

/* Named directly (not through the registry's weak references) so that the
 * linker pulls the ABI out of libkiln.a. */
extern const kiln_abi_ops kiln_abi_otoroshi;

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
            "  --allow-host GLOB      let http_request reach hosts matching GLOB (repeatable;\n"
            "                         nothing is allowed by default)\n"
            "  --wasi                 link WASI (wasi_snapshot_preview1); guest stdout and\n"
            "                         stderr are logged at debug level\n"
            "  --dir HOST[::GUEST]    preopen a directory for WASI (--dir-ro: read-only)\n"
            "  --timeout MS           time limit per call, in milliseconds\n"
            "  --max-memory SIZE      cap linear memory and Extism memory (e.g. 16MiB)\n"
            "  --max-stack SIZE       native stack for guest code (default 1MiB)\n"
            "  --manifest FILE        an Extism manifest (wasm[0], memory, config,\n"
            "                         allowed_hosts, allowed_paths, timeout_ms); options\n"
            "                         given on the command line take precedence\n"
            "  --log-level LEVEL      trace, debug, info, warn, error or off (default off)\n"
            "  --loop N               call the function N times on the same instance\n"
            "  -h, --help             show this help\n"
            "\n"
            "exit status: 0 on success; 1 if the plugin fails (error set, non-zero return,\n"
            "refused host call) or the module cannot be loaded; 124 on timeout; 134 on a\n"
            "trap; 2 on usage errors.\n");
}

typedef struct call_opts {
    const char *module;
    const char *function;
    const char *input;
    size_t input_len;
    const char *input_file;
    kiln_kv *config;
    size_t n_config;
    const char **hosts;
    size_t n_hosts;
    kiln_wasi_preopen *dirs;
    size_t n_dirs;
    bool wasi;
    long long timeout_ms; /* -1 = unset */
    long long max_memory; /* -1 = unset */
    long long max_stack;  /* 0 = default */
    const char *manifest;
    int log_level;
    long long loops;
} call_opts;

/* Parse options; returns -1 to continue, else an exit status. */
static int parse(int argc, char **argv, call_opts *o)
{
    o->config = kiln_xcalloc((size_t)argc, sizeof(*o->config));
    o->hosts = kiln_xcalloc((size_t)argc, sizeof(*o->hosts));
    o->dirs = kiln_xcalloc((size_t)argc, sizeof(*o->dirs));
    o->timeout_ms = o->max_memory = -1;
    o->log_level = XTM_LOG_OFF;
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
        static const char *const with_value[] = {
            "--input",      "-i",       "--input-file", "--config",   "--allow-host",
            "--dir-ro",     "--dir",    "--timeout",    "--max-memory", "--manifest",
            "--log-level",  "--loop",   "--max-stack",
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
        if (k <= 1) {
            o->input = v;
            o->input_len = strlen(v);
        } else if (strcmp(name, "--input-file") == 0) {
            o->input_file = v;
        } else if (strcmp(name, "--config") == 0) {
            const char *eq = strchr(v, '=');
            if (eq == NULL || eq == v) {
                cli_error("call", "--config '%s': expected KEY=VALUE", v);
                return CALL_EXIT_USAGE;
            }
            o->config[o->n_config].name = kiln_xmalloc((size_t)(eq - v) + 1);
            memcpy((char *)o->config[o->n_config].name, v, (size_t)(eq - v));
            ((char *)o->config[o->n_config].name)[eq - v] = '\0';
            o->config[o->n_config++].value = eq + 1;
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
            o->log_level = xtm_log_level_parse(v);
            if (o->log_level < 0) {
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
    if ((stdin_input ? 1 : 0) + (o->input != NULL) + (o->input_file != NULL) > 1) {
        cli_error("call", "give the input once: --input, --input-file or -");
        return CALL_EXIT_USAGE;
    }
    if (stdin_input)
        o->input_file = "-";
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

static int print_output(void *arg, const uint8_t *out, size_t len, int32_t rc32, kiln_err *err)
{
    (void)arg, (void)rc32;
    if (len > 0 && fwrite(out, 1, len, stdout) != len)
        return kiln_err_set(err, KILN_EIO, "cannot write the output: %s", strerror(errno));
    return KILN_OK;
}

/* Directory part of a path, for resolving manifest-relative module paths. */
static char *dir_of(const char *path)
{
    const char *s = strrchr(path, '/');
    if (s == NULL)
        return kiln_strdup(".");
    return kiln_strndup(path, s == path ? 1 : (size_t)(s - path));
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

    kiln_err err;
    memset(&err, 0, sizeof(err));
    xtm_manifest man;
    memset(&man, 0, sizeof(man));
    man.max_pages = man.max_http_response_bytes = man.max_var_bytes = man.timeout_ms = -1;
    kiln_linker *linker = NULL;
    kiln_module *mod = NULL;
    kiln_instance_pre *pre = NULL;
    xtm_fn *fn = NULL;
    uint8_t *input = NULL, *wasm = NULL;
    size_t input_len = 0, wasm_len = 0;
    kiln_kv *config = NULL;
    const char **hosts = NULL;
    kiln_wasi_preopen *dirs = NULL;
    int rc;

    if (o.manifest != NULL) {
        uint8_t *text;
        size_t tlen;
        if (read_all(o.manifest, &text, &tlen, (size_t)64 << 20) != 0)
            goto out;
        char *dir = dir_of(o.manifest);
        rc = xtm_manifest_parse((const char *)text, tlen, dir, &man, &err);
        kiln_free(dir);
        kiln_free(text);
        if (rc != KILN_OK) {
            cli_error("call", "%s: %s", o.manifest, err.msg);
            goto out;
        }
    }
    const char *module = o.module ? o.module : man.wasm_path;
    const char *name = module ? base_name(module) : "manifest-data.wasm";

    if (o.input_file != NULL) {
        if (read_all(o.input_file, &input, &input_len, CALL_MAX_INPUT) != 0)
            goto out;
    } else if (o.input != NULL) {
        input = (uint8_t *)kiln_xmalloc(o.input_len + 1);
        memcpy(input, o.input, o.input_len);
        input_len = o.input_len;
    }

    /* Link: Otoroshi's table, a superset of Extism's, so Otoroshi plugins
     * run too; plus WASI on request. */
    size_t nfns;
    const kiln_hostfn *fns = kiln_abi_otoroshi.hostfns(&nfns);
    rc = kiln_linker_new(&linker);
    if (rc == KILN_OK)
        rc = kiln_linker_define_host(linker, fns, nfns);
    if (rc == KILN_OK && o.wasi) {
        const kiln_hostfn *wfns = kiln_wasi_hostfns(&nfns);
        rc = kiln_linker_define_host(linker, wfns, nfns);
    }
    /* Kiln's own host module: without a server there is no store or HTTP
     * policy, so its calls answer KILN_HOST_EUNAVAILABLE instead of the
     * module failing to link. */
    if (rc == KILN_OK)
        rc = kiln_host_define(linker);
    if (rc != KILN_OK) {
        cli_error("call", "cannot set up the linker: %s", kiln_strerror(rc));
        goto out;
    }

    kiln_aot_options aopts;
    memset(&aopts, 0, sizeof(aopts));
    aopts.opt_level = -1;
    aopts.imports = linker;
    bool need_bytes = o.module == NULL ? man.wasm_data != NULL || man.wasm_hash != NULL
                                       : man.wasm_hash != NULL;
    if (need_bytes && module != NULL) {
        if (read_all(module, &wasm, &wasm_len, (size_t)1 << 30) != 0)
            goto out;
    } else if (need_bytes) {
        wasm = man.wasm_data;
        wasm_len = man.wasm_len;
        man.wasm_data = NULL;
    }
    if (man.wasm_hash != NULL && xtm_check_hash(wasm, wasm_len, man.wasm_hash, &err) != KILN_OK) {
        cli_error("call", "%s: %s", name, err.msg);
        goto out;
    }
    if (wasm != NULL) {
        kiln_aot_result res;
        rc = kiln_aot_compile(wasm, wasm_len, name, &aopts, &res, &err);
        if (rc == KILN_OK)
            rc = kiln_module_load(res.so_path, name, &mod, &err);
    } else {
        rc = kiln_aot_load_file(module, &aopts, &mod, &err);
    }
    if (rc != KILN_OK) {
        if (rc == KILN_EIMPORT && !o.wasi && strstr(err.msg, "wasi_snapshot_preview1") != NULL)
            fprintf(stderr, "kiln call: %s\nkiln call: the plugin needs WASI: pass --wasi\n",
                    err.msg);
        else
            fprintf(stderr, "kiln call: %s\n", err.msg[0] ? err.msg : kiln_strerror(rc));
        goto out;
    }
    rc = xtm_check_export(mod, o.function, &err);
    if (rc != KILN_OK) {
        fprintf(stderr, "kiln call: %s: %s\n", name, err.msg);
        goto out;
    }
    rc = kiln_instance_pre_new(mod, linker, &pre, &err);
    if (rc != KILN_OK) {
        fprintf(stderr, "kiln call: %s\n", err.msg);
        goto out;
    }

    /* Command-line entries come first: config_get and the host list take the
     * first match, so they override the manifest. */
    config = kiln_xcalloc(o.n_config + man.n_config + 1, sizeof(*config));
    size_t nc = 0;
    for (size_t i = 0; i < o.n_config; i++)
        config[nc++] = o.config[i];
    for (size_t i = 0; i < man.n_config; i++)
        config[nc++] = man.config[i];
    hosts = kiln_xcalloc(o.n_hosts + man.n_allowed_hosts + 1, sizeof(*hosts));
    size_t nh = 0;
    for (size_t i = 0; i < o.n_hosts; i++)
        hosts[nh++] = o.hosts[i];
    for (size_t i = 0; i < man.n_allowed_hosts; i++)
        hosts[nh++] = man.allowed_hosts[i];
    dirs = kiln_xcalloc(o.n_dirs + man.n_allowed_paths + 1, sizeof(*dirs));
    size_t nd = 0;
    for (size_t i = 0; i < man.n_allowed_paths; i++)
        dirs[nd++] = man.allowed_paths[i];
    for (size_t i = 0; i < o.n_dirs; i++)
        dirs[nd++] = o.dirs[i];
    if (nd > 0 && !o.wasi) {
        cli_error("call", "directories (--dir or allowed_paths) need WASI: pass --wasi");
        status = CALL_EXIT_USAGE;
        goto out;
    }

    xtm_options xo;
    memset(&xo, 0, sizeof(xo));
    xo.name = name;
    xo.config = config;
    xo.n_config = nc;
    xo.allowed_hosts = hosts;
    xo.n_allowed_hosts = nh;
    if (o.max_memory > 0)
        xo.limits.max_memory_bytes = (uint64_t)o.max_memory;
    else if (man.max_pages >= 0)
        xo.limits.max_memory_bytes = (uint64_t)man.max_pages * 65536u;
    xo.limits.max_stack_bytes = (uint32_t)o.max_stack;
    if (o.timeout_ms > 0)
        xo.limits.timeout_ms = (uint32_t)o.timeout_ms;
    else if (man.timeout_ms > 0)
        xo.limits.timeout_ms = man.timeout_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)man.timeout_ms;
    xo.max_var_bytes = man.max_var_bytes >= 0 ? (uint64_t)man.max_var_bytes
                                              : XTM_DEFAULT_MAX_VAR_BYTES;
    xo.max_http_response_bytes = man.max_http_response_bytes >= 0
                                     ? (uint64_t)man.max_http_response_bytes
                                     : XTM_DEFAULT_MAX_HTTP_RESPONSE;
    xo.log_level = o.log_level;
    xo.wasi = o.wasi;
    xo.preopens = dirs;
    xo.n_preopens = nd;
    xo.reuse = true; /* --loop calls share one instance, as in Extism */
    /* Otoroshi plugins follow Otoroshi's rule: a non-zero return code without
     * an Extism error is not a failure. */
    xo.nonzero_rc_ok = kiln_abi_otoroshi.detect(mod) > 0;
    rc = xtm_fn_new(&xo, &fn, &err);
    for (long long i = 0; rc == KILN_OK && i < o.loops; i++)
        rc = xtm_run(fn, pre, o.function, input, input_len, print_output, NULL, &err);
    fflush(stdout);
    status = rc == KILN_OK ? 0 : report(rc, &err);

out:
    xtm_fn_free(fn);
    kiln_free(config);
    kiln_free(hosts);
    kiln_free(dirs);
    kiln_free(input);
    kiln_free(wasm);
    if (pre != NULL)
        kiln_instance_pre_free(pre);
    if (mod != NULL)
        kiln_module_release(mod);
    if (linker != NULL)
        kiln_linker_free(linker);
    xtm_manifest_fini(&man);
out_opts:
    for (size_t i = 0; i < o.n_config; i++)
        kiln_free((void *)o.config[i].name);
    kiln_free(o.config);
    kiln_free(o.hosts);
    kiln_free(o.dirs);
    fflush(stdout);
    return status;
}
