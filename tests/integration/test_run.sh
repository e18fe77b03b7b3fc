#!/bin/sh
# test_run.sh - `kiln run` end to end on the guests in tests/guests/: stdio,
# args/env, file I/O and the preopen sandbox, traps and exit codes, limits,
# import checking and the command line. Ends with "N passed, N failed".
ROOT=${KILN_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
KILN_BUILD=${KILN_BUILD:-$ROOT/build}
KILN=${KILN:-$KILN_BUILD/kiln}
export KILN_HOME=${KILN_HOME:-$KILN_BUILD/test-home}
. "$ROOT/tests/lib.sh"

G=$KILN_BUILD/guests
sh "$ROOT/tests/guests/build.sh" "$G" >/dev/null 2>&1
T=$(mktemp -d /tmp/kiln-run-test-XXXXXX)
trap 'rm -rf "$T"' EXIT

# krun ARGS...: run `kiln run ARGS` with stdin from /dev/null; sets OUT, ERR, RC.
krun() {
    "$KILN" run "$@" >"$T/out" 2>"$T/err" </dev/null
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

# within_ms NAME ELAPSED LIMIT: passes when ELAPSED < LIMIT (milliseconds).
within_ms() {
    if [ "$2" -lt "$3" ]; then ok "$1 ($2 ms)"; else not_ok "$1" "took $2 ms"; fi
}

# --- basics ---------------------------------------------------------------
krun "$G/hello.wasm"
check_eq "hello: output" "hello, world" "$OUT"
check_eq "hello: exit 0" 0 "$RC"
check_eq "hello: quiet stderr" "" "$ERR"

KILN_TEST_PASS=from-host
export KILN_TEST_PASS
krun --env FOO=bar --env EMPTY= --env KILN_TEST_PASS --env=EQ=a=b "$G/args_env.wasm" one "two words"
check_eq "args: exit 0" 0 "$RC"
check_contains "args: argc" "$OUT" "argc=3"
check_contains "args: argv[0] is the module file name" "$OUT" "argv[0]=args_env.wasm"
check_contains "args: argv[1]" "$OUT" "argv[1]=one"
check_contains "args: argv with spaces" "$OUT" "argv[2]=two words"
check_contains "env: KEY=VALUE" "$OUT" "env FOO=bar"
check_contains "env: empty value" "$OUT" "env EMPTY="
check_contains "env: --env KEY copies the host value" "$OUT" "env KILN_TEST_PASS=from-host"
check_contains "env: --env=K=V form" "$OUT" "env EQ=a=b"
case "$OUT" in *"env HOME="* | *"env PATH="*) not_ok "env: host environment not inherited" "$OUT" ;;
*) ok "env: host environment not inherited" ;; esac

krun "$G/args_env.wasm" --env X=1 -O0
check_contains "options stop at the module path" "$OUT" "argv[1]=--env"
check_contains "options stop at the module path (2)" "$OUT" "argv[3]=-O0"

out=$(printf 'line one\nline two\n' | "$KILN" run "$G/cat.wasm")
check_eq "cat: stdin to stdout" "line one
line two" "$out"
head -c 300000 /dev/urandom >"$T/rand"
"$KILN" run "$G/cat.wasm" <"$T/rand" >"$T/rand.out"
check "cat: 300 kB of binary data round-trips" cmp "$T/rand" "$T/rand.out"
out=$("$KILN" run "$G/cat.wasm" <"$T/rand" 2>/dev/null | head -c 10 | wc -c)
check_eq "cat: closed stdout pipe does not kill the host" 10 "$out"

# --- files and the sandbox ---------------------------------------------------
mkdir -p "$T/data"
krun --dir "$T/data::/data" "$G/fileio.wasm" /data
check_eq "fileio: exit 0" 0 "$RC"
check_contains "fileio: all steps" "$OUT" "fileio: ok"
check_eq "fileio: cleaned up after itself" "" "$(ls -A "$T/data")"

krun --dir "$T/data" "$G/fileio.wasm" "$T/data"
check_contains "fileio: --dir without ::GUEST uses the host path" "$OUT" "fileio: ok"

mkdir -p "$T/jail/inner"
ln -s /etc "$T/jail/abs_link"
krun --dir "$T/jail::/jail" "$G/escape.wasm" /jail abs_link
check_eq "escape: every attempt fails (exit 0)" 0 "$RC"
case "$OUT" in *ESCAPED*) not_ok "escape: nothing escaped" "$OUT" ;;
*) ok "escape: nothing escaped" ;; esac
check_contains "escape: ENOTCAPABLE reported" "$OUT" "Capabilities insufficient"
check_contains "escape: summary" "$OUT" "escape: 0 escaped"
n=$(ls "$T" | grep -c kiln-escape)
check_eq "escape: nothing created next to the preopen" 0 "$n"

mkdir -p "$T/ro/subdir"
printf 'data\n' >"$T/ro/existing"
before=$(ls -lR --time-style=+%s "$T/ro")
krun --dir-ro "$T/ro::/ro" "$G/fileio.wasm" /ro ro
check_eq "read-only: reads work, every write refused (exit 0)" 0 "$RC"
check_contains "read-only: EROFS" "$OUT" "Read-only file system"
check_contains "read-only: summary" "$OUT" "0 allowed"
check_eq "read-only: directory unchanged" "$before" "$(ls -lR --time-style=+%s "$T/ro")"

krun --dir "$T/nonexistent-dir" "$G/hello.wasm"
check_eq "missing --dir: exit 1" 1 "$RC"
check_contains "missing --dir: names it" "$ERR" "nonexistent-dir"

# --- traps, limits and exit codes ----------------------------------------------
for k in "oob:out of bounds" "div0:integer divide by zero" "int_overflow:integer overflow" \
    "invalid_conversion:invalid conversion" "unreachable:unreachable" \
    "indirect:indirect call"; do
    kind=${k%%:*}
    msg=${k#*:}
    krun "$G/traps.wasm" "$kind"
    check_eq "trap $kind: exit 134" 134 "$RC"
    check_contains "trap $kind: message" "$ERR" "kiln run: traps.wasm: trap: $msg"
done

krun "$G/traps.wasm" stack
check_eq "trap stack: exit 134" 134 "$RC"
check_contains "trap stack: message" "$ERR" "call stack exhausted"

start=$(date +%s%N)
krun --timeout 200 "$G/traps.wasm" loop
ms=$((($(date +%s%N) - start) / 1000000))
check_eq "timeout: exit 124" 124 "$RC"
check_contains "timeout: message" "$ERR" "timeout"
within_ms "timeout: stopped within 5 s" "$ms" 5000

start=$(date +%s%N)
krun "$G/traps.wasm" sleep 150
ms=$((($(date +%s%N) - start) / 1000000))
check_eq "sleep: poll_oneoff clock returns" "slept" "$OUT"
if [ "$ms" -ge 150 ]; then ok "sleep: slept at least 150 ms ($ms)"
else not_ok "sleep: slept at least 150 ms" "$ms ms"; fi

start=$(date +%s%N)
krun --timeout 300 "$G/traps.wasm" sleep 60000
ms=$((($(date +%s%N) - start) / 1000000))
check_eq "timeout during sleep: exit 124" 124 "$RC"
within_ms "timeout during sleep: prompt" "$ms" 5000

mkfifo "$T/fifo"
sleep 8 >"$T/fifo" &
writer=$!
start=$(date +%s%N)
"$KILN" run --timeout 300 "$G/cat.wasm" <"$T/fifo" >/dev/null 2>"$T/err"
RC=$?
ms=$((($(date +%s%N) - start) / 1000000))
kill "$writer" 2>/dev/null
check_eq "timeout while blocked on stdin: exit 124" 124 "$RC"
within_ms "timeout while blocked on stdin: prompt" "$ms" 5000

krun --max-memory 4MiB "$G/traps.wasm" grow
check_eq "grow: exit 0" 0 "$RC"
got=$(echo "$OUT" | sed -n 's/^grow: got \([0-9]*\) bytes$/\1/p')
if [ -n "$got" ] && [ "$got" -gt 0 ] && [ "$got" -lt 4194304 ]; then
    ok "grow: --max-memory 4MiB caps the heap ($got bytes)"
else
    not_ok "grow: --max-memory 4MiB caps the heap" "$OUT $ERR"
fi

for code in 0 3 42 255; do
    krun "$G/exitcode.wasm" "$code"
    check_eq "exit code $code passes through" "$code" "$RC"
done
krun "$G/exitcode.wasm" 256
check_eq "exit code 256 is not success (255)" 255 "$RC"

# --- modules that cannot run ---------------------------------------------------
export KILN_HOME_SAVED="$KILN_HOME"
KILN_HOME="$T/home-bad"
krun "$G/badimport.wasm"
check_eq "unknown import: exit 1" 1 "$RC"
check_contains "unknown import: names env.kiln_no_such_fn" "$ERR" "env.kiln_no_such_fn"
check_contains "unknown import: names nonexistent_module.frobnicate" "$ERR" \
    "nonexistent_module.frobnicate"
n=$(find "$T/home-bad" -name '*.so' 2>/dev/null | wc -l)
check_eq "unknown import: nothing compiled" 0 "$n"
KILN_HOME="$KILN_HOME_SAVED"

krun "$G/reactor.wasm"
check_eq "reactor: exit 1" 1 "$RC"
check_contains "reactor: explained" "$ERR" "reactor"

krun "$T/does-not-exist.wasm"
check_eq "missing module: exit 1" 1 "$RC"
check_contains "missing module: names the file" "$ERR" "does-not-exist.wasm"

# --- command line ------------------------------------------------------------------
krun --help
check_eq "--help: exit 0" 0 "$RC"
check_contains "--help: usage" "$OUT" "usage: kiln run"
krun --bogus "$G/hello.wasm"
check_eq "unknown flag: exit 2" 2 "$RC"
check_contains "unknown flag: named" "$ERR" "--bogus"
krun
check_eq "no module: exit 2" 2 "$RC"
krun --timeout abc "$G/hello.wasm"
check_eq "bad --timeout: exit 2" 2 "$RC"
krun --max-memory lots "$G/hello.wasm"
check_eq "bad --max-memory: exit 2" 2 "$RC"
krun --dir
check_eq "--dir without a value: exit 2" 2 "$RC"
krun -O1 "$G/hello.wasm"
check_eq "-O1 works" "hello, world" "$OUT"

finish
