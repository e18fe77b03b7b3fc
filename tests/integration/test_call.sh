#!/bin/sh
# test_call.sh - `kiln call` end to end on the Extism and Otoroshi guests of
# tests/guests_extism/ (and the AssemblyScript ones of tests/as/ when npm is
# available): input/output, config, vars, memory edge cases, logging, HTTP
# against a loopback server, WASI, errors, traps, time and memory limits,
# manifests and the command line. Ends with "N passed, N failed".
ROOT=${KILN_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
KILN_BUILD=${KILN_BUILD:-$ROOT/build}
KILN=${KILN:-$KILN_BUILD/kiln}
export KILN_HOME=${KILN_HOME:-$KILN_BUILD/test-home}
. "$ROOT/tests/lib.sh"

G=$KILN_BUILD/guests_extism
build_out=$(sh "$ROOT/tests/guests_extism/build.sh" "$G" 2>&1)
summary=$(echo "$build_out" | tail -n 1)
case "$summary" in
*" 0 failed") ok "guests build ($summary)" ;;
*) not_ok "guests build" "$build_out" ;;
esac
T=$(mktemp -d /tmp/kiln-call-test-XXXXXX)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

# kcall ARGS...: run `kiln call ARGS` with stdin from /dev/null; sets OUT, ERR, RC.
kcall() {
    "$KILN" call "$@" >"$T/out" 2>"$T/err" </dev/null
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

# --- input and output ------------------------------------------------------------
kcall "$G/greet.wasm" greet --input World
check_eq "greet: output" "Hello, World!" "$OUT"
check_eq "greet: exit 0" 0 "$RC"
check_eq "greet: quiet stderr" "" "$ERR"
kcall "$G/greet.wasm" greet
check_eq "greet: empty input" "Hello, !" "$OUT"
out=$(printf 'from stdin' | "$KILN" call "$G/greet.wasm" greet -)
check_eq "greet: '-' reads stdin" "Hello, from stdin!" "$out"
printf 'from a file' >"$T/in.txt"
kcall "$G/greet.wasm" greet --input-file "$T/in.txt"
check_eq "greet: --input-file" "Hello, from a file!" "$OUT"
kcall -i=opts-first "$G/greet.wasm" greet
check_eq "greet: options before the module, -i=VALUE" "Hello, opts-first!" "$OUT"
head -c 200000 /dev/urandom | base64 -w0 >"$T/big.txt"
kcall "$G/greet.wasm" greet --input-file "$T/big.txt"
check_eq "greet: 266 kB input round-trips" "Hello, $(cat "$T/big.txt")!" "$OUT"

kcall "$G/count_vowels.wasm" count_vowels --input "Hello, World!"
check_eq "count_vowels: JSON output" '{"count":3,"total":3,"vowels":"aeiouAEIOU"}' "$OUT"
kcall "$G/count_vowels.wasm" count_vowels --input "Hello, World!" --loop 3
check_contains "count_vowels: --loop keeps the var total" "$OUT" '"total":9'
kcall "$G/count_vowels.wasm" count_vowels --input "Hello, World!" --config vowels=lo
check_eq "count_vowels: config changes the vowels" \
    '{"count":5,"total":5,"vowels":"lo"}' "$OUT"

# --- config and vars ----------------------------------------------------------------
kcall "$G/config.wasm" greeting --config greeting=hi
check_eq "config: config_get" "hi" "$OUT"
kcall "$G/config.wasm" greeting
check_eq "config: absent key" "(none)" "$OUT"
kcall "$G/config.wasm" greeting --config greeting=
check_eq "config: empty value reads as absent" "(none)" "$OUT"
kcall "$G/config.wasm" greeting --config greeting=a=b
check_eq "config: value with '='" "a=b" "$OUT"

kcall "$G/vars.wasm" count --loop 3
check_eq "vars: var persists across calls" "123" "$OUT"
kcall "$G/vars.wasm" count
check_eq "vars: a new process starts empty" "1" "$OUT"
kcall "$G/vars.wasm" global --loop 3
check_eq "vars: instance globals persist across calls (--loop)" "123" "$OUT"
kcall "$G/vars.wasm" too_big
check_eq "vars: over max_var_bytes: exit 1" 1 "$RC"
check_contains "vars: over max_var_bytes: message" "$ERR" "Variable store is full"
kcall "$G/vars.wasm" count --var counter=41
check_eq "vars: --var presets a var" "42" "$OUT"
check_eq "vars: no vars printed without --show-vars" "" "$ERR"
kcall "$G/vars.wasm" count --var counter=41 --loop 2 --show-vars
check_eq "vars: --show-vars keeps stdout the output" "4243" "$OUT"
check_eq "vars: --show-vars prints the vars after the calls" "var counter=43" "$ERR"
kcall "$G/vars.wasm" count --var 'counter=9' --var 'bin=a\b' --show-vars
check_contains "vars: --show-vars escapes bytes" "$ERR" 'var bin=a\x5cb'
kcall "$G/vars.wasm" count --var novalue
check_eq "vars: bad --var: exit 2" 2 "$RC"
cat >"$T/novars.json" <<EOF
{"wasm": [{"path": "$G/vars.wasm"}], "memory": {"max_var_bytes": 0}}
EOF
kcall --manifest "$T/novars.json" count
check_eq "vars: disabled: exit 1" 1 "$RC"
check_contains "vars: disabled: message" "$ERR" "Vars are disabled by this host"

# --- memory edge cases ------------------------------------------------------------------
for input in "" "a" "abcdefg" "abcdefgh" "abcdefghijklmnopq"; do
    kcall "$G/edge.wasm" check --input "$input"
    check_eq "edge cases with a ${#input}-byte input" "ok" "$OUT$ERR"
done
kcall "$G/edge.wasm" echo8 --input "abcdefghij"
n=$(printf '%s' "$OUT" | wc -c)
check_eq "echo8: input_load_u64 past the end reads 0 (tail is zeros)" "abcdefgh" "$OUT"
"$KILN" call "$G/edge.wasm" echo8 --input "abcdefghij" | od -An -c | tr -s ' ' >"$T/od"
check_contains "echo8: output keeps its length (10 bytes)" "$(cat "$T/od")" '\0 \0'
kcall "$G/edge.wasm" echo8 --input "abc"
check_eq "echo8: a 3-byte input echoes as zeros" "0" "$(printf '%s' "$OUT" | tr -d '\0' | wc -c)"

# --- errors, traps, limits ------------------------------------------------------------------
kcall "$G/fail.wasm" fail
check_eq "fail: exit 1" 1 "$RC"
check_eq "fail: message" "kiln call: fail.wasm: fail returned 1: something went wrong" "$ERR"
check_eq "fail: no output" "" "$OUT"
kcall "$G/fail.wasm" rc_only
check_eq "rc_only: exit 1" 1 "$RC"
check_contains "rc_only: message" "$ERR" "returned 7: Returned non-zero exit code: 7"
kcall "$G/fail.wasm" error_wins
check_eq "error_wins: exit 1" 1 "$RC"
check_contains "error_wins: the error wins over rc 0" "$ERR" "error set, but returned 0"

kcall "$G/fail.wasm" log --log-level info
check_eq "log: get_log_level is info (2)" "2" "$OUT"
check_contains "log: info line" "$ERR" "[info] fail.wasm: an info line"
check_contains "log: warn line" "$ERR" "[warn] fail.wasm: a warning line"
case "$ERR" in *debug*) not_ok "log: debug filtered at info" "$ERR" ;; *) ok "log: debug filtered at info" ;; esac
kcall "$G/fail.wasm" log
check_eq "log: off by default (get_log_level)" "9" "$OUT"
check_eq "log: off by default (nothing logged)" "" "$ERR"
kcall "$G/fail.wasm" log --log-level trace
check_contains "log: trace level shows debug" "$ERR" "[debug] fail.wasm: a debug line"

kcall "$G/trap.wasm" trap
check_eq "trap: exit 134" 134 "$RC"
check_contains "trap: message" "$ERR" "unreachable"
kcall "$G/trap.wasm" oom --max-memory 4MiB
check_eq "oom: exit 134" 134 "$RC"
check_contains "oom: message" "$ERR" "oom"
kcall "$G/trap.wasm" bad_key
check_eq "invalid handle: exit 1" 1 "$RC"
check_contains "invalid handle: Extism message" "$ERR" \
    "invalid handle offset for config key: 12345678"

start=$(date +%s%N)
kcall "$G/loop.wasm" loop --timeout 200
ms=$((($(date +%s%N) - start) / 1000000))
check_eq "timeout: exit 124" 124 "$RC"
check_contains "timeout: message" "$ERR" "timeout"
if [ "$ms" -lt 5000 ]; then ok "timeout: stopped within 5 s (${ms} ms)"; else not_ok "timeout: prompt" "took ${ms} ms"; fi
cat >"$T/timeout.json" <<EOF
{"wasm": [{"path": "$G/loop.wasm"}], "timeout_ms": 150}
EOF
kcall --manifest "$T/timeout.json" loop
check_eq "timeout from the manifest: exit 124" 124 "$RC"

kcall "$G/greet.wasm" nope
check_eq "missing export: exit 1" 1 "$RC"
check_contains "missing export: names it" "$ERR" "Function not found: nope"
check_contains "missing export: lists the callable ones" "$ERR" "greet"

KILN_HOME_SAVED=$KILN_HOME
KILN_HOME="$T/home-bad"
kcall "$G/badimport.wasm" run
check_eq "unknown import: exit 1" 1 "$RC"
check_contains "unknown import: lists extism:host/env.no_such_function" "$ERR" \
    "extism:host/env.no_such_function"
check_contains "unknown import: lists extism:host/user.my_host_fn" "$ERR" \
    "extism:host/user.my_host_fn"
n=$(find "$T/home-bad" -name '*.so' 2>/dev/null | wc -l)
check_eq "unknown import: nothing compiled" 0 "$n"
KILN_HOME=$KILN_HOME_SAVED

# --- WASI ---------------------------------------------------------------------------------------
kcall "$G/wasi_log.wasm" run
check_eq "wasi plugin without --wasi: exit 1" 1 "$RC"
check_contains "wasi plugin without --wasi: hint" "$ERR" "pass --wasi"
check_contains "wasi plugin without --wasi: names the import" "$ERR" "wasi_snapshot_preview1.fd_write"
kcall "$G/wasi_log.wasm" run --wasi
check_eq "wasi plugin: output" "output" "$OUT"
check_eq "wasi plugin: guest stdout is not printed by default" "" "$ERR"
kcall "$G/wasi_log.wasm" run --wasi --log-level debug
check_contains "wasi plugin: stdout logged at debug" "$ERR" "stdout: printed to stdout"
check_contains "wasi plugin: stderr logged at debug" "$ERR" "stderr: printed to stderr"

# --- HTTP ----------------------------------------------------------------------------------------
cat >"$T/server.py" <<'EOF'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/missing":
            self.reply(404, b"not here")
        elif self.path == "/big":
            self.reply(200, b"x" * 100000)
        elif self.path == "/slow":
            time.sleep(5)
            self.reply(200, b"late")
        else:
            self.reply(200, ("GET %s test=%s" % (self.path, self.headers.get("X-Kiln-Test"))).encode())
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.reply(200, b"POST " + self.rfile.read(n))
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
EOF
python3 "$T/server.py" "$T/port" >/dev/null 2>&1 &
SERVER_PID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(cat "$T/port" 2>/dev/null)
if [ -z "$PORT" ]; then
    not_ok "http: loopback server started" "python3 http.server did not start"
else
    URL="http://127.0.0.1:$PORT"
    kcall "$G/http.wasm" fetch --input "$URL/hello"
    check_eq "http: denied by default: exit 1" 1 "$RC"
    check_contains "http: denied by default: message" "$ERR" "HTTP request to $URL/hello is not allowed"
    # A glob admits the host name, but a loopback address must be named
    # literally (the address guard of src/net; docs/internals/net.md).
    kcall "$G/http.wasm" fetch --input "$URL/hello" --allow-host '127.*'
    check_eq "http: glob 127.* does not unlock the loopback address: exit 1" 1 "$RC"
    check_contains "http: glob 127.*: the guard says why" "$ERR" "a loopback address"
    kcall "$G/http.wasm" fetch --input "$URL/hello" --allow-host 127.0.0.1
    check_eq "http: allowed by exact host (port ignored)" "200 GET /hello test=yes" "$OUT"
    kcall "$G/http.wasm" fetch --input "$URL/hello" --allow-host '*.example.com'
    check_eq "http: *.example.com does not allow 127.0.0.1" 1 "$RC"
    kcall "$G/http.wasm" fetch --input "POST $URL/echo payload-bytes" --allow-host '127.0.0.1'
    check_eq "http: POST with a body" "200 POST payload-bytes" "$OUT"
    kcall "$G/http.wasm" fetch --input "$URL/missing" --allow-host '127.0.0.1'
    check_eq "http: a 404 is not an error" "404 not here" "$OUT"
    check_eq "http: a 404 is not an error (exit 0)" 0 "$RC"
    cat >"$T/http.json" <<EOF
{"wasm": [{"path": "$G/http.wasm"}], "allowed_hosts": ["127.0.0.1"],
 "memory": {"max_http_response_bytes": 1000}}
EOF
    kcall --manifest "$T/http.json" fetch --input "$URL/big"
    check_eq "http: response over max_http_response_bytes: exit 1" 1 "$RC"
    check_contains "http: response over max_http_response_bytes: message" "$ERR" \
        "HTTP response exceeds the configured maximum number of bytes: 1000"
    kcall --manifest "$T/http.json" fetch --input "$URL/hello"
    check_eq "http: manifest allowed_hosts" "200 GET /hello test=yes" "$OUT"
    # Response headers for http_headers(): off by default ({} in the guest
    # for the 0 it gets), on with the manifest's allow_http_response_headers.
    kcall --manifest "$T/http.json" headers --input "$URL/hello"
    check_eq "http_headers: off by default" "{}" "$OUT"
    cat >"$T/http_hdrs.json" <<EOF
{"wasm": [{"path": "$G/http.wasm"}], "allowed_hosts": ["127.0.0.1"],
 "allow_http_response_headers": true}
EOF
    kcall --manifest "$T/http_hdrs.json" headers --input "$URL/hello"
    # The body is "GET /hello test=None" (this guest sends no X-Kiln-Test).
    check_contains "http_headers: allow_http_response_headers: content-length" "$OUT" \
        '"content-length":"20"'
    check_contains "http_headers: allow_http_response_headers: server" "$OUT" '"server":"'
    sed 's/true/false/' "$T/http_hdrs.json" >"$T/http_nohdrs.json"
    kcall --manifest "$T/http_nohdrs.json" headers --input "$URL/hello"
    check_eq "http_headers: allow_http_response_headers false" "{}" "$OUT"
    echo '{"wasm": [{"path": "x.wasm"}], "allow_http_response_headers": "yes"}' >"$T/http_badhdrs.json"
    kcall --manifest "$T/http_badhdrs.json" headers
    check_contains "manifest: allow_http_response_headers must be a boolean" "$ERR" \
        "allow_http_response_headers must be a boolean"
    kcall "$G/backend.wasm" http_call --input "{\"url\":\"$URL/hello\",\"query\":{\"q\":\"a b\"}}" \
        --allow-host 127.0.0.1
    check_contains "otoroshi proxy_http_call: status" "$OUT" '"status":200'
    body=$(echo "$OUT" | sed -n 's/.*"body_base64":"\([^"]*\)".*/\1/p' | base64 -d)
    check_eq "otoroshi proxy_http_call: body, query appended" "GET /hello?q=a%20b test=None" "$body"
    kcall "$G/backend.wasm" http_call --input "{\"url\":\"$URL/hello\"}"
    check_contains "otoroshi proxy_http_call: denied host is a 403 answer" "$OUT" '"status":403'
    body=$(echo "$OUT" | sed -n 's/.*"body_base64":"\([^"]*\)".*/\1/p' | base64 -d)
    check_eq "otoroshi proxy_http_call: denied message" "you cannot access host: 127.0.0.1" "$body"
    kcall "$G/backend.wasm" http_call --input "{\"url\":\"$URL/echo\",\"method\":\"POST\",\"body_json\":{\"a\":1}}" \
        --allow-host 127.0.0.1
    body=$(echo "$OUT" | sed -n 's/.*"body_base64":"\([^"]*\)".*/\1/p' | base64 -d)
    check_eq "otoroshi proxy_http_call: POST body_json" 'POST {"a":1}' "$body"
    NUMS='{"n": 0.9678663636363636, "v": 431952.32, "big": 123456789012345678901234567890}'
    kcall "$G/backend.wasm" http_call \
        --input "{\"url\":\"$URL/echo\",\"method\":\"POST\",\"body_json\":$NUMS}" --allow-host 127.0.0.1
    body=$(echo "$OUT" | sed -n 's/.*"body_base64":"\([^"]*\)".*/\1/p' | base64 -d)
    check_eq "otoroshi proxy_http_call: body_json sent as written (numbers exact, > int64 kept)" \
        "POST $NUMS" "$body"
    start=$(date +%s%N)
    kcall "$G/http.wasm" fetch --input "$URL/slow" --allow-host 127.0.0.1 --timeout 300
    ms=$((($(date +%s%N) - start) / 1000000))
    check_eq "http: the call's time limit bounds a slow request (exit 124)" 124 "$RC"
    if [ "$ms" -lt 3000 ]; then ok "http: timeout is prompt (${ms} ms)"; else not_ok "http: timeout is prompt" "took ${ms} ms"; fi
fi
kcall "$G/http.wasm" fetch --input "http://127.0.0.1:1/x" --allow-host 127.0.0.1
check_eq "http: connection refused: exit 1" 1 "$RC"
check_contains "http: connection refused: message" "$ERR" "failed"
kcall "$G/http.wasm" fetch --input "file:///etc/passwd" --allow-host '*'
check_eq "http: only http(s)" 1 "$RC"

# --- Otoroshi ------------------------------------------------------------------------------------
kcall "$G/backend.wasm" call_backend --input '{"request":{"path":"/json"}}'
check_eq "otoroshi backend: output JSON (rc 3 is not a failure)" \
    '{"body_json":{"foo":"bar"},"body_str":"  "}' "$OUT"
check_eq "otoroshi backend: exit 0" 0 "$RC"
kcall "$G/backend.wasm" call_backend --input '{"request":{"path":"/fail"}}'
check_eq "otoroshi backend: error: exit 1" 1 "$RC"
check_contains "otoroshi backend: error message" "$ERR" "backend refused"
kcall "$G/backend.wasm" attrs
check_eq "otoroshi attrs: set and read back" '1 {"user":{"id":7}}' "$OUT"
# --kv DIR: the KV store of Otoroshi's and Kiln's KV host functions
# (DIR/kv.db, private namespace fn:<module file name>), persistent across
# runs and readable with `kiln kv`; the default is $KILN_HOME/kv.db.
kcall --kv "$T/kv" "$G/backend.wasm" kv
check_eq "otoroshi KV function with --kv: exit 0" 0 "$RC"
kcall --kv "$T/kv" "$G/pl_echo.wasm" call_backend --input '{}' --then call_backend --input '{}'
check_contains "--kv: datastore counter, first call" "$OUT" '"X-Hits":"1"'
check_contains "--kv: datastore counter, --then call" "$OUT" '"X-Hits":"2"'
kcall --kv "$T/kv" "$G/pl_echo.wasm" call_backend --input '{}'
check_contains "--kv: the store persists across runs" "$OUT" '"X-Hits":"3"'
out=$("$KILN" kv --db "$T/kv/kv.db" get fn:pl_echo.wasm hits)
check_eq "--kv: kiln kv reads the plugin's namespace" "3" "$out"
out=$(KILN_HOME="$T/home" "$KILN" call "$G/pl_echo.wasm" call_backend --input '{}' 2>&1)
check_contains "--kv: default store under \$KILN_HOME" "$out" '"X-Hits":"1"'
check_eq "--kv: default store is \$KILN_HOME/kv.db" "1" \
    "$("$KILN" kv --db "$T/home/kv.db" get fn:pl_echo.wasm hits)"

# --then F2 --input B: several functions in order on one instance
kcall "$G/count_vowels.wasm" count_vowels -i aaa --then count_vowels -i ee
check_eq "--then: the second call sees the first's var" \
    '{"count":3,"total":3,"vowels":"aeiouAEIOU"}{"count":2,"total":5,"vowels":"aeiouAEIOU"}' "$OUT"
printf 'ffile' >"$T/then.txt"
cat >"$T/then.json" <<EOF
{"wasm": [{"path": "$G/link_lib.wasm", "name": "lib"}, {"path": "$G/link_main.wasm"}]}
EOF
kcall --manifest "$T/then.json" shout -i a --then shout --input-file "$T/then.txt" --then shout
check_eq "--then: three calls, input per call (file, empty), one instance" "A #1FFILE #2 #3" "$OUT"
kcall "$G/count_vowels.wasm" count_vowels -i aaa --then count_vowels -i ee --loop 2
check_contains "--then with --loop: the sequence runs twice" "$OUT" '"total":10'
kcall "$G/config.wasm" greeting --then nope
check_eq "--then: a missing function fails (exit 1)" 1 "$RC"
check_contains "--then: a missing function is named" "$ERR" "nope"
kcall "$G/count_vowels.wasm" count_vowels --then count_vowels -i a -i b
check_eq "--then: two inputs for one call: usage error" 2 "$RC"
check_contains "--then: two inputs for one call: message" "$ERR" "--then count_vowels: give its input once"

kcall "$G/backend.wasm" call_backend --input '{}' --log-level debug
check_contains "otoroshi backend: proxy_log" "$ERR" "[info] backend.wasm: backend called"

# --- AssemblyScript ------------------------------------------------------------------------------
if [ -f "$G/as_greet.wasm" ]; then
    kcall "$G/as_greet.wasm" greet --input AssemblyScript
    check_eq "as_greet: output" "Hello, AssemblyScript!" "$OUT"
    kcall "$G/as_greet.wasm" greet --input "héllo ✓"
    check_eq "as_greet: UTF-8" "Hello, héllo ✓!" "$OUT"
    kcall "$G/as_greet.wasm" boom
    check_eq "as_greet: abort traps (exit 134)" 134 "$RC"
    check_contains "as_greet: abort message decoded" "$ERR" "abort: boom from AssemblyScript"
    check_contains "as_greet: abort location" "$ERR" "greet.ts:"
    # Otoroshi-style backend in AssemblyScript: JSON request in, JSON response out.
    kcall "$G/as_backend.wasm" call_backend --input '{"request":{"method":"PUT","path":"/as/x"}}'
    check_eq "as_backend: Otoroshi response JSON" \
        '{"status":201,"headers":{"X-Guest":"assemblyscript"},"body_json":{"method":"PUT","path":"/as/x"}}' "$OUT"
else
    echo "skip: AssemblyScript guests not built (see the build output above)"
fi

# --- manifests -----------------------------------------------------------------------------------------
cp "$G/config.wasm" "$T/config.wasm"
cat >"$T/m.json" <<'EOF'
{"wasm": [{"path": "config.wasm", "name": "main"}], "config": {"greeting": "from manifest"}}
EOF
kcall --manifest "$T/m.json" greeting
check_eq "manifest: relative path and config" "from manifest" "$OUT"
kcall --manifest "$T/m.json" greeting --config greeting=flag
check_eq "manifest: --config overrides the manifest" "flag" "$OUT"
hash=$(sha256sum "$T/config.wasm" | cut -d' ' -f1)
cat >"$T/hash.json" <<EOF
{"wasm": [{"path": "config.wasm", "hash": "$hash"}]}
EOF
kcall --manifest "$T/hash.json" greeting
check_eq "manifest: matching hash" "(none)" "$OUT"
cat >"$T/badhash.json" <<EOF
{"wasm": [{"path": "config.wasm", "hash": "0000"}]}
EOF
kcall --manifest "$T/badhash.json" greeting
check_eq "manifest: hash mismatch: exit 1" 1 "$RC"
check_contains "manifest: hash mismatch: message" "$ERR" "Hash mismatch, found $hash but expected 0000"
b64=$(base64 -w0 "$T/config.wasm")
cat >"$T/data.json" <<EOF
{"wasm": [{"data": "$b64"}], "config": {"greeting": "from data"}}
EOF
kcall --manifest "$T/data.json" greeting
check_eq "manifest: base64 data module" "from data" "$OUT"
# linked modules (Extism's several `wasm` entries): link_main imports
# lib.upper and lib.count; the one named "main", or the last, is the plugin.
cat >"$T/link.json" <<EOF
{"wasm": [{"path": "$G/link_lib.wasm", "name": "lib"}, {"path": "$G/link_main.wasm", "name": "main"}]}
EOF
kcall --manifest "$T/link.json" shout --input hello
check_eq "linked modules: main calls lib's exports" "HELLO #1" "$OUT"
kcall --manifest "$T/link.json" shout --input ab --loop 2
check_eq "linked modules: lib's instance persists with main's" "AB #1AB #2" "$OUT"
cat >"$T/link_first.json" <<EOF
{"wasm": [{"path": "$G/link_main.wasm", "name": "main"}, {"path": "$G/link_lib.wasm", "name": "lib"}]}
EOF
kcall --manifest "$T/link_first.json" shout --input x
check_eq "linked modules: main first, named main" "X #1" "$OUT"
cat >"$T/link_last.json" <<EOF
{"wasm": [{"path": "$G/link_lib.wasm", "name": "lib"}, {"path": "$G/link_main.wasm", "name": "app"}]}
EOF
kcall --manifest "$T/link_last.json" shout --input y
check_eq "linked modules: no main: the last module is the plugin" "Y #1" "$OUT"
cat >"$T/link_dup.json" <<EOF
{"wasm": [{"path": "$G/link_lib.wasm"}, {"path": "$G/link_main.wasm"}]}
EOF
kcall --manifest "$T/link_dup.json" shout
check_contains "linked modules: two unnamed modules are both main" "$ERR" \
    "Duplicate module name found in Extism manifest: main"
cat >"$T/link_missing.json" <<EOF
{"wasm": [{"path": "$G/greet.wasm", "name": "other"}, {"path": "$G/link_main.wasm"}]}
EOF
kcall --manifest "$T/link_missing.json" shout
check_eq "linked modules: missing dependency: exit 1" 1 "$RC"
check_contains "linked modules: missing dependency: named" "$ERR" "lib.upper"
cat >"$T/link_cycle.json" <<EOF
{"wasm": [{"path": "$G/link_cyc_a.wasm", "name": "a"}, {"path": "$G/link_cyc_b.wasm", "name": "b"}]}
EOF
kcall --manifest "$T/link_cycle.json" run
check_eq "linked modules: circular imports: exit 1" 1 "$RC"
check_contains "linked modules: circular imports: the cycle named" "$ERR" \
    "circular imports between modules: b -> a -> b"
echo '{"wasm": [{"path": "config.wasm"}], "colour": "blue"}' >"$T/unknown.json"
kcall --manifest "$T/unknown.json" greeting
check_eq "manifest: unknown field: exit 1" 1 "$RC"
check_contains "manifest: unknown field: named" "$ERR" "colour"
echo '{"wasm": []}' >"$T/empty.json"
kcall --manifest "$T/empty.json" greeting
check_contains "manifest: no wasm" "$ERR" "No wasm files specified in Extism manifest"
cat >"$T/mem.json" <<EOF
{"wasm": [{"path": "$G/trap.wasm"}], "memory": {"max_pages": 64}}
EOF
kcall --manifest "$T/mem.json" oom
check_eq "manifest: memory.max_pages caps Extism memory (oom, exit 134)" 134 "$RC"
cat >"$T/tiny.json" <<EOF
{"wasm": [{"path": "$G/greet.wasm"}], "memory": {"max_pages": 1}}
EOF
kcall --manifest "$T/tiny.json" greet
check_eq "manifest: max_pages below the module's initial memory: exit 134" 134 "$RC"

# memory.max_pages as Extism's runtime applies it: growth past the initial
# size counts (the budget is reset after instantiation), an initial size over
# it is "oom". mem_pages.wasm starts at 17 pages.
cat >"$T/m17.json" <<EOF
{"wasm": [{"path": "$G/mem_pages.wasm"}], "memory": {"max_pages": 17, "max_var_bytes": 200}}
EOF
kcall --manifest "$T/m17.json" pages
check_eq "max_pages 17: a 17-page module instantiates" "17" "$OUT"
kcall --manifest "$T/m17.json" grow --input 17
check_eq "max_pages 17: a 17-page module grows by 17 pages" "34" "$OUT"
kcall --manifest "$T/m17.json" grow --input 18
check_eq "max_pages 17: growing by 18 pages fails (exit 1)" 1 "$RC"
check_contains "max_pages 17: memory.grow refused" "$ERR" "memory.grow failed"
kcall --manifest "$T/m17.json" grow --input 10 --loop 2
check_eq "max_pages 17: the budget spans calls on one instance" "27" "$OUT"
check_eq "max_pages 17: the second 10-page growth fails" 1 "$RC"
sed 's/"max_pages": 17/"max_pages": 16/' "$T/m17.json" >"$T/m16.json"
kcall --manifest "$T/m16.json" pages
check_eq "max_pages 16 under a 17-page module: exit 134" 134 "$RC"
check_contains "max_pages 16 under a 17-page module: Extism's oom" "$ERR" ": oom ("
# vars at the store's limit (max_var_bytes 200; each entry costs key + value
# + 48): "a" of 101 bytes (150) plus "b"="1" (50) is exactly 200 - accepted,
# as Extism's limit is exclusive; replacing "b" counts the old value too.
a101=$(head -c 101 /dev/zero | tr '\0' x)
kcall --manifest "$T/m17.json" add --var "a=$a101" --show-vars
check_eq "vars: a var_set that reaches the limit exactly is accepted" "added" "$OUT"
check_contains "vars: at the limit: both vars kept" "$ERR" "var b=1"
kcall --manifest "$T/m17.json" add --var "a=$a101" --loop 2
check_eq "vars: past the limit: exit 1" 1 "$RC"
check_contains "vars: past the limit: Extism's message" "$ERR" "add: Variable store is full"
kcall --manifest "$T/m17.json" fill --input "$a101$a101"
check_contains "vars: one value over the limit: Extism's message" "$ERR" "Variable store is full"
kcall --manifest "$T/m17.json" add --var "a=$a101$a101"
check_eq "vars: a --var over the limit: exit 1" 1 "$RC"
check_contains "vars: a --var over the limit: message" "$ERR" "Variable store is full"

# --- command line ---------------------------------------------------------------------------------------
kcall --help
check_eq "--help: exit 0" 0 "$RC"
check_contains "--help: usage" "$OUT" "usage: kiln call"
kcall --bogus "$G/greet.wasm" greet
check_eq "unknown flag: exit 2" 2 "$RC"
check_contains "unknown flag: named" "$ERR" "--bogus"
kcall
check_eq "no arguments: exit 2" 2 "$RC"
kcall "$G/greet.wasm"
check_eq "no function: exit 2" 2 "$RC"
kcall "$G/greet.wasm" greet --timeout abc
check_eq "bad --timeout: exit 2" 2 "$RC"
kcall "$G/greet.wasm" greet --log-level loud
check_eq "bad --log-level: exit 2" 2 "$RC"
kcall "$G/greet.wasm" greet --config novalue
check_eq "bad --config: exit 2" 2 "$RC"
kcall "$G/greet.wasm" greet --input a --input-file b
check_eq "two inputs: exit 2" 2 "$RC"
kcall "$T/nonexistent.wasm" greet
check_eq "missing module: exit 1" 1 "$RC"
check_contains "missing module: names the file" "$ERR" "nonexistent.wasm"
out=$("$KILN" --help)
check_contains "kiln --help lists call" "$out" "call"

finish
