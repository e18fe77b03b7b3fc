/*
 * component_event.c - deliver one event to a component through its ABI's
 * event op, as the event dispatcher (src/event/) does: the ABI is taken
 * from the registry by the module's preamble (kiln_abi_claim), loaded
 * (load), the event delivered (event) and released.
 * Usage: component_event COMPONENT.wasm TYPE KEY PAYLOAD [TIMEOUT_MS]
 *   TYPE is an event type name ("object-added", ...); KEY may hold \xHH
 *   escapes (for keys that are not UTF-8). Prints "ok" or "error: <code>:
 *   <message>" and exits 0 / 1; 2 for usage or load errors.
 * Used by tests/integration/test_component_serve.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/handler.h"

/* "\xHH" escapes decoded in place; returns the length. */
static size_t unescape(char *s)
{
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1] == 'x' && s[i + 2] && s[i + 3]) {
            char hex[3] = {s[i + 2], s[i + 3], 0};
            s[o++] = (char)strtol(hex, NULL, 16);
            i += 3;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: component_event COMPONENT.wasm TYPE KEY PAYLOAD [TIMEOUT_MS]\n");
        return 2;
    }
    int type = kiln_event_type_parse(argv[2]);
    if (type < 0) {
        fprintf(stderr, "unknown event type '%s'\n", argv[2]);
        return 2;
    }
    uint8_t head[8];
    size_t n = 0;
    FILE *f = fopen(argv[1], "rb");
    if (f != NULL) {
        n = fread(head, 1, sizeof(head), f);
        fclose(f);
    }
    const kiln_abi_ops *abi = kiln_abi_claim(head, n);
    if (abi == NULL || abi->event == NULL) {
        fprintf(stderr, "%s: no ABI loads it with an event op\n", argv[1]);
        return 2;
    }
    kiln_function fn;
    memset(&fn, 0, sizeof(fn));
    fn.name = "evfn";
    fn.module_path = argv[1];
    fn.limits.timeout_ms = argc > 5 ? (uint32_t)atoi(argv[5]) : 5000;
    fn.limits.max_memory_bytes = (uint64_t)16 << 20;
    kiln_aot_options ao;
    memset(&ao, 0, sizeof(ao));
    ao.opt_level = -1;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    void *state = NULL;
    if (abi->load(&fn, &ao, &state, &err) != KILN_OK) {
        fprintf(stderr, "load: %s\n", err.msg);
        return 2;
    }
    size_t klen = unescape(argv[3]);
    kiln_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = (kiln_event_type)type;
    ev.timestamp_ns = 1767225600123456789LL; /* 2026-01-01T00:00:00.123456789Z */
    ev.version = "1";
    ev.source = "kv:orders";
    ev.key = (const uint8_t *)argv[3];
    ev.key_len = klen;
    ev.payload = (const uint8_t *)argv[4];
    ev.payload_len = strlen(argv[4]);
    ev.id = 7;
    ev.attempt = 1;
    memset(&err, 0, sizeof(err));
    int rc = abi->event(&fn, state, NULL, &ev, &err);
    if (rc == KILN_OK)
        printf("ok\n");
    else
        printf("error: %s: %s\n", kiln_strerror(rc), err.msg);
    abi->release(state);
    return rc == KILN_OK ? 0 : 1;
}
