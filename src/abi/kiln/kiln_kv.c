/*
 * kiln_kv.c - Kiln's own host module "kiln", storage and context part:
 * kv_get/set/delete/incr/expire/ttl/list over the calling function's grant
 * set (kv.h), config_get and log. Signatures and codes are documented in
 * docs/abi/kiln-host.md; conventions in include/kiln/host_abi.h. Guest
 * mistakes come back as codes; nothing here traps (a deadline that passes
 * meanwhile unwinds the guest when the host function returns).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "abi/guest_log.h"
#include "abi/kiln/kiln_host.h"
#include "base/alloc.h"
#include "kiln/abi.h"
#include "kiln/host_abi.h"
#include "kiln/kv.h"

#define LIST_MAX_KEYS 1000

static bool put_i64(kiln_instance *inst, uint32_t ptr, int64_t v)
{
    void *p = kiln_guest_ptr(inst, ptr, 8);
    if (p == NULL)
        return false;
    uint64_t u = (uint64_t)v;
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    memcpy(p, b, 8);
    return true;
}

/*
 * Resolve the namespace argument. Returns NULL with *code set when the
 * function has no store here (EUNAVAILABLE), the pointer is bad (EINVAL) or
 * the namespace was not granted (EDENIED).
 */
static const kiln_kv_ns *namespace(kiln_instance *inst, uint32_t ns, uint32_t ns_len,
                                   int32_t *code)
{
    const kiln_kv_grants *g = kiln_instance_state(inst, KILN_STATE_KV);
    if (g == NULL) {
        *code = KILN_HOST_EUNAVAILABLE;
        return NULL;
    }
    const char *name = kiln_guest_ptr(inst, ns, ns_len);
    if (name == NULL) {
        *code = KILN_HOST_EINVAL;
        return NULL;
    }
    const kiln_kv_ns *n = kiln_kv_grants_find(g, name, ns_len);
    if (n == NULL)
        *code = KILN_HOST_EDENIED;
    return n;
}

static uint32_t hf_kv_get(kiln_instance *inst, uint32_t ns, uint32_t ns_len, uint32_t key,
                          uint32_t key_len, uint32_t buf, uint32_t buf_len, uint32_t len_out)
{
    int32_t code = KILN_HOST_OK;
    const kiln_kv_ns *n = namespace(inst, ns, ns_len, &code);
    if (n == NULL)
        return (uint32_t)code;
    const void *k = kiln_guest_ptr(inst, key, key_len);
    void *b = kiln_guest_ptr(inst, buf, buf_len);
    if (k == NULL || b == NULL || kiln_guest_ptr(inst, len_out, 4) == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    size_t len = 0;
    int rc = kiln_kv_ns_get(n, k, key_len, b, buf_len, &len, NULL);
    if (rc != KILN_OK)
        return (uint32_t)kiln_host_code(rc);
    kiln_host_put_u32(inst, len_out, (uint32_t)len);
    return len > buf_len ? (uint32_t)KILN_HOST_ETOOSMALL : (uint32_t)len;
}

static uint32_t hf_kv_set(kiln_instance *inst, uint32_t ns, uint32_t ns_len, uint32_t key,
                          uint32_t key_len, uint32_t val, uint32_t val_len, uint64_t ttl_ms,
                          uint32_t flags)
{
    int32_t code = KILN_HOST_OK;
    const kiln_kv_ns *n = namespace(inst, ns, ns_len, &code);
    if (n == NULL)
        return (uint32_t)code;
    const void *k = kiln_guest_ptr(inst, key, key_len);
    const void *v = kiln_guest_ptr(inst, val, val_len);
    if (k == NULL || v == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    bool stored = false;
    int rc = kiln_kv_ns_set(n, k, key_len, v, val_len, (int64_t)ttl_ms, flags, &stored);
    if (rc == KILN_OK && !stored)
        return (uint32_t)KILN_HOST_EEXISTS;
    return (uint32_t)kiln_host_code(rc);
}

static uint32_t hf_kv_delete(kiln_instance *inst, uint32_t ns, uint32_t ns_len, uint32_t key,
                             uint32_t key_len)
{
    int32_t code = KILN_HOST_OK;
    const kiln_kv_ns *n = namespace(inst, ns, ns_len, &code);
    if (n == NULL)
        return (uint32_t)code;
    const void *k = kiln_guest_ptr(inst, key, key_len);
    if (k == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    bool deleted = false;
    int rc = kiln_kv_ns_del(n, k, key_len, &deleted);
    if (rc == KILN_OK && !deleted)
        return (uint32_t)KILN_HOST_ENOTFOUND;
    return (uint32_t)kiln_host_code(rc);
}

static uint32_t hf_kv_incr(kiln_instance *inst, uint32_t ns, uint32_t ns_len, uint32_t key,
                           uint32_t key_len, uint64_t delta, uint32_t out)
{
    int32_t code = KILN_HOST_OK;
    const kiln_kv_ns *n = namespace(inst, ns, ns_len, &code);
    if (n == NULL)
        return (uint32_t)code;
    const void *k = kiln_guest_ptr(inst, key, key_len);
    if (k == NULL || kiln_guest_ptr(inst, out, 8) == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    int64_t v = 0;
    int rc = kiln_kv_ns_incr(n, k, key_len, (int64_t)delta, &v);
    if (rc == KILN_OK)
        put_i64(inst, out, v);
    return (uint32_t)kiln_host_code(rc);
}

static uint32_t hf_kv_expire(kiln_instance *inst, uint32_t ns, uint32_t ns_len, uint32_t key,
                             uint32_t key_len, uint64_t ttl_ms)
{
    int32_t code = KILN_HOST_OK;
    const kiln_kv_ns *n = namespace(inst, ns, ns_len, &code);
    if (n == NULL)
        return (uint32_t)code;
    const void *k = kiln_guest_ptr(inst, key, key_len);
    if (k == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    bool found = false;
    int rc = kiln_kv_ns_expire(n, k, key_len, (int64_t)ttl_ms, &found);
    if (rc == KILN_OK && !found)
        return (uint32_t)KILN_HOST_ENOTFOUND;
    return (uint32_t)kiln_host_code(rc);
}

static uint32_t hf_kv_ttl(kiln_instance *inst, uint32_t ns, uint32_t ns_len, uint32_t key,
                          uint32_t key_len, uint32_t out)
{
    int32_t code = KILN_HOST_OK;
    const kiln_kv_ns *n = namespace(inst, ns, ns_len, &code);
    if (n == NULL)
        return (uint32_t)code;
    const void *k = kiln_guest_ptr(inst, key, key_len);
    if (k == NULL || kiln_guest_ptr(inst, out, 8) == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    size_t len = 0;
    int64_t pttl = -1;
    int rc = kiln_kv_ns_get(n, k, key_len, NULL, 0, &len, &pttl);
    if (rc == KILN_OK)
        put_i64(inst, out, pttl);
    return (uint32_t)kiln_host_code(rc);
}

static uint32_t hf_kv_list(kiln_instance *inst, uint32_t ns, uint32_t ns_len, uint32_t prefix,
                           uint32_t prefix_len, uint32_t after, uint32_t after_len, uint32_t buf,
                           uint32_t buf_len, uint32_t out)
{
    int32_t code = KILN_HOST_OK;
    const kiln_kv_ns *n = namespace(inst, ns, ns_len, &code);
    if (n == NULL)
        return (uint32_t)code;
    const void *p = kiln_guest_ptr(inst, prefix, prefix_len);
    const void *a = kiln_guest_ptr(inst, after, after_len);
    uint8_t *b = kiln_guest_ptr(inst, buf, buf_len);
    if (p == NULL || a == NULL || b == NULL || kiln_guest_ptr(inst, out, 8) == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    /* Ask for no more keys than could fit (each takes 4 + 1 bytes at least). */
    size_t max = buf_len / 5;
    if (max > LIST_MAX_KEYS)
        max = LIST_MAX_KEYS;
    if (max == 0)
        max = 1;
    kiln_kv_page page;
    int rc = kiln_kv_ns_list(n, p, prefix_len, a, after_len, max, &page);
    if (rc != KILN_OK)
        return (uint32_t)kiln_host_code(rc);
    size_t used = 0, i = 0;
    for (; i < page.n; i++) {
        size_t need = 4 + page.keys[i].len;
        if (need > buf_len - used)
            break;
        uint32_t l = (uint32_t)page.keys[i].len;
        uint8_t lb[4] = {(uint8_t)l, (uint8_t)(l >> 8), (uint8_t)(l >> 16), (uint8_t)(l >> 24)};
        memcpy(b + used, lb, 4);
        memcpy(b + used + 4, page.keys[i].p, page.keys[i].len);
        used += need;
    }
    bool more = page.more || i < page.n;
    uint32_t result;
    if (i == 0 && page.n > 0) {
        kiln_host_put_u32(inst, out, (uint32_t)(4 + page.keys[0].len));
        kiln_host_put_u32(inst, out + 4, 1);
        result = (uint32_t)KILN_HOST_ETOOSMALL;
    } else {
        kiln_host_put_u32(inst, out, (uint32_t)used);
        kiln_host_put_u32(inst, out + 4, more ? 1 : 0);
        result = (uint32_t)i;
    }
    kiln_kv_page_fini(&page);
    return result;
}

/* ---- config and log ------------------------------------------------------------------ */

static uint32_t hf_config_get(kiln_instance *inst, uint32_t key, uint32_t key_len, uint32_t buf,
                              uint32_t buf_len, uint32_t len_out)
{
    const kiln_host_ctx *h = kiln_instance_state(inst, KILN_STATE_HOST);
    if (h == NULL)
        return (uint32_t)KILN_HOST_EUNAVAILABLE;
    const char *k = kiln_guest_ptr(inst, key, key_len);
    void *b = kiln_guest_ptr(inst, buf, buf_len);
    if (k == NULL || b == NULL || kiln_guest_ptr(inst, len_out, 4) == NULL)
        return (uint32_t)KILN_HOST_EINVAL;
    for (size_t i = 0; i < h->n_config; i++) {
        const char *name = h->config[i].name;
        if (strlen(name) != key_len || memcmp(name, k, key_len) != 0)
            continue;
        const char *v = h->config[i].value ? h->config[i].value : "";
        size_t len = strlen(v);
        kiln_host_put_u32(inst, len_out, (uint32_t)len);
        if (len > buf_len)
            return (uint32_t)KILN_HOST_ETOOSMALL;
        memcpy(b, v, len);
        return (uint32_t)len;
    }
    return (uint32_t)KILN_HOST_ENOTFOUND;
}

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error"};

void kiln_host_log(const kiln_host_ctx *h, int level, const char *msg, size_t len)
{
    level = level < 0 ? 0 : level > 4 ? 4 : level;
    int threshold = h ? h->log_level : 2;
    if (level < threshold)
        return;
    const char *fn = h && h->fn_name ? h->fn_name : "function";
    /* The invocation's log budget (guest_log.h) applies to every sink. */
    size_t take;
    if (h != NULL && h->log != NULL) {
        if (guest_log_admit(len, &take))
            h->log(h->log_user, level, fn, msg, take);
    } else {
        guest_log_write(fn, level_names[level], msg, len);
    }
}

static uint32_t hf_log(kiln_instance *inst, uint32_t level, uint32_t msg, uint32_t msg_len)
{
    const kiln_host_ctx *h = kiln_instance_state(inst, KILN_STATE_HOST);
    const char *m = kiln_guest_ptr(inst, msg, msg_len);
    if (m == NULL || level > 4)
        return (uint32_t)KILN_HOST_EINVAL;
    kiln_host_log(h, (int)level, m, msg_len);
    return 0;
}

/* ---- the table -------------------------------------------------------------------------- */

#define FN(f) ((void (*)(void))(f))

static const kiln_hostfn kv_table[] = {
    {"kiln", "kv_get", "iiiiiii>i", FN(hf_kv_get)},
    {"kiln", "kv_set", "iiiiiiji>i", FN(hf_kv_set)},
    {"kiln", "kv_delete", "iiii>i", FN(hf_kv_delete)},
    {"kiln", "kv_incr", "iiiiji>i", FN(hf_kv_incr)},
    {"kiln", "kv_expire", "iiiij>i", FN(hf_kv_expire)},
    {"kiln", "kv_ttl", "iiiii>i", FN(hf_kv_ttl)},
    {"kiln", "kv_list", "iiiiiiiii>i", FN(hf_kv_list)},
    {"kiln", "config_get", "iiiii>i", FN(hf_config_get)},
    {"kiln", "log", "iii>i", FN(hf_log)},
};

const kiln_hostfn *kiln_kv_hostfns(size_t *n)
{
    *n = sizeof(kv_table) / sizeof(kv_table[0]);
    return kv_table;
}
