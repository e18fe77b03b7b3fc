#!/bin/sh
# bench/kv.sh - key-value operations per second from a guest (bench/kv.c):
# kiln.kv_set and kiln.kv_get against the memory and SQLite backends, on 1
# and 2 threads. Builds what it needs under BUILD/bench/kv and prints one
# markdown table (bench/run.sh can include it as a section).
# Usage: sh bench/kv.sh [BUILD]   Environment: BENCH_KV_SECONDS (default 1),
# BENCH_KV_REPS (default 3). Not a test: nothing passes or fails on a number.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
cd "$ROOT"
BUILD=${1:-build}
BUILD=$(mkdir -p "$BUILD" && cd "$BUILD" && pwd)
B=$BUILD/bench/kv
mkdir -p "$B/home"
export KILN_HOME="$B/home"
unset KILN_CC
[ -f "$BUILD/libkiln.a" ] || { echo "bench/kv: $BUILD/libkiln.a not built; run 'make -s all'" >&2; exit 1; }
make_var() {
    make -s --no-print-directory -C "$ROOT" BUILD="$BUILD" \
        --eval="bench-print-var: ; @echo \$($1)" bench-print-var 2>/dev/null
}
LIBS=$(make_var LIBS)
LDEXPORT=$(make_var LDEXPORT)
CC=${CC:-cc}
if stale "$B/kv.wasm" bench/guests/kv.c; then
    clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor -o "$B/kv.wasm" \
        bench/guests/kv.c
fi
if stale "$B/kv" bench/kv.c "$BUILD/libkiln.a"; then
    # shellcheck disable=SC2086 # LIBS and LDEXPORT are word lists
    $CC -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Iinclude -Isrc $LDEXPORT \
        -o "$B/kv" bench/kv.c "$BUILD/libkiln.a" $LIBS
fi
echo "### Key-value operations from a guest"
echo
echo "A guest calls kiln.kv_set / kiln.kv_get in a loop (64-byte values, 1000 keys per"
echo "thread, one instance per thread); median of ${BENCH_KV_REPS:-3} runs of ${BENCH_KV_SECONDS:-1} s."
echo "SQLite acknowledges a write after its batch is fsynced (group commit)."
echo
"$B/kv" -t "${BENCH_KV_SECONDS:-1}" -r "${BENCH_KV_REPS:-3}" "$B" "$B/kv.wasm"
