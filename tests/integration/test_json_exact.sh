#!/bin/sh
# test_json_exact.sh - a guest's JSON reaches the client as written (issue 10,
# "Faithful JSON"): an Otoroshi WasmBackend's body_json keeps numbers jansson
# would rewrite (0.9678663636363636, 431952.32) or refuse (integers beyond
# int64), byte for byte; a numeric header value keeps its text; an Extism
# error's newlines, quotes and non-ASCII text survive in the JSON error body
# (escaped, not replaced by '?') and stay on one line in the server log; output
# that is not a JSON object is a 502 naming the function and the reason.
# Guest: tests/guests_extism/json_numbers.c. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

XG=$KILN_BUILD/guests_extism
if ! sh "$ROOT/tests/guests_extism/build.sh" "$XG" >"$T/xbuild.log" 2>&1 ||
    [ ! -f "$XG/json_numbers.wasm" ]; then
    if [ ! -f "$XG/json_numbers.wasm" ]; then
        not_ok "json_numbers.c builds" "$(tail -n 5 "$T/xbuild.log")"
        finish
        exit 1
    fi
fi
ok "json_numbers.c builds"

D=$T/fns
mkdir -p "$D"
cp "$XG/json_numbers.wasm" "$D/"
cat >"$D/kiln.yaml" <<EOF
server: {threads: 2}
functions:
  nums:
    module: json_numbers.wasm
    abi: otoroshi
    routes: [/numbers, /fail, /notjson, /array]
  xfail:
    module: json_numbers.wasm
    abi: extism
    export: fail_text
    routes: [/xfail]
EOF
if ! serve_start json --config "$D/kiln.yaml"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts"

# --- body_json: the numbers as the guest wrote them --------------------------------
NUMBERS='{"p":0.9678663636363636,"v":431952.32,"big":123456789012345678901234567890,"neg":-99999999999999999999999,"huge":1.5e300,"e":1.0E+2,"z":-0.0,"nested":[[1.10,[2.50e-3,[]]],{"a":[0.1,{"b":-0}]}],"s":"caf\u00e9 \"q\""}'
req "$URL/numbers"
check_eq "numbers: 200 (an integer beyond int64 no longer drops the document)" 200 "$CODE"
check_eq "numbers: the body is exactly the guest's body_json" "$NUMBERS" "$BODY"
check_eq "numbers: no byte more (length)" "${#NUMBERS}" "$(wc -c <"$T/body" | tr -d ' ')"
check_eq "numbers: Content-Type from the guest" "application/json" "$(header Content-Type)"
check_eq "numbers: a numeric header keeps its text" "0.9678663636363636" "$(header X-Ratio)"
# The client's view: JSON that a strict parser reads back to the same values.
if command -v python3 >/dev/null 2>&1; then
    got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]),parse_float=str,parse_int=str); print(d["p"], d["v"], d["big"], d["neg"])' "$T/body" 2>&1)
    check_eq "numbers: a JSON parser reads the exact values" \
        "0.9678663636363636 431952.32 123456789012345678901234567890 -99999999999999999999999" "$got"
fi

# --- error texts: kept, escaped in JSON, one line in the log -------------------------
E_UTF8=$(printf 'caf\303\251 \342\202\254 end')
req "$URL/fail"
check_eq "otoroshi failure: 400 (Otoroshi's answer to a failed call)" 400 "$CODE"
check_contains "otoroshi failure: newlines escaped (backslash-n)" "$BODY" 'line one\nline \"two\"\n'
check_contains "otoroshi failure: non-ASCII text intact" "$BODY" "$E_UTF8"
case "$BODY" in *'?'*) not_ok "otoroshi failure: no '?' replacements" "$BODY" ;;
*) ok "otoroshi failure: no '?' replacements" ;; esac
check "otoroshi failure: the body is valid JSON" python3 -c \
    'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert "line one\nline \"two\"\ncaf\u00e9 \u20ac end" in e, e' \
    "$T/body"

req "$URL/xfail"
check_eq "extism failure: 500" 500 "$CODE"
check_contains "extism failure: names the function" "$BODY" '"function":"xfail"'
check_contains "extism failure: newlines escaped (backslash-n)" "$BODY" 'line one\nline \"two\"\n'
check_contains "extism failure: non-ASCII text intact" "$BODY" "$E_UTF8"
check "extism failure: the body is valid JSON with the text" python3 -c \
    'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert "line one\nline \"two\"\ncaf\u00e9 \u20ac end" in e, e' \
    "$T/body"
check_contains "extism failure: logged on one line" "$(cat "$LOG")" \
    '[xfail] 500: '
check_contains "extism failure: the log escapes the newlines" "$(grep '\[xfail\] 500' "$LOG")" \
    'line one\nline "two"\ncaf'

# --- output that cannot be used: 502 naming the function and the reason ------------
req "$URL/notjson"
check_eq "not JSON: 502" 502 "$CODE"
check_contains "not JSON: names the function" "$BODY" '"function":"nums"'
check_contains "not JSON: says why" "$BODY" "the plugin's output is not JSON: "
check_contains "not JSON: says where" "$BODY" " at byte "
check_contains "not JSON: logged" "$(cat "$LOG")" "[nums] 502: "
req "$URL/array"
check_eq "array: 502" 502 "$CODE"
check_contains "array: says why" "$BODY" "the plugin's output is a JSON array, not an object"

serve_stop
check_eq "server stops cleanly" 0 "$SRC"
finish
