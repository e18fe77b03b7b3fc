/*
 * escape_cmd.c - preview 1's sandbox-escape test (tests/guests/escape.c:
 * `..`, absolute paths, relative and absolute symlinks leading out, through
 * libc and through raw preview-1 calls) built as a wasi:cli/command
 * component: every attempt goes through the adapter to wasi:filesystem and
 * must be refused by the same sandbox. (Rebuilt when this file changes, not
 * when the included one does.)
 * kiln-component: - command
 */
#include "../../guests/escape.c"
