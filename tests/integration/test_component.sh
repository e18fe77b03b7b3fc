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

# Compiling a component as a core module still refuses, pointing at inspect.
out=$("$KILN" compile "$OUT/prims.wasm" 2>&1)
rc=$?
check_eq "kiln compile refuses a component" 1 "$rc"
check_contains "compile says what to use instead" "$out" "kiln inspect"

finish
