#!/bin/sh
# `make run`: compile the bundled examples ahead of time and run them.
set -e
BUILD=${1:-build}
KILN="$BUILD/kiln"
EX="$BUILD/examples"
echo "== kiln inspect hello.wasm"
"$KILN" inspect "$EX/hello.wasm"
echo
echo "== kiln compile hello.wasm"
"$KILN" compile "$EX/hello.wasm"
echo
echo "== kiln run hello.wasm Kiln"
"$KILN" run "$EX/hello.wasm" Kiln
echo
printf '%s\n' "== printf 'one two\\nthree\\n' | kiln run wordcount.wasm"
printf 'one two\nthree\n' | "$KILN" run "$EX/wordcount.wasm"
echo
notes=$(mktemp -d)
echo "== kiln run --dir $notes::/data notes.wasm 'remember the milk'"
"$KILN" run --dir "$notes::/data" "$EX/notes.wasm" "remember the milk"
rm -rf "$notes"
