#!/bin/sh
# test_cli_inspect.sh - `kiln inspect` end to end: text and JSON output for
# modules built with wat2wasm, ABI detection, hostile names shown escaped,
# and the exit codes and messages of every error path.
. "$(dirname "$0")/../lib.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-inspect.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

# wat NAME: assemble $T/NAME.wat (from stdin) into $T/NAME.wasm.
wat() {
    cat >"$T/$1.wat"
    if ! out=$(wat2wasm "$T/$1.wat" -o "$T/$1.wasm" 2>&1); then
        not_ok "wat2wasm $1" "$out"
        return 1
    fi
}

# run_kiln ARGS...: sets $out (stdout+stderr) and $rc.
run_kiln() {
    out=$("$KILN" "$@" 2>&1)
    rc=$?
}

# ---- a module with every kind of import and export ----------------------
wat full <<'EOF'
(module
  (type $bin (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 16))
  (import "env" "table" (table 2 funcref))
  (import "env" "counter" (global (mut i64)))
  (global $g (export "limit") f64 (f64.const 1.5))
  (func $main (export "_start"))
  (func (export "add") (type $bin) local.get 0 local.get 1 i32.add)
  (func (export "*/\0a#error x /*") nop)
  (func (export "multi") (param i64 f32) (result f64 i32) f64.const 0 i32.const 0)
  (export "mem" (memory 0))
  (start $main))
EOF
run_kiln inspect "$T/full.wasm"
check_eq "inspect exits 0" 0 "$rc"
check_contains "module line" "$out" "module: $T/full.wasm ("
check_contains "abi wasi-command" "$out" "abi: wasi-command"
check_contains "import func with signature" "$out" "wasi_snapshot_preview1.fd_write  iiii>i"
check_contains "import memory with limits" "$out" "env.memory"
check_contains "import memory type" "$out" "memory 1 16"
check_contains "import table type" "$out" "funcref 2"
check_contains "import global type" "$out" "mut j"
check_contains "export add signature" "$out" "add"
check_contains "export add type" "$out" "ii>i"
check_contains "export multi-value signature" "$out" "jf>di"
check_contains "export global type" "$out" "limit"
check_contains "hostile name escaped" "$out" '*/\x0a#error x /*'
case "$out" in
*"
#error"*) not_ok "no raw newline from a name" "$out" ;;
*) ok "no raw newline from a name" ;;
esac
check_contains "memory pages" "$out" "memory 0: initial 1 page, max 16 pages (imported)"
check_contains "table listed" "$out" "table 0: funcref, initial 2, no max (imported)"
check_contains "start function" "$out" "start: function 1 (>)"

run_kiln inspect --json "$T/full.wasm"
check_eq "inspect --json exits 0" 0 "$rc"
check_contains "json abi" "$out" '"abi": "wasi-command"'
check_contains "json import module" "$out" '"module": "wasi_snapshot_preview1"'
check_contains "json signature" "$out" '"type": "iiii>i"'
check_contains "json exact hostile name" "$out" '"name": "*/\n#error x /*"'
check_contains "json start" "$out" '"start": 1'
if command -v node >/dev/null 2>&1; then
    check "json parses" node -e 'JSON.parse(require("fs").readFileSync(0, "utf8"))' <<EOF
$out
EOF
fi

# ---- ABI detection ------------------------------------------------------
abi_case() { # NAME EXPECTED (module text on stdin)
    wat "$1" || return
    run_kiln inspect "$T/$1.wasm"
    check_contains "abi $2" "$out" "abi: $2"
}
abi_case reactor wasi-reactor <<'EOF'
(module (func (export "_initialize")) (func (export "work")))
EOF
abi_case extism extism-plugin <<'EOF'
(module
  (import "extism:host/env" "input_length" (func (result i64)))
  (func (export "_initialize"))
  (func (export "count_vowels") (result i32) i32.const 0))
EOF
abi_case proxy proxy-wasm <<'EOF'
(module
  (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start"))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32)))
EOF
abi_case otoroshi otoroshi <<'EOF'
(module
  (import "extism:host/env" "input_length" (func (result i64)))
  (import "env" "proxy_log" (func (param i32 i64 i64) (result i32)))
  (func (export "execute") (result i32) i32.const 0))
EOF
abi_case core core <<'EOF'
(module (func (export "fib") (param i32) (result i32) local.get 0))
EOF

# ---- help and argument errors -------------------------------------------
run_kiln inspect --help
check_eq "--help exits 0" 0 "$rc"
check_contains "--help prints usage" "$out" "usage: kiln inspect [--json] module.wasm"

run_kiln inspect --frobnicate "$T/full.wasm"
check_eq "unknown flag exits 2" 2 "$rc"
check_contains "unknown flag named" "$out" "unknown option '--frobnicate'"

run_kiln inspect
check_eq "no module exits 2" 2 "$rc"
check_contains "no module message" "$out" "no module given"

# ---- file errors --------------------------------------------------------
run_kiln inspect "$T/missing.wasm"
check_eq "missing file exits 1" 1 "$rc"
check_contains "missing file names the path" "$out" "$T/missing.wasm"
check_contains "missing file says why" "$out" "No such file or directory"

printf 'this is not wasm' >"$T/junk.wasm"
run_kiln inspect "$T/junk.wasm"
check_eq "malformed file exits 1" 1 "$rc"
check_contains "malformed file: reader message" "$out" "wasm reader: missing \\0asm magic"
check_contains "malformed file: offset" "$out" "at offset 0"

# A truncated copy of a real module: the reader's message carries the offset.
head -c 30 "$T/full.wasm" >"$T/short.wasm"
run_kiln inspect "$T/short.wasm"
check_eq "truncated file exits 1" 1 "$rc"
check_contains "truncated file: reader message" "$out" "wasm reader:"

# Invalid UTF-8 in an export name. wat2wasm refuses to write one, so the
# bytes are spelled out: export section, one export "bad" C0 80 (an overlong
# NUL) whose first bad byte is at offset 15.
printf '\000asm\001\000\000\000\007\011\001\005bad\300\200\000\000' >"$T/badutf8.wasm"
run_kiln inspect "$T/badutf8.wasm"
check_eq "invalid UTF-8 exits 1" 1 "$rc"
check_contains "invalid UTF-8 message" "$out" "malformed UTF-8 in export name at offset 15"

# Unsupported proposals are named.
printf '\000asm\001\000\000\000\005\004\001\003\001\002' >"$T/shared.wasm"
run_kiln inspect "$T/shared.wasm"
check_eq "shared memory exits 1" 1 "$rc"
check_contains "shared memory named" "$out" "threads (shared memory)"

finish
