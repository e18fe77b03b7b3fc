/*
 * xtm_host.c - the extism:host/env host functions except HTTP: the 20 memory
 * primitives (natively, no kernel module), config, vars, logging, plus the
 * legacy env.extism_* aliases and AssemblyScript's env.abort.
 *
 * The memory primitives are the hot path (PDKs move data 8 bytes per call).
 * Like every host function they run inside the import shim's host bracket
 * (runtime.md, "Host calls"): a deadline unwinds the guest only after they
 * return, with nothing held.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "abi/extism/xtm_int.h"
#include "abi/guest_log.h"
#include "base/alloc.h"
#include "base/utf8.h"
#include "kiln/abi.h"

/* ---- helpers --------------------------------------------------------------- */

xtm_ctx *xtm_ctx_of(kiln_instance *inst)
{
    xtm_ctx *c = kiln_instance_state(inst, KILN_STATE_EXTISM);
    if (c == NULL)
        kiln_host_trap(inst, KILN_TRAP_HOST,
                       "an extism:host/env function was called by an instance without an "
                       "Extism context; run the module through the Extism ABI");
    return c;
}

const xtm_options *xtm_ctx_options(const xtm_ctx *c)
{
    return c->o;
}

const uint8_t *xtm_bytes(xtm_ctx *c, uint64_t off, uint64_t len)
{
    return xtm_mem_ptr(&c->mem, off, len);
}

void xtm_fail(kiln_instance *inst, const char *fmt, ...)
{
    xtm_ctx *c = kiln_instance_state(inst, KILN_STATE_EXTISM);
    char buf[sizeof(c->fail_msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (c != NULL) {
        c->failed = true;
        c->fail_kind = KILN_TRAP_HOST;
        memcpy(c->fail_msg, buf, sizeof(buf));
    }
    kiln_host_trap(inst, KILN_TRAP_HOST, "%s", buf);
}

void xtm_fail_oom(kiln_instance *inst, xtm_ctx *c)
{
    c->failed = true;
    c->fail_kind = KILN_TRAP_OUT_OF_MEMORY;
    snprintf(c->fail_msg, sizeof(c->fail_msg), "oom");
    kiln_host_trap(inst, KILN_TRAP_OUT_OF_MEMORY,
                   "oom: Extism memory would exceed the limit of %llu bytes",
                   (unsigned long long)c->mem.limit);
}

uint64_t xtm_new_block(kiln_instance *inst, const void *data, size_t len)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    uint64_t h = 0;
    int rc = xtm_mem_alloc(&c->mem, len, &h);
    if (rc == KILN_OK && h != 0)
        memcpy(c->mem.buf + h, data, len);
    if (rc == KILN_ELIMIT)
        xtm_fail_oom(inst, c);
    return h;
}

void *xtm_ext_get(xtm_ctx *c)
{
    return c->ext;
}

void xtm_ext_set(xtm_ctx *c, void *p, void (*free_fn)(void *))
{
    if (c->ext != NULL && c->ext_free != NULL && c->ext != p)
        c->ext_free(c->ext);
    c->ext = p;
    c->ext_free = free_fn;
}

long long xtm_remaining_ms(const xtm_ctx *c)
{
    if (c->deadline_ns == 0)
        return -1;
    uint64_t now = xtm_now_ns();
    if (now >= c->deadline_ns)
        return 0;
    return (long long)((c->deadline_ns - now + 999999) / 1000000);
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- memory primitives (extism-abi.md §2.1, §2.2) --------------------------- */

static uint64_t hf_alloc(kiln_instance *inst, uint64_t n)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    uint64_t h = 0;
    int rc = xtm_mem_alloc(&c->mem, n, &h);
    if (rc == KILN_ELIMIT)
        xtm_fail_oom(inst, c);
    return h; /* 0 when the host itself is out of memory, as in Extism */
}

static void hf_free(kiln_instance *inst, uint64_t h)
{
    xtm_mem_free(&xtm_ctx_of(inst)->mem, h);
}

static uint64_t hf_length(kiln_instance *inst, uint64_t h)
{
    return xtm_mem_length(&xtm_ctx_of(inst)->mem, h);
}

static uint32_t hf_load_u8(kiln_instance *inst, uint64_t p)
{
    const uint8_t *b = xtm_mem_ptr(&xtm_ctx_of(inst)->mem, p, 1);
    return b ? *b : 0;
}

static uint64_t hf_load_u64(kiln_instance *inst, uint64_t p)
{
    const uint8_t *b = xtm_mem_ptr(&xtm_ctx_of(inst)->mem, p, 8);
    return b ? rd64(b) : 0;
}

static void hf_store_u8(kiln_instance *inst, uint64_t p, uint32_t v)
{
    uint8_t *b = xtm_mem_ptr(&xtm_ctx_of(inst)->mem, p, 1);
    if (b != NULL)
        *b = (uint8_t)v;
}

static void hf_store_u64(kiln_instance *inst, uint64_t p, uint64_t v)
{
    uint8_t *b = xtm_mem_ptr(&xtm_ctx_of(inst)->mem, p, 8);
    if (b != NULL)
        wr64(b, v);
}

/* Freeing the input block makes the input empty (§2.1). */
static uint64_t input_len(const xtm_ctx *c)
{
    return c->input_h != 0 && xtm_mem_live(&c->mem, c->input_h) ? c->input_len : 0;
}

static uint64_t hf_input_length(kiln_instance *inst)
{
    return input_len(xtm_ctx_of(inst));
}

static uint64_t hf_input_offset(kiln_instance *inst)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    return input_len(c) ? c->input_h : 0;
}

static uint32_t hf_input_load_u8(kiln_instance *inst, uint64_t off)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    if (off >= input_len(c))
        return 0;
    const uint8_t *b = xtm_mem_ptr(&c->mem, c->input_h + off, 1);
    return b ? *b : 0;
}

static uint64_t hf_input_load_u64(kiln_instance *inst, uint64_t off)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    uint64_t n = input_len(c);
    /* All 8 bytes must be inside the input, even when some are (§2.1). */
    if (n < 8 || off > n - 8)
        return 0;
    const uint8_t *b = xtm_mem_ptr(&c->mem, c->input_h + off, 8);
    return b ? rd64(b) : 0;
}

static void hf_output_set(kiln_instance *inst, uint64_t p, uint64_t n)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    if (n == 0) {
        c->output_p = 0;
        c->output_len = 0;
        return;
    }
    /* Ignored when any byte lies outside the allocated region (Rust). */
    if (xtm_mem_ptr(&c->mem, p, n) == NULL)
        return;
    c->output_p = p;
    c->output_len = n;
}

static void hf_error_set(kiln_instance *inst, uint64_t h)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    if (h == 0 || xtm_mem_ptr(&c->mem, h, 0) != NULL)
        c->error_h = h;
}

static uint64_t hf_error_get(kiln_instance *inst)
{
    return xtm_ctx_of(inst)->error_h;
}

static void hf_input_set(kiln_instance *inst, uint64_t h, uint64_t n)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    c->input_h = h;
    c->input_len = n;
}

static uint64_t hf_output_offset(kiln_instance *inst)
{
    return xtm_ctx_of(inst)->output_p;
}

static uint64_t hf_output_length(kiln_instance *inst)
{
    return xtm_ctx_of(inst)->output_len;
}

static void hf_reset(kiln_instance *inst)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    xtm_mem_reset(&c->mem);
    c->input_h = c->input_len = 0;
    c->output_p = c->output_len = 0;
    c->error_h = 0;
}

static uint64_t hf_memory_bytes(kiln_instance *inst)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    return c->mem.size ? c->mem.size : XTM_MEM_INITIAL;
}

/* ---- config and vars (§2.3, §6) ----------------------------------------------- */

/*
 * Read a key block passed to a host function and consume it. 0 = empty key.
 * On an invalid non-zero handle fails the call with the Extism message
 * "invalid handle offset for <what>: <h>". The returned pointer is valid
 * until the next allocation.
 */
static const uint8_t *take_block(kiln_instance *inst, xtm_ctx *c, uint64_t h, const char *what,
                                 size_t *len)
{
    *len = 0;
    if (h == 0)
        return (const uint8_t *)"";
    uint64_t n = xtm_mem_length(&c->mem, h);
    if (n == 0)
        xtm_fail(inst, "invalid handle offset for %s: %llu", what, (unsigned long long)h);
    xtm_mem_consume(&c->mem, h);
    *len = (size_t)n;
    return c->mem.buf + h;
}

static uint64_t hf_config_get(kiln_instance *inst, uint64_t key)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    size_t klen;
    const uint8_t *k = take_block(inst, c, key, "config key", &klen);
    const xtm_options *o = c->o;
    for (size_t i = 0; i < o->n_config; i++) {
        const char *name = o->config[i].name;
        if (strlen(name) == klen && memcmp(name, k, klen) == 0) {
            const char *v = o->config[i].value ? o->config[i].value : "";
            /* An empty value reads as absent (§2.3). */
            return xtm_new_block(inst, v, strlen(v));
        }
    }
    return 0;
}

static uint64_t hf_var_get(kiln_instance *inst, uint64_t key)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    size_t klen;
    take_block(inst, c, key, "var key", &klen);
    if (c->o->max_var_bytes == 0)
        return 0;
    uint64_t h = 0;
    /* The key block is dead, never re-used this call: its bytes stay put
     * even if the value's allocation grows the arena (it copies them). */
    int rc = xtm_vars_get(c, key ? c->mem.buf + key : (const uint8_t *)"", klen, &h);
    if (rc == KILN_ELIMIT)
        xtm_fail_oom(inst, c);
    return h;
}

static void hf_var_set(kiln_instance *inst, uint64_t key, uint64_t value)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    if (c->o->max_var_bytes == 0)
        xtm_fail(inst, "Vars are disabled by this host");
    size_t klen, vlen = 0;
    take_block(inst, c, key, "var key", &klen);
    if (value != 0)
        take_block(inst, c, value, "var value", &vlen);
    const uint8_t *k = key ? c->mem.buf + key : (const uint8_t *)"";
    const uint8_t *v = value ? c->mem.buf + value : NULL;
    int rc = xtm_vars_set(c->fn, k, klen, v, vlen);
    if (rc == KILN_ELIMIT)
        xtm_fail(inst, "Variable store is full");
    if (rc != KILN_OK)
        xtm_fail(inst, "var_set: out of host memory");
}

/* ---- logging ------------------------------------------------------------------ */


/* Every Extism and Otoroshi log line (log_*, proxy_log, a WASI plugin's
 * stdout/stderr) comes through here and so through the invocation's log
 * budget (abi/guest_log.h). */
void xtm_log(xtm_ctx *c, int level, const char *msg, size_t len)
{
    if (level < c->o->log_level || c->o->log_level == XTM_LOG_OFF)
        return;
    const char *fn = c->o->name ? c->o->name : "plugin";
    size_t take;
    if (c->o->log == NULL)
        guest_log_write(fn, xtm_log_level_name(level), msg, len);
    else if (guest_log_admit(len, &take))
        c->o->log(c->o->log_user, level, c->o->name, msg, take);
}

static void do_log(kiln_instance *inst, uint64_t h, int level)
{
    xtm_ctx *c = xtm_ctx_of(inst);
    if (level < c->o->log_level || c->o->log_level == XTM_LOG_OFF) {
        xtm_mem_consume(&c->mem, h);
        return;
    }
    size_t len;
    const uint8_t *msg = take_block(inst, c, h, "log message", &len);
    if (utf8_valid(msg, len)) {
        xtm_log(c, level, (const char *)msg, len);
    } else {
        static const char bad[] = "log message is not valid UTF-8";
        xtm_log(c, XTM_LOG_ERROR, bad, sizeof(bad) - 1);
    }
}

static void hf_log_trace(kiln_instance *inst, uint64_t h)
{
    do_log(inst, h, XTM_LOG_TRACE);
}

static void hf_log_debug(kiln_instance *inst, uint64_t h)
{
    do_log(inst, h, XTM_LOG_DEBUG);
}

static void hf_log_info(kiln_instance *inst, uint64_t h)
{
    do_log(inst, h, XTM_LOG_INFO);
}

static void hf_log_warn(kiln_instance *inst, uint64_t h)
{
    do_log(inst, h, XTM_LOG_WARN);
}

static void hf_log_error(kiln_instance *inst, uint64_t h)
{
    do_log(inst, h, XTM_LOG_ERROR);
}

static uint32_t hf_get_log_level(kiln_instance *inst)
{
    return (uint32_t)xtm_ctx_of(inst)->o->log_level;
}

/* ---- AssemblyScript -------------------------------------------------------------- */

/*
 * Append the AssemblyScript string at guest address p as UTF-8: the runtime
 * stores a string's byte length in the u32 at p - 4 (the object header's
 * rtSize) and its UTF-16LE code units from p. Unpaired surrogates become
 * U+FFFD. Bounded by `cap`.
 */
static size_t as_string(kiln_instance *inst, uint32_t p, char *out, size_t cap)
{
    size_t n = 0;
    const uint8_t *hdr = p >= 4 ? kiln_guest_ptr(inst, (uint64_t)p - 4, 4) : NULL;
    if (hdr == NULL || cap == 0)
        return 0;
    uint32_t bytes = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
                     (uint32_t)hdr[3] << 24;
    const uint8_t *s = kiln_guest_ptr(inst, p, bytes & ~1u);
    if (s == NULL)
        return 0;
    for (uint32_t i = 0; i + 1 < bytes; i += 2) {
        uint32_t cp = (uint32_t)s[i] | (uint32_t)s[i + 1] << 8;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 3 < bytes) {
            uint32_t lo = (uint32_t)s[i + 2] | (uint32_t)s[i + 3] << 8;
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 2;
            } else {
                cp = 0xFFFD;
            }
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD;
        }
        char u[4];
        size_t k;
        if (cp < 0x80) {
            u[0] = (char)cp;
            k = 1;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | cp >> 6);
            u[1] = (char)(0x80 | (cp & 0x3F));
            k = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | cp >> 12);
            u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            k = 3;
        } else {
            u[0] = (char)(0xF0 | cp >> 18);
            u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            k = 4;
        }
        if (n + k >= cap)
            break;
        memcpy(out + n, u, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}

/* env.abort(message, fileName, line, column): AssemblyScript's failed
 * assertion or explicit abort(). Unwinds the guest with the decoded text. */
static void hf_as_abort(kiln_instance *inst, uint32_t msg, uint32_t file, uint32_t line,
                        uint32_t col)
{
    char m[256] = "", f[128] = "";
    if (msg != 0)
        as_string(inst, msg, m, sizeof(m));
    if (file != 0)
        as_string(inst, file, f, sizeof(f));
    kiln_host_trap(inst, KILN_TRAP_HOST, "abort: %s at %s:%u:%u", m[0] ? m : "(no message)",
                   f[0] ? f : "?", line, col);
}

/* ---- the table -------------------------------------------------------------------- */

#define XH "extism:host/env"
#define FN(f) ((void (*)(void))(f))

static const kiln_hostfn xtm_table[] = {
    {XH, "alloc", "j>j", FN(hf_alloc)},
    {XH, "free", "j>", FN(hf_free)},
    {XH, "length", "j>j", FN(hf_length)},
    {XH, "length_unsafe", "j>j", FN(hf_length)},
    {XH, "load_u8", "j>i", FN(hf_load_u8)},
    {XH, "load_u64", "j>j", FN(hf_load_u64)},
    {XH, "store_u8", "ji>", FN(hf_store_u8)},
    {XH, "store_u64", "jj>", FN(hf_store_u64)},
    {XH, "input_length", ">j", FN(hf_input_length)},
    {XH, "input_offset", ">j", FN(hf_input_offset)},
    {XH, "input_load_u8", "j>i", FN(hf_input_load_u8)},
    {XH, "input_load_u64", "j>j", FN(hf_input_load_u64)},
    {XH, "output_set", "jj>", FN(hf_output_set)},
    {XH, "error_set", "j>", FN(hf_error_set)},
    {XH, "error_get", ">j", FN(hf_error_get)},
    {XH, "input_set", "jj>", FN(hf_input_set)},
    {XH, "output_offset", ">j", FN(hf_output_offset)},
    {XH, "output_length", ">j", FN(hf_output_length)},
    {XH, "reset", ">", FN(hf_reset)},
    {XH, "memory_bytes", ">j", FN(hf_memory_bytes)},
    {XH, "config_get", "j>j", FN(hf_config_get)},
    {XH, "var_get", "j>j", FN(hf_var_get)},
    {XH, "var_set", "jj>", FN(hf_var_set)},
    {XH, "http_request", "jj>j", FN(xtm_hf_http_request)},
    {XH, "http_status_code", ">i", FN(xtm_hf_http_status_code)},
    {XH, "http_headers", ">j", FN(xtm_hf_http_headers)},
    {XH, "log_trace", "j>", FN(hf_log_trace)},
    {XH, "log_debug", "j>", FN(hf_log_debug)},
    {XH, "log_info", "j>", FN(hf_log_info)},
    {XH, "log_warn", "j>", FN(hf_log_warn)},
    {XH, "log_error", "j>", FN(hf_log_error)},
    {XH, "get_log_level", ">i", FN(hf_get_log_level)},
    /* Pre-1.0 names (§2.4), still used by old Otoroshi demo plugins. */
    {"env", "extism_alloc", "j>j", FN(hf_alloc)},
    {"env", "extism_free", "j>", FN(hf_free)},
    {"env", "extism_length", "j>j", FN(hf_length)},
    {"env", "extism_load_u8", "j>i", FN(hf_load_u8)},
    {"env", "extism_load_u64", "j>j", FN(hf_load_u64)},
    {"env", "extism_store_u8", "ji>", FN(hf_store_u8)},
    {"env", "extism_store_u64", "jj>", FN(hf_store_u64)},
    {"env", "extism_input_length", ">j", FN(hf_input_length)},
    {"env", "extism_input_offset", ">j", FN(hf_input_offset)},
    {"env", "extism_input_load_u8", "j>i", FN(hf_input_load_u8)},
    {"env", "extism_input_load_u64", "j>j", FN(hf_input_load_u64)},
    {"env", "extism_output_set", "jj>", FN(hf_output_set)},
    {"env", "extism_error_set", "j>", FN(hf_error_set)},
    {"env", "extism_error_get", ">j", FN(hf_error_get)},
    {"env", "extism_input_set", "jj>", FN(hf_input_set)},
    {"env", "extism_output_offset", ">j", FN(hf_output_offset)},
    {"env", "extism_output_length", ">j", FN(hf_output_length)},
    {"env", "extism_reset", ">", FN(hf_reset)},
    {"env", "extism_memory_bytes", ">j", FN(hf_memory_bytes)},
    {"env", "extism_config_get", "j>j", FN(hf_config_get)},
    {"env", "extism_var_get", "j>j", FN(hf_var_get)},
    {"env", "extism_var_set", "jj>", FN(hf_var_set)},
    {"env", "extism_http_request", "jj>j", FN(xtm_hf_http_request)},
    {"env", "extism_http_status_code", ">i", FN(xtm_hf_http_status_code)},
    {"env", "extism_log_info", "j>", FN(hf_log_info)},
    {"env", "extism_log_debug", "j>", FN(hf_log_debug)},
    {"env", "extism_log_warn", "j>", FN(hf_log_warn)},
    {"env", "extism_log_error", "j>", FN(hf_log_error)},
    /* AssemblyScript's runtime imports this unless built with --use abort=. */
    {"env", "abort", "iiii>", FN(hf_as_abort)},
};

const kiln_hostfn *xtm_hostfns(size_t *n)
{
    *n = sizeof(xtm_table) / sizeof(xtm_table[0]);
    return xtm_table;
}
