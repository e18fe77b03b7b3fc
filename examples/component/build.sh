#!/bin/sh
# Build the example handler: C -> core module (clang, wasm32-wasi) ->
# component (jco, through tests/components/wrap.mjs) for Kiln's kiln:faas
# world, written by `kiln wit --dir`. Usage:
#   examples/component/build.sh [OUTDIR [KILN]]   (default: . and kiln on PATH)
# Needs clang with a wasm32-wasi sysroot, Node and `npm ci` in
# tests/components (done on first use).
set -e
DIR=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-.}
KILN=${2:-kiln}
COMP="$DIR/../../tests/components"
mkdir -p "$OUT"
[ -d "$COMP/node_modules/@bytecodealliance/jco" ] ||
    (cd "$COMP" && npm ci --no-audit --no-fund >/dev/null)
"$KILN" wit --dir "$OUT/wit"
${CC_WASM:-clang} --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror -mexec-model=reactor \
    -o "$OUT/handler.core.wasm" "$DIR/handler.c" "$DIR/kiln_faas.c"
# printf goes through WASI preview 1: jco's preview-1 reactor adapter maps it
# onto WASI 0.2 (wasi:cli/stdout), which Kiln provides.
ADAPTER=reactor node "$COMP/wrap.mjs" "$OUT/handler.core.wasm" "$OUT/wit" handler "$OUT/handler.wasm"
echo "built $OUT/handler.wasm"
