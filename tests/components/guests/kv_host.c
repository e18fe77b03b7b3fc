/*
 * kv_host.c - a kiln:faas handler of world handler-host (wit/kiln-faas.wit,
 * the WIT `kiln wit` publishes) using Kiln's host interfaces for
 * components, wasi:keyvalue@0.2.0-draft2, wasi:config and wasi:logging,
 * through canonical-ABI glue written by hand (test_component_kv.sh).
 *
 * Storage events (object-added, object-updated): the event's key and
 * payload are copied into bucket "evout" (a subscriber that writes back).
 * HTTP requests (message events), by how the path ends; each reports what
 * it saw as invalid("...") (a 400 whose body is the report):
 *   /run     opens "default", increments "counter", sets, gets, checks and
 *            deletes "tmp", lists the keys, reads config "greeting", logs
 *            at info and warn, writes "from-component" in bucket "shared",
 *            opens "secret" (not granted) and "bad:name" (no namespace)
 *   /big     sets a value of as many bytes as the payload says (decimal)
 *   /ro      sets a key in "catalog" (granted read-only)
 *   /batch   set-many, get-many (one key absent), delete-many, get-all
 *   /fill    set-many of N (the payload, decimal) keys of 900 bytes in
 *            "default", 100 per call
 *   /page    list-keys of "default" page by page: the number of keys and
 *            pages
 *   /loop    opens buckets without dropping them until open fails
 *   /drop    opens and drops 5000 buckets, then one more
 *   /write   bucket "bucket": sets the key named by the payload to "v"
 *   /incr    opens "default", increments "n" by 1 as many times as the
 *            payload says (decimal; none: once), drops it: 204 when all
 *            went well (for measuring the cost of a KV call)
 *   /logs    logs 100 lines at info through wasi:logging
 *   /setloop sets keys f0.. f<N-1> (N the payload) to "xxxxxxxx" one set
 *            per call, as tests/guests_kv/flood.c op=fill does with kiln.kv_set
 * Any other path answers ok (204) without touching anything.
 * kiln-component: ../../../wit handler-host
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * The canonical ABI of these imports (wasm32): strings and lists are
 * (pointer, length) pairs; a bucket is an i32 handle; every result spills
 * to the last parameter, a pointer to memory the host writes:
 *   result<bucket, error>             u8 case @0; ok: handle @4; err: error @4
 *   error                             u8 case @0 (0 no-such-store, 1 access-denied,
 *                                     2 other), other's string ptr @4 len @8
 *   result<option<list<u8>>, error>   case @0; option case @4, list @8 @12
 *   result<_, error>, result<bool,..> case @0; bool @4 or error @4
 *   result<key-response, error>       case @0; keys list @4 @8 (each string
 *                                     ptr/len, 8 bytes), cursor option @12, @16 @20
 *   result<s64, error> (increment)    case @0; value or error @8 (8-aligned)
 *   get-many's list elements          option<tuple<string, list<u8>>>: 20 bytes,
 *                                     case @0, key @4 @8, value @12 @16
 *   config get: result<option<string>, error> as get; get-all: list @4 @8
 *                                     of tuple<string, string> (16 bytes)
 *   log(level, context, message)      enum as i32, two strings; no result
 * Memory the host allocates for results comes from cabi_realloc (never
 * freed here: the instance lives for one event).
 */
#define IMPORT(m, n) __attribute__((import_module(m), import_name(n)))
#define KV "wasi:keyvalue/store@0.2.0-draft2"

IMPORT(KV, "open") extern void kv_open(const char *p, size_t n, uint8_t *ret);
IMPORT(KV, "[method]bucket.get") extern void kv_get(uint32_t b, const char *k, size_t kn,
                                                    uint8_t *ret);
IMPORT(KV, "[method]bucket.set") extern void kv_set(uint32_t b, const char *k, size_t kn,
                                                    const void *v, size_t vn, uint8_t *ret);
IMPORT(KV, "[method]bucket.delete") extern void kv_delete(uint32_t b, const char *k, size_t kn,
                                                          uint8_t *ret);
IMPORT(KV, "[method]bucket.exists") extern void kv_exists(uint32_t b, const char *k, size_t kn,
                                                          uint8_t *ret);
IMPORT(KV, "[method]bucket.list-keys") extern void kv_list(uint32_t b, uint32_t some,
                                                           const char *c, size_t cn,
                                                           uint8_t *ret);
IMPORT(KV, "[resource-drop]bucket") extern void kv_drop(uint32_t b);
IMPORT("wasi:keyvalue/atomics@0.2.0-draft2", "increment") extern void
kv_incr(uint32_t b, const char *k, size_t kn, int64_t delta, uint8_t *ret);
IMPORT("wasi:keyvalue/batch@0.2.0-draft2", "get-many") extern void
kv_get_many(uint32_t b, const void *keys, size_t n, uint8_t *ret);
IMPORT("wasi:keyvalue/batch@0.2.0-draft2", "set-many") extern void
kv_set_many(uint32_t b, const void *pairs, size_t n, uint8_t *ret);
IMPORT("wasi:keyvalue/batch@0.2.0-draft2", "delete-many") extern void
kv_delete_many(uint32_t b, const void *keys, size_t n, uint8_t *ret);
IMPORT("wasi:config/store@0.2.0-draft", "get") extern void cfg_get(const char *k, size_t kn,
                                                                   uint8_t *ret);
IMPORT("wasi:config/store@0.2.0-draft", "get-all") extern void cfg_get_all(uint8_t *ret);
IMPORT("wasi:logging/logging@0.1.0-draft", "log") extern void log_(uint32_t level,
                                                                   const char *c, size_t cn,
                                                                   const char *m, size_t mn);

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

/* Every result the host writes (at most 24 bytes, 8-aligned). */
static uint8_t r[32] __attribute__((aligned(8)));
static uint8_t ret[16] __attribute__((aligned(4)));
static char text[4096];
static size_t tlen;

static uint32_t u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void put(const char *s, size_t n)
{
    if (n > sizeof(text) - 1 - tlen)
        n = sizeof(text) - 1 - tlen;
    memcpy(text + tlen, s, n);
    tlen += n;
}

static void puts_(const char *s)
{
    put(s, strlen(s));
}

static void putnum(long long v)
{
    char b[24];
    int i = sizeof(b);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        b[--i] = '-';
    put(b + i, sizeof(b) - (size_t)i);
}

/* The error variant at r + off: its case, and other's text. */
static void put_error(size_t off)
{
    static const char *const cases[] = {"no-such-store", "access-denied", "other"};
    uint8_t c = r[off];
    puts_(c < 3 ? cases[c] : "?");
    if (c == 2) {
        puts_(":");
        put((const char *)(uintptr_t)u32(r + off + 4), u32(r + off + 8));
    }
}

/* result<_, error> (and the like, payload at 4): "ok" or the error. */
static void put_result(void)
{
    if (r[0] == 0)
        puts_("ok");
    else
        put_error(4);
}

static const char *S(const char *s, size_t *n)
{
    *n = strlen(s);
    return s;
}

/* open(name): the handle, or 0 with the error reported as "<label>=<error>". */
static uint32_t open_(const char *name, const char *label)
{
    kv_open(name, strlen(name), r);
    if (r[0] == 0)
        return u32(r + 4);
    if (label != NULL) {
        puts_(" ");
        puts_(label);
        puts_("=");
        put_error(4);
    }
    return 0;
}

static void set_(uint32_t b, const char *k, const char *v)
{
    kv_set(b, k, strlen(k), v, strlen(v), r);
}

static void run(void)
{
    uint32_t b = open_("default", "default");
    if (b == 0)
        return;
    size_t n;
    const char *k = S("counter", &n);
    kv_incr(b, k, n, 1, r);
    puts_("counter=");
    if (r[0] == 0) {
        int64_t v;
        memcpy(&v, r + 8, 8);
        putnum(v);
    } else {
        put_error(8);
    }
    set_(b, "greeting", "hello");
    puts_(" set=");
    put_result();
    kv_get(b, "greeting", 8, r);
    puts_(" get=");
    if (r[0] == 0 && r[4] == 1)
        put((const char *)(uintptr_t)u32(r + 8), u32(r + 12));
    else if (r[0] == 0)
        puts_("none");
    else
        put_error(4);
    kv_get(b, "nope", 4, r);
    puts_(" get-absent=");
    puts_(r[0] == 0 && r[4] == 0 ? "none" : "?");
    set_(b, "tmp", "x");
    kv_exists(b, "tmp", 3, r);
    puts_(" exists=");
    putnum(r[0] == 0 ? r[4] : -1);
    kv_delete(b, "tmp", 3, r);
    puts_(" delete=");
    put_result();
    kv_exists(b, "tmp", 3, r);
    puts_(" exists-after=");
    putnum(r[0] == 0 ? r[4] : -1);
    kv_delete(b, "tmp", 3, r);
    puts_(" delete-absent=");
    put_result();
    kv_list(b, 0, NULL, 0, r);
    puts_(" keys=");
    if (r[0] == 0) {
        const uint8_t *keys = (const uint8_t *)(uintptr_t)u32(r + 4);
        for (uint32_t i = 0; i < u32(r + 8); i++) {
            if (i)
                puts_(",");
            put((const char *)(uintptr_t)u32(keys + 8 * i), u32(keys + 8 * i + 4));
        }
        puts_(r[12] ? " cursor=some" : " cursor=none");
    } else {
        put_error(4);
    }
    kv_set(b, "", 0, "x", 1, r);
    puts_(" empty-key=");
    put_result();
    kv_drop(b);

    cfg_get("greeting", 8, r);
    puts_(" config=");
    if (r[0] == 0 && r[4] == 1)
        put((const char *)(uintptr_t)u32(r + 8), u32(r + 12));
    else
        puts_(r[0] == 0 ? "none" : "error");
    cfg_get("missing", 7, r);
    puts_(" config-missing=");
    puts_(r[0] == 0 && r[4] == 0 ? "none" : "?");

    log_(2, "kv_host", 7, "info line from a component", 26);
    log_(3, "", 0, "warn line from a component", 26);
    log_(0, "kv_host", 7, "trace line (below the level)", 28);

    uint32_t s = open_("shared", "shared");
    if (s != 0) {
        set_(s, "from-component", "yes");
        puts_(" shared=");
        put_result();
        kv_drop(s);
    }
    open_("secret", "secret");
    open_("bad:name", "bad");
    open_("", "empty");
}

static void big(const uint8_t *payload, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && payload[i] >= '0' && payload[i] <= '9'; i++)
        n = n * 10 + (payload[i] - '0');
    uint32_t b = open_("default", "default");
    if (b == 0)
        return;
    char *v = malloc(n ? n : 1);
    memset(v, 'z', n);
    kv_set(b, "big", 3, v, n, r);
    free(v);
    puts_("big=");
    put_result();
    kv_drop(b);
}

static void ro(void)
{
    uint32_t b = open_("catalog", "catalog");
    if (b == 0)
        return;
    kv_get(b, "item", 4, r);
    puts_("get=");
    if (r[0] == 0 && r[4] == 1)
        put((const char *)(uintptr_t)u32(r + 8), u32(r + 12));
    else
        puts_(r[0] == 0 ? "none" : "error");
    set_(b, "item", "changed");
    puts_(" set=");
    put_result();
    kv_drop(b);
}

struct str {
    const char *p;
    uint32_t n;
};
struct pair {
    struct str k, v;
};

static void batch(void)
{
    uint32_t b = open_("default", "default");
    if (b == 0)
        return;
    struct pair pairs[3] = {{{"b1", 2}, {"one", 3}}, {{"b2", 2}, {"two", 3}}, {{"b3", 2}, {"", 0}}};
    kv_set_many(b, pairs, 3, r);
    puts_("set-many=");
    put_result();
    struct str keys[4] = {{"b1", 2}, {"zz", 2}, {"b2", 2}, {"b3", 2}};
    kv_get_many(b, keys, 4, r);
    puts_(" get-many=");
    if (r[0] == 0) {
        const uint8_t *e = (const uint8_t *)(uintptr_t)u32(r + 4);
        for (uint32_t i = 0; i < u32(r + 8); i++, e += 20) {
            if (i)
                puts_(",");
            if (e[0] == 0) {
                puts_("none");
                continue;
            }
            put((const char *)(uintptr_t)u32(e + 4), u32(e + 8));
            puts_(":");
            put((const char *)(uintptr_t)u32(e + 12), u32(e + 16));
        }
    } else {
        put_error(4);
    }
    kv_delete_many(b, keys, 4, r);
    puts_(" delete-many=");
    put_result();
    kv_exists(b, "b1", 2, r);
    puts_(" b1-after=");
    putnum(r[0] == 0 ? r[4] : -1);
    kv_drop(b);
    cfg_get_all(r);
    puts_(" config-all=");
    if (r[0] == 0) {
        const uint8_t *e = (const uint8_t *)(uintptr_t)u32(r + 4);
        for (uint32_t i = 0; i < u32(r + 8); i++, e += 16) {
            if (i)
                puts_(",");
            put((const char *)(uintptr_t)u32(e), u32(e + 4));
            puts_("=");
            put((const char *)(uintptr_t)u32(e + 8), u32(e + 12));
        }
    }
}

static void fill(const uint8_t *payload, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && payload[i] >= '0' && payload[i] <= '9'; i++)
        n = n * 10 + (payload[i] - '0');
    uint32_t b = open_("default", "default");
    if (b == 0)
        return;
    static char keys[100][900];
    struct pair pairs[100];
    for (size_t done = 0; done < n;) {
        size_t k = 0;
        for (; k < 100 && done < n; k++, done++) {
            memset(keys[k], 'k', sizeof(keys[k]));
            memcpy(keys[k], "fill", 4);
            for (size_t d = 0, v = done; d < 4; d++, v /= 10)
                keys[k][7 - d] = (char)('0' + v % 10); /* fill0000.. fill9999 */
            pairs[k] = (struct pair){{keys[k], sizeof(keys[k])}, {"x", 1}};
        }
        kv_set_many(b, pairs, k, r);
        if (r[0] != 0) {
            puts_("fill=");
            put_error(4);
            return;
        }
    }
    puts_("fill=ok");
    kv_drop(b);
}

static void page(void)
{
    uint32_t b = open_("default", "default");
    if (b == 0)
        return;
    long keys = 0, pages = 0;
    uint32_t some = 0;
    const char *cur = NULL;
    size_t curn = 0;
    do {
        kv_list(b, some, cur, curn, r);
        if (r[0] != 0) {
            puts_("error=");
            put_error(4);
            return;
        }
        pages++;
        keys += u32(r + 8);
        some = r[12];
        cur = (const char *)(uintptr_t)u32(r + 16);
        curn = u32(r + 20);
    } while (some && pages < 100000);
    puts_("keys=");
    putnum(keys);
    puts_(" pages=");
    putnum(pages);
    kv_drop(b);
}

static void loop(void)
{
    long n = 0;
    for (;;) {
        kv_open("default", 7, r);
        if (r[0] != 0)
            break;
        n++;
    }
    puts_("opened=");
    putnum(n);
    puts_(" then=");
    put_error(4);
}

static void drop(void)
{
    for (int i = 0; i < 5000; i++) {
        uint32_t b = open_("default", NULL);
        if (b == 0) {
            puts_("failed at ");
            putnum(i);
            return;
        }
        kv_drop(b);
    }
    uint32_t b = open_("default", "last");
    puts_(b != 0 ? "reopened=ok" : " after 5000 drops");
}

static void write_(const uint8_t *payload, size_t len)
{
    uint32_t b = open_("bucket", "bucket");
    if (b == 0)
        return;
    kv_set(b, (const char *)payload, len, "v", 1, r);
    puts_("write=");
    put_result();
    kv_drop(b);
}

/* Storage event: copy key and payload into bucket "evout". */
static void on_event(const char *key, size_t key_len, const uint8_t *payload, size_t len)
{
    uint32_t b = open_("evout", "evout");
    if (b == 0)
        return;
    kv_set(b, key, key_len, payload, len, r);
    kv_drop(b);
    if (r[0] != 0) {
        puts_("evout set=");
        put_error(4);
    }
}

static int ends(const char *key, size_t n, const char *suffix)
{
    size_t l = strlen(suffix);
    return n >= l && memcmp(key + n - l, suffix, l) == 0;
}

/* result<_, handler-error>: ok, or invalid(text) when there is a report. */
static uint8_t *answer(void)
{
    memset(ret, 0, sizeof(ret));
    if (tlen == 0)
        return ret;
    ret[0] = 1;
    ret[4] = 1;
    char *copy = malloc(tlen);
    memcpy(copy, text, tlen);
    uint32_t p = (uint32_t)(uintptr_t)copy, len = (uint32_t)tlen;
    memcpy(ret + 8, &p, 4);
    memcpy(ret + 12, &len, 4);
    return ret;
}

__attribute__((export_name("handle"))) uint8_t *handle(int32_t event_type, int64_t seconds,
                                                       int32_t nanos, char *version,
                                                       size_t version_len, char *source,
                                                       size_t source_len, char *key, size_t key_len,
                                                       uint8_t *payload, size_t payload_len)
{
    tlen = 0;
    if (event_type == 0 || event_type == 2)
        on_event(key, key_len, payload, payload_len);
    else if (ends(key, key_len, "/run"))
        run();
    else if (ends(key, key_len, "/big"))
        big(payload, payload_len);
    else if (ends(key, key_len, "/ro"))
        ro();
    else if (ends(key, key_len, "/batch"))
        batch();
    else if (ends(key, key_len, "/fill"))
        fill(payload, payload_len);
    else if (ends(key, key_len, "/page"))
        page();
    else if (ends(key, key_len, "/loop"))
        loop();
    else if (ends(key, key_len, "/drop"))
        drop();
    else if (ends(key, key_len, "/incr")) {
        kv_open("default", 7, r);
        uint32_t b = r[0] == 0 ? u32(r + 4) : 0;
        if (b == 0) {
            puts_("open failed");
        } else {
            size_t n = 0;
            for (size_t i = 0; i < payload_len && payload[i] >= '0' && payload[i] <= '9'; i++)
                n = n * 10 + (payload[i] - '0');
            for (size_t i = 0; i < (payload_len ? n : 1) && tlen == 0; i++) {
                kv_incr(b, "n", 1, 1, r);
                if (r[0] != 0)
                    puts_("increment failed");
            }
            kv_drop(b);
        }
    } else if (ends(key, key_len, "/logs")) {
        for (int i = 0; i < 100; i++)
            log_(2, "", 0, "flood line", 10);
    } else if (ends(key, key_len, "/setloop")) {
        size_t n = 0;
        for (size_t i = 0; i < payload_len && payload[i] >= '0' && payload[i] <= '9'; i++)
            n = n * 10 + (payload[i] - '0');
        uint32_t b = open_("default", "default");
        for (size_t i = 0; b != 0 && i < n && tlen == 0; i++) {
            char k[16] = "f";
            size_t kl = 1, v = i;
            char d[12];
            int nd = 0;
            do {
                d[nd++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            while (nd > 0)
                k[kl++] = d[--nd];
            kv_set(b, k, kl, "xxxxxxxx", 8, r);
            if (r[0] != 0)
                puts_("set failed");
        }
        if (b != 0)
            kv_drop(b);
    } else if (ends(key, key_len, "/write"))
        write_(payload, payload_len);
    return answer();
}

__attribute__((export_name("cabi_post_handle"))) void post_handle(uint8_t *p)
{
    if (p[0] == 1)
        free((void *)(uintptr_t)u32(p + 8));
}
