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
echo
echo "== kiln call greet_extism.wasm greet --input Kiln --config prefix=Hello"
"$KILN" call "$EX/serve/greet_extism.wasm" greet --input Kiln --config prefix=Hello
echo
echo
echo "== kiln serve --config $EX/serve/kiln.yaml   (Ctrl-C to stop)"
echo "   try:  curl http://127.0.0.1:8080/hello/you"
echo "         curl -X POST -d Kiln http://127.0.0.1:8080/api/greet"
exec "$KILN" serve --config "$EX/serve/kiln.yaml"
