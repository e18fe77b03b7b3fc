/*
 * utf8.h - strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF), the one decoder every reader of guest or module bytes
 * shares: wasm and component names, Extism log lines, JSON strings.
 */
#ifndef KILN_BASE_UTF8_H
#define KILN_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence starting at s (n > 0 bytes available), or 0
 * when it is invalid; then *bad is the length of its maximal invalid prefix
 * (at least 1): the bytes one U+FFFD replaces (Unicode's "maximal subpart"
 * rule, as browsers decode). */
size_t utf8_seq(const uint8_t *s, size_t n, size_t *bad /* OUT */);

/* Offset of the first byte of the first invalid sequence, or n if all valid. */
size_t utf8_bad_at(const uint8_t *s, size_t n);

static inline bool utf8_valid(const uint8_t *s, size_t n)
{
    return utf8_bad_at(s, n) == n;
}

#endif
