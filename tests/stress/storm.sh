#!/bin/sh
# storm.sh - the fault storm: STORM_N invocations against one real `kiln serve`, a seeded
# random mix of normal requests and guests that trap in every way (unreachable, divide by
# zero, integer overflow, invalid conversion, out-of-bounds load, call_indirect mismatch /
# null / out of range, uncaught exception), recurse off their stack (in guest code, and
# down to the edge before kiln.kv_incr, fd_write or kiln.log), exhaust memory and tables,
# time out, make denied KV calls, flood the log, and write too much or malformed output.
# tests/tools/storm_client.c checks every answer and samples the server's RSS and fds.
#
#   sh tests/stress/storm.sh                       # scaled down, part of tests/run.sh
#   STORM_N=1000000 sh tests/stress/storm.sh       # the full storm (make storm)
#
# Environment: STORM_N (default 30000), STORM_SEED (default: the time; printed, and a
# failing mix replays with it), STORM_CONNS (keep-alive connections, default 32),
# STORM_RSS_SLACK_KIB (65536), STORM_FD_SLACK (32). Ends with "N passed, N failed".
. "$(dirname "$0")/../integration/serve_lib"

N=${STORM_N:-30000}
SEED=${STORM_SEED:-$(date +%s)}
CONNS=${STORM_CONNS:-32}
RSS_SLACK=${STORM_RSS_SLACK_KIB:-65536}
FD_SLACK=${STORM_FD_SLACK:-32}
STORM_CLIENT=$KILN_BUILD/tests/tools/storm_client

GS=$KILN_BUILD/guests_storm
GK=$KILN_BUILD/guests_kv
out=$(sh "$ROOT/tests/guests_storm/build.sh" "$GS" 2>&1 && sh "$ROOT/tests/guests_kv/build.sh" "$GK" 2>&1)
case "$out" in
*" 0 failed") ok "guests build" ;;
*)
    not_ok "guests build" "$out"
    finish
    exit 1
    ;;
esac
if [ ! -x "$STORM_CLIENT" ]; then
    not_ok "storm_client is built (make tests)" "missing $STORM_CLIENT"
    finish
    exit 1
fi

D=$T/storm
mkdir -p "$D"
cp "$GS/hostile.wasm" "$GS/deep.wasm" "$GS/exception.wasm" "$GS/tables.wasm" \
    "$GK/kv_deep.wasm" "$GK/flood.wasm" "$G/cgi_counter.wasm" "$D/" || not_ok "copy guests"
# Small limits everywhere, so every hostile kind hits its wall quickly. The routes are
# the ones storm_client.c requests.
cat >"$D/kiln.yaml" <<'YAML'
server: {threads: 2, quiet: true}
kv:
  path: data/kv.db
  namespaces:
    secret: {backend: memory}
functions:
  counter: {module: cgi_counter.wasm, routes: [/counter]}
  hostile:
    module: hostile.wasm
    max_memory: 2MiB
    max_stack: 64KiB
    max_output_bytes: 64KiB
    log: {max_lines: 3, max_bytes: 1KiB, max_line_bytes: 128}
    routes: [/hostile]
  spin:
    module: hostile.wasm
    timeout: 25ms
    routes: [/spin]
  exception: {module: exception.wasm, max_stack: 64KiB, routes: [/exception]}
  tables: {module: tables.wasm, max_memory: 1MiB, routes: [/tables]}
  deep:
    module: deep.wasm
    max_stack: 64KiB
    kv: {backend: memory}
    log: {max_lines: 3, max_bytes: 1KiB, max_line_bytes: 128}
    routes: [/deep]
  kvdeep:
    module: kv_deep.wasm
    max_stack: 64KiB
    routes: [/kvdeep]
  flood:
    module: flood.wasm
    max_memory: 4MiB
    log: {max_lines: 3, max_bytes: 1KiB, max_line_bytes: 128}
    routes: [/flood]
YAML

if ! serve_start storm --config "$D/kiln.yaml"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts"
# The footprint is sampled from $SPID: it must be the server itself, not a wrapper.
check_eq "the sampled process is kiln" "$(readlink -f "$KILN")" "$(readlink "/proc/$SPID/exe")"

echo "# storm: N=$N seed=$SEED conns=$CONNS server pid $SPID"
start=$(date +%s)
OUT=$("$STORM_CLIENT" "$HOSTPORT" "$SPID" "$N" "$SEED" "$CONNS" 2>&1)
crc=$?
echo "$OUT" | sed 's/^/    /'
echo "# storm: $(($(date +%s) - start)) s wall"

# val KEY: a value from the client's key=value output.
val() { printf '%s\n' "$OUT" | sed -n "s/^$1=//p" | head -n 1; }
num() { v=$(val "$1"); echo "${v:--1}"; }

# --- the properties ---------------------------------------------------------------------
if [ "$(val alive)" = 1 ] && kill -0 "$SPID" 2>/dev/null; then
    ok "no crash: the server process lived through $N invocations"
else
    not_ok "no crash: the server process lived through $N invocations" "$(tail -n 30 "$LOG")"
fi
check_eq "every invocation answered ($N; hangs $(val hangs), connection errors $(val conn_errors))" \
    "$N 0 0" "$(val total) $(val hangs) $(val conn_errors)"
check_eq "0 wrong answers (client exit $crc)" "0" "$(val wrong)"
grow=$(($(num rss_end_kib) - $(num rss_start_kib)))
if [ "$(num rss_start_kib)" -gt 0 ] && [ "$grow" -le "$RSS_SLACK" ]; then
    ok "RSS flat: $(val rss_start_kib) -> $(val rss_end_kib) KiB after warm-up (max $(val rss_max_kib))"
else
    not_ok "RSS flat (within $RSS_SLACK KiB)" "RSS $(val rss_start_kib) -> $(val rss_end_kib) KiB"
fi
fgrow=$(($(num fds_end) - $(num fds_start)))
if [ "$(num fds_start)" -gt 0 ] && [ "$fgrow" -le "$FD_SLACK" ]; then
    ok "fds flat: $(val fds_start) -> $(val fds_end) (max $(val fds_max))"
else
    not_ok "fds flat (within $FD_SLACK)" "fds $(val fds_start) -> $(val fds_end)"
fi
check_eq "the server still answers a normal request at the end" 1 "$(val final_answer)"

# --- and around them ---------------------------------------------------------------------
missing=$(printf '%s\n' "$OUT" | sed -n 's/^kind \([^ ]*\) *sent=0 .*/\1/p' | tr '\n' ' ')
check_eq "every kind was sent at least once" "" "$missing"
expect "the SQLite store is not locked after the storm" 200 "deep=0 hits=" "$URL/kvdeep?depth=0"
expect "the memory store answers after the storm" 200 "deep op=kv depth=0 id=end rc=0" \
    "$URL/deep?op=kv&depth=0&id=end"
floods=$(printf '%s\n' "$OUT" | sed -n 's/^kind log_flood *sent=\([0-9]*\) .*/\1/p')
lines=$(grep -c -e '^\[warn\] flood: ' -e '^\[flood\] x' "$LOG")
check "the log flood stays within its budget: $lines lines for ${floods:-0} floods (<= 3 each)" \
    test "$lines" -le $((3 * ${floods:-0}))
serve_stop
check_eq "SIGTERM after the storm: exit 0" 0 "$SRC"
if grep -E 'Segmentation|Aborted|AddressSanitizer|runtime error:|assertion' "$LOG" >/dev/null; then
    not_ok "no fault in the server log" "$(grep -E 'Segmentation|Aborted|AddressSanitizer|runtime error:|assertion' "$LOG" | head -n 5)"
else
    ok "no fault in the server log"
fi
finish
