/*
 * guest_log.h - the one way guest text reaches the server log, whatever the
 * ABI: kiln.log, Extism log_* (and a WASI plugin's stdout/stderr), Otoroshi
 * proxy_log, WASI-CGI stderr. Every line passes the calling invocation's
 * budget (lines, bytes, bytes per line; kiln_log_limits in handler.h), so a
 * guest logging in a loop costs at most that much log per request, and the
 * invocation ends with one line saying how much of its output was dropped.
 *
 * The budget is per thread: an invocation runs on one worker thread from
 * start to end, and the ABI registry (abi.c) brackets every handle() with
 * guest_log_begin/guest_log_end. Outside such a bracket (kiln call, unit
 * tests calling an ABI directly) lines are only truncated and sanitised.
 * Thread-safe; never allocates more than one line.
 */
#ifndef KILN_ABI_GUEST_LOG_H
#define KILN_ABI_GUEST_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/handler.h"

/* One invocation's budget; lives on the stack of the bracket in abi.c. */
typedef struct guest_log_budget {
    struct guest_log_budget *prev; /* the bracket this one interrupts, if any */
    const char *fn_name;
    kiln_log_limits lim;  /* defaults filled in */
    uint64_t lines, bytes; /* written */
    uint64_t dropped_lines, dropped_bytes, truncated_lines;
} guest_log_budget;

/* Fill the defaults (KILN_LOG_DEFAULT_*) into a copy of `l` (NULL = all). */
kiln_log_limits guest_log_limits(const kiln_log_limits *l);

/* Start and end an invocation of `fn_name` on this thread. end() writes the
 * summary line if anything was dropped or truncated. */
void guest_log_begin(guest_log_budget *b, const char *fn_name, const kiln_log_limits *l);
void guest_log_end(guest_log_budget *b);

/*
 * May a line of `len` bytes be logged now? false: it is dropped (and
 * counted). true: log its first *take bytes (fewer than len when the line is
 * over max_line_bytes or the rest of max_bytes), and the line is counted.
 * For sinks of their own (an embedder's callback); guest_log_write uses it.
 */
bool guest_log_admit(size_t len, size_t *take /* OUT */);

/*
 * Write one guest line to stderr, if the budget admits it, as
 * "[<level>] <fn>: <msg>" or, with level NULL, "[<fn>] <msg>"; control
 * characters become '?' (a guest cannot forge log lines), a truncated line
 * ends with " [... N more bytes]". One write(2) per line.
 */
void guest_log_write(const char *fn_name, const char *level, const char *msg, size_t len);

#endif
