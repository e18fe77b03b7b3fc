/*
 * sha256.h - SHA-256 (FIPS 180-4) without OpenSSL.
 *
 * Why: OpenSSL 3's first EVP digest loads its configuration and providers
 * (~0.4 ms), and linking libcrypto costs every `kiln` process its
 * relocation; a cached `kiln run` needs one hash of a few fields.
 * docs/internals/snapshot.md §5. Uses the x86 SHA extensions when the CPU
 * has them (checked once), else portable C; both give the same digest.
 */
#ifndef KILN_BASE_SHA256_H
#define KILN_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct kiln_sha256 {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
} kiln_sha256;

void kiln_sha256_init(kiln_sha256 *c);
void kiln_sha256_update(kiln_sha256 *c, const void *data, size_t len);
void kiln_sha256_final(kiln_sha256 *c, uint8_t out[32]);

/* One shot: `hex` gets 64 lowercase hex digits + NUL. */
void kiln_sha256_hex(const void *data, size_t len, char hex[65]);
/* 32 bytes to 64 lowercase hex digits + NUL. */
void kiln_sha256_to_hex(const uint8_t md[32], char hex[65]);

#endif
