#!/bin/sh
# bench/snapshot_http/run.sh - the `snapshot_http` section of Kiln's benchmark
# (issue 12 "Bench"): snapshot images measured where users see them.
#   1. HTTP: wrk against one `kiln serve` holding a trivial C guest (the http
#      section's Extism greet plugin) and an interpreter-sized one (Duktape
#      from Debian's source package as an Extism plugin, duk_extism.c), each
#      in three configurations: a fresh instance per request (`snapshot:
#      false`), fresh from a snapshot image (`snapshot: true`), one reused
#      instance (`reuse: true`); requests/s, p50/p99, and the ratios.
#   2. Memory per function: the server's RSS with 1, 10 and 50 copies of the
#      Duktape plugin deployed, fresh, snapshot and reuse; image bytes on disk.
#   3. Start-up (hyperfine): `kiln run` of a cached trivial module next to
#      `sh -c true` and `node -e 0`, and of the Duktape command before and
#      after Wizer (npm @bytecodealliance/wizer, pinned in package-lock.json)
#      pre-initialised it.
# Prints a markdown section (also saved as BUILD/bench/snapshot_http.md);
# docs/internals/bench.md "snapshot_http" explains the method. Optional peers
# (wrk, hyperfine, node/npm/Wizer, Duktape's source package) that are missing
# turn their part into a "skipped: why" line, never a failure.
#
# Usage: sh bench/snapshot_http/run.sh [BUILD]        (default: build)
# Environment: BENCH_SNAP_RUNS      wrk runs per case, median reported (default 3)
#              BENCH_SNAP_DURATION  seconds per wrk run (default 5)
#              BENCH_SNAP_CONNS     wrk connections (default 16)
#              BENCH_SNAP_COPIES    function counts of the memory part (default "1 10 50")
# Not a test: targets are reported as met/not met, never as an exit status.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECTION=snapshot_http # say and die (bench/lib.sh) print "bench snapshot_http: ..."
. "$ROOT/bench/lib.sh"
cd "$ROOT"
BUILD_ARG=${1:-build}
RUNS=${BENCH_SNAP_RUNS:-3}
DURATION=${BENCH_SNAP_DURATION:-5}
CONNS=${BENCH_SNAP_CONNS:-16}
COPIES=${BENCH_SNAP_COPIES:-1 10 50}
WRK_THREADS=2
# The machine is shared: a run with more other load is repeated (bench/lib.sh run_rounds).
OTHER_MAX=25
REPEAT_MAX=4
HERE=bench/snapshot_http
WASI_CC="clang --target=wasm32-wasi --sysroot=/usr"

need_tools make clang curl awk sort

# ---- build -------------------------------------------------------------------
make_kiln "$BUILD_ARG/kiln"
section_dirs snapshot_http
mkdir -p "$B/wasm"
OUT=$B/snapshot_http.md.tmp
: >"$OUT"
servers_init

# The interpreter: the same Duktape object the snapshot section links
# (BUILD/bench/deploy/obj/duktape.o, compiled from Debian's source package by
# the deploy section's build step; BENCH_DEPLOY_RUNS=0 builds without measuring).
DUK_O=$BUILD/bench/deploy/obj/duktape.o
duk_src() { ls -d "$BUILD"/bench/deploy/src/duktape-*/src 2>/dev/null | head -1 || true; }
if [ ! -f "$DUK_O" ] || [ -z "$(duk_src)" ]; then
    say "building Duktape from Debian's source package (bench/deploy/run.sh, build step only)"
    BENCH_DEPLOY_MODULES=duktape BENCH_DEPLOY_RUNS=0 BENCH_DEPLOY_WRK=0 \
        sh bench/deploy/run.sh "$BUILD_ARG" >/dev/null 2>"$B/deploy-build.log" || true
fi
DUK_SRC=$(duk_src)
DUK_SKIP=""
if [ ! -f "$DUK_O" ] || [ -z "$DUK_SRC" ] || grep -q "stand-in" "$B/deploy-build.log" 2>/dev/null; then
    DUK_SKIP="Duktape's source package could not be fetched or built (see $B/deploy-build.log)"
else
    DUK_VERSION=$(ls "$BUILD"/bench/deploy/src/duktape_*.dsc 2>/dev/null | sed 's|.*/duktape_\(.*\)\.dsc|\1|' | head -1)
    if stale "$B/wasm/duk_extism.wasm" "$DUK_O" $HERE/duk_extism.c bench/guests/duk_snap.c; then
        $WASI_CC -O2 -mexec-model=reactor -Ibench/deploy/shim -I"$DUK_SRC" -Itests/guests_extism \
            -o "$B/wasm/duk_extism.wasm" $HERE/duk_extism.c "$DUK_O" || die "cannot link duk_extism.wasm"
    fi
    if stale "$B/wasm/duk_cmd.wasm" "$DUK_O" $HERE/duk_cmd.c bench/guests/duk_snap.c; then
        $WASI_CC -O2 -Ibench/deploy/shim -I"$DUK_SRC" \
            -o "$B/wasm/duk_cmd.wasm" $HERE/duk_cmd.c "$DUK_O" || die "cannot link duk_cmd.wasm"
    fi
fi
[ -z "$DUK_SKIP" ] || say "skipped (interpreter rows): $DUK_SKIP"
if stale "$B/wasm/greet.wasm" examples/serve/greet_extism.c; then
    $WASI_CC -O2 -s -mexec-model=reactor -o "$B/wasm/greet.wasm" examples/serve/greet_extism.c ||
        die "cannot build greet.wasm"
fi
if stale "$B/wasm/hello.wasm" bench/guests/hello.c; then
    $WASI_CC -O2 -o "$B/wasm/hello.wasm" bench/guests/hello.c || die "cannot build hello.wasm"
fi

cpu_model=$(cpu_model)
NPROC=$(nproc)
emit "## Snapshot images over HTTP, memory per function, start-up against Wizer"
emit ""
emit "\`bench/snapshot_http/run.sh\`; $NPROC CPUs ($cpu_model), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
emit "Guests: trivial = the http section's Extism greet plugin (\`examples/serve/greet_extism.c\`);"
if [ -z "$DUK_SKIP" ]; then
    emit "interpreter = Duktape ${DUK_VERSION:-?} (Debian source package) as an Extism plugin"
    emit "(\`bench/snapshot_http/duk_extism.c\` around \`bench/guests/duk_snap.c\`: init builds the JS heap and a"
    emit "2,000-entry library, each request calls into it; $(wc -c <"$B/wasm/duk_extism.wasm" | awk '{ printf "%.0f KB", $1 / 1000 }'))."
else
    emit "interpreter: skipped: $DUK_SKIP."
fi
emit ""

# ---- 1. HTTP -----------------------------------------------------------------
# fn_yaml NAME MODULE EXPORT MODE : one function entry; MODE fresh|snapshot|reuse.
# `snapshot:` is always explicit (its default may change).
fn_yaml() {
    case $4 in
    fresh) r=false s=false ;;
    snapshot) r=false s=true ;;
    reuse) r=true s=false ;;
    esac
    cat <<EOF
  $1:
    module: $2
    abi: extism
    export: $3
    reuse: $r
    snapshot: $s
    routes:
      - {path: /$1, methods: [POST]}
EOF
}
# serve_yaml THREADS : the server part of a configuration.
serve_yaml() {
    cat <<EOF
# Generated by bench/snapshot_http/run.sh.
server:
  listen: 127.0.0.1:0
  threads: $1
  quiet: true
  max_connections_per_ip: 0
  drain_timeout: 2s
functions:
EOF
}

HTTP_SKIP=""
command -v wrk >/dev/null 2>&1 || HTTP_SKIP="wrk not found (scripts/install-deps.sh installs it)"
GUESTS="greet"
[ -n "$DUK_SKIP" ] || GUESTS="greet duk"
MODES="fresh snapshot reuse"
if [ -z "$HTTP_SKIP" ]; then
    {
        serve_yaml "$NPROC"
        for g in $GUESTS; do
            for m in $MODES; do
                case $g in
                greet) fn_yaml "${g}_$m" "$B/wasm/greet.wasm" greet "$m" ;;
                duk) fn_yaml "${g}_$m" "$B/wasm/duk_extism.wasm" run "$m" ;;
                esac
            done
        done
    } >"$B/http.yaml"
    say "starting kiln serve ($NPROC worker threads; compiling the guests on first use)"
    start kiln "$KILN" serve --admin-listen off --config "$B/http.yaml"
    # A second server, the same functions, restores without write tracking
    # (KILN_NO_WRITE_TRACKING: every restore copies the whole image, as
    # before snapshot.md's dirty-page restore), for its `snapshot` rows.
    start kilnnt env KILN_NO_WRITE_TRACKING=1 "$KILN" serve --admin-listen off --config "$B/http.yaml"
    PORT_NT=$PORT
    PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$B/kiln.log")
    CASES=""
    for g in $GUESTS; do
        want=""
        for m in $MODES; do
            c=${g}_$m
            eval "URL_$c=http://127.0.0.1:$PORT/$c"
            eval "PID_$c=\$PID_kiln"
            CASES="$CASES $c"
            # Every configuration must answer like the fresh instance, or its numbers are void.
            got=$(curl -s --max-time 30 -d Kiln "http://127.0.0.1:$PORT/$c" || true)
            [ -n "$want" ] || want=$got
            [ -n "$got" ] && [ "$got" = "$want" ] || die "$c answered '$got', not '$want' (see $B/kiln.log)"
        done
        eval "ANSWER_$g=\$want"
        c=${g}_snapnt
        eval "URL_$c=http://127.0.0.1:$PORT_NT/${g}_snapshot"
        eval "PID_$c=\$PID_kilnnt"
        CASES="$CASES $c"
        got=$(curl -s --max-time 30 -d Kiln "http://127.0.0.1:$PORT_NT/${g}_snapshot" || true)
        [ "$got" = "$want" ] || die "${g}_snapshot without write tracking answered '$got', not '$want' (see $B/kilnnt.log)"
    done
    PID_upstream=$PID_kiln
    WRK_OPTS="-t$WRK_THREADS -c$CONNS --timeout 10s -s $ROOT/bench/http/post.lua"
    busy_before
    for c in $CASES; do # warm-up (pools, images' slots), not recorded
        eval "url=\$URL_$c"
        # shellcheck disable=SC2086 # WRK_OPTS is a word list
        wrk $WRK_OPTS -d2s "$url" >/dev/null 2>&1 || true
    done
    measure() { wrk_measure "$1" "$2"; }
    say "measuring: $(echo $CASES | wc -w) cases x $RUNS runs x ${DURATION}s (wrk -t$WRK_THREADS -c$CONNS)"
    run_rounds '{ printf "%.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors, server %.1f us CPU/req, other load %.0f%%", $1, $2 / 1000, $3 / 1000, $4, $6, $8 }'
    RSS_HTTP=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$PID_kiln/status")
    cleanup
    cp "$B/results.txt" "$B/http-results.txt"

    emit "### Requests over HTTP: fresh, snapshot, reuse"
    emit ""
    emit "One \`kiln serve\` ($NPROC worker threads, access log off) with all six functions, and a second one"
    emit "with \`KILN_NO_WRITE_TRACKING=1\` for the last row of each guest (its snapshot function; a restore"
    emit "then copies the whole image instead of the pages the last request wrote);"
    emit "\`wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s --latency -s bench/http/post.lua\` per function, median of $RUNS"
    emit "runs (rounds interleave the functions, after a 2 s warm-up each). Every configuration"
    emit "answered the same as the fresh one before the runs (greet: \`$ANSWER_greet\`$([ -n "$DUK_SKIP" ] || echo ", Duktape: \`$ANSWER_duk\`"))."
    emit ""
    emit "| guest | configuration | req/s | p50 ms | p99 ms | errors | server CPU µs/req |"
    emit "|---|---|---:|---:|---:|---:|---:|"
    for g in $GUESTS; do
        for m in $MODES snapnt; do
            c=${g}_$m
            label=$m
            case $m in
            fresh) label="fresh (\`snapshot: false\`)" ;;
            snapshot) label="fresh from the image (\`snapshot: true\`)" ;;
            reuse) label="one instance per thread (\`reuse: true\`)" ;;
            snapnt) label="\`snapshot: true\`, write tracking off (\`KILN_NO_WRITE_TRACKING=1\`: whole-image copy)" ;;
            esac
            gl="trivial (greet)"
            [ "$g" = duk ] && gl="interpreter (Duktape)"
            emit "| $gl | $label | $(fmt_rps "$(rps "$c")") | $(ms "$c" 3) | $(ms "$c" 4) | $(agg "$c" 5 sum) | $(us "$c" 7) |"
        done
    done
    emit ""
    emit "Other load during the runs (CPU used by neither kiln nor wrk): $(other_load 9) over"
    emit "$(wc -l <"$B/results.txt") runs; $repeats run(s) repeated for more than $OTHER_MAX%; server peak RSS $RSS_HTTP MB."
    emit ""
    # req/s on this shared machine moves with other load; server CPU per
    # request moves much less, so the trivial guest's verdict shows both.
    emit "| guest | snapshot ÷ reuse req/s | snapshot ÷ fresh req/s | tracking off: ÷ reuse | p50 fresh → snapshot | server CPU µs/req fresh → snapshot → reuse | target (issue 12) |"
    emit "|---|---:|---:|---:|---|---|---|"
    for g in $GUESTS; do
        s=$(rps "${g}_snapshot")
        f=$(rps "${g}_fresh")
        u=$(rps "${g}_reuse")
        su=$(ratio "$s" "$u")
        sf=$(ratio "$s" "$f")
        if [ "$g" = duk ]; then
            v=$(awk -v r="$su" 'BEGIN { print (r != "-" && r >= 0.5) ? "snapshot ≥ 50 % of reuse: met" : "snapshot ≥ 50 % of reuse: **not met**" }')
            gl="interpreter (Duktape)"
        else
            # "never slower": within 5 % (the runs' own spread on this machine).
            v=$(awk -v r="$sf" -v cs="$(us "${g}_snapshot" 7)" -v cf="$(us "${g}_fresh" 7)" 'BEGIN {
                printf "never slower than fresh: req/s %s, server CPU/req %s",
                    (r != "-" && r >= 0.95) ? "met" : "**not met**", (cs <= cf * 1.05) ? "met" : "**not met**" }')
            gl="trivial (greet)"
        fi
        emit "| $gl | ${su}× | ${sf}× | $(ratio "$(rps "${g}_snapnt")" "$u")× | $(ms "${g}_fresh" 3) → $(ms "${g}_snapshot" 3) ms | $(us "${g}_fresh" 7) → $(us "${g}_snapshot" 7) → $(us "${g}_reuse" 7) | $v |"
    done
    emit ""
else
    emit "### Requests over HTTP: skipped: $HTTP_SKIP"
    emit ""
fi

# ---- 2. memory per function --------------------------------------------------
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
if [ -z "$DUK_SKIP" ]; then
    : >"$B/mem.txt"
    for m in $MODES; do
        for n in $COPIES; do
            {
                serve_yaml 2
                i=1
                while [ $i -le "$n" ]; do
                    fn_yaml "d$i" "$B/wasm/duk_extism.wasm" run "$m"
                    i=$((i + 1))
                done
            } >"$B/mem-$m-$n.yaml"
            say "memory: $n x Duktape, $m"
            start "mem" "$KILN" serve --admin-listen off --config "$B/mem-$m-$n.yaml"
            idle=$(rss_kb "$PID_mem")
            # Four requests per function (both worker threads, usually): the
            # pools and the per-thread instances of `reuse` are in use.
            i=1
            while [ $i -le "$n" ]; do
                cpids=""
                for _ in 1 2 3 4; do
                    curl -s --max-time 30 -d 7 "http://127.0.0.1:$PORT/d$i" >/dev/null &
                    cpids="$cpids $!"
                done
                for p in $cpids; do
                    wait "$p" || die "a request to d$i failed (see $B/mem.log)"
                done
                i=$((i + 1))
            done
            busy=$(rss_kb "$PID_mem")
            echo "$m $n $idle $busy" >>"$B/mem.txt"
            cleanup
            servers_init
        done
    done
    # Images are named after the module's SHA-256 (docs/internals/snapshot.md "Images on disk").
    sha=$(sha256sum "$B/wasm/duk_extism.wasm" | awk '{ print $1 }')
    IMG_BYTES=$(find "$KILN_HOME/cache/images" -name "$sha-*.img" -exec ls -l {} + 2>/dev/null |
        awk '{ s += $5; n++ } END { if (n) printf "%d file(s), %.0f KiB", n, s / 1024; else print "none found" }')
    first=$(echo "$COPIES" | awk '{ print $1 }')
    last=$(echo "$COPIES" | awk '{ print $NF }')
    emit "### Memory per function"
    emit ""
    emit "\`kiln serve\` (2 worker threads) with N copies of the Duktape plugin (one module, N"
    emit "functions, N routes). RSS (\`VmRSS\`) once every function was at its final tier (idle), and"
    emit "after four parallel requests to each function (served); KiB per function ="
    emit "(RSS at $last − RSS at $first) ÷ ($last − $first). Snapshot image files on disk: $IMG_BYTES"
    emit "(one per module and init-affecting configuration, shared by every copy)."
    emit ""
    emit "| configuration | $(for n in $COPIES; do printf 'N=%s idle / served MiB | ' "$n"; done)KiB per function, idle | KiB per function, served |"
    emit "|---|$(for n in $COPIES; do printf -- '---:|'; done)---:|---:|"
    for m in $MODES; do
        cells=$(awk -v m="$m" '$1 == m { printf "%.1f / %.1f | ", $3 / 1024, $4 / 1024 }' "$B/mem.txt")
        per=$(awk -v m="$m" -v a="$first" -v z="$last" '$1 == m && $2 == a { i0 = $3; s0 = $4 }
            $1 == m && $2 == z { i1 = $3; s1 = $4 }
            END { if (z > a) printf "%.0f | %.0f", (i1 - i0) / (z - a), (s1 - s0) / (z - a); else printf "- | -" }' "$B/mem.txt")
        emit "| $m | $cells$per |"
    done
    emit ""
    img=$(awk -v a="$first" -v z="$last" '$2 == a { s0[$1] = $4 } $2 == z { s1[$1] = $4 }
        END { if (z > a) printf "%.0f", ((s1["snapshot"] - s0["snapshot"]) - (s1["fresh"] - s0["fresh"])) / (z - a); else print "-" }' "$B/mem.txt")
    emit "What an image costs in memory (snapshot − fresh, served): $img KiB per function; every function"
    emit "holds its own copy of the image, also when several functions serve the same module and configuration."
    emit ""
else
    emit "### Memory per function: skipped: $DUK_SKIP"
    emit ""
fi

# ---- 3. start-up -------------------------------------------------------------
WIZER_SKIP=""
WIZER_VERSION=""
if [ -n "$DUK_SKIP" ]; then
    WIZER_SKIP=$DUK_SKIP
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    WIZER_SKIP="node or npm not found"
else
    want=$(awk -F'"' '/"node_modules\/@bytecodealliance\/wizer"/ { f = 1 } f && /"version"/ { print $4; exit }' \
        "$HERE/package-lock.json")
    have=$(awk -F'"' '/"version"/ { print $4; exit }' \
        "$HERE/node_modules/@bytecodealliance/wizer/package.json" 2>/dev/null || true)
    if [ "$have" != "$want" ]; then
        say "installing @bytecodealliance/wizer $want (npm ci in $HERE)"
        (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2) || WIZER_SKIP="npm ci failed in $HERE"
    fi
    if [ -z "$WIZER_SKIP" ]; then
        if ! "$HERE/node_modules/.bin/wizer" --version >/dev/null 2>&1; then
            WIZER_SKIP="@bytecodealliance/wizer $want installed, but its binary does not run (no prebuilt package for this platform?)"
        elif stale "$B/wasm/duk_cmd.wizer.wasm" "$B/wasm/duk_cmd.wasm" &&
            ! "$HERE/node_modules/.bin/wizer" --allow-wasi -o "$B/wasm/duk_cmd.wizer.wasm" \
                "$B/wasm/duk_cmd.wasm" >"$B/wizer.log" 2>&1; then
            WIZER_SKIP="wizer failed on duk_cmd.wasm (see $B/wizer.log)"
        fi
        WIZER_VERSION=$want
    fi
fi
[ -z "$WIZER_SKIP" ] || say "skipped (Wizer row): $WIZER_SKIP"

if ! command -v hyperfine >/dev/null 2>&1; then
    emit "### Start-up: skipped: hyperfine not found (scripts/install-deps.sh installs it)"
    emit ""
else
    set -- -n "kiln run hello.wasm" "$KILN run $B/wasm/hello.wasm" -n "sh -c true" "sh -c true"
    command -v node >/dev/null 2>&1 && set -- "$@" -n "node -e 0" "node -e 0"
    "$KILN" compile "$B/wasm/hello.wasm" >/dev/null || die "kiln compile hello.wasm failed"
    if [ -z "$DUK_SKIP" ]; then
        say "compiling duk_cmd.wasm (-O2)"
        "$KILN" compile "$B/wasm/duk_cmd.wasm" >/dev/null || die "kiln compile duk_cmd.wasm failed"
        set -- "$@" -n "kiln run duk_cmd.wasm" "$KILN run $B/wasm/duk_cmd.wasm"
        A_plain=$("$KILN" run "$B/wasm/duk_cmd.wasm")
    fi
    if [ -z "$WIZER_SKIP" ]; then
        say "compiling duk_cmd.wizer.wasm (-O2)"
        "$KILN" compile "$B/wasm/duk_cmd.wizer.wasm" >/dev/null || die "kiln compile duk_cmd.wizer.wasm failed"
        A_wiz=$("$KILN" run "$B/wasm/duk_cmd.wizer.wasm")
        [ "$A_wiz" = "$A_plain" ] || die "the Wizer-initialised module answered '$A_wiz', not '$A_plain'"
        set -- "$@" -n "kiln run duk_cmd.wizer.wasm" "$KILN run $B/wasm/duk_cmd.wizer.wasm"
    fi
    say "start-up: hyperfine"
    hyperfine -N --style none --warmup 5 --runs "${BENCH_SNAP_STARTUP_RUNS:-60}" \
        --export-csv "$B/startup.csv" "$@" >/dev/null 2>&1 || die "hyperfine failed"
    med() { awk -F, -v n="$1" 'NR > 1 && $1 == n { printf "%.2f", $4 * 1000 }' "$B/startup.csv"; }
    emit "### Start-up (hyperfine -N, ${BENCH_SNAP_STARTUP_RUNS:-60} runs after 5 warm-ups, median ms)"
    emit ""
    emit "Artifacts cached (\`kiln compile\` first). \`duk_cmd.wasm\` (\`bench/snapshot_http/duk_cmd.c\`) is the Duktape"
    emit "guest as a WASI command: init (JS heap + library) then one answer. Its Wizer-initialised"
    emit "copy (\`wizer --allow-wasi\`, @bytecodealliance/wizer ${WIZER_VERSION:-not installed}) starts from the initialised heap."
    emit "\`kiln run\` has no snapshot option: Kiln's own images serve \`kiln serve\` functions only."
    emit ""
    emit "| command | median ms | vs \`sh -c true\` | |"
    emit "|---|---:|---:|---|"
    base=$(med "sh -c true")
    awk -F, 'NR > 1 { print $1 }' "$B/startup.csv" | while read -r name; do
        m=$(med "$name")
        note=""
        case $name in
        "kiln run hello.wasm") note=$(awk -v m="$m" 'BEGIN { print (m <= 3) ? "target ≤ 3 ms: met" : "target ≤ 3 ms: **not met**" }') ;;
        "kiln run duk_cmd.wizer.wasm") note="$(ratio "$(med "kiln run duk_cmd.wasm")" "$m")× faster than without Wizer" ;;
        esac
        emit "| \`$name\` | $m | $(ratio "$m" "$base")× | $note |"
    done
    [ -z "$WIZER_SKIP" ] || emit "| \`kiln run duk_cmd.wizer.wasm\` | skipped: $WIZER_SKIP | | |"
    emit ""
fi

mv "$OUT" "$BUILD/bench/snapshot_http.md"
cat "$BUILD/bench/snapshot_http.md"
say "saved $BUILD/bench/snapshot_http.md; raw wrk output in $B/raw/, server logs in $B/*.log"
