/* notes.c - appends a note to notes.txt in its preopened directory and prints
 * the file: shows WASI file I/O confined to a capability.
 * Run: kiln run --dir /tmp/notes::/data notes.wasm "remember the milk" */
#include <stdio.h>

int main(int argc, char **argv)
{
    FILE *f = fopen("/data/notes.txt", "a");
    if (f == NULL) {
        perror("notes: open /data/notes.txt (did you pass --dir HOST::/data?)");
        return 1;
    }
    fprintf(f, "%s\n", argc > 1 ? argv[1] : "(empty note)");
    fclose(f);
    f = fopen("/data/notes.txt", "r");
    char line[256];
    while (f && fgets(line, sizeof(line), f))
        fputs(line, stdout);
    if (f)
        fclose(f);
    return 0;
}
