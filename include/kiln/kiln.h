/*
 * kiln.h - umbrella header: version, status codes and the error record.
 *
 * Every fallible Kiln function returns an int status: KILN_OK (0) or a
 * negative KILN_E* code. Functions that can explain a failure also take a
 * `kiln_err *` (may be NULL) that receives a human message naming the
 * object, the cause and what to do.
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stddef.h>
#include <stdint.h>

#define KILN_VERSION "0.1.0"

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#define KILN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define KILN_API
#define KILN_PRINTF(f, a)
#endif

/* X(name, value, text). Values are numbered and never reused. */
#define KILN_STATUS_MAP(X)                                                     \
    X(OK, 0, "success")                                                        \
    X(ENOMEM, -1, "out of memory")                                             \
    X(EINVAL, -2, "invalid argument")                                          \
    X(ENOENT, -3, "no such file")                                              \
    X(EIO, -4, "input/output error")                                           \
    X(EMODULE, -5, "invalid WebAssembly module")                               \
    X(EUNSUPPORTED, -6, "unsupported WebAssembly feature")                     \
    X(EIMPORT, -7, "unresolved or mistyped import")                            \
    X(ECOMPILE, -8, "compilation failed")                                      \
    X(ECACHE, -9, "artifact cache error")                                      \
    X(ELOAD, -10, "artifact could not be loaded")                              \
    X(ETRAP, -11, "guest trapped")                                             \
    X(ENOEXPORT, -12, "no such export")                                        \
    X(ETYPE, -13, "type mismatch")                                             \
    X(ELIMIT, -14, "limit exceeded")                                           \
    X(ETIMEOUT, -15, "time limit exceeded")                                    \
    X(EEXIT, -16, "guest exited")                                              \
    X(ENOSPC, -17, "no space left on device")                                  \
    X(EPERM, -18, "permission denied")                                         \
    X(ETOOLCHAIN, -19, "toolchain missing")                                    \
    X(EGUEST, -20, "the guest reported an error")                              \
    X(EBADOUTPUT, -21, "malformed guest output")                               \
    X(ECONFIG, -22, "invalid configuration")                                   \
    X(ECANCELED, -23, "cancelled")

typedef enum kiln_status {
#define KILN_STATUS_ENUM_(name, value, text) KILN_##name = value,
    KILN_STATUS_MAP(KILN_STATUS_ENUM_)
#undef KILN_STATUS_ENUM_
} kiln_status;

/* Static text for a status code; never NULL. */
KILN_API const char *kiln_strerror(int status);

/* Error record filled by functions that can explain a failure. */
typedef struct kiln_err {
    int code;       /* the returned status */
    int trap;       /* kiln_trap_kind when code == KILN_ETRAP, else 0 */
    int exit_code;  /* guest exit code when trap == KILN_TRAP_EXIT */
    char msg[1024]; /* "<what>: <cause>; <what to do>" */
} kiln_err;

/*
 * Record `code` and a formatted message into `err` (which may be NULL) and
 * return `code`, so callers can write `return kiln_err_set(err, ...)`.
 * The message is truncated to fit.
 */
KILN_API int kiln_err_set(kiln_err *err, int code, const char *fmt, ...) KILN_PRINTF(3, 4);

/* Prefix an existing message with "<prefix>: "; returns err->code. */
KILN_API int kiln_err_prefix(kiln_err *err, const char *fmt, ...) KILN_PRINTF(2, 3);

#endif
