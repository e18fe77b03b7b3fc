#!/bin/sh
# test_pipeline.sh - route pipelines (issue 10): Otoroshi plugin kinds in
# front of a backend, over real sockets with curl. Guests: the C plugins in
# tests/guests_extism/pl_*.c and the AssemblyScript ones (every kind) in
# tests/as/assembly/pl_*.ts (as_pl_*.wasm), behaviour driven by each
# plugin's `config` and by request headers (see each file's comment).
# Checked, with exact statuses, headers and bodies: the context document of
# every kind (pl_ctx), access allow/deny (status and message from the plugin,
# defaults 403 / "An error occurred"), route matchers falling through to the
# next route and to 404, pre-route short-circuit (every body form), request
# transformers changing method/url/headers/body before an echo backend or
# answering directly, response transformers (status defaults to 200),
# cookies (a transformer's list replaces Cookie / every Set-Cookie, the
# response's Set-Cookie headers shown as otoroshi_response.cookies and kept
# through a header replacement, names and values that would inject refused),
# attributes passed along a chain (host functions and output "attrs", numbers
# exact, nothing leaking into the next request), sinks, an upstream backend
# with and without plugins, upstream down 502 / slow 504, and plugins that
# trap (500), time out (504) or answer non-JSON (502) without the backend
# running; a directory sidecar attaching plugins. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"
. "$(dirname "$0")/net_lib"

XG=$KILN_BUILD/guests_extism
sh "$ROOT/tests/guests_extism/build.sh" "$XG" >"$T/xbuild.log" 2>&1
missing=""
for m in pl_echo pl_access pl_matcher pl_pre_route pl_req pl_resp pl_sink pl_sink_all pl_attrs \
    pl_bad pl_ctx as_pl_access as_pl_req as_pl_resp as_pl_misc; do
    [ -f "$XG/$m.wasm" ] || missing="$missing $m"
done
if [ -n "$missing" ]; then
    not_ok "the pipeline guests build" "missing:$missing
$(tail -n 15 "$T/xbuild.log")"
    finish
    exit 1
fi
ok "the pipeline guests build (C and AssemblyScript)"
if ! up_start; then
    not_ok "upstream starts" "$(cat "$T/upstream.log")"
    finish
    exit 1
fi
ok "upstream starts on $UP"

# jv EXPR: the Python expression EXPR over d = $BODY parsed as JSON (numbers
# kept exact), printed canonically: a string bare, anything else as compact
# JSON with sorted keys and numbers as written. "<error ...>" if it fails.
jv() {
    printf '%s' "$BODY" | python3 -c '
import sys, json, decimal
def canon(v):
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + canon(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, decimal.Decimal):
        return str(v)
    return json.dumps(v)
try:
    d = json.loads(sys.stdin.read(), parse_float=decimal.Decimal)
    v = eval(sys.argv[1])
    print(v if isinstance(v, str) else canon(v))
except Exception as e:
    print("<error %r>" % e)' "$1"
}
# canon JSON: JSON text in the canonical form jv prints.
canon() { BODY=$1 jv d; }

# hits: how many requests the echo backend has served, counting this one
# (GET /plain reaches it without plugins; pl_echo answers X-Hits).
hits() {
    req "$URL/plain"
    header X-Hits
}
# not_reached NAME BEFORE: the echo backend served nothing since BEFORE
# (= a hits value) except the hits() call made here.
not_reached() {
    n=$(hits)
    check_eq "$1: the backend did not run" $(($2 + 1)) "$n"
}

D=$T/pipe
mkdir -p "$D"
for m in pl_echo pl_access pl_matcher pl_pre_route pl_req pl_resp pl_sink pl_sink_all pl_attrs \
    pl_bad pl_ctx as_pl_access as_pl_req as_pl_resp as_pl_misc; do
    cp "$XG/$m.wasm" "$D/"
done
cp "$G/cgi_echo.wasm" "$XG/greet.wasm" "$D/"
cat >"$D/kiln.yaml" <<YAML
server: {threads: 2, max_connections_per_ip: 0}
kv: {backend: memory}
functions:
  echo: {module: pl_echo.wasm, abi: otoroshi}
  echo_a: {module: pl_echo.wasm, abi: otoroshi, config: {name: a}}
  echo_b: {module: pl_echo.wasm, abi: otoroshi, config: {name: b}}
  echo_c: {module: pl_echo.wasm, abi: otoroshi, config: {name: c}}
  cgi: {module: cgi_echo.wasm}
  xgreet: {module: greet.wasm, abi: extism, export: greet}
  guard: {module: pl_access.wasm}
  as_guard: {module: as_pl_access.wasm}
  match: {module: pl_matcher.wasm}
  pre: {module: pl_pre_route.wasm}
  rw: {module: pl_req.wasm}
  as_rw: {module: as_pl_req.wasm}
  resp: {module: pl_resp.wasm}
  as_resp: {module: as_pl_resp.wasm}
  as_misc: {module: as_pl_misc.wasm}
  sink: {module: pl_sink.wasm}
  attrs: {module: pl_attrs.wasm}
  counter: {module: pl_attrs.wasm, kv: {grants: {global: rw}}}
  ctx: {module: pl_ctx.wasm}
  bad: {module: pl_bad.wasm}
  bad_slow: {module: pl_bad.wasm, timeout: 200ms}
routes:
  - {path: /plain, function: echo}
  # context documents of every kind
  - path: /ctx/...
    function: echo
    plugins:
      - {function: ctx, kind: matcher}
      - {function: ctx, kind: pre-route}
      - function: ctx
        kind: access
        config: {n: 0.9678663636363636, big: 123456789012345678901234567890, s: "x\"y", list: [1, two, null, true], nested: {a: {b: 431952.32}}}
      - {function: ctx, kind: request}
      - {function: ctx, kind: response}
  # access
  - path: /secure/...
    function: echo
    methods: [GET, POST]
    plugins:
      - {function: guard, kind: access, config: {role: admin, message: admins only, status: 401}}
  - {path: /secure-default, function: echo, plugins: [{function: guard, kind: access, config: {role: admin}}]}
  - {path: /secure-bare, function: echo, plugins: [{function: guard, kind: access, config: {role: admin, bare: true}}]}
  - {path: /secure-weird, function: echo, plugins: [{function: guard, kind: access, config: {reply: '{"result":"true"}'}}]}
  - {path: /as-secure, function: echo, plugins: [{function: as_guard, kind: access, config: {role: admin, message: as says no, status: 402}}]}
  # matchers: /m/item, then /m/:id, then /m/...
  - {path: /m/item, function: echo_a, plugins: [{function: match, kind: matcher, config: {variant: a}}]}
  - {path: "/m/:id", function: echo_b, plugins: [{function: match, kind: matcher, config: {variant: b}}]}
  - {path: /m/..., function: echo_c}
  - {path: /n/item, function: echo_a, plugins: [{function: match, kind: matcher, config: {variant: a}}]}
  - {path: /mm/item, function: echo_a, plugins: [{function: match, kind: matcher, config: {variant: a}}, {function: match, kind: matcher, config: {reply: '{"result":true}'}}]}
  - {path: /mm/other, function: echo_a, plugins: [{function: match, kind: matcher, config: {variant: a}}, {function: match, kind: matcher, config: {variant: b}}]}
  - {path: /mm/..., function: echo_c}
  - {path: /as-m/item, function: echo_a, plugins: [{function: as_misc, kind: matcher}]}
  - {path: /as-m/..., function: echo_c}
  - {path: /as-pre, function: echo, plugins: [{function: as_misc, kind: pre-route}]}
  - {path: /w/item, function: echo_a, plugins: [{function: match, kind: matcher, config: {reply: '{"result":"true"}'}}]}
  - {path: /w/..., function: echo_c}
  # pre-route
  - {path: /pre, function: echo, plugins: [{function: pre, kind: pre-route, config: {status: 401, headers: {Content-Type: text/plain, X-Pre: stopped}}}]}
  - {path: /pre-default, function: echo, plugins: [{function: pre, kind: pre-route, config: {form: body_json}}]}
  - {path: /pre-str, function: echo, plugins: [{function: pre, kind: pre-route, config: {form: body_str, status: 200, headers: {Content-Type: text/plain}}}]}
  - {path: /pre-b64, function: echo, plugins: [{function: pre, kind: pre-route, config: {form: body_base64, status: 202, headers: {Content-Type: text/plain}}}]}
  - {path: /pre-bytes, function: echo, plugins: [{function: pre, kind: pre-route, config: {form: body_bytes, status: 203, headers: {Content-Type: text/plain}}}]}
  # request transformers
  - path: /rw/...
    function: echo
    plugins:
      - {function: rw, kind: request, config: {method: PUT, url: "/rewritten/path?a=1&b=two", add_headers: {x-added: "yes"}, upper: true}}
  - {path: /rw-hdr, function: echo, plugins: [{function: rw, kind: request, config: {headers: {x-only: "1"}, reject_status: 409}}]}
  - {path: /rw-abs, function: echo, plugins: [{function: rw, kind: request}]}
  - {path: /rw-prec, function: echo, plugins: [{function: rw, kind: request, config: {body_str: from str, body_json: {j: 1}}}]}
  - {path: /rw-json, function: echo, plugins: [{function: rw, kind: request, config: {body_json: {n: 0.9678663636363636, big: 123456789012345678901234567890}}}]}
  - {path: /rw-b64, function: echo, plugins: [{function: rw, kind: request, config: {body_base64: aGVsbG8=}}]}
  - {path: /rw-bytes, function: echo, plugins: [{function: rw, kind: request, config: {body_bytes: [104, 105, -61, -87]}}]}
  - {path: /as-rw/..., function: echo, plugins: [{function: as_rw, kind: request}]}
  # cookies (Otoroshi's WSCookie lists)
  - {path: /ck-req, function: echo, plugins: [{function: rw, kind: request, config: {cookies: [{name: a, value: "1"}, {name: b, value: two, path: /, httpOnly: true}]}}]}
  - {path: /ck-req-none, function: echo, plugins: [{function: rw, kind: request, config: {cookies: []}}]}
  - {path: /ck-reject, function: echo, plugins: [{function: rw, kind: request, config: {reject_status: 401, cookies: [{name: why, value: denied}]}}]}
  - path: /ck-resp
    function: echo
    plugins:
      - {function: resp, kind: response, config: {cookies: [{name: sid, value: abc, path: /app, domain: example.com, maxAge: 60, secure: true, httpOnly: true}, {name: lang, value: fr}]}}
      - {function: resp, kind: response, config: {show_cookies: true}}
  - {path: /ck-bad, function: echo, plugins: [{function: resp, kind: response, config: {cookies: [{name: "a;b", value: x}]}}]}
  - {path: /ck-bad-value, function: echo, plugins: [{function: rw, kind: request, config: {cookies: [{name: a, value: "x; Domain=evil"}]}}]}
  # response transformers
  - {path: /resp/..., function: echo, plugins: [{function: resp, kind: response, config: {status: 202, add_headers: {x-r: "1"}, wrap: true}}]}
  - {path: /resp-hdr, function: echo, plugins: [{function: resp, kind: response, config: {headers: {X-Only: "yes", Content-Type: text/plain}, body_str: replaced body, error_status: 418}}]}
  - {path: /as-resp/..., function: echo, plugins: [{function: as_resp, kind: response, config: {status: 203}}]}
  # attributes along a chain
  - path: /chain
    function: echo
    plugins:
      - {function: attrs, kind: response, export: read_attrs}
      - {function: attrs, kind: request, export: step2}
      - {function: guard, kind: access, config: {role: admin}}
      - {function: attrs, kind: access, export: set_attrs}
  - path: /noattrs
    function: echo
    plugins:
      - {function: attrs, kind: request, export: step2}
      - {function: attrs, kind: response, export: read_attrs}
  - path: /cleared
    function: echo
    plugins:
      - {function: attrs, kind: access, export: set_attrs}
      - {function: attrs, kind: request, export: clear_attrs}
      - {function: attrs, kind: response, export: read_attrs}
  # a plugin's own grants (its function's kv.grants, not the backend's)
  - {path: /grant-ok, function: echo, plugins: [{function: counter, kind: access, export: count_global}]}
  - {path: /grant-no, function: echo, plugins: [{function: attrs, kind: access, export: count_global}]}
  # backends of other ABIs behind plugins: WASI-CGI, Extism
  - path: /cgi-chain
    function: cgi
    plugins:
      - {function: guard, kind: access, config: {role: admin}}
      - {function: rw, kind: request, config: {method: PUT, url: "/cgi-chain?via=rw", add_headers: {x-added: cgi}, body_str: new body}}
      - {function: resp, kind: response, config: {status: 203, add_headers: {x-r: cgi}}}
  - {path: /x-chain, function: xgreet, plugins: [{function: rw, kind: request, config: {body_str: pipeline}}]}
  # failures
  - {path: /fail/trap, function: echo, plugins: [{function: bad, kind: request, export: trap}]}
  - {path: /fail/spin, function: echo, plugins: [{function: bad_slow, kind: pre-route, export: spin}]}
  - {path: /fail/garbage, function: echo, plugins: [{function: bad, kind: access, export: garbage}]}
  - {path: /fail/error, function: echo, plugins: [{function: bad, kind: access, export: fail}]}
  - {path: /fail/matcher, function: echo, plugins: [{function: bad, kind: matcher, export: garbage}]}
  - {path: /fail/resp, function: echo, plugins: [{function: bad, kind: response, export: trap}]}
  - {path: /fail/up/..., upstream: "$UP", plugins: [{function: bad, kind: access, export: trap}]}
  # upstreams
  - {path: /up/..., upstream: "$UP"}
  - path: /upx/...
    upstream: "$UP"
    plugins:
      - {function: guard, kind: access, config: {role: admin}}
      - {function: rw, kind: request, config: {method: PUT, add_headers: {x-added: up}, body_str: the new body}}
      - {function: resp, kind: response, config: {status: 201, add_headers: {x-r: up}}}
  - {path: /upurl/..., upstream: "$UP", plugins: [{function: rw, kind: request, config: {url: "/echoall?via=rw"}}]}
  - {path: /up-resp/..., upstream: "$UP", plugins: [{function: resp, kind: response, config: {add_headers: {x-r: "2"}}}]}
  - {path: /updown/..., upstream: "http://127.0.0.1:1", plugins: [{function: guard, kind: access, config: {role: admin}}]}
  - {path: /upslow/..., upstream: "$UP", timeout: 300ms, plugins: [{function: resp, kind: response, config: {status: 299}}]}
sinks:
  - {function: as_misc, config: {prefix: /as-sunk, status: 410}}
  - {function: sink, config: {prefix: /sunk/deep, name: deep, status: 451}}
  - {function: sink, config: {prefix: /sunk, name: s1, status: 410}}
  - {function: sink, config: {prefix: /sunk, name: never, status: 500}}
YAML
if ! serve_start pipe --config "$D/kiln.yaml"; then
    not_ok "server starts with pipelines" "$(tail -n 20 "$LOG")"
    finish
    exit 1
fi
ok "server starts with pipelines"

# ---- context documents --------------------------------------------------------
req -H "X-Role: admin" "$URL/ctx/doc?x=1"
check_eq "context: every kind's document has every field (matcher, pre-route, access, request, response)" \
    "200 /ctx/doc?x=1" "$CODE $(jv 'd["uri"]')"
[ "$CODE" = 200 ] || echo "    body: $BODY"
check_eq "context: the plugin's config arrives as JSON, numbers and strings exact" \
    "$(canon '{"n":0.9678663636363636,"big":123456789012345678901234567890,"s":"x\"y","list":[1,"two",null,true],"nested":{"a":{"b":431952.32}}}')" \
    "$(jv 'd["attrs"]["ctx_config"]')"
check_contains "context: config numbers keep their text" "$BODY" '0.9678663636363636'
check_contains "context: config integers beyond int64 keep their text" "$BODY" '123456789012345678901234567890'
check_eq "context: route.id is the route's path" "/ctx/..." "$(jv 'd["attrs"]["ctx_route"]')"

# ---- access validators -----------------------------------------------------------
h0=$(hits)
req -H "X-Role: admin" "$URL/secure/x?q=1"
check_eq "access allows (x-role = config.role): the backend answers" 200 "$CODE"
check_eq "access allows: the backend got the request" "GET /secure/x?q=1" \
    "$(jv 'd["method"]') $(jv 'd["uri"]')"
check_eq "access allows: backend ran once" $((h0 + 1)) "$(header X-Hits)"
h0=$(header X-Hits)
req -X POST -H "X-Role: guest" -d "x" "$URL/secure/x"
check_eq "access denies: the plugin's status" 401 "$CODE"
check_eq "access denies: {error: message, plugin: name}" '{"error":"admins only","plugin":"guard"}' \
    "$(jv d)"
check_eq "access denies: JSON" "application/json" "$(header Content-Type)"
req "$URL/secure/x"
check_eq "access denies a request without the header" "401 admins only" "$CODE $(jv 'd["error"]')"
not_reached "access denies" "$h0"
req -X DELETE -H "X-Role: admin" "$URL/secure/x"
check_eq "a method the route does not take: 405 before any plugin" 405 "$CODE"
req -H "X-Role: guest" "$URL/secure-default"
check_eq "access denies without error.status/message: 403, 'An error occurred'" \
    '403 {"error":"An error occurred","plugin":"guard"}' "$CODE $(jv d)"
req -H "X-Role: guest" "$URL/secure-bare"
check_eq "access answering just {result: false}: 403, 'An error occurred'" \
    '403 {"error":"An error occurred","plugin":"guard"}' "$CODE $(jv d)"
req "$URL/secure-weird"
check_eq "access answering {result: \"true\"} (not a boolean) is a denial" \
    '403 {"error":"An error occurred","plugin":"guard"}' "$CODE $(jv d)"
req -H "X-Role: admin" "$URL/as-secure"
check_eq "AssemblyScript access allows" "200 GET" "$CODE $(jv 'd["method"]')"
h0=$(header X-Hits)
req -H "X-Role: nobody" "$URL/as-secure"
check_eq "AssemblyScript access denies with its status and message" \
    '402 {"error":"as says no","plugin":"as_guard"}' "$CODE $(jv d)"
not_reached "AssemblyScript access denies" "$h0"

# ---- route matchers ----------------------------------------------------------------
req -H "X-Variant: a" "$URL/m/item"
check_eq "matcher says yes: its route takes the request" "200 a" "$CODE $(jv 'd["name"]')"
req -H "X-Variant: b" "$URL/m/item"
check_eq "matcher says no: the next route (/m/:id, its matcher says yes)" "200 b" "$CODE $(jv 'd["name"]')"
req -H "X-Variant: z" "$URL/m/item"
check_eq "both matchers say no: the prefix route /m/..." "200 c" "$CODE $(jv 'd["name"]')"
req -H "X-Variant: b" "$URL/m/other"
check_eq "a request /m/item's route never saw goes to /m/:id" "200 b" "$CODE $(jv 'd["name"]')"
req -H "X-Variant: z" "$URL/n/item"
check_eq "matcher says no and no other route: 404" '404 {"error":"no route for this path"}' \
    "$CODE $(jv d)"
req -H "X-Variant: a" "$URL/mm/item"
check_eq "two matchers, both say yes: the route takes it" "200 a" "$CODE $(jv 'd["name"]')"
req -H "X-Variant: a" "$URL/mm/other"
check_eq "two matchers, the second says no: the next route" "200 c" "$CODE $(jv 'd["name"]')"
req "$URL/w/item"
check_eq "matcher answering {result: \"true\"} (not a boolean) does not match" "200 c" \
    "$CODE $(jv 'd["name"]')"

req -H "foo: bar" "$URL/as-m/item"
check_eq "AssemblyScript matcher (Otoroshi's test plugin: foo: bar) says yes" "200 a" \
    "$CODE $(jv 'd["name"]')"
req "$URL/as-m/item"
check_eq "AssemblyScript matcher says no: the next route" "200 c" "$CODE $(jv 'd["name"]')"

# ---- pre-route --------------------------------------------------------------------------
h0=$(hits)
req -H "X-Stop: now" "$URL/pre"
check_eq "pre-route answers: its status" 401 "$CODE"
check_eq "pre-route answers: its headers" "text/plain stopped" "$(header Content-Type) $(header X-Pre)"
check_eq "pre-route answers: its body (\"body\" key)" "stopped: now" "$BODY"
not_reached "pre-route answers" "$h0"
req "$URL/pre"
check_eq "pre-route continues ({error: false}): the backend answers" "200 /pre" "$CODE $(jv 'd["uri"]')"
req -H "X-Stop: j" "$URL/pre-default"
check_eq "pre-route without status: 200, body_json" '200 {"stopped":"j"}' "$CODE $(jv d)"
check_eq "pre-route without headers: Content-Type application/json" "application/json" \
    "$(header Content-Type)"
h0=$(hits)
req "$URL/as-pre"
check_eq "AssemblyScript pre-route (Otoroshi's test plugin) answers: 401, text/plain, its \"body\"" \
    "401 text/plain you're not authorized" "$CODE $(header Content-Type) $BODY"
not_reached "AssemblyScript pre-route answers" "$h0"
req -H "foo: bar" "$URL/as-pre"
check_eq "AssemblyScript pre-route continues ({error: false})" "200 /as-pre" "$CODE $(jv 'd["uri"]')"
req -H "X-Stop: s" "$URL/pre-str"
check_eq "pre-route body_str" "200 stopped: s" "$CODE $BODY"
req -H "X-Stop: b64" "$URL/pre-b64"
check_eq "pre-route body_base64" "202 stopped: b64" "$CODE $BODY"
req -H "X-Stop: bytes" "$URL/pre-bytes"
check_eq "pre-route body_bytes" "203 stopped: bytes" "$CODE $BODY"

# ---- request transformers ------------------------------------------------------------------
req -X POST -H "X-Test: keep" -H "Content-Type: text/plain" -d "hello world" "$URL/rw/orig?z=9"
check_eq "request transformer: status" 200 "$CODE"
check_eq "request transformer: the backend sees the new method" PUT "$(jv 'd["method"]')"
check_eq "request transformer: the backend sees the new path and query" "/rewritten/path?a=1&b=two" \
    "$(jv 'd["uri"]')"
check_eq "request transformer: the new body (request_body_bytes in, body_bytes out)" "HELLO WORLD" \
    "$(jv 'd["body"]')"
check_eq "request transformer: headers it kept and added" "keep yes POST" \
    "$(jv 'd["headers"]["x-test"]') $(jv 'd["headers"]["x-added"]') $(jv 'd["headers"]["x-seen-method"]')"
check_contains "request transformer: otoroshi_request.url ends with the request's path and query" \
    "$(jv 'd["headers"]["x-seen-url"]')|" "/rw/orig?z=9|"
req -X POST -H "X-Test: dropped" -d "keep me" "$URL/rw-hdr"
check_eq "request transformer headers replace the whole map" '{"x-only":"1"}' "$(jv 'd["headers"]')"
check_eq "request transformer without method/url/body: unchanged" "POST /rw-hdr keep me" \
    "$(jv 'd["method"]') $(jv 'd["uri"]') $(jv 'd["body"]')"
req -H "X-Url: http://elsewhere.example:9999/abs/path?k=v" "$URL/rw-abs"
check_eq "request transformer with an absolute URL: path and query are used" "200 /abs/path?k=v" \
    "$CODE $(jv 'd["uri"]')"
req -X POST -d "orig" "$URL/rw-prec"
check_eq "request transformer body precedence: body_str before body_json" "from str" "$(jv 'd["body"]')"
req -X POST -d "orig" "$URL/rw-json"
check_eq "request transformer body_json: compact, numbers exact" \
    '{"n":0.9678663636363636,"big":123456789012345678901234567890}' "$(jv 'd["body"]')"
req -X POST -d "orig" "$URL/rw-b64"
check_eq "request transformer body_base64" "hello" "$(jv 'd["body"]')"
req -X POST -d "orig" "$URL/rw-bytes"
check_eq "request transformer body_bytes (signed bytes)" "hié" "$(jv 'd["body"]')"
h0=$(hits)
req -X POST -H "X-Reject: nope" -d "x" "$URL/rw/orig"
check_eq "request transformer answers (error: true): default status 500" 500 "$CODE"
check_eq "request transformer answers: its headers and body" "text/plain pl_req rejected: nope" \
    "$(header Content-Type) $(header X-Rejected) $BODY"
req -H "X-Reject: again" "$URL/rw-hdr"
check_eq "request transformer answers with its status" "409 rejected: again" "$CODE $BODY"
not_reached "request transformer answers" "$h0"
req -H "X-Test: as" -d "was this" "$URL/as-rw/x?y=1"
check_eq "AssemblyScript request transformer: method POST, same path" "200 POST /as-rw/x?y=1" \
    "$CODE $(jv 'd["method"]') $(jv 'd["uri"]')"
check_eq "AssemblyScript request transformer: headers kept and added" "as assemblyscript application/json" \
    "$(jv 'd["headers"]["x-test"]') $(jv 'd["headers"]["x-as"]') $(jv 'd["headers"]["content-type"]')"
check_eq "AssemblyScript request transformer: body_json" '{"foo":"bar","was":"was this"}' \
    "$(jv 'd["body"]')"

# ---- cookies ----------------------------------------------------------------------------------
req -H "Cookie: old=x; other=y" "$URL/ck-req"
check_eq "request transformer cookies: replace the Cookie header the backend sees" "200 a=1; b=two" \
    "$CODE $(jv 'd["headers"]["cookie"]')"
req -H "Cookie: old=x" "$URL/ck-req-none"
check_eq "request transformer cookies: [] removes the Cookie header" "200 None" \
    "$CODE $(jv 'str(d["headers"].get("cookie"))')"
h0=$(hits)
req -H "X-Reject: c" "$URL/ck-reject"
check_eq "request transformer answer (error: true) with cookies: its status and Set-Cookie" \
    "401 why=denied" "$CODE $(header Set-Cookie)"
not_reached "request transformer answer with cookies" "$h0"
req "$URL/ck-resp"
check_eq "response transformer cookies: one Set-Cookie each, attributes as Otoroshi's WSCookie" \
    "200 sid=abc; Max-Age=60; Path=/app; Domain=example.com; Secure; HttpOnly|lang=fr|" \
    "$CODE $(printf '%s\n' "$HDRS" | sed -n 's/^[Ss]et-[Cc]ookie: //p' | tr '\n' '|')"
BODY=$(header x-orig-cookies)
check_eq "response transformer input: the response's Set-Cookie headers as otoroshi_response.cookies" \
    '[{"domain":"example.com","httpOnly":true,"maxAge":60,"name":"sid","path":"/app","secure":true,"value":"abc"},{"domain":null,"httpOnly":false,"maxAge":null,"name":"lang","path":null,"secure":false,"value":"fr"}]' \
    "$(jv d)"
req "$URL/ck-bad"
check_eq "a cookie name with ';': 502 naming the plugin, not a header injection" "502 resp" \
    "$CODE $(jv 'd["function"]')"
check_contains "... saying which cookie" "$BODY" "cookies[0].name"
h0=$(hits)
req "$URL/ck-bad-value"
check_eq "a cookie value with ';' (an attribute smuggled in): 502" "502 rw" "$CODE $(jv 'd["function"]')"
not_reached "a request transformer with a bad cookie" "$h0"

# ---- response transformers -------------------------------------------------------------------
req "$URL/resp/x"
check_eq "response transformer: its status" 202 "$CODE"
check_eq "response transformer: the backend's headers plus its own" "application/json 1 200" \
    "$(header Content-Type) $(header x-r) $(header x-orig-status)"
check_eq "response transformer: body_json wraps what the backend said" "200 /resp/x" \
    "$(jv 'd["status"]') $(jv 'json.loads(d["body"])["uri"]')"
h0=$(hits)
req -H "X-Resp-Error: boom" "$URL/resp/x"
check_eq "response transformer error: true: 500 and its body" "500 text/plain replaced: boom" \
    "$CODE $(header Content-Type) $BODY"
n=$(hits)
check_eq "response transformer error: the backend did run" $((h0 + 2)) "$n"
req "$URL/resp-hdr"
check_eq "response transformer without status: 200" 200 "$CODE"
check_eq "response transformer headers replace the backend's" "yes text/plain|" \
    "$(header X-Only) $(header Content-Type)|$(header X-Hits)"
check_eq "response transformer body_str" "replaced body" "$BODY"
req "$URL/as-resp/y"
check_eq "AssemblyScript response transformer: status and added header" "203 yes" \
    "$CODE $(header x-as-resp)"
check_eq "AssemblyScript response transformer: kept the backend's headers" "application/json" \
    "$(header Content-Type)"
check_eq "AssemblyScript response transformer: body_json" "200 /as-resp/y" \
    "$(jv 'd["status"]') $(jv 'json.loads(d["body"])["uri"]')"

# ---- attributes along a chain -------------------------------------------------------------
ATTRS='{"score":0.9678663636363636,"who":{"name":"ann","big":123456789012345678901234567890},"via_output":"yes","price":431952.32,"step2":[1,2,3],"via_step2":true}'
req -H "X-Role: admin" "$URL/chain"
check_eq "chain of access, access, request, backend, response: 200" 200 "$CODE"
check_eq "attrs: the response stage's input has every attr set before it, exact" "$(canon "$ATTRS")" \
    "$(jv 'd["attrs"]')"
check_eq "attrs: proxy_get_attrs agrees" "$(canon "$ATTRS")" "$(jv 'd["all"]')"
check_eq "attrs: proxy_get_attr(score) keeps the number's text" "0.9678663636363636" "$(jv 'd["score"]')"
for s in 0.9678663636363636 431952.32 123456789012345678901234567890; do
    check_contains "attrs: $s comes back as written" "$BODY" "$s"
done
check_eq "attrs: one deleted through output attrs.del is gone" "None" "$(jv 'repr(d["tmp"])')"
check_eq "attrs: the backend saw the attrs of the stages before it" \
    "$(canon '{"score":0.9678663636363636,"who":{"name":"ann","big":123456789012345678901234567890},"via_output":"yes","price":431952.32,"step2":[1,2,3],"via_step2":true}')" \
    "$(jv 'json.loads(d["backend"], parse_float=decimal.Decimal)["attrs"]')"
check_eq "attrs: a request transformer read one with proxy_get_attr" "0.9678663636363636" \
    "$(jv 'json.loads(d["backend"])["headers"]["x-score"]')"
req "$URL/chain"
check_eq "chain: the access validator in the middle denies" \
    '403 {"error":"An error occurred","plugin":"guard"}' "$CODE $(jv d)"
req "$URL/noattrs"
check_eq "attrs never leak into the next request: only its own, no score" \
    '200 {"step2":[1,2,3],"via_step2":true} {"step2":[1,2,3],"via_step2":true} null' \
    "$CODE $(jv 'd["attrs"]') $(jv 'd["all"]') $(jv 'd["score"]')"
check_eq "attrs: the next request's backend saw only its own" '{"step2":[1,2,3],"via_step2":true}' \
    "$(jv 'json.loads(d["backend"])["attrs"]')"
# Interleaved: 20 /chain and 20 /noattrs at once on 2 workers; no /noattrs
# answer may carry what a /chain request set.
cpids=""
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    curl -s -m 20 -H "X-Role: admin" "$URL/chain" >"$T/chain.$i" &
    cpids="$cpids $!"
    curl -s -m 20 "$URL/noattrs" >"$T/noattrs.$i" &
    cpids="$cpids $!"
done
for p in $cpids; do wait "$p"; done
leaked=$(grep -l 0.9678663636363636 "$T"/noattrs.* | wc -l)
full=$(grep -l '"via_step2":true' "$T"/chain.* | wc -l)
check_eq "attrs under concurrency: 20 chains complete, no other request sees their attrs" "20 0" \
    "$full $leaked"
req "$URL/cleared"
check_eq "attrs: {clear: true} in an output clears them" '200 {}' "$CODE $(jv 'd["attrs"]')"

# ---- backends of other ABIs ------------------------------------------------------------------------
req -H "X-Role: admin" -d "old body" "$URL/cgi-chain"
check_eq "a WASI-CGI backend behind access + request + response plugins: the transformer's status" \
    "203 cgi" "$CODE $(header x-r)"
check_contains "... the CGI backend got the new method" "$BODY" "REQUEST_METHOD=PUT"
check_contains "... the new query" "$BODY" "QUERY_STRING=via=rw"
check_contains "... the added header" "$BODY" "HTTP_X_ADDED=cgi"
check_contains "... the new body" "$BODY" "--- body ---
new body"
req -d "old body" "$URL/cgi-chain"
check_eq "a WASI-CGI backend behind an access plugin: denied" 403 "$CODE"
req -d "old body" "$URL/x-chain"
check_eq "an Extism backend behind a request transformer gets the new body" "200 Hello, pipeline!" \
    "$CODE $BODY"

# ---- a plugin's own grants --------------------------------------------------------------------
req "$URL/grant-ok"
n1=$(jv 'd["attrs"]["global_hits"]')
req "$URL/grant-ok"
check_eq "a plugin with its own kv grant (global rw) writes the global store; the backend sees it" \
    "200 $((n1 + 1))" "$CODE $(jv 'd["attrs"]["global_hits"]')"
h0=$(hits)
req "$URL/grant-no"
check_eq "the same plugin code as a function without the grant: its call fails, 500 naming it" \
    "500 attrs" "$CODE $(jv 'd["function"]')"
check_contains "... saying the namespace is not granted" "$BODY" "global"
not_reached "a plugin without the grant" "$h0"

# ---- sinks ---------------------------------------------------------------------------------------
req "$URL/sunk/x"
check_eq "sink: the first whose sink_matches says yes answers" "410 s1" "$CODE $(header X-Sink)"
check_eq "sink: its input (origin, status, message) and body_json" \
    '{"message":"no route for this path","method":"GET","origin":"NotFound","path":"/sunk/x","sink":"s1","status":404}' \
    "$(jv d)"
req -X POST -d "x" "$URL/sunk/deep/1"
check_eq "sink: order decides (the more specific sink is listed first)" "451 deep POST" \
    "$CODE $(header X-Sink) $(jv 'd["method"]')"
req "$URL/as-sunk/x"
check_eq "AssemblyScript sink: its status, header and body_json (origin NotFound)" \
    '410 yes {"origin":"NotFound","path":"/as-sunk/x"}' "$CODE $(header X-As-Sink) $(jv d)"
req "$URL/nowhere"
check_eq "no route, no sink takes it: 404" '404 {"error":"no route for this path"}' "$CODE $(jv d)"

# ---- failures never let a request through -------------------------------------------------------
h0=$(hits)
req -X POST -d "x" "$URL/fail/trap"
check_eq "a plugin that traps: 500 naming it" "500 bad" "$CODE $(jv 'd["function"]')"
check_eq "a plugin that traps: an error message" "True" "$(jv 'repr(isinstance(d.get("error"), str) and len(d["error"]) > 0)')"
not_reached "a plugin that traps" "$h0"
h0=$(hits)
t0=$(date +%s%N)
req "$URL/fail/spin"
t1=$(date +%s%N)
check_eq "a plugin past its time limit: 504 naming it" "504 bad_slow" "$CODE $(jv 'd["function"]')"
ms=$(((t1 - t0) / 1000000))
if [ "$ms" -lt 3000 ]; then ok "a plugin past its 200 ms limit is stopped soon (${ms} ms)"; else
    not_ok "a plugin past its 200 ms limit is stopped soon" "took ${ms} ms"; fi
not_reached "a plugin past its time limit" "$h0"
h0=$(hits)
req "$URL/fail/garbage"
check_eq "a plugin answering non-JSON: 502 naming it" "502 bad" "$CODE $(jv 'd["function"]')"
not_reached "a plugin answering non-JSON" "$h0"
h0=$(hits)
req "$URL/fail/error"
check_eq "a plugin setting an Extism error: 500 naming it" "500 bad" "$CODE $(jv 'd["function"]')"
check_contains "a plugin setting an Extism error: its message" "$BODY" "pl_bad failed on purpose"
not_reached "a plugin setting an Extism error" "$h0"
h0=$(hits)
req "$URL/fail/matcher"
check_eq "a matcher answering non-JSON: 502 naming it (not a fall-through)" "502 bad" \
    "$CODE $(jv 'd["function"]')"
not_reached "a matcher answering non-JSON" "$h0"
req "$URL/fail/resp"
check_eq "a response transformer that traps: 500 naming it" "500 bad" "$CODE $(jv 'd["function"]')"
up_reset
req "$URL/fail/up/echoall"
check_eq "an access plugin that traps on an upstream route: 500" "500 bad" "$CODE $(jv 'd["function"]')"
check_eq "... and the upstream was not reached" 0 "$(up_stat hits)"

# ---- upstream backends ---------------------------------------------------------------------------
up_reset
req -X POST -d "plain" "$URL/up/echoall?q=1"
check_eq "upstream without plugins" "200 POST /echoall?q=1 plain" \
    "$CODE $(jv 'd["method"]') $(jv 'd["path"]') $(jv 'd["body"]')"
req -H "X-Role: admin" -H "X-Test: up" -d "old body" "$URL/upx/echoall?k=1"
check_eq "upstream with access + request + response plugins: the response transformer's status" 201 "$CODE"
check_eq "upstream with plugins: the upstream saw the transformed request" "PUT /echoall?k=1 the new body" \
    "$(jv 'd["method"]') $(jv 'd["path"]') $(jv 'd["body"]')"
check_eq "upstream with plugins: headers kept and added reach the upstream" "up up admin" \
    "$(jv 'd["headers"]["x-test"]') $(jv 'd["headers"]["x-added"]') $(jv 'd["headers"]["x-role"]')"
check_eq "upstream with plugins: the upstream's headers plus the transformer's" "yes up 200" \
    "$(header X-Upstream) $(header x-r) $(header x-orig-status)"
n=$(up_stat hits)
req -H "X-Role: guest" "$URL/upx/echoall"
check_eq "upstream with plugins: access denies" 403 "$CODE"
check_eq "upstream with plugins: denied requests do not reach the upstream" "$n" "$(up_stat hits)"
req "$URL/upurl/ignored?x=1"
check_eq "upstream: a request transformer's url sets the upstream path and query" "200 GET /echoall?via=rw" \
    "$CODE $(jv 'd["method"]') $(jv 'd["path"]')"
req "$URL/up-resp/missing"
check_eq "upstream 404 through a response transformer without status: 200" "200 404 2" \
    "$CODE $(header x-orig-status) $(header x-r)"
check_eq "... the upstream's body kept" "not here" "$BODY"
req -H "X-Role: admin" "$URL/updown/x"
check_eq "upstream down (with plugins): 502 naming the upstream" 502 "$CODE"
check_contains "upstream down: the body names it" "$BODY" "http://127.0.0.1:1"
req "$URL/upslow/slow?ms=3000"
check_eq "upstream slower than the route's timeout (with plugins): 504" 504 "$CODE"
check_contains "upstream slow: the body says so" "$BODY" "300 ms"
# ---- stage metrics ---------------------------------------------------------------------------
ADMIN=$(sed -n 's/.*admin API on \(http:[^ ]*\).*/\1/p' "$LOG" | head -n 1)
TOKEN=$(cat "$KILN_HOME/admin.token")
req -H "Authorization: Bearer $TOKEN" "$ADMIN/metrics"
check_eq "stage metrics: /metrics answers" 200 "$CODE"
check_contains "stage metrics: a histogram family" "$BODY" "# TYPE kiln_stage_duration_us histogram"
for kv in 'kind="access",function="guard"' 'kind="request",function="rw"' \
    'kind="response",function="attrs"' 'kind="matcher",function="match"' \
    'kind="pre-route",function="pre"' 'kind="sink",function="sink"' 'kind="backend",function="echo"'; do
    n=$(printf '%s\n' "$BODY" | sed -n "s/^kiln_stage_duration_us_count{$kv} //p")
    check "stage metrics: $kv observed (${n:-none})" [ "${n:-0}" -ge 1 ]
done
serve_stop
check_eq "the pipeline server stops cleanly (exit 0: no sanitizer report under SANITIZE=1)" 0 "$SRC"

# ---- a second server: a sink without sink_matches, the sink context --------------------------
cat >"$D/sinks.yaml" <<YAML
server: {threads: 1, max_connections_per_ip: 0}
kv: {backend: memory}
functions:
  echo: {module: pl_echo.wasm, abi: otoroshi}
  ctx: {module: pl_ctx.wasm}
  sink_all: {module: pl_sink_all.wasm}
routes:
  - {path: /plain, function: echo}
sinks:
  - {function: ctx}
  - {function: sink_all, config: {name: all}}
YAML
if ! serve_start sinks --config "$D/sinks.yaml"; then
    not_ok "server with sinks starts" "$(tail -n 20 "$LOG")"
    finish
    exit 1
fi
ok "server with sinks starts"
req "$URL/ctx-sink/x"
check_eq "sink context: every field (sink_matches and sink_handle)" "200 context ok" "$CODE $BODY"
req -X DELETE "$URL/anything/else"
check_eq "a sink without sink_matches takes every unmatched request (status default 200)" "200 all" \
    "$CODE $(header X-Sink)"
check_eq "... told why" '{"message":"no route for this path","method":"DELETE","origin":"NotFound","path":"/anything/else","sink":"all","status":404}' \
    "$(jv d)"
req "$URL/plain"
check_eq "a matched route is not given to sinks" "200 /plain" "$CODE $(jv 'd["uri"]')"
serve_stop
check_eq "the sinks server stops cleanly" 0 "$SRC"

# ---- directory mode: a sidecar attaches plugins ------------------------------------------
L=$T/live
mkdir -p "$L"
cp "$XG/pl_echo.wasm" "$L/echo.wasm"
cp "$XG/pl_access.wasm" "$L/guard.wasm"
cp "$XG/pl_resp.wasm" "$L/stamp.wasm"
cat >"$L/echo.yaml" <<YAML
abi: otoroshi
routes:
  - path: /guarded/...
    plugins:
      - {function: guard, kind: access, config: {role: admin, message: sidecar says no, status: 401}}
      - {function: stamp, kind: response, config: {status: 203, add_headers: {x-r: sidecar}}}
YAML
if ! serve_start live "$L"; then
    not_ok "directory server with a sidecar's plugins starts" "$(tail -n 20 "$LOG")"
    finish
    exit 1
fi
req -H "X-Role: admin" "$URL/guarded/x"
check_eq "sidecar plugins: access allows, the response transformer runs" "203 sidecar /guarded/x" \
    "$CODE $(header x-r) $(jv 'd["uri"]')"
req "$URL/guarded/x"
check_eq "sidecar plugins: access denies with its status and message" \
    '401 {"error":"sidecar says no","plugin":"guard"}' "$CODE $(jv d)"
serve_stop
check_eq "the directory server stops cleanly" 0 "$SRC"
finish
