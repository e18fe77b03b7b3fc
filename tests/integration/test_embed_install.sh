#!/bin/sh
# test_embed_install.sh - libkiln as an installed library: `make install
# PREFIX=<temp>` lays out extism.h, libkiln.so and kiln.pc; the unmodified
# Extism host program examples/embed/host.c builds with
# `cc host.c $(pkg-config --cflags --libs kiln)` and runs a plugin with a
# host function (its user-data destructor runs on free); the library exports
# only the Extism API and wasm_rt_* (what dlopen'ed artifacts resolve); a
# plugin is compiled once per KILN_HOME (a second process reuses the artifact).
# Ends with "N passed, N failed".
ROOT=${KILN_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
KILN_BUILD=${KILN_BUILD:-$ROOT/build}
export KILN_HOME=${KILN_HOME:-$KILN_BUILD/test-home}
. "$ROOT/tests/lib.sh"

T=$(mktemp -d /tmp/kiln-embed-test-XXXXXX)
trap 'rm -rf "$T"' EXIT
G=$KILN_BUILD/guests_extism
sh "$ROOT/tests/guests_extism/build.sh" "$G" >/dev/null 2>&1
check "guests built (hostfn.wasm)" test -f "$G/hostfn.wasm"

out=$(make -s -C "$ROOT" BUILD="$KILN_BUILD" install PREFIX="$T/prefix" 2>&1)
check_eq "make install succeeds" "" "$(echo "$out" | grep -iE 'error|\*\*\*')"
for f in include/extism.h include/kiln/extism.h include/kiln/extism_kiln.h lib/libkiln.so \
    lib/pkgconfig/kiln.pc; do
    check "installed $f" test -f "$T/prefix/$f"
done
check "extism.h is the same header" cmp "$ROOT/include/kiln/extism.h" "$T/prefix/include/extism.h"

export PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig"
check_eq "pkg-config --libs" "-L$T/prefix/lib -lkiln" "$(pkg-config --libs kiln | sed "s/ *$//")"
cc_out=$(cc -std=c11 -Wall -Werror "$ROOT/examples/embed/host.c" $(pkg-config --cflags --libs kiln) \
    -o "$T/host" 2>&1)
check_eq "examples/embed/host.c builds with pkg-config" "" "$cc_out"

run=$(LD_LIBRARY_PATH="$T/prefix/lib" "$T/host" "$G/hostfn.wasm" "hello, kiln" 2>&1)
check_contains "the host reports Kiln's Extism version" "$run" "kiln"
check_eq "the plugin called the host function (twice)" 2 "$(echo "$run" | grep -c '^HELLO, KILN$')"
check_contains "the host function's destructor ran on free" "$run" \
    "host function freed after 2 call(s)"
check_contains "linked against the installed library" \
    "$(LD_LIBRARY_PATH="$T/prefix/lib" ldd "$T/host")" "$T/prefix/lib/libkiln.so"

# Exports: the Extism API and wasm_rt_*, nothing else of Kiln.
syms=$(nm -D --defined-only "$T/prefix/lib/libkiln.so" | awk '{print $3}')
check_contains "exports extism_plugin_new" "$syms" "extism_plugin_new"
check_contains "exports wasm_rt_trap" "$syms" "wasm_rt_trap"
check_contains "exports wasm_rt_kiln_host_enter" "$syms" "wasm_rt_kiln_host_enter"
other=$(echo "$syms" | grep -vE '^(extism_|kiln_extism_|wasm_rt_)' | grep -v '^$' | grep -vE '^(_init|_fini)$')
check_eq "exports nothing else" "" "$other"

# Compilation goes through Kiln's artifact cache: with a fresh KILN_HOME the
# first run compiles the plugin into $KILN_HOME/cache, a second process maps
# that artifact (nothing compiled, nothing rewritten).
H=$T/home
mkdir -p "$H"
run=$(KILN_HOME="$H" LD_LIBRARY_PATH="$T/prefix/lib" "$T/host" "$G/hostfn.wasm" "hi" 2>&1)
check_eq "fresh KILN_HOME: the plugin runs" 2 "$(echo "$run" | grep -c '^HI$')"
n1=$(ls "$H/cache" 2>/dev/null | grep -c '\.so$')
check "fresh KILN_HOME: the first process compiled an artifact into \$KILN_HOME/cache ($n1)" \
    [ "$n1" -ge 1 ]
before=$(cd "$H/cache" && ls -l --time-style=+%s.%N *.so 2>/dev/null | awk '{print $6, $7}')
sleep 1
run=$(KILN_HOME="$H" LD_LIBRARY_PATH="$T/prefix/lib" "$T/host" "$G/hostfn.wasm" "hi" 2>&1)
check_eq "second process: the plugin runs" 2 "$(echo "$run" | grep -c '^HI$')"
after=$(cd "$H/cache" && ls -l --time-style=+%s.%N *.so 2>/dev/null | awk '{print $6, $7}')
check_eq "second process: the cached artifact is reused (no new or rewritten artifact)" \
    "$before" "$after"

# A missing plugin file and a plugin whose import is missing fail cleanly.
run=$(LD_LIBRARY_PATH="$T/prefix/lib" "$T/host" "$G/greet.wasm" x 2>&1)
check_contains "a plugin without shout fails the call with Extism's message" "$run" \
    "Function not found: shout"
finish
