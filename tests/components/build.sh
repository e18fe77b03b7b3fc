#!/bin/sh
# Build the test components: each guests/NAME.c is compiled to a core module
# with clang's wasm32-wasi target (exports named per the canonical ABI), then
# wrapped by jco (pinned in package-lock.json, installed with `npm ci` on
# first use) into OUTDIR/NAME.wasm for the world named on its
# "kiln-component: WITDIR WORLD [ADAPTER [ENCODING]]" line; OUTDIR/NAME.ref.wit
# is the WIT wasm-tools prints for it. ENCODING (utf8, utf16, compact-utf16;
# default utf8) is the string encoding the core module's lifts and lowers
# declare. ADAPTER "reactor" ("none": no adapter) wraps a module importing
# WASI preview 1 with jco's preview-1 reactor adapter; "kiln-component: -
# command" builds a C program (main) as a wasi:cli/command component with
# the command adapter, as `jco new --wasi-command` does. Up-to-date outputs
# are skipped. nested/NAME.wat (component text) becomes OUTDIR/NAME.wasm.
# Last line:
#   N passed, N failed
# Usage: tests/components/build.sh OUTDIR
OUT=${1:?usage: build.sh OUTDIR}
DIR=$(cd "$(dirname "$0")" && pwd)
CC_WASM=${CC_WASM:-clang}
mkdir -p "$OUT" || exit 1
. "$DIR/../support/build_lib.sh"
if [ ! -d "$DIR/node_modules/@bytecodealliance/jco" ] ||
    [ "$DIR/package-lock.json" -nt "$DIR/node_modules/.package-lock.json" ]; then
    echo "installing jco with npm ci in $DIR"
    if ! (cd "$DIR" && timeout 600 npm ci --no-audit --no-fund >/dev/null 2>&1); then
        echo "FAIL npm ci in $DIR (registry unreachable?)"
        fail=$((fail + 1))
        build_done
        exit 1
    fi
fi
# component SOURCE NAME MODEL ADAPTER WIT WORLD OUT_FILE: the core module
# OUTDIR/NAME.core.wasm, wrapped into OUT_FILE; OUTDIR/NAME.ref.wit its WIT.
component() {
    "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror -mexec-model="$3" \
        -o "$OUT/$2.core.wasm" "$1" &&
        ADAPTER=$4 STRING_ENCODING=${encoding:-utf8} node "$DIR/wrap.mjs" "$OUT/$2.core.wasm" "$5" "$6" "$7" "$OUT/$2.ref.wit"
}

for c in "$DIR"/guests/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    set -- $(sed -n 's/.*kiln-component: *\(.*\)$/\1/p' "$c" | head -n 1)
    wit="$DIR/wit/$1"
    world=$2
    adapter=${3:-none}
    encoding=${4:-utf8}
    model=reactor
    witarg=$wit
    if [ "$1" = - ]; then
        witarg=-
        adapter=command
        model=command
    fi
    out="$OUT/$name.wasm"
    up_to_date "$out" "$c" "$wit"/*.wit "$wit"/deps/*/*.wit "$DIR/wrap.mjs" && continue
    build_step "$out" "$name.c" component "$c" "$name" "$model" "$adapter" "$witarg" "$world"
done
# Composed components written in the component text format (nested/*.wat:
# nested components, component-to-component calls), turned into binaries by
# jco's wasm-tools parse.
for w in "$DIR"/nested/*.wat; do
    [ -f "$w" ] || continue
    name=$(basename "$w" .wat)
    out="$OUT/$name.wasm"
    up_to_date "$out" "$w" && continue
    build_step "$out" "nested/$name.wat" "$DIR/node_modules/.bin/jco" parse "$w" -o
done
build_done
