#!/bin/sh
# test_serve.sh - `kiln serve DIR` end to end: directory mode (routes from the
# detected ABI), the WASI-CGI ABI (variables, stdin, response parsing, stderr
# to the log), every error mapping with the default limits (trap 500, out of
# memory 500, time limit 504, non-zero exit 500, malformed output 502,
# uncompilable module 503, no ABI 503), keep-alive, HEAD, an AssemblyScript
# guest, an Extism plugin, and a clean SIGTERM. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

D=$T/fns
mkdir -p "$D"
for g in cgi_hello cgi_echo cgi_modes cgi_counter cgi_bigmem cgi_as reactor_only; do
    [ -f "$G/$g.wasm" ] && cp "$G/$g.wasm" "$D/"
done
printf 'this is not WebAssembly\n' >"$D/broken.wasm"
printf 'ignored\n' >"$D/notes.txt"
# An Extism plugin from the Extism ABI's test guests, when they build.
XG=$KILN_BUILD/guests_extism
if [ -f "$ROOT/tests/guests_extism/build.sh" ] &&
    sh "$ROOT/tests/guests_extism/build.sh" "$XG" >/dev/null 2>&1 && [ -f "$XG/greet.wasm" ]; then
    cp "$XG/greet.wasm" "$D/"
    [ -f "$XG/fail.wasm" ] && cp "$XG/fail.wasm" "$D/"
fi

if ! serve_start dir "$D"; then
    not_ok "server starts on a directory" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts on a directory"
L=$(cat "$LOG")
check_contains "startup: lists the CGI route" "$L" "route * /cgi_hello -> cgi_hello (wasi)"
check_contains "startup: CGI subpaths too" "$L" "route * /cgi_hello/* -> cgi_hello (wasi)"
check_contains "startup: compile failure is logged with the reason" "$L" \
    "function 'broken' is unavailable (its routes answer 503)"
check_contains "startup: the compiler's message is in the log" "$L" "not a WebAssembly binary"
check_contains "startup: a module no ABI serves is logged" "$L" "no handler ABI recognises"
case "$L" in *notes*) not_ok "startup: non-.wasm files are ignored" "$L" ;;
*) ok "startup: non-.wasm files are ignored" ;; esac

# --- the CGI ABI ---------------------------------------------------------------
expect "hello: 200" 200 "hello from /cgi_hello" "$URL/cgi_hello"
check_eq "hello: Content-Type from the guest" "text/plain" "$(header Content-Type)"
expect "subpath: SCRIPT_NAME is the route" 200 "hello from /cgi_hello" "$URL/cgi_hello/x/y"

req -X POST -H "X-Foo: bar" -H "Content-Type: text/x-test" -H "Proxy: evil" \
    --data-binary "hello body" "$URL/cgi_echo/a/b%20c?x=1&y=%20"
check_eq "echo: 200" 200 "$CODE"
for v in "REQUEST_METHOD=POST" "SCRIPT_NAME=/cgi_echo" "PATH_INFO=/a/b c" \
    "QUERY_STRING=x=1&y=%20" "CONTENT_TYPE=text/x-test" "CONTENT_LENGTH=10" \
    "SERVER_NAME=127.0.0.1" "SERVER_PORT=${HOSTPORT#*:}" "SERVER_PROTOCOL=HTTP/1.1" \
    "GATEWAY_INTERFACE=CGI/1.1" "REMOTE_ADDR=127.0.0.1" "HTTP_X_FOO=bar" \
    "REQUEST_URI=/cgi_echo/a/b%20c?x=1&y=%20" "HTTP_HOST=$HOSTPORT"; do
    check_contains "echo: $v" "$BODY" "$v"
done
case "$BODY" in *HTTP_PROXY*) not_ok "echo: no HTTP_PROXY (httpoxy)" "$BODY" ;;
*) ok "echo: no HTTP_PROXY (httpoxy)" ;; esac
case "$BODY" in *HTTP_CONTENT_TYPE* | *HTTP_CONTENT_LENGTH*) not_ok "echo: no HTTP_CONTENT_*" ;;
*) ok "echo: no HTTP_CONTENT_*" ;; esac
check_contains "echo: the body arrives on stdin" "$BODY" "--- body ---
hello body"
req -H "X-Multi: a" -H "X-Multi: b" -H "x-multi: c" -H "X_Under: sneaky" "$URL/cgi_echo"
check_contains "echo: repeated headers joined with ', '" "$BODY" "HTTP_X_MULTI=a, b, c"
case "$BODY" in *sneaky*) not_ok "echo: header names with '_' are not passed" "$BODY" ;;
*) ok "echo: header names with '_' are not passed" ;; esac
req "$URL/cgi_echo"
case "$BODY" in *CONTENT_LENGTH*) not_ok "echo: no CONTENT_LENGTH without a body" "$BODY" ;;
*) ok "echo: no CONTENT_LENGTH without a body" ;; esac

head -c 300000 /dev/urandom >"$T/rand"
curl -s -o "$T/rand.out" --data-binary @"$T/rand" "$URL/cgi_echo"
tail -c 300000 "$T/rand.out" >"$T/rand.tail"
check "echo: 300 kB binary body round-trips through stdin/stdout" cmp "$T/rand" "$T/rand.tail"

expect "status: Status header sets the code" 201 "created" "$URL/cgi_modes?status"
check_eq "status: custom header passed" "yes" "$(header X-Custom)"
check_eq "status: LF-only headers accepted" "text/x-test" "$(header Content-Type)"
expect "redirect: Location without Status is 302" 302 "" "$URL/cgi_modes?redirect"
check_eq "redirect: Location header" "/elsewhere" "$(header Location)"
expect "hop-by-hop: response ok" 200 "hop" "$URL/cgi_modes?hopbyhop"
check_eq "hop-by-hop: the guest's Content-Length is dropped" "3" "$(header Content-Length)"
check_eq "hop-by-hop: other headers kept" "1" "$(header X-Kept)"
expect "exit(0) after a response is success" 200 "exit zero" "$URL/cgi_modes?exit0"
expect "stderr: response" 200 "logged" "$URL/cgi_modes?stderr"
sleep 0.2
L=$(cat "$LOG")
check_contains "stderr: goes to the log prefixed by the function" "$L" "[cgi_modes] first log line"
check_contains "stderr: one log line per guest line" "$L" "[cgi_modes] second log line"
out=$(printf 'HEAD /cgi_hello HTTP/1.0\r\n\r\n' | $CLIENT raw "$HOSTPORT" | tr -d '\r')
check_contains "HEAD: 200" "$out" "HTTP/1.1 200 OK"
check_contains "HEAD: Content-Length of the GET body" "$out" "Content-Length: 22"
case "$out" in *"hello from"*) not_ok "HEAD: no body" "$out" ;; *) ok "HEAD: no body" ;; esac

# --- errors --------------------------------------------------------------------
expect "malformed output: 502" 502 '"function":"cgi_modes"' "$URL/cgi_modes?malformed"
check_contains "malformed output: says why" "$BODY" "is not a header"
check_eq "malformed output: JSON body" "application/json" "$(header Content-Type)"
expect "no blank line: 502" 502 "no blank line" "$URL/cgi_modes?noblank"
expect "no output: 502" 502 "wrote nothing" "$URL/cgi_modes?empty"
expect "trap: 500" 500 '"trap":"unreachable executed"' "$URL/cgi_modes?trap"
check_contains "trap: names the function" "$BODY" '"function":"cgi_modes"'
expect "non-zero exit: 500" 500 '"exit_code":3' "$URL/cgi_modes?exit3"
check_contains "non-zero exit: message" "$BODY" "exited with code 3"
expect "memory limit (default 64 MiB): 500 out of memory" 500 '"error":"out of memory' \
    "$URL/cgi_modes?hog"
check_contains "memory limit: trap kind" "$BODY" '"trap":"out of memory"'
expect "memory too large at instantiation: 500 out of memory" 500 '"error":"out of memory' \
    "$URL/cgi_bigmem"
check_contains "memory too large: names the limit" "$BODY" "the limit is 1024 pages"
t0=$(date +%s)
expect "time limit (default 5 s): 504" 504 '"timeout_ms":5000' "$URL/cgi_modes?loop"
t1=$(date +%s)
check "time limit: answered within 9 s" test $((t1 - t0)) -le 9
expect "uncompilable module: 503" 503 "failed to compile" "$URL/broken"
check_contains "uncompilable module: names the function" "$BODY" '"function":"broken"'
expect "uncompilable module: subpaths too" 503 "" "$URL/broken/x"
expect "module no ABI serves: 503" 503 "matches no handler ABI" "$URL/reactor_only"
expect "other routes keep working after every error" 200 "hello from" "$URL/cgi_hello"
expect "unknown path: 404" 404 "no route" "$URL/nothing"
expect "bad escape in the path: 400" 400 "malformed request path" "$URL/cgi_hello/%zz"

# --- connections ----------------------------------------------------------------
out=$(curl -sv "$URL/nothing" "$URL/cgi_hello" "$URL/cgi_modes?trap" "$URL/cgi_hello" 2>&1)
n=$(printf '%s\n' "$out" | grep -c "Re-using existing connection")
check_eq "keep-alive: one connection for 4 requests, errors included" 3 "$n"

# --- AssemblyScript and Extism guests --------------------------------------------
if [ -f "$D/cgi_as.wasm" ]; then
    expect "AssemblyScript CGI guest: 200" 200 "hello world from AssemblyScript" \
        --data-binary "as body" "$URL/cgi_as"
    check_contains "AssemblyScript CGI guest: reads stdin" "$BODY" "method=POST body=as body"
    check_eq "AssemblyScript CGI guest: its header" "assemblyscript" "$(header X-Guest)"
else
    echo "skip: AssemblyScript guest not built (npm unavailable)"
fi
if [ -f "$D/greet.wasm" ]; then
    check_contains "Extism plugin: export route listed" "$(cat "$LOG")" \
        "route * /greet/greet -> greet/greet (extism)"
    expect "Extism plugin: /<name>/<export> answers" 200 "Hello, Kiln!" --data-binary Kiln \
        "$URL/greet/greet"
    if [ -f "$D/fail.wasm" ]; then
        expect "guest error (Extism error_set): 500 with its message" 500 \
            "something went wrong" "$URL/fail/fail"
        check_contains "guest error: names the function" "$BODY" '"function":"fail/fail"'
    fi
else
    echo "skip: Extism test plugin not built"
fi

# --- access log and shutdown ------------------------------------------------------
sleep 0.2
if grep -Eq '^GET /cgi_hello 200 [0-9]+us cgi_hello$' "$LOG"; then
    ok "access log: method path status us function"
else
    not_ok "access log: method path status us function" "$(grep -E '^GET' "$LOG" | head -n 5)"
fi
check "access log: 404 has no function" grep -Eq '^GET /nothing 404 [0-9]+us -$' "$LOG"
kill -0 "$SPID" 2>/dev/null && ok "server survived every error" || not_ok "server survived every error"
out=$("$KILN" serve --admin-listen off --listen "$HOSTPORT" "$D" 2>&1)
check_eq "address in use: exit 1" 1 $?
check_contains "address in use: message" "$out" "cannot listen on $HOSTPORT"
serve_stop
check_eq "SIGTERM: exit status 0" 0 "$SRC"
check_contains "SIGTERM: logged" "$(cat "$LOG")" "kiln serve: stopped"

# --- command line ------------------------------------------------------------------
out=$("$KILN" serve 2>&1)
check_eq "usage: no directory is exit 2" 2 $?
check_contains "usage: message" "$out" "nothing to serve"
out=$("$KILN" serve --bogus "$D" 2>&1)
check_eq "usage: unknown option is exit 2" 2 $?
out=$("$KILN" serve --admin-listen off --listen 127.0.0.1:99999 "$D" 2>&1)
check_eq "bad --listen port: exit 1" 1 $?
check_contains "bad --listen port: message" "$out" "bad port"
out=$("$KILN" serve --admin-listen off "$T/no-such-dir" 2>&1)
check_eq "missing directory: exit 1" 1 $?
check_contains "missing directory: message" "$out" "cannot read the directory"
out=$("$KILN" serve --help)
check_contains "--help describes the config" "$out" "--config FILE"
finish
