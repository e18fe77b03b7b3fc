/*
 * cmd_wit.c - `kiln wit`: print Kiln's WIT packages, the interfaces a
 * component written for Kiln targets. The files are wit/ in the source tree
 * (wit/kiln-faas.wit and its dependencies under wit/deps/), embedded into
 * the binary at build time as $(BUILD)/gen/wit_files.inc, so the text printed
 * is always the text this Kiln was built with.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "platform/fs.h"

static const struct {
    const char *name; /* path relative to wit/, e.g. "deps/clocks/wall-clock.wit" */
    const char *text;
} wit_files[] = {
#include "wit_files.inc"
};
#define N_WIT (sizeof(wit_files) / sizeof(wit_files[0]))
#define WIT_MAIN "kiln-faas.wit"

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln wit [--list | NAME | --dir DIR]\n"
               "\n"
               "Print Kiln's WIT package kiln:faas@0.1.0 (world `handler`: the `handle`\n"
               "export Kiln calls once per event; world `handler-host`: the same with the\n"
               "host interfaces Kiln serves, wasi:keyvalue, wasi:config and wasi:logging,\n"
               "whose WIT is under deps/). Generate bindings from it with\n"
               "wit-bindgen or jco, build a component, and try it with\n"
               "`kiln call handler.wasm handle --input-json '[EVENT]'`.\n"
               "\n"
               "options:\n"
               "  --list     list the WIT files (the package and its dependencies)\n"
               "  NAME       print one of them (as listed, \".wit\" optional)\n"
               "  --dir DIR  write them all under DIR (DIR/kiln-faas.wit, DIR/deps/...),\n"
               "             a WIT directory wit-bindgen and jco accept\n"
               "  -h, --help show this help\n");
}

/* The embedded file called `name` ("kiln-faas", "kiln-faas.wit", ...), or -1. */
static int find_file(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < N_WIT; i++) {
        const char *f = wit_files[i].name;
        if (strcmp(f, name) == 0)
            return (int)i;
        if (strncmp(f, name, n) == 0 && strcmp(f + n, ".wit") == 0)
            return (int)i;
    }
    return -1;
}

/* Write every file under `dir`, creating deps/... as needed. 0 or 1. */
static int write_dir(const char *dir)
{
    for (size_t i = 0; i < N_WIT; i++) {
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/%s", dir, wit_files[i].name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            cli_error("wit", "output path under '%s' is too long; use a shorter --dir", dir);
            return 1;
        }
        char *slash = strrchr(path, '/');
        *slash = '\0';
        if (fs_mkdir_p(path) != 0) {
            cli_error("wit", "cannot create directory '%s': %s; check --dir", path,
                      strerror(errno));
            return 1;
        }
        *slash = '/';
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            cli_error("wit", "cannot write '%s': %s; check --dir", path, strerror(errno));
            return 1;
        }
        fputs(wit_files[i].text, f);
        if (fclose(f) != 0) {
            cli_error("wit", "cannot write '%s': %s; check --dir", path, strerror(errno));
            return 1;
        }
    }
    return 0;
}

int cmd_wit(int argc, char **argv)
{
    const char *name = WIT_MAIN;
    for (int i = 1; i < argc; i++) {
        bool matched;
        const char *dir = cli_opt_value(argc, argv, &i, "--dir", &matched);
        if (matched) {
            if (dir == NULL || i + 1 != argc) {
                usage(stderr);
                return 2;
            }
            return write_dir(dir);
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--list") == 0) {
            for (size_t k = 0; k < N_WIT; k++)
                printf("%s\n", wit_files[k].name);
            return 0;
        }
        if (argv[i][0] == '-' || i + 1 != argc) {
            usage(stderr);
            return 2;
        }
        name = argv[i];
    }
    int k = find_file(name);
    if (k < 0) {
        cli_error("wit", "no WIT file '%s'; `kiln wit --list` names them", name);
        return 1;
    }
    fputs(wit_files[k].text, stdout);
    return 0;
}
