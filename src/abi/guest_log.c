/*
 * guest_log.c - the per-invocation budget for guest log output and the one
 * writer every ABI's logging goes through (guest_log.h). Before it, a guest
 * calling kiln.log in a loop wrote 958 MiB to the server log in under a
 * second; now one request costs at most max_bytes (64 KiB by default) plus
 * one summary line.
 */
#include "abi/guest_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"

/* The budget of the running invocation, if any: a fiber-local variable, as
 * invocations on one thread interleave when they wait (src/loop). */
#define current (*(guest_log_budget **)kiln_fiber_local(KILN_FLOCAL_LOG))

kiln_log_limits guest_log_limits(const kiln_log_limits *l)
{
    kiln_log_limits r = l != NULL ? *l : (kiln_log_limits){0};
    if (r.max_lines == 0)
        r.max_lines = KILN_LOG_DEFAULT_MAX_LINES;
    if (r.max_bytes == 0)
        r.max_bytes = KILN_LOG_DEFAULT_MAX_BYTES;
    if (r.max_line_bytes == 0)
        r.max_line_bytes = KILN_LOG_DEFAULT_MAX_LINE_BYTES;
    if (r.max_line_bytes > KILN_LOG_MAX_LINE_BYTES)
        r.max_line_bytes = KILN_LOG_MAX_LINE_BYTES;
    return r;
}

void guest_log_begin(guest_log_budget *b, const char *fn_name, const kiln_log_limits *l)
{
    memset(b, 0, sizeof(*b));
    b->fn_name = fn_name ? fn_name : "function";
    b->lim = guest_log_limits(l);
    b->prev = current;
    current = b;
}

/* One line on stderr, written at once so lines of concurrent requests do
 * not interleave. */
static void write_line(const char *s, size_t n)
{
    ssize_t w = write(2, s, n);
    (void)w;
}

void guest_log_end(guest_log_budget *b)
{
    current = b->prev;
    if (b->dropped_lines == 0 && b->truncated_lines == 0)
        return;
    char line[700];
    int n = snprintf(line, sizeof(line),
                     "[%s] guest log: %" PRIu64 " line%s (%" PRIu64 " bytes) dropped and %" PRIu64
                     " cut short in this request, over its budget of %" PRIu32 " lines, %" PRIu64
                     " bytes, %" PRIu32 " bytes per line; log less, or raise log.max_lines, "
                     "log.max_bytes or log.max_line_bytes of function '%s'\n",
                     b->fn_name, b->dropped_lines, b->dropped_lines == 1 ? "" : "s",
                     b->dropped_bytes, b->truncated_lines, b->lim.max_lines, b->lim.max_bytes,
                     b->lim.max_line_bytes, b->fn_name);
    if (n > 0)
        write_line(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

bool guest_log_admit(size_t len, size_t *take)
{
    guest_log_budget *b = current;
    kiln_log_limits lim = b ? b->lim : guest_log_limits(NULL);
    if (b != NULL && (b->lines >= lim.max_lines || b->bytes >= lim.max_bytes)) {
        b->dropped_lines++;
        b->dropped_bytes += len;
        *take = 0;
        return false;
    }
    size_t t = len < lim.max_line_bytes ? len : lim.max_line_bytes;
    if (b != NULL) {
        if (t > lim.max_bytes - b->bytes)
            t = (size_t)(lim.max_bytes - b->bytes);
        b->lines++;
        b->bytes += t;
        if (t < len)
            b->truncated_lines++;
    }
    *take = t;
    return true;
}

void guest_log_write(const char *fn_name, const char *level, const char *msg, size_t len)
{
    size_t take;
    if (!guest_log_admit(len, &take))
        return;
    if (fn_name == NULL)
        fn_name = "function";
    char head[200], tail[64] = "";
    int h = level ? snprintf(head, sizeof(head), "[%s] %.120s: ", level, fn_name)
                  : snprintf(head, sizeof(head), "[%.120s] ", fn_name);
    if (h < 0)
        h = 0;
    int t = 0;
    if (take < len)
        t = snprintf(tail, sizeof(tail), " [... %zu more bytes]", len - take);
    if (t < 0)
        t = 0;
    size_t total = (size_t)h + take + (size_t)t + 1;
    char small[1400];
    char *line = total <= sizeof(small) ? small : kiln_malloc(total);
    if (line == NULL)
        return;
    memcpy(line, head, (size_t)h);
    for (size_t i = 0; i < take; i++) {
        unsigned char c = (unsigned char)msg[i];
        line[(size_t)h + i] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
    }
    memcpy(line + h + take, tail, (size_t)t);
    line[total - 1] = '\n';
    write_line(line, total);
    if (line != small)
        kiln_free(line);
}
