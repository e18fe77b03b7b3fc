/*
 * policy.c - a hand-written OPA policy module for Kiln's tests.
 *
 * `opa build -t wasm` is not available offline, so this C file implements
 * the OPA WebAssembly ABI 1.x exports the way OPA-compiled policies do:
 * memory imported as env.memory; env.opa_abort / opa_println /
 * opa_builtin0..4 imported; opa_malloc/opa_free/opa_heap_ptr_get/set over a
 * bump heap in that memory; opa_json_parse/opa_json_dump over a small JSON
 * value model; eval contexts (opa_eval_ctx_new, _set_input, _set_data,
 * _set_entrypoint, _get_result, eval) producing a result set
 * [{"result": R}]; the builtins ({}) and entrypoints exports; ABI 1.2's
 * one-shot opa_eval. build.sh adds the opa_wasm_abi_version (1) and
 * opa_wasm_abi_minor_version (ABI_MINOR, default 2) i32 globals, which C
 * cannot export as values.
 *
 * The policy, as Rego:
 *   package kiln.authz
 *   default allow := false
 *   allow if input.request.headers["x-role"] == "admin"
 *   allow if { input.request.method == "GET"; startswith(input.request.path, "/public") }
 *   decision := {"allow": allow, "status": 401, "message": "admin role or public GET required"}
 * entrypoints {"kiln/authz/allow": 0, "kiln/authz/decision": 1}.
 *
 * Variants (build.sh): -DABI_MINOR=1 drops opa_eval (the eval-context path);
 * -DBUILTINS='"{...}"' declares builtins; -DHOSTILE adds test entrypoints
 * that abort, print, call an undeclared builtin, or return a bad address.
 */
#define EXPORT(n) __attribute__((export_name(n)))
#define IMPORT(n) __attribute__((import_module("env"), import_name(n)))

typedef unsigned int u32;
typedef unsigned long size_t;

IMPORT("opa_abort") void opa_abort(const char *msg);
IMPORT("opa_println") void opa_println(const char *msg);
IMPORT("opa_builtin0") u32 opa_builtin0(u32 id, u32 ctx);
IMPORT("opa_builtin1") u32 opa_builtin1(u32 id, u32 ctx, u32 a);
IMPORT("opa_builtin2") u32 opa_builtin2(u32 id, u32 ctx, u32 a, u32 b);
IMPORT("opa_builtin3") u32 opa_builtin3(u32 id, u32 ctx, u32 a, u32 b, u32 c);
IMPORT("opa_builtin4") u32 opa_builtin4(u32 id, u32 ctx, u32 a, u32 b, u32 c, u32 d);

#ifndef ABI_MINOR
#define ABI_MINOR 2
#endif
#ifndef BUILTINS
#define BUILTINS "{}"
#endif

/* ---- heap ---------------------------------------------------------------------- */

extern unsigned char __heap_base;
static u32 heap_ptr;

static void heap_init(void)
{
    if (heap_ptr == 0)
        heap_ptr = (u32)&__heap_base;
}

EXPORT("opa_malloc") void *opa_malloc(u32 size)
{
    heap_init();
    u32 p = (heap_ptr + 7) & ~7u;
    u32 end = p + size;
    if (end < p)
        opa_abort("opa_malloc: out of memory");
    u32 have = (u32)__builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        u32 pages = (end - have + 65535) / 65536;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1)
            opa_abort("opa_malloc: out of memory");
    }
    heap_ptr = end;
    return (void *)p;
}

EXPORT("opa_free") void opa_free(void *p) { (void)p; /* a bump heap frees by opa_heap_ptr_set */ }
EXPORT("opa_heap_ptr_get") u32 opa_heap_ptr_get(void) { heap_init(); return heap_ptr; }
EXPORT("opa_heap_ptr_set") void opa_heap_ptr_set(u32 p) { heap_ptr = p; }

static void copy(char *d, const char *s, u32 n) { for (u32 i = 0; i < n; i++) d[i] = s[i]; }
static u32 cstrlen(const char *s) { u32 n = 0; while (s[n]) n++; return n; }

/* ---- values ------------------------------------------------------------------------ */

enum { T_NULL, T_BOOL, T_NUM, T_STR, T_ARR, T_OBJ };
typedef struct val val;
struct val {
    int type;
    int b;          /* bool */
    char *s;        /* string bytes (decoded), number text */
    u32 len;
    val **items;    /* array items; object: key, value, key, value, ... */
    u32 n;          /* items (objects: 2 per member) */
};

static val *mk(int type) { val *v = opa_malloc(sizeof(val)); v->type = type; v->b = 0; v->s = 0; v->len = 0; v->items = 0; v->n = 0; return v; }
static val *mk_bool(int b) { val *v = mk(T_BOOL); v->b = b; return v; }
static val *mk_str(const char *s) { val *v = mk(T_STR); v->len = cstrlen(s); v->s = opa_malloc(v->len); copy(v->s, s, v->len); return v; }
static val *mk_num(const char *text) { val *v = mk_str(text); v->type = T_NUM; return v; }

static void push(val *c, val *item)
{
    val **a = opa_malloc((c->n + 1) * sizeof(val *));
    for (u32 i = 0; i < c->n; i++) a[i] = c->items[i];
    a[c->n++] = item;
    c->items = a;
}
static void put(val *o, const char *k, val *v) { push(o, mk_str(k)); push(o, v); }

static val *get(const val *o, const char *k)
{
    if (o == 0 || o->type != T_OBJ) return 0;
    u32 kl = cstrlen(k);
    for (u32 i = 0; i + 1 < o->n; i += 2) {
        const val *key = o->items[i];
        if (key->len == kl) {
            u32 j = 0;
            while (j < kl && key->s[j] == k[j]) j++;
            if (j == kl) return o->items[i + 1];
        }
    }
    return 0;
}

static int str_is(const val *v, const char *s, int prefix)
{
    if (v == 0 || v->type != T_STR) return 0;
    u32 n = cstrlen(s);
    if (v->len < n || (!prefix && v->len != n)) return 0;
    for (u32 i = 0; i < n; i++) if (v->s[i] != s[i]) return 0;
    return 1;
}

/* ---- JSON parsing ---------------------------------------------------------------------- */

typedef struct rd { const char *p, *end; int bad; } rd;

static void ws(rd *r) { while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++; }
static int lit(rd *r, const char *w) { u32 n = cstrlen(w); if ((u32)(r->end - r->p) < n) return 0; for (u32 i = 0; i < n; i++) if (r->p[i] != w[i]) return 0; r->p += n; return 1; }
static int hex(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

static u32 hex4(rd *r)
{
    u32 v = 0;
    for (int i = 0; i < 4; i++) {
        int h = r->p < r->end ? hex(*r->p) : -1;
        if (h < 0) { r->bad = 1; return 0; }
        v = v * 16 + (u32)h;
        r->p++;
    }
    return v;
}

static val *parse_str(rd *r)
{
    r->p++; /* the opening quote */
    /* Decoded text is never longer than the source. */
    const char *q = r->p;
    while (q < r->end && *q != '"') q += (*q == '\\') ? 2 : 1;
    if (q >= r->end) { r->bad = 1; return 0; }
    val *v = mk(T_STR);
    char *o = opa_malloc((u32)(q - r->p) + 1);
    v->s = o;
    while (r->p < r->end && *r->p != '"') {
        unsigned char c = (unsigned char)*r->p++;
        if (c < 0x20) { r->bad = 1; return 0; }
        if (c != '\\') { *o++ = (char)c; continue; }
        if (r->p >= r->end) { r->bad = 1; return 0; }
        c = (unsigned char)*r->p++;
        switch (c) {
        case '"': case '\\': case '/': *o++ = (char)c; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            u32 cp = hex4(r);
            if (cp >= 0xD800 && cp < 0xDC00 && lit(r, "\\u")) {
                u32 lo = hex4(r);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp < 0x80) *o++ = (char)cp;
            else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 63)); }
            else if (cp < 0x10000) { *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | ((cp >> 6) & 63)); *o++ = (char)(0x80 | (cp & 63)); }
            else { *o++ = (char)(0xF0 | cp >> 18); *o++ = (char)(0x80 | ((cp >> 12) & 63)); *o++ = (char)(0x80 | ((cp >> 6) & 63)); *o++ = (char)(0x80 | (cp & 63)); }
            break;
        }
        default: r->bad = 1; return 0;
        }
    }
    r->p++; /* the closing quote */
    v->len = (u32)(o - v->s);
    return v;
}

static val *parse_val(rd *r, int depth)
{
    ws(r);
    if (r->p >= r->end || depth > 64) { r->bad = 1; return 0; }
    char c = *r->p;
    if (c == '"') return parse_str(r);
    if (lit(r, "null")) return mk(T_NULL);
    if (lit(r, "true")) return mk_bool(1);
    if (lit(r, "false")) return mk_bool(0);
    if (c == '[' || c == '{') {
        int obj = c == '{';
        val *v = mk(obj ? T_OBJ : T_ARR);
        r->p++;
        ws(r);
        if (r->p < r->end && *r->p == (obj ? '}' : ']')) { r->p++; return v; }
        for (;;) {
            ws(r);
            if (obj) {
                if (r->p >= r->end || *r->p != '"') { r->bad = 1; return 0; }
                val *k = parse_str(r);
                ws(r);
                if (r->bad || r->p >= r->end || *r->p++ != ':') { r->bad = 1; return 0; }
                push(v, k);
            }
            val *item = parse_val(r, depth + 1);
            if (r->bad) return 0;
            push(v, item);
            ws(r);
            if (r->p < r->end && *r->p == ',') { r->p++; continue; }
            if (r->p < r->end && *r->p == (obj ? '}' : ']')) { r->p++; return v; }
            r->bad = 1;
            return 0;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        const char *s = r->p;
        while (r->p < r->end && (*r->p == '-' || *r->p == '+' || *r->p == '.' || *r->p == 'e' ||
                                 *r->p == 'E' || (*r->p >= '0' && *r->p <= '9')))
            r->p++;
        val *v = mk(T_NUM);
        v->len = (u32)(r->p - s);
        v->s = opa_malloc(v->len);
        copy(v->s, s, v->len);
        return v;
    }
    r->bad = 1;
    return 0;
}

EXPORT("opa_json_parse") val *opa_json_parse(const char *s, u32 len)
{
    rd r = {s, s + len, 0};
    val *v = parse_val(&r, 0);
    ws(&r);
    return r.bad || r.p != r.end ? 0 : v;
}

/* ---- JSON dumping -------------------------------------------------------------------- */

typedef struct wr { char *buf; u32 len, cap; } wr;

static void out(wr *w, const char *s, u32 n)
{
    if (w->len + n + 1 > w->cap) {
        u32 cap = (w->cap ? w->cap * 2 : 256);
        while (cap < w->len + n + 1) cap *= 2;
        char *b = opa_malloc(cap);
        copy(b, w->buf, w->len);
        w->buf = b;
        w->cap = cap;
    }
    copy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

static void dump_str(wr *w, const char *s, u32 n)
{
    out(w, "\"", 1);
    for (u32 i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; out(w, e, 2); }
        else if (c < 0x20) { const char *hx = "0123456789abcdef"; char e[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]}; out(w, e, 6); }
        else out(w, (const char *)&s[i], 1);
    }
    out(w, "\"", 1);
}

static void dump(wr *w, const val *v)
{
    switch (v ? v->type : T_NULL) {
    case T_NULL: out(w, "null", 4); break;
    case T_BOOL: v->b ? out(w, "true", 4) : out(w, "false", 5); break;
    case T_NUM: out(w, v->s, v->len); break;
    case T_STR: dump_str(w, v->s, v->len); break;
    case T_ARR:
        out(w, "[", 1);
        for (u32 i = 0; i < v->n; i++) { if (i) out(w, ",", 1); dump(w, v->items[i]); }
        out(w, "]", 1);
        break;
    case T_OBJ:
        out(w, "{", 1);
        for (u32 i = 0; i + 1 < v->n; i += 2) {
            if (i) out(w, ",", 1);
            dump(w, v->items[i]);
            out(w, ":", 1);
            dump(w, v->items[i + 1]);
        }
        out(w, "}", 1);
        break;
    }
}

EXPORT("opa_json_dump") char *opa_json_dump(const val *v)
{
    wr w = {0, 0, 0};
    out(&w, "", 0);
    dump(&w, v);
    return w.buf;
}

/* ---- declarations -------------------------------------------------------------------- */

EXPORT("builtins") val *builtins(void)
{
    const char *b = BUILTINS;
    return opa_json_parse(b, cstrlen(b));
}

EXPORT("entrypoints") val *entrypoints(void)
{
    val *o = mk(T_OBJ);
    put(o, "kiln/authz/allow", mk_num("0"));
    put(o, "kiln/authz/decision", mk_num("1"));
#ifdef HOSTILE
    put(o, "kiln/test/abort", mk_num("2"));
    put(o, "kiln/test/abort_bad_address", mk_num("3"));
    put(o, "kiln/test/println", mk_num("4"));
    put(o, "kiln/test/builtin", mk_num("5"));
    put(o, "kiln/test/bad_result", mk_num("6"));
#endif
    return o;
}

/* ---- evaluation ------------------------------------------------------------------------- */

typedef struct ctx { val *input, *data, *result; int entrypoint; } ctx;

EXPORT("opa_eval_ctx_new") ctx *opa_eval_ctx_new(void)
{
    ctx *c = opa_malloc(sizeof(ctx));
    c->input = c->data = c->result = 0;
    c->entrypoint = 0;
    return c;
}
EXPORT("opa_eval_ctx_set_input") void opa_eval_ctx_set_input(ctx *c, val *v) { c->input = v; }
EXPORT("opa_eval_ctx_set_data") void opa_eval_ctx_set_data(ctx *c, val *v) { c->data = v; }
EXPORT("opa_eval_ctx_set_entrypoint") void opa_eval_ctx_set_entrypoint(ctx *c, int e) { c->entrypoint = e; }
EXPORT("opa_eval_ctx_get_result") val *opa_eval_ctx_get_result(ctx *c) { return c->result; }

/* HOSTILE: opa_eval returns an address outside memory. */
__attribute__((unused)) static int bad_result;

static int allow(const val *input)
{
    const val *req = get(input, "request");
    if (str_is(get(get(req, "headers"), "x-role"), "admin", 0))
        return 1;
    return str_is(get(req, "method"), "GET", 0) && str_is(get(req, "path"), "/public", 1);
}

EXPORT("eval") int eval(ctx *c)
{
    val *r;
    switch (c->entrypoint) {
    case 0: r = mk_bool(allow(c->input)); break;
    case 1:
        r = mk(T_OBJ);
        put(r, "allow", mk_bool(allow(c->input)));
        put(r, "status", mk_num("401"));
        put(r, "message", mk_str("admin role or public GET required"));
        break;
#ifdef HOSTILE
    case 2: opa_abort("policy aborted on purpose"); return 1;
    case 3: opa_abort((const char *)0xFFFFFF00u); return 1;
    case 4: opa_println("hello from the policy"); r = mk_bool(1); break;
    case 5: r = (val *)opa_builtin0(7, 0); break;
    case 6: bad_result = 1; r = mk_bool(1); break;
#endif
    default: return 1;
    }
    val *set = mk(T_ARR), *one = mk(T_OBJ);
    put(one, "result", r);
    push(set, one);
    c->result = set;
    return 0;
}

#if ABI_MINOR >= 2
EXPORT("opa_eval") char *opa_eval(u32 reserved, int entrypoint, val *data, const char *input,
                                  u32 input_len, u32 heap, int format)
{
    (void)reserved;
    (void)format;
    opa_heap_ptr_set(heap);
    ctx *c = opa_eval_ctx_new();
    c->data = data;
    c->input = input_len ? opa_json_parse(input, input_len) : 0;
    c->entrypoint = entrypoint;
    if (input_len && c->input == 0)
        opa_abort("opa_eval: invalid input JSON");
    if (eval(c) != 0)
        opa_abort("opa_eval: unknown entrypoint");
    char *s = opa_json_dump(c->result);
    return bad_result ? (char *)0xFFFFFFF0u : s;
}
#endif

/* Keep every import referenced (the variants use only some). */
EXPORT("kiln_test_unused") u32 kiln_test_unused(u32 x)
{
    if (x == 0x7fffffff) {
        opa_println("");
        return opa_builtin0(0, 0) + opa_builtin1(0, 0, 0) + opa_builtin2(0, 0, 0, 0) + opa_builtin3(0, 0, 0, 0, 0) +
               opa_builtin4(0, 0, 0, 0, 0, 0);
    }
    return x;
}
