#!/bin/sh
# test_component_serve.sh - WebAssembly components as served functions
# (src/abi/component/, docs/internals/component.md "Serving"), over real
# sockets: a wasi:cli/command component served as CGI (status, headers,
# body, CGI variables, stdin, exit status, trap, timeout, memory limit), a
# kiln:faas handler (ok 204, invalid/unsupported 400, failed 500, trap,
# timeout, memory limit, the handler-event it receives), a fresh instance per
# request, concurrent requests on 2 workers, deploy through the admin API
# and the watched directory, and the refusals (an import Kiln lacks, a
# component of neither world, another ABI named for a component), and
# `snapshot: true` (a constructor's state in every request, no request seeing
# another's writes, a command graph with shim and fixup, a constructor that
# calls the host refused at deploy).
# Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

C="$KILN_BUILD/components"
if ! blog=$(sh "$KILN_ROOT/tests/components/build.sh" "$C" 2>&1); then
    not_ok "build the test components" "$blog"
    finish
    exit 1
fi
ok "build the test components"
CMD=$C/cgi_cmd.wasm
FAAS=$C/faas_serve.wasm
UNKNOWN=$C/faas_unknown.wasm
NEITHER=$C/prims.wasm

mkdir -p "$T/data" && echo "hello from a preopen" >"$T/data/hello.txt"

# ---- one server, every function of the config -----------------------------------
cat >"$T/kiln.yaml" <<YAML
functions:
  cmd:
    module: $CMD
    env: {GREETING: hi}
    timeout: 1s
    max_memory: 8MiB
    dirs: [{host: $T/data, guest: /data, read_only: true}]
    routes: [/cmd]
  faas:
    module: $FAAS
    timeout: 1s
    max_memory: 8MiB
    routes: [/faas/...]
  faas-explicit:
    module: $FAAS
    abi: component
    timeout: 60s
    routes: [/explicit/...]
  cmd-long:
    module: $CMD
    timeout: 60s
    routes: [/cmdlong]
  unknown:
    module: $UNKNOWN
    routes: [/unknown]
  neither:
    module: $NEITHER
    routes: [/neither]
YAML
if ! serve_start main --threads 2 --config "$T/kiln.yaml"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts with component functions"
check_contains "route table names the component ABI" "$(cat "$LOG")" "/faas/... -> faas (component)"

# ---- wasi:cli/command as CGI -----------------------------------------------------
expect "cgi: status from the Status header" 201 "method=POST" \
    -X POST -H "X-Test: yes" --data-binary "abc" "$URL/cmd?hello"
check_eq "cgi: the guest's own header" "text/plain" "$(header Content-Type)"
check_eq "cgi: fresh instance (counter 1)" "1" "$(header X-Counter)"
check_contains "cgi: QUERY_STRING" "$BODY" "query=hello"
check_contains "cgi: SCRIPT_NAME" "$BODY" "script=/cmd"
check_contains "cgi: the function's env" "$BODY" "greeting=hi"
check_contains "cgi: a request header as HTTP_X_TEST" "$BODY" "x_test=yes"
check_contains "cgi: CONTENT_LENGTH" "$BODY" "content_length=3"
check_contains "cgi: the body on stdin" "$BODY" "body=abc"
expect "cgi: second request" 201 "method=GET" "$URL/cmd"
check_eq "cgi: second request is a fresh instance too (counter 1)" "1" "$(header X-Counter)"
check_contains "cgi: stderr reaches the server log, prefixed" "$(cat "$LOG")" "[cmd] cgi_cmd: serving POST"
expect "cgi: non-zero exit is a 500" 500 "function 'cmd' exited with code 1" "$URL/cmd?exit"
check_contains "cgi: the 500 names the function" "$BODY" '"function":"cmd"'
expect "cgi: trap is a 500" 500 '"trap"' "$URL/cmd?trap"
expect "cgi: time limit is a 504" 504 "time limit exceeded" "$URL/cmd?loop"
expect "cgi: memory limit is a 500 (out of memory)" 500 "out of memory" "$URL/cmd?oom"
expect "cgi: serves again after the failures" 201 "method=GET" "$URL/cmd"
# The function's dirs reach WASI 0.2's filesystem (when this build maps it onto
# the preopens: `kiln run --help` says so).
if "$KILN" run --help 2>&1 | grep -q "preopens as wasi:filesystem"; then
    expect "cgi: the function's dirs are its preopens" 200 "file=hello from a preopen" "$URL/cmd?file"
fi

# ---- kiln:faas handler over HTTP ------------------------------------------------
expect "faas: ok is 204" 204 "" -X POST --data-binary "x" "$URL/faas/fine"
expect "faas: the handler-event it receives" 400 \
    "type=4 version=1 source=http key=/faas/echo payload=hello seconds=" \
    -X POST --data-binary "hello" "$URL/faas/echo"
check_contains "faas: the timestamp is now, nanoseconds in range" "$BODY" "recent=1 nanos_ok=1"
expect "faas: invalid(msg) is 400 with msg" 400 "bad input" "$URL/faas/invalid"
check_eq "faas: the case is named" "invalid" "$(header X-Kiln-Handler-Error)"
expect "faas: unsupported(type) is 400" 400 "unsupported event type 'message'" "$URL/faas/unsupported"
expect "faas: failed(msg) is 500 with msg" 500 "the handler failed: disk on fire" \
    -X POST --data-binary "disk on fire" "$URL/faas/failed"
check_contains "faas: the 500 names the function" "$BODY" '"function":"faas"'
expect "faas: trap is a 500" 500 '"trap"' "$URL/faas/trap"
expect "faas: time limit is a 504" 504 "time limit exceeded" "$URL/faas/loop"
expect "faas: memory limit is a 500 (out of memory)" 500 "out of memory" "$URL/faas/oom"
expect "faas: fresh instance per request" 400 "count=1" "$URL/faas/count"
expect "faas: still 1 on the next request" 400 "count=1" "$URL/faas/count"
expect "faas: explicit abi: component" 204 "" "$URL/explicit/fine"

# ---- refusals at deploy ------------------------------------------------------------
expect "unknown import: 503" 503 "imports functions Kiln does not provide" "$URL/unknown"
check_contains "unknown import: the log names the function and the import" "$(cat "$LOG")" \
    "function 'unknown': the component's import example:unknown/thing@0.1.0#ping is not provided by Kiln"
expect "neither world: 503" 503 "unavailable" "$URL/neither"
check_contains "neither world: the log lists its exports" "$(cat "$LOG")" \
    "it exports func add, func echo"
check_contains "neither world: the log names both worlds" "$(grep "function 'neither'" "$LOG")" \
    "wasi:cli/command (export wasi:cli/run, served as CGI) and kiln:faas handler"

# ---- concurrency: 2 workers, 12 requests at once --------------------------------
# (functions with a long time limit: a loaded machine must not turn this into
# a timing test)
i=0
pids=""
while [ $i -lt 6 ]; do
    curl -s -m 120 -o "$T/c$i" -w '%{http_code}' "$URL/explicit/count" >"$T/cc$i" &
    pids="$pids $!"
    curl -s -m 120 -o "$T/d$i" -w '%{http_code} ' -D "$T/dh$i" "$URL/cmdlong?c$i" >"$T/dc$i" &
    pids="$pids $!"
    i=$((i + 1))
done
for p in $pids; do wait "$p"; done # not the server's pid
bad=""
i=0
while [ $i -lt 6 ]; do
    [ "$(cat "$T/cc$i")" = 400 ] && grep -q "count=1" "$T/c$i" || bad="$bad faas$i"
    grep -q "^201" "$T/dc$i" && grep -q "query=c$i" "$T/d$i" &&
        tr -d '\r' <"$T/dh$i" | grep -q "^X-Counter: 1$" || bad="$bad cmd$i"
    i=$((i + 1))
done
check_eq "concurrent: 12 requests, each its own fresh instance and answer" "" "$bad"
serve_stop
check_eq "server stops cleanly (exit 0)" "0" "$SRC"
check_eq "no sanitizer report in the server log" "" "$(grep -m1 'Sanitizer' "$LOG")"

# ---- the event op (what src/event/ calls), through tests/tools/component_event ----
EV="$KILN_BUILD/tests/tools/component_event"
out=$("$EV" "$FAAS" object-added /orders/echo 'pay load' 2>&1)
check_contains "event: the handler-event record" "$out" \
    'invalid("type=0 version=1 source=kv:orders key=/orders/echo payload=pay load seconds=1767225600 nanos=123456789 '
out=$("$EV" "$FAAS" object-updated /orders/fine x 2>&1)
check_eq "event: ok is KILN_OK" "ok" "$out"
out=$("$EV" "$FAAS" object-removed /orders/echo '' 2>&1)
check_contains "event: object-removed maps to its enum case" "$out" "type=1 "
out=$("$EV" "$FAAS" scheduled /orders/unsupported '' 2>&1)
check_contains "event: unsupported names the case and type" "$out" \
    "function 'evfn': the handler answered unsupported(scheduled)"
out=$("$EV" "$FAAS" message /orders/invalid '' 2>&1)
check_contains "event: invalid names the case and text" "$out" 'the handler answered invalid("bad input")'
out=$("$EV" "$FAAS" message /orders/failed 'no stock' 2>&1)
check_contains "event: failed names the case and text" "$out" 'the handler answered failed("no stock")'
out=$("$EV" "$FAAS" message 'bad\xffkey' p 2>&1)
check_contains "event: a key that is not UTF-8 fails clearly" "$out" \
    "function 'evfn': the event's key is not valid UTF-8 (byte 3)"
out=$("$EV" "$FAAS" message /orders/trap '' 2>&1)
check_contains "event: a trap fails the event" "$out" "unreachable executed"
out=$("$EV" "$FAAS" message /orders/loop '' 300 2>&1)
check_contains "event: the time limit fails the event" "$out" "time limit exceeded"
out=$("$EV" "$CMD" message /x '' 2>&1)
check_contains "event: a command component takes no events" "$out" \
    "only a kiln:faas handler component (exporting handle) takes events"

# ---- configuration errors ----------------------------------------------------------
cat >"$T/bad.yaml" <<YAML
functions:
  f:
    module: $FAAS
    abi: extism
    routes: [/f]
YAML
out=$(timeout 60 "$KILN" serve --listen 127.0.0.1:0 --admin-listen off --config "$T/bad.yaml" 2>&1)
check_eq "abi: extism on a component: kiln serve exits 1" "1" "$?"
check_contains "abi: extism on a component: the message" "$out" \
    "function 'f': its module is a WebAssembly component, which abi 'extism' cannot serve; set 'abi: component' or remove 'abi'"
cat >"$T/bad2.yaml" <<YAML
functions:
  g:
    module: $C/faas_serve.core.wasm
    abi: component
    routes: [/g]
YAML
out=$(timeout 60 "$KILN" serve --listen 127.0.0.1:0 --admin-listen off --config "$T/bad2.yaml" 2>&1)
check_contains "abi: component on a core module: refused" "$out" \
    "function 'g': abi 'component' needs a WebAssembly component"

# ---- the watched directory and the admin API ------------------------------------
export KILN_HOME="$T/home"
mkdir -p "$KILN_HOME" "$T/dir"
SHARED_CACHE=${KILN_BUILD}/test-home/cache
mkdir -p "$SHARED_CACHE" && ln -s "$SHARED_CACHE" "$KILN_HOME/cache"
unset KILN_ADMIN_TOKEN KILN_TOKEN KILN_ADMIN
cp "$CMD" "$T/dir/webcmd.wasm"
if ! serve_start dir --threads 2 --admin-listen 127.0.0.1:0 "$T/dir"; then
    not_ok "directory server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ADMIN=""
i=0
while [ -z "$ADMIN" ] && [ $i -lt 100 ]; do
    ADMIN=$(sed -n 's/.*admin API on \(http:[^ ]*\).*/\1/p' "$LOG" | head -n 1)
    [ -n "$ADMIN" ] || sleep 0.1
    i=$((i + 1))
done
TOKEN=$(cat "$KILN_HOME/admin.token")
expect "dir: a command component at /NAME" 201 "method=GET" "$URL/webcmd"
cp "$FAAS" "$T/dir/.hook.tmp" && mv "$T/dir/.hook.tmp" "$T/dir/hook.wasm"
i=0
while [ $i -lt 300 ]; do
    req "$URL/hook/fine"
    [ "$CODE" = 204 ] && break
    sleep 0.1
    i=$((i + 1))
done
check_eq "dir: a faas component dropped into the watched directory serves (204)" "204" "$CODE"

api() {
    n=$1 c=$2 s=$3 m=$4 p=$5
    shift 5
    expect "$n" "$c" "$s" -X "$m" -H "Authorization: Bearer $TOKEN" "$@" "$ADMIN$p"
}
expect "admin: deploy without a token is 401" 401 "" -X PUT -T "$FAAS" "$ADMIN/functions/nope"
api "admin: deploy a faas component (201, serving)" 201 '"status":"serving"' PUT \
    "/functions/adm?route=/adm/..." -T "$FAAS"
expect "admin: the deployed component answers" 400 "key=/adm/echo" "$URL/adm/echo"
api "admin: the function is listed" 200 "" GET /functions/adm
check_eq "admin: listed with abi component" "component" "$(printf '%s' "$BODY" | jq -r .abi)"
out=$(KILN_ADMIN="$ADMIN" KILN_ADMIN_TOKEN="$TOKEN" "$KILN" ls 2>&1)
check_contains "kiln ls: shows the ABI" "$(printf '%s\n' "$out" | grep '^adm')" "component"
out=$(KILN_ADMIN="$ADMIN" KILN_ADMIN_TOKEN="$TOKEN" "$KILN" deploy --route /clicmd --env GREETING=cli \
    --abi component --wait clicmd "$CMD" 2>&1)
check_contains "kiln deploy --abi component: serving" "$out" "status serving"
expect "kiln deploy: the command answers with its env" 201 "greeting=cli" "$URL/clicmd"
api "admin: deploy a command component" 201 '"status":"serving"' PUT \
    "/functions/admcmd?route=/admcmd" -T "$CMD"
expect "admin: the command answers as CGI" 201 "script=/admcmd" "$URL/admcmd"
api "admin: a component with an unknown import is refused (422)" 422 \
    "example:unknown/thing@0.1.0#ping is not provided by Kiln" PUT "/functions/bad" -T "$UNKNOWN"
api "admin: a component of neither world is refused (422)" 422 \
    "wasi:cli/command (export wasi:cli/run" PUT "/functions/bad2" -T "$NEITHER"
api "admin: abi=extism on a component is refused (400)" 400 \
    "which abi 'extism' cannot serve" PUT "/functions/bad3?abi=extism" -T "$FAAS"
expect "admin: the earlier deploy still serves" 204 "" "$URL/adm/fine"
api "admin: a broken new version of a served component is refused (422)" 422 \
    "example:unknown/thing@0.1.0#ping is not provided by Kiln" PUT "/functions/adm" -T "$UNKNOWN"
expect "admin: ...and the previous version keeps serving" 204 "" "$URL/adm/fine"
api "admin: the function reports the refusal" 200 "" GET /functions/adm
check_contains "admin: the refused version is recorded with the import named" \
    "$(printf '%s' "$BODY" | jq -r '.versions[] | select(.status=="failed") | .error')" \
    "example:unknown/thing@0.1.0#ping"
out=$("$KILN" inspect "$FAAS" 2>&1)
check_contains "kiln inspect: says component" "$out" "component: "
serve_stop
check_eq "directory server stops cleanly (exit 0)" "0" "$SRC"
check_eq "no sanitizer report in the directory server's log" "" "$(grep -m1 'Sanitizer' "$LOG")"

# ---- snapshot: true (comp_snap.c) ---------------------------------------------------
# faas_snap's static constructor (run at instantiation through _initialize)
# fills a table, mallocs a note and counts its runs; /scribble overwrites all
# of it. cgi_cmd is a graph of four core instances whose shim table holds the
# fixup instance's functions; faas_snap_host's constructor writes to stdout
# (a host call at instantiation: refused for a snapshot).
SNAP=$C/faas_snap.wasm
cat >"$T/snap.yaml" <<YAML
functions:
  snap:
    module: $SNAP
    snapshot: true
    timeout: 60s
    routes: [/snap/...]
  nosnap:
    module: $SNAP
    timeout: 60s
    routes: [/nosnap/...]
  cmdsnap:
    module: $CMD
    snapshot: true
    env: {GREETING: hi}
    timeout: 60s
    routes: [/cmdsnap]
  cmdplain:
    module: $CMD
    env: {GREETING: hi}
    timeout: 60s
    routes: [/cmdplain]
  faassnap:
    module: $FAAS
    snapshot: true
    timeout: 1s
    routes: [/faassnap/...]
  hostsnap:
    module: $C/faas_snap_host.wasm
    snapshot: true
    routes: [/hostsnap/...]
  hostplain:
    module: $C/faas_snap_host.wasm
    routes: [/hostplain/...]
YAML
if ! serve_start snap --threads 2 --config "$T/snap.yaml"; then
    not_ok "snapshot server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "snapshot server starts"
check_contains "snapshot: the image is built at deploy, in memory" \
    "$(grep "function 'snap'" "$LOG")" "snapshot image of 2 core instances"
check_contains "snapshot: the command's graph of four core instances too" \
    "$(grep "function 'cmdsnap'" "$LOG")" "snapshot image of 4 core instances"
expect "snapshot: the request sees the constructor's state" 400 \
    "inits=1 calls=1 sum=" "$URL/snap/state"
check_contains "snapshot: ...the malloc'd note included" "$BODY" "note=initialised"
snap_state=$BODY
expect "without snapshot: the same state" 400 "inits=1 calls=1" "$URL/nosnap/state"
check_eq "snapshot: identical answer with and without snapshot" "$BODY" "$snap_state"
expect "snapshot: a request scribbles over it" 400 "inits=101 calls=1 sum=0 note=scribbled" \
    "$URL/snap/scribble"
expect "snapshot: the next request starts from the image again" 400 "$snap_state" "$URL/snap/state"
check_eq "snapshot: ...byte for byte" "$snap_state" "$BODY"
expect "snapshot: a command graph (shim table filled by the fixup) answers" 201 "method=GET" \
    "$URL/cmdsnap?x"
check_eq "snapshot: the command's instance is fresh (counter 1)" "1" "$(header X-Counter)"
cmd_snap=$(printf '%s' "$BODY" | sed 's#/cmdsnap#/cmd#')
expect "snapshot: again, counter 1" 201 "method=GET" "$URL/cmdsnap?x"
check_eq "snapshot: second command request fresh too" "1" "$(header X-Counter)"
expect "without snapshot: the command" 201 "method=GET" "$URL/cmdplain?x"
check_eq "snapshot: the command answers as without snapshot" \
    "$(printf '%s' "$BODY" | sed 's#/cmdplain#/cmd#')" "$cmd_snap"
expect "snapshot: the command's exit status" 500 "function 'cmdsnap' exited with code 1" \
    "$URL/cmdsnap?exit"
expect "snapshot: faas handler, fresh instance" 400 "count=1" "$URL/faassnap/count"
expect "snapshot: faas handler, still 1" 400 "count=1" "$URL/faassnap/count"
expect "snapshot: a trap is a 500" 500 '"trap"' "$URL/faassnap/trap"
expect "snapshot: the time limit is a 504" 504 "time limit exceeded" "$URL/faassnap/loop"
expect "snapshot: serves after the failures" 204 "" "$URL/faassnap/fine"
# 12 at once on 2 workers: every request its own instance from the image.
i=0
pids=""
while [ $i -lt 6 ]; do
    curl -s -m 120 -o "$T/s$i" "$URL/snap/scribble" &
    pids="$pids $!"
    curl -s -m 120 -o "$T/t$i" "$URL/snap/state" &
    pids="$pids $!"
    i=$((i + 1))
done
for p in $pids; do wait "$p"; done
bad=""
i=0
while [ $i -lt 6 ]; do
    grep -q "inits=101 calls=1 sum=0 note=scribbled" "$T/s$i" || bad="$bad scribble$i"
    [ "$(cat "$T/t$i")" = "$snap_state" ] || bad="$bad state$i"
    i=$((i + 1))
done
check_eq "snapshot: 12 concurrent requests, none sees another's writes" "" "$bad"
# 8 commands at once on 2 workers, each sleeping in a host call (its fiber
# suspended while others run on the thread): the lowered imports' shared
# closures must reach each request's own instance (its stdin, stdout, env).
for f in cmdsnap cmdplain; do
    i=0
    pids=""
    while [ $i -lt 8 ]; do
        curl -s -m 120 -o "$T/z$i" -D "$T/zh$i" --data-binary "body$i" "$URL/$f?sleep$i" &
        pids="$pids $!"
        i=$((i + 1))
    done
    for p in $pids; do wait "$p"; done
    bad=""
    i=0
    while [ $i -lt 8 ]; do
        grep -q "query=sleep$i" "$T/z$i" && grep -q "body=body$i" "$T/z$i" &&
            tr -d '\r' <"$T/zh$i" | grep -q "^X-Counter: 1$" || bad="$bad $i"
        i=$((i + 1))
    done
    check_eq "$f: 8 requests suspended in host calls at once, each its own answer" "" "$bad"
done
expect "snapshot refused: a constructor calling the host is 503" 503 \
    "its snapshot initialisation failed" "$URL/hostsnap/x"
check_contains "snapshot refused: the log names the function, the cause and what to do" \
    "$(grep "function 'hostsnap'" "$LOG")" \
    "snapshot: instantiating the component for its image failed (its start functions and static constructors may not call imports"
check_contains "snapshot refused: ...and the import called" "$(grep "function 'hostsnap'" "$LOG")" \
    "init called wasi:cli/"
expect "snapshot refused: the same component serves without snapshot" 204 "" "$URL/hostplain/x"
serve_stop
check_eq "snapshot server stops cleanly (exit 0)" "0" "$SRC"
check_eq "no sanitizer report in the snapshot server's log" "" "$(grep -m1 'Sanitizer' "$LOG")"
finish
