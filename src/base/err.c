/*
 * err.c - status codes and the kiln_err record (see include/kiln/kiln.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kiln/kiln.h"

const char *kiln_strerror(int status)
{
    switch (status) {
#define KILN_STATUS_CASE_(name, value, text)                                                       \
    case value:                                                                                    \
        return text;
        KILN_STATUS_MAP(KILN_STATUS_CASE_)
#undef KILN_STATUS_CASE_
    }
    return "unknown error";
}

int kiln_err_set(kiln_err *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    err->trap = 0;
    err->exit_code = 0;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

int kiln_err_prefix(kiln_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return KILN_EINVAL;
    char prefix[256], old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    size_t n = strlen(prefix);
    if (n > sizeof(err->msg) - 3)
        n = sizeof(err->msg) - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t rest = sizeof(err->msg) - n - 3;
    size_t olen = strnlen(old, rest);
    memcpy(err->msg + n + 2, old, olen);
    err->msg[n + 2 + olen] = '\0';
    return err->code;
}
