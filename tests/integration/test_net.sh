#!/bin/sh
# test_net.sh - outbound HTTP end to end: a C SDK guest (tests/guests_sdk/
# net_probe.c) under `kiln serve` calls a local upstream (net_upstream.py)
# through the "kiln" module. Allow-list rules (nothing by default, exact
# address, scheme and port), the address guard (loopback refused unless named
# by address, also behind a name and after a redirect), redirects (off by
# default, followed on request, refused targets), the response cap, the
# guest's timeout and the function's deadline, errors coming back as codes,
# request and response headers, connection reuse (within a request, across
# requests, and the cost without it), and the Extism and Otoroshi doors over
# the same client. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"
. "$(dirname "$0")/net_lib"

if ! sdk_build "$ROOT/tests/guests_sdk/net_probe.c" net_probe; then
    not_ok "net_probe.c builds with clang + wasi-libc and sdk/c/kiln.h"
    finish
    exit 1
fi
ok "net_probe.c builds with clang + wasi-libc and sdk/c/kiln.h"
if ! up_start; then
    not_ok "upstream starts" "$(cat "$T/upstream.log")"
    finish
    exit 1
fi
ok "upstream starts on $UP"

XG=$KILN_BUILD/guests_extism
sh "$ROOT/tests/guests_extism/build.sh" "$XG" >"$T/xbuild.log" 2>&1
XOK=$?
check_eq "Extism test guests build" 0 "$XOK"

D=$T/fns
mkdir -p "$D"
cp "$SG/net_probe.wasm" "$D/probe.wasm"
[ -f "$XG/kiln_http.wasm" ] && cp "$XG/kiln_http.wasm" "$D/"
cat >"$D/kiln.yaml" <<EOF
server: {threads: 2, quiet: true}
functions:
  none: {module: probe.wasm, routes: [/none]}
  exact:
    module: probe.wasm
    allowed_hosts: ["http://127.0.0.1:$UPORT", "http://127.0.0.1:1"]
    routes: [/exact]
  glob: {module: probe.wasm, allowed_hosts: ["127.*", "*"], routes: [/glob]}
  name: {module: probe.wasm, allowed_hosts: [localhost], routes: [/name]}
  scheme: {module: probe.wasm, allowed_hosts: ["https://127.0.0.1:$UPORT", "127.0.0.1:1"], routes: [/scheme]}
  redir: {module: probe.wasm, allowed_hosts: ["http://127.0.0.1:$UPORT", "*"], routes: [/redir]}
  capped:
    module: probe.wasm
    allowed_hosts: ["127.0.0.1"]
    max_http_response_bytes: 1000
    routes: [/capped]
  deadline: {module: probe.wasm, allowed_hosts: ["127.0.0.1"], timeout: 1s, routes: [/deadline]}
  xkiln:
    module: kiln_http.wasm
    abi: extism
    export: fetch
    allowed_hosts: ["http://127.0.0.1:$UPORT"]
    routes: [{path: /xkiln, methods: [POST]}]
EOF
if ! serve_start net --config "$D/kiln.yaml"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts"

# probe ROUTE URL [NAME=VALUE...]: run net_probe on ROUTE against URL with
# the extra query parameters; sets CODE, BODY.
probe() {
    r=$1
    u=$2
    shift 2
    n=$#
    while [ "$n" -gt 0 ]; do
        set -- "$@" --data-urlencode "$1"
        shift
        n=$((n - 1))
    done
    req -G --data-urlencode "url=$u" "$@" "$URL/$r"
}

# --- the allow-list ------------------------------------------------------------
up_reset
probe none "$UP/search?q=a"
check_eq "nothing allowed by default: a code, not a trap (HTTP 200 from the guest)" 200 "$CODE"
check_eq "nothing allowed by default: EDENIED" "not granted to this function" "$(field result)"
check_contains "nothing allowed by default: the reason" "$(field error)" "is not allowed"
probe exact "$UP/search?q=exact"
check_eq "exact address entry: 200" 200 "$(field result)"
check_contains "exact address entry: the body" "$(field body)" '"q": "exact"'
probe scheme "$UP/search?q=s"
check_eq "scheme in the entry must match (https entry, http URL)" \
    "not granted to this function" "$(field result)"
probe scheme "http://127.0.0.1:2/"
check_eq "port in the entry must match" "not granted to this function" "$(field result)"
check_eq "denied requests never reach the upstream" 1 "$(up_stat hits)"

# --- the address guard ---------------------------------------------------------------
up_reset
probe glob "$UP/search?q=g"
check_eq "glob '127.*' and '*' do not unlock loopback" "not granted to this function" \
    "$(field result)"
check_contains "loopback refusal: the guard names the class and the fix" "$(field error)" \
    "127.0.0.1 is a loopback address; such addresses are reachable only when allowed_hosts names them, e.g. \"http://127.0.0.1:$UPORT\""
probe name "http://localhost:$UPORT/search?q=n"
check_eq "an allowed name that resolves to loopback is refused" "not granted to this function" \
    "$(field result)"
check_contains "name: the message shows the resolved address" "$(field error)" "localhost resolves to"
probe glob "http://[::ffff:127.0.0.1]:$UPORT/"
check_eq "an IPv4-mapped IPv6 loopback is refused" "not granted to this function" "$(field result)"
probe glob "http://2130706433:$UPORT/"
check_eq "loopback in decimal notation is refused" "not granted to this function" "$(field result)"
check_eq "refused addresses get no connection at all" 0 "$(up_stat connections)"

# --- redirects ------------------------------------------------------------------------
up_reset
probe exact "$UP/redirect?to=/search%3Fq%3Dr"
check_eq "redirects are not followed by default" 302 "$(field result)"
probe exact "$UP/redirect?to=/search%3Fq%3Dr" follow=1
check_eq "redirect within the allow-list is followed" 200 "$(field result)"
check_contains "redirect followed: the target's body" "$(field body)" '"q": "r"'
probe exact "$UP/redirect?to=http://evil.example.com/x" follow=1
check_eq "redirect to a host outside the allow-list: EDENIED" "not granted to this function" \
    "$(field result)"
check_contains "redirect to a host outside the allow-list: the reason" "$(field error)" \
    "redirects to http://evil.example.com/x, which is not allowed"
probe redir "$UP/redirect?to=http://169.254.169.254/latest/meta-data/" follow=1
check_eq "redirect to the metadata address (allowed by '*'): refused" \
    "not granted to this function" "$(field result)"
check_contains "redirect to the metadata address: the guard says link-local" "$(field error)" \
    "169.254.169.254 is a link-local address"
probe redir "$UP/redirect?to=http://localhost:$UPORT/search%3Fq%3Dl&code=307" follow=1
check_eq "redirect (307) to a name resolving to the named address and port: followed" 200 \
    "$(field result)"
check_eq "refused redirect targets got no request (7 = 4 redirects + 2 targets + 1 plain)" 7 \
    "$(up_stat hits)"

# --- limits, timeouts, errors --------------------------------------------------------
probe capped "$UP/big?n=5000"
check_eq "response over max_http_response_bytes: ELIMIT" "limit exceeded" "$(field result)"
check_contains "response cap: the message" "$(field error)" \
    "HTTP response exceeds the configured maximum number of bytes: 1000"
probe capped "$UP/big?n=1000"
check_eq "response at the cap: 200" 200 "$(field result)"
check_eq "response at the cap: 1000 bytes" 1000 "$(field len)"
start=$(date +%s%N)
probe exact "$UP/slow?ms=3000" timeout=300
ms=$((($(date +%s%N) - start) / 1000000))
check_eq "guest timeout: ETIMEOUT" "timed out" "$(field result)"
if [ "$ms" -lt 2000 ]; then ok "guest timeout is prompt (${ms} ms)"; else not_ok "guest timeout is prompt" "${ms} ms"; fi
start=$(date +%s%N)
probe deadline "$UP/slow?ms=4000"
ms=$((($(date +%s%N) - start) / 1000000))
case "$CODE:$(field result)" in
200:"timed out" | 504:*) ok "the function's deadline bounds a request ($CODE)" ;;
*) not_ok "the function's deadline bounds a request" "status $CODE: $BODY" ;;
esac
if [ "$ms" -lt 2500 ]; then ok "deadline is prompt (${ms} ms)"; else not_ok "deadline is prompt" "${ms} ms"; fi
probe exact "http://127.0.0.1:1/"
check_eq "connection refused: EIO" "storage or network error" "$(field result)"
check_contains "connection refused: the reason" "$(field error)" "failed"
probe exact "ftp://127.0.0.1/"
check_eq "non-http URL: EINVAL" "invalid argument" "$(field result)"
probe exact "$UP/echo" "header=no colon here"
check_eq "malformed header line: EINVAL" "invalid argument" "$(field result)"

# --- methods, headers, bodies ---------------------------------------------------------
probe exact "$UP/echo" method=post body=hello "header=X-Test: 42"
check_eq "POST: 200" 200 "$(field result)"
check_contains "POST: method upper-cased, body sent" "$BODY" "body=POST /echo"
check_contains "POST: request header sent" "$BODY" "x-test: 42"
check_contains "POST: body arrives" "$BODY" "hello"
check_eq "response header read back (kiln_http_header)" yes "$(field x-upstream)"
probe exact "$UP/echo" method=HEAD
check_eq "HEAD: 200 and no body" "200:0" "$(field result):$(field len)"

# --- connection reuse -------------------------------------------------------------------
up_reset
probe exact "$UP/search?q=reuse" n=100
check_eq "100 calls in one request: all succeed" 100 "$(field ok)"
check_eq "100 calls in one request: one connection" 1 "$(up_stat connections)"
reuse_us=$(field elapsed_us)
up_reset
probe exact "$UP/search?q=fresh" n=100 close=1
check_eq "100 calls with Connection: close: all succeed" 100 "$(field ok)"
check_eq "100 calls with Connection: close: 100 connections" 100 "$(up_stat connections)"
fresh_us=$(field elapsed_us)
echo "# 100 sequential upstream calls from one guest: $((reuse_us / 1000)) ms with connection reuse, $((fresh_us / 1000)) ms with a new connection each"
up_reset
i=0
while [ $i -lt 20 ]; do
    probe exact "$UP/search?q=across"
    i=$((i + 1))
done
check_eq "20 requests: all answered by the upstream" 20 "$(up_q across)"
c=$(up_stat connections)
if [ "$c" -le 2 ]; then ok "20 requests on 2 workers: at most 2 connections ($c)"; else
    not_ok "20 requests on 2 workers: at most 2 connections" "$c connections"; fi

# --- the "kiln" module under the Extism ABI ------------------------------------------------
req -X POST --data-binary "$UP/search?q=xk" "$URL/xkiln"
check_eq "extism plugin, kiln.http_request: 200" 200 "$CODE"
check_contains "extism plugin, kiln.http_request: status and body" "$BODY" '200 {"q": "xk"'
req -X POST --data-binary "http://localhost:$UPORT/" "$URL/xkiln"
check_contains "extism plugin, kiln.http_request: refusal is a code and a reason" "$BODY" \
    "error -3: HTTP request to http://localhost:$UPORT/ is not allowed"

serve_stop
check_eq "server stops cleanly" 0 "$SRC"

# --- Extism and Otoroshi use the same client ----------------------------------------------
if [ "$XOK" -eq 0 ]; then
    OUT=$("$KILN" call "$XG/http.wasm" fetch --input "$UP/echo" --allow-host '*' 2>"$T/err")
    ERR=$(cat "$T/err")
    check_contains "extism http_request: '*' does not unlock loopback" "$ERR" "a loopback address"
    OUT=$("$KILN" call "$XG/http.wasm" fetch --input "$UP/echo" --allow-host 127.0.0.1 2>"$T/err")
    check_contains "extism http_request: named address allowed" "$OUT" "200"
    OUT=$("$KILN" call "$XG/backend.wasm" http_call --input "{\"url\":\"$UP/echo\"}" \
        --allow-host '*' 2>&1)
    check_contains "otoroshi proxy_http_call: loopback refused is a 403 answer" "$OUT" '"status":403'
    body=$(echo "$OUT" | sed -n 's/.*"body_base64":"\([^"]*\)".*/\1/p' | base64 -d)
    check_contains "otoroshi proxy_http_call: the 403 says why" "$body" \
        "you cannot access host: 127.0.0.1: HTTP request to $UP/echo refused"
    OUT=$("$KILN" call "$XG/backend.wasm" http_call \
        --input "{\"url\":\"$UP/redirect?to=http://169.254.169.254/\",\"follow_redirects\":true}" \
        --allow-host 127.0.0.1 --allow-host '*' 2>&1)
    body=$(echo "$OUT" | sed -n 's/.*"body_base64":"\([^"]*\)".*/\1/p' | base64 -d)
    check_contains "otoroshi proxy_http_call: redirect to a link-local address refused" "$body" \
        "169.254.169.254 is a link-local address"
    OUT=$("$KILN" call "$XG/backend.wasm" http_call \
        --input "{\"url\":\"$UP/redirect?to=/echo\",\"follow_redirects\":true}" \
        --allow-host 127.0.0.1 2>&1)
    check_contains "otoroshi proxy_http_call: allowed redirect followed" "$OUT" '"status":200'
fi

finish
