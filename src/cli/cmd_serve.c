/*
 * cmd_serve.c - `kiln serve`: run the HTTP server (src/http) over a
 * directory of modules or a configuration file. A thin front end: option
 * parsing and the exit status only.
 *
 * Exit status: 0 after SIGTERM/SIGINT and a clean drain, 1 when the server
 * cannot start (configuration error, address in use), 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "http/http.h"
#include "kiln/handler.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kiln serve [options] DIR\n"
            "       kiln serve [options] --config FILE\n"
            "\n"
            "Serve WebAssembly functions over HTTP. With DIR, every *.wasm in it is served\n"
            "with its ABI detected: a WASI command at /<name> (CGI: the request body on\n"
            "stdin, CGI variables in the environment, a CGI response on stdout), each\n"
            "exported () -> i32 function of an Extism or Otoroshi plugin at\n"
            "/<name>/<export>. With --config, a YAML or JSON file lists functions and\n"
            "routes (see README.md, \"Configuration\"). Modules are compiled at start-up\n"
            "(cached under $KILN_HOME/cache); every request runs in a fresh instance.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE   configuration file (.yaml, .yml or .json)\n"
            "  -l, --listen ADDR:PORT\n"
            "                      address to listen on (default 127.0.0.1:8080; port 0\n"
            "                      picks a free port, printed at start-up)\n"
            "  -t, --threads N     worker threads running the guests (default: one per core)\n"
            "  -q, --quiet         no access log\n"
            "  -O0, -O1, -O2       optimisation level for compilation (default -O2)\n"
            "  --cc CC             C compiler for compilation (default $KILN_CC or cc)\n"
            "  --no-tiers          compile every module with -O/--cc before serving, instead\n"
            "                      of listening at once and compiling in the background (a\n"
            "                      fast tcc tier first, then -O2; 503 'compiling' meanwhile)\n"
            "  --domain DOMAIN     directory functions also answer on NAME.DOMAIN (default\n"
            "                      localhost; '' turns host routing off)\n"
            "  --admin-listen ADDR:PORT|off\n"
            "                      admin API for `kiln deploy` (default 127.0.0.1:8081; never\n"
            "                      the public port). Deployed functions live in\n"
            "                      $KILN_HOME/functions and are served next to DIR/--config\n"
            "  --admin-token TOKEN admin API bearer token (default $KILN_ADMIN_TOKEN, else\n"
            "                      $KILN_HOME/admin.token, generated at first start)\n"
            "  -h, --help          show this help\n"
            "\n"
            "signals: SIGHUP reloads the configuration (or rescans DIR); SIGTERM or SIGINT\n"
            "stop accepting connections, finish the requests in flight, and exit 0.\n");
}

/* Value of "--name VALUE", "--name=VALUE" or "-n VALUE"; *matched tells if argv[*i] was it. */
static const char *opt_value(int argc, char **argv, int *i, const char *lng, const char *shrt,
                             bool *matched)
{
    const char *a = argv[*i];
    size_t n = strlen(lng);
    *matched = false;
    if (strncmp(a, lng, n) == 0 && a[n] == '=') {
        *matched = true;
        return a + n + 1;
    }
    if (strcmp(a, lng) != 0 && (shrt == NULL || strcmp(a, shrt) != 0))
        return NULL;
    *matched = true;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The admin API sees the server through these (admin does not include http). */
static void be_status(void *ctx, const char *name, admin_fn_status *out)
{
    http_fn_status st;
    memset(&st, 0, sizeof(st));
    http_server_fn_status(ctx, name, &st);
    memset(out, 0, sizeof(*out));
    out->found = st.found;
    out->available = st.available;
    out->compiling = st.compiling;
    snprintf(out->tier, sizeof(out->tier), "%s", st.tier);
    snprintf(out->module_hash, sizeof(out->module_hash), "%s", st.module_hash);
    snprintf(out->abi, sizeof(out->abi), "%s", st.abi);
    snprintf(out->error, sizeof(out->error), "%s", st.error);
    out->n_routes = st.n_routes;
    snprintf(out->snapshot, sizeof(out->snapshot), "%s", st.snapshot);
}

static size_t be_names(void *ctx, char ***out)
{
    return http_server_fn_names(ctx, out);
}

static void be_rescan(void *ctx)
{
    http_server_rescan(ctx);
}

static char *be_events_dead(void *ctx)
{
    return http_server_events_dead(ctx, 1000);
}

static void on_started(http_server *s, void *arg)
{
    admin_backend b = {.fn_status = be_status,
                       .fn_names = be_names,
                       .rescan = be_rescan,
                       .ctx = s,
                       .events_dead = be_events_dead};
    kiln_err err;
    memset(&err, 0, sizeof(err));
    if (admin_start(arg, &b, &err) != KILN_OK)
        cli_error("serve", "%s", err.msg);
}

static void on_stopping(http_server *s, void *arg)
{
    (void)s;
    admin_stop(arg);
}

int cmd_serve(int argc, char **argv)
{
    const char *admin_listen = NULL, *admin_token = NULL;
    http_options o;
    memset(&o, 0, sizeof(o));
    o.quiet = -1;
    o.aot.opt_level = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool m;
        const char *v;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o.quiet = 1;
            continue;
        }
        if (strcmp(a, "-O0") == 0 || strcmp(a, "-O1") == 0 || strcmp(a, "-O2") == 0) {
            o.aot.opt_level = a[2] - '0';
            continue;
        }
        if (strcmp(a, "--no-tiers") == 0) {
            o.no_tiers = true;
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--domain", NULL, &m)) != NULL || m) {
            o.domain = v ? v : "";
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--config", "-c", &m)) != NULL || m) {
            if (v == NULL || *v == '\0')
                goto missing;
            o.config_path = v;
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--listen", "-l", &m)) != NULL || m) {
            if (v == NULL || *v == '\0')
                goto missing;
            o.listen = v;
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--threads", "-t", &m)) != NULL || m) {
            char *end;
            long n = v ? strtol(v, &end, 10) : 0;
            if (v == NULL || *v == '\0' || *end != '\0' || n < 1 || n > 1024) {
                cli_error("serve", "--threads '%s': expected a number from 1 to 1024",
                          v ? v : "");
                return 2;
            }
            o.threads = (unsigned)n;
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--admin-listen", NULL, &m)) != NULL || m) {
            if (v == NULL || *v == '\0')
                goto missing;
            admin_listen = v;
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--admin-token", NULL, &m)) != NULL || m) {
            if (v == NULL || *v == '\0')
                goto missing;
            admin_token = v;
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--cc", NULL, &m)) != NULL || m) {
            if (v == NULL || *v == '\0')
                goto missing;
            o.aot.cc = v;
            continue;
        }
        if (a[0] == '-') {
            cli_error("serve", "unknown option '%s'; see `kiln serve --help`", a);
            return 2;
        }
        if (o.dir != NULL) {
            cli_error("serve", "one directory only ('%s' and '%s')", o.dir, a);
            return 2;
        }
        o.dir = a;
        continue;
    missing:
        cli_error("serve", "option %s needs a value", a);
        return 2;
    }
    if ((o.dir == NULL) == (o.config_path == NULL)) {
        cli_error("serve", o.dir ? "give a directory or --config, not both"
                                 : "nothing to serve; usage: kiln serve DIR | --config FILE");
        return 2;
    }
    if (admin_listen != NULL && o.listen != NULL && strcmp(admin_listen, o.listen) == 0 &&
        strcmp(admin_listen, "off") != 0 && !ends_with(admin_listen, ":0")) {
        cli_error("serve", "--admin-listen must differ from --listen: the admin API never "
                           "shares the public port");
        return 2;
    }
    kiln_err err;
    memset(&err, 0, sizeof(err));
    /* The registry and the admin listener come first: the managed directory
     * is repaired before the server reads it, and a busy admin address fails
     * the start instead of leaving a server nobody can deploy to. */
    admin_options ao = {NULL, admin_listen, admin_token};
    admin_server *admin = NULL;
    if (admin_create(&ao, &admin, &err) != KILN_OK) {
        cli_error("serve", "%s", err.msg);
        return 1;
    }
    o.managed_dir = admin_managed_dir(admin);
    o.on_started = on_started;
    o.on_stopping = on_stopping;
    o.hook_arg = admin;
    int status = http_serve(&o, &err);
    if (status != 0)
        cli_error("serve", "%s", err.msg[0] ? err.msg : kiln_strerror(err.code));
    admin_destroy(admin);
    return status;
}
