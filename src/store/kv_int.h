/*
 * kv_int.h - private to src/store: helpers the backends share (key order,
 * page building, decimal integers, logging).
 */
#ifndef KILN_STORE_KV_INT_H
#define KILN_STORE_KV_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/kv.h"

/* Bytewise order of keys, shorter first on a common prefix (SQLite's BLOB
 * order, so both backends list in the same order). */
int kv_key_cmp(const void *a, size_t alen, const void *b, size_t blen);
bool kv_has_prefix(const void *key, size_t klen, const void *prefix, size_t plen);

/* Building a kiln_kv_page: add keys in order, then finish (or abort). */
typedef struct kv_page_builder {
    kiln_kv_page *page;
    size_t cap_keys, data_len, data_cap;
} kv_page_builder;

void kv_pb_init(kv_page_builder *b, kiln_kv_page *page);
int kv_pb_add(kv_page_builder *b, const void *key, size_t len); /* KILN_OK / KILN_ENOMEM */
void kv_pb_finish(kv_page_builder *b);
void kv_pb_abort(kv_page_builder *b);

/* A whole value that is a decimal int64 ("-12", "0"; no spaces or '+'). */
bool kv_parse_i64(const void *p, size_t n, int64_t *out /* OUT */);
/* The same as a status for incr: KILN_OK, KILN_ETYPE (not a decimal
 * integer) or KILN_EINVAL (a decimal integer outside int64). */
int kv_parse_counter(const void *p, size_t n, int64_t *out /* OUT */);
/* v + delta into *out, KILN_OK; KILN_EINVAL if it leaves int64 (never
 * clamped). */
int kv_add_i64(int64_t v, int64_t delta, int64_t *out /* OUT */);

/* Does a write that replaces `old_size` bytes (key + value; 0 for a new
 * key) with `new_size` keep a namespace holding `used` bytes within
 * `max_bytes` (0 = no quota)? A write that does not grow it always fits. */
bool kv_quota_fits(uint64_t used, uint64_t old_size, uint64_t new_size, uint64_t max_bytes);
/* Decimal text of v into buf (24 bytes); returns its length. */
size_t kv_fmt_i64(int64_t v, char *buf);

/* Absolute expiry for a TTL from `now` (0 = none), saturating. */
int64_t kv_expiry(int64_t now, int64_t ttl_ms);

/* One line on stderr ("kiln kv: ..."), written at once. */
void kv_log(const char *fmt, ...) KILN_PRINTF(1, 2);

/* ---- storage events (kv_events.c) ---- */

/* A private copy of a subscription set (kiln_kv_sub), one allocation. */
typedef struct kv_subset {
    kiln_kv_sub *subs;
    size_t n;
} kv_subset;

/* Copy subs (max_queue defaults filled in); NULL when out of memory.
 * n 0 gives an empty set. Free with kiln_free. */
kv_subset *kv_subset_copy(const kiln_kv_sub *subs, size_t n);
/* Is (fn, ns) in the set? */
bool kv_subset_has(const kv_subset *set, const char *fn, const char *ns);

/* Building a kiln_kv_events: add events (every pointer copied), then finish
 * (or abort). */
typedef struct kv_evb {
    kiln_kv_events *out;
    size_t cap_ev, len, cap;
} kv_evb;

void kv_evb_init(kv_evb *b, kiln_kv_events *out);
int kv_evb_add(kv_evb *b, const kiln_kv_qevent *e); /* KILN_OK / KILN_ENOMEM */
void kv_evb_finish(kv_evb *b);
void kv_evb_abort(kv_evb *b);

/* Log that function fn's full queue refused a write into ns (at most once a
 * minute per store and function). */
void kv_log_queue_full(const void *store, const char *fn, const char *ns, uint64_t max_queue);

/* The wall clock in nanoseconds (event timestamps). */
int64_t kv_now_ns(void);

#endif
