#!/bin/sh
# test_serve_hostile.sh - `kiln serve` against hostile clients, over real sockets:
# slowloris (request-head deadline, per-address connection cap, others still answered, a
# too-slow body closed), a connection flood past max_connections (answers resume at once
# after it), request framing that invites smuggling (400 + close, nothing after it served,
# no guest run), and stalled uploads (server-wide body budget: 503 + Retry-After, bounded
# RSS, budget released). Loopback accepts any 127/8 source address, so "other clients" bind
# to 127.0.0.2 and up. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"
HOSTILE="python3 $ROOT/tests/integration/hostile_client.py"

D=$T/site
mkdir -p "$D/mods"
cp "$G/cgi_hello.wasm" "$G/cgi_echo.wasm" "$D/mods/"
cat >"$D/kiln.yaml" <<'EOF'
server:
  threads: 2
  max_connections: 200
  max_connections_per_ip: 20
  header_timeout: 2s
  min_body_rate: 1KiB
  max_body_bytes: 2MiB
  max_buffered_body_bytes: 4MiB
functions:
  hello: {module: mods/cgi_hello.wasm, routes: [/hello, /smuggled]}
  echo: {module: mods/cgi_echo.wasm, routes: [/echo]}
EOF
if ! serve_start hostile --config "$D/kiln.yaml"; then
    not_ok "server starts with the hostile-client limits" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts with the hostile-client limits"
expect "a plain request is answered" 200 "hello from /hello" "$URL/hello"

# val KEY: a value from the last hostile client's key=value output.
val() { printf '%s\n' "$OUT" | sed -n "s/^$1=//p" | head -n 1; }

# --- 1. slowloris --------------------------------------------------------------------------
# 300 connections from 127.0.0.1 (cap 20) trickle a header line every 0.5 s, for 6 s; the
# head deadline is 2 s and connection_timeout its default 30 s.
OUT=$($HOSTILE slowloris "$HOSTPORT" 300 0.5 1 6)
echo "$OUT" | sed 's/^/    /'
check "slowloris: connections past the per-address cap are refused (open after 1 s <= 20)" \
    test "$(val open1)" -le 20
check "slowloris: ... but the cap's worth got in (open after 1 s >= 10)" test "$(val open1)" -ge 10
check_eq "slowloris: every trickling connection is closed at the head deadline (open after 6 s)" \
    0 "$(val open2)"
check "slowloris: another address is answered throughout (>= 10 answers)" test "$(val good_ok)" -ge 10
check_eq "slowloris: ... and never refused" 0 "$(val good_failed)"
check "slowloris: ... within a generous bound (slowest < 3 s)" test "$(val good_slowest_ms)" -lt 3000
check_eq "slow body: an upload slower than min_body_rate is closed" 1 "$(val slow_body_closed)"
check_contains "slowloris: the closures are logged" "$(cat "$LOG")" \
    "whose request head took longer than header_timeout (2000 ms)"
expect "after the slowloris: answered" 200 "hello from /hello" "$URL/hello"

# --- 3. framing ------------------------------------------------------------------------------
n_before=$(grep -c ' echo$' "$LOG")
OUT=$($HOSTILE framing "$HOSTPORT")
echo "$OUT" | sed 's/^/    /'
for c in cl_conflict cl_duplicate cl_and_te te_space_colon te_gzip te_identity te_twice \
    te_http10 method_nul method_ctl method_nontoken obs_fold obs_fold_te header_nul bare_lf \
    target_space no_host; do
    line=$(printf '%s\n' "$OUT" | grep "^$c ")
    check_eq "framing: $c -> 400 JSON, connection closed, nothing more served" \
        "$c status=400 json=1 closed=1 second=0" "$line"
done
sleep 0.3
L=$(cat "$LOG")
if grep -q '^GET /smuggled' "$LOG"; then
    not_ok "framing: no smuggled request reached a route" "$(grep '^GET /smuggled' "$LOG")"
else ok "framing: no smuggled request reached a route"; fi
check_eq "framing: the guest never ran for a refused request" "$n_before" "$(grep -c ' echo$' "$LOG")"
check_contains "framing: the reason is named (obs-fold)" "$L" "POST /echo 400"
expect "framing: a valid chunked upload still works" 200 "hello" -H "Transfer-Encoding: chunked" \
    --data-binary hello "$URL/echo"
expect "framing: a valid Content-Length upload still works" 200 "--- body ---" --data-binary hi \
    "$URL/echo"

# --- 4. stalled uploads against the body budget (4 MiB; 2 MiB bodies) -----------------------
# 30 uploads of 2 MiB each send 1.9 MiB and stall: two fit the budget, the rest get 503.
# Without the budget they would hold about 57 MiB.
OUT=$($HOSTILE uploads "$HOSTPORT" "$SPID" 30 2097152 1992294)
echo "$OUT" | sed 's/^/    /'
check_eq "uploads: two stalled uploads fill the budget (pending)" 2 "$(val pending)"
check_eq "uploads: the other 28 get 503 JSON with Retry-After" 28 "$(val busy)"
check_eq "uploads: ... and no other answer" 0 "$(val other)"
check_eq "uploads: a small request is served meanwhile" 200 "$(val small)"
check_eq "uploads: a chunked upload is refused with 503 when the budget is spent" 503 "$(val chunked)"
grow=$(($(val rss_during_kb) - $(val rss_before_kb)))
check "uploads: RSS grows by less than 24 MiB (grew $grow KiB)" test "$grow" -lt 24576
check_eq "uploads: the budget is released when the uploads end (a full upload after: 200)" \
    200 "$(val after)"
check_contains "uploads: the 503 names the setting" "$(curl -s "$URL/hello" >/dev/null; cat "$LOG")" "POST /echo 503"
serve_stop
check_eq "SIGTERM after the hostile clients: exit 0" 0 "$SRC"

# --- 2. connection flood past max_connections ------------------------------------------------
# No per-address cap here, so 1,500 silent connections really fill the 100 slots and the
# accept queue; when they all go, a fresh request must be answered at once, not after the
# dead sockets time out one slot-full at a time.
cat >"$D/flood.yaml" <<'EOF'
server:
  threads: 2
  max_connections: 100
  max_connections_per_ip: 0
functions:
  hello: {module: mods/cgi_hello.wasm, routes: [/hello]}
EOF
if serve_start flood --config "$D/flood.yaml"; then
    OUT=$($HOSTILE flood "$HOSTPORT" 1500)
    echo "$OUT" | sed 's/^/    /'
    f=$(val fresh_after)
    case "$f" in none) not_ok "flood: a fresh request is answered after the flood" "never" ;;
    *) check "flood: a fresh request is answered within 5 s of the flood's end ($f s)" \
        python3 -c "import sys; sys.exit(0 if float('$f') < 5 else 1)" ;; esac
    expect "flood: the server keeps answering" 200 "hello from" "$URL/hello"
    n=$(ss -tan state close-wait "( sport = :${HOSTPORT##*:} )" 2>/dev/null | tail -n +2 | wc -l)
    check "flood: no connection left in CLOSE-WAIT ($n)" test "$n" -le 5
    serve_stop
else
    not_ok "flood: server starts" "$(cat "$LOG")"
fi

# --- configuration errors ---------------------------------------------------------------------
bad() {
    printf '%s' "$2" >"$D/bad.yaml"
    out=$(timeout 60 "$KILN" serve --admin-listen off --listen 127.0.0.1:0 --config "$D/bad.yaml" 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && printf '%s' "$out" | grep -qF -- "$3"; then ok "config error: $1"
    else not_ok "config error: $1" "exit $rc: $out"; fi
}
bad "body budget under max_body_bytes" 'server: {max_buffered_body_bytes: 1MiB}
functions: {hello: {module: mods/cgi_hello.wasm, routes: [/hello]}}
' "bad.yaml:1: server.max_buffered_body_bytes (1048576 bytes) is smaller than server.max_body_bytes"
bad "header_timeout without a unit" 'server: {header_timeout: 5}
functions: {hello: {module: mods/cgi_hello.wasm, routes: [/hello]}}
' "server.header_timeout '5' needs a unit"
finish
