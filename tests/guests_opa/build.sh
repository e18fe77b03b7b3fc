#!/bin/sh
# Build the OPA policy test modules into OUTDIR from tests/guests_opa/policy.c,
# a hand-written implementation of the OPA Wasm ABI (`opa build -t wasm` is not
# available offline; see the header of policy.c):
#   policy.wasm           ABI 1.2 (opa_eval fast path), the policy as specified
#   policy_ctx.wasm       ABI 1.1: no opa_eval, evaluated through eval contexts
#   policy_builtins.wasm  declares builtins Kiln lacks (must be refused)
#   policy_hostile.wasm   extra entrypoints that abort, print, call an
#                         undeclared builtin or return an out-of-bounds result
# clang (wasm32, no libc, memory imported as env.memory), then wasm2wat/wat2wasm
# to add the opa_wasm_abi_version / opa_wasm_abi_minor_version i32 globals,
# which C cannot export as values. Up-to-date outputs are skipped. Last line:
#   N passed, N failed
# Usage: tests/guests_opa/build.sh OUTDIR
OUT=${1:?usage: build.sh OUTDIR}
SRC=$(cd "$(dirname "$0")" && pwd)
CC_WASM=${CC_WASM:-clang}
mkdir -p "$OUT" || exit 1
. "$SRC/../support/build_lib.sh"

# policy_module ABI_MINOR CFLAG OUT_FILE: policy.c (with CFLAG, if not empty)
# to OUT_FILE, with the two ABI version globals added.
policy_module() {
    t=${3%.wasm}
    "$CC_WASM" --target=wasm32 -nostdlib -O2 -Wall -Werror -DABI_MINOR="$1" ${2:+"$2"} \
        -Wl,--no-entry -Wl,--import-memory -Wl,--initial-memory=131072 \
        -Wl,--max-memory=4194304 -Wl,-z,stack-size=16384 -o "$t.cc.wasm" "$SRC/policy.c" &&
        wasm2wat "$t.cc.wasm" -o "$t.wat" &&
        sed -i '$ s/)$/\n  (global (export "opa_wasm_abi_version") i32 (i32.const 1))\n  (global (export "opa_wasm_abi_minor_version") i32 (i32.const '"$1"')))/' "$t.wat" &&
        wat2wasm "$t.wat" -o "$3"
    rc=$?
    rm -f "$t.cc.wasm" "$t.wat"
    return $rc
}

build() { # name abi_minor [cflag]
    out="$OUT/$1.wasm"
    up_to_date "$out" "$SRC/policy.c" && return
    build_step "$out" "$1.wasm" policy_module "$2" "$3"
}

build policy 2
build policy_ctx 1
build policy_builtins 2 '-DBUILTINS="{\"http.send\":0,\"time.now_ns\":1}"'
build policy_hostile 2 -DHOSTILE

build_done
