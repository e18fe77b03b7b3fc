/*
 * fail.c - Extism error reporting: `fail` sets an error and returns 1,
 * `rc_only` returns 7 without an error, `error_wins` sets an error but
 * returns 0 (the error still fails the call), `log` logs at each level.
 */
#include "guest.h"

EXPORT("fail") int32_t fail(void)
{
    g_output_str("partial output");
    return g_error("something went wrong");
}

EXPORT("rc_only") int32_t rc_only(void)
{
    g_output_str("output of rc_only");
    return 7;
}

EXPORT("error_wins") int32_t error_wins(void)
{
    g_error("error set, but returned 0");
    return 0;
}

EXPORT("log") int32_t log_levels(void)
{
    x_log_debug(g_alloc_str("a debug line"));
    x_log_info(g_alloc_str("an info line"));
    x_log_warn(g_alloc_str("a warning line"));
    char buf[16];
    int32_t lv = x_get_log_level();
    buf[0] = (char)('0' + (lv >= 0 && lv <= 4 ? lv : 9));
    g_output(buf, 1);
    return 0;
}
