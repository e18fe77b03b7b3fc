/* config.c - Extism guest: outputs config_get("greeting"), or "(none)". */
#include "guest.h"

EXPORT("greeting") int32_t greeting(void)
{
    char *g = g_block_str(x_config_get(g_alloc_str("greeting")));
    g_output_str(g ? g : "(none)");
    return 0;
}
