#!/bin/sh
# test_serve_config.sh - `kiln serve --config`: YAML and JSON files, routing
# precedence (exact > param > prefix, methods and 405 + Allow, Host), route
# parameters, per-function env/limits, request limits (413 upfront and while
# streaming, 431, slow clients), configuration errors at start-up, a module
# that fails to compile (503 while the others work), SIGHUP reload and the
# SIGTERM drain. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

D=$T/site
mkdir -p "$D/mods"
for g in cgi_hello cgi_echo cgi_modes cgi_counter cgi_as cgi_file; do
    [ -f "$G/$g.wasm" ] && cp "$G/$g.wasm" "$D/mods/"
done
mkdir -p "$D/data"
printf 'file contents\n' >"$D/data/hello.txt"
printf '\0asm\1\0\0\0garbage' >"$D/mods/broken.wasm"

cat >"$D/kiln.yaml" <<'EOF'
# kiln serve test configuration
server:
  max_body_bytes: 1KiB
  max_header_bytes: 2KiB
  connection_timeout: 2s
  drain_timeout: 20s
functions:
  hello:
    module: mods/cgi_hello.wasm
  echo:
    module: mods/cgi_echo.wasm
    abi: wasi
    env: {GREETING: hi, REQUEST_METHOD: overridden}
  bigecho:
    module: mods/cgi_echo.wasm
    max_body_bytes: 100KiB
    routes: [/big]
  counter:
    module: mods/cgi_counter.wasm
  modes:
    module: mods/cgi_modes.wasm
    timeout: 300ms
    max_memory: 8MiB
    max_output_bytes: 4KiB
    routes: [/modes]
  sleepy:
    module: mods/cgi_modes.wasm
    timeout: 10s
    routes: [/sleepy]
  broken:
    module: mods/broken.wasm
    routes: [/broken]
  files:
    module: mods/cgi_file.wasm
    dirs: [{host: data, guest: /data, read_only: true}]
    routes: [/files/*]
routes:
  - {path: /hello, function: hello}
  - {path: /users/me, function: hello}
  - {path: /users/:id, function: echo, methods: [GET]}
  - {path: /users/*, function: counter}
  - {path: /items, function: hello, method: GET}
  - {path: /items, function: echo, methods: [POST, PUT]}
  - {path: /hello, function: echo, host: api.example.com}
  - {path: /any/..., function: hello, host: "*.example.org"}
EOF
if [ -f "$D/mods/cgi_as.wasm" ]; then
    printf '  as:\n    module: mods/cgi_as.wasm\n    routes: ["/as/:name"]\n' >"$T/as.yaml"
    # Insert the AssemblyScript function under `functions:`.
    sed -i "/^functions:/r $T/as.yaml" "$D/kiln.yaml"
fi

if ! serve_start yaml --config "$D/kiln.yaml"; then
    not_ok "server starts with a YAML configuration" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts with a YAML configuration"
L=$(cat "$LOG")
check_contains "startup: routes listed with methods" "$L" "route GET /users/:id -> echo (wasi)"
check_contains "startup: host routes listed" "$L" "route * api.example.com/hello -> echo (wasi)"
check_contains "startup: broken module logged" "$L" "function 'broken' is unavailable"

# --- routing ---------------------------------------------------------------------
expect "exact route" 200 "hello from /hello" "$URL/hello"
expect "exact beats param: /users/me" 200 "hello from /users/me" "$URL/users/me"
expect "param beats prefix: /users/42" 200 "X_PARAM_ID=42" "$URL/users/42"
expect "param values are decoded" 200 "X_PARAM_ID=a b" "$URL/users/a%20b"
expect "prefix catches deeper paths" 200 "count=1" "$URL/users/42/posts"
expect "prefix includes its own root" 200 "count=1" "$URL/users"
expect "param route with GET only; POST falls to the prefix" 200 "count=1" -X POST "$URL/users/42"
expect "method: GET /items" 200 "hello from /items" "$URL/items"
expect "method: POST /items" 200 "REQUEST_METHOD=POST" -d x "$URL/items"
expect "method: DELETE /items is 405" 405 "method not allowed" -X DELETE "$URL/items"
check_eq "405: Allow lists every method" "GET, HEAD, POST, PUT" "$(header Allow)"
expect "host: exact host route wins" 200 "GATEWAY_INTERFACE" -H "Host: api.example.com" \
    "$URL/hello"
expect "host: other hosts get the host-less route" 200 "hello from /hello" \
    -H "Host: www.example.com" "$URL/hello"
expect "host: wildcard host (SCRIPT_NAME is the prefix)" 200 "hello from /any" -H "Host: a.example.org:8080" "$URL/any/x"
expect "host: wildcard needs a subdomain" 404 "" -H "Host: example.org" "$URL/any/x"
expect "unknown path: 404" 404 "no route" "$URL/nope"
if [ -f "$D/mods/cgi_as.wasm" ]; then
    expect "AssemblyScript guest gets route params" 200 "hello bob from AssemblyScript" \
        "$URL/as/bob"
fi

# --- per-function settings ------------------------------------------------------------
req "$URL/users/7"
check_contains "env: the function's environment" "$BODY" "GREETING=hi"
n=$(printf '%s\n' "$BODY" | grep -c '^REQUEST_METHOD=')
check_eq "env: CGI variables win over the function's env" 1 "$n"
check_contains "env: ... with the request's value" "$BODY" "REQUEST_METHOD=GET"
t0=$(date +%s)
expect "configured time limit: 504" 504 '"timeout_ms":300' "$URL/modes?loop"
t1=$(date +%s)
check "configured time limit: fast" test $((t1 - t0)) -le 3
expect "configured memory limit: 500 out of memory" 500 '"max_memory":8388608' "$URL/modes?hog"
check_contains "configured memory limit: says out of memory" "$BODY" '"error":"out of memory'
expect "dirs: a preopened directory is readable" 200 "file contents" "$URL/files/hello.txt"
check_contains "dirs: read_only refuses writes" "$BODY" "write: Read-only file system"
check "dirs: nothing was written" test ! -e "$D/data/written.txt"
expect "dirs: no escape with .." 404 "" "$URL/files/..%2F..%2Fetc%2Fpasswd"
expect "response under max_output_bytes: 200" 200 "abcdefghij" "$URL/modes?big=3000"
check_eq "response under max_output_bytes: whole body" 3000 "$(header Content-Length)"
expect "response over max_output_bytes: 500" 500 "exceeds the limit of 4096" "$URL/modes?big=5000"
expect "output far over max_output_bytes: 500" 500 "exceeds max_output_bytes" \
    "$URL/modes?big=200000"
expect "module that failed to compile: 503" 503 '"function":"broken"' "$URL/broken"
expect "... while other routes work" 200 "hello from" "$URL/hello"

# --- request limits ---------------------------------------------------------------------
head -c 2000 /dev/zero | tr '\0' a >"$T/2k"
head -c 50000 /dev/zero | tr '\0' b >"$T/50k"
expect "body over max_body_bytes (Content-Length): 413" 413 "larger than 1024 bytes" \
    --data-binary @"$T/2k" "$URL/items"
expect "body over the limit, chunked: 413" 413 "larger than 1024 bytes" \
    -H "Transfer-Encoding: chunked" --data-binary @"$T/2k" "$URL/items"
expect "body under the limit: 200" 200 "--- body ---" --data-binary "small" "$URL/items"
expect "per-function max_body_bytes raises the limit" 200 "CONTENT_LENGTH=50000" \
    --data-binary @"$T/50k" "$URL/big"
big=$(head -c 3000 /dev/zero | tr '\0' h)
expect "headers over max_header_bytes: 431" 431 "" -H "X-Big: $big" "$URL/hello"
huge=$(head -c 60000 /dev/zero | tr '\0' h)
expect "headers far over the limit: 431" 431 "" -H "X-Huge: $huge" "$URL/hello"
out=$($CLIENT slowloris "$HOSTPORT" 8)
case "$out" in "closed after "[1-4]" s"*) ok "slow client: closed after connection_timeout ($out)" ;;
*) not_ok "slow client: closed after connection_timeout" "$out" ;; esac
expect "server fine after the limit tests" 200 "hello from" "$URL/hello"

# --- SIGHUP reload ----------------------------------------------------------------------
cp "$D/kiln.yaml" "$T/kiln.yaml.orig"
printf '  - {path: /added, function: hello}\n' >>"$D/kiln.yaml"
expect "reload: new route absent before SIGHUP" 404 "" "$URL/added"
kill -HUP "$SPID"
i=0
while [ $i -lt 100 ] && ! grep -q "reloaded in" "$LOG"; do sleep 0.1; i=$((i + 1)); done
expect "reload: new route served after SIGHUP" 200 "hello from /added" "$URL/added"
expect "reload: old routes still served" 200 "X_PARAM_ID=9" "$URL/users/9"
printf 'functions: {oops: [\n' >"$D/kiln.yaml"
kill -HUP "$SPID"
i=0
while [ $i -lt 100 ] && ! grep -q "reload failed" "$LOG"; do sleep 0.1; i=$((i + 1)); done
check_contains "reload: a broken file is reported" "$(cat "$LOG")" \
    "reload failed, still serving the previous configuration: $D/kiln.yaml:2"
expect "reload: ... and the previous table keeps serving" 200 "hello from /added" "$URL/added"
cp "$T/kiln.yaml.orig" "$D/kiln.yaml"

# --- SIGTERM drains in-flight requests ---------------------------------------------------
curl -s -m 20 -o "$T/slow.out" -w '%{http_code}' "$URL/sleepy?sleep=1500" >"$T/slow.code" &
CPID=$!
sleep 0.5 # the guest is now sleeping for 1.5 s
kill -TERM "$SPID"
sleep 0.3
curl -s -m 3 -o /dev/null "$URL/hello"
check_eq "drain: new connections are refused (curl exit 7)" 7 $?
wait "$CPID"
check_eq "drain: the in-flight request completes" "200" "$(cat "$T/slow.code")"
check_eq "drain: ... with its body" "slept" "$(cat "$T/slow.out")"
wait "$SPID"
check_eq "drain: exit status 0" 0 $?
L=$(cat "$LOG")
check_contains "drain: logged" "$L" "draining 1 request in flight"
check_contains "drain: stopped" "$L" "kiln serve: stopped"

# --- JSON configuration --------------------------------------------------------------------
cat >"$D/kiln.json" <<'EOF'
{
  "server": {"max_body_bytes": "2KiB", "quiet": true},
  "functions": {
    "hello": {"module": "mods/cgi_hello.wasm", "routes": ["/hi"]},
    "echo": {"module": "mods/cgi_echo.wasm", "env": {"FROM": "json"}}
  },
  "routes": [{"path": "/e/:who", "function": "echo", "methods": ["GET"]}]
}
EOF
if serve_start json --config "$D/kiln.json"; then
    ok "server starts with a JSON configuration"
    expect "json: route from the function" 200 "hello from /hi" "$URL/hi"
    expect "json: param route and env" 200 "X_PARAM_WHO=ann" "$URL/e/ann"
    check_contains "json: env" "$BODY" "FROM=json"
    expect "json: methods" 405 "" -X POST -d x "$URL/e/ann"
    sleep 0.2
    if grep -q '^GET /hi' "$LOG"; then not_ok "json: quiet: no access log" "$(cat "$LOG")"
    else ok "json: quiet: no access log"; fi
    serve_stop
    check_eq "json: exit status 0" 0 "$SRC"
else
    not_ok "server starts with a JSON configuration" "$(cat "$LOG")"
fi

# --- configuration errors stop the start-up with FILE:LINE ------------------------------------
# bad_config NAME TEXT NEEDLE: kiln serve must exit 1 and say NEEDLE.
bad_config() {
    printf '%s' "$2" >"$D/bad.yaml"
    out=$(timeout 60 "$KILN" serve --admin-listen off --listen 127.0.0.1:0 --config "$D/bad.yaml" 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && printf '%s' "$out" | grep -qF -- "$3"; then
        ok "config error: $1"
    else
        not_ok "config error: $1" "exit $rc: $out"
    fi
}
bad_config "YAML syntax" 'functions:
  a: {module: mods/cgi_hello.wasm
' "bad.yaml:3:1: YAML syntax error"
bad_config "unknown key" 'functions:
  a:
    module: mods/cgi_hello.wasm
    memroy: 1MiB
' "bad.yaml:4: unknown key 'memroy' in function 'a'"
bad_config "missing module" 'functions:
  a: {module: mods/nope.wasm}
' "bad.yaml:2: function 'a': module 'mods/nope.wasm' not found"
bad_config "route to an undefined function" 'functions:
  a: {module: mods/cgi_hello.wasm}
routes:
  - {path: /x, function: b}
' "bad.yaml:4: route '/x': function 'b' is not defined"
bad_config "bad route pattern" 'functions:
  a: {module: mods/cgi_hello.wasm, routes: ["/x/*/y"]}
' "bad.yaml:2: route '/x/*/y'"
bad_config "duplicate route" 'functions:
  a: {module: mods/cgi_hello.wasm, routes: [/x, /x]}
' "duplicates route '/x'"
bad_config "reuse refused by the CGI ABI" 'functions:
  a: {module: mods/cgi_hello.wasm, reuse: true, routes: [/x]}
' "'reuse' is not supported by the wasi (CGI) ABI"
# --- the documented example -------------------------------------------------------------
E=$T/example
cp -r "$ROOT/examples/serve" "$E"
if clang --target=wasm32-wasi --sysroot=/usr -O2 -s "$E/hello_cgi.c" -o "$E/hello_cgi.wasm" &&
    clang --target=wasm32-wasi --sysroot=/usr -O2 -s -mexec-model=reactor "$E/greet_extism.c" \
        -o "$E/greet_extism.wasm"; then
    for f in kiln.yaml kiln.json; do
        if serve_start "example-$f" --config "$E/$f"; then
            ok "examples/serve/$f starts"
            expect "examples/serve/$f: CGI route with a param" 200 "Hi, bob! (GET)" "$URL/hello/bob"
            expect "examples/serve/$f: Extism route" 200 "Hello, Kiln!" -X POST -d Kiln \
                "$URL/api/greet"
            serve_stop
        else
            not_ok "examples/serve/$f starts" "$(cat "$LOG")"
        fi
    done
    expect_example=$(python3 - "$ROOT/README.md" <<'PY'
import sys
text = open(sys.argv[1]).read()
mark = "<!-- examples/serve/kiln.yaml -->\n```yaml\n"
i = text.find(mark)
print(text[i + len(mark):text.index("```", i + len(mark))] if i >= 0 else "(no example in README)", end="")
PY
)
    check_eq "README's configuration example is examples/serve/kiln.yaml" \
        "$(cat "$ROOT/examples/serve/kiln.yaml")" "$expect_example"
else
    not_ok "examples/serve guests build"
fi

out=$("$KILN" serve --admin-listen off --config "$D/missing.yaml" 2>&1)
check_eq "config error: missing file is exit 1" 1 $?
check_contains "config error: missing file message" "$out" "cannot open the configuration"
finish
