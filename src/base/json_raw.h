/*
 * json_raw.h - JSON that keeps what a guest wrote: numbers exactly as
 * written (0.9678663636363636 stays so; 123456789012345678901234567890 is
 * not dropped), built on yajl, whose parser hands numbers over as text, and
 * on a writer that prints that text back as given. jansson (used everywhere else)
 * stores numbers as int64/double and reformats them; use this module where a
 * guest's document, or a part of it, travels on to a client or another guest.
 *
 * The writer (jw) builds a document; jw_raw embeds a JSON value verbatim
 * after checking it. Errors are sticky: after any failure (invalid raw
 * value, out of memory, unbalanced nesting) jw_finish returns NULL.
 * Strings given to the writer may hold any bytes: invalid UTF-8 is written
 * as U+FFFD, control characters are escaped. Nesting deeper than 127 levels
 * (yajl_gen's limit) is an error too. The output is compact, byte for
 * byte what yajl_gen printed (upper-case \u00XX, '/' unescaped).
 */
#ifndef KILN_BASE_JSON_RAW_H
#define KILN_BASE_JSON_RAW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct jw jw;

jw *jw_new(void); /* NULL on OOM */
void jw_free(jw *w); /* NULL is ok; only needed when jw_finish is not called */
void jw_obj_open(jw *w);
void jw_obj_close(jw *w);
void jw_arr_open(jw *w);
void jw_arr_close(jw *w);
void jw_key(jw *w, const char *key);
void jw_keyn(jw *w, const char *key, size_t n); /* any bytes, as jw_strn */
void jw_str(jw *w, const char *s);            /* NULL writes null */
void jw_strn(jw *w, const char *s, size_t n);
void jw_int(jw *w, long long v);
void jw_bool(jw *w, bool v);
void jw_null(jw *w);
/* Embed one JSON value (any type) verbatim: numbers keep their text;
 * whitespace is not kept. Returns false (and poisons the writer) if `json`
 * is not exactly one valid JSON value. */
bool jw_raw(jw *w, const char *json, size_t len);
/* Embed a jansson value (serialized by jansson: only for values Kiln made). */
void jw_jansson(jw *w, const json_t *v);
/* Append complete members of the open object as they are, e.g.
 * "\"tls\":false,\"weight\":1": compact JSON Kiln wrote as a constant,
 * never text from elsewhere (it is not checked). Only where a key may go. */
void jw_members(jw *w, const char *members);
/* Poison w (a caller's own failure, e.g. OOM): jw_finish returns NULL. */
void jw_fail(jw *w);
/* The compact text, NUL-terminated, malloc'd (free()); NULL on any error.
 * Frees w either way. */
char *jw_finish(jw *w, size_t *len /* OUT, may be NULL */);

/* Is text exactly one valid JSON value (of any type)? */
bool json_raw_valid(const char *text, size_t len);

/*
 * The value of member `key` of the top-level JSON object in `text`, as the
 * exact bytes written there (*val points into text). Returns 1 if found,
 * 0 if the object has no such member (the last one wins when repeated, as
 * jansson does), -1 if text is not a valid JSON object.
 */
int json_raw_member(const char *text, size_t len, const char *key, const char **val /* OUT */,
                    size_t *vlen /* OUT */);

/* jansson's json_loadb, except that an integer beyond int64 does not fail
 * the whole document: it is then loaded as a real (use json_raw_member for
 * its exact text), and a real beyond double's range as the largest double of
 * its sign; every other number loads as jansson loads it (integers stay
 * integers). Returns NULL if text is not valid JSON (err says why). */
json_t *json_raw_load(const char *text, size_t len, json_error_t *err /* OUT, may be NULL */);

/* [s, s+n) as valid UTF-8: each invalid sequence becomes U+FFFD (EF BF BD),
 * the rest is copied (NULs included). For texts that must pass through
 * jansson's json_string, which refuses invalid UTF-8. Returns a
 * NUL-terminated kiln_malloc'd copy (*outlen its length, may be NULL), or
 * NULL on OOM. */
char *json_raw_utf8(const char *s, size_t n, size_t *outlen /* OUT */);

#endif
