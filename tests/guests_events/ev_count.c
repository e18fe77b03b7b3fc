/* ev_count.c - the smallest storage-event handler (JSON event ABI): counts
 * the events it gets in key "count" of namespace "out" and answers 204. */
#include <stdio.h>

#include "../guests_kv/kiln_imports.h"

int main(void)
{
    int64_t v;
    kv_incr("out", 3, "count", 5, 1, &v);
    printf("Status: 204 No Content\n\n");
    return 0;
}
