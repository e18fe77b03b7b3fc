/*
 * kv_util.c - helpers shared by the KV backends (kv_int.h): key order,
 * pages of keys, decimal integers, time and logging.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "store/kv_int.h"

int kv_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

bool kv_has_prefix(const void *key, size_t klen, const void *prefix, size_t plen)
{
    return klen >= plen && (plen == 0 || memcmp(key, prefix, plen) == 0);
}

void kiln_kv_page_fini(kiln_kv_page *p)
{
    if (p == NULL)
        return;
    kiln_free(p->keys);
    kiln_free(p->data);
    memset(p, 0, sizeof(*p));
}

void kv_pb_init(kv_page_builder *b, kiln_kv_page *page)
{
    memset(b, 0, sizeof(*b));
    memset(page, 0, sizeof(*page));
    b->page = page;
}

int kv_pb_add(kv_page_builder *b, const void *key, size_t len)
{
    kiln_kv_page *p = b->page;
    if (p->n == b->cap_keys) {
        size_t cap = b->cap_keys ? b->cap_keys * 2 : 16;
        kiln_kv_key *k = kiln_realloc(p->keys, cap * sizeof(*k));
        if (k == NULL)
            return KILN_ENOMEM;
        p->keys = k;
        b->cap_keys = cap;
    }
    if (b->data_cap - b->data_len < len + 1) {
        size_t cap = b->data_cap ? b->data_cap : 256;
        while (cap - b->data_len < len + 1)
            cap *= 2;
        uint8_t *d = kiln_realloc(p->data, cap);
        if (d == NULL)
            return KILN_ENOMEM;
        p->data = d;
        b->data_cap = cap;
    }
    if (len > 0)
        memcpy(p->data + b->data_len, key, len);
    p->data[b->data_len + len] = '\0'; /* names of namespaces read as C strings */
    /* Offsets until finish: data may still move. */
    p->keys[p->n].p = (const uint8_t *)(uintptr_t)b->data_len;
    p->keys[p->n].len = len;
    p->n++;
    b->data_len += len + 1;
    return KILN_OK;
}

void kv_pb_finish(kv_page_builder *b)
{
    kiln_kv_page *p = b->page;
    for (size_t i = 0; i < p->n; i++)
        p->keys[i].p = p->data + (uintptr_t)p->keys[i].p;
}

void kv_pb_abort(kv_page_builder *b)
{
    kiln_free(b->page->keys);
    kiln_free(b->page->data);
    memset(b->page, 0, sizeof(*b->page));
}

bool kv_parse_i64(const void *p, size_t n, int64_t *out)
{
    const char *s = p;
    size_t i = 0;
    bool neg = false;
    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n || n > 20)
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

int kv_parse_counter(const void *p, size_t n, int64_t *out)
{
    if (kv_parse_i64(p, n, out))
        return KILN_OK;
    /* Digits only (after an optional '-') but too many for int64: an
     * integer out of range, which incr must not treat as text. */
    const char *s = p;
    size_t i = n > 0 && s[0] == '-' ? 1 : 0;
    if (i == n)
        return KILN_ETYPE;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return KILN_ETYPE;
    return KILN_EINVAL;
}

int kv_add_i64(int64_t v, int64_t delta, int64_t *out)
{
    if ((delta > 0 && v > INT64_MAX - delta) || (delta < 0 && v < INT64_MIN - delta))
        return KILN_EINVAL;
    *out = v + delta;
    return KILN_OK;
}

bool kv_quota_fits(uint64_t used, uint64_t old_size, uint64_t new_size, uint64_t max_bytes)
{
    if (max_bytes == 0 || new_size <= old_size)
        return true;
    /* Cached totals may lag another process's writes: never underflow. */
    uint64_t base = used > old_size ? used - old_size : 0;
    return new_size <= max_bytes && base <= max_bytes - new_size;
}

size_t kv_fmt_i64(int64_t v, char *buf)
{
    int n = snprintf(buf, 24, "%lld", (long long)v);
    return n > 0 ? (size_t)n : 0;
}

int64_t kiln_kv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kv_expiry(int64_t now, int64_t ttl_ms)
{
    if (ttl_ms <= 0)
        return 0;
    return ttl_ms > INT64_MAX - now ? INT64_MAX : now + ttl_ms;
}

void kv_log(const char *fmt, ...)
{
    char line[1200];
    int n = snprintf(line, sizeof(line), "kiln kv: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}
