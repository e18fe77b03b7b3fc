#!/bin/sh
# test_proxywasm.sh - proxy-wasm filters (issue 11) as route plugins over
# real sockets: the C filter on the raw ABI (tests/guests_proxywasm/pw_test.c,
# behaviour chosen by its plugin configuration) and the AssemblyScript one
# (tests/as_proxywasm, solo-io proxy-runtime 0.1.8). Checked: request and
# response header edits in front of a function and of an upstream, a local
# reply that keeps the backend out, a buffered body rewrite, http_call auth
# against the stand-in upstream (allowed, denied, unknown cluster), shared
# data across requests and workers, a filter metric in the admin API's
# /metrics, tick timers, a chain of two filters (response side reversed),
# 40 streams paused on callouts at once with no extra thread, a trapping
# filter (500 naming it, the next request served by a new VM),
# one past its time limit (504, the same), the statuses of stubs and
# refused arguments, pseudo-headers (read, and :path/:method
# rewritten in front of a function and an upstream), vm_configuration, the clock,
# gauges and histograms in /metrics, shared queues, log levels,
# and a proxy-wasm module refused as a backend. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"
. "$(dirname "$0")/net_lib"

PG=$KILN_BUILD/guests_proxywasm
sh "$ROOT/tests/guests_proxywasm/build.sh" "$PG" >"$T/pbuild.log" 2>&1
XG=$KILN_BUILD/guests_extism
sh "$ROOT/tests/guests_extism/build.sh" "$XG" >"$T/xbuild.log" 2>&1
for m in "$PG/pw_test.wasm" "$PG/as_filter.wasm" "$XG/pl_echo.wasm"; do
    if [ ! -f "$m" ]; then
        not_ok "the test filters build" "missing $m
$(tail -n 15 "$T/pbuild.log")"
        finish
        exit 1
    fi
done
ok "the test filters build (C and AssemblyScript)"
if ! up_start; then
    not_ok "upstream starts" "$(cat "$T/upstream.log")"
    finish
    exit 1
fi

D=$T/pw
mkdir -p "$D"
cp "$PG/pw_test.wasm" "$PG/as_filter.wasm" "$XG/pl_echo.wasm" "$D/"
cat >"$D/kiln.yaml" <<YAML
server: {threads: 2, max_connections_per_ip: 0}
kv: {backend: memory}
clusters: {auth: "$UP"}
functions:
  echo: {module: pl_echo.wasm, abi: otoroshi}
  pw: {module: pw_test.wasm, abi: proxy-wasm}
  pw_m: {module: pw_test.wasm, abi: proxy-wasm}
  pw_t: {module: pw_test.wasm, abi: proxy-wasm}
  pw_x: {module: pw_test.wasm, abi: proxy-wasm}
  pw_q: {module: pw_test.wasm, abi: proxy-wasm}
  pw_s: {module: pw_test.wasm, abi: proxy-wasm, timeout: 300ms}
  pw_l: {module: pw_test.wasm, abi: proxy-wasm}
  asf: {module: as_filter.wasm, abi: proxy-wasm}
routes:
  - {path: /fn/..., function: echo, plugins: [{function: pw, kind: proxy-wasm, configuration: "headers,props,vmconf,now", vm_configuration: {mode: test}}]}
  - {path: /props2/..., function: echo, plugins: [{function: pw_m, kind: proxy-wasm, configuration: props2}]}
  - {path: /stubs/..., function: echo, plugins: [{function: pw, kind: proxy-wasm, configuration: stubs}]}
  - {path: /hdrcheck/..., function: echo, plugins: [{function: pw, kind: proxy-wasm, configuration: hdrcheck}]}
  - {path: /pseudo/..., function: echo, plugins: [{function: pw, kind: proxy-wasm, configuration: pseudo}]}
  - {path: /pseudo-up/..., upstream: "$UP", plugins: [{function: pw, kind: proxy-wasm, configuration: pseudo}]}
  - {path: /gauges/..., function: echo, plugins: [{function: pw_m, kind: proxy-wasm, configuration: gauges}]}
  - {path: /queue/..., function: echo, plugins: [{function: pw_q, kind: proxy-wasm, configuration: queue}]}
  - {path: /spin/..., function: echo, plugins: [{function: pw_s, kind: proxy-wasm, configuration: "spin,shared"}]}
  - {path: /log/..., function: echo, plugins: [{function: pw_l, kind: proxy-wasm, configuration: log, vm_configuration: "vm-conf-text"}]}
  - {path: /up/..., upstream: "$UP", plugins: [{function: pw, kind: proxy-wasm, configuration: headers}]}
  - {path: /plain/..., upstream: "$UP"}
  - {path: /block/..., function: echo, plugins: [{function: pw, kind: proxy-wasm, configuration: block}]}
  - path: /chain-block/...
    function: echo
    plugins:
      - {function: pw, kind: proxy-wasm, configuration: "tag=A,headers"}
      - {function: pw, kind: proxy-wasm, configuration: "tag=B,block"}
  - {path: /block0/..., function: echo, plugins: [{function: pw, kind: proxy-wasm, configuration: block0}]}
  - {path: /body/..., upstream: "$UP", plugins: [{function: pw, kind: proxy-wasm, configuration: "body,respbody"}]}
  - {path: /auth/..., upstream: "$UP", plugins: [{function: pw, kind: proxy-wasm, configuration: auth}]}
  - {path: /auth-bad/..., upstream: "$UP", plugins: [{function: pw, kind: proxy-wasm, configuration: "auth,badcluster"}]}
  - {path: /shared/..., function: echo, plugins: [{function: pw, kind: proxy-wasm, configuration: shared}]}
  - {path: /metric/..., function: echo, plugins: [{function: pw_m, kind: proxy-wasm, configuration: metric}]}
  - {path: /tick/..., function: echo, plugins: [{function: pw_t, kind: proxy-wasm, configuration: tick}]}
  - path: /chain/...
    upstream: "$UP"
    plugins:
      - {function: pw, kind: proxy-wasm, configuration: "tag=A"}
      - {function: asf, kind: proxy-wasm, configuration: as-in-chain}
      - {function: pw, kind: proxy-wasm, configuration: "tag=B,headers"}
  - {path: /as/..., upstream: "$UP", plugins: [{function: asf, kind: proxy-wasm, configuration: hello}]}
  - {path: /as-auth/..., upstream: "$UP", plugins: [{function: asf, kind: proxy-wasm, configuration: auth}]}
  - {path: /trap/..., function: echo, plugins: [{function: pw_x, kind: proxy-wasm, configuration: "trap,shared"}]}
  - {path: /filter-as-backend, function: pw}
YAML
if ! serve_start pw --config "$D/kiln.yaml"; then
    not_ok "server starts with proxy-wasm filters" "$(tail -n 20 "$LOG")"
    finish
    exit 1
fi
ok "server starts with proxy-wasm filters"
# The optimised tier compiles in the background and is swapped in, which
# makes every filter a new VM (fresh root context, tick count and shared
# state of its own): count ticks and per-VM state after that, not across it.
i=0
while ! grep -q "all functions at their final tier" "$LOG" && [ $i -lt 1200 ]; do
    sleep 0.1
    i=$((i + 1))
done
ADMIN=$(sed -n 's/.*admin API on \(http:[^ ]*\).*/\1/p' "$LOG" | head -n 1)
TOKEN=$(cat "$KILN_HOME/admin.token")

# jv EXPR: Python expression over d = $BODY as JSON.
jv() { printf '%s' "$BODY" | python3 -c 'import sys, json
try:
    d = json.loads(sys.stdin.read()); v = eval(sys.argv[1]); print(v if isinstance(v, str) else json.dumps(v))
except Exception as e:
    print("<error %r>" % e)' "$1"; }

# ---- headers in front of a function --------------------------------------------------
req -H "X-Pw-Replace: old" -H "X-Pw-Remove: 1" "$URL/fn/a?b=1"
check_eq "function: 200 through the filter" 200 "$CODE"
check_eq "function: added request header reaches the backend" 1 "$(jv 'd["headers"]["x-pw-added"]')"
check_eq "function: replaced request header" new "$(jv 'd["headers"]["x-pw-replace"]')"
check_eq "function: removed request header" None "$(jv 'str(d["headers"].get("x-pw-remove"))')"
check_eq "function: property request.path" "/fn/a?b=1" "$(jv 'd["headers"]["x-pw-prop-path"]')"
check_eq "function: property plugin_name" pw "$(jv 'd["headers"]["x-pw-prop-name"]')"
check_eq "function: response header added" 1 "$(header X-Pw-Resp)"
check_eq "function: :status readable in the response map" 200 "$(header X-Pw-Status)"
check_eq "function: proxy_on_vm_start got the route's vm_configuration (JSON)" '{"mode":"test"}' \
    "$(jv 'd["headers"]["x-pw-vmconf"]')"
check_eq "function: proxy_on_context_create(R, 0) came before proxy_on_vm_start(R), R != 0" 1 \
    "$(jv 'd["headers"]["x-pw-root-order"]')"
now=$(date +%s)
check "function: proxy_get_current_time_nanoseconds is the wall clock (within 60 s)" python3 -c \
    "import sys; ns = int(sys.argv[1]); assert abs(ns // 10**9 - $now) < 60, ns" \
    "$(jv 'd["headers"]["x-pw-now"]')"

# ---- more of Envoy's properties -----------------------------------------------------------
req -H "User-Agent: kiln-test/1" "$URL/props2/p/q?k=v"
check_eq "properties: request.host|scheme|protocol|useragent|url_path|query, source.address, plugin_vm_id, route_name, xds.cluster_name" \
    "$HOSTPORT|http|HTTP/1.1|kiln-test/1|/props2/p/q|k=v|127.0.0.1|pw_m|/props2/...|echo" \
    "$(jv 'd["headers"]["x-pw-props2"]')"
check_eq "properties: response.code (8 little-endian bytes, as Envoy)" "200/8" "$(header X-Pw-Resp-Code)"

# ---- statuses where Kiln has no equivalent, and refused arguments (spec §5, §9) ----------
req "$URL/stubs/x"
check_eq "statuses: gRPC UNIMPLEMENTED (12), unknown gRPC token / foreign function / header / queue NOT_FOUND (1), bad level / negative counter delta / unknown context / stream type BAD_ARGUMENT (2), stale CAS CAS_MISMATCH (8)" \
    "grpc=12 cancel=1 foreign=1 log6=2 missing=1 deq=1 neg=2 eff=2 cont=2 cas=8" \
    "$(jv 'd["headers"]["x-pw-stubs"]')"

# ---- header map rules real filters depend on (spec §5.2, §10 item 5) ------------------
req -H "X-Empty;" -H "X-Dup: a" -H "X-Dup: b" -H "X-MiXeD: c" "$URL/hdrcheck/x"
check_eq "header map: present-but-empty is OK with length 0, first match wins, order kept, keys lower-case" \
    "empty=0/0 dup=a order=ab lower=1" "$(jv 'd["headers"]["x-pw-hdrcheck"]')"

# ---- pseudo-headers -------------------------------------------------------------------
req "$URL/pseudo/a?b=1"
check_eq "pseudo-headers: :method :path :authority :scheme in the request map" \
    "GET /pseudo/a?b=1 $HOSTPORT http" "$(jv 'd["headers"]["x-pw-pseudo"]')"
req -H "X-New-Path: /pseudo/moved?z=2" "$URL/pseudo/a"
check_eq "pseudo-headers: replacing :path and :method changes the request the backend gets" \
    "PUT /pseudo/moved?z=2" "$(jv 'd["method"]') $(jv 'd["uri"]')"
req -H "X-New-Path: /echoall?via=pw" "$URL/pseudo-up/a"
check_eq "pseudo-headers: a new :path below an upstream route is what the upstream gets" \
    "200 PUT /echoall?via=pw" "$CODE $(jv 'd["method"]') $(jv 'd["path"]')"

# ---- headers in front of an upstream -----------------------------------------------------
req -H "X-Pw-Replace: old" -H "X-Pw-Remove: 1" "$URL/up/echoall?q=2"
check_eq "upstream: 200 through the filter" 200 "$CODE"
check_eq "upstream: added header reaches the upstream" 1 "$(jv 'd["headers"]["x-pw-added"]')"
check_eq "upstream: replaced header" new "$(jv 'd["headers"]["x-pw-replace"]')"
check_eq "upstream: removed header" None "$(jv 'str(d["headers"].get("x-pw-remove"))')"
check_eq "upstream: response header added" 1 "$(header X-Pw-Resp)"
check_eq "upstream: the upstream's own header kept" yes "$(header X-Upstream)"

# ---- local reply -------------------------------------------------------------------------
up_reset
expect "block: local reply with the filter's status and body" 403 "blocked by filter" \
    -H "X-Block: 1" "$URL/block/x"
check_eq "block: the filter's header" yes "$(header X-Pw-Blocked)"
expect "block: without the header the backend answers" 200 "" "$URL/block/x"
req -H "X-Block: 1" "$URL/chain-block/x"
check_eq "a local reply of the second filter passes the first filter's response side (Envoy's encoders)" \
    "403 B,A 1 blocked by filter" "$CODE $(header X-Pw-Chain) $(header X-Pw-Resp) $BODY"
req -H "X-Block: 1" "$URL/block0/x"
check_eq "a local reply ends the exchange even when the callback then returns Continue" \
    "403 yes blocked by filter" "$CODE $(header X-Pw-Blocked) $BODY"

# ---- bodies --------------------------------------------------------------------------------
req -X POST --data-binary "hello body" "$URL/body/echoall"
check_eq "body: the response body rewritten, framed by Kiln" "!" "$(printf '%s' "$BODY" | tail -c 1)"
BODY=${BODY%!}
check_eq "body: the upstream got the rewritten (buffered) body" "HELLO BODY" "$(jv 'd["body"]')"

# ---- http_call auth -------------------------------------------------------------------------
req -H "X-User: alice" "$URL/auth/echoall"
check_eq "auth allowed: 200 from the upstream" 200 "$CODE"
check_eq "auth allowed: the callout's answer reached the request" "ok:welcome" "$(jv 'd["headers"]["x-auth"]')"
req -H "X-User: mallory" "$URL/auth/echoall"
check_eq "auth denied: the filter's 401" 401 "$CODE"
check_eq "auth denied: the callout's status" 403 "$(header X-Auth-Status)"
# Clients that give up while their callout is in flight must not break the
# worker's VM for the requests paused next to them (Envoy drops the callout
# of a reset stream; Kiln must not enter the shared VM from a cancelled one).
pids=""
for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null -m 0.1 -H "X-User: alice&ms=500" "$URL/auth/echoall" &
    pids="$pids $!"
    curl -s -o "$T/patient.$i" -w '%{http_code}\n' -m 10 -H "X-User: alice&ms=500" \
        "$URL/auth/echoall" >"$T/patient.code.$i" &
    pids="$pids $!"
done
for p in $pids; do wait "$p"; done
check_eq "impatient clients during callouts: every patient one still gets 200" \
    "200 200 200 200 200 200" "$(cat "$T"/patient.code.* | tr '\n' ' ' | sed 's/ $//')"
req -H "X-User: alice" "$URL/auth/echoall"
check_eq "... and the filter keeps working afterwards" 200 "$CODE"
# A paused stream costs no thread: 40 requests whose filter waits 700 ms on
# its callout, at once on 2 workers; kiln starts no thread for them.
AC="python3 $ROOT/tests/integration/async_client.py"
idle=$(ls /proc/"$SPID"/task | wc -l)
AC_HEADER="X-User: alice&ms=700" $AC burst "$HOSTPORT" 40 /auth/echoall '"x-auth"' >"$T/pwburst.out" &
BP=$!
sleep 0.4
during=$(ls /proc/"$SPID"/task | wc -l)
wait $BP
check_contains "40 streams paused on callouts at once: all answered 200 with the callout's result" \
    "$(cat "$T/pwburst.out")" "ok=40 bad=0"
check_eq "... while kiln ran no more threads than idle ($idle)" "$idle" "$during"
echo "# $(cat "$T/pwburst.out")"
req -H "X-User: alice" "$URL/auth-bad/echoall"
check_eq "auth with an unknown cluster: BAD_ARGUMENT, the filter answers 503" 503 "$CODE"
req -H "X-User: alice" "$URL/as-auth/echoall"
check_eq "AssemblyScript auth allowed" "200 ok" "$CODE $(jv 'd["headers"]["x-as-auth"]')"
req -H "X-User: bob" "$URL/as-auth/echoall"
check_eq "AssemblyScript auth denied" 401 "$CODE"

# ---- shared data ------------------------------------------------------------------------------
req "$URL/shared/1"
c1=$(jv 'd["headers"]["x-pw-count"]')
req "$URL/shared/2"
c2=$(jv 'd["headers"]["x-pw-count"]')
check_eq "shared data: the count goes up across requests" $((c1 + 1)) "$c2"
check_contains "shared data: end callbacks ran log, done, delete" "$(jv 'd["headers"]["x-pw-events"]')" "log,done,delete"

# ---- metrics ------------------------------------------------------------------------------------
req "$URL/metric/1"
req "$URL/metric/2"
req -H "Authorization: Bearer $TOKEN" "$ADMIN/metrics"
check_eq "metrics: /metrics answers" 200 "$CODE"
check_contains "metrics: the filter's counter in Kiln's metrics" "$BODY" "pw_test_requests 2"
req "$ADMIN/metrics"
check_eq "metrics: token required" 401 "$CODE"
req "$URL/gauges/1"
check_eq "metrics: a gauge recorded and read back by the filter" 7 "$(jv 'd["headers"]["x-pw-gauge"]')"
req "$URL/gauges/2"
req -H "Authorization: Bearer $TOKEN" "$ADMIN/metrics"
check_contains "metrics: the gauge in Kiln's metrics" "$BODY" "pw_test_gauge 7"
check_contains "metrics: the histogram's count (two records)" "$BODY" "pw_test_hist_count 2"
check_contains "metrics: the histogram's sum" "$BODY" "pw_test_hist_sum 10"
check_contains "metrics: the histogram's types" "$BODY" "# TYPE pw_test_hist histogram"

# ---- shared queues ---------------------------------------------------------------------------------
req "$URL/queue/1"
req "$URL/queue/2"
n=0
i=0
while [ $i -lt 50 ]; do
    req "$URL/queue/3"
    n=$(jv 'd["headers"]["x-pw-dequeued"]')
    [ "$n" -ge 2 ] 2>/dev/null && break
    sleep 0.1
    i=$((i + 1))
done
check "shared queue: items enqueued by requests reach proxy_on_queue_ready on the root ($n)" \
    [ "$n" -ge 2 ]

# ---- logging at levels ------------------------------------------------------------------------------
req "$URL/log/1"
check_contains "log: proxy_on_vm_start got a string vm_configuration as given" "$(cat "$LOG")" \
    "vm configuration 'vm-conf-text'"
for lv in 2 3 4 5; do
    check "log: level $lv (info and above) reaches the server log" grep -q "pw_test log at $lv" "$LOG"
done
for lv in 0 1; do
    check "log: level $lv (below info) is dropped" sh -c "! grep -q 'pw_test log at $lv' '$LOG'"
done
check "log: proxy_on_log reads :method, :path and :status (access-log filters)" \
    grep -q "pw_test on_log GET /log/1 200" "$LOG"

# ---- ticks ------------------------------------------------------------------------------------------
req "$URL/tick/1"
sleep 0.5
t=0
for i in 1 2 3 4; do
    req "$URL/tick/2"
    v=$(jv 'd["headers"]["x-pw-ticks"]')
    [ "$v" -gt "$t" ] 2>/dev/null && t=$v
done
check "ticks: proxy_on_tick fired on the worker's loop ($t)" [ "$t" -ge 5 ]

# ---- chain -----------------------------------------------------------------------------------------
req "$URL/chain/echoall"
check_eq "chain: request side in order" "A,B" "$(jv 'd["headers"]["x-pw-chain"]')"
check_eq "chain: the AssemblyScript filter in the middle" "as-in-chain" "$(jv 'd["headers"]["x-as-added"]')"
check_eq "chain: response side reversed" "B,A" "$(header X-Pw-Chain)"
check_eq "chain: the AssemblyScript filter's response header" 1 "$(header X-As-Resp)"

# ---- AssemblyScript -------------------------------------------------------------------------------
req -H "X-As-Block: 1" "$URL/as/x"
check_eq "AssemblyScript: local reply" 403 "$CODE"

# ---- failures ----------------------------------------------------------------------------------------
req -H "X-Trap: 1" "$URL/trap/x"
check_eq "trap: 500" 500 "$CODE"
check_contains "trap: the answer names the filter" "$BODY" "pw_x"
check_contains "trap: the answer is the trap (not replaced by a later callback on the dead VM)" \
    "$BODY" "proxy_on_request_headers): pw_test.wasm: proxy_on_request_headers: trap"
ok=0
for i in 1 2 3 4; do
    req "$URL/trap/y"
    [ "$CODE" = 200 ] && ok=$((ok + 1))
done
check_eq "trap: later requests are served (VM recreated)" 4 "$ok"
check "trap: logged" grep -q "proxy-wasm filter 'pw_x'" "$LOG"
req "$URL/spin/a"
first=$(jv 'd["headers"]["x-pw-count"]')
t0=$(date +%s)
req -H "X-Spin: 1" "$URL/spin/x"
check_eq "a filter past its time limit: 504" 504 "$CODE"
check_contains "... naming the filter" "$BODY" "pw_s"
check_contains "... saying it was the time limit" "$BODY" "\"timeout_ms\":300"
check "... stopped soon ($(($(date +%s) - t0)) s)" [ $(($(date +%s) - t0)) -lt 10 ]
ok=0
for i in 1 2 3 4; do
    req "$URL/spin/y"
    [ "$CODE" = 200 ] && ok=$((ok + 1))
done
check_eq "a filter past its time limit: later requests are served" 4 "$ok"
req "$URL/filter-as-backend"
check_eq "a filter as a backend: refused" 500 "$CODE"
check_contains "a filter as a backend: the message says what to do" "$BODY" \
    "list it in a route's plugins with kind: proxy-wasm"

# ---- reloads while ticks fire -----------------------------------------------------------------
# Every reload retires the previous route table; a filter's VM, whose timer
# fires between requests, holds that table until it notices and goes away
# (kiln_abi_ops.retire). Reload while ticks fire and requests run: the
# server must neither crash (a VM using a freed table) nor stop serving.
before=$(grep -c "reloaded in" "$LOG")
i=0
while [ $i -lt 15 ]; do
    kill -HUP "$SPID"
    req "$URL/tick/r$i"
    sleep 0.05
    i=$((i + 1))
done
i=0
while [ "$(grep -c "reloaded in" "$LOG")" -lt $((before + 1)) ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
sleep 0.3
ok=0
for i in 1 2 3 4 5; do
    req "$URL/tick/after"
    [ "$CODE" = 200 ] && ok=$((ok + 1))
done
check_eq "reloads while ticks fire: still serving" 5 "$ok"
check "reloads while ticks fire: the server is alive" kill -0 "$SPID"
check "reloads while ticks fire: reloaded" [ "$(grep -c "reloaded in" "$LOG")" -gt "$before" ]

serve_stop
check_eq "server stops cleanly" 0 "$SRC"
finish
