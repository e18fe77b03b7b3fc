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
pass=0
fail=0

fresh() { # OUT_FILE SOURCES...: newer than every source and this script?
    o=$1
    shift
    [ -f "$o" ] || return 1
    for s in "$@" "$0"; do
        [ "$o" -nt "$s" ] || return 1
    done
    return 0
}

for c in "$SRC"/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    out="$OUT/$name.wasm"
    if fresh "$out" "$c" "$SRC/pw.h"; then
        pass=$((pass + 1))
        continue
    fi
    # Temporary name + rename: an interrupted build never looks up to date.
    if "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror \
        -mexec-model=reactor -o "$out.tmp.$$" "$c" && mv -f "$out.tmp.$$" "$out"; then
        echo "built $name.wasm"
        pass=$((pass + 1))
    else
        rm -f "$out.tmp.$$"
        echo "FAIL $name.c"
        fail=$((fail + 1))
    fi
done

asc="$AS_DIR/node_modules/.bin/asc"
if [ ! -x "$asc" ] || [ "$AS_DIR/package-lock.json" -nt "$AS_DIR/node_modules" ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "installing the AssemblyScript proxy-wasm SDK with npm ci in $AS_DIR"
        (cd "$AS_DIR" && timeout 300 npm ci --no-audit --no-fund >/dev/null 2>&1) ||
            echo "skip: npm ci failed in $AS_DIR (registry unreachable?); AssemblyScript filters not built"
    else
        echo "skip: npm not found; AssemblyScript filters not built"
    fi
fi
if [ -x "$asc" ]; then
    for ts in "$AS_DIR"/assembly/*.ts; do
        [ -f "$ts" ] || continue
        name=as_$(basename "$ts" .ts)
        out="$OUT/$name.wasm"
        if fresh "$out" "$ts"; then
            pass=$((pass + 1))
            continue
        fi
        # The SDK's abort handler logs and calls wasi_unstable.proc_exit(255).
        if (cd "$AS_DIR" && "$asc" "assembly/$(basename "$ts")" -b "$out.tmp.$$.wasm" \
            --use abort=abort_proc_exit --optimize >/dev/null 2>&1) &&
            mv -f "$out.tmp.$$.wasm" "$out"; then
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
