/* cgi_counter.c - a stateful guest: a global counter and a heap buffer that
 * must read zero at the start of every request. With a fresh instance per
 * request every response is "id=<id> count=1 heap=clean"; any state leaking
 * between requests (or two requests sharing an instance) shows up as
 * count>1, a foreign id or a dirty heap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count;
static char last_id[64];
static unsigned char scratch[4096];

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    const char *id = q && strncmp(q, "id=", 3) == 0 ? q + 3 : "none";
    count++;
    int dirty = last_id[0] != '\0';
    for (size_t i = 0; i < sizeof(scratch); i++)
        dirty |= scratch[i];
    snprintf(last_id, sizeof(last_id), "%s", id);
    memset(scratch, 0xAA, sizeof(scratch));
    printf("Content-Type: text/plain\n\nid=%s count=%d heap=%s\n", last_id, count,
           dirty ? "dirty" : "clean");
    return 0;
}
