#!/bin/sh
# test_kv.sh - key-value storage end to end through `kiln serve`: guests of
# tests/guests_kv/ call the kiln.kv_* imports directly (a counter that
# persists across requests and restarts in SQLite, every operation, TTL,
# paging, grants: a namespace not granted and a read-only one, limits seen
# by the guest as codes while the server carries on), an Otoroshi plugin on
# proxy_plugin_map_* and the data store, the `kiln kv` CLI on the same
# database, and durability: a write burst killed with SIGKILL loses no
# acknowledged write and leaves a database that passes integrity_check.
# Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

GK=$KILN_BUILD/guests_kv
out=$(sh "$ROOT/tests/guests_kv/build.sh" "$GK" 2>&1)
case "$out" in
*" 0 failed") ok "guests build" ;;
*)
    not_ok "guests build" "$out"
    finish
    exit 1
    ;;
esac

D=$T/kv
mkdir -p "$D"
cp "$GK"/*.wasm "$D/"
DB=$D/data/kv.db
cat >"$D/kiln.yaml" <<'EOF'
kv:
  path: data/kv.db
  namespaces:
    shared: {max_keys: 3, max_value_bytes: 64}
    catalog: {}
functions:
  counter:
    module: kv_counter.wasm
    routes: [/counter]
  memcounter:
    module: kv_counter.wasm
    kv: {backend: memory}
    routes: [/memcounter]
  ops:
    module: kv_ops.wasm
    config: {greeting: hello}
    kv:
      max_key_bytes: 16
      max_value_bytes: 1KiB
      max_keys: 40
      grants: {shared: rw, catalog: r}
    routes: [/ops]
  writer:
    module: kv_ops.wasm
    kv: {grants: {catalog: rw}}
    routes: [/writer]
  burst:
    module: kv_ops.wasm
    kv: {max_keys: 10000000}
    routes: [/burst]
  flood:
    module: flood.wasm
    kv: {backend: memory, max_keys: 10000000}
    routes: [/flood]
  logflood:
    module: flood.wasm
    log: {max_lines: 5, max_bytes: 2KiB, max_line_bytes: 100}
    routes: [/logflood]
  quota:
    module: flood.wasm
    kv: {max_bytes: 10KiB}
    routes: [/quota]
  oto:
    module: oto_map.wasm
    abi: otoroshi
    routes: [/oto]
  otoglobal:
    module: oto_map.wasm
    abi: otoroshi
    kv: {grants: {global: rw}}
    routes: [/otoglobal]
EOF

start() {
    if ! serve_start "$1" --config "$D/kiln.yaml"; then
        not_ok "server starts ($1)" "$(cat "$LOG")"
        finish
        exit 1
    fi
}
start first
ok "server starts with kv configuration"
[ -f "$DB" ] && not_ok "the database is created lazily" "exists before any KV call" ||
    ok "the database is created lazily"

# --- a counter in SQLite ----------------------------------------------------------
expect "counter: first request" 200 "hits=1" "$URL/counter"
expect "counter: second request (fresh instance, state in the host)" 200 "hits=2" "$URL/counter"
expect "memory counter: first" 200 "hits=1" "$URL/memcounter"
expect "memory counter: second" 200 "hits=2" "$URL/memcounter"

# --- every operation -----------------------------------------------------------------
Q="$URL/ops?op"
expect "set" 200 "rc=0" "$Q=set&key=a&val=hello"
expect "get" 200 "rc=5 len=5 val=hello" "$Q=get&key=a"
expect "get: buffer too small -> ETOOSMALL + needed length" 200 "rc=-2 need=5" "$Q=get&key=a&buf=2"
expect "get: missing -> ENOTFOUND" 200 "rc=-1" "$Q=get&key=nope"
expect "setnx on an existing key -> EEXISTS" 500 "rc=-6" "$Q=setnx&key=a&val=other"
expect "setnx left the value" 200 "val=hello" "$Q=get&key=a"
expect "setnx on a new key" 200 "rc=0" "$Q=setnx&key=b&val=x"
expect "incr" 200 "rc=0 n=5" "$Q=incr&key=n&val=5"
expect "incr again" 200 "rc=0 n=3" "$Q=incr&key=n&val=-2"
expect "incr of text -> ETYPE" 200 "rc=-10" "$Q=incr&key=a"
expect "incr past INT64_MAX -> EINVAL, never clamped" 200 "rc=-5" \
    "$Q=incr&key=n&val=9223372036854775807"
expect "incr overflow left the value alone" 200 "rc=1 len=1 val=3" "$Q=get&key=n"
expect "del" 200 "rc=0" "$Q=del&key=b"
expect "del again -> ENOTFOUND" 200 "rc=-1" "$Q=del&key=b"
expect "ttl: none" 200 "rc=0 ttl=none" "$Q=ttl&key=a"
expect "set with a TTL" 200 "rc=0" "$Q=set&key=t&val=soon&ttl=300"
expect "ttl: some" 200 "rc=0 ttl=some" "$Q=ttl&key=t"
expect "get before expiry" 200 "val=soon" "$Q=get&key=t"
sleep 0.5
expect "get after expiry -> ENOTFOUND" 200 "rc=-1" "$Q=get&key=t"
expect "expire" 200 "rc=0" "$Q=expire&key=n&ttl=60000"
expect "expire a missing key -> ENOTFOUND" 200 "rc=-1" "$Q=expire&key=gone&ttl=5"
for k in p1 p2 p3 p4 p5; do req "$Q=set&key=$k&val=1"; done
expect "list: paging with a small buffer" 200 "keys=p1,p2,p3,p4,p5 calls=3" \
    "$Q=list&prefix=p&buf=14"
expect "list: a buffer too small for one key -> ETOOSMALL" 200 "rc=-2 need=6" \
    "$Q=list&prefix=p&buf=3"
expect "list: everything" 200 "keys=a,n,p1,p2,p3,p4,p5 calls=1" "$Q=list"
expect "config_get" 200 "rc=5 val=hello" "$Q=config&key=greeting"
expect "config_get: missing" 200 "rc=-1" "$Q=config&key=nope"
expect "log" 200 "rc=0" "$Q=log&key=kv-test-log-line&val=3"
check_contains "log: line in the server log" "$(cat "$LOG")" "[warn] ops: kv-test-log-line"

# --- grants --------------------------------------------------------------------------
expect "a namespace not granted -> EDENIED" 200 "rc=-3" "$Q=get&ns=secret&key=a"
expect "writer: set in its rw namespace" 200 "rc=0" "$URL/writer?op=set&ns=catalog&key=item&val=42"
expect "read-only grant: read" 200 "rc=2 len=2 val=42" "$Q=get&ns=catalog&key=item"
expect "read-only grant: write -> EDENIED" 500 "rc=-3" "$Q=set&ns=catalog&key=item&val=1"
expect "read-only grant: delete -> EDENIED" 200 "rc=-3" "$Q=del&ns=catalog&key=item"
expect "writer: not granted shared -> EDENIED" 200 "rc=-3" "$URL/writer?op=get&ns=shared&key=x"
expect "private namespaces are private" 200 "rc=-1" "$URL/writer?op=get&key=a"

# --- limits: codes for the guest, the server carries on -----------------------------------
expect "value over max_value_bytes -> ELIMIT" 500 "rc=-4" "$Q=set&key=big&n=2000"
expect "key over max_key_bytes -> ELIMIT" 500 "rc=-4" "$Q=set&key=0123456789abcdefg&val=1"
expect "shared: value over its own limit (64) -> ELIMIT" 500 "rc=-4" "$Q=set&ns=shared&key=v&n=65"
for k in s1 s2 s3; do req "$Q=set&ns=shared&key=$k&val=1"; done
expect "shared: key count limit (3) -> ELIMIT" 500 "rc=-4" "$Q=set&ns=shared&key=s4&val=1"
expect "shared: overwriting is fine at the limit" 200 "rc=0" "$Q=set&ns=shared&key=s1&val=2"

# --- the byte quota: a guest cannot grow the server without bound ----------------------------
expect "kv flood: 400 x 1 MiB into memory stops at the default 64 MiB quota" 200 \
    "stored=63 rc=-4" "$URL/flood?op=fill&n=400&size=1048576"
check_contains "kv flood: the log names the function, namespace, limit and remedy" "$(cat "$LOG")" \
    "function 'flood': namespace 'fn:flood' is over its byte quota"
check_contains "kv flood: ... the limit" "$(cat "$LOG")" "the limit is 67108864 bytes"
check_contains "kv flood: ... what to do" "$(cat "$LOG")" "raise kv.max_bytes of function 'flood'"
n_logged=$(grep -c "namespace 'fn:flood' is over" "$LOG")
expect "kv flood: new keys are refused" 200 "stored=0 rc=-4" \
    "$URL/flood?op=fill&n=400&size=1048576&from=1000"
check_eq "kv flood: refusals are not logged once per write" "$n_logged" \
    "$(grep -c "namespace 'fn:flood' is over" "$LOG")"
expect "kv flood: a configured quota (10KiB, SQLite) counts keys and values" 200 \
    "stored=10 rc=-4" "$URL/quota?op=fill&n=100&size=1000"
expect "kv flood: overwriting within the quota still works" 200 "stored=5 rc=0" \
    "$URL/quota?op=fill&n=5&size=1000"

# --- guest logs: bounded per request, whatever the guest does ---------------------------------
size0=$(wc -c <"$LOG")
expect "log flood: 100000 x 1000 B through kiln.log and stderr, the guest still answers" 200 \
    "logged=100000 rc=0" "$URL/flood?op=log&n=100000&size=1000"
grown=$(($(wc -c <"$LOG") - size0))
if [ "$grown" -lt 80000 ]; then ok "log flood: the log grew $grown bytes (budget 64 KiB)"; else
    not_ok "log flood: the log stays within the default budget (64 KiB)" "grew $grown bytes"; fi
check_eq "log flood: at most 100 guest lines" 1 \
    "$([ "$(tail -c "$grown" "$LOG" | grep -c '^\[warn\] flood: ')" -le 100 ] && echo 1)"
check_eq "log flood: one line says what was dropped, for which function" 1 \
    "$(grep -c '^\[flood\] guest log: [0-9]* lines ([0-9]* bytes) dropped' "$LOG")"
check_contains "log flood: ... against which budget" "$(cat "$LOG")" \
    "dropped and 1 cut short in this request, over its budget of 100 lines, 65536 bytes, 1024 bytes"
check_contains "log flood: ... and what to raise" "$(cat "$LOG")" \
    "raise log.max_lines, log.max_bytes or log.max_line_bytes of function 'flood'"
expect "log flood: a configured budget (5 lines of 100 bytes)" 200 "logged=20 rc=0" \
    "$URL/logflood?op=log&n=20&size=300"
check_eq "log flood: 5 kiln.log lines, each cut at 100 bytes" 5 \
    "$(grep -c '^\[warn\] logflood: x\{100\} \[\.\.\. 200 more bytes\]$' "$LOG")"
check_contains "log flood: the rest, kiln.log and stderr alike, is counted" "$(cat "$LOG")" \
    "[logflood] guest log: 35 lines (10500 bytes) dropped and 5 cut short"
check_eq "log flood: no stderr line got past the budget" 0 "$(grep -c '^\[logflood\] x' "$LOG")"
expect "server still serves after the limits" 200 "hits=3" "$URL/counter"

# --- Otoroshi host functions ---------------------------------------------------------------
expect "otoroshi: plugin map and data store" 200 '{"visits":1,"ds":2,"keys":["ds-count"]' "$URL/oto"
expect "otoroshi: state persists" 200 '"visits":2,"ds":4' "$URL/oto"
check_contains "otoroshi: proxy_plugin_map lists base64 values" "$BODY" '"visits":"Mg=="'
expect "otoroshi: global map not granted -> 400 with the reason" 400 "not granted" \
    "$URL/oto?global=1"
expect "otoroshi: global map granted" 200 '"global":"shared"' "$URL/otoglobal?global=1"
check_contains "otoroshi: a separate private namespace per function" "$BODY" '"visits":1,'

serve_stop
check_eq "server stops cleanly" 0 "$SRC"

# --- the CLI on the same database ---------------------------------------------------------
check_eq "kiln kv get: the guest's counter" 3 "$("$KILN" kv --db "$DB" get fn:counter hits)"
check_eq "kiln kv get: a read-only namespace's value" 42 "$("$KILN" kv --db "$DB" get catalog item)"
"$KILN" kv --db "$DB" set fn:ops fromcli "seeded by the CLI"
check_eq "kiln kv set: exit 0" 0 $?
printf 'from stdin' | "$KILN" kv --db "$DB" set --ttl 1h shared s2 -
check_eq "kiln kv set -: value from stdin" "from stdin" "$("$KILN" kv --db "$DB" get shared s2)"
check_eq "kiln kv ls NAMESPACE PREFIX" "p1 p2 p3 p4 p5" "$("$KILN" kv --db "$DB" ls fn:ops p | tr '\n' ' ' | sed 's/ $//')"
check_contains "kiln kv ls: namespaces" "$("$KILN" kv --db "$DB" ls | tr '\n' ' ')" "catalog fn:counter fn:ops fn:oto"
"$KILN" kv --db "$DB" del fn:ops p5
check_eq "kiln kv del: exit 0" 0 $?
"$KILN" kv --db "$DB" del fn:ops p5 2>"$T/err"
check_eq "kiln kv del: missing -> exit 1" 1 $?
"$KILN" kv --db "$DB" get fn:ops p5 >/dev/null 2>&1
check_eq "kiln kv get: missing -> exit 1" 1 $?
check_eq "kiln kv incr" 10 "$("$KILN" kv --db "$DB" incr fn:counter hits 7)"
check_eq "kiln kv incr: a negative delta" 3 "$("$KILN" kv --db "$DB" incr fn:counter hits -7)"
check_eq "kiln kv incr: a negative delta after --" 10 \
    "$("$KILN" kv --db "$DB" incr fn:counter hits -- 7)"
"$KILN" kv --db "$DB" incr fn:counter hits 99999999999999999999 >"$T/out" 2>"$T/err"
check_eq "kiln kv incr: a delta outside int64 -> exit 2 (not clamped)" 2 $?
check_contains "kiln kv incr: says the delta is out of range" "$(cat "$T/err")" \
    "DELTA '99999999999999999999' is outside the 64-bit integer range"
"$KILN" kv --db "$DB" incr fn:counter hits -- -99999999999999999999 >"$T/out" 2>"$T/err"
check_eq "kiln kv incr: a negative delta outside int64 -> exit 2" 2 $?
"$KILN" kv --db "$DB" set fn:cli big 9223372036854775800
"$KILN" kv --db "$DB" incr fn:cli big 100 >"$T/out" 2>"$T/err"
check_eq "kiln kv incr: overflowing the value -> exit 1" 1 $?
check_contains "kiln kv incr: says it would overflow" "$(cat "$T/err")" \
    "outside the 64-bit integer range"
check_eq "kiln kv incr: the overflowing value is unchanged" 9223372036854775800 \
    "$("$KILN" kv --db "$DB" get fn:cli big)"
check_eq "kiln kv incr: the counter was not touched by the refused deltas" 10 \
    "$("$KILN" kv --db "$DB" get fn:counter hits)"
"$KILN" kv --db "$DB" get 'bad name' x >/dev/null 2>&1
check_eq "kiln kv: bad namespace -> exit 2" 2 $?
"$KILN" kv --db "$T/none.db" get x y >/dev/null 2>&1
check_eq "kiln kv get: no database -> exit 1, nothing created" "1 no" "$? $([ -f "$T/none.db" ] && echo yes || echo no)"

# --- restart: SQLite persists, memory does not -----------------------------------------------
start second
Q="$URL/ops?op"
expect "after restart: the SQLite counter continues" 200 "hits=11" "$URL/counter"
expect "after restart: the memory counter starts over" 200 "hits=1" "$URL/memcounter"
expect "after restart: the CLI's value is visible to the guest" 200 "val=seeded by the CLI" \
    "$Q=get&key=fromcli"

# --- durability: SIGKILL during a write burst --------------------------------------------------
python3 "$ROOT/tests/integration/kv_burst.py" "$URL/burst?op=set" "$T/acked" 6 &
BPID=$!
sleep 3
kill -KILL "$SPID"
wait "$SPID" 2>/dev/null
wait "$BPID"
n_acked=$(wc -l <"$T/acked")
if [ "$n_acked" -gt 20 ]; then ok "burst: $n_acked writes acknowledged before the kill"; else
    not_ok "burst: writes acknowledged before the kill" "only $n_acked"; fi
check_eq "database passes integrity_check after SIGKILL" ok \
    "$(sqlite3 "$DB" 'PRAGMA integrity_check' 2>&1)"
start third
sqlite3 "$DB" "SELECT CAST(key AS TEXT) FROM kv WHERE ns = 'fn:burst'" | sort >"$T/present"
sort "$T/acked" >"$T/acked.sorted"
missing=$(comm -23 "$T/acked.sorted" "$T/present" | head -n 5)
check_eq "every acknowledged key survived the kill" "" "$missing"
k=$(head -n 1 "$T/acked")
expect "an acknowledged key reads back through the guest" 200 "val=v$k" "$URL/burst?op=get&key=$k"
serve_stop
check_eq "database passes integrity_check after restart" ok \
    "$(sqlite3 "$DB" 'PRAGMA integrity_check' 2>&1)"
# --- outside kiln serve: the kiln module links, and answers "unavailable" --------------
out=$(KILN_HOME=$T/run-home "$KILN" run "$GK/kv_counter.wasm" 2>&1)
check_eq "kiln run links a guest importing kiln.kv_* (exit 0)" 0 $?
check_contains "kiln run: kv calls answer EUNAVAILABLE (-11), not a crash" "$out" "-11"

finish
