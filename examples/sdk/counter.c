/*
 * counter.c - the C SDK's key-value storage: a per-path hit counter in the
 * function's private namespace, the last visitor's name kept for a minute,
 * and ?reset deleting both.
 *
 *   curl 'http://127.0.0.1:8080/counter?name=ada'   -> "1 hits; last visitor: (nobody)"
 *   curl 'http://127.0.0.1:8080/counter'            -> "2 hits; last visitor: ada"
 */
#include "kiln.h"

int main(void)
{
    char *reset = kiln_query_param("reset");
    if (reset != NULL) {
        kiln_kv_delete(NULL, "hits");
        kiln_kv_delete(NULL, "last");
        kiln_respond(200, "text/plain", "reset\n", 6);
        return 0;
    }
    int64_t hits = 0;
    int rc = kiln_kv_incr(NULL, "hits", 1, &hits);
    if (rc < 0) {
        kiln_status(500);
        kiln_printf("counter unavailable: %s\n", kiln_strerror(rc));
        return 0;
    }
    char *last = NULL;
    size_t len = 0;
    kiln_kv_get(NULL, "last", &last, &len);
    char *name = kiln_query_param("name");
    if (name != NULL)
        kiln_kv_set(NULL, "last", name, strlen(name), 60 * 1000, 0);
    kiln_printf("%lld hits; last visitor: %s\n", (long long)hits, last ? last : "(nobody)");
    free(last);
    free(name);
    return 0;
}
