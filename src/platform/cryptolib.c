/*
 * cryptolib.c - libcrypto (OpenSSL 3), loaded on first use.
 *
 * Why: linked normally, libcrypto's 4.7 MB are mapped and relocated by every
 * `kiln` process (~20k relocations), though a cached `kiln run` hashes its
 * cache key with base/sha256.c and calls OpenSSL for nothing. The same
 * pattern as netlibs.c: Kiln is not linked against libcrypto; this file
 * defines the OpenSSL functions Kiln calls (the registry's and inspect's
 * digests, Extism manifest hashes, admin tokens), each forwarding to the real
 * one, dlopen'ed (RTLD_LOCAL) by the first call. docs/internals/snapshot.md §5.
 *
 * If libcrypto cannot be loaded, one line says so on stderr and every call
 * fails OpenSSL's way (0 or NULL), so callers' error paths apply;
 * CRYPTO_memcmp never needs the library. Hidden symbols (-fvisibility=hidden):
 * libraries loaded later never bind to these. A new OpenSSL function must be
 * added here (the link fails until it is).
 */
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>

/* ret, name, (params), (args), value on failure */
#define CRYPTO_FNS(X)                                                                              \
    X(int, EVP_Digest,                                                                             \
      (const void *d, size_t n, unsigned char *md, unsigned int *len, const EVP_MD *t, ENGINE *e), \
      (d, n, md, len, t, e), 0)                                                                    \
    X(int, EVP_DigestInit_ex, (EVP_MD_CTX * c, const EVP_MD *t, ENGINE *e), (c, t, e), 0)         \
    X(int, EVP_DigestUpdate, (EVP_MD_CTX * c, const void *d, size_t n), (c, d, n), 0)             \
    X(int, EVP_DigestFinal_ex, (EVP_MD_CTX * c, unsigned char *md, unsigned int *n), (c, md, n), 0) \
    X(EVP_MD_CTX *, EVP_MD_CTX_new, (void), (), NULL)                                              \
    X(const EVP_MD *, EVP_sha256, (void), (), NULL)                                                \
    X(int, RAND_bytes, (unsigned char *buf, int num), (buf, num), 0)
#define CRYPTO_VOID_FNS(X) X(EVP_MD_CTX_free, (EVP_MD_CTX * c), (c))

#define FIELD(ret, name, params, args, fail) ret(*name) params;
#define VFIELD(name, params, args) void(*name) params;
static struct {
    CRYPTO_FNS(FIELD) CRYPTO_VOID_FNS(VFIELD)
} cr;
static int cr_ok;
static pthread_once_t cr_once = PTHREAD_ONCE_INIT;

#define NAME(ret, name, params, args, fail) #name,
#define VNAME(name, params, args) #name,
static void cr_load(void)
{
    static const char *const names[] = {CRYPTO_FNS(NAME) CRYPTO_VOID_FNS(VNAME)};
    _Static_assert(sizeof(cr) == sizeof(names) / sizeof(names[0]) * sizeof(void *), "table");
    void *dl = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        fprintf(stderr, "kiln: cannot load libcrypto.so.3 (%s): hashing and tokens fail\n",
                dlerror());
        return;
    }
    void **table = (void **)&cr;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        table[i] = dlsym(dl, names[i]);
        if (table[i] == NULL) {
            fprintf(stderr, "kiln: libcrypto.so.3 has no %s: hashing and tokens fail\n",
                    names[i]);
            return;
        }
    }
    cr_ok = 1; /* never closed: callers keep its contexts */
}
static int cr_ready(void)
{
    pthread_once(&cr_once, cr_load);
    return cr_ok;
}

#define CR_DEF(ret, name, params, args, fail)                                                      \
    ret name params { return cr_ready() ? cr.name args : (fail); }
#define CR_VDEF(name, params, args)                                                                \
    void name params { if (cr_ready()) cr.name args; }
CRYPTO_FNS(CR_DEF)
CRYPTO_VOID_FNS(CR_VDEF)

/* Constant-time comparison needs no library: OpenSSL's contract (0 when
 * equal), time independent of where the buffers differ. */
int CRYPTO_memcmp(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < len; i++)
        d |= x[i] ^ y[i];
    return d;
}
