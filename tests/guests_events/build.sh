#!/bin/sh
# Build the storage-event test guests of tests/integration/test_events.sh into
# OUTDIR: every tests/guests_events/*.c -> OUTDIR/<name>.wasm (clang
# wasm32-wasi). Up-to-date outputs are skipped. Last line: "N passed, N failed".
# Usage: build.sh OUTDIR
OUT=${1:?usage: build.sh OUTDIR}
SRC=$(cd "$(dirname "$0")" && pwd)
CC_WASM=${CC_WASM:-clang}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
. "$SRC/../support/build_lib.sh"
for c in "$SRC"/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    out="$OUT/$name.wasm"
    up_to_date "$out" "$c" "$SRC/../guests_kv/kiln_imports.h" && continue
    # shellcheck disable=SC2046 # the source's extra flags are a list
    build_step "$out" "$name.c" "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror \
        $(guest_flags "$c") "$c" -o
done
build_done
