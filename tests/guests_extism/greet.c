/* greet.c - Extism guest: outputs "Hello, <input>!". */
#include "guest.h"

EXPORT("greet") int32_t greet(void)
{
    g_output_str(g_cat("Hello, ", g_input(NULL), "!", NULL));
    return 0;
}
