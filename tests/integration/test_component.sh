#!/bin/sh
# test_component.sh - components end to end: build the test components with
# jco (tests/components/build.sh), then `kiln inspect` must print the same
# WIT world wasm-tools prints for them (the reference), the embedded core
# modules with their sha256, how each export is lifted, JSON output, and
# clean errors for damaged components.
. "$(dirname "$0")/../lib.sh"

OUT="$KILN_BUILD/components"
if ! blog=$(sh "$KILN_ROOT/tests/components/build.sh" "$OUT" 2>&1); then
    not_ok "build the test components" "$blog"
    finish
    exit 1
fi
ok "build the test components"

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-component.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

# The world block of `kiln inspect`, and of wasm-tools' WIT, without blank lines.
world_of_kiln() { sed -n '/^world root {$/,/^}$/p' | grep -v '^$'; }
world_of_ref() { sed -n '/^world root {$/,/^}$/p' | grep -v '^$'; }

# ---- prims: every primitive type, flags, option, tuple, list ---------------
out=$("$KILN" inspect "$OUT/prims.wasm" 2>&1)
rc=$?
check_eq "inspect prims exits 0" 0 "$rc"
check_eq "prims world is the reference WIT" "$(world_of_ref <"$OUT/prims.ref.wit")" \
    "$(echo "$out" | world_of_kiln)"
check_contains "prims: core modules listed" "$out" "core modules (2):"
sha=$(echo "$out" | sed -n 's/^  module 0: [0-9]* bytes, sha256 \([0-9a-f]*\),.*/\1/p')
check_eq "prims: module 0 sha256 is 64 hex digits" 64 "${#sha}"
check_contains "prims: lift of words" "$out" \
    "words <- core export 'words' of core instance 0 (module 0), memory, realloc, post-return, utf8"
check_contains "prims: lift of add" "$out" "add <- core export 'add' of core instance 0 (module 0), utf8"

# ---- faas: the issue's event world, a wasi:clocks type through `use` -------
out=$("$KILN" inspect "$OUT/faas.wasm" 2>&1)
check_contains "faas: clocks interface imported" "$out" \
    "  import wasi:clocks/wall-clock@0.2.0: interface {
    record datetime {
      seconds: u64,
      nanoseconds: u32,
    }
  }
  use wasi:clocks/wall-clock@0.2.0.{datetime};"
check_contains "faas: export handle" "$out" \
    "  export handle: func(event: handler-event) -> result<_, handler-error>;"
# Every member line and every export line of the reference appears as such.
missing=""
grep -E '^ +[a-z0-9-]+(: [^ ].*|\(.*\))?,$|^ +export ' "$OUT/faas.ref.wit" | sed 's/^ *//' | sort -u >"$T/ref"
echo "$out" | world_of_kiln | sed 's/^ *//' | sort -u >"$T/kiln"
missing=$(comm -23 "$T/ref" "$T/kiln")
check_eq "faas: every reference member and export line shown" "" "$missing"

# ---- JSON ---------------------------------------------------------------
out=$("$KILN" inspect --json "$OUT/faas.wasm" 2>&1)
check_eq "json kind" component "$(printf "%s\n" "$out" | jq -r .kind)"
check_eq "json core module count" 2 "$(printf "%s\n" "$out" | jq '.core_modules | length')"
check_eq "json export lift" handle "$(printf "%s\n" "$out" | jq -r '.exports[0].name')"
check_contains "json wit" "$(printf "%s\n" "$out" | jq -r .wit)" "variant handler-error {"

# ---- damaged components: clean errors naming the offset ---------------------
head -c 200 "$OUT/prims.wasm" >"$T/cut.wasm"
out=$("$KILN" inspect "$T/cut.wasm" 2>&1)
rc=$?
check_eq "truncated component exits 1" 1 "$rc"
check_contains "truncated component message" "$out" "component reader: section of"
printf '\000asm\015\000\001\000\007\003\001\162\000' >"$T/empty-record.wasm"
out=$("$KILN" inspect "$T/empty-record.wasm" 2>&1)
check_contains "empty record refused" "$out" "a record needs at least one member at offset"
printf '\000asm\015\000\001\000\014\001\000' >"$T/values.wasm"
out=$("$KILN" inspect "$T/values.wasm" 2>&1)
check_contains "value section is unsupported, said so" "$out" \
    "value definitions at offset 8; Kiln does not implement this part"

# ---- kiln call: the Canonical ABI through AOT-compiled core modules ------------
# call_is NAME EXPECTED ARGS...: stdout of `kiln call ARGS` is EXPECTED and it exits 0.
call_is() {
    n=$1 want=$2
    shift 2
    got=$("$KILN" call "$@" 2>&1)
    rc=$?
    [ "$rc" -ne 0 ] && got="exit $rc: $got"
    check_eq "$n" "$want" "$got"
}
P="$OUT/prims.wasm"
call_is "call add" 42 "$P" add --input-json '[2, 40]'
ALL='{"b":true,"s8v":-128,"u8v":255,"s16v":-2,"u16v":65535,"s32v":-2147483648,"u32v":4294967295,"s64v":-9223372036854775808,"u64v":"18446744073709551615","f32v":1.5,"f64v":"nan","c":"😀","s":"héllo"}'
call_is "call echo: every primitive, 14 flat params, result in memory" "$ALL" "$P" echo --input-json "[$ALL]"
call_is "call option some" 42 "$P" maybe-double --input-json '[21]'
call_is "call option none" null "$P" maybe-double --input-json '[null]'
call_is "call flags" '["write"]' "$P" toggle --input-json '[["read","exec"]]'
call_is "call tuple" '["seven",7]' "$P" swap --input-json '[[7, "seven"]]'
call_is "call list<string> with post-return" '["the","quick","brown","fox"]' "$P" words \
    --input-json '["  the quick  brown fox "]'
F="$OUT/faas.wasm"
EV='"event-timestamp":{"seconds":1700000000,"nanoseconds":5},"event-version":"1","source":"kv"'
call_is "faas: ok" '{"ok":null}' "$F" handle \
    --input-json "[{\"event-type\":\"object-added\",$EV,\"key\":\"k\",\"payload\":[1,2]}]"
call_is "faas: unsupported(event-type)" '{"error":{"unsupported":"scheduled"}}' "$F" handle \
    --input-json "[{\"event-type\":\"scheduled\",$EV,\"key\":\"k\",\"payload\":[]}]"
call_is "faas: invalid(string)" '{"error":{"invalid":"empty key"}}' "$F" handle \
    --input-json "[{\"event-type\":\"message\",$EV,\"key\":\"\",\"payload\":[]}]"
call_is "faas: failed(string)" '{"error":{"failed":"no"}}' "$F" handle \
    --input-json "[{\"event-type\":\"message\",$EV,\"key\":\"k\",\"payload\":[33,110,111]}]"
# Bad input: exit 1 with the JSON path.
out=$("$KILN" call "$F" handle --input-json '[{"event-type":"nope"}]' 2>&1)
check_eq "bad enum label exits 1" 1 $?
check_contains "bad enum label named by path" "$out" 'input $[0].event-type: not one of the enum'
out=$("$KILN" call "$P" add --input-json '[1, 2147483648]' 2>&1)
check_contains "s32 out of range refused" "$out" 'input $[1]: integer out of range (expected s32)'
out=$("$KILN" call "$P" add --input-json '[1]' 2>&1)
check_contains "argument count checked" "$out" "takes 2 arguments, --input-json has 1"
out=$("$KILN" call "$P" nope 2>&1)
check_contains "unknown export" "$out" "has no exported function 'nope'"
# Guests breaking the Canonical ABI: clean traps (exit 134) naming the rule.
TR="$OUT/traps.wasm"
for case in "bad-enum|enum discriminant 9 out of range" "bad-char|char 0xd800 is not a Unicode scalar" \
    "bad-string|is not valid UTF-8" "out-of-bounds|out of bounds (memory is" \
    "misaligned|is not aligned to 4"; do
    e=${case%%|*}
    out=$("$KILN" call "$TR" "$e" 2>&1)
    rc=$?
    check_eq "trap $e exits 134" 134 "$rc"
    check_contains "trap $e message" "$out" "canonical ABI: "
    check_contains "trap $e rule" "$out" "${case#*|}"
done

# ---- imports: the component graph, a host function of the registry, WASI --
# Four core modules (the guest, jco's preview-1 reactor adapter, the shim
# and fixup modules routing the adapter's imports through a funcref table).
out=$("$KILN" inspect "$OUT/imports.wasm" 2>&1)
check_contains "imports: four core modules" "$out" "core modules (4):"
check_contains "imports: kiln:cli/log imported" "$out" "import kiln:cli/log@0.1.0: interface {"
"$KILN" call "$OUT/imports.wasm" greet --input-json '["Ada"]' >"$T/out" 2>"$T/err"
rc=$?
check_eq "imports: greet exits 0" 0 "$rc"
check_eq "imports: greet result" '"hello, Ada"' "$(cat "$T/out")"
check_contains "imports: kiln:cli/log#log reached the host" "$(cat "$T/err")" "log: greeting Ada"
check_contains "imports: guest printf through WASI 0.2 (to stderr under call)" \
    "$(cat "$T/err")" "stdout: greeting Ada"
# ---- nested components (tests/components/nested/*.wat) ------------------------
# A root instantiating a component it defines, passing it a host import, and
# calling its export from the root's own core module (component to component:
# the string is lifted out of one memory and lowered into the other).
out=$("$KILN" inspect "$OUT/greet_chain.wasm" 2>&1)
check_contains "nested: the root's world" "$out" "export run: func(name: string) -> string;"
check_contains "nested: the nested module is listed" "$out" "core modules (2):"
check_contains "nested: greet is the nested component's lift" "$out" \
    "greet <- core export 'greet' of core instance"
"$KILN" call "$OUT/greet_chain.wasm" greet --input-json '["Ada"]' >"$T/out" 2>"$T/err"
check_eq "nested: greet (an export of the nested instance)" '"hello, Ada"' "$(cat "$T/out")"
check_contains "nested: its import was the root's kiln:cli/log" "$(cat "$T/err")" "Ada"
out=$("$KILN" call "$OUT/greet_chain.wasm" run --input-json '["Zoë 😀"]' 2>/dev/null)
check_eq "nested: run calls greet component to component" '"hello, Zoë 😀"' "$out"
out=$("$KILN" call "$OUT/twice.wasm" run 2>&1)
check_eq "nested: one component instantiated twice keeps two states" 21 "$out"
out=$("$KILN" call "$OUT/twice.wasm" bump-a 2>&1)
check_eq "nested: a fresh instance per call" 1 "$out"
# Resources across the boundary: the nested component's imported resource
# type is the one it is given, and a borrow lowered into a callee must be
# dropped by it before it returns (the Canonical ABI's borrow scope).
out=$("$KILN" call "$OUT/borrow.wasm" run-good 2>&1)
check_eq "nested: a root resource lent to a nested component, its borrow dropped" 7 "$out"
out=$("$KILN" call "$OUT/borrow.wasm" run-keep 2>&1)
check_eq "nested: a callee keeping a borrow traps (134)" 134 $?
check_contains "nested: the borrow-scope trap names the callee" "$out" \
    "canonical ABI: 'keep' returned without dropping 1 borrowed handle it was given"
out=$("$KILN" call "$OUT/host_borrow.wasm" run 2>&1)
check_eq "nested: a host pollable lent to a nested component given wasi:io/poll" 1 "$out"
out=$("$KILN" call "$OUT/impl.wasm" run 2>&1)
check_eq "nested: a borrow reaches the implementer as its rep; drop runs its destructor" 421 "$out"
out=$("$KILN" call "$OUT/impl_twice.wasm" run 2>&1)
check_eq "nested: a resource-defining component instantiated twice exits 1" 1 $?
check_contains "nested: ... and says why and what to do" "$out" \
    "instantiated more than once (Kiln would share the type between the instances"
out=$("$KILN" inspect "$OUT/missing_arg.wasm" 2>&1)
check_eq "nested: an import not given exits 1" 1 $?
check_contains "nested: the missing import is named" "$out" \
    "its import 'log' is not given when it is instantiated"

# Fresh per call: a second call sees the same output, nothing carried over.
out=$("$KILN" call "$OUT/imports.wasm" greet --input-json '["Bob"]' 2>/dev/null)
check_eq "imports: second call" '"hello, Bob"' "$out"
# A host import the registry does not provide is named.
sed 's/kiln:cli\/log@0.1.0/kiln:cli\/xyz@0.1.0/g' "$OUT/imports.wasm" >"$T/missing.wasm"
out=$("$KILN" call "$T/missing.wasm" greet --input-json '["x"]' 2>&1)
rc=$?
check_eq "imports: missing host import exits 1" 1 "$rc"
check_contains "imports: missing host import named" "$out" "kiln:cli/xyz@0.1.0#log is not provided"

# ---- res: WASI 0.2 stream resources by hand, and the handle-table traps ---
"$KILN" call "$OUT/res.wasm" hello >"$T/out" 2>"$T/err"
check_eq "res: own from get-stdout, borrowed by a write, dropped" "0" "$(cat "$T/out")"
check_eq "res: the write reached the stream" "hello via wasi:io/streams" "$(cat "$T/err")"
for case in "drop-twice|output-stream handle 1 is not live" \
    "use-after-drop|output-stream handle 1 is not live" \
    "bad-handle|output-stream handle 12345 is not live" \
    "wrong-type|handle 1 is a input-stream, not a output-stream"; do
    e=${case%%|*}
    out=$("$KILN" call "$OUT/res.wasm" "$e" 2>&1)
    rc=$?
    check_eq "res: $e traps (134)" 134 "$rc"
    check_contains "res: $e message" "$out" "canonical ABI: ${case#*|}"
done

# ---- counter: a resource the component defines, resource.new/rep/drop -----
out=$("$KILN" call "$OUT/counter.wasm" selftest 2>&1)
check_eq "counter: new/rep/drop keep reps, reuse slots, drop runs the destructor" "0" "$out"
for e in drop-twice rep-after-drop; do
    out=$("$KILN" call "$OUT/counter.wasm" "$e" 2>&1)
    rc=$?
    check_eq "counter: $e traps (134)" 134 "$rc"
    check_contains "counter: $e message" "$out" "canonical ABI: resource handle 1 is not live"
done

# ---- kiln run: a C program as a wasi:cli/command component ------------------
"$KILN" run --env GREETING=hi "$OUT/hello_cmd.wasm" one two >"$T/out" 2>"$T/err"
rc=$?
check_eq "run command component exits 0" 0 "$rc"
check_eq "run: stdout with arguments" "hello from a component, 3 args: hello_cmd.wasm one two" \
    "$(cat "$T/out")"
check_eq "run: stderr with the environment" "greeting=hi" "$(cat "$T/err")"
out=$(printf 'line 1\nline 2\n' | "$KILN" run "$OUT/hello_cmd.wasm" stdin 2>/dev/null)
check_contains "run: stdin echoed" "$out" "line 1
line 2
read 14 bytes"
"$KILN" run "$OUT/hello_cmd.wasm" fail >/dev/null 2>&1
check_eq "run: a failing main exits 1 (wasi:cli/exit carries ok/err only)" 1 "$?"
out=$("$KILN" run "$OUT/prims.wasm" 2>&1)
rc=$?
check_eq "run: a component without wasi:cli/run exits 1" 1 "$rc"
check_contains "run: says it is not a command" "$out" "is not a command"
out=$("$KILN" run --timeout 1 "$OUT/hello_cmd.wasm" stdin 2>&1 </dev/zero | tail -n 1)
check_contains "run: the timeout applies to components" "$out" "timeout"

# ---- WASI 0.2: wasi:filesystem over the preopens, pollables, exit codes ------
# C programs through the preview-1 command adapter, which turns wasi-libc's
# calls into wasi:filesystem / wasi:io / wasi:clocks imports; Kiln answers
# them with preview 1's own descriptor table and sandbox (cm_wasi_fs.c).
krun() { R=$("$KILN" run "$@" 2>"$T/err"); RC=$?; ERR=$(cat "$T/err"); }
mkdir -p "$T/d"
krun --dir "$T/d::/d" "$OUT/fs_cmd.wasm" write /d/a.txt hello append /d/a.txt " world" \
    cat /d/a.txt
check_eq "fs: write, append, read back in a preopen" "write /d/a.txt: ok
append /d/a.txt: ok
cat /d/a.txt: hello world" "$R"
check_eq "fs: the host sees the file" "hello world" "$(cat "$T/d/a.txt")"
krun --dir "$T/d::/d" "$OUT/fs_cmd.wasm" mkdir /d/sub rename /d/a.txt /d/sub/b.txt ls /d \
    ls /d/sub stat /d/sub/b.txt stat /d/sub
check_eq "fs: mkdir, rename, directory listing, stat" "mkdir /d/sub: ok
rename /d/a.txt: ok
ls /d: sub/
ls /d/sub: b.txt
stat /d/sub/b.txt: file 11 bytes
stat /d/sub: dir 4096 bytes" "$R"
check_eq "fs: rename seen by the host" "hello world" "$(cat "$T/d/sub/b.txt" 2>&1)"
krun --dir "$T/d::/d" "$OUT/fs_cmd.wasm" rm /d/sub/b.txt rmdir /d/sub ls /d cat /d/a.txt
check_contains "fs: unlink and rmdir" "$R" "rm /d/sub/b.txt: ok
rmdir /d/sub: ok
ls /d:"
check_contains "fs: a missing file is no-entry (ENOENT)" "$R" \
    "cat /d/a.txt: error: No such file or directory"
check_eq "fs: the preopen is empty again" "" "$(ls -A "$T/d")"

krun --dir "$T/d::/data" "$OUT/fileio_cmd.wasm" /data
check_eq "fileio as a component: exit 0" 0 "$RC"
check_contains "fileio as a component: every step of preview 1's file test" "$R" "fileio: ok"
check_eq "fileio as a component: cleaned up after itself" "" "$(ls -A "$T/d")"

mkdir -p "$T/ro/subdir"
printf 'data\n' >"$T/ro/existing"
before=$(ls -lR --time-style=+%s "$T/ro")
krun --dir-ro "$T/ro::/ro" "$OUT/fileio_cmd.wasm" /ro ro
check_eq "read-only preopen: reads work, every write refused (exit 0)" 0 "$RC"
check_contains "read-only preopen: read-only (EROFS)" "$R" "Read-only file system"
check_contains "read-only preopen: nothing allowed" "$R" "16 refused, 0 allowed"
check_eq "read-only preopen: directory unchanged" "$before" "$(ls -lR --time-style=+%s "$T/ro")"
krun --dir-ro "$T/ro::/ro" "$OUT/fs_cmd.wasm" cat /ro/existing write /ro/new x
check_contains "read-only preopen: fopen(w) refused" "$R" \
    "write /ro/new: error: Read-only file system"

mkdir -p "$T/jail/inner"
ln -s /etc "$T/jail/abs_link"
krun --dir "$T/jail::/jail" "$OUT/escape_cmd.wasm" /jail abs_link
check_eq "escape as a component: every attempt fails (exit 0)" 0 "$RC"
case "$R" in *ESCAPED*) not_ok "escape as a component: nothing escaped" "$R" ;;
*) ok "escape as a component: nothing escaped" ;; esac
check_contains "escape: .. refused by the host (not-permitted)" "$R" \
    "raw ../etc/passwd            refused (Operation not permitted)"
check_contains "escape: symlinks out refused" "$R" \
    "raw abs symlink              refused (Operation not permitted)"
check_contains "escape: summary" "$R" "escape: 0 escaped"
check_eq "escape: nothing created next to the preopen" 0 "$(ls "$T" | grep -c kiln-escape)"

krun "$OUT/fs_cmd.wasm" cat /etc/passwd
check_contains "no preopen: no access" "$R" "cat /etc/passwd: error: Capabilities insufficient"
check_eq "no preopen: exit 1 (main returned 2)" 1 "$RC"

t0=$(date +%s%N)
krun "$OUT/fs_cmd.wasm" sleep 200
ms=$((($(date +%s%N) - t0) / 1000000))
check_contains "sleep: nanosleep through subscribe-duration + poll" "$R" "slept 200 ms"
if [ "$ms" -ge 150 ]; then ok "sleep: 200 ms really waits (${ms} ms >= 150)"; else
    not_ok "sleep: 200 ms really waits" "returned after ${ms} ms"; fi
krun --timeout 300 "$OUT/fs_cmd.wasm" sleep 5000
check_eq "sleep: cut by the timeout (exit 124)" 124 "$RC"
check_contains "sleep: the timeout is reported" "$ERR" "timeout"

krun "$OUT/fs_cmd.wasm" exit 0
check_eq "exit(0) through the adapter: 0" 0 "$RC"
krun "$OUT/fs_cmd.wasm" exit 3
check_eq "exit(3) through the adapter: 1 (the adapter calls exit(err))" 1 "$RC"
for c in "code 3:3" "code 0:0" "code 255:255" "ok:0" "err:1" "return-err:1" "return-ok:0"; do
    krun "$OUT/exitcode.wasm" ${c%:*}
    check_eq "wasi:cli/exit: ${c%:*} exits ${c#*:}" "${c#*:}" "$RC"
done
R=$(printf 'in put\n' | "$KILN" run "$OUT/fs_cmd.wasm" echo 2>/dev/null)
check_eq "stdin to stdout through the stdio streams" "in put" "$R"
(sleep 1) | "$KILN" run --timeout 200 "$OUT/fs_cmd.wasm" echo >/dev/null 2>&1
check_eq "a read blocked on a stdin pipe is cut by the timeout (124)" 124 "$?"

# Compiling a component as a core module still refuses, pointing at inspect.
out=$("$KILN" compile "$OUT/prims.wasm" 2>&1)
rc=$?
check_eq "kiln compile refuses a component" 1 "$rc"
check_contains "compile says what to use instead" "$out" "kiln inspect"

finish
