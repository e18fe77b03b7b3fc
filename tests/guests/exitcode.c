/* exitcode.c - exits (proc_exit) with the code given as argv[1]. */
#include <stdlib.h>
#include <wasi/api.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 99;
    __wasi_proc_exit((__wasi_exitcode_t)atoi(argv[1]));
}
