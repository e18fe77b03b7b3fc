#!/bin/sh
# test_live_dir.sh - `kiln serve DIR` serves what the directory holds, live:
# a new module is served without a signal, an overwrite becomes the new
# version, a half-written file is never compiled (the old version serves
# until the write completes), a broken module never replaces a working one,
# a removed one is undeployed, a sidecar NAME.yaml carries settings (routes,
# env, abi), and NAME.localhost routes by host. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

D=$T/live
mkdir -p "$D"
if ! serve_start live "$D"; then
    not_ok "server starts on an empty directory" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts on an empty directory"
expect "nothing served yet" 404 "" "$URL/hello"

# wait_for NAME STATUS SUBSTR URL: poll (up to 20 s) until the answer matches.
wait_for() {
    i=0
    while [ $i -lt 200 ]; do
        req "$4"
        if [ "$CODE" = "$2" ] && case "$BODY" in *"$3"*) true ;; *) false ;; esac; then
            ok "$1"
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    not_ok "$1" "status $CODE, body: $BODY"
}

cp "$G/cgi_hello.wasm" "$D/hello.wasm"
wait_for "a new module is served without a signal" 200 "hello from /hello" "$URL/hello"
check_contains "the log says why it reloaded" "$(cat "$LOG")" "functions changed"

# A half-written module: the first bytes, the file left open for writing.
python3 - "$D/hello.wasm" "$G/cgi_echo.wasm" <<'PY' &
import sys, time
data = open(sys.argv[2], "rb").read()
with open(sys.argv[1], "wb") as f:
    f.write(data[:100]); f.flush()
    time.sleep(2)                       # a slow writer: open, incomplete
    f.write(data[100:])
PY
WRITER=$!
sleep 1
expect "while the file is half-written the old version serves" 200 "hello from" "$URL/hello"
wait $WRITER
wait_for "once the write completes the new version serves" 200 "GATEWAY_INTERFACE" "$URL/hello"
if grep -q "hello.wasm.*truncated\|hello.wasm.*wasm reader" "$LOG"; then
    not_ok "the half-written module was never compiled" "$(grep 'wasm reader' "$LOG")"
else ok "the half-written module was never compiled"; fi

# A broken module never replaces a working one.
head -c 60 "$G/cgi_hello.wasm" >"$D/hello.tmp" && mv "$D/hello.tmp" "$D/hello.wasm"
sleep 1.5
expect "a broken module: the previous version keeps serving" 200 "GATEWAY_INTERFACE" "$URL/hello"
check_contains "a broken module: the refusal is logged" "$(cat "$LOG")" "previous version keeps serving"
cp "$G/cgi_hello.wasm" "$D/hello.tmp" && mv "$D/hello.tmp" "$D/hello.wasm"
wait_for "a fixed module (renamed in) serves again" 200 "hello from /hello" "$URL/hello"

# Sidecar settings.
printf 'routes: [/greet, {path: /g2, methods: [POST]}]\nenv: {GREETING: sidecar}\n' >"$D/echo.yaml"
cp "$G/cgi_echo.wasm" "$D/echo.tmp" && mv "$D/echo.tmp" "$D/echo.wasm"
wait_for "a sidecar's routes are served" 200 "GATEWAY_INTERFACE" "$URL/greet"
req "$URL/greet"
check_contains "a sidecar's env reaches the guest" "$BODY" "GREETING=sidecar"
expect "a sidecar's methods apply" 405 "" "$URL/g2"
expect "with routes in a sidecar there is no /NAME route" 404 "" "$URL/echo"
printf '{"routes": ["/j"], "env": {"GREETING": "json"}}\n' >"$D/echo.json"
rm "$D/echo.yaml"
wait_for "a JSON sidecar works the same" 200 "GREETING=json" "$URL/j"
# A broken module with new settings: the whole previous version stays
# (its routes and env too), not the old module with the new settings.
printf '{"routes": ["/j2"], "env": {"GREETING": "broken"}}\n' >"$D/echo.json.tmp"
head -c 60 "$G/cgi_echo.wasm" >"$D/echo.wasm.tmp"
mv "$D/echo.json.tmp" "$D/echo.json" && mv "$D/echo.wasm.tmp" "$D/echo.wasm"
sleep 1.5
expect "a refused version keeps its predecessor's routes" 200 "GREETING=json" "$URL/j"
expect "and not the refused version's routes" 404 "" "$URL/j2"
cp "$G/cgi_echo.wasm" "$D/echo.tmp" && mv "$D/echo.tmp" "$D/echo.wasm"
wait_for "once fixed, the new settings apply" 200 "GREETING=broken" "$URL/j2"
printf 'routes: [/x]\nbogus: 1\n' >"$D/echo.yaml"
rm "$D/echo.json"
sleep 1.5
check_contains "a bad sidecar is reported with the key" "$(cat "$LOG")" "unknown key 'bogus'"

# Host routing: NAME.localhost.
out=$(curl -s -H "Host: hello.localhost" "$URL/any/path")
check_contains "NAME.localhost serves NAME on every path" "$out" "hello from"
out=$(curl -s -o /dev/null -w "%{http_code}" -H "Host: nope.localhost" "$URL/any/path")
check_eq "an unknown NAME.localhost is 404" 404 "$out"

# Removal.
rm "$D/hello.wasm"
wait_for "a removed module is undeployed" 404 "" "$URL/hello"
finish
