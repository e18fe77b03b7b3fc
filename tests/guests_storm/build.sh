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
. "$SRC/../support/build_lib.sh"

# storm_guest SOURCE OUT_FILE: a .wat with wat2wasm, a .c with clang.
storm_guest() {
    case "$1" in
    *.wat) wat2wasm --enable-exceptions "$1" -o "$2" ;;
    *)
        # shellcheck disable=SC2046 # the source's extra flags are a list
        "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror -I"$KV" \
            $(guest_flags "$1") -o "$2" "$1"
        ;;
    esac
}

for s in "$SRC"/*.c "$SRC"/*.wat; do
    [ -f "$s" ] || continue
    name=$(basename "$s")
    name=${name%.*}
    out="$OUT/$name.wasm"
    up_to_date "$out" "$s" "$KV/kiln_imports.h" && continue
    build_step "$out" "$(basename "$s")" storm_guest "$s"
done
build_done
