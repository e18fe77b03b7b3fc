/*
 * kiln_faas.c - the canonical ABI glue for kiln:faas@0.1.0's `handler` world
 * (what wit-bindgen's C generator emits, written out): `cabi_realloc`, which
 * the host calls to place strings and lists in this module's memory; the
 * lifted export `handle` with the flat core signature the canonical ABI gives
 * handler-event (11 core values); and `cabi_post_handle`, the post-return
 * that frees the result once the host has read it.
 */
#include <stdlib.h>
#include <string.h>

#include "kiln_faas.h"

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *ptr, size_t old_size,
                                                                 size_t align, size_t new_size)
{
    (void)old_size;
    (void)align; /* malloc's 16-byte alignment covers every canonical ABI type */
    if (new_size == 0)
        return (void *)align;
    void *p = realloc(ptr, new_size);
    if (p == NULL)
        abort(); /* a trap: the host reports it */
    return p;
}

void kiln_faas_string_dup(kiln_faas_string_t *ret, const char *s)
{
    ret->len = strlen(s);
    ret->ptr = cabi_realloc(NULL, 0, 1, ret->len);
    memcpy(ret->ptr, s, ret->len);
}

void kiln_faas_string_free(kiln_faas_string_t *s)
{
    if (s->len > 0)
        free(s->ptr);
    s->ptr = NULL;
    s->len = 0;
}

void kiln_faas_handler_event_free(kiln_faas_handler_event_t *ev)
{
    kiln_faas_string_free(&ev->event_version);
    kiln_faas_string_free(&ev->source);
    kiln_faas_string_free(&ev->key);
    if (ev->payload.len > 0)
        free(ev->payload.ptr);
    ev->payload.ptr = NULL;
    ev->payload.len = 0;
}

void kiln_faas_handler_error_free(kiln_faas_handler_error_t *e)
{
    if (e->tag == KILN_FAAS_HANDLER_ERROR_INVALID)
        kiln_faas_string_free(&e->val.invalid);
    else if (e->tag == KILN_FAAS_HANDLER_ERROR_FAILED)
        kiln_faas_string_free(&e->val.failed);
}

/*
 * result<_, handler-error> in memory (size 16, align 4): the result's case
 * u8 at 0; handler-error at 4: its case u8 at 4, the payload at 8 (an
 * event-type u8, or a string's pointer at 8 and length at 12).
 */
static uint8_t ret_area[16] __attribute__((aligned(4)));

__attribute__((export_name("handle"))) uint8_t *
__wasm_export_kiln_faas_handle(int32_t event_type, int64_t seconds, int32_t nanoseconds,
                               uint8_t *version, size_t version_len, uint8_t *source,
                               size_t source_len, uint8_t *key, size_t key_len, uint8_t *payload,
                               size_t payload_len)
{
    kiln_faas_handler_event_t ev = {
        .event_type = (kiln_faas_event_type_t)event_type,
        .event_timestamp = {(uint64_t)seconds, (uint32_t)nanoseconds},
        .event_version = {version, version_len},
        .source = {source, source_len},
        .key = {key, key_len},
        .payload = {payload, payload_len},
    };
    kiln_faas_handler_error_t err;
    memset(&err, 0, sizeof(err));
    bool ok = exports_kiln_faas_handle(&ev, &err);
    kiln_faas_handler_event_free(&ev);
    memset(ret_area, 0, sizeof(ret_area));
    if (ok)
        return ret_area;
    ret_area[0] = 1;
    ret_area[4] = err.tag;
    if (err.tag == KILN_FAAS_HANDLER_ERROR_UNSUPPORTED) {
        ret_area[8] = err.val.unsupported;
    } else {
        kiln_faas_string_t *s =
            err.tag == KILN_FAAS_HANDLER_ERROR_INVALID ? &err.val.invalid : &err.val.failed;
        uint32_t p = (uint32_t)(uintptr_t)s->ptr, n = (uint32_t)s->len;
        memcpy(ret_area + 8, &p, 4);
        memcpy(ret_area + 12, &n, 4);
    }
    return ret_area;
}

__attribute__((export_name("cabi_post_handle"))) void __wasm_export_kiln_faas_handle_post_return(
    uint8_t *ret)
{
    if (ret[0] == 1 && ret[4] != KILN_FAAS_HANDLER_ERROR_UNSUPPORTED) {
        uint32_t p, n;
        memcpy(&p, ret + 8, 4);
        memcpy(&n, ret + 12, 4);
        if (n > 0)
            free((void *)(uintptr_t)p);
    }
}
