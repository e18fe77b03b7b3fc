#!/bin/sh
# Build every tests/guests/*.c into OUTDIR/<name>.wasm with clang's wasm32-wasi
# target (Debian: clang, lld, wasi-libc, libclang-rt-14-dev-wasm32).
# A source may ask for extra flags with a comment line "kiln-guest-flags: ...".
# Up-to-date outputs are skipped, so re-running is fast. The last line is
#   N passed, N failed
# counting programs that are built (or already up to date) and that failed.
# Usage: tests/guests/build.sh OUTDIR
OUT=${1:?usage: build.sh OUTDIR}
SRC=$(cd "$(dirname "$0")" && pwd)
CC_WASM=${CC_WASM:-clang}
mkdir -p "$OUT" || exit 1
. "$SRC/../support/build_lib.sh"
for c in "$SRC"/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    out="$OUT/$name.wasm"
    up_to_date "$out" "$c" && continue
    # shellcheck disable=SC2046 # the source's extra flags are a list
    build_step "$out" "$name.c" "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror \
        $(guest_flags "$c") "$c" -o
done
build_done
