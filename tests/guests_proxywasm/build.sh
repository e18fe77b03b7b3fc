#!/bin/sh
# Build the proxy-wasm test filters into OUTDIR:
#   every tests/guests_proxywasm/*.c -> OUTDIR/<name>.wasm (clang wasm32-wasi
#   reactor against the raw ABI, pw.h; no SDK);
#   tests/as_proxywasm/assembly/*.ts -> OUTDIR/as_<name>.wasm (AssemblyScript
#   with @solo-io/proxy-runtime 0.1.8 and AssemblyScript 0.14.13, installed
#   from tests/as_proxywasm/package-lock.json with `npm ci` on first use).
# Up-to-date outputs are skipped. If npm or the registry is unavailable the
# AssemblyScript filters are skipped with a message (not counted). Last line:
#   N passed, N failed
# Usage: tests/guests_proxywasm/build.sh OUTDIR
OUT=${1:?usage: build.sh OUTDIR}
SRC=$(cd "$(dirname "$0")" && pwd)
AS_DIR=$(cd "$SRC/../as_proxywasm" && pwd)
CC_WASM=${CC_WASM:-clang}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
. "$SRC/../support/build_lib.sh"

for c in "$SRC"/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    out="$OUT/$name.wasm"
    up_to_date "$out" "$c" "$SRC/pw.h" && continue
    build_step "$out" "$name.c" "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror \
        -mexec-model=reactor "$c" -o
done

asc="$AS_DIR/node_modules/.bin/asc"
if [ ! -x "$asc" ] || [ "$AS_DIR/package-lock.json" -nt "$AS_DIR/node_modules" ]; then
    npm_ci "$AS_DIR" "the AssemblyScript proxy-wasm SDK" "AssemblyScript filters"
fi
# as_filter FILE.ts OUT_FILE: compile assembly/FILE.ts. The SDK's abort
# handler logs and calls wasi_unstable.proc_exit(255).
as_filter() {
    (cd "$AS_DIR" && "$asc" "assembly/$1" -b "$2" \
        --use abort=abort_proc_exit --optimize >/dev/null 2>&1)
}
if [ -x "$asc" ]; then
    for ts in "$AS_DIR"/assembly/*.ts; do
        [ -f "$ts" ] || continue
        name=as_$(basename "$ts" .ts)
        out="$OUT/$name.wasm"
        up_to_date "$out" "$ts" && continue
        build_step "$out" "$(basename "$ts")" as_filter "$(basename "$ts")"
    done
fi
build_done
