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

AS_DIR=$(cd "$SRC/../as_cgi" && pwd)
asc="$AS_DIR/node_modules/.bin/asc"
if [ ! -x "$asc" ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "installing AssemblyScript with npm ci in $AS_DIR"
        (cd "$AS_DIR" && timeout 300 npm ci --no-audit --no-fund >/dev/null 2>&1) ||
            echo "skip: npm ci failed in $AS_DIR; AssemblyScript CGI guests not built"
    else
        echo "skip: npm not found; AssemblyScript CGI guests not built"
    fi
fi
if [ -x "$asc" ]; then
    for ts in "$AS_DIR"/assembly/*.ts; do
        [ -f "$ts" ] || continue
        name=$(basename "$ts" .ts)
        out="$OUT/$name.wasm"
        if [ -f "$out" ] && [ "$out" -nt "$ts" ] && [ "$out" -nt "$0" ]; then
            pass=$((pass + 1))
            continue
        fi
        # The shim's asconfig.json names its files relative to the project.
        if (cd "$AS_DIR" && "$asc" "assembly/$name.ts" \
            --config node_modules/@assemblyscript/wasi-shim/asconfig.json \
            -O2 -o "$out.tmp.$$.wasm") && mv -f "$out.tmp.$$.wasm" "$out"; then
            echo "built $name.wasm"
            pass=$((pass + 1))
        else
            rm -f "$out.tmp.$$.wasm"
            echo "FAIL $(basename "$ts")"
            fail=$((fail + 1))
        fi
    done
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
