/* hello.c - startup and compile-time guest: the smallest useful command. */
#include <stdio.h>

int main(void)
{
    puts("hello");
    return 0;
}
