#!/bin/sh
# tests/spec/run.sh - run the official WebAssembly spec testsuite through
# Kiln's real AOT path (see docs/internals/spec-tests.md).
#
# For every file in $KILN_SPEC_SUITE/WASM2C-RUNS.txt: wast2json it into
# $KILN_BUILD/spec/<name>/ (skipped when up to date), then run
# $KILN_BUILD/tests/tools/spec_runner on the JSON, two files at a time.
# Prints one line per file, the failures, and last the summed
#   N passed, N failed
# (assertions). Exits non-zero on any failure.
#
# Usage: sh tests/spec/run.sh [NAME...]   (NAME as in WASM2C-RUNS.txt; default all)
# Environment:
#   KILN_BUILD           build directory (default: build)
#   KILN_HOME            artifact cache root (default: $KILN_BUILD/test-home)
#   KILN_CC              compiler for artifacts (default: clang if installed, else cc);
#                        KILN_CC=tcc runs the suite through the fast tier (aot.md "Tiers")
#   KILN_SPEC_OPT        0..2 optimisation level of artifacts (default: 0)
#   KILN_SPEC_JOBS       files run in parallel (default: 2)
#   KILN_SPEC_SUITE      testsuite folder (default: /work/shared/wasm-testsuite)
#   KILN_SPEC_FILE_TIMEOUT  seconds per file before it is killed (default: 900)
#   KILN_SPEC_OUT        where JSON and logs go (default: $KILN_BUILD/spec, or
#                        $KILN_BUILD/spec-tcc when KILN_CC is tcc, so the two runs
#                        keep their own logs)
#   KILN_SPEC_TCC        with KILN_CC unset, the suite runs twice: through the default
#                        compiler, then through tcc (the fast tier, about 30 s) when it is
#                        installed, and the last line sums both; 0 skips the tcc run
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SELF="$ROOT/tests/spec/run.sh"
KILN_BUILD=${KILN_BUILD:-$ROOT/build}
KILN_BUILD=$(cd "$KILN_BUILD" && pwd) || exit 2

# Both tiers: each run prints its own summary; the last line is their sum.
if [ -z "$KILN_CC" ] && [ "$1" != "--one" ] && [ "${KILN_SPEC_TCC:-1}" != 0 ] &&
    command -v tcc >/dev/null 2>&1; then
    export KILN_BUILD
    sum=0
    fails=0
    for cc in "" tcc; do
        log=$(mktemp "${TMPDIR:-/tmp}/kiln-spec.XXXXXX")
        KILN_SPEC_TCC=0 KILN_CC=$cc sh "$SELF" "$@" | tee "$log"
        last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
        rm -f "$log"
        [ -z "$last" ] && last="0 passed, 1 failed"
        f=${last#*passed, }
        sum=$((sum + ${last%% passed*}))
        fails=$((fails + ${f%% failed}))
    done
    echo "spec: both tiers (default compiler, then tcc)"
    echo "$sum passed, $fails failed"
    [ "$fails" -eq 0 ]
    exit
fi
KILN_HOME=${KILN_HOME:-$KILN_BUILD/test-home}
# clang -O0 compiles generated C about 3x faster than gcc -O0; fall back to cc.
if [ -z "$KILN_CC" ]; then
    if command -v clang >/dev/null 2>&1; then KILN_CC=clang; else KILN_CC=cc; fi
fi
KILN_SPEC_OPT=${KILN_SPEC_OPT:-0}
KILN_SPEC_JOBS=${KILN_SPEC_JOBS:-2}
# The testsuite ships beside the repository in ../shared (see the brief);
# fall back to the workplace's copy.
if [ -z "$KILN_SPEC_SUITE" ]; then
    for d in "$ROOT/../shared/wasm-testsuite" /work/shared/wasm-testsuite; do
        [ -f "$d/WASM2C-RUNS.txt" ] && KILN_SPEC_SUITE=$(cd "$d" && pwd) && break
    done
fi
if [ -z "$KILN_SPEC_SUITE" ] || [ ! -f "$KILN_SPEC_SUITE/WASM2C-RUNS.txt" ]; then
    echo "spec: the WebAssembly testsuite was not found (looked in $ROOT/../shared/wasm-testsuite" \
        "and /work/shared/wasm-testsuite); set KILN_SPEC_SUITE" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
KILN_SPEC_FILE_TIMEOUT=${KILN_SPEC_FILE_TIMEOUT:-900}
export KILN_BUILD KILN_HOME KILN_CC KILN_SPEC_OPT KILN_SPEC_SUITE KILN_SPEC_FILE_TIMEOUT
RUNNER="$KILN_BUILD/tests/tools/spec_runner"
case $KILN_CC in
tcc | */tcc) OUT=${KILN_SPEC_OUT:-$KILN_BUILD/spec-tcc} ;;
*) OUT=${KILN_SPEC_OUT:-$KILN_BUILD/spec} ;;
esac
export KILN_SPEC_OUT="$OUT"

# Where a WASM2C-RUNS.txt entry lives, and the wast2json flags it needs.
locate() { # name -> sets src, flags
    case $1 in
    exception-handling/*)
        src="$KILN_SPEC_SUITE/proposals/$1.wast"
        flags=--enable-exceptions
        ;;
    multi-memory/*)
        src="$KILN_SPEC_SUITE/proposals/$1.wast"
        flags=--enable-multi-memory
        ;;
    *)
        src="$KILN_SPEC_SUITE/$1.wast"
        flags=
        ;;
    esac
}

# Worker: convert and run one file; results go to $OUT/<name>/{run.log,rc,count}.
if [ "$1" = "--one" ]; then
    name=$2
    locate "$name"
    dir="$OUT/$name"
    json="$dir/$(basename "$name").json"
    mkdir -p "$dir"
    rm -f "$dir/rc" "$dir/run.log" "$dir/count"
    if [ ! -f "$json" ] ||
        [ -n "$(find "$src" "$(command -v wast2json)" -newer "$json" 2>/dev/null)" ]; then
        rm -f "$dir"/*.wasm "$dir"/*.wat "$dir"/*.json
        # shellcheck disable=SC2086 # $flags is empty or one word
        if ! wast2json $flags "$src" -o "$json" >"$dir/wast2json.log" 2>&1; then
            { echo "FAIL $name: wast2json failed:"; cat "$dir/wast2json.log"; } >"$dir/run.log"
            rm -f "$json"
            echo 1 >"$dir/count"
            echo 2 >"$dir/rc"
            exit 0
        fi
    fi
    "$RUNNER" --count "$json" >"$dir/count" 2>/dev/null || echo 1 >"$dir/count"
    start=$(date +%s)
    timeout -k 10 "$KILN_SPEC_FILE_TIMEOUT" "$RUNNER" "$json" >"$dir/run.log" 2>&1
    rc=$?
    echo "$rc" >"$dir/rc"
    echo "  ... $name done in $(($(date +%s) - start))s (exit $rc)" >&2
    exit 0
fi

if [ ! -x "$RUNNER" ]; then
    echo "spec: $RUNNER not built (make tests)"
    echo "0 passed, 1 failed"
    exit 1
fi
command -v wast2json >/dev/null 2>&1 || {
    echo "spec: wast2json not found (apt-get install wabt)"
    echo "0 passed, 1 failed"
    exit 1
}

list="$OUT/files.txt"
mkdir -p "$OUT" "$KILN_HOME"
if [ $# -gt 0 ]; then
    printf '%s\n' "$@" >"$list"
else
    grep -v '^[[:space:]]*$' "$KILN_SPEC_SUITE/WASM2C-RUNS.txt" >"$list"
fi
nfiles=$(wc -l <"$list")
echo "spec: $nfiles files, cc=$KILN_CC -O$KILN_SPEC_OPT, $KILN_SPEC_JOBS jobs, cache $KILN_HOME"
t0=$(date +%s)
xargs -P "$KILN_SPEC_JOBS" -n 1 sh "$SELF" --one <"$list"

total_p=0
total_f=0
full=0
while read -r name; do
    dir="$OUT/$name"
    log="$dir/run.log"
    rc=$(cat "$dir/rc" 2>/dev/null || echo 99)
    count=$(cat "$dir/count" 2>/dev/null || echo 1)
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" 2>/dev/null | tail -n 1)
    if [ -z "$summary" ]; then
        # The runner died (crash, timeout): charge every assertion of the file.
        p=0
        f=$count
        note="no summary (exit $rc): counted all $count assertions as failed"
    else
        p=${summary%% passed*}
        f=${summary#*passed, }
        f=${f%% failed}
        note=""
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            f=1
            note="exit $rc after the summary"
        fi
    fi
    total_p=$((total_p + p))
    total_f=$((total_f + f))
    if [ "$f" -eq 0 ]; then
        full=$((full + 1))
        printf 'PASS %-36s %6d passed\n' "$name" "$p"
    else
        printf 'FAIL %-36s %6d passed, %d failed %s\n' "$name" "$p" "$f" "$note"
        grep -E '^FAIL ' "$log" | head -n 10 | sed 's/^/    /'
        [ -z "$summary" ] && tail -n 5 "$log" | sed 's/^/    | /'
    fi
done <"$list"

echo "spec: $(($(date +%s) - t0))s; logs in $OUT/<name>/run.log"
echo "files: $full/$nfiles fully passing"
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
