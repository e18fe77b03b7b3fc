/*
 * handler.c - an event handler for Kiln's kiln:faas `handler` world: for each
 * object written to a KV namespace it subscribes to, print a line with the
 * key and the number of words in the value. The canonical ABI glue is
 * kiln_faas.c; this file is all a handler writes.
 */
#include <stdio.h>

#include "kiln_faas.h"

static size_t count_words(const uint8_t *p, size_t n)
{
    size_t words = 0;
    int in_word = 0;
    for (size_t i = 0; i < n; i++) {
        int space = p[i] == ' ' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r';
        if (!space && !in_word)
            words++;
        in_word = !space;
    }
    return words;
}

bool exports_kiln_faas_handle(kiln_faas_handler_event_t *event, kiln_faas_handler_error_t *err)
{
    const kiln_faas_handler_event_t *e = event;
    switch (e->event_type) {
    case KILN_FAAS_EVENT_TYPE_OBJECT_ADDED:
    case KILN_FAAS_EVENT_TYPE_OBJECT_UPDATED:
    case KILN_FAAS_EVENT_TYPE_OBJECT_REMOVED:
        break;
    default: /* scheduled, message */
        err->tag = KILN_FAAS_HANDLER_ERROR_UNSUPPORTED;
        err->val.unsupported = e->event_type;
        return false;
    }
    if (e->key.len == 0) {
        err->tag = KILN_FAAS_HANDLER_ERROR_INVALID;
        kiln_faas_string_dup(&err->val.invalid, "empty key");
        return false;
    }
    for (size_t i = 0; i < e->payload.len; i++) {
        if (e->payload.ptr[i] == 0) {
            err->tag = KILN_FAAS_HANDLER_ERROR_FAILED;
            kiln_faas_string_dup(&err->val.failed, "the value is not text");
            return false;
        }
    }
    if (e->event_type == KILN_FAAS_EVENT_TYPE_OBJECT_REMOVED)
        printf("%.*s removed (%.*s)\n", (int)e->key.len, (const char *)e->key.ptr,
               (int)e->source.len, (const char *)e->source.ptr);
    else
        printf("%.*s: %zu words at %llu.%09u (%.*s)\n", (int)e->key.len,
               (const char *)e->key.ptr, count_words(e->payload.ptr, e->payload.len),
               (unsigned long long)e->event_timestamp.seconds,
               e->event_timestamp.nanoseconds, (int)e->source.len, (const char *)e->source.ptr);
    return true;
}
