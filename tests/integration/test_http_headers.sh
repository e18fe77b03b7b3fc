#!/bin/sh
# test_http_headers.sh - `allow_http_response_headers` under `kiln serve`
# (issue 14, "Response headers"): an Extism plugin's http_request records the
# response's headers for http_headers() when its function says so, as
# Extism's host option (extism_plugin_allow_http_response_headers) does, and
# not otherwise. Guest: tests/guests_extism/http.c, export `headers` (GETs the
# URL in its input, outputs http_headers() or "{}" for the 0 it gets), against
# the local stand-in upstream (net_upstream.py), whose /echo answers with a
# custom `X-Upstream: yes` header. Checked: on (YAML and a directory sidecar
# in JSON), off by default, off with false, with `reuse` (each call sees only
# its own response's headers), a reload turning it on, and the configuration
# refusing it for an ABI that has no such switch. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"
. "$(dirname "$0")/net_lib"

XG=$KILN_BUILD/guests_extism
sh "$ROOT/tests/guests_extism/build.sh" "$XG" >"$T/xbuild.log" 2>&1
if [ ! -f "$XG/http.wasm" ]; then
    not_ok "http.c builds" "$(tail -n 10 "$T/xbuild.log")"
    finish
    exit 1
fi
ok "http.c builds"
if ! up_start; then
    not_ok "upstream starts" "$(cat "$T/upstream.log")"
    finish
    exit 1
fi
ok "upstream starts on $UP"

# jv EXPR: the Python expression EXPR over d = $BODY parsed as JSON; a
# string printed bare, anything else as sorted compact JSON.
jv() { printf '%s' "$BODY" | python3 -c 'import sys, json
try:
    d = json.loads(sys.stdin.read()); v = eval(sys.argv[1])
    print(v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":")))
except Exception as e:
    print("<error %r>" % e)' "$1"; }

D=$T/fns
mkdir -p "$D"
cp "$XG/http.wasm" "$D/"
HOSTS="[\"http://127.0.0.1:$UPORT\"]"
# write_config ON: kiln.yaml with function `flip` set to ON (true/false).
write_config() {
    cat >"$D/kiln.yaml" <<YAML
server: {threads: 2, max_connections_per_ip: 0}
functions:
  on: {module: http.wasm, abi: extism, export: headers, allowed_hosts: $HOSTS,
       allow_http_response_headers: true, routes: [{path: /on, methods: [POST]}]}
  off: {module: http.wasm, abi: extism, export: headers, allowed_hosts: $HOSTS,
        routes: [{path: /off, methods: [POST]}]}
  no: {module: http.wasm, abi: extism, export: headers, allowed_hosts: $HOSTS,
       allow_http_response_headers: false, routes: [{path: /no, methods: [POST]}]}
  kept: {module: http.wasm, abi: extism, export: headers, allowed_hosts: $HOSTS, reuse: true,
         allow_http_response_headers: true, routes: [{path: /kept, methods: [POST]}]}
  flip: {module: http.wasm, abi: extism, export: headers, allowed_hosts: $HOSTS,
         allow_http_response_headers: $1, routes: [{path: /flip, methods: [POST]}]}
YAML
}
write_config false
if ! serve_start fns --config "$D/kiln.yaml"; then
    not_ok "server starts" "$(tail -n 20 "$LOG")"
    finish
    exit 1
fi
ok "server starts with allow_http_response_headers"

req -X POST --data-binary "$UP/echo" "$URL/on"
check_eq "on: 200" 200 "$CODE"
check_eq "on: the upstream's custom header reaches the guest" yes "$(jv 'd["x-upstream"]')"
check_eq "on: names in lower case, every header of the response" "text/plain" \
    "$(jv 'd["content-type"]')"
check_eq "on: the values as the upstream sent them (content-length a number)" True \
    "$(jv 'str(d["content-length"].isdigit() and int(d["content-length"]) > 0)')"
req -X POST --data-binary "$UP/echo" "$URL/off"
check_eq "absent: http_headers() gives nothing ({}), Extism's default" "200 {}" "$CODE $BODY"
req -X POST --data-binary "$UP/echo" "$URL/no"
check_eq "false: {}" "200 {}" "$CODE $BODY"
req -X POST --data-binary "$UP/echo" "$URL/kept"
check_eq "reuse: first call sees the custom header" yes "$(jv 'd["x-upstream"]')"
req -X POST --data-binary "$UP/search?q=x" "$URL/kept"
check_eq "reuse: the next call on the kept instance sees only its own response's headers" \
    "application/json None" "$(jv 'd["content-type"]') $(jv 'str(d.get("x-upstream"))')"
req -X POST --data-binary "$UP/echo" "$URL/flip"
check_eq "flip before the reload: {}" "200 {}" "$CODE $BODY"

# A reload with the key turned on applies it.
before=$(grep -c "reloaded in" "$LOG")
write_config true
kill -HUP "$SPID"
i=0
while [ "$(grep -c "reloaded in" "$LOG")" -le "$before" ] && [ $i -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
i=0
while [ $i -lt 100 ]; do
    req -X POST --data-binary "$UP/echo" "$URL/flip"
    [ "$CODE" = 200 ] && [ "$BODY" != "{}" ] && break
    sleep 0.1
    i=$((i + 1))
done
check_eq "a reload turning it on: the guest gets the headers" "200 yes" "$CODE $(jv 'd["x-upstream"]')"
serve_stop
check_eq "server stops cleanly" 0 "$SRC"

# Directory mode: a JSON sidecar carries the key like any other setting.
L=$T/live
mkdir -p "$L"
cp "$XG/http.wasm" "$L/dirh.wasm"
printf '{"abi": "extism", "export": "headers", "allowed_hosts": %s, "allow_http_response_headers": true, "routes": [{"path": "/dirh", "methods": ["POST"]}]}\n' \
    "$HOSTS" >"$L/dirh.json"
if ! serve_start live "$L"; then
    not_ok "directory server starts" "$(tail -n 20 "$LOG")"
else
    req -X POST --data-binary "$UP/echo" "$URL/dirh"
    check_eq "sidecar: allow_http_response_headers applies" "200 yes" \
        "$CODE $(jv 'd["x-upstream"]')"
    serve_stop
fi

# The configuration refuses it where the ABI has no such switch.
cat >"$D/bad.yaml" <<YAML
functions:
  w: {module: http.wasm, abi: wasi, allow_http_response_headers: true, routes: [/w]}
YAML
"$KILN" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --config "$D/bad.yaml" \
    >"$T/bad.log" 2>&1 &
BP=$!
SPIDS="$SPIDS $BP"
wait "$BP"
check_eq "abi wasi with the key: the server refuses to start" 1 "$?"
check_contains "... naming the file, line and key" "$(cat "$T/bad.log")" \
    "bad.yaml:2: function 'w': 'allow_http_response_headers' is an Extism/Otoroshi setting"
finish
