/*
 * cmd_run.c - `kiln run`: compile (or load from the cache) a WASI command
 * module, give it argv, env, stdio and preopened directories, and call
 * `_start`, the way `wasmtime run` does.
 *
 * Exit status:
 *   the guest's proc_exit code (0 when _start returns; codes outside 0..255
 *   become 255), 124 on --timeout (as timeout(1)), 134 on any other trap (as an
 *   aborted process, 128 + SIGABRT), 1 when the module cannot be compiled,
 *   linked or instantiated, 2 on a usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "abi/kiln/kiln_host.h"
#include "cli/cli.h"
#include "kiln/aot.h"
#include "kiln/kiln.h"
#include "kiln/runtime.h"
#include "kiln/wasi.h"

#define RUN_EXIT_ERROR 1
#define RUN_EXIT_USAGE 2
#define RUN_EXIT_TIMEOUT 124
#define RUN_EXIT_TRAP 134

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kiln run [options] module.wasm [args...]\n"
            "\n"
            "Run a WASI command module: compile it ahead of time (cached under\n"
            "$KILN_HOME/cache) and call its _start export. Options stop at the module.\n"
            "A wasi:cli/command component (e.g. made by `jco new --wasi-command`) runs\n"
            "its wasi:cli/run export with WASI 0.2 (args, env, stdio, clocks, random,\n"
            "and the --dir/--dir-ro preopens as wasi:filesystem).\n"
            "\n"
            "options:\n"
            "  --dir HOST[::GUEST]     preopen directory HOST, visible to the guest as GUEST\n"
            "                          (default: the same path)\n"
            "  --dir-ro HOST[::GUEST]  the same, read-only: every write fails with EROFS\n"
            "  --env KEY=VALUE         set a guest environment variable (--env KEY copies\n"
            "                          the host's value); the host environment is not inherited\n"
            "  --timeout MS            wall-clock limit for the whole run, in milliseconds\n"
            "  --max-memory SIZE       cap linear memory (e.g. 4MiB, 64m, 65536)\n"
            "  --max-stack SIZE        native stack for guest code (default 1MiB; deeper\n"
            "                          recursion traps with 'call stack exhausted')\n"
            "  -O0, -O1, -O2           optimisation level for compilation (default -O2)\n"
            "  --cc CC                 C compiler for compilation (default $KILN_CC or cc)\n"
            "  -h, --help              show this help\n"
            "\n"
            "exit status: the guest's exit code (255 if outside 0..255); 124 on timeout;\n"
            "134 on a trap; "
            "1 if the module cannot be compiled, linked or instantiated;\n"
            "2 on usage errors.\n");
}

typedef struct run_opts {
    kiln_wasi_preopen *preopens;
    size_t npreopens;
    const char **env;
    char **env_owned; /* entries this command allocated (--env KEY), else NULL */
    size_t envc;
    long long timeout_ms;
    long long max_memory;
    long long max_stack;
    int opt_level;
    const char *cc;
    const char *module;
    int argc; /* guest args after the module path */
    char **argv;
} run_opts;

/* Split "HOST::GUEST" in place (wasmtime's syntax); GUEST defaults to HOST. */
static void add_preopen(run_opts *o, char *spec, bool read_only)
{
    kiln_wasi_preopen *p = &o->preopens[o->npreopens++];
    char *sep = strstr(spec, "::");
    p->host_path = spec;
    p->guest_path = NULL;
    if (sep != NULL) {
        *sep = '\0';
        p->guest_path = sep + 2;
    }
    p->read_only = read_only;
}

/* Parse options; returns -1 to continue, else an exit status. */
static int parse(int argc, char **argv, run_opts *o)
{
    o->preopens = kiln_xcalloc((size_t)argc, sizeof(*o->preopens));
    o->env = kiln_xcalloc((size_t)argc, sizeof(*o->env));
    o->env_owned = kiln_xcalloc((size_t)argc, sizeof(*o->env_owned));
    o->opt_level = -1;
    int i = 1;
    for (; i < argc; i++) {
        char *a = argv[i];
        bool m;
        const char *v;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "-O0") == 0 || strcmp(a, "-O1") == 0 || strcmp(a, "-O2") == 0) {
            o->opt_level = a[2] - '0';
            continue;
        }
        static const char *const with_value[] = {"--dir-ro", "--dir",        "--env",
                                                 "--timeout", "--max-memory", "--cc",
                                                 "--max-stack"};
        size_t k;
        for (k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
            v = cli_opt_value(argc, argv, &i, with_value[k], &m);
            if (m)
                break;
        }
        if (k == sizeof(with_value) / sizeof(with_value[0])) {
            cli_error("run", "unknown option '%s'; see `kiln run --help`", a);
            return RUN_EXIT_USAGE;
        }
        if (v == NULL || *v == '\0') {
            cli_error("run", "option %s needs a value", with_value[k]);
            return RUN_EXIT_USAGE;
        }
        switch (k) {
        case 0:
        case 1:
            add_preopen(o, (char *)v, k == 0);
            if (o->preopens[o->npreopens - 1].host_path[0] == '\0') {
                cli_error("run", "%s '%s': empty host path", with_value[k], v);
                return RUN_EXIT_USAGE;
            }
            break;
        case 2:
            if (v[0] == '=') {
                cli_error("run", "--env '%s': expected KEY=VALUE or KEY", v);
                return RUN_EXIT_USAGE;
            }
            if (strchr(v, '=') == NULL) {
                /* `--env KEY` passes the host's value through, as wasmtime does. */
                const char *hv = getenv(v);
                if (hv == NULL)
                    break;
                size_t len = strlen(v) + strlen(hv) + 2;
                char *kv = kiln_xmalloc(len);
                snprintf(kv, len, "%s=%s", v, hv);
                o->env_owned[o->envc] = kv;
                v = kv;
            }
            o->env[o->envc++] = v;
            break;
        case 3:
            o->timeout_ms = cli_parse_uint(v, UINT32_MAX);
            if (o->timeout_ms <= 0) {
                cli_error("run", "--timeout '%s': expected milliseconds, 1..%u", v,
                          (unsigned)UINT32_MAX);
                return RUN_EXIT_USAGE;
            }
            break;
        case 4:
            o->max_memory = cli_parse_size(v);
            if (o->max_memory <= 0) {
                cli_error("run", "--max-memory '%s': expected a size such as 64MiB", v);
                return RUN_EXIT_USAGE;
            }
            break;
        case 5:
            o->cc = v;
            break;
        case 6:
            o->max_stack = cli_parse_size(v);
            if (o->max_stack < (64 << 10) || o->max_stack > (256LL << 20)) {
                cli_error("run", "--max-stack '%s': expected a size from 64KiB to 256MiB", v);
                return RUN_EXIT_USAGE;
            }
            break;
        }
    }
    if (i >= argc) {
        cli_error("run", "no module given; usage: kiln run [options] module.wasm [args...]");
        return RUN_EXIT_USAGE;
    }
    o->module = argv[i];
    o->argc = argc - i - 1;
    o->argv = argv + i + 1;
    return -1;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Map a failed call (or instantiation) to the process exit status. */
static int report_failure(const char *name, int rc, const kiln_err *err)
{
    /* proc_exit unwinds like a trap; the runtime reports it as KILN_EEXIT
     * (or KILN_ETRAP) with trap KILN_TRAP_EXIT. Not an error: pass it on. */
    if ((rc == KILN_EEXIT || rc == KILN_ETRAP) && err->trap == KILN_TRAP_EXIT) {
        /* The OS keeps only 8 bits; never let exit(256) read as success. */
        if (err->exit_code < 0 || err->exit_code > 255)
            return 255;
        return err->exit_code;
    }
    if (rc == KILN_ETIMEOUT || (rc == KILN_ETRAP && err->trap == KILN_TRAP_TIMEOUT)) {
        fprintf(stderr, "kiln run: %s: trap: timeout (%s)\n", name,
                kiln_trap_name(KILN_TRAP_TIMEOUT));
        return RUN_EXIT_TIMEOUT;
    }
    if (rc == KILN_ETRAP) {
        /* The runtime's message usually restates the trap name; show it only
         * when it carries more (e.g. which limit was hit). */
        const char *tn = kiln_trap_name(err->trap);
        if (err->msg[0] != '\0' && strstr(err->msg, tn) == NULL)
            fprintf(stderr, "kiln run: %s: trap: %s (%s)\n", name, tn, err->msg);
        else
            fprintf(stderr, "kiln run: %s: trap: %s\n", name, tn);
        return RUN_EXIT_TRAP;
    }
    fprintf(stderr, "kiln run: %s\n", err->msg[0] ? err->msg : kiln_strerror(rc));
    return RUN_EXIT_ERROR;
}

int cmd_run(int argc, char **argv)
{
    run_opts o;
    memset(&o, 0, sizeof(o));
    int status = parse(argc, argv, &o);
    if (status >= 0)
        goto out_opts;
    status = RUN_EXIT_ERROR;

    /* A guest writing into a closed pipe gets EPIPE, not a dead host. */
    signal(SIGPIPE, SIG_IGN);

    const char *name = base_name(o.module);
    kiln_err err;
    memset(&err, 0, sizeof(err));
    kiln_linker *linker = NULL;
    kiln_module *mod = NULL;
    kiln_instance_pre *pre = NULL;
    kiln_wasi *wasi = NULL;
    kiln_instance *inst = NULL;
    const char **gargv = NULL;

    bool component = cli_file_is_component(o.module);
    size_t nfns;
    const kiln_hostfn *fns = kiln_wasi_hostfns(&nfns);
    int rc = KILN_OK;
    if (component)
        goto wasi_ctx; /* its core modules are linked by the component itself */
    rc = kiln_linker_new(&linker);
    if (rc == KILN_OK)
        rc = kiln_linker_define_host(linker, fns, nfns);
    /* Kiln's own host module links too, so guests built with sdk/c/kiln.h
     * run; outside `kiln serve` there is no store or HTTP policy and its
     * calls answer KILN_HOST_EUNAVAILABLE. */
    if (rc == KILN_OK)
        rc = kiln_host_define(linker);
    if (rc != KILN_OK) {
        cli_error("run", "cannot set up the WASI linker: %s", kiln_strerror(rc));
        goto out;
    }

    /* Imports are checked against the linker before anything is compiled, so
     * a module needing more than WASI fails fast, naming every missing import. */
    kiln_aot_options aopts;
    memset(&aopts, 0, sizeof(aopts));
    aopts.cc = o.cc;
    aopts.opt_level = o.opt_level;
    aopts.imports = linker;
    rc = kiln_aot_load_file(o.module, &aopts, &mod, &err);
    if (rc != KILN_OK) {
        status = report_failure(name, rc, &err);
        goto out;
    }
    if (kiln_module_find_export(mod, "_start", KILN_EXTERN_FUNC) < 0) {
        if (kiln_module_find_export(mod, "_initialize", KILN_EXTERN_FUNC) >= 0)
            cli_error("run",
                      "%s: is a reactor (exports _initialize, no _start) and cannot be run as "
                      "a command; call its exports from an embedder instead",
                      name);
        else
            cli_error("run", "%s: has no _start export; build it as a WASI command", name);
        goto out;
    }
    rc = kiln_instance_pre_new(mod, linker, &pre, &err);
    if (rc != KILN_OK) {
        status = report_failure(name, rc, &err);
        goto out;
    }

wasi_ctx:
    gargv = kiln_xcalloc((size_t)o.argc + 1, sizeof(*gargv));
    gargv[0] = name;
    for (int i = 0; i < o.argc; i++)
        gargv[i + 1] = o.argv[i];
    kiln_wasi_config wcfg;
    memset(&wcfg, 0, sizeof(wcfg));
    wcfg.argv = gargv;
    wcfg.argc = (size_t)o.argc + 1;
    wcfg.env = o.env;
    wcfg.envc = o.envc;
    wcfg.preopens = o.preopens;
    wcfg.npreopens = o.npreopens;
    rc = kiln_wasi_new(&wcfg, &wasi, &err);
    if (rc != KILN_OK) {
        status = report_failure(name, rc, &err);
        goto out;
    }

    kiln_limits limits;
    memset(&limits, 0, sizeof(limits));
    limits.max_memory_bytes = (uint64_t)o.max_memory;
    limits.timeout_ms = (uint32_t)o.timeout_ms;
    limits.max_stack_bytes = (uint32_t)o.max_stack;
    if (component) {
        /* wasi:cli/run through WASI 0.2 over the same preview-1 context. */
        rc = cli_run_component(o.module, wasi, &limits, &err);
        status = rc == KILN_OK ? 0 : report_failure(name, rc, &err);
        goto out;
    }
    void *state[KILN_STATE_SLOTS] = {0};
    state[KILN_STATE_WASI] = wasi;
    rc = kiln_instance_new(pre, &limits, state, &inst, &err);
    if (rc == KILN_OK)
        rc = kiln_instance_call(inst, "_start", ">", NULL, NULL, &err);
    status = rc == KILN_OK ? 0 : report_failure(name, rc, &err);

out:
    kiln_instance_free(inst);
    kiln_wasi_free(wasi);
    kiln_free(gargv);
    if (pre != NULL)
        kiln_instance_pre_free(pre);
    if (mod != NULL)
        kiln_module_release(mod);
    if (linker != NULL)
        kiln_linker_free(linker);
out_opts:
    kiln_free(o.preopens);
    for (size_t i = 0; i < o.envc; i++)
        kiln_free(o.env_owned[i]);
    kiln_free(o.env_owned);
    kiln_free(o.env);
    fflush(stdout);
    return status;
}
