#!/bin/sh
# test_tiers.sh - the fast (tcc) and optimised tiers of the AOT step
# (docs/internals/aot.md, "Tiers"): tcc artifacts load and run the guests of
# tests/guests (output, args/env, every trap kind); they never ask for an
# executable stack and bind no symbol of their own through the dynamic
# linker; each tier is its own cache entry; `--cache-only` compiles nothing;
# a compile that fails is remembered in <key>.fail and returned without
# running the compiler again until --force; an artifact that does not load
# (garbage, no descriptor, tcc without Kiln's builtins) is never published.
# Ends with "N passed, N failed".
ROOT=${KILN_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
KILN_BUILD=${KILN_BUILD:-$ROOT/build}
KILN=${KILN:-$KILN_BUILD/kiln}
. "$ROOT/tests/lib.sh"

if ! command -v tcc >/dev/null 2>&1; then
    not_ok "tcc is installed (scripts/install-deps.sh installs it)" "$(command -v tcc)"
    finish
    exit 1
fi

G=$KILN_BUILD/guests
sh "$ROOT/tests/guests/build.sh" "$G" >/dev/null 2>&1
T=$(mktemp -d /tmp/kiln-tiers-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
# A private home: every artifact and memo counted below is this test's own.
export KILN_HOME="$T/home"
C="$KILN_HOME/cache"

count() { find "$1" -maxdepth 1 -name "*.$2" 2>/dev/null | wc -l | tr -d ' '; }
krun() {
    "$KILN" run "$@" >"$T/out" 2>"$T/err" </dev/null
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

# ---- tcc artifacts load and run -------------------------------------------
msg=$("$KILN" compile --cc tcc "$G/hello.wasm" 2>&1)
check_eq "tcc compile succeeds" 0 $?
check_contains "tcc compile names the tier" "$msg" "(fast tier, tcc version"
check_contains "tcc compile names the level" "$msg" "-O0)"
so=$(ls "$C"/*.so 2>/dev/null | head -n 1)

krun --cc tcc "$G/hello.wasm"
check_eq "tcc hello: output" "hello, world" "$OUT"
check_eq "tcc hello: exit 0" 0 "$RC"
check_eq "tcc hello: quiet stderr" "" "$ERR"
check_eq "tcc run reuses the compiled artifact" 1 "$(count "$C" so)"

krun --cc tcc --env FOO=bar "$G/args_env.wasm" one "two words"
check_eq "tcc args: exit 0" 0 "$RC"
check_contains "tcc args: argc" "$OUT" "argc=3"
check_contains "tcc args: argv[2]" "$OUT" "argv[2]=two words"
check_contains "tcc env: FOO" "$OUT" "FOO=bar"

for k in "oob:out of bounds" "div0:integer divide by zero" "int_overflow:integer overflow" \
    "invalid_conversion:invalid conversion" "unreachable:unreachable" \
    "indirect:indirect call"; do
    kind=${k%%:*}
    krun --cc tcc "$G/traps.wasm" "$kind"
    check_eq "tcc trap $kind: exit 134" 134 "$RC"
    check_contains "tcc trap $kind: message" "$ERR" "kiln run: traps.wasm: trap: ${k#*:}"
done
krun --cc tcc "$G/traps.wasm" stack
check_eq "tcc trap stack: exit 134" 134 "$RC"
check_contains "tcc trap stack: message" "$ERR" "call stack exhausted"
krun --cc tcc "$G/exitcode.wasm" 7
check_eq "tcc exit code" 7 "$RC"

# ---- what a tcc artifact asks of the dynamic linker ------------------------
# tcc writes no PT_GNU_STACK; without one, dlopen makes every thread stack
# of the server executable. Kiln adds it before the artifact is loaded.
stack=$(readelf -lW "$so" | grep GNU_STACK)
check_contains "tcc artifact has PT_GNU_STACK" "$stack" "GNU_STACK"
case "$stack" in *RWE* | *" RW E"*) not_ok "tcc artifact stack is not executable" "$stack" ;;
*) ok "tcc artifact stack is not executable" ;; esac
"$KILN" run --cc tcc "$G/traps.wasm" sleep 3000 >/dev/null 2>&1 </dev/null &
pid=$!
found=0
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do
    grep -q "$C/" /proc/$pid/maps 2>/dev/null && found=1 && break
    sleep 0.1
done
maps=$(cat /proc/$pid/maps 2>/dev/null)
kill $pid 2>/dev/null
wait $pid 2>/dev/null
check_eq "a running kiln has the tcc artifact mapped" 1 "$found"
case "$maps" in *rwxp*) not_ok "no mapping of a running kiln is writable and executable" \
    "$(echo "$maps" | grep rwxp)" ;;
*) ok "no mapping of a running kiln is writable and executable" ;; esac
# tcc ignores -fvisibility=hidden, so an artifact exports its functions, and
# gen.c calls desc.c's import shims (Z_m0Z_f0, the same name in every
# artifact) through the PLT. Linked -Bsymbolic, the artifact binds them to
# its own definitions even when an object in the global scope (here an
# LD_PRELOAD library) defines the same names.
defined=$(nm -D --defined-only "$so" | awk '{print $3}')
check_contains "the descriptor is exported" "$defined" "kiln_artifact_descriptor"
check_contains "tcc artifact is linked -Bsymbolic" "$(readelf -dW "$so")" "(SYMBOLIC)"
cat >"$T/interpose.c" <<'EOF'
#include <unistd.h>
#define F(n) void Z_m0Z_f##n(void) { write(2, "interposed\n", 11); _exit(99); }
F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9)
EOF
cc -shared -fPIC "$T/interpose.c" -o "$T/interpose.so"
check_contains "hello imports through shim Z_m0Z_f0" "$defined" "Z_m0Z_f0"
LD_PRELOAD="$T/interpose.so" "$KILN" run --cc tcc "$G/hello.wasm" >"$T/out" 2>"$T/err" </dev/null
check_eq "equal names in the global scope do not interpose: exit 0" 0 $?
check_eq "equal names in the global scope do not interpose: output" "hello, world" "$(cat "$T/out")"
# Control: the same artifact linked without -Bsymbolic is interposed, so
# the two checks above can fail. (The wrapper answers --version as tcc.)
cat >"$T/tcc-nosymbolic" <<'EOF'
#!/bin/sh
for a do
    shift
    [ "$a" = "-Wl,-Bsymbolic" ] || set -- "$@" "$a"
done
exec tcc "$@"
EOF
chmod +x "$T/tcc-nosymbolic"
"$KILN" compile --cc "$T/tcc-nosymbolic" "$G/hello.wasm" >/dev/null 2>&1
LD_PRELOAD="$T/interpose.so" "$KILN" run --cc "$T/tcc-nosymbolic" "$G/hello.wasm" \
    >"$T/out" 2>"$T/err" </dev/null
check_eq "control: without -Bsymbolic the preloaded shim interposes" "99 interposed" \
    "$? $(cat "$T/err")"
# f32.neg/f64.neg flip the sign bit also of NaNs (tcc's own -x does not).
cat >"$T/neg.wat" <<'EOF'
(module
  (func (export "_start")
    (if (i32.ne (i32.reinterpret_f32 (f32.neg (f32.reinterpret_i32 (i32.const 0x7f803210))))
                (i32.const 0xff803210)) (then unreachable))
    (if (i64.ne (i64.reinterpret_f64 (f64.neg (f64.reinterpret_i64 (i64.const 0xfff8000000000000))))
                (i64.const 0x7ff8000000000000)) (then unreachable))))
EOF
wat2wasm "$T/neg.wat" -o "$T/neg.wasm"
krun --cc tcc "$T/neg.wasm"
check_eq "tcc: neg of a signalling and a negative NaN flips only the sign" "0:" "$RC:$ERR"

# tcc cannot probe stack pages: a function whose tcc frame is over the fast
# tier's bound (768 KiB, under the 1 MiB guard) is refused, not published.
# 50,000 i64 locals and 80,000 values on the operand stack: about 1 MB.
awk 'BEGIN { printf "(module (func (export \"f\") (result i64) (local";
    for (i = 0; i < 50000; i++) printf " i64"; print ")";
    for (i = 0; i < 80000; i++) print "i64.const 1";
    for (i = 1; i < 80000; i++) print "i64.add"; print "))" }' >"$T/bigframe.wat"
wat2wasm "$T/bigframe.wat" -o "$T/bigframe.wasm"
C5="$T/c5"
msg=$("$KILN" compile --cc tcc --cache "$C5" "$T/bigframe.wasm" 2>&1)
check "tcc: a frame over the bound is refused" test $? -ne 0
check_contains "tcc: the refusal names the frame bound" "$msg" "over the fast tier's bound"
check_eq "tcc: the oversized frame is not published" 0 "$(count "$C5" so)"
# ... while a module with the same 50,000 locals and a shallow stack is fine.
awk 'BEGIN { printf "(module (func (export \"f\") (result i64) (local";
    for (i = 0; i < 50000; i++) printf " i64"; print ")"; print "local.get 49999))" }' \
    >"$T/locals.wat"
wat2wasm "$T/locals.wat" -o "$T/locals.wasm"
"$KILN" compile --cc tcc --cache "$C5" "$T/locals.wasm" >/dev/null 2>&1
check_eq "tcc: 50,000 locals alone fit the bound" 1 "$(count "$C5" so)"

# ---- one cache entry per tier ---------------------------------------------
C2="$T/c2"
"$KILN" compile --cc tcc --cache "$C2" "$G/hello.wasm" >/dev/null 2>&1
"$KILN" compile --cc tcc -O2 --cache "$C2" "$G/hello.wasm" >/dev/null 2>&1
check_eq "tcc at any -O is one artifact" 1 "$(count "$C2" so)"
msg=$("$KILN" compile -O2 --cache "$C2" "$G/hello.wasm" 2>&1)
check_eq "cc -O2 compile succeeds" 0 $?
check_contains "cc -O2 names the optimized tier" "$msg" "(optimized tier"
check_eq "tcc and cc -O2 are two cache entries" 2 "$(count "$C2" so)"
msg=$("$KILN" compile --tier fast --cache "$C2" "$G/hello.wasm" 2>&1)
check_contains "--tier fast finds the tcc artifact" "$msg" "cached"
check_contains "--tier fast is tcc" "$msg" "fast tier, tcc version"
msg=$("$KILN" compile --tier optimized -O0 --cache "$C2" "$G/hello.wasm" 2>&1)
check_contains "--tier optimized is -O2 whatever -O says" "$msg" "cached"
check_eq "tiers add no third entry" 2 "$(count "$C2" so)"

# ---- --cache-only compiles nothing ----------------------------------------
msg=$("$KILN" compile --cache-only --cache "$C2" "$G/traps.wasm" 2>&1)
check "--cache-only on an uncached module fails" test $? -ne 0
check_contains "--cache-only says it is not cached" "$msg" "not in the cache yet"
check_eq "--cache-only publishes nothing" 2 "$(count "$C2" so)"
msg=$("$KILN" compile --cache-only --cc tcc --cache "$C2" "$G/hello.wasm" 2>&1)
check_eq "--cache-only on a cached module succeeds" 0 $?

# ---- failed compiles are remembered ---------------------------------------
# A compiler that counts its real runs and fails them (--version answers).
cat >"$T/failcc" <<EOF
#!/bin/sh
case "\$*" in *--version*) exec cc "\$@" ;; esac
echo run >>"$T/failcc.count"
echo "failcc: deliberate failure" >&2
exit 1
EOF
chmod +x "$T/failcc"
C3="$T/c3"
msg=$("$KILN" compile --cc "$T/failcc" --cache "$C3" "$G/hello.wasm" 2>&1)
check "failing compiler: compile fails" test $? -ne 0
check_contains "failing compiler: its message" "$msg" "deliberate failure"
check_eq "failing compiler ran once" 1 "$(wc -l <"$T/failcc.count" | tr -d ' ')"
check_eq "the failure is remembered in <key>.fail" 1 "$(count "$C3" fail)"
check_eq "no artifact for a failed compile" 0 "$(count "$C3" so)"
memo=$(ls "$C3"/*.fail)
msg=$("$KILN" compile --cc "$T/failcc" --cache "$C3" "$G/hello.wasm" 2>&1)
check "remembered failure: compile fails" test $? -ne 0
check_contains "remembered failure: says so" "$msg" "remembered failure"
check_contains "remembered failure: the original message" "$msg" "deliberate failure"
check_contains "remembered failure: names the file" "$msg" "$memo"
check_contains "remembered failure: how to retry" "$msg" "--force"
check_eq "remembered failure: the compiler did not run again" 1 \
    "$(wc -l <"$T/failcc.count" | tr -d ' ')"
msg=$("$KILN" compile --cc "$T/failcc" --cache "$C3" --cache-only "$G/hello.wasm" 2>&1)
check_contains "--cache-only reports the remembered failure" "$msg" "remembered failure"
msg=$("$KILN" compile --cc "$T/failcc" --cache "$C3" --force "$G/hello.wasm" 2>&1)
check "--force retries and fails again" test $? -ne 0
check_eq "--force ran the compiler" 2 "$(wc -l <"$T/failcc.count" | tr -d ' ')"
# Fix the compiler (same --version, so the same key): the memo still holds
# until --force, which then succeeds and removes it.
cat >"$T/failcc" <<EOF
#!/bin/sh
case "\$*" in *--version*) exec cc "\$@" ;; esac
echo run >>"$T/failcc.count"
exec cc "\$@"
EOF
msg=$("$KILN" compile --cc "$T/failcc" --cache "$C3" "$G/hello.wasm" 2>&1)
check_contains "fixed compiler: the memo still answers" "$msg" "remembered failure"
msg=$("$KILN" compile --cc "$T/failcc" --cache "$C3" --force "$G/hello.wasm" 2>&1)
check_eq "fixed compiler: --force succeeds" 0 $?
check_eq "fixed compiler: one artifact" 1 "$(count "$C3" so)"
check_eq "fixed compiler: the memo is gone" 0 "$(count "$C3" fail)"
# Deleting the memo is the other way to retry.
"$KILN" compile --cc "$T/failcc" --cache "$C3" "$G/traps.wasm" >/dev/null 2>&1
check_eq "a good compile leaves no memo" 0 "$(count "$C3" fail)"

# ---- an artifact that does not load is never published ---------------------
# A compiler whose output is garbage.
cat >"$T/garbagecc" <<'EOF'
#!/bin/sh
case "$*" in *--version*) exec cc "$@" ;; esac
cc "$@" || exit
echo "this is not an ELF object" >out.so
EOF
chmod +x "$T/garbagecc"
C4="$T/c4"
msg=$("$KILN" compile --cc "$T/garbagecc" --cache "$C4" "$G/hello.wasm" 2>&1)
check "garbage artifact: compile fails" test $? -ne 0
check_contains "garbage artifact: says it does not load" "$msg" "does not load"
check_contains "garbage artifact: quotes the loader" "$msg" "out.so"
check_eq "garbage artifact: not published" 0 "$(count "$C4" so)"
check_eq "garbage artifact: failure remembered" 1 "$(count "$C4" fail)"
check_eq "garbage artifact: no scratch left" 0 "$(find "$C4/tmp" -mindepth 1 | wc -l | tr -d ' ')"
# A valid shared object without the descriptor.
cat >"$T/nodesccc" <<'EOF'
#!/bin/sh
case "$*" in *--version*) exec cc "$@" ;; esac
echo 'int kiln_not_a_descriptor = 1;' >empty.c
exec cc -shared -fPIC empty.c -o out.so
EOF
chmod +x "$T/nodesccc"
msg=$("$KILN" compile --cc "$T/nodesccc" --cache "$C4" "$G/hello.wasm" 2>&1)
check "no descriptor: compile fails" test $? -ne 0
check_contains "no descriptor: says so" "$msg" "no kiln_artifact_descriptor symbol"
check_eq "no descriptor: not published" 0 "$(count "$C4" so)"
# tcc without Kiln's builtins: the bug the load check exists for. The
# wrapper answers --version as tcc, so Kiln treats it as tcc.
cat >"$T/tcc-nobuiltins" <<'EOF'
#!/bin/sh
skip=0
for a do
    shift
    if [ $skip = 1 ]; then skip=0; continue; fi
    [ "$a" = "-include" ] && { skip=1; continue; }
    set -- "$@" "$a"
done
exec tcc "$@"
EOF
chmod +x "$T/tcc-nobuiltins"
cat >"$T/clz.wat" <<'EOF'
(module (func (export "clz") (param i32) (result i32) (i32.clz (local.get 0))))
EOF
wat2wasm "$T/clz.wat" -o "$T/clz.wasm"
msg=$("$KILN" compile --cc "$T/tcc-nobuiltins" --cache "$C4" "$T/clz.wasm" 2>&1)
check "tcc without builtins: compile fails" test $? -ne 0
check_contains "tcc without builtins: undefined builtin named" "$msg" "undefined symbol: __builtin_"
check_eq "tcc without builtins: not published" 0 "$(count "$C4" so)"

finish
