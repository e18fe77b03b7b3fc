/*
 * kiln_faas.h - C bindings for Kiln's kiln:faas@0.1.0 `handler` world
 * (`kiln wit`), in the shape wit-bindgen's C generator emits: one C type per
 * WIT type, an `exports_kiln_faas_handle` the handler implements, helpers to
 * make and free strings. The canonical ABI glue behind it is kiln_faas.c.
 *
 * Ownership: `event` is owned by the glue and valid during the call (it is
 * freed after `exports_kiln_faas_handle` returns; copy what you keep). A
 * string put into `*err` must be malloc'ed (kiln_faas_string_dup): the glue
 * frees it once Kiln has read the result (the `post-return` step).
 */
#ifndef KILN_FAAS_H
#define KILN_FAAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* string: UTF-8 bytes, not NUL-terminated. */
typedef struct kiln_faas_string_t {
    uint8_t *ptr;
    size_t len;
} kiln_faas_string_t;

/* list<u8> */
typedef struct kiln_faas_list_u8_t {
    uint8_t *ptr;
    size_t len;
} kiln_faas_list_u8_t;

/* wasi:clocks/wall-clock@0.2.0 datetime */
typedef struct kiln_faas_datetime_t {
    uint64_t seconds;
    uint32_t nanoseconds;
} kiln_faas_datetime_t;

/* enum event-type */
typedef uint8_t kiln_faas_event_type_t;
#define KILN_FAAS_EVENT_TYPE_OBJECT_ADDED 0
#define KILN_FAAS_EVENT_TYPE_OBJECT_REMOVED 1
#define KILN_FAAS_EVENT_TYPE_OBJECT_UPDATED 2
#define KILN_FAAS_EVENT_TYPE_SCHEDULED 3
#define KILN_FAAS_EVENT_TYPE_MESSAGE 4

/* record handler-event */
typedef struct kiln_faas_handler_event_t {
    kiln_faas_event_type_t event_type;
    kiln_faas_datetime_t event_timestamp;
    kiln_faas_string_t event_version;
    kiln_faas_string_t source;
    kiln_faas_string_t key;
    kiln_faas_list_u8_t payload;
} kiln_faas_handler_event_t;

/* variant handler-error */
typedef struct kiln_faas_handler_error_t {
    uint8_t tag;
    union {
        kiln_faas_event_type_t unsupported;
        kiln_faas_string_t invalid;
        kiln_faas_string_t failed;
    } val;
} kiln_faas_handler_error_t;
#define KILN_FAAS_HANDLER_ERROR_UNSUPPORTED 0
#define KILN_FAAS_HANDLER_ERROR_INVALID 1
#define KILN_FAAS_HANDLER_ERROR_FAILED 2

/*
 * export handle: func(event: handler-event) -> result<_, handler-error>;
 * Return true for ok; false after filling *err.
 */
bool exports_kiln_faas_handle(kiln_faas_handler_event_t *event, kiln_faas_handler_error_t *err);

/* Set *ret to a malloc'ed copy of the NUL-terminated `s` (aborts if out of memory). */
void kiln_faas_string_dup(kiln_faas_string_t *ret, const char *s);
void kiln_faas_string_free(kiln_faas_string_t *s);
void kiln_faas_handler_event_free(kiln_faas_handler_event_t *ev);
void kiln_faas_handler_error_free(kiln_faas_handler_error_t *e);

#endif
