/*
 * setjmp.h - a stand-in for the deploy benchmark's Duktape build: wasi-libc
 * in Debian 12 (clang 14) has no setjmp/longjmp. setjmp always returns 0 and
 * longjmp aborts, so code that never throws runs unchanged and any throw
 * traps the instance. Only for bench/deploy/guests/duk_cgi.c.
 */
#ifndef KILN_BENCH_SHIM_SETJMP_H
#define KILN_BENCH_SHIM_SETJMP_H
#include <stdlib.h>

typedef int jmp_buf[1];
#define setjmp(jb) ((void)(jb), 0)
#define _setjmp(jb) ((void)(jb), 0)
#define longjmp(jb, v) ((void)(jb), (void)(v), abort())
#define _longjmp(jb, v) longjmp(jb, v)
#endif
