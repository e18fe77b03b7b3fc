#!/bin/sh
# test_component_kv.sh - Kiln's host interfaces for components
# (src/component/cm_kiln_kv.c, cm_kiln_config.c; docs/internals/component.md
# "Kiln's host interfaces for components") against a real `kiln serve`
# over real sockets, with tests/components/guests/kv_host.c, a kiln:faas
# handler of world handler-host: wasi:keyvalue buckets over the function's
# namespaces (values persist across requests, `kiln kv` sees what the
# component wrote, granted / read-only / not granted / invalid namespaces,
# the value size limit, list-keys paging, batch, the bucket cap), the
# function's config through wasi:config, wasi:logging lines in the server
# log under the function's name and level, and a storage event fired by a
# component's write delivered to a component subscriber, the CAS functions
# answering "not supported"; then `kiln call` with --kv and --config, a
# JavaScript component whose bindings componentize-js generates from the
# published WIT, and kv_draft.c against wasmtime's wasi:keyvalue@0.2.0-draft
# shape (u64 cursor and increment).
# Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

C="$KILN_BUILD/components"
if ! blog=$(sh "$KILN_ROOT/tests/components/build.sh" "$C" 2>&1); then
    not_ok "build the test components" "$blog"
    finish
    exit 1
fi
ok "build the test components"

D=$T/kvc
mkdir -p "$D"
cp "$C/kv_host.wasm" "$C/kv_cas.wasm" "$D/"
DB=$D/data/kv.db
cat >"$D/kiln.yaml" <<EOF
kv:
  path: data/kv.db
  namespaces:
    shared: {}
    catalog: {}
functions:
  kvc:
    module: kv_host.wasm
    config: {greeting: hi there, mode: test}
    kv:
      max_value_bytes: 1000
      grants: {shared: rw, catalog: r, bucket: rw}
    routes: [/kvc/...]
  kvev:
    module: kv_host.wasm
    kv: {grants: {bucket: r, evout: rw}}
    events: {namespace: bucket}
    routes: [/kvev]
  kvq:
    module: kv_host.wasm
    kv: {max_keys: 3}
    routes: [/kvq/...]
  kvl:
    module: kv_host.wasm
    log: {max_lines: 5}
    routes: [/kvl/...]
  kvcas:
    module: kv_cas.wasm
    routes: [/kvcas/...]
EOF
kvget() { "$KILN" kv --db "$DB" get "$1" "$2" 2>&1; }
cd "$D" || exit 1
"$KILN" kv --db "$DB" set catalog item original >/dev/null 2>&1
serve_start kvc --config kiln.yaml --threads 2 || {
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
}
ok "a component importing wasi:keyvalue, wasi:config and wasi:logging deploys"
req -X POST "$URL/kvcas"
check_eq "a component calling the keyvalue CAS constructor deploys and answers" 400 "$CODE"
check_contains "cas.new answers error::other: Kiln's store has no compare-and-set" "$BODY" \
    "cas.new: compare-and-swap is not supported by Kiln's key-value store"

# ---- one request: every operation -------------------------------------------------
req -X POST "$URL/kvc/run"
check_eq "run: the handler reports (400 with its report)" 400 "$CODE"
check_contains "run: increment creates the counter" "$BODY" "counter=1 "
check_contains "run: set then get" "$BODY" "set=ok get=hello "
check_contains "run: get of an absent key is none" "$BODY" "get-absent=none"
check_contains "run: exists, delete, exists again" "$BODY" \
    "exists=1 delete=ok exists-after=0 delete-absent=ok"
check_contains "run: list-keys of the private namespace, one page" "$BODY" \
    "keys=counter,greeting cursor=none"
check_contains "run: an empty key is error::other" "$BODY" "empty-key=other:set: keys cannot be empty"
check_contains "run: wasi:config get reads the function's config" "$BODY" "config=hi there "
check_contains "run: wasi:config get of a missing key is none" "$BODY" "config-missing=none"
check_contains "run: a granted global namespace opens and takes writes" "$BODY" "shared=ok"
check_contains "run: a namespace not granted is access-denied" "$BODY" "secret=access-denied"
check_contains "run: an identifier that names no namespace is no-such-store" "$BODY" \
    "bad=no-such-store"
check_contains "run: an empty identifier is no-such-store" "$BODY" "empty=no-such-store"

# ---- persistence and the shared store ------------------------------------------------
req -X POST "$URL/kvc/run"
check_contains "the counter persists across requests (fresh instances)" "$BODY" "counter=2 "
req -X POST "$URL/kvc/run"
check_contains "and increments again" "$BODY" "counter=3 "
check_eq "kiln kv sees the component's counter in fn:kvc" 3 "$(kvget fn:kvc counter)"
check_eq "kiln kv sees the component's value" hello "$(kvget fn:kvc greeting)"
check_eq "kiln kv sees the write to the granted global namespace" yes \
    "$(kvget shared from-component)"
"$KILN" kv --db "$DB" set fn:kvc counter 41 >/dev/null 2>&1
req -X POST "$URL/kvc/run"
check_contains "the component sees what kiln kv wrote (same store)" "$BODY" "counter=42 "

req -X POST --data 50 "$URL/kvc/incr"
check_eq "50 increments in one request answer 204" 204 "$CODE"
check_eq "and leave 50" 50 "$(kvget fn:kvc n)"
# Concurrent requests on the two workers (each a fresh instance, the SQLite
# writes waiting for group commits): no increment is lost.
pids=""
for w in 1 2 3 4; do
    (for i in 1 2 3 4 5 6 7 8 9 10; do
        curl -s -m 30 -o /dev/null -w '%{http_code}\n' --data 5 "$URL/kvc/incr"
    done >"$T/conc.$w") &
    pids="$pids $!"
done
for p in $pids; do wait "$p"; done # not a bare wait: the server is a child too
check_eq "40 concurrent requests all answer 204" 40 "$(cat "$T"/conc.* | grep -c '^204$')"
check_eq "and none of their 200 increments is lost" 250 "$(kvget fn:kvc n)"

# ---- read-only grant, limits -------------------------------------------------------------
req -X POST "$URL/kvc/ro"
check_contains "a read-only grant: get works" "$BODY" "get=original"
check_contains "a read-only grant: set is access-denied" "$BODY" "set=access-denied"
check_eq "the read-only value is unchanged" original "$(kvget catalog item)"
req -X POST --data 1000 "$URL/kvc/big"
check_contains "a value at max_value_bytes is stored" "$BODY" "big=ok"
req -X POST --data 1001 "$URL/kvc/big"
check_contains "a value over max_value_bytes fails with the limit error" "$BODY" \
    "big=other:set: a value of 1001 bytes is over the max_value_bytes limit (1000) of namespace 'default'"
check_eq "the value over the limit was not written" 1000 "$(kvget fn:kvc big | wc -c | tr -d ' ')"

req -X POST --data 5 "$URL/kvq/fill"
check_contains "the key-count quota: the 4th key of set-many fails with error::other" "$BODY" \
    "fill=other:set-many: namespace 'default' is full (max_keys 3,"
check_eq "the three keys before it stay written (batches are not atomic)" 3 \
    "$("$KILN" kv --db "$DB" ls fn:kvq 2>/dev/null | wc -l | tr -d ' ')"
check_contains "the server log says which function filled which namespace" "$(cat "$LOG")" \
    "function 'kvq': namespace 'fn:kvq' holds its limit of 3 keys"

# ---- batch, config get-all -------------------------------------------------------------
req -X POST "$URL/kvc/batch"
check_contains "set-many then get-many (an absent key is none, an empty value kept)" "$BODY" \
    "set-many=ok get-many=b1:one,none,b2:two,b3: "
check_contains "delete-many deletes" "$BODY" "delete-many=ok b1-after=0"
check_contains "wasi:config get-all lists the config" "$BODY" "config-all=greeting=hi there,mode=test"

# ---- list-keys pages ------------------------------------------------------------------------
# 600 keys of 900 bytes: list-keys stops a page at 256 KiB of keys (291 of
# them), so the listing takes three pages.
req -X POST --data 600 "$URL/kvc/fill"
check_contains "set-many writes 600 long keys" "$BODY" "fill=ok"
req -X POST "$URL/kvc/page"
keys=$("$KILN" kv --db "$DB" ls fn:kvc 2>/dev/null | wc -l | tr -d ' ')
check_contains "list-keys pages through every key with its cursor" "$BODY" "keys=$keys pages=3"

# ---- bucket handles are bounded per instance -------------------------------------------
req -X POST "$URL/kvc/loop"
check_contains "opening buckets in a loop stops at the cap with error::other" "$BODY" \
    "opened=1024 then=other:wasi:keyvalue: more than 1024 open buckets"
req -X POST "$URL/kvc/drop"
check_contains "dropped buckets free their entries (5000 opens, 1 live at a time)" "$BODY" \
    "reopened=ok"

# ---- logging --------------------------------------------------------------------------------
check_contains "wasi:logging info: a line with the function's name and context" "$(cat "$LOG")" \
    "[info] kvc: kv_host: info line from a component"
check_contains "wasi:logging warn without a context" "$(cat "$LOG")" \
    "[warn] kvc: warn line from a component"
check "a line below the function's log level is dropped" \
    sh -c "! grep -q 'trace line' '$LOG'"

req -X POST "$URL/kvl/logs"
check_eq "a component logging 100 lines answers" 204 "$CODE"
check_eq "the function's log budget keeps 5 of them" 5 "$(grep -c '^\[info\] kvl: flood line$' "$LOG")"
check_contains "and says how many were dropped" "$(cat "$LOG")" \
    "[kvl] guest log: 95 lines (950 bytes) dropped"

# ---- storage events: a component's write fires a component subscriber ------------------
req -X POST --data evkey "$URL/kvc/write"
check_contains "the component writes into the subscribed namespace" "$BODY" "write=ok"
i=0
while [ $i -lt 300 ] && [ "$(kvget evout evkey)" != v ]; do
    sleep 0.1
    i=$((i + 1))
done
check_eq "the subscriber component got the event and wrote it back" v "$(kvget evout evkey)"

serve_stop
check_eq "the server stops cleanly" 0 "$SRC"

# ---- kiln call: the same interfaces over --kv and --config ------------------------------
EVT='"event-timestamp":{"seconds":1700000000,"nanoseconds":5},"event-version":"1","source":"http"'
RUN="[{\"event-type\":\"message\",$EVT,\"key\":\"/run\",\"payload\":[]}]"
mkdir -p "$T/callkv"
out=$("$KILN" call "$D/kv_host.wasm" handle --kv "$T/callkv" --config greeting=hey \
    --input-json "$RUN" 2>"$T/call.err")
check_contains "kiln call: buckets over --kv (a fresh store)" "$out" "counter=1 set=ok get=hello"
check_contains "kiln call: --config through wasi:config" "$out" "config=hey "
check_contains "kiln call: 'shared' is not granted there" "$out" "shared=access-denied"
check_eq "kiln call: the write is in fn:<file name> of DIR/kv.db" 1 \
    "$("$KILN" kv --db "$T/callkv/kv.db" get fn:kv_host.wasm counter 2>&1)"
check_contains "kiln call: wasi:logging on stderr" "$(cat "$T/call.err")" \
    "[info] kv_host.wasm: kv_host: info line from a component"

# ---- componentize-js: bindings generated from the published WIT ------------------------
# tests/components/js/kv_handler.js imports the handler-host world's interfaces
# through the bindings componentize-js generates from wit/ (it imports every
# function of them, CAS included). Built once into $KILN_BUILD (about 20 s), then
# compiled with tcc (StarlingMonkey is too large for cc -O2 within the
# compiler's memory limit; cached under KILN_HOME).
JSKV=$KILN_BUILD/components/js_kv_handler.wasm
if [ -f "$JSKV" ] && [ "$JSKV" -nt "$KILN_ROOT/tests/components/js/kv_handler.js" ] &&
    [ "$JSKV" -nt "$KILN_ROOT/wit/kiln-faas.wit" ]; then
    ok "componentize-js builds the JS kv handler (up to date)"
elif blog=$(cd "$T" && node "$KILN_ROOT/tests/components/componentize.mjs" \
    "$KILN_ROOT/tests/components/js/kv_handler.js" "$KILN_ROOT/wit" handler-host "$JSKV.tmp" 2>&1) &&
    mv -f "$JSKV.tmp" "$JSKV"; then
    ok "componentize-js builds the JS kv handler"
else
    not_ok "componentize-js builds the JS kv handler" "$blog"
fi
mkdir -p "$T/jskv"
"$KILN" kv --db "$T/jskv/kv.db" set fn:js_kv_handler.wasm js-counter 6 >/dev/null 2>&1
out=$(KILN_CC=tcc "$KILN" call "$JSKV" handle --kv "$T/jskv" --config greeting=hola \
    --input-json "$RUN" 2>"$T/js.err")
check_contains "JS: increment, set, get and list-keys through generated bindings" "$out" \
    "counter=7 get=from js keys=js-counter,js-key "
check_contains "JS: wasi:config" "$out" "config=hola "
check_contains "JS: a bucket not granted throws access-denied" "$out" "secret=access-denied"
check_contains "JS: wasi:logging" "$(cat "$T/js.err")" "[info] js_kv_handler.wasm: js: counter is 7"

# ---- wasmtime's wasi:keyvalue@0.2.0-draft: u64 cursor and increment --------------------
mkdir -p "$T/draftkv"
out=$("$KILN" call "$C/kv_draft.wasm" run --kv "$T/draftkv" --input-json '[1500]' 2>&1)
check_contains "0.2.0-draft: increment of u64" "$out" "ctr=10 "
check_contains "0.2.0-draft: a u64 delta over 2^63-1 is error::other, nothing changed" "$out" \
    "huge=other:increment: a delta of 9223372036854775808 is over Kiln's 64-bit signed integers"
check_contains "0.2.0-draft: list-keys pages with the numeric cursor (1000 per page)" "$out" \
    "keys=1501 pages=2 last-cursor=1000"
check_eq "0.2.0-draft: the counter in the store" 10 \
    "$("$KILN" kv --db "$T/draftkv/kv.db" get fn:kv_draft.wasm ctr 2>&1)"
finish
