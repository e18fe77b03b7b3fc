/*
 * duk_snap.c - an interpreter-sized guest with an expensive initialisation,
 * for the snapshot section of bench/run.sh and the snapshot notes
 * (docs/internals/snapshot.md). Duktape comes from Debian's source package
 * (fetched and compiled by bench/deploy/run.sh, build/bench/deploy/obj).
 *
 * A WASI reactor: `init` creates the JavaScript heap and evaluates a small
 * library (what a JS plugin's PDK does before the first call); `handle(n)`
 * calls the library's handler and returns its answer. Without a snapshot a
 * fresh instance per request pays `init` every time; with one, every request
 * starts from the initialised heap.
 */
#include <stdint.h>

#include "duktape.h"

static duk_context *ctx;

static const char library[] =
    "var table = [];"
    "for (var i = 0; i < 2000; i++) table.push({ k: 'key' + i, v: (i * 7919) % 1000 });"
    "var index = {};"
    "table.forEach(function (e) { index[e.k] = e.v; });"
    "var words = 'the quick brown fox jumps over the lazy dog'.split(' ');"
    "function handle(n) {"
    "  var s = index['key' + (n % 2000)];"
    "  for (var j = 0; j < words.length; j++) s += words[j].length;"
    "  return s;"
    "}";

__attribute__((export_name("init"))) void init(void)
{
    if (ctx != NULL)
        return;
    ctx = duk_create_heap_default();
    if (ctx == NULL)
        __builtin_trap();
    if (duk_peval_string(ctx, library) != 0)
        __builtin_trap();
    duk_pop(ctx);
}

__attribute__((export_name("handle"))) int32_t handle(int32_t n)
{
    init();
    duk_get_global_string(ctx, "handle");
    duk_push_int(ctx, n);
    if (duk_pcall(ctx, 1) != 0)
        __builtin_trap();
    int32_t r = duk_get_int(ctx, -1);
    duk_pop(ctx);
    return r;
}
