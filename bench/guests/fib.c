/*
 * fib.c - CPU guest: naive recursive fib(35), ROUNDS times. Each round's
 * argument depends on the previous results through a mask that is 0 at run
 * time but unknown at compile time (it comes from argc), so no compiler can
 * merge the calls. A volatile would not do: wasm has no volatile loads, and
 * gcc folds the ten identical pure calls in wasm2c's C into one.
 * Native and wasm builds print the same line; bench/run.sh compares them.
 */
#include <stdio.h>

#define ROUNDS 10

static unsigned fib(unsigned n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(int argc, char **argv)
{
    (void)argv;
    unsigned mask = argc > 1000 ? ~0u : 0u;
    unsigned long long sum = 0;
    for (int i = 0; i < ROUNDS; i++)
        sum += fib(35 + ((unsigned)sum & mask));
    printf("fib(35) x %d = %llu\n", ROUNDS, sum);
    return 0;
}
