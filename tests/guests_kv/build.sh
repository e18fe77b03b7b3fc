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
pass=0
fail=0
for c in "$SRC"/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    out="$OUT/$name.wasm"
    if [ -f "$out" ] && [ "$out" -nt "$c" ] && [ "$out" -nt "$0" ] && [ "$out" -nt "$SRC/kiln_imports.h" ]; then
        pass=$((pass + 1))
        continue
    fi
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
