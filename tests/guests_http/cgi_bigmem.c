/* cgi_bigmem.c - needs 80 MiB of linear memory at start (a zeroed static
 * array), more than the default 64 MiB limit: instantiation fails with
 * "out of memory".
 * kiln-guest-flags: -Wl,--initial-memory=85196800
 */
#include <stdio.h>

static char big[80 << 20];

int main(void)
{
    big[12345] = 1;
    printf("Content-Type: text/plain\n\nbig %d\n", big[12345]);
    return 0;
}
