/*
 * fuzz_json_raw.c - src/base/json_raw.c on arbitrary bytes: what jw_raw
 * accepts is valid JSON, and what it writes is valid, compact and stable
 * (re-embedding it gives the same text); a member json_raw_member finds is
 * itself valid JSON; the writer's strings are valid JSON whatever bytes they
 * hold; json_raw_load never crashes or leaks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_raw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_json_raw: %s (input %zu bytes)\n", what, size);
    (void)data;
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    bool valid = json_raw_valid(t, size);

    jw *w = jw_new();
    if (w == NULL)
        return 0;
    bool ok = jw_raw(w, t, size);
    size_t n = 0;
    char *out = jw_finish(w, &n);
    /* jw_raw may refuse valid text only for nesting beyond yajl_gen's limit. */
    if (ok && !valid)
        die("jw_raw accepted invalid JSON", data, size);
    if ((out != NULL) != ok)
        die("jw_raw and jw_finish disagree", data, size);
    if (out != NULL) {
        if (strlen(out) != n || !json_raw_valid(out, n))
            die("jw_raw wrote invalid JSON", data, size);
        w = jw_new();
        if (w != NULL) {
            jw_raw(w, out, n);
            size_t n2 = 0;
            char *again = jw_finish(w, &n2);
            if (again == NULL || n2 != n || memcmp(again, out, n) != 0)
                die("jw_raw is not stable on its own output", data, size);
            free(again);
        }
        free(out);
    }

    const char *v;
    size_t vlen;
    int r = json_raw_member(t, size, "a", &v, &vlen);
    if (r >= 0 && !valid)
        die("json_raw_member read invalid JSON", data, size);
    if (r == 1 && (v < t || v + vlen > t + size || !json_raw_valid(v, vlen)))
        die("json_raw_member returned something that is not a value", data, size);

    json_decref(json_raw_load(t, size, NULL));

    w = jw_new();
    if (w != NULL) {
        jw_strn(w, t, size);
        out = jw_finish(w, &n);
        if (out != NULL && !json_raw_valid(out, n))
            die("a string written by jw_strn is not valid JSON", data, size);
        free(out);
    }
    return 0;
}
