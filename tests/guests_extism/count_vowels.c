/*
 * count_vowels.c - Extism's classic example: counts the vowels of the input
 * and outputs {"count":N,"total":T,"vowels":"..."}; `total` is a running
 * total kept in the var "total", the vowel set comes from config "vowels".
 */
#include "guest.h"

EXPORT("count_vowels") int32_t count_vowels(void)
{
    uint64_t n;
    char *in = g_input(&n);
    char *vowels = g_block_str(x_config_get(g_alloc_str("vowels")));
    if (vowels == NULL)
        vowels = "aeiouAEIOU";
    uint64_t count = 0;
    for (uint64_t i = 0; i < n; i++)
        if (in[i] != '\0' && strchr(vowels, in[i]) != NULL)
            count++;
    char *t = g_block_str(x_var_get(g_alloc_str("total")));
    uint64_t total = (t ? strtoull(t, NULL, 10) : 0) + count;
    char cbuf[24], tbuf[24];
    g_utoa(count, cbuf);
    int len = g_utoa(total, tbuf);
    x_var_set(g_alloc_str("total"), g_alloc_bytes(tbuf, (uint64_t)len));
    g_output_str(g_cat("{\"count\":", cbuf, ",\"total\":", tbuf, ",\"vowels\":\"", vowels, "\"}",
                       NULL));
    return 0;
}
