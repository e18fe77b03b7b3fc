/*
 * main.c - `kiln` entry point: dispatch to a subcommand.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "kiln/kiln.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", cmd_run, "run a WASI command module (like wasmtime run)"},
    {"compile", cmd_compile, "compile a module ahead of time into the cache"},
    {"inspect", cmd_inspect, "show imports, exports, memory and the detected ABI"},
    {"call", cmd_call_dispatch,
     "call a function of an Extism plugin (like extism call) or a component's export"},
    {"wit", cmd_wit, "print Kiln's WIT package kiln:faas (the event handler world)"},
    {"serve", cmd_serve, "serve functions over HTTP (a directory or a config file)"},
    {"kv", cmd_kv, "read and change the key-value store (get, set, del, ls)"},
    {"deploy", cmd_deploy, "upload a function to a running server (admin API)"},
    {"ls", cmd_ls, "list the functions deployed to a running server"},
    {"rm", cmd_rm, "undeploy a function from a running server"},
    {"rollback", cmd_rollback, "make an earlier version of a deployed function active"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`kiln <command> --help` describes each command.\n");
}

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kiln %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *cli_opt_value(int argc, char **argv, int *i, const char *name, bool *matched)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    *matched = false;
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=') {
        *matched = true;
        return a + n + 1;
    }
    if (a[n] != '\0')
        return NULL;
    *matched = true;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

long long cli_parse_uint(const char *s, unsigned long long max)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    return (long long)v;
}

long long cli_parse_size(const char *s)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul = 1;
    if (*end != '\0') {
        static const struct {
            const char *suffix;
            unsigned long long mul;
        } units[] = {{"k", 1000ULL},    {"kb", 1000ULL},    {"kib", 1ULL << 10}, {"m", 1ULL << 20},
                     {"mb", 1000000ULL}, {"mib", 1ULL << 20}, {"g", 1ULL << 30},  {"gb", 1000000000ULL},
                     {"gib", 1ULL << 30}, {"b", 1}};
        mul = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strcasecmp(end, units[i].suffix) == 0)
                mul = units[i].mul;
        if (mul == 0)
            return -1;
    }
    if (v > (unsigned long long)(1LL << 62) / mul)
        return -1;
    return (long long)(v * mul);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kiln %s\n", KILN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "kiln: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
