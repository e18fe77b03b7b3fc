/*
 * auth.c - the admin API's bearer token: where it comes from (option,
 * $KILN_ADMIN_TOKEN, or $KILN_HOME/admin.token, generated once from
 * RAND_bytes with mode 0600) and a comparison whose time does not depend on
 * where the given token differs, nor on its length.
 */
#include "admin/admin_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int admin_home(char *buf, size_t cap)
{
    const char *home = getenv("KILN_HOME");
    int n;
    if (home != NULL && *home)
        n = snprintf(buf, cap, "%s", home);
    else if ((home = getenv("HOME")) != NULL && *home)
        n = snprintf(buf, cap, "%s/.kiln", home);
    else
        return KILN_ENOENT;
    return n < 0 || (size_t)n >= cap ? KILN_ELIMIT : KILN_OK;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

static bool token_chars_ok(const char *t)
{
    if (strlen(t) < 16)
        return false;
    for (; *t; t++)
        if (*t <= ' ' || *t > '~')
            return false;
    return true;
}

int admin_token_load(const char *home, const char *configured, char *out, size_t cap,
                     char *source, size_t source_cap, kiln_err *err)
{
    const char *env = getenv("KILN_ADMIN_TOKEN");
    const char *given = configured && *configured ? configured : (env && *env ? env : NULL);
    if (given != NULL) {
        if (strlen(given) >= cap || !token_chars_ok(given))
            return kiln_err_set(err, KILN_ECONFIG, "admin token: use 16 to %zu printable "
                                "characters without spaces", cap - 1);
        snprintf(out, cap, "%s", given);
        snprintf(source, source_cap, "%s", configured && *configured ? "--admin-token"
                                                                     : "$KILN_ADMIN_TOKEN");
        return KILN_OK;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/admin.token", home);
    snprintf(source, source_cap, "%s", path);
    for (int attempt = 0; attempt < 2; attempt++) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            char buf[256] = "";
            bool got = fgets(buf, sizeof(buf), f) != NULL;
            fclose(f);
            trim(buf);
            if (!got || !token_chars_ok(buf) || strlen(buf) >= cap)
                return kiln_err_set(err, KILN_ECONFIG, "%s: not a token (16 to %zu printable "
                                    "characters); remove it to generate a new one", path,
                                    cap - 1);
            snprintf(out, cap, "%s", buf);
            return KILN_OK;
        }
        if (errno != ENOENT)
            return kiln_err_set(err, KILN_EIO, "cannot read %s: %s", path, strerror(errno));
        /* First start: 32 random bytes, hex. O_EXCL: two servers starting at
         * once agree on the one file that won. */
        unsigned char rnd[32];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return kiln_err_set(err, KILN_EIO, "cannot generate an admin token: no randomness");
        char hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST)
                continue;
            return kiln_err_set(err, KILN_EIO, "cannot create %s: %s", path, strerror(errno));
        }
        hex[64] = '\n';
        bool okw = write(fd, hex, 65) == 65 && fsync(fd) == 0;
        close(fd);
        if (!okw) {
            unlink(path);
            return kiln_err_set(err, KILN_EIO, "cannot write %s", path);
        }
        hex[64] = '\0';
        snprintf(out, cap, "%s", hex);
        fprintf(stderr, "kiln serve: generated an admin token in %s (mode 0600)\n", path);
        return KILN_OK;
    }
    return kiln_err_set(err, KILN_EIO, "cannot read or create %s", path);
}

bool admin_token_equal(const char *expected, const char *given)
{
    /* Compare digests: equal length, so neither the position of the first
     * difference nor the length of `given` shows in the time taken. */
    unsigned char a[32], b[32];
    unsigned int la = 0, lb = 0;
    if (given == NULL ||
        EVP_Digest(expected, strlen(expected), a, &la, EVP_sha256(), NULL) != 1 ||
        EVP_Digest(given, strlen(given), b, &lb, EVP_sha256(), NULL) != 1 || la != 32 || lb != 32)
        return false;
    return CRYPTO_memcmp(a, b, 32) == 0;
}
