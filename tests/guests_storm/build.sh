#!/bin/sh
# Build the guests of the fault storm (tests/stress/storm.sh) into OUTDIR:
#   tests/guests_storm/*.c   -> OUTDIR/<name>.wasm (clang wasm32-wasi, with
#                               tests/guests_kv/kiln_imports.h on the include
#                               path; a source may ask for extra flags with a
#                               line "kiln-guest-flags: ...");
#   tests/guests_storm/*.wat -> OUTDIR/<name>.wasm (wat2wasm --enable-exceptions).
# Up-to-date outputs are skipped. Last line: "N passed, N failed".
# Usage: build.sh OUTDIR
OUT=${1:?usage: build.sh OUTDIR}
SRC=$(cd "$(dirname "$0")" && pwd)
KV=$(cd "$SRC/../guests_kv" && pwd)
CC_WASM=${CC_WASM:-clang}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
pass=0
fail=0
for s in "$SRC"/*.c "$SRC"/*.wat; do
    [ -f "$s" ] || continue
    name=$(basename "$s")
    name=${name%.*}
    out="$OUT/$name.wasm"
    if [ -f "$out" ] && [ "$out" -nt "$s" ] && [ "$out" -nt "$0" ] && [ "$out" -nt "$KV/kiln_imports.h" ]; then
        pass=$((pass + 1))
        continue
    fi
    case "$s" in
    *.wat) wat2wasm --enable-exceptions "$s" -o "$out.tmp.$$" ;;
    *)
        extra=$(sed -n 's/.*kiln-guest-flags:\(.*\)$/\1/p' "$s" | head -n 1)
        # shellcheck disable=SC2086 # $extra is a flag list
        "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror -I"$KV" $extra \
            -o "$out.tmp.$$" "$s"
        ;;
    esac
    if [ $? -eq 0 ] && mv -f "$out.tmp.$$" "$out"; then
        echo "built $name.wasm"
        pass=$((pass + 1))
    else
        rm -f "$out.tmp.$$"
        echo "FAIL $(basename "$s")"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
