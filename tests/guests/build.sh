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
pass=0
fail=0
for c in "$SRC"/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    out="$OUT/$name.wasm"
    if [ -f "$out" ] && [ "$out" -nt "$c" ] && [ "$out" -nt "$0" ]; then
        pass=$((pass + 1))
        continue
    fi
    # Write to a temporary name and rename: an interrupted build never leaves
    # a truncated module that would look up to date.
    extra=$(sed -n 's/.*kiln-guest-flags:\(.*\)$/\1/p' "$c" | head -n 1)
    # shellcheck disable=SC2086 # $extra is a flag list
    if "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror $extra \
        -o "$out.tmp.$$" "$c" && mv -f "$out.tmp.$$" "$out"; then
        echo "built $name.wasm"
        pass=$((pass + 1))
    else
        rm -f "$out.tmp.$$"
        echo "FAIL $name.c"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
