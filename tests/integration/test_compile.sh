#!/bin/sh
# test_compile.sh - `kiln compile` end to end: caching, per-level artifacts,
# rejection of unsupported and invalid modules, concurrent compiles of one
# module, a compile killed mid-way, and the bounds on what one compile may
# cost (code size, functions, function size, compiler memory). Each case uses its own cache
# directory (--cache) so counts are exact. (`check` from lib.sh sets $out:
# command output here goes to $msg.)
. "$(dirname "$0")/../lib.sh"

T=$(mktemp -d /tmp/kiln-compile-test.XXXXXX)
trap 'rm -rf "$T"' EXIT

# count_so DIR: artifacts published in a cache directory
count_so() { find "$1" -maxdepth 1 -name '*.so' 2>/dev/null | wc -l | tr -d ' '; }
# count_tmp DIR: entries left in a cache's scratch area
count_tmp() { find "$1/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l | tr -d ' '; }

cat >"$T/add.wat" <<'EOF'
(module (func (export "add") (param i32 i32) (result i32)
  (i32.add (local.get 0) (local.get 1))))
EOF
cat >"$T/simd.wat" <<'EOF'
(module (func (export "f") (result i32)
  (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4))))
EOF
cat >"$T/threads.wat" <<'EOF'
(module (memory 1 1 shared)
  (func (export "f") (result i32) (i32.atomic.load (i32.const 0))))
EOF
cat >"$T/mistyped.wat" <<'EOF'
(module (func (export "f") (result i32) (i64.const 1)))
EOF
wat2wasm "$T/add.wat" -o "$T/add.wasm"
wat2wasm "$T/simd.wat" -o "$T/simd.wasm"
wat2wasm --enable-threads "$T/threads.wat" -o "$T/threads.wasm"
wat2wasm --no-check "$T/mistyped.wat" -o "$T/mistyped.wasm"
printf '\000asm\001\000\000\000this is not a section' >"$T/garbage.wasm"

# ---- compile, then cached ------------------------------------------------
C="$T/c1"
msg=$("$KILN" compile -O1 --cache "$C" "$T/add.wasm" 2>&1)
check_eq "first compile succeeds" 0 $?
check_eq "first compile publishes one artifact" 1 "$(count_so "$C")"
msg=$("$KILN" compile -O1 --cache "$C" "$T/add.wasm" 2>&1)
check_eq "recompile succeeds" 0 $?
case "$msg" in
*cached* | *Cached*) ok "recompile reports cached" ;;
*) not_ok "recompile reports cached" "$msg" ;;
esac
check_eq "recompile adds no artifact" 1 "$(count_so "$C")"

# ---- another level, another artifact -----------------------------------
"$KILN" compile -O2 --cache "$C" "$T/add.wasm" >/dev/null 2>&1
check_eq "-O2 compile succeeds" 0 $?
check_eq "-O2 is a second artifact" 2 "$(count_so "$C")"
check_eq "no scratch left after compiles" 0 "$(count_tmp "$C")"

# ---- unsupported and invalid modules -------------------------------------
C="$T/c2"
msg=$("$KILN" compile --cache "$C" "$T/simd.wasm" 2>&1)
rc=$?
check "SIMD module rejected" test "$rc" -ne 0
check_contains "SIMD rejection names SIMD" "$msg" "SIMD"
check_contains "SIMD rejection names the module" "$msg" "simd.wasm"
check_eq "SIMD leaves no artifact" 0 "$(count_so "$C")"
check_eq "SIMD leaves no scratch" 0 "$(count_tmp "$C")"

msg=$("$KILN" compile --cache "$C" "$T/threads.wasm" 2>&1)
rc=$?
check "threads module rejected" test "$rc" -ne 0
check_contains "threads rejection names threads" "$msg" "threads"

msg=$("$KILN" compile --cache "$C" "$T/mistyped.wasm" 2>&1)
rc=$?
check "mistyped module rejected" test "$rc" -ne 0
check_contains "mistyped rejection quotes wasm-validate" "$msg" "wasm-validate"
check_contains "mistyped rejection says why" "$msg" "type mismatch"

msg=$("$KILN" compile --cache "$C" "$T/garbage.wasm" 2>&1)
rc=$?
check "garbage rejected" test "$rc" -ne 0
check_contains "garbage rejection names the module" "$msg" "garbage.wasm"
check_eq "rejections leave no artifact" 0 "$(count_so "$C")"
check_eq "rejections leave no scratch" 0 "$(count_tmp "$C")"

# ---- 8 concurrent forced compiles of one module --------------------------
C="$T/c3"
pids=""
i=0
while [ $i -lt 8 ]; do
    "$KILN" compile --force -O0 --cache "$C" "$T/add.wasm" >"$T/conc.$i.log" 2>&1 &
    pids="$pids $!"
    i=$((i + 1))
done
failed=0
for p in $pids; do
    wait "$p" || failed=$((failed + 1))
done
check_eq "8 concurrent --force compiles all succeed" 0 "$failed"
[ "$failed" -eq 0 ] || cat "$T"/conc.*.log | head -n 20
check_eq "concurrent compiles leave exactly one artifact" 1 "$(count_so "$C")"
check_eq "concurrent compiles leave no scratch" 0 "$(count_tmp "$C")"

# ---- kill -9 mid-compile ------------------------------------------------
# Enough functions that the C compiler runs for a while at -O2.
C="$T/c4"
awk 'BEGIN {
    print "(module (memory 1)";
    for (i = 0; i < 3000; i++)
        printf "(func (export \"f%d\") (param i32) (result i32)" \
               " (i32.store (local.get 0) (i32.mul (local.get 0) (i32.const %d)))" \
               " (i32.add (i32.load (i32.const %d)) (local.get 0)))\n", i, i + 3, (i * 4) % 60000;
    print ")";
}' >"$T/big.wat"
wat2wasm "$T/big.wat" -o "$T/big.wasm"
"$KILN" compile -O2 --cache "$C" "$T/big.wasm" >/dev/null 2>&1 &
kpid=$!
# Wait until wasm2c has written gen.c, i.e. the C compiler is (about to be) running.
n=0
while [ $n -lt 300 ] && ! ls "$C"/tmp/*/gen.c >/dev/null 2>&1; do
    sleep 0.1
    n=$((n + 1))
done
check "compile reached the C compiler" ls "$C"/tmp/*/gen.c
sleep 0.3
check_eq "no artifact before the kill" 0 "$(count_so "$C")"
kill -9 "$kpid" 2>/dev/null
wait "$kpid" 2>/dev/null
check_eq "compile died of SIGKILL" 137 $?
# Orphaned compiler processes must not publish anything either.
sleep 2
check_eq "killed compile leaves no artifact" 0 "$(count_so "$C")"
# The next compile sweeps the dead process's scratch directory and succeeds.
"$KILN" compile -O0 --cache "$C" "$T/add.wasm" >/dev/null 2>&1
check_eq "compile after a kill succeeds" 0 $?
check_eq "dead compile's scratch is swept" 0 "$(count_tmp "$C")"
check_eq "only the new artifact exists" 1 "$(count_so "$C")"

# --- bounds: what one compile may cost -------------------------------------------------
# A module whose one function has a body of about 20 KB, and one with 60 small functions.
big=$T/bigfn.wat
{
    echo '(module (memory 1) (func (export "f") (param $p i32) (result i32) (local $a i32)'
    i=0
    while [ $i -lt 1500 ]; do
        echo "(local.set \$a (i32.add (i32.mul (local.get \$a) (i32.const $i)) (i32.load (i32.and (local.get \$p) (i32.const 1020)))))"
        i=$((i + 1))
    done
    echo '(local.get $a)))'
} >"$big"
wat2wasm "$big" -o "$T/bigfn.wasm"
{
    echo '(module'
    i=0
    while [ $i -lt 60 ]; do echo "(func (export \"f$i\") (result i32) (i32.const $i))"; i=$((i + 1)); done
    echo ')'
} >"$T/many.wat"
wat2wasm "$T/many.wat" -o "$T/many.wasm"
C="$T/c-bounds"
msg=$(KILN_AOT_MAX_FUNCTION_BYTES=4KiB "$KILN" compile --cache "$C" "$T/bigfn.wasm" 2>&1)
check_eq "a function body over max_function_bytes is refused (exit 1)" 1 $?
check_contains "... naming the function, its size, the limit and the option" "$msg" \
    "too large to compile: function 0 has a body of"
check_contains "... the limit and the option to raise" "$msg" \
    "over the limit of 4096 (max_function_bytes"
check_contains "... how to raise it" "$msg" "KILN_AOT_MAX_FUNCTION_BYTES=<size>"
check_eq "... before any tool ran (no scratch, no artifact)" "0 0" \
    "$(count_so "$C") $(find "$C" -name 'module.wasm' 2>/dev/null | wc -l)"
msg=$(KILN_AOT_MAX_CODE_BYTES=1KiB "$KILN" compile --cache "$C" "$T/bigfn.wasm" 2>&1)
check_contains "a code section over max_code_bytes is refused" "$msg" \
    "its code section is"
check_contains "... naming the option" "$msg" "over the limit of 1024 (max_code_bytes); raise it with KILN_AOT_MAX_CODE_BYTES"
msg=$(KILN_AOT_MAX_FUNCTIONS=50 "$KILN" compile --cache "$C" "$T/many.wasm" 2>&1)
check_contains "more functions than max_functions are refused" "$msg" \
    "it defines 60 functions, over the limit of 50 (max_functions)"
msg=$(KILN_AOT_MAX_MEMORY=lots "$KILN" compile --cache "$C" "$T/many.wasm" 2>&1)
check_contains "a malformed size is an error, not a default" "$msg" \
    "KILN_AOT_MAX_MEMORY='lots' is not a size"
msg=$("$KILN" compile --cache "$C" "$T/bigfn.wasm" 2>&1)
check_eq "under the default bounds the same module compiles" 0 $?
for cc in gcc clang; do
    command -v $cc >/dev/null 2>&1 || continue
    msg=$(KILN_AOT_MAX_MEMORY=64MiB "$KILN" compile --force --cc $cc -O2 --cache "$C" \
        "$T/bigfn.wasm" 2>&1)
    check_eq "$cc: a compile over its memory limit fails (exit 1)" 1 $?
    check_contains "$cc: ... reported as out of memory with the limit" "$msg" \
        "ran out of memory (limit 64 MiB for"
    check_contains "$cc: ... and what to raise or shrink" "$msg" \
        "raise KILN_AOT_MAX_MEMORY=<size> (kiln_aot_options.max_memory_bytes"
done
check_eq "failed compiles leave no scratch" 0 "$(count_tmp "$C")"

# --- tool identities are remembered: a cached compile starts no child process ---
H=$T/home-probe
KILN_HOME=$H "$KILN" compile "$T/add.wasm" >/dev/null 2>&1
check_eq "tool identities cached on disk" 2 "$(ls "$H/cache/tools" 2>/dev/null | wc -l)"
if command -v strace >/dev/null 2>&1; then
    execs=$(KILN_HOME=$H strace -f -e trace=execve "$KILN" compile "$T/add.wasm" 2>&1 >/dev/null |
        grep -c 'execve(')
    check_eq "cached compile runs no tool (only kiln's own execve)" 1 "$execs"
    touch -d '2001-01-01' "$H/cache/tools"/* 2>/dev/null
    for f in "$H/cache/tools"/*; do printf 'stale|key\nbogus 0.0.0\n' > "$f"; done
    out=$(KILN_HOME=$H "$KILN" compile "$T/add.wasm" 2>&1)
    check_contains "a stale identity entry is ignored, not trusted" "$out" "cached"
else
    ok "strace not installed: skipped the execve count"
fi

finish
