#!/bin/sh
# Build the WASI-CGI guests of the `kiln serve` tests into OUTDIR:
#   tests/guests_http/*.c   -> OUTDIR/<name>.wasm (clang wasm32-wasi commands; a
#                              source may ask for extra flags with a line
#                              "kiln-guest-flags: ...");
#   tests/as_cgi/assembly/*.ts -> OUTDIR/<name>.wasm (AssemblyScript with
#                              @assemblyscript/wasi-shim, installed with `npm ci`
#                              from tests/as_cgi/package-lock.json on first use;
#                              skipped with a message when npm cannot install).
# Up-to-date outputs are skipped. Last line: "N passed, N failed".
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
    up_to_date "$out" "$c" && continue
    # shellcheck disable=SC2046 # the source's extra flags are a list
    build_step "$out" "$name.c" "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror \
        $(guest_flags "$c") "$c" -o
done

AS_DIR=$(cd "$SRC/../as_cgi" && pwd)
asc="$AS_DIR/node_modules/.bin/asc"
if [ ! -x "$asc" ]; then
    npm_ci "$AS_DIR" AssemblyScript "AssemblyScript CGI guests"
fi
# as_cgi NAME OUT_FILE: compile assembly/NAME.ts. The shim's asconfig.json
# names its files relative to the project.
as_cgi() {
    (cd "$AS_DIR" && "$asc" "assembly/$1.ts" \
        --config node_modules/@assemblyscript/wasi-shim/asconfig.json -O2 -o "$2")
}
if [ -x "$asc" ]; then
    for ts in "$AS_DIR"/assembly/*.ts; do
        [ -f "$ts" ] || continue
        name=$(basename "$ts" .ts)
        out="$OUT/$name.wasm"
        up_to_date "$out" "$ts" && continue
        build_step "$out" "$(basename "$ts")" as_cgi "$name"
    done
fi
build_done
