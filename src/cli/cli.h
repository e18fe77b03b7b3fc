/*
 * cli.h - the `kiln` command's subcommands. Each takes argv without the
 * program name (argv[0] is the subcommand) and returns the process exit code.
 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdbool.h>

int cmd_run(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_call(int argc, char **argv);
/* cmd_call_component.c: `kiln call` on a component, else cmd_call. */
int cmd_call_dispatch(int argc, char **argv);
/* cmd_call_component.c: does `path` start with a component's preamble? */
bool cli_file_is_component(const char *path);
struct kiln_wasi;
struct kiln_limits;
struct kiln_err;
/* cmd_call_component.c: run a wasi:cli/command component's wasi:cli/run
 * export with WASI 0.2 over `wasi`. KILN_OK (exit status 0), KILN_EEXIT
 * with err->trap KILN_TRAP_EXIT and err->exit_code, or an error. */
int cli_run_component(const char *path, struct kiln_wasi *wasi, const struct kiln_limits *limits,
                      struct kiln_err *err);
int cmd_serve(int argc, char **argv);
int cmd_wit(int argc, char **argv); /* cmd_wit.c: Kiln's WIT packages */
int cmd_kv(int argc, char **argv);
int cmd_deploy(int argc, char **argv); /* cmd_deploy.c: deploy, ls, rm, rollback */
int cmd_ls(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_rollback(int argc, char **argv);

/* Print "kiln <cmd>: <message>" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Value of "--name VALUE" or "--name=VALUE" at argv[*i] (advancing *i past a
 * separate VALUE); NULL if absent. *matched says whether argv[*i] was --name,
 * so "--name" without a value is matched with a NULL result. */
const char *cli_opt_value(int argc, char **argv, int *i, const char *name, bool *matched);
/* Parse a decimal integer in [0, max]; -1 on malformed or out-of-range input. */
long long cli_parse_uint(const char *s, unsigned long long max);
/* Parse "64MiB", "1g", "65536" into bytes; -1 on malformed input. */
long long cli_parse_size(const char *s);

#endif
