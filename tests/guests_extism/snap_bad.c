/*
 * snap_bad.c - Extism guest whose initialisation calls an Extism host
 * function (alloc + log_info: state kept in the host), which a snapshot
 * cannot reproduce: `snapshot: true` must make the function unavailable with
 * a message naming the call, while without snapshot it works.
 */
#include "guest.h"

__attribute__((constructor)) static void init_logs(void)
{
    x_log_info(g_alloc_str("initialising"));
}

EXPORT("run") int32_t run(void)
{
    g_output_str("ok");
    return 0;
}
