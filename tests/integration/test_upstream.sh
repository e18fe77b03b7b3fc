#!/bin/sh
# test_upstream.sh - routes to an upstream service (`upstream: URL`): Kiln as
# a reverse proxy in front of a local test server (net_upstream.py). Method,
# path, query, headers and body reach the upstream below its base path;
# hop-by-hop headers do not, X-Forwarded-* do; status, headers and body come
# back, redirects relayed, not followed; an upstream that is down is a 502
# and one that is too slow a 504, both naming the upstream; a slow upstream
# holds no worker. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"
. "$(dirname "$0")/net_lib"

if ! up_start; then
    not_ok "upstream starts" "$(cat "$T/upstream.log")"
    finish
    exit 1
fi
ok "upstream starts on $UP"

D=$T/proxy
mkdir -p "$D"
cp "$G/cgi_hello.wasm" "$D/"
cat >"$D/kiln.yaml" <<YAML
server: {threads: 2, max_connections_per_ip: 0}
functions:
  hello: {module: cgi_hello.wasm, routes: [/hello]}
routes:
  - {path: /api/..., upstream: "$UP"}
  - {path: /base/..., upstream: "$UP/"}
  - {path: /quick/..., upstream: "$UP", timeout: 300ms}
  - {path: /down/..., upstream: "http://127.0.0.1:1"}
YAML
if ! serve_start proxy --config "$D/kiln.yaml"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts with upstream routes"
check_contains "the route table shows the upstream" "$(cat "$LOG")" "-> upstream $UP (upstream)"

expect "GET through the proxy" 200 '"q": "paris"' "$URL/api/search?q=paris"
out=$(curl -s -X POST -H "X-Test: yes" -H "Content-Type: text/plain" -H "X-Drop: secret" \
    -H "Connection: X-Drop" -H "Keep-Alive: timeout=5" -d "a body" "$URL/api/echo?x=1")
check_contains "method, path (below the prefix) and query reach the upstream" "$out" "POST /echo?x=1"
check_contains "end-to-end headers reach the upstream" "$out" "x-test: yes"
check_contains "the body reaches the upstream" "$out" "a body"
check_contains "X-Forwarded-For names the client" "$out" "x-forwarded-for: 127.0.0.1"
check_contains "X-Forwarded-Host carries the original host" "$out" "x-forwarded-host: $HOSTPORT"
check_contains "X-Forwarded-Proto" "$out" "x-forwarded-proto: http"
case "$out" in
*"x-drop"* | *"keep-alive"*) not_ok "hop-by-hop headers (and those Connection names) stay behind" "$out" ;;
*) ok "hop-by-hop headers (and those Connection names) stay behind" ;;
esac
out=$(curl -s -H "X-Forwarded-For: 10.0.0.7" "$URL/api/echo")
check_contains "an existing X-Forwarded-For is extended" "$out" "x-forwarded-for: 10.0.0.7, 127.0.0.1"
req "$URL/api/echo"
check_contains "response headers come back (names as the upstream sent them, lower-cased)" "$HDRS" "x-upstream: yes"
expect "a trailing slash in the base is not doubled" 200 "GET /echo" "$URL/base/echo"
req "$URL/api/redirect?to=http://example.invalid/x"
check_eq "redirects are relayed, not followed" 302 "$CODE"
check_contains "with their Location" "$HDRS" "location: http://example.invalid/x"
req "$URL/api/big?n=300000"
check_eq "a large body comes back whole" 300000 "$(printf '%s' "$BODY" | wc -c)"

expect "an upstream that is down: 502" 502 "upstream http://127.0.0.1:1" "$URL/down/x"
expect "an upstream too slow for the route: 504" 504 "did not answer within 300 ms" \
    "$URL/quick/slow?ms=3000"

# A slow upstream holds no worker: 40 slow proxied requests at once on 2
# workers, and a function answers meanwhile.
AC="python3 $ROOT/tests/integration/async_client.py"
$AC burst "$HOSTPORT" 40 "/api/slow?ms=700" late >"$T/burst.out" &
BP=$!
sleep 0.3
out=$($AC timed "$HOSTPORT" /hello)
wait $BP
check_contains "40 slow upstream requests at once all answered" "$(cat "$T/burst.out")" "ok=40 bad=0"
check_contains "a function answers meanwhile" "$out" "status=200"
echo "# $(cat "$T/burst.out"); /hello meanwhile: $out"
finish
