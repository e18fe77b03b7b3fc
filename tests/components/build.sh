#!/bin/sh
# Build the test components: each guests/NAME.c is compiled to a core module
# with clang's wasm32-wasi target (exports named per the canonical ABI), then
# wrapped by jco (pinned in package-lock.json, installed with `npm ci` on
# first use) into OUTDIR/NAME.wasm for the world named on its
# "kiln-component: WITDIR WORLD [ADAPTER]" line; OUTDIR/NAME.ref.wit is the
# WIT wasm-tools prints for it. ADAPTER "reactor" wraps a module importing
# WASI preview 1 with jco's preview-1 reactor adapter; "kiln-component: -
# command" builds a C program (main) as a wasi:cli/command component with
# the command adapter, as `jco new --wasi-command` does. Up-to-date outputs
# are skipped. Last line:
#   N passed, N failed
# Usage: tests/components/build.sh OUTDIR
OUT=${1:?usage: build.sh OUTDIR}
DIR=$(cd "$(dirname "$0")" && pwd)
CC_WASM=${CC_WASM:-clang}
mkdir -p "$OUT" || exit 1
pass=0
fail=0
if [ ! -d "$DIR/node_modules/@bytecodealliance/jco" ] ||
    [ "$DIR/package-lock.json" -nt "$DIR/node_modules/.package-lock.json" ]; then
    echo "installing jco with npm ci in $DIR"
    if ! (cd "$DIR" && timeout 600 npm ci --no-audit --no-fund >/dev/null 2>&1); then
        echo "FAIL npm ci in $DIR (registry unreachable?)"
        echo "0 passed, 1 failed"
        exit 1
    fi
fi
for c in "$DIR"/guests/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    set -- $(sed -n 's/.*kiln-component: *\(.*\)$/\1/p' "$c" | head -n 1)
    wit="$DIR/wit/$1"
    world=$2
    adapter=${3:-none}
    model=reactor
    witarg=$wit
    if [ "$1" = - ]; then
        witarg=-
        adapter=command
        model=command
    fi
    out="$OUT/$name.wasm"
    newest=$(ls -t "$c" "$wit"/*.wit "$wit"/deps/*/*.wit "$0" "$DIR/wrap.mjs" 2>/dev/null | head -n 1)
    if [ -f "$out" ] && [ "$out" -nt "$newest" ]; then
        pass=$((pass + 1))
        continue
    fi
    if "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror -mexec-model=$model \
        -o "$OUT/$name.core.wasm" "$c" &&
        ADAPTER=$adapter node "$DIR/wrap.mjs" "$OUT/$name.core.wasm" "$witarg" "$world" "$out.tmp.$$" \
            "$OUT/$name.ref.wit" &&
        mv -f "$out.tmp.$$" "$out"; then
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
