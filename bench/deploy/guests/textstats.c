/*
 * textstats.c - the deploy benchmark's mid-size Extism plugin: a text
 * report of the kind a plugin host runs. Real libc work makes its code size
 * (musl's regex engine, printf with floats, strtod, qsort, math):
 *
 *   report  input text -> {"words", "unique", "mean_len", "entropy",
 *           "top": [[word, n], ...], "sha256", "sha256_b64"}; words are the
 *           matches of config "pattern" (a POSIX extended regex, default
 *           [A-Za-z]+), case-folded when config "fold" is "1"
 *   numbers input "1 2.5 -3 ..." -> {"n", "min", "median", "p90", "max",
 *           "mean", "stddev"}
 *
 * Built by bench/deploy/run.sh against tests/guests_extism/guest.h (the
 * Extism imports declared by hand, no PDK).
 */
#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>

#include "guest.h"

/* ---- a growable string ---------------------------------------------------- */

struct sb {
    char *p;
    size_t n, cap;
};

static void sb_putn(struct sb *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_json_str(struct sb *b, const char *s, size_t n)
{
    sb_putn(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (c < 0x20)
            sb_printf(b, "\\u%04x", c);
        else
            sb_putn(b, (const char *)&c, 1);
    }
    sb_putn(b, "\"", 1);
}

/* ---- SHA-256 and base64 --------------------------------------------------- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void sha256(const uint8_t *data, size_t n, uint8_t out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint8_t tail[128];
    size_t full = n / 64 * 64;
    for (size_t i = 0; i < full; i += 64)
        sha256_block(h, data + i);
    size_t rest = n - full;
    memset(tail, 0, sizeof tail);
    memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    size_t tl = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha256_block(h, tail);
    if (tl == 128)
        sha256_block(h, tail + 64);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

static void base64(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- a word-count hash table ---------------------------------------------- */

struct entry {
    char *word;
    uint32_t count;
};

struct table {
    struct entry *e;
    size_t cap, used;
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void table_grow(struct table *t);

static void table_add(struct table *t, const char *w)
{
    if ((t->used + 1) * 4 >= t->cap * 3)
        table_grow(t);
    size_t i = fnv1a(w) & (t->cap - 1);
    while (t->e[i].word != NULL) {
        if (strcmp(t->e[i].word, w) == 0) {
            t->e[i].count++;
            return;
        }
        i = (i + 1) & (t->cap - 1);
    }
    t->e[i].word = strdup(w);
    t->e[i].count = 1;
    t->used++;
}

static void table_grow(struct table *t)
{
    struct table n = {calloc(t->cap ? t->cap * 2 : 64, sizeof(struct entry)),
                      t->cap ? t->cap * 2 : 64, 0};
    if (n.e == NULL)
        abort();
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].word != NULL) {
            size_t j = fnv1a(t->e[i].word) & (n.cap - 1);
            while (n.e[j].word != NULL)
                j = (j + 1) & (n.cap - 1);
            n.e[j] = t->e[i];
            n.used++;
        }
    free(t->e);
    *t = n;
}

static int by_count(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->word, y->word);
}

static char *config_or(const char *key, const char *dflt)
{
    char *v = g_block_str(x_config_get(g_alloc_str(key)));
    return v != NULL ? v : (char *)dflt;
}

EXPORT("report") int32_t report(void)
{
    uint64_t n;
    char *in = g_input(&n);
    const char *pattern = config_or("pattern", "[A-Za-z]+");
    int fold = strcmp(config_or("fold", "1"), "1") == 0;
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED);
    if (rc != 0) {
        char msg[256];
        regerror(rc, &re, msg, sizeof msg);
        return g_error(msg);
    }
    struct table t = {0};
    size_t words = 0, letters = 0;
    const char *p = in;
    regmatch_t m;
    while (*p != '\0' && regexec(&re, p, 1, &m, p == in ? 0 : REG_NOTBOL) == 0) {
        if (m.rm_eo == m.rm_so) {
            p++;
            continue;
        }
        size_t len = (size_t)(m.rm_eo - m.rm_so);
        char *w = strndup(p + m.rm_so, len);
        if (fold)
            for (char *c = w; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        table_add(&t, w);
        free(w);
        words++;
        letters += len;
        p += m.rm_eo;
    }
    regfree(&re);
    struct entry *list = calloc(t.used + 1, sizeof *list);
    size_t k = 0;
    for (size_t i = 0; i < t.cap; i++)
        if (t.e[i].word != NULL)
            list[k++] = t.e[i];
    qsort(list, k, sizeof *list, by_count);
    double entropy = 0;
    for (size_t i = 0; i < k; i++) {
        double f = (double)list[i].count / (double)words;
        entropy -= f * log2(f);
    }
    uint8_t digest[32];
    char b64[48];
    sha256((const uint8_t *)in, n, digest);
    base64(digest, sizeof digest, b64);
    struct sb b = {0};
    sb_printf(&b, "{\"words\":%zu,\"unique\":%zu,\"mean_len\":%.3f,\"entropy\":%.4f,\"top\":[",
              words, k, words ? (double)letters / (double)words : 0.0, entropy);
    for (size_t i = 0; i < k && i < 5; i++) {
        sb_printf(&b, "%s[", i ? "," : "");
        sb_json_str(&b, list[i].word, strlen(list[i].word));
        sb_printf(&b, ",%u]", list[i].count);
    }
    sb_printf(&b, "],\"sha256\":\"");
    for (int i = 0; i < 32; i++)
        sb_printf(&b, "%02x", digest[i]);
    sb_printf(&b, "\",\"sha256_b64\":\"%s\"}", b64);
    g_output(b.p, b.n);
    return 0;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t i = (size_t)floor(pos);
    double frac = pos - (double)i;
    return i + 1 < n ? v[i] + (v[i + 1] - v[i]) * frac : v[i];
}

EXPORT("numbers") int32_t numbers(void)
{
    uint64_t n;
    char *in = g_input(&n);
    size_t cap = 64, k = 0;
    double *v = malloc(cap * sizeof *v);
    char *p = in, *end;
    for (;;) {
        double d = strtod(p, &end);
        if (end == p) {
            if (*p == '\0')
                break;
            p++;
            continue;
        }
        if (k == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = d;
        p = end;
    }
    if (k == 0)
        return g_error("numbers: no number in the input");
    qsort(v, k, sizeof *v, by_value);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < k; i++)
        sum += v[i];
    double mean = sum / (double)k;
    for (size_t i = 0; i < k; i++)
        sq += (v[i] - mean) * (v[i] - mean);
    struct sb b = {0};
    sb_printf(&b, "{\"n\":%zu,\"min\":%g,\"median\":%g,\"p90\":%g,\"max\":%g,\"mean\":%.6g,\"stddev\":%.6g}",
              k, v[0], quantile(v, k, 0.5), quantile(v, k, 0.9), v[k - 1], mean,
              sqrt(sq / (double)k));
    g_output(b.p, b.n);
    return 0;
}
