#!/bin/sh
# bench/deploy/run.sh - the `deploy` section of Kiln's benchmark (issue 9):
# upload -> first successful response, and upload -> optimised tier serving,
# for three module sizes, each deployed to a fresh `kiln serve` with an empty
# cache (nothing compiled beforehand):
#   hello      tests/guests_http/cgi_hello.c, a small WASI-CGI command
#   textstats  bench/deploy/guests/textstats.c, a mid-size Extism plugin
#   duktape    the Duktape JavaScript engine, from Debian's `duktape` source
#              package (downloaded with apt-get source into BUILD/bench/deploy/src,
#              never committed), as a WASI-CGI command (guests/duk_cgi.c)
# Prints a markdown section (also saved as BUILD/bench/deploy.md);
# docs/internals/bench.md explains the method.
#
# Usage: sh bench/deploy/run.sh [BUILD]        (default: build)
# Environment: BENCH_DEPLOY_RUNS  deploys per module and mode, median reported (default 3)
#              BENCH_DEPLOY_WRK   seconds of wrk per tier, 0 = skip (default 3)
#              BENCH_DEPLOY_MODULES  subset of "hello textstats duktape"
# Not a test: targets are reported as met/not met, never as an exit status.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECTION=deploy # say and die (bench/lib.sh) print "bench deploy: ..."
. "$ROOT/bench/lib.sh"
cd "$ROOT"
BUILD_ARG=${1:-build}
RUNS=${BENCH_DEPLOY_RUNS:-3}
WRK_S=${BENCH_DEPLOY_WRK:-3}
MODULES=${BENCH_DEPLOY_MODULES:-hello textstats duktape}
DUK_PKG=duktape

need_tools make clang node curl awk wasm-objdump
HAVE_WRK=1
command -v wrk >/dev/null 2>&1 || HAVE_WRK=0

# ---- build -------------------------------------------------------------------
say "building kiln (make -s BUILD=$BUILD_ARG all)"
make -s --no-print-directory BUILD="$BUILD_ARG" all >&2 || die "make failed"
BUILD=$(cd "$BUILD_ARG" && pwd)
B=$BUILD/bench/deploy
mkdir -p "$B/wasm" "$B/src" "$B/obj" "$B/runs"
# Measure a snapshot, so a rebuild during the run cannot change the binary.
cp "$BUILD/kiln" "$B/kiln.tmp" && mv "$B/kiln.tmp" "$B/kiln"
KILN=$B/kiln
unset KILN_CC KILN_ADMIN KILN_TOKEN KILN_ADMIN_TOKEN
WASI_CC="clang --target=wasm32-wasi --sysroot=/usr"


# The small C guest and the mid-size Extism plugin.
if stale "$B/wasm/hello.wasm" tests/guests_http/cgi_hello.c; then
    $WASI_CC -O2 -s -o "$B/wasm/hello.wasm" tests/guests_http/cgi_hello.c || die "cannot build hello"
fi
if stale "$B/wasm/textstats.wasm" bench/deploy/guests/textstats.c tests/guests_extism/guest.h; then
    $WASI_CC -O2 -s -Wall -Werror -mexec-model=reactor -Itests/guests_extism \
        -o "$B/wasm/textstats.wasm" bench/deploy/guests/textstats.c || die "cannot build textstats"
fi

# The interpreter: Duktape's Debian source package, fetched once with a
# private apt configuration (a deb-src line in a temporary sources list, its
# own lists and cache directories), so the system's apt set-up is untouched.
# The extracted tree stays in BUILD/bench/deploy/src as the download cache.
DUK_NOTE=""
fetch_duktape() {
    tmp=$(mktemp -d /tmp/kiln-bench-apt.XXXXXX)
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    mkdir -p "$tmp/lists/partial" "$tmp/parts" "$tmp/cache/archives/partial"
    echo "deb-src http://deb.debian.org/debian $codename main" >"$tmp/sources.list"
    set -- -o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts="$tmp/parts" \
        -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache" -o APT::Sandbox::User=root
    ok=0
    if apt-get "$@" update >"$B/src/apt.log" 2>&1 &&
        (cd "$B/src" && apt-get "$@" source "$DUK_PKG") >>"$B/src/apt.log" 2>&1; then
        ok=1
    fi
    rm -rf "$tmp"
    [ $ok = 1 ]
}
DUK_DIR=$(ls -d "$B/src/$DUK_PKG"-*/src 2>/dev/null | head -1 || true)
if [ -z "$DUK_DIR" ] || [ ! -f "$DUK_DIR/duktape.c" ]; then
    say "downloading Debian's $DUK_PKG source package (apt-get source, private sources list)"
    if fetch_duktape; then
        DUK_DIR=$(ls -d "$B/src/$DUK_PKG"-*/src 2>/dev/null | head -1 || true)
    fi
fi
DUK_VERSION=$(ls "$B/src/${DUK_PKG}"_*.dsc 2>/dev/null | sed 's|.*/duktape_\(.*\)\.dsc|\1|' | head -1)
if [ -n "$DUK_DIR" ] && [ -f "$DUK_DIR/duktape.c" ]; then
    # wasi-libc (Debian 12) has no setjmp/longjmp: shim/setjmp.h turns any
    # JavaScript throw into abort() (a trap), see guests/duk_cgi.c.
    if stale "$B/obj/duktape.o" "$DUK_DIR/duktape.c" bench/deploy/shim/setjmp.h; then
        say "compiling duktape.c ($(wc -l <"$DUK_DIR/duktape.c") lines) for wasm32-wasi"
        $WASI_CC -O2 -Ibench/deploy/shim -c "$DUK_DIR/duktape.c" -o "$B/obj/duktape.o.tmp" &&
            mv "$B/obj/duktape.o.tmp" "$B/obj/duktape.o" || die "cannot compile duktape.c"
    fi
    if stale "$B/wasm/duktape.wasm" "$B/obj/duktape.o" bench/deploy/guests/duk_cgi.c; then
        $WASI_CC -O2 -s -Ibench/deploy/shim -I"$DUK_DIR" -o "$B/wasm/duktape.wasm" \
            bench/deploy/guests/duk_cgi.c "$B/obj/duktape.o" || die "cannot link duktape.wasm"
    fi
else
    # No package: the largest guest buildable without it, a generated C
    # command of 1,200 functions (~550 KB of code), clearly labelled in the report.
    DUK_NOTE="apt-get source $DUK_PKG failed (see $B/src/apt.log); the row is a generated stand-in, not an interpreter"
    say "$DUK_NOTE"
    awk 'BEGIN { print "#include <stdio.h>"
        for (f = 0; f < 1200; f++) {
            printf "__attribute__((noinline)) unsigned f%d(unsigned x) { switch (x %% 16) {\n", f
            for (c = 0; c < 16; c++) printf "case %d: x = x * %d + %d; x ^= x >> %d; break;\n", c, 2 * (f + c) + 3, f * 7 + c, 1 + (f + c) % 13
            print "} return x + 1; }" }
        print "int main(void) { unsigned x = 1;"
        for (f = 0; f < 1200; f++) printf "x = f%d(x);\n", f
        print "printf(\"Content-Type: text/plain\\n\\n%u\\n\", x); return 0; }" }' >"$B/obj/standin.c"
    $WASI_CC -O1 -s -o "$B/wasm/duktape.wasm" "$B/obj/standin.c" || die "cannot build the stand-in"
fi

# ---- measure -----------------------------------------------------------------
code_bytes() { # the size of the code section of a .wasm
    hex=$(wasm-objdump -h "$1" | sed -n 's/^ *Code .*(size=\(0x[0-9a-fA-F]*\)).*/\1/p')
    printf '%d' "${hex:-0}"
}
kb() { awk -v b="$1" 'BEGIN { printf "%.0f KB", b / 1000 }'; }

SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server HOME DIR LOG [OPTIONS...]: kiln serve on free ports; sets PORT
# and ADMIN (URL) from its start-up lines, once it listens.
start_server() {
    home=$1 dir=$2 log=$3
    shift 3
    KILN_HOME=$home "$KILN" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --quiet \
        --threads 2 "$@" "$dir" >"$log" 2>&1 &
    SERVER_PID=$!
    i=0
    while ! grep -qs "listening on http://127.0.0.1:" "$log"; do
        kill -0 "$SERVER_PID" 2>/dev/null || die "kiln serve exited at start-up: $(tail -5 "$log")"
        i=$((i + 1))
        [ $i -lt 3000 ] || die "kiln serve did not listen within 300 s (see $log)"
        sleep 0.1
    done
    PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log" | head -1)
    ADMIN=$(sed -n 's|.*admin API on \(http://127\.0\.0\.1:[0-9][0-9]*\).*|\1|p' "$log" | head -1)
}
stop_server() { cleanup; }

route_of() { # MODULE PORT: the URL that answers 200 when the function serves
    case $1 in
    textstats) echo "http://127.0.0.1:$2/textstats/report" ;;
    *) echo "http://127.0.0.1:$2/$1" ;;
    esac
}
BODY="the quick brown fox jumps over the lazy dog and the dog sleeps"

RESULTS=$B/results.txt
: >"$RESULTS"
# one_run MODULE MODE N: a fresh KILN_HOME and served directory, one timed
# deploy; appends "MODULE MODE first_ms opt_ms statuses" to RESULTS.
one_run() {
    m=$1 mode=$2 n=$3
    r=$B/runs/$m-$mode-$n
    rm -rf "$r"
    mkdir -p "$r/home" "$r/dir"
    start_server "$r/home" "$r/dir" "$r/serve.log"
    opt=""
    [ "$mode" = dir ] && opt="--no-optimized"
    if [ "$m" = textstats ]; then
        line=$(node --no-warnings bench/deploy/measure.mjs --mode "$mode" --name "$m" \
            --module "$B/wasm/$m.wasm" --route "$(route_of "$m" "$PORT")" --body "$BODY" \
            --admin "$ADMIN" --token "$(cat "$r/home/admin.token")" --kiln "$KILN" --dir "$r/dir" $opt) ||
            die "$m ($mode) failed; see $r/serve.log"
    else
        line=$(node --no-warnings bench/deploy/measure.mjs --mode "$mode" --name "$m" \
            --module "$B/wasm/$m.wasm" --route "$(route_of "$m" "$PORT")" \
            --admin "$ADMIN" --token "$(cat "$r/home/admin.token")" --kiln "$KILN" --dir "$r/dir" $opt) ||
            die "$m ($mode) failed; see $r/serve.log"
    fi
    stop_server
    say "  $m $mode #$n: first 200 / optimised / statuses: $line"
    echo "$m $mode $line" >>"$RESULTS"
}

# wrk_rps MODULE PORT: req/s of one wrk run (RPS_wrk stays "-" without wrk).
wrk_rps() {
    [ "$HAVE_WRK" = 1 ] && [ "$WRK_S" != 0 ] || {
        echo "-"
        return
    }
    url=$(route_of "$1" "$2")
    script=""
    if [ "$1" = textstats ]; then
        printf 'wrk.method = "POST"\nwrk.body = "%s"\n' "$BODY" >"$B/post.lua"
        script="-s $B/post.lua"
    fi
    # shellcheck disable=SC2086 # script is empty or two words
    wrk -t2 -c16 -d"${WRK_S}s" $script "$url" 2>/dev/null |
        awk '/^Requests\/sec:/ { printf "%.0f", $2 } /Non-2xx/ { bad = 1 } END { if (bad) printf " (non-2xx!)" }'
}

for m in $MODULES; do
    [ -f "$B/wasm/$m.wasm" ] || die "unknown module '$m' (hello, textstats, duktape)"
    say "$m: $RUNS deploys by \`kiln deploy\` (to the optimised tier), $RUNS by directory copy (to the first 200)"
    n=1
    while [ $n -le "$RUNS" ]; do
        one_run "$m" cli $n
        one_run "$m" dir $n
        n=$((n + 1))
    done
    # Throughput per tier, from the artifacts the last deploy left in its
    # cache: --no-tiers with tcc -O0 (the fast tier) and with the default
    # compiler at -O2 (the optimised tier).
    r=$B/runs/$m-cli-$RUNS
    mkdir -p "$r/wrkdir"
    cp "$B/wasm/$m.wasm" "$r/wrkdir/$m.wasm"
    for tier in fast optimized; do
        topt="-O2"
        [ $tier = fast ] && topt="-O0 --cc tcc"
        # shellcheck disable=SC2086 # topt is a word list
        start_server "$r/home" "$r/wrkdir" "$r/wrk-$tier.log" --no-tiers $topt
        code=$(curl -s -o /dev/null -w '%{http_code}' $( [ "$m" = textstats ] && echo "-d x") "$(route_of "$m" "$PORT")")
        [ "$code" = 200 ] || die "$m ($tier tier) answered $code before wrk; see $r/wrk-$tier.log"
        eval "RPS_${m}_$tier=\$(wrk_rps \"\$m\" \"\$PORT\")"
        stop_server
    done
done

# ---- report ------------------------------------------------------------------
# col MODULE MODE COLUMN: the values of one results column, sorted.
col() { awk -v m="$1" -v mode="$2" -v c="$3" '$1 == m && $2 == mode && $c != "-" { print $c }' "$RESULTS" | sort -n; }
median() { awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2];
    else printf "%.0f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
range() { awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s–%s", lo, hi }'; }
s_of() { echo "$1" | awk '{ if ($1 == "-") print "-"; else printf "%.2f s", $1 / 1000 }'; }
cell() { # MODULE MODE COLUMN: "median s (min–max ms)"
    med=$(col "$1" "$2" "$3" | median)
    [ "$med" = "-" ] && {
        echo "-"
        return
    }
    echo "**$(s_of "$med")** ($(col "$1" "$2" "$3" | range) ms)"
}

OUT=$B/deploy.md.tmp
: >"$OUT"
cpu_model=$(cpu_model)
emit "## Deploy: upload → first 200 and → optimised tier (fresh server, empty cache)"
emit ""
emit "Each deploy starts its own \`kiln serve\` (2 workers) with an empty \`KILN_HOME\`, so nothing is"
emit "compiled beforehand. The clock starts before the upload; \`bench/deploy/measure.mjs\` then polls the"
emit "route every 5 ms until the first 200, then the admin API every 20 ms until the tier is"
emit "\`optimized\`. *kiln deploy*: the CLI uploads through the admin API (\`PUT\`, no wait). *dir copy*:"
emit "the module is copied and renamed into the served directory (the watcher debounces 300 ms)."
emit "Median of $RUNS deploys each, range in brackets. req/s: \`wrk -t2 -c16 -d${WRK_S}s\` on"
emit "\`--no-tiers\` servers reusing the deploy's artifacts (tcc -O0 = the fast tier, cc -O2 = the"
emit "optimised tier). $(nproc) CPUs ($cpu_model), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
emit ""
emit "| module | wasm | code | upload → first 200 (kiln deploy) | upload → first 200 (dir copy) | upload → optimised | fast-tier req/s | optimised req/s | target (first 200) |"
emit "|---|---:|---:|---:|---:|---:|---:|---:|---|"
for m in $MODULES; do
    w=$B/wasm/$m.wasm
    code=$(code_bytes "$w")
    case $m in
    hello) label="hello (C, WASI-CGI, \`tests/guests_http/cgi_hello.c\`)" ;;
    textstats) label="textstats (C Extism plugin, \`bench/deploy/guests/textstats.c\`)" ;;
    duktape) label="Duktape ${DUK_VERSION:-?} (JS engine, Debian source, WASI-CGI)" ;;
    esac
    [ "$m" = duktape ] && [ -n "$DUK_NOTE" ] && label="generated stand-in (NOT an interpreter: $DUK_NOTE)"
    limit=2000
    [ "$code" -le 100000 ] && limit=500
    med=$(col "$m" cli 3 | median)
    verdict=$(awk -v v="$med" -v l="$limit" 'BEGIN { if (v == "-") print "-";
        else printf "≤ %.1f s: %s", l / 1000, (v + 0 <= l ? "met" : "**not met**") }')
    eval "fast=\${RPS_${m}_fast:--}"
    eval "optr=\${RPS_${m}_optimized:--}"
    emit "| $label | $(kb "$(wc -c <"$w")") | $(kb "$code") | $(cell "$m" cli 3) | $(cell "$m" dir 3) | $(cell "$m" cli 4) | $fast | $optr | $verdict |"
done
emit ""
emit "Answers seen until the first 200, each with when it was first seen (ms after the upload started):"
emit ""
awk '{ printf "* %s %s: %s\n", $1, $2, $5 }' "$RESULTS" >>"$OUT"
emit ""
emit "Targets (issue 9): first response ≤ 0.5 s for modules with up to 100 KB of code, ≤ 2 s for the"
emit "interpreter-sized guest. Raw lines: \`$RESULTS\`; server logs: \`$B/runs/\`."
mv "$OUT" "$B/deploy.md"
cat "$B/deploy.md"
