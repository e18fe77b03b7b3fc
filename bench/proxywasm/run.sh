#!/bin/sh
# bench/proxywasm/run.sh - the `proxywasm` section of Kiln's benchmark (issue
# 11): requests/s through a route with one header-adding proxy-wasm filter in
# front of a function and in front of an upstream, against the same routes
# without the filter (wrk, 64 connections); and a route whose filter makes an
# http_call to a local server that answers after 20 ms and continues the
# request when it answers (500 connections), with kiln's thread count and
# RSS sampled during that run. The filter is bench/proxywasm/filter.c (raw
# ABI, tests/guests_proxywasm/pw.h); the function is bench/pipeline/backend.c
# (Otoroshi call_backend); the upstream and the 20 ms server are
# bench/io/upstream.c. Prints a markdown section (also saved as
# BUILD/bench/proxywasm/proxywasm.md); docs/internals/bench.md explains it.
#
# Usage: sh bench/proxywasm/run.sh [BUILD]            (default: build)
# Environment: BENCH_PW_RUNS         runs per case, median reported (default 3)
#              BENCH_PW_DURATION     seconds per run (default 10)
#              BENCH_PW_CONNS        wrk connections, the four plain/filter routes (default 64)
#              BENCH_PW_CALL_CONNS   wrk connections, the callout route (default 500)
#              BENCH_PW_CALL_DELAY   the callout server's delay in ms (default 20)
#              BENCH_PW_REPEATS      runs that may be repeated because
#                                    something else loaded the machine (default 3)
# Not a test: nothing here passes or fails on a number.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECTION=proxywasm # say and die (bench/lib.sh) print "bench proxywasm: ..."
. "$ROOT/bench/lib.sh"
cd "$ROOT"
BUILD_ARG=${1:-build}
RUNS=${BENCH_PW_RUNS:-3}
DURATION=${BENCH_PW_DURATION:-10}
CONNS=${BENCH_PW_CONNS:-64}
CALL_CONNS=${BENCH_PW_CALL_CONNS:-500}
CALL_DELAY=${BENCH_PW_CALL_DELAY:-20}
REPEAT_MAX=${BENCH_PW_REPEATS:-3}
WARMUP=3
WORKERS=2
WRK_THREADS=2
OTHER_MAX=10

need_tools make clang cc wrk curl awk sort
MAXC=$CONNS
[ "$CALL_CONNS" -gt "$MAXC" ] && MAXC=$CALL_CONNS
# wrk, kiln (client side + callout side) and the servers each hold a socket
# per connection.
nofile_at_least $((MAXC * 3 + 64)) ||
    die "ulimit -n is $(ulimit -n), too low for $MAXC connections (raise the hard limit)"

# ---- build -------------------------------------------------------------------
# BUILD is relative to the repository, as for `make BUILD=...`.
make_kiln "$BUILD_ARG/kiln"
section_dirs proxywasm

if stale "$B/upstream" "$ROOT/bench/io/upstream.c"; then
    say "building the upstream (cc -O2 bench/io/upstream.c)"
    cc -O2 -Wall -Wextra -o "$B/upstream" "$ROOT/bench/io/upstream.c" || die "cannot build bench/io/upstream.c"
fi
GH=$ROOT/tests/guests_extism
if stale "$B/backend.wasm" "$ROOT/bench/pipeline/backend.c" "$GH/guest.h" "$GH/pl_json.h"; then
    say "building backend.wasm (clang wasm32-wasi)"
    clang --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror -mexec-model=reactor \
        -I "$GH" -o "$B/backend.wasm" "$ROOT/bench/pipeline/backend.c" || die "cannot build bench/pipeline/backend.c"
fi
PWH=$ROOT/tests/guests_proxywasm
if stale "$B/filter.wasm" "$ROOT/bench/proxywasm/filter.c" "$PWH/pw.h"; then
    say "building filter.wasm (clang wasm32-wasi, raw proxy-wasm ABI)"
    clang --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror -mexec-model=reactor -D_GNU_SOURCE \
        -I "$PWH" -o "$B/filter.wasm" "$ROOT/bench/proxywasm/filter.c" || die "cannot build bench/proxywasm/filter.c"
fi

# ---- servers -----------------------------------------------------------------
# servers_init (bench/lib.sh): cleanup stops the servers and the SAMPLER.
servers_init

# expect NAME URL STATUS BODY [CURL-ARG...]: poll until URL answers STATUS
# with exactly BODY (BODY "*": any body). RESPONSE_HEADER, when set, must be
# among the response's headers (exact line, case-insensitive name).
RESPONSE_HEADER=""
expect() {
    name=$1 url=$2 status=$3 body=$4
    shift 4
    i=0
    while :; do
        got=$(curl -s --max-time 5 -D "$B/check.head" -o "$B/check.body" -w '%{http_code}' "$@" "$url" || true)
        gotb=$(cat "$B/check.body" 2>/dev/null || true)
        hdr_ok=yes
        if [ -n "$RESPONSE_HEADER" ]; then
            tr -d '\r' <"$B/check.head" | grep -qix "$RESPONSE_HEADER" || hdr_ok=no
        fi
        [ "$got" = "$status" ] && [ $hdr_ok = yes ] && { [ "$body" = "*" ] || [ "$gotb" = "$body" ]; } && return 0
        i=$((i + 1))
        [ $i -lt 50 ] || die "$name: $url answered $got '$gotb' (header '$RESPONSE_HEADER': $hdr_ok), not $status '$body' (see $B/*.log)"
        sleep 0.1
    done
}

UPBODY="upstream: waited 0 ms"
say "starting the upstream (bench/io/upstream.c, no delay) and the callout server ($CALL_DELAY ms)"
start upstream "$B/upstream" 0 0
UP=http://127.0.0.1:$PORT
expect upstream "$UP/" 200 "$UPBODY"
start slow "$B/upstream" 0 "$CALL_DELAY"
SLOW=http://127.0.0.1:$PORT
expect slow "$SLOW/" 200 "upstream: waited $CALL_DELAY ms"

cat >"$B/kiln.yaml" <<EOF
# Generated by bench/proxywasm/run.sh.
server:
  listen: 127.0.0.1:0
  threads: $WORKERS
  quiet: true
  drain_timeout: 2s
  max_connections: 4096
  max_connections_per_ip: 0   # wrk's $MAXC connections come from one address
# A loopback cluster is named by its IP address (the address guard).
clusters: {slow: "$SLOW"}
functions:
  backend: {module: backend.wasm, abi: otoroshi}
  pw_add: {module: filter.wasm, abi: proxy-wasm}
  pw_call: {module: filter.wasm, abi: proxy-wasm}
routes:
  - {path: /fn/plain, function: backend}
  - {path: /fn/filter, function: backend, plugins: [{function: pw_add, kind: proxy-wasm, configuration: add}]}
  - {path: /up/plain/..., upstream: "$UP"}
  - {path: /up/filter/..., upstream: "$UP", plugins: [{function: pw_add, kind: proxy-wasm, configuration: add}]}
  - {path: /callout, function: backend, plugins: [{function: pw_call, kind: proxy-wasm, configuration: callout}]}
EOF
say "starting kiln serve ($WORKERS workers; waiting for the final tier)"
start kiln "$KILN" serve --admin-listen off --config "$B/kiln.yaml"
K=http://127.0.0.1:$PORT
FNBODY_PLAIN='{"ok":true,"x-bench":null}'
FNBODY_FILTER='{"ok":true,"x-bench":"1"}'
# The backend echoes the x-bench header the filter adds; the response header
# x-pw-bench shows the filter's response side (and, for the upstream, that
# the filter ran at all). /callout must answer only after the callout.
expect fn_plain "$K/fn/plain" 200 "$FNBODY_PLAIN"
expect up_plain "$K/up/plain/" 200 "$UPBODY"
RESPONSE_HEADER="x-pw-bench: 1"
expect fn_filter "$K/fn/filter" 200 "$FNBODY_FILTER"
expect up_filter "$K/up/filter/" 200 "$UPBODY"
RESPONSE_HEADER=""
expect callout "$K/callout" 200 "$FNBODY_FILTER"
t=$(curl -s -o /dev/null -w '%{time_total}' "$K/callout")
awk -v t="$t" -v d="$CALL_DELAY" 'BEGIN { exit !(t * 1000 >= d) }' ||
    die "/callout answered in $t s, before the callout server's $CALL_DELAY ms: the filter did not wait"
tr -d '\r' <"$B/check.head" | grep -qi '^x-pw-bench:' && die "/callout answered with x-pw-bench (wrong filter mode)"

URL_upstream=$UP/
URL_up_plain=$K/up/plain/
URL_up_filter=$K/up/filter/
URL_fn_plain=$K/fn/plain
URL_fn_filter=$K/fn/filter
URL_callout=$K/callout
URL_slow=$SLOW/
for c in up_plain up_filter fn_plain fn_filter callout; do
    eval "PID_$c=$PID_kiln"
done
for c in upstream up_plain up_filter fn_plain fn_filter; do
    eval "CONNS_$c=$CONNS"
    eval "UPID_$c=$PID_upstream"
done
for c in slow callout; do
    eval "CONNS_$c=$CALL_CONNS"
    eval "UPID_$c=$PID_slow"
done
CASES="upstream up_plain up_filter fn_plain fn_filter slow callout"

# ---- load --------------------------------------------------------------------
# CPU accounting in clock ticks (bench/lib.sh), as in bench/io/run.sh.
# threads_rss PID: "threads rss-kB" of a process now.
threads_rss() { awk '/^Threads:/ { t = $2 } /^VmRSS:/ { r = $2 } END { print t, r }' "/proc/$1/status"; }
busy_before
IDLE_TR=$(threads_rss "$PID_kiln")

wrk_opts() { # CASE
    eval "echo -t$WRK_THREADS -c\$CONNS_$1 --timeout 10s -s $ROOT/bench/io/get.lua"
}

say "warming up each case for ${WARMUP}s"
for c in $CASES; do
    eval "url=\$URL_$c"
    # shellcheck disable=SC2046 # wrk_opts is a word list
    wrk $(wrk_opts "$c") -d${WARMUP}s "$url" >/dev/null 2>&1 || true
done

# measure CASE RAW : one wrk run; prints
#   req/s p50us p99us errors requests server-us/req upstream-us/req other-load-%
#   max-threads max-rss-kB
# The server is kiln (for the direct cases, the upstream itself); other load
# is the CPU spent by neither kiln, the servers nor wrk. Kiln's threads and
# RSS are sampled every 0.5 s during the run.
measure() {
    eval "url=\$URL_$1"
    eval "spid=\$PID_$1"
    eval "upid=\$UPID_$1"
    opid=$PID_upstream
    [ "$opid" = "$upid" ] && opid=$PID_slow
    (
        while :; do
            threads_rss "$PID_kiln"
            sleep 0.5
        done
    ) >"$2.threads" 2>/dev/null &
    SAMPLER=$!
    m0=$(machine_ticks)
    s0=$(proc_ticks "$spid")
    u0=$(proc_ticks "$upid")
    o0=$(proc_ticks "$opid")
    # shellcheck disable=SC2046 # wrk_opts is a word list
    wticks=$(wrk_ticks "$2" $(wrk_opts "$1") -d"${DURATION}s" --latency "$url")
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    SAMPLER=""
    kill -0 "$spid" 2>/dev/null || die "$1 died during the run (see $B/*.log)"
    s1=$(proc_ticks "$spid")
    u1=$(proc_ticks "$upid")
    o1=$(proc_ticks "$opid")
    m1=$(machine_ticks)
    res=$(awk '$1 == "RESULT" { print $2, $3, $4, $5, $6 }' "$2")
    [ -n "$res" ] || die "wrk gave no result for $1 (see $2)"
    same=0
    [ "$spid" = "$upid" ] && same=1
    peak=$(awk '{ if ($1 > t) t = $1; if ($2 > r) r = $2 } END { print t + 0, r + 0 }' "$2.threads")
    # The idle one of the two servers counts as ours, not as other load.
    echo "$res $s0 $s1 $u0 $u1 $m0 $m1 $wticks $o0 $o1 $peak" | awk -v hz="$HZ" -v same=$same '{
        tick = 1e6 / hz; req = $5 > 0 ? $5 : 1
        srv = $7 - $6; up = same ? 0 : $9 - $8; tot = $13 - $11
        other = ($12 - $10) - srv - up - $14 - ($16 - $15)
        if (other < 0) other = 0
        printf "%s %s %s %s %s %.2f %.2f %.1f %d %d\n", $1, $2, $3, $4, $5, srv * tick / req,
            (same ? srv : up) * tick / req, (tot > 0 ? 100 * other / tot : 0), $17, $18 }'
}

n_cases=$(echo "$CASES" | wc -w)
say "measuring: $n_cases cases x $RUNS runs x ${DURATION}s (wrk -t$WRK_THREADS, -c$CONNS and -c$CALL_CONNS, about $((n_cases * RUNS * (DURATION + 1) / 60 + 1)) min)"
# Rounds interleave the cases; a run with more than OTHER_MAX% other load is
# repeated (up to REPEAT_MAX times in all), its output kept in raw/.
run_rounds '{ printf "%.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors, server %.1f us CPU/req, upstream %.1f us CPU/req, other load %.0f%%, kiln %d threads, %.0f MB RSS", $1, $2 / 1000, $3 / 1000, $4, $6, $7, $8, $9, $10 / 1024 }'
HWM_kiln=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$PID_kiln/status" 2>/dev/null || echo -)
cleanup
BUSY_AFTER=$(cpu_busy)

# ---- report ------------------------------------------------------------------
# agg CASE COLUMN [sum|max] (bench/lib.sh): median (or sum, max) of a
# results.txt column over the runs of CASE (2 req/s, 3 p50 us, 4 p99 us,
# 5 errors, 7 kiln CPU us/req, 8 upstream CPU us/req, 10 kiln threads, 11
# kiln RSS kB); rps, ms, us, ratio, fmt_rps and emit are there too.
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.0f %%", 100 * a / b }'; }

OUT=$B/proxywasm.md.tmp
: >"$OUT"

NPROC=$(nproc)
cpu_model=$(cpu_model)
IDEAL=$(awk -v c="$CALL_CONNS" -v d="$CALL_DELAY" 'BEGIN { printf "%.0f", c * 1000 / d }')
emit "## Proxy-wasm filters: one header-adding filter ($CONNS connections) and an http_call filter ($CALL_CONNS connections)"
emit ""
emit "Routes of one \`kiln serve\` ($WORKERS workers, access log off): \`/fn/plain\` is an Otoroshi"
emit "WasmBackend (\`bench/pipeline/backend.c\`, a small JSON body); \`/fn/filter\` is the same function"
emit "behind one proxy-wasm filter (\`bench/proxywasm/filter.c\`, configuration \`add\`: adds"
emit "\`x-bench: 1\` to the request and \`x-pw-bench: 1\` to the response; one VM per worker, kept);"
emit "\`/up/plain/...\` proxies the upstream (\`bench/io/upstream.c\`, one thread, no delay),"
emit "\`/up/filter/...\` the same behind the same filter. \`/callout\` is the function behind the"
emit "filter in configuration \`callout\`: every request dispatches \`proxy_http_call\` to cluster"
emit "\`slow\` (the same upstream program answering after $CALL_DELAY ms), pauses, and continues when"
emit "the callout answers 200. \"direct\" rows are wrk straight at the upstream and at the"
emit "$CALL_DELAY ms server. \`wrk -t$WRK_THREADS -d${DURATION}s --latency\`, -c$CONNS for the first five rows,"
emit "-c$CALL_CONNS for the last two; median of $RUNS runs per row (rounds interleaved, after a"
emit "${WARMUP} s warm-up per case); errors summed. Everything shares the machine's $NPROC CPUs"
emit "($cpu_model) with wrk; CPUs ${BUSY}% busy in the second before the run (load average"
emit "$LOAD_START), ${BUSY_AFTER}% in the second after it."
emit ""
emit "| route | conns | req/s | p50 ms | p99 ms | errors | vs plain | kiln CPU µs/req | upstream CPU µs/req |"
emit "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
row() { # CASE LABEL PLAIN-CASE
    v=$(rps "$1")
    vp=-
    [ -z "$3" ] || vp=$(ratio "$v" "$(rps "$3")")
    kcpu=$(us "$1" 7)
    case $1 in upstream | slow) kcpu=- ;; esac
    ucpu=$(us "$1" 8)
    case $1 in fn_*) ucpu=- ;; esac
    eval "conns=\$CONNS_$1"
    emit "| $2 | $conns | $(fmt_rps "$v") | $(ms "$1" 3) | $(ms "$1" 4) | $(agg "$1" 5 sum) | $vp | $kcpu | $ucpu |"
}
row upstream "direct to the upstream" ""
row up_plain "\`/up/plain\` (Kiln proxy)" ""
row up_filter "\`/up/filter\` (filter → upstream)" up_plain
row fn_plain "\`/fn/plain\` (function)" ""
row fn_filter "\`/fn/filter\` (filter → function)" fn_plain
row slow "direct to the $CALL_DELAY ms server" ""
row callout "\`/callout\` (filter http_call $CALL_DELAY ms → function)" ""
emit ""
plug() { awk -v a="$(us "$1" 7)" -v b="$(us "$2" 7)" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", a - b }'; }
emit "| ratio | value |"
emit "|---|---:|"
emit "| \`/fn/filter\` / \`/fn/plain\` (req/s) | $(ratio "$(rps fn_filter)" "$(rps fn_plain)")× |"
emit "| \`/up/filter\` / \`/up/plain\` (req/s) | $(ratio "$(rps up_filter)" "$(rps up_plain)")× |"
emit "| the filter, kiln CPU per request (function route) | $(plug fn_filter fn_plain) µs |"
emit "| the filter, kiln CPU per request (upstream route) | $(plug up_filter up_plain) µs |"
emit "| \`/callout\`: ideal ($CALL_CONNS conns / $CALL_DELAY ms) | $IDEAL req/s |"
emit "| \`/callout\` / ideal | $(pct "$(rps callout)" "$IDEAL") |"
emit "| \`/callout\` / direct to the $CALL_DELAY ms server (the measured ceiling here) | $(pct "$(rps callout)" "$(rps slow)") |"
emit "| \`/callout\`: kiln CPU per request beyond \`/fn/plain\` (callout + filter) | $(plug callout fn_plain) µs |"
emit "| kiln threads idle / max during the \`/callout\` runs | ${IDLE_TR% *} / $(agg callout 10 max) |"
emit "| kiln RSS idle / max during the \`/callout\` runs / peak (VmHWM) over the whole bench | $(echo "$IDLE_TR" | awk '{ printf "%.0f", $2 / 1024 }') / $(agg callout 11 max | awk '{ printf "%.0f", $1 / 1024 }') / $HWM_kiln MB |"
emit ""
other=$(other_load 9)
dirty=$(dirty_runs 9)
emit "\"kiln CPU µs/req\" is the kiln process's user + system time per request (median), filters,"
emit "callouts and proxying included; \"upstream CPU\" the upstream's (for \`/callout\`, the $CALL_DELAY ms"
emit "server's). Threads and RSS are sampled from \`/proc/PID/status\` every 0.5 s: with"
emit "$CALL_CONNS requests paused on their callouts, the thread count staying at the idle count means"
emit "a paused stream holds no thread. Other load during the runs (CPU used by neither kiln, the"
emit "servers nor wrk): $other over $(wc -l <"$B/results.txt") runs; $repeats run(s) repeated because of"
emit "more than $OTHER_MAX% other load."
[ "$dirty" -eq 0 ] || emit "**$dirty run(s) kept with more than $OTHER_MAX% other load: something else was running; read the ratios and CPU per request, not req/s.**"

[ $BUILT = yes ] || emit "**make failed before this run: the binary measured is the last one built in $BUILD_ARG.**"

mv "$OUT" "$B/proxywasm.md"
cat "$B/proxywasm.md"
say "saved $B/proxywasm.md; raw wrk output in $B/raw/, server logs in $B/*.log"
