/*
 * cmd_compile.c - `kiln compile`: compile one module ahead of time into the
 * artifact cache (or find it there) through kiln_aot_compile_file, and say
 * where the .so is. All the work and all the checks live in src/aot.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "kiln/aot.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln compile [-O0|-O1|-O2] [--cc clang|gcc|tcc|PATH] [--tier fast|optimized]\n"
               "                    [--force] [--cache-only] [--cache DIR] module.wasm\n"
               "\n"
               "Translate a module with wasm2c and compile it into a shared object in the\n"
               "artifact cache, keyed by content; a cached artifact is reused.\n"
               "\n"
               "options:\n"
               "  -O0, -O1, -O2  C optimisation level (default -O2)\n"
               "  --cc CC        C compiler: clang, gcc, tcc or a path (default $KILN_CC, else cc);\n"
               "                 tcc builds about 10x faster, its code runs 4-13x slower\n"
               "  --tier T       fast: $KILN_AOT_FAST_CC, else tcc; optimized: CC at -O2\n"
               "  --force        recompile even when the artifact is cached, or when an\n"
               "                 earlier failure of this module and compiler is remembered\n"
               "  --cache-only   compile nothing: succeed only if the artifact is cached\n"
               "  --cache DIR    cache directory (default $KILN_HOME/cache, ~/.kiln/cache)\n"
               "  -h, --help     show this help\n");
}

/*
 * Take the value of `--name VALUE` or `--name=VALUE` at argv[*i]. Returns 1
 * when argv[*i] is this option (with *value set, *i advanced past a separate
 * value), 0 when it is not, and -1 (after printing why) when the value is
 * missing or empty.
 */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
    } else if (a[n] == '\0') {
        if (*i + 1 >= argc) {
            cli_error("compile", "option %s needs a value; see `kiln compile --help`", name);
            return -1;
        }
        *value = argv[++*i];
    } else {
        return 0; /* a longer option that merely starts with `name` */
    }
    if (**value == '\0') {
        cli_error("compile", "option %s needs a non-empty value", name);
        return -1;
    }
    return 1;
}

int cmd_compile(int argc, char **argv)
{
    kiln_aot_options opts = {.opt_level = -1};
    const char *path = NULL, *tier = NULL;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int got;
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (path != NULL) {
                cli_error("compile", "more than one module given ('%s' and '%s'); "
                                     "compile one at a time", path, a);
                return 2;
            }
            path = a;
        } else if (strcmp(a, "--") == 0) {
            options_done = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-O0") == 0 || strcmp(a, "-O1") == 0 || strcmp(a, "-O2") == 0) {
            opts.opt_level = a[2] - '0';
        } else if (strcmp(a, "--force") == 0) {
            opts.force = true;
        } else if (strcmp(a, "--cache-only") == 0) {
            opts.cache_only = true;
        } else if ((got = option_value(argc, argv, &i, "--tier", &tier)) != 0) {
            if (got < 0)
                return 2;
            if (strcmp(tier, "fast") == 0) {
                opts.tier = KILN_AOT_TIER_FAST;
            } else if (strcmp(tier, "optimized") == 0 || strcmp(tier, "optimised") == 0) {
                opts.tier = KILN_AOT_TIER_OPTIMIZED;
            } else {
                cli_error("compile", "unknown tier '%s'; use fast or optimized", tier);
                return 2;
            }
        } else if ((got = option_value(argc, argv, &i, "--cc", &opts.cc)) != 0) {
            if (got < 0)
                return 2;
        } else if ((got = option_value(argc, argv, &i, "--cache", &opts.cache_dir)) != 0) {
            if (got < 0)
                return 2;
        } else {
            cli_error("compile", "unknown option '%s'; see `kiln compile --help`", a);
            return 2;
        }
    }
    if (path == NULL) {
        cli_error("compile", "no module given");
        usage(stderr);
        return 2;
    }

    kiln_aot_result res;
    kiln_err err = {0};
    memset(&res, 0, sizeof(res));
    int rc = kiln_aot_compile_file(path, &opts, &res, &err);
    if (rc != KILN_OK) {
        /* The library's message names the module, cause and remedy; fall
         * back to the status text should a path ever forget to set one. */
        cli_error("compile", "%s", err.msg[0] != '\0' ? err.msg : kiln_strerror(rc));
        return 1;
    }
    /* Which tier and compiler: "fast tier, tcc version 0.9.27 (x86_64 Linux) -O0". */
    if (res.cached)
        printf("cached %s -> %s (%s tier, %s -O%d)\n", path, res.so_path,
               kiln_aot_tier_name(res.tier), res.compiler, res.opt_level);
    else
        printf("compiled %s -> %s in %.2fs (%s tier, %s -O%d)\n", path, res.so_path, res.seconds,
               kiln_aot_tier_name(res.tier), res.compiler, res.opt_level);
    return fflush(stdout) == 0 ? 0 : 1;
}
