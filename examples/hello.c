/* hello.c - the smallest WASI command: greets its arguments.
 * Build: clang --target=wasm32-wasi --sysroot=/usr -O2 -s hello.c -o hello.wasm
 * Run:   kiln run hello.wasm Kiln */
#include <stdio.h>

int main(int argc, char **argv)
{
    printf("hello, %s!\n", argc > 1 ? argv[1] : "world");
    return 0;
}
