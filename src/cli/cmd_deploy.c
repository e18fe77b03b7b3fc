/*
 * cmd_deploy.c - `kiln deploy`, `kiln ls`, `kiln rm`, `kiln rollback`: thin
 * clients of a running server's admin API (src/admin, libcurl here). The
 * server does every check; these commands build the request and print the
 * answer.
 *
 * Exit status: 0 done; 1 the server refused or the operation failed (its
 * message is printed); 2 usage error; 3 the admin API cannot be reached (no
 * server running there); 4 the token was missing or wrong (401).
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/registry.h"
#include "cli/cli.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_UNAUTHORIZED 4
#define MAX_ANSWER ((size_t)16 << 20)

typedef struct client {
    const char *cmd;
    char base[1024]; /* admin URL without a trailing '/' */
    char token[512];
    bool json;       /* print the server's JSON as is */
} client;

typedef struct buf {
    char *p;
    size_t len;
} buf;

static size_t on_data(char *d, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    size_t k = size * n;
    if (b->len + k > MAX_ANSWER)
        return 0;
    char *p = realloc(b->p, b->len + k + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->len, d, k);
    b->len += k;
    p[b->len] = '\0';
    b->p = p;
    return k;
}

static void common_help(FILE *f)
{
    fprintf(f,
            "  --admin URL          the server's admin API (default $KILN_ADMIN or\n"
            "                       " ADMIN_DEFAULT_URL ")\n"
            "  --token TOKEN        admin token (default $KILN_TOKEN, else\n"
            "                       $KILN_HOME/admin.token as written by `kiln serve`)\n"
            "  --json               print the server's JSON answer\n"
            "\n"
            "exit status: 0 done, 1 refused or failed (the server's message is printed),\n"
            "2 usage, 3 admin API unreachable (is `kiln serve` running?), 4 bad token.\n");
}

/* Handle --admin, --token, --json at argv[*i]; 1 = consumed, 0 = not ours, -1 = error. */
static int common_opt(client *c, int argc, char **argv, int *i)
{
    bool m;
    const char *v;
    if (strcmp(argv[*i], "--json") == 0) {
        c->json = true;
        return 1;
    }
    if ((v = cli_opt_value(argc, argv, i, "--admin", &m)) != NULL || m) {
        if (v == NULL || *v == '\0')
            goto missing;
        snprintf(c->base, sizeof(c->base), "%s", v);
        return 1;
    }
    if ((v = cli_opt_value(argc, argv, i, "--token", &m)) != NULL || m) {
        if (v == NULL || *v == '\0')
            goto missing;
        snprintf(c->token, sizeof(c->token), "%s", v);
        return 1;
    }
    return 0;
missing:
    cli_error(c->cmd, "option %s needs a value", argv[*i]);
    return -1;
}

static void client_init(client *c, const char *cmd)
{
    memset(c, 0, sizeof(*c));
    c->cmd = cmd;
    const char *e = getenv("KILN_ADMIN");
    snprintf(c->base, sizeof(c->base), "%s", e && *e ? e : ADMIN_DEFAULT_URL);
    e = getenv("KILN_TOKEN");
    if (e && *e)
        snprintf(c->token, sizeof(c->token), "%s", e);
}

/* After option parsing: the token file as the last resort, trim the URL. */
static void client_finish(client *c)
{
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    if (c->token[0] != '\0')
        return;
    char home[4096], path[4200];
    if (admin_home(home, sizeof(home)) != KILN_OK)
        return;
    snprintf(path, sizeof(path), "%s/admin.token", home);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    if (fgets(c->token, sizeof(c->token), f) == NULL)
        c->token[0] = '\0';
    fclose(f);
    c->token[strcspn(c->token, "\r\n")] = '\0';
}

/*
 * One request. Returns 0 with *status and *answer (parsed JSON, or NULL when
 * the body was not JSON), or an exit code after printing why.
 */
static int call(client *c, const char *method, const char *path, const void *body, size_t len,
                const char *content_type, const char *settings, long timeout_s, long *status,
                json_t **answer)
{
    *answer = NULL;
    *status = 0;
    CURL *h = curl_easy_init();
    if (h == NULL) {
        cli_error(c->cmd, "cannot start libcurl");
        return EXIT_REFUSED;
    }
    char url[2048], auth[600], ct[128], sh[REG_MAX_SETTINGS + 32];
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    struct curl_slist *hdrs = NULL;
    if (c->token[0]) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        hdrs = curl_slist_append(hdrs, ct);
    }
    if (settings) {
        snprintf(sh, sizeof(sh), "X-Kiln-Settings: %s", settings);
        hdrs = curl_slist_append(hdrs, sh);
    }
    buf b = {NULL, 0};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK && *status == 0) {
        free(b.p);
        cli_error(c->cmd, "cannot reach the admin API at %s: %s; is `kiln serve` running? (set "
                  "the URL with --admin or KILN_ADMIN)", c->base,
                  errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return EXIT_UNREACHABLE;
    }
    if (b.p != NULL)
        *answer = json_loadb(b.p, b.len, 0, NULL);
    if (c->json && b.p != NULL)
        fputs(b.p, stdout);
    free(b.p);
    if (*status == 401) {
        cli_error(c->cmd, "the admin API at %s refused the token (401): %s; pass the server's "
                  "token with --token or KILN_TOKEN (it is in the server's "
                  "$KILN_HOME/admin.token)", c->base, c->token[0] ? "wrong token" : "no token");
        json_decref(*answer);
        *answer = NULL;
        return EXIT_UNAUTHORIZED;
    }
    if (*status >= 400) {
        const char *msg = json_string_value(json_object_get(*answer, "error"));
        cli_error(c->cmd, "%s", msg ? msg : "the admin API answered an error");
        if (msg == NULL)
            fprintf(stderr, "  (HTTP %ld from %s)\n", *status, url);
        json_decref(*answer);
        *answer = NULL;
        return EXIT_REFUSED;
    }
    return 0;
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/* ---- kiln deploy ---------------------------------------------------------- */

/* --wait or --wait=SECONDS: 1 when `a` is one (wait_s set), 0 when not, -1
 * on a bad value (reported). */
static int parse_wait(const char *cmd, const char *a, int *wait_s)
{
    if (strcmp(a, "--wait") == 0) {
        *wait_s = ADMIN_DEFAULT_WAIT_S;
        return 1;
    }
    if (strncmp(a, "--wait=", 7) != 0)
        return 0;
    long long w = cli_parse_uint(a + 7, ADMIN_MAX_WAIT_S);
    if (w < 0) {
        cli_error(cmd, "--wait=SECONDS: 0 to %d", ADMIN_MAX_WAIT_S);
        return -1;
    }
    *wait_s = (int)w;
    return 1;
}

static void deploy_usage(FILE *f)
{
    fprintf(f,
            "usage: kiln deploy [options] NAME module.wasm\n"
            "\n"
            "Upload a module to a running `kiln serve` as a new version of function NAME and\n"
            "make it active. The server refuses a malformed module or bad settings before\n"
            "anything changes; a version that fails to compile never replaces a serving one.\n"
            "\n"
            "settings (as the keys of a function in kiln.yaml):\n"
            "  --route PATH         a route (repeat); default: derived from the module\n"
            "  --abi ABI            wasi | extism | otoroshi | component | auto\n"
            "  --export NAME        the export to call\n"
            "  --env K=V            environment variable (repeat)\n"
            "  --config K=V         config entry (repeat)\n"
            "  --allow-host H       outbound HTTP allow-list entry (repeat)\n"
            "  --max-memory SIZE    linear memory limit (e.g. 16MiB)\n"
            "  --timeout DURATION   time limit per request (e.g. 2s)\n"
            "  --max-stack SIZE     guest stack\n"
            "  --settings FILE      a JSON object of any other function keys (kv grants,\n"
            "                       limits, ...); the options above override it\n"
            "  --wait[=SECONDS]     wait until the server serves it or refuses it (default\n"
            "                       30 s); without it, return once it is recorded\n");
    common_help(f);
}

static int kv_into(json_t *settings, const char *key, const char *kv, const char *opt)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
        cli_error("deploy", "%s '%s': expected KEY=VALUE", opt, kv);
        return -1;
    }
    json_t *o = json_object_get(settings, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(settings, key, o);
    }
    char k[256];
    snprintf(k, sizeof(k), "%.*s", (int)(eq - kv), kv);
    json_object_set_new(o, k, json_string(eq + 1));
    return 0;
}

static void append_to(json_t *settings, const char *key, const char *v)
{
    json_t *a = json_object_get(settings, key);
    if (!json_is_array(a)) {
        a = json_array();
        json_object_set_new(settings, key, a);
    }
    json_array_append_new(a, json_string(v));
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *p = malloc(cap);
    while (p != NULL) {
        size_t r = fread(p + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            if (cap > ADMIN_MAX_UPLOAD * 2)
                break;
            uint8_t *q = realloc(p, cap * 2);
            if (q == NULL) {
                free(p);
                p = NULL;
            }
            p = q;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return p;
}

/* The settings document being built is *sp, owned by the caller. */
static int deploy_run(int argc, char **argv, json_t **sp)
{
    client c;
    client_init(&c, "deploy");
    const char *name = NULL, *module = NULL, *settings_file = NULL;
    int wait_s = 0;
    json_t *s = *sp;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool m;
        const char *v;
        int r = common_opt(&c, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            deploy_usage(stdout);
            return 0;
        }
        if ((r = parse_wait("deploy", a, &wait_s)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            continue;
        }
        static const struct {
            const char *opt, *key;
            char kind; /* s string, a array entry, m map entry */
        } opts[] = {{"--route", "routes", 'a'},       {"--abi", "abi", 's'},
                    {"--export", "export", 's'},      {"--env", "env", 'm'},
                    {"--config", "config", 'm'},      {"--allow-host", "allowed_hosts", 'a'},
                    {"--max-memory", "max_memory", 's'}, {"--timeout", "timeout", 's'},
                    {"--max-stack", "max_stack", 's'}, {"--settings", NULL, 'f'}};
        bool done = false;
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && !done; k++) {
            if ((v = cli_opt_value(argc, argv, &i, opts[k].opt, &m)) == NULL && !m)
                continue;
            done = true;
            if (v == NULL || *v == '\0') {
                cli_error("deploy", "option %s needs a value", opts[k].opt);
                return EXIT_USAGE;
            }
            if (opts[k].kind == 's')
                json_object_set_new(s, opts[k].key, json_string(v));
            else if (opts[k].kind == 'a')
                append_to(s, opts[k].key, v);
            else if (opts[k].kind == 'm' && kv_into(s, opts[k].key, v, opts[k].opt) != 0)
                return EXIT_USAGE;
            else if (opts[k].kind == 'f')
                settings_file = v;
        }
        if (done)
            continue;
        if (a[0] == '-') {
            cli_error("deploy", "unknown option '%s'; see `kiln deploy --help`", a);
            return EXIT_USAGE;
        }
        if (name == NULL)
            name = a;
        else if (module == NULL)
            module = a;
        else {
            cli_error("deploy", "unexpected argument '%s'; usage: kiln deploy NAME module.wasm",
                      a);
            return EXIT_USAGE;
        }
    }
    if (name == NULL || module == NULL) {
        cli_error("deploy", "usage: kiln deploy [options] NAME module.wasm (see --help)");
        return EXIT_USAGE;
    }
    if (!reg_name_ok(name)) {
        cli_error("deploy", "bad function name '%s': use 1 to %d letters, digits, '_', '-', "
                  "'.', not starting with '.'", name, REG_MAX_NAME);
        return EXIT_USAGE;
    }
    if (settings_file != NULL) {
        json_error_t je;
        json_t *base = json_load_file(settings_file, 0, &je);
        if (!json_is_object(base)) {
            cli_error("deploy", "%s: expected a JSON object of function keys: %s",
                      settings_file, base ? "not an object" : je.text);
            json_decref(base);
            return EXIT_USAGE;
        }
        json_object_update(base, s); /* the options win */
        json_decref(s);
        *sp = s = base;
    }
    size_t len = 0;
    uint8_t *wasm = read_file(module, &len);
    if (wasm == NULL) {
        cli_error("deploy", "cannot read %s: %s", module, strerror(errno));
        return EXIT_USAGE;
    }
    if (len > ADMIN_MAX_UPLOAD) {
        cli_error("deploy", "%s is over the upload limit of %zu bytes", module, ADMIN_MAX_UPLOAD);
        free(wasm);
        return EXIT_REFUSED;
    }
    char *settings = json_dumps(s, JSON_COMPACT | JSON_ENSURE_ASCII);
    client_finish(&c);
    char path[256];
    snprintf(path, sizeof(path), "/functions/%s?wait=%d", name, wait_s);
    long status;
    json_t *ans;
    int rc = call(&c, "PUT", path, wasm, len, "application/wasm", settings, wait_s + 60L, &status,
                  &ans);
    free(wasm);
    free(settings);
    if (rc != 0)
        return rc;
    const char *st = str_or(ans, "status", "?");
    if (!c.json) {
        const char *sha = str_or(ans, "sha256", "");
        printf("deployed %s version %lld (sha256 %.12s), status %s", name,
               (long long)json_integer_value(json_object_get(ans, "version")), sha, st);
        if (json_is_string(json_object_get(ans, "tier")))
            printf(", tier %s", str_or(ans, "tier", ""));
        printf("\n");
    }
    rc = 0;
    if (wait_s > 0 && strcmp(st, "serving") != 0) {
        cli_error("deploy", "version %lld is %s after %d s; `kiln ls` shows its status",
                  (long long)json_integer_value(json_object_get(ans, "version")), st, wait_s);
        rc = EXIT_REFUSED;
    }
    json_decref(ans);
    return rc;
}

int cmd_deploy(int argc, char **argv)
{
    json_t *s = json_object();
    int rc = deploy_run(argc, argv, &s);
    json_decref(s);
    return rc;
}

/* ---- kiln ls ---------------------------------------------------------------- */

int cmd_ls(int argc, char **argv)
{
    client c;
    client_init(&c, "ls");
    bool all = false;
    for (int i = 1; i < argc; i++) {
        int r = common_opt(&c, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: kiln ls [--all] [options]\n\n"
                   "List the deployed functions of a running `kiln serve`: active version,\n"
                   "status (serving, compiling, updating, failed, pending, unavailable), tier,\n"
                   "snapshot image (loaded from the cache, built, memory; - without snapshot),\n"
                   "routes and the last error. --all includes undeployed functions.\n\n");
            common_help(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--all") == 0 || strcmp(argv[i], "-a") == 0) {
            all = true;
            continue;
        }
        cli_error("ls", "unknown argument '%s'; see `kiln ls --help`", argv[i]);
        return EXIT_USAGE;
    }
    client_finish(&c);
    long status;
    json_t *ans;
    int rc = call(&c, "GET", all ? "/functions?all=1" : "/functions", NULL, 0, NULL, NULL, 30,
                  &status, &ans);
    if (rc != 0 || c.json) {
        json_decref(ans);
        return rc;
    }
    json_t *fns = json_object_get(ans, "functions");
    if (json_array_size(fns) == 0) {
        printf("no functions deployed\n");
        json_decref(ans);
        return 0;
    }
    printf("%-24s %7s  %-11s %-10s %-8s %-10s %s\n", "NAME", "VERSION", "STATUS", "TIER",
           "SNAPSHOT", "ABI", "ROUTES");
    size_t i;
    json_t *f;
    json_array_foreach(fns, i, f) {
        char routes[512] = "";
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(f, "routes"), k, r) {
            const char *p = json_is_string(r) ? json_string_value(r)
                                              : str_or(r, "path", "?");
            size_t n = strlen(routes);
            snprintf(routes + n, sizeof(routes) - n, "%s%s", n ? "," : "", p);
        }
        if (routes[0] == '\0') {
            json_int_t n = json_integer_value(json_object_get(f, "n_routes"));
            snprintf(routes, sizeof(routes), "(auto: %lld)", (long long)n);
        }
        json_t *av = json_object_get(f, "active_version");
        char ver[32];
        snprintf(ver, sizeof(ver), json_is_integer(av) ? "%lld" : "-",
                 (long long)json_integer_value(av));
        printf("%-24s %7s  %-11s %-10s %-8s %-10s %s\n", str_or(f, "name", "?"), ver,
               str_or(f, "status", "?"), str_or(f, "tier", "-"), str_or(f, "snapshot", "-"),
               str_or(f, "abi", "-"), routes);
        const char *e = json_string_value(json_object_get(f, "error"));
        if (e != NULL)
            printf("    error: %s\n", e);
    }
    json_decref(ans);
    return 0;
}

/* ---- kiln rm ------------------------------------------------------------------ */

int cmd_rm(int argc, char **argv)
{
    client c;
    client_init(&c, "rm");
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        int r = common_opt(&c, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: kiln rm [options] NAME\n\n"
                   "Undeploy NAME from a running `kiln serve`: it stops being served; its\n"
                   "versions are kept (`kiln rollback NAME` brings the newest back).\n\n");
            common_help(stdout);
            return 0;
        }
        if (argv[i][0] == '-' || name != NULL) {
            cli_error("rm", "unexpected argument '%s'; usage: kiln rm NAME", argv[i]);
            return EXIT_USAGE;
        }
        name = argv[i];
    }
    if (name == NULL || !reg_name_ok(name)) {
        cli_error("rm", "usage: kiln rm [options] NAME (a function name)");
        return EXIT_USAGE;
    }
    client_finish(&c);
    char path[128];
    snprintf(path, sizeof(path), "/functions/%s", name);
    long status;
    json_t *ans;
    int rc = call(&c, "DELETE", path, NULL, 0, NULL, NULL, 30, &status, &ans);
    if (rc == 0 && !c.json)
        printf("undeployed %s (%lld versions kept)\n", name,
               (long long)json_integer_value(json_object_get(ans, "versions_kept")));
    json_decref(ans);
    return rc;
}

/* ---- kiln rollback -------------------------------------------------------------- */

int cmd_rollback(int argc, char **argv)
{
    client c;
    client_init(&c, "rollback");
    const char *name = NULL, *version = NULL;
    int wait_s = 0;
    for (int i = 1; i < argc; i++) {
        int r = common_opt(&c, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: kiln rollback [options] NAME [VERSION]\n\n"
                   "Make an earlier version of NAME active again: VERSION, or the one before\n"
                   "the active version (for an undeployed function: its newest).\n"
                   "  --wait[=SECONDS]     wait until the server serves it (default 30 s)\n");
            common_help(stdout);
            return 0;
        }
        if ((r = parse_wait("rollback", a, &wait_s)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            continue;
        }
        if (a[0] == '-' || version != NULL) {
            cli_error("rollback", "unexpected argument '%s'; usage: kiln rollback NAME [VERSION]",
                      a);
            return EXIT_USAGE;
        }
        if (name == NULL)
            name = a;
        else
            version = a;
    }
    long long v = version ? cli_parse_uint(version, 1LL << 53) : 0;
    if (name == NULL || !reg_name_ok(name) || v < 0 || (version && v == 0)) {
        cli_error("rollback", "usage: kiln rollback [options] NAME [VERSION] (VERSION a "
                  "number from `kiln ls`)");
        return EXIT_USAGE;
    }
    client_finish(&c);
    char path[160], body[64];
    snprintf(path, sizeof(path), "/functions/%s/rollback?wait=%d", name, wait_s);
    snprintf(body, sizeof(body), "{\"version\": %lld}", v);
    long status;
    json_t *ans;
    int rc = call(&c, "POST", path, v ? body : NULL, v ? strlen(body) : 0, "application/json",
                  NULL, wait_s + 60L, &status, &ans);
    if (rc != 0)
        return rc;
    const char *st = str_or(ans, "status", "?");
    if (!c.json) {
        json_t *pv = json_object_get(ans, "previous_version");
        char was[32] = "undeployed";
        if (json_is_integer(pv))
            snprintf(was, sizeof(was), "version %lld", (long long)json_integer_value(pv));
        printf("%s: version %lld active (was %s), status %s\n", name,
               (long long)json_integer_value(json_object_get(ans, "version")), was, st);
    }
    if (wait_s > 0 && strcmp(st, "serving") != 0)
        rc = EXIT_REFUSED;
    json_decref(ans);
    return rc;
}
