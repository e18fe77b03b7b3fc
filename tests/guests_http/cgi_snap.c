/* cgi_snap.c - a WASI-CGI command whose expensive initialisation (a prime
 * sieve over 2 MB) is the `wizer.initialize` export, for `snapshot: true`
 * (docs/internals/snapshot.md §4): with an image it runs once at deploy and
 * every request's _start finds it done; without, main runs it per request.
 * Every response is "primes=148933 sum=<checksum> inits=1 requests=1
 * query=<QUERY_STRING> init=image|request" (where init ran); afterwards the request scribbles over the table and
 * the counters, so a request that saw another's writes answers differently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 2000000
static unsigned char composite[N];
static int n_primes, inits, requests;
static unsigned checksum;

__attribute__((export_name("wizer.initialize"))) void init(void)
{
    for (long i = 2; i * i < N; i++)
        if (!composite[i])
            for (long j = i * i; j < N; j += i)
                composite[j] = 1;
    for (int i = 2; i < N; i++)
        if (!composite[i]) {
            n_primes++;
            checksum = checksum * 31u + (unsigned)i;
        }
    inits++;
}


int main(void)
{
    const char *from = "image";
    if (inits == 0) {
        init(); /* no image: initialise per request */
        from = "request";
    }
    requests++;
    const char *q = getenv("QUERY_STRING");
    printf("Content-Type: text/plain\n\nprimes=%d sum=%u inits=%d requests=%d query=%s "
           "init=%s\n", n_primes, checksum, inits, requests, q ? q : "", from);
    memset(composite, 0xAB, sizeof(composite));
    n_primes = -1;
    inits = 99;
    checksum = 0;
    return 0;
}
