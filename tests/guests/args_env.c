/* args_env.c - prints argc, each argv entry and the whole guest environment. */
#include <stdio.h>

extern char **environ;

int main(int argc, char **argv)
{
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = environ; e != NULL && *e != NULL; e++)
        printf("env %s\n", *e);
    return 0;
}
