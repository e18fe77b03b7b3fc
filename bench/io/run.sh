#!/bin/sh
# bench/io/run.sh - the `io` section of Kiln's benchmark: an I/O-bound
# function at 1,000 connections. Every request makes one outbound GET to a
# local upstream that answers after 50 ms (bench/io/upstream.c); kiln runs it
# as the C SDK's fetch example on 2 workers, next to a single-process Node.js
# node:http server doing the same with `fetch`. Prints a markdown section
# (also saved as BUILD/bench/io.md); docs/internals/bench.md explains it.
#
# Usage: sh bench/io/run.sh [BUILD]            (default: build)
# Environment: BENCH_IO_RUNS      runs per case, median reported (default 3)
#              BENCH_IO_DURATION  seconds per run (default 10)
#              BENCH_IO_CONNS     wrk connections (default 1000)
#              BENCH_IO_DELAY     upstream delay in ms (default 50)
#              BENCH_IO_REPEATS   runs that may be repeated because something
#                                 else loaded the machine (default 3)
# Not a test: targets are reported as met/not met, never as an exit status.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD_ARG=${1:-build}
RUNS=${BENCH_IO_RUNS:-3}
DURATION=${BENCH_IO_DURATION:-10}
CONNS=${BENCH_IO_CONNS:-1000}
DELAY=${BENCH_IO_DELAY:-50}
REPEAT_MAX=${BENCH_IO_REPEATS:-3}
WARMUP=3
WORKERS=2
WRK_THREADS=2
OTHER_MAX=10

say() { echo "bench io: $*" >&2; }
die() {
    echo "bench io: $*" >&2
    exit 1
}

for tool in make clang cc wrk curl awk sort; do
    command -v $tool >/dev/null 2>&1 || die "'$tool' not found; run 'make deps' (scripts/install-deps.sh)"
done

# wrk holds CONNS sockets, kiln and node each CONNS inbound plus up to CONNS
# outbound, the upstream up to 2 x CONNS: raise the soft limit to the hard one.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=65536
ulimit -n "$hard" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((CONNS * 3)) ] ||
    die "ulimit -n is $(ulimit -n), need at least $((CONNS * 3)) for $CONNS connections (raise the hard limit)"

# ---- build -------------------------------------------------------------------
# BUILD is relative to the repository, as for `make BUILD=...`.
say "building kiln (make -s BUILD=$BUILD_ARG all)"
make -s --no-print-directory BUILD="$BUILD_ARG" all >&2 || die "make failed"
BUILD=$(cd "$BUILD_ARG" && pwd)
B=$BUILD/bench/io
mkdir -p "$B/raw" "$B/home"
rm -f "$B"/raw/*
# Measure a snapshot, so a rebuild during the run cannot change the binary.
cp "$BUILD/kiln" "$B/kiln.tmp" && mv "$B/kiln.tmp" "$B/kiln"
KILN=$B/kiln
# Artifacts go to a cache of the bench's own, never ~/.kiln.
export KILN_HOME="$B/home"
unset KILN_CC

stale() {
    out=$1
    shift
    [ -e "$out" ] || return 0
    for f in "$@"; do
        [ "$f" -nt "$out" ] && return 0
    done
    return 1
}

if stale "$B/upstream" "$ROOT/bench/io/upstream.c"; then
    say "building the upstream (cc -O2)"
    cc -O2 -Wall -Wextra -o "$B/upstream" "$ROOT/bench/io/upstream.c" || die "cannot build bench/io/upstream.c"
fi
FETCH_SRC=$ROOT/examples/sdk/fetch.c
if stale "$B/fetch.wasm" "$FETCH_SRC" "$ROOT/sdk/c/kiln.h"; then
    say "building fetch.wasm from examples/sdk/fetch.c (C SDK)"
    clang --target=wasm32-wasi --sysroot=/usr -O2 -s -I "$ROOT/sdk/c" "$FETCH_SRC" -o "$B/fetch.wasm" ||
        die "cannot build the fetch function"
fi

NODE_SKIP=""
command -v node >/dev/null 2>&1 || NODE_SKIP="node not found"
NODE_VERSION=$(node --version 2>/dev/null || echo none)

# ---- servers -----------------------------------------------------------------
PIDS=""
cleanup() {
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $PIDS; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME COMMAND... : start a server in the background, logging to
# B/NAME.log; sets PORT from its "listening on http://127.0.0.1:PORT" line.
start() {
    name=$1
    shift
    "$@" >"$B/$name.log" 2>&1 &
    pid=$!
    PIDS="$PIDS $pid"
    eval "PID_$name=$pid"
    i=0
    PORT=""
    while [ -z "$PORT" ]; do
        PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$B/$name.log")
        # kiln listens at once and compiles in tiers: measure its final tier.
        if [ -n "$PORT" ] && grep -q "kiln serve:" "$B/$name.log" &&
            ! grep -q "all functions at their final tier" "$B/$name.log"; then
            PORT=""
        fi
        [ -n "$PORT" ] && break
        kill -0 "$pid" 2>/dev/null || die "$name exited at start-up: $(tail -5 "$B/$name.log")"
        i=$((i + 1))
        # Up to 120 s: the first start of kiln compiles the function.
        [ $i -lt 1200 ] || die "$name did not report its port within 120 s (see $B/$name.log)"
        sleep 0.1
    done
}

EXPECT="upstream: waited $DELAY ms"
# check NAME URL : poll until the server relays the upstream's body exactly.
check() {
    i=0
    while :; do
        got=$(curl -s --max-time 2 "$2" || true)
        [ "$got" = "$EXPECT" ] && return 0
        i=$((i + 1))
        [ $i -lt 50 ] || die "$1 at $2 answered '$got', not '$EXPECT' (see $B/$1.log)"
        sleep 0.1
    done
}

say "starting the upstream (answers after $DELAY ms)"
start upstream "$B/upstream" 0 "$DELAY"
UP=http://127.0.0.1:$PORT/
URL_upstream=$UP
check upstream "$URL_upstream"

cat >"$B/kiln.yaml" <<EOF
# Generated by bench/io/run.sh.
server:
  listen: 127.0.0.1:0
  threads: $WORKERS
  quiet: true
  drain_timeout: 2s
  max_connections: 4096
  max_connections_per_ip: 0   # wrk's $CONNS connections come from one address
functions:
  fetch:
    module: fetch.wasm
    abi: wasi
    timeout: 5s
    allowed_hosts: ["http://127.0.0.1:$PORT"]
    routes: [/fetch]
EOF
say "starting kiln serve ($WORKERS workers, C SDK fetch function)"
start kiln "$KILN" serve --admin-listen off --config "$B/kiln.yaml"
URL_kiln="http://127.0.0.1:$PORT/fetch?url=$UP"
check kiln "$URL_kiln"
if [ -z "$NODE_SKIP" ]; then
    say "starting node $NODE_VERSION (node:http + fetch, one process)"
    start node node --no-warnings "$ROOT/bench/io/node/server.mjs" "$UP" 0
    URL_node=http://127.0.0.1:$PORT/
    check node "$URL_node"
fi

# ---- load --------------------------------------------------------------------
CASES="upstream kiln"
[ -n "$NODE_SKIP" ] || CASES="$CASES node"

# CPU accounting, in clock ticks (USER_HZ) like /proc/PID/stat:
# machine_ticks prints "busy total" summed over all CPUs (steal counts as busy).
machine_ticks() {
    awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat
}
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_busy() {
    a=$(machine_ticks)
    sleep 1
    b=$(machine_ticks)
    echo "$a $b" | awk '{ t = $4 - $2; printf "%.0f", (t > 0 ? 100 * ($3 - $1) / t : 0) }'
}
BUSY=$(cpu_busy)
[ "$BUSY" -le 20 ] || say "warning: the CPUs were ${BUSY}% busy before the run; other load depresses every number"

# wrk waits up to 10 s for an answer, so slow answers land in the latency
# histogram instead of being dropped from it as timeouts.
WRK_OPTS="-t$WRK_THREADS -c$CONNS --timeout 10s -s $ROOT/bench/io/get.lua"

say "warming up each case for ${WARMUP}s (connections, Node's JIT, kiln's pools)"
for c in $CASES; do
    eval "url=\$URL_$c"
    # shellcheck disable=SC2086 # WRK_OPTS is a word list
    wrk $WRK_OPTS -d${WARMUP}s "$url" >/dev/null 2>&1 || true
done

# measure CASE RAW : one wrk run; prints
#   req/s p50us p99us errors requests server-us/req upstream-us/req other-load-%
# The server is the case's process (for the upstream case, the upstream);
# other load is the CPU spent by neither it, the upstream nor wrk.
measure() {
    eval "url=\$URL_$1"
    eval "spid=\$PID_$1"
    upid=$PID_upstream
    m0=$(machine_ticks)
    s0=$(proc_ticks "$spid")
    u0=$(proc_ticks "$upid")
    # shellcheck disable=SC2086 # WRK_OPTS is a word list
    wticks=$(sh -c 'wrk "$@" >"$0" 2>&1; awk "{ print \$16 + \$17 }" /proc/$$/stat' "$2" \
        $WRK_OPTS -d"${DURATION}s" --latency "$url")
    kill -0 "$spid" 2>/dev/null || die "$1 died during the run (see $B/$1.log)"
    s1=$(proc_ticks "$spid")
    u1=$(proc_ticks "$upid")
    m1=$(machine_ticks)
    res=$(awk '$1 == "RESULT" { print $2, $3, $4, $5, $6 }' "$2")
    [ -n "$res" ] || die "wrk gave no result for $1 (see $2)"
    same=0
    [ "$spid" = "$upid" ] && same=1
    echo "$res $s0 $s1 $u0 $u1 $m0 $m1 $wticks" | awk -v hz="$HZ" -v same=$same '{
        tick = 1e6 / hz; req = $5 > 0 ? $5 : 1
        srv = $7 - $6; up = same ? 0 : $9 - $8; tot = $13 - $11
        other = ($12 - $10) - srv - up - $14
        if (other < 0) other = 0
        printf "%s %s %s %s %s %.2f %.2f %.1f\n", $1, $2, $3, $4, $5, srv * tick / req,
            (same ? srv : up) * tick / req, (tot > 0 ? 100 * other / tot : 0) }'
}

n_cases=$(echo "$CASES" | wc -w)
say "measuring: $n_cases cases x $RUNS runs x ${DURATION}s (wrk -t$WRK_THREADS -c$CONNS, about $((n_cases * RUNS * (DURATION + 1) / 60 + 1)) min)"
: >"$B/results.txt"
repeats=0
# Rounds interleave the cases, so a slow minute on the machine hits all of
# them. A run with more than OTHER_MAX% other load is repeated, up to
# REPEAT_MAX times per bench; the discarded output stays in raw/.
r=1
while [ $r -le "$RUNS" ]; do
    for c in $CASES; do
        while :; do
            line=$(measure "$c" "$B/raw/$c.$r.txt")
            say "  run $r $c: $(echo "$line" | awk '{ printf "%.0f req/s, p50 %.1f ms, p99 %.1f ms, %d errors, server %.1f us CPU/req, upstream %.1f us CPU/req, other load %.0f%%", $1, $2 / 1000, $3 / 1000, $4, $6, $7, $8 }')"
            echo "$line" | awk -v m="$OTHER_MAX" '{ exit !($8 > m) }' && [ "$repeats" -lt "$REPEAT_MAX" ] || break
            repeats=$((repeats + 1))
            mv "$B/raw/$c.$r.txt" "$B/raw/$c.$r.discarded$repeats.txt"
            say "  run $r $c: more than $OTHER_MAX% other load; repeating it"
            sleep 2
        done
        echo "$c $line" >>"$B/results.txt"
    done
    r=$((r + 1))
done
# Peak memory of the servers, before they stop.
rss_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo -; }
RSS_kiln=$(rss_mb "$PID_kiln")
RSS_node=-
[ -n "$NODE_SKIP" ] || RSS_node=$(rss_mb "$PID_node")
RSS_upstream=$(rss_mb "$PID_upstream")
cleanup
BUSY_AFTER=$(cpu_busy)

# ---- report ------------------------------------------------------------------
# agg CASE COLUMN : median of a results.txt column over the runs of CASE
# (2 req/s, 3 p50 us, 4 p99 us, 5 errors, 7 server CPU us/req, 8 upstream
# CPU us/req); "sum" as a third argument sums instead.
agg() {
    awk -v id="$1" -v c="$2" '$1 == id { print $c }' "$B/results.txt" | sort -n |
        awk -v mode="${3:-median}" '{ a[NR] = $1; s += $1 }
            END { if (NR == 0) print "-"; else if (mode == "sum") print s;
                  else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
rps() { agg "$1" 2; }
ms() { agg "$1" "$2" | awk '{ if ($1 == "-") print "-"; else printf "%.1f", $1 / 1000 }'; }
us() { agg "$1" "$2" | awk '{ if ($1 == "-") print "-"; else printf "%.1f", $1 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
fmt_rps() { echo "$1" | awk '{ if ($1 == "-") print "-"; else printf "%.0f", $1 }'; }
verdict() { if [ "$1" = 1 ]; then echo met; else echo "**not met**"; fi; }

OUT=$B/io.md.tmp
: >"$OUT"
emit() { printf '%s\n' "$*" >>"$OUT"; }

NPROC=$(nproc)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
BOUND=$(awk -v c="$CONNS" -v d="$DELAY" 'BEGIN { printf "%.0f", c * 1000 / d }')
emit "## I/O-bound function: outbound call to a ${DELAY} ms upstream, $CONNS connections (wrk)"
emit ""
emit "Every request makes one GET to a local upstream (\`bench/io/upstream.c\`: one thread, epoll,"
emit "keep-alive, answers after exactly $DELAY ms) and answers its body, \`$EXPECT\`, checked"
emit "once per server before the load. \`wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s --timeout 10s --latency\`,"
emit "median of $RUNS runs per row (rounds interleaved, after a ${WARMUP} s warm-up per case); errors are"
emit "summed over the runs. Everything shares the machine's $NPROC CPUs ($cpu_model); CPUs ${BUSY}%"
emit "busy in the second before the run, ${BUSY_AFTER}% in the second after it. The bound set by"
emit "connections / upstream latency is $CONNS / ${DELAY} ms = $BOUND req/s."
emit ""
emit "* kiln: \`kiln serve\`, $WORKERS workers, the C SDK's \`examples/sdk/fetch.c\` (WASI/CGI, a fresh"
emit "  instance per request, \`kiln_http\` → \`kiln.http_request\`: the fiber suspends on the worker's"
emit "  curl multi handle), \`max_connections_per_ip: 0\`, access log off."
emit "* node: \`bench/io/node/server.mjs\`, Node.js $NODE_VERSION, one process: \`node:http\` + global \`fetch\`."
emit "* upstream alone: wrk straight at the upstream, the ceiling of the setup."
emit ""
emit "| server | req/s | p50 ms | p99 ms | errors | kiln / row | server CPU µs/req | upstream CPU µs/req | peak RSS MB |"
emit "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
K=$(rps kiln)
row() { # CASE LABEL RSS
    v=$(rps "$1")
    emit "| $2 | $(fmt_rps "$v") | $(ms "$1" 3) | $(ms "$1" 4) | $(agg "$1" 5 sum) | $(ratio "$K" "$v") | $(us "$1" 7) | $(us "$1" 8) | $3 |"
}
row kiln "kiln serve (C SDK fetch, $WORKERS workers)" "$RSS_kiln"
if [ -z "$NODE_SKIP" ]; then
    row node "Node.js $NODE_VERSION node:http + fetch (1 process)" "$RSS_node"
else
    emit "| Node.js node:http + fetch | not measured: $NODE_SKIP | | | | | | | |"
fi
row upstream "upstream alone (1 thread)" "$RSS_upstream"
emit ""
UPCPU=$(us upstream 7)
emit "\"server CPU µs/req\" is the server process's user + system time per request (median); for the"
emit "upstream it says how much one core could serve: about $(awk -v u="$UPCPU" 'BEGIN { if (u + 0 > 0) printf "%.0f", 1e6 / u; else print "-" }') req/s at $UPCPU µs per request."
other=$(awk '{ print $9 }' "$B/results.txt" | sort -n | awk '{ a[NR] = $1 } END {
    printf "%.0f%% median, %.0f%% max", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[NR] }')
dirty=$(awk -v m="$OTHER_MAX" '$9 > m' "$B/results.txt" | wc -l)
emit "Other load during the runs (CPU used by neither the server, the upstream nor wrk): $other"
emit "over $(wc -l <"$B/results.txt") runs; $repeats run(s) repeated because of more than $OTHER_MAX% other load."
[ "$dirty" -eq 0 ] || emit "**$dirty run(s) kept with more than $OTHER_MAX% other load: something else was running; distrust this table.**"
emit ""

emit "| target | measured | |"
emit "|---|---|---|"
emit "| kiln ≥ 10,000 req/s at $CONNS connections | $(fmt_rps "$K") req/s | $(verdict "$(awk -v k="$K" 'BEGIN { print (k != "-" && k + 0 >= 10000) }')") |"
if [ -z "$NODE_SKIP" ]; then
    x=$(ratio "$K" "$(rps node)")
    emit "| kiln ≥ 2× Node (node:http + fetch) | ${x}× | $(verdict "$(awk -v x="$x" 'BEGIN { print (x != "-" && x + 0 >= 2) }')") |"
else
    emit "| kiln ≥ 2× Node (node:http + fetch) | not measured ($NODE_SKIP) | **not met** |"
fi
emit "| upstream alone not the bottleneck (≥ 90% of $BOUND req/s) | $(fmt_rps "$(rps upstream)") req/s | $(verdict "$(awk -v u="$(rps upstream)" -v b="$BOUND" 'BEGIN { print (u != "-" && u + 0 >= 0.9 * b) }')") |"

mv "$OUT" "$BUILD/bench/io.md"
cat "$BUILD/bench/io.md"
say "saved $BUILD/bench/io.md; raw wrk output in $B/raw/, server logs in $B/*.log"
