#!/bin/sh
# Build the key-value test guests of tests/integration/test_kv.sh into OUTDIR:
# every tests/guests_kv/*.c -> OUTDIR/<name>.wasm (clang wasm32-wasi; a source
# may ask for extra flags with a line "kiln-guest-flags: ..."). Up-to-date
# outputs are skipped. Last line: "N passed, N failed".
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
    up_to_date "$out" "$c" "$SRC/kiln_imports.h" && continue
    # shellcheck disable=SC2046 # the source's extra flags are a list
    build_step "$out" "$name.c" "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror \
        $(guest_flags "$c") "$c" -o
done
build_done
